//! Red team: an attacker's view of tinybird-local's row-level security, its SQL surface, its limits and its reach
//! into the network and the file system.
//!
//! The fixture (`tests/fixtures/redteam/`) has three datasources: `events` (tenant, secret, n), `orders` (tenant,
//! secret) and `audit` (readable by the admin token only), plus pipes over them. Every row a restricted caller must
//! not see carries a marker in its `secret`:
//!
//! | marker | rows |
//! |---|---|
//! | `LEAK_EV2` | tenant 2 of `events` |
//! | `LEAK_OR2` | tenant 2 of `orders` |
//! | `LEAK_AUDIT` | every row of `audit` |
//! | `LEAK_QUAR` | the quarantined rows (`events_quarantine`, `orders_quarantine`) |
//! | `T1EV_` / `T1OR_` | tenant 1 of `events` / `orders` (forbidden to tokens with no right on that datasource) |
//!
//! The rule every attack checks ([`check_no_leak`]): a request made with a restricted token never returns a body
//! containing a marker it is not entitled to, and answers either 200 (with the entitled rows only) or a 4xx with a
//! JSON `{"error": …}`. Each attack class starts with CONTROL requests proving the marked rows exist (the admin token
//! sees them) and that the restricted token works at all, so no test passes because data or a token is missing.
//!
//! Attacks are data tables of (description, request) looped over; a test collects every failing attack and fails
//! once, naming them all. Data-leak attacks run on the in-process [`LocalServer`]; crash and stall attacks run
//! against the `tinybird-local` binary as a separate process, so a stack overflow kills that process, not the tests.
//!
//! Running: `cargo test -p tinybird-local --test it red_team::`. `RED_TEAM_VERBOSE=1` prints every attack with its
//! verdict; `TINYBIRD_LOCAL_BIN=/path/to/tinybird-local` attacks another build of the binary (the crash and stall
//! tests; the in-process tests always use the library they are compiled with).
//!
//! Server options these tests assume (a test fails, naming the option, when the binary refuses it):
//! - `tinybird-local --query-timeout-secs N`: queries running longer than N seconds end with a 4xx JSON error.
//! - `tinybird-local --allow-private-urls` and `--max-body-mb N`: the binary equivalents of
//!   `LocalServer::builder().allow_private_urls(true).max_body_bytes(n)`. URL imports (`url=`) must refuse loopback,
//!   private and link-local addresses unless private URLs are allowed, and cut a download off at the body limit.

use crate::common::{client, in_one_hour};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tinybird_local::{LocalServer, Resources};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The binary under test: `TINYBIRD_LOCAL_BIN` when set (to attack another build, e.g. a release build or a
/// copy kept aside while the shared target directory is rebuilt), else the one Cargo built for these tests.
fn bin() -> String {
    std::env::var("TINYBIRD_LOCAL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_tinybird-local").to_string())
}

// ---------------------------------------------------------------------------------------------------------------
// Markers and who may see them
// ---------------------------------------------------------------------------------------------------------------

const T1EV: &str = "T1EV_";
const EV2: &str = "LEAK_EV2";
const T1OR: &str = "T1OR_";
const OR2: &str = "LEAK_OR2";
const AUDIT: &str = "LEAK_AUDIT";
const QUAR: &str = "LEAK_QUAR";
/// The first line of `/etc/passwd`: a table function or an import must never return it.
const PASSWD: &str = "root:x:0:0";

/// A JWT with DATASOURCES:READ on `events` filtered to tenant 1, or PIPES:READ on `per_tenant` fixed to tenant 1.
const NOT_FOR_TENANT1_EVENTS: &[&str] = &[EV2, T1OR, OR2, AUDIT, QUAR];
/// A JWT that may only append.
const NOT_FOR_APPEND_ONLY: &[&str] = &[T1EV, EV2, T1OR, OR2, AUDIT, QUAR];
/// A JWT with tenant 1 of both `events` and `orders` (through pipes or filters).
const NOT_FOR_TENANT1: &[&str] = &[EV2, OR2, AUDIT, QUAR];

/// Rows per tenant in `events` and `orders`.
const ROWS_PER_TENANT: usize = 5;

// ---------------------------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------------------------

fn redteam_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redteam")
}

fn redteam_resources() -> Resources {
    Resources::from_dir(redteam_dir()).expect("the red-team fixture project parses")
}

/// NDJSON per datasource: (name, body, successful rows, quarantined rows). Tenant 1 has n = 0..5, tenant 2 n = 100..105.
fn seed_batches() -> Vec<(&'static str, String, u64, u64)> {
    let mut events = Vec::new();
    let mut orders = Vec::new();
    let mut audit = Vec::new();
    for i in 0..ROWS_PER_TENANT {
        events.push(json!({"tenant": 1, "secret": format!("{T1EV}{i}"), "n": i}).to_string());
        events.push(json!({"tenant": 2, "secret": format!("{EV2}_{i}"), "n": 100 + i}).to_string());
        orders.push(json!({"tenant": 1, "secret": format!("{T1OR}{i}")}).to_string());
        orders.push(json!({"tenant": 2, "secret": format!("{OR2}_{i}")}).to_string());
    }
    for i in 0..2 {
        audit.push(json!({"tenant": 1, "secret": format!("{AUDIT}_t1_{i}")}).to_string());
        audit.push(json!({"tenant": 2, "secret": format!("{AUDIT}_t2_{i}")}).to_string());
    }
    // A string where a UInt64 belongs: quarantined, so `<ds>_quarantine` exists and holds marker text.
    events.push(
        json!({"tenant": format!("{QUAR}_ev_tenant"), "secret": format!("{QUAR}_ev_secret"), "n": 7}).to_string(),
    );
    orders.push(json!({"tenant": format!("{QUAR}_or_tenant"), "secret": format!("{QUAR}_or_secret")}).to_string());
    let n = (ROWS_PER_TENANT * 2) as u64;
    vec![("events", events.join("\n"), n, 1), ("orders", orders.join("\n"), n, 1), ("audit", audit.join("\n"), 4, 0)]
}

/// Ingests the marked rows with the admin token and checks the counts.
async fn seed(url: &str, admin: &str) {
    for (ds, body, ok, bad) in seed_batches() {
        let r = client()
            .post(format!("{url}/v0/events?name={ds}&wait=true"))
            .bearer_auth(admin)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "seeding {ds}: {body}");
        assert_eq!(body, json!({"successful_rows": ok, "quarantined_rows": bad}), "seeding {ds}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// JWTs
// ---------------------------------------------------------------------------------------------------------------

/// HS256 with the admin token as the key, as Tinybird signs JWTs.
fn sign(admin: &str, payload: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(admin.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), payload, &key).unwrap()
}

fn claims(workspace: &str, scopes: Value) -> Value {
    json!({"workspace_id": workspace, "name": "red_team", "exp": in_one_hour(), "scopes": scopes})
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// JWTs a server must refuse, each carrying every scope an attacker could want: (name, token).
fn bad_jwts(admin: &str, workspace: &str) -> Vec<(&'static str, String)> {
    let scopes = json!([
        {"type": "PIPES:READ", "resource": "per_tenant"},
        {"type": "PIPES:READ", "resource": "other_pipe"},
        {"type": "DATASOURCES:READ", "resource": "events"},
        {"type": "DATASOURCES:READ", "resource": "audit"},
        {"type": "DATASOURCES:APPEND", "resource": "events"}
    ]);
    let good = claims(workspace, scopes.clone());
    let mut expired = good.clone();
    expired["exp"] = json!(1_000_000);
    let mut just_expired = good.clone();
    just_expired["exp"] = json!(chrono::Utc::now().timestamp() - 5);
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut other_ws = good.clone();
    other_ws["workspace_id"] = json!("00000000-0000-0000-0000-000000000000");
    let mut no_ws = good.clone();
    no_ws.as_object_mut().unwrap().remove("workspace_id");
    let forged = {
        let key = jsonwebtoken::EncodingKey::from_secret(b"not the admin token");
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &good, &key).unwrap()
    };
    let empty_key = {
        let key = jsonwebtoken::EncodingKey::from_secret(b"");
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &good, &key).unwrap()
    };
    let alg_none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(good.to_string()));
    let alg_none_upper = format!("{}.{}.", b64(r#"{"alg":"NONE","typ":"JWT"}"#), b64(good.to_string()));
    let hs512 = {
        let key = jsonwebtoken::EncodingKey::from_secret(admin.as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512), &good, &key).unwrap()
    };
    let tampered = {
        // A valid signature over a harmless payload, with the payload swapped for one granting `audit`.
        let harmless = sign(
            admin,
            &claims(
                workspace,
                json!([{"type": "PIPES:READ", "resource": "per_tenant", "fixed_params": {"tenant": 1}}]),
            ),
        );
        let mut parts: Vec<String> = harmless.split('.').map(str::to_string).collect();
        parts[1] = b64(good.to_string());
        parts.join(".")
    };
    let signature_stripped = {
        let t = sign(admin, &good);
        let (head, _) = t.rsplit_once('.').unwrap();
        format!("{head}.")
    };
    vec![
        ("expired", sign(admin, &expired)),
        ("expired 5 s ago", sign(admin, &just_expired)),
        ("missing exp", sign(admin, &no_exp)),
        ("other workspace", sign(admin, &other_ws)),
        ("missing workspace_id", sign(admin, &no_ws)),
        ("forged key", forged),
        ("empty key", empty_key),
        ("alg none", alg_none),
        ("alg NONE", alg_none_upper),
        ("HS512", hs512),
        ("tampered payload", tampered),
        ("signature stripped", signature_stripped),
        ("garbage", "eyJhbGciOi.garbage.x".to_string()),
    ]
}

// ---------------------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Payload {
    None,
    Text(String),
    Form(Vec<(String, String)>),
    Json(Value),
    /// Text sent as `application/json` (for JSON `serde_json::Value` cannot hold).
    RawJson(String),
}

/// One HTTP request, sent with a token in the `Authorization` header.
#[derive(Clone, Debug)]
struct Req {
    post: bool,
    path: String,
    query: Vec<(String, String)>,
    payload: Payload,
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

impl Req {
    fn get(path: &str, query: &[(&str, &str)]) -> Req {
        Req { post: false, path: path.into(), query: pairs(query), payload: Payload::None }
    }
    fn text(path: &str, query: &[(&str, &str)], body: &str) -> Req {
        Req { post: true, path: path.into(), query: pairs(query), payload: Payload::Text(body.into()) }
    }
    fn form(path: &str, query: &[(&str, &str)], form: &[(&str, &str)]) -> Req {
        Req { post: true, path: path.into(), query: pairs(query), payload: Payload::Form(pairs(form)) }
    }
    fn json(path: &str, query: &[(&str, &str)], body: Value) -> Req {
        Req { post: true, path: path.into(), query: pairs(query), payload: Payload::Json(body) }
    }
}

struct Answer {
    status: u16,
    body: String,
}

/// Sends a request; `Err` when the connection is dropped or the answer does not come within `timeout`.
async fn send(base: &str, token: Option<&str>, req: &Req, timeout: Duration) -> Result<Answer, String> {
    let url = format!("{base}{}", req.path);
    let c = client();
    let mut b = if req.post { c.post(&url) } else { c.get(&url) };
    if !req.query.is_empty() {
        b = b.query(&req.query);
    }
    if let Some(t) = token {
        b = b.bearer_auth(t);
    }
    b = match &req.payload {
        Payload::None => b,
        Payload::Text(t) => b.header("content-type", "text/plain").body(t.clone()),
        Payload::Form(f) => b.form(f),
        Payload::Json(j) => b.json(j),
        Payload::RawJson(t) => b.header("content-type", "application/json").body(t.clone()),
    };
    let r = b.timeout(timeout).send().await.map_err(|e| describe_reqwest(&e))?;
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| describe_reqwest(&e))?;
    Ok(Answer { status, body })
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(source) = root.source() {
        root = source;
    }
    if e.is_timeout() {
        "STALL: no answer in time".to_string()
    } else if e.is_connect() {
        format!("DROPPED: cannot connect ({root})")
    } else if e.is_builder() {
        format!("the test client could not build the request ({root})")
    } else {
        format!("DROPPED connection / no answer ({root})")
    }
}

fn excerpt(body: &str) -> String {
    let flat = body.replace(['\n', '\t'], " ");
    let mut cut: String = flat.chars().take(260).collect();
    if cut.len() < flat.len() {
        cut.push('…');
    }
    cut
}

fn json_error(body: &str) -> bool {
    serde_json::from_str::<Value>(body).is_ok_and(|v| v["error"].is_string())
}

/// The rule: no forbidden marker in the body, and either 200 or a 4xx whose body is a JSON `{"error": …}`.
fn check_no_leak(status: u16, body: &str, forbidden: &[&str]) -> Result<(), String> {
    if let Some(marker) = forbidden.iter().find(|m| body.contains(*m)) {
        return Err(format!("LEAK of {marker}: {status} {}", excerpt(body)));
    }
    match status {
        200 => Ok(()),
        400..=499 if json_error(body) => Ok(()),
        400..=499 => Err(format!("{status} without a JSON error body: {}", excerpt(body))),
        _ => Err(format!("status {status} (only 200 or a 4xx is acceptable): {}", excerpt(body))),
    }
}

/// [`check_no_leak`] as an assertion.
#[track_caller]
fn assert_no_leak(status: u16, body: &str, forbidden: &[&str]) {
    if let Err(e) = check_no_leak(status, body, forbidden) {
        panic!("{e}");
    }
}

/// A 4xx with a JSON error, and no forbidden marker.
fn check_refused(status: u16, body: &str, forbidden: &[&str]) -> Result<(), String> {
    check_no_leak(status, body, forbidden)?;
    if status == 200 {
        return Err(format!("answered 200 where a 4xx refusal is required: {}", excerpt(body)));
    }
    Ok(())
}

/// One attack: a description, the token it is made with, what that token must never see, and the request.
struct Attack {
    name: String,
    token: String,
    forbidden: &'static [&'static str],
    req: Req,
    /// A 4xx is required (a write, a refused resource); otherwise 200 with entitled rows is fine too.
    must_refuse: bool,
}

fn attack(name: impl Into<String>, token: &str, forbidden: &'static [&'static str], req: Req) -> Attack {
    Attack { name: name.into(), token: token.to_string(), forbidden, req, must_refuse: false }
}

fn refused(name: impl Into<String>, token: &str, forbidden: &'static [&'static str], req: Req) -> Attack {
    Attack { name: name.into(), token: token.to_string(), forbidden, req, must_refuse: true }
}

/// Runs attacks in order; returns the failures, each naming its attack.
async fn run_attacks(base: &str, attacks: &[Attack]) -> Vec<String> {
    let mut failures = Vec::new();
    for a in attacks {
        let (status, verdict) = match send(base, Some(&a.token), &a.req, Duration::from_secs(20)).await {
            Err(e) => (0, Err(e)),
            Ok(r) if a.must_refuse => (r.status, check_refused(r.status, &r.body, a.forbidden)),
            Ok(r) => (r.status, check_no_leak(r.status, &r.body, a.forbidden)),
        };
        if verbose() {
            eprintln!(
                "[red_team] {} -> {status} {}",
                a.name.replace('\n', "\\n"),
                verdict.as_ref().err().cloned().unwrap_or_else(|| "ok".into())
            );
        }
        if let Err(e) = verdict {
            failures.push(format!("[{}] {e}", a.name.replace('\n', "\\n")));
        }
    }
    failures
}

/// `RED_TEAM_VERBOSE=1` prints every attack and its verdict.
fn verbose() -> bool {
    std::env::var_os("RED_TEAM_VERBOSE").is_some()
}

/// Fails the test with every failure, after printing how many attacks ran.
#[track_caller]
fn report(test: &str, total: usize, failures: &[String]) {
    eprintln!("[red_team] {test}: {total} attack requests, {} failed", failures.len());
    if failures.len() > 60 {
        // The panic message keeps the first ones; the whole list goes to stderr.
        for f in failures {
            eprintln!("{f}");
        }
    }
    let shown: Vec<&str> = failures.iter().take(60).map(String::as_str).collect();
    let more = if failures.len() > shown.len() {
        format!("\n… and {} more (listed above)", failures.len() - shown.len())
    } else {
        String::new()
    };
    assert!(failures.is_empty(), "{test}: {} of {total} attacks failed:\n{}{more}", failures.len(), shown.join("\n"));
}

/// `/v0/sql` with `sql` as `?q=` (GET), as the raw POST body, as a form field and as a JSON field.
fn via_sql(sql: &str) -> Vec<(&'static str, Req)> {
    vec![
        ("/v0/sql GET ?q=", Req::get("/v0/sql", &[("q", sql)])),
        ("/v0/sql POST body", Req::text("/v0/sql", &[], sql)),
        ("/v0/sql POST form", Req::form("/v0/sql", &[], &[("q", sql)])),
        ("/v0/sql POST json", Req::json("/v0/sql", &[], json!({"q": sql}))),
    ]
}

/// `sql` as the `q` of a pipe endpoint (which may read `_`, the pipe's result), and as `/v0/sql?pipeline=`.
fn via_pipe_q(pipe: &str, sql: &str) -> Vec<(&'static str, Req)> {
    let path = format!("/v0/pipes/{pipe}.json");
    vec![
        ("pipe GET ?q=", Req::get(&path, &[("q", sql)])),
        ("pipe POST form q", Req::form(&path, &[], &[("q", sql)])),
        ("pipe POST json q", Req::json(&path, &[], json!({"q": sql}))),
        ("/v0/sql?pipeline=", Req::get("/v0/sql", &[("pipeline", pipe), ("q", sql)])),
    ]
}

