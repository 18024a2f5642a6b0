//! The output contract: one record per target, in botocove's shape, written to stdout by one
//! writer thread of its own. Keys and their meaning are relied on by users' jq scripts: change
//! nothing lightly.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::output_dir::OutputDir;
use crate::spool::Spool;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::text;

/// Which list a record belongs to. The names of the lists and outcomes are spelled here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command ran and exited 0.
    Result,
    /// The role was assumed, but the command failed, was killed, or could not start.
    Exception,
    /// The role could not be assumed, so the command did not run.
    FailedAssumeRole,
}

impl Outcome {
    /// Every outcome, in the order of the document's lists.
    pub const ALL: [Outcome; 3] = [
        Outcome::Result,
        Outcome::Exception,
        Outcome::FailedAssumeRole,
    ];

    /// The `Outcome` value of a jsonl line.
    pub fn line_name(self) -> &'static str {
        match self {
            Outcome::Result => "Result",
            Outcome::Exception => "Exception",
            Outcome::FailedAssumeRole => "FailedAssumeRole",
        }
    }

    /// The key of the document's list (and of the summary's count).
    pub fn list_key(self) -> &'static str {
        match self {
            Outcome::Result => "Results",
            Outcome::Exception => "Exceptions",
            Outcome::FailedAssumeRole => "FailedAssumeRole",
        }
    }

    pub fn from_line_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.line_name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }

    /// A record read back from its JSON has no outcome of its own: the reader sets it.
    fn read_back() -> Outcome {
        Outcome::Exception
    }
}

/// One target's outcome. Every key is always present; unknown values are `null`. It reads
/// back (without `outcome` and `raw_output`) from what it prints: the writer's spill does.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub status: Option<String>,
    pub partition: String,
    pub region: String,
    pub role_name: String,
    /// `null` for a permission set of `--sso-role`: cove names no session there.
    pub role_session_name: Option<String>,
    pub assume_role_success: bool,
    pub exit_code: Option<i32>,
    /// Compact JSON text, exactly as `serde_json` printed the parsed output before
    /// ([`crate::raw_json::result_text`]): the output is held once, as text, never as a tree.
    /// Serialized verbatim, so a record prints compact; the spool lays it out pretty.
    /// `None` while `raw_output` carries the output: the sink makes it from there.
    pub result: Option<Box<serde_json::value::RawValue>>,
    pub stderr: Option<String>,
    pub exception_details: Option<String>,
    pub duration_ms: u64,
    #[serde(skip, default = "Outcome::read_back")]
    pub outcome: Outcome,
    /// The raw bytes, for `--output-dir`; taken by the sink before the record is kept.
    #[serde(skip)]
    pub raw_output: Option<RawOutput>,
}

/// The document written at the end of a run: one list per [`Outcome`], each ordered by `Id`
/// then `Region`.
#[derive(Debug, Default)]
pub struct Document {
    lists: [Vec<Record>; 3],
}

impl Document {
    /// Sorts records into their lists, each ordered by `Id` then `Region`.
    pub fn new(records: Vec<Record>) -> Self {
        let mut doc = Document::default();
        for record in records {
            doc.lists[record.outcome.index()].push(record);
        }
        for list in &mut doc.lists {
            list.sort_by(|a, b| (&a.id, &a.region).cmp(&(&b.id, &b.region)));
        }
        doc
    }

    pub fn list(&self, outcome: Outcome) -> &[Record] {
        &self.lists[outcome.index()]
    }
}

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Outcome::ALL.len()))?;
        for outcome in Outcome::ALL {
            map.serialize_entry(outcome.list_key(), self.list(outcome))?;
        }
        map.end()
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

/// Why output could not be written. A closed pipe (`cove ... | head`) is not an error for
/// the user: it ends cove quietly. This is the one place that tells the two apart.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("the reader of the output went away")]
    Closed,
    #[error("{0}")]
    Failed(io::Error),
}

impl From<io::Error> for OutputError {
    fn from(err: io::Error) -> Self {
        if err.kind() == io::ErrorKind::BrokenPipe {
            OutputError::Closed
        } else {
            OutputError::Failed(err)
        }
    }
}

/// A finished write of a whole document: a closed pipe is fine, any other failure is an error
/// naming `what` was being written.
pub fn written(result: io::Result<()>, what: &str) -> anyhow::Result<()> {
    match result.map_err(OutputError::from) {
        Ok(()) | Err(OutputError::Closed) => Ok(()),
        Err(OutputError::Failed(err)) => {
            Err(anyhow::Error::new(err).context(format!("could not write {what}")))
        }
    }
}

