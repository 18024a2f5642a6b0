//! Choosing targets while they are listed, so that the first roles are assumed and the first
//! commands run while Organizations is still answering: the whole organization page by page
//! (`ListAccounts`), or the OU walk of an OU-targeted run (`ListAccountsForParent` and
//! `ListOrganizationalUnitsForParent`, a few calls in flight). Every account is judged by the
//! one admission policy; the notes come at the end of the run.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::bail;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;

use crate::admission::{Admission, Admit, Tally};
use crate::aws::{Account, Aws, AwsError, Page};
use crate::ids::OrgId;
use crate::plan::{AccountRegions, Target};
use crate::resolver::{
    check_named, from_portal_note, listed_twice, listing_failed, no_org_access,
    portal_listing_failed, walk_error,
};
use crate::runner::Shared;
use crate::stop::Stop;
use crate::tree;

/// How many OU-walk calls are in flight at once. Organizations throttles hard; each call
/// backs off through the SDK's retries when it is throttled.
pub const WALK_CONCURRENCY: usize = 3;

/// What a streamed listing found, besides the accounts it sent.
#[derive(Debug, Default)]
pub struct StreamSummary {
    pub sent: u64,
    pub tally: Tally,
    /// The run was stopped before the listing ended.
    pub cut_short: bool,
    /// Notes on where the targets came from (the portal, for `--sso-role`).
    pub early_notes: Vec<String>,
}

impl StreamSummary {
    /// The notes for stderr at the end of the run.
    pub fn notes(&self, filters: bool) -> Vec<String> {
        let mut notes = self.early_notes.clone();
        if self.cut_short {
            notes.push("the run was stopped before the organization was fully listed".into());
        }
        notes.extend(self.tally.notes(filters));
        notes
    }
}

/// Judges each listed account and sends the admitted ones on.
struct Emitter<'a> {
    admission: &'a Admission,
    tx: Sender<Account>,
    seen: HashSet<String>,
    summary: StreamSummary,
    /// Accounts held back until every named parent has answered once (an unknown OU is an
    /// input error, reported before anything runs).
    held: Option<Vec<Account>>,
}

impl<'a> Emitter<'a> {
    fn new(admission: &'a Admission, tx: Sender<Account>) -> Self {
        Emitter {
            admission,
            tx,
            seen: HashSet::new(),
            summary: StreamSummary::default(),
            held: None,
        }
    }

    /// Whether the account is new; an account reached twice is judged once.
    fn first_sight(&mut self, account: &Account) -> bool {
        self.seen.insert(account.id.clone())
    }

    /// Judges one account and sends it when it runs. `false` when the receiver is gone.
    async fn offer(&mut self, account: Account) -> bool {
        let verdict = self.admission.admit(&account);
        self.summary.tally.count(&account, verdict);
        if verdict != Admit::Run {
            return true;
        }
        self.summary.sent += 1;
        match &mut self.held {
            Some(held) => {
                held.push(account);
                true
            }
            None => self.tx.send(account).await.is_ok(),
        }
    }

