//! The embedded engine: Apache DataFusion over in-memory Arrow tables.

use super::compat::{self, Translated};
use super::functions;
use super::{Column, Engine, EngineError, QueryResult, TableScope, Value};
use crate::types::ChType;
use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, ListArray,
    RecordBatch, StringArray, UInt64Array, new_empty_array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Schema, SchemaRef,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::catalog::memory::MemorySourceConfig;
use datafusion::catalog::{Session, TableProvider};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Query;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tinybird_core::DatasourceDef;

/// ClickHouse's `Bool` is a `UInt8` underneath, so `flag = 1` and `flag IN (0, 1)` compare it as a number: that is
/// what Tinybird's `{{Boolean(x)}}` renders. DataFusion has no Boolean/integer coercion, so the Boolean side is cast
/// to an integer first (`true` is 1, `false` 0, exactly as in ClickHouse). A decimal compared with a float is
/// compared as Float64, as ClickHouse does (DataFusion would compare decimals).
#[derive(Debug)]
struct BoolAsInteger;

impl datafusion::logical_expr::expr_rewriter::FunctionRewrite for BoolAsInteger {
    fn name(&self) -> &str {
        "clickhouse_bool_as_integer"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &datafusion::common::DFSchema,
        _: &datafusion::config::ConfigOptions,
    ) -> datafusion::common::Result<datafusion::common::tree_node::Transformed<Expr>> {
        use datafusion::common::tree_node::Transformed;
        use datafusion::logical_expr::{BinaryExpr, Cast, ExprSchemable, Operator, expr::InList};
        let ty = |e: &Expr| type_of(e, schema);
        let as_int = |e: Expr, t: DataType| Expr::Cast(Cast::new(Box::new(e), t));
        let integers = |list: &[Expr]| !list.is_empty() && list.iter().all(|e| ty(e).is_some_and(|t| t.is_integer()));
        use Operator::{Eq, Gt, GtEq, Lt, LtEq, NotEq};
        Ok(match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) if matches!(op, Eq | NotEq | Lt | LtEq | Gt | GtEq) => {
                let float = |t: &Option<DataType>| matches!(t, Some(DataType::Float32 | DataType::Float64));
                let decimal = |t: &Option<DataType>| matches!(t, Some(DataType::Decimal128(..)));
                let (lt, rt) = (ty(&left), ty(&right));
                // A Date compared with text holding a time of day is ClickHouse's error (`d > '2024-01-10 00:00:00'`).
                let date = |t: &Option<DataType>| matches!(t, Some(DataType::Date32));
                let text = if date(&lt) { date_time_text(&right) } else { None };
                if let Some(text) = text.or_else(|| if date(&rt) { date_time_text(&left) } else { None }) {
                    return datafusion::common::plan_err!("{}", date_text_error(&text));
                }
                // A Date compared with a number is ClickHouse's error (`d > 20000`); a DateTime with one is not.
                let number = |t: &Option<DataType>| {
                    t.as_ref().is_some_and(|t| t.is_integer() || t.is_floating() || t.is_decimal())
                };
                if (date(&lt) && number(&rt)) || (number(&lt) && date(&rt)) {
                    let name = |t: &Option<DataType>| {
                        t.as_ref().map(|t| ChType::from_arrow(t).to_string()).unwrap_or_default()
                    };
                    let function = match op {
                        Eq => "equals",
                        NotEq => "notEquals",
                        Lt => "less",
                        LtEq => "lessOrEquals",
                        Gt => "greater",
                        _ => "greaterOrEquals",
                    };
                    return datafusion::common::plan_err!(
                        "DB::Exception: Illegal types of arguments ({}, {}) of function {function} (ILLEGAL_TYPE_OF_ARGUMENT)",
                        name(&lt),
                        name(&rt)
                    );
                }
                // A decimal and a float compare as Float64 in ClickHouse (DataFusion would compare decimals).
                if (decimal(&lt) && float(&rt)) || (float(&lt) && decimal(&rt)) {
                    let (l, r) = (as_int(*left, DataType::Float64), as_int(*right, DataType::Float64));
                    let compared = Expr::BinaryExpr(BinaryExpr { left: Box::new(l), op, right: Box::new(r) });
                    return Ok(Transformed::yes(nan_aware(compared, float(&lt), float(&rt))));
                }
                // Floats compare as IEEE numbers in ClickHouse (NaN equals nothing, is neither less nor greater);
                // DataFusion's kernels use the total order (NaN equal to NaN, above every number).
                if float(&lt) || float(&rt) {
                    let compared = Expr::BinaryExpr(BinaryExpr { left, op, right });
                    return Ok(Transformed::yes(nan_aware(compared, float(&lt), float(&rt))));
                }
                match (lt, rt) {
                    (Some(DataType::Boolean), Some(t)) if t.is_integer() => {
                        Transformed::yes(Expr::BinaryExpr(BinaryExpr { left: Box::new(as_int(*left, t)), op, right }))
                    }
                    (Some(t), Some(DataType::Boolean)) if t.is_integer() => {
                        Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right: Box::new(as_int(*right, t)) }))
                    }
                    _ => Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right })),
                }
            }
            // `concat` of arrays (`concat([1], [2])`, `arr || arr`) is `arrayConcat` in ClickHouse; the compatibility
            // layer writes `concat` as `ch_to_string(a) || ch_to_string(b)`, which would print the arrays as text.
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::StringConcat, right })
                if [&left, &right].iter().any(|side| is_list(&unwrap_to_string(side), schema)) =>
            {
                let (l, r) = (unwrap_to_string(&left), unwrap_to_string(&right));
                if !(is_list(&l, schema) && is_list(&r, schema)) {
                    return datafusion::common::plan_err!(
                        "DB::Exception: concat of an array and a value that is not one (ILLEGAL_TYPE_OF_ARGUMENT)"
                    );
                }
                let mut parts = Vec::new();
                for side in [l, r] {
                    match side {
                        Expr::ScalarFunction(f) if f.func.name() == "array_concat" => parts.extend(f.args),
                        other => parts.push(other),
                    }
                }
                Transformed::yes(datafusion::functions_nested::expr_fn::array_concat(parts))
            }
            // A Date between texts holding a time of day, or in a list of them: ClickHouse's error.
            // (The Date's type is read once, not for each element of a long list.)
            Expr::Between(between)
                if ty(&between.expr) == Some(DataType::Date32)
                    && let Some(text) = [&between.low, &between.high].iter().find_map(|b| date_time_text(b)) =>
            {
                return datafusion::common::plan_err!("{}", date_text_error(&text));
            }
            Expr::InList(InList { expr, list, .. })
                if ty(&expr) == Some(DataType::Date32)
                    && let Some(text) = list.iter().find_map(date_time_text) =>
            {
                return datafusion::common::plan_err!("{}", date_text_error(&text));
            }
            // A Date between numbers is ClickHouse's error, as a comparison of them is (`d BETWEEN 0 AND 10`).
            Expr::Between(between)
                if ty(&between.expr) == Some(DataType::Date32)
                    && [&between.low, &between.high]
                        .iter()
                        .any(|b| ty(b).is_some_and(|t| t.is_integer() || t.is_floating() || t.is_decimal())) =>
            {
                return datafusion::common::plan_err!(
                    "DB::Exception: Illegal types of arguments (Date, a number) of function greaterOrEquals \
                     (ILLEGAL_TYPE_OF_ARGUMENT)"
                );
            }
            // `min`/`max` of floats skip NaN, as ClickHouse's do (see the `extremes` module).
            Expr::AggregateFunction(mut agg)
                if matches!(agg.func.name(), "min" | "max") && agg.params.args.len() == 1 =>
            {
                match ty(&agg.params.args[0]).and_then(|t| super::extremes::replacement(agg.func.name() == "max", &t)) {
                    Some(f) => {
                        agg.func = f;
                        Transformed::yes(Expr::AggregateFunction(agg))
                    }
                    None => Transformed::no(Expr::AggregateFunction(agg)),
                }
            }
            // The results of `if`/`multiIf`/`CASE` and the arguments of `coalesce`/`ifNull`: ClickHouse's common type.
            Expr::Case(mut case) => {
                let mut results: Vec<&mut Expr> =
                    case.when_then_expr.iter_mut().map(|(_, then)| then.as_mut()).collect();
                if let Some(e) = case.else_expr.as_deref_mut() {
                    results.push(e);
                }
                let changed = common_type(results, schema)?;
                Transformed::new_transformed(Expr::Case(case), changed)
            }
            // The elements of an array (`[id, f32]` is an `Array(Float64)`, `[i8, u64]` ClickHouse's Variant).
            Expr::ScalarFunction(mut f) if f.func.name() == "make_array" && f.args.len() > 1 => {
                let changed = common_type(f.args.iter_mut().collect(), schema)?;
                Transformed::new_transformed(Expr::ScalarFunction(f), changed)
            }
            // ClickHouse's `coalesce` leaves out NULL literals and ends at its first argument that cannot be NULL:
            // `coalesce(NULL, d, dt)` is `d`, a Date (DataFusion would take a common type of all of them).
            // `ch_coalesce` (ClickHouse's `coalesce`/`ifNull`) becomes DataFusion's `coalesce` of the arguments cast.
            Expr::ScalarFunction(mut f) if matches!(f.func.name(), "coalesce" | "ch_coalesce") => {
                let renamed = f.func.name() == "ch_coalesce";
                if renamed {
                    f.func = datafusion::functions::core::coalesce();
                }
                let before = f.args.len();
                let null = |e: &Expr| matches!(e, Expr::Literal(v, _) if v.is_null());
                let mut kept = Vec::with_capacity(before);
                for a in std::mem::take(&mut f.args) {
                    if null(&a) {
                        continue;
                    }
                    let last = a.nullable(schema).ok() == Some(false);
                    kept.push(a);
                    if last {
                        break;
                    }
                }
                match kept.len() {
                    // Only NULLs: left as written.
                    0 => {
                        f.args = vec![Expr::Literal(datafusion::common::ScalarValue::Null, None); before];
                        Transformed::new_transformed(Expr::ScalarFunction(f), renamed)
                    }
                    1 if kept[0].nullable(schema).ok() == Some(false) || before == 1 => {
                        Transformed::yes(kept.remove(0))
                    }
                    _ => {
                        let shortened = kept.len() != before;
                        f.args = kept;
                        let changed = common_type(f.args.iter_mut().collect(), schema)?;
                        Transformed::new_transformed(Expr::ScalarFunction(f), changed || shortened || renamed)
                    }
                }
            }
            Expr::InList(InList { expr, list, negated }) if ty(&expr) == Some(DataType::Boolean) && integers(&list) => {
                Transformed::yes(Expr::InList(InList { expr: Box::new(as_int(*expr, DataType::Int64)), list, negated }))
            }
            other => Transformed::no(other),
        })
    }
}

