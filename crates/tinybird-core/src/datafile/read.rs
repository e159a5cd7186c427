//! Parsing `.datasource` and `.pipe` text, following Tinybird's own parser line by line.

use super::lex::{UnterminatedQuote, dedent_block, tokens, unquote};
use super::settings::{self, FileKind, Form};
use super::{DatafileError, DatafileSetting, PipeDef, PipeKind};
use crate::def::{ColumnDef, ConnectionDef, DatasourceDef, EngineDef, IndexDef, NodeDef, TokenDef, TokenPermission};
use crate::types::ChType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Datasource,
    Pipe,
    Connection,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Datasource => "datasource",
            Kind::Pipe => "pipe",
            Kind::Connection => "connection",
        }
    }

    fn file_kind(self) -> FileKind {
        match self {
            Kind::Datasource => FileKind::Datasource,
            Kind::Pipe => FileKind::Pipe,
            Kind::Connection => FileKind::Connection,
        }
    }

    /// Every keyword Tinybird's parser knows for this kind of file (they end multi-line values).
    fn keywords(self) -> &'static [&'static str] {
        match self {
            Kind::Datasource => &[
                "description",
                "token",
                "source",
                "schema",
                "indexes",
                "engine",
                "partition_key",
                "sorting_key",
                "primary_key",
                "sampling_key",
                "ttl",
                "tags",
                "include",
                "version",
                "kafka_connection_name",
                "kafka_topic",
                "kafka_group_id",
                "kafka_auto_offset_reset",
                "kafka_store_raw_value",
                "kafka_store_headers",
                "kafka_store_binary_headers",
                "kafka_key_format",
                "kafka_value_format",
                "kafka_target_partitions",
                "import_connection_name",
                "import_schedule",
                "import_strategy",
                "import_bucket_uri",
                "import_format",
                "import_from_timestamp",
                "import_service",
                "import_external_datasource",
                "import_query",
                "import_table_arn",
                "import_export_bucket",
                "pg_connection_name",
                "pg_table",
                "shared_with",
                "export_service",
                "forward_query",
                "backfill",
                "engine_partition_key",
                "engine_sign",
                "engine_is_deleted",
                "engine_sampling_key",
                "engine_ver",
                "engine_sorting_key",
                "engine_version",
                "engine_columns",
                "engine_primary_key",
                "engine_ttl",
                "engine_settings",
            ],
            Kind::Connection => settings::CONNECTION_KEYWORDS,
            Kind::Pipe => &[
                "node",
                "scope",
                "description",
                "type",
                "datasource",
                "tags",
                "target_datasource",
                "copy_schedule",
                "copy_mode",
                "mode",
                "on_demand_compute",
                "filter",
                "token",
                "include",
                "sql",
                "version",
                "deployment_method",
                "export_service",
                "export_connection_name",
                "export_schedule",
                "export_bucket_uri",
                "export_file_template",
                "export_format",
                "export_strategy",
                "export_compression",
                "export_write_strategy",
                "export_kafka_topic",
            ],
        }
    }
}

/// One keyword and its value, as the line loop found it.
struct Command {
    /// Lower-case keyword.
    keyword: String,
    /// The keyword as written (some of Tinybird's messages quote it so).
    written: String,
    line: usize,
    value: Value,
}

enum Value {
    /// Tokens after the keyword, quotes kept.
    Args(Vec<String>),
    /// The lines of a `KEYWORD >` block, as written.
    Block(String),
}

impl Command {
    fn err(&self, message: impl Into<String>) -> DatafileError {
        DatafileError::at(self.line, Some(&self.keyword), message)
    }

    /// The single-line value, joined and unquoted (Tinybird's `_unquote(" ".join(args))`).
    fn single(&self) -> Result<String, DatafileError> {
        match &self.value {
            Value::Args(args) => {
                let joined = args.join(" ");
                // Tinybird substitutes environment variables here (`safe_substitute`); `$$` stands for `$`.
                let value = unquote(joined.trim()).replace("$$", "$");
                if value.trim().is_empty() {
                    return Err(self.err("missing value"));
                }
                Ok(value)
            }
            Value::Block(_) => {
                Err(self.err(format!("{} does not support multiline arguments", self.keyword.to_ascii_uppercase())))
            }
        }
    }

    /// The `KEYWORD >` block, dedented.
    fn block(&self) -> Result<String, DatafileError> {
        match &self.value {
            Value::Block(text) => Ok(dedent_block(text)),
            Value::Args(_) => Err(self.err(format!(
                "{} must be multiline: write `{} >` and the value on the following lines, indented",
                self.keyword.to_ascii_uppercase(),
                self.keyword.to_ascii_uppercase()
            ))),
        }
    }

