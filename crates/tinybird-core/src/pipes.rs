//! Pipes that write into a datasource, typed by that datasource: materialized views and copy pipes.
//!
//! The target is a type parameter (any `#[derive(Datasource)]` struct), so the pipe names a datasource by its type,
//! and the rows it writes are read back as that struct. An output row type, when given, is checked against the
//! target's columns by [`MaterializedView::check`] / [`CopyPipe::check`] (names, and types up to
//! `Nullable`/`LowCardinality` and aggregate-state wrappers, as the official SDK compares them); `Project` runs the
//! check when the pipe is added, and its `validate`, `files` and so a deploy report the mismatch. The SQL itself is not
//! read: `tinybird-local` reports a column the SQL does not produce when the pipe runs.
//!
//! ```
//! use tinybird_core::pipes::{CopyMode, CopyPipe, CopySchedule, MaterializedView};
//! use tinybird_core::project::Project;
//! use tinybird_macros::Datasource;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Datasource)]
//! #[tinybird(crate = "::tinybird_core", sorting_key = "day")]
//! struct DailyTotals {
//!     day: chrono::NaiveDate,
//!     total: u64,
//! }
//!
//! let view = MaterializedView::<DailyTotals>::new("daily_totals_mv")
//!     .node("agg", "SELECT toDate(timestamp) AS day, count() AS total FROM events GROUP BY day");
//! let copy = CopyPipe::<DailyTotals>::new("daily_snapshot")
//!     .node("snap", "SELECT today() AS day, count() AS total FROM events")
//!     .mode(CopyMode::Replace)
//!     .schedule(CopySchedule::cron("0 * * * *").unwrap());
//! let project = Project::new().datasource::<DailyTotals>().materialized_view(&view).copy_pipe(&copy);
//! assert_eq!(project.pipes().len(), 2);
//! let files = project.files().unwrap();
//! let mv = &files.iter().find(|f| f.path.ends_with("daily_totals_mv.pipe")).unwrap().content;
//! assert!(mv.contains("TYPE materialized\nDATASOURCE \"daily_totals\""), "{mv}");
//! ```

use std::marker::PhantomData;

use crate::connections::{BucketConnection, Connection, KafkaConnection};
use crate::datafile::{PipeDef, PipeKind};
use crate::datasource::{Datasource, TokenDef, TokenPermission};
use crate::endpoint::NodeDef;
use crate::row::{Row, RowColumn};
use crate::types::ChType;

/// A row type declared to be written into the datasource `T` by a materialized view or copy pipe:
/// `#[derive(Row)]` with `#[tinybird(writes = "T")]` implements it after checking, at compile time, that each of
/// its columns is a column of `T` with the same Rust type. Whether it writes every column `T` needs (those without a
/// default and not `Nullable`) is checked by [`MaterializedView::check`] / [`CopyPipe::check`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not declared to write into `{T}`",
    label = "not checked against `{T}`",
    note = "derive `Row` on it with `#[tinybird(writes = \"{T}\")]`: the compiler then checks that each of its columns is a column of `{T}` of the same type"
)]
pub trait WritesInto<T: Datasource>: Row {}

/// A materialized view into the datasource `T`: the last node's result is appended to `T` on every ingestion into the
/// datasources it reads, and backfilled on deploy.
#[derive(Debug, Clone)]
pub struct MaterializedView<T: Datasource> {
    def: PipeDef,
    output: Option<Vec<RowColumn>>,
    _target: PhantomData<fn() -> T>,
}

/// Whether a copy appends to its target or replaces what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyMode {
    /// `COPY_MODE append` (the default).
    #[default]
    Append,
    /// `COPY_MODE replace`.
    Replace,
}

/// When a copy pipe runs by itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CopySchedule {
    /// Only when asked (`COPY_SCHEDULE @on-demand`, the default): [`Client::copy_pipe`](crate::client::Client::copy_pipe).
    #[default]
    OnDemand,
    /// On a cron schedule (five fields, UTC), checked by [`CopySchedule::cron`].
    Cron(String),
}

