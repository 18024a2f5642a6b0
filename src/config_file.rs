//! Config files (TOML): where they are looked for, and each key checked against the CLI and
//! turned into the command-line words that set it. A key is a long flag's name without its
//! dashes; the value is checked by the flag's own parser, so a file can hold exactly what the
//! command line can, and every error names the file and the line. [`crate::layers`] applies
//! the files, and a group, under the flags and variables.
//!
//! Config files are untrusted: what an error quotes from one is escaped for the terminal,
//! and secrets have no place in them (`external-id` only as `@FILE`, never `mfa-code`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::ids::OrgId;
pub use crate::place::Place;
use crate::untrusted;
use crate::vars::{self, Entry, VarsConfig};

/// One setting: the CLI argument it sets, the words that set it, and where it was written.
#[derive(Debug, Clone)]
pub struct Setting {
    pub id: String,
    pub words: Vec<OsString>,
    pub place: Place,
}

/// The settings of one table (the top of a file, or a group), by argument id.
pub type Settings = BTreeMap<String, Setting>;

/// A group of a file: the line of its header, and its settings.
#[derive(Debug, Clone)]
pub struct Group {
    pub line: usize,
    pub settings: Settings,
}

/// One config file, read and checked.
#[derive(Debug, Clone)]
pub struct File {
    pub path: PathBuf,
    pub settings: Settings,
    pub groups: BTreeMap<String, Group>,
    /// `[vars]`, `[ous."ou-…"]` and `[accounts."ID"]`: per-account variables and regions.
    pub vars: VarsConfig,
}

/// The tables of per-account variables: at the top of a file only, never in a group.
const RESERVED: &[&str] = &["vars", "ous", "accounts"];

/// Options that have no place in a config file, and why.
const REFUSED: &[(&str, &str)] = &[
    ("help", "it is a question for the command line"),
    ("version", "it is a question for the command line"),
    (
        "config",
        "a config file cannot name another one; use --config or COVE_CONFIG",
    ),
    (
        "no-config",
        "a config file cannot turn config files off; use --no-config",
    ),
    (
        "group",
        "a group is chosen with -g NAME or COVE_GROUP; define it as [groups.NAME]",
    ),
    (
        "mfa-code",
        "an MFA code is a secret that changes every 30 seconds; cove asks for it on the terminal",
    ),
    (
        "command",
        "the command is not a setting; give it after `--` on the command line",
    ),
    ("merge", "`cove merge` is a subcommand, not a setting"),
    (
        "yes",
        "it answers --confirm, which is asked to be answered by the person running cove; type --yes (-y) or set COVE_YES",
    ),
];

/// Whose entries a table of per-account settings holds.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Ou,
    Account,
}

/// An entry's `region`: a region name (or several, comma-separated, as `--region` takes them)
/// or an array of them; well-formed, never `all`. Whether cove knows them is checked with the
/// rest of the regions, where `--allow-unknown-region` is known.
fn entry_regions(value: &DeValue<'_>, at: &Place) -> anyhow::Result<Vec<String>> {
    let wrong = |v: &DeValue<'_>| {
        anyhow::anyhow!(
            "{at}: `region` has the wrong type ({}); expected a region name or an array of them, such as [\"us-east-1\", \"eu-west-1\"]",
            v.type_str()
        )
    };
    let items: Vec<&DeValue<'_>> = match value {
        DeValue::String(_) => vec![value],
        DeValue::Array(items) => items.iter().map(|i| i.get_ref()).collect(),
        other => return Err(wrong(other)),
    };
    let mut regions: Vec<String> = Vec::new();
    for item in items {
        let DeValue::String(text) = item else {
            return Err(wrong(item));
        };
        for piece in text.split(',').map(str::trim) {
            if piece == crate::regions::ALL_ENABLED_LABEL {
                bail!(
                    "{at}: `region` of an account or OU cannot be `all`; name its regions, such as [\"us-east-1\", \"eu-west-1\"]"
                );
            }
            crate::regions::check(piece, true)
                .map_err(|e| anyhow::anyhow!("{at}: {}", untrusted::terminal(&e)))?;
            if !regions.iter().any(|r| r == piece) {
                regions.push(piece.to_owned());
            }
        }
    }
    if regions.is_empty() {
        bail!("{at}: `region` is empty; expected at least one region name");
    }
    Ok(regions)
}