/// The `--output` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One document when every target has finished.
    Json,
    /// One record per line as each target finishes, then a summary line.
    Jsonl,
    /// For people: as each target finishes, its stdout and stderr lines tagged with the
    /// account ID, name and region, and one line saying why if it failed.
    Text,
}

/// A record as one jsonl line: the same keys, plus `Outcome`.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    record: &'a Record,
    #[serde(rename = "Outcome")]
    outcome: &'static str,
}

/// How many targets ended in each list.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    by_outcome: [u64; 3],
}

impl Counts {
    pub fn add(&mut self, outcome: Outcome) {
        self.by_outcome[outcome.index()] += 1;
    }

    pub fn of(&self, outcome: Outcome) -> u64 {
        self.by_outcome[outcome.index()]
    }

    /// Targets in `Exceptions` or `FailedAssumeRole`.
    pub fn failed(&self) -> u64 {
        self.of(Outcome::Exception) + self.of(Outcome::FailedAssumeRole)
    }

    pub fn total(&self) -> u64 {
        self.by_outcome.iter().sum()
    }
}

impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Outcome::ALL.len()))?;
        for outcome in Outcome::ALL {
            map.serialize_entry(outcome.list_key(), &self.of(outcome))?;
        }
        map.end()
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

/// Writes the data: stdout in the chosen format, and the `--output-dir` files. It holds no
/// record after it is written: the json document and `results.json` come from a [`Spool`]
/// (in memory only what the spool could not take). It runs on the
/// [`crate::writer`] thread, so a slow reader never holds up the scheduler.
pub struct Sink<W: Write> {
    out: W,
    format: Format,
    pretty: bool,
    /// `--output-dir`, opened and checked, or why it could not be (each write then says so).
    dir: Option<Result<OutputDir, String>>,
    /// Where the records are kept until the end: for the json document (and `results.json`)
    /// in json mode, for `results.json` in the streamed formats with `--output-dir`.
    spool: Option<Spool>,
    /// The spool could not be written: no `results.json` for this run.
    spool_failed: bool,
    pub counts: Counts,
    color: bool,
}

impl<W: Write> Sink<W> {
    pub fn new(out: W, format: Format, pretty: bool, dir: Option<PathBuf>) -> Self {
        Sink {
            out,
            format,
            pretty,
            dir: dir.map(|path| OutputDir::open(&path).map_err(|e| format!("{e:#}"))),
            spool: None,
            spool_failed: false,
            counts: Counts::default(),
            color: false,
        }
    }

    /// Colors the text format (the caller knows the output is a terminal that wants them).
    pub fn with_color(mut self, color: bool) -> Self {
        self.color = color;
        self
    }

    /// The output directory, when it could be opened: the writer's spill goes there too.
    pub fn spill_dir(&self) -> Option<PathBuf> {
        match &self.dir {
            Some(Ok(dir)) => Some(dir.path().to_owned()),
            _ => None,
        }
    }

    /// Takes one finished target. An error means stdout is gone: stop the run.
    pub fn record(&mut self, mut record: Record) -> io::Result<()> {
        self.counts.add(record.outcome);
        let raw = record.raw_output.take();
        // A record that carries its raw output carries no `Result` of its own (the output is
        // held once): made here, where JSON is written.
        if let Some(raw) = &raw
            && record.result.is_none()
            && (self.format != Format::Text || self.dir.is_some())
        {
            record.result = Some(crate::raw_json::result_text(&raw.stdout));
        }
        if let (Some(dir), Some(raw)) = (&self.dir, &raw)
            && let Err(err) = write_target_files(dir, &record, raw)
        {
            // The target's outcome still stands; say where its files are missing.
            let problem = format!("could not write its --output-dir files: {err}");
            eprintln!("cove: warning: {} {}: {problem}", record.id, record.region);
            record.exception_details = Some(match record.exception_details.take() {
                Some(details) => format!("{details}; {problem}"),
                None => problem,
            });
        }
        match self.format {
            Format::Json => {}
            Format::Jsonl => {
                let line = Line {
                    record: &record,
                    outcome: record.outcome.line_name(),
                };
                serde_json::to_writer(&mut self.out, &line)?;
                self.out.write_all(b"\n")?;
                self.out.flush()?;
            }
            Format::Text => self.write_text(&record, raw.as_ref())?,
        }
        if self.format == Format::Json {
            self.keep_record(&record);
        } else {
            self.spool_record(&record);
        }
        Ok(())
    }