/// A cron expression that is not five valid fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression {expr:?}: {reason}")]
pub struct CronError {
    expr: String,
    reason: String,
}

impl CopySchedule {
    /// A cron schedule: five fields (minute, hour, day of month, month, day of week), each `*`, a number in range, a
    /// range `a-b`, a list `a,b`, or a step `*/n` / `a-b/n`. Tinybird's datafile parser refuses `@once` and the
    /// other `@` forms for copies, so they are refused here too. For a literal, [`cron!`](crate::cron) checks the
    /// same rules when the code compiles.
    pub fn cron(expr: &str) -> Result<CopySchedule, CronError> {
        match cron_fault(expr) {
            None => Ok(CopySchedule::Cron(expr.split_whitespace().collect::<Vec<_>>().join(" "))),
            Some(fault) => Err(CronError { expr: expr.to_owned(), reason: fault.describe(expr) }),
        }
    }

    /// Whether the schedule runs at the minute of `at` (UTC), with cron's rules: every field must match, except
    /// that when both the day of month and the day of week are restricted, either one matching is enough; day of
    /// week 0 and 7 are both Sunday. [`CopySchedule::OnDemand`] never runs by itself.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// let at = NaiveDate::from_ymd_opt(2024, 3, 4).unwrap().and_hms_opt(6, 30, 0).unwrap(); // a Monday
    /// assert!(tinybird_core::cron!("30 6 * * 1-5").matches(at));
    /// assert!(!tinybird_core::cron!("30 6 * * 0,6").matches(at));
    /// assert!(tinybird_core::cron!("*/15 * 4 * 0").matches(at), "the 4th, though not a Sunday");
    /// ```
    pub fn matches(&self, at: chrono::NaiveDateTime) -> bool {
        use chrono::{Datelike, Timelike};
        let CopySchedule::Cron(expr) = self else { return false };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields.as_slice() else { return false };
        let weekday = at.weekday().num_days_from_sunday();
        let day_of_week = cron_field_matches(dow, weekday, 0) || (weekday == 0 && cron_field_matches(dow, 7, 0));
        let day_of_month = cron_field_matches(dom, at.day(), 1);
        let day = match (*dom == "*", *dow == "*") {
            (false, false) => day_of_month || day_of_week,
            _ => day_of_month && day_of_week,
        };
        cron_field_matches(minute, at.minute(), 0)
            && cron_field_matches(hour, at.hour(), 0)
            && cron_field_matches(month, at.month(), 1)
            && day
    }
}

/// Whether `value` is in one cron field (checked valid: `*`, `n`, `a-b`, each with an optional `/step`, in a list);
/// `lowest` is the field's first value (0, or 1 for days of the month and months), where `*/step` counts from.
fn cron_field_matches(field: &str, value: u32, lowest: u32) -> bool {
    field.split(',').any(|part| {
        let (span, step) = match part.split_once('/') {
            Some((span, step)) => (span, step.parse::<u32>().unwrap_or(1).max(1)),
            None => (part, 1),
        };
        let (lo, hi) = if span == "*" {
            (lowest, u32::MAX)
        } else if let Some((a, b)) = span.split_once('-') {
            (a.parse().unwrap_or(u32::MAX), b.parse().unwrap_or(0))
        } else {
            let n = span.parse().unwrap_or(u32::MAX);
            // `n/step` runs from n to the field's end.
            (n, if step > 1 { u32::MAX } else { n })
        };
        value >= lo && value <= hi && (value - lo).is_multiple_of(step)
    })
}

