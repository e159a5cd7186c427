//! The SDK's client driven end to end against an in-process `tinybird-local`: typed queries with every common type,
//! streaming, SQL, ingestion (one-shot and batching), datasource operations, JWTs and the errors Tinybird returns.
//!
//! Each test starts its own server, so tests do not see each other's rows.

use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tinybird::client::{
    Client, DeleteOptions, ImportSource, IngestOptions, QueryOptions, RetryPolicy, StaticTokenRequest,
};
use tinybird::error::ErrorKind;
use tinybird::jwt::{Jwt, Scope, SigningKey};
use tinybird::params::QueryParams;
use tinybird::project::{Project, ProjectFile};
use tinybird::types::DateTime64;
use tinybird::{Datasource, Endpoint, Row};

// ---------------------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------------------

/// One column of each type the round trip covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Datasource)]
#[tinybird(name = "all_types", engine = "MergeTree", sorting_key = "id")]
pub struct AllTypes {
    pub id: u32,
    pub big: u64,
    pub neg: i64,
    pub maybe_text: Option<String>,
    pub maybe_num: Option<i32>,
    pub tags: Vec<String>,
    pub nums: Vec<i64>,
    #[serde(with = "tinybird::types::wire")]
    pub at: NaiveDateTime,
    pub at_ms: DateTime64<3>,
    pub day: NaiveDate,
    #[tinybird(type = "LowCardinality(String)")]
    pub kind: String,
    pub flag: bool,
    pub score: f64,
}

/// Every row of `all_types` from `min_id` on, in id order.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "all_types_from",
    sql = "%\nSELECT * FROM all_types WHERE id >= {{UInt32(min_id, 0)}} ORDER BY id",
    output = AllTypes
)]
pub struct AllTypesFrom {
    #[tinybird(default = 0)]
    pub min_id: Option<u32>,
}

/// `all_types` rows picked by 64-bit values and an array of ids: parameters past 2^53 must arrive exactly.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "all_types_where",
    sql = r#"%
SELECT * FROM all_types
WHERE 1 = 1
{% if defined(big) %} AND big = {{UInt64(big)}} {% end %}
{% if defined(neg) %} AND neg = {{Int64(neg)}} {% end %}
{% if defined(ids) %} AND id IN {{Array(ids, 'UInt32')}} {% end %}
{% if defined(kinds) %} AND kind IN {{Array(kinds, 'String')}} {% end %}
{% if defined(flag) %} AND flag = {{Boolean(flag)}} {% end %}
{% if defined(since) %} AND at >= {{DateTime(since)}} {% end %}
{% if defined(on_day) %} AND day = {{Date(on_day)}} {% end %}
{% if defined(since_ms) %} AND at_ms >= {{DateTime64(since_ms)}} {% end %}
{% if defined(texts) %} AND maybe_text IN {{Array(texts, 'String')}} {% end %}
ORDER BY id"#,
    output = AllTypes
)]
pub struct AllTypesWhere {
    pub big: Option<u64>,
    pub neg: Option<i64>,
    pub ids: Option<Vec<u32>>,
    pub kinds: Option<Vec<String>>,
    pub flag: Option<bool>,
    pub since: Option<NaiveDateTime>,
    pub on_day: Option<NaiveDate>,
    pub since_ms: Option<DateTime64<3>>,
    pub texts: Option<Vec<String>>,
}

/// Many small rows, for streaming and batching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Datasource)]
#[tinybird(name = "hits", engine = "MergeTree", sorting_key = "user_id, id")]
pub struct Hit {
    pub id: u64,
    pub user_id: u64,
    pub page: String,
    pub value: f64,
}

/// All hits in id order.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(name = "all_hits", sql = "SELECT * FROM hits ORDER BY id", output = Hit)]
pub struct AllHits {}

/// A client-side row type out of date with `hits` (signed `user_id`): not deployed, used to send rows the server
/// quarantines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Datasource)]
#[tinybird(name = "hits", engine = "MergeTree", sorting_key = "id")]
pub struct StaleHit {
    pub id: u64,
    pub user_id: i64,
    pub page: String,
    pub value: f64,
}

/// The most visited pages, with a `LIMIT` (so the envelope has `rows_before_limit_at_least`).
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "top_pages",
    sql = "%\nSELECT page, count() AS visits FROM hits GROUP BY page ORDER BY visits DESC, page LIMIT {{Int32(limit, 3)}}",
    output(TopPage { page: String, visits: u64 })
)]
pub struct TopPages {
    #[tinybird(default = 3)]
    pub limit: Option<i32>,
}

/// One user's hits; the JWT tests pin `user_id` with `fixed_params`.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "user_hits",
    sql = "%\nSELECT id, page FROM hits WHERE user_id = {{UInt64(user_id)}} ORDER BY id",
    output(UserHit { id: u64, page: String })
)]
pub struct UserHits {
    pub user_id: u64,
}

/// Declares a column (`missing_col`) that its SQL does not return: the client's `meta` check must catch it.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "bad_output",
    sql = "SELECT id FROM hits ORDER BY id",
    output(BadOutputRow { id: u64, missing_col: String })
)]
pub struct BadOutput {}

/// A pipe whose parameter is required (a non-`Option` field).
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "hits_by_user",
    sql = "%\nSELECT id FROM hits WHERE user_id = {{UInt64(user_id, required=True)}} ORDER BY id",
    output(HitId { id: u64 })
)]
pub struct HitsByUser {
    pub user_id: u64,
}

/// The client's view of `hits_by_user` with the parameter left optional, to send a request without it. Not
/// deployed: only its name and parameters are used.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "hits_by_user",
    sql = "%\nSELECT id FROM hits WHERE user_id = {{UInt64(user_id, 0)}} ORDER BY id",
    output(LooseHitId { id: u64 })
)]
pub struct HitsByUserLoose {
    pub user_id: Option<u64>,
}

/// A pipe that is never deployed.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(name = "ghost_pipe", sql = "SELECT 1 AS one", output(GhostRow { one: u8 }))]
pub struct Ghost {}

fn project() -> Project {
    Project::new()
        .datasource::<AllTypes>()
        .datasource::<Hit>()
        .endpoint::<AllTypesFrom>()
        .endpoint::<AllTypesWhere>()
        .endpoint::<AllHits>()
        .endpoint::<TopPages>()
        .endpoint::<UserHits>()
        .endpoint::<BadOutput>()
        .endpoint::<HitsByUser>()
}

/// A server with [`project`] and a client holding its admin token.
async fn start() -> (tinybird_local::LocalServer, Client) {
    let server = tinybird_local::LocalServer::start(project()).await.expect("tinybird-local starts with the project");
    let client = Client::builder()
        .base_url(server.url())
        .token(server.admin_token())
        .build()
        .expect("a client for the local server");
    (server, client)
}

#[derive(Debug, Deserialize, Row)]
struct Count {
    c: u64,
}

/// `count()` of a table through `/v0/sql`.
async fn count(client: &Client, table: &str) -> u64 {
    let res = client.sql::<Count>(&format!("SELECT count() AS c FROM {table}")).await.expect("count() runs");
    assert_eq!(res.data.len(), 1);
    res.data[0].c
}

fn hit(i: u64) -> Hit {
    Hit { id: i, user_id: i % 7, page: format!("/page/{}", i % 13), value: i as f64 / 4.0 }
}

fn ts(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").expect("a valid timestamp literal")
}

fn all_types_rows() -> Vec<AllTypes> {
    vec![
        AllTypes {
            id: 1,
            big: u64::MAX,
            neg: i64::MIN,
            maybe_text: None,
            maybe_num: Some(-42),
            tags: vec![
                "a".into(),
                "b c".into(),
                "quote\"and\\slash".into(),
                "ünï 🦀".into(),
                "line\nbreak\ttab".into(),
            ],
            nums: vec![i64::MIN, -1, 0, i64::MAX],
            at: ts("2024-02-29 23:59:59"),
            at_ms: DateTime64::new(ts("2024-03-01 00:00:00.123")),
            day: NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
            kind: "click".into(),
            flag: true,
            score: 0.1,
        },
        AllTypes {
            id: 2,
            // 2^53 + 1: the first integer an f64 cannot hold.
            big: (1u64 << 53) + 1,
            neg: -9_007_199_254_740_993,
            maybe_text: Some(String::new()),
            maybe_num: None,
            tags: vec![],
            nums: vec![],
            at: ts("1970-01-01 00:00:00"),
            at_ms: DateTime64::new(ts("2106-02-07 06:28:15.999")),
            day: NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
            kind: "view".into(),
            flag: false,
            score: -1.5e300,
        },
        AllTypes {
            id: 3,
            big: 12_345_678_901_234_567_890,
            neg: -1,
            maybe_text: Some("x".into()),
            maybe_num: Some(i32::MAX),
            tags: vec![String::new()],
            nums: vec![9_007_199_254_740_993],
            at: ts("2038-01-19 03:14:08"),
            at_ms: DateTime64::new(ts("2000-01-01 12:00:00.001")),
            day: NaiveDate::from_ymd_opt(2149, 6, 6).unwrap(),
            kind: "click".into(),
            flag: true,
            score: std::f64::consts::PI,
        },
    ]
}

