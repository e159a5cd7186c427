//! NDJSON ingestion: each line becomes a row, or a quarantined row with the reason.

use crate::engine::Value;
use crate::engine::functions::parse_datetime_ns;
use crate::types::ChType;
use chrono::NaiveDate;
use serde_json::Value as Json;
use tinybird_core::__private::rowjson::{self, Cursor};

/// A datasource column as ingestion sees it.
#[derive(Debug, Clone)]
pub(crate) struct IngestColumn {
    /// Column name.
    pub name: String,
    /// Column type.
    pub ty: ChType,
    /// JSONPath segments (`$.user.id` → `["user", "id"]`); a trailing `[:]` is dropped.
    pub path: Vec<String>,
    /// A literal `DEFAULT`, already converted.
    pub default: Option<Value>,
}

impl IngestColumn {
    /// Builds the column from its definition.
    pub(crate) fn new(name: &str, ty: ChType, json_path: Option<&str>, default: Option<&str>) -> IngestColumn {
        let path = match json_path {
            Some(p) => p
                .trim()
                .trim_start_matches('$')
                .trim_start_matches('.')
                .trim_end_matches("[:]")
                .split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            None => vec![name.to_string()],
        };
        let default = default.and_then(|d| default_value(d.trim(), &ty));
        IngestColumn { name: name.to_string(), ty, path, default }
    }
}

fn default_value(text: &str, ty: &ChType) -> Option<Value> {
    let json = if let Some(s) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        Json::String(s.replace("\\'", "'"))
    } else if text.eq_ignore_ascii_case("now()") {
        Json::String(chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string())
    } else {
        serde_json::from_str(text).ok()?
    };
    convert(&json, ty).ok()
}

/// One row that did not fit: the original values as text and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Quarantined {
    /// Per column: the value as sent (JSON text), or None when missing.
    pub values: Vec<Option<String>>,
    /// Columns in error.
    pub error_columns: Vec<String>,
    /// Messages, one per error.
    pub errors: Vec<String>,
}

/// The outcome of parsing a body.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Rows that fit, in column order.
    pub rows: Vec<Vec<Value>>,
    /// Rows that did not.
    pub quarantined: Vec<Quarantined>,
}

/// Parses NDJSON (or one JSON object) against the columns. Blank lines are skipped.
pub(crate) fn parse_ndjson(body: &[u8], columns: &[IngestColumn]) -> Parsed {
    let mut parsed = Parsed::default();
    let plan = FastPlan::new(columns);
    let mut slots = Vec::with_capacity(columns.len());
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    for end in ends {
        let line = &body[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(plan) = &plan
            && let Some(row) = plan.parse(line, &mut slots)
        {
            parsed.rows.push(row);
            continue;
        }
        match parse_line(line, columns) {
            Ok(row) => parsed.rows.push(row),
            Err(q) => parsed.quarantined.push(q),
        }
    }
    parsed
}

/// The fast path for the common row: a flat JSON object read straight into typed values, with no intermediate
/// `serde_json::Value` tree. It accepts only what it converts exactly as [`convert`] does (numbers into numeric
/// columns, strings into string and date-time columns, nulls into `Nullable` ones); for anything else — a nested
/// JSONPath, a number sent as a string, a value that does not fit, a malformed line — it gives up on the line and
/// [`parse_line`] reads it again, so quarantine records and their messages come from one place.
struct FastPlan<'a> {
    columns: &'a [IngestColumn],
    /// The top-level key of each column, in column order.
    keys: Vec<&'a str>,
}

