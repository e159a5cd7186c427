//! How a project wires the `tinybird` command into its own binary (feature `cli`).
//!
//! In your crate this is `src/bin/tinybird.rs` (with `tinybird = { version = "…", features = ["cli"] }`); here it runs
//! as an example:
//!
//! ```text
//! cargo run --example tinybird_cli --features cli -- --help
//! cargo run --example tinybird_cli --features cli -- check
//! cargo run --example tinybird_cli --features cli -- generate --out tinybird
//! cargo run --example tinybird_cli --features cli -- build                 # on Tinybird Local (localhost:7181)
//! TINYBIRD_TOKEN=… cargo run --example tinybird_cli --features cli -- deploy --check
//! ```

use std::process::ExitCode;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use tinybird::project::Project;
use tinybird::{Datasource, Endpoint};

/// Product events, one row per action of a user.
#[derive(Debug, Clone, Serialize, Deserialize, Datasource)]
#[tinybird(
    name = "events",
    engine = "MergeTree",
    sorting_key = "user_id, timestamp",
    partition_key = "toYYYYMM(timestamp)"
)]
pub struct Event {
    #[serde(with = "tinybird::types::wire")]
    pub timestamp: NaiveDateTime,
    pub user_id: u64,
    #[tinybird(type = "LowCardinality(String)")]
    pub event_type: String,
}

/// Daily event counts for one user.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    sql = r#"%
SELECT toDate(timestamp) AS day, count() AS events
FROM events
WHERE user_id = {{UInt64(user_id)}}
GROUP BY day
ORDER BY day"#,
    output(day: NaiveDate, events: u64)
)]
pub struct UserAnalytics {
    /// The user whose events are counted.
    pub user_id: u64,
}

/// Every resource of the project. Keeping this in one function lets tests and the binary share it.
fn project() -> Project {
    Project::new().datasource::<Event>().endpoint::<UserAnalytics>()
}

fn main() -> ExitCode {
    tinybird::cli::main(project())
}
