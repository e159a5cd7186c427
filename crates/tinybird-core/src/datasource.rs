//! Datasources: the facts `#[derive(Datasource)]` states about a row struct.

pub use crate::def::{ColumnDef, ConnectionDef, DatasourceDef, EngineDef, IndexDef, TokenDef, TokenPermission};

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

/// Static descriptions written by the derives: constant data turned into definitions by one shared function, so a
/// crate with many resources compiles little code per resource. Not part of the public API.
#[doc(hidden)]
pub mod spec {
    use super::{ColumnDef, DatasourceDef, EngineDef, IndexDef, TokenDef, TokenPermission};
    use crate::row::RowColumn;
    use crate::types::ChType;

    /// A column's Tinybird type: written out, or the default type of a Rust type.
    #[derive(Clone, Copy)]
    pub enum TypeSpec {
        /// Given with `#[tinybird(type = "…")]` or by a template function.
        Named(&'static str),
        /// `<T as TinybirdType>::ch_type`.
        Of(fn() -> ChType),
    }

    impl TypeSpec {
        /// The type as Tinybird prints it.
        pub fn to_type_string(self) -> String {
            match self {
                TypeSpec::Named(s) => s.to_owned(),
                TypeSpec::Of(f) => f().to_string(),
            }
        }
    }

    /// A column, as constant data.
    pub struct ColumnSpec {
        pub name: &'static str,
        pub ty: TypeSpec,
        pub json_path: Option<&'static str>,
        pub default: Option<&'static str>,
        pub codec: Option<&'static str>,
    }

    /// An engine, as constant data.
    pub struct EngineSpec {
        pub kind: &'static str,
        pub sorting_key: Option<&'static str>,
        pub partition_key: Option<&'static str>,
        pub primary_key: Option<&'static str>,
        pub sampling_key: Option<&'static str>,
        pub ttl: Option<&'static str>,
        pub ver: Option<&'static str>,
        pub sign: Option<&'static str>,
        pub version: Option<&'static str>,
        pub is_deleted: Option<&'static str>,
        pub columns: Option<&'static str>,
        pub settings: Option<&'static str>,
    }

    /// An index, as constant data.
    pub struct IndexSpec {
        pub name: &'static str,
        pub expr: &'static str,
        pub ty: &'static str,
        pub granularity: u32,
    }

    /// A datasource, as constant data.
    pub struct DatasourceSpec {
        pub name: &'static str,
        pub description: Option<&'static str>,
        pub columns: &'static [ColumnSpec],
        pub engine: EngineSpec,
        pub indexes: &'static [IndexSpec],
        pub tokens: &'static [(&'static str, TokenPermission)],
    }

    fn owned(s: Option<&'static str>) -> Option<String> {
        s.map(str::to_owned)
    }

    impl DatasourceSpec {
        /// The definition.
        pub fn to_def(&self) -> DatasourceDef {
            let e = &self.engine;
            DatasourceDef {
                name: self.name.to_owned(),
                description: owned(self.description),
                columns: self
                    .columns
                    .iter()
                    .map(|c| ColumnDef {
                        name: c.name.to_owned(),
                        ty: c.ty.to_type_string(),
                        json_path: owned(c.json_path),
                        default: owned(c.default),
                        codec: owned(c.codec),
                    })
                    .collect(),
                engine: EngineDef {
                    kind: e.kind.to_owned(),
                    sorting_key: owned(e.sorting_key),
                    partition_key: owned(e.partition_key),
                    primary_key: owned(e.primary_key),
                    sampling_key: owned(e.sampling_key),
                    ttl: owned(e.ttl),
                    ver: owned(e.ver),
                    sign: owned(e.sign),
                    version: owned(e.version),
                    is_deleted: owned(e.is_deleted),
                    columns: owned(e.columns),
                    settings: owned(e.settings),
                },
                indexes: self
                    .indexes
                    .iter()
                    .map(|i| IndexDef {
                        name: i.name.to_owned(),
                        expr: i.expr.to_owned(),
                        ty: i.ty.to_owned(),
                        granularity: i.granularity,
                    })
                    .collect(),
                tokens: self
                    .tokens
                    .iter()
                    .map(|(name, permission)| TokenDef { name: (*name).to_owned(), permission: *permission })
                    .collect(),
                settings: Vec::new(),
            }
        }
    }

    /// The columns of a row type, from `(name, type)` pairs.
    pub fn row_columns(columns: &[(&'static str, TypeSpec)]) -> Vec<RowColumn> {
        columns.iter().map(|(name, ty)| RowColumn { name: (*name).to_owned(), ty: ty.to_type_string() }).collect()
    }

    /// The columns of a datasource row, from its column specs.
    pub fn datasource_row_columns(columns: &[ColumnSpec]) -> Vec<RowColumn> {
        columns.iter().map(|c| RowColumn { name: c.name.to_owned(), ty: c.ty.to_type_string() }).collect()
    }
}
