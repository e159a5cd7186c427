//! The template functions (`sql_template.py`, `datatypes.py`) and the Python builtins and operators they rely on.

use std::sync::OnceLock;

use crate::expr::BinOp;
use crate::render::{Ctx, Exc, R, hashable, is_num, overflow, placeholder, py_eq, wrap_value};
use crate::value::{Value, escape_identifier, escape_string_into};

pub(crate) const REQUIRED_PARAM_NOT_DEFINED: &str = "Required parameter is not defined";

/// Typed functions, in the reference's `get_transform_types()` plus `function_list`.
const TYPE_FNS: &[&str] = &[
    "bool",
    "Boolean",
    "DateTime",
    "DateTime64",
    "Date",
    "Float32",
    "Float64",
    "Int",
    "Integer",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Int128",
    "Int256",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "UInt128",
    "UInt256",
    "Symbol",
    "Column",
    "String",
    "JSON",
    "Array",
    "columns",
    "table",
    "TABLE",
    "error",
    "custom_error",
    "sql_and",
    "defined",
    "column",
    "enumerate_with_last",
    "split_to_array",
    "day_diff",
    "date_diff_in_days",
    "date_diff_in_hours",
    "date_diff_in_minutes",
    "date_diff_in_seconds",
    "sql_unescape",
];

/// Every builtin name the reference exposes (`SAFE_BUILTINS`); a name here is never a template parameter.
pub(crate) const SAFE_BUILTIN_NAMES: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BaseException",
    "BaseExceptionGroup",
    "BlockingIOError",
    "BrokenPipeError",
    "BufferError",
    "BytesWarning",
    "ChildProcessError",
    "ConnectionAbortedError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "DeprecationWarning",
    "EOFError",
    "Ellipsis",
    "EncodingWarning",
    "EnvironmentError",
    "Exception",
    "ExceptionGroup",
    "False",
    "FileExistsError",
    "FileNotFoundError",
    "FloatingPointError",
    "FutureWarning",
    "GeneratorExit",
    "IOError",
    "ImportError",
    "ImportWarning",
    "IndentationError",
    "IndexError",
    "InterruptedError",
    "IsADirectoryError",
    "KeyError",
    "KeyboardInterrupt",
    "LookupError",
    "MemoryError",
    "ModuleNotFoundError",
    "NameError",
    "None",
    "NotADirectoryError",
    "NotImplemented",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PendingDeprecationWarning",
    "PermissionError",
    "ProcessLookupError",
    "RecursionError",
    "ReferenceError",
    "ResourceWarning",
    "RuntimeError",
    "RuntimeWarning",
    "StopAsyncIteration",
    "StopIteration",
    "SyntaxError",
    "SyntaxWarning",
    "SystemError",
    "SystemExit",
    "TabError",
    "TimeoutError",
    "True",
    "TypeError",
    "UnboundLocalError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "UnicodeTranslateError",
    "UnicodeWarning",
    "UserWarning",
    "ValueError",
    "Warning",
    "ZeroDivisionError",
    "_tt_append",
    "_tt_tmp",
    "abs",
    "aiter",
    "all",
    "anext",
    "any",
    "ascii",
    "bin",
    "bool",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "complex",
    "custom_error",
    "dict",
    "divmod",
    "enumerate",
    "error",
    "filter",
    "float",
    "frozenset",
    "hasattr",
    "hash",
    "hex",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "oct",
    "ord",
    "pow",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
];

/// Names in the reference's `_namespace` (never template parameters either).
pub(crate) const NAMESPACE_NAMES: &[&str] = &[
    "column",
    "symbol",
    "error",
    "custom_error",
    "_tt_utf8",
    "_tt_string_types",
    "xhtml_escape",
    "expression_wrapper",
    "__builtins__",
    "__import__",
    "__debug__",
    "__doc__",
    "__name__",
    "__package__",
];

pub(crate) fn is_type_fn(name: &str) -> bool {
    TYPE_FNS.contains(&name)
}

/// Functions bound over any parameter of the same name (type and hint functions), interned.
pub(crate) fn fixed_fn(name: &str) -> Option<&'static str> {
    Some(match name {
        "bool" => "bool",
        "Boolean" => "Boolean",
        "DateTime" => "DateTime",
        "DateTime64" => "DateTime64",
        "Date" => "Date",
        "Float32" => "Float32",
        "Float64" => "Float64",
        "Int" => "Int",
        "Integer" => "Integer",
        "Int8" => "Int8",
        "Int16" => "Int16",
        "Int32" => "Int32",
        "Int64" => "Int64",
        "Int128" => "Int128",
        "Int256" => "Int256",
        "UInt8" => "UInt8",
        "UInt16" => "UInt16",
        "UInt32" => "UInt32",
        "UInt64" => "UInt64",
        "UInt128" => "UInt128",
        "UInt256" => "UInt256",
        "Symbol" => "Symbol",
        "Column" => "Column",
        "String" => "String",
        "JSON" => "JSON",
        "Array" => "Array",
        "columns" => "columns",
        "table" => "table",
        "TABLE" => "TABLE",
        "error" => "error",
        "custom_error" => "custom_error",
        "sql_and" => "sql_and",
        "defined" => "defined",
        "column" => "column",
        "enumerate_with_last" => "enumerate_with_last",
        "split_to_array" => "split_to_array",
        "day_diff" => "day_diff",
        "date_diff_in_days" => "date_diff_in_days",
        "date_diff_in_hours" => "date_diff_in_hours",
        "date_diff_in_minutes" => "date_diff_in_minutes",
        "date_diff_in_seconds" => "date_diff_in_seconds",
        "sql_unescape" => "sql_unescape",
        "max_threads" => "max_threads",
        "tb_secret" => "tb_secret",
        "tb_var" => "tb_var",
        "backend_hint" => "backend_hint",
        "cache_ttl" => "cache_ttl",
        "activate" => "activate",
        "disable" => "disable",
        _ => return None,
    })
}
/// Builtins and namespace functions (a parameter of the same name shadows them), interned.
pub(crate) fn builtin_fn(name: &str) -> Option<&'static str> {
    Some(match name {
        "column" => "column",
        "symbol" => "symbol",
        "error" => "error",
        "custom_error" => "custom_error",
        "ArithmeticError" => "ArithmeticError",
        "AssertionError" => "AssertionError",
        "AttributeError" => "AttributeError",
        "BaseException" => "BaseException",
        "BaseExceptionGroup" => "BaseExceptionGroup",
        "BlockingIOError" => "BlockingIOError",
        "BrokenPipeError" => "BrokenPipeError",
        "BufferError" => "BufferError",
        "BytesWarning" => "BytesWarning",
        "ChildProcessError" => "ChildProcessError",
        "ConnectionAbortedError" => "ConnectionAbortedError",
        "ConnectionError" => "ConnectionError",
        "ConnectionRefusedError" => "ConnectionRefusedError",
        "ConnectionResetError" => "ConnectionResetError",
        "DeprecationWarning" => "DeprecationWarning",
        "EOFError" => "EOFError",
        "Ellipsis" => "Ellipsis",
        "EncodingWarning" => "EncodingWarning",
        "EnvironmentError" => "EnvironmentError",
        "Exception" => "Exception",
        "ExceptionGroup" => "ExceptionGroup",
        "False" => "False",
        "FileExistsError" => "FileExistsError",
        "FileNotFoundError" => "FileNotFoundError",
        "FloatingPointError" => "FloatingPointError",
        "FutureWarning" => "FutureWarning",
        "GeneratorExit" => "GeneratorExit",
        "IOError" => "IOError",
        "ImportError" => "ImportError",
        "ImportWarning" => "ImportWarning",
        "IndentationError" => "IndentationError",
        "IndexError" => "IndexError",
        "InterruptedError" => "InterruptedError",
        "IsADirectoryError" => "IsADirectoryError",
        "KeyError" => "KeyError",
        "KeyboardInterrupt" => "KeyboardInterrupt",
        "LookupError" => "LookupError",
        "MemoryError" => "MemoryError",
        "ModuleNotFoundError" => "ModuleNotFoundError",
        "NameError" => "NameError",
        "None" => "None",
        "NotADirectoryError" => "NotADirectoryError",
        "NotImplemented" => "NotImplemented",
        "NotImplementedError" => "NotImplementedError",
        "OSError" => "OSError",
        "OverflowError" => "OverflowError",
        "PendingDeprecationWarning" => "PendingDeprecationWarning",
        "PermissionError" => "PermissionError",
        "ProcessLookupError" => "ProcessLookupError",
        "RecursionError" => "RecursionError",
        "ReferenceError" => "ReferenceError",
        "ResourceWarning" => "ResourceWarning",
        "RuntimeError" => "RuntimeError",
        "RuntimeWarning" => "RuntimeWarning",
        "StopAsyncIteration" => "StopAsyncIteration",
        "StopIteration" => "StopIteration",
        "SyntaxError" => "SyntaxError",
        "SyntaxWarning" => "SyntaxWarning",
        "SystemError" => "SystemError",
        "SystemExit" => "SystemExit",
        "TabError" => "TabError",
        "TimeoutError" => "TimeoutError",
        "True" => "True",
        "TypeError" => "TypeError",
        "UnboundLocalError" => "UnboundLocalError",
        "UnicodeDecodeError" => "UnicodeDecodeError",
        "UnicodeEncodeError" => "UnicodeEncodeError",
        "UnicodeError" => "UnicodeError",
        "UnicodeTranslateError" => "UnicodeTranslateError",
        "UnicodeWarning" => "UnicodeWarning",
        "UserWarning" => "UserWarning",
        "ValueError" => "ValueError",
        "Warning" => "Warning",
        "ZeroDivisionError" => "ZeroDivisionError",
        "_tt_append" => "_tt_append",
        "_tt_tmp" => "_tt_tmp",
        "abs" => "abs",
        "aiter" => "aiter",
        "all" => "all",
        "anext" => "anext",
        "any" => "any",
        "ascii" => "ascii",
        "bin" => "bin",
        "bool" => "bool",
        "bytearray" => "bytearray",
        "bytes" => "bytes",
        "callable" => "callable",
        "chr" => "chr",
        "complex" => "complex",
        "dict" => "dict",
        "divmod" => "divmod",
        "enumerate" => "enumerate",
        "filter" => "filter",
        "float" => "float",
        "frozenset" => "frozenset",
        "hasattr" => "hasattr",
        "hash" => "hash",
        "hex" => "hex",
        "int" => "int",
        "isinstance" => "isinstance",
        "issubclass" => "issubclass",
        "iter" => "iter",
        "len" => "len",
        "list" => "list",
        "map" => "map",
        "max" => "max",
        "min" => "min",
        "next" => "next",
        "oct" => "oct",
        "ord" => "ord",
        "pow" => "pow",
        "range" => "range",
        "repr" => "repr",
        "reversed" => "reversed",
        "round" => "round",
        "set" => "set",
        "slice" => "slice",
        "sorted" => "sorted",
        "str" => "str",
        "sum" => "sum",
        "tuple" => "tuple",
        "zip" => "zip",
        _ => return None,
    })
}

