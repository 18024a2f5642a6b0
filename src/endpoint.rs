//! The credential endpoint of `--child-credentials endpoint`: an HTTP server on 127.0.0.1 that
//! speaks the container-credentials protocol every AWS SDK and the AWS CLI understand
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI` plus `AWS_CONTAINER_AUTHORIZATION_TOKEN`). A child
//! that runs longer than its session asks again and gets the account's renewed credentials.
//!
//! Each running target holds a [`Grant`]: a random token of 256 bits that is valid while its
//! child runs. A request without a valid token gets the same 403 whatever it sent, so it learns
//! nothing about the targets. Tokens are compared in constant time, and neither tokens nor
//! credentials are ever logged.
//!
//! The server is a deliberately small HTTP/1.1 responder: one `GET` per connection, a bounded
//! request head read under a timeout, `Connection: close`. SDKs ask it once per credential
//! lifetime, from this machine only, so it needs nothing more.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedRwLockReadGuard, RwLock, Semaphore};
use tokio::task::JoinSet;

use crate::aws::{Aws, TempCredentials};
use crate::child_env::{self, Delivery};
use crate::credentials::CredentialCache;
use crate::secret::Secret;

/// The path credentials are served on.
pub const PATH: &str = "/credentials";
/// The largest request head accepted; SDKs send a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client gets to send its request, and to read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 256;
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

/// The running endpoint. Dropping it stops the server and every connection.
pub struct Endpoint {
    uri: Arc<str>,
    grants: Arc<Grants>,
    server: tokio::task::AbortHandle,
}

impl Endpoint {
    /// Binds a random port on 127.0.0.1 and serves `creds` from it. Needs a tokio runtime.
    pub fn start<A: Aws>(creds: Arc<CredentialCache<A>>) -> anyhow::Result<Endpoint> {
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .context("could not open the credential endpoint on 127.0.0.1")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let listener = TcpListener::from_std(listener)?;
        let grants = Arc::new(Grants::default());
        let server = tokio::spawn(accept_loop(listener, grants.clone(), creds)).abort_handle();
        Ok(Endpoint {
            uri: format!("http://127.0.0.1:{port}{PATH}").into(),
            grants,
            server,
        })
    }

    /// The URI children are given in `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// A new token for one target in `account_id`, valid until the grant is revoked or dropped.
    pub fn grant(&self, account_id: &str) -> anyhow::Result<Grant> {
        let token = Secret::new(new_token()?);
        let id = self.grants.add(account_id, token.clone());
        Ok(Grant {
            id,
            token,
            uri: self.uri.clone(),
            grants: self.grants.clone(),
        })
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// 256 random bits from the operating system, as 64 hex digits.
fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for a credential endpoint token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// One target's right to ask for its account's credentials while its child runs.
pub struct Grant {
    id: u64,
    token: Secret,
    uri: Arc<str>,
    grants: Arc<Grants>,
}

impl Grant {
    pub fn token(&self) -> &Secret {
        &self.token
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Ends the token and waits for the requests it already let in, so no lookup of the
    /// account's credentials runs after the target is done (the cache drops an account's
    /// credentials after its last target).
    pub async fn revoke(self) {
        if let Some(entry) = self.grants.remove(self.id) {
            drop(entry.in_flight.write().await);
        }
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

    fn add(&self, account_id: &str, token: Secret) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            token,
            account_id: account_id.to_owned(),
            in_flight: Arc::new(RwLock::new(())),
        };
        self.entries().insert(id, entry);
        id
    }

    fn remove(&self, id: u64) -> Option<Entry> {
        self.entries().remove(&id)
    }

    /// The account a presented token belongs to, with a hold that keeps a revocation waiting
    /// until the lookup is done. Every valid token is compared, in constant time, so timing
    /// tells nothing about which one matched or how close a guess came.
    fn authorize(&self, presented: &str) -> Option<(String, OwnedRwLockReadGuard<()>)> {
        let entries = self.entries();
        let mut found = None;
        for entry in entries.values() {
            let same = entry.token.expose().as_bytes().ct_eq(presented.as_bytes());
            if bool::from(same) {
                found = Some(entry);
            }
        }
        let entry = found?;
        let hold = entry.in_flight.clone().try_read_owned().ok()?;
        Some((entry.account_id.clone(), hold))
    }
}

async fn accept_loop<A: Aws>(
    listener: TcpListener,
    grants: Arc<Grants>,
    creds: Arc<CredentialCache<A>>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, for example: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (grants, creds) = (grants.clone(), creds.clone());
        connections.spawn(async move {
            serve_connection(stream, &grants, &creds).await;
            drop(permit);
        });
    }
}

