//! `cove diff OLD NEW`: what changed between two runs. Either side may be a json document, a
//! jsonl stream, an `--output-dir` directory (its `results.json`) or a merged output, and `-`
//! is standard input. Targets are paired by `(Id, Region)`.
//!
//! The files are untrusted: only `Id`, `Region`, `Name`, `ExitCode`, `Result` and the outcome
//! are kept (into this module's own structure, whatever `output::Record` holds in memory),
//! serde_json's recursion limit bounds their nesting, and everything quoted from them on a
//! terminal goes through `untrusted::terminal`. JSON paths quote every key that is not an
//! identifier (`."a b"`), so a key cannot forge a path.

mod lines;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use crate::exit_code::Exit;
use crate::output::{Outcome, write_json, written};
use crate::untrusted::terminal;

/// The most lines of a text result's unified diff, per target.
pub const DIFF_LINES: usize = 200;

/// `cove diff`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// The earlier run: a cove json or jsonl output, a merged output, or an --output-dir
    /// directory (its results.json); `-` reads standard input.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,

    /// The later run, as OLD.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,

    /// Leave a JSON path of the results out of the comparison (repeatable), for example
    /// `.ResponseMetadata`; `[]` matches any index (`.Reservations[].Instances`), and keys that
    /// are not identifiers are quoted (`."a b"`).
    #[arg(long = "ignore-path", value_name = "PATH", value_parser = IgnorePath::parse)]
    pub ignore_paths: Vec<IgnorePath>,

    /// json: one document (pretty on a terminal, one line otherwise); text: a summary for
    /// people, in color on a terminal.
    #[arg(short = 'o', long = "output", value_name = "FORMAT", value_enum,
          default_value_t = DiffFormat::Json)]
    pub output: DiffFormat,
}

/// What `cove diff` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Json,
    Text,
}

/// One step of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Key(String),
    Index(usize),
    AnyIndex,
}

/// A parsed `--ignore-path`: the path, and whatever lies beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnorePath(Vec<Pattern>);

/// One step of a path in a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

const PATH_EXPECTED: &str =
    "expected a JSON path such as .ResponseMetadata, .Tags[0].Value, .Items[].Id or .\"a key\"";

impl IgnorePath {
    /// Parses `.a.b`, `.a[3]`, `.a[]`, `."a b"`, `.["a b"]` and `.[0]`.
    pub fn parse(text: &str) -> Result<IgnorePath, String> {
        let bad = |why: &str| format!("`{}` {why}; {PATH_EXPECTED}", terminal(text));
        let Some(mut rest) = text.strip_prefix('.') else {
            return Err(bad("does not start with `.`"));
        };
        let mut steps = Vec::new();
        let mut after_dot = true;
        while !rest.is_empty() {
            if let Some(inner) = rest.strip_prefix('[') {
                let (step, tail) = bracket(inner).ok_or_else(|| bad("has a bad `[...]`"))?;
                steps.push(step);
                rest = tail;
                after_dot = false;
            } else if after_dot {
                let (key, tail) = if rest.starts_with('"') {
                    quoted(rest).ok_or_else(|| bad("has a bad quoted key"))?
                } else {
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    let key = &rest[..end];
                    if !is_identifier(key) {
                        return Err(bad("has a key that is neither an identifier nor quoted"));
                    }
                    (key.to_owned(), &rest[end..])
                };
                steps.push(Pattern::Key(key));
                rest = tail;
                after_dot = false;
            } else if let Some(tail) = rest.strip_prefix('.') {
                rest = tail;
                after_dot = true;
                if rest.is_empty() {
                    return Err(bad("ends with `.`"));
                }
            } else {
                return Err(bad(
                    "has something other than `.key` or `[...]` after a step",
                ));
            }
        }
        if steps.is_empty() {
            return Err(bad("names the whole result"));
        }
        Ok(IgnorePath(steps))
    }

    /// Whether `path` is this path or beneath it.
    fn covers(&self, path: &[Step]) -> bool {
        self.0.len() <= path.len()
            && self.0.iter().zip(path).all(|(p, s)| match (p, s) {
                (Pattern::Key(k), Step::Key(s)) => k == s,
                (Pattern::Index(i), Step::Index(s)) => i == s,
                (Pattern::AnyIndex, Step::Index(_)) => true,
                _ => false,
            })
    }
}

