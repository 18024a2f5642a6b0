//! The environment each child gets: the caller's, minus everything that could point an AWS SDK
//! at other credentials, plus the target account's credentials and region, and its variables
//! from the config files as `COVE_VAR_NAME` (`vars::env_name`). Tags are not put in the
//! environment.
//!
//! Every variable cove sets is a fixed name (`AWS_…`, `COVE_ACCOUNT_ID`, `COVE_ACCOUNT_NAME`, `COVE_REGION`), or
//! starts with `COVE_VAR_`, which no fixed name does: a config variable can never replace one of
//! cove's own (two config names that give the same `COVE_VAR_NAME` are refused when the files are
//! read).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::SystemTime;

use aws_smithy_types::date_time::Format;

use crate::aws::{Account, TempCredentials};
use crate::secret::Secret;
use crate::vars;

/// The target a child runs for: its account, its region and its variables.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub account: &'a Account,
    pub region: &'a str,
    pub vars: &'a BTreeMap<String, String>,
}

/// How children get their credentials (`--child-credentials`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Delivery {
    /// The key variables, fixed for the child's life.
    #[default]
    Env,
    /// A credential endpoint on 127.0.0.1 that renews them while the child runs.
    Endpoint,
}

/// One child's credentials, as its environment carries them.
pub enum Credentials<'a> {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` and their expiry.
    Keys(&'a TempCredentials),
    /// The credential endpoint's URI and the target's own token for it.
    Endpoint { uri: &'a str, token: &'a Secret },
}

/// Removed from every child's environment. A leftover profile or token can make a child run
/// against the wrong account: the JS SDK prefers `AWS_PROFILE` over keys, botocore prefers
/// `AWS_SECURITY_TOKEN` over `AWS_SESSION_TOKEN`, and a profile that does not exist is a hard
/// error in botocore and the Go SDK. The caller's own keys go too: they are replaced by the
/// target's, or, with the credential endpoint, would win over it.
pub const REMOVED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SECURITY_TOKEN",
    "AWS_SDK_LOAD_CONFIG",
    "AWS_CREDENTIAL_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// An empty file every SDK reads as "no profiles".
const NO_FILE: &str = "/dev/null";

/// ISO 8601 (RFC 3339) form of a credential expiry, as botocore and the SDKs read it.
pub fn iso8601(time: SystemTime) -> String {
    let whole_seconds = aws_smithy_types::DateTime::from(time).secs();
    aws_smithy_types::DateTime::from_secs(whole_seconds)
        .fmt(Format::DateTime)
        .unwrap_or_default()
}

/// The variables that hand a child its credentials. With the endpoint, none of the key
/// variables is set: SDKs read them before the endpoint, and `AWS_CREDENTIAL_EXPIRATION` would
/// make botocore refuse the renewed credentials once the first ones expire.
fn credential_vars(creds: &Credentials) -> Vec<(&'static str, OsString)> {
    match creds {
        Credentials::Keys(creds) => vec![
            ("AWS_ACCESS_KEY_ID", creds.access_key_id.clone().into()),
            (
                "AWS_SECRET_ACCESS_KEY",
                creds.secret_access_key.expose().into(),
            ),
            ("AWS_SESSION_TOKEN", creds.session_token.expose().into()),
            (
                "AWS_CREDENTIAL_EXPIRATION",
                iso8601(creds.expiration).into(),
            ),
        ],
        // Every SDK reads the shared files' default profile before the container endpoint,
        // so the caller's own `[default]` would win over the target's credentials: the child
        // sees no shared files at all.
        Credentials::Endpoint { uri, token } => vec![
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", (*uri).into()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", token.expose().into()),
            ("AWS_SHARED_CREDENTIALS_FILE", NO_FILE.into()),
            ("AWS_CONFIG_FILE", NO_FILE.into()),
        ],
    }
}

/// The variables set for a child running for `target`: its credentials, account and region
/// first, then its variables as `COVE_VAR_NAME`.
pub fn set_vars(creds: &Credentials, target: Target) -> Vec<(String, OsString)> {
    let (account, region) = (target.account, target.region);
    let mut set: Vec<(String, OsString)> = credential_vars(creds)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    let fixed: [(&str, OsString); 6] = [
        ("AWS_REGION", region.into()),
        ("AWS_DEFAULT_REGION", region.into()),
        ("AWS_ACCOUNT_ID", account.id.clone().into()),
        ("COVE_ACCOUNT_ID", account.id.clone().into()),
        (
            "COVE_ACCOUNT_NAME",
            account.name.clone().unwrap_or_default().into(),
        ),
        ("COVE_REGION", region.into()),
    ];
    set.extend(
        fixed
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    );
    set.extend((target.vars.iter()).map(|(name, value)| (vars::env_name(name), value.into())));
    set
}

