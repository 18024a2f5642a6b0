//! Running the command: credentials and environment of each child, where outcomes land, the
//! output contract, and secrets.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{Ground, Run, SpawnPiped, WHO_AM_I};

#[test]
fn each_child_runs_as_its_own_account_with_the_aws_cli() {
    let g = Ground::start(&[]);
    let run = Run::of(
        g.cove()
            .args([
                "-t",
                &g.ou("Deep"),
                "-t",
                &g.ou("Sandbox"),
                "--region",
                "us-east-1,eu-west-1",
                "--",
            ])
            .args(WHO_AM_I),
    );
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
    let run = Run::of(
        g.cove()
            .args([
                "-t",
                &g.account("root-a"),
                "--role",
                "AuditRole",
                "--role-session-name",
                "audit-run",
                "--",
            ])
            .args(WHO_AM_I),
    );
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
    assert_eq!(e["ExceptionDetails"], "command exited with code 3");
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

/// Removed from every child's environment (`child_env::REMOVED`), written out here so that a
/// name dropped there fails this test.
const REMOVED_VARIABLES: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SECURITY_TOKEN",
    "AWS_SDK_LOAD_CONFIG",
    "AWS_CREDENTIAL_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// Set by cove itself for each child; every other `COVE_*` name is the caller's.
const SET_FOR_THE_CHILD: &[&str] = &["COVE_ACCOUNT_ID", "COVE_ACCOUNT_NAME", "COVE_REGION"];

/// In every value the parent sets, so a leak shows whatever name it arrives under.
const PARENT_MARK: &str = "from-the-parent-q7x";

#[test]
fn child_environment_drops_every_removed_variable_and_prefix_and_sets_the_targets() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let nowhere = |name: &str| dir.path().join(format!("{PARENT_MARK}-{name}"));
    let mut cmd = g.cove();
    // Each value is harmless for cove's own credential chain, which must still use the
    // ground's dummy keys: files that do not exist, a URI nothing listens on.
    for var in REMOVED_VARIABLES {
        let value = match *var {
            "AWS_CREDENTIAL_FILE"
            | "AWS_WEB_IDENTITY_TOKEN_FILE"
            | "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" => nowhere(var).to_str().unwrap().to_owned(),
            "AWS_ROLE_ARN" => format!("arn:aws:iam::123456789012:role/{PARENT_MARK}"),
            "AWS_CONTAINER_CREDENTIALS_FULL_URI" => format!("http://127.0.0.1:9/{PARENT_MARK}"),
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" => format!("/{PARENT_MARK}"),
            _ => PARENT_MARK.to_owned(),
        };
        cmd.env(var, value);
    }
    for var in [
        "COVE_EXTERNAL_ID",
        "COVE_PIN_PROBE",
        "COVE_REGION",
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_BEARER_TOKEN_PIN_PROBE",
    ] {
        cmd.env(var, PARENT_MARK);
    }
    cmd.env("KEEP_ME", "yes");
    let run = Run::of(cmd.args([
        "-t",
        &g.account("sandbox-a"),
        "--region",
        "eu-west-1",
        "--",
        "env",
    ]));
    run.expect_code(0);
    let out = run.list("Results")[0]["Result"]
        .as_str()
        .unwrap()
        .to_owned();
    let env: std::collections::BTreeMap<&str, &str> =
        out.lines().filter_map(|l| l.split_once('=')).collect();
    for var in REMOVED_VARIABLES {
        assert!(!env.contains_key(var), "{var} reached the child: {out}");
    }
    for name in env.keys() {
        assert!(
            !name.starts_with("AWS_BEARER_TOKEN_"),
            "{name} reached the child"
        );
        assert!(
            !name.starts_with("COVE_") || SET_FOR_THE_CHILD.contains(name),
            "{name} reached the child"
        );
    }
    assert!(!out.contains(PARENT_MARK), "a parent's value leaked: {out}");

    let id = g.account("sandbox-a");
    for (var, value) in [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("COVE_REGION", "eu-west-1"),
        ("AWS_ACCOUNT_ID", id.as_str()),
        ("COVE_ACCOUNT_ID", id.as_str()),
        ("COVE_ACCOUNT_NAME", "sandbox-a"),
        ("KEEP_ME", "yes"),
    ] {
        assert_eq!(env.get(var).copied(), Some(value), "{var}: {out}");
    }
    assert!(
        env.get("AWS_ACCESS_KEY_ID")
            .is_some_and(|k| !k.is_empty() && *k != crate::support::STARTING_KEY_ID),
        "the target's key, not the caller's: {out}"
    );
    for (var, caller) in [
        ("AWS_SECRET_ACCESS_KEY", crate::support::STARTING_SECRET),
        ("AWS_SESSION_TOKEN", crate::support::STARTING_SESSION_TOKEN),
    ] {
        assert!(
            env.get(var).is_some_and(|v| !v.is_empty() && *v != caller),
            "{var}: {out}"
        );
    }
    let expiration = env["AWS_CREDENTIAL_EXPIRATION"];
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
            .args(["-t", &g.account("root-b"), "--"])
            .args(WHO_AM_I),
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

#[test]
fn external_id_and_policy_quoted_in_an_aws_error_are_redacted_everywhere() {
    // The ground denies sandbox-a with a message that quotes the ExternalId and the Policy.
    let g = Ground::start(&["--deny-assume-quoting-names", "sandbox-a"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let external_id = "ext-id-q9z7w2";
    // The Sid has no JSON quoting to hide behind: found in any output that carries the policy.
    let sid = "PinPolicySid4k2";
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{sid}","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}]}}"#
    );
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--external-id",
        external_id,
        "--policy",
        &policy,
        "--output-dir",
        out.to_str().unwrap(),
        "--",
        "echo",
        "ran",
    ]));
    run.expect_code(1);
    let denied = g.account("sandbox-a");
    assert_eq!(run.ids("FailedAssumeRole"), g.ids(&["sandbox-a"]));
    assert_eq!(run.ids("Results"), g.ids(&["sandbox-b"]));
    let sent = g
        .assume_params()
        .into_iter()
        .find(|p| p["RoleArn"].as_str().unwrap().contains(&denied))
        .unwrap();
    assert_eq!(sent["ExternalId"], external_id, "the ground got the secret");
    assert_eq!(sent["Policy"], policy.as_str());
    let mut files = vec![out.clone()];
    let mut searched = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        for secret in [external_id, sid] {
            assert!(!text.contains(secret), "{secret} in {}", path.display());
        }
        searched += 1;
    }
    assert!(
        searched >= 3,
        "the output dir holds the document and the streams"
    );
    for secret in [external_id, sid, policy.as_str()] {
        assert!(!run.stdout.contains(secret), "{secret} in stdout");
        assert!(!run.stderr.contains(secret), "{secret} in stderr");
    }
    let details = run.list("FailedAssumeRole")[0]["ExceptionDetails"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        details.contains("AccessDenied") && details.contains("with ExternalId <redacted>"),
        "the error is kept, the secrets cut out: {details}"
    );
}

