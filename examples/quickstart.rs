//! Quickstart: row-level security with JWTs, end to end.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Declares an `events` datasource and the `user_analytics` endpoint, deploys them, ingests sample events for two
//! users, mints one JWT per user that pins `user_id` (`fixed_params`), and queries with each. Then it shows that a
//! request asking for another user's `user_id` gets the same rows (the JWT wins), and that requests past the JWT's
//! rate limit get 429.
//!
//! Without `TINYBIRD_TOKEN` it starts `tinybird-local` in-process: nothing to install, no account needed. With
//! `TINYBIRD_TOKEN` (a token that can deploy and append), `TINYBIRD_SIGNING_KEY` (the workspace admin token, which
//! signs JWTs) and optionally `TINYBIRD_URL` (your region's API URL) it runs the same steps against Tinybird. Use a
//! scratch workspace: a deployment is the whole project, so this replaces what is deployed there with `events` and
//! `user_analytics`, and the sample events of earlier runs add up in the counts.

use std::error::Error;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use tinybird::client::{DeployOptions, DeployOutcome, QueryResponse, RetryPolicy};
use tinybird::error::ErrorKind;
use tinybird::jwt::{Jwt, Scope, SigningKey};
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

/// Daily event counts for one user: the endpoint a browser calls with a JWT that pins `user_id`.
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
    /// The user whose events are counted. A JWT with `fixed_params.user_id` overrides it.
    pub user_id: u64,
    /// Start of the date range.
    pub start_date: Option<NaiveDateTime>,
    /// End of the date range.
    pub end_date: Option<NaiveDateTime>,
    /// Maximum number of days.
    #[tinybird(default = 100)]
    pub limit: Option<u32>,
}

/// The two users of the demo.
pub const USERS: [u64; 2] = [1, 2];

/// Requests per second each user's JWT allows.
pub const RPS: u32 = 5;

#[path = "support/backend.rs"]
#[allow(clippy::duplicate_mod)] // `tests/it/examples.rs` includes several examples, each with this module.
mod backend;
pub use backend::Backend;

/// What the quickstart saw, for tests to check.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The events ingested.
    pub ingested: Vec<Event>,
    /// Rows each user's JWT returned, in [`USERS`] order.
    pub rows: Vec<(u64, Vec<UserAnalyticsRow>)>,
    /// User 1's JWT, with the typed params asking for user 2.
    pub tampered_typed: Vec<UserAnalyticsRow>,
    /// User 1's JWT, a raw HTTP request with only `?user_id=2`.
    pub tampered_raw: Vec<UserAnalyticsRow>,
    /// Requests of the burst that were answered.
    pub burst_ok: usize,
    /// Requests of the burst that got 429.
    pub burst_rate_limited: usize,
    /// The `Retry-After` of a 429, when the server sent one.
    pub retry_after: Option<Duration>,
}