    /// Sends what was held back. `false` when the receiver is gone.
    async fn release(&mut self) -> bool {
        for account in self.held.take().unwrap_or_default() {
            if self.tx.send(account).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// The whole organization (no `--target`), sent account by account as `ListAccounts` pages
/// arrive. Stops listing when `stopped` says so, or when the receiver is gone. With `portal`
/// (`--sso-role`), an organization that cannot be listed gives way to the accounts the
/// IAM Identity Center portal lists for the user.
pub async fn stream_organization<A: Aws>(
    aws: &A,
    admission: &Admission,
    portal: bool,
    stopped: impl Fn() -> bool,
    tx: Sender<Account>,
) -> anyhow::Result<StreamSummary> {
    let mut emitter = Emitter::new(admission, tx);
    let mut token = None;
    let mut from_portal = false;
    loop {
        let page = if from_portal {
            aws.portal_accounts_page(token).await
        } else {
            aws.list_accounts_page(token).await
        };
        let (accounts, next) = match page {
            Ok(page) => page,
            Err(e) if from_portal => return Err(portal_listing_failed(e)),
            Err(e) if emitter.seen.is_empty() && portal && e.cannot_list_organization() => {
                let note = from_portal_note(&e);
                tracing::info!("{note}");
                emitter.summary.early_notes.push(note);
                from_portal = true;
                token = None;
                continue;
            }
            Err(e) if emitter.seen.is_empty() && e.is_no_org_access() => {
                return Err(no_org_access(&e));
            }
            Err(e) => return Err(listing_failed(e)),
        };
        for account in accounts {
            if !emitter.first_sight(&account) {
                return Err(listed_twice(&account.id));
            }
            if !emitter.offer(account).await {
                return Ok(emitter.summary);
            }
        }
        match next {
            Some(next) if !stopped() => token = Some(next),
            Some(_) => {
                emitter.summary.cut_short = true;
                break;
            }
            None => break,
        }
    }
    Ok(emitter.summary)
}

/// One call of the OU walk: a page of the accounts or of the OUs under `node`, which lies
/// beneath the named target `target`.
#[derive(Debug, Clone)]
struct Job {
    target: String,
    node: String,
    token: Option<String>,
    accounts: bool,
    /// Where `node` sits: itself, then its parents up to the root (the parents of the
    /// accounts directly under it). `None` when no `[ous.…]` entry needs it.
    chain: Option<Arc<Vec<String>>>,
}

impl Job {
    /// The first calls under `node`: its accounts and its OUs.
    fn both(target: &str, node: String, chain: Option<Arc<Vec<String>>>) -> [Job; 2] {
        [true, false].map(|accounts| Job {
            target: target.to_owned(),
            node: node.clone(),
            token: None,
            accounts,
            chain: chain.clone(),
        })
    }
}

enum Fetched {
    Accounts(Page<Account>),
    Ous(Page<String>),
}

type Call<'a> = BoxFuture<'a, (Job, Result<Fetched, AwsError>)>;

fn call<'a, A: Aws>(aws: &'a A, job: Job) -> Call<'a> {
    Box::pin(async move {
        let token = job.token.clone();
        let fetched = if job.accounts {
            aws.list_child_accounts_page(&job.node, token)
                .await
                .map(Fetched::Accounts)
        } else {
            aws.list_child_ous_page(&job.node, token)
                .await
                .map(Fetched::Ous)
        };
        (job, fetched)
    })
}

/// An OU-targeted run: the accounts named by ID are checked first (`DescribeAccount`: members
/// and ACTIVE, or the run stops before anything starts), then the named OUs and roots are
/// walked with [`WALK_CONCURRENCY`] calls in flight, and each account is sent as soon as its
/// page arrives. An account reached through two targets is sent once. With `needs_parents`,
/// each account carries its parents: beneath a root they are the walk's own path; above a
/// targeted OU and an account named by ID, the chain is asked once with `ListParents`, never
/// per account walked. Without it, accounts carry none (nothing is held per account).
pub async fn walk<A: Aws>(
    aws: &A,
    targets: &[OrgId],
    admission: &Admission,
    needs_parents: bool,
    stopped: impl Fn() -> bool,
    tx: Sender<Account>,
) -> anyhow::Result<StreamSummary> {
    let mut emitter = Emitter::new(admission, tx);
    emitter.held = Some(Vec::new());
    let mut parents = tree::Parents::default();
    for mut account in named_accounts(aws, targets, &mut emitter).await? {
        if needs_parents {
            let chain = parents.chain(aws, &account.id).await;
            account.parents = Some(chain.map_err(|e| ancestors_failed(&account.id, e))?);
        }
        if emitter.first_sight(&account) {
            emitter.offer(account).await;
        }
    }
    let mut jobs = VecDeque::new();
    for parent in targets.iter().filter(|t| t.is_parent()) {
        let node = parent.as_str().to_owned();
        let chain = match parent {
            OrgId::Ou(ou) if needs_parents => {
                let above = parents.chain(aws, ou).await;
                let above = above.map_err(|e| ancestors_failed(ou, e))?;
                Some(std::iter::once(node.clone()).chain(above).collect())
            }
            OrgId::Root(_) if needs_parents => Some(vec![node.clone()]),
            _ => None,
        };
        jobs.extend(Job::both(&node, node.clone(), chain.map(Arc::new)));
    }
    // Until every named parent has answered its first call, accounts are held back.
    let mut unconfirmed = jobs.len();
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < WALK_CONCURRENCY
            && let Some(job) = jobs.pop_front()
        {
            in_flight.push(call(aws, job));
        }
        let Some((job, fetched)) = in_flight.next().await else {
            break;
        };
        let first_of_target = job.token.is_none() && job.node == job.target;
        let fetched = fetched.map_err(|e| walk_failure(&job, e, unconfirmed > 0))?;
        if !absorb(&mut emitter, &mut jobs, job, fetched).await {
            return Ok(emitter.summary);
        }
        if first_of_target {
            unconfirmed -= 1;
            if unconfirmed == 0 && !emitter.release().await {
                return Ok(emitter.summary);
            }
        }
        if stopped() && !(jobs.is_empty() && in_flight.is_empty()) {
            emitter.summary.cut_short = true;
            break;
        }
    }
    emitter.release().await;
    Ok(emitter.summary)
}

