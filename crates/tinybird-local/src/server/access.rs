//! What a request's SQL may read. The SQL is parsed once; this module walks that tree with SQL's scoping rules,
//! checks every table it reads against the caller's scopes, expands the pipes it reads into subqueries (rendered
//! with that pipe's `fixed_params`), and returns the tree together with the [`TableScope`] the engine runs it in.
//! The engine runs exactly that tree and resolves names only through that scope, so:
//!
//! - a name the caller may not read is not in the scope: no CTE, alias, comment or quoting trick reaches it;
//! - a datasource with `DATASOURCES:READ` filters is, in the scope, a view with those filters applied, wherever
//!   the tree reads it (CTE bodies, subqueries, joins, `UNION`s, other pipes);
//! - the datasources a pipe reads, which the caller may read only through that pipe, get names chosen per request
//!   (`__tb_<random>_…`) that no request text can know.

use super::compose::pipe_query;
use super::error::ApiError;
use super::grants::Principal;
use super::state::Workspace;
use crate::engine::compat;
use crate::engine::{ScopedTable, TableScope};
use crate::resources::Pipe;
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Query, SetExpr, TableAlias, TableFactor, VisitMut, VisitorMut, With,
};
use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;
use tinybird_template::{ParamValue, Variables};

/// How deep pipes may read other pipes.
pub(super) const MAX_PIPE_DEPTH: usize = 8;

/// How deeply subqueries may nest in one query, as ClickHouse's `max_subquery_depth` (100 by default).
pub(super) const MAX_SUBQUERY_DEPTH: usize = 100;

/// A query ready for the engine: its tree and the names it may read.
#[derive(Debug)]
pub(super) struct Checked {
    pub query: Query,
    pub scope: TableScope,
}

/// One request's view of the workspace.
pub(super) struct Access<'a> {
    ws: &'a Workspace,
    principal: &'a Principal,
    /// The request's own template variables (before any pipe's `fixed_params`).
    vars: &'a Variables,
    test_mode: bool,
    /// Prefix of this request's private names.
    nonce: String,
    scope: BTreeMap<String, ScopedTable>,
    /// Private names already given to a datasource, so each is filtered once.
    private: BTreeMap<String, String>,
}

impl<'a> Access<'a> {
    pub(super) fn new(ws: &'a Workspace, principal: &'a Principal, vars: &'a Variables, test_mode: bool) -> Self {
        Access {
            ws,
            principal,
            vars,
            test_mode,
            nonce: format!("__tb_{}", uuid::Uuid::new_v4().simple()),
            scope: BTreeMap::new(),
            private: BTreeMap::new(),
        }
    }

    /// Checks a query the caller wrote. `underscore` is what the table name `_` reads (a pipe's result, for an
    /// endpoint's `q` or `/v0/sql?pipeline=`), already checked.
    pub(super) fn check(mut self, mut query: Query, underscore: Option<Query>) -> Result<Checked, ApiError> {
        self.resolve(&mut query, Context::Caller { underscore: underscore.as_ref() }, 0)?;
        Ok(Checked { query, scope: TableScope::Only(self.scope.into_values().collect()) })
    }

    /// A tree already checked (from [`Access::pipe`]), with the scope gathered so far.
    pub(super) fn finish(self, query: Query) -> Checked {
        Checked { query, scope: TableScope::Only(self.scope.into_values().collect()) }
    }

    /// The checked tree of a pipe the caller reads, rendered with the request's variables and the `fixed_params`
    /// the caller's scopes pin on it.
    pub(super) fn pipe(&mut self, pipe: &Pipe) -> Result<Query, ApiError> {
        let fixed = self.principal.read_pipe(&pipe.name)?;
        let mut vars = self.vars.clone();
        overlay(&mut vars, fixed);
        self.expand(pipe, vars, 0)
    }

    fn expand(&mut self, pipe: &Pipe, vars: Variables, depth: usize) -> Result<Query, ApiError> {
        if depth >= MAX_PIPE_DEPTH {
            return Err(ApiError::bad_request(format!("Pipes read each other more than {MAX_PIPE_DEPTH} levels deep")));
        }
        let mut query = pipe_query(pipe, &vars, self.test_mode, self.ws.engine.flavor())?;
        self.resolve(&mut query, Context::Pipe { vars: &vars }, depth + 1)?;
        Ok(query)
    }

