//! The run's stop flag: why it stopped early, if it did, shared by the scheduler, every target,
//! the signal handler and the output writer. The first reason wins.

use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Interrupted,
    FailFast,
    /// The reader of stdout went away (`| head`).
    OutputClosed,
    /// Writing the output failed (disk full, ...).
    OutputFailed,
    /// `--max-failures`: more targets failed than the budget allows (a halt: nothing killed).
    MaxFailures,
    /// `--canary`: a canary target failed (a halt: nothing killed).
    CanaryFailed,
}

impl StopReason {
    /// What a target that this stop cancelled says in `ExceptionDetails`.
    pub fn detail(self) -> &'static str {
        match self {
            StopReason::Interrupted => {
                "cancelled: cove was interrupted before this target finished"
            }
            StopReason::FailFast => {
                "cancelled: --fail-fast stopped the run after the first failure"
            }
            StopReason::OutputClosed => "cancelled: the output was closed",
            StopReason::OutputFailed => "cancelled: the output could not be written",
            StopReason::MaxFailures => {
                "cancelled: max failures reached (--max-failures); this target never started"
            }
            StopReason::CanaryFailed => {
                "cancelled: canary failed (--canary); this target never started"
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Stop {
    token: CancellationToken,
    reason: OnceLock<StopReason>,
    /// Set by [`Stop::halt`]: nothing new starts, but what runs is left to finish.
    halted: OnceLock<StopReason>,
}

impl Stop {
    /// Starts nothing new and stops running children. The first reason given wins.
    pub fn trigger(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Resolves once the run is told to stop.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.reason.get().copied()
    }

    pub fn is_stopped(&self) -> bool {
        self.reason().is_some()
    }

    /// The output is gone: nothing more can be reported.
    pub fn output_gone(&self) -> bool {
        matches!(
            self.reason(),
            Some(StopReason::OutputClosed | StopReason::OutputFailed)
        )
    }

    pub fn interrupted(&self) -> bool {
        self.reason() == Some(StopReason::Interrupted)
    }

    /// Starts nothing new, but leaves running children to finish (`--max-failures`,
    /// `--canary`). Unlike [`Stop::trigger`] nothing is cancelled. The first reason wins.
    pub fn halt(&self, reason: StopReason) {
        let _ = self.halted.set(reason);
    }

    /// Why the run was halted, if it was.
    pub fn halted(&self) -> Option<StopReason> {
        self.halted.get().copied()
    }

    /// Why nothing new may start: the run stopped or halted (a stop's reason first).
    pub fn starts_nothing(&self) -> Option<StopReason> {
        self.reason().or_else(|| self.halted())
    }
}
