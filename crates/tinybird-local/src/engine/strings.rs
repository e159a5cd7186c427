//! ClickHouse string functions that count or cut bytes, where DataFusion's count characters, as the DataFusion
//! UDFs `ch_position`, `ch_reverse`, `ch_replace_one`, `ch_base64_encode`, `ch_hex` and `ch_left_pad`/`ch_right_pad`.
//!
//! A result ClickHouse would give as bytes that are not UTF-8 (`reverse` of `ñ`) is refused: this engine's strings
//! are UTF-8 text.

use crate::types::ChType;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder, UInt64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    /// `position(haystack, needle)`: the 1-based byte offset of the first match, 0 for none, 1 for an empty needle.
    Position,
    /// `reverse(s)`: the bytes in reverse order.
    Reverse,
    /// `replaceOne(s, pattern, replacement)`: the first occurrence only; an empty pattern changes nothing.
    ReplaceOne,
    /// `base64Encode(s)`: standard alphabet, padded.
    Base64,
    /// `hex(x)`: upper-case hex of a string's bytes, or of an integer's bytes (big-endian, leading zero bytes
    /// dropped, a negative number as its two's complement in its type's width).
    Hex,
    /// `leftPad(s, n, pad)` / `rightPad(s, n, pad)`: `s` cut or padded to `n` bytes, the pad repeated (and cut).
    Pad { left: bool },
}

