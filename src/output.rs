//! The output contract: one record per target, in botocove's shape, written once to stdout.
//! Keys and their meaning are relied on by users' jq scripts: change nothing lightly.

use std::io::{self, IsTerminal, Write};

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

    pub fn all_succeeded(&self) -> bool {
        self.exceptions.is_empty() && self.failed_assume_role.is_empty()
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

/// Writes the document: pretty for a person at a terminal, one line otherwise.
pub fn write_document(out: &mut impl Write, doc: &Document, pretty: bool) -> io::Result<()> {
    if pretty {
        serde_json::to_writer_pretty(&mut *out, doc)?;
    } else {
        serde_json::to_writer(&mut *out, doc)?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes to the process's stdout. A closed pipe (`| head`) is not an error.
pub fn write_stdout(doc: &Document) -> io::Result<()> {
    let stdout = io::stdout();
    let pretty = stdout.is_terminal();
    let mut lock = io::BufWriter::new(stdout.lock());
    match write_document(&mut lock, doc, pretty) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
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
        assert!(!doc.all_succeeded());
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
