//! Per-account variables and regions from the config files: `[vars]` (defaults),
//! `[ous."ou-…"]` (every account beneath that OU, at any depth) and `[accounts."ID"]` (that
//! account alone), each with a `vars` table and an optional `region`. The most specific wins:
//! the account, then the nearest OU, then the farther OUs, then the defaults.
//!
//! This module owns the data and the lookup; `config_file.rs` reads the tables and
//! `template.rs` puts the values into the command.

use std::collections::{BTreeMap, BTreeSet};

use crate::place::Place;

/// Longest variable name, and longest value, a config file may hold.
pub const MAX_NAME: usize = 64;
pub const MAX_VALUE: usize = 4096;

/// One variable's value, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub value: String,
    pub place: Place,
}

/// An `[ous."ou-…"]` or `[accounts."ID"]` entry: its variables and its regions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub vars: BTreeMap<String, Value>,
    /// `region`: replaces the run's regions for the accounts the entry covers, unless the
    /// regions were given by `--region` or `COVE_REGIONS`.
    pub regions: Option<(Vec<String>, Place)>,
}

impl Entry {
    /// `other`'s variables and regions over this entry's (a later file over an earlier one).
    fn overlay(&mut self, other: &Entry) {
        for (name, value) in &other.vars {
            self.vars.insert(name.clone(), value.clone());
        }
        if other.regions.is_some() {
            self.regions.clone_from(&other.regions);
        }
    }
}

/// Every variable and per-account region the config files define.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VarsConfig {
    /// `[vars]`.
    pub defaults: BTreeMap<String, Value>,
    /// `[ous."ou-…"]`, by OU ID.
    pub ous: BTreeMap<String, Entry>,
    /// `[accounts."ID"]`, by account ID.
    pub accounts: BTreeMap<String, Entry>,
}

/// Whether `name` may name a variable: a letter or `_` first, then letters, digits, `_` and
/// `-`, at most [`MAX_NAME`] characters.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_NAME
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The environment variable that carries variable `name` to the child: `COVE_VAR_` and the
/// name upper-cased, every character other than a letter, digit or `_` as `_`.
pub fn env_name(name: &str) -> String {
    let mut out = String::from("COVE_VAR_");
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    out
}

impl VarsConfig {
    pub fn is_empty(&self) -> bool {
        self.defaults.is_empty() && self.ous.is_empty() && self.accounts.is_empty()
    }

    /// `later` (a file read after this one: the project file after the user file) over this.
    pub fn overlay(&mut self, later: &VarsConfig) {
        for (name, value) in &later.defaults {
            self.defaults.insert(name.clone(), value.clone());
        }
        for (id, entry) in &later.ous {
            self.ous.entry(id.clone()).or_default().overlay(entry);
        }
        for (id, entry) in &later.accounts {
            self.accounts.entry(id.clone()).or_default().overlay(entry);
        }
    }

    /// Every variable name defined anywhere: `{var.NAME}` outside this set is an input error.
    pub fn defined(&self) -> BTreeSet<&str> {
        self.defaults
            .keys()
            .chain(self.ous.values().flat_map(|e| e.vars.keys()))
            .chain(self.accounts.values().flat_map(|e| e.vars.keys()))
            .map(String::as_str)
            .collect()
    }

    /// Whether an account's place in the organization matters: some `[ous.…]` entry exists,
    /// so the accounts must come with their parents (the OU walk).
    pub fn needs_parents(&self) -> bool {
        !self.ous.is_empty()
    }

