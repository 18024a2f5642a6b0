//! `--confirm`: before the first credential call, say what will run where and ask y/N on the
//! terminal (`/dev/tty`, never standard input, which may carry data). `--yes` answers for a
//! script. What the question quotes from AWS (account names) is escaped for the terminal.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};

use anyhow::{Context, bail};

use crate::config::Config;
use crate::credentials::Source;
use crate::plan::Target;
use crate::progress::thousands;
use crate::rollout::Confirm;
use crate::stop::Stop;
use crate::untrusted;

/// The terminal the question is asked on.
const TTY: &str = "/dev/tty";
/// How many accounts the question names before "and N more".
const NAMED_ACCOUNTS: usize = 5;

/// How the question was answered, when it was not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    /// Interrupted while waiting for the answer.
    Interrupted,
}

/// Before any AWS call: `--confirm` without `--yes` needs a terminal to ask on (exit 2).
pub fn check_terminal(config: &Config) -> anyhow::Result<()> {
    if config.run.confirm != Confirm::Ask || config.dry_run {
        return Ok(());
    }
    open_tty().map(drop)
}

fn open_tty() -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(TTY)
        .with_context(|| {
            format!("--confirm needs a terminal to ask on, and {TTY} cannot be opened; pass --yes (-y) to confirm without one")
        })
}

/// Says what will run where, and with `--confirm` asks y/N on the terminal. Anything but `y`
/// or `yes` is an error (exit 2): nothing ran, and nothing was written to stdout.
pub async fn ask(config: &Config, targets: &[Target], stop: &Stop) -> anyhow::Result<Answer> {
    let confirm = config.run.confirm;
    if !confirm.on() || targets.is_empty() {
        return Ok(Answer::Yes);
    }
    let question = question(config, targets);
    if confirm == Confirm::Yes {
        if !config.output.quiet {
            eprintln!("{question} (yes: --yes)");
        }
        return Ok(Answer::Yes);
    }
    let mut tty = open_tty()?;
    write!(tty, "{question} [y/N] ")
        .and_then(|()| tty.flush())
        .context("could not ask on the terminal")?;
    // A thread of its own: a blocking read that an interrupt leaves waiting must not hold up
    // the end of the process.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(tty).read_line(&mut line).map(|_| line);
        let _ = tx.send(read);
    });
    let line = tokio::select! {
        line = rx => line.context("could not read the answer")?,
        _ = stop.cancelled() => return Ok(Answer::Interrupted),
    };
    let line = line.context("could not read the answer from the terminal")?;
    if !line.ends_with('\n') {
        // End of input: the error starts on a line of its own, not after the question.
        eprintln!();
    }
    let answer = line.trim();
    if matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
        return Ok(Answer::Yes);
    }
    let said = if line.is_empty() {
        "no answer (end of input)".to_owned()
    } else {
        format!("the answer was `{}`", untrusted::terminal(answer))
    };
    bail!("not confirmed ({said}; expected y or yes): nothing ran")
}

/// The first accounts by ID and name (escaped), the rollout options, and last the question: "run
/// `aws ec2 describe-vpcs` in 312 accounts × 2 regions (…) = 624 targets as Role?". Each line
/// starts with `cove: `.
pub fn question(config: &Config, targets: &[Target]) -> String {
    let accounts: BTreeSet<&str> = targets.iter().map(|(a, _)| a.id.as_str()).collect();
    let regions: BTreeSet<&str> = targets.iter().map(|(_, r)| r.as_str()).collect();
    let (a, r, t) = (
        accounts.len() as u64,
        regions.len() as u64,
        targets.len() as u64,
    );
    let plural = |n: u64, one: &str, many: &str| {
        format!("{} {}", thousands(n), if n == 1 { one } else { many })
    };
    let region_list = regions.iter().copied().collect::<Vec<_>>().join(", ");
    let region_list = untrusted::terminal(&region_list);
    let r#where = if config.regions.is_all_enabled() {
        format!(
            "{} × every region each account has enabled (--region all)",
            plural(a, "account", "accounts")
        )
    } else if a * r == t {
        format!(
            "{} × {} ({region_list}) = {}",
            plural(a, "account", "accounts"),
            plural(r, "region", "regions"),
            plural(t, "target", "targets")
        )
    } else {
        format!(
            "{} ({} in {region_list})",
            plural(t, "target", "targets"),
            plural(a, "account", "accounts")
        )
    };
    let role = &config.role;
    let roles = role.role_names.join(" or ");
    let how = match role.source {
        Source::Portal => format!("with the permission set {roles}"),
        Source::AssumeRole => format!("as {roles}"),
    };
    let mut lines = vec![format!("accounts: {}", named_accounts(targets, a))];
    let policy = config.run.rollout;
    let mut rollout = Vec::new();
    if let Some(n) = policy.canary {
        rollout.push(format!("--canary {n}"));
    }
    if let Some(budget) = policy.max_failures {
        rollout.push(format!("--max-failures {budget}"));
    }
    if config.run.fail_fast {
        rollout.push("--fail-fast".to_owned());
    }
    if !rollout.is_empty() {
        lines.push(format!("with {}", rollout.join(", ")));
    }
    // The question itself goes last, next to where the answer is typed.
    lines.push(format!(
        "run `{}` in {where} {}?",
        command_line(&config.run.command),
        untrusted::terminal(&how)
    ));
    let lines: Vec<String> = lines.into_iter().map(|l| format!("cove: {l}")).collect();
    lines.join("\n")
}

