//! The typed functions (`String(x)`, `Int32(x)`, `DateTime(x)`, `Array(x, 'T')`, …): argument binding, the
//! validation each applies to a request value (the reference's testers), and what it renders.

use super::*;

/// Bind Python-style arguments to parameter names; `required` is how many leading ones have no default.
/// Bound arguments, by parameter position (no function here takes more than 9).
pub(super) type Args = [Option<Value>; 9];

pub(super) fn bind(
    fname: &str,
    params: &[&str],
    required: usize,
    args: Vec<Value>,
    kwargs: Vec<(&str, Value)>,
) -> R<Args> {
    if args.len() > params.len() {
        let takes = if required == params.len() {
            format!("{} positional argument{}", params.len(), if params.len() == 1 { "" } else { "s" })
        } else {
            format!("from {required} to {} positional arguments", params.len())
        };
        return Err(Exc::Type(format!(
            "{fname}() takes {takes} but {} {} given",
            args.len(),
            if args.len() == 1 { "was" } else { "were" }
        )));
    }
    let mut out: Args = std::array::from_fn(|_| None);
    let n = args.len();
    for (i, a) in args.into_iter().enumerate() {
        out[i] = Some(a);
    }
    for (k, v) in kwargs {
        match params.iter().position(|p| *p == k) {
            Some(i) if i < n => {
                return Err(Exc::Type(format!("{fname}() got multiple values for argument '{k}'")));
            }
            Some(i) => out[i] = Some(v),
            None => {
                return Err(Exc::Type(format!("{fname}() got an unexpected keyword argument '{k}'")));
            }
        }
    }
    let missing: Vec<&str> = (0..required).filter(|i| out[*i].is_none()).map(|i| params[i]).collect();
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|m| format!("'{m}'")).collect();
        return Err(Exc::Type(format!(
            "{fname}() missing {} required positional argument{}: {}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            crate::error::join_and(&names)
        )));
    }
    Ok(out)
}

pub(super) fn opt(v: &Option<Value>) -> Value {
    v.clone().unwrap_or(Value::None)
}

pub(super) const TYPED_PARAMS: &[&str] =
    &["x", "default", "defined", "required", "description", "enum", "example", "format"];
pub(super) const ARRAY_PARAMS: &[&str] =
    &["x", "_type", "default", "defined", "required", "description", "enum", "example", "format"];

