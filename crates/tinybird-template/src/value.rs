//! Runtime values with Python semantics: `str()`, `repr()`, truthiness, and the SQL escaping of the reference.

use std::fmt::Write as _;

/// A runtime value. Each variant mirrors a Python type the reference renderer produces.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i128),
    /// `Integer(int)` of the reference: an int subclass whose `str()` is `toInt32('5')`. Kept as decimal text
    /// because Int256/UInt256 exceed any native integer.
    Integer {
        digits: String,
        ty: &'static str,
    },
    Float(f64),
    /// `Float(float)`: `str()` is `toFloat64('1.5')`.
    TypedFloat {
        value: f64,
        ty: &'static str,
    },
    Str(String),
    /// `Expression(str)`: SQL emitted raw (Array, columns, sql_and, sql_unescape, hints).
    Expression(String),
    /// `Symbol`: identifiers emitted raw (column, symbol, table, tb_secret).
    Symbol(String),
    /// Test-mode stand-in for a missing parameter.
    Placeholder {
        name: String,
        line: usize,
    },
    /// What `error()`/`custom_error()` return in test mode.
    Comment,
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Set(Vec<Value>),
    /// A function used as a value (for example passed as an argument).
    Func(&'static str),
    /// A caught exception bound by `{% except E as e %}`: its class name and message.
    Exception {
        class: &'static str,
        message: String,
    },
}

