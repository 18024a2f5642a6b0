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
    files.push(("man/cove.1".to_owned(), man_page()));
    files
}

/// The man page: clap's sections, with the end of `--help` (exit codes, output) as EXTRA but
/// without its short examples, then EXAMPLES with every example and the guide's address, then
/// the version.
fn man_page() -> Vec<u8> {
    type Section = fn(&clap_mangen::Man, &mut dyn std::io::Write) -> std::io::Result<()>;
    let man = clap_mangen::Man::new(command().after_help(crate::cli::AFTER_HELP));
    let before: [Section; 7] = [
        clap_mangen::Man::render_title,
        clap_mangen::Man::render_name_section,
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_description_section,
        clap_mangen::Man::render_options_section,
        clap_mangen::Man::render_subcommands_section,
        clap_mangen::Man::render_extra_section,
    ];
    let mut page = Vec::new();
    let mut add = |section: Section| {
        // Each section comes with roff's preamble; the page needs it once, at the top.
        let mut part = Vec::new();
        section(&man, &mut part).expect("rendering to memory cannot fail");
        let preamble: &[u8] = b".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
        match part.strip_prefix(preamble) {
            Some(rest) if !page.is_empty() => page.extend_from_slice(rest),
            _ => page.extend_from_slice(&part),
        }
    };
    before.into_iter().for_each(&mut add);
    add(|_, out| out.write_all(crate::examples::man_section().as_bytes()));
    add(clap_mangen::Man::render_version_section);
    page
}
