//! Fuzzes tinybird-local's SQL entry points for a bounded time: `/v0/sql` (POST body) and a pipe's `q`, both with
//! a JWT filtered to tenant 1. Inputs are mutations of a seed corpus (spliced, repeated, truncated, with quotes,
//! backslashes, comments, brackets and SQL fragments inserted). The server runs as a separate process, so a crash
//! (an abort, a stack overflow) shows as a dropped connection. Every answer must be HTTP with status 200 or 4xx,
//! must not carry a tenant-2 marker, and `/v0/health` must answer within a second after every batch.
//!
//! ```text
//! cargo build -p tinybird-local --bin tinybird-local --example fuzz
//! target/debug/examples/fuzz [--seconds 60] [--seed 1] [--bin target/debug/tinybird-local]
//! ```
//!
//! Exit status 0 when nothing failed; the last line is `N passed, M failed`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MARKER: &str = "LEAK_EV2";

const SEEDS: &[&str] = &[
    "SELECT secret FROM events",
    "SELECT count() FROM events WHERE tenant = 2",
    "WITH events AS (SELECT * FROM events) SELECT secret FROM events",
    "SELECT secret FROM events WHERE secret = 'a\\\\' OR secret != ' UNION ALL SELECT secret FROM events -- '",
    "SELECT * FROM (SELECT secret FROM events) AS t WHERE 1 IN (SELECT 1 FROM events)",
    "SELECT secret FROM _ UNION ALL SELECT secret FROM events",
    "SELECT groupArray(secret) FROM events GROUP BY tenant ORDER BY tenant LIMIT 1 BY tenant",
    "SELECT toString(n), lower(secret), if(n > 1, 'a', 'b') FROM events WHERE n IN [1, 2, 3]",
    "SELECT a.secret FROM events a JOIN events b ON a.n = b.n",
    "SELECT secret FROM `events` WHERE secret LIKE '%\\'%'",
    "SELECT secret FROM \"events\" /* c */ -- c\n WHERE 1",
    "WITH 1 AS tenant SELECT secret FROM events WHERE tenant = 1",
    "SELECT * FROM events_quarantine",
    "SELECT * FROM numbers(10)",
    "SELECT 1; DROP TABLE events",
    "SELECT * INTO t FROM events",
];

