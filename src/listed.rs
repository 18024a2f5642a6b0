//! A listed run's targets: every account is resolved before any runs. [`choose`] takes the
//! accounts `--target` and `--ignore` (or a rerun's file) select, then the tag filters and the
//! shard, and says what was left out.

use anyhow::bail;

use crate::aws::{Account, Aws, Caller};
use crate::config::Config;
use crate::ids::OrgId;
use crate::progress;
use crate::resolver::{self, Rules, Selection};

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
    portal: bool,
    caller: &Caller,
) -> anyhow::Result<Chosen> {
    let s = &config.selection;
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
