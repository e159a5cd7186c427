//! `ORDER BY` a value this engine stores as text but ClickHouse orders by its value: a UUID by its two 64-bit halves,
//! low half first; an IPv4 or IPv6 address by its number; an enum by the number of its name. An analyzer rule
//! replaces each such sort key, found by the declared type its field carries (a table's column, a subquery's or a
//! CTE's column, `toUUID(…)`), with `ch_order_key(key, 'Type')`, text that sorts as ClickHouse's order does.

use crate::types::ChType;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{ExprSchema, Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility, lit,
};
use datafusion::optimizer::AnalyzerRule;
use std::sync::Arc;

/// The analyzer rule; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct OrderKeys;

/// The declared type of a sort key when ClickHouse's order of it is not its text's.
fn keyed_type(expr: &Expr, schema: &dyn ExprSchema) -> Result<Option<String>> {
    // An expression this schema does not type (an outer column in a subquery's condition) is left as it is.
    let Ok((_, field)) = expr.to_field(schema) else { return Ok(None) };
    Ok(match ChType::of_field(&field).base() {
        ChType::Named(name) if name == "UUID" || name == "IPv4" || name == "IPv6" || name.starts_with("Enum") => {
            Some(name.clone())
        }
        _ => None,
    })
}

impl AnalyzerRule for OrderKeys {
    fn name(&self) -> &str {
        "clickhouse_order_keys"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| match plan {
            LogicalPlan::Sort(mut sort) => {
                let schema = sort.input.schema().clone();
                // A comparison inside a sort key (`ORDER BY ip < '10.0.0.0'`) compares values too.
                let mut changed = false;
                for item in &mut sort.expr {
                    let e = std::mem::replace(&mut item.expr, lit(0));
                    let keyed = e.transform_up(|e| key_comparison(e, schema.as_ref()))?;
                    changed |= keyed.transformed;
                    item.expr = keyed.data;
                }
                changed |= key_sorts(&mut sort.expr, schema.as_ref(), true)?;
                let plan = LogicalPlan::Sort(sort);
                Ok(if changed { Transformed::yes(plan) } else { Transformed::no(plan) })
            }
            // A window's `ORDER BY` (`row_number() OVER (ORDER BY e)`) orders as ClickHouse does too.
            LogicalPlan::Window(window) => {
                let schema = window.input.schema().clone();
                let Some(exprs) = key_each(&window.window_expr, |e| match e {
                    Expr::WindowFunction(f)
                        if matches!(f.fun.name().to_ascii_lowercase().as_str(), "min" | "max")
                            && f.params
                                .args
                                .iter()
                                .any(|a| keyed_type(a, schema.as_ref()).ok().flatten().is_some()) =>
                    {
                        datafusion::common::plan_err!(
                            "`{}` over a window of a UUID, IP or enum value (ClickHouse compares it by value, not as \
                             text) is not supported by tinybird-local's DataFusion engine",
                            f.fun.name()
                        )
                    }
                    Expr::WindowFunction(mut f) => {
                        use datafusion::logical_expr::{ExprSchemable, WindowFrameBound, WindowFrameUnits};
                        let frame = &f.params.window_frame;
                        let offset = |b: &WindowFrameBound| match b {
                            WindowFrameBound::Preceding(v) | WindowFrameBound::Following(v) => !v.is_null(),
                            WindowFrameBound::CurrentRow => false,
                        };
                        let ranged = frame.units == WindowFrameUnits::Range
                            && (offset(&frame.start_bound) || offset(&frame.end_bound));
                        // DataFusion reads a RANGE offset over a date as months (ClickHouse: days, seconds).
                        if ranged && let Some(first) = f.params.order_by.first() {
                            let ty = first.expr.get_type(schema.as_ref())?;
                            // Over a Nullable key ClickHouse's frames of NULL rows are its own (measured: not SQL's).
                            if first.expr.nullable(schema.as_ref()).unwrap_or(true) {
                                return datafusion::common::plan_err!(
                                    "a RANGE frame with an offset over a Nullable ORDER BY key is not supported by \
                                     tinybird-local's DataFusion engine (write ROWS, or order by assumeNotNull(key))"
                                );
                            }
                            if !ty.is_integer() {
                                return datafusion::common::plan_err!(
                                    "a RANGE frame with an offset over an ORDER BY of type {} is not supported by \
                                     tinybird-local's DataFusion engine (write ROWS, or order by an integer)",
                                    crate::types::ChType::from_arrow(&ty)
                                );
                            }
                        }
                        // `lag`/`lead` with a default: ClickHouse wants the supertype of the value's and the
                        // default's types to be the value's (`lagInFrame(i8, 1, 0)` is its error: Int16).
                        if matches!(f.fun.name(), "lag" | "lead")
                            && let [value, _, default] = f.params.args.as_slice()
                        {
                            let (vt, dt) = (value.get_type(schema.as_ref())?, default.get_type(schema.as_ref())?);
                            let nullable = value.nullable(schema.as_ref()).unwrap_or(true);
                            if !default_fits(&vt, &dt, nullable) {
                                return datafusion::common::plan_err!(
                                    "The supertype for the argument type {} and the default value type {} of {} is not \
                                     the same as the argument type (BAD_ARGUMENTS)",
                                    crate::types::ChType::from_arrow(&vt),
                                    crate::types::ChType::from_arrow(&dt),
                                    f.fun.name()
                                );
                            }
                        }
                        // NaN where NULLs go, as in a query's ORDER BY (not under a RANGE offset, which takes one key).
                        let keyed = key_sorts(&mut f.params.order_by, schema.as_ref(), !ranged)?;
                        let e = Expr::WindowFunction(f);
                        Ok(if keyed { Transformed::yes(e) } else { Transformed::no(e) })
                    }
                    // A comparison in a window's argument, partition or order (`lag(ip < '10.0.0.0')`).
                    other => key_comparison(other, schema.as_ref()),
                })?
                else {
                    return Ok(Transformed::no(LogicalPlan::Window(window)));
                };
                let window = datafusion::logical_expr::Window::try_new(exprs, window.input)?;
                Ok(Transformed::yes(LogicalPlan::Window(window)))
            }
            // Aggregates: `argMax(v, ip)` (a `first_value` ordered by `ip`) orders by value; `min`/`max` of such a
            // value become a `first_value` ordered by value.
            LogicalPlan::Aggregate(agg) => {
                let schema = agg.input.schema().clone();
                // A comparison in a key (`GROUP BY ip < '10.0.0.0'`) compares values; the key keeps its name.
                let keyed_groups = key_each(&agg.group_expr, |e| key_comparison(e, schema.as_ref()))?;
                let Some(exprs) = key_each(&agg.aggr_expr, |e| match e {
                    Expr::AggregateFunction(mut f) => {
                        let function = f.func.name().to_ascii_lowercase();
                        // `min(x)`/`max(x)` of such a value: the first of the non-NULL values ordered by value.
                        if matches!(function.as_str(), "min" | "max")
                            && let [arg] = f.params.args.as_slice()
                            && !f.params.distinct
                            && let Some(ty) = keyed_type(arg, schema.as_ref())?
                        {
                            let key = order_key_call(arg.clone(), &ty);
                            let order_by = vec![key.sort(function == "min", false)];
                            let first = datafusion::logical_expr::expr::AggregateFunction::new_udf(
                                datafusion::functions_aggregate::first_last::first_value_udaf(),
                                vec![arg.clone()],
                                false,
                                f.params.filter.clone(),
                                order_by,
                                None,
                            );
                            return Ok(Transformed::yes(Expr::AggregateFunction(first)));
                        }
                        let keyed = key_sorts(&mut f.params.order_by, schema.as_ref(), false)?;
                        let e = Expr::AggregateFunction(f);
                        Ok(if keyed { Transformed::yes(e) } else { Transformed::no(e) })
                    }
                    // A comparison in an aggregate's argument or filter (`countIf(ip < '10.0.0.0')`).
                    other => key_comparison(other, schema.as_ref()),
                })?
                else {
                    return Ok(if let Some(group) = keyed_groups {
                        let agg = datafusion::logical_expr::Aggregate::try_new(agg.input, group, agg.aggr_expr)?;
                        Transformed::yes(LogicalPlan::Aggregate(agg))
                    } else {
                        Transformed::no(LogicalPlan::Aggregate(agg))
                    });
                };
                let group = keyed_groups.unwrap_or(agg.group_expr);
                let agg = datafusion::logical_expr::Aggregate::try_new(agg.input, group, exprs)?;
                Ok(Transformed::yes(LogicalPlan::Aggregate(agg)))
            }
            // Comparisons (`e < 'b'`, `ip BETWEEN …`, `k = 'UPPER-CASE…'`, `IN`) compare values, as ClickHouse does.
            other => {
                let preserver = datafusion::logical_expr::expr_rewriter::NamePreserver::new(&other);
                // A join's condition reads both sides: its own schema; any other node reads its input.
                let schema = match &other {
                    LogicalPlan::Join(join) => join.schema.clone(),
                    _ => match other.inputs().first() {
                        Some(input) => input.schema().clone(),
                        None => return Ok(Transformed::no(other)),
                    },
                };
                let rewritten = other.map_expressions(|expr| {
                    let name = preserver.save(&expr);
                    let keyed = expr.transform_up(|e| key_comparison(e, schema.as_ref()))?;
                    Ok(if keyed.transformed { Transformed::yes(name.restore(keyed.data)) } else { keyed })
                })?;
                if !rewritten.transformed {
                    return Ok(rewritten);
                }
                rewritten.data.recompute_schema().map(Transformed::yes)
            }
        })
        .map(|t| t.data)
    }
}

