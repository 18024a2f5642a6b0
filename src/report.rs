//! Where a run's records go: each finished target to the progress display (stderr), the GitHub
//! Actions summary and the output's writer thread (stdout), through one [`Reporter`]; and the
//! end of a run that started ([`Reporter::finish`]): the output's last bytes, late notes, the
//! summary and the exit code.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;

use crate::ci_summary;
use crate::config::OutputSettings;
use crate::exit_code::{self, Exit};
use crate::output::{Format, OutputError, Record, Sink};
use crate::progress::{self, Progress};
use crate::runner::Observer;
use crate::stop::{Stop, StopReason};
use crate::text;
use crate::writer::Writer;

/// Hands each finished target to the progress display and the output's writer thread.
pub struct Reporter {
    writer: Writer,
    progress: Progress,
    /// While the organization is still being listed, the number of targets known so far.
    pub known: Option<Arc<AtomicU64>>,
    /// The failed targets for the GitHub Actions summary, when cove runs there.
    ci: Option<ci_summary::Collector>,
}

impl Reporter {
    /// This reporter without its GitHub step summary, for a run that ends in exit 2.
    pub fn without_ci_summary(self) -> Reporter {
        Reporter { ci: None, ..self }
    }

    /// The reporter of a run of `total` targets (0 while they are still listed) writing to
    /// `out`; an output that fails or is closed stops the run through `stop`.
    pub fn new<W: Write + Send + 'static>(
        o: &OutputSettings,
        stop: Arc<Stop>,
        out: W,
        pretty: bool,
        total: u64,
    ) -> Reporter {
        // `pretty` says stdout is a terminal: text there gets colors, and no progress bar
        // drawn over its lines.
        let text_on_terminal = pretty && o.format == Format::Text;
        let sink = Sink::new(out, o.format, pretty, o.dir.clone())
            .with_color(text_on_terminal && text::color_allowed());
        let writer = Writer::spawn(sink, move |err| {
            stop.trigger(match err {
                OutputError::Closed => StopReason::OutputClosed,
                OutputError::Failed(_) => StopReason::OutputFailed,
            })
        });
        let ci = o.ci_summary.then(ci_summary::destination).flatten();
        Reporter {
            writer,
            progress: Progress::new(total, o.quiet, !text_on_terminal && !o.logging),
            known: None,
            ci: ci.map(ci_summary::Collector::new),
        }
    }

    fn update_total(&self) {
        if let Some(known) = &self.known {
            self.progress.set_total(known.load(Ordering::SeqCst));
        }
    }

    /// Ends a run that started: the end of the output, late notes, the summary, the exit code.
    pub fn finish(
        self,
        stop: &Stop,
        skipped: u64,
        elapsed_ms: u64,
        late_notes: &[String],
    ) -> anyhow::Result<Exit> {
        let Reporter {
            writer,
            progress,
            ci,
            ..
        } = self;
        let interrupted = stop.interrupted();
        let counts = match writer.finish(skipped, elapsed_ms) {
            Ok(counts) => counts,
            // The reader went away (`| head`): quiet, but an interrupt is still an interrupt.
            Err(OutputError::Closed) => return Ok(exit_code::decide(0, interrupted)),
            Err(OutputError::Failed(err)) => bail!("could not write the results: {err}"),
        };
        progress.clear();
        for note in late_notes {
            progress::note(progress.is_quiet(), note);
        }
        let stopped = match stop.reason() {
            Some(StopReason::Interrupted) => Some("interrupted"),
            Some(StopReason::FailFast) => Some("stopped by --fail-fast"),
            _ => match stop.halted() {
                Some(StopReason::MaxFailures) => Some("max failures reached"),
                Some(StopReason::CanaryFailed) => Some("canary failed"),
                _ => None,
            },
        };
        progress.finish(&counts, stopped);
        if let Some(ci) = ci {
            ci.report(&counts, skipped, stopped);
        }
        Ok(exit_code::decide(counts.failed(), interrupted))
    }
}

impl Observer for Reporter {
    fn finished(&mut self, record: Record) {
        self.update_total();
        self.progress.finished(&record);
        if let Some(ci) = &mut self.ci {
            ci.add(&record);
        }
        self.writer.send(record);
    }

    fn running(&mut self, running: &mut dyn Iterator<Item = (&str, &str, Duration)>) {
        self.update_total();
        self.progress.running(running);
    }

    fn note(&mut self, message: &str) {
        self.progress.note(message);
    }

    fn workers(&mut self, workers: usize) {
        self.progress.workers(workers);
    }
}
