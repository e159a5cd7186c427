//! The Python expression subset used inside `{{ }}` and `{% %}`: tokenizer, parser and AST.
//!
//! The reference hands these snippets to CPython's own parser, so this module follows Python's grammar and
//! operator precedence for everything the template language can use, and rejects the rest (lambdas,
//! comprehensions, f-strings, ...) with a clear error instead of guessing.

use std::fmt::Write as _;

/// Maximum nesting depth of one expression (brackets, calls, operators). Python's own parser stops near 200.
pub(crate) const MAX_EXPR_DEPTH: usize = 100;

/// A byte range inside the template body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Const {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    MatMul,
    BitOr,
    BitAnd,
    BitXor,
    LShift,
    RShift,
}

impl BinOp {
    fn ast_name(self) -> &'static str {
        match self {
            BinOp::Add => "Add",
            BinOp::Sub => "Sub",
            BinOp::Mul => "Mult",
            BinOp::Div => "Div",
            BinOp::FloorDiv => "FloorDiv",
            BinOp::Mod => "Mod",
            BinOp::Pow => "Pow",
            BinOp::MatMul => "MatMult",
            BinOp::BitOr => "BitOr",
            BinOp::BitAnd => "BitAnd",
            BinOp::BitXor => "BitXor",
            BinOp::LShift => "LShift",
            BinOp::RShift => "RShift",
        }
    }
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "** or pow()",
            BinOp::MatMul => "@",
            BinOp::BitOr => "|",
            BinOp::BitAnd => "&",
            BinOp::BitXor => "^",
            BinOp::LShift => "<<",
            BinOp::RShift => ">>",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnOp {
    Neg,
    Pos,
    Not,
    Invert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtE,
    Gt,
    GtE,
    In,
    NotIn,
    Is,
    IsNot,
}

