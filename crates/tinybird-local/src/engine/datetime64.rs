//! ClickHouse's conversions to `DateTime64(P)` (`toDateTime64(x, P)`,
//! `CAST(x AS DateTime64(P))`) as the UDF `ch_to_datetime64(x, P, zone)` (`zone` a name of UTC, or empty), with ClickHouse's values (measured against
//! it): an integer is seconds; a float `x × 10^P` truncated toward zero (`toDateTime64(1.55, 1)` is `…01.5`); text is
//! read as written, digits past `P` dropped (so `'1969-12-31 23:59:59.129'` at `P = 1` is `…59.1`); a `DateTime64` of
//! more digits is truncated toward zero (the same value is `…59.2` there, as in ClickHouse); a `Date` is its midnight.
//! The result is typed `DateTime64(P)`, stored in the Arrow unit that holds `P` digits. The translation calls it with
//! `P` of 0, 3, 6 or 9 only: a value of another precision would be printed with its unit's digits once computed with.
//! Arrow's cast would take an integer for a count of the unit (milliseconds), which is why this is not a cast.

use crate::types::{CH_TYPE_KEY, ChType};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, TimeUnit, UInt64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::sync::Arc;

/// Registers `ch_to_datetime64`.
pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(ToDateTime64 { signature: Signature::any(3, Volatility::Immutable) }));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToDateTime64 {
    signature: Signature,
}

