//! Output formats: ClickHouse's JSON envelope, JSONEachRow, CSV and TSV, with ClickHouse's value rendering.

use crate::engine::{QueryResult, RowText, Value, value_at};
use crate::types::ChType;
use chrono::DateTime;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use std::fmt::Write;
use tinybird_core::__private::wire_text::{CivilDateTime, push_date_text, push_datetime_text};

/// An output format a query can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
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
const KNOWN: &str =
    "JSON, CSV, CSVWithNames, TSV, TSVWithNames, PrettyCompact, JSONEachRow, Parquet, JSONStrings, Prometheus";

/// Why a `FORMAT` name was refused: `Err((status, message))`.
pub(crate) fn parse_format(name: &str) -> Result<Format, (u16, String)> {
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
    /// The row form and JSON settings an engine that formats rows itself writes this format with.
    pub(crate) fn output(self, options: OutputOptions) -> crate::engine::Output {
        let text = match self {
            Format::Json | Format::JsonEachRow => RowText::Json,
            Format::Csv | Format::CsvWithNames => RowText::Csv,
            Format::Tsv | Format::TsvWithNames => RowText::Tsv,
        };
        crate::engine::Output { text, quote_64bit: options.quote_64bit, quote_denormals: options.quote_denormals }
    }

    /// The response `Content-Type`.
    pub(crate) fn content_type(self) -> &'static str {
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
pub(crate) struct OutputOptions {
    /// `output_format_json_quote_64bit_integers=1`.
    pub quote_64bit: bool,
    /// `output_format_json_quote_denormals=1`.
    pub quote_denormals: bool,
}

/// Renders a result in a format; `elapsed` is in seconds.
pub(crate) fn render(result: &QueryResult, format: Format, options: OutputOptions, elapsed: f64) -> String {
    let mut out = String::with_capacity(64 + result.num_rows() * 32 * result.columns.len().max(1));
    // Each column's `"name":` prefix, escaped once rather than once per row.
    let keys: Vec<String> = result
        .columns
        .iter()
        .map(|c| {
            let mut k = String::with_capacity(c.name.len() + 3);
            write_json_str(&mut k, &c.name);
            k.push(':');
            k
        })
        .collect();
    match format {
        Format::Json => {
            out.push_str("{\n\t\"meta\":\n\t[");
            for (i, c) in result.columns.iter().enumerate() {
                out.push_str(if i == 0 { "\n\t\t{\"name\": " } else { ",\n\t\t{\"name\": " });
                write_json_str(&mut out, &c.name);
                out.push_str(", \"type\": ");
                write_json_str(&mut out, &c.ty.to_string());
                out.push('}');
            }
            out.push_str("\n\t],\n\n\t\"data\":\n\t[");
            let mut first = true;
            match engine_rows(result, RowText::Json) {
                Some(rows) => {
                    for row in rows {
                        out.push_str(if std::mem::take(&mut first) { "\n\t\t" } else { ",\n\t\t" });
                        out.push_str(row);
                    }
                }
                None => for_each_object(
                    result,
                    &result.batches,
                    &keys,
                    options,
                    &mut out,
                    |out| {
                        out.push_str(if std::mem::take(&mut first) { "\n\t\t" } else { ",\n\t\t" });
                    },
                    |_| {},
                ),
            }
            out.push_str("\n\t]");
            if let Some(totals) = engine_totals(result, RowText::Json) {
                out.push_str(",\n\n\t\"totals\": ");
                out.push_str(totals);
            } else if let Some(totals) = &result.totals {
                out.push_str(",\n\n\t\"totals\": ");
                for_each_object(result, std::slice::from_ref(totals), &keys, options, &mut out, |_| {}, |_| {});
            }
            let _ = write!(out, ",\n\n\t\"rows\": {}", result.num_rows());
            if let Some(n) = result.rows_before_limit {
                let _ = write!(out, ",\n\n\t\"rows_before_limit_at_least\": {n}");
            }
            let _ = write!(
                out,
                ",\n\n\t\"statistics\":\n\t{{\n\t\t\"elapsed\": {elapsed},\n\t\t\"rows_read\": {},\n\t\t\"bytes_read\": {}\n\t}}\n}}\n",
                result.rows_read, result.bytes_read
            );
        }
        Format::JsonEachRow => match engine_rows(result, RowText::Json) {
            Some(rows) => rows.iter().for_each(|r| {
                out.push_str(r);
                out.push('\n');
            }),
            None => for_each_object(result, &result.batches, &keys, options, &mut out, |_| {}, |out| out.push('\n')),
        },
        Format::Csv | Format::CsvWithNames => {
            if format == Format::CsvWithNames {
                let names: Vec<String> = result.columns.iter().map(|c| csv_quote(&c.name)).collect();
                out.push_str(&names.join(","));
                out.push('\n');
            }
            if let Some(rows) = engine_rows(result, RowText::Csv) {
                rows.iter().for_each(|r| {
                    out.push_str(r);
                    out.push('\n');
                });
                push_totals(&mut out, engine_totals(result, RowText::Csv));
                return out;
            }
            let csv_row = |out: &mut String, row: &[Value]| {
                for (i, (v, c)) in row.iter().zip(&result.columns).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&csv_value(v, &c.ty));
                }
                out.push('\n');
            };
            for row in result.rows() {
                csv_row(&mut out, row);
            }
            if let Some(totals) = totals_row(result) {
                out.push('\n');
                csv_row(&mut out, &totals);
            }
        }
        Format::Tsv | Format::TsvWithNames => {
            if format == Format::TsvWithNames {
                let names: Vec<String> = result.columns.iter().map(|c| tsv_escape(&c.name)).collect();
                out.push_str(&names.join("\t"));
                out.push('\n');
            }
            if let Some(rows) = engine_rows(result, RowText::Tsv) {
                rows.iter().for_each(|r| {
                    out.push_str(r);
                    out.push('\n');
                });
                push_totals(&mut out, engine_totals(result, RowText::Tsv));
                return out;
            }
            let tsv_row = |out: &mut String, row: &[Value]| {
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
            };
            for row in result.rows() {
                tsv_row(&mut out, row);
            }
            if let Some(totals) = totals_row(result) {
                out.push('\n');
                tsv_row(&mut out, &totals);
            }
        }
    }
    out
}

