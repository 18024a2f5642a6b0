//! The credential endpoint of `--child-credentials endpoint`: an HTTP server on 127.0.0.1 that
//! speaks the container-credentials protocol every AWS SDK and the AWS CLI understand
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI` plus `AWS_CONTAINER_AUTHORIZATION_TOKEN`). A child
//! that runs longer than its session asks again and gets the account's renewed credentials.
//!
//! Each running target holds a [`Grant`]: its own path (`/credentials/<random id>`, as ECS gives
//! each task its own) and a random token of 256 bits, valid together and only while its child's
//! process group lives. A request without both gets the same 403 whatever it sent, so it learns
//! nothing about the targets. Paths and tokens are compared in constant time, and neither tokens
//! nor credentials are ever logged.
//!
//! The server is a deliberately small HTTP/1.1 responder: one `GET` per connection, a bounded
//! request head read under a short timeout, `Connection: close`. Any local process can connect
//! to it, so it holds up under a flood: every connection is accepted, at most
//! [`connection_cap`] of them may wait for their request head, and at the cap the oldest waiting
//! one is dropped. A child's SDK sends its head in one packet as soon as it connects, so it never
//! waits behind idle connections.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedRwLockReadGuard, OwnedSemaphorePermit, RwLock, Semaphore, oneshot};
use tokio::task::JoinSet;

use crate::aws::{Aws, TempCredentials};
use crate::child_env::{self, Delivery};
use crate::credentials::CredentialCache;
use crate::secret::Secret;

/// Where credentials are served: each target has its own path below it.
pub const PATH: &str = "/credentials/";
/// The largest request head accepted; SDKs send a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client gets to send its request head after it connected: SDKs send it at once,
/// in one packet.
const HEAD_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a client gets to read the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections that may wait for their request head at once, at most (fewer under a low
/// open-file limit); at the cap the oldest is dropped.
const MAX_WAITING: usize = 256;
const MIN_WAITING: usize = 16;
/// Connections the kernel completes before they are accepted.
const BACKLOG: u32 = 1024;
/// The one answer to a request without a valid token, whatever it sent.
const FORBIDDEN: &str =
    r#"{"code":"AccessDenied","message":"missing or invalid authorization token"}"#;

/// Starts the endpoint when the run hands credentials to children through it.
pub fn serve<A: Aws>(
    delivery: Delivery,
    creds: &Arc<CredentialCache<A>>,
) -> anyhow::Result<Option<Arc<Endpoint>>> {
    match delivery {
        Delivery::Env => Ok(None),
        Delivery::Endpoint => Endpoint::start(creds.clone()).map(|e| Some(Arc::new(e))),
    }
}

/// How many connections may wait for their request head at once under an open-file limit of
/// `open_files`: a quarter of it, between 16 and 256. `process::fit_workers` sets them aside.
pub fn connection_cap(open_files: u64) -> usize {
    usize::try_from(open_files / 4)
        .unwrap_or(usize::MAX)
        .clamp(MIN_WAITING, MAX_WAITING)
}

/// The process's open-file limit now (its soft limit).
fn open_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// The running endpoint. Dropping it stops the server and every connection.
pub struct Endpoint {
    /// `http://127.0.0.1:PORT`, without a path.
    base: Arc<str>,
    /// The address the listener is bound to, as the socket reports it.
    local_addr: SocketAddr,
    grants: Arc<Grants>,
    server: tokio::task::AbortHandle,
}

impl Endpoint {
    /// Binds a random port on 127.0.0.1 and serves `creds` from it. Needs a tokio runtime.
    pub fn start<A: Aws>(creds: Arc<CredentialCache<A>>) -> anyhow::Result<Endpoint> {
        let listener =
            bind_loopback().context("could not open the credential endpoint on 127.0.0.1")?;
        let local_addr = listener.local_addr()?;
        let grants = Arc::new(Grants::default());
        let cap = connection_cap(open_file_limit());
        let server = tokio::spawn(accept_loop(listener, grants.clone(), creds, cap)).abort_handle();
        Ok(Endpoint {
            base: format!("http://127.0.0.1:{}", local_addr.port()).into(),
            local_addr,
            grants,
            server,
        })
    }

