//! Getting each target account's credentials: by assuming the target role (the role ARN, one
//! AssumeRole per account), or with `--sso-role` from the IAM Identity Center portal (one
//! GetRoleCredentials per account). Either way the credentials are shared by all of the
//! account's regions, renewed when they are about to expire, and the calls can be capped to a
//! rate.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::aws::{AssumeRequest, Aws, AwsError, ErrorKind, TempCredentials};
use crate::secret::Secret;

/// Where the target accounts' credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// `sts:AssumeRole` of the role in each account (`--role`).
    #[default]
    AssumeRole,
    /// `sso:GetRoleCredentials` of the permission set in each account (`--sso-role`).
    Portal,
}

/// How to get credentials in any account; built once from the validated configuration.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    pub source: Source,
    /// The roles (or, from the portal, the permission sets) to try in each account, in order
    /// (`--role A,B`); the first that works is used. Never empty.
    pub role_names: Vec<String>,
    /// `--role-session-name`, for every role; without it each session is named after its role.
    pub session_name: Option<String>,
    pub policy: Option<Secret>,
    pub policy_arns: Vec<String>,
    pub external_id: Option<Secret>,
    pub duration_seconds: Option<i32>,
}

/// The role a record names, and its session name: the role that worked, the last one tried,
/// or, before any was tried, the first. A permission set has no session name of cove's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleUsed {
    pub role_name: String,
    pub session_name: Option<String>,
}

impl RoleSpec {
    /// One role of the list, with its session name.
    pub fn role(&self, role_name: &str) -> RoleUsed {
        let default = role_name.rsplit('/').next().unwrap_or(role_name);
        RoleUsed {
            role_name: role_name.to_owned(),
            session_name: (self.source == Source::AssumeRole)
                .then(|| self.session_name.as_deref().unwrap_or(default).to_owned()),
        }
    }

    /// The first role of the list: what a target names before any role was tried.
    pub fn first(&self) -> RoleUsed {
        self.role(&self.role_names[0])
    }

    fn request(&self, role: &RoleUsed, partition: &str, account_id: &str) -> AssumeRequest {
        AssumeRequest {
            role_arn: role_arn(&role.role_name, partition, account_id),
            session_name: role.session_name.clone().unwrap_or_default(),
            policy: self.policy.clone(),
            policy_arns: self.policy_arns.clone(),
            external_id: self.external_id.clone(),
            duration_seconds: self.duration_seconds,
        }
    }
}

/// The ARN of `role_name` in an account.
pub fn role_arn(role_name: &str, partition: &str, account_id: &str) -> String {
    format!("arn:{partition}:iam::{account_id}:role/{role_name}")
}

/// An account's credentials, and the role they are for.
#[derive(Debug)]
pub struct Assumed {
    pub role: RoleUsed,
    pub creds: TempCredentials,
}

/// Why an account has no credentials: every role tried, in order, with AWS's answer. `role` is
/// the last one tried.
#[derive(Debug)]
pub struct AssumeFailure {
    pub role: RoleUsed,
    /// What was asked for each role (`assume arn:...`) and its error (already redacted).
    pub tried: Vec<(String, AwsError)>,
    /// What would work instead: from the portal, the permission sets the user has there.
    pub hint: Option<String>,
}