/// The `WITH TOTALS` row the engine formatted, when there is one in this form.
fn engine_totals(result: &QueryResult, kind: RowText) -> Option<&str> {
    result.text.as_ref().filter(|t| t.kind == kind).and_then(|t| t.totals.as_deref())
}

/// The `WITH TOTALS` row of a result whose engine gave it as a batch, as values.
fn totals_row(result: &QueryResult) -> Option<Vec<Value>> {
    let batch = result.totals.as_ref().filter(|b| b.num_rows() > 0)?;
    Some(batch.columns().iter().map(|a| crate::engine::value_at(a.as_ref(), 0)).collect())
}

/// CSV and TSV write the totals row after an empty line, as ClickHouse does.
fn push_totals(out: &mut String, totals: Option<&str>) {
    if let Some(totals) = totals {
        out.push('\n');
        out.push_str(totals);
        out.push('\n');
    }
}

/// The rows the engine formatted itself, when they are in this form.
fn engine_rows(result: &QueryResult, kind: RowText) -> Option<&[String]> {
    result.text.as_ref().filter(|t| t.kind == kind).map(|t| t.rows.as_slice())
}

/// Writes every row as a JSON object (`{"name":value,…}`) straight from the result's Arrow batches, with `before`
/// and `after` around each object.
fn for_each_object(
    result: &QueryResult,
    batches: &[datafusion::arrow::record_batch::RecordBatch],
    keys: &[String],
    options: OutputOptions,
    out: &mut String,
    mut before: impl FnMut(&mut String),
    mut after: impl FnMut(&mut String),
) {
    for batch in batches {
        // One writer per column, chosen once per batch rather than once per cell.
        let writers: Vec<CellWriter<'_>> =
            batch.columns().iter().zip(&result.columns).map(|(a, c)| cell_writer(a.as_ref(), &c.ty, options)).collect();
        for row in 0..batch.num_rows() {
            before(out);
            out.push('{');
            for (i, (write, key)) in writers.iter().zip(keys).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(key);
                write(out, row);
            }
            out.push('}');
            after(out);
        }
    }
}