/// Takes in one answered call: its accounts are offered, its OUs queued for walking, and its
/// next page queued first. `false` when the receiver is gone.
async fn absorb(
    emitter: &mut Emitter<'_>,
    jobs: &mut VecDeque<Job>,
    job: Job,
    fetched: Fetched,
) -> bool {
    let next = match fetched {
        Fetched::Accounts((accounts, next)) => {
            for mut account in accounts {
                account.parents = job.chain.as_deref().cloned();
                if emitter.first_sight(&account) && !emitter.offer(account).await {
                    return false;
                }
            }
            next
        }
        Fetched::Ous((ous, next)) => {
            for ou in ous {
                let chain = job.chain.as_ref().map(|above| {
                    Arc::new(
                        std::iter::once(ou.clone())
                            .chain(above.iter().cloned())
                            .collect(),
                    )
                });
                jobs.extend(Job::both(&job.target, ou, chain));
            }
            next
        }
    };
    if let Some(token) = next {
        jobs.push_front(Job {
            token: Some(token),
            ..job
        });
    }
    true
}

/// A failed walk call. Before every named parent has answered, a denial is the missing
/// Organizations access.
fn walk_failure(job: &Job, e: AwsError, before_start: bool) -> anyhow::Error {
    if before_start && e.is_no_org_access() {
        no_org_access(&e)
    } else {
        walk_error(&job.target, &job.node, e)
    }
}

/// The chain above a named account or a targeted OU could not be asked (`ListParents`).
fn ancestors_failed(child: &str, e: AwsError) -> anyhow::Error {
    if e.is_not_found() && child.starts_with("ou-") {
        anyhow::anyhow!("`{child}` is not an OU or root of this organization ({e})")
    } else if e.is_not_found() {
        anyhow::anyhow!("--target {child} is not an account of this organization ({e})")
    } else if e.is_no_org_access() {
        no_org_access(&e)
    } else {
        anyhow::Error::new(e).context(format!(
            "could not read where `{child}` sits in the organization (organizations:ListParents), which the [ous.\"…\"] entries of the config need"
        ))
    }
}

