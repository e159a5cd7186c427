//! Typed decode of a 100,000-row endpoint response, against `serde_json::from_slice` into the same struct.
//!
//! Two shapes: `decode_100k_rows` (large `u64`, strings, nulls, arrays) and `decode_100k_events` (the rows of
//! `benchmarks/vs-typescript/run.sh`). Each is decoded three ways: plain serde_json (the baseline), the SDK with a
//! hand-written `Row` impl (serde only), and the SDK with a derived row type (the direct reader of
//! `tinybird_core::rowjson`, serde for anything it gives up on).
//!
//! `cargo bench -p tinybird-core --bench client_decode`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use std::hint::black_box;
use tinybird_core::client::QueryResponse;
use tinybird_core::row::{Row, RowColumn};

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Stat {
    user_id: u64,
    pathname: String,
    views: u64,
    ratio: Option<f64>,
    day: String,
    tags: Vec<String>,
}

impl Row for Stat {
    fn columns() -> Vec<RowColumn> {
        let c = |n: &str, t: &str| RowColumn { name: n.into(), ty: t.into() };
        vec![
            c("user_id", "UInt64"),
            c("pathname", "String"),
            c("views", "UInt64"),
            c("ratio", "Nullable(Float64)"),
            c("day", "Date"),
            c("tags", "Array(String)"),
        ]
    }
}

/// `Stat` with `#[derive(Row)]`, which adds the direct row reader.
#[derive(Debug, Deserialize, tinybird_macros::Row)]
#[tinybird(crate = "::tinybird_core")]
#[allow(dead_code)]
struct DerivedStat {
    user_id: u64,
    pathname: String,
    views: u64,
    ratio: Option<f64>,
    #[tinybird(type = "Date")]
    day: String,
    tags: Vec<String>,
}

/// The baseline: the same envelope and row struct, plain serde_json.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Baseline {
    meta: Vec<Meta>,
    data: Vec<Stat>,
    rows: u64,
    statistics: Statistics,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Meta {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Statistics {
    elapsed: f64,
    rows_read: u64,
    bytes_read: u64,
}

fn body(rows: usize) -> Vec<u8> {
    let mut s = String::from(
        r#"{"meta":[{"name":"user_id","type":"UInt64"},{"name":"pathname","type":"String"},{"name":"views","type":"UInt64"},{"name":"ratio","type":"Nullable(Float64)"},{"name":"day","type":"Date"},{"name":"tags","type":"Array(String)"}],"data":["#,
    );
    for i in 0..rows {
        if i > 0 {
            s.push(',');
        }
        let ratio = if i % 5 == 0 { "null".to_owned() } else { format!("{}", i as f64 / 7.0) };
        s.push_str(&format!(
            r#"{{"user_id":{},"pathname":"/blog/post-{}","views":{},"ratio":{},"day":"2024-03-{:02}","tags":["a","b{}"]}}"#,
            u64::MAX - i as u64,
            i % 1000,
            i * 3,
            ratio,
            i % 28 + 1,
            i % 10
        ));
    }
    s.push_str(&format!(r#"],"rows":{rows},"statistics":{{"elapsed":0.01,"rows_read":{rows},"bytes_read":1000}}}}"#));
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let data = body(100_000);
    let mut g = c.benchmark_group("decode_100k_rows");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function("serde_json_from_slice_baseline", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Baseline>(black_box(&data)).unwrap().data.len()));
    });
    g.bench_function("tinybird_query_response", |b| {
        b.iter(|| black_box(QueryResponse::<Stat>::from_slice(black_box(&data)).unwrap().data.len()));
    });
    g.bench_function("tinybird_query_response_derived", |b| {
        b.iter(|| black_box(QueryResponse::<DerivedStat>::from_slice(black_box(&data)).unwrap().data.len()));
    });
    g.finish();

    let data = events_body(100_000);
    let mut g = c.benchmark_group("decode_100k_events");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function("serde_json_from_slice_baseline", |b| {
        b.iter(|| black_box(serde_json::from_slice::<EventsBaseline>(black_box(&data)).unwrap().data.len()));
    });
    g.bench_function("tinybird_query_response", |b| {
        b.iter(|| black_box(QueryResponse::<Event>::from_slice(black_box(&data)).unwrap().data.len()));
    });
    g.bench_function("tinybird_query_response_serde_only", |b| {
        b.iter(|| black_box(QueryResponse::<SerdeEvent>::from_slice(black_box(&data)).unwrap().data.len()));
    });
    g.finish();
}

/// The rows of `benchmarks/vs-typescript/run.sh`'s `bench_rows` endpoint, as tinybird-local sends them. The derive
/// gives it the direct row reader (`tinybird_core::rowjson`), as `#[derive(Datasource)]` does in the harness.
#[derive(Debug, Deserialize, tinybird_macros::Row)]
#[tinybird(crate = "::tinybird_core")]
#[allow(dead_code)]
struct Event {
    #[serde(with = "tinybird_core::types::wire")]
    timestamp: chrono::NaiveDateTime,
    org_id: u64,
    user_id: u64,
    event_type: String,
    page: String,
    duration_ms: u32,
    value: f64,
}

/// `Event` with a hand-written `Row` impl, which has no direct reader: the serde path of the same decode.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct SerdeEvent {
    #[serde(with = "tinybird_core::types::wire")]
    timestamp: chrono::NaiveDateTime,
    org_id: u64,
    user_id: u64,
    event_type: String,
    page: String,
    duration_ms: u32,
    value: f64,
}

impl Row for SerdeEvent {
    fn columns() -> Vec<RowColumn> {
        Event::columns()
    }
}

/// The baseline for events: serde_json, with the timestamp left as text.
#[derive(Deserialize)]
#[allow(dead_code)]
struct EventsBaseline {
    meta: Vec<Meta>,
    data: Vec<RawEvent>,
    rows: u64,
    statistics: Statistics,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct RawEvent {
    timestamp: String,
    org_id: u64,
    user_id: u64,
    event_type: String,
    page: String,
    duration_ms: u32,
    value: f64,
}

fn events_body(rows: usize) -> Vec<u8> {
    const TYPES: [&str; 5] = ["page_view", "click", "signup", "purchase", "scroll"];
    let mut s = String::from(
        r#"{"meta":[{"name":"timestamp","type":"DateTime"},{"name":"org_id","type":"UInt64"},{"name":"user_id","type":"UInt64"},{"name":"event_type","type":"String"},{"name":"page","type":"String"},{"name":"duration_ms","type":"UInt32"},{"name":"value","type":"Float64"}],"data":["#,
    );
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
    for i in 0..rows {
        if i > 0 {
            s.push(',');
        }
        let ts = start + chrono::TimeDelta::seconds(i as i64);
        s.push_str(&format!(
            r#"{{"timestamp":"{}","org_id":{},"user_id":{},"event_type":"{}","page":"/docs/page/{}","duration_ms":{},"value":{}}}"#,
            ts.format("%Y-%m-%d %H:%M:%S"),
            i % 50,
            (i * 7919) % 100_000,
            TYPES[i % 5],
            i % 1000,
            i % 5000,
            (i % 10_000) as f64 * 0.25
        ));
    }
    s.push_str(&format!(r#"],"rows":{rows},"statistics":{{"elapsed":0.01,"rows_read":{rows},"bytes_read":1000}}}}"#));
    s.into_bytes()
}

criterion_group!(benches, bench);
criterion_main!(benches);
