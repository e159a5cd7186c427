//! The ClickHouse engine: what only it runs (table engines, `FINAL`, combinators, clauses DataFusion refuses, its
//! own types), its errors passed through, isolation between servers of one process, and bad set-ups. The suites
//! shared by both engines (HTTP API, security, red team) run on it from `scripts/test.sh` with
//! `TINYBIRD_LOCAL_ENGINE=clickhouse`. Without chDB these tests say so and pass, unless
//! `TINYBIRD_LOCAL_REQUIRE_CLICKHOUSE=1` (set by `scripts/test.sh`).

use crate::common::{client, datafiles_form, get_json, in_one_hour, jwt};
use serde_json::{Value, json};
use tinybird_local::{EngineKind, LocalServer, Resources};

const BIN: &str = env!("CARGO_BIN_EXE_tinybird-local");

const VERSIONS: &str = "SCHEMA >
    `id` UInt64 `json:$.id`,
    `tenant` String `json:$.tenant`,
    `v` UInt32 `json:$.v`,
    `tags` Array(String) `json:$.tags[:]`,
    `total` SimpleAggregateFunction(sum, UInt64) `json:$.total`

ENGINE \"ReplacingMergeTree\"
ENGINE_SORTING_KEY \"tenant, id\"
ENGINE_VER \"v\"
";

async fn server(files: &[(&str, &str)]) -> Option<LocalServer> {
    let mut resources = Resources::new();
    if !files.is_empty() {
        resources = Resources::from_files(files.iter().copied()).expect("fixture parses");
    }
    match LocalServer::builder().engine(EngineKind::ClickHouse).resources(resources).start().await {
        Ok(s) => Some(s),
        Err(e) if std::env::var_os("TINYBIRD_LOCAL_REQUIRE_CLICKHOUSE").is_none() => {
            eprintln!("SKIPPED: the ClickHouse engine is not available here: {e}");
            None
        }
        Err(e) => panic!("the ClickHouse engine does not start: {e}"),
    }
}

