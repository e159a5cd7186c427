//! JWT scopes (Tinybird's JWT docs, payload): what a token may read or append to, with the fixed params or row filter that pin it.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::JwtError;
use crate::datasource::Datasource;
use crate::endpoint::{Endpoint, FixedParams};
use crate::filter::Filter;

/// The type of a scope, as it appears in the payload's `scopes[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScopeKind {
    /// `PIPES:READ`: call a published endpoint; `fixed_params` pin some of its parameters.
    #[serde(rename = "PIPES:READ")]
    PipesRead,
    /// `DATASOURCES:READ`: read a datasource; `filter` restricts the rows.
    #[serde(rename = "DATASOURCES:READ")]
    DatasourcesRead,
    /// `DATASOURCES:APPEND`: append rows to a datasource.
    #[serde(rename = "DATASOURCES:APPEND")]
    DatasourcesAppend,
}

impl ScopeKind {
    /// The wire name, e.g. `PIPES:READ`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScopeKind::PipesRead => "PIPES:READ",
            ScopeKind::DatasourcesRead => "DATASOURCES:READ",
            ScopeKind::DatasourcesAppend => "DATASOURCES:APPEND",
        }
    }
}

impl fmt::Display for ScopeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scope of a JWT: a resource, what the token may do with it, and the fixed params or row filter that pin it.
///
/// Build one with the typed constructors, which take the resource name and the parameter and column types from the
/// Rust declarations, or with the `*_named` constructors for resources not declared in Rust:
///
/// ```
/// # use tinybird_core::{Datasource, DatasourceDef, Endpoint, EndpointDef, FixedParams};
/// # use tinybird_core::{filter::Column, params::{FixedValue, QueryParams}};
/// # // What `#[derive(Endpoint)]` and `#[derive(Datasource)]` generate, written by hand.
/// # struct UserAnalytics;
/// # #[derive(Default)] struct UserAnalyticsFixed { user_id: Option<u64> }
/// # impl FixedParams for UserAnalyticsFixed {
/// #     fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
/// #         self.user_id.iter().map(|v| ("user_id".to_owned(), v.to_fixed())).collect()
/// #     }
/// # }
/// # impl Endpoint for UserAnalytics {
/// #     const NAME: &'static str = "user_analytics";
/// #     type Output = serde_json::Value;
/// #     type Fixed = UserAnalyticsFixed;
/// #     fn definition() -> EndpointDef { EndpointDef::default() }
/// #     fn to_params(&self) -> QueryParams { QueryParams::new() }
/// # }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Events { user_id: u64, country: String }
/// # struct EventsColumns { user_id: Column<u64>, country: Column<String> }
/// # impl Default for EventsColumns {
/// #     fn default() -> Self { EventsColumns { user_id: Column::new("user_id"), country: Column::new("country") } }
/// # }
/// # impl Datasource for Events {
/// #     const NAME: &'static str = "events";
/// #     type Columns = EventsColumns;
/// #     fn definition() -> DatasourceDef { DatasourceDef::default() }
/// # }
/// use tinybird_core::jwt::Scope;
///
/// // `UserAnalytics` is a `#[derive(Endpoint)]` struct, `Events` a `#[derive(Datasource)]` struct.
/// let scopes: [Scope; 3] = [
///     Scope::pipe::<UserAnalytics>().fixed(|p| p.user_id = Some(42)).into(),
///     Scope::datasource_read::<Events>().filter(|c| c.user_id.eq(42).and(c.country.in_(["ES", "FR"]))).into(),
///     Scope::datasource_append::<Events>(),
/// ];
/// assert_eq!(scopes[0].fixed_params().unwrap()["user_id"], 42);
/// assert_eq!(scopes[1].filter(), Some("user_id = 42 AND country IN ('ES', 'FR')"));
/// ```
///
/// ```
/// use tinybird_core::jwt::{Scope, ScopeKind};
///
/// let scope: Scope = Scope::pipe_named("top_pages").fixed_param("org_id", "acme").into();
/// assert_eq!(scope.kind(), ScopeKind::PipesRead);
/// assert_eq!(scope.resource(), "top_pages");
/// assert_eq!(scope.fixed_params().unwrap()["org_id"], "acme");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scope {
    #[serde(rename = "type")]
    kind: ScopeKind,
    resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed_params: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    /// A mistake found while building the scope, reported when the JWT is signed (builders report errors once).
    #[serde(skip)]
    problem: Option<JwtError>,
}

impl Scope {
    /// `PIPES:READ` on endpoint `E`. Pin parameters with [`PipeScope::fixed`].
    pub fn pipe<E: Endpoint>() -> PipeScope<E> {
        PipeScope { fixed: E::Fixed::default(), _endpoint: PhantomData }
    }

