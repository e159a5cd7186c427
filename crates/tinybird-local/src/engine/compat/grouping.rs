//! `GROUP BY ROLLUP(…)`, `CUBE(…)`, `GROUPING SETS (…)`, `… WITH ROLLUP`/`WITH CUBE`, and the totals row of
//! `WITH TOTALS`, as ClickHouse computes them (each measured against ClickHouse):
//! - A key a row is not grouped by (a subtotal's key, every key of the totals row) is its type's default (`0`, `''`,
//!   `1970-01-01`, `[]`), or NULL when the key's type is Nullable; DataFusion gives NULL. What is computed from the key
//!   outside aggregates follows (`k * 2 + 1` is 1). A constant key keeps its value.
//! - The totals row aggregates every row, without the query's `ORDER BY` or `LIMIT`.
//!
//! The outermost SELECT's grouping is taken off before the rewrite (which translates its distinct keys as a plain
//! `GROUP BY`) and put back after it as `GROUPING SETS`, each key outside a subquery wrapped in the select list,
//! `HAVING` and `ORDER BY`, outside aggregates (see [`Defaults`]). The totals query keeps only the `()` set's row.

use super::{EngineError, Tables, parse_expr};
use datafusion::sql::sqlparser::ast::{
    Expr, GroupByExpr, GroupByWithModifier, Ident, Query, SelectItem, SetExpr, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;

/// The grouping of the outermost SELECT, while its keys are rewritten.
pub(super) struct Shape {
    /// How many distinct keys the `GROUP BY` holds during the rewrite.
    keys: usize,
    /// Each grouping set, as indexes of keys.
    sets: Vec<Vec<usize>>,
    /// Whether each key's ClickHouse type is Nullable.
    nullable: Vec<bool>,
    /// The totals query: only the `()` set's row, no `ORDER BY`/`LIMIT`.
    totals: bool,
    /// `ROLLUP`/`CUBE`: no `()` row over no rows.
    drop_empty: bool,
}

fn unsupported(what: &str) -> EngineError {
    EngineError::Unsupported(what.to_string())
}

/// The distinct keys of `groups` (each a list of keys), and each group as indexes of them.
fn index(groups: &[Vec<Expr>]) -> (Vec<Expr>, Vec<Vec<usize>>) {
    let mut keys: Vec<Expr> = Vec::new();
    let sets = groups
        .iter()
        .map(|group| {
            group
                .iter()
                .map(|k| match keys.iter().position(|x| x == k) {
                    Some(i) => i,
                    None => {
                        keys.push(k.clone());
                        keys.len() - 1
                    }
                })
                .collect()
        })
        .collect();
    (keys, sets)
}

/// The elements of a `ROLLUP`/`CUBE`, each one key: a repeated key (ClickHouse groups by it once) or a parenthesised
/// group of keys (which ClickHouse reads as its keys one by one) are refused.
fn single_keys(keys: &[Expr], elements: &[Vec<usize>]) -> Result<(), EngineError> {
    if elements.iter().any(|e| e.len() != 1) || keys.len() != elements.len() {
        return Err(unsupported("ROLLUP or CUBE of a repeated key or of parenthesised keys"));
    }
    Ok(())
}

/// `ROLLUP(e1, …, en)`: the groups `e1…en`, `e1…en-1`, …, `()`.
fn rollup(elements: &[Vec<usize>]) -> Vec<Vec<usize>> {
    (0..=elements.len()).rev().map(|n| elements[..n].concat()).collect()
}

/// `CUBE(e1, …, en)`: every subset of the elements.
fn cube(elements: &[Vec<usize>]) -> Result<Vec<Vec<usize>>, EngineError> {
    if elements.len() > 12 {
        return Err(unsupported("CUBE of more than 12 keys"));
    }
    Ok((0..1usize << elements.len())
        .rev()
        .map(|mask| {
            elements
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << (elements.len() - 1 - i)) != 0)
                .flat_map(|(_, e)| e.clone())
                .collect()
        })
        .collect())
}

