//! What a template reads: the public [`Analysis`] for the derive macro, and the reference's own variable lists
//! (`get_var_names`, `get_var_names_and_types`) that rendering depends on.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::error::line_col;
use crate::expr::{Const, Expr, ExprKind};
use crate::funcs;
use crate::syntax::{Node, Target};

/// A position inside the template body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Byte offset.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Position {
    pub(crate) fn at(body: &str, offset: usize) -> Position {
        let (line, column) = line_col(body, offset);
        Position { offset, line, column }
    }
}

/// A literal argument as written in the template (defaults, metadata).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `None`
    None,
    /// `True` / `False`
    Bool(bool),
    /// An integer (negative literals included).
    Int(i128),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list or tuple of literals.
    List(Vec<Literal>),
    /// Anything else (a name, an expression): its source text.
    Expr(String),
}

impl Literal {
    fn from_expr(e: &Expr, body: &str) -> Literal {
        match &e.kind {
            ExprKind::Const(c) => match c {
                Const::None => Literal::None,
                Const::Bool(b) => Literal::Bool(*b),
                Const::Int(i) => Literal::Int(*i),
                Const::Float(f) => Literal::Float(*f),
                Const::Str(s) => Literal::Str(s.clone()),
            },
            ExprKind::Unary { op: crate::expr::UnOp::Neg, operand } => match &operand.kind {
                ExprKind::Const(Const::Int(i)) => Literal::Int(-i),
                ExprKind::Const(Const::Float(f)) => Literal::Float(-f),
                _ => Literal::Expr(source(e, body)),
            },
            ExprKind::List(items) | ExprKind::Tuple(items) => {
                Literal::List(items.iter().map(|i| Literal::from_expr(i, body)).collect())
            }
            _ => Literal::Expr(source(e, body)),
        }
    }

    /// Whether this is Python `None`.
    pub fn is_none(&self) -> bool {
        matches!(self, Literal::None)
    }
}

fn source(e: &Expr, body: &str) -> String {
    body.get(e.span.start..e.span.end).unwrap_or("").to_string()
}

/// The metadata keywords of a typed function (never enforced by Tinybird; exposed for documentation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// `required=`
    pub required: Option<Literal>,
    /// `description=`
    pub description: Option<Literal>,
    /// `enum=`
    pub enum_values: Option<Literal>,
    /// `example=`
    pub example: Option<Literal>,
    /// `format=`
    pub format: Option<Literal>,
}

impl Metadata {
    fn merge(&mut self, other: &Metadata) {
        for (mine, theirs) in [
            (&mut self.required, &other.required),
            (&mut self.description, &other.description),
            (&mut self.enum_values, &other.enum_values),
            (&mut self.example, &other.example),
            (&mut self.format, &other.format),
        ] {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
    }
}

/// Where a variable is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseContext {
    /// Inside `{{ }}`.
    Output,
    /// In an `{% if %}`, `{% elif %}` or `{% while %}` condition.
    Condition,
    /// In the iterable of an `{% for %}`.
    Loop,
    /// In the value of an `{% set %}`.
    Set,
}

/// One read of a template variable.
#[derive(Debug, Clone, PartialEq)]
pub struct VarUse {
    /// The variable (parameter) name.
    pub name: String,
    /// The function the variable is passed to directly (`String`, `Int32`, `Array`, `DateTime64`, `column`,
    /// `columns`, `symbol`, `defined`, …); `None` for a bare `{{x}}` or any other expression.
    pub function: Option<String>,
    /// For `Array(x, 'T')`: the element type (`String` when omitted).
    pub array_type: Option<String>,
    /// The default value, when given (`String(x, 'a')` or `default='a'`).
    pub default: Option<Literal>,
    /// `defined=False` was given.
    pub defined_false: bool,
    /// Metadata keywords.
    pub metadata: Metadata,
    /// Whether the use sits under an `{% if %}` whose condition calls `defined(name)`.
    pub guarded: bool,
    /// Where the read happens.
    pub context: UseContext,
    /// Position of the name.
    pub position: Position,
    /// Position of the enclosing function call, when `function` is set.
    pub call_position: Option<Position>,
}