/// The line (1-based) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The byte offsets of `text`'s newlines.
fn newline_offsets(text: &str) -> Vec<usize> {
    text.bytes()
        .enumerate()
        .filter_map(|(i, b)| (b == b'\n').then_some(i))
        .collect()
}

/// Reads and checks the config file at `path` against the CLI definition `cmd`.
pub fn read(cmd: &clap::Command, path: &Path) -> anyhow::Result<File> {
    let text = std::fs::read(path).with_context(|| {
        format!(
            "cannot read config file `{}`",
            untrusted::terminal(&path.display().to_string())
        )
    })?;
    let text = String::from_utf8(text).map_err(|e| {
        let line = line_of(
            &String::from_utf8_lossy(e.as_bytes()),
            e.utf8_error().valid_up_to(),
        );
        anyhow::anyhow!(
            "{}: not UTF-8 text; expected a TOML file",
            place(path, line, None)
        )
    })?;
    parse(cmd, path, &text)
}

/// Checks the TOML `text` of the config file `path`.
pub fn parse(cmd: &clap::Command, path: &Path, text: &str) -> anyhow::Result<File> {
    let table = DeTable::parse(text).map_err(|err| {
        let line = err.span().map_or(1, |span| line_of(text, span.start));
        anyhow::anyhow!(
            "{}: not valid TOML: {}",
            place(path, line, None),
            untrusted::terminal(err.message().trim())
        )
    })?;
    let reader = Reader {
        cmd,
        path,
        newlines: newline_offsets(text),
    };
    let mut file = File {
        path: path.to_owned(),
        settings: Settings::new(),
        groups: BTreeMap::new(),
        vars: VarsConfig::default(),
    };
    for (key, value) in sorted(table.get_ref()) {
        let line = reader.line(key.span().start);
        match key.get_ref().as_ref() {
            "groups" => file.groups = reader.groups(value, line)?,
            "vars" => file.vars.defaults = reader.var_table(value, line, "vars")?,
            "ous" => file.vars.ous = reader.entries(value, line, Owner::Ou)?,
            "accounts" => file.vars.accounts = reader.entries(value, line, Owner::Account)?,
            _ => {
                let setting = reader.setting(key, value, None)?;
                file.settings.insert(setting.id.clone(), setting);
            }
        }
    }
    Ok(file)
}

/// The entries of a table in the order they were written, for errors in file order.
fn sorted<'a, 'i>(
    table: &'a DeTable<'i>,
) -> Vec<(
    &'a Spanned<toml::de::DeString<'i>>,
    &'a Spanned<DeValue<'i>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

fn place(path: &Path, line: usize, group: Option<&str>) -> Place {
    Place {
        path: path.to_owned(),
        line,
        group: group.map(str::to_owned),
    }
}

/// How an option takes its value from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `true` gives the flag, `false` leaves it out.
    Flag,
    /// A count (`verbose = 2` is `-vv`).
    Count,
    /// One value.
    One,
    /// Several values: a string or an array.
    Many,
}

fn kind(arg: &clap::Arg) -> Option<Kind> {
    use clap::ArgAction;
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => Some(Kind::Flag),
        ArgAction::Count => Some(Kind::Count),
        ArgAction::Set => Some(Kind::One),
        ArgAction::Append => Some(Kind::Many),
        _ => None,
    }
}

struct Reader<'a> {
    cmd: &'a clap::Command,
    path: &'a Path,
    /// The byte offset of every newline of the file, in order: a key's line is found by a
    /// binary search, so a file of many keys is read in linear time.
    newlines: Vec<usize>,
}

