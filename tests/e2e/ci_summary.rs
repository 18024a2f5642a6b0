//! The GitHub Actions step summary end to end: when it is written, when it is not, and what a
//! hostile account name can do to it.

use std::path::Path;

use crate::support::{Ground, Run};

/// Fails in core-a (exit 9), succeeds elsewhere.
const FAIL_IN_CORE: &str = r#"[ "$COVE_ACCOUNT_NAME" != core-a ] || exit 9"#;

fn in_actions(g: &Ground, summary: &Path) -> std::process::Command {
    let mut cmd = g.cove();
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary);
    cmd
}

fn annotations(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("::error "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_summary_for_a_dry_run_or_a_run_that_exits_2() {
    let g = Ground::start(&["--deny-assume-names", "prod-a"]);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary.md");
    let workloads = g.ou("Workloads");
    let suspended = g.account("root-suspended");
    let cases: [&[&str]; 4] = [
        &[
            "--dry-run",
            "-t",
            &workloads,
            "--",
            "sh",
            "-c",
            FAIL_IN_CORE,
        ],
        &["--dry-run", "-t", &workloads],
        // Bad input, and nothing eligible to run in.
        &["-t", &workloads, "--", "echo", "{acount_id}"],
        &["-t", &suspended, "--", "true"],
    ];
    for args in cases {
        let run = Run::of(in_actions(&g, &summary).args(args));
        let expected = if args[0] == "--dry-run" { 0 } else { 2 };
        run.expect_code(expected);
        assert!(!summary.exists(), "{args:?} wrote a step summary");
        assert!(annotations(&run).is_empty(), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn no_summary_when_the_organization_could_not_be_listed_to_the_end() {
    // Two ListAccounts pages (moto pages at 100); the second is denied: the run stops with
    // exit 2 after running the accounts of the first page.
    let g = Ground::start(&[
        "--extra-root-accounts",
        "100",
        "--deny-list-accounts-after",
        "1",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary.md");
    let run =
        Run::of(in_actions(&g, &summary).args(["--workers", "50", "--", "sh", "-c", FAIL_IN_CORE]));
    run.expect_code(2);
    assert!(
        run.stderr.contains("could not be listed to the end"),
        "{}",
        run.stderr
    );
    assert!(
        !run.list("Results").is_empty(),
        "the first page ran: {}",
        run.stdout
    );
    assert!(!summary.exists(), "an exit-2 run wrote a step summary");
}

#[test]
fn an_unwritable_summary_is_a_warning_and_the_run_reports_as_usual() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be, and a file in a folder that does not exist.
    for summary in [dir.path().to_owned(), dir.path().join("missing/summary.md")] {
        let run = Run::of(in_actions(&g, &summary).args([
            "-t",
            &g.ou("Workloads"),
            "--",
            "sh",
            "-c",
            FAIL_IN_CORE,
        ]));
        run.expect_code(1);
        assert_eq!(run.list("Results").len(), 4, "{}", run.stdout);
        assert_eq!(run.ids("Exceptions"), [g.account("core-a")]);
        assert!(
            run.stderr
                .contains("warning: could not write the GitHub step summary"),
            "{}",
            run.stderr
        );
        assert_eq!(annotations(&run).len(), 1, "{}", run.stderr);
    }
}

#[test]
fn error_annotations_appear_with_quiet_too() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary.md");
    let run = Run::of(in_actions(&g, &summary).args([
        "--quiet",
        "-t",
        &g.ou("Workloads"),
        "--",
        "sh",
        "-c",
        FAIL_IN_CORE,
    ]));
    run.expect_code(1);
    assert_eq!(
        annotations(&run),
        [format!(
            "::error title=cove%3A {id} us-east-1::{id} (core-a) us-east-1: command exited with code 9",
            id = g.account("core-a")
        )],
        "{}",
        run.stderr
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("### cove: 4 ok, 1 failed"), "{md}");
}

#[test]
fn a_hostile_account_name_stays_text_in_the_summary_and_the_annotations() {
    let name = r"[x](https://evil.example) ![i](http://e/p.png) <img src=x> `c` | cell";
    let g = Ground::start(&["--rename", &format!("core-a={name}\\u001b[2J")]);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary.md");
    // Fails wherever the account's ID is core-a's.
    let core = g.account("core-a");
    let script = format!("[ {{account_id}} != {core} ] || exit 9");
    let run = Run::of(in_actions(&g, &summary).args([
        "-t",
        &g.ou("Workloads"),
        "--",
        "sh",
        "-c",
        &script,
    ]));
    run.expect_code(1);
    let md = std::fs::read_to_string(&summary).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with(&format!("| {core} |")))
        .unwrap_or_else(|| panic!("no row for core-a: {md}"));
    assert_eq!(
        row,
        format!(
            r"| {core} | \[x\]\(https\://evil.example\) \!\[i\]\(http\://e/p.png\) &lt;img src=x&gt; \`c\` \| cell\\u{{1b}}\[2J | us-east-1 | 9 | command exited with code 9 |"
        )
    );
    assert!(!md.contains('\u{1b}'), "{md:?}");
    let annotations = annotations(&run);
    assert_eq!(annotations.len(), 1, "{}", run.stderr);
    assert!(
        annotations[0].contains(r"\u{1b}[2J") && !annotations[0].contains('\u{1b}'),
        "{:?}",
        annotations[0]
    );
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
}