/// A call of a function Tinybird does not provide (in a control statement; in `{{ }}` it is a parse error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    /// The function name.
    pub name: String,
    /// Position of the name.
    pub position: Position,
}

/// A name bound by `{% set %}`, `{% for %}` or `{% except … as e %}`: a local, not a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalName {
    /// The name.
    pub name: String,
    /// Where it is bound.
    pub position: Position,
}

/// A parameter of the template, merged over all its uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The name.
    pub name: String,
    /// The first typed function applied to it (`defined` does not count).
    pub function: Option<String>,
    /// For `Array`: the element type.
    pub array_type: Option<String>,
    /// The first default given.
    pub default: Option<Literal>,
    /// Some use passes `defined=False`.
    pub defined_false: bool,
    /// Metadata merged over all uses (first value wins).
    pub metadata: Metadata,
    /// A render without this parameter fails: some unguarded use has neither a default nor `defined=False`.
    pub required: bool,
    /// Every use sits under a `defined()` guard.
    pub always_guarded: bool,
    /// Position of the first use.
    pub first_use: Position,
    /// Number of uses.
    pub uses: usize,
}

/// Everything a template reads. See [`crate::Template::analyze`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// Every read of a template variable, in template order.
    pub uses: Vec<VarUse>,
    /// Calls of functions Tinybird does not provide.
    pub invalid_calls: Vec<FunctionCall>,
    /// Names bound inside the template (not parameters).
    pub locals: Vec<LocalName>,
}

impl Analysis {
    /// The distinct parameters in first-use order with their merged type, default and metadata.
    pub fn params(&self) -> Vec<Param> {
        let mut out: Vec<Param> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for u in &self.uses {
            let typed = u.function.as_deref().filter(|f| *f != "defined");
            let requires = is_required_use(u);
            match index.get(u.name.as_str()) {
                Some(&i) => {
                    let p = &mut out[i];
                    if p.function.is_none() && typed.is_some() {
                        p.function = typed.map(str::to_string);
                        p.array_type.clone_from(&u.array_type);
                    }
                    if p.default.is_none() {
                        p.default.clone_from(&u.default);
                    }
                    p.defined_false |= u.defined_false;
                    p.metadata.merge(&u.metadata);
                    p.required |= requires;
                    p.always_guarded &= u.guarded;
                    p.uses += 1;
                }
                None => {
                    index.insert(u.name.as_str(), out.len());
                    out.push(Param {
                        name: u.name.clone(),
                        function: typed.map(str::to_string),
                        array_type: if typed.is_some() { u.array_type.clone() } else { None },
                        default: u.default.clone(),
                        defined_false: u.defined_false,
                        metadata: u.metadata.clone(),
                        required: requires,
                        always_guarded: u.guarded,
                        first_use: u.position,
                        uses: 1,
                    });
                }
            }
        }
        out
    }

    /// The uses of one parameter.
    pub fn uses_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a VarUse> + 'a {
        self.uses.iter().filter(move |u| u.name == name)
    }
}

fn is_required_use(u: &VarUse) -> bool {
    if u.guarded || u.defined_false || u.default.as_ref().is_some_and(|d| !d.is_none()) {
        return false;
    }
    match u.function.as_deref() {
        None => u.context == UseContext::Output,
        Some(f) => funcs::scalar_of(f).is_some() || matches!(f, "Array" | "column" | "columns"),
    }
}

/// Functions whose first argument names the variable they apply to.
fn applies_to_first_arg(name: &str) -> bool {
    funcs::scalar_of(name).is_some()
        || matches!(
            name,
            "Boolean"
                | "bool"
                | "Array"
                | "JSON"
                | "defined"
                | "column"
                | "columns"
                | "symbol"
                | "Symbol"
                | "Column"
                | "table"
                | "TABLE"
                | "split_to_array"
                | "enumerate_with_last"
                | "sql_unescape"
                | "day_diff"
                | "date_diff_in_days"
                | "date_diff_in_hours"
                | "date_diff_in_minutes"
                | "date_diff_in_seconds"
        )
}

