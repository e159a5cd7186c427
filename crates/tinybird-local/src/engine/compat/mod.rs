//! The ClickHouse compatibility layer: ClickHouse SQL in, a DataFusion-ready statement out.
//!
//! Queries are parsed in the ClickHouse dialect, then rewritten so DataFusion computes what ClickHouse would:
//! ClickHouse function names and semantics (`count()` is UInt64, `/` is float division, `round` is banker's, …),
//! `WITH expr AS name`, `LIMIT n BY`. Every function must be on one of the lists in `calls` (one function per
//! family); anything else, and constructs such as `FINAL`, `PREWHERE` or `SETTINGS`, fail with an error naming them
//! rather than running with different semantics.
//!
//! `parse` reads the SQL and guards it, `tables` knows what it reads, `rewrite` walks it, and `calls` translates
//! each function call.

use super::EngineError;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Cte, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, LimitClause,
    ObjectNamePart, OrderByKind, Query, SelectItem, SetExpr, Statement, TableAlias, TableFactor, Value as SqlValue,
    ValueWithSpan, Visit, VisitMut, Visitor, VisitorMut, With, helpers::attached_token::AttachedToken,
};
use datafusion::sql::sqlparser::dialect::{ClickHouseDialect, GenericDialect};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

mod calls;
mod dialect;
mod grouping;
mod lift;
mod parse;
mod rewrite;
mod tables;
#[cfg(test)]
mod tests;

pub use calls::CASE_INSENSITIVE_FUNCTIONS;
use calls::*;
pub use dialect::ClickHouseSql;
pub(crate) use dialect::call;
pub use parse::*;
use rewrite::*;
pub use tables::*;

/// A translated query.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The statement DataFusion plans.
    pub statement: Statement,
    /// `SELECT count(*)` over the query without its outermost LIMIT, when it has one that is not a literal.
    pub count_statement: Option<Statement>,
    /// The `Nullable`/`LowCardinality` wrappers ClickHouse gives each selected column (see the `hints` module).
    pub wrappers: Vec<Option<crate::engine::hints::Wrappers>>,
    /// The outermost `LIMIT n [OFFSET m]` when both are literals: `(offset, limit)`. It is removed from `statement`
    /// and applied to the result, so one execution gives both the rows and `rows_before_limit_at_least`.
    pub literal_limit: Option<(usize, usize)>,
    /// Tables the query reads (CTE names excluded).
    pub tables: Vec<String>,
    /// The query whose one row is the `WITH TOTALS` row, when the query asked for one (see the `grouping` module).
    pub totals_statement: Option<Statement>,
    /// The outermost `ORDER BY`'s `WITH FILL`, taken off the statement: the engine fills the rows after it runs.
    pub fill: Option<crate::engine::fill::Fill>,
}

impl Translated {
    /// A statement to run as it is: no count, hints, limit, totals or fill around it.
    pub fn of(statement: Statement) -> Translated {
        Translated {
            statement,
            count_statement: None,
            wrappers: vec![],
            literal_limit: None,
            tables: vec![],
            totals_statement: None,
            fill: None,
        }
    }
}

/// Quotes an identifier for ClickHouse SQL.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// Translates one ClickHouse query for DataFusion.
pub fn translate(sql: &str) -> Result<Translated, EngineError> {
    translate_with(sql, &NoTables)
}

/// [`translate`], told about the tables.
pub fn translate_with(sql: &str, tables: &dyn Tables) -> Result<Translated, EngineError> {
    translate_query(parse(sql)?, tables)
}

/// Translates a parsed query (from [`parse`]) for DataFusion, without printing or parsing it again as a whole.
pub fn translate_query(mut query: Query, catalog: &dyn Tables) -> Result<Translated, EngineError> {
    let fill = crate::engine::fill::take(&mut query)?;
    let totals = take_totals(&mut query)?;
    let mut translated = translate_part(query, catalog, false)?;
    if let Some(totals) = totals {
        translated.totals_statement = Some(translate_part(totals, catalog, true)?.statement);
    }
    translated.fill = fill;
    Ok(translated)
}

/// The outermost `GROUP BY … WITH TOTALS`, taken off the query: the query to run for its totals row (the same
/// query, still marked `WITH TOTALS`, which [`translate_part`] turns into the totals query), or None without it.
/// What ClickHouse's totals do differently is refused: with `HAVING` they cover only the groups that pass it; with
/// `ROLLUP`/`CUBE`, `GROUP BY ALL` or a key given by position they are not written here.
fn take_totals(query: &mut Query) -> Result<Option<Query>, EngineError> {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, GroupByWithModifier};
    let refuse = |what: &str| Err(EngineError::Unsupported(format!("WITH TOTALS {what}")));
    let SetExpr::Select(select) = query.body.as_mut() else { return Ok(None) };
    let modifiers = match &mut select.group_by {
        GroupByExpr::All(modifiers) | GroupByExpr::Expressions(_, modifiers) => modifiers,
    };
    if !modifiers.contains(&GroupByWithModifier::Totals) {
        return Ok(None);
    }
    if modifiers.len() > 1 {
        return refuse("together with ROLLUP or CUBE");
    }
    modifiers.clear();
    let totals = query.clone();
    let SetExpr::Select(select) = query.body.as_ref() else { return Ok(None) };
    match &select.group_by {
        GroupByExpr::All(_) => return refuse("with GROUP BY ALL (name the keys)"),
        GroupByExpr::Expressions(keys, _) if keys.is_empty() => return refuse("without GROUP BY keys"),
        GroupByExpr::Expressions(keys, _) if keys.iter().any(|k| matches!(k, Expr::Value(_))) => {
            return refuse("with a GROUP BY key given by position");
        }
        GroupByExpr::Expressions(..) => {}
    }
    if select.having.is_some() {
        return refuse("together with HAVING (the totals then cover only the groups that pass it)");
    }
    Ok(Some(totals))
}

/// Translates a query (`totals`: its totals query; see the `grouping` module).
fn translate_part(mut query: Query, catalog: &dyn Tables, totals: bool) -> Result<Translated, EngineError> {
    REWRITTEN.with(|c| c.set(0));
    if query.format_clause.is_some() {
        return Err(EngineError::Unsupported("FORMAT inside a subquery".into()));
    }
    let any_joins = take_any_strictness(&mut query);
    take_settings(&mut query)?;
    refuse_mixed_set_operations(&query)?;
    // Before the tables are listed: a generator reads none, an ARRAY JOIN's relation is a column.
    generators_as_ranges(&mut query)?;
    array_joins_as_subqueries(&mut query)?;
    let tables = referenced_tables(&query);
    filters_as_if_combinators(&mut query);
    extracts_as_functions(&mut query);
    prewhere_as_where(&mut query);
    qualify_using_keys_in_where(&mut query);
    let wrappers =
        crate::engine::hints::of_query(&query, &|column| catalog.column_type(column), &|table| catalog.columns(table));
    refuse_shadowed_tables(&query)?;
    refuse_wildcards_over_using(&query)?;
    in_ctes_as_subqueries(&mut query, catalog)?;
    // Columns keep the names ClickHouse gives them, as written (`plus(c, 1)` where `c` is an alias), whatever the
    // rewrites below do to their expressions.
    crate::engine::names::name_columns(&mut query, &|table| {
        catalog.columns(table).map(|columns| columns.into_iter().map(|(name, _)| name).collect())
    })?;
    substitute_aliases(&mut query)?;
    distinct_output_names(&mut query);
    lift::lift_arithmetic_out_of_aggregates(&mut query);
    drop_nulls_from_in_lists(&mut query)?;
    drop_nulls_from_in_subqueries(&mut query)?;
    comparisons_as_numbers_in_text(&mut query);
    let grouping = grouping::Shape::take(&mut query, catalog, totals)?;
    mark_nullable_aggregate_arguments(&mut query, catalog);
    let nullable = |column: &str| catalog.nullable_column(column);
    let text_stored = |column: &str| catalog.text_stored_column(column);
    let mut rewriter = Rewriter { error: None, nullable: &nullable, text_stored: &text_stored };
    let _ = VisitMut::visit(&mut query, &mut rewriter);
    if let Some(e) = rewriter.error {
        return Err(e);
    }
    // After the rewrite: the check it adds is DataFusion's already, and the keys are rewritten as the ON is.
    if any_joins {
        any_joins_checked(&mut query)?;
    }
    ordered_aggregates_from_subqueries(&mut query)?;
    if let Some(shape) = grouping {
        shape.restore(&mut query, catalog)?;
    }
    let literal = |e: &Expr| match e {
        Expr::Value(ValueWithSpan { value: SqlValue::Number(n, _), .. }) => n.parse::<usize>().ok(),
        _ => None,
    };
    let literal_limit = match &query.limit_clause {
        Some(LimitClause::LimitOffset { limit: Some(limit), offset, limit_by }) if limit_by.is_empty() => {
            match (literal(limit), offset.as_ref().map(|o| literal(&o.value))) {
                (Some(l), None) => Some((0, l)),
                (Some(l), Some(Some(o))) => Some((o, l)),
                _ => None,
            }
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => match (literal(offset), literal(limit)) {
            (Some(o), Some(l)) => Some((o, l)),
            _ => None,
        },
        _ => None,
    };
    if literal_limit.is_some() {
        query.limit_clause = None;
    }
    let count_statement = match &query.limit_clause {
        Some(LimitClause::LimitOffset { limit: Some(_), .. }) | Some(LimitClause::OffsetCommaLimit { .. }) => {
            let mut unlimited = query.clone();
            unlimited.limit_clause = None;
            unlimited.order_by = None;
            let text = format!("SELECT count(*) FROM ({unlimited}) AS __tb_rows_before_limit");
            Some(Statement::Query(Box::new(parse_generic(&text)?)))
        }
        _ => None,
    };
    Ok(Translated {
        statement: Statement::Query(Box::new(query)),
        count_statement,
        wrappers,
        literal_limit,
        tables,
        totals_statement: None,
        fill: None,
    })
}

/// Whether an expression holds a subquery (scalar, `EXISTS` or `IN`).
fn holds_subquery(e: &Expr) -> bool {
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |e| {
        found |= matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. });
        ControlFlow::<()>::Continue(())
    });
    found
}

