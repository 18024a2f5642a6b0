//! Secrets typed on the command line can be read by every local user in the process list:
//! `--external-id @FILE` keeps the external ID out of it, and a typed `--external-id` or
//! `--mfa-code` is warned about once, without the secret.

use crate::support::{Ground, Run};

const WARNING: &str = "can be read by every user of this machine in the process list";

fn warnings(run: &Run) -> usize {
    run.stderr.matches(WARNING).count()
}

#[test]
fn an_external_id_file_reaches_aws_trimmed_and_is_never_printed() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("external-id");
    let secret = "ext-from-file-Qv81";
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let from_file = format!("@{}", file.display());
    let target = g.account("sandbox-a");

    let run = Run::of(
        g.cove()
            .args(["-t", &target, "--external-id", &from_file, "--", "true"]),
    );
    run.expect_code(0);
    assert_eq!(run.ids("Results"), std::slice::from_ref(&target));
    let sent = g.assume_params();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0]["ExternalId"], secret,
        "the file's content, without its line break, is the external ID"
    );
    assert_eq!(
        warnings(&run),
        0,
        "a file keeps the secret out of the process list: {}",
        run.stderr
    );
    run.expect_no_secret([secret]);

    // COVE_EXTERNAL_ID may name a file too.
    let run = Run::of(
        g.cove()
            .env("COVE_EXTERNAL_ID", &from_file)
            .args(["-t", &target, "--", "true"]),
    );
    run.expect_code(0);
    assert_eq!(g.assume_params()[1]["ExternalId"], secret);
    assert_eq!(warnings(&run), 0, "{}", run.stderr);
    run.expect_no_secret([secret]);

    // An empty or unreadable file is bad input, named, before any AWS call.
    let calls = g.all_calls();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    for (path, expected) in [
        (
            empty.clone(),
            format!("--external-id file `{}` is empty", empty.display()),
        ),
        (
            dir.path().join("missing"),
            "starts with `@`, so it names a file to read the external ID from, and there is no such file".to_owned(),
        ),
        (
            dir.path().to_owned(),
            format!("cannot read --external-id file `{}`", dir.path().display()),
        ),
    ] {
        let arg = format!("@{}", path.display());
        let run = Run::of(
            g.cove()
                .args(["-t", &target, "--external-id", &arg, "--", "true"]),
        );
        run.expect_code(2);
        assert!(
            run.stderr.contains(&expected),
            "expected {expected:?}: {}",
            run.stderr
        );
    }
    assert_eq!(g.all_calls(), calls, "bad input reached AWS");
}

#[test]
fn a_typed_external_id_or_mfa_code_is_warned_about_once_without_the_secret() {
    const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";
    const CODE: &str = "864209";
    let g = Ground::start(&["--mfa-code-expected", CODE]);
    let target = g.account("sandbox-a");
    let secret = "ext-typed-Hw27p";

    let run = Run::of(
        g.cove()
            .args(["-t", &target, "--external-id", secret, "--", "true"]),
    );
    run.expect_code(0);
    assert_eq!(warnings(&run), 1, "one warning: {}", run.stderr);
    assert!(
        run.stderr.contains("--external-id on the command line"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("COVE_EXTERNAL_ID or --external-id @FILE"),
        "{}",
        run.stderr
    );
    run.expect_no_secret([secret]);

    let run = Run::of(
        g.cove()
            .env("COVE_EXTERNAL_ID", secret)
            .args(["-t", &target, "--", "true"]),
    );
    run.expect_code(0);
    assert_eq!(
        warnings(&run),
        0,
        "the variable is not in the process list: {}",
        run.stderr
    );
    run.expect_no_secret([secret]);

    // Both typed, with several targets: still one warning, naming both, quoting neither.
    let run = Run::of(g.cove().args([
        "--mfa-serial",
        SERIAL,
        "--mfa-code",
        CODE,
        "--external-id",
        secret,
        "-t",
        &g.ou("Sandbox"),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["sandbox-a", "sandbox-b"]));
    assert_eq!(warnings(&run), 1, "one warning for the run: {}", run.stderr);
    assert!(
        run.stderr
            .contains("--external-id and --mfa-code on the command line"),
        "{}",
        run.stderr
    );
    run.expect_no_secret([secret, CODE]);
    run.expect_no_secret(g.secrets());
}
