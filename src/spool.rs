//! The run's records kept on disk rather than in memory, for the json document on stdout and
//! for `results.json`: each record goes to an unlinked temporary file as it finishes, and only
//! a small index (list, `Id`, `Region`, where the record is) stays in memory. At the end the
//! index is sorted and the document is copied out of the spool in the contract's order, laid
//! out pretty or compact exactly as `serde_json` lays out the document built in memory.
//!
//! A spool that cannot be written (a full disk, a temporary directory that refuses files) loses
//! nothing when it is asked to keep: what could not be spooled stays in memory instead.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::output_dir::{self, OutputDir};
use crate::raw_json::Pretty;

/// What a spool is written to: an unlinked file, or in tests a writer that fails on purpose.
pub trait Backing: Read + Write + Seek + Send {}
impl<T: Read + Write + Seek + Send> Backing for T {}

/// Where one record lies.
enum Place {
    /// In the spool file.
    File { offset: u64, len: u64 },
    /// In memory, because the spool could not be written.
    Memory(Vec<u8>),
}

/// One record of the index.
struct Entry {
    /// The index of its list in the document.
    list: usize,
    id: String,
    region: String,
    place: Place,
}

pub struct Spool {
    /// `None` when no file could be created.
    file: Option<Box<dyn Backing>>,
    /// False once a write failed: what stands in the file is read back, nothing more is added.
    writable: bool,
    index: Vec<Entry>,
    len: u64,
}

impl Spool {
    /// An unlinked spool file in `dir`: it vanishes with cove, however cove ends.
    pub fn create(dir: &OutputDir) -> io::Result<Spool> {
        Ok(Spool::on(dir.unlinked_file()?))
    }

    /// An unlinked spool file in the directory `dir` (the system's temporary directory when
    /// there is no output directory), created 0600.
    pub fn create_in(dir: &Path) -> io::Result<Spool> {
        Ok(Spool::on(output_dir::unlinked_file_in(dir)?))
    }

    /// A spool written to `file`.
    pub fn on(file: impl Backing + 'static) -> Spool {
        Spool {
            file: Some(Box::new(file)),
            writable: true,
            index: Vec::new(),
            len: 0,
        }
    }

    /// A spool with no file: everything it keeps stays in memory.
    pub fn in_memory() -> Spool {
        Spool {
            file: None,
            writable: false,
            index: Vec::new(),
            len: 0,
        }
    }

    /// Whether records still go to a file (not to memory).
    pub fn on_disk(&self) -> bool {
        self.file.is_some() && self.writable
    }

    /// Appends one record of list `list` (an index into the keys given to
    /// [`Spool::write_document`]). An error means the record is not kept.
    pub fn push(
        &mut self,
        list: usize,
        id: &str,
        region: &str,
        record: &impl serde::Serialize,
    ) -> io::Result<()> {
        let text = compact(record)?;
        let file = match &mut self.file {
            Some(file) if self.writable => file,
            _ => return Err(io::Error::other("the spool could not be written before")),
        };
        let written = file.write_all(&text);
        // Part of the text may stand in the file after a failure: nothing more goes there.
        self.writable = written.is_ok();
        written?;
        self.index_entry(list, id, region, text.len());
        Ok(())
    }

    /// Appends one record as [`Spool::push`] does, but never loses it: what cannot be written
    /// to the file is kept in memory (and so is every record after it). Returns the error the
    /// first time the file fails, for the caller to say so once.
    pub fn keep(
        &mut self,
        list: usize,
        id: &str,
        region: &str,
        record: &impl serde::Serialize,
    ) -> io::Result<()> {
        let text = compact(record)?;
        let failed = match &mut self.file {
            Some(file) if self.writable => match file.write_all(&text) {
                Ok(()) => {
                    self.index_entry(list, id, region, text.len());
                    return Ok(());
                }
                Err(err) => Some(err),
            },
            _ => None,
        };
        self.writable = false;
        self.index.push(Entry {
            list,
            id: id.to_owned(),
            region: region.to_owned(),
            place: Place::Memory(text),
        });
        failed.map_or(Ok(()), Err)
    }

