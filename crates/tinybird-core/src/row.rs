//! Rows returned by endpoints and queries.

/// A row type that can be decoded from a Tinybird JSON result, with the columns it expects.
///
/// Implemented by `#[derive(Datasource)]`, by the inline `output(...)` of `#[derive(Endpoint)]`, and for
/// `serde_json::Value` (any columns).
pub trait Row: serde::de::DeserializeOwned + Send + 'static {
    /// The columns this row expects, with their Tinybird types. Empty means "any".
    fn columns() -> Vec<RowColumn>;
}

/// One expected column: its name and Tinybird type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowColumn {
    pub name: String,
    pub ty: String,
}

impl Row for serde_json::Value {
    fn columns() -> Vec<RowColumn> {
        Vec::new()
    }
}
