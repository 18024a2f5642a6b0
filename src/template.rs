//! Per-target placeholders in the command's arguments: `{account_id}`, `{account_name}`,
//! `{region}`, `{partition}`, `{var.NAME}` (a variable of the config files) and `{tag.KEY}`
//! (an Organizations tag of the account).
//!
//! An argument is a template only when it holds a `{word}` token (lowercase letters and `_`),
//! or a `{var.…}` or `{tag.…}` token. In a template, `{{` and `}}` stand for literal braces and
//! an unknown `{word}` is an error (checked before any AWS call, so a typo fails fast), as is
//! `{var.NAME}` with a name no config file defines, or a `{var.…}`/`{tag.…}` whose name is not
//! a variable name or a tag key. Arguments without such a token, such as JSON or
//! `sh -c '${HOME}'`, pass through unchanged.
//!
//! An account's name is chosen by that account's admin, and so are its tags; a variable comes
//! from a config file, and a project's `cove.toml` comes with its repository: `{account_name}`,
//! `{tag.KEY}` and `{var.NAME}` are untrusted:
//! - [`check`] refuses them (exit 2, before any AWS call) where a program reads code: a shell's
//!   `-c` script, an interpreter's `-c`/`-e`, PowerShell's `-Command`, an `env -S` string, an
//!   awk or sed program, an ssh or watch command line, a `flock`/`script`/`runuser` `-c`
//!   string, and the command's own name.
//! - [`render`] fails the target (its command never runs) when the value holds a control
//!   character, makes `..` a path component, or makes the argument (or an `=` value) an
//!   absolute path or a file reference (`file://`, `fileb://`, `http(s)://`, `@`), or the
//!   argument start with `-`.
//!
//! The other placeholders are checked values (IDs, regions, partitions): allowed everywhere,
//! code included. A script reads a variable from its environment (`"$COVE_VAR_NAME"`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::ops::Range;

use crate::untrusted::terminal;
use crate::vars;

pub const PLACEHOLDERS: &[&str] = &["account_id", "account_name", "region", "partition"];

/// The placeholder forms, as the unknown-placeholder error lists them.
const FORMS: &str = "{var.NAME} (a variable of the config files), {tag.KEY} (a tag of the account)";

/// Longest Organizations tag key.
const MAX_TAG_KEY: usize = 128;

/// The values for one target.
pub struct Values<'a> {
    pub account_id: &'a str,
    pub account_name: &'a str,
    pub region: &'a str,
    pub partition: &'a str,
    /// The target's variables (`{var.NAME}`).
    pub vars: &'a BTreeMap<String, String>,
    /// The account's tags the command uses (`{tag.KEY}`).
    pub tags: &'a BTreeMap<String, String>,
}

/// A placeholder, as an argument names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Placeholder {
    /// `{account_id}` and the other fixed words.
    Word(String),
    Var(String),
    Tag(String),
}

impl Placeholder {
    /// Whether the value is untrusted: chosen by the account's admin (the name, a tag), or
    /// read from a config file (a variable: a project's `cove.toml` comes with its repository).
    fn untrusted(&self) -> bool {
        matches!(self, Placeholder::Tag(_) | Placeholder::Var(_))
            || *self == Placeholder::Word("account_name".into())
    }

    /// The placeholder as written, `{account_name}` or `{tag.env}`.
    fn written(&self) -> String {
        match self {
            Placeholder::Word(w) => format!("{{{w}}}"),
            Placeholder::Var(v) => format!("{{var.{v}}}"),
            Placeholder::Tag(t) => format!("{{tag.{}}}", terminal(t)),
        }
    }
}

impl Values<'_> {
    fn get(&self, placeholder: &Placeholder) -> Option<&str> {
        match placeholder {
            Placeholder::Word(w) => match w.as_str() {
                "account_id" => Some(self.account_id),
                "account_name" => Some(self.account_name),
                "region" => Some(self.region),
                "partition" => Some(self.partition),
                _ => None,
            },
            Placeholder::Var(name) => self.vars.get(name).map(String::as_str),
            Placeholder::Tag(key) => self.tags.get(key).map(String::as_str),
        }
    }
}

/// Whether `key` may be an Organizations tag key: 1 to 128 letters, digits, spaces and
/// `_ . : / = + - @`.
pub fn valid_tag_key(key: &str) -> bool {
    !key.is_empty()
        && key.chars().count() <= MAX_TAG_KEY
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c))
}

/// The token starting at byte `i` (which holds `{`), if there is one: its text between the
/// braces, a `{word}` of lowercase letters and `_`, or `{var.…}` or `{tag.…}`.
fn token_at(arg: &str, i: usize) -> Option<&str> {
    let rest = &arg[i + 1..];
    let end = rest.find('}')?;
    let name = &rest[..end];
    let word = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let prefixed = (name.starts_with("var.") || name.starts_with("tag.")) && !name.contains('{');
    (word || prefixed).then_some(name)
}

fn is_template(arg: &str) -> bool {
    arg.char_indices()
        .any(|(i, c)| c == '{' && token_at(arg, i).is_some())
}