    /// A block or a single-line value (DESCRIPTION accepts both; a single line is not unquoted, as in Tinybird).
    fn text(&self) -> String {
        match &self.value {
            Value::Block(text) => dedent_block(text),
            Value::Args(args) => args.join(" ").trim().to_owned(),
        }
    }

    /// The command as a kept [`DatafileSetting`] if it is one for `kind`, checked as Tinybird checks it; an error
    /// with Tinybird's message if Tinybird refuses the keyword.
    fn setting(&self, kind: Kind) -> Result<Option<DatafileSetting>, DatafileError> {
        if let Some(message) = settings::refused(kind.file_kind(), &self.keyword, &self.written) {
            return Err(self.err(message));
        }
        let Some(rule) = settings::rule(kind.file_kind(), &self.keyword) else { return Ok(None) };
        let upper = self.keyword.to_ascii_uppercase();
        let setting = match &self.value {
            Value::Block(_) if rule.form == Form::Line => {
                return Err(self.err(format!("{upper} does not support multiline arguments")));
            }
            Value::Args(_) if rule.form == Form::Block => {
                return Err(self.err(format!("{upper} must be multiline: use > to start a multiline SQL block")));
            }
            Value::Block(text) => {
                let value = dedent_block(text);
                if value.is_empty() {
                    return Err(self.err("missing value"));
                }
                DatafileSetting::block(upper, value)
            }
            // Tinybird unquotes each argument of SHARED_WITH on its own, so the joined form would change its meaning.
            Value::Args(args) if self.keyword == "shared_with" => {
                let value = settings::shared_with_line(args);
                if value.is_empty() {
                    return Err(self.err("SHARED_WITH requires at least one workspace name"));
                }
                DatafileSetting::line(upper, value)
            }
            Value::Args(args) => {
                let joined = args.join(" ");
                let mut value = unquote(joined.trim()).to_owned();
                if rule.env {
                    value = value.replace("$$", "$");
                }
                if value.trim().is_empty() {
                    return Err(self.err("missing value"));
                }
                DatafileSetting::line(upper, value)
            }
        };
        if let Some(allowed) = rule.allowed
            && !allowed.iter().any(|a| a.eq_ignore_ascii_case(&setting.value))
        {
            let set = allowed.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ");
            return Err(self.err(format!(
                "{} is not an allowed value for {}. Use one of: {{{set}}}",
                setting.value, setting.keyword
            )));
        }
        Ok(Some(setting))
    }

    fn unsupported(&self, kind: Kind) -> DatafileError {
        self.err(format!(
            "{} is valid in Tinybird {} files but not supported by this SDK yet",
            self.keyword.to_ascii_uppercase(),
            kind.name()
        ))
    }
}

/// Runs Tinybird's line loop: keywords, `KEYWORD >` blocks closed by the next known keyword at column 0,
/// comment-only lines skipped (blank lines are kept inside blocks).
fn commands(text: &str, kind: Kind) -> Result<Vec<Command>, DatafileError> {
    let known = kind.keywords();
    let mut out = Vec::new();
    let mut open: Option<Command> = None;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let toks = match tokens(line) {
            Ok(toks) => toks,
            // Inside a block any line is content; Tinybird quotes the whole line and carries on.
            Err(UnterminatedQuote) if open.is_some() => vec![line.trim().to_owned()],
            Err(UnterminatedQuote) => {
                return Err(DatafileError::at(lineno, None, "unterminated quote"));
            }
        };
        let Some(first) = toks.first() else {
            // Tinybird drops blank lines inside a block too; keeping them keeps paragraphs and SQL layout, and
            // changes nothing Tinybird would see. Comment-only lines are dropped, as Tinybird does.
            if line.trim().is_empty()
                && let Some(Command { value: Value::Block(text), .. }) = &mut open
            {
                text.push('\n');
            }
            continue;
        };
        let keyword = first.to_ascii_lowercase();
        let at_column_0 = !line.starts_with([' ', '\t']);
        if open.is_some() && at_column_0 && known.contains(&keyword.as_str()) {
            out.extend(open.take());
        }
        if let Some(block) = &mut open {
            if let Value::Block(text) = &mut block.value {
                text.push_str(line);
                text.push('\n');
            }
            continue;
        }
        if !known.contains(&keyword.as_str()) && keyword != "settings" {
            return Err(DatafileError::at(
                lineno,
                Some(first),
                format!("{} is not a valid option in {} files.", first.to_ascii_uppercase(), kind.name()),
            ));
        }
        if toks.get(1).is_some_and(|t| t == ">") {
            if toks.len() > 2 {
                return Err(DatafileError::at(
                    lineno,
                    Some(&keyword),
                    format!("unexpected text after `>`: the value of `{first} >` starts on the next line"),
                ));
            }
            open = Some(Command { keyword, written: first.clone(), line: lineno, value: Value::Block(String::new()) });
            continue;
        }
        if keyword == "settings" {
            return Err(DatafileError::at(
                lineno,
                Some("SETTINGS"),
                "SETTINGS option is not allowed, use ENGINE_SETTINGS instead. See \
                 https://www.tinybird.co/docs/cli/datafiles#data-source for more information.",
            ));
        }
        out.push(Command { keyword, written: first.clone(), line: lineno, value: Value::Args(toks[1..].to_vec()) });
    }
    out.extend(open);
    Ok(out)
}

