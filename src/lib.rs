//! cove runs one command in every AWS account and region of an organization, concurrently,
//! and reports every outcome as JSON.
//!
//! The pipeline reads top to bottom in [`run`]: validate the command line ([`config`]), load the
//! AWS configuration, identify the caller, resolve the target accounts ([`resolver`]), run the
//! command in each account × region ([`runner`]) and write the document ([`output`]).

pub mod assets;
pub mod aws;
pub mod child_env;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod exit_code;
pub mod filters;
pub mod ids;
pub mod merge;
pub mod output;
pub mod plan;
pub mod progress;
pub mod regions;
pub mod resolver;
pub mod runner;
pub mod template;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_config::BehaviorVersion;
use aws_types::region::Region;

use crate::aws::Aws;
use crate::aws::sdk::SdkAws;
use crate::cli::Cli;
use crate::config::Config;
use crate::credentials::CredentialCache;
use crate::output::{Counts, Record, Sink};
use crate::progress::Progress;
use crate::runner::{Observer, RunSpec, Stop, StopReason};

/// Runs cove for a parsed command line. Errors mean nothing ran (exit code 2).
pub fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(cli::Subcommand::Merge { files }) = cli.subcommand.take() {
        let stdout = std::io::stdout();
        let pretty = stdout.is_terminal();
        return Ok(exit_code::code(merge::merge(
            &files,
            stdout.lock(),
            pretty,
        )?));
    }
    let config = Config::from_cli(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        let stop = Arc::new(Stop::default());
        tokio::spawn(handle_signals(stop.clone()));

        let retry = aws::retry::RetrySettings::load(config.profile.as_deref()).await?;
        let chain_region = chain_region(config.profile.as_deref()).await;
        if let Some(region) = &chain_region {
            regions::check(region, true).map_err(|e| {
                anyhow::anyhow!("the region of the credential chain (AWS_REGION or the profile): {e}")
            })?;
        }
        let regions = if config.regions.is_empty() && (config.rerun.is_some() || config.all_regions) {
            Vec::new()
        } else if config.regions.is_empty() {
            match &chain_region {
                Some(region) => vec![region.clone()],
                None => bail!(
                    "no region: pass --region (for example --region us-east-1), or set AWS_REGION or a region in your AWS profile"
                ),
            }
        } else {
            config.regions.clone()
        };
        let mut regions = regions;
        regions.retain(|r| !config.exclude_regions.contains(r));
        if regions.is_empty() && !config.all_regions && config.rerun.is_none() {
            bail!("no eligible targets: --exclude-region leaves out every region to run in");
        }
        // STS is called in the caller's own region where it has one (regional endpoint).
        let sts_region = match chain_region.or_else(|| regions.first().cloned()) {
            Some(region) => region,
            None => bail!(
                "no region to call STS in: with --region all or --rerun, set AWS_REGION or a region in your AWS profile"
            ),
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(sts_region))
            .retry_config(retry.for_sdk());
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        let aws = Arc::new(SdkAws::new(&loader.load().await, &retry));
        if let Some(note) = config.workers_note() {
            eprintln!("cove: warning: {note}");
        }

        let stdout = std::io::stdout();
        let pretty = stdout.is_terminal();
        let code = execute(&config, &regions, aws, stop, stdout, pretty).await?;
        Ok(exit_code::code(code))
    })
}

/// The region the credential chain resolves (environment, then profile), if any.
async fn chain_region(profile: Option<&str>) -> Option<String> {
    let mut chain = aws_config::default_provider::region::DefaultRegionChain::builder();
    if let Some(profile) = profile {
        chain = chain.profile_name(profile);
    }
    chain.build().region().await.map(|r| r.as_ref().to_owned())
}

/// The exit code a finished run earns.
pub fn exit_status(counts: &Counts, stopped: Option<StopReason>) -> u8 {
    match stopped {
        Some(StopReason::Interrupted) => exit_code::INTERRUPTED,
        _ if counts.all_succeeded() => exit_code::SUCCESS,
        _ => exit_code::TARGET_FAILED,
    }
}

/// Hands each finished target to the data sink and to the progress display.
struct Reporter<W: Write> {
    sink: Sink<W>,
    progress: Progress,
    /// While the organization is still being listed, the number of targets known so far.
    known: Option<Arc<AtomicU64>>,
}

