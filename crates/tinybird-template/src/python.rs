//! Python semantics over template values, as the reference renderer (CPython) has them: exceptions, equality,
//! ordering, membership, iteration, and the text `{{ }}` writes for a value.

use crate::expr::CmpOp;
use crate::value::{Value, quote_string};

/// A Python exception raised while rendering, before it is mapped to the reference's final error.
#[derive(Debug, Clone)]
pub(crate) enum Exc {
    /// `SQLTemplateException` (message without the prefix).
    Template(String),
    Value(String),
    Type(String),
    Key(Value),
    Index(String),
    Attribute(String),
    Name(String),
    ZeroDiv(String),
    UnboundLocal(String),
    Custom {
        obj: Value,
        code: Value,
    },
    Limit(String),
    Internal(String),
}

impl Exc {
    pub(crate) fn class(&self) -> &'static str {
        match self {
            Exc::Template(_) => "SQLTemplateException",
            Exc::Value(_) => "ValueError",
            Exc::Type(_) => "TypeError",
            Exc::Key(_) => "KeyError",
            Exc::Index(_) => "IndexError",
            Exc::Attribute(_) => "AttributeError",
            Exc::Name(_) => "NameError",
            Exc::ZeroDiv(_) => "ZeroDivisionError",
            Exc::UnboundLocal(_) => "UnboundLocalError",
            Exc::Custom { .. } => "SQLTemplateCustomError",
            Exc::Limit(_) | Exc::Internal(_) => "RuntimeError",
        }
    }
    pub(crate) fn message(&self) -> String {
        match self {
            Exc::Template(m) => format!("Template Syntax Error: {m}"),
            Exc::Value(m)
            | Exc::Type(m)
            | Exc::Index(m)
            | Exc::Attribute(m)
            | Exc::Name(m)
            | Exc::ZeroDiv(m)
            | Exc::UnboundLocal(m)
            | Exc::Limit(m)
            | Exc::Internal(m) => m.clone(),
            Exc::Key(k) => k.py_repr(),
            Exc::Custom { obj, .. } => obj.py_str(),
        }
    }
    /// Whether `except <class>` catches this exception.
    pub(crate) fn matches(&self, class: &str) -> bool {
        if matches!(self, Exc::Limit(_) | Exc::Internal(_)) {
            return false;
        }
        match class {
            "Exception" | "BaseException" => true,
            "ValueError" => matches!(self, Exc::Template(_) | Exc::Value(_)),
            "LookupError" => matches!(self, Exc::Key(_) | Exc::Index(_)),
            "ArithmeticError" => matches!(self, Exc::ZeroDiv(_)),
            "NameError" => matches!(self, Exc::Name(_) | Exc::UnboundLocal(_)),
            other => self.class() == other,
        }
    }
}

pub(crate) type R<T> = Result<T, Exc>;

pub(crate) fn placeholder() -> Value {
    Value::Placeholder { name: "__no_value__".into(), line: 0 }
}

pub(crate) fn overflow() -> Exc {
    Exc::Value("integer overflow: the value does not fit in 128 bits".into())
}

pub(crate) fn hashable(v: &Value) -> R<()> {
    match v {
        Value::List(_) | Value::Dict(_) | Value::Set(_) => {
            Err(Exc::Type(format!("unhashable type: '{}'", v.type_name())))
        }
        Value::Tuple(items) => items.iter().try_for_each(hashable),
        _ => Ok(()),
    }
}

/// Python `==`.
pub(crate) fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::None, Value::None) => true,
        (x, y) if is_num(x) && is_num(y) => num_eq(x, y),
        (x, y) if x.as_str().is_some() && y.as_str().is_some() => x.as_str() == y.as_str(),
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| py_eq(a, b))
        }
        (Value::Set(x), Value::Set(y)) => x.len() == y.len() && x.iter().all(|a| y.iter().any(|b| py_eq(a, b))),
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.iter().any(|(k2, v2)| py_eq(k, k2) && py_eq(v, v2)))
        }
        (Value::Symbol(x), Value::Symbol(y)) => std::ptr::eq(x, y),
        (Value::Func(x), Value::Func(y)) => x == y,
        _ => false,
    }
}

pub(crate) fn is_num(v: &Value) -> bool {
    matches!(v, Value::Bool(_) | Value::Int(_) | Value::Integer { .. } | Value::Float(_) | Value::TypedFloat { .. })
}

fn num_eq(a: &Value, b: &Value) -> bool {
    match (a.as_int(), b.as_int()) {
        (Some(x), Some(y)) if a.is_int_like() && b.is_int_like() => x == y,
        _ => match (a, b) {
            (Value::Integer { digits: x, .. }, Value::Integer { digits: y, .. }) => x == y,
            _ => a.as_float() == b.as_float(),
        },
    }
}

