//! The `Nullable`, `LowCardinality` and `Bool` types ClickHouse gives a selected expression, read from the query as
//! written. DataFusion keeps neither through functions (its `meta` for `toString(nullable_col)` would be `String`),
//! so the engine wraps the output column's type as ClickHouse would:
//! - `Nullable`: most functions and operators return `Nullable` when an argument is (`toString(ns)`, `ni + 1`),
//!   aggregates over a `Nullable` argument too (`min(ns)`), `…OrNull` conversions, `nullIf` and scalar subqueries
//!   always; `count`, `uniq…`, `isNull`, `ifNull`, `coalesce` (unless every argument is) and casts say for themselves.
//! - `LowCardinality`: functions and operators whose arguments are `LowCardinality` columns and constants
//!   (`upper(lc)`, `length(lc)`, `lc = 'a'`).
//! - `Bool`: `NOT`, `min`, `max` and `any` of a `Bool` are `Bool` (DataFusion computes UInt8), and comparisons are
//!   UInt8 even between two `Bool`s (DataFusion keeps a boolean).
//!
//! What is not known here (an alias, a CTE column, a window function, an aggregate over `LowCardinality`)
//! gives no hint, and the type stays as the engine computed it.

use crate::types::ChType;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, SelectItem, SetExpr, UnaryOperator,
    Value,
};

/// The wrappers one selected expression has in ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wrappers {
    /// `Nullable(…)`.
    pub nullable: bool,
    /// `LowCardinality(…)`.
    pub low_cardinality: bool,
    /// A `Bool` (`NOT flag`, `max(flag)`), which DataFusion computes as UInt8.
    pub boolean: bool,
    /// A comparison, UInt8 in ClickHouse even between two `Bool`s (`b = true`), where DataFusion keeps a boolean.
    pub comparison: bool,
}

impl Wrappers {
    const PLAIN: Wrappers = Wrappers { nullable: false, low_cardinality: false, boolean: false, comparison: false };
    const NULLABLE: Wrappers = Wrappers { nullable: true, ..Wrappers::PLAIN };

    /// The engine's type for the column with these wrappers added (never removed, never around an array).
    pub fn apply(self, ty: ChType) -> ChType {
        if matches!(ty.base(), ChType::Array(_)) || matches!(ty, ChType::Opaque(_)) {
            return ty;
        }
        let nullable = self.nullable && !ty.is_nullable();
        let low_cardinality = self.low_cardinality && !matches!(ty, ChType::LowCardinality(_));
        let ty = if self.boolean && matches!(ty.base(), ChType::Int { signed: false, bits: 8 }) {
            match ty {
                ChType::Nullable(_) => ChType::Nullable(Box::new(ChType::Bool)),
                _ => ChType::Bool,
            }
        } else {
            ty
        };
        let ty = if self.comparison && matches!(ty.base(), ChType::Bool) {
            let uint8 = ChType::Int { signed: false, bits: 8 };
            if ty.is_nullable() { ChType::Nullable(Box::new(uint8)) } else { uint8 }
        } else {
            ty
        };
        let ty = if nullable { ChType::Nullable(Box::new(ty)) } else { ty };
        if low_cardinality { ChType::LowCardinality(Box::new(ty)) } else { ty }
    }
}

/// Aggregate functions: `Nullable` when their argument is.
const AGGREGATES: &[&str] = &[
    "min",
    "max",
    "any",
    "anyLast",
    "sum",
    "avg",
    "median",
    "argMin",
    "argMax",
    "stddevPop",
    "stddevSamp",
    "varPop",
    "varSamp",
    "sumIf",
    "avgIf",
    "minIf",
    "maxIf",
];

/// Functions whose result is never `Nullable`, whatever their arguments.
const NEVER_NULLABLE: &[&str] = &[
    "count",
    "countIf",
    "countDistinct",
    "uniq",
    "uniqExact",
    "uniqCombined",
    "uniqHLL12",
    "isNull",
    "isNotNull",
    "ifNull",
    "assumeNotNull",
    "toTypeName",
    "groupArray",
    "groupUniqArray",
    "isNullable",
];

/// The wrappers of each item of the query's outermost SELECT, in order (None where unknown); empty when the
/// query is not a plain SELECT or selects `*`.
pub(super) fn of_query(query: &Query, column_type: &dyn Fn(&str) -> Option<ChType>) -> Vec<Option<Wrappers>> {
    let SetExpr::Select(select) = query.body.as_ref() else { return Vec::new() };
    let mut out = Vec::with_capacity(select.projection.len());
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => out.push(of(e, column_type)),
            _ => return Vec::new(),
        }
    }
    out
}

