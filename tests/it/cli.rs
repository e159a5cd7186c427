//! The `tinybird` command (`tinybird::cli`) driven through `Cli::run` against an in-test mock of Tinybird's API:
//! the exact requests sent (multipart parts of `/v1/build` and `/v1/deploy`), exit codes and output.
#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tinybird::cli::{Cli, CliError, CliErrorKind, Output};
use tinybird::datasource::{ColumnDef, DatasourceDef};
use tinybird::endpoint::{EndpointDef, NodeDef};
use tinybird::project::{Project, ProjectFile};

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

fn events() -> DatasourceDef {
    DatasourceDef {
        name: "events".into(),
        columns: vec![
            ColumnDef { name: "user_id".into(), ty: "UInt64".into(), ..Default::default() },
            ColumnDef { name: "event_type".into(), ty: "String".into(), ..Default::default() },
        ],
        ..Default::default()
    }
}

fn endpoint(name: &str, sql: &str) -> EndpointDef {
    EndpointDef {
        name: name.into(),
        nodes: vec![NodeDef { name: "endpoint".into(), sql: sql.into(), ..Default::default() }],
        ..Default::default()
    }
}

fn project() -> Project {
    Project::new().with_datasource(events()).with_endpoint(endpoint(
        "user_analytics",
        "%\nSELECT event_type, count() AS events FROM events WHERE user_id = {{UInt64(user_id)}} GROUP BY event_type",
    ))
}

/// A `Cli` that sees only the variables given, writing into buffers.
fn cli(project: Project, env: &[(&str, &str)]) -> (Cli, Output) {
    let output = Output::captured();
    let mut cli = Cli::new(project).env_clear().output(output.clone());
    for (k, v) in env {
        cli = cli.env(*k, *v);
    }
    (cli, output)
}

/// A fresh, empty folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("tinybird-cli-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Mock server: records every request (multipart parts decoded) and answers from a per-test function.

#[derive(Debug, Clone, PartialEq)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    text: String,
}

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: String,
    auth: Option<String>,
    parts: Vec<Part>,
}

impl Recorded {
    fn line(&self) -> String {
        if self.query.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            format!("{} {}?{}", self.method, self.path, self.query)
        }
    }
}

type Responder = Arc<dyn Fn(&Recorded) -> (u16, Value) + Send + Sync>;

#[derive(Clone)]
struct MockState {
    log: Arc<Mutex<Vec<Recorded>>>,
    respond: Responder,
}

struct Mock {
    url: String,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Mock {
    fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Recorded::line).collect()
    }
}

async fn record(State(state): State<MockState>, req: Request) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let multipart = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut parts = Vec::new();
    if multipart {
        let mut form = Multipart::from_request(req, &()).await.expect("a multipart body");
        while let Some(field) = form.next_field().await.expect("a multipart field") {
            parts.push(Part {
                name: field.name().unwrap_or_default().to_owned(),
                filename: field.file_name().map(str::to_owned),
                content_type: field.content_type().map(str::to_owned),
                text: field.text().await.expect("a text part"),
            });
        }
    }
    let rec = Recorded { method, path, query, auth, parts };
    let (status, body) = (state.respond)(&rec);
    state.log.lock().unwrap().push(rec);
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

async fn mock(respond: impl Fn(&Recorded) -> (u16, Value) + Send + Sync + 'static) -> Mock {
    let log = Arc::new(Mutex::new(Vec::new()));
    let state = MockState { log: log.clone(), respond: Arc::new(respond) };
    let app = axum::Router::new().fallback(record).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Mock { url: format!("http://{addr}"), log }
}

/// The multipart parts every build and deploy must send: one per datafile, all named `data_project://`.
fn expected_parts(project: &Project) -> Vec<Part> {
    project
        .files()
        .unwrap()
        .into_iter()
        .map(|ProjectFile { path, content: text }| Part {
            name: "data_project://".into(),
            filename: Some(path),
            content_type: Some("text/plain".into()),
            text,
        })
        .collect()
}