fn order_key_call(key: Expr, ty: &str) -> Expr {
    Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(OrderKey { signature: Signature::any(2, Volatility::Immutable) })),
        vec![key, lit(ty.to_string())],
    ))
}

/// Whether a comparison's other operand can be keyed with `ty`: text (a literal such as `'10.0.0.1'`), or a value
/// of the same declared type.
fn comparable(expr: &Expr, ty: &str, schema: &dyn ExprSchema) -> Result<bool> {
    let Ok((_, field)) = expr.to_field(schema) else { return Ok(false) };
    Ok(match ChType::of_field(&field).base() {
        ChType::Named(name) => name == ty,
        ChType::String => matches!(field.data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8),
        _ => matches!(field.data_type(), DataType::Null),
    })
}

/// A comparison of a keyed value with text or another such value, on both sides' keys.
fn key_comparison(expr: Expr, schema: &dyn ExprSchema) -> Result<Transformed<Expr>> {
    use datafusion::logical_expr::{Operator, expr::BinaryExpr, expr::InList};
    let keyed_either = |a: &Expr, b: &Expr| -> Result<Option<String>> {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(ty) = keyed_type(x, schema)?
                && comparable(y, &ty, schema)?
            {
                return Ok(Some(ty));
            }
        }
        Ok(None)
    };
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(
                op,
                Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
            ) =>
        {
            match keyed_either(&left, &right)? {
                Some(ty) => Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(order_key_call(*left, &ty)),
                    op,
                    Box::new(order_key_call(*right, &ty)),
                )))),
                None => Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right }))),
            }
        }
        Expr::Between(between) => {
            // Keyed where any of the three is of a keyed type and the others compare with it.
            let mut ty = None;
            for e in [&between.expr, &between.low, &between.high] {
                if let Some(t) = keyed_type(e, schema)? {
                    ty = Some(t);
                    break;
                }
            }
            let ty = match ty {
                Some(ty)
                    if comparable(&between.expr, &ty, schema)?
                        && comparable(&between.low, &ty, schema)?
                        && comparable(&between.high, &ty, schema)? =>
                {
                    ty
                }
                _ => return Ok(Transformed::no(Expr::Between(between))),
            };
            let datafusion::logical_expr::expr::Between { expr, negated, low, high } = between;
            Ok(Transformed::yes(Expr::Between(datafusion::logical_expr::expr::Between::new(
                Box::new(order_key_call(*expr, &ty)),
                negated,
                Box::new(order_key_call(*low, &ty)),
                Box::new(order_key_call(*high, &ty)),
            ))))
        }
        Expr::InList(in_list) => {
            let ty = match keyed_type(&in_list.expr, schema)? {
                Some(ty)
                    if in_list.list.iter().try_fold(true, |ok, e| {
                        Ok::<_, datafusion::error::DataFusionError>(ok && comparable(e, &ty, schema)?)
                    })? =>
                {
                    ty
                }
                _ => return Ok(Transformed::no(Expr::InList(in_list))),
            };
            let InList { expr, list, negated } = in_list;
            Ok(Transformed::yes(Expr::InList(InList::new(
                Box::new(order_key_call(*expr, &ty)),
                list.into_iter().map(|e| order_key_call(e, &ty)).collect(),
                negated,
            ))))
        }
        // A UUID, IP or enum value inside an array or a tuple (`[ip]`, `(e, n)`, `tuple(ip, n)`) would be compared and
        // sorted as text there, and typed as `String`; `least`/`greatest` of one compare it as text: refused.
        Expr::ScalarFunction(f)
            if matches!(
                f.func.name(),
                "make_array" | "array" | "struct" | "named_struct" | "ch_least" | "ch_greatest" | "make_list"
            ) && f.args.iter().any(|a| keyed_type(a, schema).ok().flatten().is_some()) =>
        {
            datafusion::common::plan_err!(
                "a UUID, IP or enum value inside an array, a tuple, least or greatest (ClickHouse compares it by value, \
                 not as text) is not supported by tinybird-local's DataFusion engine"
            )
        }
        other => Ok(Transformed::no(other)),
    }
}

