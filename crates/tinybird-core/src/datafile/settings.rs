//! The keywords Tinybird accepts that this SDK keeps as [`DatafileSetting`]s without interpreting them, and how
//! Tinybird's parser treats each one (`tinybird` package, `datafile/common.py`, `parse`).

use super::DatafileError;
use super::lex::{dedent_block, quote, tokens, unquote};
use crate::def::DatafileSetting;

/// Which kind of file a keyword appears in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Datasource,
    Pipe,
    Connection,
}

/// Whether a keyword takes a one-line value, a `KEYWORD >` block, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// Tinybird's `multiline_not_supported` handlers (`assign_var`).
    Line,
    /// Handlers that read SQL (`FORWARD_QUERY`): "SQL must be multiline".
    Block,
    /// Handlers that take the text either way (`TAGS`, `SHARED_WITH`, deprecated keywords Tinybird ignores).
    Either,
}

/// How Tinybird reads one kept keyword.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    pub form: Form,
    /// Tinybird substitutes environment variables in the value (`eval_var`), so a literal `$` is written `$$`.
    pub env: bool,
    /// Tinybird accumulates repeated uses (`TAGS`, `SHARED_WITH`), so a repeat is not a duplicate.
    pub repeatable: bool,
    /// Tinybird's `assign_node_var`: only valid after a `NODE` (pipes).
    pub needs_node: bool,
    /// The only values Tinybird allows (compared case-insensitively), if it restricts them.
    pub allowed: Option<&'static [&'static str]>,
}

const LINE: Rule = Rule { form: Form::Line, env: true, repeatable: false, needs_node: false, allowed: None };
/// Deprecated keywords Tinybird accepts with a warning and ignores: any form, no substitution.
const IGNORED: Rule = Rule { form: Form::Either, env: false, repeatable: false, needs_node: false, allowed: None };
const LIST: Rule = Rule { form: Form::Either, env: false, repeatable: true, needs_node: false, allowed: None };

/// The rule for a kept keyword (lower-case), or `None` when the keyword is not one this SDK keeps.
pub(crate) fn rule(kind: FileKind, keyword: &str) -> Option<Rule> {
    match kind {
        FileKind::Datasource => match keyword {
            "tags" | "shared_with" => Some(LIST),
            "version"
            | "kafka_target_partitions"
            | "import_service"
            | "import_external_datasource"
            | "export_service" => Some(IGNORED),
            "forward_query" => Some(Rule { form: Form::Block, env: false, ..LINE }),
            "backfill" => Some(Rule { allowed: Some(&["skip"]), ..LINE }),
            "kafka_connection_name"
            | "kafka_topic"
            | "kafka_group_id"
            | "kafka_auto_offset_reset"
            | "kafka_store_raw_value"
            | "kafka_store_headers"
            | "kafka_key_format"
            | "kafka_value_format"
            | "import_connection_name"
            | "import_schedule"
            | "import_bucket_uri"
            | "import_format"
            | "import_from_timestamp"
            | "import_query"
            | "import_table_arn"
            | "import_export_bucket"
            | "pg_connection_name"
            | "pg_table" => Some(LINE),
            _ => None,
        },
        FileKind::Pipe => match keyword {
            "tags" => Some(LIST),
            "version" | "export_service" => Some(IGNORED),
            "on_demand_compute" | "filter" => Some(Rule { needs_node: true, ..LINE }),
            _ => None,
        },
        // Tinybird renders a `.connection` file's `{{ tb_secret(…) }}` placeholders before reading it; the values are
        // kept as written, placeholders included.
        FileKind::Connection => match keyword {
            "kafka_ssl_ca_pem" | "gcs_service_account_credentials_json" => {
                Some(Rule { form: Form::Either, env: false, ..LINE })
            }
            "type" | "include" => None,
            k if CONNECTION_KEYWORDS.contains(&k) => Some(Rule { env: false, ..LINE }),
            _ => None,
        },
    }
}