/// Positional parameter names after `x`, to read defaults and `defined` given positionally.
fn positional_params(name: &str) -> &'static [&'static str] {
    match name {
        "Array" => &["x", "_type", "default", "defined", "required", "description", "enum", "example", "format"],
        "Boolean" | "bool" | "JSON" | "column" | "table" | "TABLE" => &["x", "default"],
        "columns" => &["x", "default", "fn"],
        "split_to_array" => &["x", "default", "separator"],
        n if funcs::scalar_of(n).is_some() => {
            &["x", "default", "defined", "required", "description", "enum", "example", "format"]
        }
        _ => &["x"],
    }
}

/// The typed call a variable is the subject of: function name, the call, its arguments and keywords.
type Applied<'e> = (&'e str, &'e Expr, &'e [Expr], &'e [(String, Expr)]);

pub(crate) struct Analyzer<'a> {
    body: &'a str,
    locals: &'a HashSet<String>,
    out: Analysis,
    guards: Vec<HashSet<String>>,
}

/// Names bound anywhere in the template (Python makes them locals of the whole generated function).
pub(crate) fn local_names(nodes: &[Node], out: &mut Vec<(String, crate::expr::Span)>) {
    for n in nodes {
        match n {
            Node::For { target, body, orelse, .. } => {
                target.names(out);
                local_names(body, out);
                if let Some(o) = orelse {
                    local_names(o, out);
                }
            }
            Node::Set { target: Some(t), chained, .. } => {
                t.names(out);
                chained.iter().for_each(|c| c.names(out));
            }
            Node::If { branches, orelse, .. } => {
                branches.iter().for_each(|(_, b)| local_names(b, out));
                if let Some(o) = orelse {
                    local_names(o, out);
                }
            }
            Node::While { body, orelse, .. } => {
                local_names(body, out);
                if let Some(o) = orelse {
                    local_names(o, out);
                }
            }
            Node::Try { body, handlers, orelse, finally, .. } => {
                local_names(body, out);
                for h in handlers {
                    if let Some(b) = &h.bind {
                        out.push((b.clone(), crate::expr::Span { start: 0, end: 0 }));
                    }
                    local_names(&h.body, out);
                }
                for o in [orelse, finally].into_iter().flatten() {
                    local_names(o, out);
                }
            }
            _ => {}
        }
    }
}

impl<'a> Analyzer<'a> {
    pub(crate) fn new(body: &'a str, locals: &'a HashSet<String>) -> Self {
        Analyzer { body, locals, out: Analysis::default(), guards: Vec::new() }
    }

    pub(crate) fn run(mut self, nodes: &[Node]) -> Analysis {
        let mut bound = Vec::new();
        local_names(nodes, &mut bound);
        let mut seen = HashSet::new();
        for (n, span) in bound {
            if seen.insert(n.clone()) {
                self.out.locals.push(LocalName { name: n, position: Position::at(self.body, span.start) });
            }
        }
        self.nodes(nodes);
        self.out
    }

    fn nodes(&mut self, nodes: &[Node]) {
        for n in nodes {
            match n {
                Node::Text(_) | Node::Break | Node::Continue => {}
                Node::Expr { expr, .. } => self.expr(expr, UseContext::Output, None),
                Node::If { branches, orelse, .. } => {
                    let mut guard = HashSet::new();
                    for (test, _) in branches {
                        self.expr(test, UseContext::Condition, None);
                        defined_names(test, &mut guard);
                    }
                    self.guards.push(guard);
                    for (_, body) in branches {
                        self.nodes(body);
                    }
                    if let Some(o) = orelse {
                        self.nodes(o);
                    }
                    self.guards.pop();
                }
                Node::For { iter, body, orelse, .. } => {
                    self.expr(iter, UseContext::Loop, None);
                    self.nodes(body);
                    if let Some(o) = orelse {
                        self.nodes(o);
                    }
                }
                Node::While { test, body, orelse, .. } => {
                    self.expr(test, UseContext::Condition, None);
                    self.nodes(body);
                    if let Some(o) = orelse {
                        self.nodes(o);
                    }
                }
                Node::Try { body, handlers, orelse, finally, .. } => {
                    self.nodes(body);
                    for h in handlers {
                        self.nodes(&h.body);
                    }
                    for o in [orelse, finally].into_iter().flatten() {
                        self.nodes(o);
                    }
                }
                Node::Set { value, .. } => self.expr(value, UseContext::Set, None),
            }
        }
    }

