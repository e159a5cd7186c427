//! ClickHouse column types as Tinybird writes them: the model ([`ChType`]), the parser (`str::parse`), the canonical
//! printer (`Display`) and the rule for decoding one type as another ([`ChType::is_compatible_with`]); with them,
//! Tinybird's name rule ([`is_valid_name`]) and its table engines ([`TABLE_ENGINES`]).
//!
//! This is the one home of that vocabulary for the `tinybird` crates: the runtime re-exports it as
//! `tinybird::types`, the derive macros call the same parser to reject a bad `#[tinybird(type = "…")]` at compile
//! time, and `tinybird-local` reads datafiles with it.
//!
//! ```
//! use tinybird_types::ChType;
//!
//! let ty: ChType = "LowCardinality(Nullable(String))".parse().unwrap();
//! assert!(ty.is_nullable());
//! assert_eq!(ty.unwrap_low_cardinality().to_string(), "Nullable(String)");
//! ```

mod compat;
mod display;
mod parse;

pub use parse::{Arguments, FAMILIES, Family, ParseTypeError};

/// The table engines a Tinybird datasource may use (`ENGINE "…"` in a `.datasource` file): the `MergeTree` family
/// and `Null`.
pub const TABLE_ENGINES: &[&str] = &[
    "MergeTree",
    "ReplacingMergeTree",
    "SummingMergeTree",
    "AggregatingMergeTree",
    "CollapsingMergeTree",
    "VersionedCollapsingMergeTree",
    "Null",
];

/// Tinybird's rule for names of datasources, pipes, nodes, columns, params and tokens: `^[a-zA-Z_][a-zA-Z0-9_]*$`.
/// Such a name is also a plain ClickHouse identifier, and is safe in a URL path and in a token scope
/// (`PIPES:READ:name`).
///
/// ```
/// assert!(tinybird_types::is_valid_name("top_pages_v2"));
/// assert!(!tinybird_types::is_valid_name("2nd_pass"));
/// assert!(!tinybird_types::is_valid_name("events:read"));
/// ```
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Tinybird (ClickHouse) column type.
///
/// Parse one with [`str::parse`] and print it with `Display`, which writes the canonical form Tinybird prints
/// (`Nullable(UInt64)`, `DateTime64(3, 'UTC')`, `Map(String, UInt64)`). `Decimal32(S)`…`Decimal256(S)` are parsed
/// into [`ChType::Decimal`] with the precision of their width, as ClickHouse does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChType {
    /// `String`.
    String,
    /// `FixedString(N)`: exactly `N` bytes.
    FixedString(u32),
    /// `Int8`.
    Int8,
    /// `Int16`.
    Int16,
    /// `Int32`.
    Int32,
    /// `Int64`.
    Int64,
    /// `Int128`.
    Int128,
    /// `Int256`.
    Int256,
    /// `UInt8`.
    UInt8,
    /// `UInt16`.
    UInt16,
    /// `UInt32`.
    UInt32,
    /// `UInt64`.
    UInt64,
    /// `UInt128`.
    UInt128,
    /// `UInt256`.
    UInt256,
    /// `Float32`.
    Float32,
    /// `Float64`.
    Float64,
    /// `Decimal(P, S)`: `precision` in 1..=76, `scale` in 0..=precision.
    Decimal {
        /// Total number of digits.
        precision: u8,
        /// Digits after the decimal point.
        scale: u8,
    },
    /// `Bool`.
    Bool,
    /// `Date`: days since 1970-01-01 (up to 2149-06-06).
    Date,
    /// `Date32`: a wider date range.
    Date32,
    /// `DateTime` or `DateTime('tz')`: seconds.
    DateTime(Option<String>),
    /// `DateTime64(p)` or `DateTime64(p, 'tz')`: `precision` sub-second digits (0..=9).
    DateTime64 {
        /// Sub-second digits, 0..=9.
        precision: u8,
        /// The column's time zone, when declared.
        tz: Option<String>,
    },
    /// `UUID`.
    Uuid,
    /// `IPv4`.
    IPv4,
    /// `IPv6`.
    IPv6,
    /// `Nullable(T)`.
    Nullable(Box<ChType>),
    /// `LowCardinality(T)`.
    LowCardinality(Box<ChType>),
    /// `Array(T)`.
    Array(Box<ChType>),
    /// `Map(K, V)`.
    Map(Box<ChType>, Box<ChType>),
    /// `Tuple(T1, T2)` or `Tuple(a T1, b T2)`.
    Tuple(Vec<TupleElement>),
    /// `JSON`.
    Json,
    /// `Enum8('a' = 1, …)`.
    Enum8(Vec<(String, i8)>),
    /// `Enum16('a' = 1, …)`.
    Enum16(Vec<(String, i16)>),
    /// `SimpleAggregateFunction(f, T)`: stored and returned as `T`.
    SimpleAggregateFunction {
        /// The function, e.g. `sum` or `anyLast`.
        function: String,
        /// The value type.
        ty: Box<ChType>,
    },
    /// `AggregateFunction(f[, T…])`: an aggregation state. `function` keeps its parameters verbatim
    /// (`quantiles(0.5, 0.9)`).
    AggregateFunction {
        /// The function, with parameters when it has any.
        function: String,
        /// The argument types.
        args: Vec<ChType>,
    },
    /// `Nothing`: the type of `NULL` and of `[]`.
    Nothing,
}

