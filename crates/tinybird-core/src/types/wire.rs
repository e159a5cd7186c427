//! Serde in Tinybird's JSON forms, for fields whose Rust type has a different serde form of its own.
//!
//! Use the module as `#[serde(with = "tinybird::types::wire")]` on a field of any type implementing [`WireFormat`]
//! (integers, floats, `bool`, chrono dates and times, `Option`, `Vec` and maps of these), or wrap a value in
//! [`Wire`]. The forms:
//! - `DateTime` (`NaiveDateTime`, `DateTime<Utc>`): `YYYY-MM-DD HH:MM:SS` out; in, also `T` as separator, fractional
//!   seconds and an optional UTC offset (converted to UTC). `DateTime` has second precision, so sub-seconds are
//!   dropped on output, as ClickHouse does. `Date` (`NaiveDate`): `YYYY-MM-DD`.
//! - Integers of any width: a JSON number or a JSON string (Tinybird quotes 64-bit integers when asked with
//!   `output_format_json_quote_64bit_integers=1`). 128-bit integers are read from the raw JSON text, so they are
//!   exact although serde_json's `arbitrary_precision` is off; this needs the value to come straight from a
//!   serde_json deserializer or a `serde_json::Value` (not from inside `#[serde(flatten)]` or an untagged enum).
//!   A `Value` already holds numbers beyond 64 bits as `f64`, so those are rejected rather than rounded.
//! - Floats: a number, `null` (which Tinybird writes for NaN and ±inf by default) as NaN, and the strings `nan`,
//!   `inf`, `-inf` (written with `output_format_json_quote_denormals=1`). Non-finite floats are written as those
//!   strings, since JSON has no number for them.
//! - `bool`: `true`/`false`, `1`/`0`, and those as strings.
//!
//! ```
//! use chrono::NaiveDateTime;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Row {
//!     #[serde(with = "tinybird_core::types::wire")]
//!     at: NaiveDateTime,
//!     #[serde(with = "tinybird_core::types::wire")]
//!     hits: u64,
//!     #[serde(with = "tinybird_core::types::wire")]
//!     big: Option<i128>,
//! }
//! let row: Row = serde_json::from_str(
//!     r#"{"at":"2024-01-02 03:04:05","hits":"18446744073709551615","big":-170141183460469231731687303715884105728}"#,
//! ).unwrap();
//! assert_eq!(row.hits, u64::MAX);
//! assert_eq!(row.big, Some(i128::MIN));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::rowjson::{Cursor, wire as fast};

/// A type with a Tinybird JSON form differing from (or more lenient than) its own serde form.
pub trait WireFormat: Sized {
    /// Writes the value in Tinybird's form.
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
    /// Reads the value from any of the forms Tinybird may send.
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
    /// Reads the value straight from a response body, exactly as [`deserialize_wire`](Self::deserialize_wire)
    /// would from serde_json, or `None` when it cannot (the body is then decoded by serde). The default reads
    /// nothing. Used by the row readers the derives generate.
    #[doc(hidden)]
    fn read_fast(c: &mut Cursor<'_>) -> Option<Self> {
        let _ = c;
        None
    }
}

/// `#[serde(with = "…::wire")]` entry point: serializes in Tinybird's form.
pub fn serialize<T: WireFormat, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    value.serialize_wire(serializer)
}

/// `#[serde(with = "…::wire")]` entry point: deserializes from Tinybird's forms.
pub fn deserialize<'de, T: WireFormat, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    T::deserialize_wire(deserializer)
}

/// A value serialized in Tinybird's form, e.g. `Vec<Wire<NaiveDateTime>>` or `serde_json::to_string(&Wire(t))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Wire<T>(pub T);

impl<T: WireFormat> Serialize for Wire<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_wire(serializer)
    }
}

/// A borrowed value serialized in Tinybird's form (for containers).
struct WireRef<'a, T>(&'a T);

impl<T: WireFormat> Serialize for WireRef<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_wire(serializer)
    }
}

