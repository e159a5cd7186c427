//! Value types for Tinybird types with no natural Rust counterpart. Their own serde is lenient, so fields of these
//! types need no attribute: numbers are read losslessly whether the JSON has them quoted or not.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::wire;

/// A value that does not fit its Tinybird type: says which type and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {ty} value `{value}`: {reason}")]
pub struct ValueError {
    ty: &'static str,
    value: String,
    reason: &'static str,
}

impl ValueError {
    pub(crate) fn new(ty: &'static str, value: &str, reason: &'static str) -> Self {
        // Long inputs are cut so an error never carries a whole payload.
        let value: String = if value.chars().count() > 100 {
            value.chars().take(100).chain("…".chars()).collect()
        } else {
            value.to_owned()
        };
        ValueError { ty, value, reason }
    }
}

/// A `DateTime64(P)` value: a zone-less timestamp with `P` (0..=9) sub-second digits, `P = 3` by default.
///
/// Serialized as `YYYY-MM-DD HH:MM:SS.fff` with exactly `P` digits (none when `P = 0`); deserialized from that form,
/// with `T` as separator too, any number of fractional digits, and an optional UTC offset (converted to UTC).
/// Sub-second digits beyond `P` are truncated when printing, as ClickHouse does when storing.
///
/// ```
/// use tinybird_core::types::DateTime64;
/// let t: DateTime64<3> = serde_json::from_str(r#""2024-05-01 12:30:00.250""#).unwrap();
/// assert_eq!(serde_json::to_string(&t).unwrap(), r#""2024-05-01 12:30:00.250""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime64<const P: u8 = 3>(pub NaiveDateTime);

impl<const P: u8> DateTime64<P> {
    /// Wraps a timestamp.
    pub fn new(value: NaiveDateTime) -> Self {
        DateTime64(value)
    }

    /// The timestamp.
    pub fn into_inner(self) -> NaiveDateTime {
        self.0
    }
}

impl<const P: u8> From<NaiveDateTime> for DateTime64<P> {
    fn from(value: NaiveDateTime) -> Self {
        DateTime64(value)
    }
}

impl<const P: u8> fmt::Display for DateTime64<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&wire::format_datetime64(&self.0, P))
    }
}

impl<const P: u8> FromStr for DateTime64<P> {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        wire::parse_datetime(s).map(DateTime64).ok_or_else(|| ValueError::new("DateTime64", s, wire::DATETIME_EXPECTED))
    }
}

impl<const P: u8> Serialize for DateTime64<P> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de, const P: u8> Deserialize<'de> for DateTime64<P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        wire::deserialize_datetime(deserializer).map(DateTime64)
    }
}

/// Generates a decimal-string-backed big integer type.
macro_rules! big_int {
    ($(#[$doc:meta])* $name:ident, $ty:literal, signed = $signed:literal, max = $max:literal, min = $min:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The value in canonical decimal form (no `+`, no leading zeros).
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                canonical_integer(s, $signed, $max, $min).map($name).map_err(|reason| ValueError::new($ty, s, reason))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            /// As a JSON string: serde_json cannot write a number this wide without `arbitrary_precision`, and
            /// Tinybird's Events API accepts quoted big integers.
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = wire::deserialize_number_text(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                $name(value.to_string())
            }
        }

        impl From<u128> for $name {
            fn from(value: u128) -> Self {
                $name(value.to_string())
            }
        }
    };
}

big_int!(
    /// An `Int256` value, kept as its decimal text (validated to fit 256 bits).
    ///
    /// ```
    /// use tinybird_core::types::Int256;
    /// let v: Int256 = serde_json::from_str("-123456789012345678901234567890123456789012").unwrap();
    /// assert_eq!(v.as_str(), "-123456789012345678901234567890123456789012");
    /// ```
    Int256, "Int256", signed = true,
    max = "57896044618658097711785492504343953926634992332820282019728792003956564819967",
    min = "57896044618658097711785492504343953926634992332820282019728792003956564819968"
);
big_int!(
    /// A `UInt256` value, kept as its decimal text (validated to fit 256 bits).
    ///
    /// ```
    /// use tinybird_core::types::UInt256;
    /// let v: UInt256 = serde_json::from_str(r#""340282366920938463463374607431768211456""#).unwrap();
    /// assert_eq!(v.to_string(), "340282366920938463463374607431768211456");
    /// ```
    UInt256, "UInt256", signed = false,
    max = "115792089237316195423570985008687907853269984665640564039457584007913129639935",
    min = "0"
);

impl From<i64> for Int256 {
    fn from(value: i64) -> Self {
        Int256(value.to_string())
    }
}

impl From<i128> for Int256 {
    fn from(value: i128) -> Self {
        Int256(value.to_string())
    }
}

/// Validates an integer's decimal text and returns it canonical. `min` is the magnitude of the lowest value.
fn canonical_integer(s: &str, signed: bool, max: &str, min: &str) -> Result<String, &'static str> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not an integer");
    }
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let negative = negative && digits != "0";
    if negative && !signed {
        return Err("negative value for an unsigned type");
    }
    let limit = if negative { min } else { max };
    // Same-length decimal strings compare like their numbers.
    if digits.len() > limit.len() || (digits.len() == limit.len() && digits > limit) {
        return Err("out of range");
    }
    Ok(if negative { format!("-{digits}") } else { digits.to_owned() })
}

/// A `Decimal(P, S)` value, kept as its decimal text so no digit is lost (an `f64` would round).
///
/// Accepts `[-+]digits[.digits]` from a JSON number or string; the text is kept as written apart from a leading `+`.
/// Equality is textual: `1.50` and `1.5` are different values.
///
/// ```
/// use tinybird_core::types::Decimal;
/// let d: Decimal = serde_json::from_str("12345678901234567890.123456789").unwrap();
/// assert_eq!(d.as_str(), "12345678901234567890.123456789");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal(String);

impl Decimal {
    /// The value's decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Decimal {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
        let (int, frac) = match unsigned.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (unsigned, None),
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(ValueError::new("Decimal", s, "expected digits with an optional `.` and fraction"));
        }
        Ok(Decimal(s.strip_prefix('+').unwrap_or(s).to_owned()))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Decimal {
    /// As a JSON string, which ClickHouse parses into a Decimal column without rounding.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = wire::deserialize_number_text(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl From<i64> for Decimal {
    fn from(value: i64) -> Self {
        Decimal(value.to_string())
    }
}