async fn ingest(s: &LocalServer, name: &str, rows: &str) {
    let r = client()
        .post(format!("{}/v0/events?name={name}&wait=true", s.url()))
        .bearer_auth(s.admin_token())
        .body(rows.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn sql(s: &LocalServer, token: &str, q: &str) -> (u16, Value) {
    let url = format!("{}/v0/sql?q={}", s.url(), urlencode(&format!("{q} FORMAT JSON")));
    get_json(&url, token).await
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const ROWS: &str = r#"{"id":1,"tenant":"a","v":1,"tags":["x"],"total":1}
{"id":1,"tenant":"a","v":2,"tags":["x","y"],"total":2}
{"id":2,"tenant":"a","v":1,"tags":[],"total":3}
{"id":1,"tenant":"b","v":5,"tags":["z"],"total":4}"#;

#[tokio::test]
async fn table_engines_final_and_clickhouse_only_clauses() {
    let Some(s) = server(&[("versions.datasource", VERSIONS)]).await else { return };
    // One insert per row: ClickHouse collapses versions within one insert already (optimize_on_insert).
    for row in ROWS.lines() {
        ingest(&s, "versions", row).await;
    }
    let admin = s.admin_token();
    // FINAL collapses the ReplacingMergeTree's versions; without it every inserted row is there.
    let (status, body) = sql(&s, admin, "SELECT tenant, id, v FROM versions FINAL ORDER BY tenant, id").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!([{"tenant": "a", "id": 1, "v": 2}, {"tenant": "a", "id": 2, "v": 1}, {"tenant": "b", "id": 1, "v": 5}])
    );
    let (_, body) = sql(&s, admin, "SELECT count() AS n FROM versions").await;
    assert_eq!(body["data"], json!([{"n": 4}]));
    // Types are ClickHouse's own, including ones DataFusion does not have.
    let (_, body) =
        sql(&s, admin, "SELECT toInt128(1) AS i, map('k', 1) AS m, (1, 'a') AS t, toDecimal64(1.5, 2) AS d").await;
    assert_eq!(
        body["meta"],
        json!([{"name": "i", "type": "Int128"}, {"name": "m", "type": "Map(String, UInt8)"}, {"name": "t", "type": "Tuple(UInt8, String)"}, {"name": "d", "type": "Decimal(18, 2)"}])
    );
    assert_eq!(body["data"], json!([{"i": 1, "m": {"k": 1}, "t": [1, "a"], "d": 1.5}]));
    // Clauses and functions the DataFusion engine refuses.
    for (q, expected) in [
        ("SELECT uniqMerge(s) AS n FROM (SELECT uniqState(tenant) AS s FROM versions)", json!([{"n": 2}])),
        ("SELECT count() AS n FROM versions PREWHERE tenant = 'a'", json!([{"n": 3}])),
        ("SELECT count() AS n FROM versions FINAL PREWHERE tenant = 'a' WHERE v > 0", json!([{"n": 2}])),
        ("SELECT tag FROM versions ARRAY JOIN tags AS tag WHERE tenant = 'b'", json!([{"tag": "z"}])),
        (
            "SELECT tenant, v FROM versions ORDER BY tenant, v DESC LIMIT 1 BY tenant",
            json!([{"tenant": "a", "v": 2}, {"tenant": "b", "v": 5}]),
        ),
        ("SELECT count() AS n FROM versions SETTINGS max_threads = 1", json!([{"n": 4}])),
        ("SELECT sum(v) OVER (PARTITION BY tenant) AS w FROM versions WHERE tenant = 'b'", json!([{"w": 5}])),
        ("SELECT arrayMap(x -> x * 2, [1, 2]) AS a", json!([{"a": [2, 4]}])),
        ("SELECT sum(total) AS t FROM versions FINAL", json!([{"t": 9}])),
    ] {
        let (status, body) = sql(&s, admin, q).await;
        assert_eq!((status, &body["data"]), (200, &expected), "{q}: {body}");
    }
    // A FINAL on some tables of a query, not all, is refused (it becomes ClickHouse's `final` setting).
    let (status, body) =
        sql(&s, admin, "SELECT count() FROM versions FINAL AS a JOIN versions AS b ON a.id = b.id").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("FINAL on 1 of the 2 tables"), "{body}");
}

const PLAIN: &str = "SCHEMA >
    `id` UInt64 `json:$.id`,
    `tenant` String `json:$.tenant`

ENGINE \"MergeTree\"
ENGINE_SORTING_KEY \"id\"
";

/// The `FORMAT` body of a query, as text.
async fn sql_text(s: &LocalServer, token: &str, q: &str) -> (u16, String) {
    let r = client().post(format!("{}/v0/sql", s.url())).bearer_auth(token).body(q.to_string()).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn with_totals_any_joins_and_final_answer_as_clickhouse() {
    let Some(s) = server(&[("versions.datasource", VERSIONS), ("plain.datasource", PLAIN)]).await else { return };
    // One insert per row: ClickHouse collapses versions within one insert already (optimize_on_insert).
    for row in ROWS.lines() {
        ingest(&s, "versions", row).await;
    }
    ingest(&s, "plain", "{\"id\":1,\"tenant\":\"a\"}\n{\"id\":2,\"tenant\":\"b\"}").await;
    let admin = s.admin_token();
    // WITH TOTALS: the totals row aggregates every row, keys at their defaults; ORDER BY and LIMIT do not apply to
    // it. JSON has it as `totals`, CSV and TSV after an empty line (ClickHouse's own layouts).
    let q = "SELECT tenant, count() AS n, sum(v) AS v, uniqExact(id) AS u FROM versions GROUP BY tenant WITH TOTALS \
             ORDER BY tenant LIMIT 1";
    let (status, body) = sql(&s, admin, q).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!([{"tenant": "a", "n": 3, "v": 4, "u": 2}]));
    assert_eq!(body["totals"], json!({"tenant": "", "n": 4, "v": 9, "u": 2}));
    assert_eq!(body["rows_before_limit_at_least"], 2);
    let (status, text) = sql_text(&s, admin, &format!("{q} FORMAT CSV")).await;
    assert_eq!((status, text.as_str()), (200, "\"a\",3,4,2\n\n\"\",4,9,2\n"));
    let (_, text) = sql_text(&s, admin, &format!("{q} FORMAT TSVWithNames")).await;
    assert_eq!(text, "tenant\tn\tv\tu\na\t3\t4\t2\n\n\t4\t9\t2\n");
    // A JWT's row filter holds in the totals too.
    let token = jwt(
        &s,
        json!({
            "workspace_id": s.workspace_id(), "name": "tenant_b", "exp": in_one_hour(),
            "scopes": [{"type": "DATASOURCES:READ", "resource": "versions", "filter": "tenant = 'b'"}]
        }),
    );
    let (status, body) = sql(&s, &token, "SELECT tenant, count() AS n FROM versions GROUP BY tenant WITH TOTALS").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["data"], &body["totals"]), (&json!([{"tenant": "b", "n": 1}]), &json!({"tenant": "", "n": 1})));
    // What the server cannot answer as ClickHouse does is refused, naming it.
    for (q, refusal) in [
        ("SELECT tenant, count() AS n FROM versions GROUP BY tenant WITH TOTALS HAVING n > 1", "together with HAVING"),
        ("SELECT * FROM (SELECT tenant, count() FROM versions GROUP BY tenant WITH TOTALS)", "in a subquery"),
    ] {
        let (status, body) = sql(&s, admin, q).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body["error"].as_str().unwrap().contains(refusal), "{q}: {body}");
    }
    // ANY joins take the first match; ALL is the default.
    let (status, body) =
        sql(&s, admin, "SELECT p.id, v.v FROM plain p ANY LEFT JOIN versions v ON p.tenant = v.tenant ORDER BY p.id")
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2, "{body}");
    let (_, body) =
        sql(&s, admin, "SELECT count() AS n FROM plain p ALL INNER JOIN versions v ON p.tenant = v.tenant").await;
    assert_eq!(body["data"], json!([{"n": 4}]));
    let (status, body) = sql(
        &s,
        admin,
        "SELECT count() FROM plain p ANY LEFT JOIN versions v ON p.tenant = v.tenant JOIN plain q ON q.id = p.id",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("ANY JOIN next to joins"), "{body}");
    // rows_before_limit_at_least: counted by a window in the rows' statement, or apart where a window cannot count
    // them (DISTINCT, an OFFSET past the end).
    for (q, rows, before) in [
        ("SELECT tenant, count() AS n FROM versions GROUP BY tenant ORDER BY tenant LIMIT 1", 1, 2),
        ("SELECT id FROM versions ORDER BY id, v LIMIT 2 OFFSET 1", 2, 4),
        ("SELECT id FROM versions ORDER BY id LIMIT 1 OFFSET 10", 0, 4),
        ("SELECT DISTINCT tenant FROM versions ORDER BY tenant LIMIT 1", 1, 2),
    ] {
        let (status, body) = sql(&s, admin, q).await;
        assert_eq!(status, 200, "{q}: {body}");
        assert_eq!(body["data"].as_array().unwrap().len(), rows, "{q}: {body}");
        assert_eq!(body["rows_before_limit_at_least"], before, "{q}: {body}");
        assert_eq!(body["meta"].as_array().unwrap().len(), if q.contains("count()") { 2 } else { 1 }, "{q}: {body}");
    }
    // FINAL on a table that cannot merge at read time is ClickHouse's error, not a silent no-op.
    let (status, body) = sql(&s, admin, "SELECT count() FROM plain FINAL").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("ILLEGAL_FINAL"), "{body}");
}