/// The side a `JOIN … USING` takes its key from in ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UsingKey {
    /// An inner or left join: the left relation's.
    Left,
    /// A right join: the joined relation's.
    Right,
    /// A full join: either.
    Full,
}

/// A join's `USING` columns and the side its key comes from, or None for a join of another constraint.
pub(super) fn using_join(
    op: &datafusion::sql::sqlparser::ast::JoinOperator,
) -> Option<(&[datafusion::sql::sqlparser::ast::ObjectName], UsingKey)> {
    use datafusion::sql::sqlparser::ast::{JoinConstraint::Using, JoinOperator};
    match op {
        JoinOperator::Join(Using(c))
        | JoinOperator::Inner(Using(c))
        | JoinOperator::Left(Using(c))
        | JoinOperator::LeftOuter(Using(c)) => Some((c, UsingKey::Left)),
        JoinOperator::Right(Using(c)) | JoinOperator::RightOuter(Using(c)) => Some((c, UsingKey::Right)),
        JoinOperator::FullOuter(Using(c)) => Some((c, UsingKey::Full)),
        _ => None,
    }
}

/// A `JOIN … USING (k)` key named without its table in the WHERE clause (`… USING (id) WHERE id > 5`) is ClickHouse's
/// one key column; DataFusion's planner finds two fields named `k` there and calls the name ambiguous. The name is
/// qualified with the relation whose value the key takes: the left one, or the joined one for a RIGHT JOIN. (Only
/// a SELECT with one join; names inside subqueries of the WHERE are theirs.)
fn qualify_using_keys_in_where(query: &mut Query) {
    use datafusion::sql::sqlparser::ast::{Select, TableFactor, VisitorMut};
    fn relation_name(t: &TableFactor) -> Option<String> {
        match t {
            TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
                Some(a.name.value.clone())
            }
            TableFactor::Table { name, alias: None, .. } => name.0.last()?.as_ident().map(|i| i.value.clone()),
            _ => None,
        }
    }
    struct Selects;
    impl VisitorMut for Selects {
        type Break = ();
        fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
            let Some(selection) = select.selection.as_mut() else { return ControlFlow::Continue(()) };
            let [from] = select.from.as_slice() else { return ControlFlow::Continue(()) };
            let [join] = from.joins.as_slice() else { return ControlFlow::Continue(()) };
            let (columns, right) = match using_join(&join.join_operator) {
                Some((c, UsingKey::Left)) => (c, false),
                Some((c, UsingKey::Right)) => (c, true),
                _ => return ControlFlow::Continue(()),
            };
            let Some(relation) = relation_name(if right { &join.relation } else { &from.relation }) else {
                return ControlFlow::Continue(());
            };
            let keys: Vec<String> =
                columns.iter().filter_map(|c| c.0.last()?.as_ident().map(|i| i.value.clone())).collect();
            rewrite::replace_outer_identifiers(selection, &mut |id| {
                keys.contains(&id.value)
                    .then(|| Expr::CompoundIdentifier(vec![Ident::new(relation.clone()), id.clone()]))
            });
            ControlFlow::Continue(())
        }
    }
    let _ = query.visit(&mut Selects);
}

/// `SELECT *` over a `JOIN … USING`: ClickHouse keeps the key where the left table has it, DataFusion where the right
/// one does, so the columns would come out in another order. Refused (naming the columns answers).
fn refuse_wildcards_over_using(query: &Query) -> Result<(), EngineError> {
    let mut refused = false;
    struct Find<'a>(&'a mut bool);
    impl Visitor for Find<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            let SetExpr::Select(select) = q.body.as_ref() else { return ControlFlow::Continue(()) };
            let wildcard = select.projection.iter().any(|i| matches!(i, SelectItem::Wildcard(_)));
            let using = select.from.iter().flat_map(|t| &t.joins).any(|j| using_join(&j.join_operator).is_some());
            if wildcard && using {
                *self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let _ = query.visit(&mut Find(&mut refused));
    match refused {
        true => Err(EngineError::Unsupported(
            "`SELECT *` over a JOIN … USING (ClickHouse puts the key where the left table has it; list the columns)"
                .into(),
        )),
        false => Ok(()),
    }
}

