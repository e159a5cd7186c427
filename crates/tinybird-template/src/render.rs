//! The interpreter: evaluates the node tree with Python semantics and the reference's functions.

use std::collections::HashMap;

use crate::Inner as Template;
use crate::context::{Ctx, MAX_LOOP_ITERATIONS, MAX_OUTPUT_BYTES};
use crate::error::RenderError;
use crate::expr::{BinOp, Const, Expr, ExprKind, UnOp};
use crate::funcs;
use crate::python::{Exc, R, compare, hashable, iterate, overflow, py_eq};
use crate::syntax::{Node, Target};
use crate::value::Value;
use crate::vars::{Hints, ParamValue, RenderOptions, Rendered, Variables};

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) fn render(tpl: &Template, vars: &Variables, opts: &RenderOptions) -> Result<Rendered, RenderError> {
    let mut ctx = Ctx {
        tpl,
        vars,
        opts,
        preprocessed: HashMap::new(),
        locals: HashMap::new(),
        out: String::with_capacity(tpl.body_len + 64),
        hints: Hints::default(),
        query_params: Vec::new(),
        iterations: 0,
        secret_test_mode: opts.test_mode && tpl.uses_secret_fn,
        job_timestamp: None,
    };
    // Array pre-processing: values of variables used as Array(x, 'T') become typed lists before rendering.
    for (name, inner) in &tpl.array_vars {
        if let Some(pv) = vars.get(name)
            && let Some(v) = funcs::preprocess_array(param_value(pv), inner)
        {
            ctx.preprocessed.insert(name.as_str(), v);
        }
    }
    if tpl.uses_job_timestamp && !vars.contains("job_timestamp") {
        ctx.job_timestamp = Some(opts.now.clone().unwrap_or_else(funcs::now_string));
    }
    let result = ctx.exec_block(&tpl.nodes);
    match result {
        Ok(_) => Ok(Rendered {
            sql: ctx.out,
            hints: ctx.hints,
            warnings: tpl
                .reserved_used
                .iter()
                .map(|n| format!("The parameter name \"{n}\" is a reserved word. Please, use another name"))
                .collect(),
            query_params: ctx.query_params,
        }),
        Err(e) => {
            // The reference's `generate` rewrites any other exception when the namespace holds a test-mode
            // placeholder named `x` (its own loop variable's name leaks in): `ValueError(f"{e}, line {x.line}")`.
            if opts.test_mode
                && !matches!(
                    e,
                    Exc::Custom { .. } | Exc::UnboundLocal(_) | Exc::Type(_) | Exc::Limit(_) | Exc::Internal(_)
                )
                && !vars.contains("x")
                && let Some(line) = tpl.template_vars.get("x")
            {
                return Err(RenderError::value(format!("{}, line {line}", e.message())));
            }
            Err(to_render_error(e, tpl))
        }
    }
}

/// Map an exception to what `render_sql_template` raises.
fn to_render_error(e: Exc, tpl: &Template) -> RenderError {
    match e {
        Exc::Custom { obj, code } => {
            let status = code.as_int().and_then(|c| u16::try_from(c).ok()).filter(|c| (100..=599).contains(c));
            RenderError::custom(obj.py_str(), status.unwrap_or(400), obj.to_json())
        }
        Exc::Template(m) => {
            if m.contains(funcs::REQUIRED_PARAM_NOT_DEFINED) {
                let names = tpl.required_candidates();
                if !names.is_empty() {
                    return RenderError::template(format!(
                        "{}. Check the parameters {}. Please provide a value or set a default value in the pipe code.",
                        funcs::REQUIRED_PARAM_NOT_DEFINED,
                        crate::error::join_and(&names)
                    ));
                }
            }
            RenderError::template(m)
        }
        Exc::Name(m) | Exc::UnboundLocal(m) => RenderError::template(m),
        Exc::Attribute(m) => {
            if m.contains("'str' object has no attribute 'get'") {
                RenderError::template(
                    "'str' object has no attribute 'get'. Make sure you're using an object/dictionary where trying to use .get()",
                )
            } else {
                RenderError::template(m)
            }
        }
        Exc::Key(k) => RenderError::template(format!(
            "Missing key '{}' while rendering the template. Ensure every object accessed in the template has this key.",
            k.py_str()
        )),
        Exc::Index(m) => {
            if m.contains("string index out of range") {
                RenderError::template(
                    "String index out of range. Check that string parameters have values before accessing specific characters (e.g., param[0]). Provide default values or add length checks in your template.",
                )
            } else {
                RenderError::template(m)
            }
        }
        Exc::Type(m) | Exc::Value(m) | Exc::ZeroDiv(m) => {
            let m = if m.contains("not supported between instances of 'Placeholder' and ") {
                format!(
                    "{m}. If you are using a dynamic parameter, you need to wrap it around a valid Data Type (e.g. Int8(placeholder))"
                )
            } else {
                m
            };
            if m.contains("missing 1 required positional argument") {
                RenderError::template("one of the transform type functions is missing an argument")
            } else if m.contains("not callable") || m.contains("unhashable type") {
                RenderError::template("wrong syntax, you might be using a not valid function inside a control block")
            } else {
                RenderError::value(m)
            }
        }
        Exc::Limit(m) => RenderError::limit(m),
        Exc::Internal(m) => RenderError::internal(m),
    }
}