fn assert_no_secret(output: &Output, secret: &str) {
    assert!(!output.stdout_text().contains(secret), "stdout shows the token:\n{}", output.stdout_text());
    assert!(!output.stderr_text().contains(secret), "stderr shows the token:\n{}", output.stderr_text());
}

fn expect_err(result: Result<(), CliError>, kind: CliErrorKind, code: u8) -> CliError {
    let err = result.expect_err("the command should fail");
    assert_eq!(err.kind(), kind, "{err}");
    assert_eq!(err.exit_code(), code, "{err}");
    err
}

// ---------------------------------------------------------------------------------------------------------------
// Help, version, usage errors

#[tokio::test]
async fn help_lists_commands_and_exit_codes() {
    for args in [vec![], vec!["--help"], vec!["-h"], vec!["help"]] {
        let (cli, out) = cli(project(), &[]);
        cli.run(args.clone()).await.unwrap();
        let text = out.stdout_text();
        for needle in ["Usage: tinybird <COMMAND>", "generate", "check", "build", "deploy", "Exit codes: 0 success"] {
            assert!(text.contains(needle), "help for {args:?} lacks {needle:?}:\n{text}");
        }
        assert_eq!(out.stderr_text(), "");
    }
}

#[tokio::test]
async fn command_help_lists_its_options() {
    for args in [vec!["deploy", "--help"], vec!["help", "deploy"], vec!["deploy", "--check", "-h"]] {
        let (cli, out) = cli(project(), &[]);
        cli.run(args.clone()).await.unwrap();
        let text = out.stdout_text();
        assert!(text.starts_with("Deploy the project to a Tinybird workspace"), "{text}");
        for opt in ["--check", "--allow-destructive-operations", "--dry-run", "Usage: tinybird deploy [OPTIONS]"] {
            assert!(text.contains(opt), "deploy help lacks {opt}:\n{text}");
        }
    }
    let (cli, out) = cli(project(), &[]);
    cli.bin_name("tb").run(["help", "generate"]).await.unwrap();
    assert!(out.stdout_text().contains("Usage: tb generate [OPTIONS]"));
    assert!(out.stdout_text().contains("-o, --out <DIR>"));
}

#[tokio::test]
async fn version_prints_the_sdk_version() {
    let (c, out) = cli(project(), &[]);
    c.run(["--version"]).await.unwrap();
    assert_eq!(out.stdout_text(), format!("tinybird {}\n", env!("CARGO_PKG_VERSION")));
    let (c, out) = cli(project(), &[]);
    c.bin_name("tb").run(["-V"]).await.unwrap();
    assert_eq!(out.stdout_text(), format!("tb (tinybird {})\n", env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn usage_errors_exit_2_with_a_specific_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["deploi"], "unknown command `deploi`; did you mean `deploy`?"),
        (&["frobnicate"], "unknown command `frobnicate`; the commands are generate, check, build, deploy"),
        (&["deploy", "--chek"], "unknown option `--chek` for `deploy`; did you mean `--check`?"),
        (&["generate", "-x"], "unknown option `-x` for `generate`"),
        (&["generate", "--out"], "`--out` needs a value: --out DIR"),
        (&["generate", "--out", "--json"], "`--out` needs a value: --out DIR"),
        (&["generate", "--out="], "`--out` needs a non-empty value"),
        (&["generate", "--json=yes"], "`--json` takes no value"),
        (&["generate", "--json", "--json"], "`--json` is given more than once"),
        (&["generate", "--json", "--out", "x"], "`--json` prints the datafiles instead of writing them"),
        (&["build", "--local", "--url", "http://x"], "`--local` and `--url` cannot be used together"),
        (&["check", "extra"], "unexpected argument `extra` for `check`"),
        (&["--verbose"], "unknown option `--verbose` before the command"),
        (&["help", "nope"], "unknown command `nope`"),
    ];
    for (args, message) in cases {
        let (c, out) = cli(project(), &[]);
        let err = expect_err(c.run(args.iter().copied()).await, CliErrorKind::Usage, 2);
        assert!(err.to_string().starts_with(message), "{args:?}: got `{err}`, expected `{message}`");
        assert_eq!(out.stdout_text(), "", "{args:?} printed a result");
    }
}

