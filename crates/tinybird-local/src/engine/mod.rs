//! The SQL engine behind the server: a narrow trait, so a second backend (a real ClickHouse over HTTP) can be added.
//!
//! Queries are ClickHouse SQL; results come back with ClickHouse type names. [`DataFusionEngine`] is the embedded
//! implementation; its ClickHouse compatibility layer lives in [`compat`] and [`functions`].

mod arithmetic;
mod arrays;
pub mod clickhouse;
pub mod compat;
mod datafusion;
mod dates;
mod datetime64;
mod decimals;
mod expect;
mod extremes;
mod fill;
pub mod functions;
mod funnels;
pub mod guard;
mod hints;
mod joins;
mod json;
mod math;
pub mod names;
mod order;
mod quantiles;
pub mod runtime;
mod states;
mod strings;
mod sums;
mod text;
mod unions;
mod value;

#[cfg(test)]
mod tests;

pub use self::clickhouse::{ClickHouseEngine, ClickHouseOptions};
pub use self::datafusion::{DEFAULT_MAX_RESULT_BYTES, DEFAULT_MEMORY_LIMIT, DataFusionEngine};
pub use compat::Flavor;
pub use value::Value;

pub(crate) use self::datafusion::{build_array, value_at};
use ::datafusion::arrow::record_batch::RecordBatch;

use crate::types::ChType;
use ::datafusion::sql::sqlparser::ast::{Expr, Query};
use async_trait::async_trait;
use tinybird_core::DatasourceDef;

/// Which tables a query may read, and under which names. The engine resolves table names only through it, so a
/// query can never reach a table, or rows of one, that its scope leaves out, whatever its text says.
#[derive(Debug, Clone, Default)]
pub enum TableScope {
    /// Every table, by its own name: the admin token, and the server's own queries.
    #[default]
    All,
    /// Only these names.
    Only(Vec<ScopedTable>),
}

/// One name a scoped query may read.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopedTable {
    /// The name the query uses.
    pub name: String,
    /// The table it reads.
    pub table: String,
    /// Conditions every row read must meet (a JWT's `DATASOURCES:READ` filters), all of them.
    pub filters: Vec<Expr>,
}

/// What the engine reports when it cannot do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The query references a table that does not exist.
    #[error("Resource '{0}' not found")]
    UnknownTable(String),
    /// The query uses a ClickHouse construct the engine does not implement.
    #[error("{0} is not supported by tinybird-local")]
    Unsupported(String),
    /// The query is not valid SQL, or is not a single SELECT.
    #[error("DB::Exception: {0}")]
    Syntax(String),
    /// The query failed while planning or running.
    #[error("DB::Exception: {0}")]
    Execution(String),
    /// A schema or data problem (unsupported column type, wrong row width, …).
    #[error("{0}")]
    Schema(String),
    /// The query ran past its deadline and was cancelled.
    #[error("DB::Exception: Timeout exceeded: the query ran longer than {} s and was cancelled. (TIMEOUT_EXCEEDED)", .0.as_secs_f64())]
    Timeout(std::time::Duration),
    /// The query needed more memory, or produced a larger result, than the server allows.
    #[error("DB::Exception: Memory limit exceeded: {0}. (MEMORY_LIMIT_EXCEEDED)")]
    Memory(String),
    /// ClickHouse refused the query: its own message (`DB::Exception: … (CODE)`), passed through.
    #[error("{0}")]
    ClickHouse(String),
    /// Rows were appended, but a materialized view fed by them failed (its error; the view's name inside).
    #[error("{0}")]
    ViewFailed(String),
}

/// How an engine that formats rows itself (ClickHouse) writes each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowText {
    /// A JSON object (`JSON`, `JSONEachRow`).
    Json,
    /// A CSV line.
    Csv,
    /// A TSV line.
    Tsv,
}

/// What a query's rows are for: the text form, and the JSON output settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// The form of each row.
    pub text: RowText,
    /// `output_format_json_quote_64bit_integers`.
    pub quote_64bit: bool,
    /// `output_format_json_quote_denormals`.
    pub quote_denormals: bool,
}

impl Output {
    /// JSON rows with no precision lost (the server's own reads).
    pub fn exact_json() -> Output {
        Output { text: RowText::Json, quote_64bit: false, quote_denormals: true }
    }
}

/// Rows an engine formatted itself, one text per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRows {
    /// Their form.
    pub kind: RowText,
    /// One per row, without a line break.
    pub rows: Vec<String>,
    /// The `WITH TOTALS` row, in the same form, when the query asked for one.
    pub totals: Option<String>,
}

/// One result column: its name and ClickHouse type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Output column name.
    pub name: String,
    /// ClickHouse type, printed as `meta[].type`.
    pub ty: ChType,
}

/// The result of a query: Arrow batches (the outermost literal `LIMIT`/`OFFSET` already applied), read as rows of
/// [`Value`]s on demand. Output formats write JSON straight from the batches, so a large result is never turned
/// into one allocation per row and per string.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Output columns, in order.
    pub columns: Vec<Column>,
    /// The rows, as Arrow batches whose columns follow `columns`.
    pub batches: Vec<RecordBatch>,
    /// Rows the query would have returned without its outermost `LIMIT`, when it has one.
    pub rows_before_limit: Option<u64>,
    /// Rows stored in the tables the query read.
    pub rows_read: u64,
    /// Approximate bytes stored in the tables the query read.
    pub bytes_read: u64,
    /// The rows as the engine formatted them, when it did (then `batches` is empty).
    pub text: Option<TextRows>,
    /// The `WITH TOTALS` row as a one-row batch whose columns follow `columns`, when the query asked for one and
    /// the engine did not format it in `text`.
    pub totals: Option<RecordBatch>,
    rows: std::sync::OnceLock<Vec<Vec<Value>>>,
}

