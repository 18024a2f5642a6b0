//! The list of targets a run works through: resolved accounts × regions, or exactly the pairs
//! a previous run failed (`--rerun`), cut down to one shard (`--shard`); and the discovery of
//! each account's enabled regions for `--region all`.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt, stream};

use crate::aws::{Account, Aws, AwsError};
use crate::credentials::{AssumeFailure, CredentialCache, RoleUsed};
use crate::regions::Regions;
use crate::vars::VarsConfig;

/// One target: an account and a region.
pub type Target = (Arc<Account>, String);

/// `--shard K/N`: this machine runs shard K (1-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Parses `K/N` with 1 ≤ K ≤ N.
pub fn parse_shard(value: &str) -> Result<Shard, String> {
    let expected = "expected K/N with 1 <= K <= N, such as 2/4";
    let (k, n) = value
        .split_once('/')
        .ok_or_else(|| format!("`{value}` is not a shard; {expected}"))?;
    match (k.trim().parse::<u32>(), n.trim().parse::<u32>()) {
        (Ok(index), Ok(count)) if index >= 1 && index <= count => Ok(Shard { index, count }),
        _ => Err(format!("`{value}` is not a shard; {expected}")),
    }
}

impl Shard {
    /// Keeps this shard's accounts. Accounts are dealt round-robin in ID order, so every
    /// machine computes the same split from the same accounts, shards differ in size by at
    /// most one, and all regions of an account stay in one shard.
    pub fn keep(&self, mut accounts: Vec<Account>) -> Vec<Account> {
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        accounts
            .into_iter()
            .enumerate()
            .filter(|(i, _)| (*i as u64 % self.count as u64) + 1 == self.index as u64)
            .map(|(_, a)| a)
            .collect()
    }
}

/// The regions each account runs in: the run's (`fixed`), or for an account that a config
/// file's `[accounts."ID"]` or `[ous."ou-…"]` entry with a `region` covers, the entry's
/// (`VarsConfig::regions_for`: the account's own, else the nearest OU's). `--exclude-region`
/// applies to both.
#[derive(Debug, Clone)]
pub struct AccountRegions {
    fixed: Vec<String>,
    regions: Regions,
    /// The config's entries; `None` when their regions do not apply (`--region` or
    /// `COVE_REGIONS` was given).
    entries: Option<Arc<VarsConfig>>,
}

impl AccountRegions {
    pub fn new(fixed: &[String], regions: &Regions, entries: Option<Arc<VarsConfig>>) -> Self {
        AccountRegions {
            fixed: fixed.to_vec(),
            regions: regions.clone(),
            entries,
        }
    }

    /// The same regions for every account.
    pub fn fixed(fixed: &[String], regions: &Regions) -> Self {
        AccountRegions::new(fixed, regions, None)
    }

    /// The regions `account` runs in, in order.
    pub fn of(&self, account: &Account) -> Vec<String> {
        let own = self
            .entries
            .as_ref()
            .and_then(|entries| entries.regions_for(&account.id, account.parents.as_deref()));
        match own {
            Some(own) => self.regions.keep(own.iter().cloned()),
            None => self.fixed.clone(),
        }
    }
}

/// The account × region pairs to run, in account order: every account in its regions
/// ([`AccountRegions`]), or with `rerun` exactly the regions recorded for it that the run's
/// regions still allow.
pub fn targets(
    accounts: Vec<Account>,
    each: &AccountRegions,
    rerun: Option<&BTreeMap<String, Vec<String>>>,
) -> Vec<Target> {
    let mut out = Vec::new();
    for account in accounts {
        let wanted: Vec<String> = match rerun {
            Some(rerun) => rerun
                .get(&account.id)
                .into_iter()
                .flatten()
                .filter(|r| each.regions.reruns(r))
                .cloned()
                .collect(),
            None => each.of(&account),
        };
        let account = Arc::new(account);
        out.extend(wanted.into_iter().map(|r| (account.clone(), r)));
    }
    out
}

/// Why an account's regions could not be discovered for `--region all`.
#[derive(Debug)]
pub enum DiscoveryFailure {
    /// No role could be assumed.
    Assume(Arc<AssumeFailure>),
    /// `role` was assumed, but `account:ListRegions` failed.
    ListRegions(RoleUsed, AwsError),
}

/// How many accounts are asked for their regions at once.
const DISCOVERY_CONCURRENCY: usize = 32;

