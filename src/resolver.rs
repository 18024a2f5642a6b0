//! Decides which accounts are targets: `--target` and `--ignore` over the organization's tree,
//! judged by the one admission policy ([`crate::admission`]). Organizations throttles hard, so
//! every call here is made one at a time.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;

use crate::admission::{Admission, Admit, Tally};
use crate::aws::{Account, Aws, AwsError, Caller};
use crate::filters::Filters;
use crate::ids::OrgId;

/// The accounts to run in, sorted by ID, and what was left out.
#[derive(Debug, Default)]
pub struct Resolution {
    pub accounts: Vec<Account>,
    /// For each account, the `--target` values that brought it in (`organization` when no
    /// `--target` was given).
    pub via: BTreeMap<String, Vec<String>>,
    /// What admission left out: the skipped count and the notes.
    pub tally: Tally,
    /// Notes beyond admission's (accounts of a `--rerun` that left the organization).
    pub notes: Vec<String>,
}

const ORG_PERMISSIONS: &str = "organizations:ListAccounts, organizations:ListOrganizationalUnitsForParent, organizations:ListAccountsForParent and organizations:DescribeAccount";

/// An error listing beneath `parent` (a named target or ignore), as the user should read it:
/// the named parent does not exist, an OU beneath it vanished mid-walk, or the call failed.
pub(crate) fn walk_error(parent: &str, node: &str, e: AwsError) -> anyhow::Error {
    if e.is_not_found() && node == parent {
        anyhow::anyhow!("`{parent}` is not an OU or root of this organization ({e})")
    } else if e.is_not_found() {
        anyhow::anyhow!(
            "OU `{node}` under `{parent}` disappeared while the organization was being listed ({e}); run cove again"
        )
    } else {
        anyhow::anyhow!("could not list the accounts under `{node}`: {e}")
    }
}

/// Every page of a listing.
pub(crate) async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<crate::aws::Page<T>, AwsError>>,
{
    let mut items = Vec::new();
    let mut token = None;
    loop {
        let (mut more, next) = page(token).await?;
        items.append(&mut more);
        match next {
            Some(next) => token = Some(next),
            None => return Ok(items),
        }
    }
}

/// Every account beneath the first node of `start`, at any depth, walking OUs one call at a
/// time, each with its chain: its parent, then `start` (nearest first). OUs deeper than
/// `max_depth` are not walked. A failed call comes back with the node it was made for.
pub(crate) async fn walk_beneath<A: Aws>(
    aws: &A,
    start: Vec<String>,
    max_depth: usize,
) -> Result<Vec<(Account, Vec<String>)>, (String, AwsError)> {
    let mut found = Vec::new();
    let mut stack = vec![start];
    while let Some(chain) = stack.pop() {
        let node = &chain[0];
        let failed = |e| (node.clone(), e);
        let accounts = all_pages(|t| aws.list_child_accounts_page(node, t)).await;
        found.extend(
            accounts
                .map_err(failed)?
                .into_iter()
                .map(|a| (a, chain.clone())),
        );
        let ous = all_pages(|t| aws.list_child_ous_page(node, t)).await;
        for ou in ous.map_err(failed)? {
            if chain.len() < max_depth {
                stack.push(std::iter::once(ou).chain(chain.iter().cloned()).collect());
            }
        }
    }
    Ok(found)
}

/// Every account beneath `parent`, at any depth.
async fn accounts_beneath<A: Aws>(aws: &A, parent: &str) -> anyhow::Result<Vec<Account>> {
    let found = walk_beneath(aws, vec![parent.to_owned()], usize::MAX).await;
    let found = found.map_err(|(node, e)| walk_error(parent, &node, e))?;
    Ok(found.into_iter().map(|(account, _)| account).collect())
}

/// The rules of admission as the user gave them, before ignored OUs are expanded.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub ignores: &'a [OrgId],
    /// `--include-caller`: the calling account is a target like any other.
    pub include_caller: bool,
    pub filters: &'a Filters,
}

