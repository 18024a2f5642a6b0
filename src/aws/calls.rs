//! The log of cove's AWS calls, for `-v`: every call runs in a span naming its service,
//! operation, account and region; an SDK interceptor logs each attempt (retries included) with
//! its latency and HTTP status, and a failed call logs its error code. Nothing here sees a
//! request or response body, so no secret can reach the log.

use std::future::Future;
use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use tracing::Instrument;

use super::AwsError;

/// Logs each attempt of every call made through a client it is added to.
#[derive(Debug, Default)]
pub struct CallLog;

#[derive(Debug, Clone)]
struct AttemptStarted(Instant);

impl Storable for AttemptStarted {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "cove-call-log"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptStarted(Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let latency_ms = cfg
            .load::<AttemptStarted>()
            .map_or(0, |s| s.0.elapsed().as_millis() as u64);
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("?", "?"), |m| (m.service(), m.name()));
        let status = context
            .response()
            .map(|r| r.status().as_u16().to_string())
            .unwrap_or_else(|| "no response".to_owned());
        tracing::info!(
            service,
            operation,
            attempt,
            latency_ms,
            status,
            "AWS call attempt"
        );
        Ok(())
    }
}

/// Runs one call in a span naming what it is for, and logs its failure with the error code.
pub async fn logged<T>(
    service: &'static str,
    operation: &'static str,
    account: &str,
    region: &str,
    call: impl Future<Output = Result<T, AwsError>>,
) -> Result<T, AwsError> {
    let span = tracing::info_span!("aws", service, operation, account, region);
    let started = Instant::now();
    let result = call.instrument(span.clone()).await;
    if let Err(err) = &result {
        let _entered = span.enter();
        tracing::info!(
            latency_ms = started.elapsed().as_millis() as u64,
            error_code = err.code.as_deref().unwrap_or("none"),
            kind = ?err.kind,
            "AWS call failed"
        );
        if let Some(detail) = &err.detail {
            tracing::info!(%detail, "cause");
        }
    }
    result
}
