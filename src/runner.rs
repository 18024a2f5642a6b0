//! Runs the command in every target (account × region), `workers` at a time, and turns each
//! outcome into a [`Record`]. Every target ends in exactly one record, whatever happens:
//! failures, panics, fail-fast and interrupts included.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::aws::{Account, Aws};
use crate::child_env;
use crate::credentials::CredentialCache;
use crate::output::{Outcome, RawOutput, Record, result_value};
use crate::plan::Target;
use crate::template;

/// How long a stopped child gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after the child and its group are gone.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// What every target runs, and how.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub command: Vec<OsString>,
    pub workers: usize,
    pub fail_fast: bool,
    pub partition: String,
    pub max_output_bytes: usize,
    pub timeout: Option<Duration>,
    /// Keep the raw bytes of each child's output for `--output-dir`.
    pub keep_raw_output: bool,
    /// Variables of cove's own environment that children must not see, beyond the fixed list.
    pub remove_env: Vec<OsString>,
}

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Interrupted,
    FailFast,
    /// The reader of stdout went away (`| head`).
    OutputClosed,
    /// Writing the output failed (disk full, ...): see [`Stop::output_error`].
    OutputFailed,
}

impl StopReason {
    fn detail(self) -> &'static str {
        match self {
            StopReason::Interrupted => {
                "cancelled: cove was interrupted before this target finished"
            }
            StopReason::FailFast => {
                "cancelled: --fail-fast stopped the run after the first failure"
            }
            StopReason::OutputClosed => "cancelled: the output was closed",
            StopReason::OutputFailed => "cancelled: the output could not be written",
        }
    }
}

/// Shared by the scheduler, every target and the signal handler: the stop flag and the process
/// groups of the children that are running, so that all of them can be killed.
#[derive(Debug, Default)]
pub struct Stop {
    token: CancellationToken,
    reason: OnceLock<StopReason>,
    output_error: OnceLock<String>,
    groups: Mutex<HashSet<i32>>,
}

impl Stop {
    /// Starts nothing new and stops running children. The first reason given wins.
    pub fn trigger(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Resolves once the run is told to stop.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.reason.get().copied()
    }

    /// Stops the run because the output failed: quietly for a closed pipe, as an error
    /// otherwise.
    pub fn output_failed(&self, err: &std::io::Error) {
        if crate::output::is_closed_pipe(err) {
            self.trigger(StopReason::OutputClosed);
        } else {
            let _ = self.output_error.set(err.to_string());
            self.trigger(StopReason::OutputFailed);
        }
    }

    /// Why the output could not be written, when that stopped the run.
    pub fn output_error(&self) -> Option<&str> {
        self.output_error.get().map(String::as_str)
    }

    fn output_gone(&self) -> bool {
        matches!(
            self.reason(),
            Some(StopReason::OutputClosed | StopReason::OutputFailed)
        )
    }

