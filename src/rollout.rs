//! Rolling a change out safely: `--canary N` (the first targets run alone, and the rest only if
//! they all succeed) and `--max-failures N|P%` (a failure budget: past it nothing new starts).
//! Both halt the run without killing anything; the scheduler asks the [`Gate`] before it starts
//! a target and tells it each record, and the targets that never started are reported as
//! cancelled with the halt's reason.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::output::{Outcome, Record};
use crate::plan::Target;
use crate::stop::StopReason;

/// `--max-failures`: how many failed targets the run tolerates before it starts nothing new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// More than this many failed targets halt the run.
    Count(u64),
    /// More than this share of the targets known (in hundredths of a percent) halts the run.
    Percent(u64),
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Count(n) => write!(f, "{n}"),
            Budget::Percent(h) if h % 100 == 0 => write!(f, "{}%", h / 100),
            Budget::Percent(h) => {
                let text = format!("{}.{:02}", h / 100, h % 100);
                write!(f, "{}%", text.trim_end_matches('0'))
            }
        }
    }
}

impl Budget {
    /// Whether `failed` failures out of `total` targets known are past the budget.
    pub fn exceeded(self, failed: u64, total: u64) -> bool {
        match self {
            Budget::Count(n) => failed > n,
            // failed / total > h / 10000, in integers.
            Budget::Percent(h) => u128::from(failed) * 10_000 > u128::from(h) * u128::from(total),
        }
    }
}

/// `--max-failures N` or `--max-failures P%`: a whole number of targets (0 and up; 0 halts at
/// the first failure), or a percentage from 0 to 100 with at most two decimals.
pub fn parse_max_failures(value: &str) -> Result<Budget, String> {
    let expected = "expected a number of failed targets (0 or more, such as 5) or a percentage \
                    of the targets from 0% to 100% (such as 2% or 0.5%)";
    let bad = |why: &str| Err(format!("`{value}` {why}; {expected}"));
    let Some(number) = value.strip_suffix('%') else {
        return match value.parse::<u64>() {
            Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => Ok(Budget::Count(n)),
            _ => bad("is not a number of targets"),
        };
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || number.ends_with('.') {
        return bad("is not a percentage");
    }
    if fraction.len() > 2 {
        return bad("has more than two decimals");
    }
    let Ok(whole) = whole.parse::<u64>() else {
        return bad("is over 100%");
    };
    let hundredths = whole
        .saturating_mul(100)
        .saturating_add(format!("{fraction:0<2}").parse::<u64>().unwrap_or(0));
    if hundredths > 10_000 {
        return bad("is over 100%");
    }
    Ok(Budget::Percent(hundredths))
}

/// `--canary N`: a number of targets, 1 or more.
pub fn parse_canary(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n >= 1 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!(
            "`{value}` is not a number of canary targets; expected a whole number of 1 or more, such as 5"
        )),
    }
}

/// The rollout options of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub max_failures: Option<Budget>,
    pub canary: Option<u64>,
}

impl Policy {
    pub fn new(max_failures: Option<Budget>, canary: Option<u64>) -> Policy {
        Policy {
            max_failures,
            canary,
        }
    }
}

/// `--confirm` and `--yes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Confirm {
    #[default]
    Off,
    /// Ask on the terminal.
    Ask,
    /// `--yes`: say what will run, and go on.
    Yes,
}

impl Confirm {
    pub fn from_flags(confirm: bool, yes: bool) -> Confirm {
        match (confirm, yes) {
            (false, _) => Confirm::Off,
            (true, false) => Confirm::Ask,
            (true, true) => Confirm::Yes,
        }
    }

    /// The run must be listed first, so that the question can count the targets.
    pub fn on(self) -> bool {
        self != Confirm::Off
    }
}

/// A listed run with a canary runs its targets in output order (by account ID, then region), so
/// that the canaries are the first records of the document.
pub fn order(targets: &mut [Target], policy: &Policy) {
    if policy.canary.is_some() {
        targets.sort_by(|(a, ra), (b, rb)| (&a.id, ra).cmp(&(&b.id, rb)));
    }
}

/// What the gate learned from a finished target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Every canary succeeded: the run goes on at full concurrency.
    CanaryPassed { canaries: u64 },
    /// Nothing new starts, for `reason`; `failed` targets failed so far.
    Halt {
        reason: StopReason,
        failed: u64,
        total: u64,
        budget: Option<Budget>,
    },
}

