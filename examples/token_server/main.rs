//! A token server: the backend half of "browsers query Tinybird directly", in Rust with axum.
//!
//! ```text
//! cargo run --example token_server      # then open http://127.0.0.1:3000
//! ```
//!
//! It is the Rust counterpart of a Next.js route `POST /api/auth/tinybird-token`: a signed-in user gets a short-lived
//! JWT that may read `user_analytics` with `user_id` pinned to them (`fixed_params`), append to `events`, and make at
//! most [`RPS`] requests per second. Signed out, the route answers 401. The page it serves (`index.html`, plain JS)
//! fetches that token and calls the endpoint on Tinybird straight from the browser; it even adds `user_id=999` to
//! the request, which the JWT overrides.
//!
//! Sessions are a toy (an in-memory map behind an `HttpOnly` cookie, sign in with any numeric user id): use your
//! real authentication instead.
//!
//! Without configuration it starts `tinybird-local` in-process with sample data for users 1 and 2. With
//! `TINYBIRD_URL` and `TINYBIRD_SIGNING_KEY` (the workspace admin token) it mints tokens for that workspace instead,
//! which must already have `events` and `user_analytics` deployed as declared here (`cargo run --example quickstart`
//! deploys them).
//! `PORT` sets the port (default 3000).

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tinybird::client::Client;
use tinybird::jwt::{Jwt, JwtBuilder, JwtCache, Scope, SigningKey, WithExpiry};
use tinybird::project::Project;
use tinybird::{Datasource, Endpoint};

/// Product events, one row per action of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Datasource)]
#[tinybird(name = "events", engine = "MergeTree", sorting_key = "user_id, timestamp")]
pub struct Event {
    /// When it happened (UTC).
    #[serde(with = "tinybird::types::wire")]
    pub timestamp: NaiveDateTime,
    /// Who did it.
    pub user_id: u64,
    /// What it was (`page_view`, `click`, …).
    #[tinybird(type = "LowCardinality(String)")]
    pub event_type: String,
    /// Where it happened.
    pub page: String,
}

/// Daily event counts for one user: the endpoint the browser calls with a JWT that pins `user_id`.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    sql = r#"%
SELECT toDate(timestamp) AS day, count() AS events
FROM events
WHERE user_id = {{UInt64(user_id)}}
{% if defined(start_date) %} AND timestamp >= {{DateTime(start_date)}} {% end %}
{% if defined(end_date) %} AND timestamp <= {{DateTime(end_date)}} {% end %}
GROUP BY day
ORDER BY day
LIMIT {{UInt32(limit, 100)}}"#,
    output(day: NaiveDate, events: u64)
)]
pub struct UserAnalytics {
    /// The user whose events are counted. The JWT's `fixed_params.user_id` overrides it.
    pub user_id: u64,
    /// Start of the date range.
    pub start_date: Option<NaiveDateTime>,
    /// End of the date range.
    pub end_date: Option<NaiveDateTime>,
    /// Maximum number of days.
    #[tinybird(default = 100)]
    pub limit: Option<u32>,
}

/// Requests per second a browser's JWT allows.
pub const RPS: u32 = 10;

/// How long a browser's JWT lives. Short: the page asks for a new one when it reloads.
pub const TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// The session cookie's name.
const SESSION_COOKIE: &str = "session";

/// The page: the guide's `useTinybirdToken` hook and `Analytics` component in plain JS.
const INDEX_HTML: &str = include_str!("index.html");

/// Which Tinybird the tokens are for.
#[derive(Clone)]
pub enum Backend {
    /// Start `tinybird-local` in-process with the project and sample data for users 1 and 2.
    Local,
    /// A Tinybird workspace where the project is already deployed.
    Tinybird {
        /// API base URL the browser calls, e.g. `https://api.tinybird.co`.
        url: String,
        /// The workspace admin token, used to sign JWTs. Never sent to the browser.
        signing_key: String,
    },
}

impl std::fmt::Debug for Backend {
    // The signing key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Local => f.write_str("Local"),
            Backend::Tinybird { url, .. } => f.debug_struct("Tinybird").field("url", url).finish_non_exhaustive(),
        }
    }
}