    fn index_entry(&mut self, list: usize, id: &str, region: &str, len: usize) {
        self.index.push(Entry {
            list,
            id: id.to_owned(),
            region: region.to_owned(),
            place: Place::File {
                offset: self.len,
                len: len as u64,
            },
        });
        self.len += len as u64;
    }

    /// Writes the whole document to `out`: an object with one list per key, each ordered by
    /// `Id` then `Region`, laid out as `serde_json`'s pretty printer lays it out, or on one
    /// line as its compact printer does. It can be written more than once.
    pub fn write_document(
        &mut self,
        lists: &[&str],
        pretty: bool,
        out: &mut impl Write,
    ) -> io::Result<()> {
        // Stable, as the in-memory document's sort: equal keys keep the order they came in.
        self.index
            .sort_by(|a, b| (&a.id, &a.region).cmp(&(&b.id, &b.region)));
        let layout = if pretty {
            Layout::Pretty
        } else {
            Layout::Compact
        };
        out.write_all(b"{")?;
        let mut buf = vec![0; 64 * 1024];
        for (list, key) in lists.iter().enumerate() {
            let separator = if list == 0 { "" } else { "," };
            match layout {
                Layout::Pretty => write!(out, "{separator}\n  \"{key}\": [")?,
                Layout::Compact => write!(out, "{separator}\"{key}\":[")?,
            }
            let mut first = true;
            let members: Vec<usize> = (0..self.index.len())
                .filter(|&i| self.index[i].list == list)
                .collect();
            for i in members {
                out.write_all(match (layout, first) {
                    (Layout::Pretty, true) => b"\n    ",
                    (Layout::Pretty, false) => b",\n    ",
                    (Layout::Compact, true) => b"",
                    (Layout::Compact, false) => b",",
                })?;
                first = false;
                self.copy(i, layout, &mut buf, out)?;
            }
            out.write_all(match (layout, first) {
                (Layout::Pretty, false) => b"\n  ]",
                _ => b"]",
            })?;
        }
        out.write_all(if pretty { b"\n}\n" } else { b"}\n" })?;
        // Further records are appended after the last one.
        if let Some(file) = self.file.as_mut() {
            file.seek(SeekFrom::Start(self.len))?;
        }
        out.flush()
    }

    /// Copies record `n` of the index to `out` in `layout`, a piece at a time.
    fn copy(
        &mut self,
        n: usize,
        layout: Layout,
        buf: &mut [u8],
        out: &mut impl Write,
    ) -> io::Result<()> {
        let mut relayout = Relayout::new(layout);
        match &self.index[n].place {
            Place::Memory(text) => relayout.write(text, out),
            Place::File { offset, len } => {
                let (offset, len) = (*offset, *len);
                let file = self.file.as_mut().ok_or_else(|| {
                    io::Error::other("the spool file failed after a record was written to it")
                })?;
                file.seek(SeekFrom::Start(offset))?;
                let mut piece = (&mut *file).take(len);
                let mut left = len;
                while left > 0 {
                    let read = piece.read(buf)?;
                    if read == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    relayout.write(&buf[..read], out)?;
                    left -= read as u64;
                }
                Ok(())
            }
        }
    }
}

/// A record as it stands in the spool: `serde_json`'s compact layout, on its own (a record's
/// `Result` is compact text already, printed verbatim).
fn compact(record: &impl serde::Serialize) -> io::Result<Vec<u8>> {
    Ok(serde_json::to_vec(record)?)
}

/// How the document is laid out.
#[derive(Clone, Copy)]
enum Layout {
    /// As `serde_json::to_writer_pretty` writes the document: a record two levels deep.
    Pretty,
    /// As `serde_json::to_writer` writes it: the record as it stands in the spool.
    Compact,
}

/// Turns a compact record into its layout in the document, one piece at a time.
enum Relayout {
    Pretty(Pretty),
    Compact,
}

