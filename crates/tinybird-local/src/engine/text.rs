//! ClickHouse functions computed row by row from text: URL parts (`domain`, `path`, `extractURLParameter`, …),
//! `encodeURLComponent`/`decodeURLComponent`, hashes (`cityHash64`, `sipHash64`, `xxHash64`, `hex(MD5(…))`),
//! `toUUID`, `isValidJSON`, `format` and `formatReadableSize`/`formatReadableQuantity`, as DataFusion UDFs named
//! `ch_` and the function's name in snake case.
//!
//! Each takes its arguments as text (a NULL argument gives NULL) and gives ClickHouse's value, or refuses the row
//! with an error naming what this engine does not reproduce: ClickHouse's URL functions read any string with
//! quirks of their own (`domain` of a URL with a user name is empty), so only URLs of the everyday form
//! `scheme://host[:port][/path][?query][#fragment]` (or `//host…`, or an empty string) are taken apart here.

use crate::types::{CH_TYPE_KEY, ChType};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder, UInt8Builder, UInt64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::sync::Arc;

/// What a function gives for one row.
enum Out {
    Text(String),
    Number(u64),
    Signed(i64),
    Float(f64),
    Flag(bool),
    Null,
}

/// How a function computes a row: from its arguments, or from the URL its one argument holds.
#[derive(Clone, Copy)]
enum Body {
    Row(fn(&[&str]) -> std::result::Result<Out, String>),
    Url(fn(&Url<'_>) -> String),
}

/// One function: its ClickHouse name, its arity, its result, and the computation.
struct Function {
    udf: &'static str,
    ch: &'static str,
    arity: std::ops::RangeInclusive<usize>,
    result: Result_,
    body: Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Result_ {
    Text,
    /// A `UUID`: text, with the declared type in the field's metadata.
    Uuid,
    UInt64,
    Int64,
    Float64,
    /// `UInt8` 0/1 in ClickHouse.
    Flag,
}

const FUNCTIONS: &[Function] = &[
    url("ch_url_domain", "domain", |u| u.host.to_string()),
    url("ch_url_domain_without_www", "domainWithoutWWW", |u| u.host.strip_prefix("www.").unwrap_or(u.host).to_string()),
    url("ch_url_protocol", "protocol", |u| u.scheme.to_string()),
    url("ch_url_path", "path", |u| u.path.to_string()),
    url("ch_url_path_full", "pathFull", |u| {
        if u.path.is_empty() { String::new() } else { u.text[u.path_start..].to_string() }
    }),
    url("ch_url_query_string", "queryString", |u| u.query.unwrap_or("").to_string()),
    url("ch_url_fragment", "fragment", |u| u.fragment.unwrap_or("").to_string()),
    url("ch_url_top_level_domain", "topLevelDomain", |u| match u.host.rsplit_once('.') {
        Some((_, tld)) if !tld.is_empty() && !tld.bytes().all(|b| b.is_ascii_digit()) => tld.to_string(),
        _ => String::new(),
    }),
    url("ch_url_cut_query_string", "cutQueryString", |u| {
        let mut out = u.text[..u.query_start.unwrap_or(u.end_of_path)].to_string();
        if let Some(f) = u.fragment {
            out.push('#');
            out.push_str(f);
        }
        out
    }),
    url("ch_url_cut_fragment", "cutFragment", |u| {
        u.text[..u.fragment_start.map_or(u.text.len(), |f| f - 1)].to_string()
    }),
    url("ch_url_cut_query_string_and_fragment", "cutQueryStringAndFragment", |u| u.text[..u.end_of_path].to_string()),
    url("ch_url_cut_www", "cutWWW", |u| match u.host.strip_prefix("www.") {
        Some(_) => format!("{}{}", &u.text[..u.host_start], &u.text[u.host_start + 4..]),
        None => u.text.to_string(),
    }),
    Function {
        udf: "ch_extract_url_parameter",
        ch: "extractURLParameter",
        arity: 2..=2,
        result: Result_::Text,
        body: Body::Row(|a| {
            if a[0].is_empty() {
                return Ok(Out::Text(String::new()));
            }
            let u = Url::parse(a[0])?;
            // ClickHouse reads the parameters from the first `?` or `#` on, separated by `&` or `#`.
            let start = u.text.find(['?', '#']).map_or(u.text.len(), |i| i + 1);
            let found = u.text[start..].split(['&', '#']).find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key == a[1]).then(|| value.to_string())
            });
            Ok(Out::Text(found.unwrap_or_default()))
        }),
    },
    Function {
        udf: "ch_decode_url_component",
        ch: "decodeURLComponent",
        arity: 1..=1,
        result: Result_::Text,
        body: Body::Row(|a| {
            // After an invalid escape ClickHouse skips differently from the decoder here: refused.
            if a[0]
                .split('%')
                .skip(1)
                .any(|rest| rest.len() < 2 || !rest.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit))
            {
                return Err("decodeURLComponent of a value holding a `%` not followed by two hex digits".into());
            }
            let bytes: Vec<u8> = percent_encoding::percent_decode_str(a[0]).collect();
            String::from_utf8(bytes)
                .map(Out::Text)
                .map_err(|_| "decodeURLComponent of a value whose bytes are not UTF-8".to_string())
        }),
    },
    Function {
        udf: "ch_encode_url_component",
        ch: "encodeURLComponent",
        arity: 1..=1,
        result: Result_::Text,
        body: Body::Row(|a| {
            // Everything but RFC 3986's unreserved characters, as ClickHouse encodes.
            const SET: &percent_encoding::AsciiSet =
                &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
            Ok(Out::Text(percent_encoding::utf8_percent_encode(a[0], SET).to_string()))
        }),
    },
    Function {
        udf: "ch_city_hash64",
        ch: "cityHash64",
        arity: 1..=1,
        result: Result_::UInt64,
        body: Body::Row(|a| Ok(Out::Number(ch_cityhash102::cityhash64(a[0].as_bytes())))),
    },
    Function {
        udf: "ch_sip_hash64",
        ch: "sipHash64",
        arity: 1..=1,
        result: Result_::UInt64,
        body: Body::Row(|a| Ok(Out::Number(siphasher::sip::SipHasher24::new_with_keys(0, 0).hash(a[0].as_bytes())))),
    },
    Function {
        udf: "ch_xx_hash64",
        ch: "xxHash64",
        arity: 1..=1,
        result: Result_::UInt64,
        body: Body::Row(|a| Ok(Out::Number(twox_hash::XxHash64::oneshot(0, a[0].as_bytes())))),
    },
    Function {
        udf: "ch_md5_hex",
        ch: "hex(MD5(…))",
        arity: 1..=1,
        result: Result_::Text,
        body: Body::Row(|a| {
            use md5::Digest as _;
            let digest = md5::Md5::digest(a[0].as_bytes());
            Ok(Out::Text(digest.iter().map(|b| format!("{b:02X}")).collect()))
        }),
    },
    // Raw MD5 bytes (a FixedString(16)) have no place in this engine's UTF-8 strings: refused when planned.
    Function { udf: "ch_md5", ch: "MD5", arity: 1..=1, result: Result_::Text, body: Body::Row(|_| Err(String::new())) },
    Function {
        udf: "ch_to_uuid",
        ch: "toUUID",
        arity: 1..=1,
        result: Result_::Uuid,
        body: Body::Row(|a| match uuid_text(a[0]) {
            Some(u) => Ok(Out::Text(u)),
            None => Err("DB::Exception: Cannot parse UUID from String. (CANNOT_PARSE_UUID)".to_string()),
        }),
    },
    Function {
        udf: "ch_to_uuid_or_null",
        ch: "toUUIDOrNull",
        arity: 1..=1,
        result: Result_::Uuid,
        body: Body::Row(|a| Ok(uuid_text(a[0]).map_or(Out::Null, Out::Text))),
    },
    Function {
        udf: "ch_to_uuid_or_zero",
        ch: "toUUIDOrZero",
        arity: 1..=1,
        result: Result_::Uuid,
        body: Body::Row(|a| {
            Ok(Out::Text(uuid_text(a[0]).unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into())))
        }),
    },
    Function {
        udf: "ch_is_valid_json",
        ch: "isValidJSON",
        arity: 1..=1,
        result: Result_::Flag,
        body: Body::Row(|a| match serde_json::from_str::<serde::de::IgnoredAny>(a[0]) {
            Ok(_) => Ok(Out::Flag(true)),
            // Nesting past serde's 128 levels: ClickHouse's parser goes deeper.
            Err(e) if e.to_string().contains("recursion limit") => {
                Err("isValidJSON of a document nested more than 128 levels deep".to_string())
            }
            Err(_) => Ok(Out::Flag(false)),
        }),
    },
    Function {
        udf: "ch_simple_json_has",
        ch: "simpleJSONHas",
        arity: 2..=2,
        result: Result_::Flag,
        body: Body::Row(|a| Ok(Out::Flag(simple_json_value(a[0], a[1]).is_some()))),
    },
    Function {
        udf: "ch_simple_json_extract_string",
        ch: "simpleJSONExtractString",
        arity: 2..=2,
        result: Result_::Text,
        body: Body::Row(|a| {
            let value = simple_json_value(a[0], a[1]).unwrap_or("");
            let parsed = serde_json::Deserializer::from_str(value).into_iter::<String>().next();
            match parsed {
                Some(Ok(s)) if value.starts_with('"') => Ok(Out::Text(s)),
                // An escape JSON does not have (`\q`): ClickHouse's reading of it is not reproduced.
                Some(Err(e)) if value.starts_with('"') && !e.is_eof() => {
                    Err("simpleJSONExtractString of a string with an invalid escape".to_string())
                }
                _ => Ok(Out::Text(String::new())),
            }
        }),
    },
    Function {
        udf: "ch_simple_json_extract_raw",
        ch: "simpleJSONExtractRaw",
        arity: 2..=2,
        result: Result_::Text,
        body: Body::Row(|a| {
            let Some(value) = simple_json_value(a[0], a[1]) else { return Ok(Out::Text(String::new())) };
            let mut values = serde_json::Deserializer::from_str(value).into_iter::<serde::de::IgnoredAny>();
            Ok(Out::Text(match values.next() {
                Some(Ok(_)) => value[..values.byte_offset()].to_string(),
                _ => String::new(),
            }))
        }),
    },
    Function {
        udf: "ch_simple_json_extract_int",
        ch: "simpleJSONExtractInt",
        arity: 2..=2,
        result: Result_::Int64,
        body: Body::Row(|a| {
            let digits = number_prefix(simple_json_value(a[0], a[1]).unwrap_or(""), true);
            Ok(Out::Signed(digits.parse().unwrap_or(0)))
        }),
    },
    Function {
        udf: "ch_simple_json_extract_uint",
        ch: "simpleJSONExtractUInt",
        arity: 2..=2,
        result: Result_::UInt64,
        body: Body::Row(|a| {
            let digits = number_prefix(simple_json_value(a[0], a[1]).unwrap_or(""), false);
            Ok(Out::Number(digits.parse().unwrap_or(0)))
        }),
    },
    Function {
        udf: "ch_simple_json_extract_float",
        ch: "simpleJSONExtractFloat",
        arity: 2..=2,
        result: Result_::Float64,
        body: Body::Row(|a| {
            let value = simple_json_value(a[0], a[1]).unwrap_or("");
            let value = value.strip_prefix('"').unwrap_or(value);
            let run = value.find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')));
            let run = &value[..run.unwrap_or(value.len())];
            // The longest prefix that is a number.
            let parsed = (1..=run.len()).rev().find_map(|n| run[..n].parse::<f64>().ok());
            Ok(Out::Float(parsed.unwrap_or(0.0)))
        }),
    },
    Function {
        udf: "ch_simple_json_extract_bool",
        ch: "simpleJSONExtractBool",
        arity: 2..=2,
        result: Result_::Flag,
        body: Body::Row(|a| Ok(Out::Flag(simple_json_value(a[0], a[1]).is_some_and(|v| v.starts_with("true"))))),
    },
    Function { udf: "ch_format", ch: "format", arity: 1..=64, result: Result_::Text, body: Body::Row(format_pattern) },
    Function {
        udf: "ch_format_readable_size",
        ch: "formatReadableSize",
        arity: 1..=1,
        result: Result_::Text,
        body: Body::Row(|a| {
            readable(a[0], 1024.0, &[" B", " KiB", " MiB", " GiB", " TiB", " PiB", " EiB", " ZiB", " YiB"])
        }),
    },
    Function {
        udf: "ch_format_readable_quantity",
        ch: "formatReadableQuantity",
        arity: 1..=1,
        result: Result_::Text,
        body: Body::Row(|a| {
            readable(
                a[0],
                1000.0,
                &[
                    "",
                    " thousand",
                    " million",
                    " billion",
                    " trillion",
                    " quadrillion",
                    " quintillion",
                    " sextillion",
                    " septillion",
                    " octillion",
                    " nonillion",
                ],
            )
        }),
    },
];

