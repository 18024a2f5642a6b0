//! fake-aws: a small, fast, loopback-only stand-in for the STS and Organizations calls that
//! cove and botocove make, for benchmarks.
//!
//! STS speaks awsQuery (form-encoded POST, `Action=...`, XML answers); Organizations speaks
//! awsJson 1.1 (`X-Amz-Target: AWSOrganizationsV20161128.<Op>`, JSON both ways), paginated
//! at 20 like the real service. Every call waits `--latency-ms` (concurrently, on a tokio
//! timer) before it is answered, and `--throttle` answers that fraction of calls with the
//! service's own throttling error (`--throttle-for` sets it per service or operation).
//! `GetCallerIdentity` signed with credentials from `AssumeRole` names the assumed role in its
//! target account, as AWS (and moto) do. `GET /_fake/calls` returns the calls served so far.
//!
//! The first line on stdout is `{"endpoint": "http://127.0.0.1:PORT"}`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use tokio::net::TcpListener;

const CALLER_ACCOUNT: &str = "123456789012";
const CALLER_ARN: &str = "arn:aws:iam::123456789012:user/bench";
const CALLER_USER_ID: &str = "AIDABENCHBENCHBENCH01";
const ORG_ID: &str = "o-benchorg01";
const ROOT_ID: &str = "r-ab12";
const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const ORG_TARGET_PREFIX: &str = "AWSOrganizationsV20161128.";
/// The largest page Organizations hands out for the list calls used here.
const PAGE: usize = 20;

const USAGE: &str = "\
usage: fake-aws [--accounts N] [--ous-per-level K] [--depth D] [--ous N] [--latency-ms MS]
                [--throttle FRACTION] [--throttle-for KEY=FRACTION]... [--port PORT] [--seed N]
                [--max-seconds S] [--exit-on-stdin-eof]

  --accounts N          member accounts (default 50); the management account
                        123456789012 (the caller) is listed too, as in a real org
  --ous-per-level K     OUs under each parent (default 3)
  --depth D             levels of OUs below the root (default 2); 0 = no OUs.
                        Accounts are spread round-robin over the root and every OU
  --ous N               instead: a flat layout of N OUs under the root, the member
                        accounts round-robin over those N OUs only (none at the root)
  --latency-ms MS       delay before every AWS answer (default 50), concurrent
  --throttle FRACTION   answer this fraction of AWS calls with a throttling error
                        (STS: Throttling; Organizations: TooManyRequestsException)
  --throttle-for KEY=F  the fraction for one service (sts, organizations) or one
                        operation (sts:AssumeRole, organizations:ListAccounts); the most
                        specific KEY wins, then --throttle. Repeatable
  --port PORT           port on 127.0.0.1 (default 0: any free port)
  --seed N              seed for the throttling choice (default 1)
  --max-seconds S       exit after S seconds whatever happens (default 3600)
  --exit-on-stdin-eof   exit when stdin closes (so the fake dies with its parent)

Every account has one tag (ListTagsForResource): env=prod for every second account in listing
order, the management account first, and env=dev for the others.

