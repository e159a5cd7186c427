//! Generating `.datasource` and `.pipe` text.

use std::fmt::Write as _;

use super::lex::{dedent, quote, word};
use super::placeholders::inject;
use super::settings::{self, FileKind};
use super::{DatafileError, PipeDef, PipeKind};
use crate::def::{ColumnDef, ConnectionDef, DatasourceDef, EndpointDef, EngineDef, NodeDef, TokenDef, TokenPermission};
use crate::types::ChType;

const INDENT: &str = "    ";

/// The `.datasource` file for `def`.
///
/// Sections, blank-line separated: `DESCRIPTION >`, `TOKEN` lines, `SCHEMA >`, `INDEXES >`, `ENGINE` and its
/// keys, then the kept [`settings`](DatasourceDef::settings) in order (one-line ones together, each block on its
/// own). Each column is `` `name` Type [DEFAULT expr] [CODEC(codec)] [`json:$.path`] ``; column types are checked
/// with the [`ChType`] parser, so a typo fails here rather than at deploy time. Fails when a value cannot be written
/// so Tinybird reads it back unchanged (a newline in a key, both kinds of quote in one value, an invalid type).
pub fn write_datasource(def: &DatasourceDef) -> Result<String, DatafileError> {
    let mut sections: Vec<String> = Vec::new();
    if let Some(description) = &def.description {
        sections.push(self::description(description)?);
    }
    if !def.tokens.is_empty() {
        sections.push(tokens(&def.tokens)?);
    }
    if def.columns.is_empty() {
        return Err(DatafileError::generate(Some("SCHEMA"), format!("datasource `{}` has no columns", def.name)));
    }
    let columns = def.columns.iter().map(column).collect::<Result<Vec<_>, _>>()?;
    sections.push(format!("SCHEMA >\n{INDENT}{}", columns.join(&format!(",\n{INDENT}"))));
    if !def.indexes.is_empty() {
        let mut text = String::from("INDEXES >");
        for index in &def.indexes {
            for (what, value) in [("name", &index.name), ("expression", &index.expr), ("type", &index.ty)] {
                if value.trim().is_empty() || value.contains('\n') {
                    return Err(DatafileError::generate(
                        Some("INDEXES"),
                        format!("index `{}` needs a one-line {what}", index.name),
                    ));
                }
            }
            let _ = write!(
                text,
                "\n{INDENT}{} {} TYPE {} GRANULARITY {}",
                index.name, index.expr, index.ty, index.granularity
            );
        }
        sections.push(text);
    }
    if let Some(engine) = engine(&def.engine)? {
        sections.push(engine);
    }
    push_settings(&mut sections, settings::write(FileKind::Datasource, &def.settings, false, &mut Vec::new())?);
    let text = sections.join("\n\n") + "\n";
    // Tinybird renders a whole .datasource file as a template before parsing it.
    for (i, line) in text.lines().enumerate() {
        if let Some(opener) = ["{{", "{%", "{#"].into_iter().find(|o| line.contains(o)) {
            return Err(DatafileError::generate(
                None,
                format!("line {} would contain `{opener}`, which Tinybird reads as a template tag: `{line}`", i + 1),
            ));
        }
    }
    Ok(text)
}

/// The `.connection` file for `def`: `TYPE`, then its settings, one per line (a `{{ tb_secret("NAME") }}`
/// placeholder written bare, as the official SDK writes it). Fails on an empty or multi-line `TYPE`, a key Tinybird
/// does not know for connections, or a value that cannot be written on one line.
pub fn write_connection(def: &ConnectionDef) -> Result<String, DatafileError> {
    let kind = def.kind.trim();
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DatafileError::generate(
            Some("TYPE"),
            format!("connection `{}` needs a TYPE such as kafka, s3, gcs or dynamodb, not `{kind}`", def.name),
        ));
    }
    let mut lines = vec![format!("TYPE {kind}")];
    lines.extend(settings::write(FileKind::Connection, &def.settings, false, &mut Vec::new())?);
    Ok(lines.join("\n") + "\n")
}