fn num_cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    if a.is_int_like()
        && b.is_int_like()
        && let (Some(x), Some(y)) = (a.as_int(), b.as_int())
    {
        return Some(x.cmp(&y));
    }
    a.as_float()?.partial_cmp(&b.as_float()?)
}

fn order(a: &Value, b: &Value, sym: &str) -> R<Option<std::cmp::Ordering>> {
    if is_num(a) && is_num(b) {
        return Ok(num_cmp(a, b));
    }
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        return Ok(Some(x.cmp(y)));
    }
    match (a, b) {
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !py_eq(p, q) {
                    return order(p, q, sym);
                }
            }
            Ok(Some(x.len().cmp(&y.len())))
        }
        _ => Err(Exc::Type(format!(
            "'{sym}' not supported between instances of '{}' and '{}'",
            a.type_name(),
            b.type_name()
        ))),
    }
}

pub(crate) fn contains(container: &Value, item: &Value) -> R<bool> {
    match container {
        Value::Str(s) | Value::Expression(s) => match item.as_str() {
            Some(i) => Ok(s.contains(i)),
            None => Err(Exc::Type(format!("'in <string>' requires string as left operand, not {}", item.type_name()))),
        },
        Value::List(v) | Value::Tuple(v) => Ok(v.iter().any(|x| py_eq(x, item))),
        Value::Set(v) => {
            hashable(item)?;
            Ok(v.iter().any(|x| py_eq(x, item)))
        }
        Value::Dict(pairs) => {
            hashable(item)?;
            Ok(pairs.iter().any(|(k, _)| py_eq(k, item)))
        }
        Value::Placeholder { .. } => Ok(false),
        other => Err(Exc::Type(format!("argument of type '{}' is not iterable", other.type_name()))),
    }
}

pub(crate) fn compare(op: CmpOp, a: &Value, b: &Value) -> R<bool> {
    use std::cmp::Ordering::*;
    Ok(match op {
        CmpOp::Eq => py_eq(a, b),
        CmpOp::NotEq => !py_eq(a, b),
        CmpOp::Lt => matches!(order(a, b, "<")?, Some(Less)),
        CmpOp::LtE => matches!(order(a, b, "<=")?, Some(Less | Equal)),
        CmpOp::Gt => matches!(order(a, b, ">")?, Some(Greater)),
        CmpOp::GtE => matches!(order(a, b, ">=")?, Some(Greater | Equal)),
        CmpOp::In => contains(b, a)?,
        CmpOp::NotIn => !contains(b, a)?,
        CmpOp::Is => is_same(a, b),
        CmpOp::IsNot => !is_same(a, b),
    })
}

fn is_same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::None, Value::None) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        // CPython caches small ints; equal small ints are the same object.
        (Value::Int(x), Value::Int(y)) => x == y && (-5..=256).contains(x),
        (Value::Func(x), Value::Func(y)) => x == y,
        _ => false,
    }
}

/// Quote a plain string the way `{{ }}` does (used by Array elements and sql_and).
pub(crate) fn wrap_value(v: &Value, name: &str) -> R<String> {
    Ok(match v {
        Value::Str(s) => quote_string(s),
        Value::Placeholder { .. } => "'__no_value__'".into(),
        Value::Comment => "-- {x} \n".into(),
        Value::None => {
            let name: String = if name.chars().count() > 20 {
                format!("{}...", name.chars().take(20).collect::<String>())
            } else {
                name.to_string()
            };
            return Err(Exc::Template(format!("expression \"{name}\" evaluated to null")));
        }
        other => other.py_str(),
    })
}

/// Python `a < b`.
pub(crate) fn compare_lt(a: &Value, b: &Value) -> R<bool> {
    Ok(matches!(order(a, b, "<")?, Some(std::cmp::Ordering::Less)))
}

/// Python's iteration protocol over a value.
pub(crate) fn iterate(v: Value) -> R<Vec<Value>> {
    match v {
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => Ok(items),
        Value::Str(s) | Value::Expression(s) => Ok(s.chars().map(|c| Value::Str(c.to_string())).collect()),
        Value::Dict(pairs) => Ok(pairs.into_iter().map(|(k, _)| k).collect()),
        // Placeholder has __getitem__ for 0..=2, so iterating it yields three placeholders.
        Value::Placeholder { .. } => Ok(vec![placeholder(), placeholder(), placeholder()]),
        other => Err(Exc::Type(format!("'{}' object is not iterable", other.type_name()))),
    }
}