/// ClickHouse leaves a NULL out of an `IN` list (`transform_null_in` is off): `ni IN (1, NULL)` is 0 for 3, where
/// SQL's three-valued `IN` gives NULL. A list of NULLs only is refused.
fn drop_nulls_from_in_lists(query: &mut Query) -> Result<(), EngineError> {
    /// Whether an expression names a column (outside a subquery).
    fn reads_columns(e: &Expr) -> bool {
        let mut found = false;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |x| {
            match x {
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                    found = true;
                    return ControlFlow::Break(());
                }
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        found
    }
    let mut refused = false;
    let mut unconstant = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(query, |e| {
        if let Expr::InList { list, .. } = e
            && list.iter().any(reads_columns)
        {
            unconstant = true;
            return ControlFlow::Break(());
        }
        if let Expr::InList { list, .. } = e {
            // A tuple with a NULL element matches nothing either (`(id, ni) IN ((5, NULL))` is 0 for `ni` NULL).
            fn null(x: &Expr) -> bool {
                match x {
                    Expr::Value(ValueWithSpan { value: SqlValue::Null, .. }) => true,
                    Expr::Nested(inner) => null(inner),
                    Expr::Tuple(items) => items.iter().any(null),
                    _ => false,
                }
            }
            if list.iter().all(null) {
                refused = true;
            } else {
                list.retain(|x| !null(x));
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if unconstant {
        return Err(EngineError::Unsupported(
            "`IN` a list that reads columns (ClickHouse's answer is a Nullable(UInt8) of its own; compare with `=` \
             and `OR`)"
                .into(),
        ));
    }
    match refused {
        true => Err(EngineError::Unsupported("`IN` a list of NULLs only".into())),
        false => Ok(()),
    }
}

/// A comparison is a `UInt8` in ClickHouse, so as text it is `1`/`0` (`toString(id > 5)`, `concat(s, id > 5)`,
/// `CAST(x = 1 AS String)`), where DataFusion's boolean would print `true`/`false` (which a `Bool` column does print).
/// A comparison, or `AND`/`OR`/`NOT` of comparisons only, given to those as an argument is made a number first.
fn comparisons_as_numbers_in_text(query: &mut Query) {
    fn comparison(e: &Expr) -> bool {
        match e {
            Expr::Nested(x) => comparison(x),
            // `and`/`or`/`xor` are a `Bool` when an operand is one, else a `UInt8`: a number literal is not one.
            Expr::BinaryOp { left, op: BinaryOperator::And | BinaryOperator::Or | BinaryOperator::Xor, right } => {
                comparison_or_number(left) && comparison_or_number(right)
            }
            Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Not, expr } => comparison(expr),
            // A conditional whose results are all comparisons is a `UInt8`.
            Expr::Case { conditions, else_result, .. } => {
                conditions.iter().all(|w| comparison(&w.result)) && else_result.as_deref().is_none_or(comparison)
            }
            Expr::BinaryOp { op, .. } => comparison_operator(op),
            Expr::InList { .. }
            | Expr::InSubquery { .. }
            | Expr::Like { .. }
            | Expr::ILike { .. }
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::Between { .. } => true,
            // Functions whose result is a UInt8 0/1 that DataFusion computes as a boolean.
            Expr::Function(f) => {
                const TESTS: &[&str] = &[
                    "isNull",
                    "isNotNull",
                    "empty",
                    "notEmpty",
                    "has",
                    "hasAny",
                    "hasAll",
                    "like",
                    "notLike",
                    "ilike",
                    "notILike",
                    "startsWith",
                    "endsWith",
                    "match",
                    "equals",
                    "notEquals",
                    "less",
                    "greater",
                    "lessOrEquals",
                    "greaterOrEquals",
                    "in",
                    "notIn",
                    "isNaN",
                    "isFinite",
                    "isInfinite",
                    "JSONHas",
                    "isValidJSON",
                ];
                let name = f.name.to_string();
                let args: Vec<&Expr> = match &f.args {
                    FunctionArguments::List(list) => list
                        .args
                        .iter()
                        .filter_map(|a| match a {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
                            _ => None,
                        })
                        .collect(),
                    _ => vec![],
                };
                match name.as_str() {
                    "and" | "or" | "xor" => !args.is_empty() && args.iter().all(|a| comparison_or_number(a)),
                    "not" => args.len() == 1 && comparison(args[0]),
                    // Of comparisons only, a comparison's UInt8.
                    "coalesce" | "ifNull" | "assumeNotNull" | "toNullable" => {
                        !args.is_empty() && args.iter().all(|a| comparison(a))
                    }
                    // `if(c, a, b)`, `multiIf(c1, a, c2, b, e)`: the results.
                    "if" => args.len() == 3 && comparison(args[1]) && comparison(args[2]),
                    "multiIf" => {
                        args.len() % 2 == 1
                            && args.iter().enumerate().all(|(i, a)| (i % 2 == 0 && i + 1 < args.len()) || comparison(a))
                    }
                    // Aggregates that return one of their values keep its type.
                    "max" | "min" | "any" | "anyLast" | "argMax" | "argMin" | "anyHeavy" => {
                        !args.is_empty() && comparison(args[0])
                    }
                    _ => TESTS.iter().any(|t| name.eq_ignore_ascii_case(t)),
                }
            }
            _ => false,
        }
    }
    fn comparison_or_number(e: &Expr) -> bool {
        match e {
            Expr::Nested(x) => comparison_or_number(x),
            Expr::Value(ValueWithSpan { value: SqlValue::Number(..), .. }) => true,
            other => comparison(other),
        }
    }
    let number = |e: &mut Expr| {
        if comparison(e) {
            *e = call("toUInt8", vec![e.clone()]);
        }
    };
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(query, |e| {
        match e {
            Expr::Function(f) if ["toString", "concat"].iter().any(|n| f.name.to_string().eq_ignore_ascii_case(n)) => {
                if let FunctionArguments::List(list) = &mut f.args {
                    for arg in &mut list.args {
                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = arg {
                            number(x);
                        }
                    }
                }
            }
            Expr::Cast { expr, data_type, .. } if data_type.to_string().eq_ignore_ascii_case("String") => number(expr),
            // `'x' || isNull(ni)` is `concat`.
            Expr::BinaryOp { left, op: BinaryOperator::StringConcat, right } => {
                number(left);
                number(right);
            }
            // `CAST(x AS String)` as this engine reads it: `CAST(x, 'String')`.
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("CAST") => {
                if let FunctionArguments::List(list) = &mut f.args
                    && let [
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)),
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(t)),
                    ] = list.args.as_mut_slice()
                    && matches!(t, Expr::Value(ValueWithSpan { value: SqlValue::SingleQuotedString(t), .. }) if t.trim() == "String")
                {
                    number(x);
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// As for lists, ClickHouse leaves NULLs out of the set an `IN (SELECT …)` builds: `x NOT IN (SELECT …)` with a NULL
/// among the subquery's values is true for the other values of `x`, where SQL's is NULL for every row (a filter keeps
/// nothing). A one-column subquery becomes `SELECT v FROM (subquery) AS s(v) WHERE v IS NOT NULL` (the template is
/// this engine's text; the subquery stays the tree that was checked).
fn drop_nulls_from_in_subqueries(query: &mut Query) -> Result<(), EngineError> {
    fn one_column(q: &Query) -> bool {
        let mut body = q.body.as_ref();
        while let SetExpr::SetOperation { left, .. } = body {
            body = left;
        }
        match body {
            SetExpr::Select(s) => {
                matches!(s.projection.as_slice(), [SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }])
            }
            SetExpr::Query(q) => one_column(q),
            _ => false,
        }
    }
    let template =
        parse("SELECT __tb_in_value FROM (SELECT 1) AS __tb_in_set(__tb_in_value) WHERE __tb_in_value IS NOT NULL")?;
    // `x NOT IN (SELECT …)` of a NULL `x` is NULL in ClickHouse (its row filtered out), where SQL's is true when the
    // set is empty: `x IS NOT NULL AND x NOT IN (…)`.
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(query, |e| {
        if let Expr::InSubquery { expr, negated: true, .. } = e
            && !matches!(expr.as_ref(), Expr::Value(_))
        {
            let test = Expr::IsNotNull(expr.clone());
            let inner = std::mem::replace(e, Expr::value(SqlValue::Null));
            *e = Expr::Nested(Box::new(Expr::BinaryOp {
                left: Box::new(test),
                op: BinaryOperator::And,
                right: Box::new(inner),
            }));
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(query, |e| {
        if let Expr::InSubquery { subquery, .. } = e
            && one_column(subquery)
        {
            let mut wrapped = template.clone();
            if let SetExpr::Select(select) = wrapped.body.as_mut()
                && let Some(TableFactor::Derived { subquery: inner, .. }) =
                    select.from.first_mut().map(|t| &mut t.relation)
            {
                *inner = subquery.clone();
                **subquery = wrapped;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(())
}

/// Aggregates that give their type's default over no values unless their argument is `Nullable`: an argument that is
/// an expression (`nullIf(s, 'b')`, `if(c, x, NULL)`, `upper(ns)`; not a bare column, which the catalog answers, nor
/// one over a scalar subquery) and `Nullable` as the hints read it is wrapped in `__tb_nullable(…)`, which the rewrite
/// reads so (and drops), so `max(if(c, x, NULL))` over no matching rows is NULL, as in ClickHouse. In every SELECT of
/// the query (subqueries, CTEs and each branch of a UNION, read over their own FROM), in its select list, `HAVING` and
/// `ORDER BY`.
fn mark_nullable_aggregate_arguments(query: &mut Query, catalog: &dyn Tables) {
    struct Every<'a>(&'a dyn Tables);
    impl VisitorMut for Every<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            mark_in_query(q, self.0);
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(query, &mut Every(catalog));
}

/// [`mark_nullable_aggregate_arguments`] for the SELECTs of one query's body (not its subqueries).
fn mark_in_query(query: &mut Query, catalog: &dyn Tables) {
    use datafusion::sql::sqlparser::ast::Select;
    fn leaves<'q>(body: &'q mut SetExpr, into: &mut Vec<&'q mut Select>) {
        match body {
            SetExpr::Select(s) => into.push(s),
            SetExpr::SetOperation { left, right, .. } => {
                leaves(left, into);
                leaves(right, into);
            }
            _ => {}
        }
    }
    let base = query.clone();
    let single = matches!(query.body.as_ref(), SetExpr::Select(_));
    let Query { body, order_by, .. } = query;
    let mut selects = Vec::new();
    leaves(body, &mut selects);
    let mut order_by = if single { order_by.as_mut() } else { None };
    for select in selects {
        mark_in_select(select, order_by.take(), &base, catalog);
    }
}

fn mark_in_select(
    select: &mut datafusion::sql::sqlparser::ast::Select,
    order_by: Option<&mut datafusion::sql::sqlparser::ast::OrderBy>,
    base: &Query,
    catalog: &dyn Tables,
) {
    const FAMILY: &[&str] = &[
        "min", "max", "avg", "any", "anyLast", "argMin", "argMax", "minIf", "maxIf", "avgIf", "sum", "sumIf",
        "sumMerge", "avgMerge",
    ];
    fn candidate(e: &Expr) -> Option<&Expr> {
        let Expr::Function(f) = e else { return None };
        if f.over.is_some() || !FAMILY.iter().any(|n| f.name.to_string().eq_ignore_ascii_case(n)) {
            return None;
        }
        let FunctionArguments::List(list) = &f.args else { return None };
        match list.args.first() {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))) => Some(arg),
            _ => None,
        }
    }
    struct Collect(Vec<Expr>, usize);
    impl Visitor for Collect {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.1 += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.1 -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.1 == 0
                && let Some(arg) = candidate(e)
            {
                self.0.push(arg.clone());
            }
            ControlFlow::Continue(())
        }
    }
    let order_exprs = |o: &datafusion::sql::sqlparser::ast::OrderBy| -> Vec<Expr> {
        match &o.kind {
            OrderByKind::Expressions(items) => items.iter().map(|i| i.expr.clone()).collect(),
            _ => vec![],
        }
    };
    let mut found = Collect(vec![], 0);
    for item in &select.projection {
        let _ = item.visit(&mut found);
    }
    if let Some(having) = &select.having {
        let _ = having.visit(&mut found);
    }
    if let Some(o) = order_by.as_deref() {
        for e in order_exprs(o) {
            let _ = e.visit(&mut found);
        }
    }
    if found.0.is_empty() {
        return;
    }
    // Each argument's wrappers, read as a column of a query over the same rows.
    let mut rows = base.clone();
    rows.order_by = None;
    rows.limit_clause = None;
    let mut rows_select = select.clone();
    rows_select.projection = found.0.iter().cloned().map(SelectItem::UnnamedExpr).collect();
    rows_select.group_by = datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(vec![], vec![]);
    rows_select.having = None;
    *rows.body = SetExpr::Select(Box::new(rows_select));
    let wrappers =
        crate::engine::hints::of_query(&rows, &|column| catalog.column_type(column), &|table| catalog.columns(table));
    // An expression the hints call Nullable is marked so (not over a scalar subquery: ClickHouse moves a constant out
    // of `max(c + x)`, whose answer then is not NULL). A bare column is looked up by name in the catalog; where the
    // hints, which follow the query's scopes, say otherwise (a subquery's `s AS ns` over a table that has a Nullable
    // `ns`), the hints' answer is marked.
    let marks: Vec<Option<&'static str>> = (0..found.0.len())
        .map(|i| {
            let hinted = wrappers.get(i).copied().flatten().map(|w| w.nullable);
            let column = match &found.0[i] {
                Expr::Identifier(ident) => Some(ident.value.as_str()),
                Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.as_str()),
                _ => None,
            };
            match (column, hinted) {
                (Some(c), Some(h)) if h != catalog.nullable_column(c) => {
                    Some(if h { "__tb_nullable" } else { "__tb_not_nullable" })
                }
                (None, Some(true)) if !holds_subquery(&found.0[i]) => Some("__tb_nullable"),
                _ => None,
            }
        })
        .collect();
    if marks.iter().all(Option::is_none) {
        return;
    }
    struct Mark<'a>(&'a [Option<&'static str>], usize, usize);
    impl VisitorMut for Mark<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.2 += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.2 -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if self.2 == 0 && candidate(e).is_some() {
                let mark = self.0.get(self.1).copied().flatten();
                self.1 += 1;
                if let Some(marker) = mark
                    && let Expr::Function(f) = e
                    && let FunctionArguments::List(list) = &mut f.args
                    && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))) = list.args.first_mut()
                {
                    *arg = call(marker, vec![arg.clone()]);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut mark = Mark(&marks, 0, 0);
    for item in &mut select.projection {
        let _ = VisitMut::visit(item, &mut mark);
    }
    if let Some(having) = &mut select.having {
        let _ = VisitMut::visit(having, &mut mark);
    }
    if let Some(o) = order_by
        && let OrderByKind::Expressions(items) = &mut o.kind
    {
        for item in items {
            let _ = VisitMut::visit(&mut item.expr, &mut mark);
        }
    }
}

/// Aggregates whose answer follows the order rows arrive in (`groupArray`, `any`, `anyLast`, as DataFusion's
/// `array_agg`, `first_value`, `last_value` once rewritten) over a subquery with its own `ORDER BY`: ClickHouse feeds
/// them the rows in that order; DataFusion drops the subquery's sort. So the subquery also selects its sort keys
/// (`__tb_order_0`, …) and the aggregates take them as their own `ORDER BY`. Refused where that cannot be written:
/// a `*` over the subquery, a subquery that is a UNION or has DISTINCT, or a join.
fn ordered_aggregates_from_subqueries(query: &mut Query) -> Result<(), EngineError> {
    use datafusion::sql::sqlparser::ast::{FunctionArgumentClause, OrderByExpr};
    fn sensitive(f: &datafusion::sql::sqlparser::ast::Function) -> bool {
        let name = f.name.to_string();
        let distinct = matches!(&f.args, FunctionArguments::List(l) if l.duplicate_treatment.is_some());
        f.over.is_none() && !distinct && matches!(name.as_str(), "array_agg" | "first_value" | "last_value")
    }
    // A subquery's aggregates read its own FROM: not looked into (depth > 0).
    struct Finder(bool, usize);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.1 += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.1 -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.1 == 0
                && let Expr::Function(f) = e
                && sensitive(f)
            {
                self.0 = true;
            }
            ControlFlow::Continue(())
        }
    }
    struct Orderer(Vec<OrderByExpr>, usize);
    impl VisitorMut for Orderer {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.1 += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.1 -= 1;
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if self.1 == 0
                && let Expr::Function(f) = e
                && sensitive(f)
                && let FunctionArguments::List(list) = &mut f.args
            {
                list.clauses.retain(|c| !matches!(c, FunctionArgumentClause::OrderBy(_)));
                list.clauses.push(FunctionArgumentClause::OrderBy(self.0.clone()));
            }
            ControlFlow::Continue(())
        }
    }
    struct Queries(Option<EngineError>);
    impl VisitorMut for Queries {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let SetExpr::Select(select) = query.body.as_mut() else { return ControlFlow::Continue(()) };
            let ordered = |r: &TableFactor| {
                matches!(r, TableFactor::Derived { subquery, .. } if matches!(
                    subquery.order_by.as_ref().map(|o| &o.kind),
                    Some(OrderByKind::Expressions(items)) if !items.is_empty()
                ))
            };
            let any_ordered =
                select.from.iter().any(|f| ordered(&f.relation) || f.joins.iter().any(|j| ordered(&j.relation)));
            if !any_ordered {
                return ControlFlow::Continue(());
            }
            let mut finder = Finder(false, 0);
            for item in &select.projection {
                let _ = Visit::visit(item, &mut finder);
            }
            if let Some(having) = &select.having {
                let _ = Visit::visit(having, &mut finder);
            }
            if !finder.0 {
                return ControlFlow::Continue(());
            }
            let refuse = |why: &str| {
                Some(EngineError::Unsupported(format!(
                    "groupArray, any or anyLast over a subquery's ORDER BY {why} (ClickHouse aggregates the rows in \
                     that order)"
                )))
            };
            if select.from.len() != 1 || !select.from[0].joins.is_empty() {
                self.0 = refuse("in a join");
                return ControlFlow::Break(());
            }
            if select
                .projection
                .iter()
                .any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)))
            {
                self.0 = refuse("with `*`");
                return ControlFlow::Break(());
            }
            let TableFactor::Derived { subquery, .. } = &mut select.from[0].relation else {
                return ControlFlow::Continue(());
            };
            let Some(OrderByKind::Expressions(items)) = subquery.order_by.as_ref().map(|o| o.kind.clone()) else {
                return ControlFlow::Continue(());
            };
            let SetExpr::Select(inner) = subquery.body.as_mut() else {
                self.0 = refuse("that is a UNION");
                return ControlFlow::Break(());
            };
            if inner.distinct.is_some() {
                self.0 = refuse("with DISTINCT");
                return ControlFlow::Break(());
            }
            let mut keys = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let name = Ident::new(format!("__tb_order_{i}"));
                inner.projection.push(SelectItem::ExprWithAlias { expr: item.expr.clone(), alias: name.clone() });
                keys.push(OrderByExpr { expr: Expr::Identifier(name), options: item.options, with_fill: None });
            }
            let mut orderer = Orderer(keys, 0);
            for item in &mut select.projection {
                let _ = VisitMut::visit(item, &mut orderer);
            }
            if let Some(having) = &mut select.having {
                let _ = VisitMut::visit(having, &mut orderer);
            }
            ControlFlow::Continue(())
        }
    }
    let mut queries = Queries(None);
    let _ = VisitMut::visit(query, &mut queries);
    queries.0.map_or(Ok(()), Err)
}

