//! ClickHouse column types: parsing Tinybird type strings, mapping them to Arrow and back.

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

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

/// A type string the local engine cannot store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported column type `{0}`")]
pub struct UnsupportedType(pub String);

impl ChType {
    /// Parses a ClickHouse type string such as `Nullable(DateTime64(3, 'UTC'))`.
    pub fn parse(text: &str) -> Result<ChType, UnsupportedType> {
        let t = text.trim();
        let err = || UnsupportedType(text.to_string());
        let (head, inner) = match t.find('(') {
            Some(i) if t.ends_with(')') => (&t[..i], Some(&t[i + 1..t.len() - 1])),
            Some(_) => return Err(err()),
            None => (t, None),
        };
        let ty = match (head, inner) {
            ("Int8", None) => ChType::Int { signed: true, bits: 8 },
            ("Int16", None) => ChType::Int { signed: true, bits: 16 },
            ("Int32", None) => ChType::Int { signed: true, bits: 32 },
            ("Int64", None) => ChType::Int { signed: true, bits: 64 },
            ("UInt8", None) => ChType::Int { signed: false, bits: 8 },
            ("UInt16", None) => ChType::Int { signed: false, bits: 16 },
            ("UInt32", None) => ChType::Int { signed: false, bits: 32 },
            ("UInt64", None) => ChType::Int { signed: false, bits: 64 },
            ("Float32", None) => ChType::Float(32),
            ("Float64", None) => ChType::Float(64),
            ("String", None) => ChType::String,
            ("Bool" | "Boolean", None) => ChType::Bool,
            ("Date", None) => ChType::Date { wide: false },
            ("Date32", None) => ChType::Date { wide: true },
            ("DateTime", None) => ChType::DateTime { precision: None, tz: None },
            ("DateTime", Some(tz)) => ChType::DateTime { precision: None, tz: Some(unquote(tz)) },
            ("DateTime64", Some(args)) => {
                let mut parts = args.splitn(2, ',');
                let p: u8 = parts.next().unwrap_or("").trim().parse().map_err(|_| err())?;
                if p > 9 {
                    return Err(err());
                }
                ChType::DateTime { precision: Some(p), tz: parts.next().map(unquote) }
            }
            ("Decimal", Some(args)) => {
                let mut parts = args.split(',');
                let p: u8 = parts.next().unwrap_or("").trim().parse().map_err(|_| err())?;
                let s: i8 = parts.next().unwrap_or("0").trim().parse().map_err(|_| err())?;
                if p == 0 || p > 38 || s < 0 || s as u8 > p {
                    return Err(err());
                }
                ChType::Decimal(p, s)
            }
            ("Array", Some(i)) => ChType::Array(Box::new(ChType::parse(i)?)),
            ("Nullable", Some(i)) => ChType::Nullable(Box::new(ChType::parse(i)?)),
            ("LowCardinality", Some(i)) => ChType::LowCardinality(Box::new(ChType::parse(i)?)),
            ("SimpleAggregateFunction", Some(args)) => {
                let (_, ty) = args.split_once(',').ok_or_else(err)?;
                ChType::parse(ty)?
            }
            ("UUID" | "IPv4" | "IPv6" | "JSON", None) | ("FixedString" | "Enum8" | "Enum16" | "Enum", Some(_)) => {
                ChType::Named(t.to_string())
            }
            _ => return Err(err()),
        };
        Ok(ty)
    }

    /// [`ChType::parse`], and for the ClickHouse engine also the types only it stores ([`ChType::Opaque`]).
    pub fn parse_for_clickhouse(text: &str) -> Result<ChType, UnsupportedType> {
        if let Ok(ty) = ChType::parse(text) {
            return Ok(ty);
        }
        let t = text.trim();
        let head = t.split('(').next().unwrap_or("").trim();
        let wrapped =
            |inner: &str| t.strip_prefix(inner).and_then(|r| r.strip_prefix('(')).and_then(|r| r.strip_suffix(')'));
        if let Some(inner) = wrapped("Nullable") {
            return Ok(ChType::Nullable(Box::new(ChType::parse_for_clickhouse(inner)?)));
        }
        if let Some(inner) = wrapped("Array") {
            return Ok(ChType::Array(Box::new(ChType::parse_for_clickhouse(inner)?)));
        }
        match head {
            "Int128" | "Int256" | "UInt128" | "UInt256" | "Map" | "Tuple" | "Decimal" | "Decimal32" | "Decimal64"
            | "Decimal128" | "Decimal256" | "AggregateFunction" => Ok(ChType::Opaque(t.to_string())),
            _ => Err(UnsupportedType(text.to_string())),
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

fn time_unit(precision: Option<u8>) -> TimeUnit {
    match precision {
        None | Some(0) => TimeUnit::Second,
        Some(1..=3) => TimeUnit::Millisecond,
        Some(4..=6) => TimeUnit::Microsecond,
        Some(_) => TimeUnit::Nanosecond,
    }
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('\'').to_string()
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
