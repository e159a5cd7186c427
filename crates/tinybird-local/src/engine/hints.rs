//! The `Nullable`, `LowCardinality` and `Bool` types ClickHouse gives a selected expression, read from the query as
//! written. DataFusion keeps neither through functions (its `meta` for `toString(nullable_col)` would be `String`),
//! so the engine wraps the output column's type as ClickHouse would:
//! - `Nullable`: most functions and operators return `Nullable` when an argument is (`toString(ns)`, `ni + 1`),
//!   aggregates over a `Nullable` argument too (`min(ns)`), `…OrNull` conversions, `nullIf` and scalar subqueries
//!   always; conditionals when a result is (not a condition); `count`, `uniq…`, `isNull`, `ifNull`, `coalesce` (unless
//!   every argument is) and casts say for themselves. A function of a bare `NULL` is `Nullable(Nothing)`.
//! - `LowCardinality`: functions and operators whose one argument that is not a constant is a `LowCardinality`
//!   column (`upper(lc)`, `length(lc)`, `lc = 'a'`; not `lc = lc`); `coalesce`, window functions and a `UNION` with
//!   NULL drop it.
//! - `Bool`: `true`, `NOT`, `AND` of `Bool`s, `min`, `max`, `any`, `argMax`, `nullIf`, conditionals and `groupArray`
//!   of a `Bool` keep it (DataFusion computes UInt8), and comparisons are UInt8 even between two `Bool`s (DataFusion
//!   keeps a boolean).
//!
//! A column of a subquery in FROM, a CTE or a UNION, an alias of the select list and a `*` over one relation carry
//! the wrappers of their defining expressions. What is not known here (a window function of most kinds, an aggregate
//! over `LowCardinality`) gives no hint, and the type stays as the engine computed it.

use crate::types::ChType;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, Select, SelectItem, SetExpr,
    UnaryOperator, Value,
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
    /// ClickHouse's `Nullable(Nothing)`: `NULL`, and a function or operator of a bare `NULL` (`1 + NULL`, `NOT NULL`,
    /// `upper(NULL)`), which is always NULL.
    pub nothing: bool,
}

impl Wrappers {
    const PLAIN: Wrappers =
        Wrappers { nullable: false, low_cardinality: false, boolean: false, comparison: false, nothing: false };
    const NOTHING: Wrappers = Wrappers { nullable: true, nothing: true, ..Wrappers::PLAIN };
    const NULLABLE: Wrappers = Wrappers { nullable: true, ..Wrappers::PLAIN };

    /// The engine's type for the column with these wrappers added (never removed, never around an array).
    pub fn apply(self, ty: ChType) -> ChType {
        if self.nothing {
            return ChType::Nullable(Box::new(ChType::Named("Nothing".into())));
        }
        // `groupArray` of a `Bool`: an array of `Bool`.
        if self.boolean
            && let ChType::Array(inner) = &ty
            && matches!(inner.as_ref(), ChType::Int { signed: false, bits: 8 })
        {
            return ChType::Array(Box::new(ChType::Bool));
        }
        if matches!(ty.base(), ChType::Array(_)) || matches!(ty, ChType::Opaque(_)) {
            return ty;
        }
        // A `LowCardinality` type the engine kept from a column where ClickHouse drops it (`coalesce(lc, lc)`,
        // `UNION ALL SELECT NULL` over a `LowCardinality` column): a known result that is not `LowCardinality`.
        let ty = match ty {
            ChType::LowCardinality(inner) if !self.low_cardinality => *inner,
            ty => ty,
        };

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
    "medianExact",
    "quantileExact",
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
    "toTypeName",
    "groupArray",
    "groupUniqArray",
    "isNullable",
    // An array or a tuple is never Nullable, and these search arrays or pick from them (measured).
    "array",
    "tuple",
    "has",
    "hasAny",
    "hasAll",
    "indexOf",
    "countEqual",
    "arrayStringConcat",
    "splitByChar",
    "splitByString",
    "splitByRegexp",
    "splitByWhitespace",
    "splitByNonAlpha",
];

/// The wrappers of each item of the query's outermost SELECT, in order (None where unknown); empty when the
/// query's columns are not known here (a `*` over a join, say).
///
/// A column of a subquery in FROM, a CTE or a UNION's branches has the wrappers its defining expression has there
/// (`SELECT v FROM (SELECT NULL AS v UNION ALL SELECT 1)` is Nullable); a `*` over one table has its columns'.
pub(super) fn of_query(
    query: &Query,
    column_type: &dyn Fn(&str) -> Option<ChType>,
    columns: &TableColumns<'_>,
) -> Vec<Option<Wrappers>> {
    let catalog = Catalog { column_type, columns };
    outputs_of_query(query, &Ctes::new(), &catalog, 0)
        .map(|o| o.into_iter().map(|(_, w)| w).collect())
        .unwrap_or_default()
}

/// What the engine knows of its tables.
struct Catalog<'a> {
    column_type: &'a dyn Fn(&str) -> Option<ChType>,
    columns: &'a TableColumns<'a>,
}