impl Value {
    /// Python's type name, as used in TypeError messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Integer { .. } => "Integer",
            Value::Float(_) => "float",
            Value::TypedFloat { .. } => "Float",
            Value::Str(_) => "str",
            Value::Expression(_) => "Expression",
            Value::Symbol(_) => "Symbol",
            Value::Placeholder { .. } => "Placeholder",
            Value::Comment => "Comment",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::Func(_) => "function",
            Value::Exception { class, .. } => class,
        }
    }

    /// Python truthiness.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Integer { digits, .. } => digits != "0",
            Value::Float(f) | Value::TypedFloat { value: f, .. } => *f != 0.0,
            Value::Str(s) | Value::Expression(s) => !s.is_empty(),
            Value::List(v) | Value::Tuple(v) | Value::Set(v) => !v.is_empty(),
            Value::Dict(v) => !v.is_empty(),
            Value::Symbol(_)
            | Value::Placeholder { .. }
            | Value::Comment
            | Value::Func(_)
            | Value::Exception { .. } => true,
        }
    }

    /// The value as a Python `str` if it is one (a `str` or an `Expression`, which subclasses it).
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Expression(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a Python int (bool and the Integer subclass included) when it fits in i128.
    pub(crate) fn as_int(&self) -> Option<i128> {
        match self {
            Value::Bool(b) => Some(i128::from(*b)),
            Value::Int(i) => Some(*i),
            Value::Integer { digits, .. } => digits.parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn is_int_like(&self) -> bool {
        matches!(self, Value::Bool(_) | Value::Int(_) | Value::Integer { .. })
    }

    pub(crate) fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) | Value::TypedFloat { value: f, .. } => Some(*f),
            Value::Integer { digits, .. } => digits.parse::<f64>().ok(),
            v => v.as_int().map(|i| i as f64),
        }
    }

    /// Python `str(value)`, reusing the string of a `str`.
    pub(crate) fn into_py_str(self) -> String {
        match self {
            Value::Str(s) | Value::Expression(s) | Value::Symbol(s) => s,
            other => other.py_str(),
        }
    }

    /// Python `str(value)`.
    pub(crate) fn py_str(&self) -> String {
        let mut out = String::new();
        self.write_str(&mut out);
        out
    }

    pub(crate) fn write_str(&self, out: &mut String) {
        match self {
            Value::Str(s) | Value::Expression(s) | Value::Symbol(s) => out.push_str(s),
            Value::Integer { digits, ty } => {
                let _ = write!(out, "to{ty}('{digits}')");
            }
            Value::TypedFloat { value, ty } => {
                let _ = write!(out, "to{ty}('{}')", float_repr(*value));
            }
            Value::Placeholder { .. } => out.push_str("__no_value__"),
            Value::Comment => out.push_str("error launched"),
            Value::Exception { message, .. } => out.push_str(message),
            other => other.write_repr(out),
        }
    }

    /// Python `repr(value)`.
    pub(crate) fn py_repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    pub(crate) fn write_repr(&self, out: &mut String) {
        match self {
            Value::None => out.push_str("None"),
            Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Integer { digits, .. } => out.push_str(digits),
            Value::Float(f) | Value::TypedFloat { value: f, .. } => out.push_str(&float_repr(*f)),
            Value::Str(s) | Value::Expression(s) => out.push_str(&str_repr(s)),
            Value::Symbol(_) => out.push_str("<tinybird.sql_template.Symbol object>"),
            Value::Placeholder { .. } => out.push_str("<tinybird.sql_template.Placeholder object>"),
            Value::Comment => out.push_str("<tinybird.sql_template.Comment object>"),
            Value::List(v) => write_seq(out, "[", "]", v, false),
            Value::Tuple(v) => write_seq(out, "(", ")", v, v.len() == 1),
            Value::Set(v) => {
                if v.is_empty() {
                    out.push_str("set()");
                } else {
                    write_seq(out, "{", "}", v, false);
                }
            }
            Value::Dict(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_repr(out);
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
            Value::Func(name) => {
                let _ = write!(out, "<function {name}>");
            }
            Value::Exception { class, message } => {
                let _ = write!(out, "{class}({})", str_repr(message));
            }
        }
    }

    /// Convert to JSON (for the body of `custom_error`).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::None => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => i64::try_from(*i).map_or_else(|_| J::String(i.to_string()), J::from),
            Value::Integer { digits, .. } => digits.parse::<i64>().map_or_else(|_| J::String(digits.clone()), J::from),
            Value::Float(f) | Value::TypedFloat { value: f, .. } => {
                serde_json::Number::from_f64(*f).map_or(J::Null, J::Number)
            }
            Value::List(v) | Value::Tuple(v) | Value::Set(v) => J::Array(v.iter().map(Value::to_json).collect()),
            Value::Dict(pairs) => J::Object(pairs.iter().map(|(k, v)| (k.py_str(), v.to_json())).collect()),
            other => J::String(other.py_str()),
        }
    }

    /// Convert a JSON value (a JWT fixed param, a `JSON()` result) to the Python value `json.loads` gives.
    pub(crate) fn from_json(v: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match v {
            J::Null => Value::None,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    Value::Int(i128::from(u))
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            J::String(s) => Value::Str(s.clone()),
            J::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            J::Object(map) => {
                Value::Dict(map.iter().map(|(k, v)| (Value::Str(k.clone()), Value::from_json(v))).collect())
            }
        }
    }
}

fn write_seq(out: &mut String, open: &str, close: &str, items: &[Value], trailing_comma: bool) {
    out.push_str(open);
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        v.write_repr(out);
    }
    if trailing_comma {
        out.push(',');
    }
    out.push_str(close);
}

/// Python's `repr(float)`: the shortest round-tripping digits, in scientific form when the exponent is
/// below -4 or at least 16 (`1e+16`, `1e-05`), otherwise positional with at least one decimal (`3.0`).
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // `{:e}` gives the shortest round-trip digits, e.g. `1.5e16`, `-1e-5`.
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        if exp >= 0 {
            let int_len = exp + 1;
            if n <= int_len {
                out.push_str(&digits);
                for _ in 0..(int_len - n) {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len as usize]);
                out.push('.');
                out.push_str(&digits[int_len as usize..]);
            }
        } else {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// Python's `repr(str)`.
pub(crate) fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (0x80..0xa0).contains(&(c as u32)) || c == '\u{ad}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unprintable(c) => {
                if (c as u32) <= 0xffff {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// The main non-printable ranges of Python's `str.isprintable()` beyond Latin-1: separators, format characters,
/// surrogates and private use.
fn is_unprintable(c: char) -> bool {
    matches!(c as u32,
        0x2028 | 0x2029 | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0xfeff | 0xe000..=0xf8ff
        | 0xfff9..=0xfffb | 0x2000..=0x200a | 0x3000 | 0x1680 | 0x205f)
}

/// `sqlescape_for_string_expression`: escape a value for a single-quoted ClickHouse string literal.
pub(crate) fn escape_string_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\r' => out.push_str("\\r"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\x1a' => out.push_str("\\z"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '%' => out.push_str("\\%"),
            '`' => out.push_str("\\`"),
            c => out.push(c),
        }
    }
}

