//! The `cove` binary: parse, run, print the error chain once, map to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cove::cli::Cli::parse();
    match cove::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("cove: error: {err:#}");
            cove::exit_code::code(cove::exit_code::NOTHING_RAN)
        }
    }
}