/// The keywords of a `.connection` file, as Tinybird's parser knows them: `TYPE`, `INCLUDE` and the keys.
pub(crate) const CONNECTION_KEYWORDS: &[&str] = &[
    "type",
    "include",
    "kafka_bootstrap_servers",
    "kafka_key",
    "kafka_secret",
    "kafka_schema_registry_url",
    "kafka_ssl_ca_pem",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_oauthbearer_method",
    "kafka_sasl_oauthbearer_aws_region",
    "kafka_sasl_oauthbearer_aws_role_arn",
    "kafka_sasl_oauthbearer_aws_external_id",
    "s3_region",
    "s3_arn",
    "s3_access_key",
    "s3_secret",
    "dynamodb_arn",
    "dynamodb_region",
    "gcs_service_account_credentials_json",
    "gcs_access_id",
    "gcs_secret",
    "gcs_hmac_access_id",
    "gcs_hmac_secret",
    "pg_host",
    "pg_port",
    "pg_database",
    "pg_user",
    "pg_password",
    "pg_ssl_mode",
];

/// Tinybird's error for keywords it knows but refuses (deprecated or not supported), with `written` the keyword as
/// it appears in the file (Tinybird quotes it as written in some of these messages).
pub(crate) fn refused(kind: FileKind, keyword: &str, written: &str) -> Option<String> {
    let upper = keyword.to_ascii_uppercase();
    match (kind, keyword) {
        (_, "include") => Some(format!("{written} is not supported yet")),
        (FileKind::Datasource, "source") => Some(format!("{upper} has been deprecated")),
        (FileKind::Datasource, "import_strategy") => Some(format!(
            "{upper} has been deprecated. The built-in default is 'append'. You can safely remove this setting from \
             your Data Source file and the connection will be valid."
        )),
        (FileKind::Datasource, "kafka_store_binary_headers") => Some(format!(
            "{upper} has been deprecated. When KAFKA_STORE_HEADERS is True, __headers is always of type \
             Map(String, String)"
        )),
        _ => None,
    }
}

/// Writes `settings` as they appear in a file of `kind`, one entry per setting. `in_node` says whether they follow
/// a `NODE` (pipes); `seen` collects the keywords written so far in the file, to refuse a repeated one.
pub(crate) fn write(
    kind: FileKind,
    settings: &[DatafileSetting],
    in_node: bool,
    seen: &mut Vec<String>,
) -> Result<Vec<String>, DatafileError> {
    let mut out = Vec::with_capacity(settings.len());
    for setting in settings {
        let keyword = setting.keyword.to_ascii_uppercase();
        let lower = keyword.to_ascii_lowercase();
        let err = |message: String| DatafileError::generate(Some(&keyword), message);
        let file = match kind {
            FileKind::Datasource => "datasource",
            FileKind::Pipe => "pipe",
            FileKind::Connection => "connection",
        };
        let rule = rule(kind, &lower).ok_or_else(|| {
            err(format!("{keyword} is not a setting this SDK can write in {file} files (its own fields cover it, or Tinybird does not accept it)"))
        })?;
        if rule.needs_node && !in_node {
            return Err(err(format!("{lower} must be called after a NODE command")));
        }
        if !rule.repeatable {
            if seen.contains(&lower) {
                return Err(err(format!("{keyword} is given twice")));
            }
            seen.push(lower.clone());
        }
        if setting.multiline {
            if rule.form == Form::Line {
                return Err(err(format!("{keyword} does not support multiline arguments")));
            }
            let value = dedent_block(&setting.value);
            if value.is_empty() {
                return Err(err("empty value".to_owned()));
            }
            let mut text = format!("{keyword} >");
            for line in value.lines() {
                if line.trim_start().starts_with('#') {
                    return Err(err(format!("the line `{line}` starts with `#`, which Tinybird reads as a comment")));
                }
                text.push('\n');
                if !line.is_empty() {
                    text.push_str("    ");
                    text.push_str(line);
                }
            }
            out.push(text);
        } else {
            if rule.form == Form::Block {
                return Err(err(format!("{keyword} must be multiline: write it as a block (`multiline: true`)")));
            }
            if lower == "shared_with" {
                out.push(format!("{keyword} {}", shared_with_value(&setting.value).map_err(err)?));
                continue;
            }
            if kind == FileKind::Connection && is_placeholder(&setting.value) {
                // `KAFKA_KEY {{ tb_secret("KAFKA_KEY") }}`, as the official SDK writes it: Tinybird replaces the
                // placeholder before it reads the line.
                out.push(format!("{keyword} {}", setting.value.trim()));
                continue;
            }
            out.push(format!("{keyword} {}", line_value(&keyword, &setting.value, rule.env)?));
        }
    }
    Ok(out)
}

