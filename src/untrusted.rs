//! Text cove did not write (account names, IDs and regions read back from files, AWS
//! messages) on its way to a terminal: control characters, ESC sequences and the Unicode marks
//! that reorder what a line shows are written as `\u{..}` escapes, everything else as it is.

use std::borrow::Cow;

/// Whether a character must not reach a terminal as it is: C0 and C1 controls, DEL, and the
/// bidirectional marks, embeddings, overrides and isolates (they make a line show other text
/// than it holds).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text`, safe to print on a terminal; unchanged (and not copied) when it holds nothing to hide.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_reordering_marks_are_escaped_the_rest_kept() {
        assert_eq!(
            terminal("a\u{1b}[31mb\r\n\u{7}\u{9b}\0\u{202e}c"),
            "a\\u{1b}[31mb\\u{d}\\u{a}\\u{7}\\u{9b}\\u{0}\\u{202e}c"
        );
        assert!(matches!(terminal("Prod (EU) é ✓ $x"), Cow::Borrowed(_)));
    }
}