/// The Arrow unit that holds `precision` digits of a second.
pub(crate) fn unit(precision: u8) -> TimeUnit {
    match precision {
        0 => TimeUnit::Second,
        1..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

/// The constant `(precision, zone)` arguments.
fn constants(args: &[Option<&ScalarValue>]) -> Result<(u8, Option<String>)> {
    let Some(Ok(ScalarValue::Int64(Some(precision)))) =
        args.get(1).copied().flatten().map(|v| v.cast_to(&DataType::Int64))
    else {
        return exec_err!("DB::Exception: the precision of a DateTime64 must be a constant integer");
    };
    let Ok(precision @ 0..=9) = u8::try_from(precision) else {
        return exec_err!(
            "DB::Exception: Scale {precision} is out of bounds (max scale: 9) for DateTime64. (ARGUMENT_OUT_OF_BOUND)"
        );
    };
    let zone = match args.get(2).copied().flatten() {
        Some(ScalarValue::Utf8(Some(z))) if !z.is_empty() => Some(z.clone()),
        _ => None,
    };
    Ok((precision, zone))
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

impl ScalarUDFImpl for ToDateTime64 {
    fn name(&self) -> &str {
        "ch_to_datetime64"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        // The type follows the constant precision: the planner calls `return_field_from_args`.
        Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let (precision, zone) = constants(args.scalar_arguments)?;
        let input = args.arg_fields[0].data_type();
        let convertible = input.is_integer()
            || is_text(input)
            || matches!(input, DataType::Null | DataType::Float32 | DataType::Float64 | DataType::Date32)
            || matches!(input, DataType::Timestamp(_, None));
        if !convertible {
            return exec_err!(
                "DB::Exception: tinybird-local's DataFusion engine does not support a conversion of {} to DateTime64",
                ChType::of_field(&args.arg_fields[0])
            );
        }
        let ty = ChType::DateTime { precision: Some(precision), tz: zone };
        let nullable = args.arg_fields[0].is_nullable();
        let field = Field::new(self.name(), DataType::Timestamp(unit(precision), None), nullable)
            .with_metadata(HashMap::from([(CH_TYPE_KEY.to_string(), ty.to_string())]));
        Ok(Arc::new(field))
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
        let (precision, _) = constants(&scalars)?;
        let input = args.args[0].to_array(args.number_rows)?;
        let scaled = to_precision(&input, precision)?;
        // ClickHouse saturates an instant past the years it prints (0000 to 9999); refused here.
        let scale = 10i64.pow(u32::from(precision));
        if scaled.iter().flatten().any(|v| !(-62_167_219_200..=253_402_300_799).contains(&v.div_euclid(scale))) {
            return exec_err!(
                "DB::Exception: a DateTime64 before the year 0 or past the year 9999 (ClickHouse saturates it) is not \
                 supported by tinybird-local's DataFusion engine"
            );
        }
        // Stored in the unit that holds the digits: `P = 1` as milliseconds, `…59.1` as 100 past the second.
        let unit = unit(precision);
        let factor = 10i64.pow(digits(unit) - u32::from(precision));
        let stored: Int64Array = scaled.iter().map(|v| v.map(|v| v * factor)).collect();
        Ok(ColumnarValue::Array(cast(&(Arc::new(stored) as ArrayRef), &DataType::Timestamp(unit, None))?))
    }
}

/// How many digits of a second a unit holds.
fn digits(unit: TimeUnit) -> u32 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

/// Each value as a count of `10^-precision` seconds since the epoch.
fn to_precision(input: &ArrayRef, precision: u8) -> Result<Vec<Option<i64>>> {
    let scale = 10i64.pow(u32::from(precision));
    let too_far = || {
        datafusion::error::DataFusionError::Execution(format!(
            "DB::Exception: a value outside the range of DateTime64({precision}) is not supported by tinybird-local's \
             DataFusion engine"
        ))
    };
    let t = input.data_type();
    Ok(match t {
        DataType::Null => vec![None; input.len()],
        _ if is_text(t) => {
            let text = cast(input, &DataType::Utf8)?;
            let mut out = Vec::with_capacity(text.len());
            for v in text.as_string::<i32>() {
                let Some(v) = v else {
                    out.push(None);
                    continue;
                };
                // Digits past the precision are dropped from the text as written: the floor of the instant.
                let parsed = super::functions::parse_datetime(v).and_then(|t| {
                    let t = t.and_utc();
                    let sub = i64::from(t.timestamp_subsec_nanos()) / 10i64.pow(9 - u32::from(precision));
                    t.timestamp().checked_mul(scale)?.checked_add(sub)
                });
                match parsed {
                    Some(v) => out.push(Some(v)),
                    // The value stays out of the message: an error must not show a row a filter hides.
                    None => return exec_err!("Cannot parse DateTime64 from String (CANNOT_PARSE_DATETIME)"),
                }
            }
            out
        }
        DataType::UInt64 => input
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|v| {
                v.map(|v| i64::try_from(v).ok().and_then(|v| v.checked_mul(scale)).ok_or_else(too_far)).transpose()
            })
            .collect::<Result<_>>()?,
        _ if t.is_integer() => cast(input, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|v| v.checked_mul(scale).ok_or_else(too_far)).transpose())
            .collect::<Result<_>>()?,
        DataType::Float32 | DataType::Float64 => cast(input, &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| {
                v.map(|v| {
                    let scaled = (v * scale as f64).trunc();
                    // Within i64 (2^63 is exactly representable, and excluded).
                    if scaled.is_finite() && scaled >= -(2f64.powi(63)) && scaled < 2f64.powi(63) {
                        Ok(scaled as i64)
                    } else {
                        Err(too_far())
                    }
                })
                .transpose()
            })
            .collect::<Result<_>>()?,
        DataType::Date32 => cast(input, &DataType::Int32)?
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
            .iter()
            .map(|v| v.map(|d| i64::from(d) * 86_400 * scale))
            .collect(),
        DataType::Timestamp(from, None) => {
            let raw = cast(input, &DataType::Int64)?;
            let have = 10i64.pow(digits(*from));
            raw.as_primitive::<Int64Type>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        if scale >= have {
                            v.checked_mul(scale / have).ok_or_else(too_far)
                        } else {
                            // Fewer digits: truncated toward zero, as ClickHouse rescales a DateTime64.
                            Ok(v / (have / scale))
                        }
                    })
                    .transpose()
                })
                .collect::<Result<_>>()?
        }
        other => return exec_err!("DB::Exception: cannot convert {other} to DateTime64"),
    })
}