impl<W: Write> Reporter<W> {
    fn new(config: &Config, out: W, pretty: bool, total: u64) -> Self {
        Reporter {
            sink: Sink::new(out, config.output, pretty, config.output_dir.clone()),
            progress: Progress::new(total, config.quiet),
            known: None,
        }
    }

    fn update_total(&self) {
        if let Some(known) = &self.known {
            self.progress.set_total(known.load(Ordering::SeqCst));
        }
    }
}

impl<W: Write> Observer for Reporter<W> {
    fn finished(&mut self, record: Record) -> std::io::Result<()> {
        self.update_total();
        self.progress.finished(&record);
        self.sink.record(record)
    }

    fn running(&mut self, running: &mut dyn Iterator<Item = (&str, &str, Duration)>) {
        self.update_total();
        self.progress.running(running);
    }
}

/// One entry of the `--dry-run` matrix.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PlannedTarget<'a> {
    id: &'a str,
    name: Option<&'a str>,
    email: Option<&'a str>,
    status: Option<&'a str>,
    region: &'a str,
    targeted_by: &'a [String],
}

/// Who is calling (`sts:GetCallerIdentity`), and its partition, checked against the regions.
async fn identify<A: Aws>(
    config: &Config,
    regions: &[String],
    aws: &A,
) -> anyhow::Result<(aws::Caller, String)> {
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
    let rerun_regions = config
        .rerun
        .iter()
        .flat_map(|pairs| pairs.values().flatten());
    for region in regions.iter().chain(rerun_regions) {
        if let Some(p) = regions::partition_of(region)
            && p != partition
        {
            bail!(
                "region `{region}` is in partition `{p}`, but the credentials belong to partition `{partition}`"
            );
        }
    }
    Ok((caller, partition))
}

/// Identifies the caller and resolves, filters and shards the accounts. Only a shard may come
/// out empty.
async fn prepare<A: Aws>(
    config: &Config,
    regions: &[String],
    aws: &A,
) -> anyhow::Result<(String, resolver::Resolution)> {
    let (caller, partition) = identify(config, regions, aws).await?;
    let rerun_targets: Vec<ids::OrgId> = config
        .rerun
        .iter()
        .flat_map(|pairs| pairs.keys())
        .map(|id| ids::OrgId::Account(id.clone()))
        .collect();
    let selection = resolver::Selection {
        targets: if config.rerun.is_some() {
            &rerun_targets
        } else {
            &config.targets
        },
        ignores: &config.ignores,
        include_caller: config.include_caller,
        lenient: config.rerun.is_some(),
    };
    let mut resolution = resolver::resolve(aws, selection, &caller).await?;
    let (kept, filtered) = config
        .filters
        .apply(aws, std::mem::take(&mut resolution.accounts))
        .await?;
    resolution.accounts = kept;
    resolution.notes.extend(filtered);
    if let Some(shard) = config.shard {
        let before = resolution.accounts.len();
        resolution.accounts = shard.keep(std::mem::take(&mut resolution.accounts));
        resolution.notes.push(format!(
            "shard {}/{}: {} of {} accounts",
            shard.index,
            shard.count,
            resolution.accounts.len(),
            before
        ));
    }
    for note in &resolution.notes {
        progress::note(config.quiet, note);
    }
    if resolution.accounts.is_empty() && config.shard.is_none() {
        bail!(
            "no eligible targets: after --target, --ignore, filters, the calling account and accounts that are not ACTIVE, nothing is left to run in"
        );
    }
    Ok((partition, resolution))
}

/// `--dry-run`: the account × region matrix on stdout, a count on stderr.
fn write_dry_run<W: Write>(
    config: &Config,
    targets: &[plan::Target],
    via: &std::collections::BTreeMap<String, Vec<String>>,
    out: &mut W,
    pretty: bool,
) -> anyhow::Result<u8> {
    let planned: Vec<PlannedTarget> = targets
        .iter()
        .map(|(a, r)| PlannedTarget {
            id: &a.id,
            name: a.name.as_deref(),
            email: a.email.as_deref(),
            status: a.status.as_deref(),
            region: r,
            targeted_by: via.get(&a.id).map(Vec::as_slice).unwrap_or_default(),
        })
        .collect();
    let doc = serde_json::json!({ "Targets": planned });
    match output::write_json(out, &doc, pretty) {
        Err(e) if !output::is_closed_pipe(&e) => {
            return Err(e).context("could not write the dry run to stdout");
        }
        _ => {}
    }
    let count = |f: fn(&plan::Target) -> &str| {
        targets
            .iter()
            .map(f)
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64
    };
    let accounts = count(|(a, _)| a.id.as_str());
    let summary = if config.all_regions {
        format!(
            "dry run: {} accounts, each in every region it has enabled (discovered when the run starts); no role was assumed and nothing ran",
            progress::thousands(accounts)
        )
    } else {
        format!(
            "dry run: {} accounts × {} regions = {} targets; no role was assumed and nothing ran",
            progress::thousands(accounts),
            count(|(_, r)| r.as_str()),
            progress::thousands(targets.len() as u64)
        )
    };
    progress::note(config.quiet, &summary);
    Ok(exit_code::SUCCESS)
}

