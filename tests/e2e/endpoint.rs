//! `--child-credentials endpoint`: children get a credential endpoint on 127.0.0.1 and a token
//! of their own instead of keys, ask it again for renewed credentials, and nothing else can.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Ground, Run, SpawnPiped, venv, wait_until};

/// A GET of the endpoint as an SDK sends it; the status and body of the answer.
pub fn ask(uri: &str, token: Option<&str>) -> (u16, String) {
    let rest = uri.strip_prefix("http://").expect("an http URI");
    let (addr, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut stream = TcpStream::connect(addr).expect("the endpoint accepts connections");
    let auth = token
        .map(|t| format!("Authorization: {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Accept: application/json\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// Prints to stderr which credential variables the child sees.
const ENV_PROBE: &str = r#"for v in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_CREDENTIAL_EXPIRATION AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN; do
  eval "[ -n \"\${$v+x}\" ]" && echo "set $v" >&2
done
echo "uri $AWS_CONTAINER_CREDENTIALS_FULL_URI" >&2
exec aws sts get-caller-identity --output json"#;

#[test]
fn aws_cli_in_the_child_gets_the_target_account_through_the_endpoint() {
    let g = Ground::start(&[]);
    // The caller's own default profile, as on a laptop: SDKs read it before the container
    // endpoint, so it must not reach the child.
    let credentials = g.home.path().join("credentials");
    std::fs::write(
        &credentials,
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    let config = g.home.path().join("config");
    std::fs::write(&config, "[default]\nregion = us-east-1\n").unwrap();
    let mut cove = g.cove();
    cove.env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_CONFIG_FILE", &config);
    let run = Run::of(cove.args([
        "--child-credentials",
        "endpoint",
        "-t",
        &g.ou("Sandbox"),
        "--",
        "sh",
        "-c",
        ENV_PROBE,
    ]));
    run.expect_code(0);
    let results = run.list("Results");
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r["Result"]["Account"], r["Id"], "{r}");
        let stderr = r["Stderr"].as_str().unwrap();
        let set: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("set "))
            .collect();
        assert_eq!(
            set,
            [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN"
            ],
            "no key variable, no expiry: {stderr}"
        );
        let uri = stderr.lines().find_map(|l| l.strip_prefix("uri ")).unwrap();
        assert!(
            uri.starts_with("http://127.0.0.1:") && uri.contains("/credentials/"),
            "{uri}"
        );
    }
    run.expect_no_secret(g.secrets());
}

/// Fetches credentials twice, two seconds apart, the way SDKs do.
pub const FETCH_TWICE: &str = r#"
import json, os, time, urllib.request
def fetch():
    request = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        headers={"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
    return json.load(urllib.request.urlopen(request, timeout=10))
first = fetch()
time.sleep(2)
second = fetch()
print(json.dumps([first, second]))
"#;

#[test]
fn a_child_that_asks_again_gets_renewed_credentials() {
    // Credentials that expire in 301 seconds are inside cove's five-minute renewal margin
    // within a second of being issued.
    let g = Ground::start(&["--assume-expiry-seconds", "301"]);
    let python = venv().join("bin/python");
    let run = Run::of(g.cove().args([
        "--child-credentials",
        "endpoint",
        "-t",
        &g.account("root-a"),
        "--",
        python.to_str().unwrap(),
        "-c",
        FETCH_TWICE,
    ]));
    run.expect_code(0);
    let fetched = run.list("Results")[0]["Result"].clone();
    let (first, second) = (&fetched[0], &fetched[1]);
    for key in ["AccessKeyId", "SecretAccessKey", "Token"] {
        assert!(first[key].is_string(), "{key}: {first}");
        assert_ne!(first[key], second[key], "{key} was renewed");
    }
    assert_eq!(second["AccountId"], g.account("root-a"));
    let issued = g.secrets();
    assert!(
        issued.contains(&second["SecretAccessKey"].as_str().unwrap().to_owned()),
        "the renewed key came from STS"
    );
    assert!(g.calls("sts:AssumeRole") >= 2);
}

/// Waits until `path` exists.
fn wait_for(path: &Path) {
    wait_until(&format!("{path:?}"), Duration::from_secs(30), || {
        path.exists()
    });
}

#[test]
fn only_a_running_childs_own_token_is_answered() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // Each child leaves its URI and token; sandbox-b then waits for the test's go-ahead.
    let script = format!(
        r#"printf '%s\n%s\n' "$AWS_CONTAINER_CREDENTIALS_FULL_URI" "$AWS_CONTAINER_AUTHORIZATION_TOKEN" > {d}/tmp-$COVE_ACCOUNT_NAME
mv {d}/tmp-$COVE_ACCOUNT_NAME {d}/$COVE_ACCOUNT_NAME
if [ "$COVE_ACCOUNT_NAME" = sandbox-b ]; then
  i=0; while [ ! -e {d}/go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
fi"#
    );
    let mut cove = g
        .cove()
        .args([
            "--child-credentials",
            "endpoint",
            "-o",
            "jsonl",
            "-t",
            &g.ou("Sandbox"),
            "--",
            "sh",
            "-c",
            &script,
        ])
        .spawn_piped();
    let mut lines = BufReader::new(cove.stdout.take().unwrap()).lines();
    let first_line = lines.next().unwrap().unwrap();
    let first: Value = serde_json::from_str(&first_line).unwrap();
    assert_eq!(first["Name"], "sandbox-a", "sandbox-a's child has exited");
    wait_for(&dir.path().join("sandbox-b"));
    let read = |name: &str| -> (String, String) {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        let mut parts = text.lines().map(str::to_owned);
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let (uri_a, exited_token) = read("sandbox-a");
    let (uri, running_token) = read("sandbox-b");
    let origin = |u: &str| u[..u.find("/credentials/").unwrap()].to_owned();
    assert_eq!(origin(&uri_a), origin(&uri), "one endpoint for the run");
    assert_ne!(exited_token, running_token, "a token per target");
    assert!(running_token.len() >= 32, "at least 128 bits in hex");

    let (status, body) = ask(&uri, Some(&running_token));
    assert_eq!(status, 200, "the running child's token works: {body}");
    let creds: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(creds["AccountId"], g.account("sandbox-b"));

    let mut wrong = running_token.clone();
    wrong.replace_range(..1, if wrong.starts_with('0') { "1" } else { "0" });
    let refused: Vec<(u16, String)> = [
        (&uri, None),
        (&uri, Some(wrong.as_str())),
        (&uri_a, Some(exited_token.as_str())),
    ]
    .into_iter()
    .map(|(uri, token)| ask(uri, token))
    .collect();
    assert_eq!(refused[0].0, 403, "no token: {}", refused[0].1);
    assert!(
        refused.iter().all(|r| *r == refused[0]),
        "missing, wrong and exited tokens get the same answer: {refused:?}"
    );
    assert!(!refused[0].1.contains(&g.account("sandbox-a")));

    std::fs::write(dir.path().join("go"), "").unwrap();
    let output: String = lines.map(Result::unwrap).collect::<Vec<_>>().concat() + &first_line;
    let mut stderr = String::new();
    cove.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(cove.wait().unwrap().success(), "{stderr}");
    for token in [&exited_token, &running_token] {
        assert!(!output.contains(token.as_str()) && !stderr.contains(token.as_str()));
    }
}