    fn is_param(&self, name: &str) -> bool {
        !self.locals.contains(name)
            && !funcs::is_type_fn(name)
            && !matches!(
                name,
                "max_threads" | "tb_secret" | "tb_var" | "backend_hint" | "cache_ttl" | "activate" | "disable"
            )
            && !funcs::is_reserved_var(name)
    }

    fn guarded(&self, name: &str) -> bool {
        self.guards.iter().any(|g| g.contains(name))
    }

    /// Walk an expression; `applied` is the typed call the expression is the subject of.
    fn expr(&mut self, e: &Expr, ctx: UseContext, applied: Option<Applied<'_>>) {
        match &e.kind {
            ExprKind::Name(n) => {
                if !self.is_param(n) {
                    return;
                }
                let mut u = VarUse {
                    name: n.clone(),
                    function: None,
                    array_type: None,
                    default: None,
                    defined_false: false,
                    metadata: Metadata::default(),
                    guarded: self.guarded(n),
                    context: ctx,
                    position: Position::at(self.body, e.span.start),
                    call_position: None,
                };
                if let Some((fname, call, args, kwargs)) = applied {
                    u.function = Some(fname.to_string());
                    u.call_position = Some(Position::at(self.body, call.span.start));
                    let params = positional_params(fname);
                    let arg = |name: &str| -> Option<&Expr> {
                        kwargs
                            .iter()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v)
                            .or_else(|| params.iter().position(|p| *p == name).and_then(|i| args.get(i)))
                    };
                    if fname == "Array" {
                        u.array_type = Some(match arg("_type").map(|t| Literal::from_expr(t, self.body)) {
                            Some(Literal::Str(s)) => s,
                            Some(Literal::Expr(s)) => s,
                            Some(other) => format!("{other:?}"),
                            None => "String".to_string(),
                        });
                    }
                    if params.contains(&"default") {
                        u.default = arg("default").map(|d| Literal::from_expr(d, self.body));
                    }
                    if params.contains(&"defined") {
                        u.defined_false = arg("defined").is_some_and(|d| {
                            matches!(d.kind, ExprKind::Const(Const::Bool(false) | Const::None | Const::Int(0)))
                        });
                    }
                    let meta = |k: &str| arg(k).map(|d| Literal::from_expr(d, self.body));
                    if params.contains(&"required") {
                        u.metadata = Metadata {
                            required: meta("required"),
                            description: meta("description"),
                            enum_values: meta("enum"),
                            example: meta("example"),
                            format: meta("format"),
                        };
                    }
                }
                self.out.uses.push(u);
            }
            ExprKind::Call { func, args, kwargs } => {
                if let ExprKind::Name(fname) = &func.kind {
                    let known = funcs::is_type_fn(fname)
                        || crate::registry::is_callable(fname)
                        || funcs::is_builtin(fname)
                        || self.locals.contains(fname.as_str());
                    if !known {
                        self.out.invalid_calls.push(FunctionCall {
                            name: fname.clone(),
                            position: Position::at(self.body, func.span.start),
                        });
                    }
                    if applies_to_first_arg(fname) {
                        let date_fn = fname == "day_diff" || fname.starts_with("date_diff_in_");
                        for (i, a) in args.iter().enumerate() {
                            if i == 0 || (i == 1 && date_fn) {
                                self.expr(a, ctx, Some((fname.as_str(), e, args, kwargs)));
                            } else {
                                self.expr(a, ctx, None);
                            }
                        }
                        for (_, v) in kwargs {
                            self.expr(v, ctx, None);
                        }
                        return;
                    }
                    self.expr(func, ctx, None);
                } else {
                    self.expr(func, ctx, None);
                }
                for a in args {
                    self.expr(a, ctx, None);
                }
                for (_, v) in kwargs {
                    self.expr(v, ctx, None);
                }
            }
            _ => {
                for c in e.children() {
                    self.expr(c, ctx, None);
                }
            }
        }
    }
}

