//! [`Secret`]: a value that must never be printed. Secret keys, session tokens, external IDs and
//! session policies travel in it, so no `Debug`, `Display` or error message can show them.

use std::fmt;

/// A value that must never be printed: secret keys, session tokens, external IDs, policies.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value, for handing to AWS or to a child's environment only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of this secret replaced, for messages that may quote it
    /// (AWS error messages can echo request parameters).
    pub fn redact_from(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "<redacted>")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let s = Secret::new("wJalrXUtnFEMI");
        assert!(!format!("{s:?}").contains("wJalr"));
        assert!(!format!("{s}").contains("wJalr"));
    }

    #[test]
    fn redaction_replaces_every_occurrence() {
        let s = Secret::new("ext-123");
        assert_eq!(
            s.redact_from("id ext-123 and ext-123 again"),
            "id <redacted> and <redacted> again"
        );
        assert_eq!(Secret::new("").redact_from("text"), "text");
    }
}
