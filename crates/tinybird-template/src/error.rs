//! Errors with the reference renderer's exact text.

use std::fmt;

/// What kind of problem a [`TemplateError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateErrorKind {
    /// A Tornado `ParseError` (`import is forbidden at <string>:1`, `Missing end expression }}`, …).
    Parse,
    /// `UnClosedIfError`: `Missing {% end %} block for if at line N`.
    UnclosedBlock,
    /// A rejected expression (`Template Syntax Error: Invalid BinOp: Pow()`, `Invalid function name: eval`, …).
    Security,
    /// Python syntax the expression language does not accept.
    Syntax,
    /// `format` or `q` used as a variable: `"format" can not be used as a variable name, line 1`.
    ReservedName,
    /// The template exceeds a size or nesting limit of this implementation.
    Limit,
}

/// A template that cannot be parsed. `Display` is the reference's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    kind: TemplateErrorKind,
    message: String,
    offset: usize,
    line: usize,
    column: usize,
}

impl TemplateError {
    pub(crate) fn new(kind: TemplateErrorKind, message: String, offset: usize, body: &str) -> TemplateError {
        let offset = offset.min(body.len());
        let (line, column) = line_col(body, offset);
        TemplateError { kind, message, offset, line, column }
    }

    /// The kind of error.
    pub fn kind(&self) -> TemplateErrorKind {
        self.kind
    }
    /// The message, exactly as the reference renderer words it.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Byte offset inside the template body where the problem was found (best effort for errors the reference
    /// reports without a position).
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// 1-based line inside the template body.
    pub fn line(&self) -> usize {
        self.line
    }
    /// 1-based column (in characters) inside the line.
    pub fn column(&self) -> usize {
        self.column
    }
    /// The HTTP status Tinybird answers with: always 400.
    pub fn http_status(&self) -> u16 {
        400
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

/// 1-based line and column (in chars) of a byte offset.
pub(crate) fn line_col(body: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(body.len());
    while !body.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &body[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// What kind of problem a [`RenderError`] is; decides the HTTP status and the message's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenderErrorKind {
    /// `SQLTemplateException`: the message starts with `Template Syntax Error: `. HTTP 400.
    Template,
    /// A plain `ValueError` (from `error()`, a type mismatch, …): message without prefix. HTTP 400.
    Value,
    /// `custom_error(body, code)`: HTTP `code` with `body` as JSON.
    Custom,
    /// The template was rejected when parsing (see [`TemplateError`]). HTTP 400.
    Parse,
    /// A render exceeded a resource limit of this implementation (output size, loop iterations). HTTP 400.
    Limit,
    /// A bug or unsupported construct in this implementation. HTTP 500.
    Internal,
}

/// A render failure. `Display` is the reference's full message.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderError {
    kind: RenderErrorKind,
    message: String,
    status: u16,
    body: Option<serde_json::Value>,
}

impl RenderError {
    pub(crate) fn template(msg: impl fmt::Display) -> RenderError {
        RenderError {
            kind: RenderErrorKind::Template,
            message: format!("Template Syntax Error: {msg}"),
            status: 400,
            body: None,
        }
    }
    pub(crate) fn value(msg: impl Into<String>) -> RenderError {
        RenderError { kind: RenderErrorKind::Value, message: msg.into(), status: 400, body: None }
    }
    pub(crate) fn limit(msg: impl Into<String>) -> RenderError {
        RenderError { kind: RenderErrorKind::Limit, message: msg.into(), status: 400, body: None }
    }
    pub(crate) fn internal(msg: impl Into<String>) -> RenderError {
        RenderError { kind: RenderErrorKind::Internal, message: msg.into(), status: 500, body: None }
    }
    pub(crate) fn custom(message: String, status: u16, body: serde_json::Value) -> RenderError {
        RenderError { kind: RenderErrorKind::Custom, message, status, body: Some(body) }
    }

    /// The kind of error.
    pub fn kind(&self) -> RenderErrorKind {
        self.kind
    }
    /// The full message, as the reference renderer words it (with the `Template Syntax Error: ` prefix where the
    /// reference has it).
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The HTTP status an endpoint answers with: 400 for template and value errors, the given code for
    /// `custom_error`, 500 for an internal error.
    pub fn http_status(&self) -> u16 {
        self.status
    }
    /// For `custom_error(obj, code)`: `obj` as JSON, the response body. `None` for other errors.
    pub fn custom_body(&self) -> Option<&serde_json::Value> {
        self.body.as_ref()
    }
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RenderError {}

impl From<TemplateError> for RenderError {
    fn from(e: TemplateError) -> RenderError {
        RenderError { kind: RenderErrorKind::Parse, message: e.message, status: 400, body: None }
    }
}

/// `a, b and c`, for messages that list names.
pub(crate) fn join_and(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}
