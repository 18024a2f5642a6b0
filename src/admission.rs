//! The one policy that decides whether a selected account runs: ignores win, the calling
//! account is left out, accounts that are not ACTIVE are skipped, and the name and email filters
//! apply. Every way of choosing targets (a listed organization, a streamed one, an OU walk)
//! asks [`Admission::admit`], and a [`Tally`] words the notes the same way for all of them.

use std::collections::BTreeSet;

use crate::aws::{Account, Caller};
use crate::filters::Filters;

/// Why an account does or does not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Run,
    /// Under an `--ignore` (account, OU or root).
    Ignored,
    /// The calling account, without `--include-caller`.
    Caller,
    /// Known not to be ACTIVE (suspended, pending closure, ...).
    Inactive,
    /// Left out by `--filter-name` or `--filter-email`.
    Filtered,
}

/// The rules of one run.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Every account ID under an `--ignore`, OUs already expanded.
    pub ignored: BTreeSet<String>,
    pub caller: Caller,
    pub include_caller: bool,
    pub filters: Filters,
}

impl Admission {
    /// The verdict for one account, in the order the rules win: an ignore, the caller, the
    /// account's state, then the filters. An account whose state is unknown (named by ID
    /// without organization access) is not judged inactive.
    pub fn admit(&self, account: &Account) -> Admit {
        if self.ignored.contains(&account.id) {
            Admit::Ignored
        } else if account.id == self.caller.account && !self.include_caller {
            Admit::Caller
        } else if account.status.is_some() && !account.is_active() {
            Admit::Inactive
        } else if !self.filters.matches_text(account) {
            Admit::Filtered
        } else {
            Admit::Run
        }
    }
}

/// What admission left out, for the notes and the `Skipped` count.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    caller_left_out: Option<String>,
    inactive: Vec<String>,
    /// Accounts that passed everything but the filters.
    eligible: u64,
    filtered: u64,
}

impl Tally {
    /// Counts one verdict.
    pub fn count(&mut self, account: &Account, admit: Admit) {
        match admit {
            Admit::Run => self.eligible += 1,
            Admit::Filtered => {
                self.eligible += 1;
                self.filtered += 1;
            }
            Admit::Caller => self.caller_left_out = Some(account.id.clone()),
            Admit::Inactive => self.inactive.push(format!(
                "{} ({})",
                account.id,
                account.status.as_deref().unwrap_or("unknown state")
            )),
            Admit::Ignored => {}
        }
    }

    /// The calling account was named explicitly and left out.
    pub fn caller_named(&mut self, caller: &Caller) {
        self.caller_left_out = Some(caller.account.clone());
    }

    /// A later filter (tags) left out an account that admission let through.
    pub fn filtered_later(&mut self, n: u64) {
        self.filtered += n;
    }

    /// Accounts that were selected but left out: not ACTIVE, or the calling account.
    pub fn skipped(&self) -> u64 {
        self.inactive.len() as u64 + u64::from(self.caller_left_out.is_some())
    }

    /// The notes for stderr; `filters` says whether any filter was given.
    pub fn notes(&self, filters: bool) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(caller) = &self.caller_left_out {
            notes.push(format!(
                "leaving out the calling account {caller}: cove never targets the account it runs from unless --include-caller is given"
            ));
        }
        if !self.inactive.is_empty() {
            let (s, verb) = if self.inactive.len() == 1 {
                ("", "is")
            } else {
                ("s", "are")
            };
            notes.push(format!(
                "skipping {} account{s} that {verb} not ACTIVE: {}",
                self.inactive.len(),
                self.inactive.join(", ")
            ));
        }
        if filters {
            notes.push(format!(
                "filters kept {} of {} accounts",
                self.eligible - self.filtered,
                self.eligible
            ));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;

    fn admission() -> Admission {
        Admission {
            ignored: ["222222222222".to_owned()].into(),
            caller: Caller {
                account: "000000000000".into(),
                arn: "arn:aws:iam::000000000000:user/t".into(),
            },
            include_caller: false,
            filters: Filters {
                name: Some(regex::Regex::new("^keep").unwrap()),
                ..Filters::default()
            },
        }
    }

    #[test]
    fn each_rule_has_its_verdict_and_ignores_win() {
        let a = admission();
        let verdict =
            |id: &str, name: &str, state: &str| a.admit(&FakeAws::account(id, name, state));
        assert_eq!(verdict("111111111111", "keep-a", "ACTIVE"), Admit::Run);
        assert_eq!(verdict("222222222222", "keep-b", "ACTIVE"), Admit::Ignored);
        assert_eq!(verdict("000000000000", "keep-m", "ACTIVE"), Admit::Caller);
        assert_eq!(
            verdict("333333333333", "keep-c", "SUSPENDED"),
            Admit::Inactive
        );
        assert_eq!(verdict("444444444444", "drop-d", "ACTIVE"), Admit::Filtered);
        assert_eq!(verdict("222222222222", "drop", "SUSPENDED"), Admit::Ignored);
    }

    #[test]
    fn an_account_of_unknown_state_is_not_inactive() {
        let mut a = admission();
        a.filters = Filters::default();
        assert_eq!(a.admit(&Account::bare("555555555555")), Admit::Run);
    }

    #[test]
    fn the_tally_words_the_notes() {
        let a = admission();
        let mut tally = Tally::default();
        for (id, name, state) in [
            ("000000000000", "keep-m", "ACTIVE"),
            ("111111111111", "keep-a", "ACTIVE"),
            ("333333333333", "keep-c", "SUSPENDED"),
            ("444444444444", "drop-d", "ACTIVE"),
        ] {
            let account = FakeAws::account(id, name, state);
            tally.count(&account, a.admit(&account));
        }
        assert_eq!(tally.skipped(), 2);
        assert_eq!(
            tally.notes(true),
            [
                "leaving out the calling account 000000000000: cove never targets the account it runs from unless --include-caller is given",
                "skipping 1 account that is not ACTIVE: 333333333333 (SUSPENDED)",
                "filters kept 1 of 2 accounts",
            ]
        );
    }
}
