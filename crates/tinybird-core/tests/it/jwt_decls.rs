// Hand-written `Endpoint` and `Datasource` impls, as `#[derive(Endpoint)]`/`#[derive(Datasource)]` generate them
// (tinybird-core cannot use its own derives): shared by the JWT tests.

use tinybird_core::datasource::{Datasource, DatasourceDef};
use tinybird_core::endpoint::{Endpoint, EndpointDef, FixedParams};
use tinybird_core::filter::Column;
use tinybird_core::params::{FixedValue, QueryParams};

/// The seed's `user_analytics` endpoint: params `user_id: UInt64`, `days: Int32` (optional).
pub(crate) struct UserAnalytics {
    pub user_id: u64,
    pub days: Option<i32>,
}

/// `UserAnalytics`'s fixable params.
#[derive(Default, Clone)]
pub(crate) struct UserAnalyticsFixed {
    pub user_id: Option<u64>,
    pub days: Option<i32>,
}

impl FixedParams for UserAnalyticsFixed {
    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        if let Some(v) = &self.user_id {
            out.insert("user_id".to_owned(), v.to_fixed());
        }
        if let Some(v) = &self.days {
            out.insert("days".to_owned(), v.to_fixed());
        }
        out
    }
}

impl Endpoint for UserAnalytics {
    const NAME: &'static str = "user_analytics";
    type Output = serde_json::Value;
    type Fixed = UserAnalyticsFixed;
    fn definition() -> EndpointDef {
        EndpointDef { name: Self::NAME.to_owned(), ..Default::default() }
    }
    fn to_params(&self) -> QueryParams {
        let mut params = QueryParams::new();
        params.add("user_id", &self.user_id);
        params.add("days", &self.days);
        params
    }
}

/// The seed's `top_pages` endpoint, fixed to an org: params `org_id: String`.
pub(crate) struct TopPages {
    pub org_id: String,
}

/// `TopPages`'s fixable params.
#[derive(Default, Clone)]
pub(crate) struct TopPagesFixed {
    pub org_id: Option<String>,
}

impl FixedParams for TopPagesFixed {
    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        if let Some(v) = &self.org_id {
            out.insert("org_id".to_owned(), v.to_fixed());
        }
        out
    }
}

impl Endpoint for TopPages {
    const NAME: &'static str = "top_pages";
    type Output = serde_json::Value;
    type Fixed = TopPagesFixed;
    fn definition() -> EndpointDef {
        EndpointDef { name: Self::NAME.to_owned(), ..Default::default() }
    }
    fn to_params(&self) -> QueryParams {
        let mut params = QueryParams::new();
        params.add("org_id", &self.org_id);
        params
    }
}

/// The seed's `events` datasource.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Events {
    pub user_id: u64,
    pub org_id: String,
    pub country: String,
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub referrer: Option<String>,
}

/// `Events`'s typed column handles.
pub(crate) struct EventsColumns {
    pub user_id: Column<u64>,
    pub org_id: Column<String>,
    pub country: Column<String>,
    pub timestamp: Column<chrono::DateTime<chrono::Utc>>,
    pub referrer: Column<Option<String>>,
}

impl Default for EventsColumns {
    fn default() -> Self {
        EventsColumns {
            user_id: Column::new("user_id"),
            org_id: Column::new("org_id"),
            country: Column::new("country"),
            timestamp: Column::new("timestamp"),
            referrer: Column::new("referrer"),
        }
    }
}

impl Datasource for Events {
    const NAME: &'static str = "events";
    type Columns = EventsColumns;
    fn definition() -> DatasourceDef {
        DatasourceDef { name: Self::NAME.to_owned(), ..Default::default() }
    }
}
