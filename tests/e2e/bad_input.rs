//! Bad input: exit code 2, a message naming the value, and not a single AWS call.

use crate::support::{Ground, Run};

/// (arguments before `--` or the whole tail, extra environment, text the message must contain)
type Case = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

const CASES: &[Case] = &[
    (&["-t", "12345678901", "--", "true"], &[], "12345678901"),
    (&["-t", "1234567890123", "--", "true"], &[], "1234567890123"),
    (
        &["-t", "１２３４５６７８９０１２", "--", "true"],
        &[],
        "１２３４５６７８９０１２",
    ),
    (&["-t", "123456789012 ", "--", "true"], &[], "123456789012 "),
    (
        &["-t", "ou-AB12-cdef3456", "--", "true"],
        &[],
        "ou-AB12-cdef3456",
    ),
    (&["-t", "ou-ab12", "--", "true"], &[], "ou-ab12"),
    (&["-t", "r-ab!2", "--", "true"], &[], "r-ab!2"),
    (&["-i", "acct-1", "--", "true"], &[], "acct-1"),
    (
        &["-t", "111111111111,,222222222222", "--", "true"],
        &[],
        "empty ID",
    ),
    (
        &["--region", "eu-noth-1", "--", "true"],
        &[],
        "did you mean `eu-north-1`",
    ),
    (&["--region", "US-EAST-1", "--", "true"], &[], "US-EAST-1"),
    (&["--region", "us-east-1 ", "--", "true"], &[], "us-east-1 "),
    (
        &["--region", "mars-north-1", "--", "true"],
        &[],
        "mars-north-1",
    ),
    (&["--workers", "0", "--", "true"], &[], "0"),
    (&["--workers", "many", "--", "true"], &[], "many"),
    (&["--"], &[], "COMMAND"),
    (&[], &[], "COMMAND"),
    (&["--", ""], &[], "missing command"),
    (
        &["--policy", "{not json", "--", "true"],
        &[],
        "--policy value is not valid JSON",
    ),
    (
        &["--policy", "@/nonexistent/policy.json", "--", "true"],
        &[],
        "/nonexistent/policy.json",
    ),
    (&["--policy", "@/", "--", "true"], &[], "`/`"),
    (&["--duration", "899", "--", "true"], &[], "899"),
    (&["--duration", "43201", "--", "true"], &[], "43201"),
    (&["--role", "", "--", "true"], &[], "--role"),
    (&["--role", "has space", "--", "true"], &[], "has space"),
    (&["--role-session-name", "x", "--", "true"], &[], "`x`"),
    (
        &["--policy-arn", "ReadOnlyAccess", "--", "true"],
        &[],
        "ReadOnlyAccess",
    ),
    (
        &["--", "true"],
        &[("AWS_MAX_ATTEMPTS", "0")],
        "AWS_MAX_ATTEMPTS `0`",
    ),
    (&["--", "true"], &[("AWS_REGION", "")], "no region"),
    (
        &["--", "true"],
        &[("AWS_RETRY_MODE", "fast")],
        "AWS_RETRY_MODE `fast`",
    ),
    (&["--timeout", "5x", "--", "true"], &[], "5x"),
    (&["--timeout", "0s", "--", "true"], &[], "0s"),
    (&["--max-output-bytes", "0", "--", "true"], &[], "`0`"),
    (&["--max-output-bytes", "lots", "--", "true"], &[], "lots"),
    (&["--max-assume-rate", "0", "--", "true"], &[], "`0`"),
    (&["-t", "r-", "--", "true"], &[], "r-"),
    (&["-t", "ou-", "--", "true"], &[], "ou-"),
    (
        &["--region", "all,us-east-1", "--", "true"],
        &[],
        "--region all cannot be combined",
    ),
    (
        &["--exclude-region", "eu-noth-1", "--", "true"],
        &[],
        "eu-noth-1",
    ),
    (
        &[
            "--region",
            "us-east-1",
            "--exclude-region",
            "us-east-1",
            "--",
            "true",
        ],
        &[],
        "leaves no region",
    ),
    (&["--shard", "5/4", "--", "true"], &[], "5/4"),
    (
        &[
            "--shard-index-env",
            "NOPE_NOT_SET",
            "--shard-count",
            "2",
            "--",
            "true",
        ],
        &[],
        "NOPE_NOT_SET",
    ),
    (&["--filter-tag", "novalue", "--", "true"], &[], "novalue"),
    (
        &["--filter-name", "(unclosed", "--", "true"],
        &[],
        "(unclosed",
    ),
    (
        &["--rerun", "/nonexistent/run.json", "--", "true"],
        &[],
        "/nonexistent/run.json",
    ),
    (&["--output", "yaml", "--", "true"], &[], "yaml"),
    (&["--", "echo", "{acount_id}"], &[], "{acount_id}"),
    (&["--max-assume-rate", "1e-20", "--", "true"], &[], "1e-20"),
    (
        &["--", "true"],
        &[("AWS_MAX_ATTEMPTS", " 3")],
        "AWS_MAX_ATTEMPTS ` 3`",
    ),
    (
        &["-r", "A", "--", "true"],
        &[],
        "defaults to the role name `A`",
    ),
    (
        &["--", "true"],
        &[("AWS_REGION", "eu-west-1 ")],
        "eu-west-1 ",
    ),
];

#[test]
fn bad_input_exits_2_naming_the_value_before_any_aws_call() {
    let g = Ground::start(&[]);
    for (args, env, expected) in CASES {
        let mut cmd = g.cove();
        for (k, v) in *env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let run = Run::of(cmd.args(*args));
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{args:?}: message should contain {expected:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{args:?}: stdout is for data only");
    }
    assert_eq!(
        g.all_calls(),
        serde_json::json!({}),
        "bad input reached AWS"
    );
}

#[test]
fn help_documents_the_exit_codes() {
    let g = Ground::start(&["--scenario", "none"]);
    let run = Run::of(g.cove().arg("--help"));
    run.expect_code(0);
    for code in ["0 ", "1 ", "2 ", "130"] {
        assert!(run.stdout.contains(code), "{code}: {}", run.stdout);
    }
    assert!(run.stdout.contains("Exit codes"));
}

#[test]
fn bad_retry_settings_in_the_profile_exit_2_instead_of_panicking() {
    let g = Ground::start(&["--scenario", "none"]);
    let config = g.home.path().join("aws-config");
    std::fs::write(&config, "[default]\nmax_attempts = 0\n").unwrap();
    let run = Run::of(
        g.cove()
            .env("AWS_CONFIG_FILE", &config)
            .args(["--", "true"]),
    );
    run.expect_code(2);
    assert!(
        run.stderr.contains("max_attempts in the AWS profile `0`"),
        "{}",
        run.stderr
    );
    assert_eq!(g.all_calls(), serde_json::json!({}));
}
