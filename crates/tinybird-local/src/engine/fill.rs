//! `ORDER BY … WITH FILL [FROM a] [TO b] [STEP s]` on the DataFusion engine, as ClickHouse fills (measured against
//! it): the query runs with its `ORDER BY`, then rows are added where the filled key skips values. Starting at `FROM`
//! (else the first row's key), each value `next` below the next row's key (above it, `DESC`) and below `TO` becomes a
//! row, `next` stepping by `STEP` (1, one day for a `Date`, one second for a `DateTime`; -1 and so on for `DESC`),
//! and a row whose key is `next` moves it on a step; after the last row, values below `TO` are added too. The keys
//! before the filled one in `ORDER BY` group the rows (each group filled apart, its added rows holding its keys);
//! every other column of an added row is its type's default (NULL when Nullable). `LIMIT` applies after filling.
//!
//! Refused: more than one `WITH FILL`, a filled key that is not the last `ORDER BY` key or not a selected column,
//! `INTERPOLATE`, a `LIMIT` that is not a literal, a key that is not an integer, float, `Date` or `DateTime`,
//! month steps from a day past the 28th.

use super::EngineError;
use super::Value;
use super::datafusion::value_at;
use chrono::{Datelike, Months, NaiveDate};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches, interleave};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    DateTimeField, Expr, LimitClause, OrderByKind, Query, SelectItem, SetExpr, UnaryOperator, Value as SqlValue,
};
use std::sync::Arc;

/// The most rows filling may add to a result.
const MAX_FILLED_ROWS: usize = 1_000_000;

/// A `WITH FILL` taken off a query: which columns, and its bounds as ClickHouse expressions (evaluated by the engine).
#[derive(Debug, Clone)]
pub struct Fill {
    /// The filled column's position in the result.
    pub column: usize,
    /// The positions of the `ORDER BY` keys before it, which group the rows.
    pub groups: Vec<usize>,
    /// `ORDER BY … DESC`.
    pub descending: bool,
    /// `FROM`, `TO`: constant expressions.
    pub from: Option<Expr>,
    pub to: Option<Expr>,
    /// `STEP`: a constant, or an interval (`STEP INTERVAL 1 DAY`).
    pub step: Option<Step>,
}

/// A `STEP`.
#[derive(Debug, Clone)]
pub enum Step {
    /// A number: of the key's own unit (days for a `Date`, seconds for a `DateTime`).
    Number(Box<Expr>),
    /// `INTERVAL n unit`: seconds (of a `DateTime`), days, or months.
    Seconds(i64),
    Days(i64),
    Months(i64),
}

fn refuse<T>(what: &str) -> Result<T, EngineError> {
    Err(EngineError::Unsupported(format!("WITH FILL {what}")))
}