impl<'de, T: WireFormat> Deserialize<'de> for Wire<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize_wire(deserializer).map(Wire)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Integers

/// The text of a JSON number, or the content of a JSON string, read without going through `f64`.
pub(crate) fn deserialize_number_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    let text = raw.get().trim();
    if text.starts_with('"') {
        return serde_json::from_str::<String>(text).map_err(de::Error::custom);
    }
    if text.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        return Ok(text.to_owned());
    }
    Err(de::Error::invalid_value(de::Unexpected::Other(text), &"a number or a string holding a number"))
}

struct IntVisitor<T>(std::marker::PhantomData<T>, &'static str);

impl<T> Visitor<'_> for IntVisitor<T>
where
    T: TryFrom<u64> + TryFrom<i64> + std::str::FromStr,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a JSON number or string", self.1)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format_args!("{v} is out of range for {}", self.1)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format_args!("{v} is out of range for {}", self.1)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Err(E::custom(format_args!(
            "{v} is not an exact {}: the number was read as a float (too large for 64 bits, or fractional)",
            self.1
        )))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        let digits = v.strip_prefix('+').unwrap_or(v);
        digits.parse().map_err(|_| E::custom(format_args!("`{v}` is not a valid {}", self.1)))
    }
}

macro_rules! int_64 {
    ($($t:ty => $name:literal),*) => {$(
        impl WireFormat for $t {
            fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.serialize(serializer)
            }
            fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(IntVisitor::<$t>(std::marker::PhantomData, $name))
            }
            #[inline]
            fn read_fast(c: &mut Cursor<'_>) -> Option<Self> {
                fast::int(c)
            }
        }
    )*};
}
int_64!(i8 => "Int8", i16 => "Int16", i32 => "Int32", i64 => "Int64", u8 => "UInt8", u16 => "UInt16",
    u32 => "UInt32", u64 => "UInt64", isize => "Int64", usize => "UInt64");

macro_rules! int_128 {
    ($($t:ty => $name:literal),*) => {$(
        impl WireFormat for $t {
            /// As a JSON number: serde_json writes 128-bit integers exactly.
            fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.serialize(serializer)
            }
            fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = deserialize_number_text(deserializer)?;
                let digits = text.strip_prefix('+').unwrap_or(&text);
                digits.parse().map_err(|_| {
                    de::Error::custom(format_args!("`{text}` is not a valid {} (an integer in range)", $name))
                })
            }
        }
    )*};
}
int_128!(i128 => "Int128", u128 => "UInt128");

// ---------------------------------------------------------------------------------------------------------------
// Floats and bools

struct FloatVisitor;

impl Visitor<'_> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, null, or one of the strings nan, inf, -inf")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
    fn visit_none<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        parse_float(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// Parses what ClickHouse writes for a float: decimal text and `nan`/`inf`/`-inf`/`+inf`.
pub(crate) fn parse_float(v: &str) -> Option<f64> {
    match v.to_ascii_lowercase().as_str() {
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => v.parse().ok(),
    }
}

fn serialize_float<S: Serializer>(v: f64, serializer: S) -> Result<S::Ok, S::Error> {
    if v.is_nan() {
        serializer.serialize_str("nan")
    } else if v.is_infinite() {
        serializer.serialize_str(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        serializer.serialize_f64(v)
    }
}

impl WireFormat for f64 {
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_float(*self, serializer)
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FloatVisitor)
    }
    #[inline]
    fn read_fast(c: &mut Cursor<'_>) -> Option<Self> {
        fast::float(c)
    }
}

impl WireFormat for f32 {
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_finite() { serializer.serialize_f32(*self) } else { serialize_float(f64::from(*self), serializer) }
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // ClickHouse prints a Float32 with its shortest f32 digits, so narrowing gives back the exact value.
        deserializer.deserialize_any(FloatVisitor).map(|v| v as f32)
    }
    #[inline]
    fn read_fast(c: &mut Cursor<'_>) -> Option<Self> {
        fast::float(c).map(|v| v as f32)
    }
}

struct BoolVisitor;