/// The admission policy for `rules`, with every ignored OU expanded to its accounts.
pub async fn admission<A: Aws>(
    aws: &A,
    rules: Rules<'_>,
    caller: &Caller,
) -> anyhow::Result<Admission> {
    let mut ignored = BTreeSet::new();
    for ignore in rules.ignores {
        match ignore {
            OrgId::Account(id) => {
                ignored.insert(id.clone());
            }
            parent => ignored.extend(
                accounts_beneath(aws, parent.as_str())
                    .await?
                    .into_iter()
                    .map(|a| a.id),
            ),
        }
    }
    Ok(Admission {
        ignored,
        caller: caller.clone(),
        include_caller: rules.include_caller,
        filters: rules.filters.clone(),
    })
}

/// An account named by ID, as Organizations knows it (`None`: not a member): it must be an
/// ACTIVE member, since anything else is almost always a typo or a stale list.
pub(crate) fn check_named(id: &str, known: Option<&Account>) -> anyhow::Result<()> {
    match known {
        None => bail!(
            "--target {id} is not an account of this organization; expected the ID of an ACTIVE member account"
        ),
        Some(account) if !account.is_active() => bail!(
            "--target {id} is {}, not ACTIVE; only ACTIVE accounts can be targets",
            account.status.as_deref().unwrap_or("in an unknown state")
        ),
        Some(_) => Ok(()),
    }
}

pub(crate) fn no_org_access(denied: &AwsError) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot list the organization: {denied}. Targeting the whole organization, an OU or the root \
         (and ignoring an OU) needs {ORG_PERMISSIONS} (and, with [ous.…] entries in a config file, \
         organizations:ListRoots and organizations:ListParents), from the management account or a delegated \
         administrator account. Without them, pass the accounts by ID: --target 111111111111,222222222222"
    )
}

pub(crate) fn listing_failed(e: AwsError) -> anyhow::Error {
    anyhow::Error::new(e)
        .context("could not list the organization's accounts (organizations:ListAccounts)")
}

pub(crate) fn listed_twice(id: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "Organizations listed account {id} twice; the listing is inconsistent, run cove again"
    )
}

/// What brought an account in when the targets come from the portal (the dry run's `Via`).
pub const PORTAL_VIA: &str = "sso-portal";

/// The note of a `--sso-role` run whose targets come from the portal.
pub(crate) fn from_portal_note(e: &AwsError) -> String {
    format!(
        "{}; running in the accounts the IAM Identity Center portal lists for you (sso:ListAccounts)",
        why_no_organization(e)
    )
}

/// Why a `--sso-role` run cannot list the organization: denied, or no calling identity at all
/// (a profile that names no account of its own is the usual case, and no sign-in is missing).
fn why_no_organization(e: &AwsError) -> String {
    if e.is_no_org_access() {
        format!("the organization cannot be listed ({e})")
    } else {
        tracing::info!(error = %e, "no calling credentials to list the organization with");
        "the profile gives no identity of its own to list the organization with (it names no sso_account_id and sso_role_name, or they cannot be used)".to_owned()
    }
}

/// The organization cannot be listed, and the selection needs it (an OU, the root, an ignored
/// OU). With `--sso-role` and no calling identity, say which identity is missing.
pub(crate) fn cannot_walk(e: &AwsError, portal: bool) -> anyhow::Error {
    if portal && !e.is_no_org_access() {
        anyhow::anyhow!(
            "{}. Targeting an OU or the root, or ignoring an OU, needs {ORG_PERMISSIONS}: give the profile an sso_account_id and sso_role_name that may use them, or pass the accounts by ID",
            why_no_organization(e)
        )
    } else {
        no_org_access(e)
    }
}

pub(crate) fn portal_listing_failed(e: AwsError) -> anyhow::Error {
    anyhow::Error::new(e)
        .context("could not list the accounts of the IAM Identity Center portal (sso:ListAccounts)")
}

/// Every account the IAM Identity Center portal lists for the user, by ID.
async fn list_portal<A: Aws>(aws: &A) -> anyhow::Result<BTreeMap<String, Account>> {
    let accounts = all_pages(|t| aws.portal_accounts_page(t))
        .await
        .map_err(portal_listing_failed)?;
    let mut by_id = BTreeMap::new();
    for account in accounts {
        let id = account.id.clone();
        if by_id.insert(id.clone(), account).is_some() {
            bail!("the IAM Identity Center portal listed account {id} twice; run cove again");
        }
    }
    Ok(by_id)
}