/// A token's placeholder, or why it is not one.
fn placeholder(token: &str, arg: &str) -> Result<Placeholder, String> {
    let hint = "in an argument with a placeholder, write {{ and }} for literal braces";
    if let Some(name) = token.strip_prefix("var.") {
        if vars::valid_name(name) {
            return Ok(Placeholder::Var(name.to_owned()));
        }
        return Err(format!(
            "`{{var.{}}}` in argument `{}`: `{}` is not a variable name; expected a letter or `_`, then letters, digits, `_` and `-` (at most {} characters)",
            terminal(name),
            terminal(arg),
            terminal(name),
            vars::MAX_NAME
        ));
    }
    if let Some(key) = token.strip_prefix("tag.") {
        if valid_tag_key(key) {
            return Ok(Placeholder::Tag(key.to_owned()));
        }
        return Err(format!(
            "`{{tag.{}}}` in argument `{}`: `{}` is not a tag key; expected 1 to {MAX_TAG_KEY} letters, digits, spaces and _ . : / = + - @",
            terminal(key),
            terminal(arg),
            terminal(key)
        ));
    }
    if !PLACEHOLDERS.contains(&token) {
        return Err(format!(
            "unknown placeholder `{{{token}}}` in argument `{}`; expected one of {}, {FORMS}, or {hint}",
            terminal(arg),
            PLACEHOLDERS
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Placeholder::Word(token.to_owned()))
}

/// One expanded argument, and where the untrusted values landed in it.
struct Expanded {
    text: String,
    /// Byte ranges of `text` that hold an untrusted value (the name, a tag), and which.
    spans: Vec<(Range<usize>, Placeholder)>,
    /// The placeholders the argument holds (even those whose value is empty).
    used: BTreeSet<Placeholder>,
}

/// Expands one argument; `values == None` only checks it.
fn expand(arg: &str, values: Option<&Values>) -> Result<Expanded, String> {
    let mut expanded = Expanded {
        text: String::with_capacity(arg.len()),
        spans: Vec::new(),
        used: BTreeSet::new(),
    };
    if !is_template(arg) {
        expanded.text.push_str(arg);
        return Ok(expanded);
    }
    let out = &mut expanded.text;
    let mut chars = arg.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let Some(token) = token_at(arg, i) else {
                    out.push('{');
                    continue;
                };
                let p = placeholder(token, arg)?;
                if let Some(values) = values {
                    let Some(v) = values.get(&p) else {
                        return Err(format!("{} has no value", p.written()));
                    };
                    if p.untrusted() {
                        expanded
                            .spans
                            .push((out.len()..out.len() + v.len(), p.clone()));
                    }
                    out.push_str(v);
                }
                expanded.used.insert(p);
                // Past the token and its closing brace.
                while chars.next_if(|(j, _)| *j <= i + token.len() + 1).is_some() {}
            }
            c => out.push(c),
        }
    }
    Ok(expanded)
}

/// The variables and tags a command uses (`{var.NAME}`, `{tag.KEY}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uses {
    pub vars: BTreeSet<String>,
    pub tags: BTreeSet<String>,
}

/// What the command's arguments use; call after [`check`] passed (a bad argument uses nothing).
pub fn uses(command: &[OsString]) -> Uses {
    let mut uses = Uses::default();
    for p in command
        .iter()
        .filter_map(|a| a.to_str())
        .filter_map(|a| expand(a, None).ok())
        .flat_map(|e| e.used)
    {
        match p {
            Placeholder::Var(v) => uses.vars.insert(v),
            Placeholder::Tag(t) => uses.tags.insert(t),
            Placeholder::Word(_) => false,
        };
    }
    uses
}

