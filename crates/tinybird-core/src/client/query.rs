//! Typed endpoint queries and SQL: the JSON envelope, the `meta` check, decode errors that name column and row.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{Body, Client, Request, RetryOn, RetryPolicy, RowStream, read_body};
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::params::QueryParams;
use crate::row::{Row, RowColumn};

/// Past this URL length a query is sent as a POST form, as Tinybird's CLI does (Tinybird's API endpoint docs).
pub(crate) const MAX_GET_URL: usize = 4096;

/// The result of a query: Tinybird's JSON envelope (Tinybird's API endpoint docs) with typed rows.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse<T> {
    /// The rows.
    pub data: Vec<T>,
    /// The result columns and their ClickHouse types, as the server reports them.
    pub meta: Vec<ColumnMeta>,
    /// The number of rows in `data`.
    pub rows: u64,
    /// Rows the query would have returned without its `LIMIT` (present only when the query has one).
    pub rows_before_limit_at_least: Option<u64>,
    /// The totals row of a `GROUP BY … WITH TOTALS` query (ClickHouse's `totals`): every aggregate over all rows,
    /// the grouping keys at their default values.
    pub totals: Option<T>,
    /// Server-side execution statistics.
    pub statistics: Option<Statistics>,
}

/// One result column.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ColumnMeta {
    /// Column name.
    pub name: String,
    /// ClickHouse type name, e.g. `Nullable(UInt64)`.
    #[serde(rename = "type")]
    pub ty: String,
}

/// Execution statistics of a query.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Statistics {
    /// Seconds.
    #[serde(default)]
    pub elapsed: f64,
    /// Rows the query read.
    #[serde(default)]
    pub rows_read: u64,
    /// Bytes the query read.
    #[serde(default)]
    pub bytes_read: u64,
}

/// Per-call options for queries and SQL.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct QueryOptions {
    pub(crate) skip_meta_check: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) extra: Vec<(String, String)>,
}

impl QueryOptions {
    /// Defaults: `meta` checked, client timeouts and retry policy.
    pub fn new() -> Self {
        Self::default()
    }
    /// Do not compare the declared output with the response's `meta` (decoding still fails on a wrong value).
    pub fn skip_meta_check(mut self) -> Self {
        self.skip_meta_check = true;
        self
    }
    /// Overrides the client's query timeout for this call.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// Overrides the client's retry policy for this call.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
    /// Adds a raw request parameter (for example `q` or `output_format_json_quote_denormals`).
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }
}

impl<T: Row> QueryResponse<T> {
    /// Decodes a Tinybird JSON result (`{"meta","data","rows",…}`) from bytes, checking the declared output columns
    /// against `meta`: what [`Client::query`] does with a response body. Useful for saved responses and fixtures.
    pub fn from_slice(body: &[u8]) -> Result<Self> {
        decode_response(&format!("decoding a {} result", std::any::type_name::<T>()), body, true)
    }
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub(crate) struct Envelope<T> {
    #[serde(default)]
    pub(crate) meta: Vec<ColumnMeta>,
    pub(crate) data: Vec<T>,
    #[serde(default)]
    pub(crate) rows: Option<u64>,
    #[serde(default)]
    pub(crate) rows_before_limit_at_least: Option<u64>,
    #[serde(default = "none")]
    pub(crate) totals: Option<T>,
    #[serde(default)]
    pub(crate) statistics: Option<Statistics>,
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Deserialize)]
struct MetaOnly {
    #[serde(default)]
    meta: Vec<ColumnMeta>,
}

/// Per-call options shared by [`Query`] and [`Sql`]: each builder method sets one field of its [`QueryOptions`].
macro_rules! query_option_methods {
    () => {
        /// Do not compare the declared output with the response's `meta` (decoding still fails on a wrong value).
        pub fn skip_meta_check(mut self) -> Self {
            self.opts = self.opts.skip_meta_check();
            self
        }
        /// Overrides the client's query timeout for this call.
        pub fn timeout(mut self, t: Duration) -> Self {
            self.opts = self.opts.timeout(t);
            self
        }
        /// Overrides the client's retry policy for this call.
        pub fn retry(mut self, policy: RetryPolicy) -> Self {
            self.opts = self.opts.retry(policy);
            self
        }
        /// Adds a raw request parameter (for example `output_format_json_quote_denormals`).
        pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            self.opts = self.opts.param(key, value);
            self
        }
        /// Replaces every option at once, for options shared by several calls.
        pub fn options(mut self, opts: QueryOptions) -> Self {
            self.opts = opts;
            self
        }
    };
}