    /// The address the server listens on: 127.0.0.1 and a random port.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A new path and token for one target in `account_id`, valid together until the grant
    /// ends, is revoked or is dropped.
    pub fn grant(&self, account_id: &str) -> anyhow::Result<Grant> {
        let token = Secret::new(random_hex::<32>()?);
        let path = format!("{PATH}{}", random_hex::<16>()?);
        let in_flight = Arc::new(RwLock::new(()));
        let id = self.grants.add(Entry {
            token: token.clone(),
            path: path.clone(),
            account_id: account_id.to_owned(),
            in_flight: in_flight.clone(),
        });
        Ok(Grant {
            id,
            token,
            uri: format!("{}{path}", self.base),
            grants: self.grants.clone(),
            in_flight,
        })
    }
}

/// A listening socket on 127.0.0.1, a random port, with a backlog of [`BACKLOG`].
fn bind_loopback() -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    socket.listen(BACKLOG)
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `N` random bytes from the operating system, as hex digits: a token has 32 (256 bits), a
/// path 16.
fn random_hex<const N: usize>() -> anyhow::Result<String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for a credential endpoint token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// One target's right to ask for its account's credentials while its child runs: its own
/// path and token.
pub struct Grant {
    id: u64,
    token: Secret,
    uri: String,
    grants: Arc<Grants>,
    in_flight: Arc<RwLock<()>>,
}

impl Grant {
    pub fn token(&self) -> &Secret {
        &self.token
    }

    /// The target's own URI, for `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Ends the token at once: no request is let in from now on. Called the moment the child's
    /// process group is gone, before its output is waited for.
    pub fn end(&self) {
        self.grants.remove(self.id);
    }

    /// Ends the token and waits for the requests it already let in, so no lookup of the
    /// account's credentials runs after the target is done (the cache drops an account's
    /// credentials after its last target).
    pub async fn revoke(self) {
        self.end();
        drop(self.in_flight.write().await);
    }
}

impl Drop for Grant {
    /// Ends the token on every path, including a panic or an aborted target.
    fn drop(&mut self) {
        self.grants.remove(self.id);
    }
}

struct Entry {
    token: Secret,
    /// The target's own path, `/credentials/<random id>`.
    path: String,
    account_id: String,
    /// Held for reading by each request this token let in, until its lookup is done.
    in_flight: Arc<RwLock<()>>,
}

/// The tokens that are valid now.
#[derive(Default)]
struct Grants {
    entries: Mutex<HashMap<u64, Entry>>,
    next_id: AtomicU64,
}

impl Grants {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, entry: Entry) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.entries().insert(id, entry);
        id
    }

    fn remove(&self, id: u64) -> Option<Entry> {
        self.entries().remove(&id)
    }

    /// The account of the target whose path and token both were presented, with a hold that
    /// keeps a revocation waiting until the lookup is done. A token works on its own target's
    /// path only. Every valid grant is compared, in constant time, so timing tells nothing
    /// about which one matched or how close a guess came.
    fn authorize(&self, path: &str, presented: &str) -> Option<(String, OwnedRwLockReadGuard<()>)> {
        let entries = self.entries();
        let mut found = None;
        for entry in entries.values() {
            let same_path = entry.path.as_bytes().ct_eq(path.as_bytes());
            let same_token = entry.token.expose().as_bytes().ct_eq(presented.as_bytes());
            if bool::from(same_path & same_token) {
                found = Some(entry);
            }
        }
        let entry = found?;
        let hold = entry.in_flight.clone().try_read_owned().ok()?;
        Some((entry.account_id.clone(), hold))
    }
}

