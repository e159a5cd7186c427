//! The one error type of the client: opaque, with a [`kind`](Error::kind) to match on.
//!
//! Tokens never reach an `Error`: requests carry them only in the `Authorization` header, and neither the header nor
//! the token is ever copied into a message.

use std::fmt;
use std::time::Duration;

/// A specialised `Result` for client calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, broadly. Match on it to decide what to do; new kinds may be added in minor releases.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 401: the token is missing or not valid.
    Auth,
    /// 403: the token may not do this, or (Tinybird's way) the resource does not exist: `Resource 'x' not found`.
    Forbidden,
    /// 404.
    NotFound,
    /// 400 and other 4xx the caller must fix (missing parameter, bad SQL, template error, 405, 409, 411, 422).
    BadRequest,
    /// 413: the request body is over the server's limit.
    PayloadTooLarge,
    /// 429: over a rate limit. `retry_after` is the server's hint (`Retry-After`, else `X-RateLimit-Reset`).
    RateLimited {
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
    },
    /// The call did not finish in time (client timeout, total retry deadline, or 408 from the server).
    Timeout,
    /// 5xx.
    Server,
    /// The response could not be decoded into the declared row type. `row` is 0-based within `data` (or the stream).
    Decode {
        /// The column (field) that failed, when known.
        column: Option<String>,
        /// The 0-based row, when known.
        row: Option<u64>,
    },
    /// The endpoint's `meta` does not match the declared output: `column` is missing or has another type.
    SchemaMismatch {
        /// The declared column that is missing or differently typed.
        column: String,
    },
    /// A row could not be serialised for ingestion.
    Encode,
    /// Rows went to the datasource's quarantine and the ingest policy is to fail on that.
    Quarantined {
        /// How many rows were quarantined.
        rows: u64,
    },
    /// A deployment or build was rejected; [`Error::file_errors`] lists what the server said about each file.
    Deploy,
    /// A job (an import, a delete) ended in `error` or was `cancelled`; the message is the server's.
    Job,
    /// Connection, TLS, DNS, or a body cut short.
    Transport,
    /// The client is misconfigured (bad URL, unknown region, missing token, invalid header value…).
    Config,
}

/// One server complaint about one file of a deployment or build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The datafile (`events.datasource`) or resource the message is about, when the server said.
    pub file: Option<String>,
    /// The server's message.
    pub message: String,
}

