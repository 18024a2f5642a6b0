//! How cove retries its own AWS calls: `sts:AssumeRole` and `sts:GetCallerIdentity`, the
//! Organizations calls (`ListAccounts`, `ListOrganizationalUnitsForParent`,
//! `ListAccountsForParent`, `ListTagsForResource`) and `account:ListRegions`.
//!
//! The SDK's standard strategy (3 attempts, full-jitter backoff from 1 s, one token bucket per
//! service and region) gives up too early for a tool that fans out over a whole organization:
//! three `TooManyRequestsException` answers in a row end the run. cove keeps the standard
//! strategy (exponential backoff with full jitter) and sets its numbers deliberately.
//!
//! # Attempts: [`DEFAULT_ATTEMPTS`] = 12, for every service
//!
//! Measured against independent throttling of 30% of AssumeRole attempts over 500 accounts: an
//! account is lost only if all of its attempts are throttled, so P(loss) = 0.3^attempts.
//!
//! | attempts | P(loss) per account | expected lost targets, 500 accounts |
//! |---------:|--------------------:|------------------------------------:|
//! |        3 |              0.027  |     13.5 (the SDK default)          |
//! |        8 |           6.6 × 10⁻⁵ |     0.033 (one run in 30)           |
//! |       10 |           5.9 × 10⁻⁶ |     0.0030 (one run in 340)         |
//! |       12 |           5.3 × 10⁻⁷ |     0.00027 (one run in 3,800)      |
//!
//! The same count serves Organizations and `account:ListRegions`: a throttled tag read fails the
//! whole run and a throttled ListRegions loses the account, so they deserve at least the odds
//! of AssumeRole. Extra attempts cost nothing while calls succeed; when a call keeps failing,
//! the backoff bounds how long it waits and the budget bounds how many calls do so.
//!
//! # Backoff: [`INITIAL_BACKOFF`] = 200 ms, doubling, capped at [`MAX_BACKOFF`] = 5 s
//!
//! Retry *n* waits a uniformly random time in [0, min(200 ms × 2ⁿ⁻¹, 5 s)] (the SDK's full
//! jitter). The caps run 0.2, 0.4, 0.8, 1.6, 3.2, then 5 s for each of the last six retries: a
//! call that never succeeds gives up after 18 s on average and 36 s at most. A brief throttle
//! is retried within a fraction of a second (the SDK starts at 1 s), and by the fifth retry the
//! waits are as long as the SDK's. Jitter spreads hundreds of concurrent retries instead of
//! sending them back in step.
//!
//! # Budget: [`BUDGET_TOKENS`] = 2,500 per service
//!
//! Each service (STS, Organizations, Account) has one token bucket for the whole run. A retry
//! costs [`RETRY_COST`] = 5 tokens ([`TIMEOUT_RETRY_COST`] = 10 after a timeout, a dropped
//! connection or a 5xx answer); a successful call earns [`SUCCESS_REWARD`] = 2.5 back, up to
//! the bucket's size. With no tokens left, a failed call is not retried: it fails at once.
//!
//! - **Routine throttling never empties it.** If a fraction p of attempts is throttled, each
//!   success costs 5 × p / (1 − p) tokens in retries and earns 2.5: the bucket holds while
//!   p ≤ 1/3, however large the organization. The 500-account storm at p = 0.3 makes about
//!   500 × 0.3 / 0.7 ≈ 214 retries (1,070 tokens) and earns 1,250; even with nothing earned
//!   back it would fit in 2,500 tokens (the SDK's default bucket holds 500).
//! - **A real outage fails fast.** When nothing succeeds, 2,500 tokens buy 500 retries for the
//!   whole run (250 after 5xx answers); then every call fails on its first attempt. A
//!   500-account AssumeRole outage makes about 1,000 calls instead of 500 × 12 = 6,000, and at
//!   the default 20 workers ends within about a minute instead of after several minutes of
//!   backoff.
//! - **Bursts are absorbed.** 500 retries are more than the 20 default workers make while each
//!   runs through all 11 of its retries (220), so a short total blackout fails nothing that
//!   the attempt count would have saved.
//!
//! The SDK's default accounting (one token back per first-attempt success, the retry's permit
//! refunded when a retried call succeeds) breaks even near 31% throttling too, but through a
//! single permit that a client's retry strategy holds for whichever of its concurrent calls
//! retried last. A flat reward per success gives the same protection with arithmetic that can
//! be stated and tested. The previous bucket, 100,000 tokens, never stopped anything.
//!
//! # The user's settings win
//!
//! `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE`, else the profile's `max_attempts` / `retry_mode`,
//! replace cove's attempt count and mode; the backoff and the budget stay. The SDK's own
//! clients (credential providers) get the user's settings over the SDK's standard defaults,
//! as before.

