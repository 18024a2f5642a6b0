//! One run, step by step: prepare what is local, connect to AWS, identify the caller, choose the
//! targets, run them, report. [`execute`] is everything after connecting, generic over [`Aws`]
//! and the output, so tests drive it with the in-memory fake.
//!
//! Targets are chosen in one of two ways. A listed run resolves every account first (targets,
//! OUs, reruns, shards, tags, the dry run and `--region all` need the full list). A streamed run
//! (the whole organization, nothing that needs the full list) runs each account while later
//! `ListAccounts` pages are still on their way. Both judge accounts by the same admission policy
//! and report through the same [`Reporter`].

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::aws::{self, Account, Aws, Caller};
use crate::child_env;
use crate::ci_summary;
use crate::config::Config;
use crate::credentials::{CredentialCache, Source};
use crate::dry_run;
use crate::endpoint;
use crate::exit_code::{self, Exit};
use crate::ids::OrgId;
use crate::output::{self, Format, OutputError, Record, Sink};
use crate::plan::{self, Target};
use crate::process::{self, Limits, ProcessGroups};
use crate::progress::{self, Progress};
use crate::regions::{self, ALL_ENABLED_LABEL};
use crate::resolver::{self, Rules, Selection};
use crate::runner::{self, Observer, RunSpec, Shared};
use crate::signals;
use crate::stop::{Stop, StopReason};
use crate::stream;
use crate::text;
use crate::writer::Writer;

/// Runs a validated configuration against real AWS, writing to stdout.
pub fn run(config: Config) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        let workers = prepare_local(&config)?;
        let control = Control::default();
        signals::install(control.stop.clone(), control.groups.clone());
        let (aws, regions) = connect(&config).await?;
        let stdout = std::io::stdout();
        let pretty = stdout.is_terminal();
        execute(
            &config,
            workers,
            &regions,
            Arc::new(aws),
            control,
            stdout,
            pretty,
        )
        .await
    })
}

/// The side effects that come before any AWS call: the output directory is created and
/// checked, and the open-file limit raised for `--workers`. Returns the workers that fit.
fn prepare_local(config: &Config) -> anyhow::Result<usize> {
    if let Some(dir) = &config.output.dir {
        output::prepare_dir(dir)?;
    }
    let asked = config.run.workers;
    let workers = process::fit_workers(asked, config.run.child_credentials);
    if workers < asked {
        eprintln!(
            "cove: warning: --workers {asked} needs more open files than this system allows; running {workers} at a time"
        );
    }
    Ok(workers)
}

/// Loads the AWS configuration, assumes the `--via-role` hops and the `--org-role`, and
/// decides the fixed regions (named, or the chain's).
async fn connect(config: &Config) -> anyhow::Result<(aws::sdk::SdkAws, Vec<String>)> {
    let profile = config.aws.profile.as_deref();
    let chain = aws::sdk::chain_region(profile).await;
    if let Some(region) = &chain {
        regions::check(region, true).map_err(|e| {
            anyhow::anyhow!("the region of the credential chain (AWS_REGION or the profile): {e}")
        })?;
    }
    let rerun = config.selection.rerun.is_some();
    let fixed = config
        .regions
        .fixed(chain.as_deref(), rerun)
        .map_err(anyhow::Error::msg)?;
    // STS is called in the caller's own region where it has one (regional endpoint).
    let Some(sts_region) = chain.or_else(|| fixed.first().cloned()) else {
        bail!(
            "no region to call STS in: with --region all or --rerun, set AWS_REGION or a region in your AWS profile"
        );
    };
    let mfa = mfa_code(config)?;
    let portal = match config.role.source {
        Source::Portal => Some(aws::portal::load_profile(profile).await?),
        Source::AssumeRole => None,
    };
    let acting_as = aws::sdk::ActingAs {
        via_roles: &config.aws.via_roles,
        org_role: config.aws.org_role.as_deref(),
        mfa: mfa.as_ref().map(|(serial, code)| (serial.as_str(), code)),
        portal: portal.as_ref(),
    };
    let aws = aws::sdk::connect(profile, &sts_region, acting_as).await?;
    Ok((aws, fixed))
}

