//! Past one machine and one run: shards and merge, reruns, filters, the calling account.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{Ground, Run, SpawnPiped, WHO_AM_I, id_regions};

fn without_durations(mut doc: Value) -> Value {
    for list in ["Results", "Exceptions", "FailedAssumeRole"] {
        for record in doc[list].as_array_mut().unwrap() {
            record.as_object_mut().unwrap().remove("DurationMs");
        }
    }
    doc
}

#[test]
fn four_shards_cover_a_single_run_exactly_and_merge_back_into_it() {
    let g = Ground::start(&["--extra-root-accounts", "9"]);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--region",
        "us-east-1,eu-west-1",
        "--",
        "sh",
        "-c",
        "echo {account_id}",
    ];
    let single = Run::of(g.cove().args(args));
    single.expect_code(0);

    let mut files = Vec::new();
    let mut sizes = Vec::new();
    for k in 1..=4 {
        let shard = format!("{k}/4");
        let format = if k % 2 == 0 { "jsonl" } else { "json" };
        let run = Run::of(
            g.cove()
                .env("COVE_SHARD", &shard)
                .args(["-o", format])
                .args(args),
        );
        run.expect_code(0);
        let path = dir.path().join(format!("shard-{k}.{format}"));
        std::fs::write(&path, &run.stdout).unwrap();
        files.push(path);
        let ids: BTreeSet<String> = run
            .stdout
            .lines()
            .flat_map(|l| serde_json::from_str::<Value>(l).ok())
            .flat_map(|v| {
                if v.get("Results").is_some() {
                    v["Results"].as_array().unwrap().clone()
                } else if v.get("Id").is_some() {
                    vec![v]
                } else {
                    vec![]
                }
            })
            .map(|r| r["Id"].as_str().unwrap().to_owned())
            .collect();
        sizes.push(ids.len());
    }
    assert!(
        sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
        "{sizes:?}"
    );

    let merged = Run::of(g.cove().arg("merge").args(&files));
    merged.expect_code(0);
    assert_eq!(
        without_durations(merged.doc()),
        without_durations(single.doc())
    );

    let overlap = Run::of(
        g.cove()
            .arg("merge")
            .args([&files[0], &files[1], &files[0]]),
    );
    overlap.expect_code(2);
    assert!(
        overlap.stderr.contains("shard-1.json"),
        "{}",
        overlap.stderr
    );
}

#[test]
fn shard_index_can_come_from_a_kubernetes_style_variable() {
    let g = Ground::start(&[]);
    let by_flag = Run::of(g.cove().args(["--shard", "2/3", "--dry-run", "--", "true"]));
    let by_env = Run::of(g.cove().env("JOB_COMPLETION_INDEX", "1").args([
        "--shard-index-env",
        "JOB_COMPLETION_INDEX",
        "--shard-count",
        "3",
        "--dry-run",
        "--",
        "true",
    ]));
    by_flag.expect_code(0);
    by_env.expect_code(0);
    // The same targets; `Created` is each dry run's own clock, which may cross a second.
    let targets = |run: &Run| run.doc()["Targets"].clone();
    assert_eq!(targets(&by_flag), targets(&by_env));
    assert!(!targets(&by_flag).as_array().unwrap().is_empty());
    let bad = Run::of(g.cove().env("JOB_COMPLETION_INDEX", "3").args([
        "--shard-index-env",
        "JOB_COMPLETION_INDEX",
        "--shard-count",
        "3",
        "--",
        "true",
    ]));
    bad.expect_code(2);
    assert!(
        bad.stderr
            .contains("`3` is not a shard index; expected a whole number from 0 to 2"),
        "{}",
        bad.stderr
    );
}

#[test]
fn merge_exits_like_the_single_run_and_rejects_foreign_files() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let run = Run::of(g.cove().args(["-t", &g.ou("Sandbox"), "--", "false"]));
    run.expect_code(1);
    let failed = dir.path().join("failed.json");
    std::fs::write(&failed, &run.stdout).unwrap();
    Run::of(g.cove().arg("merge").arg(&failed)).expect_code(1);
    let foreign = dir.path().join("foreign.json");
    std::fs::write(&foreign, r#"{"Items": []}"#).unwrap();
    let bad = Run::of(g.cove().arg("merge").arg(&foreign));
    bad.expect_code(2);
    assert!(bad.stderr.contains("foreign.json") && bad.stderr.contains("not a cove output"));
}

