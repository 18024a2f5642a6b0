//! The output's own thread. Records are handed over through a channel and written there, so a
//! reader that stalls (a pager, a full pipe) never holds up the scheduler: targets keep
//! starting and finishing while the writer waits. The first write failure is reported once
//! through `on_failure` (the pipeline stops the run with it) and returned by
//! [`Writer::finish`]; later records are dropped.

use std::io::Write;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::output::{Counts, OutputError, Record, Sink};

enum Message {
    Record(Box<Record>),
    Finish { skipped: u64, duration_ms: u64 },
}

/// The handle the scheduler holds; the [`Sink`] lives on the thread.
pub struct Writer {
    tx: mpsc::Sender<Message>,
    thread: JoinHandle<Result<Counts, OutputError>>,
}

impl Writer {
    /// Starts the thread. `on_failure` is called on the writer's thread, once, when writing
    /// first fails.
    pub fn spawn<W: Write + Send + 'static>(
        mut sink: Sink<W>,
        on_failure: impl Fn(&OutputError) + Send + 'static,
    ) -> Writer {
        let (tx, rx) = mpsc::channel::<Message>();
        let thread = std::thread::spawn(move || {
            let mut failed: Option<OutputError> = None;
            for message in rx {
                match message {
                    Message::Record(record) if failed.is_none() => {
                        if let Err(err) = sink.record(*record) {
                            let err = OutputError::from(err);
                            on_failure(&err);
                            failed = Some(err);
                        }
                    }
                    Message::Record(_) => {}
                    Message::Finish {
                        skipped,
                        duration_ms,
                    } => {
                        return match failed {
                            Some(err) => Err(err),
                            None => sink.finish(skipped, duration_ms).map_err(OutputError::from),
                        };
                    }
                }
            }
            Err(failed.unwrap_or(OutputError::Closed))
        });
        Writer { tx, thread }
    }

    /// Queues one finished target for writing. Never blocks.
    pub fn send(&self, record: Record) {
        // The thread only ends after Finish, which consumes the writer: sending cannot fail.
        let _ = self.tx.send(Message::Record(Box::new(record)));
    }

    /// Writes the end of the output once every queued record is written, and returns the
    /// counts, or the first write failure.
    pub fn finish(self, skipped: u64, duration_ms: u64) -> Result<Counts, OutputError> {
        let _ = self.tx.send(Message::Finish {
            skipped,
            duration_ms,
        });
        drop(self.tx);
        self.thread.join().unwrap_or_else(|_| {
            Err(OutputError::Failed(std::io::Error::other(
                "the output thread panicked",
            )))
        })
    }
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
