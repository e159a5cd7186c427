//! The ClickHouse engine: ClickHouse itself, in process (chDB), behind the same [`Engine`] trait as DataFusion.
//!
//! Each engine (one per server) owns a database with a random name holding its datasources as real tables, with
//! the datafile's engine and keys, and a second, empty one that callers' queries run in. A checked query has its
//! tables bound to the first database by name (filtered ones through a subquery applying the filters), so a name
//! the checks did not bind resolves in the empty database and fails. Callers' queries run on connections set to
//! `readonly = 2`. Rows are formatted by ClickHouse itself, and `meta` types are ClickHouse's own.

#[allow(unsafe_code)]
pub mod chdb;
mod sql;

pub(crate) use sql::check_ddl;

use self::chdb::{ChError, Chdb, ChdbLocation, Pool};
use super::compat::{self, Flavor};
use super::{Column, Engine, EngineError, Output, QueryResult, RowText, TableScope, TextRows, Value};
use crate::types::ChType;
use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::Query;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tinybird_core::DatasourceDef;

/// Settings for [`ClickHouseEngine::start`].
#[derive(Debug, Clone)]
pub struct ClickHouseOptions {
    /// Where chDB and libpython are (unset: the environment, then `python3`).
    pub location: ChdbLocation,
    /// ClickHouse's `max_execution_time` for each query.
    pub query_timeout: Duration,
    /// ClickHouse's `max_result_bytes` for each query.
    pub max_result_bytes: usize,
    /// ClickHouse's `max_memory_usage` for each query.
    pub memory_limit: usize,
}

impl Default for ClickHouseOptions {
    fn default() -> Self {
        ClickHouseOptions {
            location: ChdbLocation::default(),
            query_timeout: Duration::from_secs(10),
            max_result_bytes: super::DEFAULT_MAX_RESULT_BYTES,
            memory_limit: super::DEFAULT_MEMORY_LIMIT,
        }
    }
}

/// The ClickHouse implementation of [`Engine`].
pub struct ClickHouseEngine {
    chdb: Arc<Chdb>,
    database: String,
    sandbox: String,
    /// Connections in `database`: DDL, inserts and the server's own queries.
    admin: Arc<Pool>,
    /// Connections in the empty `sandbox`, read-only: callers' queries.
    user: Arc<Pool>,
    tables: RwLock<HashMap<String, Vec<Column>>>,
    /// Each table's engine (`MergeTree`, `ReplacingMergeTree`, …), for `FINAL`.
    engines: RwLock<HashMap<String, String>>,
    /// Counts the writes (DDL, inserts, deletes): the [`Self::sizes`] read before the last write are stale.
    writes: std::sync::atomic::AtomicU64,
    /// Rows and bytes of every table, for a query's statistics, with the [`Self::writes`] count they were read at: a
    /// query between two writes does not ask `system.tables` again.
    sizes: std::sync::Mutex<Option<(u64, TableSizes)>>,
    /// The columns (names, types) of the queries described so far, by [`sql::shape`]: a query of a known shape runs
    /// without its `DESCRIBE`. Emptied by any DDL.
    described: std::sync::Mutex<HashMap<String, Described>>,
    /// The materialized views this engine created (their ClickHouse names).
    views: tokio::sync::Mutex<Vec<String>>,
    options: ClickHouseOptions,
}

impl std::fmt::Debug for ClickHouseEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseEngine")
            .field("version", &self.chdb.version)
            .field("database", &self.database)
            .finish()
    }
}

