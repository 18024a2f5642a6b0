//! Where a setting was written: a config file, its line, and the group it is in. Shared by
//! the config files (`config_file.rs`) and what they define (`vars.rs`); shown through
//! `untrusted::terminal`, since a path or a group name may hold anything.

use std::path::PathBuf;

use crate::untrusted;

/// Where a setting was written: a file, its line, and the group it is in, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub line: usize,
    pub group: Option<String>,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = format!("{}:{}", self.path.display(), self.line);
        match &self.group {
            Some(group) => write!(
                f,
                "group {} at {}",
                untrusted::terminal(group),
                untrusted::terminal(&at)
            ),
            None => write!(f, "{}", untrusted::terminal(&at)),
        }
    }
}
