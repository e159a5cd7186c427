//! The template functions (`sql_template.py`, `datatypes.py`) and the Python builtins and operators they rely on:
//! the names (here), the typed functions (`typed`), date helpers (`dates`), builtins and methods (`builtins`) and
//! operators (`operators`); `call` below runs a template function.

use std::sync::OnceLock;

use crate::context::Ctx;
use crate::expr::BinOp;
use crate::python::{Exc, R, hashable, is_num, iterate, overflow, placeholder, py_eq, wrap_value};
use crate::value::{Value, escape_identifier, escape_string_into};

mod builtins;
mod dates;
mod operators;
#[cfg(test)]
mod tests;
mod typed;

pub(crate) use builtins::*;
pub(crate) use dates::*;
pub(crate) use operators::*;
pub(crate) use typed::*;

pub(crate) const REQUIRED_PARAM_NOT_DEFINED: &str = "Required parameter is not defined";

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
    crate::registry::template_function(name).is_some_and(|f| f.transform)
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
            let items = iterate(v)?;
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