/// A node's expressions (a window's or an aggregate's) with `key` applied bottom-up to each, each output column keeping
/// its name, which the nodes above read it by; None when `key` changed none of them.
fn key_each(exprs: &[Expr], mut key: impl FnMut(Expr) -> Result<Transformed<Expr>>) -> Result<Option<Vec<Expr>>> {
    let mut changed = false;
    let mut out = Vec::with_capacity(exprs.len());
    for expr in exprs {
        let name = expr.schema_name().to_string();
        let aliased = matches!(expr, Expr::Alias(_));
        let keyed = expr.clone().transform_up(&mut key)?;
        changed |= keyed.transformed;
        out.push(if keyed.transformed && !aliased { keyed.data.alias(name) } else { keyed.data });
    }
    Ok(changed.then_some(out))
}

/// Whether ClickHouse's supertype of a value's type and a default's is the value's type (a default NULL fits a
/// Nullable value).
fn default_fits(value: &DataType, default: &DataType, nullable: bool) -> bool {
    let int = |t: &DataType| match t {
        DataType::Int8 => Some((true, 8)),
        DataType::Int16 => Some((true, 16)),
        DataType::Int32 => Some((true, 32)),
        DataType::Int64 => Some((true, 64)),
        DataType::UInt8 => Some((false, 8)),
        DataType::UInt16 => Some((false, 16)),
        DataType::UInt32 => Some((false, 32)),
        DataType::UInt64 => Some((false, 64)),
        _ => None,
    };
    match (value, default) {
        (_, DataType::Null) => nullable,
        (v, d) if v == d => true,
        (v, d) if int(v).is_some() && int(d).is_some() => {
            let ((vs, vb), (ds, db)) = (int(v).unwrap_or_default(), int(d).unwrap_or_default());
            match (vs, ds) {
                (false, false) | (true, true) => db <= vb,
                (true, false) => db < vb,
                (false, true) => false,
            }
        }
        (DataType::Float64, d) => matches!(d, DataType::Float32) || int(d).is_some_and(|(_, b)| b <= 32),
        (DataType::Float32, d) => int(d).is_some_and(|(_, b)| b <= 16),
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, d) => {
            matches!(d, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        }
        _ => false,
    }
}