/// The MFA device and its code: from `--mfa-code`, else asked on the terminal with nothing
/// echoed. Without a terminal a missing code is an input error, before any AWS call.
fn mfa_code(config: &Config) -> anyhow::Result<Option<(String, crate::secret::Secret)>> {
    let Some(mfa) = &config.aws.mfa else {
        return Ok(None);
    };
    if let Some(code) = &mfa.code {
        return Ok(Some((mfa.serial.clone(), code.clone())));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "--mfa-serial needs a code: pass --mfa-code (standard input is not a terminal to ask on)"
        );
    }
    let prompt = format!("MFA code for {}: ", mfa.serial);
    let code = rpassword::prompt_password(prompt).context("could not read the MFA code")?;
    let code = code.trim().to_owned();
    crate::config::check_mfa_code(&code)?;
    Ok(Some((mfa.serial.clone(), crate::secret::Secret::new(code))))
}

/// What stops a run, and the children to stop.
#[derive(Debug, Default, Clone)]
pub struct Control {
    pub stop: Arc<Stop>,
    pub groups: Arc<ProcessGroups>,
}

/// Everything after connecting: identify, choose, run, report. Returns the exit code.
pub async fn execute<A: Aws, W: Write + Send + 'static>(
    config: &Config,
    workers: usize,
    regions: &[String],
    aws: Arc<A>,
    control: Control,
    out: W,
    pretty: bool,
) -> anyhow::Result<Exit> {
    let run = Run {
        config,
        workers,
        regions,
        control,
        started: Instant::now(),
    };
    let rerun = config.selection.rerun.as_ref();
    let portal = aws.portal_region();
    let s = &config.selection;
    let walks_ous = s.targets.iter().chain(&s.ignores).any(OrgId::is_parent);
    let identified = tokio::select! {
        identified = identify(aws.as_ref(), regions, rerun, portal.as_deref(), walks_ous) => identified?,
        _ = run.control.stop.cancelled() => return run.interrupted_before_targets(out, pretty),
    };
    if run.streams() {
        run.streamed(aws, identified, out, pretty).await
    } else {
        run.listed(aws, identified, out, pretty).await
    }
}

/// Who is calling (`sts:GetCallerIdentity`), and its partition, checked against every region
/// the run will use. With `--sso-role` (`portal_region` is the portal's region) the partition
/// is the portal's, and there may be no calling identity at all: it is then used for nothing,
/// and a selection that must walk OUs (`selection_walks_ous`) is an error here.
async fn identify<A: Aws>(
    aws: &A,
    regions: &[String],
    rerun: Option<&std::collections::BTreeMap<String, Vec<String>>>,
    portal_region: Option<&str>,
    selection_walks_ous: bool,
) -> anyhow::Result<Identified> {
    let (caller, partition) = match portal_region {
        Some(region) => {
            let caller = match aws.caller().await {
                Ok(caller) => caller,
                Err(e) => {
                    tracing::info!(error = %e, "no calling identity; the organization cannot be listed with it");
                    if selection_walks_ous {
                        if e.cannot_list_organization() {
                            return Err(resolver::cannot_walk(&e, true));
                        }
                        return Err(anyhow::Error::new(e).context(
                            "could not identify the calling credentials with sts:GetCallerIdentity, which the OUs of --target and --ignore need",
                        ));
                    }
                    Caller::default()
                }
            };
            let partition = regions::partition_of(region).unwrap_or("aws").to_owned();
            (caller, partition)
        }
        None => {
            let caller = aws.caller().await.context(
                "could not identify the calling credentials with sts:GetCallerIdentity; check AWS_PROFILE, --profile or your credentials",
            )?;
            let partition = caller
                .partition()
                .with_context(|| {
                    format!(
                        "cannot read a partition from the caller ARN `{}`",
                        caller.arn
                    )
                })?
                .to_owned();
            (caller, partition)
        }
    };
    let rerun_regions = rerun.iter().flat_map(|pairs| pairs.values().flatten());
    for region in regions.iter().chain(rerun_regions) {
        if let Some(p) = regions::partition_of(region)
            && p != partition
        {
            bail!(
                "region `{region}` is in partition `{p}`, but the credentials belong to partition `{partition}`"
            );
        }
    }
    Ok(Identified { caller, partition })
}

struct Identified {
    caller: Caller,
    partition: String,
}

