//! ClickHouse's `JSONExtract*` family over one document: a path of keys and 1-based (or negative) indexes, and what
//! each function makes of the value it finds. Objects keep their keys in document order (the first of duplicate
//! keys wins, as in ClickHouse), so `JSONExtractRaw` writes them back as ClickHouse does.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A parsed JSON value, objects in document order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// One step of a path: an object key, or an array index (1-based; negative counts from the end).
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(i64),
}

impl Json {
    /// The document, or `None` when it is not JSON (every function then gives its default).
    pub(crate) fn parse(text: &str) -> Option<Json> {
        serde_json::from_str(text).ok()
    }

    pub(crate) fn get(&self, step: Step<'_>) -> Option<&Json> {
        match (self, step) {
            (Json::Object(entries), Step::Key(k)) => entries.iter().find(|(key, _)| key == k).map(|(_, v)| v),
            (Json::Array(items), Step::Index(i)) => items.get(position(i, items.len())?),
            // An index into an object takes its members in document order.
            (Json::Object(entries), Step::Index(i)) => entries.get(position(i, entries.len())?).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `JSONExtractInt`: integers in range, floats truncated toward zero when in range, numbers written as strings
    /// read as numbers (`"7"`, `"7.5"`, `"+5"`, `"1e3"`); anything else (booleans, out-of-range numbers, other text) 0.
    pub(crate) fn to_i64(&self) -> i64 {
        match self.number() {
            Some(Json::Int(n)) => n,
            Some(Json::UInt(n)) => i64::try_from(n).unwrap_or(0),
            Some(Json::Float(f)) if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) => {
                f as i64
            }
            _ => 0,
        }
    }

    /// `JSONExtractUInt`: as [`Json::to_i64`], with negative numbers 0.
    pub(crate) fn to_u64(&self) -> u64 {
        match self.number() {
            Some(Json::Int(n)) => u64::try_from(n).unwrap_or(0),
            Some(Json::UInt(n)) => n,
            Some(Json::Float(f)) if (0.0..18_446_744_073_709_551_616.0).contains(&f) => f as u64,
            _ => 0,
        }
    }

    /// `JSONExtractFloat`: any number (or number written as a string) as a double; anything else 0.
    pub(crate) fn to_f64(&self) -> f64 {
        match self.number() {
            Some(Json::Int(n)) => n as f64,
            Some(Json::UInt(n)) => n as f64,
            Some(Json::Float(f)) => f,
            _ => 0.0,
        }
    }

    /// `JSONExtractBool`: a boolean, or an integer other than 0; floats and strings are 0.
    pub(crate) fn to_bool(&self) -> bool {
        match self {
            Json::Bool(b) => *b,
            Json::Int(n) => *n != 0,
            Json::UInt(n) => *n != 0,
            _ => false,
        }
    }

    /// `JSONExtractString`: a string's text; `null` is empty; any other value is its raw JSON.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Json::Str(s) => s.clone(),
            Json::Null => String::new(),
            other => other.raw(),
        }
    }

    /// `JSONExtractRaw`: the value written back compactly, as ClickHouse writes JSON: numbers in its float text.
    pub(crate) fn raw(&self) -> String {
        let mut out = String::new();
        self.write_raw(&mut out);
        out
    }

    fn write_raw(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => out.push_str(itoa::Buffer::new().format(*n)),
            Json::UInt(n) => out.push_str(itoa::Buffer::new().format(*n)),
            Json::Float(f) => {
                out.push_str(&crate::format::ch_text(&super::Value::Float(*f), &crate::types::ChType::Float(64)));
            }
            Json::Str(s) => write_string(out, s),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_raw(out);
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, key);
                    out.push(':');
                    value.write_raw(out);
                }
                out.push('}');
            }
        }
    }

    /// The number this value is, reading a string that holds exactly a JSON-like number (optional sign, digits,
    /// optional fraction and exponent) as that number.
    pub(crate) fn number(&self) -> Option<Json> {
        match self {
            Json::Int(_) | Json::UInt(_) | Json::Float(_) => Some(self.clone()),
            Json::Str(s) => {
                let body = s.strip_prefix(['+', '-']).unwrap_or(s);
                let mantissa_end = body.find(['e', 'E']).unwrap_or(body.len());
                let (mantissa, exponent) = body.split_at(mantissa_end);
                let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
                let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
                let exponent_ok = exponent.is_empty() || {
                    let e = exponent[1..].strip_prefix(['+', '-']).unwrap_or(&exponent[1..]);
                    !e.is_empty() && digits(e)
                };
                if whole.is_empty() || !digits(whole) || !digits(fraction) || !exponent_ok {
                    return None;
                }
                let text = s.strip_prefix('+').unwrap_or(s);
                if mantissa.contains('.') || !exponent.is_empty() {
                    text.parse().ok().map(Json::Float)
                } else if let Ok(n) = text.parse() {
                    Some(Json::Int(n))
                } else if let Ok(n) = text.parse() {
                    Some(Json::UInt(n))
                } else {
                    text.parse().ok().map(Json::Float)
                }
            }
            _ => None,
        }
    }
}

