//! Runtime of the `tinybird` crate. Users depend on `tinybird`, which re-exports this crate.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// Lets this crate's own tests use the derives, which name it `::tinybird_core`.
#[cfg(test)]
extern crate self as tinybird_core;

pub mod check;
pub mod client;
pub mod connections;
pub mod datafile;
pub mod datasource;
mod def;
pub mod endpoint;
pub mod error;
pub mod filter;
pub mod jwt;
pub mod params;
pub mod pipes;
pub mod project;
pub mod row;
mod rowjson;
pub mod types;

pub use datasource::{Datasource, DatasourceDef};
pub use endpoint::{Endpoint, EndpointDef, FixedParams};
pub use row::Row;

#[doc(hidden)]
/// Items used by the code the derives generate, and by the workspace's own crates (`tinybird-local` reads JSON rows
/// and writes ClickHouse date text with the client's routines); those crates pin this one exactly (`=0.1.0`).
/// Outside semver: anything here may change in any release.
pub mod __private {
    pub use crate::check;
    pub use crate::datasource::Datasource;
    pub use crate::datasource::spec::{
        ColumnSpec, DatasourceSpec, EngineSpec, IndexSpec, TypeSpec, datasource_row_columns, row_columns,
    };
    pub use crate::datasource::{ColumnDef, DatasourceDef, EngineDef, IndexDef, TokenDef, TokenPermission};
    pub use crate::endpoint::spec::{EndpointSpec, NodeSpec, ParamSpec};
    pub use crate::endpoint::{Endpoint, FixedParams};
    pub use crate::endpoint::{EndpointDef, NodeDef, ParamDef, output_columns};
    pub use crate::filter::Column;
    pub use crate::params::{FixedValue, QueryParams, ToParam};
    pub use crate::pipes::WritesInto;
    pub use crate::row::Row;
    pub use crate::row::RowColumn;
    /// The JSON row reader the derives generate decoders on, also tinybird-local's ingestion reader.
    pub mod rowjson {
        pub use crate::rowjson::*;
    }
    pub use crate::types::wire;
    /// ClickHouse date text, for tinybird-local's writers.
    pub mod wire_text {
        pub use crate::types::wire::text::{CivilDateTime, push_date_text, push_datetime_text};
    }
    pub use crate::types::{ChType, TinybirdType};
    pub use ::serde;
    pub use ::serde_json;
}
