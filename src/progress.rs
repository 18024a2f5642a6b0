//! What people see on stderr: notes, a progress bar while the run goes on (only when stderr is
//! a terminal), and a short summary at the end. Never data: that is stdout's.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::{Counts, Outcome, Record};

/// How many failed targets the summary names before it says "and N more".
const NAMED_FAILURES: usize = 20;
/// A target running longer than this is named in the bar.
const SLOW: Duration = Duration::from_secs(10);

/// Prints a note on stderr unless `--quiet`.
pub fn note(quiet: bool, message: &str) {
    if !quiet {
        eprintln!("cove: note: {message}");
    }
}

/// Whether a progress bar can be drawn: stderr is a terminal that can redraw a line.
pub fn bar_allowed() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    failed: u64,
    named: Vec<String>,
    started: Instant,
    /// With `--workers auto`: how many may run at once now.
    workers: Option<usize>,
}

impl Progress {
    /// `draw_bar: false` keeps the bar off even on a terminal (text output is drawn there).
    pub fn new(total: u64, quiet: bool, draw_bar: bool) -> Self {
        let bar = (draw_bar && !quiet && bar_allowed()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} targets, {msg} (ETA {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message("0 failed");
            bar.tick();
            bar
        });
        Progress {
            bar,
            quiet,
            failed: 0,
            named: Vec::new(),
            started: Instant::now(),
            workers: None,
        }
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// More targets became known (the organization is still being listed).
    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// One target finished.
    pub fn finished(&mut self, record: &Record) {
        if record.outcome != Outcome::Result {
            self.failed += 1;
            if self.named.len() < NAMED_FAILURES {
                // Names and details hold text from AWS and the child: escaped for the terminal.
                self.named.push(
                    crate::untrusted::terminal(&format!(
                        "  {} {}{}: {}",
                        record.id,
                        record
                            .name
                            .as_deref()
                            .map(|n| format!("({n}) "))
                            .unwrap_or_default(),
                        record.region,
                        record.exception_details.as_deref().unwrap_or("failed")
                    ))
                    .into_owned(),
                );
            }
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(self.status());
        }
    }

    /// A note about the run as a whole, printed above the bar (unless `--quiet`).
    pub fn note(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("cove: note: {message}")),
            None => note(self.quiet, message),
        }
    }

    /// `--workers auto` changed how many may run at once: the bar says so.
    pub fn workers(&mut self, workers: usize) {
        self.workers = Some(workers);
        if let Some(bar) = &self.bar {
            bar.set_message(self.status());
        }
    }

    /// The failures so far and, with `--workers auto`, the current count.
    fn status(&self) -> String {
        let mut message = format!("{} failed", thousands(self.failed));
        if let Some(workers) = self.workers {
            message.push_str(&format!(", {workers} workers"));
        }
        message
    }

    /// The targets still running; the slow ones are named so a stuck account is visible.
    pub fn running(&self, running: &mut dyn Iterator<Item = (&str, &str, Duration)>) {
        let Some(bar) = &self.bar else { return };
        let slow: Vec<String> = running
            .filter(|(_, _, elapsed)| *elapsed >= SLOW)
            .map(|(id, region, _)| format!("{id}/{region}"))
            .collect();
        let mut message = self.status();
        if !slow.is_empty() {
            message.push_str(&format!(
                ", waiting on {}",
                slow[..slow.len().min(3)].join(" ")
            ));
            if slow.len() > 3 {
                message.push_str(&format!(" +{}", slow.len() - 3));
            }
        }
        bar.set_message(message);
    }

    /// Clears the bar and prints the summary: counts, then the failed targets one by one.
    /// Takes the bar off the screen, so that what follows on stderr is not drawn over.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn finish(self, counts: &Counts, stopped: Option<&str>) {
        self.clear();
        if self.quiet {
            return;
        }
        let elapsed = Duration::from_secs(self.started.elapsed().as_secs());
        eprintln!(
            "cove: {} ok, {} failed, {} could not assume role in {}{}",
            thousands(counts.of(Outcome::Result)),
            thousands(counts.of(Outcome::Exception)),
            thousands(counts.of(Outcome::FailedAssumeRole)),
            humantime::format_duration(elapsed),
            stopped.map(|s| format!(" ({s})")).unwrap_or_default()
        );
        for line in &self.named {
            eprintln!("{line}");
        }
        let unnamed = self.failed.saturating_sub(self.named.len() as u64);
        if unnamed > 0 {
            eprintln!(
                "  and {} more; see Exceptions and FailedAssumeRole in the output",
                thousands(unnamed)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_the_count_auto_runs_at() {
        let mut progress = Progress::new(10, false, false);
        assert_eq!(
            progress.status(),
            "0 failed",
            "a fixed --workers is not shown"
        );
        progress.workers(12);
        assert_eq!(progress.status(), "0 failed, 12 workers");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1997), "1,997");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
