//! ClickHouse's conversions to `Decimal(P, S)` (`toDecimal32(x, S)`, `toDecimal64`, `toDecimal128`, their `OrNull`
//! and `OrZero` forms, `CAST(x AS Decimal(P, S))`) as the UDF `ch_to_decimal(x, P, S, mode)`, with ClickHouse's
//! values (measured against it): an integer scaled up; a float `x × 10^S` truncated toward zero in Float64 (so
//! `toDecimal32(0.29, 2)` is 0.28, as in ClickHouse); a decimal rescaled, truncating; text of the form `[-+]digits[.digits]`
//! read exactly, digits past the scale dropped; a `Bool` 0 or 1. A value whose digits do not fit `P`, NaN or
//! infinity, and text without digits are ClickHouse's errors (NULL under `OrNull`, 0 under `OrZero`); other text
//! (`1e2`, which ClickHouse reads its own way) and floats past 2^63 are refused. Arrow's own casts round instead,
//! which is why this is not a cast.

use crate::types::ChType;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Registers `ch_to_decimal`.
pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(ToDecimal { signature: Signature::any(4, Volatility::Immutable) }));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToDecimal {
    signature: Signature,
}

/// What a value that does not convert gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Error,
    Null,
    Zero,
}

/// The constant `(precision, scale, mode)` arguments.
fn constants(args: &[Option<&ScalarValue>]) -> Result<(u8, i8, Mode)> {
    let number = |i: usize| match args.get(i).copied().flatten().map(|v| v.cast_to(&DataType::Int64)) {
        Some(Ok(ScalarValue::Int64(Some(n)))) => Some(n),
        _ => None,
    };
    let (Some(p), Some(s)) = (number(1), number(2)) else {
        return exec_err!("DB::Exception: a Decimal's precision and scale must be constant integers");
    };
    let mode = match args.get(3).copied().flatten() {
        Some(ScalarValue::Utf8(Some(m))) if m == "null" => Mode::Null,
        Some(ScalarValue::Utf8(Some(m))) if m == "zero" => Mode::Zero,
        _ => Mode::Error,
    };
    if !(1..=38).contains(&p) {
        return exec_err!("DB::Exception: Precision {p} is out of bounds (max precision: 38). (ARGUMENT_OUT_OF_BOUND)");
    }
    if !(0..=p).contains(&s) {
        return exec_err!("DB::Exception: Scale {s} is out of bounds (max scale: {p}). (ARGUMENT_OUT_OF_BOUND)");
    }
    Ok((p as u8, s as i8, mode))
}