/// A table's columns and their types, by the table's name (None for a name that is not a table).
pub(super) type TableColumns<'a> = dyn Fn(&str) -> Option<Vec<(String, ChType)>> + 'a;

/// A query's output columns: each one's name (None when it is not a plain name or alias) and wrappers.
type Outputs = Vec<(Option<String>, Option<Wrappers>)>;

/// The CTEs in scope, by name.
type Ctes = std::collections::HashMap<String, Outputs>;

/// Subqueries nest at most this deep here (the parser's own depth limit is far lower); deeper gives no hints.
const MAX_DEPTH: usize = 64;

fn outputs_of_query(query: &Query, ctes: &Ctes, catalog: &Catalog<'_>, depth: usize) -> Option<Outputs> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut scope = ctes.clone();
    if let Some(with) = &query.with {
        if with.recursive {
            return None;
        }
        for cte in &with.cte_tables {
            if !cte.alias.columns.is_empty() {
                return None;
            }
            let outputs = outputs_of_query(&cte.query, &scope, catalog, depth + 1).unwrap_or_default();
            scope.insert(cte.alias.name.value.clone(), outputs);
        }
    }
    outputs_of_body(&query.body, &scope, catalog, depth + 1)
}

fn outputs_of_body(body: &SetExpr, ctes: &Ctes, catalog: &Catalog<'_>, depth: usize) -> Option<Outputs> {
    match body {
        SetExpr::Select(select) => outputs_of_select(select, ctes, catalog, depth),
        SetExpr::Query(q) => outputs_of_query(q, ctes, catalog, depth),
        SetExpr::SetOperation { left, right, .. } => {
            let (l, r) = (outputs_of_body(left, ctes, catalog, depth)?, outputs_of_body(right, ctes, catalog, depth)?);
            (l.len() == r.len()).then(|| {
                l.into_iter()
                    .zip(r)
                    .map(|((name, a), (_, b))| {
                        let merged = match (a, b) {
                            (Some(a), Some(b)) => Some(Wrappers {
                                nullable: a.nullable || b.nullable,
                                low_cardinality: a.low_cardinality && b.low_cardinality,
                                boolean: a.boolean && b.boolean,
                                comparison: a.comparison && b.comparison,
                                nothing: a.nothing && b.nothing,
                            }),
                            _ => None,
                        };
                        (name, merged)
                    })
                    .collect()
            })
        }
        _ => None,
    }
}

/// One relation of a FROM clause: its name in the query, and its columns when known (a table's come from the
/// catalog, by name; a subquery's or CTE's from its select list).
struct Relation {
    name: String,
    columns: Option<Outputs>,
}

/// The relations a SELECT reads, for its columns' wrappers.
struct Scope<'a> {
    relations: Vec<Relation>,
    catalog: &'a Catalog<'a>,
    /// The select list's aliases, which ClickHouse reads before any column of that name (`count() AS c, c + 1`).
    aliases: std::collections::HashMap<String, Option<Wrappers>>,
    /// The alias of the item being read: in its own expression, that name is the column.
    own: Option<String>,
}

impl Scope<'_> {
    fn column_wrappers(ty: &ChType) -> Wrappers {
        Wrappers {
            nullable: ty.is_nullable(),
            low_cardinality: matches!(ty, ChType::LowCardinality(_)),
            boolean: matches!(ty.base(), ChType::Bool),
            comparison: false,
            nothing: false,
        }
    }

    /// A column by name, qualified (`t.c`) or not.
    fn column(&self, qualifier: Option<&str>, name: &str) -> Option<Wrappers> {
        if qualifier.is_none()
            && self.own.as_deref() != Some(name)
            && let Some(w) = self.aliases.get(name)
        {
            return *w;
        }
        let relations = self.relations.iter().filter(|r| qualifier.is_none_or(|q| q == r.name));
        for relation in relations {
            if let Some(outputs) = &relation.columns
                && let Some((_, w)) = outputs.iter().find(|(n, _)| n.as_deref() == Some(name))
            {
                return *w;
            }
        }
        // A subquery's or CTE's column not named here (an expression without an alias): not known.
        if self.relations.iter().any(|r| r.columns.as_ref().is_some_and(|o| o.iter().any(|(n, _)| n.is_none()))) {
            return None;
        }
        (self.catalog.column_type)(name).map(|ty| Self::column_wrappers(&ty))
    }
}