/// Writes the cell of one column at a row.
type CellWriter<'a> = Box<dyn Fn(&mut String, usize) + 'a>;

/// The writer of one column's cells as ClickHouse's JSON writes them: the same text as [`json_value`] of the cell's
/// [`Value`], with the common types read straight from their Arrow buffers.
fn cell_writer<'a>(array: &'a dyn Array, ty: &'a ChType, options: OutputOptions) -> CellWriter<'a> {
    let base = ty.base();
    let nulls = array.nulls().filter(|n| n.null_count() > 0).cloned();
    let with_nulls = move |write: CellWriter<'a>| -> CellWriter<'a> {
        match nulls.clone() {
            None => write,
            Some(nulls) => Box::new(
                move |out: &mut String, row: usize| {
                    if nulls.is_null(row) { out.push_str("null") } else { write(out, row) }
                },
            ),
        }
    };
    macro_rules! int {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            with_nulls(Box::new(move |out: &mut String, row: usize| json_int(out, a.value(row), base, options)))
        }};
    }
    macro_rules! timestamp {
        ($t:ty, $scale:expr) => {{
            let a = array.as_primitive::<$t>();
            // Seconds and nanoseconds apart: a DateTime64(3) reaches 2299, past i64 nanoseconds.
            let per_second: i64 = 1_000_000_000 / $scale;
            with_nulls(Box::new(move |out: &mut String, row: usize| {
                let v = a.value(row);
                out.push('"');
                write_datetime_parts(out, v.div_euclid(per_second), (v.rem_euclid(per_second) * $scale) as u32, base);
                out.push('"');
            }))
        }};
    }
    match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            with_nulls(Box::new(move |out: &mut String, row: usize| write_json_str(out, a.value(row))))
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            with_nulls(Box::new(move |out: &mut String, row: usize| write_json_str(out, a.value(row))))
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            with_nulls(Box::new(move |out: &mut String, row: usize| write_json_str(out, a.value(row))))
        }
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        // A `Bool` computed as UInt8 (`NOT flag`, `max(flag)`) prints as ClickHouse prints a `Bool`.
        DataType::UInt8 if matches!(base, ChType::Bool) => {
            let a = array.as_primitive::<UInt8Type>();
            with_nulls(Box::new(move |out: &mut String, row: usize| {
                out.push_str(bool_text(a.value(row) != 0));
            }))
        }
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            with_nulls(Box::new(move |out: &mut String, row: usize| json_float(out, a.value(row), false, options)))
        }
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            with_nulls(Box::new(move |out: &mut String, row: usize| {
                json_float(out, a.value(row).into(), true, options);
            }))
        }
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            with_nulls(Box::new(move |out: &mut String, row: usize| {
                out.push('"');
                write_date(out, a.value(row));
                out.push('"');
            }))
        }
        DataType::Timestamp(TimeUnit::Second, _) => timestamp!(TimestampSecondType, 1_000_000_000),
        DataType::Timestamp(TimeUnit::Millisecond, _) => timestamp!(TimestampMillisecondType, 1_000_000),
        DataType::Timestamp(TimeUnit::Microsecond, _) => timestamp!(TimestampMicrosecondType, 1_000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => timestamp!(TimestampNanosecondType, 1),
        // `value_at` says NULL for null cells itself.
        _ => Box::new(move |out: &mut String, row: usize| json_value(out, &value_at(array, row), ty, options)),
    }
}

