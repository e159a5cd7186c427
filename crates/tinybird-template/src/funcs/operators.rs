//! Python's operators on template values: arithmetic, comparison, subscripts and slices.

use super::*;

pub(super) fn py_lt(a: &Value, b: &Value) -> R<bool> {
    crate::python::compare_lt(a, b)
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

pub(super) fn floor_div(a: i128, b: i128) -> i128 {
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
