//! Runs the command in every target (account × region), `workers` at a time, and turns each
//! outcome into a [`Record`]. Every target ends in exactly one record, whatever happens:
//! failures, panics, fail-fast and interrupts included.
//!
//! The [`Scheduler`] is a small state machine over one loop: take targets from the source, start
//! what the workers allow, assume roles ahead of the targets about to start, and hand each
//! finished record to the [`Observer`]. When the run stops early it drains the source, reporting
//! every target that never started as cancelled. The verdict on a finished child is the pure
//! function [`verdict`].

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::aws::{Account, Aws, TempCredentials};
use crate::child_env::{self, Target as ChildTarget};
use crate::credentials::{CredentialCache, RoleUsed};
use crate::endpoint::{Endpoint, Grant};
use crate::output::{Outcome, RawOutput, Record};
use crate::plan::Target;
use crate::process::{ChildEnd, Ended, Limits, OUTPUT_GRACE, ProcessGroups, run_child_then};
use crate::rollout::{self, Gate};
use crate::stop::{Stop, StopReason};
use crate::target_vars::{Resolved, TargetVars};
use crate::template;

/// What every target runs, and how.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub command: Vec<OsString>,
    pub workers: usize,
    pub fail_fast: bool,
    pub partition: String,
    pub limits: Limits,
    /// Keep the raw bytes of each child's output for `--output-dir`.
    pub keep_raw_output: bool,
    /// Variables of cove's own environment that children must not see, beyond the fixed list.
    pub remove_env: Vec<OsString>,
    /// `--workers auto`: the count follows the machine (`workers` is then its cap).
    pub auto: Option<crate::workers::AutoSettings>,
    /// Each target's variables and tags (`{var.NAME}`, `{tag.KEY}`, `COVE_VAR_NAME`).
    pub vars: Arc<TargetVars>,
}

/// Receives what the scheduler learns, on the scheduler's own task.
pub trait Observer {
    /// A target finished.
    fn finished(&mut self, record: Record);
    /// Called about once a second with the targets still running and how long they have run.
    fn running(&mut self, _running: &mut dyn Iterator<Item = (&str, &str, Duration)>) {}
    /// A line for people about the run as a whole (the canary phase ended, the run halted).
    fn note(&mut self, _message: &str) {}
    /// With `--workers auto`: how many may run at once, at the start and at each change.
    fn workers(&mut self, _workers: usize) {}
}