const fn url(udf: &'static str, ch: &'static str, part: fn(&Url<'_>) -> String) -> Function {
    Function { udf, ch, arity: 1..=1, result: Result_::Text, body: Body::Url(part) }
}

/// A URL of the everyday form, taken apart (byte offsets into `text`).
struct Url<'a> {
    text: &'a str,
    scheme: &'a str,
    host: &'a str,
    host_start: usize,
    path: &'a str,
    path_start: usize,
    end_of_path: usize,
    query: Option<&'a str>,
    query_start: Option<usize>,
    fragment: Option<&'a str>,
    fragment_start: Option<usize>,
}

impl<'a> Url<'a> {
    fn parse(text: &'a str) -> std::result::Result<Url<'a>, String> {
        // The value stays out of the message: an error must not show a row the caller's filter hides.
        let refuse = || {
            "a URL function of a value that is not of the form scheme://host[:port][/path][?query][#fragment] \
             (ClickHouse reads other forms by rules of its own)"
                .to_string()
        };
        let (scheme, host_start) = match text.find("//") {
            Some(0) => ("", 2),
            Some(i) if text[..i].ends_with(':') => {
                let scheme = &text[..i - 1];
                // ClickHouse looks for `://` in the first 16 bytes only.
                if scheme.len() > 13 {
                    return Err(refuse());
                }
                let mut chars = scheme.chars();
                if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                    || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                {
                    return Err(refuse());
                }
                (scheme, i + 2)
            }
            _ => return Err(refuse()),
        };
        let rest = &text[host_start..];
        let authority_end = rest.find(['/', '?', '#']).map_or(text.len(), |i| host_start + i);
        let authority = &text[host_start..authority_end];
        let host = match authority.split_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return Err(refuse()),
            None => authority,
        };
        // ClickHouse's `domain` is empty for a host without a dot (`localhost`).
        if !host.contains('.')
            || host.starts_with('.')
            || host.ends_with('.')
            || host.contains("..")
            || !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return Err(refuse());
        }
        let fragment_start = text[authority_end..].find('#').map(|i| authority_end + i + 1);
        let before_fragment = fragment_start.map_or(text.len(), |f| f - 1);
        // ClickHouse finds a `?` after the `#` too: refused rather than guessed at.
        if fragment_start.is_some_and(|f| text[f..].contains('?')) {
            return Err(refuse());
        }
        let query_start = text[authority_end..before_fragment].find('?').map(|i| authority_end + i + 1);
        let end_of_path = query_start.map_or(before_fragment, |q| q - 1);
        // No path, and a `/` later (`https://a.com?next=/x`): ClickHouse takes the path from there.
        if end_of_path == authority_end && text[authority_end..].contains('/') {
            return Err(refuse());
        }
        Ok(Url {
            text,
            scheme,
            host,
            host_start,
            path: &text[authority_end..end_of_path],
            path_start: authority_end,
            end_of_path,
            query: query_start.map(|q| &text[q..before_fragment]),
            query_start: query_start.map(|q| q - 1),
            fragment: fragment_start.map(|f| &text[f..]),
            fragment_start,
        })
    }
}

