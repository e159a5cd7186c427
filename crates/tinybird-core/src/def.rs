//! Definitions: what a `.datasource` or `.pipe` file says, as plain data independent of Rust types. The derives
//! produce them, `datafile` reads and writes them, `Project` groups them; re-exported where they are used
//! (`datasource::DatasourceDef`, `endpoint::EndpointDef`, `datafile::DatafileSetting`, …).

use crate::row::RowColumn;

/// A datasource definition, independent of Rust types: what a `.datasource` file says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatasourceDef {
    /// The datasource's name.
    pub name: String,
    /// `DESCRIPTION` of the datasource.
    pub description: Option<String>,
    /// `SCHEMA` columns, in order.
    pub columns: Vec<ColumnDef>,
    /// `ENGINE` and its keys.
    pub engine: EngineDef,
    /// `INDEXES`.
    pub indexes: Vec<IndexDef>,
    /// `TOKEN <name> READ|APPEND` lines.
    pub tokens: Vec<TokenDef>,
    /// Keywords Tinybird accepts that this SDK keeps without interpreting (`TAGS`, `SHARED_WITH >`,
    /// `FORWARD_QUERY >`, `BACKFILL`, `KAFKA_*`, `IMPORT_*`, `PG_*`, …), in file order. The datafile writer emits them
    /// back after the engine; nothing else in the SDK reads them.
    pub settings: Vec<DatafileSetting>,
}

/// One schema column: `` `name` Type [DEFAULT expr] [CODEC(...)] `json:$.path` ``.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnDef {
    /// The column name (the row's wire name).
    pub name: String,
    /// Tinybird type string, e.g. `LowCardinality(String)`.
    pub ty: String,
    /// JSONPath, e.g. `$.user.id`; `None` when the datasource has no JSON paths.
    pub json_path: Option<String>,
    /// `DEFAULT` expression.
    pub default: Option<String>,
    /// `CODEC(…)` argument, e.g. `ZSTD(1)`.
    pub codec: Option<String>,
}

/// The table engine and its keys. `kind` is the engine name (`MergeTree`, `ReplacingMergeTree`, …, `Null`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineDef {
    /// Engine name.
    pub kind: String,
    /// `ENGINE_SORTING_KEY`.
    pub sorting_key: Option<String>,
    /// `ENGINE_PARTITION_KEY`.
    pub partition_key: Option<String>,
    /// `ENGINE_PRIMARY_KEY`.
    pub primary_key: Option<String>,
    /// `ENGINE_SAMPLING_KEY`.
    pub sampling_key: Option<String>,
    /// `ENGINE_TTL`.
    pub ttl: Option<String>,
    /// `ENGINE_VER` (ReplacingMergeTree).
    pub ver: Option<String>,
    /// `ENGINE_SIGN` (Collapsing and VersionedCollapsing).
    pub sign: Option<String>,
    /// `ENGINE_VERSION` (VersionedCollapsingMergeTree).
    pub version: Option<String>,
    /// `ENGINE_IS_DELETED` (ReplacingMergeTree).
    pub is_deleted: Option<String>,
    /// SummingMergeTree columns.
    pub columns: Option<String>,
    /// `ENGINE_SETTINGS`, e.g. `index_granularity=8192`.
    pub settings: Option<String>,
}

/// A data-skipping index: `name expr TYPE type GRANULARITY n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexDef {
    /// Index name.
    pub name: String,
    /// Indexed expression.
    pub expr: String,
    /// Index type, e.g. `bloom_filter(0.01)`.
    pub ty: String,
    /// `GRANULARITY`.
    pub granularity: u32,
}

/// A `TOKEN name READ|APPEND` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDef {
    /// Token name.
    pub name: String,
    /// What it may do.
    pub permission: TokenPermission,
}

/// What a datafile token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPermission {
    /// `READ`.
    Read,
    /// `APPEND` (datasources only).
    Append,
}

