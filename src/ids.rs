//! The identifiers a user can name with `--target` and `--ignore`: account IDs, OU IDs and the
//! organization root. Parsing is strict so that a typo fails before any AWS call is made.

use std::fmt;
use std::str::FromStr;

/// One node of an organization, as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrgId {
    /// A 12-digit account ID.
    Account(String),
    /// An organizational unit: `ou-` + 4–32 lowercase alphanumerics + `-` + 8–32 more.
    Ou(String),
    /// The organization root: `r-` + 4–32 lowercase alphanumerics.
    Root(String),
}

impl OrgId {
    pub fn as_str(&self) -> &str {
        match self {
            OrgId::Account(s) | OrgId::Ou(s) | OrgId::Root(s) => s,
        }
    }

    /// True for OU and root IDs: the nodes that stand for every account beneath them.
    pub fn is_parent(&self) -> bool {
        !matches!(self, OrgId::Account(_))
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const EXPECTED: &str =
    "expected a 12-digit account ID, an OU ID (ou-xxxx-xxxxxxxx) or a root ID (r-xxxx)";

fn lower_alnum(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// True when `s` is exactly twelve ASCII digits (Unicode digits are not account IDs).
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl FromStr for OrgId {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.is_empty() {
            return Err(format!("empty ID: {EXPECTED}"));
        }
        if is_account_id(value) {
            return Ok(OrgId::Account(value.to_owned()));
        }
        if let Some(rest) = value.strip_prefix("ou-") {
            if let Some((root_part, ou_part)) = rest.split_once('-')
                && lower_alnum(root_part, 4, 32)
                && lower_alnum(ou_part, 8, 32)
            {
                return Ok(OrgId::Ou(value.to_owned()));
            }
            return Err(format!(
                "`{value}` is not a valid OU ID: expected `ou-` + 4 to 32 lowercase letters or digits + `-` + 8 to 32 lowercase letters or digits"
            ));
        }
        if let Some(rest) = value.strip_prefix("r-") {
            if lower_alnum(rest, 4, 32) {
                return Ok(OrgId::Root(value.to_owned()));
            }
            return Err(format!(
                "`{value}` is not a valid root ID: expected `r-` + 4 to 32 lowercase letters or digits"
            ));
        }
        if value.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "`{value}` has {} digits; an account ID has exactly 12",
                value.len()
            ));
        }
        if value.trim() != value {
            return Err(format!(
                "`{value}` has leading or trailing white space; {EXPECTED}"
            ));
        }
        Err(format!("`{value}` is not a valid ID; {EXPECTED}"))
    }
}

/// clap value parser for one ID.
pub fn parse_org_id(value: &str) -> Result<OrgId, String> {
    value.parse()
}

/// A `--target` or `--ignore` value: an ID, or `@FILE` naming a file of them (`@-`: standard
/// input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdArg {
    Id(OrgId),
    /// The path after `@`; `-` is standard input.
    File(std::path::PathBuf),
}

/// clap value parser for `--target` / `--ignore`: an ID, or `@FILE`.
pub fn parse_id_arg(value: &str) -> Result<IdArg, String> {
    match value.strip_prefix('@') {
        Some("") => Err("`@` names no file; expected @FILE, or @- for standard input".into()),
        Some(path) => Ok(IdArg::File(path.into())),
        None => value.parse().map(IdArg::Id),
    }
}

/// The IDs of a list file: one per line, with blank lines and `#` comments (whole lines or the
/// end of a line) skipped and the white space around an ID ignored. A bad line is an error with
/// its 1-based number.
pub fn parse_id_list(text: &str) -> Result<Vec<OrgId>, (usize, String)> {
    let mut ids = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let value = line.split('#').next().unwrap_or_default().trim();
        if !value.is_empty() {
            ids.push(value.parse().map_err(|e| (i + 1, e))?);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_id_forms() {
        assert_eq!(
            "123456789012".parse::<OrgId>(),
            Ok(OrgId::Account("123456789012".into()))
        );
        assert_eq!(
            "ou-ab12-cdef3456".parse::<OrgId>(),
            Ok(OrgId::Ou("ou-ab12-cdef3456".into()))
        );
        assert_eq!("r-ab12".parse::<OrgId>(), Ok(OrgId::Root("r-ab12".into())));
    }

    #[test]
    fn rejects_malformed_ids_naming_the_value() {
        for bad in [
            "12345678901",
            "1234567890123",
            "12345678901a",
            "１２３４５６７８９０１２",
            "123456789012 ",
            " 123456789012",
            "ou-AB12-cdef3456",
            "ou-ab12-cdef",
            "ou-ab1-cdef3456",
            "ou-ab12cdef3456",
            "r-ab!2",
            "r-abc",
            "r-ABCD",
            "",
            "arn:aws:organizations::1:account/x",
        ] {
            let err = bad.parse::<OrgId>().expect_err(bad);
            if !bad.is_empty() {
                assert!(err.contains(bad), "{err} does not name {bad}");
            }
        }
    }

    #[test]
    fn id_lists_skip_blanks_and_comments_and_name_the_bad_line() {
        let text = "# prod accounts\n111111111111\n\n  ou-ab12-cdef3456  # core\r\nr-ab12\n";
        let ids = parse_id_list(text).unwrap();
        assert_eq!(
            ids.iter().map(OrgId::as_str).collect::<Vec<_>>(),
            ["111111111111", "ou-ab12-cdef3456", "r-ab12"]
        );
        let (line, err) = parse_id_list("111111111111\n# x\n12345\n").unwrap_err();
        assert_eq!(line, 3);
        assert!(err.contains("12345"), "{err}");
        assert_eq!(parse_id_arg("@ids.txt"), Ok(IdArg::File("ids.txt".into())));
        assert!(parse_id_arg("@").is_err());
        assert!(parse_id_arg("1234").unwrap_err().contains("1234"));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_and_accepts_only_what_it_can_print(s in "\\PC{0,40}") {
            if let Ok(id) = s.parse::<OrgId>() {
                proptest::prop_assert_eq!(id.as_str(), s.as_str());
            }
        }

        #[test]
        fn well_formed_ids_are_accepted(
            account in "[0-9]{12}",
            ou in "ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}",
            root in "r-[a-z0-9]{4,32}",
        ) {
            proptest::prop_assert_eq!(account.parse::<OrgId>(), Ok(OrgId::Account(account.clone())));
            proptest::prop_assert_eq!(ou.parse::<OrgId>(), Ok(OrgId::Ou(ou.clone())));
            proptest::prop_assert_eq!(root.parse::<OrgId>(), Ok(OrgId::Root(root.clone())));
        }
    }
}
