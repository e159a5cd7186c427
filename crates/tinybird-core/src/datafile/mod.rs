//! `.datasource` and `.pipe` files: generating them from definitions and parsing them back.
//!
//! The text follows the grammar of Tinybird's own parser (`tinybird` package, `datafile/common.py`): line-oriented
//! `KEYWORD args`, arguments tokenised like Python's non-POSIX `shlex` (quotes group words and are kept, `#` starts a
//! comment), `KEYWORD >` starting a multi-line value that ends at the next line starting at column 0 with a known
//! keyword, keywords case-insensitive.
//!
//! The generator avoids the official TypeScript SDK's known slips: SQL is dedented (then indented by four spaces),
//! multi-line descriptions are indented on every line, required params get `required=True`, defaults and
//! descriptions are written into the typed placeholders (`{{ Int32(limit, 10, description="Max rows") }}`), values
//! with quotes are quoted so they survive tokenising, and SummingMergeTree columns use `ENGINE_COLUMNS`.
//!
//! Keywords Tinybird accepts that the definitions have no field for (`TAGS`, `SHARED_WITH`, `FORWARD_QUERY >`,
//! `BACKFILL`, the `KAFKA_*`, `IMPORT_*` and `PG_*` connector keys, pipe `FILTER` and `ON_DEMAND_COMPUTE`, deprecated
//! keywords Tinybird ignores) are kept as [`DatafileSetting`]s in file order and written back, so existing files load
//! and round-trip. What Tinybird refuses is refused with its message: `INCLUDE`, `SOURCE`, `IMPORT_STRATEGY`,
//! `KAFKA_STORE_BINARY_HEADERS`, `MATERIALIZED`/`ALIAS`/`TTL` columns, incomplete connectors, node keys a node of
//! that type may not carry.
//!
//! ```
//! use tinybird_core::datafile::{parse_datasource, write_datasource};
//! use tinybird_core::datasource::{ColumnDef, DatasourceDef, EngineDef};
//!
//! let def = DatasourceDef {
//!     name: "events".into(),
//!     columns: vec![ColumnDef {
//!         name: "timestamp".into(),
//!         ty: "DateTime".into(),
//!         json_path: Some("$.timestamp".into()),
//!         ..Default::default()
//!     }],
//!     engine: EngineDef {
//!         kind: "MergeTree".into(),
//!         sorting_key: Some("timestamp".into()),
//!         ..Default::default()
//!     },
//!     ..Default::default()
//! };
//! let text = write_datasource(&def).unwrap();
//! assert!(text.contains("    `timestamp` DateTime `json:$.timestamp`\n"));
//! assert_eq!(parse_datasource("events", &text).unwrap(), def);
//! ```

mod lex;
mod placeholders;
mod read;
mod settings;
mod write;

use std::fmt;

pub use crate::def::DatafileSetting;
pub use read::{parse_connection, parse_datasource, parse_pipe};
pub use write::{write_connection, write_datasource, write_endpoint, write_pipe};

use crate::def::{EndpointDef, NodeDef, ParamDef, TokenDef};

/// A datafile that cannot be parsed, or a definition that cannot be written as one.
///
/// Parse errors carry the 1-based line and the keyword being read; their message uses Tinybird's wording where
/// Tinybird has one (`FOO is not a valid option in datasource files.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatafileError {
    line: Option<usize>,
    keyword: Option<String>,
    message: String,
}

impl DatafileError {
    pub(crate) fn at(line: usize, keyword: Option<&str>, message: impl Into<String>) -> Self {
        DatafileError { line: Some(line), keyword: keyword.map(str::to_ascii_uppercase), message: message.into() }
    }

    pub(crate) fn generate(keyword: Option<&str>, message: impl Into<String>) -> Self {
        DatafileError { line: None, keyword: keyword.map(str::to_ascii_uppercase), message: message.into() }
    }

    /// The 1-based line the error is on (for parse errors).
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The keyword being read or written (`SCHEMA`, `ENGINE_TTL`, …), upper-case.
    pub fn keyword(&self) -> Option<&str> {
        self.keyword.as_deref()
    }