/// An endpoint's definition, independent of Rust types: what a `.pipe` file says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointDef {
    /// The pipe's name.
    pub name: String,
    /// `DESCRIPTION` of the pipe.
    pub description: Option<String>,
    /// The nodes, in order; the last one is published.
    pub nodes: Vec<NodeDef>,
    /// The parameters, in declaration order.
    pub params: Vec<ParamDef>,
    /// The columns the endpoint returns.
    pub output: Vec<RowColumn>,
    /// `TOKEN <name> READ` lines.
    pub tokens: Vec<TokenDef>,
    /// Cache TTL in seconds, when the endpoint is cached.
    pub cache_ttl: Option<u32>,
    /// Pipe-level keywords (before the first `NODE`) that this SDK keeps without interpreting, such as `TAGS`, in
    /// file order; written back by the datafile writer.
    pub settings: Vec<DatafileSetting>,
}

/// One node of a pipe. The last node is the endpoint node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeDef {
    /// The node's name (other nodes select from it by this name).
    pub name: String,
    /// The node's `DESCRIPTION`.
    pub description: Option<String>,
    /// The node's SQL, as written (a template starts with `%`).
    pub sql: String,
    /// Keywords after this `NODE` that this SDK keeps without interpreting (`TAGS`, `FILTER`, `ON_DEMAND_COMPUTE`,
    /// …), in file order; written back after the node's SQL.
    pub settings: Vec<DatafileSetting>,
}

/// One endpoint parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParamDef {
    /// The wire name.
    pub name: String,
    /// Tinybird type name (`String`, `Int32`, `Array(UInt64)`, `DateTime`, …).
    pub ty: String,
    /// Whether the param is written `required=True` (the Rust field is not an `Option`).
    pub required: bool,
    /// The default, as a template literal (`'US'`, `10`), when the param declares one.
    pub default: Option<String>,
    /// The param's description (from `description = …` or the field's doc comment).
    pub description: Option<String>,
}

/// A datafile keyword this SDK keeps without interpreting, with its value: `TAGS "stats"`, `KAFKA_TOPIC events`,
/// or a `FORWARD_QUERY >` block.
///
/// [`write_datasource`](crate::datafile::write_datasource) and [`write_pipe`](crate::datafile::write_pipe) emit settings back in
/// Tinybird's syntax; they refuse keywords Tinybird does not accept in that place, a block for a keyword that takes
/// one line (and the reverse), and a repeated keyword that Tinybird would silently overwrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatafileSetting {
    /// The keyword, upper-case (`KAFKA_TOPIC`).
    pub keyword: String,
    /// The value as Tinybird reads it: a one-line value with its outer quotes removed (and `$$` read as `$` for
    /// keywords where Tinybird substitutes environment variables), a block dedented.
    pub value: String,
    /// Whether the value is a `KEYWORD >` block on the lines that follow.
    pub multiline: bool,
}

impl DatafileSetting {
    /// A one-line setting: `KEYWORD value`.
    pub fn line(keyword: impl Into<String>, value: impl Into<String>) -> Self {
        DatafileSetting { keyword: keyword.into().to_ascii_uppercase(), value: value.into(), multiline: false }
    }

    /// A block setting: `KEYWORD >` and the value on the following lines, indented.
    pub fn block(keyword: impl Into<String>, value: impl Into<String>) -> Self {
        DatafileSetting { keyword: keyword.into().to_ascii_uppercase(), value: value.into(), multiline: true }
    }
}

/// A `.connection` file: a named link to an external system (Kafka, S3, GCS, DynamoDB) that datasources import
/// from and sink pipes export to. Credentials are `{{ tb_secret("NAME") }}` placeholders, resolved by Tinybird from
/// the workspace's secrets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionDef {
    /// The connection's name (the file name without `.connection`).
    pub name: String,
    /// `TYPE`: `kafka`, `s3`, `gcs`, `dynamodb`, … (lower-case).
    pub kind: String,
    /// The other keys (`KAFKA_BOOTSTRAP_SERVERS`, `S3_REGION`, …), in file order.
    pub settings: Vec<DatafileSetting>,
}
