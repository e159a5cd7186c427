//! ClickHouse column types: parsing Tinybird type strings, mapping them to Arrow and back.

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use tinybird_types::ChType as Model;

/// Arrow field metadata key holding the ClickHouse type a column was declared with, so `meta` can report it exactly.
pub(crate) const CH_TYPE_KEY: &str = "tinybird.ch_type";

/// A ClickHouse type, as far as the local engine models it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChType {
    /// `Int8` … `Int64`, `UInt8` … `UInt64`: signedness and bit width.
    Int {
        /// `Int*` rather than `UInt*`.
        signed: bool,
        /// 8, 16, 32 or 64.
        bits: u8,
    },
    /// `Float32`, `Float64`.
    Float(u8),
    /// `Decimal(P, S)`.
    Decimal(u8, i8),
    /// `String`, `FixedString(N)`, `UUID`, `IPv4`, `IPv6`, `JSON`, `Enum8(…)`: stored as text, printed as declared.
    String,
    /// `Bool`.
    Bool,
    /// `Date` (`wide` is `Date32`).
    Date {
        /// `Date32` rather than `Date`.
        wide: bool,
    },
    /// `DateTime` (`precision` None) or `DateTime64(p)`, with an optional time zone.
    DateTime {
        /// Sub-second digits of `DateTime64(p)`; `None` for `DateTime`.
        precision: Option<u8>,
        /// The declared time zone, if any.
        tz: Option<String>,
    },
    /// `Array(T)`.
    Array(Box<ChType>),
    /// `Nullable(T)`.
    Nullable(Box<ChType>),
    /// `LowCardinality(T)`: stored as `T`.
    LowCardinality(Box<ChType>),
    /// A text-stored type whose name is kept verbatim (`UUID`, `FixedString(16)`, `Enum8('a' = 1)`, …).
    Named(String),
    /// A type only the ClickHouse engine stores (`Int128`, `UInt256`, `Map(K, V)`, `Tuple(…)`, wide decimals): the
    /// server checks a value's shape and passes its JSON to ClickHouse as sent. See [`ChType::parse_for_clickhouse`].
    Opaque(String),
}

/// A type string the local engine cannot store: not a ClickHouse type (the parser's reason is in the message), or one
/// this engine does not store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnsupportedType(pub String);

impl ChType {
    /// Parses a ClickHouse type string such as `Nullable(DateTime64(3, 'UTC'))` (with `tinybird-types`' parser, the
    /// one the SDK and its derives use) into what the DataFusion engine stores.
    pub fn parse(text: &str) -> Result<ChType, UnsupportedType> {
        ChType::from_model(&model(text)?, false).ok_or_else(|| unsupported(text))
    }

    /// [`ChType::parse`], and for the ClickHouse engine also the types only it stores ([`ChType::Opaque`]).
    pub fn parse_for_clickhouse(text: &str) -> Result<ChType, UnsupportedType> {
        ChType::from_model(&model(text)?, true).ok_or_else(|| unsupported(text))
    }

    /// The engine's view of a parsed type; `None` for a type this engine cannot store.
    fn from_model(ty: &Model, clickhouse: bool) -> Option<ChType> {
        let int = |signed, bits| Some(ChType::Int { signed, bits });
        let opaque = || clickhouse.then(|| ChType::Opaque(ty.to_string()));
        match ty {
            Model::Int8 => int(true, 8),
            Model::Int16 => int(true, 16),
            Model::Int32 => int(true, 32),
            Model::Int64 => int(true, 64),
            Model::UInt8 => int(false, 8),
            Model::UInt16 => int(false, 16),
            Model::UInt32 => int(false, 32),
            Model::UInt64 => int(false, 64),
            Model::Float32 => Some(ChType::Float(32)),
            Model::Float64 => Some(ChType::Float(64)),
            // DataFusion's decimals hold 38 digits.
            Model::Decimal { precision, scale } if *precision <= 38 => {
                Some(ChType::Decimal(*precision, i8::try_from(*scale).ok()?))
            }
            Model::String => Some(ChType::String),
            Model::Bool => Some(ChType::Bool),
            Model::Date => Some(ChType::Date { wide: false }),
            Model::Date32 => Some(ChType::Date { wide: true }),
            Model::DateTime(tz) => Some(ChType::DateTime { precision: None, tz: tz.clone() }),
            Model::DateTime64 { precision, tz } => {
                Some(ChType::DateTime { precision: Some(*precision), tz: tz.clone() })
            }
            Model::Uuid
            | Model::IPv4
            | Model::IPv6
            | Model::Json
            | Model::FixedString(_)
            | Model::Enum8(_)
            | Model::Enum16(_) => Some(ChType::Named(ty.to_string())),
            Model::Array(inner) => Some(ChType::Array(Box::new(ChType::from_model(inner, clickhouse)?))),
            Model::Nullable(inner) => Some(ChType::Nullable(Box::new(ChType::from_model(inner, clickhouse)?))),
            Model::LowCardinality(inner) => {
                Some(ChType::LowCardinality(Box::new(ChType::from_model(inner, clickhouse)?)))
            }
            // Stored and returned as its value type.
            Model::SimpleAggregateFunction { ty, .. } => ChType::from_model(ty, clickhouse),
            Model::Int128
            | Model::Int256
            | Model::UInt128
            | Model::UInt256
            | Model::Decimal { .. }
            | Model::Map(..)
            | Model::Tuple(_)
            | Model::AggregateFunction { .. } => opaque(),
            _ => None,
        }
    }