/// An error from a client call.
///
/// `Display` gives one line: what was being done, the status, Tinybird's `error` text and its documentation link.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    tinybird_error: Option<String>,
    documentation: Option<String>,
    file_errors: Vec<FileError>,
    rows_delivered: Option<u64>,
    attempts: u32,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                status: None,
                tinybird_error: None,
                documentation: None,
                file_errors: Vec::new(),
                rows_delivered: None,
                attempts: 1,
                source: None,
            }),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub(crate) fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }

    pub(crate) fn with_file_errors(mut self, errors: Vec<FileError>) -> Self {
        self.inner.file_errors = errors;
        self
    }

    pub(crate) fn with_rows_delivered(mut self, rows: u64) -> Self {
        self.inner.rows_delivered = Some(rows);
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = attempts;
        self
    }

    pub(crate) fn with_hint(mut self, hint: &str) -> Self {
        self.inner.message = format!("{} (hint: {hint})", self.inner.message);
        self
    }

    pub(crate) fn with_context(mut self, context: &str) -> Self {
        self.inner.message = format!("{context}: {}", self.inner.message);
        self
    }

    /// Builds the error for a non-success HTTP response. `what` names the call (`GET /v0/pipes/x.json`).
    pub(crate) fn from_response(what: &str, status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let kind = match status {
            401 => ErrorKind::Auth,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::Timeout,
            413 => ErrorKind::PayloadTooLarge,
            429 => ErrorKind::RateLimited { retry_after },
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::BadRequest,
        };
        let parsed = ErrorBody::parse(body);
        let mut message = format!("{what} failed with HTTP {status}");
        match (&parsed.error, &parsed.raw) {
            (Some(e), _) => {
                message.push_str(": ");
                message.push_str(e);
            }
            (None, Some(raw)) if !raw.is_empty() => {
                message.push_str(": ");
                message.push_str(raw);
            }
            _ => {}
        }
        if !parsed.errors.is_empty() {
            let list: Vec<String> = parsed.errors.iter().map(FileError::to_string).collect();
            message.push_str(" -> errors: ");
            message.push_str(&list.join("; "));
        }
        let mut err = Error::new(kind, message).with_status(status);
        err.inner.tinybird_error = parsed.error;
        err.inner.documentation = parsed.documentation;
        err.inner.file_errors = parsed.errors;
        err
    }

    /// From a reqwest error: timeouts become [`ErrorKind::Timeout`], the rest [`ErrorKind::Transport`]. The message
    /// says what failed; the reqwest error, with its causes (DNS, TLS, connection refused, …), is the `source()`,
    /// so error reporters that print the chain show each cause once.
    pub(crate) fn from_reqwest(what: &str, err: reqwest::Error) -> Self {
        let err = err.without_url();
        let kind = if err.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Transport };
        let summary = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "could not connect to the server"
        } else if err.is_body() || err.is_decode() {
            "the response body could not be read"
        } else if err.is_redirect() {
            "too many redirects"
        } else {
            "the HTTP request failed"
        };
        Error::new(kind, format!("{what}: {summary}")).with_source(err)
    }

    /// The broad kind, to match on.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// Tinybird's `error` text from the response body, when the body was JSON and had one.
    pub fn tinybird_error(&self) -> Option<&str> {
        self.inner.tinybird_error.as_deref()
    }

    /// Tinybird's `documentation` link from the response body.
    pub fn documentation(&self) -> Option<&str> {
        self.inner.documentation.as_deref()
    }

    /// What the server said about each file (deployments and builds), or the `errors` list of an error body.
    pub fn file_errors(&self) -> &[FileError] {
        &self.inner.file_errors
    }

    /// For `Client::ingest`: how many leading rows of the slice were acknowledged before the failure. The rows after
    /// them were not delivered and can be sent again.
    pub fn rows_delivered(&self) -> Option<u64> {
        self.inner.rows_delivered
    }

    /// How many requests were made before giving up (1 when there was no retry).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// The server's wait hint for a 429.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.inner.kind {
            ErrorKind::RateLimited { retry_after } => retry_after,
            _ => None,
        }
    }

    /// 401 or 403.
    pub fn is_auth(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Auth | ErrorKind::Forbidden)
    }

    /// 429.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::RateLimited { .. })
    }

    /// A client or server timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Timeout)
    }

    /// A decode or schema mismatch error.
    pub fn is_decode(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Decode { .. } | ErrorKind::SchemaMismatch { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        if self.inner.attempts > 1 {
            write!(f, " (after {} attempts)", self.inner.attempts)?;
        }
        if let Some(doc) = &self.inner.documentation {
            write!(f, " (see {doc})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind).field("message", &self.inner.message);
        if let Some(s) = self.inner.status {
            d.field("status", &s);
        }
        if let Some(e) = &self.inner.tinybird_error {
            d.field("tinybird_error", e);
        }
        if let Some(doc) = &self.inner.documentation {
            d.field("documentation", doc);
        }
        if !self.inner.file_errors.is_empty() {
            d.field("file_errors", &self.inner.file_errors);
        }
        if let Some(n) = self.inner.rows_delivered {
            d.field("rows_delivered", &n);
        }
        if self.inner.attempts > 1 {
            d.field("attempts", &self.inner.attempts);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "[{file}] {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A Tinybird error body, read leniently: `{"error", "documentation", "errors"}`, or any text.
struct ErrorBody {
    error: Option<String>,
    documentation: Option<String>,
    errors: Vec<FileError>,
    raw: Option<String>,
}

/// Longest raw (non-JSON) body kept in a message: enough for an HTML error page's gist.
const RAW_BODY_LIMIT: usize = 512;

impl ErrorBody {
    fn parse(body: &[u8]) -> Self {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
            let text = |k: &str| match map.get(k) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            };
            let mut errors: Vec<FileError> = match map.get("errors") {
                Some(serde_json::Value::Array(items)) => items.iter().map(file_error_from_json).collect(),
                _ => Vec::new(),
            };
            // Deployments nest their complaints: `deployment.errors` and ERROR-level `deployment.feedback`.
            if let Some(serde_json::Value::Object(dep)) = map.get("deployment") {
                if let Some(serde_json::Value::Array(items)) = dep.get("feedback") {
                    errors.extend(
                        items
                            .iter()
                            .filter(|f| {
                                f.get("level").and_then(|l| l.as_str()).is_some_and(|l| l.eq_ignore_ascii_case("error"))
                            })
                            .map(file_error_from_json),
                    );
                }
                if let Some(serde_json::Value::Array(items)) = dep.get("errors") {
                    errors.extend(items.iter().map(file_error_from_json));
                }
            }
            let error = text("error").or_else(|| text("message"));
            let raw = if error.is_none() { Some(truncate(&String::from_utf8_lossy(body))) } else { None };
            return ErrorBody { error, documentation: text("documentation"), errors, raw };
        }
        let raw = truncate(String::from_utf8_lossy(body).trim());
        ErrorBody { error: None, documentation: None, errors: Vec::new(), raw: Some(raw) }
    }
}

/// `{"filename"|"resource": …, "error"|"message": …}` or a bare string.
pub(crate) fn file_error_from_json(v: &serde_json::Value) -> FileError {
    match v {
        serde_json::Value::Object(m) => {
            let s = |k: &str| m.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            FileError {
                file: s("filename").or_else(|| s("resource")),
                message: s("error").or_else(|| s("message")).unwrap_or_else(|| v.to_string()),
            }
        }
        serde_json::Value::String(s) => FileError { file: None, message: s.clone() },
        other => FileError { file: None, message: other.to_string() },
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= RAW_BODY_LIMIT {
        return s.to_owned();
    }
    let mut end = RAW_BODY_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_gives_error_and_documentation() {
        let e = Error::from_response(
            "GET /v0/pipes/x.json",
            400,
            None,
            br#"{"error":"Template Syntax Error: Required parameter is not defined","documentation":"https://docs/x"}"#,
        );
        assert_eq!(e.kind(), &ErrorKind::BadRequest);
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.tinybird_error(), Some("Template Syntax Error: Required parameter is not defined"));
        assert_eq!(e.documentation(), Some("https://docs/x"));
        assert_eq!(
            e.to_string(),
            "GET /v0/pipes/x.json failed with HTTP 400: Template Syntax Error: Required parameter is not defined \
             (see https://docs/x)"
        );
    }

    #[test]
    fn non_json_body_is_kept_as_text() {
        let e = Error::from_response("POST /v0/events", 503, None, b"Service unavailable");
        assert_eq!(e.kind(), &ErrorKind::Server);
        assert_eq!(e.tinybird_error(), None);
        assert_eq!(e.to_string(), "POST /v0/events failed with HTTP 503: Service unavailable");
    }

    #[test]
    fn long_non_json_body_is_truncated_on_a_char_boundary() {
        let body = "é".repeat(1000);
        let e = Error::from_response("GET /", 502, None, body.as_bytes());
        assert!(e.to_string().ends_with("… (2000 bytes)"), "{e}");
    }

    #[test]
    fn statuses_map_to_kinds() {
        let kind = |s| Error::from_response("x", s, None, b"").kind().clone();
        assert_eq!(kind(401), ErrorKind::Auth);
        assert_eq!(kind(403), ErrorKind::Forbidden);
        assert_eq!(kind(404), ErrorKind::NotFound);
        assert_eq!(kind(408), ErrorKind::Timeout);
        assert_eq!(kind(413), ErrorKind::PayloadTooLarge);
        assert_eq!(kind(422), ErrorKind::BadRequest);
        assert_eq!(kind(504), ErrorKind::Server);
        let e = Error::from_response("x", 429, Some(Duration::from_secs(3)), b"");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert!(e.is_rate_limited());
    }

    #[test]
    fn errors_list_is_read_per_file() {
        let e = Error::from_response(
            "POST /v1/build",
            400,
            None,
            br#"{"error":"failed","errors":[{"filename":"a.pipe","error":"bad node"},"other"]}"#,
        );
        assert_eq!(
            e.file_errors(),
            &[
                FileError { file: Some("a.pipe".into()), message: "bad node".into() },
                FileError { file: None, message: "other".into() }
            ]
        );
        assert!(e.to_string().contains("[a.pipe] bad node; other"), "{e}");
    }
}