/// The first accounts, by ID with their names escaped for the terminal, and how many more.
fn named_accounts(targets: &[Target], accounts: u64) -> String {
    let mut seen = BTreeSet::new();
    let mut named = Vec::new();
    for (account, _) in targets {
        if named.len() == NAMED_ACCOUNTS {
            break;
        }
        if seen.insert(account.id.as_str()) {
            named.push(match &account.name {
                Some(name) => format!("{} ({})", account.id, untrusted::terminal(name)),
                None => account.id.clone(),
            });
        }
    }
    let more = accounts.saturating_sub(named.len() as u64);
    let mut text = named.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {} more", thousands(more)));
    }
    text
}

/// The command as a shell would read it back, each argument quoted where it needs to be, and
/// escaped for the terminal.
pub fn command_line(command: &[OsString]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|arg| {
            let arg = arg.to_string_lossy();
            let plain = !arg.is_empty()
                && arg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,{}".contains(&b));
            if plain {
                arg.into_owned()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect();
    untrusted::terminal(&words.join(" ")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;

    fn config(args: &[&str]) -> Config {
        let mut argv = vec!["cove"];
        argv.extend_from_slice(args);
        Config::from_cli(Cli::parse_args(argv).unwrap()).unwrap()
    }

    fn targets(accounts: &[(&str, &str)], regions: &[&str]) -> Vec<Target> {
        let mut out = Vec::new();
        for (id, name) in accounts {
            let account = std::sync::Arc::new(crate::aws::Account {
                id: (*id).to_owned(),
                name: Some((*name).to_owned()),
                email: None,
                status: Some("ACTIVE".into()),
                parents: None,
            });
            for region in regions {
                out.push((account.clone(), (*region).to_owned()));
            }
        }
        out
    }

    #[test]
    fn the_question_counts_accounts_regions_and_targets() {
        let c = config(&[
            "--confirm",
            "--canary",
            "2",
            "--max-failures",
            "5%",
            "--",
            "aws",
            "ec2",
            "describe-vpcs",
        ]);
        let t = targets(
            &[("111111111111", "prod"), ("222222222222", "dev")],
            &["us-east-1", "eu-west-1"],
        );
        let q = question(&c, &t);
        let last = q.lines().last().unwrap();
        assert_eq!(
            last,
            "cove: run `aws ec2 describe-vpcs` in 2 accounts × 2 regions (eu-west-1, us-east-1) = 4 targets as OrganizationAccountAccessRole?",
            "{q}"
        );
        assert!(q.starts_with("cove: accounts: 111111111111 (prod), 222222222222 (dev)\n"));
        assert!(q.contains("\ncove: with --canary 2, --max-failures 5%\n"));
    }

    #[test]
    fn hostile_names_and_arguments_are_escaped_for_the_terminal() {
        let c = config(&["--confirm", "--", "sh", "-c", "echo 'a b'\x1b[2J"]);
        let t = targets(
            &[("111111111111", "evil\x1b]0;title\x07\u{202e}name\nrm")],
            &["us-east-1"],
        );
        let q = question(&c, &t);
        assert!(!q.contains('\x1b') && !q.contains('\x07') && !q.contains('\u{202e}'));
        assert_eq!(q.lines().count(), 2, "no line break from a name: {q}");
        assert!(
            q.contains(r#"run `sh -c 'echo '\''a b'\''\u{1b}[2J'`"#),
            "{q}"
        );
    }

    #[test]
    fn more_accounts_than_named_are_counted() {
        let ids: Vec<(String, String)> = (1..=8)
            .map(|i| (format!("{i:012}"), format!("a{i}")))
            .collect();
        let refs: Vec<(&str, &str)> = ids.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let t = targets(&refs, &["us-east-1"]);
        let q = question(&config(&["--confirm", "--", "true"]), &t);
        assert!(q.contains("000000000005 (a5) and 3 more"), "{q}");
        assert!(!q.contains("a6"), "{q}");
    }
}