/// The inside of `[...]` (after the `[`): `]`, `N]` or `"key"]`, and what follows.
fn bracket(inner: &str) -> Option<(Pattern, &str)> {
    if let Some(tail) = inner.strip_prefix(']') {
        return Some((Pattern::AnyIndex, tail));
    }
    if inner.starts_with('"') {
        let (key, tail) = quoted(inner)?;
        return Some((Pattern::Key(key), tail.strip_prefix(']')?));
    }
    let end = inner.find(']')?;
    let digits = &inner[..end];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((Pattern::Index(digits.parse().ok()?), &inner[end + 1..]))
}

/// A JSON string at the start of `text`, and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => {
                let key = serde_json::from_str(&text[..=i]).ok()?;
                return Some((key, &text[i + 1..]));
            }
            _ => {}
        }
    }
    None
}

/// jq's identifiers: what a path may write without quotes.
fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A path as jq writes it: `.a.b[3]`, `.[0]`, `."a b"`; `.` for the whole result.
fn render(path: &[Step]) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if is_identifier(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Key(key) => {
                out.push('.');
                out.push_str(&serde_json::to_string(key).expect("a string serializes"));
            }
            Step::Index(i) if out.is_empty() => out.push_str(&format!(".[{i}]")),
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Every path where `before` and `after` differ, outside the ignored paths: a
/// `{"Path", "Before", "After"}` object each, `Before` or `After` left out where that side has
/// no such key or index. Objects and arrays are compared member by member, anything else whole.
pub fn paths(before: &Value, after: &Value, ignore: &[IgnorePath]) -> Vec<Value> {
    let mut out = Vec::new();
    walk(Some(before), Some(after), &mut Vec::new(), ignore, &mut out);
    out
}

fn walk<'a>(
    before: Option<&'a Value>,
    after: Option<&'a Value>,
    path: &mut Vec<Step<'a>>,
    ignore: &[IgnorePath],
    out: &mut Vec<Value>,
) {
    if ignore.iter().any(|p| p.covers(path)) {
        return;
    }
    match (before, after) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            for (key, value) in a {
                path.push(Step::Key(key));
                walk(Some(value), b.get(key), path, ignore, out);
                path.pop();
            }
            for (key, value) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                path.push(Step::Key(key));
                walk(None, Some(value), path, ignore, out);
                path.pop();
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                path.push(Step::Index(i));
                walk(a.get(i), b.get(i), path, ignore, out);
                path.pop();
            }
        }
        (a, b) if a == b => {}
        (a, b) => {
            let mut change = Map::new();
            change.insert("Path".to_owned(), Value::String(render(path)));
            if let Some(a) = a {
                change.insert("Before".to_owned(), a.clone());
            }
            if let Some(b) = b {
                change.insert("After".to_owned(), b.clone());
            }
            out.push(Value::Object(change));
        }
    }
}

/// What `cove diff` keeps of a target.
#[derive(Debug, Clone)]
struct Target {
    outcome: Outcome,
    name: Value,
    exit_code: Value,
    result: Value,
}

/// A run's targets by `(Id, Region)`.
type Run = BTreeMap<(String, String), Target>;

/// A record as read from a file: only the keys the comparison needs (the rest is skipped).
#[derive(Deserialize)]
struct RawRecord {
    #[serde(rename = "Id")]
    id: Option<String>,
    #[serde(rename = "Region")]
    region: Option<String>,
    #[serde(rename = "Name", default)]
    name: Value,
    #[serde(rename = "ExitCode", default)]
    exit_code: Value,
    #[serde(rename = "Result", default)]
    result: Value,
    #[serde(rename = "Outcome", default)]
    outcome: Option<String>,
    #[serde(rename = "Summary", default)]
    summary: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RawDocument {
    #[serde(rename = "Results")]
    results: Vec<RawRecord>,
    #[serde(rename = "Exceptions")]
    exceptions: Vec<RawRecord>,
    #[serde(rename = "FailedAssumeRole")]
    failed_assume_role: Vec<RawRecord>,
}

/// Whether a line is one of cove's jsonl lines (a record with `Outcome`, or the `Summary`).
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "Outcome")]
    outcome: Option<IgnoredAny>,
    #[serde(rename = "Summary")]
    summary: Option<IgnoredAny>,
}