/// Whether `value` is one `{{ … }}` template expression (a `tb_secret` placeholder) on one line.
pub(crate) fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    v.starts_with("{{") && v.ends_with("}}") && v.matches("{{").count() == 1 && !v.contains(['\n', '\r'])
}

/// A one-line `SHARED_WITH` list as `a, b`: Tinybird splits each argument on commas, so names must be plain words
/// (a block takes any name on its own line).
fn shared_with_value(value: &str) -> Result<String, String> {
    let names: Vec<&str> = value.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Err("empty value".to_owned());
    }
    if let Some(bad) = names.iter().find(|n| n.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '#'))) {
        return Err(format!(
            "workspace `{bad}` cannot be written on one line (spaces, quotes or `#`): write SHARED_WITH as a block"
        ));
    }
    Ok(names.join(", "))
}

/// A one-line value written so Tinybird reads `value` back: bare when tokenising keeps it as it is, quoted
/// otherwise; `$` doubled where Tinybird substitutes environment variables.
fn line_value(keyword: &str, value: &str, env: bool) -> Result<String, DatafileError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DatafileError::generate(Some(keyword), "empty value"));
    }
    let escaped = if env { value.replace('$', "$$") } else { value.to_owned() };
    let bare = !escaped.starts_with(['"', '\''])
        && !escaped.contains(['#', '\n', '\r'])
        && tokens(&escaped).is_ok_and(|t| t.join(" ") == escaped && unquote(&escaped) == escaped);
    if bare {
        return Ok(escaped);
    }
    quote(&escaped).ok_or_else(|| {
        DatafileError::generate(
            Some(keyword),
            format!("`{value}` cannot be written on one line: it has a newline or both kinds of quote"),
        )
    })
}

/// Tinybird's node validation, for the kept keys that land on a node: a standard or materialized node may carry
/// none of `FILTER`, `ON_DEMAND_COMPUTE` and operational `TAGS` (`key=value` entries), a copy node only
/// `ON_DEMAND_COMPUTE` (true or false); endpoint and sink nodes are not checked by Tinybird. `node_type` is the
/// node's `TYPE` (`None` for a standard node). On failure: the index of the offending setting and Tinybird's message.
pub(crate) fn check_node(
    node_type: Option<&str>,
    node_name: &str,
    settings: &[DatafileSetting],
) -> Result<(), (usize, String)> {
    let (label, allowed): (&str, &[&str]) = match node_type {
        None | Some("standard" | "default") => ("Standard", &[]),
        Some("materialized") => ("Materialized", &[]),
        Some("copy") => ("Copy", &["on_demand_compute"]),
        _ => return Ok(()),
    };
    for (i, setting) in settings.iter().enumerate() {
        let attribute = match setting.keyword.to_ascii_lowercase().as_str() {
            "filter" => "filter",
            "on_demand_compute" => "on_demand_compute",
            // Only `key=value` tags are stored on the node; plain tags are the pipe's filtering tags.
            "tags" if setting.value.contains('=') => "tags",
            _ => continue,
        };
        if !allowed.contains(&attribute) {
            return Err((i, format!("{label} node '{node_name}' has an invalid attribute ({attribute})")));
        }
        if attribute == "on_demand_compute" {
            let value = setting.value.trim().to_ascii_lowercase();
            if !["y", "yes", "t", "true", "on", "1", "n", "no", "f", "false", "off", "0"].contains(&value.as_str()) {
                return Err((i, "ON_DEMAND_COMPUTE must be true or false".to_owned()));
            }
        }
    }
    Ok(())
}

/// `SHARED_WITH` as Tinybird reads a one-line value: each argument unquoted, split on commas, trimmed; the
/// workspaces joined with `, ` (the form the writer writes back).
pub(crate) fn shared_with_line(args: &[String]) -> String {
    args.iter()
        .flat_map(|arg| unquote(arg).split(',').map(|w| w.trim().trim_end_matches(',').to_owned()).collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}