impl<'a> FastPlan<'a> {
    /// None when some column reads a nested path or two columns read the same key.
    fn new(columns: &'a [IngestColumn]) -> Option<FastPlan<'a>> {
        let mut keys = Vec::with_capacity(columns.len());
        for c in columns {
            let [key] = c.path.as_slice() else { return None };
            if keys.contains(&key.as_str()) {
                return None;
            }
            keys.push(key.as_str());
        }
        Some(FastPlan { columns, keys })
    }

    /// The column a key feeds. Rows usually list their keys in column order, so the column after the previous
    /// key's is tried first; otherwise a scan (datasources have tens of columns, where a scan beats hashing).
    fn column_of(&self, key: &str, expected: usize) -> Option<usize> {
        if self.keys.get(expected) == Some(&key) {
            return Some(expected);
        }
        self.keys.iter().position(|k| *k == key)
    }

    /// The row of one line, or None for the general path. `slots` is scratch space reused from line to line.
    fn parse(&self, line: &[u8], slots: &mut Vec<Option<Value>>) -> Option<Vec<Value>> {
        let mut c = Cursor::new(std::str::from_utf8(line).ok()?);
        slots.clear();
        slots.resize(self.columns.len(), None);
        let mut expected = 0;
        // A key with escapes is left to the general path.
        c.entries(|c, key| match self.column_of(key, expected) {
            // A later duplicate key wins, as in the general path.
            Some(i) => {
                expected = i + 1;
                slots[i] = Some(cell(c, &self.columns[i].ty)?);
                Some(())
            }
            None => c.skip_value(),
        })?;
        if !c.at_end() {
            return None;
        }
        let mut row = Vec::with_capacity(self.columns.len());
        for (col, slot) in self.columns.iter().zip(slots.iter_mut()) {
            row.push(match slot.take() {
                Some(v) => v,
                None => missing(col)?,
            });
        }
        Some(row)
    }
}

/// One cell of a known type read in place, or `None` when the JSON value is not one the fast path converts (the
/// general path then reads the line). Numbers and strings are taken as serde_json would hand them to [`convert`].
fn cell(c: &mut Cursor<'_>, ty: &ChType) -> Option<Value> {
    match c.peek_after_ws()? {
        b'"' => match c.plain_str() {
            Some(s) => text_cell(s, ty),
            None => text_cell(&c.string()?, ty),
        },
        b'n' => {
            if !c.null() {
                return None;
            }
            ty.is_nullable().then_some(Value::Null)
        }
        b't' | b'f' => {
            let b = c.bool_literal()?;
            match ty.base() {
                ChType::Bool => Some(Value::Bool(b)),
                _ => int_cell(ty, i128::from(b)),
            }
        }
        b'[' => {
            let ChType::Array(inner) = ty.base() else { return None };
            c.array(|c| cell(c, inner)).map(Value::Array)
        }
        b'{' => None,
        _ => {
            let (text, integer) = c.number()?;
            match ty.base() {
                ChType::Float(_) => rowjson::float_text(text, integer).map(Value::Float),
                ChType::Int { .. } if integer => int_cell(ty, rowjson::int_text::<i128>(text)?),
                _ => None,
            }
        }
    }
}

/// A date-time text as nanoseconds since the epoch, any year (a DateTime64(3) reaches 2299).
fn datetime_ns(s: &str) -> Option<i128> {
    let t = crate::engine::functions::parse_datetime(s.trim())?.and_utc();
    Some(i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos()))
}

fn text_cell(s: &str, ty: &ChType) -> Option<Value> {
    match ty.base() {
        ChType::String => Some(Value::Str(s.to_owned())),
        ChType::DateTime { .. } => datetime_ns(s).map(Value::DateTime),
        ChType::Date { .. } => date_from_text(s).ok(),
        _ => None,
    }
}

fn int_cell(ty: &ChType, n: i128) -> Option<Value> {
    let ChType::Int { signed, bits } = *ty.base() else { return None };
    int_value(n, signed, bits)
}

fn whole_line_error(columns: &[IngestColumn], message: String) -> Quarantined {
    Quarantined { values: vec![None; columns.len()], error_columns: vec![], errors: vec![message] }
}

