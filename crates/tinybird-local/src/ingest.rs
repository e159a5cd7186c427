//! NDJSON ingestion: each line becomes a row, or a quarantined row with the reason.

use crate::engine::Value;
use crate::engine::functions::parse_datetime_ns;
use crate::types::ChType;
use chrono::NaiveDate;
use serde_json::Value as Json;

/// A datasource column as ingestion sees it.
#[derive(Debug, Clone)]
pub struct IngestColumn {
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
    pub fn new(name: &str, ty: ChType, json_path: Option<&str>, default: Option<&str>) -> IngestColumn {
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
pub struct Quarantined {
    /// Per column: the value as sent (JSON text), or None when missing.
    pub values: Vec<Option<String>>,
    /// Columns in error.
    pub error_columns: Vec<String>,
    /// Messages, one per error.
    pub errors: Vec<String>,
}

/// The outcome of parsing a body.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Rows that fit, in column order.
    pub rows: Vec<Vec<Value>>,
    /// Rows that did not.
    pub quarantined: Vec<Quarantined>,
}

/// Parses NDJSON (or one JSON object) against the columns. Blank lines are skipped.
pub fn parse_ndjson(body: &[u8], columns: &[IngestColumn]) -> Parsed {
    let mut parsed = Parsed::default();
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match parse_line(line, columns) {
            Ok(row) => parsed.rows.push(row),
            Err(q) => parsed.quarantined.push(q),
        }
    }
    parsed
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
    let mut row = Vec::with_capacity(columns.len());
    let mut q = Quarantined { values: Vec::with_capacity(columns.len()), error_columns: vec![], errors: vec![] };
    for c in columns {
        let mut node = Some(&json);
        for key in &c.path {
            node = node.and_then(|n| n.get(key));
        }
        q.values.push(node.map(|n| match n {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }));
        let value = match node {
            None | Some(Json::Null) if c.default.is_some() && node.is_none() => {
                c.default.clone().unwrap_or(Value::Null)
            }
            None if c.ty.is_nullable() => Value::Null,
            None => {
                q.error_columns.push(c.name.clone());
                q.errors.push(format!("value is missing for column '{}' of type {}", c.name, c.ty));
                continue;
            }
            Some(v) => match convert(v, &c.ty) {
                Ok(v) => v,
                Err(Mismatch) => {
                    let shown = match v {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    q.error_columns.push(c.name.clone());
                    q.errors.push(format!("value '{}' on column '{}' is not {}", truncate(&shown, 200), c.name, c.ty));
                    continue;
                }
            },
        };
        row.push(value);
    }
    if q.errors.is_empty() { Ok(row) } else { Err(q) }
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

/// A value that does not fit its column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch;

/// Converts a JSON value to a column type, as ClickHouse's JSON input does (numbers may arrive as strings).
pub fn convert(v: &Json, ty: &ChType) -> Result<Value, Mismatch> {
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
            let (min, max): (i128, i128) = if *signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            if n < min || n > max {
                return Err(Mismatch);
            }
            Ok(if *signed { Value::Int(n as i64) } else { Value::UInt(n as u64) })
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
            Json::String(s) => {
                let s = s.trim();
                let date = NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").map_err(|_| Mismatch)?;
                if s.len() > 10 && parse_datetime_ns(s).is_none() {
                    return Err(Mismatch);
                }
                Ok(Value::Date((date - NaiveDate::from_ymd_opt(1970, 1, 1).ok_or(Mismatch)?).num_days() as i32))
            }
            Json::Number(n) => n.as_i64().and_then(|d| i32::try_from(d).ok()).map(Value::Date).ok_or(Mismatch),
            _ => Err(Mismatch),
        },
        (_, ChType::DateTime { .. }) => match v {
            Json::String(s) => parse_datetime_ns(s.trim()).map(Value::DateTime).ok_or(Mismatch),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    i.checked_mul(1_000_000_000).map(Value::DateTime).ok_or(Mismatch)
                } else {
                    // `as` would clamp an out-of-range epoch to the year 2262: refuse it, as the integer path does.
                    n.as_f64()
                        .map(|f| f * 1e9)
                        .filter(|ns| (i64::MIN as f64..i64::MAX as f64).contains(ns))
                        .map(|ns| Value::DateTime(ns as i64))
                        .ok_or(Mismatch)
                }
            }
            _ => Err(Mismatch),
        },
        (_, ChType::Array(inner)) => match v {
            Json::Array(items) => items.iter().map(|i| convert(i, inner)).collect::<Result<Vec<_>, _>>().map(Value::Array),
            _ => Err(Mismatch),
        },
    }
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
    if int.is_empty() && frac.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
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

    #[test]
    fn fractional_epochs_beyond_the_datetime_range_are_refused_not_clamped() {
        let dt = ChType::parse("DateTime64(3)").unwrap();
        assert!(convert(&serde_json::json!(1e300), &dt).is_err());
        assert!(convert(&serde_json::json!(-1e300), &dt).is_err());
        assert_eq!(convert(&serde_json::json!(1.5), &dt), Ok(Value::DateTime(1_500_000_000)));
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