/// The accounts chosen for a listed run, and what was left out.
struct Chosen {
    accounts: Vec<Account>,
    via: std::collections::BTreeMap<String, Vec<String>>,
    skipped: u64,
}

/// One run's settings and controls, shared by its steps.
struct Run<'a> {
    config: &'a Config,
    workers: usize,
    regions: &'a [String],
    control: Control,
    started: Instant,
}

impl Run<'_> {
    fn stop(&self) -> &Arc<Stop> {
        &self.control.stop
    }

    /// Whether targets are run while they are listed: the whole organization, or an OU walk,
    /// when nothing needs the full list first.
    fn streams(&self) -> bool {
        let s = &self.config.selection;
        (s.targets.is_empty() || s.targets.iter().any(OrgId::is_parent))
            && s.rerun.is_none()
            && s.shard.is_none()
            && s.filters.tags.is_empty()
            && !self.config.dry_run
            && !self.config.regions.is_all_enabled()
    }

    fn rules(&self) -> Rules<'_> {
        let s = &self.config.selection;
        Rules {
            ignores: &s.ignores,
            // With --sso-role no command runs with the caller's credentials: the calling
            // account is a target like any other.
            include_caller: s.include_caller || self.portal(),
            filters: &s.filters,
        }
    }

    /// `--sso-role`: targets run with permission sets from the portal.
    fn portal(&self) -> bool {
        self.config.role.source == Source::Portal
    }

    fn note(&self, message: &str) {
        progress::note(self.config.output.quiet, message);
    }

    fn spec(&self, partition: String) -> Arc<RunSpec> {
        let run = &self.config.run;
        Arc::new(RunSpec {
            command: run.command.clone(),
            workers: self.workers,
            fail_fast: run.fail_fast,
            partition,
            limits: Limits {
                max_output_bytes: run.max_output_bytes,
                timeout: run.timeout,
            },
            keep_raw_output: output::needs_raw_output(
                self.config.output.format,
                self.config.output.dir.as_deref(),
            ),
            remove_env: child_env::removed_from_environment(),
        })
    }

    fn shared<A: Aws>(
        &self,
        cache: CredentialCache<A>,
        partition: String,
    ) -> anyhow::Result<Shared<A>> {
        let creds = Arc::new(cache.with_rate_limit(self.config.aws.max_assume_rate));
        let endpoint = endpoint::serve(self.config.run.child_credentials, &creds)?;
        Ok(Shared {
            creds,
            spec: self.spec(partition),
            stop: self.stop().clone(),
            groups: self.control.groups.clone(),
            endpoint,
        })
    }

    fn reporter<W: Write + Send + 'static>(&self, out: W, pretty: bool, total: u64) -> Reporter {
        let o = &self.config.output;
        // `pretty` says stdout is a terminal: text there gets colors, and no progress bar
        // drawn over its lines.
        let text_on_terminal = pretty && o.format == Format::Text;
        let sink = Sink::new(out, o.format, pretty, o.dir.clone())
            .with_color(text_on_terminal && text::color_allowed());
        let stop = self.stop().clone();
        let writer = Writer::spawn(sink, move |err| {
            stop.trigger(match err {
                OutputError::Closed => StopReason::OutputClosed,
                OutputError::Failed(_) => StopReason::OutputFailed,
            })
        });
        let ci = o.ci_summary.then(ci_summary::destination).flatten();
        Reporter {
            writer,
            progress: Progress::new(total, o.quiet, !text_on_terminal && !o.logging),
            known: None,
            ci: ci.map(ci_summary::Collector::new),
        }
    }

    /// Stopped before any target was known: an empty document of the run's own shape (a dry
    /// run's matrix, or the results), so the output still parses.
    fn interrupted_before_targets<W: Write>(&self, out: W, pretty: bool) -> anyhow::Result<Exit> {
        if self.config.dry_run {
            let roles = &self.config.role.role_names;
            let none = std::collections::BTreeMap::new();
            dry_run::write(&[], &none, roles, false, true, out, pretty)?;
            return Ok(Exit::Interrupted);
        }
        let o = &self.config.output;
        let sink = Sink::new(out, o.format, pretty, o.dir.clone());
        let ended = sink.finish(0, self.elapsed_ms()).map(drop);
        output::written(ended, "the results")?;
        Ok(Exit::Interrupted)
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Resolves, filters and shards the accounts. Only a shard may come out empty.
    async fn choose<A: Aws>(&self, aws: &A, caller: &Caller) -> anyhow::Result<Chosen> {
        let s = &self.config.selection;
        let rerun_targets: Vec<OrgId> = s
            .rerun
            .iter()
            .flat_map(|pairs| pairs.keys())
            .map(|id| OrgId::Account(id.clone()))
            .collect();
        let selection = Selection {
            targets: if s.rerun.is_some() {
                &rerun_targets
            } else {
                &s.targets
            },
            rules: self.rules(),
            lenient: s.rerun.is_some(),
            portal: self.portal(),
        };
        let mut resolution = resolver::resolve(aws, selection, caller).await?;
        let (accounts, left_out) = s.filters.apply_tags(aws, resolution.accounts).await?;
        resolution.tally.filtered_later(left_out);
        let mut notes = resolution.notes;
        notes.extend(resolution.tally.notes(!s.filters.is_empty()));
        let accounts = match s.shard {
            Some(shard) => {
                let before = accounts.len();
                let kept = shard.keep(accounts);
                notes.push(format!(
                    "shard {}/{}: {} of {} accounts",
                    shard.index,
                    shard.count,
                    kept.len(),
                    before
                ));
                kept
            }
            None => accounts,
        };
        for note in &notes {
            self.note(note);
        }
        if accounts.is_empty() && s.shard.is_none() {
            bail!(
                "no eligible targets: after --target, --ignore, filters, the calling account and accounts that are not ACTIVE, nothing is left to run in"
            );
        }
        Ok(Chosen {
            accounts,
            via: resolution.via,
            skipped: resolution.tally.skipped(),
        })
    }

    /// A run over a fully resolved list of accounts.
    async fn listed<A: Aws, W: Write + Send + 'static>(
        &self,
        aws: Arc<A>,
        identified: Identified,
        out: W,
        pretty: bool,
    ) -> anyhow::Result<Exit> {
        let chosen = tokio::select! {
            chosen = self.choose(aws.as_ref(), &identified.caller) => chosen?,
            _ = self.stop().cancelled() => return self.interrupted_before_targets(out, pretty),
        };
        let all_enabled = self.config.regions.is_all_enabled();
        let all_label = [ALL_ENABLED_LABEL.to_owned()];
        let fixed = if all_enabled {
            &all_label[..]
        } else {
            self.regions
        };
        let s = &self.config.selection;
        let targets = plan::targets(
            chosen.accounts,
            fixed,
            s.rerun.as_ref(),
            &self.config.regions,
        );
        if self.config.dry_run {
            let quiet = self.config.output.quiet;
            let roles = &self.config.role.role_names;
            return dry_run::write(
                &targets,
                &chosen.via,
                roles,
                all_enabled,
                quiet,
                out,
                pretty,
            );
        }
        if targets.is_empty() && s.shard.is_none() {
            bail!(
                "no eligible targets: the regions chosen (--region, --exclude-region, --rerun) leave nothing to run"
            );
        }
        // With --region all the uses of each account are known only after discovery.
        let planned = targets
            .iter()
            .filter(|_| !all_enabled)
            .map(|(a, _)| a.id.as_str());
        let role = self.config.role.clone();
        let cache = CredentialCache::new(aws, role, &identified.partition, planned);
        let shared = self.shared(cache, identified.partition)?;
        let (targets, early) = if all_enabled {
            self.discover(&shared, targets).await
        } else {
            (targets, Vec::new())
        };
        let total = (targets.len() + early.len()) as u64;
        let mut reporter = self.reporter(out, pretty, total);
        for record in early {
            reporter.finished(record);
        }
        runner::run_all(shared, runner::feed(targets), &mut reporter).await;
        self.finish(reporter, chosen.skipped, &[])
    }

    /// `--region all`: each account's enabled regions become its targets. Accounts that could
    /// not be asked come back as records, as do all accounts when the run is interrupted.
    async fn discover<A: Aws>(
        &self,
        shared: &Shared<A>,
        targets: Vec<Target>,
    ) -> (Vec<Target>, Vec<Record>) {
        let accounts: Vec<Account> = targets.iter().map(|(a, _)| (**a).clone()).collect();
        let regions = &self.config.regions;
        let discovery = plan::discover_regions(&shared.creds, accounts, regions, self.workers);
        let found = tokio::select! {
            found = discovery => found,
            _ = self.stop().cancelled() => {
                // Interrupted while asking accounts for their regions: each account is
                // reported once, as cancelled.
                let reason = self.stop().reason().unwrap_or(StopReason::Interrupted);
                let records = targets
                    .iter()
                    .map(|(account, region)| runner::cancelled(account, region, shared, reason))
                    .collect();
                return (Vec::new(), records);
            }
        };
        let (found, failed) = found;
        for (account, _) in &found {
            shared.creds.add_uses(&account.id, 1);
        }
        self.note_regionless(&targets, &found, &failed, shared);
        if self.config.run.fail_fast && !failed.is_empty() {
            self.stop().trigger(StopReason::FailFast);
        }
        let records = failed
            .into_iter()
            .map(|(account, failure)| discovery_record(&account, failure, shared))
            .collect();
        (found, records)
    }

    /// Accounts whose enabled regions are all excluded have nothing to run: say so, rather than
    /// leave them out of the output silently, and drop their credentials.
    fn note_regionless<A: Aws>(
        &self,
        asked: &[Target],
        found: &[Target],
        failed: &[(Arc<Account>, plan::DiscoveryFailure)],
        shared: &Shared<A>,
    ) {
        let reached: std::collections::HashSet<&str> = found
            .iter()
            .map(|(a, _)| a.id.as_str())
            .chain(failed.iter().map(|(a, _)| a.id.as_str()))
            .collect();
        let empty: Vec<&str> = asked
            .iter()
            .map(|(a, _)| a.id.as_str())
            .filter(|id| !reached.contains(id))
            .collect();
        for id in &empty {
            shared.creds.release(id);
        }
        if !empty.is_empty() {
            self.note(&format!(
                "{} account(s) have no enabled region left to run in (after --exclude-region): {}",
                empty.len(),
                empty.join(", ")
            ));
        }
    }

    /// A run of the whole organization or of OUs, while it is still being listed: the first
    /// roles are assumed while later pages are on their way, and no full account list is ever
    /// held.
    async fn streamed<A: Aws, W: Write + Send + 'static>(
        &self,
        aws: Arc<A>,
        identified: Identified,
        out: W,
        pretty: bool,
    ) -> anyhow::Result<Exit> {
        let Identified { caller, partition } = identified;
        let admission = tokio::select! {
            admission = resolver::admission(aws.as_ref(), self.rules(), &caller) => admission?,
            _ = self.stop().cancelled() => return self.interrupted_before_targets(out, pretty),
        };
        let role = self.config.role.clone();
        let shared = self.shared(
            CredentialCache::new(aws.clone(), role, &partition, []),
            partition,
        )?;
        let (account_tx, account_rx) = tokio::sync::mpsc::channel::<Account>(256);
        let known = Arc::new(AtomicU64::new(0));
        let listing = tokio::spawn({
            let stop = self.stop().clone();
            let targets = self.config.selection.targets.clone();
            let portal = self.portal();
            async move {
                let stopped = || stop.is_stopped();
                if targets.is_empty() {
                    stream::stream_organization(
                        aws.as_ref(),
                        &admission,
                        portal,
                        stopped,
                        account_tx,
                    )
                    .await
                } else {
                    stream::walk(aws.as_ref(), &targets, &admission, stopped, account_tx).await
                }
            }
        });
        let targets = expand_regions(account_rx, self.regions.to_vec(), &shared, known.clone());
        let mut reporter = self.reporter(out, pretty, 0);
        reporter.known = Some(known.clone());
        runner::run_all(shared, targets, &mut reporter).await;

        let listed = listing
            .await
            .context("the task listing the organization failed")?;
        let filters = !self.config.selection.filters.is_empty();
        match listed {
            Ok(summary) if summary.sent == 0 && !self.stop().is_stopped() => {
                for note in summary.notes(filters) {
                    self.note(&note);
                }
                bail!(
                    "no eligible targets: after --ignore, filters, the calling account and accounts that are not ACTIVE, nothing is left to run in"
                )
            }
            Ok(summary) => self.finish(reporter, summary.tally.skipped(), &summary.notes(filters)),
            Err(err) if known.load(Ordering::SeqCst) == 0 => Err(err),
            Err(err) => {
                self.finish(reporter, 0, &[])?;
                Err(err.context(
                    "the organization could not be listed to the end; the output holds only the accounts listed before the error",
                ))
            }
        }
    }

    /// Ends a run that started: the end of the output, late notes, the summary, the exit code.
    fn finish(
        &self,
        reporter: Reporter,
        skipped: u64,
        late_notes: &[String],
    ) -> anyhow::Result<Exit> {
        let Reporter {
            writer,
            progress,
            ci,
            ..
        } = reporter;
        let interrupted = self.stop().interrupted();
        let counts = match writer.finish(skipped, self.elapsed_ms()) {
            Ok(counts) => counts,
            // The reader went away (`| head`): quiet, but an interrupt is still an interrupt.
            Err(OutputError::Closed) => return Ok(exit_code::decide(0, interrupted)),
            Err(OutputError::Failed(err)) => bail!("could not write the results: {err}"),
        };
        progress.clear();
        for note in late_notes {
            progress::note(progress.is_quiet(), note);
        }
        let stopped = match self.stop().reason() {
            Some(StopReason::Interrupted) => Some("interrupted"),
            Some(StopReason::FailFast) => Some("stopped by --fail-fast"),
            _ => None,
        };
        progress.finish(&counts, stopped);
        if let Some(ci) = ci {
            ci.report(&counts, skipped, stopped);
        }
        Ok(exit_code::decide(counts.failed(), interrupted))
    }
}

