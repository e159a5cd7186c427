//! The template reader: Tornado's `_parse` with Tinybird's restrictions, producing a tree of nodes.

use crate::check;
use crate::error::{TemplateError, TemplateErrorKind};
use crate::expr::{BinOp, Expr, Parser, Span, SyntaxError, parse_expression};

/// Largest template body accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of `{% if/for/while/try %}` blocks accepted.
pub const MAX_BLOCK_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whitespace {
    All,
    Single,
    Oneline,
}

/// An assignment target: a name, or a (possibly nested) tuple of names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    Name(String, Span),
    Tuple(Vec<Target>),
}

impl Target {
    pub(crate) fn names(&self, out: &mut Vec<(String, Span)>) {
        match self {
            Target::Name(n, s) => out.push((n.clone(), *s)),
            Target::Tuple(items) => items.iter().for_each(|t| t.names(out)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Handler {
    /// Exception class names matched (empty: a bare `except`).
    pub classes: Vec<String>,
    pub bind: Option<String>,
    pub body: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Expr {
        expr: Expr,
        src: String,
        line: usize,
    },
    /// `branch_lines[i]` is the line of branch i's tag (`if`, then each `elif`).
    If {
        branches: Vec<(Expr, Vec<Node>)>,
        orelse: Option<Vec<Node>>,
        line: usize,
        branch_lines: Vec<usize>,
    },
    For {
        target: Target,
        iter: Expr,
        body: Vec<Node>,
        orelse: Option<Vec<Node>>,
        line: usize,
    },
    While {
        test: Expr,
        body: Vec<Node>,
        orelse: Option<Vec<Node>>,
        line: usize,
    },
    Try {
        body: Vec<Node>,
        handlers: Vec<Handler>,
        orelse: Option<Vec<Node>>,
        finally: Option<Vec<Node>>,
        line: usize,
    },
    /// `{% set %}`: `target = value`, `target op= value`, or a bare expression statement (target None).
    Set {
        target: Option<Target>,
        chained: Vec<Target>,
        aug: Option<BinOp>,
        value: Expr,
        line: usize,
    },
    Break,
    Continue,
}

/// A chunk as Tornado's reader produces it, before intermediate tags are folded into their blocks.
enum Chunk {
    Node(Node),
    Intermediate { op: &'static str, statement: String, offset: usize, line: usize },
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    whitespace: Whitespace,
}

impl Reader<'_> {
    fn find(&self, needle: &str, from: usize) -> Option<usize> {
        self.text.get(self.pos + from..).and_then(|t| t.find(needle)).map(|i| i + from)
    }
    fn consume(&mut self, count: usize) -> &str {
        let end = (self.pos + count).min(self.text.len());
        let s = &self.text[self.pos..end];
        self.line += s.bytes().filter(|b| *b == b'\n').count();
        self.pos = end;
        s
    }
    fn remaining(&self) -> usize {
        self.text.len() - self.pos
    }
    fn byte(&self, i: usize) -> Option<u8> {
        self.text.as_bytes().get(self.pos + i).copied()
    }
    fn parse_error(&self, msg: impl Into<String>) -> TemplateError {
        TemplateError::new(
            TemplateErrorKind::Parse,
            format!("{} at <string>:{}", msg.into(), self.line),
            self.pos,
            self.text,
        )
    }
}

/// Parse a template body into nodes.
pub(crate) fn parse_template(body: &str) -> Result<Vec<Node>, TemplateError> {
    if body.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError::new(
            TemplateErrorKind::Limit,
            format!("template is too large: {} bytes, the limit is {MAX_TEMPLATE_BYTES}", body.len()),
            0,
            body,
        ));
    }
    let mut reader = Reader { text: body, pos: 0, line: 1, whitespace: Whitespace::All };
    let chunks = parse_block(&mut reader, None, false, 0)?;
    let mut nodes = Vec::new();
    for c in chunks {
        match c {
            Chunk::Node(n) => nodes.push(n),
            Chunk::Intermediate { .. } => {
                unreachable!("intermediate tags are rejected outside blocks")
            }
        }
    }
    Ok(nodes)
}

fn syntax_error(e: SyntaxError, body: &str) -> TemplateError {
    TemplateError::new(TemplateErrorKind::Syntax, e.message, e.offset, body)
}

fn strip_py(s: &str) -> (&str, usize) {
    let is_ws = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    let trimmed_start = s.trim_start_matches(is_ws);
    let lead = s.len() - trimmed_start.len();
    (trimmed_start.trim_end_matches(is_ws), lead)
}

fn filter_whitespace(mode: Whitespace, text: &str) -> String {
    match mode {
        Whitespace::All => text.to_string(),
        Whitespace::Single => {
            // Runs of tabs/spaces → one space, then whitespace runs containing a newline → "\n".
            let mut tmp = String::with_capacity(text.len());
            let mut in_run = false;
            for c in text.chars() {
                if c == ' ' || c == '\t' {
                    if !in_run {
                        tmp.push(' ');
                    }
                    in_run = true;
                } else {
                    in_run = false;
                    tmp.push(c);
                }
            }
            collapse_ws(&tmp, true)
        }
        Whitespace::Oneline => collapse_ws(text, false),
    }
}

/// Collapse runs of whitespace: with `keep_newline`, only runs that hold a newline become "\n";
/// otherwise every run becomes one space.
fn collapse_ws(text: &str, keep_newline: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let run = &chars[i..j];
            if keep_newline {
                // `(\s*\n\s*)` → "\n": a whitespace run holding a newline becomes exactly one newline.
                if run.contains(&'\n') {
                    out.push('\n');
                } else {
                    out.extend(run.iter());
                }
            } else {
                out.push(' ');
            }
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn parse_block(
    reader: &mut Reader<'_>,
    in_block: Option<&'static str>,
    in_loop: bool,
    depth: usize,
) -> Result<Vec<Chunk>, TemplateError> {
    if depth > MAX_BLOCK_DEPTH {
        return Err(TemplateError::new(
            TemplateErrorKind::Limit,
            format!("blocks nested too deeply: more than {MAX_BLOCK_DEPTH} levels of {{% if/for/while/try %}}"),
            reader.pos,
            reader.text,
        ));
    }
    let mut body: Vec<Chunk> = Vec::new();
    let push_text = |body: &mut Vec<Chunk>, text: &str, ws: Whitespace| {
        let value = if text.contains("<pre>") { text.to_string() } else { filter_whitespace(ws, text) };
        if !value.is_empty() {
            body.push(Chunk::Node(Node::Text(value)));
        }
    };
    loop {
        // Find the next template directive.
        let mut curly = 0;
        loop {
            let found = reader.find("{", curly);
            match found {
                Some(c) if c + 1 != reader.remaining() => curly = c,
                _ => {
                    if in_block.is_some() {
                        return Err(TemplateError::new(
                            TemplateErrorKind::UnclosedBlock,
                            format!("Missing {{% end %}} block for if at line {}", reader.line),
                            reader.pos,
                            reader.text,
                        ));
                    }
                    let rest = reader.remaining();
                    let ws = reader.whitespace;
                    let text = reader.consume(rest).to_string();
                    push_text(&mut body, &text, ws);
                    return Ok(body);
                }
            }
            let next = reader.byte(curly + 1);
            if !matches!(next, Some(b'{' | b'%' | b'#')) {
                curly += 1;
                continue;
            }
            // With more than two curlies in a row, use the innermost ones.
            if curly + 2 < reader.remaining() && next == Some(b'{') && reader.byte(curly + 2) == Some(b'{') {
                curly += 1;
                continue;
            }
            break;
        }
        if curly > 0 {
            let ws = reader.whitespace;
            let text = reader.consume(curly).to_string();
            push_text(&mut body, &text, ws);
        }
        let start_brace = reader.consume(2).to_string();
        let line = reader.line;

        // `{{!` and `{%!` emit the braces literally.
        if reader.byte(0) == Some(b'!') {
            reader.consume(1);
            body.push(Chunk::Node(Node::Text(start_brace)));
            continue;
        }
        if start_brace == "{#" {
            let Some(end) = reader.find("#}", 0) else {
                return Err(reader.parse_error("Missing end comment #}"));
            };
            reader.consume(end + 2);
            continue;
        }
        if start_brace == "{{" {
            let Some(end) = reader.find("}}", 0) else {
                return Err(reader.parse_error("Missing end expression }}"));
            };
            let raw_start = reader.pos;
            let raw = reader.consume(end).to_string();
            reader.consume(2);
            let (contents, lead) = strip_py(&raw);
            if contents.is_empty() {
                return Err(reader.parse_error("Empty expression"));
            }
            let offset = raw_start + lead;
            let expr = match parse_expression(contents, offset) {
                Ok(e) => e,
                Err(e) => {
                    if contents.split(' ').next().unwrap_or("").contains("from") {
                        return Err(reader.parse_error("\"from\" is a forbidden word"));
                    }
                    return Err(syntax_error(e, reader.text));
                }
            };
            check::check_output_expr(&expr).map_err(|e| check_error(e, reader.text))?;
            body.push(Chunk::Node(Node::Expr { expr, src: contents.to_string(), line }));
            continue;
        }
        // A block tag.
        let Some(end) = reader.find("%}", 0) else {
            return Err(reader.parse_error("Missing end block %}"));
        };
        let raw_start = reader.pos;
        let raw = reader.consume(end).to_string();
        reader.consume(2);
        let (contents, lead) = strip_py(&raw);
        if contents.is_empty() {
            return Err(reader.parse_error("Empty block tag ({% %})"));
        }
        let offset = raw_start + lead;
        let (operator, suffix) = match contents.split_once(' ') {
            Some((op, rest)) => (op, rest),
            None => (contents, ""),
        };
        let suffix_trimmed = strip_py(suffix).0;
        let suffix_offset = offset + operator.len() + 1 + strip_py(suffix).1;

        let intermediate: Option<(&'static str, &[&str])> = match operator {
            "else" => Some(("else", &["if", "for", "while", "try"])),
            "elif" => Some(("elif", &["if"])),
            "except" => Some(("except", &["try"])),
            "finally" => Some(("finally", &["try"])),
            _ => None,
        };
        if let Some((op, parents)) = intermediate {
            let Some(parent) = in_block else {
                let set = py_set(parents);
                return Err(reader.parse_error(format!("{op} outside {set} block")));
            };
            if !parents.contains(&parent) {
                return Err(reader.parse_error(format!("{op} block cannot be attached to {parent} block")));
            }
            if matches!(op, "else" | "finally") && contents != op {
                return Err(check_error((format!("Invalid control block: {contents}"), offset), reader.text));
            }
            body.push(Chunk::Intermediate { op, statement: contents.to_string(), offset, line });
            continue;
        }
        if operator == "end" {
            if in_block.is_none() {
                return Err(reader.parse_error("Extra {% end %} block"));
            }
            return Ok(body);
        }
        match operator {
            "comment" => continue,
            "extends" => return Err(reader.parse_error("extends is forbidden")),
            "import" | "from" => return Err(reader.parse_error("import is forbidden")),
            "include" => return Err(reader.parse_error("include is forbidden")),
            "autoescape" => return Err(reader.parse_error("autoescape is forbidden")),
            "raw" => return Err(reader.parse_error("raw is forbidden")),
            "module" => return Err(reader.parse_error("module is forbidden")),
            "apply" => {
                // Tornado parses the body before refusing; the body's own errors come first.
                parse_block(reader, Some("apply"), in_loop, depth + 1)?;
                return Err(reader.parse_error("apply is forbidden"));
            }
            "block" => {
                parse_block(reader, Some("block"), in_loop, depth + 1)?;
                return Err(reader.parse_error("block is forbidden"));
            }
            "whitespace" => {
                reader.whitespace = match suffix_trimmed {
                    "all" => Whitespace::All,
                    "single" => Whitespace::Single,
                    "oneline" => Whitespace::Oneline,
                    other => {
                        return Err(TemplateError::new(
                            TemplateErrorKind::Syntax,
                            format!("invalid whitespace mode {other}"),
                            offset,
                            reader.text,
                        ));
                    }
                };
                continue;
            }
            "set" => {
                if suffix_trimmed.is_empty() {
                    return Err(reader.parse_error("set missing statement"));
                }
                let node = parse_set(suffix_trimmed, suffix_offset, line).map_err(|e| match e {
                    SetError::Syntax(e) => syntax_error(e, reader.text),
                    SetError::Check(m) => check_error(m, reader.text),
                })?;
                body.push(Chunk::Node(node));
                continue;
            }
            "break" | "continue" => {
                if !in_loop {
                    return Err(reader.parse_error(format!("{operator} outside {{'for', 'while'}} block")));
                }
                if contents != operator {
                    return Err(syntax_error(
                        SyntaxError { message: format!("invalid syntax: `{contents}`"), offset },
                        reader.text,
                    ));
                }
                body.push(Chunk::Node(if operator == "break" { Node::Break } else { Node::Continue }));
                continue;
            }
            "if" | "for" | "while" | "try" => {
                let op: &'static str = match operator {
                    "if" => "if",
                    "for" => "for",
                    "while" => "while",
                    _ => "try",
                };
                if op == "try" && contents != "try" {
                    return Err(check_error((format!("Invalid control block: {contents}"), offset), reader.text));
                }
                // Validate the statement before the body, as Tornado does when it builds the block.
                let header = parse_header(op, suffix_trimmed, suffix_offset, reader.text)?;
                let is_loop = matches!(op, "for" | "while");
                let inner = parse_block(reader, Some(op), in_loop || is_loop, depth + 1)?;
                let node = build_block(op, header, inner, line, reader.text)?;
                body.push(Chunk::Node(node));
                continue;
            }
            _ => {}
        }
        return Err(reader.parse_error(format!("unknown operator: {}", crate::value::str_repr(operator))));
    }
}

fn py_set(items: &[&str]) -> String {
    let inner: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn check_error((message, offset): (String, usize), body: &str) -> TemplateError {
    TemplateError::new(TemplateErrorKind::Security, format!("Template Syntax Error: {message}"), offset, body)
}

enum Header {
    Test(Expr),
    For(Target, Expr),
    Try,
}

fn parse_header(op: &str, suffix: &str, offset: usize, body: &str) -> Result<Header, TemplateError> {
    let syn = |e| syntax_error(e, body);
    match op {
        "try" => Ok(Header::Try),
        "for" => {
            let mut p = Parser::new(suffix, offset).map_err(syn)?;
            let target = parse_target(&mut p).map_err(syn)?;
            p.expect_kw("in").map_err(syn)?;
            let iter = p.parse_tuple_or_expr().map_err(syn)?;
            p.expect_end().map_err(syn)?;
            check::check_control_expr(&iter).map_err(|m| check_error(m, body))?;
            Ok(Header::For(target, iter))
        }
        _ => {
            if suffix.is_empty() {
                return Err(syntax_error(
                    SyntaxError { message: "invalid syntax: missing condition".into(), offset },
                    body,
                ));
            }
            let e = parse_expression(suffix, offset).map_err(syn)?;
            check::check_control_expr(&e).map_err(|m| check_error(m, body))?;
            Ok(Header::Test(e))
        }
    }
}

fn parse_target(p: &mut Parser) -> Result<Target, SyntaxError> {
    let mut items = vec![parse_target_atom(p)?];
    let mut tuple = false;
    while p.peek_is_op(",") {
        tuple = true;
        let _ = p.expect_op(",");
        if p.at_end() || p.peek_is_op("=") {
            break;
        }
        items.push(parse_target_atom(p)?);
    }
    if tuple || items.len() > 1 { Ok(Target::Tuple(items)) } else { Ok(items.remove(0)) }
}

fn parse_target_atom(p: &mut Parser) -> Result<Target, SyntaxError> {
    if p.peek_is_op("(") || p.peek_is_op("[") {
        let close = if p.peek_is_op("(") { ")" } else { "]" };
        let _ = p.expect_op(if close == ")" { "(" } else { "[" });
        let t = parse_target(p)?;
        p.expect_op(close)?;
        return Ok(match t {
            Target::Name(..) if close == "]" => Target::Tuple(vec![t]),
            t => t,
        });
    }
    let (n, span) = p.name()?;
    if p.peek_is_op(".") || p.peek_is_op("[") {
        return Err(SyntaxError {
            message: "only names can be assigned in templates (no attributes or subscripts)".into(),
            offset: span.start,
        });
    }
    Ok(Target::Name(n, span))
}

enum SetError {
    Syntax(SyntaxError),
    Check((String, usize)),
}

fn parse_set(stmt: &str, offset: usize, line: usize) -> Result<Node, SetError> {
    let mut p = Parser::new(stmt, offset).map_err(SetError::Syntax)?;
    // Assignment if a target list is followed by `=` or an augmented operator.
    let is_assign = {
        let mut probe = Parser::new(stmt, offset).map_err(SetError::Syntax)?;
        match parse_target(&mut probe) {
            Ok(_) => matches!(probe.peek_op_at(0), Some("=" | "+=" | "-=" | "*=" | "/=" | "//=" | "%=" | "**=")),
            Err(e) if e.message.starts_with("only names") => return Err(SetError::Syntax(e)),
            Err(_) => false,
        }
    };
    if is_assign {
        let target = parse_target(&mut p).map_err(SetError::Syntax)?;
        let op = p.peek_op_at(0).unwrap_or("=");
        let _ = p.expect_op(op);
        let aug = match op {
            "+=" => Some(BinOp::Add),
            "-=" => Some(BinOp::Sub),
            "*=" => Some(BinOp::Mul),
            "/=" => Some(BinOp::Div),
            "//=" => Some(BinOp::FloorDiv),
            "%=" => Some(BinOp::Mod),
            "**=" => Some(BinOp::Pow),
            _ => None,
        };
        if aug.is_some() && matches!(target, Target::Tuple(_)) {
            return Err(SetError::Syntax(SyntaxError {
                message: "'tuple' is an illegal expression for augmented assignment".into(),
                offset,
            }));
        }
        // `a = b = value`: every further `target =` before the value.
        let mut chained = Vec::new();
        if aug.is_none() {
            loop {
                let save = p.position();
                match parse_target(&mut p) {
                    Ok(t) if p.peek_is_op("=") => {
                        let _ = p.expect_op("=");
                        chained.push(t);
                    }
                    _ => {
                        p.rewind(save);
                        break;
                    }
                }
            }
        }
        let value = p.parse_tuple_or_expr().map_err(SetError::Syntax)?;
        if p.peek_is_op(";") {
            return Err(SetError::Check((format!("Invalid set statement: {stmt}"), offset)));
        }
        p.expect_end().map_err(SetError::Syntax)?;
        check::check_control_expr(&value).map_err(SetError::Check)?;
        return Ok(Node::Set { target: Some(target), chained, aug, value, line });
    }
    let value = p.parse_tuple_or_expr().map_err(SetError::Syntax)?;
    if p.peek_is_op(";") {
        return Err(SetError::Check((format!("Invalid set statement: {stmt}"), offset)));
    }
    p.expect_end().map_err(SetError::Syntax)?;
    check::check_control_expr(&value).map_err(SetError::Check)?;
    Ok(Node::Set { target: None, chained: Vec::new(), aug: None, value, line })
}

/// The nodes after an intermediate tag (its name, statement and offset), or before the first one.
type Section = (Option<(&'static str, String, usize, usize)>, Vec<Node>);

/// Fold the intermediate tags (`elif`, `else`, `except`, `finally`) of a block body into its branches.
fn build_block(op: &str, header: Header, inner: Vec<Chunk>, line: usize, body: &str) -> Result<Node, TemplateError> {
    let mut sections: Vec<Section> = vec![(None, Vec::new())];
    for c in inner {
        match c {
            Chunk::Node(n) => sections.last_mut().map(|s| s.1.push(n)).unwrap_or(()),
            Chunk::Intermediate { op, statement, offset, line } => {
                sections.push((Some((op, statement, offset, line)), Vec::new()));
            }
        }
    }
    let misplaced = |what: &str, offset: usize| {
        TemplateError::new(TemplateErrorKind::Syntax, format!("invalid syntax: misplaced {{% {what} %}}"), offset, body)
    };
    let mut iter = sections.into_iter();
    let (_, first) = iter.next().unwrap_or((None, Vec::new()));
    match (op, header) {
        ("if", Header::Test(test)) => {
            let mut branches = vec![(test, first)];
            let mut branch_lines = vec![line];
            let mut orelse = None;
            for (tag, nodes) in iter {
                let Some((tag, stmt, offset, tag_line)) = tag else {
                    continue;
                };
                if orelse.is_some() {
                    return Err(misplaced(tag, offset));
                }
                if tag == "elif" {
                    let after = &stmt["elif".len()..];
                    let (cond, lead) = strip_py(after);
                    let cond_offset = offset + "elif".len() + lead;
                    let Header::Test(e) = parse_header("elif", cond, cond_offset, body)? else {
                        unreachable!("elif headers are tests")
                    };
                    branches.push((e, nodes));
                    branch_lines.push(tag_line);
                } else {
                    orelse = Some(nodes);
                }
            }
            Ok(Node::If { branches, orelse, line, branch_lines })
        }
        ("for" | "while", header) => {
            let mut orelse = None;
            for (tag, nodes) in iter {
                let Some((tag, _, offset, _)) = tag else {
                    continue;
                };
                if orelse.is_some() {
                    return Err(misplaced(tag, offset));
                }
                orelse = Some(nodes);
            }
            match header {
                Header::For(target, it) => Ok(Node::For { target, iter: it, body: first, orelse, line }),
                Header::Test(test) => Ok(Node::While { test, body: first, orelse, line }),
                Header::Try => unreachable!("try headers only come with try"),
            }
        }
        (_, _) => {
            let mut handlers = Vec::new();
            let mut orelse = None;
            let mut finally = None;
            for (tag, nodes) in iter {
                let Some((tag, stmt, offset, _)) = tag else {
                    continue;
                };
                match tag {
                    "except" => {
                        if orelse.is_some() || finally.is_some() {
                            return Err(misplaced(tag, offset));
                        }
                        handlers.push(parse_handler(&stmt, offset, nodes, body)?);
                    }
                    "else" => {
                        if handlers.is_empty() || orelse.is_some() || finally.is_some() {
                            return Err(misplaced(tag, offset));
                        }
                        orelse = Some(nodes);
                    }
                    _ => {
                        if finally.is_some() {
                            return Err(misplaced(tag, offset));
                        }
                        finally = Some(nodes);
                    }
                }
            }
            if handlers.is_empty() && finally.is_none() {
                return Err(TemplateError::new(
                    TemplateErrorKind::Syntax,
                    "invalid syntax: {% try %} needs an {% except %} or {% finally %}".into(),
                    0,
                    body,
                ));
            }
            Ok(Node::Try { body: first, handlers, orelse, finally, line })
        }
    }
}

fn parse_handler(stmt: &str, offset: usize, nodes: Vec<Node>, body: &str) -> Result<Handler, TemplateError> {
    let rest = stmt.strip_prefix("except").unwrap_or("");
    let syn = |e| syntax_error(e, body);
    let mut p = Parser::new(rest, offset + 6).map_err(syn)?;
    let mut classes = Vec::new();
    let mut bind = None;
    if !p.at_end() {
        let paren = p.peek_is_op("(");
        if paren {
            p.expect_op("(").map_err(syn)?;
        }
        loop {
            let (n, span) = p.name().map_err(syn)?;
            if n.len() > 4 && n.starts_with("__") && n.ends_with("__") {
                let _ = span;
                return Err(check_error((format!("Invalid name: {n}"), span.start), body));
            }
            classes.push(n);
            if !p.peek_is_op(",") {
                break;
            }
            p.expect_op(",").map_err(syn)?;
        }
        if paren {
            p.expect_op(")").map_err(syn)?;
        }
        if p.expect_kw("as").is_ok() {
            let (n, span) = p.name().map_err(syn)?;
            if n.len() > 4 && n.starts_with("__") && n.ends_with("__") {
                return Err(check_error((format!("Invalid name: {n}"), span.start), body));
            }
            bind = Some(n);
        }
        p.expect_end().map_err(syn)?;
    }
    Ok(Handler { classes, bind, body: nodes })
}