/// Takes `SETTINGS join_default_strictness = 'ANY'` (how [`parse`] records `ANY JOIN`) off the query; whether it
/// was there.
fn take_any_strictness(query: &mut Query) -> bool {
    let Some(settings) = &mut query.settings else { return false };
    let before = settings.len();
    settings.retain(|s| {
        !(s.key.value.eq_ignore_ascii_case("join_default_strictness")
            && s.value.to_string().trim_matches('\'').eq_ignore_ascii_case("ANY"))
    });
    let taken = settings.len() < before;
    if settings.is_empty() {
        query.settings = None;
    }
    taken
}

/// `ANY LEFT JOIN` and `ANY INNER JOIN`: ClickHouse joins each left row to at most one matching right row, any
/// one. Where the joined relation has one row per key, that is the plain join; so the joined relation is read through
/// `QUALIFY ch_any_join_unique(count(*) OVER (PARTITION BY keys))`, which refuses the query when a key has several
/// rows (ClickHouse's choice among them is not reproduced). The keys are the joined relation's side of the `ON`
/// equalities (or the `USING` columns). `RIGHT` and `FULL` ANY joins are refused.
pub fn any_joins_checked(query: &mut Query) -> Result<(), EngineError> {
    use datafusion::sql::sqlparser::ast::{JoinConstraint, JoinOperator};
    struct Joins(Option<EngineError>);
    fn alias_of(relation: &TableFactor) -> Option<String> {
        match relation {
            TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
                Some(a.name.value.clone())
            }
            TableFactor::Table { name, alias: None, .. } => name.0.last().map(ToString::to_string),
            _ => None,
        }
    }
    /// Whether every column an expression reads is qualified with `alias`.
    fn reads_only(expr: &Expr, alias: &str) -> bool {
        struct Reads<'a>(&'a str, bool, bool);
        impl Visitor for Reads<'_> {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
                match e {
                    Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                        self.1 = true;
                        self.2 &= parts[0].value == self.0;
                    }
                    Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Subquery(_) => self.2 = false,
                    _ => {}
                }
                ControlFlow::Continue(())
            }
        }
        let mut reads = Reads(alias, false, true);
        let _ = Visit::visit(expr, &mut reads);
        reads.1 && reads.2
    }
    fn keys(on: &Expr, alias: &str, out: &mut Vec<Expr>) {
        match on {
            Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
                keys(left, alias, out);
                keys(right, alias, out);
            }
            Expr::Nested(inner) => keys(inner, alias, out),
            Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => {
                if reads_only(right, alias) && !reads_only(left, alias) {
                    out.push(right.as_ref().clone());
                } else if reads_only(left, alias) && !reads_only(right, alias) {
                    out.push(left.as_ref().clone());
                }
            }
            _ => {}
        }
    }
    impl VisitorMut for Joins {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            // Every SELECT of the body, the branches of a UNION included.
            fn walk(
                body: &mut SetExpr,
                f: &mut dyn FnMut(&mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()>,
            ) -> ControlFlow<()> {
                match body {
                    SetExpr::Select(select) => f(select),
                    SetExpr::SetOperation { left, right, .. } => {
                        walk(left, f)?;
                        walk(right, f)
                    }
                    _ => ControlFlow::Continue(()),
                }
            }
            walk(query.body.as_mut(), &mut |select| self.any_joins_of(select))
        }
    }
    impl Joins {
        fn any_joins_of(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
            for from in &mut select.from {
                for join in &mut from.joins {
                    let constraint = match &join.join_operator {
                        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => c,
                        JoinOperator::CrossJoin(_) | JoinOperator::AsOf { .. } => continue,
                        // ClickHouse's ANY INNER JOIN keeps one row per key of both sides.
                        _ => {
                            self.0 = Some(EngineError::Unsupported(
                                "ANY INNER, RIGHT or FULL JOIN (ANY LEFT JOIN runs)".into(),
                            ));
                            return ControlFlow::Break(());
                        }
                    };
                    if is_array_join(&join.join_operator) {
                        continue;
                    }
                    let Some(alias) = alias_of(&join.relation) else {
                        self.0 = Some(EngineError::Unsupported("ANY JOIN of a relation without a name".into()));
                        return ControlFlow::Break(());
                    };
                    let mut found = Vec::new();
                    match constraint {
                        JoinConstraint::On(on) => keys(on, &alias, &mut found),
                        JoinConstraint::Using(columns) => {
                            for c in columns {
                                let column = c.0.last().map(ToString::to_string).unwrap_or_default();
                                found.push(Expr::CompoundIdentifier(vec![
                                    Ident::new(alias.clone()),
                                    Ident::new(column),
                                ]));
                            }
                        }
                        _ => {}
                    }
                    if found.is_empty() {
                        self.0 = Some(EngineError::Unsupported(
                            "ANY JOIN without an equality on the joined relation's columns".into(),
                        ));
                        return ControlFlow::Break(());
                    }
                    let keys: Vec<String> = found.iter().map(ToString::to_string).collect();
                    let mut inner = join.relation.clone();
                    if let TableFactor::Table { alias: a @ None, .. } = &mut inner {
                        *a = Some(TableAlias {
                            name: Ident::new(alias.clone()),
                            columns: vec![],
                            explicit: true,
                            at: None,
                        });
                    }
                    let text = format!(
                        "SELECT * FROM (SELECT * FROM {inner} QUALIFY ch_any_join_unique(count(*) OVER (PARTITION BY {}))) AS {alias}",
                        keys.join(", ")
                    );
                    match parse_generic(&text) {
                        Ok(q) => match *q.body {
                            SetExpr::Select(s) => match s.from.into_iter().next() {
                                Some(t) => join.relation = t.relation,
                                None => return ControlFlow::Break(()),
                            },
                            _ => return ControlFlow::Break(()),
                        },
                        Err(e) => {
                            self.0 = Some(e);
                            return ControlFlow::Break(());
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut joins = Joins(None);
    let _ = VisitMut::visit(query, &mut joins);
    joins.0.map_or(Ok(()), Err)
}

/// `x IN (t)` where `t` is the name of a CTE in scope: the CTE's rows, as ClickHouse reads it (`x IN (SELECT * FROM
/// t)`). A name that is also a column of a table is refused: ClickHouse would read the column there.
pub fn in_ctes_as_subqueries(query: &mut Query, catalog: &dyn Tables) -> Result<(), EngineError> {
    struct Scopes<'a> {
        names: Vec<Vec<String>>,
        catalog: &'a dyn Tables,
        error: Option<EngineError>,
    }
    impl VisitorMut for Scopes<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let names = query.with.as_ref().map(|w| w.cte_tables.iter().map(|c| c.alias.name.value.clone()).collect());
            self.names.push(names.unwrap_or_default());
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.names.pop();
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::InList { expr: value, list, negated } = expr else { return ControlFlow::Continue(()) };
            let [Expr::Identifier(name)] = list.as_slice() else { return ControlFlow::Continue(()) };
            if !self.names.iter().any(|scope| scope.contains(&name.value)) {
                return ControlFlow::Continue(());
            }
            if self.catalog.has_column(&name.value) {
                self.error = Some(EngineError::Unsupported(format!(
                    "IN `{}`, the name of both a CTE and a column (ClickHouse reads the column)",
                    name.value
                )));
                return ControlFlow::Break(());
            }
            let subquery = match parse_generic(&format!("SELECT * FROM {name}")) {
                Ok(q) => q,
                Err(e) => {
                    self.error = Some(e);
                    return ControlFlow::Break(());
                }
            };
            let value = std::mem::replace(value.as_mut(), Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
            *expr = Expr::InSubquery { expr: Box::new(value), subquery: Box::new(subquery), negated: *negated };
            ControlFlow::Continue(())
        }
    }
    let mut scopes = Scopes { names: Vec::new(), catalog, error: None };
    let _ = VisitMut::visit(query, &mut scopes);
    scopes.error.map_or(Ok(()), Err)
}

/// `FROM events AS e JOIN (…) AS events`: ClickHouse resolves `events.x` there by rules of its own (to the table, or
/// to the subquery with the table's types). Refused on both engines, naming the alias.
pub fn refuse_shadowed_tables(query: &Query) -> Result<(), EngineError> {
    #[derive(Default)]
    struct Names {
        renamed: HashSet<String>,
        aliases: HashSet<String>,
    }
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            match factor {
                TableFactor::Derived { alias: Some(a), .. }
                | TableFactor::Table { args: Some(_), alias: Some(a), .. } => {
                    self.aliases.insert(a.name.value.clone());
                }
                TableFactor::Table { name, alias: Some(a), args: None, .. } => {
                    if let Some(single) = single_name(name)
                        && single != a.name.value
                    {
                        self.renamed.insert(single);
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names::default();
    let _ = Visit::visit(query, &mut names);
    match names.renamed.intersection(&names.aliases).next() {
        Some(name) => Err(EngineError::Unsupported(format!(
            "a subquery or table function aliased `{name}` in a query that also reads the table `{name}` under another \
             alias (name the subquery differently)"
        ))),
        None => Ok(()),
    }
}

fn parse_generic(text: &str) -> Result<Query, EngineError> {
    spend_rewrite_budget(text)?;
    let dialect = GenericDialect {};
    Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_query())
        .map(|q| *q)
        .map_err(|e| EngineError::Execution(format!("internal rewrite produced invalid SQL ({e}): {text}")))
}

/// The most text the rewrites of one translation may parse, in bytes. Rewrites print an argument into the text of
/// its translation, so nesting makes the work grow faster than the query; past this, the query is refused.
const REWRITE_BUDGET: usize = 8 * 1024 * 1024;

thread_local! {
    static REWRITTEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn spend_rewrite_budget(text: &str) -> Result<(), EngineError> {
    let spent = REWRITTEN.with(|c| {
        let total = c.get().saturating_add(text.len());
        c.set(total);
        total
    });
    if spent > REWRITE_BUDGET {
        return Err(EngineError::Unsupported(format!(
            "a query this deeply nested (translating it for the DataFusion engine takes more than {} MB of rewriting)",
            REWRITE_BUDGET / (1024 * 1024)
        )));
    }
    Ok(())
}

fn parse_expr(text: &str) -> Result<Expr, EngineError> {
    use datafusion::sql::sqlparser::ast::{LambdaFunction, LambdaFunctionParameter, LambdaSyntax, OneOrManyWithParens};
    /// A lambda a rewrite printed (`x -> (body)`, see `calls::with_lambda`), which the generic dialect reads as the
    /// JSON operator `->`: a lambda again. (ClickHouse has no `->` but lambdas, and the rewrites print no other.)
    struct Lambdas;
    impl VisitorMut for Lambdas {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::BinaryOp { left, op: BinaryOperator::Arrow, right } = e
                && let Expr::Identifier(param) = left.as_ref()
                && matches!(right.as_ref(), Expr::Nested(_))
            {
                *e = Expr::Lambda(LambdaFunction {
                    params: OneOrManyWithParens::One(LambdaFunctionParameter { name: param.clone(), data_type: None }),
                    body: right.clone(),
                    syntax: LambdaSyntax::Arrow,
                });
            }
            ControlFlow::Continue(())
        }
    }
    spend_rewrite_budget(text)?;
    let dialect = GenericDialect {};
    let mut expr = Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| EngineError::Execution(format!("internal rewrite produced invalid SQL ({e}): {text}")))?;
    if text.contains("->") {
        let _ = VisitMut::visit(&mut expr, &mut Lambdas);
    }
    Ok(expr)
}

/// `agg(x) FILTER (WHERE c)` is ClickHouse's `aggIf(x, c)` (so it reads, and names, it): `count() FILTER (WHERE c)`
/// is `countIf(c)`. A `DISTINCT` or windowed one is left as written (and refused by name later).
fn filters_as_if_combinators(query: &mut Query) {
    struct Filters;
    impl VisitorMut for Filters {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::Function(f) = expr else { return ControlFlow::Continue(()) };
            if f.over.is_some() || !f.within_group.is_empty() || f.null_treatment.is_some() {
                return ControlFlow::Continue(());
            }
            let (Some(condition), [ObjectNamePart::Identifier(name)]) = (&f.filter, f.name.0.as_mut_slice()) else {
                return ControlFlow::Continue(());
            };
            let FunctionArguments::List(list) = &mut f.args else { return ControlFlow::Continue(()) };
            if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
                return ControlFlow::Continue(());
            }
            list.args.retain(|a| !matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Wildcard)));
            list.args.push(FunctionArg::Unnamed(FunctionArgExpr::Expr(condition.as_ref().clone())));
            name.value.push_str("If");
            f.filter = None;
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(query, &mut Filters);
}

/// Settings that leave a query's answer as it is (threads, block sizes, limits on time and memory, read order),
/// with any value; and settings whose ClickHouse default this engine follows, with that value only.
const HARMLESS_SETTINGS: &[(&str, Option<&str>)] = &[
    ("max_threads", None),
    ("max_block_size", None),
    ("max_execution_time", None),
    ("max_memory_usage", None),
    ("max_bytes_before_external_group_by", None),
    ("max_bytes_before_external_sort", None),
    ("optimize_read_in_order", None),
    ("optimize_aggregation_in_order", None),
    ("use_query_cache", None),
    ("log_comment", None),
    ("join_use_nulls", Some("0")),
    ("group_by_use_nulls", Some("0")),
    ("aggregate_functions_null_for_empty", Some("0")),
    ("output_format_json_quote_64bit_integers", Some("0")),
];

/// Takes the `SETTINGS` of the query and its subqueries off, when each leaves the answer as it is on this engine;
/// any other is refused by name (`join_use_nulls = 1` changes what a join returns).
fn take_settings(query: &mut Query) -> Result<(), EngineError> {
    struct Settings(Option<EngineError>);
    impl VisitorMut for Settings {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            for setting in query.settings.take().unwrap_or_default() {
                let (name, value) = (setting.key.value.as_str(), setting.value.to_string());
                let harmless = HARMLESS_SETTINGS
                    .iter()
                    .any(|(n, only)| *n == name && only.is_none_or(|v| v == value.trim_matches('\'')));
                if !harmless {
                    self.0 = Some(EngineError::Unsupported(format!("the setting `{name} = {value}`")));
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut settings = Settings(None);
    let _ = VisitMut::visit(query, &mut settings);
    settings.0.map_or(Ok(()), Err)
}

/// `A UNION ALL B EXCEPT C` without parentheses: ClickHouse's precedence among set operations is not the
/// standard's that DataFusion follows (ClickHouse reads it as `A UNION ALL (B EXCEPT C)`). Refused by name; with
/// parentheses, both agree.
fn refuse_mixed_set_operations(query: &Query) -> Result<(), EngineError> {
    struct Mixed(bool);
    impl Visitor for Mixed {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            fn mixed(body: &SetExpr) -> bool {
                let SetExpr::SetOperation { op, left, right, .. } = body else { return false };
                [left, right].iter().any(|side| match side.as_ref() {
                    SetExpr::SetOperation { op: inner, .. } => inner != op || mixed(side),
                    _ => false,
                })
            }
            self.0 |= mixed(&query.body);
            if self.0 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        }
    }
    let mut m = Mixed(false);
    let _ = Visit::visit(query, &mut m);
    match m.0 {
        true => Err(EngineError::Unsupported(
            "UNION mixed with EXCEPT or INTERSECT without parentheses (ClickHouse's precedence differs: add them)"
                .into(),
        )),
        false => Ok(()),
    }
}

/// The table functions that only generate rows which this engine answers: `numbers(n)`, `numbers(start, n)` (a
/// UInt64 column `number`) and `zeros(n)` (a UInt8 column `zero`), with literal arguments.
pub const GENERATORS: &[&str] = &["numbers", "zeros"];

/// `FROM numbers(10)` → `FROM (SELECT toUInt64(value) AS number FROM range(0, 10)) AS numbers`, keeping its alias.
fn generators_as_ranges(query: &mut Query) -> Result<(), EngineError> {
    use datafusion::sql::sqlparser::ast::{TableAlias, TableFactor};
    struct Generators(Option<EngineError>);
    impl Generators {
        fn rewrite(factor: &TableFactor) -> Result<Option<TableFactor>, EngineError> {
            let TableFactor::Table { name, alias, args: Some(args), .. } = factor else { return Ok(None) };
            let [ObjectNamePart::Identifier(function)] = name.0.as_slice() else { return Ok(None) };
            let Some(function) = GENERATORS.iter().find(|g| g.eq_ignore_ascii_case(&function.value)) else {
                return Ok(None);
            };
            let function = *function;
            let numbers: Option<Vec<u64>> = args
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(ValueWithSpan {
                        value: SqlValue::Number(n, _),
                        ..
                    }))) => n.parse::<u64>().ok(),
                    _ => None,
                })
                .collect();
            let refused = || EngineError::Unsupported(format!("`{function}` of anything but integer literals"));
            let numbers = numbers.ok_or_else(refused)?;
            let (start, count) = match (function, numbers.as_slice()) {
                ("numbers", [n]) | ("zeros", [n]) => (0, *n),
                ("numbers", [start, n]) => (*start, *n),
                _ => {
                    return Err(EngineError::Syntax(format!(
                        "Number of arguments for table function {function} doesn't match"
                    )));
                }
            };
            let end = start.checked_add(count).filter(|e| *e <= i64::MAX as u64).ok_or_else(refused)?;
            let sql = match function {
                "numbers" => format!("SELECT toUInt64(value) AS number FROM range({start}, {end})"),
                _ => format!("SELECT toUInt8(0) AS zero FROM range({start}, {end})"),
            };
            let alias = alias
                .clone()
                .or_else(|| Some(TableAlias { explicit: true, name: Ident::new(function), columns: vec![], at: None }));
            Ok(Some(TableFactor::Derived {
                lateral: false,
                subquery: Box::new(parse_generic(&sql)?),
                alias,
                sample: None,
            }))
        }
    }
    impl VisitorMut for Generators {
        type Break = ();
        /// ClickHouse asks a generator in a join for an alias (`ALIAS_REQUIRED`).
        fn pre_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
            // Not an ARRAY JOIN, which unfolds a column rather than joining a table.
            for from in select.from.iter().filter(|f| f.joins.iter().any(|j| !is_array_join(&j.join_operator))) {
                let joined = from.joins.iter().filter(|j| !is_array_join(&j.join_operator)).map(|j| &j.relation);
                for factor in std::iter::once(&from.relation).chain(joined) {
                    if let TableFactor::Table { name, alias: None, args: Some(_), .. } = factor {
                        self.0 = Some(EngineError::Syntax(format!(
                            "JOIN: no alias for subquery or table function {name}(…) (ALIAS_REQUIRED)"
                        )));
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            match Self::rewrite(factor) {
                Ok(Some(derived)) => *factor = derived,
                Ok(None) => {}
                Err(e) => {
                    self.0 = Some(e);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut generators = Generators(None);
    let _ = VisitMut::visit(query, &mut generators);
    generators.0.map_or(Ok(()), Err)
}

/// `FROM t [AS a] ARRAY JOIN arr [AS x]` → `FROM (SELECT *, arrayJoin(arr) AS x FROM t [AS a]) AS a`: each row
/// once per element of its array, rows with an empty array dropped, before WHERE (ClickHouse's `ARRAY JOIN`).
/// Without an alias, `arr` itself is the element (`* REPLACE`). Only over one table or subquery with no other join,
/// one array at a time, and with no `*` selected from the result; `LEFT ARRAY JOIN` (which keeps an empty array as
/// one default element) of a column only. The rest is refused by name.
fn array_joins_as_subqueries(query: &mut Query) -> Result<(), EngineError> {
    use datafusion::sql::sqlparser::ast::{JoinOperator, Select, TableAlias, TableFactor};
    struct ArrayJoins(Option<EngineError>);
    fn rewrite(select: &mut Select) -> Result<(), EngineError> {
        let refused = |what: &str| Err(EngineError::Unsupported(format!("ARRAY JOIN {what}")));
        if !select.from.iter().flat_map(|f| &f.joins).any(|j| is_array_join(&j.join_operator)) {
            return Ok(());
        }
        let [from] = select.from.as_mut_slice() else { return refused("over several tables") };
        let [join] = from.joins.as_slice() else { return refused("with other joins or several ARRAY JOINs") };
        // `LEFT ARRAY JOIN col`: an empty array as one default element (see the `arrays` module).
        let left = matches!(join.join_operator, JoinOperator::LeftArrayJoin);
        if select.projection.iter().any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..))) {
            return refused("with `*` selected");
        }
        // `ARRAY JOIN expr AS e` (see `array_join_lists`): one aliased expression.
        let listed = match &join.relation {
            TableFactor::Table { name, args: Some(args), alias: Some(alias), .. }
                if tables::single_name(name).as_deref() == Some(ARRAY_JOIN_MARK) =>
            {
                match (args.args.as_slice(), alias.columns.as_slice()) {
                    ([FunctionArg::Unnamed(FunctionArgExpr::Expr(e))], [column]) if !column.name.value.is_empty() => {
                        Some((e.clone(), column.name.clone()))
                    }
                    ([_], [_]) => return refused("of an expression without an alias"),
                    _ if left => return refused("LEFT of several arrays"),
                    _ => {
                        let subquery = zipped_arrays(from)?;
                        return finish(from, subquery);
                    }
                }
            }
            _ => None,
        };
        let is_expression = listed.is_some();
        if left && is_expression {
            return refused(
                "LEFT of an expression (its empty arrays' default element depends on a type not known here)",
            );
        }
        let (array, column, element) = match (&join.relation, listed) {
            (_, Some((expr, alias))) => (expr, String::new(), Some(alias)),
            (TableFactor::Table { name: array, alias: element, args: None, .. }, None) => (
                match array.0.iter().filter_map(|p| p.as_ident().cloned()).collect::<Vec<_>>() {
                    mut one if one.len() == 1 => Expr::Identifier(one.remove(0)),
                    parts => Expr::CompoundIdentifier(parts),
                },
                array.0.last().map(std::string::ToString::to_string).unwrap_or_default(),
                element.as_ref().map(|a| a.name.clone()),
            ),
            _ => return refused("of anything but a column name or an aliased expression"),
        };
        let inner = match &element {
            Some(alias) => format!("SELECT *, arrayJoin(0) AS {alias} FROM __tb_array_join_source"),
            None => format!("SELECT * REPLACE (arrayJoin(0) AS {column}) FROM __tb_array_join_source"),
        };
        // An expression is computed first, in a subquery of its own: unfolded in the same projection, a lambda in it
        // would not resolve.
        let (source, array) = if is_expression {
            (computed_arrays(&from.relation, vec![array])?, computed_array(0))
        } else {
            (from.relation.clone(), array)
        };
        let mut subquery = parse_generic(&inner)?;
        if let SetExpr::Select(inner) = subquery.body.as_mut() {
            inner.from[0].relation = source;
            // The array, as the tree says it (never printed and read again).
            let array = if left { dialect::call("__tb_left_array", vec![array]) } else { array };
            let unfolded = dialect::call("arrayJoin", vec![array]);
            match &mut inner.projection[..] {
                [_, SelectItem::ExprWithAlias { expr, .. }] => *expr = unfolded,
                [SelectItem::Wildcard(options)] => {
                    if let Some(replace) = options.opt_replace.as_mut()
                        && let Some(item) = replace.items.first_mut()
                    {
                        item.expr = unfolded;
                    }
                }
                _ => {}
            }
        }
        finish(from, subquery)
    }
    /// The relation's alias (or its table's name) on the subquery that replaces it and its ARRAY JOIN.
    fn finish(from: &mut datafusion::sql::sqlparser::ast::TableWithJoins, subquery: Query) -> Result<(), EngineError> {
        let alias = match &from.relation {
            TableFactor::Table { name, alias, args: None, .. } => alias.clone().or_else(|| {
                name.0.last().map(|n| TableAlias {
                    explicit: true,
                    name: Ident::new(n.to_string()),
                    columns: vec![],
                    at: None,
                })
            }),
            TableFactor::Derived { alias, .. } => alias.clone(),
            _ => return Err(EngineError::Unsupported("ARRAY JOIN over anything but a table or a subquery".into())),
        };
        from.relation = TableFactor::Derived { lateral: false, subquery: Box::new(subquery), alias, sample: None };
        from.joins.clear();
        Ok(())
    }
    /// `ARRAY JOIN e1 AS a1, arr, …`: each array computed once per row (`__tb_array_<i>`), then all unfolded side by
    /// side, which ClickHouse does only when the row's arrays have one length (else its error).
    fn zipped_arrays(from: &datafusion::sql::sqlparser::ast::TableWithJoins) -> Result<Query, EngineError> {
        let refused = |what: &str| Err(EngineError::Unsupported(format!("ARRAY JOIN {what}")));
        let Some(items) = from.joins.first().and_then(|j| array_join_items(&j.relation)) else {
            return refused("of this form");
        };
        let values = computed_arrays(&from.relation, items.iter().map(|(e, _)| (*e).clone()).collect())?;
        // `* REPLACE (…)` for the columns written without an alias (each becomes its own element), then the aliases.
        let (mut replaced, mut added) = (Vec::new(), Vec::new());
        for (i, (expr, alias)) in items.iter().enumerate() {
            let mut args = vec![computed_array(i)];
            args.extend((0..items.len()).map(computed_array));
            let unfolded = dialect::call(ARRAY_JOIN_ZIP, args);
            match (alias.value.is_empty(), expr) {
                (false, _) => added.push(SelectItem::ExprWithAlias { expr: unfolded, alias: (*alias).clone() }),
                (true, Expr::Identifier(column)) => replaced.push((unfolded, column.clone())),
                (true, _) => return refused("of an expression without an alias"),
            }
        }
        let replace = replaced.iter().map(|(_, c)| format!("0 AS {c}")).collect::<Vec<_>>().join(", ");
        let text = if replace.is_empty() {
            "SELECT * FROM __tb_array_values".to_string()
        } else {
            format!("SELECT * REPLACE ({replace}) FROM __tb_array_values")
        };
        let mut zipped = parse_generic(&text)?;
        if let SetExpr::Select(select) = zipped.body.as_mut() {
            select.from[0].relation = values;
            if let Some(SelectItem::Wildcard(options)) = select.projection.first_mut()
                && let Some(replace) = options.opt_replace.as_mut()
            {
                for (item, (unfolded, _)) in replace.items.iter_mut().zip(replaced) {
                    item.expr = unfolded;
                }
            }
            select.projection.extend(added);
        }
        Ok(zipped)
    }
    /// The `i`-th array [`computed_arrays`] computes.
    fn computed_array(i: usize) -> Expr {
        Expr::Identifier(Ident::new(format!("__tb_array_{i}")))
    }
    /// `(SELECT *, e0 AS __tb_array_0, e1 AS __tb_array_1, … FROM relation) AS __tb_array_values`: the arrays an
    /// ARRAY JOIN unfolds, computed once per row, beside the row.
    fn computed_arrays(relation: &TableFactor, arrays: Vec<Expr>) -> Result<TableFactor, EngineError> {
        let mut values = parse_generic("SELECT * FROM __tb_array_join_source")?;
        if let SetExpr::Select(select) = values.body.as_mut() {
            select.from[0].relation = relation.clone();
            for (i, expr) in arrays.into_iter().enumerate() {
                let alias = Ident::new(format!("__tb_array_{i}"));
                select.projection.push(SelectItem::ExprWithAlias { expr, alias });
            }
        }
        let alias = TableAlias { explicit: true, name: Ident::new("__tb_array_values"), columns: vec![], at: None };
        Ok(TableFactor::Derived { lateral: false, subquery: Box::new(values), alias: Some(alias), sample: None })
    }
    impl VisitorMut for ArrayJoins {
        type Break = ();
        fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
            match rewrite(select) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    self.0 = Some(e);
                    ControlFlow::Break(())
                }
            }
        }
    }
    let mut joins = ArrayJoins(None);
    let _ = VisitMut::visit(query, &mut joins);
    joins.0.map_or(Ok(()), Err)
}