/// The text of a string literal longer than a date, which ClickHouse cannot read as a Date when it is compared with
/// one (`'2024-01-10 00:00:00'`).
fn date_time_text(other: &Expr) -> Option<String> {
    match other {
        Expr::Literal(
            datafusion::common::ScalarValue::Utf8(Some(t)) | datafusion::common::ScalarValue::Utf8View(Some(t)),
            _,
        ) if t.trim().len() > 10 => Some(t.clone()),
        _ => None,
    }
}

fn date_text_error(text: &str) -> String {
    format!(
        "DB::Exception: Cannot convert string '{}' to type Date: it has more than a date (TYPE_MISMATCH)",
        text.chars().take(40).collect::<String>()
    )
}

/// The value `ch_to_string(x)` converts, or the expression itself.
fn unwrap_to_string(e: &Expr) -> Expr {
    match e {
        Expr::ScalarFunction(f) if f.func.name() == "ch_to_string" && f.args.len() == 1 => f.args[0].clone(),
        other => other.clone(),
    }
}

/// Whether an expression is an array.
fn is_list(e: &Expr, schema: &datafusion::common::DFSchema) -> bool {
    matches!(type_of(e, schema), Some(DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)))
}

/// A comparison of floats with ClickHouse's NaN: `=` and the orderings false when a side is NaN, `!=` true. A side
/// that is a literal number (or not a float) needs no test.
fn nan_aware(compared: Expr, left_float: bool, right_float: bool) -> Expr {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &compared else { return compared };
    let may_be_nan = |e: &Expr, float: bool| {
        float
            && !matches!(e, Expr::Literal(v, _) if !v.is_null() && match v {
                datafusion::common::ScalarValue::Float64(Some(f)) => !f.is_nan(),
                datafusion::common::ScalarValue::Float32(Some(f)) => !f.is_nan(),
                _ => false,
            })
    };
    let sides: Vec<Expr> = [(left.as_ref(), left_float), (right.as_ref(), right_float)]
        .into_iter()
        .filter(|(e, float)| may_be_nan(e, *float))
        .map(|(e, _)| datafusion::functions::math::expr_fn::isnan(e.clone()))
        .collect();
    // `=`: one NaN side already compares unequal in the total order; both NaN compare equal, so one test suffices.
    let tests: Vec<Expr> =
        if *op == Operator::Eq || *op == Operator::NotEq { sides.into_iter().take(1).collect() } else { sides };
    let op = *op;
    tests.into_iter().fold(compared, |acc, nan| match op {
        Operator::NotEq => acc.or(nan),
        _ => acc.and(Expr::Not(Box::new(nan))),
    })
}

/// An expression's type; for a column named without its table that two joined relations have (the key of a
/// `JOIN … USING`, which the planner resolves later), the type they share.
fn type_of(e: &Expr, schema: &datafusion::common::DFSchema) -> Option<DataType> {
    use datafusion::logical_expr::ExprSchemable;
    if let Ok(t) = e.get_type(schema) {
        return Some(t);
    }
    let Expr::Column(c) = e else { return None };
    if c.relation.is_some() {
        return None;
    }
    let fields = schema.fields_with_unqualified_name(&c.name);
    let first = fields.first()?.data_type();
    fields.iter().all(|f| f.data_type() == first).then(|| first.clone())
}

/// Values of several types that become one (a conditional's results, `coalesce`'s arguments): a `Date` among
/// `DateTime`s of one type is cast to it, as ClickHouse does (DataFusion would take a nanosecond timestamp). Types
/// ClickHouse 26.9 has no common type for, which it returns as a `Variant` (a String with a number or a date, a
/// `UInt64` with a signed integer or a float, a 64-bit integer with a float, a decimal with a float, a date with a
/// number), are refused, where DataFusion would convert them (rounding integers past 2^53). Whether any changed.
fn common_type(mut values: Vec<&mut Expr>, schema: &datafusion::common::DFSchema) -> datafusion::common::Result<bool> {
    use datafusion::logical_expr::{Cast, ExprSchemable};
    let mut types: Vec<DataType> = values.iter().filter_map(|e| e.get_type(schema).ok()).collect();
    if types.len() != values.len() {
        return Ok(false);
    }
    // A condition among integers is the UInt8 it is in ClickHouse (`ifNull(ns = 'a', 0)`); DataFusion has no common
    // type for a boolean and an integer.
    let mut booleans_cast = false;
    if types.contains(&DataType::Boolean) && types.iter().any(DataType::is_integer) {
        for (e, t) in values.iter_mut().zip(types.iter_mut()) {
            if *t == DataType::Boolean {
                let inner = std::mem::replace(&mut **e, Expr::Literal(datafusion::common::ScalarValue::Null, None));
                **e = Expr::Cast(Cast::new(Box::new(inner), DataType::UInt8));
                *t = DataType::UInt8;
                booleans_cast = true;
            }
        }
    }
    let changed = common_type_of(values, types)?;
    Ok(changed || booleans_cast)
}

/// [`common_type`] of values whose types are known.
fn common_type_of(values: Vec<&mut Expr>, types: Vec<DataType>) -> datafusion::common::Result<bool> {
    use datafusion::logical_expr::Cast;
    if let Some((a, b)) = variant_pair(&types) {
        return datafusion::common::plan_err!(
            "DB::Exception: values of types {} and {} together (ClickHouse 26.9 gives a Variant of them) are not \
             supported by tinybird-local's DataFusion engine",
            ChType::from_arrow(&a),
            ChType::from_arrow(&b)
        );
    }
    // A Float32 with a 32-bit integer is a Float64 (the integer does not fit a Float32's digits).
    let float64 = (types.contains(&DataType::Float32)
        && types.iter().any(|t| matches!(t, DataType::Int32 | DataType::UInt32)))
    .then_some(DataType::Float64);
    if let Some(target) = float64.map_or_else(|| decimal_supertype(&types), |t| Ok(Some(t)))? {
        let mut changed = false;
        for (e, t) in values.into_iter().zip(&types) {
            if *t != target && *t != DataType::Null {
                let inner = std::mem::replace(e, Expr::Literal(datafusion::common::ScalarValue::Null, None));
                *e = Expr::Cast(Cast::new(Box::new(inner), target.clone()));
                changed = true;
            }
        }
        return Ok(changed);
    }
    // Dates and date-times of several precisions: the finest (ClickHouse's `DateTime64(3)` for a Date, a DateTime
    // and a DateTime64(3)), where DataFusion would take nanoseconds.
    let units: Vec<TimeUnit> =
        types.iter().filter_map(|t| if let DataType::Timestamp(u, None) = t { Some(*u) } else { None }).collect();
    let Some(finest) = units.iter().max_by_key(|u| super::functions::per_second(u)).copied() else { return Ok(false) };
    let stamp = DataType::Timestamp(finest, None);
    if types.iter().all(|t| *t == stamp || *t == DataType::Null) {
        return Ok(false);
    }
    if !types.iter().all(|t| matches!(t, DataType::Date32 | DataType::Timestamp(_, None) | DataType::Null)) {
        return Ok(false);
    }
    for (e, t) in values.into_iter().zip(&types) {
        if *t != stamp && *t != DataType::Null {
            let inner = std::mem::replace(e, Expr::Literal(datafusion::common::ScalarValue::Null, None));
            *e = Expr::Cast(Cast::new(Box::new(inner), stamp.clone()));
        }
    }
    Ok(true)
}