#[tokio::test]
async fn a_query_whose_caller_goes_away_is_killed() {
    use tinybird_local::engine::clickhouse::{chdb, strings};
    let started = LocalServer::builder()
        .engine(EngineKind::ClickHouse)
        .query_timeout(std::time::Duration::from_secs(120))
        .start()
        .await;
    let s = match started {
        Ok(s) => s,
        Err(e) if std::env::var_os("TINYBIRD_LOCAL_REQUIRE_CLICKHOUSE").is_none() => {
            eprintln!("SKIPPED: the ClickHouse engine is not available here: {e}");
            return;
        }
        Err(e) => panic!("the ClickHouse engine does not start: {e}"),
    };
    // A query that runs for minutes; the client gives up after half a second and closes the connection.
    let q = "SELECT sum(sipHash64(number, 'caller_goes_away')) FROM numbers(100000000000)";
    let gone = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap()
        .post(format!("{}/v0/sql", s.url()))
        .bearer_auth(s.admin_token())
        .body(q)
        .send()
        .await;
    assert!(gone.is_err(), "the query should still be running when the client gives up");
    let pool = chdb::Pool::new(chdb::load(&Default::default()).expect("chDB is loaded"), Vec::new());
    let mut conn = pool.take().expect("a connection");
    let running = |conn: &mut _| {
        let batches = chdb::query(
            conn,
            "SELECT toString(count()) FROM system.processes WHERE query LIKE '%caller_goes_away%' \
             AND query NOT LIKE '%system.processes%'",
        )
        .expect("system.processes");
        strings(&batches, 0).first().cloned().unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = running(&mut conn);
        if n == "0" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{n} statements still run 10 s after the caller went away");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn jwt_filters_hold_with_final_and_clickhouse_errors_pass_through() {
    let Some(s) = server(&[("versions.datasource", VERSIONS)]).await else { return };
    ingest(&s, "versions", ROWS).await;
    let token = jwt(
        &s,
        json!({
            "workspace_id": s.workspace_id(), "name": "tenant_b", "exp": in_one_hour(),
            "scopes": [{"type": "DATASOURCES:READ", "resource": "versions", "filter": "tenant = 'b'"}]
        }),
    );
    for q in [
        "SELECT tenant, id FROM versions FINAL",
        "SELECT tenant, id FROM versions PREWHERE 1",
        "SELECT tenant, id FROM versions SETTINGS final = 0",
        "SELECT tenant, id FROM (SELECT * FROM versions) ARRAY JOIN tags AS t",
    ] {
        let (status, body) = sql(&s, &token, q).await;
        assert_eq!(status, 200, "{q}: {body}");
        for row in body["data"].as_array().unwrap() {
            assert_eq!(row["tenant"], "b", "{q}: {body}");
        }
    }
    // ClickHouse's own message, code name included, with no internal database name in it.
    let (status, body) = sql(&s, s.admin_token(), "SELECT nosuchcolumn FROM versions").await;
    let error = body["error"].as_str().unwrap();
    assert_eq!(status, 400);
    assert!(error.contains("DB::Exception") && error.contains("UNKNOWN_IDENTIFIER"), "{error}");
    assert!(!error.contains("tb_"), "{error}");
    let (status, body) = sql(&s, s.admin_token(), "SELECT throwIf(1, 'boom') AS x").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("boom"), "{body}");
}