    fn resolve(&mut self, query: &mut Query, context: Context<'_>, depth: usize) -> Result<(), ApiError> {
        let mut walker = Walker {
            access: self,
            context,
            depth,
            frames: Vec::new(),
            withs: Vec::new(),
            nesting: 0,
            array_joins: HashSet::new(),
            error: None,
        };
        let _ = VisitMut::visit(query, &mut walker);
        match walker.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The filters the caller's scopes put on a datasource, parsed.
    fn filters(&self, datasource: &str) -> Result<Vec<Expr>, ApiError> {
        self.principal
            .filters_for(datasource)
            .iter()
            .map(|f| {
                compat::parse_condition(f).map_err(|e| {
                    ApiError::bad_request(format!(
                        "The DATASOURCES:READ filter of the token on '{datasource}' is invalid: {e}"
                    ))
                })
            })
            .collect()
    }

    /// Adds a name to the scope.
    fn allow(&mut self, name: String, table: &str, filters: Vec<Expr>) {
        self.scope.entry(name.clone()).or_insert(ScopedTable { name, table: table.to_string(), filters });
    }

    /// Whether a table function only generates rows: `numbers(10)`, `zeros(3)`, … read no table, file or server, so
    /// any caller may use them; their arguments are walked like any expression. The DataFusion engine answers
    /// fewer of them than the ClickHouse engine.
    fn generator(&self, name: &ObjectName) -> bool {
        let generators = match self.ws.engine.flavor() {
            compat::Flavor::ClickHouse => crate::engine::GENERATORS,
            compat::Flavor::DataFusion => compat::GENERATORS,
        };
        single_name(name).is_some_and(|n| generators.iter().any(|g| g.eq_ignore_ascii_case(&n)))
    }

    /// What a table reference outside every visible CTE reads; None leaves it as it is (already allowed by name).
    fn table(&mut self, name: &str, context: &Context<'_>, depth: usize) -> Result<Replacement, ApiError> {
        if name.starts_with("__tb_") {
            return Err(ApiError::not_found(name));
        }
        if let (Context::Caller { underscore: Some(pipe) }, "_") = (context, name) {
            return Ok(Replacement::Subquery(Box::new((*pipe).clone())));
        }
        let quarantine_of = name.strip_suffix("_quarantine").filter(|ds| self.ws.is_datasource(ds));
        if self.ws.is_datasource(name) || quarantine_of.is_some() {
            let filters = match quarantine_of {
                // Quarantined rows are raw text: only the admin reads them, and no filter applies.
                Some(_) if matches!(context, Context::Caller { .. }) && !self.principal.is_admin() => {
                    return Err(ApiError::forbidden(format!(
                        "Not enough permissions: only an admin token reads quarantine datasource '{name}'"
                    )));
                }
                Some(_) => Vec::new(),
                None => {
                    if matches!(context, Context::Caller { .. }) {
                        self.principal.read_datasource(name)?;
                    }
                    self.filters(name)?
                }
            };
            if self.ws.engine.table_columns(name).is_none() {
                return Err(ApiError::not_found(name));
            }
            return Ok(match context {
                Context::Caller { .. } => {
                    self.allow(name.to_string(), name, filters);
                    Replacement::Keep
                }
                Context::Pipe { .. } => {
                    let next = self.private.len();
                    let private = self
                        .private
                        .entry(name.to_string())
                        .or_insert_with(|| format!("{}_{next}", self.nonce))
                        .clone();
                    self.allow(private.clone(), name, filters);
                    Replacement::Rename(private)
                }
            });
        }
        let Some(pipe) = self.ws.pipe(name) else { return Err(ApiError::not_found(name)) };
        let vars = match context {
            Context::Caller { .. } => {
                let fixed = self.principal.read_pipe(name)?;
                let mut vars = self.vars.clone();
                overlay(&mut vars, fixed);
                vars
            }
            // Reading a pipe the caller may read covers what it reads; a JWT's pins on an inner pipe still apply.
            Context::Pipe { vars } => {
                let mut vars = (*vars).clone();
                overlay(&mut vars, self.principal.fixed_params(name)?.unwrap_or_default());
                vars
            }
        };
        Ok(Replacement::Subquery(Box::new(self.expand(&pipe, vars, depth)?)))
    }
}

fn overlay(vars: &mut Variables, fixed: serde_json::Map<String, serde_json::Value>) {
    if !fixed.is_empty() {
        let fixed: Variables = fixed.into_iter().map(|(k, v)| (k, ParamValue::Json(v))).collect();
        vars.overlay(&fixed);
    }
}

/// Where a tree came from: the caller's own text, or a pipe's nodes.
enum Context<'c> {
    Caller { underscore: Option<&'c Query> },
    Pipe { vars: &'c Variables },
}

enum Replacement {
    Keep,
    Rename(String),
    Subquery(Box<Query>),
}

/// Walks one tree, keeping the CTE names visible at each point.
struct Walker<'w, 'a> {
    access: &'w mut Access<'a>,
    context: Context<'w>,
    depth: usize,
    /// CTE names visible, innermost last.
    frames: Vec<HashSet<String>>,
    /// The WITH clause taken off each query being walked (restored after it), and whether it pushed a frame.
    withs: Vec<Option<With>>,
    /// Queries open around the current point.
    nesting: usize,
    /// The relations of `ARRAY JOIN`s seen so far: columns or expressions of the row, never tables.
    array_joins: HashSet<*const TableFactor>,
    error: Option<ApiError>,
}

impl Walker<'_, '_> {
    fn visible_cte(&self, name: &str) -> bool {
        self.frames.iter().any(|f| f.contains(name))
    }

    fn fail(&mut self, e: ApiError) -> ControlFlow<()> {
        self.error = Some(e);
        ControlFlow::Break(())
    }
}

/// Only SELECTs run: `SELECT … INTO` would create a table.
fn writes(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => select.into.is_some(),
        SetExpr::SetOperation { left, right, .. } => writes(left) || writes(right),
        SetExpr::Query(_) | SetExpr::Values(_) | SetExpr::Table(_) => false,
        _ => true,
    }
}

fn single_name(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Some(ident.value.clone()),
        _ => None,
    }
}