/// `simpleJSON…`/`visitParam…`: the text after the first `"name":` anywhere in the document (ClickHouse assumes
/// canonical JSON without spaces and searches every level), or None.
fn simple_json_value<'a>(json: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!("\"{name}\":");
    json.find(&needle).map(|at| &json[at + needle.len()..])
}

/// The integer at the start of a value (after an opening quote): digits, with a leading `-` when `signed`; empty
/// when there are none (or a `-` where unsigned).
fn number_prefix(value: &str, signed: bool) -> &str {
    let value = value.strip_prefix('"').unwrap_or(value);
    let sign = usize::from(signed && value.starts_with('-'));
    let end = value[sign..].find(|c: char| !c.is_ascii_digit()).map_or(value.len(), |i| i + sign);
    &value[..end]
}

/// A UUID's canonical text (lower case, hyphenated), from 36 characters with hyphens or 32 hex digits.
fn uuid_text(s: &str) -> Option<String> {
    let ok = (s.len() == 36 || s.len() == 32) && uuid::Uuid::try_parse(s).is_ok();
    ok.then(|| uuid::Uuid::try_parse(s).map(|u| u.hyphenated().to_string()).ok()).flatten()
}

/// `format(pattern, args…)`: `{}` takes the next argument, `{n}` the n-th (from 0); `{{` and `}}` are braces.
fn format_pattern(a: &[&str]) -> std::result::Result<Out, String> {
    let (pattern, args) = (a[0], &a[1..]);
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    let (mut next, mut numbered, mut sequential) = (0usize, false, false);
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut digits = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(d) if d.is_ascii_digit() => digits.push(d),
                        _ => return Err(format!("DB::Exception: Invalid format string {pattern:?}. (BAD_ARGUMENTS)")),
                    }
                }
                let index = if digits.is_empty() {
                    sequential = true;
                    next += 1;
                    next - 1
                } else {
                    numbered = true;
                    digits.parse().map_err(|_| format!("format: argument {digits} is out of range"))?
                };
                if numbered && sequential {
                    return Err(format!(
                        "DB::Exception: Cannot switch from automatic field numbering to manual field specification in \
                         {pattern:?}. (BAD_ARGUMENTS)"
                    ));
                }
                let arg = args.get(index).ok_or_else(|| {
                    format!(
                        "DB::Exception: Not enough arguments to fill the placeholders in {pattern:?}. (BAD_ARGUMENTS)"
                    )
                })?;
                out.push_str(arg);
            }
            '}' => {
                return Err(format!("DB::Exception: Unbalanced braces in format string {pattern:?}. (BAD_ARGUMENTS)"));
            }
            c => out.push(c),
        }
    }
    Ok(Out::Text(out))
}

