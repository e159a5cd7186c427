//! The HTTP server: Tinybird's routes over a [`Workspace`](state::Workspace).

mod access;
mod auth;
mod compose;
mod copy;
mod deploy;
mod error;
mod events;
mod grants;
mod identity;
mod jobs;
mod params;
mod query;
mod registry;
mod sink;
mod state;
mod store;
mod tokens;
mod urls;
mod workspaces;

pub use state::Config;

use crate::engine::{ClickHouseOptions, clickhouse::chdb::ChdbLocation};
use crate::resources::{FileError, Resources};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use registry::Registry;
use state::Workspace;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Datafiles that do not parse, or resources the engine cannot create.
    #[error("invalid project:\n{}", .0.iter().map(std::string::ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Project(Vec<FileError>),
    /// The address could not be bound, or the data directory could not be used.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The SQL engine asked for could not start (chDB missing, of another version, …); the text says how to fix it.
    #[error("{0}")]
    Engine(String),
}

/// The SQL engine a server runs queries on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// Apache DataFusion with a ClickHouse compatibility layer: built in, nothing to install. Refuses what it cannot
    /// answer exactly as ClickHouse would.
    #[default]
    DataFusion,
    /// ClickHouse itself, in process, from chDB (`pip install chdb-core==26.9.0`): ClickHouse's answers, every
    /// function, table engine and clause.
    ClickHouse,
}

/// The environment variable that picks the engine for every server that does not pick one itself:
/// `datafusion` or `clickhouse`.
pub(crate) const ENGINE_ENV: &str = "TINYBIRD_LOCAL_ENGINE";

impl std::str::FromStr for EngineKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "datafusion" => Ok(EngineKind::DataFusion),
            "clickhouse" | "chdb" => Ok(EngineKind::ClickHouse),
            other => Err(format!("unknown engine '{other}': use datafusion or clickhouse")),
        }
    }
}

impl EngineKind {
    /// The engine `TINYBIRD_LOCAL_ENGINE` names, if it is set.
    pub fn from_env() -> Result<Option<EngineKind>, String> {
        match std::env::var(ENGINE_ENV) {
            Ok(v) if !v.trim().is_empty() => v.parse().map(Some).map_err(|e| format!("{ENGINE_ENV}: {e}")),
            _ => Ok(None),
        }
    }
}

/// Settings for [`LocalServer`]; see [`LocalServer::builder`].
#[derive(Debug, Clone, Default)]
pub struct LocalServerBuilder {
    port: u16,
    resources: Resources,
    data_dir: Option<PathBuf>,
    config: Config,
    engine: Option<EngineKind>,
    chdb: ChdbLocation,
}

impl LocalServerBuilder {
    /// The port to listen on (0, the default, picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The resources to serve at start.
    pub fn resources(mut self, resources: impl Into<Resources>) -> Self {
        self.resources = resources.into();
        self
    }