fn token(cmd: &Command) -> Result<TokenDef, DatafileError> {
    let Value::Args(args) = &cmd.value else {
        return Err(cmd.err("TOKEN does not support multiline arguments"));
    };
    match args.as_slice() {
        [name, permission] => {
            let permission = match permission.to_ascii_uppercase().as_str() {
                "READ" => TokenPermission::Read,
                "APPEND" => TokenPermission::Append,
                _ => {
                    return Err(
                        cmd.err(format!("Invalid permission: {permission}. Only READ and APPEND are supported"))
                    );
                }
            };
            Ok(TokenDef { name: unquote(name).to_owned(), permission })
        }
        [] | [_] => Err(cmd.err("TOKEN takes two params: token name and permission e.g TOKEN \"read api token\" READ")),
        more => Err(cmd.err(format!(
            "Invalid number of arguments for TOKEN command: {}. Expected 2 arguments: token name and permission",
            more.len()
        ))),
    }
}

/// Parses a `.connection` file. `name` is the connection's name (the file name without `.connection`).
///
/// `TYPE` (`kafka`, `s3`, `gcs`, `dynamodb`, …) is required; every other key Tinybird's parser knows for connections
/// is kept in [`ConnectionDef::settings`] in file order, its value as written: a `{{ tb_secret("NAME") }}`
/// placeholder stays a placeholder (Tinybird fills it from the workspace's secrets when it reads the file). An
/// unknown keyword is refused with Tinybird's message, a key given twice as an error.
pub fn parse_connection(name: &str, text: &str) -> Result<ConnectionDef, DatafileError> {
    // Placeholders are set aside before tokenising, which would take their quotes apart, and put back after.
    let mut placeholders: Vec<&str> = Vec::new();
    let mut protected = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}").map(|end| end + 2) else { break };
        protected.push_str(&rest[..start]);
        protected.push_str(&format!("\u{1}{}\u{1}", placeholders.len()));
        placeholders.push(&rest[start..start + len]);
        rest = &rest[start + len..];
    }
    protected.push_str(rest);
    let restore = |value: &str| {
        let mut out = value.to_owned();
        for (i, placeholder) in placeholders.iter().enumerate().rev() {
            out = out.replace(&format!("\u{1}{i}\u{1}"), placeholder);
        }
        out
    };
    let mut def = ConnectionDef { name: name.to_owned(), ..Default::default() };
    let mut seen: Vec<String> = Vec::new();
    for cmd in commands(&protected, Kind::Connection)? {
        if seen.contains(&cmd.keyword) {
            return Err(cmd.err(format!("{} is given twice", cmd.keyword.to_ascii_uppercase())));
        }
        seen.push(cmd.keyword.clone());
        if cmd.keyword == "type" {
            def.kind = restore(&cmd.single()?).to_ascii_lowercase();
            continue;
        }
        match cmd.setting(Kind::Connection)? {
            Some(mut setting) => {
                setting.value = restore(&setting.value);
                def.settings.push(setting);
            }
            None => return Err(cmd.unsupported(Kind::Connection)),
        }
    }
    if def.kind.is_empty() {
        return Err(DatafileError::at(1, Some("TYPE"), "a connection needs a TYPE (kafka, s3, gcs or dynamodb)"));
    }
    Ok(def)
}

