//! Ingest throughput and query latency of the local server over HTTP.
//!
//! `cargo run -p tinybird-local --release --example bench -- [rows] [engines]` (default 1,000,000 rows, engines
//! `datafusion,clickhouse`; the ClickHouse engine needs chDB, see the crate README). For each engine, on the same
//! rows in one run: time from start to a `/v0/health` answer, ingested rows/s (NDJSON, 10 columns, batches of 10,000
//! rows, 4 concurrent clients) and the p50/p99 latency of an endpoint that filters by user, called through a JWT
//! whose DATASOURCES:READ filter restricts the organisation.

use std::time::Instant;
use tinybird_core::datafile::parse_datasource;
use tinybird_local::{EngineKind, LocalServer, Resources};

const DATASOURCE: &str = r#"SCHEMA >
    `ts` DateTime `json:$.ts`,
    `org_id` String `json:$.org_id`,
    `user_id` UInt64 `json:$.user_id`,
    `session` String `json:$.session`,
    `page` String `json:$.page`,
    `country` LowCardinality(String) `json:$.country`,
    `device` String `json:$.device`,
    `duration` Float64 `json:$.duration`,
    `bytes` UInt32 `json:$.bytes`,
    `ok` UInt8 `json:$.ok`

ENGINE "MergeTree"
ENGINE_SORTING_KEY "org_id, user_id, ts"
"#;

const PIPE: &str = "NODE endpoint
SQL >
    %
    SELECT page, count() AS views, avg(duration) AS avg_duration
    FROM hits
    WHERE user_id = {{UInt64(user_id)}}
    GROUP BY page
    ORDER BY views DESC
    LIMIT 10

TYPE endpoint
";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let engines = std::env::args().nth(2).unwrap_or_else(|| "datafusion,clickhouse".into());
    for engine in engines.split(',') {
        let engine: EngineKind = engine.parse()?;
        println!("== engine {engine:?}");
        run(engine, rows).await?;
    }
    Ok(())
}

async fn run(engine: EngineKind, rows: usize) -> Result<(), Box<dyn std::error::Error>> {
    let resources = Resources::new()
        .datasource(parse_datasource("hits", DATASOURCE)?)
        .pipe(tinybird_core::datafile::parse_pipe("user_pages", PIPE)?);
    let started = Instant::now();
    let server = LocalServer::builder().engine(engine).resources(resources).max_body_bytes(64 << 20).start().await?;
    reqwest::get(format!("{}/v0/health", server.url())).await?.error_for_status()?;
    println!("start-up to /v0/health: {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    let client = reqwest::Client::new();
    let batch = 10_000;
    let batches: Vec<String> = (0..rows.div_ceil(batch))
        .map(|b| {
            let mut body = String::with_capacity(batch * 200);
            for i in b * batch..((b + 1) * batch).min(rows) {
                body.push_str(&format!(
                    "{{\"ts\":\"2024-01-{:02} {:02}:{:02}:00\",\"org_id\":\"org{}\",\"user_id\":{},\"session\":\"s{}\",\"page\":\"/p{}\",\"country\":\"c{}\",\"device\":\"d{}\",\"duration\":{}.5,\"bytes\":{},\"ok\":1}}\n",
                    i % 28 + 1, i % 24, i % 60, i % 10, i % 10_000, i % 5000, i % 50, i % 30, i % 3, i % 100, i % 65536
                ));
            }
            body
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in batches.chunks(batches.len().div_ceil(4)) {
        let (client, url, token, chunk) =
            (client.clone(), server.url().to_string(), server.admin_token().to_string(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for body in chunk {
                let r = client
                    .post(format!("{url}/v0/events?name=hits&wait=true"))
                    .bearer_auth(&token)
                    .body(body)
                    .send()
                    .await?;
                assert_eq!(r.status(), 200);
            }
            Ok::<_, reqwest::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("ingest: {rows} rows in {secs:.2} s = {:.0} rows/s", rows as f64 / secs);
    let exp = chrono::Utc::now().timestamp() + 3600;
    let scopes = serde_json::json!({"name": "bench", "scopes": [
        {"type": "PIPES:READ", "resource": "user_pages"},
        {"type": "DATASOURCES:READ", "resource": "hits", "filter": "org_id = 'org3'"}
    ]});
    let token: serde_json::Value = client
        .post(format!("{}/v0/tokens?expiration_time={exp}", server.url()))
        .bearer_auth(server.admin_token())
        .json(&scopes)
        .send()
        .await?
        .json()
        .await?;
    let jwt = token["token"].as_str().ok_or("no token")?.to_string();
    let mut latencies = Vec::new();
    for i in 0..200u64 {
        let t = Instant::now();
        let r = client
            .get(format!("{}/v0/pipes/user_pages.json?user_id={}", server.url(), (i * 10 + 3) % 10_000))
            .bearer_auth(&jwt)
            .send()
            .await?;
        assert_eq!(r.status(), 200);
        r.bytes().await?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "query (user filter + JWT row filter, {rows} rows): p50 {:.1} ms, p99 {:.1} ms",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100]
    );
    Ok(())
}
