//! The credential endpoint under a hostile neighbour: another local process floods it with idle
//! connections, presents one target's token on another's URI, or outlives the child it came
//! from; and the credentials it serves last as long as the ground issued them, are renewed
//! before botocore asks on every call, and cost one AssumeRole per lifetime.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::endpoint::ask;
use crate::support::{Ground, Run, SpawnPiped, finish_within, venv, wait_until};

/// Waits until `path` exists.
fn wait_for(path: &Path) {
    wait_until(&format!("{path:?}"), Duration::from_secs(60), || {
        path.exists()
    });
}

/// `host:port` of an endpoint URI.
fn origin(uri: &str) -> SocketAddr {
    let rest = uri.strip_prefix("http://").expect("an http URI");
    rest[..rest.find('/').expect("a path")].parse().unwrap()
}

/// The local address of the listening TCP socket on `port`, from the kernel's own table
/// (/proc/net/tcp, IPv4), as `hex address:hex port` the way the table writes it.
fn listener_in_kernel_table(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (fields[1], fields[3]);
            let listening = state == "0A";
            let same_port = local.ends_with(&format!(":{port:04X}"));
            (listening && same_port).then(|| local.to_owned())
        })
        .collect()
}

/// Lets this test process hold `n` more sockets than usual.
fn allow_open_files(n: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let wanted = hard.min(soft.max(n + 256));
    if wanted > soft {
        setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).unwrap();
    }
}

