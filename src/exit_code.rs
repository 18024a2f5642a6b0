//! The exit codes cove promises to scripts, documented in `--help` and the README, and the one
//! function that decides which one a finished run earns (shared by a run and `cove merge`).

/// An exit code of cove's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every target is in `Results`.
    Success,
    /// 1: at least one target is in `Exceptions` or `FailedAssumeRole`.
    TargetFailed,
    /// 2: bad input, or nothing could run, or the output could not be written.
    NothingRan,
    /// 130: interrupted by SIGINT, SIGTERM, SIGHUP or SIGQUIT.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::TargetFailed => 1,
            Exit::NothingRan => 2,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// The code a run (or a merge of runs) earns from how many targets failed and whether it was
/// interrupted. An interrupt wins: the document is then incomplete by design.
pub fn decide(failed_targets: u64, interrupted: bool) -> Exit {
    if interrupted {
        Exit::Interrupted
    } else if failed_targets > 0 {
        Exit::TargetFailed
    } else {
        Exit::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_numbers() {
        let codes: Vec<u8> = [
            Exit::Success,
            Exit::TargetFailed,
            Exit::NothingRan,
            Exit::Interrupted,
        ]
        .map(Exit::code)
        .to_vec();
        assert_eq!(codes, [0, 1, 2, 130]);
    }

    #[test]
    fn an_interrupt_wins_over_failures() {
        assert_eq!(decide(0, false), Exit::Success);
        assert_eq!(decide(3, false), Exit::TargetFailed);
        assert_eq!(decide(3, true), Exit::Interrupted);
        assert_eq!(decide(0, true), Exit::Interrupted);
    }
}