// ---------------------------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn typed_query_round_trips_every_type_losslessly() {
    let (_server, client) = start().await;
    let rows = all_types_rows();
    let ingested = client.ingest(&rows).await.expect("the rows are ingested");
    assert_eq!((ingested.successful_rows, ingested.quarantined_rows), (3, 0));

    let res = client.query(&AllTypesFrom { min_id: None }).await.expect("the typed query succeeds");
    assert_eq!(res.data, rows, "every value comes back exactly as ingested");
    assert_eq!(res.rows, 3);

    let types: Vec<(&str, &str)> = res.meta.iter().map(|m| (m.name.as_str(), m.ty.as_str())).collect();
    assert_eq!(
        types,
        vec![
            ("id", "UInt32"),
            ("big", "UInt64"),
            ("neg", "Int64"),
            ("maybe_text", "Nullable(String)"),
            ("maybe_num", "Nullable(Int32)"),
            ("tags", "Array(String)"),
            ("nums", "Array(Int64)"),
            ("at", "DateTime"),
            ("at_ms", "DateTime64(3)"),
            ("day", "Date"),
            ("kind", "LowCardinality(String)"),
            ("flag", "Bool"),
            ("score", "Float64"),
        ]
    );

    // A parameter filters on the server.
    let from_2 = client.query(&AllTypesFrom { min_id: Some(2) }).await.unwrap();
    assert_eq!(from_2.data, rows[1..].to_vec());

    // The same rows streamed as NDJSON (another encoder on the server).
    let streamed: Vec<AllTypes> = client
        .query_stream(&AllTypesFrom { min_id: None })
        .await
        .unwrap()
        .map(|r| r.expect("row decodes"))
        .collect()
        .await;
    assert_eq!(streamed, rows, "the .ndjson form round-trips every value too");

    // Parameters of every kind select the right rows, 64-bit values exactly.
    let none = AllTypesWhere {
        big: None,
        neg: None,
        ids: None,
        kinds: None,
        flag: None,
        since: None,
        on_day: None,
        since_ms: None,
        texts: None,
    };
    let cases: Vec<(AllTypesWhere, Vec<u32>)> = vec![
        (AllTypesWhere { big: Some(u64::MAX), ..none.clone() }, vec![1]),
        (AllTypesWhere { big: Some((1 << 53) + 1), ..none.clone() }, vec![2]),
        (AllTypesWhere { big: Some(1 << 53), ..none.clone() }, vec![]),
        (AllTypesWhere { neg: Some(i64::MIN), ..none.clone() }, vec![1]),
        (AllTypesWhere { neg: Some(-9_007_199_254_740_993), ..none.clone() }, vec![2]),
        (AllTypesWhere { ids: Some(vec![3, 1, 99]), ..none.clone() }, vec![1, 3]),
        (AllTypesWhere { kinds: Some(vec!["view".into(), "it's".into()]), ..none.clone() }, vec![2]),
        (AllTypesWhere { flag: Some(true), ..none.clone() }, vec![1, 3]),
        (AllTypesWhere { flag: Some(false), ..none.clone() }, vec![2]),
        (AllTypesWhere { since: Some(ts("2024-02-29 23:59:59")), ..none.clone() }, vec![1, 3]),
        (AllTypesWhere { since_ms: Some(DateTime64::new(ts("2024-03-01 00:00:00.123"))), ..none.clone() }, vec![1, 2]),
        (AllTypesWhere { since_ms: Some(DateTime64::new(ts("2024-03-01 00:00:00.124"))), ..none.clone() }, vec![2]),
        (AllTypesWhere { texts: Some(vec!["x".into(), String::new()]), ..none.clone() }, vec![2, 3]),
        (AllTypesWhere { on_day: Some(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()), ..none.clone() }, vec![2]),
    ];
    for (params, ids) in cases {
        let res = client.query(&params).await.unwrap_or_else(|e| panic!("{params:?}: {e}"));
        let got: Vec<u32> = res.data.iter().map(|r| r.id).collect();
        assert_eq!(got, ids, "{params:?}");
        for row in &res.data {
            assert_eq!(row, &rows[row.id as usize - 1]);
        }
    }

    // With `output_format_json_quote_64bit_integers=1` the server quotes 64-bit integers; `wire` fields read both.
    #[derive(Debug, Deserialize, PartialEq, Row)]
    struct Quoted {
        #[serde(with = "tinybird::types::wire")]
        big: u64,
        #[serde(with = "tinybird::types::wire")]
        neg: i64,
        #[serde(with = "tinybird::types::wire")]
        nums: Vec<i64>,
    }
    let quoted_opts = QueryOptions::new().param("output_format_json_quote_64bit_integers", "1");
    let quoted = client
        .sql::<Quoted>("SELECT big, neg, nums FROM all_types ORDER BY id")
        .options(quoted_opts.clone())
        .await
        .expect("quoted 64-bit integers decode");
    let expected: Vec<Quoted> = rows.iter().map(|r| Quoted { big: r.big, neg: r.neg, nums: r.nums.clone() }).collect();
    assert_eq!(quoted.data, expected);
    let raw = client
        .sql::<serde_json::Value>("SELECT big FROM all_types WHERE id = 1")
        .options(quoted_opts.clone())
        .await
        .unwrap();
    assert_eq!(raw.data, vec![serde_json::json!({"big": "18446744073709551615"})], "the server quotes UInt64");

    // The same rows through `/v0/sql` into the datasource's own type.
    let via_sql = client.sql::<AllTypes>("SELECT * FROM all_types ORDER BY id").await.unwrap();
    assert_eq!(via_sql.data, rows);
}

#[tokio::test]
async fn streams_sql_and_templated_sql() {
    let (_server, client) = start().await;
    let rows: Vec<Hit> = (0..20_000).map(hit).collect();
    let ingested = client.ingest(&rows).await.unwrap();
    assert_eq!((ingested.successful_rows, ingested.quarantined_rows), (20_000, 0));

    // `.ndjson` streaming: every row, in order, decoded one by one.
    let mut stream = client.query_stream(&AllHits {}).await.expect("the stream starts");
    let mut n = 0usize;
    while let Some(row) = stream.next().await {
        let row = row.expect("every streamed row decodes");
        assert_eq!(row, rows[n], "row {n}");
        n += 1;
    }
    assert_eq!(n, rows.len());
    assert_eq!(stream.rows_read(), rows.len() as u64);

    // `sql::<Row>`: typed rows from `/v0/sql`.
    let some = client.sql::<Hit>("SELECT * FROM hits WHERE id < 5 ORDER BY id").await.unwrap();
    assert_eq!(some.data, rows[..5].to_vec());
    assert_eq!(some.rows, 5);

    // `sql` into untyped JSON values.
    let untyped = client
        .sql::<serde_json::Value>("SELECT user_id, count() AS n FROM hits GROUP BY user_id ORDER BY user_id")
        .await
        .unwrap();
    let expected: Vec<serde_json::Value> = (0..7u64)
        .map(|u| serde_json::json!({"user_id": u, "n": rows.iter().filter(|h| h.user_id == u).count() as u64}))
        .collect();
    assert_eq!(untyped.data, expected);
    let meta: Vec<(&str, &str)> = untyped.meta.iter().map(|m| (m.name.as_str(), m.ty.as_str())).collect();
    assert_eq!(meta, vec![("user_id", "UInt64"), ("n", "UInt64")]);

    // `WITH TOTALS`: the totals row, typed like the rows, on both engines.
    #[derive(Debug, PartialEq, Deserialize, Row)]
    struct PerUser {
        user_id: u64,
        n: u64,
    }
    let totals = client
        .sql::<PerUser>("SELECT user_id, count() AS n FROM hits GROUP BY user_id WITH TOTALS ORDER BY user_id LIMIT 2")
        .await;
    let totals = totals.expect("WITH TOTALS runs");
    assert_eq!(totals.data.len(), 2);
    assert_eq!(totals.totals, Some(PerUser { user_id: 0, n: 20_000 }));
    assert_eq!(totals.rows_before_limit_at_least, Some(7));
    assert_eq!(untyped.totals, None);

    // Templated SQL with params.
    let mut params = QueryParams::new();
    params.add("max_id", &100u64);
    params.add("page", "/page/3");
    let templated = client
        .sql::<Count>("%\nSELECT count() AS c FROM hits WHERE id < {{UInt64(max_id)}} AND page = {{String(page)}}")
        .params(params.clone())
        .await
        .expect("templated SQL runs");
    let expected = rows.iter().filter(|h| h.id < 100 && h.page == "/page/3").count() as u64;
    assert!(expected > 0);
    assert_eq!(templated.data[0].c, expected);

    // An array parameter (comma-separated on the wire).
    let mut params = QueryParams::new();
    params.add("ids", &vec![3u64, 14, 15, 92, 65_358]);
    let picked = client
        .sql::<Hit>("%\nSELECT * FROM hits WHERE id IN {{Array(ids, 'UInt64')}} ORDER BY id")
        .params(params.clone())
        .await
        .expect("templated SQL with an array runs");
    assert_eq!(picked.data, vec![hit(3), hit(14), hit(15), hit(92)]);

    // `sql_stream`: the same rows as NDJSON from `/v0/sql`.
    let streamed: Vec<Hit> = client
        .sql_stream::<Hit>("SELECT * FROM hits WHERE user_id = 3 ORDER BY id")
        .await
        .unwrap()
        .map(|r| r.expect("row decodes"))
        .collect()
        .await;
    let expected: Vec<Hit> = rows.iter().filter(|h| h.user_id == 3).cloned().collect();
    assert_eq!(streamed, expected);
}