/// Replaces each sort key of a keyed type by its `ch_order_key`, and (`nans`: a query's `ORDER BY`) puts a float key's
/// NaNs where its NULLs go, as ClickHouse does (last for `NULLS LAST`, whatever the direction; DataFusion sorts NaN as
/// the greatest value); whether any was changed.
fn key_sorts(items: &mut Vec<datafusion::logical_expr::SortExpr>, schema: &dyn ExprSchema, nans: bool) -> Result<bool> {
    let mut changed = false;
    let mut out = Vec::with_capacity(items.len());
    for mut item in std::mem::take(items) {
        if let Some(ty) = keyed_type(&item.expr, schema)? {
            let key = std::mem::replace(&mut item.expr, lit(0));
            item.expr = order_key_call(key, &ty);
            changed = true;
        } else if nans
            && let Ok((_, field)) = item.expr.to_field(schema)
            && matches!(field.data_type(), DataType::Float32 | DataType::Float64)
        {
            let nan = datafusion::functions::math::expr_fn::isnan(item.expr.clone());
            out.push(nan.sort(!item.nulls_first, item.nulls_first));
            changed = true;
        }
        out.push(item);
    }
    *items = out;
    Ok(changed)
}

/// `ch_order_key(value, 'Type')`: text whose order is ClickHouse's order of the values.
#[derive(Debug, PartialEq, Eq, Hash)]
struct OrderKey {
    signature: Signature,
}