    /// The Arrow type the engine stores this type as.
    pub fn arrow(&self) -> DataType {
        match self {
            ChType::Int { signed: true, bits: 8 } => DataType::Int8,
            ChType::Int { signed: true, bits: 16 } => DataType::Int16,
            ChType::Int { signed: true, bits: 32 } => DataType::Int32,
            ChType::Int { signed: true, .. } => DataType::Int64,
            ChType::Int { signed: false, bits: 8 } => DataType::UInt8,
            ChType::Int { signed: false, bits: 16 } => DataType::UInt16,
            ChType::Int { signed: false, bits: 32 } => DataType::UInt32,
            ChType::Int { signed: false, .. } => DataType::UInt64,
            ChType::Float(32) => DataType::Float32,
            ChType::Float(_) => DataType::Float64,
            ChType::Decimal(p, s) => DataType::Decimal128(*p, *s),
            ChType::String | ChType::Named(_) | ChType::Opaque(_) => DataType::Utf8,
            ChType::Bool => DataType::Boolean,
            ChType::Date { .. } => DataType::Date32,
            ChType::DateTime { precision, .. } => DataType::Timestamp(time_unit(*precision), None),
            ChType::Array(inner) => DataType::List(Arc::new(Field::new("item", inner.arrow(), inner.is_nullable()))),
            ChType::Nullable(inner) | ChType::LowCardinality(inner) => inner.arrow(),
        }
    }

    /// Whether values may be NULL.
    pub fn is_nullable(&self) -> bool {
        match self {
            ChType::Nullable(_) => true,
            ChType::LowCardinality(inner) => inner.is_nullable(),
            _ => false,
        }
    }

    /// The time zone a `DateTime` type (or an array of them) names, if any.
    pub fn time_zone(&self) -> Option<&str> {
        match self.base() {
            ChType::DateTime { tz, .. } => tz.as_deref(),
            ChType::Array(inner) => inner.time_zone(),
            _ => None,
        }
    }

    /// The type without `Nullable`/`LowCardinality` wrappers.
    pub fn base(&self) -> &ChType {
        match self {
            ChType::Nullable(inner) | ChType::LowCardinality(inner) => inner.base(),
            other => other,
        }
    }

    /// An Arrow field for a column of this type, carrying the declared type in its metadata.
    pub fn field(&self, name: &str) -> Field {
        let metadata = HashMap::from([(CH_TYPE_KEY.to_string(), self.to_string())]);
        Field::new(name, self.arrow(), self.is_nullable()).with_metadata(metadata)
    }

    /// The ClickHouse type of an Arrow type produced by an expression (no declared type known).
    pub fn from_arrow(dt: &DataType) -> ChType {
        match dt {
            DataType::Int8 => ChType::Int { signed: true, bits: 8 },
            DataType::Int16 => ChType::Int { signed: true, bits: 16 },
            DataType::Int32 => ChType::Int { signed: true, bits: 32 },
            DataType::Int64 => ChType::Int { signed: true, bits: 64 },
            DataType::UInt8 => ChType::Int { signed: false, bits: 8 },
            DataType::UInt16 => ChType::Int { signed: false, bits: 16 },
            DataType::UInt32 => ChType::Int { signed: false, bits: 32 },
            DataType::UInt64 => ChType::Int { signed: false, bits: 64 },
            DataType::Float16 | DataType::Float32 => ChType::Float(32),
            DataType::Float64 => ChType::Float(64),
            DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => ChType::Decimal(*p, *s),
            // ClickHouse comparisons and logical operators return UInt8 0/1.
            DataType::Boolean => ChType::Int { signed: false, bits: 8 },
            DataType::Date32 | DataType::Date64 => ChType::Date { wide: false },
            DataType::Timestamp(unit, tz) => ChType::DateTime {
                precision: match unit {
                    TimeUnit::Second => None,
                    TimeUnit::Millisecond => Some(3),
                    TimeUnit::Microsecond => Some(6),
                    TimeUnit::Nanosecond => Some(9),
                },
                tz: tz.as_ref().map(std::string::ToString::to_string).filter(|t| t != "+00:00" && t != "UTC"),
            },
            // `[]` is `Array(Nothing)` in ClickHouse (an array literal holding NULL, its `Array(Nullable(…))`, is refused
            // before it gets here).
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
                if f.data_type() == &DataType::Null =>
            {
                ChType::Array(Box::new(ChType::Named("Nothing".into())))
            }
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                ChType::Array(Box::new(ChType::of_field(f)))
            }
            DataType::Null => ChType::Nullable(Box::new(ChType::Named("Nothing".into()))),
            _ => ChType::String,
        }
    }

    /// The ClickHouse type of a result field: the declared type when the field carries one, else derived from Arrow.
    pub fn of_field(field: &Field) -> ChType {
        if let Some(declared) = field.metadata().get(CH_TYPE_KEY)
            && let Ok(ty) = ChType::parse(declared)
            && ty.arrow() == *field.data_type()
        {
            return ty;
        }
        ChType::from_arrow(field.data_type())
    }
}