    /// Keeps data, deployed resources and tokens in `dir` so they survive restarts.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The largest accepted request body (10 MB by default, as Tinybird's free plan); larger ones get 413.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_body_bytes = bytes;
        self
    }

    /// How long a query may run before it is cancelled (10 s by default). A request waiting for a free query slot
    /// counts that wait too.
    pub fn query_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.config.query_timeout = timeout;
        self
    }

    /// How many queries run at once (twice the cores, at least 4, by default); further ones wait their turn.
    pub fn max_concurrent_queries(mut self, n: usize) -> Self {
        self.config.max_concurrent_queries = n.max(1);
        self
    }

    /// Memory the engine's joins, sorts and aggregations may hold at once (2 GiB by default); a query needing more
    /// fails with `MEMORY_LIMIT_EXCEEDED`.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.config.memory_limit = bytes;
        self
    }

    /// The largest result one query may return, in bytes of its columns (512 MiB by default).
    pub fn max_result_bytes(mut self, bytes: usize) -> Self {
        self.config.max_result_bytes = bytes;
        self
    }

    /// Lets URL imports fetch loopback, private and link-local addresses. Off by default: a URL import from a
    /// token holder must not read the machine's own services (this server's `/tokens` included).
    pub fn allow_private_urls(mut self, allow: bool) -> Self {
        self.config.allow_private_urls = allow;
        self
    }

    /// The SQL engine (by default the one `TINYBIRD_LOCAL_ENGINE` names, else DataFusion).
    pub fn engine(mut self, engine: EngineKind) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Where chDB's library is (`_chdb.abi3.so` or a directory holding it), for the ClickHouse engine. By default
    /// `TINYBIRD_LOCAL_CHDB`, else where `python3` finds the `chdb` package.
    pub fn chdb_library(mut self, path: impl Into<PathBuf>) -> Self {
        self.chdb.library = Some(path.into());
        self
    }

    /// The shared libpython whose symbols chDB needs, for the ClickHouse engine. By default
    /// `TINYBIRD_LOCAL_LIBPYTHON`, else `python3`'s own.
    pub fn libpython(mut self, path: impl Into<PathBuf>) -> Self {
        self.chdb.libpython = Some(path.into());
        self
    }

    /// Starts the server on 127.0.0.1.
    pub async fn start(self) -> Result<LocalServer, StartError> {
        self.start_on([127, 0, 0, 1].into()).await
    }

    /// Starts the server on a given IP address.
    pub async fn start_on(self, ip: std::net::IpAddr) -> Result<LocalServer, StartError> {
        let kind = match self.engine {
            Some(kind) => kind,
            None => EngineKind::from_env().map_err(StartError::Engine)?.unwrap_or_default(),
        };
        let spec = match kind {
            EngineKind::DataFusion => registry::EngineSpec::DataFusion,
            EngineKind::ClickHouse => registry::EngineSpec::ClickHouse(ClickHouseOptions {
                location: self.chdb.clone(),
                query_timeout: self.config.query_timeout,
                max_result_bytes: self.config.max_result_bytes,
                memory_limit: self.config.memory_limit,
            }),
        };
        let registry = Arc::new(Registry::start(spec, self.config.clone(), self.data_dir, self.resources).await?);
        let ws = registry.own();
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, self.port)).await?;
        let addr = listener.local_addr()?;
        let app = router(registry.clone(), ws.config.max_body_bytes);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        // Scheduled copies: at the start of each minute (UTC), in every workspace.
        let scheduler = tokio::spawn(async move {
            loop {
                let now = chrono::Utc::now().timestamp_millis();
                let next = (now.div_euclid(60_000) + 1) * 60_000;
                tokio::time::sleep(std::time::Duration::from_millis(u64::try_from(next - now).unwrap_or(0))).await;
                let Some(at) = chrono::DateTime::from_timestamp_millis(next).map(|t| t.naive_utc()) else { continue };
                for ws in registry.all() {
                    copy::run_scheduled(&ws, at).await;
                }
            }
        });
        Ok(LocalServer {
            url: format!("http://{addr}"),
            ws,
            shutdown: Some(tx),
            handle: Some(handle),
            scheduler: scheduler.abort_handle(),
        })
    }
}

/// A running Tinybird-compatible server. Stopped when dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use tinybird_local::{LocalServer, Resources};
/// let server = LocalServer::from_dir("tinybird/").await?;
/// println!("{} {}", server.url(), server.workspace_id());
/// # Ok(()) }
/// ```
pub struct LocalServer {
    url: String,
    ws: Arc<Workspace>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    /// The task that runs scheduled copies each minute.
    scheduler: tokio::task::AbortHandle,
}

impl std::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServer")
            .field("url", &self.url)
            .field("workspace_id", &self.ws.id)
            .field("admin_token", &"<redacted>")
            .finish()
    }
}

impl LocalServer {
    /// Settings: port, data directory, body limit, resources.
    pub fn builder() -> LocalServerBuilder {
        LocalServerBuilder::default()
    }

    /// Starts a server on 127.0.0.1 and a free port, serving `resources` (a [`Resources`] or a
    /// `tinybird_core::project::Project`).
    pub async fn start(resources: impl Into<Resources>) -> Result<LocalServer, StartError> {
        LocalServer::builder().resources(resources.into()).start().await
    }

    /// Starts a server serving the `.datasource` and `.pipe` files under `dir`.
    pub async fn from_dir(dir: impl AsRef<std::path::Path>) -> Result<LocalServer, StartError> {
        let resources = Resources::from_dir(dir).map_err(|e| StartError::Project(e.0))?;
        LocalServer::start(resources).await
    }

