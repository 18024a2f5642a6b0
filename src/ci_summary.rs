//! The run as GitHub Actions shows it: a Markdown summary appended to the job's step summary
//! (the file `GITHUB_STEP_SUMMARY` names) and `::error` annotations for the first failed
//! targets. Only when `GITHUB_ACTIONS=true`, and not with `--no-ci-summary`.
//!
//! The annotations go to stderr: GitHub reads workflow commands from both streams, and stdout
//! is cove's data. Only what records hold is written, and records never hold secrets.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::output::{Counts, Outcome, Record};
use crate::progress::thousands;

/// Rows of the failed-targets table; the rest are counted in a line below it.
pub const MAX_ROWS: usize = 50;
/// `::error` annotations; GitHub itself shows only the first few of a step.
pub const MAX_ANNOTATIONS: usize = 10;

/// The step summary file, when cove runs in GitHub Actions.
pub fn destination() -> Option<PathBuf> {
    if std::env::var_os("GITHUB_ACTIONS")? != "true" {
        return None;
    }
    let path = std::env::var_os("GITHUB_STEP_SUMMARY")?;
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// What the summary shows of one failed target.
#[derive(Debug, Clone)]
struct Failure {
    id: String,
    name: Option<String>,
    region: String,
    exit_code: Option<i32>,
    details: String,
}

/// Gathers the failed targets as records pass: all are counted, the first [`MAX_ROWS`] kept.
#[derive(Debug)]
pub struct Collector {
    path: PathBuf,
    kept: Vec<Failure>,
    failed: u64,
}

impl Collector {
    pub fn new(path: PathBuf) -> Self {
        Collector {
            path,
            kept: Vec::new(),
            failed: 0,
        }
    }

    pub fn add(&mut self, record: &Record) {
        if record.outcome == Outcome::Result {
            return;
        }
        self.failed += 1;
        // The first rows by account and region, not the first to fail: the same failures give
        // the same table whatever order they finished in.
        let key = (&record.id, &record.region);
        let at = self.kept.partition_point(|k| (&k.id, &k.region) <= key);
        if at < MAX_ROWS {
            self.kept.insert(
                at,
                Failure {
                    id: record.id.clone(),
                    name: record.name.clone(),
                    region: record.region.clone(),
                    exit_code: record.exit_code,
                    details: record.exception_details.clone().unwrap_or_default(),
                },
            );
            self.kept.truncate(MAX_ROWS);
        }
    }

    /// Appends the summary to the file and prints the annotations on stderr. A file that
    /// cannot be written is a warning: the run's outcome stands.
    pub fn report(self, counts: &Counts, skipped: u64, stopped: Option<&str>) {
        let markdown = self.markdown(counts, skipped, stopped);
        if let Err(err) = append(&self.path, &markdown) {
            eprintln!(
                "cove: warning: could not write the GitHub step summary to `{}`: {err}",
                self.path.display()
            );
        }
        let mut stderr = io::stderr().lock();
        let _ = stderr.write_all(self.annotations().as_bytes());
    }

    fn markdown(&self, counts: &Counts, skipped: u64, stopped: Option<&str>) -> String {
        let mut md = format!(
            "### cove: {} ok, {} failed, {} could not assume role{}\n\n",
            thousands(counts.of(Outcome::Result)),
            thousands(counts.of(Outcome::Exception)),
            thousands(counts.of(Outcome::FailedAssumeRole)),
            stopped.map(|s| format!(" ({s})")).unwrap_or_default()
        );
        md.push_str("| Results | Exceptions | FailedAssumeRole | Skipped |\n");
        md.push_str("| ---: | ---: | ---: | ---: |\n");
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            counts.of(Outcome::Result),
            counts.of(Outcome::Exception),
            counts.of(Outcome::FailedAssumeRole),
            skipped
        ));
        if self.kept.is_empty() {
            return md;
        }
        md.push_str("\n| Account | Name | Region | Exit code | Details |\n");
        md.push_str("| --- | --- | --- | ---: | --- |\n");
        for f in &self.kept {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                cell(&f.id),
                cell(f.name.as_deref().unwrap_or("-")),
                cell(&f.region),
                f.exit_code.map_or("-".to_owned(), |c| c.to_string()),
                cell(f.details.lines().next().unwrap_or_default())
            ));
        }
        let more = self.failed.saturating_sub(self.kept.len() as u64);
        if more > 0 {
            md.push_str(&format!(
                "\nand {} more failed targets; see Exceptions and FailedAssumeRole in the output.\n",
                thousands(more)
            ));
        }
        md
    }

    fn annotations(&self) -> String {
        self.kept
            .iter()
            .take(MAX_ANNOTATIONS)
            .map(|f| {
                let name = f.name.as_deref().unwrap_or("-");
                format!(
                    "::error title={}::{}\n",
                    property(&format!("cove: {} {}", f.id, f.region)),
                    data(&format!("{} ({name}) {}: {}", f.id, f.region, f.details))
                )
            })
            .collect()
    }
}