impl std::fmt::Display for AssumeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (asked, err)) in self.tried.iter().enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            write!(f, "{sep}could not {asked}: {err}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

type Got = Result<Arc<Assumed>, Arc<AssumeFailure>>;

/// The default cap on `sso:GetRoleCredentials` calls per second (`--max-assume-rate` wins): the
/// portal throttles at about 20 a second, and other tools of the user share that quota.
pub const PORTAL_RATE_DEFAULT: f64 = 10.0;

/// Credentials with less than this left are renewed before they are handed out, to a command
/// or through the credential endpoint: botocore (the AWS CLI, boto3) asks its credential
/// endpoint again once fewer than 15 minutes are left, and on every call after that. A session
/// shorter than twice this (`--duration` under 30 minutes) is renewed at half its length
/// instead ([`RoleSpec::refresh_margin`]), so it is not assumed again on every request.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(15 * 60);

/// What a session lasts when `--duration` does not say: AssumeRole's default, and the shortest
/// an IAM Identity Center permission set gives.
const DEFAULT_SESSION: Duration = Duration::from_secs(3600);

impl RoleSpec {
    /// How much must be left of the credentials this spec gets for them to be handed out
    /// without renewal: [`REFRESH_MARGIN`], or half the session when that is shorter.
    pub fn refresh_margin(&self) -> Duration {
        let session = match (self.source, self.duration_seconds) {
            (Source::AssumeRole, Some(seconds)) => {
                Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
            }
            _ => DEFAULT_SESSION,
        };
        REFRESH_MARGIN.min(session / 2)
    }
}

/// Whole seconds from now until `expiration` (0 once it has passed), for logs.
fn left_seconds(expiration: SystemTime) -> u64 {
    expiration
        .duration_since(SystemTime::now())
        .map_or(0, |left| left.as_secs())
}

/// Spaces calls evenly: at most `rate` per second, shared by every caller.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: std::sync::Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn per_second(rate: f64) -> Self {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: std::sync::Mutex::new(None),
        }
    }

    /// Waits for this caller's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// One account's credentials, and how many planned targets still need them.
struct Cell {
    slot: Mutex<Option<Got>>,
    uses_left: AtomicUsize,
}

impl Cell {
    fn empty() -> Arc<Cell> {
        Arc::new(Cell {
            slot: Mutex::new(None),
            uses_left: AtomicUsize::new(0),
        })
    }
}

/// Assumes the role once per account, however many regions ask for it and however many ask at
/// the same time; renews it when fewer than [`RoleSpec::refresh_margin`] remain. A failure is
/// final for that account: it is not retried per region. Credentials are dropped once the
/// account's last planned target is done, so memory follows the accounts in flight, not the
/// organization.
pub struct CredentialCache<A> {
    aws: Arc<A>,
    spec: RoleSpec,
    partition: String,
    rate: Option<RateLimiter>,
    /// Accounts in flight; an account's cell goes when its last planned target is done.
    cells: std::sync::Mutex<HashMap<String, Arc<Cell>>>,
}