impl Shape {
    /// Takes the outermost SELECT's grouping sets off, leaving their distinct keys as a plain `GROUP BY` for the
    /// rewrite; for the totals query (`totals`), its keys. None for a plain `GROUP BY`.
    pub(super) fn take(query: &mut Query, catalog: &dyn Tables, totals: bool) -> Result<Option<Shape>, EngineError> {
        let SetExpr::Select(select) = query.body.as_mut() else { return Ok(None) };
        let GroupByExpr::Expressions(exprs, modifiers) = &mut select.group_by else { return Ok(None) };
        let grouping_expr = exprs.iter().any(|e| matches!(e, Expr::Rollup(_) | Expr::Cube(_) | Expr::GroupingSets(_)));
        if !totals && modifiers.is_empty() && !grouping_expr {
            return Ok(None);
        }
        if exprs.iter().any(|k| matches!(k, Expr::Value(_))) {
            return Err(unsupported("ROLLUP, CUBE or TOTALS with a GROUP BY key given by position"));
        }
        let (keys, sets) = if totals {
            let (keys, mut sets) = index(std::slice::from_ref(exprs));
            sets.push(vec![]);
            (keys, sets)
        } else if grouping_expr {
            if exprs.len() > 1 || !modifiers.is_empty() {
                return Err(unsupported(
                    "ROLLUP, CUBE or GROUPING SETS together with other GROUP BY keys or modifiers",
                ));
            }
            match &exprs[0] {
                Expr::GroupingSets(groups) => index(groups),
                Expr::Rollup(elements) => {
                    let (keys, elements) = index(elements);
                    single_keys(&keys, &elements)?;
                    (keys, rollup(&elements))
                }
                Expr::Cube(elements) => {
                    let (keys, elements) = index(elements);
                    single_keys(&keys, &elements)?;
                    (keys, cube(&elements)?)
                }
                _ => return Ok(None),
            }
        } else {
            let singles: Vec<Vec<Expr>> = exprs.iter().map(|e| vec![e.clone()]).collect();
            let (keys, elements) = index(&singles);
            single_keys(&keys, &elements)?;
            match modifiers.as_slice() {
                [GroupByWithModifier::Rollup] => (keys, rollup(&elements)),
                [GroupByWithModifier::Cube] => (keys, cube(&elements)?),
                _ => return Err(unsupported("these GROUP BY modifiers together")),
            }
        };
        if keys.is_empty() {
            return Err(unsupported("ROLLUP, CUBE, GROUPING SETS or TOTALS without GROUP BY keys"));
        }
        if keys.iter().any(super::holds_subquery) {
            return Err(unsupported("ROLLUP, CUBE, GROUPING SETS or TOTALS over a key holding a subquery"));
        }
        // ClickHouse's totals after `ORDER BY … LIMIT 0` cover no rows.
        let limit = match &query.limit_clause {
            Some(datafusion::sql::sqlparser::ast::LimitClause::LimitOffset { limit: Some(limit), .. })
            | Some(datafusion::sql::sqlparser::ast::LimitClause::OffsetCommaLimit { limit, .. }) => Some(limit),
            _ => None,
        };
        if totals && limit.is_some_and(|l| l.to_string().parse::<u64>().is_ok_and(|n| n == 0)) {
            return Err(unsupported("WITH TOTALS with LIMIT 0"));
        }
        // ROLLUP and CUBE give no rows over no rows (an explicit `GROUPING SETS (…, ())` and the totals do).
        let drop_empty = !totals && !matches!(exprs.first(), Some(Expr::GroupingSets(_)));
        modifiers.clear();
        *exprs = keys.clone();
        let nullable = keys_nullable(query, &keys, catalog)?;
        Ok(Some(Shape { keys: keys.len(), sets, nullable, totals, drop_empty }))
    }

