//! Adapter over `tinybird-template`: renders a node's SQL the way Tinybird does, or reports Tinybird's error.
//!
//! Kept to one small function so the server does not depend on the template crate's internals.

use tinybird_template::{RenderOptions, Template, Variables};

/// A render failure, ready to become an HTTP error.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderFailure {
    /// HTTP status (400 for template errors, the code given to `custom_error`, 500 for internal errors).
    pub status: u16,
    /// The message (`Template Syntax Error: …`).
    pub message: String,
    /// The body `custom_error` asked for, sent as-is.
    pub custom_body: Option<serde_json::Value>,
}

/// Renders `sql` when it is a template (its first line is `%`); returns plain SQL unchanged.
pub fn render(sql: &str, vars: &Variables, test_mode: bool) -> Result<String, RenderFailure> {
    if !tinybird_template::is_template(sql) {
        return Ok(sql.to_string());
    }
    render_body(tinybird_template::template_body(sql).unwrap_or(sql), vars, test_mode)
}

/// Renders text as a template body, whether or not it starts with a `%` line, exactly as Tinybird's renderer
/// renders that text (no line is added or removed).
pub fn render_body(body: &str, vars: &Variables, test_mode: bool) -> Result<String, RenderFailure> {
    let template = Template::parse(body).map_err(|e| RenderFailure {
        status: e.http_status(),
        message: e.to_string(),
        custom_body: None,
    })?;
    let options = RenderOptions { test_mode, ..Default::default() };
    template.render(vars, &options).map(|r| r.sql).map_err(|e| RenderFailure {
        status: e.http_status(),
        message: e.to_string(),
        custom_body: e.custom_body().cloned(),
    })
}