fn defined_names(e: &Expr, out: &mut HashSet<String>) {
    if let ExprKind::Call { func, args, .. } = &e.kind
        && matches!(&func.kind, ExprKind::Name(n) if n == "defined")
        && let Some(Expr { kind: ExprKind::Name(n), .. }) = args.first()
    {
        out.insert(n.clone());
    }
    for c in e.children() {
        defined_names(c, out);
    }
}

// ---- The reference's own variable lists -------------------------------------------------------------------

/// `get_var_names`: the names each chunk's compiled code references (`co_names`), minus the reference's
/// namespace and builtins, with the chunk's line. Order follows the bytecode, as in the reference.
pub(crate) fn template_var_names(nodes: &[Node], out: &mut Vec<(String, usize)>) {
    for n in nodes {
        match n {
            Node::Text(_) | Node::Break | Node::Continue => {}
            Node::Expr { expr, line, .. } => push_co_names(&[expr], &[], *line, out),
            Node::If { branches, orelse, branch_lines, line } => {
                for (i, (test, body)) in branches.iter().enumerate() {
                    push_co_names(&[test], &[], branch_lines.get(i).copied().unwrap_or(*line), out);
                    template_var_names(body, out);
                }
                if let Some(o) = orelse {
                    template_var_names(o, out);
                }
            }
            Node::For { target, iter, body, orelse, line } => {
                push_co_names(&[iter], std::slice::from_ref(target), *line, out);
                template_var_names(body, out);
                if let Some(o) = orelse {
                    template_var_names(o, out);
                }
            }
            Node::While { test, body, orelse, line } => {
                push_co_names(&[test], &[], *line, out);
                template_var_names(body, out);
                if let Some(o) = orelse {
                    template_var_names(o, out);
                }
            }
            Node::Try { body, handlers, orelse, finally, line } => {
                template_var_names(body, out);
                for h in handlers {
                    for c in &h.classes {
                        push_name(c, *line, out);
                    }
                    if let Some(b) = &h.bind {
                        push_name(b, *line, out);
                    }
                    template_var_names(&h.body, out);
                }
                for o in [orelse, finally].into_iter().flatten() {
                    template_var_names(o, out);
                }
            }
            Node::Set { target, chained, value, line, aug } => {
                let targets: Vec<Target> = target.iter().chain(chained).cloned().collect();
                if aug.is_some() {
                    // `x += v` loads x first.
                    push_co_names(&[], &targets, *line, out);
                }
                push_co_names(&[value], &targets, *line, out);
            }
        }
    }
}

fn push_name(n: &str, line: usize, out: &mut Vec<(String, usize)>) {
    if !funcs::is_reserved_var(n) {
        out.push((n.to_string(), line));
    }
}

fn push_co_names(exprs: &[&Expr], targets: &[Target], line: usize, out: &mut Vec<(String, usize)>) {
    let mut names: Vec<String> = Vec::new();
    for e in exprs {
        co_names(e, &mut names);
    }
    for t in targets {
        let mut tn = Vec::new();
        t.names(&mut tn);
        names.extend(tn.into_iter().map(|(n, _)| n));
    }
    let mut seen = HashSet::new();
    for n in names {
        if seen.insert(n.clone()) {
            push_name(&n, line, out);
        }
    }
}

fn co_names(e: &Expr, out: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Name(n) => out.push(n.clone()),
        ExprKind::Attr { value, attr } => {
            co_names(value, out);
            out.push(attr.clone());
        }
        ExprKind::IfExp { test, body, orelse } => {
            co_names(test, out);
            co_names(body, out);
            co_names(orelse, out);
        }
        ExprKind::Dict(pairs) => {
            for (k, v) in pairs {
                co_names(k, out);
                co_names(v, out);
            }
        }
        _ => {
            for c in e.children() {
                co_names(c, out);
            }
        }
    }
}

/// One entry of `get_var_names_and_types`.
#[derive(Debug, Clone)]
pub(crate) struct VarType {
    /// The name; `None` when the reference's key is not a string (a literal first argument).
    pub name: Option<String>,
    pub type_: String,
    pub default_is_none: bool,
    pub used_in_call: bool,
}