/// `CopySchedule::Cron` from a cron expression checked when the code compiles: an invalid one is a compile error
/// saying which field is wrong.
///
/// ```
/// let hourly = tinybird_core::cron!("0 * * * *");
/// assert_eq!(hourly, tinybird_core::pipes::CopySchedule::cron("0 * * * *").unwrap());
/// ```
///
/// ```compile_fail
/// let never = tinybird_core::cron!("0 25 * * *"); // there is no hour 25
/// ```
#[macro_export]
macro_rules! cron {
    ($expr:literal) => {{
        const _: () = if let ::std::option::Option::Some(fault) = $crate::pipes::__cron_fault_message($expr) {
            ::std::panic!("{}", fault)
        };
        $crate::pipes::CopySchedule::Cron(::std::string::String::from($crate::pipes::__normalized_cron($expr)))
    }};
}

/// What [`cron!`] reports at compile time. Not part of the public API.
#[doc(hidden)]
pub const fn __cron_fault_message(expr: &str) -> Option<&'static str> {
    match cron_fault(expr) {
        None => None,
        Some(fault) => Some(fault.summary()),
    }
}

/// A valid expression with its fields separated by one space, as [`CopySchedule::cron`] writes it. Not part of the
/// public API.
#[doc(hidden)]
pub fn __normalized_cron(expr: &str) -> String {
    expr.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The fields of a cron expression: lowest and highest value, and name.
const CRON_FIELDS: [(u32, u32, &str); 5] =
    [(0, 59, "minute"), (0, 23, "hour"), (1, 31, "day of month"), (1, 12, "month"), (0, 7, "day of week")];

/// Where a cron expression breaks the rules: the field count, or a field's value or step (with the bytes at fault).
#[derive(Debug, Clone, Copy)]
enum CronFault {
    Fields(usize),
    Value { field: usize, start: usize, end: usize },
    Step { field: usize, start: usize, end: usize },
}

impl CronFault {
    fn describe(self, expr: &str) -> String {
        match self {
            CronFault::Fields(n) => format!("it has {n} fields; a cron expression has 5"),
            CronFault::Value { field, start, end } => {
                let (lo, hi, what) = CRON_FIELDS[field];
                format!("the {what} `{}` is not `*`, a number from {lo} to {hi} or a range", &expr[start..end])
            }
            CronFault::Step { field, start, end } => {
                let (_, hi, what) = CRON_FIELDS[field];
                format!("the {what} step `{}` is not a number from 1 to {hi}", &expr[start..end])
            }
        }
    }

    /// A message without the expression's text, for a compile-time error (which cannot format).
    const fn summary(self) -> &'static str {
        match self {
            CronFault::Fields(_) => {
                "invalid cron expression: it needs 5 fields (minute, hour, day of month, month, day of week)"
            }
            CronFault::Value { field: 0, .. } => "invalid cron expression: a minute is `*`, 0 to 59, a range or a list",
            CronFault::Value { field: 1, .. } => "invalid cron expression: an hour is `*`, 0 to 23, a range or a list",
            CronFault::Value { field: 2, .. } => {
                "invalid cron expression: a day of month is `*`, 1 to 31, a range or a list"
            }
            CronFault::Value { field: 3, .. } => "invalid cron expression: a month is `*`, 1 to 12, a range or a list",
            CronFault::Value { .. } => "invalid cron expression: a day of week is `*`, 0 to 7, a range or a list",
            CronFault::Step { .. } => "invalid cron expression: a step `/n` is a number from 1 to the field's highest",
        }
    }
}

/// Checks a cron expression (a `const fn`, so [`cron!`] runs it at compile time).
const fn cron_fault(expr: &str) -> Option<CronFault> {
    let b = expr.as_bytes();
    let mut i = 0;
    let mut field = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        if field < 5
            && let Some(fault) = cron_field_fault(b, start, i, field)
        {
            return Some(fault);
        }
        field += 1;
    }
    if field == 5 { None } else { Some(CronFault::Fields(field)) }
}