/// A query of a published endpoint, made by [`Client::query`]: set per-call options on it, then `.await` it (or
/// [`stream`](Query::stream) its rows). Nothing is sent until then.
#[must_use = "a query is sent when it is awaited"]
pub struct Query<'c, R> {
    client: &'c Client,
    name: &'static str,
    params: QueryParams,
    opts: QueryOptions,
    row: PhantomData<fn() -> R>,
}

impl<R: Row> Query<'_, R> {
    query_option_methods!();

    /// Streams the rows from `GET /v0/pipes/{NAME}.ndjson` as they arrive, instead of reading the JSON envelope.
    /// The query timeout bounds the wait for the response to start, not the length of the stream. There is no `meta`
    /// in NDJSON, so only decoding checks the rows.
    pub async fn stream(self) -> Result<RowStream<R>> {
        let file = format!("{}.ndjson", self.name);
        let mut req = self.client.pipe_request(&file, &self.params, &self.opts);
        req.header_timeout = req.timeout.take();
        let what = req.what.clone();
        let resp = self.client.send(req).await?;
        Ok(RowStream::new(what, Box::pin(resp.bytes_stream())))
    }

    async fn run(self) -> Result<QueryResponse<R>> {
        let file = format!("{}.json", self.name);
        let req = self.client.pipe_request(&file, &self.params, &self.opts);
        let what = req.what.clone();
        let resp = self.client.send(req).await?;
        let body = read_body(&what, resp).await?;
        decode_response::<R>(&what, &body, !self.opts.skip_meta_check)
    }
}

impl<'c, R: Row> IntoFuture for Query<'c, R> {
    type Output = Result<QueryResponse<R>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl<R> fmt::Debug for Query<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query").field("endpoint", &self.name).field("options", &self.opts).finish_non_exhaustive()
    }
}

/// An SQL query through `/v0/sql`, made by [`Client::sql`]: add template parameters and per-call options, then
/// `.await` it. Nothing is sent until then.
#[must_use = "a query is sent when it is awaited"]
pub struct Sql<'c, R> {
    client: &'c Client,
    sql: String,
    params: QueryParams,
    opts: QueryOptions,
    row: PhantomData<fn() -> R>,
}

impl<R: Row> Sql<'_, R> {
    query_option_methods!();

    /// Values for a templated query (one starting with `%`) whose `{{ … }}` read them; sent as a form
    /// `q=<sql>&<params>`.
    pub fn params(mut self, params: QueryParams) -> Self {
        self.params = params;
        self
    }

    async fn run(self) -> Result<QueryResponse<R>> {
        let Sql { client, sql, params, opts, .. } = self;
        let sql = with_format_json(&sql)?;
        let url = client.url(&["v0", "sql"], []);
        let body = if params.is_empty() && opts.extra.is_empty() {
            Body::Bytes { data: sql.into_bytes().into(), content_type: "text/plain", content_encoding: None }
        } else {
            let mut pairs: Vec<(&str, &str)> = vec![("q", sql.as_str())];
            pairs.extend(params.pairs().iter().chain(opts.extra.iter()).map(|(k, v)| (k.as_str(), v.as_str())));
            Body::form(&pairs)
        };
        // `/v0/sql` only runs SELECT/DESCRIBE, so retrying it is safe.
        let req = Request::new(Method::POST, url, RetryOn::Idempotent)
            .body(body)
            .timeout(opts.timeout.or(client.timeouts().query))
            .retry(opts.retry.as_ref());
        let what = req.what.clone();
        let resp = client.send(req).await?;
        let body = read_body(&what, resp).await?;
        decode_response::<R>(&what, &body, !opts.skip_meta_check)
    }
}

impl<'c, R: Row> IntoFuture for Sql<'c, R> {
    type Output = Result<QueryResponse<R>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl<R> fmt::Debug for Sql<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SQL may hold literal values a caller would not log; its length is enough to tell calls apart.
        f.debug_struct("Sql").field("sql_len", &self.sql.len()).field("options", &self.opts).finish_non_exhaustive()
    }
}

