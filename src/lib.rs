//! cove runs one command in every AWS account and region of an organization, concurrently,
//! and reports every outcome as JSON.
//!
//! The pipeline reads top to bottom in [`run`]: validate the command line ([`config`]), load the
//! AWS configuration, identify the caller, resolve the target accounts ([`resolver`]), run the
//! command in each account × region ([`runner`]) and write the document ([`output`]).

pub mod aws;
pub mod child_env;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod exit_code;
pub mod ids;
pub mod output;
pub mod regions;
pub mod resolver;
pub mod runner;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use aws_config::BehaviorVersion;
use aws_types::region::Region;

use crate::aws::Aws;
use crate::aws::sdk::SdkAws;
use crate::cli::Cli;
use crate::config::Config;
use crate::credentials::CredentialCache;
use crate::output::Document;
use crate::runner::{RunSpec, Stop, StopReason};

/// Runs cove for a parsed command line. Errors mean nothing ran (exit code 2).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::from_cli(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        let stop = Arc::new(Stop::default());
        tokio::spawn(handle_signals(stop.clone()));

        let chain_region = chain_region(config.profile.as_deref()).await;
        let regions = if config.regions.is_empty() {
            match &chain_region {
                Some(region) => vec![region.clone()],
                None => bail!(
                    "no region: pass --region (for example --region us-east-1), or set AWS_REGION or a region in your AWS profile"
                ),
            }
        } else {
            config.regions.clone()
        };
        // STS is called in the caller's own region where it has one (regional endpoint).
        let sts_region = chain_region.unwrap_or_else(|| regions[0].clone());
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(sts_region));
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        let aws = Arc::new(SdkAws::new(&loader.load().await));
        if let Some(note) = config.workers_note() {
            eprintln!("cove: note: {note}");
        }

        let (doc, stopped) = execute(&config, &regions, aws, stop).await?;
        output::write_stdout(&doc).context("could not write the results to stdout")?;
        Ok(exit_code::code(exit_status(&doc, stopped)))
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
pub fn exit_status(doc: &Document, stopped: Option<StopReason>) -> u8 {
    match stopped {
        Some(StopReason::Interrupted) => exit_code::INTERRUPTED,
        _ if doc.all_succeeded() => exit_code::SUCCESS,
        _ => exit_code::TARGET_FAILED,
    }
}

/// Everything after configuration: identify, resolve, run. Generic over [`Aws`] so tests can
/// drive it with a fake.
pub async fn execute<A: Aws>(
    config: &Config,
    regions: &[String],
    aws: Arc<A>,
    stop: Arc<Stop>,
) -> anyhow::Result<(Document, Option<StopReason>)> {
    let prepare = async {
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
        for region in regions {
            if let Some(p) = regions::partition_of(region)
                && p != partition
            {
                bail!(
                    "region `{region}` is in partition `{p}`, but the credentials belong to partition `{partition}`"
                );
            }
        }
        let resolution =
            resolver::resolve(aws.as_ref(), &config.targets, &config.ignores, &caller).await?;
        for note in &resolution.notes {
            eprintln!("cove: note: {note}");
        }
        if resolution.accounts.is_empty() {
            bail!(
                "no eligible targets: after --target, --ignore, the calling account and accounts that are not ACTIVE, nothing is left to run in"
            );
        }
        Ok((partition, resolution.accounts))
    };
    let (partition, accounts) = tokio::select! {
        prepared = prepare => prepared?,
        _ = stop.cancelled() => return Ok((Document::default(), stop.reason())),
    };

    let cache = Arc::new(
        CredentialCache::new(
            aws,
            config.role.clone(),
            &partition,
            accounts.iter().map(|a| a.id.as_str()),
        )
        .with_rate_limit(config.max_assume_rate),
    );
    let spec = Arc::new(RunSpec {
        command: config.command.clone(),
        workers: config.workers,
        fail_fast: config.fail_fast,
        partition,
        max_output_bytes: config.max_output_bytes,
        timeout: config.timeout,
    });
    let records = runner::run_all(cache, accounts, regions, spec, stop.clone()).await;
    Ok((Document::new(records), stop.reason()))
}

/// First SIGINT/SIGTERM: start nothing new, stop the children, report. Second: kill the
/// children and exit at once.
async fn handle_signals(stop: Arc<Stop>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("cove: warning: cannot listen for Ctrl-C; an interrupt will not be reported");
        return;
    };
    let next = async |int: &mut tokio::signal::unix::Signal,
                      term: &mut tokio::signal::unix::Signal| {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
    };
    next(&mut int, &mut term).await;
    eprintln!(
        "cove: interrupted: stopping the running commands and reporting what finished (interrupt again to exit at once)"
    );
    stop.trigger(StopReason::Interrupted);
    next(&mut int, &mut term).await;
    stop.signal_all(nix::sys::signal::Signal::SIGKILL);
    std::process::exit(exit_code::INTERRUPTED.into());
}