/// The scalar types of `transform_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    String,
    Date,
    DateTime,
    DateTime64,
    Float(&'static str),
    /// A typed integer (`Integer` subclass) with its ClickHouse type.
    Typed(&'static str),
    /// `Int`/`Integer`: validated as Int32, returned as a plain int.
    Plain,
}

pub(crate) fn scalar_of(name: &str) -> Option<(Scalar, &'static str)> {
    Some(match name {
        "String" => (Scalar::String, "String"),
        "Date" => (Scalar::Date, "Date"),
        "DateTime" => (Scalar::DateTime, "DateTime"),
        "DateTime64" => (Scalar::DateTime64, "DateTime64"),
        "Float32" => (Scalar::Float("Float32"), "Float32"),
        "Float64" => (Scalar::Float("Float64"), "Float64"),
        "Int" | "Integer" => (Scalar::Plain, "Int32"),
        "Int8" => (Scalar::Typed("Int8"), "Int8"),
        "Int16" => (Scalar::Typed("Int16"), "Int16"),
        "Int32" => (Scalar::Typed("Int32"), "Int32"),
        "Int64" => (Scalar::Typed("Int64"), "Int64"),
        "Int128" => (Scalar::Typed("Int128"), "Int128"),
        "Int256" => (Scalar::Typed("Int256"), "Int256"),
        "UInt8" => (Scalar::Typed("UInt8"), "UInt8"),
        "UInt16" => (Scalar::Typed("UInt16"), "UInt16"),
        "UInt32" => (Scalar::Typed("UInt32"), "UInt32"),
        "UInt64" => (Scalar::Typed("UInt64"), "UInt64"),
        "UInt128" => (Scalar::Typed("UInt128"), "UInt128"),
        "UInt256" => (Scalar::Typed("UInt256"), "UInt256"),
        _ => return None,
    })
}

/// The test-mode placeholder of a scalar (`type_fns_check`).
pub(super) fn scalar_placeholder(s: Scalar) -> Value {
    match s {
        Scalar::String => Value::Str("__no_value__".into()),
        Scalar::Date => Value::Str("2019-01-01".into()),
        Scalar::DateTime => Value::Str("2019-01-01 00:00:00".into()),
        Scalar::DateTime64 => Value::Str("2019-01-01 00:00:00.000".into()),
        Scalar::Float(_) => Value::Float(0.0),
        Scalar::Typed(_) | Scalar::Plain => Value::Int(0),
    }
}

pub(super) fn validation_error(x: &Value, tester: &str) -> Exc {
    Exc::Template(format!("Error validating '{}' to type {tester}", x.py_str()))
}

/// `transform_type(...)._f`.
pub(super) fn transform(scalar: Scalar, tester: &'static str, test_mode: bool, a: &mut [Option<Value>]) -> R<Value> {
    let mut x = a[0].take().unwrap_or(Value::None);
    let default = a[1].take().unwrap_or(Value::None);
    let defined = a[2].as_ref().is_none_or(Value::truthy);
    if matches!(x, Value::Placeholder { .. }) {
        x = if default.truthy() {
            default
        } else if test_mode {
            scalar_placeholder(scalar)
        } else {
            Value::None
        };
    } else if matches!(x, Value::None) {
        x = default;
        if matches!(x, Value::None) {
            if defined {
                return Err(Exc::Template(REQUIRED_PARAM_NOT_DEFINED.into()));
            }
            return Ok(Value::None);
        }
    }
    if scalar == Scalar::String {
        if !matches!(x, Value::None) {
            return Ok(Value::Str(x.into_py_str()));
        }
        return Err(validation_error(&x, tester));
    }
    if let Value::Str(s) = x {
        // The common case, an HTTP string: test it and keep it without copying.
        if !test_value(tester, &s) {
            return Err(validation_error(&Value::Str(s), tester));
        }
        return match scalar {
            Scalar::Date | Scalar::DateTime | Scalar::DateTime64 => Ok(Value::Str(s)),
            _ => {
                let x = Value::Str(s);
                let s = x.py_str();
                convert(scalar, &x, &s).ok_or_else(|| validation_error(&x, tester))
            }
        };
    }
    let s = x.py_str();
    if !test_value(tester, &s) {
        return Err(validation_error(&x, tester));
    }
    convert(scalar, &x, &s).ok_or_else(|| validation_error(&x, tester))
}

/// The conversion after a successful test: `Integer(x)`, `int(x)`, `Float(x)`, `str(x)`.
pub(super) fn convert(scalar: Scalar, x: &Value, s: &str) -> Option<Value> {
    Some(match scalar {
        Scalar::String | Scalar::Date | Scalar::DateTime | Scalar::DateTime64 => Value::Str(s.to_string()),
        Scalar::Typed(ty) => Value::Integer { digits: int_digits(x, s)?, ty },
        Scalar::Plain => Value::Int(int_digits(x, s)?.parse().ok()?),
        Scalar::Float(ty) => Value::TypedFloat { value: py_float(x)?, ty },
    })
}

/// `int(x)` as normalised decimal text (no `+`, no leading zeros).
pub(super) fn int_digits(x: &Value, s: &str) -> Option<String> {
    if let Value::Integer { digits, .. } = x {
        return Some(digits.clone());
    }
    if let Some(i) = x.as_int() {
        return Some(i.to_string());
    }
    let t = ascii_digits(s.trim());
    let t = t.as_str();
    let (neg, d) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let d = d.trim_start_matches('0');
    if d.is_empty() {
        return Some("0".into());
    }
    Some(if neg { format!("-{d}") } else { d.to_string() })
}

/// Python `float(x)`.
pub(crate) fn py_float(x: &Value) -> Option<f64> {
    match x {
        Value::Str(s) | Value::Expression(s) => parse_py_float(s),
        Value::Float(f) | Value::TypedFloat { value: f, .. } => Some(*f),
        v => v.as_float(),
    }
}

pub(super) fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c.is_whitespace());
    if t.is_empty() {
        return None;
    }
    // Python accepts underscores between digits; the Float testers reject them before this is reached.
    let cleaned: String = if t.contains('_') { t.replace('_', "") } else { t.to_string() };
    let lower = cleaned.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        let neg = lower.starts_with('-');
        let v = if body == "nan" { f64::NAN } else { f64::INFINITY };
        return Some(if neg { -v } else { v });
    }
    if !cleaned.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E')) {
        return None;
    }
    cleaned.parse::<f64>().ok()
}