/// The sample events: a few days of activity for users 1 and 2, different on purpose so a leak would show.
pub fn sample_events() -> Vec<Event> {
    // (user, day of March 2024, hour, event type, page)
    const EVENTS: &[(u64, u32, u32, &str, &str)] = &[
        (1, 1, 9, "page_view", "/"),
        (1, 1, 9, "click", "/pricing"),
        (1, 1, 17, "page_view", "/docs"),
        (1, 2, 11, "page_view", "/"),
        (2, 1, 8, "page_view", "/"),
        (2, 1, 12, "signup", "/signup"),
        (2, 3, 10, "page_view", "/dashboard"),
        (2, 3, 10, "click", "/dashboard"),
        (2, 3, 14, "click", "/settings"),
        (2, 3, 23, "page_view", "/"),
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

/// The project this example deploys.
pub fn project() -> Project {
    Project::new().datasource::<Event>().endpoint::<UserAnalytics>()
}

/// The JWT a backend would hand to user `user_id`'s browser: read `user_analytics` for that user only.
pub fn user_token(user_id: u64, key: &SigningKey) -> Result<Jwt, tinybird::jwt::JwtError> {
    Jwt::builder(format!("user_{user_id}"))
        .scope(Scope::pipe::<UserAnalytics>().fixed(|p| p.user_id = Some(user_id)))
        .rate_limit(RPS)
        .expires_in(Duration::from_secs(15 * 60))
        .sign(key)
}

/// Runs every step against `backend`, printing what happens.
pub async fn run(backend: Backend) -> Result<Summary, Box<dyn Error>> {
    println!("Tinybird quickstart: row-level security with JWTs\n");

    // Keeps the local server, if any, alive until the end of `run`: dropping it stops it.
    let backend = backend.connect(tinybird_local::LocalServer::builder()).await?;
    let (admin, key) = (&backend.admin, &backend.key);

    // 1. Deploy the datasource and the endpoint declared above.
    let outcome =
        admin.deploy_project(&project(), &DeployOptions::default().poll_interval(Duration::from_millis(200))).await?;
    match outcome {
        DeployOutcome::Deployed { id, .. } => {
            println!("1. Deployed events.datasource and user_analytics.pipe (deployment {id} is live)")
        }
        DeployOutcome::NoChanges => println!("1. events and user_analytics are already deployed"),
        other => println!("1. Deployment finished: {other:?}"),
    }

    // 2. Ingest sample events through the Events API.
    let events = sample_events();
    let ingested = admin.ingest(&events).await?;
    println!(
        "2. Ingested {} events for users 1 and 2 ({} stored, {} quarantined)",
        events.len(),
        ingested.successful_rows,
        ingested.quarantined_rows
    );

    // 3. One JWT per user, signed locally: no network call, nothing secret printed.
    let mut tokens = Vec::new();
    for user in USERS {
        let jwt = user_token(user, key)?;
        let client = admin.with_token(jwt.expose())?;
        tokens.push((user, jwt, client));
    }
    println!("3. Minted a JWT per user: PIPES:READ on user_analytics, user_id fixed, {RPS} requests/s, 15 minutes");

    // 4. Each user queries with their own JWT.
    println!("4. Querying user_analytics with each user's JWT:");
    let mut rows = Vec::new();
    for (user, _, client) in &tokens {
        let res = client.query(&analytics_for(*user)).await?;
        print_rows(&format!("user {user}"), &res.data);
        rows.push((*user, res.data));
    }

    // 5. Tampering: user 1 asks for user 2's rows, through the typed API and with a raw request.
    let (user, jwt, client) = &tokens[0];
    let other = USERS[1];
    let tampered_typed = client.query(&analytics_for(other)).await?.data;
    let tampered_raw = raw_query(admin.base_url().as_str(), jwt.expose(), other).await?;
    let own = &rows[0].1;
    println!("5. User {user}'s JWT asking for user {other}'s rows:");
    println!("   typed params with user_id={other}: {}", verdict(&tampered_typed, own));
    println!("   raw GET ?user_id={other}:          {}", verdict(&tampered_raw, own));

    // 6. Rate limit: a burst past the JWT's `limits.rps`. Retries are off so the 429s are visible.
    let burst = 3 * RPS as usize;
    let params = analytics_for(*user);
    let burst_queries = (0..burst).map(|_| client.query(&params).retry(RetryPolicy::none()).into_future());
    let results = futures::future::join_all(burst_queries).await;
    let (mut burst_ok, mut burst_rate_limited, mut retry_after) = (0, 0, None);
    for result in results {
        match result {
            Ok(_) => burst_ok += 1,
            Err(e) => match e.kind() {
                ErrorKind::RateLimited { retry_after: wait } => {
                    burst_rate_limited += 1;
                    retry_after = retry_after.or(*wait);
                }
                _ => return Err(e.into()),
            },
        }
    }
    let wait = retry_after.map(|d| format!(", Retry-After {} s", d.as_secs())).unwrap_or_default();
    println!(
        "6. {burst} requests at once with user {user}'s JWT (limit {RPS}/s): {burst_ok} answered, \
         {burst_rate_limited} got 429 Too Many Requests{wait}"
    );
    println!("\nDone: each JWT sees only its own user's rows, whatever the request says.");

    Ok(Summary { ingested: events, rows, tampered_typed, tampered_raw, burst_ok, burst_rate_limited, retry_after })
}

/// All of `user_id`'s days, with the endpoint's default limit.
fn analytics_for(user_id: u64) -> UserAnalytics {
    UserAnalytics { user_id, start_date: None, end_date: None, limit: None }
}

/// What a browser does: `GET /v0/pipes/user_analytics.json?user_id=…` with the JWT, no SDK involved.
async fn raw_query(base: &str, jwt: &str, user_id: u64) -> Result<Vec<UserAnalyticsRow>, Box<dyn Error>> {
    let url = format!("{}/v0/pipes/{}.json", base.trim_end_matches('/'), UserAnalytics::NAME);
    let resp = reqwest::Client::new()
        .get(url)
        .query(&[("user_id", user_id.to_string())])
        .bearer_auth(jwt)
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        return Err(format!("raw query answered {status}: {}", String::from_utf8_lossy(&body)).into());
    }
    Ok(QueryResponse::<UserAnalyticsRow>::from_slice(&body)?.data)
}

fn verdict(got: &[UserAnalyticsRow], own: &[UserAnalyticsRow]) -> &'static str {
    if got == own { "the same rows as before: the JWT's fixed user_id wins" } else { "DIFFERENT rows" }
}

fn print_rows(who: &str, rows: &[UserAnalyticsRow]) {
    if rows.is_empty() {
        println!("   {who}: no rows");
    }
    for (i, row) in rows.iter().enumerate() {
        let label = if i == 0 { who } else { "" };
        let unit = if row.events == 1 { "event" } else { "events" };
        println!("   {label:<7} {}  {:>3} {unit}", row.day, row.events);
    }
}

#[allow(dead_code)] // `tests/it/examples.rs` includes this file and calls `run` instead.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    backend::main(run).await
}
