//! The command line with the config files under it. What wins, highest first: a flag, its
//! `COVE_*` variable, the group chosen with `-g`, the project file, the user file, the
//! default (docs/configuration.md). Each setting a file supplies is put on the command line
//! for clap to parse like a flag, and `cli::Origins` records the file and line it came from,
//! so messages about a bad value name it. `cove config` prints the result.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::bail;
use clap::CommandFactory;
use clap::parser::ValueSource;

use crate::cli::Cli;
use crate::config_file::{self, Candidate, File, Setting};
use crate::untrusted;

/// What the command line asks for, once the config files are applied.
#[derive(Debug)]
pub enum Parsed {
    /// A run (or `cove merge`).
    Run(Box<Cli>),
    /// Text for stdout (`cove config`), and nothing else to do.
    Print(String),
}

/// Why the command line could not be parsed: clap's own error (usage, `--help`), or bad
/// input found in a config file (exit 2).
#[derive(Debug)]
pub enum Failure {
    Clap(clap::Error),
    Input(anyhow::Error),
}

impl From<clap::Error> for Failure {
    fn from(err: clap::Error) -> Failure {
        Failure::Clap(err)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Failure {
        Failure::Input(err)
    }
}

/// Parses `argv` (the program name first) with the config files applied.
pub fn parse_args<I, T>(argv: I) -> Result<Parsed, Failure>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let scan = Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(&argv)?;
    match scan.subcommand_name() {
        Some("merge") => Ok(Parsed::Run(Box::new(Cli::parse_args(argv)?))),
        Some("config") => {
            let cli = Cli::parse_args(&argv)?;
            let Some(crate::cli::Subcommand::Config { paths, options }) = cli.subcommand else {
                unreachable!("the subcommand is config");
            };
            let paths = paths || options.iter().any(|o| o == "--paths");
            let mut inner = vec![argv.first().cloned().unwrap_or_else(|| "cove".into())];
            inner.extend(options.into_iter().filter(|o| o != "--paths"));
            let applied = apply(relaxed(), &inner)?;
            Ok(Parsed::Print(if paths {
                show_paths(&applied)
            } else {
                show_settings(&applied)
            }))
        }
        _ => Ok(Parsed::Run(Box::new(apply(Cli::command(), &argv)?.cli))),
    }
}

/// The CLI for `cove config`: no command needed.
fn relaxed() -> clap::Command {
    Cli::command().mut_arg("command", |a| {
        a.required_unless_present(clap::builder::Resettable::<clap::Id>::Reset)
    })
}

/// The command line with the config layers applied.
struct Applied {
    cli: Cli,
    /// The parsed words, for `cove config`.
    matches: clap::ArgMatches,
    cmd: clap::Command,
    candidates: Vec<Candidate>,
    group: Option<(String, config_file::Place)>,
}

