//! A per-tenant daily rollup: events → a materialized view into an `AggregatingMergeTree` → a JWT-scoped endpoint
//! that reads it back with `-Merge`.
//!
//! ```text
//! cargo run --example rollup
//! ```
//!
//! The rollup keeps one row per org and day however many events arrive: `events` is summed
//! (`SimpleAggregateFunction(sum, UInt64)`), distinct users are a `uniq` state (`AggregateFunction(uniq, UInt64)`)
//! and the last event a `max` state. The view writes partial rows on every ingest; the endpoint merges them
//! (`sum(events)`, `uniqMerge(users)`, `maxMerge(last_seen)`), and each org's JWT fixes `org_id`, so an org reads
//! its own rollup only.
//!
//! Without `TINYBIRD_TOKEN` it starts `tinybird-local` in-process on its ClickHouse engine (aggregate states are
//! ClickHouse's own format; the DataFusion engine refuses them by name), which needs chDB:
//! `python3 -m pip install --no-deps chdb-core==26.9.0`. With `TINYBIRD_TOKEN`, `TINYBIRD_SIGNING_KEY` (the workspace admin token) and
//! optionally `TINYBIRD_URL` it runs against that Tinybird workspace; use a scratch one, as a deployment replaces
//! what is there.

use std::error::Error;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use tinybird::client::DeployOptions;
use tinybird::jwt::{Jwt, JwtBuilder, Scope, WithExpiry};
use tinybird::pipes::MaterializedView;
use tinybird::project::Project;
use tinybird::types::{AggregateState, SimpleAggregate, agg};
use tinybird::{Datasource, Endpoint};

/// Product events of every org, one row per action of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Datasource)]
#[tinybird(name = "events", engine = "MergeTree", sorting_key = "org_id, timestamp")]
pub struct Event {
    /// When it happened (UTC).
    #[serde(with = "tinybird::types::wire")]
    pub timestamp: NaiveDateTime,
    /// The tenant.
    pub org_id: u64,
    /// Who did it.
    pub user_id: u64,
}

/// The rollup: one row per org and day once ClickHouse has merged its parts, written only by [`daily_view`].
#[derive(Debug, Clone, Serialize, Deserialize, Datasource)]
#[tinybird(name = "org_daily", engine = "AggregatingMergeTree", sorting_key = "org_id, day")]
pub struct OrgDaily {
    /// The tenant.
    pub org_id: u64,
    /// The day (UTC).
    pub day: NaiveDate,
    /// Events of the day: each partial row's count, added up when parts merge.
    pub events: SimpleAggregate<agg::Sum, u64>,
    /// Distinct users of the day: a `uniq` state.
    pub users: AggregateState<agg::Uniq, u64>,
    /// The day's last event: a `max` state.
    pub last_seen: AggregateState<agg::Max, NaiveDateTime>,
}

/// What the view's SQL writes, declared to write [`OrgDaily`]: a column `OrgDaily` lacks, or of another type, does
/// not compile.
#[derive(Debug, Deserialize, tinybird::Row)]
#[tinybird(writes = "OrgDaily")]
#[allow(dead_code)] // Declared, not read: only its columns matter.
pub struct OrgDailyRow {
    /// The tenant.
    pub org_id: u64,
    /// The day.
    pub day: NaiveDate,
    /// `count()`.
    pub events: SimpleAggregate<agg::Sum, u64>,
    /// `uniqState(user_id)`.
    pub users: AggregateState<agg::Uniq, u64>,
    /// `maxState(timestamp)`.
    pub last_seen: AggregateState<agg::Max, NaiveDateTime>,
}

/// The materialized view: every batch ingested into `events` appends its partial aggregates to `org_daily`.
pub fn daily_view() -> MaterializedView<OrgDaily> {
    MaterializedView::new("org_daily_mv")
        .node(
            "rollup",
            "SELECT org_id, toDate(timestamp) AS day, count() AS events, uniqState(user_id) AS users, \
             maxState(timestamp) AS last_seen FROM events GROUP BY org_id, day",
        )
        .output::<OrgDailyRow>()
}

/// One org's days, merged from the rollup.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "org_daily_stats",
    sql = r#"%
SELECT day, sum(events) AS events, uniqMerge(users) AS users, maxMerge(last_seen) AS last_seen
FROM org_daily
WHERE org_id = {{UInt64(org_id, required=True)}}
GROUP BY day
ORDER BY day"#,
    output(OrgDay { day: NaiveDate, events: u64, users: u64, last_seen: NaiveDateTime })
)]
pub struct OrgDailyStats {
    /// The org. The JWT's `fixed_params.org_id` overrides it.
    pub org_id: u64,
}

/// The project this example deploys.
pub fn project() -> Project {
    Project::new()
        .datasource::<Event>()
        .datasource::<OrgDaily>()
        .materialized_view(&daily_view())
        .endpoint::<OrgDailyStats>()
}