#[tokio::test]
async fn main_inside_a_runtime_fails_without_panicking() {
    let (c, out) = cli(project(), &[]);
    assert_eq!(c.main_with_args(["check"]), ExitCode::from(1));
    assert!(out.stderr_text().contains("started inside a Tokio runtime"), "{}", out.stderr_text());
}

#[test]
fn debug_does_not_show_environment_values() {
    let (c, _) = cli(project(), &[("TINYBIRD_TOKEN", "p.debug-secret")]);
    let shown = format!("{c:?}");
    assert!(shown.contains("TINYBIRD_TOKEN"), "{shown}");
    assert!(!shown.contains("debug-secret"), "{shown}");
}

#[test]
fn main_prints_the_error_and_returns_the_exit_code() {
    let (c, out) = cli(project(), &[]);
    assert_eq!(c.main_with_args(["deploy", "--chek"]), ExitCode::from(2));
    assert_eq!(
        out.stderr_text(),
        "error: unknown option `--chek` for `deploy`; did you mean `--check`?\nRun `tinybird --help` for usage.\n"
    );
    let (c, out) = cli(project(), &[]);
    assert_eq!(c.main_with_args(["deploy"]), ExitCode::from(3));
    assert!(out.stderr_text().starts_with("error: no token: set TINYBIRD_TOKEN"), "{}", out.stderr_text());
    let (c, _) = cli(project(), &[]);
    assert_eq!(c.main_with_args(["check"]), ExitCode::SUCCESS);
}

// ---------------------------------------------------------------------------------------------------------------
// generate

#[tokio::test]
async fn generate_writes_every_datafile_and_reports_strays() {
    let dir = TempDir::new("generate");
    let stray = dir.0.join("pipes/old.pipe");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, "NODE n\nSQL >\n    SELECT 1\n").unwrap();
    let out_dir = dir.0.to_str().unwrap().to_owned();
    let (c, out) = cli(project(), &[]);
    c.run(["generate", "--out", &out_dir]).await.unwrap();

    let files = project().files().unwrap();
    assert_eq!(files.len(), 2);
    let mut expected_stdout = String::new();
    for ProjectFile { path, content: text } in &files {
        let written = std::fs::read_to_string(dir.0.join(path)).unwrap();
        assert_eq!(&written, text, "{path}");
        expected_stdout.push_str(&format!("{}\n", dir.0.join(path).display()));
    }
    assert_eq!(out.stdout_text(), expected_stdout);
    let stderr = out.stderr_text();
    assert!(stderr.starts_with(&format!("Writing 2 datafiles to {out_dir}\n")), "{stderr}");
    assert!(stderr.contains(&format!("warning: {} is not part of the project", stray.display())), "{stderr}");
    assert!(stray.exists(), "a stray datafile must be left alone");
}

#[tokio::test]
async fn generate_json_prints_artifacts_and_writes_nothing() {
    let (c, out) = cli(project(), &[]);
    c.run(["generate", "--json"]).await.unwrap();
    let printed: Value = serde_json::from_str(&out.stdout_text()).unwrap();
    let files = project().files().unwrap();
    assert_eq!(
        printed,
        json!({"artifacts": [
            {"type": "datasource", "name": "events", "relativePath": "datasources/events.datasource", "content": files[0].content},
            {"type": "endpoint", "name": "user_analytics", "relativePath": "endpoints/user_analytics.pipe", "content": files[1].content},
        ]})
    );
    assert_eq!(out.stderr_text(), "");
    assert!(!std::path::Path::new("tinybird").exists(), "--json must not write the default folder");
}

#[tokio::test]
async fn generate_refuses_an_invalid_project() {
    let bad = project().with_datasource(DatasourceDef { name: "user_analytics".into(), ..events() });
    let dir = TempDir::new("generate-invalid");
    let (c, out) = cli(bad, &[]);
    let err = expect_err(c.run(["generate", "--out", dir.0.to_str().unwrap()]).await, CliErrorKind::Failed, 1);
    assert!(err.to_string().contains("two resources are named `user_analytics`"), "{err}");
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0, "nothing may be written");
    assert_eq!(out.stdout_text(), "");
}

