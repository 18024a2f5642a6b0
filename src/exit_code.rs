//! The exit codes cove promises to scripts. Documented in `--help` and the README.

use std::process::ExitCode;

/// Every target is in `Results`.
pub const SUCCESS: u8 = 0;
/// At least one target is in `Exceptions` or `FailedAssumeRole`.
pub const TARGET_FAILED: u8 = 1;
/// Bad input, or nothing could run, or the output could not be written.
pub const NOTHING_RAN: u8 = 2;
/// Interrupted by SIGINT or SIGTERM.
pub const INTERRUPTED: u8 = 130;

pub fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}