/// Takes the outermost `ORDER BY`'s `WITH FILL` off the query, or None without one.
pub(crate) fn take(query: &mut Query) -> Result<Option<Fill>, EngineError> {
    let Some(order_by) = &mut query.order_by else { return Ok(None) };
    let OrderByKind::Expressions(items) = &mut order_by.kind else { return Ok(None) };
    let filled: Vec<usize> = items.iter().enumerate().filter(|(_, i)| i.with_fill.is_some()).map(|(n, _)| n).collect();
    let Some(&at) = filled.first() else { return Ok(None) };
    if order_by.interpolate.is_some() {
        return refuse("with INTERPOLATE");
    }
    if filled.len() > 1 {
        return refuse("on more than one ORDER BY key");
    }
    if at + 1 != items.len() {
        return refuse("on an ORDER BY key other than the last");
    }
    let spec = items[at].with_fill.take().unwrap_or_else(|| unreachable!("found above"));
    let descending = items[at].options.asc == Some(false);
    let keys: Vec<Expr> = items.iter().map(|i| i.expr.clone()).collect();
    match &query.limit_clause {
        None => {}
        Some(LimitClause::LimitOffset { limit: Some(limit), offset, limit_by })
            if limit_by.is_empty() && is_number(limit) && offset.as_ref().is_none_or(|o| is_number(&o.value)) => {}
        Some(LimitClause::OffsetCommaLimit { offset, limit }) if is_number(offset) && is_number(limit) => {}
        Some(_) => return refuse("with a LIMIT that is not a number"),
    }
    let SetExpr::Select(select) = query.body.as_ref() else { return refuse("over a UNION") };
    if select.projection.iter().any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..))) {
        return refuse("with `*` in the select list (name the columns)");
    }
    if keys.iter().any(|k| matches!(k, Expr::Value(_))) {
        return refuse("with an ORDER BY key given by position");
    }
    if keys[..at].contains(&keys[at]) {
        return refuse("on a key ORDER BY repeats");
    }
    // Each select item's expression (an alias's or its own).
    let exprs: Vec<&Expr> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) => Some(expr),
            _ => None,
        })
        .collect();
    let position = |key: &Expr| -> Result<usize, EngineError> {
        let found = select.projection.iter().position(|item| match (item, key) {
            (SelectItem::ExprWithAlias { alias, .. }, Expr::Identifier(name)) => alias.value == name.value,
            (SelectItem::UnnamedExpr(e), key) => e == key,
            _ => false,
        });
        match found {
            // ClickHouse fills every column that is the same expression.
            Some(p) if exprs.iter().filter(|e| **e == exprs[p]).count() > 1 => {
                refuse(&format!("on `{key}`, whose expression is selected more than once"))
            }
            Some(p) => Ok(p),
            None => refuse(&format!("on `{key}`, which is not a selected column (select it, or its alias)")),
        }
    };
    let column = position(&keys[at])?;
    let groups = keys[..at].iter().map(position).collect::<Result<_, _>>()?;
    let step = match spec.step {
        None => None,
        Some(Expr::Interval(interval)) => {
            let Some(n) = constant_integer(&interval.value) else {
                return refuse("with an INTERVAL step that is not a whole number");
            };
            Some(match interval.leading_field {
                Some(DateTimeField::Second | DateTimeField::Seconds) => Step::Seconds(n),
                Some(DateTimeField::Minute | DateTimeField::Minutes) => Step::Seconds(n * 60),
                Some(DateTimeField::Hour | DateTimeField::Hours) => Step::Seconds(n * 3600),
                Some(DateTimeField::Day | DateTimeField::Days) => Step::Days(n),
                Some(DateTimeField::Week(_) | DateTimeField::Weeks) => Step::Days(n * 7),
                Some(DateTimeField::Month | DateTimeField::Months) => Step::Months(n),
                Some(DateTimeField::Quarter) => Step::Months(n * 3),
                Some(DateTimeField::Year | DateTimeField::Years) => Step::Months(n * 12),
                _ => return refuse("with this INTERVAL unit"),
            })
        }
        Some(e) => Some(Step::Number(Box::new(e))),
    };
    Ok(Some(Fill { column, groups, descending, from: spec.from, to: spec.to, step }))
}

fn is_number(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(v.value, SqlValue::Number(..)))
}

fn constant_integer(e: &Expr) -> Option<i64> {
    match e {
        Expr::Value(v) => match &v.value {
            SqlValue::Number(n, _) => n.parse().ok(),
            SqlValue::SingleQuotedString(s) => s.trim().parse().ok(),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => constant_integer(expr).map(|n| -n),
        Expr::Nested(e) => constant_integer(e),
        _ => None,
    }
}

/// A key value, in the key's unit: integers (days of a `Date`, seconds of a `DateTime`) or floats.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Key {
    Int(i128),
    Float(f64),
}

/// The column's values as keys, and how to build the column back from keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Float,
    Date,
    Seconds,
}

fn kind_of(t: &DataType) -> Option<Kind> {
    Some(match t {
        t if t.is_integer() => Kind::Integer,
        DataType::Float32 | DataType::Float64 => Kind::Float,
        DataType::Date32 => Kind::Date,
        // A time zone other than UTC moves by local time (daylight saving), which is not followed here.
        DataType::Timestamp(TimeUnit::Second, tz) if tz.as_deref().is_none_or(|z| z == "UTC") => Kind::Seconds,
        _ => return None,
    })
}

fn key_of(v: &Value, kind: Kind) -> Option<Key> {
    Some(match (v, kind) {
        (Value::Int(n), Kind::Integer) => Key::Int(i128::from(*n)),
        (Value::UInt(n), Kind::Integer) => Key::Int(i128::from(*n)),
        (Value::Bool(b), Kind::Integer) => Key::Int(i128::from(*b)),
        (Value::Float(f), Kind::Float) => Key::Float(*f),
        (Value::Int(n), Kind::Float) => Key::Float(*n as f64),
        (Value::UInt(n), Kind::Float) => Key::Float(*n as f64),
        (Value::Date(d), Kind::Date) => Key::Int(i128::from(*d)),
        (Value::DateTime(ns), Kind::Seconds) => Key::Int(ns.div_euclid(1_000_000_000)),
        _ => return None,
    })
}