/// The organization's accounts by ID, or the error when the caller may not list them (with
/// `portal`, also when there are no calling credentials at all).
async fn list_organization<A: Aws>(
    aws: &A,
    portal: bool,
) -> anyhow::Result<Result<BTreeMap<String, Account>, AwsError>> {
    let mut by_id = BTreeMap::new();
    let mut token = None;
    loop {
        let (accounts, next) = match aws.list_accounts_page(token).await {
            Ok(page) => page,
            Err(e)
                if by_id.is_empty()
                    && (e.is_no_org_access() || portal && e.cannot_list_organization()) =>
            {
                return Ok(Err(e));
            }
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

/// What the user asked for.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    pub targets: &'a [OrgId],
    pub rules: Rules<'a>,
    /// Explicit accounts that are not ACTIVE members are skipped with a note instead of being
    /// an error (for `--rerun`, where an account may have left since).
    pub lenient: bool,
    /// `--sso-role`: when the organization cannot be listed, the whole-organization target is
    /// the accounts the IAM Identity Center portal lists for the user.
    pub portal: bool,
}

/// The accounts that `selection` names, before admission: the whole organization, explicit
/// accounts (checked for membership when the organization is known) and everything beneath the
/// named OUs.
struct Selected {
    accounts: BTreeMap<String, Account>,
    via: BTreeMap<String, Vec<String>>,
    notes: Vec<String>,
    caller_named: bool,
}

async fn select<A: Aws>(
    aws: &A,
    selection: Selection<'_>,
    caller: &Caller,
    org: Option<&BTreeMap<String, Account>>,
) -> anyhow::Result<Selected> {
    let lookup = |id: &str| -> Account {
        org.and_then(|o| o.get(id).cloned())
            .unwrap_or_else(|| Account::bare(id))
    };
    let mut selected = Selected {
        accounts: BTreeMap::new(),
        via: BTreeMap::new(),
        notes: Vec::new(),
        caller_named: false,
    };
    if selection.targets.is_empty()
        && let Some(org) = org
    {
        for (id, account) in org {
            selected.accounts.insert(id.clone(), account.clone());
            selected
                .via
                .insert(id.clone(), vec!["organization".to_owned()]);
        }
    }
    for target in selection.targets {
        match target {
            OrgId::Account(id) => {
                if *id == caller.account && !selection.rules.include_caller {
                    selected.caller_named = true;
                    continue;
                }
                if let Some(org) = org {
                    match org.get(id) {
                        None if selection.lenient => {
                            selected.notes.push(format!(
                                "skipping {id}: it is no longer an account of this organization"
                            ));
                            continue;
                        }
                        known if !selection.lenient => check_named(id, known)?,
                        _ => {}
                    }
                }
                selected.accounts.insert(id.clone(), lookup(id));
                selected.via.entry(id.clone()).or_default().push(id.clone());
            }
            parent => {
                for beneath in accounts_beneath(aws, parent.as_str()).await? {
                    let known = org.and_then(|o| o.get(&beneath.id).cloned());
                    let account = known.unwrap_or(beneath);
                    selected
                        .via
                        .entry(account.id.clone())
                        .or_default()
                        .push(parent.to_string());
                    selected.accounts.insert(account.id.clone(), account);
                }
            }
        }
    }
    Ok(selected)
}

/// Resolves the target accounts for a selection as seen by `caller`.
pub async fn resolve<A: Aws>(
    aws: &A,
    selection: Selection<'_>,
    caller: &Caller,
) -> anyhow::Result<Resolution> {
    let rules = selection.rules;
    let needs_tree = selection.targets.is_empty()
        || selection.targets.iter().any(OrgId::is_parent)
        || rules.ignores.iter().any(OrgId::is_parent);
    let walks_ous = selection.targets.iter().any(OrgId::is_parent)
        || rules.ignores.iter().any(OrgId::is_parent);
    let mut notes = Vec::new();
    let mut from_portal = false;
    let org = match list_organization(aws, selection.portal).await? {
        Ok(org) => Some(org),
        Err(e) if selection.portal && selection.targets.is_empty() && !walks_ous => {
            notes.push(from_portal_note(&e));
            from_portal = true;
            Some(list_portal(aws).await?)
        }
        Err(e) if needs_tree => return Err(cannot_walk(&e, selection.portal)),
        Err(_) => None,
    };
    // With --sso-role the portal still names the accounts (below), so the filters apply.
    if org.is_none()
        && !selection.portal
        && (rules.filters.name.is_some() || rules.filters.email.is_some())
    {
        bail!(
            "--filter-name and --filter-email need account names and emails from organizations:ListAccounts, which this caller may not use"
        );
    }
    let mut selected = select(aws, selection, caller, org.as_ref()).await?;
    notes.append(&mut selected.notes);
    if org.is_none() && selection.portal {
        // Named by ID without organization access: the portal still knows their names. They
        // are only names: if the portal cannot be listed, the accounts run without them.
        match list_portal(aws).await {
            Ok(known) => {
                for account in selected.accounts.values_mut() {
                    if let Some(listed) = known.get(&account.id) {
                        account.name.clone_from(&listed.name);
                        account.email.clone_from(&listed.email);
                    }
                }
            }
            Err(e) => tracing::warn!("the accounts named by ID run without names: {e:#}"),
        }
    }
    if from_portal {
        // The dry run says where each account came from: the portal, not the organization.
        for via in selected.via.values_mut() {
            *via = vec![PORTAL_VIA.to_owned()];
        }
    }
    let admission = admission(aws, rules, caller).await?;
    let mut tally = Tally::default();
    if selected.caller_named {
        tally.caller_named(caller);
    }
    let mut accounts = Vec::new();
    for account in selected.accounts.into_values() {
        let verdict = admission.admit(&account);
        tally.count(&account, verdict);
        if verdict == Admit::Run {
            accounts.push(account);
        }
    }
    let kept: BTreeSet<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    let mut via = selected.via;
    via.retain(|id, _| kept.contains(id.as_str()));
    Ok(Resolution {
        accounts,
        via,
        tally,
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

    static NO_FILTERS: Filters = Filters {
        name: None,
        email: None,
        tags: Vec::new(),
    };

    fn selection<'a>(targets: &'a [OrgId], include_caller: bool, lenient: bool) -> Selection<'a> {
        Selection {
            targets,
            rules: Rules {
                ignores: &[],
                include_caller,
                filters: &NO_FILTERS,
            },
            lenient,
            portal: false,
        }
    }

    fn ids(r: &Resolution) -> Vec<&str> {
        r.accounts.iter().map(|a| a.id.as_str()).collect()
    }

    #[tokio::test]
    async fn pending_closure_counts_as_not_active() {
        let r = resolve(&org(), selection(&[], false, false), &caller())
            .await
            .unwrap();
        assert_eq!(ids(&r), ["111111111111", "333333333333"]);
        assert!(
            r.tally
                .notes(false)
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
        let r = resolve(&org(), selection(&targets, true, true), &caller())
            .await
            .unwrap();
        assert_eq!(ids(&r), ["000000000000"]);
        assert!(r.notes.iter().any(|n| n.contains("999999999999")));
        assert!(
            r.tally
                .notes(false)
                .iter()
                .any(|n| n.contains("222222222222 (PENDING_CLOSURE)"))
        );
    }

    #[tokio::test]
    async fn an_account_listed_twice_is_a_clear_error() {
        let mut aws = org();
        aws.accounts
            .push(FakeAws::account("111111111111", "a", "ACTIVE"));
        let err = resolve(&aws, selection(&[], false, false), &caller())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("listed account 111111111111 twice"));
    }

    #[tokio::test]
    async fn an_ou_that_disappears_while_listing_is_a_clear_error() {
        let target = OrgId::Ou("ou-root-aaaaaaaa".into());
        let targets = [target];
        let err = resolve(&org(), selection(&targets, false, false), &caller())
            .await
            .unwrap_err();
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
        let r = resolve(&aws, selection(&targets, false, false), &caller())
            .await
            .unwrap();
        assert_eq!(r.accounts, [Account::bare("444444444444")]);
    }
}