fn append(path: &Path, text: &str) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

/// A Markdown table cell: one line, no cell break, no HTML, no link, image, code span or
/// emphasis. Account names and details come from AWS and from the command, so everything
/// Markdown gives a meaning is escaped: `|` would end the cell, `[ ] ( ) !` make links and
/// images, `<` and `>` HTML or autolinks, backticks code; `://`, `www.` and `@` would become
/// links by GitHub's autolinking. Control characters (newlines too) are shown as `\u{..}`.
fn cell(text: &str) -> String {
    let text = crate::untrusted::terminal(text);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' | '\\' | '[' | ']' | '(' | ')' | '!' | '`' | '*' | '_' | '~' | '@' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // `https://x` and `www.x` are links to GitHub even without brackets.
            ':' if chars.peek() == Some(&'/') => out.push_str("\\:"),
            '.' if out.ends_with("www") || out.ends_with("WWW") => out.push_str("\\."),
            c => out.push(c),
        }
    }
    out
}

/// Workflow-command data (the message): `%`, `\r` and `\n` escaped, as GitHub's toolkit does,
/// and other control characters (ESC sequences) shown as `\u{..}`, never sent as they are.
fn data(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| match c {
            '\r' | '\n' => c.to_string(),
            c => crate::untrusted::terminal(c.encode_utf8(&mut [0; 4])).into_owned(),
        })
        .collect();
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow-command property value: as data, plus `:` and `,`.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(id: &str, name: Option<&str>, details: &str) -> Record {
        Record {
            name: name.map(str::to_owned),
            exit_code: Some(3),
            stderr: Some("not kept".into()),
            exception_details: Some(details.into()),
            ..crate::output::sample_record(id, "us-east-1", Outcome::Exception)
        }
    }

    fn counts(ok: u64, exceptions: u64) -> Counts {
        let mut counts = Counts::default();
        (0..ok).for_each(|_| counts.add(Outcome::Result));
        (0..exceptions).for_each(|_| counts.add(Outcome::Exception));
        counts
    }

    #[test]
    fn cells_and_commands_are_escaped() {
        assert_eq!(cell("a|b\nc<d>&\\"), "a\\|b\\\\u{a}c&lt;d&gt;&amp;\\\\");
        assert_eq!(data("50%\r\nx::y"), "50%25%0D%0Ax::y");
        assert_eq!(property("cove: a,b"), "cove%3A a%2Cb");
    }

    #[test]
    fn an_account_name_cannot_become_a_link_an_image_html_or_a_new_row() {
        for (name, shown) in [
            (
                "[x](https://evil.example)",
                "\\[x\\]\\(https\\://evil.example\\)",
            ),
            ("![i](http://e/p.png)", "\\!\\[i\\]\\(http\\://e/p.png\\)"),
            ("<img src=x onerror=y>", "&lt;img src=x onerror=y&gt;"),
            ("`code` *b* _i_ ~s~", "\\`code\\` \\*b\\* \\_i\\_ \\~s\\~"),
            ("www.evil.example", "www\\.evil.example"),
            ("a@evil.example", "a\\@evil.example"),
            (
                "a\n| x | y |\r\u{1b}[2J",
                "a\\\\u{a}\\| x \\| y \\|\\\\u{d}\\\\u{1b}\\[2J",
            ),
        ] {
            assert_eq!(cell(name), shown, "{name:?}");
        }
        let mut ci = Collector::new(PathBuf::new());
        ci.add(&failed(
            "000000000001",
            Some("[x](https://e)\n| a |"),
            "bad <b>",
        ));
        let md = ci.markdown(&counts(0, 1), 0, None);
        let row = md
            .lines()
            .find(|l| l.starts_with("| 000000000001"))
            .unwrap();
        assert_eq!(
            row,
            "| 000000000001 | \\[x\\]\\(https\\://e\\)\\\\u{a}\\| a \\| | us-east-1 | 3 | bad &lt;b&gt; |"
        );
    }

    #[test]
    fn annotations_carry_no_control_characters_and_escape_properties() {
        let mut ci = Collector::new(PathBuf::new());
        ci.add(&failed(
            "000000000001",
            Some("n\u{1b}]0;t\u{7}%,:"),
            "50%\r\n::warning::x",
        ));
        let text = ci.annotations();
        assert_eq!(
            text,
            "::error title=cove%3A 000000000001 us-east-1::000000000001 (n\\u{1b}]0;t\\u{7}%25,:) us-east-1: 50%25%0D%0A::warning::x\n"
        );
    }

    #[test]
    fn the_table_holds_at_most_50_rows_and_says_how_many_more() {
        let mut ci = Collector::new(PathBuf::new());
        let mut ok = failed("999999999999", None, "");
        ok.outcome = Outcome::Result;
        ci.add(&ok);
        // Finishing in reverse order: the table still holds the first 50 by account.
        for i in (0..60).rev() {
            ci.add(&failed(&format!("{i:012}"), Some("a|b"), "exit 3\nmore"));
        }
        assert_eq!(ci.kept.len(), MAX_ROWS);
        let md = ci.markdown(&counts(1, 60), 2, Some("interrupted"));
        assert!(
            md.starts_with("### cove: 1 ok, 60 failed, 0 could not assume role (interrupted)\n"),
            "{md}"
        );
        assert!(md.contains("| 1 | 60 | 0 | 2 |\n"), "{md}");
        assert!(
            md.contains("| 000000000000 | a\\|b | us-east-1 | 3 | exit 3 |\n"),
            "{md}"
        );
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| 0000")).collect();
        assert_eq!(rows.len(), MAX_ROWS);
        assert!(rows[MAX_ROWS - 1].starts_with("| 000000000049 |"), "{md}");
        assert!(md.contains("\nand 10 more failed targets;"), "{md}");
        assert!(!md.contains("not kept") && !md.contains("more\n|"));
    }

    #[test]
    fn at_most_ten_annotations_each_on_one_line() {
        let mut ci = Collector::new(PathBuf::new());
        for i in 0..12 {
            ci.add(&failed(&format!("{i:012}"), None, "100% bad\nsecond line"));
        }
        let text = ci.annotations();
        assert_eq!(text.lines().count(), MAX_ANNOTATIONS);
        assert_eq!(
            text.lines().next().unwrap(),
            "::error title=cove%3A 000000000000 us-east-1::000000000000 (-) us-east-1: 100%25 bad%0Asecond line"
        );
    }

    #[test]
    fn no_failures_means_counts_only() {
        let ci = Collector::new(PathBuf::new());
        let md = ci.markdown(&counts(3, 0), 0, None);
        assert!(!md.contains("| Account |"), "{md}");
        assert_eq!(ci.annotations(), "");
    }
}