/// A hostile neighbour that holds `n` idle connections to the endpoint: each is opened, never
/// sends a byte, and, when the endpoint closes it, is opened again a second later. It runs on a
/// thread of its own until stopped, and three minutes at most.
struct Flood {
    /// Connections established so far, reopened ones included.
    opened: Arc<AtomicUsize>,
    stop: tokio_util::sync::CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flood {
    fn start(addr: SocketAddr, n: usize) -> Flood {
        let opened = Arc::new(AtomicUsize::new(0));
        let stop = tokio_util::sync::CancellationToken::new();
        let (counter, stopped) = (opened.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut connections = tokio::task::JoinSet::new();
                for _ in 0..n {
                    connections.spawn(hold_one(addr, counter.clone(), stopped.clone()));
                }
                while connections.join_next().await.is_some() {}
            });
        });
        Flood {
            opened,
            stop,
            thread: Some(thread),
        }
    }

    fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    /// Ends the flood and says how many connections it established.
    fn stop(mut self) -> usize {
        self.end();
        self.opened.load(Ordering::SeqCst)
    }

    fn end(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A test that fails midway ends its flood too.
impl Drop for Flood {
    fn drop(&mut self) {
        self.end();
    }
}

/// One idle connection of the flood, reopened whenever the endpoint closes it.
async fn hold_one(
    addr: SocketAddr,
    opened: Arc<AtomicUsize>,
    stop: tokio_util::sync::CancellationToken,
) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while !stop.is_cancelled() && tokio::time::Instant::now() < deadline {
        let connect = tokio::net::TcpStream::connect(addr);
        let pause = match tokio::time::timeout(Duration::from_secs(2), connect).await {
            Ok(Ok(mut stream)) => {
                opened.fetch_add(1, Ordering::SeqCst);
                let mut byte = [0u8; 1];
                tokio::select! {
                    _ = stream.read(&mut byte) => {}
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep_until(deadline) => return,
                }
                Duration::from_secs(1)
            }
            _ => Duration::from_millis(100),
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// The first child to start writes the endpoint URI it was given to `uri`; every child waits
/// for `go`, then asks for its caller identity through the endpoint, logging (`--debug`) each
/// attempt of its SDK to fetch credentials.
fn wait_then_ask(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"if mkdir {d}/first 2>/dev/null; then
  printf '%s' "$AWS_CONTAINER_CREDENTIALS_FULL_URI" > {d}/uri.tmp && mv {d}/uri.tmp {d}/uri
fi
i=0; while [ ! -e {d}/go ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
exec aws --debug sts get-caller-identity --output json"#
    )
}

/// Runs four targets with the endpoint, two at a time, holds a flood of 1,000 idle connections
/// to it while they start and their children ask for credentials, and checks every child got
/// its own account. With `open_file_limit`, cove runs under a shell that sets that limit first.
fn children_are_served_through_a_flood(open_file_limit: Option<u32>) {
    const FLOOD: usize = 1000;
    allow_open_files(FLOOD as u64);
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let script = wait_then_ask(dir.path());
    let mut cove = g.cove();
    cove.args([
        "--child-credentials",
        "endpoint",
        // Two at a time: the last two targets start while the flood is on.
        "--workers",
        "2",
        "--region",
        "us-east-1,eu-west-1",
        "-t",
        &g.ou("Sandbox"),
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let mut cove = match open_file_limit {
        None => cove,
        Some(limit) => {
            let mut sh = Command::new("sh");
            sh.env_clear()
                .envs(
                    cove.get_envs()
                        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
                )
                .args(["-c", &format!("ulimit -n {limit} && exec \"$0\" \"$@\"")])
                .arg(cove.get_program())
                .args(cove.get_args())
                .stdin(std::process::Stdio::null());
            sh
        }
    };
    let child = cove.spawn_piped();
    wait_for(&dir.path().join("uri"));
    let uri = std::fs::read_to_string(dir.path().join("uri")).unwrap();
    let addr = origin(&uri);
    assert_eq!(
        listener_in_kernel_table(addr.port()),
        [format!("0100007F:{:04X}", addr.port())],
        "the endpoint listens on 127.0.0.1 only"
    );
    let flood = Flood::start(addr, FLOOD);
    wait_until(
        "the flood's connections to be established",
        Duration::from_secs(60),
        || flood.opened() >= FLOOD,
    );
    std::fs::write(dir.path().join("go"), "").unwrap();
    let run = finish_within(
        child,
        Duration::from_secs(180),
        "children asking through a flood",
        || {},
    );
    let established = flood.stop();
    run.expect_code(0);
    let results = run.list("Results");
    assert_eq!(results.len(), 4, "{}", run.stdout);
    for r in &results {
        assert_eq!(r["Result"]["Account"], r["Id"], "{}", r["ExceptionDetails"]);
        let stderr = r["Stderr"].as_str().unwrap();
        // Under a low open-file limit, the few connections that may wait come and go quickly,
        // and the child's SDK may have to try again.
        assert!(
            open_file_limit.is_some() || !stderr.contains(RETRIED),
            "a credential request of the child timed out or failed, and was retried: {}",
            stderr
                .lines()
                .find(|l| l.contains(RETRIED))
                .unwrap_or_default()
        );
    }
    assert!(
        established >= FLOOD,
        "the flood held {established} connections open"
    );
    assert!(
        !run.stderr.contains("Too many open files"),
        "{}",
        run.stderr
    );
}

/// What botocore logs (at debug) when a credential request to the endpoint failed or timed
/// out (after two seconds, its default) and it is about to try again.
const RETRIED: &str = "Received error when attempting to retrieve container metadata";

#[test]
fn a_flood_of_idle_connections_does_not_starve_the_children() {
    children_are_served_through_a_flood(None);
}

#[test]
fn a_flood_under_a_low_open_file_limit_does_not_fail_the_targets() {
    children_are_served_through_a_flood(Some(256));
}

#[test]
fn a_token_works_only_on_its_own_targets_uri_and_every_target_has_its_own() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // Every child leaves its URI and token, then waits for the test's go-ahead.
    let script = format!(
        r#"f={d}/$COVE_ACCOUNT_NAME-$COVE_REGION
printf '%s\n%s\n' "$AWS_CONTAINER_CREDENTIALS_FULL_URI" "$AWS_CONTAINER_AUTHORIZATION_TOKEN" > $f.tmp
mv $f.tmp $f
i=0; while [ ! -e {d}/go ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done"#
    );
    let targets = [g.account("sandbox-a"), g.account("sandbox-b")].join(",");
    let child = g
        .cove()
        .args([
            "--child-credentials",
            "endpoint",
            "--region",
            "us-east-1,eu-west-1",
            "-t",
            &targets,
            "--",
            "sh",
            "-c",
            &script,
        ])
        .spawn_piped();
    let names = [
        "sandbox-a-us-east-1",
        "sandbox-a-eu-west-1",
        "sandbox-b-us-east-1",
        "sandbox-b-eu-west-1",
    ];
    let grants: Vec<(String, String)> = names
        .iter()
        .map(|name| {
            let path = dir.path().join(name);
            wait_for(&path);
            let text = std::fs::read_to_string(path).unwrap();
            let mut lines = text.lines().map(str::to_owned);
            (lines.next().unwrap(), lines.next().unwrap())
        })
        .collect();
    let (a_us, a_eu, b_us) = (&grants[0], &grants[1], &grants[2]);
    for (i, x) in grants.iter().enumerate() {
        for y in &grants[i + 1..] {
            assert_ne!(x.0, y.0, "a URI per target");
            assert_ne!(
                x.1, y.1,
                "a token per target, two regions of one account too"
            );
            assert_eq!(origin(&x.0), origin(&y.0), "one endpoint");
        }
    }
    let forbidden = ask(&a_us.0, None);
    assert_eq!(forbidden.0, 403);
    let mut unknown = a_us.0.clone();
    let last = unknown.pop().unwrap();
    unknown.push(if last == '0' { '1' } else { '0' });
    let crossed = [
        ("b's token on a's URI", ask(&a_us.0, Some(&b_us.1))),
        ("a's token on b's URI", ask(&b_us.0, Some(&a_us.1))),
        (
            "one region's token on the other's",
            ask(&a_eu.0, Some(&a_us.1)),
        ),
        ("the other way round", ask(&a_us.0, Some(&a_eu.1))),
        ("a's token on an unknown path", ask(&unknown, Some(&a_us.1))),
        (
            "a's token on the bare path",
            ask(
                &format!("http://{}/credentials", origin(&a_us.0)),
                Some(&a_us.1),
            ),
        ),
        (
            "a's token on the root",
            ask(&format!("http://{}/", origin(&a_us.0)), Some(&a_us.1)),
        ),
    ];
    for (what, answer) in &crossed {
        assert_eq!(*answer, forbidden, "{what}: the same 403 as no token");
    }
    for ((uri, token), name) in grants.iter().zip(names) {
        let (status, body) = ask(uri, Some(token));
        assert_eq!(status, 200, "{name}: {body}");
        let creds: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(creds["AccountId"], g.account(&name[..9]), "{name}");
    }
    std::fs::write(dir.path().join("go"), "").unwrap();
    let run = finish_within(
        child,
        Duration::from_secs(120),
        "four waiting children",
        || {},
    );
    run.expect_code(0);
    for (_, token) in &grants {
        assert!(!run.stdout.contains(token.as_str()) && !run.stderr.contains(token.as_str()));
    }
}

/// A process that left the child's process group and holds its output open: it asks once while
/// the child runs, waits for the child to exit, and asks again while cove still reads the
/// output. It writes each answer's status to a file, and keeps the output open past cove's
/// grace period.
const SIBLING: &str = r#"
import os, sys, time, urllib.request, urllib.error
d, leader = sys.argv[1], int(sys.argv[2])
def ask():
    request = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        headers={"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code
def note(name, text):
    with open(f"{d}/{name}.tmp", "w") as f:
        f.write(text)
    os.rename(f"{d}/{name}.tmp", f"{d}/{name}")
note("while-running", str(ask()))
while os.getppid() == leader:
    time.sleep(0.01)
time.sleep(0.3)
note("after-exit", str(ask()))
time.sleep(3)
"#;

#[test]
fn the_token_ends_when_the_process_group_is_gone_not_when_the_output_closes() {
    let g = Ground::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let python = venv().join("bin/python");
    let sibling = dir.path().join("sibling.py");
    std::fs::write(&sibling, SIBLING).unwrap();
    // The leader starts the sibling in a session of its own (out of the process group), with
    // the leader's stdout, waits for its first answer, and exits.
    let script = format!(
        r#"setsid {python} {sibling} {d} $$ &
i=0; while [ ! -e {d}/while-running ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done"#,
        python = python.display(),
        sibling = sibling.display(),
    );
    let run = Run::of(g.cove().args([
        "--child-credentials",
        "endpoint",
        "-t",
        &g.account("root-a"),
        "--",
        "sh",
        "-c",
        &script,
    ]));
    let status = |name: &str| {
        let path = dir.path().join(name);
        wait_for(&path);
        std::fs::read_to_string(path).unwrap()
    };
    assert_eq!(
        status("while-running"),
        "200",
        "the token works while the child runs"
    );
    assert_eq!(
        status("after-exit"),
        "403",
        "refused once the child's process group is gone"
    );
    run.expect_code(0);
    let details = run.list("Results")[0]["ExceptionDetails"].to_string();
    assert!(
        details.contains("output was still open"),
        "the sibling held the output open while it asked: {details}"
    );
}

/// Makes 50 API calls with boto3, whose credentials come from the endpoint.
const BOTO3_FIFTY_CALLS: &str = r#"
import boto3, json
sts = boto3.client("sts")
accounts = {sts.get_caller_identity()["Account"] for _ in range(50)}
print(json.dumps(sorted(accounts)))
"#;

#[test]
fn a_boto3_child_in_the_last_fifteen_minutes_asks_the_endpoint_at_most_twice() {
    // The first credentials of the role expire in 14 minutes, as if they had aged: botocore
    // would ask its endpoint again on every call with them (it refreshes at 15 minutes left).
    let g = Ground::start(&["--first-assume-expiry-seconds", "840"]);
    let run =
        Run::of(python_in_root_a(&g, BOTO3_FIFTY_CALLS).env("COVE_LOG", "cove::endpoint=debug"));
    run.expect_code(0);
    let result = &run.list("Results")[0]["Result"];
    assert_eq!(
        result,
        &serde_json::json!([g.account("root-a")]),
        "{}",
        run.stderr
    );
    let served = run
        .stderr
        .matches("credential endpoint: served the account's credentials")
        .count();
    assert!(
        (1..=2).contains(&served),
        "50 calls made {served} endpoint requests"
    );
    let issued = g.issued();
    assert_eq!(issued.len(), 2, "renewed once: {issued:?}");
}

/// cove running a Python `script` in root-a, with its credentials from the endpoint.
fn python_in_root_a(g: &Ground, script: &str) -> Command {
    let mut cmd = g.cove();
    cmd.args([
        "--child-credentials",
        "endpoint",
        "-t",
        &g.account("root-a"),
        "--",
    ])
    .arg(venv().join("bin/python"))
    .args(["-c", script]);
    cmd
}

/// Fetches the credentials 20 times, as a busy child would, and prints every answer.
const FETCH_TWENTY: &str = r#"
import json, os, urllib.request
def fetch():
    request = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        headers={"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
    return json.load(urllib.request.urlopen(request, timeout=10))
print(json.dumps([fetch() for _ in range(20)]))
"#;

#[test]
fn many_requests_in_one_lifetime_make_one_assume_role_and_expiration_is_the_issued_expiry() {
    // 2,000 seconds: more than the 15 minutes cove keeps, and no default anyone would guess.
    let g = Ground::start(&["--assume-expiry-seconds", "2000"]);
    let run = Run::of(&mut python_in_root_a(&g, FETCH_TWENTY));
    run.expect_code(0);
    let fetched = run.list("Results")[0]["Result"].clone();
    let fetched = fetched.as_array().unwrap();
    assert_eq!(fetched.len(), 20);
    assert_eq!(
        g.calls("sts:AssumeRole"),
        1,
        "one AssumeRole for 20 requests"
    );
    let issued = g.issued();
    assert_eq!(issued.len(), 1);
    for answer in fetched {
        assert_eq!(answer["AccessKeyId"], issued[0]["AccessKeyId"]);
        assert_eq!(
            answer["Expiration"], issued[0]["Expiration"],
            "the expiry the ground issued"
        );
    }
}
