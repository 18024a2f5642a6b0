//! OU-targeted runs start while the OU walk is still listing: the first commands run before the
//! last page of the walk has arrived, with the same rules and output as a listed run.

use std::process::Command;
use std::time::Duration;

use crate::support::{Ground, Run, SpawnPiped, wait_until};

#[test]
fn an_ou_run_starts_commands_while_a_later_page_of_the_walk_is_held_back() {
    let g = Ground::start(&["--hold-parent", "Sandbox"]);
    runs_while_the_sandbox_page_is_held(&g, g.cove().args(["-t", &g.root()]));
}

/// Runs `cove` (a ground started with `--hold-parent Sandbox`, its options given) with a
/// command that leaves a marker per account, and checks that root-a's command ran while the
/// Sandbox page was still held back and nothing under Sandbox had; then releases the page and
/// checks every active account but the caller ran once.
pub fn runs_while_the_sandbox_page_is_held(g: &Ground, cove: &mut Command) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join(g.account("root-a"));
    let child = cove
        .args(["-q", "--", "sh", "-c"])
        .arg(format!("touch {}/$COVE_ACCOUNT_ID", dir.path().display()))
        .spawn_piped();
    wait_until("root-a's command to run", Duration::from_secs(30), || {
        marker.exists()
    });
    assert_eq!(
        g.held(),
        1,
        "the Sandbox page is still held back while root-a's command has run"
    );
    assert!(
        !dir.path().join(g.account("sandbox-a")).exists(),
        "nothing under the held OU ran yet"
    );
    g.release();
    let run = Run::from_output(child.wait_with_output().unwrap());
    run.expect_code(0);
    let mut expected: Vec<String> = g
        .active_ids()
        .into_iter()
        .filter(|id| *id != g.caller())
        .collect();
    expected.sort();
    assert_eq!(run.ids("Results"), expected);
    run
}

#[test]
fn an_account_named_directly_and_through_two_ous_runs_once_per_region() {
    let g = Ground::start(&[]);
    let deep = g.account("deep-a");
    let run = Run::of(g.cove().args([
        "-t",
        &format!("{},{},{deep}", g.ou("Core"), g.ou("Deep")),
        "--region",
        "us-east-1,eu-west-1",
        "--",
        "true",
    ]));
    run.expect_code(0);
    let deep_records = run
        .list("Results")
        .iter()
        .filter(|r| r["Id"] == deep.as_str())
        .count();
    assert_eq!(deep_records, 2, "one record per region");
    assert_eq!(run.ids("Results"), g.ids(&["core-a", "deep-a", "deep-b"]));
    assert_eq!(
        g.calls("sts:AssumeRole"),
        3,
        "one AssumeRole per account, however it was reached"
    );
    assert_eq!(
        g.calls("organizations:ListAccounts"),
        0,
        "an OU run walks the OUs; it does not list the whole organization"
    );
}

#[test]
fn an_ou_run_applies_ignores_filters_and_skips_suspended_accounts_with_notes_at_the_end() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Workloads"),
        "-i",
        &g.ou("Deep"),
        "--filter-name=^(workloads|core)-a$",
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["workloads-a", "core-a"]));
    let suspended = g.account("prod-suspended");
    assert!(
        run.stderr.contains(&format!(
            "skipping 1 account that is not ACTIVE: {suspended} (SUSPENDED)"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("filters kept 2 of 3 accounts"),
        "{}",
        run.stderr
    );
}