impl ScalarUDFImpl for ToDecimal {
    fn name(&self) -> &str {
        "ch_to_decimal"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        // The type follows the constant arguments: the planner calls `return_field_from_args`.
        Ok(DataType::Decimal128(38, 0))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let (p, s, mode) = constants(args.scalar_arguments)?;
        let input = &args.arg_fields[0];
        if !convertible(input.data_type()) {
            return exec_err!(
                "DB::Exception: tinybird-local's DataFusion engine does not support a conversion of {} to Decimal",
                ChType::of_field(input)
            );
        }
        // ClickHouse's `OrNull`/`OrZero` forms take text only.
        if mode != Mode::Error
            && !matches!(input.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
        {
            return exec_err!(
                "DB::Exception: Illegal type {} of first argument of function toDecimalOrNull/OrZero (it takes a \
                 String). (ILLEGAL_TYPE_OF_ARGUMENT)",
                ChType::of_field(input)
            );
        }
        let nullable = input.is_nullable() || mode == Mode::Null;
        Ok(Arc::new(Field::new(self.name(), DataType::Decimal128(p, s), nullable)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalars: Vec<Option<&ScalarValue>> = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        let (p, s, mode) = constants(&scalars)?;
        let input = args.args[0].to_array(args.number_rows)?;
        let values = convert(&input, p, s)?;
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            out.push(match v {
                Converted::Null => None,
                Converted::Value(v) => Some(v),
                Converted::Refused(what) => {
                    return exec_err!(
                        "DB::Exception: {what} is not supported by tinybird-local's DataFusion engine (Decimal({p}, {s}))"
                    );
                }
                Converted::Failed(why) => match mode {
                    Mode::Null => None,
                    Mode::Zero => Some(0),
                    // The value stays out of the message: an error must not show a row a filter hides.
                    Mode::Error => return exec_err!("DB::Exception: {why} (Decimal({p}, {s}))"),
                },
            });
        }
        Ok(ColumnarValue::Array(Arc::new(Decimal128Array::from(out).with_data_type(DataType::Decimal128(p, s)))))
    }
}

fn convertible(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Null
                | DataType::Boolean
                | DataType::Float32
                | DataType::Float64
                | DataType::Decimal128(..)
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
        )
}

enum Converted {
    Null,
    Value(i128),
    /// ClickHouse's error: NULL under `OrNull`, 0 under `OrZero`.
    Failed(&'static str),
    /// A value this engine does not convert as ClickHouse does: refused, whatever the form.
    Refused(&'static str),
}

const OVERFLOW: &str = "Decimal convert overflow";

/// Each value of `input` as the raw integer of a `Decimal(p, s)`.
fn convert(input: &ArrayRef, p: u8, s: i8) -> Result<Vec<Converted>> {
    let limit = 10i128.pow(u32::from(p));
    let fits = |v: i128| if v.abs() < limit { Converted::Value(v) } else { Converted::Failed(OVERFLOW) };
    let factor = 10i128.pow(s as u32);
    Ok(match input.data_type() {
        DataType::Null => (0..input.len()).map(|_| Converted::Null).collect(),
        DataType::Boolean => input
            .as_boolean()
            .iter()
            .map(|v| v.map_or(Converted::Null, |b| Converted::Value(i128::from(b) * factor)))
            .collect(),
        t if t.is_integer() => {
            let wide = cast(input, &DataType::Decimal128(38, 0))?;
            wide.as_primitive::<Decimal128Type>()
                .iter()
                .map(|v| match v {
                    None => Converted::Null,
                    Some(v) => v.checked_mul(factor).map_or(Converted::Failed(OVERFLOW), fits),
                })
                .collect()
        }
        // `x × 10^S` in the float's own width (a Float32 is scaled as a Float32, as ClickHouse does), truncated.
        DataType::Float32 | DataType::Float64 => {
            let float32 = input.data_type() == &DataType::Float32;
            let floats = cast(input, &DataType::Float64)?;
            floats
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| match v {
                    None => Converted::Null,
                    Some(v) if !v.is_finite() => Converted::Failed("Decimal convert overflow: infinity or NaN"),
                    Some(v) => {
                        let scaled =
                            if float32 { f64::from((v as f32) * (factor as f32)) } else { v * factor as f64 }.trunc();
                        if scaled.abs() >= limit as f64 {
                            Converted::Failed(OVERFLOW)
                        } else if scaled.abs() >= 9.2e18 {
                            // Past 64 bits ClickHouse's float to Int128 conversion is not exact.
                            Converted::Refused("a float past 2^63 converted to Decimal")
                        } else {
                            fits(scaled as i128)
                        }
                    }
                })
                .collect()
        }
        DataType::Decimal128(_, from) => {
            let from = *from;
            input
                .as_primitive::<Decimal128Type>()
                .iter()
                .map(|v| match v {
                    None => Converted::Null,
                    Some(v) if s >= from => {
                        v.checked_mul(10i128.pow((s - from) as u32)).map_or(Converted::Failed(OVERFLOW), fits)
                    }
                    // i128 division truncates toward zero, as ClickHouse's rescaling does.
                    Some(v) => fits(v / 10i128.pow((from - s) as u32)),
                })
                .collect()
        }
        _ => {
            let text = cast(input, &DataType::Utf8)?;
            text.as_string::<i32>()
                .iter()
                .map(|v| match v {
                    None => Converted::Null,
                    Some(t) => match parse(t, s) {
                        Some(v) => fits(v),
                        // Text ClickHouse may read as a number its own way (`1e2`, `-`, ``): refused.
                        None if t.is_empty()
                            || t.bytes().any(|b| b.is_ascii_digit())
                            || t.trim_matches(['-', '+']).is_empty() =>
                        {
                            Converted::Refused("text of another form than [-+]digits[.digits]")
                        }
                        None => Converted::Failed("Cannot parse the text as a Decimal"),
                    },
                })
                .collect()
        }
    })
}

/// Text of the form `[-+]digits[.digits]` (or `[-+].digits`) as the raw integer at `scale`, digits past it dropped.
fn parse(text: &str, scale: i8) -> Option<i128> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if (whole.is_empty() && fraction.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut v: i128 = 0;
    for b in whole.bytes() {
        v = v.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let digits = fraction.as_bytes();
    for i in 0..scale as usize {
        let d = digits.get(i).map_or(0, |b| i128::from(b - b'0'));
        v = v.checked_mul(10)?.checked_add(d)?;
    }
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn text_reads_exactly_and_drops_digits_past_the_scale() {
        assert_eq!(parse("1.555", 2), Some(155));
        assert_eq!(parse("-0.5", 2), Some(-50));
        assert_eq!(parse("+7", 1), Some(70));
        assert_eq!(parse(".25", 2), Some(25));
        for bad in ["", " 1", "1e2", "abc", "-", ".", "1.2.3", "1 "] {
            assert_eq!(parse(bad, 2), None, "{bad:?}");
        }
    }
}