fn foreign(name: &str, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "{name} is not a cove output ({}): expected a JSON document with Results, Exceptions and FailedAssumeRole, cove's jsonl lines, or an --output-dir directory",
        terminal(&why.to_string())
    )
}

/// The bytes of one side, and how to name it in a message. A directory is an `--output-dir`.
fn load(path: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        return Ok((bytes, "standard input".to_owned()));
    }
    let file = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_owned()
    };
    let name = format!("`{}`", terminal(&file.display().to_string()));
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {name}"))?;
    Ok((bytes, name))
}

/// One side's targets, from a json document or jsonl lines.
fn parse(bytes: &[u8], name: &str) -> anyhow::Result<Run> {
    let Some(first) = bytes
        .split(|b| *b == b'\n')
        .find(|l| !l.trim_ascii().is_empty())
    else {
        bail!("{name} is empty; expected a cove json or jsonl output");
    };
    let jsonl = serde_json::from_slice::<Probe>(first)
        .is_ok_and(|p| p.outcome.is_some() || p.summary.is_some());
    let mut run = Run::new();
    if !jsonl {
        let doc: RawDocument = serde_json::from_slice(bytes).map_err(|e| foreign(name, e))?;
        for (outcome, records) in [
            (Outcome::Result, doc.results),
            (Outcome::Exception, doc.exceptions),
            (Outcome::FailedAssumeRole, doc.failed_assume_role),
        ] {
            for record in records {
                insert(&mut run, record, outcome, name)?;
            }
        }
        return Ok(run);
    }
    let mut saw_summary = false;
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let record: RawRecord = serde_json::from_slice(line)
            .map_err(|e| foreign(name, format!("line {}: {e}", n + 1)))?;
        if record.summary.is_some() {
            saw_summary = true;
            continue;
        }
        let outcome = record.outcome.as_deref().and_then(Outcome::from_line_name);
        let Some(outcome) = outcome else {
            return Err(foreign(name, format!("line {} has no cove Outcome", n + 1)));
        };
        insert(&mut run, record, outcome, name)?;
    }
    if !saw_summary {
        bail!(
            "{name} has no Summary line: that run did not finish, so targets may be missing from it"
        );
    }
    Ok(run)
}

fn insert(run: &mut Run, record: RawRecord, outcome: Outcome, name: &str) -> anyhow::Result<()> {
    let (Some(id), Some(region)) = (record.id, record.region) else {
        return Err(foreign(name, "a record has no Id or Region"));
    };
    let target = Target {
        outcome,
        name: record.name,
        exit_code: record.exit_code,
        result: record.result,
    };
    if run.insert((id.clone(), region.clone()), target).is_some() {
        bail!(
            "account {} in {} is twice in {name}; a cove output has one record per account and region",
            terminal(&id),
            terminal(&region)
        );
    }
    Ok(())
}

/// The comparison of two runs: the document `cove diff` prints.
#[derive(Debug, Default)]
pub struct Report {
    pub added: Vec<Value>,
    pub removed: Vec<Value>,
    pub changed: Vec<Value>,
    pub unchanged: u64,
}

impl Report {
    pub fn differs(&self) -> bool {
        !(self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty())
    }

    fn to_value(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("Added".to_owned(), Value::Array(self.added.clone()));
        doc.insert("Removed".to_owned(), Value::Array(self.removed.clone()));
        doc.insert("Changed".to_owned(), Value::Array(self.changed.clone()));
        doc.insert("Unchanged".to_owned(), Value::from(self.unchanged));
        Value::Object(doc)
    }
}

/// `{"Id", "Region", "Name", "Outcome", "ExitCode"}`: an added or removed target.
fn brief(key: &(String, String), target: &Target) -> Value {
    let mut entry = Map::new();
    entry.insert("Id".to_owned(), Value::String(key.0.clone()));
    entry.insert("Region".to_owned(), Value::String(key.1.clone()));
    entry.insert("Name".to_owned(), target.name.clone());
    entry.insert(
        "Outcome".to_owned(),
        Value::String(target.outcome.line_name().to_owned()),
    );
    entry.insert("ExitCode".to_owned(), target.exit_code.clone());
    Value::Object(entry)
}