/// A constant's wrappers: `NULL` is nullable; literals are plain. None for anything else.
fn constant(expr: &Expr) -> Option<Wrappers> {
    match expr {
        Expr::Value(v) if matches!(v.value, Value::Null) => Some(Wrappers::NULLABLE),
        Expr::Value(_) => Some(Wrappers::PLAIN),
        Expr::Nested(e) => constant(e),
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => constant(expr),
        _ => None,
    }
}

fn of(expr: &Expr, column_type: &dyn Fn(&str) -> Option<ChType>) -> Option<Wrappers> {
    let column = |name: &str| {
        column_type(name).map(|ty| Wrappers {
            nullable: ty.is_nullable(),
            low_cardinality: matches!(ty, ChType::LowCardinality(_)),
            boolean: matches!(ty.base(), ChType::Bool),
            comparison: false,
        })
    };
    // Arguments' wrappers; a `LowCardinality` one makes the result unknown unless the caller handles it.
    let each = |args: &[&Expr]| -> Option<Vec<Wrappers>> { args.iter().map(|a| of(a, column_type)).collect() };
    // A scalar function or operator: `Nullable` when an argument is; `LowCardinality` when its arguments are
    // `LowCardinality` columns and constants (ClickHouse's default implementations for both).
    let scalar = |args: &[&Expr], wrappers: Vec<Wrappers>| -> Option<Wrappers> {
        let columns: Vec<&Wrappers> =
            wrappers.iter().zip(args).filter(|(_, a)| constant(a).is_none()).map(|(w, _)| w).collect();
        let low_cardinality = !columns.is_empty() && columns.iter().all(|w| w.low_cardinality);
        if !low_cardinality && columns.iter().any(|w| w.low_cardinality) {
            return None;
        }
        Some(Wrappers {
            nullable: wrappers.iter().any(|w| w.nullable),
            low_cardinality,
            boolean: false,
            comparison: false,
        })
    };
    match expr {
        Expr::Identifier(i) => column(&i.value),
        Expr::CompoundIdentifier(parts) => column(&parts.last()?.value),
        Expr::Value(_) => constant(expr),
        Expr::Nested(e) => of(e, column_type),
        Expr::IsNull(_) | Expr::IsNotNull(_) => Some(Wrappers::PLAIN),
        // `NOT flag` of a `Bool` is a `Bool`. (Each operand is looked at once: chains of `NOT` stay linear.)
        Expr::UnaryOp { op: UnaryOperator::Not, expr: inner } => {
            let w = of(inner, column_type)?;
            if w.boolean {
                Some(Wrappers { low_cardinality: false, comparison: false, ..w })
            } else {
                scalar(&[inner], vec![w])
            }
        }
        Expr::UnaryOp { op: UnaryOperator::Minus | UnaryOperator::Plus, expr } => scalar(&[expr], each(&[expr])?),
        Expr::BinaryOp {
            left,
            op:
                BinaryOperator::Plus
                | BinaryOperator::Minus
                | BinaryOperator::Multiply
                | BinaryOperator::Divide
                | BinaryOperator::Modulo
                | BinaryOperator::And
                | BinaryOperator::Or,
            right,
        } => scalar(&[left, right], each(&[left, right])?),
        Expr::BinaryOp {
            left,
            op:
                BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq,
            right,
        } => scalar(&[left, right], each(&[left, right])?).map(|w| Wrappers { comparison: true, ..w }),
        Expr::Cast { data_type, .. } => {
            let text = data_type.to_string();
            Some(Wrappers {
                nullable: text.starts_with("Nullable") || text.starts_with("LowCardinality(Nullable"),
                low_cardinality: text.starts_with("LowCardinality"),
                boolean: false,
                comparison: false,
            })
        }
        // An element of an array literal holding a NULL: `[1, NULL][i]` is Nullable(UInt8).
        Expr::CompoundFieldAccess { root, access_chain } if access_chain.len() == 1 => match root.as_ref() {
            Expr::Array(array) if array.elem.iter().any(|e| matches!(constant(e), Some(w) if w.nullable)) => {
                Some(Wrappers::NULLABLE)
            }
            _ => None,
        },
        // A scalar subquery is `Nullable` in ClickHouse (it may find no row).
        Expr::Subquery(_) => Some(Wrappers::NULLABLE),
        Expr::Function(f) => {
            // Window functions: the aggregates as without a window (below); ranks and `ntile` are plain UInt64;
            // `lag`/`lead` keep their argument's wrappers. Others are not known here.
            if f.over.is_some() {
                let name = f.name.0.last()?.as_ident()?.value.to_ascii_lowercase();
                match name.as_str() {
                    "row_number" | "rank" | "dense_rank" | "ntile" => return Some(Wrappers::PLAIN),
                    "count" | "sum" | "avg" | "min" | "max" => {}
                    _ => return None,
                }
            }
            if f.filter.is_some() || !f.within_group.is_empty() {
                return None;
            }
            let name = f.name.0.last()?.as_ident()?.value.clone();
            let FunctionArguments::List(list) = &f.args else {
                return if matches!(f.args, FunctionArguments::None) { Some(Wrappers::PLAIN) } else { None };
            };
            let mut args = Vec::with_capacity(list.args.len());
            for a in &list.args {
                match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
                    FunctionArg::Unnamed(FunctionArgExpr::Wildcard) if name.eq_ignore_ascii_case("count") => {}
                    _ => return None,
                }
            }
            if NEVER_NULLABLE.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                return Some(Wrappers::PLAIN);
            }
            if name.ends_with("OrNull") || name.eq_ignore_ascii_case("nullIf") {
                let over_low_cardinality = args.iter().any(|a| of(a, column_type).is_none_or(|w| w.low_cardinality));
                return (!over_low_cardinality).then_some(Wrappers::NULLABLE);
            }
            let wrappers = each(&args)?;
            if name.eq_ignore_ascii_case("coalesce") {
                if wrappers.iter().any(|w| w.low_cardinality) {
                    return None;
                }
                return Some(Wrappers {
                    nullable: wrappers.iter().all(|w| w.nullable),
                    low_cardinality: false,
                    boolean: false,
                    comparison: false,
                });
            }
            if AGGREGATES.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                // Over a `LowCardinality` argument: not known here.
                if wrappers.iter().any(|w| w.low_cardinality) {
                    return None;
                }
                // `min`/`max`/`any` of a `Bool` is a `Bool`.
                let picks = ["min", "max", "any", "anyLast"].iter().any(|n| n.eq_ignore_ascii_case(&name));
                return Some(Wrappers {
                    nullable: wrappers.iter().any(|w| w.nullable),
                    low_cardinality: false,
                    boolean: picks && wrappers.first().is_some_and(|w| w.boolean),
                    comparison: false,
                });
            }
            scalar(&args, wrappers)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrappers(sql: &str) -> Vec<Option<Wrappers>> {
        let query = crate::engine::compat::parse(sql).unwrap();
        of_query(&query, &|c| match c {
            "ns" => ChType::parse("Nullable(String)").ok(),
            "lc" => ChType::parse("LowCardinality(String)").ok(),
            "b" => ChType::parse("Bool").ok(),
            "s" => ChType::parse("String").ok(),
            _ => None,
        })
    }

    const N: Option<Wrappers> = Some(Wrappers::NULLABLE);
    const L: Option<Wrappers> = Some(Wrappers { low_cardinality: true, ..Wrappers::PLAIN });
    const P: Option<Wrappers> = Some(Wrappers::PLAIN);

    #[test]
    fn wrappers_follow_clickhouse() {
        assert_eq!(
            wrappers("SELECT toString(ns), min(ns), ns = 'a', count(ns), isNull(ns), coalesce(ns, '')"),
            [N, N, N.map(|w| Wrappers { comparison: true, ..w }), P, P, P]
        );
        assert_eq!(
            wrappers("SELECT upper(lc), length(lc), lc = 'a', concat(lc, s), s, min(lc)"),
            [L, L, L.map(|w| Wrappers { comparison: true, ..w }), None, P, None]
        );
        assert_eq!(
            wrappers("SELECT toInt64OrNull(s), (SELECT 1), CAST(s AS Nullable(String)), unknown_col"),
            [N, N, N, None]
        );
        assert!(wrappers("SELECT * FROM t").is_empty());
        let b = Wrappers { boolean: true, ..Wrappers::PLAIN };
        let c = Wrappers { comparison: true, ..Wrappers::PLAIN };
        assert_eq!(wrappers("SELECT b = true, s < 'a'"), [Some(c), Some(c)]);
        assert_eq!(c.apply(ChType::Bool).to_string(), "UInt8");
        assert_eq!(wrappers("SELECT NOT b, max(b), b, sum(b)"), [Some(b), Some(b), Some(b), P]);
        assert_eq!(b.apply(ChType::parse("UInt8").unwrap()), ChType::Bool);
        assert_eq!(
            Wrappers { low_cardinality: true, ..Wrappers::NULLABLE }.apply(ChType::String).to_string(),
            "LowCardinality(Nullable(String))"
        );
        assert_eq!(N.unwrap().apply(ChType::parse("Array(String)").unwrap()).to_string(), "Array(String)");
    }
}