pub(crate) fn is_builtin(name: &str) -> bool {
    SAFE_BUILTIN_NAMES.contains(&name)
}
/// Whether the reference excludes `name` from the template's variables (`reserved_vars` ∪ `_namespace`).
pub(crate) fn is_reserved_var(name: &str) -> bool {
    (SAFE_BUILTIN_NAMES.contains(&name) || NAMESPACE_NAMES.contains(&name)) && name != "id" && name != "format"
}

/// Bind Python-style arguments to parameter names; `required` is how many leading ones have no default.
/// Bound arguments, by parameter position (no function here takes more than 9).
type Args = [Option<Value>; 9];

fn bind(fname: &str, params: &[&str], required: usize, args: Vec<Value>, kwargs: Vec<(&str, Value)>) -> R<Args> {
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
            crate::render::join_and(&names)
        )));
    }
    Ok(out)
}

fn opt(v: &Option<Value>) -> Value {
    v.clone().unwrap_or(Value::None)
}

const TYPED_PARAMS: &[&str] = &["x", "default", "defined", "required", "description", "enum", "example", "format"];
const ARRAY_PARAMS: &[&str] =
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
fn scalar_placeholder(s: Scalar) -> Value {
    match s {
        Scalar::String => Value::Str("__no_value__".into()),
        Scalar::Date => Value::Str("2019-01-01".into()),
        Scalar::DateTime => Value::Str("2019-01-01 00:00:00".into()),
        Scalar::DateTime64 => Value::Str("2019-01-01 00:00:00.000".into()),
        Scalar::Float(_) => Value::Float(0.0),
        Scalar::Typed(_) | Scalar::Plain => Value::Int(0),
    }
}

fn validation_error(x: &Value, tester: &str) -> Exc {
    Exc::Template(format!("Error validating '{}' to type {tester}", x.py_str()))
}

