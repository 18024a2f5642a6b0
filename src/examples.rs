//! The everyday examples, written once: `cove --help` ends with the short ones and the guide's
//! address, the man page's EXAMPLES section has them all, and the README's recipes are the same
//! commands (a test holds them together, and the README's are run against the emulator).

/// One example: what it does, and the command line.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    pub what: &'static str,
    pub command: &'static str,
    /// Shown at the end of `cove --help` (the man page shows every example).
    pub in_help: bool,
}

/// The README's six everyday recipes, in its order.
pub const EXAMPLES: &[Example] = &[
    Example {
        what: "Every account, in two regions",
        command: "cove --region us-east-1,eu-west-1 -- aws ec2 describe-vpcs --output json",
        in_help: true,
    },
    Example {
        what: "One OU and everything beneath it, leaving one account out, through a shell",
        command: "cove -t ou-ab12-cdef3456 -i 111111111111 -- sh -c 'aws s3 ls | wc -l'",
        in_help: true,
    },
    Example {
        what: "Per-target arguments: {account_id}, {account_name}, {region}, {partition}",
        command: "cove -- aws ec2 describe-vpcs --filters 'Name=owner-id,Values={account_id}' --output json",
        in_help: false,
    },
    Example {
        what: "Look before you run: the account × region matrix, nothing assumed, nothing run",
        command: "cove --dry-run --filter-name '^prod-'",
        in_help: true,
    },
    Example {
        what: "Read along: each target's lines tagged with account ID, name and region",
        command: "cove -o text -- aws sts get-caller-identity --query Arn --output text",
        in_help: false,
    },
    Example {
        what: "Failures only, as JSON",
        command: "cove -- aws s3 ls | jq '.Exceptions + .FailedAssumeRole'",
        in_help: false,
    },
];

/// Where the guide lives: its contents page in the package's repository, when Cargo.toml names
/// one, else its path in cove's source.
pub fn guide_address() -> String {
    let repository = env!("CARGO_PKG_REPOSITORY").trim_end_matches('/');
    if repository.is_empty() {
        "docs/README.md in cove's source repository".to_owned()
    } else {
        format!("{repository}/blob/main/docs/README.md")
    }
}

/// The end of `cove --help`: `before` (exit codes, output), the short examples, the guide.
pub fn help_tail(before: &str) -> String {
    let mut text = format!("{before}\n\nExamples:\n");
    for e in EXAMPLES.iter().filter(|e| e.in_help) {
        text.push_str(&format!("  # {}\n  {}\n", e.what, e.command));
    }
    text.push_str(&format!("\nThe guide: {}", guide_address()));
    text
}

/// The man page's EXAMPLES section, in roff: every example, then the guide's address.
pub fn man_section() -> String {
    let mut roff = String::from(".SH EXAMPLES\n");
    for e in EXAMPLES {
        roff.push_str(&format!(
            ".TP\n{}\n.nf\n\\fB{}\\fR\n.fi\n",
            roff_escape(e.what),
            roff_escape(e.command)
        ));
    }
    roff.push_str(&format!(
        ".SH SEE ALSO\nThe guide: {}\n",
        roff_escape(&guide_address())
    ));
    roff
}

/// Text safe in a roff line: backslashes doubled, hyphens and a leading `.` or `'` guarded.
fn roff_escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_has_three_short_examples_and_the_guide() {
        let tail = help_tail("Exit codes: ...");
        assert_eq!(EXAMPLES.iter().filter(|e| e.in_help).count(), 3);
        assert!(tail.starts_with("Exit codes: ...\n\nExamples:\n"));
        assert!(tail.ends_with(&format!("The guide: {}", guide_address())));
        assert!(guide_address().contains("docs/README.md"));
        for e in EXAMPLES.iter().filter(|e| e.in_help) {
            assert!(tail.contains(e.command), "{}", e.command);
        }
    }

    #[test]
    fn the_man_section_holds_every_example_escaped() {
        let roff = man_section();
        assert!(roff.starts_with(".SH EXAMPLES\n"));
        assert_eq!(roff.matches(".TP\n").count(), EXAMPLES.len());
        assert!(roff.contains("\\fBcove \\-\\-dry\\-run \\-\\-filter\\-name '^prod\\-'\\fR"));
        assert_eq!(roff_escape(".x\\y"), "\\&.x\\ey");
        assert!(roff.contains(".SH SEE ALSO\n"));
    }
}