impl Relayout {
    fn new(layout: Layout) -> Self {
        match layout {
            Layout::Pretty => Relayout::Pretty(Pretty::new(2)),
            Layout::Compact => Relayout::Compact,
        }
    }

    fn write(&mut self, piece: &[u8], out: &mut impl Write) -> io::Result<()> {
        match self {
            Relayout::Pretty(pretty) => pretty.write(piece, out),
            Relayout::Compact => out.write_all(piece),
        }
    }
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

    /// A `Result` as the run makes it from a child's output.
    fn json(value: serde_json::Value) -> Box<serde_json::value::RawValue> {
        crate::raw_json::result_text(value.to_string().as_bytes())
    }

    /// A record with the characters that need escaping and nested JSON, so the spool's layout
    /// is checked where it is hardest.
    fn record(id: &str, region: &str, outcome: Outcome) -> Record {
        Record {
            name: Some("multi\nline \"name\"".into()),
            result: Some(json(serde_json::json!({"nested": [1, {"a": "b\nc"}]}))),
            ..crate::output::sample_record(id, region, outcome)
        }
    }

    /// Records out of order, in every list, with what a layout could get wrong: spaces,
    /// quotes, backslashes and newlines in strings, empty arrays and objects, big numbers.
    fn records() -> Vec<Record> {
        let mut odd = record("222222222222", "us-east-1", Outcome::Result);
        odd.result = Some(json(serde_json::json!({
            "a b": "c \" d \\ e\n f  ",
            "empty": [], "none": {}, "n": serde_json::from_str::<serde_json::Value>("12345678901234567890.50").unwrap(),
            "list": [" ", "\\", {"k": [[], {}]}]
        })));
        odd.stderr = Some("  two  spaces \\\"".into());
        vec![
            record("333333333333", "us-east-1", Outcome::Result),
            record("111111111111", "eu-west-1", Outcome::Exception),
            odd,
            record("111111111111", "us-east-1", Outcome::Result),
            record("111111111111", "ap-south-1", Outcome::Result),
            record("111111111111", "ap-south-1", Outcome::FailedAssumeRole),
        ]
    }