/// Python's `$`: end of string, or just before a final newline.
pub(super) fn strip_final_newline(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

/// `^[+-]?\d+$` (signed) or `^\d+$`.
pub(super) fn int_regex(s: &str, signed: bool) -> bool {
    let s = strip_final_newline(s);
    let d = if signed { s.strip_prefix(['+', '-']).unwrap_or(s) } else { s };
    !d.is_empty() && d.chars().all(|c| digit_value(c).is_some())
}

/// Zeros of the Unicode decimal-digit (Nd) blocks: Python's `\d` and `int()` accept every such digit.
pub(super) const ND_ZEROS: &[u32] = &[
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0,
    0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620,
    0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0,
    0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60,
    0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a Unicode decimal digit.
pub(super) fn digit_value(c: char) -> Option<u32> {
    let cp = c as u32;
    ND_ZEROS.iter().find(|z| (**z..**z + 10).contains(&cp)).map(|z| cp - z)
}

/// Map Unicode decimal digits to ASCII (what `int()` does before parsing).
pub(super) fn ascii_digits(s: &str) -> String {
    s.chars().map(|c| digit_value(c).map_or(c, |d| char::from(b'0' + d as u8))).collect()
}

/// 2^n as decimal text.
pub(super) fn pow2(n: u32) -> &'static str {
    static CACHE: OnceLock<Vec<String>> = OnceLock::new();
    let table = CACHE.get_or_init(|| {
        let mut out = Vec::with_capacity(257);
        let mut digits: Vec<u8> = vec![1]; // little-endian decimal
        for _ in 0..=256 {
            out.push(digits.iter().rev().map(|d| char::from(b'0' + d)).collect());
            let mut carry = 0;
            for d in &mut digits {
                let v = *d * 2 + carry;
                *d = v % 10;
                carry = v / 10;
            }
            if carry > 0 {
                digits.push(carry);
            }
        }
        out
    });
    &table[n as usize]
}

/// Compare two non-negative decimal texts without leading zeros.
pub(super) fn cmp_dec(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `bounded_integer` + range check.
pub(super) fn int_in_range(s: &str, signed_regex: bool, bits: u32, signed: bool) -> bool {
    if !int_regex(s, signed_regex) {
        return false;
    }
    let s = ascii_digits(strip_final_newline(s));
    let neg = s.starts_with('-');
    let mag = s.trim_start_matches(['+', '-']).trim_start_matches('0');
    if mag.len() > 78 {
        return false;
    }
    let mag = if mag.is_empty() { "0" } else { mag };
    use std::cmp::Ordering::*;
    if signed {
        let bound = pow2(bits - 1);
        if neg { cmp_dec(mag, bound) != Greater } else { cmp_dec(mag, bound) == Less }
    } else if neg {
        mag == "0"
    } else {
        cmp_dec(mag, pow2(bits)) == Less
    }
}

/// Match `pattern` at the start of `s`. Pattern language: `d{a,b}` digits, `.` any char but newline,
/// `T|s` for `(T|\s)`, any other char literal.
pub(super) fn prefix_match(s: &[char], pat: &[Pat]) -> bool {
    match pat.split_first() {
        None => true,
        Some((p, rest)) => match p {
            Pat::Digits(min, max) => {
                let mut n = 0;
                while n < *max && n < s.len() && digit_value(s[n]).is_some() {
                    n += 1;
                }
                // Greedy with backtracking.
                (*min..=n).rev().any(|k| prefix_match(&s[k..], rest))
            }
            Pat::Any => !s.is_empty() && s[0] != '\n' && prefix_match(&s[1..], rest),
            Pat::TOrSpace => {
                !s.is_empty()
                    && (s[0] == 'T' || s[0].is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&s[0]))
                    && prefix_match(&s[1..], rest)
            }
            Pat::Lit(c) => !s.is_empty() && s[0] == *c && prefix_match(&s[1..], rest),
        },
    }
}

#[derive(Clone, Copy)]
pub(super) enum Pat {
    Digits(usize, usize),
    Any,
    TOrSpace,
    Lit(char),
}

use Pat::{Any, Digits as D, Lit, TOrSpace};

pub(super) const DT1: &[Pat] =
    &[D(4, 4), Any, D(2, 2), Any, D(2, 2), TOrSpace, D(2, 2), Lit(':'), D(2, 2), Lit(':'), D(2, 2)];
pub(super) const DT2: &[Pat] =
    &[D(2, 2), Any, D(2, 2), Any, D(4, 4), Any, D(1, 2), Lit(':'), D(1, 2), Lit(':'), D(1, 2)];
pub(super) const DT64_1: &[Pat] =
    &[D(4, 4), Any, D(2, 2), Any, D(2, 2), TOrSpace, D(2, 2), Lit(':'), D(2, 2), Lit(':'), D(2, 2), Any, D(3, 3)];
pub(super) const DT64_2: &[Pat] =
    &[D(2, 2), Any, D(2, 2), Any, D(4, 4), Any, D(1, 2), Lit(':'), D(1, 2), Lit(':'), D(1, 2), Any, D(1, 3)];

/// The first 32 chars of `s`: more than any date pattern needs, without allocating.
pub(super) fn head_chars(s: &str) -> ([char; 32], usize) {
    let mut buf = ['\0'; 32];
    let mut n = 0;
    for c in s.chars().take(32) {
        buf[n] = c;
        n += 1;
    }
    (buf, n)
}

/// The reference's `testers[name](s)`. Unknown testers pass nothing.
pub(crate) fn test_value(tester: &str, s: &str) -> bool {
    match tester {
        "Int8" => int_in_range(s, true, 8, true),
        "Int16" => int_in_range(s, true, 16, true),
        "Int32" => int_in_range(s, true, 32, true),
        "Int64" => int_in_range(s, true, 64, true),
        "Int128" => int_in_range(s, true, 128, true),
        "Int256" => int_in_range(s, true, 256, true),
        "UInt8" => int_in_range(s, false, 8, false),
        "UInt16" => int_in_range(s, false, 16, false),
        "UInt32" => int_in_range(s, false, 32, false),
        "UInt64" => int_in_range(s, false, 64, false),
        "UInt128" => int_in_range(s, true, 128, false),
        "UInt256" => int_in_range(s, true, 256, false),
        "Float32" | "Float64" => !s.contains('_') && parse_py_float(s).is_some(),
        "Date" => {
            let s = strip_final_newline(s);
            let c: Vec<char> = s.chars().collect();
            c.len() == 10
                && c.iter().enumerate().all(
                    |(i, c)| {
                        if i == 4 || i == 7 { *c == '-' } else { digit_value(*c).is_some() }
                    },
                )
        }
        "DateTime" => {
            let (buf, n) = head_chars(s);
            prefix_match(&buf[..n], DT1) || prefix_match(&buf[..n], DT2)
        }
        "DateTime64" => {
            let (buf, n) = head_chars(s);
            prefix_match(&buf[..n], DT64_1) || prefix_match(&buf[..n], DT64_2)
        }
        "Bool" => matches!(
            s,
            "true"
                | "false"
                | "True"
                | "False"
                | "T"
                | "F"
                | "Y"
                | "N"
                | "Yes"
                | "No"
                | "On"
                | "Off"
                | "Enable"
                | "Disable"
                | "Enabled"
                | "Disabled"
                | "1"
                | "0"
        ),
        _ => false,
    }
}

/// Whether `name` has an entry in the reference's `testers` (Array elements are tested only then).
pub(super) fn has_tester(name: &str) -> bool {
    matches!(
        name,
        "DateTime64"
            | "DateTime"
            | "Date"
            | "Int8"
            | "UInt8"
            | "Int16"
            | "UInt16"
            | "Int32"
            | "UInt32"
            | "Int64"
            | "UInt64"
            | "Int128"
            | "UInt128"
            | "Int256"
            | "UInt256"
            | "Float32"
            | "Float64"
            | "Bool"
    )
}

/// `boolean(x, default)`.
pub(super) fn boolean(x: &Value, default: &Value) -> Value {
    match x {
        Value::None => {
            if matches!(default, Value::None) {
                Value::Int(0)
            } else {
                boolean(default, &Value::None)
            }
        }
        Value::Placeholder { .. } => boolean(default, &Value::None),
        Value::Str(s) if s == "0" || s.to_lowercase() == "false" => Value::Int(0),
        v => Value::Int(i128::from(v.truthy())),
    }
}

/// The Array inner conversion (`types[_type](t)` in `array_type`), returning the element value.
pub(super) fn array_elem(inner: &str, t: &Value, test_mode: bool) -> R<Value> {
    match inner {
        "bool" | "Boolean" => Ok(boolean(t, &Value::None)),
        _ => match scalar_of(inner) {
            Some((scalar, tester)) => {
                // Inside arrays the reference converts with plain `int`/`float`/`str`, not the typed wrappers.
                let conv = match scalar {
                    Scalar::Typed(_) => Scalar::Plain,
                    Scalar::Float(_) => Scalar::Float(""),
                    s => s,
                };
                let v = transform(conv, tester, test_mode, &mut [Some(t.clone()), None, None])?;
                Ok(match v {
                    Value::TypedFloat { value, .. } => Value::Float(value),
                    other => other,
                })
            }
            // No converter: the element passes through unchanged.
            None => Ok(t.clone()),
        },
    }
}

/// `array_type(types)._f`.
pub(super) fn array(ctx: &Ctx<'_>, a: &[Option<Value>]) -> R<Value> {
    let test_mode = ctx.opts.test_mode;
    let mut x = opt(&a[0]);
    let inner_v = opt(&a[1]);
    let default = opt(&a[2]);
    let defined = a[3].as_ref().is_none_or(Value::truthy);
    let inner: Option<String> = inner_v.as_str().map(str::to_string);
    let inner_is_known = inner.as_deref().is_some_and(|t| t == "bool" || t == "Boolean" || scalar_of(t).is_some());
    if matches!(x, Value::Placeholder { .. }) {
        if default.truthy() {
            x = default;
        } else if inner_v.truthy() && inner_is_known {
            let t = inner.as_deref().unwrap_or("");
            if t == "String" {
                x = Value::Str(String::new());
            } else {
                let one = array_elem(t, &x, test_mode)?.py_str();
                x = Value::Str(format!("{one},{one}"));
            }
        } else {
            x = Value::Str(String::new());
        }
    } else if matches!(x, Value::None) {
        x = default;
        if matches!(x, Value::None) {
            if defined {
                return Err(Exc::Template(REQUIRED_PARAM_NOT_DEFINED.into()));
            }
            return Ok(Value::None);
        }
    }
    let owned_parts: Vec<Value>;
    let items: &[Value] = match &x {
        Value::List(items) => items,
        Value::Str(s) | Value::Expression(s) => {
            owned_parts = s.split(',').map(|p| Value::Str(p.to_string())).collect();
            &owned_parts
        }
        _ => {
            return Err(Exc::Template("transform type function Array is not well defined".into()));
        }
    };
    // Elements of String (or unconverted) arrays are quoted as they are: skip the generic conversion.
    let plain_strings = match inner.as_deref() {
        None | Some("String") => true,
        Some(t) => !(t == "bool" || t == "Boolean" || scalar_of(t).is_some() || has_tester(t)),
    };
    let mut out = String::with_capacity(2 + items.len() * 8);
    out.push('[');
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if plain_strings && let Value::Str(p) = t {
            out.push('\'');
            escape_string_into(&mut out, p);
            out.push('\'');
            continue;
        }
        let ts = t.py_str();
        let elem = match inner.as_deref() {
            Some(ty) if has_tester(ty) => {
                if !test_value(ty, &ts) {
                    let shown =
                        if matches!(t, Value::Str(s) if s.is_empty()) { "empty string".to_string() } else { ts };
                    return Err(Exc::Template(format!(
                        "Error validating [{}][{i}] ({shown}) to type {ty}",
                        x.py_str()
                    )));
                }
                if ty == "Bool" {
                    return Err(Exc::Key(Value::Str("Bool".into())));
                }
                array_elem(ty, t, test_mode)?
            }
            Some(ty) => array_elem(ty, t, test_mode)?,
            None => t.clone(),
        };
        out.push_str(&wrap_value(&elem, &ts)?);
        if out.len() > crate::context::MAX_OUTPUT_BYTES {
            return Err(Exc::Limit("Array result too large".into()));
        }
    }
    out.push(']');
    Ok(Value::Expression(out))
}

