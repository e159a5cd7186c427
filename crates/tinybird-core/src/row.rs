//! Rows returned by endpoints and queries.

/// A row type that can be decoded from a Tinybird JSON result, with the columns it expects.
///
/// Implemented by `#[derive(Datasource)]`, by the inline `output(...)` of `#[derive(Endpoint)]`, and for
/// `serde_json::Value` (any columns).
pub trait Row: serde::de::DeserializeOwned + Send + 'static {
    /// The columns this row expects, with their Tinybird types. Empty means "any".
    fn columns() -> Vec<RowColumn>;

    /// A direct reader for this row type, which the derives generate when serde's attributes on the struct allow
    /// it; `None` (the default) decodes with serde only. See `tinybird_core::__private::rowjson`.
    #[doc(hidden)]
    fn __row_decoder() -> Option<crate::rowjson::RowDecoder<Self>> {
        None
    }
}

/// One expected column: its name and Tinybird type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowColumn {
    /// The column's name in the result (`meta[].name`).
    pub name: String,
    /// Its Tinybird type, e.g. `Nullable(UInt64)`.
    pub ty: String,
}

impl Row for serde_json::Value {
    fn columns() -> Vec<RowColumn> {
        Vec::new()
    }
}

/// Why a response column does not fit what a row type expects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnMismatch {
    /// The response has no column of this name.
    Missing {
        /// The expected column.
        name: String,
    },
    /// The column's type on the wire cannot be decoded as the declared type
    /// (see [`ChType::is_compatible_with`](crate::types::ChType::is_compatible_with)).
    Type {
        /// The column.
        name: String,
        /// The declared type.
        expected: String,
        /// The type in the response's `meta`.
        actual: String,
    },
    /// A type string that does not parse, on either side.
    InvalidType {
        /// The column.
        name: String,
        /// The parse error.
        error: String,
    },
}

impl std::fmt::Display for ColumnMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColumnMismatch::Missing { name } => write!(f, "column `{name}` is missing from the response"),
            ColumnMismatch::Type { name, expected, actual } => {
                write!(f, "column `{name}` is {actual} in the response, which does not fit the declared {expected}")
            }
            ColumnMismatch::InvalidType { name, error } => write!(f, "column `{name}`: {error}"),
        }
    }
}

/// Checks a response's `meta` against the columns a row type expects: every expected column must be present with a
/// compatible type. Extra response columns are fine (serde skips unknown fields). An empty `expected` means "any".
///
/// ```
/// use tinybird_core::row::{RowColumn, check_columns};
/// let col = |name: &str, ty: &str| RowColumn { name: name.into(), ty: ty.into() };
/// let expected = [col("day", "Date"), col("events", "UInt64")];
/// let meta = [col("day", "Date"), col("events", "UInt32"), col("extra", "String")];
/// assert!(check_columns(&expected, &meta).is_empty());
/// let meta = [col("day", "Nullable(Date)")];
/// assert_eq!(check_columns(&expected, &meta).len(), 2);
/// ```
pub fn check_columns(expected: &[RowColumn], meta: &[RowColumn]) -> Vec<ColumnMismatch> {
    let mut out = Vec::new();
    for column in expected {
        let Some(actual) = meta.iter().find(|m| m.name == column.name) else {
            out.push(ColumnMismatch::Missing { name: column.name.clone() });
            continue;
        };
        let parse = |ty: &str| ty.parse::<crate::types::ChType>();
        match (parse(&actual.ty), parse(&column.ty)) {
            (Ok(wire), Ok(declared)) => {
                if !wire.is_compatible_with(&declared) {
                    out.push(ColumnMismatch::Type {
                        name: column.name.clone(),
                        expected: column.ty.clone(),
                        actual: actual.ty.clone(),
                    });
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                out.push(ColumnMismatch::InvalidType { name: column.name.clone(), error: e.to_string() });
            }
        }
    }
    out
}
