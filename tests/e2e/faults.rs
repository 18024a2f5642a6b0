//! Faults: throttling, denials, timeouts, runaway output, odd bytes and impatient users.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Ground, Run, eventually, wait_until};

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
        // Reaped since the check above (on Linux), or a system without /proc (macOS): ask ps,
        // which shows a zombie's state as Z there too.
        Err(_) if Path::new("/proc/self").exists() => false,
        Err(_) => std::process::Command::new("ps")
            .args(["-o", "stat=", "-p", &pid.to_string()])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .is_some_and(|state| !state.is_empty() && !state.starts_with('Z')),
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

/// SIGKILL to each PID, for a test that gives up: nothing it started may outlive it.
pub fn kill_all(pids: &[i32]) {
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
}

/// Waits (at most 30 s) until the children have written `count` PIDs into `dir`.
pub fn wait_for_pids(dir: &Path, count: usize) -> Vec<i32> {
    wait_until(
        &format!("the children to write {count} PIDs into {}", dir.display()),
        Duration::from_secs(30),
        || pids_in(dir).len() >= count,
    );
    pids_in(dir)
}

/// Every process in `pids` is gone (or a zombie) within a few seconds: killed, not left behind.
pub fn assert_all_dead(pids: &[i32]) {
    assert!(!pids.is_empty(), "the children wrote their PIDs");
    let mut survivors = Vec::new();
    let all_gone = eventually(Duration::from_secs(5), || {
        survivors = pids.iter().copied().filter(|p| alive(*p)).collect();
        survivors.is_empty()
    });
    let described: Vec<String> = survivors
        .iter()
        .map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            format!("{p}: {}", stat.trim())
        })
        .collect();
    assert!(all_gone, "processes outlived their target: {described:?}");
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
fn workers_past_the_open_file_limit_are_capped_with_a_warning_and_the_cap_holds() {
    // 192 open files: (192 - 128 kept for cove) / 4 per child = 16 children at a time.
    let g = Ground::start(&["--extra-root-accounts", "20"]);
    let dir = tempfile::tempdir().unwrap();
    let (running, seen) = (dir.path().join("running"), dir.path().join("seen"));
    std::fs::create_dir(&running).unwrap();
    std::fs::create_dir(&seen).unwrap();
    // Each child counts the children running a second after it started: never more than ran.
    let script = format!(
        "touch {r}/$COVE_ACCOUNT_ID; sleep 1; ls {r} | wc -l > {s}/$COVE_ACCOUNT_ID; rm {r}/$COVE_ACCOUNT_ID",
        r = running.display(),
        s = seen.display()
    );
    // cove under `ulimit -n 192` (soft and hard), with the environment the ground gives it.
    let base = g.cove();
    let mut cmd = std::process::Command::new("sh");
    cmd.env_clear()
        .envs(
            base.get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .args(["-c", r#"ulimit -n 192 && exec "$0" "$@""#])
        .arg(base.get_program())
        .args(["--workers", "1000", "--", "sh", "-c", &script])
        .stdin(std::process::Stdio::null());
    let run = Run::of(&mut cmd);
    let counts: Vec<usize> = std::fs::read_dir(&seen)
        .unwrap()
        .map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            text.trim().parse().unwrap()
        })
        .collect();
    let most = counts.iter().copied().max().unwrap_or(0);
    assert!(
        most <= 16,
        "{most} children ran at once, past the cap of 16"
    );
    run.expect_code(0);
    assert!(
        run.stderr.contains(
            "--workers 1000 needs more open files than this system allows; running 16 at a time"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(run.ids("Results"), g.active_ids());
    assert_eq!(counts.len(), g.active_ids().len(), "every child counted");
    assert!(most > 1, "the children ran side by side: {counts:?}");
}

#[test]
fn max_assume_rate_spaces_assume_role_calls_at_that_rate() {
    // 9 accounts at 5 calls a second: the 9 calls span at least 8 intervals of 200 ms, and no
    // two come much closer than one interval. Unlimited, they all land within a few ms.
    let g = Ground::start(&[]);
    let run = Run::of(g.cove().args(["--max-assume-rate", "5", "--", "true"]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.active_ids());
    let times = g.assume_times();
    assert_eq!(
        times.len(),
        g.active_ids().len(),
        "one AssumeRole per account"
    );
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let span = times.last().unwrap() - times.first().unwrap();
    assert!(
        span >= 8.0 * 0.2 - 0.1,
        "9 calls at 5/s take at least 1.5 s, took {span:.3} s: gaps {gaps:?}"
    );
    assert!(
        gaps.iter().all(|gap| *gap >= 0.1),
        "calls closer than half the 200 ms interval: {gaps:?}"
    );
}

// Linux only: macOS has no setsid(1) to start a process outside the child's group.
#[cfg(target_os = "linux")]
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

// Linux only: /dev/full, a device that fails every write, exists only there.
#[cfg(target_os = "linux")]
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
            .contains("could not write its --output-dir files"),
        "{noted}"
    );
    assert!(
        run.stderr.contains(&format!(
            "cove: warning: {blocked} us-east-1: could not write its --output-dir files"
        )),
        "{}",
        run.stderr
    );
}
