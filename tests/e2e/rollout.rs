//! Rolling out safely: `--max-failures` (a failure budget that halts the run without killing
//! anything), `--canary` (the first targets alone first) and `--confirm`/`--yes` (a y/N
//! question on the terminal before the first credential call).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{Ground, Run, SpawnPiped, clean_cove, venv};

/// A command of the AWS CLI that fails in every account: the bucket does not exist.
const FAILING: [&str; 5] = [
    "aws",
    "s3api",
    "head-bucket",
    "--bucket",
    "cove-no-such-bucket",
];

fn details(record: &Value) -> &str {
    record["ExceptionDetails"].as_str().unwrap_or_default()
}

fn cancelled_with(run: &Run, reason: &str) -> Vec<Value> {
    run.list("Exceptions")
        .into_iter()
        .filter(|e| details(e).contains(reason))
        .inspect(|e| {
            assert!(e["ExitCode"].is_null(), "never ran: {e}");
            assert!(details(e).starts_with("cancelled: "), "{e}");
        })
        .collect()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Reads cove's stderr on a thread of its own; the receiver hears once a line holds `needle`.
/// The thread returns all of stderr.
fn watch_stderr(
    child: &mut std::process::Child,
    needle: &'static str,
) -> (
    std::thread::JoinHandle<String>,
    std::sync::mpsc::Receiver<()>,
) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains(needle) {
                let _ = tx.send(());
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });
    (reader, rx)
}

/// The first `n` active accounts of the ground, by ID.
fn first_accounts(g: &Ground, n: usize) -> String {
    g.active_ids()[..n].join(",")
}

#[test]
fn past_max_failures_the_running_commands_finish_and_nothing_more_starts() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (ran, running, release) = (
        dir.path().join("ran"),
        dir.path().join("running"),
        dir.path().join("release"),
    );
    std::fs::create_dir(&ran).unwrap();
    std::fs::create_dir(&running).unwrap();
    // Five targets, three at a time. The first child to take the lock fails once the other two
    // are running; those two finish well only when the test releases them, after cove said it
    // halted: a halt must not kill them, nor start the last two targets.
    let script = format!(
        r#"touch {ran}/$COVE_ACCOUNT_ID
if mkdir {lock} 2>/dev/null; then
  while [ "$(ls {running} | wc -l)" -lt 2 ]; do sleep 0.05; done
  exit 3
fi
touch {running}/$COVE_ACCOUNT_ID
while [ ! -e {release} ]; do sleep 0.05; done
echo '{{"finished": true}}'"#,
        ran = ran.display(),
        running = running.display(),
        release = release.display(),
        lock = dir.path().join("failer").display()
    );
    let mut child = g
        .cove()
        .args(["-t", &first_accounts(&g, 5), "--workers", "3"])
        .args(["--max-failures", "0", "--", "sh", "-c", &script])
        .spawn_piped();
    let (reader, halted) = watch_stderr(&mut child, "max failures reached");
    let _ = halted.recv_timeout(Duration::from_secs(60));
    std::fs::write(&release, "").unwrap();
    let mut run = crate::support::finish_within(
        child,
        Duration::from_secs(60),
        "the run to end once the running commands were released",
        || std::fs::write(&release, "").unwrap(),
    );
    run.stderr = reader.join().unwrap();
    run.expect_code(1);
    assert_eq!(entries(&ran).len(), 3, "only the first three started");
    let results = run.list("Results");
    assert_eq!(results.len(), 2, "the two running finished: {}", run.stdout);
    for r in &results {
        assert_eq!(r["Result"]["finished"], true, "{r}");
        assert!(entries(&running).contains(&r["Id"].as_str().unwrap().to_owned()));
    }
    let exceptions = run.list("Exceptions");
    assert_eq!(exceptions.len(), 3, "every target reported once");
    assert_eq!(exceptions.iter().filter(|e| e["ExitCode"] == 3).count(), 1);
    let cancelled = cancelled_with(&run, "max failures reached");
    assert_eq!(cancelled.len(), 2, "{}", run.stdout);
    for e in &cancelled {
        assert!(!entries(&ran).contains(&e["Id"].as_str().unwrap().to_owned()));
    }
    assert!(
        run.stderr.contains("(max failures reached)"),
        "the summary says why: {}",
        run.stderr
    );
}

