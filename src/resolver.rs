//! Decides which accounts are targets: `--target` and `--ignore` over the organization's tree,
//! minus the calling account and accounts that are not ACTIVE. Organizations throttles hard, so
//! every call here is made one at a time.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;

use crate::aws::{Account, Aws, AwsError, Caller};
use crate::ids::OrgId;

/// The accounts to run in, sorted by ID, and the notes the user should see on stderr.
#[derive(Debug, Default)]
pub struct Resolution {
    pub accounts: Vec<Account>,
    /// For each account, the `--target` values that brought it in (`organization` when no
    /// `--target` was given).
    pub via: BTreeMap<String, Vec<String>>,
    /// Accounts that were selected but left out: not ACTIVE, or the calling account.
    pub skipped: u64,
    pub notes: Vec<String>,
}

const ORG_PERMISSIONS: &str = "organizations:ListAccounts, organizations:ListOrganizationalUnitsForParent and organizations:ListAccountsForParent";

/// Every account ID beneath `parent`, at any depth, walking OUs one call at a time.
async fn accounts_beneath<A: Aws>(aws: &A, parent: &str) -> anyhow::Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    let mut stack = vec![parent.to_owned()];
    while let Some(node) = stack.pop() {
        let not_found = |e: AwsError| -> anyhow::Error {
            if e.is_parent_not_found() && node == parent {
                anyhow::anyhow!("`{parent}` is not an OU or root of this organization ({e})")
            } else if e.is_parent_not_found() {
                anyhow::anyhow!(
                    "OU `{node}` under `{parent}` disappeared while the organization was being listed ({e}); run cove again"
                )
            } else {
                anyhow::anyhow!("could not list the accounts under `{node}`: {e}")
            }
        };
        found.extend(aws.list_child_accounts(&node).await.map_err(not_found)?);
        stack.extend(aws.list_child_ous(&node).await.map_err(not_found)?);
    }
    Ok(found)
}

fn no_org_access(denied: &AwsError) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot list the organization: {denied}. Targeting the whole organization, an OU or the root \
         (and ignoring an OU) needs {ORG_PERMISSIONS}, from the management account or a delegated \
         administrator account. Without them, pass the accounts by ID: --target 111111111111,222222222222"
    )
}

fn listing_failed(e: AwsError) -> anyhow::Error {
    anyhow::Error::new(e)
        .context("could not list the organization's accounts (organizations:ListAccounts)")
}

fn listed_twice(id: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "Organizations listed account {id} twice; the listing is inconsistent, run cove again"
    )
}

/// The organization's accounts by ID, or `None` when the caller may not list them.
async fn list_organization<A: Aws>(
    aws: &A,
) -> anyhow::Result<Result<BTreeMap<String, Account>, AwsError>> {
    let mut by_id = BTreeMap::new();
    let mut token = None;
    loop {
        let (accounts, next) = match aws.list_accounts_page(token).await {
            Ok(page) => page,
            Err(e) if by_id.is_empty() && e.is_no_org_access() => return Ok(Err(e)),
            Err(e) => return Err(listing_failed(e)),
        };
        for account in accounts {
            let id = account.id.clone();
            if by_id.insert(id.clone(), account).is_some() {
                return Err(listed_twice(&id));
            }
        }
        match next {
            Some(next) => token = Some(next),
            None => return Ok(Ok(by_id)),
        }
    }
}

fn inactive_note(inactive: &[String]) -> String {
    let (s, verb) = if inactive.len() == 1 {
        ("", "is")
    } else {
        ("s", "are")
    };
    format!(
        "skipping {} account{s} that {verb} not ACTIVE: {}",
        inactive.len(),
        inactive.join(", ")
    )
}

fn caller_note(caller: &Caller) -> String {
    format!(
        "leaving out the calling account {}: cove never targets the account it runs from unless --include-caller is given",
        caller.account
    )
}

/// What streaming the whole organization found, besides the accounts it sent.
#[derive(Debug, Default)]
pub struct StreamSummary {
    pub sent: u64,
    pub skipped: u64,
    pub notes: Vec<String>,
}

