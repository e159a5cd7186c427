//! Datasources: the facts `#[derive(Datasource)]` states about a row struct.

/// A Tinybird datasource, declared by `#[derive(Datasource)]` on its row struct.
///
/// The struct is the row type for ingestion (`client.ingest::<D>(&rows)`) and for typed
/// `DATASOURCES:READ` filters (`Scope::datasource_read::<D>().filter(|c| c.user_id.eq(42))`).
pub trait Datasource: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {
    /// The datasource's name.
    const NAME: &'static str;
    /// Typed column handles, one public field per column (generated), used to build filters.
    type Columns: Default;
    /// The whole definition: columns, engine, indexes, tokens. Used for datafiles, deploys and the local server.
    fn definition() -> DatasourceDef;
}

/// A datasource definition, independent of Rust types: what a `.datasource` file says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatasourceDef {
    pub name: String,
    pub description: Option<String>,
    pub columns: Vec<ColumnDef>,
    pub engine: EngineDef,
    pub indexes: Vec<IndexDef>,
    pub tokens: Vec<TokenDef>,
}

/// One schema column: `` `name` Type [DEFAULT expr] [CODEC(...)] `json:$.path` ``.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnDef {
    pub name: String,
    /// Tinybird type string, e.g. `LowCardinality(String)`.
    pub ty: String,
    /// JSONPath, e.g. `$.user.id`; `None` when the datasource has no JSON paths.
    pub json_path: Option<String>,
    pub default: Option<String>,
    pub codec: Option<String>,
}

/// The table engine and its keys. `kind` is the engine name (`MergeTree`, `ReplacingMergeTree`, …, `Null`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineDef {
    pub kind: String,
    pub sorting_key: Option<String>,
    pub partition_key: Option<String>,
    pub primary_key: Option<String>,
    pub sampling_key: Option<String>,
    pub ttl: Option<String>,
    pub ver: Option<String>,
    pub sign: Option<String>,
    pub version: Option<String>,
    pub is_deleted: Option<String>,
    /// SummingMergeTree columns.
    pub columns: Option<String>,
    pub settings: Option<String>,
}

/// A data-skipping index: `name expr TYPE type GRANULARITY n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexDef {
    pub name: String,
    pub expr: String,
    pub ty: String,
    pub granularity: u32,
}

/// A `TOKEN name READ|APPEND` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDef {
    pub name: String,
    pub permission: TokenPermission,
}

/// What a datafile token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPermission {
    Read,
    Append,
}
