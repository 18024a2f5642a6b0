//! Running the command: credentials and environment of each child, where outcomes land, the
//! output contract, and secrets.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{Ground, Run};

#[test]
fn each_child_runs_as_its_own_account_with_the_aws_cli() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Deep"),
        "-t",
        &g.ou("Sandbox"),
        "--region",
        "us-east-1,eu-west-1",
        "--",
        "aws",
        "sts",
        "get-caller-identity",
        "--output",
        "json",
    ]));
    run.expect_code(0);
    let results = run.list("Results");
    assert_eq!(results.len(), 8, "4 accounts × 2 regions");
    for r in &results {
        assert_eq!(r["Result"]["Account"], r["Id"], "{r}");
        assert!(r["AssumeRoleSuccess"].as_bool().unwrap());
        assert_eq!(r["ExitCode"], 0);
    }
    assert_eq!(g.calls("sts:AssumeRole"), 4, "assumed once per account");
}

#[test]
fn role_and_session_name_reach_sts_and_the_records() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.account("root-a"),
        "--role",
        "AuditRole",
        "--role-session-name",
        "audit-run",
        "--",
        "aws",
        "sts",
        "get-caller-identity",
        "--output",
        "json",
    ]));
    run.expect_code(0);
    let r = &run.list("Results")[0];
    assert_eq!(r["RoleName"], "AuditRole");
    assert_eq!(r["RoleSessionName"], "audit-run");
    assert!(
        r["Result"]["Arn"]
            .as_str()
            .unwrap()
            .ends_with("assumed-role/AuditRole/audit-run"),
        "{r}"
    );
    let params = g.assume_params();
    assert_eq!(
        params[0]["RoleArn"],
        format!("arn:aws:iam::{}:role/AuditRole", g.account("root-a"))
    );
}

#[test]
fn session_name_defaults_to_the_role_name() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args(["-t", &g.account("root-a"), "--", "true"]));
    let r = &run.list("Results")[0];
    assert_eq!(r["RoleName"], "OrganizationAccountAccessRole");
    assert_eq!(r["RoleSessionName"], "OrganizationAccountAccessRole");
    assert_eq!(
        g.assume_params()[0]["RoleSessionName"],
        "OrganizationAccountAccessRole"
    );
}

#[test]
fn optional_assume_role_parameters_are_sent_only_when_given() {
    let g = Ground::start(&[]);
    Run::of(g.cove().args(["-t", &g.account("root-a"), "--", "true"])).expect_code(0);
    let bare = &g.assume_params()[0];
    for key in [
        "Policy",
        "PolicyArns.member.1.arn",
        "ExternalId",
        "DurationSeconds",
    ] {
        assert!(bare.get(key).is_none(), "{key} sent unasked: {bare}");
    }

    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    let run = Run::of(g.cove().args([
        "-t",
        &g.account("root-b"),
        "--policy",
        policy,
        "--policy-arn",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "--external-id",
        "ext-id-7f3a9",
        "--duration",
        "3600",
        "--",
        "true",
    ]));
    run.expect_code(0);
    let sent = &g.assume_params()[1];
    assert_eq!(sent["Policy"], policy);
    assert_eq!(
        sent["PolicyArns.member.1.arn"],
        "arn:aws:iam::aws:policy/ReadOnlyAccess"
    );
    assert_eq!(sent["ExternalId"], "ext-id-7f3a9");
    assert_eq!(sent["DurationSeconds"], "3600");
    for hidden in ["ext-id-7f3a9", "s3:*"] {
        assert!(
            !run.stdout.contains(hidden) && !run.stderr.contains(hidden),
            "{hidden} leaked"
        );
    }
}

#[test]
fn accounts_times_regions_gives_one_record_each() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--region",
        "us-east-1,eu-west-1",
        "--region",
        "ap-southeast-2",
        "--",
        "true",
    ]));
    run.expect_code(0);
    let pairs: BTreeSet<(String, String)> = run
        .records()
        .iter()
        .map(|r| (r["Id"].to_string(), r["Region"].to_string()))
        .collect();
    assert_eq!(run.records().len(), 6);
    assert_eq!(pairs.len(), 6, "no duplicates");
    assert_eq!(g.calls("sts:AssumeRole"), 2);
}

#[test]
fn region_defaults_to_the_credential_chain() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().env("AWS_REGION", "eu-central-1").args([
        "-t",
        &g.account("root-a"),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.list("Results")[0]["Region"], "eu-central-1");
}

