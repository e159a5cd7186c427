//! Output formats: ClickHouse's JSON envelope, JSONEachRow, CSV and TSV, with ClickHouse's value rendering.

use crate::engine::{QueryResult, Value};
use crate::types::ChType;
use chrono::{DateTime, NaiveDate};
use std::fmt::Write;

/// An output format a query can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `JSON`: `meta`, `data`, `rows`, `statistics`.
    Json,
    /// `JSONEachRow` / `.ndjson`.
    JsonEachRow,
    /// `CSV`.
    Csv,
    /// `CSVWithNames`.
    CsvWithNames,
    /// `TSV` / `TabSeparated`.
    Tsv,
    /// `TSVWithNames` / `TabSeparatedWithNames`.
    TsvWithNames,
}

/// Formats ClickHouse knows but this server does not produce, listed in the "invalid format" error.
const KNOWN: &str = "JSON, CSV, CSVWithNames, TSV, TSVWithNames, PrettyCompact, JSONEachRow, Parquet, JSONStrings, Prometheus";

/// Why a `FORMAT` name was refused: `Err((status, message))`.
pub fn parse_format(name: &str) -> Result<Format, (u16, String)> {
    Ok(match name {
        "JSON" => Format::Json,
        "JSONEachRow" | "NDJSON" | "JSONLines" => Format::JsonEachRow,
        "CSV" => Format::Csv,
        "CSVWithNames" => Format::CsvWithNames,
        "TSV" | "TabSeparated" => Format::Tsv,
        "TSVWithNames" | "TabSeparatedWithNames" => Format::TsvWithNames,
        "PrettyCompact" | "Parquet" | "JSONStrings" | "Prometheus" | "JSONCompact" | "Native" => {
            return Err((400, format!("Format {name} is not supported by tinybird-local")));
        }
        other => return Err((403, format!("invalid format {other}, available ones: {KNOWN}"))),
    })
}

impl Format {
    /// The response `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=UTF-8",
            Format::JsonEachRow => "application/x-ndjson; charset=UTF-8",
            Format::Csv => "text/csv; charset=UTF-8; header=absent",
            Format::CsvWithNames => "text/csv; charset=UTF-8; header=present",
            Format::Tsv | Format::TsvWithNames => "text/tab-separated-values; charset=UTF-8",
        }
    }
}

/// Output settings from the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputOptions {
    /// `output_format_json_quote_64bit_integers=1`.
    pub quote_64bit: bool,
    /// `output_format_json_quote_denormals=1`.
    pub quote_denormals: bool,
}

/// Renders a result in a format; `elapsed` is in seconds.
pub fn render(result: &QueryResult, format: Format, options: OutputOptions, elapsed: f64) -> String {
    let mut out = String::with_capacity(64 + result.rows.len() * 32);
    match format {
        Format::Json => {
            out.push_str("{\n\t\"meta\":\n\t[");
            for (i, c) in result.columns.iter().enumerate() {
                out.push_str(if i == 0 { "\n\t\t" } else { ",\n\t\t" });
                let _ = write!(out, "{{\"name\": {}, \"type\": {}}}", json_string(&c.name), json_string(&c.ty.to_string()));
            }
            out.push_str("\n\t],\n\n\t\"data\":\n\t[");
            for (r, row) in result.rows.iter().enumerate() {
                out.push_str(if r == 0 { "\n\t\t{" } else { ",\n\t\t{" });
                write_object_body(&mut out, result, row, options);
                out.push('}');
            }
            let _ = write!(out, "\n\t],\n\n\t\"rows\": {}", result.rows.len());
            if let Some(n) = result.rows_before_limit {
                let _ = write!(out, ",\n\n\t\"rows_before_limit_at_least\": {n}");
            }
            let _ = write!(
                out,
                ",\n\n\t\"statistics\":\n\t{{\n\t\t\"elapsed\": {elapsed},\n\t\t\"rows_read\": {},\n\t\t\"bytes_read\": {}\n\t}}\n}}\n",
                result.rows_read, result.bytes_read
            );
        }
        Format::JsonEachRow => {
            for row in &result.rows {
                out.push('{');
                write_object_body(&mut out, result, row, options);
                out.push_str("}\n");
            }
        }
        Format::Csv | Format::CsvWithNames => {
            if format == Format::CsvWithNames {
                let names: Vec<String> = result.columns.iter().map(|c| csv_quote(&c.name)).collect();
                out.push_str(&names.join(","));
                out.push('\n');
            }
            for row in &result.rows {
                for (i, (v, c)) in row.iter().zip(&result.columns).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&csv_value(v, &c.ty));
                }
                out.push('\n');
            }
        }
        Format::Tsv | Format::TsvWithNames => {
            if format == Format::TsvWithNames {
                let names: Vec<String> = result.columns.iter().map(|c| tsv_escape(&c.name)).collect();
                out.push_str(&names.join("\t"));
                out.push('\n');
            }
            for row in &result.rows {
                for (i, (v, c)) in row.iter().zip(&result.columns).enumerate() {
                    if i > 0 {
                        out.push('\t');
                    }
                    match v {
                        Value::Null => out.push_str("\\N"),
                        v => out.push_str(&tsv_escape(&ch_text(v, &c.ty))),
                    }
                }
                out.push('\n');
            }
        }
    }
    out
}

