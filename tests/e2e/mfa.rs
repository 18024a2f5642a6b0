//! MFA: `--mfa-serial` trades the starting credentials and the device's code for a session
//! (sts:GetSessionToken) once, and that session is the starting identity for everything.

use crate::support::{Ground, Run};

const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";
const CODE: &str = "864209";

#[test]
fn an_mfa_session_is_the_starting_identity_for_every_call() {
    let g = Ground::start(&["--mfa-code-expected", CODE]);
    let run = Run::of(g.cove().args([
        "-vvv",
        "--mfa-serial",
        SERIAL,
        "--mfa-code",
        CODE,
        "-t",
        &g.ou("Sandbox"),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["sandbox-a", "sandbox-b"]));
    let sessions = g.session_params();
    assert_eq!(sessions.len(), 1, "one GetSessionToken: {sessions:?}");
    assert_eq!(sessions[0]["SerialNumber"], SERIAL);
    assert_eq!(sessions[0]["TokenCode"], CODE);
    let by_identity = g.calls_by_identity();
    for operation in [
        "sts:GetCallerIdentity",
        "organizations:ListAccountsForParent",
        "sts:AssumeRole",
    ] {
        let who = by_identity[operation].as_object().unwrap();
        assert_eq!(
            who.keys().collect::<Vec<_>>(),
            ["mfa-session"],
            "{operation} made with the MFA session only: {by_identity}"
        );
    }
    assert!(
        !run.stdout.contains(CODE) && !run.stderr.contains(CODE),
        "the MFA code is never printed, even at -vvv"
    );
    run.expect_no_secret(g.secrets());
}

#[test]
fn a_wrong_mfa_code_stops_the_run_saying_so_before_any_target() {
    let g = Ground::start(&["--mfa-code-expected", CODE]);
    let wrong = "135790";
    let run = Run::of(
        g.cove()
            .args(["--mfa-serial", SERIAL, "--mfa-code", wrong, "--", "true"]),
    );
    run.expect_code(2);
    assert!(
        run.stderr.contains("the MFA code for") && run.stderr.contains("was not accepted"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(wrong),
        "the code is not echoed: {}",
        run.stderr
    );
    assert_eq!(g.calls("sts:AssumeRole"), 0);
    assert_eq!(g.calls("sts:GetCallerIdentity"), 0);
}

#[test]
fn mfa_input_errors_come_before_any_aws_call() {
    let g = Ground::start(&[]);
    for (args, expected) in [
        (
            vec!["--mfa-serial", SERIAL],
            "--mfa-serial needs a code: pass --mfa-code",
        ),
        (
            vec!["--mfa-serial", SERIAL, "--mfa-code", "12ab56"],
            "invalid MFA code (6 characters): expected the 6 digits",
        ),
        (
            vec!["--mfa-serial", "mfa", "--mfa-code", CODE],
            "invalid --mfa-serial `mfa`",
        ),
    ] {
        let run = Run::of(g.cove().args(&args).args(["--", "true"]));
        run.expect_code(2);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("12ab56"), "a bad code is not echoed");
    }
    assert!(g.all_calls().as_object().unwrap().is_empty(), "no AWS call");
}
