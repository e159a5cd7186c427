//! The canonical printer: the form Tinybird prints in `meta` and in datafiles.

use std::fmt::{self, Display, Formatter, Write};

use super::{ChType, TupleElement};

impl Display for ChType {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ChType::String => f.write_str("String"),
            ChType::FixedString(n) => write!(f, "FixedString({n})"),
            ChType::Int8 => f.write_str("Int8"),
            ChType::Int16 => f.write_str("Int16"),
            ChType::Int32 => f.write_str("Int32"),
            ChType::Int64 => f.write_str("Int64"),
            ChType::Int128 => f.write_str("Int128"),
            ChType::Int256 => f.write_str("Int256"),
            ChType::UInt8 => f.write_str("UInt8"),
            ChType::UInt16 => f.write_str("UInt16"),
            ChType::UInt32 => f.write_str("UInt32"),
            ChType::UInt64 => f.write_str("UInt64"),
            ChType::UInt128 => f.write_str("UInt128"),
            ChType::UInt256 => f.write_str("UInt256"),
            ChType::Float32 => f.write_str("Float32"),
            ChType::Float64 => f.write_str("Float64"),
            ChType::Decimal { precision, scale } => write!(f, "Decimal({precision}, {scale})"),
            ChType::Bool => f.write_str("Bool"),
            ChType::Date => f.write_str("Date"),
            ChType::Date32 => f.write_str("Date32"),
            ChType::DateTime(None) => f.write_str("DateTime"),
            ChType::DateTime(Some(tz)) => {
                f.write_str("DateTime(")?;
                write_quoted(f, tz)?;
                f.write_char(')')
            }
            ChType::DateTime64 { precision, tz } => {
                write!(f, "DateTime64({precision}")?;
                if let Some(tz) = tz {
                    f.write_str(", ")?;
                    write_quoted(f, tz)?;
                }
                f.write_char(')')
            }
            ChType::Uuid => f.write_str("UUID"),
            ChType::IPv4 => f.write_str("IPv4"),
            ChType::IPv6 => f.write_str("IPv6"),
            ChType::Nullable(inner) => write!(f, "Nullable({inner})"),
            ChType::LowCardinality(inner) => write!(f, "LowCardinality({inner})"),
            ChType::Array(inner) => write!(f, "Array({inner})"),
            ChType::Map(k, v) => write!(f, "Map({k}, {v})"),
            ChType::Tuple(elements) => {
                f.write_str("Tuple(")?;
                for (i, TupleElement { name, ty }) in elements.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(name) = name {
                        write_identifier(f, name)?;
                        f.write_char(' ')?;
                    }
                    write!(f, "{ty}")?;
                }
                f.write_char(')')
            }
            ChType::Json => f.write_str("JSON"),
            ChType::Enum8(values) => write_enum(f, "Enum8", values.iter().map(|(n, v)| (n, i64::from(*v)))),
            ChType::Enum16(values) => write_enum(f, "Enum16", values.iter().map(|(n, v)| (n, i64::from(*v)))),
            ChType::SimpleAggregateFunction { function, ty } => {
                write!(f, "SimpleAggregateFunction({function}, {ty})")
            }
            ChType::AggregateFunction { function, args } => {
                write!(f, "AggregateFunction({function}")?;
                for arg in args {
                    write!(f, ", {arg}")?;
                }
                f.write_char(')')
            }
            ChType::Nothing => f.write_str("Nothing"),
        }
    }
}

fn write_enum<'a>(f: &mut Formatter<'_>, kind: &str, values: impl Iterator<Item = (&'a String, i64)>) -> fmt::Result {
    f.write_str(kind)?;
    f.write_char('(')?;
    for (i, (name, value)) in values.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_quoted(f, name)?;
        write!(f, " = {value}")?;
    }
    f.write_char(')')
}

/// A ClickHouse single-quoted string literal: `'` and `\` escaped with a backslash.
pub(crate) fn write_quoted(f: &mut impl Write, s: &str) -> fmt::Result {
    f.write_char('\'')?;
    for c in s.chars() {
        match c {
            '\'' => f.write_str("\\'")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            '\0' => f.write_str("\\0")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('\'')
}

/// A tuple element name: bare when it is a plain identifier, back-quoted otherwise.
fn write_identifier(f: &mut Formatter<'_>, name: &str) -> fmt::Result {
    if crate::is_valid_name(name) {
        return f.write_str(name);
    }
    f.write_char('`')?;
    for c in name.chars() {
        match c {
            '`' => f.write_str("\\`")?,
            '\\' => f.write_str("\\\\")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('`')
}
