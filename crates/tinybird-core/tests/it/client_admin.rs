//! Configuration, the Token API, datasource operations and deployments, against an in-test server that checks every
//! request exactly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client_support::{MockServer, Reply, TOKEN};
use tinybird_core::client::{
    Client, DeleteOptions, DeployOptions, DeployOutcome, DeployProgress, ImportSource, RetryPolicy,
};
use tinybird_core::error::{ErrorKind, FileError};
use tinybird_core::jwt::{Jwt, Scope};
use tinybird_core::project::ProjectFile;

fn q(r: &crate::client_support::Recorded) -> Vec<(&str, &str)> {
    r.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn path_prefix_is_kept_and_names_are_encoded() {
    let server = MockServer::start_with_prefix("/proxy/tb/", |_, _| Reply::json(200, "{}")).await;
    let client = server.client();
    assert!(client.base_url().as_str().ends_with("/proxy/tb"));
    client.truncate("my ds/../x").await.unwrap();
    let r = &server.requests()[0];
    r.assert_common();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/proxy/tb/v0/datasources/my%20ds%2F..%2Fx/truncate");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn with_token_shares_the_client_and_switches_the_header() {
    let server = MockServer::start(|_, _| Reply::json(200, "{}")).await;
    let client = server.client();
    let jwt_client = client.with_token("eyJhbGciOiJIUzI1NiJ9.e30.sig").unwrap();
    jwt_client.truncate("t").await.unwrap();
    client.truncate("t").await.unwrap();
    let reqs = server.requests();
    assert_eq!(reqs[0].header("authorization"), Some("Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"));
    assert_eq!(reqs[1].header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(client.with_token("").unwrap_err().kind(), &ErrorKind::Config);
    assert!(!format!("{jwt_client:?}").contains("eyJ"));
}

#[tokio::test]
async fn custom_user_agent_and_region() {
    let server = MockServer::start(|_, _| Reply::json(200, "{}")).await;
    let client = Client::builder().base_url(&server.url).token(TOKEN).user_agent("my-app/1.0").build().unwrap();
    client.truncate("t").await.unwrap();
    assert_eq!(server.requests()[0].header("user-agent"), Some("my-app/1.0"));

    let c = Client::builder().region("aws-eu-central-1").token(TOKEN).build().unwrap();
    assert_eq!(c.base_url().as_str(), "https://api.eu-central-1.aws.tinybird.co/");
    let err = Client::builder()
        .region("moon")
        .token(TOKEN)
        .retry(RetryPolicy::default().backoff(Duration::from_secs(2), Duration::from_secs(1)))
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("unknown region `moon`") && msg.contains("initial backoff"), "{msg}");
}

fn jwt_builder() -> tinybird_core::jwt::JwtBuilder<tinybird_core::jwt::WithExpiry> {
    Jwt::builder("user_42")
        .scope(Scope::pipe_named("user_analytics").fixed_param("user_id", 42))
        .rate_limit(10)
        .expires_in(Duration::from_secs(3600))
}

#[tokio::test]
async fn create_jwt_request_shape() {
    let server = MockServer::start(|_, _| Reply::json(200, r#"{"token":"eyJ.minted.jwt","name":"user_42"}"#)).await;
    let jwt = server.client().create_jwt(&jwt_builder()).await.unwrap();
    assert_eq!(jwt.expose(), "eyJ.minted.jwt");
    assert_eq!(jwt.name(), "user_42");
    let r = &server.requests()[0];
    r.assert_common();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v0/tokens/");
    let query = q(r);
    assert_eq!(query[0], ("name", "user_42"));
    assert_eq!(query[1].0, "expiration_time");
    let exp: i64 = query[1].1.parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((now + 3590..=now + 3610).contains(&exp), "{exp}");
    assert_eq!(jwt.exp_unix(), exp);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["name"], "user_42");
    assert_eq!(body["scopes"][0]["type"], "PIPES:READ");
    assert_eq!(body["scopes"][0]["resource"], "user_analytics");
    assert_eq!(body["scopes"][0]["fixed_params"]["user_id"], 42);
    assert_eq!(body["limits"]["rps"], 10);
}

#[tokio::test]
async fn create_jwt_errors_are_specific() {
    let server = MockServer::start(|_, _| {
        Reply::json(403, r#"{"error":"Token has not enough permissions to create an Token"}"#)
    })
    .await;
    let err = server.client().create_jwt(&jwt_builder()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Forbidden);
    assert!(err.to_string().contains("TOKENS or ADMIN scope"), "{err}");
    assert_eq!(server.count(), 1);

    let server = MockServer::start(|_, _| Reply::json(400, r#"{"error":"Resource 'user_analytics' not found"}"#)).await;
    let err = server.client().create_jwt(&jwt_builder()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::BadRequest);
    assert_eq!(err.tinybird_error(), Some("Resource 'user_analytics' not found"));

    let server = MockServer::start(|_, _| Reply::json(200, r#"{"nothing":1}"#)).await;
    let err = server.client().create_jwt(&jwt_builder()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Decode { .. }));
}

#[tokio::test]
async fn append_from_url_and_replace_from_file() {
    let server =
        MockServer::start(|_, _| Reply::json(200, r#"{"successful_rows":3,"quarantined_rows":1,"import_id":"imp_1"}"#))
            .await;
    let client = server.client();
    let res = client.append("events", ImportSource::Url("https://example.com/data.csv?x=1&y=2".into())).await.unwrap();
    assert_eq!((res.successful_rows, res.quarantined_rows, res.import_id.as_deref()), (3, 1, Some("imp_1")));
    let r = &server.requests()[0];
    r.assert_common();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v0/datasources");
    assert_eq!(q(r), [("name", "events"), ("mode", "append"), ("format", "csv"), ("from", "rust-sdk")]);
    assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(r.form(), [("url".to_owned(), "https://example.com/data.csv?x=1&y=2".to_owned())]);

    let dir = std::env::temp_dir().join(format!("tb-client-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rows.ndjson");
    std::fs::write(&file, "{\"a\":1}\n").unwrap();
    client.replace("events", ImportSource::File(file.clone())).await.unwrap();
    let r = &server.requests()[1];
    assert_eq!(q(r), [("name", "events"), ("mode", "replace"), ("format", "ndjson"), ("from", "rust-sdk")]);
    assert!(r.header("content-type").unwrap().starts_with("multipart/form-data; boundary="));
    let body = r.body_str();
    assert!(body.contains("Content-Disposition: form-data; name=\"csv\"; filename=\"rows.ndjson\""), "{body}");
    assert!(body.contains("{\"a\":1}\n"), "{body}");
    std::fs::remove_dir_all(&dir).unwrap();

    let err = client.append("events", ImportSource::File(dir.join("missing.csv"))).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    assert!(err.to_string().contains("missing.csv"), "{err}");
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn imports_are_not_retried_on_server_errors_but_are_on_429() {
    let server = MockServer::start(|_, n| {
        if n == 0 { Reply::json(429, "{}").header("retry-after", "0") } else { Reply::text(500, "oops") }
    })
    .await;
    let err = server.client().append("events", ImportSource::Url("https://x/a.csv".into())).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Server);
    assert_eq!(server.count(), 2, "429 retried, then 500 not");
}

#[tokio::test]
async fn delete_with_condition_and_dry_run() {
    let server = MockServer::start(|r, _| {
        if r.body_str().contains("dry_run") {
            Reply::json(200, r#"{"rows_to_be_deleted":3}"#)
        } else {
            Reply::json(
                200,
                r#"{"id":"j1","job_id":"j1","job_url":"https://x/v0/jobs/j1","status":"waiting","delete_id":"d1"}"#,
            )
        }
    })
    .await;
    let client = server.client();
    let dry = client.delete_rows("events", "user_id = 'a&b'", &DeleteOptions::default().dry_run(true)).await.unwrap();
    assert_eq!(dry.rows_to_be_deleted, Some(3));
    let job = client.delete_rows("events", "user_id = 1", &DeleteOptions::default()).await.unwrap();
    assert_eq!(job.job_id.as_deref(), Some("j1"));
    let reqs = server.requests();
    reqs[0].assert_common();
    assert_eq!(reqs[0].path, "/v0/datasources/events/delete");
    assert_eq!(reqs[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        reqs[0].form(),
        [("delete_condition".to_owned(), "user_id = 'a&b'".to_owned()), ("dry_run".to_owned(), "true".to_owned())]
    );
    assert_eq!(reqs[1].form(), [("delete_condition".to_owned(), "user_id = 1".to_owned())]);
    let err = client.delete_rows("events", "  ", &DeleteOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::BadRequest);
    assert_eq!(server.count(), 2);
}

fn files() -> Vec<ProjectFile> {
    vec![
        ProjectFile::new("datasources/events.datasource", "SCHEMA >\n    `id` UInt64\n"),
        ProjectFile::new("pipes/top.pipe", "NODE n\nSQL >\n    SELECT 1\n"),
    ]
}

#[tokio::test]
async fn deploy_uploads_polls_sets_live_and_removes_the_previous() {
    let server = MockServer::start(|r, _| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/v1/deployments") => Reply::json(
            200,
            r#"{"deployments":[{"id":"1","status":"live","live":true},{"id":"2","status":"failed","live":false}]}"#,
        ),
        ("DELETE", _) => Reply::json(200, r#"{"result":"success"}"#),
        ("POST", "/v1/deploy") => {
            Reply::json(200, r#"{"result":"success","deployment":{"id":"3","status":"calculating"}}"#)
        }
        ("GET", "/v1/deployments/3") => {
            Reply::json(200, r#"{"result":"success","deployment":{"id":"3","status":"data_ready"}}"#)
        }
        ("POST", "/v1/deployments/3/set-live") => Reply::json(200, r#"{"result":"success"}"#),
        other => panic!("unexpected request {other:?}"),
    })
    .await;
    let steps = Arc::new(Mutex::new(Vec::new()));
    let s = steps.clone();
    let opts = DeployOptions::default()
        .poll_interval(Duration::from_millis(5))
        .on_progress(move |p| s.lock().unwrap().push(p.clone()));
    let out = server.client().deploy(&files(), &opts).await.unwrap();
    assert_eq!(out, DeployOutcome::Deployed { id: "3".into(), previous: Some("1".into()), feedback: vec![] });
    let calls: Vec<String> = server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(
        calls,
        [
            "GET /v1/deployments",
            "DELETE /v1/deployments/2",
            "POST /v1/deploy",
            "GET /v1/deployments/3",
            "POST /v1/deployments/3/set-live",
            "DELETE /v1/deployments/1"
        ]
    );
    let upload = &server.requests()[2];
    upload.assert_common();
    let body = upload.body_str();
    assert!(body.contains("name=\"data_project://\"; filename=\"datasources/events.datasource\""), "{body}");
    assert!(body.contains("name=\"data_project://\"; filename=\"pipes/top.pipe\""), "{body}");
    assert!(body.contains("Content-Type: text/plain"), "{body}");
    assert!(body.contains("SELECT 1"));
    assert_eq!(
        *steps.lock().unwrap(),
        [
            DeployProgress::CleaningUp { stale: 1 },
            DeployProgress::Uploading { files: 2 },
            DeployProgress::Created { id: "3".into() },
            DeployProgress::SettingLive { id: "3".into() },
            DeployProgress::RemovingPrevious { id: "1".into() },
            DeployProgress::Live { id: "3".into() },
        ]
    );
}

#[tokio::test]
async fn deploy_failure_lists_each_file_error() {
    let server = MockServer::start(|r, _| match r.path.as_str() {
        "/v1/deployments" => Reply::json(200, r#"{"deployments":[]}"#),
        _ => Reply::json(
            400,
            r#"{"result":"failed","deployment":{"id":"9","status":"failed","feedback":[
                {"level":"ERROR","resource":"top.pipe","message":"Unknown column x"},
                {"level":"WARNING","resource":"events.datasource","message":"fine"}],
              "errors":[{"filename":"events.datasource","error":"bad type Strin"}]}}"#,
        ),
    })
    .await;
    let err = server.client().deploy(&files(), &DeployOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Deploy);
    assert_eq!(err.status(), Some(400));
    assert_eq!(
        err.file_errors(),
        [
            FileError { file: Some("top.pipe".into()), message: "Unknown column x".into() },
            FileError { file: Some("events.datasource".into()), message: "bad type Strin".into() },
        ]
    );
    assert!(err.to_string().contains("[top.pipe] Unknown column x\n[events.datasource] bad type Strin"), "{err}");
}

#[tokio::test]
async fn deploy_check_mode_and_no_changes() {
    let server = MockServer::start(|r, _| {
        assert_eq!(r.path, "/v1/deploy", "check mode touches nothing else");
        Reply::json(200, r#"{"result":"success","deployment":{"id":"4","status":"calculating","feedback":[{"level":"INFO","resource":null,"message":"ok"}]}}"#)
    })
    .await;
    let out =
        server.client().deploy(&files(), &DeployOptions::default().check(true).allow_destructive(true)).await.unwrap();
    assert!(matches!(out, DeployOutcome::Checked { feedback } if feedback[0].message == "ok"));
    assert_eq!(
        q(&server.requests()[0]),
        [("check", "true"), ("allow_destructive_operations", "true"), ("from", "rust-sdk")]
    );

    let server = MockServer::start(|r, _| match r.path.as_str() {
        "/v1/deployments" => Reply::json(200, r#"{"deployments":[]}"#),
        _ => Reply::json(200, r#"{"result":"no_changes"}"#),
    })
    .await;
    assert_eq!(server.client().deploy(&files(), &DeployOptions::default()).await.unwrap(), DeployOutcome::NoChanges);
}

#[tokio::test]
async fn deploy_that_fails_while_polling_or_never_gets_ready() {
    let server = MockServer::start(|r, _| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/v1/deployments") => Reply::json(200, r#"{"deployments":[]}"#),
        ("POST", "/v1/deploy") => {
            Reply::json(200, r#"{"result":"success","deployment":{"id":"5","status":"calculating"}}"#)
        }
        _ => Reply::json(200, r#"{"deployment":{"id":"5","status":"failed","errors":["populate failed"]}}"#),
    })
    .await;
    let err = server
        .client()
        .deploy(&files(), &DeployOptions::default().poll_interval(Duration::from_millis(1)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Deploy);
    assert_eq!(err.file_errors()[0].message, "populate failed");

    let server = MockServer::start(|r, _| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/v1/deployments") => Reply::json(200, r#"{"deployments":[]}"#),
        ("POST", "/v1/deploy") => {
            Reply::json(200, r#"{"result":"success","deployment":{"id":"6","status":"calculating"}}"#)
        }
        _ => Reply::json(200, r#"{"deployment":{"id":"6","status":"creating_schema"}}"#),
    })
    .await;
    let opts = DeployOptions::default().poll_interval(Duration::from_millis(10)).max_wait(Duration::from_millis(60));
    let err = server.client().deploy(&files(), &opts).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("creating_schema"), "{err}");

    // A poll interval too large to add to the elapsed time is a timeout, not an overflow.
    let opts = DeployOptions::default().poll_interval(Duration::MAX);
    let err = server.client().deploy(&files(), &opts).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn build_reports_changes_or_per_file_errors() {
    let server = MockServer::start(|_, n| {
        if n == 0 {
            Reply::json(200, r#"{"result":"success","build":{"id":"b1","new_datasource_names":["events"],"new_pipe_names":["top"]}}"#)
        } else {
            Reply::json(200, r#"{"result":"failed","errors":[{"filename":"top.pipe","error":"Syntax error"}]}"#)
        }
    })
    .await;
    let client = server.client();
    let ok = client.build(&files()).await.unwrap();
    assert_eq!(ok.result, "success");
    assert_eq!(ok.new_datasource_names, ["events"]);
    assert_eq!(ok.new_pipe_names, ["top"]);
    let r = &server.requests()[0];
    r.assert_common();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/build"));
    let err = client.build(&files()).await.unwrap_err();
    assert_eq!(err.file_errors(), [FileError { file: Some("top.pipe".into()), message: "Syntax error".into() }]);
    assert_eq!(client.build(&[]).await.unwrap_err().kind(), &ErrorKind::BadRequest);
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Visit {
    id: u64,
}

impl tinybird_core::Datasource for Visit {
    const NAME: &'static str = "visits";
    type Columns = ();
    fn definition() -> tinybird_core::DatasourceDef {
        use tinybird_core::__private::{ColumnDef, EngineDef};
        tinybird_core::DatasourceDef {
            name: Self::NAME.into(),
            columns: vec![ColumnDef {
                name: "id".into(),
                ty: "UInt64".into(),
                json_path: Some("$.id".into()),
                ..Default::default()
            }],
            engine: EngineDef { kind: "MergeTree".into(), sorting_key: Some("id".into()), ..Default::default() },
            ..Default::default()
        }
    }
}

#[tokio::test]
async fn build_project_uploads_its_datafiles() {
    let server = MockServer::start(|_, _| {
        Reply::json(200, r#"{"result":"success","build":{"new_datasource_names":["visits"]}}"#)
    })
    .await;
    let project = tinybird_core::project::Project::new().datasource::<Visit>();
    let expected = project.files().unwrap();
    let res = server.client().build_project(&project).await.unwrap();
    assert_eq!(res.new_datasource_names, ["visits"]);
    let body = server.requests()[0].body_str();
    assert!(body.contains("name=\"data_project://\"; filename=\"datasources/visits.datasource\""), "{body}");
    assert!(body.contains(&expected[0].content), "{body}");
}

#[tokio::test]
async fn auth_errors_hint_at_a_region_mismatch() {
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(r#"{"u":"ws-1","id":"t-1","host":"https://api.us-east.tinybird.co"}"#);
    let token = format!("p.{payload}.signature-part");
    let reply = |_: &crate::client_support::Recorded, _| Reply::json(403, r#"{"error":"Invalid token"}"#);

    let remote = MockServer::start_at("127.0.0.2", "", reply).await;
    let client = Client::builder().base_url(&remote.url).token(&token).build().unwrap();
    let err = client.truncate("t").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Forbidden);
    assert!(
        err.to_string().contains("hint: the token belongs to the workspace's region at `api.us-east.tinybird.co`, but this client calls `127.0.0.2`"),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains(&payload), "no part of the token in the error");

    let local = MockServer::start(reply).await;
    let client = Client::builder().base_url(&local.url).token(&token).build().unwrap();
    let err = client.truncate("t").await.unwrap_err();
    assert!(!err.to_string().contains("hint"), "no hint against a local server: {err}");

    let other = Client::builder().base_url(&remote.url).token(TOKEN).build().unwrap();
    let err = other.truncate("t").await.unwrap_err();
    assert!(!err.to_string().contains("hint"), "a token without a host gets no hint: {err}");
}

/// Pipe and resource names follow Tinybird's one name rule (`tinybird_types::is_valid_name`): one that breaks it
/// (a leading digit, a `:` that would change a scope, a path) is refused as a bad request, and nothing is sent.
#[tokio::test]
async fn names_that_break_tinybirds_rule_send_nothing() {
    let server = MockServer::start(|_, _| Reply::json(200, "{}")).await;
    let client = server.client();
    for pipe in ["2nd_pass", "../v0/tokens", "", "a-b"] {
        let err = client.copy_pipe(pipe, &[]).await.expect_err(pipe);
        assert_eq!(err.kind(), &ErrorKind::BadRequest, "{pipe}");
        assert!(err.to_string().contains("invalid pipe name"), "{err}");
    }
    for resource in ["1events", "events:read", ""] {
        let request = tinybird_core::client::StaticTokenRequest::new("backend").read_pipe_named(resource);
        let err = client.create_static_token(&request).await.expect_err(resource);
        assert_eq!(err.kind(), &ErrorKind::BadRequest, "{resource}");
        assert!(err.to_string().contains("invalid resource"), "{err}");
    }
    assert_eq!(server.count(), 0);
}

/// A sink runs with `POST /v0/pipes/{name}/sink?params` and answers with its job; a copy's schedule is paused and
/// resumed with `POST /v0/pipes/{name}/copy/pause|resume`, whatever the body says.
#[tokio::test]
async fn sinks_run_and_copy_schedules_pause_and_resume() {
    let server = MockServer::start(|req, _| {
        if req.path.ends_with("/sink") {
            Reply::json(200, r#"{"job":{"id":"j9","kind":"sink","status":"waiting"}}"#)
        } else {
            Reply::json(200, "")
        }
    })
    .await;
    let client = server.client();
    let job = client.sink_pipe("daily_export", &[("day", "2024-03-01")]).await.unwrap();
    assert_eq!((job.id.as_str(), job.kind.as_str()), ("j9", "sink"));
    client.pause_copy("hourly").await.unwrap();
    client.resume_copy("hourly").await.unwrap();
    let reqs = server.requests();
    let seen: Vec<(&str, &str)> = reqs.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("POST", "/v0/pipes/daily_export/sink"),
            ("POST", "/v0/pipes/hourly/copy/pause"),
            ("POST", "/v0/pipes/hourly/copy/resume")
        ]
    );
    assert!(reqs[0].query.iter().any(|(k, v)| k == "day" && v == "2024-03-01"), "{:?}", reqs[0].query);
    for bad in ["", "a/b", "1x"] {
        assert_eq!(client.pause_copy(bad).await.unwrap_err().kind(), &ErrorKind::BadRequest);
        assert_eq!(client.sink_pipe(bad, &[]).await.unwrap_err().kind(), &ErrorKind::BadRequest);
    }
    assert_eq!(server.count(), 3);
}