/// Parses a `.datasource` file. `name` is the datasource's name (the file name without `.datasource`).
///
/// Every error carries its line and keyword. Unknown keywords are rejected with Tinybird's message
/// (`FOO is not a valid option in datasource files.`), `SETTINGS` with Tinybird's hint to use `ENGINE_SETTINGS`.
/// Keywords Tinybird accepts that [`DatasourceDef`] has no field for (Kafka, import and Postgres connector keys,
/// `FORWARD_QUERY >`, `SHARED_WITH`, `TAGS`, `BACKFILL`, deprecated keywords Tinybird ignores) go to
/// [`DatasourceDef::settings`] in file order, checked as Tinybird checks them (one line or a block, `BACKFILL skip`,
/// the required keys of each connector). Keywords Tinybird refuses (`INCLUDE`, `SOURCE`, `IMPORT_STRATEGY`,
/// `KAFKA_STORE_BINARY_HEADERS`) are refused with Tinybird's message. A keyword given twice is an error, except
/// `TOKEN`, `TAGS` and `SHARED_WITH`, which Tinybird accumulates.
pub fn parse_datasource(name: &str, text: &str) -> Result<DatasourceDef, DatafileError> {
    let mut def = DatasourceDef { name: name.to_owned(), ..Default::default() };
    let mut seen: Vec<String> = Vec::new();
    let mut engine_line = None;
    let mut any_engine_key = false;
    // (lower-case keyword, line) of each kept setting, for the connector checks.
    let mut setting_lines: Vec<(String, usize)> = Vec::new();
    for cmd in commands(text, Kind::Datasource)? {
        let key = cmd.keyword.strip_prefix("engine_").unwrap_or(&cmd.keyword).to_owned();
        let setting = cmd.setting(Kind::Datasource)?;
        let repeatable =
            cmd.keyword == "token" || settings::rule(FileKind::Datasource, &cmd.keyword).is_some_and(|r| r.repeatable);
        // `PARTITION_KEY` and `ENGINE_PARTITION_KEY` are one key; kept settings are told apart by their whole keyword
        // (`VERSION` is not `ENGINE_VERSION`).
        let dedup_key = if setting.is_some() { cmd.keyword.clone() } else { format!("engine_{key}") };
        if !repeatable {
            if seen.contains(&dedup_key) {
                return Err(cmd.err(format!("{} is given twice", cmd.keyword.to_ascii_uppercase())));
            }
            seen.push(dedup_key);
        }
        if let Some(setting) = setting {
            setting_lines.push((cmd.keyword.clone(), cmd.line));
            def.settings.push(setting);
            continue;
        }
        match cmd.keyword.as_str() {
            "description" => def.description = Some(cmd.text()),
            "token" => def.tokens.push(token(&cmd)?),
            "schema" => def.columns = schema(&cmd)?,
            "indexes" => def.indexes = indexes(&cmd)?,
            "engine" => {
                def.engine.kind = cmd.single()?;
                engine_line = Some(cmd.line);
            }
            _ => {
                if !is_engine_key(&key, &cmd.keyword) {
                    return Err(cmd.unsupported(Kind::Datasource));
                }
                let value = match &cmd.value {
                    Value::Block(_) => cmd.block()?,
                    Value::Args(_) => cmd.single()?,
                };
                set_engine_key(&mut def.engine, &key, &cmd, value);
                any_engine_key = true;
            }
        }
    }
    if def.columns.is_empty() {
        return Err(DatafileError::at(text.lines().count().max(1), Some("SCHEMA"), "the datasource has no SCHEMA"));
    }
    if engine_line.is_none() && any_engine_key {
        def.engine.kind = "MergeTree".to_owned();
    }
    check_connectors(&def.settings, &setting_lines)?;
    Ok(def)
}