    /// The document built in memory, as `serde_json` lays it out: compact as the records
    /// print, pretty as its pretty printer prints the same value.
    fn in_memory(records: &[Record], pretty: bool) -> String {
        let mut out = Vec::new();
        write_json(&mut out, &Document::new(records.to_vec()), false).unwrap();
        if pretty {
            let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
            out.clear();
            write_json(&mut out, &value, true).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    /// The spool's document, pretty and compact, is the one built in memory from `records`.
    fn same_as_in_memory(spool: &mut Spool, records: &[Record], what: &str) {
        for pretty in [true, false] {
            assert_eq!(
                document(spool, pretty),
                in_memory(records, pretty),
                "{what}, pretty: {pretty}"
            );
        }
    }

    fn document(spool: &mut Spool, pretty: bool) -> String {
        let mut out = Vec::new();
        spool.write_document(&keys(), pretty, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_spooled_document_equals_the_document_built_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let records = records();
        let mut spool = Spool::create(&OutputDir::open(dir.path()).unwrap()).unwrap();
        for r in &records {
            push(&mut spool, r);
        }
        for pretty in [true, false, true] {
            assert_eq!(
                document(&mut spool, pretty),
                in_memory(&records, pretty),
                "byte for byte what the in-memory document gives (pretty: {pretty})"
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the spool is unlinked"
        );
    }

    #[test]
    fn a_spool_in_a_plain_directory_is_unlinked_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::create_in(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let file = crate::output_dir::unlinked_file_in(dir.path()).unwrap();
        assert_eq!(
            file.metadata().unwrap().permissions().mode() & 0o7777,
            0o600
        );
        let records = records();
        for r in &records {
            push(&mut spool, r);
        }
        assert_eq!(document(&mut spool, false), in_memory(&records, false));
    }

    /// A spool file that takes `room` bytes, then fails as a full disk does.
    struct FullDisk {
        file: io::Cursor<Vec<u8>>,
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::StorageFull.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.file.write(&buf[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Read for FullDisk {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.file.read(buf)
        }
    }

    impl Seek for FullDisk {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.file.seek(pos)
        }
    }

    fn full_disk(room: usize) -> Spool {
        Spool::on(FullDisk {
            file: io::Cursor::new(Vec::new()),
            room,
        })
    }

    #[test]
    fn a_spool_that_cannot_be_written_keeps_every_record_in_memory_and_says_so_once() {
        let records = records();
        // No room at all, room for part of the first record, room for two and a half.
        let first = compact(&records[0]).unwrap().len();
        for room in [0, first / 2, first * 5 / 2] {
            let mut spool = full_disk(room);
            let failures = records
                .iter()
                .filter(|r| {
                    let list = Outcome::ALL.iter().position(|o| *o == r.outcome).unwrap();
                    spool.keep(list, &r.id, &r.region, *r).is_err()
                })
                .count();
            assert_eq!(failures, 1, "the failure is reported once (room {room})");
            same_as_in_memory(&mut spool, &records, &format!("room {room}"));
        }
    }

    #[test]
    fn a_json_run_whose_spool_cannot_be_written_still_reports_every_target() {
        use crate::output::{Format, Sink};
        let records = records();
        for pretty in [true, false] {
            let mut out = Vec::new();
            let mut sink =
                Sink::new(&mut out, Format::Json, pretty, None).with_spool(full_disk(700));
            for r in &records {
                sink.record(r.clone()).unwrap();
            }
            assert!(!sink.spooling(), "the spool failed");
            let counts = sink.finish(0, 1).unwrap();
            assert_eq!(counts.total(), records.len() as u64);
            assert_eq!(String::from_utf8(out).unwrap(), in_memory(&records, pretty));
        }
    }

    #[test]
    fn a_json_run_writes_its_document_from_a_spool() {
        use crate::output::{Format, Sink};
        let records = records();
        for pretty in [true, false] {
            let mut out = Vec::new();
            let mut sink = Sink::new(&mut out, Format::Json, pretty, None);
            for r in &records {
                sink.record(r.clone()).unwrap();
            }
            assert!(sink.spooling(), "the records are in a file, not in memory");
            sink.finish(0, 1).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), in_memory(&records, pretty));
        }
    }

    /// The spool is read back 64 KiB at a time: an escaped quote split across that edge (the
    /// backslash the last byte of one piece, the quote the first of the next) is still inside
    /// its string, and the spaces after it stay.
    #[test]
    fn a_record_read_in_pieces_keeps_its_strings_whole() {
        const PIECE: usize = 64 * 1024;
        let mut records = vec![record("111111111111", "eu-west-1", Outcome::Result)];
        // Escaped as `\"  \\ ` then spaces: each of its bytes in turn ends the first piece.
        let tail = "\"  \\ ";
        let escaped = br#"\"  \\ "#;
        for (k, &edge) in escaped.iter().enumerate() {
            let mut r = record("222222222222", &format!("us-east-{k}"), Outcome::Result);
            r.stderr = Some("MARK".into());
            let at = compact(&r)
                .unwrap()
                .windows(4)
                .position(|w| w == b"MARK")
                .unwrap();
            r.stderr = Some(format!(
                "{}{tail}{}",
                "x".repeat(PIECE - 1 - at - k),
                " ".repeat(8)
            ));
            assert_eq!(
                compact(&r).unwrap()[PIECE - 1],
                edge,
                "byte {k} ends the piece"
            );
            records.push(r);
        }
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::create_in(dir.path()).unwrap();
        for r in &records {
            push(&mut spool, r);
        }
        same_as_in_memory(&mut spool, &records, "every record spooled");
    }

    #[test]
    fn an_empty_spool_is_an_empty_document() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        Spool::create(&OutputDir::open(dir.path()).unwrap())
            .unwrap()
            .write_document(&keys(), true, &mut out)
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