impl ClickHouseEngine {
    /// Loads chDB (once per process) and creates this engine's databases. Blocks for the load (about a second the
    /// first time).
    pub fn start(options: ClickHouseOptions) -> Result<ClickHouseEngine, String> {
        let chdb = chdb::load(&options.location)?;
        let database = format!("tb_{}", uuid::Uuid::new_v4().simple());
        let sandbox = format!("tb_{}", uuid::Uuid::new_v4().simple());
        let admin = Pool::new(chdb.clone(), vec![format!("USE {}", compat::quote_ident(&database))]);
        let user = Pool::new(
            chdb.clone(),
            vec![format!("USE {}", compat::quote_ident(&sandbox)), "SET readonly = 2".to_string()],
        );
        let mut setup = Pool::new(chdb.clone(), Vec::new()).take().map_err(|e| e.message)?;
        for db in [&database, &sandbox] {
            chdb::execute(&mut setup, &format!("CREATE DATABASE IF NOT EXISTS {}", compat::quote_ident(db)))
                .map_err(|e| e.message)?;
        }
        Ok(ClickHouseEngine {
            chdb,
            database,
            sandbox,
            admin,
            user,
            tables: RwLock::new(HashMap::new()),
            engines: RwLock::new(HashMap::new()),
            writes: std::sync::atomic::AtomicU64::new(0),
            sizes: std::sync::Mutex::new(None),
            described: std::sync::Mutex::new(HashMap::new()),
            views: tokio::sync::Mutex::new(Vec::new()),
            options,
        })
    }

    /// The ClickHouse version running (`SELECT version()`).
    pub fn version(&self) -> &str {
        &self.chdb.version
    }

    fn table_names(&self) -> HashSet<String> {
        self.tables.read().map(|t| t.keys().cloned().collect()).unwrap_or_default()
    }

    fn table(&self, name: &str) -> Result<Vec<Column>, EngineError> {
        self.tables
            .read()
            .ok()
            .and_then(|t| t.get(name).cloned())
            .ok_or_else(|| EngineError::UnknownTable(name.to_string()))
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", compat::quote_ident(&self.database), compat::quote_ident(table))
    }

    /// A ClickHouse error as the server reports it: this engine's database names taken out of the text.
    fn error(&self, e: ChError) -> EngineError {
        let mut message = e.message;
        for db in [&self.database, &self.sandbox] {
            message =
                message.replace(&format!("`{db}`."), "").replace(&format!("{db}."), "").replace(db.as_str(), "default");
        }
        match e.name.as_deref() {
            Some("TIMEOUT_EXCEEDED") => EngineError::Timeout(self.options.query_timeout),
            Some("MEMORY_LIMIT_EXCEEDED" | "TOO_MANY_ROWS_OR_BYTES") => {
                EngineError::Memory(message.trim_start_matches("DB::Exception: ").to_string())
            }
            _ => EngineError::ClickHouse(message),
        }
    }

    async fn admin_execute(&self, statement: String) -> Result<(), EngineError> {
        self.wrote();
        if let Ok(mut described) = self.described.lock() {
            described.clear();
        }
        let outcome = self.admin.run(move |conn| chdb::execute(conn, &statement)).await.map_err(|e| self.error(e));
        self.wrote();
        outcome
    }