/// Checks one field, `b[start..end]`: comma-separated parts, each `span` or `span/step`.
const fn cron_field_fault(b: &[u8], start: usize, end: usize, field: usize) -> Option<CronFault> {
    let (lo, hi, _) = CRON_FIELDS[field];
    let mut part = start;
    while part <= end {
        let mut stop = part;
        while stop < end && b[stop] != b',' {
            stop += 1;
        }
        let mut slash = part;
        while slash < stop && b[slash] != b'/' {
            slash += 1;
        }
        if slash < stop {
            match cron_number(b, slash + 1, stop) {
                Some(step) if step >= 1 && step <= hi => {}
                _ => return Some(CronFault::Step { field, start: slash + 1, end: stop }),
            }
        }
        let value = CronFault::Value { field, start: part, end: slash };
        if !(slash == part + 1 && b[part] == b'*') {
            let mut dash = part;
            while dash < slash && b[dash] != b'-' {
                dash += 1;
            }
            let ok = if dash < slash {
                let (a, z) = (cron_number(b, part, dash), cron_number(b, dash + 1, slash));
                matches!((a, z), (Some(a), Some(z)) if a >= lo && a <= z && z <= hi)
            } else {
                matches!(cron_number(b, part, slash), Some(v) if v >= lo && v <= hi)
            };
            if !ok {
                return Some(value);
            }
        }
        part = stop + 1;
    }
    None
}

/// The decimal number `b[start..end]`, if it is one (and fits in a `u32`).
const fn cron_number(b: &[u8], start: usize, end: usize) -> Option<u32> {
    if start >= end {
        return None;
    }
    let mut n: u32 = 0;
    let mut i = start;
    while i < end {
        if !b[i].is_ascii_digit() {
            return None;
        }
        n = match n.checked_mul(10) {
            Some(n) => match n.checked_add((b[i] - b'0') as u32) {
                Some(n) => n,
                None => return None,
            },
            None => return None,
        };
        i += 1;
    }
    Some(n)
}

/// A copy pipe into the datasource `T`: the last node's result is written to `T` when the pipe runs, on demand
/// ([`Client::copy_pipe`](crate::client::Client::copy_pipe)) or on its schedule.
#[derive(Debug, Clone)]
pub struct CopyPipe<T: Datasource> {
    def: PipeDef,
    mode: CopyMode,
    schedule: CopySchedule,
    output: Option<Vec<RowColumn>>,
    _target: PhantomData<fn() -> T>,
}

fn pipe(name: impl Into<String>) -> PipeDef {
    PipeDef { name: name.into(), ..PipeDef::default() }
}

fn add_node(def: &mut PipeDef, name: &str, sql: &str) {
    def.nodes.push(NodeDef { name: name.to_owned(), sql: sql.to_owned(), ..NodeDef::default() });
}

/// Whether a value of `output` type can be written to a column of `target` type, as the official SDK compares them:
/// equal after removing `Nullable(…)`, `LowCardinality(…)` and date-time zones, or `T` into an aggregate-state
/// column of `T` (`SimpleAggregateFunction(sum, T)`, `AggregateFunction(f, T)`).
fn compatible(output: &str, target: &str) -> bool {
    /// The type with what the comparison ignores removed.
    fn loose(ty: &ChType) -> ChType {
        match ty {
            ChType::Nullable(inner) | ChType::LowCardinality(inner) => loose(inner),
            ChType::DateTime(_) => ChType::DateTime(None),
            ChType::DateTime64 { precision, .. } => ChType::DateTime64 { precision: *precision, tz: None },
            other => other.clone(),
        }
    }
    let (Ok(output), Ok(target)) = (output.parse::<ChType>(), target.parse::<ChType>()) else {
        // A type string that is not a ClickHouse type fits only itself (writing the datafiles refuses it).
        return output.trim() == target.trim();
    };
    let (output, target) = (loose(&output), loose(&target));
    match &target {
        _ if output == target => true,
        ChType::SimpleAggregateFunction { ty, .. } => loose(ty) == output,
        ChType::AggregateFunction { args, .. } => matches!(args.as_slice(), [arg] if loose(arg) == output),
        _ => false,
    }
}

