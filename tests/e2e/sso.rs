//! `--sso-role`: each target runs with an IAM Identity Center permission set, its credentials
//! from the portal's GetRoleCredentials with the token `aws sso login` cached. The ground answers
//! the portal API (ListAccounts, ListAccountRoles, GetRoleCredentials) with credentials moto
//! really issued for the account, so `aws sts get-caller-identity` in the child proves where it
//! ran.

use std::path::Path;
use std::process::Command;

use crate::endpoint::FETCH_TWICE;
use crate::support::{Ground, Run, WHO_AM_I, python, venv};

/// Writes the token `aws sso login` caches: `~/.aws/sso/cache/<sha1 of key>.json`, where the
/// key is the sso_session name (or a legacy profile's start URL).
fn cache_sso_token(home: &Path, key: &str, token: &str, expires_in: i64) {
    let script = r#"
import datetime, hashlib, json, os, sys
home, key, token, expires_in = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in)
cache = os.path.join(home, ".aws", "sso", "cache")
os.makedirs(cache, exist_ok=True)
with open(os.path.join(cache, hashlib.sha1(key.encode()).hexdigest() + ".json"), "w") as f:
    json.dump({"accessToken": token, "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "region": "us-east-1", "startUrl": "https://ground.awsapps.com/start"}, f)
"#;
    let expires_in = expires_in.to_string();
    python(script, &[home.to_str().unwrap(), key, token, &expires_in]);
}

const SESSION: &str = "[sso-session corp]
sso_start_url = https://ground.awsapps.com/start
sso_region = us-east-1
";

/// A profile that can only sign in to the portal: no account, so no calling identity.
fn portal_only() -> String {
    format!("[profile my-sso]\nsso_session = corp\nregion = us-east-1\n\n{SESSION}")
}

/// A profile whose own credentials are a permission set in the management account: it may
/// list the organization.
fn with_org_access(g: &Ground) -> String {
    format!(
        "[profile my-sso]\nsso_session = corp\nsso_account_id = {}\nsso_role_name = AdministratorAccess\nregion = us-east-1\n\n{SESSION}",
        g.caller()
    )
}

fn token(g: &Ground) -> String {
    g.info["sso_token"].as_str().unwrap().to_owned()
}

/// cove with the profile `config` as its only source of credentials, the ground's token cached
/// for the session `corp` (valid for an hour).
fn sso_cove(g: &Ground, config: &str) -> Command {
    cache_sso_token(g.home.path(), "corp", &token(g), 3600);
    profile_cove(g, config)
}

/// cove with the profile `config` and no key variables; nothing is cached.
fn profile_cove(g: &Ground, config: &str) -> Command {
    let path = g.home.path().join("config");
    std::fs::write(&path, config).unwrap();
    let mut cmd = g.cove();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONFIG_FILE", &path)
        .args(["--profile", "my-sso"]);
    cmd
}

/// cove as [`profile_cove`] makes it, with the ground's starting keys put back: a check that
/// came after the first AWS call would then show that call (GetCallerIdentity) at the ground.
fn keyed_cove(g: &Ground, config: &str) -> Command {
    let mut cmd = profile_cove(g, config);
    cmd.env("AWS_ACCESS_KEY_ID", crate::support::STARTING_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", crate::support::STARTING_SECRET)
        .env("AWS_SESSION_TOKEN", crate::support::STARTING_SESSION_TOKEN);
    cmd
}

/// Every account the ground's portal lists by default: the active ones and the management
/// account.
fn portal_ids(g: &Ground) -> Vec<String> {
    let mut ids = g.active_ids();
    ids.push(g.caller());
    ids.sort();
    ids
}

#[test]
fn each_portal_account_runs_with_the_permission_set_and_no_role_is_assumed() {
    let g = Ground::start(&["--sso-accounts", "management,core-a,deep-a,sandbox-b"]);
    let run = Run::of(
        sso_cove(&g, &portal_only())
            .args(["--sso-role", "AdministratorAccess", "--"])
            .args(WHO_AM_I),
    );
    run.expect_code(0);
    let mut expected = g.ids(&["core-a", "deep-a", "sandbox-b"]);
    expected.push(g.caller());
    expected.sort();
    assert_eq!(
        run.ids("Results"),
        expected,
        "the portal's accounts, the management account too: no caller rule in this mode"
    );
    for r in run.list("Results") {
        assert_eq!(
            r["Result"]["Account"], r["Id"],
            "ran in its own account: {r}"
        );
        let arn = r["Result"]["Arn"].as_str().unwrap();
        assert!(arn.contains("AWSReservedSSO_AdministratorAccess"), "{arn}");
        assert_eq!(r["RoleName"], "AdministratorAccess");
        assert!(
            r.as_object().unwrap().contains_key("RoleSessionName")
                && r["RoleSessionName"].is_null(),
            "{r}"
        );
        assert_eq!(r["AssumeRoleSuccess"], true);
    }
    let core = run
        .list("Results")
        .into_iter()
        .find(|r| r["Id"] == g.account("core-a"))
        .unwrap();
    assert_eq!(core["Name"], "core-a", "names come from the portal");
    assert_eq!(core["Email"], "core-a@example.com");
    assert!(
        run.stderr.contains("IAM Identity Center portal lists")
            && run.stderr.contains("names no sso_account_id"),
        "says why the portal's list is used: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("aws sso login"),
        "a signed-in user is not told to sign in: {}",
        run.stderr
    );
    let params = g.sso_params();
    assert!(
        params.iter().all(|p| p["token_ok"] == true),
        "every portal call carried the cached token: {params:?}"
    );
    assert_eq!(g.calls("sts:AssumeRole"), 0, "{}", g.all_calls());
    assert_eq!(g.calls("sso:GetRoleCredentials"), 4);
    run.expect_no_secret(g.secrets());
}

#[test]
fn with_organization_access_targets_and_ignores_work_and_a_missing_permission_set_fails_its_account()
 {
    let g = Ground::start(&["--sso-deny", "AdministratorAccess:deep-b"]);
    let run = Run::of(
        sso_cove(&g, &with_org_access(&g))
            .args([
                "--sso-role",
                "AdministratorAccess",
                "-t",
                &g.ou("Workloads"),
                "--ignore",
                &g.account("core-a"),
                "--",
            ])
            .args(WHO_AM_I),
    );
    for r in run.list("Results") {
        assert_eq!(
            r["Result"]["Account"], r["Id"],
            "the child's own identity proves its account: {r}"
        );
    }
    run.expect_code(1);
    assert_eq!(
        run.ids("Results"),
        g.ids(&["workloads-a", "prod-a", "deep-a"]),
        "the OU walk and the ignore, as with --role"
    );
    let failed = run.list("FailedAssumeRole");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["Id"], g.account("deep-b"));
    assert_eq!(failed[0]["RoleName"], "AdministratorAccess");
    assert!(failed[0]["RoleSessionName"].is_null());
    let details = failed[0]["ExceptionDetails"].as_str().unwrap();
    assert!(details.contains("ForbiddenException"), "{details}");
    let have = format!(
        "your permission sets in account {}: ReadOnlyAccess",
        g.account("deep-b")
    );
    assert!(details.ends_with(&have), "says which it has: {details}");
    assert!(g.calls("organizations:ListAccountsForParent") > 0);
    assert_eq!(
        g.calls("sso:ListAccounts"),
        1,
        "only the sign-in check: the organization was listed"
    );
    assert_eq!(g.calls("sts:AssumeRole"), 0);
}

#[test]
fn with_organization_access_the_whole_organization_includes_the_calling_account() {
    let g = Ground::start(&[]);
    let run = Run::of(sso_cove(&g, &with_org_access(&g)).args([
        "--sso-role",
        "ReadOnlyAccess",
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), portal_ids(&g));
    assert!(g.calls("organizations:ListAccounts") > 0);
    assert_eq!(g.calls("sso:ListAccounts"), 1, "only the sign-in check");
}

#[test]
fn explicit_accounts_run_without_organization_access() {
    let g = Ground::start(&[]);
    let ids = g.ids(&["prod-a", "sandbox-a"]);
    let run = Run::of(sso_cove(&g, &portal_only()).args([
        "--sso-role",
        "ReadOnlyAccess",
        "-t",
        &ids.join(","),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), ids);
    let mut names: Vec<String> = run
        .list("Results")
        .iter()
        .map(|r| r["Name"].as_str().unwrap_or("null").to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["prod-a", "sandbox-a"], "named by the portal");
}

#[test]
fn name_filters_apply_to_named_accounts_with_the_portals_names() {
    let g = Ground::start(&[]);
    let ids = g.ids(&["prod-a", "sandbox-a", "sandbox-b"]);
    let run = Run::of(sso_cove(&g, &portal_only()).args([
        "--sso-role",
        "ReadOnlyAccess",
        "-t",
        &ids.join(","),
        "--filter-name",
        "^sandbox-",
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["sandbox-a", "sandbox-b"]));
}

#[test]
fn a_legacy_profile_with_sso_start_url_works() {
    let g = Ground::start(&["--sso-accounts", "root-a"]);
    let start_url = "https://legacy.awsapps.com/start";
    cache_sso_token(g.home.path(), start_url, &token(&g), 3600);
    let config = format!(
        "[profile my-sso]\nsso_start_url = {start_url}\nsso_region = us-east-1\nregion = us-east-1\n"
    );
    let run =
        Run::of(profile_cove(&g, &config).args(["--sso-role", "ReadOnlyAccess", "--", "true"]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["root-a"]));
}

fn expect_login_error(run: &Run, g: &Ground) {
    run.expect_code(2);
    assert!(
        run.stderr.contains("run `aws sso login --profile my-sso`"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(
        g.all_calls(),
        serde_json::json!({}),
        "checked before any AWS call"
    );
}

#[test]
fn a_missing_or_expired_sign_in_is_an_error_that_says_to_sign_in_again() {
    let g = Ground::start(&[]);
    let args = ["--sso-role", "ReadOnlyAccess", "--", "true"];
    let missing = Run::of(keyed_cove(&g, &portal_only()).args(args));
    expect_login_error(&missing, &g);
    // Named accounts too: the run ends before any target, rather than failing each one.
    let named = g.account("root-a");
    let missing = Run::of(
        keyed_cove(&g, &portal_only())
            .args(["-t", &named])
            .args(args),
    );
    expect_login_error(&missing, &g);
    cache_sso_token(g.home.path(), "corp", &token(&g), -60);
    let expired = Run::of(keyed_cove(&g, &portal_only()).args(args));
    expect_login_error(&expired, &g);
    assert!(expired.stderr.contains("expired"), "{}", expired.stderr);
}

#[test]
fn a_token_the_portal_refuses_is_an_error_that_says_to_sign_in_again() {
    // A token can be valid on disk and still refused: signed out elsewhere, or revoked.
    let g = Ground::start(&[]);
    cache_sso_token(g.home.path(), "corp", "revoked-token", 3600);
    let named = g.account("root-a");
    for targets in [&[][..], &["-t", named.as_str()]] {
        let run = Run::of(profile_cove(&g, &portal_only()).args(targets).args([
            "--sso-role",
            "ReadOnlyAccess",
            "--",
            "true",
        ]));
        run.expect_code(2);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        for needle in [
            "UnauthorizedException",
            "run `aws sso login --profile my-sso`",
        ] {
            assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        }
    }
    assert_eq!(g.calls("sso:GetRoleCredentials"), 0, "no target was tried");
}

#[test]
fn a_profile_without_sso_settings_is_an_input_error() {
    let g = Ground::start(&[]);
    let config = "[profile my-sso]\nregion = us-east-1\n";
    let run = Run::of(keyed_cove(&g, config).args(["--sso-role", "ReadOnlyAccess", "--", "true"]));
    run.expect_code(2);
    assert!(
        run.stderr.contains("profile `my-sso` has none"),
        "{}",
        run.stderr
    );
    assert_eq!(g.all_calls(), serde_json::json!({}));
}

#[test]
fn sso_role_and_role_cannot_be_given_together() {
    let g = Ground::start(&[]);
    let run = Run::of(sso_cove(&g, &portal_only()).args([
        "--sso-role",
        "ReadOnlyAccess",
        "--role",
        "Audit",
        "--",
        "true",
    ]));
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("--sso-role cannot be combined with --role: "),
        "{}",
        run.stderr
    );
}

#[test]
fn throttled_get_role_credentials_calls_are_retried() {
    let g = Ground::start(&[
        "--sso-accounts",
        "root-a,root-b,prod-a",
        "--throttle-first",
        "sso:GetRoleCredentials=4",
        "--throttle-first",
        "sso:ListAccounts=3",
    ]);
    let run =
        Run::of(sso_cove(&g, &portal_only()).args(["--sso-role", "ReadOnlyAccess", "--", "true"]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["prod-a", "root-a", "root-b"]));
    assert_eq!(g.calls("sso:GetRoleCredentials"), 3 + 4);
    // The sign-in check answers after its three throttled attempts; then one page lists the
    // three accounts.
    assert_eq!(g.calls("sso:ListAccounts"), 3 + 1 + 1, "{}", g.all_calls());
}

#[test]
fn get_role_credentials_is_capped_at_ten_a_second_unless_max_assume_rate_says_otherwise() {
    // 10 portal accounts: at 10 a second the calls span at least 9 intervals of 100 ms; at
    // --max-assume-rate 4, 9 of 250 ms. Unlimited they would all land within a few ms.
    for (rate, interval) in [(None, 0.1), (Some("4"), 0.25)] {
        let g = Ground::start(&[]);
        let mut cmd = sso_cove(&g, &portal_only());
        cmd.args(["--sso-role", "ReadOnlyAccess"]);
        if let Some(rate) = rate {
            cmd.args(["--max-assume-rate", rate]);
        }
        let run = Run::of(cmd.args(["--", "true"]));
        run.expect_code(0);
        let times = g.sso_times();
        assert_eq!(times.len(), portal_ids(&g).len(), "one call per account");
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let span = times.last().unwrap() - times.first().unwrap();
        assert!(
            span >= 9.0 * interval - 0.05,
            "rate {rate:?}: took {span:.3} s: gaps {gaps:?}"
        );
        assert!(
            gaps.iter().all(|gap| *gap >= interval / 2.0),
            "rate {rate:?}: calls closer than half the interval: {gaps:?}"
        );
    }
}

/// Prints the credential key of each target, for counting renewals.
const KEY: &[&str] = &["sh", "-c", "printf %s \"$AWS_ACCESS_KEY_ID\""];

#[test]
fn permission_set_credentials_are_renewed_before_they_expire() {
    // Two regions of one account share its credentials while they have more than five minutes
    // left; credentials that expire in two minutes are inside that margin from the start.
    for (expiry, calls) in [(None, 1), (Some("ReadOnlyAccess:120"), 2)] {
        let mut args = vec!["--sso-accounts", "root-a"];
        args.extend(expiry.iter().flat_map(|e| ["--short-expiry", e]));
        let g = Ground::start(&args);
        let run = Run::of(
            sso_cove(&g, &portal_only())
                .args([
                    "--sso-role",
                    "ReadOnlyAccess",
                    "--region",
                    "us-east-1,eu-west-1",
                    "--",
                ])
                .args(KEY),
        );
        run.expect_code(0);
        assert_eq!(
            g.calls("sso:GetRoleCredentials"),
            calls,
            "expiry {expiry:?}"
        );
        let keys: std::collections::BTreeSet<String> = run
            .list("Results")
            .iter()
            .map(|r| r["Result"].to_string())
            .collect();
        assert_eq!(keys.len(), calls as usize, "expiry {expiry:?}: {keys:?}");
    }
}

#[test]
fn through_the_endpoint_a_long_child_gets_renewed_permission_set_credentials() {
    let g = Ground::start(&[
        "--sso-accounts",
        "sandbox-a",
        "--short-expiry",
        "ReadOnlyAccess:301",
    ]);
    let python = venv().join("bin/python");
    let run = Run::of(sso_cove(&g, &portal_only()).args([
        "--sso-role",
        "ReadOnlyAccess",
        "--child-credentials",
        "endpoint",
        "--",
        python.to_str().unwrap(),
        "-c",
        FETCH_TWICE,
    ]));
    run.expect_code(0);
    let fetched = run.list("Results")[0]["Result"].clone();
    let (first, second) = (&fetched[0]["AccessKeyId"], &fetched[1]["AccessKeyId"]);
    assert!(first.is_string(), "{fetched}");
    assert_ne!(first, second, "renewed through the portal: {fetched}");
    assert!(g.calls("sso:GetRoleCredentials") >= 2);
}

#[test]
fn the_most_verbose_log_never_shows_the_portal_token_or_the_credentials() {
    let g = Ground::start(&["--sso-accounts", "root-a,root-b"]);
    let run = Run::of(sso_cove(&g, &portal_only()).args([
        "-vvv",
        "--sso-role",
        "ReadOnlyAccess",
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert!(
        run.stderr.contains("GetRoleCredentials"),
        "the log has the calls"
    );
    let secrets = g.secrets();
    assert!(secrets.contains(&token(&g)), "the scan covers the token");
    run.expect_no_secret(secrets);
}

#[test]
fn a_dry_run_without_organization_access_lists_the_portals_accounts() {
    // A dry run resolves the full list first (the listed path, not the streamed one). The
    // permission set comes from COVE_SSO_ROLE this time.
    let g = Ground::start(&["--sso-accounts", "prod-a,deep-b"]);
    let run = Run::of(
        sso_cove(&g, &portal_only())
            .env("COVE_SSO_ROLE", "ReadOnlyAccess")
            .arg("--dry-run"),
    );
    run.expect_code(0);
    let doc = run.doc();
    assert_eq!(doc["Roles"], serde_json::json!(["ReadOnlyAccess"]), "{doc}");
    let targets = doc["Targets"].as_array().unwrap();
    let mut ids: Vec<&str> = targets.iter().map(|t| t["Id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, g.ids(&["deep-b", "prod-a"]));
    for t in targets {
        assert_eq!(t["TargetedBy"], serde_json::json!(["sso-portal"]), "{t}");
    }
    assert_eq!(
        g.calls("sso:GetRoleCredentials"),
        0,
        "a dry run gets no credentials"
    );
}

#[test]
fn with_organization_access_tag_filters_work_as_usual() {
    let g = Ground::start(&[]);
    let run = Run::of(sso_cove(&g, &with_org_access(&g)).args([
        "--sso-role",
        "ReadOnlyAccess",
        "--filter-tag",
        "env=prod",
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["core-a", "prod-a"]));
}

#[test]
fn an_ou_without_a_calling_identity_is_an_error_that_says_which_identity_is_missing() {
    let g = Ground::start(&[]);
    let run = Run::of(sso_cove(&g, &portal_only()).args([
        "--sso-role",
        "ReadOnlyAccess",
        "-t",
        &g.ou("Sandbox"),
        "--",
        "true",
    ]));
    run.expect_code(2);
    assert!(
        run.stderr.contains("names no sso_account_id") && !run.stderr.contains("aws sso login"),
        "{}",
        run.stderr
    );
    assert_eq!(g.calls("sso:GetRoleCredentials"), 0);
}

#[test]
fn a_credentials_answer_cove_cannot_read_fails_its_account_without_showing_the_keys() {
    // The answer carries real keys but an expiration that is not a number; the error, even at
    // -vvv (every log line cove has), must not quote the response.
    let g = Ground::start(&[
        "--sso-accounts",
        "root-a",
        "--sso-unreadable",
        "ReadOnlyAccess",
    ]);
    let run = Run::of(sso_cove(&g, &portal_only()).args([
        "-vvv",
        "--sso-role",
        "ReadOnlyAccess",
        "--",
        "true",
    ]));
    run.expect_code(1);
    assert_eq!(run.ids("FailedAssumeRole"), g.ids(&["root-a"]));
    assert!(
        run.stderr.contains("cause detail=") && run.stderr.contains("not-a-number"),
        "the chain of causes is logged, so the scan covers it: {}",
        run.stderr
    );
    let keys = g.issued_keys();
    assert!(
        keys.as_object()
            .unwrap()
            .values()
            .any(|k| k["identity"] == "sso:ReadOnlyAccess"),
        "the ground issued keys for the permission set: {keys}"
    );
    run.expect_no_secret(g.secrets());
}

#[test]
fn region_all_asks_each_account_with_its_permission_set() {
    // account:ListRegions is signed with the portal's keys for the account, so the ground
    // answers for that account (ap-east-1 is enabled in root-b only).
    let g = Ground::start(&[
        "--sso-accounts",
        "root-a,root-b",
        "--opt-in-names",
        "root-b",
    ]);
    let run = Run::of(sso_cove(&g, &portal_only()).args([
        "--sso-role",
        "ReadOnlyAccess",
        "--region",
        "all",
        "--",
        "true",
    ]));
    run.expect_code(0);
    let pairs = run.targets("Results");
    let (a, b) = (g.account("root-a"), g.account("root-b"));
    let mut expected = vec![
        (a.clone(), "eu-west-1".to_owned()),
        (a, "us-east-1".to_owned()),
        (b.clone(), "ap-east-1".to_owned()),
        (b.clone(), "eu-west-1".to_owned()),
        (b, "us-east-1".to_owned()),
    ];
    expected.sort();
    assert_eq!(pairs, expected);
    assert_eq!(g.calls("sso:GetRoleCredentials"), 2, "one per account");
}

// Sign-in paths that must fail when broken: the portal's region, the SSO-OIDC refresh, a
// sign-in lost mid-run.

/// Writes the token `aws sso login` caches for an `sso_session`, with the client registration
/// and refresh token that let the SDK refresh it through SSO-OIDC CreateToken (the ground's
/// `--sso-refresh` registration, with `refresh_token` in place of the ground's when given).
/// Returns the cache file.
fn cache_refreshable_sso_token(
    g: &Ground,
    access_token: &str,
    expires_in: i64,
    refresh_token: Option<&str>,
) -> std::path::PathBuf {
    let oidc = &g.info["sso_oidc"];
    let script = r#"
import datetime, hashlib, json, os, sys
home, token, expires_in, client_id, client_secret, refresh = sys.argv[1:7]
now = datetime.datetime.now(datetime.timezone.utc)
stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
cache = os.path.join(home, ".aws", "sso", "cache")
os.makedirs(cache, exist_ok=True)
path = os.path.join(cache, hashlib.sha1(b"corp").hexdigest() + ".json")
with open(path, "w") as f:
    json.dump({"accessToken": token,
               "expiresAt": stamp(now + datetime.timedelta(seconds=int(expires_in))),
               "region": "us-east-1", "startUrl": "https://ground.awsapps.com/start",
               "clientId": client_id, "clientSecret": client_secret, "refreshToken": refresh,
               "registrationExpiresAt": stamp(now + datetime.timedelta(days=30))}, f)
print(path, end="")
"#;
    let field = |k: &str| {
        oidc[k]
            .as_str()
            .expect("the ground runs with --sso-refresh")
    };
    let refresh = refresh_token.unwrap_or_else(|| field("refresh_token"));
    std::path::PathBuf::from(python(
        script,
        &[
            g.home.path().to_str().unwrap(),
            access_token,
            &expires_in.to_string(),
            field("client_id"),
            field("client_secret"),
            refresh,
        ],
    ))
}

/// A token the ground never issued: only a refresh makes the portal accept the session.
const STALE_TOKEN: &str = "ground-sso-stale-token";

fn cached(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_portal_and_its_token_refresh_are_called_in_sso_region_not_in_the_profiles_region() {
    // The portal's calls carry a bearer token and no SigV4 scope: with AWS_ENDPOINT_URL nothing
    // on the wire names a region. So the portal and SSO-OIDC go through the SDK's own endpoint
    // resolver here (https://portal.sso.<region>.amazonaws.com) and the ground's HTTPS proxy,
    // which records the host each client asked for and never dials out.
    let g = Ground::start(&[
        "--sso-accounts",
        "root-a,root-b",
        "--sso-refresh",
        "--portal-proxy",
    ]);
    let proxy = &g.info["portal_proxy"];
    let ca = g.home.path().join("ground-ca.pem");
    std::fs::write(&ca, proxy["ca_pem"].as_str().unwrap()).unwrap();
    let config = "[profile my-sso]\nsso_session = corp\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://ground.awsapps.com/start\nsso_region = eu-west-1\n";
    // Expired: the SDK refreshes it first, through SSO-OIDC in the session's region.
    cache_refreshable_sso_token(&g, STALE_TOKEN, -60, None);
    let mut cmd = profile_cove(&g, config);
    cmd.env_remove("AWS_ENDPOINT_URL");
    for service in ["STS", "ORGANIZATIONS", "ACCOUNT"] {
        cmd.env(format!("AWS_ENDPOINT_URL_{service}"), &g.endpoint);
    }
    let run = Run::of(
        cmd.env("HTTPS_PROXY", proxy["url"].as_str().unwrap())
            .env("NO_PROXY", "127.0.0.1")
            .env("SSL_CERT_FILE", &ca)
            .args(["--sso-role", "ReadOnlyAccess", "--", "true"]),
    );
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["root-a", "root-b"]));
    let connects = g.control("/_ground/proxy-connects")["connects"].clone();
    let connects: Vec<&str> = connects
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        connects.contains(&"oidc.eu-west-1.amazonaws.com:443")
            && connects.contains(&"portal.sso.eu-west-1.amazonaws.com:443"),
        "the refresh and the portal were reached in sso_region: {connects:?}"
    );
    assert!(
        connects.iter().all(|c| c.contains(".eu-west-1.")),
        "nothing aimed at the profile's region (us-east-1): {connects:?}"
    );
    let params = g.sso_params();
    let gets = params
        .iter()
        .filter(|p| p["operation"] == "GetRoleCredentials")
        .count();
    assert_eq!(gets, 2, "{params:?}");
    for p in &params {
        assert_eq!(p["host"], "portal.sso.eu-west-1.amazonaws.com", "{p}");
        assert_eq!(p["token_ok"], true, "with the refreshed token: {p}");
    }
    run.expect_no_secret(g.secrets());
}

#[test]
fn an_expired_token_with_a_refresh_token_is_refreshed_through_sso_oidc_and_cached() {
    let g = Ground::start(&["--sso-accounts", "root-a,sandbox-b", "--sso-refresh"]);
    let path = cache_refreshable_sso_token(&g, STALE_TOKEN, -60, None);
    let before = cached(&path);
    let run = Run::of(profile_cove(&g, &portal_only()).args([
        "-vvv",
        "--sso-role",
        "ReadOnlyAccess",
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), g.ids(&["root-a", "sandbox-b"]));
    let oidc = g.control("/_ground/sso-oidc-params")["calls"].clone();
    assert_eq!(
        oidc,
        serde_json::json!([{"client_ok": true, "secret_ok": true, "grant_type": "refresh_token",
                            "refresh_ok": true, "host": oidc[0]["host"]}]),
        "one strict CreateToken"
    );
    let params = g.sso_params();
    assert!(
        !params.is_empty() && params.iter().all(|p| p["token_ok"] == true),
        "every portal call carried the refreshed token: {params:?}"
    );
    let after = cached(&path);
    assert_ne!(after["accessToken"], before["accessToken"], "{after}");
    assert_ne!(
        after["refreshToken"], before["refreshToken"],
        "the new refresh token was kept"
    );
    let expires = after["expiresAt"].as_str().unwrap();
    assert!(expires > before["expiresAt"].as_str().unwrap(), "{expires}");
    let mut secrets = g.secrets();
    secrets.push(after["accessToken"].as_str().unwrap().to_owned());
    secrets.push(after["refreshToken"].as_str().unwrap().to_owned());
    secrets.push(STALE_TOKEN.to_owned());
    run.expect_no_secret(secrets);
}

#[test]
fn a_refresh_token_sso_oidc_refuses_is_an_error_that_says_to_sign_in_again() {
    let g = Ground::start(&["--sso-refresh"]);
    let path = cache_refreshable_sso_token(&g, STALE_TOKEN, -60, Some("ground-sso-refresh-wrong"));
    let before = std::fs::read_to_string(&path).unwrap();
    let run = Run::of(profile_cove(&g, &portal_only()).args([
        "--sso-role",
        "ReadOnlyAccess",
        "--",
        "true",
    ]));
    run.expect_code(2);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("expired")
            && run.stderr.contains("run `aws sso login --profile my-sso`"),
        "{}",
        run.stderr
    );
    let oidc = g.control("/_ground/sso-oidc-params")["calls"].clone();
    assert_eq!(oidc.as_array().unwrap().len(), 1, "{oidc}");
    assert_eq!(oidc[0]["refresh_ok"], false, "{oidc}");
    assert!(
        g.sso_params().is_empty(),
        "the expired token never went to the portal: {:?}",
        g.sso_params()
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        before,
        "the cache is left as it was"
    );
    run.expect_no_secret(g.secrets());
}

#[test]
fn a_sign_in_lost_mid_run_fails_the_accounts_after_it_and_tries_no_other_permission_set() {
    // The portal accepts the token for two GetRoleCredentials, then answers
    // UnauthorizedException (signed out elsewhere, or the session ended). Fallback is assigned
    // everywhere: trying it after an UnauthorizedException would show in the ground's calls.
    let g = Ground::start(&[
        "--sso-permission-sets",
        "ReadOnlyAccess,Fallback",
        "--sso-revoke-after",
        "2",
    ]);
    let names = ["root-a", "root-b", "prod-a", "deep-a", "sandbox-a"];
    let ids = g.ids(&names);
    let run = Run::of(sso_cove(&g, &portal_only()).args([
        "--sso-role",
        "ReadOnlyAccess,Fallback",
        "-t",
        &ids.join(","),
        "--",
        "true",
    ]));
    run.expect_code(1);
    assert_eq!(run.list("Results").len(), 2, "{}", run.stdout);
    let failed = run.list("FailedAssumeRole");
    assert_eq!(failed.len(), 3, "{}", run.stdout);
    for f in &failed {
        let details = f["ExceptionDetails"].as_str().unwrap();
        for needle in [
            "UnauthorizedException",
            "run `aws sso login --profile my-sso`",
        ] {
            assert!(details.contains(needle), "{needle}: {f}");
        }
        assert_eq!(f["RoleName"], "ReadOnlyAccess", "{f}");
    }
    let params = g.sso_params();
    let asked = |set: &str| {
        params
            .iter()
            .filter(|p| p["operation"] == "GetRoleCredentials" && p["role_name"] == set)
            .count()
    };
    assert_eq!(asked("ReadOnlyAccess"), names.len(), "{params:?}");
    assert_eq!(
        asked("Fallback"),
        0,
        "UnauthorizedException never falls through to the next --sso-role: {params:?}"
    );
}
