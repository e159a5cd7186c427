#!/usr/bin/env python3
"""Writes two crates with the same 100 endpoint structs and 20 datasource structs:

- `derived/`: `#[derive(Endpoint)]` / `#[derive(Datasource)]` (with serde derives on the rows, as users write them);
- `serde_only/`: the same structs, inline output rows written out, carrying only serde derives.

Usage: generate.py OUT_DIR TINYBIRD_PATH
"""
import os
import sys

ENDPOINTS = 100
DATASOURCES = 20


def datasource(i, derive_tinybird):
    derives = "Debug, Clone, Serialize, Deserialize" + (", Datasource" if derive_tinybird else "")
    attrs = (
        f'#[tinybird(name = "events_{i}", sorting_key = "org_id, user_id, timestamp", '
        f'partition_key = "toYYYYMM(timestamp)", ttl = "timestamp + INTERVAL 90 DAY", '
        f'token(name = "append_{i}", append))]\n'
        if derive_tinybird
        else ""
    )
    typ = '    #[tinybird(type = "LowCardinality(String)")]\n' if derive_tinybird else ""
    json = '    #[tinybird(json = "$.props.page", default = "\'\'")]\n' if derive_tinybird else ""
    return f"""
/// Events, shard {i}.
#[derive({derives})]
{attrs}pub struct Event{i} {{
    pub timestamp: NaiveDateTime,
    pub org_id: u64,
    pub user_id: u64,
{typ}    pub event_type: String,
{json}    pub page: String,
    pub country: Option<String>,
    pub duration_ms: Option<u32>,
    pub tags: Vec<String>,
}}
"""


SQL = (
    '"%\\nSELECT toDate(timestamp) AS day, count() AS events, uniq(user_id) AS users\\n'
    "FROM events_{ds}\\n"
    "WHERE org_id = {{{{UInt64(org_id)}}}}\\n"
    "{{% if defined(start) %}} AND timestamp >= {{{{DateTime(start)}}}} {{% end %}}\\n"
    "{{% if defined(ids) %}} AND user_id IN {{{{Array(ids, 'UInt64')}}}} {{% end %}}\\n"
    "{{% if defined(country) %}} AND country = {{{{String(country)}}}} {{% end %}}\\n"
    'GROUP BY day"'
)


def endpoint(i, derive_tinybird):
    ds = i % DATASOURCES
    if derive_tinybird:
        return f"""
/// Endpoint {i}.
#[derive(Debug, Clone, Endpoint)]
#[tinybird(
    name = "analytics_{i}",
    node(name = "daily", sql = {SQL.format(ds=ds)}),
    node(name = "endpoint", sql = "%\\nSELECT * FROM daily ORDER BY day LIMIT {{{{UInt32(limit, 100)}}}}"),
    output(day: NaiveDate, events: u64, users: u64)
)]
pub struct Analytics{i} {{
    pub org_id: u64,
    pub start: Option<NaiveDateTime>,
    pub ids: Option<Vec<u64>>,
    pub country: Option<String>,
    #[tinybird(default = 100)]
    pub limit: Option<u32>,
}}
"""
    return f"""
/// Endpoint {i}.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analytics{i} {{
    pub org_id: u64,
    pub start: Option<NaiveDateTime>,
    pub ids: Option<Vec<u64>>,
    pub country: Option<String>,
    pub limit: Option<u32>,
}}

/// One row of endpoint {i}.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analytics{i}Row {{
    pub day: NaiveDate,
    pub events: u64,
    pub users: u64,
}}
"""


def write_crate(out, name, tinybird_path, derive_tinybird):
    os.makedirs(os.path.join(out, name, "src"), exist_ok=True)
    deps = 'serde = { version = "1", features = ["derive"] }\nchrono = { version = "0.4", default-features = false, features = ["std", "serde"] }\n'
    if derive_tinybird:
        deps += f'tinybird = {{ path = "{tinybird_path}" }}\n'
    with open(os.path.join(out, name, "Cargo.toml"), "w") as f:
        f.write(f'[package]\nname = "{name}"\nversion = "0.0.0"\nedition = "2024"\npublish = false\n\n[dependencies]\n{deps}\n[workspace]\n')
    body = "#![allow(dead_code)]\nuse chrono::{NaiveDate, NaiveDateTime};\nuse serde::{Deserialize, Serialize};\n"
    if derive_tinybird:
        body += "use tinybird::{Datasource, Endpoint};\n"
    body += "".join(datasource(i, derive_tinybird) for i in range(DATASOURCES))
    body += "".join(endpoint(i, derive_tinybird) for i in range(ENDPOINTS))
    with open(os.path.join(out, name, "src", "lib.rs"), "w") as f:
        f.write(body)


if __name__ == "__main__":
    out, tinybird_path = sys.argv[1], os.path.abspath(sys.argv[2])
    write_crate(out, "derived", tinybird_path, True)
    write_crate(out, "serde_only", tinybird_path, False)