/// An org's dashboard token: it reads its own rollup only, for an hour.
pub fn org_token(org_id: u64) -> JwtBuilder<WithExpiry> {
    Jwt::builder(format!("org_{org_id}_rollup"))
        .scope(Scope::pipe::<OrgDailyStats>().fixed(|p| p.org_id = Some(org_id)))
        .expires_in(Duration::from_secs(3600))
}

/// The orgs of the demo.
pub const ORGS: [u64; 2] = [1, 2];

/// Sample events over three days of March 2024, in two batches (so the rollup holds several partial rows per day
/// until they are merged): (org, user, day, hour).
pub fn sample_batches() -> [Vec<Event>; 2] {
    let event = |(org_id, user_id, day, hour): (u64, u64, u32, u32)| Event {
        timestamp: NaiveDate::from_ymd_opt(2024, 3, day)
            .and_then(|d| d.and_hms_opt(hour, 0, 0))
            .expect("the table holds valid dates"),
        org_id,
        user_id,
    };
    let first = [(1, 11, 1, 9), (1, 12, 1, 10), (1, 11, 2, 9), (2, 21, 1, 8), (2, 22, 1, 9), (2, 21, 3, 11)];
    let second = [(1, 11, 1, 17), (1, 13, 1, 18), (1, 12, 2, 12), (2, 23, 1, 20), (2, 21, 3, 7)];
    [first.into_iter().map(event).collect(), second.into_iter().map(event).collect()]
}

#[path = "support/backend.rs"]
#[allow(clippy::duplicate_mod)] // `tests/it/examples.rs` includes several examples, each with this module.
mod backend;
pub use backend::Backend;

/// What the example saw, for tests to check.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The events ingested, both batches.
    pub ingested: Vec<Event>,
    /// Each org's rollup read with its own token, in [`ORGS`] order.
    pub days: Vec<(u64, Vec<OrgDay>)>,
    /// Org 1's token asking for org 2's rollup.
    pub tampered: Vec<OrgDay>,
    /// Why ingesting a row of the rollup itself was refused.
    pub state_not_sent: String,
}

/// Runs every step against `backend`, printing what happens.
pub async fn run(backend: Backend) -> Result<Summary, Box<dyn Error>> {
    println!("Per-tenant daily rollup: events → materialized view → AggregatingMergeTree → -Merge endpoint\n");
    // Keeps the local server, if any, alive until the end of `run`: dropping it stops it.
    let backend =
        backend.connect(tinybird_local::LocalServer::builder().engine(tinybird_local::EngineKind::ClickHouse)).await?;
    let (admin, key) = (&backend.admin, &backend.key);

    admin.deploy_project(&project(), &DeployOptions::default().poll_interval(Duration::from_millis(200))).await?;
    println!("1. Deployed events, org_daily (AggregatingMergeTree), org_daily_mv and org_daily_stats");

    let mut ingested = Vec::new();
    for (i, batch) in sample_batches().into_iter().enumerate() {
        let sent = admin.ingest(&batch).await?.successful_rows;
        println!("2.{} Ingested {sent} events; the view appended their partial aggregates to org_daily", i + 1);
        ingested.extend(batch);
    }

    println!("3. Each org's rollup, with its own token:");
    let mut days = Vec::new();
    let mut clients = Vec::new();
    for org_id in ORGS {
        let client = admin.with_token(org_token(org_id).sign(key)?.expose())?;
        let rows = client.query(&OrgDailyStats { org_id }).await?.data;
        println!("   org {org_id}:");
        for d in &rows {
            let users = if d.users == 1 { "user" } else { "users" };
            println!("      {}: {} events, {} {users}, last at {}", d.day, d.events, d.users, d.last_seen.time());
        }
        days.push((org_id, rows));
        clients.push(client);
    }

    let tampered = clients[0].query(&OrgDailyStats { org_id: ORGS[1] }).await?.data;
    let verdict = if tampered == days[0].1 { "its own rollup again: the fixed org_id wins" } else { "ANOTHER ORG'S" };
    println!("4. Org {}'s token asking for org {}: {verdict}", ORGS[0], ORGS[1]);

    // The rollup's states are ClickHouse's binary format: a row of it cannot be sent, and says why.
    let row = OrgDaily {
        org_id: 1,
        day: NaiveDate::from_ymd_opt(2024, 3, 1).ok_or("bad date")?,
        events: SimpleAggregate::new(1),
        users: AggregateState::new(),
        last_seen: AggregateState::new(),
    };
    let state_not_sent = match admin.ingest(&[row]).await {
        Ok(_) => return Err("a row holding aggregate states was sent".into()),
        Err(e) => e.to_string(),
    };
    println!("5. Sending a row of the rollup itself is refused: {state_not_sent}");
    println!("\nDone: one rollup, each org reads its own days.");
    Ok(Summary { ingested, days, tampered, state_not_sent })
}

#[allow(dead_code)] // `tests/it/examples.rs` includes this file and calls `run` instead.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    backend::main(run).await
}
