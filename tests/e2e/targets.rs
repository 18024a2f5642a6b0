//! Which accounts become targets, end to end against the moto organization.

use crate::support::{Ground, Run};

fn run_true(ground: &Ground, args: &[&str]) -> Run {
    Run::of(ground.cove().args(args).args(["--", "true"]))
}

#[test]
fn no_target_means_every_active_account_but_the_caller() {
    let g = Ground::start(&[]);
    let run = run_true(&g, &[]);
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
    assert!(!run.ids("Results").contains(&g.caller()));
}

#[test]
fn ou_target_reaches_accounts_at_every_depth() {
    let g = Ground::start(&[]);
    let run = run_true(&g, &["--target", &g.ou("Workloads")]);
    run.expect_code(0);
    assert_eq!(
        run.ids("Results"),
        g.ids(&["workloads-a", "prod-a", "core-a", "deep-a", "deep-b"])
    );
}

#[test]
fn root_target_means_the_whole_organization() {
    let g = Ground::start(&[]);
    let run = run_true(&g, &["-t", &g.root()]);
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
}

#[test]
fn ignored_ou_wins_over_targeted_ou() {
    let g = Ground::start(&[]);
    let run = run_true(&g, &["-t", &g.ou("Workloads"), "-i", &g.ou("Core")]);
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["workloads-a", "prod-a"]));
}

#[test]
fn ignored_account_wins_over_targeted_account_and_ou() {
    let g = Ground::start(&[]);
    let deep_a = g.account("deep-a");
    let targets = format!("{},{deep_a}", g.ou("Deep"));
    let run = run_true(&g, &["--target", &targets, "--ignore", &deep_a]);
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["deep-b"]));
}

#[test]
fn calling_account_is_never_a_target_even_when_named() {
    let g = Ground::start(&[]);
    let targets = format!("{},{}", g.caller(), g.account("root-a"));
    let run = run_true(&g, &["-t", &targets]);
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["root-a"]));
    assert!(
        run.stderr.contains(&g.caller()),
        "a note names the calling account: {}",
        run.stderr
    );
    assert_eq!(g.calls("sts:AssumeRole"), 1);
}

#[test]
fn suspended_accounts_under_an_ou_are_skipped_with_a_note() {
    let g = Ground::start(&[]);
    let run = run_true(&g, &["-t", &g.ou("Prod")]);
    run.expect_code(0);
    let suspended = g.account("prod-suspended");
    assert!(!run.ids("Results").contains(&suspended));
    let note: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(&suspended))
        .collect();
    assert_eq!(note.len(), 1, "one line names it: {}", run.stderr);
    assert!(note[0].contains("SUSPENDED"), "{}", note[0]);
}

#[test]
fn suspended_accounts_of_the_whole_organization_are_skipped_with_a_note() {
    let g = Ground::start(&[]);
    let run = run_true(&g, &[]);
    for name in ["root-suspended", "prod-suspended"] {
        let id = g.account(name);
        assert!(!run.ids("Results").contains(&id));
        assert!(run.stderr.contains(&id), "{}", run.stderr);
    }
}

#[test]
fn explicit_suspended_account_is_an_input_error() {
    let g = Ground::start(&[]);
    let id = g.account("root-suspended");
    let run = run_true(&g, &["-t", &id]);
    run.expect_code(2);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains(&id) && run.stderr.contains("SUSPENDED"),
        "{}",
        run.stderr
    );
    assert_eq!(g.calls("sts:AssumeRole"), 0);
}

#[test]
fn explicit_account_outside_the_organization_is_an_input_error() {
    let g = Ground::start(&[]);
    let run = run_true(
        &g,
        &["-t", &format!("{},999999999999", g.account("root-a"))],
    );
    run.expect_code(2);
    assert!(run.stderr.contains("999999999999"), "{}", run.stderr);
    assert!(run.stderr.contains("not an account of this organization"));
    assert_eq!(g.calls("sts:AssumeRole"), 0);
}

#[test]
fn account_named_directly_and_through_its_ou_runs_once_per_region() {
    let g = Ground::start(&[]);
    let deep_a = g.account("deep-a");
    let run = run_true(
        &g,
        &[
            "-t",
            &g.ou("Deep"),
            "-t",
            &deep_a,
            "-t",
            &deep_a,
            "--region",
            "us-east-1,eu-west-1",
        ],
    );
    run.expect_code(0);
    let records = run.records();
    assert_eq!(records.len(), 4, "2 accounts × 2 regions");
    assert_eq!(
        records
            .iter()
            .filter(|r| r["Id"] == deep_a.as_str())
            .count(),
        2
    );
    assert_eq!(g.calls("sts:AssumeRole"), 2, "one AssumeRole per account");
}

#[test]
fn organization_larger_than_one_list_page_is_listed_whole() {
    let g = Ground::start(&["--extra-root-accounts", "110"]);
    let run = run_true(&g, &["--workers", "50"]);
    run.expect_code(0);
    let ids = run.ids("Results");
    assert_eq!(ids.len(), 119, "9 active sample accounts + 110 more");
    assert_eq!(ids, g.active_ids());
    assert!(
        g.calls("organizations:ListAccounts") >= 2,
        "ListAccounts was paged"
    );
}

#[test]
fn unknown_ou_is_an_input_error_naming_it() {
    let g = Ground::start(&[]);
    let run = run_true(&g, &["-t", "ou-zzzz-zzzzzzzz"]);
    run.expect_code(2);
    assert!(run.stderr.contains("ou-zzzz-zzzzzzzz"), "{}", run.stderr);
    assert_eq!(g.calls("sts:AssumeRole"), 0);
}

#[test]
fn organization_with_no_member_accounts_has_no_eligible_targets() {
    let g = Ground::start(&["--scenario", "empty"]);
    let run = run_true(&g, &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("no eligible targets"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn without_organization_access_explicit_accounts_still_run_without_metadata() {
    let g = Ground::start(&["--deny-list-accounts"]);
    let ids = g.ids(&["root-a", "sandbox-a"]);
    let run = run_true(&g, &["-t", &ids.join(",")]);
    run.expect_code(0);
    assert_eq!(run.ids("Results"), ids);
    for record in run.list("Results") {
        assert!(record["Name"].is_null() && record["Email"].is_null());
        assert!(record["Status"].is_null());
    }
}

#[test]
fn without_organization_access_ou_targets_fail_naming_the_permission() {
    let g = Ground::start(&["--deny-list-accounts"]);
    for args in [vec!["-t".to_owned(), g.ou("Workloads")], vec![]] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = run_true(&g, &args);
        run.expect_code(2);
        assert!(
            run.stderr.contains("organizations:ListAccounts")
                && run.stderr.contains("--target 111111111111"),
            "says what is missing and what to pass: {}",
            run.stderr
        );
    }
    assert_eq!(g.calls("sts:AssumeRole"), 0);
}

#[test]
fn without_any_organization_explicit_accounts_still_run() {
    let g = Ground::start(&["--scenario", "none"]);
    let run = run_true(&g, &["-t", "222222222222"]);
    run.expect_code(0);
    assert_eq!(run.ids("Results"), ["222222222222"]);
}