/// Reads the config files `argv` asks for, and parses `argv` with their settings under it.
fn apply(cmd: clap::Command, argv: &[OsString]) -> Result<Applied, Failure> {
    let mut cmd = cmd;
    cmd.build();
    // What is wrong with the command line and the variables themselves is reported as it is,
    // whatever the files say; only what a file may still supply (the command with a file's
    // `dry-run`, an option another one requires) waits for the files.
    if let Err(err) = Cli::parse_with(cmd.clone(), argv) {
        use clap::error::ErrorKind;
        if !matches!(
            err.kind(),
            ErrorKind::MissingRequiredArgument | ErrorKind::MissingSubcommand
        ) {
            return Err(Failure::Clap(err));
        }
    }
    let scan = cmd.clone().ignore_errors(true).try_get_matches_from(argv)?;
    let named = scan
        .try_get_one::<PathBuf>("config")
        .ok()
        .flatten()
        .map(|path| {
            let option = match scan.value_source("config") {
                Some(ValueSource::EnvVariable) => "COVE_CONFIG",
                _ => "--config",
            };
            (path.clone(), option.to_owned())
        });
    let candidates = config_file::candidates(
        named,
        scan.try_get_one::<bool>("no_config").ok().flatten() == Some(&true),
    )?;
    let mut files: Vec<File> = Vec::new();
    for candidate in candidates.iter().filter(|c| c.exists) {
        if matches!(candidate.role.as_str(), "user" | "project") {
            config_file::check_found(&candidate.path)?;
        }
        files.push(config_file::read(&cmd, &candidate.path)?);
    }
    let group_name = scan.try_get_one::<String>("group").ok().flatten().cloned();
    let (layers, group) = layers(&files, group_name.as_deref(), &scan)?;
    let injected = injected(&cmd, &layers, &scan);
    let mut words: Vec<OsString> = argv.iter().take(1).cloned().collect();
    words.extend(injected.values().flat_map(|s| s.words.iter().cloned()));
    words.extend(argv.iter().skip(1).cloned());
    let (mut cli, matches) =
        Cli::parse_with_matches(cmd.clone(), &words).map_err(|e| name_the_file(e, &injected))?;
    for (id, setting) in &injected {
        cli.origins.from_file(id, setting.place.to_string());
    }
    cli.vars = variables(&files)?;
    Ok(Applied {
        cli,
        matches,
        cmd,
        candidates,
        group,
    })
}

/// The files' variables and per-account regions, each file over the one before (the project
/// file over the user file); two names that would give the child the same environment
/// variable are an input error.
fn variables(files: &[File]) -> anyhow::Result<crate::vars::VarsConfig> {
    let mut vars = crate::vars::VarsConfig::default();
    for file in files {
        vars.overlay(&file.vars);
    }
    if let Some((a, b, env)) = vars.env_clash() {
        let at = |name: &str| {
            vars.place_of(name)
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        };
        anyhow::bail!(
            "variables `{a}`{} and `{b}`{} would both be {env} in the command's environment; rename one",
            at(&a),
            at(&b)
        );
    }
    Ok(vars)
}

/// The settings the layers supply, by argument id: the highest layer's, for every option the
/// command line and the variables leave unset (and that they do not rule out).
fn injected(
    cmd: &clap::Command,
    layers: &Layers<'_>,
    scan: &clap::ArgMatches,
) -> BTreeMap<String, Setting> {
    let given: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| given(scan, a)).collect();
    let mut injected: BTreeMap<String, Setting> = BTreeMap::new();
    // A plan typed (or in its variable) already chose the targets: a file's selection gives
    // way to it, with a note, where a typed selection is refused (plan_file::refuse_selection).
    let planned = given.iter().any(|g| g.get_id() == "plan");
    let mut set_aside: Vec<String> = Vec::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        // The highest layer's setting.
        let Some(setting) = layers.iter().rev().find_map(|layer| layer.get(id)) else {
            continue;
        };
        if planned && crate::plan_file::decided_by_the_plan(id) {
            set_aside.push(format!("{} ({})", flag_of(setting), setting.place));
            continue;
        }
        // A file's setting that the command line's own options rule out (a file's `target`
        // with `--rerun`) gives way to them.
        if given
            .iter()
            .any(|g| g.get_id() == arg.get_id() || conflict(cmd, g, arg))
        {
            continue;
        }
        injected.insert(id.to_owned(), setting.clone());
    }
    if !set_aside.is_empty() {
        eprintln!(
            "cove: note: the plan already chose the accounts and regions; ignoring the config file's {}",
            untrusted::terminal(&set_aside.join(", "))
        );
    }
    injected
}

/// Whether `arg` was given on the command line or by its variable.
fn given(scan: &clap::ArgMatches, arg: &clap::Arg) -> bool {
    matches!(
        scan.value_source(arg.get_id().as_str()),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    ) || arg
        .get_env()
        .is_some_and(|var| std::env::var_os(var).is_some())
}