/// ClickHouse's common type of decimals and integers: the widest storage among them (`Decimal(9, S)`,
/// `Decimal(18, S)` or `Decimal(38, S)`; an 8- or 16-bit integer needs 9 digits, a 32-bit one 18, a 64-bit one 38) at
/// the decimals' scale (different scales are ClickHouse's error). None without a decimal, or when all are one type.
fn decimal_supertype(types: &[DataType]) -> datafusion::common::Result<Option<DataType>> {
    let scales: Vec<i8> =
        types.iter().filter_map(|t| if let DataType::Decimal128(_, s) = t { Some(*s) } else { None }).collect();
    let Some(scale) = scales.first().copied() else { return Ok(None) };
    if scales.iter().any(|s| *s != scale) {
        return datafusion::common::plan_err!(
            "DB::Exception: Conditional functions with different Decimal scales (ILLEGAL_TYPE_OF_ARGUMENT)"
        );
    }
    let present: Vec<&DataType> = types.iter().filter(|t| **t != DataType::Null).collect();
    if present.iter().all(|t| *t == present[0]) {
        return Ok(None);
    }
    let mut digits = 0u8;
    for t in present {
        digits = digits.max(match t {
            DataType::Decimal128(p, _) if *p <= 9 => 9,
            DataType::Decimal128(p, _) if *p <= 18 => 18,
            DataType::Decimal128(..) => 38,
            DataType::Int8 | DataType::UInt8 | DataType::Int16 | DataType::UInt16 => 9,
            DataType::Int32 | DataType::UInt32 => 18,
            DataType::Int64 | DataType::UInt64 => 38,
            _ => return Ok(None),
        });
    }
    Ok(Some(DataType::Decimal128(digits, scale)))
}

/// Two of the types that ClickHouse would unite only as a `Variant`, if any (see [`common_type`]).
fn variant_pair(types: &[DataType]) -> Option<(DataType, DataType)> {
    #[derive(PartialEq)]
    enum Family {
        Text,
        Unsigned64,
        Signed(bool),
        Unsigned,
        Float,
        Decimal,
        Date,
        List(DataType),
        Other,
    }
    let family = |t: &DataType| match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Family::Text,
        DataType::UInt64 => Family::Unsigned64,
        DataType::Int64 => Family::Signed(true),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Family::Signed(false),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => Family::Unsigned,
        DataType::Float32 | DataType::Float64 => Family::Float,
        DataType::Decimal128(..) | DataType::Decimal256(..) => Family::Decimal,
        DataType::Date32 | DataType::Timestamp(..) => Family::Date,
        DataType::List(f) | DataType::LargeList(f) => Family::List(f.data_type().clone()),
        _ => Family::Other,
    };
    let number = |f: &Family| {
        matches!(f, Family::Unsigned64 | Family::Signed(_) | Family::Unsigned | Family::Float | Family::Decimal)
    };
    let apart = |a: &Family, b: &Family| match (a, b) {
        (Family::Other, _) | (_, Family::Other) => false,
        (Family::Text, b) => *b != Family::Text,
        (Family::Date, b) => number(b) || matches!(b, Family::List(_)),
        (Family::List(_), b) => !matches!(b, Family::List(_)),
        (Family::Unsigned64, b) => matches!(b, Family::Signed(_) | Family::Float),
        (Family::Signed(true), b) => matches!(b, Family::Float),
        (Family::Decimal, b) => matches!(b, Family::Float),
        _ => false,
    };
    for (i, a) in types.iter().enumerate() {
        for b in &types[i + 1..] {
            let (fa, fb) = (family(a), family(b));
            if apart(&fa, &fb) || apart(&fb, &fa) {
                return Some((a.clone(), b.clone()));
            }
            if let (Family::List(ea), Family::List(eb)) = (&fa, &fb)
                && let Some(pair) = variant_pair(&[ea.clone(), eb.clone()])
            {
                return Some(pair);
            }
        }
    }
    None
}

/// ClickHouse's result types for `+`, `-` and `*` on numbers (`NumberTraits::ResultOfAdditionMultiplication` and
/// `ResultOfSubtraction`): the next size up from the wider operand, capped at 64 bits; signed when either operand
/// is (always, for `-`); Float64 when either is a float. `UInt8 + UInt8` is UInt16 and `UInt64 - UInt64` Int64 in
/// ClickHouse, where DataFusion keeps UInt8 (and overflows) or UInt64. Both operands are cast to that type, so
/// DataFusion computes in it.
#[derive(Debug)]
struct ClickHouseArithmetic;

impl ClickHouseArithmetic {
    /// `(signed, bits)` of an integer type; None for anything else, Boolean included (ClickHouse's UInt8, but not a
    /// number to DataFusion's arithmetic).
    fn int(t: &DataType) -> Option<(bool, u32)> {
        match (t, ChType::from_arrow(t)) {
            (DataType::Boolean, _) => None,
            (_, ChType::Int { signed, bits }) => Some((signed, u32::from(bits))),
            _ => None,
        }
    }

    fn result(op: datafusion::logical_expr::Operator, l: &DataType, r: &DataType) -> Option<DataType> {
        use datafusion::logical_expr::Operator::{Minus, Multiply, Plus};
        if !matches!(op, Plus | Minus | Multiply) {
            return None;
        }
        let float = |t: &DataType| matches!(t, DataType::Float32 | DataType::Float64);
        if (float(l) || Self::int(l).is_some()) && (float(r) || Self::int(r).is_some()) && (float(l) || float(r)) {
            return Some(DataType::Float64);
        }
        let ((ls, lb), (rs, rb)) = (Self::int(l)?, Self::int(r)?);
        let bits = (lb.max(rb) * 2).min(64);
        Some(match (ls || rs || op == Minus, bits) {
            (true, 16) => DataType::Int16,
            (true, 32) => DataType::Int32,
            (true, _) => DataType::Int64,
            (false, 16) => DataType::UInt16,
            (false, 32) => DataType::UInt32,
            (false, _) => DataType::UInt64,
        })
    }
}

impl ClickHouseArithmetic {
    /// ClickHouse's type for `+`, `-`, `*` with a decimal operand: a decimal and an integer keep the decimal's type
    /// (`Decimal(10, 2) * 2` is `Decimal(10, 2)`); two decimals take the wider storage (precision 9, 18 or 38) and
    /// the larger scale, or for `*` the sum of the scales. None for anything else, a float included (DataFusion's
    /// own coercion then gives Float64, as ClickHouse does).
    fn decimal(op: datafusion::logical_expr::Operator, l: &DataType, r: &DataType) -> Option<DataType> {
        use datafusion::logical_expr::Operator::{Minus, Multiply, Plus};
        if !matches!(op, Plus | Minus | Multiply) {
            return None;
        }
        let storage = |p: u8| match p {
            0..=9 => 9,
            10..=18 => 18,
            _ => 38,
        };
        match (l, r) {
            (DataType::Decimal128(p, s), other) | (other, DataType::Decimal128(p, s)) if Self::int(other).is_some() => {
                Some(DataType::Decimal128(*p, *s))
            }
            (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) => {
                let precision = storage(*p1).max(storage(*p2));
                let scale = if op == Multiply { s1 + s2 } else { *s1.max(s2) };
                (scale <= precision as i8).then_some(DataType::Decimal128(precision, scale))
            }
            _ => None,
        }
    }