/// Writes `f` when it is exactly the double nearest to n / 10^k for some n below 10^15 and k ≤ 3 (prices, ratios
/// in quarters, and the like), as `Display` would: that decimal has at most 15 significant digits, so it is the only
/// shortest one. Returns false, writing nothing, otherwise.
fn write_short_decimal(out: &mut String, f: f64) -> bool {
    const LIMIT: f64 = 1e15;
    for (k, scale) in [1.0, 10.0, 100.0, 1000.0].into_iter().enumerate() {
        let n = (f * scale).round();
        if n.abs() >= LIMIT {
            return false;
        }
        if n / scale != f {
            continue;
        }
        let n = n as i64;
        if n == 0 {
            out.push_str(if f.is_sign_negative() { "-0" } else { "0" });
            return true;
        }
        if n < 0 {
            out.push('-');
        }
        let digits = n.unsigned_abs();
        let divisor = 10u64.pow(k as u32);
        out.push_str(itoa::Buffer::new().format(digits / divisor));
        let mut frac = digits % divisor;
        if frac != 0 {
            // k digits with leading zeros, then without the trailing ones.
            let mut width = k;
            while frac.is_multiple_of(10) {
                frac /= 10;
                width -= 1;
            }
            out.push('.');
            let mut buf = itoa::Buffer::new();
            let text = buf.format(frac);
            for _ in text.len()..width {
                out.push('0');
            }
            out.push_str(text);
        }
        return true;
    }
    false
}

/// An integer, quoted when it is 64 bits wide and `output_format_json_quote_64bit_integers` asks for it.
fn json_int<I: itoa::Integer>(out: &mut String, n: I, base: &ChType, options: OutputOptions) {
    write_int(out, itoa::Buffer::new().format(n), options.quote_64bit && is_64bit(base));
}

/// A float: its shortest decimal text, or for nan and ±inf `null` (or the quoted name, with
/// `output_format_json_quote_denormals`).
fn json_float(out: &mut String, f: f64, single: bool, options: OutputOptions) {
    if f.is_finite() {
        write_float(out, f, single);
    } else if options.quote_denormals {
        write_json_str(out, &float_text(f, false));
    } else {
        out.push_str("null");
    }
}

/// Appends a finite float as ClickHouse prints it in every format: the shortest digits that read back as the same
/// number (of `Float32` when `single`), in positional notation for decimal exponents from -6 to 20 (`0.000001`,
/// `100000000000000000000`) and in scientific notation otherwise, without a `+` (`1e-7`, `1.25e21`).
fn write_float(out: &mut String, f: f64, single: bool) {
    if !single && write_short_decimal(out, f) {
        return;
    }
    // `{:e}` writes the shortest round-trip digits, as `d.ddde[-]x`.
    let scientific = if single { format!("{:e}", f as f32) } else { format!("{f:e}") };
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-6..21).contains(&exponent) {
        out.push_str(&scientific);
        return;
    }
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    out.push_str(sign);
    if exponent < 0 {
        out.push_str("0.");
        for _ in 0..(-exponent - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let whole = exponent as usize + 1;
        if digits.len() <= whole {
            out.push_str(&digits);
            for _ in digits.len()..whole {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..whole]);
            out.push('.');
            out.push_str(&digits[whole..]);
        }
    }
}

/// A `Bool` as ClickHouse prints it in every format.
fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// A JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_json_str(&mut out, s);
    out
}

/// Appends `s` as a JSON string literal, escaped as ClickHouse escapes (`"`, `\\`, `/`, control characters), copying
/// unescaped runs whole.
pub(crate) fn write_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            // ClickHouse's `output_format_json_escape_forward_slashes`, on by default (and so in Tinybird's answers).
            b'/' => "\\/",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Writes one value as ClickHouse's JSON format does.