/// Connections that have not sent a complete request head yet, oldest first. Each holds a slot
/// of the cap; dropping one from here (its sender) makes its task close it.
#[derive(Default)]
struct Waiting {
    queue: std::sync::Mutex<BTreeMap<u64, oneshot::Sender<()>>>,
}

impl Waiting {
    fn queue(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, oneshot::Sender<()>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the oldest waiting connection; false when none waits.
    fn drop_oldest(&self) -> bool {
        let oldest = self.queue().pop_first();
        if oldest.is_some() {
            tracing::trace!(
                "credential endpoint: dropped the oldest connection still without a request"
            );
        }
        oldest.is_some()
    }
}

/// A connection's place among the waiting ones; leaving it frees the slot.
struct Place {
    seq: u64,
    waiting: Arc<Waiting>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.waiting.queue().remove(&self.seq);
    }
}

/// Accepts every connection. At most `cap` may wait for their request head; for one more, the
/// oldest waiting is closed first (a flood of idle connections cannot crowd out a child, whose
/// SDK sends its request as it connects).
async fn accept_loop<A: Aws>(
    listener: TcpListener,
    grants: Arc<Grants>,
    creds: Arc<CredentialCache<A>>,
    cap: usize,
) {
    let slots = Arc::new(Semaphore::new(cap));
    let waiting = Arc::new(Waiting::default());
    let mut connections = JoinSet::new();
    let mut seq = 0u64;
    loop {
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors, for example: free the oldest idle connection, or wait
                // shortly rather than spin.
                if !waiting.drop_oldest() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        let slot = loop {
            if let Ok(slot) = slots.clone().try_acquire_owned() {
                break slot;
            }
            waiting.drop_oldest();
            // The dropped connection's task closes it and frees its slot as soon as it runs.
            let freed =
                tokio::time::timeout(Duration::from_millis(100), slots.clone().acquire_owned());
            if let Ok(Ok(slot)) = freed.await {
                break slot;
            }
        };
        seq += 1;
        let (evict, evicted) = oneshot::channel();
        waiting.queue().insert(seq, evict);
        let place = Place {
            seq,
            waiting: waiting.clone(),
            _slot: slot,
        };
        let (grants, creds) = (grants.clone(), creds.clone());
        connections.spawn(async move {
            serve_connection(stream, place, evicted, &grants, &creds).await;
        });
    }
}

/// One request, one answer, then the connection closes. While it waits for its request head
/// it holds `place`; it closes at once when `evicted` fires (it was the oldest waiting).
async fn serve_connection<A: Aws>(
    mut stream: TcpStream,
    place: Place,
    evicted: oneshot::Receiver<()>,
    grants: &Grants,
    creds: &CredentialCache<A>,
) {
    let head = tokio::select! {
        biased;
        _ = evicted => None,
        head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)) => head.ok(),
    };
    let Some(head) = head else {
        // Closed before the slot is freed, so the descriptors stay within the cap.
        drop(stream);
        drop(place);
        return;
    };
    drop(place);
    let response = match head {
        Some(head) => answer(&head, grants, creds).await,
        None => Response::new(400, r#"{"code":"BadRequest","message":"bad request"}"#),
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response.to_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// The request head, up to the blank line; `None` when it is too long or the client left.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            if end > MAX_HEAD {
                return None;
            }
            head.truncate(end);
            return String::from_utf8(head).ok();
        }
        if head.len() > MAX_HEAD {
            return None;
        }
    }
}

/// A request head reduced to what the endpoint looks at.
#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    authorization: Option<&'a str>,
}

/// Parses a request head; `None` when it is not HTTP/1.x or names `Authorization` twice.
fn parse(head: &str) -> Option<Request<'_>> {
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target, version) = (
        request_line.next()?,
        request_line.next()?,
        request_line.next()?,
    );
    if request_line.next().is_some() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let mut authorization = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("authorization")
            && authorization.replace(value.trim()).is_some()
        {
            return None;
        }
    }
    let path = target.split('?').next().unwrap_or(target);
    Some(Request {
        method,
        path,
        authorization,
    })
}

