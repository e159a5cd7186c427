//! Shared helpers for the HTTP integration tests.
#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;
use tinybird_local::{LocalServer, Resources};

/// Tests that load the machine (the red team's crash, stall and depth attacks, which time their answers; the
/// differential, which runs ClickHouse on every core) take this lock, so that no such test runs beside another.
pub(crate) static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/project")
}

pub(crate) fn resources() -> Resources {
    Resources::from_dir(project_dir()).expect("fixture project parses")
}

/// Whether these tests run on the ClickHouse engine (`TINYBIRD_LOCAL_ENGINE=clickhouse`): the whole suite runs on
/// either engine, and the few answers that differ (what DataFusion refuses, ClickHouse runs) say so.
pub(crate) fn on_clickhouse() -> bool {
    matches!(tinybird_local::EngineKind::from_env(), Ok(Some(tinybird_local::EngineKind::ClickHouse)))
}

pub(crate) async fn server() -> LocalServer {
    LocalServer::start(resources()).await.expect("server starts")
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub(crate) const ROWS: &str = r#"{"timestamp":"2024-01-01 00:00:00","org_id":"acme","page":"/a","user":{"id":1},"duration":1.5,"big":18446744073709551615}
{"timestamp":"2024-01-01 00:00:01","org_id":"acme","page":"/a","user":{"id":2},"duration":2.5,"big":1}
{"timestamp":"2024-01-01 00:00:02","org_id":"acme","page":"/b","duration":4,"big":2}
{"timestamp":"2024-01-02 10:00:00","org_id":"other","page":"/c","user":{"id":3},"duration":1,"big":3}"#;

/// Ingests the four fixture rows with the admin token.
pub(crate) async fn seed(server: &LocalServer) {
    let r = client()
        .post(format!("{}/v0/events?name=events&wait=true", server.url()))
        .bearer_auth(server.admin_token())
        .body(ROWS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"successful_rows": 4, "quarantined_rows": 0}));
}

pub(crate) async fn get_json(url: &str, token: &str) -> (u16, Value) {
    let r = client().get(url).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

pub(crate) fn jwt(server: &LocalServer, payload: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(server.admin_token().as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &payload, &key).unwrap()
}

pub(crate) fn in_one_hour() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

/// Datafiles as the CLI and the SDKs send them to `/v1/build` and `/v1/deploy`: a `context://` part, then one
/// `data_project://` part per file.
pub(crate) fn datafiles_form(files: &[(&str, &str)]) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new()
        .part("context://", reqwest::multipart::Part::text("1.0.0").file_name("cli-version"));
    for (name, text) in files {
        let part = reqwest::multipart::Part::text(text.to_string())
            .file_name(name.to_string())
            .mime_str("text/plain")
            .unwrap();
        form = form.part("data_project://", part);
    }
    form
}

/// Builds `files` on a server with its admin token: the status and the JSON answer.
pub(crate) async fn build(server: &LocalServer, files: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(format!("{}/v1/build", server.url()))
        .bearer_auth(server.admin_token())
        .multipart(datafiles_form(files))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
