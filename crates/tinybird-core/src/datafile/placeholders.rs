//! Finding typed param placeholders (`{{ Int32(limit, 10, description="…") }}`) in node SQL, reading their
//! metadata and injecting a param's default, `required` and description into them.
//!
//! Blocks are delimited like Tornado does it: a `{{` block ends at the first `}}`, a `{%` block at the first `%}`,
//! whatever quotes lie between; `{{!`/`{%!` are literal text and `{# … #}` a comment.

use crate::def::ParamDef;
use tinybird_template::registry;

/// One argument of a call, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arg {
    /// The keyword, for `name=value` arguments.
    pub keyword: Option<String>,
    /// The value's source text, trimmed.
    pub value: String,
}

/// A typed function call whose first argument is a bare name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub function: String,
    pub param: String,
    pub args: Vec<Arg>,
    /// Byte offset just after the last argument's text: where new arguments go.
    pub insert_at: usize,
    /// Whether the call is in a `{{ }}` block (metadata is injected only there).
    pub in_expression: bool,
}

impl Call {
    fn positional(&self) -> impl Iterator<Item = &Arg> {
        self.args.iter().filter(|a| a.keyword.is_none())
    }

    fn keyword(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.keyword.as_deref() == Some(name))
    }

    /// Index of the positional default: `Array(x, 'T', default)` has it third, the others second.
    fn default_index(&self) -> usize {
        if self.function == "Array" { 2 } else { 1 }
    }

    /// The param this call declares.
    pub(crate) fn to_param(&self) -> ParamDef {
        let ty = match self.function.as_str() {
            "Int" | "Integer" => "Int32".to_owned(),
            "column" => "String".to_owned(),
            "Array" => {
                let inner = self.positional().nth(1).or_else(|| self.keyword("type"));
                let inner = inner.and_then(|a| python_string(&a.value)).unwrap_or_else(|| "String".to_owned());
                format!("Array({inner})")
            }
            other => other.to_owned(),
        };
        let default = self
            .positional()
            .nth(self.default_index())
            .or_else(|| self.keyword("default"))
            .map(|a| a.value.clone())
            .filter(|v| v != "None");
        let required = self.keyword("required").is_some_and(|a| a.value == "True");
        let description = self.keyword("description").and_then(|a| python_string(&a.value));
        ParamDef { name: self.param.clone(), ty, required, default, description }
    }

    /// The arguments to append so the call carries `param`'s default, `required` and description, when missing.
    fn missing_metadata(&self, param: &ParamDef) -> Vec<String> {
        let mut extra = Vec::new();
        let has_keywords = self.args.iter().any(|a| a.keyword.is_some());
        if let Some(default) = &param.default {
            let positional = self.positional().count();
            if positional <= self.default_index() && self.keyword("default").is_none() {
                // A positional default only fits right after the existing positional arguments.
                if !has_keywords && positional == self.default_index() {
                    extra.push(default.clone());
                } else {
                    extra.push(format!("default={default}"));
                }
            }
        }
        // Boolean() takes no metadata; column() only a default (as in Tinybird's docs).
        if matches!(self.function.as_str(), "Boolean" | "column") {
            return extra;
        }
        if param.required && self.keyword("required").is_none() {
            extra.push("required=True".to_owned());
        }
        if let Some(description) = &param.description
            && self.keyword("description").is_none()
        {
            extra.push(format!("description={}", python_literal(description)));
        }
        extra
    }
}

/// Every typed call in `sql` whose first argument is a bare name, in order.
pub(crate) fn typed_calls(sql: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    for (start, end, in_expression) in blocks(sql) {
        scan_block(sql, start, end, in_expression, &mut calls);
    }
    calls
}

/// `sql` with the metadata of `params` injected into the `{{ }}` calls that use them.
pub(crate) fn inject(sql: &str, params: &[ParamDef]) -> String {
    let mut inserts: Vec<(usize, String)> = Vec::new();
    for call in typed_calls(sql) {
        if !call.in_expression {
            continue;
        }
        let Some(param) = params.iter().find(|p| p.name == call.param) else { continue };
        let extra = call.missing_metadata(param);
        if !extra.is_empty() {
            inserts.push((call.insert_at, format!(", {}", extra.join(", "))));
        }
    }
    let mut out = sql.to_owned();
    // From the end, so earlier offsets stay valid.
    for (at, text) in inserts.into_iter().rev() {
        out.insert_str(at, &text);
    }
    out
}

