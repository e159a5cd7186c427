//! Ingest encoding (serialize to NDJSON + gzip) of small rows, on one core.
//!
//! `cargo bench -p tinybird-core --bench client_ingest_encode`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use std::hint::black_box;
use tinybird_core::client::encode_ndjson;

#[derive(Serialize)]
struct Event {
    timestamp: &'static str,
    user_id: u64,
    event: &'static str,
    value: f64,
}

fn rows(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            timestamp: "2024-03-01 12:00:00",
            user_id: i as u64 * 7919,
            event: if i % 3 == 0 { "page_view" } else { "click" },
            value: i as f64 * 0.25,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let batch = rows(10_000);
    let mut g = c.benchmark_group("ingest_encode_10k_rows");
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("ndjson", |b| {
        b.iter(|| black_box(encode_ndjson(black_box(&batch), false).unwrap().len()));
    });
    g.bench_function("ndjson_gzip", |b| {
        b.iter(|| black_box(encode_ndjson(black_box(&batch), true).unwrap().len()));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