    /// `left op right` with ClickHouse's types, or None to leave it to DataFusion.
    fn plan(
        op: datafusion::logical_expr::Operator,
        left: &Expr,
        right: &Expr,
        schema: &datafusion::common::DFSchema,
    ) -> Option<Expr> {
        use datafusion::logical_expr::Operator::{Minus, Plus};
        use datafusion::logical_expr::{BinaryExpr, Cast};
        let (lt, rt) = (type_of(left, schema)?, type_of(right, schema)?);
        let cast = |e: &Expr, t: &DataType| Box::new(Expr::Cast(Cast::new(Box::new(e.clone()), t.clone())));
        // A condition or a `Bool` in arithmetic is the UInt8 it is in ClickHouse (`(u8 > 100) * 10`, `b + 1`).
        if lt == DataType::Boolean || rt == DataType::Boolean {
            let uint8 =
                |e: &Expr, t: &DataType| if *t == DataType::Boolean { *cast(e, &DataType::UInt8) } else { e.clone() };
            let (l, r) = (uint8(left, &lt), uint8(right, &rt));
            return Self::plan(op, &l, &r, schema)
                .or_else(|| Some(Expr::BinaryExpr(BinaryExpr { left: Box::new(l), op, right: Box::new(r) })));
        }
        // `Date - Date` is the days between them, an Int32 in ClickHouse.
        if op == Minus && lt == DataType::Date32 && rt == DataType::Date32 {
            let days = BinaryExpr { left: cast(left, &DataType::Int32), op, right: cast(right, &DataType::Int32) };
            return Some(Expr::BinaryExpr(days));
        }
        // `Date ± n` moves by n days, `DateTime ± n` and `n + DateTime` by n seconds, as in ClickHouse (DataFusion
        // refuses some, and would go past the type's range where ClickHouse wraps: refused, as `addDays` does).
        let dated = |t: &DataType| matches!(t, DataType::Date32 | DataType::Timestamp(_, None));
        let moved = match (&lt, &rt) {
            (t, n) if dated(t) && Self::int(n).is_some() && matches!(op, Plus | Minus) => Some((left, t, right)),
            (n, t) if dated(t) && Self::int(n).is_some() && op == Plus => Some((right, t, left)),
            _ => None,
        };
        if let Some((value, t, n)) = moved {
            let unit = match (t, op) {
                (DataType::Date32, Minus) => "-day",
                (DataType::Date32, _) => "day",
                (_, Minus) => "-second",
                _ => "second",
            };
            let call = datafusion::logical_expr::expr::ScalarFunction::new_udf(
                Arc::new(super::dates::date_add_udf()),
                vec![
                    Expr::Literal(datafusion::common::ScalarValue::Utf8(Some(unit.into())), None),
                    value.clone(),
                    n.clone(),
                ],
            );
            return Some(Expr::ScalarFunction(call));
        }
        // `date ± INTERVAL n unit`: ClickHouse's types and range (see `dates::plus_interval`).
        if matches!(op, Plus | Minus)
            && let Some(e) = super::dates::plus_interval(left, &lt, right, op == Minus)
        {
            return Some(e);
        }
        if op == Plus
            && let Some(e) = super::dates::plus_interval(right, &rt, left, false)
        {
            return Some(e);
        }
        // A decimal and a float: both as Float64, as ClickHouse computes it (DataFusion would keep a Float32).
        let float = |t: &DataType| matches!(t, DataType::Float32 | DataType::Float64);
        if matches!((&lt, &rt), (DataType::Decimal128(..), t) | (t, DataType::Decimal128(..)) if float(t)) {
            let float64 = DataType::Float64;
            return Some(Expr::BinaryExpr(BinaryExpr { left: cast(left, &float64), op, right: cast(right, &float64) }));
        }
        if let Some(target) = Self::decimal(op, &lt, &rt) {
            // DataFusion computes it exactly, in a wider decimal; the result takes ClickHouse's type (a value
            // beyond its precision is an error, where ClickHouse would keep it).
            let exact = BinaryExpr { left: Box::new(left.clone()), op, right: Box::new(right.clone()) };
            return Some(Expr::Cast(Cast::new(Box::new(Expr::BinaryExpr(exact)), target)));
        }
        let target = Self::result(op, &lt, &rt)?;
        let side = |e: &Expr, t: &DataType| if *t == target { Box::new(e.clone()) } else { cast(e, &target) };
        Some(Expr::BinaryExpr(BinaryExpr { left: side(left, &lt), op, right: side(right, &rt) }))
    }
}

/// Plugged into DataFusion's SQL planner, so the types apply wherever an expression is planned (projections
/// included, whose types DataFusion fixes while planning).
impl datafusion::logical_expr::planner::ExprPlanner for ClickHouseArithmetic {
    fn plan_binary_op(
        &self,
        expr: datafusion::logical_expr::planner::RawBinaryExpr,
        schema: &datafusion::common::DFSchema,
    ) -> datafusion::common::Result<
        datafusion::logical_expr::planner::PlannerResult<datafusion::logical_expr::planner::RawBinaryExpr>,
    > {
        use datafusion::logical_expr::Operator;
        use datafusion::logical_expr::planner::PlannerResult;
        use datafusion::sql::sqlparser::ast::BinaryOperator;
        let op = match &expr.op {
            BinaryOperator::Plus => Operator::Plus,
            BinaryOperator::Minus => Operator::Minus,
            BinaryOperator::Multiply => Operator::Multiply,
            // A condition or a `Bool` compared with an integer compares as a number (`(ni > 0) = 1` in a select
            // list, whose type DataFusion fixes while planning, before the analyzer's rewrite).
            compared @ (BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq) => {
                let (lt, rt) = (type_of(&expr.left, schema), type_of(&expr.right, schema));
                let op = match compared {
                    BinaryOperator::Eq => Operator::Eq,
                    BinaryOperator::NotEq => Operator::NotEq,
                    BinaryOperator::Lt => Operator::Lt,
                    BinaryOperator::LtEq => Operator::LtEq,
                    BinaryOperator::Gt => Operator::Gt,
                    _ => Operator::GtEq,
                };
                let as_int = |e: &Expr, t: &DataType| {
                    Box::new(Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(e.clone()), t.clone())))
                };
                return Ok(match (lt, rt) {
                    (Some(DataType::Boolean), Some(t)) if t.is_integer() => {
                        PlannerResult::Planned(Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr {
                            left: as_int(&expr.left, &t),
                            op,
                            right: Box::new(expr.right),
                        }))
                    }
                    (Some(t), Some(DataType::Boolean)) if t.is_integer() => {
                        PlannerResult::Planned(Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr {
                            left: Box::new(expr.left),
                            op,
                            right: as_int(&expr.right, &t),
                        }))
                    }
                    _ => PlannerResult::Original(expr),
                });
            }
            _ => return Ok(PlannerResult::Original(expr)),
        };
        Ok(match Self::plan(op, &expr.left, &expr.right, schema) {
            Some(planned) => PlannerResult::Planned(planned),
            None => PlannerResult::Original(expr),
        })
    }
}

/// Batches smaller than this are merged on append, so single-row ingestion does not fragment tables.
const COMPACT_ROWS: usize = 16 * 1024;

/// The DataFusion implementation of [`Engine`]: tables live in memory as Arrow record batches.
pub struct DataFusionEngine {
    ctx: SessionContext,
    tables: Arc<RwLock<HashMap<String, Arc<LiveTable>>>>,
    partitions: usize,
    max_result_bytes: usize,
}

/// Memory DataFusion's operators (joins, sorts, aggregations) may hold at once, across queries.
pub const DEFAULT_MEMORY_LIMIT: usize = 2 * 1024 * 1024 * 1024;
/// The largest result a query may return, in Arrow bytes (as ClickHouse's `max_result_bytes`).
pub const DEFAULT_MAX_RESULT_BYTES: usize = 512 * 1024 * 1024;

impl std::fmt::Debug for DataFusionEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tables: Vec<String> = self.tables.read().map(|t| t.keys().cloned().collect()).unwrap_or_default();
        f.debug_struct("DataFusionEngine").field("tables", &tables).finish()
    }
}

