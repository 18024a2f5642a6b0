//! Bad input: exit code 2, a message naming the value, and not a single AWS call.

use crate::support::{Ground, Run};

/// (arguments before `--` or the whole tail, extra environment, text the message must contain)
type Case = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

const CASES: &[Case] = &[
    (
        &["-t", "12345678901", "--", "true"],
        &[],
        "`12345678901` has 11 digits; an account ID has exactly 12",
    ),
    (
        &["-t", "1234567890123", "--", "true"],
        &[],
        "`1234567890123` has 13 digits; an account ID has exactly 12",
    ),
    (
        &["-t", "１２３４５６７８９０１２", "--", "true"],
        &[],
        "`１２３４５６７８９０１２` is not a valid ID; expected a 12-digit account ID",
    ),
    (
        &["-t", "123456789012 ", "--", "true"],
        &[],
        "`123456789012 ` has leading or trailing white space",
    ),
    (
        &["-t", "ou-AB12-cdef3456", "--", "true"],
        &[],
        "`ou-AB12-cdef3456` is not a valid OU ID: expected `ou-` + 4 to 32 lowercase",
    ),
    (
        &["-t", "ou-ab12", "--", "true"],
        &[],
        "`ou-ab12` is not a valid OU ID: expected `ou-` + 4 to 32 lowercase",
    ),
    (
        &["-t", "r-ab!2", "--", "true"],
        &[],
        "`r-ab!2` is not a valid root ID: expected `r-` + 4 to 32 lowercase",
    ),
    (
        &["-i", "acct-1", "--", "true"],
        &[],
        "`acct-1` is not a valid ID; expected a 12-digit account ID",
    ),
    (
        &["-t", "111111111111,,222222222222", "--", "true"],
        &[],
        "empty ID: expected a 12-digit account ID",
    ),
    (
        &["--region", "eu-noth-1", "--", "true"],
        &[],
        "unknown region `eu-noth-1`; did you mean `eu-north-1`",
    ),
    (
        &["--region", "US-EAST-1", "--", "true"],
        &[],
        "invalid region `US-EAST-1`: expected a lowercase region name",
    ),
    (
        &["--region", "us-east-1 ", "--", "true"],
        &[],
        "invalid region `us-east-1 `: expected a lowercase region name",
    ),
    (
        &["--region", "mars-north-1", "--", "true"],
        &[],
        "unknown region `mars-north-1`",
    ),
    (
        &["--workers", "0", "--", "true"],
        &[],
        "invalid value '0' for '--workers <N|auto>': `0` is zero; expected a whole number from 1, or `auto`",
    ),
    (
        &["--workers", "many", "--", "true"],
        &[],
        "invalid value 'many' for '--workers <N|auto>': `many` is not a count; expected a whole number from 1, or `auto`",
    ),
    (
        &["--", "true"],
        &[("COVE_WORKERS", "automatic")],
        "`automatic` is not a count; expected a whole number from 1, or `auto`",
    ),
    (
        &["--workers", "auto", "--max-workers", "0", "--", "true"],
        &[],
        "invalid value '0' for '--max-workers <N>': 0 is not in 1..=",
    ),
    (
        &["--workers", "auto", "--max-memory", "10M", "--", "true"],
        &[],
        "invalid --max-memory `10485760` bytes: expected at least 64M",
    ),
    (
        &["--workers", "auto", "--", "true"],
        &[("COVE_MAX_MEMORY", "1M")],
        "in the environment variable COVE_MAX_MEMORY",
    ),
    (
        &["--max-memory", "1G", "--", "true"],
        &[],
        "--max-memory applies only to --workers auto, but --workers is 20: expected `--workers auto`, or no --max-memory",
    ),
    (
        &["--workers", "8", "--", "true"],
        &[("COVE_MAX_WORKERS", "64")],
        "the environment variable COVE_MAX_WORKERS (--max-workers) applies only to --workers auto, but --workers is 8",
    ),
    (
        &["--"],
        &[],
        "the following required arguments were not provided:\n  <COMMAND>...",
    ),
    (
        &[],
        &[],
        "the following required arguments were not provided:\n  <COMMAND>...",
    ),
    (
        &["--", ""],
        &[],
        "missing command: expected `-- COMMAND [ARGS...]`",
    ),
    (
        &["--policy", "{not json", "--", "true"],
        &[],
        "--policy value is not valid JSON (line 1, column 2)",
    ),
    (
        &["--policy", "@/nonexistent/policy.json", "--", "true"],
        &[],
        "cannot read --policy file `/nonexistent/policy.json`",
    ),
    (
        &["--policy", "@/", "--", "true"],
        &[],
        "cannot read --policy file `/`",
    ),
    (
        &["--duration", "899", "--", "true"],
        &[],
        "invalid value '899' for '--duration <SECONDS>': 899 is not in 900..=43200",
    ),
    (
        &["--duration", "43201", "--", "true"],
        &[],
        "invalid value '43201' for '--duration <SECONDS>': 43201 is not in 900..=43200",
    ),
    (
        &["--role", "", "--", "true"],
        &[],
        "invalid --role ``: the role name is empty",
    ),
    (
        &["--role", "has space", "--", "true"],
        &[],
        "invalid --role `has space`: expected an IAM role name",
    ),
    (
        &["--role-session-name", "x", "--", "true"],
        &[],
        "invalid --role-session-name `x`: expected 2 to 64 of",
    ),
    (
        &["--policy-arn", "ReadOnlyAccess", "--", "true"],
        &[],
        "invalid --policy-arn `ReadOnlyAccess`: expected an IAM policy ARN",
    ),
    (
        &["--", "true"],
        &[("AWS_MAX_ATTEMPTS", "0")],
        "invalid AWS_MAX_ATTEMPTS `0`: expected a whole number of at least 1",
    ),
    (
        &["--", "true"],
        &[("AWS_REGION", "")],
        "no region: pass --region",
    ),
    (
        &["--", "true"],
        &[("AWS_RETRY_MODE", "fast")],
        "invalid AWS_RETRY_MODE `fast`: expected `standard` or `adaptive`",
    ),
    (
        &["--timeout", "5x", "--", "true"],
        &[],
        "`5x` is not a duration",
    ),
    (
        &["--timeout", "0s", "--", "true"],
        &[],
        "`0s` is zero; expected a duration greater than zero",
    ),
    (
        &["--max-output-bytes", "0", "--", "true"],
        &[],
        "`0` is zero; expected a number of bytes",
    ),
    (
        &["--max-output-bytes", "lots", "--", "true"],
        &[],
        "`lots` has an unknown unit; expected a number of bytes",
    ),
    (
        &["--max-assume-rate", "0", "--", "true"],
        &[],
        "`0` is not a rate; expected calls per second",
    ),
    (
        &["-t", "r-", "--", "true"],
        &[],
        "`r-` is not a valid root ID: expected `r-` + 4 to 32 lowercase",
    ),
    (
        &["-t", "ou-", "--", "true"],
        &[],
        "`ou-` is not a valid OU ID: expected `ou-` + 4 to 32 lowercase",
    ),
    (
        &["--region", "all,us-east-1", "--", "true"],
        &[],
        "--region all cannot be combined with other regions",
    ),
    (
        &["--exclude-region", "eu-noth-1", "--", "true"],
        &[],
        "unknown region `eu-noth-1`",
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
        "--exclude-region leaves no region to run in",
    ),
    (
        &["--shard", "5/4", "--", "true"],
        &[],
        "`5/4` is not a shard; expected K/N",
    ),
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
        "the variable `NOPE_NOT_SET` is not set",
    ),
    (
        &["--filter-tag", "novalue", "--", "true"],
        &[],
        "`novalue` is not a tag filter; expected KEY=VALUE",
    ),
    (
        &["--filter-name", "(unclosed", "--", "true"],
        &[],
        "`(unclosed` is not a valid regular expression",
    ),
    (
        &["--rerun", "/nonexistent/run.json", "--", "true"],
        &[],
        "cannot read `/nonexistent/run.json`",
    ),
    (
        &["--output", "yaml", "--", "true"],
        &[],
        "invalid value 'yaml' for '--output <FORMAT>'",
    ),
    (
        &["--", "echo", "{acount_id}"],
        &[],
        "unknown placeholder `{acount_id}`",
    ),
    (
        &["--max-assume-rate", "1e-20", "--", "true"],
        &[],
        "`1e-20` is not a rate; expected calls per second",
    ),
    (
        &["--", "true"],
        &[("AWS_MAX_ATTEMPTS", " 3")],
        "invalid AWS_MAX_ATTEMPTS ` 3`: expected a whole number",
    ),
    (
        &["-r", "A", "--", "true"],
        &[],
        "defaults to the role name `A`",
    ),
    (
        &["--", "true"],
        &[("AWS_REGION", "eu-west-1 ")],
        "invalid region `eu-west-1 `: expected a lowercase region name",
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
    for line in [
        "Exit codes:",
        "  0    every target ran its command and it exited 0",
        "  1    at least one target is in Exceptions or FailedAssumeRole",
        "  2    bad input, or nothing could run",
        "  130  interrupted (Ctrl-C or SIGTERM)",
    ] {
        assert!(run.stdout.contains(line), "{line:?}: {}", run.stdout);
    }
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

/// `--sso-role` takes its credentials from the portal, which takes none of the AssumeRole
/// settings: each is refused, as a flag or as its variable, with `--sso-role` as a flag or as
/// `COVE_SSO_ROLE`; the message names both where they came from. A session policy dropped
/// silently would hand every child the whole permission set.
#[test]
fn assume_role_settings_are_refused_with_sso_role_from_flags_and_variables() {
    const EXTERNAL_ID: &str = "ext-sso-refused-4d1";
    // (flag, variable, value)
    let settings: &[(&str, &str, &str)] = &[
        ("--policy", "COVE_POLICY", r#"{"Version":"2012-10-17"}"#),
        (
            "--policy-arn",
            "COVE_POLICY_ARNS",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
        ),
        ("--external-id", "COVE_EXTERNAL_ID", EXTERNAL_ID),
        ("--duration", "COVE_DURATION", "900"),
        ("--role-session-name", "COVE_ROLE_SESSION_NAME", "cove-me"),
    ];
    let g = Ground::start(&["--scenario", "none"]);
    let mut checked = 0;
    let mut failures: Vec<String> = Vec::new();
    for &(flag, variable, value) in settings {
        for setting_from_env in [false, true] {
            for sso_from_env in [false, true] {
                let mut cmd = g.cove();
                if sso_from_env {
                    cmd.env("COVE_SSO_ROLE", "AdministratorAccess");
                } else {
                    cmd.args(["--sso-role", "AdministratorAccess"]);
                }
                if setting_from_env {
                    cmd.env(variable, value);
                } else {
                    cmd.args([flag, value]);
                }
                let run = Run::of(cmd.args(["--", "true"]));
                let case = format!(
                    "{} with {}",
                    if setting_from_env { variable } else { flag },
                    if sso_from_env {
                        "COVE_SSO_ROLE"
                    } else {
                        "--sso-role"
                    }
                );
                let sso = if sso_from_env {
                    "the environment variable COVE_SSO_ROLE (--sso-role)"
                } else {
                    "--sso-role"
                };
                let other = if setting_from_env {
                    format!("the environment variable {variable} ({flag})")
                } else {
                    flag.to_owned()
                };
                let expected = format!("{sso} cannot be combined with {other}: ");
                // Every case is tried, and every failure reported together.
                if run.code != 2 || !run.stderr.contains(&expected) {
                    failures.push(format!(
                        "{case}: exit {}, expected 2 and {expected:?} in: {}",
                        run.code, run.stderr
                    ));
                }
                assert!(run.stdout.is_empty(), "{case}: stdout is for data only");
                run.expect_no_secret([EXTERNAL_ID]);
                checked += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 20 combinations were not refused:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        checked, 20,
        "5 settings × flag or variable × --sso-role or COVE_SSO_ROLE"
    );
    assert_eq!(
        g.all_calls(),
        serde_json::json!({}),
        "a refused combination reached AWS"
    );
}