impl Backend {
    /// `Tinybird` when `TINYBIRD_SIGNING_KEY` is set (with `TINYBIRD_URL`, default `https://api.tinybird.co`),
    /// `Local` otherwise.
    pub fn from_env() -> Backend {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match var("TINYBIRD_SIGNING_KEY") {
            Some(signing_key) => Backend::Tinybird {
                url: var("TINYBIRD_URL").unwrap_or_else(|| "https://api.tinybird.co".to_owned()),
                signing_key,
            },
            None => Backend::Local,
        }
    }
}

/// The project the page needs.
pub fn project() -> Project {
    Project::new().datasource::<Event>().endpoint::<UserAnalytics>()
}

/// Sample events loaded into `tinybird-local`: different days and counts for users 1 and 2, so a leak would show.
pub fn sample_events() -> Vec<Event> {
    // (user, day of March 2024, hour, event type, page)
    const EVENTS: &[(u64, u32, u32, &str, &str)] = &[
        (1, 4, 9, "page_view", "/"),
        (1, 4, 10, "click", "/pricing"),
        (1, 5, 11, "page_view", "/docs"),
        (1, 5, 12, "page_view", "/docs/jwt"),
        (1, 5, 16, "click", "/signup"),
        (1, 7, 8, "page_view", "/dashboard"),
        (2, 4, 9, "page_view", "/"),
        (2, 6, 13, "click", "/settings"),
        (2, 6, 14, "page_view", "/billing"),
        (2, 7, 9, "page_view", "/"),
        (2, 7, 9, "click", "/export"),
        (2, 7, 10, "click", "/export"),
        (2, 7, 18, "page_view", "/"),
    ];
    EVENTS
        .iter()
        .map(|&(user_id, day, hour, event_type, page)| Event {
            timestamp: NaiveDate::from_ymd_opt(2024, 3, day)
                .and_then(|d| d.and_hms_opt(hour, 0, 0))
                .expect("the table holds valid dates"),
            user_id,
            event_type: event_type.to_owned(),
            page: page.to_owned(),
        })
        .collect()
}

/// What a signed-in user's browser may do: read their own `user_analytics` rows and append events.
pub fn browser_token(user_id: u64) -> JwtBuilder<WithExpiry> {
    // The name carries the user id: Tinybird counts the rate limit per JWT name.
    Jwt::builder(format!("browser_user_{user_id}"))
        .scope(Scope::pipe::<UserAnalytics>().fixed(|p| p.user_id = Some(user_id)))
        .scope(Scope::datasource_append::<Event>())
        .rate_limit(RPS)
        .expires_in(TOKEN_TTL)
}

/// A running token server. Stopped (with its `tinybird-local`, if any) when dropped.
pub struct TokenServer {
    url: String,
    tinybird_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    // Dropped last: the server above may still be answering with URLs that point at it.
    _local: Option<tinybird_local::LocalServer>,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer").field("url", &self.url).field("tinybird_url", &self.tinybird_url).finish()
    }
}

impl TokenServer {
    /// The page's URL, e.g. `http://127.0.0.1:3000`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The Tinybird API the browser calls.
    pub fn tinybird_url(&self) -> &str {
        &self.tinybird_url
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

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the token server on `127.0.0.1:port` (0 picks a free port).
pub async fn start(backend: Backend, port: u16) -> Result<TokenServer, Box<dyn Error>> {
    let (local, tinybird_url, key) = match backend {
        Backend::Local => {
            // Served from the Rust declarations directly: no deploy step (the quickstart shows deploying).
            let server = tinybird_local::LocalServer::start(project()).await?;
            let admin = Client::builder().base_url(server.url()).token(server.admin_token()).build()?;
            admin.ingest(&sample_events()).await?;
            let key = SigningKey::from_admin_token(server.admin_token())?;
            let url = server.url().to_owned();
            (Some(server), url, key)
        }
        Backend::Tinybird { url, signing_key } => (None, url, SigningKey::from_admin_token(signing_key)?),
    };

    let state = Arc::new(AppState {
        key,
        tinybird_url: tinybird_url.trim_end_matches('/').to_owned(),
        sessions: Mutex::new(HashMap::new()),
        tokens: JwtCache::new(),
    });
    let app = Router::new()
        .route("/", get(index))
        .route("/config.json", get(config))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/auth/tinybird-token", post(tinybird_token))
        .with_state(state);

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            eprintln!("token server stopped: {e}");
        }
    });
    Ok(TokenServer { url, tinybird_url, shutdown: Some(tx), handle: Some(handle), _local: local })
}