/// Collects every record; for tests and callers that want them all.
impl Observer for Vec<Record> {
    fn finished(&mut self, record: Record) {
        self.push(record);
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

/// What a target needs besides its account and region; shared by every target of a run.
pub struct Shared<A> {
    pub creds: Arc<CredentialCache<A>>,
    pub spec: Arc<RunSpec>,
    pub stop: Arc<Stop>,
    pub groups: Arc<ProcessGroups>,
    /// The credential endpoint children ask, with `--child-credentials endpoint`.
    pub endpoint: Option<Arc<Endpoint>>,
    /// `--canary` and `--max-failures`: what may start, and when the run halts.
    pub rollout: Arc<Gate>,
}

impl<A> Clone for Shared<A> {
    fn clone(&self) -> Self {
        Shared {
            creds: self.creds.clone(),
            spec: self.spec.clone(),
            stop: self.stop.clone(),
            groups: self.groups.clone(),
            endpoint: self.endpoint.clone(),
            rollout: self.rollout.clone(),
        }
    }
}

/// Runs every target that arrives on `source`, `workers` at a time, handing each record to
/// `observer` as it finishes. Every target gets exactly one record, unless the output itself
/// went away. Targets come account by account; the roles of the accounts about to start are
/// assumed ahead (up to `workers` at once), so a target seldom waits on STS.
pub async fn run_all<A: Aws>(
    shared: Shared<A>,
    source: mpsc::Receiver<Target>,
    observer: &mut dyn Observer,
) {
    if let Some(note) = shared.rollout.opening() {
        observer.note(&note);
    }
    let mut scheduler = Scheduler::new(shared, source);
    while let Some(record) = scheduler.next_record(observer).await {
        scheduler.report(record, observer);
    }
    scheduler.drain_cancelled(observer).await;
}

/// The state of one run's scheduling loop.
struct Scheduler<A> {
    shared: Shared<A>,
    source: mpsc::Receiver<Target>,
    source_open: bool,
    /// Targets taken from the source and not started yet.
    upcoming: VecDeque<Target>,
    lookahead: usize,
    /// How many of `upcoming` (from the front) were considered for prefetching.
    considered: usize,
    last_prefetched: Option<Arc<Account>>,
    prefetching: JoinSet<()>,
    running: JoinSet<Record>,
    in_flight: HashMap<tokio::task::Id, (Arc<Account>, String, Instant)>,
    ticker: tokio::time::Interval,
    /// `--workers auto`: the controller of how many run at once.
    auto: Option<crate::workers::Auto>,
}

impl<A: Aws> Scheduler<A> {
    fn new(shared: Shared<A>, source: mpsc::Receiver<Target>) -> Self {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let auto = (shared.spec.auto)
            .map(|settings| crate::workers::Auto::new(settings, shared.groups.clone()));
        Scheduler {
            auto,
            lookahead: shared.spec.workers.saturating_mul(4).clamp(16, 4096),
            shared,
            source,
            source_open: true,
            upcoming: VecDeque::new(),
            considered: 0,
            last_prefetched: None,
            prefetching: JoinSet::new(),
            running: JoinSet::new(),
            in_flight: HashMap::new(),
            ticker,
        }
    }

    /// Stopped, or halted (`--max-failures`, `--canary`): nothing new starts.
    fn stopped(&self) -> bool {
        self.shared.stop.starts_nothing().is_some()
    }

    /// Takes what the source has ready, up to the lookahead, without waiting.
    fn take_ready(&mut self) {
        while self.source_open && self.upcoming.len() < self.lookahead {
            match self.source.try_recv() {
                Ok(target) => self.upcoming.push_back(target),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.source_open = false,
            }
        }
    }

    /// How many may run at once: `--workers`, or what `auto` allows now.
    fn workers(&self) -> usize {
        (self.auto.as_ref()).map_or(self.shared.spec.workers, crate::workers::Auto::limit)
    }

    /// Starts targets while workers are free.
    fn start_ready(&mut self) {
        while self.running.len() < self.workers() && !self.stopped() {
            // During the canary phase only the canaries start.
            if self.upcoming.is_empty() || !self.shared.rollout.try_start() {
                break;
            }
            let Some((account, region)) = self.upcoming.pop_front() else {
                break;
            };
            self.considered = self.considered.saturating_sub(1);
            let task = run_target(self.shared.clone(), account.clone(), region.clone());
            let handle = self.running.spawn(task);
            self.in_flight
                .insert(handle.id(), (account, region, Instant::now()));
            if let Some(auto) = &mut self.auto {
                auto.started();
            }
        }
    }

    /// Assumes the roles of the accounts about to start, one call per account.
    fn prefetch_ahead(&mut self) {
        // With `auto`, credentials are fetched as far ahead as the current count needs.
        let ahead = match self.auto {
            Some(_) => self.workers().saturating_mul(4).max(16),
            None => usize::MAX,
        };
        while self.prefetching.len() < self.workers()
            && self.considered < self.upcoming.len().min(ahead)
            && !self.stopped()
            && self
                .shared
                .rollout
                .may_prefetch(self.considered as u64 + self.started())
        {
            let account = self.upcoming[self.considered].0.clone();
            self.considered += 1;
            if self
                .last_prefetched
                .as_ref()
                .is_some_and(|a| a.id == account.id)
            {
                continue;
            }
            self.last_prefetched = Some(account.clone());
            let creds = self.shared.creds.clone();
            let vars = self.shared.spec.vars.clone();
            self.prefetching.spawn(async move {
                // An account that lacks a variable or tag of the command never assumes its role.
                let redact = |e| creds.redact(e);
                if (vars.resolve(creds.aws(), &account, redact).await.problem).is_none() {
                    creds.prefetch(&account.id).await;
                }
            });
        }
    }

    fn started(&self) -> u64 {
        self.shared.rollout.started_count()
    }

    fn done(&self) -> bool {
        self.running.is_empty()
            && (self.stopped() || (self.upcoming.is_empty() && !self.source_open))
    }

    /// Drives the loop until a target finishes; `None` when nothing is left to run.
    async fn next_record(&mut self, observer: &mut dyn Observer) -> Option<Record> {
        loop {
            self.take_ready();
            self.start_ready();
            self.prefetch_ahead();
            if self.done() {
                self.prefetching.abort_all();
                return None;
            }
            let joined = tokio::select! {
                joined = self.running.join_next_with_id(), if !self.running.is_empty() => joined,
                _ = self.prefetching.join_next(), if !self.prefetching.is_empty() => continue,
                target = self.source.recv(), if self.source_open && self.upcoming.len() < self.lookahead => {
                    match target {
                        Some(target) => self.upcoming.push_back(target),
                        None => self.source_open = false,
                    }
                    continue;
                }
                _ = next_sample(&mut self.auto), if self.auto.is_some() => {
                    let waiting = !self.upcoming.is_empty();
                    let sampled = self.auto.as_mut().and_then(|a| a.sample(self.running.len(), waiting));
                    if let Some(workers) = sampled {
                        observer.workers(workers);
                    }
                    continue;
                }
                _ = self.ticker.tick() => {
                    let now = Instant::now();
                    observer.running(&mut self.in_flight
                        .values()
                        .map(|(a, r, t)| (a.id.as_str(), r.as_str(), now - *t)));
                    continue;
                }
            };
            if let Some(joined) = joined {
                return Some(self.finished(joined));
            }
        }
    }

    /// The record of a finished task; a panicked task still gets one.
    fn finished(
        &mut self,
        joined: Result<(tokio::task::Id, Record), tokio::task::JoinError>,
    ) -> Record {
        let shared = &self.shared;
        match joined {
            Ok((id, record)) => {
                self.in_flight.remove(&id);
                if let Some(auto) = &mut self.auto {
                    auto.finished(record.duration_ms);
                }
                shared.creds.release(&record.id);
                record
            }
            Err(err) => {
                let (account, region, _) = self
                    .in_flight
                    .remove(&err.id())
                    .expect("every task is registered when spawned");
                shared.creds.release(&account.id);
                let mut r = base_record(&account, &region, shared, Instant::now());
                r.exception_details = Some(format!("internal error in cove: {err}"));
                r
            }
        }
    }

    fn report(&self, record: Record, observer: &mut dyn Observer) {
        let stop = &self.shared.stop;
        if self.shared.spec.fail_fast && record.outcome != Outcome::Result {
            stop.trigger(StopReason::FailFast);
        }
        if !stop.is_stopped() {
            gate(&self.shared, &record, observer);
        }
        if !stop.output_gone() {
            observer.finished(record);
        }
    }

    /// Stopped early: everything that never started is reported as cancelled, including what
    /// the source still delivers (it is drained to the end).
    async fn drain_cancelled(&mut self, observer: &mut dyn Observer) {
        let reason = (self.shared.stop)
            .starts_nothing()
            .unwrap_or(StopReason::Interrupted);
        loop {
            let target = match self.upcoming.pop_front() {
                Some(target) => target,
                None if self.source_open => match self.source.recv().await {
                    Some(target) => target,
                    None => break,
                },
                None => break,
            };
            if self.shared.stop.output_gone() {
                continue;
            }
            let (account, region) = target;
            observer.finished(cancelled(&account, &region, &self.shared, reason));
        }
    }
}

/// Tells the rollout gate about a finished target: the canary phase may end, or the run halt
/// (nothing new starts; what runs finishes).
fn gate<A>(shared: &Shared<A>, record: &Record, observer: &mut dyn Observer) {
    if let Some(event) = shared.rollout.finished(record) {
        if let rollout::Event::Halt { reason, .. } = event {
            shared.stop.halt(reason);
        }
        observer.note(&event.message());
    }
}

/// Reports records of targets that failed before the run (`--region all` discovery), counting
/// them against `--max-failures`.
pub fn report_early<A>(shared: &Shared<A>, records: Vec<Record>, observer: &mut dyn Observer) {
    let failed = records.iter().filter(|r| r.outcome != Outcome::Result);
    if let Some(event) = shared.rollout.failed_before(failed.count() as u64) {
        if let rollout::Event::Halt { reason, .. } = event {
            shared.stop.halt(reason);
        }
        observer.note(&event.message());
    }
    for record in records {
        observer.finished(record);
    }
}

/// The next sample's time with `--workers auto` (never without).
async fn next_sample(auto: &mut Option<crate::workers::Auto>) {
    match auto {
        Some(auto) => auto.tick().await,
        None => std::future::pending().await,
    }
}

/// The record of a target that never started because the run was stopped.
pub fn cancelled<A: Aws>(
    account: &Account,
    region: &str,
    shared: &Shared<A>,
    reason: StopReason,
) -> Record {
    let mut r = base_record(account, region, shared, Instant::now());
    r.exception_details = Some(reason.detail().to_owned());
    r
}

/// The record of a target that failed before its role was assumed (it lacks a variable or
/// tag of the command): an exception, with `detail`.
pub fn failed_before<A: Aws>(
    account: &Account,
    region: &str,
    shared: &Shared<A>,
    detail: String,
) -> Record {
    let mut r = base_record(account, region, shared, Instant::now());
    r.exception_details = Some(detail);
    r
}

/// The record of an account that failed before any region could run (`--region all`
/// discovery): `FailedAssumeRole`, with `assumed` telling whether `role` itself was assumed.
pub fn account_failure<A: Aws>(
    account: &Account,
    region: &str,
    shared: &Shared<A>,
    (role, assumed): (&RoleUsed, bool),
    detail: String,
) -> Record {
    let mut r = base_record(account, region, shared, Instant::now());
    name_role(&mut r, role);
    r.outcome = Outcome::FailedAssumeRole;
    r.assume_role_success = assumed;
    r.exception_details = Some(detail);
    r
}

/// The record names the role that worked, or the last one tried.
fn name_role(r: &mut Record, role: &RoleUsed) {
    r.role_name.clone_from(&role.role_name);
    r.role_session_name.clone_from(&role.session_name);
}

fn base_record<A: Aws>(
    account: &Account,
    region: &str,
    shared: &Shared<A>,
    started: Instant,
) -> Record {
    let role = shared.creds.spec().first();
    Record {
        id: account.id.clone(),
        name: account.name.clone(),
        email: account.email.clone(),
        status: account.status.clone(),
        partition: shared.spec.partition.clone(),
        region: region.to_owned(),
        role_name: role.role_name,
        role_session_name: role.session_name,
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

/// One target: its credentials, then its command; timed from start to verdict.
async fn run_target<A: Aws>(shared: Shared<A>, account: Arc<Account>, region: String) -> Record {
    use tracing::Instrument;
    let started = Instant::now();
    let span = tracing::info_span!("target", account = %account.id, region = %region);
    let mut r = target_record(shared, account, region, started)
        .instrument(span)
        .await;
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

async fn target_record<A: Aws>(
    shared: Shared<A>,
    account: Arc<Account>,
    region: String,
    started: Instant,
) -> Record {
    let mut r = base_record(&account, &region, &shared, started);
    // The target's variables and tags come first: one it lacks fails it before its role is
    // assumed.
    let redact = |e| shared.creds.redact(e);
    let resolved = tokio::select! {
        biased;
        _ = shared.stop.cancelled() => {
            r.exception_details = shared.stop.reason().map(|s| s.detail().to_owned());
            return r;
        }
        resolved = shared.spec.vars.resolve(shared.creds.aws(), &account, redact) => resolved,
    };
    if let Some(problem) = &resolved.problem {
        r.exception_details = Some(problem.clone());
        return r;
    }
    let assumed = tokio::select! {
        biased;
        _ = shared.stop.cancelled() => {
            r.exception_details = shared.stop.reason().map(|s| s.detail().to_owned());
            return r;
        }
        assumed = shared.creds.get(&account.id) => assumed,
    };
    let temp = match assumed {
        Ok(temp) => temp,
        Err(failure) => {
            name_role(&mut r, &failure.role);
            r.outcome = Outcome::FailedAssumeRole;
            r.exception_details = Some(failure.to_string());
            return r;
        }
    };
    name_role(&mut r, &temp.role);
    r.assume_role_success = true;
    if let Some(reason) = shared.stop.starts_nothing() {
        r.exception_details = Some(reason.detail().to_owned());
        return r;
    }
    run_rendered(&shared, &temp.creds, &account, &region, &resolved, r).await
}

/// Renders the target's command and runs it. A hostile account name, tag or variable (control
/// characters, a `..` path component, an argument it would turn into an absolute path or an
/// option) fails the target; its command never runs.
async fn run_rendered<A: Aws>(
    shared: &Shared<A>,
    creds: &TempCredentials,
    account: &Account,
    region: &str,
    resolved: &Resolved,
    mut r: Record,
) -> Record {
    let argv = match template::render(
        &shared.spec.command,
        &template::Values {
            account_id: &account.id,
            account_name: account.name.as_deref().unwrap_or_default(),
            region,
            partition: &shared.spec.partition,
            vars: &resolved.vars,
            tags: &resolved.tags,
        },
    ) {
        Ok(argv) => argv,
        Err(why) => {
            r.exception_details = Some(why);
            return r;
        }
    };
    let target = ChildTarget {
        account,
        region,
        vars: &resolved.vars,
    };
    match run_command(shared, creds, target, argv).await {
        Err(err) => {
            r.exception_details = Some(format!(
                "could not start `{}`: {err}",
                shared.spec.command[0].to_string_lossy()
            ));
        }
        Ok(end) => {
            let v = verdict(&end, shared.spec.limits.max_output_bytes);
            r.outcome = v.outcome;
            r.exit_code = v.exit_code;
            r.exception_details = v.details;
            r.stderr = Some(String::from_utf8_lossy(&end.stderr.bytes).into_owned());
            if shared.spec.keep_raw_output {
                // The output is held once: the sink makes `Result` from it where it is needed.
                r.raw_output = Some(RawOutput {
                    stdout: end.stdout.bytes,
                    stderr: end.stderr.bytes,
                });
            } else {
                r.result = Some(crate::raw_json::result_text(&end.stdout.bytes));
            }
        }
    }
    r
}

/// Runs the target's child. With the credential endpoint, the target's token is valid exactly
/// while the child's process group lives: ended the moment the group is gone (before the output
/// a process that left the group may hold open is waited for), and on every other way out by
/// the grant's drop.
async fn run_command<A: Aws>(
    shared: &Shared<A>,
    temp: &TempCredentials,
    target: ChildTarget<'_>,
    argv: Vec<OsString>,
) -> anyhow::Result<ChildEnd> {
    let grant = match &shared.endpoint {
        Some(endpoint) => Some(endpoint.grant(&target.account.id)?),
        None => None,
    };
    let creds = match &grant {
        Some(grant) => child_env::Credentials::Endpoint {
            uri: grant.uri(),
            token: grant.token(),
        },
        None => child_env::Credentials::Keys(temp),
    };
    let cmd = command(&shared.spec, argv, &creds, target);
    let group_gone = || grant.as_ref().map_or((), Grant::end);
    let (limits, stop, groups) = (shared.spec.limits, &shared.stop, &shared.groups);
    let child = run_child_then(cmd, limits, stop, groups, group_gone).await;
    if let Some(grant) = grant {
        grant.revoke().await;
    }
    Ok(child?)
}

/// The child's command line (templated for the target), with its environment and its own
/// process group.
fn command(
    spec: &RunSpec,
    argv: Vec<OsString>,
    creds: &child_env::Credentials,
    target: ChildTarget,
) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    child_env::apply(&mut cmd, creds, target, &spec.remove_env);
    cmd
}

/// What a finished child earns.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub details: Option<String>,
}

/// The verdict on a child that ran: `Results` only when it exited 0 by itself; a timeout, a
/// stop, a signal or a non-zero code is an exception. Truncated or held-open output is said in
/// the details without changing the outcome.
pub fn verdict(end: &ChildEnd, max_output_bytes: usize) -> Verdict {
    let mut problems = Vec::new();
    let mut exit_code = None;
    match end.ended {
        Ended::Stopped(reason) => problems.push(reason.detail().to_owned()),
        Ended::TimedOut(limit) => problems.push(format!(
            "timed out after {}; the command's process group was killed",
            humantime::format_duration(limit)
        )),
        Ended::Exited => {
            exit_code = end.status.and_then(|s| s.code());
            match end.status.map(|s| (s.code(), s.signal())) {
                Some((Some(0), _)) => {}
                Some((Some(code), _)) => problems.push(format!("command exited with code {code}")),
                Some((None, Some(sig))) => {
                    problems.push(format!("command was killed by signal {sig}"))
                }
                _ => problems.push("command ended without an exit code".to_owned()),
            }
        }
    }
    let outcome = if problems.is_empty() {
        Outcome::Result
    } else {
        Outcome::Exception
    };
    for (name, capture) in [("stdout", &end.stdout), ("stderr", &end.stderr)] {
        if capture.truncated {
            problems.push(format!("{name} truncated at {max_output_bytes} bytes"));
        }
    }
    if end.held_open {
        problems.push(format!(
            "output was still open {} after the command ended (a process that left its process group holds it); stopped reading",
            humantime::format_duration(OUTPUT_GRACE)
        ));
    }
    Verdict {
        outcome,
        exit_code,
        details: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;
    use crate::credentials::RoleSpec;
    use crate::process::Capture;

    fn spec(command: &[&str], fail_fast: bool) -> Arc<RunSpec> {
        Arc::new(RunSpec {
            command: command.iter().map(OsString::from).collect(),
            workers: 4,
            fail_fast,
            partition: "aws".into(),
            limits: Limits {
                max_output_bytes: 1024,
                timeout: None,
            },
            keep_raw_output: false,
            remove_env: vec![],
            auto: None,
            vars: Arc::default(),
        })
    }

    fn cache(aws: Arc<FakeAws>, targets: &[Target]) -> Arc<CredentialCache<FakeAws>> {
        let role = RoleSpec::named(&["R"]);
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
        run_gated(aws, accounts, regions, spec, Arc::default()).await
    }

    /// [`run`] with `--canary` and `--max-failures`.
    async fn run_gated(
        aws: &Arc<FakeAws>,
        accounts: &[Account],
        regions: &[String],
        spec: Arc<RunSpec>,
        rollout: Arc<Gate>,
    ) -> Vec<Record> {
        let everywhere = crate::regions::Regions::new(crate::regions::RegionChoice::Chain, vec![]);
        let each = crate::plan::AccountRegions::fixed(regions, &everywhere);
        let targets = crate::plan::targets(accounts.to_vec(), &each, None);
        let shared = Shared {
            creds: cache(aws.clone(), &targets),
            spec,
            stop: Arc::new(Stop::default()),
            groups: Arc::new(ProcessGroups::default()),
            endpoint: None,
            rollout,
        };
        let mut records = Vec::new();
        run_all(shared, feed(targets), &mut records).await;
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
    async fn a_target_lacking_a_variable_fails_without_assuming_its_role() {
        use crate::vars::{Entry, Value, VarsConfig};
        let place = crate::config_file::Place {
            path: "cove.toml".into(),
            line: 1,
            group: None,
        };
        let entry = Entry {
            vars: [(
                "db".to_owned(),
                Value {
                    value: "main".into(),
                    place,
                },
            )]
            .into(),
            regions: None,
        };
        let config = VarsConfig {
            accounts: [("111111111111".to_owned(), entry)].into(),
            ..VarsConfig::default()
        };
        let mut spec = (*spec(
            &["sh", "-c", "test \"$COVE_VAR_DB\" = main", "{var.db}"],
            false,
        ))
        .clone();
        spec.vars = Arc::new(TargetVars::new(
            Arc::new(config),
            template::uses(&spec.command),
        ));
        let aws = Arc::new(FakeAws::default());
        let records = run(&aws, &accounts(), &regions(), Arc::new(spec)).await;
        assert_eq!(records.len(), 9);
        for r in &records {
            if r.id == "111111111111" {
                assert_eq!(r.outcome, Outcome::Result, "{r:?}");
            } else {
                assert_eq!(
                    (r.outcome, r.exit_code, r.assume_role_success),
                    (Outcome::Exception, None, false)
                );
                let details = r.exception_details.as_deref().unwrap_or_default();
                assert!(
                    details.contains("variable `db` is not defined for account"),
                    "{details}"
                );
            }
        }
        assert_eq!(
            aws.assume_calls(),
            1,
            "only the account that has the variable"
        );
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
        let text: String = serde_json::from_str(r.result.as_ref().unwrap().get()).unwrap();
        assert_eq!(text.len(), 1024);
        assert!(
            r.exception_details
                .as_deref()
                .unwrap()
                .contains("stdout truncated at 1024 bytes")
        );
    }

    fn cancelled_for(records: &[Record], reason: StopReason) -> usize {
        records
            .iter()
            .filter(|r| r.exception_details.as_deref() == Some(reason.detail()))
            .count()
    }

    #[tokio::test]
    async fn past_max_failures_nothing_new_starts_and_the_rest_is_cancelled() {
        let aws = Arc::new(FakeAws::default());
        let mut one_at_a_time = (*spec(&["sh", "-c", "exit 3"], false)).clone();
        one_at_a_time.workers = 1;
        let gate = Arc::new(Gate::new(rollout::Policy {
            max_failures: Some(rollout::Budget::Count(2)),
            canary: None,
        }));
        gate.set_total(9);
        let records = run_gated(&aws, &accounts(), &regions(), Arc::new(one_at_a_time), gate).await;
        assert_eq!(records.len(), 9, "every target reported once");
        let ran = records.iter().filter(|r| r.exit_code == Some(3)).count();
        assert_eq!(ran, 3, "the third failure is past a budget of 2");
        assert_eq!(cancelled_for(&records, StopReason::MaxFailures), 6);
    }

    #[tokio::test]
    async fn a_failed_canary_cancels_every_other_target() {
        let aws = Arc::new(FakeAws::default());
        let gate = Arc::new(Gate::new(rollout::Policy {
            max_failures: None,
            canary: Some(2),
        }));
        // Four workers, but only the two canaries start; both fail.
        let records = run_gated(
            &aws,
            &accounts(),
            &regions(),
            spec(&["sh", "-c", "exit 4"], false),
            gate,
        )
        .await;
        assert_eq!(records.len(), 9);
        assert_eq!(records.iter().filter(|r| r.exit_code == Some(4)).count(), 2);
        assert_eq!(cancelled_for(&records, StopReason::CanaryFailed), 7);
        assert_eq!(aws.assume_calls(), 1, "no role assumed beyond the canaries");
    }

    #[tokio::test]
    async fn canaries_that_succeed_open_the_run() {
        let aws = Arc::new(FakeAws::default());
        let gate = Arc::new(Gate::new(rollout::Policy {
            max_failures: None,
            canary: Some(4),
        }));
        let records = run_gated(&aws, &accounts(), &regions(), spec(&["true"], false), gate).await;
        assert_eq!(records.len(), 9);
        assert!(records.iter().all(|r| r.outcome == Outcome::Result));
    }

    fn ended(status: Option<i32>, ended: Ended, truncated: bool) -> ChildEnd {
        ChildEnd {
            status: status.map(std::process::ExitStatus::from_raw),
            stdout: Capture {
                bytes: vec![],
                truncated,
            },
            stderr: Capture::default(),
            ended,
            held_open: false,
        }
    }

    #[test]
    fn the_verdict_follows_how_the_child_ended() {
        let ok = verdict(&ended(Some(0), Ended::Exited, false), 10);
        assert_eq!(
            (ok.outcome, ok.exit_code, ok.details),
            (Outcome::Result, Some(0), None)
        );
        // Raw wait statuses: exit code 3 is 3 << 8; SIGKILL is 9.
        let failed = verdict(&ended(Some(3 << 8), Ended::Exited, false), 10);
        assert_eq!(failed.outcome, Outcome::Exception);
        assert_eq!(failed.exit_code, Some(3));
        assert_eq!(
            failed.details.as_deref(),
            Some("command exited with code 3")
        );
        let killed = verdict(&ended(Some(9), Ended::Exited, false), 10);
        assert_eq!(killed.exit_code, None);
        assert_eq!(
            killed.details.as_deref(),
            Some("command was killed by signal 9")
        );
        let timed_out = verdict(
            &ended(Some(9), Ended::TimedOut(Duration::from_secs(5)), false),
            10,
        );
        assert_eq!(timed_out.outcome, Outcome::Exception);
        assert_eq!(timed_out.exit_code, None, "a killed child has no exit code");
        assert!(timed_out.details.unwrap().starts_with("timed out after 5s"));
        let stopped = verdict(
            &ended(None, Ended::Stopped(StopReason::FailFast), false),
            10,
        );
        assert_eq!(
            stopped.details.as_deref(),
            Some(StopReason::FailFast.detail())
        );
        let truncated = verdict(&ended(Some(0), Ended::Exited, true), 10);
        assert_eq!(
            truncated.outcome,
            Outcome::Result,
            "truncation alone is no failure"
        );
        assert_eq!(
            truncated.details.as_deref(),
            Some("stdout truncated at 10 bytes")
        );
    }
}
