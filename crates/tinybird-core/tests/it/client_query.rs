//! Typed endpoint queries against an in-test server that checks every request exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::client_support::{MockServer, Reply, TOKEN};
use serde::Deserialize;
use tinybird_core::client::{QueryOptions, RetryPolicy};
use tinybird_core::endpoint::{Endpoint, EndpointDef, FixedParams};
use tinybird_core::error::ErrorKind;
use tinybird_core::params::QueryParams;
use tinybird_core::row::{Row, RowColumn};

/// `user_analytics` with one required and one array parameter, as `#[derive(Endpoint)]` would state it.
struct UserAnalytics {
    user_id: u64,
    tags: Vec<String>,
    note: String,
}

#[derive(Debug, Default)]
struct NoFixed;
impl FixedParams for NoFixed {
    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct Stats {
    user_id: u64,
    views: u64,
    big: i128,
    ratio: Option<f64>,
    pages: Vec<String>,
    attrs: BTreeMap<String, u32>,
    at: String,
}

impl Row for Stats {
    fn columns() -> Vec<RowColumn> {
        let c = |n: &str, t: &str| RowColumn { name: n.into(), ty: t.into() };
        vec![
            c("user_id", "UInt64"),
            c("views", "UInt64"),
            c("big", "Int128"),
            c("ratio", "Nullable(Float64)"),
            c("pages", "Array(String)"),
            c("attrs", "Map(String, UInt32)"),
            c("at", "DateTime64(3)"),
        ]
    }
}

impl Endpoint for UserAnalytics {
    const NAME: &'static str = "user_analytics";
    type Output = Stats;
    type Fixed = NoFixed;
    fn definition() -> EndpointDef {
        EndpointDef { name: Self::NAME.into(), ..Default::default() }
    }
    fn to_params(&self) -> QueryParams {
        let mut p = QueryParams::new();
        p.push("user_id", self.user_id.to_string());
        for t in &self.tags {
            p.push("tags", t.clone());
        }
        if !self.note.is_empty() {
            p.push("note", self.note.clone());
        }
        p
    }
}

fn params() -> UserAnalytics {
    UserAnalytics { user_id: 42, tags: vec!["a b".into(), "c&d".into()], note: String::new() }
}

const META: &str = r#"[{"name":"user_id","type":"UInt64"},{"name":"views","type":"UInt64"},
    {"name":"big","type":"Int128"},{"name":"ratio","type":"Nullable(Float64)"},
    {"name":"pages","type":"Array(String)"},{"name":"attrs","type":"Map(String, UInt32)"},
    {"name":"at","type":"DateTime64(3)"}]"#;

fn body(data: &str) -> String {
    format!(
        r#"{{"meta":{META},"data":{data},"rows":2,"rows_before_limit_at_least":10,
        "statistics":{{"elapsed":0.0012,"rows_read":100,"bytes_read":2048}}}}"#
    )
}

const ROWS: &str = r#"[
 {"user_id":18446744073709551615,"views":9007199254740993,"big":-170141183460469231731687303715884105728,
  "ratio":null,"pages":["/","/x"],"attrs":{"k":1},"at":"2024-01-02 03:04:05.678"},
 {"user_id":1,"views":0,"big":170141183460469231731687303715884105727,"ratio":0.5,"pages":[],"attrs":{},
  "at":"1970-01-01 00:00:00.000"}]"#;

#[tokio::test]
async fn get_request_shape_and_lossless_decoding() {
    let server = MockServer::start(|_, _| Reply::json(200, &body(ROWS))).await;
    let res = server.client().query(&params()).await.unwrap();

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    r.assert_common();
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/v0/pipes/user_analytics.json");
    let q: Vec<(&str, &str)> = r.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(q, [("user_id", "42"), ("tags", "a b"), ("tags", "c&d"), ("from", "rust-sdk")]);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), None);

    assert_eq!(res.rows, 2);
    assert_eq!(res.rows_before_limit_at_least, Some(10));
    let stats = res.statistics.unwrap();
    assert_eq!((stats.rows_read, stats.bytes_read), (100, 2048));
    assert_eq!(res.meta.len(), 7);
    assert_eq!(res.meta[3].ty, "Nullable(Float64)");
    assert_eq!(res.data[0].user_id, u64::MAX);
    assert_eq!(res.data[0].views, 9_007_199_254_740_993); // 2^53 + 1: lost by f64
    assert_eq!(res.data[0].big, i128::MIN);
    assert_eq!(res.data[1].big, i128::MAX);
    assert_eq!(res.data[0].ratio, None);
    assert_eq!(res.data[1].ratio, Some(0.5));
    assert_eq!(res.data[0].pages, ["/", "/x"]);
    assert_eq!(res.data[0].attrs.get("k"), Some(&1));
    assert_eq!(res.data[0].at, "2024-01-02 03:04:05.678");
}