/// `formatReadableSize`/`formatReadableQuantity`: divided by `step` while at least `step` (up to the last unit), with
/// two decimals rounded half away from zero on the exact binary value, as ClickHouse's double-conversion does.
fn readable(x: &str, step: f64, units: &[&str]) -> std::result::Result<Out, String> {
    let mut v: f64 = x.parse().map_err(|_| "formatReadable… of a value that is not a number".to_string())?;
    if !v.is_finite() || v.abs() >= step.powi(units.len() as i32) {
        return Err("formatReadable… of a value that is not finite or beyond its largest unit".to_string());
    }
    let mut unit = 0;
    while unit + 1 < units.len() && v.abs() >= step {
        v /= step;
        unit += 1;
    }
    Ok(Out::Text(format!("{}{}", fixed2(v), units[unit])))
}

/// `v` with two decimals, an exact tie (`1.125`) rounded away from zero; Rust's `{:.2}` rounds ties to even. A
/// value written with a 5 in the thousandths that is not a tie in binary (`9.995` is 9.99499…) rounds as its binary
/// value does, as `printf("%.2f")` does in ClickHouse: a tie is exact only when `n / 1000` is a binary fraction,
/// that is when 125 divides `n`.
fn fixed2(v: f64) -> String {
    let thousandths = v * 1000.0;
    if thousandths.fract() == 0.0 && thousandths.abs() < 1e15 {
        let n = thousandths as i64;
        if n % 10 != 0 && (n.abs() % 10 == 5) && n % 125 == 0 && (n as f64) / 1000.0 == v {
            let hundredths = (n + 5 * n.signum()) / 10;
            let sign = if hundredths < 0 { "-" } else { "" };
            let h = hundredths.unsigned_abs();
            return format!("{sign}{}.{:02}", h / 100, h % 100);
        }
    }
    format!("{v:.2}")
}

