//! The output contract: one record per target, in botocove's shape, written once to stdout.
//! Keys and their meaning are relied on by users' jq scripts: change nothing lightly.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Which list a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command ran and exited 0.
    Result,
    /// The role was assumed, but the command failed, was killed, or could not start.
    Exception,
    /// The role could not be assumed, so the command did not run.
    FailedAssumeRole,
}

/// One target's outcome. Every key is always present; unknown values are `null`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub status: Option<String>,
    pub partition: String,
    pub region: String,
    pub role_name: String,
    pub role_session_name: String,
    pub assume_role_success: bool,
    pub exit_code: Option<i32>,
    pub result: Option<serde_json::Value>,
    pub stderr: Option<String>,
    pub exception_details: Option<String>,
    pub duration_ms: u64,
    #[serde(skip)]
    pub outcome: Outcome,
    /// The raw bytes, for `--output-dir`; taken by the sink before the record is kept.
    #[serde(skip)]
    pub raw_output: Option<RawOutput>,
}

/// The document written at the end of a run.
#[derive(Debug, Default, Serialize)]
pub struct Document {
    #[serde(rename = "Results")]
    pub results: Vec<Record>,
    #[serde(rename = "Exceptions")]
    pub exceptions: Vec<Record>,
    #[serde(rename = "FailedAssumeRole")]
    pub failed_assume_role: Vec<Record>,
}

impl Document {
    /// Sorts records into their lists, each ordered by `Id` then `Region`.
    pub fn new(records: Vec<Record>) -> Self {
        let mut doc = Document::default();
        for record in records {
            match record.outcome {
                Outcome::Result => doc.results.push(record),
                Outcome::Exception => doc.exceptions.push(record),
                Outcome::FailedAssumeRole => doc.failed_assume_role.push(record),
            }
        }
        for list in [
            &mut doc.results,
            &mut doc.exceptions,
            &mut doc.failed_assume_role,
        ] {
            list.sort_by(|a, b| (&a.id, &a.region).cmp(&(&b.id, &b.region)));
        }
        doc
    }
}

/// A child's stdout as it goes under `Result`: parsed JSON when the whole output is JSON, so
/// `aws ... --output json` nests as data; otherwise the text, decoded lossily.
pub fn result_value(stdout: &[u8]) -> serde_json::Value {
    match serde_json::from_slice::<serde_json::Value>(stdout) {
        Ok(value) if !stdout.iter().all(u8::is_ascii_whitespace) => value,
        _ => serde_json::Value::String(String::from_utf8_lossy(stdout).into_owned()),
    }
}

/// Writes one JSON value and a newline: pretty for a person at a terminal, one line otherwise.
/// The run's document, the dry-run matrix and `cove merge` all go through here.
pub fn write_json(out: &mut impl Write, value: &impl Serialize, pretty: bool) -> io::Result<()> {
    if pretty {
        serde_json::to_writer_pretty(&mut *out, value)?;
    } else {
        serde_json::to_writer(&mut *out, value)?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes the document.
pub fn write_document(out: &mut impl Write, doc: &Document, pretty: bool) -> io::Result<()> {
    write_json(out, doc, pretty)
}

/// The `--output` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One document when every target has finished.
    Json,
    /// One record per line as each target finishes, then a summary line.
    Jsonl,
}

/// A record as one jsonl line: the same keys, plus `Outcome`.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    record: &'a Record,
    #[serde(rename = "Outcome")]
    outcome: &'static str,
}

impl Outcome {
    pub fn list_name(self) -> &'static str {
        match self {
            Outcome::Result => "Result",
            Outcome::Exception => "Exception",
            Outcome::FailedAssumeRole => "FailedAssumeRole",
        }
    }
}

/// How many targets ended in each list.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Counts {
    pub results: u64,
    pub exceptions: u64,
    pub failed_assume_role: u64,
}

