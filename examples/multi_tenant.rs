//! Multi-tenant tokens: one JWT per organisation, pinned to it on every endpoint it may read.
//!
//! ```text
//! cargo run --example multi_tenant
//! ```
//!
//! The Rust counterpart of a `createOrgToken(orgId)` helper: a JWT named after the org that may read two endpoints,
//! `org_analytics` and `org_events`, both with `org_id` fixed to the org, and append to `events`; it lives 24 hours
//! and allows 50 requests per second. The example deploys the resources, ingests events for two orgs, mints a token
//! per org and shows that org A sees only org A, even when it asks for org B.
//!
//! Without `TINYBIRD_TOKEN` it starts `tinybird-local` in-process. With `TINYBIRD_TOKEN`, `TINYBIRD_SIGNING_KEY` (the
//! workspace admin token) and optionally `TINYBIRD_URL` it runs against that Tinybird workspace. Use a scratch
//! workspace: a deployment is the whole project, so this replaces what is deployed there with `events`,
//! `org_analytics` and `org_events`.

use std::error::Error;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use tinybird::client::DeployOptions;
use tinybird::jwt::{self, Claims, Jwt, JwtBuilder, Scope, WithExpiry};
use tinybird::project::Project;
use tinybird::{Datasource, Endpoint};

/// Product events of every org, one row per action of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Datasource)]
#[tinybird(name = "events", engine = "MergeTree", sorting_key = "org_id, user_id, timestamp")]
pub struct Event {
    /// When it happened (UTC).
    #[serde(with = "tinybird::types::wire")]
    pub timestamp: NaiveDateTime,
    /// The tenant.
    pub org_id: u64,
    /// Who did it.
    pub user_id: u64,
    /// What it was.
    #[tinybird(type = "LowCardinality(String)")]
    pub event_type: String,
}

/// Per-user activity of one org.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "org_analytics",
    sql = r#"%
SELECT user_id, count() AS events, max(timestamp) AS last_seen
FROM events
WHERE org_id = {{UInt64(org_id, required=True)}}
GROUP BY user_id
ORDER BY events DESC, user_id"#,
    output(OrgUser { user_id: u64, events: u64, last_seen: NaiveDateTime })
)]
pub struct OrgAnalytics {
    /// The org. The JWT's `fixed_params.org_id` overrides it.
    pub org_id: u64,
}

/// Raw events of one org, newest first: the output is the datasource's own row type.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    sql = "%\nSELECT * FROM events WHERE org_id = {{UInt64(org_id)}} ORDER BY timestamp DESC, user_id LIMIT {{Int32(limit, 50)}}",
    output = Event
)]
pub struct OrgEvents {
    /// The org. The JWT's `fixed_params.org_id` overrides it.
    pub org_id: u64,
    /// At most this many events.
    #[tinybird(default = 50)]
    pub limit: Option<i32>,
}

/// The two orgs of the demo: (id, name).
pub const ORGS: [(u64, &str); 2] = [(1, "Acme"), (2, "Globex")];

/// Requests per second an org's JWT allows (counted per JWT name, so per org).
pub const ORG_RPS: u32 = 50;

/// How long an org's JWT lives: the longest Tinybird's guidance allows without opting in.
pub const ORG_TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);

#[path = "support/backend.rs"]
#[allow(clippy::duplicate_mod)] // `tests/it/examples.rs` includes several examples, each with this module.
mod backend;
pub use backend::Backend;

/// The project this example deploys.
pub fn project() -> Project {
    Project::new().datasource::<Event>().endpoint::<OrgAnalytics>().endpoint::<OrgEvents>()
}

/// `createOrgToken`: what an org's dashboard may do. The name carries the org id, so the rate limit is per org.
pub fn org_token(org_id: u64) -> JwtBuilder<WithExpiry> {
    Jwt::builder(format!("org_{org_id}"))
        .scope(Scope::pipe::<OrgAnalytics>().fixed(|p| p.org_id = Some(org_id)))
        .scope(Scope::pipe::<OrgEvents>().fixed(|p| p.org_id = Some(org_id)))
        .scope(Scope::datasource_append::<Event>())
        .rate_limit(ORG_RPS)
        .expires_in(ORG_TOKEN_TTL)
}

/// Sample events: org 1 has users 11 and 12, org 2 has users 21, 22 and 23; every user a different count.
pub fn sample_events() -> Vec<Event> {
    // (org, user, how many events, first day of March 2024)
    const USERS: &[(u64, u64, u32, u32)] = &[(1, 11, 4, 1), (1, 12, 2, 3), (2, 21, 5, 2), (2, 22, 3, 1), (2, 23, 1, 5)];
    const TYPES: [&str; 3] = ["page_view", "click", "export"];
    let mut events = Vec::new();
    for &(org_id, user_id, count, first_day) in USERS {
        for i in 0..count {
            let timestamp = NaiveDate::from_ymd_opt(2024, 3, first_day + i)
                .and_then(|d| d.and_hms_opt(9 + (user_id % 10) as u32, 0, 0))
                .expect("the table holds valid dates");
            events.push(Event { timestamp, org_id, user_id, event_type: TYPES[i as usize % 3].to_owned() });
        }
    }
    events
}