/// Whether a result is compared path by path (an object or an array) rather than whole.
fn structured(result: &Value) -> bool {
    result.is_object() || result.is_array()
}

/// The changed entry of a target present in both runs, or `None` when it did not change.
fn changed(
    key: &(String, String),
    old: &Target,
    new: &Target,
    ignore: &[IgnorePath],
) -> Option<Value> {
    let both_json = structured(&old.result) && structured(&new.result);
    let paths = both_json.then(|| paths(&old.result, &new.result, ignore));
    let results_differ = match &paths {
        Some(paths) => !paths.is_empty(),
        None => old.result != new.result,
    };
    if old.outcome == new.outcome && old.exit_code == new.exit_code && !results_differ {
        return None;
    }
    let side = |target: &Target| {
        let mut side = Map::new();
        side.insert(
            "Outcome".to_owned(),
            Value::String(target.outcome.line_name().to_owned()),
        );
        side.insert("ExitCode".to_owned(), target.exit_code.clone());
        if results_differ {
            side.insert("Result".to_owned(), target.result.clone());
        }
        Value::Object(side)
    };
    let name = if new.name.is_null() {
        &old.name
    } else {
        &new.name
    };
    let mut entry = Map::new();
    entry.insert("Id".to_owned(), Value::String(key.0.clone()));
    entry.insert("Region".to_owned(), Value::String(key.1.clone()));
    entry.insert("Name".to_owned(), name.clone());
    entry.insert("Before".to_owned(), side(old));
    entry.insert("After".to_owned(), side(new));
    match (paths, &old.result, &new.result) {
        (Some(paths), _, _) if results_differ => {
            entry.insert("Paths".to_owned(), Value::Array(paths));
        }
        (None, Value::String(a), Value::String(b)) if results_differ => {
            let (diff, capped) = lines::unified(a, b, DIFF_LINES);
            entry.insert(
                "Diff".to_owned(),
                Value::Array(diff.into_iter().map(Value::String).collect()),
            );
            entry.insert("DiffCapped".to_owned(), Value::Bool(capped));
        }
        _ => {}
    }
    Some(Value::Object(entry))
}

/// Pairs the targets of two runs by `(Id, Region)` and compares each pair.
fn compare(old: Run, mut new: Run, ignore: &[IgnorePath]) -> Report {
    let mut report = Report::default();
    for (key, before) in &old {
        match new.remove(key) {
            None => report.removed.push(brief(key, before)),
            Some(after) => match changed(key, before, &after, ignore) {
                Some(entry) => report.changed.push(entry),
                None => report.unchanged += 1,
            },
        }
    }
    report.added = new.iter().map(|(key, t)| brief(key, t)).collect();
    report
}

/// The comparison of the runs in `old` and `new` (files, `--output-dir` directories or `-`).
pub fn diff_files(old: &Path, new: &Path, ignore: &[IgnorePath]) -> anyhow::Result<Report> {
    if old.as_os_str() == "-" && new.as_os_str() == "-" {
        bail!("OLD and NEW are both `-`; standard input can be only one of them");
    }
    let (bytes, name) = load(old)?;
    let old = parse(&bytes, &name)?;
    drop(bytes);
    let (bytes, name) = load(new)?;
    let new = parse(&bytes, &name)?;
    drop(bytes);
    Ok(compare(old, new, ignore))
}

/// `cove diff`: prints the comparison and exits as diff(1): 0 equal, 1 different (2, an error,
/// is the caller's).
pub fn run(args: &DiffArgs) -> anyhow::Result<Exit> {
    let report = diff_files(&args.old, &args.new, &args.ignore_paths)?;
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = stdout.lock();
    match args.output {
        DiffFormat::Json => written(
            write_json(&mut out, &report.to_value(), terminal),
            "the diff",
        )?,
        DiffFormat::Text => {
            let color = terminal && crate::text::color_allowed();
            written(write_text(&mut out, &report, color), "the diff")?;
        }
    }
    Ok(if report.differs() {
        Exit::TargetFailed
    } else {
        Exit::Success
    })
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// A JSON value for a line of text: compact, cut at 120 characters, escaped for a terminal;
/// `(missing)` for a key or index one side does not have.
fn shown(value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "(missing)".to_owned();
    };
    let text = serde_json::to_string(value).expect("a value serializes");
    let mut cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    terminal(&cut).into_owned()
}