/// `\'` inside single-quoted SQL literals written as `''`: Tinybird's schema parser rejects `\'` in a datafile,
/// ClickHouse reads both the same.
fn doubled_quotes(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_string = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => match chars.next() {
                Some('\'') => out.push_str("''"),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The `.pipe` file for an endpoint: its nodes with each param's default, `required=True` and description written
/// into the `{{ }}` placeholders that use it (where the placeholder does not say it already), and `TYPE endpoint`
/// after the last node.
///
/// `cache_ttl` is not written: the datafile grammar of Tinybird's parser has no cache keyword, so it has to be set
/// through the API.
pub fn write_endpoint(def: &EndpointDef) -> Result<String, DatafileError> {
    let nodes =
        def.nodes.iter().map(|node| NodeDef { sql: inject(&dedent(&node.sql), &def.params), ..node.clone() }).collect();
    write_pipe(&PipeDef {
        name: def.name.clone(),
        description: def.description.clone(),
        nodes,
        tokens: def.tokens.clone(),
        kind: PipeKind::Endpoint,
        settings: def.settings.clone(),
    })
}

/// The `.pipe` file for `def`: `DESCRIPTION >`, `TOKEN … READ` lines, then each `NODE` with its `DESCRIPTION >` and
/// `SQL >` (dedented, indented by four spaces) and the node's kept settings, the pipe's `TYPE` and its keys after
/// the last node. Pipe-level settings go before the first `NODE`, after the tokens.
pub fn write_pipe(def: &PipeDef) -> Result<String, DatafileError> {
    let mut sections: Vec<String> = Vec::new();
    if let Some(description) = &def.description {
        sections.push(self::description(description)?);
    }
    if !def.tokens.is_empty() {
        if let Some(token) = def.tokens.iter().find(|t| t.permission != TokenPermission::Read) {
            return Err(DatafileError::generate(
                Some("TOKEN"),
                format!("token `{}`: only READ is allowed in pipes", token.name),
            ));
        }
        sections.push(tokens(&def.tokens)?);
    }
    push_settings(&mut sections, settings::write(FileKind::Pipe, &def.settings, false, &mut Vec::new())?);
    if def.nodes.is_empty() {
        return Err(DatafileError::generate(Some("NODE"), format!("pipe `{}` has no nodes", def.name)));
    }
    for (i, node) in def.nodes.iter().enumerate() {
        let name = word(&node.name)
            .filter(|_| !node.name.trim().is_empty())
            .ok_or_else(|| DatafileError::generate(Some("NODE"), format!("invalid node name `{}`", node.name)))?;
        let mut text = format!("NODE {name}");
        if let Some(description) = &node.description {
            text.push('\n');
            text.push_str(&self::description(description)?);
        }
        let sql = dedent(&node.sql);
        if sql.is_empty() {
            return Err(DatafileError::generate(Some("SQL"), format!("node `{}` has no SQL", node.name)));
        }
        if let Some(body) = tinybird_template::template_body(&sql)
            && let Err(e) = tinybird_template::Template::parse(body)
        {
            return Err(DatafileError::generate(
                Some("SQL"),
                format!("node `{}`, line {} of its SQL: {}", node.name, e.line() + 1, e.message()),
            ));
        }
        text.push('\n');
        text.push_str(&block("SQL", &sql));
        let node_type = if i + 1 == def.nodes.len() { def.kind.type_name() } else { None };
        settings::check_node(node_type, &node.name, &node.settings)
            .map_err(|(index, message)| DatafileError::generate(Some(&node.settings[index].keyword), message))?;
        let mut node_settings = Vec::new();
        push_settings(&mut node_settings, settings::write(FileKind::Pipe, &node.settings, true, &mut Vec::new())?);
        for part in node_settings {
            // Blank-line separated like the file's sections; Tinybird skips blank lines between keywords.
            text.push_str("\n\n");
            text.push_str(&part);
        }
        if i + 1 == def.nodes.len() {
            text.push_str(&kind_lines(&def.kind)?);
        }
        sections.push(text);
    }
    Ok(sections.join("\n\n") + "\n")
}

/// Adds written settings as sections: consecutive one-line settings share a section, each block is its own.
fn push_settings(sections: &mut Vec<String>, written: Vec<String>) {
    let mut lines: Vec<String> = Vec::new();
    for part in written {
        if part.contains('\n') || part.ends_with(" >") {
            if !lines.is_empty() {
                sections.push(std::mem::take(&mut lines).join("\n"));
            }
            sections.push(part);
        } else {
            lines.push(part);
        }
    }
    if !lines.is_empty() {
        sections.push(lines.join("\n"));
    }
}

/// `KEYWORD >` and the text, dedented, every line indented (blank lines stay empty).
fn block(keyword: &str, text: &str) -> String {
    let mut out = format!("{keyword} >");
    for line in dedent(text).lines() {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(INDENT);
            out.push_str(line);
        }
    }
    out
}

/// A `DESCRIPTION >` block. A line starting with `#` would be read back as a comment and vanish, so it is refused.
fn description(text: &str) -> Result<String, DatafileError> {
    if let Some(line) = dedent(text).lines().find(|l| l.trim_start().starts_with('#')) {
        return Err(DatafileError::generate(
            Some("DESCRIPTION"),
            format!("the line `{line}` starts with `#`, which Tinybird reads as a comment"),
        ));
    }
    Ok(block("DESCRIPTION", text))
}

fn tokens(tokens: &[TokenDef]) -> Result<String, DatafileError> {
    let lines = tokens
        .iter()
        .map(|t| {
            let name = quote(&t.name)
                .filter(|_| !t.name.trim().is_empty())
                .ok_or_else(|| DatafileError::generate(Some("TOKEN"), format!("invalid token name `{}`", t.name)))?;
            let permission = match t.permission {
                TokenPermission::Read => "READ",
                TokenPermission::Append => "APPEND",
            };
            Ok(format!("TOKEN {name} {permission}"))
        })
        .collect::<Result<Vec<_>, DatafileError>>()?;
    Ok(lines.join("\n"))
}

fn column(c: &ColumnDef) -> Result<String, DatafileError> {
    let err = |message: String| DatafileError::generate(Some("SCHEMA"), message);
    if c.name.is_empty() || c.name.contains(['`', '\n', '\r']) {
        return Err(err(format!("invalid column name `{}`", c.name)));
    }
    let ty: ChType = c.ty.parse().map_err(|e| err(format!("column `{}`: {e}", c.name)))?;
    let mut out = format!("`{}` {}", c.name, doubled_quotes(&ty.to_string()));
    if let Some(default) = &c.default {
        if default.trim().is_empty() || default.contains('\n') || default.contains('`') {
            return Err(err(format!("column `{}`: DEFAULT must be a one-line expression without backquotes", c.name)));
        }
        let _ = write!(out, " DEFAULT {}", doubled_quotes(default.trim()));
    }
    if let Some(codec) = &c.codec {
        let codec = codec.trim();
        let inner = codec.strip_prefix("CODEC(").and_then(|c| c.strip_suffix(')')).unwrap_or(codec);
        if inner.is_empty() || inner.contains('\n') || inner.contains('`') {
            return Err(err(format!("column `{}`: invalid CODEC `{codec}`", c.name)));
        }
        let _ = write!(out, " CODEC({inner})");
    }
    if let Some(path) = &c.json_path {
        if !path.starts_with('$') || path.contains(['`', '\n', ',', ' ']) {
            return Err(err(format!("column `{}`: invalid JSONPath `{path}` (expected `$.a.b` or `$.a[:]`)", c.name)));
        }
        let _ = write!(out, " `json:{path}`");
    }
    Ok(out)
}

fn engine(e: &EngineDef) -> Result<Option<String>, DatafileError> {
    let keys: [(&str, &Option<String>); 11] = [
        ("ENGINE_PARTITION_KEY", &e.partition_key),
        ("ENGINE_SORTING_KEY", &e.sorting_key),
        ("ENGINE_PRIMARY_KEY", &e.primary_key),
        ("ENGINE_SAMPLING_KEY", &e.sampling_key),
        ("ENGINE_TTL", &e.ttl),
        ("ENGINE_VER", &e.ver),
        ("ENGINE_SIGN", &e.sign),
        ("ENGINE_VERSION", &e.version),
        ("ENGINE_IS_DELETED", &e.is_deleted),
        ("ENGINE_COLUMNS", &e.columns),
        ("ENGINE_SETTINGS", &e.settings),
    ];
    let any_key = keys.iter().any(|(_, v)| v.is_some());
    if e.kind.is_empty() && !any_key {
        return Ok(None);
    }
    // Tinybird's default engine, written out so the file says what it gets.
    let kind = if e.kind.is_empty() { "MergeTree" } else { e.kind.as_str() };
    let mut lines = vec![keyword_line("ENGINE", kind)?];
    for (keyword, value) in keys {
        if let Some(value) = value {
            lines.push(keyword_line(keyword, value)?);
        }
    }
    Ok(Some(lines.join("\n")))
}

fn keyword_line(keyword: &str, value: &str) -> Result<String, DatafileError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DatafileError::generate(Some(keyword), "empty value"));
    }
    // Tinybird substitutes `$NAME` with environment variables in these values; `$$` is a literal `$`.
    let escaped = trimmed.replace('$', "$$");
    let quoted = quote(&escaped).ok_or_else(|| {
        DatafileError::generate(
            Some(keyword),
            format!("`{trimmed}` cannot be written on one line: it has a newline or both kinds of quote"),
        )
    })?;
    Ok(format!("{keyword} {quoted}"))
}

