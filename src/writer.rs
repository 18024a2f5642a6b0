//! The output's own thread, and a bounded hand-off to it. Records are handed over and written
//! there, so a reader that stalls (a pager, a full pipe, a terminal) never holds up the
//! scheduler: targets keep starting and finishing while the writer waits. Records waiting in
//! memory stay under a budget ([`BUDGET`], counted by their output bytes); past it they spill
//! to an unlinked 0600 file (in `--output-dir` if one is given, else the system's temporary
//! directory) and are written from there, in order, as the reader catches up. Only when that
//! file cannot be written does [`Writer::send`] wait for the writer (the scheduler then starts
//! no new target), and stderr says so once.
//!
//! The first write failure is reported once through `on_failure` (the pipeline stops the run
//! with it) and returned by [`Writer::finish`]; later records are dropped.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::output::{Counts, Outcome, OutputError, RawOutput, Record, Sink};
use crate::output_dir::{self, OutputDir};

/// Output bytes of the records that may wait in memory for the reader.
pub const BUDGET: usize = 16 << 20;

/// A record waiting for the writer.
enum Waiting {
    /// In memory, with its weight against the budget.
    Memory(Box<Record>, usize),
    /// In the spill file.
    Spilled(Frame),
}

/// Where a record lies in the spill file: its JSON, then its raw stdout and stderr.
#[derive(Clone, Copy)]
struct Frame {
    offset: u64,
    outcome: Outcome,
    json: u64,
    raw: Option<(u64, u64)>,
}

/// The hand-off, shared by the sender and the writer's thread.
struct State {
    queue: VecDeque<Waiting>,
    /// Weight of the records in memory.
    bytes: usize,
    /// The spill file, once needed, and where its next record goes.
    spill: Option<Arc<File>>,
    end: u64,
    /// Records in the spill file, queued or being read.
    spilled: usize,
    /// The spill file could not be created or written: the sender waits instead.
    broken: bool,
    /// Writing failed: records are dropped.
    failed: bool,
    finish: Option<(u64, u64)>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Creates the spill file.
type MakeFile = Box<dyn Fn() -> io::Result<File> + Send + Sync>;

/// The handle the scheduler holds; the [`Sink`] lives on the thread.
pub struct Writer {
    shared: Arc<Shared>,
    budget: usize,
    make_file: MakeFile,
    /// Where the spill file goes, for the warning.
    place: PathBuf,
    thread: JoinHandle<Result<Counts, OutputError>>,
}

impl Writer {
    /// Starts the thread. `on_failure` is called on the writer's thread, once, when writing
    /// first fails.
    pub fn spawn<W: Write + Send + 'static>(
        sink: Sink<W>,
        on_failure: impl Fn(&OutputError) + Send + 'static,
    ) -> Writer {
        let dir = sink.spill_dir();
        let place = dir.clone().unwrap_or_else(crate::output::temp_dir);
        let make_file: MakeFile = match dir {
            Some(dir) => Box::new(move || {
                OutputDir::open(&dir)
                    .map_err(|e| io::Error::other(format!("{e:#}")))?
                    .unlinked_file()
            }),
            None => Box::new(|| output_dir::unlinked_file_in(&crate::output::temp_dir())),
        };
        Writer::spawn_with(sink, BUDGET, make_file, place, on_failure)
    }

