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
use crate::plan::Target;
use crate::resolver::{
    check_named, from_portal_note, listed_twice, listing_failed, no_org_access,
    portal_listing_failed, walk_error,
};
use crate::runner::Shared;
use crate::stop::Stop;

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
/// page arrives. An account reached through two targets is sent once.
pub async fn walk<A: Aws>(
    aws: &A,
    targets: &[OrgId],
    admission: &Admission,
    stopped: impl Fn() -> bool,
    tx: Sender<Account>,
) -> anyhow::Result<StreamSummary> {
    let mut emitter = Emitter::new(admission, tx);
    emitter.held = Some(Vec::new());
    for account in named_accounts(aws, targets, &mut emitter).await? {
        if emitter.first_sight(&account) {
            emitter.offer(account).await;
        }
    }
    let mut jobs = VecDeque::new();
    for parent in targets.iter().filter(|t| t.is_parent()) {
        let node = parent.as_str().to_owned();
        for accounts in [true, false] {
            jobs.push_back(Job {
                target: node.clone(),
                node: node.clone(),
                token: None,
                accounts,
            });
        }
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
            for account in accounts {
                if emitter.first_sight(&account) && !emitter.offer(account).await {
                    return false;
                }
            }
            next
        }
        Fetched::Ous((ous, next)) => {
            for ou in ous {
                for accounts in [true, false] {
                    jobs.push_back(Job {
                        target: job.target.clone(),
                        node: ou.clone(),
                        token: None,
                        accounts,
                    });
                }
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

/// The listing as a task of its own, sending each admitted account on `account_tx` while later
/// pages are still on their way: the whole organization when there are no `targets`, else the
/// OU walk. It stops listing when `stop` says the run is over.
pub fn spawn_listing<A: Aws>(
    aws: Arc<A>,
    targets: Vec<OrgId>,
    admission: Admission,
    portal: bool,
    stop: Arc<Stop>,
    account_tx: Sender<Account>,
) -> JoinHandle<anyhow::Result<StreamSummary>> {
    tokio::spawn(async move {
        let stopped = || stop.is_stopped();
        if targets.is_empty() {
            stream_organization(aws.as_ref(), &admission, portal, stopped, account_tx).await
        } else {
            walk(aws.as_ref(), &targets, &admission, stopped, account_tx).await
        }
    })
}

/// Each account from the listing, in every region, as targets for the scheduler; counts the
/// targets known so far for the progress bar.
pub fn expand_regions<A: Aws>(
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
        let summary = walk(aws, targets, admission, || false, tx).await;
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