// ---------------------------------------------------------------------------------------------------------------
// check

#[tokio::test]
async fn check_passes_a_valid_project() {
    let (c, out) = cli(project(), &[]);
    c.run(["check"]).await.unwrap();
    assert_eq!(out.stdout_text(), "ok: 1 datasource, 1 endpoint, 0 pipes\n");
    assert_eq!(out.stderr_text(), "");
}

#[tokio::test]
async fn check_reports_every_error_at_once() {
    let bad = project()
        .with_endpoint(endpoint("events", "SELECT 1"))
        .with_endpoint(endpoint("bad-name", "SELECT 1"))
        .with_endpoint(endpoint("broken", "%\nSELECT {{ UInt64(x }}"));
    let (c, out) = cli(bad, &[]);
    let err = expect_err(c.run(["check"]).await, CliErrorKind::Failed, 1);
    let text = err.to_string();
    assert!(text.starts_with("the project is invalid (3 problems):"), "{text}");
    assert!(text.contains("two resources are named `events` (datasource and endpoint)"), "{text}");
    assert!(text.contains("invalid endpoint name `bad-name`"), "{text}");
    assert!(text.contains("endpoints/broken.pipe"), "{text}");
    assert_eq!(out.stdout_text(), "");
}

#[tokio::test]
async fn check_warnings_pass_unless_denied() {
    let warned = project().with_endpoint(endpoint("totals", "SELECT count() FROM sessions"));
    let (c, out) = cli(warned.clone(), &[]);
    c.run(["check"]).await.unwrap();
    assert_eq!(out.stdout_text(), "ok: 1 datasource, 2 endpoints, 0 pipes (1 warning)\n");
    assert!(
        out.stderr_text().starts_with("warning: totals: node `endpoint` reads `sessions`"),
        "{}",
        out.stderr_text()
    );
    let (c, _) = cli(warned, &[]);
    let err = expect_err(c.run(["check", "--deny-warnings"]).await, CliErrorKind::Failed, 1);
    assert_eq!(err.to_string(), "1 warning, and --deny-warnings is set");
}

#[tokio::test]
async fn check_against_a_folder_finds_differences() {
    let dir = TempDir::new("check-against");
    let path = dir.0.to_str().unwrap().to_owned();
    project().write_to(&dir.0).unwrap();

    let (c, out) = cli(project(), &[]);
    c.run(["check", "--against", &path]).await.unwrap();
    assert_eq!(out.stdout_text(), format!("ok: 1 datasource, 1 endpoint, 0 pipes; same as the datafiles in {path}\n"));

    // The folder gains a pipe, loses the endpoint and has another column type.
    std::fs::remove_file(dir.0.join("endpoints/user_analytics.pipe")).unwrap();
    let extra = Project::new().with_endpoint(endpoint("legacy", "SELECT 1"));
    extra.write_to(&dir.0).unwrap();
    let mut changed = events();
    changed.columns[1].ty = "LowCardinality(String)".into();
    Project::new().with_datasource(changed).write_to(&dir.0).unwrap();

    let (c, out) = cli(project(), &[]);
    let err = expect_err(c.run(["check", "--against", &path]).await, CliErrorKind::Failed, 1);
    let text = err.to_string();
    assert!(text.starts_with(&format!("the project differs from the datafiles in {path}:")), "{text}");
    let datasource_line = text
        .lines()
        .find(|l| l.contains("datasources/events.datasource"))
        .unwrap_or_else(|| panic!("no line about the datasource in:\n{text}"));
    assert!(datasource_line.contains("differs at line"), "{datasource_line}");
    assert!(datasource_line.contains("LowCardinality(String)"), "{datasource_line}");
    assert!(text.contains("  endpoints/user_analytics.pipe: only in the project"), "{text}");
    assert!(text.contains(&format!("  endpoints/legacy.pipe: only in {path}")), "{text}");
    assert_eq!(out.stdout_text(), "");
}

