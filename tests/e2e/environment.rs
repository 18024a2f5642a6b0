//! cove never panics on its environment: every `AWS_*` and `COVE_*` variable that cove or the
//! SDK reads, set empty, blank or malformed, is bad input (exit 2, a sentence naming the
//! variable, no AWS call) or is ignored as the SDK documents and the run goes on.

use crate::support::{Ground, Run};

/// What a value of a variable does.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Exit 2, before any AWS call; stderr names the variable and holds this text.
    Refused(&'static str),
    /// Ignored: the run goes on and the target runs.
    Runs,
}
use Expect::{Refused, Runs};

/// (variable, value, what happens). Values are set on top of the ground's clean environment
/// (support::clean_cove), which already sets AWS_ENDPOINT_URL, AWS_REGION, the keys,
/// AWS_EC2_METADATA_DISABLED, AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE.
const TABLE: &[(&str, &str, Expect)] = &[
    // Endpoints: the SDK panics on an empty one and silently calls real AWS instead of a
    // malformed one.
    (
        "AWS_ENDPOINT_URL",
        "",
        Refused("invalid AWS_ENDPOINT_URL ``: expected a URL"),
    ),
    (
        "AWS_ENDPOINT_URL",
        "  ",
        Refused("invalid AWS_ENDPOINT_URL `  `: expected a URL"),
    ),
    (
        "AWS_ENDPOINT_URL",
        "127.0.0.1:9",
        Refused("invalid AWS_ENDPOINT_URL `127.0.0.1:9`"),
    ),
    (
        "AWS_ENDPOINT_URL",
        "http://",
        Refused("invalid AWS_ENDPOINT_URL `http://`"),
    ),
    (
        "AWS_ENDPOINT_URL_STS",
        "",
        Refused("invalid AWS_ENDPOINT_URL_STS ``"),
    ),
    (
        "AWS_ENDPOINT_URL_STS",
        "sts",
        Refused("invalid AWS_ENDPOINT_URL_STS `sts`"),
    ),
    (
        "AWS_ENDPOINT_URL_ORGANIZATIONS",
        " ",
        Refused("invalid AWS_ENDPOINT_URL_ORGANIZATIONS"),
    ),
    (
        "AWS_ENDPOINT_URL_ORGANIZATIONS",
        "http://h:port",
        Refused("invalid AWS_ENDPOINT_URL_ORGANIZATIONS"),
    ),
    (
        "AWS_ENDPOINT_URL_SSO",
        "",
        Refused("invalid AWS_ENDPOINT_URL_SSO ``"),
    ),
    (
        "AWS_ENDPOINT_URL_ACCOUNT",
        "ftp://x",
        Refused("invalid AWS_ENDPOINT_URL_ACCOUNT `ftp://x`"),
    ),
    // Switches the SDK would ignore unless `true` or `false`.
    (
        "AWS_USE_FIPS_ENDPOINT",
        "",
        Refused("invalid AWS_USE_FIPS_ENDPOINT ``: expected `true` or `false`"),
    ),
    (
        "AWS_USE_FIPS_ENDPOINT",
        "yes",
        Refused("invalid AWS_USE_FIPS_ENDPOINT `yes`"),
    ),
    (
        "AWS_USE_DUALSTACK_ENDPOINT",
        "1",
        Refused("invalid AWS_USE_DUALSTACK_ENDPOINT `1`"),
    ),
    (
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "",
        Refused("invalid AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"),
    ),
    (
        "AWS_EC2_METADATA_DISABLED",
        "yes",
        Refused("invalid AWS_EC2_METADATA_DISABLED `yes`"),
    ),
    (
        "AWS_DISABLE_REQUEST_COMPRESSION",
        "maybe",
        Refused("invalid AWS_DISABLE_REQUEST_COMPRESSION"),
    ),
    // Regions.
    ("AWS_REGION", "", Refused("AWS_REGION: invalid region ``")),
    ("AWS_REGION", " ", Refused("AWS_REGION: invalid region ` `")),
    (
        "AWS_REGION",
        "EU-WEST-1",
        Refused("AWS_REGION: invalid region `EU-WEST-1`"),
    ),
    // AWS_REGION wins over AWS_DEFAULT_REGION (the ground's clean environment sets it).
    ("AWS_DEFAULT_REGION", "", Runs),
    // Profiles and files.
    (
        "AWS_PROFILE",
        "",
        Refused("invalid AWS_PROFILE ``: expected the name of a profile"),
    ),
    ("AWS_PROFILE", "  ", Refused("invalid AWS_PROFILE `  `")),
    (
        "AWS_CONFIG_FILE",
        "",
        Refused("invalid AWS_CONFIG_FILE ``: expected the path"),
    ),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        " ",
        Refused("invalid AWS_SHARED_CREDENTIALS_FILE ` `"),
    ),
    (
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "",
        Refused("invalid AWS_WEB_IDENTITY_TOKEN_FILE ``"),
    ),
    ("AWS_ROLE_ARN", " ", Refused("invalid AWS_ROLE_ARN ` `")),
    (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "",
        Refused("invalid AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        " ",
        Refused("invalid AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
    ),
    (
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "",
        Refused("invalid AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
    ),
    // Retries (checked with the profile's settings).
    (
        "AWS_MAX_ATTEMPTS",
        "",
        Refused("invalid AWS_MAX_ATTEMPTS ``: expected a whole number"),
    ),
    (
        "AWS_MAX_ATTEMPTS",
        "-1",
        Refused("invalid AWS_MAX_ATTEMPTS `-1`"),
    ),
    (
        "AWS_RETRY_MODE",
        "",
        Refused("invalid AWS_RETRY_MODE ``: expected `standard` or `adaptive`"),
    ),
    // Ignored as the SDK documents: blank keys count as unset, the app ID only labels calls,
    // and the Rust SDK always calls regional STS endpoints.
    ("AWS_SESSION_TOKEN", "", Runs),
    ("AWS_SESSION_TOKEN", "  ", Runs),
    ("AWS_SDK_UA_APP_ID", "", Runs),
    ("AWS_SDK_UA_APP_ID", "not a valid app id!", Runs),
    ("AWS_STS_REGIONAL_ENDPOINTS", "", Runs),
    ("AWS_STS_REGIONAL_ENDPOINTS", "sometimes", Runs),
    ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "", Runs),
    // Settings of the calls' shape that the SDK ignores when malformed, saying so in its log:
    // cove's calls are the same either way.
    ("AWS_ACCOUNT_ID_ENDPOINT_MODE", "bogus", Runs),
    ("AWS_REQUEST_CHECKSUM_CALCULATION", "sometimes", Runs),
    ("AWS_RESPONSE_CHECKSUM_VALIDATION", "", Runs),
    ("AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES", "lots", Runs),
    // An account ID only chooses account-based endpoints, which cove's services do not have.
    ("AWS_ACCOUNT_ID", "", Runs),
    // A profile is read only for settings when keys are in the environment.
    ("AWS_PROFILE", "no-such-profile", Runs),
    // cove's logging: blank means unset.
    ("COVE_LOG", "", Runs),
    ("COVE_LOG", " ", Runs),
    (
        "COVE_LOG",
        "cove=loud",
        Refused("invalid COVE_LOG filter `cove=loud`"),
    ),
    (
        "RUST_LOG",
        "cove=loud",
        Refused("invalid RUST_LOG filter `cove=loud`"),
    ),
    // cove's options by their variables: the message names the variable, not only the flag.
    ("COVE_WORKERS", "", Refused("COVE_WORKERS")),
    ("COVE_WORKERS", " ", Refused("COVE_WORKERS")),
    (
        "COVE_WORKERS",
        "many",
        Refused("invalid value 'many' for '--workers <N|auto>'"),
    ),
    ("COVE_WORKERS", "0", Refused("COVE_WORKERS")),
    ("COVE_MAX_WORKERS", "0", Refused("COVE_MAX_WORKERS")),
    ("COVE_MAX_WORKERS", "", Refused("COVE_MAX_WORKERS")),
    ("COVE_MAX_MEMORY", "lots", Refused("COVE_MAX_MEMORY")),
    // An empty list would mean the whole organization: refused, never taken as "no filter".
    ("COVE_TARGETS", "", Refused("COVE_TARGETS")),
    ("COVE_TARGETS", ",", Refused("COVE_TARGETS")),
    ("COVE_IGNORE", "", Refused("COVE_IGNORE")),
    ("COVE_EXCLUDE_REGIONS", "", Refused("COVE_EXCLUDE_REGIONS")),
    ("COVE_QUIET", "", Refused("COVE_QUIET")),
    ("COVE_OUTPUT", "", Refused("COVE_OUTPUT")),
    ("COVE_TARGETS", "12345", Refused("COVE_TARGETS")),
    ("COVE_IGNORE", "x", Refused("COVE_IGNORE")),
    ("COVE_REGIONS", "", Refused("COVE_REGIONS")),
    ("COVE_REGIONS", "eu-noth-1", Refused("COVE_REGIONS")),
    (
        "COVE_EXCLUDE_REGIONS",
        "mars-1",
        Refused("COVE_EXCLUDE_REGIONS"),
    ),
    (
        "COVE_ALLOW_UNKNOWN_REGION",
        "maybe",
        Refused("COVE_ALLOW_UNKNOWN_REGION"),
    ),
    (
        "COVE_INCLUDE_CALLER",
        "maybe",
        Refused("COVE_INCLUDE_CALLER"),
    ),
    ("COVE_FILTER_NAME", "(", Refused("COVE_FILTER_NAME")),
    // An empty regular expression matches every name: no filter.
    ("COVE_FILTER_NAME", "", Runs),
    ("COVE_FILTER_EMAIL", "", Runs),
    ("COVE_CI_SUMMARY", "false", Runs),
    ("COVE_FILTER_EMAIL", "[", Refused("COVE_FILTER_EMAIL")),
    ("COVE_FILTER_TAGS", "novalue", Refused("COVE_FILTER_TAGS")),
    ("COVE_SHARD", "", Refused("COVE_SHARD")),
    ("COVE_SHARD", "5/4", Refused("COVE_SHARD")),
    ("COVE_ROLE", "", Refused("COVE_ROLE")),
    ("COVE_ROLE", "bad role", Refused("COVE_ROLE")),
    ("COVE_SSO_ROLE", "", Refused("COVE_SSO_ROLE")),
    (
        "COVE_ROLE_SESSION_NAME",
        "",
        Refused("COVE_ROLE_SESSION_NAME"),
    ),
    ("COVE_POLICY", "", Refused("COVE_POLICY")),
    ("COVE_POLICY", "{", Refused("COVE_POLICY")),
    ("COVE_POLICY_ARNS", "x", Refused("COVE_POLICY_ARNS")),
    ("COVE_EXTERNAL_ID", "", Refused("COVE_EXTERNAL_ID")),
    ("COVE_EXTERNAL_ID", "a b", Refused("COVE_EXTERNAL_ID")),
    ("COVE_DURATION", "", Refused("COVE_DURATION")),
    ("COVE_DURATION", "60", Refused("COVE_DURATION")),
    ("COVE_MAX_ASSUME_RATE", "0", Refused("COVE_MAX_ASSUME_RATE")),
    ("COVE_PROFILE", "", Refused("COVE_PROFILE")),
    ("COVE_PROFILE", " ", Refused("COVE_PROFILE")),
    ("COVE_VIA_ROLES", "hub", Refused("COVE_VIA_ROLES")),
    ("COVE_ORG_ROLE", "", Refused("COVE_ORG_ROLE")),
    ("COVE_MFA_SERIAL", "x", Refused("COVE_MFA_SERIAL")),
    ("COVE_FAIL_FAST", "maybe", Refused("COVE_FAIL_FAST")),
    ("COVE_TIMEOUT", "", Refused("COVE_TIMEOUT")),
    ("COVE_TIMEOUT", "0s", Refused("COVE_TIMEOUT")),
    (
        "COVE_MAX_OUTPUT_BYTES",
        "lots",
        Refused("COVE_MAX_OUTPUT_BYTES"),
    ),
    (
        "COVE_CHILD_CREDENTIALS",
        "file",
        Refused("COVE_CHILD_CREDENTIALS"),
    ),
    ("COVE_OUTPUT", "yaml", Refused("COVE_OUTPUT")),
    ("COVE_OUTPUT_DIR", "", Refused("COVE_OUTPUT_DIR")),
    ("COVE_QUIET", "maybe", Refused("COVE_QUIET")),
    ("COVE_CI_SUMMARY", "maybe", Refused("COVE_CI_SUMMARY")),
];

/// The run: one target, unless the variable under test is the targets' own (a `-t` would
/// win over it).
fn args<'a>(name: &str, target: &'a str) -> Vec<&'a str> {
    match name {
        "COVE_TARGETS" => vec!["--", "true"],
        _ => vec!["-t", target, "--", "true"],
    }
}