    /// The entries that apply to an account, least specific first: the farthest OU to the
    /// nearest, then the account's own. `parents` is nearest first (as the walk records it);
    /// `None` when the account's place is not known.
    fn entries<'a>(
        &'a self,
        account: &str,
        parents: Option<&'a [String]>,
    ) -> impl Iterator<Item = &'a Entry> + 'a {
        parents
            .unwrap_or_default()
            .iter()
            .rev()
            .filter_map(|ou| self.ous.get(ou))
            .chain(self.accounts.get(account))
    }

    /// An account's variables: the defaults, then each OU from the farthest to the nearest,
    /// then the account's own, each over the one before.
    pub fn for_account(
        &self,
        account: &str,
        parents: Option<&[String]>,
    ) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .defaults
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        for entry in self.entries(account, parents) {
            for (name, value) in &entry.vars {
                out.insert(name.clone(), value.value.clone());
            }
        }
        out
    }

    /// The regions the config gives an account (the account's own, else the nearest OU's), or
    /// `None` when no entry that covers it sets `region`.
    pub fn regions_for<'a>(
        &'a self,
        account: &'a str,
        parents: Option<&'a [String]>,
    ) -> Option<&'a [String]> {
        self.entries(account, parents)
            .filter_map(|e| e.regions.as_ref())
            .last()
            .map(|(regions, _)| regions.as_slice())
    }

    /// Two variable names that give the child the same environment variable (`a-b` and
    /// `a_b` are both `COVE_VAR_A_B`), if any.
    pub fn env_clash(&self) -> Option<(String, String, String)> {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for name in self.defined() {
            let env = env_name(name);
            if let Some(other) = seen.get(&env)
                && *other != name
            {
                return Some(((*other).to_owned(), name.to_owned(), env));
            }
            seen.insert(env, name);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize) -> Place {
        Place {
            path: "cove.toml".into(),
            line,
            group: None,
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    Value {
                        value: (*v).to_owned(),
                        place: at(1),
                    },
                )
            })
            .collect()
    }

    fn entry(pairs: &[(&str, &str)], regions: Option<&[&str]>) -> Entry {
        Entry {
            vars: vars(pairs),
            regions: regions.map(|r| (r.iter().map(|s| (*s).to_owned()).collect(), at(2))),
        }
    }

    fn config() -> VarsConfig {
        VarsConfig {
            defaults: vars(&[("tier", "default"), ("owner", "platform"), ("size", "s")]),
            ous: [
                (
                    "ou-root-far".to_owned(),
                    entry(&[("tier", "far"), ("size", "m")], Some(&["eu-west-1"])),
                ),
                ("ou-root-near".to_owned(), entry(&[("tier", "near")], None)),
            ]
            .into(),
            accounts: [(
                "111111111111".to_owned(),
                entry(&[("owner", "alice")], Some(&["us-east-2"])),
            )]
            .into(),
        }
    }

    #[test]
    fn the_most_specific_definition_wins() {
        let c = config();
        let parents = [
            "ou-root-near".to_owned(),
            "ou-root-far".to_owned(),
            "r-root".to_owned(),
        ];
        let v = c.for_account("111111111111", Some(&parents));
        assert_eq!(v["tier"], "near", "the nearest OU over the farther one");
        assert_eq!(v["size"], "m", "a farther OU over the defaults");
        assert_eq!(v["owner"], "alice", "the account over everything");
        let outside = c.for_account("222222222222", Some(&["r-root".to_owned()]));
        assert_eq!(outside["tier"], "default", "outside every OU: the defaults");
        assert_eq!(c.for_account("222222222222", None)["size"], "s");
    }

    #[test]
    fn regions_come_from_the_account_else_the_nearest_ou_that_sets_them() {
        let c = config();
        let parents = ["ou-root-near".to_owned(), "ou-root-far".to_owned()];
        assert_eq!(
            c.regions_for("111111111111", Some(&parents)),
            Some(&["us-east-2".to_owned()][..])
        );
        assert_eq!(
            c.regions_for("222222222222", Some(&parents)),
            Some(&["eu-west-1".to_owned()][..])
        );
        assert_eq!(c.regions_for("222222222222", None), None);
    }

    #[test]
    fn names_and_their_environment_variables() {
        assert!(valid_name("db_host") && valid_name("_x") && valid_name("Team-Name2"));
        assert!(!valid_name("") && !valid_name("2x") && !valid_name("a.b") && !valid_name("a b"));
        assert!(!valid_name(&"x".repeat(MAX_NAME + 1)));
        assert_eq!(env_name("team-name"), "COVE_VAR_TEAM_NAME");
        let mut c = config();
        assert_eq!(c.env_clash(), None);
        c.defaults.extend(vars(&[("a-b", "1"), ("a_b", "2")]));
        assert_eq!(
            c.env_clash().map(|(_, _, env)| env),
            Some("COVE_VAR_A_B".to_owned())
        );
    }

    #[test]
    fn a_later_file_overlays_an_earlier_one_key_by_key() {
        let mut user = config();
        let project = VarsConfig {
            defaults: vars(&[("tier", "project")]),
            ous: [("ou-root-far".to_owned(), entry(&[("size", "l")], None))].into(),
            accounts: Default::default(),
        };
        user.overlay(&project);
        assert_eq!(user.defaults["tier"].value, "project");
        assert_eq!(user.defaults["owner"].value, "platform");
        let far = &user.ous["ou-root-far"];
        assert_eq!(far.vars["size"].value, "l");
        assert_eq!(far.vars["tier"].value, "far");
        assert!(
            far.regions.is_some(),
            "a region the later file does not set stays"
        );
    }
}