#[tokio::test]
async fn meta_check_names_the_missing_column() {
    let (_server, client) = start().await;
    client.ingest(&[hit(1)]).await.unwrap();
    let err = client.query(&BadOutput {}).await.expect_err("the declared column is not returned");
    match err.kind() {
        ErrorKind::SchemaMismatch { column } => assert_eq!(column, "missing_col"),
        other => panic!("expected SchemaMismatch, got {other:?}: {err}"),
    }
    assert!(err.to_string().contains("missing_col"), "{err}");

    // The opt-out skips the check; decoding then fails on the absent field, again naming it.
    let err = client.query(&BadOutput {}).skip_meta_check().await.expect_err("the row type still needs the column");
    match err.kind() {
        ErrorKind::Decode { column, row } => {
            assert_eq!(column.as_deref(), Some("missing_col"), "{err}");
            assert_eq!(*row, Some(0), "{err}");
        }
        other => panic!("expected Decode, got {other:?}: {err}"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_rows_are_quarantined_and_good_rows_kept() {
    let (_server, client) = start().await;
    let rows = vec![
        serde_json::json!({"id": 1, "user_id": 10, "page": "/a", "value": 1.5}),
        serde_json::json!({"id": "not a number", "user_id": 10, "page": "/b", "value": 2.0}),
        serde_json::json!({"id": 3, "user_id": 11, "page": "/c", "value": 3.5}),
        serde_json::json!({"id": 4, "user_id": -5, "page": "/d", "value": 4.0}),
        serde_json::json!({"id": 5, "user_id": 12, "page": "/e", "value": "high"}),
        serde_json::json!({"id": 6, "user_id": 12, "page": "/f", "value": 6.25}),
    ];
    let res = client.ingest_to("hits", &rows, &IngestOptions::default()).await.expect("the batch is acknowledged");
    assert_eq!(res.successful_rows, 3);
    assert_eq!(res.quarantined_rows, 3);

    let good = client.sql::<Hit>("SELECT * FROM hits ORDER BY id").await.unwrap();
    assert_eq!(
        good.data,
        vec![
            Hit { id: 1, user_id: 10, page: "/a".into(), value: 1.5 },
            Hit { id: 3, user_id: 11, page: "/c".into(), value: 3.5 },
            Hit { id: 6, user_id: 12, page: "/f".into(), value: 6.25 },
        ]
    );

    #[derive(Debug, Deserialize, Row)]
    struct QuarantineRow {
        page: Option<String>,
        #[serde(rename = "c__error_column")]
        error_columns: Vec<String>,
        #[serde(rename = "c__error")]
        errors: Vec<String>,
    }
    let q = client
        .sql::<QuarantineRow>("SELECT page, c__error_column, c__error FROM hits_quarantine ORDER BY page")
        .await
        .expect("the quarantine datasource is queryable as admin");
    let pages: Vec<Option<&str>> = q.data.iter().map(|r| r.page.as_deref()).collect();
    assert_eq!(pages, vec![Some("/b"), Some("/d"), Some("/e")]);
    let columns: Vec<&[String]> = q.data.iter().map(|r| r.error_columns.as_slice()).collect();
    assert_eq!(columns, vec![&["id".to_owned()][..], &["user_id".to_owned()][..], &["value".to_owned()][..]]);
    assert!(q.data.iter().all(|r| !r.errors.is_empty()), "each quarantined row says why");
}

#[tokio::test]
async fn batching_ingestor_delivers_every_row() {
    let (_server, client) = start().await;
    const N: u64 = 50_000;
    let ingestor = client
        .ingestor::<Hit>()
        .max_rows(2_000)
        .options(IngestOptions::default().max_request_bytes(32 * 1024))
        .gzip(true)
        .queue_capacity(1_000)
        .interval(Duration::from_millis(50))
        .start();
    for i in 0..N {
        ingestor.push(hit(i)).await.expect("the ingestor is running");
    }
    let report = ingestor.close().await.expect("every row is acknowledged");
    assert_eq!(report.successful_rows, N);
    assert_eq!(report.quarantined_rows, 0);
    assert_eq!(count(&client, "hits").await, N);

    #[derive(Debug, Deserialize, PartialEq, Row)]
    struct Agg {
        min_id: u64,
        max_id: u64,
        distinct_ids: u64,
        total: f64,
    }
    let agg = client
        .sql::<Agg>(
            "SELECT min(id) AS min_id, max(id) AS max_id, uniqExact(id) AS distinct_ids, sum(value) AS total FROM hits",
        )
        .await
        .unwrap();
    let total: f64 = (0..N).map(|i| i as f64 / 4.0).sum();
    assert_eq!(agg.data, vec![Agg { min_id: 0, max_id: N - 1, distinct_ids: N, total }], "no row lost or doubled");
}

#[tokio::test]
async fn delete_truncate_and_append_from_a_file() {
    let (_server, client) = start().await;
    let rows: Vec<Hit> = (0..100).map(hit).collect();
    client.ingest(&rows).await.unwrap();

    let dry = client
        .delete_rows("hits", "user_id = 3", &DeleteOptions::default().dry_run(true))
        .await
        .expect("the dry run answers");
    let matching = rows.iter().filter(|h| h.user_id == 3).count() as u64;
    assert_eq!(dry.rows_to_be_deleted, Some(matching));
    assert_eq!(count(&client, "hits").await, 100, "a dry run deletes nothing");

    let deleted = client.delete_rows("hits", "user_id = 3", &DeleteOptions::default()).await.expect("the delete runs");
    assert!(deleted.job_id.is_some() || deleted.id.is_some(), "the delete names its job: {deleted:?}");
    assert_eq!(count(&client, "hits").await, 100 - matching);
    let left = client.sql::<Count>("SELECT count() AS c FROM hits WHERE user_id = 3").await.unwrap();
    assert_eq!(left.data[0].c, 0);

    client.truncate("hits").await.expect("the truncate runs");
    assert_eq!(count(&client, "hits").await, 0);

    // Append from a file on disk (NDJSON, format from the extension).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hits.ndjson");
    let file_rows: Vec<Hit> = (1_000..1_250).map(hit).collect();
    let ndjson: String = file_rows.iter().map(|h| serde_json::to_string(h).unwrap() + "\n").collect();
    std::fs::write(&path, ndjson).unwrap();
    let imported = client.append("hits", ImportSource::File(path)).await.expect("the file is appended");
    assert_eq!((imported.successful_rows, imported.quarantined_rows), (250, 0));

    // And from CSV bytes, with one row that does not fit.
    let csv = "id,user_id,page,value\n2000,1,/x,0.5\n2001,oops,/y,1\n2002,2,/z,2.5\n";
    let imported = client
        .append("hits", ImportSource::Bytes { filename: "more.csv".into(), data: csv.as_bytes().to_vec().into() })
        .await
        .expect("the CSV is appended");
    assert_eq!((imported.successful_rows, imported.quarantined_rows), (2, 1));

    let all = client.sql::<Hit>("SELECT * FROM hits ORDER BY id").await.unwrap();
    let mut expected = file_rows.clone();
    expected.push(Hit { id: 2000, user_id: 1, page: "/x".into(), value: 0.5 });
    expected.push(Hit { id: 2002, user_id: 2, page: "/z".into(), value: 2.5 });
    assert_eq!(all.data, expected);
}

// ---------------------------------------------------------------------------------------------------------------
// JWTs
// ---------------------------------------------------------------------------------------------------------------

fn user_hits_jwt(user: u64) -> tinybird::jwt::JwtBuilder<tinybird::jwt::WithExpiry> {
    Jwt::builder(format!("user_{user}"))
        .scope(Scope::pipe::<UserHits>().fixed(|p| p.user_id = Some(user)))
        .expires_in(Duration::from_secs(600))
}

#[tokio::test]
async fn token_api_and_local_jwts_behave_the_same() {
    let (server, admin) = start().await;
    let rows: Vec<Hit> = (0..70).map(hit).collect();
    admin.ingest(&rows).await.unwrap();
    let own: Vec<UserHit> =
        rows.iter().filter(|h| h.user_id == 2).map(|h| UserHit { id: h.id, page: h.page.clone() }).collect();
    assert!(!own.is_empty());

    let key = SigningKey::from_admin_token(server.admin_token()).unwrap();
    let local = user_hits_jwt(2).sign(&key).expect("signed locally");
    let remote = admin.create_jwt(&user_hits_jwt(2)).await.expect("minted by the Token API");
    assert_eq!(remote.name(), "user_2");
    assert_ne!(local.expose(), "");
    assert_ne!(remote.expose(), "");

    for (how, jwt) in [("local", &local), ("token api", &remote)] {
        let client = admin.with_token(jwt.expose()).unwrap();
        // Asking for user 2 or for another user gives user 2's rows: the fixed param wins.
        for asked in [2, 5] {
            let res = client.query(&UserHits { user_id: asked }).await.unwrap_or_else(|e| panic!("{how}: {e}"));
            assert_eq!(res.data, own, "{how} JWT asking for user {asked}");
        }
        // The JWT reads only its pipe.
        let err = client.query(&AllHits {}).await.expect_err("the JWT has no scope on all_hits");
        assert_eq!(err.kind(), &ErrorKind::Forbidden, "{how}: {err}");
        assert_eq!(err.status(), Some(403));
        let err = client.sql::<Count>("SELECT count() AS c FROM hits").await.expect_err("no DATASOURCES:READ");
        assert_eq!(err.status(), Some(403), "{how}: {err}");
    }
}

#[tokio::test]
async fn expired_jwt_is_refused() {
    let (server, admin) = start().await;
    admin.ingest(&[hit(1)]).await.unwrap();
    let key = SigningKey::from_admin_token(server.admin_token()).unwrap();
    let jwt =
        Jwt::builder("short").scope(Scope::pipe::<UserHits>()).expires_in(Duration::from_secs(1)).sign(&key).unwrap();
    let client = admin.with_token(jwt.expose()).unwrap();
    client.query(&UserHits { user_id: 1 }).await.expect("valid before it expires");
    while Utc::now().timestamp() <= jwt.exp_unix() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err =
        client.query(&UserHits { user_id: 1 }).retry(RetryPolicy::none()).await.expect_err("an expired JWT is refused");
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(err.kind(), &ErrorKind::Forbidden, "{err}");
    assert!(!err.to_string().contains(jwt.expose()), "the token never appears in errors");
}

#[tokio::test]
async fn rate_limited_jwt_gets_retry_after() {
    let (server, admin) = start().await;
    admin.ingest(&[hit(1)]).await.unwrap();
    let key = SigningKey::from_admin_token(server.admin_token()).unwrap();
    let builder = |name: &str| {
        Jwt::builder(name).scope(Scope::pipe::<UserHits>()).rate_limit(2).expires_in(Duration::from_secs(60))
    };
    let local = builder("limited_local").sign(&key).unwrap();
    let remote = admin.create_jwt(&builder("limited_remote")).await.unwrap();
    for (how, jwt) in [("local", local), ("token api", remote)] {
        let client = admin.with_token(jwt.expose()).unwrap();
        let params = UserHits { user_id: 1 };
        let queries = (0..10).map(|_| client.query(&params).retry(RetryPolicy::none()).into_future());
        let results = futures::future::join_all(queries).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let limited: Vec<&tinybird::error::Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!((1..=4).contains(&ok), "{how}: 2 rps allows at most two one-second windows of 2 requests, got {ok}");
        assert_eq!(ok + limited.len(), 10);
        for err in &limited {
            assert_eq!(err.status(), Some(429), "{how}: {err}");
            match err.kind() {
                ErrorKind::RateLimited { retry_after } => {
                    let wait = retry_after.expect("a 429 says when to retry");
                    assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60), "{how}: {wait:?}");
                }
                other => panic!("{how}: expected RateLimited, got {other:?}: {err}"),
            }
        }

        // With retries on (the default policy), the client waits as told and gets through.
        let res = client.query(&params).await.unwrap_or_else(|e| panic!("{how}: retries honour Retry-After: {e}"));
        assert_eq!(res.data, vec![UserHit { id: 1, page: hit(1).page }]);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn tinybird_errors_map_to_kinds() {
    let (_server, client) = start().await;
    client.ingest(&[hit(7)]).await.unwrap();

    let err = client.query(&Ghost {}).await.expect_err("the pipe does not exist");
    assert_eq!(err.kind(), &ErrorKind::Forbidden, "{err}");
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.tinybird_error(), Some("Resource 'ghost_pipe' not found"), "{err}");

    let err = client.query(&HitsByUserLoose { user_id: None }).await.expect_err("user_id is required");
    assert_eq!(err.kind(), &ErrorKind::BadRequest, "{err}");
    assert_eq!(err.status(), Some(400));
    let text = err.tinybird_error().expect("Tinybird's error text");
    assert!(text.contains("Required parameter is not defined"), "{text}");
    assert!(err.to_string().contains("Required parameter is not defined"), "{err}");

    // With the parameter, the same pipe answers.
    let res = client.query(&HitsByUser { user_id: 0 }).await.unwrap();
    assert_eq!(res.data, vec![HitId { id: 7 }]);

    // A token the server does not know.
    let stranger = client.with_token("p.not-a-real-token").unwrap();
    let err = stranger.query(&HitsByUser { user_id: 0 }).await.expect_err("unknown token");
    // Tinybird answers an invalid token with 403, not 401.
    assert_eq!(err.kind(), &ErrorKind::Forbidden, "{err}");
    assert_eq!(err.status(), Some(403));
    assert!(err.tinybird_error().is_some_and(|t| t.starts_with("Invalid token")), "{err}");
    assert!(!err.to_string().contains("p.not-a-real-token"), "the token never appears in errors: {err}");

    // Bad SQL is the caller's to fix.
    let err = client.sql::<serde_json::Value>("SELECT nope FROM hits").await.expect_err("unknown column");
    assert_eq!(err.kind(), &ErrorKind::BadRequest, "{err}");
}

// ---------------------------------------------------------------------------------------------------------------
// More of the wire contract
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn envelope_limit_metadata_and_statistics() {
    let (_server, client) = start().await;
    let rows: Vec<Hit> = (0..130).map(hit).collect();
    client.ingest(&rows).await.unwrap();
    let res = client.query(&TopPages { limit: Some(2) }).await.unwrap();
    // 130 hits over 13 pages: 10 each; ties are ordered by page name.
    assert_eq!(
        res.data,
        vec![TopPage { page: "/page/0".into(), visits: 10 }, TopPage { page: "/page/1".into(), visits: 10 }]
    );
    assert_eq!(res.rows, 2);
    assert_eq!(res.rows_before_limit_at_least, Some(13));
    let stats = res.statistics.expect("the envelope has statistics");
    assert!(stats.elapsed >= 0.0);
}

#[tokio::test]
async fn long_queries_switch_to_post_and_fixed_params_still_win() {
    let (server, admin) = start().await;
    let rows: Vec<Hit> = (0..30).map(hit).collect();
    admin.ingest(&rows).await.unwrap();
    // A padding parameter pushes the URL past 4096 bytes, so the client sends a POST form.
    let long = QueryOptions::new().param("padding", "x".repeat(5_000));
    let res = admin.query(&UserHits { user_id: 4 }).options(long.clone()).await.expect("the POST form is accepted");
    let own: Vec<UserHit> =
        rows.iter().filter(|h| h.user_id == 4).map(|h| UserHit { id: h.id, page: h.page.clone() }).collect();
    assert_eq!(res.data, own);

    let key = SigningKey::from_admin_token(server.admin_token()).unwrap();
    let jwt = user_hits_jwt(4).sign(&key).unwrap();
    let client = admin.with_token(jwt.expose()).unwrap();
    let res = client
        .query(&UserHits { user_id: 1 })
        .options(long.clone())
        .await
        .expect("the POST form is accepted with a JWT");
    assert_eq!(res.data, own, "the JWT's fixed user_id wins over the form body");
}

#[tokio::test]
async fn oversized_batches_are_split_after_413() {
    let server =
        tinybird_local::LocalServer::builder().resources(project()).max_body_bytes(16 * 1024).start().await.unwrap();
    let client = Client::builder().base_url(server.url()).token(server.admin_token()).build().unwrap();
    // About 250 KB of NDJSON against a 16 KB limit, sent with the default 10 MB request size.
    let rows: Vec<Hit> = (0..5_000).map(hit).collect();
    let res = client.ingest(&rows).await.expect("the client splits on 413 and delivers everything");
    assert_eq!((res.successful_rows, res.quarantined_rows), (5_000, 0));
    assert_eq!(count(&client, "hits").await, 5_000);

    // One row over the limit cannot be split: a clear error, nothing counted twice.
    let huge = Hit { id: 1, user_id: 1, page: "y".repeat(20 * 1024), value: 0.0 };
    let err = client.ingest(&[huge]).await.expect_err("a single row over the limit");
    assert_eq!(err.kind(), &ErrorKind::PayloadTooLarge, "{err}");
    assert_eq!(err.status(), Some(413));
    assert_eq!(count(&client, "hits").await, 5_000);
}

#[tokio::test]
async fn gzip_no_wait_and_replace() {
    let (_server, client) = start().await;
    let rows: Vec<Hit> = (0..500).map(hit).collect();
    let res = client.ingest(&rows).gzip(true).await.unwrap();
    assert_eq!((res.successful_rows, res.quarantined_rows), (500, 0));

    // Without `wait` the server answers 202 once it has the rows.
    let more: Vec<Hit> = (500..600).map(hit).collect();
    client.ingest(&more).wait(false).await.expect("202 is a success");
    assert_eq!(count(&client, "hits").await, 600);

    // Replace swaps all rows for the file's.
    let csv: String = (900..910).map(|i| format!("{i},1,/r,{}\n", i as f64)).collect();
    let replaced = client
        .replace("hits", ImportSource::Bytes { filename: "replacement.csv".into(), data: csv.into_bytes().into() })
        .await
        .expect("the replace runs");
    assert_eq!((replaced.successful_rows, replaced.quarantined_rows), (10, 0));
    let ids: Vec<serde_json::Value> =
        client.sql::<serde_json::Value>("SELECT id FROM hits ORDER BY id").await.unwrap().data;
    let expected: Vec<serde_json::Value> = (900..910u64).map(|i| serde_json::json!({"id": i})).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn ingestor_quarantine_policy_fail_reports_the_count() {
    let (_server, client) = start().await;
    // With QuarantinePolicy::Fail, rows the server quarantines turn into an error at flush.
    let ingestor = client.ingestor::<StaleHit>().quarantine(tinybird::client::QuarantinePolicy::Fail).start();
    let rows = [
        StaleHit { id: 1, user_id: 1, page: "/a".into(), value: 1.0 },
        // `hits.user_id` is UInt64: the server quarantines a negative one.
        StaleHit { id: 2, user_id: -2, page: "/b".into(), value: 2.0 },
        StaleHit { id: 3, user_id: 3, page: "/c".into(), value: 3.0 },
    ];
    for row in rows {
        ingestor.push(row).await.unwrap();
    }
    let failure = ingestor.flush().await.expect_err("a quarantined row fails the flush");
    assert_eq!(failure.error.kind(), &ErrorKind::Quarantined { rows: 1 }, "{}", failure.error);
    assert!(failure.error.to_string().contains("hits_quarantine"), "{}", failure.error);
    assert!(failure.rows.is_empty(), "quarantined rows were acknowledged, not handed back");
    assert_eq!((failure.report.successful_rows, failure.report.quarantined_rows), (2, 1));
    let report = ingestor.close().await.expect("nothing left to send");
    assert_eq!(report, Default::default());
    assert_eq!(count(&client, "hits").await, 2);
    assert_eq!(count(&client, "hits_quarantine").await, 1);
}

#[tokio::test]
async fn datasource_read_jwt_filter_applies_to_sql() {
    let (server, admin) = start().await;
    let rows: Vec<Hit> = (0..50).map(hit).collect();
    admin.ingest(&rows).await.unwrap();
    let key = SigningKey::from_admin_token(server.admin_token()).unwrap();
    let builder = Jwt::builder("reader_5")
        .scope(Scope::datasource_read::<Hit>().filter(|c| c.user_id.eq(5u64)))
        .expires_in(Duration::from_secs(300));
    let expected: Vec<Hit> = rows.iter().filter(|h| h.user_id == 5).cloned().collect();
    for (how, jwt) in [("local", builder.sign(&key).unwrap()), ("token api", admin.create_jwt(&builder).await.unwrap())]
    {
        let client = admin.with_token(jwt.expose()).unwrap();
        let res = client.sql::<Hit>("SELECT * FROM hits ORDER BY id").await.unwrap_or_else(|e| panic!("{how}: {e}"));
        assert_eq!(res.data, expected, "{how}: the filter is applied wherever `hits` is read");
        let n = client.sql::<Count>("SELECT count() AS c FROM hits WHERE user_id != 5").await.unwrap();
        assert_eq!(n.data[0].c, 0, "{how}");
    }
}

#[tokio::test]
async fn decode_errors_name_column_and_row() {
    let (_server, client) = start().await;
    client.ingest(&(0..5).map(hit).collect::<Vec<_>>()).await.unwrap();

    #[derive(Debug, Deserialize, Row)]
    struct Unsigned {
        #[allow(dead_code)]
        id: u64,
        #[allow(dead_code)]
        n: u64,
    }
    // Row 3's `n` is negative, which a `u64` cannot hold: the error says where.
    let err = client
        .sql::<Unsigned>("SELECT id, if(id = 3, -1, toInt64(id)) AS n FROM hits ORDER BY id")
        .skip_meta_check()
        .await
        .expect_err("row 3 does not decode");
    match err.kind() {
        ErrorKind::Decode { column, row } => {
            assert_eq!(column.as_deref(), Some("n"), "{err}");
            assert_eq!(*row, Some(3), "{err}");
        }
        other => panic!("expected Decode, got {other:?}: {err}"),
    }

    // Without the opt-out, the `meta` check catches the type first (Int64 is not UInt64) and names the column.
    let err = client
        .sql::<Unsigned>("SELECT id, if(id = 3, -1, toInt64(id)) AS n FROM hits ORDER BY id")
        .await
        .expect_err("n is Int64");
    assert_eq!(err.kind(), &ErrorKind::SchemaMismatch { column: "n".into() }, "{err}");
}

#[tokio::test]
async fn server_stopping_mid_ingest_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        tinybird_local::LocalServer::builder().resources(project()).data_dir(dir.path()).start().await.unwrap();
    let url = server.url().to_owned();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let client = Client::builder().base_url(&url).token(server.admin_token()).build().unwrap();
    let ingestor =
        client.ingestor::<Hit>().max_rows(500).options(IngestOptions::default().retry(RetryPolicy::none())).start();

    const N: u64 = 10_000;
    let mut server = Some(server);
    for i in 0..N {
        if i == N / 2 {
            // Everything pushed so far is acknowledged, then the server goes away under the ingestor.
            let report = ingestor.flush().await.expect("the server is up");
            assert_eq!(report.successful_rows, N / 2);
            server.take().unwrap().shutdown().await;
        }
        ingestor.push(hit(i)).await.expect("push only queues");
    }
    let failure = ingestor.close().await.expect_err("the server is gone");
    assert_eq!(failure.error.kind(), &ErrorKind::Transport, "{}", failure.error);
    assert_eq!(failure.report.successful_rows, 0);
    let handed_back: Vec<u64> = failure.rows.iter().map(|h| h.id).collect();
    assert_eq!(handed_back, (N / 2..N).collect::<Vec<_>>(), "exactly the undelivered rows, in push order");

    // What was acknowledged survived: restart on the same data directory and port.
    let server = tinybird_local::LocalServer::builder()
        .resources(project())
        .data_dir(dir.path())
        .port(port)
        .start()
        .await
        .unwrap();
    let client = Client::builder().base_url(server.url()).token(server.admin_token()).build().unwrap();
    assert_eq!(count(&client, "hits").await, N / 2);

    // Resending the handed-back rows completes the set, with no duplicates.
    let res = client.ingest(&failure.rows).await.unwrap();
    assert_eq!(res.successful_rows, N / 2);
    let agg = client.sql::<Count>("SELECT uniqExact(id) AS c FROM hits").await.unwrap();
    assert_eq!(agg.data[0].c, N);
    assert_eq!(count(&client, "hits").await, N);
}

/// More types: UUIDs, low-cardinality nullable strings, narrow numbers, `Date32`. (`tinybird-local` has no 128-bit
/// integers or maps yet: it refuses such a column at start with an error naming it.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Datasource)]
#[tinybird(name = "wide_types", engine = "MergeTree", sorting_key = "id")]
pub struct WideTypes {
    pub id: u32,
    #[tinybird(type = "Date32")]
    pub born: NaiveDate,
    pub maybe_flags: Vec<Option<bool>>,
    pub uid: uuid::Uuid,
    #[tinybird(type = "LowCardinality(Nullable(String))")]
    pub country: Option<String>,
    pub small: i8,
    pub ratio: f32,
}

#[tokio::test]
async fn more_types_round_trip() {
    let server = tinybird_local::LocalServer::start(Project::new().datasource::<WideTypes>()).await.unwrap();
    let client = Client::builder().base_url(server.url()).token(server.admin_token()).build().unwrap();
    let rows = vec![
        WideTypes {
            id: 1,
            born: NaiveDate::from_ymd_opt(1900, 1, 1).unwrap(),
            maybe_flags: vec![Some(true), None, Some(false)],
            uid: uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            country: None,
            small: -128,
            ratio: 0.5,
        },
        WideTypes {
            id: 2,
            born: NaiveDate::from_ymd_opt(2299, 12, 31).unwrap(),
            maybe_flags: vec![],
            uid: uuid::Uuid::nil(),
            country: Some("ES".into()),
            small: 127,
            ratio: -2.25,
        },
    ];
    let res = client.ingest(&rows).await.expect("ingested");
    assert_eq!((res.successful_rows, res.quarantined_rows), (2, 0));
    let back = client.sql::<WideTypes>("SELECT * FROM wide_types ORDER BY id").await.expect("read back");
    assert_eq!(back.data, rows);
}

#[tokio::test]
async fn deploy_build_and_per_file_errors() {
    let server = tinybird_local::LocalServer::start(tinybird_local::Resources::new()).await.unwrap();
    let client = Client::builder().base_url(server.url()).token(server.admin_token()).build().unwrap();

    // Nothing deployed yet: the endpoint is unknown.
    let err = client.query(&AllHits {}).await.expect_err("not deployed yet");
    assert_eq!(err.tinybird_error(), Some("Resource 'all_hits' not found"), "{err}");

    let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = progress.clone();
    let opts = tinybird::client::DeployOptions::default()
        .poll_interval(Duration::from_millis(50))
        .on_progress(move |p| seen.lock().unwrap().push(format!("{p:?}")));
    let outcome = client.deploy_project(&project(), &opts).await.expect("the project deploys");
    assert!(matches!(outcome, tinybird::client::DeployOutcome::Deployed { .. }), "{outcome:?}");
    assert!(!progress.lock().unwrap().is_empty(), "progress is reported");
    client.ingest(&[hit(1), hit(2)]).await.unwrap();
    assert_eq!(client.query(&AllHits {}).await.unwrap().data, vec![hit(1), hit(2)]);

    // The same project again changes nothing.
    let again = client.deploy_project(&project(), &opts).await.expect("a second deploy answers");
    assert_eq!(again, tinybird::client::DeployOutcome::NoChanges);

    // A pipe datafile that does not parse (a node without SQL): the error names the file.
    let files = vec![
        ProjectFile::new("datasources/hits.datasource", project_file(&project(), "hits.datasource")),
        ProjectFile::new("endpoints/broken.pipe", "NODE endpoint\nDESCRIPTION >\n    no SQL here\n\nTYPE endpoint\n"),
    ];
    let err = client.deploy(&files, &opts).await.expect_err("the broken pipe is refused");
    assert_eq!(err.kind(), &ErrorKind::Deploy, "{err}");
    let named: Vec<&tinybird::error::FileError> =
        err.file_errors().iter().filter(|f| f.file.as_deref().is_some_and(|n| n.contains("broken"))).collect();
    assert!(!named.is_empty(), "the error names broken.pipe: {:?}", err.file_errors());
    assert_eq!(err.file_errors().len(), 1, "one problem, reported once: {:?}", err.file_errors());
    assert!(err.file_errors()[0].message.contains("no SQL"), "{:?}", err.file_errors());
    // The live deployment is untouched.
    assert_eq!(client.query(&AllHits {}).await.unwrap().data, vec![hit(1), hit(2)]);

    // `/v1/build` (branches and local): the same broken file, the same per-file error.
    let err = client.build(&files).await.expect_err("the build fails");
    assert_eq!(err.kind(), &ErrorKind::Deploy, "{err}");
    assert_eq!(err.file_errors().len(), 1, "one problem, reported once: {:?}", err.file_errors());
    assert!(
        err.file_errors().iter().any(|f| f.file.as_deref().is_some_and(|n| n.contains("broken"))),
        "{:?}",
        err.file_errors()
    );
    let built = client.build_project(&project()).await.expect("the project builds");
    assert!(built.result == "success" || built.result == "no_changes", "{built:?}");
}

/// `--no-auto` and `--no-wait` deployments: a staged deployment is ready but not live until promoted, a discarded one
/// goes, and one not waited for is promoted by the server itself.
#[tokio::test]
async fn staged_deployments_promote_and_discard() {
    use tinybird::client::{DeployOptions, DeployOutcome};
    let server = tinybird_local::LocalServer::start(tinybird_local::Resources::new()).await.unwrap();
    let client = Client::builder().base_url(server.url()).token(server.admin_token()).build().unwrap();
    let fast = DeployOptions::default().poll_interval(Duration::from_millis(50));
    let first = client.deploy_project(&project(), &fast).await.unwrap();
    let DeployOutcome::Deployed { id: live_id, .. } = first else { panic!("{first:?}") };
    client.ingest(&[hit(1)]).await.unwrap();

    // A second version of the project, with one more endpoint, staged.
    let mut files = project().files().unwrap();
    files.push(ProjectFile::new(
        "endpoints/hit_count.pipe",
        "NODE endpoint\nSQL >\n    SELECT count() AS c FROM hits\n\nTYPE endpoint\n",
    ));
    let staged = client.deploy(&files, &fast.clone().promote(false)).await.unwrap();
    let DeployOutcome::Staged { id: staged_id, .. } = staged else { panic!("{staged:?}") };
    let list = client.deployments().await.unwrap();
    let states: Vec<(String, String, bool)> = list.iter().map(|d| (d.id.clone(), d.status.clone(), d.live)).collect();
    assert_eq!(
        states,
        vec![(live_id.clone(), "data_ready".into(), true), (staged_id.clone(), "data_ready".into(), false)],
        "oldest first"
    );
    let hit_count = || client.sql::<Count>("SELECT c FROM hit_count");
    let err = hit_count().await.expect_err("the staged endpoint is not live");
    assert_eq!(err.tinybird_error(), Some("Resource 'hit_count' not found"), "{err}");

    // The live deployment cannot be discarded; the staged one is promoted and replaces it.
    let err = client.discard_deployment(&live_id).await.expect_err("the live deployment stays");
    assert_eq!(err.kind(), &ErrorKind::BadRequest, "{err}");
    assert_eq!(client.promote_deployment(&staged_id).await.unwrap(), Some(live_id.clone()));
    assert_eq!(hit_count().await.unwrap().data[0].c, 1);
    let ids: Vec<String> = client.deployments().await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![staged_id.clone()], "the replaced deployment is deleted");

    // Staged again (the first project), then discarded: the live one is untouched.
    let again = client.deploy_project(&project(), &fast.clone().promote(false)).await.unwrap();
    let DeployOutcome::Staged { id: third, .. } = again else { panic!("{again:?}") };
    client.discard_deployment(&third).await.unwrap();
    let err = client.discard_deployment(&third).await.expect_err("gone");
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    let err = client.promote_deployment(&third).await.expect_err("a discarded deployment is not promoted");
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    assert_eq!(hit_count().await.unwrap().data[0].c, 1);

    // Not waited for: the server promotes it itself.
    let submitted = client.deploy_project(&project(), &fast.clone().wait(false)).await.unwrap();
    let DeployOutcome::Submitted { id, auto_promote: true, .. } = submitted else { panic!("{submitted:?}") };
    let list = client.deployments().await.unwrap();
    assert_eq!(list.iter().filter(|d| d.is_live()).map(|d| d.id.clone()).collect::<Vec<_>>(), vec![id]);
    assert!(hit_count().await.is_err(), "the first project, without hit_count, is live again");
}

/// An import names its job; waiting for it gives the job's final state and counts.
#[tokio::test]
async fn imports_are_jobs_to_wait_for() {
    use tinybird::client::JobWait;
    let (_server, client) = start().await;
    let ndjson: String = (0..10).map(hit).map(|h| serde_json::to_string(&h).unwrap() + "\n").collect();
    let imported = client
        .append("hits", ImportSource::Bytes { filename: "hits.ndjson".into(), data: ndjson.into_bytes().into() })
        .await
        .unwrap();
    let id = imported.job_id().expect("the import names its job").to_owned();
    let job = imported.wait(&client, JobWait::default()).await.unwrap().expect("a job");
    assert_eq!((job.id.as_str(), job.kind.as_str(), job.status.as_str()), (id.as_str(), "import", "done"));
    assert_eq!((job.datasource(), job.rows()), (Some("hits"), Some((10, 0))));
    assert!(job.created_at.is_some() && job.error_message().is_none(), "{job:?}");
    let listed = client.jobs().await.unwrap();
    assert!(listed.iter().any(|j| j.id == id), "{listed:?}");
    let err = client.job("no-such-job").await.expect_err("unknown job");
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    let err = client.job("../v0/tokens").await.expect_err("not a job id");
    assert_eq!(err.kind(), &ErrorKind::BadRequest, "{err}");
}

/// The content of one of `project`'s datafiles, by file name.
fn project_file(project: &Project, name: &str) -> String {
    project
        .files()
        .expect("the project's datafiles")
        .into_iter()
        .find(|f| f.path.ends_with(name))
        .unwrap_or_else(|| panic!("{name} is in the project"))
        .content
}

#[tokio::test]
async fn jwt_array_fixed_params_and_filters_in_pipes() {
    let (server, admin) = start().await;
    admin.ingest(&all_types_rows()).await.unwrap();
    let hits: Vec<Hit> = (0..40).map(hit).collect();
    admin.ingest(&hits).await.unwrap();
    let key = SigningKey::from_admin_token(server.admin_token()).unwrap();

    // Array and boolean fixed params: the request's own values are ignored.
    let pinned = Jwt::builder("pinned")
        .scope(Scope::pipe::<AllTypesWhere>().fixed(|p| {
            p.ids = Some(vec![1, 2]);
            p.flag = Some(true);
        }))
        .expires_in(Duration::from_secs(300));
    let asked = AllTypesWhere {
        big: None,
        neg: None,
        ids: Some(vec![3]),
        kinds: None,
        flag: Some(false),
        since: None,
        on_day: None,
        since_ms: None,
        texts: None,
    };
    for (how, jwt) in [("local", pinned.sign(&key).unwrap()), ("token api", admin.create_jwt(&pinned).await.unwrap())] {
        let client = admin.with_token(jwt.expose()).unwrap();
        let res = client.query(&asked).await.unwrap_or_else(|e| panic!("{how}: {e}"));
        let ids: Vec<u32> = res.data.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![1], "{how}: ids [1, 2] and flag = true are fixed");
    }

    // A DATASOURCES:READ filter applies inside pipes too, streamed or not.
    let filtered = Jwt::builder("filtered")
        .scope(Scope::pipe::<AllHits>())
        .scope(Scope::datasource_read::<Hit>().filter(|c| c.user_id.eq(5u64)))
        .expires_in(Duration::from_secs(300));
    let expected: Vec<Hit> = hits.iter().filter(|h| h.user_id == 5).cloned().collect();
    for (how, jwt) in
        [("local", filtered.sign(&key).unwrap()), ("token api", admin.create_jwt(&filtered).await.unwrap())]
    {
        let client = admin.with_token(jwt.expose()).unwrap();
        let res = client.query(&AllHits {}).await.unwrap_or_else(|e| panic!("{how}: {e}"));
        assert_eq!(res.data, expected, "{how}");
        let streamed: Vec<Hit> =
            client.query_stream(&AllHits {}).await.unwrap().map(|r| r.expect("row decodes")).collect().await;
        assert_eq!(streamed, expected, "{how}: streamed");
    }
}

