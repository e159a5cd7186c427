//! Encoding Rust values as Tinybird request parameters and as JWT `fixed_params` (Tinybird's API endpoint and JWT docs).
//!
//! ```
//! use tinybird_core::params::QueryParams;
//!
//! let mut params = QueryParams::new();
//! params.add("limit", &10u32);
//! params.add("country", &Some("ES"));
//! params.add("ids", &vec![1u64, 2]);
//! params.add("cursor", &None::<String>);
//! assert_eq!(params.to_query_string(), "limit=10&country=ES&ids=1&ids=2");
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use crate::types::wire::{format_datetime, format_datetime64};
use crate::types::{DateTime64, Decimal, Int256, UInt256};

/// Request parameters in order. A key may repeat (arrays are sent as repeated keys, which the renderer takes as a list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one `key=value` pair.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.pairs.push((key.into(), value.into()));
    }

    /// Adds a parameter from a Rust value; `None` adds nothing, a `Vec` adds one pair per element.
    pub fn add<T: ToParam + ?Sized>(&mut self, key: &str, value: &T) {
        value.to_param(key, self);
    }

    /// The pairs, in the order they were added.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs as an `application/x-www-form-urlencoded` string (also valid as a URL query).
    pub fn to_query_string(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            form_encode(k, &mut out);
            out.push('=');
            form_encode(v, &mut out);
        }
        out
    }
}

impl<'a> IntoIterator for &'a QueryParams {
    type Item = &'a (String, String);
    type IntoIter = std::slice::Iter<'a, (String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.pairs.iter()
    }
}

/// Form encoding: unreserved bytes as is, space as `+`, everything else percent-encoded.
fn form_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

/// A Rust value usable as an endpoint parameter, encoded as the template functions expect it (as Tinybird's typed template functions read them):
/// integers in plain decimal, floats in Rust's shortest round-trip form (which Python's `float()` reads, `inf` and
/// `NaN` included), `bool` as `true`/`false`, `Date` as `YYYY-MM-DD`, `DateTime` as `YYYY-MM-DD HH:MM:SS`,
/// `DateTime64<P>` with at least 3 fractional digits (the `DateTime64()` validator requires them), sequences as
/// one pair per element (repeated keys), `None` as no pair at all, JSON values and maps as compact JSON text.
pub trait ToParam {
    /// Appends this value's pairs for `key`.
    fn to_param(&self, key: &str, out: &mut QueryParams);
}

/// A Rust value usable as a JWT fixed param: keeps its JSON type (Tinybird's JWT docs, fixed params).
///
/// Numbers stay JSON numbers (`u64` exactly), `bool`s stay booleans, dates and times become Tinybird's strings,
/// sequences arrays. Integers wider than 64 bits (`i128`, `u128`, `Int256`, `UInt256`) and `Decimal`s are always JSON
/// *strings*: serde_json cannot hold such numbers without `arbitrary_precision`, and a type-dependent (not
/// value-dependent) form keeps a param's rendering stable. Typed template functions (`Int128(x)`, `Decimal…`) render
/// a string and a number the same way. Non-finite floats, which JSON cannot hold, become `"nan"`, `"inf"`, `"-inf"`.
pub trait FixedValue {
    /// The value as JSON.
    fn to_fixed(&self) -> Value;
}

macro_rules! display_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self, key: &str, out: &mut QueryParams) {
                out.push(key, self.to_string());
            }
        }
    )*};
}
display_param!(
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    f32,
    f64,
    bool,
    char,
    String,
    str,
    Ipv4Addr,
    Ipv6Addr,
    uuid::Uuid,
    Int256,
    UInt256,
    Decimal
);

impl ToParam for Cow<'_, str> {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        out.push(key, self.as_ref());
    }
}

impl ToParam for NaiveDate {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        out.push(key, self.format("%Y-%m-%d").to_string());
    }
}

impl ToParam for NaiveDateTime {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        out.push(key, format_datetime(self));
    }
}

impl ToParam for DateTime<Utc> {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        out.push(key, format_datetime(&self.naive_utc()));
    }
}

impl<const P: u8> ToParam for DateTime64<P> {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        out.push(key, format_datetime64(&self.0, P.max(3)));
    }
}

impl ToParam for Value {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        out.push(key, self.to_string());
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        (**self).to_param(key, out);
    }
}

impl<T: ToParam + ?Sized> ToParam for Box<T> {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        (**self).to_param(key, out);
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        if let Some(v) = self {
            v.to_param(key, out);
        }
    }
}

impl<T: ToParam> ToParam for [T] {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        for v in self {
            v.to_param(key, out);
        }
    }
}

impl<T: ToParam> ToParam for Vec<T> {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        self.as_slice().to_param(key, out);
    }
}

impl<T: ToParam, const N: usize> ToParam for [T; N] {
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        self.as_slice().to_param(key, out);
    }
}

impl<K: FixedKey, V: FixedValue, H> ToParam for HashMap<K, V, H> {
    /// As a JSON object, for a `JSON(x)` param.
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        out.push(key, self.to_fixed().to_string());
    }
}

impl<K: FixedKey, V: FixedValue> ToParam for BTreeMap<K, V> {
    /// As a JSON object, for a `JSON(x)` param.
    fn to_param(&self, key: &str, out: &mut QueryParams) {
        out.push(key, self.to_fixed().to_string());
    }
}