/// `ID NAME REGION` of an entry, escaped; `-` for an unknown name.
fn tag(entry: &Value) -> String {
    let text = |v: &Value| match v.as_str() {
        Some(s) if !s.is_empty() => terminal(s).into_owned(),
        _ => "-".to_owned(),
    };
    format!(
        "{} {} {}",
        text(&entry["Id"]),
        text(&entry["Name"]),
        text(&entry["Region"])
    )
}

/// `-o text`: the counts, then each added, removed and changed target.
fn write_text(out: &mut impl Write, report: &Report, color: bool) -> std::io::Result<()> {
    let paint = |code: &str, text: &str| {
        if color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    };
    writeln!(
        out,
        "{} added, {} removed, {} changed, {} unchanged",
        report.added.len(),
        report.removed.len(),
        report.changed.len(),
        report.unchanged
    )?;
    for (mark, code, entries) in [("+", GREEN, &report.added), ("-", RED, &report.removed)] {
        for entry in entries {
            let line = format!(
                "{mark} {} {} exit {}",
                tag(entry),
                shown(Some(&entry["Outcome"])),
                shown(Some(&entry["ExitCode"]))
            );
            writeln!(out, "{}", paint(code, &line))?;
        }
    }
    for entry in &report.changed {
        writeln!(out, "{}", paint(YELLOW, &format!("~ {}", tag(entry))))?;
        write_change(out, entry, &paint)?;
    }
    Ok(())
}

