//! ClickHouse's `optimize_arithmetic_operations_in_aggregate_functions` (on by default): `min`/`max`/`avg` of a value
//! and a constant joined by `+`, `-`, `*` or `/`, and `sum` of one multiplied or divided by a constant, are computed as
//! the aggregate of the value, then the arithmetic. It shows over no rows, where the aggregate is its type's default
//! (`max(id + 1)` is 1, `max(1.5 - f)` is 1.5, `max(id / 0)` NaN), where the arithmetic wraps (`max(u64 + 1)` is
//! `max(u64) + 1`, 0 when the largest is 2^64 − 1), in float rounding (`sum(f * 0.1)` is `sum(f) * 0.1`) and in
//! decimal truncation (`sum(dec / 2)`). Measured against ClickHouse 26.9: `c - x` becomes `c - min(x)` (for `max`), a
//! negative factor or divisor swaps `min` and `max`, `c / x` and `DISTINCT`, `-If` and window forms are left alone.
//! Names are given before this runs, so columns keep ClickHouse's (`max(plus(id, 1))`).

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, ObjectNamePart, Query,
    UnaryOperator, Value, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;

/// Lifts the arithmetic out of every `min`/`max`/`sum`/`avg` of the query that ClickHouse would.
pub(super) fn lift_arithmetic_out_of_aggregates(query: &mut Query) {
    struct Lift;
    impl VisitorMut for Lift {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            lift(e);
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(query, &mut Lift);
}

/// The aggregates ClickHouse lifts arithmetic out of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lifted {
    Min,
    Max,
    /// `sum`: only a factor or a divisor.
    Sum,
    Avg,
}

/// The aggregate as ClickHouse reads its name (in any case), with its single plain argument.
fn aggregate(e: &mut Expr) -> Option<(Lifted, &mut Expr)> {
    let Expr::Function(f) = e else { return None };
    if f.over.is_some() || f.filter.is_some() || f.null_treatment.is_some() || !f.within_group.is_empty() {
        return None;
    }
    if !matches!(f.parameters, FunctionArguments::None) {
        return None;
    }
    let [ObjectNamePart::Identifier(name)] = f.name.0.as_slice() else { return None };
    let kind = [("max", Lifted::Max), ("min", Lifted::Min), ("sum", Lifted::Sum), ("avg", Lifted::Avg)]
        .into_iter()
        .find(|(n, _)| name.value.eq_ignore_ascii_case(n))?
        .1;
    let FunctionArguments::List(list) = &mut f.args else { return None };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = list.args.as_mut_slice() else { return None };
    Some((kind, arg))
}

fn lift(e: &mut Expr) {
    let Some((kind, arg)) = aggregate(e) else { return };
    let mut inner = &*arg;
    while let Expr::Nested(x) = inner {
        inner = x;
    }
    let Expr::BinaryOp { left, op, right } = inner else { return };
    use BinaryOperator::{Divide, Minus, Multiply, Plus};
    if kind == Lifted::Sum && !matches!(op, Multiply | Divide) {
        return;
    }
    // (the value, whether the value is on the left, whether min and max trade places)
    let (value, value_left, swapped) = match op {
        Plus | Minus if constant(right) && !constant(left) => (left, true, false),
        Plus if constant(left) && !constant(right) => (right, false, false),
        // `c - x` grows as `x` shrinks.
        Minus if constant(left) && !constant(right) => (right, false, true),
        Multiply | Divide if !constant(left) => match sign(right) {
            Some(s) => (left, true, s < 0),
            None => return,
        },
        Multiply if !constant(right) => match sign(left) {
            Some(s) => (right, false, s < 0),
            None => return,
        },
        _ => return,
    };
    let name = match (kind, swapped) {
        (Lifted::Max, false) | (Lifted::Min, true) => "max",
        (Lifted::Min, false) | (Lifted::Max, true) => "min",
        (Lifted::Sum, _) => "sum",
        (Lifted::Avg, _) => "avg",
    };
    let mut aggregate = Expr::Function(datafusion::sql::sqlparser::ast::Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(datafusion::sql::sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr((**value).clone()))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    });
    // `max((x + 1) + 1)` is `(max(x) + 1) + 1`.
    lift(&mut aggregate);
    let aggregate = Box::new(Expr::Nested(Box::new(aggregate)));
    let other = if value_left { right.clone() } else { left.clone() };
    let (left, right) = if value_left { (aggregate, other) } else { (other, aggregate) };
    *e = Expr::Nested(Box::new(Expr::BinaryOp { left, op: op.clone(), right }));
}

/// Whether an expression is a constant ClickHouse folds: literals, intervals, scalar subqueries (ClickHouse runs them
/// first), and arithmetic and conversions of them.
fn constant(e: &Expr) -> bool {
    match e {
        Expr::Value(_) | Expr::Subquery(_) => true,
        Expr::Interval(i) => constant(&i.value),
        Expr::Nested(x) | Expr::UnaryOp { expr: x, .. } | Expr::Cast { expr: x, .. } => constant(x),
        Expr::BinaryOp { left, op, right } => {
            use BinaryOperator::{Divide, Minus, Multiply, Plus};
            matches!(op, Plus | Minus | Multiply | Divide) && constant(left) && constant(right)
        }
        Expr::Function(f) => {
            let [ObjectNamePart::Identifier(name)] = f.name.0.as_slice() else { return false };
            // Conversions (`toUInt8(1)`, `toIntervalDay(1)`): never a column's value, never random.
            let FunctionArguments::List(list) = &f.args else { return false };
            name.value.starts_with("to")
                && f.over.is_none()
                && f.filter.is_none()
                && list.args.iter().all(|a| matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) if constant(x)))
        }
        _ => false,
    }
}

/// The sign of a number literal (`-2`, `(0.5)`), or None for any other expression.
fn sign(e: &Expr) -> Option<i8> {
    match e {
        Expr::Nested(x) => sign(x),
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => sign(expr).map(|s| -s),
        Expr::UnaryOp { op: UnaryOperator::Plus, expr } => sign(expr),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => {
                let n: f64 = n.parse().ok()?;
                Some(if n < 0.0 { -1 } else { 1 })
            }
            _ => None,
        },
        _ => None,
    }
}