impl VisitorMut for Walker<'_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.nesting += 1;
        if self.nesting > MAX_SUBQUERY_DEPTH {
            return self.fail(ApiError::bad_request(format!(
                "DB::Exception: Maximum subquery depth exceeded: subqueries nest more than {MAX_SUBQUERY_DEPTH} levels \
                 (max_subquery_depth). (TOO_DEEP_SUBQUERIES)"
            )));
        }
        if writes(&query.body) {
            return self
                .fail(ApiError::bad_request("DB::Exception: Only SELECT queries are supported: they cannot write"));
        }
        if !matches!(query.body.as_ref(), SetExpr::Select(_) | SetExpr::SetOperation { .. } | SetExpr::Query(_)) {
            return self.fail(ApiError::bad_request("DB::Exception: Only SELECT queries are supported"));
        }
        let mut with = query.with.take();
        if let Some(w) = &mut with {
            // Each CTE's body sees the CTEs before it in the same WITH (and every enclosing one), and itself only in
            // a `WITH RECURSIVE` (which the ClickHouse engine alone parses). A name seen as a CTE is never bound to
            // a table: at worst it reads nothing.
            let mut seen = HashSet::new();
            for cte in &mut w.cte_tables {
                if w.recursive {
                    seen.insert(cte.alias.name.value.clone());
                }
                self.frames.push(seen.clone());
                let flow = VisitMut::visit(cte.query.as_mut(), self);
                self.frames.pop();
                if flow.is_break() {
                    return flow;
                }
                seen.insert(cte.alias.name.value.clone());
            }
            self.frames.push(seen);
        }
        self.withs.push(with);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.nesting -= 1;
        if let Some(with) = self.withs.pop().flatten() {
            self.frames.pop();
            query.with = Some(with);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
        self.array_joins.extend(crate::engine::compat::array_join_relations(select));
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if self.array_joins.contains(&(factor as *const TableFactor)) {
            // `ARRAY JOIN tags AS tag` unfolds a column of the row (ClickHouse engine only): no table is read.
            if let TableFactor::Table {
                args: None,
                with_hints,
                version: None,
                partitions,
                sample: None,
                json_path: None,
                ..
            } = factor
                && with_hints.is_empty()
                && partitions.is_empty()
            {
                return ControlFlow::Continue(());
            }
            // `ARRAY JOIN e1 AS a1, e2 AS a2`: expressions of the row, visited (and checked) as every expression is.
            if crate::engine::compat::array_join_items(factor).is_some() {
                return ControlFlow::Continue(());
            }
            return self.fail(
                crate::engine::EngineError::Unsupported("ARRAY JOIN of anything but a column name".into()).into(),
            );
        }
        let (name, alias) = match factor {
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => return ControlFlow::Continue(()),
            TableFactor::Table {
                name,
                alias,
                args,
                with_hints,
                version,
                partitions,
                sample,
                index_hints,
                json_path,
                ..
            } => {
                if args.is_some() && !self.access.generator(name) {
                    let what = name.to_string();
                    return self
                        .fail(crate::engine::EngineError::Unsupported(format!("table function `{what}`")).into());
                }
                if !with_hints.is_empty()
                    || version.is_some()
                    || !partitions.is_empty()
                    || sample.is_some()
                    || !index_hints.is_empty()
                    || json_path.is_some()
                {
                    return self
                        .fail(crate::engine::EngineError::Unsupported(format!("table hints on `{name}`")).into());
                }
                if args.is_some() {
                    // A generator (checked above): nothing to resolve.
                    return ControlFlow::Continue(());
                }
                let Some(single) = single_name(name) else {
                    return self.fail(ApiError::not_found(&name.to_string()));
                };
                (single, alias.clone())
            }
            other => {
                let kind = other.to_string();
                let kind: String = kind.chars().take(40).collect();
                return self.fail(crate::engine::EngineError::Unsupported(format!("table expression `{kind}`")).into());
            }
        };
        if self.visible_cte(&name) {
            return ControlFlow::Continue(());
        }
        let replacement = match self.access.table(&name, &self.context, self.depth) {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };
        // Keep `name.column` references working: a replaced table keeps its name as its alias.
        let alias = alias.unwrap_or(TableAlias {
            explicit: true,
            name: Ident::with_quote('`', name.clone()),
            columns: vec![],
            at: None,
        });
        match replacement {
            Replacement::Keep => {}
            Replacement::Rename(private) => {
                if let TableFactor::Table { name: n, alias: a, .. } = factor {
                    *n = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('`', private))]);
                    *a = Some(alias);
                }
            }
            Replacement::Subquery(query) => {
                *factor = TableFactor::Derived { lateral: false, subquery: query, alias: Some(alias), sample: None };
            }
        }
        ControlFlow::Continue(())
    }
}