impl Counts {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Result => self.results += 1,
            Outcome::Exception => self.exceptions += 1,
            Outcome::FailedAssumeRole => self.failed_assume_role += 1,
        }
    }

    pub fn all_succeeded(&self) -> bool {
        self.exceptions == 0 && self.failed_assume_role == 0
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Summary {
    #[serde(flatten)]
    counts: Counts,
    skipped: u64,
    duration_ms: u64,
}

/// The one writer of data: stdout in the chosen format, and the `--output-dir` files. In jsonl
/// mode without an output directory it holds nothing after a line is written.
pub struct Sink<W: Write> {
    out: W,
    format: Format,
    pretty: bool,
    dir: Option<PathBuf>,
    kept: Vec<Record>,
    pub counts: Counts,
}

impl<W: Write> Sink<W> {
    pub fn new(out: W, format: Format, pretty: bool, dir: Option<PathBuf>) -> Self {
        Sink {
            out,
            format,
            pretty,
            dir,
            kept: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Takes one finished target. An error means stdout is gone: stop the run.
    pub fn record(&mut self, mut record: Record) -> io::Result<()> {
        self.counts.add(record.outcome);
        if let (Some(dir), Some(raw)) = (&self.dir, record.raw_output.take())
            && let Err(err) = write_target_files(dir, &record, &raw)
        {
            // The target's outcome still stands; say where its files are missing.
            let problem = format!("could not write its --output-dir files: {err}");
            eprintln!("cove: warning: {} {}: {problem}", record.id, record.region);
            record.exception_details = Some(match record.exception_details.take() {
                Some(details) => format!("{details}; {problem}"),
                None => problem,
            });
        }
        if self.format == Format::Jsonl {
            let line = Line {
                record: &record,
                outcome: record.outcome.list_name(),
            };
            serde_json::to_writer(&mut self.out, &line)?;
            self.out.write_all(b"\n")?;
            self.out.flush()?;
        }
        if self.format == Format::Json || self.dir.is_some() {
            self.kept.push(record);
        }
        Ok(())
    }

    /// Writes what only the end can write: the document, or the summary line, and
    /// `results.json` in the output directory.
    pub fn finish(mut self, skipped: u64, duration_ms: u64) -> io::Result<Counts> {
        let doc = Document::new(std::mem::take(&mut self.kept));
        if let Some(dir) = &self.dir {
            let mut file = io::BufWriter::new(std::fs::File::create(dir.join("results.json"))?);
            write_document(&mut file, &doc, true)?;
        }
        match self.format {
            Format::Json => write_document(&mut self.out, &doc, self.pretty)?,
            Format::Jsonl => {
                let summary = Summary {
                    counts: self.counts,
                    skipped,
                    duration_ms,
                };
                serde_json::to_writer(&mut self.out, &serde_json::json!({ "Summary": summary }))?;
                self.out.write_all(b"\n")?;
                self.out.flush()?;
            }
        }
        Ok(self.counts)
    }
}

/// A child's output as it came, for `--output-dir`.
#[derive(Debug, Clone, Default)]
pub struct RawOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// `DIR/<account-id>/<region>/stdout` and `stderr`, byte for byte. The two path parts must be
/// an account ID and a region name, never anything that could leave `DIR`.
fn write_target_files(dir: &Path, record: &Record, raw: &RawOutput) -> io::Result<()> {
    let safe = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !crate::ids::is_account_id(&record.id) || !safe(&record.region) {
        return Err(io::Error::other(format!(
            "refusing the path {}/{}",
            record.id, record.region
        )));
    }
    let target = dir.join(&record.id).join(&record.region);
    std::fs::create_dir_all(&target)?;
    std::fs::write(target.join("stdout"), &raw.stdout)?;
    std::fs::write(target.join("stderr"), &raw.stderr)
}

/// True when an error means the reader of stdout went away (`| head`).
pub fn is_closed_pipe(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, region: &str, outcome: Outcome) -> Record {
        Record {
            id: id.into(),
            name: None,
            email: None,
            status: None,
            partition: "aws".into(),
            region: region.into(),
            role_name: "R".into(),
            role_session_name: "R".into(),
            assume_role_success: true,
            exit_code: Some(0),
            result: None,
            stderr: None,
            exception_details: None,
            duration_ms: 0,
            outcome,
            raw_output: None,
        }
    }

    #[test]
    fn records_sort_by_id_then_region_within_their_list() {
        let doc = Document::new(vec![
            record("2", "us-east-1", Outcome::Result),
            record("1", "us-west-2", Outcome::Result),
            record("1", "eu-west-1", Outcome::Result),
            record("3", "eu-west-1", Outcome::Exception),
        ]);
        let keys: Vec<_> = doc
            .results
            .iter()
            .map(|r| (r.id.as_str(), r.region.as_str()))
            .collect();
        assert_eq!(
            keys,
            [("1", "eu-west-1"), ("1", "us-west-2"), ("2", "us-east-1")]
        );
        assert_eq!(doc.exceptions.len(), 1);
    }

    #[test]
    fn jsonl_writes_each_record_with_its_outcome_and_keeps_nothing() {
        let mut sink = Sink::new(Vec::new(), Format::Jsonl, false, None);
        sink.record(record("1", "r", Outcome::Exception)).unwrap();
        assert!(sink.kept.is_empty());
        let first: serde_json::Value =
            serde_json::from_slice(sink.out.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(first["Outcome"], "Exception");
        assert_eq!(first["Id"], "1");
        let mut out = Vec::new();
        let mut sink = Sink::new(&mut out, Format::Jsonl, false, None);
        sink.record(record("1", "r", Outcome::Result)).unwrap();
        sink.finish(2, 5).unwrap();
        let last: serde_json::Value =
            serde_json::from_slice(out.trim_ascii_end().rsplit(|b| *b == b'\n').next().unwrap())
                .unwrap();
        assert_eq!(
            last,
            serde_json::json!({"Summary": {"Results": 1, "Exceptions": 0, "FailedAssumeRole": 0, "Skipped": 2, "DurationMs": 5}})
        );
    }

    #[test]
    fn every_key_is_present_even_when_null() {
        let v = serde_json::to_value(record("1", "r", Outcome::Result)).unwrap();
        for key in [
            "Id",
            "Name",
            "Email",
            "Status",
            "Partition",
            "Region",
            "RoleName",
            "RoleSessionName",
            "AssumeRoleSuccess",
            "ExitCode",
            "Result",
            "Stderr",
            "ExceptionDetails",
            "DurationMs",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v.as_object().unwrap().len(), 14);
    }

    #[test]
    fn json_stdout_nests_and_text_stays_text() {
        assert_eq!(result_value(b"{\"a\": 1}\n"), serde_json::json!({"a": 1}));
        let big = b"123456789012345678901234567890";
        assert_eq!(
            serde_json::to_string(&result_value(big))
                .unwrap()
                .as_bytes(),
            big,
            "numbers keep every digit"
        );
        assert_eq!(result_value(b"hello\n"), serde_json::json!("hello\n"));
        assert_eq!(result_value(b""), serde_json::json!(""));
        assert_eq!(result_value(b"\xff\n"), serde_json::json!("\u{fffd}\n"));
    }

    proptest::proptest! {
        #[test]
        fn any_output_bytes_make_a_valid_document(
            stdout in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            stderr in "\\PC{0,50}",
            code in proptest::option::of(proptest::num::i32::ANY),
        ) {
            let mut r = record("111111111111", "us-east-1", Outcome::Exception);
            r.result = Some(result_value(&stdout));
            r.stderr = Some(stderr.clone());
            r.exit_code = code;
            let doc = Document::new(vec![r]);
            let mut out = Vec::new();
            write_document(&mut out, &doc, false).unwrap();
            let back: serde_json::Value = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(&back["Exceptions"][0]["Stderr"], &serde_json::json!(stderr));
            proptest::prop_assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        }
    }
}