/// A copy pipe runs on demand through the client: its job is `copy`, and waiting for it gives the rows written.
#[tokio::test]
async fn copy_pipes_run_through_the_client() {
    use tinybird::client::JobWait;
    let files = [
        ("scores.datasource", "SCHEMA >\n    `team` String `json:$.team`,\n    `points` UInt32 `json:$.points`\n"),
        ("totals.datasource", "SCHEMA >\n    `team` String,\n    `points` UInt64\n"),
        (
            "sum_scores.pipe",
            // (ClickHouse reads an alias in WHERE: `sum(points) AS points … WHERE points` would filter on the sum.)
            "NODE agg\nSQL >\n    %\n    SELECT team, sum(p) AS points FROM (SELECT team, points AS p FROM scores)\n    WHERE p >= {{ UInt32(min_points, 0) }}\n    GROUP BY team\n\nTYPE copy\nTARGET_DATASOURCE totals\nCOPY_MODE append\n",
        ),
    ];
    let resources = tinybird_local::Resources::from_files(files).expect("the project reads");
    let server = tinybird_local::LocalServer::start(resources).await.expect("tinybird-local starts");
    let client = Client::builder().base_url(server.url()).token(server.admin_token()).build().unwrap();
    let body = "{\"team\":\"a\",\"points\":3}\n{\"team\":\"a\",\"points\":10}\n{\"team\":\"b\",\"points\":1}\n";
    let r = reqwest::Client::new()
        .post(format!("{}/v0/events?name=scores&wait=true", server.url()))
        .bearer_auth(server.admin_token())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let job = client.copy_pipe("sum_scores", &[("min_points", "2")]).await.unwrap();
    assert_eq!(job.kind, "copy");
    let done = client.wait_job(&job.id, JobWait::default()).await.unwrap();
    assert_eq!((done.status.as_str(), done.datasource()), ("done", Some("totals")));
    assert_eq!(count(&client, "totals").await, 1, "only team a has points >= 2");
    let err = client.copy_pipe("no_such_pipe", &[]).await.expect_err("unknown pipe");
    assert!(err.to_string().contains("not found"), "{err}");
    let err = client.copy_pipe("../v0/tokens", &[]).await.expect_err("not a pipe name");
    assert_eq!(err.kind(), &ErrorKind::BadRequest, "{err}");
}