    /// Marks the cached table sizes stale; called before and after every write, so a size read while a write runs
    /// is not kept.
    fn wrote(&self) {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Rows and bytes stored in these tables, from `system.tables`, read once per write.
    async fn sizes_of(&self, pool: &Arc<Pool>, tables: Vec<String>) -> Result<(u64, u64), ChError> {
        if tables.is_empty() {
            return Ok((0, 0));
        }
        let sum = |sizes: &TableSizes| {
            tables.iter().filter_map(|t| sizes.get(t)).fold((0, 0), |(r, b), (tr, tb)| (r + tr, b + tb))
        };
        let generation = self.writes.load(std::sync::atomic::Ordering::SeqCst);
        if let Ok(cache) = self.sizes.lock()
            && let Some((at, sizes)) = cache.as_ref()
            && *at == generation
        {
            return Ok(sum(sizes));
        }
        let sql = format!(
            "SELECT name, total_rows, total_bytes FROM system.tables WHERE database = '{}'",
            self.database.replace('\\', "\\\\").replace('\'', "\\'")
        );
        let sizes = pool
            .run(move |conn| {
                let batches = chdb::query(conn, &sql)?;
                let names = strings(&batches, 0);
                let mut numbers = Vec::with_capacity(names.len());
                for batch in &batches {
                    for row in 0..batch.num_rows() {
                        let n = |column: usize| u64_at(batch, column, row).unwrap_or(0);
                        numbers.push((n(1), n(2)));
                    }
                }
                Ok(names.into_iter().zip(numbers).collect::<TableSizes>())
            })
            .await?;
        let total = sum(&sizes);
        if let Ok(mut cache) = self.sizes.lock() {
            *cache = Some((generation, sizes));
        }
        Ok(total)
    }

    /// [`Engine::append`]'s work, between the marks of a write.
    async fn append_rows(&self, table: &str, rows: Vec<Vec<Value>>) -> Result<u64, EngineError> {
        let columns = self.table(table)?;
        let count = rows.len() as u64;
        if rows.is_empty() {
            return Ok(0);
        }
        // Columns of the types Arrow carries as ClickHouse reads them go in as one Arrow batch (no text to parse);
        // a table with any other type, or with materialized views (which need one block, see `INSERT_SETTINGS`),
        // as JSON.
        if columns.iter().all(|c| arrow_ingestible(&c.ty)) && self.views.lock().await.is_empty() {
            let mut arrays = Vec::with_capacity(columns.len());
            let mut fields = Vec::with_capacity(columns.len());
            for (i, c) in columns.iter().enumerate() {
                if let Some(bad) = rows.iter().find(|r| r.len() != columns.len()) {
                    return Err(EngineError::Schema(format!(
                        "row has {} values, table has {} columns",
                        bad.len(),
                        columns.len()
                    )));
                }
                let values: Vec<&Value> = rows.iter().map(|r| &r[i]).collect();
                let array = super::build_array(&c.ty, &values)
                    .map_err(|e| EngineError::Schema(format!("column '{}': {e}", c.name)))?;
                fields.push(datafusion::arrow::datatypes::Field::new(
                    &c.name,
                    array.data_type().clone(),
                    c.ty.is_nullable(),
                ));
                arrays.push(array);
            }
            let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
            let batch = RecordBatch::try_new(schema, arrays).map_err(|e| EngineError::Schema(e.to_string()))?;
            let (database, table) = (self.database.clone(), table.to_string());
            self.admin
                .run(move |conn| chdb::ingest(conn, &database, &table, batch))
                .await
                .map_err(|e| self.error(e))?;
            return Ok(count);
        }
        const EXACT: crate::format::OutputOptions =
            crate::format::OutputOptions { quote_64bit: true, quote_denormals: true };
        let keys: Vec<String> = columns.iter().map(|c| crate::format::json_string(&c.name)).collect();
        // With materialized views, one block (see `INSERT_SETTINGS`); without, ClickHouse parses in parallel.
        let settings = if self.views.lock().await.is_empty() { "" } else { INSERT_SETTINGS };
        let mut statement = if settings.is_empty() {
            format!("INSERT INTO {} FORMAT JSONEachRow\n", self.qualified(table))
        } else {
            format!("INSERT INTO {} SETTINGS {settings} FORMAT JSONEachRow\n", self.qualified(table))
        };
        statement.reserve(rows.len() * 16 * columns.len().max(1));
        for row in &rows {
            if row.len() != columns.len() {
                return Err(EngineError::Schema(format!(
                    "row has {} values, table has {} columns",
                    row.len(),
                    columns.len()
                )));
            }
            statement.push('{');
            for (i, ((value, column), key)) in row.iter().zip(&columns).zip(&keys).enumerate() {
                if i > 0 {
                    statement.push(',');
                }
                statement.push_str(key);
                statement.push(':');
                crate::format::json_value(&mut statement, value, &column.ty, EXACT);
            }
            statement.push_str("}\n");
        }
        let table = table.to_string();
        let outcome = self
            .admin
            .run(move |conn| match chdb::execute(conn, &statement) {
                // A materialized view fed by these rows failed. The rows are in the table already: ClickHouse
                // writes the table first and does not roll it back (one block, see `INSERT_SETTINGS`), which is
                // Tinybird's answer too: 422, rows ingested, view failed.
                Err(e) if e.message.contains("while pushing to view") => Ok(Some(e)),
                other => other.map(|_| None),
            })
            .await
            .map_err(|e| self.error(e))?;
        match outcome {
            None => Ok(count),
            Some(view_error) => {
                let message = match self.error(view_error) {
                    EngineError::ClickHouse(m) => m,
                    other => other.to_string(),
                };
                Err(EngineError::ViewFailed(format!(
                    "Rows were ingested into '{table}', but a materialized view failed: {}",
                    message.replace("__tb_mv_", "")
                )))
            }
        }
    }

    /// [`Engine::delete`]'s work, between the marks of a write.
    async fn delete_rows(&self, table: &str, condition: &str, dry_run: bool) -> Result<u64, EngineError> {
        let condition = sql::print_condition(&compat::parse_condition(condition)?)?;
        let count = format!("SELECT count() FROM {} WHERE ({condition})", self.qualified(table));
        let delete = (!dry_run).then(|| format!("DELETE FROM {} WHERE ({condition})", self.qualified(table)));
        self.admin
            .run(move |conn| {
                let n = first_u64(&chdb::query(conn, &count)?).unwrap_or(0);
                if let Some(delete) = delete
                    && n > 0
                {
                    chdb::execute(conn, &delete)?;
                }
                Ok(n)
            })
            .await
            .map_err(|e| self.error(e))
    }

    /// The settings every caller query runs with: its limits and the output format's.
    fn settings(&self, output: &Output) -> String {
        format!(
            "max_execution_time = {}, max_result_bytes = {}, max_memory_usage = {}, \
             output_format_json_quote_64bit_integers = {}, output_format_json_quote_denormals = {}, \
             output_format_json_validate_utf8 = 1",
            self.options.query_timeout.as_secs().max(1),
            self.options.max_result_bytes,
            self.options.memory_limit,
            u8::from(output.quote_64bit),
            u8::from(output.quote_denormals),
        )
    }
}

/// Whether a column type goes to ClickHouse as Arrow exactly: numbers, strings, booleans, dates, date-times in UTC,
/// and arrays, `Nullable` and `LowCardinality` of them. Text-stored types (`UUID`, `Enum`, …), types with a time zone
/// and the types only ClickHouse stores go as JSON.
fn arrow_ingestible(ty: &ChType) -> bool {
    match ty {
        ChType::Int { .. } | ChType::Float(_) | ChType::String | ChType::Bool | ChType::Date { .. } => true,
        ChType::Decimal(..) => true,
        ChType::DateTime { tz: None, .. } => true,
        ChType::Array(inner) | ChType::Nullable(inner) | ChType::LowCardinality(inner) => arrow_ingestible(inner),
        ChType::DateTime { tz: Some(_), .. } | ChType::Named(_) | ChType::Opaque(_) => false,
    }
}

/// Each append is one block: the table is written whole before any materialized view runs on it.
const INSERT_SETTINGS: &str = "input_format_parallel_parsing = 0, max_insert_block_size = 1000000000, min_insert_block_size_rows = 0, min_insert_block_size_bytes = 0";

/// A column of a result as strings. ClickHouse strings are bytes: any that are not UTF-8 are read with U+FFFD in
/// place of the bad sequences (the Arrow import does not check them, so they are never read as `str` directly).
pub fn strings(batches: &[RecordBatch], column: usize) -> Vec<String> {
    let mut out = Vec::new();
    for batch in batches {
        let array = batch.column(column);
        match array.as_string_opt::<i32>() {
            Some(text) => {
                let (offsets, bytes) = (text.value_offsets(), text.values().as_slice());
                for row in 0..text.len() {
                    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                    out.push(String::from_utf8_lossy(bytes.get(start..end).unwrap_or_default()).into_owned());
                }
            }
            None => {
                for row in 0..array.len() {
                    out.push(match super::value_at(array.as_ref(), row) {
                        Value::Str(s) => s,
                        other => format!("{other:?}"),
                    });
                }
            }
        }
    }
    out
}

fn first_u64(batches: &[RecordBatch]) -> Option<u64> {
    u64_at(batches.iter().find(|b| b.num_rows() > 0)?, 0, 0)
}

/// A count or size in a result: an unsigned value, a non-negative signed one, 0 for NULL; None for anything else.
fn u64_at(batch: &RecordBatch, column: usize, row: usize) -> Option<u64> {
    match super::value_at(batch.column(column).as_ref(), row) {
        Value::UInt(n) => Some(n),
        Value::Int(n) => u64::try_from(n).ok(),
        Value::Null => Some(0),
        _ => None,
    }
}

/// A ClickHouse type name as the server models it, exactly as ClickHouse printed it.
fn column_type(text: &str) -> ChType {
    match ChType::parse(text) {
        Ok(ty) if ty.to_string() == text => ty,
        _ => ChType::Named(text.to_string()),
    }
}

#[async_trait]
impl Engine for ClickHouseEngine {
    fn flavor(&self) -> Flavor {
        Flavor::ClickHouse
    }