impl Reader<'_> {
    fn line(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&n| n < offset) + 1
    }

    /// `[groups.NAME]` tables.
    fn groups(
        &self,
        value: &Spanned<DeValue<'_>>,
        line: usize,
    ) -> anyhow::Result<BTreeMap<String, Group>> {
        let Some(groups) = value.get_ref().as_table() else {
            bail!(
                "{}: `groups` must be a table of groups, such as [groups.prod]",
                place(self.path, line, None)
            );
        };
        let mut out = BTreeMap::new();
        for (name, table) in sorted(groups) {
            let name_text = name.get_ref().to_string();
            let line = self.line(name.span().start);
            let Some(table) = table.get_ref().as_table() else {
                bail!(
                    "{}: group `{}` must be a table of settings, such as [groups.{}]",
                    place(self.path, line, None),
                    untrusted::terminal(&name_text),
                    untrusted::terminal(&name_text)
                );
            };
            let mut settings = Settings::new();
            for (key, value) in sorted(table) {
                let key_line = self.line(key.span().start);
                let key_name: &str = key.get_ref().as_ref();
                if key_name == "groups" || RESERVED.contains(&key_name) {
                    bail!(
                        "{}: `{}` cannot be set inside a group{}",
                        place(self.path, key_line, Some(&name_text)),
                        untrusted::terminal(key_name),
                        if key_name == "groups" {
                            ""
                        } else {
                            " (variables and per-account regions belong at the top of the file: [vars], [ous.\"ou-…\"], [accounts.\"ID\"])"
                        }
                    );
                }
                let setting = self.setting(key, value, Some(&name_text))?;
                settings.insert(setting.id.clone(), setting);
            }
            out.insert(name_text, Group { line, settings });
        }
        Ok(out)
    }

    /// A table of variables (`[vars]`, or an entry's `vars`): each name checked, each value a
    /// string, a whole number or a boolean, kept as text.
    fn var_table(
        &self,
        value: &Spanned<DeValue<'_>>,
        line: usize,
        what: &str,
    ) -> anyhow::Result<BTreeMap<String, vars::Value>> {
        let Some(table) = value.get_ref().as_table() else {
            bail!(
                "{}: `{what}` must be a table of variables, such as `[vars]` then `team = \"platform\"`",
                place(self.path, line, None)
            );
        };
        let mut out = BTreeMap::new();
        for (key, value) in sorted(table) {
            let at = place(self.path, self.line(key.span().start), None);
            let name: &str = key.get_ref().as_ref();
            if !vars::valid_name(name) {
                bail!(
                    "{at}: `{}` is not a variable name; expected a letter or `_`, then letters, digits, `_` or `-` (at most {} characters)",
                    untrusted::terminal(name),
                    vars::MAX_NAME
                );
            }
            let text = match value.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Integer(n) => match i64::from_str_radix(n.as_str(), n.radix()) {
                    Ok(n) => n.to_string(),
                    Err(_) => bail!("{at}: variable `{name}` is too large a number"),
                },
                DeValue::Boolean(b) => b.to_string(),
                other => bail!(
                    "{at}: variable `{name}` has the wrong type ({}); expected a string, a whole number, or true or false",
                    other.type_str()
                ),
            };
            if text.len() > vars::MAX_VALUE {
                bail!(
                    "{at}: variable `{name}` is {} bytes long; expected at most {}",
                    text.len(),
                    vars::MAX_VALUE
                );
            }
            if text.contains('\0') {
                bail!(
                    "{at}: variable `{name}` holds a NUL character, which no argument or environment variable can carry"
                );
            }
            out.insert(
                name.to_owned(),
                vars::Value {
                    value: text,
                    place: at,
                },
            );
        }
        Ok(out)
    }

    /// `[ous."ou-…"]` or `[accounts."ID"]`: each entry's `vars` and `region`.
    fn entries(
        &self,
        value: &Spanned<DeValue<'_>>,
        line: usize,
        owner: Owner,
    ) -> anyhow::Result<BTreeMap<String, Entry>> {
        let (table_name, example, expected) = match owner {
            Owner::Ou => (
                "ous",
                "[ous.\"ou-ab12-cdef3456\".vars]",
                "an OU ID (ou-xxxx-xxxxxxxx)",
            ),
            Owner::Account => (
                "accounts",
                "[accounts.\"111111111111\".vars]",
                "a 12-digit account ID",
            ),
        };
        let Some(table) = value.get_ref().as_table() else {
            bail!(
                "{}: `{table_name}` must be a table of entries, such as {example}",
                place(self.path, line, None)
            );
        };
        let mut out = BTreeMap::new();
        for (id, entry) in sorted(table) {
            let line = self.line(id.span().start);
            let at = place(self.path, line, None);
            let id: &str = id.get_ref().as_ref();
            let shown = untrusted::terminal(id);
            let known = match owner {
                Owner::Ou => matches!(id.parse::<OrgId>(), Ok(OrgId::Ou(_))),
                Owner::Account => crate::ids::is_account_id(id),
            };
            if !known {
                bail!("{at}: `{shown}` in [{table_name}] is not {expected}, such as {example}");
            }
            let Some(fields) = entry.get_ref().as_table() else {
                bail!(
                    "{at}: [{table_name}.\"{shown}\"] must be a table with `vars` and `region`, such as {example}"
                );
            };
            let mut e = Entry::default();
            for (key, value) in sorted(fields) {
                let key_line = self.line(key.span().start);
                let key_at = place(self.path, key_line, None);
                match key.get_ref().as_ref() {
                    "vars" => {
                        let what = format!("{table_name}.\"{shown}\".vars");
                        e.vars = self.var_table(value, key_line, &what)?;
                    }
                    "region" => {
                        e.regions = Some((entry_regions(value.get_ref(), &key_at)?, key_at))
                    }
                    other => bail!(
                        "{key_at}: unknown key `{}` in [{table_name}.\"{shown}\"]; expected `vars` or `region`",
                        untrusted::terminal(other)
                    ),
                }
            }
            out.insert(id.to_owned(), e);
        }
        Ok(out)
    }

    /// One `key = value`: the argument it names, and its value as command-line words, checked
    /// by the flag's own parser.
    fn setting(
        &self,
        key: &Spanned<toml::de::DeString<'_>>,
        value: &Spanned<DeValue<'_>>,
        group: Option<&str>,
    ) -> anyhow::Result<Setting> {
        let name: &str = key.get_ref().as_ref();
        let at = place(self.path, self.line(key.span().start), group);
        if let Some((_, why)) = REFUSED.iter().find(|(refused, _)| *refused == name) {
            bail!("{at}: `{name}` cannot be set in a config file: {why}");
        }
        let Some(arg) = self
            .cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(name))
        else {
            bail!(
                "{at}: unknown key `{}`; did you mean `{}`? (a key is a long option's name without its dashes)",
                untrusted::terminal(name),
                self.nearest(name)
            );
        };
        let Some(kind) = kind(arg) else {
            bail!("{at}: `{name}` cannot be set in a config file");
        };
        let values = self.values(name, kind, value, &at)?;
        let mut words = Vec::new();
        for value in values {
            let value = self.relative(arg, name, value, &at)?;
            self.check(arg, name, &value, &at)?;
            words.push(OsString::from(format!("--{name}={value}")));
        }
        if kind == Kind::Flag || kind == Kind::Count {
            words = self.flag_words(name, value.get_ref(), &at)?;
        }
        if name == "external-id" {
            refuse_literal_secret(&words, &at)?;
        }
        Ok(Setting {
            id: arg.get_id().as_str().to_owned(),
            words,
            place: at,
        })
    }

    /// The key of the CLI nearest to `name`.
    fn nearest(&self, name: &str) -> String {
        self.cmd
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|long| !REFUSED.iter().any(|(r, _)| r == long))
            .chain(["groups"])
            .min_by_key(|long| strsim::levenshtein(name, long))
            .unwrap_or("target")
            .to_owned()
    }

    /// The words of a flag (`true` or `false`) or a count (a whole number).
    fn flag_words(
        &self,
        name: &str,
        value: &DeValue<'_>,
        at: &Place,
    ) -> anyhow::Result<Vec<OsString>> {
        let flag = OsString::from(format!("--{name}"));
        match value {
            DeValue::Boolean(true) => Ok(vec![flag]),
            DeValue::Boolean(false) => Ok(Vec::new()),
            DeValue::Integer(n) => match i64::from_str_radix(n.as_str(), n.radix()) {
                Ok(count @ 0..=16) if name == "verbose" => Ok(vec![flag; count as usize]),
                _ => bail!("{at}: `{name}` is a count; expected a whole number from 0 to 16"),
            },
            _ => unreachable!("checked by values()"),
        }
    }

    /// The value's text(s): strings, numbers, or an array of them where the option repeats.
    fn values(
        &self,
        name: &str,
        kind: Kind,
        value: &Spanned<DeValue<'_>>,
        at: &Place,
    ) -> anyhow::Result<Vec<String>> {
        let expected = match kind {
            Kind::Flag => "true or false",
            Kind::Count => "a whole number",
            Kind::One => "a string or a number",
            Kind::Many => "a string, a number, or an array of them",
        };
        let wrong = || {
            anyhow::anyhow!(
                "{at}: `{name}` has the wrong type ({}); expected {expected}",
                value.get_ref().type_str()
            )
        };
        let scalar = |v: &DeValue<'_>| -> Option<String> {
            match v {
                DeValue::String(s) => Some(s.to_string()),
                DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix())
                    .ok()
                    .map(|n| n.to_string()),
                DeValue::Float(f) => Some(f.as_str().to_owned()),
                _ => None,
            }
        };
        match (kind, value.get_ref()) {
            (Kind::Flag, DeValue::Boolean(_)) => Ok(Vec::new()),
            (Kind::Count, DeValue::Integer(_) | DeValue::Boolean(_)) => Ok(Vec::new()),
            (Kind::One | Kind::Many, DeValue::Array(items)) if kind == Kind::Many => items
                .iter()
                .map(|item| scalar(item.get_ref()).ok_or_else(wrong))
                .collect(),
            (Kind::One | Kind::Many, v) => scalar(v).map(|s| vec![s]).ok_or_else(wrong),
            _ => Err(wrong()),
        }
    }

    /// A path, or an `@FILE` reference, relative to the config file's folder.
    fn relative(
        &self,
        arg: &clap::Arg,
        name: &str,
        value: String,
        at: &Place,
    ) -> anyhow::Result<String> {
        let names: Vec<&str> = arg
            .get_value_names()
            .unwrap_or_default()
            .iter()
            .map(|n| n.as_str())
            .collect();
        let takes_at = names.iter().any(|n| n.contains("@FILE"));
        let is_path = names.iter().any(|n| *n == "FILE" || *n == "DIR");
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &str| -> String {
            let p = Path::new(p);
            if p.is_relative() {
                dir.join(p).display().to_string()
            } else {
                p.display().to_string()
            }
        };
        if takes_at {
            let delimiter = arg.get_value_delimiter();
            let pieces: Vec<&str> = match delimiter {
                Some(d) => value.split(d).collect(),
                None => vec![value.as_str()],
            };
            let mut out = Vec::new();
            for piece in pieces {
                match piece.strip_prefix('@') {
                    Some("-") => bail!(
                        "{at}: `{name}` cannot read standard input (@-) from a config file; name a file, @FILE"
                    ),
                    Some(file) if !file.is_empty() => out.push(format!("@{}", resolve(file))),
                    _ => out.push(piece.to_owned()),
                }
            }
            return Ok(out.join(&delimiter.map(String::from).unwrap_or_default()));
        }
        if name == "plan" {
            // --plan takes a path, `@PATH`, or `-` / `@-` for standard input.
            let path = value.strip_prefix('@').unwrap_or(&value);
            if path == "-" {
                bail!(
                    "{at}: `plan` cannot read standard input (-) from a config file; name a file"
                );
            }
            if !path.is_empty() {
                return Ok(resolve(path));
            }
        }
        if is_path && !value.is_empty() {
            return Ok(resolve(&value));
        }
        Ok(value)
    }

    /// The value, checked by the flag's own parser (each piece, where the flag takes a list).
    fn check(&self, arg: &clap::Arg, name: &str, value: &str, at: &Place) -> anyhow::Result<()> {
        let pieces: Vec<&str> = match arg.get_value_delimiter() {
            Some(d) => value.split(d).collect(),
            None => vec![value],
        };
        // The flag alone, with its own parser (its ties to other options are for the whole
        // command line to check).
        let value = clap::Arg::new("value")
            .value_names(arg.get_value_names().unwrap_or_default().to_vec())
            .allow_hyphen_values(true)
            .value_parser(arg.get_value_parser().clone());
        let shown = format!("'{value}'");
        let alone = clap::Command::new("cove").no_binary_name(true).arg(value);
        for piece in pieces {
            let parsed = alone.clone().try_get_matches_from([piece]);
            if let Err(err) = parsed {
                let text = err.render().to_string();
                let text = text.trim_start_matches("error: ");
                let sentence = text.split("\n\n").next().unwrap_or(text).trim_end();
                let sentence = sentence.replace(&shown, &format!("`{name}`"));
                let sentence = if arg.is_hide_env_values_set() {
                    format!("invalid value for `{name}`")
                } else {
                    untrusted::terminal(&sentence).into_owned()
                };
                bail!("{at}: {sentence}");
            }
        }
        Ok(())
    }
}