    fn spawn_with<W: Write + Send + 'static>(
        sink: Sink<W>,
        budget: usize,
        make_file: MakeFile,
        place: PathBuf,
        on_failure: impl Fn(&OutputError) + Send + 'static,
    ) -> Writer {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                spill: None,
                end: 0,
                spilled: 0,
                broken: false,
                failed: false,
                finish: None,
            }),
            changed: Condvar::new(),
        });
        let theirs = shared.clone();
        let thread = std::thread::spawn(move || write_all(&theirs, sink, on_failure));
        Writer {
            shared,
            budget,
            make_file,
            place,
            thread,
        }
    }

    /// Queues one finished target for writing. It does not wait for the reader: past the
    /// budget the record goes to the spill file. Only when that file cannot be written does
    /// it wait until the writer has room for the record in memory.
    pub fn send(&self, record: Record) {
        let weight = weight(&record);
        let mut state = self.shared.lock();
        if state.failed {
            return;
        }
        if state.bytes + weight > self.budget && !state.broken {
            match self.spill(&mut state, &record) {
                Ok(frame) => {
                    state.queue.push_back(Waiting::Spilled(frame));
                    state.spilled += 1;
                    self.shared.changed.notify_all();
                    return;
                }
                Err(err) => {
                    state.broken = true;
                    eprintln!(
                        "cove: warning: could not write the records waiting for the output to a temporary file in `{}` ({err}); new targets wait until the output catches up",
                        self.place.display()
                    );
                }
            }
        }
        while !state.failed && state.bytes > 0 && state.bytes + weight > self.budget {
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        if state.failed {
            return;
        }
        state.bytes += weight;
        state
            .queue
            .push_back(Waiting::Memory(Box::new(record), weight));
        self.shared.changed.notify_all();
    }

    /// Writes `record` at the end of the spill file (created the first time).
    fn spill(&self, state: &mut State, record: &Record) -> io::Result<Frame> {
        let file = match &state.spill {
            Some(file) => file.clone(),
            None => {
                let file = Arc::new((self.make_file)()?);
                state.spill = Some(file.clone());
                file
            }
        };
        let json = serde_json::to_vec(record)?;
        let mut frame = Frame {
            offset: state.end,
            outcome: record.outcome,
            json: json.len() as u64,
            raw: None,
        };
        file.write_all_at(&json, frame.offset)?;
        let mut end = frame.offset + frame.json;
        if let Some(raw) = &record.raw_output {
            file.write_all_at(&raw.stdout, end)?;
            file.write_all_at(&raw.stderr, end + raw.stdout.len() as u64)?;
            frame.raw = Some((raw.stdout.len() as u64, raw.stderr.len() as u64));
            end += (raw.stdout.len() + raw.stderr.len()) as u64;
        }
        state.end = end;
        Ok(frame)
    }

    /// Writes the end of the output once every queued record is written, and returns the
    /// counts, or the first write failure.
    pub fn finish(self, skipped: u64, duration_ms: u64) -> Result<Counts, OutputError> {
        self.shared.lock().finish = Some((skipped, duration_ms));
        self.shared.changed.notify_all();
        self.thread.join().unwrap_or_else(|_| {
            Err(OutputError::Failed(std::io::Error::other(
                "the output thread panicked",
            )))
        })
    }
}

/// A record's output bytes, as they weigh against the budget.
fn weight(record: &Record) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let raw = record
        .raw_output
        .as_ref()
        .map_or(0, |r| r.stdout.len() + r.stderr.len());
    record.result.as_ref().map_or(0, |r| r.get().len())
        + text(&record.stderr)
        + text(&record.exception_details)
        + raw
}

/// What the writer takes next.
enum Next {
    Record(Box<Record>),
    Spilled(Frame, Arc<File>),
    Finish(u64, u64),
}

/// The writer's thread: each record in turn, from memory or the spill file, then the end.
fn write_all<W: Write>(
    shared: &Shared,
    mut sink: Sink<W>,
    on_failure: impl Fn(&OutputError),
) -> Result<Counts, OutputError> {
    let mut failed: Option<OutputError> = None;
    loop {
        let record = match next(shared) {
            Next::Finish(skipped, duration_ms) => {
                return match failed {
                    Some(err) => Err(err),
                    None => sink.finish(skipped, duration_ms).map_err(OutputError::from),
                };
            }
            Next::Record(record) => Ok(*record),
            Next::Spilled(frame, file) => {
                let read = read_frame(&file, &frame);
                let mut state = shared.lock();
                state.spilled -= 1;
                if state.spilled == 0 {
                    // Nothing left in the file: its space is given back.
                    state.end = 0;
                    let _ = file.set_len(0);
                }
                read
            }
        };
        let written = record.and_then(|record| sink.record(record));
        if let Err(err) = written {
            let err = OutputError::from(err);
            on_failure(&err);
            failed = Some(err);
            let mut state = shared.lock();
            state.failed = true;
            state.queue.clear();
            state.bytes = 0;
            shared.changed.notify_all();
        }
    }
}