/// Everything after configuration: identify, resolve, run, report. Generic over [`Aws`] and
/// the output, so tests can drive it with a fake. Returns the exit code.
pub async fn execute<A: Aws, W: Write>(
    config: &Config,
    regions: &[String],
    aws: Arc<A>,
    stop: Arc<Stop>,
    mut out: W,
    pretty: bool,
) -> anyhow::Result<u8> {
    let started = Instant::now();
    let streams = config.targets.is_empty()
        && config.rerun.is_none()
        && config.shard.is_none()
        && !config.dry_run
        && !config.all_regions
        && config.filters.tags.is_empty();
    if streams {
        return execute_streaming(config, regions, aws, stop, out, pretty, started).await;
    }
    let (partition, resolution) = tokio::select! {
        prepared = prepare(config, regions, aws.as_ref()) => prepared?,
        _ = stop.cancelled() => {
            // No target is known yet: an empty document, so the output still parses.
            let sink = Sink::new(out, config.output, pretty, config.output_dir.clone());
            finish_sink(sink, 0, started)?;
            return Ok(exit_code::INTERRUPTED);
        }
    };
    // With --region all, regions are discovered per account; until then each account stands
    // once, as region `all`.
    let all = ["all".to_owned()];
    let targets = plan::targets(
        resolution.accounts,
        if config.all_regions { &all } else { regions },
        config.rerun.as_ref(),
        !config.regions.is_empty(),
        &config.exclude_regions,
    );
    if config.dry_run {
        return write_dry_run(config, &targets, &resolution.via, &mut out, pretty);
    }
    if targets.is_empty() && config.shard.is_none() {
        bail!(
            "no eligible targets: the regions chosen (--region, --exclude-region, --rerun) leave nothing to run"
        );
    }

    // With --region all the uses of each account are known only after discovery.
    let planned = targets
        .iter()
        .filter(|_| !config.all_regions)
        .map(|(a, _)| a.id.as_str());
    let cache = CredentialCache::new(aws, config.role.clone(), &partition, planned)
        .with_rate_limit(config.max_assume_rate);
    let mut failures = Vec::new();
    let mut undiscovered = Vec::new();
    let targets = if config.all_regions {
        let accounts: Vec<aws::Account> = targets.iter().map(|(a, _)| (**a).clone()).collect();
        let discovery =
            plan::discover_regions(&cache, accounts, &config.exclude_regions, config.workers);
        let found = tokio::select! {
            found = discovery => Some(found),
            _ = stop.cancelled() => None,
        };
        match found {
            Some((found, failed)) => {
                failures = failed;
                for (account, _) in &found {
                    cache.add_uses(&account.id, 1);
                }
                found
            }
            None => {
                // Interrupted while asking accounts for their regions: each account is
                // reported once, as cancelled.
                undiscovered = targets;
                Vec::new()
            }
        }
    } else {
        targets
    };
    let cache = Arc::new(cache);
    let total = (targets.len() + failures.len() + undiscovered.len()) as u64;
    let spec = run_spec(config, partition);
    let mut reporter = Reporter::new(config, out, pretty, total);
    if config.fail_fast && !failures.is_empty() {
        stop.trigger(StopReason::FailFast);
    }
    let early = failures
        .into_iter()
        .map(|(account, failure)| discovery_record(&account, failure, &cache, &spec))
        .chain(undiscovered.iter().map(|(account, region)| {
            let reason = stop.reason().unwrap_or(StopReason::Interrupted);
            runner::cancelled(account, region, &cache, &spec, reason)
        }));
    for record in early {
        if let Err(err) = reporter.finished(record) {
            stop.output_failed(&err);
            break;
        }
    }
    runner::run_all(
        cache,
        runner::feed(targets),
        spec,
        stop.clone(),
        &mut reporter,
    )
    .await;
    finish_run(reporter, &stop, resolution.skipped, &[], started)
}