pub(crate) fn json_value(out: &mut String, v: &Value, ty: &ChType, options: OutputOptions) {
    let base = ty.base();
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => match base {
            ChType::Bool => out.push_str(bool_text(*b)),
            _ => out.push(if *b { '1' } else { '0' }),
        },
        Value::Int(n) if matches!(base, ChType::Bool) => out.push_str(bool_text(*n != 0)),
        Value::UInt(n) if matches!(base, ChType::Bool) => out.push_str(bool_text(*n != 0)),
        Value::Int(n) => json_int(out, *n, base, options),
        Value::UInt(n) => json_int(out, *n, base, options),
        Value::Float(f) => json_float(out, *f, matches!(base, ChType::Float(32)), options),
        Value::Decimal(..) => out.push_str(&ch_text(v, ty)),
        // A value of a type only ClickHouse stores is kept as the JSON it arrived as (checked by ingestion).
        Value::Str(s) if matches!(base, ChType::Opaque(_)) => out.push_str(s),
        Value::Str(s) => write_json_str(out, s),
        Value::Date(d) => {
            out.push('"');
            write_date(out, *d);
            out.push('"');
        }
        Value::DateTime(ns) => {
            out.push('"');
            write_datetime(out, *ns, base);
            out.push('"');
        }
        Value::Array(items) => {
            let inner = match base {
                ChType::Array(inner) => inner.as_ref(),
                _ => &ChType::String,
            };
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(out, item, inner, options);
            }
            out.push(']');
        }
    }
}

/// `YYYY-MM-DD` for days since 1970-01-01 (ClickHouse's `Date`/`Date32` text); `1970-01-01` for days beyond what
/// ClickHouse stores.
fn write_date(out: &mut String, days: i32) {
    match civil_from_days(i64::from(days)) {
        Some((y, m, d)) if (0..=9999).contains(&y) => push_date_text(out, y as u32, m, d),
        _ => out.push_str("1970-01-01"),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.fff…]` for nanoseconds since the epoch, with the type's precision.
fn write_datetime(out: &mut String, ns: i128, ty: &ChType) {
    let secs = i64::try_from(ns.div_euclid(1_000_000_000)).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX });
    write_datetime_parts(out, secs, ns.rem_euclid(1_000_000_000) as u32, ty);
}

/// A date-time given as seconds since the epoch and nanoseconds, as ClickHouse prints a value of type `ty`.
pub(crate) fn write_datetime_parts(out: &mut String, secs: i64, nanos: u32, ty: &ChType) {
    let precision = match ty {
        ChType::DateTime { precision: Some(p), .. } => (*p).min(9),
        _ => 0,
    };
    let (days, second_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    // Years 0 to 9999 by hand (a result has one per row); others through chrono, which prints them its own way.
    match civil_from_days(days) {
        Some((y, m, d)) if (0..=9999).contains(&y) => {
            let t = CivilDateTime {
                year: y as u32,
                month: m,
                day: d,
                hour: second_of_day / 3600,
                minute: second_of_day / 60 % 60,
                second: second_of_day % 60,
                nanos,
            };
            push_datetime_text(out, t, precision);
        }
        _ => {
            let t = DateTime::from_timestamp(secs, nanos).map(|t| t.naive_utc()).unwrap_or_default();
            tinybird_core::types::wire::write_datetime(out, &t, precision);
        }
    }
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`),
/// or None far outside any calendar.
fn civil_from_days(days: i64) -> Option<(i64, u32, u32)> {
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe.checked_add(era.checked_mul(400)?)? + i64::from(m <= 2);
    Some((y, m, d))
}

/// An integer's digits, quoted when `output_format_json_quote_64bit_integers` asks for it.
fn write_int(out: &mut String, digits: &str, quoted: bool) {
    if quoted {
        out.push('"');
        out.push_str(digits);
        out.push('"');
    } else {
        out.push_str(digits);
    }
}

fn is_64bit(ty: &ChType) -> bool {
    matches!(ty, ChType::Int { bits: 64, .. })
}

fn float_text(f: f64, single: bool) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        let mut out = String::new();
        write_float(&mut out, f, single);
        out
    }
}