#[test]
fn rerun_targets_exactly_what_failed_once_the_denial_is_lifted() {
    let g = Ground::start(&["--deny-assume-names", "sandbox-a,deep-b"]);
    let dir = tempfile::tempdir().unwrap();
    let script =
        r#"[ "$COVE_ACCOUNT_NAME" != root-a ] || [ "$COVE_REGION" != eu-west-1 ] || exit 3"#;
    let first = Run::of(g.cove().args([
        "--region",
        "us-east-1,eu-west-1",
        "-o",
        "jsonl",
        "--",
        "sh",
        "-c",
        script,
    ]));
    first.expect_code(1);
    let previous = dir.path().join("previous.jsonl");
    std::fs::write(&previous, &first.stdout).unwrap();

    g.clear_faults();
    let fixed = "true";
    let rerun = Run::of(g.cove().args([
        "--rerun",
        previous.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        fixed,
    ]));
    rerun.expect_code(0);
    let pairs: BTreeSet<(String, String)> = id_regions(&rerun.records()).into_iter().collect();
    let mut expected = BTreeSet::new();
    for name in ["sandbox-a", "deep-b"] {
        for region in ["us-east-1", "eu-west-1"] {
            expected.insert((g.account(name), region.to_owned()));
        }
    }
    expected.insert((g.account("root-a"), "eu-west-1".to_owned()));
    assert_eq!(pairs, expected);
    assert_eq!(rerun.records().len(), 5);

    let only = Run::of(g.cove().args([
        "--rerun",
        previous.to_str().unwrap(),
        "--rerun-only",
        "exceptions",
        "--",
        "true",
    ]));
    only.expect_code(0);
    assert_eq!(only.ids("Results"), [g.account("root-a")]);

    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "hello\n").unwrap();
    let bad = Run::of(
        g.cove()
            .args(["--rerun", junk.to_str().unwrap(), "--", "true"]),
    );
    bad.expect_code(2);
    assert!(
        bad.stderr.contains("junk.txt") && bad.stderr.contains("not a cove output"),
        "{}",
        bad.stderr
    );
}