const FRAGMENTS: &[&str] = &[
    "'",
    "\\",
    "\\'",
    "''",
    "`",
    "\"",
    "(",
    ")",
    "[",
    "]",
    "--",
    "/*",
    "*/",
    ";",
    ",",
    " UNION ALL SELECT secret FROM events ",
    " WITH events AS (SELECT * FROM events) ",
    " NOT ",
    " OR ",
    " AND ",
    " IN [",
    " IN (",
    " CASE WHEN 1 THEN ",
    " END ",
    " FROM events ",
    " FROM _ ",
    " SELECT ",
    "abs(",
    "concat('a', ",
    "::String",
    " FORMAT JSON",
    "{{",
    "}}",
    "{%",
    "%}",
    "\u{0}",
    "\u{FEFF}",
    "é",
    " 18446744073709551616 ",
    " -9223372036854775809 ",
    " 1e309 ",
    "\n",
    "\t",
];

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &str, project: &str) -> Server {
    let mut child = Command::new(bin)
        .args(["--port", "0", "--project", project, "--query-timeout-secs", "3"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let mut line = String::new();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
    stderr.read_line(&mut line).expect("the server prints its URL");
    // Keep reading what the server prints, so its writes never fail on a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let url = line.split_whitespace().nth(3).unwrap_or_else(|| panic!("unexpected first line: {line}")).to_string();
    Server { child, url }
}

fn mutate(rng: &mut fastrand::Rng) -> String {
    let mut text = SEEDS[rng.usize(..SEEDS.len())].to_string();
    for _ in 0..rng.usize(1..6) {
        let at = |rng: &mut fastrand::Rng, s: &str| {
            let mut i = rng.usize(..=s.len());
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        match rng.u8(..6) {
            0 => {
                let i = at(rng, &text);
                text.insert_str(i, FRAGMENTS[rng.usize(..FRAGMENTS.len())]);
            }
            1 => {
                let other = SEEDS[rng.usize(..SEEDS.len())];
                let (i, j) = (at(rng, &text), at(rng, other));
                text = format!("{}{}", &text[..i], &other[j..]);
            }
            2 => {
                // Repeat a fragment many times: nesting and chains.
                let piece = FRAGMENTS[rng.usize(..FRAGMENTS.len())];
                let times = [2, 10, 100, 1000, 3000][rng.usize(..5)];
                let i = at(rng, &text);
                text.insert_str(i, &piece.repeat(times));
            }
            3 => {
                let i = at(rng, &text);
                text.truncate(i);
            }
            4 => {
                let (i, j) = (at(rng, &text), at(rng, &text));
                let (i, j) = (i.min(j), i.max(j));
                let slice = text[i..j].to_string();
                text.insert_str(j, &slice);
            }
            _ => {
                let i = at(rng, &text);
                let c = char::from_u32(rng.u32(..0x250)).unwrap_or('?');
                text.insert(i, c);
            }
        }
    }
    text
}

fn main() {
    let mut seconds = 60u64;
    let mut seed = 1u64;
    let exe = std::env::current_exe().expect("the example knows its path");
    let mut bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("tinybird-local").to_string_lossy().to_string())
        .unwrap_or_else(|| "tinybird-local".into());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--seconds" => seconds = value.parse().expect("--seconds takes a number"),
            "--seed" => seed = value.parse().expect("--seed takes a number"),
            "--bin" => bin = value,
            other => panic!("unknown argument {other}"),
        }
    }
    let project = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/redteam");
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let server = start(&bin, project);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("an HTTP client");
    let (passed, failed, statuses) = runtime.block_on(async {
        let tokens: serde_json::Value =
            client.get(format!("{}/tokens", server.url)).send().await.unwrap().json().await.unwrap();
        let admin = tokens["admin_token"].as_str().unwrap().to_string();
        let workspace: serde_json::Value = client
            .get(format!("{}/v1/workspace", server.url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows: String = (0..20)
            .map(|i| {
                let tenant = 1 + i % 2;
                let secret = if tenant == 2 { format!("{MARKER}_{i}") } else { format!("ok_{i}") };
                format!("{{\"tenant\":{tenant},\"secret\":\"{secret}\",\"n\":{i}}}\n")
            })
            .collect();
        let r = client
            .post(format!("{}/v0/events?name=events&wait=true", server.url))
            .bearer_auth(&admin)
            .body(rows)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "seeding");
        let claims = serde_json::json!({
            "workspace_id": workspace["id"], "name": "fuzz", "exp": chrono::Utc::now().timestamp() + 3600,
            "scopes": [
                {"type": "DATASOURCES:READ", "resource": "events", "filter": "tenant = 1"},
                {"type": "PIPES:READ", "resource": "per_tenant", "fixed_params": {"tenant": 1}}
            ]
        });
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(admin.as_bytes()),
        )
        .unwrap();
        // Control: the marker exists, and the JWT does not see it.
        let all = client
            .post(format!("{}/v0/sql", server.url))
            .bearer_auth(&admin)
            .body("SELECT secret FROM events")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(all.contains(MARKER), "control: the admin sees the marker");
        let mut rng = fastrand::Rng::with_seed(seed);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let (mut passed, mut failed) = (0u64, 0u64);
        let mut statuses = std::collections::BTreeMap::new();
        let mut i = 0u64;
        while Instant::now() < deadline {
            i += 1;
            let sql = mutate(&mut rng);
            let request = if i.is_multiple_of(2) {
                client.post(format!("{}/v0/sql", server.url)).bearer_auth(&jwt).body(sql.clone())
            } else {
                client
                    .post(format!("{}/v0/pipes/per_tenant.json", server.url))
                    .bearer_auth(&jwt)
                    .form(&[("q", sql.as_str())])
            };
            let verdict = match request.send().await {
                Err(e) => Err(format!("no HTTP answer: {e}")),
                Ok(r) => {
                    let status = r.status().as_u16();
                    *statuses.entry(status).or_insert(0u64) += 1;
                    let body = r.text().await.unwrap_or_default();
                    if body.contains(MARKER) {
                        Err(format!("LEAK ({status})"))
                    } else if status >= 500 {
                        Err(format!("server error {status}: {}", body.chars().take(200).collect::<String>()))
                    } else {
                        Ok(())
                    }
                }
            };
            let verdict = match verdict {
                Ok(()) if i.is_multiple_of(25) => {
                    let started = Instant::now();
                    let health =
                        client.get(format!("{}/v0/health", server.url)).timeout(Duration::from_secs(1)).send().await;
                    match health {
                        Ok(r) if r.status() == 200 => Ok(()),
                        _ => Err(format!("/v0/health did not answer within 1 s ({:?})", started.elapsed())),
                    }
                }
                other => other,
            };
            match verdict {
                Ok(()) => passed += 1,
                Err(why) => {
                    failed += 1;
                    let shown: String = sql.chars().take(300).collect();
                    eprintln!("FAIL #{i}: {why}\n  input ({} bytes): {shown:?}", sql.len());
                    if why.starts_with("no HTTP answer") || why.starts_with("/v0/health") {
                        break;
                    }
                }
            }
        }
        (passed, failed, statuses)
    });
    eprintln!("statuses: {statuses:?}");
    println!("{passed} passed, {failed} failed");
    drop(server);
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