/// `(start, end, is_expression)` of the inside of each `{{ }}` and `{% %}` block.
fn blocks(sql: &str) -> Vec<(usize, usize, bool)> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        let close = match bytes[i + 1] {
            b'{' => "}}",
            b'%' => "%}",
            b'#' => "#}",
            _ => {
                i += 1;
                continue;
            }
        };
        let inner_start = i + 2;
        let Some(len) = sql[inner_start..].find(close) else { break };
        let literal = bytes.get(inner_start) == Some(&b'!');
        if close != "#}" && !literal {
            out.push((inner_start, inner_start + len, close == "}}"));
        }
        i = inner_start + len + 2;
    }
    out
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Skips a quoted string starting at `i`; returns the index after its closing quote (or `end`).
fn skip_string(bytes: &[u8], mut i: usize, end: usize) -> usize {
    let quote = bytes[i];
    i += 1;
    while i < end {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    end
}

fn scan_block(sql: &str, start: usize, end: usize, in_expression: bool, calls: &mut Vec<Call>) {
    let bytes = sql.as_bytes();
    let mut i = start;
    while i < end {
        let b = bytes[i];
        if b == b'\'' || b == b'"' {
            i = skip_string(bytes, i, end);
            continue;
        }
        if !is_ident_start(b) || (i > start && (is_ident(bytes[i - 1]) || bytes[i - 1] == b'.')) {
            i += 1;
            continue;
        }
        let name_end = (i..end).find(|&j| !is_ident(bytes[j])).unwrap_or(end);
        let name = &sql[i..name_end];
        let mut j = name_end;
        while j < end && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j < end
            && bytes[j] == b'('
            && registry::param_function(name).is_some_and(|f| f.carries_metadata)
            && let Some(call) = parse_call(sql, name, j, end, in_expression)
        {
            calls.push(call);
        }
        i = name_end;
    }
}

/// Parses the arguments of the call whose `(` is at `open`.
fn parse_call(sql: &str, function: &str, open: usize, end: usize, in_expression: bool) -> Option<Call> {
    let bytes = sql.as_bytes();
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut arg_start = open + 1;
    let mut last_end = open + 1;
    let mut i = open + 1;
    while i < end {
        match bytes[i] {
            b'\'' | b'"' => {
                i = skip_string(bytes, i, end);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth > 0 => depth -= 1,
            b',' | b')' if depth == 0 => {
                let raw = &sql[arg_start..i];
                if !raw.trim().is_empty() {
                    let lead = raw.len() - raw.trim_start().len();
                    last_end = arg_start + lead + raw.trim().len();
                    args.push(split_keyword(raw.trim()));
                }
                if bytes[i] == b')' {
                    let first = args.first()?;
                    let bare = first.keyword.is_none()
                        && first.value.bytes().next().is_some_and(is_ident_start)
                        && first.value.bytes().all(is_ident);
                    if !bare {
                        return None;
                    }
                    return Some(Call {
                        function: function.to_owned(),
                        param: first.value.clone(),
                        args,
                        insert_at: last_end,
                        in_expression,
                    });
                }
                arg_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// `name=value` (not `==`) → keyword argument.
fn split_keyword(arg: &str) -> Arg {
    let ident_len = arg.bytes().take_while(|&b| is_ident(b)).count();
    if ident_len > 0 && arg.bytes().next().is_some_and(is_ident_start) {
        let rest = arg[ident_len..].trim_start();
        if rest.starts_with('=') && !rest.starts_with("==") {
            return Arg { keyword: Some(arg[..ident_len].to_owned()), value: rest[1..].trim().to_owned() };
        }
    }
    Arg { keyword: None, value: arg.to_owned() }
}

/// The value of a Python string literal (`'a'`, `"b\n"`), or `None` when `text` is not one.
pub(crate) fn python_string(text: &str) -> Option<String> {
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = text.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == quote {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            'x' => out.push(hex_char(&mut chars, 2)?),
            'u' => out.push(hex_char(&mut chars, 4)?),
            'U' => out.push(hex_char(&mut chars, 8)?),
            other @ ('\\' | '\'' | '"') => out.push(other),
            other => {
                // Python keeps unknown escapes as written.
                out.push('\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

fn hex_char(chars: &mut std::str::Chars<'_>, n: usize) -> Option<char> {
    let digits: String = chars.take(n).collect();
    if digits.len() != n {
        return None;
    }
    char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
}

/// A double-quoted Python string literal for `text`. Braces and `%` are written as `\u` escapes so the literal can
/// never close the template block it sits in (Tornado ends a block at the first `}}` or `%}`, even inside quotes).
pub(crate) fn python_literal(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '{' | '}' | '%' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, ty: &str) -> ParamDef {
        ParamDef { name: name.into(), ty: ty.into(), ..Default::default() }
    }

    #[test]
    fn finds_typed_calls_with_metadata() {
        let sql = "%\nSELECT {{ Int32(limit, 10, description=\"max rows\") }}, {{ String(c) }}\n\
                   {% if defined(ids) %} AND id IN {{ Array(ids, 'UInt64', required=True) }} {% end %}";
        let params: Vec<ParamDef> = typed_calls(sql).iter().map(Call::to_param).collect();
        assert_eq!(
            params,
            [
                ParamDef {
                    default: Some("10".into()),
                    description: Some("max rows".into()),
                    ..param("limit", "Int32")
                },
                param("c", "String"),
                ParamDef { required: true, ..param("ids", "Array(UInt64)") },
            ]
        );
    }

    #[test]
    fn skips_literals_comments_and_non_param_calls() {
        let sql = "{{! String(a) }} {# Int32(b) #} {{ String('lit') }} {{ x.String(c) }} {{ toString(d) }}";
        assert_eq!(typed_calls(sql), []);
    }

    #[test]
    fn injects_missing_metadata_only() {
        let params = [
            ParamDef { required: true, description: Some("The \"org\"".into()), ..param("org", "String") },
            ParamDef { default: Some("10".into()), ..param("limit", "Int32") },
            ParamDef { default: Some("'1,2'".into()), ..param("ids", "Array(Int32)") },
            ParamDef { default: Some("1".into()), required: true, ..param("flag", "Boolean") },
        ];
        let sql = "{{String(org)}} {{ Int32(limit, 5) }} {{Array(ids)}} {{ Boolean(flag) }} {% if String(org) %}";
        assert_eq!(
            inject(sql, &params),
            "{{String(org, required=True, description=\"The \\\"org\\\"\")}} {{ Int32(limit, 5) }} \
             {{Array(ids, default='1,2')}} {{ Boolean(flag, 1) }} {% if String(org) %}"
        );
    }

    #[test]
    fn python_literals_round_trip() {
        for text in ["plain", "quote \" and ' and \\", "multi\nline\ttab", "braces }} {% %}", "ünïcødé"] {
            assert_eq!(python_string(&python_literal(text)).as_deref(), Some(text));
        }
    }
}