impl Default for DataFusionEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl DataFusionEngine {
    /// An engine with no tables.
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MEMORY_LIMIT, DEFAULT_MAX_RESULT_BYTES)
    }

    /// An engine whose operators hold at most `memory_limit` bytes at once (a query needing more fails with a
    /// memory error instead of exhausting the machine) and whose results are at most `max_result_bytes`.
    pub fn with_limits(memory_limit: usize, max_result_bytes: usize) -> Self {
        let partitions = std::thread::available_parallelism().map(std::num::NonZero::get).unwrap_or(2).clamp(1, 8);
        let mut config = SessionConfig::new().with_target_partitions(partitions).with_information_schema(false);
        // ClickHouse identifiers are case-sensitive: `userId` must stay `userId`.
        config.options_mut().sql_parser.enable_ident_normalization = false;
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_limit(memory_limit, 1.0)
            .build_arc()
            .unwrap_or_default();
        // The optimizers check the query's deadline between rules, and every operator checks it (see `guard`).
        let (logical, physical) = super::guard::guarded_rules();
        // ClickHouse's types of a UNION's date-time columns, settled before DataFusion's coercion sees them.
        let mut analyzer = datafusion::optimizer::Analyzer::new().rules;
        let coercion = analyzer.iter().position(|r| r.name() == "type_coercion").unwrap_or(analyzer.len());
        analyzer.insert(coercion, Arc::new(super::unions::UnionDateTimes));
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_analyzer_rules(analyzer)
            .with_optimizer_rules(logical)
            .with_physical_optimizer_rules(physical)
            .build();
        let mut ctx = SessionContext::new_with_state(state);
        functions::register(&ctx);
        super::arithmetic::register(&ctx);
        super::sums::register(&ctx);
        super::dates::register(&ctx);
        super::strings::register(&ctx);
        super::arrays::register(&ctx);
        super::states::register(&ctx);
        super::math::register(&ctx);
        super::text::register(&ctx);
        super::joins::register(&ctx);
        super::funnels::register(&ctx);
        super::quantiles::register(&ctx);
        super::decimals::register(&ctx);
        super::datetime64::register(&ctx);
        super::extremes::register(&ctx);
        super::expect::register(&ctx);
        // Registering a rewrite on a fresh context cannot fail (it only pushes onto the analyzer's list).
        let _ = datafusion::execution::FunctionRegistry::register_function_rewrite(&mut ctx, Arc::new(BoolAsInteger));
        let _ =
            datafusion::execution::FunctionRegistry::register_expr_planner(&mut ctx, Arc::new(ClickHouseArithmetic));
        ctx.add_analyzer_rule(Arc::new(super::joins::OuterJoinDefaults));
        ctx.add_analyzer_rule(Arc::new(super::order::OrderKeys));
        // Table names resolve through `ScopedSchema`: every table, or only the current query's scope.
        let tables = Arc::new(RwLock::new(HashMap::new()));
        let options = ctx.state().config_options().clone();
        let catalog = Arc::new(datafusion::catalog::MemoryCatalogProvider::new());
        let _ = datafusion::catalog::CatalogProvider::register_schema(
            catalog.as_ref(),
            &options.catalog.default_schema,
            Arc::new(ScopedSchema { tables: tables.clone() }),
        );
        ctx.register_catalog(options.catalog.default_catalog.as_str(), catalog);
        DataFusionEngine { ctx, tables, partitions, max_result_bytes }
    }

    fn table(&self, name: &str) -> Result<Arc<LiveTable>, EngineError> {
        self.tables
            .read()
            .map_err(|_| poisoned())?
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownTable(name.to_string()))
    }

    fn install(&self, name: &str, columns: Vec<(String, ChType)>) -> Result<(), EngineError> {
        let fields: Vec<_> = columns.iter().map(|(n, t)| t.field(n)).collect();
        let schema = Arc::new(Schema::new(fields));
        let table = Arc::new(LiveTable {
            schema,
            columns,
            data: RwLock::new(Vec::new()),
            writer: tokio::sync::Mutex::new(()),
            partitions: self.partitions,
        });
        self.tables.write().map_err(|_| poisoned())?.insert(name.to_string(), table);
        Ok(())
    }

    /// Plans and runs a translated statement in `state`, stopping once the result passes `max_result_bytes`.
    /// Returns the result's schema with its batches (the schema is known even when there are no rows).
    async fn run(
        &self,
        state: &SessionState,
        translated: &Translated,
        reads: Reads,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
        use futures::StreamExt;
        let statement = DfStatement::Statement(Box::new(translated.statement.clone()));
        let plan = state.statement_to_plan(statement).await.map_err(exec_error)?;
        let mut state = state.clone();
        if let Some(guard) = super::runtime::current_guard() {
            state.config_mut().set_extension(guard);
        }
        // Optimized once: the columns a query reads are known once projections are pushed into the scans.
        let plan = state.optimize(&plan).map_err(exec_error)?;
        if reads == Reads::Checked {
            refuse_time_zone_columns(&plan)?;
        }
        let physical = state.query_planner().create_physical_plan(&plan, &state).await.map_err(exec_error)?;
        let mut stream = datafusion::physical_plan::execute_stream(physical, state.task_ctx()).map_err(exec_error)?;
        let schema = stream.schema();
        let mut batches = Vec::new();
        let mut bytes = 0usize;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(exec_error)?;
            bytes += batch.get_array_memory_size();
            if bytes > self.max_result_bytes {
                return Err(EngineError::Memory(format!(
                    "the result is larger than {} bytes (max_result_bytes); add a LIMIT or aggregate",
                    self.max_result_bytes
                )));
            }
            batches.push(batch);
        }
        Ok((schema, batches))
    }

    /// The names a scoped query may resolve: each a table, or a view of one with the scope's filters applied.
    /// None for [`TableScope::All`]. Names outside it do not resolve (see [`ScopedSchema`]), so no rewrite of the
    /// query's text can reach them.
    async fn names_for(&self, scope: &TableScope) -> Result<Option<Arc<Names>>, EngineError> {
        let TableScope::Only(tables) = scope else { return Ok(None) };
        let mut names: Names = HashMap::with_capacity(tables.len());
        for scoped in tables {
            let provider: Arc<dyn TableProvider> = if scoped.filters.is_empty() {
                self.table(&scoped.table)?
            } else {
                Arc::new(self.filtered_view(&self.ctx.state(), &scoped.table, &scoped.filters).await?)
            };
            names.insert(scoped.name.clone(), provider);
        }
        Ok(Some(Arc::new(names)))
    }

    /// `SELECT * FROM table WHERE f1 AND f2 …`, planned over the real table, as a view.
    async fn filtered_view(
        &self,
        base: &SessionState,
        table: &str,
        filters: &[datafusion::sql::sqlparser::ast::Expr],
    ) -> Result<datafusion::catalog::view::ViewTable, EngineError> {
        use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr as SqlExpr, ObjectNamePart, SetExpr, TableFactor};
        self.table(table)?;
        let mut query = compat::parse("SELECT * FROM t")?;
        let SetExpr::Select(select) = query.body.as_mut() else { unreachable!("a literal SELECT") };
        if let Some(TableFactor::Table { name, .. }) = select.from.first_mut().map(|f| &mut f.relation) {
            name.0 = vec![ObjectNamePart::Identifier(datafusion::sql::sqlparser::ast::Ident::with_quote('`', table))];
        }
        let condition = filters.iter().map(|f| SqlExpr::Nested(Box::new(f.clone()))).reduce(|a, b| SqlExpr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        });
        select.selection = condition;
        let translated = compat::translate_query(query, self)
            .map_err(|e| EngineError::Syntax(format!("invalid filter for '{table}': {e}")))?;
        let statement = DfStatement::Statement(Box::new(translated.statement));
        let plan = base
            .statement_to_plan(statement)
            .await
            .map_err(|e| EngineError::Syntax(format!("invalid filter for '{table}': {}", exec_error(e))))?;
        Ok(datafusion::catalog::view::ViewTable::new(plan, None))
    }
}

/// What a query does with the columns it reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// Computes with them: refused where this engine would compute differently from ClickHouse.
    Checked,
    /// Copies rows as stored (a delete keeping the other rows).
    Copied,
}

/// Refuses a plan that reads a `DateTime` column of a time zone other than UTC. This engine stores such a value as
/// its wall-clock time, so what depends on the instant (`toUnixTimestamp`, adding hours across a daylight-saving
/// change, comparing with another zone's time) would differ from ClickHouse, which stores the instant.
fn refuse_time_zone_columns(plan: &datafusion::logical_expr::LogicalPlan) -> Result<(), EngineError> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut found = None;
    plan.apply(|node| {
        if let datafusion::logical_expr::LogicalPlan::TableScan(scan) = node {
            found = scan.projected_schema.fields().iter().find_map(|f| {
                let ty = ChType::of_field(f);
                let zoned = ty.time_zone().is_some_and(|tz| !crate::types::is_utc(tz));
                zoned.then(|| (f.name().clone(), ty))
            });
        }
        Ok(if found.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })
    .map_err(exec_error)?;
    match found {
        Some((column, ty)) => Err(EngineError::Unsupported(format!(
            "the column `{column}` of type {ty}: a DateTime in a time zone other than UTC (stored here as its \
             wall-clock time, not as ClickHouse's instant; use --engine clickhouse)"
        ))),
        None => Ok(()),
    }
}

fn poisoned() -> EngineError {
    EngineError::Execution("engine state lock poisoned by an earlier panic".into())
}

fn exec_error(mut e: datafusion::error::DataFusionError) -> EngineError {
    // An analyzer rule's error comes wrapped in the rule's name: the message is inside.
    while let datafusion::error::DataFusionError::Context(_, inner) = e {
        e = *inner;
    }
    let text = e.strip_backtrace();
    if let Some(name) = duplicate_column_name(&text) {
        // ClickHouse returns both columns under one name; DataFusion cannot hold two. Refuse with the name.
        return EngineError::Unsupported(format!(
            "two result columns named `{name}` (ClickHouse returns both under that name; alias one of them to run this here)"
        ));
    }
    // DataFusion's physical planner fails its own check on a sort by a comparison of a function's result
    // (`ORDER BY upper(s) < 'B'`, a UUID compared in a window's `PARTITION BY`): refused, naming it.
    if text.contains("does not satisfy order requirements") {
        return EngineError::Unsupported(
            "ORDER BY or PARTITION BY a comparison of a function's result (DataFusion's planner cannot sort by it)"
                .into(),
        );
    }
    // DataFusion plans `x IN (SELECT …)` and `EXISTS (…)` as joins only in a filter (WHERE, HAVING).
    if text.contains("does not support logical expression InSubquery") || text.contains("logical expression Exists") {
        return EngineError::Unsupported(
            "`IN (subquery)` or `EXISTS` outside WHERE and HAVING (in the select list, ORDER BY or a join \
             condition)"
                .into(),
        );
    }
    // DataFusion prefixes errors with their phase; keep the message that names the problem.
    let text = text
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("Execution error: ")
        .trim_start_matches("Arrow error: ")
        // The `ch_*` functions write ClickHouse's prefix themselves; the error adds it.
        .trim_start_matches("DB::Exception: ")
        .to_string();
    EngineError::Execution(text)
}

