//! ClickHouse/Tinybird types: the type model, the Rust ↔ Tinybird mapping and serde helpers.

/// A Tinybird (ClickHouse) column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChType {
    String,
}

/// A Rust type with a default Tinybird type.
pub trait TinybirdType {
    fn ch_type() -> ChType;
}