impl Event {
    /// The line for people (stderr).
    pub fn message(&self) -> String {
        match self {
            Event::CanaryPassed { canaries } => format!(
                "canary phase over: all {canaries} canary targets succeeded; the other targets start now"
            ),
            Event::Halt {
                reason: StopReason::CanaryFailed,
                ..
            } => "canary failed: starting nothing more; the canaries still running finish, every other target is reported as cancelled".to_owned(),
            Event::Halt {
                failed,
                total,
                budget,
                ..
            } => format!(
                "max failures reached: {failed} of {total} targets known failed, more than --max-failures {}; starting nothing more, the commands running finish",
                budget.map(|b| b.to_string()).unwrap_or_default()
            ),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    started: u64,
    canaries_done: u64,
    canary_passed: bool,
    failed: u64,
    halted: bool,
}

/// The canary phase and the failure budget of one run, asked by the scheduler.
#[derive(Debug, Default)]
pub struct Gate {
    policy: Policy,
    /// The targets known: the whole list in a listed run, those listed so far in a streamed one.
    total: Arc<AtomicU64>,
    counts: Mutex<Counts>,
}

impl Gate {
    pub fn new(policy: Policy) -> Gate {
        Gate {
            policy,
            ..Gate::default()
        }
    }

    /// The counter of targets known, for the code that lists them (a streamed run).
    pub fn known(&self) -> Arc<AtomicU64> {
        self.total.clone()
    }

    /// A listed run: every target is known.
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::SeqCst);
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The note at the start of a run with a canary.
    pub fn opening(&self) -> Option<String> {
        self.policy.canary.map(|n| {
            format!(
                "canary: the first {n} targets run first; the others wait until they all succeed"
            )
        })
    }

    fn in_canary_phase(&self, counts: &Counts) -> bool {
        self.policy.canary.is_some() && !counts.canary_passed
    }

    /// Whether the target at `index` (counted from the first target the run started) may have
    /// its role assumed ahead: during the canary phase only the canaries may.
    pub fn may_prefetch(&self, index: u64) -> bool {
        let counts = self.counts();
        !self.in_canary_phase(&counts) || self.policy.canary.is_some_and(|n| index < n)
    }

    /// The number of targets started so far.
    pub fn started_count(&self) -> u64 {
        self.counts().started
    }

    /// Starts one more target if the canary phase allows it (it does once the canaries have
    /// all succeeded). Returns whether it may start.
    pub fn try_start(&self) -> bool {
        let mut counts = self.counts();
        if self.in_canary_phase(&counts) && self.policy.canary.is_some_and(|n| counts.started >= n)
        {
            return false;
        }
        counts.started += 1;
        true
    }

    /// Adds failures that happened before the scheduler ran (`--region all` discovery).
    pub fn failed_before(&self, failed: u64) -> Option<Event> {
        let mut counts = self.counts();
        counts.failed += failed;
        self.over_budget(&mut counts)
    }

    /// A target finished: a failed canary halts the run, the last good one ends the canary
    /// phase, and a failure past the budget halts it.
    pub fn finished(&self, record: &Record) -> Option<Event> {
        let failed = record.outcome != Outcome::Result;
        let mut counts = self.counts();
        if counts.halted {
            return None;
        }
        counts.failed += u64::from(failed);
        if let (Some(canaries), false) = (self.policy.canary, counts.canary_passed) {
            counts.canaries_done += 1;
            if failed {
                counts.halted = true;
                return Some(Event::Halt {
                    reason: StopReason::CanaryFailed,
                    failed: counts.failed,
                    total: self.total.load(Ordering::SeqCst),
                    budget: self.policy.max_failures,
                });
            }
            if counts.canaries_done >= canaries {
                counts.canary_passed = true;
                return Some(Event::CanaryPassed { canaries });
            }
            return None;
        }
        self.over_budget(&mut counts)
    }

    fn over_budget(&self, counts: &mut Counts) -> Option<Event> {
        let budget = self.policy.max_failures?;
        let total = self.total.load(Ordering::SeqCst);
        if counts.halted || !budget.exceeded(counts.failed, total) {
            return None;
        }
        counts.halted = true;
        Some(Event::Halt {
            reason: StopReason::MaxFailures,
            failed: counts.failed,
            total,
            budget: Some(budget),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_failures_takes_a_count_or_a_percentage() {
        assert_eq!(parse_max_failures("0"), Ok(Budget::Count(0)));
        assert_eq!(parse_max_failures("25"), Ok(Budget::Count(25)));
        assert_eq!(parse_max_failures("0%"), Ok(Budget::Percent(0)));
        assert_eq!(parse_max_failures("2%"), Ok(Budget::Percent(200)));
        assert_eq!(parse_max_failures("0.5%"), Ok(Budget::Percent(50)));
        assert_eq!(parse_max_failures("12.25%"), Ok(Budget::Percent(1225)));
        assert_eq!(parse_max_failures("100%"), Ok(Budget::Percent(10_000)));
        for bad in [
            "",
            "-1",
            "+3",
            "1.5",
            "x",
            "%",
            "101%",
            "100.01%",
            "1.%",
            ".5%",
            "0.125%",
            "5 %",
            "99999999999999999999%",
            "1e3",
        ] {
            let err = parse_max_failures(bad).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
            assert!(err.contains("expected"), "{err}");
        }
    }

    #[test]
    fn budgets_print_as_they_were_given() {
        for text in ["7", "2%", "0.5%", "12.25%", "100%"] {
            assert_eq!(parse_max_failures(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_budget_is_exceeded_only_past_it() {
        assert!(!Budget::Count(2).exceeded(2, 10));
        assert!(Budget::Count(2).exceeded(3, 10));
        assert!(Budget::Count(0).exceeded(1, 10));
        // 10% of 50 is 5: the sixth failure is past it.
        assert!(!Budget::Percent(1000).exceeded(5, 50));
        assert!(Budget::Percent(1000).exceeded(6, 50));
        assert!(Budget::Percent(0).exceeded(1, 1000));
        assert!(!Budget::Percent(10_000).exceeded(50, 50));
    }

    #[test]
    fn canary_needs_one_or_more() {
        assert_eq!(parse_canary("3"), Ok(3));
        for bad in ["0", "-1", "x", "", "1.5", "+2"] {
            let err = parse_canary(bad).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    fn record(ok: bool) -> Record {
        Record {
            id: "111111111111".into(),
            name: None,
            email: None,
            status: None,
            partition: "aws".into(),
            region: "us-east-1".into(),
            role_name: "R".into(),
            role_session_name: None,
            assume_role_success: true,
            exit_code: None,
            result: None,
            stderr: None,
            exception_details: None,
            duration_ms: 1,
            outcome: if ok {
                Outcome::Result
            } else {
                Outcome::Exception
            },
            raw_output: None,
        }
    }

    #[test]
    fn the_canaries_run_alone_and_open_the_gate_when_all_succeed() {
        let gate = Gate::new(Policy {
            canary: Some(2),
            max_failures: None,
        });
        gate.set_total(10);
        assert!(gate.may_prefetch(1) && !gate.may_prefetch(2));
        assert!(gate.try_start() && gate.try_start());
        assert!(!gate.try_start(), "a third waits for the canaries");
        assert_eq!(gate.finished(&record(true)), None);
        assert!(!gate.try_start(), "still one canary running");
        assert_eq!(
            gate.finished(&record(true)),
            Some(Event::CanaryPassed { canaries: 2 })
        );
        assert!(gate.may_prefetch(7));
        assert!(gate.try_start() && gate.try_start() && gate.try_start());
        assert_eq!(gate.finished(&record(false)), None, "no budget: no halt");
    }

    #[test]
    fn a_failed_canary_halts_the_run() {
        let gate = Gate::new(Policy {
            canary: Some(3),
            max_failures: Some(Budget::Count(5)),
        });
        assert!(gate.try_start());
        let event = gate.finished(&record(false)).unwrap();
        assert!(matches!(
            event,
            Event::Halt {
                reason: StopReason::CanaryFailed,
                ..
            }
        ));
        assert!(event.message().contains("canary failed"));
        assert_eq!(gate.finished(&record(false)), None, "halted once");
    }

    #[test]
    fn the_budget_counts_failures_of_the_targets_known() {
        let gate = Gate::new(Policy {
            canary: None,
            max_failures: Some(Budget::Percent(2500)),
        });
        gate.known().store(8, Ordering::SeqCst);
        assert_eq!(gate.failed_before(1), None);
        assert_eq!(gate.finished(&record(false)), None, "2 of 8 is 25%");
        assert_eq!(gate.finished(&record(true)), None);
        let event = gate.finished(&record(false)).unwrap();
        assert_eq!(
            event,
            Event::Halt {
                reason: StopReason::MaxFailures,
                failed: 3,
                total: 8,
                budget: Some(Budget::Percent(2500)),
            }
        );
        assert!(
            event.message().contains("max failures reached: 3 of 8"),
            "{}",
            event.message()
        );
        assert!(event.message().contains("--max-failures 25%"));
    }
}