fn outputs_of_select(select: &Select, ctes: &Ctes, catalog: &Catalog<'_>, depth: usize) -> Option<Outputs> {
    use datafusion::sql::sqlparser::ast::TableFactor;
    let mut relations = Vec::new();
    for from in &select.from {
        for factor in std::iter::once(&from.relation).chain(from.joins.iter().map(|j| &j.relation)) {
            let relation = match factor {
                TableFactor::Table { name, alias, args: None, .. } if name.0.len() <= 2 => {
                    let table = name.0.last()?.as_ident()?.value.clone();
                    let columns = match ctes.get(&table) {
                        Some(outputs) if name.0.len() == 1 => Some(outputs.clone()),
                        _ => (catalog.columns)(&table).map(|columns| {
                            columns.into_iter().map(|(n, ty)| (Some(n), Some(Scope::column_wrappers(&ty)))).collect()
                        }),
                    };
                    Relation { name: alias.as_ref().map_or(table, |a| a.name.value.clone()), columns }
                }
                TableFactor::Derived { subquery, alias, .. } => Relation {
                    name: alias.as_ref().map(|a| a.name.value.clone()).unwrap_or_default(),
                    columns: Some(outputs_of_query(subquery, ctes, catalog, depth + 1).unwrap_or_default()),
                },
                // A table function, a nested join…: its columns are not known here.
                _ => Relation { name: String::new(), columns: None },
            };
            relations.push(relation);
        }
    }
    let mut scope = Scope { relations, catalog, aliases: Default::default(), own: None };
    // The aliases' wrappers, read in a few rounds so an alias can use another (`a AS x, x + 1 AS y, y * 2`).
    let aliased: Vec<(&str, &Expr)> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } if !matches!(expr, Expr::Identifier(i) if i.value == alias.value) => {
                Some((alias.value.as_str(), expr))
            }
            _ => None,
        })
        .collect();
    for _ in 0..3 {
        let mut round = std::collections::HashMap::new();
        for (alias, expr) in &aliased {
            scope.own = Some((*alias).to_string());
            round.insert((*alias).to_string(), of(expr, &scope));
        }
        scope.aliases = round;
    }
    let mut out = Vec::with_capacity(select.projection.len());
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(e) => {
                let name = match e {
                    Expr::Identifier(i) => Some(i.value.clone()),
                    Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
                    _ => None,
                };
                scope.own = None;
                out.push((name, of(e, &scope)));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                scope.own = Some(alias.value.clone());
                out.push((Some(alias.value.clone()), of(expr, &scope)));
            }
            // `*` over one relation whose columns are known: each column, with its REPLACE or without its EXCEPT.
            SelectItem::Wildcard(options) => {
                let [relation] = scope.relations.as_slice() else { return None };
                let columns = relation.columns.as_ref()?;
                if options.opt_ilike.is_some() || options.opt_rename.is_some() || options.opt_exclude.is_some() {
                    return None;
                }
                let except: Vec<&str> = options
                    .opt_except
                    .iter()
                    .flat_map(|e| std::iter::once(&e.first_element).chain(&e.additional_elements))
                    .map(|i| i.value.as_str())
                    .collect();
                for (name, w) in columns {
                    let name_str = name.as_deref()?;
                    if except.contains(&name_str) {
                        continue;
                    }
                    let replaced = options.opt_replace.as_ref().and_then(|r| {
                        r.items.iter().find(|i| i.column_name.value == name_str).map(|i| of(&i.expr, &scope))
                    });
                    out.push((name.clone(), replaced.unwrap_or(*w)));
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The wrappers of a cast to the type written `text`.
fn cast_to(text: &str) -> Wrappers {
    Wrappers {
        nullable: text.starts_with("Nullable") || text.starts_with("LowCardinality(Nullable"),
        low_cardinality: text.starts_with("LowCardinality"),
        // `Bool`, `bool`, `BOOLEAN`: ClickHouse's names for it, in any case.
        boolean: ["Bool", "Boolean", "Nullable(Bool)", "Nullable(Boolean)"]
            .iter()
            .any(|b| text.trim().eq_ignore_ascii_case(b)),
        comparison: false,
        nothing: false,
    }
}

/// The wrappers of a conditional's result, from its possible results': `Nullable` when one is, never
/// `LowCardinality`.
fn branches(results: &[&Expr], scope: &Scope<'_>) -> Option<Wrappers> {
    let (mut nullable, mut boolean, mut values) = (false, true, 0);
    for r in results {
        // ClickHouse's conditionals drop `LowCardinality` (`if(b, lc, NULL)` is a Nullable(String); measured).
        let w = of(r, scope)?;
        nullable |= w.nullable;
        // `Bool` when every result but a bare NULL is (`CASE WHEN c THEN b END` is Nullable(Bool)).
        if !w.nothing {
            boolean &= w.boolean;
            values += 1;
        }
    }
    Some(Wrappers { nullable, boolean: boolean && values > 0, ..Wrappers::PLAIN })
}

/// A constant's wrappers: `NULL` is nullable; literals are plain. None for anything else.
fn constant(expr: &Expr) -> Option<Wrappers> {
    match expr {
        Expr::Value(v) if matches!(v.value, Value::Null) => Some(Wrappers::NOTHING),
        // `true`, `false`: Bool.
        Expr::Value(v) if matches!(v.value, Value::Boolean(_)) => Some(Wrappers { boolean: true, ..Wrappers::PLAIN }),
        Expr::Value(_) => Some(Wrappers::PLAIN),
        // An array of constants is a constant, never Nullable itself (`[1, NULL]` is Array(Nullable(UInt8))).
        Expr::Array(array) if array.elem.iter().all(|e| constant(e).is_some()) => Some(Wrappers::PLAIN),
        Expr::Nested(e) => constant(e),
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => constant(expr),
        _ => None,
    }
}

fn of(expr: &Expr, scope: &Scope<'_>) -> Option<Wrappers> {
    // Arguments' wrappers; a `LowCardinality` one makes the result unknown unless the caller handles it.
    let each = |args: &[&Expr]| -> Option<Vec<Wrappers>> { args.iter().map(|a| of(a, scope)).collect() };
    // A scalar function or operator: `Nullable` when an argument is; `LowCardinality` when its one argument that is
    // not a constant is `LowCardinality` (`upper(lc)`, `lc = 'a'`; with two such arguments ClickHouse reads them in
    // full: `lc = lc` and `concat(lc, s)` are not). ClickHouse's default implementations for both.
    let scalar = |args: &[&Expr], wrappers: Vec<Wrappers>| -> Option<Wrappers> {
        let columns: Vec<&Wrappers> =
            wrappers.iter().zip(args).filter(|(_, a)| constant(a).is_none()).map(|(w, _)| w).collect();
        let low_cardinality = matches!(columns.as_slice(), [w] if w.low_cardinality);
        Some(Wrappers {
            nullable: wrappers.iter().any(|w| w.nullable),
            low_cardinality,
            boolean: false,
            comparison: false,
            // ClickHouse's default for NULL arguments: a bare NULL makes the result a NULL of no type.
            nothing: wrappers.iter().any(|w| w.nothing),
        })
    };
    match expr {
        Expr::Identifier(i) => scope.column(None, &i.value),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [table, column] => scope.column(Some(&table.value), &column.value),
            _ => scope.column(None, &parts.last()?.value),
        },
        // An array of `Bool`s is an `Array(Bool)` (`[b, b]`).
        Expr::Array(array)
            if !array.elem.is_empty() && array.elem.iter().all(|e| of(e, scope).is_some_and(|w| w.boolean)) =>
        {
            Some(Wrappers { boolean: true, ..Wrappers::PLAIN })
        }
        Expr::Value(_) | Expr::Array(_) => constant(expr),
        Expr::Nested(e) => of(e, scope),
        Expr::IsNull(_) | Expr::IsNotNull(_) => Some(Wrappers::PLAIN),
        // `x BETWEEN a AND b`: a comparison of its operands.
        Expr::Between { expr: inner, low, high, .. } => {
            scalar(&[inner, low, high], each(&[inner, low, high])?).map(|w| Wrappers { comparison: true, ..w })
        }
        // `SUBSTRING(x FROM a FOR b)` and `TRIM(… FROM x)`: functions of their operands.
        Expr::Substring { expr: inner, substring_from, substring_for, .. } => {
            let mut args: Vec<&Expr> = vec![inner];
            args.extend(substring_from.as_deref());
            args.extend(substring_for.as_deref());
            scalar(&args, each(&args)?)
        }
        Expr::Trim { expr: inner, trim_what, .. } => {
            let mut args: Vec<&Expr> = vec![inner];
            args.extend(trim_what.as_deref());
            scalar(&args, each(&args)?)
        }
        // `x LIKE p`: as a function of `x` and `p` (`lc LIKE '%b%'` is LowCardinality(UInt8)).
        Expr::Like { expr: inner, pattern, .. } | Expr::ILike { expr: inner, pattern, .. } => {
            scalar(&[inner, pattern], each(&[inner, pattern])?).map(|w| Wrappers { comparison: true, ..w })
        }
        // `x IN (…)` is `Nullable` when `x` is, `LowCardinality` when `x` is (ClickHouse's `transform_null_in = 0`).
        Expr::InList { expr: inner, .. } | Expr::InSubquery { expr: inner, .. } => {
            scalar(&[inner], vec![of(inner, scope)?]).map(|w| Wrappers { comparison: true, ..w })
        }
        // `NOT flag` of a `Bool` is a `Bool`. (Each operand is looked at once: chains of `NOT` stay linear.)
        Expr::UnaryOp { op: UnaryOperator::Not, expr: inner } => {
            let w = of(inner, scope)?;
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
                | BinaryOperator::StringConcat,
            right,
        } => scalar(&[left, right], each(&[left, right])?),
        // `NULL AND 0` is 0: three-valued logic, Nullable(UInt8), never `Nothing`.
        // `AND`/`OR` with a `Bool` operand is a Bool (`b AND i8`, `true AND 1`; measured).
        Expr::BinaryOp { left, op: BinaryOperator::And | BinaryOperator::Or, right } => {
            let operands = each(&[left, right])?;
            let boolean = operands.iter().any(|w| w.boolean);
            scalar(&[left, right], operands).map(|w| Wrappers { nothing: false, boolean, ..w })
        }
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
        Expr::Cast { data_type, .. } => Some(cast_to(&data_type.to_string())),
        // An element of an array literal holding a NULL: `[1, NULL][i]` is Nullable(UInt8).
        Expr::CompoundFieldAccess { root, access_chain } if access_chain.len() == 1 => match root.as_ref() {
            Expr::Array(array) if array.elem.iter().any(|e| matches!(constant(e), Some(w) if w.nullable)) => {
                Some(Wrappers::NULLABLE)
            }
            _ => None,
        },
        // A scalar subquery is `Nullable` in ClickHouse (it may find no row).
        Expr::Subquery(_) => Some(Wrappers::NULLABLE),
        // `CASE WHEN c THEN a … ELSE b END` is `multiIf`: its results' wrappers (a missing ELSE is NULL), whatever the
        // conditions' (a NULL condition is false).
        // `CASE x WHEN v THEN a … END` likewise (ClickHouse's `transform`/`caseWithExpression`); over a
        // `LowCardinality` operand with constant values and results, a `LowCardinality` result (measured).
        Expr::Case { operand: Some(operand), conditions, else_result, .. }
            if of(operand, scope).is_none_or(|w| w.low_cardinality) =>
        {
            let constants =
                conditions.iter().all(|w| constant(&w.condition).is_some() && constant(&w.result).is_some())
                    && else_result.as_deref().is_none_or(|e| constant(e).is_some());
            if !constants || of(operand, scope).is_none() {
                return None;
            }
            let mut results: Vec<&Expr> = conditions.iter().map(|c| &c.result).collect();
            let null = Expr::value(Value::Null);
            results.push(else_result.as_deref().unwrap_or(&null));
            branches(&results, scope).map(|w| Wrappers { low_cardinality: true, ..w })
        }
        Expr::Case { conditions, else_result, .. } => {
            let mut results: Vec<&Expr> = conditions.iter().map(|c| &c.result).collect();
            let null = Expr::value(Value::Null);
            results.push(else_result.as_deref().unwrap_or(&null));
            branches(&results, scope)
        }
        Expr::Function(f) => {
            // Window functions: the aggregates as without a window (below); ranks and `ntile` are plain UInt64;
            // `lag`/`lead` keep their argument's wrappers. Others are not known here.
            if f.over.is_some() {
                let name = f.name.0.last()?.as_ident()?.value.to_ascii_lowercase();
                match name.as_str() {
                    "row_number" | "rank" | "dense_rank" | "ntile" | "percent_rank" | "cume_dist" => {
                        return Some(Wrappers::PLAIN);
                    }
                    "count" | "sum" | "avg" | "min" | "max" => {}
                    // A value of the argument's column: its wrappers (`lag(b)` is a `Bool`, `lag(ni, 1, 0)` a
                    // `Nullable`, whatever the default).
                    "first_value" | "last_value" | "nth_value" | "lag" | "lead" | "laginframe" | "leadinframe" => {
                        let FunctionArguments::List(list) = &f.args else { return None };
                        let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))) = list.args.first() else {
                            return None;
                        };
                        // ClickHouse's window functions drop `LowCardinality`.
                        return of(arg, scope).map(|w| Wrappers {
                            comparison: false,
                            nothing: false,
                            low_cardinality: false,
                            ..w
                        });
                    }
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
            // `groupArray` (and `topK`) of a `Bool` is an `Array(Bool)`.
            if (name == "groupArray" || name == "groupUniqArray" || name == "topK") && args.len() == 1 {
                let boolean = of(args[0], scope).is_some_and(|w| w.boolean);
                return Some(Wrappers { boolean, ..Wrappers::PLAIN });
            }
            if NEVER_NULLABLE.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                return Some(Wrappers::PLAIN);
            }
            // `-State` and `-Merge` (see `compat::calls::STATES`): the merged result is as the aggregate's, `Nullable`
            // for a `sum` or `avg` of a `Nullable` argument, never `LowCardinality`.
            if let Some(base) = name.strip_suffix("State").or_else(|| name.strip_suffix("Merge"))
                && matches!(base, "count" | "sum" | "avg" | "uniq" | "uniqExact")
                && args.len() <= 1
            {
                let nullable = matches!(base, "sum" | "avg")
                    && args.first().map(|a| of(a, scope)).is_some_and(|w| w.is_some_and(|w| w.nullable));
                return Some(Wrappers { nullable, ..Wrappers::PLAIN });
            }
            // `transform(x, from, to, default)`: never Nullable, `LowCardinality` when `x` is (`transform(x, from,
            // to)` has x's type).
            if name == "transform" && args.len() == 4 {
                let low_cardinality = of(args[0], scope).is_some_and(|w| w.low_cardinality);
                return Some(Wrappers { low_cardinality, ..Wrappers::PLAIN });
            }
            // `nullIf(x, y)`: `x`'s type, Nullable (a `Bool` stays one; `LowCardinality` is kept only against a
            // literal: `nullIf(lc, 'a')` is `LowCardinality(Nullable(String))`, `nullIf(lc, lc)` not).
            if name.eq_ignore_ascii_case("nullIf") && args.len() == 2 {
                let w = of(args[0], scope)?;
                return Some(Wrappers {
                    nullable: true,
                    low_cardinality: w.low_cardinality && matches!(args[1], Expr::Value(_)),
                    comparison: false,
                    nothing: false,
                    ..w
                });
            }
            // `assumeNotNull(x)`: `x`'s type without `Nullable`.
            if name == "assumeNotNull" && args.len() == 1 {
                let w = of(args[0], scope)?;
                return Some(Wrappers { nullable: false, comparison: false, nothing: false, ..w });
            }
            // `toNullable(x)`: `x`'s type, `Nullable` (a comparison's UInt8 stays one).
            if name == "toNullable" && args.len() == 1 {
                return of(args[0], scope).map(|w| Wrappers { nullable: true, ..w });
            }
            // `toLowCardinality(x)`: `x`'s type, `LowCardinality`.
            if name == "toLowCardinality" && args.len() == 1 {
                return of(args[0], scope).map(|w| Wrappers { low_cardinality: true, nothing: false, ..w });
            }
            if name.ends_with("OrNull") || name.eq_ignore_ascii_case("nullIf") {
                // Of a `LowCardinality` text, a `LowCardinality(Nullable(…))` (`toInt32OrNull(lc)`), except the
                // conversions that take a scale or give a DateTime64 (measured).
                let keeps = !["Decimal", "DateTime64", "64BestEffort"].iter().any(|n| name.contains(n));
                let wrappers = each(&args)?;
                let low_cardinality = scalar(&args, wrappers.clone()).is_some_and(|w| w.low_cardinality);
                if low_cardinality && !keeps {
                    return None;
                }
                return Some(Wrappers { low_cardinality, ..Wrappers::NULLABLE });
            }
            // `toInt64OrDefault(x)`: never Nullable (a NULL gives the default); `LowCardinality` as other functions.
            if name.starts_with("to") && name.ends_with("OrDefault") {
                let low_cardinality = scalar(&args, each(&args)?).is_some_and(|w| w.low_cardinality);
                return Some(Wrappers { low_cardinality, ..Wrappers::PLAIN });
            }
            // JSON functions drop `LowCardinality` (`JSONExtractString(lc, 'a')` is a String; `simpleJSON…` and
            // `visitParam…` keep it); `JSONExtract(json, …, 'Bool')` is a `Bool` (computed as UInt8), Nullable when
            // the document is.
            if name.starts_with("JSON") || name == "isValidJSON" {
                let boolean = name == "JSONExtract"
                    && matches!(args.last(), Some(Expr::Value(v)) if matches!(&v.value, Value::SingleQuotedString(t) if t.trim() == "Bool"));
                return scalar(&args, each(&args)?).map(|w| Wrappers { low_cardinality: false, boolean, ..w });
            }
            // `CAST(x, 'T')`: as `CAST(x AS T)`.
            if name.eq_ignore_ascii_case("cast")
                && let [_, Expr::Value(v)] = args.as_slice()
                && let Value::SingleQuotedString(text) = &v.value
            {
                return Some(cast_to(text));
            }
            // `if(c, a, b)` and `multiIf(c1, a1, …, b)`: their results' wrappers, not the conditions'.
            if name.eq_ignore_ascii_case("if") && args.len() == 3 {
                return branches(&args[1..], scope);
            }
            if name == "multiIf" && args.len() % 2 == 1 {
                let results: Vec<&Expr> = args
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 2 == 1 || *i == args.len() - 1)
                    .map(|(_, a)| *a)
                    .collect();
                return branches(&results, scope);
            }
            // `arrayJoin((SELECT groupArray(x) …))`: an element of the subquery's array, which is not Nullable as
            // the subquery is. Not known here.
            if name == "arrayJoin" && matches!(args.as_slice(), [Expr::Subquery(_)]) {
                return None;
            }
            let wrappers = each(&args)?;
            // `coalesce` is `Nullable` when every argument is, `ifNull(a, b)` when `b` is (and `a`); both keep
            // `LowCardinality` as other functions do (`coalesce(lc, 'x')` is one, `coalesce(lc, lc)` is a String).
            if name.eq_ignore_ascii_case("coalesce") || (name == "ifNull" && args.len() == 2) {
                let low_cardinality = scalar(&args, wrappers.clone()).is_some_and(|w| w.low_cardinality);
                return Some(Wrappers {
                    nullable: wrappers.iter().all(|w| w.nullable),
                    low_cardinality,
                    boolean: false,
                    comparison: false,
                    nothing: wrappers.iter().all(|w| w.nothing),
                });
            }
            // Aggregates are `Nullable` when a value they take is. An `-If` aggregate's condition (its last argument)
            // is not one (`sumIf(u8, ni > 0)` is a UInt64), and `uniqIf` is never `Nullable`.
            let listed = |list: &[&str], n: &str| list.iter().any(|l| l.eq_ignore_ascii_case(n));
            let conditional = name
                .strip_suffix("If")
                .filter(|base| args.len() >= 2 && (listed(AGGREGATES, base) || listed(NEVER_NULLABLE, base)));
            let (base, values) = match conditional {
                Some(base) => (base, &wrappers[..wrappers.len() - 1]),
                None => (name.as_str(), &wrappers[..]),
            };
            if conditional.is_some() && listed(NEVER_NULLABLE, base) {
                return Some(Wrappers::PLAIN);
            }
            if listed(AGGREGATES, base) {
                // Over a `LowCardinality` argument: not known here.
                if values.iter().any(|w| w.low_cardinality) {
                    return None;
                }
                // `min`/`max`/`any` of a `Bool` is a `Bool`.
                let picks = listed(
                    &["min", "max", "any", "anyLast", "minIf", "maxIf", "anyIf", "anyLastIf", "argMin", "argMax"],
                    base,
                );
                return Some(Wrappers {
                    nullable: values.iter().any(|w| w.nullable),
                    low_cardinality: false,
                    boolean: picks && values.first().is_some_and(|w| w.boolean),
                    comparison: false,
                    nothing: false,
                });
            }
            // `arraySlice(arr, NULL)` is the array (a NULL bound is no bound), never `Nothing`.
            if name == "arraySlice" {
                return Some(Wrappers::PLAIN);
            }
            // Rounding a `Bool` keeps it one (`round(true)`), and a comparison a UInt8.
            if matches!(name.as_str(), "round" | "roundBankers" | "floor" | "ceil" | "ceiling" | "trunc" | "truncate")
                && let Some(first) = wrappers.first()
                && (first.boolean || first.comparison)
            {
                let (boolean, comparison) = (first.boolean, first.comparison);
                return scalar(&args, wrappers).map(|w| Wrappers { boolean, comparison, ..w });
            }
            // `xor` with a `Bool` argument is a `Bool`.
            if name == "xor" {
                let boolean = wrappers.iter().any(|w| w.boolean);
                return scalar(&args, wrappers).map(|w| Wrappers { boolean, ..w });
            }
            let comparison = name == "in" || name == "notIn";
            scalar(&args, wrappers).map(|w| Wrappers { comparison, ..w })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrappers(sql: &str) -> Vec<Option<Wrappers>> {
        let query = crate::engine::compat::parse(sql).unwrap();
        let ty = |c: &str| match c {
            "ns" => ChType::parse("Nullable(String)").ok(),
            "lc" => ChType::parse("LowCardinality(String)").ok(),
            "b" => ChType::parse("Bool").ok(),
            "s" => ChType::parse("String").ok(),
            _ => None,
        };
        let columns = |table: &str| {
            (table == "t").then(|| ["s", "ns", "lc"].iter().map(|c| (c.to_string(), ty(c).unwrap())).collect())
        };
        of_query(&query, &ty, &columns)
    }

    #[test]
    fn subqueries_ctes_unions_and_stars_carry_their_columns_wrappers() {
        assert_eq!(wrappers("SELECT v FROM (SELECT NULL AS v UNION ALL SELECT 1)"), [N]);
        assert_eq!(wrappers("SELECT v, w FROM (SELECT 1 AS v, s AS w UNION ALL SELECT 2, ns)"), [P, N]);
        assert_eq!(wrappers("WITH a AS (SELECT ns AS x FROM t) SELECT upper(y.x) FROM a AS y"), [N]);
        assert_eq!(wrappers("SELECT upper(x) FROM (SELECT s AS x FROM t) AS q"), [P]);
        assert_eq!(wrappers("SELECT * FROM t"), [P, N, L]);
        assert_eq!(wrappers("SELECT * EXCEPT (lc) REPLACE (upper(ns) AS s) FROM t"), [N, N]);
        assert_eq!(wrappers("SELECT * FROM t AS a JOIN t AS b ON a.s = b.s"), []);
        // An expression the subquery does not name: its columns are not known.
        assert_eq!(wrappers("SELECT * FROM (SELECT upper(ns) FROM t)"), []);
    }

    #[test]
    fn aliases_of_the_select_list_carry_their_expressions_wrappers() {
        // `x` is the alias (Nullable), not a column; in its own expression, `ns` is the column.
        assert_eq!(wrappers("SELECT toString(ns) AS x, upper(x), length(x) AS l, l + 1 FROM t"), [N, N, N, N]);
        assert_eq!(wrappers("SELECT upper(s) AS ns, ns FROM t"), [P, P]);
        assert_eq!(wrappers("SELECT upper(ns) AS ns FROM t"), [N]);
    }

    #[test]
    fn conditionals_take_their_results_wrappers() {
        assert_eq!(
            wrappers("SELECT if(isNull(ns), 1, 2), if(s = 'a', ns, s), multiIf(ns = 'a', 1, ns = 'b', 2, 3)"),
            [P, N, P]
        );
        assert_eq!(
            wrappers(
                "SELECT CASE WHEN s = 'a' THEN s ELSE NULL END, CASE WHEN ns = 'a' THEN 1 END, CASE WHEN ns = 'a' THEN 1 ELSE 2 END"
            ),
            [N, N, P]
        );
        assert_eq!(wrappers("SELECT arrayJoin((SELECT [1, 2])), (SELECT 1)"), [None, N]);
    }

    #[test]
    fn in_takes_its_left_sides_wrappers() {
        let compared = |w: Option<Wrappers>| w.map(|w| Wrappers { comparison: true, ..w });
        assert_eq!(
            wrappers("SELECT lc IN ('a', 'b'), ns IN (SELECT s FROM t), s IN ('a'), lc IN ['a'], ns NOT IN [1, NULL]"),
            [compared(L), compared(N), compared(P), compared(L), compared(N)]
        );
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
            wrappers("SELECT upper(lc), length(lc), lc = 'a', concat(lc, s), s, min(lc), lc = lc"),
            [
                L,
                L,
                L.map(|w| Wrappers { comparison: true, ..w }),
                P,
                P,
                None,
                P.map(|w| Wrappers { comparison: true, ..w })
            ]
        );
        assert_eq!(
            wrappers("SELECT toInt64OrNull(s), (SELECT 1), CAST(s AS Nullable(String)), unknown_col"),
            [N, N, N, None]
        );
        assert!(wrappers("SELECT * FROM unknown_table").is_empty());
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