/// Each account from the listing, in every region, as targets for the scheduler; counts the
/// targets known so far for the progress bar.
fn expand_regions<A: Aws>(
    mut accounts: tokio::sync::mpsc::Receiver<Account>,
    regions: Vec<String>,
    shared: &Shared<A>,
    known: Arc<AtomicU64>,
) -> tokio::sync::mpsc::Receiver<Target> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Target>(1024);
    let creds = shared.creds.clone();
    tokio::spawn(async move {
        while let Some(account) = accounts.recv().await {
            let account = Arc::new(account);
            creds.add_uses(&account.id, regions.len());
            known.fetch_add(regions.len() as u64, Ordering::SeqCst);
            for region in &regions {
                if tx.send((account.clone(), region.clone())).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The record of an account whose regions could not be discovered (`--region all`).
fn discovery_record<A: Aws>(
    account: &Account,
    failure: plan::DiscoveryFailure,
    shared: &Shared<A>,
) -> Record {
    let (role, assumed, detail) = match failure {
        plan::DiscoveryFailure::Assume(failure) => {
            (failure.role.clone(), false, failure.to_string())
        }
        plan::DiscoveryFailure::ListRegions(role, e) => (
            role,
            true,
            format!(
                "could not list the account's enabled regions (account:ListRegions) for --region all: {e}"
            ),
        ),
    };
    runner::account_failure(account, ALL_ENABLED_LABEL, shared, (&role, assumed), detail)
}

/// Hands each finished target to the progress display and the output's writer thread.
struct Reporter {
    writer: Writer,
    progress: Progress,
    /// While the organization is still being listed, the number of targets known so far.
    known: Option<Arc<AtomicU64>>,
    /// The failed targets for the GitHub Actions summary, when cove runs there.
    ci: Option<ci_summary::Collector>,
}

impl Reporter {
    fn update_total(&self) {
        if let Some(known) = &self.known {
            self.progress.set_total(known.load(Ordering::SeqCst));
        }
    }
}

impl Observer for Reporter {
    fn finished(&mut self, record: Record) {
        self.update_total();
        self.progress.finished(&record);
        if let Some(ci) = &mut self.ci {
            ci.add(&record);
        }
        self.writer.send(record);
    }

    fn running(&mut self, running: &mut dyn Iterator<Item = (&str, &str, Duration)>) {
        self.update_total();
        self.progress.running(running);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;
    use crate::cli::Cli;
    use clap::Parser;
    use std::sync::Mutex;

    /// Output the test can read after the writer thread is done with it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn org(fail_from_page: Option<usize>) -> Arc<FakeAws> {
        let mut accounts = vec![FakeAws::account("000000000000", "mgmt", "ACTIVE")];
        for i in 1..=5 {
            accounts.push(FakeAws::account(
                &format!("{i:012}"),
                &format!("a{i}"),
                "ACTIVE",
            ));
        }
        Arc::new(FakeAws {
            caller: "000000000000".into(),
            accounts,
            fail_from_page,
            ..FakeAws::default()
        })
    }

    async fn whole_org(aws: Arc<FakeAws>) -> (anyhow::Result<Exit>, serde_json::Value) {
        let cli =
            Cli::try_parse_from(["cove", "-q", "--region", "eu-west-1", "--", "true"]).unwrap();
        let config = Config::from_cli(cli).unwrap();
        let out = Shared::default();
        let regions = ["eu-west-1".to_owned()];
        let control = Control::default();
        let code = execute(&config, 4, &regions, aws, control, out.clone(), false).await;
        let bytes = out.0.lock().unwrap().clone();
        let doc = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (code, doc)
    }

    #[tokio::test]
    async fn the_whole_organization_runs_while_it_is_listed() {
        let aws = org(None);
        let (code, doc) = whole_org(aws.clone()).await;
        assert_eq!(code.unwrap(), Exit::Success);
        assert_eq!(doc["Results"].as_array().unwrap().len(), 5);
        assert_eq!(aws.assume_calls(), 5);
    }

    async fn portal_run(aws: Arc<FakeAws>) -> serde_json::Value {
        let args = [
            "cove",
            "-q",
            "--sso-role",
            "Admin",
            "-r",
            "eu-west-1",
            "--",
            "true",
        ];
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "-r" { "--region" } else { a })
            .collect();
        let config = Config::from_cli(Cli::try_parse_from(args).unwrap()).unwrap();
        let out = Shared::default();
        let regions = ["eu-west-1".to_owned()];
        let code = execute(
            &config,
            4,
            &regions,
            aws,
            Control::default(),
            out.clone(),
            false,
        )
        .await;
        assert_eq!(code.unwrap(), Exit::Success);
        let bytes = out.0.lock().unwrap().clone();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn ids(doc: &serde_json::Value) -> Vec<&str> {
        doc["Results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Id"].as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn with_sso_role_the_calling_account_runs_and_no_role_is_assumed() {
        let mut aws = Arc::into_inner(org(None)).unwrap();
        aws.portal = Some("eu-west-1".into());
        let aws = Arc::new(aws);
        let doc = portal_run(aws.clone()).await;
        assert_eq!(ids(&doc).len(), 6, "the caller's account too: {doc}");
        assert_eq!(aws.assume_calls(), 0);
        assert_eq!(aws.portal_requests.lock().unwrap().len(), 6);
        let first = &doc["Results"][0];
        assert_eq!(first["RoleName"], "Admin");
        assert!(first["RoleSessionName"].is_null(), "{first}");
        assert_eq!(first["AssumeRoleSuccess"], true);
    }

    #[tokio::test]
    async fn with_sso_role_and_no_organization_access_the_portals_accounts_run() {
        let mut aws = Arc::into_inner(org(None)).unwrap();
        aws.portal = Some("eu-west-1".into());
        aws.deny_list_accounts = true;
        aws.portal_accounts = vec![
            FakeAws::account("000000000000", "mgmt", "ACTIVE"),
            FakeAws::account("000000000003", "a3", "ACTIVE"),
            FakeAws::account("000000000005", "a5", "ACTIVE"),
        ];
        for account in &mut aws.portal_accounts {
            account.status = None;
        }
        let doc = portal_run(Arc::new(aws)).await;
        assert_eq!(ids(&doc), ["000000000000", "000000000003", "000000000005"]);
        assert_eq!(doc["Results"][1]["Name"], "a3");
    }

    #[tokio::test]
    async fn a_listing_that_fails_midway_reports_what_ran_and_exits_2() {
        let (code, doc) = whole_org(org(Some(1))).await;
        let err = format!("{:#}", code.unwrap_err());
        assert!(err.contains("could not be listed to the end"), "{err}");
        assert!(err.contains("ServiceException"), "{err}");
        let ran = doc["Results"].as_array().unwrap();
        assert_eq!(
            ran.len(),
            1,
            "the first page held the caller and one account: {doc}"
        );
    }
}