/// `external-id` must be an `@FILE` reference in a config file: config files end up in
/// repositories, and the external ID guards the role. Never echoes the value.
fn refuse_literal_secret(words: &[OsString], at: &Place) -> anyhow::Result<()> {
    let literal = words.iter().any(|w| {
        !w.to_string_lossy()
            .trim_start_matches("--external-id=")
            .starts_with('@')
    });
    if literal {
        bail!(
            "{at}: `external-id` holds a literal value (not shown); a config file must not hold secrets, since config files end up in repositories: write the external ID into a file of its own and set external-id = \"@FILE\" (relative to the config file), or use COVE_EXTERNAL_ID"
        );
    }
    Ok(())
}

/// A config file cove finds by itself (the user file, or a `cove.toml` in the current
/// directory or a parent) is read only when no other user could have put it there: the file
/// (and the link that leads to it, if any) and its folder are yours or root's, and neither
/// its group nor everyone can write them (a folder such as `/tmp`, with the sticky bit, may
/// be writable by all). Another user's `/tmp/cove.toml` would otherwise choose the targets,
/// the role, `--org-role` or `--via-role` of every run started beneath `/tmp`. A file named
/// with `--config` or `COVE_CONFIG` was chosen by the caller and is not judged.
pub fn check_found(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let shown = untrusted::terminal(&path.display().to_string()).into_owned();
    let refuse = |what: &str, why: String| -> anyhow::Error {
        anyhow::anyhow!(
            "config file `{shown}`: {what} {why}; cove reads a config file it finds only when it and its folder are yours (user {me}) or root's and no other user can write them, since another user could have put it there. Remove it, fix its owner or mode, or name the file you mean with --config FILE (or --no-config)"
        )
    };
    let stat = |p: &Path, link: bool| -> anyhow::Result<std::fs::Metadata> {
        let meta = if link {
            std::fs::symlink_metadata(p)
        } else {
            std::fs::metadata(p)
        };
        meta.with_context(|| format!("cannot read config file `{shown}`"))
    };
    let link = stat(path, true)?;
    let file = stat(path, false)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let folder = stat(dir, false)?;
    for (what, meta, sticky_ok) in [
        ("the link", &link, false),
        ("the file", &file, false),
        ("its folder", &folder, true),
    ] {
        if what == "the link" && !link.file_type().is_symlink() {
            continue;
        }
        judge_found(meta.uid(), meta.mode(), me, sticky_ok).map_err(|why| refuse(what, why))?;
    }
    Ok(())
}