/// The whole organization (no `--target`), sent account by account as `ListAccounts` pages
/// arrive, so the first roles are assumed while the rest is still being listed. The same rules
/// apply as in [`resolve`]: ignores win, the caller is left out, accounts that are not ACTIVE
/// are skipped, and the name and email filters apply. Stops listing when `stopped` says so, or
/// when the receiver is gone.
pub async fn stream_organization<A: Aws>(
    aws: &A,
    ignores: &[OrgId],
    include_caller: bool,
    caller: &Caller,
    filters: &crate::filters::Filters,
    stopped: impl Fn() -> bool,
    tx: tokio::sync::mpsc::Sender<Account>,
) -> anyhow::Result<StreamSummary> {
    let mut ignored = BTreeSet::new();
    for ignore in ignores {
        match ignore {
            OrgId::Account(id) => {
                ignored.insert(id.clone());
            }
            parent => ignored.extend(accounts_beneath(aws, parent.as_str()).await?),
        }
    }
    let mut summary = StreamSummary::default();
    let mut seen = BTreeSet::new();
    let mut inactive = Vec::new();
    let (mut listed, mut filtered_out) = (0u64, 0u64);
    let mut caller_seen = false;
    let mut token = None;
    loop {
        let (accounts, next) = match aws.list_accounts_page(token).await {
            Ok(page) => page,
            Err(e) if seen.is_empty() && e.is_no_org_access() => return Err(no_org_access(&e)),
            Err(e) => return Err(listing_failed(e)),
        };
        for account in accounts {
            if !seen.insert(account.id.clone()) {
                return Err(listed_twice(&account.id));
            }
            if account.id == caller.account && !include_caller {
                caller_seen = true;
                continue;
            }
            if ignored.contains(&account.id) {
                continue;
            }
            if !account.is_active() {
                inactive.push(describe(&account));
                continue;
            }
            listed += 1;
            if !filters.matches_text(&account) {
                filtered_out += 1;
                continue;
            }
            summary.sent += 1;
            if tx.send(account).await.is_err() {
                return Ok(summary);
            }
        }
        match next {
            Some(next) if !stopped() => token = Some(next),
            Some(_) => {
                summary
                    .notes
                    .push("the run was stopped before the organization was fully listed".into());
                break;
            }
            None => break,
        }
    }
    if caller_seen {
        summary.skipped += 1;
        summary.notes.push(caller_note(caller));
    }
    summary.skipped += inactive.len() as u64;
    if !inactive.is_empty() {
        summary.notes.push(inactive_note(&inactive));
    }
    if !filters.is_empty() {
        summary.notes.push(format!(
            "filters kept {} of {} accounts",
            listed - filtered_out,
            listed
        ));
    }
    Ok(summary)
}

fn describe(account: &Account) -> String {
    format!(
        "{} ({})",
        account.id,
        account.status.as_deref().unwrap_or("unknown state")
    )
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    pub targets: &'a [OrgId],
    pub ignores: &'a [OrgId],
    /// `--include-caller`: the calling account is a target like any other.
    pub include_caller: bool,
    /// Explicit accounts that are not ACTIVE members are skipped with a note instead of being
    /// an error (for `--rerun`, where an account may have left since).
    pub lenient: bool,
}