#[test]
fn fail_fast_stops_the_commands_already_running_and_starts_no_more() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (ran, pids) = (dir.path().join("ran"), dir.path().join("pids"));
    std::fs::create_dir(&ran).unwrap();
    std::fs::create_dir(&pids).unwrap();
    // Five targets, three at a time. The first child to take the lock fails once the other two
    // running children have written their PIDs; those two would sleep for ever.
    let script = format!(
        r#"touch {ran}/$COVE_ACCOUNT_ID
if mkdir {lock} 2>/dev/null; then
  while [ "$(ls {pids} | wc -l)" -lt 2 ]; do sleep 0.05; done
  exit 3
fi
sleep 1000 & echo $! > {pids}/$COVE_ACCOUNT_ID; echo $$ >> {pids}/$COVE_ACCOUNT_ID; wait"#,
        ran = ran.display(),
        pids = pids.display(),
        lock = dir.path().join("failer").display()
    );
    let child = g
        .cove()
        .args([
            "-t",
            &g.ou("Workloads"),
            "--fail-fast",
            "--workers",
            "3",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .spawn_piped();
    let run = crate::support::finish_within(
        child,
        std::time::Duration::from_secs(30),
        "the run to end once --fail-fast stopped it (a command left running, or a new one started)",
        || crate::faults::kill_all(&crate::faults::pids_in(&pids)),
    );
    run.expect_code(1);
    assert!(run.list("Results").is_empty());
    let exceptions = run.list("Exceptions");
    assert_eq!(exceptions.len(), 5, "every target reported once");
    let names = |dir: &std::path::Path| -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        ids.sort();
        ids
    };
    let started = names(&ran);
    let stopped = names(&pids);
    assert_eq!(
        started.len(),
        3,
        "only the first three started: {started:?}"
    );
    assert_eq!(stopped.len(), 2);
    for e in &exceptions {
        let id = e["Id"].as_str().unwrap();
        let details = e["ExceptionDetails"].as_str().unwrap();
        if e["ExitCode"] == 3 {
            assert!(started.iter().any(|s| s == id), "{e}");
            continue;
        }
        assert!(e["ExitCode"].is_null(), "{e}");
        assert!(
            details.contains("cancelled: --fail-fast stopped the run"),
            "{e}"
        );
        if stopped.iter().any(|s| s == id) {
            assert_eq!(e["AssumeRoleSuccess"], true, "stopped while running: {e}");
        } else {
            assert!(!started.iter().any(|s| s == id), "never started: {e}");
        }
    }
    assert_eq!(
        exceptions.iter().filter(|e| e["ExitCode"] == 3).count(),
        1,
        "one failure"
    );
    crate::faults::assert_all_dead(&crate::faults::pids_in(&pids));
}
