//! The seed's resources (`events`, `user_analytics`, `top_events`, `org_analytics`) declared with the derives, and
//! what the derives make of them: definitions (snapshots), params, fixed params, rows, column handles.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use tinybird::{Datasource, Endpoint};

/// Product events, one row per action of a user.
///
/// Ingested from the browser and the backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Datasource)]
#[tinybird(
    name = "events",
    engine = "MergeTree",
    sorting_key = "org_id, user_id, timestamp",
    partition_key = "toYYYYMM(timestamp)",
    ttl = "timestamp + INTERVAL 90 DAY",
    settings = "index_granularity=8192",
    index(name = "idx_event_type", expr = "event_type", type = "bloom_filter(0.01)", granularity = 4),
    token(name = "events_append", append),
    token(name = "events_read", read)
)]
pub struct Event {
    #[serde(with = "tinybird::types::wire")]
    pub timestamp: NaiveDateTime,
    pub org_id: u64,
    pub user_id: u64,
    #[tinybird(type = "LowCardinality(String)")]
    pub event_type: String,
    #[tinybird(json = "$.properties.page", default = "''", codec = "ZSTD(1)")]
    pub page: String,
    /// How long the action took, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u32>,
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
    output(day: NaiveDate, events: u64),
    token(name = "dashboard")
)]
pub struct UserAnalytics {
    /// The user whose events are counted.
    pub user_id: u64,
    /// Start of the date range.
    pub start_date: Option<NaiveDateTime>,
    /// End of the date range.
    pub end_date: Option<NaiveDateTime>,
    #[tinybird(default = 100, description = "Maximum number of days")]
    pub limit: Option<u32>,
}

/// The most frequent event types in a time window.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "top_events",
    node(
        name = "windowed",
        description = "Events in the window",
        sql = r#"%
SELECT event_type
FROM events
WHERE timestamp >= {{DateTime(start, '2024-01-01 00:00:00')}}
{% if defined(event_types) %} AND event_type IN {{Array(event_types, 'String')}} {% end %}"#
    ),
    node(
        name = "endpoint",
        sql = r#"%
SELECT event_type, count() AS events
FROM windowed
GROUP BY event_type
ORDER BY events DESC
LIMIT {{Int32(limit, 10)}}"#
    ),
    output(TopEvent { event_type: String, events: u64 }),
    cache_ttl = 60
)]
pub struct TopEvents {
    #[tinybird(default = "2024-01-01 00:00:00")]
    pub start: Option<NaiveDateTime>,
    pub event_types: Option<Vec<String>>,
    #[tinybird(default = 10)]
    pub limit: Option<u16>,
}

/// Per-org analytics for a multi-tenant app: the org comes from the JWT's `fixed_params`.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "org_analytics",
    sql = r#"%
SELECT user_id, count() AS events, max(timestamp) AS last_seen
FROM events
WHERE org_id = {{UInt64(org_id, required=True)}}
GROUP BY user_id
ORDER BY events DESC"#,
    output(OrgUser { user_id: u64, events: u64, last_seen: NaiveDateTime }),
    token(name = "org_dashboard")
)]
pub struct OrgAnalytics {
    pub org_id: u64,
}

/// Raw events of one org, newest first: the output is the datasource's own row type.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    sql = "%\nSELECT * FROM events WHERE org_id = {{UInt64(org_id)}} ORDER BY timestamp DESC LIMIT {{Int32(limit, 50)}}",
    output = Event
)]
pub struct OrgEvents {
    pub org_id: u64,
    #[tinybird(default = 50)]
    pub limit: Option<i32>,
}

use tinybird::FixedParams;
use tinybird::Row;
use tinybird::filter::Column;

#[test]
fn events_definition() {
    insta::assert_debug_snapshot!(Event::definition());
}

#[test]
fn user_analytics_definition() {
    insta::assert_debug_snapshot!(UserAnalytics::definition());
}

#[test]
fn top_events_definition() {
    insta::assert_debug_snapshot!(TopEvents::definition());
}

#[test]
fn org_analytics_definition() {
    insta::assert_debug_snapshot!(OrgAnalytics::definition());
}

#[test]
fn names_default_to_snake_case_of_the_struct() {
    assert_eq!(UserAnalytics::NAME, "user_analytics");
    assert_eq!(OrgEvents::NAME, "org_events");
    assert_eq!(TopEvents::NAME, "top_events");
    assert_eq!(Event::NAME, "events");
}

#[test]
fn params_are_encoded_in_field_order_and_none_is_omitted() {
    let start = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let q = UserAnalytics { user_id: 42, start_date: Some(start), end_date: None, limit: Some(7) };
    let params = q.to_params();
    let pairs: Vec<(&str, &str)> = params.pairs().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(pairs, [("user_id", "42"), ("start_date", "2024-03-01 00:00:00"), ("limit", "7")]);

    let q = TopEvents { start: None, event_types: Some(vec!["click".into(), "view".into()]), limit: None };
    assert_eq!(q.to_params().to_query_string(), "event_types=click&event_types=view");
}