    /// Sends `signal` to the process group of every running child.
    pub fn signal_all(&self, signal: Signal) {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for pgid in groups.iter() {
            let _ = killpg(Pid::from_raw(*pgid), signal);
        }
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

/// Receives what the scheduler learns, on the scheduler's own task: the one writer.
pub trait Observer {
    /// A target finished. An error means the output is gone: the run stops quietly.
    fn finished(&mut self, record: Record) -> std::io::Result<()>;
    /// Called about once a second with the targets still running and how long they have run.
    fn running(&mut self, _running: &mut dyn Iterator<Item = (&str, &str, Duration)>) {}
}

/// Collects every record; for tests and callers that want them all.
impl Observer for Vec<Record> {
    fn finished(&mut self, record: Record) -> std::io::Result<()> {
        self.push(record);
        Ok(())
    }
}

/// Sends a known list of targets into a channel for [`run_all`].
pub fn feed(targets: Vec<Target>) -> mpsc::Receiver<Target> {
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        for target in targets {
            if tx.send(target).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs every target that arrives on `source`, `workers` at a time, handing each record to
/// `observer` as it finishes. Every target gets exactly one record, unless the output itself
/// went away. Targets come account by account; the roles of the accounts about to start are
/// assumed ahead (up to `workers` at once), so a target seldom waits on STS.
pub async fn run_all<A: Aws>(
    creds: Arc<CredentialCache<A>>,
    mut source: mpsc::Receiver<Target>,
    spec: Arc<RunSpec>,
    stop: Arc<Stop>,
    observer: &mut dyn Observer,
) {
    // Upcoming targets, and how many of them (from the front) were considered for prefetching.
    let lookahead = spec.workers.saturating_mul(4).clamp(16, 4096);
    let mut upcoming: VecDeque<Target> = VecDeque::new();
    let mut considered = 0usize;
    let mut last_prefetched: Option<Arc<Account>> = None;
    let mut source_open = true;
    let mut prefetching: JoinSet<()> = JoinSet::new();
    let mut running = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, (Arc<Account>, String, Instant)> = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        while source_open && upcoming.len() < lookahead {
            match source.try_recv() {
                Ok(target) => upcoming.push_back(target),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => source_open = false,
            }
        }
        while running.len() < spec.workers && stop.reason().is_none() {
            let Some((account, region)) = upcoming.pop_front() else {
                break;
            };
            considered = considered.saturating_sub(1);
            let task = run_target(
                creds.clone(),
                account.clone(),
                region.clone(),
                spec.clone(),
                stop.clone(),
            );
            let handle = running.spawn(task);
            in_flight.insert(handle.id(), (account, region, Instant::now()));
        }
        while prefetching.len() < spec.workers
            && considered < upcoming.len()
            && stop.reason().is_none()
        {
            let account = upcoming[considered].0.clone();
            considered += 1;
            if last_prefetched.as_ref().is_some_and(|a| a.id == account.id) {
                continue;
            }
            last_prefetched = Some(account.clone());
            let creds = creds.clone();
            prefetching.spawn(async move {
                creds.prefetch(&account.id).await;
            });
        }
        if running.is_empty() && (stop.reason().is_some() || (upcoming.is_empty() && !source_open))
        {
            break;
        }
        let joined = tokio::select! {
            joined = running.join_next_with_id(), if !running.is_empty() => joined,
            _ = prefetching.join_next(), if !prefetching.is_empty() => continue,
            target = source.recv(), if source_open && upcoming.len() < lookahead => {
                match target {
                    Some(target) => upcoming.push_back(target),
                    None => source_open = false,
                }
                continue;
            }
            _ = ticker.tick() => {
                let now = Instant::now();
                observer.running(&mut in_flight
                    .values()
                    .map(|(a, r, t)| (a.id.as_str(), r.as_str(), now - *t)));
                continue;
            }
        };
        let Some(joined) = joined else { continue };
        let record = match joined {
            Ok((id, record)) => {
                in_flight.remove(&id);
                creds.release(&record.id);
                record
            }
            Err(err) => {
                let (account, region, _) = in_flight
                    .remove(&err.id())
                    .expect("every task is registered when spawned");
                creds.release(&account.id);
                let mut r = base_record(&account, &region, &creds, &spec, Instant::now());
                r.exception_details = Some(format!("internal error in cove: {err}"));
                r
            }
        };
        if spec.fail_fast && record.outcome != Outcome::Result {
            stop.trigger(StopReason::FailFast);
        }
        if !stop.output_gone()
            && let Err(err) = observer.finished(record)
        {
            stop.output_failed(&err);
        }
    }
    prefetching.abort_all();

    // Stopped early: everything that never started is reported as cancelled, including what
    // the source still delivers (it is drained to the end).
    let reason = stop.reason().unwrap_or(StopReason::Interrupted);
    loop {
        let target = match upcoming.pop_front() {
            Some(target) => target,
            None if source_open => match source.recv().await {
                Some(target) => target,
                None => break,
            },
            None => break,
        };
        if stop.output_gone() {
            continue;
        }
        let (account, region) = target;
        let r = cancelled(&account, &region, &creds, &spec, reason);
        if let Err(err) = observer.finished(r) {
            stop.output_failed(&err);
        }
    }
}

/// The record of a target that never started because the run was stopped.
pub fn cancelled<A: Aws>(
    account: &Account,
    region: &str,
    creds: &CredentialCache<A>,
    spec: &RunSpec,
    reason: StopReason,
) -> Record {
    let mut r = base_record(account, region, creds, spec, Instant::now());
    r.exception_details = Some(reason.detail().to_owned());
    r
}

/// The record of an account that failed before any region could run (`--region all`
/// discovery): `FailedAssumeRole`, with `assumed` telling whether the role itself was assumed.
pub fn account_failure<A: Aws>(
    account: &Account,
    region: &str,
    creds: &CredentialCache<A>,
    spec: &RunSpec,
    assumed: bool,
    detail: String,
) -> Record {
    let mut r = base_record(account, region, creds, spec, Instant::now());
    r.outcome = Outcome::FailedAssumeRole;
    r.assume_role_success = assumed;
    r.exception_details = Some(detail);
    r
}

fn base_record<A: Aws>(
    account: &Account,
    region: &str,
    creds: &CredentialCache<A>,
    spec: &RunSpec,
    started: Instant,
) -> Record {
    Record {
        id: account.id.clone(),
        name: account.name.clone(),
        email: account.email.clone(),
        status: account.status.clone(),
        partition: spec.partition.clone(),
        region: region.to_owned(),
        role_name: creds.spec().role_name.clone(),
        role_session_name: creds.spec().session_name.clone(),
        assume_role_success: false,
        exit_code: None,
        result: None,
        stderr: None,
        exception_details: None,
        duration_ms: started.elapsed().as_millis() as u64,
        outcome: Outcome::Exception,
        raw_output: None,
    }
}

async fn run_target<A: Aws>(
    creds: Arc<CredentialCache<A>>,
    account: Arc<Account>,
    region: String,
    spec: Arc<RunSpec>,
    stop: Arc<Stop>,
) -> Record {
    let started = Instant::now();
    let assumed = tokio::select! {
        biased;
        _ = stop.token.cancelled() => {
            let mut r = base_record(&account, &region, &creds, &spec, started);
            r.exception_details = stop.reason().map(|s| s.detail().to_owned());
            return r;
        }
        assumed = creds.get(&account.id) => assumed,
    };
    let temp = match assumed {
        Ok(temp) => temp,
        Err(err) => {
            let mut r = base_record(&account, &region, &creds, &spec, started);
            r.outcome = Outcome::FailedAssumeRole;
            r.exception_details = Some(format!(
                "could not assume {}: {err}",
                creds.spec().role_arn(&spec.partition, &account.id)
            ));
            return r;
        }
    };

    if let Some(reason) = stop.reason() {
        let mut r = base_record(&account, &region, &creds, &spec, started);
        r.assume_role_success = true;
        r.exception_details = Some(reason.detail().to_owned());
        return r;
    }
    let argv = template::render(
        &spec.command,
        &template::Values {
            account_id: &account.id,
            account_name: account.name.as_deref().unwrap_or_default(),
            region: &region,
            partition: &spec.partition,
        },
    );
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    child_env::apply(&mut cmd, &temp, &account, &region, &spec.remove_env);

    let mut r = base_record(&account, &region, &creds, &spec, started);
    r.assume_role_success = true;
    let child = run_child(cmd, &spec, &stop).await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    let (status, stdout, stderr, ended, held_open) = match child {
        Err(err) => {
            r.exception_details = Some(format!(
                "could not start `{}`: {err}",
                spec.command[0].to_string_lossy()
            ));
            return r;
        }
        Ok(ChildEnd {
            status,
            stdout,
            stderr,
            ended,
            held_open,
        }) => (status, stdout, stderr, ended, held_open),
    };
    r.result = Some(result_value(&stdout.bytes));
    r.stderr = Some(String::from_utf8_lossy(&stderr.bytes).into_owned());
    if spec.keep_raw_output {
        r.raw_output = Some(RawOutput {
            stdout: stdout.bytes.clone(),
            stderr: stderr.bytes.clone(),
        });
    }
    let mut problems = Vec::new();
    match ended {
        Ended::Stopped(reason) => problems.push(reason.detail().to_owned()),
        Ended::TimedOut(limit) => problems.push(format!(
            "timed out after {}; the command's process group was killed",
            humantime::format_duration(limit)
        )),
        Ended::Exited => {
            r.exit_code = status.and_then(|s| s.code());
            match status.map(|s| (s.code(), s.signal())) {
                Some((Some(0), _)) => {}
                Some((Some(code), _)) => problems.push(format!("command exited with code {code}")),
                Some((None, Some(sig))) => {
                    problems.push(format!("command was killed by signal {sig}"))
                }
                _ => problems.push("command ended without an exit code".to_owned()),
            }
        }
    }
    r.outcome = if problems.is_empty() {
        Outcome::Result
    } else {
        Outcome::Exception
    };
    for (name, capture) in [("stdout", &stdout), ("stderr", &stderr)] {
        if capture.truncated {
            problems.push(format!(
                "{name} truncated at {} bytes",
                spec.max_output_bytes
            ));
        }
    }
    if held_open {
        problems.push(format!(
            "output was still open {} after the command ended (a process that left its process group holds it); stopped reading",
            humantime::format_duration(OUTPUT_GRACE)
        ));
    }
    if !problems.is_empty() {
        r.exception_details = Some(problems.join("; "));
    }
    r
}

/// A stream read up to a cap; the rest is drained so the child never blocks on a full pipe.
#[derive(Debug, Default)]
struct Capture {
    bytes: Vec<u8>,
    truncated: bool,
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
}

/// How a started child came to an end.
enum Ended {
    Exited,
    TimedOut(Duration),
    Stopped(StopReason),
}

struct ChildEnd {
    status: Option<std::process::ExitStatus>,
    stdout: Capture,
    stderr: Capture,
    ended: Ended,
    /// A process outside the child's group kept its output open after it ended.
    held_open: bool,
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

/// Runs one child in its own process group, and keeps what it printed even when it is stopped.
/// When the child ends, whatever it left running in its group is killed, so no grandchild
/// outlives its target; output still held open by a process that left the group is read for
/// at most [`OUTPUT_GRACE`] more.
async fn run_child(mut cmd: Command, spec: &RunSpec, stop: &Stop) -> std::io::Result<ChildEnd> {
    enum First {
        Exit(std::io::Result<std::process::ExitStatus>),
        Early(Ended),
    }
    let mut child = cmd.spawn()?;
    let Some(pid) = child.id().map(|p| p as i32) else {
        return Err(std::io::Error::other("the child exited before it was seen"));
    };
    stop.register(pid);
    let group = Pid::from_raw(pid);
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (mut out, mut err) = (Capture::default(), Capture::default());
    let (status, ended, held_open) = {
        let outputs = async {
            tokio::join!(
                read_capped(stdout, spec.max_output_bytes, &mut out),
                read_capped(stderr, spec.max_output_bytes, &mut err)
            );
        };
        tokio::pin!(outputs);
        let mut drained = false;
        let wait = child.wait();
        tokio::pin!(wait);
        let first = async {
            tokio::select! {
                biased;
                _ = stop.token.cancelled() => {
                    First::Early(Ended::Stopped(stop.reason().unwrap_or(StopReason::Interrupted)))
                }
                status = &mut wait => First::Exit(status),
                _ = async {
                    match spec.timeout {
                        Some(limit) => tokio::time::sleep(limit).await,
                        None => std::future::pending().await,
                    }
                } => First::Early(Ended::TimedOut(spec.timeout.unwrap_or_default())),
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
        let held_open = !drained
            && tokio::time::timeout(OUTPUT_GRACE, &mut outputs)
                .await
                .is_err();
        (status, ended, held_open)
    };
    stop.unregister(pid);
    Ok(ChildEnd {
        status,
        stdout: out,
        stderr: err,
        ended,
        held_open,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;
    use crate::credentials::RoleSpec;

    fn spec(command: &[&str], fail_fast: bool) -> Arc<RunSpec> {
        Arc::new(RunSpec {
            command: command.iter().map(OsString::from).collect(),
            workers: 4,
            fail_fast,
            partition: "aws".into(),
            max_output_bytes: 1024,
            timeout: None,
            keep_raw_output: false,
            remove_env: vec![],
        })
    }

    fn cache(aws: Arc<FakeAws>, targets: &[Target]) -> Arc<CredentialCache<FakeAws>> {
        let role = RoleSpec {
            role_name: "R".into(),
            session_name: "R".into(),
            policy: None,
            policy_arns: vec![],
            external_id: None,
            duration_seconds: None,
        };
        Arc::new(CredentialCache::new(
            aws,
            role,
            "aws",
            targets.iter().map(|(a, _)| a.id.as_str()),
        ))
    }

    fn accounts() -> Vec<Account> {
        ["111111111111", "222222222222", "333333333333"]
            .iter()
            .map(|id| FakeAws::account(id, "n", "ACTIVE"))
            .collect()
    }

    fn regions() -> Vec<String> {
        vec!["us-east-1".into(), "eu-west-1".into(), "ap-south-1".into()]
    }

    /// Runs every account × region with the fake and collects the records.
    async fn run(
        aws: &Arc<FakeAws>,
        accounts: &[Account],
        regions: &[String],
        spec: Arc<RunSpec>,
    ) -> Vec<Record> {
        let targets = crate::plan::targets(accounts.to_vec(), regions, None, true, &[]);
        let mut records = Vec::new();
        run_all(
            cache(aws.clone(), &targets),
            feed(targets),
            spec,
            Arc::new(Stop::default()),
            &mut records,
        )
        .await;
        records
    }

    #[tokio::test]
    async fn assumes_once_per_account_across_regions() {
        let aws = Arc::new(FakeAws::default());
        let accts = accounts();
        let records = run(&aws, &accts, &regions(), spec(&["true"], false)).await;
        assert_eq!(records.len(), 9);
        assert!(records.iter().all(|r| r.outcome == Outcome::Result));
        assert_eq!(aws.assume_calls(), 3);
    }

    #[tokio::test]
    async fn credentials_about_to_expire_are_renewed_before_the_next_command() {
        let aws = Arc::new(FakeAws {
            lifetime: Some(Duration::from_secs(60)),
            ..FakeAws::default()
        });
        let accts = accounts()[..1].to_vec();
        let mut one_at_a_time = (*spec(&["true"], false)).clone();
        one_at_a_time.workers = 1;
        let records = run(&aws, &accts, &regions(), Arc::new(one_at_a_time)).await;
        assert!(records.iter().all(|r| r.outcome == Outcome::Result));
        assert!(
            aws.assume_calls() >= 3,
            "renewed before every region's command (plus any prefetch)"
        );
    }

    #[tokio::test]
    async fn denied_account_fails_every_region_without_running() {
        let aws = Arc::new(FakeAws {
            deny_assume: ["222222222222".to_owned()].into(),
            ..FakeAws::default()
        });
        let accts = accounts();
        let records = run(&aws, &accts, &regions(), spec(&["true"], false)).await;
        let failed: Vec<_> = records
            .iter()
            .filter(|r| r.outcome == Outcome::FailedAssumeRole)
            .collect();
        assert_eq!(failed.len(), 3);
        assert!(failed.iter().all(|r| {
            r.id == "222222222222"
                && r.exit_code.is_none()
                && r.exception_details
                    .as_deref()
                    .unwrap()
                    .contains("AccessDenied")
        }));
        assert_eq!(aws.assume_calls(), 3, "a denial is not retried per region");
    }

    #[tokio::test]
    async fn output_past_the_cap_is_cut_and_said_so() {
        let aws = Arc::new(FakeAws::default());
        let accts = accounts()[..1].to_vec();
        let records = run(
            &aws,
            &accts,
            &regions()[..1],
            spec(
                &["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"],
                false,
            ),
        )
        .await;
        let r = &records[0];
        assert_eq!(r.result.as_ref().unwrap().as_str().unwrap().len(), 1024);
        assert!(
            r.exception_details
                .as_deref()
                .unwrap()
                .contains("stdout truncated at 1024 bytes")
        );
    }
}