#[tokio::test]
async fn servers_in_one_process_do_not_see_each_other() {
    let Some(a) = server(&[("versions.datasource", VERSIONS)]).await else { return };
    let Some(b) = server(&[("versions.datasource", VERSIONS)]).await else { return };
    ingest(&a, "versions", ROWS).await;
    let (_, body) = sql(&b, b.admin_token(), "SELECT count() AS n FROM versions").await;
    assert_eq!(body["data"], json!([{"n": 0}]));
    let (_, body) = sql(&a, a.admin_token(), "SELECT count() AS n FROM versions").await;
    assert_eq!(body["data"], json!([{"n": 3}]));
    // Dropping one server drops its databases; the other keeps working.
    drop(a);
    ingest(&b, "versions", ROWS).await;
    let (_, body) = sql(&b, b.admin_token(), "SELECT count() AS n FROM versions").await;
    assert_eq!(body["data"], json!([{"n": 3}]));
}

#[tokio::test]
async fn datafiles_clickhouse_rejects_fail_the_build_with_its_message() {
    let Some(s) = server(&[]).await else { return };
    let bad = "SCHEMA >\n    `id` UInt64 `json:$.id`\n\nENGINE \"ReplacingMergeTree\"\nENGINE_SORTING_KEY \"missing_column\"\n";
    let r = client()
        .post(format!("{}/v1/build", s.url()))
        .bearer_auth(s.admin_token())
        .multipart(datafiles_form(&[("bad.datasource", bad)]))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    let text = body.to_string();
    assert!(text.contains("bad") && text.contains("missing_column"), "{body}");
}