/// A value as `node_to_value` sees it.
#[derive(Debug, Clone, PartialEq)]
enum NodeVal {
    None,
    Str(String),
    Other(String),
    /// A list literal, with its Python repr.
    List(String),
    Falsy,
}

impl NodeVal {
    fn truthy(&self) -> bool {
        !matches!(self, NodeVal::None | NodeVal::Falsy)
    }
    fn key(&self) -> Option<String> {
        match self {
            NodeVal::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// `node_to_value`; `Err` where the reference's own extraction raises (and skips the call).
fn node_to_value(e: &Expr) -> Result<NodeVal, ()> {
    Ok(match &e.kind {
        ExprKind::Const(c) => match c {
            Const::None => NodeVal::None,
            Const::Str(s) if s.is_empty() => NodeVal::Falsy,
            Const::Str(s) => NodeVal::Str(s.clone()),
            Const::Bool(false) | Const::Int(0) => NodeVal::Falsy,
            Const::Float(f) if *f == 0.0 => NodeVal::Falsy,
            Const::Bool(true) => NodeVal::Other("True".into()),
            Const::Int(i) => NodeVal::Other(i.to_string()),
            Const::Float(f) => NodeVal::Other(crate::value::float_repr(*f)),
        },
        ExprKind::Name(n) => NodeVal::Str(n.clone()),
        ExprKind::List(items) => {
            let repr = match items.first().map(|f| &f.kind) {
                None => "[]".to_string(),
                Some(ExprKind::Const(_)) => {
                    let mut vals = Vec::new();
                    for i in items {
                        let ExprKind::Const(c) = &i.kind else {
                            return Err(());
                        };
                        vals.push(match c {
                            Const::None => crate::value::Value::None,
                            Const::Bool(b) => crate::value::Value::Bool(*b),
                            Const::Int(v) => crate::value::Value::Int(*v),
                            Const::Float(f) => crate::value::Value::Float(*f),
                            Const::Str(s) => crate::value::Value::Str(s.clone()),
                        });
                    }
                    crate::value::Value::List(vals).py_repr()
                }
                Some(ExprKind::Name(_)) => {
                    let mut vals = Vec::new();
                    for i in items {
                        let ExprKind::Name(n) = &i.kind else {
                            return Err(());
                        };
                        vals.push(crate::value::Value::Str(n.clone()));
                    }
                    crate::value::Value::List(vals).py_repr()
                }
                Some(_) => "[]".to_string(),
            };
            NodeVal::List(repr)
        }
        ExprKind::Bin { left, right, .. } => {
            let l = node_to_value(left)?;
            if l.truthy() { l } else { node_to_value(right)? }
        }
        ExprKind::Unary { op, operand } if matches!(operand.kind, ExprKind::Const(_)) => {
            let ExprKind::Const(c) = &operand.kind else { unreachable!("guarded above") };
            if *op != crate::expr::UnOp::Neg {
                return node_to_value(operand);
            }
            // `operand.value * -1`, as the reference computes it.
            match c {
                Const::Int(0) | Const::Bool(false) | Const::Str(_) => NodeVal::Falsy,
                Const::Int(i) => NodeVal::Other((-i).to_string()),
                Const::Bool(true) => NodeVal::Other("-1".into()),
                Const::Float(f) if *f == 0.0 => NodeVal::Falsy,
                Const::Float(f) => NodeVal::Other(crate::value::float_repr(-f)),
                Const::None => return Err(()),
            }
        }
        _ => NodeVal::None,
    })
}

fn is_function_list_name(n: &str) -> bool {
    matches!(
        n,
        "columns"
            | "table"
            | "TABLE"
            | "error"
            | "custom_error"
            | "sql_and"
            | "defined"
            | "column"
            | "enumerate_with_last"
            | "split_to_array"
            | "day_diff"
            | "date_diff_in_days"
            | "date_diff_in_hours"
            | "date_diff_in_minutes"
            | "date_diff_in_seconds"
            | "sql_unescape"
            | "JSON"
    )
}

/// A node of the synthetic statement tree the reference parses (`for x in e: pass`, `a = b`, …).
enum Root<'a> {
    /// A `{{ }}` expression: the reference wraps it in `expression_wrapper(...)` first, so its top-level node
    /// has a call as parent.
    Output(&'a Expr),
    Expr(&'a Expr),
    Targets(Vec<(String, crate::expr::Span)>, &'a Expr),
}

/// `get_var_data` over one chunk: breadth-first, with the reference's rules.
fn var_data(root: Root<'_>) -> Result<Vec<VarType>, (String, usize)> {
    let mut vars: Vec<VarType> = Vec::new();
    let set = |vars: &mut Vec<VarType>, v: VarType, only_if_new: bool| {
        let pos = vars.iter().position(|x| x.name == v.name && x.name.is_some());
        match pos {
            Some(_) if only_if_new => {}
            Some(i) => vars[i] = v,
            None => vars.push(v),
        }
    };
    #[derive(Clone, Copy)]
    enum Parent {
        Stmt,
        Call,
        Other,
    }
    let mut queue: VecDeque<(&Expr, Parent)> = VecDeque::new();
    match root {
        Root::Output(e) => queue.push_back((e, Parent::Call)),
        Root::Expr(e) => queue.push_back((e, Parent::Stmt)),
        Root::Targets(names, e) => {
            for (n, _) in names {
                if !(funcs::is_reserved_var(&n) || is_function_list_name(&n)) {
                    set(
                        &mut vars,
                        VarType { name: Some(n), type_: "String".into(), default_is_none: true, used_in_call: false },
                        false,
                    );
                }
            }
            queue.push_back((e, Parent::Stmt));
        }
    }
    while let Some((node, parent)) = queue.pop_front() {
        match &node.kind {
            ExprKind::Call { func, args, kwargs } => {
                let plain_args: Vec<&Expr> = args.iter().filter(|a| !matches!(a.kind, ExprKind::Call { .. })).collect();
                let vals: Result<Vec<NodeVal>, ()> = plain_args.iter().map(|a| node_to_value(a)).collect();
                let kw_default: Result<Option<NodeVal>, ()> =
                    kwargs.iter().find(|(k, _)| k == "default").map(|(_, v)| node_to_value(v)).transpose();
                if let (ExprKind::Name(fname), Ok(vals), Ok(kw_default)) = (&func.kind, vals, kw_default) {
                    let typed_fn = crate::registry::template_function(fname).is_some_and(|f| f.custom)
                        || fname == "Array"
                        || is_parameter_type(fname);
                    if typed_fn && let Some(NodeVal::List(repr)) = vals.first() {
                        return Err((
                            format!("\"{repr}\" can not be used as a variable name"),
                            plain_args[0].span.start,
                        ));
                    }
                    if crate::registry::template_function(fname).is_some_and(|f| f.custom) {
                        if let Some(first) = vals.first()
                            && first.truthy()
                        {
                            set(
                                &mut vars,
                                VarType {
                                    name: first.key(),
                                    type_: "String".into(),
                                    default_is_none: true,
                                    used_in_call: true,
                                },
                                true,
                            );
                        }
                    } else if fname == "Array" {
                        let default = kw_default.unwrap_or_else(|| match vals.get(2) {
                            Some(v) if v.truthy() => v.clone(),
                            _ => NodeVal::None,
                        });
                        if let Some(first) = vals.first() {
                            let ty = match vals.get(1) {
                                Some(NodeVal::Str(s)) => format!("Array({s})"),
                                Some(NodeVal::Other(s)) => format!("Array({s})"),
                                Some(_) => "Array(None)".into(),
                                None => "Array(String)".into(),
                            };
                            set(
                                &mut vars,
                                VarType {
                                    name: first.key(),
                                    type_: ty,
                                    default_is_none: default == NodeVal::None,
                                    used_in_call: false,
                                },
                                false,
                            );
                        }
                    } else if is_parameter_type(fname)
                        && let Some(first) = vals.first()
                        && *first != NodeVal::None
                    {
                        let default = kw_default.unwrap_or_else(|| vals.get(1).cloned().unwrap_or(NodeVal::None));
                        set(
                            &mut vars,
                            VarType {
                                name: first.key(),
                                type_: fname.clone(),
                                default_is_none: default == NodeVal::None,
                                used_in_call: false,
                            },
                            false,
                        );
                    }
                }
                queue.push_back((func, Parent::Call));
                for a in args {
                    queue.push_back((a, Parent::Call));
                }
                for (_, v) in kwargs {
                    queue.push_back((v, Parent::Other));
                }
                continue;
            }
            ExprKind::Name(n) => {
                let reserved = funcs::is_reserved_var(n) || is_function_list_name(n);
                if !matches!(parent, Parent::Call) && !reserved {
                    set(
                        &mut vars,
                        VarType {
                            name: Some(n.clone()),
                            type_: "String".into(),
                            default_is_none: true,
                            used_in_call: false,
                        },
                        false,
                    );
                }
            }
            _ => {}
        }
        for c in node.children() {
            queue.push_back((c, Parent::Other));
        }
    }
    Ok(vars)
}

/// `get_var_names_and_types`; `Err` with the reference's ValueError for a list literal used as a variable.
pub(crate) fn var_types(nodes: &[Node]) -> Result<Vec<VarType>, (String, usize)> {
    let mut out = Vec::new();
    let mut typed: HashSet<String> = HashSet::new();
    var_types_into(nodes, &mut out, &mut typed)?;
    Ok(out)
}

fn statement_vars(root: Root<'_>, typed: &HashSet<String>, out: &mut Vec<VarType>) {
    // The reference swallows extraction errors in statements.
    for v in var_data(root).unwrap_or_default() {
        if let Some(n) = &v.name
            && !n.is_empty()
            && !typed.contains(n)
        {
            out.push(v);
        }
    }
}

fn var_types_into(nodes: &[Node], out: &mut Vec<VarType>, typed: &mut HashSet<String>) -> Result<(), (String, usize)> {
    for n in nodes {
        match n {
            Node::Text(_) | Node::Break | Node::Continue => {}
            Node::Expr { expr, .. } => {
                let data = var_data(Root::Output(expr))?;
                for v in &data {
                    if let Some(n) = &v.name {
                        typed.insert(n.clone());
                    }
                }
                out.extend(data);
            }
            Node::If { branches, orelse, .. } => {
                // Body first (with its elif conditions in place), then the if condition.
                for (i, (test, body)) in branches.iter().enumerate() {
                    if i > 0 {
                        statement_vars(Root::Expr(test), typed, out);
                    }
                    var_types_into(body, out, typed)?;
                }
                if let Some(o) = orelse {
                    var_types_into(o, out, typed)?;
                }
                if let Some((test, _)) = branches.first() {
                    statement_vars(Root::Expr(test), typed, out);
                }
            }
            Node::For { target, iter, body, orelse, .. } => {
                var_types_into(body, out, typed)?;
                if let Some(o) = orelse {
                    var_types_into(o, out, typed)?;
                }
                let mut names = Vec::new();
                target.names(&mut names);
                statement_vars(Root::Targets(names, iter), typed, out);
            }
            Node::While { test, body, orelse, .. } => {
                var_types_into(body, out, typed)?;
                if let Some(o) = orelse {
                    var_types_into(o, out, typed)?;
                }
                statement_vars(Root::Expr(test), typed, out);
            }
            Node::Try { body, handlers, orelse, finally, .. } => {
                var_types_into(body, out, typed)?;
                for h in handlers {
                    for c in &h.classes {
                        if !typed.contains(c) && !funcs::is_reserved_var(c) {
                            out.push(VarType {
                                name: Some(c.clone()),
                                type_: "String".into(),
                                default_is_none: true,
                                used_in_call: false,
                            });
                        }
                    }
                    var_types_into(&h.body, out, typed)?;
                }
                for o in [orelse, finally].into_iter().flatten() {
                    var_types_into(o, out, typed)?;
                }
            }
            Node::Set { target, chained, value, .. } => {
                let mut names = Vec::new();
                if let Some(t) = target {
                    t.names(&mut names);
                }
                chained.iter().for_each(|c| c.names(&mut names));
                statement_vars(Root::Targets(names, value), typed, out);
            }
        }
    }
    Ok(())
}

/// Whether the reference renderer lists `name` among its parameter types.
fn is_parameter_type(name: &str) -> bool {
    crate::registry::param_function(name).is_some_and(|f| f.reference_parameter_type)
}