#[test]
fn records_are_sorted_by_id_then_region() {
    let g = Ground::start(&[]);
    let run = Run::of(
        g.cove()
            .args(["--region", "us-west-2,eu-west-1,ap-south-1", "--", "true"]),
    );
    run.expect_code(0);
    let keys: Vec<(String, String)> = run
        .list("Results")
        .iter()
        .map(|r| (r["Id"].to_string(), r["Region"].to_string()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn child_that_exits_3_lands_in_exceptions_with_its_code_and_stderr() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.account("root-a"),
        "--",
        "sh",
        "-c",
        "echo partial; echo broke >&2; exit 3",
    ]));
    run.expect_code(1);
    let e = &run.list("Exceptions")[0];
    assert_eq!(e["ExitCode"], 3);
    assert_eq!(e["Stderr"], "broke\n");
    assert_eq!(e["Result"], "partial\n");
    assert_eq!(e["AssumeRoleSuccess"], true);
    assert!(e["ExceptionDetails"].as_str().unwrap().contains("code 3"));
    assert!(run.list("Results").is_empty());
}

#[test]
fn one_failing_target_does_not_stop_the_others() {
    let g = Ground::start(&[]);
    let bad = g.account("sandbox-a");
    let script = format!("[ \"$COVE_ACCOUNT_ID\" != {bad} ] || exit 4");
    let run = Run::of(
        g.cove()
            .args(["-t", &g.ou("Sandbox"), "--", "sh", "-c", &script]),
    );
    run.expect_code(1);
    assert_eq!(run.ids("Exceptions"), [bad]);
    assert_eq!(run.ids("Results"), g.ids(&["sandbox-b"]));
}

#[test]
fn fail_fast_starts_nothing_after_the_first_failure_and_reports_every_target() {
    let g = Ground::start(&[]);
    let run = Run::of(
        g.cove()
            .args(["--fail-fast", "--workers", "1", "--", "sh", "-c", "exit 5"]),
    );
    run.expect_code(1);
    let exceptions = run.list("Exceptions");
    assert_eq!(
        exceptions.len(),
        g.active_ids().len(),
        "every target reported"
    );
    let ran: Vec<&Value> = exceptions.iter().filter(|e| e["ExitCode"] == 5).collect();
    assert_eq!(ran.len(), 1, "only the first ran");
    let cancelled = exceptions
        .iter()
        .filter(|e| {
            e["ExceptionDetails"]
                .as_str()
                .unwrap()
                .contains("--fail-fast")
        })
        .count();
    assert_eq!(cancelled, exceptions.len() - 1);
}

#[test]
fn json_stdout_nests_under_result_and_text_stays_text() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--",
        "sh",
        "-c",
        r#"if [ "$COVE_ACCOUNT_NAME" = sandbox-a ]; then printf '{"account": "%s", "n": [1, 2]}\n' "$COVE_ACCOUNT_ID"; else echo plain text; fi"#,
    ]));
    run.expect_code(0);
    for r in run.list("Results") {
        if r["Name"] == "sandbox-a" {
            assert_eq!(r["Result"]["account"], r["Id"]);
            assert_eq!(r["Result"]["n"][1], 2);
        } else {
            assert_eq!(r["Result"], "plain text\n");
        }
    }
}

#[test]
fn command_not_on_path_lands_in_exceptions_per_target() {
    let g = Ground::start(&[]);
    let run = Run::of(
        g.cove()
            .args(["-t", &g.ou("Sandbox"), "--", "no-such-command-cove-test"]),
    );
    run.expect_code(1);
    let exceptions = run.list("Exceptions");
    assert_eq!(exceptions.len(), 2);
    for e in exceptions {
        assert!(e["ExitCode"].is_null());
        assert!(
            e["ExceptionDetails"]
                .as_str()
                .unwrap()
                .contains("could not start `no-such-command-cove-test`")
        );
    }
}

const ENV_PROBE: &str = r#"
for v in AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SECURITY_TOKEN AWS_SDK_LOAD_CONFIG AWS_CREDENTIAL_FILE \
         AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN AWS_ROLE_SESSION_NAME AWS_CONTAINER_CREDENTIALS_FULL_URI \
         AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_AUTHORIZATION_TOKEN \
         AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE; do
  eval "[ -z \"\${$v+x}\" ]" || echo "LEAKED $v"
