//! The HTTP client: typed endpoint queries, streaming, SQL, ingestion, datasource operations, JWTs and deployments.
//!
//! ```no_run
//! # async fn run() -> tinybird_core::error::Result<()> {
//! use std::time::Duration;
//! use tinybird_core::client::Client;
//!
//! let client = Client::builder()
//!     .region("gcp-europe-west3")
//!     .token(std::env::var("TINYBIRD_TOKEN").unwrap_or_default())
//!     .query_timeout(Duration::from_secs(10))
//!     .build()?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! Every request carries `from=rust-sdk` and the token in `Authorization: Bearer`, never in the URL.

mod config;
mod datasources;
mod deploy;
mod ingest;
mod jobs;
pub(crate) mod query;
mod retry;
mod stream;
mod tokens;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use crate::error::{Error, ErrorKind, Result};

pub use config::{ClientBuilder, IntoRegion, Region, Timeouts, UnknownRegion};
pub use datasources::{DeleteOptions, DeleteResult, ImportResult, ImportSource};
pub use deploy::{BuildResult, DeployOptions, DeployOutcome, DeployProgress, Deployment, Feedback};
pub use ingest::{
    Ingest, IngestFailure, IngestOptions, IngestReport, IngestResult, Ingestor, IngestorBuilder, MAX_REQUEST_BYTES,
    QuarantinePolicy, encode_ndjson,
};
pub use jobs::{Job, JobWait};
pub use query::{ColumnMeta, Query, QueryOptions, QueryResponse, Sql, Statistics};
pub use retry::RetryPolicy;
pub use stream::RowStream;
pub use tokens::{StaticToken, StaticTokenRequest, TokenResponse, TokenScope};

/// The `from` query parameter every request carries, so Tinybird can attribute traffic to this SDK.
pub const FROM: &str = "rust-sdk";

/// The Tinybird HTTP client. Cheap to clone: clones share one connection pool.
///
/// Build one with [`Client::builder`] or [`Client::from_env`], then query endpoints with [`Client::query`], run SQL
/// with [`Client::sql`], ingest with [`Client::ingest`] or a batching [`Client::ingestor`].
///
/// Retries follow the [`RetryPolicy`] (client-wide, or per call) and what the server may already have done:
/// - reads (queries, streams before the first byte, SQL, listings, truncate, deleting a deployment): 408, 429, 500,
///   502, 503, 504, timeouts and connection failures;
/// - ingestion (Tinybird's Events API): 429 and connection failures always; 500 and 503 only with `wait=true`, which makes them a
///   known non-write. Timeouts, cut connections, 502, 504 and 422 are not retried: the rows may have been stored;
/// - other writes (imports, deletes, tokens, deploys): 429 and connection failures only.
///
/// A 429 waits for `Retry-After` or `X-RateLimit-Reset`; everything else backs off exponentially with jitter.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    token: Token,
}

struct Shared {
    http: reqwest::Client,
    base: Url,
    timeouts: Timeouts,
    retry: RetryPolicy,
}

/// A token kept out of `Debug`, `Display` and URLs.
#[derive(Clone)]
pub(crate) struct Token {
    header: HeaderValue,
    /// The API host a static token says it belongs to (its payload's `host`), to explain auth errors caused by a
    /// wrong region. Not secret: it is the region, not the credential.
    issued_for: Option<Arc<str>>,
}

impl Token {
    pub(crate) fn new(token: &str) -> Result<Self> {
        if token.is_empty() {
            return Err(Error::config("the token is empty"));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::config("the token contains characters not allowed in an HTTP header"))?;
        header.set_sensitive(true);
        Ok(Token { header, issued_for: static_token_host(token).map(Arc::from) })
    }
}

/// The API host named in a static token (`p.<base64url json {"u","id","host"}>.<sig>`), as a host name.
fn static_token_host(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.strip_prefix("p.")?.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let host = json.get("host")?.as_str()?.trim();
    if host.is_empty() {
        return None;
    }
    if host.contains("://") {
        return Url::parse(host).ok()?.host_str().map(str::to_owned);
    }
    if let Some(region) = Region::from_name(host) {
        return Url::parse(region.base_url()).ok()?.host_str().map(str::to_owned);
    }
    Some(host.to_owned())
}

impl Client {
    /// On 401/403, says so when the token was issued for another region than the one called: the most common cause
    /// of "invalid token" with a valid token.
    fn region_hint(&self) -> Option<String> {
        let issued = self.token.issued_for.as_deref()?;
        let called = self.shared.base.host_str()?;
        let local = matches!(called, "localhost" | "127.0.0.1" | "::1" | "[::1]");
        (!local && !issued.eq_ignore_ascii_case(called)).then(|| {
            format!("the token belongs to the workspace's region at `{issued}`, but this client calls `{called}`: set the base URL or region to match")
        })
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.shared.base.as_str())
            .field("token", &self.token)
            .field("timeouts", &self.shared.timeouts)
            .field("retry", &self.shared.retry)
            .finish()
    }
}

