//! The `cove` binary: parse, run, print the error chain once, map to an exit code.

use std::io::Write;
use std::process::ExitCode;

use cove::exit_code::Exit;
use cove::layers::{Failure, Parsed};

fn main() -> ExitCode {
    cove::malloc::tune();
    let cli = match cove::layers::parse_args(std::env::args_os()) {
        Ok(Parsed::Run(cli)) => *cli,
        Ok(Parsed::Print(text)) => {
            // `cove config`: data for stdout; a closed pipe is not an error worth a message.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(Failure::Clap(err)) => err.exit(),
        Err(Failure::Input(err)) => {
            eprintln!("cove: error: {err:#}");
            return Exit::NothingRan.into();
        }
    };
    match cove::run(cli) {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("cove: error: {err:#}");
            Exit::NothingRan.into()
        }
    }
}