/// `transform_type(...)._f`.
fn transform(scalar: Scalar, tester: &'static str, test_mode: bool, a: &mut [Option<Value>]) -> R<Value> {
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
fn convert(scalar: Scalar, x: &Value, s: &str) -> Option<Value> {
    Some(match scalar {
        Scalar::String | Scalar::Date | Scalar::DateTime | Scalar::DateTime64 => Value::Str(s.to_string()),
        Scalar::Typed(ty) => Value::Integer { digits: int_digits(x, s)?, ty },
        Scalar::Plain => Value::Int(int_digits(x, s)?.parse().ok()?),
        Scalar::Float(ty) => Value::TypedFloat { value: py_float(x)?, ty },
    })
}

/// `int(x)` as normalised decimal text (no `+`, no leading zeros).
fn int_digits(x: &Value, s: &str) -> Option<String> {
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

fn parse_py_float(s: &str) -> Option<f64> {
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
fn strip_final_newline(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

/// `^[+-]?\d+$` (signed) or `^\d+$`.
fn int_regex(s: &str, signed: bool) -> bool {
    let s = strip_final_newline(s);
    let d = if signed { s.strip_prefix(['+', '-']).unwrap_or(s) } else { s };
    !d.is_empty() && d.chars().all(|c| digit_value(c).is_some())
}

/// Zeros of the Unicode decimal-digit (Nd) blocks: Python's `\d` and `int()` accept every such digit.
const ND_ZEROS: &[u32] = &[
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0,
    0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620,
    0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0,
    0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60,
    0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a Unicode decimal digit.
fn digit_value(c: char) -> Option<u32> {
    let cp = c as u32;
    ND_ZEROS.iter().find(|z| (**z..**z + 10).contains(&cp)).map(|z| cp - z)
}

/// Map Unicode decimal digits to ASCII (what `int()` does before parsing).
fn ascii_digits(s: &str) -> String {
    s.chars().map(|c| digit_value(c).map_or(c, |d| char::from(b'0' + d as u8))).collect()
}

/// 2^n as decimal text.
fn pow2(n: u32) -> &'static str {
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
fn cmp_dec(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `bounded_integer` + range check.
fn int_in_range(s: &str, signed_regex: bool, bits: u32, signed: bool) -> bool {
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
fn prefix_match(s: &[char], pat: &[Pat]) -> bool {
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
enum Pat {
    Digits(usize, usize),
    Any,
    TOrSpace,
    Lit(char),
}

use Pat::{Any, Digits as D, Lit, TOrSpace};

const DT1: &[Pat] = &[D(4, 4), Any, D(2, 2), Any, D(2, 2), TOrSpace, D(2, 2), Lit(':'), D(2, 2), Lit(':'), D(2, 2)];
const DT2: &[Pat] = &[D(2, 2), Any, D(2, 2), Any, D(4, 4), Any, D(1, 2), Lit(':'), D(1, 2), Lit(':'), D(1, 2)];
const DT64_1: &[Pat] =
    &[D(4, 4), Any, D(2, 2), Any, D(2, 2), TOrSpace, D(2, 2), Lit(':'), D(2, 2), Lit(':'), D(2, 2), Any, D(3, 3)];
const DT64_2: &[Pat] =
    &[D(2, 2), Any, D(2, 2), Any, D(4, 4), Any, D(1, 2), Lit(':'), D(1, 2), Lit(':'), D(1, 2), Any, D(1, 3)];

/// The first 32 chars of `s`: more than any date pattern needs, without allocating.
fn head_chars(s: &str) -> ([char; 32], usize) {
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
fn has_tester(name: &str) -> bool {
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
fn boolean(x: &Value, default: &Value) -> Value {
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
fn array_elem(inner: &str, t: &Value, test_mode: bool) -> R<Value> {
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
fn array(ctx: &Ctx<'_>, a: &[Option<Value>]) -> R<Value> {
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
        if out.len() > crate::render::MAX_OUTPUT_BYTES {
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
fn literal_eval_elem(text: &str) -> Option<Value> {
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

pub(crate) fn now_string() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Python `datetime.strptime` for the directives the date functions use; returns microseconds since the epoch.
fn strptime(s: &str, fmt: &str) -> Option<i128> {
    let sc: Vec<char> = s.chars().collect();
    let fc: Vec<char> = fmt.chars().collect();
    let (mut i, mut j) = (0, 0);
    let (mut year, mut month, mut day, mut hour, mut minute, mut second, mut micro) = (1900i64, 1u32, 1u32, 0, 0, 0, 0);
    let num = |i: &mut usize, max: usize| -> Option<u32> {
        let start = *i;
        while *i < sc.len() && *i - start < max && sc[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == start {
            return None;
        }
        sc[start..*i].iter().collect::<String>().parse().ok()
    };
    while j < fc.len() {
        let c = fc[j];
        if c == '%' && j + 1 < fc.len() {
            let d = fc[j + 1];
            j += 2;
            match d {
                'Y' => year = i64::from(num(&mut i, 4)?),
                'm' => month = num(&mut i, 2)?,
                'd' => day = num(&mut i, 2)?,
                'H' => hour = num(&mut i, 2)?,
                'M' => minute = num(&mut i, 2)?,
                'S' => second = num(&mut i, 2)?,
                'y' => {
                    let y = num(&mut i, 2)?;
                    year = i64::from(if y < 69 { 2000 + y } else { 1900 + y });
                }
                'f' => {
                    let start = i;
                    let v = num(&mut i, 6)?;
                    micro = v * 10u32.pow(6 - (i - start) as u32);
                }
                '%' => {
                    if sc.get(i) != Some(&'%') {
                        return None;
                    }
                    i += 1;
                }
                _ => return None,
            }
        } else if c.is_whitespace() {
            // A run of format whitespace matches any (possibly empty) run of input whitespace.
            while j < fc.len() && fc[j].is_whitespace() {
                j += 1;
            }
            while i < sc.len() && sc[i].is_whitespace() {
                i += 1;
            }
        } else {
            // Literals match case-insensitively, as Python compiles the format with IGNORECASE.
            let sch = sc.get(i)?;
            if !sch.to_lowercase().eq(c.to_lowercase()) {
                return None;
            }
            i += 1;
            j += 1;
        }
    }
    if i != sc.len() {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let mdays = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month)
        || day < 1
        || day > mdays[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 61
    {
        return None;
    }
    if !(1..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = i128::from(days) * 86_400 + i128::from(hour) * 3600 + i128::from(minute) * 60 + i128::from(second);
    Some(secs * 1_000_000 + i128::from(micro))
}

fn date_diff(name: &str, unit_secs: i128, default_fmt: &str, a: &[Option<Value>]) -> R<Value> {
    let d0 = opt(&a[0]);
    let d1 = opt(&a[1]);
    let fmt = a[2].clone().unwrap_or_else(|| Value::Str(default_fmt.into()));
    let default = opt(&a[3]);
    let backup = opt(&a[4]);
    let none_if_error = opt(&a[5]).truthy();
    if matches!(d0, Value::Placeholder { .. }) || matches!(d1, Value::Placeholder { .. }) {
        return Ok(if default.truthy() { default } else { Value::Int(0) });
    }
    let parse = |d: &Value| -> Option<i128> {
        let s = d.as_str()?;
        let f = fmt.as_str()?;
        strptime(s, f).or_else(|| backup.as_str().and_then(|b| strptime(s, b)))
    };
    match (parse(&d0), parse(&d1)) {
        (Some(x), Some(y)) => {
            let diff = (y - x).abs();
            // int(diff_seconds / unit): the float division truncates toward zero.
            Ok(Value::Int(diff / (unit_secs * 1_000_000)))
        }
        _ if none_if_error => Ok(Value::None),
        _ => Err(Exc::Template(match name {
            "date_diff_in_days" => "invalid date format in function `date_diff_in_days`, it must be ISO format date YYYY-MM-DD, e.g. 2018-09-26".into(),
            "date_diff_in_hours" => "invalid date_format in function `date_diff_in_hours`, defaults to YYYY-MM-DD hh:mm:ss. Or %Y-%m-%d %H:%M:%S [.ssssss]Z, e.g. ms: 2022-12-19T18:42:22.591Z s:2022-12-19T18:42:22Z".into(),
            // The reference names the wrong function for minutes; kept verbatim.
            _ => "invalid date_format in function `date_diff_in_seconds`, defaults to YYYY-MM-DD hh:mm:ss. Or %Y-%m-%d %H:%M:%S [.ssssss]Z, e.g. ms: 2022-12-19T18:42:22.591Z s:2022-12-19T18:42:22Z".into(),
        })),
    }
}

fn str_method_err(v: &Value, method: &str) -> Exc {
    Exc::Attribute(format!("'{}' object has no attribute '{method}'", v.type_name()))
}

fn need_str<'a>(v: &'a Value, what: &str) -> R<&'a str> {
    v.as_str().ok_or_else(|| Exc::Attribute(format!("'{}' object has no attribute '{what}'", v.type_name())))
}

/// `column(x, default)`.
fn column(x: &Value, default: &Value) -> R<Value> {
    let x = if matches!(x, Value::None | Value::Placeholder { .. }) {
        if matches!(default, Value::None) {
            return Err(Exc::Template(
                "Missing column() default value, use `column(column_name, 'default_column_name')`".into(),
            ));
        }
        default
    } else {
        x
    };
    let s = need_str(x, "translate")?;
    let parts: Vec<String> = s.split('.').map(|p| format!("`{}`", escape_identifier(p))).collect();
    Ok(Value::Symbol(parts.join(".")))
}

/// Call a function by name.
pub(crate) fn call(ctx: &mut Ctx<'_>, name: &'static str, args: Vec<Value>, kw: Vec<(&str, Value)>) -> R<Value> {
    let test_mode = ctx.opts.test_mode;
    if let Some((scalar, tester)) = scalar_of(name) {
        let mut a = bind("transform_type.<locals>._f", TYPED_PARAMS, 1, args, kw)?;
        return transform(scalar, tester, test_mode, &mut a);
    }
    match name {
        "Boolean" | "bool" => {
            let a = bind("boolean", &["x", "default"], 1, args, kw)?;
            Ok(boolean(&opt(&a[0]), &opt(&a[1])))
        }
        "Array" => {
            let a = bind("array_type.<locals>._f", ARRAY_PARAMS, 1, args, kw)?;
            array(ctx, &a)
        }
        "JSON" => {
            let a = bind("json_type", &["x", "default"], 1, args, kw)?;
            json_type(opt(&a[0]), opt(&a[1]))
        }
        "defined" => {
            let a = bind("defined", &["x"], 0, args, kw)?;
            Ok(Value::Bool(!matches!(opt(&a[0]), Value::None | Value::Placeholder { .. })))
        }
        "column" => {
            let a = bind("column", &["x", "default"], 1, args, kw)?;
            column(&opt(&a[0]), &opt(&a[1]))
        }
        "columns" => {
            let a = bind("columns", &["x", "default", "fn"], 1, args, kw)?;
            let mut x = opt(&a[0]);
            let default = opt(&a[1]);
            let f = opt(&a[2]);
            if matches!(x, Value::None | Value::Placeholder { .. }) {
                if matches!(default, Value::None) {
                    return Err(Exc::Template(
                        "Missing columns() default value, use `columns(column_names, 'default_column_name')`".into(),
                    ));
                }
                x = default;
            }
            let Some(s) = x.as_str() else {
                return Err(Exc::Template("The 'columns' function expects a String not an Array".into()));
            };
            let cols: Vec<&str> = s.split(',').map(str::trim).collect();
            let mut parts = Vec::with_capacity(cols.len());
            for c in cols {
                let col = column(&Value::Str(c.into()), &Value::Str(c.into()))?.py_str();
                if f.truthy() {
                    parts.push(format!("{}({col}) as {c}", f.py_str()));
                } else {
                    parts.push(col);
                }
            }
            Ok(Value::Expression(parts.join(",")))
        }
        "symbol" | "Symbol" | "Column" => {
            let a = bind("symbol", &["x", "quote"], 1, args, kw)?;
            let x = opt(&a[0]);
            if matches!(x, Value::Placeholder { .. }) {
                return Ok(Value::Symbol("`placeholder`".into()));
            }
            let quote = a[1].clone().unwrap_or_else(|| Value::Str("`".into()));
            // `quote + sqlescape(x) + quote`: the escape runs before the concatenation.
            let s = need_str(&x, "translate")?;
            let q = quote.as_str().ok_or_else(|| {
                Exc::Type(format!("unsupported operand type(s) for +: '{}' and 'str'", quote.type_name()))
            })?;
            Ok(Value::Symbol(format!("{q}{}{q}", escape_identifier(s))))
        }
        "table" | "TABLE" => {
            let a = bind("table", &["x", "quote"], 1, args, kw)?;
            let x = opt(&a[0]);
            if matches!(x, Value::Placeholder { .. }) {
                return Ok(Value::Symbol("placeholder".into()));
            }
            Ok(Value::Symbol(escape_identifier(need_str(&x, "translate")?)))
        }
        "sql_and" => {
            // `_and(*args, **kwargs)`: positional arguments are accepted and ignored.
            drop(args);
            let mut parts = Vec::new();
            for (k, v) in kw {
                if matches!(v, Value::None) {
                    continue;
                }
                let (field, op) = match k.rsplit_once("__") {
                    None => (k, "="),
                    Some((f, suffix)) => {
                        let op = match suffix {
                            "in" => "in",
                            "not_in" => "not in",
                            "gt" => ">",
                            "lt" => "<",
                            "gte" => ">=",
                            "lte" => "<=",
                            other => {
                                return Err(Exc::Template(format!("operand {other} not supported")));
                            }
                        };
                        (f, op)
                    }
                };
                parts.push(format!("{field} {op} {}", wrap_value(&v, k)?));
            }
            Ok(Value::Expression(parts.join(" and ")))
        }
        "split_to_array" => {
            let a = bind("split_to_array", &["x", "default", "separator"], 1, args, kw)?;
            let mut x = opt(&a[0]);
            if matches!(x, Value::None | Value::Placeholder { .. }) {
                x = a[1].clone().unwrap_or_else(|| Value::Str(String::new()));
            }
            let sep = a[2].clone().unwrap_or_else(|| Value::Str(",".into()));
            let Some(s) = x.as_str() else {
                return Err(Exc::Template("First argument of split_to_array has to be a value that can be split to a list of elements, but found a PlaceHolder with no value instead".into()));
            };
            let parts = py_split(s, Some(&sep), -1)?;
            Ok(Value::List(parts.into_iter().map(|p| Value::Str(p.trim().to_string())).collect()))
        }
        "enumerate_with_last" => {
            let a = bind("enumerate_with_last", &["arr"], 1, args, kw)?;
            let v = opt(&a[0]);
            let n = py_len(&v)?;
            let items = ctx.iterate(v)?;
            Ok(Value::List(
                items.into_iter().enumerate().map(|(i, x)| Value::Tuple(vec![Value::Bool(i + 1 == n), x])).collect(),
            ))
        }
        "sql_unescape" => {
            let a = bind("sql_unescape", &["x", "what"], 1, args, kw)?;
            let x = opt(&a[0]);
            let what = a[1].clone().unwrap_or_else(|| Value::Str(String::new()));
            let s = need_str(&x, "translate")?;
            let mut escaped = String::new();
            escape_string_into(&mut escaped, s);
            let w = what.as_str().unwrap_or("");
            if !w.is_empty() && !w.chars().any(|c| matches!(c, '\'' | '"' | '\\')) {
                escaped = escaped.replace(&format!("\\{w}"), w);
            }
            Ok(Value::Expression(format!("'{escaped}'")))
        }
        "error" => {
            if test_mode {
                return Ok(Value::Comment);
            }
            let a = bind("error", &["s", "code"], 1, args, kw)?;
            Err(Exc::Value(opt(&a[0]).py_str()))
        }
        "custom_error" => {
            if test_mode {
                return Ok(Value::Comment);
            }
            let a = bind("custom_error", &["s", "code"], 1, args, kw)?;
            Err(Exc::Custom { obj: opt(&a[0]), code: a[1].clone().unwrap_or(Value::Int(400)) })
        }
        "day_diff" => {
            let a = bind("day_diff", &["d0", "d1", "default"], 2, args, kw)?;
            let r = date_diff(
                "date_diff_in_days",
                86_400,
                "%Y-%m-%d",
                &[a[0].clone(), a[1].clone(), Some(Value::Str("%Y-%m-%d".into())), None, None, None],
            );
            r.map_err(|_| Exc::Template("invalid date format in function `day_diff`, it must be ISO format date YYYY-MM-DD, e.g. 2018-09-26. For other fotmats, try `date_diff_in_days`".into()))
        }
        "date_diff_in_days" | "date_diff_in_hours" | "date_diff_in_minutes" | "date_diff_in_seconds" => {
            let params = &["d0", "d1", "date_format", "default", "backup_date_format", "none_if_error"];
            let a = bind(name, params, 2, args, kw)?;
            let (unit, fmt) = match name {
                "date_diff_in_days" => (86_400, "%Y-%m-%d"),
                "date_diff_in_hours" => (3600, "%Y-%m-%d %H:%M:%S"),
                "date_diff_in_minutes" => (60, "%Y-%m-%d %H:%M:%S"),
                _ => (1, "%Y-%m-%d %H:%M:%S"),
            };
            date_diff(name, unit, fmt, &a)
        }
        "max_threads" => {
            let a = bind("generate.<locals>.set_max_threads", &["x"], 1, args, kw)?;
            match py_int(&opt(&a[0])).ok().and_then(|i| i64::try_from(i).ok()) {
                Some(n) => {
                    ctx.hints.max_threads = Some(n);
                    Ok(Value::Expression(format!("-- max_threads {n}\n")))
                }
                None => Ok(Value::Expression("-- max_threads: wrong argument\n".into())),
            }
        }
        "backend_hint" => {
            let a = bind("generate.<locals>.set_backend_hint", &["hint"], 1, args, kw)?;
            let h = opt(&a[0]);
            let text = h.py_str();
            ctx.hints.backend_hint =
                if matches!(h, Value::None | Value::Bool(false)) { None } else { Some(text.clone()) };
            let safe: String = text
                .chars()
                .map(|c| if (c as u32) < 0x20 || c == '\x7f' || c == '\u{2028}' || c == '\u{2029}' { ' ' } else { c })
                .collect();
            Ok(Value::Expression(format!("-- backend_hint {safe}\n")))
        }
        "cache_ttl" => {
            let a = bind("generate.<locals>.set_cache_ttl", &["ttl_expression"], 1, args, kw)?;
            let t = opt(&a[0]);
            match t.as_str() {
                Some(s @ ("5s" | "1m" | "5m" | "30m" | "1h")) => {
                    ctx.hints.cache_ttl = Some(s.to_string());
                    Ok(Value::Expression(format!("-- cache_ttl {s}\n")))
                }
                _ => Err(Exc::Template(
                    "Invalid TTL cache expression, valid expressions are ('5s', '1m', '5m', '30m', '1h')".into(),
                )),
            }
        }
        "activate" => {
            let a = bind("generate.<locals>.set_activate", &["feature"], 1, args, kw)?;
            let f = opt(&a[0]);
            hashable(&f)?;
            match f.as_str() {
                Some(s @ ("analyzer" | "parallel_replicas" | "optimize_aggregation_in_order")) => {
                    ctx.hints.activate.insert(s.to_string());
                    Ok(Value::Expression(format!("-- activate {s}\n")))
                }
                _ => Err(Exc::Template(format!("'{}' is not a valid 'activate' argument", f.py_str()))),
            }
        }
        "disable" => {
            let a = bind("generate.<locals>.set_disable_feature", &["feature"], 1, args, kw)?;
            let f = opt(&a[0]);
            let Some(s) = f.as_str() else {
                return Err(Exc::Type(format!("'in <string>' requires string as left operand, not {}", f.type_name())));
            };
            // The reference tests `feature not in "analyzer"`: a substring check.
            if !"analyzer".contains(s) {
                return Err(Exc::Template(format!("'{s}' is not a valid 'disable' argument")));
            }
            ctx.hints.disable = Some(s.to_string());
            Ok(Value::Expression(format!("-- disable {s}\n")))
        }
        "tb_secret" | "tb_var" => {
            let a = bind("generate.<locals>.set_tb_secret", &["x", "default"], 1, args, kw)?;
            let x = opt(&a[0]);
            let default = opt(&a[1]);
            let fail = || {
                Exc::Template(format!(
                    "Cannot access secret '{}'. Check the secret exists in the Workspace and the token has the required scope.",
                    x.py_str()
                ))
            };
            let Some(key) = x.as_str() else {
                return Err(fail());
            };
            if ctx.opts.secrets.contains(key) {
                if !ctx.query_params.iter().any(|p| p == key) {
                    ctx.query_params.push(key.to_string());
                }
                return Ok(Value::Symbol(format!("{{{}: String}}", escape_identifier(key))));
            }
            if !matches!(default, Value::None) {
                return Ok(default);
            }
            if ctx.secret_test_mode {
                return Ok(Value::Symbol(format!("{{{}: String}}", escape_identifier(key))));
            }
            Err(fail())
        }
        _ => builtin(ctx, name, args, kw),
    }
}

fn json_type(x: Value, default: Value) -> R<Value> {
    let x = match x {
        Value::Placeholder { .. } => {
            if default.truthy() {
                default.clone()
            } else {
                Value::Str("__no_value__".into())
            }
        }
        Value::None => match &default {
            Value::Str(_) | Value::Expression(_) => default.clone(),
            _ => Value::Str("{}".into()),
        },
        other => other,
    };
    let Some(s) = x.as_str() else { return Ok(x) };
    let shown: String =
        if s.chars().count() > 16 { format!("{}...", s.chars().take(16).collect::<String>()) } else { s.to_string() };
    crate::pyjson::loads(s).map_err(|msg| Exc::Template(format!("Error parsing JSON: '{shown}' - {msg}")))
}

/// Python `int(x)`.
fn py_int(x: &Value) -> R<i128> {
    match x {
        Value::Float(f) | Value::TypedFloat { value: f, .. } => {
            if f.is_nan() {
                return Err(Exc::Value("cannot convert float NaN to integer".into()));
            }
            if f.is_infinite() {
                return Err(Exc::Value("cannot convert float infinity to integer".into()));
            }
            if f.abs() >= 1.7e38 {
                return Err(overflow());
            }
            Ok(f.trunc() as i128)
        }
        Value::Str(s) | Value::Expression(s) => {
            let t = s.trim();
            let cleaned = t.replace('_', "");
            cleaned
                .parse::<i128>()
                .ok()
                .filter(|_| !t.is_empty() && !t.starts_with('_') && !t.ends_with('_') && !t.contains("__"))
                .ok_or_else(|| {
                    Exc::Value(format!("invalid literal for int() with base 10: {}", crate::value::str_repr(s)))
                })
        }
        v if v.is_int_like() => v.as_int().ok_or_else(overflow),
        v => Err(Exc::Type(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            v.type_name()
        ))),
    }
}

pub(crate) fn py_len(v: &Value) -> R<usize> {
    match v {
        Value::Str(s) | Value::Expression(s) => Ok(s.chars().count()),
        Value::List(x) | Value::Tuple(x) | Value::Set(x) => Ok(x.len()),
        Value::Dict(x) => Ok(x.len()),
        other => Err(Exc::Type(format!("object of type '{}' has no len()", other.type_name()))),
    }
}

fn py_split(s: &str, sep: Option<&Value>, maxsplit: i128) -> R<Vec<String>> {
    match sep {
        None | Some(Value::None) => {
            let mut out: Vec<String> = Vec::new();
            let mut rest = s.trim_start();
            while !rest.is_empty() {
                if maxsplit >= 0 && out.len() as i128 >= maxsplit {
                    out.push(rest.trim_end().to_string());
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                out.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            Ok(out)
        }
        Some(v) => {
            let Some(sep) = v.as_str() else {
                return Err(Exc::Type(format!("must be str or None, not {}", v.type_name())));
            };
            if sep.is_empty() {
                return Err(Exc::Value("empty separator".into()));
            }
            if maxsplit < 0 {
                Ok(s.split(sep).map(str::to_string).collect())
            } else {
                Ok(s.splitn(maxsplit as usize + 1, sep).map(str::to_string).collect())
            }
        }
    }
}

/// Method calls: the handful of `str`, `dict`, `list` methods templates use, and `Placeholder`'s.
pub(crate) fn call_method(recv: Value, method: &str, args: Vec<Value>, kw: Vec<(&str, Value)>) -> R<Value> {
    if let Value::Placeholder { .. } = recv {
        return match method {
            "split" => Ok(Value::List(vec![placeholder(), placeholder()])),
            "startswith" => Ok(Value::Bool(false)),
            _ => Err(str_method_err(&recv, method)),
        };
    }
    if let Some(s) = recv.as_str() {
        let s = s.to_string();
        return match method {
            "split" | "rsplit" => {
                let a = bind(method, &["sep", "maxsplit"], 0, args, kw)?;
                let maxsplit = match &a[1] {
                    Some(v) => py_int(v)?,
                    None => -1,
                };
                let parts = if method == "rsplit" && maxsplit >= 0 {
                    let sep = a[0].as_ref().and_then(Value::as_str).unwrap_or(" ").to_string();
                    let mut p: Vec<String> =
                        s.rsplitn(maxsplit as usize + 1, sep.as_str()).map(str::to_string).collect();
                    p.reverse();
                    p
                } else {
                    py_split(&s, a[0].as_ref(), maxsplit)?
                };
                Ok(Value::List(parts.into_iter().map(Value::Str).collect()))
            }
            "join" => {
                let a = bind("join", &["iterable"], 1, args, kw)?;
                let items = match opt(&a[0]) {
                    Value::List(v) | Value::Tuple(v) | Value::Set(v) => v,
                    Value::Str(x) | Value::Expression(x) => x.chars().map(|c| Value::Str(c.to_string())).collect(),
                    Value::Dict(p) => p.into_iter().map(|(k, _)| k).collect(),
                    Value::Placeholder { .. } => vec![placeholder(), placeholder(), placeholder()],
                    _ => return Err(Exc::Type("can only join an iterable".to_string())),
                };
                let mut parts = Vec::with_capacity(items.len());
                for (i, it) in items.iter().enumerate() {
                    match it.as_str() {
                        Some(x) => parts.push(x.to_string()),
                        None => {
                            return Err(Exc::Type(format!(
                                "sequence item {i}: expected str instance, {} found",
                                it.type_name()
                            )));
                        }
                    }
                }
                let out = parts.join(&s);
                limit_len(out.len())?;
                Ok(Value::Str(out))
            }
            "replace" => {
                let a = bind("replace", &["old", "new", "count"], 2, args, kw)?;
                let old = opt(&a[0]);
                let new = opt(&a[1]);
                let (Some(o), Some(n)) = (old.as_str(), new.as_str()) else {
                    return Err(Exc::Type("replace() argument must be str".into()));
                };
                let count = match &a[2] {
                    Some(c) => py_int(c)?,
                    None => -1,
                };
                let out = if count < 0 { s.replace(o, n) } else { s.replacen(o, n, count as usize) };
                limit_len(out.len())?;
                Ok(Value::Str(out))
            }
            "strip" | "lstrip" | "rstrip" => {
                let a = bind(method, &["chars"], 0, args, kw)?;
                let chars: Option<Vec<char>> = a[0].as_ref().and_then(Value::as_str).map(|c| c.chars().collect());
                let f = |c: char| match &chars {
                    Some(cs) => cs.contains(&c),
                    None => c.is_whitespace(),
                };
                Ok(Value::Str(
                    match method {
                        "strip" => s.trim_matches(f),
                        "lstrip" => s.trim_start_matches(f),
                        _ => s.trim_end_matches(f),
                    }
                    .to_string(),
                ))
            }
            "lower" => Ok(Value::Str(s.to_lowercase())),
            "upper" => Ok(Value::Str(s.to_uppercase())),
            "startswith" | "endswith" => {
                let a = bind(method, &["prefix"], 1, args, kw)?;
                let p = opt(&a[0]);
                let options: Vec<String> = match &p {
                    Value::Tuple(items) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
                    other => vec![other.as_str().map(str::to_string).ok_or_else(|| {
                        Exc::Type(format!(
                            "{method} first arg must be str or a tuple of str, not {}",
                            other.type_name()
                        ))
                    })?],
                };
                Ok(Value::Bool(
                    options.iter().any(|o| {
                        if method == "startswith" { s.starts_with(o.as_str()) } else { s.ends_with(o.as_str()) }
                    }),
                ))
            }
            "isdigit" | "isnumeric" | "isdecimal" => Ok(Value::Bool(
                !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || (method != "isdecimal" && c.is_numeric())),
            )),
            "find" => {
                let a = bind("find", &["sub"], 1, args, kw)?;
                let sub = opt(&a[0]);
                let sub = sub.as_str().ok_or_else(|| Exc::Type("must be str".into()))?;
                Ok(Value::Int(s.find(sub).map_or(-1, |i| s[..i].chars().count() as i128)))
            }
            "count" => {
                let a = bind("count", &["sub"], 1, args, kw)?;
                let sub = opt(&a[0]);
                let sub = sub.as_str().ok_or_else(|| Exc::Type("must be str".into()))?;
                Ok(Value::Int(if sub.is_empty() {
                    s.chars().count() as i128 + 1
                } else {
                    s.matches(sub).count() as i128
                }))
            }
            _ => Err(str_method_err(&recv, method)),
        };
    }
    match (&recv, method) {
        (Value::Dict(pairs), "get") => {
            let a = bind("get", &["key", "default"], 1, args, kw)?;
            let k = opt(&a[0]);
            hashable(&k)?;
            Ok(pairs.iter().find(|(pk, _)| py_eq(pk, &k)).map(|(_, v)| v.clone()).unwrap_or_else(|| opt(&a[1])))
        }
        (Value::Dict(pairs), "keys") => Ok(Value::List(pairs.iter().map(|(k, _)| k.clone()).collect())),
        (Value::Dict(pairs), "values") => Ok(Value::List(pairs.iter().map(|(_, v)| v.clone()).collect())),
        (Value::Dict(pairs), "items") => {
            Ok(Value::List(pairs.iter().map(|(k, v)| Value::Tuple(vec![k.clone(), v.clone()])).collect()))
        }
        (Value::List(items) | Value::Tuple(items), "index") => {
            let a = bind("index", &["value"], 1, args, kw)?;
            let v = opt(&a[0]);
            items
                .iter()
                .position(|x| py_eq(x, &v))
                .map(|i| Value::Int(i as i128))
                .ok_or_else(|| Exc::Value(format!("{} is not in list", v.py_repr())))
        }
        (Value::List(items) | Value::Tuple(items), "count") => {
            let a = bind("count", &["value"], 1, args, kw)?;
            let v = opt(&a[0]);
            Ok(Value::Int(items.iter().filter(|x| py_eq(x, &v)).count() as i128))
        }
        _ => Err(str_method_err(&recv, method)),
    }
}

fn limit_len(n: usize) -> R<()> {
    if n > crate::render::MAX_OUTPUT_BYTES {
        return Err(Exc::Limit(format!("a value in the template exceeds {} bytes", crate::render::MAX_OUTPUT_BYTES)));
    }
    Ok(())
}

fn builtin(ctx: &mut Ctx<'_>, name: &'static str, args: Vec<Value>, kw: Vec<(&str, Value)>) -> R<Value> {
    match name {
        "len" => {
            let a = bind("len", &["obj"], 1, args, kw)?;
            Ok(Value::Int(py_len(&opt(&a[0]))? as i128))
        }
        "int" => {
            let a = bind("int", &["x"], 0, args, kw)?;
            match &a[0] {
                None => Ok(Value::Int(0)),
                Some(v) => py_int(v).map(Value::Int),
            }
        }
        "float" => {
            let a = bind("float", &["x"], 0, args, kw)?;
            match &a[0] {
                None => Ok(Value::Float(0.0)),
                Some(v) => py_float(v).map(Value::Float).ok_or_else(|| match v {
                    Value::Str(s) => {
                        Exc::Value(format!("could not convert string to float: {}", crate::value::str_repr(s)))
                    }
                    other => Exc::Type(format!(
                        "float() argument must be a string or a real number, not '{}'",
                        other.type_name()
                    )),
                }),
            }
        }
        "str" => {
            let a = bind("str", &["object"], 0, args, kw)?;
            Ok(Value::Str(a[0].as_ref().map(Value::py_str).unwrap_or_default()))
        }
        "repr" => {
            let a = bind("repr", &["obj"], 1, args, kw)?;
            Ok(Value::Str(opt(&a[0]).py_repr()))
        }
        "list" | "tuple" | "set" | "sorted" | "reversed" => {
            let a = bind(name, &["iterable"], 0, args, kw)?;
            let items = match &a[0] {
                None => vec![],
                Some(v) => ctx.iterate(v.clone())?,
            };
            Ok(match name {
                "list" => Value::List(items),
                "tuple" => Value::Tuple(items),
                "reversed" => Value::List(items.into_iter().rev().collect()),
                "set" => {
                    let mut out: Vec<Value> = Vec::new();
                    for v in items {
                        hashable(&v)?;
                        if !out.iter().any(|o| py_eq(o, &v)) {
                            out.push(v);
                        }
                    }
                    Value::Set(out)
                }
                _ => {
                    let mut items = items;
                    let mut err = None;
                    items.sort_by(|x, y| {
                        if py_lt(x, y).unwrap_or_else(|e| {
                            err = Some(e);
                            false
                        }) {
                            std::cmp::Ordering::Less
                        } else if py_lt(y, x).unwrap_or(false) {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Equal
                        }
                    });
                    if let Some(e) = err {
                        return Err(e);
                    }
                    Value::List(items)
                }
            })
        }
        "dict" => {
            let a = bind("dict", &["iterable"], 0, args, vec![])?;
            let mut out: Vec<(Value, Value)> = Vec::new();
            if let Some(v) = &a[0] {
                if let Value::Dict(p) = v {
                    out = p.clone();
                } else {
                    for item in ctx.iterate(v.clone())? {
                        let pair = ctx.iterate(item)?;
                        if pair.len() != 2 {
                            return Err(Exc::Value("dictionary update sequence element has wrong length".into()));
                        }
                        let mut it = pair.into_iter();
                        let (k, val) = (it.next().unwrap_or(Value::None), it.next().unwrap_or(Value::None));
                        hashable(&k)?;
                        out.retain(|(ok, _)| !py_eq(ok, &k));
                        out.push((k, val));
                    }
                }
            }
            for (k, v) in kw {
                out.retain(|(ok, _)| ok.as_str() != Some(k));
                out.push((Value::Str(k.to_string()), v));
            }
            Ok(Value::Dict(out))
        }
        "sum" => {
            let a = bind("sum", &["iterable", "start"], 1, args, kw)?;
            let mut acc = a[1].clone().unwrap_or(Value::Int(0));
            if acc.as_str().is_some() {
                return Err(Exc::Type("sum() can't sum strings [use ''.join(seq) instead]".into()));
            }
            for v in ctx.iterate(opt(&a[0]))? {
                acc = binop(BinOp::Add, acc, v)?;
            }
            Ok(acc)
        }
        "min" | "max" => {
            if !kw.is_empty() {
                return Err(Exc::Type(format!("{name}() keyword arguments are not supported by this renderer")));
            }
            let items = if args.len() == 1 {
                ctx.iterate(args.into_iter().next().unwrap_or(Value::None))?
            } else if args.is_empty() {
                return Err(Exc::Type(format!("{name} expected at least 1 argument, got 0")));
            } else {
                args
            };
            let mut it = items.into_iter();
            let Some(mut best) = it.next() else {
                return Err(Exc::Value(format!("{name}() arg is an empty sequence")));
            };
            for v in it {
                let better = if name == "min" { py_lt(&v, &best)? } else { py_lt(&best, &v)? };
                if better {
                    best = v;
                }
            }
            Ok(best)
        }
        "range" => {
            let ints: Vec<i128> = args
                .iter()
                .map(|a| {
                    if a.is_int_like() {
                        a.as_int().ok_or_else(overflow)
                    } else {
                        Err(Exc::Type(format!("'{}' object cannot be interpreted as an integer", a.type_name())))
                    }
                })
                .collect::<R<_>>()?;
            if !kw.is_empty() {
                return Err(Exc::Type("range() takes no keyword arguments".into()));
            }
            let (start, stop, step) = match ints.as_slice() {
                [stop] => (0, *stop, 1),
                [start, stop] => (*start, *stop, 1),
                [start, stop, step] => (*start, *stop, *step),
                [] => {
                    return Err(Exc::Type("range expected at least 1 argument, got 0".into()));
                }
                _ => {
                    return Err(Exc::Type(format!("range expected at most 3 arguments, got {}", ints.len())));
                }
            };
            if step == 0 {
                return Err(Exc::Value("range() arg 3 must not be zero".into()));
            }
            let count = if step > 0 {
                (stop - start + step - 1).max(0) / step
            } else {
                (start - stop - step - 1).max(0) / -step
            };
            if count > crate::render::MAX_LOOP_ITERATIONS as i128 {
                return Err(Exc::Limit(format!("range() of {count} elements exceeds the renderer's limit")));
            }
            Ok(Value::List((0..count).map(|i| Value::Int(start + i * step)).collect()))
        }
        "enumerate" => {
            let a = bind("enumerate", &["iterable", "start"], 1, args, kw)?;
            let start = match &a[1] {
                Some(v) => py_int(v)?,
                None => 0,
            };
            let items = ctx.iterate(opt(&a[0]))?;
            Ok(Value::List(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Value::Tuple(vec![Value::Int(start + i as i128), v]))
                    .collect(),
            ))
        }
        "zip" => {
            let lists: Vec<Vec<Value>> = args.into_iter().map(|a| ctx.iterate(a)).collect::<R<_>>()?;
            let n = lists.iter().map(Vec::len).min().unwrap_or(0);
            Ok(Value::List((0..n).map(|i| Value::Tuple(lists.iter().map(|l| l[i].clone()).collect())).collect()))
        }
        "any" | "all" => {
            let a = bind(name, &["iterable"], 1, args, kw)?;
            let items = ctx.iterate(opt(&a[0]))?;
            Ok(Value::Bool(if name == "any" {
                items.iter().any(Value::truthy)
            } else {
                items.iter().all(Value::truthy)
            }))
        }
        "abs" => {
            let a = bind("abs", &["x"], 1, args, kw)?;
            match opt(&a[0]) {
                Value::Float(f) | Value::TypedFloat { value: f, .. } => Ok(Value::Float(f.abs())),
                v if v.is_int_like() => v.as_int().and_then(i128::checked_abs).map(Value::Int).ok_or_else(overflow),
                v => Err(Exc::Type(format!("bad operand type for abs(): '{}'", v.type_name()))),
            }
        }
        "round" => {
            let a = bind("round", &["number", "ndigits"], 1, args, kw)?;
            let x = opt(&a[0]);
            match (&x, &a[1]) {
                (v, None) if v.is_int_like() => v.as_int().map(Value::Int).ok_or_else(overflow),
                (Value::Float(f) | Value::TypedFloat { value: f, .. }, None) => {
                    // Python rounds half to even.
                    let r = f.round_ties_even();
                    py_int(&Value::Float(r)).map(Value::Int)
                }
                (Value::Float(f) | Value::TypedFloat { value: f, .. }, Some(n)) => {
                    let n = py_int(n)?.clamp(-300, 300) as i32;
                    let m = 10f64.powi(n);
                    Ok(Value::Float((f * m).round_ties_even() / m))
                }
                (v, Some(_)) if v.is_int_like() => v.as_int().map(Value::Int).ok_or_else(overflow),
                (v, _) => Err(Exc::Type(format!("type {} doesn't define __round__ method", v.type_name()))),
            }
        }
        "ord" => {
            let a = bind("ord", &["c"], 1, args, kw)?;
            let v = opt(&a[0]);
            match v.as_str() {
                Some(s) if s.chars().count() == 1 => Ok(Value::Int(s.chars().next().map_or(0, |c| c as i128))),
                Some(s) => Err(Exc::Type(format!(
                    "ord() expected a character, but string of length {} found",
                    s.chars().count()
                ))),
                None => Err(Exc::Type(format!("ord() expected string of length 1, but {} found", v.type_name()))),
            }
        }
        "chr" => {
            let a = bind("chr", &["i"], 1, args, kw)?;
            let i = py_int(&opt(&a[0]))?;
            u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .map(|c| Value::Str(c.to_string()))
                .ok_or_else(|| Exc::Value("chr() arg not in range(0x110000)".into()))
        }
        "column" | "symbol" => call(ctx, if name == "column" { "column" } else { "symbol" }, args, kw),
        other => Err(Exc::Internal(format!("the builtin `{other}` is not supported by this renderer"))),
    }
}

fn py_lt(a: &Value, b: &Value) -> R<bool> {
    crate::render::compare_lt(a, b)
}

/// Binary operators with Python semantics (numbers, str/list/tuple concatenation and repetition).
pub(crate) fn binop(op: BinOp, l: Value, r: Value) -> R<Value> {
    if op == BinOp::Add && matches!(l, Value::Placeholder { .. }) {
        return Ok(placeholder());
    }
    let unsupported = |l: &Value, r: &Value| {
        Exc::Type(format!(
            "unsupported operand type(s) for {}: '{}' and '{}'",
            op.symbol(),
            l.type_name(),
            r.type_name()
        ))
    };
    if is_num(&l) && is_num(&r) {
        let both_int = l.is_int_like() && r.is_int_like();
        if both_int {
            let (Some(a), Some(b)) = (l.as_int(), r.as_int()) else {
                return Err(overflow());
            };
            return match op {
                BinOp::Add => a.checked_add(b).map(Value::Int).ok_or_else(overflow),
                BinOp::Sub => a.checked_sub(b).map(Value::Int).ok_or_else(overflow),
                BinOp::Mul => a.checked_mul(b).map(Value::Int).ok_or_else(overflow),
                BinOp::Div => {
                    if b == 0 {
                        Err(Exc::ZeroDiv("division by zero".into()))
                    } else {
                        Ok(Value::Float(a as f64 / b as f64))
                    }
                }
                BinOp::FloorDiv => {
                    if b == 0 {
                        Err(Exc::ZeroDiv("integer division or modulo by zero".into()))
                    } else {
                        a.checked_div_euclid(b).map(|_| Value::Int(floor_div(a, b))).ok_or_else(overflow)
                    }
                }
                BinOp::Mod => {
                    if b == 0 {
                        Err(Exc::ZeroDiv("integer modulo by zero".into()))
                    } else {
                        Ok(Value::Int(a - b * floor_div(a, b)))
                    }
                }
                BinOp::Pow => {
                    if b < 0 {
                        Ok(Value::Float((a as f64).powf(b as f64)))
                    } else {
                        u32::try_from(b).ok().and_then(|e| a.checked_pow(e)).map(Value::Int).ok_or_else(overflow)
                    }
                }
                BinOp::BitOr => Ok(Value::Int(a | b)),
                BinOp::BitAnd => Ok(Value::Int(a & b)),
                BinOp::BitXor => Ok(Value::Int(a ^ b)),
                BinOp::LShift => u32::try_from(b)
                    .ok()
                    .and_then(|s| a.checked_shl(s))
                    .filter(|v| v >> u32::try_from(b).unwrap_or(0) == a)
                    .map(Value::Int)
                    .ok_or_else(overflow),
                BinOp::RShift => Ok(Value::Int(if b >= 128 { if a < 0 { -1 } else { 0 } } else { a >> b })),
                BinOp::MatMul => Err(unsupported(&l, &r)),
            };
        }
        let (Some(a), Some(b)) = (l.as_float(), r.as_float()) else {
            return Err(unsupported(&l, &r));
        };
        return match op {
            BinOp::Add => Ok(Value::Float(a + b)),
            BinOp::Sub => Ok(Value::Float(a - b)),
            BinOp::Mul => Ok(Value::Float(a * b)),
            BinOp::Div => {
                if b == 0.0 {
                    Err(Exc::ZeroDiv("float division by zero".into()))
                } else {
                    Ok(Value::Float(a / b))
                }
            }
            BinOp::FloorDiv => {
                if b == 0.0 {
                    Err(Exc::ZeroDiv("float floor division by zero".into()))
                } else {
                    Ok(Value::Float((a / b).floor()))
                }
            }
            BinOp::Mod => {
                if b == 0.0 {
                    Err(Exc::ZeroDiv("float modulo".into()))
                } else {
                    Ok(Value::Float(a - b * (a / b).floor()))
                }
            }
            BinOp::Pow => Ok(Value::Float(a.powf(b))),
            _ => Err(unsupported(&l, &r)),
        };
    }
    match op {
        BinOp::Add => match (&l, &r) {
            (a, b) if a.as_str().is_some() => match b.as_str() {
                Some(bs) => {
                    let mut s = a.as_str().unwrap_or("").to_string();
                    s.push_str(bs);
                    limit_len(s.len())?;
                    Ok(Value::Str(s))
                }
                None => Err(Exc::Type(format!("can only concatenate str (not \"{}\") to str", b.type_name()))),
            },
            (Value::List(a), Value::List(b)) => {
                limit_len(a.len() + b.len())?;
                Ok(Value::List(a.iter().chain(b).cloned().collect()))
            }
            (Value::Tuple(a), Value::Tuple(b)) => Ok(Value::Tuple(a.iter().chain(b).cloned().collect())),
            (Value::List(_), b) => {
                Err(Exc::Type(format!("can only concatenate list (not \"{}\") to list", b.type_name())))
            }
            (Value::Tuple(_), b) => {
                Err(Exc::Type(format!("can only concatenate tuple (not \"{}\") to tuple", b.type_name())))
            }
            _ => Err(unsupported(&l, &r)),
        },
        BinOp::Mul => {
            let is_seq =
                |v: &Value| matches!(v, Value::Str(_) | Value::Expression(_) | Value::List(_) | Value::Tuple(_));
            let (seq, n) = if r.is_int_like() && is_seq(&l) {
                (&l, &r)
            } else if l.is_int_like() && is_seq(&r) {
                (&r, &l)
            } else if is_seq(&l) || is_seq(&r) {
                let other = if is_seq(&l) { &r } else { &l };
                return Err(Exc::Type(format!("can't multiply sequence by non-int of type '{}'", other.type_name())));
            } else {
                return Err(unsupported(&l, &r));
            };
            let n = n.as_int().ok_or_else(overflow)?.max(0);
            let n = usize::try_from(n).map_err(|_| overflow())?;
            match seq {
                Value::Str(s) | Value::Expression(s) => {
                    limit_len(s.len().saturating_mul(n))?;
                    Ok(Value::Str(s.repeat(n)))
                }
                Value::List(v) | Value::Tuple(v) => {
                    limit_len(v.len().saturating_mul(n))?;
                    let items: Vec<Value> = std::iter::repeat_n(v.iter(), n).flatten().cloned().collect();
                    Ok(if matches!(seq, Value::List(_)) { Value::List(items) } else { Value::Tuple(items) })
                }
                _ => Err(unsupported(&l, &r)),
            }
        }
        BinOp::Mod if l.as_str().is_some() => {
            Err(Exc::Internal("printf-style string formatting (%) is not supported by this renderer".into()))
        }
        BinOp::Sub if matches!((&l, &r), (Value::Set(_), Value::Set(_))) => {
            let (Value::Set(a), Value::Set(b)) = (&l, &r) else { unreachable!() };
            Ok(Value::Set(a.iter().filter(|x| !b.iter().any(|y| py_eq(x, y))).cloned().collect()))
        }
        _ => Err(unsupported(&l, &r)),
    }
}

fn floor_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if (a % b != 0) && ((a < 0) != (b < 0)) { q - 1 } else { q }
}

/// `x[i]`.
pub(crate) fn subscript(v: Value, i: Value) -> R<Value> {
    match &v {
        Value::Placeholder { .. } => {
            let idx = i.as_int();
            match idx {
                Some(n) if n > 2 => Err(Exc::Index(String::new())),
                _ if matches!(i, Value::Placeholder { .. }) || i.is_int_like() || i.as_str().is_some() => {
                    Ok(placeholder())
                }
                _ => Ok(placeholder()),
            }
        }
        Value::List(items) | Value::Tuple(items) => {
            let kind = if matches!(v, Value::List(_)) { "list" } else { "tuple" };
            if !i.is_int_like() {
                return Err(Exc::Type(format!("{kind} indices must be integers or slices, not {}", i.type_name())));
            }
            let n = i.as_int().ok_or_else(overflow)?;
            let len = items.len() as i128;
            let idx = if n < 0 { n + len } else { n };
            if idx < 0 || idx >= len {
                return Err(Exc::Index(format!("{kind} index out of range")));
            }
            Ok(items[idx as usize].clone())
        }
        Value::Str(s) | Value::Expression(s) => {
            if !i.is_int_like() {
                return Err(Exc::Type(format!("string indices must be integers, not '{}'", i.type_name())));
            }
            let n = i.as_int().ok_or_else(overflow)?;
            let chars: Vec<char> = s.chars().collect();
            let len = chars.len() as i128;
            let idx = if n < 0 { n + len } else { n };
            if idx < 0 || idx >= len {
                return Err(Exc::Index("string index out of range".into()));
            }
            Ok(Value::Str(chars[idx as usize].to_string()))
        }
        Value::Dict(pairs) => {
            hashable(&i)?;
            pairs.iter().find(|(k, _)| py_eq(k, &i)).map(|(_, v)| v.clone()).ok_or(Exc::Key(i))
        }
        other => Err(Exc::Type(format!("'{}' object is not subscriptable", other.type_name()))),
    }
}

/// `x[lo:hi:step]`.
pub(crate) fn slice(v: Value, lo: Option<Value>, hi: Option<Value>, step: Option<Value>) -> R<Value> {
    let as_idx = |x: &Option<Value>| -> R<Option<i128>> {
        match x {
            None | Some(Value::None) => Ok(None),
            Some(v) if v.is_int_like() => Ok(Some(v.as_int().ok_or_else(overflow)?)),
            Some(_) => Err(Exc::Type("slice indices must be integers or None or have an __index__ method".into())),
        }
    };
    let (lo, hi, step) = (as_idx(&lo)?, as_idx(&hi)?, as_idx(&step)?.unwrap_or(1));
    if step == 0 {
        return Err(Exc::Value("slice step cannot be zero".into()));
    }
    let pick = |len: usize| -> Vec<usize> {
        let len = len as i128;
        let norm = |x: i128, lo_b: i128, hi_b: i128| {
            let x = if x < 0 { x + len } else { x };
            x.clamp(lo_b, hi_b)
        };
        let mut out = Vec::new();
        if step > 0 {
            let start = lo.map_or(0, |x| norm(x, 0, len));
            let stop = hi.map_or(len, |x| norm(x, 0, len));
            let mut i = start;
            while i < stop {
                out.push(i as usize);
                i += step;
            }
        } else {
            let start = lo.map_or(len - 1, |x| norm(x, -1, len - 1));
            let stop = hi.map_or(-1, |x| norm(x, -1, len - 1));
            let mut i = start;
            while i > stop {
                out.push(i as usize);
                i += step;
            }
        }
        out
    };
    match v {
        Value::List(items) => Ok(Value::List(pick(items.len()).into_iter().map(|i| items[i].clone()).collect())),
        Value::Tuple(items) => Ok(Value::Tuple(pick(items.len()).into_iter().map(|i| items[i].clone()).collect())),
        Value::Str(s) | Value::Expression(s) => {
            let chars: Vec<char> = s.chars().collect();
            Ok(Value::Str(pick(chars.len()).into_iter().map(|i| chars[i]).collect()))
        }
        Value::Placeholder { .. } => Ok(placeholder()),
        other => Err(Exc::Type(format!("'{}' object is not subscriptable", other.type_name()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow2_table() {
        assert_eq!(pow2(0), "1");
        assert_eq!(pow2(8), "256");
        assert_eq!(pow2(63), "9223372036854775808");
        assert_eq!(pow2(256), "115792089237316195423570985008687907853269984665640564039457584007913129639936");
    }

    #[test]
    fn strptime_formats() {
        let a = strptime("2024-01-01", "%Y-%m-%d").unwrap();
        let b = strptime("2024-03-01", "%Y-%m-%d").unwrap();
        assert_eq!((b - a) / 86_400_000_000, 60);
        assert!(strptime("2024-02-30", "%Y-%m-%d").is_none());
        assert!(strptime("2022-12-19T18:42:23.521Z", "%Y-%m-%dT%H:%M:%S.%fz").is_some());
        assert!(strptime("2024-01-01 ", "%Y-%m-%d").is_none());
    }

    #[test]
    fn datetime_testers() {
        assert!(test_value("DateTime", "2024-01-31 10:00:00"));
        assert!(test_value("DateTime", "2024-01-31T10:00:00Z"));
        assert!(test_value("DateTime", "31/01/2024 1:2:3"));
        assert!(!test_value("DateTime", "2024-01-31"));
        assert!(test_value("DateTime64", "2024-01-31 10:00:00.123"));
        assert!(!test_value("DateTime64", "2024-01-31 10:00:00"));
        assert!(test_value("Date", "2024-13-45"));
        assert!(test_value("Date", "2024-01-31\n"));
        assert!(!test_value("Date", "2024-01-31 "));
    }

    #[test]
    fn int_testers() {
        assert!(test_value("Int8", "-128"));
        assert!(!test_value("Int8", "128"));
        assert!(test_value("UInt8", "255"));
        assert!(!test_value("UInt8", "-0"));
        assert!(test_value("UInt128", "-0"));
        assert!(test_value("Int64", "9223372036854775807"));
        assert!(!test_value("Int64", "9223372036854775808"));
        assert!(test_value("Int64", "-9223372036854775808"));
        assert!(test_value("Int32", "+007"));
        assert!(test_value("Int32", "7\n"));
        assert!(!test_value("Int32", " 7"));
        assert!(!test_value("UInt256", &"9".repeat(79)));
    }
}