/// The 0-based position of a 1-based index (negative: from the end) among `len` items.
fn position(i: i64, len: usize) -> Option<usize> {
    let idx = if i > 0 { i - 1 } else { len as i64 + i };
    usize::try_from(idx).ok().filter(|&p| p < len)
}

/// A JSON string as ClickHouse writes one: `"` and `\` escaped, control characters as `\b \f \n \r \t` or
/// `\u00XX`, everything else as it is.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = fmt::Write::write_fmt(out, format_args!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        struct JsonVisitor;
        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Int(n))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(i64::try_from(n).map(Json::Int).unwrap_or(Json::UInt(n)))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Json, E> {
                Ok(Json::Float(f))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Json>()? {
                    entries.push((key, value));
                }
                Ok(Json::Object(entries))
            }
        }
        deserializer.deserialize_any(JsonVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(doc: &str) -> Json {
        Json::parse(doc).and_then(|d| d.get(Step::Key("n")).cloned()).expect("a value at n")
    }

    /// What each function makes of one value, for inputs ClickHouse treats in different ways.
    #[test]
    fn extracts_as_clickhouse_does() {
        for (doc, int, uint, float, boolean, raw, text) in [
            (r#"{"n":"7"}"#, 7, 7, 7.0, false, r#""7""#, "7"),
            (r#"{"n":"7.5"}"#, 7, 7, 7.5, false, r#""7.5""#, "7.5"),
            (r#"{"n":" 7"}"#, 0, 0, 0.0, false, r#"" 7""#, " 7"),
            (r#"{"n":"7abc"}"#, 0, 0, 0.0, false, r#""7abc""#, "7abc"),
            (r#"{"n":"+5"}"#, 5, 5, 5.0, false, r#""+5""#, "+5"),
            (r#"{"n":"1e3"}"#, 1000, 1000, 1000.0, false, r#""1e3""#, "1e3"),
            (r#"{"n":"-3"}"#, -3, 0, -3.0, false, r#""-3""#, "-3"),
            (r#"{"n":7.9}"#, 7, 7, 7.9, false, "7.9", "7.9"),
            (r#"{"n":-7.9}"#, -7, 0, -7.9, false, "-7.9", "-7.9"),
            (r#"{"n":1000.0}"#, 1000, 1000, 1000.0, false, "1000", "1000"),
            (r#"{"n":1e30}"#, 0, 0, 1e30, false, "1e30", "1e30"),
            (r#"{"n":true}"#, 0, 0, 0.0, true, "true", "true"),
            (r#"{"n":-3}"#, -3, 0, -3.0, true, "-3", "-3"),
            (r#"{"n":null}"#, 0, 0, 0.0, false, "null", ""),
            (
                r#"{"n":18446744073709551615}"#,
                0,
                u64::MAX,
                18446744073709551615.0,
                true,
                "18446744073709551615",
                "18446744073709551615",
            ),
            (r#"{"n": [1, 2.50, "a/b"]}"#, 0, 0, 0.0, false, r#"[1,2.5,"a/b"]"#, r#"[1,2.5,"a/b"]"#),
            (r#"{"n": {"y" : 1, "x": null}}"#, 0, 0, 0.0, false, r#"{"y":1,"x":null}"#, r#"{"y":1,"x":null}"#),
        ] {
            let v = at(doc);
            assert_eq!((v.to_i64(), v.to_u64(), v.to_f64(), v.to_bool()), (int, uint, float, boolean), "{doc}");
            assert_eq!((v.raw().as_str(), v.to_text().as_str()), (raw, text), "{doc}");
        }
    }

    #[test]
    fn paths_take_keys_and_indexes() {
        let doc = Json::parse(r#"{"a":[10,20,30],"a":"second"}"#).unwrap();
        let a = doc.get(Step::Key("a")).unwrap();
        assert_eq!(a.get(Step::Index(1)), Some(&Json::Int(10)));
        assert_eq!(a.get(Step::Index(-1)), Some(&Json::Int(30)));
        assert_eq!(a.get(Step::Index(0)), None);
        assert_eq!(a.get(Step::Index(4)), None);
        assert_eq!(Json::parse("not json"), None);
    }
}