/// The Token API through the client: list static tokens (the value never in `Debug`), refresh one (the old value
/// stops working), delete it.
#[tokio::test]
async fn static_tokens_list_refresh_and_delete() {
    let (server, client) = start().await;
    // Requests the client refuses before sending anything.
    let err = client.create_static_token(&StaticTokenRequest::new("no_scopes")).await.expect_err("no scopes");
    assert!(err.kind() == &ErrorKind::BadRequest && err.to_string().contains("has no scopes"), "{err}");
    let filtered = StaticTokenRequest::new("filtered").read_datasource_named("hits:id > 1");
    let err = client.create_static_token(&filtered).await.expect_err("a filter smuggled into the name");
    assert!(err.to_string().contains("invalid resource \"hits:id > 1\""), "{err}");
    let err = client.create_static_token(&StaticTokenRequest::new("a/b").read_datasource::<Hit>()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::BadRequest, "{err}");
    // One the server refuses: the resource does not exist.
    let unknown = StaticTokenRequest::new("ghost_reader").read_pipe_named("no_such_pipe");
    let err = client.create_static_token(&unknown).await.expect_err("unknown pipe");
    assert!(err.to_string().contains("Resource 'no_such_pipe' not found"), "{err}");
    assert!(client.tokens().await.unwrap().iter().all(|t| t.name != "ghost_reader"), "nothing was created");

    let created =
        client.create_static_token(&StaticTokenRequest::new("hits_reader").read_datasource::<Hit>()).await.unwrap();
    let old = created.token().to_string();
    let listed = client.tokens().await.unwrap();
    let reader = listed.iter().find(|t| t.name == "hits_reader").expect("the new token is listed");
    assert_eq!(reader.token(), old);
    assert_eq!(reader.scopes.len(), 1);
    assert_eq!(
        (reader.scopes[0].kind.as_str(), reader.scopes[0].resource.as_deref()),
        ("DATASOURCES:READ", Some("hits"))
    );
    assert!(!format!("{reader:?}").contains(&old), "Debug shows no token");
    let refreshed = client.refresh_token("hits_reader").await.unwrap();
    assert_ne!(refreshed.token(), old);
    assert_eq!((refreshed.name.as_str(), &refreshed.id), ("hits_reader", &reader.id));
    let stale = Client::builder().base_url(server.url()).token(&old).build().unwrap();
    let err = stale.sql::<Count>("SELECT count() AS c FROM hits").await.expect_err("the old value is refused");
    assert!(matches!(err.kind(), ErrorKind::Forbidden | ErrorKind::Auth), "{err}");
    let fresh = Client::builder().base_url(server.url()).token(refreshed.token()).build().unwrap();
    assert_eq!(fresh.sql::<Count>("SELECT count() AS c FROM hits").await.unwrap().data[0].c, 0);
    client.delete_token("hits_reader").await.unwrap();
    assert!(fresh.sql::<Count>("SELECT count() AS c FROM hits").await.is_err(), "a deleted token is refused");
    let err = client.delete_token("hits_reader").await.expect_err("already deleted");
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    let err = client.refresh_token("a/b").await.expect_err("not a token name");
    assert_eq!(err.kind(), &ErrorKind::BadRequest, "{err}");
}