/// `{var.NAME}` with a name no config file defines.
fn undefined_var(n: usize, arg: &str, name: &str, defined: &BTreeSet<&str>) -> String {
    let known = if defined.is_empty() {
        "no variable is defined in the config files; define one in [vars], [ous.\"ou-…\".vars] or [accounts.\"111111111111\".vars] of cove.toml".to_owned()
    } else {
        format!(
            "the variables defined are {}",
            defined
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "`{{var.{name}}}` in argument {} (`{}`): variable `{name}` is not defined in any config file; {known}",
        n + 1,
        terminal(arg)
    )
}

/// Checks every argument of the command (arguments that are not UTF-8 are passed as they are):
/// placeholders are known, every `{var.NAME}` is among the `defined` variables, and the
/// account's name and tags are never put where a program reads code.
pub fn check(command: &[OsString], defined: &BTreeSet<&str>) -> Result<(), String> {
    let mut untrusted: Vec<Option<Placeholder>> = vec![None; command.len()];
    for (n, arg) in command.iter().enumerate() {
        let Some(s) = arg.to_str() else { continue };
        let used = expand(s, None)?.used;
        for p in &used {
            if let Placeholder::Var(name) = p
                && !defined.contains(name.as_str())
            {
                return Err(undefined_var(n, s, name, defined));
            }
        }
        untrusted[n] = used.into_iter().find(Placeholder::untrusted);
    }
    if untrusted.iter().all(Option::is_none) {
        return Ok(());
    }
    let words: Vec<String> = command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // The program cove runs, and the one env runs (`env FOO=1 {account_name}`).
    let program = match program_name(&words[0]) {
        "env" => Some(through_env(&words, 0).0),
        _ => None,
    };
    if let Some((n, p)) = [Some(0), program]
        .into_iter()
        .flatten()
        .find_map(|n| untrusted.get(n).cloned().flatten().map(|p| (n, p)))
    {
        return Err(match &p {
            Placeholder::Var(name) => format!(
                "`{}` in the command's name (`{}`): config files are untrusted (a project's cove.toml comes with its repository), so its value would choose the program cove runs; name the program yourself and pass the variable as an argument, or read it as \"${}\"",
                p.written(),
                terminal(&words[n]),
                vars::env_name(name)
            ),
            Placeholder::Tag(_) => format!(
                "`{}` in the command's name (`{}`): an account's admin chooses its tags, so it would choose the program cove runs; name the program yourself and pass the tag as an argument",
                p.written(),
                terminal(&words[n])
            ),
            _ => format!(
                "`{{account_name}}` in the command's name (`{}`): an account's admin chooses its name, so it would choose the program cove runs; name the program yourself and pass the name as an argument or as \"$COVE_ACCOUNT_NAME\"",
                terminal(&words[n])
            ),
        });
    }
    for code in code_arguments(&words) {
        if let Some((n, p)) = code
            .args
            .iter()
            .find_map(|n| untrusted[*n].clone().map(|p| (*n, p)))
        {
            return Err(refuse_code(&code, n, &words[n], &p));
        }
    }
    Ok(())
}

/// Why an untrusted placeholder may not be in argument `n`: a program reads it as code.
fn refuse_code(code: &Code, n: usize, word: &str, p: &Placeholder) -> String {
    match p {
        Placeholder::Var(name) => format!(
            "refusing `{}` in argument {} (`{}`): it is code that `{}` runs{}, and config files are untrusted (a project's cove.toml comes with its repository), so the variable's value would run as code on this machine. Read it from the environment instead: every command gets it as {env}, e.g. `sh -c 'echo \"${env}\"'` (in double quotes), or pass it as an argument of its own",
            p.written(),
            n + 1,
            terminal(word),
            terminal(&code.program),
            code.how,
            env = vars::env_name(name)
        ),
        Placeholder::Tag(_) => format!(
            "refusing `{}` in argument {} (`{}`): it is code that `{}` runs{}, and an account's admin chooses its tags, so the tag's value would run as code on this machine. Pass the tag as an argument of its own and read it as data, e.g. `sh -c 'echo \"$1\"' sh {}` (tags are not put in the environment)",
            p.written(),
            n + 1,
            terminal(word),
            terminal(&code.program),
            code.how,
            p.written()
        ),
        _ => format!(
            "refusing `{{account_name}}` in argument {} (`{}`): it is code that `{}` runs{}, and an account's admin chooses the account's name (AWS allows $ ( ) ; ` and / in it), so the name would run as code on this machine. Read the name from the environment instead: every command gets it as COVE_ACCOUNT_NAME, e.g. `sh -c 'echo \"report for $COVE_ACCOUNT_NAME\"'` (write \"$COVE_ACCOUNT_NAME\" in double quotes){}",
            n + 1,
            terminal(word),
            terminal(&code.program),
            code.how,
            code.safe_form
        ),
    }
}

/// Why one argument of the rendered command was refused for an untrusted value.
fn refuse_value(n: usize, arg: &str, p: &Placeholder, value: &str, why: &str) -> String {
    match p {
        Placeholder::Var(name) => format!(
            "variable `{name}` value `{}` was not put into argument {} (`{}`): {why}; the command did not run. Config files are untrusted; read such a value from {}",
            terminal(value),
            n + 1,
            terminal(arg),
            vars::env_name(name)
        ),
        Placeholder::Tag(key) => format!(
            "tag `{}` value `{}` was not put into argument {} (`{}`): {why}; the command did not run",
            terminal(key),
            terminal(value),
            n + 1,
            terminal(arg)
        ),
        _ => format!(
            "account name `{}` was not put into argument {} (`{}`): {why}; the command did not run. Use the COVE_ACCOUNT_NAME variable to read such a name",
            terminal(value),
            n + 1,
            terminal(arg)
        ),
    }
}

/// Whether an untrusted value is unsafe where it landed in one argument (`spans`): control
/// characters, a `..` path component, or an argument (or `=` value) that it makes start with
/// `/` or `-`.
fn unsafe_value(text: &str, spans: &[Range<usize>], value: &str) -> Option<&'static str> {
    if spans.is_empty() || value.is_empty() {
        return None;
    }
    if value.contains('\0') {
        return Some("it holds a NUL character");
    }
    if value.chars().any(char::is_control) {
        return Some("it holds a control character");
    }
    let in_value = |start: usize, end: usize| {
        spans
            .iter()
            .any(|s| s.start < end.max(start + 1) && start < s.end)
    };
    let mut at = 0;
    for component in text.split('/') {
        if component == ".." && in_value(at, at + component.len()) {
            return Some("it would make `..` a path component, which leaves the intended folder");
        }
        at += component.len() + 1;
    }
    for span in spans {
        let first = text[span.start..].chars().next();
        let after_equals = span.start > 0 && text.as_bytes()[span.start - 1] == b'=';
        match first {
            Some('/') if span.start == 0 || after_equals => {
                return Some("it would make the argument an absolute path");
            }
            _ if (span.start == 0 || after_equals) && reads_a_file(&text[span.start..]) => {
                return Some(
                    "it would make the argument a file reference (file://, fileb://, http(s)://, @FILE) that the AWS CLI or curl reads a local file or URL from",
                );
            }
            Some('-') if span.start == 0 => {
                return Some(
                    "it would make the argument start with `-`, an option for the command",
                );
            }
            _ => {}
        }
    }
    None
}

/// The first untrusted value of an expanded argument that is unsafe where it landed.
fn unsafe_in<'a>(
    e: &'a Expanded,
    values: &'a Values,
) -> Option<(&'a Placeholder, &'a str, &'static str)> {
    let sources: BTreeSet<&Placeholder> = e.spans.iter().map(|(_, p)| p).collect();
    sources.into_iter().find_map(|p| {
        let spans: Vec<Range<usize>> = (e.spans.iter())
            .filter(|(_, q)| q == p)
            .map(|(s, _)| s.clone())
            .collect();
        let value = values.get(p).unwrap_or_default();
        unsafe_value(&e.text, &spans, value).map(|why| (p, value, why))
    })
}

/// Whether an argument (or `=` value) starting with `text` is read as a reference to a file or
/// URL: the AWS CLI loads `file://`, `fileb://` (and, in v1, `http(s)://`) parameters, and curl
/// and many tools read `@FILE`.
fn reads_a_file(text: &str) -> bool {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    text.starts_with('@')
        || ["file://", "fileb://", "http://", "https://"]
            .iter()
            .any(|p| lower.starts_with(p))
}

/// The command for one target, or why a hostile account name or tag stops it. Call only after
/// [`check`] passed, with every variable and tag the command uses in `values`.
pub fn render(command: &[OsString], values: &Values) -> Result<Vec<OsString>, String> {
    command
        .iter()
        .enumerate()
        .map(|(n, arg)| match arg.to_str() {
            Some(s) => {
                let e = expand(s, Some(values))
                    .map_err(|why| format!("argument {}: {why}; the command did not run", n + 1))?;
                match unsafe_in(&e, values) {
                    Some((p, value, why)) => Err(refuse_value(n, s, p, value, why)),
                    None => Ok(OsString::from(e.text)),
                }
            }
            None => Ok(arg.clone()),
        })
        .collect()
}

/// Arguments that a program reads as code, found in a command line.
struct Code {
    /// The program, as the command names it.
    program: String,
    /// The arguments (indexes) read as code: a name in any of them is refused.
    args: Vec<usize>,
    how: &'static str,
    safe_form: &'static str,
}