fn write_object_body(out: &mut String, result: &QueryResult, row: &[Value], options: OutputOptions) {
    for (i, (v, c)) in row.iter().zip(&result.columns).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(&c.name));
        out.push(':');
        json_value(out, v, &c.ty, options);
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Writes one value as ClickHouse's JSON format does.
pub fn json_value(out: &mut String, v: &Value, ty: &ChType, options: OutputOptions) {
    let base = ty.base();
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => match base {
            ChType::Bool => out.push_str(if *b { "true" } else { "false" }),
            _ => out.push(if *b { '1' } else { '0' }),
        },
        Value::Int(n) => {
            if options.quote_64bit && is_64bit(base) {
                let _ = write!(out, "\"{n}\"");
            } else {
                let _ = write!(out, "{n}");
            }
        }
        Value::UInt(n) => {
            if options.quote_64bit && is_64bit(base) {
                let _ = write!(out, "\"{n}\"");
            } else {
                let _ = write!(out, "{n}");
            }
        }
        Value::Float(f) if !f.is_finite() => {
            if options.quote_denormals {
                out.push_str(&json_string(&float_text(*f)));
            } else {
                out.push_str("null");
            }
        }
        Value::Float(f) => out.push_str(&float_text(*f)),
        Value::Decimal(..) => out.push_str(&ch_text(v, ty)),
        Value::Str(s) => out.push_str(&json_string(s)),
        Value::Date(_) | Value::DateTime(_) => out.push_str(&json_string(&ch_text(v, ty))),
        Value::Array(items) => {
            let inner = match base {
                ChType::Array(inner) => inner.as_ref().clone(),
                _ => ChType::String,
            };
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(out, item, &inner, options);
            }
            out.push(']');
        }
    }
}

fn is_64bit(ty: &ChType) -> bool {
    matches!(ty, ChType::Int { bits: 64, .. })
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{f}")
    }
}

/// A value as ClickHouse prints it in text formats and `toString`.
pub fn ch_text(v: &Value, ty: &ChType) -> String {
    let base = ty.base();
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => match base {
            ChType::Bool => (if *b { "true" } else { "false" }).into(),
            _ => (if *b { "1" } else { "0" }).into(),
        },
        Value::Int(n) => n.to_string(),
        Value::UInt(n) => n.to_string(),
        Value::Float(f) => float_text(*f),
        Value::Decimal(n, scale) => {
            if *scale <= 0 {
                return n.to_string();
            }
            let s = *scale as u32;
            let div = 10i128.pow(s);
            let sign = if *n < 0 { "-" } else { "" };
            format!("{sign}{}.{:0width$}", (n / div).abs(), (n % div).abs(), width = s as usize)
        }
        Value::Str(s) => s.clone(),
        Value::Date(d) => NaiveDate::from_num_days_from_ce_opt(719_163 + d)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "1970-01-01".into()),
        Value::DateTime(ns) => {
            let t = DateTime::from_timestamp(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32)
                .map(|t| t.naive_utc())
                .unwrap_or_default();
            match base {
                ChType::DateTime { precision: Some(p), .. } if *p > 0 => {
                    let frac = format!("{:09}", ns.rem_euclid(1_000_000_000));
                    format!("{}.{}", t.format("%Y-%m-%d %H:%M:%S"), &frac[..(*p as usize).min(9)])
                }
                _ => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            }
        }
        Value::Array(items) => {
            let inner = match base {
                ChType::Array(inner) => inner.as_ref().clone(),
                _ => ChType::String,
            };
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::Str(_) | Value::Date(_) | Value::DateTime(_) => {
                        format!("'{}'", ch_text(i, &inner).replace('\\', "\\\\").replace('\'', "\\'"))
                    }
                    other => ch_text(other, &inner),
                })
                .collect();
            format!("[{}]", parts.join(","))
        }
    }
}

fn csv_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn csv_value(v: &Value, ty: &ChType) -> String {
    match v {
        Value::Null => "\\N".into(),
        Value::Str(_) | Value::Date(_) | Value::DateTime(_) | Value::Array(_) => csv_quote(&ch_text(v, ty)),
        Value::Bool(_) if matches!(ty.base(), ChType::Bool) => csv_quote(&ch_text(v, ty)),
        other => ch_text(other, ty),
    }
}

fn tsv_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_values_as_clickhouse() {
        let dt = ChType::DateTime { precision: None, tz: None };
        assert_eq!(ch_text(&Value::DateTime(1_704_067_200_000_000_000), &dt), "2024-01-01 00:00:00");
        let dt3 = ChType::DateTime { precision: Some(3), tz: None };
        assert_eq!(ch_text(&Value::DateTime(1_704_067_200_123_000_000), &dt3), "2024-01-01 00:00:00.123");
        assert_eq!(ch_text(&Value::Date(19_723), &ChType::Date { wide: false }), "2024-01-01");
        assert_eq!(ch_text(&Value::Float(3.0), &ChType::Float(64)), "3");
        assert_eq!(ch_text(&Value::Decimal(-12345, 2), &ChType::Decimal(10, 2)), "-123.45");
        let arr = ChType::Array(Box::new(ChType::String));
        assert_eq!(ch_text(&Value::Array(vec![Value::Str("a'b".into())]), &arr), "['a\\'b']");
    }
}