The first stdout line is {\"endpoint\": \"http://127.0.0.1:PORT\"}.
GET /_fake/calls answers {\"calls\": {\"sts:AssumeRole\": n, ...}, \"throttled\": {...}, \"total\": n,
\"max_in_flight\": {\"sts:AssumeRole\": n, ...}} (the most calls of each operation served at once;
GET /_fake/reset-max-in-flight starts that count again).";

#[derive(Debug, Clone)]
struct Options {
    accounts: usize,
    ous_per_level: usize,
    depth: usize,
    /// `--ous N`: N OUs under the root, every member account in one of them.
    flat_ous: Option<usize>,
    latency: Duration,
    throttle: f64,
    /// `--throttle-for`: service (`sts`) or operation (`sts:AssumeRole`) to a fraction.
    throttle_for: HashMap<String, f64>,
    port: u16,
    seed: u64,
    max_seconds: u64,
    exit_on_stdin_eof: bool,
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("fake-aws: {msg}\n\n{USAGE}");
    std::process::exit(2);
}

fn parse_args() -> Options {
    let mut o = Options {
        accounts: 50,
        ous_per_level: 3,
        depth: 2,
        flat_ous: None,
        latency: Duration::from_millis(50),
        throttle: 0.0,
        throttle_for: HashMap::new(),
        port: 0,
        seed: 1,
        max_seconds: 3600,
        exit_on_stdin_eof: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> String {
            if let Some(v) = inline.clone() {
                return v;
            }
            let v = args
                .get(i)
                .cloned()
                .unwrap_or_else(|| die(format!("{key} needs a value")));
            i += 1;
            v
        };
        fn num<T: std::str::FromStr>(key: &str, v: String) -> T {
            v.parse()
                .unwrap_or_else(|_| die(format!("{key}: `{v}` is not a valid number")))
        }
        match key.as_str() {
            "--accounts" => o.accounts = num(&key, value()),
            "--ous-per-level" => o.ous_per_level = num(&key, value()),
            "--depth" => o.depth = num(&key, value()),
            "--latency-ms" => o.latency = Duration::from_millis(num(&key, value())),
            "--ous" => o.flat_ous = Some(num(&key, value())),
            "--throttle" => {
                o.throttle = num(&key, value());
                if !(0.0..=1.0).contains(&o.throttle) {
                    die("--throttle must be between 0 and 1");
                }
            }
            "--throttle-for" => {
                let v = value();
                let Some((what, fraction)) = v.split_once('=') else {
                    die(format!("--throttle-for: expected KEY=FRACTION, got `{v}`"));
                };
                if !matches!(what.split(':').next(), Some("sts" | "organizations")) {
                    die(format!(
                        "--throttle-for: `{what}` is neither sts, organizations, nor SERVICE:Operation"
                    ));
                }
                let fraction: f64 = num(&key, fraction.to_owned());
                if !(0.0..=1.0).contains(&fraction) {
                    die("--throttle-for: the fraction must be between 0 and 1");
                }
                o.throttle_for.insert(what.to_owned(), fraction);
            }
            "--port" => o.port = num(&key, value()),
            "--seed" => o.seed = num(&key, value()),
            "--max-seconds" => o.max_seconds = num(&key, value()),
            "--exit-on-stdin-eof" => o.exit_on_stdin_eof = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => die(format!("unknown argument `{other}`")),
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// The organization

struct Account {
    id: String,
    name: String,
    email: String,
    joined: f64,
    joined_method: &'static str,
}

struct Ou {
    id: String,
    name: String,
}

/// Direct children of one parent (the root or an OU), as indexes.
#[derive(Default)]
struct Children {
    ous: Vec<usize>,
    accounts: Vec<usize>,
}

struct Org {
    accounts: Vec<Account>,
    ous: Vec<Ou>,
    children: HashMap<String, Children>,
}

impl Org {
    /// `--ous N`: N OUs under the root and the member accounts spread over them only.
    fn build_flat(members: usize, ous: usize) -> Org {
        Org::build_tree(members, ous, 1, ous == 0)
    }

    fn build(members: usize, ous_per_level: usize, depth: usize) -> Org {
        Org::build_tree(members, ous_per_level, depth, true)
    }

    /// OUs `ous_per_level` under every parent, `depth` levels deep; member accounts
    /// round-robin over every OU, and over the root too when `members_at_root`.
    fn build_tree(
        members: usize,
        ous_per_level: usize,
        depth: usize,
        members_at_root: bool,
    ) -> Org {
        let mut ous = Vec::new();
        let mut children: HashMap<String, Children> = HashMap::new();
        children.insert(ROOT_ID.to_owned(), Children::default());
        let mut level = vec![ROOT_ID.to_owned()];
        for d in 1..=depth {
            let mut next = Vec::new();
            for parent in &level {
                for k in 0..ous_per_level {
                    let n = ous.len() + 1;
                    let id = format!("ou-ab12-{n:08x}");
                    ous.push(Ou {
                        id: id.clone(),
                        name: format!("bench-ou-l{d}-{k}-{n}"),
                    });
                    children.get_mut(parent).unwrap().ous.push(n - 1);
                    children.insert(id.clone(), Children::default());
                    next.push(id);
                }
            }
            level = next;
        }
        let parents: Vec<String> = std::iter::once(ROOT_ID.to_owned())
            .filter(|_| members_at_root)
            .chain(ous.iter().map(|o| o.id.clone()))
            .collect();

        let mut accounts = Vec::with_capacity(members + 1);
        accounts.push(Account {
            id: CALLER_ACCOUNT.to_owned(),
            name: "bench-management".to_owned(),
            email: "management@bench.example.com".to_owned(),
            joined: 1_500_000_000.25,
            joined_method: "INVITED",
        });
        children.get_mut(ROOT_ID).unwrap().accounts.push(0);
        for i in 0..members {
            let id = format!("{:012}", 200_000_000_000u64 + i as u64);
            accounts.push(Account {
                name: format!("bench-account-{i:05}"),
                email: format!("aws+bench-{i:05}@bench.example.com"),
                id,
                joined: 1_600_000_000.0 + i as f64 * 3600.0 + 0.123,
                joined_method: "CREATED",
            });
            let parent = &parents[i % parents.len()];
            children.get_mut(parent).unwrap().accounts.push(i + 1);
        }
        Org {
            accounts,
            ous,
            children,
        }
    }

    fn account_json(&self, index: usize) -> Value {
        let a = &self.accounts[index];
        json!({
            "Id": a.id,
            "Arn": format!("arn:aws:organizations::{CALLER_ACCOUNT}:account/{ORG_ID}/{}", a.id),
            "Email": a.email,
            "Name": a.name,
            "Status": "ACTIVE",
            "State": "ACTIVE",
            "JoinedMethod": a.joined_method,
            "JoinedTimestamp": a.joined,
        })
    }

    fn ou_json(&self, index: usize) -> Value {
        let o = &self.ous[index];
        json!({
            "Id": o.id,
            "Arn": format!("arn:aws:organizations::{CALLER_ACCOUNT}:ou/{ORG_ID}/{}", o.id),
            "Name": o.name,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state

struct State {
    opts: Options,
    org: Org,
    calls: Mutex<BTreeMap<String, u64>>,
    throttled: Mutex<BTreeMap<String, u64>>,
    /// Calls being served right now, and the most ever served at once, by operation.
    in_flight: Mutex<BTreeMap<String, (u64, u64)>>,
    sequence: AtomicU64,
    /// Access key IDs handed out by AssumeRole, to whom they belong (for GetCallerIdentity).
    sessions: Mutex<HashMap<String, Identity>>,
}

/// Who a GetCallerIdentity call is from.
#[derive(Clone)]
struct Identity {
    account: String,
    arn: String,
    user_id: String,
}

/// Counts one call in flight for as long as it lives.
struct InFlight<'a> {
    state: &'a State,
    key: &'a str,
}

impl<'a> InFlight<'a> {
    fn enter(state: &'a State, key: &'a str) -> Self {
        let mut m = state.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let entry = m.entry(key.to_owned()).or_insert((0, 0));
        entry.0 += 1;
        entry.1 = entry.1.max(entry.0);
        InFlight { state, key }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut m = self
            .state
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = m.get_mut(self.key) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl State {
    fn next(&self) -> u64 {
        splitmix64(self.sequence.fetch_add(1, Ordering::Relaxed) ^ self.opts.seed.rotate_left(32))
    }

    fn request_id(&self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }

    /// The throttled fraction for `key` (`sts:AssumeRole`): the operation's, its service's, or
    /// `--throttle`.
    fn throttle_fraction(&self, key: &str) -> f64 {
        let service = key.split(':').next().unwrap_or(key);
        let o = &self.opts;
        o.throttle_for
            .get(key)
            .or_else(|| o.throttle_for.get(service))
            .copied()
            .unwrap_or(o.throttle)
    }

    fn should_throttle(&self, key: &str) -> bool {
        let fraction = self.throttle_fraction(key);
        fraction > 0.0 && ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < fraction
    }

    fn count(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
        let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                m.insert(key.to_owned(), 1);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Time

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2024-05-01T12:34:56Z`, as STS writes `Expiration`.
fn iso8601(epoch_secs: u64) -> String {
    let days = (epoch_secs / 86_400) as i64;
    let rem = epoch_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Responses

type Resp = Response<Full<Bytes>>;

fn response(status: StatusCode, content_type: &str, request_id: &str, body: String) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-RequestId", request_id)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn sts_error(state: &State, status: StatusCode, kind: &str, code: &str, message: &str) -> Resp {
    let rid = state.request_id();
    let body = format!(
        "<ErrorResponse xmlns=\"{STS_NS}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{rid}</RequestId>\n</ErrorResponse>\n",
        xml_escape(message)
    );
    response(status, "text/xml", &rid, body)
}

fn org_error(state: &State, code: &str, message: &str) -> Resp {
    let rid = state.request_id();
    let body = json!({ "__type": code, "Message": message }).to_string();
    response(
        StatusCode::BAD_REQUEST,
        "application/x-amz-json-1.1",
        &rid,
        body,
    )
}

fn org_ok(state: &State, body: Value) -> Resp {
    let rid = state.request_id();
    response(
        StatusCode::OK,
        "application/x-amz-json-1.1",
        &rid,
        body.to_string(),
    )
}

/// The access key ID of a SigV4-signed request (`Credential=AKID/date/region/service/...`).
fn access_key_id(headers: &hyper::HeaderMap) -> Option<&str> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split('/').next()
}

/// The caller (the management account's user), or the assumed role whose access key signed
/// the call, as AWS answers after AssumeRole.
fn sts_get_caller_identity(state: &State, access_key: Option<&str>) -> Resp {
    let assumed = access_key.and_then(|key| {
        let sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(key).cloned()
    });
    let (arn, user_id, account) = match &assumed {
        Some(who) => (
            xml_escape(&who.arn),
            xml_escape(&who.user_id),
            who.account.as_str(),
        ),
        None => (
            CALLER_ARN.to_owned(),
            CALLER_USER_ID.to_owned(),
            CALLER_ACCOUNT,
        ),
    };
    let rid = state.request_id();
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"{STS_NS}\">\n  <GetCallerIdentityResult>\n    <Arn>{arn}</Arn>\n    <UserId>{user_id}</UserId>\n    <Account>{account}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{rid}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n"
    );
    response(StatusCode::OK, "text/xml", &rid, body)
}

fn sts_assume_role(state: &State, params: &HashMap<String, String>) -> Resp {
    let Some(role_arn) = params.get("RoleArn") else {
        return sts_error(state, StatusCode::BAD_REQUEST, "Sender", "ValidationError",
            "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null");
    };
    let Some(session) = params.get("RoleSessionName") else {
        return sts_error(state, StatusCode::BAD_REQUEST, "Sender", "ValidationError",
            "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null");
    };
    // arn:PARTITION:iam::ACCOUNT:role/PATH/NAME
    let fields: Vec<&str> = role_arn.splitn(6, ':').collect();
    let valid = fields.len() == 6
        && fields[0] == "arn"
        && fields[2] == "iam"
        && fields[4].len() == 12
        && fields[4].bytes().all(|b| b.is_ascii_digit())
        && fields[5].starts_with("role/");
    if !valid {
        return sts_error(
            state,
            StatusCode::BAD_REQUEST,
            "Sender",
            "ValidationError",
            &format!("{role_arn} is invalid"),
        );
    }
    let (partition, account) = (fields[1], fields[4]);
    let role_name = fields[5].rsplit('/').next().unwrap_or("role");
    let duration: u64 = params
        .get("DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(3600);
    let expiration = iso8601(now_secs() + duration);
    let (k1, k2, k3) = (state.next(), state.next(), state.next());
    let access_key_id = format!("ASIA{:016X}", k1);
    let secret = format!("{:016x}{:016x}{:08x}", k2, k3, k1 as u32);
    // Real session tokens are several hundred characters; size matters for parse and env cost.
    let mut token = String::with_capacity(900);
    token.push_str("IQoJb3JpZ2luX2VjEBenchFakeToken");
    for _ in 0..48 {
        token.push_str(&format!("{:016x}", state.next()));
    }
    token.push_str(account);
    let role_id = format!("AROA{:016X}", splitmix64(k1 ^ 0x5a5a));
    state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            access_key_id.clone(),
            Identity {
                account: account.to_owned(),
                arn: format!("arn:{partition}:sts::{account}:assumed-role/{role_name}/{session}"),
                user_id: format!("{role_id}:{session}"),
            },
        );
    let rid = state.request_id();
    let session = xml_escape(session);
    let body = format!(
        "<AssumeRoleResponse xmlns=\"{STS_NS}\">\n  <AssumeRoleResult>\n    <AssumedRoleUser>\n      <AssumedRoleId>{role_id}:{session}</AssumedRoleId>\n      <Arn>arn:{partition}:sts::{account}:assumed-role/{role}/{session}</Arn>\n    </AssumedRoleUser>\n    <Credentials>\n      <AccessKeyId>{access_key_id}</AccessKeyId>\n      <SecretAccessKey>{secret}</SecretAccessKey>\n      <SessionToken>{token}</SessionToken>\n      <Expiration>{expiration}</Expiration>\n    </Credentials>\n  </AssumeRoleResult>\n  <ResponseMetadata>\n    <RequestId>{rid}</RequestId>\n  </ResponseMetadata>\n</AssumeRoleResponse>\n",
        role = xml_escape(role_name),
    );
    response(StatusCode::OK, "text/xml", &rid, body)
}

/// Applies `MaxResults` (1..=20) and `NextToken` to `len` items: the range to return and the
/// next token, or an InvalidInputException message.
fn page(
    body: &Value,
    len: usize,
    op: &str,
) -> Result<(std::ops::Range<usize>, Option<String>), String> {
    let max = match body.get("MaxResults") {
        None | Some(Value::Null) => PAGE,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=PAGE as u64).contains(&n) => n as usize,
            _ => return Err(format!("1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {PAGE}")),
        },
    };
    let start = match body.get("NextToken") {
        None | Some(Value::Null) => 0,
        Some(Value::String(t)) => {
            let prefix = format!("bench-{op}-");
            match t.strip_prefix(&prefix).and_then(|n| n.parse::<usize>().ok()) {
                Some(n) if n <= len => n,
                _ => return Err("You specified an invalid value for nextToken. You must get the value from the response to a previous call to the API.".to_owned()),
            }
        }
        Some(_) => return Err("NextToken must be a string".to_owned()),
    };
    let end = (start + max).min(len);
    let next = (end < len).then(|| format!("bench-{op}-{end}"));
    Ok((start..end, next))
}

fn with_token(mut body: Value, next: Option<String>) -> Value {
    if let Some(t) = next {
        body["NextToken"] = Value::String(t);
    }
    body
}

fn org_call(state: &State, op: &str, raw: &[u8]) -> Resp {
    let body: Value = if raw.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(_) => {
                return org_error(
                    state,
                    "SerializationException",
                    "Start of structure or map found where not expected.",
                )
            }
        }
    };
    let org = &state.org;
    let parent = |body: &Value| -> Option<&Children> {
        let id = body.get("ParentId").and_then(Value::as_str).unwrap_or("");
        org.children.get(id)
    };
    let parent_not_found = || {
        org_error(
            state,
            "ParentNotFoundException",
            "We can't find a root or OU with the ParentId that you specified.",
        )
    };
    let invalid = |m: String| org_error(state, "InvalidInputException", &m);
    match op {
        "DescribeOrganization" => org_ok(
            state,
            json!({
                "Organization": {
                    "Id": ORG_ID,
                    "Arn": format!("arn:aws:organizations::{CALLER_ACCOUNT}:organization/{ORG_ID}"),
                    "FeatureSet": "ALL",
                    "MasterAccountArn": format!("arn:aws:organizations::{CALLER_ACCOUNT}:account/{ORG_ID}/{CALLER_ACCOUNT}"),
                    "MasterAccountId": CALLER_ACCOUNT,
                    "MasterAccountEmail": "management@bench.example.com",
                    "AvailablePolicyTypes": [{"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"}],
                }
            }),
        ),
        "ListRoots" => org_ok(
            state,
            json!({
                "Roots": [{
                    "Id": ROOT_ID,
                    "Arn": format!("arn:aws:organizations::{CALLER_ACCOUNT}:root/{ORG_ID}/{ROOT_ID}"),
                    "Name": "Root",
                    "PolicyTypes": [{"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"}],
                }]
            }),
        ),
        "DescribeAccount" => {
            let id = body.get("AccountId").and_then(Value::as_str).unwrap_or("");
            match org.accounts.iter().position(|a| a.id == id) {
                Some(i) => org_ok(state, json!({ "Account": org.account_json(i) })),
                None if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) => org_error(
                    state,
                    "AccountNotFoundException",
                    "You specified an account that doesn't exist.",
                ),
                None => invalid(format!(
                    "1 validation error detected: Value '{id}' at 'accountId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^\\d{{12}}$"
                )),
            }
        }
        "ListAccounts" => match page(&body, org.accounts.len(), "ListAccounts") {
            Ok((range, next)) => {
                let accounts: Vec<Value> = range.map(|i| org.account_json(i)).collect();
                org_ok(state, with_token(json!({ "Accounts": accounts }), next))
            }
            Err(m) => invalid(m),
        },
        "ListAccountsForParent" => match parent(&body) {
            Some(children) => match page(&body, children.accounts.len(), "ListAccountsForParent") {
                Ok((range, next)) => {
                    let accounts: Vec<Value> = children.accounts[range]
                        .iter()
                        .map(|&i| org.account_json(i))
                        .collect();
                    org_ok(state, with_token(json!({ "Accounts": accounts }), next))
                }
                Err(m) => invalid(m),
            },
            None => parent_not_found(),
        },
        "ListOrganizationalUnitsForParent" => match parent(&body) {
            Some(children) => match page(
                &body,
                children.ous.len(),
                "ListOrganizationalUnitsForParent",
            ) {
                Ok((range, next)) => {
                    let ous: Vec<Value> = children.ous[range]
                        .iter()
                        .map(|&i| org.ou_json(i))
                        .collect();
                    org_ok(
                        state,
                        with_token(json!({ "OrganizationalUnits": ous }), next),
                    )
                }
                Err(m) => invalid(m),
            },
            None => parent_not_found(),
        },
        "ListChildren" => match parent(&body) {
            Some(children) => {
                let kind = body.get("ChildType").and_then(Value::as_str).unwrap_or("");
                let ids: Vec<&str> = match kind {
                    "ACCOUNT" => children.accounts.iter().map(|&i| org.accounts[i].id.as_str()).collect(),
                    "ORGANIZATIONAL_UNIT" => children.ous.iter().map(|&i| org.ous[i].id.as_str()).collect(),
                    _ => return invalid(format!("1 validation error detected: Value '{kind}' at 'childType' failed to satisfy constraint: Member must satisfy enum value set: [ACCOUNT, ORGANIZATIONAL_UNIT]")),
                };
                match page(&body, ids.len(), &format!("ListChildren{kind}")) {
                    Ok((range, next)) => {
                        let list: Vec<Value> = ids[range]
                            .iter()
                            .map(|id| json!({"Id": id, "Type": kind}))
                            .collect();
                        org_ok(state, with_token(json!({ "Children": list }), next))
                    }
                    Err(m) => invalid(m),
                }
            }
            None => parent_not_found(),
        },
        // Every account has one tag: env=prod for every second account in listing order
        // (the management account first), env=dev for the others (bench W9's --filter-tag).
        "ListTagsForResource" => {
            let id = body.get("ResourceId").and_then(Value::as_str).unwrap_or("");
            match org.accounts.iter().position(|a| a.id == id) {
                Some(i) => {
                    let env = if i % 2 == 0 { "prod" } else { "dev" };
                    org_ok(state, json!({ "Tags": [{"Key": "env", "Value": env}] }))
                }
                None => org_error(
                    state,
                    "TargetNotFoundException",
                    "You specified a target that doesn't exist.",
                ),
            }
        }
        _ => org_error(
            state,
            "UnknownOperationException",
            &format!("The action or operation {op} is not supported by this fake"),
        ),
    }
}

enum Call {
    Sts(String, HashMap<String, String>),
    Org(String),
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();

    if parts.method == Method::GET {
        return Ok(match parts.uri.path() {
            "/_fake/calls" => {
                let calls = state
                    .calls
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let throttled = state
                    .throttled
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let total: u64 = calls.values().sum();
                let peak: BTreeMap<String, u64> = state
                    .in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(k, v)| (k.clone(), v.1))
                    .collect();
                response(StatusCode::OK, "application/json", "-",
                    json!({"calls": calls, "throttled": throttled, "total": total, "max_in_flight": peak}).to_string())
            }
            "/_fake/reset-max-in-flight" => {
                let mut m = state.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                for v in m.values_mut() {
                    v.1 = v.0;
                }
                response(
                    StatusCode::OK,
                    "application/json",
                    "-",
                    "{\"ok\": true}".to_owned(),
                )
            }
            "/_fake/health" => response(
                StatusCode::OK,
                "application/json",
                "-",
                "{\"ok\": true}".to_owned(),
            ),
            _ => response(
                StatusCode::NOT_FOUND,
                "text/plain",
                "-",
                "not found\n".to_owned(),
            ),
        });
    }

    let access_key = access_key_id(&parts.headers).map(str::to_owned);
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let call = match target {
        Some(t) => match t.strip_prefix(ORG_TARGET_PREFIX) {
            Some(op) => Call::Org(op.to_owned()),
            None => {
                return Ok(org_error(
                    &state,
                    "UnknownOperationException",
                    &format!("unknown target {t}"),
                ));
            }
        },
        None => {
            let mut params: HashMap<String, String> =
                form_urlencoded::parse(&body).into_owned().collect();
            if let Some(q) = parts.uri.query() {
                for (k, v) in form_urlencoded::parse(q.as_bytes()).into_owned() {
                    params.entry(k).or_insert(v);
                }
            }
            match params.get("Action").cloned() {
                Some(action) => Call::Sts(action, params),
                None => {
                    return Ok(sts_error(
                        &state,
                        StatusCode::BAD_REQUEST,
                        "Sender",
                        "MissingAction",
                        "Missing Action",
                    ));
                }
            }
        }
    };
    let key = match &call {
        Call::Sts(action, _) => format!("sts:{action}"),
        Call::Org(op) => format!("organizations:{op}"),
    };
    State::count(&state.calls, &key);
    let _in_flight = InFlight::enter(&state, &key);

    if !state.opts.latency.is_zero() {
        tokio::time::sleep(state.opts.latency).await;
    }

    if state.should_throttle(&key) {
        State::count(&state.throttled, &key);
        return Ok(match call {
            Call::Sts(..) => sts_error(&state, StatusCode::BAD_REQUEST, "Sender", "Throttling", "Rate exceeded"),
            Call::Org(_) => org_error(&state, "TooManyRequestsException",
                "AWS Organizations can't complete your request because another request is already in progress. Try again later."),
        });
    }

    Ok(match call {
        Call::Sts(action, params) => match action.as_str() {
            "GetCallerIdentity" => sts_get_caller_identity(&state, access_key.as_deref()),
            "AssumeRole" => sts_assume_role(&state, &params),
            other => sts_error(
                &state,
                StatusCode::BAD_REQUEST,
                "Sender",
                "InvalidAction",
                &format!("Could not find operation {other} for version 2011-06-15"),
            ),
        },
        Call::Org(op) => org_call(&state, &op, &body),
    })
}

fn main() {
    let opts = parse_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(format!("cannot start the runtime: {e}")));
    runtime.block_on(serve(opts));
    std::process::exit(0);
}

async fn serve(opts: Options) {
    let listener = TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .unwrap_or_else(|e| die(format!("cannot listen on 127.0.0.1:{}: {e}", opts.port)));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(opts.port);
    let org = match opts.flat_ous {
        Some(n) => Org::build_flat(opts.accounts, n),
        None => Org::build(opts.accounts, opts.ous_per_level, opts.depth),
    };
    eprintln!(
        "fake-aws: 127.0.0.1:{port}: {} member accounts + the management account, {} OUs, latency {} ms, throttle {} {:?}, exits after {} s",
        opts.accounts,
        org.ous.len(),
        opts.latency.as_millis(),
        opts.throttle,
        opts.throttle_for,
        opts.max_seconds
    );
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{{\"endpoint\": \"http://127.0.0.1:{port}\"}}");
        let _ = out.flush();
    }
    if opts.exit_on_stdin_eof {
        std::thread::spawn(|| {
            let mut buf = [0u8; 256];
            loop {
                match std::io::Read::read(&mut std::io::stdin(), &mut buf) {
                    Ok(0) | Err(_) => {
                        eprintln!("fake-aws: stdin closed; exiting");
                        std::process::exit(0);
                    }
                    Ok(_) => {}
                }
            }
        });
    }
    let max = Duration::from_secs(opts.max_seconds);
    let state = Arc::new(State {
        opts,
        org,
        calls: Mutex::new(BTreeMap::new()),
        throttled: Mutex::new(BTreeMap::new()),
        in_flight: Mutex::new(BTreeMap::new()),
        sequence: AtomicU64::new(0),
        sessions: Mutex::new(HashMap::new()),
    });
    let accept = async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("fake-aws: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(state.clone(), req));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = tokio::time::sleep(max) => eprintln!("fake-aws: --max-seconds reached; exiting"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn pages() {
        let (r, n) = page(&json!({}), 45, "X").unwrap();
        assert_eq!((r, n.as_deref()), (0..20, Some("bench-X-20")));
        let (r, n) = page(&json!({"NextToken": "bench-X-40"}), 45, "X").unwrap();
        assert_eq!((r, n), (40..45, None));
        assert!(page(&json!({"MaxResults": 21}), 45, "X").is_err());
        assert!(page(&json!({"NextToken": "nope"}), 45, "X").is_err());
    }

    #[test]
    fn flat_org() {
        let org = Org::build_flat(5000, 50);
        assert_eq!(org.ous.len(), 50);
        let root = &org.children[ROOT_ID];
        assert_eq!((root.ous.len(), root.accounts.len()), (50, 1));
        for ou in &org.ous {
            assert_eq!(org.children[&ou.id].accounts.len(), 100);
        }
    }

    #[test]
    fn access_key_of_a_signed_call() {
        let mut h = hyper::HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=ASIAXYZ/20240101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=ab"
                .parse()
                .unwrap(),
        );
        assert_eq!(access_key_id(&h), Some("ASIAXYZ"));
        assert_eq!(access_key_id(&hyper::HeaderMap::new()), None);
    }

    #[test]
    fn org_tree() {
        let org = Org::build(100, 3, 2);
        assert_eq!(org.ous.len(), 12);
        assert_eq!(org.accounts.len(), 101);
        let listed: usize = org.children.values().map(|c| c.accounts.len()).sum();
        assert_eq!(listed, 101);
    }
}
