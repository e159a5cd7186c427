//! Tinybird's SQL template language: parse, analyse and render pipe SQL exactly like Tinybird does.
//!
//! A pipe node is a template when its SQL starts with `%`. The rest is a Tornado-style template whose
//! expressions are a restricted Python: `{{ String(country, 'ES') }}`, `{% if defined(limit) %}…{% end %}`,
//! `{{ Array(ids, 'Int32') }}` and so on. This crate re-implements the reference renderer of Tinybird's own
//! `tinybird` package (`sql_template.py`, `tornado_template.py`, `datatypes.py`) byte for byte: the same escaping,
//! the same Python `repr(float)`, the same whitespace, the same error messages.
//!
//! ```
//! use tinybird_template::{RenderOptions, Template, Variables, is_template, template_body};
//!
//! let sql = "%\nSELECT * FROM events\nWHERE org = {{String(org)}}\n{% if defined(ids) %}AND id IN {{Array(ids, 'Int32')}}{% end %}\nLIMIT {{Int32(limit, 10)}}";
//! assert!(is_template(sql));
//! let template = Template::parse(template_body(sql).unwrap())?;
//!
//! // Parse once, render many times (a `Template` is `Send + Sync`).
//! let vars = Variables::from_pairs([("org", "O'Reilly"), ("ids", "1,2,3")]);
//! let rendered = template.render(&vars, &RenderOptions::default())?;
//! assert_eq!(
//!     rendered.sql,
//!     "\nSELECT * FROM events\nWHERE org = 'O\\'Reilly'\nAND id IN [1,2,3]\nLIMIT toInt32('10')"
//! );
//!
//! // Errors carry the reference's exact text (which lists every typed parameter without a default).
//! let err = template.render(&Variables::new(), &RenderOptions::default()).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "Template Syntax Error: Required parameter is not defined. Check the parameters org and ids. \
//!      Please provide a value or set a default value in the pipe code."
//! );
//! assert_eq!(err.http_status(), 400);
//!
//! // What the template reads, for compile-time checks.
//! let params = template.analyze().params();
//! let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
//! assert_eq!(names, ["org", "ids", "limit"]);
//! assert_eq!(params[1].function.as_deref(), Some("Array"));
//! assert_eq!(params[1].array_type.as_deref(), Some("Int32"));
//! assert!(params[0].required && !params[1].required && !params[2].required);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Fidelity
//!
//! The test suite replays the shared conformance vectors and about 2,200 cases recorded from the reference
//! renderer (`tests/data/*.json`, regenerated with `tests/data/gen_reference.py`); they cover every function, the
//! error paths and the reference's quirks (the "Required parameter" list, Array pre-processing, test-mode
//! placeholders). Known, deliberate differences, all on inputs real pipes do not use:
//!
//! - CPython's own `SyntaxError` texts are not reproduced: malformed Python is a [`TemplateError`] of kind
//!   [`TemplateErrorKind::Syntax`] with this crate's wording and an exact position. Lambdas, comprehensions,
//!   f-strings and attribute/subscript assignment are rejected the same way.
//! - Python ints are unbounded; here arithmetic is on 128-bit integers and overflow is an error (typed
//!   `Int256`/`UInt256` parameters are exact: they are kept as decimal text).
//! - Builtins templates do not use (`callable`, `map`, `filter`, `hex`, `%`-formatting, …) are an
//!   [`RenderErrorKind::Internal`] error; reprs that contain a memory address in Python are printed without it, and
//!   sets keep insertion order.
//! - Messages that print a Python `set` (`else outside {'if', 'for', 'while', 'try'} block`) use a fixed order,
//!   where CPython's order changes from process to process.
//!
//! Limits: a template body is at most [`MAX_TEMPLATE_BYTES`], blocks nest at most [`MAX_BLOCK_DEPTH`] deep and
//! expressions at most 100 levels; a render runs at most [`MAX_LOOP_ITERATIONS`] loop iterations and builds at most
//! [`MAX_OUTPUT_BYTES`]. Going past any of them is a clear error, never a panic or a stack overflow.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod analysis;
mod check;
mod context;
mod error;
mod expr;
mod funcs;
mod pyjson;

mod python;
pub mod registry;
mod render;
mod syntax;
mod value;
mod vars;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use analysis::{Analysis, FunctionCall, Literal, LocalName, Metadata, Param, Position, UseContext, VarUse};
pub use context::{MAX_LOOP_ITERATIONS, MAX_OUTPUT_BYTES};
pub use error::{RenderError, RenderErrorKind, TemplateError, TemplateErrorKind};
pub use syntax::{MAX_BLOCK_DEPTH, MAX_TEMPLATE_BYTES};
pub use vars::{Hints, ParamValue, RenderOptions, Rendered, Secrets, Variables};

/// Parameter names Tinybird reserves; using one as a variable renders with a warning.
pub const RESERVED_PARAM_NAMES: &[&str] = &[
    "__tb__csv_header",
    "__tb__semver",
    "debug_source_tables",
    "debug",
    "explain",
    "finalize_aggregations",
    "output_format_json_quote_64bit_integers",
    "output_format_json_quote_denormals",
    "output_format_parquet_string_as_string",
    "pipeline",
    "playground",
    "q",
    "query_id",
    "release_replacements",
    "tag",
    "template_parameters",
    "token",
    "job_timestamp",
];

/// True iff the node SQL is a template: it starts with `%` after trimming.
pub fn is_template(sql: &str) -> bool {
    sql.trim().starts_with('%')
}

