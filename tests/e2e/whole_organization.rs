//! The whole organization (no `--target`) is streamed while it is listed, on a path of its own
//! (`resolver::stream_organization`). Every selection rule is checked here on real runs: no
//! `--target`, `--dry-run`, `--shard`, `--rerun`, `--region all` or `--filter-tag`, which would
//! take the other path.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Ground, Run, SpawnPiped, eventually, finish_within};

/// The account IDs AssumeRole was called for, sorted.
fn assumed(g: &Ground) -> Vec<String> {
    let mut ids: Vec<String> = g
        .assume_params()
        .iter()
        .map(|p| {
            p["RoleArn"]
                .as_str()
                .unwrap()
                .split(':')
                .nth(4)
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

/// Every active account but the named ones, sorted.
fn active_but(g: &Ground, names: &[&str]) -> Vec<String> {
    let left_out = g.ids(names);
    let mut ids = g.active_ids();
    ids.retain(|id| !left_out.contains(id));
    ids
}

/// The summary line of a `-o jsonl` run.
fn summary(run: &Run) -> Value {
    let last = run.stdout.lines().last().expect("a summary line");
    serde_json::from_str::<Value>(last).unwrap()["Summary"].clone()
}

/// IDs of the records of a `-o jsonl` run with the given outcome, sorted.
fn jsonl_ids(run: &Run, outcome: &str) -> Vec<String> {
    let mut ids: Vec<String> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["Outcome"] == outcome)
        .map(|v| v["Id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn whole_organization_run_leaves_out_an_ignored_account() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args(["-i", &g.account("deep-a"), "--", "true"]));
    run.expect_code(0);
    let expected = active_but(&g, &["deep-a"]);
    assert_eq!(run.ids("Results"), expected);
    assert_eq!(
        assumed(&g),
        expected,
        "no role assumed in the ignored account"
    );
}

#[test]
fn whole_organization_run_leaves_out_every_account_beneath_an_ignored_ou() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args(["-i", &g.ou("Workloads"), "--", "true"]));
    run.expect_code(0);
    let expected = active_but(&g, &["workloads-a", "prod-a", "core-a", "deep-a", "deep-b"]);
    assert_eq!(run.ids("Results"), expected, "nested OUs are ignored too");
    assert_eq!(assumed(&g), expected);
}

#[test]
fn whole_organization_run_leaves_out_the_caller_with_a_note_unless_included() {
    let g = Ground::start(&[]);
    let caller = g.caller();
    let run = Run::of(g.cove().args(["-o", "jsonl", "--", "true"]));
    run.expect_code(0);
    assert_eq!(jsonl_ids(&run, "Result"), g.active_ids());
    assert!(
        !assumed(&g).contains(&caller),
        "no role assumed in the caller"
    );
    assert!(
        run.stderr
            .contains(&format!("leaving out the calling account {caller}")),
        "{}",
        run.stderr
    );
    assert_eq!(
        summary(&run)["Skipped"],
        3,
        "the caller and the two suspended accounts"
    );

    let included = Run::of(
        g.cove()
            .args(["--include-caller", "-o", "jsonl", "--", "true"]),
    );
    included.expect_code(0);
    let mut expected = g.active_ids();
    expected.push(caller.clone());
    expected.sort();
    assert_eq!(jsonl_ids(&included, "Result"), expected);
    assert!(
        !included.stderr.contains("leaving out the calling account"),
        "{}",
        included.stderr
    );
    assert_eq!(summary(&included)["Skipped"], 2);
}

#[test]
fn whole_organization_run_skips_accounts_that_are_not_active_in_one_note() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args(["--", "true"]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
    assert_eq!(
        assumed(&g),
        g.active_ids(),
        "no role assumed in a suspended account"
    );
    let notes: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("skipping 2 accounts that are not ACTIVE: "))
        .collect();
    assert_eq!(notes.len(), 1, "one note: {}", run.stderr);
    for name in ["root-suspended", "prod-suspended"] {
        let id = g.account(name);
        assert!(
            notes[0].contains(&format!("{id} (SUSPENDED)")),
            "{name}: {}",
            notes[0]
        );
    }
}

#[test]
fn whole_organization_run_keeps_only_accounts_matching_the_name_and_email_filters() {
    let g = Ground::start(&[]);
    let cases: &[(&[&str], &[&str], &str)] = &[
        (
            &["--filter-name", "^(deep|core)-"],
            &["core-a", "deep-a", "deep-b"],
            "filters kept 3 of 9 accounts",
        ),
        (
            &["--filter-email", "^sandbox-.*@example\\.com$"],
            &["sandbox-a", "sandbox-b"],
            "filters kept 2 of 9 accounts",
        ),
        (
            &["--filter-email", "^root-", "--filter-name", "b$"],
            &["root-b"],
            "filters kept 1 of 9 accounts",
        ),
    ];
    let mut assumed_before = 0;
    for (filters, names, note) in cases {
        let run = Run::of(g.cove().args(*filters).args(["--", "true"]));
        run.expect_code(0);
        assert_eq!(run.ids("Results"), g.ids(names), "{filters:?}");
        assert!(run.stderr.contains(note), "{filters:?}: {}", run.stderr);
        let calls = g.assume_params().len();
        assert_eq!(
            calls - assumed_before,
            names.len(),
            "{filters:?}: roles assumed only where the filters kept the account"
        );
        assumed_before = calls;
    }
}

#[test]
fn a_whole_organization_run_starts_commands_while_a_later_list_accounts_page_is_held_back() {
    // ListAccounts in pages of four (twelve accounts: three pages); the second page waits for
    // the test. The first page's accounts must run meanwhile.
    let g = Ground::start(&[
        "--list-accounts-page-size",
        "4",
        "--hold-list-accounts-page",
        "2",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let ran = || -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        ids
    };
    let child = g
        .cove()
        .args(["-q", "--", "sh", "-c"])
        .arg(format!("touch {}/$COVE_ACCOUNT_ID", dir.path().display()))
        .spawn_piped();
    // Observed, not asserted yet: the run must be let go (and its command reaped) either way.
    let early = eventually(Duration::from_secs(30), || {
        g.held() == 1 && !ran().is_empty()
    });
    let (held, pages, ran_early) = (g.held(), g.calls("organizations:ListAccounts"), ran());
    g.release();
    let run = finish_within(child, Duration::from_secs(120), "the run to end", || {});
    assert!(
        early,
        "no command ran while the second ListAccounts page was held back (held {held}, ran {ran_early:?})"
    );
    assert_eq!(pages, 2, "page 1 answered, page 2 asked for and held");
    assert!(
        ran_early.iter().all(|id| g.active_ids().contains(id)),
        "{ran_early:?}"
    );
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
    assert_eq!(ran(), g.active_ids());
    assert!(
        g.calls("organizations:ListAccounts") >= 3,
        "{}",
        g.all_calls()
    );
}