/// The name two projected columns share, from DataFusion's "Projections require unique expression names" error:
/// `… the expression "probe.i32 != Int64(1) AS notEquals(i32, 1)" at position 0 and … have the same name …`.
fn duplicate_column_name(text: &str) -> Option<&str> {
    let rest = text.split_once("Projections require unique expression names but the expression \"")?.1;
    let expression = rest.split_once("\" at position")?.0;
    Some(expression.rsplit_once(" AS ").map_or(expression, |(_, name)| name))
}

#[async_trait]
impl Engine for DataFusionEngine {
    async fn create_table(&self, def: &DatasourceDef) -> Result<(), EngineError> {
        let mut columns = Vec::with_capacity(def.columns.len());
        for c in &def.columns {
            let ty = ChType::parse(&c.ty)
                .map_err(|e| EngineError::Schema(format!("datasource '{}', column '{}': {e}", def.name, c.name)))?;
            columns.push((c.name.clone(), ty));
        }
        if columns.is_empty() {
            return Err(EngineError::Schema(format!("datasource '{}' has no columns", def.name)));
        }
        self.install(&def.name, columns)
    }

    async fn create_table_with_columns(&self, name: &str, columns: &[(String, ChType)]) -> Result<(), EngineError> {
        self.install(name, columns.to_vec())
    }

    async fn drop_table(&self, name: &str) -> Result<(), EngineError> {
        self.tables.write().map_err(|_| poisoned())?.remove(name);
        Ok(())
    }

    fn table_columns(&self, name: &str) -> Option<Vec<Column>> {
        let table = self.table(name).ok()?;
        Some(table.columns.iter().map(|(n, t)| Column { name: n.clone(), ty: t.clone() }).collect())
    }

    async fn append(&self, table: &str, rows: Vec<Vec<Value>>) -> Result<u64, EngineError> {
        let table = self.table(table)?;
        let count = rows.len() as u64;
        if rows.is_empty() {
            return Ok(0);
        }
        let batch = table.batch_from_rows(rows)?;
        let _writer = table.writer.lock().await;
        table.push(batch)?;
        Ok(count)
    }

    async fn run_query(&self, query: Query, scope: &TableScope) -> Result<QueryResult, EngineError> {
        let translated = compat::translate_query(query, self)?;
        // Each name the query reads, and the table behind it.
        let mut sources = Vec::with_capacity(translated.tables.len());
        for name in &translated.tables {
            let table = match scope {
                TableScope::All => self.tables.read().map_err(|_| poisoned())?.contains_key(name).then(|| name.clone()),
                TableScope::Only(list) => list.iter().find(|t| &t.name == name).map(|t| t.table.clone()),
            };
            sources.push(table.ok_or_else(|| EngineError::UnknownTable(name.clone()))?);
        }
        let state = self.ctx.state();
        match self.names_for(scope).await? {
            // Boxed: the planning and execution future is large.
            Some(names) => SCOPE.scope(names, Box::pin(self.finish(state, translated, sources))).await,
            None => Box::pin(self.finish(state, translated, sources)).await,
        }
    }

    async fn delete(&self, table: &str, condition: &str, dry_run: bool) -> Result<u64, EngineError> {
        let live = self.table(table)?;
        let quoted = compat::quote_ident(table);
        // One expression, nothing after it: the text below cannot become another statement or a UNION.
        compat::parse_condition(condition)?;
        let count_sql = format!("SELECT count() FROM {quoted} WHERE ({condition})");
        let _writer = live.writer.lock().await;
        let counted = self.query(&count_sql).await?;
        let matched = match counted.rows().first().and_then(|r| r.first()) {
            Some(Value::UInt(n)) => *n,
            Some(Value::Int(n)) => (*n).max(0) as u64,
            _ => 0,
        };
        if dry_run || matched == 0 {
            return Ok(matched);
        }
        // Rows whose condition is NULL are kept, as in ClickHouse.
        let keep_sql = format!("SELECT * FROM {quoted} WHERE NOT coalesce(({condition}), false)");
        let translated = compat::translate_with(&keep_sql, self)?;
        let (_, kept) = self.run(&self.ctx.state(), &translated, Reads::Copied).await?;
        let kept = kept
            .into_iter()
            .map(|b| RecordBatch::try_new(live.schema.clone(), b.columns().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Execution(e.to_string()))?;
        *live.data.write().map_err(|_| poisoned())? = kept;
        Ok(matched)
    }

    async fn truncate(&self, table: &str) -> Result<(), EngineError> {
        let live = self.table(table)?;
        let _writer = live.writer.lock().await;
        live.data.write().map_err(|_| poisoned())?.clear();
        Ok(())
    }

    async fn dump(&self, table: &str) -> Result<Vec<Vec<Value>>, EngineError> {
        let live = self.table(table)?;
        let batches = live.data.read().map_err(|_| poisoned())?.clone();
        let mut rows = Vec::new();
        for batch in &batches {
            for r in 0..batch.num_rows() {
                rows.push(batch.columns().iter().map(|a| value_at(a.as_ref(), r)).collect());
            }
        }
        Ok(rows)
    }
}

impl DataFusionEngine {
    /// Runs a translated query (inside its scope, when it has one) and applies its literal LIMIT.
    async fn finish(
        &self,
        state: SessionState,
        translated: Translated,
        sources: Vec<String>,
    ) -> Result<QueryResult, EngineError> {
        let (schema, batches) = self.run(&state, &translated, Reads::Checked).await?;
        // Values ClickHouse returns with a type of their own (an `IntervalDay` of 2): DataFusion's have no
        // ClickHouse type to name, and would be printed as text.
        // Tuples and maps (Arrow structs) have no ClickHouse type here either, and would be printed as Arrow's debug
        // text.
        fn unnamed(t: &DataType) -> bool {
            match t {
                DataType::Interval(_)
                | DataType::Duration(_)
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Struct(_)
                | DataType::Map(..)
                | DataType::Union(..) => true,
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => unnamed(f.data_type()),
                _ => false,
            }
        }
        if let Some(f) = schema.fields().iter().find(|f| super::states::is_state(f.data_type())) {
            return Err(EngineError::Unsupported(format!(
                "the result column `{}`, a -State value (ClickHouse returns its binary AggregateFunction state; \
                 finish it with -Merge)",
                f.name()
            )));
        }
        if let Some(f) = schema.fields().iter().find(|f| unnamed(f.data_type())) {
            return Err(EngineError::Unsupported(format!(
                "the result column `{}` of type {} (the DataFusion engine has no ClickHouse type for it: tuples, \
                 maps and intervals are computed only inside expressions)",
                f.name(),
                f.data_type()
            )));
        }
        // Two columns of one name (`*` over a join of tables sharing a column): ClickHouse names the second after its
        // table (`b.id`), which DataFusion's qualified fields do not say here.
        let mut seen = std::collections::HashSet::new();
        if let Some(f) = schema.fields().iter().find(|f| !seen.insert(f.name().as_str())) {
            return Err(EngineError::Unsupported(format!(
                "two result columns named `{}` (ClickHouse names a joined table's column after its table, or returns \
                 both under that name; alias them to run this here)",
                f.name()
            )));
        }
        // ClickHouse's `Nullable`/`LowCardinality` wrappers, which DataFusion does not carry through expressions.
        let wrappers = Some(&translated.wrappers).filter(|w| w.len() == schema.fields().len());
        let columns: Vec<Column> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| -> Result<Column, EngineError> {
                let ty = ChType::of_field(f);
                let ty = match wrappers.and_then(|w| w[i]) {
                    Some(w) => w.apply(ty),
                    None => ty,
                };
                // A column holding a NULL is Nullable in ClickHouse, whatever the hints missed.
                let has_null = batches.iter().any(|b| b.column(i).null_count() > 0);
                let ty = if has_null { with_nulls(ty) } else { ty };
                // So is an array's element type when an element is NULL (`[ni, 1]`, `arrayMap(x -> nullIf(x, 0), a)`).
                let ty = match ty {
                    ChType::Array(inner) if !inner.is_nullable() && elements_hold_null(&batches, i) => {
                        ChType::Array(Box::new(with_nulls(*inner)))
                    }
                    ty => ty,
                };
                // A repeated name, made distinct for DataFusion: shown as ClickHouse shows it.
                let name = f.name().split(compat::REPEATED_NAME_MARK).next().unwrap_or_default().to_string();
                // An array is never NULL in ClickHouse: where this engine has one, ClickHouse's type is another
                // (`CASE WHEN c THEN arr END` is a `Variant(Array(…))`).
                if has_null && matches!(ty, ChType::Array(_)) {
                    return Err(EngineError::Unsupported(format!(
                        "the column `{name}`, an array that is NULL on some rows (ClickHouse's type for it is a \
                         Variant, which the DataFusion engine does not have)"
                    )));
                }
                Ok(Column { name, ty })
            })
            .collect::<Result<_, _>>()?;
        // `WITH FILL`: rows added where the filled key skips values, before the LIMIT.
        let batches = match &translated.fill {
            None => batches,
            Some(fill) => {
                let bounds = super::fill::Bounds {
                    from: self.constant(&state, fill.from.as_ref()).await?,
                    to: self.constant(&state, fill.to.as_ref()).await?,
                    step: match &fill.step {
                        Some(super::fill::Step::Number(e)) => self.constant(&state, Some(e.as_ref())).await?,
                        _ => None,
                    },
                };
                let nullable: Vec<bool> = columns.iter().map(|c| c.ty.is_nullable()).collect();
                let known: Vec<bool> = (0..columns.len()).map(|i| wrappers.is_some_and(|w| w[i].is_some())).collect();
                super::fill::apply(fill, &bounds, &schema, &nullable, &known, &batches)?
            }
        };
        let total: usize = batches.iter().map(datafusion::arrow::array::RecordBatch::num_rows).sum();
        let (skip, take) = translated.literal_limit.unwrap_or((0, usize::MAX));
        // The literal LIMIT/OFFSET as zero-copy slices of the batches.
        let mut kept = Vec::with_capacity(batches.len());
        let (mut to_skip, mut to_take) = (skip, take);
        for batch in &batches {
            if to_take == 0 {
                break;
            }
            let n = batch.num_rows();
            if to_skip >= n {
                to_skip -= n;
                continue;
            }
            let len = (n - to_skip).min(to_take);
            kept.push(batch.slice(to_skip, len));
            to_take -= len;
            to_skip = 0;
        }
        let rows_before_limit = match &translated.count_statement {
            _ if translated.literal_limit.is_some() => Some(total as u64),
            Some(count) => {
                let counted = Translated::of(count.clone());
                let (_, batches) = self.run(&state, &counted, Reads::Checked).await?;
                batches.first().filter(|b| b.num_rows() > 0).map(|b| match value_at(b.column(0).as_ref(), 0) {
                    Value::Int(n) => n.max(0) as u64,
                    Value::UInt(n) => n,
                    _ => 0,
                })
            }
            None => None,
        };
        let (mut rows_read, mut bytes_read) = (0, 0);
        for name in &sources {
            if let Ok(t) = self.table(name) {
                let (r, b) = t.stats();
                rows_read += r;
                bytes_read += b;
            }
        }
        let mut result = QueryResult::new(columns, kept, rows_before_limit, rows_read, bytes_read);
        if let Some(statement) = &translated.totals_statement {
            result.totals = Some(self.totals_row(&state, statement, &schema).await?);
        }
        Ok(result)
    }