/// A query is a builder: nothing is sent until it is awaited, and each option set on it reaches the request.
#[tokio::test]
async fn a_query_is_sent_when_awaited_with_its_options() {
    let server = MockServer::start(|_, _| Reply::json(200, &body(ROWS))).await;
    let client = server.client();
    let pending = client.query(&params()).param("q", "SELECT 1").skip_meta_check();
    assert_eq!(server.count(), 0, "building a query sends nothing");
    assert!(format!("{pending:?}").contains("user_analytics"), "{pending:?}");
    pending.await.unwrap();
    let q = server.requests()[0].query.clone();
    assert_eq!(q.iter().filter(|(k, _)| k == "q").count(), 1, "{q:?}");

    let sql = client.sql::<serde_json::Value>("SELECT secret_column FROM t");
    assert!(!format!("{sql:?}").contains("secret_column"), "Debug does not print the SQL");
    drop(sql);
    assert_eq!(server.count(), 1, "a dropped query is never sent");
}

#[tokio::test]
async fn long_urls_switch_to_a_post_form() {
    let server = MockServer::start(|_, _| Reply::json(200, &body("[]"))).await;
    let p = UserAnalytics { user_id: 7, tags: vec![], note: "x".repeat(5000) };
    server.client().query(&p).await.unwrap();
    let r = &server.requests()[0];
    r.assert_common();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v0/pipes/user_analytics.json");
    assert_eq!(r.query, [("from".to_owned(), "rust-sdk".to_owned())]);
    assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(r.form(), [("user_id".to_owned(), "7".to_owned()), ("note".to_owned(), "x".repeat(5000))]);
}

