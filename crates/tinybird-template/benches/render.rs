//! Render a typical pipe (3 nodes, 6 params, an `if defined`, an `Array`) from parsed templates, and parse it.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tinybird_template::{RenderOptions, Template, Variables};

/// The three nodes of a typical analytics pipe, as the text after `%`.
const NODES: [&str; 3] = [
    "
    SELECT timestamp, org_id, user_id, event, country, amount
    FROM events
    WHERE org_id = {{String(org_id, description='Tenant')}}
      AND timestamp >= {{DateTime(start, '2024-01-01 00:00:00')}}
      AND timestamp < {{DateTime(end, '2024-02-01 00:00:00')}}
    {% if defined(event_types) %}
      AND event IN {{Array(event_types, 'String')}}
    {% end %}
    ",
    "
    SELECT event, country, count() AS events, sum(amount) AS revenue
    FROM filtered
    {% if defined(country) %}WHERE country = {{String(country)}}{% end %}
    GROUP BY event, country
    ",
    "
    SELECT * FROM aggregated
    ORDER BY revenue DESC
    LIMIT {{Int32(limit, 100)}}
    ",
];

fn params() -> Variables {
    Variables::from_pairs([
        ("org_id", "acme"),
        ("start", "2024-03-01 00:00:00"),
        ("end", "2024-04-01 00:00:00"),
        ("event_types", "click,view,purchase"),
        ("country", "ES"),
        ("limit", "50"),
    ])
}

fn bench(c: &mut Criterion) {
    let templates: Vec<Template> = NODES.iter().map(|n| Template::parse(n).expect("valid template")).collect();
    let vars = params();
    let opts = RenderOptions::default();

    let mut group = c.benchmark_group("pipe");
    group.throughput(Throughput::Elements(1));
    group.bench_function("render_3_nodes", |b| {
        b.iter(|| {
            for t in &templates {
                black_box(t.render(black_box(&vars), &opts).expect("renders"));
            }
        });
    });
    group.bench_function("parse_3_nodes", |b| {
        b.iter(|| {
            for n in NODES {
                black_box(Template::parse(black_box(n)).expect("parses"));
            }
        });
    });
    group.bench_function("analyze_3_nodes", |b| {
        b.iter(|| {
            for t in &templates {
                black_box(t.analyze().params());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
