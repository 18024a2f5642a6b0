//! Per-target placeholders in the command's arguments: `{account_id}`, `{account_name}`,
//! `{region}` and `{partition}`.
//!
//! An argument is a template only when it holds a `{word}` token (lowercase letters and `_`).
//! In a template, `{{` and `}}` stand for literal braces and an unknown `{word}` is an error
//! (checked before any AWS call, so a typo fails fast). Arguments without such a token, such
//! as JSON or `sh -c '${HOME}'`, pass through unchanged.

use std::ffi::OsString;

pub const PLACEHOLDERS: &[&str] = &["account_id", "account_name", "region", "partition"];

/// The values for one target.
pub struct Values<'a> {
    pub account_id: &'a str,
    pub account_name: &'a str,
    pub region: &'a str,
    pub partition: &'a str,
}

impl Values<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "account_id" => Some(self.account_id),
            "account_name" => Some(self.account_name),
            "region" => Some(self.region),
            "partition" => Some(self.partition),
            _ => None,
        }
    }
}

/// The `{word}` token starting at byte `i` (which holds `{`), if there is one.
fn token_at(arg: &str, i: usize) -> Option<&str> {
    let rest = &arg[i + 1..];
    let end = rest.find('}')?;
    let name = &rest[..end];
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then_some(name)
}

fn is_template(arg: &str) -> bool {
    arg.char_indices()
        .any(|(i, c)| c == '{' && token_at(arg, i).is_some())
}

/// Expands one argument; `values == None` only checks it.
fn expand(arg: &str, values: Option<&Values>) -> Result<String, String> {
    if !is_template(arg) {
        return Ok(arg.to_owned());
    }
    let mut out = String::with_capacity(arg.len());
    let mut chars = arg.char_indices().peekable();
    let hint = "in an argument with a placeholder, write {{ and }} for literal braces";
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let Some(name) = token_at(arg, i) else {
                    out.push('{');
                    continue;
                };
                if !PLACEHOLDERS.contains(&name) {
                    return Err(format!(
                        "unknown placeholder `{{{name}}}` in argument `{arg}`; expected one of {}, or {hint}",
                        PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if let Some(v) = values.and_then(|v| v.get(name)) {
                    out.push_str(v);
                }
                for _ in 0..=name.len() {
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Checks every argument of the command (arguments that are not UTF-8 are passed as they are).
pub fn check(command: &[OsString]) -> Result<(), String> {
    for arg in command {
        if let Some(s) = arg.to_str() {
            expand(s, None)?;
        }
    }
    Ok(())
}

/// The command for one target. Call only after [`check`] passed.
pub fn render(command: &[OsString], values: &Values) -> Vec<OsString> {
    command
        .iter()
        .map(|arg| match arg.to_str() {
            Some(s) => expand(s, Some(values))
                .map(OsString::from)
                .unwrap_or_else(|_| arg.clone()),
            None => arg.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            account_id: "111111111111",
            account_name: "prod",
            region: "eu-west-1",
            partition: "aws",
        }
    }

    #[test]
    fn placeholders_expand_and_double_braces_stay_literal() {
        let cmd: Vec<OsString> = [
            "s3://audit-{account_id}/{region}/",
            "{{\"a\": \"{account_name}\"}}",
            "{partition}",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert!(check(&cmd).is_ok());
        assert_eq!(
            render(&cmd, &values()),
            [
                "s3://audit-111111111111/eu-west-1/",
                "{\"a\": \"prod\"}",
                "aws"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn arguments_without_placeholders_pass_unchanged() {
        let cmd: Vec<OsString> = [r#"{"a":{"b":1}}"#, "${HOME}", "${v+x}", "{", "}}"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(check(&cmd).is_ok());
        assert_eq!(render(&cmd, &values()), cmd);
    }

    #[test]
    fn unknown_placeholders_are_errors_naming_the_argument() {
        for bad in ["{acount_id}", "x-{regoin}", "echo ${foo}"] {
            let err = check(&[OsString::from(bad)]).unwrap_err();
            assert!(err.contains(bad), "{err}");
            assert!(err.contains("{{"), "{err}");
        }
    }
}