fn kind_lines(kind: &PipeKind) -> Result<String, DatafileError> {
    let mut out = String::new();
    if let Some(name) = kind.type_name() {
        let _ = write!(out, "\nTYPE {name}");
    }
    let mut key = |keyword: &str, value: &str| -> Result<(), DatafileError> {
        out.push('\n');
        out.push_str(&keyword_line(keyword, value)?);
        Ok(())
    };
    match kind {
        PipeKind::Standard | PipeKind::Endpoint => {}
        PipeKind::Materialized { datasource, deployment_method } => {
            key("DATASOURCE", datasource)?;
            if let Some(method) = deployment_method {
                key("DEPLOYMENT_METHOD", method)?;
            }
        }
        PipeKind::Copy { target_datasource, schedule, mode } => {
            key("TARGET_DATASOURCE", target_datasource)?;
            if let Some(schedule) = schedule {
                key("COPY_SCHEDULE", schedule)?;
            }
            if let Some(mode) = mode {
                key("COPY_MODE", mode)?;
            }
        }
        PipeKind::Sink { settings } => {
            for (keyword, value) in settings {
                let upper = keyword.to_ascii_uppercase();
                if !upper.starts_with("EXPORT_") {
                    return Err(DatafileError::generate(Some(&upper), "sink settings must be EXPORT_* keys"));
                }
                key(&upper, value)?;
            }
        }
    }
    Ok(out)
}