impl Client {
    /// Queries a published endpoint: `GET /v0/pipes/{NAME}.json?{params}` (a POST form when the URL would pass
    /// 4096 bytes), decodes the rows into `E::Output` and checks the declared output columns against `meta`.
    /// Per-call options go on the returned [`Query`] before it is awaited.
    ///
    /// ```no_run
    /// # async fn run<E: tinybird_core::Endpoint + std::fmt::Debug>(client: tinybird_core::client::Client, params: E)
    /// # -> tinybird_core::error::Result<()> where E::Output: std::fmt::Debug {
    /// use std::time::Duration;
    ///
    /// let res = client.query(&params).await?;
    /// for row in &res.data { println!("{row:?}"); }
    /// let res = client.query(&params).timeout(Duration::from_secs(2)).skip_meta_check().await?;
    /// # Ok(()) }
    /// ```
    pub fn query<E: Endpoint>(&self, endpoint: &E) -> Query<'_, E::Output> {
        Query {
            client: self,
            name: E::NAME,
            params: endpoint.to_params(),
            opts: QueryOptions::default(),
            row: PhantomData,
        }
    }

    /// Builds the request for `/v0/pipes/{file}`, switching to a POST form for long URLs.
    pub(crate) fn pipe_request<'a>(&self, file: &str, params: &QueryParams, opts: &'a QueryOptions) -> Request<'a> {
        let pairs: Vec<(&str, &str)> =
            params.pairs().iter().chain(opts.extra.iter()).map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let get_url = self.url(&["v0", "pipes", file], pairs.iter().copied());
        let timeout = opts.timeout.or(self.timeouts().query);
        let req = if get_url.as_str().len() > MAX_GET_URL {
            let url = self.url(&["v0", "pipes", file], []);
            Request::new(Method::POST, url, RetryOn::Idempotent).body(Body::form(&pairs))
        } else {
            Request::new(Method::GET, get_url, RetryOn::Idempotent)
        };
        req.timeout(timeout).retry(opts.retry.as_ref())
    }

    /// Runs SQL through `/v0/sql` and decodes the rows. `FORMAT JSON` is appended unless the SQL already ends with a
    /// `FORMAT` clause (which must then be `JSON`). The rows may be any [`Row`], including `serde_json::Value`.
    /// Template parameters and per-call options go on the returned [`Sql`] before it is awaited.
    pub fn sql<R: Row>(&self, sql: impl Into<String>) -> Sql<'_, R> {
        Sql {
            client: self,
            sql: sql.into(),
            params: QueryParams::new(),
            opts: QueryOptions::default(),
            row: PhantomData,
        }
    }
}

/// Appends `FORMAT JSONEachRow` to a statement that has no `FORMAT` clause (streaming SQL).
pub(crate) fn with_format_each_row(sql: &str) -> Result<String> {
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end();
    if trimmed.is_empty() {
        return Err(Error::new(ErrorKind::BadRequest, "the SQL is empty"));
    }
    let mut words = trimmed.rsplit(|c: char| c.is_whitespace()).filter(|w| !w.is_empty());
    let last = words.next();
    if let (Some(fmt), Some(kw)) = (last, words.next())
        && kw.eq_ignore_ascii_case("format")
    {
        if fmt.eq_ignore_ascii_case("JSONEachRow") {
            return Ok(trimmed.to_owned());
        }
        return Err(Error::new(
            ErrorKind::BadRequest,
            format!("the SQL asks for FORMAT {fmt}, but `sql_stream` reads JSONEachRow: remove the FORMAT clause"),
        ));
    }
    Ok(format!("{trimmed}\nFORMAT JSONEachRow"))
}

/// Appends ` FORMAT JSON` unless the statement already ends with `FORMAT <x>`; any other format is an error because
/// the result is decoded as JSON.
fn with_format_json(sql: &str) -> Result<String> {
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end();
    if trimmed.is_empty() {
        return Err(Error::new(ErrorKind::BadRequest, "the SQL is empty"));
    }
    let mut words = trimmed.rsplit(|c: char| c.is_whitespace()).filter(|w| !w.is_empty());
    let last = words.next();
    let before = words.next();
    if let (Some(fmt), Some(kw)) = (last, before)
        && kw.eq_ignore_ascii_case("format")
    {
        if fmt.eq_ignore_ascii_case("json") {
            return Ok(trimmed.to_owned());
        }
        return Err(Error::new(
            ErrorKind::BadRequest,
            format!("the SQL asks for FORMAT {fmt}, but `sql` decodes JSON: remove the FORMAT clause"),
        ));
    }
    Ok(format!("{trimmed}\nFORMAT JSON"))
}