#[test]
fn filters_select_exactly_the_expected_accounts() {
    let g = Ground::start(&[]);
    let dry = |args: &[&str]| {
        let run = Run::of(g.cove().arg("--dry-run").args(args).args(["--", "true"]));
        run.expect_code(0);
        let mut ids: Vec<String> = run.doc()["Targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["Id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        (ids, run.stderr)
    };
    let (ids, stderr) = dry(&["--filter-tag", "env=prod"]);
    assert_eq!(ids, g.ids(&["prod-a", "core-a"]));
    assert!(stderr.contains("filters kept 2 of 9 accounts"), "{stderr}");
    let (ids, _) = dry(&["--filter-tag", "env=dev", "--filter-tag", "team=core"]);
    assert_eq!(ids, g.ids(&["sandbox-a"]));
    let (ids, _) = dry(&["--filter-name", "^(deep|core)-"]);
    assert_eq!(ids, g.ids(&["core-a", "deep-a", "deep-b"]));
    let (ids, _) = dry(&["--filter-email", "^root-", "--filter-name", "b$"]);
    assert_eq!(ids, g.ids(&["root-b"]));
    let tag_calls_before = g.calls("organizations:ListTagsForResource");
    dry(&["--filter-name", "^sandbox-", "--filter-tag", "env=dev"]);
    assert_eq!(
        g.calls("organizations:ListTagsForResource") - tag_calls_before,
        2,
        "tags read once per account left after the other filters"
    );
    let (_, _) = dry(&["--filter-name", "x"]);
    assert_eq!(
        g.calls("organizations:ListTagsForResource") - tag_calls_before,
        2,
        "no tag calls without a tag filter"
    );
}

#[test]
fn include_caller_runs_in_the_calling_account_through_its_role() {
    let g = Ground::start(&[]);
    let run = Run::of(
        g.cove()
            .args([
                "--include-caller",
                "-t",
                &format!("{},{}", g.caller(), g.account("root-a")),
                "--",
            ])
            .args(WHO_AM_I),
    );
    run.expect_code(0);
    let caller = run
        .list("Results")
        .into_iter()
        .find(|r| r["Id"] == g.caller().as_str())
        .expect("the caller is a target");
    assert!(
        caller["Result"]["Arn"]
            .as_str()
            .unwrap()
            .contains("assumed-role/OrganizationAccountAccessRole/"),
        "ran with the role's credentials, not the caller's: {caller}"
    );
    let params = g.assume_params();
    assert!(
        params
            .iter()
            .any(|p| p["RoleArn"].as_str().unwrap().contains(&g.caller()))
    );
}

#[test]
fn region_all_runs_each_accounts_enabled_regions_and_reports_denials() {
    // moto has no Account API: the ground answers account:ListRegions itself.
    let g = Ground::start(&[
        "--opt-in-names",
        "sandbox-a",
        "--deny-list-regions-names",
        "deep-b",
    ]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "-t",
        &g.ou("Deep"),
        "--region",
        "all",
        "--exclude-region",
        "eu-west-1",
        "--",
        "sh",
        "-c",
        "echo $AWS_REGION",
    ]));
    run.expect_code(1);
    let pairs: BTreeSet<(String, String)> = run
        .list("Results")
        .iter()
        .map(|r| {
            (
                r["Name"].as_str().unwrap().to_owned(),
                r["Region"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("sandbox-a", "us-east-1"),
        ("sandbox-a", "ap-east-1"),
        ("sandbox-b", "us-east-1"),
        ("deep-a", "us-east-1"),
    ]
    .iter()
    .map(|(a, r)| (a.to_string(), r.to_string()))
    .collect();
    assert_eq!(
        pairs, expected,
        "opt-in region where enabled, eu-west-1 excluded"
    );
    let failed = run.list("FailedAssumeRole");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["Name"], "deep-b");
    assert_eq!(failed[0]["AssumeRoleSuccess"], true);
    assert!(
        failed[0]["ExceptionDetails"]
            .as_str()
            .unwrap()
            .contains("account:ListRegions")
    );
    assert_eq!(g.calls("account:ListRegions"), 4, "once per account");
    assert_eq!(
        g.calls("sts:AssumeRole"),
        4,
        "the role is assumed once per account"
    );
}

#[test]
fn region_all_with_fail_fast_runs_nothing_after_a_discovery_failure() {
    let g = Ground::start(&["--deny-list-regions-names", "deep-b"]);
    let run = Run::of(g.cove().args([
        "--region",
        "all",
        "--fail-fast",
        "-t",
        &g.ou("Deep"),
        "--",
        "true",
    ]));
    run.expect_code(1);
    assert!(run.list("Results").is_empty(), "{}", run.stdout);
    assert_eq!(run.list("FailedAssumeRole").len(), 1);
    assert_eq!(
        run.list("Exceptions").len(),
        2,
        "deep-a's two regions, cancelled"
    );
}

#[test]
fn interrupting_region_discovery_still_reports_every_account_once() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let g = Ground::start(&[]);
    let child = g
        .cove()
        .args([
            "--region",
            "all",
            "--max-assume-rate",
            "0.5",
            "-o",
            "jsonl",
            "--",
            "true",
        ])
        .spawn_piped();
    // At 0.5 AssumeRole a second discovery is slow: interrupt once it has begun.
    crate::support::wait_until(
        "region discovery to start (account:ListRegions)",
        std::time::Duration::from_secs(30),
        || g.calls("account:ListRegions") >= 1,
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: BTreeSet<String> = lines
        .iter()
        .filter_map(|l| l["Id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.into_iter().collect::<Vec<_>>(), g.active_ids());
    assert_eq!(
        lines.len(),
        g.active_ids().len() + 1,
        "one line per account, then the summary"
    );
    assert!(lines.last().unwrap().get("Summary").is_some());
}

#[test]
fn a_dry_run_of_an_empty_shard_prints_an_empty_matrix() {
    let g = Ground::start(&[]);
    let run = Run::of(
        g.cove()
            .args(["--dry-run", "--shard", "12/12", "--", "true"]),
    );
    run.expect_code(0);
    assert_eq!(run.doc()["Targets"], serde_json::json!([]));
}

#[test]
fn excluding_every_region_leaves_no_eligible_targets() {
    let g = Ground::start(&[]);
    let run = Run::of(
        g.cove()
            .args(["--exclude-region", "us-east-1", "--", "true"]),
    );
    run.expect_code(2);
    assert!(run.stderr.contains("no eligible targets"), "{}", run.stderr);
}

#[test]
fn region_all_names_the_accounts_left_with_no_region_to_run_in() {
    let g = Ground::start(&["--opt-in-names", "sandbox-a"]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--region",
        "all",
        "--exclude-region",
        "us-east-1,eu-west-1",
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["sandbox-a"]));
    let note = format!(
        "1 account(s) have no enabled region left to run in (after --exclude-region): {}",
        g.account("sandbox-b")
    );
    assert!(run.stderr.contains(&note), "{}", run.stderr);
}