/// `'` + escape + `'`.
pub(crate) fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    escape_string_into(&mut out, s);
    out.push('\'');
    out
}

/// `sqlescape`: the identifier flavour, where `"` is deleted instead of escaped.
pub(crate) fn escape_identifier(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c != '"' {
            escape_string_into(&mut out, c.encode_utf8(&mut [0; 4]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases: &[(f64, &str)] = &[
            (3.0, "3.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.30000000000000004, "0.30000000000000004"),
            (-2.5e-10, "-2.5e-10"),
            (1e22, "1e+22"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (9007199254740993.0, "9007199254740992.0"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(*f), *want, "{f:e}");
        }
    }

    #[test]
    fn str_repr_matches_python() {
        assert_eq!(str_repr("abc"), "'abc'");
        assert_eq!(str_repr("a'b"), "\"a'b\"");
        assert_eq!(str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(str_repr("a\nb\t\\"), "'a\\nb\\t\\\\'");
        assert_eq!(str_repr("\0\x7f\u{85}"), "'\\x00\\x7f\\x85'");
        assert_eq!(str_repr("é😀"), "'é😀'");
        assert_eq!(str_repr("\u{2028}"), "'\\u2028'");
    }

    #[test]
    fn python_str_of_containers() {
        let v =
            Value::List(vec![Value::Int(1), Value::Str("a".into()), Value::None, Value::Bool(true), Value::Float(2.0)]);
        assert_eq!(v.py_str(), "[1, 'a', None, True, 2.0]");
        assert_eq!(Value::Tuple(vec![Value::Int(1)]).py_str(), "(1,)");
        assert_eq!(Value::Set(vec![]).py_str(), "set()");
        assert_eq!(Value::Dict(vec![(Value::Str("k".into()), Value::List(vec![]))]).py_str(), "{'k': []}");
        assert_eq!(Value::Integer { digits: "-5".into(), ty: "Int8" }.py_str(), "toInt8('-5')");
        assert_eq!(Value::List(vec![Value::Integer { digits: "5".into(), ty: "Int8" }]).py_str(), "[5]");
        assert_eq!(Value::TypedFloat { value: 1e16, ty: "Float64" }.py_str(), "toFloat64('1e+16')");
    }

    #[test]
    fn escaping() {
        assert_eq!(quote_string("\0\r\x08\t\x1a\n\"'\\%`x"), "'\\0\\r\\b\\t\\z\\n\\\"\\'\\\\\\%\\`x'");
        assert_eq!(escape_identifier("a\"b`c'd"), "ab\\`c\\'d");
    }

    #[test]
    fn truthiness() {
        assert!(!Value::Str(String::new()).truthy());
        assert!(Value::Str("0".into()).truthy());
        assert!(!Value::Int(0).truthy());
        assert!(!Value::Integer { digits: "0".into(), ty: "Int32" }.truthy());
        assert!(Value::Placeholder { name: "x".into(), line: 1 }.truthy());
        assert!(!Value::List(vec![]).truthy());
        assert!(!Value::Float(0.0).truthy());
    }

    #[test]
    fn json_conversion() {
        let j = serde_json::json!({"a": [1, 2.5, "x", null, true], "b": 18446744073709551615u64});
        let v = Value::from_json(&j);
        assert_eq!(v.py_str(), "{'a': [1, 2.5, 'x', None, True], 'b': 18446744073709551615}");
        assert_eq!(v.to_json(), serde_json::json!({"a": [1, 2.5, "x", null, true], "b": "18446744073709551615"}));
    }
}