/// `ch_type_name(column)`: the column's declared ClickHouse type (`toTypeName` of a column); refused for a value
/// whose type was not declared (an expression: its `Nullable`/`LowCardinality` wrappers are not known here).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TypeName {
    signature: Signature,
}

impl ScalarUDFImpl for TypeName {
    fn name(&self) -> &str {
        "ch_type_name"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        if !args.arg_fields[0].metadata().contains_key(CH_TYPE_KEY) {
            return exec_err!(
                "DB::Exception: toTypeName of a value without a declared type (an expression, not a column) is not \
                 supported by tinybird-local's DataFusion engine"
            );
        }
        Ok(Arc::new(Field::new("ch_type_name", DataType::Utf8, false)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = ChType::of_field(&args.arg_fields[0]).to_string();
        Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::Utf8(Some(name))))
    }
}

/// Registers the functions.
pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(TypeName { signature: Signature::any(1, Volatility::Immutable) }));
    for (i, f) in FUNCTIONS.iter().enumerate() {
        let signature = if f.arity.start() == f.arity.end() {
            Signature::any(*f.arity.start(), Volatility::Immutable)
        } else {
            Signature::variadic_any(Volatility::Immutable)
        };
        ctx.register_udf(ScalarUDF::new_from_impl(TextFunction { index: i, signature }));
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TextFunction {
    index: usize,
    signature: Signature,
}

impl TextFunction {
    fn function(&self) -> &'static Function {
        &FUNCTIONS[self.index]
    }
}