impl Client {
    /// A builder: base URL or region, token, timeouts, retries, user agent.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `TINYBIRD_TOKEN` and `TINYBIRD_URL` (or `TINYBIRD_HOST`; a host without a scheme gets
    /// `https://`). Without either URL variable the default region `https://api.tinybird.co` is used.
    pub fn from_env() -> Result<Self> {
        ClientBuilder::from_env().build()
    }

    /// The same client (same pool, timeouts, retries) acting with another token, for example a JWT minted for one
    /// user. The token is checked here: an empty one or one with characters illegal in a header is a `Config` error.
    pub fn with_token(&self, token: impl AsRef<str>) -> Result<Client> {
        Ok(Client { shared: self.shared.clone(), token: Token::new(token.as_ref())? })
    }

    /// The base URL requests are resolved against (any path prefix kept).
    pub fn base_url(&self) -> &Url {
        &self.shared.base
    }

    /// `base + segments + ?pairs&from=rust-sdk`. Each segment is percent-encoded, so a name cannot escape its place.
    pub(crate) fn url<'a>(&self, segments: &[&str], pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Url {
        let mut url = self.shared.base.clone();
        {
            // The base was validated as a hierarchical URL at build time, so it has path segments.
            if let Ok(mut path) = url.path_segments_mut() {
                path.pop_if_empty().extend(segments);
            }
        }
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            q.append_pair("from", FROM);
        }
        url
    }

    /// Sends a request, retrying per `policy` and `retry_on`. Returns the successful response, headers received; the
    /// body is the caller's to read. Non-success statuses become `Error`s carrying Tinybird's error body.
    pub(crate) async fn send(&self, req: Request<'_>) -> Result<reqwest::Response> {
        let policy = req.retry.unwrap_or(&self.shared.retry);
        let started = Instant::now();
        let deadline = policy.total_deadline.and_then(|d| started.checked_add(d));
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = self.send_once(&req).await;
            let (err, wait) = match outcome {
                Ok(resp) => return Ok(resp),
                Err(Failure { error, retryable, server_wait }) => {
                    if !retryable || attempt > policy.max_retries {
                        return Err(error.with_attempts(attempt));
                    }
                    let wait = server_wait.unwrap_or_else(|| policy.wait_for(attempt - 1));
                    (error, wait)
                }
            };
            // A server's wait hint can be huge: an `Instant` that overflows is past any deadline.
            if let Some(deadline) = deadline
                && Instant::now().checked_add(wait).is_none_or(|resume| resume > deadline)
            {
                return Err(err.with_attempts(attempt).with_context("retry deadline reached"));
            }
            tracing::debug!(what = %req.what, attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(&self, req: &Request<'_>) -> std::result::Result<reqwest::Response, Failure> {
        let mut builder = self
            .shared
            .http
            .request(req.method.clone(), req.url.clone())
            .header(reqwest::header::AUTHORIZATION, self.token.header.clone());
        if let Some(t) = req.timeout {
            builder = builder.timeout(t);
        }
        builder = match &req.body {
            Body::Empty => builder,
            Body::Bytes { data, content_type, content_encoding } => {
                let mut b = builder.header(reqwest::header::CONTENT_TYPE, *content_type);
                if let Some(enc) = content_encoding {
                    b = b.header(reqwest::header::CONTENT_ENCODING, *enc);
                }
                b.body(data.clone())
            }
            Body::Multipart(parts) => {
                let (data, content_type) = parts.encode();
                builder.header(reqwest::header::CONTENT_TYPE, content_type).body(data)
            }
        };
        let fut = builder.send();
        // Streams have no whole-request timeout (it would cut long bodies), so bound the wait for headers here.
        let result = match req.header_timeout {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Failure {
                        error: Error::new(
                            ErrorKind::Timeout,
                            format!("{}: no response within {} ms", req.what, t.as_millis()),
                        ),
                        retryable: req.retry_on.retries_timeouts(),
                        server_wait: None,
                    });
                }
            },
            None => fut.await,
        };
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                let retryable = if e.is_connect() {
                    // The request never reached the server: safe to resend whatever it was.
                    true
                } else if e.is_timeout() {
                    req.retry_on.retries_timeouts()
                } else {
                    req.retry_on.retries_transport()
                };
                return Err(Failure { error: Error::from_reqwest(&req.what, e), retryable, server_wait: None });
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let server_wait = retry::server_wait(status, resp.headers());
        let retryable = req.retry_on.retries_status(status);
        // Error bodies are small; cap what we read so a misbehaving proxy cannot make us buffer megabytes.
        let body = read_capped(resp, 64 * 1024).await;
        let rate_wait = if status == StatusCode::TOO_MANY_REQUESTS { server_wait } else { None };
        let mut error = Error::from_response(&req.what, status.as_u16(), rate_wait, &body);
        if matches!(status.as_u16(), 401 | 403)
            && let Some(hint) = self.region_hint()
        {
            error = error.with_hint(&hint);
        }
        Err(Failure { error, retryable, server_wait })
    }

    pub(crate) fn timeouts(&self) -> &Timeouts {
        &self.shared.timeouts
    }
}