/// Resolves the target accounts for a selection as seen by `caller`.
pub async fn resolve<A: Aws>(
    aws: &A,
    selection: Selection<'_>,
    caller: &Caller,
) -> anyhow::Result<Resolution> {
    let Selection {
        targets,
        ignores,
        include_caller,
        lenient,
    } = selection;
    let needs_tree = targets.is_empty()
        || targets.iter().any(OrgId::is_parent)
        || ignores.iter().any(OrgId::is_parent);
    let org = match list_organization(aws).await? {
        Ok(org) => Some(org),
        Err(denied) if needs_tree => return Err(no_org_access(&denied)),
        Err(_) => None,
    };
    let mut notes = Vec::new();
    let lookup = |id: &str| -> Account {
        org.as_ref()
            .and_then(|o| o.get(id).cloned())
            .unwrap_or_else(|| Account::bare(id))
    };

    // Selected accounts; explicit ones are checked for membership below.
    let mut selected: BTreeMap<String, Account> = BTreeMap::new();
    let mut via: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if targets.is_empty()
        && let Some(org) = &org
    {
        selected.extend(org.iter().map(|(id, a)| (id.clone(), a.clone())));
        via.extend(
            org.keys()
                .map(|id| (id.clone(), vec!["organization".to_owned()])),
        );
    }
    for target in targets {
        match target {
            OrgId::Account(id) => {
                if *id == caller.account && !include_caller {
                    continue;
                }
                if let Some(org) = &org {
                    match org.get(id) {
                        None if lenient => {
                            notes.push(format!(
                                "skipping {id}: it is no longer an account of this organization"
                            ));
                            continue;
                        }
                        Some(account) if lenient && !account.is_active() => {
                            selected.insert(id.clone(), account.clone());
                            continue;
                        }
                        None => bail!(
                            "--target {id} is not an account of this organization; expected the ID of an ACTIVE member account"
                        ),
                        Some(account) if !account.is_active() => bail!(
                            "--target {id} is {}, not ACTIVE; only ACTIVE accounts can be targets",
                            account.status.as_deref().unwrap_or("in an unknown state")
                        ),
                        Some(_) => {}
                    }
                }
                selected.insert(id.clone(), lookup(id));
                via.entry(id.clone()).or_default().push(id.clone());
            }
            parent => {
                for id in accounts_beneath(aws, parent.as_str()).await? {
                    let account = lookup(&id);
                    via.entry(id.clone()).or_default().push(parent.to_string());
                    selected.insert(id, account);
                }
            }
        }
    }

    let mut ignored = BTreeSet::new();
    for ignore in ignores {
        match ignore {
            OrgId::Account(id) => {
                ignored.insert(id.clone());
            }
            parent => ignored.extend(accounts_beneath(aws, parent.as_str()).await?),
        }
    }
    selected.retain(|id, _| !ignored.contains(id));

    let mut skipped = 0;
    if !include_caller
        && (selected.remove(&caller.account).is_some()
            || targets.contains(&OrgId::Account(caller.account.clone())))
    {
        skipped += 1;
        notes.push(caller_note(caller));
    }

    let inactive: Vec<String> = selected
        .values()
        .filter(|a| org.is_some() && !a.is_active())
        .map(describe)
        .collect();
    skipped += inactive.len() as u64;
    if !inactive.is_empty() {
        notes.push(inactive_note(&inactive));
        selected.retain(|_, a| a.is_active());
    }

    via.retain(|id, _| selected.contains_key(id));
    Ok(Resolution {
        accounts: selected.into_values().collect(),
        via,
        skipped,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;

    fn caller() -> Caller {
        Caller {
            account: "000000000000".into(),
            arn: "arn:aws:iam::000000000000:user/t".into(),
        }
    }

    fn org() -> FakeAws {
        FakeAws {
            caller: "000000000000".into(),
            accounts: vec![
                FakeAws::account("000000000000", "mgmt", "ACTIVE"),
                FakeAws::account("111111111111", "a", "ACTIVE"),
                FakeAws::account("222222222222", "b", "PENDING_CLOSURE"),
                FakeAws::account("333333333333", "c", "ACTIVE"),
            ],
            tree: [
                (
                    "r-root".to_owned(),
                    (
                        vec!["ou-root-aaaaaaaa".to_owned()],
                        vec!["000000000000".to_owned()],
                    ),
                ),
                (
                    "ou-root-aaaaaaaa".to_owned(),
                    (
                        vec!["ou-root-gone0000".to_owned()],
                        vec!["111111111111".to_owned(), "222222222222".to_owned()],
                    ),
                ),
            ]
            .into(),
            ..FakeAws::default()
        }
    }

    fn ids(r: &Resolution) -> Vec<&str> {
        r.accounts.iter().map(|a| a.id.as_str()).collect()
    }

    #[tokio::test]
    async fn pending_closure_counts_as_not_active() {
        let r = resolve(&org(), Selection::default(), &caller())
            .await
            .unwrap();
        assert_eq!(ids(&r), ["111111111111", "333333333333"]);
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("222222222222 (PENDING_CLOSURE)"))
        );
    }

    #[tokio::test]
    async fn include_caller_makes_the_caller_a_target_and_lenient_skips_leavers() {
        let targets = [
            OrgId::Account("000000000000".into()),
            OrgId::Account("222222222222".into()),
            OrgId::Account("999999999999".into()),
        ];
        let selection = Selection {
            targets: &targets,
            include_caller: true,
            lenient: true,
            ..Selection::default()
        };
        let r = resolve(&org(), selection, &caller()).await.unwrap();
        assert_eq!(ids(&r), ["000000000000"]);
        assert!(r.notes.iter().any(|n| n.contains("999999999999")));
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("222222222222 (PENDING_CLOSURE)"))
        );
    }

    #[tokio::test]
    async fn an_account_listed_twice_is_a_clear_error() {
        let mut aws = org();
        aws.accounts
            .push(FakeAws::account("111111111111", "a", "ACTIVE"));
        let err = resolve(&aws, Selection::default(), &caller())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("listed account 111111111111 twice"));
    }

    #[tokio::test]
    async fn an_ou_that_disappears_while_listing_is_a_clear_error() {
        let target = OrgId::Ou("ou-root-aaaaaaaa".into());
        let targets = [target];
        let selection = Selection {
            targets: &targets,
            ..Selection::default()
        };
        let err = resolve(&org(), selection, &caller()).await.unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("ou-root-gone0000") && msg.contains("disappeared"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn without_org_access_explicit_accounts_have_no_metadata() {
        let mut aws = org();
        aws.deny_list_accounts = true;
        let target = OrgId::Account("444444444444".into());
        let targets = [target];
        let selection = Selection {
            targets: &targets,
            ..Selection::default()
        };
        let r = resolve(&aws, selection, &caller()).await.unwrap();
        assert_eq!(r.accounts, [Account::bare("444444444444")]);
    }
}
