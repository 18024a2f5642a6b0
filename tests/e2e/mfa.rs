//! MFA: `--mfa-serial` trades the starting credentials and the device's code for a session
//! (sts:GetSessionToken) once, and that session is the starting identity for everything.

use crate::support::{Ground, Run};

const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";
const CODE: &str = "864209";

#[test]
fn an_mfa_session_is_the_starting_identity_for_every_call() {
    let g = Ground::start(&["--mfa-code-expected", CODE, "--mfa-serial-expected", SERIAL]);
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

#[test]
fn the_right_code_for_another_device_is_refused_as_aws_does() {
    let g = Ground::start(&["--mfa-code-expected", CODE, "--mfa-serial-expected", SERIAL]);
    let other = "arn:aws:iam::123456789012:mfa/mallory";
    let run = Run::of(
        g.cove()
            .args(["--mfa-serial", other, "--mfa-code", CODE, "--", "true"]),
    );
    run.expect_code(2);
    assert!(
        run.stderr
            .contains(&format!("the MFA code for `{other}` was not accepted")),
        "{}",
        run.stderr
    );
    let sessions = g.session_params();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["SerialNumber"], other);
    assert_eq!(g.calls("sts:AssumeRole"), 0);
    assert_eq!(g.calls("sts:GetCallerIdentity"), 0);
}

#[test]
fn the_mfa_session_signs_the_first_via_role_hop() {
    let g = Ground::start(&["--mfa-code-expected", CODE, "--mfa-serial-expected", SERIAL]);
    // In the management account: moto keeps the organization there.
    let hub = format!("arn:aws:iam::{}:role/Hub", g.caller());
    let run = Run::of(g.cove().args([
        "--mfa-serial",
        SERIAL,
        "--mfa-code",
        CODE,
        "--via-role",
        &hub,
        "-t",
        &g.account("sandbox-a"),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), [g.account("sandbox-a")]);
    let keys = g.control("/_ground/key-roles")["keys"].clone();
    let signers = g.control("/_ground/assume-signers")["calls"].clone();
    let signed_by = |role: &str| -> Vec<String> {
        signers
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["RoleArn"].as_str().is_some_and(|a| a.contains(role)))
            .map(|c| keys[c["AccessKeyId"].as_str().unwrap_or("-")].to_string())
            .collect()
    };
    assert_eq!(
        signed_by(":role/Hub"),
        ["\"mfa-session\""],
        "the hop is signed with the GetSessionToken keys: {signers}"
    );
    assert_eq!(
        signed_by(&g.account("sandbox-a")),
        [format!("{hub:?}")],
        "the target's role is assumed as the hop: {signers}"
    );
    run.expect_no_secret(g.secrets());
}

/// Runs cove on a pseudo-terminal of its own (Python's `pty`), with `env` as its whole
/// environment. Once the MFA prompt shows and the terminal's echo is off, types `typed` and a
/// newline. Returns cove's exit code and everything the terminal showed.
fn type_at_mfa_prompt(env: &[(String, String)], args: &[&str], typed: &str) -> (i32, String) {
    let driver = r#"
import json, os, pty, sys, termios, time
env, argv, typed = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.execve(argv[0], argv, env)
screen, typed_yet, deadline = b"", False, time.monotonic() + 120
while True:
    if not typed_yet and b"MFA code for" in screen:
        # Type only once the prompt has turned echo off (10 s at most, for a prompt that never
        # does): what the terminal shows then is what cove let it show.
        echo_until = time.monotonic() + 10
        while termios.tcgetattr(fd)[3] & termios.ECHO and time.monotonic() < echo_until:
            time.sleep(0.01)
        os.write(fd, typed.encode() + b"\n")
        typed_yet = True
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk or time.monotonic() > deadline:
        break
    screen += chunk
_, status = os.waitpid(pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "typed": typed_yet,
                  "screen": screen.decode("utf-8", "replace")}))
"#;
    let env: std::collections::BTreeMap<&str, &str> =
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let argv: Vec<&str> = std::iter::once(env!("CARGO_BIN_EXE_cove"))
        .chain(args.iter().copied())
        .collect();
    let out = crate::support::python(
        driver,
        &[
            &serde_json::to_string(&env).unwrap(),
            &serde_json::to_string(&argv).unwrap(),
            typed,
        ],
    );
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["typed"], true, "no MFA prompt showed: {out}");
    (
        out["code"].as_i64().unwrap() as i32,
        out["screen"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn the_mfa_prompt_reads_the_code_from_the_terminal_without_echo() {
    let g = Ground::start(&["--mfa-code-expected", CODE, "--mfa-serial-expected", SERIAL]);
    let cove = g.cove();
    let env: Vec<(String, String)> = cove
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
        .chain([("TERM".to_owned(), "xterm".to_owned())])
        .collect();
    let (code, screen) = type_at_mfa_prompt(
        &env,
        &[
            "--mfa-serial",
            SERIAL,
            "-t",
            &g.account("sandbox-a"),
            "--",
            "true",
        ],
        CODE,
    );
    assert!(
        screen.contains(&format!("MFA code for {SERIAL}:")),
        "{screen}"
    );
    assert_eq!(code, 0, "{screen}");
    assert!(
        !screen.contains(CODE),
        "the typed code was echoed: {screen}"
    );
    let sessions = g.session_params();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["TokenCode"], CODE, "the typed code was used");
    assert_eq!(g.calls("sts:AssumeRole"), 1);
}