/// The template body: the text after the leading `%` (None if `sql` is not a template).
///
/// Like the reference (`sql.strip()[1:]`), whitespace around the node SQL is dropped first; everything between
/// the `%` and the end is kept verbatim.
pub fn template_body(sql: &str) -> Option<&str> {
    sql.trim().strip_prefix('%')
}

/// A parsed template: parse once, render many times. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Template {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) body: String,
    pub(crate) nodes: Vec<syntax::Node>,
    pub(crate) template_vars: HashMap<String, usize>,
    pub(crate) local_names: HashSet<String>,
    pub(crate) array_vars: Vec<(String, String)>,
    pub(crate) var_types: Vec<analysis::VarType>,
    pub(crate) uses_job_timestamp: bool,
    pub(crate) uses_secret_fn: bool,
    pub(crate) reserved_used: Vec<String>,
    pub(crate) body_len: usize,
}

impl Template {
    /// Parse a template body (the text after `%`).
    ///
    /// Fails with the reference's message for syntax errors, forbidden statements (`import is forbidden at
    /// <string>:1`), rejected expressions (`Template Syntax Error: Invalid BinOp: Pow()`), unclosed blocks and the
    /// reserved variable names `format` and `q`.
    pub fn parse(body: &str) -> Result<Template, TemplateError> {
        let nodes = syntax::parse_template(body)?;

        let mut names = Vec::new();
        analysis::template_var_names(&nodes, &mut names);
        for (n, line) in &names {
            if n == "format" || n == "q" {
                let offset = find_name(body, n).unwrap_or(0);
                return Err(TemplateError::new(
                    TemplateErrorKind::ReservedName,
                    format!("\"{n}\" can not be used as a variable name, line {line}"),
                    offset,
                    body,
                ));
            }
        }
        let mut reserved_used: Vec<String> = Vec::new();
        let mut template_vars = HashMap::new();
        for (n, line) in &names {
            if RESERVED_PARAM_NAMES.contains(&n.as_str()) && !reserved_used.contains(n) {
                reserved_used.push(n.clone());
            }
            // The reference builds its placeholders with a dict comprehension: the last line wins.
            template_vars.insert(n.clone(), *line);
        }
        let mut bound = Vec::new();
        analysis::local_names(&nodes, &mut bound);
        let local_names: HashSet<String> = bound.into_iter().map(|(n, _)| n).collect();

        let var_types = analysis::var_types(&nodes)
            .map_err(|(msg, offset)| TemplateError::new(TemplateErrorKind::ReservedName, msg, offset, body))?;
        let mut array_vars: Vec<(String, String)> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for v in &var_types {
            let Some(name) = v.name.as_deref() else {
                continue;
            };
            if !seen.insert(name) {
                continue;
            }
            // `Array\((\w+)\)` matched at the start of the type.
            if let Some(rest) = v.type_.strip_prefix("Array(")
                && let Some(end) = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))
                && end > 0
                && rest[end..].starts_with(')')
            {
                array_vars.push((name.to_string(), rest[..end].to_string()));
            }
        }
        let uses_job_timestamp = var_types.iter().any(|v| v.name.as_deref() == Some("job_timestamp"));
        let uses_secret_fn = template_vars.contains_key("tb_secret") || template_vars.contains_key("tb_var");
        Ok(Template {
            inner: Arc::new(Inner {
                body: body.to_string(),
                nodes,
                template_vars,
                local_names,
                array_vars,
                var_types,
                uses_job_timestamp,
                uses_secret_fn,
                reserved_used,
                body_len: body.len(),
            }),
        })
    }

    /// Render with `vars`.
    pub fn render(&self, vars: &Variables, opts: &RenderOptions) -> Result<Rendered, RenderError> {
        render::render(&self.inner, vars, opts)
    }

    /// Everything the template reads: variables with the functions applied to them, defaults, guards,
    /// metadata and positions; invalid function calls; locally bound names.
    pub fn analyze(&self) -> Analysis {
        analysis::Analyzer::new(&self.inner.body, &self.inner.local_names).run(&self.inner.nodes)
    }

    /// The template body this was parsed from.
    pub fn body(&self) -> &str {
        &self.inner.body
    }
}

impl Inner {
    /// Names of the parameters the reference lists in "Required parameter is not defined. Check the parameters …".
    pub(crate) fn required_candidates(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for v in &self.var_types {
            if !v.default_is_none || v.used_in_call {
                continue;
            }
            match &v.name {
                // A non-string name makes the reference's join fail: it then reports the bare message.
                None => return Vec::new(),
                Some(n) if n == "job_timestamp" || out.contains(n) => {}
                Some(n) => out.push(n.clone()),
            }
        }
        out
    }
}

fn find_name(body: &str, name: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut from = 0;
    while let Some(i) = body[from..].find(name) {
        let at = from + i;
        let before = at.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(at + name.len()).copied();
        let is_ident = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !is_ident(before) && !is_ident(after) {
            return Some(at);
        }
        from = at + name.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn template_is_send_sync_clone() {
        assert_send_sync::<Template>();
    }

    #[test]
    fn detects_templates() {
        assert!(is_template("%\nSELECT 1"));
        assert!(is_template("  % SELECT 1"));
        assert!(!is_template("SELECT 1 % 2"));
        assert_eq!(template_body("  %\nSELECT 1\n\n"), Some("\nSELECT 1"));
        assert_eq!(template_body("SELECT 1"), None);
    }
}