/// One entry point out of `entries`, rotating with `i` so every entry point is used across a table.
fn rotate(entries: Vec<(&'static str, Req)>, i: usize) -> (&'static str, Req) {
    let n = entries.len();
    entries.into_iter().nth(i % n).unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// The in-process server, seeded, with the tokens the attacks use
// ---------------------------------------------------------------------------------------------------------------

struct Ctx {
    server: LocalServer,
}

impl Ctx {
    async fn new() -> Ctx {
        let server = LocalServer::start(redteam_resources()).await.expect("server starts");
        seed(server.url(), server.admin_token()).await;
        Ctx { server }
    }

    fn url(&self) -> &str {
        self.server.url()
    }

    fn admin(&self) -> &str {
        self.server.admin_token()
    }

    fn jwt(&self, scopes: Value) -> String {
        sign(self.admin(), &claims(self.server.workspace_id(), scopes))
    }

    /// DATASOURCES:APPEND on `events`, nothing else.
    fn append_only(&self) -> String {
        self.jwt(json!([{"type": "DATASOURCES:APPEND", "resource": "events"}]))
    }

    /// DATASOURCES:READ on `events` filtered to tenant 1.
    fn filtered(&self) -> String {
        self.jwt(json!([{"type": "DATASOURCES:READ", "resource": "events", "filter": "tenant = 1"}]))
    }

    /// DATASOURCES:READ on `events` and `orders`, both filtered to tenant 1.
    fn filtered_both(&self) -> String {
        self.jwt(json!([
            {"type": "DATASOURCES:READ", "resource": "events", "filter": "tenant = 1"},
            {"type": "DATASOURCES:READ", "resource": "orders", "filter": "tenant = 1"}
        ]))
    }

    /// PIPES:READ on `per_tenant` with tenant fixed to 1.
    fn pipe_t1(&self) -> String {
        self.jwt(json!([{"type": "PIPES:READ", "resource": "per_tenant", "fixed_params": {"tenant": 1}}]))
    }

    /// PIPES:READ on `per_tenant` (tenant = 1) plus a filtered DATASOURCES:READ on `orders` (filters are then applied
    /// by rewriting the SQL, which is where string literals get re-serialised). It may see tenant 1 of both.
    fn pipe_t1_with_filter(&self) -> String {
        self.jwt(json!([
            {"type": "PIPES:READ", "resource": "per_tenant", "fixed_params": {"tenant": 1}},
            {"type": "DATASOURCES:READ", "resource": "orders", "filter": "tenant = 1"}
        ]))
    }

    /// PIPES:READ on `per_tenant` (tenant = 1) and `other_pipe` (org = 1).
    fn two_pipes(&self) -> String {
        self.jwt(json!([
            {"type": "PIPES:READ", "resource": "per_tenant", "fixed_params": {"tenant": 1}},
            {"type": "PIPES:READ", "resource": "other_pipe", "fixed_params": {"org": 1}}
        ]))
    }

    async fn get(&self, token: &str, req: Req) -> Answer {
        send(self.url(), Some(token), &req, Duration::from_secs(20)).await.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn admin_sql(&self, sql: &str) -> Answer {
        self.get(self.admin(), Req::get("/v0/sql", &[("q", sql)])).await
    }

    /// CONTROL: the admin token sees every marker, so an attack cannot pass because rows are missing.
    async fn control_markers_exist(&self) {
        for (sql, markers) in [
            ("SELECT secret FROM events FORMAT JSON", &[T1EV, EV2][..]),
            ("SELECT secret FROM orders FORMAT JSON", &[T1OR, OR2][..]),
            ("SELECT secret FROM audit FORMAT JSON", &[AUDIT][..]),
            ("SELECT secret FROM events_quarantine FORMAT JSON", &[QUAR][..]),
            ("SELECT secret FROM orders_quarantine FORMAT JSON", &[QUAR][..]),
        ] {
            let r = self.admin_sql(sql).await;
            assert_eq!(r.status, 200, "CONTROL {sql}: {}", r.body);
            for m in markers {
                assert!(r.body.contains(m), "CONTROL: the admin does not see {m} with {sql}: {}", r.body);
            }
        }
    }

    /// CONTROL: each restricted token works, and sees its own rows only.
    async fn control_tokens_work(&self) {
        // What is checked, the token, the request, the rows it must see, the rows it must not.
        type Check<'a> = (&'a str, String, Req, &'a [&'a str], &'a [&'a str]);
        let checks: Vec<Check<'_>> = vec![
            (
                "filtered JWT",
                self.filtered(),
                Req::get("/v0/sql", &[("q", "SELECT secret FROM events FORMAT JSON")]),
                &[T1EV],
                NOT_FOR_TENANT1_EVENTS,
            ),
            (
                "filtered_both JWT",
                self.filtered_both(),
                Req::get("/v0/sql", &[("q", "SELECT secret FROM orders FORMAT JSON")]),
                &[T1OR],
                NOT_FOR_TENANT1,
            ),
            (
                "pipe_t1 JWT",
                self.pipe_t1(),
                Req::get("/v0/pipes/per_tenant.json", &[("tenant", "2")]),
                &[T1EV],
                NOT_FOR_TENANT1_EVENTS,
            ),
            (
                "pipe_t1 JWT q over _",
                self.pipe_t1(),
                Req::get("/v0/pipes/per_tenant.json", &[("q", "SELECT secret FROM _")]),
                &[T1EV],
                NOT_FOR_TENANT1_EVENTS,
            ),
            (
                "pipe_t1_with_filter JWT",
                self.pipe_t1_with_filter(),
                Req::get("/v0/pipes/per_tenant.json", &[]),
                &[T1EV],
                NOT_FOR_TENANT1_EVENTS,
            ),
            (
                "pipe_t1_with_filter JWT reads orders",
                self.pipe_t1_with_filter(),
                Req::get("/v0/sql", &[("q", "SELECT secret FROM orders")]),
                &[T1OR],
                NOT_FOR_TENANT1,
            ),
            (
                "two_pipes JWT",
                self.two_pipes(),
                Req::get("/v0/pipes/other_pipe.json", &[("org", "2")]),
                &[T1OR],
                NOT_FOR_TENANT1,
            ),
        ];
        for (what, token, req, must_see, must_not) in checks {
            let r = self.get(&token, req).await;
            assert_eq!(r.status, 200, "CONTROL {what}: {}", r.body);
            for m in must_see {
                assert!(r.body.contains(m), "CONTROL {what} does not see its own rows ({m}): {}", r.body);
            }
            assert_no_leak(r.status, &r.body, must_not);
        }
        // The append-only JWT can append (and nothing else is expected of it).
        let r = client()
            .post(format!("{}/v0/events?name=events", self.url()))
            .bearer_auth(self.append_only())
            .body("")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "CONTROL append-only JWT reaches the Events API (empty body is a 400, not a 403)");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 1. CTE shadowing
// ---------------------------------------------------------------------------------------------------------------