impl Visitor<'_> for BoolVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true, false, 1 or 0")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

impl WireFormat for bool {
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(*self)
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BoolVisitor)
    }
    #[inline]
    fn read_fast(c: &mut Cursor<'_>) -> Option<Self> {
        fast::bool(c)
    }
}

impl WireFormat for String {
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)
    }
    #[inline]
    fn read_fast(c: &mut Cursor<'_>) -> Option<Self> {
        fast::string(c)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Dates and times

pub(crate) const DATETIME_EXPECTED: &str = "expected `YYYY-MM-DD HH:MM:SS[.fff]` (or with `T`, or RFC 3339)";

/// Parses the forms a DateTime/DateTime64 may arrive in; an explicit offset is converted to UTC.
pub(crate) fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    parse_datetime_fast(s.as_bytes()).or_else(|| parse_datetime_general(s))
}

/// The other forms a date-time may arrive in, through chrono's format interpreter.
fn parse_datetime_general(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|t| t.naive_utc()))
        .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z").ok().map(|t| t.naive_utc()))
}

/// `digits` ASCII digits at `at` as a number, or None.
fn digits_at(b: &[u8], at: usize, len: usize) -> Option<u32> {
    b.get(at..at + len)?.iter().try_fold(0u32, |n, &c| {
        let d = c.wrapping_sub(b'0');
        (d <= 9).then(|| n * 10 + u32::from(d))
    })
}

/// `YYYY-MM-DD`, the exact form ClickHouse prints, without chrono's format interpreter; None for anything else
/// (including invalid dates), which the general parser then handles or rejects.
fn parse_date_fast(b: &[u8]) -> Option<NaiveDate> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits_at(b, 0, 4)? as i32, digits_at(b, 5, 2)?, digits_at(b, 8, 2)?)
}

/// Parses exactly `YYYY-MM-DD HH:MM:SS[.f{1,9}]`, the form ClickHouse prints for `DateTime`/`DateTime64`, without
/// chrono's format interpreter (decoding a large result spends most of its time there otherwise). `None` for any
/// other form or an invalid date or time; callers then try the general parsers.
///
/// ```
/// let t = tinybird_core::types::wire::parse_datetime_fast(b"2024-02-29 23:59:59.25").unwrap();
/// assert_eq!(t.to_string(), "2024-02-29 23:59:59.250");
/// assert!(tinybird_core::types::wire::parse_datetime_fast(b"2023-02-29 00:00:00").is_none());
/// ```
pub fn parse_datetime_fast(b: &[u8]) -> Option<NaiveDateTime> {
    if b.len() < 19 || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = parse_date_fast(&b[..10])?;
    let (h, m, s) = (digits_at(b, 11, 2)?, digits_at(b, 14, 2)?, digits_at(b, 17, 2)?);
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            digits_at(frac, 0, frac.len())? * 10u32.pow(9 - frac.len() as u32)
        }
        _ => return None,
    };
    date.and_hms_nano_opt(h, m, s, nanos)
}

