//! A listed run's targets: every account is resolved before any runs. [`choose`] takes the
//! accounts `--target` and `--ignore` (or a rerun's file) select, then the tag filters and the
//! shard, and says what was left out. With `--region all`, [`discover`] asks each account for
//! its enabled regions; an account that could not be asked becomes its record, and so does one
//! that lacks a variable or tag of the command (before its role is assumed to ask it).

use std::sync::Arc;

use anyhow::bail;

use crate::aws::{Account, Aws, Caller};
use crate::config::Config;
use crate::ids::OrgId;
use crate::output::Record;
use crate::plan::{self, Target};
use crate::progress;
use crate::regions::ALL_ENABLED_LABEL;
use crate::resolver::{self, Rules, Selection};
use crate::runner::{self, Shared};
use crate::stop::StopReason;

/// The accounts chosen for a listed run, and what was left out.
pub struct Chosen {
    pub accounts: Vec<Account>,
    pub via: std::collections::BTreeMap<String, Vec<String>>,
    pub skipped: u64,
}

/// Resolves, filters and shards the accounts. Only a shard may come out empty.
pub async fn choose<A: Aws>(
    aws: &A,
    config: &Config,
    rules: Rules<'_>,
    (portal, caller): (bool, &Caller),
    vars: &crate::target_vars::TargetVars,
) -> anyhow::Result<Chosen> {
    let s = &config.selection;
    if let Some(plan) = &s.plan {
        let accounts = crate::plan_file::choose(plan, s.shard, caller, config.output.quiet)?;
        return Ok(Chosen {
            accounts,
            via: Default::default(),
            skipped: 0,
        });
    }
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
        rules,
        lenient: s.rerun.is_some(),
        portal,
    };
    let mut resolution = resolver::resolve(aws, selection, caller).await?;
    let seen = |id: &str, tags: &[(String, String)]| vars.known_tags(id, tags);
    let (accounts, left_out) = s.filters.apply_tags(aws, resolution.accounts, seen).await?;
    resolution.tally.filtered_later(left_out);
    let mut notes = resolution.notes;
    notes.extend(resolution.tally.notes(!s.filters.is_empty()));
    let mut accounts = match s.shard {
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
    if config.vars.needs_parents() {
        // After the selection, so that it costs one walk (or, for accounts named by ID, one
        // ListParents chain each).
        let by_id =
            s.rerun.is_none() && !s.targets.is_empty() && !s.targets.iter().any(OrgId::is_parent);
        notes.extend(crate::tree::place(aws, &mut accounts, by_id).await?);
    }
    for note in &notes {
        progress::note(config.output.quiet, note);
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

/// `--region all`: each account's enabled regions become its targets (the targets labelled
/// `all`; an account whose config entry names its regions keeps them, unasked). Accounts that
/// could not be asked come back as records, as do all accounts when the run is interrupted.
pub async fn discover<A: Aws>(
    shared: &Shared<A>,
    targets: Vec<Target>,
    config: &Config,
    workers: usize,
) -> (Vec<Target>, Vec<Record>) {
    let (targets, lacking) = split_lacking(shared, targets).await;
    let (targets, named): (Vec<Target>, Vec<Target>) = targets
        .into_iter()
        .partition(|(_, region)| region == ALL_ENABLED_LABEL);
    let accounts: Vec<Account> = targets.iter().map(|(a, _)| (**a).clone()).collect();
    let regions = &config.regions;
    let discovery = plan::discover_regions(&shared.creds, accounts, regions, workers);
    let found = tokio::select! {
        found = discovery => found,
        _ = shared.stop.cancelled() => {
            // Interrupted while asking accounts for their regions: each account is
            // reported once, as cancelled.
            let reason = shared.stop.reason().unwrap_or(StopReason::Interrupted);
            let mut records = lacking;
            records.extend(
                targets
                    .iter()
                    .chain(&named)
                    .map(|(account, region)| runner::cancelled(account, region, shared, reason)),
            );
            return (Vec::new(), records);
        }
    };
    let (mut found, failed) = found;
    for (account, _) in &found {
        shared.creds.add_uses(&account.id, 1);
    }
    note_regionless(&targets, &found, &failed, shared, config.output.quiet);
    if config.run.fail_fast && !failed.is_empty() {
        shared.stop.trigger(StopReason::FailFast);
    }
    let mut records = lacking;
    records.extend(
        (failed.into_iter()).map(|(account, failure)| discovery_record(&account, failure, shared)),
    );
    found.extend(named);
    (found, records)
}

/// The accounts that lack a variable or tag the command uses, as their records (no role is
/// assumed for them), and the other targets.
async fn split_lacking<A: Aws>(
    shared: &Shared<A>,
    targets: Vec<Target>,
) -> (Vec<Target>, Vec<Record>) {
    let accounts = targets.iter().map(|(a, _)| &**a);
    let resolved = shared
        .spec
        .vars
        .resolve_all(shared.creds.aws(), accounts, |e| shared.creds.redact(e))
        .await;
    let mut records = Vec::new();
    let kept = targets
        .into_iter()
        .filter(|(account, region)| {
            let problem = resolved.get(&account.id).and_then(|r| r.problem.clone());
            let lacks = problem.is_some();
            records.extend(problem.map(|p| runner::failed_before(account, region, shared, p)));
            !lacks
        })
        .collect();
    (kept, records)
}

/// Accounts whose enabled regions are all excluded have nothing to run: say so, rather than
/// leave them out of the output silently, and drop their credentials.
fn note_regionless<A: Aws>(
    asked: &[Target],
    found: &[Target],
    failed: &[(Arc<Account>, plan::DiscoveryFailure)],
    shared: &Shared<A>,
    quiet: bool,
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
        progress::note(
            quiet,
            &format!(
                "{} account(s) have no enabled region left to run in (after --exclude-region): {}",
                empty.len(),
                empty.join(", ")
            ),
        );
    }
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