/// A per-user rollup, written by a materialized view and by a copy pipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Datasource)]
#[tinybird(name = "hits_per_user", engine = "MergeTree", sorting_key = "user_id")]
pub struct HitsPerUser {
    pub user_id: u64,
    pub hits: u64,
}

/// What the rollup's SQL produces, declared so it is checked against the target (its columns when it compiles).
#[derive(Debug, Deserialize, Row)]
#[tinybird(writes = "HitsPerUser")]
struct HitsPerUserOut {
    user_id: u64,
    hits: u64,
}

/// A row whose columns are `HitsPerUser`'s, so it compiles, but which leaves out `hits`, which the target needs.
/// (A column the target lacks, or of another type, does not compile: `tests/ui/pipes/`.)
#[derive(Debug, Deserialize, Row)]
#[tinybird(writes = "HitsPerUser")]
#[allow(dead_code)] // Only its columns are read.
struct MissingOut {
    user_id: u64,
}

/// Typed materialized views and copy pipes: the target is a Datasource type, a declared output that does not fit
/// it is reported by the project (naming each mismatch), and on tinybird-local the view fills its target on ingest
/// while the copy pipe writes its result when the client runs it.
#[tokio::test]
async fn typed_materialized_views_and_copy_pipes() {
    use tinybird::client::JobWait;
    use tinybird::pipes::{CopyMode, CopyPipe, MaterializedView};
    let view = MaterializedView::<HitsPerUser>::new("hits_per_user_mv")
        .node("agg", "SELECT user_id, count() AS hits FROM hits GROUP BY user_id")
        .output::<HitsPerUserOut>();
    let copy = CopyPipe::<HitsPerUser>::new("hits_per_user_snapshot")
        .node("snap", "SELECT user_id, count() AS hits FROM hits GROUP BY user_id")
        .mode(CopyMode::Replace)
        .output::<HitsPerUserOut>();
    let wrong = MaterializedView::<HitsPerUser>::new("wrong_mv")
        .node("agg", "SELECT user_id FROM hits GROUP BY user_id")
        .output::<MissingOut>();
    let err = Project::new().datasource::<Hit>().datasource::<HitsPerUser>().materialized_view(&wrong).validate();
    let text = err.expect_err("a missing column is reported").to_string();
    assert!(text.contains("it does not write `hits`, which `hits_per_user` needs"), "{text}");

    let project = Project::new().datasource::<Hit>().datasource::<HitsPerUser>().materialized_view(&view);
    project.validate().expect("the view fits its target");
    let files = project.files().unwrap();
    let mv = &files.iter().find(|f| f.path.ends_with("hits_per_user_mv.pipe")).expect("the view's datafile").content;
    assert!(mv.contains("TYPE materialized\nDATASOURCE \"hits_per_user\""), "{mv}");

    // The copy pipe lives in a second project on the same rows: a view and a copy into one target would double it.
    let server = tinybird_local::LocalServer::start(&project).await.expect("tinybird-local starts");
    let client = Client::builder().base_url(server.url()).token(server.admin_token()).build().unwrap();
    let hits: Vec<Hit> = (0..21).map(hit).collect();
    client.ingest(&hits).await.unwrap();
    let totals = client
        .sql::<HitsPerUserOut>("SELECT user_id, sum(hits) AS hits FROM hits_per_user GROUP BY user_id ORDER BY user_id")
        .await
        .unwrap();
    assert_eq!(totals.data.iter().map(|r| r.user_id).collect::<Vec<_>>(), (0..7).collect::<Vec<_>>());
    assert!(totals.data.iter().all(|r| r.hits == 3), "{:?}", totals.data);

    let copying = Project::new().datasource::<Hit>().datasource::<HitsPerUser>().copy_pipe(&copy);
    let server = tinybird_local::LocalServer::start(&copying).await.expect("tinybird-local starts");
    let client = Client::builder().base_url(server.url()).token(server.admin_token()).build().unwrap();
    client.ingest(&hits).await.unwrap();
    assert_eq!(count(&client, "hits_per_user").await, 0, "a copy pipe runs only when asked");
    for _ in 0..2 {
        let job = client.copy_pipe(copy.name(), &[]).await.unwrap();
        client.wait_job(&job.id, JobWait::default()).await.unwrap();
    }
    assert_eq!(count(&client, "hits_per_user").await, 7, "COPY_MODE replace: the second run replaced the first");
}