/// Writes `n` into `slot` as exactly `slot.len()` digits, zero-padded (`n` < 10^len).
#[inline]
fn put_digits(slot: &mut [u8], mut n: u32) {
    for b in slot.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// ClickHouse date text built in one buffer, shared with tinybird-local's writers: reached through
/// `__private::wire_text`, not part of the public API.
pub(crate) mod text {
    use super::put_digits;

    /// A calendar date and time of day, as [`push_datetime_text`] writes it.
    #[derive(Debug, Clone, Copy)]
    pub struct CivilDateTime {
        /// 0 to 9999.
        pub year: u32,
        /// 1 to 12.
        pub month: u32,
        /// 1 to 31.
        pub day: u32,
        /// 0 to 23.
        pub hour: u32,
        /// 0 to 59.
        pub minute: u32,
        /// 0 to 60 (a leap second prints as 60).
        pub second: u32,
        /// 0 to 999,999,999.
        pub nanos: u32,
    }

    /// Appends `YYYY-MM-DD` for a year of 0 to 9999, built in one buffer. Shared with tinybird-local's writers.
    #[inline]
    pub fn push_date_text(out: &mut String, year: u32, month: u32, day: u32) {
        let mut buf = *b"0000-00-00";
        put_digits(&mut buf[0..4], year);
        put_digits(&mut buf[5..7], month);
        put_digits(&mut buf[8..10], day);
        // ASCII digits and dashes: always valid UTF-8.
        out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
    }

    /// Appends `YYYY-MM-DD HH:MM:SS`, then `.` and `precision` (at most 9) sub-second digits when `precision` > 0, built
    /// in one buffer. Shared with tinybird-local's writers.
    #[inline]
    pub fn push_datetime_text(out: &mut String, t: CivilDateTime, precision: u8) {
        let mut buf = *b"0000-00-00 00:00:00.000000000";
        put_digits(&mut buf[0..4], t.year);
        put_digits(&mut buf[5..7], t.month);
        put_digits(&mut buf[8..10], t.day);
        put_digits(&mut buf[11..13], t.hour);
        put_digits(&mut buf[14..16], t.minute);
        put_digits(&mut buf[17..19], t.second);
        let digits = usize::from(precision.min(9));
        let len = if digits > 0 {
            put_digits(&mut buf[20..20 + digits], t.nanos.min(999_999_999) / 10u32.pow(9 - digits as u32));
            20 + digits
        } else {
            19
        };
        out.push_str(std::str::from_utf8(&buf[..len]).unwrap_or_default());
    }
}
pub(crate) use text::{CivilDateTime, push_date_text, push_datetime_text};

/// Appends `YYYY-MM-DD`, ClickHouse's `Date` text, without chrono's format interpreter; years outside 0..=9999
/// (which ClickHouse cannot store) go through chrono's formatter.
pub fn write_date(out: &mut String, d: &NaiveDate) {
    use chrono::Datelike;
    match u32::try_from(d.year()) {
        Ok(y) if y <= 9999 => push_date_text(out, y, d.month(), d.day()),
        _ => {
            use fmt::Write;
            let _ = write!(out, "{}", d.format("%Y-%m-%d"));
        }
    }
}

/// Appends `YYYY-MM-DD HH:MM:SS`, then `.` and exactly `precision` sub-second digits when `precision` > 0
/// (truncated, as ClickHouse stores them; at most 9): the text of `DateTime` and `DateTime64(precision)`.
///
/// ```
/// let t = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap().and_hms_milli_opt(3, 4, 5, 678).unwrap();
/// let mut out = String::new();
/// tinybird_core::types::wire::write_datetime(&mut out, &t, 2);
/// assert_eq!(out, "2024-01-02 03:04:05.67");
/// ```
pub fn write_datetime(out: &mut String, t: &NaiveDateTime, precision: u8) {
    use chrono::Datelike;
    let year = match u32::try_from(t.year()) {
        Ok(y) if y <= 9999 => y,
        _ => {
            write_date(out, &t.date());
            out.push(' ');
            let mut rest = String::new();
            push_datetime_text(&mut rest, civil_time(t, 0), precision);
            out.push_str(&rest[11..]);
            return;
        }
    };
    push_datetime_text(out, civil_time(t, year), precision);
}

/// The fields of `t`, with `year` given.
fn civil_time(t: &NaiveDateTime, year: u32) -> CivilDateTime {
    use chrono::{Datelike, Timelike};
    CivilDateTime {
        year,
        month: t.month(),
        day: t.day(),
        hour: t.hour(),
        minute: t.minute(),
        // A leap second (nanosecond ≥ 10^9) prints as second 60, as chrono's `%S` does.
        second: t.second() + u32::from(t.nanosecond() >= 1_000_000_000),
        nanos: t.and_utc().timestamp_subsec_nanos().min(999_999_999),
    }
}

/// `YYYY-MM-DD HH:MM:SS`, the form Tinybird prints and parses for `DateTime`.
pub(crate) fn format_datetime(t: &NaiveDateTime) -> String {
    format_datetime64(t, 0)
}

/// `YYYY-MM-DD HH:MM:SS.f…` with exactly `precision` digits (truncated, as ClickHouse stores them).
pub(crate) fn format_datetime64(t: &NaiveDateTime, precision: u8) -> String {
    let mut out = String::with_capacity(30);
    write_datetime(&mut out, t, precision);
    out
}

struct DateTimeVisitor;

impl Visitor<'_> for DateTimeVisitor {
    type Value = NaiveDateTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a date-time string `YYYY-MM-DD HH:MM:SS` or a Unix timestamp in seconds")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<NaiveDateTime, E> {
        parse_datetime(v).ok_or_else(|| E::custom(format_args!("invalid date-time `{v}`: {DATETIME_EXPECTED}")))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NaiveDateTime, E> {
        i64::try_from(v)
            .ok()
            .and_then(|v| DateTime::from_timestamp(v, 0))
            .map(|t| t.naive_utc())
            .ok_or_else(|| E::custom(format_args!("Unix timestamp {v} is out of range")))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NaiveDateTime, E> {
        DateTime::from_timestamp(v, 0)
            .map(|t| t.naive_utc())
            .ok_or_else(|| E::custom(format_args!("Unix timestamp {v} is out of range")))
    }
}

pub(crate) fn deserialize_datetime<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDateTime, D::Error> {
    deserializer.deserialize_any(DateTimeVisitor)
}

impl WireFormat for NaiveDateTime {
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_datetime(self))
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_datetime(deserializer)
    }
    #[inline]
    fn read_fast(c: &mut Cursor<'_>) -> Option<Self> {
        parse_datetime(fast::text(c)?)
    }
}

