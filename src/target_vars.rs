//! A target's variables and tags, found before its credentials are fetched: the merged
//! variables of the config files for its account (`vars::VarsConfig::for_account`, with the
//! account's parents when the listing knows them), and, only when the command holds a
//! `{tag.KEY}` placeholder, the account's Organizations tags: one `ListTagsForResource` per
//! account however many regions it runs in, at most [`filters::TAG_CONCURRENCY`] at once
//! across the run, with the SDK's retries, as `--filter-tag` reads them.
//!
//! A variable or tag the command uses that the target lacks, or tags that could not be read,
//! fail the target before its role is assumed: its command never runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{OnceCell, Semaphore};

use crate::aws::{Account, Aws, AwsError};
use crate::filters;
use crate::template::Uses;
use crate::untrusted::terminal;
use crate::vars::VarsConfig;

/// The `Missing` entry of a target whose place in the organization is unknown while the config
/// has `[ous."…"]` entries.
pub const UNKNOWN_PLACE: &str = "parents";

/// An account's tags the command uses, or why they could not be read.
type Tags = Result<BTreeMap<String, String>, String>;

/// The variables and tags of every target of a run, shared by its targets.
#[derive(Debug)]
pub struct TargetVars {
    config: Arc<VarsConfig>,
    uses: Uses,
    /// Each account's tags, read once for all its regions.
    tags: Mutex<HashMap<String, Arc<OnceCell<Tags>>>>,
    calls: Semaphore,
}

impl Default for TargetVars {
    fn default() -> Self {
        TargetVars::new(Arc::default(), Uses::default())
    }
}

/// One target's variables and the tags its command uses, and what it lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Every variable of the target (the child's `COVE_VAR_NAME`), not only those the command uses.
    pub vars: BTreeMap<String, String>,
    /// The tags the command uses that the account carries.
    pub tags: BTreeMap<String, String>,
    /// What the command uses that the target lacks, as `var.NAME` and `tag.KEY`.
    pub missing: Vec<String>,
    /// Why the target cannot run (its `ExceptionDetails`), when something is missing.
    pub problem: Option<String>,
}

impl TargetVars {
    pub fn new(config: Arc<VarsConfig>, uses: Uses) -> Self {
        TargetVars {
            config,
            uses,
            tags: Mutex::default(),
            calls: Semaphore::new(filters::TAG_CONCURRENCY),
        }
    }

    /// Whether the command reads tags (`{tag.KEY}`).
    pub fn reads_tags(&self) -> bool {
        !self.uses.tags.is_empty()
    }

    /// The account's variables and tags; `redact` cleans an AWS error before it is quoted.
    pub async fn resolve<A: Aws>(
        &self,
        aws: &A,
        account: &Account,
        redact: impl Fn(AwsError) -> AwsError,
    ) -> Resolved {
        let id = &account.id;
        let mut r = Resolved {
            vars: self.config.for_account(id, account.parents.as_deref()),
            ..Resolved::default()
        };
        let mut problems = Vec::new();
        // With [ous] entries, an account whose place is unknown (the tree could not be read)
        // might lack an OU's variables or regions: it never runs with what may be the wrong ones.
        if self.config.needs_parents() && account.parents.is_none() {
            r.missing.push(UNKNOWN_PLACE.to_owned());
            problems.push(format!(
                "where account {id} sits in the organization is unknown, so the [ous.\"…\"] entries of the config that may cover it (their variables and regions) are unknown"
            ));
        }
        for name in self.uses.vars.iter().filter(|n| !r.vars.contains_key(*n)) {
            r.missing.push(format!("var.{name}"));
            problems.push(format!(
                "variable `{name}` is not defined for account {id} (define it in [vars], [ous.\"…\"] or [accounts.\"{id}\"])"
            ));
        }
        if self.reads_tags() {
            match self.tags_of(aws, id, redact).await {
                Ok(tags) => {
                    for key in &self.uses.tags {
                        match tags.get(key) {
                            Some(value) => {
                                r.tags.insert(key.clone(), value.clone());
                            }
                            None => {
                                r.missing.push(format!("tag.{key}"));
                                problems.push(format!(
                                    "tag `{}` is not set on account {id}",
                                    terminal(key)
                                ));
                            }
                        }
                    }
                }
                Err(why) => {
                    r.missing
                        .extend(self.uses.tags.iter().map(|key| format!("tag.{key}")));
                    problems.push(why);
                }
            }
        }
        if !problems.is_empty() {
            r.problem = Some(format!("{}; the command did not run", problems.join("; ")));
        }
        r
    }