pub(crate) fn param_value(pv: &ParamValue) -> Value {
    match pv {
        ParamValue::Str(s) => Value::Str(s.clone()),
        ParamValue::List(items) => Value::List(items.iter().map(|s| Value::Str(s.clone())).collect()),
        ParamValue::Json(j) => Value::from_json(j),
    }
}

impl Ctx<'_> {
    fn exec_block(&mut self, nodes: &[Node]) -> R<Flow> {
        for n in nodes {
            match self.exec(n)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn tick(&mut self) -> R<()> {
        self.iterations += 1;
        if self.iterations > MAX_LOOP_ITERATIONS {
            return Err(Exc::Limit(format!(
                "template loops ran more than {MAX_LOOP_ITERATIONS} iterations; the render was stopped"
            )));
        }
        Ok(())
    }

    fn exec(&mut self, node: &Node) -> R<Flow> {
        match node {
            Node::Text(t) => {
                self.out.push_str(t);
                self.check_out()?;
            }
            Node::Expr { expr, src, .. } => {
                let v = self.eval(expr)?;
                self.emit(v, src)?;
            }
            Node::If { branches, orelse, .. } => {
                for (test, body) in branches {
                    if self.eval(test)?.truthy() {
                        return self.exec_block(body);
                    }
                }
                if let Some(body) = orelse {
                    return self.exec_block(body);
                }
            }
            Node::For { target, iter, body, orelse, .. } => {
                let it = self.eval(iter)?;
                let items = iterate(it)?;
                for item in items {
                    self.tick()?;
                    self.assign(target, item)?;
                    match self.exec_block(body)? {
                        Flow::Break => return Ok(Flow::Normal),
                        Flow::Continue | Flow::Normal => {}
                    }
                }
                if let Some(body) = orelse {
                    return self.exec_block(body);
                }
            }
            Node::While { test, body, orelse, .. } => {
                loop {
                    if !self.eval(test)?.truthy() {
                        break;
                    }
                    self.tick()?;
                    match self.exec_block(body)? {
                        Flow::Break => return Ok(Flow::Normal),
                        Flow::Continue | Flow::Normal => {}
                    }
                }
                if let Some(body) = orelse {
                    return self.exec_block(body);
                }
            }
            Node::Try { body, handlers, orelse, finally, .. } => {
                // Output already appended by a failing body stays, as in the reference.
                let result = self.exec_block(body);
                let result = match result {
                    Err(e) if !matches!(e, Exc::Limit(_) | Exc::Internal(_)) => {
                        let handler =
                            handlers.iter().find(|h| h.classes.is_empty() || h.classes.iter().any(|c| e.matches(c)));
                        match handler {
                            Some(h) => {
                                if let Some(bind) = &h.bind {
                                    self.locals.insert(
                                        bind.clone(),
                                        Value::Exception { class: e.class(), message: e.message() },
                                    );
                                }
                                self.exec_block(&h.body)
                            }
                            None => Err(e),
                        }
                    }
                    Ok(flow) => match (flow, orelse) {
                        (Flow::Normal, Some(body)) => self.exec_block(body),
                        (flow, _) => Ok(flow),
                    },
                    Err(e) => Err(e),
                };
                if let Some(f) = finally {
                    match self.exec_block(f)? {
                        Flow::Normal => {}
                        flow => return Ok(flow),
                    }
                }
                return result;
            }
            Node::Set { target, chained, aug, value, .. } => {
                let v = self.eval(value)?;
                match (target, aug) {
                    (Some(t), None) => {
                        for c in chained {
                            self.assign(c, v.clone())?;
                        }
                        self.assign(t, v)?;
                    }
                    (Some(Target::Name(n, _)), Some(op)) => {
                        let cur = self.lookup(n)?;
                        let nv = self.binop(*op, cur, v)?;
                        self.locals.insert(n.clone(), nv);
                    }
                    (Some(Target::Tuple(_)), Some(_)) => {
                        return Err(Exc::Internal("augmented assignment to a tuple".into()));
                    }
                    (None, _) => {}
                }
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn check_out(&self) -> R<()> {
        if self.out.len() > MAX_OUTPUT_BYTES {
            return Err(Exc::Limit(format!("rendered SQL exceeds {MAX_OUTPUT_BYTES} bytes")));
        }
        Ok(())
    }

    /// `expression_wrapper` + `str()`: how a `{{ }}` value becomes SQL.
    fn emit(&mut self, v: Value, src: &str) -> R<()> {
        match v {
            Value::Str(s) => {
                self.out.push('\'');
                crate::value::escape_string_into(&mut self.out, &s);
                self.out.push('\'');
            }
            Value::Placeholder { .. } => self.out.push_str("'__no_value__'"),
            // The reference's format string lacks its `f` prefix, so this is emitted literally.
            Value::Comment => self.out.push_str("-- {x} \n"),
            Value::None => {
                let name: String = if src.chars().count() > 20 {
                    format!("{}...", src.chars().take(20).collect::<String>())
                } else {
                    src.to_string()
                };
                return Err(Exc::Template(format!("expression \"{name}\" evaluated to null")));
            }
            Value::Expression(s) | Value::Symbol(s) => self.out.push_str(&s),
            other => other.write_str(&mut self.out),
        }
        self.check_out()
    }

    fn assign(&mut self, target: &Target, v: Value) -> R<()> {
        match target {
            Target::Name(n, _) => {
                self.locals.insert(n.clone(), v);
                Ok(())
            }
            Target::Tuple(items) => {
                let vals = match v {
                    Value::List(_)
                    | Value::Tuple(_)
                    | Value::Set(_)
                    | Value::Str(_)
                    | Value::Expression(_)
                    | Value::Dict(_)
                    | Value::Placeholder { .. } => iterate(v)?,
                    other => {
                        return Err(Exc::Type(format!("cannot unpack non-iterable {} object", other.type_name())));
                    }
                };
                if vals.len() != items.len() {
                    return Err(Exc::Value(if vals.len() > items.len() {
                        format!("too many values to unpack (expected {})", items.len())
                    } else {
                        format!("not enough values to unpack (expected {}, got {})", items.len(), vals.len())
                    }));
                }
                for (t, v) in items.iter().zip(vals) {
                    self.assign(t, v)?;
                }
                Ok(())
            }
        }
    }

    /// Resolve a name the way the generated Python function would.
    pub(crate) fn lookup(&self, name: &str) -> R<Value> {
        if !self.tpl.local_names.is_empty() && self.tpl.local_names.contains(name) {
            return match self.locals.get(name) {
                Some(v) => Ok(v.clone()),
                None => Err(Exc::UnboundLocal(format!(
                    "cannot access local variable '{name}' where it is not associated with a value"
                ))),
            };
        }
        if let Some(f) = funcs::fixed_fn(name) {
            return Ok(Value::Func(f));
        }
        if let Some(v) = self.preprocessed.get(name) {
            return Ok(v.clone());
        }
        if let Some(pv) = self.vars.get(name) {
            return Ok(param_value(pv));
        }
        if name == "job_timestamp"
            && let Some(ts) = &self.job_timestamp
        {
            return Ok(Value::Str(ts.clone()));
        }
        if let Some(line) = self.tpl.template_vars.get(name) {
            return Ok(if self.opts.test_mode {
                Value::Placeholder { name: name.to_string(), line: *line }
            } else {
                Value::None
            });
        }
        if let Some(f) = funcs::builtin_fn(name) {
            return Ok(Value::Func(f));
        }
        if name == "id" {
            return Ok(Value::None);
        }
        Err(Exc::Name(format!("name '{name}' is not defined")))
    }

    pub(crate) fn eval(&mut self, e: &Expr) -> R<Value> {
        match &e.kind {
            ExprKind::Const(c) => Ok(match c {
                Const::None => Value::None,
                Const::Bool(b) => Value::Bool(*b),
                Const::Int(i) => Value::Int(*i),
                Const::Float(f) => Value::Float(*f),
                Const::Str(s) => Value::Str(s.clone()),
            }),
            ExprKind::Name(n) => self.lookup(n),
            ExprKind::List(items) => Ok(Value::List(self.eval_all(items)?)),
            ExprKind::Tuple(items) => Ok(Value::Tuple(self.eval_all(items)?)),
            ExprKind::Set(items) => {
                let vals = self.eval_all(items)?;
                let mut out: Vec<Value> = Vec::new();
                for v in vals {
                    hashable(&v)?;
                    if !out.iter().any(|o| py_eq(o, &v)) {
                        out.push(v);
                    }
                }
                Ok(Value::Set(out))
            }
            ExprKind::Dict(pairs) => {
                let mut out: Vec<(Value, Value)> = Vec::new();
                for (k, v) in pairs {
                    let k = self.eval(k)?;
                    let v = self.eval(v)?;
                    hashable(&k)?;
                    if let Some(slot) = out.iter_mut().find(|(ok, _)| py_eq(ok, &k)) {
                        slot.1 = v;
                    } else {
                        out.push((k, v));
                    }
                }
                Ok(Value::Dict(out))
            }
            ExprKind::Call { func, args, kwargs } => self.call(func, args, kwargs),
            ExprKind::Attr { value, attr } => {
                let v = self.eval(value)?;
                Err(Exc::Attribute(format!("'{}' object has no attribute '{attr}'", v.type_name())))
            }
            ExprKind::Subscript { value, index } => {
                let v = self.eval(value)?;
                if let ExprKind::Slice { lower, upper, step } = &index.kind {
                    let lo = match lower {
                        Some(x) => Some(self.eval(x)?),
                        None => None,
                    };
                    let hi = match upper {
                        Some(x) => Some(self.eval(x)?),
                        None => None,
                    };
                    let st = match step {
                        Some(x) => Some(self.eval(x)?),
                        None => None,
                    };
                    return funcs::slice(v, lo, hi, st);
                }
                let i = self.eval(index)?;
                funcs::subscript(v, i)
            }
            ExprKind::Slice { .. } => Err(Exc::Internal("slice outside a subscript".into())),
            ExprKind::Unary { op, operand } => {
                let v = self.eval(operand)?;
                match op {
                    UnOp::Not => Ok(Value::Bool(!v.truthy())),
                    UnOp::Neg => match v {
                        Value::Float(f) | Value::TypedFloat { value: f, .. } => Ok(Value::Float(-f)),
                        v if v.is_int_like() => match v.as_int() {
                            Some(i) => i.checked_neg().map(Value::Int).ok_or_else(overflow),
                            None => Err(overflow()),
                        },
                        v => Err(Exc::Type(format!("bad operand type for unary -: '{}'", v.type_name()))),
                    },
                    UnOp::Pos => match v {
                        Value::Float(f) | Value::TypedFloat { value: f, .. } => Ok(Value::Float(f)),
                        v if v.is_int_like() => v.as_int().map(Value::Int).ok_or_else(overflow),
                        v => Err(Exc::Type(format!("bad operand type for unary +: '{}'", v.type_name()))),
                    },
                    UnOp::Invert => match v.as_int() {
                        Some(i) if v.is_int_like() => Ok(Value::Int(!i)),
                        _ => Err(Exc::Type(format!("bad operand type for unary ~: '{}'", v.type_name()))),
                    },
                }
            }
            ExprKind::Bin { op, left, right } => {
                let l = self.eval(left)?;
                let r = self.eval(right)?;
                self.binop(*op, l, r)
            }
            ExprKind::BoolOp { and, values } => {
                let mut last = Value::None;
                for (i, v) in values.iter().enumerate() {
                    last = self.eval(v)?;
                    let t = last.truthy();
                    if i + 1 < values.len() && ((*and && !t) || (!*and && t)) {
                        return Ok(last);
                    }
                }
                Ok(last)
            }
            ExprKind::Compare { left, ops } => {
                let mut l = self.eval(left)?;
                for (op, re) in ops {
                    let r = self.eval(re)?;
                    if !compare(*op, &l, &r)? {
                        return Ok(Value::Bool(false));
                    }
                    l = r;
                }
                Ok(Value::Bool(true))
            }
            ExprKind::IfExp { test, body, orelse } => {
                if self.eval(test)?.truthy() {
                    self.eval(body)
                } else {
                    self.eval(orelse)
                }
            }
        }
    }

    fn eval_all(&mut self, items: &[Expr]) -> R<Vec<Value>> {
        items.iter().map(|e| self.eval(e)).collect()
    }

    fn call(&mut self, func: &Expr, args: &[Expr], kwargs: &[(String, Expr)]) -> R<Value> {
        if let ExprKind::Attr { value, attr } = &func.kind {
            let recv = self.eval(value)?;
            let args = self.eval_all(args)?;
            let mut kw = Vec::with_capacity(kwargs.len());
            for (k, v) in kwargs {
                kw.push((k.as_str(), self.eval(v)?));
            }
            return funcs::call_method(recv, attr, args, kw);
        }
        let f = self.eval(func)?;
        let args = self.eval_all(args)?;
        let mut kw = Vec::with_capacity(kwargs.len());
        for (k, v) in kwargs {
            kw.push((k.as_str(), self.eval(v)?));
        }
        match f {
            Value::Func(name) => funcs::call(self, name, args, kw),
            Value::Placeholder { name, line } => {
                Err(Exc::Template(format!("'{name}' is not a valid function, line {line}")))
            }
            other => Err(Exc::Type(format!("'{}' object is not callable", other.type_name()))),
        }
    }

    pub(crate) fn binop(&self, op: BinOp, l: Value, r: Value) -> R<Value> {
        funcs::binop(op, l, r)
    }
}