#[tokio::test]
async fn check_against_a_missing_folder_fails() {
    let (c, _) = cli(project(), &[]);
    let err =
        expect_err(c.run(["check", "--against", "/nonexistent/tinybird-cli-test"]).await, CliErrorKind::Failed, 1);
    assert!(err.to_string().starts_with("cannot read the datafiles in /nonexistent/tinybird-cli-test"), "{err}");
}

// ---------------------------------------------------------------------------------------------------------------
// build

fn build_success() -> Value {
    json!({"result": "success", "build": {
        "id": "build-1",
        "new_datasource_names": ["events"],
        "new_pipe_names": ["user_analytics"],
        "changed_pipe_names": [], "deleted_pipe_names": [],
        "changed_datasource_names": [], "deleted_datasource_names": [],
        "feedback": [{"level": "WARNING", "resource": "events", "message": "no sorting key"}]
    }})
}

#[tokio::test]
async fn build_with_token_sends_one_multipart_request() {
    let server = mock(|r| match r.path.as_str() {
        "/v1/build" => (200, build_success()),
        _ => (404, json!({"error": "not found"})),
    })
    .await;
    let (c, out) = cli(project(), &[("TINYBIRD_TOKEN", "p.secret-token")]);
    c.run(["build", "--url", &server.url]).await.unwrap();

    let reqs = server.requests();
    assert_eq!(server.lines(), ["POST /v1/build?from=rust-sdk"]);
    assert_eq!(reqs[0].auth.as_deref(), Some("Bearer p.secret-token"));
    assert_eq!(reqs[0].parts, expected_parts(&project()));
    assert_eq!(out.stdout_text(), "build: success\n  new datasources: events\n  new pipes: user_analytics\n");
    assert_eq!(
        out.stderr_text(),
        format!("Building 2 datafiles on {}\nwarning: [events] no sorting key\n", server.url)
    );
    assert_no_secret(&out, "secret-token");
}

#[tokio::test]
async fn build_asks_tinybird_local_for_the_token() {
    let server = mock(|r| match r.path.as_str() {
        "/tokens" => {
            (200, json!({"user_token": "u-tok", "admin_token": "a-tok", "workspace_admin_token": "ws-admin-secret"}))
        }
        "/v1/build" => (200, json!({"result": "no_changes"})),
        _ => (404, json!({"error": "not found"})),
    })
    .await;
    let (c, out) = cli(project(), &[]);
    c.run(["build", "--url", &format!("{}/", server.url)]).await.unwrap();

    let reqs = server.requests();
    assert_eq!(server.lines(), ["GET /tokens", "POST /v1/build?from=rust-sdk"]);
    assert_eq!(reqs[0].auth, None, "GET /tokens needs no token");
    assert_eq!(reqs[1].auth.as_deref(), Some("Bearer ws-admin-secret"));
    assert_eq!(reqs[1].parts, expected_parts(&project()));
    assert_eq!(out.stdout_text(), "build: no changes\n");
    assert!(out.stderr_text().starts_with("No TINYBIRD_TOKEN: asking Tinybird Local"), "{}", out.stderr_text());
    assert_no_secret(&out, "ws-admin-secret");
}

#[tokio::test]
async fn build_failure_lists_the_server_errors_and_exits_1() {
    let server = mock(|_| {
        (200, json!({"result": "failed", "errors": [{"filename": "events.datasource", "error": "Unknown type Strin"}]}))
    })
    .await;
    let (c, out) = cli(project(), &[("TINYBIRD_TOKEN", "tok")]);
    let err = expect_err(c.run(["build", "--url", &server.url]).await, CliErrorKind::Failed, 1);
    assert!(err.to_string().contains("[events.datasource] Unknown type Strin"), "{err}");
    let client_error = err.client_error().expect("the client error is kept");
    assert_eq!(client_error.file_errors().len(), 1);
    assert_eq!(out.stdout_text(), "");
}

#[tokio::test]
async fn build_with_a_rejected_token_exits_3() {
    let server = mock(|_| (401, json!({"error": "invalid authentication token"}))).await;
    let (c, out) = cli(project(), &[("TINYBIRD_TOKEN", "p.wrong-secret")]);
    let err = expect_err(c.run(["build", "--url", &server.url]).await, CliErrorKind::Config, 3);
    assert!(err.to_string().contains("invalid authentication token"), "{err}");
    assert!(!err.to_string().contains("wrong-secret"), "{err}");
    assert_no_secret(&out, "wrong-secret");
}