/// How a program takes code in its arguments.
#[derive(Clone, Copy)]
enum Kind {
    /// `-c` is a flag (alone or among others, `-ec`, `-xc`, `-lc`); the first operand is the
    /// script and the later ones are its `$0`, `$1`, ... (sh, bash, dash, zsh, ksh, ...).
    Shell,
    /// These options take code as their value: `python -c CODE`, `perl -e CODE`, `fish -c`.
    Inline {
        short: &'static str,
        long: &'static [&'static str],
        /// Options that take a value (so the value is not read as an operand).
        takes_value: &'static str,
        /// Options may follow operands (GNU getopt's order, as `su USER -c CMD`).
        permute: bool,
    },
    /// The first operand is the program unless an option gave one (awk, sed).
    Program {
        short: &'static str,
        long: &'static [&'static str],
        takes_value: &'static str,
    },
    /// PowerShell: `-Command` (any abbreviation, any case) makes every later argument the
    /// command; `-CommandWithArgs` takes one.
    PowerShell,
    /// Every operand from `from` on is joined into a shell command (ssh: after the host;
    /// watch: all of them).
    Joined {
        from: usize,
        takes_value: &'static str,
    },
}

impl Kind {
    /// The short options and long options that take code, the short options that take a
    /// value, and whether options may follow operands.
    fn options(self) -> (&'static str, &'static [&'static str], &'static str, bool) {
        match self {
            Kind::Shell => ("c", &[][..], "oO", false),
            Kind::Inline {
                short,
                long,
                takes_value,
                permute,
            } => (short, long, takes_value, permute),
            Kind::Program {
                short,
                long,
                takes_value,
            } => (short, long, takes_value, false),
            Kind::Joined { takes_value, .. } => ("", &[][..], takes_value, false),
            Kind::PowerShell => ("", &[], "", false),
        }
    }
}

/// Programs that read code from their arguments, by the name they are called with (the file
/// name, without a version suffix such as `python3.12` or `ksh93`).
fn kind_of(name: &str, command_position: bool) -> Option<Kind> {
    let kind = match name {
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "pdksh" | "oksh" | "lksh" | "ash"
        | "yash" | "posh" | "hush" | "csh" | "tcsh" | "rbash" | "elvish" => Kind::Shell,
        "fish" => Kind::Inline {
            short: "cC",
            long: &["command", "init-command"],
            takes_value: "dfo",
            permute: false,
        },
        "pwsh" | "powershell" | "pwsh-preview" => Kind::PowerShell,
        "nu" | "xonsh" => Kind::Inline {
            short: "c",
            long: &["commands", "command"],
            takes_value: "",
            permute: false,
        },
        // util-linux: these run their -c string through sh -c.
        "flock" => Kind::Inline {
            short: "c",
            long: &["command"],
            takes_value: "wE",
            permute: true,
        },
        "script" if command_position => Kind::Inline {
            short: "c",
            long: &["command"],
            takes_value: "EIOTBm",
            permute: true,
        },
        "su" | "runuser" => Kind::Inline {
            short: "c",
            long: &["command", "session-command"],
            takes_value: "sgGw",
            permute: true,
        },
        // The next ones read their first operand as code: only as the command itself (or
        // through env), where that is sure.
        "awk" | "gawk" | "mawk" | "nawk" if command_position => Kind::Program {
            short: "e",
            long: &["source"],
            takes_value: "Fvfil",
        },
        "sed" | "gsed" if command_position => Kind::Program {
            short: "e",
            long: &["expression"],
            takes_value: "fl",
        },
        "ssh" if command_position => Kind::Joined {
            from: 1,
            takes_value: "BbcDEeFIiJLlmOopQRSWw",
        },
        "watch" if command_position => Kind::Joined {
            from: 0,
            takes_value: "n",
        },
        _ => return interpreter_kind(name),
    };
    Some(kind)
}

/// Interpreters that take inline code with an option (`python -c`, `perl -e`, ...).
fn interpreter_kind(name: &str) -> Option<Kind> {
    let kind = match name {
        "python" | "pypy" => Kind::Inline {
            short: "c",
            long: &[],
            takes_value: "WXm",
            permute: false,
        },
        "perl" => Kind::Inline {
            short: "eE",
            long: &[],
            takes_value: "I",
            permute: false,
        },
        "ruby" => Kind::Inline {
            short: "e",
            long: &[],
            takes_value: "IrCEF",
            permute: false,
        },
        "node" | "nodejs" | "bun" => Kind::Inline {
            short: "ep",
            long: &["eval", "print"],
            takes_value: "rC",
            permute: false,
        },
        "php" => Kind::Inline {
            short: "rRBE",
            long: &[],
            takes_value: "cdzf",
            permute: false,
        },
        "lua" | "luajit" => Kind::Inline {
            short: "e",
            long: &[],
            takes_value: "l",
            permute: false,
        },
        "Rscript" | "osascript" => Kind::Inline {
            short: "e",
            long: &["expr"],
            takes_value: "",
            permute: false,
        },
        _ => return None,
    };
    Some(kind)
}

/// A program's name as [`kind_of`] knows it: the file name, without `.exe` or a version.
fn program_name(word: &str) -> &str {
    let base = word.rsplit('/').next().unwrap_or(word);
    let base = base.strip_suffix(".exe").unwrap_or(base);
    if base == "pwsh-preview" {
        return base;
    }
    let trimmed = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let trimmed = trimmed.strip_suffix('-').unwrap_or(trimmed);
    if trimmed.is_empty() { base } else { trimmed }
}

/// The index of the command `env` runs (after its options and `NAME=VALUE` assignments), and
/// whether env was given `-S` (a string it splits into a command line itself).
fn through_env(words: &[String], at: usize) -> (usize, Option<usize>) {
    let mut i = at + 1;
    let mut split = None;
    while i < words.len() {
        let w = words[i].as_str();
        if w == "--" {
            return (i + 1, split);
        }
        if let Some(long) = w.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            if name == "split-string" {
                split = Some(if long.contains('=') { i } else { i + 1 });
            }
            if !long.contains('=') && ["unset", "chdir", "split-string"].contains(&name) {
                i += 1;
            }
        } else if let Some(cluster) = w.strip_prefix('-').filter(|c| !c.is_empty()) {
            for (k, c) in cluster.char_indices() {
                if matches!(c, 'u' | 'C' | 'S' | 'P') {
                    let attached = k + 1 < cluster.len();
                    if c == 'S' {
                        split = Some(if attached { i } else { i + 1 });
                    }
                    if !attached {
                        i += 1;
                    }
                    break;
                }
            }
        } else if w == "-" {
        } else if !w.contains('=') {
            return (i, split);
        }
        i += 1;
    }
    (i, split)
}

