//! How cove meets people and pipelines: jsonl streaming, output directory, broken pipes,
//! the progress bar, the summary, dry runs, templating, and the generated files.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::faults::{assert_all_dead, kill_all, wait_for_pids};
#[cfg(target_os = "linux")]
use crate::support::under_pty;
use crate::support::{Ground, Run, SpawnPiped};

#[test]
fn jsonl_lines_arrive_while_a_slow_target_is_still_running() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (waiting, go) = (dir.path().join("waiting"), dir.path().join("go"));
    // sandbox-b holds until the test has seen the first line (at most 60 s).
    let script = format!(
        r#"if [ "$COVE_ACCOUNT_NAME" = sandbox-b ]; then
  touch {waiting}; i=0
  while [ ! -e {go} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
fi
echo "$COVE_ACCOUNT_NAME""#,
        waiting = waiting.display(),
        go = go.display()
    );
    let spawned = std::time::Instant::now();
    let mut child = g
        .cove()
        .args([
            "-t",
            &g.ou("Sandbox"),
            "--output",
            "jsonl",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let held = std::time::Instant::now();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first line came while sandbox-b was still running"
    );
    assert_eq!(first["Outcome"], "Result");
    assert_eq!(first["Name"], "sandbox-a");
    assert_eq!(first["Result"], "sandbox-a\n");
    assert_eq!(
        first.as_object().unwrap().len(),
        15,
        "the 14 keys plus Outcome"
    );
    crate::support::wait_until(
        "sandbox-b to start",
        std::time::Duration::from_secs(30),
        || waiting.exists(),
    );
    assert!(child.try_wait().unwrap().is_none(), "sandbox-b still held");
    let held = held.elapsed();
    std::fs::write(&go, "").unwrap();
    let rest: Vec<Value> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert!(child.wait().unwrap().success());
    let total = spawned.elapsed();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0]["Name"], "sandbox-b");
    let summary = &rest[1]["Summary"];
    assert_eq!(summary["Results"], 2);
    assert_eq!(summary["Exceptions"], 0);
    assert_eq!(summary["FailedAssumeRole"], 0);
    assert_eq!(summary["Skipped"], 0);
    let duration = summary["DurationMs"].as_u64().unwrap() as u128;
    assert!(
        held.as_millis() <= duration && duration <= total.as_millis(),
        "DurationMs {duration} covers the run: held {held:?}, total {total:?}"
    );
}

#[test]
fn jsonl_outcomes_and_skipped_count_match_the_run() {
    let g = Ground::start(&["--deny-assume-names", "prod-a"]);
    let script = r#"[ "$COVE_ACCOUNT_NAME" != core-a ] || exit 9"#;
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Workloads"),
        "-o",
        "jsonl",
        "--",
        "sh",
        "-c",
        script,
    ]));
    run.expect_code(1);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcome_of = |name: &str| {
        lines
            .iter()
            .find(|l| l["Name"] == name)
            .map(|l| l["Outcome"].clone())
            .unwrap()
    };
    assert_eq!(outcome_of("prod-a"), "FailedAssumeRole");
    assert_eq!(outcome_of("core-a"), "Exception");
    assert_eq!(outcome_of("deep-a"), "Result");
    assert_eq!(
        lines.last().unwrap()["Summary"]["Skipped"],
        1,
        "prod-suspended was skipped"
    );
}

#[test]
fn output_dir_holds_each_targets_streams_and_the_document() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--region",
        "us-east-1,eu-west-1",
        "--output-dir",
        out.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "printf 'out-%s\\377' \"$COVE_REGION\"; echo err-$COVE_ACCOUNT_NAME >&2",
    ]));
    run.expect_code(0);
    for name in ["sandbox-a", "sandbox-b"] {
        for region in ["us-east-1", "eu-west-1"] {
            let target = out.join(g.account(name)).join(region);
            assert_eq!(
                std::fs::read(target.join("stdout")).unwrap(),
                [format!("out-{region}").as_bytes(), &[0xff]].concat(),
                "raw bytes, untouched"
            );
            assert_eq!(
                std::fs::read_to_string(target.join("stderr")).unwrap(),
                format!("err-{name}\n")
            );
        }
    }
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(saved, run.doc());
}