#[test]
fn fixed_params_keep_their_json_type_and_skip_unset_fields() {
    let mut fixed = <UserAnalytics as tinybird::Endpoint>::Fixed::default();
    assert!(fixed.to_json().is_empty());
    fixed.user_id = Some(42);
    fixed.limit = Some(10);
    assert_eq!(serde_json::Value::Object(fixed.to_json()), serde_json::json!({"user_id": 42, "limit": 10}));

    let fixed = OrgAnalyticsFixed { org_id: Some(u64::MAX) };
    assert_eq!(fixed.to_json()["org_id"], serde_json::json!(u64::MAX));

    // The fixed type of an optional param is the param's own type, not `Option<Option<_>>`.
    let fixed = TopEventsFixed { event_types: Some(vec!["click".to_owned()]), ..Default::default() };
    assert_eq!(fixed.to_json()["event_types"], serde_json::json!(["click"]));
}

#[test]
fn inline_output_rows_decode_tinybird_json() {
    let rows: Vec<UserAnalyticsRow> = serde_json::from_str(
        r#"[{"day":"2024-03-01","events":3},{"day":"2024-03-02","events":"18446744073709551615"}]"#,
    )
    .unwrap();
    assert_eq!(rows[0], UserAnalyticsRow { day: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(), events: 3 });
    assert_eq!(rows[1].events, u64::MAX);

    let user: OrgUser =
        serde_json::from_str(r#"{"user_id":"9007199254740993","events":2,"last_seen":"2024-03-01 10:11:12"}"#).unwrap();
    assert_eq!(user.user_id, 9_007_199_254_740_993);
    assert_eq!(user.last_seen.to_string(), "2024-03-01 10:11:12");

    let cols: Vec<(String, String)> = OrgUser::columns().into_iter().map(|c| (c.name, c.ty)).collect();
    assert_eq!(
        cols,
        [
            ("user_id".to_owned(), "UInt64".to_owned()),
            ("events".to_owned(), "UInt64".to_owned()),
            ("last_seen".to_owned(), "DateTime".to_owned())
        ]
    );
}

#[test]
fn an_endpoint_can_return_a_datasource_row() {
    let def = OrgEvents::definition();
    assert_eq!(def.output, Event::columns());
    let row: <OrgEvents as tinybird::Endpoint>::Output = serde_json::from_str(
        r#"{"timestamp":"2024-03-01 10:11:12","org_id":1,"user_id":2,"event_type":"click","page":"/","duration_ms":null}"#,
    )
    .unwrap();
    assert_eq!(row.page, "/");
}

#[test]
fn datasource_columns_are_typed_handles_with_wire_names() {
    let cols = <Event as tinybird::Datasource>::Columns::default();
    let user: Column<u64> = cols.user_id;
    assert_eq!(user.name(), "user_id");
    assert_eq!(cols.event_type.name(), "event_type");
    assert_eq!(cols.duration_ms.name(), "duration_ms");
}

#[test]
fn datasource_rows_round_trip_through_serde() {
    let event = Event {
        timestamp: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap().and_hms_opt(10, 0, 0).unwrap(),
        org_id: 1,
        user_id: 2,
        event_type: "click".into(),
        page: "/pricing".into(),
        duration_ms: None,
    };
    let json = serde_json::to_string(&event).unwrap();
    assert_eq!(
        json,
        r#"{"timestamp":"2024-03-01 10:00:00","org_id":1,"user_id":2,"event_type":"click","page":"/pricing"}"#
    );
    let back: Event = serde_json::from_str(&json.replace('}', r#","duration_ms":null}"#)).unwrap();
    assert_eq!(back, event);
}

/// The seed as one project, in deploy order.
fn seed_project() -> tinybird::project::Project {
    tinybird::project::Project::new()
        .datasource::<Event>()
        .endpoint::<UserAnalytics>()
        .endpoint::<TopEvents>()
        .endpoint::<OrgAnalytics>()
        .endpoint::<OrgEvents>()
}

/// The generated datafiles equal the committed ones under `tests/golden/` (regenerate with `TINYBIRD_BLESS=1` and
/// review the diff), and parse back with the datafile parser.
#[test]
fn golden_datafiles() {
    let project = seed_project();
    assert_eq!(project.validate().unwrap().len(), 0, "the seed project reads only its own datasources and nodes");
    let golden_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("TINYBIRD_BLESS").is_some();
    let files = project.files().unwrap();
    assert_eq!(files.len(), 5);
    for tinybird::project::ProjectFile { path, content: text } in files {
        let golden = golden_dir.join(&path);
        if bless {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &text).unwrap();
        }
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e}; run with TINYBIRD_BLESS=1 to create it", golden.display()));
        assert_eq!(text, expected, "{path} differs from its golden file");
        let name = path.rsplit('/').next().unwrap().split('.').next().unwrap();
        if path.ends_with(".datasource") {
            assert_eq!(tinybird::datafile::parse_datasource(name, &text).unwrap(), Event::definition());
        } else {
            let pipe = tinybird::datafile::parse_pipe(name, &text).unwrap();
            let def = project.endpoints().iter().find(|e| e.name == name).unwrap();
            let names: Vec<&str> = pipe.nodes.iter().map(|n| n.name.as_str()).collect();
            let expected: Vec<&str> = def.nodes.iter().map(|n| n.name.as_str()).collect();
            assert_eq!(names, expected, "{path}: nodes");
        }
    }
}