impl WireFormat for DateTime<Utc> {
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_datetime(&self.naive_utc()))
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_datetime(deserializer).map(|t| t.and_utc())
    }
    #[inline]
    fn read_fast(c: &mut Cursor<'_>) -> Option<Self> {
        parse_datetime(fast::text(c)?).map(|t| t.and_utc())
    }
}

struct DateVisitor;

impl Visitor<'_> for DateVisitor {
    type Value = NaiveDate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a date string `YYYY-MM-DD`")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<NaiveDate, E> {
        parse_date(v).map_err(|e| E::custom(format_args!("invalid date `{v}`: expected `YYYY-MM-DD` ({e})")))
    }
}

/// `YYYY-MM-DD`, surrounding whitespace ignored.
fn parse_date(v: &str) -> chrono::ParseResult<NaiveDate> {
    let v = v.trim();
    if v.len() == 10
        && let Some(d) = parse_date_fast(v.as_bytes())
    {
        return Ok(d);
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
}

impl WireFormat for NaiveDate {
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(10);
        write_date(&mut out, self);
        serializer.serialize_str(&out)
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(DateVisitor)
    }
    #[inline]
    fn read_fast(c: &mut Cursor<'_>) -> Option<Self> {
        parse_date(fast::text(c)?).ok()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Containers

impl<T: WireFormat> WireFormat for Option<T> {
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(v) => serializer.serialize_some(&WireRef(v)),
            None => serializer.serialize_none(),
        }
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<Wire<T>>::deserialize(deserializer).map(|v| v.map(|w| w.0))
    }
    #[inline]
    fn read_fast(c: &mut Cursor<'_>) -> Option<Self> {
        if fast::null(c) { Some(None) } else { T::read_fast(c).map(Some) }
    }
}

impl<T: WireFormat> WireFormat for Vec<T> {
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(WireRef))
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Wire<T>>::deserialize(deserializer).map(|v| v.into_iter().map(|w| w.0).collect())
    }
    fn read_fast(c: &mut Cursor<'_>) -> Option<Self> {
        fast::array(c, T::read_fast)
    }
}

impl<K, V, H> WireFormat for HashMap<K, V, H>
where
    K: Serialize + for<'a> Deserialize<'a> + Eq + Hash,
    V: WireFormat,
    H: BuildHasher + Default,
{
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter().map(|(k, v)| (k, WireRef(v))))
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        HashMap::<K, Wire<V>, H>::deserialize(deserializer).map(|m| m.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}