macro_rules! tuple_param {
    ($($name:ident . $idx:tt),+) => {
        impl<$($name: ToParam),+> ToParam for ($($name,)+) {
            /// One pair per element, like an array.
            fn to_param(&self, key: &str, out: &mut QueryParams) {
                $(self.$idx.to_param(key, out);)+
            }
        }
        impl<$($name: FixedValue),+> FixedValue for ($($name,)+) {
            /// A JSON array.
            fn to_fixed(&self) -> Value {
                Value::Array(vec![$(self.$idx.to_fixed()),+])
            }
        }
    };
}
tuple_param!(A.0);
tuple_param!(A.0, B.1);
tuple_param!(A.0, B.1, C.2);
tuple_param!(A.0, B.1, C.2, D.3);
tuple_param!(A.0, B.1, C.2, D.3, E.4);
tuple_param!(A.0, B.1, C.2, D.3, E.4, F.5);

// ---------------------------------------------------------------------------------------------------------------
// Fixed values

macro_rules! number_fixed {
    ($($t:ty),*) => {$(
        impl FixedValue for $t {
            fn to_fixed(&self) -> Value {
                Value::from(*self)
            }
        }
    )*};
}
number_fixed!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, bool);

macro_rules! string_fixed {
    ($($t:ty),*) => {$(
        impl FixedValue for $t {
            fn to_fixed(&self) -> Value {
                Value::String(self.to_string())
            }
        }
    )*};
}
string_fixed!(i128, u128, char, String, str, Ipv4Addr, Ipv6Addr, uuid::Uuid, Int256, UInt256, Decimal);

fn float_fixed(v: f64) -> Value {
    match serde_json::Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None if v.is_nan() => Value::String("nan".to_owned()),
        None if v > 0.0 => Value::String("inf".to_owned()),
        None => Value::String("-inf".to_owned()),
    }
}

impl FixedValue for f64 {
    fn to_fixed(&self) -> Value {
        float_fixed(*self)
    }
}

impl FixedValue for f32 {
    fn to_fixed(&self) -> Value {
        // Through the shortest f32 text, so 0.1f32 becomes 0.1 and not 0.10000000149011612.
        match self.to_string().parse::<f64>() {
            Ok(v) => float_fixed(v),
            Err(_) => float_fixed(f64::from(*self)),
        }
    }
}

impl FixedValue for Cow<'_, str> {
    fn to_fixed(&self) -> Value {
        Value::String(self.as_ref().to_owned())
    }
}

impl FixedValue for NaiveDate {
    fn to_fixed(&self) -> Value {
        Value::String(self.format("%Y-%m-%d").to_string())
    }
}

impl FixedValue for NaiveDateTime {
    fn to_fixed(&self) -> Value {
        Value::String(format_datetime(self))
    }
}

impl FixedValue for DateTime<Utc> {
    fn to_fixed(&self) -> Value {
        Value::String(format_datetime(&self.naive_utc()))
    }
}

impl<const P: u8> FixedValue for DateTime64<P> {
    fn to_fixed(&self) -> Value {
        Value::String(format_datetime64(&self.0, P.max(3)))
    }
}

impl FixedValue for Value {
    fn to_fixed(&self) -> Value {
        self.clone()
    }
}

impl<T: FixedValue + ?Sized> FixedValue for &T {
    fn to_fixed(&self) -> Value {
        (**self).to_fixed()
    }
}

impl<T: FixedValue + ?Sized> FixedValue for Box<T> {
    fn to_fixed(&self) -> Value {
        (**self).to_fixed()
    }
}

impl<T: FixedValue> FixedValue for Option<T> {
    /// `None` is JSON `null`; a fixed-params struct leaves unset params out instead of calling this.
    fn to_fixed(&self) -> Value {
        self.as_ref().map_or(Value::Null, FixedValue::to_fixed)
    }
}

impl<T: FixedValue> FixedValue for [T] {
    fn to_fixed(&self) -> Value {
        Value::Array(self.iter().map(FixedValue::to_fixed).collect())
    }
}

impl<T: FixedValue> FixedValue for Vec<T> {
    fn to_fixed(&self) -> Value {
        self.as_slice().to_fixed()
    }
}

impl<T: FixedValue, const N: usize> FixedValue for [T; N] {
    fn to_fixed(&self) -> Value {
        self.as_slice().to_fixed()
    }
}

/// A map key usable in a JSON object: its text form.
pub trait FixedKey {
    /// The key as a JSON object key.
    fn to_key(&self) -> String;
}

macro_rules! fixed_key {
    ($($t:ty),*) => {$(
        impl FixedKey for $t {
            fn to_key(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
fixed_key!(String, str, i8, i16, i32, i64, i128, u8, u16, u32, u64, u128, bool, char, uuid::Uuid);

impl<T: FixedKey + ?Sized> FixedKey for &T {
    fn to_key(&self) -> String {
        (**self).to_key()
    }
}

impl<K: FixedKey, V: FixedValue, H> FixedValue for HashMap<K, V, H> {
    fn to_fixed(&self) -> Value {
        // Sorted so the JSON is the same on every run.
        let mut entries: Vec<(String, Value)> = self.iter().map(|(k, v)| (k.to_key(), v.to_fixed())).collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Object(entries.into_iter().collect())
    }
}

impl<K: FixedKey, V: FixedValue> FixedValue for BTreeMap<K, V> {
    fn to_fixed(&self) -> Value {
        Value::Object(self.iter().map(|(k, v)| (k.to_key(), v.to_fixed())).collect())
    }
}