    async fn create_table(&self, def: &DatasourceDef) -> Result<(), EngineError> {
        let mut columns = Vec::with_capacity(def.columns.len());
        for c in &def.columns {
            let ty = ChType::parse_for_clickhouse(&c.ty)
                .map_err(|e| EngineError::Schema(format!("datasource '{}', column '{}': {e}", def.name, c.name)))?;
            columns.push(Column { name: c.name.clone(), ty });
        }
        let ddl = sql::create_table(&self.database, def)?;
        self.admin_execute(format!("DROP TABLE IF EXISTS {} SYNC", self.qualified(&def.name))).await?;
        self.admin_execute(ddl).await.map_err(|e| match e {
            EngineError::ClickHouse(m) => EngineError::Schema(format!("datasource '{}': {m}", def.name)),
            other => other,
        })?;
        self.tables.write().map_err(|_| poisoned())?.insert(def.name.clone(), columns);
        self.engines.write().map_err(|_| poisoned())?.insert(def.name.clone(), def.engine.kind.clone());
        Ok(())
    }

    async fn create_table_with_columns(&self, name: &str, columns: &[(String, ChType)]) -> Result<(), EngineError> {
        self.admin_execute(format!("DROP TABLE IF EXISTS {} SYNC", self.qualified(name))).await?;
        self.admin_execute(sql::create_table_with_columns(&self.database, name, columns)).await?;
        let columns = columns.iter().map(|(n, t)| Column { name: n.clone(), ty: t.clone() }).collect();
        self.tables.write().map_err(|_| poisoned())?.insert(name.to_string(), columns);
        self.engines.write().map_err(|_| poisoned())?.insert(name.to_string(), "MergeTree".into());
        Ok(())
    }

