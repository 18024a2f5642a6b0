//! Logs that explain a failure (`-v`, `COVE_LOG`), errors a person can act on, and no secret in
//! any of it, even at the most verbose level with the AWS SDK's own trace output.

use std::path::Path;

use crate::support::{Ground, Run};

const EXTERNAL_ID: &str = "ext-id-9f3c2a77d1";
const POLICY_MARKER: &str = "PolicyMarker5b81e0";

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_most_verbose_log_shows_every_call_and_child_and_no_secret() {
    let g = Ground::start(&["--deny-assume-names", "deep-b"]);
    let out = tempfile::tempdir().unwrap();
    let tokens = tempfile::tempdir().unwrap();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{POLICY_MARKER}","Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}}]}}"#
    );
    let script = format!(
        "printf %s \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\" > {}/$COVE_ACCOUNT_ID; aws sts get-caller-identity --output json",
        tokens.path().display()
    );
    let run = Run::of(
        g.cove()
            .args([
                "-vvv",
                "-t",
                &g.ou("Workloads"),
                "--external-id",
                EXTERNAL_ID,
            ])
            .args(["--policy", &policy, "--child-credentials", "endpoint"])
            .arg("--output-dir")
            .arg(out.path())
            .args(["--", "sh", "-c", &script]),
    );
    run.expect_code(1);
    assert!(!run.list("Results").is_empty() && !run.list("FailedAssumeRole").is_empty());

    // The log says what happened: each AWS call, each child, and the SDK's own trace.
    for needle in [
        "operation=\"AssumeRole\"",
        "operation=\"ListAccountsForParent\"",
        "AWS call attempt",
        "attempt=1",
        "latency_ms=",
        &format!("account=\"{}\"", g.account("prod-a")),
        "AWS call failed",
        "error_code=\"AccessDenied\"",
        "child started",
        "child ended",
        "TRACE",
    ] {
        assert!(run.stderr.contains(needle), "the log lacks {needle:?}");
    }

    let mut secrets = g.secrets();
    assert!(secrets.len() >= 8, "moto issued secrets: {secrets:?}");
    let mut tokens_seen = 0;
    for file in files_under(tokens.path()) {
        let token = std::fs::read_to_string(file).unwrap();
        assert!(token.len() >= 32, "each child had an endpoint token");
        secrets.push(token);
        tokens_seen += 1;
    }
    assert!(tokens_seen >= 3, "the children wrote their tokens");
    secrets.extend([
        EXTERNAL_ID.to_owned(),
        POLICY_MARKER.to_owned(),
        policy.clone(),
    ]);
    let mut places = vec![
        ("stdout".to_owned(), run.stdout.clone()),
        ("stderr".to_owned(), run.stderr.clone()),
    ];
    for file in files_under(out.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        places.push((file.display().to_string(), text));
    }
    for (place, text) in &places {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret ({} characters, starting {:?}) is in {place}",
                secret.len(),
                &secret[..4.min(secret.len())]
            );
        }
    }
}

#[test]
fn with_no_credentials_at_all_the_error_says_what_to_do_and_v_shows_the_cause() {
    let g = Ground::start(&[]);
    let no_keys = |verbose: bool| {
        let mut cmd = g.cove();
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        if verbose {
            cmd.arg("-v");
        }
        Run::of(cmd.args(["--", "true"]))
    };
    let run = no_keys(false);
    run.expect_code(2);
    assert!(
        run.stderr.contains("no AWS credentials found")
            && run.stderr.contains("aws configure")
            && run.stderr.contains("aws sso login"),
        "{}",
        run.stderr
    );
    for debug_noise in ["DispatchFailure", "ConnectorError", "Some(", "{ source"] {
        assert!(!run.stderr.contains(debug_noise), "{}", run.stderr);
    }
    assert!(
        run.stderr.lines().count() <= 2,
        "one short error: {}",
        run.stderr
    );
    let verbose = no_keys(true);
    verbose.expect_code(2);
    assert!(
        verbose.stderr.contains("cause detail=")
            && verbose
                .stderr
                .contains("no providers in chain provided credentials"),
        "-v adds the chain of causes: {}",
        verbose.stderr
    );
}

#[test]
fn an_unreachable_endpoint_is_named_as_such() {
    let g = Ground::start(&[]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let run = Run::of(
        g.cove()
            .env("AWS_ENDPOINT_URL", &closed)
            .args(["--", "true"]),
    );
    run.expect_code(2);
    assert!(
        run.stderr.contains("could not reach AWS") && run.stderr.contains("AWS_ENDPOINT_URL"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("DispatchFailure"), "{}", run.stderr);
}

#[test]
fn a_bad_log_filter_is_an_input_error_naming_it() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().env("COVE_LOG", "cove=loud").args(["--", "true"]));
    run.expect_code(2);
    assert!(run.stderr.contains("`cove=loud`"), "{}", run.stderr);
    assert!(g.all_calls().as_object().unwrap().is_empty(), "no AWS call");
}