/// Tinybird's datasource validation of connector keys: each connector's required keys are all present, and an
/// S3/GCS import uses one of the schedules Tinybird allows. Messages are Tinybird's (key lists sorted).
fn check_connectors(settings: &[DatafileSetting], lines: &[(String, usize)]) -> Result<(), DatafileError> {
    let has = |k: &str| lines.iter().any(|(key, _)| key == k);
    // The first of `keys` in the file: its line and keyword are the error's.
    let first_of = |keys: &[&str]| {
        lines.iter().find(|(key, _)| keys.contains(&key.as_str())).map_or((1, None), |(k, l)| (*l, Some(k.clone())))
    };
    let missing = |required: &[&str]| -> Vec<String> {
        let mut out: Vec<String> = required.iter().filter(|k| !has(k)).map(|k| format!("'{k}'")).collect();
        out.sort();
        out
    };
    let check = |all: &[&str], required: &[&str], what: &str| -> Result<(), DatafileError> {
        if all.iter().any(|k| has(k)) {
            let missing = missing(required);
            if !missing.is_empty() {
                let (line, keyword) = first_of(all);
                return Err(DatafileError::at(
                    line,
                    keyword.as_deref(),
                    format!(
                        "Some {what} params have been provided, but the following required ones are missing: [{}]",
                        missing.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    };
    let kafka = ["kafka_connection_name", "kafka_topic", "kafka_group_id"];
    check(&kafka, &kafka, "Kafka")?;
    let dynamodb = ["import_connection_name", "import_table_arn", "import_export_bucket"];
    if has("import_table_arn") || has("import_export_bucket") {
        check(&dynamodb, &dynamodb, "DynamoDB")?;
    } else {
        let required = ["import_connection_name", "import_schedule", "import_bucket_uri"];
        let all = [
            "import_connection_name",
            "import_schedule",
            "import_bucket_uri",
            "import_from_timestamp",
            "import_format",
        ];
        check(&all, &required, "connection")?;
        if let Some(schedule) = settings.iter().find(|s| s.keyword == "IMPORT_SCHEDULE")
            && !["@once", "@on-demand", "@auto"].contains(&schedule.value.as_str())
        {
            return Err(DatafileError::at(
                first_of(&["import_schedule"]).0,
                Some("IMPORT_SCHEDULE"),
                format!(
                    "Invalid import schedule '{}'. Only ['@auto', '@on-demand', '@once'] values are allowed",
                    schedule.value
                ),
            ));
        }
    }
    let postgres = ["pg_connection_name", "pg_table"];
    check(&postgres, &postgres, "Postgres")
}

/// Whether `key` (the keyword without `engine_`) is an engine key. Bare `partition_key`, `sorting_key`,
/// `primary_key`, `sampling_key` and `ttl` are older spellings Tinybird still accepts; bare `version` is a deprecated
/// keyword, not the engine's.
fn is_engine_key(key: &str, keyword: &str) -> bool {
    match key {
        "partition_key" | "sorting_key" | "primary_key" | "sampling_key" | "ttl" => true,
        "ver" | "sign" | "version" | "is_deleted" | "columns" | "settings" => keyword.starts_with("engine_"),
        _ => false,
    }
}

fn set_engine_key(e: &mut EngineDef, key: &str, cmd: &Command, value: String) {
    let slot = match key {
        "partition_key" => &mut e.partition_key,
        "sorting_key" => &mut e.sorting_key,
        "primary_key" => &mut e.primary_key,
        "sampling_key" => &mut e.sampling_key,
        "ttl" => &mut e.ttl,
        "ver" => &mut e.ver,
        "sign" => &mut e.sign,
        "version" if cmd.keyword == "engine_version" => &mut e.version,
        "is_deleted" => &mut e.is_deleted,
        "columns" => &mut e.columns,
        _ => &mut e.settings,
    };
    *slot = Some(value);
}

fn schema(cmd: &Command) -> Result<Vec<ColumnDef>, DatafileError> {
    let text = cmd.block()?;
    let mut columns = Vec::new();
    for (i, column_text) in split_top_level(&strip_sql_comments(&text), ',').into_iter().enumerate() {
        let column_text = column_text.trim();
        if column_text.is_empty() {
            return Err(cmd.err(format!("column {}: empty column (a stray comma?)", i + 1)));
        }
        columns.push(column(column_text).map_err(|m| cmd.err(format!("column {}: {m}", i + 1)))?);
    }
    if columns.is_empty() {
        return Err(cmd.err("no columns"));
    }
    let mut names: Vec<&str> = Vec::new();
    for c in &columns {
        if names.contains(&c.name.as_str()) {
            return Err(cmd.err(format!("column `{}` is declared twice", c.name)));
        }
        names.push(&c.name);
    }
    Ok(columns)
}

/// Removes `-- …` comments (outside quotes), as Tinybird's schema parser does.
fn strip_sql_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == '\\' {
                    out.extend(chars.next());
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '-' && chars.peek() == Some(&'-') => while chars.next_if(|c| *c != '\n').is_some() {},
            None => {
                if matches!(c, '\'' | '"' | '`') {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// Splits on `sep` outside parentheses, brackets and quotes.
fn split_top_level(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if !text[start..].trim().is_empty() || !parts.is_empty() {
        parts.push(&text[start..]);
    }
    parts
}

/// `` `name` Type [DEFAULT expr] [CODEC(…)] [`json:$.path`] `` (the parts after the type in any order).
fn column(text: &str) -> Result<ColumnDef, String> {
    let (name, rest) = if let Some(body) = text.strip_prefix('`') {
        let end = body.find('`').ok_or("unterminated back-quoted column name")?;
        (body[..end].to_owned(), &body[end + 1..])
    } else {
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        (text[..end].to_owned(), &text[end..])
    };
    if name.is_empty() {
        return Err("empty column name".to_owned());
    }
    let rest = rest.trim_start();
    let type_len = type_extent(rest).ok_or_else(|| format!("column `{name}` has no type"))?;
    let ty: ChType = rest[..type_len].parse().map_err(|e| format!("column `{name}`: {e}"))?;
    let mut column = ColumnDef { name, ty: ty.to_string(), ..Default::default() };
    let mut rest = rest[type_len..].trim_start();
    while !rest.is_empty() {
        let word_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let word = rest[..word_len].to_ascii_uppercase();
        if let Some(body) = rest.strip_prefix("`json:") {
            let end = body.find('`').ok_or("unterminated `json:` path")?;
            if column.json_path.is_some() {
                return Err(format!("column `{}` has two JSONPaths", column.name));
            }
            column.json_path = Some(body[..end].trim().to_owned());
            rest = body[end + 1..].trim_start();
        } else if word == "DEFAULT" {
            let body = &rest[word_len..];
            let end = expression_extent(body);
            let expr = body[..end].trim();
            if expr.is_empty() {
                return Err(format!("column `{}`: DEFAULT without an expression", column.name));
            }
            column.default = Some(expr.to_owned());
            rest = body[end..].trim_start();
        } else if word == "CODEC" && rest[word_len..].trim_start().starts_with('(') {
            let body = rest[word_len..].trim_start();
            let close = matching_paren(body).ok_or("unbalanced parentheses in CODEC")?;
            column.codec = Some(body[1..close].trim().to_owned());
            rest = body[close + 1..].trim_start();
        } else if matches!(word.as_str(), "MATERIALIZED" | "ALIAS") {
            // Tinybird's schema parser refuses these (`MATERIALIZED columns are not supported`).
            return Err(format!("column `{}`: {word} columns are not supported", column.name));
        } else if word == "TTL" {
            return Err(format!("column `{}`: column TTL is not supported", column.name));
        } else {
            return Err(format!(
                "column `{}`: unexpected `{}` (expected DEFAULT, CODEC(…) or `json:$.path`)",
                column.name,
                rest.split_whitespace().next().unwrap_or(rest)
            ));
        }
    }
    Ok(column)
}

/// Length of the type at the start of `text`: a name, then a balanced `( … )` if one follows.
fn type_extent(text: &str) -> Option<usize> {
    let name_len = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
    if name_len == 0 {
        return None;
    }
    let after = &text[name_len..];
    let spaces = after.len() - after.trim_start().len();
    if after.trim_start().starts_with('(') {
        let close = matching_paren(after.trim_start())?;
        return Some(name_len + spaces + close + 1);
    }
    Some(name_len)
}

/// Index of the `)` matching the `(` that starts `text`, skipping quoted strings.
fn matching_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Where a DEFAULT expression ends: at a top-level `` `json: `` or `CODEC(`, or the end.
fn expression_extent(text: &str) -> usize {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '`' if depth == 0 => return i,
            '\'' | '"' | '`' => quote = Some(c),
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            _ if depth == 0 => {
                let boundary = i == 0 || text[..i].ends_with(char::is_whitespace);
                let rest = &text[i..];
                if boundary
                    && rest.get(..5).is_some_and(|w| w.eq_ignore_ascii_case("CODEC"))
                    && rest[5..].trim_start().starts_with('(')
                {
                    return i;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// `name expr TYPE type [GRANULARITY n]` per line (a leading `INDEX` and a trailing comma allowed).
fn indexes(cmd: &Command) -> Result<Vec<IndexDef>, DatafileError> {
    let text = cmd.block()?;
    let mut out: Vec<IndexDef> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim().trim_end_matches(',').trim();
        if line.is_empty() {
            continue;
        }
        let line = match line.get(..6) {
            Some(prefix) if prefix.eq_ignore_ascii_case("INDEX ") => line[6..].trim_start(),
            _ => line,
        };
        let usage = "invalid INDEX format. Usage: `name expr TYPE type_full GRANULARITY granularity`";
        let err = |m: &str| cmd.err(format!("index {}: {m}", i + 1));
        let parts: Vec<&str> = line.split(" TYPE ").collect();
        let [head, tail] = parts.as_slice() else { return Err(err(usage)) };
        let (name, expr) = head.trim().split_once(char::is_whitespace).ok_or_else(|| err(usage))?;
        let (ty, granularity) = match tail.split_once(" GRANULARITY ") {
            Some((ty, g)) => {
                let g =
                    g.trim().parse::<u32>().map_err(|_| err(&format!("GRANULARITY `{}` is not a number", g.trim())))?;
                (ty.trim(), g)
            }
            // ClickHouse's default.
            None => (tail.trim(), 1),
        };
        if ty.is_empty() || expr.trim().is_empty() {
            return Err(err(usage));
        }
        if out.iter().any(|x| x.name == name) {
            return Err(err(&format!("index `{name}` is declared twice")));
        }
        out.push(IndexDef { name: name.to_owned(), expr: expr.trim().to_owned(), ty: ty.to_owned(), granularity });
    }
    Ok(out)
}

/// Parses a `.pipe` file. `name` is the pipe's name (the file name without `.pipe`).
///
/// Checks what Tinybird checks: `SQL >` is multi-line and follows a `NODE`, tokens are `READ`, there is at least one
/// node and at most one non-standard node (`Multiple non-standard nodes in pipe. There can only be one`); and what
/// this SDK's model needs: the non-standard node is the last one and every node has SQL. Node SQL is dedented.
///
/// `TAGS`, `VERSION`, `EXPORT_SERVICE` (before the first `NODE`: [`PipeDef::settings`]; after one: that node's
/// [`NodeDef::settings`]) and the node keys `FILTER` and `ON_DEMAND_COMPUTE` are kept in file order without being
/// interpreted; `INCLUDE` is refused with Tinybird's `INCLUDE is not supported yet`, `SCOPE` as not supported here.
pub fn parse_pipe(name: &str, text: &str) -> Result<PipeDef, DatafileError> {
    let mut def = PipeDef { name: name.to_owned(), ..Default::default() };
    // (type, line) per node, and the keys that go with the typed node.
    let mut types: Vec<Option<(String, usize)>> = Vec::new();
    let mut keys: Vec<(String, String, usize)> = Vec::new();
    let mut node_lines: Vec<usize> = Vec::new();
    let mut seen_settings: Vec<(usize, String)> = Vec::new();
    // The line of each node's settings, to point Tinybird's node checks at them.
    let mut node_setting_lines: Vec<Vec<usize>> = Vec::new();
    for cmd in commands(text, Kind::Pipe)? {
        let in_node = !def.nodes.is_empty();
        let need_node = |cmd: &Command| {
            if in_node { Ok(()) } else { Err(cmd.err(format!("{} must be called after a NODE command", cmd.keyword))) }
        };
        match cmd.keyword.as_str() {
            "node" => {
                let node_name = cmd.single()?;
                if def.nodes.iter().any(|n| n.name == node_name) {
                    return Err(cmd.err(format!("node `{node_name}` is declared twice")));
                }
                def.nodes.push(NodeDef { name: node_name, ..Default::default() });
                node_setting_lines.push(Vec::new());
                types.push(None);
                node_lines.push(cmd.line);
            }
            "description" => match def.nodes.last_mut() {
                Some(node) => node.description = Some(cmd.text()),
                None => def.description = Some(cmd.text()),
            },
            "sql" => {
                let sql = match &cmd.value {
                    Value::Block(_) => cmd.block()?,
                    Value::Args(_) => {
                        return Err(cmd.err("SQL must be multiline: use > to start a multiline SQL block"));
                    }
                };
                let Some(node) = def.nodes.last_mut() else {
                    return Err(cmd.err("SQL must be called after a NODE command"));
                };
                // Tinybird renders every template node while parsing, so template errors surface here too.
                if let Some(body) = tinybird_template::template_body(&sql)
                    && let Err(e) = tinybird_template::Template::parse(body)
                {
                    let leading_blank = match &cmd.value {
                        Value::Block(raw) => raw.lines().take_while(|l| l.trim().is_empty()).count(),
                        Value::Args(_) => 0,
                    };
                    let line = cmd.line + 1 + leading_blank + e.line().saturating_sub(1);
                    return Err(DatafileError::at(line, Some("SQL"), format!("node `{}`: {}", node.name, e.message())));
                }
                node.sql = sql;
            }
            "type" => {
                need_node(&cmd)?;
                let ty = cmd.single()?.to_ascii_lowercase();
                if !matches!(ty.as_str(), "endpoint" | "materialized" | "copy" | "sink" | "standard" | "default") {
                    return Err(cmd.err(format!(
                        "Invalid node type ({ty}). Allowed node types: endpoint, materialized, copy, sink, standard"
                    )));
                }
                if let Some(slot) = types.last_mut() {
                    *slot = Some((ty, cmd.line));
                }
            }
            "token" => {
                let token = token(&cmd)?;
                if token.permission != TokenPermission::Read {
                    return Err(cmd.err(format!(
                        "Invalid permission APPEND for token {}. Only READ is allowed for pipes",
                        token.name
                    )));
                }
                def.tokens.push(token);
            }
            "datasource" | "target_datasource" | "copy_schedule" | "copy_mode" | "mode" => {
                need_node(&cmd)?;
                let key = if cmd.keyword == "mode" { "copy_mode".to_owned() } else { cmd.keyword.clone() };
                keys.push((key, cmd.single()?, cmd.line));
            }
            "deployment_method" => {
                let value = cmd.single()?;
                if !value.eq_ignore_ascii_case("alter") {
                    return Err(cmd.err(format!(
                        "{value} is not an allowed value for DEPLOYMENT_METHOD. Use one of: {{'alter'}}"
                    )));
                }
                keys.push((cmd.keyword.clone(), value, cmd.line));
            }
            k if k.starts_with("export_") && k != "export_service" => {
                keys.push((cmd.keyword.clone(), cmd.single()?, cmd.line));
            }
            _ => {
                let Some(setting) = cmd.setting(Kind::Pipe)? else { return Err(cmd.unsupported(Kind::Pipe)) };
                let rule = settings::rule(FileKind::Pipe, &cmd.keyword);
                if rule.is_some_and(|r| r.needs_node) {
                    need_node(&cmd)?;
                }
                // Node-level keys belong to their node, so the same key in two nodes is no repeat.
                let scoped = (def.nodes.len(), cmd.keyword.clone());
                if !rule.is_some_and(|r| r.repeatable) {
                    if seen_settings.contains(&scoped) {
                        return Err(cmd.err(format!("{} is given twice", setting.keyword)));
                    }
                    seen_settings.push(scoped);
                }
                match (def.nodes.last_mut(), node_setting_lines.last_mut()) {
                    (Some(node), Some(lines)) => {
                        node.settings.push(setting);
                        lines.push(cmd.line);
                    }
                    _ => def.settings.push(setting),
                }
            }
        }
    }
    if def.nodes.is_empty() {
        return Err(DatafileError::at(
            text.lines().count().max(1),
            Some("NODE"),
            "Pipe data file must have at least one node",
        ));
    }
    for (node, line) in def.nodes.iter().zip(&node_lines) {
        if node.sql.trim().is_empty() {
            return Err(DatafileError::at(*line, Some("NODE"), format!("node `{}` has no SQL", node.name)));
        }
    }
    let non_standard: Vec<(usize, &str, usize)> = types
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.as_ref().map(|(ty, line)| (i, ty.as_str(), *line)))
        .filter(|(_, ty, _)| !matches!(*ty, "standard" | "default"))
        .collect();
    if let Some((_, _, line)) = non_standard.get(1) {
        return Err(DatafileError::at(
            *line,
            Some("TYPE"),
            "Multiple non-standard nodes in pipe. There can only be one",
        ));
    }
    let key = |name: &str| keys.iter().find(|(k, _, _)| k == name).map(|(_, v, _)| v.clone());
    def.kind = match non_standard.first() {
        None => PipeKind::Standard,
        Some(&(index, ty, line)) => {
            if index + 1 != def.nodes.len() {
                return Err(DatafileError::at(
                    line,
                    Some("TYPE"),
                    format!("the {ty} node `{}` must be the last node of the pipe", def.nodes[index].name),
                ));
            }
            let missing = |k: &str| {
                DatafileError::at(line, Some("TYPE"), format!("a {ty} node needs {}", k.to_ascii_uppercase()))
            };
            match ty {
                "endpoint" => PipeKind::Endpoint,
                "materialized" => PipeKind::Materialized {
                    datasource: key("datasource").ok_or_else(|| missing("datasource"))?,
                    deployment_method: key("deployment_method"),
                },
                "copy" => PipeKind::Copy {
                    target_datasource: key("target_datasource").ok_or_else(|| missing("target_datasource"))?,
                    schedule: key("copy_schedule"),
                    mode: key("copy_mode"),
                },
                _ => PipeKind::Sink {
                    settings: keys
                        .iter()
                        .filter(|(k, _, _)| k.starts_with("export_"))
                        .map(|(k, v, _)| (k.to_ascii_uppercase(), v.clone()))
                        .collect(),
                },
            }
        }
    };
    let last = def.nodes.len() - 1;
    for (i, (node, lines)) in def.nodes.iter().zip(&node_setting_lines).enumerate() {
        let node_type = if i == last { def.kind.type_name() } else { None };
        settings::check_node(node_type, &node.name, &node.settings).map_err(|(index, message)| {
            DatafileError::at(lines[index], Some(&node.settings[index].keyword), message)
        })?;
    }
    // Keys that the pipe's kind does not use would otherwise vanish.
    let allowed: &[&str] = match &def.kind {
        PipeKind::Materialized { .. } => &["datasource", "deployment_method"],
        PipeKind::Copy { .. } => &["target_datasource", "copy_schedule", "copy_mode"],
        PipeKind::Sink { .. } => &[],
        PipeKind::Standard | PipeKind::Endpoint => &[],
    };
    for (k, _, line) in &keys {
        let sink_key = matches!(def.kind, PipeKind::Sink { .. }) && k.starts_with("export_");
        if !allowed.contains(&k.as_str()) && !sink_key {
            let kind = def.kind.type_name().unwrap_or("standard");
            return Err(DatafileError::at(
                *line,
                Some(k),
                format!("{} does not apply to a {kind} pipe", k.to_ascii_uppercase()),
            ));
        }
    }
    Ok(def)
}
