//! Derive macros for the `tinybird` crate. Use them through `tinybird::{Endpoint, Datasource}`.
//!
//! Layout: `lib.rs` holds the entry points only. `ctxt` accumulates errors; `attr` reads `#[tinybird(…)]`,
//! `#[serde(…)]` and doc comments; `model` holds what both derives share (fields, wire names, the crate path);
//! `template` analyses node SQL; `chtype` checks type strings; `endpoint` and `datasource` each read their model,
//! check it, and expand; `fallback` writes the stub impls emitted next to errors, so users see the real error and not
//! a cascade. Everything below `lib.rs` works on `proc_macro2` and is unit-tested.

#![warn(missing_docs)]

use proc_macro::TokenStream;

mod attr;
mod case;
mod chtype;
mod ctxt;
mod datasource;
mod endpoint;
mod fallback;
mod model;
mod row;
mod rowjson;
mod suggest;
mod template;

#[cfg(test)]
mod expand_tests;

/// Declares a Tinybird API endpoint (a published pipe) on its params struct.
///
/// Each field is a parameter: a non-`Option` field is required (`required=True` in the datafile), an `Option` field
/// optional. Wire names follow `#[serde(rename/rename_all)]`. Generates `impl Endpoint`, the `<Name>Fixed` struct
/// (one `pub Option<T>` per param, for JWT `fixed_params`) and, for an inline output, the `<Name>Row` struct.
///
/// ```
/// use tinybird::{Endpoint, FixedParams};
///
/// #[derive(Endpoint)]
/// #[tinybird(
///     sql = "%
///         SELECT toDate(timestamp) AS day, count() AS events FROM events
///         WHERE user_id = {{UInt64(user_id)}} GROUP BY day LIMIT {{UInt32(limit, 100)}}",
///     output(day: chrono::NaiveDate, events: u64),
/// )]
/// pub struct UserAnalytics {
///     /// The user whose events are counted (the doc comment is the param's description).
///     pub user_id: u64,
///     #[tinybird(default = 100)]
///     pub limit: Option<u32>,
/// }
///
/// assert_eq!(UserAnalytics::NAME, "user_analytics");
/// let params = UserAnalytics { user_id: 42, limit: None }.to_params();
/// assert_eq!(params.to_query_string(), "user_id=42");
/// // A JWT scope pins params through the generated fixed-params struct.
/// let fixed = UserAnalyticsFixed { user_id: Some(42), ..Default::default() };
/// assert_eq!(fixed.to_json()["user_id"], 42);
/// ```
///
/// Struct attributes: `name = "…"` (default: the struct name in snake_case), `description = "…"` (default: the doc
/// comment), `sql = "…"` for one node named `endpoint`, or `node(name = "…", sql = "…", description = "…")` once
/// per node, `output = RowType` (any `Row`: a `Datasource` struct, an inline row, `serde_json::Value`) or inline
/// `output(col: Type, …)` / `output(RowName { col: Type, … })` (columns accept `#[tinybird(type = "…")]`, doc and
/// serde attributes), `cache_ttl = 60`, `token(name = "…")` (READ), `crate = "::path"`.
///
/// Field attributes: `type = "…"` (the Tinybird type; default: from the template function, else the Rust type),
/// `default = 10 | "x" | 1.5 | true`, `description = "…"`, `required = false` (on a non-`Option` field), `unused`.
///
/// Compile-time checks: every node's template syntax; every placeholder names a declared param (with "did you
/// mean"); every param is used by a node unless marked `unused`; each typed function fits the field's type
/// (`DateTime(start)` needs a date-time type, `Array(ids, 'Int32')` a list of integers that fit Int32, …); defaults
/// fit their function; unknown and duplicate attribute keys. Errors are reported together.
#[proc_macro_derive(Endpoint, attributes(tinybird, serde))]
pub fn derive_endpoint(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    endpoint::derive(&input).into()
}

/// Declares a Tinybird datasource on its row struct (which also derives `Serialize` and `Deserialize`).
///
/// Each field is a column, named as serde names it. Generates `impl Datasource`, `impl Row` and the `<Name>Columns`
/// struct of typed column handles (`pub user_id: Column<u64>`) used by `DATASOURCES:READ` filters.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tinybird::Datasource;
///
/// /// Product events.
/// #[derive(Serialize, Deserialize, Datasource)]
/// #[tinybird(sorting_key = "user_id, timestamp", partition_key = "toYYYYMM(timestamp)",
///            ttl = "timestamp + INTERVAL 90 DAY", token(name = "ingest", append))]
/// pub struct Event {
///     #[serde(with = "tinybird::types::wire")]
///     pub timestamp: chrono::NaiveDateTime,
///     pub user_id: u64,
///     #[tinybird(type = "LowCardinality(String)", json = "$.event.type")]
///     pub event_type: String,
/// }
///
/// assert_eq!(Event::NAME, "event");
/// let def = Event::definition();
/// assert_eq!(def.columns[2].ty, "LowCardinality(String)");
/// assert_eq!(def.engine.sorting_key.as_deref(), Some("user_id, timestamp"));
/// // Typed column handles for `DATASOURCES:READ` filters.
/// assert_eq!(EventColumns::default().user_id.name(), "user_id");
/// ```
///
/// Struct attributes: `name`, `description` (default: the doc comment), `engine = "MergeTree"` (or
/// `ReplacingMergeTree`, `SummingMergeTree`, `AggregatingMergeTree`, `CollapsingMergeTree`,
/// `VersionedCollapsingMergeTree`, `Null`), `sorting_key`, `partition_key`, `primary_key`, `sampling_key`, `ttl`,
/// `settings`, `ver`, `is_deleted`, `sign`, `version`, `summing_columns`, `index(name, expr, type, granularity)`,
/// `token(name = "…", read, append)`, `json_paths = false`, `crate = "::path"`. Column lists (`sorting_key`,
/// `primary_key`, `summing_columns`, `ver`, `sign`, `version`, `is_deleted`) are checked against the columns, and
/// engine-specific keys against the engine.
///
/// Field attributes: `type = "…"` (checked; default: the Rust type's `TinybirdType`), `json = "$.path"` (default
/// `$.<column>`), `default = "SQL expression"`, `codec = "ZSTD(1)"`.
#[proc_macro_derive(Datasource, attributes(tinybird))]
pub fn derive_datasource(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    datasource::derive(&input).into()
}

/// Declares a result row for queries that are not a declared endpoint's output, such as `client.sql::<R>(…)`.
///
/// Each field is a column, named as serde names it; its Tinybird type comes from the field's Rust type or from
/// `#[tinybird(type = "…")]`. The client checks a response's `meta` against these columns. The struct derives
/// `Deserialize` itself: for Tinybird's JSON forms (DateTime with a space, quoted 64-bit integers) put
/// `#[serde(with = "tinybird::types::wire")]` on such fields.
///
/// ```
/// use tinybird::Row;
///
/// #[derive(serde::Deserialize, Row)]
/// struct Hits {
///     page: String,
///     #[serde(rename = "n")]
///     hits: u64,
///     #[tinybird(type = "LowCardinality(String)")]
///     country: String,
/// }
///
/// let cols: Vec<(String, String)> = Hits::columns().into_iter().map(|c| (c.name, c.ty)).collect();
/// assert_eq!(cols, [
///     ("page".to_owned(), "String".to_owned()),
///     ("n".to_owned(), "UInt64".to_owned()),
///     ("country".to_owned(), "LowCardinality(String)".to_owned()),
/// ]);
/// ```
#[proc_macro_derive(Row, attributes(tinybird, serde))]
pub fn derive_row(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    row::derive(&input).into()
}