/// A value as ClickHouse prints it in text formats and `toString`.
pub(crate) fn ch_text(v: &Value, ty: &ChType) -> String {
    let base = ty.base();
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => match base {
            ChType::Bool => bool_text(*b).into(),
            _ => (if *b { "1" } else { "0" }).into(),
        },
        Value::Int(n) if matches!(base, ChType::Bool) => bool_text(*n != 0).into(),
        Value::UInt(n) if matches!(base, ChType::Bool) => bool_text(*n != 0).into(),
        Value::Int(n) => n.to_string(),
        Value::UInt(n) => n.to_string(),
        Value::Float(f) => float_text(*f, matches!(base, ChType::Float(32))),
        Value::Decimal(n, scale) => {
            if *scale <= 0 {
                return n.to_string();
            }
            let s = *scale as u32;
            let div = 10i128.pow(s);
            let sign = if *n < 0 { "-" } else { "" };
            // Without trailing zeros, as ClickHouse prints decimals (`output_format_decimal_trailing_zeros = 0`).
            let fraction = format!("{:0width$}", (n % div).abs(), width = s as usize);
            let fraction = fraction.trim_end_matches('0');
            let whole = (n / div).abs();
            if fraction.is_empty() {
                if whole == 0 { "0".into() } else { format!("{sign}{whole}") }
            } else {
                format!("{sign}{whole}.{fraction}")
            }
        }
        Value::Str(s) => s.clone(),
        Value::Date(d) => {
            let mut out = String::with_capacity(10);
            write_date(&mut out, *d);
            out
        }
        Value::DateTime(ns) => {
            let mut out = String::with_capacity(29);
            write_datetime(&mut out, *ns, base);
            out
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
    use chrono::NaiveDate;

    /// ClickHouse's float text is `Display`'s (shortest round-trip digits, positional) for decimal exponents -6 to 20
    /// and `{:e}`'s (the same digits, scientific) outside them. The differential test checks it against ClickHouse.
    #[test]
    fn floats_print_as_clickhouse_does() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let check = |f: f64| {
            if f.is_finite() {
                let mut out = String::new();
                write_float(&mut out, f, false);
                let exponent: i32 = format!("{f:e}").split_once('e').unwrap().1.parse().unwrap();
                let expected = if f != 0.0 && !(-6..21).contains(&exponent) { format!("{f:e}") } else { f.to_string() };
                assert_eq!(out, expected, "{f:e}");
                assert_eq!(out.parse::<f64>().unwrap().to_bits(), f.to_bits(), "{out} reads back");
                let single = f as f32;
                if single.is_finite() {
                    let mut out = String::new();
                    write_float(&mut out, single.into(), true);
                    assert_eq!(out.parse::<f32>().unwrap().to_bits(), single.to_bits(), "{out} reads back as Float32");
                    assert!(out.len() <= format!("{single:e}").len() + 22, "{out}");
                }
            }
        };
        for f in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            -0.05,
            0.001,
            0.125,
            1.005,
            -2499.75,
            999999999999999.9,
            99999999999999.99,
            864.25,
            1e15,
            1e16,
            1e17,
            1e20,
            1e21,
            1.25e21,
            1e-5,
            1e-6,
            1e-7,
            1.5e-7,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            123456789.125,
            0.30000000000000004,
            9007199254740993.0,
        ] {
            check(f);
        }
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            check(f64::from_bits(seed));
            // Numbers with few decimals, as data usually has.
            check((seed % 10_000_000) as f64 / [1.0, 4.0, 100.0, 1000.0][(seed >> 60) as usize % 4]);
        }
        let text = |f: f64, single: bool| {
            let mut out = String::new();
            write_float(&mut out, f, single);
            out
        };
        assert_eq!(text(0.1f32.into(), true), "0.1");
        assert_eq!(text(1e-7f32.into(), true), "1e-7");
        assert_eq!(text(1e20f32.into(), true), "100000000000000000000");
        assert_eq!(text(1e21, false), "1e21");
        assert_eq!(text(-1.5e-7, false), "-1.5e-7");
        assert_eq!(text(0.000001, false), "0.000001");
    }

    #[test]
    fn datetimes_by_hand_match_chrono() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let chrono_text = |ns: i64, precision: u8| {
            let t = DateTime::from_timestamp(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32)
                .map(|t| t.naive_utc())
                .unwrap_or_default();
            let mut out = String::new();
            tinybird_core::types::wire::write_datetime(&mut out, &t, precision);
            out
        };
        // i64 nanoseconds span 1677 to 2262: every day of it goes through the hand-written path.
        let mut edges = vec![0, -1, 1, i64::MIN, i64::MAX, -999_999_999, 86_400_000_000_000 - 1];
        // 2000-02-29, 2000-03-01, 1900-03-01, 2100-03-01, 1700-03-01.
        edges.extend(
            [951_782_400, 951_868_800, -2_203_891_200, 4_107_542_400, -8_512_416_000].map(|s: i64| s * 1_000_000_000),
        );
        for i in 0..100_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Whole range, and whole seconds (DateTime columns) near today.
            edges.push(if i % 2 == 0 { seed as i64 } else { (seed % 4_000_000_000) as i64 * 1_000_000_000 });
        }
        for days in [0, -1, i32::MIN, i32::MAX, -719_528, -719_529, 2_932_896, 2_932_897]
            .into_iter()
            .chain(edges.iter().map(|&n| (n >> 20) as i32))
            // Years 0 to 9999, every 13th day.
            .chain((-719_528..=2_932_896).step_by(13))
        {
            use chrono::Datelike;
            let mut out = String::new();
            write_date(&mut out, days);
            let expected = match days.checked_add(719_163).and_then(NaiveDate::from_num_days_from_ce_opt) {
                Some(d) if (0..=9999).contains(&d.year()) => d.format("%Y-%m-%d").to_string(),
                _ => "1970-01-01".to_string(),
            };
            assert_eq!(out, expected, "day {days}");
        }
        for ns in edges {
            for precision in [None, Some(0), Some(3), Some(6), Some(9)] {
                let ty = ChType::DateTime { precision, tz: None };
                let mut out = String::new();
                write_datetime(&mut out, i128::from(ns), &ty);
                assert_eq!(out, chrono_text(ns, precision.unwrap_or(0)), "{ns} {precision:?}");
            }
        }
    }

    #[test]
    fn cells_print_as_their_values_do() {
        use datafusion::arrow::array::{
            ArrayRef, Date32Array, Float64Array, Int8Array, Int64Array, TimestampMillisecondArray,
            TimestampSecondArray, UInt16Array, UInt64Array,
        };
        use std::sync::Arc;
        let columns: Vec<(ArrayRef, &str)> = vec![
            (Arc::new(Int8Array::from(vec![Some(-128), None, Some(127)])), "Nullable(Int8)"),
            (Arc::new(Int64Array::from(vec![i64::MIN, 0, i64::MAX])), "Int64"),
            (Arc::new(UInt16Array::from(vec![0, 1, u16::MAX])), "UInt16"),
            (Arc::new(UInt64Array::from(vec![0, 7, u64::MAX])), "UInt64"),
            (Arc::new(Float64Array::from(vec![f64::NAN, -0.0, 1e300])), "Float64"),
            (Arc::new(Date32Array::from(vec![0, 19_000, i32::MAX])), "Date"),
            (Arc::new(TimestampSecondArray::from(vec![0, 1_700_000_000, -1])), "DateTime"),
            (Arc::new(TimestampMillisecondArray::from(vec![0, 1_700_000_000_123, -1])), "DateTime64(3)"),
        ];
        for (array, ty) in &columns {
            let ty = ChType::parse(ty).unwrap();
            for quote in [false, true] {
                let options = OutputOptions { quote_64bit: quote, quote_denormals: quote };
                for row in 0..array.len() {
                    let (mut direct, mut via_value) = (String::new(), String::new());
                    cell_writer(array.as_ref(), &ty, options)(&mut direct, row);
                    json_value(&mut via_value, &value_at(array.as_ref(), row), &ty, options);
                    assert_eq!(direct, via_value, "{ty} row {row}");
                }
            }
        }
    }

    #[test]
    fn prints_values_as_clickhouse() {
        let dt = ChType::DateTime { precision: None, tz: None };
        assert_eq!(ch_text(&Value::DateTime(1_704_067_200_000_000_000), &dt), "2024-01-01 00:00:00");
        let dt3 = ChType::DateTime { precision: Some(3), tz: None };
        assert_eq!(ch_text(&Value::DateTime(1_704_067_200_123_000_000), &dt3), "2024-01-01 00:00:00.123");
        assert_eq!(ch_text(&Value::Date(19_723), &ChType::Date { wide: false }), "2024-01-01");
        assert_eq!(ch_text(&Value::Float(3.0), &ChType::Float(64)), "3");
        assert_eq!(ch_text(&Value::Decimal(-12345, 2), &ChType::Decimal(10, 2)), "-123.45");
        assert_eq!(ch_text(&Value::Decimal(-1030, 2), &ChType::Decimal(10, 2)), "-10.3");
        assert_eq!(ch_text(&Value::Decimal(1000, 2), &ChType::Decimal(10, 2)), "10");
        assert_eq!(ch_text(&Value::Decimal(-50, 2), &ChType::Decimal(10, 2)), "-0.5");
        assert_eq!(ch_text(&Value::Decimal(0, 2), &ChType::Decimal(10, 2)), "0");
        let arr = ChType::Array(Box::new(ChType::String));
        assert_eq!(ch_text(&Value::Array(vec![Value::Str("a'b".into())]), &arr), "['a\\'b']");
        let dt6 = ChType::DateTime { precision: Some(6), tz: None };
        assert_eq!(ch_text(&Value::DateTime(-1), &dt6), "1969-12-31 23:59:59.999999");
        assert_eq!(ch_text(&Value::Date(-25_567), &ChType::Date { wide: true }), "1900-01-01");
        // A day count beyond any calendar falls back to the epoch rather than overflowing.
        assert_eq!(ch_text(&Value::Date(i32::MAX), &ChType::Date { wide: true }), "1970-01-01");
    }

    /// The in-place escaper writes what serde_json writes, for every byte class, but for `/`, which ClickHouse
    /// escapes (`\/`).
    #[test]
    fn json_strings_are_escaped_as_clickhouse_does() {
        let mut samples: Vec<String> = (0u32..0x80).filter_map(char::from_u32).map(|c| format!("a{c}b")).collect();
        samples.extend(
            ["", "plain", "é ü 日本 🎉", "\u{7f}\u{80}", "quote\"back\\slash", "\u{0}\u{1f}\n\r\t\u{8}\u{c}"]
                .map(String::from),
        );
        for s in samples {
            assert_eq!(json_string(&s), serde_json::to_string(&s).unwrap().replace('/', "\\/"), "{s:?}");
        }
    }

    /// Date and time text is ClickHouse's at the edges of the ranges and for every precision.
    #[test]
    fn datetimes_print_with_their_precision() {
        let ns = 1_704_067_200_123_456_789;
        for (p, want) in [
            (None, "2024-01-01 00:00:00"),
            (Some(0), "2024-01-01 00:00:00"),
            (Some(1), "2024-01-01 00:00:00.1"),
            (Some(3), "2024-01-01 00:00:00.123"),
            (Some(9), "2024-01-01 00:00:00.123456789"),
        ] {
            assert_eq!(ch_text(&Value::DateTime(ns), &ChType::DateTime { precision: p, tz: None }), want);
        }
        let dt = ChType::DateTime { precision: None, tz: None };
        let mut out = String::new();
        json_value(&mut out, &Value::DateTime(4_294_967_295_000_000_000), &dt, OutputOptions::default());
        assert_eq!(out, "\"2106-02-07 06:28:15\"");
    }
}