/// `preprocess_variables` for one variable used as `Array(x, inner)`: the typed list, or None to keep the value.
pub(crate) fn preprocess_array(v: Value, inner: &str) -> Option<Value> {
    let items: Vec<Value> = match v {
        Value::List(items) => items,
        Value::Str(s) => s.split(',').map(|p| Value::Str(p.to_string())).collect(),
        _ => return None,
    };
    let mut out = Vec::with_capacity(items.len());
    let plain_strings = inner == "String"
        || !(inner == "bool" || inner == "Boolean" || scalar_of(inner).is_some() || has_tester(inner));
    for t in &items {
        // Strings without escapes survive the reference's SQL round trip unchanged.
        if plain_strings
            && let Value::Str(p) = t
            && !p.contains(['\0', '\r', '\x08', '\t', '\x1a', '\n', '"', '\'', '\\', '%', '`'])
        {
            out.push(t.clone());
            continue;
        }
        let ts = t.py_str();
        if has_tester(inner) && (!test_value(inner, &ts) || inner == "Bool") {
            return None;
        }
        let known = inner == "bool" || inner == "Boolean" || scalar_of(inner).is_some();
        let elem = if known { array_elem(inner, t, false).ok()? } else { t.clone() };
        // The reference round-trips the rendered SQL through `ast.literal_eval`, which reads the ClickHouse
        // escapes as Python ones (`\\%` stays `\\%`, `\\0` starts an octal escape).
        let text = wrap_value(&elem, &ts).ok()?;
        out.push(literal_eval_elem(&text)?);
    }
    Some(Value::List(out))
}

/// `ast.literal_eval` of one element of a rendered Array.
pub(super) fn literal_eval_elem(text: &str) -> Option<Value> {
    if text.len() >= 2 && text.starts_with('\'') && !text[1..text.len() - 1].contains(['\\', '\'']) {
        return Some(Value::Str(text[1..text.len() - 1].to_string()));
    }
    if text.starts_with('\'') {
        let (s, end) = crate::expr::lex_string(text, 0, false).ok()?;
        return (end == text.len()).then_some(Value::Str(s));
    }
    if let Ok(i) = text.parse::<i128>() {
        return Some(Value::Int(i));
    }
    let f: f64 = text.parse().ok()?;
    f.is_finite().then_some(Value::Float(f))
}