    /// Puts the grouping back on the rewritten query (see the module documentation).
    pub(super) fn restore(self, query: &mut Query, catalog: &dyn Tables) -> Result<(), EngineError> {
        let SetExpr::Select(select) = query.body.as_mut() else { return Ok(()) };
        let GroupByExpr::Expressions(keys, _) = &mut select.group_by else { return Ok(()) };
        if keys.len() != self.keys {
            return Err(unsupported("ROLLUP, CUBE, GROUPING SETS or TOTALS over keys the rewrite merged"));
        }
        let keys = std::mem::take(keys);
        // A key that reads no column is a constant: ClickHouse keeps its value, and it groups nothing. One that
        // unfolds rows (`arrayJoin`) or draws random values is neither.
        if keys.iter().any(|k| !reads_column(k) && calls_any(k, &["unnest", "rand", "uuid"])) {
            return Err(unsupported("ROLLUP, CUBE, GROUPING SETS or TOTALS over a key computed by arrayJoin or rand"));
        }
        let variable: Vec<bool> = keys.iter().map(reads_column).collect();
        let wrapped: Vec<(String, bool)> = keys
            .iter()
            .zip(&variable)
            .zip(&self.nullable)
            .filter(|((_, variable), _)| **variable)
            .map(|((k, _), nullable)| (bare(k).to_string(), *nullable))
            .collect();
        if !wrapped.is_empty() {
            let mut defaults =
                Defaults { keys: &wrapped, catalog, depth: 0, aggregates: 0, placeholders: vec![], error: None };
            for item in &mut select.projection {
                let column_name = match item {
                    SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.clone()),
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().cloned(),
                    _ => None,
                };
                let _ = VisitMut::visit(item, &mut defaults);
                // A column keeps its name once wrapped.
                if let (Some(name), SelectItem::UnnamedExpr(e)) = (column_name, &*item)
                    && !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                {
                    *item = SelectItem::ExprWithAlias { expr: e.clone(), alias: name };
                }
            }
            if let Some(having) = &mut select.having {
                let _ = VisitMut::visit(having, &mut defaults);
            }
            if let Some(order_by) = &mut query.order_by {
                let _ = VisitMut::visit(order_by, &mut defaults);
            }
            if let Some(error) = defaults.error {
                return Err(error);
            }
        }
        check_rolled_up_rows(query, catalog)?;
        let SetExpr::Select(select) = query.body.as_mut() else { return Ok(()) };
        let sets: Vec<Vec<Expr>> = self
            .sets
            .iter()
            .map(|set| set.iter().filter(|&&i| variable[i]).map(|&i| keys[i].clone()).collect())
            .collect();
        if self.totals {
            query.order_by = None;
            query.limit_clause = None;
            query.fetch = None;
            match sets[0].first() {
                // Only constant keys: the totals row is the whole query's aggregate.
                None => select.group_by = GroupByExpr::Expressions(vec![], vec![]),
                Some(first) => {
                    select.having = Some(parse_expr(&format!("grouping({first}) = 1"))?);
                    select.group_by = GroupByExpr::Expressions(vec![Expr::GroupingSets(sets)], vec![]);
                }
            }
        } else {
            select.group_by = GroupByExpr::Expressions(vec![Expr::GroupingSets(sets)], vec![]);
            if self.drop_empty {
                let some_rows = parse_expr("count(*) > 0")?;
                select.having = Some(match select.having.take() {
                    None => some_rows,
                    Some(h) => Expr::BinaryOp {
                        left: Box::new(Expr::Nested(Box::new(h))),
                        op: datafusion::sql::sqlparser::ast::BinaryOperator::And,
                        right: Box::new(some_rows),
                    },
                });
            }
        }
        Ok(())
    }
}

