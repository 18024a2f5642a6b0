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
pub mod config_file;
pub mod confirm;
pub mod credentials;
pub mod diff;
pub mod dry_run;
pub mod endpoint;
pub mod env_check;
pub mod examples;
pub mod exit_code;
pub mod filters;
pub mod identity;
pub mod ids;
pub mod layers;
pub mod listed;
pub mod logging;
pub mod malloc;
pub mod merge;
pub mod output;
pub mod output_dir;
pub mod pipeline;
pub mod place;
pub mod plan;
pub mod plan_file;
pub mod process;
pub mod progress;
pub mod raw_json;
pub mod regions;
pub mod report;
pub mod resolver;
pub mod rollout;
pub mod runner;
pub mod secret;
pub mod signals;
pub mod spool;
pub mod stop;
pub mod stream;
pub mod target_vars;
pub mod template;
pub mod text;
pub mod tree;
pub mod untrusted;
pub mod vars;
pub mod workers;
pub mod writer;

use std::io::IsTerminal;

use crate::cli::Cli;
use crate::config::Config;
use crate::exit_code::Exit;

/// Runs cove for a parsed command line. Errors mean nothing ran (exit code 2).
pub fn run(mut cli: Cli) -> anyhow::Result<Exit> {
    logging::init(cli.verbose)?;
    if let Some(cli::Subcommand::Diff(args)) = &cli.subcommand {
        return diff::run(args);
    }
    if let Some(cli::Subcommand::Merge { files }) = cli.subcommand.take() {
        let stdout = std::io::stdout();
        let pretty = stdout.is_terminal();
        return merge::merge(&files, stdout.lock(), pretty);
    }
    if let Some(warning) = cli.secrets_warning() {
        eprintln!("cove: warning: {warning}");
    }
    let config = Config::from_cli(cli)?;
    env_check::check()?;
    pipeline::run(config)
}