done
[ "$AWS_ACCESS_KEY_ID" != testing ] || echo "CALLER KEY"
[ -n "$AWS_SECRET_ACCESS_KEY" ] && [ "$AWS_SECRET_ACCESS_KEY" != testing ] || echo "BAD SECRET"
[ -n "$AWS_SESSION_TOKEN" ] || echo "NO TOKEN"
echo "region=$AWS_REGION default=$AWS_DEFAULT_REGION cove=$COVE_REGION"
echo "account=$AWS_ACCOUNT_ID cove=$COVE_ACCOUNT_ID name=$COVE_ACCOUNT_NAME"
echo "expiration=$AWS_CREDENTIAL_EXPIRATION"
echo "keep=$KEEP_ME"
[ -z "${COVE_EXTERNAL_ID+x}" ] || echo "LEAKED COVE_EXTERNAL_ID"
[ -z "${COVE_ROLE+x}" ] || echo "LEAKED COVE_ROLE"
[ -z "${AWS_BEARER_TOKEN_BEDROCK+x}" ] || echo "LEAKED AWS_BEARER_TOKEN_BEDROCK"
"#;

#[test]
fn child_environment_drops_the_callers_profile_and_tokens_and_sets_the_targets() {
    let g = Ground::start(&[]);
    let mut cmd = g.cove();
    for var in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SECURITY_TOKEN",
        "AWS_SDK_LOAD_CONFIG",
        "AWS_CREDENTIAL_FILE",
        "AWS_ROLE_SESSION_NAME",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ] {
        cmd.env(var, "from-the-caller");
    }
    // Kept out of cove's own credential chain: these would make the caller's SDK reach out.
    cmd.env("KEEP_ME", "yes");
    cmd.env("COVE_EXTERNAL_ID", "secret-external-id");
    cmd.env("COVE_ROLE", "OrganizationAccountAccessRole");
    cmd.env("AWS_BEARER_TOKEN_BEDROCK", "caller-bedrock-key");
    let run = Run::of(cmd.args([
        "-t",
        &g.account("sandbox-a"),
        "--region",
        "eu-west-1",
        "--",
        "sh",
        "-c",
        ENV_PROBE,
    ]));
    run.expect_code(0);
    let out = run.list("Results")[0]["Result"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!out.contains("LEAKED"), "{out}");
    assert!(
        !out.contains("CALLER KEY") && !out.contains("BAD SECRET") && !out.contains("NO TOKEN"),
        "{out}"
    );
    assert!(
        out.contains("region=eu-west-1 default=eu-west-1 cove=eu-west-1"),
        "{out}"
    );
    let id = g.account("sandbox-a");
    assert!(
        out.contains(&format!("account={id} cove={id} name=sandbox-a")),
        "{out}"
    );
    assert!(
        out.contains("keep=yes"),
        "the rest of the environment is kept: {out}"
    );
    let expiration = out
        .lines()
        .find_map(|l| l.strip_prefix("expiration="))
        .unwrap();
    assert!(
        expiration.len() == 20 && expiration.ends_with('Z') && expiration.as_bytes()[10] == b'T',
        "ISO 8601: {expiration}"
    );
}

#[test]
fn aws_cli_child_works_despite_a_missing_profile_and_stale_token_in_the_parent() {
    let g = Ground::start(&[]);
    let run = Run::of(
        g.cove()
            .env("AWS_PROFILE", "does-not-exist")
            .env("AWS_SECURITY_TOKEN", "stale-token-from-the-caller")
            .args([
                "-t",
                &g.account("root-b"),
                "--",
                "aws",
                "sts",
                "get-caller-identity",
                "--output",
                "json",
            ]),
    );
    run.expect_code(0);
    let r = &run.list("Results")[0];
    assert_eq!(r["Result"]["Account"], r["Id"]);
}

#[test]
fn denied_accounts_land_in_failed_assume_role_and_never_run_the_command() {
    // Account IDs are random per ground, so the denial names accounts; ground.py resolves them.
    let g = Ground::start(&["--deny-assume-names", "sandbox-a,deep-b"]);
    let marks = tempfile::tempdir().unwrap();
    let script = format!("touch {}/$COVE_ACCOUNT_ID", marks.path().display());
    let run = Run::of(g.cove().args(["--", "sh", "-c", &script]));
    run.expect_code(1);
    let expected = g.ids(&["sandbox-a", "deep-b"]);
    assert_eq!(run.ids("FailedAssumeRole"), expected);
    for r in run.list("FailedAssumeRole") {
        assert_eq!(r["AssumeRoleSuccess"], false);
        assert!(r["ExitCode"].is_null() && r["Result"].is_null());
        assert!(
            r["ExceptionDetails"]
                .as_str()
                .unwrap()
                .contains("AccessDenied"),
            "{r}"
        );
        assert!(!marks.path().join(r["Id"].as_str().unwrap()).exists());
    }
    let mut ok = g.active_ids();
    ok.retain(|id| !expected.contains(id));
    assert_eq!(run.ids("Results"), ok);
    for id in &ok {
        assert!(marks.path().join(id).exists(), "{id} ran");
    }
}
