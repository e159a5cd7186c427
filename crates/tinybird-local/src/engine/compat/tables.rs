//! The tables a query reads: the names it references (CTEs excluded), renaming one, and what the engine knows of
//! them ([`Tables`]).

use super::*;

/// Whether an expression reads any of these names.
pub(super) fn uses_any(expr: &Expr, names: &HashMap<String, Expr>) -> bool {
    struct Uses<'a>(&'a HashMap<String, Expr>);
    impl Visitor for Uses<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(i) if self.0.contains_key(&i.value) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    Visit::visit(expr, &mut Uses(names)).is_break()
}

pub(super) struct InlineScalars<'a> {
    pub(super) scalars: &'a HashMap<String, Expr>,
    pub(super) error: Option<EngineError>,
}

impl VisitorMut for InlineScalars<'_> {
    type Break = ();

    /// `WITH 5 AS x SELECT x` names its column `x` in ClickHouse: a bare reference selected keeps the name.
    fn pre_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::SelectItem;
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(Expr::Identifier(ident)) = item
                && self.scalars.contains_key(&ident.value)
            {
                let alias = ident.clone();
                *item = SelectItem::ExprWithAlias { expr: Expr::Identifier(ident.clone()), alias };
            } else if let SelectItem::UnnamedExpr(expr) = item
                && uses_any(expr, self.scalars)
            {
                // ClickHouse names `five + 1` `plus(five, 1)`: named before the scalar is inlined, which would change
                // the name.
                let Some(name) = crate::engine::names::column_name(expr) else {
                    self.error = Some(EngineError::Unsupported(format!(
                        "an unaliased column using a `WITH … AS name` scalar (`{expr}`): give it an alias"
                    )));
                    return ControlFlow::Break(());
                };
                let expr = std::mem::replace(expr, Expr::value(SqlValue::Null));
                *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('`', name) };
            }
        }
        ControlFlow::Continue(())
    }
    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Identifier(ident) = expr
            && let Some(value) = self.scalars.get(&ident.value)
        {
            *expr = Expr::Nested(Box::new(value.clone()));
        }
        ControlFlow::Continue(())
    }
}

/// Renames every reference to table `from` (outside CTEs of that name) to `to`.
pub fn rename_table(query: &mut Query, from: &str, to: &str) {
    struct Rename<'a> {
        from: &'a str,
        to: &'a str,
        ctes: HashSet<String>,
    }
    impl VisitorMut for Rename<'_> {
        type Break = ();
        fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, alias, .. } = factor
                && single_name(name).as_deref() == Some(self.from)
                && !self.ctes.contains(self.from)
            {
                if alias.is_none() {
                    // Keep `from.column` references working.
                    *alias = Some(datafusion::sql::sqlparser::ast::TableAlias {
                        explicit: true,
                        name: Ident::new(self.from),
                        columns: vec![],
                        at: None,
                    });
                }
                name.0 = vec![ObjectNamePart::Identifier(Ident::with_quote('`', self.to))];
            }
            ControlFlow::Continue(())
        }
    }
    let ctes = cte_names(query);
    let _ = VisitMut::visit(query, &mut Rename { from, to, ctes });
}

/// Whether a join is one of ClickHouse's `ARRAY JOIN`s (plain, `LEFT`, `INNER`), which unfold a column or an
/// expression of the row rather than join a table.
pub fn is_array_join(op: &datafusion::sql::sqlparser::ast::JoinOperator) -> bool {
    use datafusion::sql::sqlparser::ast::JoinOperator;
    matches!(op, JoinOperator::ArrayJoin | JoinOperator::LeftArrayJoin | JoinOperator::InnerArrayJoin)
}

/// The relations of a SELECT's `ARRAY JOIN`s: they name columns or expressions, not tables.
pub fn array_join_relations(
    select: &datafusion::sql::sqlparser::ast::Select,
) -> Vec<*const datafusion::sql::sqlparser::ast::TableFactor> {
    select
        .from
        .iter()
        .flat_map(|t| t.joins.iter())
        .filter(|j| is_array_join(&j.join_operator))
        .map(|j| &j.relation as *const datafusion::sql::sqlparser::ast::TableFactor)
        .collect()
}

pub(super) fn single_name(name: &datafusion::sql::sqlparser::ast::ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Some(ident.value.clone()),
        _ => None,
    }
}

/// Every CTE name defined anywhere in the query.
pub(crate) fn cte_names(query: &Query) -> HashSet<String> {
    struct Ctes(HashSet<String>);
    impl Visitor for Ctes {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                self.0.extend(with.cte_tables.iter().map(|c| c.alias.name.value.clone()));
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = Ctes(HashSet::new());
    let _ = Visit::visit(query, &mut v);
    v.0
}

/// Tables the query reads, CTE names and table functions excluded, in first-seen order.
pub fn referenced_tables(query: &Query) -> Vec<String> {
    struct Tables<'a> {
        ctes: &'a HashSet<String>,
        seen: Vec<String>,
    }
    impl Visitor for Tables<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &datafusion::sql::sqlparser::ast::TableFactor) -> ControlFlow<()> {
            let datafusion::sql::sqlparser::ast::TableFactor::Table { name: r, args: None, .. } = t else {
                return ControlFlow::Continue(());
            };
            let name = single_name(r).unwrap_or_else(|| r.to_string());
            if !self.ctes.contains(&name) && !self.seen.contains(&name) {
                self.seen.push(name);
            }
            ControlFlow::Continue(())
        }
    }
    let ctes = cte_names(query);
    let mut v = Tables { ctes: &ctes, seen: Vec::new() };
    let _ = Visit::visit(query, &mut v);
    v.seen
}

/// What translating a query needs to know about the tables it may read.
pub trait Tables {
    /// Whether some table declares a column of this name `Nullable`: ClickHouse's `min`/`max`/`any`/`avg`… of an
    /// empty set are the type's default (0, '', nan) for a plain column and NULL for a `Nullable` one.
    fn nullable_column(&self, column: &str) -> bool;
    /// A table's columns and their types, in order (None for a name that is not a table): a joined column's name
    /// depends on whether another table of the join has a column of the same name.
    fn columns(&self, table: &str) -> Option<Vec<(String, crate::types::ChType)>>;
    /// The type of a column of this name, when every table that has one declares the same type.
    fn column_type(&self, column: &str) -> Option<crate::types::ChType>;
    /// Whether some table declares a column of this name with a type stored as text here (`UUID`, `IPv4`, an enum):
    /// its values keep their ClickHouse type only when selected as the column itself.
    fn text_stored_column(&self, column: &str) -> bool;
    /// Whether some table has a column of this name, whatever its type.
    fn has_column(&self, column: &str) -> bool {
        self.column_type(column).is_some()
    }
    /// Whether a function of this name, as the rewrite writes it for DataFusion, is an aggregate.
    fn is_aggregate(&self, _function: &str) -> bool {
        false
    }
}

/// No tables: a query translated without a catalog.
pub struct NoTables;

impl Tables for NoTables {
    fn nullable_column(&self, _: &str) -> bool {
        false
    }
    fn columns(&self, _: &str) -> Option<Vec<(String, crate::types::ChType)>> {
        None
    }
    fn column_type(&self, _: &str) -> Option<crate::types::ChType> {
        None
    }
    fn text_stored_column(&self, _: &str) -> bool {
        false
    }
}
