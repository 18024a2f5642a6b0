//! Throttling with cove's default retry policy (src/aws/retry.rs): no `AWS_MAX_ATTEMPTS` or
//! `AWS_RETRY_MODE` anywhere unless a test says so. Each test throttles more answers in a row
//! than the SDK's default three attempts survive, and counts the calls the ground saw: every
//! throttled answer was retried (count above the number of pages), and no more than that.

use std::time::Instant;

use crate::support::{Ground, Run};

fn run_true(g: &Ground, args: &[&str]) -> Run {
    Run::of(g.cove().args(args).args(["--", "true"]))
}

fn list_accounts_throttled(times: u64) {
    let g = Ground::start(&["--throttle-list-accounts", &times.to_string()]);
    let run = run_true(&g, &[]);
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
    assert_eq!(
        g.calls("organizations:ListAccounts"),
        times + 1,
        "{times} throttled answers, then the one page"
    );
}

#[test]
fn three_throttled_list_accounts_answers_in_a_row_need_no_settings() {
    list_accounts_throttled(3);
}

#[test]
fn five_throttled_list_accounts_answers_in_a_row_need_no_settings() {
    list_accounts_throttled(5);
}

#[test]
fn a_throttled_ou_walk_needs_no_settings() {
    // The walk is one call at a time, so the first call of each kind takes all four.
    let g = Ground::start(&[
        "--throttle-first",
        "organizations:ListOrganizationalUnitsForParent=4",
        "--throttle-first",
        "organizations:ListAccountsForParent=4",
    ]);
    let run = run_true(&g, &["--target", &g.ou("Workloads")]);
    run.expect_code(0);
    assert_eq!(
        run.ids("Results"),
        g.ids(&["workloads-a", "prod-a", "core-a", "deep-a", "deep-b"])
    );
    // Workloads, Prod, Core and Deep: one page each, plus the four throttled answers.
    assert_eq!(
        g.calls("organizations:ListOrganizationalUnitsForParent"),
        4 + 4
    );
    assert_eq!(g.calls("organizations:ListAccountsForParent"), 4 + 4);
}

#[test]
fn throttled_tag_reads_need_no_settings() {
    // Tags are read four at a time; three attempts each absorb at most 4 x 2 = 8 throttled
    // answers, so 10 fail a run with the SDK's default, and no read can get 12 of them.
    let g = Ground::start(&["--throttle-first", "organizations:ListTagsForResource=10"]);
    let run = run_true(&g, &["--filter-tag", "env=prod"]);
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["prod-a", "core-a"]));
    assert!(
        run.stderr.contains("filters kept 2 of 9 accounts"),
        "{}",
        run.stderr
    );
    assert_eq!(
        g.calls("organizations:ListTagsForResource"),
        9 + 10,
        "one read per account, plus the ten throttled answers"
    );
}

#[test]
fn a_throttled_caller_identity_needs_no_settings() {
    let g = Ground::start(&["--throttle-first", "sts:GetCallerIdentity=4"]);
    let run = run_true(&g, &[]);
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
    assert_eq!(g.calls("sts:GetCallerIdentity"), 4 + 1);
}

#[test]
fn throttled_region_discovery_needs_no_settings() {
    // Nine accounts ask for their regions at once; three attempts each absorb at most 18
    // throttled answers, so 20 fail an account with the SDK's default.
    let g = Ground::start(&["--throttle-first", "account:ListRegions=20"]);
    let run = run_true(&g, &["--region", "all"]);
    run.expect_code(0);
    let mut expected: Vec<(String, String)> = g
        .active_ids()
        .into_iter()
        .flat_map(|id| ["eu-west-1", "us-east-1"].map(|region| (id.clone(), region.to_owned())))
        .collect();
    expected.sort();
    let landed = run.targets("Results");
    assert_eq!(landed, expected);
    assert_eq!(g.calls("account:ListRegions"), 9 + 20);
}

#[test]
fn the_users_max_attempts_wins_from_the_environment_or_the_profile() {
    let g = Ground::start(&["--throttle-list-accounts", "2"]);
    let run = Run::of(g.cove().env("AWS_MAX_ATTEMPTS", "1").args(["--", "true"]));
    run.expect_code(2);
    assert!(
        run.stderr.contains("TooManyRequestsException"),
        "{}",
        run.stderr
    );
    assert_eq!(
        g.calls("organizations:ListAccounts"),
        1,
        "one attempt, no retry"
    );

    let config = g.home.path().join("aws-config");
    std::fs::write(&config, "[default]\nmax_attempts = 1\n").unwrap();
    let run = Run::of(
        g.cove()
            .env("AWS_CONFIG_FILE", &config)
            .args(["--", "true"]),
    );
    run.expect_code(2);
    assert_eq!(g.calls("organizations:ListAccounts"), 2, "one more attempt");
}

