//! Output a person can read: one type per command under `Result`, dry runs without a command,
//! `--output text`, and the GitHub Actions step summary.

use serde_json::Value;

#[cfg(target_os = "linux")]
use crate::support::under_pty;
use crate::support::{Ground, Run, WHO_AM_I};

#[test]
fn result_keeps_one_type_per_command_with_the_aws_cli() {
    let g = Ground::start(&[]);
    let query = |output: &str| {
        Run::of(g.cove().args([
            "-t",
            &g.ou("Sandbox"),
            "--",
            "aws",
            "sts",
            "get-caller-identity",
            "--query",
            "Account",
            "--output",
            output,
        ]))
    };
    let text = query("text");
    text.expect_code(0);
    let results = text.list("Results");
    assert_eq!(results.len(), 2);
    for r in &results {
        let id = r["Id"].as_str().unwrap();
        assert_eq!(
            r["Result"],
            Value::String(format!("{id}\n")),
            "an account ID printed as text stays a string, exactly as printed: {r}"
        );
    }
    let json = Run::of(g.cove().args(["-t", &g.ou("Sandbox"), "--"]).args(WHO_AM_I));
    json.expect_code(0);
    for r in json.list("Results") {
        assert!(r["Result"].is_object(), "JSON objects nest: {r}");
        assert_eq!(r["Result"]["Account"], r["Id"]);
    }
    let quoted = query("json");
    for r in quoted.list("Results") {
        assert_eq!(r["Result"], r["Id"], "a JSON string nests as that string");
    }
}

#[test]
fn a_dry_run_needs_no_command_but_a_run_still_does() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args(["--dry-run", "-t", &g.ou("Sandbox")]));
    run.expect_code(0);
    let targets = run.doc()["Targets"].as_array().unwrap().clone();
    assert_eq!(targets.len(), 2, "{}", run.stdout);
    assert_eq!(g.calls("sts:AssumeRole"), 0);

    let missing = Run::of(g.cove().args(["-t", &g.ou("Sandbox")]));
    missing.expect_code(2);
    assert!(missing.stdout.is_empty());
    assert!(
        missing
            .stderr
            .contains("the following required arguments were not provided"),
        "{}",
        missing.stderr
    );
    assert!(missing.stderr.contains("<COMMAND>"), "{}", missing.stderr);

    let misspelt = Run::of(g.cove().args(["--dry-run", "--", "echo", "{acount_id}"]));
    misspelt.expect_code(2);
    assert!(misspelt.stderr.contains("acount_id"), "{}", misspelt.stderr);
    assert_eq!(
        g.calls("sts:GetCallerIdentity"),
        1,
        "only the dry run reached AWS"
    );
}

/// Workloads: workloads-a, deep-a and deep-b succeed, core-a exits 9, prod-a cannot be assumed.
const MIXED: &str = r#"echo "hello $COVE_ACCOUNT_NAME"; echo "from {region}"; echo warn >&2; [ "$COVE_ACCOUNT_NAME" != core-a ] || exit 9"#;

#[test]
fn text_output_tags_each_line_and_says_why_a_target_failed() {
    let g = Ground::start(&["--deny-assume-names", "prod-a"]);
    let dir = tempfile::tempdir().unwrap();
    let run = Run::of(
        g.cove()
            .env("COVE_OUTPUT", "text")
            .args(["-t", &g.ou("Workloads"), "--output-dir"])
            .arg(dir.path())
            .args(["--", "sh", "-c", MIXED]),
    );
    run.expect_code(1);
    assert!(!run.stdout.contains('\u{1b}'), "no colors off a terminal");
    let lines: Vec<&str> = run.stdout.lines().collect();
    for name in ["workloads-a", "deep-a", "deep-b", "core-a"] {
        let tag = format!("{} {name} us-east-1", g.account(name));
        let mine: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with(&format!("{tag} ")))
            .collect();
        let mut expected = vec![
            format!("{tag} | hello {name}"),
            format!("{tag} | from us-east-1"),
            format!("{tag} ! warn"),
        ];
        if name == "core-a" {
            expected.push(format!("{tag} FAILED: command exited with code 9"));
        }
        assert_eq!(mine, expected, "{}", run.stdout);
        let first = lines.iter().position(|l| *l == mine[0]).unwrap();
        assert_eq!(
            lines[first..first + mine.len()],
            mine[..],
            "a target's lines stay together"
        );
    }
    let prod = format!(
        "{} prod-a us-east-1 FAILED: could not assume",
        g.account("prod-a")
    );
    let prod_lines: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with(&g.account("prod-a")))
        .collect();
    assert_eq!(prod_lines.len(), 1, "{}", run.stdout);
    assert!(prod_lines[0].starts_with(&prod), "{}", run.stdout);
    assert_eq!(lines.len(), 4 * 3 + 1 + 1, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("cove: 3 ok, 1 failed, 1 could not assume role in"),
        "the summary stays on stderr: {}",
        run.stderr
    );

    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(saved["Results"].as_array().unwrap().len(), 3);
    assert_eq!(saved["Exceptions"][0]["Name"], "core-a");
    let core = dir.path().join(g.account("core-a")).join("us-east-1");
    assert_eq!(
        std::fs::read_to_string(core.join("stderr")).unwrap(),
        "warn\n"
    );
}