/// Options that are each other's alternative though clap lets both be typed (config.rs
/// refuses the pair with its own message): a file's one gives way to the other typed. Only
/// the role itself: a file's session policy, external ID or duration does not silently drop
/// away when `--sso-role` is typed (config.rs refuses the pair, naming the file).
const ALTERNATIVES: &[(&str, &str)] = &[("sso_role", "role")];

/// Whether `a` and `b` cannot be used together (either one declares it).
fn conflict(cmd: &clap::Command, a: &clap::Arg, b: &clap::Arg) -> bool {
    let pair = (a.get_id().as_str(), b.get_id().as_str());
    ALTERNATIVES
        .iter()
        .any(|&(x, y)| (x, y) == pair || (y, x) == pair)
        || cmd
            .get_arg_conflicts_with(a)
            .iter()
            .any(|c| c.get_id() == b.get_id())
        || cmd
            .get_arg_conflicts_with(b)
            .iter()
            .any(|c| c.get_id() == a.get_id())
}

type Layers<'a> = Vec<&'a BTreeMap<String, Setting>>;

/// The layers, lowest first: each file's settings, then the group's; and the group chosen,
/// with where it is defined.
fn layers<'a>(
    files: &'a [File],
    group: Option<&str>,
    scan: &clap::ArgMatches,
) -> anyhow::Result<(Layers<'a>, Option<(String, config_file::Place)>)> {
    let mut layers: Layers<'a> = files.iter().map(|f| &f.settings).collect();
    let Some(name) = group else {
        return Ok((layers, None));
    };
    // The highest file that defines the group holds it (groups are not merged across files).
    let Some((file, found)) = files
        .iter()
        .rev()
        .find_map(|f| f.groups.get(name).map(|g| (f, g)))
    else {
        let option = match scan.value_source("group") {
            Some(ValueSource::EnvVariable) => "COVE_GROUP",
            _ => "--group",
        };
        let mut defined: Vec<String> = files
            .iter()
            .flat_map(|f| f.groups.keys())
            .map(|g| untrusted::terminal(g).into_owned())
            .collect();
        defined.sort();
        defined.dedup();
        let read: Vec<String> = files
            .iter()
            .map(|f| untrusted::terminal(&f.path.display().to_string()).into_owned())
            .collect();
        let expected = if defined.is_empty() {
            format!(
                "no group is defined (files read: {})",
                if read.is_empty() {
                    "none".to_owned()
                } else {
                    read.join(", ")
                }
            )
        } else {
            format!("expected one of: {}", defined.join(", "))
        };
        bail!(
            "{option} `{}`: no such group in the config files; {expected}",
            untrusted::terminal(name)
        );
    };
    layers.push(&found.settings);
    let place = config_file::Place {
        path: file.path.clone(),
        line: found.line,
        group: None,
    };
    Ok((layers, Some((name.to_owned(), place))))
}

/// The flag a setting is put on the command line as (`--region`).
fn flag_of(setting: &Setting) -> String {
    let word = setting
        .words
        .first()
        .map(|w| w.to_string_lossy().into_owned())
        .unwrap_or_default();
    word.split('=').next().unwrap_or_default().to_owned()
}

/// A clap error about options a config file supplied names the file and line.
fn name_the_file(err: clap::Error, injected: &BTreeMap<String, Setting>) -> Failure {
    use clap::error::ErrorKind;
    if injected.is_empty()
        || matches!(
            err.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        )
    {
        return Failure::Clap(err);
    }
    let text = err.render().to_string();
    let blamed: Vec<String> = injected
        .values()
        .filter(|s| {
            let flag = s.words.first().map(|w| {
                let w = w.to_string_lossy();
                w.split('=').next().unwrap_or_default().to_owned()
            });
            flag.is_some_and(|f| text.contains(&format!("'{f}")))
        })
        .map(|s| {
            let flag = s.words[0].to_string_lossy();
            format!(
                "{} from {}",
                flag.split('=').next().unwrap_or_default(),
                s.place
            )
        })
        .collect();
    if blamed.is_empty() {
        return Failure::Clap(err);
    }
    let text = text.trim_start_matches("error: ");
    let sentence = text.split("\n\n").next().unwrap_or(text).trim_end();
    Failure::Clap(Cli::command().error(err.kind(), format!("{sentence} ({})", blamed.join("; "))))
}

