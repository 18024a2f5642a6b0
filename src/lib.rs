//! cove runs one command in every AWS account and region of an organization, concurrently,
//! and reports every outcome as JSON.
//!
//! [`run`] reads as the pipeline: parse and validate ([`config`]), then [`pipeline::run`]:
//! connect to AWS, identify the caller, choose the targets ([`resolver`], [`admission`]), run
//! them ([`runner`]) and report ([`output`], [`writer`]). `ARCHITECTURE.md` has the map.

pub mod admission;
pub mod assets;
pub mod aws;
pub mod child_env;
pub mod ci_summary;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod dry_run;
pub mod endpoint;
pub mod examples;
pub mod exit_code;
pub mod filters;
pub mod ids;
pub mod logging;
pub mod merge;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod process;
pub mod progress;
pub mod regions;
pub mod resolver;
pub mod runner;
pub mod secret;
pub mod signals;
pub mod spool;
pub mod stop;
pub mod stream;
pub mod template;
pub mod text;
pub mod writer;

use std::io::IsTerminal;

use crate::cli::Cli;
use crate::config::Config;
use crate::exit_code::Exit;

/// Runs cove for a parsed command line. Errors mean nothing ran (exit code 2).
pub fn run(mut cli: Cli) -> anyhow::Result<Exit> {
    logging::init(cli.verbose)?;
    if let Some(cli::Subcommand::Merge { files }) = cli.subcommand.take() {
        let stdout = std::io::stdout();
        let pretty = stdout.is_terminal();
        return merge::merge(&files, stdout.lock(), pretty);
    }
    let config = Config::from_cli(cli)?;
    pipeline::run(config)
}