/// Decodes a JSON envelope. The fast path is one `serde_json::from_str`; only on failure is the body read again to
/// say which column of which row (or which `meta` column) is wrong.
pub(crate) fn decode_response<T: Row>(what: &str, body: &[u8], check_meta: bool) -> Result<QueryResponse<T>> {
    // The derives' direct reader when the row type has one; serde for everything it gives up on.
    let direct = T::__row_decoder().and_then(|d| crate::rowjson::decode(std::str::from_utf8(body).ok()?, &d));
    match direct.map_or_else(|| json_from_bytes::<Envelope<T>>(body), Ok) {
        Ok(env) => {
            if check_meta {
                check_columns(what, &T::columns(), &env.meta)?;
            }
            let rows = env.rows.unwrap_or(env.data.len() as u64);
            Ok(QueryResponse {
                data: env.data,
                meta: env.meta,
                rows,
                rows_before_limit_at_least: env.rows_before_limit_at_least,
                totals: env.totals,
                statistics: env.statistics,
            })
        }
        Err(first) => {
            if check_meta && let Ok(m) = serde_json::from_slice::<MetaOnly>(body) {
                check_columns(what, &T::columns(), &m.meta)?;
            }
            Err(locate_decode_error::<Envelope<T>>(what, body, first))
        }
    }
}