/// Waits for the next record, or the end.
fn next(shared: &Shared) -> Next {
    let mut state = shared.lock();
    loop {
        if let Some(waiting) = state.queue.pop_front() {
            shared.changed.notify_all();
            return match waiting {
                Waiting::Memory(record, weight) => {
                    state.bytes -= weight;
                    Next::Record(record)
                }
                Waiting::Spilled(frame) => {
                    let file = state.spill.clone().expect("a spilled record has its file");
                    Next::Spilled(frame, file)
                }
            };
        }
        if let Some((skipped, duration_ms)) = state.finish {
            return Next::Finish(skipped, duration_ms);
        }
        state = shared
            .changed
            .wait(state)
            .unwrap_or_else(|e| e.into_inner());
    }
}

/// Reads a spilled record back.
fn read_frame(file: &File, frame: &Frame) -> io::Result<Record> {
    let read = |offset: u64, len: u64| -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len as usize];
        file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    };
    let json = read(frame.offset, frame.json)?;
    let mut record: Record = serde_json::from_slice(&json)?;
    drop(json);
    record.outcome = frame.outcome;
    if let Some((stdout, stderr)) = frame.raw {
        let at = frame.offset + frame.json;
        record.raw_output = Some(RawOutput {
            stdout: read(at, stdout)?,
            stderr: read(at + stdout, stderr)?,
        });
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Format, Outcome};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    fn record(id: &str) -> Record {
        crate::output::sample_record(id, "us-east-1", Outcome::Result)
    }

    /// A reader that blocks until the test lets it go.
    struct Gate {
        open: Arc<Mutex<()>>,
        bytes: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _open = self.open.lock().unwrap();
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_reader_does_not_block_the_sender() {
        let open = Arc::new(Mutex::new(()));
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let held = open.lock().unwrap();
        let gate = Gate {
            open: open.clone(),
            bytes: bytes.clone(),
        };
        let writer = Writer::spawn(Sink::new(gate, Format::Jsonl, false, None), |_| {});
        for i in 0..1000 {
            writer.send(record(&format!("{i:012}")));
        }
        drop(held);
        let counts = writer.finish(0, 1).unwrap();
        assert_eq!(counts.total(), 1000);
        let text = String::from_utf8(bytes.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1001, "every record and the summary");
    }

    type Held<T> = Arc<Mutex<T>>;

    /// A record whose output weighs `size` bytes, as the text format gets it.
    fn big(n: usize, size: usize) -> Record {
        let mut r = record(&format!("{n:012}"));
        r.raw_output = Some(RawOutput {
            stdout: format!("{n:0size$}\n").into_bytes(),
            stderr: b"e\n".to_vec(),
        });
        r
    }

    fn gated(
        budget: usize,
        make_file: MakeFile,
        format: Format,
    ) -> (Writer, Arc<Mutex<()>>, Held<Vec<u8>>) {
        let open = Arc::new(Mutex::new(()));
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let gate = Gate {
            open: open.clone(),
            bytes: bytes.clone(),
        };
        let sink = Sink::new(gate, format, false, None);
        let writer = Writer::spawn_with(sink, budget, make_file, PathBuf::from("/x"), |_| {});
        (writer, open, bytes)
    }

    fn expected_text(n: usize, size: usize) -> String {
        (0..n)
            .map(|i| format!("{i:012} - us-east-1 | {i:0size$}\n{i:012} - us-east-1 ! e\n"))
            .collect()
    }

    #[test]
    fn past_the_budget_records_spill_and_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let place = dir.path().to_owned();
        let made = Arc::new(AtomicUsize::new(0));
        let count = made.clone();
        let make: MakeFile = Box::new(move || {
            count.fetch_add(1, Ordering::SeqCst);
            output_dir::unlinked_file_in(&place)
        });
        let (writer, open, bytes) = gated(4096, make, Format::Text);
        let held = open.lock().unwrap();
        for i in 0..300 {
            writer.send(big(i, 1000));
            let state = writer.shared.lock();
            assert!(state.bytes <= 4096, "memory stays under the budget");
        }
        assert!(
            writer.shared.lock().spilled > 0,
            "records went to the spill"
        );
        assert_eq!(made.load(Ordering::SeqCst), 1, "one spill file");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "unlinked"
        );
        drop(held);
        let counts = writer.finish(0, 1).unwrap();
        assert_eq!(counts.total(), 300);
        let text = String::from_utf8(bytes.lock().unwrap().clone()).unwrap();
        assert_eq!(text, expected_text(300, 1000), "every record, in order");
    }

    #[test]
    fn jsonl_records_spill_whole_and_print_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let place = dir.path().to_owned();
        let make: MakeFile = Box::new(move || output_dir::unlinked_file_in(&place));
        let (writer, open, bytes) = gated(2000, make, Format::Jsonl);
        let mut expected = Vec::new();
        let held = open.lock().unwrap();
        for i in 0..50 {
            let mut r = record(&format!("{i:012}"));
            r.result = Some(crate::raw_json::result_text(
                format!("{{\"n\": [{i}, \"\\u00e9\"]}}").as_bytes(),
            ));
            r.stderr = Some("x".repeat(100));
            r.outcome = Outcome::ALL[i % 3];
            let mut sink = Sink::new(&mut expected, Format::Jsonl, false, None);
            sink.record(r.clone()).unwrap();
            writer.send(r);
        }
        assert!(writer.shared.lock().spilled > 0);
        drop(held);
        writer.finish(0, 1).unwrap();
        let text = bytes.lock().unwrap().clone();
        let lines = text.len() - text.rsplit(|b| *b == b'\n').nth(1).unwrap().len() - 1;
        assert_eq!(
            String::from_utf8_lossy(&text[..lines]),
            String::from_utf8_lossy(&expected)
        );
    }

    #[test]
    fn a_spill_that_cannot_be_written_makes_the_sender_wait_and_loses_nothing() {
        let make: MakeFile = Box::new(|| Err(io::ErrorKind::StorageFull.into()));
        let (writer, open, bytes) = gated(4096, make, Format::Text);
        let held = open.lock().unwrap();
        let writer = Arc::new(writer);
        let sent = Arc::new(AtomicUsize::new(0));
        let sender = {
            let (writer, sent) = (writer.clone(), sent.clone());
            std::thread::spawn(move || {
                for i in 0..100 {
                    writer.send(big(i, 1000));
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            sent.load(Ordering::SeqCst) < 100,
            "the sender waits for the writer"
        );
        assert!(writer.shared.lock().bytes <= 4096 + 1100);
        drop(held);
        sender.join().unwrap();
        let writer = Arc::into_inner(writer).unwrap();
        assert_eq!(writer.finish(0, 1).unwrap().total(), 100);
        let text = String::from_utf8(bytes.lock().unwrap().clone()).unwrap();
        assert_eq!(text, expected_text(100, 1000));
    }

    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_first_failure_is_reported_once_and_returned() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let writer = Writer::spawn(Sink::new(Closed, Format::Jsonl, false, None), move |e| {
            assert!(matches!(e, OutputError::Closed));
            seen.fetch_add(1, Ordering::SeqCst);
        });
        writer.send(record("111111111111"));
        writer.send(record("222222222222"));
        assert!(matches!(writer.finish(0, 1), Err(OutputError::Closed)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