/// The bounds and step, evaluated.
pub(crate) struct Bounds {
    pub(crate) from: Option<Value>,
    pub(crate) to: Option<Value>,
    pub(crate) step: Option<Value>,
}

/// One step from `k`; None when it cannot be taken as ClickHouse does (a month step from past the 28th).
fn advance(k: Key, kind: Kind, step: &Stepper) -> Option<Key> {
    match (k, step) {
        (Key::Int(v), Stepper::Int(s)) => Some(Key::Int(v + s)),
        (Key::Float(v), Stepper::Float(s)) => Some(Key::Float(v + s)),
        (Key::Int(v), Stepper::Months(m)) => {
            let days = match kind {
                Kind::Date => v,
                _ => v.div_euclid(86_400),
            };
            let date = NaiveDate::from_num_days_from_ce_opt(i32::try_from(days + 719_163).ok()?)?;
            if date.day() > 28 {
                return None;
            }
            let moved = if *m >= 0 {
                date.checked_add_months(Months::new(u32::try_from(*m).ok()?))?
            } else {
                date.checked_sub_months(Months::new(u32::try_from(-m).ok()?))?
            };
            let moved_days = i128::from(moved.num_days_from_ce()) - 719_163;
            Some(Key::Int(match kind {
                Kind::Date => moved_days,
                _ => moved_days * 86_400 + v.rem_euclid(86_400),
            }))
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Copy)]
enum Stepper {
    Int(i128),
    Float(f64),
    Months(i64),
}

/// The result's rows with the filled rows added, as one batch.
pub(crate) fn apply(
    fill: &Fill,
    bounds: &Bounds,
    schema: &SchemaRef,
    nullable: &[bool],
    known: &[bool],
    batches: &[RecordBatch],
) -> Result<Vec<RecordBatch>, EngineError> {
    let batch = concat_batches(schema, batches).map_err(|e| EngineError::Execution(e.to_string()))?;
    let field = schema.field(fill.column);
    let Some(kind) = kind_of(field.data_type()) else {
        return refuse(&format!("on a column of type {} (integers, floats, dates and times fill)", field.data_type()));
    };
    let bound = |v: &Option<Value>, what: &str| -> Result<Option<Key>, EngineError> {
        match v {
            None => Ok(None),
            Some(v) => match key_of(v, kind) {
                Some(k) => Ok(Some(k)),
                None => refuse(&format!("with a {what} bound of another type than the filled column")),
            },
        }
    };
    let (from, to) = (bound(&bounds.from, "FROM")?, bound(&bounds.to, "TO")?);
    let sign: i64 = if fill.descending { -1 } else { 1 };
    let stepper = match (&fill.step, &bounds.step, kind) {
        (None, _, Kind::Float) => Stepper::Float(sign as f64),
        (None, _, Kind::Integer | Kind::Date | Kind::Seconds) => Stepper::Int(i128::from(sign)),
        (Some(Step::Seconds(s)), _, Kind::Seconds) => Stepper::Int(i128::from(*s)),
        (Some(Step::Days(d)), _, Kind::Date) => Stepper::Int(i128::from(*d)),
        (Some(Step::Days(d)), _, Kind::Seconds) => Stepper::Int(i128::from(*d) * 86_400),
        (Some(Step::Months(m)), _, Kind::Date | Kind::Seconds) => Stepper::Months(*m),
        (Some(Step::Number(_)), Some(v), Kind::Float) => match v {
            Value::Int(n) => Stepper::Float(*n as f64),
            Value::UInt(n) => Stepper::Float(*n as f64),
            Value::Float(f) => Stepper::Float(*f),
            _ => return refuse("with a STEP that is not a number"),
        },
        (Some(Step::Number(_)), Some(v), _) => match v {
            Value::Int(n) => Stepper::Int(i128::from(*n)),
            Value::UInt(n) => Stepper::Int(i128::from(*n)),
            _ => return refuse("with a STEP that is not a whole number for this column"),
        },
        _ => return refuse("with this STEP for a column of this type"),
    };
    let forward = match stepper {
        Stepper::Int(s) => s > 0,
        Stepper::Float(s) => s > 0.0,
        Stepper::Months(m) => m > 0,
    };
    if forward == fill.descending {
        return refuse("with a STEP whose sign does not follow the ORDER BY direction");
    }
    // `a` comes before `b` in the fill's direction.
    let before = |a: Key, b: Key| if fill.descending { a > b } else { a < b };
    if let (Some(from), Some(to)) = (from, to)
        && before(to, from)
    {
        return refuse("with FROM past TO in the ORDER BY direction");
    }
    // The range of an integer key's type: a value past it wraps in ClickHouse (or, as a bound, is an error).
    let range: Option<(i128, i128)> = match field.data_type() {
        DataType::Int8 => Some((i128::from(i8::MIN), i128::from(i8::MAX))),
        DataType::Int16 => Some((i128::from(i16::MIN), i128::from(i16::MAX))),
        DataType::Int32 => Some((i128::from(i32::MIN), i128::from(i32::MAX))),
        DataType::Int64 => Some((i128::from(i64::MIN), i128::from(i64::MAX))),
        DataType::UInt8 => Some((0, i128::from(u8::MAX))),
        DataType::UInt16 => Some((0, i128::from(u16::MAX))),
        DataType::UInt32 => Some((0, i128::from(u32::MAX))),
        DataType::UInt64 => Some((0, i128::from(u64::MAX))),
        _ => None,
    };
    let in_range = |k: Key| match (k, range) {
        (Key::Int(v), Some((low, high))) => (low..=high).contains(&v),
        _ => true,
    };
    if from.is_some_and(|k| !in_range(k)) || to.is_some_and(|k| !in_range(k)) {
        return refuse("with a FROM or TO bound outside the filled column's type");
    }
    let column = batch.column(fill.column);
    // ClickHouse places the fill around NULL keys by rules of its own.
    if column.null_count() > 0 {
        return refuse("on a column holding NULL");
    }
    // The default of an enum without the value 0 is an error in ClickHouse.
    if schema.fields().iter().enumerate().any(|(i, f)| {
        i != fill.column
            && !fill.groups.contains(&i)
            && matches!(crate::types::ChType::of_field(f).base(), crate::types::ChType::Named(n) if n.starts_with("Enum"))
    }) {
        return refuse("with an enum column beside it (its added rows' default)");
    }
    // An added row's NULL or default follows the column's ClickHouse type (`nullable`); where the query does not say
    // it (`known`) and DataFusion says the column may be NULL, it is not known.
    if schema.fields().iter().enumerate().any(|(i, f)| {
        i != fill.column
            && !fill.groups.contains(&i)
            && f.is_nullable()
            && !nullable.get(i).copied().unwrap_or(false)
            && !known.get(i).copied().unwrap_or(false)
    }) {
        return refuse("beside a column whose Nullable type is not known here");
    }
    if batch.num_rows() == 0 && !fill.groups.is_empty() && from.is_some() && to.is_some() {
        return refuse("of no rows with ORDER BY keys before the filled one");
    }
    // Group keys compare as values, NaN equal to NaN.
    let same = |a: &Value, b: &Value| match (a, b) {
        (Value::Float(x), Value::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => a == b,
    };
    // Each output row: (0, row) from the result, or (1, i) the i-th added row.
    let mut order: Vec<(usize, usize)> = Vec::with_capacity(batch.num_rows());
    // Each added row: its key, and the result row whose group keys it copies (None without groups).
    let mut added: Vec<(Key, Option<usize>)> = Vec::new();
    let mut push_fill = |key: Key, group_row: Option<usize>, order: &mut Vec<(usize, usize)>| {
        order.push((1, added.len()));
        added.push((key, group_row));
        added.len() <= MAX_FILLED_ROWS
    };
    let too_many = || refuse(&format!("adding more than {MAX_FILLED_ROWS} rows"));
    let step = |n: Key| match advance(n, kind, &stepper) {
        Some(next) => Ok(next),
        None => refuse("with a month step from a day past the 28th"),
    };
    let mut next: Option<Key> = None;
    let mut group_start = true;
    let rows = batch.num_rows();
    for row in 0..rows {
        if row > 0
            && fill
                .groups
                .iter()
                .any(|&g| !same(&value_at(batch.column(g).as_ref(), row), &value_at(batch.column(g).as_ref(), row - 1)))
        {
            // The previous group ends: filled up to TO.
            if let (Some(to), Some(mut n)) = (to, next) {
                while before(n, to) {
                    if !push_fill(n, Some(row - 1), &mut order) {
                        return too_many();
                    }
                    n = step(n)?;
                }
            }
            group_start = true;
        }
        let value = value_at(column.as_ref(), row);
        let Some(v) = key_of(&value, kind) else {
            // A NULL key: ClickHouse fills nothing around it.
            order.push((0, row));
            continue;
        };
        if group_start {
            next = Some(from.unwrap_or(v));
            group_start = false;
        }
        if let Some(mut n) = next {
            while before(n, v) && to.is_none_or(|to| before(n, to)) {
                if !push_fill(n, (!fill.groups.is_empty()).then_some(row), &mut order) {
                    return too_many();
                }
                n = step(n)?;
            }
            if n == v {
                n = step(n)?;
            }
            next = Some(n);
        }
        order.push((0, row));
    }
    // After the last row (or from FROM with no rows and no groups): filled up to TO.
    if let Some(to) = to {
        let last_row = rows.checked_sub(1);
        let start = if rows == 0 { if fill.groups.is_empty() { from } else { None } } else { next };
        if let Some(mut n) = start {
            while before(n, to) {
                if !push_fill(n, (!fill.groups.is_empty()).then_some(last_row).flatten(), &mut order) {
                    return too_many();
                }
                n = step(n)?;
            }
        }
    }
    if added.is_empty() {
        return Ok(vec![batch]);
    }
    // The added rows as a batch: the filled key, the group keys copied, defaults elsewhere.
    let n = added.len();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, f) in schema.fields().iter().enumerate() {
        let array: ArrayRef = if i == fill.column {
            let keys = added.iter().map(|(k, _)| *k);
            let built: ArrayRef = match kind {
                Kind::Float => Arc::new(
                    keys.map(|k| match k {
                        Key::Float(f) => f,
                        Key::Int(i) => i as f64,
                    })
                    .collect::<Float64Array>(),
                ),
                _ => {
                    let ints: Vec<i128> = keys
                        .map(|k| match k {
                            Key::Int(i) => i,
                            Key::Float(f) => f as i128,
                        })
                        .collect();
                    if ints.iter().any(|v| !in_range(Key::Int(*v))) {
                        return refuse("past the filled column's type (ClickHouse wraps it around)");
                    }
                    if f.data_type() == &DataType::UInt64 {
                        Arc::new(datafusion::arrow::array::UInt64Array::from(
                            ints.iter().map(|v| *v as u64).collect::<Vec<_>>(),
                        ))
                    } else {
                        Arc::new(Int64Array::from(ints.iter().map(|v| *v as i64).collect::<Vec<_>>()))
                    }
                }
            };
            match f.data_type() {
                DataType::Timestamp(_, tz) => {
                    let seconds = cast(&built, &DataType::Int64).map_err(|e| EngineError::Execution(e.to_string()))?;
                    let seconds = seconds.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                    Arc::new(
                        datafusion::arrow::array::TimestampSecondArray::from(seconds.values().to_vec())
                            .with_timezone_opt(tz.clone()),
                    )
                }
                DataType::Date32 => cast(&built, &DataType::Int32)
                    .and_then(|a| cast(&a, &DataType::Date32))
                    .map_err(|e| EngineError::Execution(e.to_string()))?,
                t => cast(&built, t).map_err(|e| EngineError::Execution(e.to_string()))?,
            }
        } else if fill.groups.contains(&i) {
            let rows: Vec<u32> = added.iter().map(|(_, r)| r.unwrap_or(0) as u32).collect();
            datafusion::arrow::compute::take(batch.column(i), &datafusion::arrow::array::UInt32Array::from(rows), None)
                .map_err(|e| EngineError::Execution(e.to_string()))?
        } else {
            let default = if nullable.get(i).copied().unwrap_or(false) {
                ScalarValue::try_from(f.data_type())
            } else {
                super::functions::default_of(Some(f.as_ref()), f.data_type())
            }
            .map_err(|e| EngineError::Execution(e.to_string()))?;
            default.to_array_of_size(n).map_err(|e| EngineError::Execution(e.to_string()))?
        };
        columns.push(array);
    }
    let fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    let out_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
    let added = RecordBatch::try_new(out_schema.clone(), columns).map_err(|e| EngineError::Execution(e.to_string()))?;
    let mut out = Vec::with_capacity(schema.fields().len());
    for i in 0..schema.fields().len() {
        let sources: [&dyn Array; 2] = [batch.column(i).as_ref(), added.column(i).as_ref()];
        out.push(interleave(&sources, &order).map_err(|e| EngineError::Execution(e.to_string()))?);
    }
    RecordBatch::try_new(out_schema, out).map(|b| vec![b]).map_err(|e| EngineError::Execution(e.to_string()))
}