    /// `DATASOURCES:READ` on datasource `D`. Restrict rows with [`DatasourceReadScope::filter`].
    pub fn datasource_read<D: Datasource>() -> DatasourceReadScope<D> {
        DatasourceReadScope { filters: Vec::new(), _datasource: PhantomData }
    }

    /// `DATASOURCES:APPEND` on datasource `D`.
    pub fn datasource_append<D: Datasource>() -> Scope {
        Scope::new(ScopeKind::DatasourcesAppend, D::NAME.to_owned())
    }

    /// `PIPES:READ` on a pipe known only by name (or id). Pin parameters with JSON values.
    pub fn pipe_named(pipe: impl Into<String>) -> NamedPipeScope {
        NamedPipeScope { scope: Scope::new(ScopeKind::PipesRead, pipe.into()) }
    }

    /// `DATASOURCES:READ` on a datasource known only by name (or id). A row filter can only be raw SQL here.
    pub fn datasource_read_named(datasource: impl Into<String>) -> NamedDatasourceReadScope {
        NamedDatasourceReadScope { scope: Scope::new(ScopeKind::DatasourcesRead, datasource.into()) }
    }

    /// `DATASOURCES:APPEND` on a datasource known only by name (or id).
    pub fn datasource_append_named(datasource: impl Into<String>) -> Scope {
        Scope::new(ScopeKind::DatasourcesAppend, datasource.into())
    }

    fn new(kind: ScopeKind, resource: String) -> Scope {
        let problem = resource.trim().is_empty().then_some(JwtError::EmptyResource { kind });
        Scope { kind, resource, fixed_params: None, filter: None, problem }
    }

    /// The scope's type.
    pub fn kind(&self) -> ScopeKind {
        self.kind
    }

    /// The pipe or datasource name.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The pinned parameters (`PIPES:READ` only), when any.
    pub fn fixed_params(&self) -> Option<&Map<String, Value>> {
        self.fixed_params.as_ref()
    }

    /// The row filter (`DATASOURCES:READ` only), when any.
    pub fn filter(&self) -> Option<&str> {
        self.filter.as_deref()
    }

    /// The first mistake made while building this scope, if any.
    pub(crate) fn check(&self) -> Result<(), JwtError> {
        match &self.problem {
            Some(problem) => Err(problem.clone()),
            None => Ok(()),
        }
    }

    fn note(&mut self, problem: JwtError) {
        self.problem.get_or_insert(problem);
    }

    fn add_filter(&mut self, sql: String) {
        if sql.trim().is_empty() {
            let resource = self.resource.clone();
            self.note(JwtError::EmptyFilter { resource });
        }
        // Several filters all apply: each is parenthesized so its own AND/OR cannot leak into the others.
        self.filter = Some(match self.filter.take() {
            None => sql,
            Some(previous) => format!("({previous}) AND ({sql})"),
        });
    }

    fn set_fixed(&mut self, params: Map<String, Value>) {
        for (name, value) in &params {
            if name.trim().is_empty() {
                let resource = self.resource.clone();
                self.note(JwtError::EmptyFixedParamName { resource });
            }
            if let Some(found) = unusable_fixed_value(value) {
                let (resource, param) = (self.resource.clone(), name.clone());
                self.note(JwtError::FixedParamValue { resource, param, found });
            }
        }
        match &mut self.fixed_params {
            Some(existing) => existing.extend(params),
            None if params.is_empty() => {}
            None => self.fixed_params = Some(params),
        }
    }
}

/// Tinybird takes scalars (and arrays of scalars, for array params) as fixed params.
fn unusable_fixed_value(value: &Value) -> Option<&'static str> {
    match value {
        Value::Null => Some("null"),
        Value::Object(_) => Some("an object"),
        Value::Array(items) if items.iter().any(|v| matches!(v, Value::Array(_) | Value::Object(_) | Value::Null)) => {
            Some("an array holding null, objects or arrays")
        }
        _ => None,
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A `PIPES:READ` scope on endpoint `E`, pinning some of its parameters.
pub struct PipeScope<E: Endpoint> {
    fixed: E::Fixed,
    _endpoint: PhantomData<fn() -> E>,
}

impl<E: Endpoint> PipeScope<E> {
    /// Pins parameters: the closure gets `E`'s fixed-params struct, with one `Option` field per parameter of the
    /// endpoint, typed as the parameter. Set the ones to pin: `.fixed(|p| p.user_id = Some(user_id))`.
    ///
    /// Only `E`'s parameters exist on that struct, each with its own type, so pinning a parameter the endpoint lacks,
    /// or with the wrong type, does not compile. The values keep their JSON type in the payload (Tinybird's JWT docs, fixed params), and
    /// Tinybird uses them whatever the request says. Calling `fixed` again sets more fields on the same struct.
    pub fn fixed(mut self, pin: impl FnOnce(&mut E::Fixed)) -> Self {
        pin(&mut self.fixed);
        self
    }
}

impl<E: Endpoint> From<PipeScope<E>> for Scope {
    fn from(scope: PipeScope<E>) -> Scope {
        let mut out = Scope::new(ScopeKind::PipesRead, E::NAME.to_owned());
        out.set_fixed(scope.fixed.to_json());
        out
    }
}

impl<E: Endpoint> Clone for PipeScope<E>
where
    E::Fixed: Clone,
{
    fn clone(&self) -> Self {
        PipeScope { fixed: self.fixed.clone(), _endpoint: PhantomData }
    }
}

impl<E: Endpoint> fmt::Debug for PipeScope<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeScope").field("pipe", &E::NAME).field("fixed_params", &self.fixed.to_json()).finish()
    }
}