use std::time::Duration;

use aws_config::retry::{RetryConfig, RetryMode};
use aws_sdk_sts::config::retry::{RetryPartition, TokenBucket};

/// Attempts per call (the first included) unless the user sets `AWS_MAX_ATTEMPTS` or
/// `max_attempts`.
pub const DEFAULT_ATTEMPTS: u32 = 12;
/// The cap of the first retry's random wait; it doubles with every retry.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// The largest cap of a retry's random wait.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The size of each service's retry budget, and its starting balance.
pub const BUDGET_TOKENS: usize = 2_500;
/// Tokens one retry costs (throttling and other retryable errors).
pub const RETRY_COST: u32 = 5;
/// Tokens one retry after a timeout, a dropped connection or a 5xx answer costs (the SDK's
/// "transient" errors).
pub const TIMEOUT_RETRY_COST: u32 = 10;
/// Tokens a successful call earns back.
pub const SUCCESS_REWARD: f32 = 2.5;

/// The retry settings the user chose, if any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetrySettings {
    max_attempts: Option<u32>,
    mode: Option<RetryMode>,
}

impl RetrySettings {
    /// `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE`, else the profile's `max_attempts` / `retry_mode`.
    /// aws-config panics on a bad value (for example `max_attempts = 0`); here it is an error
    /// that names the value.
    pub async fn load(profile: Option<&str>) -> anyhow::Result<Self> {
        use aws_runtime::env_config::file::EnvConfigFiles;
        use aws_types::os_shim_internal::{Env, Fs};
        let profiles = aws_config::profile::load(
            &Fs::real(),
            &Env::real(),
            &EnvConfigFiles::default(),
            profile.map(|p| std::borrow::Cow::Owned(p.to_owned())),
        )
        .await
        .ok();
        let setting = |env: &'static str, key: &'static str| {
            std::env::var(env)
                .ok()
                .map(|v| (env.to_owned(), v))
                .or_else(|| {
                    profiles
                        .as_ref()
                        .and_then(|p| p.get(key))
                        .map(|v| (format!("{key} in the AWS profile"), v.to_owned()))
                })
        };
        Self::from_settings(
            setting("AWS_MAX_ATTEMPTS", "max_attempts"),
            setting("AWS_RETRY_MODE", "retry_mode"),
        )
    }