impl<K, V> WireFormat for BTreeMap<K, V>
where
    K: Serialize + for<'a> Deserialize<'a> + Ord,
    V: WireFormat,
{
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter().map(|(k, v)| (k, WireRef(v))))
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<K, Wire<V>>::deserialize(deserializer).map(|m| m.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}

/// Types whose own serde already is Tinybird's form.
macro_rules! own_serde {
    ($($t:ty),*) => {$(
        impl WireFormat for $t {
            fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.serialize(serializer)
            }
            fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$t>::deserialize(deserializer)
            }
        }
    )*};
}
own_serde!(
    serde_json::Value,
    uuid::Uuid,
    std::net::Ipv4Addr,
    std::net::Ipv6Addr,
    super::Int256,
    super::UInt256,
    super::Decimal
);

impl<const P: u8> WireFormat for super::DateTime64<P> {
    fn serialize_wire<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize(serializer)
    }
    fn deserialize_wire<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written date/time paths agree with chrono's format interpreter, value for value.
    #[test]
    fn fast_datetime_paths_agree_with_chrono() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let start = NaiveDate::from_ymd_opt(1900, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap();
        for i in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let t = start + chrono::TimeDelta::nanoseconds((seed % (300 * 365 * 86_400 * 1_000_000_000)) as i64);
            let t = if i % 2 == 0 { chrono::Timelike::with_nanosecond(&t, 0).unwrap() } else { t };
            assert_eq!(format_datetime(&t), t.format("%Y-%m-%d %H:%M:%S").to_string());
            let precision = (i % 10) as u8;
            if precision > 0 {
                let nanos = t.format("%9f").to_string();
                let expected = format!("{}.{}", t.format("%Y-%m-%d %H:%M:%S"), &nanos[..usize::from(precision)]);
                assert_eq!(format_datetime64(&t, precision), expected);
            }
            let text = t.format("%Y-%m-%d %H:%M:%S%.f").to_string();
            assert_eq!(parse_datetime_fast(text.as_bytes()), Some(t), "{text}");
            assert_eq!(parse_datetime_general(&text), Some(t), "{text}");
            let mut d = String::new();
            write_date(&mut d, &t.date());
            assert_eq!(d, t.date().format("%Y-%m-%d").to_string());
        }
    }

    /// Malformed and out-of-range text is refused by the fast path and then by the general parser.
    #[test]
    fn fast_datetime_path_refuses_what_chrono_refuses() {
        for bad in [
            "2024-13-01 00:00:00",
            "2024-02-30 00:00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 00:60:00",
            "2024-01-01 00:00:61",
            "2024-01-01 00:00:0a",
            "2024-01-01 00:00:00.",
            "2024-01-01 00:00:00.1234567890x",
            "+024-01-01 00:00:00",
            "2024-01-01x00:00:00",
        ] {
            assert_eq!(parse_datetime_fast(bad.as_bytes()), None, "{bad}");
            assert_eq!(parse_datetime(bad), parse_datetime_general(bad), "{bad}");
        }
        assert_eq!(
            parse_datetime_fast(b"2024-02-29 23:59:59.5").map(|t| t.to_string()),
            Some("2024-02-29 23:59:59.500".into())
        );
        assert_eq!(parse_date_fast(b"2023-02-29"), None);
        // Single-digit fields are left to chrono, which accepts them.
        assert_eq!(parse_datetime_fast(b"2024-1-01 00:00:00"), None);
        assert!(parse_datetime("2024-1-01 00:00:00").is_some());
        let d: Wire<NaiveDate> = serde_json::from_str("\"2024-02-29\"").unwrap();
        assert_eq!(d.0, NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        assert!(serde_json::from_str::<Wire<NaiveDate>>("\"2023-02-29\"").is_err());
        assert_eq!(serde_json::to_string(&Wire(NaiveDate::from_ymd_opt(33, 1, 2).unwrap())).unwrap(), "\"0033-01-02\"");
    }
}
