//! Ctrl-C and SIGTERM: children stop, nothing is lost, and nothing outlives cove.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::faults::{assert_all_dead, kill_all, wait_for_pids};
use crate::support::{Ground, SpawnPiped, finish_within, wait_until};

/// What an interrupted cove must do before its test gives up on it.
const STOPS: &str = "cove to stop its children and exit after the interrupt";

/// Waits until cove has recorded the account's target: its `--output-dir` files are written
/// when the record is taken, so a signal sent after this cannot catch it still running.
fn wait_until_recorded(out: &std::path::Path, id: &str) {
    wait_until(
        &format!("cove to record {id}"),
        Duration::from_secs(30),
        || out.join(id).join("us-east-1").join("stdout").exists(),
    );
}

fn interrupted_run(signal: Signal) {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        r#"if [ "$COVE_ACCOUNT_NAME" = workloads-a ]; then echo quick; exit 0; fi
sleep 1000 & echo $! >> {dir}/$COVE_ACCOUNT_ID
echo $$ >> {dir}/$COVE_ACCOUNT_ID
wait"#,
        dir = dir.path().display()
    );
    let out = tempfile::tempdir().unwrap();
    let child = g
        .cove()
        .args([
            "-t",
            &g.ou("Workloads"),
            "--workers",
            "5",
            "--output-dir",
            out.path().to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &script,
        ])
        .spawn_piped();
    let pids = wait_for_pids(dir.path(), 8);
    wait_until_recorded(out.path(), &g.account("workloads-a"));
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let run = finish_within(child, Duration::from_secs(30), STOPS, || kill_all(&pids));
    run.expect_code(130);
    assert_eq!(
        run.ids("Results"),
        g.ids(&["workloads-a"]),
        "finished work is kept"
    );
    let stopped = run.list("Exceptions");
    assert_eq!(
        run.ids("Exceptions"),
        g.ids(&["prod-a", "core-a", "deep-a", "deep-b"]),
        "each stopped target exactly once"
    );
    assert_eq!(stopped.len(), 4);
    for e in &stopped {
        assert!(
            e["ExceptionDetails"]
                .as_str()
                .unwrap()
                .contains("interrupted"),
            "{e}"
        );
    }
    assert_all_dead(&pids);
}

#[test]
fn sigint_stops_children_and_grandchildren_and_still_reports_everything() {
    interrupted_run(Signal::SIGINT);
}

#[test]
fn sigterm_behaves_like_ctrl_c() {
    interrupted_run(Signal::SIGTERM);
}

#[test]
fn sighup_stops_the_children_too() {
    interrupted_run(Signal::SIGHUP);
}

#[test]
fn interrupting_a_whole_organization_run_reports_every_listed_account_once() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        r#"if [ "$COVE_ACCOUNT_NAME" = root-a ]; then exit 0; fi
sleep 1000 & echo $! >> {dir}/$COVE_ACCOUNT_ID
wait"#,
        dir = dir.path().display()
    );
    let out = tempfile::tempdir().unwrap();
    let child = g
        .cove()
        .args(["--output-dir", out.path().to_str().unwrap()])
        .args(["--", "sh", "-c", &script])
        .spawn_piped();
    let pids = wait_for_pids(dir.path(), 8);
    wait_until_recorded(out.path(), &g.account("root-a"));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let run = finish_within(child, Duration::from_secs(30), STOPS, || kill_all(&pids));
    run.expect_code(130);
    assert_eq!(run.ids("Results"), g.ids(&["root-a"]));
    let mut all: Vec<String> = run
        .records()
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    all.sort();
    assert_eq!(all, g.active_ids(), "each account exactly once");
    assert_all_dead(&pids);
}

#[test]
fn second_interrupt_exits_130_at_once_without_a_document_and_kills_children_ignoring_sigterm() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let stderr_path = dir.path().join("stderr");
    let pid_dir = dir.path().join("pids");
    std::fs::create_dir(&pid_dir).unwrap();
    // The shell and its sleep both ignore SIGTERM: only SIGKILL ends them.
    let script = format!(
        "trap '' TERM; sleep 1000 & echo $! > {d}/$COVE_ACCOUNT_ID; echo $$ >> {d}/$COVE_ACCOUNT_ID; wait",
        d = pid_dir.display()
    );
    let child = g
        .cove()
        .args(["-t", &g.ou("Sandbox"), "--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let pids = wait_for_pids(&pid_dir, 4);
    let cove = Pid::from_raw(child.id() as i32);
    kill(cove, Signal::SIGINT).unwrap();
    wait_until(
        "cove to take the first interrupt",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&stderr_path)
                .unwrap_or_default()
                .contains("interrupt again to exit at once")
        },
    );
    let second = Instant::now();
    kill(cove, Signal::SIGINT).unwrap();
    // Without the second interrupt cove would wait out the 2 s SIGTERM grace, then report.
    let run = finish_within(child, Duration::from_secs(30), "exit 130", || {
        kill_all(&pids)
    });
    let took = second.elapsed();
    run.expect_code(130);
    assert!(
        took < Duration::from_secs(1),
        "exited {took:?} after the second interrupt, not at once"
    );
    assert_eq!(run.stdout, "", "no document after a second interrupt");
    assert_all_dead(&pids);
}

#[test]
fn an_interrupted_dry_run_still_prints_a_dry_run_document() {
    // The OU walk waits on the ground, so the interrupt lands before any target is known.
    let g = Ground::start(&["--hold-parent", "Workloads"]);
    let child = g
        .cove()
        .args(["--dry-run", "-t", &g.ou("Workloads")])
        .spawn_piped();
    wait_until(
        "the walk to reach the held OU",
        Duration::from_secs(30),
        || g.held() > 0,
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let run = finish_within(child, Duration::from_secs(30), STOPS, || g.release());
    g.release();
    run.expect_code(130);
    let doc = run.doc();
    assert_eq!(doc["Targets"], serde_json::json!([]), "{doc}");
    assert_eq!(
        doc["Roles"],
        serde_json::json!(["OrganizationAccountAccessRole"])
    );
    assert!(doc.get("Results").is_none(), "not a run's document: {doc}");
}