impl<A: Aws> CredentialCache<A> {
    /// `targets` names the account of every planned target (repeats count as more uses); more
    /// can be added as they become known with [`CredentialCache::add_uses`].
    pub fn new<'a>(
        aws: Arc<A>,
        spec: RoleSpec,
        partition: &str,
        targets: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let cache = CredentialCache {
            aws,
            spec,
            partition: partition.to_owned(),
            rate: None,
            cells: std::sync::Mutex::new(HashMap::new()),
        };
        for id in targets {
            cache.add_uses(id, 1);
        }
        cache
    }

    fn cells(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Cell>>> {
        self.cells.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cell(&self, account_id: &str) -> Arc<Cell> {
        self.cells()
            .entry(account_id.to_owned())
            .or_insert_with(Cell::empty)
            .clone()
    }

    /// `n` more targets will use the account's credentials.
    pub fn add_uses(&self, account_id: &str, n: usize) {
        let mut cells = self.cells();
        let cell = cells
            .entry(account_id.to_owned())
            .or_insert_with(Cell::empty);
        // Counted under the map's lock, so a release cannot remove the cell in between.
        cell.uses_left.fetch_add(n, Ordering::SeqCst);
    }

    /// Assumes the role ahead of the account's targets; does nothing for an account that no
    /// planned target needs any more (so a late prefetch never re-creates a cell).
    pub async fn prefetch(&self, account_id: &str) {
        let planned = self
            .cells()
            .get(account_id)
            .is_some_and(|cell| cell.uses_left.load(Ordering::SeqCst) > 0);
        if planned {
            let _ = self.get(account_id).await;
        }
    }

    /// One target of the account is done; after the last, its credentials are dropped.
    pub fn release(&self, account_id: &str) {
        let mut cells = self.cells();
        if let Some(cell) = cells.get(account_id)
            && cell.uses_left.fetch_sub(1, Ordering::SeqCst) <= 1
        {
            cells.remove(account_id);
        }
    }

    /// Caps the credential calls (AssumeRole, or the portal's GetRoleCredentials) at `rate` per
    /// second.
    pub fn with_rate_limit(mut self, rate: Option<f64>) -> Self {
        self.rate = rate.map(RateLimiter::per_second);
        self
    }

    pub fn aws(&self) -> &A {
        &self.aws
    }

    pub fn spec(&self) -> &RoleSpec {
        &self.spec
    }

    /// AWS error messages can quote request parameters: never let the external ID or the
    /// session policy through.
    pub(crate) fn redact(&self, mut err: AwsError) -> AwsError {
        for secret in [&self.spec.external_id, &self.spec.policy]
            .into_iter()
            .flatten()
        {
            err.message = secret.redact_from(&err.message);
        }
        err
    }

    /// The account's credentials, valid for at least [`RoleSpec::refresh_margin`]. On first use
    /// the roles are tried in order and the first that can be assumed is kept; only a denial
    /// moves on to the next role. When the credentials are about to expire, the role that worked
    /// is assumed again.
    pub async fn get(&self, account_id: &str) -> Got {
        let cell = self.cell(account_id);
        let mut slot = cell.slot.lock().await;
        let margin = self.spec.refresh_margin();
        let current = match &*slot {
            Some(Ok(assumed)) if assumed.creds.expiration > SystemTime::now() + margin => {
                return Ok(assumed.clone());
            }
            Some(Ok(assumed)) => {
                tracing::info!(
                    account = account_id,
                    role = %assumed.role.role_name,
                    left_seconds = left_seconds(assumed.creds.expiration),
                    "renewing credentials: fewer than {} minutes left",
                    margin.as_secs() / 60
                );
                Some(assumed.clone())
            }
            Some(Err(failure)) => return Err(failure.clone()),
            None => None,
        };
        let roles = match &current {
            Some(assumed) => std::slice::from_ref(&assumed.role.role_name),
            None => &self.spec.role_names[..],
        };
        let got = self.assume_first(account_id, roles).await;
        match (got, current) {
            // A renewal that failed while the credentials still work: keep them, and try again
            // next time, rather than failing every later target of the account.
            (Err(failure), Some(current)) if current.creds.expiration > SystemTime::now() => {
                tracing::warn!(account = account_id, error = %failure, "could not renew credentials; using the current ones until they expire");
                Ok(current)
            }
            (got, _) => {
                *slot = Some(got.clone());
                got
            }
        }
    }

    /// Tries `roles` in order until one works or an error other than a denial ends it.
    async fn assume_first(&self, account_id: &str, roles: &[String]) -> Got {
        let mut tried = Vec::new();
        let mut last = self.spec.first();
        for name in roles {
            let role = self.spec.role(name);
            if let Some(rate) = &self.rate {
                rate.acquire().await;
            }
            match self.fetch(&role, account_id).await {
                Ok(creds) => return Ok(Arc::new(Assumed { role, creds })),
                Err((asked, err)) => {
                    let denied = err.kind == ErrorKind::Denied;
                    tried.push((asked, self.redact(err)));
                    last = role;
                    if !denied {
                        break;
                    }
                }
            }
        }
        let denied = tried
            .last()
            .is_some_and(|(_, e)| e.kind == ErrorKind::Denied);
        let hint = if denied && self.spec.source == Source::Portal {
            self.permission_sets_in(account_id).await
        } else {
            None
        };
        Err(Arc::new(AssumeFailure {
            role: last,
            tried,
            hint,
        }))
    }

    /// Which permission sets the user does have in the account, when none asked for was there.
    async fn permission_sets_in(&self, account_id: &str) -> Option<String> {
        if let Some(rate) = &self.rate {
            rate.acquire().await;
        }
        match self.aws.portal_account_roles(account_id).await {
            Ok(sets) if sets.is_empty() => Some(format!(
                "the portal lists no permission set of yours in account {account_id}"
            )),
            Ok(sets) => Some(format!(
                "your permission sets in account {account_id}: {}",
                sets.join(", ")
            )),
            Err(e) => {
                tracing::info!(account = account_id, error = %e, "could not list the permission sets in the account");
                None
            }
        }
    }

    /// One credential call for `role` in the account. A failure comes with what was asked, for
    /// the failure text (worded only then: this is on every target's path).
    async fn fetch(
        &self,
        role: &RoleUsed,
        account_id: &str,
    ) -> Result<TempCredentials, (String, AwsError)> {
        match self.spec.source {
            Source::AssumeRole => {
                let request = self.spec.request(role, &self.partition, account_id);
                let got = self.aws.assume_role(&request).await;
                got.map_err(|e| (format!("assume {}", request.role_arn), e))
            }
            Source::Portal => {
                let got = self
                    .aws
                    .portal_role_credentials(account_id, &role.role_name)
                    .await;
                got.map_err(|e| {
                    let asked = format!(
                        "get the credentials of permission set `{}` in account {account_id} from the IAM Identity Center portal (sso:GetRoleCredentials)",
                        role.role_name
                    );
                    (asked, e)
                })
            }
        }
    }
}

#[cfg(test)]
impl RoleSpec {
    /// The roles `names`, in order, with nothing else set.
    pub fn named(names: &[&str]) -> Self {
        RoleSpec {
            source: Source::AssumeRole,
            role_names: names.iter().map(|n| (*n).to_owned()).collect(),
            session_name: None,
            policy: None,
            policy_arns: vec![],
            external_id: None,
            duration_seconds: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_calls() {
        let limiter = RateLimiter::per_second(4.0);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test]
    async fn credentials_are_dropped_after_the_accounts_last_target() {
        let aws = Arc::new(FakeAws::default());
        let spec = RoleSpec::named(&["R"]);
        let cache = CredentialCache::new(aws.clone(), spec, "aws", ["111111111111"; 2]);
        cache.get("111111111111").await.unwrap();
        cache.release("111111111111");
        assert!(cache.cells().contains_key("111111111111"));
        cache.get("111111111111").await.unwrap();
        assert_eq!(
            aws.assume_calls(),
            1,
            "reused while a target still needs it"
        );
        cache.release("111111111111");
        assert!(cache.cells().is_empty(), "dropped after the last target");
    }

    #[test]
    fn credentials_are_renewed_fifteen_minutes_ahead_or_at_half_a_short_session() {
        let mut spec = RoleSpec::named(&["R"]);
        assert_eq!(spec.refresh_margin(), Duration::from_secs(15 * 60));
        spec.duration_seconds = Some(3600);
        assert_eq!(spec.refresh_margin(), Duration::from_secs(15 * 60));
        spec.duration_seconds = Some(900);
        assert_eq!(
            spec.refresh_margin(),
            Duration::from_secs(450),
            "half a 15-minute session"
        );
        spec.source = Source::Portal;
        assert_eq!(spec.refresh_margin(), Duration::from_secs(15 * 60));
    }

    #[tokio::test]
    async fn credentials_with_less_than_fifteen_minutes_left_are_renewed_and_more_are_kept() {
        for (minutes, calls) in [(14, 2), (16, 1)] {
            let aws = Arc::new(FakeAws {
                lifetime: Some(Duration::from_secs(minutes * 60)),
                ..FakeAws::default()
            });
            let cache = CredentialCache::new(
                aws.clone(),
                RoleSpec::named(&["R"]),
                "aws",
                ["111111111111"],
            );
            cache.get("111111111111").await.unwrap();
            cache.get("111111111111").await.unwrap();
            assert_eq!(aws.assume_calls(), calls, "{minutes} minutes left");
        }
    }

    #[tokio::test]
    async fn a_fifteen_minute_session_is_not_assumed_again_on_every_request() {
        let aws = Arc::new(FakeAws {
            lifetime: Some(Duration::from_secs(900)),
            ..FakeAws::default()
        });
        let mut spec = RoleSpec::named(&["R"]);
        spec.duration_seconds = Some(900);
        let cache = CredentialCache::new(aws.clone(), spec, "aws", ["111111111111"]);
        for _ in 0..10 {
            cache.get("111111111111").await.unwrap();
        }
        assert_eq!(aws.assume_calls(), 1);
    }

    #[test]
    fn role_arn_uses_the_partition() {
        assert_eq!(
            role_arn("Audit", "aws-cn", "111111111111"),
            "arn:aws-cn:iam::111111111111:role/Audit"
        );
    }

    fn fallback(errors: &[(&str, ErrorKind)]) -> (Arc<FakeAws>, CredentialCache<FakeAws>) {
        let aws = Arc::new(FakeAws {
            role_errors: errors
                .iter()
                .map(|(role, kind)| ((role.to_string(), "111111111111".to_owned()), *kind))
                .collect(),
            ..FakeAws::default()
        });
        let spec = RoleSpec::named(&["First", "team/Second", "Third"]);
        let cache = CredentialCache::new(aws.clone(), spec, "aws", ["111111111111"; 3]);
        (aws, cache)
    }

    #[tokio::test]
    async fn a_denied_role_moves_on_to_the_next_and_the_one_that_worked_is_kept() {
        let (aws, cache) = fallback(&[("First", ErrorKind::Denied)]);
        for _ in 0..3 {
            let assumed = cache.get("111111111111").await.unwrap();
            assert_eq!(assumed.role.role_name, "team/Second");
            assert_eq!(
                assumed.role.session_name.as_deref(),
                Some("Second"),
                "named after the role used"
            );
        }
        assert_eq!(
            *aws.assumed_arns.lock().unwrap(),
            [
                "arn:aws:iam::111111111111:role/First",
                "arn:aws:iam::111111111111:role/team/Second"
            ],
            "one successful AssumeRole for the account, however many regions ask"
        );
    }

    #[tokio::test]
    async fn when_every_role_is_denied_the_failure_names_each_and_the_last() {
        let denied = ErrorKind::Denied;
        let (aws, cache) = fallback(&[
            ("First", denied),
            ("team/Second", denied),
            ("Third", denied),
        ]);
        let failure = cache.get("111111111111").await.unwrap_err();
        assert_eq!(failure.role.role_name, "Third");
        let text = failure.to_string();
        for role in [
            "role/First: AccessDenied",
            "role/team/Second: AccessDenied",
            "role/Third: AccessDenied",
        ] {
            assert!(text.contains(role), "{text}");
        }
        cache.get("111111111111").await.unwrap_err();
        assert_eq!(aws.assume_calls(), 3, "a failed account is not tried again");
    }

    #[tokio::test]
    async fn only_a_denial_moves_on_throttling_and_other_errors_end_the_account() {
        for kind in [ErrorKind::Throttled, ErrorKind::Other] {
            let (aws, cache) = fallback(&[("First", kind)]);
            let failure = cache.get("111111111111").await.unwrap_err();
            assert_eq!(failure.role.role_name, "First", "{kind:?}");
            assert_eq!(failure.tried.len(), 1, "{kind:?}");
            assert_eq!(
                aws.assume_calls(),
                1,
                "{kind:?}: the next role is not tried"
            );
        }
    }

    #[tokio::test]
    async fn renewal_assumes_the_role_that_worked_and_an_explicit_session_name_applies_to_all() {
        let aws = Arc::new(FakeAws {
            lifetime: Some(Duration::from_secs(60)),
            role_errors: [(
                ("First".to_owned(), "111111111111".to_owned()),
                ErrorKind::Denied,
            )]
            .into(),
            ..FakeAws::default()
        });
        let mut spec = RoleSpec::named(&["First", "Second"]);
        spec.session_name = Some("audit".into());
        let cache = CredentialCache::new(aws.clone(), spec, "aws", ["111111111111"; 2]);
        let first = cache.get("111111111111").await.unwrap();
        let renewed = cache.get("111111111111").await.unwrap();
        assert_eq!(first.role.session_name.as_deref(), Some("audit"));
        assert_eq!(renewed.role.role_name, "Second");
        assert_eq!(
            aws.assumed_arns.lock().unwrap().last().unwrap(),
            "arn:aws:iam::111111111111:role/Second",
            "renewed with the role that worked, without trying the denied one again"
        );
        assert_eq!(aws.assume_calls(), 3);
    }

    /// The portal's permission sets `sets`, with `Admin` missing in account 111111111111.
    fn portal(sets: &[&str]) -> (Arc<FakeAws>, CredentialCache<FakeAws>) {
        let aws = Arc::new(FakeAws {
            role_errors: [(
                ("Admin".to_owned(), "111111111111".to_owned()),
                ErrorKind::Denied,
            )]
            .into(),
            portal_roles: [("111111111111".to_owned(), vec!["ReadOnly".to_owned()])].into(),
            ..FakeAws::default()
        });
        let mut spec = RoleSpec::named(sets);
        spec.source = Source::Portal;
        let accounts = ["111111111111", "222222222222"];
        let cache = CredentialCache::new(aws.clone(), spec, "aws", accounts);
        (aws, cache)
    }

    #[tokio::test]
    async fn from_the_portal_a_missing_permission_set_moves_on_and_no_role_is_assumed() {
        let (aws, cache) = portal(&["Admin", "ReadOnly"]);
        let fell_back = cache.get("111111111111").await.unwrap();
        assert_eq!(fell_back.role.role_name, "ReadOnly");
        assert_eq!(fell_back.role.session_name, None);
        let first = cache.get("222222222222").await.unwrap();
        assert_eq!(first.role.role_name, "Admin");
        assert_eq!(aws.assume_calls(), 0, "no AssumeRole in portal mode");
        assert_eq!(
            *aws.portal_requests.lock().unwrap(),
            [
                ("111111111111".to_owned(), "Admin".to_owned()),
                ("111111111111".to_owned(), "ReadOnly".to_owned()),
                ("222222222222".to_owned(), "Admin".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn from_the_portal_a_failure_names_the_permission_set_and_the_portals_error_code() {
        let (_, cache) = portal(&["Admin"]);
        let failure = cache.get("111111111111").await.unwrap_err();
        let text = failure.to_string();
        assert!(
            text.contains("permission set `Admin` in account 111111111111")
                && text.contains("ForbiddenException: No access")
                && text.ends_with("; your permission sets in account 111111111111: ReadOnly"),
            "{text}"
        );
        assert_eq!(failure.role.session_name, None);
    }

    #[tokio::test]
    async fn without_a_permission_set_there_the_hint_says_so_and_a_failed_listing_drops_it() {
        let aws = Arc::new(FakeAws {
            role_errors: [
                (
                    ("Admin".to_owned(), "111111111111".to_owned()),
                    ErrorKind::Denied,
                ),
                (
                    ("Admin".to_owned(), "222222222222".to_owned()),
                    ErrorKind::Denied,
                ),
            ]
            .into(),
            portal_roles_fail: ["222222222222".to_owned()].into(),
            ..FakeAws::default()
        });
        let mut spec = RoleSpec::named(&["Admin"]);
        spec.source = Source::Portal;
        let cache = CredentialCache::new(aws, spec, "aws", ["111111111111", "222222222222"]);
        let none = cache.get("111111111111").await.unwrap_err();
        assert!(
            none.to_string()
                .ends_with("; the portal lists no permission set of yours in account 111111111111"),
            "{none}"
        );
        let unlisted = cache.get("222222222222").await.unwrap_err();
        assert_eq!(unlisted.hint, None);
        assert!(
            unlisted
                .to_string()
                .ends_with("ForbiddenException: No access"),
            "{unlisted}"
        );
    }

    #[tokio::test]
    async fn a_failed_renewal_keeps_credentials_that_still_work() {
        // Credentials last 60 s, so every get renews; the second AssumeRole is throttled.
        let aws = Arc::new(crate::aws::fake::FakeAws {
            lifetime: Some(Duration::from_secs(60)),
            throttle_assume_after: Some(1),
            ..crate::aws::fake::FakeAws::default()
        });
        let cache = CredentialCache::new(
            aws.clone(),
            RoleSpec::named(&["R"]),
            "aws",
            ["111111111111"; 3],
        );
        let first = cache.get("111111111111").await.unwrap();
        let second = cache
            .get("111111111111")
            .await
            .expect("the current credentials still work");
        assert_eq!(first.creds.access_key_id, second.creds.access_key_id);
        cache.get("111111111111").await.unwrap();
        assert_eq!(
            aws.assume_calls(),
            3,
            "each later target tries to renew again"
        );
    }
}