/// What is wrong with the owner `uid` and `mode` of a found config file or its folder, for
/// the user `me`; `sticky_ok` lets a folder with the sticky bit be writable by others.
fn judge_found(uid: u32, mode: u32, me: u32, sticky_ok: bool) -> Result<(), String> {
    if uid != me && uid != 0 {
        return Err(format!("is owned by user {uid}"));
    }
    let mode = mode & 0o7777;
    if mode & 0o022 != 0 && !(sticky_ok && mode & 0o1000 != 0) {
        return Err(format!("can be written by other users (mode {mode:04o})"));
    }
    Ok(())
}

/// The config files of a run, in the order they apply (lowest precedence first), each with
/// what it is and whether it exists.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// `user`, `project`, or the option that named it (`--config`, `COVE_CONFIG`).
    pub role: String,
    pub path: PathBuf,
    pub exists: bool,
}

/// The user file: `$XDG_CONFIG_HOME/cove/config.toml`, or `~/.config/cove/config.toml` (on
/// macOS too). A relative XDG_CONFIG_HOME is ignored, as the XDG specification says.
pub fn user_file() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = match xdg {
        Some(dir) => dir,
        None => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?).join(".config"),
    };
    Some(base.join("cove").join("config.toml"))
}

/// The project file: `cove.toml` in the current directory or the nearest parent that has one.
pub fn project_file() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|dir| dir.join("cove.toml"))
        .find(|file| file.is_file())
}

