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