    /// The message, without line and keyword.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DatafileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        match &self.keyword {
            // Tinybird's own messages already start with the keyword.
            Some(keyword) if !self.message.starts_with(keyword.as_str()) => write!(f, "{keyword}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DatafileError {}

/// A pipe as a `.pipe` file describes it: nodes, tokens and what the pipe is (its one non-standard node).
///
/// [`EndpointDef`] is the richer form for endpoints (it has typed params and output columns); [`PipeDef`] is what
/// the parser returns for any pipe, with [`PipeDef::into_endpoint`] to get an endpoint's definition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PipeDef {
    /// The pipe's name (the file name without `.pipe`).
    pub name: String,
    /// The pipe's `DESCRIPTION`.
    pub description: Option<String>,
    /// The nodes, in order. A non-standard `TYPE` applies to the last one.
    pub nodes: Vec<NodeDef>,
    /// `TOKEN name READ` lines.
    pub tokens: Vec<TokenDef>,
    /// What the last node is.
    pub kind: PipeKind,
    /// Keywords before the first `NODE` that this SDK keeps without interpreting (`TAGS`, `VERSION`, …), in file
    /// order. Node-level ones are in [`NodeDef::settings`].
    pub settings: Vec<DatafileSetting>,
}

/// The `TYPE` of a pipe's non-standard node (always the last node here) and the keys that go with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PipeKind {
    /// No `TYPE` line: all nodes are standard (a library of nodes other pipes use).
    #[default]
    Standard,
    /// `TYPE endpoint`: the last node is published as an API endpoint.
    Endpoint,
    /// `TYPE materialized`: the last node feeds `datasource`.
    Materialized {
        /// The target datasource (`DATASOURCE`).
        datasource: String,
        /// `DEPLOYMENT_METHOD` (only `alter` is valid).
        deployment_method: Option<String>,
    },
    /// `TYPE copy`: the last node is copied into `target_datasource`.
    Copy {
        /// `TARGET_DATASOURCE`.
        target_datasource: String,
        /// `COPY_SCHEDULE` (a cron expression or `@on-demand`).
        schedule: Option<String>,
        /// `COPY_MODE` (`append` or `replace`).
        mode: Option<String>,
    },
    /// `TYPE sink`: the last node is exported; `settings` are the `EXPORT_*` keys (upper-case) and values in order.
    Sink {
        /// `EXPORT_*` keys and their values.
        settings: Vec<(String, String)>,
    },
}

impl PipeKind {
    /// The `TYPE` value, or `None` for standard pipes.
    pub fn type_name(&self) -> Option<&'static str> {
        match self {
            PipeKind::Standard => None,
            PipeKind::Endpoint => Some("endpoint"),
            PipeKind::Materialized { .. } => Some("materialized"),
            PipeKind::Copy { .. } => Some("copy"),
            PipeKind::Sink { .. } => Some("sink"),
        }
    }
}

impl PipeDef {
    /// The endpoint this pipe publishes, with its params read from the typed placeholders of its nodes
    /// (`{{ Int32(limit, 10, description="…") }}` gives param `limit`, type `Int32`, default `10`).
    ///
    /// Untyped uses (`{{ x }}`, `defined(x)`) do not declare a param here; output columns are not part of a
    /// `.pipe` file, so `output` is empty; `cache_ttl` is `None` (the datafile grammar has no cache keyword).
    pub fn into_endpoint(self) -> Result<EndpointDef, DatafileError> {
        if self.kind != PipeKind::Endpoint {
            let kind = self.kind.type_name().unwrap_or("standard");
            return Err(DatafileError::generate(
                Some("TYPE"),
                format!("pipe `{}` is a {kind} pipe, not an endpoint", self.name),
            ));
        }
        Ok(self.endpoint_parts())
    }

    /// The endpoint definition of these nodes, whatever the pipe's kind.
    pub(crate) fn endpoint_parts(self) -> EndpointDef {
        let params = params_of(&self.nodes);
        EndpointDef {
            name: self.name,
            description: self.description,
            nodes: self.nodes,
            params,
            output: Vec::new(),
            tokens: self.tokens,
            cache_ttl: None,
            settings: self.settings,
        }
    }
}

/// The params declared by the typed placeholders of `nodes`, in order of first use.
pub fn params_of(nodes: &[NodeDef]) -> Vec<ParamDef> {
    let mut params: Vec<ParamDef> = Vec::new();
    for node in nodes {
        for call in placeholders::typed_calls(&node.sql) {
            let found = call.to_param();
            match params.iter_mut().find(|p| p.name == found.name) {
                Some(existing) => {
                    existing.required |= found.required;
                    if existing.default.is_none() {
                        existing.default = found.default;
                    }
                    if existing.description.is_none() {
                        existing.description = found.description;
                    }
                }
                None => params.push(found),
            }
        }
    }
    params
}