    /// Every account's variables and tags, by account ID (for `--dry-run`, and `--region all`
    /// before discovery), the tags read [`filters::TAG_CONCURRENCY`] at a time; `redact`
    /// cleans an AWS error before it is quoted.
    pub async fn resolve_all<'a, A: Aws>(
        &self,
        aws: &A,
        accounts: impl Iterator<Item = &'a Account>,
        redact: impl Fn(AwsError) -> AwsError,
    ) -> HashMap<String, Resolved> {
        use futures::StreamExt;
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<&Account> = accounts.filter(|a| seen.insert(a.id.clone())).collect();
        let redact = &redact;
        futures::stream::iter(unique)
            .map(|account| async move {
                (account.id.clone(), self.resolve(aws, account, redact).await)
            })
            .buffer_unordered(filters::TAG_CONCURRENCY)
            .collect()
            .await
    }

    /// An account's tags, already read (by `--filter-tag`): kept, so that `{tag.KEY}` does not
    /// read them again.
    pub fn known_tags(&self, account_id: &str, pairs: &[(String, String)]) {
        if !self.reads_tags() {
            return;
        }
        let tags: BTreeMap<String, String> = pairs
            .iter()
            .filter(|(key, _)| self.uses.tags.contains(key))
            .cloned()
            .collect();
        let mut cells = self.tags.lock().unwrap_or_else(|e| e.into_inner());
        // A cell already set (or being set) keeps what it has: the same account's tags.
        let _ = cells
            .entry(account_id.to_owned())
            .or_default()
            .set(Ok(tags));
    }

    /// The account's tags the command uses, read once (later callers wait for the first).
    async fn tags_of<A: Aws>(
        &self,
        aws: &A,
        account_id: &str,
        redact: impl Fn(AwsError) -> AwsError,
    ) -> Tags {
        let cell = {
            let mut tags = self.tags.lock().unwrap_or_else(|e| e.into_inner());
            tags.entry(account_id.to_owned()).or_default().clone()
        };
        cell.get_or_init(|| async {
            // The semaphore is never closed.
            let _permit = self.calls.acquire().await.ok();
            match aws.list_account_tags(account_id).await {
                Ok(pairs) => Ok(pairs
                    .into_iter()
                    .filter(|(key, _)| self.uses.tags.contains(key))
                    .collect()),
                Err(err) => Err(format!(
                    "could not read the tags of account {account_id}: {}",
                    terminal(&redact(err).to_string())
                )),
            }
        })
        .await
        .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;
    use crate::config_file::Place;
    use crate::vars::{Entry, Value};
    use std::sync::atomic::Ordering;

    fn value(v: &str) -> Value {
        Value {
            value: v.to_owned(),
            place: Place {
                path: "cove.toml".into(),
                line: 1,
                group: None,
            },
        }
    }

    fn target_vars(vars: &[&str], tags: &[&str]) -> TargetVars {
        let config = VarsConfig {
            defaults: [("team".to_owned(), value("core"))].into(),
            ous: Default::default(),
            accounts: [(
                "111111111111".to_owned(),
                Entry {
                    vars: [("db".to_owned(), value("main"))].into(),
                    regions: None,
                },
            )]
            .into(),
        };
        let uses = Uses {
            vars: vars.iter().map(|s| (*s).to_owned()).collect(),
            tags: tags.iter().map(|s| (*s).to_owned()).collect(),
        };
        TargetVars::new(Arc::new(config), uses)
    }

    fn aws() -> FakeAws {
        FakeAws {
            tags: [(
                "111111111111".to_owned(),
                vec![("env".to_owned(), "prod".to_owned())],
            )]
            .into(),
            ..FakeAws::default()
        }
    }

    #[tokio::test]
    async fn a_target_gets_its_variables_and_the_tags_it_uses_once_per_account() {
        let (aws, tv) = (aws(), target_vars(&["db"], &["env"]));
        let account = FakeAws::account("111111111111", "a", "ACTIVE");
        for _ in 0..3 {
            let r = tv.resolve(&aws, &account, |e| e).await;
            assert_eq!(r.problem, None);
            assert_eq!(r.vars["team"], "core");
            assert_eq!(r.vars["db"], "main");
            assert_eq!(r.tags["env"], "prod");
        }
        assert_eq!(aws.tag_calls.load(Ordering::SeqCst), 1, "read once");
    }

    #[tokio::test]
    async fn what_a_target_lacks_is_named() {
        let (aws, tv) = (aws(), target_vars(&["db", "team"], &["env"]));
        let other = FakeAws::account("222222222222", "b", "ACTIVE");
        let r = tv.resolve(&aws, &other, |e| e).await;
        assert_eq!(r.missing, ["var.db", "tag.env"]);
        let problem = r.problem.unwrap();
        assert!(problem.contains("variable `db` is not defined for account 222222222222"));
        assert!(problem.contains("[accounts.\"222222222222\"]"), "{problem}");
        assert!(problem.contains("tag `env` is not set on account 222222222222"));
    }

    #[tokio::test]
    async fn an_error_reading_tags_is_redacted_for_every_account_at_once_too() {
        let aws = FakeAws {
            tags_error: Some("failed for external ID s3cr3t".to_owned()),
            ..aws()
        };
        let tv = target_vars(&[], &["env"]);
        let accounts = [FakeAws::account("111111111111", "a", "ACTIVE")];
        let redact = |mut e: AwsError| {
            e.message = e.message.replace("s3cr3t", "<redacted>");
            e
        };
        let all = tv.resolve_all(&aws, accounts.iter(), redact).await;
        let problem = all["111111111111"].problem.clone().unwrap();
        assert!(
            problem.contains("<redacted>") && !problem.contains("s3cr3t"),
            "{problem}"
        );
    }

    #[tokio::test]
    async fn no_tag_is_read_when_the_command_uses_none() {
        let (aws, tv) = (aws(), target_vars(&["team"], &[]));
        let account = FakeAws::account("111111111111", "a", "ACTIVE");
        let r = tv.resolve(&aws, &account, |e| e).await;
        assert_eq!((r.problem, r.missing.len()), (None, 0));
        assert_eq!(aws.tag_calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn with_ou_entries_an_account_whose_place_is_unknown_never_runs() {
        let mut tv = target_vars(&[], &[]);
        let mut config = (*tv.config).clone();
        config.ous.insert(
            "ou-ab12-cdef3456".to_owned(),
            Entry {
                vars: [("team".to_owned(), value("payments"))].into(),
                regions: None,
            },
        );
        tv.config = Arc::new(config);
        let aws = aws();
        let mut account = FakeAws::account("111111111111", "a", "ACTIVE");
        let r = tv.resolve(&aws, &account, |e| e).await;
        assert_eq!(r.missing, [UNKNOWN_PLACE]);
        let problem = r.problem.unwrap();
        assert!(
            problem.contains("where account 111111111111 sits"),
            "{problem}"
        );
        account.parents = Some(vec!["r-abcd".to_owned()]);
        let r = tv.resolve(&aws, &account, |e| e).await;
        assert_eq!((r.problem, r.vars["team"].as_str()), (None, "core"));
    }
}