/// Whether an expression calls a function whose name holds one of `names`.
fn calls_any(e: &Expr, names: &[&str]) -> bool {
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |e| {
        if let Expr::Function(f) = e {
            let name = f.name.to_string().to_ascii_lowercase();
            found |= names.iter().any(|n| name.contains(n));
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// What the rolled-up rows cannot be computed from here, refused: a column outside aggregates that is not a wrapped
/// key (a key written otherwise than in `GROUP BY`, `p.lc` for `lc`, whose rolled-up value would stay NULL), a `*`,
/// and aggregates whose answer follows the order rows arrive in (`groupArray`, `any`, `anyLast`, `topK`), which
/// ClickHouse computes on those rows by merging the groups' states.
fn check_rolled_up_rows(query: &Query, catalog: &dyn Tables) -> Result<(), EngineError> {
    use datafusion::sql::sqlparser::ast::{FunctionArgumentClause, FunctionArguments, Visit, Visitor};
    struct Check<'a> {
        catalog: &'a dyn Tables,
        aliases: Vec<String>,
        depth: usize,
        aggregates: usize,
        wrappers: usize,
        in_order_by: bool,
        error: Option<EngineError>,
    }
    impl Visitor for Check<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.depth > 0 {
                return ControlFlow::Continue(());
            }
            match e {
                Expr::Function(f) => {
                    let name = f.name.to_string();
                    if name.starts_with("ch_grouping_key") {
                        self.wrappers += 1;
                    } else if f.over.is_none() && self.catalog.is_aggregate(&name) {
                        let ordered = matches!(&f.args, FunctionArguments::List(l)
                            if l.clauses.iter().any(|c| matches!(c, FunctionArgumentClause::OrderBy(o)
                                if !o.iter().any(|k| k.expr.to_string().contains("__tb_order")))));
                        let sensitive = match name.to_ascii_lowercase().as_str() {
                            "array_agg" | "ch_top_k" => true,
                            "first_value" | "last_value" => !ordered,
                            _ => false,
                        };
                        if sensitive && self.aggregates == 0 {
                            self.error = Some(unsupported(
                                "groupArray, any, anyLast or topK with ROLLUP, CUBE, GROUPING SETS or TOTALS \
                                 (ClickHouse merges the groups' states for the rolled-up rows)",
                            ));
                            return ControlFlow::Break(());
                        }
                        self.aggregates += 1;
                    }
                }
                Expr::Identifier(i)
                    if self.aggregates == 0
                        && self.wrappers == 0
                        && !(self.in_order_by && self.aliases.contains(&i.value)) =>
                {
                    self.error = Some(unsupported(&format!(
                        "ROLLUP, CUBE, GROUPING SETS or TOTALS with `{i}` outside aggregates written otherwise than \
                         its GROUP BY key"
                    )));
                    return ControlFlow::Break(());
                }
                Expr::CompoundIdentifier(parts) if self.aggregates == 0 && self.wrappers == 0 => {
                    let name = parts.iter().map(|p| p.value.as_str()).collect::<Vec<_>>().join(".");
                    self.error = Some(unsupported(&format!(
                        "ROLLUP, CUBE, GROUPING SETS or TOTALS with `{name}` outside aggregates written otherwise \
                         than its GROUP BY key"
                    )));
                    return ControlFlow::Break(());
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Function(f) = e
            {
                let name = f.name.to_string();
                if name.starts_with("ch_grouping_key") {
                    self.wrappers -= 1;
                } else if f.over.is_none() && self.catalog.is_aggregate(&name) {
                    self.aggregates -= 1;
                }
            }
            ControlFlow::Continue(())
        }
    }
    let SetExpr::Select(select) = query.body.as_ref() else { return Ok(()) };
    let aliases = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            _ => None,
        })
        .collect();
    let mut check = Check { catalog, aliases, depth: 0, aggregates: 0, wrappers: 0, in_order_by: false, error: None };
    for item in &select.projection {
        if matches!(item, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)) {
            return Err(unsupported("ROLLUP, CUBE, GROUPING SETS or TOTALS with `*` (name the columns)"));
        }
        let _ = item.visit(&mut check);
    }
    if let Some(having) = &select.having {
        let _ = having.visit(&mut check);
    }
    check.in_order_by = true;
    if let Some(order_by) = &query.order_by {
        let _ = order_by.visit(&mut check);
    }
    check.error.map_or(Ok(()), Err)
}

