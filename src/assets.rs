//! Shell completions and the man page, generated from the one CLI definition. The files are
//! committed under `completions/` and `man/`; `cargo run --example generate-assets` rewrites
//! them, and a test fails when they drift from the CLI.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The CLI as the generated files describe it: the package version without the commit, so
/// the files change only when the CLI does.
fn command() -> clap::Command {
    Cli::command().version(env!("CARGO_PKG_VERSION"))
}

/// Every generated file: its path relative to the repository root, and its contents.
pub fn render() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for (shell, name) in [
        (Shell::Bash, "completions/cove.bash"),
        (Shell::Zsh, "completions/_cove"),
        (Shell::Fish, "completions/cove.fish"),
        (Shell::PowerShell, "completions/_cove.ps1"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut command(), "cove", &mut buf);
        files.push((name.to_owned(), buf));
    }
    let mut man = Vec::new();
    clap_mangen::Man::new(command())
        .render(&mut man)
        .expect("rendering to memory cannot fail");
    files.push(("man/cove.1".to_owned(), man));
    files
}