fn run_spec(config: &Config, partition: String) -> Arc<RunSpec> {
    Arc::new(RunSpec {
        command: config.command.clone(),
        workers: config.workers,
        fail_fast: config.fail_fast,
        partition,
        max_output_bytes: config.max_output_bytes,
        timeout: config.timeout,
        keep_raw_output: config.output_dir.is_some(),
        remove_env: child_env::removed_from_environment(),
    })
}

/// Ends a run that started: the end of the output, late notes, the summary, the exit code.
fn finish_run<W: Write>(
    reporter: Reporter<W>,
    stop: &Stop,
    skipped: u64,
    late_notes: &[String],
    started: Instant,
) -> anyhow::Result<u8> {
    let Reporter { sink, progress, .. } = reporter;
    match stop.reason() {
        Some(StopReason::OutputClosed) => return Ok(exit_code::SUCCESS),
        Some(StopReason::OutputFailed) => bail!(
            "could not write the results: {}",
            stop.output_error().unwrap_or("unknown error")
        ),
        _ => {}
    }
    let Some(counts) = finish_sink(sink, skipped, started)? else {
        // The reader went away (`| head`): quiet, but an interrupt is still an interrupt.
        return Ok(match stop.reason() {
            Some(StopReason::Interrupted) => exit_code::INTERRUPTED,
            _ => exit_code::SUCCESS,
        });
    };
    progress.clear();
    for note in late_notes {
        progress::note(progress.is_quiet(), note);
    }
    let stopped = match stop.reason() {
        Some(StopReason::Interrupted) => Some("interrupted"),
        Some(StopReason::FailFast) => Some("stopped by --fail-fast"),
        _ => None,
    };
    progress.finish(&counts, stopped);
    Ok(exit_status(&counts, stop.reason()))
}