#[test]
fn a_closed_pipe_ends_cove_quietly_and_stops_the_children() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        r#"if [ "$COVE_ACCOUNT_NAME" = deep-a ]; then echo first; exit 0; fi
sleep 1000 & echo $! > {d}/$COVE_ACCOUNT_ID; wait"#,
        d = dir.path().display()
    );
    let mut child = g
        .cove()
        .args([
            "-t",
            &g.ou("Workloads"),
            "-o",
            "jsonl",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .spawn_piped();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("deep-a"), "{first}");
    let pids = wait_for_pids(dir.path(), 4);
    drop(reader); // like `| head -1` exiting
    // The next record (or the summary) hits the closed pipe; children are stopped. Make one
    // finish by killing its sleep, so cove has something to write.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let run = crate::support::finish_within(
        child,
        std::time::Duration::from_secs(30),
        "cove to stop its children and end once its output was closed",
        || kill_all(&pids),
    );
    run.expect_code(0);
    assert!(
        !run.stderr.contains("error"),
        "not reported as an error: {}",
        run.stderr
    );
    assert_all_dead(&pids);
}

/// [`under_pty`] for a run that must succeed: all it drew.
#[cfg(target_os = "linux")]
fn drawn(g: &Ground, env: &[(&str, &str)], args: &[&str]) -> String {
    let (code, screen) = under_pty(g, env, args);
    assert_eq!(code, 0, "{screen}");
    screen
}

// Linux only: the pseudo-terminal comes from util-linux `script -q -e -c`, whose flags BSD script(1) on macOS does not take.
#[cfg(target_os = "linux")]
#[test]
fn progress_bar_draws_on_a_terminal_and_json_is_pretty_there() {
    let g = Ground::start(&[]);
    let ou = g.ou("Sandbox");
    let screen = drawn(&g, &[], &["-t", &ou, "--", "sleep", "1"]);
    assert!(
        screen.contains("/2 targets"),
        "progress bar drawn: {screen:?}"
    );
    assert!(
        screen.contains("\"Results\": ["),
        "pretty JSON on a terminal: {screen:?}"
    );
    assert!(
        screen.contains("2 ok, 0 failed, 0 could not assume role"),
        "{screen:?}"
    );
}

// Linux only: the pseudo-terminal comes from util-linux `script -q -e -c`, whose flags BSD script(1) on macOS does not take.
#[cfg(target_os = "linux")]
#[test]
fn progress_bar_stays_silent_without_a_terminal_or_on_a_dumb_one() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args(["-t", &g.ou("Sandbox"), "--", "sleep", "1"]));
    run.expect_code(0);
    assert!(!run.stderr.contains("targets,"), "{}", run.stderr);
    assert!(
        !run.stderr.contains('\u{1b}'),
        "no escape codes: {:?}",
        run.stderr
    );
    let dumb = drawn(
        &g,
        &[("TERM", "dumb")],
        &["-t", &g.ou("Sandbox"), "--", "sleep", "1"],
    );
    assert!(!dumb.contains("targets,"), "{dumb:?}");
    let quiet = drawn(&g, &[], &["-q", "-t", &g.ou("Sandbox"), "--", "sleep", "1"]);
    assert!(
        !quiet.contains("targets,") && !quiet.contains(" ok, "),
        "{quiet:?}"
    );
}

#[test]
fn summary_names_the_failed_targets_and_quiet_hides_notes() {
    let g = Ground::start(&["--deny-assume-names", "prod-a"]);
    let script = r#"[ "$COVE_ACCOUNT_NAME" != core-a ] || exit 9"#;
    let run = Run::of(
        g.cove()
            .args(["-t", &g.ou("Workloads"), "--", "sh", "-c", script]),
    );
    assert!(
        run.stderr
            .contains("cove: 3 ok, 1 failed, 1 could not assume role in"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&format!(
        "{} (core-a) us-east-1: command exited with code 9",
        g.account("core-a")
    )));
    assert!(run.stderr.contains(&g.account("prod-a")));
    let quiet = Run::of(g.cove().args([
        "--quiet",
        "-t",
        &g.ou("Workloads"),
        "--",
        "sh",
        "-c",
        script,
    ]));
    assert_eq!(quiet.code, 1);
    assert_eq!(quiet.stderr, "", "nothing but errors with --quiet");
}