/// PowerShell: `-Command` (any abbreviation, any case) makes every later argument the
/// command; `-CommandWithArgs` takes one.
fn powershell_code(words: &[String], at: usize) -> Vec<usize> {
    let end = words.len();
    for (n, w) in words.iter().enumerate().skip(at + 1) {
        let lower = w.to_ascii_lowercase();
        let Some(flag) = lower.strip_prefix('-').or(lower.strip_prefix('/')) else {
            continue;
        };
        let flag = flag.split(':').next().unwrap_or(flag);
        if !flag.is_empty() && "command".starts_with(flag) {
            return (n + 1..end).collect();
        }
        if flag == "cwa" || flag == "commandwithargs" {
            return (n + 1..(n + 2).min(end)).collect();
        }
    }
    Vec::new()
}

/// A `--name[=value]` option at `i` of a program whose code options are `long`: records where
/// code is, and returns where the scan goes on.
fn long_option(
    name: &str,
    mut i: usize,
    long: &[&str],
    code: &mut Vec<usize>,
    program_given: &mut bool,
) -> usize {
    let (name, value) = match name.split_once('=') {
        Some((n, _)) => (n, true),
        None => (name, false),
    };
    if long.contains(&name) {
        let at_value = if value { i } else { i + 1 };
        code.push(at_value);
        *program_given = true;
        i = at_value;
    } else if ["rcfile", "init-file", "file"].contains(&name) && !value {
        *program_given |= name == "file";
        i += 1;
    }
    i + 1
}

/// The arguments that hold code in one program's arguments, the program being `words[at]`.
fn code_of(words: &[String], at: usize, kind: Kind) -> Vec<usize> {
    let end = words.len();
    if matches!(kind, Kind::PowerShell) {
        return powershell_code(words, at);
    }
    let (short, long, takes_value, permute) = kind.options();
    let mut code = Vec::new();
    let mut flagged = false; // Shell: -c seen
    let mut program_given = false; // Program: -e or -f gave the program
    let mut operand = None;
    let mut i = at + 1;
    while i < end {
        let w = words[i].as_str();
        if w == "--" {
            operand = (i + 1 < end).then_some(i + 1);
            break;
        }
        if let Some(name) = w.strip_prefix("--") {
            i = long_option(name, i, long, &mut code, &mut program_given);
            continue;
        }
        let cluster = match w.strip_prefix('-').or_else(|| {
            // sh family: +o, +x, ... turn options off.
            matches!(kind, Kind::Shell)
                .then(|| w.strip_prefix('+'))
                .flatten()
        }) {
            Some(c) if !c.is_empty() => c,
            _ if permute => {
                i += 1;
                continue;
            }
            _ => {
                operand = Some(i);
                break;
            }
        };
        let mut next = i + 1;
        for (k, c) in cluster.char_indices() {
            let attached = k + c.len_utf8() < cluster.len();
            if matches!(kind, Kind::Shell) {
                if c == 'c' {
                    flagged = true;
                } else if takes_value.contains(c) && !attached {
                    next = i + 2;
                }
                continue;
            }
            if short.contains(c) {
                let at_value = if attached { i } else { i + 1 };
                code.push(at_value);
                program_given = true;
                next = at_value + 1;
                break;
            }
            if takes_value.contains(c) {
                if !attached {
                    next = i + 2;
                }
                program_given |= matches!(kind, Kind::Program { .. }) && c == 'f';
                break;
            }
        }
        i = next;
    }
    code.extend(operand_code(kind, operand, flagged, program_given, end));
    code.retain(|n| *n < end);
    code
}

/// The operands that hold code once the options are read: a shell's script after `-c`, an
/// awk/sed program given by no option, or the command ssh and watch join.
fn operand_code(
    kind: Kind,
    operand: Option<usize>,
    flagged: bool,
    program_given: bool,
    end: usize,
) -> Vec<usize> {
    match (kind, operand) {
        (Kind::Shell, Some(first)) if flagged => vec![first],
        (Kind::Program { .. }, Some(first)) if !program_given => vec![first],
        (Kind::Joined { from, .. }, Some(first)) => (first + from..end).collect(),
        _ => Vec::new(),
    }
}