struct AppState {
    key: SigningKey,
    tinybird_url: String,
    /// Session id → user id. A toy: use your real session store.
    sessions: Mutex<HashMap<String, u64>>,
    /// One JWT per user, reused until most of its lifetime has passed, so page loads do not mint a token each.
    tokens: JwtCache,
}

impl AppState {
    fn user(&self, jar: &CookieJar) -> Option<u64> {
        let id = jar.get(SESSION_COOKIE)?.value();
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(id).copied()
    }
}

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

/// What the page needs to know to call Tinybird. Nothing secret.
async fn config(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({ "tinybird_url": state.tinybird_url, "endpoint": UserAnalytics::NAME }))
}

#[derive(Deserialize)]
struct Login {
    user_id: String,
}

/// Signs in as any numeric user id (a toy login form).
async fn login(State(state): State<Arc<AppState>>, jar: CookieJar, Form(form): Form<Login>) -> Response {
    let Ok(user_id) = form.user_id.trim().parse::<u64>() else {
        let message = format!("user_id must be a non-negative integer, got {:?}", form.user_id);
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response();
    };
    let session = uuid::Uuid::new_v4().to_string();
    state.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(session.clone(), user_id);
    // HttpOnly: page scripts never see the session. SameSite=Lax: other sites cannot POST with it (no CSRF on the
    // token route). Behind HTTPS, add `.secure(true)`.
    let cookie = Cookie::build((SESSION_COOKIE, session)).path("/").http_only(true).same_site(SameSite::Lax);
    (jar.add(cookie), Redirect::to("/")).into_response()
}

async fn logout(State(state): State<Arc<AppState>>, jar: CookieJar) -> Response {
    if let Some(c) = jar.get(SESSION_COOKIE) {
        state.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(c.value());
    }
    (jar.remove(Cookie::build(SESSION_COOKIE).path("/")), Redirect::to("/")).into_response()
}

async fn me(State(state): State<Arc<AppState>>, jar: CookieJar) -> Json<serde_json::Value> {
    Json(json!({ "user_id": state.user(&jar) }))
}

/// `POST /api/auth/tinybird-token`: 401 when signed out, otherwise `{"token", "expires_at"}` for the user.
async fn tinybird_token(State(state): State<Arc<AppState>>, jar: CookieJar) -> Response {
    let Some(user_id) = state.user(&jar) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "Not signed in" }))).into_response();
    };
    let builder = browser_token(user_id);
    match state.tokens.get_or_sign(&format!("user_{user_id}"), &builder, &state.key).await {
        Ok(jwt) => (
            // A bearer credential: no caching by the browser or proxies.
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({ "token": jwt.expose(), "expires_at": jwt.exp().to_rfc3339() })),
        )
            .into_response(),
        Err(e) => {
            // JwtError never contains the key or a token.
            eprintln!("could not mint a JWT for user {user_id}: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "could not mint a token" }))).into_response()
        }
    }
}

#[allow(dead_code)] // The tests include this file and call `start` instead.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match serve().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the server from the environment (`PORT`, `TINYBIRD_URL`, `TINYBIRD_SIGNING_KEY`) until Ctrl-C.
#[allow(dead_code)] // Only `main` calls it.
async fn serve() -> Result<(), Box<dyn Error>> {
    let port = match std::env::var("PORT") {
        Ok(p) => p.parse::<u16>().map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 3000,
    };
    let backend = Backend::from_env();
    let local = matches!(backend, Backend::Local);
    let server = start(backend, port).await?;
    if local {
        println!("Started tinybird-local at {} with sample events for users 1 and 2", server.tinybird_url());
    } else {
        println!("Minting tokens for Tinybird at {}", server.tinybird_url());
    }
    println!("Token server listening: open {} and sign in as user 1 or 2 (Ctrl-C stops)", server.url());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