#[tokio::test]
async fn build_without_token_or_local_server_exits_3() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (c, _) = cli(project(), &[]);
    let err = expect_err(c.run(["build", "--url", &format!("http://127.0.0.1:{port}")]).await, CliErrorKind::Config, 3);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("no TINYBIRD_TOKEN, and http://127.0.0.1:{port}/tokens did not answer")),
        "{text}"
    );
    assert!(text.ends_with("start Tinybird Local (or `tinybird-local`), or set TINYBIRD_TOKEN"), "{text}");
}

#[tokio::test]
async fn build_tokens_without_admin_token_exits_3() {
    let server = mock(|_| (200, json!({"user_token": "u"}))).await;
    let (c, _) = cli(project(), &[]);
    let err = expect_err(c.run(["build", "--url", &server.url]).await, CliErrorKind::Config, 3);
    assert!(err.to_string().contains("/tokens has no `workspace_admin_token`"), "{err}");
    assert_eq!(server.lines(), ["GET /tokens"]);
}

#[tokio::test]
async fn build_dry_run_sends_nothing() {
    let server = mock(|_| (500, json!({}))).await;
    let (c, out) = cli(project(), &[]);
    c.run(["build", "--url", &server.url, "--dry-run"]).await.unwrap();
    assert!(server.requests().is_empty());
    let files = project().files().unwrap();
    let expected: String = files.iter().map(|f| format!("{} ({} bytes)\n", f.path, f.content.len())).collect();
    assert_eq!(out.stdout_text(), expected);
    assert_eq!(out.stderr_text(), format!("Dry run: would build 2 datafiles on {}\n", server.url));
}

#[tokio::test]
async fn build_with_an_invalid_url_exits_3() {
    let (c, _) = cli(project(), &[("TINYBIRD_TOKEN", "tok")]);
    let err = expect_err(c.run(["build", "--url", "http://"]).await, CliErrorKind::Config, 3);
    assert!(err.to_string().starts_with("--url is not a valid URL"), "{err}");
}

// ---------------------------------------------------------------------------------------------------------------
// deploy

fn deploy_flow(r: &Recorded) -> (u16, Value) {
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/v1/deployments") => (
            200,
            json!({"deployments": [
                {"id": "7", "status": "live", "live": true},
                {"id": "8", "status": "failed", "live": false},
                {"id": "6", "status": "deleted", "live": false}
            ]}),
        ),
        ("DELETE", _) => (200, json!({"result": "success"})),
        ("POST", "/v1/deploy") => (
            200,
            json!({"result": "success", "deployment": {"id": "9", "status": "calculating",
                "feedback": [{"level": "INFO", "resource": null, "message": "1 new datasource"}]}}),
        ),
        ("GET", "/v1/deployments/9") => {
            (200, json!({"result": "success", "deployment": {"id": "9", "status": "data_ready"}}))
        }
        ("POST", "/v1/deployments/9/set-live") => (200, json!({"result": "success"})),
        _ => (404, json!({"error": "unexpected request"})),
    }
}

#[tokio::test]
async fn deploy_runs_the_whole_flow() {
    let server = mock(deploy_flow).await;
    let (c, out) = cli(project(), &[("TINYBIRD_URL", &server.url), ("TINYBIRD_TOKEN", "p.deploy-secret")]);
    c.run(["deploy"]).await.unwrap();

    assert_eq!(
        server.lines(),
        [
            "GET /v1/deployments?from=rust-sdk",
            "DELETE /v1/deployments/8?from=rust-sdk",
            "POST /v1/deploy?from=rust-sdk",
            "GET /v1/deployments/9?from=rust-sdk",
            "POST /v1/deployments/9/set-live?from=rust-sdk",
            "DELETE /v1/deployments/7?from=rust-sdk",
        ]
    );
    let reqs = server.requests();
    assert!(reqs.iter().all(|r| r.auth.as_deref() == Some("Bearer p.deploy-secret")));
    assert_eq!(reqs[2].parts, expected_parts(&project()));
    assert!(reqs.iter().enumerate().all(|(i, r)| i == 2 || r.parts.is_empty()));
    assert_eq!(out.stdout_text(), "deploy: deployment 9 is live (replaced deployment 7)\n");
    let url = &server.url;
    assert_eq!(
        out.stderr_text(),
        format!(
            "Discarding 1 stale deployment\nUploading 2 datafiles to {url}\nDeployment 9 created\n\
             Promoting deployment 9\nRemoving the previous deployment 7\nDeployment 9 is live\ninfo: 1 new datasource\n"
        )
    );
    assert_no_secret(&out, "deploy-secret");
}