/// Every place in a command line where a program reads code: a shell's `-c` script (however
/// the shell is reached: an absolute path, `env`, `timeout`, `sudo`, `xargs`, ...), an
/// interpreter's `-c`/`-e` code, PowerShell's `-Command`, and, as the command itself, an awk or
/// sed program, an ssh remote command, a `watch` command; and a string `env -S` splits.
fn code_arguments(words: &[String]) -> Vec<Code> {
    let mut found = Vec::new();
    let mut command_at = 0;
    if program_name(&words[0]) == "env" {
        let (at, split) = through_env(words, 0);
        command_at = at;
        if let Some(split) = split.filter(|s| *s < words.len()) {
            found.push(Code {
                program: words[0].clone(),
                args: vec![split],
                how: " (env -S splits that string into a command line)",
                safe_form: "",
            });
        }
    }
    for (at, word) in words.iter().enumerate() {
        let name = program_name(word);
        if at > 0 && name == "env" {
            // env reached through a wrapper (`timeout 5 env -S '...'`) splits -S too.
            if let Some(split) = through_env(words, at).1.filter(|s| *s < words.len()) {
                found.push(Code {
                    program: word.clone(),
                    args: vec![split],
                    how: " (env -S splits that string into a command line)",
                    safe_form: "",
                });
            }
        }
        let Some(kind) = kind_of(name, at == command_at) else {
            continue;
        };
        let args = code_of(words, at, kind);
        if args.is_empty() {
            continue;
        }
        let (how, safe_form) = match kind {
            Kind::Shell => (
                " as its -c script",
                ", or pass {account_name} as an argument after the script and read it as \"$1\"",
            ),
            Kind::PowerShell => (
                " as its -Command",
                "; in PowerShell, $env:COVE_ACCOUNT_NAME",
            ),
            Kind::Joined { from: 1, .. } => (" as the remote shell command", ""),
            Kind::Joined { .. } => (" through sh -c", ""),
            Kind::Inline { .. } | Kind::Program { .. } => (
                " as its program",
                "; in a program, read the environment variable (os.environ, ENV, process.env, ENVIRON[...])",
            ),
        };
        found.push(Code {
            program: word.clone(),
            args,
            how,
            safe_form,
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        let vars = [("team", "core"), ("db", "/srv/db")];
        let tags = [("env", "prod"), ("cost center", "42")];
        let map = |pairs: &[(&str, &str)]| -> &'static BTreeMap<String, String> {
            Box::leak(Box::new(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ))
        };
        Values {
            account_id: "111111111111",
            account_name: "prod",
            region: "eu-west-1",
            partition: "aws",
            vars: map(&vars),
            tags: map(&tags),
        }
    }

    /// [`super::check`] with the variables `team`, `db` and `unset` defined.
    fn check(command: &[OsString]) -> Result<(), String> {
        super::check(command, &["db", "team", "unset"].into())
    }

    #[test]
    fn placeholders_expand_and_double_braces_stay_literal() {
        let cmd: Vec<OsString> = [
            "s3://audit-{account_id}/{region}/",
            "{{\"a\": \"{account_name}\"}}",
            "{partition}",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert!(check(&cmd).is_ok());
        assert_eq!(
            render(&cmd, &values()).unwrap(),
            [
                "s3://audit-111111111111/eu-west-1/",
                "{\"a\": \"prod\"}",
                "aws"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn arguments_without_placeholders_pass_unchanged() {
        let cmd: Vec<OsString> = [r#"{"a":{"b":1}}"#, "${HOME}", "${v+x}", "{", "}}"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(check(&cmd).is_ok());
        assert_eq!(render(&cmd, &values()).unwrap(), cmd);
    }

    #[test]
    fn unknown_placeholders_are_errors_naming_the_argument() {
        for bad in ["{acount_id}", "x-{regoin}", "echo ${foo}"] {
            let err = check(&[OsString::from(bad)]).unwrap_err();
            assert!(err.contains(bad), "{err}");
            assert!(err.contains("{{"), "{err}");
        }
    }

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_account_name_in_code_is_refused_however_the_program_is_reached() {
        let script = "echo \"report for {account_name}\"";
        let refused: &[&[&str]] = &[
            &["sh", "-c", script],
            &["/bin/sh", "-c", script],
            &["/usr/bin/bash", "-ec", script],
            &["sh", "-xc", script],
            &["bash", "-lc", script],
            &["bash", "-c", "--", script],
            &["bash", "-o", "pipefail", "-c", script],
            &["bash", "+o", "posix", "-e", "-c", script],
            &["bash", "--norc", "--rcfile", "x", "-c", script],
            &["dash", "-c", script],
            &["zsh", "-c", script],
            &["ksh93", "-c", script],
            &["fish", "-c", script],
            &["fish", "--command=echo {account_name}"],
            &["env", "FOO=1", "bash", "-c", script],
            &["env", "-i", "sh", "-c", script],
            &["env", "-u", "HOME", "--", "/bin/sh", "-c", script],
            &["/usr/bin/env", "-S", "sh -c 'echo {account_name}'"],
            &["env", "-iS", "sh -c 'echo {account_name}'"],
            &["timeout", "5", "sh", "-c", script],
            &["xargs", "-0", "sh", "-c", script],
            &["sudo", "-u", "x", "bash", "-c", script],
            &["pwsh", "-Command", "Write-Output '{account_name}'"],
            &["pwsh", "-NoProfile", "-c", "echo", "{account_name}"],
            &["powershell.exe", "-com", "echo {account_name}"],
            &["pwsh", "-cwa", "echo {account_name}", "x"],
            &["python3", "-c", "print('{account_name}')"],
            &[
                "python3.12",
                "-W",
                "ignore",
                "-c",
                "print('{account_name}')",
            ],
            &["perl", "-ne", "print '{account_name}'"],
            &["perl", "-e", "1", "-e", "print '{account_name}'"],
            &["ruby", "-e", "puts '{account_name}'"],
            &["node", "--eval", "console.log('{account_name}')"],
            &["su", "root", "-c", script],
            &["awk", "BEGIN {{ print \"{account_name}\" }}"],
            &["sed", "s/x/{account_name}/"],
            &["sed", "-n", "-e", "s/x/{account_name}/p", "file"],
            &["ssh", "-p", "22", "host", "echo", "{account_name}"],
            &["watch", "-n", "5", "echo {account_name}"],
            &["{account_name}", "--help"],
            &["env", "FOO=1", "{account_name}", "--help"],
            // env -S after a wrapper, not only as the command itself.
            &["timeout", "5", "env", "-S", "sh -c 'echo {account_name}'"],
            &["nice", "env", "-S", "sh -c 'echo {account_name}'"],
            // perl takes -I's directory as a separate argument.
            &["perl", "-I", "lib", "-e", "print '{account_name}'"],
            // util-linux programs that run their -c string through sh -c.
            &["flock", "/tmp/lock", "-c", script],
            &["script", "-qc", script, "/dev/null"],
            &["runuser", "u", "-c", script],
        ];
        for cmd in refused {
            let err = check(&argv(cmd)).expect_err(&format!("{cmd:?}"));
            assert!(err.contains("COVE_ACCOUNT_NAME"), "{cmd:?}: {err}");
        }
        let err = check(&argv(&["sh", "-c", script])).unwrap_err();
        assert!(err.contains("\"$COVE_ACCOUNT_NAME\""), "{err}");
        assert!(err.contains("argument 3"), "{err}");
    }

    #[test]
    fn the_account_name_as_data_and_the_other_placeholders_in_code_are_allowed() {
        let allowed: &[&[&str]] = &[
            &[
                "sh",
                "-c",
                "echo \"$COVE_ACCOUNT_NAME\" {account_id} {region} {partition}",
            ],
            &["sh", "-c", "echo \"$1\"", "sh", "{account_name}"],
            &["bash", "-c", "--", "echo \"$1\"", "bash", "{account_name}"],
            &["bash", "script.sh", "-c", "{account_name}"],
            &["sh", "{account_name}.sh"],
            &["python3", "tool.py", "-c", "{account_name}"],
            &[
                "python3",
                "-c",
                "import sys; print(sys.argv[1])",
                "{account_name}",
            ],
            &["perl", "-e", "print $ARGV[0]", "{account_name}"],
            &["awk", "-v", "n={account_name}", "BEGIN {{ print n }}"],
            &["sed", "-e", "s/x/y/", "{account_name}.txt"],
            &["aws", "s3", "cp", "x", "s3://b/{account_name}/x"],
            &["env", "NAME={account_name}", "printenv", "NAME"],
            &["sh", "-c", "echo {{account_name}}"],
        ];
        for cmd in allowed {
            assert_eq!(check(&argv(cmd)), Ok(()), "{cmd:?}");
        }
    }

    fn named(name: &str) -> Values<'_> {
        Values {
            account_name: name,
            ..values()
        }
    }

    #[test]
    fn hostile_names_fail_the_target_where_they_land() {
        let cases: &[(&[&str], &str, &str)] = &[
            (
                &["cat", "reports/{account_name}.json"],
                "../../.bashrc",
                "`..`",
            ),
            (&["cat", "reports/{account_name}"], "a/../../x", "`..`"),
            (&["cat", "reports/.{account_name}"], "./x", "`..`"),
            (&["cat", "{account_name}"], "..", "`..`"),
            (&["cat", "{account_name}"], "/etc/passwd", "absolute path"),
            (
                &["cat", "--file={account_name}"],
                "/etc/passwd",
                "absolute path",
            ),
            (&["rm", "{account_name}"], "-rf", "option"),
            (&["rm", "{account_name}.txt"], "--help", "option"),
            (
                &["echo", "x{account_name}"],
                "a\u{1b}[31m",
                "control character",
            ),
            (&["echo", "x{account_name}"], "a\nb", "control character"),
            (&["echo", "x{account_name}"], "a\0b", "NUL"),
            // The AWS CLI reads a parameter that starts with file:// or fileb:// from the
            // operator's disk (and fetches http(s):// in v1); curl and others read @FILE.
            (
                &["aws", "--message", "{account_name}"],
                "file:///home/op/.aws/credentials",
                "reads a local file or URL",
            ),
            (
                &["aws", "--message={account_name}"],
                "FileB://etc/passwd",
                "reads a local file or URL",
            ),
            (
                &["aws", "{account_name}"],
                "http://169.254.169.254/latest/meta-data/",
                "reads a local file or URL",
            ),
            (
                &["curl", "{account_name}"],
                "@/home/op/.aws/credentials",
                "reads a local file or URL",
            ),
        ];
        for (cmd, name, why) in cases {
            let err = render(&argv(cmd), &named(name)).expect_err(&format!("{cmd:?} {name:?}"));
            assert!(err.contains(why), "{cmd:?} {name:?}: {err}");
            assert!(
                err.contains("argument 2") || err.contains("argument 3"),
                "{err}"
            );
            assert!(
                !err.contains('\u{1b}') && !err.contains('\n') && !err.contains('\0'),
                "the name is escaped in the message: {err:?}"
            );
        }
    }

    #[test]
    fn ordinary_names_and_names_that_only_look_odd_render() {
        let cases: &[(&[&str], &str, &str)] = &[
            (
                &["cat", "reports/{account_name}.json"],
                "Prod (EU) $x;`y`",
                "reports/Prod (EU) $x;`y`.json",
            ),
            (
                &["cat", "reports/{account_name}"],
                "team/prod",
                "reports/team/prod",
            ),
            (&["cat", "reports/{account_name}"], "a..b", "reports/a..b"),
            (&["cat", "x-{account_name}"], "-rf", "x--rf"),
            (&["cat", "reports/{account_name}"], "/abs", "reports//abs"),
            (&["cat", "/{account_name}"], "x", "/x"),
            (&["cat", "../{account_name}"], "x", "../x"),
            (&["cat", "{account_name}"], "", ""),
        ];
        for (cmd, name, want) in cases {
            let out = render(&argv(cmd), &named(name)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out[1], OsString::from(want), "{cmd:?} {name:?}");
        }
        // Other placeholders are checked values: allowed wherever they are.
        let out = render(&argv(&["{region}", "-{account_id}"]), &values()).unwrap();
        assert_eq!(out, argv(&["eu-west-1", "-111111111111"]));
    }

    fn tagged(key: &str, value: &str) -> Values<'static> {
        let tags: BTreeMap<String, String> = [(key.to_owned(), value.to_owned())].into();
        Values {
            tags: Box::leak(Box::new(tags)),
            ..values()
        }
    }

    #[test]
    fn variables_and_tags_expand_and_are_listed_as_uses() {
        let cmd = argv(&[
            "echo",
            "{var.team}/{tag.env}",
            "{tag.cost center}-{var.db}",
            "{{var.team}}",
        ]);
        assert_eq!(check(&cmd), Ok(()));
        assert_eq!(
            render(&cmd, &values()).unwrap(),
            argv(&["echo", "core/prod", "42-/srv/db", "{var.team}"])
        );
        let u = uses(&cmd);
        assert_eq!(u.vars, ["db".to_owned(), "team".to_owned()].into());
        assert_eq!(u.tags, ["cost center".to_owned(), "env".to_owned()].into());
        assert_eq!(uses(&argv(&["echo", "{account_id}"])), Uses::default());
        // A tag key may hold the characters AWS allows, letters of any script included.
        let odd = argv(&["echo", "{tag.a:b/c=d+e-f@g.h_i}", "{tag.équipe}"]);
        assert_eq!(check(&odd), Ok(()));
    }

    #[test]
    fn a_variable_defined_nowhere_and_malformed_names_are_errors() {
        let err = check(&argv(&["echo", "x-{var.nope}"])).unwrap_err();
        assert!(
            err.contains("`nope`") && err.contains("argument 2"),
            "{err}"
        );
        assert!(err.contains("`db`, `team`, `unset`"), "{err}");
        let err = super::check(&argv(&["echo", "{var.nope}"]), &BTreeSet::new()).unwrap_err();
        assert!(
            err.contains("no variable is defined") && err.contains("[vars]"),
            "{err}"
        );
        for (bad, want) in [
            ("{var.2x}", "is not a variable name"),
            ("{var.}", "is not a variable name"),
            ("{var.a b}", "is not a variable name"),
            ("{tag.}", "is not a tag key"),
            ("{tag.a*b}", "is not a tag key"),
        ] {
            let err = check(&argv(&["echo", bad])).expect_err(bad);
            assert!(err.contains(want), "{bad}: {err}");
        }
        let long = format!("{{tag.{}}}", "k".repeat(129));
        assert!(check(&argv(&["echo", &long])).is_err());
        // The unknown-word error lists the new forms.
        let err = check(&argv(&["echo", "{team}"])).unwrap_err();
        assert!(
            err.contains("{var.NAME}") && err.contains("{tag.KEY}"),
            "{err}"
        );
    }

    #[test]
    fn a_tag_in_code_is_refused_and_a_variable_in_code_is_allowed() {
        let refused: &[&[&str]] = &[
            &["sh", "-c", "echo {tag.env}"],
            &["bash", "-ec", "deploy --env={tag.env}"],
            &["python3", "-c", "print('{tag.env}')"],
            &["env", "-S", "sh -c 'echo {tag.env}'"],
            &["{tag.env}", "--help"],
            &["env", "A=1", "{tag.env}"],
        ];
        for cmd in refused {
            let err = check(&argv(cmd)).expect_err(&format!("{cmd:?}"));
            assert!(
                err.contains("{tag.env}") && err.contains("tags"),
                "{cmd:?}: {err}"
            );
        }
        let allowed: &[&[&str]] = &[
            &["sh", "-c", "echo \"$COVE_VAR_DB $1\"", "sh", "{tag.env}"],
            &[
                "sh",
                "-c",
                "echo \"$1 $2\"",
                "sh",
                "{var.team}",
                "{tag.env}",
            ],
            &["python3", "tool.py", "{var.db}"],
        ];
        for cmd in allowed {
            assert_eq!(check(&argv(cmd)), Ok(()), "{cmd:?}");
        }
    }

    #[test]
    fn a_variable_in_code_is_refused_as_config_files_are_untrusted() {
        // A project's cove.toml comes with the repository: its values never become code.
        let refused: &[&[&str]] = &[
            &["sh", "-c", "echo {var.team}"],
            &["bash", "-ec", "deploy --db={var.db}"],
            &["python3", "-c", "print('{var.db}')"],
            &["env", "-S", "sh -c 'echo {var.team}'"],
            &["{var.team}", "--help"],
            &["env", "A=1", "{var.team}"],
        ];
        for cmd in refused {
            let err = check(&argv(cmd)).expect_err(&format!("{cmd:?}"));
            assert!(
                (err.contains("{var.team}") || err.contains("{var.db}"))
                    && err.contains("COVE_VAR_")
                    && err.contains("config file"),
                "{cmd:?}: {err}"
            );
        }
    }

    fn with_var(value: &str) -> Values<'static> {
        let vars: BTreeMap<String, String> = [("db".to_owned(), value.to_owned())].into();
        Values {
            vars: Box::leak(Box::new(vars)),
            ..values()
        }
    }

    #[test]
    fn hostile_variable_values_fail_the_target_as_a_tag_does() {
        for (value, why) in [
            ("../x", "`..`"),
            ("-rf", "option"),
            ("/etc/passwd", "absolute path"),
            ("file:///etc/passwd", "file reference"),
            ("@/etc/passwd", "file reference"),
            ("a\u{1b}[2Jb", "control character"),
        ] {
            let err = render(&argv(&["cat", "{var.db}"]), &with_var(value)).expect_err(value);
            assert!(
                err.contains(why) && err.contains("variable `db`"),
                "{value}: {err}"
            );
            assert!(!err.contains('\u{1b}'), "escaped: {err:?}");
        }
        let out = render(&argv(&["cat", "data/{var.db}.json"]), &with_var("main")).unwrap();
        assert_eq!(out[1], "data/main.json");
    }

    #[test]
    fn hostile_tag_values_fail_the_target_and_a_missing_value_stops_it() {
        for (value, why) in [
            ("../x", "`..`"),
            ("-rf", "option"),
            ("/etc/passwd", "absolute path"),
            ("file:///etc/passwd", "file reference"),
            ("a\u{1b}[2Jb", "control character"),
        ] {
            let err = render(&argv(&["cat", "{tag.env}"]), &tagged("env", value)).expect_err(value);
            assert!(
                err.contains(why) && err.contains("tag `env`"),
                "{value}: {err}"
            );
            assert!(!err.contains('\u{1b}'), "escaped: {err:?}");
        }
        let out = render(&argv(&["cat", "x-{tag.env}"]), &tagged("env", "-rf")).unwrap();
        assert_eq!(out[1], "x--rf");
        // A value the target lacks stops it rather than passing the placeholder on.
        let err = render(&argv(&["echo", "{var.unset}"]), &values()).unwrap_err();
        assert!(err.contains("{var.unset}"), "{err}");
    }
}