/// Options `cove config` does not list: questions, the command, and the config options
/// themselves (shown in the heading).
const NOT_SETTINGS: &[&str] = &["help", "version", "command", "config", "no_config", "group"];

/// `cove config`: the effective settings as TOML, each with its source in a comment.
fn show_settings(applied: &Applied) -> String {
    let mut out = String::from("# cove's effective settings; each value's source follows it.\n");
    for c in applied.candidates.iter().filter(|c| c.exists) {
        out.push_str(&format!(
            "# read: {}\n",
            comment(&c.path.display().to_string())
        ));
    }
    if let Some((name, place)) = &applied.group {
        out.push_str(&format!(
            "# group: {} ([groups.{}] at {place})\n",
            comment(name),
            comment(name)
        ));
    }
    for arg in applied.cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let (Some(long), Some(source)) = (arg.get_long(), applied.matches.value_source(id)) else {
            continue;
        };
        if NOT_SETTINGS.contains(&id) {
            continue;
        }
        let origins = &applied.cli.origins;
        let from = match (source, origins.file(id), origins.variable(id)) {
            (_, Some(place), _) => place.to_owned(),
            (_, None, Some(var)) => var.to_owned(),
            (ValueSource::CommandLine, _, _) => format!("--{long}"),
            _ => "default".to_owned(),
        };
        let value = show_value(arg, &applied.matches);
        out.push_str(&format!("{long} = {value}  # {}\n", comment(&from)));
    }
    out.push_str(&show_vars(&applied.cli.vars));
    out
}

/// The files' variables and per-account regions as TOML tables (`[vars]`, `[ous."…"]`,
/// `[accounts."…"]`), each value followed by the file and line it came from. Names, IDs and
/// regions were checked when the files were read; values are quoted as TOML strings.
fn show_vars(vars: &crate::vars::VarsConfig) -> String {
    use crate::vars::Value;
    let table = |header: &str, values: &std::collections::BTreeMap<String, Value>| {
        let mut out = format!("\n[{header}]\n");
        for (name, v) in values {
            let (value, at) = (toml_string(&v.value), comment(&v.place.to_string()));
            out.push_str(&format!("{name} = {value}  # {at}\n"));
        }
        out
    };
    let mut out = String::new();
    if !vars.defaults.is_empty() {
        out.push_str(&table("vars", &vars.defaults));
    }
    for (kind, entries) in [("ous", &vars.ous), ("accounts", &vars.accounts)] {
        for (id, entry) in entries {
            let header = format!("{kind}.{}", toml_string(id));
            if let Some((regions, place)) = &entry.regions {
                let list: Vec<String> = regions.iter().map(|r| toml_string(r)).collect();
                out.push_str(&format!(
                    "\n[{header}]\nregion = [{}]  # {}\n",
                    list.join(", "),
                    comment(&place.to_string())
                ));
            }
            if !entry.vars.is_empty() {
                out.push_str(&table(&format!("{header}.vars"), &entry.vars));
            }
        }
    }
    out
}

