//! Logs on stderr through `tracing`: off but for cove's warnings by default, more with each
//! `-v`, or exactly what `COVE_LOG` (else `RUST_LOG`) asks for. Data never goes here, and
//! neither do secrets: credentials travel as [`crate::secret::Secret`], which never prints.

use tracing_subscriber::EnvFilter;

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
    ["COVE_LOG", "RUST_LOG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

/// Starts logging for the rest of the process. A `COVE_LOG`/`RUST_LOG` value that is not a
/// valid filter is an input error naming it.
pub fn init(count: u8) -> anyhow::Result<()> {
    let filter = match log_variable() {
        Some(spec) => EnvFilter::try_new(&spec).map_err(|e| {
            anyhow::anyhow!("invalid COVE_LOG/RUST_LOG filter `{spec}`: {e}; expected for example `cove=debug` or `info`")
        })?,
        None => EnvFilter::new(filter_for(count)),
    };
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(count >= 2)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_v_shows_more() {
        assert_eq!(filter_for(0), "cove=warn");
        assert_eq!(filter_for(1), "cove=info");
        assert!(filter_for(2).starts_with("cove=debug"));
        assert_eq!(filter_for(3), "trace");
        assert_eq!(filter_for(9), "trace");
    }
}
