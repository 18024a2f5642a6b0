//! Assuming the target role: the role ARN, one AssumeRole per account shared by all of that
//! account's regions (renewed when it is about to expire), and an optional cap on the call rate.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::aws::{AssumeRequest, Aws, AwsError, TempCredentials};
use crate::secret::Secret;

/// How to assume the role in any account; built once from the validated configuration.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    pub role_name: String,
    pub session_name: String,
    pub policy: Option<Secret>,
    pub policy_arns: Vec<String>,
    pub external_id: Option<Secret>,
    pub duration_seconds: Option<i32>,
}

impl RoleSpec {
    pub fn role_arn(&self, partition: &str, account_id: &str) -> String {
        format!("arn:{partition}:iam::{account_id}:role/{}", self.role_name)
    }

    fn request(&self, partition: &str, account_id: &str) -> AssumeRequest {
        AssumeRequest {
            role_arn: self.role_arn(partition, account_id),
            session_name: self.session_name.clone(),
            policy: self.policy.clone(),
            policy_arns: self.policy_arns.clone(),
            external_id: self.external_id.clone(),
            duration_seconds: self.duration_seconds,
        }
    }
}

type Assumed = Result<Arc<TempCredentials>, AwsError>;

/// Credentials with less than this left are renewed before a command starts with them.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

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
    slot: Mutex<Option<Assumed>>,
    uses_left: AtomicUsize,
}

/// Assumes the role once per account, however many regions ask for it and however many ask at
/// the same time; renews it when fewer than [`REFRESH_MARGIN`] remain. A failure is final for
/// that account: it is not retried per region. Credentials are dropped once the account's last
/// planned target is done, so memory follows the accounts in flight, not the organization.
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
            .or_insert_with(|| {
                Arc::new(Cell {
                    slot: Mutex::new(None),
                    uses_left: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// `n` more targets will use the account's credentials.
    pub fn add_uses(&self, account_id: &str, n: usize) {
        let mut cells = self.cells();
        let cell = cells.entry(account_id.to_owned()).or_insert_with(|| {
            Arc::new(Cell {
                slot: Mutex::new(None),
                uses_left: AtomicUsize::new(0),
            })
        });
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

    /// Caps AssumeRole calls at `rate` per second.
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
    fn redact(&self, mut err: AwsError) -> AwsError {
        for secret in [&self.spec.external_id, &self.spec.policy]
            .into_iter()
            .flatten()
        {
            err.message = secret.redact_from(&err.message);
        }
        err
    }

    /// The account's credentials, valid for at least [`REFRESH_MARGIN`], assuming the role
    /// on first use and again when they are about to expire.
    pub async fn get(&self, account_id: &str) -> Assumed {
        let cell = self.cell(account_id);
        let mut slot = cell.slot.lock().await;
        match &*slot {
            Some(Ok(creds)) if creds.expiration > SystemTime::now() + REFRESH_MARGIN => {
                return Ok(creds.clone());
            }
            Some(Err(err)) => return Err(err.clone()),
            _ => {}
        }
        if let Some(rate) = &self.rate {
            rate.acquire().await;
        }
        let assumed = self
            .aws
            .assume_role(&self.spec.request(&self.partition, account_id))
            .await
            .map(Arc::new)
            .map_err(|e| self.redact(e));
        *slot = Some(assumed.clone());
        assumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let aws = Arc::new(crate::aws::fake::FakeAws::default());
        let spec = RoleSpec {
            role_name: "R".into(),
            session_name: "R".into(),
            policy: None,
            policy_arns: vec![],
            external_id: None,
            duration_seconds: None,
        };
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
    fn role_arn_uses_the_partition() {
        let spec = RoleSpec {
            role_name: "Audit".into(),
            session_name: "Audit".into(),
            policy: None,
            policy_arns: vec![],
            external_id: None,
            duration_seconds: None,
        };
        assert_eq!(
            spec.role_arn("aws-cn", "111111111111"),
            "arn:aws-cn:iam::111111111111:role/Audit"
        );
    }
}