/// The answer to one request head: the path and token first, so an unauthorized caller learns
/// nothing, not even which paths exist.
async fn answer<A: Aws>(head: &str, grants: &Grants, creds: &CredentialCache<A>) -> Response {
    let Some(request) = parse(head) else {
        return Response::new(400, r#"{"code":"BadRequest","message":"bad request"}"#);
    };
    let authorized = request
        .authorization
        .and_then(|token| grants.authorize(request.path, token));
    let Some((account_id, hold)) = authorized else {
        tracing::trace!("credential endpoint: refused a request without a valid path and token");
        return Response::new(403, FORBIDDEN);
    };
    if request.method != "GET" {
        return Response::new(405, r#"{"code":"MethodNotAllowed","message":"GET only"}"#);
    }
    let assumed = creds.get(&account_id).await;
    drop(hold);
    match assumed {
        Ok(temp) => {
            tracing::debug!(
                account = %account_id,
                "credential endpoint: served the account's credentials"
            );
            Response::new(200, credentials_body(&temp.creds, &account_id))
        }
        Err(err) => {
            let message = format!("cove could not renew the account's credentials: {err}");
            let body = serde_json::json!({"code": "CredentialsUnavailable", "message": message});
            Response::new(500, body.to_string())
        }
    }
}

/// The container-credentials answer (the ECS shape); `AccountId` is read by botocore and the
/// Rust SDK for account-based endpoints.
fn credentials_body(creds: &TempCredentials, account_id: &str) -> String {
    serde_json::json!({
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key.expose(),
        "Token": creds.session_token.expose(),
        "Expiration": child_env::iso8601(creds.expiration),
        "AccountId": account_id,
    })
    .to_string()
}

/// A JSON answer. No `Debug`: a 200's body holds credentials.
struct Response {
    status: u16,
    body: String,
}

impl Response {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            body: body.into(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            405 => "Method Not Allowed",
            _ => "Internal Server Error",
        };
        format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{}",
            self.status,
            self.body.len(),
            self.body
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;
    use crate::credentials::RoleSpec;

    fn cache(lifetime: Duration) -> (Arc<FakeAws>, Arc<CredentialCache<FakeAws>>) {
        let aws = Arc::new(FakeAws {
            lifetime: Some(lifetime),
            ..FakeAws::default()
        });
        let role = RoleSpec::named(&["R"]);
        let accounts = ["111111111111", "222222222222"];
        let cache = CredentialCache::new(aws.clone(), role, "aws", accounts);
        (aws, Arc::new(cache))
    }

    /// Sends raw bytes to the endpoint and returns the status and body of its answer.
    async fn ask(endpoint: &Endpoint, request: String) -> (u16, String) {
        let mut stream = TcpStream::connect(endpoint.local_addr()).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }

    /// The path of a grant's URI.
    fn path(grant: &Grant) -> &str {
        let rest = grant.uri().strip_prefix("http://127.0.0.1:").unwrap();
        &rest[rest.find('/').unwrap()..]
    }

    fn get_at(path: &str, authorization: Option<&str>) -> String {
        let auth = authorization
            .map(|t| format!("Authorization: {t}\r\n"))
            .unwrap_or_default();
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Accept: application/json\r\n\r\n")
    }

    /// A GET of the grant's own URI with `authorization`.
    fn get(grant: &Grant, authorization: Option<&str>) -> String {
        get_at(path(grant), authorization)
    }

    #[tokio::test]
    async fn a_valid_token_gets_the_ecs_shape() {
        let (_, creds) = cache(Duration::from_secs(3600));
        let endpoint = Endpoint::start(creds).unwrap();
        let grant = endpoint.grant("111111111111").unwrap();
        let (status, body) = ask(&endpoint, get(&grant, Some(grant.token().expose()))).await;
        assert_eq!(status, 200, "{body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["AccessKeyId"], "ASIAFAKE111111111111");
        assert_eq!(doc["SecretAccessKey"], "fake-secret-111111111111");
        assert_eq!(doc["Token"], "fake-token-111111111111");
        assert_eq!(doc["AccountId"], "111111111111");
        let expiration = doc["Expiration"].as_str().unwrap();
        assert!(
            expiration.len() == 20
                && expiration.ends_with('Z')
                && expiration.as_bytes()[10] == b'T',
            "RFC 3339: {expiration}"
        );
    }

    #[tokio::test]
    async fn the_listener_is_bound_to_loopback_only() {
        let (_, creds) = cache(Duration::from_secs(3600));
        let endpoint = Endpoint::start(creds).unwrap();
        let addr = endpoint.local_addr();
        assert_eq!(
            addr.ip(),
            std::net::IpAddr::from(Ipv4Addr::LOCALHOST),
            "{addr}"
        );
        let grant = endpoint.grant("111111111111").unwrap();
        let uri = format!("http://{addr}{}", path(&grant));
        assert_eq!(grant.uri(), uri, "the URI names the bound address");
    }

    #[tokio::test]
    async fn missing_wrong_and_revoked_tokens_get_the_same_403() {
        let (aws, creds) = cache(Duration::from_secs(3600));
        let endpoint = Endpoint::start(creds).unwrap();
        let grant = endpoint.grant("111111111111").unwrap();
        let other = endpoint.grant("111111111111").unwrap();
        let token = other.token().expose().to_owned();
        let other_request = get(&other, Some(&token));
        other.revoke().await;
        let mut wrong = grant.token().expose().to_owned();
        wrong.replace_range(..1, if wrong.starts_with('0') { "1" } else { "0" });
        for auth in [None, Some(wrong.as_str()), Some("")] {
            let (status, body) = ask(&endpoint, get(&grant, auth)).await;
            assert_eq!((status, body.as_str()), (403, FORBIDDEN), "{auth:?}");
        }
        let (status, body) = ask(&endpoint, other_request).await;
        assert_eq!((status, body.as_str()), (403, FORBIDDEN), "revoked");
        assert_eq!(aws.assume_calls(), 0, "nothing refused was looked up");
        let request = get(&grant, Some(grant.token().expose()));
        drop(grant);
        assert_eq!(ask(&endpoint, request).await.0, 403, "dropped");
    }

    #[tokio::test]
    async fn a_token_works_only_on_its_own_targets_path() {
        let (aws, creds) = cache(Duration::from_secs(3600));
        let endpoint = Endpoint::start(creds).unwrap();
        let a = endpoint.grant("111111111111").unwrap();
        let b = endpoint.grant("222222222222").unwrap();
        let (token_a, token_b) = (a.token().expose(), b.token().expose());
        assert_ne!(path(&a), path(&b), "a path per target");
        let unknown = format!("{PATH}{}", "0".repeat(32));
        let refused = [
            get(&b, Some(token_a)),
            get(&a, Some(token_b)),
            get_at(&unknown, Some(token_a)),
            get_at("/credentials", Some(token_a)),
            get_at(PATH, Some(token_a)),
            get_at("/", Some(token_b)),
            get_at(&format!("{}/", path(&a)), Some(token_a)),
            format!("POST /other HTTP/1.1\r\nAuthorization: {token_a}\r\n\r\n"),
        ];
        for request in refused {
            let (status, body) = ask(&endpoint, request.clone()).await;
            assert_eq!(
                (status, body.as_str()),
                (403, FORBIDDEN),
                "{}",
                request.lines().next().unwrap()
            );
        }
        assert_eq!(aws.assume_calls(), 0, "nothing refused was looked up");
        for (grant, account) in [(&a, "111111111111"), (&b, "222222222222")] {
            let (status, body) = ask(&endpoint, get(grant, Some(grant.token().expose()))).await;
            assert_eq!(status, 200, "{body}");
            assert!(body.contains(account), "each path serves its own account");
        }
        let post = get(&a, Some(token_a)).replacen("GET", "POST", 1);
        assert_eq!(ask(&endpoint, post).await.0, 405);
    }

    #[tokio::test]
    async fn an_ended_grant_refuses_at_once_and_a_dropped_one_too() {
        let (_, creds) = cache(Duration::from_secs(3600));
        let endpoint = Endpoint::start(creds).unwrap();
        let grant = endpoint.grant("111111111111").unwrap();
        let request = get(&grant, Some(grant.token().expose()));
        assert_eq!(ask(&endpoint, request.clone()).await.0, 200);
        grant.end();
        assert_eq!(ask(&endpoint, request).await.0, 403, "ended");
        let grant = endpoint.grant("111111111111").unwrap();
        let request = get(&grant, Some(grant.token().expose()));
        assert_eq!(ask(&endpoint, request.clone()).await.0, 200);
        drop(grant);
        assert_eq!(ask(&endpoint, request).await.0, 403, "dropped");
    }

    #[tokio::test]
    async fn many_requests_within_one_lifetime_make_one_assume_role() {
        let (aws, creds) = cache(Duration::from_secs(3600));
        let endpoint = Endpoint::start(creds).unwrap();
        let grant = endpoint.grant("111111111111").unwrap();
        for _ in 0..20 {
            let (status, _) = ask(&endpoint, get(&grant, Some(grant.token().expose()))).await;
            assert_eq!(status, 200);
        }
        assert_eq!(aws.assume_calls(), 1);
    }

    #[tokio::test]
    async fn credentials_inside_the_margin_are_renewed_on_request() {
        let (aws, creds) = cache(Duration::from_secs(60));
        let endpoint = Endpoint::start(creds).unwrap();
        let grant = endpoint.grant("111111111111").unwrap();
        for _ in 0..2 {
            let (status, _) = ask(&endpoint, get(&grant, Some(grant.token().expose()))).await;
            assert_eq!(status, 200);
        }
        assert_eq!(aws.assume_calls(), 2, "each request renewed them");
    }

    #[test]
    fn tokens_are_256_random_bits_in_hex_and_paths_128() {
        let (a, b) = (random_hex::<32>().unwrap(), random_hex::<32>().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(random_hex::<16>().unwrap().len(), 32);
    }

    #[test]
    fn the_waiting_connections_cap_follows_the_open_file_limit() {
        assert_eq!(connection_cap(1 << 20), MAX_WAITING);
        assert_eq!(connection_cap(1024), 256);
        assert_eq!(connection_cap(256), 64);
        assert_eq!(connection_cap(16), MIN_WAITING);
    }

    #[test]
    fn request_heads_are_parsed_strictly() {
        let head = "GET /credentials/ab?x=1 HTTP/1.1\r\nHost: h\r\nauthorization:  abc ";
        assert_eq!(
            parse(head),
            Some(Request {
                method: "GET",
                path: "/credentials/ab",
                authorization: Some("abc"),
            })
        );
        assert_eq!(parse("GET /credentials\r\n"), None, "no version");
        assert_eq!(parse("GET / SMTP/1.0"), None);
        let twice = "GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b";
        assert_eq!(parse(twice), None, "two tokens are refused");
        assert_eq!(parse("GET / HTTP/1.1\r\nno colon"), None);
    }

    #[tokio::test]
    async fn an_oversized_head_is_refused() {
        let (_, creds) = cache(Duration::from_secs(3600));
        let endpoint = Endpoint::start(creds).unwrap();
        let huge = format!("GET {PATH} HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(ask(&endpoint, huge).await.0, 400);
    }
}
