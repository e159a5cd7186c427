//! ClickHouse/Tinybird types: the type model ([`ChType`]), the Rust ↔ Tinybird mapping ([`TinybirdType`]),
//! value types for what has no natural Rust type ([`DateTime64`], [`Int256`], [`UInt256`], [`Decimal`]) and the
//! serde helpers for Tinybird's JSON forms ([`wire`]). The model, its parser and its printer live in the
//! `tinybird-types` crate, which the derive macros share.
//!
//! ```
//! use tinybird_core::types::ChType;
//!
//! let ty: ChType = "LowCardinality(Nullable(String))".parse().unwrap();
//! assert!(ty.is_nullable());
//! assert_eq!(ty.unwrap_low_cardinality().to_string(), "Nullable(String)");
//! ```

mod aggregate;
mod rust;
mod values;
pub mod wire;

pub use aggregate::{AggregateFunction, AggregateState, SimpleAggregate, agg};
pub use rust::TinybirdType;
pub use tinybird_types::{ChType, ParseTypeError, TupleElement};
pub use values::{DateTime64, Decimal, Int256, UInt256, ValueError};