#[test]
fn dry_run_shows_the_matrix_and_why_each_account_is_in_it_without_assuming() {
    let g = Ground::start(&[]);
    let deep_a = g.account("deep-a");
    let run = Run::of(g.cove().args([
        "--dry-run",
        "-t",
        &g.ou("Workloads"),
        "-t",
        &deep_a,
        "--region",
        "us-east-1,eu-west-1",
        "--",
        "aws",
        "s3",
        "ls",
    ]));
    run.expect_code(0);
    let targets = run.doc()["Targets"].as_array().unwrap().clone();
    assert_eq!(targets.len(), 10, "5 accounts × 2 regions");
    let deep = targets.iter().find(|t| t["Id"] == deep_a.as_str()).unwrap();
    assert_eq!(
        deep["TargetedBy"],
        serde_json::json!([g.ou("Workloads"), deep_a])
    );
    for key in ["Id", "Name", "Email", "Status", "Region", "TargetedBy"] {
        assert!(deep.get(key).is_some(), "{key}");
    }
    assert!(
        run.stderr.contains("5 accounts × 2 regions = 10 targets"),
        "{}",
        run.stderr
    );
    assert_eq!(g.calls("sts:AssumeRole"), 0, "a dry run assumes nothing");
}

#[test]
fn placeholders_are_filled_per_target_and_double_braces_stay_literal() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.account("root-a"),
        "--region",
        "eu-west-1",
        "--",
        "echo",
        "{account_id}/{account_name}/{region}/{partition}",
        "{{region}}",
        r#"{"json": {"stays": true}}"#,
    ]));
    run.expect_code(0);
    assert_eq!(
        run.list("Results")[0]["Result"],
        format!(
            "{}/root-a/eu-west-1/aws {{region}} {{\"json\": {{\"stays\": true}}}}\n",
            g.account("root-a")
        )
    );
}

#[test]
fn flags_can_come_from_the_environment_and_help_shows_the_variables() {
    let g = Ground::start(&[]);
    let run = Run::of(
        g.cove()
            .env("COVE_REGIONS", "us-east-1,eu-west-1")
            .env("COVE_ROLE", "FromEnv")
            .args(["-t", &g.account("root-a"), "--", "true"]),
    );
    run.expect_code(0);
    let results = run.list("Results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["RoleName"], "FromEnv");
    let help = Run::of(g.cove().arg("--help"));
    for var in [
        "COVE_ROLE",
        "COVE_REGIONS",
        "COVE_WORKERS",
        "COVE_TIMEOUT",
        "COVE_OUTPUT",
        "COVE_FAIL_FAST",
    ] {
        assert!(
            help.stdout.contains(&format!("[env: {var}")),
            "{var} in --help"
        );
    }
}

#[test]
fn version_names_the_commit() {
    let run = Run::of(crate::support::clean_cove(Path::new("/nonexistent")).arg("--version"));
    run.expect_code(0);
    let line = run.stdout.trim();
    let commit = line
        .strip_prefix(concat!("cove ", env!("CARGO_PKG_VERSION"), " (commit "))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{line}"
    );
}

#[test]
fn committed_completions_and_man_page_match_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (path, expected) in cove::assets::render() {
        let committed = std::fs::read(root.join(&path)).unwrap_or_default();
        assert!(
            committed == expected,
            "{path} is out of date: run `cargo run --example generate-assets` and commit"
        );
    }
}

// Linux only: `man -l FILE` (render a local file) is man-db's; macOS man has no -l.
#[cfg(target_os = "linux")]
#[test]
fn man_page_renders() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("man")
        .args(["-l", root.join("man/cove.1").to_str().unwrap()])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("`man` (man-db) is needed to check the man page");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["--fail-fast", "--output-dir", "Exit codes", "COVE_WORKERS"] {
        assert!(text.contains(needle), "{needle} in the rendered page");
    }
}
