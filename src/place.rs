//! Where a config file's setting or variable was written: shared by `config_file.rs`, which
//! reads the files, and `vars.rs`, which keeps the variables, so neither imports the other.

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
