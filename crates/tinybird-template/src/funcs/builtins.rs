//! The Python builtins and methods templates may call (`len`, `str.split`, `dict.get`, …), as CPython does them.

use super::*;

pub(crate) fn py_len(v: &Value) -> R<usize> {
    match v {
        Value::Str(s) | Value::Expression(s) => Ok(s.chars().count()),
        Value::List(x) | Value::Tuple(x) | Value::Set(x) => Ok(x.len()),
        Value::Dict(x) => Ok(x.len()),
        other => Err(Exc::Type(format!("object of type '{}' has no len()", other.type_name()))),
    }
}

pub(super) fn py_split(s: &str, sep: Option<&Value>, maxsplit: i128) -> R<Vec<String>> {
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

pub(super) fn limit_len(n: usize) -> R<()> {
    if n > crate::context::MAX_OUTPUT_BYTES {
        return Err(Exc::Limit(format!("a value in the template exceeds {} bytes", crate::context::MAX_OUTPUT_BYTES)));
    }
    Ok(())
}

pub(super) fn builtin(ctx: &mut Ctx<'_>, name: &'static str, args: Vec<Value>, kw: Vec<(&str, Value)>) -> R<Value> {
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
                Some(v) => iterate(v.clone())?,
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
                    for item in iterate(v.clone())? {
                        let pair = iterate(item)?;
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
            for v in iterate(opt(&a[0]))? {
                acc = binop(BinOp::Add, acc, v)?;
            }
            Ok(acc)
        }
        "min" | "max" => {
            if !kw.is_empty() {
                return Err(Exc::Type(format!("{name}() keyword arguments are not supported by this renderer")));
            }
            let items = if args.len() == 1 {
                iterate(args.into_iter().next().unwrap_or(Value::None))?
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
            if count > crate::context::MAX_LOOP_ITERATIONS as i128 {
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
            let items = iterate(opt(&a[0]))?;
            Ok(Value::List(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Value::Tuple(vec![Value::Int(start + i as i128), v]))
                    .collect(),
            ))
        }
        "zip" => {
            let lists: Vec<Vec<Value>> = args.into_iter().map(iterate).collect::<R<_>>()?;
            let n = lists.iter().map(Vec::len).min().unwrap_or(0);
            Ok(Value::List((0..n).map(|i| Value::Tuple(lists.iter().map(|l| l[i].clone()).collect())).collect()))
        }
        "any" | "all" => {
            let a = bind(name, &["iterable"], 1, args, kw)?;
            let items = iterate(opt(&a[0]))?;
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