    /// The SQL engine this server runs.
    pub fn engine(&self) -> EngineKind {
        match self.ws.engine.flavor() {
            crate::engine::Flavor::DataFusion => EngineKind::DataFusion,
            crate::engine::Flavor::ClickHouse => EngineKind::ClickHouse,
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The workspace admin token (also the JWT signing key).
    pub fn admin_token(&self) -> &str {
        self.ws.admin_token()
    }

    /// The user token (`user_token` of `GET /tokens`): it lists, creates and deletes workspaces.
    pub fn user_token(&self) -> &str {
        self.ws.user_token()
    }

    /// The workspace id (`workspace_id` of JWTs).
    pub fn workspace_id(&self) -> &str {
        &self.ws.id
    }

    /// The value of a resource token declared by a `TOKEN <name> …` line.
    pub fn token(&self, name: &str) -> Option<String> {
        self.ws.token_value(name)
    }

    /// Runs now what the scheduler runs at the start of each minute: every copy pipe whose `COPY_SCHEDULE` matches
    /// the minute of `at` (UTC) and is not paused, and every sink whose `EXPORT_SCHEDULE` does, as the workspace
    /// admin, each leaving a `copy` or `sink` job (`error` with the reason if it fails). Returns how many ran. For
    /// tests that cannot wait for the clock.
    pub async fn run_schedules(&self, at: chrono::NaiveDateTime) -> usize {
        copy::run_scheduled(&self.ws, at).await
    }

    /// Stops the server and waits for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.scheduler.abort();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn router(registry: Arc<Registry>, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .route("/v0/health", get(health))
        .route("/tokens", get(tokens::local_tokens))
        .route("/v0/tokens", get(tokens::list).post(tokens::create))
        .route("/v0/tokens/{name}", get(tokens::get).put(tokens::update).delete(tokens::delete))
        .route("/v0/tokens/{name}/refresh", post(tokens::refresh))
        .route("/examples/query.http", get(query::example_url))
        .route("/v0/events", post(events::events))
        .route("/v0/pipes", get(query::list_pipes))
        .route("/v1/pipes", get(query::list_pipes))
        .route("/v0/pipes/{file}", get(query::pipe).post(query::pipe))
        .route("/v1/pipes/{file}", get(query::pipe))
        .route("/v0/pipes/{name}/copy", post(copy::run))
        .route("/v0/pipes/{name}/copy/{action}", post(copy::pause_or_resume))
        .route("/v0/pipes/{name}/sink", post(sink::run))
        .route("/v0/connectors", get(sink::connectors))
        .route("/v0/sql", get(query::sql).post(query::sql))
        .route("/v0/datasources", get(events::list).post(events::import))
        .route("/v0/datasources/{name}", get(events::detail))
        .route("/v0/datasources/{name}/delete", post(events::delete))
        .route("/v0/datasources/{name}/truncate", post(events::truncate))
        .route("/v0/jobs", get(jobs::list))
        .route("/v0/jobs/{id}", get(jobs::get))
        .route("/v1/datasources/{name}/append", post(events::append_v1))
        .route("/v1/build", post(deploy::build))
        .route("/v1/deploy", post(deploy::deploy))
        .route("/v1/deployments", get(deploy::list))
        .route("/v1/deployments/{id}", get(deploy::get).delete(deploy::delete))
        .route("/v1/deployments/{id}/set-live", post(deploy::set_live))
        .route("/v1/workspace", get(workspaces::current))
        .route("/v1/user/workspaces", get(workspaces::list))
        .route("/v1/workspaces", post(workspaces::create))
        .route("/v1/workspaces/{id}", axum::routing::delete(workspaces::delete))
        .fallback(not_found)
        // Events and imports read their bodies themselves (gzip-aware); other routes get the same bound.
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(registry);
    Router::new().fallback_service(api).layer(middleware::from_fn(cors_and_paths))
}

/// Every error body is JSON, including axum's own rejections (body too large, bad multipart, …).
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() && !status.is_server_error() || is_json {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "The request body is larger than the server's limit. Split it in several requests.".to_string()
        }
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_string(),
        _ => text,
    };
    error::ApiError::new(status.as_u16(), message).into_response()
}

async fn health() -> Response {
    axum::Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn not_found(uri: Uri) -> Response {
    error::ApiError::new(404, format!("Not found: {}", uri.path())).into_response()
}

/// Why `/tokens` refuses a request, if it does: it answers only non-browser clients on this machine's addresses.
fn local_tokens_refusal(request: &Request) -> Option<&'static str> {
    let headers = request.headers();
    if request.method() != Method::GET {
        return Some("/tokens only answers GET");
    }
    if headers.contains_key(header::ORIGIN) {
        return Some("/tokens does not answer web pages (the request has an Origin header)");
    }
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|v| v != "none" && v != "same-origin") {
        return Some("/tokens does not answer cross-site requests");
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let is_local_name = name.is_empty()
        || name.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost");
    if !is_local_name {
        return Some("/tokens only answers requests to an IP address or localhost");
    }
    None
}

/// Accepts paths with a trailing slash, answers CORS preflights and allows any origin (without credentials).
async fn cors_and_paths(mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let rebuilt = match request.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        if let Ok(uri) = rebuilt.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    // `/tokens`, however the path is spelled (`//tokens`, `/tokens/`).
    if request.uri().path().split('/').filter(|s| !s.is_empty()).eq(["tokens"]) {
        // The admin token, for the local machine and `tb`: never for a web page. No CORS headers at all, and a
        // request a browser made for another site (an `Origin`, a cross-site fetch, or a DNS name that could be
        // rebound to this address) is refused.
        return match local_tokens_refusal(&request) {
            Some(why) => json_errors(error::ApiError::forbidden(why).into_response()).await,
            None => json_errors(next.run(request).await).await,
        };
    }
    if request.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.unwrap_or(HeaderValue::from_static("*")));
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"));
        let requested = request.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            requested.unwrap_or(HeaderValue::from_static("Authorization, Content-Type, Content-Encoding")),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let mut response = json_errors(next.run(request).await).await;
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.unwrap_or(HeaderValue::from_static("*")));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"),
    );
    response
}