#[test]
fn a_library_that_is_not_chdb_is_refused_with_the_fix() {
    // A library that exists but is not chDB: the server does not start, and says what to install.
    let candidates = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/aarch64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
    ];
    let Some(libm) = candidates.iter().find(|p| std::path::Path::new(p).exists()) else { return };
    let out = std::process::Command::new(BIN)
        .args(["--engine", "clickhouse", "--chdb", libm, "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pip install") && stderr.contains("chdb-core==26.9.0"), "{stderr}");
    // A path with nothing there.
    let out = std::process::Command::new(BIN)
        .args(["--engine", "clickhouse", "--chdb", "/nonexistent/chdb", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/chdb") && stderr.contains("pip install"), "{stderr}");
    // An engine name that does not exist.
    let out = std::process::Command::new(BIN).args(["--engine", "duckdb"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown engine 'duckdb'"));
}

#[tokio::test]
async fn the_binary_starts_answers_and_shuts_down_cleanly() {
    use tokio::io::AsyncBufReadExt;
    if std::env::var_os("TINYBIRD_LOCAL_REQUIRE_CLICKHOUSE").is_none()
        && tinybird_local::engine::clickhouse::chdb::locate(&Default::default()).is_err()
    {
        eprintln!("SKIPPED: chDB is not available here");
        return;
    }
    let mut child = tokio::process::Command::new(BIN)
        .args(["--engine", "clickhouse", "--port", "0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    assert!(first.contains("engine ClickHouse"), "{first}");
    let url = first.split_whitespace().nth(3).unwrap().to_string();
    let health = client().get(format!("{url}/v0/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // SIGINT: the server stops and the process exits 0 (chDB shut down in order, no crash at exit).
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{status:?}");
}

const WIDE: &str = "SCHEMA >
    `id` UInt32 `json:$.id`,
    `big` Int128 `json:$.big`,
    `huge` UInt256 `json:$.huge`,
    `attrs` Map(String, UInt64) `json:$.attrs`,
    `pair` Tuple(name String, n UInt8) `json:$.pair`,
    `money` Decimal(50, 10) `json:$.money`,
    `maybe` Nullable(Int128) `json:$.maybe`

ENGINE \"MergeTree\"
ENGINE_SORTING_KEY \"id\"
";

#[tokio::test]
async fn types_only_clickhouse_stores_are_ingested_checked_and_queried() {
    let Some(s) = server(&[("wide.datasource", WIDE)]).await else { return };
    let rows = r#"{"id":1,"big":"-170141183460469231731687303715884105728","huge":"115792089237316195423570985008687907853269984665640564039457584007913129639935","attrs":{"a":1,"b":2},"pair":["x",7],"money":"12345678901234567890.0123456789","maybe":null}
{"id":2,"big":5,"huge":0,"attrs":{},"pair":{"name":"y","n":8},"money":1.5,"maybe":"42"}
{"id":3,"big":"170141183460469231731687303715884105728","huge":1,"attrs":{},"pair":["z",1],"money":1,"maybe":null}
{"id":4,"big":1,"huge":-1,"attrs":{},"pair":["z",1],"money":1,"maybe":null}
{"id":5,"big":1,"huge":1,"attrs":[1],"pair":["z",1],"money":1,"maybe":null}
{"id":6,"big":1,"huge":1,"attrs":{},"pair":"z","money":"x","maybe":null}"#;
    let r = client()
        .post(format!("{}/v0/events?name=wide&wait=true", s.url()))
        .bearer_auth(s.admin_token())
        .body(rows)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    // Rows 3-6 do not fit (Int128 overflow, a negative UInt256, a map that is not an object, a tuple and a decimal
    // that are not): quarantined, as Tinybird does, and the others stored.
    assert_eq!(body, json!({"successful_rows": 2, "quarantined_rows": 4}), "{body}");
    let (status, body) = sql(&s, s.admin_token(), "SELECT * FROM wide ORDER BY id").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"][1], json!({"name": "big", "type": "Int128"}));
    assert_eq!(body["meta"][3], json!({"name": "attrs", "type": "Map(String, UInt64)"}));
    assert_eq!(body["meta"][5], json!({"name": "money", "type": "Decimal(50, 10)"}));
    let first = &body["data"][0];
    assert_eq!(first["attrs"], json!({"a": 1, "b": 2}));
    assert_eq!(first["pair"], json!({"name": "x", "n": 7}));
    let (_, body) =
        sql(&s, s.admin_token(), "SELECT toString(big) AS b, toString(huge) AS h, maybe FROM wide ORDER BY id").await;
    assert_eq!(
        body["data"],
        json!([
            {"b": "-170141183460469231731687303715884105728", "h": "115792089237316195423570985008687907853269984665640564039457584007913129639935", "maybe": null},
            {"b": "5", "h": "0", "maybe": 42}
        ])
    );
    // On the DataFusion engine, the same datafile is refused with the type named.
    let refused = LocalServer::builder()
        .engine(EngineKind::DataFusion)
        .resources(Resources::from_files([("wide.datasource", WIDE)]).unwrap())
        .start()
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("Int128"), "{refused}");
}

const HITS: &str = "SCHEMA >
    `ts` DateTime `json:$.ts`,
    `tenant` String `json:$.tenant`,
    `user` String `json:$.user`

ENGINE \"MergeTree\"
ENGINE_SORTING_KEY \"tenant, ts\"
";

const DAILY: &str = "SCHEMA >
    `day` Date,
    `tenant` String,
    `users` AggregateFunction(uniq, String),
    `hits` SimpleAggregateFunction(sum, UInt64)

ENGINE \"AggregatingMergeTree\"
ENGINE_SORTING_KEY \"tenant, day\"
";

const DAILY_MV: &str = "NODE rollup
SQL >
    SELECT toDate(ts) AS day, tenant, uniqState(user) AS users, count() AS hits FROM hits GROUP BY day, tenant

TYPE materialized
DATASOURCE daily
";

const DAILY_API: &str = "NODE endpoint
SQL >
    %
    SELECT day, uniqMerge(users) AS users, sum(hits) AS hits FROM daily
    WHERE tenant = {{String(tenant, required=True)}}
    GROUP BY day ORDER BY day

TYPE endpoint
";

#[tokio::test]
async fn materialized_views_are_clickhouse_views_with_aggregate_states() {
    let files = [
        ("hits.datasource", HITS),
        ("daily.datasource", DAILY),
        ("daily_mv.pipe", DAILY_MV),
        ("daily_api.pipe", DAILY_API),
    ];
    let Some(s) = server(&files[..2]).await else { return };
    // Rows before the view exists are backfilled when it is deployed.
    ingest(&s, "hits", r#"{"ts":"2024-01-01 10:00:00","tenant":"a","user":"u1"}"#).await;
    let r = client()
        .post(format!("{}/v1/build", s.url()))
        .bearer_auth(s.admin_token())
        .multipart(datafiles_form(&files))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Each insert feeds the view: states merge across inserts.
    ingest(
        &s,
        "hits",
        r#"{"ts":"2024-01-01 11:00:00","tenant":"a","user":"u2"}
{"ts":"2024-01-01 12:00:00","tenant":"a","user":"u1"}
{"ts":"2024-01-02 09:00:00","tenant":"b","user":"u9"}"#,
    )
    .await;
    ingest(&s, "hits", r#"{"ts":"2024-01-02 10:00:00","tenant":"a","user":"u3"}"#).await;
    let token = jwt(
        &s,
        json!({
            "workspace_id": s.workspace_id(), "name": "tenant_a", "exp": in_one_hour(),
            "scopes": [{"type": "PIPES:READ", "resource": "daily_api", "fixed_params": {"tenant": "a"}}]
        }),
    );
    let (status, body) = get_json(&format!("{}/v0/pipes/daily_api.json?tenant=b", s.url()), &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!([{"day": "2024-01-01", "users": 2, "hits": 3}, {"day": "2024-01-02", "users": 1, "hits": 1}])
    );
    assert_eq!(body["meta"][1], json!({"name": "users", "type": "UInt64"}));
    // Aggregate states cannot be sent as JSON: such rows are quarantined.
    let r = client()
        .post(format!("{}/v0/events?name=daily&wait=true", s.url()))
        .bearer_auth(s.admin_token())
        .body(r#"{"day":"2024-01-01","tenant":"a","users":"x","hits":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"successful_rows": 0, "quarantined_rows": 1}));
}

/// A pool of connections to chDB itself; None (the test skips) when chDB is missing and not required.
fn chdb_pool() -> Option<std::sync::Arc<tinybird_local::engine::clickhouse::chdb::Pool>> {
    use tinybird_local::engine::clickhouse::chdb;
    match chdb::load(&Default::default()) {
        Ok(engine) => Some(chdb::Pool::new(engine, Vec::new())),
        Err(e) if std::env::var_os("TINYBIRD_LOCAL_REQUIRE_CLICKHOUSE").is_none() => {
            eprintln!("SKIPPED: chDB is not available here: {e}");
            None
        }
        Err(e) => panic!("chDB does not load: {e}"),
    }
}

/// The DataFusion engine reads these function names in any case (`Ceil`, `LENGTH`) because ClickHouse does.
#[test]
fn case_insensitive_functions_are_clickhouses() {
    use tinybird_local::engine::clickhouse::{chdb, strings};
    let Some(pool) = chdb_pool() else { return };
    let mut conn = pool.take().expect("a connection");
    let rows = chdb::query(&mut conn, "SELECT name FROM system.functions WHERE case_insensitive ORDER BY name")
        .expect("system.functions");
    let names = strings(&rows, 0);
    assert!(names.len() > 100, "{names:?}");
    for name in tinybird_local::engine::compat::CASE_INSENSITIVE_FUNCTIONS {
        assert!(names.iter().any(|n| n == name), "`{name}` is not a case-insensitive function in ClickHouse");
    }
}

/// The SDK's type parser (`tinybird-types`) reads each type name with ClickHouse's own case rule, from ClickHouse's
/// table of type families: `DateTime` and `Bool` in any case, `String`, `UUID` and `Nullable` only as written.
#[test]
fn type_names_are_read_with_clickhouses_case_rules() {
    use tinybird_local::engine::clickhouse::{chdb, strings};
    use tinybird_types::{ChType, FAMILIES};
    let Some(pool) = chdb_pool() else { return };
    let mut conn = pool.take().expect("a connection");
    let rows =
        chdb::query(&mut conn, "SELECT name, toString(case_insensitive) FROM system.data_type_families ORDER BY name")
            .expect("system.data_type_families");
    let (names, case_insensitive) = (strings(&rows, 0), strings(&rows, 1));
    assert!(names.len() > 100, "{names:?}");
    for family in FAMILIES {
        // `Boolean` is registered as the alias `boolean`, which is case-insensitive.
        let at = names
            .iter()
            .position(|n| n == family.name)
            .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(family.name)))
            .unwrap_or_else(|| panic!("ClickHouse has no type family `{}`", family.name));
        assert_eq!(family.case_insensitive, case_insensitive[at] == "1", "the case rule of `{}`", family.name);
        // And the parser applies it: the lower-case spelling is read exactly when ClickHouse reads it.
        let lower = family.name.to_ascii_lowercase();
        let parsed = match family.arguments {
            tinybird_types::Arguments::Required(_) => format!("{lower}(x)").parse::<ChType>(),
            _ => lower.parse::<ChType>(),
        };
        let unknown = parsed.as_ref().err().and_then(|e| e.unknown_type()).is_some();
        assert_eq!(unknown, !family.case_insensitive && lower != family.name, "`{lower}`: {parsed:?}");
    }
}