/// Prefixes of variables in cove's own environment that children never see: cove's settings
/// (`COVE_EXTERNAL_ID`, `COVE_POLICY`, ... may hold secrets) and bearer tokens, which botocore
/// prefers over the target's keys (`AWS_BEARER_TOKEN_BEDROCK`).
pub const REMOVED_PREFIXES: &[&str] = &["COVE_", "AWS_BEARER_TOKEN_"];

/// The names in the current environment that match [`REMOVED_PREFIXES`]; computed once a run.
pub fn removed_from_environment() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| {
            name.to_str()
                .is_some_and(|n| REMOVED_PREFIXES.iter().any(|p| n.starts_with(p)))
        })
        .collect()
}

/// Applies the rules to a command about to be spawned. `also_remove` comes from
/// [`removed_from_environment`].
pub fn apply(
    cmd: &mut tokio::process::Command,
    creds: &Credentials,
    target: Target,
    also_remove: &[OsString],
) {
    for name in REMOVED {
        cmd.env_remove(name);
    }
    for name in also_remove {
        cmd.env_remove(name);
    }
    cmd.envs(set_vars(creds, target));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::{Duration, UNIX_EPOCH};

    static NONE: BTreeMap<String, String> = BTreeMap::new();

    fn target<'a>(account: &'a Account, vars: &'a BTreeMap<String, String>) -> Target<'a> {
        Target {
            account,
            region: "eu-west-1",
            vars,
        }
    }

    #[test]
    fn expiration_is_iso8601() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        assert_eq!(iso8601(t), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn sets_both_region_variables_and_empty_name_when_unknown() {
        let creds = TempCredentials {
            access_key_id: "AKIA".into(),
            secret_access_key: Secret::new("s"),
            session_token: Secret::new("t"),
            expiration: UNIX_EPOCH,
        };
        let account = Account::bare("111111111111");
        let vars = set_vars(&Credentials::Keys(&creds), target(&account, &NONE));
        let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("AWS_REGION"), Some("eu-west-1".into()));
        assert_eq!(get("AWS_DEFAULT_REGION"), Some("eu-west-1".into()));
        assert_eq!(get("COVE_ACCOUNT_NAME"), Some("".into()));
        assert_eq!(get("AWS_ACCOUNT_ID"), Some("111111111111".into()));
    }

    #[test]
    fn the_endpoint_replaces_every_key_variable() {
        let token = Secret::new("t0ken");
        let creds = Credentials::Endpoint {
            uri: "http://127.0.0.1:1/credentials",
            token: &token,
        };
        let account = Account::bare("111111111111");
        let vars = set_vars(&creds, target(&account, &NONE));
        let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        for key in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_CREDENTIAL_EXPIRATION",
        ] {
            assert!(!names.contains(&key), "{key} is not set");
        }
        let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
            Some("t0ken".into())
        );
        assert_eq!(get("AWS_REGION"), Some("eu-west-1".into()));
    }

    #[test]
    fn every_variable_of_the_target_is_set_and_none_replaces_a_fixed_one() {
        let token = Secret::new("t");
        let creds = Credentials::Endpoint {
            uri: "u",
            token: &token,
        };
        let vars: BTreeMap<String, String> =
            [("team-name", "core"), ("region", "x"), ("account_id", "y")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        let account = Account::bare("111111111111");
        let set = set_vars(&creds, target(&account, &vars));
        let get = |k: &str| set.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("COVE_VAR_TEAM_NAME"), Some("core".into()));
        assert_eq!(get("COVE_VAR_REGION"), Some("x".into()));
        assert_eq!(get("COVE_REGION"), Some("eu-west-1".into()));
        assert_eq!(get("COVE_ACCOUNT_ID"), Some("111111111111".into()));
        let names: BTreeSet<&str> = set.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), set.len(), "no name is set twice");
        let fixed = names.iter().filter(|n| !n.starts_with("COVE_VAR_"));
        assert_eq!(fixed.count(), set.len() - 3);
    }
}
