//! The `cove` binary: parse, run, print the error chain once, map to an exit code.

use std::process::ExitCode;

use cove::exit_code::Exit;

fn main() -> ExitCode {
    let cli = cove::cli::Cli::parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    match cove::run(cli) {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("cove: error: {err:#}");
            Exit::NothingRan.into()
        }
    }
}
