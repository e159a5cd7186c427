//! Streams 10 million NDJSON rows from an in-process server through `Client::query_stream` and reports rows/s and
//! the process's peak RSS (`VmHWM`), which must stay under 64 MB. Not a criterion bench: one run, one figure.
//!
//! `cargo bench -p tinybird-core --bench client_stream_rss` (ROWS=1000000 for a shorter run)

use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use tinybird_core::client::Client;
use tinybird_core::endpoint::{Endpoint, EndpointDef, FixedParams};
use tinybird_core::params::QueryParams;

/// Derived, so the stream reads it with the direct row reader (`tinybird_core::rowjson`).
#[derive(Deserialize, tinybird_macros::Row)]
#[tinybird(crate = "::tinybird_core")]
#[allow(dead_code)]
struct Hit {
    id: u64,
    pathname: String,
    views: u64,
}

#[derive(Default)]
struct NoFixed;
impl FixedParams for NoFixed {
    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

struct Hits;
impl Endpoint for Hits {
    const NAME: &'static str = "hits";
    type Output = Hit;
    type Fixed = NoFixed;
    fn definition() -> EndpointDef {
        EndpointDef::default()
    }
    fn to_params(&self) -> QueryParams {
        QueryParams::new()
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let rows: u64 = std::env::var("ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let app = axum::Router::new().fallback(move || async move {
        // 1,000 rows per chunk, generated lazily: the server holds one chunk at a time.
        let chunks = futures::stream::iter((0..rows.div_ceil(1000)).map(move |c| {
            let mut s = String::with_capacity(64 * 1000);
            for id in c * 1000..((c + 1) * 1000).min(rows) {
                s.push_str(&format!("{{\"id\":{id},\"pathname\":\"/page/{}\",\"views\":{}}}\n", id % 1000, id * 3));
            }
            Ok::<_, std::io::Error>(Bytes::from(s))
        }));
        axum::body::Body::from_stream(chunks)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = Client::builder().base_url(url).token("p.bench").build().unwrap();
    let before = peak_rss_kib();
    let started = Instant::now();
    let mut stream = client.query_stream(&Hits).await.unwrap();
    let mut n = 0u64;
    let mut sum = 0u64;
    while let Some(row) = stream.next().await {
        let row = row.unwrap();
        sum = sum.wrapping_add(row.views);
        n += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(n, rows);
    let peak = peak_rss_kib();
    println!(
        "streamed {n} rows in {secs:.2} s: {:.0} rows/s; peak RSS {:.1} MiB (before streaming {:.1} MiB); checksum {sum}",
        n as f64 / secs,
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB is over 64 MiB");
}