/// The whole organization, run while it is still being listed: the first roles are assumed
/// while later `ListAccounts` pages are on their way, and no full account list is ever held.
async fn execute_streaming<A: Aws, W: Write>(
    config: &Config,
    regions: &[String],
    aws: Arc<A>,
    stop: Arc<Stop>,
    out: W,
    pretty: bool,
    started: Instant,
) -> anyhow::Result<u8> {
    let (caller, partition) = tokio::select! {
        identified = identify(config, regions, aws.as_ref()) => identified?,
        _ = stop.cancelled() => {
            let sink = Sink::new(out, config.output, pretty, config.output_dir.clone());
            finish_sink(sink, 0, started)?;
            return Ok(exit_code::INTERRUPTED);
        }
    };
    let cache = Arc::new(
        CredentialCache::new(aws.clone(), config.role.clone(), &partition, [])
            .with_rate_limit(config.max_assume_rate),
    );
    let spec = run_spec(config, partition);
    let (account_tx, mut account_rx) = tokio::sync::mpsc::channel::<aws::Account>(256);
    let (target_tx, target_rx) = tokio::sync::mpsc::channel::<plan::Target>(1024);
    let known = Arc::new(AtomicU64::new(0));
    let listing = tokio::spawn({
        let (aws, stop) = (aws.clone(), stop.clone());
        let (ignores, filters) = (config.ignores.clone(), config.filters.clone());
        let include_caller = config.include_caller;
        async move {
            resolver::stream_organization(
                aws.as_ref(),
                &ignores,
                include_caller,
                &caller,
                &filters,
                || stop.reason().is_some(),
                account_tx,
            )
            .await
        }
    });
    tokio::spawn({
        let (cache, known, regions) = (cache.clone(), known.clone(), regions.to_vec());
        async move {
            while let Some(account) = account_rx.recv().await {
                let account = Arc::new(account);
                cache.add_uses(&account.id, regions.len());
                known.fetch_add(regions.len() as u64, Ordering::SeqCst);
                for region in &regions {
                    if target_tx
                        .send((account.clone(), region.clone()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    let mut reporter = Reporter::new(config, out, pretty, 0);
    reporter.known = Some(known.clone());
    runner::run_all(cache, target_rx, spec, stop.clone(), &mut reporter).await;

    let listed = listing
        .await
        .context("the task listing the organization failed")?;
    match listed {
        Ok(summary) if summary.sent == 0 && stop.reason().is_none() => {
            for note in &summary.notes {
                progress::note(config.quiet, note);
            }
            bail!(
                "no eligible targets: after --ignore, filters, the calling account and accounts that are not ACTIVE, nothing is left to run in"
            )
        }
        Ok(summary) => finish_run(reporter, &stop, summary.skipped, &summary.notes, started),
        Err(err) if known.load(Ordering::SeqCst) == 0 => Err(err),
        Err(err) => {
            finish_run(reporter, &stop, 0, &[], started)?;
            Err(err.context(
                "the organization could not be listed to the end; the output holds only the accounts listed before the error",
            ))
        }
    }
}

/// The record of an account whose regions could not be discovered (`--region all`).
fn discovery_record<A: Aws>(
    account: &aws::Account,
    failure: plan::DiscoveryFailure,
    cache: &CredentialCache<A>,
    spec: &RunSpec,
) -> Record {
    match failure {
        plan::DiscoveryFailure::Assume(e) => runner::account_failure(
            account,
            "all",
            cache,
            spec,
            false,
            format!(
                "could not assume {}: {e}",
                cache.spec().role_arn(&spec.partition, &account.id)
            ),
        ),
        plan::DiscoveryFailure::ListRegions(e) => runner::account_failure(
            account,
            "all",
            cache,
            spec,
            true,
            format!(
                "could not list the account's enabled regions (account:ListRegions) for --region all: {e}"
            ),
        ),
    }
}

/// Writes the end of the output. `None` when stdout was closed: that ends cove quietly.
fn finish_sink<W: Write>(
    sink: Sink<W>,
    skipped: u64,
    started: Instant,
) -> anyhow::Result<Option<Counts>> {
    match sink.finish(skipped, started.elapsed().as_millis() as u64) {
        Ok(counts) => Ok(Some(counts)),
        Err(e) if output::is_closed_pipe(&e) => Ok(None),
        Err(e) => Err(e).context("could not write the results"),
    }
}

/// First SIGINT/SIGTERM: start nothing new, stop the children, report. Second: kill the
/// children and exit at once.
async fn handle_signals(stop: Arc<Stop>) {
    use tokio::signal::unix::{SignalKind, signal};
    // SIGHUP (the terminal went away) and SIGQUIT count as interrupts too: children live in
    // their own process groups, so without this they would outlive cove.
    let kinds = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::quit(),
    ];
    let mut streams = Vec::new();
    for kind in kinds {
        match signal(kind) {
            Ok(stream) => streams.push(stream),
            Err(_) => {
                eprintln!(
                    "cove: warning: cannot listen for signals; an interrupt will not be reported"
                );
                return;
            }
        }
    }
    let next = async |streams: &mut Vec<tokio::signal::unix::Signal>| {
        let waits = streams.iter_mut().map(|s| Box::pin(s.recv()));
        futures::future::select_all(waits).await;
    };
    next(&mut streams).await;
    eprintln!(
        "cove: interrupted: stopping the running commands and reporting what finished (interrupt again to exit at once)"
    );
    stop.trigger(StopReason::Interrupted);
    next(&mut streams).await;
    stop.signal_all(nix::sys::signal::Signal::SIGKILL);
    std::process::exit(exit_code::INTERRUPTED.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;
    use clap::Parser;

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

    async fn whole_org(aws: Arc<FakeAws>) -> (anyhow::Result<u8>, serde_json::Value) {
        let cli =
            Cli::try_parse_from(["cove", "-q", "--region", "eu-west-1", "--", "true"]).unwrap();
        let config = Config::from_cli(cli).unwrap();
        let mut out = Vec::new();
        let code = execute(
            &config,
            &config.regions.clone(),
            aws,
            Arc::new(Stop::default()),
            &mut out,
            false,
        )
        .await;
        let doc = serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null);
        (code, doc)
    }

    #[tokio::test]
    async fn the_whole_organization_runs_while_it_is_listed() {
        let aws = org(None);
        let (code, doc) = whole_org(aws.clone()).await;
        assert_eq!(code.unwrap(), exit_code::SUCCESS);
        assert_eq!(doc["Results"].as_array().unwrap().len(), 5);
        assert_eq!(aws.assume_calls(), 5);
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