    /// The value of a constant ClickHouse expression (a `WITH FILL` bound), run as `SELECT expr`.
    async fn constant(
        &self,
        state: &SessionState,
        expr: Option<&datafusion::sql::sqlparser::ast::Expr>,
    ) -> Result<Option<Value>, EngineError> {
        let Some(expr) = expr else { return Ok(None) };
        let translated = compat::translate_with(&format!("SELECT {expr}"), self)?;
        if !translated.tables.is_empty() {
            return Err(EngineError::Unsupported("WITH FILL with a bound that reads a table".into()));
        }
        let (_, batches) = self.run(state, &translated, Reads::Checked).await?;
        match batches.iter().find(|b| b.num_rows() > 0) {
            Some(b) => Ok(Some(value_at(b.column(0).as_ref(), 0))),
            None => Ok(None),
        }
    }

    /// The `WITH TOTALS` row: the totals query's one row, in the rows' column types.
    async fn totals_row(
        &self,
        state: &SessionState,
        statement: &datafusion::sql::sqlparser::ast::Statement,
        schema: &SchemaRef,
    ) -> Result<RecordBatch, EngineError> {
        let totals = Translated::of(statement.clone());
        let (_, batches) = self.run(state, &totals, Reads::Checked).await?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let Some(batch) = batches.into_iter().find(|b| b.num_rows() > 0).filter(|_| rows == 1) else {
            return Err(EngineError::Unsupported(format!(
                "WITH TOTALS here: its query gave {rows} rows, not one (tinybird-local's DataFusion engine)"
            )));
        };
        if batch.num_columns() != schema.fields().len() {
            return Err(EngineError::Unsupported("WITH TOTALS here: its row has other columns than the rows".into()));
        }
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(a, f)| {
                if a.data_type() == f.data_type() {
                    Ok(a.clone())
                } else {
                    cast(a, f.data_type()).map_err(|e| EngineError::Unsupported(format!("WITH TOTALS here: {e}")))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        // A Nullable key's totals value is NULL where the rows may have none.
        let fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
        RecordBatch::try_new(Arc::new(datafusion::arrow::datatypes::Schema::new(fields)), columns)
            .map_err(|e| EngineError::Unsupported(format!("WITH TOTALS here: {e}")))
    }
}

/// The type of a column that holds a NULL: `Nullable(T)`, `LowCardinality(Nullable(T))`; an array, already Nullable
/// or opaque type as it is.
/// Whether an array column of the batches holds a NULL element.
fn elements_hold_null(batches: &[RecordBatch], column: usize) -> bool {
    batches.iter().any(|b| {
        let array = b.column(column);
        match array.data_type() {
            DataType::List(_) => {
                let list = array.as_list::<i32>();
                // Only the elements of the rows' own slices count (a sliced batch shares its parent's values).
                let offsets = list.value_offsets();
                let (start, end) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
                list.values().slice(start, end - start).null_count() > 0
            }
            _ => false,
        }
    })
}

fn with_nulls(ty: ChType) -> ChType {
    match ty {
        ChType::Nullable(_) | ChType::Array(_) | ChType::Opaque(_) => ty,
        ChType::LowCardinality(inner) => ChType::LowCardinality(Box::new(with_nulls(*inner))),
        other => ChType::Nullable(Box::new(other)),
    }
}

impl compat::Tables for DataFusionEngine {
    fn is_aggregate(&self, function: &str) -> bool {
        datafusion::execution::FunctionRegistry::udaf(&self.ctx, &function.to_ascii_lowercase()).is_ok()
            || datafusion::execution::FunctionRegistry::udaf(&self.ctx, function).is_ok()
    }

    fn nullable_column(&self, column: &str) -> bool {
        self.tables.read().is_ok_and(|tables| {
            tables.values().any(|t| t.columns.iter().any(|(n, ty)| n == column && ty.is_nullable()))
        })
    }

    fn column_type(&self, column: &str) -> Option<ChType> {
        let tables = self.tables.read().ok()?;
        let mut found: Option<ChType> = None;
        for (name, ty) in tables.values().flat_map(|t| t.columns.iter()) {
            if name == column {
                match &found {
                    Some(other) if other != ty => return None,
                    _ => found = Some(ty.clone()),
                }
            }
        }
        found
    }

    fn text_stored_column(&self, column: &str) -> bool {
        self.tables.read().is_ok_and(|tables| {
            tables.values().any(|t| {
                t.columns.iter().any(|(n, ty)| n == column && matches!(ty.base(), ChType::Named(_) | ChType::Opaque(_)))
            })
        })
    }

    fn columns(&self, table: &str) -> Option<Vec<(String, ChType)>> {
        let tables = self.tables.read().ok()?;
        Some(tables.get(table)?.columns.clone())
    }

    fn has_column(&self, column: &str) -> bool {
        self.tables.read().is_ok_and(|tables| tables.values().any(|t| t.columns.iter().any(|(n, _)| n == column)))
    }
}

/// The names a scoped query resolves, and what each reads.
type Names = HashMap<String, Arc<dyn TableProvider>>;

tokio::task_local! {
    /// The names the query being planned in this task may resolve (unset: every table).
    static SCOPE: Arc<Names>;
}

/// The engine's one schema: resolves a name to a table, or, while a scoped query plans, only to what its scope holds.
#[derive(Debug)]
struct ScopedSchema {
    tables: Arc<RwLock<HashMap<String, Arc<LiveTable>>>>,
}

impl ScopedSchema {
    fn resolve(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        match SCOPE.try_with(|names| names.get(name).cloned()) {
            Ok(found) => found,
            Err(_) => self.tables.read().ok()?.get(name).map(|t| t.clone() as Arc<dyn TableProvider>),
        }
    }
}

#[async_trait]
impl datafusion::catalog::SchemaProvider for ScopedSchema {
    fn table_names(&self) -> Vec<String> {
        match SCOPE.try_with(|names| names.keys().cloned().collect()) {
            Ok(names) => names,
            Err(_) => self.tables.read().map(|t| t.keys().cloned().collect()).unwrap_or_default(),
        }
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.resolve(name))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }
}

/// A table whose batches can grow, shrink and be replaced while queries read snapshots of them.
#[derive(Debug)]
struct LiveTable {
    schema: SchemaRef,
    columns: Vec<(String, ChType)>,
    data: RwLock<Vec<RecordBatch>>,
    /// Serialises writers (append, delete, truncate) so a delete never drops a concurrent append.
    writer: tokio::sync::Mutex<()>,
    partitions: usize,
}

impl LiveTable {
    fn batch_from_rows(&self, rows: Vec<Vec<Value>>) -> Result<RecordBatch, EngineError> {
        let width = self.columns.len();
        if let Some(bad) = rows.iter().find(|r| r.len() != width) {
            return Err(EngineError::Schema(format!("row has {} values, table has {width} columns", bad.len())));
        }
        let mut arrays = Vec::with_capacity(width);
        for (i, (name, ty)) in self.columns.iter().enumerate() {
            let values: Vec<&Value> = rows.iter().map(|r| &r[i]).collect();
            let array = build_array(ty, &values).map_err(|e| EngineError::Schema(format!("column '{name}': {e}")))?;
            arrays.push(array);
        }
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| EngineError::Schema(e.to_string()))
    }