impl CmpOp {
    fn ast_name(self) -> &'static str {
        match self {
            CmpOp::Eq => "Eq",
            CmpOp::NotEq => "NotEq",
            CmpOp::Lt => "Lt",
            CmpOp::LtE => "LtE",
            CmpOp::Gt => "Gt",
            CmpOp::GtE => "GtE",
            CmpOp::In => "In",
            CmpOp::NotIn => "NotIn",
            CmpOp::Is => "Is",
            CmpOp::IsNot => "IsNot",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExprKind {
    Name(String),
    Const(Const),
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Set(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    Call { func: Box<Expr>, args: Vec<Expr>, kwargs: Vec<(String, Expr)> },
    Attr { value: Box<Expr>, attr: String },
    Subscript { value: Box<Expr>, index: Box<Expr> },
    Slice { lower: Option<Box<Expr>>, upper: Option<Box<Expr>>, step: Option<Box<Expr>> },
    Unary { op: UnOp, operand: Box<Expr> },
    Bin { op: BinOp, left: Box<Expr>, right: Box<Expr> },
    BoolOp { and: bool, values: Vec<Expr> },
    Compare { left: Box<Expr>, ops: Vec<(CmpOp, Expr)> },
    IfExp { test: Box<Expr>, body: Box<Expr>, orelse: Box<Expr> },
}

impl Expr {
    /// Python's `ast.dump()` of this node, used verbatim in the reference's security error messages.
    pub(crate) fn dump(&self) -> String {
        let mut out = String::new();
        self.dump_into(&mut out);
        out
    }

    fn dump_list(items: &[Expr], out: &mut String) {
        out.push('[');
        for (i, e) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            e.dump_into(out);
        }
        out.push(']');
    }

    fn dump_into(&self, out: &mut String) {
        match &self.kind {
            ExprKind::Name(n) => {
                let _ = write!(out, "Name(id='{n}', ctx=Load())");
            }
            ExprKind::Const(c) => {
                out.push_str("Constant(value=");
                match c {
                    Const::None => out.push_str("None"),
                    Const::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
                    Const::Int(i) => {
                        let _ = write!(out, "{i}");
                    }
                    Const::Float(f) => out.push_str(&crate::value::float_repr(*f)),
                    Const::Str(s) => out.push_str(&crate::value::str_repr(s)),
                }
                out.push(')');
            }
            ExprKind::List(items) => {
                out.push_str("List(elts=");
                Self::dump_list(items, out);
                out.push_str(", ctx=Load())");
            }
            ExprKind::Tuple(items) => {
                out.push_str("Tuple(elts=");
                Self::dump_list(items, out);
                out.push_str(", ctx=Load())");
            }
            ExprKind::Set(items) => {
                out.push_str("Set(elts=");
                Self::dump_list(items, out);
                out.push(')');
            }
            ExprKind::Dict(pairs) => {
                out.push_str("Dict(keys=[");
                for (i, (k, _)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.dump_into(out);
                }
                out.push_str("], values=[");
                for (i, (_, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.dump_into(out);
                }
                out.push_str("])");
            }
            ExprKind::Call { func, args, kwargs } => {
                out.push_str("Call(func=");
                func.dump_into(out);
                out.push_str(", args=");
                Self::dump_list(args, out);
                out.push_str(", keywords=[");
                for (i, (k, v)) in kwargs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "keyword(arg='{k}', value=");
                    v.dump_into(out);
                    out.push(')');
                }
                out.push_str("])");
            }
            ExprKind::Attr { value, attr } => {
                out.push_str("Attribute(value=");
                value.dump_into(out);
                let _ = write!(out, ", attr='{attr}', ctx=Load())");
            }
            ExprKind::Subscript { value, index } => {
                out.push_str("Subscript(value=");
                value.dump_into(out);
                out.push_str(", slice=");
                index.dump_into(out);
                out.push_str(", ctx=Load())");
            }
            ExprKind::Slice { lower, upper, step } => {
                out.push_str("Slice(");
                let mut first = true;
                for (name, part) in [("lower", lower), ("upper", upper), ("step", step)] {
                    if let Some(p) = part {
                        if !first {
                            out.push_str(", ");
                        }
                        first = false;
                        let _ = write!(out, "{name}=");
                        p.dump_into(out);
                    }
                }
                out.push(')');
            }
            ExprKind::Unary { op, operand } => {
                let name = match op {
                    UnOp::Neg => "USub",
                    UnOp::Pos => "UAdd",
                    UnOp::Not => "Not",
                    UnOp::Invert => "Invert",
                };
                let _ = write!(out, "UnaryOp(op={name}(), operand=");
                operand.dump_into(out);
                out.push(')');
            }
            ExprKind::Bin { op, left, right } => {
                out.push_str("BinOp(left=");
                left.dump_into(out);
                let _ = write!(out, ", op={}(), right=", op.ast_name());
                right.dump_into(out);
                out.push(')');
            }
            ExprKind::BoolOp { and, values } => {
                let _ = write!(out, "BoolOp(op={}(), values=", if *and { "And" } else { "Or" });
                Self::dump_list(values, out);
                out.push(')');
            }
            ExprKind::Compare { left, ops } => {
                out.push_str("Compare(left=");
                left.dump_into(out);
                out.push_str(", ops=[");
                for (i, (op, _)) in ops.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{}()", op.ast_name());
                }
                out.push_str("], comparators=[");
                for (i, (_, e)) in ops.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    e.dump_into(out);
                }
                out.push_str("])");
            }
            ExprKind::IfExp { test, body, orelse } => {
                out.push_str("IfExp(test=");
                test.dump_into(out);
                out.push_str(", body=");
                body.dump_into(out);
                out.push_str(", orelse=");
                orelse.dump_into(out);
                out.push(')');
            }
        }
    }

    /// Visit this node and its children in Python's `ast.walk`/`iter_child_nodes` field order.
    pub(crate) fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            ExprKind::Name(_) | ExprKind::Const(_) => vec![],
            ExprKind::List(v) | ExprKind::Tuple(v) | ExprKind::Set(v) => v.iter().collect(),
            ExprKind::Dict(pairs) => pairs.iter().map(|(k, _)| k).chain(pairs.iter().map(|(_, v)| v)).collect(),
            ExprKind::Call { func, args, kwargs } => {
                let mut v: Vec<&Expr> = vec![func];
                v.extend(args.iter());
                v.extend(kwargs.iter().map(|(_, e)| e));
                v
            }
            ExprKind::Attr { value, .. } => vec![value],
            ExprKind::Subscript { value, index } => vec![value, index],
            ExprKind::Slice { lower, upper, step } => {
                [lower, upper, step].into_iter().flatten().map(|b| &**b).collect()
            }
            ExprKind::Unary { operand, .. } => vec![operand],
            ExprKind::Bin { left, right, .. } => vec![left, right],
            ExprKind::BoolOp { values, .. } => values.iter().collect(),
            ExprKind::Compare { left, ops } => {
                let mut v: Vec<&Expr> = vec![left];
                v.extend(ops.iter().map(|(_, e)| e));
                v
            }
            ExprKind::IfExp { test, body, orelse } => vec![test, body, orelse],
        }
    }
}