/// A value as TOML, secrets hidden: an external ID or a session policy shows as its `@FILE`
/// or `<set>`.
fn show_value(arg: &clap::Arg, matches: &clap::ArgMatches) -> String {
    use clap::ArgAction;
    let id = arg.get_id().as_str();
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => {
            let on = matches.get_flag(id) == matches!(arg.get_action(), ArgAction::SetTrue);
            return on.to_string();
        }
        ArgAction::Count => return matches.get_count(id).to_string(),
        _ => {}
    }
    let secret = arg.is_hide_env_values_set() || id == "mfa_code";
    let numeric = {
        let t = arg.get_value_parser().type_id();
        [
            clap::builder::ValueParser::new(clap::value_parser!(u32)).type_id(),
            clap::builder::ValueParser::new(clap::value_parser!(i32)).type_id(),
            // `N|auto`: a count shows as a number, as it did before `auto`.
            clap::builder::ValueParser::new(crate::workers::parse_workers).type_id(),
        ]
        .contains(&t)
    };
    let values: Vec<String> = matches
        .get_raw(id)
        .into_iter()
        .flatten()
        .map(|v| {
            let v = v.to_string_lossy();
            if secret && !v.starts_with('@') {
                toml_string("<set>")
            } else if numeric && v.parse::<i64>().is_ok() {
                v.into_owned()
            } else {
                toml_string(&v)
            }
        })
        .collect();
    if matches!(arg.get_action(), ArgAction::Append) {
        format!("[{}]", values.join(", "))
    } else {
        values
            .into_iter()
            .next()
            .unwrap_or_else(|| "\"\"".to_owned())
    }
}

/// A TOML basic string; every control character and reordering mark as a `\u` escape, so
/// nothing from a file or a variable reaches the terminal as it is.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if untrusted::terminal(c.encode_utf8(&mut [0; 4])) != c.to_string() => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a TOML comment: one line, escaped.
fn comment(text: &str) -> String {
    untrusted::terminal(text).into_owned()
}

/// `cove config --paths`: the files looked for, and whether each was read.
fn show_paths(applied: &Applied) -> String {
    if applied.candidates.is_empty() {
        return "# --no-config: no config file is read\n".to_owned();
    }
    let mut out = String::new();
    for c in &applied.candidates {
        let state = if c.exists { "read" } else { "not found" };
        out.push_str(&format!(
            "{}\t{state}\t{}\n",
            c.role,
            comment(&c.path.display().to_string())
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_escape_what_a_terminal_would_act_on() {
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            toml_string("x\u{1b}[31m\u{202e}"),
            "\"x\\u001B[31m\\u202E\""
        );
    }

    #[test]
    fn variables_show_as_toml_with_their_places_and_hostile_values_stay_on_their_line() {
        use crate::vars::{Entry, Value, VarsConfig};
        let at = |line| config_file::Place {
            path: "/p/cove.toml".into(),
            line,
            group: None,
        };
        let value = |v: &str, line| Value {
            value: v.to_owned(),
            place: at(line),
        };
        let vars = VarsConfig {
            defaults: [("team".to_owned(), value("a\n[x]\u{1b}[2J\"", 2))].into(),
            ous: [(
                "ou-ab12-cdef3456".to_owned(),
                Entry {
                    vars: [("team".to_owned(), value("pay", 5))].into(),
                    regions: Some((vec!["eu-west-1".to_owned()], at(4))),
                },
            )]
            .into(),
            accounts: [(
                "111111111111".to_owned(),
                Entry {
                    vars: [("db".to_owned(), value("main", 8))].into(),
                    regions: None,
                },
            )]
            .into(),
        };
        let shown = show_vars(&vars);
        assert_eq!(
            shown,
            "\n[vars]\nteam = \"a\\u000A[x]\\u001B[2J\\\"\"  # /p/cove.toml:2\n\
             \n[ous.\"ou-ab12-cdef3456\"]\nregion = [\"eu-west-1\"]  # /p/cove.toml:4\n\
             \n[ous.\"ou-ab12-cdef3456\".vars]\nteam = \"pay\"  # /p/cove.toml:5\n\
             \n[accounts.\"111111111111\".vars]\ndb = \"main\"  # /p/cove.toml:8\n"
        );
        let parsed: toml::Table = shown.parse().expect("valid TOML");
        assert_eq!(parsed["vars"]["team"].as_str(), Some("a\n[x]\u{1b}[2J\""));
        assert_eq!(show_vars(&VarsConfig::default()), "");
    }
}