/// Registers the functions.
pub(super) fn register(ctx: &SessionContext) {
    for (name, op, arity) in [
        ("ch_position", Op::Position, 2),
        ("ch_reverse", Op::Reverse, 1),
        ("ch_replace_one", Op::ReplaceOne, 3),
        ("ch_base64_encode", Op::Base64, 1),
        ("ch_hex", Op::Hex, 1),
        ("ch_left_pad", Op::Pad { left: true }, 3),
        ("ch_right_pad", Op::Pad { left: false }, 3),
    ] {
        let signature = Signature::any(arity, Volatility::Immutable);
        ctx.register_udf(ScalarUDF::new_from_impl(StringFunction { name, op, signature }));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(Match { signature: Signature::any(2, Volatility::Immutable) }));
    ctx.register_udf(ScalarUDF::new_from_impl(ExtractAll { signature: Signature::any(2, Volatility::Immutable) }));
    for (name, all) in [("ch_replace_regexp_one", false), ("ch_replace_regexp_all", true)] {
        let signature = Signature::any(3, Volatility::Immutable);
        ctx.register_udf(ScalarUDF::new_from_impl(ReplaceRegexp { name, all, signature }));
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct StringFunction {
    name: &'static str,
    op: Op,
    signature: Signature,
}

fn text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
}

impl ScalarUDFImpl for StringFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let strings = args.iter().all(text);
        match self.op {
            Op::Position if strings => Ok(DataType::UInt64),
            Op::Reverse | Op::ReplaceOne | Op::Base64 if strings => Ok(DataType::Utf8),
            Op::Hex if strings || args[0].is_integer() => Ok(DataType::Utf8),
            Op::Pad { .. }
                if text(&args[0]) && text(&args[2]) && (args[1].is_integer() || args[1] == DataType::Null) =>
            {
                Ok(DataType::Utf8)
            }
            _ => exec_err!(
                "tinybird-local's DataFusion engine does not support {} of {}",
                self.name.trim_start_matches("ch_"),
                args.iter().map(|t| ChType::from_arrow(t).to_string()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = super::functions::arrays_of(&args)?;
        if self.op == Op::Hex && arrays[0].data_type().is_integer() {
            return Ok(ColumnarValue::Array(hex_integers(&arrays[0])?));
        }
        let strings: Vec<ArrayRef> =
            arrays.iter().map(|a| cast(a, &DataType::Utf8)).collect::<std::result::Result<_, _>>()?;
        let s: Vec<_> = strings.iter().map(AsArray::as_string::<i32>).collect();
        let null = |r: usize| s.iter().any(|a| a.is_null(r));
        let out: ArrayRef = if self.op == Op::Position {
            let mut b = UInt64Builder::with_capacity(rows);
            for r in 0..rows {
                if null(r) {
                    b.append_null();
                } else {
                    let (haystack, needle) = (s[0].value(r), s[1].value(r));
                    b.append_value(haystack.find(needle).map_or(0, |i| i as u64 + 1));
                }
            }
            Arc::new(b.finish())
        } else {
            let mut b = StringBuilder::with_capacity(rows, 0);
            for r in 0..rows {
                if null(r) {
                    b.append_null();
                    continue;
                }
                let v = s[0].value(r);
                match self.op {
                    Op::Reverse if v.is_ascii() => b.append_value(v.chars().rev().collect::<String>()),
                    Op::Reverse => {
                        return exec_err!(
                            "reverse of a value with multi-byte UTF-8 characters reverses their bytes, which \
                             tinybird-local's DataFusion engine does not support (use reverseUTF8)"
                        );
                    }
                    Op::ReplaceOne => {
                        let (pattern, replacement) = (s[1].value(r), s[2].value(r));
                        if pattern.is_empty() {
                            b.append_value(v);
                        } else {
                            b.append_value(v.replacen(pattern, replacement, 1));
                        }
                    }
                    Op::Base64 => {
                        use base64::Engine as _;
                        b.append_value(base64::engine::general_purpose::STANDARD.encode(v.as_bytes()));
                    }
                    Op::Hex => b.append_value(hex_upper(v.as_bytes())),
                    Op::Pad { left } => match pad(v, s[1].value(r), s[2].value(r), left) {
                        Some(padded) => b.append_value(padded),
                        None => {
                            return exec_err!(
                                "{} to {} bytes cuts a multi-byte UTF-8 character or has a negative length, which \
                                 tinybird-local's DataFusion engine does not support",
                                if left { "leftPad" } else { "rightPad" },
                                s[1].value(r)
                            );
                        }
                    },
                    Op::Position => unreachable!("handled above"),
                }
            }
            Arc::new(b.finish())
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// ClickHouse's `leftPad`/`rightPad` in bytes (an empty filler pads with spaces, as ClickHouse does); None when the
/// result would not be UTF-8 or the length is negative.
fn pad(s: &str, length: &str, with: &str, left: bool) -> Option<String> {
    let n: usize = length.parse().ok()?;
    let with = if with.is_empty() { " " } else { with };
    let bytes = s.as_bytes();
    let out: Vec<u8> = if bytes.len() >= n {
        bytes[..n.min(bytes.len())].to_vec()
    } else {
        let fill: Vec<u8> = with.bytes().cycle().take(n - bytes.len()).collect();
        if left { [fill.as_slice(), bytes].concat() } else { [bytes, fill.as_slice()].concat() }
    };
    String::from_utf8(out).ok()
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn hex_integers(a: &ArrayRef) -> Result<ArrayRef> {
    let bytes = match ChType::from_arrow(a.data_type()) {
        ChType::Int { bits, .. } => usize::from(bits / 8),
        _ => 8,
    };
    // Two's complement in the type's width: the low `bytes` bytes of the i64 (or the u64 itself).
    let values: Vec<Option<u64>> = if a.data_type() == &DataType::UInt64 {
        a.as_primitive::<datafusion::arrow::datatypes::UInt64Type>().iter().collect()
    } else {
        cast(a, &DataType::Int64)?
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .iter()
            .map(|v| v.map(|v| v as u64))
            .collect()
    };
    let mut b = StringBuilder::new();
    for v in values {
        match v {
            None => b.append_null(),
            Some(v) => {
                let be = v.to_be_bytes();
                let own = &be[8 - bytes.min(8)..];
                let first = own.iter().position(|&x| x != 0).unwrap_or(own.len() - 1);
                b.append_value(hex_upper(&own[first..]));
            }
        }
    }
    Ok(Arc::new(b.finish()))
}

/// `ch_replace_regexp_one(s, pattern, replacement)` and `ch_replace_regexp_all(…)`: ClickHouse's `replaceRegexpOne`
/// and `replaceRegexpAll`, the pattern and replacement constants. As ClickHouse's loop (`ReplaceRegexpImpl`): an empty
/// match steps one byte on and is not tried at the text's end (`replaceRegexpAll('ab', 'x*', '-')` is `-a-b`), empty
/// text is left as it is, `\0`–`\9` in the replacement insert a group (one the pattern lacks is an error), `\c` is `c`.
/// The pattern runs on bytes as RE2 does; a result that is not UTF-8 is refused.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ReplaceRegexp {
    name: &'static str,
    all: bool,
    signature: Signature,
}

/// A piece of a replacement: literal bytes or a group's number.
enum Piece {
    Literal(Vec<u8>),
    Group(usize),
}

/// ClickHouse's reading of a replacement (`createInstructions`).
fn pieces(replacement: &[u8]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut now = Vec::new();
    let mut i = 0;
    while i < replacement.len() {
        match (replacement[i], replacement.get(i + 1)) {
            (b'\\', Some(d)) if d.is_ascii_digit() => {
                if !now.is_empty() {
                    out.push(Piece::Literal(std::mem::take(&mut now)));
                }
                out.push(Piece::Group(usize::from(d - b'0')));
                i += 2;
            }
            (b'\\', Some(c)) => {
                now.push(*c);
                i += 2;
            }
            (c, _) => {
                now.push(c);
                i += 1;
            }
        }
    }
    if !now.is_empty() {
        out.push(Piece::Literal(now));
    }
    out
}

impl ReplaceRegexp {
    /// Replaces in `haystack` as ClickHouse's loop does. Both regular expression engines run on bytes: after an empty
    /// match, the search goes on inside a multi-byte character as in RE2 (and a match there cuts it: not UTF-8).
    fn replace(&self, re: &regex::bytes::Regex, pieces: &[Piece], haystack: &[u8], out: &mut Vec<u8>) {
        let (mut copy, mut at) = (0, 0);
        while at <= haystack.len() {
            let finish = match re.captures_at(haystack, at) {
                Some(found) => {
                    let whole = found.get(0).expect("group 0 is the match");
                    out.extend_from_slice(&haystack[copy..whole.start()]);
                    copy = whole.end();
                    at = copy;
                    for piece in pieces {
                        match piece {
                            Piece::Literal(bytes) => out.extend_from_slice(bytes),
                            Piece::Group(n) => out.extend_from_slice(found.get(*n).map_or(&[][..], |g| g.as_bytes())),
                        }
                    }
                    let mut finish = !self.all;
                    if whole.is_empty() {
                        at += 1;
                        finish |= at > haystack.len();
                    }
                    finish
                }
                None => true,
            };
            if finish {
                out.extend_from_slice(&haystack[copy..]);
                break;
            }
        }
    }
}

impl ScalarUDFImpl for ReplaceRegexp {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.iter().all(text) {
            return Ok(DataType::Utf8);
        }
        exec_err!(
            "Illegal types {} of arguments of function {}: it takes strings (ILLEGAL_TYPE_OF_ARGUMENT)",
            args.iter().map(|t| ChType::from_arrow(t).to_string()).collect::<Vec<_>>().join(", "),
            if self.all { "replaceRegexpAll" } else { "replaceRegexpOne" }
        )
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let function = if self.all { "replaceRegexpAll" } else { "replaceRegexpOne" };
        let rows = args.number_rows;
        let (Some(pattern), Some(replacement)) =
            (constant_text(function, &args.args[1])?, constant_text(function, &args.args[2])?)
        else {
            return Ok(ColumnarValue::Array(datafusion::arrow::array::new_null_array(&DataType::Utf8, rows)));
        };
        let re = compile(function, &pattern)?;
        // A pattern without metacharacters is replaced as plain text in a column (the replacement as written, `\0`
        // included) and as a regular expression in a constant: refused where the two differ.
        let plain = !pattern.contains(['\\', '|', '(', ')', '^', '$', '.', '[', '?', '*', '+', '{']);
        if plain && replacement.contains('\\') {
            return exec_err!(
                "{function} with a pattern without metacharacters and a replacement with a backslash (ClickHouse \
                 substitutes `\\0` in a constant and not in a column) is not supported by tinybird-local's DataFusion \
                 engine"
            );
        }
        let pieces = pieces(replacement.as_bytes());
        if let Some(n) = pieces.iter().find_map(|p| match p {
            Piece::Group(n) if *n >= re.captures_len() => Some(*n),
            _ => None,
        }) {
            return exec_err!(
                "Id {n} in replacement string is an invalid substitution, regular expression only has {} capturing \
                 groups (BAD_ARGUMENTS)",
                re.captures_len() - 1
            );
        }
        let strings = cast(&args.args[0].to_array(rows)?, &DataType::Utf8)?;
        let strings = strings.as_string::<i32>();
        let mut b = StringBuilder::with_capacity(rows, 0);
        let mut buffer = Vec::new();
        for v in strings.iter() {
            let Some(v) = v else {
                b.append_null();
                continue;
            };
            buffer.clear();
            if pattern.is_empty() {
                b.append_value(v);
                continue;
            }
            self.replace(&re, &pieces, v.as_bytes(), &mut buffer);
            match std::str::from_utf8(&buffer) {
                Ok(t) => b.append_value(t),
                Err(_) => {
                    return exec_err!(
                        "{function} gives bytes that are not UTF-8 here (an empty match inside a multi-byte \
                         character), which tinybird-local's DataFusion engine does not support"
                    );
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}

/// A constant argument's text (None for NULL); refused for a column.
fn constant_text(function: &str, arg: &ColumnarValue) -> Result<Option<String>> {
    match arg {
        ColumnarValue::Scalar(v) => match v.cast_to(&DataType::Utf8)? {
            datafusion::common::ScalarValue::Utf8(t) => Ok(t),
            _ => Ok(None),
        },
        ColumnarValue::Array(_) => exec_err!(
            "{function} with a pattern or replacement that is not a constant is not supported by tinybird-local's \
             DataFusion engine"
        ),
    }
}

/// A pattern compiled as ClickHouse compiles it for RE2: on bytes, `.` matching a newline.
fn compile(function: &str, pattern: &str) -> Result<regex::bytes::Regex> {
    regex::bytes::RegexBuilder::new(pattern).dot_matches_new_line(true).build().map_err(|e| {
        datafusion::error::DataFusionError::Execution(format!(
            "{function}: the pattern does not compile as this engine's regular expression (CANNOT_COMPILE_REGEXP): {e}"
        ))
    })
}

/// `ch_match(s, pattern)`: ClickHouse's `match`, 1 when the constant pattern matches somewhere in `s` (DataFusion's
/// `regexp_like` is not used: its simplification into `LIKE` reads an escaped backslash as `LIKE`'s escape).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Match {
    signature: Signature,
}

impl ScalarUDFImpl for Match {
    fn name(&self) -> &str {
        "ch_match"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.iter().all(text) {
            return Ok(DataType::UInt8);
        }
        exec_err!(
            "Illegal types {} of arguments of function match: it takes strings (ILLEGAL_TYPE_OF_ARGUMENT)",
            args.iter().map(|t| ChType::from_arrow(t).to_string()).collect::<Vec<_>>().join(", ")
        )
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some(pattern) = constant_text("match", &args.args[1])? else {
            return Ok(ColumnarValue::Array(datafusion::arrow::array::new_null_array(&DataType::UInt8, rows)));
        };
        let re = compile("match", &pattern)?;
        let strings = cast(&args.args[0].to_array(rows)?, &DataType::Utf8)?;
        let out: datafusion::arrow::array::UInt8Array =
            strings.as_string::<i32>().iter().map(|v| v.map(|v| u8::from(re.is_match(v.as_bytes())))).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `ch_extract_all(s, pattern)`: ClickHouse's `extractAll`, the constant pattern's matches left to right (its first
/// group's text when it has groups, `''` for a group that took no part), stopping at the first empty match
/// (`extractAll('abab', 'a*')` is `['a']`, measured on ClickHouse 26.9).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExtractAll {
    signature: Signature,
}

impl ScalarUDFImpl for ExtractAll {
    fn name(&self) -> &str {
        "ch_extract_all"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.iter().all(text) {
            return Ok(DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new(
                "item",
                DataType::Utf8,
                true,
            ))));
        }
        exec_err!(
            "Illegal types {} of arguments of function extractAll: it takes strings (ILLEGAL_TYPE_OF_ARGUMENT)",
            args.iter().map(|t| ChType::from_arrow(t).to_string()).collect::<Vec<_>>().join(", ")
        )
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let mut b = datafusion::arrow::array::ListBuilder::new(StringBuilder::new());
        let Some(pattern) = constant_text("extractAll", &args.args[1])? else {
            for _ in 0..rows {
                b.append_null();
            }
            return Ok(ColumnarValue::Array(Arc::new(b.finish())));
        };
        let re = compile("extractAll", &pattern)?;
        let grouped = re.captures_len() > 1;
        let strings = cast(&args.args[0].to_array(rows)?, &DataType::Utf8)?;
        for v in strings.as_string::<i32>().iter() {
            // NULL text has no match: `[]` (an array is never Nullable in ClickHouse).
            let Some(v) = v else {
                b.append(true);
                continue;
            };
            let mut at = 0;
            while at <= v.len() {
                let Some(found) = re.captures_at(v.as_bytes(), at) else { break };
                let whole = found.get(0).expect("group 0 is the match");
                if whole.is_empty() {
                    break;
                }
                let part = if grouped { found.get(1).map_or(&[][..], |g| g.as_bytes()) } else { whole.as_bytes() };
                match std::str::from_utf8(part) {
                    Ok(t) => b.values().append_value(t),
                    Err(_) => return exec_err!("extractAll gives bytes that are not UTF-8 here"),
                }
                at = whole.end();
            }
            b.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}