fn parse_line(line: &[u8], columns: &[IngestColumn]) -> Result<Vec<Value>, Quarantined> {
    let text = std::str::from_utf8(line)
        .map_err(|e| whole_line_error(columns, format!("invalid UTF-8 in the row at byte {}", e.valid_up_to())))?;
    let json: Json = serde_json::from_str(text)
        .map_err(|e| whole_line_error(columns, format!("invalid JSON: {e}: {}", truncate(text, 200))))?;
    let Json::Object(_) = &json else {
        return Err(whole_line_error(columns, format!("the row is not a JSON object: {}", truncate(text, 200))));
    };
    // The common case: every column fits. Nothing is kept for a quarantine record until a column does not.
    let mut row = Vec::with_capacity(columns.len());
    for c in columns {
        let value = match lookup(&json, c) {
            None => missing(c),
            Some(v) => convert(v, &c.ty).ok(),
        };
        match value {
            Some(v) => row.push(v),
            None => return Err(quarantine(&json, columns)),
        }
    }
    Ok(row)
}

/// The quarantine record of a row with at least one column that does not fit: every value as sent, and every error.
fn quarantine(json: &Json, columns: &[IngestColumn]) -> Quarantined {
    let mut q = Quarantined { values: Vec::with_capacity(columns.len()), error_columns: vec![], errors: vec![] };
    for c in columns {
        let node = lookup(json, c);
        let shown = node.map(|n| match n {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        });
        let error = match node {
            None if missing(c).is_some() => None,
            None => Some(format!("value is missing for column '{}' of type {}", c.name, c.ty)),
            Some(v) => convert(v, &c.ty).err().map(|Mismatch| {
                format!(
                    "value '{}' on column '{}' is not {}",
                    truncate(shown.as_deref().unwrap_or_default(), 200),
                    c.name,
                    c.ty
                )
            }),
        };
        if let Some(error) = error {
            q.error_columns.push(c.name.clone());
            q.errors.push(error);
        }
        q.values.push(shown);
    }
    debug_assert!(!q.errors.is_empty(), "quarantine() is called only for a row with a column that does not fit");
    q
}

/// The JSON value a column reads: its JSONPath followed from the row's object.
fn lookup<'j>(json: &'j Json, column: &IngestColumn) -> Option<&'j Json> {
    column.path.iter().try_fold(json, |node, key| node.get(key))
}

/// What a column absent from the row becomes: its `DEFAULT`, else NULL when it is `Nullable`; None when it is
/// required.
fn missing(column: &IngestColumn) -> Option<Value> {
    column.default.clone().or_else(|| column.ty.is_nullable().then_some(Value::Null))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A value of a type only ClickHouse stores, checked for its shape and kept as the JSON to send: integers as
/// digits in range, decimals as numbers, maps as objects, tuples as arrays or objects.
fn opaque(v: &Json, name: &str) -> Result<Value, Mismatch> {
    let head = name.split('(').next().unwrap_or("").trim();
    match head {
        "Int128" | "Int256" | "UInt128" | "UInt256" => {
            let digits = match v {
                Json::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                Json::String(s) => s.trim().to_string(),
                _ => return Err(Mismatch),
            };
            let (negative, body) = match digits.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, digits.strip_prefix('+').unwrap_or(&digits)),
            };
            if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) || (negative && head.starts_with('U')) {
                return Err(Mismatch);
            }
            let fits = match head {
                "Int128" => digits.parse::<i128>().is_ok(),
                "UInt128" => body.parse::<u128>().is_ok(),
                // Compared as digit strings against the bounds: 2^256 - 1, 2^255 - 1 and 2^255.
                _ => {
                    let limit = match (head, negative) {
                        ("UInt256", _) => {
                            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
                        }
                        (_, false) => "57896044618658097711785492504343953926634992332820282019728792003956564819967",
                        (_, true) => "57896044618658097711785492504343953926634992332820282019728792003956564819968",
                    };
                    let digits = body.trim_start_matches('0');
                    digits.len() < limit.len() || (digits.len() == limit.len() && digits <= limit)
                }
            };
            if !fits {
                return Err(Mismatch);
            }
            Ok(Value::Str(if negative { format!("-{body}") } else { body.to_string() }))
        }
        // Aggregate states are ClickHouse's binary form: a materialized view writes them, JSON never carries them.
        "AggregateFunction" => Err(Mismatch),
        "Map" => match v {
            Json::Object(_) => Ok(Value::Str(v.to_string())),
            _ => Err(Mismatch),
        },
        // ClickHouse reads a named tuple as an object and an unnamed one as an array: either form is accepted here
        // and sent in the one ClickHouse reads.
        "Tuple" => {
            let names = tuple_names(name);
            match (v, names) {
                (Json::Array(items), Some(names)) if items.len() == names.len() => {
                    let object: serde_json::Map<String, Json> = names.into_iter().zip(items.iter().cloned()).collect();
                    Ok(Value::Str(Json::Object(object).to_string()))
                }
                (Json::Object(_), Some(_)) | (Json::Array(_), None) => Ok(Value::Str(v.to_string())),
                _ => Err(Mismatch),
            }
        }
        _ => match v {
            Json::Number(n) => Ok(Value::Str(n.to_string())),
            Json::String(s) if s.trim().parse::<f64>().is_ok() => Ok(Value::Str(s.trim().to_string())),
            _ => Err(Mismatch),
        },
    }
}