#[test]
fn every_variable_set_empty_blank_or_malformed_is_refused_by_name_or_ignored() {
    let g = Ground::start(&[]);
    let target = g.account("sandbox-a");
    // Every row is tried and every failure reported together.
    let mut failures: Vec<String> = Vec::new();
    // Refusals first: together they must not reach AWS at all.
    let mut refused = 0;
    for &(name, value, expect) in TABLE {
        let Refused(text) = expect else { continue };
        let run = Run::of(g.cove().env(name, value).args(args(name, &target)));
        let case = format!("{name}={value:?}");
        let head: String = run.stderr.chars().take(600).collect();
        if run.code != 2 || run.stderr.contains("panicked") {
            failures.push(format!("{case}: exit {} instead of 2: {head}", run.code));
        } else if !(run.stderr.contains(name) && run.stderr.contains(text)) {
            failures.push(format!(
                "{case}: the message should name {name} and say {text:?}: {head}"
            ));
        } else if !run.stdout.is_empty() {
            failures.push(format!("{case}: stdout is for data only"));
        }
        refused += 1;
    }
    if failures.is_empty() {
        assert_eq!(
            g.all_calls(),
            serde_json::json!({}),
            "a refused environment reached AWS"
        );
    }
    let mut ran = 0;
    for &(name, value, expect) in TABLE {
        let Runs = expect else { continue };
        let run = Run::of(g.cove().env(name, value).args(args(name, &target)));
        let case = format!("{name}={value:?}");
        let head: String = run.stderr.chars().take(600).collect();
        if run.code != 0 {
            failures.push(format!(
                "{case}: exit {} instead of running: {head}",
                run.code
            ));
        } else if run.ids("Results") != [target.clone()] {
            failures.push(format!("{case}: the target did not run: {}", run.stdout));
        }
        ran += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        refused + ran,
        failures.join("\n")
    );
    assert!(refused > 60 && ran > 10, "{refused} refused, {ran} ran");
}
