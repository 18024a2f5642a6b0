//! One child process: started in its own process group, its output read up to a cap while it
//! runs, stopped (SIGTERM, then SIGKILL) on timeout or when the run stops, and never outliving
//! its target. [`ProcessGroups`] knows every running child's group, so the signal handler can
//! kill them all at once.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::stop::{Stop, StopReason};

/// How long a stopped child gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after the child and its group are gone.
pub const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// The process groups of the children that are running.
#[derive(Debug, Default)]
pub struct ProcessGroups {
    groups: Mutex<HashSet<i32>>,
}

impl ProcessGroups {
    /// Sends `signal` to the process group of every running child.
    pub fn signal_all(&self, signal: Signal) {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for pgid in groups.iter() {
            let _ = killpg(Pid::from_raw(*pgid), signal);
        }
    }

    /// The process group of every running child (each child leads its own).
    pub fn pgids(&self) -> Vec<i32> {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.iter().copied().collect()
    }

    fn register(&self, pgid: i32) {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pgid);
    }

    fn unregister(&self, pgid: i32) {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pgid);
    }
}

/// The limits a child runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_output_bytes: usize,
    pub timeout: Option<Duration>,
}

/// Each running child holds a few descriptors in cove (two pipes, its pidfd, an STS
/// connection): raise the open-file limit as far as `--workers` needs and the system allows
/// (children inherit it, so no further), and keep `--workers` within it, so a huge value
/// cannot exhaust file descriptors. With the credential endpoint, each child also holds a
/// connection to it while it asks, and the endpoint's cap on connections waiting for their
/// request ([`crate::endpoint::connection_cap`]) is set aside, so a local flood of idle
/// connections cannot take the descriptors a child needs.
pub fn fit_workers(requested: usize, delivery: crate::child_env::Delivery) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return requested;
    };
    let needed = FdBudget::new(delivery).needed(requested);
    let wanted = hard.min(needed).min(1 << 20);
    let limit = if soft < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
        wanted
    } else {
        soft
    };
    FdBudget::new(delivery).workers(requested, limit)
}

/// How the open files of cove are shared: a fixed reserve, the credential endpoint's waiting
/// connections, and a few per running child.
struct FdBudget {
    endpoint: bool,
}

impl FdBudget {
    const FDS_PER_CHILD: u64 = 4;
    const RESERVED: u64 = 128;

    fn new(delivery: crate::child_env::Delivery) -> Self {
        FdBudget {
            endpoint: delivery == crate::child_env::Delivery::Endpoint,
        }
    }

    fn per_child(&self) -> u64 {
        Self::FDS_PER_CHILD + u64::from(self.endpoint)
    }

    /// What is set aside besides the children under an open-file limit of `limit`.
    fn set_aside(&self, limit: u64) -> u64 {
        let endpoint = if self.endpoint {
            crate::endpoint::connection_cap(limit) as u64
        } else {
            0
        };
        Self::RESERVED + endpoint
    }

    /// The open-file limit `workers` children need.
    fn needed(&self, workers: usize) -> u64 {
        (workers as u64)
            .saturating_mul(self.per_child())
            .saturating_add(self.set_aside(u64::MAX))
    }