/// The element names of a named tuple type (`Tuple(a String, b UInt8)` → `a`, `b`); None for an unnamed one.
fn tuple_names(ty: &str) -> Option<Vec<String>> {
    let inner = ty.trim().strip_prefix("Tuple(")?.strip_suffix(')')?;
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .iter()
        .map(|p| {
            let p = p.trim();
            let (name, ty) = p.split_once(char::is_whitespace)?;
            // `Nullable(String)` has no space before its parenthesis; `a Nullable(String)` has a name.
            (!name.contains('(') && !ty.trim().is_empty()).then(|| name.trim_matches('`').to_string())
        })
        .collect()
}

/// A value that does not fit its column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mismatch;

/// Converts a JSON value to a column type, as ClickHouse's JSON input does (numbers may arrive as strings).
pub(crate) fn convert(v: &Json, ty: &ChType) -> Result<Value, Mismatch> {
    match (v, ty) {
        (Json::Null, ChType::Nullable(_)) => Ok(Value::Null),
        (_, ChType::Nullable(inner) | ChType::LowCardinality(inner)) => convert(v, inner),
        (Json::Null, _) => Err(Mismatch),
        (_, ChType::Int { signed, bits }) => {
            let n: i128 = match v {
                Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => i as i128,
                    (_, Some(u), _) => u as i128,
                    (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e19 => f as i128,
                    _ => return Err(Mismatch),
                },
                Json::String(s) => s.trim().parse::<i128>().map_err(|_| Mismatch)?,
                Json::Bool(b) => *b as i128,
                _ => return Err(Mismatch),
            };
            int_value(n, *signed, *bits).ok_or(Mismatch)
        }
        (_, ChType::Float(_)) => match v {
            Json::Number(n) => n.as_f64().map(Value::Float).ok_or(Mismatch),
            Json::String(s) => {
                let t = s.trim();
                match t.to_ascii_lowercase().as_str() {
                    "nan" => Ok(Value::Float(f64::NAN)),
                    "inf" | "+inf" => Ok(Value::Float(f64::INFINITY)),
                    "-inf" => Ok(Value::Float(f64::NEG_INFINITY)),
                    _ => t.parse::<f64>().map(Value::Float).map_err(|_| Mismatch),
                }
            }
            _ => Err(Mismatch),
        },
        (_, ChType::Decimal(p, s)) => {
            let text = match v {
                Json::Number(n) => n.to_string(),
                Json::String(s) => s.trim().to_string(),
                _ => return Err(Mismatch),
            };
            let n = parse_decimal(&text, *s).ok_or(Mismatch)?;
            if n.unsigned_abs() >= 10u128.pow(*p as u32) {
                return Err(Mismatch);
            }
            Ok(Value::Decimal(n, *s))
        }
        (_, ChType::String) => Ok(Value::Str(match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        })),
        (_, ChType::Opaque(name)) => opaque(v, name),
        (_, ChType::Named(name)) => {
            let Json::String(s) = v else {
                return match v {
                    Json::Number(n) if !name.starts_with("UUID") => Ok(Value::Str(n.to_string())),
                    _ => Err(Mismatch),
                };
            };
            if name == "UUID" && !is_uuid(s) {
                return Err(Mismatch);
            }
            if let Some(n) = name.strip_prefix("FixedString(").and_then(|r| r.strip_suffix(')'))
                && s.len() > n.trim().parse::<usize>().unwrap_or(usize::MAX)
            {
                return Err(Mismatch);
            }
            Ok(Value::Str(s.clone()))
        }
        (_, ChType::Bool) => match v {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => Ok(Value::Bool(n.as_u64() == Some(1))),
            Json::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Value::Bool(true)),
                "false" | "0" => Ok(Value::Bool(false)),
                _ => Err(Mismatch),
            },
            _ => Err(Mismatch),
        },
        (_, ChType::Date { .. }) => match v {
            Json::String(s) => date_from_text(s),
            Json::Number(n) => n.as_i64().and_then(|d| i32::try_from(d).ok()).map(Value::Date).ok_or(Mismatch),
            _ => Err(Mismatch),
        },
        (_, ChType::DateTime { .. }) => match v {
            Json::String(s) => datetime_ns(s).map(Value::DateTime).ok_or(Mismatch),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Value::DateTime(i128::from(i) * 1_000_000_000))
                } else {
                    // `as` would clamp an out-of-range epoch: refuse it.
                    n.as_f64()
                        .map(|f| f * 1e9)
                        .filter(|ns| (i64::MIN as f64..i64::MAX as f64).contains(ns))
                        .map(|ns| Value::DateTime(ns as i128))
                        .ok_or(Mismatch)
                }
            }
            _ => Err(Mismatch),
        },
        (_, ChType::Array(inner)) => match v {
            Json::Array(items) => {
                items.iter().map(|i| convert(i, inner)).collect::<Result<Vec<_>, _>>().map(Value::Array)
            }
            _ => Err(Mismatch),
        },
    }
}