    async fn drop_table(&self, name: &str) -> Result<(), EngineError> {
        self.admin_execute(format!("DROP TABLE IF EXISTS {} SYNC", self.qualified(name))).await?;
        self.tables.write().map_err(|_| poisoned())?.remove(name);
        self.engines.write().map_err(|_| poisoned())?.remove(name);
        Ok(())
    }

    fn table_columns(&self, name: &str) -> Option<Vec<Column>> {
        self.table(name).ok()
    }

    async fn append(&self, table: &str, rows: Vec<Vec<Value>>) -> Result<u64, EngineError> {
        self.wrote();
        let outcome = self.append_rows(table, rows).await;
        self.wrote();
        outcome
    }

    fn native_views(&self) -> bool {
        true
    }

    async fn set_views(&self, views: Vec<(String, String, Query)>, backfill: &[String]) -> Result<(), EngineError> {
        let mut live = self.views.lock().await;
        for name in live.drain(..) {
            self.admin_execute(format!("DROP VIEW IF EXISTS {} SYNC", self.qualified(&name))).await?;
        }
        let tables = self.table_names();
        for (name, target, query) in views {
            let view = format!("__tb_mv_{name}");
            let binding = sql::Binding { database: &self.database, tables: &tables };
            let text = sql::prepare(query, &TableScope::All, &binding)?;
            let target_columns = self.table(&target)?;
            self.admin_execute(format!(
                "CREATE MATERIALIZED VIEW {} TO {} AS {text}",
                self.qualified(&view),
                self.qualified(&target)
            ))
            .await
            .map_err(|e| EngineError::Schema(format!("materialized view '{name}': {e}")))?;
            live.push(view);
            if backfill.contains(&name) {
                // Tinybird fills a new view's target from what its datasources hold; columns match by name.
                let described = self
                    .admin
                    .run({
                        let text = text.clone();
                        move |conn| {
                            chdb::query(conn, &format!("DESCRIBE ({text}) SETTINGS print_pretty_type_names = 0"))
                        }
                    })
                    .await
                    .map_err(|e| self.error(e))?;
                let produced = strings(&described, 0);
                let columns: Vec<String> = target_columns
                    .iter()
                    .filter(|c| produced.contains(&c.name))
                    .map(|c| compat::quote_ident(&c.name))
                    .collect();
                if !columns.is_empty() {
                    let list = columns.join(", ");
                    self.admin_execute(format!(
                        "INSERT INTO {} ({list}) SELECT {list} FROM ({text})",
                        self.qualified(&target)
                    ))
                    .await
                    .map_err(|e| EngineError::Schema(format!("backfilling materialized view '{name}': {e}")))?;
                }
            }
        }
        Ok(())
    }