/// One request, one answer, then the connection closes.
async fn serve_connection<A: Aws>(
    mut stream: TcpStream,
    grants: &Grants,
    creds: &CredentialCache<A>,
) {
    let response = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => answer(&head, grants, creds).await,
        Ok(None) => Response::new(400, r#"{"code":"BadRequest","message":"bad request"}"#),
        Err(_) => return,
    };
    let _ = tokio::time::timeout(IO_TIMEOUT, async {
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

/// The answer to one request head: the token first, so an unauthorized caller learns nothing,
/// not even which paths exist.
async fn answer<A: Aws>(head: &str, grants: &Grants, creds: &CredentialCache<A>) -> Response {
    let Some(request) = parse(head) else {
        return Response::new(400, r#"{"code":"BadRequest","message":"bad request"}"#);
    };
    let Some((account_id, hold)) = request.authorization.and_then(|t| grants.authorize(t)) else {
        return Response::new(403, FORBIDDEN);
    };
    if request.method != "GET" || request.path != PATH {
        return Response::new(
            404,
            r#"{"code":"NotFound","message":"GET /credentials only"}"#,
        );
    }
    let assumed = creds.get(&account_id).await;
    drop(hold);
    match assumed {
        Ok(temp) => Response::new(200, credentials_body(&temp.creds, &account_id)),
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
            404 => "Not Found",
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
        let cache = CredentialCache::new(aws.clone(), role, "aws", ["111111111111"]);
        (aws, Arc::new(cache))
    }

    /// Sends raw bytes to the endpoint and returns the status and body of its answer.
    async fn ask(endpoint: &Endpoint, request: String) -> (u16, String) {
        let addr = endpoint.uri().trim_start_matches("http://");
        let addr = addr.trim_end_matches(PATH);
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }

    fn get(authorization: Option<&str>) -> String {
        let auth = authorization
            .map(|t| format!("Authorization: {t}\r\n"))
            .unwrap_or_default();
        format!("GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Accept: application/json\r\n\r\n")
    }

    #[tokio::test]
    async fn a_valid_token_gets_the_ecs_shape() {
        let (_, creds) = cache(Duration::from_secs(3600));
        let endpoint = Endpoint::start(creds).unwrap();
        let grant = endpoint.grant("111111111111").unwrap();
        let (status, body) = ask(&endpoint, get(Some(grant.token().expose()))).await;
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
    async fn missing_wrong_and_revoked_tokens_get_the_same_403() {
        let (aws, creds) = cache(Duration::from_secs(3600));
        let endpoint = Endpoint::start(creds).unwrap();
        let grant = endpoint.grant("111111111111").unwrap();
        let other = endpoint.grant("111111111111").unwrap();
        let token = other.token().expose().to_owned();
        other.revoke().await;
        let mut wrong = grant.token().expose().to_owned();
        wrong.replace_range(..1, if wrong.starts_with('0') { "1" } else { "0" });
        for auth in [None, Some(wrong.as_str()), Some(token.as_str()), Some("")] {
            let (status, body) = ask(&endpoint, get(auth)).await;
            assert_eq!((status, body.as_str()), (403, FORBIDDEN), "{auth:?}");
        }
        let elsewhere = format!("GET /other HTTP/1.1\r\nAuthorization: {}\r\n\r\n", "nope");
        assert_eq!(
            ask(&endpoint, elsewhere).await.0,
            403,
            "auth comes before paths"
        );
        assert_eq!(aws.assume_calls(), 0, "nothing refused was looked up");
        drop(grant);
        let (status, _) = ask(&endpoint, get(Some(&wrong))).await;
        assert_eq!(status, 403);
    }

    #[tokio::test]
    async fn a_dropped_grant_ends_its_token() {
        let (_, creds) = cache(Duration::from_secs(3600));
        let endpoint = Endpoint::start(creds).unwrap();
        let grant = endpoint.grant("111111111111").unwrap();
        let token = grant.token().expose().to_owned();
        assert_eq!(ask(&endpoint, get(Some(&token))).await.0, 200);
        drop(grant);
        assert_eq!(ask(&endpoint, get(Some(&token))).await.0, 403);
    }

    #[tokio::test]
    async fn credentials_inside_the_margin_are_renewed_on_request() {
        let (aws, creds) = cache(Duration::from_secs(60));
        let endpoint = Endpoint::start(creds).unwrap();
        let grant = endpoint.grant("111111111111").unwrap();
        for _ in 0..2 {
            assert_eq!(
                ask(&endpoint, get(Some(grant.token().expose()))).await.0,
                200
            );
        }
        assert_eq!(aws.assume_calls(), 2, "each request renewed them");
    }

    #[test]
    fn tokens_are_256_random_bits_in_hex() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn request_heads_are_parsed_strictly() {
        let head = "GET /credentials?x=1 HTTP/1.1\r\nHost: h\r\nauthorization:  abc ";
        assert_eq!(
            parse(head),
            Some(Request {
                method: "GET",
                path: "/credentials",
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