    /// One target in the text form, from its raw output (which the run keeps for this sink).
    fn write_text(&mut self, record: &Record, raw: Option<&RawOutput>) -> io::Result<()> {
        let details = record.exception_details.as_deref();
        let failed = record.outcome != Outcome::Result;
        let target = text::Target {
            id: &record.id,
            name: record.name.as_deref(),
            region: &record.region,
            stdout: raw.map_or(&[][..], |r| &r.stdout),
            stderr: raw.map_or(&[][..], |r| &r.stderr),
            failure: if failed {
                Some(details.unwrap_or("failed"))
            } else {
                None
            },
            note: details.filter(|_| !failed),
        };
        text::write_target(&mut self.out, &target, self.color)
    }

    /// Keeps a streamed record for `results.json`. The output directory failing is not stdout
    /// failing: the run goes on, and `results.json` is left out with a warning.
    fn spool_record(&mut self, record: &Record) {
        let Some(dir) = &self.dir else { return };
        if self.spool_failed {
            return;
        }
        if self.spool.is_none() {
            let created = match dir {
                Ok(dir) => Spool::create(dir),
                Err(problem) => Err(io::Error::other(problem.clone())),
            };
            self.spool = created.map_err(|e| self.spool_failure(e)).ok();
        }
        let list = record.outcome.index();
        if let Some(spool) = &mut self.spool
            && let Err(err) = spool.push(list, &record.id, &record.region, record)
        {
            self.spool = None;
            self.spool_failure(err);
        }
    }

    /// Keeps a record for the json document, in a spool in the output directory or else the
    /// system's temporary directory. What cannot be spooled stays in memory: every target is
    /// still reported, and stderr says so once.
    fn keep_record(&mut self, record: &Record) {
        let place = match &self.dir {
            Some(Ok(dir)) => dir.path().to_owned(),
            _ => temp_dir(),
        };
        let spool = self.spool.get_or_insert_with(|| {
            let created = match &self.dir {
                Some(Ok(dir)) => Spool::create(dir),
                _ => Spool::create_in(&place),
            };
            created.unwrap_or_else(|err| {
                spool_in_memory(&place, &err);
                Spool::in_memory()
            })
        });
        let list = record.outcome.index();
        if let Err(err) = spool.keep(list, &record.id, &record.region, record) {
            eprintln!(
                "cove: warning: could not write the records to a temporary file in `{}` ({err}); keeping the rest of them in memory",
                place.display()
            );
        }
    }

    /// Puts the json document's spool in place (a test's failing writer).
    #[cfg(test)]
    pub fn with_spool(mut self, spool: Spool) -> Self {
        self.spool = Some(spool);
        self
    }

    /// Whether the records are kept in a spool file that can still be written.
    #[cfg(test)]
    pub fn spooling(&self) -> bool {
        self.spool.as_ref().is_some_and(Spool::on_disk)
    }

    fn spool_failure(&mut self, err: io::Error) {
        eprintln!(
            "cove: warning: could not keep the records for --output-dir results.json ({err}); it will not be written"
        );
        self.spool_failed = true;
    }

    /// Writes what only the end can write: the document, or the summary line, and
    /// `results.json` in the output directory. A `results.json` that cannot be written does
    /// not keep the document from stdout: the error comes after it.
    pub fn finish(mut self, skipped: u64, duration_ms: u64) -> io::Result<Counts> {
        let mut spool = self.spool.take().unwrap_or_else(Spool::in_memory);
        let saved = self.save_results(&mut spool);
        let written = self.write_end(&mut spool, skipped, duration_ms);
        if let (Err(err), Err(_)) = (&saved, &written) {
            eprintln!("cove: warning: {err}");
        }
        written?;
        saved?;
        Ok(self.counts)
    }

    /// `results.json`, written to a new file that replaces the old one (and never through a
    /// link planted at its name).
    fn save_results(&mut self, spool: &mut Spool) -> io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        if self.spool_failed {
            return Ok(());
        }
        let dir = dir.as_ref().map_err(|problem| {
            io::Error::other(format!("could not write results.json: {problem}"))
        })?;
        let path = dir.path().join("results.json");
        let keys = Outcome::ALL.map(Outcome::list_key);
        let was_link = dir
            .replace("results.json", |file| {
                spool.write_document(&keys, true, file)
            })
            .map_err(|e| io::Error::new(e.kind(), format!("`{}`: {e}", path.display())))?;
        if was_link {
            eprintln!(
                "cove: warning: `{}` was a symbolic link; cove replaced the link with the file and left what it pointed to alone",
                path.display()
            );
        }
        Ok(())
    }

    /// The end of stdout: the document, or the summary line.
    fn write_end(&mut self, spool: &mut Spool, skipped: u64, duration_ms: u64) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let keys = Outcome::ALL.map(Outcome::list_key);
                spool.write_document(&keys, self.pretty, &mut self.out)
            }
            // Each target was written as it finished; the summary is stderr's.
            Format::Text => self.out.flush(),
            Format::Jsonl => {
                let summary = Summary {
                    counts: self.counts,
                    skipped,
                    duration_ms,
                };
                write_json(
                    &mut self.out,
                    &serde_json::json!({ "Summary": summary }),
                    false,
                )
            }
        }
    }
}

