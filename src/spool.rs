//! `results.json` for a run that streams its records (jsonl with `--output-dir`), written
//! without holding the run in memory: each record goes to an unlinked temporary file in the
//! output directory as it finishes, and only a small index (list, `Id`, `Region`, where the
//! record is) stays in memory. At the end the index is sorted and the document is copied out
//! of the spool in the contract's order.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use crate::output_dir::OutputDir;

/// Where one record lies in the spool.
struct Entry {
    /// The index of its list in the document.
    list: usize,
    id: String,
    region: String,
    offset: u64,
    len: u64,
}

pub struct Spool {
    file: BufWriter<File>,
    index: Vec<Entry>,
    len: u64,
}

impl Spool {
    /// An unlinked spool file in `dir`: it vanishes with cove, however cove ends.
    pub fn create(dir: &OutputDir) -> io::Result<Spool> {
        Ok(Spool {
            file: BufWriter::new(dir.unlinked_file()?),
            index: Vec::new(),
            len: 0,
        })
    }

    /// Appends one record of list `list` (an index into the keys given to
    /// [`Spool::write_document`]), pretty-printed as it will stand in the document.
    pub fn push(
        &mut self,
        list: usize,
        id: &str,
        region: &str,
        record: &impl serde::Serialize,
    ) -> io::Result<()> {
        let mut text = Vec::new();
        serde_json::to_writer_pretty(&mut text, record)?;
        self.file.write_all(&text)?;
        self.index.push(Entry {
            list,
            id: id.to_owned(),
            region: region.to_owned(),
            offset: self.len,
            len: text.len() as u64,
        });
        self.len += text.len() as u64;
        Ok(())
    }

    /// Writes the whole document to `out`: an object with one list per key, each ordered by
    /// `Id` then `Region`, laid out as `serde_json`'s pretty printer lays it out.
    pub fn write_document(self, lists: &[&str], out: &mut impl Write) -> io::Result<()> {
        let Spool {
            file, mut index, ..
        } = self;
        let mut file = file.into_inner().map_err(|e| e.into_error())?;
        index.sort_by(|a, b| (&a.id, &a.region).cmp(&(&b.id, &b.region)));
        out.write_all(b"{")?;
        for (n, key) in lists.iter().enumerate() {
            let separator = if n == 0 { "" } else { "," };
            write!(out, "{separator}\n  \"{key}\": [")?;
            let mut first = true;
            for entry in index.iter().filter(|e| e.list == n) {
                out.write_all(if first { b"\n    " } else { b",\n    " })?;
                first = false;
                copy_indented(&mut file, entry, out)?;
            }
            out.write_all(if first { b"]" } else { b"\n  ]" })?;
        }
        out.write_all(b"\n}\n")?;
        out.flush()
    }
}

/// Copies one record out of the spool, indented to its place in the document.
fn copy_indented(file: &mut File, entry: &Entry, out: &mut impl Write) -> io::Result<()> {
    let mut text = vec![0; entry.len as usize];
    file.seek(SeekFrom::Start(entry.offset))?;
    file.read_exact(&mut text)?;
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            out.write_all(b"\n    ")?;
        }
        out.write_all(line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Document, Outcome, Record, write_json};

    fn keys() -> Vec<&'static str> {
        Outcome::ALL.iter().map(|o| o.list_key()).collect()
    }

    fn push(spool: &mut Spool, r: &Record) {
        let list = Outcome::ALL.iter().position(|o| *o == r.outcome).unwrap();
        spool.push(list, &r.id, &r.region, r).unwrap();
    }

    /// A record with the characters that need escaping and nested JSON, so the spool's layout
    /// is checked where it is hardest.
    fn record(id: &str, region: &str, outcome: Outcome) -> Record {
        Record {
            name: Some("multi\nline \"name\"".into()),
            result: Some(serde_json::json!({"nested": [1, {"a": "b\nc"}]})),
            ..crate::output::sample_record(id, region, outcome)
        }
    }

    #[test]
    fn the_spooled_document_equals_the_document_built_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let records = vec![
            record("333333333333", "us-east-1", Outcome::Result),
            record("111111111111", "eu-west-1", Outcome::Exception),
            record("111111111111", "us-east-1", Outcome::Result),
            record("111111111111", "ap-south-1", Outcome::Result),
        ];
        let mut spool = Spool::create(&OutputDir::open(dir.path()).unwrap()).unwrap();
        for r in &records {
            push(&mut spool, r);
        }
        let mut spooled = Vec::new();
        spool.write_document(&keys(), &mut spooled).unwrap();
        let mut in_memory = Vec::new();
        write_json(&mut in_memory, &Document::new(records), true).unwrap();
        assert_eq!(
            String::from_utf8(spooled).unwrap(),
            String::from_utf8(in_memory).unwrap(),
            "byte for byte what the in-memory document gives"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the spool is unlinked"
        );
    }

    #[test]
    fn an_empty_spool_is_an_empty_document() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        Spool::create(&OutputDir::open(dir.path()).unwrap())
            .unwrap()
            .write_document(&keys(), &mut out)
            .unwrap();
        let mut expected = Vec::new();
        write_json(&mut expected, &Document::new(vec![]), true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }

    #[test]
    fn a_jsonl_run_with_an_output_dir_writes_the_same_results_json_as_a_json_run() {
        use crate::output::{Format, Sink};
        let records = vec![
            record("222222222222", "us-east-1", Outcome::FailedAssumeRole),
            record("111111111111", "us-east-1", Outcome::Result),
        ];
        let mut written = Vec::new();
        for format in [Format::Json, Format::Jsonl] {
            let dir = tempfile::tempdir().unwrap();
            let mut sink = Sink::new(Vec::new(), format, false, Some(dir.path().to_owned()));
            for r in &records {
                sink.record(r.clone()).unwrap();
            }
            sink.finish(0, 1).unwrap();
            written.push(std::fs::read_to_string(dir.path().join("results.json")).unwrap());
        }
        assert_eq!(written[0], written[1]);
    }

    #[test]
    fn an_output_dir_that_cannot_be_written_does_not_stop_a_streamed_run() {
        use crate::output::{Format, Sink};
        let gone = tempfile::tempdir().unwrap().path().join("gone");
        let mut sink = Sink::new(Vec::new(), Format::Jsonl, false, Some(gone.clone()));
        sink.record(record("111111111111", "us-east-1", Outcome::Result))
            .expect("stdout still works");
        sink.record(record("222222222222", "us-east-1", Outcome::Result))
            .expect("stdout still works");
        let counts = sink.finish(0, 1).expect("the run still ends well");
        assert_eq!(counts.total(), 2);
        assert!(!gone.join("results.json").exists());
    }
}