    /// Settings from `(where it was set, value)` pairs.
    fn from_settings(
        attempts: Option<(String, String)>,
        mode: Option<(String, String)>,
    ) -> anyhow::Result<Self> {
        let mut settings = RetrySettings::default();
        if let Some((source, value)) = attempts {
            let n = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<u32>().ok())
                .flatten()
                .filter(|n| *n >= 1);
            let Some(n) = n else {
                anyhow::bail!("invalid {source} `{value}`: expected a whole number of at least 1");
            };
            settings.max_attempts = Some(n);
        }
        if let Some((source, value)) = mode {
            settings.mode = Some(match value.as_str() {
                "standard" => RetryMode::Standard,
                "adaptive" => RetryMode::Adaptive,
                _ => anyhow::bail!("invalid {source} `{value}`: expected `standard` or `adaptive`"),
            });
        }
        Ok(settings)
    }

    /// For the SDK's own clients (credential providers): the user's settings over the SDK's
    /// standard mode.
    pub fn for_sdk(&self) -> RetryConfig {
        self.apply(RetryConfig::standard())
    }

    /// For cove's STS, Organizations and Account clients: the user's settings over cove's
    /// defaults (see the module documentation).
    pub fn for_cove(&self) -> RetryConfig {
        self.apply(
            RetryConfig::standard()
                .with_max_attempts(DEFAULT_ATTEMPTS)
                .with_initial_backoff(INITIAL_BACKOFF)
                .with_max_backoff(MAX_BACKOFF),
        )
    }

    fn apply(&self, mut config: RetryConfig) -> RetryConfig {
        if let Some(n) = self.max_attempts {
            config = config.with_max_attempts(n);
        }
        if let Some(mode) = self.mode {
            config = config.with_retry_mode(mode);
        }
        config
    }
}