#[tokio::test]
async fn deploy_check_only_validates() {
    let server = mock(|r| match r.path.as_str() {
        "/v1/deploy" => (
            200,
            json!({"result": "success", "deployment": {"id": "3", "status": "calculating",
                "feedback": [{"level": "WARNING", "resource": "events", "message": "column dropped"}]}}),
        ),
        _ => (404, json!({"error": "unexpected request"})),
    })
    .await;
    let (c, out) = cli(project(), &[("TINYBIRD_URL", &server.url), ("TINYBIRD_TOKEN", "tok")]);
    c.run(["deploy", "--check", "--allow-destructive-operations"]).await.unwrap();
    assert_eq!(server.lines(), ["POST /v1/deploy?check=true&allow_destructive_operations=true&from=rust-sdk"]);
    assert_eq!(server.requests()[0].parts, expected_parts(&project()));
    assert_eq!(out.stdout_text(), "deploy check: ok (nothing was changed)\n");
    assert!(out.stderr_text().contains("warning: [events] column dropped\n"), "{}", out.stderr_text());
}

#[tokio::test]
async fn deploy_allow_destructive_goes_in_the_query() {
    let server = mock(|r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/v1/deployments") => (200, json!({"deployments": []})),
        ("POST", "/v1/deploy") => (200, json!({"result": "no_changes"})),
        _ => (404, json!({"error": "unexpected request"})),
    })
    .await;
    let (c, out) = cli(project(), &[("TINYBIRD_HOST", &server.url), ("TINYBIRD_TOKEN", "tok")]);
    c.run(["deploy", "--allow-destructive-operations"]).await.unwrap();
    assert_eq!(
        server.lines(),
        ["GET /v1/deployments?from=rust-sdk", "POST /v1/deploy?allow_destructive_operations=true&from=rust-sdk"]
    );
    assert_eq!(out.stdout_text(), "deploy: no changes (the workspace already runs this project)\n");
}

#[tokio::test]
async fn deploy_refused_by_the_server_exits_1() {
    let server = mock(|r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/v1/deployments") => (200, json!({"deployments": [{"id": "1", "status": "live", "live": true}]})),
        ("POST", "/v1/deploy") => (
            200,
            json!({"result": "failed", "deployment": {"id": "2", "status": "failed", "feedback": [
                {"level": "ERROR", "resource": "user_analytics", "message": "Unknown column `user`"}
            ]}}),
        ),
        _ => (404, json!({"error": "unexpected request"})),
    })
    .await;
    let (c, out) = cli(project(), &[("TINYBIRD_URL", &server.url), ("TINYBIRD_TOKEN", "tok")]);
    let err = expect_err(c.run(["deploy"]).await, CliErrorKind::Failed, 1);
    assert!(err.to_string().contains("[user_analytics] Unknown column `user`"), "{err}");
    assert_eq!(
        server.lines(),
        ["GET /v1/deployments?from=rust-sdk", "POST /v1/deploy?from=rust-sdk"],
        "nothing is promoted or deleted after a refusal"
    );
    assert_eq!(out.stdout_text(), "");
}

#[tokio::test]
async fn deploy_without_token_exits_3_and_sends_nothing() {
    let server = mock(|_| (500, json!({}))).await;
    let (c, out) = cli(project(), &[("TINYBIRD_URL", &server.url)]);
    let err = expect_err(c.run(["deploy"]).await, CliErrorKind::Config, 3);
    assert!(err.to_string().starts_with("no token: set TINYBIRD_TOKEN"), "{err}");
    assert!(server.requests().is_empty());
    assert_eq!(out.stdout_text(), "");
}

