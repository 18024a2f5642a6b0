//! Credentials of a role cove itself acts as (a `--via-role` hop, the `--org-role`): assumed
//! once, kept, and assumed again before they expire, so a run longer than a session still works.

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::Mutex;

use super::{AwsError, TempCredentials};

/// Credentials with less than this left are assumed again before they are used.
pub const RENEW_MARGIN: Duration = Duration::from_secs(5 * 60);

/// One AssumeRole call of the role; called again for every renewal.
pub type Assume =
    Box<dyn Fn() -> BoxFuture<'static, Result<TempCredentials, AwsError>> + Send + Sync>;

/// A role's credentials, renewed when fewer than [`RENEW_MARGIN`] remain. Concurrent callers
/// wait for one AssumeRole call instead of making their own.
pub struct Renewing {
    /// How messages name the role, for example "--via-role `arn:...` (hop 1 of 2)".
    pub label: String,
    assume: Assume,
    current: Mutex<Option<TempCredentials>>,
}

impl Renewing {
    pub fn new(label: String, assume: Assume) -> Self {
        Renewing {
            label,
            assume,
            current: Mutex::new(None),
        }
    }

    /// Credentials valid for at least [`RENEW_MARGIN`] (or as long as AWS gave), assuming the
    /// role on first use and again when they are about to expire.
    pub async fn get(&self) -> Result<TempCredentials, AwsError> {
        let mut current = self.current.lock().await;
        if let Some(creds) = &*current
            && creds.expiration > SystemTime::now() + RENEW_MARGIN
        {
            return Ok(creds.clone());
        }
        if current.is_some() {
            tracing::info!(role = %self.label, "renewing credentials: fewer than five minutes left");
        }
        let fresh = (self.assume)().await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::aws::fake::FakeAws;
    use crate::aws::{AssumeRequest, Aws};

    fn hop(aws: &Arc<FakeAws>) -> Renewing {
        let aws = aws.clone();
        let request = AssumeRequest {
            role_arn: "arn:aws:iam::999999999999:role/Hub".into(),
            session_name: "cove".into(),
            policy: None,
            policy_arns: vec![],
            external_id: None,
            duration_seconds: None,
        };
        Renewing::new(
            "--via-role hub".into(),
            Box::new(move || {
                let (aws, request) = (aws.clone(), request.clone());
                Box::pin(async move { aws.assume_role(&request).await })
            }),
        )
    }

    #[tokio::test]
    async fn a_role_is_assumed_once_while_its_credentials_last() {
        let aws = Arc::new(FakeAws::default());
        let hub = hop(&aws);
        for _ in 0..5 {
            hub.get().await.unwrap();
        }
        assert_eq!(aws.assume_calls(), 1);
    }

    #[tokio::test]
    async fn credentials_with_less_than_five_minutes_left_are_assumed_again() {
        let aws = Arc::new(FakeAws {
            lifetime: Some(RENEW_MARGIN - Duration::from_secs(1)),
            ..FakeAws::default()
        });
        let hub = hop(&aws);
        let first = hub.get().await.unwrap();
        let second = hub.get().await.unwrap();
        assert_eq!(aws.assume_calls(), 2, "renewed before they expire");
        assert!(second.expiration >= first.expiration);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_assume_call() {
        let aws = Arc::new(FakeAws::default());
        let hub = Arc::new(hop(&aws));
        let gets = (0..8).map(|_| {
            let hub = hub.clone();
            tokio::spawn(async move { hub.get().await.map(drop) })
        });
        for get in futures::future::join_all(gets).await {
            get.unwrap().unwrap();
        }
        assert_eq!(aws.assume_calls(), 1);
    }
}