/// `--region all`: asks each account (with its assumed role, which is cached for the run) which
/// regions it has enabled, once per account, and returns the targets and the failures.
pub async fn discover_regions<A: Aws>(
    cache: &CredentialCache<A>,
    accounts: Vec<Account>,
    regions: &Regions,
    workers: usize,
) -> (Vec<Target>, Vec<(Arc<Account>, DiscoveryFailure)>) {
    type Answer = (Arc<Account>, Result<Vec<String>, DiscoveryFailure>);
    let answers: Vec<Answer> = stream::iter(accounts.into_iter().map(Arc::new))
        .map(|account| async move {
            let regions = match cache.get(&account.id).await {
                Err(e) => Err(DiscoveryFailure::Assume(e)),
                Ok(assumed) => cache
                    .aws()
                    .list_enabled_regions(&assumed.creds)
                    .await
                    .map_err(|e| DiscoveryFailure::ListRegions(assumed.role.clone(), e)),
            };
            (account, regions)
        })
        .buffered(workers.clamp(1, DISCOVERY_CONCURRENCY))
        .collect()
        .await;
    let mut targets = Vec::new();
    let mut failures = Vec::new();
    for (account, answer) in answers {
        match answer {
            Ok(enabled) => targets.extend(
                regions
                    .keep(enabled)
                    .into_iter()
                    .map(|r| (account.clone(), r)),
            ),
            Err(failure) => failures.push((account, failure)),
        }
    }
    (targets, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(n: usize) -> Vec<Account> {
        (0..n).map(|i| Account::bare(&format!("{i:012}"))).collect()
    }

    #[test]
    fn shards_partition_the_accounts_and_balance_within_one() {
        let all = accounts(10);
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        for index in 1..=4 {
            let mut reversed = all.clone();
            reversed.reverse();
            let part = Shard { index, count: 4 }.keep(reversed);
            sizes.push(part.len());
            seen.extend(part.into_iter().map(|a| a.id));
        }
        seen.sort();
        assert_eq!(seen, all.iter().map(|a| a.id.clone()).collect::<Vec<_>>());
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
    }

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!(parse_shard("2/4"), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0"] {
            assert!(parse_shard(bad).unwrap_err().contains(bad));
        }
    }

    #[test]
    fn an_entrys_regions_replace_the_runs_for_the_accounts_it_covers() {
        use crate::config_file::Place;
        use crate::vars::Entry;
        let place = Place {
            path: "cove.toml".into(),
            line: 3,
            group: None,
        };
        let entry = |regions: &[&str]| Entry {
            vars: Default::default(),
            regions: Some((
                regions.iter().map(|r| r.to_string()).collect(),
                place.clone(),
            )),
        };
        let vars = VarsConfig {
            ous: [("ou-prod".to_owned(), entry(&["eu-west-1", "ap-south-1"]))].into(),
            accounts: [("000000000002".to_owned(), entry(&["us-west-2"]))].into(),
            ..Default::default()
        };
        let excluding = Regions::new(
            crate::regions::RegionChoice::Chain,
            vec!["ap-south-1".to_owned()],
        );
        let run = ["us-east-1".to_owned()];
        let each = AccountRegions::new(&run, &excluding, Some(Arc::new(vars)));
        let mut beneath = Account::bare("000000000001");
        beneath.parents = Some(vec!["ou-deep".into(), "ou-prod".into(), "r-root".into()]);
        assert_eq!(
            each.of(&beneath),
            ["eu-west-1"],
            "the OU's, less the excluded"
        );
        let mut own = Account::bare("000000000002");
        own.parents = beneath.parents.clone();
        assert_eq!(
            each.of(&own),
            ["us-west-2"],
            "the account's own over its OU's"
        );
        let mut elsewhere = Account::bare("000000000003");
        elsewhere.parents = Some(vec!["r-root".into()]);
        assert_eq!(each.of(&elsewhere), run, "outside every entry: the run's");
        let typed = AccountRegions::new(&run, &excluding, None);
        assert_eq!(
            typed.of(&beneath),
            run,
            "typed regions turn the entries off"
        );
    }

    #[test]
    fn rerun_runs_exactly_the_recorded_pairs() {
        let rerun: BTreeMap<String, Vec<String>> =
            [("000000000001".to_owned(), vec!["eu-west-1".to_owned()])].into();
        let regions = Regions::new(crate::regions::RegionChoice::Chain, vec![]);
        let pairs = targets(
            accounts(3),
            &AccountRegions::fixed(&[], &regions),
            Some(&rerun),
        );
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].0.id, "000000000001");
        assert_eq!(pairs[0].1, "eu-west-1");
    }
}
