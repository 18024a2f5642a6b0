//! `aws login` sessions as the starting identity: a profile with `login_session`, its token
//! cached where `aws login` leaves it, directly and as the source of a role profile. The
//! ground answers the Sign-In refresh (`signin:CreateOAuth2Token`), which moto lacks.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{Ground, Run, python};

const SESSION: &str = "arn:aws:iam::123456789012:user/Admin";

/// Writes the cached token of [`SESSION`] the way `aws login` does: under
/// `~/.aws/login/cache/<sha256 of the session ARN>.json`, with a fresh P-256 DPoP key and
/// credentials that expire in `expires_in` seconds. Returns the file's path.
fn cache_login_token(home: &Path, expires_in: i64) -> PathBuf {
    let script = r#"
import datetime, hashlib, json, os, sys
from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric import ec
home, session, expires_in = sys.argv[1], sys.argv[2], int(sys.argv[3])
key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
    s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption()).decode()
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in)
token = {
    "accessToken": {"accessKeyId": "ASIACACHEDLOGIN00001", "secretAccessKey": "cached-secret",
                    "sessionToken": "cached-session-token", "accountId": "123456789012",
                    "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
    "tokenType": "aws_sigv4", "refreshToken": "cached-refresh-token",
    "clientId": "arn:aws:signin:::devtools/same-device", "dpopKey": key,
}
cache = os.path.join(home, ".aws", "login", "cache")
os.makedirs(cache, exist_ok=True)
path = os.path.join(cache, hashlib.sha256(session.encode()).hexdigest() + ".json")
with open(path, "w") as f:
    json.dump(token, f)
print(path, end="")
"#;
    let expires_in = expires_in.to_string();
    PathBuf::from(python(
        script,
        &[home.to_str().unwrap(), SESSION, &expires_in],
    ))
}

/// cove with only the config file as a source of credentials: no key variables.
fn cove_with_profiles(g: &Ground, config: &str) -> Command {
    let path = g.home.path().join("config");
    std::fs::write(&path, config).unwrap();
    let mut cmd = g.cove();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", &path);
    cmd
}

/// The refresh token [`cache_login_token`] caches.
const REFRESH_TOKEN: &str = "cached-refresh-token";

/// The ground, its Sign-In refresh accepting [`REFRESH_TOKEN`] (once) and the AWS CLI's
/// client ID only.
fn login_ground() -> Ground {
    Ground::start(&["--login-refresh-token", REFRESH_TOKEN])
}

fn login_profile() -> String {
    format!("[profile console]\nlogin_session = {SESSION}\nregion = us-east-1\n")
}

#[test]
fn a_login_session_profile_is_the_starting_identity() {
    let g = login_ground();
    cache_login_token(g.home.path(), 3600);
    let run = Run::of(cove_with_profiles(&g, &login_profile()).args([
        "--profile",
        "console",
        "-t",
        &g.account("sandbox-a"),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), [g.account("sandbox-a")]);
    assert_eq!(
        g.calls("signin:CreateOAuth2Token"),
        0,
        "a fresh session is used as cached"
    );
}

#[test]
fn a_login_session_about_to_expire_is_refreshed_through_sign_in() {
    let g = login_ground();
    let cached = cache_login_token(g.home.path(), 60);
    // At the most verbose level, so that the secret scan below covers the log too.
    let run = Run::of(cove_with_profiles(&g, &login_profile()).args([
        "-vvv",
        "--profile",
        "console",
        "-t",
        &g.account("sandbox-a"),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(g.calls("signin:CreateOAuth2Token"), 1);
    assert_eq!(
        g.control("/_ground/login-params")["calls"],
        serde_json::json!([{"client_ok": true, "refresh_ok": true}])
    );
    // Every call after the refresh is signed with the keys it issued, none with the cached ones.
    let by_identity = g.calls_by_identity();
    for operation in ["sts:GetCallerIdentity", "sts:AssumeRole"] {
        assert_eq!(
            by_identity[operation],
            serde_json::json!({"login-refresh": 1}),
            "{operation}: {by_identity}"
        );
    }
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(cached).unwrap()).unwrap();
    let key = saved["accessToken"]["accessKeyId"].as_str().unwrap();
    assert!(
        key.starts_with("ASIALOGIN"),
        "the refreshed session was cached: {key}"
    );
    assert!(
        run.stderr.contains("CreateOAuth2Token") || run.stderr.contains("signin"),
        "the log covers the refresh"
    );
    // Every secret of the session: those the refresh issued (the ground's keys and the new
    // refresh token) and those cached before it.
    let mut secrets = g.secrets();
    secrets.push(saved["refreshToken"].as_str().unwrap().to_owned());
    // The DPoP private key, by the lines of its PEM body.
    let pem = saved["dpopKey"].as_str().unwrap();
    assert!(pem.contains("PRIVATE KEY"), "the cache keeps the key");
    secrets.extend(
        pem.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
            .map(str::to_owned),
    );
    secrets.extend(
        [
            "cached-secret",
            "cached-session-token",
            "cached-refresh-token",
        ]
        .map(String::from),
    );
    run.expect_no_secret(secrets);
}

#[test]
fn a_role_profile_can_take_its_source_from_a_login_session() {
    let g = login_ground();
    cache_login_token(g.home.path(), 3600);
    // In the management account: moto keeps the organization there.
    let hub_role = format!("arn:aws:iam::{}:role/Hub", g.caller());
    let config = format!(
        "{}\n[profile hub]\nrole_arn = {hub_role}\nsource_profile = console\nregion = us-east-1\n",
        login_profile()
    );
    let run = Run::of(cove_with_profiles(&g, &config).args([
        "--profile",
        "hub",
        "-t",
        &g.account("sandbox-a"),
        "--",
        "true",
    ]));
    run.expect_code(0);
    assert_eq!(run.ids("Results"), [g.account("sandbox-a")]);
    assert!(
        g.assume_params().iter().any(|p| p["RoleArn"] == hub_role),
        "the profile's role was assumed from the login session"
    );
}

#[test]
fn a_refresh_sign_in_refuses_stops_the_run_before_any_target() {
    // A refresh token that is not (or no longer) valid, and the right one for another client.
    for (ground_args, what, client_ok, refresh_ok) in [
        (
            vec!["--login-refresh-token", "another-refresh-token"],
            "refresh token",
            true,
            false,
        ),
        (
            vec![
                "--login-refresh-token",
                REFRESH_TOKEN,
                "--login-client-id",
                "arn:aws:signin:::devtools/cross-device",
            ],
            "client ID",
            false,
            true,
        ),
    ] {
        let g = Ground::start(&ground_args);
        cache_login_token(g.home.path(), 60);
        let run = Run::of(cove_with_profiles(&g, &login_profile()).args([
            "--profile",
            "console",
            "-t",
            &g.account("sandbox-a"),
            "--",
            "true",
        ]));
        run.expect_code(2);
        assert!(run.stdout.is_empty(), "{what}: {}", run.stdout);
        assert_eq!(g.calls("signin:CreateOAuth2Token"), 1, "{what}");
        assert_eq!(g.calls("sts:AssumeRole"), 0, "{what}: no target was tried");
        assert_eq!(
            g.control("/_ground/login-params")["calls"],
            serde_json::json!([{"client_ok": client_ok, "refresh_ok": refresh_ok}]),
            "{what}"
        );
        run.expect_no_secret(["cached-secret", "cached-session-token", REFRESH_TOKEN]);
    }
}