/// Says once that the json document's spool could not be created in `place`.
fn spool_in_memory(place: &Path, err: &io::Error) {
    eprintln!(
        "cove: warning: could not create a temporary file in `{}` for the records ({err}); keeping them in memory",
        place.display()
    );
}

/// Whether records must carry their raw output ([`Record::raw_output`]) to the sink: the text
/// format prints it, and `--output-dir` writes it to files.
pub fn needs_raw_output(format: Format, dir: Option<&Path>) -> bool {
    format == Format::Text || dir.is_some()
}

/// A child's output as it came, for `--output-dir`.
#[derive(Debug, Clone, Default)]
pub struct RawOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// `DIR/<account-id>/<region>/stdout` and `stderr`, byte for byte. The two path parts must be
/// an account ID and a region name, never anything that could leave `DIR`. A link planted at
/// a file's name is replaced (with a warning), never written through.
fn write_target_files(
    dir: &Result<OutputDir, String>,
    record: &Record,
    raw: &RawOutput,
) -> io::Result<()> {
    let dir = dir
        .as_ref()
        .map_err(|problem| io::Error::other(problem.clone()))?;
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
    let files: [(&str, &[u8]); 2] = [("stdout", &raw.stdout), ("stderr", &raw.stderr)];
    for link in dir.write_target(&record.id, &record.region, &files)? {
        eprintln!(
            "cove: warning: {} {}: `{link}` in --output-dir was a symbolic link; cove replaced the link with the file and left what it pointed to alone",
            record.id, record.region
        );
    }
    Ok(())
}

/// The system's temporary directory; an empty `TMPDIR` counts as unset (`/tmp`), as it does
/// for the C library and Python.
pub fn temp_dir() -> std::path::PathBuf {
    match std::env::var_os("TMPDIR") {
        Some(dir) if dir.is_empty() => std::path::PathBuf::from("/tmp"),
        _ => std::env::temp_dir(),
    }
}