    async fn run_query(&self, query: Query, scope: &TableScope) -> Result<QueryResult, EngineError> {
        self.run_query_as(query, scope, Output::exact_json()).await
    }

    async fn run_query_as(&self, query: Query, scope: &TableScope, output: Output) -> Result<QueryResult, EngineError> {
        let tables = self.table_names();
        let binding = sql::Binding { database: &self.database, tables: &tables };
        let (query, totals) = sql::split_totals(query)?;
        // Every statement of this query carries a mark, so that if the caller goes away (the request's future is
        // dropped: the client disconnected) they are killed rather than left to run to their deadline.
        let cancel = Cancel::new(self.admin.clone());
        let mark = cancel.mark();
        // The rows a LIMIT cut: counted by the rows' own statement where a window can count them (the query runs
        // once), else by a statement of their own over the query without its LIMIT.
        let counter = format!("__tb_rows_{}", cancel.id);
        let windowed =
            sql::count_before_limit(&query, &counter).map(|q| sql::prepare(q, scope, &binding)).transpose()?;
        let unlimited = query.limit_clause.as_ref().map(|_| Query { limit_clause: None, ..query.clone() });
        let count = match (&unlimited, &windowed) {
            (Some(unlimited), None) => Some(sql::prepare(unlimited.clone(), scope, &binding)?),
            _ => None,
        };
        let read: Vec<String> = match scope {
            TableScope::All => compat::referenced_tables(&query).into_iter().filter(|t| tables.contains(t)).collect(),
            TableScope::Only(list) => list.iter().map(|t| t.table.clone()).collect(),
        };
        if compat::has_final(&query) {
            // `FINAL` was taken off each table for `SETTINGS final = 1`, which ClickHouse ignores on a table that
            // cannot merge at read time; `FINAL` written on such a table is an error there, and so it is here.
            let engines = self.engines.read().map_err(|_| poisoned())?;
            if let Some(engine) = read.iter().filter_map(|t| engines.get(t)).find(|e| !supports_final(e)) {
                return Err(EngineError::ClickHouse(format!(
                    "DB::Exception: Storage {engine} doesn't support FINAL. (ILLEGAL_FINAL)"
                )));
            }
        }
        let totals = totals.map(|t| sql::prepare(t, scope, &binding)).transpose()?;
        let (text, shape) = sql::prepare_shaped(query, scope, &binding)?;
        let known = self.described.lock().ok().and_then(|d| d.get(&shape).cloned());
        let format = match output.text {
            // Values by position: ClickHouse names a wrapped query's columns anew (`_subquery_2` where `DESCRIBE`
            // says `_subquery_1`), so the keys are the described names, put on below.
            RowText::Json => "JSONCompactEachRow",
            RowText::Csv => "CSV",
            RowText::Tsv => "TSV",
        };
        let settings = self.settings(&output);
        let pool = match scope {
            TableScope::All => self.admin.clone(),
            TableScope::Only(_) => self.user.clone(),
        };
        // The rows, their types, the count without LIMIT and the tables' sizes are four statements: they run at
        // once, each on a connection of its own, so a query costs the slowest of them rather than their sum.
        let described = async {
            if let Some(known) = known {
                return Ok(known);
            }
            // Types on one line, as the JSON output names them (`Tuple(a UInt8, b String)`).
            let sql = format!("{mark}DESCRIBE ({text}) SETTINGS print_pretty_type_names = 0");
            let described = pool.run(move |conn| chdb::query(conn, &sql)).await?;
            let columns = (strings(&described, 0), strings(&described, 1));
            if let Ok(mut cache) = self.described.lock() {
                if cache.len() >= 4096 {
                    cache.clear();
                }
                cache.insert(shape, columns.clone());
            }
            Ok(columns)
        };
        let rows = {
            let sql = match &windowed {
                Some(windowed) => format!(
                    "{mark}SELECT formatRowNoNewline('{format}', * EXCEPT (`{counter}`)), `{counter}` FROM ({windowed}) \
                     SETTINGS {settings}"
                ),
                None => format!("{mark}SELECT formatRowNoNewline('{format}', *) FROM ({text}) SETTINGS {settings}"),
            };
            pool.run(move |conn| {
                let batches = chdb::query(conn, &sql)?;
                Ok((
                    strings(&batches, 0),
                    batches
                        .iter()
                        .find(|b| b.num_rows() > 0 && b.num_columns() > 1)
                        .map(|b| u64_at(b, 1, 0).unwrap_or(0)),
                ))
            })
        };
        let totals = async {
            match totals {
                Some(totals) => {
                    let sql =
                        format!("{mark}SELECT formatRowNoNewline('{format}', *) FROM ({totals}) SETTINGS {settings}");
                    pool.run(move |conn| chdb::query(conn, &sql).map(|b| strings(&b, 0))).await.map(Some)
                }
                None => Ok(None),
            }
        };
        // `count()` of a query without its LIMIT.
        let count_rows = |unlimited: String| {
            let sql = format!("{mark}SELECT count() FROM ({unlimited}) SETTINGS {settings}");
            pool.run(move |conn| chdb::query(conn, &sql).map(|b| first_u64(&b)))
        };
        let before_limit = async {
            match count {
                Some(count) => count_rows(count).await,
                None => Ok(None),
            }
        };
        let sizes = self.sizes_of(&pool, read);
        let (described, rows, totals, before_limit, sizes) = tokio::join!(described, rows, totals, before_limit, sizes);
        cancel.disarm();
        let mut totals = match totals.map_err(|e| self.error(e))? {
            Some(mut rows) if rows.len() == 1 => rows.pop(),
            Some(rows) => {
                return Err(EngineError::Execution(format!(
                    "WITH TOTALS gave {} totals rows where one was expected",
                    rows.len()
                )));
            }
            None => None,
        };
        let (names, types) = described.map_err(|e| self.error(e))?;
        let outcome = (
            names,
            types,
            rows.map_err(|e| self.error(e))?,
            before_limit.map_err(|e| self.error(e))?,
            sizes.map_err(|e| self.error(e))?,
        );
        let (names, types, (mut rows, counted), before_limit, (rows_read, bytes_read)) = outcome;
        let before_limit = match (&windowed, counted) {
            (Some(_), Some(counted)) => Some(counted),
            // No row came back to carry the count (an OFFSET past the end): counted apart.
            (Some(_), None) => match unlimited {
                Some(unlimited) => {
                    count_rows(sql::prepare(unlimited, scope, &binding)?).await.map_err(|e| self.error(e))?
                }
                None => None,
            },
            (None, _) => before_limit,
        };
        if output.text == RowText::Json {
            for row in rows.iter_mut().chain(totals.as_mut()) {
                *row = json_object(row, &names).ok_or_else(|| {
                    EngineError::Execution(format!(
                        "ClickHouse wrote a row that is not a JSON array of {} values",
                        names.len()
                    ))
                })?;
            }
        }
        let columns = names.into_iter().zip(types).map(|(name, ty)| Column { name, ty: column_type(&ty) }).collect();
        Ok(QueryResult::from_text(
            columns,
            TextRows { kind: output.text, rows, totals },
            before_limit,
            rows_read,
            bytes_read,
        ))
    }

