//! Ctrl-C and SIGTERM: children stop, nothing is lost, and nothing outlives cove.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::faults::{alive, wait_for_pids};
use crate::support::{Ground, Run};

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
    let child = g
        .cove()
        .args([
            "-t",
            &g.ou("Workloads"),
            "--workers",
            "5",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pids = wait_for_pids(dir.path(), 8);
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let run = Run::from_output(child.wait_with_output().unwrap());
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
    std::thread::sleep(Duration::from_millis(200));
    let survivors: Vec<i32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        survivors.is_empty(),
        "processes outlived cove: {survivors:?}"
    );
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
    let child = g
        .cove()
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pids = wait_for_pids(dir.path(), 8);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let run = Run::from_output(child.wait_with_output().unwrap());
    run.expect_code(130);
    assert_eq!(run.ids("Results"), g.ids(&["root-a"]));
    let mut all: Vec<String> = run
        .records()
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    all.sort();
    assert_eq!(all, g.active_ids(), "each account exactly once");
    std::thread::sleep(Duration::from_millis(200));
    assert!(pids.iter().all(|p| !alive(*p)), "children outlived cove");
}