impl ScalarUDFImpl for TextFunction {
    fn name(&self) -> &str {
        self.function().udf
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.function().result {
            Result_::Text | Result_::Uuid => DataType::Utf8,
            Result_::UInt64 => DataType::UInt64,
            Result_::Int64 => DataType::Int64,
            Result_::Float64 => DataType::Float64,
            Result_::Flag => DataType::UInt8,
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let f = self.function();
        if f.udf == "ch_md5" {
            return exec_err!(
                "DB::Exception: MD5 as raw bytes (a FixedString(16)) is not supported by tinybird-local's DataFusion \
                 engine; hex(MD5(…)) is"
            );
        }
        if !f.arity.contains(&args.arg_fields.len()) {
            return exec_err!("DB::Exception: Wrong number of arguments for function {}", f.ch);
        }
        for field in args.arg_fields {
            let t = field.data_type();
            // Text of a String (a UUID, an IP or an enum is hashed or read by value in ClickHouse, not as text).
            let text = matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
                && matches!(ChType::of_field(field).base(), ChType::String);
            let plain = if f.udf.starts_with("ch_format_readable") {
                t.is_integer() || t.is_floating() || t.is_null()
            } else {
                text || (f.udf == "ch_format" && t.is_integer())
            };
            if !plain {
                return exec_err!(
                    "DB::Exception: tinybird-local's DataFusion engine does not support {} of a {}",
                    f.ch,
                    ChType::of_field(field)
                );
            }
        }
        let nullable = f.udf.ends_with("_or_null") || args.arg_fields.iter().any(|a| a.is_nullable());
        let field = Field::new(self.name(), self.return_type(&[])?, nullable);
        Ok(Arc::new(match f.result {
            Result_::Uuid => field.with_metadata(HashMap::from([(CH_TYPE_KEY.to_string(), "UUID".to_string())])),
            _ => field,
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let f = self.function();
        let rows = args.number_rows;
        let arrays = super::functions::arrays_of(&args)?;
        let texts: Vec<ArrayRef> =
            arrays.iter().map(|a| cast(a, &DataType::Utf8)).collect::<std::result::Result<_, _>>()?;
        let columns: Vec<_> = texts.iter().map(AsArray::as_string::<i32>).collect();
        let mut text = StringBuilder::new();
        let mut number = UInt64Builder::new();
        let mut flag = UInt8Builder::new();
        let mut signed = datafusion::arrow::array::Int64Builder::new();
        let mut float = datafusion::arrow::array::Float64Builder::new();
        let mut row: Vec<&str> = Vec::with_capacity(columns.len());
        for r in 0..rows {
            row.clear();
            let out = if columns.iter().any(|c| c.is_null(r)) {
                Out::Null
            } else {
                row.extend(columns.iter().map(|c| c.value(r)));
                let computed = match f.body {
                    Body::Row(body) => body(&row),
                    Body::Url(part) => {
                        if row[0].is_empty() {
                            Ok(Out::Text(String::new()))
                        } else {
                            Url::parse(row[0]).map(|u| Out::Text(part(&u)))
                        }
                    }
                };
                match computed {
                    Ok(out) => out,
                    Err(why) if why.starts_with("DB::Exception") => return exec_err!("{why}"),
                    Err(why) => {
                        return exec_err!(
                            "DB::Exception: {why} is not supported by tinybird-local's DataFusion engine"
                        );
                    }
                }
            };
            match out {
                Out::Text(s) => text.append_value(s),
                Out::Number(n) => number.append_value(n),
                Out::Flag(b) => flag.append_value(u8::from(b)),
                Out::Signed(n) => signed.append_value(n),
                Out::Float(f) => float.append_value(f),
                Out::Null => match f.result {
                    Result_::Text | Result_::Uuid => text.append_null(),
                    Result_::UInt64 => number.append_null(),
                    Result_::Flag => flag.append_null(),
                    Result_::Int64 => signed.append_null(),
                    Result_::Float64 => float.append_null(),
                },
            }
        }
        let out: ArrayRef = match f.result {
            Result_::Text | Result_::Uuid => Arc::new(text.finish()),
            Result_::UInt64 => Arc::new(number.finish()),
            Result_::Flag => Arc::new(flag.finish()),
            Result_::Int64 => Arc::new(signed.finish()),
            Result_::Float64 => Arc::new(float.finish()),
        };
        Ok(ColumnarValue::Array(out))
    }
}