#[tokio::test]
async fn missing_column_in_meta_is_named() {
    let meta_without_views = body(ROWS).replace(r#"{"name":"views","type":"UInt64"},"#, "");
    let server = MockServer::start(move |_, _| Reply::json(200, &meta_without_views)).await;
    let err = server.client().query(&params()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::SchemaMismatch { column: "views".into() });
    assert!(err.to_string().contains("`views` (UInt64) is not in the response"), "{err}");
}

#[tokio::test]
async fn differently_typed_column_is_named_and_check_can_be_skipped() {
    let retyped =
        body(ROWS).replace(r#"{"name":"user_id","type":"UInt64"}"#, r#"{"name":"user_id","type":"Nullable(UInt64)"}"#);
    let server = MockServer::start(move |_, _| Reply::json(200, &retyped)).await;
    let client = server.client();
    let err = client.query(&params()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::SchemaMismatch { column: "user_id".into() });
    assert!(
        err.to_string().contains("`user_id` is declared UInt64 but the endpoint returns Nullable(UInt64)"),
        "{err}"
    );
    let ok = client.query(&params()).skip_meta_check().await.unwrap();
    assert_eq!(ok.data.len(), 2);
}

#[tokio::test]
async fn decode_error_names_column_and_row() {
    let bad = body(&ROWS.replace(r#""views":0"#, r#""views":"zero""#));
    let server = MockServer::start(move |_, _| Reply::json(200, &bad)).await;
    let err = server.client().query(&params()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode { column: Some("views".into()), row: Some(1) });
    assert!(err.to_string().contains("column `views` of row 1"), "{err}");

    let missing = body(&ROWS.replace(r#""user_id":1,"#, ""));
    let server = MockServer::start(move |_, _| Reply::json(200, &missing)).await;
    let err = server.client().query(&params()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Decode { column: Some("user_id".into()), row: Some(1) });
}

#[tokio::test]
async fn malformed_json_is_a_decode_error() {
    let server = MockServer::start(|_, _| Reply::json(200, r#"{"meta":[],"data":[{"user_id":1"#)).await;
    let err = server.client().query(&params()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("not valid JSON"), "{err}");
}

#[tokio::test]
async fn tinybird_errors_are_reported_with_status_text_and_docs() {
    let server = MockServer::start(|_, _| {
        Reply::json(
            400,
            r#"{"error":"Template Syntax Error: Required parameter is not defined. Check the parameters user_id.","documentation":"https://www.tinybird.co/docs/query/query-parameters.html"}"#,
        )
    })
    .await;
    let err = server.client().query(&params()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::BadRequest);
    assert_eq!(err.status(), Some(400));
    assert!(err.tinybird_error().unwrap().starts_with("Template Syntax Error: Required parameter"));
    assert_eq!(err.documentation(), Some("https://www.tinybird.co/docs/query/query-parameters.html"));
    assert_eq!(server.count(), 1, "400 is not retried");
    assert!(!format!("{err} {err:?}").contains(TOKEN));

    let server = MockServer::start(|_, _| Reply::json(403, r#"{"error":"Resource 'user_analytics' not found"}"#)).await;
    let err = server.client().query(&params()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Forbidden);
    assert!(err.is_auth());

    let server = MockServer::start(|_, _| Reply::text(401, "Unauthorized")).await;
    let err = server.client().query(&params()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Auth);
    assert!(err.to_string().ends_with("HTTP 401: Unauthorized"), "{err}");
}

#[tokio::test]
async fn rate_limited_then_success_waits_for_retry_after() {
    let server = MockServer::start(|_, n| {
        if n == 0 {
            Reply::json(429, r#"{"error":"Too many requests"}"#).header("retry-after", "0.2")
        } else {
            Reply::json(200, &body(ROWS))
        }
    })
    .await;
    let started = std::time::Instant::now();
    let res = server.client().query(&params()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200), "waited {:?}", started.elapsed());
    assert_eq!(res.data.len(), 2);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].query, reqs[1].query);
}

#[tokio::test]
async fn rate_limit_reset_header_is_honoured() {
    let server = MockServer::start(|_, n| {
        if n == 0 {
            Reply::json(429, r#"{"error":"limit"}"#).header("x-ratelimit-reset", "0.15")
        } else {
            Reply::json(200, &body("[]"))
        }
    })
    .await;
    let started = std::time::Instant::now();
    server.client().query(&params()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn absurd_wait_hints_fail_at_the_deadline_instead_of_panicking() {
    // 1e30 s does not fit a Duration; 1e19 s fits one but not an Instant.
    for (header, value) in
        [("retry-after", "1e30"), ("retry-after", "1e19"), ("x-ratelimit-reset", "1e30"), ("x-ratelimit-reset", "1e19")]
    {
        let server =
            MockServer::start(move |_, _| Reply::json(429, r#"{"error":"limit"}"#).header(header, value)).await;
        let started = std::time::Instant::now();
        let err = server.client().query(&params()).await.unwrap_err();
        assert!(err.is_rate_limited(), "{header}: {value}: {err}");
        assert!(started.elapsed() < Duration::from_secs(10), "{header}: {value}: waited {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn an_unbounded_total_deadline_does_not_overflow() {
    let server = MockServer::start(|_, _| Reply::json(200, &body("[]"))).await;
    let policy = RetryPolicy::default().total_deadline(Some(Duration::MAX));
    let res = server.client().query(&params()).retry(policy).await;
    assert!(res.is_ok(), "{res:?}");
}

#[tokio::test]
async fn repeated_503_fails_clearly_after_the_retries() {
    let server = MockServer::start(|_, _| Reply::text(503, "Service unavailable")).await;
    let err = server.client().query(&params()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Server);
    assert_eq!(err.status(), Some(503));
    assert_eq!(server.count(), 4, "1 attempt + 3 retries");
    assert_eq!(err.attempts(), 4);
    assert_eq!(
        err.to_string(),
        "GET /v0/pipes/user_analytics.json failed with HTTP 503: Service unavailable (after 4 attempts)"
    );
}

#[tokio::test]
async fn per_call_retry_override_and_total_deadline() {
    let server = MockServer::start(|_, _| Reply::text(502, "Bad gateway")).await;
    let client = server.client();
    let err = client.query(&params()).retry(RetryPolicy::none()).await.unwrap_err();
    assert_eq!(server.count(), 1);
    assert_eq!(err.attempts(), 1);

    let slow = RetryPolicy::default()
        .max_retries(100)
        .backoff(Duration::from_millis(100), Duration::from_millis(100))
        .jitter(false)
        .total_deadline(Some(Duration::from_millis(250)));
    let err = client.query(&params()).retry(slow).await.unwrap_err();
    assert!(err.to_string().starts_with("retry deadline reached:"), "{err}");
    assert_eq!(server.count(), 1 + 3, "three attempts fit in 250 ms with 100 ms waits");
}

#[tokio::test]
async fn timeout_is_reported_and_retried_for_reads() {
    let server = MockServer::start(|_, n| {
        if n == 0 {
            Reply::json(200, &body("[]")).delay(Duration::from_millis(500))
        } else {
            Reply::json(200, &body(ROWS))
        }
    })
    .await;
    let client = server.client();
    let opts = QueryOptions::new().timeout(Duration::from_millis(100));
    let res = client.query(&params()).options(opts.clone()).await.unwrap();
    assert_eq!(res.data.len(), 2, "the second attempt answered");

    let server = MockServer::start(|_, _| Reply::json(200, &body("[]")).delay(Duration::from_millis(500))).await;
    let err = server.client().query(&params()).options(opts.clone().retry(RetryPolicy::none())).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn gzip_responses_are_decoded() {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(body(ROWS).as_bytes()).unwrap();
    let gz = bytes::Bytes::from(enc.finish().unwrap());
    let server = MockServer::start(move |r, _| {
        assert!(r.header("accept-encoding").unwrap().contains("gzip"));
        let mut reply = Reply::json(200, "");
        reply.body = crate::client_support::ReplyBody::Full(gz.clone());
        reply.header("content-encoding", "gzip")
    })
    .await;
    let res = server.client().query(&params()).await.unwrap();
    assert_eq!(res.data[0].user_id, u64::MAX);
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = tinybird_core::client::Client::builder()
        .base_url(url)
        .token(TOKEN)
        .retry(crate::client_support::fast_retry())
        .build()
        .unwrap();
    let err = client.query(&params()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Transport);
    assert_eq!(err.attempts(), 4);
    assert!(!format!("{err} {err:?}").contains(TOKEN));
}

/// The SDK's own value types through the client: `DateTime64`, chrono via `types::wire`, quoted 64-bit integers.
#[derive(Debug, Deserialize)]
struct Typed {
    at: tinybird_core::types::DateTime64<3>,
    #[serde(with = "tinybird_core::types::wire")]
    day: chrono::NaiveDateTime,
    #[serde(with = "tinybird_core::types::wire")]
    quoted: u64,
    #[serde(with = "tinybird_core::types::wire")]
    wide: Option<i128>,
}

impl Row for Typed {
    fn columns() -> Vec<RowColumn> {
        let c = |n: &str, t: &str| RowColumn { name: n.into(), ty: t.into() };
        vec![c("at", "DateTime64(3)"), c("day", "DateTime"), c("quoted", "UInt64"), c("wide", "Nullable(Int128)")]
    }
}

#[tokio::test]
async fn sdk_value_types_decode_through_sql() {
    let server = MockServer::start(|_, _| {
        Reply::json(
            200,
            r#"{"meta":[{"name":"at","type":"DateTime64(3, 'UTC')"},{"name":"day","type":"DateTime('UTC')"},
                {"name":"quoted","type":"UInt64"},{"name":"wide","type":"Nullable(Int128)"}],
               "data":[{"at":"2024-01-02 03:04:05.678","day":"2024-01-02 03:04:05","quoted":"18446744073709551615",
                        "wide":-170141183460469231731687303715884105728},
                       {"at":"1970-01-01 00:00:00.000","day":"1970-01-01 00:00:00","quoted":"0","wide":null}],
               "rows":2}"#,
        )
    })
    .await;
    let res = server.client().sql::<Typed>("SELECT * FROM t").await.unwrap();
    assert_eq!(res.data[0].at.0.to_string(), "2024-01-02 03:04:05.678");
    assert_eq!(res.data[0].day.to_string(), "2024-01-02 03:04:05");
    assert_eq!(res.data[0].quoted, u64::MAX);
    assert_eq!(res.data[0].wide, Some(i128::MIN));
    assert_eq!(res.data[1].wide, None);
    assert_eq!(res.rows_before_limit_at_least, None, "absent without LIMIT");
}

/// A failed connection: the message says what failed, the transport error is the `source()`, and the message does
/// not repeat it (error reporters print the chain; each cause appears once).
#[tokio::test]
async fn transport_errors_keep_their_cause_as_the_source_only() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = tinybird_core::client::Client::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .token(TOKEN)
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client.sql::<serde_json::Value>("SELECT 1").await.expect_err("nothing listens there");
    assert_eq!(err.kind(), &ErrorKind::Transport, "{err}");
    assert!(err.to_string().contains("could not connect to the server"), "{err}");
    let source = std::error::Error::source(&err).expect("the transport error is the source").to_string();
    assert!(!err.to_string().contains(&source), "the message repeats its source: {err} / {source}");
}