/// A syntax error inside an expression, with the byte offset (in the template body) where it was found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub message: String,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Int(i128),
    Float(f64),
    Str(String),
    Op(&'static str),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

const OPS: [&str; 40] = [
    "**=", "//=", ">>=", "<<=", "...", "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "->", "+=", "-=", "*=", "/=",
    "%=", ":=", "(", ")", "[", "]", "{", "}", ",", ":", ".", ";", "+", "-", "*", "/", "%", "<", ">", "=", "|", "&",
];
const OPS2: [&str; 3] = ["^", "~", "@"];

fn tokenize(src: &str, base: usize) -> Result<Vec<Token>, SyntaxError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |msg: String, at: usize| SyntaxError { message: msg, offset: base + at };
    while i < bytes.len() {
        let c = bytes[i];
        if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' || c == b'\x0c' {
            i += 1;
            continue;
        }
        if c == b'\\' && matches!(bytes.get(i + 1), Some(b'\n')) {
            i += 2;
            continue;
        }
        if c == b'#' {
            // A comment runs to the end of the line.
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        // String literals, with optional prefixes.
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let mut j = i;
            while j < bytes.len() {
                let ch = src[j..].chars().next().unwrap_or(' ');
                if ch.is_alphanumeric() || ch == '_' {
                    j += ch.len_utf8();
                } else {
                    break;
                }
            }
            let word = &src[i..j];
            if j < bytes.len() && (bytes[j] == b'\'' || bytes[j] == b'"') && word.len() <= 2 {
                let lower = word.to_ascii_lowercase();
                if matches!(lower.as_str(), "r" | "u" | "b" | "br" | "rb" | "f" | "fr" | "rf") {
                    if lower.contains('f') {
                        return Err(err("f-strings are not supported in templates".into(), start));
                    }
                    if lower.contains('b') {
                        return Err(err("bytes literals are not supported in templates".into(), start));
                    }
                    let (s, next) = lex_string(src, j, lower.contains('r')).map_err(|(m, at)| err(m, at))?;
                    out.push(Token { tok: Tok::Str(s), start, end: next });
                    i = next;
                    continue;
                }
            }
            if word.is_empty() {
                return Err(err(format!("invalid character '{}'", &src[i..].chars().next().unwrap_or('?')), i));
            }
            out.push(Token { tok: Tok::Name(word.to_string()), start, end: j });
            i = j;
            continue;
        }
        if c == b'\'' || c == b'"' {
            let (s, next) = lex_string(src, i, false).map_err(|(m, at)| err(m, at))?;
            out.push(Token { tok: Tok::Str(s), start, end: next });
            i = next;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (tok, next) = lex_number(src, i).map_err(|(m, at)| err(m, at))?;
            out.push(Token { tok, start, end: next });
            i = next;
            continue;
        }
        let rest = &src[i..];
        if let Some(op) = OPS.iter().chain(OPS2.iter()).find(|op| rest.starts_with(**op)) {
            out.push(Token { tok: Tok::Op(op), start, end: i + op.len() });
            i += op.len();
            continue;
        }
        let ch = rest.chars().next().unwrap_or('?');
        return Err(err(format!("invalid character '{ch}' (U+{:04X})", ch as u32), i));
    }
    out.push(Token { tok: Tok::End, start: src.len(), end: src.len() });
    for t in &mut out {
        t.start += base;
        t.end += base;
    }
    Ok(out)
}

fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), (String, usize)> {
    let bytes = src.as_bytes();
    let mut i = start;
    if bytes[i] == b'0' && matches!(bytes.get(i + 1), Some(b'x' | b'X' | b'o' | b'O' | b'b' | b'B')) {
        let radix = match bytes[i + 1] {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            _ => 2,
        };
        i += 2;
        let ds = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        let digits: String = src[ds..i].chars().filter(|c| *c != '_').collect();
        let v = i128::from_str_radix(&digits, radix).map_err(|_| ("invalid number literal".to_string(), start))?;
        return Ok((Tok::Int(v), i));
    }
    let mut is_float = false;
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b'.' {
        is_float = true;
        i += 1;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
            i += 1;
        }
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            is_float = true;
            i = j;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                i += 1;
            }
        }
    }
    if i < bytes.len() && (bytes[i] == b'j' || bytes[i] == b'J') {
        return Err(("complex numbers are not supported in templates".into(), start));
    }
    if i < bytes.len() && (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') {
        return Err(("invalid decimal literal".into(), start));
    }
    let text: String = src[start..i].chars().filter(|c| *c != '_').collect();
    if is_float {
        let v: f64 = text.parse().map_err(|_| ("invalid float literal".to_string(), start))?;
        Ok((Tok::Float(v), i))
    } else {
        if text.len() > 1 && text.starts_with('0') && text.bytes().any(|b| b != b'0') {
            return Err((
                "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers"
                    .into(),
                start,
            ));
        }
        let v: i128 = text.parse().map_err(|_| ("integer literal too large".to_string(), start))?;
        Ok((Tok::Int(v), i))
    }
}