impl QueryResult {
    /// A result from its parts.
    pub fn new(
        columns: Vec<Column>,
        batches: Vec<RecordBatch>,
        rows_before_limit: Option<u64>,
        rows_read: u64,
        bytes_read: u64,
    ) -> Self {
        QueryResult {
            columns,
            batches,
            rows_before_limit,
            rows_read,
            bytes_read,
            text: None,
            totals: None,
            rows: std::sync::OnceLock::new(),
        }
    }

    /// A result whose rows the engine formatted itself.
    pub fn from_text(
        columns: Vec<Column>,
        text: TextRows,
        rows_before_limit: Option<u64>,
        rows_read: u64,
        bytes_read: u64,
    ) -> Self {
        QueryResult {
            columns,
            batches: Vec::new(),
            rows_before_limit,
            rows_read,
            bytes_read,
            text: Some(text),
            totals: None,
            rows: std::sync::OnceLock::new(),
        }
    }

    /// How many rows the result has.
    pub fn num_rows(&self) -> usize {
        match &self.text {
            Some(text) => text.rows.len(),
            None => self.batches.iter().map(RecordBatch::num_rows).sum(),
        }
    }

    /// The rows, each with one value per column (converted from the batches, or read from JSON rows, once, on
    /// first use).
    pub fn rows(&self) -> &[Vec<Value>] {
        self.rows.get_or_init(|| {
            if let Some(text) = &self.text {
                return match text.kind {
                    RowText::Json => text.rows.iter().map(|r| clickhouse::json_row(r, &self.columns)).collect(),
                    RowText::Csv | RowText::Tsv => Vec::new(),
                };
            }
            let mut rows = Vec::with_capacity(self.num_rows());
            for batch in &self.batches {
                for r in 0..batch.num_rows() {
                    rows.push(batch.columns().iter().map(|a| value_at(a.as_ref(), r)).collect());
                }
            }
            rows
        })
    }
}

impl PartialEq for QueryResult {
    fn eq(&self, other: &Self) -> bool {
        (&self.columns, self.rows(), self.rows_before_limit, self.rows_read, self.bytes_read)
            == (&other.columns, other.rows(), other.rows_before_limit, other.rows_read, other.bytes_read)
    }
}

/// ClickHouse's table functions that only generate rows (no table, file or server is read): what a query on the
/// ClickHouse engine may read besides the workspace's datasources.
pub(crate) const GENERATORS: &[&str] =
    &["numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateSeries", "values"];

/// The table engines a datasource may use, on either engine (Tinybird's): the `MergeTree` family and `Null`.
pub(crate) use tinybird_types::TABLE_ENGINES as ENGINES;

/// A SQL engine holding the workspace's datasources.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// Which SQL the engine runs, so the server parses callers' queries for it.
    fn flavor(&self) -> Flavor {
        Flavor::DataFusion
    }
    /// Creates (or replaces, dropping its rows) the table for a datasource.
    async fn create_table(&self, def: &DatasourceDef) -> Result<(), EngineError>;
    /// Creates (or replaces) a table from explicit columns (used for quarantine tables).
    async fn create_table_with_columns(&self, name: &str, columns: &[(String, ChType)]) -> Result<(), EngineError>;
    /// Drops a table; unknown tables are ignored.
    async fn drop_table(&self, name: &str) -> Result<(), EngineError>;
    /// The table's columns, if it exists.
    fn table_columns(&self, name: &str) -> Option<Vec<Column>>;
    /// Appends rows (each in the table's column order, already converted to the column types).
    async fn append(&self, table: &str, rows: Vec<Vec<Value>>) -> Result<u64, EngineError>;
    /// Runs one ClickHouse SELECT over every table (for the admin and the server's own queries).
    async fn query(&self, sql: &str) -> Result<QueryResult, EngineError> {
        self.run_query(compat::parse(sql)?, &TableScope::All).await
    }
    /// Runs one parsed ClickHouse SELECT (from [`compat::parse`]) reading only what `scope` allows: the tree is run
    /// as it is, never printed and parsed again.
    async fn run_query(&self, query: Query, scope: &TableScope) -> Result<QueryResult, EngineError>;
    /// [`Engine::run_query`] for a response in a given form: an engine that formats rows itself returns them as
    /// [`TextRows`] of that form; others return batches, which the server formats.
    async fn run_query_as(&self, query: Query, scope: &TableScope, output: Output) -> Result<QueryResult, EngineError> {
        let _ = output;
        self.run_query(query, scope).await
    }
    /// Whether the engine feeds materialized views itself (ClickHouse's own materialized views), so the server
    /// neither runs views on ingested rows nor backfills them.
    fn native_views(&self) -> bool {
        false
    }
    /// Replaces the engine's materialized views with `views` (name, target table, query over datasources), and fills
    /// the targets of those named in `backfill` from the rows their datasources hold. Only for engines with
    /// [`Engine::native_views`].
    async fn set_views(&self, views: Vec<(String, String, Query)>, backfill: &[String]) -> Result<(), EngineError> {
        let _ = (views, backfill);
        Ok(())
    }
    /// Deletes the rows matching a ClickHouse boolean expression; with `dry_run`, only counts them.
    async fn delete(&self, table: &str, condition: &str, dry_run: bool) -> Result<u64, EngineError>;
    /// Removes every row of a table.
    async fn truncate(&self, table: &str) -> Result<(), EngineError>;
    /// Every row of a table, in column order (used for snapshots to disk).
    async fn dump(&self, table: &str) -> Result<Vec<Vec<Value>>, EngineError>;
}
