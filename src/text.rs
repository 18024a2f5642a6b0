//! `--output text`: each target's output as lines a person can read, tagged with where they
//! came from, like `parallel --tag`. Every line starts with the same three fields and a marker:
//!
//! ```text
//! 111111111111 prod-a us-east-1 | a line of stdout
//! 111111111111 prod-a us-east-1 ! a line of stderr
//! 111111111111 prod-a us-east-1 FAILED: the command exited with code 3
//! 111111111111 prod-a us-east-1 NOTE: stdout was cut at --max-output-bytes (10485760 bytes)
//! ```
//!
//! The fields never contain a space, so `cut -d' ' -f1` is always the account ID: an unknown
//! name prints as `-`, and whitespace or control characters in a name print as `_`. Colors
//! (a dim tag, a yellow `!`, a red failure line) are for a terminal only; see [`color_allowed`].

use std::io::{self, Write};

const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// One finished target, as the text form needs it.
pub struct Target<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub region: &'a str,
    pub stdout: &'a [u8],
    pub stderr: &'a [u8],
    /// Why the target failed (its `ExceptionDetails`), for a failed target.
    pub failure: Option<&'a str>,
    /// What a successful target's record notes (output cut at the limit).
    pub note: Option<&'a str>,
}

/// Whether the environment lets cove color a terminal: not with `NO_COLOR` set to any value,
/// nor with `TERM=dumb`. The caller adds whether the output is a terminal at all.
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// `ID NAME REGION`, each field free of spaces.
fn tag(target: &Target) -> String {
    let name: String = match target.name {
        Some(name) if !name.is_empty() => name
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect(),
        _ => "-".to_owned(),
    };
    format!("{} {name} {}", target.id, target.region)
}

/// The lines of a stream: a trailing newline ends the last line rather than starting an empty
/// one, and a `\r` before a newline is dropped.
fn lines(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    let any = !bytes.is_empty();
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|b| *b == b'\n')
        .filter(move |_| any)
        .map(|line| String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned())
}

/// Details on one line, whatever they hold.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes one target's lines in a single write, so targets never interleave.
pub fn write_target(out: &mut impl Write, target: &Target, color: bool) -> io::Result<()> {
    let tag = tag(target);
    let (dim, red, yellow, reset) = if color {
        (DIM, RED, YELLOW, RESET)
    } else {
        ("", "", "", "")
    };
    let mut text = String::new();
    for line in lines(target.stdout) {
        text.push_str(&format!("{dim}{tag}{reset} | {line}\n"));
    }
    for line in lines(target.stderr) {
        text.push_str(&format!("{dim}{tag}{reset} {yellow}!{reset} {line}\n"));
    }
    if let Some(failure) = target.failure {
        let why = one_line(failure);
        text.push_str(&format!("{red}{tag} FAILED: {why}{reset}\n"));
    } else if let Some(note) = target.note {
        let why = one_line(note);
        text.push_str(&format!("{dim}{tag}{reset} {yellow}NOTE:{reset} {why}\n"));
    }
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(name: Option<&'a str>, stdout: &'a [u8], stderr: &'a [u8]) -> Target<'a> {
        Target {
            id: "111111111111",
            name,
            region: "us-east-1",
            stdout,
            stderr,
            failure: None,
            note: None,
        }
    }

    fn text(target: &Target, color: bool) -> String {
        let mut out = Vec::new();
        write_target(&mut out, target, color).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn stdout_then_stderr_lines_are_tagged() {
        let t = target(Some("prod-a"), b"one\r\ntwo\n", b"careful\n");
        assert_eq!(
            text(&t, false),
            "111111111111 prod-a us-east-1 | one\n\
             111111111111 prod-a us-east-1 | two\n\
             111111111111 prod-a us-east-1 ! careful\n"
        );
        let last_line_unended = target(Some("prod-a"), b"a\n\nb", b"");
        assert_eq!(
            text(&last_line_unended, false),
            "111111111111 prod-a us-east-1 | a\n\
             111111111111 prod-a us-east-1 | \n\
             111111111111 prod-a us-east-1 | b\n"
        );
        assert_eq!(text(&target(None, b"", b""), false), "");
        assert_eq!(
            text(&target(None, b"\n", b""), false),
            "111111111111 - us-east-1 | \n"
        );
    }

    #[test]
    fn the_tag_has_three_fields_whatever_the_name() {
        for (name, shown) in [
            (None, "-"),
            (Some(""), "-"),
            (Some("my team\tprod"), "my_team_prod"),
            (Some("a|b"), "a|b"),
        ] {
            let t = target(name, b"x\n", b"");
            assert_eq!(
                text(&t, false),
                format!("111111111111 {shown} us-east-1 | x\n")
            );
        }
    }

    #[test]
    fn a_failure_is_one_line_and_red_only_with_color() {
        let mut t = target(Some("prod-a"), b"", b"denied\n");
        t.failure = Some("could not assume role:\nAccessDenied");
        assert_eq!(
            text(&t, false),
            "111111111111 prod-a us-east-1 ! denied\n\
             111111111111 prod-a us-east-1 FAILED: could not assume role: AccessDenied\n"
        );
        let colored = text(&t, true);
        assert!(
            colored.ends_with(
                "\x1b[31m111111111111 prod-a us-east-1 FAILED: could not assume role: AccessDenied\x1b[0m\n"
            ),
            "{colored:?}"
        );
        assert!(
            colored.starts_with("\x1b[2m111111111111 prod-a us-east-1\x1b[0m \x1b[33m!\x1b[0m"),
            "{colored:?}"
        );
        assert!(!text(&t, false).contains('\x1b'));
    }

    #[test]
    fn a_success_with_a_note_says_so() {
        let mut t = target(Some("prod-a"), b"x\n", b"");
        t.note = Some("stdout was cut");
        assert_eq!(
            text(&t, false),
            "111111111111 prod-a us-east-1 | x\n111111111111 prod-a us-east-1 NOTE: stdout was cut\n"
        );
    }
}