/// An expression without its parentheses.
fn bare(mut e: &Expr) -> &Expr {
    while let Expr::Nested(inner) = e {
        e = inner;
    }
    e
}

/// Whether an expression reads a column (or a subquery).
fn reads_column(e: &Expr) -> bool {
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |e| {
        if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Subquery(_)) {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

/// Whether ClickHouse's type of each key is Nullable, read as the hints read a selected expression; a key whose type
/// is not known there is refused (its default would be a guess).
fn keys_nullable(query: &Query, keys: &[Expr], catalog: &dyn Tables) -> Result<Vec<bool>, EngineError> {
    let mut keys_only = query.clone();
    keys_only.order_by = None;
    let SetExpr::Select(select) = keys_only.body.as_mut() else { return Ok(vec![]) };
    select.projection = keys.iter().cloned().map(SelectItem::UnnamedExpr).collect();
    select.group_by = GroupByExpr::Expressions(keys.to_vec(), vec![]);
    let wrappers = crate::engine::hints::of_query(&keys_only, &|column| catalog.column_type(column), &|table| {
        catalog.columns(table)
    });
    keys.iter()
        .enumerate()
        .map(|(i, key)| match wrappers.get(i).copied().flatten() {
            Some(w) => Ok(w.nullable),
            None => Err(EngineError::Unsupported(format!(
                "ROLLUP, CUBE, GROUPING SETS or TOTALS over the key `{key}`, whose Nullable type this engine does not \
                 know"
            ))),
        })
        .collect()
}

/// Wraps each key outside a subquery and outside aggregates as `ch_grouping_key(key, count(*))`: its default on a row
/// not grouped by it (`ch_grouping_key_nullable`: itself, NULL there). The `count(*)`, unused, keeps DataFusion from
/// taking a key a filter pins (`WHERE k = 'a'`) for a constant after the grouping sets, where it is not (DataFusion
/// would drop it from `ORDER BY`). A key is replaced by a placeholder first (which has no children, so the wrapped key
/// is not looked into again), then by its wrapped form.
struct Defaults<'a> {
    /// Each key's text, and whether its type is Nullable.
    keys: &'a [(String, bool)],
    catalog: &'a dyn Tables,
    /// Subqueries entered.
    depth: usize,
    /// Aggregate calls entered (whose arguments read the rows, where a key is never rolled up).
    aggregates: usize,
    placeholders: Vec<(Expr, bool)>,
    error: Option<EngineError>,
}

const PLACEHOLDER: &str = "__tb_grouping_key_";

impl Defaults<'_> {
    /// An aggregate call (not a window function, whose arguments read the grouped rows).
    fn is_aggregate(&self, e: &Expr) -> bool {
        matches!(e, Expr::Function(f) if f.over.is_none() && self.catalog.is_aggregate(&f.name.to_string()))
    }
}

impl VisitorMut for Defaults<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if self.is_aggregate(e) {
            self.aggregates += 1;
        }
        if self.depth == 0
            && self.aggregates == 0
            && !matches!(e, Expr::Nested(_))
            && let text = e.to_string()
            && let Some((_, nullable)) = self.keys.iter().find(|(k, _)| *k == text)
        {
            let placeholder = Expr::Identifier(Ident::new(format!("{PLACEHOLDER}{}", self.placeholders.len())));
            let key = std::mem::replace(e, placeholder);
            self.placeholders.push((key, *nullable));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if self.is_aggregate(e) {
            self.aggregates -= 1;
        }
        if let Expr::Identifier(i) = e
            && let Some(n) = i.value.strip_prefix(PLACEHOLDER).and_then(|n| n.parse::<usize>().ok())
            && let Some((key, nullable)) = self.placeholders.get(n)
        {
            let f = if *nullable { "ch_grouping_key_nullable" } else { "ch_grouping_key" };
            match parse_expr(&format!("{f}({key}, count(*))")) {
                Ok(wrapped) => *e = wrapped,
                Err(error) => {
                    self.error = Some(error);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }
}