/// Marks the second and later result columns of one name (`SELECT a != 1, a <> 1` names both `notEquals(a, 1)` in
/// ClickHouse, which returns both under it): DataFusion holds no two columns of one name, so each repeat is aliased
/// `name` + this character + its position, and the engine shows the name without the suffix.
pub const REPEATED_NAME_MARK: char = '\u{E000}';

fn distinct_output_names(query: &mut Query) {
    let SetExpr::Select(select) = query.body.as_mut() else { return };
    let mut seen = HashSet::new();
    for (i, item) in select.projection.iter_mut().enumerate() {
        let name = match item {
            SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => ident.value.clone(),
            _ => continue,
        };
        if seen.insert(name.clone()) {
            continue;
        }
        let renamed = Ident::with_quote('`', format!("{name}{REPEATED_NAME_MARK}{i}"));
        match item {
            SelectItem::ExprWithAlias { alias, .. } => *alias = renamed,
            SelectItem::UnnamedExpr(expr) => {
                let expr = std::mem::replace(expr, Expr::value(SqlValue::Null));
                *item = SelectItem::ExprWithAlias { expr, alias: renamed };
            }
            _ => {}
        }
    }
}

/// `EXTRACT(YEAR FROM d)` is ClickHouse's `toYear(d)` (so it reads, types and names it), and likewise `MONTH`,
/// `DAY`, `HOUR`, `MINUTE`, `SECOND`, `QUARTER` and `WEEK` (`toISOWeek`); other fields are left as written (and
/// refused).
fn extracts_as_functions(query: &mut Query) {
    use datafusion::sql::sqlparser::ast::DateTimeField;
    struct Extracts;
    impl VisitorMut for Extracts {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::Extract { field, expr: inner, .. } = expr else { return ControlFlow::Continue(()) };
            let function = match field {
                DateTimeField::Year => "toYear",
                DateTimeField::Quarter => "toQuarter",
                DateTimeField::Month => "toMonth",
                DateTimeField::Week(None) => "toISOWeek",
                DateTimeField::Day => "toDayOfMonth",
                DateTimeField::Hour => "toHour",
                DateTimeField::Minute => "toMinute",
                DateTimeField::Second => "toSecond",
                _ => return ControlFlow::Continue(()),
            };
            *expr = call(function, vec![inner.as_ref().clone()]);
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(query, &mut Extracts);
}

/// `PREWHERE a WHERE b` filters as `WHERE a AND b` (ClickHouse reads the PREWHERE columns first; the rows are the
/// same).
fn prewhere_as_where(query: &mut Query) {
    struct Prewhere;
    impl VisitorMut for Prewhere {
        type Break = ();
        fn pre_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
            if let Some(prewhere) = select.prewhere.take() {
                let nested = |e: Expr| Box::new(Expr::Nested(Box::new(e)));
                select.selection = Some(match select.selection.take() {
                    Some(w) => Expr::BinaryOp { left: nested(prewhere), op: BinaryOperator::And, right: nested(w) },
                    None => prewhere,
                });
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(query, &mut Prewhere);
}