/// Checks a declared output row (none: nothing to check) against a target's columns: every target column is produced
/// (unless it has a default or is `Nullable`), every output column exists in the target with a compatible type.
fn check_output<T: Datasource>(pipe: &str, output: Option<&[RowColumn]>) -> Result<(), PipeError> {
    let Some(output) = output else { return Ok(()) };
    let target = T::definition();
    let mut problems = Vec::new();
    for column in output {
        match target.columns.iter().find(|c| c.name == column.name) {
            None => problems.push(format!("it writes `{}`, which `{}` does not have", column.name, target.name)),
            Some(t) if !column.ty.is_empty() && !compatible(&column.ty, &t.ty) => problems.push(format!(
                "it writes `{}` as {}, but `{}` stores it as {}",
                column.name, column.ty, target.name, t.ty
            )),
            Some(_) => {}
        }
    }
    for t in &target.columns {
        let optional = t.default.is_some() || t.ty.parse::<ChType>().is_ok_and(|ty| ty.is_nullable());
        if !optional && !output.iter().any(|c| c.name == t.name) {
            problems.push(format!("it does not write `{}`, which `{}` needs", t.name, target.name));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(PipeError { pipe: pipe.to_owned(), problems }) }
}

/// A pipe whose output does not fit its target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pipe `{pipe}`: {}", problems.join("; "))]
pub struct PipeError {
    pipe: String,
    problems: Vec<String>,
}

/// The methods every typed pipe builder has, over its `def: PipeDef`; `$writes` ends the node's doc ("view writes").
macro_rules! pipe_builder_methods {
    ($writes:literal) => {
        /// The pipe's name.
        pub fn name(&self) -> &str {
            &self.def.name
        }

        /// The pipe's description.
        pub fn description(mut self, text: impl Into<String>) -> Self {
            self.def.description = Some(text.into());
            self
        }

        #[doc = concat!("Adds a node; the last one's result is what the ", $writes, ".")]
        pub fn node(mut self, name: &str, sql: &str) -> Self {
            add_node(&mut self.def, name, sql);
            self
        }
    };
}

impl<T: Datasource> MaterializedView<T> {
    /// A materialized view named `name` (the `.pipe` file's name) into `T`.
    pub fn new(name: impl Into<String>) -> Self {
        MaterializedView { def: pipe(name), output: None, _target: PhantomData }
    }

    pipe_builder_methods!("view writes");

    /// Declares the row the last node produces: its columns are `T`'s (checked when it compiles, see
    /// [`WritesInto`]), and [`MaterializedView::check`] checks that it writes every column `T` needs.
    pub fn output<R: WritesInto<T>>(mut self) -> Self {
        self.output = Some(R::columns());
        self
    }

    /// A `TOKEN name READ` line for the pipe.
    pub fn token(mut self, name: impl Into<String>) -> Self {
        self.def.tokens.push(TokenDef { name: name.into(), permission: TokenPermission::Read });
        self
    }

    /// Checks the declared output row (if any) against `T`.
    pub fn check(&self) -> Result<(), PipeError> {
        check_output::<T>(&self.def.name, self.output.as_deref())
    }

    /// The pipe as a datafile definition: `TYPE materialized`, `DATASOURCE` `T`'s name.
    pub fn definition(&self) -> PipeDef {
        let mut def = self.def.clone();
        def.kind = PipeKind::Materialized { datasource: T::NAME.to_owned(), deployment_method: None };
        def
    }
}

impl<T: Datasource> CopyPipe<T> {
    /// A copy pipe named `name` (the `.pipe` file's name) into `T`, on demand and appending.
    pub fn new(name: impl Into<String>) -> Self {
        CopyPipe {
            def: pipe(name),
            mode: CopyMode::default(),
            schedule: CopySchedule::default(),
            output: None,
            _target: PhantomData,
        }
    }

    pipe_builder_methods!("pipe writes");

    /// Append (the default) or replace.
    pub fn mode(mut self, mode: CopyMode) -> Self {
        self.mode = mode;
        self
    }

    /// When it runs by itself (default: only on demand).
    pub fn schedule(mut self, schedule: CopySchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Declares the row the last node produces: its columns are `T`'s (checked when it compiles, see
    /// [`WritesInto`]), and [`CopyPipe::check`] checks that it writes every column `T` needs.
    pub fn output<R: WritesInto<T>>(mut self) -> Self {
        self.output = Some(R::columns());
        self
    }

    /// Checks the declared output row (if any) against `T`.
    pub fn check(&self) -> Result<(), PipeError> {
        check_output::<T>(&self.def.name, self.output.as_deref())
    }

    /// The pipe as a datafile definition: `TYPE copy`, `TARGET_DATASOURCE`, `COPY_MODE`, `COPY_SCHEDULE`.
    pub fn definition(&self) -> PipeDef {
        let mut def = self.def.clone();
        def.kind = PipeKind::Copy {
            target_datasource: T::NAME.to_owned(),
            schedule: Some(match &self.schedule {
                CopySchedule::OnDemand => "@on-demand".to_owned(),
                CopySchedule::Cron(expr) => expr.clone(),
            }),
            mode: Some(match self.mode {
                CopyMode::Append => "append".to_owned(),
                CopyMode::Replace => "replace".to_owned(),
            }),
        };
        def
    }
}

/// Marks a [`SinkPipe`] that exports to a Kafka topic.
#[derive(Debug, Clone, Copy)]
pub enum ToKafka {}

/// Marks a [`SinkPipe`] that exports files to an S3 or GCS bucket.
#[derive(Debug, Clone, Copy)]
pub enum ToBucket {}

/// `EXPORT_FORMAT` of a bucket sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkFormat {
    /// `csv` (the default).
    #[default]
    Csv,
    /// `ndjson`: one JSON object per line.
    Ndjson,
    /// `parquet`.
    Parquet,
}

impl SinkFormat {
    /// The value Tinybird reads.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkFormat::Csv => "csv",
            SinkFormat::Ndjson => "ndjson",
            SinkFormat::Parquet => "parquet",
        }
    }
}