async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = cap.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= cap {
            break;
        }
    }
    out
}

/// Reads a successful response's body, mapping transport errors (including a body cut short) to `Error`s.
pub(crate) async fn read_body(what: &str, resp: reqwest::Response) -> Result<Bytes> {
    resp.bytes().await.map_err(|e| Error::from_reqwest(what, e))
}

struct Failure {
    error: Error,
    retryable: bool,
    server_wait: Option<Duration>,
}

/// One logical call.
pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: Url,
    pub body: Body,
    /// `"GET /v0/pipes/x.json"`, for messages. Never holds the query string.
    pub what: String,
    /// Whole-request timeout.
    pub timeout: Option<Duration>,
    /// Timeout until response headers (streams).
    pub header_timeout: Option<Duration>,
    pub retry: Option<&'a RetryPolicy>,
    pub retry_on: RetryOn,
}

impl<'a> Request<'a> {
    pub(crate) fn new(method: Method, url: Url, retry_on: RetryOn) -> Self {
        let what = format!("{method} {}", url.path());
        Request { method, url, body: Body::Empty, what, timeout: None, header_timeout: None, retry: None, retry_on }
    }
    pub(crate) fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
    pub(crate) fn timeout(mut self, t: Option<Duration>) -> Self {
        self.timeout = t;
        self
    }
    pub(crate) fn retry(mut self, policy: Option<&'a RetryPolicy>) -> Self {
        self.retry = policy;
        self
    }
}

/// What may be retried, by how much the server might already have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryOn {
    /// Reads: 408, 429, 500, 502, 503, 504, timeouts and transport errors.
    Idempotent,
    /// Writes that must not run twice: only 429 and connection failures (the server certainly did nothing).
    NotIdempotent,
    /// Events API (Tinybird's Events API): 429 and connection failures always; 500/503 only with `wait=true`, which makes a DB
    /// failure a known non-write.
    Ingest { wait: bool },
}

impl RetryOn {
    fn retries_status(self, status: StatusCode) -> bool {
        let s = status.as_u16();
        match self {
            RetryOn::Idempotent => matches!(s, 408 | 429 | 500 | 502 | 503 | 504),
            RetryOn::NotIdempotent => s == 429,
            RetryOn::Ingest { wait } => s == 429 || (wait && matches!(s, 500 | 503)),
        }
    }
    fn retries_timeouts(self) -> bool {
        self == RetryOn::Idempotent
    }
    fn retries_transport(self) -> bool {
        self == RetryOn::Idempotent
    }
}

pub(crate) enum Body {
    Empty,
    Bytes { data: Bytes, content_type: &'static str, content_encoding: Option<&'static str> },
    Multipart(MultipartSpec),
}

impl Body {
    pub(crate) fn form(pairs: &[(&str, &str)]) -> Body {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            ser.append_pair(k, v);
        }
        Body::Bytes {
            data: Bytes::from(ser.finish()),
            content_type: "application/x-www-form-urlencoded",
            content_encoding: None,
        }
    }
}

/// A multipart body that can be rebuilt for each attempt (reqwest's `Form` is single-use).
#[derive(Clone)]
pub(crate) struct MultipartSpec {
    pub parts: Vec<MultipartPart>,
}

#[derive(Clone)]
pub(crate) struct MultipartPart {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: &'static str,
    pub data: Bytes,
}

impl MultipartSpec {
    /// Encodes the parts by hand: reqwest would write a name like `data_project://` as RFC 2231 `name*=utf-8''…`,
    /// which Tinybird's form parser does not read. Returns the body and its content type.
    fn encode(&self) -> (Bytes, String) {
        let boundary = format!("tinybird-rust-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let mut out = Vec::new();
        for p in &self.parts {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            out.extend_from_slice(format!("Content-Disposition: form-data; name=\"{}\"", quote(&p.name)).as_bytes());
            if let Some(f) = &p.filename {
                out.extend_from_slice(format!("; filename=\"{}\"", quote(f)).as_bytes());
            }
            out.extend_from_slice(format!("\r\nContent-Type: {}\r\n\r\n", p.content_type).as_bytes());
            out.extend_from_slice(&p.data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        (Bytes::from(out), format!("multipart/form-data; boundary={boundary}"))
    }
}

/// A quoted-string for a multipart header: `"`, CR and LF percent-encoded as browsers do.
fn quote(s: &str) -> String {
    s.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

pub(crate) fn default_headers(user_agent: &str) -> Result<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert(
        reqwest::header::USER_AGENT,
        HeaderValue::from_str(user_agent)
            .map_err(|_| Error::config("the user agent contains characters not allowed in an HTTP header"))?,
    );
    Ok(h)
}
