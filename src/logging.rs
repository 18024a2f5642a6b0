//! Logs on stderr through `tracing`: off but for cove's warnings by default, more with each
//! `-v`, or exactly what `COVE_LOG` (else `RUST_LOG`) asks for. Data never goes here, and
//! neither do secrets: credentials travel as [`crate::secret::Secret`], which never prints.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;

/// Modules whose TRACE events print what a log must not: the AWS SDK's request dumps carry
/// every header (an IAM Identity Center bearer token among them), response bodies when
/// `LOG_SENSITIVE_BODIES` is set, and the signer's and `credential_process`'s unredacted
/// inputs. Their TRACE events are dropped whatever the filter says; the rest of the SDK's
/// trace output stays.
const NO_TRACE_FROM: &[&str] = &[
    "aws_smithy_runtime::client::orchestrator",
    "aws_sigv4",
    "aws_config::credential_process",
    "aws_config::sso",
    "aws_config::login",
    "hyper",
    "h2",
];

/// Whether an event of `target` at `level` may be logged at all.
fn allowed(target: &str, level: tracing::Level) -> bool {
    level != tracing::Level::TRACE || !NO_TRACE_FROM.iter().any(|t| target.starts_with(t))
}

/// The filter for `-v` given `count` times.
fn filter_for(count: u8) -> &'static str {
    match count {
        0 => "cove=warn",
        1 => "cove=info",
        2 => "cove=debug,aws_config=info,aws_smithy_runtime=info",
        _ => "trace",
    }
}

/// Whether logs are on: a progress bar would be drawn over them, so it stays off then.
pub fn enabled(count: u8) -> bool {
    count > 0 || log_variable().is_some()
}

fn log_variable() -> Option<String> {
    log_setting().map(|(_, spec)| spec)
}

/// The log filter variable in effect (`COVE_LOG`, else `RUST_LOG`; blank counts as unset) and
/// its value.
fn log_setting() -> Option<(&'static str, String)> {
    ["COVE_LOG", "RUST_LOG"].iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (*name, v))
    })
}

/// Starts logging for the rest of the process. A `COVE_LOG`/`RUST_LOG` value that is not a
/// valid filter is an input error naming it.
pub fn init(count: u8) -> anyhow::Result<()> {
    let filter = match log_setting() {
        Some((name, spec)) => EnvFilter::try_new(&spec).map_err(|e| {
            anyhow::anyhow!(
                "invalid {name} filter `{spec}`: {e}; expected for example `cove=debug` or `info`"
            )
        })?,
        None => EnvFilter::new(filter_for(count)),
    };
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(count >= 2)
        .with_filter(filter)
        .with_filter(filter_fn(|meta| allowed(meta.target(), *meta.level())));
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdks_request_dumps_never_reach_the_log() {
        use tracing::Level;
        let orchestrator = "aws_smithy_runtime::client::orchestrator";
        assert!(!allowed(orchestrator, Level::TRACE));
        assert!(!allowed(
            "aws_smithy_runtime::client::orchestrator::http",
            Level::TRACE
        ));
        assert!(!allowed("aws_config::credential_process", Level::TRACE));
        assert!(allowed(orchestrator, Level::DEBUG));
        assert!(allowed("aws_smithy_runtime::client::retries", Level::TRACE));
        assert!(allowed("cove::runner", Level::TRACE));
    }

    #[test]
    fn each_v_shows_more() {
        assert_eq!(filter_for(0), "cove=warn");
        assert_eq!(filter_for(1), "cove=info");
        assert!(filter_for(2).starts_with("cove=debug"));
        assert_eq!(filter_for(3), "trace");
        assert_eq!(filter_for(9), "trace");
    }
}
