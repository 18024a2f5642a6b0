//! Faults: throttling, denials, timeouts, runaway output, odd bytes and impatient users.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Ground, Run};

/// Alive and not a zombie waiting for a parent that does not reap.
pub fn alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// Every PID written, one per line, into the files of `dir`.
pub fn pids_in(dir: &Path) -> Vec<i32> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Waits (at most 30 s) until the children have written `count` PIDs into `dir`.
pub fn wait_for_pids(dir: &Path, count: usize) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids_in(dir).len() < count {
        assert!(Instant::now() < deadline, "children did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    pids_in(dir)
}

pub fn assert_all_dead(pids: &[i32]) {
    assert!(!pids.is_empty(), "the children wrote their PIDs");
    std::thread::sleep(Duration::from_millis(200));
    let survivors: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(
        survivors.is_empty(),
        "processes outlived their target: {survivors:?}"
    );
}

#[test]
fn access_denied_is_not_retried() {
    let g = Ground::start(&["--deny-assume-names", "sandbox-a"]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--region",
        "us-east-1,eu-west-1",
        "--",
        "true",
    ]));
    run.expect_code(1);
    assert_eq!(
        run.list("FailedAssumeRole").len(),
        2,
        "both regions reported"
    );
    let denied = g.account("sandbox-a");
    let calls = g
        .assume_params()
        .iter()
        .filter(|p| p["RoleArn"].as_str().unwrap().contains(&denied))
        .count();
    assert_eq!(calls, 1, "exactly one AssumeRole for the denied account");
}

#[test]
fn timeout_kills_the_whole_process_group_and_reports_it() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "sleep 1000 & echo $! > {d}/$COVE_ACCOUNT_ID; echo $$ >> {d}/$COVE_ACCOUNT_ID; echo started; sleep 1000",
        d = dir.path().display()
    );
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--timeout",
        "1s",
        "--",
        "sh",
        "-c",
        &script,
    ]));
    run.expect_code(1);
    let exceptions = run.list("Exceptions");
    assert_eq!(exceptions.len(), 2);
    for e in &exceptions {
        assert!(e["ExitCode"].is_null());
        assert!(
            e["ExceptionDetails"]
                .as_str()
                .unwrap()
                .contains("timed out after 1s"),
            "{e}"
        );
        assert_eq!(
            e["Result"], "started\n",
            "output before the timeout is kept"
        );
    }
    assert_all_dead(&pids_in(dir.path()));
}

#[test]
fn background_processes_left_by_a_finished_command_are_killed() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "sleep 1000 & echo $! > {}/$COVE_ACCOUNT_ID; echo done",
        dir.path().display()
    );
    let started = Instant::now();
    let run = Run::of(
        g.cove()
            .args(["-t", &g.ou("Sandbox"), "--", "sh", "-c", &script]),
    );
    run.expect_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "a leftover pipe holder must not hang cove"
    );
    assert_eq!(run.list("Results")[0]["Result"], "done\n");
    assert_all_dead(&pids_in(dir.path()));
}

#[test]
fn output_past_the_cap_is_cut_drained_and_flagged() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.account("root-a"),
        "--max-output-bytes",
        "1K",
        "--",
        "sh",
        "-c",
        "head -c 50000000 /dev/zero | tr '\\0' x; echo finished >&2",
    ]));
    run.expect_code(0);
    let r = &run.list("Results")[0];
    assert_eq!(r["Result"].as_str().unwrap().len(), 1024);
    assert_eq!(
        r["Stderr"], "finished\n",
        "the child was drained and ran to its end"
    );
    assert!(
        r["ExceptionDetails"]
            .as_str()
            .unwrap()
            .contains("stdout truncated at 1024 bytes")
    );
}

#[test]
fn invalid_utf8_output_is_kept_lossily() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args([
        "-t",
        &g.account("root-a"),
        "--",
        "sh",
        "-c",
        "printf 'ok\\377\\376end'; printf 'err\\300' >&2",
    ]));
    run.expect_code(0);
    let r = &run.list("Results")[0];
    assert_eq!(r["Result"], "ok\u{fffd}\u{fffd}end");
    assert_eq!(r["Stderr"], "err\u{fffd}");
}

#[test]
fn second_interrupt_exits_at_once_and_still_kills_children_that_ignore_sigterm() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "trap '' TERM; sleep 1000 & echo $! > {d}/$COVE_ACCOUNT_ID; echo $$ >> {d}/$COVE_ACCOUNT_ID; wait",
        d = dir.path().display()
    );
    let child = g
        .cove()
        .args(["-t", &g.ou("Sandbox"), "--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pids = wait_for_pids(dir.path(), 4);
    let cove = Pid::from_raw(child.id() as i32);
    kill(cove, Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    kill(cove, Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert_all_dead(&pids);
}

#[test]
fn huge_worker_count_is_accepted_without_exhausting_descriptors() {
    let g = Ground::start(&["--extra-root-accounts", "20"]);
    let run = Run::of(g.cove().args(["--workers", "100000", "--", "true"]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
}

#[test]
fn capped_assume_rate_still_runs_every_target() {
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args([
        "--max-assume-rate",
        "20",
        "-t",
        &g.ou("Workloads"),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.list("Results").len(), 5);
}

#[test]
fn output_held_open_by_a_process_outside_the_group_does_not_hold_the_target() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "setsid sleep 30 & echo $! > {}/escaped; sleep 60",
        dir.path().display()
    );
    let started = Instant::now();
    let run = Run::of(g.cove().args([
        "-t",
        &g.account("root-a"),
        "--timeout",
        "1s",
        "--",
        "sh",
        "-c",
        &script,
    ]));
    let elapsed = started.elapsed();
    for pid in pids_in(dir.path()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    run.expect_code(1);
    assert!(
        elapsed < Duration::from_secs(20),
        "the target ended near its timeout: {elapsed:?}"
    );
    let details = run.list("Exceptions")[0]["ExceptionDetails"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        details.contains("timed out after 1s") && details.contains("still open"),
        "{details}"
    );
}

#[test]
fn a_failing_stdout_is_an_error_not_a_quiet_success() {
    let g = Ground::start(&[]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = g
        .cove()
        .args(["-o", "jsonl", "-t", &g.ou("Sandbox"), "--", "true"])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("could not write the results"), "{stderr}");
}

#[test]
fn an_output_dir_that_cannot_take_a_target_is_noted_on_that_record() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let blocked = g.account("sandbox-a");
    std::fs::write(dir.path().join(&blocked), "not a directory").unwrap();
    let run = Run::of(g.cove().args([
        "-t",
        &g.ou("Sandbox"),
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.list("Results").len(), 2, "both targets still reported");
    let noted = run
        .list("Results")
        .into_iter()
        .find(|r| r["Id"] == blocked.as_str())
        .unwrap();
    assert!(
        noted["ExceptionDetails"]
            .as_str()
            .unwrap()
            .contains("--output-dir"),
        "{noted}"
    );
    assert!(run.stderr.contains("warning"), "{}", run.stderr);
}