/// Whether a time zone name is UTC under another name (its wall-clock time is the instant).
pub(crate) fn is_utc(tz: &str) -> bool {
    matches!(
        tz,
        "UTC"
            | "Etc/UTC"
            | "GMT"
            | "Etc/GMT"
            | "UCT"
            | "Etc/UCT"
            | "Universal"
            | "Etc/Universal"
            | "Zulu"
            | "Etc/Zulu"
            | "GMT0"
            | "Etc/GMT0"
            | "Etc/GMT+0"
            | "Etc/GMT-0"
            | "Greenwich"
            | "Etc/Greenwich"
    )
}

fn time_unit(precision: Option<u8>) -> TimeUnit {
    match precision {
        None | Some(0) => TimeUnit::Second,
        Some(1..=3) => TimeUnit::Millisecond,
        Some(4..=6) => TimeUnit::Microsecond,
        Some(_) => TimeUnit::Nanosecond,
    }
}

/// A type string read by the SDK's parser.
fn model(text: &str) -> Result<Model, UnsupportedType> {
    text.trim().parse::<Model>().map_err(|e| UnsupportedType(e.to_string()))
}

fn unsupported(text: &str) -> UnsupportedType {
    UnsupportedType(format!("unsupported column type `{text}`"))
}

impl fmt::Display for ChType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChType::Int { signed, bits } => write!(f, "{}Int{bits}", if *signed { "" } else { "U" }),
            ChType::Float(bits) => write!(f, "Float{bits}"),
            ChType::Decimal(p, s) => write!(f, "Decimal({p}, {s})"),
            ChType::String => f.write_str("String"),
            ChType::Bool => f.write_str("Bool"),
            ChType::Date { wide: false } => f.write_str("Date"),
            ChType::Date { wide: true } => f.write_str("Date32"),
            ChType::DateTime { precision: None, tz: None } => f.write_str("DateTime"),
            ChType::DateTime { precision: None, tz: Some(tz) } => write!(f, "DateTime('{tz}')"),
            ChType::DateTime { precision: Some(p), tz: None } => write!(f, "DateTime64({p})"),
            ChType::DateTime { precision: Some(p), tz: Some(tz) } => write!(f, "DateTime64({p}, '{tz}')"),
            ChType::Array(inner) => write!(f, "Array({inner})"),
            ChType::Nullable(inner) => write!(f, "Nullable({inner})"),
            ChType::LowCardinality(inner) => write!(f, "LowCardinality({inner})"),
            ChType::Named(name) | ChType::Opaque(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_type_names() {
        for t in [
            "UInt64",
            "Int8",
            "Float32",
            "String",
            "Bool",
            "Date",
            "Date32",
            "DateTime",
            "DateTime64(3)",
            "DateTime64(6, 'UTC')",
            "Array(Nullable(String))",
            "LowCardinality(String)",
            "Decimal(18, 4)",
            "UUID",
            "FixedString(16)",
        ] {
            assert_eq!(ChType::parse(t).unwrap().to_string(), t);
        }
    }

    #[test]
    fn rejects_unknown_types() {
        assert!(ChType::parse("Map(String, UInt8)").is_err());
        assert!(ChType::parse("Int65").is_err());
        assert!(ChType::parse("DateTime64(12)").is_err());
    }

    #[test]
    fn expression_types_read_as_clickhouse() {
        assert_eq!(ChType::from_arrow(&DataType::Boolean).to_string(), "UInt8");
        assert_eq!(ChType::from_arrow(&DataType::Timestamp(TimeUnit::Second, None)).to_string(), "DateTime");
        assert_eq!(ChType::from_arrow(&DataType::Timestamp(TimeUnit::Millisecond, None)).to_string(), "DateTime64(3)");
    }
}
