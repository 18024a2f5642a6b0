//! The test ground: a moto server with a sample organization (scripts/ground.py), and a
//! `cove` command whose environment holds nothing of the developer's own AWS setup.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The venv that holds moto and the AWS CLI; `scripts/test` creates it.
pub fn venv() -> PathBuf {
    let dir = std::env::var_os("COVE_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    // Absolute, so that PATH entries made from it still hold in a test's own directory.
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    for tool in ["bin/python", "bin/aws"] {
        assert!(
            dir.join(tool).exists(),
            "the end-to-end tests need {} (moto[server] and awscli); run scripts/test, which creates the venv",
            dir.join(tool).display()
        );
    }
    dir
}

/// A running moto server with an organization in it. Stopped when dropped.
pub struct Ground {
    child: Child,
    stdin: Option<ChildStdin>,
    pub info: Value,
    pub endpoint: String,
    pub home: tempfile::TempDir,
}

impl Ground {
    /// The standard organization (see scripts/ground.py), with extra ground.py arguments.
    pub fn start(args: &[&str]) -> Ground {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ground.py");
        let mut child = Command::new(venv().join("bin/python"))
            .arg(script)
            .arg("--exit-on-stdin-eof")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start scripts/ground.py");
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim().is_empty() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).ok();
            panic!("scripts/ground.py did not start: {err}");
        }
        let info: Value = serde_json::from_str(&line).expect("ground info line");
        let endpoint = info["endpoint"].as_str().unwrap().to_owned();
        Ground {
            child,
            stdin,
            info,
            endpoint,
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn account(&self, name: &str) -> String {
        self.info["accounts"][name]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no account {name} in the ground"))
            .to_owned()
    }

    pub fn ou(&self, name: &str) -> String {
        self.info["ous"][name]
            .as_str()
            .unwrap_or_else(|| panic!("no OU {name} in the ground"))
            .to_owned()
    }

    pub fn root(&self) -> String {
        self.info["root"].as_str().unwrap().to_owned()
    }

    pub fn caller(&self) -> String {
        self.info["caller"].as_str().unwrap().to_owned()
    }

    /// IDs of the named accounts, sorted.
    pub fn ids(&self, names: &[&str]) -> Vec<String> {
        let mut ids: Vec<String> = names.iter().map(|n| self.account(n)).collect();
        ids.sort();
        ids
    }

    /// Every ACTIVE account the ground created, sorted (the management account excluded).
    pub fn active_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.info["accounts"]
            .as_object()
            .unwrap()
            .values()
            .filter(|a| a["state"] == "ACTIVE")
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// `sh` (with `flags`, such as `-c` or `-ec`) running `body` in `dir` as a user would: cove
    /// and the AWS CLI on PATH, and cove's environment pointed at this ground.
    pub fn shell(&self, flags: &str, body: &str, dir: &Path) -> std::process::Output {
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_cove")).parent().unwrap();
        Command::new("sh")
            .arg(flags)
            .arg(body)
            .current_dir(dir)
            .env_clear()
            .envs(
                self.cove()
                    .get_envs()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
            )
            .env(
                "PATH",
                format!(
                    "{}:{}:/usr/local/bin:/usr/bin:/bin",
                    bin_dir.display(),
                    venv().join("bin").display()
                ),
            )
            .output()
            .expect("run sh")
    }

    /// `cove` pointed at this ground.
    pub fn cove(&self) -> Command {
        let mut cmd = clean_cove(self.home.path());
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint);
        cmd
    }

    fn get(&self, path: &str) -> Value {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
    }

    /// Calls that reached the ground since it was set up, by `service:Operation`.
    pub fn calls(&self, operation: &str) -> u64 {
        self.get("/_ground/calls")[operation].as_u64().unwrap_or(0)
    }

    /// Every call of any kind that reached the ground since it was set up.
    pub fn all_calls(&self) -> Value {
        self.get("/_ground/calls")
    }

    /// Every secret access key and session token moto has issued.
    pub fn secrets(&self) -> Vec<String> {
        self.get("/_ground/secrets")["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    }

    /// Calls by `service:Operation`, then by the identity that signed them: the RoleArn whose
    /// assumed keys signed the call, or `starting` for the test's own keys.
    pub fn calls_by_identity(&self) -> Value {
        self.get("/_ground/calls-by-identity")
    }

    /// The parameters of every GetSessionToken call (the MFA code included; tests only).
    pub fn session_params(&self) -> Vec<Value> {
        self.get("/_ground/session-params")["calls"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Lifts every denial and throttle from now on.
    pub fn clear_faults(&self) {
        self.get("/_ground/clear-faults");
    }

    /// How many ListAccountsForParent calls the ground is holding back (`--hold-parent`).
    pub fn held(&self) -> u64 {
        self.get("/_ground/held")["held"].as_u64().unwrap_or(0)
    }

    /// Lets the held calls through.
    pub fn release(&self) {
        self.get("/_ground/release");
    }

    /// When each AssumeRole call reached the ground, in seconds of a monotonic clock.
    pub fn assume_times(&self) -> Vec<f64> {
        self.times("/_ground/assume-times")
    }

    /// Every portal call: its operation, account, permission set and whether it carried the
    /// ground's token (never the token itself).
    pub fn sso_params(&self) -> Vec<Value> {
        self.get("/_ground/sso-params")["calls"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// When each portal GetRoleCredentials call reached the ground, throttled ones included.
    pub fn sso_times(&self) -> Vec<f64> {
        self.times("/_ground/sso-times")
    }

    fn times(&self, path: &str) -> Vec<f64> {
        self.get(path)["times"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_f64().unwrap())
            .collect()
    }

    /// Any of the ground's `/_ground/...` records, as JSON (the sign-in paths' records:
    /// assume-signers, key-roles, sso-oidc-params, login-params, proxy-connects).
    pub fn control(&self, path: &str) -> Value {
        self.get(path)
    }

    /// The parameters of every AssumeRole call, secrets included (for tests only).
    pub fn assume_params(&self) -> Vec<Value> {
        self.get("/_ground/assume-params")["calls"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The key and the final expiry of every AssumeRole answer, as the ground issued them.
    pub fn issued(&self) -> Vec<Value> {
        self.get("/_ground/issued")["issued"]
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Ground {
    /// Requests the ground refused with ExpiredToken (keys past the Expiration it issued), by
    /// `service:Operation`.
    pub fn expired_calls(&self) -> Value {
        self.get("/_ground/expired")["calls"].clone()
    }

    /// Every key the ground issued, by AccessKeyId: `identity` (the role ARN, `sso:<set>`,
    /// `mfa-session`), `expires` (epoch seconds), `expired` and `uses` (requests signed in time).
    pub fn issued_keys(&self) -> Value {
        self.get("/_ground/keys")["keys"].clone()
    }
}

impl Drop for Ground {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` with the test venv's Python and `args`; panics with its stderr if it fails.
/// Returns its stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The (account ID, region) of each record, sorted.
pub fn id_regions(records: &[Value]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["Id"].as_str().unwrap().to_owned(),
                r["Region"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

/// The child command that proves which account a target ran in: the AWS CLI's caller identity.
pub const WHO_AM_I: [&str; 5] = ["aws", "sts", "get-caller-identity", "--output", "json"];

/// The caller's starting keys, the same as scripts/ground.py's DUMMY_KEYS (the ground signs its
/// setup with them, and lists the secret and the token among its secrets). The values are
/// distinctive and carry `+`, `/` and `=`, so that every encoding of a leak differs from the
/// raw value; [`Run::expect_no_secret`] always looks for them.
pub const STARTING_KEY_ID: &str = "AKIACOVESTARTING0001";
pub const STARTING_SECRET: &str = "cove+Starting/Secret+Key/q7Vx2Lr9Tn4Pb8Wz3Mk";
pub const STARTING_SESSION_TOKEN: &str = "IQoJcove+Starting/Session+Token/h5Gd1Sx6Ye0Ju3Ka8Fo==";

/// `cove` with a clean environment: the starting keys, a region, the venv on PATH, an empty HOME and
/// no config files (AWS's or cove's), so the developer's own AWS setup can never reach a test.
pub fn clean_cove(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cove"));
    cmd.env_clear()
        .env(
            "PATH",
            format!(
                "{}:/usr/local/bin:/usr/bin:/bin",
                venv().join("bin").display()
            ),
        )
        .env("HOME", home)
        // cove's user config file is looked for here: never the developer's own.
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("AWS_ACCESS_KEY_ID", STARTING_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", STARTING_SECRET)
        .env("AWS_SESSION_TOKEN", STARTING_SESSION_TOKEN)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .stdin(Stdio::null());
    cmd
}

/// Polls `done` until it holds (true) or `limit` passes (false). Tests wait on something they
/// can observe (a file, a PID, a call count), never for a fixed time.
pub fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`eventually`], but panics naming `what` was awaited.
pub fn wait_until(what: &str, limit: Duration, done: impl FnMut() -> bool) {
    assert!(
        eventually(limit, done),
        "gave up after {limit:?} waiting for {what}"
    );
}

/// Waits for a spawned cove with piped output. If it has not ended within `limit`, kills it,
/// runs `cleanup` (to kill what it left behind) and panics naming `what` was expected.
pub fn finish_within(child: Child, limit: Duration, what: &str, cleanup: impl FnOnce()) -> Run {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Run::from_output(out.expect("wait for cove")),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            cleanup();
            panic!("cove was still running after {limit:?}: {what}");
        }
    }
}

/// What one cove run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(cmd: &mut Command) -> Run {
        Run::from_output(cmd.output().expect("run cove"))
    }

    /// A run that was spawned and waited for by the test itself.
    pub fn from_output(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The JSON document on stdout.
    pub fn doc(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e})\nstdout: {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// Records of one list.
    pub fn list(&self, name: &str) -> Vec<Value> {
        self.doc()[name].as_array().expect(name).clone()
    }

    /// Sorted, de-duplicated account IDs of one list.
    pub fn ids(&self, name: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .list(name)
            .iter()
            .map(|r| r["Id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The (account ID, region) of every record of one list, sorted.
    pub fn targets(&self, name: &str) -> Vec<(String, String)> {
        id_regions(&self.list(name))
    }

    /// Every record of every list.
    pub fn records(&self) -> Vec<Value> {
        ["Results", "Exceptions", "FailedAssumeRole"]
            .iter()
            .flat_map(|l| self.list(l))
            .collect()
    }

    /// Asserts that no secret of `secrets`, nor the caller's starting secret and token, is in
    /// stdout or stderr: raw, JSON-escaped, percent-encoded (either hex case) or base64-encoded
    /// (standard or URL-safe, padded or not, at any alignment inside a longer encoded text). The
    /// message never quotes a secret; it names the list index and the encoding.
    pub fn expect_no_secret<S: AsRef<str>>(&self, secrets: impl IntoIterator<Item = S>) -> &Run {
        let listed: Vec<String> = secrets.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let starting = [STARTING_SECRET, STARTING_SESSION_TOKEN].map(String::from);
        let (stdout_lower, stderr_lower) = (self.stdout.to_lowercase(), self.stderr.to_lowercase());
        for (i, secret) in listed.iter().chain(&starting).enumerate() {
            let which = if i < listed.len() {
                format!("secret #{i} of the list")
            } else {
                format!("the caller's starting secret #{}", i - listed.len())
            };
            for (encoding, form) in secret_forms(secret) {
                let (stdout, stderr, form) = if encoding == "percent-encoded" {
                    (&stdout_lower, &stderr_lower, form.to_lowercase())
                } else {
                    (&self.stdout, &self.stderr, form)
                };
                assert!(
                    !stdout.contains(&form) && !stderr.contains(&form),
                    "{which} leaked {encoding} into stdout or stderr"
                );
            }
        }
        self
    }

    pub fn expect_code(&self, code: i32) -> &Run {
        let head = |s: &str| s.chars().take(3000).collect::<String>();
        assert_eq!(
            self.code,
            code,
            "exit code\nstdout (start): {}\nstderr (start): {}",
            head(&self.stdout),
            head(&self.stderr)
        );
        self
    }
}

// Linux only: the pseudo-terminal comes from util-linux `script -q -e -c`, whose flags BSD script(1) on macOS does not take.
#[cfg(target_os = "linux")]
/// Runs cove under a pseudo-terminal (util-linux `script`): its exit code and all it drew.
pub fn under_pty(g: &Ground, env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_cove"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &quoted.join(" "), "/dev/null"])
        .env_clear()
        .envs(
            g.cove()
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .env("TERM", "xterm")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("util-linux `script` is needed for the pseudo-terminal tests");
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), screen)
}

/// Spawning cove with both of its outputs piped, for tests that read or signal it while it runs.
pub trait SpawnPiped {
    fn spawn_piped(&mut self) -> Child;
}

impl SpawnPiped for Command {
    fn spawn_piped(&mut self) -> Child {
        self.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cove")
    }
}

/// The forms a leaked secret can take in an output, each with the name of its encoding: raw,
/// JSON-escaped (`/` as `\/` too), percent-encoded (compared without regard to case), and the
/// parts of its base64 encodings that do not depend on the bytes around it, at each of the three
/// alignments, with the standard and the URL-safe alphabet (so padding does not matter).
pub fn secret_forms(secret: &str) -> Vec<(&'static str, String)> {
    let mut forms = vec![("raw", secret.to_owned())];
    let json = serde_json::to_string(secret).unwrap();
    let json = json[1..json.len() - 1].to_owned();
    forms.push(("JSON-escaped", json.replace('/', "\\/")));
    forms.push(("JSON-escaped", json));
    let percent: String = secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    forms.push(("percent-encoded", percent));
    for alphabet in [BASE64_STANDARD, BASE64_URL_SAFE] {
        for shift in 0..3 {
            let mut bytes = vec![0u8; shift];
            bytes.extend_from_slice(secret.as_bytes());
            let encoded = base64(&bytes, alphabet);
            // Characters fully inside the secret's bits: from ceil(8*shift/6) up to
            // floor(8*len/6), where len counts the shift bytes too.
            let start = (8 * shift).div_ceil(6);
            let end = 8 * bytes.len() / 6;
            // Too short a part would match by chance; such a secret is found raw.
            if end - start >= 8 {
                forms.push(("base64-encoded", encoded[start..end].to_owned()));
            }
        }
    }
    forms.dedup();
    forms
}

const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL_SAFE: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 of `bytes` with `alphabet`, without padding.
fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    out
}

#[test]
fn the_secret_scan_finds_a_secret_inside_any_encoded_text() {
    // Python's encoders, as a log line or a child would use them: the secret inside longer
    // text, at each alignment, in each alphabet, padded; percent-encoded in both hex cases;
    // JSON-escaped with `\/`. Each line alone must fail the scan.
    let script = r#"
import base64, json, sys, urllib.parse
secret = sys.argv[1]
for prefix in ["", "a", "ab", "abc"]:
    text = (prefix + secret + "tail").encode()
    print(base64.b64encode(text).decode())
    print(base64.urlsafe_b64encode(text).decode())
    print(base64.urlsafe_b64encode(text).decode().rstrip("="))
print(urllib.parse.quote(secret, safe=""))
print(urllib.parse.quote(secret, safe="").lower())
print(json.dumps({"k": secret}).replace("/", "\\/"))
"#;
    for secret in [STARTING_SECRET, STARTING_SESSION_TOKEN] {
        let encoded = python(script, &[secret]);
        assert_eq!(encoded.lines().count(), 15, "{encoded}");
        for line in encoded.lines() {
            assert!(!line.contains(secret), "not raw: {line}");
            let leaked = Run {
                code: 0,
                stdout: String::new(),
                stderr: format!("log: {line}\n"),
            };
            let caught = std::panic::catch_unwind(|| {
                leaked.expect_no_secret(Vec::<String>::new());
            });
            assert!(caught.is_err(), "the scan missed {line}");
        }
    }
}