/// `EXPORT_COMPRESSION` of a bucket sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkCompression {
    /// `none`.
    None,
    /// `gzip`.
    Gzip,
    /// `snappy`.
    Snappy,
}

/// `EXPORT_STRATEGY` of a bucket sink: what happens to a file that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkStrategy {
    /// `create_new`: files are never overwritten.
    CreateNew,
    /// `replace`: a file of the same name is replaced.
    Replace,
}

/// A sink pipe: the last node's result exported, through a typed connection, to a Kafka topic
/// ([`SinkPipe::to_kafka`]) or as files in a bucket ([`SinkPipe::to_bucket`]), on a schedule or when the client asks
/// ([`Client::sink_pipe`](crate::client::Client::sink_pipe)). Bucket-only settings (format, compression, strategy)
/// exist only on a bucket sink.
///
/// ```
/// use tinybird_core::connections::{Secret, S3Connection};
/// use tinybird_core::pipes::{SinkCompression, SinkFormat, SinkPipe};
///
/// let s3 = S3Connection::with_role("exports", "eu-west-1", "arn:aws:iam::123456789012:role/tinybird");
/// let sink = SinkPipe::to_bucket("daily_export", &s3, "s3://exports/daily", "events_{date}")
///     .node("rows", "SELECT * FROM events WHERE toDate(timestamp) = yesterday()")
///     .schedule(tinybird_core::cron!("0 3 * * *"))
///     .format(SinkFormat::Ndjson)
///     .compression(SinkCompression::Gzip);
/// let text = tinybird_core::datafile::write_pipe(&sink.definition()).unwrap();
/// assert!(text.contains("TYPE sink\nEXPORT_CONNECTION_NAME \"exports\"\n"), "{text}");
/// ```
#[derive(Debug, Clone)]
pub struct SinkPipe<K> {
    def: PipeDef,
    connection: String,
    target: Vec<(&'static str, String)>,
    schedule: CopySchedule,
    options: Vec<(&'static str, String)>,
    _kind: PhantomData<fn() -> K>,
}

impl SinkPipe<ToKafka> {
    /// A sink named `name` that writes each row, as a JSON message, to `topic` through `connection`.
    pub fn to_kafka(name: impl Into<String>, connection: &KafkaConnection, topic: impl Into<String>) -> Self {
        SinkPipe::new(name, connection.name(), vec![("EXPORT_KAFKA_TOPIC", topic.into())])
    }
}

impl SinkPipe<ToBucket> {
    /// A sink named `name` that writes files under `bucket_uri` (`s3://bucket/prefix`) through `connection`, each
    /// named after `file_template` (`events_{date}`, Tinybird fills its placeholders).
    pub fn to_bucket(
        name: impl Into<String>,
        connection: &impl BucketConnection,
        bucket_uri: impl Into<String>,
        file_template: impl Into<String>,
    ) -> Self {
        SinkPipe::new(
            name,
            connection.name(),
            vec![("EXPORT_BUCKET_URI", bucket_uri.into()), ("EXPORT_FILE_TEMPLATE", file_template.into())],
        )
    }

    /// `EXPORT_FORMAT` (Tinybird's default: csv).
    pub fn format(self, format: SinkFormat) -> Self {
        self.option("EXPORT_FORMAT", format.as_str())
    }

    /// `EXPORT_COMPRESSION`.
    pub fn compression(self, compression: SinkCompression) -> Self {
        let value = match compression {
            SinkCompression::None => "none",
            SinkCompression::Gzip => "gzip",
            SinkCompression::Snappy => "snappy",
        };
        self.option("EXPORT_COMPRESSION", value)
    }

    /// `EXPORT_STRATEGY`.
    pub fn strategy(self, strategy: SinkStrategy) -> Self {
        let value = match strategy {
            SinkStrategy::CreateNew => "create_new",
            SinkStrategy::Replace => "replace",
        };
        self.option("EXPORT_STRATEGY", value)
    }

    fn option(mut self, key: &'static str, value: &str) -> Self {
        self.options.retain(|(k, _)| *k != key);
        self.options.push((key, value.to_owned()));
        self
    }
}

impl<K> SinkPipe<K> {
    fn new(name: impl Into<String>, connection: &str, target: Vec<(&'static str, String)>) -> Self {
        SinkPipe {
            def: pipe(name),
            connection: connection.to_owned(),
            target,
            schedule: CopySchedule::OnDemand,
            options: Vec::new(),
            _kind: PhantomData,
        }
    }

    pipe_builder_methods!("sink exports");

    /// `EXPORT_SCHEDULE`: a cron schedule ([`cron!`](crate::cron)) or on demand only (the default).
    pub fn schedule(mut self, schedule: CopySchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The pipe as a datafile definition: `TYPE sink`, `EXPORT_CONNECTION_NAME`, the target's keys,
    /// `EXPORT_SCHEDULE`, then the bucket options, in the order the official SDK writes them.
    pub fn definition(&self) -> PipeDef {
        let mut settings = vec![("EXPORT_CONNECTION_NAME".to_owned(), self.connection.clone())];
        settings.extend(self.target.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let schedule = match &self.schedule {
            CopySchedule::OnDemand => "@on-demand".to_owned(),
            CopySchedule::Cron(cron) => cron.clone(),
        };
        settings.push(("EXPORT_SCHEDULE".to_owned(), schedule));
        // In one order whatever the order of the calls, so the file is byte-stable.
        for key in ["EXPORT_FORMAT", "EXPORT_STRATEGY", "EXPORT_COMPRESSION"] {
            settings.extend(self.options.iter().filter(|(k, _)| *k == key).map(|(k, v)| ((*k).to_owned(), v.clone())));
        }
        let mut def = self.def.clone();
        def.kind = PipeKind::Sink { settings };
        def
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions_are_checked() {
        assert_eq!(CopySchedule::cron("0 * * * *"), Ok(CopySchedule::Cron("0 * * * *".into())));
        assert!(CopySchedule::cron("*/15 0-6,22 1 1-12/2 7").is_ok());
        for bad in
            ["@once", "0 * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "5-1 * * * *", "*/0 * * * *", "a * * * *"]
        {
            assert!(CopySchedule::cron(bad).is_err(), "{bad}");
            assert!(__cron_fault_message(bad).is_some(), "{bad}");
        }
        assert_eq!(
            CopySchedule::cron("0 24 * * *").unwrap_err().to_string(),
            "invalid cron expression \"0 24 * * *\": the hour `24` is not `*`, a number from 0 to 59 or a range"
                .replace("59", "23")
        );
        assert_eq!(
            CopySchedule::cron("*/0 * * * *").unwrap_err().to_string(),
            "invalid cron expression \"*/0 * * * *\": the minute step `0` is not a number from 1 to 59"
        );
        for bad in ["1,,2 * * * *", "1- * * * *", "-1 * * * *", "*/ * * * *", "99999999999 * * * *", "* * * * * *"] {
            assert!(CopySchedule::cron(bad).is_err(), "{bad}");
        }
        assert_eq!(CopySchedule::cron(" 0  *\t* * 1-5/2 "), Ok(CopySchedule::Cron("0 * * * 1-5/2".into())));
        assert_eq!(crate::cron!("0 6 * * 1"), CopySchedule::Cron("0 6 * * 1".into()));
    }

    #[test]
    fn cron_schedules_match_minutes_as_cron_does() {
        let at = |d: u32, h: u32, m: u32| {
            chrono::NaiveDate::from_ymd_opt(2024, 3, d).and_then(|d| d.and_hms_opt(h, m, 0)).unwrap()
        };
        // 2024-03-03 is a Sunday.
        let cases = [
            ("* * * * *", at(3, 0, 0), true),
            ("*/15 * * * *", at(3, 1, 30), true),
            ("*/15 * * * *", at(3, 1, 31), false),
            ("5/20 * * * *", at(3, 1, 45), true),
            ("5/20 * * * *", at(3, 1, 40), false),
            ("0 9-17/4 * * *", at(3, 13, 0), true),
            ("0 9-17/4 * * *", at(3, 15, 0), false),
            ("0 0 */2 * *", at(3, 0, 0), true),
            ("0 0 */2 * *", at(4, 0, 0), false),
            ("0 0 * * 7", at(3, 0, 0), true),
            ("0 0 * * 0", at(3, 0, 0), true),
            ("0 0 * * 1-5", at(3, 0, 0), false),
            ("0 0 1 * 0", at(3, 0, 0), true),
            ("0 0 1 * 1", at(3, 0, 0), false),
            ("0 0 * 4 *", at(3, 0, 0), false),
            ("0,30 6 * * *", at(3, 6, 30), true),
        ];
        for (expr, when, expected) in cases {
            assert_eq!(CopySchedule::cron(expr).unwrap().matches(when), expected, "{expr} at {when}");
        }
        assert!(!CopySchedule::OnDemand.matches(at(3, 0, 0)));
    }

    #[test]
    fn types_compare_as_the_official_sdk_does() {
        assert!(compatible("String", "LowCardinality(String)"));
        assert!(compatible("Nullable(String)", "String"));
        assert!(compatible("UInt64", "SimpleAggregateFunction(sum, UInt64)"));
        assert!(compatible("String", "AggregateFunction(uniq, String)"));
        assert!(compatible("DateTime('UTC')", "DateTime"));
        assert!(!compatible("UInt32", "UInt64"));
        assert!(!compatible("String", "AggregateFunction(uniq, UInt64)"));
    }
}
