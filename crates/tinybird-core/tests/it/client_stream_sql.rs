//! Streaming NDJSON reads and SQL, against an in-test server that checks every request exactly.

use crate::client_support::{MockServer, Reply};
use futures::StreamExt;
use serde::Deserialize;
use tinybird_core::endpoint::{Endpoint, EndpointDef, FixedParams};
use tinybird_core::error::ErrorKind;
use tinybird_core::params::QueryParams;
use tinybird_core::row::{Row, RowColumn};

#[derive(Debug, Default)]
struct NoFixed;
impl FixedParams for NoFixed {
    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct Hit {
    id: u64,
    name: String,
}

impl Row for Hit {
    fn columns() -> Vec<RowColumn> {
        vec![
            RowColumn { name: "id".into(), ty: "UInt64".into() },
            RowColumn { name: "name".into(), ty: "String".into() },
        ]
    }
}

struct Hits {
    limit: u32,
}

impl Endpoint for Hits {
    const NAME: &'static str = "hits";
    type Output = Hit;
    type Fixed = NoFixed;
    fn definition() -> EndpointDef {
        EndpointDef { name: Self::NAME.into(), ..Default::default() }
    }
    fn to_params(&self) -> QueryParams {
        let mut p = QueryParams::new();
        p.push("limit", self.limit.to_string());
        p
    }
}

async fn collect(server: &MockServer) -> (Vec<Hit>, Option<tinybird_core::error::Error>) {
    let mut stream = server.client().query_stream(&Hits { limit: 3 }).await.unwrap();
    let mut rows = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(r) => rows.push(r),
            Err(e) => {
                assert!(stream.next().await.is_none(), "the stream ends after an error");
                return (rows, Some(e));
            }
        }
    }
    (rows, None)
}

#[tokio::test]
async fn ndjson_rows_split_across_chunks_are_decoded_in_order() {
    let server = MockServer::start(|_, _| {
        Reply::chunks(
            vec!["{\"id\":1,\"name\":\"a\"}\n{\"id\":2,", "\"name\":\"b\"}\r\n\n{\"id\":3,\"name\":\"c\"}"],
            false,
        )
    })
    .await;
    let (rows, err) = collect(&server).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(rows.iter().map(|h| h.id).collect::<Vec<_>>(), [1, 2, 3], "a final row without newline is complete");
    let r = &server.requests()[0];
    r.assert_common();
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/v0/pipes/hits.ndjson");
    assert_eq!(r.query[0], ("limit".to_owned(), "3".to_owned()));
}

#[tokio::test]
async fn a_body_that_ends_mid_row_is_an_error_not_an_end() {
    let server =
        MockServer::start(|_, _| Reply::chunks(vec!["{\"id\":1,\"name\":\"a\"}\n{\"id\":2,\"na"], false)).await;
    let (rows, err) = collect(&server).await;
    assert_eq!(rows.len(), 1);
    let err = err.expect("cut stream must fail");
    assert_eq!(err.kind(), &ErrorKind::Transport);
    assert!(err.to_string().contains("ended in the middle of row 1"), "{err}");
}

#[tokio::test]
async fn a_connection_cut_mid_body_is_an_error() {
    let server = MockServer::start(|_, _| Reply::chunks(vec!["{\"id\":1,\"name\":\"a\"}\n{\"id\":2,"], true)).await;
    let (rows, err) = collect(&server).await;
    assert_eq!(rows.len(), 1);
    let err = err.expect("aborted stream must fail");
    assert_eq!(err.kind(), &ErrorKind::Transport, "{err:?}");
    assert!(err.to_string().contains("after 1 rows"), "{err}");
}

#[tokio::test]
async fn a_bad_line_names_row_and_column() {
    let server = MockServer::start(|_, _| {
        Reply::chunks(vec!["{\"id\":1,\"name\":\"a\"}\n{\"id\":-2,\"name\":\"b\"}\n{\"id\":3,\"name\":\"c\"}\n"], false)
    })
    .await;
    let (rows, err) = collect(&server).await;
    assert_eq!(rows.len(), 1);
    let err = err.unwrap();
    assert_eq!(err.kind(), &ErrorKind::Decode { column: Some("id".into()), row: Some(1) });
}

#[tokio::test]
async fn a_clickhouse_exception_in_the_stream_is_surfaced() {
    let server = MockServer::start(|_, _| {
        Reply::chunks(vec!["{\"id\":1,\"name\":\"a\"}\nCode: 241. DB::Exception: Memory limit exceeded\n"], false)
    })
    .await;
    let (rows, err) = collect(&server).await;
    assert_eq!(rows.len(), 1);
    assert!(err.unwrap().to_string().contains("DB::Exception: Memory limit exceeded"));
}