    async fn delete(&self, table: &str, condition: &str, dry_run: bool) -> Result<u64, EngineError> {
        self.table(table)?;
        self.wrote();
        let outcome = self.delete_rows(table, condition, dry_run).await;
        self.wrote();
        outcome
    }

    async fn truncate(&self, table: &str) -> Result<(), EngineError> {
        self.table(table)?;
        self.admin_execute(format!("TRUNCATE TABLE {} SYNC", self.qualified(table))).await
    }

    async fn dump(&self, table: &str) -> Result<Vec<Vec<Value>>, EngineError> {
        self.table(table)?;
        let result = self.query(&format!("SELECT * FROM {}", compat::quote_ident(table))).await?;
        Ok(result.rows().to_vec())
    }
}

impl Drop for ClickHouseEngine {
    fn drop(&mut self) {
        // The databases go with the server (a few milliseconds); chDB itself stays loaded for the process.
        if let Ok(mut conn) = self.admin.take() {
            for db in [&self.database, &self.sandbox] {
                let _ = chdb::execute(&mut conn, &format!("DROP DATABASE IF EXISTS {} SYNC", compat::quote_ident(db)));
            }
        }
    }
}

/// A query's column names and their types, as `DESCRIBE` gives them.
type Described = (Vec<String>, Vec<String>);

/// Rows and bytes stored in each table, by name.
type TableSizes = HashMap<String, (u64, u64)>;

/// Kills the statements of a query whose caller went away. Each statement's text starts with [`Cancel::mark`] (a
/// comment with a random id); dropped before [`Cancel::disarm`], it runs `KILL QUERY` for that id on an admin
/// connection, in the background.
struct Cancel {
    admin: Arc<Pool>,
    id: String,
    armed: bool,
}

impl Cancel {
    fn new(admin: Arc<Pool>) -> Cancel {
        Cancel { admin, id: uuid::Uuid::new_v4().simple().to_string(), armed: true }
    }

