//! One integration test binary: the real `cove` against a local moto server.

#[path = "e2e/bad_input.rs"]
mod bad_input;
#[path = "e2e/endpoint.rs"]
mod endpoint;
#[path = "e2e/faults.rs"]
mod faults;
#[path = "e2e/human.rs"]
mod human;
#[path = "e2e/interrupts.rs"]
mod interrupts;
#[path = "e2e/login.rs"]
mod login;
#[path = "e2e/logs.rs"]
mod logs;
#[path = "e2e/people.rs"]
mod people;
#[path = "e2e/readme.rs"]
mod readme;
#[path = "e2e/roles.rs"]
mod roles;
#[path = "e2e/running.rs"]
mod running;
#[path = "e2e/scale_out.rs"]
mod scale_out;
#[path = "e2e/streaming.rs"]
mod streaming;
#[path = "e2e/support.rs"]
mod support;
#[path = "e2e/targets.rs"]
mod targets;
#[path = "e2e/throttling.rs"]
mod throttling;