/// Scheduled copies run on tinybird-local, each minute their cron schedule matches (`run_schedules` runs
/// what the scheduler runs at a given minute, so the test does not wait for the clock); a paused copy does not run
/// until resumed, and each run leaves a `copy` job.
#[tokio::test]
async fn scheduled_copies_run_on_their_schedule_unless_paused() {
    use tinybird::pipes::CopyPipe;
    let copy = CopyPipe::<HitsPerUser>::new("hourly")
        .node("snap", "SELECT user_id, count() AS hits FROM hits GROUP BY user_id")
        .schedule(tinybird::cron!("0 * * * *"));
    // A schedule runs a copy with its params' defaults: one whose param is required fails, and says why in a job.
    let broken = CopyPipe::<HitsPerUser>::new("per_user")
        .node("snap", "%\nSELECT user_id, count() AS hits FROM hits WHERE user_id = {{UInt64(u, required=True)}} GROUP BY user_id")
        .schedule(tinybird::cron!("45 * * * *"));
    let project = Project::new().datasource::<Hit>().datasource::<HitsPerUser>().copy_pipe(&copy).copy_pipe(&broken);
    let files = project.files().unwrap();
    let text = &files.iter().find(|f| f.path.ends_with("hourly.pipe")).unwrap().content;
    assert!(text.contains("TYPE copy") && text.contains("COPY_SCHEDULE \"0 * * * *\""), "{text}");
    let server = tinybird_local::LocalServer::start(&project).await.expect("a scheduled copy deploys");
    let client = Client::builder().base_url(server.url()).token(server.admin_token()).build().unwrap();
    client.ingest(&(0..14).map(hit).collect::<Vec<_>>()).await.unwrap();
    let at = |h: u32, m: u32| NaiveDate::from_ymd_opt(2024, 3, 1).and_then(|d| d.and_hms_opt(h, m, 0)).unwrap();
    let rows = || async { client.sql::<Count>("SELECT count() AS c FROM hits_per_user").await.unwrap().data[0].c };
    assert_eq!(server.run_schedules(at(10, 30)).await, 0, "not at minute 30");
    assert_eq!(rows().await, 0);
    assert_eq!(server.run_schedules(at(11, 0)).await, 1);
    assert_eq!(rows().await, 7, "one row per user");
    client.pause_copy("hourly").await.unwrap();
    assert_eq!(server.run_schedules(at(12, 0)).await, 0, "paused");
    client.resume_copy("hourly").await.unwrap();
    assert_eq!(server.run_schedules(at(13, 0)).await, 1);
    assert_eq!(rows().await, 14, "appended again");
    assert_eq!(server.run_schedules(at(13, 45)).await, 1);
    assert_eq!(rows().await, 14, "the failed copy wrote nothing");
    let jobs = client.jobs().await.unwrap();
    assert_eq!(jobs.iter().filter(|j| j.kind == "copy" && j.status == "done").count(), 2, "{jobs:?}");
    let failed: Vec<_> = jobs.iter().filter(|j| j.status == "error").collect();
    assert_eq!(failed.len(), 1, "{jobs:?}");
    let why = failed[0].error_message().unwrap_or_default();
    assert!(why.contains("Required parameter is not defined. Check the parameters u."), "{why}");
}

/// Tinybird's own datafile parser (PyPI `tinybird==5.0.3`, which `scripts/test.sh` installs and names in
/// `TINYBIRD_TB`) reads every file a project with typed materialized views and copy pipes generates.
#[test]
fn tinybirds_parser_reads_typed_pipes() {
    use tinybird::pipes::{CopyMode, CopyPipe, CopySchedule, MaterializedView};
    let view = MaterializedView::<HitsPerUser>::new("hits_per_user_mv")
        .description("Hits per user")
        .node("agg", "SELECT user_id, count() AS hits FROM hits GROUP BY user_id")
        .token("reader");
    let hourly = CopyPipe::<HitsPerUser>::new("hourly")
        .node("snap", "SELECT user_id, count() AS hits FROM hits GROUP BY user_id")
        .mode(CopyMode::Replace)
        .schedule(CopySchedule::cron("0 * * * *").unwrap());
    let on_demand = CopyPipe::<HitsPerUser>::new("on_demand")
        .node("snap", "SELECT user_id, count() AS hits FROM hits GROUP BY user_id");
    let project = Project::new()
        .datasource::<Hit>()
        .datasource::<HitsPerUser>()
        .materialized_view(&view)
        .copy_pipe(&hourly)
        .copy_pipe(&on_demand);
    let script = r#"
import sys, glob, json
from tinybird.datafile.parse_pipe import parse_pipe
from tinybird.datafile.parse_datasource import parse_datasource
out = {}
for f in sorted(glob.glob(sys.argv[1] + "/**/*.*", recursive=True)):
    parse = parse_pipe if f.endswith(".pipe") else parse_datasource
    d = parse(f).datafile
    out[f.rsplit("/", 1)[1]] = [{k: str(v) for k, v in n.items() if k not in ("sql", "columns", "schema")} for n in d.nodes]
print(json.dumps(out))
"#;
    let Some(parsed) = crate::tb_parser::parse(&project, script) else { return };
    let node = |file: &str| parsed[file].as_array().and_then(|n| n.last()).cloned().unwrap_or_default();
    assert_eq!(node("hits_per_user_mv.pipe")["type"], "materialized", "{parsed}");
    assert_eq!(node("hits_per_user_mv.pipe")["datasource"], "hits_per_user");
    assert_eq!(node("hourly.pipe")["type"], "copy");
    assert_eq!(node("hourly.pipe")["target_datasource"], "hits_per_user");
    assert_eq!(node("hourly.pipe")["copy_schedule"], "0 * * * *");
    assert_eq!(node("hourly.pipe")["mode"], "replace");
    assert_eq!(node("on_demand.pipe")["copy_schedule"], "@on-demand");
    assert_eq!(node("on_demand.pipe")["mode"], "append");
    assert!(parsed.get("hits_per_user.datasource").is_some(), "{parsed}");
}