// Linux only: the pseudo-terminal comes from util-linux `script -q -e -c`, whose flags BSD script(1) on macOS does not take.
#[cfg(target_os = "linux")]
#[test]
fn text_output_is_colored_on_a_terminal_unless_no_color_or_a_dumb_one() {
    let g = Ground::start(&["--deny-assume-names", "prod-a"]);
    let args = [
        "-o",
        "text",
        "-t",
        &g.ou("Workloads"),
        "--",
        "sh",
        "-c",
        MIXED,
    ];
    let (code, screen) = under_pty(&g, &[], &args);
    assert_eq!(code, 1, "{screen:?}");
    let deep = format!("{} deep-a us-east-1", g.account("deep-a"));
    assert!(
        screen.contains(&format!("\u{1b}[2m{deep}\u{1b}[0m | hello deep-a")),
        "a dim tag: {screen:?}"
    );
    assert!(
        screen.contains(&format!(
            "\u{1b}[31m{} core-a us-east-1 FAILED: command exited with code 9\u{1b}[0m",
            g.account("core-a")
        )),
        "a red failure line: {screen:?}"
    );
    assert!(
        !screen.contains("targets,"),
        "no progress bar drawn over the lines: {screen:?}"
    );
    assert!(screen.contains("3 ok, 1 failed"), "{screen:?}");
    for env in [("NO_COLOR", ""), ("NO_COLOR", "1"), ("TERM", "dumb")] {
        let (code, plain) = under_pty(&g, &[env], &args);
        assert_eq!(code, 1);
        assert!(
            plain.contains(&format!("{deep} | hello deep-a")),
            "{env:?}: {plain:?}"
        );
        assert!(
            !plain.contains('\u{1b}'),
            "no escape codes with {env:?}: {plain:?}"
        );
    }
}

#[test]
fn in_github_actions_a_step_summary_and_annotations_report_the_failures() {
    let g = Ground::start(&["--deny-assume-names", "prod-a"]);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let run = Run::of(
        g.cove()
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .args(["-t", &g.ou("Workloads"), "--", "sh", "-c", MIXED]),
    );
    run.expect_code(1);
    assert_eq!(
        run.list("Exceptions").len(),
        1,
        "stdout is still the document"
    );
    assert!(!run.stdout.contains("::error"));

    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step\n### cove: 3 ok, 1 failed, 1 could not assume role\n"),
        "appended: {md}"
    );
    assert!(
        md.contains("| 3 | 1 | 1 | 1 |\n"),
        "the counts, 1 skipped: {md}"
    );
    assert!(
        md.contains(&format!(
            "| {} | core-a | us-east-1 | 9 | command exited with code 9 |\n",
            g.account("core-a")
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "| {} | prod-a | us-east-1 | - | could not assume arn:aws:iam::{}:role/",
            g.account("prod-a"),
            g.account("prod-a")
        )),
        "{md}"
    );
    assert!(!md.contains("more failed targets"), "{md}");
    for secret in g.secrets() {
        assert!(!md.contains(&secret) && !run.stderr.contains(&secret));
    }

    let annotations: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("::error "))
        .collect();
    assert_eq!(annotations.len(), 2, "{}", run.stderr);
    assert!(annotations.contains(&format!(
        "::error title=cove%3A {id} us-east-1::{id} (core-a) us-east-1: command exited with code 9",
        id = g.account("core-a")
    ).as_str()), "{}", run.stderr);
}

#[test]
fn the_step_summary_is_off_with_the_flag_its_variable_or_outside_github_actions() {
    let g = Ground::start(&["--deny-assume-names", "prod-a"]);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary.md");
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 4] = [
        (&[("GITHUB_ACTIONS", "true")], &["--no-ci-summary"]),
        (
            &[("GITHUB_ACTIONS", "true"), ("COVE_CI_SUMMARY", "false")],
            &[],
        ),
        (&[], &[]),
        (&[("GITHUB_ACTIONS", "false")], &[]),
    ];
    for (env, flags) in cases {
        let run = Run::of(
            g.cove()
                .env("GITHUB_STEP_SUMMARY", &summary)
                .envs(env.iter().copied())
                .args(flags)
                .args(["-t", &g.ou("Workloads"), "--", "sh", "-c", MIXED]),
        );
        run.expect_code(1);
        assert!(!summary.exists(), "{env:?} {flags:?}");
        assert!(
            !run.stderr.contains("::error"),
            "{env:?} {flags:?}: {}",
            run.stderr
        );
    }
}
