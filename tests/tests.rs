//! One integration test binary: the real `cove` against a local moto server.

#[path = "e2e/adaptive.rs"]
mod adaptive;
#[path = "e2e/bad_input.rs"]
mod bad_input;
#[path = "e2e/ci_summary.rs"]
mod ci_summary;
#[path = "e2e/configuration.rs"]
mod configuration;
#[path = "e2e/diff.rs"]
mod diff;
#[path = "e2e/docs.rs"]
mod docs;
#[path = "e2e/docs_examples.rs"]
mod docs_examples;
#[path = "e2e/endpoint.rs"]
mod endpoint;
#[path = "e2e/endpoint_hostile.rs"]
mod endpoint_hostile;
#[path = "e2e/environment.rs"]
mod environment;
#[path = "e2e/faults.rs"]
mod faults;
#[path = "e2e/flat_output.rs"]
mod flat_output;
#[path = "e2e/hostile.rs"]
mod hostile;
#[path = "e2e/human.rs"]
mod human;
#[path = "e2e/interrupts.rs"]
mod interrupts;
#[path = "e2e/login.rs"]
mod login;
#[path = "e2e/logs.rs"]
mod logs;
#[path = "e2e/mfa.rs"]
mod mfa;
#[path = "e2e/no_credentials.rs"]
mod no_credentials;
#[path = "e2e/output_files.rs"]
mod output_files;
#[path = "e2e/partitions.rs"]
mod partitions;
#[path = "e2e/people.rs"]
mod people;
#[path = "e2e/plan_file.rs"]
mod plan_file;
#[path = "e2e/readme.rs"]
mod readme;
#[path = "e2e/roles.rs"]
mod roles;
#[path = "e2e/rollout.rs"]
mod rollout;
#[path = "e2e/running.rs"]
mod running;
#[path = "e2e/scale_out.rs"]
mod scale_out;
#[path = "e2e/spool.rs"]
mod spool;
#[path = "e2e/sso.rs"]
mod sso;
#[path = "e2e/streaming.rs"]
mod streaming;
#[path = "e2e/support.rs"]
mod support;
#[path = "e2e/targets.rs"]
mod targets;
#[path = "e2e/throttling.rs"]
mod throttling;
#[path = "e2e/tree.rs"]
mod tree;
#[path = "e2e/typed_secrets.rs"]
mod typed_secrets;
#[path = "e2e/variables.rs"]
mod variables;
#[path = "e2e/whole_organization.rs"]
mod whole_organization;

/// A file under tests/e2e that no `#[path]` line above names would never be compiled, and its
/// tests would silently never run.
#[test]
fn every_file_under_tests_e2e_is_compiled_into_this_binary() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let listing = std::fs::read_to_string(tests.join("tests.rs")).unwrap();
    let lines: Vec<&str> = listing.lines().map(str::trim).collect();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(tests.join("e2e")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".rs") {
            continue;
        }
        let path_line = format!("#[path = \"e2e/{name}\"]");
        let listed = lines
            .windows(2)
            .any(|w| w[0] == path_line && w[1].starts_with("mod "));
        if !listed {
            missing.push(name);
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "not listed in tests/tests.rs (add `#[path = \"e2e/NAME.rs\"]` and `mod NAME;`): {missing:?}"
    );
}