/// A `DATASOURCES:READ` scope on datasource `D`, optionally restricted by a row filter.
pub struct DatasourceReadScope<D: Datasource> {
    filters: Vec<String>,
    _datasource: PhantomData<fn() -> D>,
}

impl<D: Datasource> DatasourceReadScope<D> {
    /// Restricts the rows this token can read, with a condition over `D`'s typed columns:
    /// `.filter(|c| c.user_id.eq(42).and(c.country.in_(["ES", "FR"])))`.
    ///
    /// Column names come from the datasource declaration (a column it lacks does not compile), values must match
    /// the column's type and are rendered as escaped ClickHouse literals. Calling `filter` again adds a condition
    /// that must hold too (`AND`).
    pub fn filter(mut self, condition: impl FnOnce(&D::Columns) -> Filter) -> Self {
        let columns = D::Columns::default();
        self.filters.push(condition(&columns).into_sql());
        self
    }

    /// Restricts the rows with a raw SQL condition, used as given. **Nothing is escaped or checked**: never build it
    /// from user input. Prefer [`filter`](Self::filter), which escapes values and checks column names.
    pub fn filter_sql_unchecked(mut self, sql: impl Into<String>) -> Self {
        self.filters.push(sql.into());
        self
    }
}

impl<D: Datasource> From<DatasourceReadScope<D>> for Scope {
    fn from(scope: DatasourceReadScope<D>) -> Scope {
        let mut out = Scope::new(ScopeKind::DatasourcesRead, D::NAME.to_owned());
        for sql in scope.filters {
            out.add_filter(sql);
        }
        out
    }
}

impl<D: Datasource> Clone for DatasourceReadScope<D> {
    fn clone(&self) -> Self {
        DatasourceReadScope { filters: self.filters.clone(), _datasource: PhantomData }
    }
}

impl<D: Datasource> fmt::Debug for DatasourceReadScope<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatasourceReadScope").field("datasource", &D::NAME).field("filters", &self.filters).finish()
    }
}

/// A `PIPES:READ` scope on a pipe known only by name, pinning parameters with JSON values.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPipeScope {
    scope: Scope,
}

impl NamedPipeScope {
    /// Pins parameters from a JSON object (`serde_json::json!({"org_id": "acme", "limit": 10})` or a
    /// `serde_json::Map`). Values keep their JSON type. Anything but an object, and values Tinybird cannot use
    /// (null, objects), are reported when the JWT is signed.
    pub fn fixed_json(mut self, params: impl Into<Value>) -> Self {
        match params.into() {
            Value::Object(map) => self.scope.set_fixed(map),
            other => {
                let resource = self.scope.resource.clone();
                self.scope.note(JwtError::FixedParamsNotObject { resource, found: json_type(&other) });
            }
        }
        self
    }

    /// Pins one parameter to a JSON value (`"acme"`, `42`, `true`, …).
    pub fn fixed_param(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let mut map = Map::new();
        map.insert(name.into(), value.into());
        self.scope.set_fixed(map);
        self
    }
}

impl From<NamedPipeScope> for Scope {
    fn from(scope: NamedPipeScope) -> Scope {
        scope.scope
    }
}

/// A `DATASOURCES:READ` scope on a datasource known only by name.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedDatasourceReadScope {
    scope: Scope,
}

impl NamedDatasourceReadScope {
    /// Restricts the rows with a filter built from hand-made [`Column`](crate::filter::Column) handles (values are
    /// escaped; column names are not checked against any declaration here).
    pub fn filter_expr(mut self, filter: Filter) -> Self {
        self.scope.add_filter(filter.into_sql());
        self
    }

    /// Restricts the rows with a raw SQL condition, used as given. **Nothing is escaped or checked**: never build it
    /// from user input.
    pub fn filter_sql_unchecked(mut self, sql: impl Into<String>) -> Self {
        self.scope.add_filter(sql.into());
        self
    }
}

impl From<NamedDatasourceReadScope> for Scope {
    fn from(scope: NamedDatasourceReadScope) -> Scope {
        scope.scope
    }
}