/// The files to read: the one `--config` names (which must exist), or the user file and the
/// project file (each when it exists), or none with `--no-config`.
pub fn candidates(named: Option<(PathBuf, String)>, none: bool) -> anyhow::Result<Vec<Candidate>> {
    if none {
        return Ok(Vec::new());
    }
    if let Some((path, option)) = named {
        if !path.is_file() {
            bail!(
                "{option} `{}`: no such config file; expected the path of a TOML file",
                untrusted::terminal(&path.display().to_string())
            );
        }
        return Ok(vec![Candidate {
            role: option,
            path,
            exists: true,
        }]);
    }
    let mut out = Vec::new();
    if let Some(path) = user_file() {
        let exists = path.is_file();
        out.push(Candidate {
            role: "user".into(),
            path,
            exists,
        });
    }
    match project_file() {
        Some(path) => out.push(Candidate {
            role: "project".into(),
            path,
            exists: true,
        }),
        None => {
            let cwd = std::env::current_dir().unwrap_or_default();
            out.push(Candidate {
                role: "project".into(),
                path: cwd.join("cove.toml"),
                exists: false,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse_text(text: &str) -> anyhow::Result<File> {
        let mut cmd = crate::cli::Cli::command();
        cmd.build();
        parse(&cmd, Path::new("/p/cove.toml"), text)
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse_text(text).unwrap_err())
    }

    #[test]
    fn keys_become_the_words_of_their_flags() {
        let file = parse_text(
            "workers = 5\nregion = [\"us-east-1\", \"eu-west-1\"]\nfail-fast = true\nquiet = false\ntarget = [\"@prod.txt\", \"111111111111\"]\noutput-dir = \"out\"\nmax-assume-rate = 0.5\nverbose = 2\n",
        )
        .unwrap();
        let words = |id: &str| -> Vec<String> {
            file.settings[id]
                .words
                .iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(words("workers"), ["--workers=5"]);
        assert_eq!(
            words("regions"),
            ["--region=us-east-1", "--region=eu-west-1"]
        );
        assert_eq!(words("fail_fast"), ["--fail-fast"]);
        assert!(words("quiet").is_empty());
        assert_eq!(
            words("targets"),
            ["--target=@/p/prod.txt", "--target=111111111111"]
        );
        assert_eq!(words("output_dir"), ["--output-dir=/p/out"]);
        let plans = |text: &str| {
            parse_text(text).unwrap().settings["plan"].words[0]
                .to_string_lossy()
                .into_owned()
        };
        assert_eq!(plans("plan = \"plan.json\""), "--plan=/p/plan.json");
        assert_eq!(plans("plan = \"@plan.json\""), "--plan=/p/plan.json");
        assert_eq!(words("max_assume_rate"), ["--max-assume-rate=0.5"]);
        assert_eq!(words("verbose"), ["--verbose", "--verbose"]);
        assert_eq!(file.settings["workers"].place.line, 1);
        assert_eq!(file.settings["targets"].place.line, 5);
    }

    #[test]
    fn bad_files_name_the_file_and_the_line() {
        assert!(error("workers = 5\nrole = [").starts_with("/p/cove.toml:2: not valid TOML"));
        let e = error("\nwokers = 5");
        assert!(
            e.contains("/p/cove.toml:2: unknown key `wokers`; did you mean `workers`?"),
            "{e}"
        );
        let e = error("workers = [1]");
        assert!(
            e.contains(":1: `workers` has the wrong type (array)"),
            "{e}"
        );
        let e = error("fail-fast = \"yes\"");
        assert!(e.contains("expected true or false"), "{e}");
        let e = error("\n\nworkers = 0");
        assert!(e.starts_with("/p/cove.toml:3: invalid value '0'"), "{e}");
        let e = error("output = \"yaml\"");
        assert!(e.contains("invalid value 'yaml'"), "{e}");
        let e = error("external-id = \"s3cr3t-value\"");
        assert!(e.contains("literal value") && !e.contains("s3cr3t"), "{e}");
        assert!(parse_text("external-id = \"@id.txt\"").is_ok());
        assert!(error("mfa-code = \"123456\"").contains("cannot be set in a config file"));
        assert!(error("[groups.p.vars]\nx = 1").contains("cannot be set inside a group"));
        assert!(error("target = \"@-\"").contains("standard input"));
        assert!(error("plan = \"@-\"").contains("standard input"));
        assert!(error("plan = \"-\"").contains("standard input"));
        let e = error("role = \"\u{1b}[31m\"\n\u{1b}x = 1");
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn a_found_file_is_judged_by_its_owner_and_who_can_write_it() {
        assert_eq!(judge_found(1000, 0o100644, 1000, false), Ok(()));
        assert_eq!(judge_found(0, 0o100644, 1000, false), Ok(()));
        assert_eq!(
            judge_found(1001, 0o100644, 1000, false),
            Err("is owned by user 1001".to_owned())
        );
        assert!(judge_found(1000, 0o100664, 1000, false).is_err());
        assert!(judge_found(1000, 0o100646, 1000, false).is_err());
        assert!(judge_found(0, 0o41777, 1000, false).is_err());
        assert_eq!(judge_found(0, 0o41777, 1000, true), Ok(()));
        assert!(judge_found(1000, 0o40777, 1000, true).is_err());
    }

    #[test]
    fn groups_hold_settings_of_their_own() {
        let file =
            parse_text("workers = 3\n[groups.prod]\ntarget = \"ou-ab12-cdef3456\"\nworkers = 9\n")
                .unwrap();
        let prod = &file.groups["prod"];
        assert_eq!(prod.line, 2);
        assert_eq!(
            prod.settings["workers"].place.to_string(),
            "group prod at /p/cove.toml:4"
        );
        let e = error("[groups.prod]\nwokers = 1");
        assert!(
            e.starts_with("group prod at /p/cove.toml:2: unknown key"),
            "{e}"
        );
    }

    #[test]
    fn a_file_of_many_variables_is_read_in_linear_time() {
        // An untrusted project file with many keys: each key's line is found in an index,
        // not by counting the newlines before it again (quadratic: about a minute here).
        let mut text = String::from("[vars]\n");
        for i in 0..20_000 {
            text.push_str(&format!("v{i} = \"x\"\n"));
        }
        let started = std::time::Instant::now();
        let file = parse_text(&text).unwrap();
        assert_eq!(file.vars.defaults["v19999"].place.line, 20_001);
        assert_eq!(file.vars.defaults["v0"].place.line, 2);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn variables_and_per_account_regions_are_read_and_checked() {
        let file = parse_text(concat!(
            "[vars]\nteam = \"platform\"\nsize = 3\non = true\n",
            "[ous.\"ou-ab12-cdef3456\"]\nregion = [\"eu-west-1\", \"us-east-1,eu-west-1\"]\n",
            "[ous.\"ou-ab12-cdef3456\".vars]\nteam = \"payments\"\n",
            "[accounts.\"111111111111\"]\nregion = \"us-east-2\"\nvars = { team = \"alice\" }\n",
        ))
        .unwrap();
        let v = &file.vars;
        assert_eq!(v.defaults["size"].value, "3");
        assert_eq!(v.defaults["on"].value, "true");
        assert_eq!(v.defaults["team"].place.line, 2);
        let ou = &v.ous["ou-ab12-cdef3456"];
        assert_eq!(ou.vars["team"].value, "payments");
        assert_eq!(
            ou.regions.as_ref().unwrap().0,
            ["eu-west-1".to_owned(), "us-east-1".to_owned()]
        );
        assert_eq!(v.accounts["111111111111"].vars["team"].value, "alice");
        for (text, wanted) in [
            ("[vars]\n\"a b\" = 1", "is not a variable name"),
            ("[vars]\nx = [1]", "wrong type (array)"),
            ("[vars]\nx = 1.5", "wrong type"),
            ("vars = 1", "must be a table of variables"),
            ("[ous.\"ou-x\".vars]\nx = 1", "is not an OU ID"),
            ("[ous.\"r-abcd\".vars]\nx = 1", "is not an OU ID"),
            (
                "[accounts.\"12345\".vars]\nx = 1",
                "is not a 12-digit account ID",
            ),
            (
                "[accounts.\"111111111111\"]\nrole = \"x\"",
                "expected `vars` or `region`",
            ),
            (
                "[accounts.\"111111111111\"]\nregion = \"all\"",
                "cannot be `all`",
            ),
            (
                "[accounts.\"111111111111\"]\nregion = \"US-east-1\"",
                "invalid region",
            ),
            ("[accounts.\"111111111111\"]\nregion = []", "is empty"),
            (
                "[accounts.\"111111111111\"]\nregion = 3",
                "wrong type (integer)",
            ),
        ] {
            let e = error(text);
            assert!(e.contains(wanted), "{text}: {e}");
            assert!(
                e.contains("cove.toml:"),
                "{text}: names the file and line: {e}"
            );
        }
    }
}