/// One element of a [`ChType::Tuple`]; `name` is set for named tuples (`Tuple(a String)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TupleElement {
    /// The element's name, for named tuples.
    pub name: Option<String>,
    /// The element's type.
    pub ty: ChType,
}

impl ChType {
    /// `Nullable(T)`.
    pub fn nullable(inner: ChType) -> ChType {
        ChType::Nullable(Box::new(inner))
    }

    /// `LowCardinality(T)`.
    pub fn low_cardinality(inner: ChType) -> ChType {
        ChType::LowCardinality(Box::new(inner))
    }

    /// `Array(T)`.
    pub fn array(inner: ChType) -> ChType {
        ChType::Array(Box::new(inner))
    }

    /// `Map(K, V)`.
    pub fn map(key: ChType, value: ChType) -> ChType {
        ChType::Map(Box::new(key), Box::new(value))
    }

    /// An unnamed `Tuple(…)`.
    pub fn tuple(elements: impl IntoIterator<Item = ChType>) -> ChType {
        ChType::Tuple(elements.into_iter().map(|ty| TupleElement { name: None, ty }).collect())
    }

    /// Whether values may be `NULL`: `Nullable(T)`, also under `LowCardinality` (`LowCardinality(Nullable(String))`),
    /// and `Nothing` (the type of a bare `NULL`).
    pub fn is_nullable(&self) -> bool {
        match self {
            ChType::Nullable(_) | ChType::Nothing => true,
            ChType::LowCardinality(inner) => inner.is_nullable(),
            _ => false,
        }
    }

    /// The type without its outer `LowCardinality` wrapper, which changes storage but not values.
    pub fn unwrap_low_cardinality(&self) -> &ChType {
        match self {
            ChType::LowCardinality(inner) => inner,
            other => other,
        }
    }

    /// The type without `LowCardinality` and `Nullable` wrappers, in either order: the type of the non-null values.
    pub fn base(&self) -> &ChType {
        match self {
            ChType::LowCardinality(inner) | ChType::Nullable(inner) => inner.base(),
            other => other,
        }
    }

    /// Whether this is one of the integer types (`Int8`…`UInt256`).
    pub fn is_integer(&self) -> bool {
        self.integer_info().is_some()
    }

    /// `(signed, bits)` of an integer type (`Int8`…`UInt256`), `None` for any other type.
    pub fn integer_info(&self) -> Option<(bool, u16)> {
        Some(match self {
            ChType::Int8 => (true, 8),
            ChType::Int16 => (true, 16),
            ChType::Int32 => (true, 32),
            ChType::Int64 => (true, 64),
            ChType::Int128 => (true, 128),
            ChType::Int256 => (true, 256),
            ChType::UInt8 => (false, 8),
            ChType::UInt16 => (false, 16),
            ChType::UInt32 => (false, 32),
            ChType::UInt64 => (false, 64),
            ChType::UInt128 => (false, 128),
            ChType::UInt256 => (false, 256),
            _ => return None,
        })
    }
}