/// Queries whose CTE (or alias) carries the name of the datasource `{ds}` it reads, hiding the read from a check
/// that skips "CTE names" wherever they are defined. Every query selects `secret`, directly or in an array.
fn cte_shadow_sqls(ds: &str) -> Vec<(String, String)> {
    let t = |desc: &str, sql: &str| (desc.to_string(), sql.replace("{ds}", ds));
    vec![
        t("plain", "WITH {ds} AS (SELECT * FROM {ds}) SELECT * FROM {ds}"),
        t("lower case", "with {ds} as (select * from {ds}) select secret from {ds}"),
        t("mixed case keywords", "WiTh {ds} As (SeLeCt * FrOm {ds}) sElEcT secret fRoM {ds}"),
        t("backticks", "WITH `{ds}` AS (SELECT * FROM `{ds}`) SELECT `secret` FROM `{ds}`"),
        t("double quotes", r#"WITH "{ds}" AS (SELECT * FROM "{ds}") SELECT "secret" FROM "{ds}""#),
        t("mixed quoting", r#"WITH {ds} AS (SELECT * FROM `{ds}`) SELECT secret FROM "{ds}""#),
        t(
            "block comments",
            "WITH /* c */ {ds} /* c */ AS /* c */ (SELECT /**/ * FROM {ds} /* ) */) SELECT secret FROM {ds}",
        ),
        t("line comments", "WITH {ds} -- c\n AS ( -- c\nSELECT * FROM {ds} -- )\n) SELECT secret FROM {ds} -- end"),
        t("whitespace", "WITH\n\t{ds}\n\tAS\n(\n\tSELECT\t*\n\tFROM\r\n{ds}\n)\nSELECT\n\tsecret\nFROM\n\t{ds}\n"),
        t("nested CTEs", "WITH x AS (WITH {ds} AS (SELECT * FROM {ds}) SELECT * FROM {ds}) SELECT secret FROM x"),
        t(
            "doubly nested CTEs",
            "WITH x AS (WITH y AS (WITH {ds} AS (SELECT * FROM {ds}) SELECT * FROM {ds}) SELECT * FROM y) SELECT secret FROM x",
        ),
        t("CTE in a FROM subquery", "SELECT secret FROM (WITH {ds} AS (SELECT * FROM {ds}) SELECT * FROM {ds})"),
        t(
            "CTE in an aliased FROM subquery",
            "SELECT b.secret FROM (SELECT * FROM (WITH {ds} AS (SELECT * FROM {ds}) SELECT * FROM {ds}) AS a) AS b",
        ),
        t(
            "CTE after an earlier CTE reading the table",
            "WITH a AS (SELECT * FROM {ds}), {ds} AS (SELECT * FROM a) SELECT secret FROM {ds}",
        ),
        t(
            "earlier CTE read, shadow defined later",
            "WITH a AS (SELECT * FROM {ds}), {ds} AS (SELECT 1 AS k) SELECT secret FROM a",
        ),
        t(
            "shadow defined in an IN subquery hides the outer read",
            "SELECT secret FROM {ds} WHERE 1 IN (WITH {ds} AS (SELECT 1 AS x) SELECT x FROM {ds})",
        ),
        t(
            "shadow defined in NOT IN",
            "SELECT secret FROM {ds} WHERE 0 NOT IN (WITH {ds} AS (SELECT 1 AS x) SELECT x FROM {ds})",
        ),
        t(
            "shadow defined in EXISTS",
            "SELECT secret FROM {ds} WHERE EXISTS (WITH {ds} AS (SELECT 1 AS x) SELECT x FROM {ds})",
        ),
        t(
            "shadow defined in a scalar subquery",
            "SELECT secret, (WITH {ds} AS (SELECT 1 AS x) SELECT max(x) FROM {ds}) AS k FROM {ds}",
        ),
        t(
            "shadow defined in a UNION branch",
            "SELECT secret FROM {ds} UNION ALL SELECT secret FROM (WITH {ds} AS (SELECT 'a' AS secret) SELECT secret FROM {ds})",
        ),
        t(
            "shadow defined in a JOIN",
            "SELECT a.secret FROM {ds} AS a JOIN (WITH {ds} AS (SELECT 1 AS k) SELECT k FROM {ds}) AS b ON 1 = 1",
        ),
        t(
            "scalar subquery reading through the shadow",
            "SELECT (WITH {ds} AS (SELECT * FROM {ds}) SELECT groupArray(secret) FROM {ds}) AS s",
        ),
        t(
            "IN subquery reading through the shadow",
            "SELECT arrayJoin([1]) AS k, (WITH {ds} AS (SELECT * FROM {ds}) SELECT groupArray(secret) FROM {ds} WHERE 1 IN (SELECT 1)) AS s",
        ),
        t(
            "JOIN on the shadow",
            "SELECT b.secret FROM (SELECT 1 AS k) AS a JOIN (WITH {ds} AS (SELECT * FROM {ds}) SELECT * FROM {ds}) AS b ON 1 = 1",
        ),
        t(
            "UNION with the shadow",
            "SELECT 'x' AS secret UNION ALL (WITH {ds} AS (SELECT * FROM {ds}) SELECT secret FROM {ds})",
        ),
        t(
            "two CTEs, both named after tables",
            "WITH {ds} AS (SELECT * FROM {ds} WHERE 1 = 1), y AS (SELECT * FROM {ds}) SELECT secret FROM y",
        ),
        t("`_` as the CTE name", "WITH _ AS (SELECT * FROM {ds}) SELECT secret FROM _"),
        t("CTE named like the table, aliased", "WITH {ds} AS (SELECT * FROM {ds}) SELECT t.secret FROM {ds} AS t"),
        t(
            "scalar WITH plus shadow",
            "WITH 1 AS one, {ds} AS (SELECT * FROM {ds}) SELECT secret FROM {ds} WHERE one = 1",
        ),
        t(
            "ORDER BY/LIMIT around the shadow",
            "WITH {ds} AS (SELECT * FROM {ds} ORDER BY secret LIMIT 100) SELECT secret FROM {ds} ORDER BY secret LIMIT 100",
        ),
    ]
}

/// Aliases and CTEs named like other datasources, and `FROM` forms a filter rewrite may miss.
fn alias_sqls() -> Vec<(&'static str, &'static str)> {
    vec![
        ("orders aliased as events", "SELECT events.secret FROM orders AS events"),
        ("orders aliased as events, no AS", "SELECT events.secret FROM orders events"),
        ("audit aliased as events", "SELECT events.secret FROM audit AS events"),
        ("quarantine aliased as events", "SELECT events.secret FROM events_quarantine AS events"),
        ("events aliased as orders, then orders", "SELECT o.secret FROM events AS orders, orders AS o"),
        ("CTE orders reading orders", "WITH orders AS (SELECT * FROM orders) SELECT secret FROM orders"),
        ("CTE events reading orders", "WITH events AS (SELECT * FROM orders) SELECT secret FROM events"),
        ("CTE events reading audit", "WITH events AS (SELECT * FROM audit) SELECT secret FROM events"),
        (
            "CTE named events_quarantine",
            "WITH events_quarantine AS (SELECT * FROM events_quarantine) SELECT secret FROM events_quarantine",
        ),
        ("self join with alias swap", "SELECT b.secret FROM events AS a JOIN events AS b ON a.n = a.n"),
        ("comma join of events twice", "SELECT y.secret FROM events x, events y"),
        ("table in parentheses", "SELECT secret FROM (events)"),
        ("qualified name", "SELECT secret FROM default.events"),
        ("three-part name", "SELECT secret FROM datafusion.public.events"),
        ("LATERAL-ish subquery", "SELECT s.secret FROM (SELECT 1 AS k) AS z, (SELECT secret FROM events) AS s"),
        // Forms only the ClickHouse engine parses: a recursive CTE named like a table sees itself, `IN name` takes
        // only a CTE's name, an ASOF join reads its relation through the scope.
        (
            "recursive CTE named events",
            "WITH RECURSIVE events AS (SELECT * FROM events UNION ALL SELECT * FROM events WHERE 0) SELECT secret FROM events",
        ),
        (
            "IN a CTE named orders",
            "WITH orders AS (SELECT secret FROM orders) SELECT secret FROM events WHERE secret IN orders",
        ),
        (
            "IN the name of a CTE of another scope",
            "SELECT secret FROM events WHERE secret IN orders OR 1 IN (SELECT 1 FROM (WITH orders AS (SELECT 1) SELECT 1))",
        ),
        (
            "ASOF join to orders",
            "SELECT o.secret FROM events e ASOF JOIN orders o ON e.tenant = o.tenant AND e.n >= o.n",
        ),
        (
            "LEFT ASOF join of events to itself",
            "SELECT b.secret FROM events a LEFT ASOF JOIN events b ON a.tenant = a.tenant AND a.n >= b.n",
        ),
        ("CTE with a column list", "WITH events (s) AS (SELECT secret FROM events) SELECT s FROM events"),
        // ANY joins: the joined relation is read through a check of its keys, still through the scope.
        ("ANY LEFT join to orders", "SELECT o.secret FROM events e ANY LEFT JOIN orders o ON e.tenant = o.tenant"),
        (
            "ANY INNER join of events to itself under another alias",
            "SELECT b.secret FROM events a ANY INNER JOIN events b ON a.n = b.n",
        ),
        (
            "ANY LEFT join to a subquery of orders",
            "SELECT o.secret FROM events e ANY LEFT JOIN (SELECT tenant, secret FROM orders) o USING tenant",
        ),
        // Errors must not carry a hidden row's value: the filter and the attacker's condition may be evaluated on
        // the same batch, so a function that names its bad input in its error would show it.
        (
            "URL function error over hidden rows",
            "SELECT count() FROM events WHERE domain(if(tenant = 1, 'http://a.b', secret)) != ''",
        ),
        (
            "toUUID error over hidden rows",
            "SELECT count() FROM events WHERE toUUID(if(tenant = 1, '00000000-0000-0000-0000-000000000000', secret)) \
             = toUUID('00000000-0000-0000-0000-000000000001')",
        ),
        (
            "toDateOrNull error over hidden rows",
            "SELECT count() FROM events WHERE toDateOrNull(if(tenant = 1, '2024-01-01', concat('1', secret))) IS NULL",
        ),
        (
            "parse error over hidden rows",
            "SELECT count() FROM events WHERE parseDateTimeBestEffort(if(tenant = 1, '2024-01-01', secret)) > now()",
        ),
        (
            "conversion error over hidden rows",
            "SELECT count() FROM events WHERE toInt32(if(tenant = 1, '1', secret)) > 0",
        ),
        (
            "CAST error over hidden rows",
            "SELECT count() FROM events WHERE CAST(if(tenant = 1, '1', secret) AS Int64) > 0",
        ),
        (
            "reverse and substring errors over hidden rows",
            "SELECT count() FROM events WHERE reverse(if(tenant = 1, 'x', concat(secret, 'é'))) != '' AND \
             substring(if(tenant = 1, 'x', concat('é', secret)), 2) != ''",
        ),
        (
            "IN a CTE named orders, DataFusion flavor",
            "WITH orders AS (SELECT secret FROM events) SELECT secret FROM events WHERE secret IN (orders)",
        ),
    ]
}

#[tokio::test]
async fn cte_shadowing_never_leaks() {
    let ctx = Ctx::new().await;
    ctx.control_markers_exist().await;
    ctx.control_tokens_work().await;
    let (append, filtered, pipe) = (ctx.append_only(), ctx.filtered(), ctx.pipe_t1());
    let mut attacks = Vec::new();
    let mut i = 0;
    // (a) DATASOURCES:APPEND only, on /v0/sql: must read nothing at all.
    for ds in ["events", "orders", "audit", "events_quarantine"] {
        for (desc, sql) in cte_shadow_sqls(ds) {
            let (via, req) = rotate(via_sql(&sql), i);
            i += 1;
            attacks.push(attack(
                format!("1a append-only JWT, {ds}, {desc}, {via}: {sql}"),
                &append,
                NOT_FOR_APPEND_ONLY,
                req,
            ));
        }
    }
    // (b) DATASOURCES:READ filtered to tenant 1.
    for ds in ["events", "orders", "audit", "events_quarantine"] {
        for (desc, sql) in cte_shadow_sqls(ds) {
            let (via, req) = rotate(via_sql(&sql), i);
            i += 1;
            attacks.push(attack(
                format!("1b filtered JWT, {ds}, {desc}, {via}: {sql}"),
                &filtered,
                NOT_FOR_TENANT1_EVENTS,
                req,
            ));
        }
    }
    for (desc, sql) in alias_sqls() {
        for (via, req) in via_sql(sql).into_iter().take(2) {
            attacks.push(attack(
                format!("1b filtered JWT, {desc}, {via}: {sql}"),
                &filtered,
                NOT_FOR_TENANT1_EVENTS,
                req,
            ));
        }
    }
    // (c) PIPES:READ on per_tenant (tenant = 1), through the pipe's `q` and `/v0/sql?pipeline=`.
    for ds in ["events", "orders", "audit", "events_quarantine"] {
        for (desc, sql) in cte_shadow_sqls(ds) {
            let (via, req) = rotate(via_pipe_q("per_tenant", &sql), i);
            i += 1;
            attacks.push(attack(
                format!("1c pipe JWT, {ds}, {desc}, {via}: {sql}"),
                &pipe,
                NOT_FOR_TENANT1_EVENTS,
                req,
            ));
        }
    }
    for (desc, sql) in alias_sqls() {
        let (via, req) = rotate(via_pipe_q("per_tenant", sql), i);
        i += 1;
        attacks.push(attack(format!("1c pipe JWT, {desc}, {via}: {sql}"), &pipe, NOT_FOR_TENANT1_EVENTS, req));
    }
    // `_` shadowed or aliased inside the pipe's own q.
    for sql in [
        "WITH _ AS (SELECT * FROM events) SELECT secret FROM _",
        "WITH x AS (SELECT * FROM events) SELECT secret FROM x",
        "SELECT secret FROM events AS _",
        "SELECT secret FROM _ UNION ALL SELECT secret FROM events AS _",
        "SELECT b.secret FROM _ AS a JOIN (WITH events AS (SELECT * FROM events) SELECT * FROM events) AS b ON 1 = 1",
        "SELECT secret FROM _ WHERE secret IN (WITH events AS (SELECT * FROM events) SELECT secret FROM events)",
        "SELECT (WITH events AS (SELECT * FROM events) SELECT groupArray(secret) FROM events) AS s FROM _",
        "SELECT secret FROM _ WHERE EXISTS (WITH events AS (SELECT * FROM events) SELECT 1 FROM events)",
    ] {
        for (via, req) in via_pipe_q("per_tenant", sql) {
            attacks.push(attack(format!("1c pipe JWT, `_` games, {via}: {sql}"), &pipe, NOT_FOR_TENANT1_EVENTS, req));
        }
    }
    let failures = run_attacks(ctx.url(), &attacks).await;
    report("cte_shadowing_never_leaks", attacks.len(), &failures);
}

// ---------------------------------------------------------------------------------------------------------------
// 2. String-literal smuggling
// ---------------------------------------------------------------------------------------------------------------

/// Queries that are harmless as written, but whose string literals, printed back without escaping their backslashes
/// (`'a\\'` becomes `'a\'`), turn the tail of the query into a second SELECT reading `{ds}` unfiltered. In these
/// Rust raw strings `\\` is two backslash characters, as the attacker types them.
fn smuggling_sqls(ds: &str) -> Vec<(String, String)> {
    let t = |desc: &str, sql: &str| (desc.to_string(), sql.replace("{ds}", ds));
    vec![
        t(
            "backslash before the closing quote, -- comment",
            r"SELECT secret FROM events WHERE secret = 'a\\' OR secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t(
            "lone backslash literal",
            r"SELECT secret FROM events WHERE secret = '\\' OR secret != ' UNION ALL SELECT secret FROM {ds} --'",
        ),
        t(
            "three backslashes",
            r"SELECT secret FROM events WHERE secret = 'a\\\\\\' OR secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t(
            "lower case",
            r"select secret from events where secret = 'a\\' or secret != ' union all select secret from {ds} -- '",
        ),
        t("IN list", r"SELECT secret FROM events WHERE secret IN ('a\\', ') UNION ALL SELECT secret FROM {ds} -- ')"),
        t(
            "IN array (rewritten to a tuple first)",
            r"SELECT secret FROM events WHERE secret IN ['a\\', ' UNION ALL SELECT secret FROM {ds} -- ']",
        ),
        t(
            "doubled quote then backslash",
            r"SELECT secret FROM events WHERE secret = 'it''s\\' OR secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t(
            "escaped quote then backslash",
            r"SELECT secret FROM events WHERE secret = 'it\'s\\' OR secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t(
            "escaped quote only",
            r"SELECT secret FROM events WHERE secret = 'a\'' OR secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t(
            "unicode before the backslash",
            r"SELECT secret FROM events WHERE secret = 'é☃\\' OR secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t(
            "hex escape of a backslash",
            r"SELECT secret FROM events WHERE secret = 'a\x5c' OR secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t(
            "newline escapes",
            r"SELECT secret FROM events WHERE secret = 'a\n\\' OR secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t(
            "real newline inside the literal",
            "SELECT secret FROM events WHERE secret = 'a\\\\' OR secret != '\nUNION ALL SELECT secret FROM {ds}\n-- '",
        ),
        t(
            "block comments around",
            r"SELECT secret FROM events WHERE secret = 'a\\'/**/OR/**/secret != '/**/UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t(
            "backticked identifiers",
            r"SELECT `secret` FROM `events` WHERE `secret` = 'a\\' OR `secret` != ' UNION ALL SELECT `secret` FROM `{ds}` -- '",
        ),
        t(
            "double-quoted identifiers",
            r#"SELECT "secret" FROM "events" WHERE "secret" = 'a\\' OR "secret" != ' UNION ALL SELECT "secret" FROM "{ds}" -- '"#,
        ),
        t(
            "alias with a backslash in backticks",
            r"SELECT secret AS `x\\` FROM events WHERE secret = 'a\\' OR secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t("backslash in a backticked alias only", r"SELECT secret AS `a\\` FROM events AS `e\\` WHERE 1 = 1"),
        t(
            "inside a function call",
            r"SELECT concat(secret, 'a\\') AS secret FROM events WHERE secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t(
            "inside a subquery",
            r"SELECT secret FROM (SELECT secret FROM events WHERE secret = 'a\\' OR secret != ') UNION ALL SELECT secret FROM {ds} -- ')",
        ),
        t(
            "in a scalar WITH",
            r"WITH 'a\\' AS x SELECT secret FROM events WHERE secret = x OR secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
        t(
            "two backslash literals, balanced",
            r"SELECT secret FROM events WHERE secret IN ('a\\', ' UNION ALL SELECT secret FROM {ds} WHERE secret NOT IN (', 'b\\', ')') -- ')",
        ),
        t(
            "LIKE pattern",
            r"SELECT secret FROM events WHERE secret LIKE 'a\\' OR secret != ' UNION ALL SELECT secret FROM {ds} -- '",
        ),
    ]
}

#[tokio::test]
async fn string_literal_smuggling_never_leaks() {
    let ctx = Ctx::new().await;
    ctx.control_markers_exist().await;
    ctx.control_tokens_work().await;
    let (filtered, filtered_both, pipe_f) = (ctx.filtered(), ctx.filtered_both(), ctx.pipe_t1_with_filter());
    let mut attacks = Vec::new();
    let mut i = 0;
    for ds in ["events", "orders", "audit", "events_quarantine"] {
        for (desc, sql) in smuggling_sqls(ds) {
            let (via, req) = rotate(via_sql(&sql), i);
            i += 1;
            attacks.push(attack(
                format!("2 filtered JWT, {ds}, {desc}, {via}: {sql}"),
                &filtered,
                NOT_FOR_TENANT1_EVENTS,
                req,
            ));
        }
    }
    for (desc, sql) in smuggling_sqls("events") {
        let (via, req) = rotate(via_sql(&sql), i);
        i += 1;
        attacks.push(attack(
            format!("2 filtered_both JWT, {desc}, {via}: {sql}"),
            &filtered_both,
            NOT_FOR_TENANT1,
            req,
        ));
    }
    // Through a pipe's q over `_`, with a JWT whose DATASOURCES:READ filter makes the server rewrite the SQL.
    for ds in ["events", "audit"] {
        for (desc, sql) in smuggling_sqls(ds) {
            let sql = sql
                .replace("FROM events WHERE", "FROM _ WHERE")
                .replace("FROM `events` WHERE", "FROM `_` WHERE")
                .replace(r#"FROM "events" WHERE"#, r#"FROM "_" WHERE"#);
            let (via, req) = rotate(via_pipe_q("per_tenant", &sql), i);
            i += 1;
            attacks.push(attack(
                format!("2 pipe+filter JWT, {ds}, {desc}, {via}: {sql}"),
                &pipe_f,
                NOT_FOR_TENANT1,
                req,
            ));
        }
    }
    // Through a pipe's String params: `by_name` renders `secret != {{String(a)}} AND secret != {{String(b)}}`.
    let by_name = ctx.jwt(json!([
        {"type": "PIPES:READ", "resource": "by_name", "fixed_params": {"tenant": 1}},
        {"type": "DATASOURCES:READ", "resource": "orders", "filter": "tenant = 1"}
    ]));
    let by_name_unfiltered =
        ctx.jwt(json!([{"type": "PIPES:READ", "resource": "by_name", "fixed_params": {"tenant": 1}}]));
    let param_pairs: Vec<(&str, String, String)> = ["events", "audit", "events_quarantine", "orders"]
        .iter()
        .flat_map(|ds| {
            [
                ("a = `x\\`", "x\\".to_string(), format!(" UNION ALL SELECT tenant, secret FROM {ds} -- ")),
                ("a = `\\`", "\\".to_string(), format!(" UNION ALL SELECT tenant, secret FROM {ds} -- ")),
                ("a = `x\\\\\\`", "x\\\\\\".to_string(), format!(" UNION ALL SELECT tenant, secret FROM {ds} -- ")),
                ("a = `x'\\`", "x'\\".to_string(), format!(" UNION ALL SELECT tenant, secret FROM {ds} -- ")),
                ("a = `é\\`", "é\\".to_string(), format!("\nUNION ALL SELECT tenant, secret FROM {ds}\n-- ")),
                (
                    "a = `x\\`, b with a quote",
                    "x\\".to_string(),
                    format!("' UNION ALL SELECT tenant, secret FROM {ds} -- "),
                ),
            ]
        })
        .collect();
    for (desc, a, b) in &param_pairs {
        let tp = json!({"a": a, "b": b}).to_string();
        let entries: Vec<(&str, Req)> = vec![
            ("GET params", Req::get("/v0/pipes/by_name.json", &[("a", a), ("b", b)])),
            ("POST form", Req::form("/v0/pipes/by_name.json", &[], &[("a", a), ("b", b)])),
            ("POST json", Req::json("/v0/pipes/by_name.json", &[], json!({"a": a, "b": b}))),
            ("template_parameters", Req::get("/v0/pipes/by_name.json", &[("template_parameters", &tp)])),
            (
                "/v0/sql?pipeline=",
                Req::get("/v0/sql", &[("pipeline", "by_name"), ("q", "SELECT * FROM _"), ("a", a), ("b", b)]),
            ),
        ];
        for (via, req) in entries {
            attacks.push(attack(
                format!("2 by_name params, {desc}, b = {b:?}, {via}"),
                &by_name,
                NOT_FOR_TENANT1,
                req.clone(),
            ));
        }
        let (via, req) = rotate(
            vec![
                ("GET params", Req::get("/v0/pipes/by_name.json", &[("a", a), ("b", b)])),
                ("POST form", Req::form("/v0/pipes/by_name.json", &[], &[("a", a), ("b", b)])),
            ],
            i,
        );
        i += 1;
        attacks.push(attack(
            format!("2 by_name params, no filter, {desc}, b = {b:?}, {via}"),
            &by_name_unfiltered,
            NOT_FOR_TENANT1_EVENTS,
            req,
        ));
    }
    // Numeric params that are not numbers, and fixed params sent again by the caller.
    let pipe = ctx.pipe_t1();
    for (desc, value) in [
        ("tenant = 2", "2"),
        ("tenant with SQL", "1 OR 1 = 1"),
        ("tenant with UNION", "1 UNION ALL SELECT tenant, secret, n FROM events"),
        ("tenant with a quote", "1' OR '1' = '1"),
        ("tenant with a backslash", "1\\"),
        ("tenant with a comment", "2 -- "),
        ("tenant negative", "-1"),
        ("tenant huge", "99999999999999999999999"),
        ("tenant with NUL", "2\u{0}"),
    ] {
        for (via, req) in [
            ("GET", Req::get("/v0/pipes/per_tenant.json", &[("tenant", value)])),
            ("GET repeated", Req::get("/v0/pipes/per_tenant.json", &[("tenant", value), ("tenant", value)])),
            ("POST form", Req::form("/v0/pipes/per_tenant.json", &[], &[("tenant", value)])),
            ("POST json", Req::json("/v0/pipes/per_tenant.json", &[], json!({"tenant": value}))),
            (
                "template_parameters",
                Req::get(
                    "/v0/pipes/per_tenant.json",
                    &[("template_parameters", &json!({"tenant": value}).to_string())],
                ),
            ),
        ] {
            attacks.push(attack(
                format!("2 pipe JWT, fixed param overridden, {desc}, {via}"),
                &pipe,
                NOT_FOR_TENANT1_EVENTS,
                req,
            ));
        }
    }
    for (via, req) in [
        ("JSON number", Req::json("/v0/pipes/per_tenant.json", &[], json!({"tenant": 2}))),
        ("JSON array", Req::json("/v0/pipes/per_tenant.json", &[], json!({"tenant": [2, 1]}))),
        ("JSON object", Req::json("/v0/pipes/per_tenant.json", &[], json!({"tenant": {"x": 2}}))),
        ("upper-case name", Req::get("/v0/pipes/per_tenant.json", &[("TENANT", "2")])),
        (
            "template_parameters number",
            Req::get("/v0/pipes/per_tenant.json", &[("template_parameters", r#"{"tenant": 2}"#)]),
        ),
        (
            "template_parameters in a JSON body",
            Req::json("/v0/pipes/per_tenant.json", &[], json!({"template_parameters": {"tenant": 2}})),
        ),
        (
            "template_parameters as form",
            Req::form("/v0/pipes/per_tenant.json", &[], &[("template_parameters", r#"{"tenant": 2}"#)]),
        ),
    ] {
        attacks.push(attack(format!("2 pipe JWT, fixed param overridden, {via}"), &pipe, NOT_FOR_TENANT1_EVENTS, req));
    }
    let failures = run_attacks(ctx.url(), &attacks).await;
    report("string_literal_smuggling_never_leaks", attacks.len(), &failures);
}

// ---------------------------------------------------------------------------------------------------------------
// 3. A pipe's q reading another pipe; pipe A's JWT reaching pipe B
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn pipes_read_through_other_pipes_keep_their_fixed_params() {
    let ctx = Ctx::new().await;
    ctx.control_markers_exist().await;
    ctx.control_tokens_work().await;
    let two = ctx.two_pipes();
    let mut attacks = Vec::new();
    // other_pipe is fixed to org = 1; `org=2` sent by the caller must never reach it, however other_pipe is read.
    let through_other = [
        "SELECT * FROM other_pipe",
        "select * from other_pipe",
        "SELECT * FROM `other_pipe`",
        r#"SELECT * FROM "other_pipe""#,
        "SELECT secret FROM (SELECT * FROM other_pipe)",
        "SELECT secret FROM _ UNION ALL SELECT secret FROM other_pipe",
        "SELECT b.secret FROM _ AS a JOIN other_pipe AS b ON 1 = 1",
        "SELECT (SELECT groupArray(secret) FROM other_pipe) AS s",
        "WITH x AS (SELECT * FROM other_pipe) SELECT secret FROM x",
        "SELECT /* c */ * FROM -- c\n other_pipe",
    ];
    for sql in through_other {
        for (pv, params) in [("org=2", vec![("org", "2")]), ("org=2&tenant=2", vec![("org", "2"), ("tenant", "2")])] {
            let mut q = vec![("q", sql)];
            q.extend(params.iter().copied());
            attacks.push(attack(
                format!("3 per_tenant q reads other_pipe, {pv}: {sql}"),
                &two,
                NOT_FOR_TENANT1,
                Req::get("/v0/pipes/per_tenant.json", &q),
            ));
        }
        let mut form = vec![("q", sql), ("org", "2")];
        form.push(("tenant", "2"));
        attacks.push(attack(
            format!("3 per_tenant q reads other_pipe, POST form org=2: {sql}"),
            &two,
            NOT_FOR_TENANT1,
            Req::form("/v0/pipes/per_tenant.json", &[], &form),
        ));
        attacks.push(attack(
            format!("3 per_tenant q reads other_pipe, POST json org=2: {sql}"),
            &two,
            NOT_FOR_TENANT1,
            Req::json("/v0/pipes/per_tenant.json", &[], json!({"q": sql, "org": 2})),
        ));
        attacks.push(attack(
            format!("3 per_tenant q reads other_pipe, template_parameters org=2: {sql}"),
            &two,
            NOT_FOR_TENANT1,
            Req::get("/v0/pipes/per_tenant.json", &[("q", sql), ("template_parameters", r#"{"org": "2"}"#)]),
        ));
        let sql_direct = sql.replace("FROM _ ", "FROM per_tenant ");
        attacks.push(attack(
            format!("3 /v0/sql reads other_pipe, org=2: {sql_direct}"),
            &two,
            NOT_FOR_TENANT1,
            Req::get("/v0/sql", &[("q", &sql_direct), ("org", "2")]),
        ));
        attacks.push(attack(
            format!("3 /v0/sql POST form reads other_pipe, org=2: {sql_direct}"),
            &two,
            NOT_FOR_TENANT1,
            Req::form("/v0/sql", &[], &[("q", &sql_direct), ("org", "2")]),
        ));
    }
    for (desc, req) in [
        (
            "other_pipe reads per_tenant, tenant=2",
            Req::get("/v0/pipes/other_pipe.json", &[("q", "SELECT * FROM per_tenant"), ("tenant", "2")]),
        ),
        (
            "/v0/sql reads per_tenant, tenant=2",
            Req::get("/v0/sql", &[("q", "SELECT * FROM per_tenant"), ("tenant", "2")]),
        ),
        (
            "/v0/sql reads both, tenant=2 org=2",
            Req::get(
                "/v0/sql",
                &[
                    ("q", "SELECT secret FROM per_tenant UNION ALL SELECT secret FROM other_pipe"),
                    ("tenant", "2"),
                    ("org", "2"),
                ],
            ),
        ),
        (
            "pipeline=other_pipe, org=2",
            Req::get("/v0/sql", &[("pipeline", "other_pipe"), ("q", "SELECT * FROM _"), ("org", "2")]),
        ),
        (
            "pipeline=per_tenant, tenant=2",
            Req::get("/v0/sql", &[("pipeline", "per_tenant"), ("q", "SELECT * FROM _"), ("tenant", "2")]),
        ),
        (
            "pipeline=per_tenant POST form, tenant=2",
            Req::form("/v0/sql", &[], &[("pipeline", "per_tenant"), ("q", "SELECT * FROM _"), ("tenant", "2")]),
        ),
        (
            "pipeline=per_tenant POST json, tenant=2",
            Req::json("/v0/sql", &[], json!({"pipeline": "per_tenant", "q": "SELECT * FROM _", "tenant": 2})),
        ),
        (
            "pipeline=per_tenant template_parameters",
            Req::get(
                "/v0/sql",
                &[("pipeline", "per_tenant"), ("q", "SELECT * FROM _"), ("template_parameters", r#"{"tenant": 2}"#)],
            ),
        ),
        (
            "pipeline=per_tenant reading other_pipe, org=2",
            Req::get(
                "/v0/sql",
                &[
                    ("pipeline", "per_tenant"),
                    ("q", "SELECT secret FROM _ UNION ALL SELECT secret FROM other_pipe"),
                    ("org", "2"),
                ],
            ),
        ),
        (
            "pipeline=per_tenant, q without `_`",
            Req::get("/v0/sql", &[("pipeline", "per_tenant"), ("q", "SELECT secret FROM per_tenant"), ("tenant", "2")]),
        ),
    ] {
        attacks.push(attack(format!("3 two_pipes JWT, {desc}"), &two, NOT_FOR_TENANT1, req));
    }
    // chained reads per_tenant: a JWT on chained (no fixed params) plus per_tenant fixed to tenant 1, reading
    // per_tenant itself through chained's q, must keep tenant 1.
    let chained = ctx.jwt(json!([
        {"type": "PIPES:READ", "resource": "chained"},
        {"type": "PIPES:READ", "resource": "per_tenant", "fixed_params": {"tenant": 1}}
    ]));
    for (desc, req) in [
        (
            "chained q reads per_tenant, tenant=2",
            Req::get("/v0/pipes/chained.json", &[("q", "SELECT * FROM per_tenant"), ("tenant", "2")]),
        ),
        (
            "/v0/sql reads per_tenant, tenant=2",
            Req::get("/v0/sql", &[("q", "SELECT secret FROM per_tenant"), ("tenant", "2")]),
        ),
        (
            "pipeline=per_tenant, tenant=2",
            Req::get("/v0/sql", &[("pipeline", "per_tenant"), ("q", "SELECT secret FROM _"), ("tenant", "2")]),
        ),
    ] {
        attacks.push(attack(format!("3 chained+per_tenant JWT, {desc}"), &chained, NOT_FOR_TENANT1_EVENTS, req));
    }
    // A JWT for per_tenant only cannot read any other pipe, however it asks.
    let pipe = ctx.pipe_t1();
    for (desc, req) in [
        ("other_pipe endpoint", Req::get("/v0/pipes/other_pipe.json", &[])),
        ("other_pipe ndjson endpoint", Req::get("/v0/pipes/other_pipe.ndjson", &[])),
        ("/v0/sql reads other_pipe", Req::get("/v0/sql", &[("q", "SELECT * FROM other_pipe")])),
        ("/v0/sql reads OTHER_PIPE", Req::get("/v0/sql", &[("q", "SELECT * FROM OTHER_PIPE")])),
        ("/v0/sql pipeline=other_pipe", Req::get("/v0/sql", &[("pipeline", "other_pipe"), ("q", "SELECT * FROM _")])),
        (
            "/v0/sql pipeline=audit_internal",
            Req::get("/v0/sql", &[("pipeline", "audit_internal"), ("q", "SELECT * FROM _")]),
        ),
        ("/v0/sql reads audit_internal", Req::get("/v0/sql", &[("q", "SELECT * FROM audit_internal")])),
        ("/v0/sql reads chained, tenant=2", Req::get("/v0/sql", &[("q", "SELECT * FROM chained"), ("tenant", "2")])),
        (
            "/v0/sql reads per_tenant, tenant=2",
            Req::get("/v0/sql", &[("q", "SELECT * FROM per_tenant"), ("tenant", "2")]),
        ),
        (
            "/v0/sql pipeline=per_tenant, tenant=2",
            Req::get("/v0/sql", &[("pipeline", "per_tenant"), ("q", "SELECT * FROM _"), ("tenant", "2")]),
        ),
        (
            "per_tenant q joins other_pipe",
            Req::get(
                "/v0/pipes/per_tenant.json",
                &[("q", "SELECT b.secret FROM _ AS a JOIN other_pipe AS b ON 1 = 1")],
            ),
        ),
        (
            "per_tenant q unions other_pipe",
            Req::get(
                "/v0/pipes/per_tenant.json",
                &[("q", "SELECT secret FROM _ UNION ALL SELECT secret FROM other_pipe")],
            ),
        ),
        (
            "per_tenant q reads audit_internal",
            Req::get("/v0/pipes/per_tenant.json", &[("q", "SELECT secret FROM audit_internal")]),
        ),
        (
            "per_tenant q: IN subquery over other_pipe",
            Req::get(
                "/v0/pipes/per_tenant.json",
                &[("q", "SELECT (SELECT groupArray(secret) FROM other_pipe) AS s FROM _")],
            ),
        ),
        (
            "per_tenant q: CTE named other_pipe",
            Req::get(
                "/v0/pipes/per_tenant.json",
                &[("q", "WITH other_pipe AS (SELECT * FROM other_pipe) SELECT secret FROM other_pipe")],
            ),
        ),
        (
            "per_tenant q: CTE named audit_internal",
            Req::get(
                "/v0/pipes/per_tenant.json",
                &[("q", "WITH audit_internal AS (SELECT * FROM audit_internal) SELECT secret FROM audit_internal")],
            ),
        ),
        (
            "/v0/sql: CTE named chained",
            Req::get(
                "/v0/sql",
                &[("q", "WITH chained AS (SELECT * FROM chained) SELECT secret FROM chained"), ("tenant", "2")],
            ),
        ),
        (
            "/v0/sql: per_tenant CTE shadow",
            Req::get("/v0/sql", &[("q", "WITH per_tenant AS (SELECT * FROM events) SELECT secret FROM per_tenant")]),
        ),
        ("audit_internal is no endpoint", Req::get("/v0/pipes/audit_internal.json", &[])),
        ("pipe datafile", Req::get("/v0/pipes/other_pipe.pipe", &[])),
    ] {
        attacks.push(attack(format!("9 pipe A JWT reaches pipe B: {desc}"), &pipe, NOT_FOR_TENANT1_EVENTS, req));
    }
    let failures = run_attacks(ctx.url(), &attacks).await;
    report("pipes_read_through_other_pipes_keep_their_fixed_params", attacks.len(), &failures);
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Write attempts
// ---------------------------------------------------------------------------------------------------------------

fn write_sqls(out: &str) -> Vec<String> {
    [
        "SELECT * INTO newtable FROM events",
        "SELECT secret INTO TEMPORARY newtable FROM events",
        "select * into newtable from events",
        "SELECT * INTO events FROM orders",
        "CREATE TABLE newtable (a UInt64) ENGINE = Memory",
        "CREATE TABLE newtable AS SELECT * FROM events",
        "create table newtable as select * from events",
        "CREATE OR REPLACE TABLE events AS SELECT * FROM orders",
        "CREATE VIEW newtable AS SELECT * FROM events",
        "CREATE EXTERNAL TABLE newtable STORED AS CSV LOCATION '/etc/passwd'",
        "INSERT INTO events VALUES (2, 'x', 1)",
        "INSERT INTO events SELECT * FROM events",
        "insert into events select * from events",
        "WITH x AS (SELECT 1) INSERT INTO events SELECT * FROM events",
        "WITH x AS (SELECT 1) DELETE FROM events",
        "WITH x AS (SELECT 1) UPDATE events SET secret = 'x'",
        "(INSERT INTO events SELECT * FROM events)",
        "SELECT 1 UNION ALL (INSERT INTO events SELECT * FROM events)",
        "DROP TABLE events",
        "DROP TABLE IF EXISTS orders",
        "drop table events",
        "/* c */ DROP TABLE events",
        "-- c\nDROP TABLE events",
        "   \n\tDROP TABLE events",
        "ALTER TABLE events DELETE WHERE 1 = 1",
        "ALTER TABLE events ADD COLUMN z UInt8",
        "DELETE FROM events WHERE 1 = 1",
        "UPDATE events SET secret = 'x' WHERE 1 = 1",
        "TRUNCATE TABLE events",
        "TRUNCATE events",
        "RENAME TABLE events TO gone",
        "DETACH TABLE events",
        "ATTACH TABLE newtable",
        "OPTIMIZE TABLE events FINAL",
        "SELECT 1; DROP TABLE events",
        "SELECT 1;DROP TABLE events;",
        "SELECT 1 ; INSERT INTO events SELECT * FROM events",
        "SELECT 1 /* ; */ ; DROP TABLE events",
        "SELECT 1 -- ;\n; DROP TABLE events",
        "SELECT ';'; DROP TABLE events",
        "(SELECT 1); DROP TABLE events",
        "WITH x AS (SELECT 1) SELECT * FROM x; DROP TABLE events",
        "SET max_threads = 1",
        "SET datafusion.execution.batch_size = 1",
        "EXPLAIN SELECT * FROM events",
        "EXPLAIN ANALYZE SELECT * FROM events",
        "explain select * from events",
        "EXPLAIN VERBOSE SELECT * FROM events",
        "SHOW TABLES",
        "SHOW CREATE TABLE events",
        "USE system",
        "KILL QUERY WHERE 1",
        "SYSTEM DROP DNS CACHE",
        "GRANT ALL ON *.* TO attacker",
        "BEGIN",
        "PREPARE p AS SELECT 1",
    ]
    .into_iter()
    .map(str::to_string)
    .chain([
        format!("COPY events TO '{out}'"),
        format!("COPY (SELECT * FROM events) TO '{out}'"),
        format!("SELECT * FROM events INTO OUTFILE '{out}'"),
        format!("SELECT 1; COPY events TO '{out}'"),
        format!("WITH x AS (SELECT 1) COPY events TO '{out}'"),
    ])
    .collect()
}

#[tokio::test]
async fn write_attempts_change_nothing() {
    let ctx = Ctx::new().await;
    ctx.control_markers_exist().await;
    ctx.control_tokens_work().await;
    let out = std::env::temp_dir().join(format!("red_team_copy_{}.csv", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let out_text = out.to_string_lossy().to_string();
    let (admin, filtered, pipe) = (ctx.admin().to_string(), ctx.filtered(), ctx.pipe_t1());
    let mut attacks = Vec::new();
    for (i, sql) in write_sqls(&out_text).iter().enumerate() {
        // Every write attempt through /v0/sql, with the admin token (which may read anything but never write
        // through SQL) and with a filtered JWT; and as a pipe's q.
        let (via, req) = rotate(via_sql(sql), i);
        attacks.push(refused(format!("4 admin, {via}: {sql}"), &admin, &[], req));
        let (via, req) = rotate(via_sql(sql), i + 1);
        attacks.push(refused(format!("4 filtered JWT, {via}: {sql}"), &filtered, NOT_FOR_TENANT1_EVENTS, req));
        let (via, req) = rotate(via_pipe_q("per_tenant", sql), i);
        attacks.push(refused(format!("4 pipe JWT, {via}: {sql}"), &pipe, NOT_FOR_TENANT1_EVENTS, req));
    }
    let mut failures = run_attacks(ctx.url(), &attacks).await;
    // Nothing was created, dropped or changed.
    for (sql, expected) in [
        ("SELECT count() AS c FROM events FORMAT JSON", json!([{"c": ROWS_PER_TENANT * 2}])),
        ("SELECT count() AS c FROM orders FORMAT JSON", json!([{"c": ROWS_PER_TENANT * 2}])),
        ("SELECT count() AS c FROM audit FORMAT JSON", json!([{"c": 4}])),
        ("SELECT count() AS c FROM events WHERE secret = 'x' FORMAT JSON", json!([{"c": 0}])),
        ("SELECT count() AS c FROM events_quarantine FORMAT JSON", json!([{"c": 1}])),
    ] {
        let r = ctx.admin_sql(sql).await;
        let data = serde_json::from_str::<Value>(&r.body).map(|v| v["data"].clone()).unwrap_or(Value::Null);
        if r.status != 200 || data != expected {
            failures.push(format!(
                "[4 state after the writes] {sql}: expected {expected}, got {} {}",
                r.status,
                excerpt(&r.body)
            ));
        }
    }
    for table in ["newtable", "gone"] {
        let r = ctx.admin_sql(&format!("SELECT * FROM {table}")).await;
        if !(400..500).contains(&r.status) {
            failures.push(format!(
                "[4 state after the writes] table {table} exists: {} {}",
                r.status,
                excerpt(&r.body)
            ));
        }
        // A table created behind the API's back (e.g. by SELECT INTO in the engine's session) is still reachable
        // through a CTE that reads its own name.
        let r = ctx.admin_sql(&format!("WITH {table} AS (SELECT * FROM {table}) SELECT * FROM {table}")).await;
        if let Some(m) = [T1EV, EV2, T1OR, OR2].iter().find(|m| r.body.contains(*m)) {
            failures.push(format!(
                "[4 state after the writes] table {table} was created in the engine (holds {m}): {} {}",
                r.status,
                excerpt(&r.body)
            ));
        }
    }
    let r = ctx.get(ctx.admin(), Req::get("/v0/datasources", &[])).await;
    let names: BTreeSet<String> = serde_json::from_str::<Value>(&r.body)
        .ok()
        .and_then(|v| {
            v["datasources"]
                .as_array()
                .map(|a| a.iter().filter_map(|d| d["name"].as_str().map(str::to_string)).collect())
        })
        .unwrap_or_default();
    let expected: BTreeSet<String> = ["audit", "events", "orders"].into_iter().map(str::to_string).collect();
    if names != expected {
        failures.push(format!("[4 state after the writes] datasources are now {names:?}"));
    }
    let r = ctx.get(&pipe, Req::get("/v0/pipes/per_tenant.json", &[])).await;
    if r.status != 200 || !r.body.contains(T1EV) {
        failures.push(format!(
            "[4 state after the writes] per_tenant no longer answers: {} {}",
            r.status,
            excerpt(&r.body)
        ));
    }
    if out.exists() {
        failures.push(format!("[4 state after the writes] {} was written", out.display()));
        let _ = std::fs::remove_file(&out);
    }
    report("write_attempts_change_nothing", attacks.len(), &failures);
}

// ---------------------------------------------------------------------------------------------------------------
// The binary as a separate process (crash and stall attacks)
// ---------------------------------------------------------------------------------------------------------------

// Crash, stall and depth tests each own a child server and load the machine: one at a time, and never beside the
// differential.
use crate::common::HEAVY as SERIAL;

/// A `tinybird-local` child process serving the red-team fixture. Killed when dropped.
struct Proc {
    child: Child,
    url: String,
    admin: String,
    log: Arc<Mutex<String>>,
    args: Vec<String>,
}

impl Proc {
    /// Starts `tinybird-local --port 0 --project <fixture> <extra…>` and reads its URL from stderr's first line.
    async fn spawn(extra: &[&str]) -> Result<Proc, String> {
        let project = redteam_dir();
        let mut args: Vec<String> =
            vec!["--port".into(), "0".into(), "--project".into(), project.to_string_lossy().into()];
        args.extend(extra.iter().map(std::string::ToString::to_string));
        let bin = bin();
        let mut child = Command::new(&bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut first = true;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = log2.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if first {
                    let _ = tx.send(line);
                    first = false;
                }
            }
        });
        let first = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60))).await.unwrap();
        let Ok(line) = first else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "tinybird-local {args:?} printed nothing: {}",
                log.lock().map(|l| l.clone()).unwrap_or_default()
            ));
        };
        let Some(url) = line
            .strip_prefix("tinybird-local listening on ")
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
        else {
            std::thread::sleep(Duration::from_millis(200));
            let _ = child.kill();
            let _ = child.wait();
            let all = log.lock().map(|l| l.clone()).unwrap_or_default();
            return Err(format!("tinybird-local {} did not start: {}", args[4..].join(" "), all.trim()));
        };
        let tokens: Value = client()
            .get(format!("{url}/tokens"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let admin = tokens["admin_token"].as_str().ok_or("no admin token at /tokens")?.to_string();
        Ok(Proc { child, url, admin, log, args })
    }

    /// [`Proc::spawn`] with `--query-timeout-secs 3` when the binary has it (so a slow query costs the suite 3 s,
    /// not the default), else without.
    async fn spawn_short_timeout() -> Proc {
        match Proc::spawn(&["--query-timeout-secs", "3"]).await {
            Ok(p) => p,
            Err(_) => Proc::spawn(&[]).await.expect("tinybird-local starts"),
        }
    }

    /// Starts a fresh process with the same arguments, seeded.
    async fn respawn(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let extra: Vec<String> = self.args[4..].to_vec();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        *self = Proc::spawn(&extra).await.expect("the server restarts");
        seed(&self.url, &self.admin).await;
    }

    /// The last lines the process printed (a stack overflow says so there).
    fn log_tail(&self) -> String {
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/v0/health` answers 200 within `limit`.
async fn health_within(url: &str, limit: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let r = reqwest::Client::new().get(format!("{url}/v0/health")).timeout(limit).send().await;
    match r {
        Ok(r) if r.status() == 200 => Ok(started.elapsed()),
        Ok(r) => Err(format!("/v0/health answered {}", r.status())),
        Err(e) => Err(format!("/v0/health did not answer within {limit:?}: {}", describe_reqwest(&e))),
    }
}

/// A small query answers 200 within `limit`.
async fn small_query_within(url: &str, admin: &str, limit: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    match send(url, Some(admin), &Req::get("/v0/sql", &[("q", "SELECT 1 AS one FORMAT JSON")]), limit).await {
        Ok(r) if r.status == 200 => Ok(started.elapsed()),
        Ok(r) => Err(format!("SELECT 1 answered {} {}", r.status, excerpt(&r.body))),
        Err(e) => Err(format!("SELECT 1 did not answer within {limit:?}: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 5. Crash attempts: deep and wide queries
// ---------------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Ordinary SQL: must answer 200.
    Works,
    /// Nesting no query needs: must be refused with a 4xx JSON error.
    Refused,
    /// Wide but flat, or moderately deep: 200 or a 4xx JSON error are both fine.
    Either,
}

fn nested(open: &str, core: &str, close: &str, n: usize) -> String {
    format!("{}{core}{}", open.repeat(n), close.repeat(n))
}

fn joined(term: impl Fn(usize) -> String, sep: &str, n: usize) -> String {
    (0..n).map(term).collect::<Vec<_>>().join(sep)
}

/// (description, SQL, expectation).
fn deep_queries() -> Vec<(String, String, Expect)> {
    use Expect::*;
    let mut v: Vec<(String, String, Expect)> = Vec::new();
    let mut add = |d: String, q: String, e: Expect| v.push((d, q, e));
    for (n, e) in [(30, Works), (100, Either), (1000, Refused)] {
        add(format!("{n} chained NOT"), format!("SELECT {}(n = 1) AS x FROM events", "NOT ".repeat(n)), e);
    }
    // ClickHouse accepts nesting up to its max_ast_depth (1000): 200 nested calls may answer, 1200 must not.
    for (n, e) in [(20, Works), (50, Either), (200, Either), (1200, Refused)] {
        add(
            format!("{n} nested function calls"),
            format!("SELECT {} AS x FROM events", nested("abs(", "n", ")", n)),
            e,
        );
        add(format!("{n} nested concat calls"), format!("SELECT {} AS x", nested("concat('a', ", "'b'", ")", n)), e);
    }
    for (n, e) in [(40, Works), (100, Either), (1000, Refused)] {
        add(format!("{n} nested parentheses"), format!("SELECT {} AS x", nested("(", "1", ")", n)), e);
    }
    for (n, e) in [(100, Works), (500, Either)] {
        add(format!("{n} UNION ALL"), joined(|i| format!("SELECT {i} AS x"), " UNION ALL ", n), e);
    }
    for (n, e) in [(100, Works), (500, Either), (5000, Either)] {
        add(
            format!("{n}-term OR"),
            format!("SELECT count() AS c FROM events WHERE {}", joined(|i| format!("n = {i}"), " OR ", n)),
            e,
        );
        add(format!("{n}-term +"), format!("SELECT {} AS x", joined(|_| "1".to_string(), " + ", n)), e);
    }
    add(
        "1000-term AND".into(),
        format!("SELECT count() AS c FROM events WHERE {}", joined(|i| format!("n != {}", 1000 + i), " AND ", 1000)),
        Either,
    );
    add(
        "1000-term string concatenation ||".into(),
        format!("SELECT {} AS x", joined(|_| "'a'".to_string(), " || ", 1000)),
        Either,
    );
    for (n, e) in [(10, Works), (50, Either), (500, Refused)] {
        add(
            format!("{n} nested subqueries"),
            format!("SELECT x FROM {} AS t", nested("(SELECT x FROM ", "(SELECT 1 AS x)", " AS t)", n)),
            e,
        );
        add(
            format!("{n} nested IN subqueries"),
            format!(
                "SELECT count() AS c FROM events WHERE n IN {}",
                nested("(SELECT n FROM events WHERE n IN ", "(SELECT 1)", ")", n)
            ),
            e,
        );
    }
    for (n, e) in [(10, Works), (100, Either), (1000, Refused)] {
        add(format!("{n} nested CASE"), format!("SELECT {} AS x", nested("CASE WHEN 1 = 1 THEN ", "1", " END", n)), e);
        add(format!("{n} nested if()"), format!("SELECT {} AS x", nested("if(1 = 1, ", "1", ", 0)", n)), e);
    }
    add(
        "10,000-item IN list".into(),
        format!("SELECT count() AS c FROM events WHERE n IN ({})", joined(|i| i.to_string(), ",", 10_000)),
        Works,
    );
    add(
        "10,000-item IN array".into(),
        format!("SELECT count() AS c FROM events WHERE n IN [{}]", joined(|i| i.to_string(), ", ", 10_000)),
        Works,
    );
    add(
        "10,000-item string IN list".into(),
        format!("SELECT count() AS c FROM events WHERE secret IN ({})", joined(|i| format!("'s{i}'"), ",", 10_000)),
        Works,
    );
    for n in [100, 1000, 20_000] {
        add(format!("{n} unbalanced `IN [`"), format!("SELECT 1 {}", "IN [".repeat(n)), Refused);
        add(format!("{n} unbalanced `IN (`"), format!("SELECT 1 {}", "IN (".repeat(n)), Refused);
    }
    add("1000 nested arrays".into(), format!("SELECT {} AS x", nested("[", "1", "]", 1000)), Refused);
    add("50 nested arrays".into(), format!("SELECT {} AS x", nested("[", "1", "]", 50)), Either);
    add("1000 nested tuples".into(), format!("SELECT {} AS x", nested("tuple(", "1", ")", 1000)), Refused);
    add("100,000-character identifier".into(), format!("SELECT 1 AS {}", "a".repeat(100_000)), Either);
    add("1,000,000-character backticked identifier".into(), format!("SELECT 1 AS `{}`", "b".repeat(1_000_000)), Either);
    add("1,000,000-character table name".into(), format!("SELECT * FROM {}", "t".repeat(1_000_000)), Refused);
    add(
        "2,000,000-character string literal".into(),
        format!("SELECT length('{}') AS x", "c".repeat(2_000_000)),
        Either,
    );
    add("5,000 columns".into(), format!("SELECT {}", joined(|i| format!("{i} AS c{i}"), ", ", 5000)), Either);
    add(
        "500 chained CTEs".into(),
        format!(
            "WITH c0 AS (SELECT 1 AS x), {} SELECT x FROM c499",
            joined(|i| format!("c{} AS (SELECT x FROM c{})", i + 1, i), ", ", 499)
        ),
        Either,
    );
    add("200 nested CTE definitions".into(), nested("WITH a AS (", "SELECT 1 AS x", ") SELECT x FROM a", 200), Refused);
    add(
        "1000 scalar WITHs".into(),
        format!(
            "WITH {} SELECT w999 AS x",
            joined(|i| if i == 0 { "1 AS w0".to_string() } else { format!("w{} + 1 AS w{i}", i - 1) }, ", ", 1000)
        ),
        Either,
    );
    add(
        "1000 JOINs".into(),
        format!(
            "SELECT count() AS c FROM (SELECT 1 AS k) AS t0 {}",
            joined(|i| format!("JOIN (SELECT 1 AS k) AS t{} ON t0.k = t{}.k", i + 1, i + 1), " ", 1000)
        ),
        Either,
    );
    add(
        "1000 nested lambda-free arrayMap-like calls".into(),
        format!("SELECT {} AS x", nested("length(toString(", "1", "))", 1000)),
        Refused,
    );
    add(
        "template: 1000 nested parentheses".into(),
        format!("%\nSELECT {{{{ {} }}}} AS x", nested("(", "1", ")", 1000)),
        Refused,
    );
    add(
        "template: 1000 nested ifs".into(),
        format!("%\nSELECT 1 {} AS x", nested("{% if 1 %}", "", "{% end %}", 1000)),
        Refused,
    );
    add(
        "template: 5000-term + in an expression".into(),
        format!("%\nSELECT {{{{ {} }}}} AS x", joined(|_| "1".to_string(), " + ", 5000)),
        Either,
    );
    v
}

/// One crash attempt against the child server.
struct DeepCase {
    name: String,
    req: Req,
    expect: Expect,
    /// Sent with a JWT filtered to tenant 1 (its SQL is then rewritten and printed back) instead of the admin token.
    filtered_jwt: bool,
}

fn deep(name: impl Into<String>, req: Req, expect: Expect) -> DeepCase {
    DeepCase { name: name.into(), req, expect, filtered_jwt: false }
}

/// Sends each case to the child server, checks the expectation, then that `/v0/health` answers within 1 s. A dead
/// or stuck process is recorded as a CRASH and replaced.
async fn run_deep_cases(p: &mut Proc, cases: &[DeepCase]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let token = if case.filtered_jwt {
            sign(
                &p.admin,
                &claims(
                    &workspace_of(&p.admin),
                    json!([{"type": "DATASOURCES:READ", "resource": "events", "filter": "tenant = 1"}]),
                ),
            )
        } else {
            p.admin.clone()
        };
        let started = Instant::now();
        let verdict = match send(&p.url, Some(&token), &case.req, Duration::from_secs(15)).await {
            Err(e) => Err(e),
            Ok(r) => match (case.expect, r.status) {
                (_, s) if (400..500).contains(&s) && !json_error(&r.body) => {
                    Err(format!("{s} without a JSON error: {}", excerpt(&r.body)))
                }
                (Expect::Works, 200) | (Expect::Refused | Expect::Either, 400..=499) | (Expect::Either, 200) => Ok(()),
                (Expect::Works, s) => Err(format!("ordinary SQL must work (200), got {s}: {}", excerpt(&r.body))),
                (Expect::Refused, s) => Err(format!("must be refused with a 4xx, got {s}: {}", excerpt(&r.body))),
                (Expect::Either, s) => Err(format!("200 or a 4xx required, got {s}: {}", excerpt(&r.body))),
            },
        };
        let took = started.elapsed();
        let mut dead = false;
        let verdict = match health_within(&p.url, Duration::from_secs(1)).await {
            Ok(_) => verdict,
            Err(h) => {
                dead = true;
                let exit = p
                    .exited()
                    .map(|s| format!("process exited ({s})"))
                    .unwrap_or_else(|| "process alive but unresponsive".into());
                Err(format!(
                    "CRASH: {h}; {exit}; log: {}; request: {}",
                    p.log_tail(),
                    verdict.err().unwrap_or_else(|| "answered".into())
                ))
            }
        };
        if verbose() {
            eprintln!(
                "[red_team] {} ({took:.1?}) -> {}",
                case.name,
                verdict.as_ref().err().cloned().unwrap_or_else(|| "ok".into())
            );
        }
        if let Err(e) = verdict {
            failures.push(format!("[{}] ({took:.1?}) {e}", case.name));
        }
        if dead {
            p.respawn().await;
        }
    }
    failures
}

/// The workspace id inside an admin token (`p.<base64 {"u": id, …}>.<sig>`).
fn workspace_of(admin: &str) -> String {
    use base64::Engine as _;
    let payload = admin.split('.').nth(1).unwrap_or_default();
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).unwrap_or_default();
    serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v["u"].as_str().map(str::to_string)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_and_wide_queries_never_crash_the_server() {
    let _serial = SERIAL.lock().await;
    let mut p = Proc::spawn_short_timeout().await;
    seed(&p.url, &p.admin).await;
    // CONTROL: a plain query works and the server is healthy.
    small_query_within(&p.url, &p.admin, Duration::from_secs(5)).await.expect("CONTROL: SELECT 1 works");
    let mut cases: Vec<DeepCase> = deep_queries()
        .into_iter()
        .map(|(d, sql, e)| deep(format!("5 /v0/sql POST body, {d}"), Req::text("/v0/sql", &[], &sql), e))
        .collect();
    // The same shapes through a pipe's q, and through a filtered JWT (whose SQL is rewritten and printed back).
    for (n, e) in [(100, Expect::Works), (5000, Expect::Either)] {
        let sql = format!("SELECT count() AS c FROM _ WHERE {}", joined(|i| format!("n = {i}"), " OR ", n));
        cases.push(deep(
            format!("5 pipe q, {n}-term OR over _"),
            Req::form("/v0/pipes/per_tenant.json", &[], &[("q", &sql)]),
            e,
        ));
        let sql = format!("SELECT count() AS c FROM events WHERE {}", joined(|i| format!("n = {i}"), " OR ", n));
        cases.push(DeepCase {
            filtered_jwt: true,
            ..deep(format!("5 filtered JWT /v0/sql, {n}-term OR"), Req::text("/v0/sql", &[], &sql), e)
        });
    }
    for (n, e) in [(20, Expect::Works), (200, Expect::Either), (1200, Expect::Refused)] {
        let sql = format!("SELECT {} AS x FROM _", nested("abs(", "n", ")", n));
        cases.push(deep(
            format!("5 pipe q, {n} nested calls over _"),
            Req::form("/v0/pipes/per_tenant.json", &[], &[("q", &sql)]),
            e,
        ));
        let sql = format!("SELECT {} AS x FROM events", nested("abs(", "n", ")", n));
        cases.push(DeepCase {
            filtered_jwt: true,
            ..deep(format!("5 filtered JWT /v0/sql, {n} nested calls"), Req::text("/v0/sql", &[], &sql), e)
        });
    }
    // Deep JSON in a body and in template_parameters.
    let deep_json = nested("[", "1", "]", 100_000);
    cases.push(deep(
        "5 JSON body nested 100,000 deep",
        Req {
            post: true,
            path: "/v0/sql".into(),
            query: vec![],
            payload: Payload::RawJson(format!("{{\"q\": \"SELECT 1\", \"x\": {deep_json}}}")),
        },
        Expect::Refused,
    ));
    cases.push(deep(
        "5 template_parameters nested 100,000 deep",
        Req::form("/v0/pipes/per_tenant.json", &[], &[("template_parameters", &format!("{{\"x\": {deep_json}}}"))]),
        Expect::Refused,
    ));
    // The 10,000-item lists must answer, and their planning takes a debug build 0.4 s on an idle machine but past 3 s
    // on two cores that other tests load: they run on a server of their own with a 30 s limit (a longer limit for
    // every case lets the heavy ones before them run on and starve the rest).
    let total = cases.len();
    let (wide, cases): (Vec<DeepCase>, Vec<DeepCase>) = cases.into_iter().partition(|c| c.name.contains("10,000-item"));
    let mut failures = run_deep_cases(&mut p, &cases).await;
    let mut roomy = match Proc::spawn(&["--query-timeout-secs", "30"]).await {
        Ok(p) => p,
        Err(_) => Proc::spawn(&[]).await.expect("tinybird-local starts"),
    };
    seed(&roomy.url, &roomy.admin).await;
    failures.extend(run_deep_cases(&mut roomy, &wide).await);
    report("deep_and_wide_queries_never_crash_the_server", total, &failures);
}

// ---------------------------------------------------------------------------------------------------------------
// 6. Stalls: huge parameter lists, cross joins
// ---------------------------------------------------------------------------------------------------------------

/// Probes `/v0/health` and `SELECT 1` every 200 ms for `window`; each must answer within 1 s.
async fn probe_responsive(url: &str, admin: &str, window: Duration, what: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let started = Instant::now();
    let mut probes = 0;
    while started.elapsed() < window {
        probes += 1;
        if let Err(e) = health_within(url, Duration::from_secs(1)).await {
            failures.push(format!("[6 {what}] probe {probes} at {:.1?}: {e}", started.elapsed()));
        }
        if let Err(e) = small_query_within(url, admin, Duration::from_secs(1)).await {
            failures.push(format!("[6 {what}] probe {probes} at {:.1?}: {e}", started.elapsed()));
        }
        if failures.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    failures
}

/// Waits for spawned attack requests; each must have finished, with 200 or a 4xx, within its own timeout.
async fn collect_finished(
    handles: Vec<(String, tokio::task::JoinHandle<Result<Answer, String>>)>,
    forbidden: &[&str],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, h) in handles {
        match h.await.unwrap() {
            Err(e) => failures.push(format!("[{name}] {e}")),
            Ok(r) if r.status == 414 || r.status == 431 || r.status == 413 => {}
            Ok(r) => {
                if let Err(e) = check_no_leak(r.status, &r.body, forbidden) {
                    failures.push(format!("[{name}] {e}"));
                }
            }
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_parameter_lists_do_not_stall_the_server() {
    let _serial = SERIAL.lock().await;
    let p = Proc::spawn(&[]).await.expect("tinybird-local starts");
    seed(&p.url, &p.admin).await;
    let control = probe_responsive(&p.url, &p.admin, Duration::from_millis(300), "CONTROL before the attack").await;
    assert!(control.is_empty(), "{control:?}");
    // As many distinct pairs as a URL may carry (http caps URIs near 64 KiB), and 200,000 distinct pairs in a
    // form body (about 2 MB, well under the 10 MB body limit).
    let url_pairs: String = (0..5_000).map(|i| format!("&u{i}=1")).collect();
    let form_body: String = (0..200_000).map(|i| format!("k{i}=1&")).collect::<String>() + "q=SELECT+1";
    let json_body: String = {
        let mut s = String::from("{\"q\": \"SELECT 1\"");
        for i in 0..200_000 {
            s.push_str(&format!(", \"j{i}\": 1"));
        }
        s.push('}');
        s
    };
    let huge_url_pairs: String = (0..200_000).map(|i| format!("&a{i}=1")).collect();
    let attacks: Vec<(String, String, &'static str, String)> = vec![
        (
            "6 /v0/sql: 5,000 URL pairs + 200,000 form pairs".into(),
            format!("/v0/sql?q=SELECT+1{url_pairs}"),
            "application/x-www-form-urlencoded",
            form_body.clone(),
        ),
        (
            "6 per_tenant: 5,000 URL pairs + 200,000 form pairs".into(),
            format!("/v0/pipes/per_tenant.json?tenant=1{url_pairs}"),
            "application/x-www-form-urlencoded",
            form_body.clone(),
        ),
        (
            "6 /v0/sql: 200,000 JSON keys".into(),
            format!("/v0/sql?x=1{url_pairs}"),
            "application/json",
            json_body.clone(),
        ),
    ];
    let total = attacks.len() + 1;
    let mut handles = Vec::new();
    // First, alone: a 1.9 MB URL (200,000 pairs). HTTP clients refuse to send it, so it goes through a raw socket;
    // the answer (414/431 is fine) must come at once.
    {
        let head = format!(
            "GET /v0/sql?q=SELECT+1{huge_url_pairs} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            p.admin
        );
        let r = raw_request(&p.url, head.into_bytes(), Duration::from_secs(3)).await;
        handles.push(("6 /v0/sql: 200,000 URL pairs (1.9 MB URL)".to_string(), tokio::spawn(async move { r })));
    }
    for (name, path, content_type, body) in attacks {
        let (url, admin) = (p.url.clone(), p.admin.clone());
        handles.push((
            name,
            tokio::spawn(async move {
                let r = client()
                    .post(format!("{url}{path}"))
                    .bearer_auth(&admin)
                    .header("content-type", content_type)
                    .body(body)
                    .timeout(Duration::from_secs(6))
                    .send()
                    .await
                    .map_err(|e| describe_reqwest(&e))?;
                let status = r.status().as_u16();
                let body = r.text().await.map_err(|e| describe_reqwest(&e))?;
                Ok(Answer { status, body })
            }),
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut failures =
        probe_responsive(&p.url, &p.admin, Duration::from_secs(3), "health while huge parameter lists are parsed")
            .await;
    failures.extend(collect_finished(handles, &[]).await);
    report("huge_parameter_lists_do_not_stall_the_server", total, &failures);
}

/// Sends raw bytes over a fresh connection (for requests an HTTP client will not build) and reads the answer.
async fn raw_request(base: &str, bytes: Vec<u8>, timeout: Duration) -> Result<Answer, String> {
    let addr = base.trim_start_matches("http://").to_string();
    let exchange = async move {
        let mut socket =
            tokio::net::TcpStream::connect(&addr).await.map_err(|e| format!("DROPPED: cannot connect ({e})"))?;
        // The server may answer (414/431) and close before reading everything: keep going to read its answer.
        let _ = socket.write_all(&bytes).await;
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer).await;
        let text = String::from_utf8_lossy(&answer).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("DROPPED connection with no HTTP answer ({} bytes)", answer.len()))?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        Ok(Answer { status, body })
    };
    tokio::time::timeout(timeout, exchange).await.unwrap_or_else(|_| Err("STALL: no answer in time".into()))
}

/// Seeds 5,000 more rows into `events` (bulk rows, no markers).
async fn seed_bulk(url: &str, admin: &str) {
    let body: String = (0..5_000)
        .map(|i| format!("{{\"tenant\": {}, \"secret\": \"bulk\", \"n\": {}}}\n", 1 + i % 2, 1000 + i))
        .collect();
    let r = client()
        .post(format!("{url}/v0/events?name=events&wait=true"))
        .bearer_auth(admin)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "seeding bulk rows");
}

// NOTE for the server engineer: `--query-timeout-secs N` does not exist yet. The test assumes it: a query running
// longer than N seconds ends with a 4xx JSON error (408 as Tinybird's "Timeout exceeded" suggests), and its work
// stops (health and small queries keep answering within 1 s while heavy queries run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_joins_time_out_and_health_stays_responsive() {
    let _serial = SERIAL.lock().await;
    let mut failures = Vec::new();
    let timeout_secs = 2;
    let p = match Proc::spawn(&["--query-timeout-secs", &timeout_secs.to_string()]).await {
        Ok(p) => p,
        Err(e) => {
            failures.push(format!(
                "[6 server option] `tinybird-local --query-timeout-secs {timeout_secs}` is not supported: {e}"
            ));
            // Still measure what happens without it.
            Proc::spawn(&[]).await.expect("tinybird-local starts")
        }
    };
    seed(&p.url, &p.admin).await;
    seed_bulk(&p.url, &p.admin).await;
    failures
        .extend(probe_responsive(&p.url, &p.admin, Duration::from_millis(300), "CONTROL before the cross joins").await);
    // The filter stops the engine from answering count() from table statistics: the rows must really be joined.
    let cross = "SELECT count() AS c FROM events a, events b, events c, events d WHERE a.n + b.n + c.n + d.n < 0";
    let cross_pipe = "SELECT count() AS c FROM _ a, _ b, _ c, _ d WHERE a.n + b.n + c.n + d.n < 0";
    let attacks: Vec<(String, Req)> = vec![
        ("6 4-way self cross join, /v0/sql GET".into(), Req::get("/v0/sql", &[("q", cross)])),
        ("6 4-way self cross join, /v0/sql POST".into(), Req::text("/v0/sql", &[], cross)),
        (
            "6 4-way cross join of a pipe's result, pipe q".into(),
            Req::get("/v0/pipes/per_tenant.json", &[("q", cross_pipe)]),
        ),
    ];
    let total = attacks.len();
    let limit = Duration::from_secs(timeout_secs + 8);
    let mut handles = Vec::new();
    for (name, req) in attacks {
        let (url, admin) = (p.url.clone(), p.admin.clone());
        handles.push((name, tokio::spawn(async move { send(&url, Some(&admin), &req, limit).await })));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    failures.extend(
        probe_responsive(&p.url, &p.admin, Duration::from_secs(timeout_secs), "health while cross joins run").await,
    );
    for (name, h) in handles {
        match h.await.unwrap() {
            Err(e) => failures.push(format!("[{name}] must end with a timeout error within {limit:?}: {e}")),
            Ok(r) if (400..500).contains(&r.status) && json_error(&r.body) => {}
            Ok(r) => failures.push(format!(
                "[{name}] must end with a 4xx JSON timeout error, got {} {}",
                r.status,
                excerpt(&r.body)
            )),
        }
    }
    // Once the heavy queries have ended, their work has stopped too.
    failures
        .extend(probe_responsive(&p.url, &p.admin, Duration::from_secs(1), "health after the cross joins ended").await);
    report("cross_joins_time_out_and_health_stays_responsive", total, &failures);
}

// ---------------------------------------------------------------------------------------------------------------
// 7. CORS
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn cors_never_hands_the_admin_token_to_another_origin() {
    let ctx = Ctx::new().await;
    let evil_origins = [
        "https://evil.example",
        "null",
        "http://localhost.evil.example",
        "http://127.0.0.1.evil.example",
        "https://EVIL.example",
    ];
    let mut failures = Vec::new();
    let mut total = 0;
    // CONTROL: /tokens does hand out the admin token (so a CORS leak would matter).
    let r = client().get(format!("{}/tokens", ctx.url())).send().await.unwrap();
    let control = r.text().await.unwrap();
    assert!(control.contains(ctx.admin()), "CONTROL: /tokens serves the admin token: {control}");
    let allowed = |h: &reqwest::header::HeaderMap, origin: &str| -> Option<String> {
        let v = h.get("access-control-allow-origin")?.to_str().unwrap_or("<invalid>").to_string();
        (v == "*" || v.eq_ignore_ascii_case(origin)).then_some(v)
    };
    // Paths that may reach the /tokens handler; a path answering 404 exposes nothing, whatever its headers say.
    let token_paths = ["/tokens", "/tokens/", "/tokens?x=1", "//tokens", "/tokens//", "/./tokens", "/v0/../tokens"];
    let mut serving = Vec::new();
    for path in token_paths {
        let r = client().get(format!("{}{path}", ctx.url())).send().await.unwrap();
        if r.text().await.unwrap_or_default().contains(ctx.admin()) {
            serving.push(path);
        }
    }
    assert!(serving.contains(&"/tokens"), "CONTROL: GET /tokens serves the admin token");
    for origin in evil_origins {
        for path in token_paths {
            total += 1;
            let r = client().get(format!("{}{path}", ctx.url())).header("origin", origin).send().await.unwrap();
            let cors = allowed(r.headers(), origin);
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            if let Some(v) = cors.filter(|_| body.contains(ctx.admin())) {
                failures.push(format!("[7 GET {path} Origin: {origin}] Access-Control-Allow-Origin: {v} on an answer holding the admin token ({status})"));
            }
            total += 1;
            let r = client()
                .request(reqwest::Method::OPTIONS, format!("{}{path}", ctx.url()))
                .header("origin", origin)
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization")
                .send()
                .await
                .unwrap();
            if let Some(v) = allowed(r.headers(), origin).filter(|_| serving.contains(&path)) {
                failures.push(format!("[7 preflight OPTIONS {path} Origin: {origin}] Access-Control-Allow-Origin: {v} (status {}) for a path serving the admin token", r.status()));
            }
        }
        // Routes that answer with token values to an admin: never with credentials to another origin.
        for path in ["/v0/tokens", "/v0/pipes/per_tenant.json", "/v0/sql?q=SELECT+1"] {
            total += 1;
            let r = client()
                .get(format!("{}{path}", ctx.url()))
                .header("origin", origin)
                .bearer_auth(ctx.admin())
                .send()
                .await
                .unwrap();
            if r.headers()
                .get("access-control-allow-credentials")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
            {
                failures.push(format!("[7 GET {path} Origin: {origin}] Access-Control-Allow-Credentials: true"));
            }
        }
    }
    // DNS rebinding: a page on evil.example that resolves to 127.0.0.1 reads /tokens same-origin; the Host header
    // gives it away.
    for host in ["evil.example", "evil.example:7181", "127.0.0.1.evil.example"] {
        total += 1;
        let r = client().get(format!("{}/tokens", ctx.url())).header("host", host).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        if body.contains(ctx.admin()) {
            failures.push(format!(
                "[7 DNS rebinding: GET /tokens with Host: {host}] answered {status} with the admin token"
            ));
        }
    }
    // CONTROL: the API itself stays usable from a browser on another origin, without credentials.
    let r = client()
        .get(format!("{}/v0/pipes/per_tenant.json", ctx.url()))
        .header("origin", "https://app.example")
        .bearer_auth(ctx.pipe_t1())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "CONTROL: a JWT from a browser app still works");
    report("cors_never_hands_the_admin_token_to_another_origin", total, &failures);
}

// ---------------------------------------------------------------------------------------------------------------
// 8. URL imports
// ---------------------------------------------------------------------------------------------------------------

/// A TCP server on 127.0.0.1 counting connections; it answers each with a one-row CSV. Returns (port, hits).
async fn spy_server(ip: &str) -> Option<(u16, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.ok()?;
    let port = listener.local_addr().ok()?.port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let body = "1,SPY_ROW,1\n";
                let _ = socket
                    .write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes())
                    .await;
            });
        }
    });
    Some((port, hits))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_imports_refuse_private_addresses_and_other_schemes() {
    let ctx = Ctx::new().await;
    ctx.control_markers_exist().await;
    let (spy, hits) = spy_server("127.0.0.1").await.expect("spy server");
    let spy6 = spy_server("::1").await;
    let own_port = ctx.url().rsplit(':').next().unwrap().to_string();
    let mut urls: Vec<String> = vec![
        format!("http://127.0.0.1:{own_port}/tokens"),
        format!("http://localhost:{own_port}/tokens"),
        format!("http://127.0.0.1:{spy}/x.csv"),
        format!("http://localhost:{spy}/x.csv"),
        format!("http://LOCALHOST:{spy}/x.csv"),
        format!("http://localhost.:{spy}/x.csv"),
        format!("HTTP://127.0.0.1:{spy}/x.csv"),
        format!("http://0.0.0.0:{spy}/x.csv"),
        format!("http://0:{spy}/x.csv"),
        format!("http://2130706433:{spy}/x.csv"),
        format!("http://0x7f000001:{spy}/x.csv"),
        format!("http://0177.0.0.1:{spy}/x.csv"),
        format!("http://127.1:{spy}/x.csv"),
        format!("http://127.0.0.2:{spy}/x.csv"),
        format!("http://[::ffff:127.0.0.1]:{spy}/x.csv"),
        format!("http://user@127.0.0.1:{spy}/x.csv"),
        format!("http://evil.example@127.0.0.1:{spy}/x.csv"),
        format!("https://127.0.0.1:{spy}/x.csv"),
        "http://10.0.0.1/x.csv".into(),
        "http://192.168.0.1/x.csv".into(),
        "http://172.16.0.1/x.csv".into(),
        "http://100.64.0.1/x.csv".into(),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://[fd00::1]/x.csv".into(),
        "http://[fe80::1]/x.csv".into(),
        "file:///etc/passwd".into(),
        "file://localhost/etc/passwd".into(),
        "FILE:///etc/passwd".into(),
        format!("ftp://127.0.0.1:{spy}/x.csv"),
        format!("gopher://127.0.0.1:{spy}/x"),
        "data:text/csv,1,x,1".into(),
        "/etc/passwd".into(),
        "../../../../etc/passwd".into(),
    ];
    let v6 = match &spy6 {
        Some((port6, _)) => *port6,
        None => spy,
    };
    urls.push(format!("http://[::1]:{v6}/x.csv"));
    urls.push(format!("http://[0:0:0:0:0:0:0:1]:{v6}/x.csv"));
    let append_jwt = ctx.append_only();
    let mut handles = Vec::new();
    for (i, u) in urls.iter().enumerate() {
        let token = if i % 3 == 2 { append_jwt.clone() } else { ctx.admin().to_string() };
        let form = [("name", "events"), ("mode", "append"), ("url", u.as_str())];
        let req = match i % 3 {
            0 => Req::text("/v0/datasources", &form, ""),
            1 => Req::form("/v0/datasources", &[], &form),
            _ => Req::text("/v0/datasources", &form, ""),
        };
        let url = ctx.url().to_string();
        let name = format!("8 import url={u} ({})", if i % 3 == 2 { "append JWT" } else { "admin" });
        handles.push((
            name,
            tokio::spawn(async move {
                let started = Instant::now();
                let r = send(&url, Some(&token), &req, Duration::from_secs(5)).await;
                (r, started.elapsed())
            }),
        ));
    }
    let total = handles.len();
    let mut failures = Vec::new();
    for (name, h) in handles {
        let (r, took) = h.await.unwrap();
        match r {
            Err(e) => failures.push(format!("[{name}] {e}")),
            Ok(r) => {
                let mut verdict = check_refused(r.status, &r.body, &[PASSWD, "SPY_ROW"]);
                if verdict.is_ok() && took > Duration::from_secs(2) {
                    verdict = Err(format!(
                        "refused only after {took:.1?}: it was fetched (or tried) instead of refused up front"
                    ));
                }
                if verdict.is_ok() && r.body.contains(ctx.admin()) {
                    verdict = Err("the answer contains the admin token".into());
                }
                if let Err(e) = verdict {
                    failures.push(format!("[{name}] {e}"));
                }
            }
        }
    }
    let n = hits.load(Ordering::SeqCst) + spy6.as_ref().map(|(_, h)| h.load(Ordering::SeqCst)).unwrap_or(0);
    if n > 0 {
        failures.push(format!("[8 loopback spy] the server connected {n} time(s) to a loopback address"));
    }
    let r = ctx.admin_sql("SELECT count() AS c FROM events FORMAT JSON").await;
    if !r.body.contains(&format!("\"c\":{}", ROWS_PER_TENANT * 2)) {
        failures.push(format!("[8 state] events changed: {}", excerpt(&r.body)));
    }
    let r = ctx.admin_sql("SELECT count() AS c FROM events_quarantine FORMAT JSON").await;
    if !r.body.contains("\"c\":1") {
        failures.push(format!("[8 state] events_quarantine changed (imported text?): {}", excerpt(&r.body)));
    }
    report("url_imports_refuse_private_addresses_and_other_schemes", total, &failures);
}

/// A server streaming `total` bytes of CSV (chunked, or with a Content-Length); counts the bytes it got out.
async fn streaming_server(total: u64, content_length: bool) -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicU64::new(0));
    let s = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let request = String::from_utf8_lossy(&buf);
                if request.starts_with("GET /small.csv") {
                    let body = format!("1,{T1EV}from_url,42\n");
                    let _ = socket
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                    return;
                }
                let head = if content_length {
                    format!("HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {total}\r\n\r\n")
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
                };
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let line = "1,bulk,1\n".repeat(7282); // 65,538 bytes
                let mut written = 0u64;
                while written < total {
                    let chunk = if content_length { line.clone() } else { format!("{:x}\r\n{line}\r\n", line.len()) };
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    written += line.len() as u64;
                    s.store(written, Ordering::SeqCst);
                }
                if !content_length {
                    let _ = socket.write_all(b"0\r\n\r\n").await;
                }
            });
        }
    });
    (port, sent)
}

// NOTE for the server engineer: the binary flags `--allow-private-urls` and `--max-body-mb N` do not exist yet;
// they stand for `LocalServer::builder().allow_private_urls(true).max_body_bytes(n)` (a test can only import from
// a server it spawns itself, on 127.0.0.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_import_larger_than_the_limit_is_cut_off() {
    let _serial = SERIAL.lock().await;
    let limit: u64 = 1 << 20;
    let p = match Proc::spawn(&["--allow-private-urls", "--max-body-mb", &(limit >> 20).to_string()]).await {
        Ok(p) => p,
        Err(e) => panic!(
            "8 `tinybird-local --allow-private-urls --max-body-mb {}` is not supported, so a download larger than the limit cannot be tested: {e}",
            limit >> 20
        ),
    };
    seed(&p.url, &p.admin).await;
    let mut failures = Vec::new();
    let total_bytes: u64 = 256 << 20;
    let (chunked_port, chunked_sent) = streaming_server(total_bytes, false).await;
    let (length_port, length_sent) = streaming_server(total_bytes, true).await;
    // CONTROL: with private URLs allowed, a small import from the local server works.
    let r = send(
        &p.url,
        Some(&p.admin),
        &Req::text(
            "/v0/datasources",
            &[("name", "events"), ("mode", "append"), ("url", &format!("http://127.0.0.1:{chunked_port}/small.csv"))],
            "",
        ),
        Duration::from_secs(20),
    )
    .await
    .expect("CONTROL import answers");
    assert_eq!(r.status, 200, "CONTROL: a small import from 127.0.0.1 works once private URLs are allowed: {}", r.body);
    for (what, port, sent) in
        [("chunked", chunked_port, chunked_sent), ("with Content-Length", length_port, length_sent)]
    {
        let url = format!("http://127.0.0.1:{port}/big.csv");
        let started = Instant::now();
        let (purl, admin) = (p.url.clone(), p.admin.clone());
        let h = tokio::spawn(async move {
            send(
                &purl,
                Some(&admin),
                &Req::text("/v0/datasources", &[("name", "events"), ("mode", "append"), ("url", &url)], ""),
                Duration::from_secs(20),
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Err(e) = health_within(&p.url, Duration::from_secs(1)).await {
            failures.push(format!("[8 {what} 256 MiB download] health during the import: {e}"));
        }
        let r = h.await.unwrap();
        let took = started.elapsed();
        match r {
            Err(e) => failures.push(format!("[8 {what} 256 MiB download] {e}")),
            Ok(r) if r.status == 413 && json_error(&r.body) => {}
            Ok(r) => failures.push(format!(
                "[8 {what} 256 MiB download] expected a 413 JSON error, got {} {}",
                r.status,
                excerpt(&r.body)
            )),
        }
        if took > Duration::from_secs(5) {
            failures.push(format!("[8 {what} 256 MiB download] took {took:.1?}"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = sent.load(Ordering::SeqCst);
        if got > 32 << 20 {
            failures.push(format!(
                "[8 {what} 256 MiB download] the server read {} MiB of a {} MiB limit before refusing",
                got >> 20,
                limit >> 20
            ));
        }
    }
    report("url_import_larger_than_the_limit_is_cut_off", 3, &failures);
}

// ---------------------------------------------------------------------------------------------------------------
// 9. Smaller ones: row counts, duplicate scopes, two filters, /v1/build file names, bad JWTs on every route
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn scope_edge_cases_keep_the_most_restrictive_reading() {
    let ctx = Ctx::new().await;
    ctx.control_markers_exist().await;
    ctx.control_tokens_work().await;
    let mut failures = Vec::new();
    let mut total = 0;
    // Datasource detail: the row count must not count rows the JWT cannot read.
    let r = ctx.get(ctx.admin(), Req::get("/v0/datasources/events", &[])).await;
    let admin_count = serde_json::from_str::<Value>(&r.body).ok().and_then(|v| v["statistics"]["row_count"].as_u64());
    assert_eq!(
        admin_count,
        Some((ROWS_PER_TENANT * 2) as u64),
        "CONTROL: the admin sees the full row count: {}",
        r.body
    );
    for (what, token) in [("filtered JWT", ctx.filtered()), ("filtered_both JWT", ctx.filtered_both())] {
        for path in ["/v0/datasources/events", "/v0/datasources/events/", "/v0/datasources"] {
            total += 1;
            let r = ctx.get(&token, Req::get(path, &[])).await;
            let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            let counts: Vec<u64> = std::iter::once(&v)
                .chain(v["datasources"].as_array().into_iter().flatten())
                .filter(|d| d["name"] == "events")
                .filter_map(|d| d["statistics"]["row_count"].as_u64())
                .collect();
            if counts.iter().any(|c| *c != ROWS_PER_TENANT as u64) {
                failures.push(format!("[9 {what} GET {path}] row_count {counts:?} reveals rows outside its filter (tenant 1 has {ROWS_PER_TENANT})"));
            }
            if let Err(e) = check_no_leak(r.status, &r.body, NOT_FOR_TENANT1) {
                failures.push(format!("[9 {what} GET {path}] {e}"));
            }
        }
    }
    for (what, token, path) in [
        ("pipe JWT", ctx.pipe_t1(), "/v0/datasources/events"),
        ("append-only JWT", ctx.append_only(), "/v0/datasources/events"),
        ("filtered JWT", ctx.filtered(), "/v0/datasources/audit"),
        ("filtered JWT", ctx.filtered(), "/v0/datasources/events_quarantine"),
        ("filtered JWT", ctx.filtered(), "/v0/datasources/orders"),
    ] {
        total += 1;
        let r = ctx.get(&token, Req::get(path, &[])).await;
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        if v["statistics"]["row_count"].is_u64() {
            failures.push(format!("[9 {what} GET {path}] reveals a row count: {} {}", r.status, excerpt(&r.body)));
        }
    }
    // The same pipe listed twice, with and without fixed params, in both orders: tenant stays 1.
    let unpinned_first = ctx.jwt(json!([
        {"type": "PIPES:READ", "resource": "per_tenant"},
        {"type": "PIPES:READ", "resource": "per_tenant", "fixed_params": {"tenant": 1}}
    ]));
    let pinned_first = ctx.jwt(json!([
        {"type": "PIPES:READ", "resource": "per_tenant", "fixed_params": {"tenant": 1}},
        {"type": "PIPES:READ", "resource": "per_tenant"}
    ]));
    let empty_fixed_first = ctx.jwt(json!([
        {"type": "PIPES:READ", "resource": "per_tenant", "fixed_params": {}},
        {"type": "PIPES:READ", "resource": "per_tenant", "fixed_params": {"tenant": 1}}
    ]));
    let mut attacks = Vec::new();
    for (what, token) in [
        ("unpinned scope first", &unpinned_first),
        ("pinned scope first", &pinned_first),
        ("empty fixed_params first", &empty_fixed_first),
    ] {
        for (via, req) in [
            ("endpoint tenant=2", Req::get("/v0/pipes/per_tenant.json", &[("tenant", "2")])),
            ("endpoint POST json tenant=2", Req::json("/v0/pipes/per_tenant.json", &[], json!({"tenant": 2}))),
            (
                "q over _ tenant=2",
                Req::get("/v0/pipes/per_tenant.json", &[("q", "SELECT secret FROM _"), ("tenant", "2")]),
            ),
            (
                "/v0/sql reads per_tenant tenant=2",
                Req::get("/v0/sql", &[("q", "SELECT secret FROM per_tenant"), ("tenant", "2")]),
            ),
            (
                "/v0/sql pipeline tenant=2",
                Req::get("/v0/sql", &[("pipeline", "per_tenant"), ("q", "SELECT secret FROM _"), ("tenant", "2")]),
            ),
        ] {
            attacks.push(attack(
                format!("9 per_tenant listed twice ({what}), {via}"),
                token,
                NOT_FOR_TENANT1_EVENTS,
                req,
            ));
        }
    }
    // Two DATASOURCES:READ scopes on one datasource, in both orders: both filters apply.
    for (what, scopes) in [
        (
            "tenant filter first",
            json!([{"type": "DATASOURCES:READ", "resource": "events", "filter": "tenant = 1"}, {"type": "DATASOURCES:READ", "resource": "events", "filter": "n < 1000"}]),
        ),
        (
            "tenant filter last",
            json!([{"type": "DATASOURCES:READ", "resource": "events", "filter": "n < 1000"}, {"type": "DATASOURCES:READ", "resource": "events", "filter": "tenant = 1"}]),
        ),
        (
            "unfiltered scope first",
            json!([{"type": "DATASOURCES:READ", "resource": "events"}, {"type": "DATASOURCES:READ", "resource": "events", "filter": "tenant = 1"}]),
        ),
        (
            "unfiltered scope last",
            json!([{"type": "DATASOURCES:READ", "resource": "events", "filter": "tenant = 1"}, {"type": "DATASOURCES:READ", "resource": "events"}]),
        ),
        (
            "blank filter last",
            json!([{"type": "DATASOURCES:READ", "resource": "events", "filter": "tenant = 1"}, {"type": "DATASOURCES:READ", "resource": "events", "filter": "  "}]),
        ),
    ] {
        let token = ctx.jwt(scopes);
        for (via, req) in via_sql("SELECT secret FROM events FORMAT JSON").into_iter().take(2) {
            attacks.push(attack(
                format!("9 two DATASOURCES:READ scopes ({what}), {via}"),
                &token,
                NOT_FOR_TENANT1_EVENTS,
                req,
            ));
        }
    }
    total += attacks.len();
    failures.extend(run_attacks(ctx.url(), &attacks).await);
    // Exact rows with two narrowing filters: tenant = 1 AND n >= 2 is T1EV_2, T1EV_3, T1EV_4, whatever the order.
    for (what, scopes) in [
        (
            "tenant, then n",
            json!([{"type": "DATASOURCES:READ", "resource": "events", "filter": "tenant = 1"}, {"type": "DATASOURCES:READ", "resource": "events", "filter": "n >= 2"}]),
        ),
        (
            "n, then tenant",
            json!([{"type": "DATASOURCES:READ", "resource": "events", "filter": "n >= 2"}, {"type": "DATASOURCES:READ", "resource": "events", "filter": "tenant = 1"}]),
        ),
    ] {
        total += 1;
        let token = ctx.jwt(scopes);
        let r = ctx
            .get(&token, Req::get("/v0/sql", &[("q", "SELECT secret FROM events ORDER BY secret FORMAT JSON")]))
            .await;
        let got: Vec<String> = serde_json::from_str::<Value>(&r.body)
            .ok()
            .and_then(|v| {
                v["data"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|r| r["secret"].as_str().map(str::to_string)).collect())
            })
            .unwrap_or_default();
        let want: Vec<String> = (2..ROWS_PER_TENANT).map(|i| format!("{T1EV}{i}")).collect();
        if r.status != 200 || got != want {
            failures.push(format!("[9 two filters ({what})] expected {want:?}, got {} {got:?}", r.status));
        }
    }
    report("scope_edge_cases_keep_the_most_restrictive_reading", total, &failures);
}

fn fixture_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(redteam_dir())
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().to_string(), std::fs::read_to_string(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

fn build_form(files: &[(String, String)]) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new();
    for (name, text) in files {
        form = form.part("data_project://", reqwest::multipart::Part::text(text.clone()).file_name(name.clone()));
    }
    form
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("red_team_{what}_{}_{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Checks the project serves its rows: per_tenant answers tenant 1's rows and orders keeps its rows.
async fn project_intact(url: &str, admin: &str, workspace: &str) -> Result<(), String> {
    let pipe = sign(
        admin,
        &claims(workspace, json!([{"type": "PIPES:READ", "resource": "per_tenant", "fixed_params": {"tenant": 1}}])),
    );
    match send(url, Some(&pipe), &Req::get("/v0/pipes/per_tenant.json", &[]), Duration::from_secs(10)).await {
        Ok(r) if r.status == 200 && r.body.contains(T1EV) => {}
        Ok(r) => return Err(format!("per_tenant no longer answers with its rows: {} {}", r.status, excerpt(&r.body))),
        Err(e) => return Err(format!("per_tenant: {e}")),
    }
    match send(
        url,
        Some(admin),
        &Req::get("/v0/sql", &[("q", "SELECT count() AS c FROM orders FORMAT JSON")]),
        Duration::from_secs(10),
    )
    .await
    {
        Ok(r) if r.body.contains(&format!("\"c\":{}", ROWS_PER_TENANT * 2)) => Ok(()),
        Ok(r) => Err(format!("orders lost rows: {} {}", r.status, excerpt(&r.body))),
        Err(e) => Err(format!("orders: {e}")),
    }
}

#[tokio::test]
async fn build_with_traversal_file_names_keeps_the_project() {
    let legit = fixture_files();
    let evil_ds = "SCHEMA >\n    `x` String\n";
    let outside = TempDir::new("build_outside");
    let abs = outside.0.join("abs_evil.datasource");
    let attacks: Vec<(String, Vec<(String, String)>)> = vec![
        ("project + a part named `..`".into(), [legit.clone(), vec![("..".into(), "garbage".into())]].concat()),
        (
            "project + `../evil.datasource`".into(),
            [legit.clone(), vec![("../evil.datasource".into(), evil_ds.into())]].concat(),
        ),
        (
            "project + `../../evil2.datasource`".into(),
            [legit.clone(), vec![("../../evil2.datasource".into(), evil_ds.into())]].concat(),
        ),
        (
            "project + `..\\evil3.datasource`".into(),
            [legit.clone(), vec![("..\\evil3.datasource".into(), evil_ds.into())]].concat(),
        ),
        (
            "project + an absolute path".into(),
            [legit.clone(), vec![(abs.to_string_lossy().to_string(), evil_ds.into())]].concat(),
        ),
        ("project + `.`".into(), [legit.clone(), vec![(".".into(), "garbage".into())]].concat()),
        ("project + an empty file name".into(), [legit.clone(), vec![("".into(), "garbage".into())]].concat()),
        (
            "project + `events.datasource/..`".into(),
            [legit.clone(), vec![("events.datasource/..".into(), "garbage".into())]].concat(),
        ),
        ("only a part named `..`".into(), vec![("..".into(), "garbage".into())]),
        ("only `../x.datasource`".into(), vec![("../x.datasource".into(), evil_ds.into())]),
        ("only `../per_tenant.pipe` (empty)".into(), vec![("../per_tenant.pipe".into(), String::new())]),
    ];
    let mut failures = Vec::new();
    let total = attacks.len();
    for (what, files) in attacks {
        // A fresh server and data directory per attack, so each is judged on its own.
        let base = TempDir::new("build");
        let data_dir = base.0.join("data");
        let server = LocalServer::builder()
            .resources(redteam_resources())
            .data_dir(&data_dir)
            .start()
            .await
            .expect("server starts");
        seed(server.url(), server.admin_token()).await;
        let (url, admin, workspace) =
            (server.url().to_string(), server.admin_token().to_string(), server.workspace_id().to_string());
        project_intact(&url, &admin, &workspace).await.unwrap_or_else(|e| panic!("CONTROL before {what}: {e}"));
        let r = client().post(format!("{url}/v1/build")).bearer_auth(&admin).multipart(build_form(&files)).send().await;
        match r {
            Err(e) => failures.push(format!("[9 /v1/build {what}] {}", describe_reqwest(&e))),
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                if !(status == 200 || ((400..500).contains(&status) && json_error(&body))) {
                    failures.push(format!("[9 /v1/build {what}] {status} {}", excerpt(&body)));
                }
            }
        }
        if let Err(e) = project_intact(&url, &admin, &workspace).await {
            failures.push(format!("[9 /v1/build {what}] {e}"));
        }
        // Nothing was written outside the data directory's project folder.
        for stray in [
            base.0.join("evil.datasource"),
            data_dir.join("evil.datasource"),
            base.0.join("evil2.datasource"),
            data_dir.join("evil2.datasource"),
            abs.clone(),
            base.0.join("x.datasource"),
            data_dir.join("x.datasource"),
        ] {
            if stray.exists() {
                failures.push(format!("[9 /v1/build {what}] wrote {}", stray.display()));
            }
        }
        if !data_dir.is_dir() {
            failures.push(format!("[9 /v1/build {what}] the data directory is no longer a directory"));
        }
        // The project survives a restart from the data directory.
        server.shutdown().await;
        match LocalServer::builder().resources(redteam_resources()).data_dir(&data_dir).start().await {
            Err(e) => failures.push(format!("[9 /v1/build {what}] the data directory no longer starts a server: {e}")),
            Ok(again) => {
                if let Err(e) = project_intact(again.url(), again.admin_token(), again.workspace_id()).await {
                    failures.push(format!("[9 /v1/build {what}] after a restart: {e}"));
                }
            }
        }
    }
    report("build_with_traversal_file_names_keeps_the_project", total, &failures);
}

#[tokio::test]
async fn bad_jwts_are_refused_on_every_route() {
    let ctx = Ctx::new().await;
    ctx.control_markers_exist().await;
    let routes: Vec<(&str, Req)> = vec![
        ("pipe endpoint", Req::get("/v0/pipes/per_tenant.json", &[("tenant", "2")])),
        ("pipe endpoint POST", Req::form("/v0/pipes/per_tenant.json", &[], &[("tenant", "2")])),
        ("pipe q", Req::get("/v0/pipes/per_tenant.json", &[("q", "SELECT * FROM _")])),
        ("pipe ndjson", Req::get("/v0/pipes/other_pipe.ndjson", &[("org", "2")])),
        ("pipe datafile", Req::get("/v0/pipes/per_tenant.pipe", &[])),
        ("/v0/sql GET", Req::get("/v0/sql", &[("q", "SELECT secret FROM events")])),
        ("/v0/sql POST", Req::text("/v0/sql", &[], "SELECT secret FROM audit")),
        (
            "/v0/sql pipeline",
            Req::get("/v0/sql", &[("pipeline", "per_tenant"), ("q", "SELECT * FROM _"), ("tenant", "2")]),
        ),
        ("/v0/pipes list", Req::get("/v0/pipes", &[])),
        ("/v1/pipes list", Req::get("/v1/pipes", &[])),
        ("/v0/datasources list", Req::get("/v0/datasources", &[])),
        ("datasource detail", Req::get("/v0/datasources/events", &[])),
        ("datasource datafile", Req::get("/v0/datasources/events.datasource", &[])),
        (
            "Events API",
            Req::text(
                "/v0/events",
                &[("name", "events"), ("wait", "true")],
                "{\"tenant\": 2, \"secret\": \"injected\", \"n\": 1}",
            ),
        ),
        ("import", Req::text("/v0/datasources", &[("name", "events"), ("mode", "append")], "2,injected,1\n")),
        ("replace", Req::text("/v0/datasources", &[("name", "events"), ("mode", "replace")], "2,injected,1\n")),
        ("truncate", Req::text("/v0/datasources/events/truncate", &[], "")),
        ("delete", Req::form("/v0/datasources/events/delete", &[], &[("delete_condition", "1 = 1")])),
        (
            "create from schema",
            Req::form("/v0/datasources", &[], &[("name", "newds"), ("mode", "create"), ("schema", "`x` String")]),
        ),
        ("/v0/tokens list", Req::get("/v0/tokens", &[])),
        (
            "/v0/tokens create",
            Req::json(
                "/v0/tokens",
                &[("expiration_time", &in_one_hour().to_string())],
                json!({"name": "x", "scopes": [{"type": "DATASOURCES:READ", "resource": "audit"}]}),
            ),
        ),
        ("/v0/jobs", Req::get("/v0/jobs/anything", &[])),
        ("/v1/deployments", Req::get("/v1/deployments", &[])),
        ("/v1/deployments/1", Req::get("/v1/deployments/1", &[])),
        ("/v1/deployments/1/set-live", Req::text("/v1/deployments/1/set-live", &[], "")),
        ("/v1/workspace", Req::get("/v1/workspace", &[])),
        ("/v1/user/workspaces", Req::get("/v1/user/workspaces", &[])),
        ("/v1/workspaces create", Req::json("/v1/workspaces", &[], json!({"name": "x"}))),
    ];
    let mut failures = Vec::new();
    let mut total = 0;
    let bad = bad_jwts(ctx.admin(), ctx.server.workspace_id());
    for (jwt_name, token) in &bad {
        for (i, (route, req)) in routes.iter().enumerate() {
            total += 1;
            // In the Authorization header, and (every third route) as ?token=.
            let (r, how) = if i % 3 == 0 {
                let mut req = req.clone();
                req.query.push(("token".into(), token.clone()));
                (send(ctx.url(), None, &req, Duration::from_secs(10)).await, "?token=")
            } else {
                (send(ctx.url(), Some(token), req, Duration::from_secs(10)).await, "header")
            };
            let verdict = match r {
                Err(e) => Err(e),
                Ok(r) => match check_refused(r.status, &r.body, NOT_FOR_APPEND_ONLY) {
                    Ok(()) if r.body.contains(ctx.admin()) => Err("the answer contains the admin token".into()),
                    Ok(()) if r.status != 401 && r.status != 403 => {
                        Err(format!("{} instead of 403: {}", r.status, excerpt(&r.body)))
                    }
                    other => other,
                },
            };
            if let Err(e) = verdict {
                failures.push(format!("[9 {jwt_name} JWT on {route} ({how})] {e}"));
            }
        }
    }
    // Nothing was ingested, truncated, deleted or created.
    let r = ctx.admin_sql("SELECT count() AS c FROM events FORMAT JSON").await;
    if !r.body.contains(&format!("\"c\":{}", ROWS_PER_TENANT * 2)) {
        failures.push(format!("[9 state after bad JWTs] events changed: {}", excerpt(&r.body)));
    }
    let r = ctx.admin_sql("SELECT count() AS c FROM newds").await;
    if r.status == 200 {
        failures.push("[9 state after bad JWTs] datasource newds was created".into());
    }
    report("bad_jwts_are_refused_on_every_route", total, &failures);
}

// ---------------------------------------------------------------------------------------------------------------
// 10. Quarantine tables and table functions
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_and_table_functions_stay_closed() {
    let ctx = Ctx::new().await;
    ctx.control_markers_exist().await;
    ctx.control_tokens_work().await;
    let (spy, hits) = spy_server("127.0.0.1").await.expect("spy server");
    let (filtered, pipe, append) = (ctx.filtered(), ctx.pipe_t1(), ctx.append_only());
    let events_reader = ctx.jwt(json!([{"type": "DATASOURCES:READ", "resource": "events"}]));
    let mut attacks = Vec::new();
    let quarantine_sqls = [
        "SELECT * FROM events_quarantine",
        "SELECT secret FROM orders_quarantine",
        "select * from EVENTS_QUARANTINE",
        "SELECT * FROM `events_quarantine`",
        r#"SELECT * FROM "events_quarantine""#,
        "SELECT events.secret FROM events_quarantine AS events",
        "SELECT secret FROM events WHERE secret IN (SELECT secret FROM events_quarantine)",
        "SELECT (SELECT groupArray(secret) FROM events_quarantine) AS s",
        "SELECT secret FROM events UNION ALL SELECT secret FROM events_quarantine",
        "SELECT c__error FROM events_quarantine",
        "SELECT * FROM events_quarantine AS q JOIN events AS e ON 1 = 1",
        "WITH q AS (SELECT * FROM events_quarantine) SELECT secret FROM q",
        "SELECT * FROM /* c */ events_quarantine -- c",
    ];
    for (i, sql) in quarantine_sqls.iter().enumerate() {
        for (who, token, forbidden) in
            [("filtered JWT", &filtered, NOT_FOR_TENANT1_EVENTS), ("append-only JWT", &append, NOT_FOR_APPEND_ONLY)]
        {
            let (via, req) = rotate(via_sql(sql), i);
            attacks.push(refused(format!("10 quarantine, {who}, {via}: {sql}"), token, forbidden, req));
        }
        // An unfiltered DATASOURCES:READ on events does not cover events_quarantine's other datasource.
        if sql.contains("orders_quarantine") {
            attacks.push(refused(
                format!("10 quarantine, events reader: {sql}"),
                &events_reader,
                &[T1OR, OR2, AUDIT, "LEAK_QUAR_or"],
                Req::get("/v0/sql", &[("q", sql)]),
            ));
        }
        let (via, req) = rotate(via_pipe_q("per_tenant", &sql.replace("FROM events WHERE", "FROM _ WHERE")), i);
        attacks.push(refused(format!("10 quarantine, pipe JWT, {via}: {sql}"), &pipe, NOT_FOR_TENANT1_EVENTS, req));
    }
    for (desc, req) in [
        ("quarantine as a pipe", Req::get("/v0/pipes/events_quarantine.json", &[])),
        ("quarantine as pipeline", Req::get("/v0/sql", &[("pipeline", "events_quarantine"), ("q", "SELECT * FROM _")])),
        ("quarantine detail", Req::get("/v0/datasources/events_quarantine", &[])),
        ("quarantine datafile", Req::get("/v0/datasources/events_quarantine.datasource", &[])),
    ] {
        attacks.push(refused(format!("10 {desc}, filtered JWT"), &filtered, NOT_FOR_TENANT1_EVENTS, req.clone()));
        attacks.push(refused(format!("10 {desc}, pipe JWT"), &pipe, NOT_FOR_TENANT1_EVENTS, req));
    }
    // Table functions: harmless or refused, never a file or the network.
    let spy_url = format!("http://127.0.0.1:{spy}/x.csv");
    let table_fns: Vec<String> = vec![
        "SELECT * FROM numbers(10)".into(),
        "SELECT number FROM system.numbers LIMIT 3".into(),
        "SELECT * FROM generate_series(1, 3)".into(),
        "SELECT * FROM range(3)".into(),
        "SELECT * FROM file('/etc/passwd')".into(),
        "SELECT * FROM file('/etc/passwd', 'CSV', 'line String')".into(),
        "SELECT * FROM file('/etc/passwd', 'LineAsString')".into(),
        "SELECT * FROM read_csv('/etc/passwd')".into(),
        "SELECT * FROM read_parquet('/etc/passwd')".into(),
        "SELECT * FROM '/etc/passwd'".into(),
        r#"SELECT * FROM "/etc/passwd""#.into(),
        "SELECT * FROM `/etc/passwd`".into(),
        "SELECT * FROM `file:///etc/passwd`".into(),
        "WITH file AS (SELECT 1) SELECT * FROM file('/etc/passwd')".into(),
        "WITH numbers AS (SELECT 1) SELECT * FROM generate_series(1, 3)".into(),
        "WITH x AS (SELECT 1) SELECT * FROM `/etc/passwd`".into(),
        "SELECT * FROM information_schema.tables".into(),
        "SELECT * FROM system.tables".into(),
        "SELECT * FROM system.query_log".into(),
        "SELECT * FROM datafusion.information_schema.tables".into(),
        "SELECT * FROM events, file('/etc/passwd')".into(),
        "SELECT (SELECT count() FROM file('/etc/passwd')) AS c".into(),
        "SELECT file('/etc/passwd') AS c".into(),
        "SELECT readFile('/etc/passwd') AS c".into(),
        format!("SELECT * FROM url('{spy_url}')"),
        format!("SELECT * FROM url('{spy_url}', 'CSV', 'a String')"),
        format!("SELECT * FROM remote('127.0.0.1:{spy}', system.one)"),
        format!("SELECT * FROM s3('{spy_url}')"),
        format!("WITH url AS (SELECT 1) SELECT * FROM url('{spy_url}')"),
        format!("SELECT * FROM '{spy_url}'"),
        format!("SELECT * FROM `{spy_url}`"),
        format!("SELECT url('{spy_url}') AS x"),
        // Names that reach tables outside the FROM clause (ClickHouse reads them; the checks never bind them).
        "SELECT joinGet('audit', 'secret', 1) AS s".into(),
        "SELECT joinGetOrNull('orders', 'secret', toUInt64(1)) AS s".into(),
        "SELECT dictGet('audit', 'secret', toUInt64(1)) AS s".into(),
        "SELECT 1 AS x WHERE 1 IN audit".into(),
        "SELECT 1 AS x WHERE 1 IN (audit)".into(),
        "SELECT in(1, audit) AS x".into(),
        "SELECT globalIn(1, orders) AS x".into(),
        "SELECT tenant FROM events WHERE (tenant, secret) IN orders".into(),
        "SELECT hasColumnInTable(currentDatabase(), 'audit', 'secret') AS x".into(),
        "SELECT currentDatabase() AS db".into(),
        "SELECT * FROM merge(currentDatabase(), '.*')".into(),
        "SELECT * FROM merge('.*', 'audit')".into(),
        "SELECT * FROM view(SELECT secret FROM audit)".into(),
        "SELECT * FROM numbers((SELECT count() FROM audit))".into(),
        "SELECT * FROM numbers(1) WHERE (SELECT any(secret) FROM orders) != ''".into(),
        "SELECT * FROM executable('cat /etc/passwd', 'LineAsString', 'x String')".into(),
        "SELECT * FROM Python(events)".into(),
        "SELECT * FROM python('x')".into(),
        "SELECT * FROM cluster('default', system.one)".into(),
        "SELECT * FROM events SETTINGS readonly = 0".into(),
        "SELECT secret FROM events SETTINGS additional_table_filters = {'events': '1'}".into(),
        "SELECT name FROM system.databases".into(),
        "SELECT * FROM default.events".into(),
        "SELECT x FROM events ARRAY JOIN file('/etc/passwd') AS x".into(),
        "SELECT a.secret FROM events ARRAY JOIN audit AS a".into(),
        "SELECT secret FROM events ARRAY JOIN orders AS o".into(),
        "SELECT x FROM events LEFT ARRAY JOIN (SELECT groupArray(secret) FROM audit) AS x".into(),
        // ARRAY JOIN lists of expressions: each expression's subqueries are bound and filtered like any other.
        "SELECT x FROM events ARRAY JOIN (SELECT groupArray(secret) FROM events) AS x".into(),
        "SELECT x, y FROM events ARRAY JOIN [secret] AS x, (SELECT groupArray(secret) FROM orders) AS y".into(),
        "SELECT x FROM events ARRAY JOIN arrayMap(s -> s, (SELECT groupArray(secret) FROM audit)) AS x".into(),
        "SELECT x FROM events ARRAY JOIN [(SELECT any(secret) FROM events_quarantine)] x".into(),
        "SELECT x FROM events ARRAY JOIN [secret], (SELECT groupArray(secret) FROM events) AS x".into(),
        "SELECT x FROM (SELECT 1 AS k) ARRAY JOIN (SELECT groupArray(secret) FROM events WHERE tenant = 2) AS x".into(),
        "SELECT x FROM events ARRAY JOIN `\u{E001}array_join`((SELECT groupArray(secret) FROM audit)) AS `\u{E001}array_join`(x)".into(),
        "SELECT secret FROM events FINAL".into(),
        "SELECT secret FROM events PREWHERE tenant != 1".into(),
    ];
    for (i, sql) in table_fns.iter().enumerate() {
        let (via, req) = rotate(via_sql(sql), i);
        attacks.push(attack(format!("10 table function, admin, {via}: {sql}"), ctx.admin(), &[PASSWD, "SPY_ROW"], req));
        let (via, req) = rotate(via_sql(sql), i + 1);
        attacks.push(attack(
            format!("10 table function, filtered JWT, {via}: {sql}"),
            &filtered,
            &[PASSWD, "SPY_ROW", EV2, T1OR, OR2, AUDIT, QUAR],
            req,
        ));
        let (via, req) = rotate(via_pipe_q("per_tenant", sql), i);
        attacks.push(attack(
            format!("10 table function, pipe JWT, {via}: {sql}"),
            &pipe,
            &[PASSWD, "SPY_ROW", EV2, T1OR, OR2, AUDIT, QUAR],
            req,
        ));
    }
    // The name only the server's own ARRAY JOIN rewrite makes: refused as written by a query.
    let forged = "SELECT x FROM events ARRAY JOIN `\u{E001}array_join`([secret]) AS `\u{E001}array_join`(x)";
    for (via, req) in via_sql(forged).into_iter().take(2) {
        attacks.push(refused(format!("10 forged ARRAY JOIN mark, admin, {via}"), ctx.admin(), &[PASSWD], req));
    }
    let mut failures = run_attacks(ctx.url(), &attacks).await;
    let n = hits.load(Ordering::SeqCst);
    if n > 0 {
        failures.push(format!("[10 table functions] the server connected {n} time(s) to the spy on 127.0.0.1"));
    }
    report("quarantine_and_table_functions_stay_closed", attacks.len(), &failures);
}

// ---------------------------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------------------------

/// Random queries from a small grammar over the fixture's tables.
struct Grammar {
    rng: fastrand::Rng,
    /// `_` is a table only in a pipe's q.
    pipe_q: bool,
}

const TABLES: &[&str] =
    &["events", "orders", "audit", "events_quarantine", "orders_quarantine", "per_tenant", "other_pipe"];
const CTE_NAMES: &[&str] = &["events", "orders", "audit", "events_quarantine", "_", "x", "per_tenant", "other_pipe"];
/// String literals as typed in SQL: backslashes, quotes, comment and UNION text inside.
const LITERALS: &[&str] = &[
    r"'a'",
    r"'a\\'",
    r"'\\'",
    r"'it''s'",
    r"'x\''",
    r"'\\\\\\'",
    r"' UNION ALL SELECT secret FROM orders -- '",
    r"' UNION ALL SELECT secret FROM events -- '",
    r"') UNION ALL SELECT secret FROM audit -- '",
    r"'/* '",
    r"'*/'",
    r"'-- '",
    r"'é\\'",
    r"'\n\\'",
    r"''",
];

impl Grammar {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.usize(..from.len())]
    }

    fn kw(&mut self, k: &str) -> String {
        match self.rng.u8(..4) {
            0 => k.to_lowercase(),
            1 => k.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_lowercase() } else { c }).collect(),
            _ => k.to_string(),
        }
    }

    fn sp(&mut self) -> String {
        match self.rng.u8(..10) {
            0 => " /* c */ ".into(),
            1 => " -- c\n".into(),
            2 => "\n\t".into(),
            _ => " ".into(),
        }
    }

    fn ident(&mut self, name: &str) -> String {
        match self.rng.u8(..6) {
            0 => format!("`{name}`"),
            1 => format!("\"{name}\""),
            2 if name != "_" => name.to_uppercase(),
            _ => name.to_string(),
        }
    }

    fn table(&mut self) -> String {
        let name = if self.pipe_q && self.rng.u8(..3) == 0 { "_" } else { self.pick(TABLES) };
        self.ident(name)
    }

    fn source(&mut self, depth: u32) -> String {
        if depth > 0 && self.rng.u8(..3) == 0 { format!("({})", self.query(depth - 1)) } else { self.table() }
    }

    fn cond(&mut self, depth: u32) -> String {
        let (sp1, sp2) = (self.sp(), self.sp());
        match self.rng.u8(..7) {
            0 | 1 => format!("secret{sp1}={sp2}{}", self.pick(LITERALS)),
            2 => format!("secret{sp1}!={sp2}{}", self.pick(LITERALS)),
            3 if depth > 0 => format!("1 IN ({})", self.query(depth - 1)),
            4 if depth > 0 => format!("{} ({})", self.kw("EXISTS"), self.query(depth - 1)),
            5 => format!("({}){sp1}{}{sp2}({})", self.cond(0), self.kw("OR"), self.cond(0)),
            _ => format!("secret {} ({}, {})", self.kw("IN"), self.pick(LITERALS), self.pick(LITERALS)),
        }
    }

    /// The table the token may read: `_` in a pipe's q, `events` (filtered) on /v0/sql.
    fn entitled(&mut self) -> String {
        let name = if self.pipe_q { "_" } else { "events" };
        self.ident(name)
    }

    /// A backslash-ending literal (printed back unescaped, it swallows its closing quote).
    fn backslash_literal(&mut self) -> &'static str {
        self.pick(&[r"'a\\'", r"'\\'", r"'é\\'", r"'it''s\\'", r"'\n\\'", r"'a\\\\\\'"])
    }

    /// `SELECT secret …`, so every branch of a UNION has one String column. Attack shapes (CTE shadowing, string
    /// smuggling) are mixed with random composition, then sprinkled with comments, odd whitespace and case changes.
    fn query(&mut self, depth: u32) -> String {
        let (select, from, with, as_kw, where_kw) =
            (self.kw("SELECT"), self.kw("FROM"), self.kw("WITH"), self.kw("AS"), self.kw("WHERE"));
        let (s1, s2, s3) = (self.sp(), self.sp(), self.sp());
        let union = self.kw("UNION ALL");
        match self.rng.u8(..8) {
            // A CTE named after the table it reads, quoted one way where defined and another where used.
            0 | 1 => {
                let t = self.pick(TABLES);
                let (a, b, c) = (self.ident(t), self.ident(t), self.ident(t));
                let filter = if self.rng.bool() { format!(" {where_kw} {}", self.cond(0)) } else { String::new() };
                format!("{with} {a} {as_kw}{s1}({select} secret {from} {b}{filter}){s2}{select} secret {from}{s3}{c}")
            }
            // A CTE defined in a subquery, hiding a read of the same name outside it.
            2 => {
                let t = self.pick(TABLES);
                let (a, b, c) = (self.ident(t), self.ident(t), self.ident(t));
                let ctx = self.pick(&["1 IN", "EXISTS", "0 NOT IN"]);
                format!(
                    "{select} secret {from} {a} {where_kw}{s1}{ctx} ({with} {b} {as_kw} ({select} 1 {as_kw} x) {select} x {from} {c})"
                )
            }
            // An earlier CTE reads the table; a later one takes its name.
            3 => {
                let t = self.pick(TABLES);
                let (a, b) = (self.ident(t), self.ident(t));
                format!(
                    "{with} a {as_kw} ({select} secret {from} {a}),{s1}{b} {as_kw} ({select} 'z' {as_kw} secret) {select} secret {from} a"
                )
            }
            // String smuggling: harmless as written, a UNION once the literal loses its closing quote.
            4 | 5 => {
                let base = self.entitled();
                let lit = self.backslash_literal();
                let t = self.pick(TABLES);
                let tail = match self.rng.u8(..3) {
                    0 => format!("' {union} {select} secret {from} {t} -- '"),
                    1 => format!("'\n{union} {select} secret {from} {t}\n-- '"),
                    _ => format!("') {union} {select} secret {from} {t} -- '"),
                };
                if tail.starts_with("')") {
                    format!("{select} secret {from} {base} {where_kw} secret IN ({lit},{s1}{tail})")
                } else {
                    format!("{select} secret {from} {base} {where_kw} secret{s1}={s2}{lit} OR secret != {tail}")
                }
            }
            // Random composition: WITH lists, joins with aliases named like tables, WHERE, UNION.
            _ => {
                let mut q = String::new();
                if depth > 0 && self.rng.u8(..3) == 0 {
                    q += &with;
                    q += " ";
                    for i in 0..self.rng.usize(1..=2) {
                        if i > 0 {
                            q += ", ";
                        }
                        let name = self.pick(CTE_NAMES);
                        let name = self.ident(name);
                        let body = self.query(depth - 1);
                        q += &format!("{name} {as_kw} ({body})");
                    }
                    q += &s1;
                }
                if self.rng.u8(..4) == 0 {
                    let (a, b) = (self.source(depth), self.source(depth));
                    let alias_a = self.pick(&["a", "events", "_", "orders"]);
                    let join = self.kw("JOIN");
                    q += &format!("{select} b.secret{s2}{from} {a} {as_kw} {alias_a} {join} {b} {as_kw} b ON 1 = 1");
                } else {
                    let src = if self.rng.bool() { self.entitled() } else { self.source(depth) };
                    q += &format!("{select}{s2}secret {from} {src}");
                    if self.rng.u8(..4) == 0 {
                        let alias = self.pick(&["t", "events", "orders", "_"]);
                        q += &format!(" {as_kw} {alias}");
                    }
                }
                if self.rng.bool() {
                    let c = self.cond(depth);
                    q += &format!(" {where_kw} {c}");
                }
                if depth > 0 && self.rng.u8(..3) == 0 {
                    let other = self.query(depth - 1);
                    q += &format!(" {union}{s3}{other}");
                }
                q
            }
        }
    }

    /// A query, sometimes wrapped: in a FROM subquery, after an entitled UNION branch, or as a scalar subquery.
    fn top(&mut self) -> String {
        let q = self.query(2);
        let (select, from) = (self.kw("SELECT"), self.kw("FROM"));
        match self.rng.u8(..6) {
            0 => format!("{select} secret {from} ({q})"),
            1 => {
                let base = self.entitled();
                format!("{select} secret {from} {base} {} ({q})", self.kw("UNION ALL"))
            }
            2 => format!("{select} ({select} groupArray(secret) {from} ({q})) AS s"),
            _ => q,
        }
    }
}

#[tokio::test]
async fn prop_random_queries_never_leak() {
    let ctx = Ctx::new().await;
    ctx.control_markers_exist().await;
    ctx.control_tokens_work().await;
    let (filtered, pipe_f) = (ctx.filtered(), ctx.pipe_t1_with_filter());
    let mut g = Grammar { rng: fastrand::Rng::with_seed(0x5EC_0DE5), pipe_q: false };
    let mut attacks = Vec::new();
    for case in 0..300 {
        g.pipe_q = case % 2 == 1;
        let sql = g.top();
        assert!(
            !sql.contains("LEAK") && !sql.contains(T1EV) && !sql.contains(T1OR),
            "the grammar must not write markers itself"
        );
        if g.pipe_q {
            let (via, req) = rotate(via_pipe_q("per_tenant", &sql), case / 2);
            attacks.push(attack(
                format!("prop case {case}, pipe+filter JWT, {via}: {sql}"),
                &pipe_f,
                NOT_FOR_TENANT1,
                req,
            ));
        } else {
            let (via, req) = rotate(via_sql(&sql), case / 2);
            attacks.push(attack(
                format!("prop case {case}, filtered JWT, {via}: {sql}"),
                &filtered,
                NOT_FOR_TENANT1_EVENTS,
                req,
            ));
        }
    }
    let failures = run_attacks(ctx.url(), &attacks).await;
    report("prop_random_queries_never_leak", attacks.len(), &failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prop_random_nesting_depths_never_crash() {
    let _serial = SERIAL.lock().await;
    let mut p = Proc::spawn_short_timeout().await;
    seed(&p.url, &p.admin).await;
    let mut rng = fastrand::Rng::with_seed(0xDEE9);
    let mut cases = Vec::new();
    for case in 0..30 {
        // Half the depths small (1..60), half anywhere up to 2000.
        let depth = if rng.bool() { rng.usize(1..60) } else { rng.usize(1..=2000) };
        let (shape, sql) = match rng.u8(..9) {
            0 => ("parentheses", format!("SELECT {} AS x", nested("(", "1", ")", depth))),
            1 => ("NOT", format!("SELECT {}(n = 1) AS x FROM events", "NOT ".repeat(depth))),
            2 => ("function calls", format!("SELECT {} AS x FROM events", nested("abs(", "n", ")", depth))),
            3 => (
                "subqueries",
                format!("SELECT x FROM {} AS t", nested("(SELECT x FROM ", "(SELECT 1 AS x)", " AS t)", depth)),
            ),
            4 => ("CASE", format!("SELECT {} AS x", nested("CASE WHEN 1 = 1 THEN ", "1", " END", depth))),
            5 => (
                "OR chain",
                format!("SELECT count() AS c FROM events WHERE {}", joined(|i| format!("n = {i}"), " OR ", depth)),
            ),
            6 => ("UNION ALL chain", joined(|i| format!("SELECT {i} AS x"), " UNION ALL ", depth)),
            7 => ("IN [ chain", format!("SELECT 1 {}", "IN [".repeat(depth))),
            _ => ("arrays", format!("SELECT {} AS x", nested("[", "1", "]", depth))),
        };
        cases.push(deep(
            format!("prop depth case {case}: {shape} x{depth}"),
            Req::text("/v0/sql", &[], &sql),
            Expect::Either,
        ));
    }
    let failures = run_deep_cases(&mut p, &cases).await;
    report("prop_random_nesting_depths_never_crash", cases.len(), &failures);
}
