//! The `AWS_*` variables cove's own AWS calls depend on, checked before any AWS call. The SDK
//! panics on some bad values (an empty `AWS_ENDPOINT_URL`) and silently drops others (a
//! malformed endpoint URL sends the calls to real AWS instead; `AWS_USE_FIPS_ENDPOINT=yes` is
//! not FIPS). Here each is an input error that names the variable.
//!
//! What is left to the SDK, as it documents: blank `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` count as unset; `AWS_SDK_UA_APP_ID` only
//! labels the calls; `AWS_MAX_ATTEMPTS` and `AWS_RETRY_MODE` are checked with the profile's
//! settings in [`crate::aws::retry`]. The `COVE_*` variables are options: clap and
//! [`crate::config`] check them and name the variable ([`crate::cli::Origins`]).

use std::ffi::OsString;

use anyhow::{bail, ensure};

use crate::regions;

/// Endpoint URLs of the services cove calls itself (its children get what the caller set).
pub const ENDPOINT_URLS: &[&str] = &[
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_ORGANIZATIONS",
    "AWS_ENDPOINT_URL_ACCOUNT",
    "AWS_ENDPOINT_URL_SSO",
    "AWS_ENDPOINT_URL_SSO_OIDC",
    "AWS_ENDPOINT_URL_SIGNIN",
];

/// Switches the SDK reads as `true` or `false` (any case), and ignores otherwise.
pub const SWITCHES: &[&str] = &[
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_DISABLE_REQUEST_COMPRESSION",
];

/// Names of a profile, a role or a file, which mean nothing blank.
pub const NAMES: &[(&str, &str)] = &[
    (
        "AWS_PROFILE",
        "the name of a profile in the AWS config or credentials file",
    ),
    ("AWS_CONFIG_FILE", "the path of the AWS config file"),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        "the path of the AWS credentials file",
    ),
    (
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "the path of a web identity token file",
    ),
    (
        "AWS_ROLE_ARN",
        "the ARN of the role to assume with the web identity token",
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "the URL of a container credential endpoint",
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "the path of the ECS credential endpoint",
    ),
    (
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "the path of the container authorization token file",
    ),
];

/// Checks the process environment. An error names the variable and what was expected.
pub fn check() -> anyhow::Result<()> {
    check_with(|name| std::env::var_os(name))
}

/// Checks the environment `get` reads (tests hand in their own).
pub fn check_with(get: impl Fn(&str) -> Option<OsString>) -> anyhow::Result<()> {
    // A value that is not UTF-8 reads as unset to the SDK: the setting would vanish silently.
    let text = |name: &str| -> anyhow::Result<Option<String>> {
        match get(name) {
            None => Ok(None),
            Some(value) => match value.into_string() {
                Ok(value) => Ok(Some(value)),
                Err(_) => bail!("{name} is not valid UTF-8; set it to plain text or unset it"),
            },
        }
    };
    let mut ignore_endpoints = false;
    for name in SWITCHES {
        if let Some(value) = text(name)? {
            let switch = parse_switch(&value);
            ensure!(
                switch.is_some(),
                "invalid {name} `{}`: expected `true` or `false`",
                value.escape_debug()
            );
            if *name == "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" {
                ignore_endpoints = switch == Some(true);
            }
        }
    }
    // With AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true the SDK does not read the endpoint URLs.
    if !ignore_endpoints {
        for name in ENDPOINT_URLS {
            if let Some(value) = text(name)? {
                check_endpoint_url(name, &value)?;
            }
        }
    }
    // The SDK takes AWS_REGION, else AWS_DEFAULT_REGION.
    let region = match text("AWS_REGION")? {
        Some(value) => Some(("AWS_REGION", value)),
        None => text("AWS_DEFAULT_REGION")?.map(|v| ("AWS_DEFAULT_REGION", v)),
    };
    if let Some((name, value)) = region {
        regions::check(&value, true).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    }
    for (name, expected) in NAMES {
        if let Some(value) = text(name)? {
            ensure!(
                !value.trim().is_empty()
                    && value.trim() == value
                    && !value.chars().any(char::is_control),
                "invalid {name} `{}`: expected {expected}, or leave the variable unset",
                value.escape_debug()
            );
        }
    }
    Ok(())
}

/// `true` or `false` in any case, as the SDK reads its switches.
fn parse_switch(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An endpoint URL: `http://` or `https://`, a host and maybe a port, and nothing blank or
/// hidden in it (no user information).
fn check_endpoint_url(name: &str, value: &str) -> anyhow::Result<()> {
    let authority = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    let (host, port) = match authority {
        Some(a) if a.starts_with('[') => match a.split_once(']') {
            Some((v6, rest)) => (&v6[1..], rest.strip_prefix(':')),
            None => ("", None),
        },
        Some(a) => match a.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (a, None),
        },
        None => ("", None),
    };
    ensure!(
        !host.is_empty()
            && !host.contains('@')
            && port.is_none_or(|p| p.parse::<u16>().is_ok())
            && !value.chars().any(|c| c.is_whitespace() || c.is_control()),
        "invalid {name} `{}`: expected a URL such as https://sts.eu-west-1.amazonaws.com or http://127.0.0.1:5000, or leave the variable unset",
        // User information in a URL may be a password: never echoed.
        if value.contains('@') {
            "(not shown: it holds an @)".to_owned()
        } else {
            value.escape_debug().to_string()
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_vars(vars: &[(&str, &str)]) -> anyhow::Result<()> {
        check_with(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn good_values_pass() {
        check_vars(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            (
                "AWS_ENDPOINT_URL_STS",
                "https://sts.eu-west-1.amazonaws.com/",
            ),
            ("AWS_ENDPOINT_URL_SSO", "http://[::1]:8080/base"),
            ("AWS_USE_FIPS_ENDPOINT", "TRUE"),
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_PROFILE", "prod admin"),
            ("AWS_SESSION_TOKEN", ""),
        ])
        .unwrap();
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("AWS_ENDPOINT_URL", ""),
            ("AWS_ENDPOINT_URL", " "),
            ("AWS_ENDPOINT_URL", "localhost:5000"),
            ("AWS_ENDPOINT_URL", "http://"),
            ("AWS_ENDPOINT_URL", "http://host:port"),
            ("AWS_ENDPOINT_URL", "http://user:hunter2@host"),
            ("AWS_ENDPOINT_URL_STS", "ftp://host"),
            ("AWS_ENDPOINT_URL_ORGANIZATIONS", "http://host name"),
            ("AWS_USE_FIPS_ENDPOINT", "yes"),
            ("AWS_USE_DUALSTACK_ENDPOINT", ""),
            ("AWS_REGION", ""),
            ("AWS_DEFAULT_REGION", "EU-WEST-1"),
            ("AWS_PROFILE", " "),
            ("AWS_CONFIG_FILE", ""),
            ("AWS_ROLE_ARN", "arn\n"),
        ] {
            let err = check_vars(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value:?}: {err}");
            assert!(
                !err.contains("hunter2"),
                "a password is never echoed: {err}"
            );
        }
    }

    #[test]
    fn ignored_endpoints_are_not_read_and_aws_region_wins() {
        check_vars(&[
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ("AWS_ENDPOINT_URL", "not a url"),
        ])
        .unwrap();
        check_vars(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "garbage"),
        ])
        .unwrap();
    }
}