/// `serde_json::from_slice`, faster: one UTF-8 check of the whole input, then the `&str` reader (the slice reader
/// validates every string on its own, about a quarter of a large decode). Invalid UTF-8 takes the slice reader, whose
/// error names the place.
pub(crate) fn json_from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Re-parses with `serde_path_to_error` to find `data[row].column`.
fn locate_decode_error<E: DeserializeOwned>(what: &str, body: &[u8], first: serde_json::Error) -> Error {
    if first.is_syntax() || first.is_eof() {
        return Error::new(
            ErrorKind::Decode { column: None, row: None },
            format!("{what}: the response is not valid JSON: {first}"),
        );
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let (row, column, inner) = match serde_path_to_error::deserialize::<_, E>(&mut de) {
        Ok(_) => (None, None, first.to_string()),
        Err(e) => {
            let (row, column) = row_and_column(e.path());
            let column = column.or_else(|| missing_field(&e.inner().to_string()));
            (row, column, e.inner().to_string())
        }
    };
    let place = match (&column, row) {
        (Some(c), Some(r)) => format!("column `{c}` of row {r}"),
        (None, Some(r)) => format!("row {r}"),
        (Some(c), None) => format!("`{c}`"),
        (None, None) => "the response".to_owned(),
    };
    Error::new(ErrorKind::Decode { column, row }, format!("{what}: cannot decode {place}: {inner}"))
}

/// `data[12].user_id` → (12, user_id).
fn row_and_column(path: &serde_path_to_error::Path) -> (Option<u64>, Option<String>) {
    use serde_path_to_error::Segment;
    let segs: Vec<&Segment> = path.iter().collect();
    let mut row = None;
    let mut column = None;
    let mut iter = segs.into_iter();
    if let Some(first) = iter.next() {
        let name = match first {
            Segment::Map { key } => Some(key.as_str()),
            Segment::Enum { variant } => Some(variant.as_str()),
            _ => None,
        };
        if name == Some("data") {
            if let Some(Segment::Seq { index }) = iter.next() {
                row = Some(*index as u64);
            }
            if let Some(Segment::Map { key }) = iter.next() {
                column = Some(key.clone());
            }
        } else if let Some(n) = name {
            column = Some(n.to_owned());
        }
    }
    (row, column)
}

/// `missing field `x`` → x.
pub(crate) fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// Compares the declared output with the response's `meta`. An empty declaration accepts anything; extra columns in
/// the response are fine (they are ignored by the row type).
pub(crate) fn check_columns(what: &str, declared: &[RowColumn], meta: &[ColumnMeta]) -> Result<()> {
    if declared.is_empty() || meta.is_empty() {
        return Ok(());
    }
    for col in declared {
        match meta.iter().find(|m| m.name == col.name) {
            None => {
                let got: Vec<&str> = meta.iter().map(|m| m.name.as_str()).collect();
                return Err(Error::new(
                    ErrorKind::SchemaMismatch { column: col.name.clone() },
                    format!(
                        "{what}: the declared output column `{}` ({}) is not in the response, which has: {}",
                        col.name,
                        col.ty,
                        got.join(", ")
                    ),
                ));
            }
            Some(m) if !col.ty.is_empty() && !types_compatible(&col.ty, &m.ty) => {
                return Err(Error::new(
                    ErrorKind::SchemaMismatch { column: col.name.clone() },
                    format!("{what}: column `{}` is declared {} but the endpoint returns {}", col.name, col.ty, m.ty),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Whether values of wire type `wire` decode as the declared type. `LowCardinality` is an encoding, not a type; time
/// zones do not change the wire format; a declared `Nullable(T)` accepts a non-null `T`.
pub(crate) fn types_compatible(declared: &str, wire: &str) -> bool {
    use crate::types::ChType;
    if let (Ok(d), Ok(w)) = (declared.parse::<ChType>(), wire.parse::<ChType>()) {
        return w.is_compatible_with(&d);
    }
    // A type the parser does not know yet: compare the normalised spellings.
    let d = normalize(declared);
    let w = normalize(wire);
    if d == w {
        return true;
    }
    if let Some(inner) = unwrap_fn(&d, "Nullable") {
        return inner == w;
    }
    false
}

fn normalize(t: &str) -> String {
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    strip(&compact)
}

fn strip(t: &str) -> String {
    if let Some(inner) = unwrap_fn(t, "LowCardinality") {
        return strip(&inner);
    }
    if let Some(inner) = unwrap_fn(t, "Nullable") {
        return format!("Nullable({})", strip(&inner));
    }
    if let Some(inner) = unwrap_fn(t, "Array") {
        return format!("Array({})", strip(&inner));
    }
    if t.starts_with("DateTime(") {
        return "DateTime".to_owned();
    }
    if let Some(inner) = unwrap_fn(t, "DateTime64") {
        let precision = inner.split(',').next().unwrap_or("3");
        return format!("DateTime64({precision})");
    }
    t.to_owned()
}

fn unwrap_fn(t: &str, name: &str) -> Option<String> {
    let rest = t.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')?;
    Some(rest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_json_is_appended_once() {
        assert_eq!(with_format_json("SELECT 1").unwrap(), "SELECT 1\nFORMAT JSON");
        assert_eq!(with_format_json("SELECT 1 format json;").unwrap(), "SELECT 1 format json");
        assert!(with_format_json("SELECT 1 FORMAT CSV").unwrap_err().to_string().contains("FORMAT CSV"));
        assert!(with_format_json("  ").is_err());
        assert_eq!(with_format_each_row("SELECT 1;").unwrap(), "SELECT 1\nFORMAT JSONEachRow");
        assert!(with_format_each_row("SELECT 1 FORMAT JSON").is_err());
        assert_eq!(with_format_json("SELECT format FROM t").unwrap(), "SELECT format FROM t\nFORMAT JSON");
    }

    #[test]
    fn compatible_types() {
        assert!(types_compatible("String", "LowCardinality(String)"));
        assert!(types_compatible("LowCardinality(String)", "String"));
        assert!(types_compatible("DateTime", "DateTime('UTC')"));
        assert!(types_compatible("DateTime64(3)", "DateTime64(3, 'Europe/Madrid')"));
        assert!(types_compatible("Nullable(UInt64)", "UInt64"));
        assert!(types_compatible("Array(LowCardinality(String))", "Array(String)"));
        assert!(!types_compatible("UInt64", "Nullable(UInt64)"));
        assert!(!types_compatible("UInt64", "Int64"));
        assert!(!types_compatible("DateTime64(3)", "DateTime64(6)"));
    }

    #[test]
    fn missing_field_name() {
        assert_eq!(missing_field("missing field `user_id` at line 1"), Some("user_id".into()));
        assert_eq!(missing_field("invalid type"), None);
    }
}