/// A plain record for tests: every key set, the command run and exited 0.
#[cfg(test)]
pub fn sample_record(id: &str, region: &str, outcome: Outcome) -> Record {
    Record {
        id: id.into(),
        name: None,
        email: None,
        status: None,
        partition: "aws".into(),
        region: region.into(),
        role_name: "R".into(),
        role_session_name: Some("R".into()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw_json::{result_text, result_value};
    use proptest::strategy::Strategy;

    fn record(id: &str, region: &str, outcome: Outcome) -> Record {
        sample_record(id, region, outcome)
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
            .list(Outcome::Result)
            .iter()
            .map(|r| (r.id.as_str(), r.region.as_str()))
            .collect();
        assert_eq!(
            keys,
            [("1", "eu-west-1"), ("1", "us-west-2"), ("2", "us-east-1")]
        );
        assert_eq!(doc.list(Outcome::Exception).len(), 1);
    }

    #[test]
    fn jsonl_writes_each_record_with_its_outcome_and_keeps_nothing() {
        let mut sink = Sink::new(Vec::new(), Format::Jsonl, false, None);
        sink.record(record("1", "r", Outcome::Exception)).unwrap();
        assert!(sink.spool.is_none());
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
    fn text_writes_each_record_from_its_raw_output_and_keeps_nothing() {
        let mut out = Vec::new();
        let mut sink = Sink::new(&mut out, Format::Text, false, None);
        let mut ok = record("111111111111", "eu-west-1", Outcome::Result);
        ok.name = Some("prod-a".into());
        ok.result = Some(result_text(b"{\"a\": 1}"));
        ok.raw_output = Some(RawOutput {
            stdout: b"{\"a\": 1}\n".to_vec(),
            stderr: Vec::new(),
        });
        sink.record(ok).unwrap();
        let mut failed = record("222222222222", "eu-west-1", Outcome::FailedAssumeRole);
        failed.exception_details = Some("could not assume".into());
        sink.record(failed).unwrap();
        assert!(sink.spool.is_none());
        sink.finish(0, 1).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "111111111111 prod-a eu-west-1 | {\"a\": 1}\n\
             222222222222 - eu-west-1 FAILED: could not assume\n"
        );
        assert!(needs_raw_output(Format::Text, None));
        assert!(!needs_raw_output(Format::Jsonl, None));
    }

    #[test]
    fn a_results_json_that_cannot_be_written_does_not_keep_the_document_from_stdout() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where results.json goes: the rename onto it fails.
        std::fs::create_dir(dir.path().join("results.json")).unwrap();
        let mut out = Vec::new();
        let mut sink = Sink::new(&mut out, Format::Json, false, Some(dir.path().to_owned()));
        sink.record(record("111111111111", "us-east-1", Outcome::Result))
            .unwrap();
        let err = sink.finish(0, 1).unwrap_err();
        assert!(err.to_string().contains("results.json"), "{err}");
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["Results"][0]["Id"], "111111111111");
    }

    #[test]
    fn the_document_has_its_three_lists_in_order() {
        let mut out = Vec::new();
        write_json(&mut out, &Document::default(), false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"Results\":[],\"Exceptions\":[],\"FailedAssumeRole\":[]}\n"
        );
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::from_line_name(outcome.line_name()), Some(outcome));
        }
    }

    #[test]
    fn a_closed_pipe_is_not_a_failure_but_a_full_disk_is() {
        let closed = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(matches!(OutputError::from(closed), OutputError::Closed));
        assert!(written(Err(io::Error::from(io::ErrorKind::BrokenPipe)), "x").is_ok());
        let full = io::Error::from_raw_os_error(28);
        let err = written(Err(full), "the dry run").unwrap_err();
        assert!(format!("{err:#}").contains("could not write the dry run"));
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
        use serde_json::json;
        assert_eq!(result_value(b"{\"a\": 1}\n"), json!({"a": 1}));
        assert_eq!(result_value(b"[1, \"b\"]\n"), json!([1, "b"]));
        assert_eq!(result_value(b"\"012345678901\"\n"), json!("012345678901"));
        for bare in [
            "123456789012\n",
            "012345678901\n",
            "123456789012345678901234567890",
            "-1.5e3\n",
            "true\n",
            "false",
            "null\n",
        ] {
            assert_eq!(
                result_value(bare.as_bytes()),
                json!(bare),
                "{bare:?} stays text"
            );
        }
        assert_eq!(result_value(b"hello\n"), json!("hello\n"));
        assert_eq!(result_value(b""), json!(""));
        assert_eq!(result_value(b" \n"), json!(" \n"));
        assert_eq!(result_value(b"\xff\n"), json!("\u{fffd}\n"));
    }

    proptest::proptest! {
        #[test]
        fn any_output_bytes_make_a_valid_document(
            stdout in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            stderr in "\\PC{0,50}",
            code in proptest::option::of(proptest::num::i32::ANY),
        ) {
            let mut r = record("111111111111", "us-east-1", Outcome::Exception);
            r.result = Some(result_text(&stdout));
            r.stderr = Some(stderr.clone());
            r.exit_code = code;
            let doc = Document::new(vec![r]);
            let mut out = Vec::new();
            write_json(&mut out, &doc, false).unwrap();
            let back: serde_json::Value = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(&back["Exceptions"][0]["Stderr"], &serde_json::json!(stderr));
            proptest::prop_assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        }

        #[test]
        fn result_is_only_ever_an_object_array_or_string(
            stdout in "[0-9truefalsn\\[\\]{}\" :,.\n-]{0,20}",
        ) {
            let value = result_value(stdout.as_bytes());
            proptest::prop_assert!(value.is_object() || value.is_array() || value.is_string());
        }

        #[test]
        fn printed_numbers_booleans_and_null_stay_text_exactly_as_printed(
            bare in proptest::prop_oneof![
                proptest::num::i64::ANY.prop_map(|n| n.to_string()),
                proptest::num::f64::NORMAL.prop_map(|n| n.to_string()),
                "[0-9]{12}",
                proptest::sample::select(vec!["true", "false", "null"]).prop_map(str::to_owned),
            ],
            end in proptest::sample::select(vec!["", "\n", "\r\n", " \n"]),
        ) {
            let printed = format!("{bare}{end}");
            proptest::prop_assert_eq!(result_value(printed.as_bytes()), serde_json::json!(printed));
        }
    }
}