#[test]
fn a_percentage_of_the_targets_from_its_variable_halts_a_listed_run() {
    let g = Ground::start(&[]);
    // Five targets one at a time, all failing: one is 20%, the second is past it.
    let run = Run::of(
        g.cove()
            .env("COVE_MAX_FAILURES", "20%")
            .args(["-t", &first_accounts(&g, 5), "--workers", "1", "--"])
            .args(FAILING),
    );
    run.expect_code(1);
    let exceptions = run.list("Exceptions");
    assert_eq!(exceptions.len(), 5);
    let ran: Vec<&Value> = exceptions
        .iter()
        .filter(|e| !e["ExitCode"].is_null())
        .collect();
    assert_eq!(ran.len(), 2, "{}", run.stdout);
    assert!(
        ran.iter()
            .all(|e| e["ExitCode"] != 0 && e["AssumeRoleSuccess"] == true)
    );
    assert_eq!(cancelled_with(&run, "max failures reached").len(), 3);
    assert!(
        run.stderr
            .contains("2 of 5 targets known failed, more than --max-failures 20%"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_streamed_run_counts_the_targets_listed_so_far() {
    // ListAccounts in pages of four, the second held back until the test sees the halt: the
    // first page holds the management account, root-a, root-b and a suspended one, so two
    // targets are known. Two failures of two are past 50%; of the whole organization they
    // would not be.
    let g = Ground::start(&[
        "--list-accounts-page-size",
        "4",
        "--hold-list-accounts-page",
        "2",
    ]);
    let total = g.active_ids().len();
    let mut child = g
        .cove()
        .args(["--max-failures", "50%", "--workers", "1", "--"])
        .args(["sh", "-c", "exit 7"])
        .spawn_piped();
    let (reader, halted) = watch_stderr(&mut child, "max failures reached");
    // Released once halted, or, should it never halt, after a while: the asserts say which.
    let _ = halted.recv_timeout(Duration::from_secs(60));
    g.release();
    let mut run =
        crate::support::finish_within(child, Duration::from_secs(120), "the run to end", || {});
    run.stderr = reader.join().unwrap();
    run.expect_code(1);
    let exceptions = run.list("Exceptions");
    assert_eq!(exceptions.len(), total, "every target reported once");
    let ran = exceptions.iter().filter(|e| e["ExitCode"] == 7).count();
    assert_eq!(ran, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("max failures reached: 2 of 2 targets known failed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        cancelled_with(&run, "max failures reached").len(),
        total - ran
    );
}

/// A script that logs `start ID REGION` and `end ID REGION` around the AWS CLI's caller
/// identity (or `fail_in`'s failure).
fn logged(log: &Path, fail_in: &str) -> String {
    format!(
        r#"echo "start $COVE_ACCOUNT_ID $AWS_REGION" >> {log}
if [ "$COVE_ACCOUNT_NAME" = "{fail_in}" ]; then aws s3api head-bucket --bucket cove-no-such-bucket; rc=$?
else aws sts get-caller-identity --output json; rc=$?; fi
echo "end $COVE_ACCOUNT_ID $AWS_REGION" >> {log}
exit $rc"#,
        log = log.display()
    )
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_canaries_are_the_first_targets_in_output_order_and_run_alone() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let accounts = first_accounts(&g, 3);
    let (first, second) = (g.active_ids()[0].clone(), g.active_ids()[1].clone());
    // Regions given out of order: the output (and so the canaries) is by ID, then region.
    let run = Run::of(g.cove().args([
        "-t",
        &accounts,
        "--region",
        "us-east-1,eu-west-1",
        "--canary",
        "3",
        "--workers",
        "4",
        "--",
        "sh",
        "-c",
        &logged(&log, "none"),
    ]));
    run.expect_code(0);
    let results = run.list("Results");
    assert_eq!(results.len(), 6);
    for r in &results {
        assert_eq!(r["Result"]["Account"], r["Id"], "{r}");
    }
    let lines = log_lines(&log);
    let mut canaries: Vec<&str> = lines[..6].iter().map(String::as_str).collect();
    canaries.sort();
    assert_eq!(
        canaries,
        [
            format!("end {first} eu-west-1"),
            format!("end {first} us-east-1"),
            format!("end {second} eu-west-1"),
            format!("start {first} eu-west-1"),
            format!("start {first} us-east-1"),
            format!("start {second} eu-west-1"),
        ],
        "the three canaries started and ended before anything else: {lines:?}"
    );
    assert_eq!(lines.len(), 12);
    assert!(
        run.stderr
            .contains("canary phase over: all 3 canary targets succeeded"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_failed_canary_starts_nothing_else_and_assumes_no_other_role() {
    let g = Ground::start(&[]);
    let run = Run::of(
        g.cove()
            .env("COVE_CANARY", "1")
            .args(["-t", &first_accounts(&g, 3), "--workers", "4", "--"])
            .args(FAILING),
    );
    run.expect_code(1);
    let exceptions = run.list("Exceptions");
    assert_eq!(exceptions.len(), 3);
    assert_eq!(exceptions[0]["Id"], g.active_ids()[0], "the canary ran");
    assert!(exceptions[0]["ExitCode"].as_i64().unwrap() > 0);
    assert_eq!(cancelled_with(&run, "canary failed").len(), 2);
    assert_eq!(g.calls("sts:AssumeRole"), 1, "only the canary's role");
    assert!(run.stderr.contains("(canary failed)"), "{}", run.stderr);
}

#[test]
fn a_streamed_canary_is_the_first_to_arrive_and_combines_with_max_failures() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let total = g.active_ids().len();
    let sandbox_b = g.account("sandbox-b");
    let run = Run::of(g.cove().args([
        "--canary",
        "1",
        "--max-failures",
        "0",
        "--workers",
        "1",
        "--",
        "sh",
        "-c",
        &logged(&log, "sandbox-b"),
    ]));
    run.expect_code(1);
    let lines = log_lines(&log);
    let canary = lines[0].strip_prefix("start ").unwrap();
    assert_eq!(lines[1], format!("end {canary}"), "{lines:?}");
    assert!(
        run.stderr
            .contains("canary phase over: all 1 canary targets"),
        "{}",
        run.stderr
    );
    let failed: Vec<Value> = run
        .list("Exceptions")
        .into_iter()
        .filter(|e| !e["ExitCode"].is_null())
        .collect();
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    assert_eq!(failed[0]["Id"], sandbox_b);
    let ran = run.list("Results").len() + 1;
    assert_eq!(
        cancelled_with(&run, "max failures reached").len(),
        total - ran
    );
    assert_eq!(lines.len(), 2 * ran, "nothing started after the failure");
}

#[test]
fn in_a_streamed_run_the_canary_runs_alone_whatever_the_workers() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    // The first target to start waits up to two seconds for another to start beside it:
    // none may, however slow the machine.
    let script = format!(
        r#"echo "start $COVE_ACCOUNT_ID" >> {log}
if mkdir {lock} 2>/dev/null; then
  for i in $(seq 40); do [ "$(grep -c start {log})" -gt 1 ] && break; sleep 0.05; done
fi
echo "end $COVE_ACCOUNT_ID" >> {log}"#,
        log = log.display(),
        lock = dir.path().join("first").display()
    );
    let run =
        Run::of(
            g.cove()
                .args(["--canary", "1", "--workers", "8", "--", "sh", "-c", &script]),
        );
    run.expect_code(0);
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 2 * g.active_ids().len());
    let canary = lines[0].strip_prefix("start ").unwrap();
    assert_eq!(lines[1], format!("end {canary}"), "{lines:?}");
}

#[test]
fn region_discovery_failures_count_against_the_budget_before_anything_runs() {
    let g = Ground::start(&["--deny-list-regions-names", "deep-b"]);
    let run = Run::of(g.cove().args([
        "--region",
        "all",
        "--max-failures",
        "0",
        "-t",
        &g.ou("Deep"),
        "--",
        "true",
    ]));
    run.expect_code(1);
    assert!(run.list("Results").is_empty(), "{}", run.stdout);
    assert_eq!(run.list("FailedAssumeRole").len(), 1);
    assert_eq!(
        cancelled_with(&run, "max failures reached").len(),
        2,
        "deep-a's two regions: {}",
        run.stdout
    );
}

#[test]
fn bad_rollout_values_are_refused_naming_the_value_and_what_is_expected() {
    let home = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a [&'a str], Option<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 7] = [
        (&["--max-failures", "101%"], None, "`101%` is over 100%"),
        (&["--max-failures=-1"], None, "`-1`"),
        (
            &["--max-failures", "0.125%"],
            None,
            "more than two decimals",
        ),
        (&[], Some(("COVE_MAX_FAILURES", "lots")), "`lots`"),
        (
            &["--canary", "0"],
            None,
            "`0` is not a number of canary targets",
        ),
        (&[], Some(("COVE_CANARY", "two")), "`two`"),
        (
            &["--canary", "1.5"],
            None,
            "expected a whole number of 1 or more",
        ),
    ];
    for (args, var, expected) in cases {
        let mut cmd = clean_cove(home.path());
        if let Some((k, v)) = var {
            cmd.env(k, v);
        }
        let run = Run::of(cmd.args(args).args(["--", "true"]));
        run.expect_code(2);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("expected"), "{args:?}: {}", run.stderr);
        if let Some((k, _)) = var {
            assert!(run.stderr.contains(k), "names the variable: {}", run.stderr);
        }
    }
}

#[test]
fn confirm_without_a_terminal_or_yes_is_refused_before_any_aws_call() {
    let g = Ground::start(&[]);
    let cove = g.cove();
    // A session of its own: no controlling terminal, whatever the test runner has.
    let run = Run::of(
        Command::new("setsid")
            .arg("-w")
            .arg(cove.get_program())
            .args(["--confirm", "--"])
            .args(crate::support::WHO_AM_I)
            .env_clear()
            .envs(cove.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(Stdio::null()),
    );
    run.expect_code(2);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("--confirm needs a terminal") && run.stderr.contains("--yes"),
        "{}",
        run.stderr
    );
    assert_eq!(g.all_calls(), serde_json::json!({}), "no AWS call");
}

#[test]
fn yes_answers_and_the_run_is_listed_and_counted_first() {
    let g = Ground::start(&[]);
    let total = g.active_ids().len();
    let run = Run::of(
        g.cove()
            .env("COVE_CONFIRM", "true")
            .env("COVE_YES", "true")
            .args(["--region", "us-east-1", "--", "true"]),
    );
    run.expect_code(0);
    assert_eq!(run.list("Results").len(), total);
    let expected = format!(
        "run `true` in {total} accounts × 1 region (us-east-1) = {total} targets as OrganizationAccountAccessRole? (yes: --yes)"
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
}

/// Runs cove under a pseudo-terminal (Python's `pty`), typing `answer` (with its line break)
/// once the question shows. Returns the exit code, cove's stdout (a file, not the terminal) and the screen.
fn answer_under_pty(g: &Ground, args: &[&str], answer: &str) -> (i32, String, String) {
    const SCRIPT: &str = r#"
import os, pty, select, sys
out, answer, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 1)
    os.execv(argv[0], argv)
screen, answered = b"", False
while True:
    ready, _, _ = select.select([fd], [], [], 60)
    if not ready:
        break
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    screen += data
    if not answered and b"[y/N]" in screen:
        os.write(fd, answer.encode())
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(screen.decode("utf-8", "replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stdout");
    let cove = g.cove();
    let result = Command::new(venv().join("bin/python"))
        .args(["-c", SCRIPT])
        .arg(&out)
        .arg(answer)
        .arg(cove.get_program())
        .args(args)
        .env_clear()
        .envs(cove.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&result.stdout).into_owned();
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    (result.status.code().unwrap_or(-1), stdout, screen)
}

#[test]
fn confirm_asks_on_the_terminal_and_anything_but_yes_runs_nothing() {
    let g = Ground::start(&["--rename", r"prod-a=evil\u001b]0;title\u0007name"]);
    let targets = g.ids(&["prod-a", "core-a"]).join(",");
    let args = [
        "--confirm",
        "-t",
        &targets,
        "--region",
        "us-east-1,eu-west-1",
        "--canary",
        "1",
        "--",
        "aws",
        "sts",
        "get-caller-identity",
        "--query",
        "[Account, Arn]",
    ];
    for answer in ["n\n", "\n", "yes please\n", "no\n"] {
        let (code, stdout, screen) = answer_under_pty(&g, &args, answer);
        assert_eq!(code, 2, "{answer:?}: {screen}");
        assert!(
            stdout.is_empty(),
            "{answer:?}: stdout stays empty: {stdout}"
        );
        assert!(
            screen.contains(
                "run `aws sts get-caller-identity --query '[Account, Arn]'` in 2 accounts × 2 regions (eu-west-1, us-east-1) = 4 targets as OrganizationAccountAccessRole? [y/N]"
            ),
            "{answer:?}: {screen}"
        );
        assert!(screen.contains("with --canary 1"), "{screen}");
        assert!(screen.contains("not confirmed"), "{screen}");
        assert!(
            screen.contains(r"(evil\u{1b}]0;title\u{7}name)") && !screen.contains('\x1b'),
            "the account name is escaped: {screen}"
        );
    }
    assert_eq!(g.calls("sts:AssumeRole"), 0, "nothing ran");

    // Ctrl-C at the question (no line typed after it): an interrupt before any target, with an
    // empty document.
    let (code, stdout, screen) = answer_under_pty(&g, &args, "\x03");
    assert_eq!(code, 130, "{screen}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["Results"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["Exceptions"], serde_json::json!([]), "{doc}");
    assert_eq!(g.calls("sts:AssumeRole"), 0, "nothing ran");

    let (code, stdout, screen) = answer_under_pty(&g, &args, "y\n");
    assert_eq!(code, 0, "{screen}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["Results"].as_array().unwrap().len(), 4, "{doc}");
}

/// `confirm = true` in a config group asks as `--confirm` does: refused without a terminal,
/// and answered by `--yes`.
#[test]
fn confirm_in_a_config_group_asks_as_the_flag_does() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cove.toml");
    std::fs::write(&config, "[groups.careful]\nconfirm = true\n").unwrap();
    let cove = g.cove();
    let run = Run::of(
        Command::new("setsid")
            .arg("-w")
            .arg(cove.get_program())
            .args(["-g", "careful", "--"])
            .args(crate::support::WHO_AM_I)
            .env_clear()
            .envs(cove.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .env("COVE_CONFIG", &config)
            .stdin(Stdio::null()),
    );
    run.expect_code(2);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("--confirm needs a terminal"),
        "{}",
        run.stderr
    );
    assert_eq!(g.all_calls(), serde_json::json!({}), "no AWS call");
    let total = g.active_ids().len();
    let run = Run::of(g.cove().env("COVE_CONFIG", &config).args([
        "-g",
        "careful",
        "--yes",
        "--region",
        "us-east-1",
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.list("Results").len(), total);
    assert!(
        run.stderr.contains(&format!("= {total} targets as")),
        "{}",
        run.stderr
    );
}
