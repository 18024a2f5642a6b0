//! The docs check (`scripts/check-docs`): every relative link and `#anchor` of the Markdown
//! files resolves, and the guide (`docs/`) names every long flag of `cove --help` and
//! `cove merge --help`, every `COVE_*` variable and every JSON key of the output. The flags come
//! from the built binary's help, the variables from the help and the sources, and the keys from
//! real output written by cove's own code, so nothing here is a hand-kept list.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, LazyLock, Mutex};

use regex::Regex;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files the links are checked in: the README, the guide, and the other docs.
pub fn markdown_files() -> Vec<PathBuf> {
    let root = root();
    let mut files: Vec<PathBuf> = [
        "README.md",
        "CHANGELOG.md",
        "ARCHITECTURE.md",
        "bench/README.md",
    ]
    .iter()
    .map(|f| root.join(f))
    .filter(|p| p.exists())
    .collect();
    files.extend(guide_files());
    files
}

/// The guide's pages: every `.md` file under `docs/`.
pub fn guide_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("a docs/ folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The guide as one text.
fn guide() -> String {
    guide_files()
        .iter()
        .map(|p| read(p))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The lines outside fenced code blocks, numbered from 1.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m && trimmed.trim_end() == m => fence = None,
            (None, None) => lines.push((i + 1, line)),
            _ => {}
        }
    }
    lines
}

/// The anchor GitHub gives a heading: lowercased; letters, digits, `-` and `_` kept, spaces
/// made `-`, everything else (punctuation, backticks) dropped. Links keep only their text.
pub fn slug(heading: &str) -> String {
    static LINK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"!?\[([^\]]*)\]\([^)]*\)").unwrap());
    static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[^>]+>").unwrap());
    let text = LINK.replace_all(heading, "$1");
    let text = TAG.replace_all(&text, "");
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor of a Markdown text: its headings' slugs (a repeated one gets `-1`, `-2`, ...,
/// as on GitHub) and explicit `<a name>`/`id` anchors.
pub fn anchors(text: &str) -> BTreeSet<String> {
    let heading = Regex::new(r"^#{1,6}\s+(.*?)\s*#*\s*$").unwrap();
    let explicit = Regex::new(r#"<a\s+(?:name|id)="([^"]+)""#).unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for (_, line) in prose(text) {
        if let Some(c) = heading.captures(line) {
            let base = slug(&c[1]);
            let n = seen.entry(base.clone()).or_insert(0);
            anchors.insert(if *n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            });
            *n += 1;
        }
        for c in explicit.captures_iter(line) {
            anchors.insert(c[1].to_owned());
        }
    }
    anchors
}