/// The accounts named by ID, checked to be ACTIVE members, in the order given. The calling
/// account, named without `--include-caller`, is tallied and left out unchecked.
async fn named_accounts<A: Aws>(
    aws: &A,
    targets: &[OrgId],
    emitter: &mut Emitter<'_>,
) -> anyhow::Result<Vec<Account>> {
    let admission = emitter.admission;
    let mut named = Vec::new();
    for target in targets {
        let OrgId::Account(id) = target else { continue };
        if *id == admission.caller.account && !admission.include_caller {
            emitter.summary.tally.caller_named(&admission.caller);
            continue;
        }
        let known = match aws.describe_account(id).await {
            Ok(account) => Some(account),
            Err(e) if e.is_not_found() => None,
            Err(e) if e.is_no_org_access() => return Err(no_org_access(&e)),
            Err(e) => bail!("could not check --target {id} (organizations:DescribeAccount): {e}"),
        };
        check_named(id, known.as_ref())?;
        named.extend(known);
    }
    Ok(named)
}

/// The whole organization walked from its root, for accounts that must come with their
/// parents (`[ous.…]` entries). With `portal` (`--sso-role`), an organization that cannot be
/// listed gives way to the portal's accounts, whose places are unknown (a note says so).
async fn walk_organization<A: Aws>(
    aws: &A,
    admission: &Admission,
    portal: bool,
    stopped: impl Fn() -> bool,
    tx: Sender<Account>,
) -> anyhow::Result<StreamSummary> {
    match aws.list_roots().await {
        Ok(roots) => {
            let roots: Vec<OrgId> = roots.into_iter().map(OrgId::Root).collect();
            walk(aws, &roots, admission, true, stopped, tx).await
        }
        Err(e) if portal && e.cannot_list_organization() => {
            let mut summary = stream_organization(aws, admission, portal, stopped, tx).await?;
            summary.early_notes.push(tree::unknown_note(&e));
            Ok(summary)
        }
        Err(e) if e.is_no_org_access() => Err(no_org_access(&e)),
        Err(e) => Err(anyhow::Error::new(e)
            .context("could not find the organization's root (organizations:ListRoots)")),
    }
}

/// The listing as a task of its own, sending each admitted account on `account_tx` while later
/// pages are still on their way: the whole organization when there are no `targets` (walked
/// from the root when `needs_parents`), else the OU walk. It stops listing when `stop` says
/// the run is over.
pub fn spawn_listing<A: Aws>(
    aws: Arc<A>,
    targets: Vec<OrgId>,
    admission: Admission,
    (portal, needs_parents): (bool, bool),
    stop: Arc<Stop>,
    account_tx: Sender<Account>,
) -> JoinHandle<anyhow::Result<StreamSummary>> {
    tokio::spawn(async move {
        let stopped = || stop.is_stopped();
        let aws = aws.as_ref();
        match (targets.is_empty(), needs_parents) {
            (true, false) => {
                stream_organization(aws, &admission, portal, stopped, account_tx).await
            }
            (true, true) => walk_organization(aws, &admission, portal, stopped, account_tx).await,
            _ => {
                walk(
                    aws,
                    &targets,
                    &admission,
                    needs_parents,
                    stopped,
                    account_tx,
                )
                .await
            }
        }
    })
}