    /// How many of `requested` workers fit under `limit` (at least one).
    fn workers(&self, requested: usize, limit: u64) -> usize {
        let fit = (limit.saturating_sub(self.set_aside(limit)) / self.per_child()).max(1);
        requested.min(usize::try_from(fit).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod fd_budget_tests {
    use super::FdBudget;
    use crate::child_env::Delivery;

    #[test]
    fn the_endpoints_connections_are_set_aside_from_the_workers() {
        let env = FdBudget::new(Delivery::Env);
        let endpoint = FdBudget::new(Delivery::Endpoint);
        assert_eq!(env.workers(100, 256), 32, "(256 - 128) / 4");
        assert_eq!(endpoint.workers(100, 256), 12, "(256 - 128 - 64) / 5");
        assert_eq!(endpoint.workers(1000, 1024), 128, "(1024 - 128 - 256) / 5");
        assert_eq!(endpoint.workers(3, 1024), 3);
        assert_eq!(endpoint.workers(100, 100), 1, "at least one");
        assert_eq!(endpoint.needed(20), 20 * 5 + 128 + 256);
        assert_eq!(env.needed(20), 20 * 4 + 128);
    }
}

/// A stream read up to a cap; the rest is drained so the child never blocks on a full pipe.
#[derive(Debug, Default)]
pub struct Capture {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

/// Reads into `capture` (owned by the caller, so what was read survives if reading is cut off).
async fn read_capped<R: AsyncRead + Unpin>(reader: Option<R>, cap: usize, capture: &mut Capture) {
    let Some(mut reader) = reader else {
        return;
    };
    // Small on purpose: every running child has two of these.
    let mut chunk = [0u8; 8 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(capture.bytes.len());
                if n > room {
                    capture.truncated = true;
                }
                capture.bytes.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    // What grew by doubling is held until written: no more than the output itself.
    capture.bytes.shrink_to_fit();
}

/// How a started child came to an end.
pub enum Ended {
    Exited,
    TimedOut(Duration),
    Stopped(StopReason),
}

pub struct ChildEnd {
    pub status: Option<std::process::ExitStatus>,
    pub stdout: Capture,
    pub stderr: Capture,
    pub ended: Ended,
    /// A process outside the child's group kept its output open after it ended.
    pub held_open: bool,
}

/// Awaits `fut` while the output readers keep draining the child's pipes.
async fn while_draining<F: Future, O: Future<Output = ()>>(
    fut: F,
    outputs: &mut std::pin::Pin<&mut O>,
    drained: &mut bool,
) -> F::Output {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            value = &mut fut => return value,
            _ = outputs.as_mut(), if !*drained => *drained = true,
        }
    }
}

/// Resolves when `limit` has passed; never without one.
async fn expiry(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// Runs one child in its own process group, and keeps what it printed even when it is stopped.
/// When the child ends, whatever it left running in its group is killed, so no grandchild
/// outlives its target; output still held open by a process that left the group is read for
/// at most [`OUTPUT_GRACE`] more.
pub async fn run_child(
    cmd: Command,
    limits: Limits,
    stop: &Stop,
    groups: &ProcessGroups,
) -> std::io::Result<ChildEnd> {
    run_child_then(cmd, limits, stop, groups, || {}).await
}

/// Starts the child and registers its process group, so that an interrupt can reach it.
fn spawn_in_group(
    cmd: &mut Command,
    groups: &ProcessGroups,
) -> std::io::Result<(tokio::process::Child, i32)> {
    let child = cmd.spawn()?;
    let Some(pid) = child.id().map(|p| p as i32) else {
        return Err(std::io::Error::other("the child exited before it was seen"));
    };
    groups.register(pid);
    Ok((child, pid))
}

/// [`run_child`], calling `group_gone` the moment the child's process group is gone (the child
/// ended and the rest of its group was killed), before its output is waited for: the credential
/// endpoint ends the target's token there, so a process that left the group and holds the
/// output open cannot use it.
pub async fn run_child_then(
    mut cmd: Command,
    limits: Limits,
    stop: &Stop,
    groups: &ProcessGroups,
    group_gone: impl FnOnce(),
) -> std::io::Result<ChildEnd> {
    enum First {
        Exit(std::io::Result<std::process::ExitStatus>),
        Early(Ended),
    }
    let (mut child, pid) = spawn_in_group(&mut cmd, groups)?;
    let started = std::time::Instant::now();
    tracing::info!(pid, "child started");
    let group = Pid::from_raw(pid);
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (mut out, mut err) = (Capture::default(), Capture::default());
    let (status, ended, held_open) = {
        let outputs = async {
            tokio::join!(
                read_capped(stdout, limits.max_output_bytes, &mut out),
                read_capped(stderr, limits.max_output_bytes, &mut err)
            );
        };
        tokio::pin!(outputs);
        let mut drained = false;
        let wait = child.wait();
        tokio::pin!(wait);
        let first = async {
            tokio::select! {
                biased;
                _ = stop.cancelled() => {
                    First::Early(Ended::Stopped(stop.reason().unwrap_or(StopReason::Interrupted)))
                }
                status = &mut wait => First::Exit(status),
                _ = expiry(limits.timeout) => {
                    First::Early(Ended::TimedOut(limits.timeout.unwrap_or_default()))
                }
            }
        };
        let first = while_draining(first, &mut outputs, &mut drained).await;
        let (status, ended) = match first {
            First::Exit(status) => (status.ok(), Ended::Exited),
            First::Early(ended) => {
                let _ = killpg(group, Signal::SIGTERM);
                let graceful = tokio::time::timeout(KILL_GRACE, &mut wait);
                let status = match while_draining(graceful, &mut outputs, &mut drained).await {
                    Ok(status) => status.ok(),
                    Err(_) => {
                        let _ = killpg(group, Signal::SIGKILL);
                        while_draining(&mut wait, &mut outputs, &mut drained)
                            .await
                            .ok()
                    }
                };
                (status, ended)
            }
        };
        let _ = killpg(group, Signal::SIGKILL);
        group_gone();
        let held_open = !drained
            && tokio::time::timeout(OUTPUT_GRACE, &mut outputs)
                .await
                .is_err();
        (status, ended, held_open)
    };
    groups.unregister(pid);
    let duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(pid, ?status, duration_ms, "child ended");
    Ok(ChildEnd {
        status,
        stdout: out,
        stderr: err,
        ended,
        held_open,
    })
}