/// Tinybird's own datafile parser (`tinybird==5.0.3`) reads every connection kind, the datasources that import
/// through them and both kinds of sink, as generated: secrets are filled from the workspace's (here, made-up)
/// secrets, and Tinybird's sink and connector checks pass.
#[test]
fn tinybirds_parser_reads_connections_imports_and_sinks() {
    use tinybird::connections::{
        BucketImport, DynamoDbConnection, DynamoDbImport, GcsConnection, KafkaConnection, KafkaImport,
        KafkaSaslMechanism, KafkaSecurityProtocol, S3Connection, Secret,
    };
    use tinybird::pipes::{SinkCompression, SinkFormat, SinkPipe};
    let kafka = KafkaConnection::new("events_kafka", "k:9092")
        .security_protocol(KafkaSecurityProtocol::SaslSsl)
        .sasl_mechanism(KafkaSaslMechanism::ScramSha512)
        .key(Secret::new("KAFKA_KEY"))
        .secret(Secret::new("KAFKA_SECRET"));
    let s3 = S3Connection::with_keys("exports", "eu-west-1", Secret::new("S3_KEY"), Secret::new("S3_SECRET"));
    let gcs = GcsConnection::with_hmac("archive", Secret::new("GCS_ID"), Secret::new("GCS_SECRET"));
    let ddb = DynamoDbConnection::new("ddb", "us-east-1", "arn:aws:iam::123456789012:role/ddb");
    let project = Project::new()
        .connection(&kafka)
        .connection(&s3)
        .connection(&gcs)
        .connection(&ddb)
        .datasource_from::<Hit>(&KafkaImport::new(&kafka, "hits", "tb_hits"))
        .datasource_from::<HitsPerUser>(&BucketImport::new(&gcs, "gs://archive/*.csv"))
        .with_datasource({
            let mut def = <Hit as tinybird::Datasource>::definition();
            def.name = "hits_ddb".into();
            def.settings.extend(tinybird::connections::DatasourceImport::settings(&DynamoDbImport::new(
                &ddb,
                "arn:aws:dynamodb:us-east-1:123456789012:table/hits",
                "s3://staging",
            )));
            def
        })
        .sink_pipe(
            &SinkPipe::to_bucket("hits_export", &s3, "s3://exports/hits", "hits_{date}")
                .node("all", "SELECT * FROM hits")
                .schedule(tinybird::cron!("0 3 * * *"))
                .format(SinkFormat::Ndjson)
                .compression(SinkCompression::Gzip),
        )
        .sink_pipe(&SinkPipe::to_kafka("hits_stream", &kafka, "hits_out").node("all", "SELECT * FROM hits"));
    let script = r#"
import sys, glob, json
from tinybird.datafile.parse_connection import parse_connection
from tinybird.datafile.parse_datasource import parse_datasource
from tinybird.datafile.parse_pipe import parse_pipe
secrets = {n: "secret-" + n.lower() for n in ["KAFKA_KEY", "KAFKA_SECRET", "S3_KEY", "S3_SECRET", "GCS_ID", "GCS_SECRET"]}
out = {}
for f in sorted(glob.glob(sys.argv[1] + "/**/*.*", recursive=True)):
    name = f.rsplit("/", 1)[1]
    if f.endswith(".connection"):
        d = parse_connection(f, secrets=secrets).datafile
    elif f.endswith(".datasource"):
        d = parse_datasource(f).datafile
    else:
        d = parse_pipe(f).datafile
    out[name] = {k: str(v) for k, v in d.nodes[-1].items() if k not in ("sql", "columns", "schema", "engine")}
print(json.dumps(out))
"#;
    let Some(parsed) = crate::tb_parser::parse(&project, script) else { return };
    let kafka = &parsed["events_kafka.connection"];
    assert_eq!(kafka["type"], "kafka", "{parsed}");
    assert_eq!(kafka["kafka_bootstrap_servers"], "k:9092");
    assert_eq!(kafka["kafka_sasl_mechanism"], "SCRAM-SHA-512");
    assert_eq!(kafka["kafka_key"], "secret-kafka_key", "the secret is filled in: {parsed}");
    assert_eq!(parsed["exports.connection"]["s3_secret"], "secret-s3_secret");
    assert_eq!(parsed["archive.connection"]["gcs_hmac_access_id"], "secret-gcs_id", "{parsed}");
    assert_eq!(parsed["ddb.connection"]["dynamodb_arn"], "arn:aws:iam::123456789012:role/ddb");
    assert_eq!(parsed["hits.datasource"]["kafka_topic"], "hits", "{parsed}");
    assert_eq!(parsed["hits_per_user.datasource"]["import_schedule"], "@auto");
    assert_eq!(parsed["hits_ddb.datasource"]["import_table_arn"], "arn:aws:dynamodb:us-east-1:123456789012:table/hits");
    let export = &parsed["hits_export.pipe"];
    assert_eq!(export["type"], "sink", "{parsed}");
    assert_eq!(export["export_connection_name"], "exports");
    assert_eq!(export["export_file_template"], "hits_{date}");
    assert_eq!(export["export_compression"], "gzip");
    assert_eq!(parsed["hits_stream.pipe"]["export_kafka_topic"], "hits_out", "{parsed}");
}

/// Typed connections and sinks end to end on tinybird-local: the project's S3 connection deploys, a bucket sink to
/// a `file://` folder runs through `Client::sink_pipe` (its job waited for, its file read back), and a copy pipe's
/// schedule is paused and resumed through the client.
#[tokio::test]
async fn typed_sinks_and_copy_schedules_through_the_client() {
    use tinybird::client::JobWait;
    use tinybird::connections::S3Connection;
    use tinybird::pipes::{CopyPipe, SinkFormat, SinkPipe};
    let dir = tempfile::Builder::new().prefix("tb-client-sink").tempdir().unwrap();
    let exports = S3Connection::with_role("exports", "us-east-1", "arn:aws:iam::123456789012:role/tb");
    let sink = SinkPipe::to_bucket("hits_export", &exports, format!("file://{}", dir.path().display()), "hits")
        .node("rows", "%\nSELECT id, page FROM hits WHERE id < {{UInt64(below, 100)}} ORDER BY id")
        .format(SinkFormat::Ndjson);
    // A scheduled sink: the scheduler writes its file at the minutes its cron matches.
    let nightly = SinkPipe::to_bucket("hits_nightly", &exports, format!("file://{}", dir.path().display()), "nightly")
        .node("rows", "SELECT count() AS hits FROM hits")
        .schedule(tinybird::cron!("15 2 * * *"));
    let copy = CopyPipe::<HitsPerUser>::new("hits_per_user_copy")
        .node("snap", "SELECT user_id, count() AS hits FROM hits GROUP BY user_id");
    let project = Project::new()
        .connection(&exports)
        .datasource::<Hit>()
        .datasource::<HitsPerUser>()
        .sink_pipe(&sink)
        .sink_pipe(&nightly)
        .copy_pipe(&copy);
    project.validate().expect("a valid project");
    let server = tinybird_local::LocalServer::start(&project).await.expect("tinybird-local starts");
    let client = Client::builder().base_url(server.url()).token(server.admin_token()).build().unwrap();
    client.ingest(&(0..5).map(hit).collect::<Vec<_>>()).await.unwrap();

    let job = client.sink_pipe("hits_export", &[("below", "3")]).await.unwrap();
    assert_eq!(job.kind, "sink");
    let done = client.wait_job(&job.id, JobWait::default()).await.unwrap();
    assert_eq!(done.status, "done");
    let text = std::fs::read_to_string(dir.path().join("hits.ndjson")).unwrap();
    assert_eq!(
        text,
        "{\"id\":0,\"page\":\"\\/page\\/0\"}\n{\"id\":1,\"page\":\"\\/page\\/1\"}\n{\"id\":2,\"page\":\"\\/page\\/2\"}\n"
    );

    client.pause_copy("hits_per_user_copy").await.unwrap();
    client.resume_copy("hits_per_user_copy").await.unwrap();
    let err = client.pause_copy("hits_export").await.expect_err("a sink has no copy schedule");
    assert_eq!(err.kind(), &ErrorKind::BadRequest, "{err}");
    let err = client.sink_pipe("hits_per_user_copy", &[]).await.expect_err("a copy pipe is not a sink");
    assert_eq!(err.kind(), &ErrorKind::BadRequest, "{err}");

    let at = |h: u32, m: u32| NaiveDate::from_ymd_opt(2024, 3, 1).and_then(|d| d.and_hms_opt(h, m, 0)).unwrap();
    assert_eq!(server.run_schedules(at(2, 14)).await, 0);
    assert!(!dir.path().join("nightly.csv").exists());
    assert_eq!(server.run_schedules(at(2, 15)).await, 1);
    assert_eq!(std::fs::read_to_string(dir.path().join("nightly.csv")).unwrap(), "5\n");
}

/// Static tokens declared in code (the official SDK's `defineToken`): one `Token` value granted, by resource type,
/// reading an endpoint and appending to a datasource, becomes `TOKEN` lines that tinybird-local turns into a token
/// with exactly those rights; a grant on a resource the project lacks is reported, naming it.
#[tokio::test]
async fn declared_tokens_get_the_rights_granted_in_code() {
    use tinybird::project::Token;
    const BACKEND: Token = Token::new("backend");
    let project = Project::new()
        .datasource::<Hit>()
        .endpoint::<AllHits>()
        .grant(BACKEND.appends::<Hit>())
        .grant(BACKEND.reads_pipe::<AllHits>());
    let files = project.files().unwrap();
    let datasource = &files.iter().find(|f| f.path.ends_with("hits.datasource")).unwrap().content;
    assert!(datasource.contains("TOKEN \"backend\" APPEND"), "{datasource}");
    let server = tinybird_local::LocalServer::start(&project).await.expect("tinybird-local starts");
    let value = server.token(BACKEND.name()).expect("the declared token exists");
    let backend = Client::builder().base_url(server.url()).token(value).build().unwrap();
    backend.ingest(&[hit(1), hit(2)]).await.expect("the token appends to hits");
    assert_eq!(backend.query(&AllHits {}).await.unwrap().data.len(), 2, "and reads all_hits");
    let err = backend.sql::<Count>("SELECT count() AS c FROM hits").await.expect_err("no DATASOURCES:READ");
    assert!(matches!(err.kind(), ErrorKind::Forbidden | ErrorKind::Auth), "{err}");

    let missing = Project::new().grant(BACKEND.reads::<Hit>()).datasource::<Hit>();
    let err = missing.validate().expect_err("a grant before its resource is reported").to_string();
    assert!(
        err.contains("token `backend` is granted READ on the datasource `hits`, which is not in the project"),
        "{err}"
    );
}