#[tokio::test]
async fn stream_errors_before_the_body_are_api_errors() {
    let server = MockServer::start(|_, _| Reply::json(403, r#"{"error":"Resource 'hits' not found"}"#)).await;
    let err = server.client().query_stream(&Hits { limit: 1 }).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Forbidden);
    assert_eq!(err.tinybird_error(), Some("Resource 'hits' not found"));
}

const SQL_BODY: &str = r#"{"meta":[{"name":"id","type":"UInt64"},{"name":"name","type":"String"}],
  "data":[{"id":18446744073709551615,"name":"x"}],"rows":1,"statistics":{"elapsed":0.1,"rows_read":1,"bytes_read":8}}"#;

#[tokio::test]
async fn sql_appends_format_json_and_sends_plain_text() {
    let server = MockServer::start(|_, _| Reply::json(200, SQL_BODY)).await;
    let res = server.client().sql::<Hit>("SELECT id, name FROM hits_ds LIMIT 1").await.unwrap();
    assert_eq!(res.data, [Hit { id: u64::MAX, name: "x".into() }]);
    let r = &server.requests()[0];
    r.assert_common();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v0/sql");
    assert_eq!(r.query, [("from".to_owned(), "rust-sdk".to_owned())]);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.body_str(), "SELECT id, name FROM hits_ds LIMIT 1\nFORMAT JSON");
}

#[tokio::test]
async fn sql_keeps_an_existing_format_json_and_rejects_others() {
    let server = MockServer::start(|_, _| Reply::json(200, SQL_BODY)).await;
    let client = server.client();
    client.sql::<Hit>("select 1 FORMAT JSON;").await.unwrap();
    assert_eq!(server.requests()[0].body_str(), "select 1 FORMAT JSON");
    let err = client.sql::<Hit>("select 1 FORMAT CSV").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::BadRequest);
    assert_eq!(server.count(), 1, "nothing sent for a request that cannot be decoded");
}

#[tokio::test]
async fn templated_sql_sends_a_form_with_params() {
    let server = MockServer::start(|_, _| Reply::json(200, SQL_BODY)).await;
    let mut params = QueryParams::new();
    params.push("user", "ann & bob");
    params.push("ids", "1");
    params.push("ids", "2");
    let sql = "% SELECT * FROM t WHERE user = {{String(user)}}";
    server.client().sql::<Hit>(sql).params(params.clone()).await.unwrap();
    let r = &server.requests()[0];
    r.assert_common();
    assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form: Vec<(String, String)> = r.form();
    let expect =
        [("q", format!("{sql}\nFORMAT JSON")), ("user", "ann & bob".into()), ("ids", "1".into()), ("ids", "2".into())];
    assert_eq!(form, expect.map(|(k, v)| (k.to_owned(), v)));
}

#[tokio::test]
async fn untyped_value_rows() {
    let server = MockServer::start(|_, _| Reply::json(200, SQL_BODY)).await;
    let res = server.client().sql::<serde_json::Value>("SELECT 1").await.unwrap();
    assert_eq!(res.data[0]["name"], "x");
    assert_eq!(res.data[0]["id"].as_u64(), Some(u64::MAX));
    assert_eq!(res.meta[0].ty, "UInt64");
}

#[tokio::test]
async fn sql_meta_mismatch_names_the_column() {
    let server =
        MockServer::start(|_, _| Reply::json(200, &SQL_BODY.replace(r#""type":"String""#, r#""type":"UInt8""#))).await;
    let err = server.client().sql::<Hit>("SELECT 1").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::SchemaMismatch { column: "name".into() });
}

#[tokio::test]
async fn sql_stream_reads_json_each_row() {
    let server = MockServer::start(|_, _| {
        Reply::chunks(vec!["{\"id\":1,\"name\":\"a\"}\n{\"id\":2,", "\"name\":\"b\"}\n"], false)
    })
    .await;
    let client = server.client();
    let rows: Vec<Hit> =
        client.sql_stream::<Hit>("SELECT id, name FROM t").await.unwrap().map(Result::unwrap).collect().await;
    assert_eq!(rows, [Hit { id: 1, name: "a".into() }, Hit { id: 2, name: "b".into() }]);
    let r = &server.requests()[0];
    r.assert_common();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v0/sql"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.body_str(), "SELECT id, name FROM t\nFORMAT JSONEachRow");
}