/// What one org's token returned.
#[derive(Debug, Clone)]
pub struct OrgView {
    /// The org whose token was used.
    pub org_id: u64,
    /// `org_analytics` with the org's token.
    pub users: Vec<OrgUser>,
    /// `org_events` with the org's token.
    pub events: Vec<Event>,
    /// The verified payload of the org's token.
    pub claims: Claims,
}

/// What the example saw, for tests to check.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The events ingested.
    pub ingested: Vec<Event>,
    /// One view per org, in [`ORGS`] order.
    pub views: Vec<OrgView>,
    /// Org 1's token asking `org_analytics` for org 2.
    pub tampered_users: Vec<OrgUser>,
    /// Org 1's token asking `org_events` for org 2.
    pub tampered_events: Vec<Event>,
    /// Rows org 1's token appended to `events`.
    pub appended: u64,
    /// Why a 25-hour org token was refused.
    pub long_ttl_refused: String,
}

/// Runs every step against `backend`, printing what happens.
pub async fn run(backend: Backend) -> Result<Summary, Box<dyn Error>> {
    println!("Multi-tenant tokens: one JWT per org\n");
    // Keeps the local server, if any, alive until the end of `run`: dropping it stops it.
    let backend = backend.connect(tinybird_local::LocalServer::builder()).await?;
    let (admin, key) = (&backend.admin, &backend.key);

    admin.deploy_project(&project(), &DeployOptions::default().poll_interval(Duration::from_millis(200))).await?;
    println!("1. Deployed events, org_analytics and org_events");

    let ingested = sample_events();
    let result = admin.ingest(&ingested).await?;
    println!("2. Ingested {} events for orgs 1 and 2", result.successful_rows);

    println!("3. One token per org (createOrgToken), queried with each:");
    let mut views = Vec::new();
    let mut clients = Vec::new();
    for (org_id, org_name) in ORGS {
        let jwt = org_token(org_id).sign(key)?;
        let claims = jwt::verify(jwt.expose(), key)?;
        let client = admin.with_token(jwt.expose())?;
        let users = client.query(&OrgAnalytics { org_id }).await?.data;
        let events = client.query(&OrgEvents { org_id, limit: None }).await?.data;
        let hours = (claims.exp - chrono::Utc::now().timestamp() + 1800) / 3600;
        let scopes: Vec<String> = claims.scopes.iter().map(|s| format!("{} {}", s.kind, s.resource)).collect();
        println!(
            "   org {org_id} ({org_name}): token `{}`, {hours} h, {ORG_RPS} req/s, {}",
            claims.name,
            scopes.join(", ")
        );
        for u in &users {
            let unit = if u.events == 1 { "event" } else { "events" };
            println!("      user {:>3}: {} {unit}, last seen {}", u.user_id, u.events, u.last_seen);
        }
        let whose = if events.iter().all(|e| e.org_id == org_id) {
            format!("all of org {org_id}")
        } else {
            "SOME FROM ANOTHER ORG".to_owned()
        };
        println!("      org_events: {} events, {whose}", events.len());
        views.push(OrgView { org_id, users, events, claims });
        clients.push(client);
    }

    // Org 1 asks for org 2's data: the token's fixed org_id wins on both endpoints.
    let (a, b) = (ORGS[0].0, ORGS[1].0);
    let tampered_users = clients[0].query(&OrgAnalytics { org_id: b }).await?.data;
    let tampered_events = clients[0].query(&OrgEvents { org_id: b, limit: None }).await?.data;
    let same = tampered_users == views[0].users && tampered_events == views[0].events;
    let verdict =
        if same { format!("org {a}'s own rows again: the fixed org_id wins") } else { "DIFFERENT rows".into() };
    println!("4. Org {a}'s token asking for org {b}: {verdict}");

    // The token's third scope: the org's own backend jobs or browsers may append events.
    let event = Event {
        timestamp: NaiveDate::from_ymd_opt(2024, 3, 20).and_then(|d| d.and_hms_opt(12, 0, 0)).ok_or("bad date")?,
        org_id: a,
        user_id: 11,
        event_type: "click".to_owned(),
    };
    let appended = clients[0].ingest(&[event]).await?.successful_rows;
    println!("5. Org {a}'s token appended {appended} event to `events` (DATASOURCES:APPEND)");

    // Best practice: tokens handed to tenants live at most 24 h unless the code says otherwise.
    let long_ttl_refused = match Jwt::builder(format!("org_{a}"))
        .scope(Scope::pipe::<OrgAnalytics>().fixed(|p| p.org_id = Some(a)))
        .expires_in(ORG_TOKEN_TTL + Duration::from_secs(3600))
        .sign(key)
    {
        Ok(_) => return Err("a 25-hour token was signed without `allow_long_ttl()`".into()),
        Err(e) => e.to_string(),
    };
    println!("6. A 25-hour org token is refused: {long_ttl_refused}");
    println!("\nDone: each org's token sees only that org.");

    Ok(Summary { ingested, views, tampered_users, tampered_events, appended, long_ttl_refused })
}

#[allow(dead_code)] // `tests/it/examples.rs` includes this file and calls `run` instead.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    backend::main(run).await
}