/// A fresh retry budget (see the module documentation), named for one service. Every client
/// given the same partition (clones included) draws on the same bucket.
pub fn budget(name: &'static str) -> RetryPartition {
    RetryPartition::custom(name)
        .token_bucket(
            TokenBucket::builder()
                .capacity(BUDGET_TOKENS)
                .retry_cost(RETRY_COST)
                .throttling_retry_cost(RETRY_COST)
                .timeout_retry_cost(TIMEOUT_RETRY_COST)
                .success_reward(SUCCESS_REWARD)
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(source: &str, value: &str) -> Option<(String, String)> {
        Some((source.to_owned(), value.to_owned()))
    }

    #[test]
    fn bad_retry_settings_are_errors_naming_the_value_not_panics() {
        for (attempts, mode, expected) in [
            (
                setting("AWS_MAX_ATTEMPTS", "0"),
                None,
                "AWS_MAX_ATTEMPTS `0`",
            ),
            (
                setting("AWS_MAX_ATTEMPTS", " 3"),
                None,
                "AWS_MAX_ATTEMPTS ` 3`",
            ),
            (
                setting("max_attempts in the AWS profile", "x"),
                None,
                "max_attempts in the AWS profile `x`",
            ),
            (
                None,
                setting("AWS_RETRY_MODE", "fast"),
                "AWS_RETRY_MODE `fast`",
            ),
        ] {
            let err = RetrySettings::from_settings(attempts, mode)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn without_settings_cove_uses_its_own_defaults_and_the_sdk_keeps_its_own() {
        let settings = RetrySettings::from_settings(None, None).unwrap();
        let cove = settings.for_cove();
        assert_eq!(cove.mode(), RetryMode::Standard);
        assert_eq!(cove.max_attempts(), DEFAULT_ATTEMPTS);
        assert_eq!(cove.initial_backoff(), INITIAL_BACKOFF);
        assert_eq!(cove.max_backoff(), MAX_BACKOFF);
        let sdk = settings.for_sdk();
        assert_eq!(sdk.max_attempts(), RetryConfig::standard().max_attempts());
        assert_eq!(
            sdk.initial_backoff(),
            RetryConfig::standard().initial_backoff()
        );
    }

    #[test]
    fn the_users_attempts_and_mode_win_and_cove_keeps_its_backoff() {
        let settings = RetrySettings::from_settings(
            setting("AWS_MAX_ATTEMPTS", "7"),
            setting("AWS_RETRY_MODE", "adaptive"),
        )
        .unwrap();
        for config in [settings.for_cove(), settings.for_sdk()] {
            assert_eq!(config.max_attempts(), 7);
            assert_eq!(config.mode(), RetryMode::Adaptive);
        }
        assert_eq!(settings.for_cove().initial_backoff(), INITIAL_BACKOFF);
        let one =
            RetrySettings::from_settings(setting("max_attempts in the AWS profile", "1"), None)
                .unwrap();
        assert_eq!(one.for_cove().max_attempts(), 1);
    }

    /// An STS endpoint that answers `GetCallerIdentity` with `Throttling` whenever
    /// `throttled(n)` says so for its n-th answer (0-based), and counts its answers.
    #[derive(Debug, Clone)]
    struct Sts {
        answers: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        throttled: fn(usize) -> bool,
    }

    impl aws_smithy_runtime_api::client::http::HttpConnector for Sts {
        fn call(
            &self,
            _: aws_sdk_sts::config::http::HttpRequest,
        ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
            let n = self
                .answers
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (status, body) = if (self.throttled)(n) {
                (
                    400,
                    "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
                     <Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>",
                )
            } else {
                (
                    200,
                    "<GetCallerIdentityResponse><GetCallerIdentityResult>\
                     <Arn>arn:aws:iam::123456789012:user/t</Arn><UserId>AIDA</UserId>\
                     <Account>123456789012</Account></GetCallerIdentityResult>\
                     </GetCallerIdentityResponse>",
                )
            };
            aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Ok(
                aws_sdk_sts::config::http::HttpResponse::new(
                    status.try_into().unwrap(),
                    aws_smithy_types::body::SdkBody::from(body),
                ),
            ))
        }
    }

    /// An STS client with cove's default policy and a fresh budget, in front of [`Sts`].
    fn sts_client(throttled: fn(usize) -> bool) -> (aws_sdk_sts::Client, Sts) {
        use aws_smithy_runtime_api::client::http::{SharedHttpConnector, http_client_fn};
        let sts = Sts {
            answers: Default::default(),
            throttled,
        };
        let connector = sts.clone();
        let config = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .http_client(http_client_fn(move |_, _| {
                SharedHttpConnector::new(connector.clone())
            }))
            .retry_config(RetrySettings::default().for_cove())
            .retry_partition(budget("cove-test"))
            .build();
        (aws_sdk_sts::Client::from_conf(config), sts)
    }

    // Backoff sleeps run on tokio's paused clock, so these take no real time.
    #[tokio::test(start_paused = true)]
    async fn an_outage_spends_the_budget_then_fails_every_call_at_its_first_attempt() {
        let (client, sts) = sts_client(|_| true);
        let calls = (0..200).map(|_| client.get_caller_identity().send());
        let results = futures::future::join_all(calls).await;
        assert!(results.iter().all(|r| r.is_err()));
        let answers = sts.answers.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            answers,
            200 + BUDGET_TOKENS / RETRY_COST as usize,
            "500 retries in all, not 11 for each of the 200 calls"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn routine_throttling_is_paid_for_by_the_successes() {
        // One answer in three throttled, 2,000 calls: 1,000 retries (5,000 tokens) that would
        // empty the bucket twice over without what the 2,000 successes earn back.
        let (client, sts) = sts_client(|n| n % 3 == 0);
        for call in 0..2000 {
            client
                .get_caller_identity()
                .send()
                .await
                .unwrap_or_else(|e| panic!("call {call}: {e:?}"));
        }
        assert_eq!(sts.answers.load(std::sync::atomic::Ordering::SeqCst), 3000);
    }

    #[test]
    fn defaults_hold_the_documented_odds_and_budget() {
        // 500 accounts, 30% of AssumeRole attempts throttled: under one lost target in 1,000 runs.
        let lost_per_run = 500.0 * 0.3_f64.powi(DEFAULT_ATTEMPTS as i32);
        assert!(lost_per_run < 1e-3, "{lost_per_run}");
        // The budget breaks even at one throttled attempt in three.
        let p = 1.0 / 3.0;
        assert!(RETRY_COST as f32 * p / (1.0 - p) <= SUCCESS_REWARD + 1e-6);
        // The 500-account storm's expected retries fit even without rewards; an outage stops
        // after 500 retries.
        assert!(500.0 * 0.3 / 0.7 * RETRY_COST as f64 * 2.0 < BUDGET_TOKENS as f64);
        assert_eq!(BUDGET_TOKENS / RETRY_COST as usize, 500);
    }
}