/// `n` as a value of `Int{bits}`/`UInt{bits}`, or None when it is out of the type's range.
fn int_value(n: i128, signed: bool, bits: u8) -> Option<Value> {
    let (min, max): (i128, i128) =
        if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) };
    (min..=max).contains(&n).then_some(if signed { Value::Int(n as i64) } else { Value::UInt(n as u64) })
}

/// A `Date` from `YYYY-MM-DD`, or from a date-time whose date part is that.
fn date_from_text(s: &str) -> Result<Value, Mismatch> {
    let s = s.trim();
    let date = NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").map_err(|_| Mismatch)?;
    if s.len() > 10 && parse_datetime_ns(s).is_none() {
        return Err(Mismatch);
    }
    Ok(Value::Date((date - NaiveDate::from_ymd_opt(1970, 1, 1).ok_or(Mismatch)?).num_days() as i32))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let scale = scale.max(0) as usize;
    let mut frac = frac.to_string();
    if frac.len() > scale {
        frac.truncate(scale);
    }
    while frac.len() < scale {
        frac.push('0');
    }
    let n: i128 = format!("{}{frac}", if int.is_empty() { "0" } else { int }).parse().ok()?;
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<IngestColumn> {
        vec![
            IngestColumn::new("ts", ChType::parse("DateTime").unwrap(), Some("$.ts"), None),
            IngestColumn::new("user_id", ChType::parse("Nullable(UInt64)").unwrap(), Some("$.user.id"), None),
            IngestColumn::new("tags", ChType::parse("Array(String)").unwrap(), Some("$.tags[:]"), None),
        ]
    }

    #[test]
    fn parses_rows_and_quarantines_bad_ones() {
        let body = b"{\"ts\":\"2024-01-01 00:00:00\",\"user\":{\"id\":7},\"tags\":[\"a\"]}\n\
{\"ts\":\"nope\",\"tags\":[]}\n\
not json\n\
\n\
{\"ts\":\"2024-01-01T00:00:00Z\",\"tags\":[]}";
        let parsed = parse_ndjson(body, &cols());
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0][1], Value::UInt(7));
        assert_eq!(parsed.rows[1][1], Value::Null);
        assert_eq!(parsed.quarantined.len(), 2);
        assert_eq!(parsed.quarantined[0].errors, vec!["value 'nope' on column 'ts' is not DateTime".to_string()]);
    }

    /// The typed fast path gives exactly the general path's row whenever it takes a line, and gives up (so the
    /// general path quarantines) on every line the general path refuses.
    #[test]
    fn fast_path_agrees_with_the_general_path() {
        // With only types the fast path converts, most lines take it.
        let (fast, slow) = compare_paths(&["dec", "uuid"]);
        assert!(fast > 50 && slow > 50, "both paths exercised: {fast} fast, {slow} general");
        // Columns it does not convert (Decimal, UUID) send every line to the general path, with the same rows.
        let (fast, _) = compare_paths(&[]);
        assert_eq!(fast, 0);
        // A nested JSONPath disables the fast path altogether.
        assert!(FastPlan::new(&cols()).is_none());
    }

    /// Runs both paths over many lines; returns how many lines each took.
    fn compare_paths(without: &[&str]) -> (usize, usize) {
        let types = [
            ("s", "String"),
            ("lc", "LowCardinality(Nullable(String))"),
            ("u8", "UInt8"),
            ("i64", "Int64"),
            ("u64", "UInt64"),
            ("f", "Float32"),
            ("d", "Date"),
            ("dt", "DateTime"),
            ("dt3", "DateTime64(3)"),
            ("b", "Bool"),
            ("n", "Nullable(Int32)"),
            ("arr", "Array(Int16)"),
            ("dec", "Decimal(10, 2)"),
            ("uuid", "UUID"),
        ];
        let types: Vec<(&str, &str)> = types.into_iter().filter(|(n, _)| !without.contains(n)).collect();
        let mut columns: Vec<IngestColumn> =
            types.iter().map(|(n, t)| IngestColumn::new(n, ChType::parse(t).unwrap(), None, None)).collect();
        columns.push(IngestColumn::new("def", ChType::parse("UInt32").unwrap(), Some("$.def"), Some("7")));
        let plan = FastPlan::new(&columns).expect("flat columns");
        let samples: Vec<(&str, Vec<&str>)> = vec![
            (
                "s",
                vec!["\"x\"", "\"\\u00e9\\\"\"", "5", "null", "true", "[1]", "\"tab\\t\\/\"", "\"é\"", "\"\\ud800\""],
            ),
            ("lc", vec!["\"x\"", "null", "1"]),
            ("u8", vec!["0", "255", "256", "-1", "\"7\"", "1.0", "1.5", "true", "null"]),
            ("i64", vec!["-9223372036854775808", "9223372036854775807", "9223372036854775808", "1e3"]),
            ("u64", vec!["18446744073709551615", "18446744073709551616", "-0", "0", "1.0e0", "007"]),
            ("f", vec!["1.5", "1", "-3", "\"nan\"", "1e400", "null", "-0", "-2.5e-3", "1E2", "01", "1."]),
            (
                "d",
                vec!["\"2024-02-29\"", "\"2023-02-29\"", "\"2024-01-01 10:00:00\"", "\"2024-01-01 25:00:00\"", "19000"],
            ),
            (
                "dt",
                vec![
                    "\"2024-01-01 00:00:00\"",
                    "\" 2024-01-01 00:00:00 \"",
                    "\"2024-01-01T00:00:00Z\"",
                    "\"bad\"",
                    "1700000000",
                    "1.5",
                ],
            ),
            ("dt3", vec!["\"2024-01-01 00:00:00.123\"", "\"2024-01-01 00:00:00.1234567891\""]),
            ("b", vec!["true", "false", "1", "2", "\"true\""]),
            ("n", vec!["null", "5", "2147483648"]),
            ("arr", vec!["[]", "[1,2]", "[1,70000]", "[null]", "[\"3\"]", "{}"]),
            ("dec", vec!["1.25", "\"1.25\"", "100000000000"]),
            ("uuid", vec!["\"123e4567-e89b-12d3-a456-426614174000\"", "\"x\""]),
            ("def", vec!["1", "null"]),
        ];
        let samples: Vec<(&str, Vec<&str>)> = samples.into_iter().filter(|(n, _)| !without.contains(n)).collect();
        let base: Vec<String> = types
            .iter()
            .map(|(n, t)| {
                let v = match *t {
                    "String" | "LowCardinality(Nullable(String))" => "\"v\"",
                    "Date" => "\"2024-01-02\"",
                    "DateTime" | "DateTime64(3)" => "\"2024-01-02 03:04:05\"",
                    "Bool" => "true",
                    "Array(Int16)" => "[1]",
                    "UUID" => "\"123e4567-e89b-12d3-a456-426614174000\"",
                    _ => "1",
                };
                format!("\"{n}\":{v}")
            })
            .collect();
        let mut lines =
            vec![format!("{{{}}}", base.join(",")), format!("{{{},\"extra\":{{\"a\":[1,{{}}]}}}}", base.join(","))];
        for (col, values) in &samples {
            for v in values {
                let mut fields: Vec<String> =
                    base.iter().filter(|f| !f.starts_with(&format!("\"{col}\":"))).cloned().collect();
                fields.push(format!("\"{col}\":{v}"));
                lines.push(format!("{{{}}}", fields.join(",")));
                // The same key twice: the later one wins on both paths.
                lines.push(format!("{{{},\"{col}\":{v}}}", base.join(",")));
            }
            // The column missing altogether.
            let fields: Vec<String> = base.iter().filter(|f| !f.starts_with(&format!("\"{col}\":"))).cloned().collect();
            lines.push(format!("{{{}}}", fields.join(",")));
        }
        lines.extend(["[1,2]", "{\"s\":\"x\"} trailing", "{\"s\":", "\"text\"", "{}"].map(String::from));
        // Whitespace between tokens, and keys with escapes, on the first lines.
        let spaced: Vec<String> = lines
            .iter()
            .take(60)
            .flat_map(|l| {
                [
                    format!(" {} ", l.replace(':', " :\t").replace(',', "\r\n, ")),
                    l.replacen("\"s\":", "\"\\u0073\":", 1),
                ]
            })
            .collect();
        lines.extend(spaced);
        let (mut fast, mut slow) = (0, 0);
        for line in &lines {
            let general = parse_line(line.as_bytes(), &columns);
            match plan.parse(line.as_bytes(), &mut Vec::new()) {
                Some(row) => {
                    fast += 1;
                    assert_eq!(Ok(row), general, "{line}");
                }
                None => slow += 1,
            }
        }
        (fast, slow)
    }

    #[test]
    fn fractional_epochs_beyond_the_datetime_range_are_refused_not_clamped() {
        let dt = ChType::parse("DateTime64(3)").unwrap();
        assert!(convert(&serde_json::json!(1e300), &dt).is_err());
        assert!(convert(&serde_json::json!(-1e300), &dt).is_err());
        assert_eq!(convert(&serde_json::json!(1.5), &dt), Ok(Value::DateTime(1_500_000_000)));
    }

    #[test]
    fn datetime64_values_past_2262_are_kept() {
        // ClickHouse's DateTime64 reaches 2299-12-31 23:59:59.999; nanoseconds in an i64 end on 2262-04-11.
        let dt = ChType::parse("DateTime64(3)").unwrap();
        let v = convert(&serde_json::json!("2299-12-31 23:59:59.999"), &dt).unwrap();
        assert_eq!(v, Value::DateTime(10_413_791_999_999_000_000));
        assert_eq!(crate::format::ch_text(&v, &dt), "2299-12-31 23:59:59.999");
    }

    #[test]
    fn rejects_out_of_range_and_invalid_utf8() {
        assert!(convert(&serde_json::json!(256), &ChType::parse("UInt8").unwrap()).is_err());
        assert!(convert(&serde_json::json!(-1), &ChType::parse("UInt64").unwrap()).is_err());
        assert_eq!(convert(&serde_json::json!("42"), &ChType::parse("Int32").unwrap()), Ok(Value::Int(42)));
        let parsed = parse_ndjson(b"{\"ts\":\"\xff\"}", &cols());
        assert_eq!(parsed.quarantined.len(), 1);
        assert!(parsed.quarantined[0].errors[0].contains("UTF-8"));
    }
}