#[tokio::test]
async fn deploy_dry_run_needs_no_token_and_hides_url_credentials() {
    let server = mock(|_| (500, json!({}))).await;
    let with_credentials = server.url.replace("http://", "http://user:url-secret@");
    let (c, out) = cli(project(), &[("TINYBIRD_URL", &with_credentials)]);
    c.run(["deploy", "--dry-run"]).await.unwrap();
    assert!(server.requests().is_empty());
    assert_eq!(out.stderr_text(), format!("Dry run: would deploy 2 datafiles to {}\n", server.url));
    assert_eq!(out.stdout_text().lines().count(), 2);
    assert_no_secret(&out, "url-secret");
}

#[tokio::test]
async fn deploy_refuses_an_invalid_project_before_any_request() {
    let server = mock(|_| (500, json!({}))).await;
    let bad = project().with_endpoint(endpoint("broken", "%\nSELECT {% if %}"));
    let (c, _) = cli(bad, &[("TINYBIRD_URL", &server.url), ("TINYBIRD_TOKEN", "tok")]);
    let err = expect_err(c.run(["deploy"]).await, CliErrorKind::Failed, 1);
    assert!(err.to_string().starts_with("the project is invalid:"), "{err}");
    assert!(server.requests().is_empty());
}

/// `deploy --no-auto` stages, `promote` makes the staged deployment live, `discard` drops one, `deploy --no-wait`
/// leaves the promotion to the server: against a real (local) server, each checked by what is live after.
#[tokio::test]
async fn staged_deploy_promote_and_discard_against_tinybird_local() {
    let server = tinybird_local::LocalServer::start(tinybird_local::Resources::new()).await.unwrap();
    let env = [("TINYBIRD_URL", server.url()), ("TINYBIRD_TOKEN", server.admin_token())];
    let live = || async {
        let r: Value = reqwest::Client::new()
            .get(format!("{}/v1/deployments", server.url()))
            .bearer_auth(server.admin_token())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let list = r["deployments"].as_array().unwrap().clone();
        let live: Vec<String> =
            list.iter().filter(|d| d["live"] == true).map(|d| d["id"].as_str().unwrap().into()).collect();
        (live, list.len())
    };
    let (c, out) = cli(project(), &env);
    c.run(["deploy", "--no-auto"]).await.unwrap();
    assert_eq!(out.stdout_text(), "deploy: deployment 2 is staged (not live): promote --id 2, or discard --id 2\n");
    assert_eq!(live().await, (vec!["1".to_owned()], 2));
    let (c, out) = cli(project(), &env);
    c.run(["promote"]).await.unwrap();
    assert_eq!(out.stdout_text(), "promote: deployment 2 is live (replaced deployment 1)\n");
    assert_eq!(live().await, (vec!["2".to_owned()], 1));
    let (c, _) = cli(project(), &env);
    let err = c.run(["promote"]).await.expect_err("nothing staged");
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("no staged deployment"), "{err}");

    let changed = project().with_endpoint(endpoint("all_events", "SELECT * FROM events"));
    let (c, _) = cli(changed.clone(), &env);
    c.run(["deploy", "--no-auto"]).await.unwrap();
    let (c, out) = cli(project(), &env);
    c.run(["discard"]).await.unwrap();
    assert_eq!(out.stdout_text(), "discard: deployment 3 discarded\n");
    assert_eq!(live().await, (vec!["2".to_owned()], 1));
    let (c, _) = cli(project(), &env);
    let err = c.run(["discard", "--id", "2"]).await.expect_err("the live deployment stays");
    assert!(err.to_string().contains("is live and cannot be discarded"), "{err}");

    let (c, out) = cli(changed, &env);
    c.run(["deploy", "--no-wait"]).await.unwrap();
    assert_eq!(out.stdout_text(), "deploy: deployment 4 submitted; the server promotes it when it is ready\n");
    assert_eq!(live().await, (vec!["4".to_owned()], 1));
}