pub(crate) fn lex_string(src: &str, start: usize, raw: bool) -> Result<(String, usize), (String, usize)> {
    let bytes = src.as_bytes();
    let q = bytes[start];
    let triple = bytes.get(start + 1) == Some(&q) && bytes.get(start + 2) == Some(&q);
    let mut i = if triple { start + 3 } else { start + 1 };
    let mut out = String::new();
    loop {
        if i >= bytes.len() {
            return Err(("unterminated string literal".into(), start));
        }
        let c = bytes[i];
        if c == q && (!triple || (bytes.get(i + 1) == Some(&q) && bytes.get(i + 2) == Some(&q))) {
            i += if triple { 3 } else { 1 };
            return Ok((out, i));
        }
        if c == b'\n' && !triple {
            return Err(("unterminated string literal".into(), start));
        }
        if c == b'\\' {
            let Some(&n) = bytes.get(i + 1) else {
                return Err(("unterminated string literal".into(), start));
            };
            if raw {
                out.push('\\');
                let ch = src[i + 1..].chars().next().unwrap_or('\\');
                out.push(ch);
                i += 1 + ch.len_utf8();
                continue;
            }
            i += 2;
            match n {
                b'\n' => {}
                b'\\' => out.push('\\'),
                b'\'' => out.push('\''),
                b'"' => out.push('"'),
                b'a' => out.push('\x07'),
                b'b' => out.push('\x08'),
                b'f' => out.push('\x0c'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'v' => out.push('\x0b'),
                b'0'..=b'7' => {
                    let mut v = u32::from(n - b'0');
                    let mut k = 0;
                    while k < 2 && i < bytes.len() && (b'0'..=b'7').contains(&bytes[i]) {
                        v = v * 8 + u32::from(bytes[i] - b'0');
                        i += 1;
                        k += 1;
                    }
                    out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                }
                b'x' | b'u' | b'U' => {
                    let len = match n {
                        b'x' => 2,
                        b'u' => 4,
                        _ => 8,
                    };
                    let hex = src.get(i..i + len).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
                    let Some(hex) = hex else {
                        return Err(("truncated \\xXX escape".into(), i - 2));
                    };
                    let v = u32::from_str_radix(hex, 16).unwrap_or(0xfffd);
                    let Some(ch) = char::from_u32(v) else {
                        return Err(("illegal Unicode character".into(), i - 2));
                    };
                    out.push(ch);
                    i += len;
                }
                _ => {
                    // Unknown escapes keep their backslash, as in Python.
                    out.push('\\');
                    let ch = src[i - 1..].chars().next().unwrap_or('\\');
                    out.push(ch);
                    i += ch.len_utf8() - 1;
                }
            }
            continue;
        }
        let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
}

const KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

pub(crate) fn is_keyword(s: &str) -> bool {
    KEYWORDS.contains(&s)
}

/// Positional and keyword arguments of a call.
type CallArgs = (Vec<Expr>, Vec<(String, Expr)>);

pub(crate) struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    pub(crate) fn new(src: &str, base: usize) -> Result<Parser, SyntaxError> {
        Ok(Parser { toks: tokenize(src, base)?, pos: 0, depth: 0 })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }
    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }
    fn start(&self) -> usize {
        self.toks[self.pos].start
    }
    fn prev_end(&self) -> usize {
        if self.pos == 0 { self.toks[0].start } else { self.toks[self.pos - 1].end }
    }
    fn bump(&mut self) -> Tok {
        let t = self.toks[self.pos].tok.clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Name(n) if n == kw)
    }
    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }
    pub(crate) fn at_end(&self) -> bool {
        matches!(self.peek(), Tok::End)
    }
    fn error<T>(&self, msg: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError { message: msg.into(), offset: self.start() })
    }
    fn unexpected<T>(&self) -> Result<T, SyntaxError> {
        let what = match self.peek() {
            Tok::End => "unexpected end of expression".to_string(),
            Tok::Name(n) => format!("invalid syntax: unexpected `{n}`"),
            Tok::Op(o) => format!("invalid syntax: unexpected `{o}`"),
            Tok::Int(_) | Tok::Float(_) => "invalid syntax: unexpected number".to_string(),
            Tok::Str(_) => "invalid syntax: unexpected string".to_string(),
        };
        self.error(what)
    }
    pub(crate) fn expect_op(&mut self, op: &str) -> Result<(), SyntaxError> {
        if self.eat_op(op) { Ok(()) } else { self.error(format!("invalid syntax: expected `{op}`")) }
    }
    pub(crate) fn expect_kw(&mut self, kw: &str) -> Result<(), SyntaxError> {
        if self.eat_kw(kw) { Ok(()) } else { self.error(format!("invalid syntax: expected `{kw}`")) }
    }
    pub(crate) fn expect_end(&self) -> Result<(), SyntaxError> {
        if self.at_end() { Ok(()) } else { self.unexpected() }
    }
    /// An identifier (not a keyword), with its span.
    pub(crate) fn name(&mut self) -> Result<(String, Span), SyntaxError> {
        let start = self.start();
        match self.peek().clone() {
            Tok::Name(n) if !is_keyword(&n) => {
                self.bump();
                Ok((n, Span { start, end: self.prev_end() }))
            }
            _ => self.error("invalid syntax: expected a name"),
        }
    }
    pub(crate) fn position(&self) -> usize {
        self.pos
    }
    pub(crate) fn rewind(&mut self, pos: usize) {
        self.pos = pos;
    }
    pub(crate) fn peek_is_op(&self, op: &str) -> bool {
        self.is_op(op)
    }
    pub(crate) fn peek_op_at(&self, n: usize) -> Option<&'static str> {
        match self.peek_at(n) {
            Tok::Op(o) => Some(o),
            _ => None,
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return self.error(format!("expression nested too deeply (more than {MAX_EXPR_DEPTH} levels)"));
        }
        Ok(())
    }

    fn mk(kind: ExprKind, start: usize, end: usize) -> Expr {
        Expr { kind, span: Span { start, end } }
    }

    /// `a, b` → a tuple; a single expression otherwise. What `{{ }}` and `set x = ...` accept.
    pub(crate) fn parse_tuple_or_expr(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let first = self.parse_expr()?;
        if !self.is_op(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_op(",") {
            if self.at_end() || self.is_op(")") || self.is_op("=") || self.is_op(":") {
                break;
            }
            items.push(self.parse_expr()?);
        }
        Ok(Self::mk(ExprKind::Tuple(items), start, self.prev_end()))
    }

    /// One expression (Python's `test` production: a conditional expression).
    pub(crate) fn parse_expr(&mut self) -> Result<Expr, SyntaxError> {
        self.enter()?;
        let r = self.parse_ifexp();
        self.depth -= 1;
        r
    }

    fn parse_ifexp(&mut self) -> Result<Expr, SyntaxError> {
        if self.is_kw("lambda") {
            return self.error("lambda expressions are not supported in templates");
        }
        if self.is_kw("yield") || self.is_kw("await") {
            return self.error("yield and await are not supported in templates");
        }
        let start = self.start();
        let body = self.parse_or()?;
        if self.is_op(":=") {
            return self.error("assignment expressions (:=) are not supported in templates");
        }
        if self.eat_kw("if") {
            let test = self.parse_or()?;
            self.expect_kw("else")?;
            let orelse = self.parse_expr()?;
            return Ok(Self::mk(
                ExprKind::IfExp { test: Box::new(test), body: Box::new(body), orelse: Box::new(orelse) },
                start,
                self.prev_end(),
            ));
        }
        Ok(body)
    }

    fn parse_or(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let first = self.parse_and()?;
        if !self.is_kw("or") {
            return Ok(first);
        }
        let mut values = vec![first];
        while self.eat_kw("or") {
            values.push(self.parse_and()?);
        }
        Ok(Self::mk(ExprKind::BoolOp { and: false, values }, start, self.prev_end()))
    }

    fn parse_and(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let first = self.parse_not()?;
        if !self.is_kw("and") {
            return Ok(first);
        }
        let mut values = vec![first];
        while self.eat_kw("and") {
            values.push(self.parse_not()?);
        }
        Ok(Self::mk(ExprKind::BoolOp { and: true, values }, start, self.prev_end()))
    }

    fn parse_not(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        if self.eat_kw("not") {
            self.enter()?;
            let operand = self.parse_not();
            self.depth -= 1;
            return Ok(Self::mk(
                ExprKind::Unary { op: UnOp::Not, operand: Box::new(operand?) },
                start,
                self.prev_end(),
            ));
        }
        self.parse_comparison()
    }

    fn cmp_op(&mut self) -> Option<CmpOp> {
        let op = match self.peek() {
            Tok::Op("==") => CmpOp::Eq,
            Tok::Op("!=") => CmpOp::NotEq,
            Tok::Op("<") => CmpOp::Lt,
            Tok::Op("<=") => CmpOp::LtE,
            Tok::Op(">") => CmpOp::Gt,
            Tok::Op(">=") => CmpOp::GtE,
            Tok::Name(n) if n == "in" => CmpOp::In,
            Tok::Name(n) if n == "not" && matches!(self.peek_at(1), Tok::Name(m) if m == "in") => {
                self.bump();
                CmpOp::NotIn
            }
            Tok::Name(n) if n == "is" => {
                if matches!(self.peek_at(1), Tok::Name(m) if m == "not") {
                    self.bump();
                    CmpOp::IsNot
                } else {
                    CmpOp::Is
                }
            }
            _ => return None,
        };
        self.bump();
        Some(op)
    }

    fn parse_comparison(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let left = self.parse_bitor()?;
        let mut ops = Vec::new();
        while let Some(op) = self.cmp_op() {
            ops.push((op, self.parse_bitor()?));
        }
        if ops.is_empty() {
            return Ok(left);
        }
        Ok(Self::mk(ExprKind::Compare { left: Box::new(left), ops }, start, self.prev_end()))
    }

    fn parse_binary_level(
        &mut self,
        table: &[(&str, BinOp)],
        next: fn(&mut Self) -> Result<Expr, SyntaxError>,
    ) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let mut left = next(self)?;
        // A left-associative chain nests one level per operator: count them all against the depth limit.
        let mut added = 0;
        'outer: loop {
            for (sym, op) in table {
                if self.is_op(sym) {
                    self.bump();
                    added += 1;
                    if let Err(e) = self.enter() {
                        self.depth -= added - 1;
                        return Err(e);
                    }
                    let right = next(self);
                    left = Self::mk(
                        ExprKind::Bin { op: *op, left: Box::new(left), right: Box::new(right?) },
                        start,
                        self.prev_end(),
                    );
                    continue 'outer;
                }
            }
            self.depth -= added;
            return Ok(left);
        }
    }

    fn parse_bitor(&mut self) -> Result<Expr, SyntaxError> {
        self.parse_binary_level(&[("|", BinOp::BitOr)], Self::parse_bitxor)
    }
    fn parse_bitxor(&mut self) -> Result<Expr, SyntaxError> {
        self.parse_binary_level(&[("^", BinOp::BitXor)], Self::parse_bitand)
    }
    fn parse_bitand(&mut self) -> Result<Expr, SyntaxError> {
        self.parse_binary_level(&[("&", BinOp::BitAnd)], Self::parse_shift)
    }
    fn parse_shift(&mut self) -> Result<Expr, SyntaxError> {
        self.parse_binary_level(&[("<<", BinOp::LShift), (">>", BinOp::RShift)], Self::parse_arith)
    }
    fn parse_arith(&mut self) -> Result<Expr, SyntaxError> {
        self.parse_binary_level(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::parse_term)
    }
    fn parse_term(&mut self) -> Result<Expr, SyntaxError> {
        self.parse_binary_level(
            &[("*", BinOp::Mul), ("//", BinOp::FloorDiv), ("/", BinOp::Div), ("%", BinOp::Mod), ("@", BinOp::MatMul)],
            Self::parse_factor,
        )
    }

    fn parse_factor(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let op = match self.peek() {
            Tok::Op("-") => Some(UnOp::Neg),
            Tok::Op("+") => Some(UnOp::Pos),
            Tok::Op("~") => Some(UnOp::Invert),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            self.enter()?;
            let operand = self.parse_factor();
            self.depth -= 1;
            return Ok(Self::mk(ExprKind::Unary { op, operand: Box::new(operand?) }, start, self.prev_end()));
        }
        self.parse_power()
    }

    fn parse_power(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let base = self.parse_postfix()?;
        if self.eat_op("**") {
            self.enter()?;
            let exp = self.parse_factor();
            self.depth -= 1;
            return Ok(Self::mk(
                ExprKind::Bin { op: BinOp::Pow, left: Box::new(base), right: Box::new(exp?) },
                start,
                self.prev_end(),
            ));
        }
        Ok(base)
    }

    fn parse_postfix(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let mut e = self.parse_atom()?;
        let mut levels = 0;
        loop {
            if self.eat_op("(") {
                levels += 1;
                self.enter()?;
                let (args, kwargs) = self.parse_call_args()?;
                e = Self::mk(ExprKind::Call { func: Box::new(e), args, kwargs }, start, self.prev_end());
            } else if self.eat_op("[") {
                levels += 1;
                self.enter()?;
                let index = self.parse_subscript()?;
                self.expect_op("]")?;
                e = Self::mk(
                    ExprKind::Subscript { value: Box::new(e), index: Box::new(index) },
                    start,
                    self.prev_end(),
                );
            } else if self.eat_op(".") {
                levels += 1;
                self.enter()?;
                let (attr, _) = match self.peek().clone() {
                    Tok::Name(n) => {
                        self.bump();
                        (n, ())
                    }
                    _ => return self.error("invalid syntax: expected an attribute name after `.`"),
                };
                e = Self::mk(ExprKind::Attr { value: Box::new(e), attr }, start, self.prev_end());
            } else {
                break;
            }
        }
        self.depth -= levels;
        Ok(e)
    }

    fn parse_call_args(&mut self) -> Result<CallArgs, SyntaxError> {
        let mut args = Vec::new();
        let mut kwargs: Vec<(String, Expr)> = Vec::new();
        while !self.eat_op(")") {
            if self.is_op("*") || self.is_op("**") {
                return self.error("argument unpacking (* and **) is not supported in templates");
            }
            let is_kw =
                matches!(self.peek(), Tok::Name(n) if !is_keyword(n)) && matches!(self.peek_at(1), Tok::Op("="));
            if is_kw {
                let Tok::Name(k) = self.bump() else { unreachable!("checked above") };
                self.bump();
                if kwargs.iter().any(|(n, _)| *n == k) {
                    return self.error(format!("keyword argument repeated: {k}"));
                }
                kwargs.push((k, self.parse_expr()?));
            } else {
                if !kwargs.is_empty() {
                    return self.error("positional argument follows keyword argument");
                }
                let a = self.parse_expr()?;
                if self.is_kw("for") {
                    return self.error("generator expressions are not supported in templates");
                }
                args.push(a);
            }
            if !self.eat_op(",") {
                self.expect_op(")")?;
                break;
            }
        }
        Ok((args, kwargs))
    }

    fn parse_subscript(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let lower = if self.is_op(":") { None } else { Some(Box::new(self.parse_expr()?)) };
        if !self.is_op(":") {
            let Some(lower) = lower else {
                return self.unexpected();
            };
            if self.is_op(",") {
                return self.error("tuple subscripts are not supported in templates");
            }
            return Ok(*lower);
        }
        self.bump();
        let upper = if self.is_op(":") || self.is_op("]") { None } else { Some(Box::new(self.parse_expr()?)) };
        let step = if self.eat_op(":") {
            if self.is_op("]") { None } else { Some(Box::new(self.parse_expr()?)) }
        } else {
            None
        };
        Ok(Self::mk(ExprKind::Slice { lower, upper, step }, start, self.prev_end()))
    }

    fn parse_atom(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.start();
        let tok = self.peek().clone();
        match tok {
            Tok::Int(v) => {
                self.bump();
                Ok(Self::mk(ExprKind::Const(Const::Int(v)), start, self.prev_end()))
            }
            Tok::Float(v) => {
                self.bump();
                Ok(Self::mk(ExprKind::Const(Const::Float(v)), start, self.prev_end()))
            }
            Tok::Str(s) => {
                self.bump();
                let mut s = s;
                // Adjacent literals concatenate, as in Python.
                while let Tok::Str(more) = self.peek().clone() {
                    self.bump();
                    s.push_str(&more);
                }
                Ok(Self::mk(ExprKind::Const(Const::Str(s)), start, self.prev_end()))
            }
            Tok::Name(n) => {
                let c = match n.as_str() {
                    "None" => Some(Const::None),
                    "True" => Some(Const::Bool(true)),
                    "False" => Some(Const::Bool(false)),
                    _ => None,
                };
                if let Some(c) = c {
                    self.bump();
                    return Ok(Self::mk(ExprKind::Const(c), start, self.prev_end()));
                }
                if is_keyword(&n) {
                    return self.unexpected();
                }
                self.bump();
                Ok(Self::mk(ExprKind::Name(n), start, self.prev_end()))
            }
            Tok::Op("(") => {
                self.bump();
                self.enter()?;
                if self.eat_op(")") {
                    self.depth -= 1;
                    return Ok(Self::mk(ExprKind::Tuple(vec![]), start, self.prev_end()));
                }
                let first = self.parse_expr()?;
                if self.is_kw("for") {
                    return self.error("generator expressions are not supported in templates");
                }
                let e = if self.is_op(",") {
                    let mut items = vec![first];
                    while self.eat_op(",") {
                        if self.is_op(")") {
                            break;
                        }
                        items.push(self.parse_expr()?);
                    }
                    self.expect_op(")")?;
                    Self::mk(ExprKind::Tuple(items), start, self.prev_end())
                } else {
                    self.expect_op(")")?;
                    // Parentheses only group: keep the inner node (and its span), like Python's AST.
                    first
                };
                self.depth -= 1;
                Ok(e)
            }
            Tok::Op("[") => {
                self.bump();
                self.enter()?;
                let items = self.parse_seq("]")?;
                self.depth -= 1;
                Ok(Self::mk(ExprKind::List(items), start, self.prev_end()))
            }
            Tok::Op("{") => {
                self.bump();
                self.enter()?;
                let e = self.parse_brace(start)?;
                self.depth -= 1;
                Ok(e)
            }
            Tok::Op("...") => self.error("Ellipsis is not supported in templates"),
            _ => self.unexpected(),
        }
    }

    fn parse_seq(&mut self, close: &str) -> Result<Vec<Expr>, SyntaxError> {
        let mut items = Vec::new();
        while !self.eat_op(close) {
            if self.is_op("*") {
                return self.error("unpacking (*) is not supported in templates");
            }
            items.push(self.parse_expr()?);
            if self.is_kw("for") {
                return self.error("comprehensions are not supported in templates");
            }
            if !self.eat_op(",") {
                self.expect_op(close)?;
                break;
            }
        }
        Ok(items)
    }

    fn parse_brace(&mut self, start: usize) -> Result<Expr, SyntaxError> {
        if self.eat_op("}") {
            return Ok(Self::mk(ExprKind::Dict(vec![]), start, self.prev_end()));
        }
        if self.is_op("**") {
            return self.error("dict unpacking (**) is not supported in templates");
        }
        let first = self.parse_expr()?;
        if self.eat_op(":") {
            let v = self.parse_expr()?;
            if self.is_kw("for") {
                return self.error("comprehensions are not supported in templates");
            }
            let mut pairs = vec![(first, v)];
            while self.eat_op(",") {
                if self.is_op("}") {
                    break;
                }
                let k = self.parse_expr()?;
                self.expect_op(":")?;
                let v = self.parse_expr()?;
                pairs.push((k, v));
            }
            self.expect_op("}")?;
            return Ok(Self::mk(ExprKind::Dict(pairs), start, self.prev_end()));
        }
        if self.is_kw("for") {
            return self.error("comprehensions are not supported in templates");
        }
        let mut items = vec![first];
        while self.eat_op(",") {
            if self.is_op("}") {
                break;
            }
            items.push(self.parse_expr()?);
        }
        self.expect_op("}")?;
        Ok(Self::mk(ExprKind::Set(items), start, self.prev_end()))
    }
}

/// Parse a whole expression (what `{{ }}` holds).
pub(crate) fn parse_expression(src: &str, base: usize) -> Result<Expr, SyntaxError> {
    let mut p = Parser::new(src, base)?;
    let e = p.parse_tuple_or_expr()?;
    p.expect_end()?;
    Ok(e)
}