/// The lines under a changed target: what differs in its outcome and exit code, then its
/// paths, its text diff, or its two results.
fn write_change(
    out: &mut impl Write,
    entry: &Value,
    paint: &dyn Fn(&str, &str) -> String,
) -> std::io::Result<()> {
    let (before, after) = (&entry["Before"], &entry["After"]);
    for key in ["Outcome", "ExitCode"] {
        if before[key] != after[key] {
            let (a, b) = (shown(before.get(key)), shown(after.get(key)));
            writeln!(out, "    {key}: {a} -> {b}")?;
        }
    }
    if let Some(paths) = entry["Paths"].as_array() {
        for change in paths {
            let path = terminal(change["Path"].as_str().unwrap_or_default()).into_owned();
            let (a, b) = (shown(change.get("Before")), shown(change.get("After")));
            writeln!(out, "    {path}: {a} -> {b}")?;
        }
    } else if let Some(diff) = entry["Diff"].as_array() {
        for line in diff.iter().filter_map(Value::as_str) {
            // A tab is harmless on a terminal, and common in the AWS CLI's text output.
            let escaped: Vec<_> = line.split('\t').map(terminal).collect();
            let text = format!("    {}", escaped.join("\t"));
            let text = match line.as_bytes().first() {
                Some(b'-') => paint(RED, &text),
                Some(b'+') => paint(GREEN, &text),
                Some(b'@') => paint(CYAN, &text),
                _ => text,
            };
            writeln!(out, "{text}")?;
        }
        if entry["DiffCapped"] == true {
            writeln!(out, "    (diff cut at {DIFF_LINES} lines)")?;
        }
    } else if before.get("Result").is_some() {
        let (a, b) = (shown(before.get("Result")), shown(after.get("Result")));
        writeln!(out, "    Result: {a} -> {b}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn ignore(paths: &[&str]) -> Vec<IgnorePath> {
        paths
            .iter()
            .map(|p| IgnorePath::parse(p).unwrap())
            .collect()
    }

    #[test]
    fn paths_name_each_change_and_leave_out_a_missing_side() {
        let before = json!({"a": {"b": [1, 2, 3]}, "gone": true, "same": "x"});
        let after = json!({"a": {"b": [1, 5]}, "same": "x", "new": {"k": null}});
        assert_eq!(
            paths(&before, &after, &[]),
            [
                json!({"Path": ".a.b[1]", "Before": 2, "After": 5}),
                json!({"Path": ".a.b[2]", "Before": 3}),
                json!({"Path": ".gone", "Before": true}),
                json!({"Path": ".new", "After": {"k": null}}),
            ]
        );
        assert_eq!(
            paths(&json!([1, {"x": 1}]), &json!([1, {"x": 2}]), &[]),
            [json!({"Path": ".[1].x", "Before": 1, "After": 2})]
        );
        assert_eq!(
            paths(&json!({"a": 1}), &json!([1]), &[]),
            [json!({"Path": ".", "Before": {"a": 1}, "After": [1]})]
        );
        assert!(paths(&json!({"a": [1]}), &json!({"a": [1]}), &[]).is_empty());
        // A null and a missing key are not the same.
        assert_eq!(
            paths(&json!({"a": null}), &json!({}), &[]),
            [json!({"Path": ".a", "Before": null})]
        );
    }

    #[test]
    fn keys_that_are_not_identifiers_are_quoted_so_they_cannot_forge_a_path() {
        let before = json!({"a.b[0]": 1, "x\"y": 1, "9": 1, "ok_1": 1, "\u{1b}[31m": 1});
        let after = json!({"a.b[0]": 2, "x\"y": 2, "9": 2, "ok_1": 2, "\u{1b}[31m": 2});
        let rendered: Vec<String> = paths(&before, &after, &[])
            .iter()
            .map(|c| c["Path"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            rendered,
            [
                r#"."a.b[0]""#,
                r#"."x\"y""#,
                r#"."9""#,
                ".ok_1",
                r#"."\u001b[31m""#
            ]
        );
        // Each path, given back as --ignore-path, leaves out exactly its own key.
        for (i, path) in rendered.iter().enumerate() {
            let left = paths(&before, &after, &ignore(&[path]));
            assert_eq!(left.len(), rendered.len() - 1, "{path}");
            assert!(left.iter().all(|c| c["Path"] != rendered[i].as_str()));
        }
    }

    #[test]
    fn ignored_paths_and_any_index() {
        let before = json!({"ResponseMetadata": {"RequestId": "1"},
                            "Items": [{"Id": "a", "At": 1}, {"Id": "b", "At": 2}]});
        let after = json!({"ResponseMetadata": {"RequestId": "2"},
                           "Items": [{"Id": "a", "At": 3}, {"Id": "c", "At": 4}]});
        assert_eq!(paths(&before, &after, &[]).len(), 4);
        let left = paths(
            &before,
            &after,
            &ignore(&[".ResponseMetadata", ".Items[].At"]),
        );
        assert_eq!(
            left,
            [json!({"Path": ".Items[1].Id", "Before": "b", "After": "c"})]
        );
        assert_eq!(
            paths(
                &before,
                &after,
                &ignore(&[".ResponseMetadata", ".Items[1]"])
            )
            .len(),
            1
        );
        assert!(paths(&before, &after, &ignore(&[".ResponseMetadata", ".Items"])).is_empty());
        // An index pattern does not match a key, nor a key pattern an index.
        let left = paths(
            &json!({"0": 1}),
            &json!({"0": 2}),
            &ignore(&[".[0]", ".[]"]),
        );
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn path_syntax_is_checked_and_named() {
        assert_eq!(
            IgnorePath::parse(r#".a["b c"][2][]."d\"e".f_1.[3]"#).unwrap(),
            IgnorePath(vec![
                Pattern::Key("a".into()),
                Pattern::Key("b c".into()),
                Pattern::Index(2),
                Pattern::AnyIndex,
                Pattern::Key("d\"e".into()),
                Pattern::Key("f_1".into()),
                Pattern::Index(3),
            ])
        );
        for bad in [
            "",
            ".",
            "a",
            ".a.",
            ".a..b",
            ".a[",
            ".a[x]",
            ".a[-1]",
            ".9a",
            ".a b",
            ".\"open",
            ".a[\"k\"",
            ".a]",
            ".a-b",
            ".\u{1b}[31m",
        ] {
            let err = IgnorePath::parse(bad).unwrap_err();
            assert!(err.contains("expected a JSON path"), "{bad}: {err}");
            assert!(
                err.contains(&format!("`{}`", terminal(bad))),
                "{bad}: {err}"
            );
            assert!(!err.contains('\u{1b}'), "{err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_rendered_path_parses_back_to_itself(
            steps in proptest::collection::vec(
                proptest::prop_oneof![
                    "\\PC{0,6}".prop_map(Pattern::Key),
                    (0usize..1000).prop_map(Pattern::Index),
                ],
                1..6,
            )
        ) {
            let path: Vec<Step> = steps.iter().map(|p| match p {
                Pattern::Key(k) => Step::Key(k),
                Pattern::Index(i) => Step::Index(*i),
                Pattern::AnyIndex => unreachable!(),
            }).collect();
            let text = render(&path);
            proptest::prop_assert_eq!(IgnorePath::parse(&text), Ok(IgnorePath(steps.clone())));
        }
    }

    fn read(text: &str) -> anyhow::Result<Run> {
        parse(text.as_bytes(), "`f`")
    }

    const DOC: &str = r#"{"Results": [{"Id": "1", "Region": "r", "Name": "n", "ExitCode": 0,
        "Result": {"a": 1}, "Stderr": "ignored"}], "Exceptions": [], "FailedAssumeRole": []}"#;

    #[test]
    fn documents_and_jsonl_read_the_same() {
        let doc = read(DOC).unwrap();
        let compact =
            read(&serde_json::to_string(&serde_json::from_str::<Value>(DOC).unwrap()).unwrap())
                .unwrap();
        let jsonl = read(
            "{\"Id\": \"1\", \"Region\": \"r\", \"Name\": \"n\", \"ExitCode\": 0, \"Result\": {\"a\": 1}, \"Outcome\": \"Result\"}\n{\"Summary\": {}}\n",
        )
        .unwrap();
        for run in [&compact, &jsonl] {
            assert!(!compare(doc.clone(), run.clone(), &[]).differs());
            assert_eq!(compare(doc.clone(), run.clone(), &[]).unchanged, 1);
        }
    }

    #[test]
    fn foreign_cut_duplicate_and_deep_files_are_errors_not_panics() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_result = DOC.replace(r#"{"a": 1}"#, &deep);
        let dup = DOC.replace(
            "\"Exceptions\": []",
            &format!("\"Exceptions\": [{}]", r#"{"Id": "1", "Region": "r"}"#),
        );
        for (text, expected) in [
            ("", "is empty"),
            ("  \n\n", "is empty"),
            (r#"{"Roles": [], "Targets": []}"#, "not a cove output"),
            (
                "{\"Id\": \"1\", \"Region\": \"r\", \"Outcome\": \"Result\"}\n",
                "no Summary line",
            ),
            (
                "{\"Id\": \"1\", \"Region\": \"r\", \"Outcome\": \"Nope\"}\n",
                "no cove Outcome",
            ),
            (
                "{\"Outcome\": \"Result\"}\n{\"Summary\": {}}\n",
                "no Id or Region",
            ),
            ("{\"Summary\": {}}\nnot json\n", "line 2"),
            (&deep_result, "recursion limit"),
            (&deep, "not a cove output"),
            (&dup, "twice"),
            (
                "{\"Results\": \"\u{1b}[2J\", \"Exceptions\": [], \"FailedAssumeRole\": []}",
                "not a cove output",
            ),
        ] {
            let err = format!("{:#}", read(text).unwrap_err());
            assert!(err.contains(expected), "{expected}: {err}");
            assert!(err.contains("`f`"), "{err}");
            assert!(!err.contains('\u{1b}'), "{err}");
        }
    }

    fn target(outcome: Outcome, exit: Value, result: Value) -> Target {
        Target {
            outcome,
            name: json!("n"),
            exit_code: exit,
            result,
        }
    }

    #[test]
    fn a_changed_entry_holds_what_differs() {
        let key = ("1".to_owned(), "r".to_owned());
        let ok = target(Outcome::Result, json!(0), json!({"a": 1, "m": 1}));
        let same_but_m = target(Outcome::Result, json!(0), json!({"a": 1, "m": 2}));
        assert!(changed(&key, &ok, &same_but_m, &ignore(&[".m"])).is_none());
        let entry = changed(&key, &ok, &same_but_m, &[]).unwrap();
        assert_eq!(
            entry["Before"],
            json!({"Outcome": "Result", "ExitCode": 0, "Result": {"a": 1, "m": 1}})
        );
        assert_eq!(
            entry["Paths"],
            json!([{"Path": ".m", "Before": 1, "After": 2}])
        );
        assert!(entry.get("Diff").is_none());
        // Only the exit code: no Result, no Paths.
        let failed = target(Outcome::Exception, json!(3), json!({"a": 1, "m": 1}));
        let entry = changed(&key, &ok, &failed, &[]).unwrap();
        assert_eq!(
            entry["After"],
            json!({"Outcome": "Exception", "ExitCode": 3})
        );
        assert!(entry.get("Paths").is_none());
        // Text results: a unified diff.
        let text = |s: &str| target(Outcome::Result, json!(0), json!(s));
        let entry = changed(&key, &text("a\nb\n"), &text("a\nc\n"), &[]).unwrap();
        assert_eq!(entry["Diff"], json!(["@@ -1,2 +1,2 @@", " a", "-b", "+c"]));
        assert_eq!(entry["DiffCapped"], false);
        assert_eq!(entry["After"]["Result"], "a\nc\n");
        // JSON on one side, text on the other: both results, nothing more.
        let entry = changed(&key, &ok, &text("x"), &[]).unwrap();
        assert!(entry.get("Paths").is_none() && entry.get("Diff").is_none());
        assert_eq!(entry["Before"]["Result"], json!({"a": 1, "m": 1}));
    }

    #[test]
    fn added_removed_changed_and_unchanged_are_counted() {
        let t = |r: Value| target(Outcome::Result, json!(0), r);
        let k = |id: &str| (id.to_owned(), "r".to_owned());
        let old: Run = [
            (k("1"), t(json!(1))),
            (k("2"), t(json!({"x": 1}))),
            (k("3"), t(json!("a"))),
        ]
        .into();
        let new: Run = [
            (k("2"), t(json!({"x": 2}))),
            (k("3"), t(json!("a"))),
            (k("4"), t(Value::Null)),
        ]
        .into();
        let report = compare(old.clone(), new, &[]);
        assert!(report.differs());
        let doc = report.to_value();
        assert_eq!(
            doc["Removed"],
            json!([{"Id": "1", "Region": "r", "Name": "n", "Outcome": "Result", "ExitCode": 0}])
        );
        assert_eq!(doc["Added"][0]["Id"], "4");
        assert_eq!(doc["Changed"][0]["Id"], "2");
        assert_eq!(doc["Unchanged"], 1);
        assert_eq!(
            doc.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["Added", "Removed", "Changed", "Unchanged"]
        );
        assert!(!compare(old.clone(), old, &[]).differs());
    }

    #[test]
    fn text_output_escapes_what_came_from_the_files() {
        let key = ("1\u{1b}]0;x\u{7}".to_owned(), "r\u{202e}".to_owned());
        let mut before = target(
            Outcome::Result,
            json!(0),
            json!({"k\u{1b}[2J": "v\u{9b}31m"}),
        );
        before.name = json!("evil\u{1b}[31m");
        let after = target(Outcome::Result, json!(0), json!({"k\u{1b}[2J": "w"}));
        let text_a = target(Outcome::Result, json!(0), json!("a\u{1b}[31m\n"));
        let text_b = target(Outcome::Exception, json!(1), json!("b\n"));
        let report = Report {
            added: vec![brief(&key, &before)],
            removed: vec![],
            changed: vec![
                changed(&key, &before, &after, &[]).unwrap(),
                changed(&key, &text_a, &text_b, &[]).unwrap(),
            ],
            unchanged: 0,
        };
        for color in [false, true] {
            let mut out = Vec::new();
            write_text(&mut out, &report, color).unwrap();
            let text = String::from_utf8(out).unwrap();
            let stripped = [RED, GREEN, YELLOW, CYAN, RESET]
                .iter()
                .fold(text.clone(), |t, c| t.replace(c, ""));
            assert!(
                !stripped
                    .chars()
                    .any(|c| c.is_control() && c != '\n' || c == '\u{202e}' || c == '\u{9b}'),
                "{text:?}"
            );
            assert!(
                stripped.starts_with("1 added, 0 removed, 2 changed, 0 unchanged\n"),
                "{stripped}"
            );
            assert!(
                stripped.contains(r#"    ."k\u001b[2J": "v\u{9b}31m" -> "w""#),
                "{stripped}"
            );
            assert!(
                stripped
                    .contains("    Outcome: \"Result\" -> \"Exception\"\n    ExitCode: 0 -> 1\n"),
                "{stripped}"
            );
            assert!(
                stripped.contains("    -a\\u{1b}[31m\n    +b\n"),
                "{stripped}"
            );
            assert_eq!(text.contains(RED), color);
        }
    }
}