/// Every link destination of a Markdown text with its line: inline links and images, and
/// reference definitions. Code blocks and inline code hold no links.
pub fn links(text: &str) -> Vec<(usize, String)> {
    let code = Regex::new(r"`[^`]*`").unwrap();
    let inline = Regex::new(r#"\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)"#).unwrap();
    let reference = Regex::new(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)").unwrap();
    let mut found = Vec::new();
    let lines = prose(text);
    // An inline link may wrap onto the next line: join each paragraph's lines, keeping the
    // number of the line the link starts on.
    let mut i = 0;
    while i < lines.len() {
        let (start, first) = lines[i];
        let mut para = code.replace_all(first, "``").into_owned();
        let mut offsets = vec![(0usize, start)];
        i += 1;
        while i < lines.len() && lines[i].0 == lines[i - 1].0 + 1 && !lines[i].1.trim().is_empty() {
            para.push(' ');
            offsets.push((para.len(), lines[i].0));
            para.push_str(&code.replace_all(lines[i].1, "``"));
            i += 1;
        }
        let line_of = |at: usize| {
            offsets
                .iter()
                .rev()
                .find(|(o, _)| *o <= at)
                .map_or(start, |(_, l)| *l)
        };
        for c in inline.captures_iter(&para) {
            let m = c.get(1).unwrap();
            found.push((line_of(m.start()), m.as_str().to_owned()));
        }
    }
    for (n, line) in &lines {
        if let Some(c) = reference.captures(line) {
            found.push((*n, c[1].to_owned()));
        }
    }
    found
}

/// Every relative link of `file` that does not resolve: a missing file, or an anchor that no
/// heading of the target has. Web links (`https:`, `http:`, `mailto:`) are not followed.
pub fn broken_links(file: &Path, text: &str) -> Vec<String> {
    let dir = file.parent().unwrap();
    let mut broken = Vec::new();
    let mut anchors_of: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for (line, dest) in links(text) {
        if dest.contains("://") || dest.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = dest.split_once('#').unwrap_or((dest.as_str(), ""));
        let target = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        let at = format!("{}:{line}: `{dest}`", file.display());
        if !target.exists() {
            broken.push(format!("{at}: no file {}", target.display()));
            continue;
        }
        if anchor.is_empty() {
            continue;
        }
        if target.extension().is_none_or(|e| e != "md") {
            broken.push(format!("{at}: an anchor into a file that is not Markdown"));
        } else if !anchors_of
            .entry(target.clone())
            .or_insert_with(|| anchors(&read(&target)))
            .contains(anchor)
        {
            broken.push(format!(
                "{at}: no heading of {} has the anchor #{anchor}",
                target.display()
            ));
        }
    }
    broken
}

/// `cove ARGS` with nothing of the caller's environment (the help shows variables' values).
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cove"))
        .args(args)
        .env_clear()
        .env("COLUMNS", "100")
        .output()
        .expect("run cove");
    assert!(out.status.success(), "cove {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The long flags an option line of clap's help starts with (`  -t, --target <ID>`,
/// `      --region <REGION>`), not flags mentioned in the descriptions or examples.
pub fn help_flags(help: &str) -> BTreeSet<String> {
    let option = Regex::new(r"(?m)^ {2}(?:-[A-Za-z0-9], | {4})(--[a-z][a-z0-9-]*)").unwrap();
    option
        .captures_iter(help)
        .map(|c| c[1].to_owned())
        .collect()
}

/// Whether `text` names `flag` as a whole word (`--shard` is not named by `--shard-count`).
fn names_flag(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(at, _)| {
        !text[at + flag.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// Flags the guide does not name.
pub fn missing_flags(help: &str, guide: &str) -> Vec<String> {
    help_flags(help)
        .into_iter()
        .filter(|f| !names_flag(guide, f))
        .collect()
}

/// Every `COVE_*` variable: from the help (`[env: COVE_...]`), the sources under `src/` and
/// the scripts under `scripts/`.
fn cove_variables(help: &str) -> BTreeSet<String> {
    let var = Regex::new(r"\bCOVE_[A-Z0-9_]*[A-Z0-9]").unwrap();
    let mut texts = vec![help.to_owned()];
    let mut dirs = vec![root().join("src"), root().join("scripts")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                texts.push(text);
            }
        }
    }
    texts
        .iter()
        .flat_map(|t| var.find_iter(t).map(|m| m.as_str().to_owned()))
        .collect()
}

/// A buffer that cove's writers can own while the test keeps a handle on it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Every key of a JSON value, except inside `Result` (the command's own data).
fn keys_of(value: &Value, keys: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                keys.insert(k.clone());
                if k != "Result" {
                    keys_of(v, keys);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys_of(v, keys)),
        _ => {}
    }
}

/// The keys of real output, written by cove's own code: a json document and a jsonl stream
/// with one record of each outcome, and a dry-run matrix.
pub fn output_keys() -> BTreeSet<String> {
    use cove::output::{Format, Outcome, Record, Sink};
    let record = |outcome| Record {
        id: "111111111111".into(),
        name: Some("n".into()),
        email: Some("e".into()),
        status: Some("ACTIVE".into()),
        partition: "aws".into(),
        region: "us-east-1".into(),
        role_name: "R".into(),
        role_session_name: Some("R".into()),
        assume_role_success: true,
        exit_code: Some(0),
        result: Some(cove::raw_json::result_text(br#"{"Inner": 1}"#)),
        stderr: Some(String::new()),
        exception_details: None,
        duration_ms: 1,
        outcome,
        raw_output: None,
    };
    let mut values = Vec::new();
    for format in [Format::Json, Format::Jsonl] {
        let out = Shared::default();
        let mut sink = Sink::new(out.clone(), format, false, None);
        for outcome in [
            Outcome::Result,
            Outcome::Exception,
            Outcome::FailedAssumeRole,
        ] {
            sink.record(record(outcome)).unwrap();
        }
        sink.finish(0, 1).unwrap();
        for line in out.text().lines() {
            values.push(serde_json::from_str::<Value>(line).unwrap());
        }
    }
    let account = std::sync::Arc::new(cove::aws::Account {
        id: "111111111111".into(),
        name: Some("n".into()),
        email: Some("e".into()),
        status: Some("ACTIVE".into()),
        parents: None,
    });
    let via = BTreeMap::from([("111111111111".to_owned(), vec!["organization".to_owned()])]);
    let out = Shared::default();
    cove::dry_run::write(
        &[(account, "us-east-1".to_owned())],
        &via,
        &["R".to_owned()],
        (false, Some("000000000000")),
        true,
        out.clone(),
        false,
    )
    .unwrap();
    values.push(serde_json::from_str(&out.text()).unwrap());
    let mut keys = BTreeSet::new();
    values.iter().for_each(|v| keys_of(v, &mut keys));
    keys
}

/// Keys the guide does not name, as `` `Key` `` or `"Key"`.
pub fn missing_keys(keys: &BTreeSet<String>, guide: &str) -> Vec<String> {
    keys.iter()
        .filter(|k| !guide.contains(&format!("`{k}`")) && !guide.contains(&format!("\"{k}\"")))
        .cloned()
        .collect()
}

#[test]
fn github_anchor_slugs() {
    assert_eq!(
        slug("Long-running commands: `--child-credentials endpoint`"),
        "long-running-commands---child-credentials-endpoint"
    );
    assert_eq!(
        slug("Big organizations (W5 with `--output-dir`, W6, W7, W8)"),
        "big-organizations-w5-with---output-dir-w6-w7-w8"
    );
    assert_eq!(
        slug("Filters, sharding and reruns"),
        "filters-sharding-and-reruns"
    );
    assert_eq!(slug("[0.1.0] - 2026-12-01"), "010---2026-12-01");
    let twice = anchors("# A\n\n## Usage\n\n```sh\n# Not a heading\n```\n\n## Usage\n");
    assert_eq!(
        twice,
        BTreeSet::from(["a".into(), "usage".into(), "usage-1".into()])
    );
}

#[test]
fn the_check_finds_a_broken_link_a_missing_flag_and_a_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.md");
    std::fs::write(dir.path().join("other.md"), "# Other\n\n## Real section\n").unwrap();
    let text = "# Page\n\nSee [there](other.md#real-section), [gone](missing.md), \
                [wrong](other.md#no-such-section), [here](#page) and\n[wrapped](#nowhere).\n\n\
                ```sh\n[not a link](nowhere.md)\n```\n\n`[code](nowhere.md)`\n";
    std::fs::write(&page, text).unwrap();
    let broken = broken_links(&page, text);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].contains("missing.md") && broken[0].contains(":3:"));
    assert!(broken[1].contains("#no-such-section"));
    assert!(broken[2].contains("#nowhere") && broken[2].contains(":4:"));

    let help =
        "Options:\n  -t, --target <ID>\n      --shard-count <N>\n          see --not-a-flag\n";
    assert_eq!(
        missing_flags(help, "`--target` and `--shard-counts`"),
        ["--shard-count"]
    );
    let keys = BTreeSet::from(["Id".to_owned(), "Outcome".to_owned()]);
    assert_eq!(missing_keys(&keys, "`Id` and Outcomes"), ["Outcome"]);
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let files = markdown_files();
    assert!(
        files.len() >= 6,
        "the README, the guide and the rest: {files:?}"
    );
    let broken: Vec<String> = files
        .iter()
        .flat_map(|f| broken_links(f, &read(f)))
        .collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_long_flag_of_cove_help_is_in_the_guide() {
    let guide = guide();
    let main = help(&["--help"]);
    let merge = help(&["merge", "--help"]);
    let flags = help_flags(&main);
    assert!(
        flags.len() > 30 && flags.contains("--target") && help_flags(&merge).contains("--help"),
        "the help's option lines were found: {flags:?}"
    );
    let mut missing = missing_flags(&main, &guide);
    missing.extend(missing_flags(&merge, &guide));
    let diff = help(&["diff", "--help"]);
    assert!(help_flags(&diff).contains("--ignore-path"), "{diff}");
    missing.extend(missing_flags(&diff, &guide));
    assert!(
        missing.is_empty(),
        "flags of `cove --help` / `cove merge --help` / `cove diff --help` that no page of docs/ names: {missing:?}"
    );
}

#[test]
fn every_cove_variable_is_in_the_guide() {
    let guide = guide();
    let vars = cove_variables(&help(&["--help"]));
    assert!(
        vars.contains("COVE_TARGETS") && vars.contains("COVE_LOG") && vars.len() > 25,
        "{vars:?}"
    );
    let missing: Vec<&String> = vars.iter().filter(|v| !names_flag(&guide, v)).collect();
    assert!(
        missing.is_empty(),
        "COVE_* variables that no page of docs/ names: {missing:?}"
    );
}

#[test]
fn every_json_key_of_the_output_is_in_the_guide() {
    let keys = output_keys();
    for expected in [
        "Results",
        "Outcome",
        "Summary",
        "Skipped",
        "TargetedBy",
        "Roles",
    ] {
        assert!(keys.contains(expected), "{expected} in {keys:?}");
    }
    assert!(
        !keys.contains("Inner"),
        "a command's own data is not the contract"
    );
    let missing = missing_keys(&keys, &guide());
    assert!(
        missing.is_empty(),
        "JSON keys of the output that no page of docs/ names: {missing:?}"
    );
}

#[test]
fn the_readme_recipes_are_the_examples_of_the_help_and_the_man_page() {
    let path = root().join("README.md");
    let text = read(&path);
    // The recipes are the runnable blocks of "Everyday recipes"; other sections (such as
    // "Configuration") have runnable examples of their own.
    let start = text
        .lines()
        .position(|l| l == "## Everyday recipes")
        .expect("an Everyday recipes section");
    let end = (text.lines().enumerate().skip(start + 1))
        .find(|(_, l)| l.starts_with("## "))
        .map_or(usize::MAX, |(i, _)| i);
    let blocks: Vec<_> = crate::docs_examples::runnable(&path, &text)
        .into_iter()
        .filter(|b| (start..end).contains(&b.line))
        .collect();
    let lines: Vec<&str> = blocks.iter().flat_map(|b| b.body.lines()).collect();
    let commands: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("cove "))
        .collect();
    let whats: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("# "))
        .map(|l| l.split_once(". ").map_or(l, |(_, what)| what))
        .collect();
    let examples = cove::examples::EXAMPLES;
    assert_eq!(
        commands,
        examples.iter().map(|e| e.command).collect::<Vec<_>>(),
        "the README's recipes and src/examples.rs"
    );
    assert_eq!(
        whats,
        examples.iter().map(|e| e.what).collect::<Vec<_>>(),
        "the README's recipe titles and src/examples.rs"
    );
    let help = help(&["--help"]);
    let guide = format!("The guide: {}", cove::examples::guide_address());
    assert!(help.trim_end().ends_with(&guide), "{help}");
    let man = read(&root().join("man/cove.1"));
    assert!(man.contains(".SH EXAMPLES"), "regenerate man/cove.1");
}