/// Each account from the listing, in each of its regions (the run's, or its config entry's:
/// [`AccountRegions`]), as targets for the scheduler; counts the targets known so far for the
/// progress bar.
pub fn expand_regions<A: Aws>(
    mut accounts: tokio::sync::mpsc::Receiver<Account>,
    regions: AccountRegions,
    shared: &Shared<A>,
    known: Arc<AtomicU64>,
) -> tokio::sync::mpsc::Receiver<Target> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Target>(1024);
    let creds = shared.creds.clone();
    tokio::spawn(async move {
        while let Some(account) = accounts.recv().await {
            let account = Arc::new(account);
            let own = regions.of(&account);
            if own.is_empty() {
                continue;
            }
            creds.add_uses(&account.id, own.len());
            known.fetch_add(own.len() as u64, Ordering::SeqCst);
            for region in own {
                if tx.send((account.clone(), region)).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Caller;
    use crate::aws::fake::FakeAws;
    use crate::filters::Filters;

    fn org() -> FakeAws {
        let ids = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        FakeAws {
            caller: "000000000000".into(),
            accounts: vec![
                FakeAws::account("000000000000", "mgmt", "ACTIVE"),
                FakeAws::account("111111111111", "a", "ACTIVE"),
                FakeAws::account("222222222222", "b", "SUSPENDED"),
                FakeAws::account("333333333333", "c", "ACTIVE"),
                FakeAws::account("444444444444", "d", "ACTIVE"),
                FakeAws::account("555555555555", "e", "ACTIVE"),
            ],
            tree: [
                (
                    "r-root".to_owned(),
                    (ids(&["ou-root-aaaaaaaa"]), ids(&["000000000000"])),
                ),
                (
                    "ou-root-aaaaaaaa".to_owned(),
                    (
                        ids(&["ou-root-bbbbbbbb"]),
                        ids(&["111111111111", "222222222222", "333333333333"]),
                    ),
                ),
                (
                    "ou-root-bbbbbbbb".to_owned(),
                    (vec![], ids(&["444444444444", "555555555555"])),
                ),
            ]
            .into(),
            ..FakeAws::default()
        }
    }

    fn admission(ignored: &[&str]) -> Admission {
        Admission {
            ignored: ignored.iter().map(|s| s.to_string()).collect(),
            caller: Caller {
                account: "000000000000".into(),
                arn: "arn:aws:iam::000000000000:user/t".into(),
            },
            include_caller: false,
            filters: Filters::default(),
        }
    }

    async fn walked(
        aws: &FakeAws,
        targets: &[OrgId],
        admission: &Admission,
    ) -> (anyhow::Result<StreamSummary>, Vec<String>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(100);
        let summary = walk(aws, targets, admission, false, || false, tx).await;
        let mut sent = Vec::new();
        while let Ok(account) = rx.try_recv() {
            sent.push(account.id);
        }
        sent.sort();
        (summary, sent)
    }

    #[tokio::test]
    async fn the_walk_reaches_every_depth_sends_each_account_once_and_applies_admission() {
        let aws = org();
        let targets = [
            OrgId::Root("r-root".into()),
            OrgId::Ou("ou-root-bbbbbbbb".into()),
            OrgId::Account("555555555555".into()),
        ];
        let (summary, sent) = walked(&aws, &targets, &admission(&["333333333333"])).await;
        let summary = summary.unwrap();
        assert_eq!(sent, ["111111111111", "444444444444", "555555555555"]);
        assert_eq!(summary.sent, 3);
        assert_eq!(
            summary.tally.skipped(),
            2,
            "the caller and the suspended account"
        );
        let notes = summary.notes(false).join("\n");
        assert!(notes.contains("222222222222 (SUSPENDED)"), "{notes}");
        assert!(notes.contains("calling account 000000000000"), "{notes}");
    }

    /// The accounts a walk sent, by ID, with their parents.
    async fn placed(
        aws: &FakeAws,
        targets: &[OrgId],
        needs_parents: bool,
    ) -> std::collections::BTreeMap<String, Option<Vec<String>>> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(100);
        walk(aws, targets, &admission(&[]), needs_parents, || false, tx)
            .await
            .unwrap();
        let mut sent = std::collections::BTreeMap::new();
        while let Ok(account) = rx.try_recv() {
            sent.insert(account.id, account.parents);
        }
        sent
    }

    fn chain(ids: &[&str]) -> Option<Vec<String>> {
        Some(ids.iter().map(|s| s.to_string()).collect())
    }

    #[tokio::test]
    async fn a_walk_from_the_root_records_each_accounts_parents_at_every_depth() {
        let aws = org();
        let sent = placed(&aws, &[OrgId::Root("r-root".into())], true).await;
        let a = chain(&["ou-root-aaaaaaaa", "r-root"]);
        let b = chain(&["ou-root-bbbbbbbb", "ou-root-aaaaaaaa", "r-root"]);
        assert_eq!(sent["111111111111"], a);
        assert_eq!(sent["333333333333"], a);
        assert_eq!(sent["444444444444"], b);
        assert_eq!(sent["555555555555"], b);
        assert!(
            aws.parent_calls.lock().unwrap().is_empty(),
            "no ListParents"
        );
    }

    #[tokio::test]
    async fn a_targeted_ou_asks_its_own_ancestors_once_and_named_accounts_theirs() {
        let aws = org();
        let targets = [
            OrgId::Account("111111111111".into()),
            OrgId::Ou("ou-root-bbbbbbbb".into()),
        ];
        let sent = placed(&aws, &targets, true).await;
        assert_eq!(sent["111111111111"], chain(&["ou-root-aaaaaaaa", "r-root"]));
        let b = chain(&["ou-root-bbbbbbbb", "ou-root-aaaaaaaa", "r-root"]);
        assert_eq!(sent["444444444444"], b);
        assert_eq!(sent["555555555555"], b);
        assert_eq!(
            *aws.parent_calls.lock().unwrap(),
            ["111111111111", "ou-root-aaaaaaaa", "ou-root-bbbbbbbb"],
            "one chain per named account and per targeted OU, each OU asked once"
        );
        let aws = org();
        let sent = placed(&aws, &targets[1..], false).await;
        assert_eq!(
            sent["444444444444"], None,
            "not asked when nothing needs it"
        );
        assert!(aws.parent_calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_whole_organization_run_with_ou_entries_walks_from_the_root() {
        let aws = org();
        let (tx, mut rx) = tokio::sync::mpsc::channel(100);
        let summary = walk_organization(&aws, &admission(&[]), false, || false, tx)
            .await
            .unwrap();
        let mut sent = Vec::new();
        while let Ok(account) = rx.try_recv() {
            sent.push((account.id, account.parents.map(|p| p.len())));
        }
        sent.sort();
        assert_eq!(
            summary.sent, 4,
            "the caller and the suspended account skipped"
        );
        assert_eq!(
            sent,
            [
                ("111111111111".to_owned(), Some(2)),
                ("333333333333".to_owned(), Some(2)),
                ("444444444444".to_owned(), Some(3)),
                ("555555555555".to_owned(), Some(3)),
            ]
        );
    }

    #[tokio::test]
    async fn with_the_portals_accounts_the_tree_is_unknown_and_a_note_says_so() {
        let mut aws = org();
        aws.deny_list_accounts = true;
        aws.portal_accounts = vec![FakeAws::account("111111111111", "a", "ACTIVE")];
        let (tx, mut rx) = tokio::sync::mpsc::channel(100);
        let summary = walk_organization(&aws, &admission(&[]), true, || false, tx)
            .await
            .unwrap();
        assert_eq!(rx.try_recv().unwrap().parents, None);
        let notes = summary.notes(false).join("\n");
        assert!(notes.contains("tree cannot be read"), "{notes}");
    }

    #[tokio::test]
    async fn an_unknown_ou_fails_before_any_account_is_sent() {
        let aws = org();
        let targets = [
            OrgId::Ou("ou-root-aaaaaaaa".into()),
            OrgId::Ou("ou-root-missing0".into()),
        ];
        let (summary, sent) = walked(&aws, &targets, &admission(&[])).await;
        let err = format!("{:#}", summary.unwrap_err());
        assert!(
            err.contains("`ou-root-missing0` is not an OU or root"),
            "{err}"
        );
        assert!(
            sent.is_empty(),
            "nothing may run before the targets are known: {sent:?}"
        );
    }

    #[tokio::test]
    async fn named_accounts_must_be_active_members() {
        let aws = org();
        let suspended = [OrgId::Account("222222222222".into())];
        let (summary, _) = walked(&aws, &suspended, &admission(&[])).await;
        assert!(format!("{:#}", summary.unwrap_err()).contains("SUSPENDED, not ACTIVE"));
        let stranger = [OrgId::Account("999999999999".into())];
        let (summary, _) = walked(&aws, &stranger, &admission(&[])).await;
        assert!(
            format!("{:#}", summary.unwrap_err()).contains("not an account of this organization")
        );
    }
}