    fn push(&self, batch: RecordBatch) -> Result<(), EngineError> {
        let mut data = self.data.write().map_err(|_| poisoned())?;
        match data.last_mut() {
            Some(last) if last.num_rows() + batch.num_rows() <= COMPACT_ROWS => {
                *last = concat_batches(&self.schema, [&*last, &batch])
                    .map_err(|e| EngineError::Execution(e.to_string()))?;
            }
            _ => data.push(batch),
        }
        Ok(())
    }

    fn stats(&self) -> (u64, u64) {
        let data = self.data.read().map(|d| d.clone()).unwrap_or_default();
        let rows = data.iter().map(|b| b.num_rows() as u64).sum();
        let bytes = data.iter().map(|b| b.get_array_memory_size() as u64).sum();
        (rows, bytes)
    }
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let snapshot = self
            .data
            .read()
            .map_err(|_| datafusion::error::DataFusionError::Execution("table lock poisoned".into()))?
            .clone();
        let mut partitions = vec![Vec::new(); self.partitions.max(1)];
        for (i, batch) in snapshot.into_iter().enumerate() {
            partitions[i % self.partitions.max(1)].push(batch);
        }
        let exec = MemorySourceConfig::try_new_exec(&partitions, self.schema.clone(), projection.cloned())?;
        Ok(exec)
    }
}

/// Builds an Arrow array of a column's storage type from already-validated values.
pub(crate) fn build_array(ty: &ChType, values: &[&Value]) -> Result<ArrayRef, String> {
    let target = ty.arrow();
    let mismatch = |v: &Value| format!("value {v:?} does not fit type {ty}");
    let array: ArrayRef = match ty.base() {
        ChType::Int { signed: true, .. } => {
            let a: Int64Array = values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Int(n) => Ok(Some(*n)),
                    Value::UInt(n) => i64::try_from(*n).map(Some).map_err(|_| mismatch(v)),
                    Value::Bool(b) => Ok(Some(*b as i64)),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<_, _>>()?;
            Arc::new(a)
        }
        ChType::Int { signed: false, .. } => {
            let a: UInt64Array = values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::UInt(n) => Ok(Some(*n)),
                    Value::Int(n) => u64::try_from(*n).map(Some).map_err(|_| mismatch(v)),
                    Value::Bool(b) => Ok(Some(*b as u64)),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<_, _>>()?;
            Arc::new(a)
        }
        ChType::Float(_) => {
            let a: Float64Array = values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Float(f) => Ok(Some(*f)),
                    Value::Int(n) => Ok(Some(*n as f64)),
                    Value::UInt(n) => Ok(Some(*n as f64)),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<_, _>>()?;
            Arc::new(a)
        }
        ChType::Decimal(p, s) => {
            let a: Decimal128Array = values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Decimal(n, scale) if scale == s => Ok(Some(*n)),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<_, _>>()?;
            Arc::new(a.with_precision_and_scale(*p, *s).map_err(|e| e.to_string())?)
        }
        // Opaque types never reach this engine (its tables refuse them); as text if they did.
        ChType::String | ChType::Named(_) | ChType::Opaque(_) => {
            let a: StringArray = values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Str(s) => Ok(Some(s.as_str())),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<_, _>>()?;
            Arc::new(a)
        }
        ChType::Bool => {
            let a: BooleanArray = values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Bool(b) => Ok(Some(*b)),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<_, _>>()?;
            Arc::new(a)
        }
        ChType::Date { .. } => {
            let a: Date32Array = values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Date(d) => Ok(Some(*d)),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<_, _>>()?;
            Arc::new(a)
        }
        ChType::DateTime { .. } => {
            // Straight in the column's unit: nanoseconds in an i64 end in 2262, a DateTime64(3) in 2299.
            let per_ns: i128 = match &target {
                DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
                DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
                DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
                _ => 1,
            };
            let a: Int64Array = values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::DateTime(ns) => i64::try_from(ns.div_euclid(per_ns))
                        .map(Some)
                        .map_err(|_| format!("the date-time {ns} ns is out of range for type {ty}")),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<_, _>>()?;
            Arc::new(a)
        }
        ChType::Array(inner) => {
            let mut offsets = Vec::with_capacity(values.len() + 1);
            offsets.push(0i32);
            let mut flat: Vec<&Value> = Vec::new();
            let mut valid = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    Value::Array(items) => {
                        flat.extend(items.iter());
                        valid.push(true);
                    }
                    Value::Null => valid.push(false),
                    other => return Err(mismatch(other)),
                }
                offsets.push(i32::try_from(flat.len()).map_err(|_| "array column too large".to_string())?);
            }
            let child = if flat.is_empty() { new_empty_array(&inner.arrow()) } else { build_array(inner, &flat)? };
            let DataType::List(field) = &target else { return Err(format!("type {ty} is not a list")) };
            let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
            Arc::new(
                ListArray::try_new(field.clone(), OffsetBuffer::new(offsets.into()), child, nulls)
                    .map_err(|e| e.to_string())?,
            )
        }
        ChType::Nullable(_) | ChType::LowCardinality(_) => unreachable!("base() strips wrappers"),
    };
    if array.data_type() == &target { Ok(array) } else { cast(&array, &target).map_err(|e| e.to_string()) }
}

/// Reads one cell of an Arrow array as a [`Value`].
pub(crate) fn value_at(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int8 => Value::Int(array.as_primitive::<Int8Type>().value(row) as i64),
        DataType::Int16 => Value::Int(array.as_primitive::<Int16Type>().value(row) as i64),
        DataType::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(row) as i64),
        DataType::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Value::UInt(array.as_primitive::<UInt8Type>().value(row) as u64),
        DataType::UInt16 => Value::UInt(array.as_primitive::<UInt16Type>().value(row) as u64),
        DataType::UInt32 => Value::UInt(array.as_primitive::<UInt32Type>().value(row) as u64),
        DataType::UInt64 => Value::UInt(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => Value::Float(array.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, s) => {
            Value::Decimal(array.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>().value(row), *s)
        }
        DataType::Utf8 => Value::Str(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Value::Str(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Value::Str(array.as_string_view().value(row).to_string()),
        DataType::Date32 => Value::Date(array.as_primitive::<Date32Type>().value(row)),
        DataType::Timestamp(unit, _) => Value::DateTime(match unit {
            TimeUnit::Second => i128::from(array.as_primitive::<TimestampSecondType>().value(row)) * 1_000_000_000,
            TimeUnit::Millisecond => {
                i128::from(array.as_primitive::<TimestampMillisecondType>().value(row)) * 1_000_000
            }
            TimeUnit::Microsecond => i128::from(array.as_primitive::<TimestampMicrosecondType>().value(row)) * 1_000,
            TimeUnit::Nanosecond => i128::from(array.as_primitive::<TimestampNanosecondType>().value(row)),
        }),
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(row);
            Value::Array((0..list.len()).map(|i| value_at(list.as_ref(), i)).collect())
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>().value(row);
            Value::Array((0..list.len()).map(|i| value_at(list.as_ref(), i)).collect())
        }
        _ => match cast(&array.slice(row, 1), &DataType::Utf8) {
            Ok(text) => value_at(text.as_ref(), 0),
            Err(_) => Value::Str(format!("{:?}", array.slice(row, 1))),
        },
    }
}