/// The sort key of one value of a declared type (see the module documentation); None when the text is not a value
/// of the type.
fn key(value: &str, ty: &ChType) -> Option<String> {
    match ty {
        ChType::Named(name) if name == "UUID" => {
            // 36 characters with hyphens or 32 hex digits, as ClickHouse parses a UUID.
            let parsed = uuid::Uuid::try_parse(value).ok().filter(|_| value.len() == 36 || value.len() == 32)?;
            let hex = parsed.simple().to_string();
            Some(format!("{}{}", &hex[16..], &hex[..16]))
        }
        ChType::Named(name) if name == "IPv4" => {
            value.parse::<std::net::Ipv4Addr>().ok().map(|ip| format!("{:08x}", u32::from(ip)))
        }
        ChType::Named(name) if name == "IPv6" => {
            value.parse::<std::net::Ipv6Addr>().ok().map(|ip| format!("{:032x}", u128::from(ip)))
        }
        ChType::Named(name) => {
            let parsed: tinybird_types::ChType = name.parse().ok()?;
            let number = match parsed {
                tinybird_types::ChType::Enum8(values) => {
                    values.iter().find(|(n, _)| n == value).map(|(_, v)| i32::from(*v))
                }
                tinybird_types::ChType::Enum16(values) => {
                    values.iter().find(|(n, _)| n == value).map(|(_, v)| i32::from(*v))
                }
                _ => None,
            }?;
            Some(format!("{:05}", number + 32768))
        }
        _ => None,
    }
}

impl ScalarUDFImpl for OrderKey {
    fn name(&self) -> &str {
        "ch_order_key"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ColumnarValue::Scalar(datafusion::common::ScalarValue::Utf8(Some(declared))) = &args.args[1] else {
            return exec_err!("ch_order_key: the type must be a constant string");
        };
        let ty = ChType::Named(declared.clone());
        let values: ArrayRef = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(values.len(), values.len() * 32);
        for v in values.iter() {
            match v {
                None => out.append_null(),
                Some(v) => match key(v, &ty) {
                    Some(k) => out.append_value(k),
                    // The value stays out of the message: an error must not show a row a filter hides.
                    None => {
                        return exec_err!("DB::Exception: a value that is not a {declared} compared or sorted as one");
                    }
                },
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