    /// The comment that starts each statement of the query.
    fn mark(&self) -> String {
        format!("/* tb_query_{} */ ", self.id)
    }

    /// The statements finished: nothing to kill.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        // The pattern is built from pieces, so the text of the KILL statement itself does not hold the mark.
        let kill = format!("KILL QUERY WHERE query LIKE concat('%/* tb_query_', '{}', ' */%') ASYNC", self.id);
        let admin = self.admin.clone();
        runtime.spawn(async move {
            let _ = admin.run(move |conn| chdb::query(conn, &kill).map(|_| ())).await;
        });
    }
}

/// Whether ClickHouse merges a table of this engine at read time under `FINAL` (the engines that collapse,
/// replace, sum or aggregate rows of one key).
fn supports_final(engine: &str) -> bool {
    let engine = engine.strip_prefix("Replicated").unwrap_or(engine);
    engine != "MergeTree" && engine.ends_with("MergeTree")
}

fn poisoned() -> EngineError {
    EngineError::Execution("engine state lock poisoned by an earlier panic".into())
}

/// A `JSONCompactEachRow` row (`[v1, v2]`) as a `JSONEachRow` one keyed by `names`, the values' text untouched.
/// None when the row is not an array of exactly that many values.
fn json_object(row: &str, names: &[String]) -> Option<String> {
    let inner = row.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut out = String::with_capacity(row.len() + names.iter().map(|n| n.len() + 4).sum::<usize>());
    out.push('{');
    let (mut depth, mut in_string, mut escaped, mut start, mut index) = (0usize, false, false, 0usize, 0usize);
    let push = |value: &str, index: usize, out: &mut String| -> Option<()> {
        let name = names.get(index)?;
        if index > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(name).ok()?);
        out.push(':');
        out.push_str(value.trim());
        Some(())
    };
    for (i, b) in inner.bytes().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.checked_sub(1)?,
            b',' if depth == 0 => {
                push(&inner[start..i], index, &mut out)?;
                index += 1;
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner.trim().is_empty() {
        push(&inner[start..], index, &mut out)?;
        index += 1;
    }
    (index == names.len()).then_some(())?;
    out.push('}');
    Some(out)
}

/// Reads a JSON row written by ClickHouse into values of the columns' types.
pub(crate) fn json_row(text: &str, columns: &[Column]) -> Vec<Value> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).unwrap_or_default();
    columns
        .iter()
        .map(|c| match object.get(&c.name) {
            None | Some(serde_json::Value::Null) => Value::Null,
            Some(v) => crate::ingest::convert(v, &c.ty).unwrap_or_else(|_| match v {
                serde_json::Value::String(s) => Value::Str(s.clone()),
                other => Value::Str(other.to_string()),
            }),
        })
        .collect()
}