#[test]
fn retries_stop_at_the_users_attempt_limit_and_the_target_fails_cleanly() {
    let g = Ground::start(&["--throttle-assume", "1.0"]);
    let ids = g.ids(&["sandbox-a", "sandbox-b"]);
    let run =
        Run::of(
            g.cove()
                .env("AWS_MAX_ATTEMPTS", "3")
                .args(["-t", &ids.join(","), "--", "true"]),
        );
    run.expect_code(1);
    assert_eq!(run.ids("FailedAssumeRole"), ids);
    for r in run.list("FailedAssumeRole") {
        assert!(
            r["ExceptionDetails"]
                .as_str()
                .unwrap()
                .contains("Throttling"),
            "{r}"
        );
    }
    assert_eq!(g.calls("sts:AssumeRole"), 6, "three attempts per account");
}

#[test]
fn thirty_percent_assume_throttling_loses_no_target() {
    // 29 accounts; P(an account is throttled on all 12 attempts) = 0.3^12 = 5.3e-7.
    let g = Ground::start(&["--extra-root-accounts", "20", "--throttle-assume", "0.3"]);
    let run = run_true(&g, &[]);
    run.expect_code(0);
    let n = g.active_ids().len() as u64;
    assert_eq!(n, 29);
    assert_eq!(run.ids("Results"), g.active_ids());
    let calls = g.calls("sts:AssumeRole");
    assert!(
        calls > n,
        "retries happened: {calls} calls for {n} accounts"
    );
    assert!(calls <= n * 12, "retries were bounded: {calls}");
}

#[test]
#[ignore = "stress: scripts/stress runs it"]
fn a_throttling_storm_at_300_workers_does_not_drain_the_retry_budget() {
    // 250 accounts at once, 30% throttled: about 107 retries (535 tokens), while successes earn
    // tokens back. The SDK's default three attempts lose about 7 accounts here.
    let g = Ground::start(&["--extra-root-accounts", "250", "--throttle-assume", "0.3"]);
    let run = run_true(&g, &["--workers", "300"]);
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
    let n = g.active_ids().len() as u64;
    assert!(g.calls("sts:AssumeRole") > n + 50, "the storm happened");
}

#[test]
fn an_assume_role_outage_spends_the_retry_budget_and_then_fails_fast() {
    // Every AssumeRole is throttled. The budget (2,500 tokens, 5 per retry, nothing earned
    // back) buys 500 retries for the whole run; then each call fails on its next attempt,
    // instead of 12 attempts for each of the 109 accounts (1,308 calls).
    let g = Ground::start(&["--extra-root-accounts", "100", "--throttle-assume", "1.0"]);
    let n = g.active_ids().len() as u64;
    let started = Instant::now();
    let run = run_true(&g, &["--workers", "200"]);
    run.expect_code(1);
    assert_eq!(run.ids("FailedAssumeRole"), g.active_ids());
    for r in run.list("FailedAssumeRole") {
        let details = r["ExceptionDetails"].as_str().unwrap();
        assert!(details.contains("Throttling"), "{r}");
    }
    let calls = g.calls("sts:AssumeRole");
    assert!(
        calls <= n + 500,
        "retries stop when the budget is spent: {calls} calls for {n} accounts"
    );
    assert!(
        calls > n + 400,
        "the budget was spent on retries: {calls} calls for {n} accounts"
    );
    eprintln!(
        "outage: {calls} AssumeRole calls in {:?}",
        started.elapsed()
    );
}

#[test]
#[ignore = "stress: scripts/stress runs it"]
fn thirty_percent_assume_throttling_over_500_accounts_loses_no_target() {
    // The measurement behind the defaults: P(loss) = 0.3^12 per account, 2.7e-4 per run.
    let g = Ground::start(&["--extra-root-accounts", "500", "--throttle-assume", "0.3"]);
    let started = Instant::now();
    let run = run_true(&g, &[]);
    let elapsed = started.elapsed();
    let n = g.active_ids().len() as u64;
    let calls = g.calls("sts:AssumeRole");
    let lost = n as usize - run.ids("Results").len();
    eprintln!(
        "500-account storm: {n} accounts, {lost} lost, {calls} AssumeRole calls, {elapsed:?}"
    );
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
    assert!(calls > n + 100, "the storm happened: {calls}");
    assert!(calls <= n * 12, "retries were bounded: {calls}");
}
