//! ClickHouse's `/`, `intDiv`, `modulo` (`%`), `intDivOrZero`, `moduloOrZero`, `greatest`, `least` and `abs`, as the
//! DataFusion UDFs `ch_divide`, `ch_int_div`, `ch_modulo`, … with ClickHouse's result types and values.
//!
//! DataFusion computes these in the wider operand's type (or Int64), where ClickHouse picks a type per function:
//! `intDiv(Int32, UInt8)` is Int32, `Int32 % UInt8` is Int16 (the remainder is smaller than the divisor), `abs(Int32)`
//! is UInt32 and `greatest(UInt8, Int8)` is Int16. The rules and the values at the edges (wrapping, which operand is
//! reinterpreted as signed, which divisions fail) were derived from ClickHouse 26.9 and checked against it on every
//! pair of integer types with edge values; the differential suite keeps them checked.

use crate::types::ChType;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    IntDiv {
        or_zero: bool,
    },
    Modulo {
        or_zero: bool,
    },
    Greatest,
    Least,
    Abs,
    Divide,
    /// `bitAnd`, `bitOr`, `bitXor`: signed if either operand is, as wide as the wider.
    Bit(BitOp),
    /// `bitNot`: the operand's type.
    BitNot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BitOp {
    And,
    Or,
    Xor,
}

impl Op {
    fn ch_name(self) -> &'static str {
        match self {
            Op::IntDiv { or_zero: false } => "intDiv",
            Op::IntDiv { or_zero: true } => "intDivOrZero",
            Op::Modulo { or_zero: false } => "modulo",
            Op::Modulo { or_zero: true } => "moduloOrZero",
            Op::Greatest => "greatest",
            Op::Least => "least",
            Op::Abs => "abs",
            Op::Divide => "divide",
            Op::Bit(BitOp::And) => "bitAnd",
            Op::Bit(BitOp::Or) => "bitOr",
            Op::Bit(BitOp::Xor) => "bitXor",
            Op::BitNot => "bitNot",
        }
    }
}

/// Registers the functions on a session.
pub(super) fn register(ctx: &SessionContext) {
    for (name, op) in [
        ("ch_int_div", Op::IntDiv { or_zero: false }),
        ("ch_int_div_or_zero", Op::IntDiv { or_zero: true }),
        ("ch_modulo", Op::Modulo { or_zero: false }),
        ("ch_modulo_or_zero", Op::Modulo { or_zero: true }),
        ("ch_greatest", Op::Greatest),
        ("ch_least", Op::Least),
        ("ch_abs", Op::Abs),
        ("ch_divide", Op::Divide),
        ("ch_bit_and", Op::Bit(BitOp::And)),
        ("ch_bit_or", Op::Bit(BitOp::Or)),
        ("ch_bit_xor", Op::Bit(BitOp::Xor)),
        ("ch_bit_not", Op::BitNot),
    ] {
        let signature = match op {
            Op::Abs | Op::BitNot => Signature::any(1, Volatility::Immutable),
            Op::Greatest | Op::Least => Signature::variadic_any(Volatility::Immutable),
            _ => Signature::any(2, Volatility::Immutable),
        };
        ctx.register_udf(ScalarUDF::new_from_impl(IntFunction { name, op, signature }));
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntFunction {
    name: &'static str,
    op: Op,
    signature: Signature,
}

/// An integer type: `(signed, bits)`. ClickHouse's Bool is a UInt8 to arithmetic.
fn int(t: &DataType) -> Option<(bool, u32)> {
    match (t, ChType::from_arrow(t)) {
        (DataType::Boolean, _) => Some((false, 8)),
        (_, ChType::Int { signed, bits }) if bits <= 64 => Some((signed, u32::from(bits))),
        _ => None,
    }
}

fn float_bits(t: &DataType) -> Option<u32> {
    match t {
        DataType::Float32 => Some(32),
        DataType::Float64 => Some(64),
        _ => None,
    }
}

fn int_type(signed: bool, bits: u32) -> DataType {
    match (signed, bits) {
        (true, 8) => DataType::Int8,
        (true, 16) => DataType::Int16,
        (true, 32) => DataType::Int32,
        (true, _) => DataType::Int64,
        (false, 8) => DataType::UInt8,
        (false, 16) => DataType::UInt16,
        (false, 32) => DataType::UInt32,
        (false, _) => DataType::UInt64,
    }
}

/// `v` reduced to `bits` bits, two's complement: how ClickHouse's integer casts wrap.
pub(super) fn wrap(v: i128, signed: bool, bits: u32) -> i128 {
    let mask = (1i128 << bits) - 1;
    let v = v & mask;
    if signed && v >= 1i128 << (bits - 1) { v - (1i128 << bits) } else { v }
}

/// The smallest and largest values of an integer type of `bits` bits.
pub(super) fn int_range(signed: bool, bits: u32) -> (i128, i128) {
    if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) }
}

/// The type `greatest`/`least` compare two numbers in (ClickHouse's least supertype), or why there is none.
fn supertype(op: Op, a: &DataType, b: &DataType, pair: bool) -> std::result::Result<DataType, String> {
    if let (Some((sa, wa)), Some((sb, wb))) = (int(a), int(b)) {
        if sa == sb {
            return Ok(int_type(sa, wa.max(wb)));
        }
        let ((_, uw), (_, sw)) = if sa { ((sb, wb), (sa, wa)) } else { ((sa, wa), (sb, wb)) };
        return match (uw, sw) {
            // ClickHouse's own exception for exactly these two arguments: no Int128.
            (64, 64) if pair => Ok(if op == Op::Least { DataType::Int64 } else { DataType::UInt64 }),
            (64, _) => Err("a UInt64 and a signed integer (ClickHouse compares them as Int128, or refuses)".into()),
            _ => Ok(int_type(true, sw.max(2 * uw))),
        };
    }
    let width = |t: &DataType| float_bits(t).or_else(|| int(t).map(|(_, bits)| bits));
    if (float_bits(a).is_some() || float_bits(b).is_some())
        && let (Some(wa), Some(wb)) = (width(a), width(b))
    {
        let (float, other) = match (float_bits(a), float_bits(b)) {
            (Some(fa), Some(fb)) => (fa.max(fb), 0),
            (Some(fa), None) => (fa, wb),
            (None, Some(fb)) => (fb, wa),
            (None, None) => unreachable!("one of them is a float"),
        };
        return match (float, other) {
            (_, 64) => Err("a float and a 64-bit integer (ClickHouse has no common type for them)".into()),
            (32, 0..=16) => Ok(DataType::Float32),
            _ => Ok(DataType::Float64),
        };
    }
    if a == b && matches!(a, DataType::Utf8 | DataType::Date32 | DataType::Timestamp(..)) {
        return Ok(a.clone());
    }
    Err(format!("arguments of types {} and {}", ChType::from_arrow(a), ChType::from_arrow(b)))
}

impl IntFunction {
    fn unsupported<T>(&self, what: impl std::fmt::Display) -> Result<T> {
        exec_err!("DB::Exception: tinybird-local's DataFusion engine does not support {} of {what}", self.op.ch_name())
    }

    fn result_type(&self, args: &[DataType]) -> Result<DataType> {
        let name = self.op.ch_name();
        match (self.op, args) {
            (Op::Abs | Op::BitNot, [DataType::Null])
            | (Op::IntDiv { .. } | Op::Modulo { .. } | Op::Bit(_), [DataType::Null, _] | [_, DataType::Null]) => {
                Ok(DataType::Null)
            }
            (Op::BitNot, [t]) if int(t).is_some() && t != &DataType::Boolean => Ok(t.clone()),
            (Op::Bit(_), [a, b]) if a != &DataType::Boolean && b != &DataType::Boolean => match (int(a), int(b)) {
                (Some((sa, wa)), Some((sb, wb))) => Ok(int_type(sa || sb, wa.max(wb))),
                _ => self.illegal(a, b),
            },
            (Op::Bit(_) | Op::BitNot, _) => self
                .unsupported(args.iter().map(|t| ChType::from_arrow(t).to_string()).collect::<Vec<_>>().join(" and ")),
            (Op::Abs, [t]) => match (int(t), t) {
                (Some((_, bits)), _) => Ok(int_type(false, bits)),
                (None, DataType::Float32 | DataType::Float64 | DataType::Decimal128(..)) => Ok(t.clone()),
                _ => exec_err!(
                    "DB::Exception: Illegal type {} of argument of function abs. (ILLEGAL_TYPE_OF_ARGUMENT)",
                    ChType::from_arrow(t)
                ),
            },
            (Op::IntDiv { .. }, [a, b]) => match (int(a), int(b), float_bits(a), float_bits(b)) {
                (Some((sa, wa)), Some((sb, _)), ..) => Ok(int_type(sa || sb, wa)),
                (Some((_, wa)), None, _, Some(_)) => Ok(int_type(true, wa)),
                (None, _, Some(fa), _) if int(b).is_some() || float_bits(b).is_some() => Ok(int_type(true, fa)),
                _ => self.illegal(a, b),
            },
            // `/` divides as floats (7 / 2 = 3.5); decimals as `decimal_divide` says.
            (Op::Divide, [a, b]) => match (a, b) {
                (DataType::Decimal128(p, s), other) | (other, DataType::Decimal128(p, s)) if int(other).is_some() => {
                    Ok(DataType::Decimal128(*p, *s))
                }
                (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) => {
                    if s2 > s1 {
                        return exec_err!(
                            "DB::Exception: Decimal result's scale is less than argument's one. (ARGUMENT_OUT_OF_BOUND)"
                        );
                    }
                    Ok(DataType::Decimal128(decimal_storage(*p1).max(decimal_storage(*p2)), *s1))
                }
                (DataType::Decimal128(..), t) | (t, DataType::Decimal128(..)) if float_bits(t).is_some() => {
                    Ok(DataType::Float64)
                }
                (DataType::Decimal256(..), _) | (_, DataType::Decimal256(..)) => self.unsupported("Decimal arguments"),
                _ if (int(a).is_some() || float_bits(a).is_some()) && (int(b).is_some() || float_bits(b).is_some()) => {
                    Ok(DataType::Float64)
                }
                _ => self.illegal(a, b),
            },
            (Op::Modulo { .. }, [a, b]) => match (int(a), int(b)) {
                (Some((false, _)), Some((_, wb))) => Ok(int_type(false, wb)),
                (Some((true, _)), Some((_, wb))) => Ok(int_type(true, (2 * wb).min(64))),
                _ if (int(a).is_some() || float_bits(a).is_some()) && (int(b).is_some() || float_bits(b).is_some()) => {
                    Ok(DataType::Float64)
                }
                _ => self.illegal(a, b),
            },
            (Op::Greatest | Op::Least, [first, rest @ ..]) if !rest.is_empty() => {
                let mut ty = first.clone();
                for t in rest {
                    if ty.is_null() || t.is_null() {
                        return self.unsupported("a NULL literal");
                    }
                    ty = match supertype(self.op, &ty, t, rest.len() == 1) {
                        Ok(t) => t,
                        Err(why) => return self.unsupported(why),
                    };
                }
                Ok(ty)
            }
            _ => exec_err!("DB::Exception: Wrong number of arguments for function {name}"),
        }
    }

    fn illegal<T>(&self, a: &DataType, b: &DataType) -> Result<T> {
        if [a, b].iter().any(|t| matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))) {
            return self.unsupported("Decimal arguments");
        }
        exec_err!(
            "DB::Exception: Illegal types {} and {} of arguments of function {}. (ILLEGAL_TYPE_OF_ARGUMENT)",
            ChType::from_arrow(a),
            ChType::from_arrow(b),
            self.op.ch_name()
        )
    }
}

/// A column of integers as i128, whatever its integer type.
fn as_i128(array: &ArrayRef) -> Result<Vec<Option<i128>>> {
    let Some((signed, _)) = int(array.data_type()) else { return exec_err!("expected an integer column") };
    Ok(if signed {
        cast(array, &DataType::Int64)?.as_primitive::<Int64Type>().iter().map(|v| v.map(i128::from)).collect()
    } else {
        cast(array, &DataType::UInt64)?.as_primitive::<UInt64Type>().iter().map(|v| v.map(i128::from)).collect()
    })
}

fn as_f64(array: &ArrayRef) -> Result<Vec<Option<f64>>> {
    Ok(cast(array, &DataType::Float64)?.as_primitive::<Float64Type>().iter().collect())
}

/// Integers (each fitting `target`) as a column of `target`.
fn int_column(values: Vec<Option<i128>>, target: &DataType) -> Result<ArrayRef> {
    let wide: ArrayRef = match int(target) {
        Some((true, _)) => {
            Arc::new(values.into_iter().map(|v| v.and_then(|v| i64::try_from(v).ok())).collect::<Int64Array>())
        }
        _ => Arc::new(values.into_iter().map(|v| v.and_then(|v| u64::try_from(v).ok())).collect::<UInt64Array>()),
    };
    Ok(cast(&wide, target)?)
}

/// ClickHouse's messages for the integer divisions it refuses.
const DIVISION_BY_ZERO: &str = "DB::Exception: Division by zero. (ILLEGAL_DIVISION)";
const MINIMAL_BY_MINUS_ONE: &str = "DB::Exception: Division of minimal signed number by minus one. (ILLEGAL_DIVISION)";
const BY_MOST_NEGATIVE: &str = "DB::Exception: Division by the most negative number. (ILLEGAL_DIVISION)";

/// One result of an integer division: the value, or 0 under `…OrZero`, or ClickHouse's error.
fn or_zero(result: std::result::Result<i128, &str>, or_zero: bool) -> Result<i128> {
    match result {
        Ok(v) => Ok(v),
        Err(_) if or_zero => Ok(0),
        Err(message) => exec_err!("{message}"),
    }
}

impl ScalarUDFImpl for IntFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.result_type(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args.args.iter().map(ColumnarValue::data_type).collect();
        let target = self.result_type(&types)?;
        let rows = args.number_rows;
        if target.is_null() {
            return Ok(ColumnarValue::Array(datafusion::arrow::array::new_null_array(&DataType::Null, rows)));
        }
        // ClickHouse divides a column by a constant through another routine, whose edges differ (see `modulo`).
        let constant_divisor = matches!(args.args.get(1), Some(ColumnarValue::Scalar(_)));
        let arrays = super::functions::arrays_of(&args)?;
        let out = match self.op {
            Op::Abs => abs(&arrays[0], &target)?,
            Op::IntDiv { or_zero } => int_div(&arrays[0], &arrays[1], &target, or_zero)?,
            Op::Modulo { or_zero } => modulo(&arrays[0], &arrays[1], &target, or_zero, constant_divisor)?,
            Op::Greatest | Op::Least => extreme(self.op == Op::Greatest, &arrays, &target)?,
            Op::Bit(bit) => {
                let (rs, rw) = int(&target).unwrap_or((true, 64));
                let values = as_i128(&arrays[0])?
                    .into_iter()
                    .zip(as_i128(&arrays[1])?)
                    .map(|(x, y)| {
                        // Each operand as the result type's bits (two's complement), then the operation.
                        let (x, y) = (wrap(x?, rs, rw), wrap(y?, rs, rw));
                        Some(match bit {
                            BitOp::And => x & y,
                            BitOp::Or => x | y,
                            BitOp::Xor => x ^ y,
                        })
                        .map(|v| wrap(v, rs, rw))
                    })
                    .collect();
                int_column(values, &target)?
            }
            Op::BitNot => {
                let (rs, rw) = int(&target).unwrap_or((true, 64));
                int_column(as_i128(&arrays[0])?.into_iter().map(|x| Some(wrap(!x?, rs, rw))).collect(), &target)?
            }
            Op::Divide if matches!(target, DataType::Decimal128(..)) => {
                decimal_divide(&arrays[0], &arrays[1], &target)?
            }
            Op::Divide => {
                let quotients: Float64Array =
                    as_f64(&arrays[0])?.into_iter().zip(as_f64(&arrays[1])?).map(|(x, y)| Some(x? / y?)).collect();
                Arc::new(quotients)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// The precision of the integer ClickHouse stores a decimal of precision `p` in: 9 (Int32), 18 (Int64) or 38.
fn decimal_storage(p: u8) -> u8 {
    match p {
        0..=9 => 9,
        10..=18 => 18,
        _ => 38,
    }
}

/// ClickHouse's decimal `/` (measured against it): an integer operand becomes the decimal's type (scale 0 when it
/// is the divisor); the dividend, in the result's storage integer (Int32, Int64 or Int128 by precision), is scaled up
/// by the divisor's scale and divided, truncating toward zero, so the result keeps the dividend's scale. A value
/// that does not fit that integer on the way is ClickHouse's overflow error; dividing by zero its division error.
fn decimal_divide(a: &ArrayRef, b: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    use datafusion::arrow::array::Decimal128Array;
    use datafusion::arrow::datatypes::Decimal128Type;
    let DataType::Decimal128(p, _) = target else { return exec_err!("decimal division to {target}") };
    let storage = decimal_storage(*p);
    let limit: i128 = match storage {
        9 => i128::from(i32::MAX),
        18 => i128::from(i64::MAX),
        _ => i128::MAX,
    };
    const OVERFLOW: &str = "DB::Exception: Decimal math overflow. (DECIMAL_OVERFLOW)";
    let fits = |v: i128| (-limit - 1..=limit).contains(&v);
    // Each operand's raw values and scale; an integer dividend takes the divisor's scale (it becomes that decimal).
    let scale_of = |t: &DataType| match t {
        DataType::Decimal128(_, s) => Some(*s),
        _ => None,
    };
    let sb = scale_of(b.data_type());
    let raw = |array: &ArrayRef, scale_up: i8| -> Result<Vec<Option<i128>>> {
        if let DataType::Decimal128(..) = array.data_type() {
            return Ok(array.as_primitive::<Decimal128Type>().iter().collect());
        }
        let factor = 10i128.pow(scale_up.max(0) as u32);
        as_i128(array)?
            .into_iter()
            .map(|v| match v.map(|v| v.checked_mul(factor).filter(|v| fits(*v))) {
                None => Ok(None),
                Some(Some(v)) => Ok(Some(v)),
                Some(None) => exec_err!("{OVERFLOW}"),
            })
            .collect()
    };
    let divisor_scale = sb.unwrap_or(0);
    let xs = raw(a, divisor_scale)?;
    let ys = raw(b, 0)?;
    let up = 10i128.pow(divisor_scale.max(0) as u32);
    let mut out = Vec::with_capacity(xs.len());
    for (x, y) in xs.into_iter().zip(ys) {
        let (Some(x), Some(y)) = (x, y) else {
            out.push(None);
            continue;
        };
        if y == 0 {
            return exec_err!("{DIVISION_BY_ZERO}");
        }
        let Some(scaled) = x.checked_mul(up).filter(|v| fits(*v)) else { return exec_err!("{OVERFLOW}") };
        let Some(q) = scaled.checked_div(y).filter(|v| fits(*v)) else { return exec_err!("{OVERFLOW}") };
        out.push(Some(q));
    }
    Ok(Arc::new(Decimal128Array::from(out).with_data_type(target.clone())))
}

fn abs(a: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    use datafusion::arrow::datatypes::{Decimal128Type, Float32Type};
    if int(a.data_type()).is_some() {
        return int_column(as_i128(a)?.into_iter().map(|v| v.map(i128::abs)).collect(), target);
    }
    // Floats and decimals: |x| in the same type.
    Ok(match a.data_type() {
        DataType::Float32 => Arc::new(a.as_primitive::<Float32Type>().unary::<_, Float32Type>(f32::abs)),
        DataType::Float64 => Arc::new(a.as_primitive::<Float64Type>().unary::<_, Float64Type>(f64::abs)),
        DataType::Decimal128(..) => Arc::new(
            a.as_primitive::<Decimal128Type>()
                .unary::<_, Decimal128Type>(i128::wrapping_abs)
                .with_data_type(a.data_type().clone()),
        ),
        other => {
            return exec_err!("DB::Exception: Illegal type {} of argument of function abs", ChType::from_arrow(other));
        }
    })
}

fn int_div(a: &ArrayRef, b: &ArrayRef, target: &DataType, zero: bool) -> Result<ArrayRef> {
    let (Some((sa, wa)), Some((sb, wb))) = (int(a.data_type()), int(b.data_type())) else {
        return float_int_div(a, b, target, zero);
    };
    let (rs, rw) = int(target).unwrap_or((true, 64));
    let mut out = Vec::with_capacity(a.len());
    for (x, y) in as_i128(a)?.into_iter().zip(as_i128(b)?) {
        let (Some(x), Some(y)) = (x, y) else {
            out.push(None);
            continue;
        };
        // With a signed operand, ClickHouse reads the dividend as signed of its own width and the divisor as
        // signed of the wider width, then divides.
        let (x, y) = if sa || sb { (wrap(x, true, wa), wrap(y, true, wa.max(wb))) } else { (x, y) };
        let result = if y == 0 {
            Err(DIVISION_BY_ZERO)
        } else if (sa || sb) && y == -1 && x == -(1i128 << (wa - 1)) {
            Err(MINIMAL_BY_MINUS_ONE)
        } else {
            // i128 division truncates toward zero, as C++'s does.
            Ok(wrap(x / y, rs, rw))
        };
        out.push(Some(or_zero(result, zero)?));
    }
    int_column(out, target)
}

fn float_int_div(a: &ArrayRef, b: &ArrayRef, target: &DataType, zero: bool) -> Result<ArrayRef> {
    let (rs, rw) = int(target).unwrap_or((true, 64));
    let (low, high) = if rs { (-(1i128 << (rw - 1)), (1i128 << (rw - 1)) - 1) } else { (0, (1i128 << rw) - 1) };
    let mut out = Vec::with_capacity(a.len());
    for (x, y) in as_f64(a)?.into_iter().zip(as_f64(b)?) {
        let (Some(x), Some(y)) = (x, y) else {
            out.push(None);
            continue;
        };
        let q = (x / y).trunc();
        let result = if y == 0.0 {
            Err(DIVISION_BY_ZERO)
        } else if !q.is_finite() || q < low as f64 || q > high as f64 {
            Err("DB::Exception: Cannot perform integer division, because it will produce infinite or too large \
                 number. (ILLEGAL_DIVISION)")
        } else {
            Ok(q as i128)
        };
        out.push(Some(or_zero(result, zero)?));
    }
    int_column(out, target)
}

fn modulo(a: &ArrayRef, b: &ArrayRef, target: &DataType, zero: bool, constant: bool) -> Result<ArrayRef> {
    let (Some((sa, wa)), Some((sb, wb))) = (int(a.data_type()), int(b.data_type())) else {
        // ClickHouse's float remainder: a - trunc(a / b) * b (NaN when b is 0).
        let values: Float64Array = as_f64(a)?
            .into_iter()
            .zip(as_f64(b)?)
            .map(|(x, y)| match (x, y) {
                (Some(_), Some(y)) if zero && y == 0.0 => Some(0.0),
                (Some(x), Some(y)) => Some(x - (x / y).trunc() * y),
                _ => None,
            })
            .collect();
        return Ok(Arc::new(values));
    };
    let (rs, rw) = int(target).unwrap_or((true, 64));
    let mut out = Vec::with_capacity(a.len());
    for (x, y) in as_i128(a)?.into_iter().zip(as_i128(b)?) {
        let (Some(x), Some(y)) = (x, y) else {
            out.push(None);
            continue;
        };
        // A column of 32- or 64-bit signed integers modulo a constant: ClickHouse's routine for that refuses the
        // divisor's most negative value and gives 0 for -1.
        let by_constant = constant && sa && wa >= 32;
        let result = if y == 0 {
            Err(DIVISION_BY_ZERO)
        } else if by_constant && sb && y == -(1i128 << (wb - 1)) {
            Err(BY_MOST_NEGATIVE)
        } else if by_constant && y == -1 {
            Ok(0)
        } else if sa && sb && y == -1 && x == -(1i128 << (wa - 1)) {
            Err(MINIMAL_BY_MINUS_ONE)
        } else if sa {
            // The sign of the dividend, as C++'s `%`.
            Ok(wrap(x % y, rs, rw))
        } else {
            // An unsigned dividend: the divisor's sign does not matter.
            Ok(wrap(x % y.abs(), rs, rw))
        };
        out.push(Some(or_zero(result, zero)?));
    }
    int_column(out, target)
}

/// `greatest`/`least`: NULLs are skipped (NULL only when every argument is), as in ClickHouse 26.
fn extreme(greatest: bool, arrays: &[ArrayRef], target: &DataType) -> Result<ArrayRef> {
    let rows = arrays.first().map_or(0, Array::len);
    if int(target).is_some() {
        let columns: Vec<Vec<Option<i128>>> = arrays.iter().map(as_i128).collect::<Result<_>>()?;
        let values = (0..rows)
            .map(|r| {
                let present = columns.iter().filter_map(|c| c[r]);
                if greatest { present.max() } else { present.min() }
            })
            .collect();
        return int_column(values, target);
    }
    if float_bits(target).is_some() {
        let columns: Vec<Vec<Option<f64>>> = arrays.iter().map(as_f64).collect::<Result<_>>()?;
        let values: Float64Array = (0..rows)
            .map(|r| {
                columns.iter().filter_map(|c| c[r]).reduce(|x, y| match (greatest, x.partial_cmp(&y)) {
                    (true, Some(std::cmp::Ordering::Less)) | (false, Some(std::cmp::Ordering::Greater)) => y,
                    _ => x,
                })
            })
            .collect();
        return Ok(cast(&(Arc::new(values) as ArrayRef), target)?);
    }
    // Strings, dates and times of one type: compare with Arrow's kernels.
    use datafusion::arrow::array::BooleanArray;
    use datafusion::arrow::compute::kernels::{cmp, zip::zip};
    let mut best = arrays[0].clone();
    for next in &arrays[1..] {
        let better = if greatest { cmp::gt(next, &best)? } else { cmp::lt(next, &best)? };
        let take_next: BooleanArray = (0..rows)
            .map(|r| Some(next.is_valid(r) && (best.is_null(r) || (better.is_valid(r) && better.value(r)))))
            .collect();
        best = zip(&take_next, next, &best)?;
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_like_twos_complement() {
        assert_eq!(wrap(200, true, 8), -56);
        assert_eq!(wrap(-1, false, 64), i128::from(u64::MAX));
        assert_eq!(wrap(1 << 63, true, 64), i128::from(i64::MIN));
    }

    #[test]
    fn result_types_are_clickhouses() {
        let f = |op| IntFunction { name: "t", op, signature: Signature::any(2, Volatility::Immutable) };
        let div = f(Op::IntDiv { or_zero: false });
        assert_eq!(div.result_type(&[DataType::UInt8, DataType::Int64]).unwrap(), DataType::Int8);
        assert_eq!(div.result_type(&[DataType::Float32, DataType::UInt8]).unwrap(), DataType::Int32);
        let m = f(Op::Modulo { or_zero: false });
        assert_eq!(m.result_type(&[DataType::Int32, DataType::UInt8]).unwrap(), DataType::Int16);
        assert_eq!(m.result_type(&[DataType::UInt64, DataType::Int16]).unwrap(), DataType::UInt16);
        let g = f(Op::Greatest);
        assert_eq!(g.result_type(&[DataType::UInt8, DataType::Int8]).unwrap(), DataType::Int16);
        assert_eq!(g.result_type(&[DataType::UInt64, DataType::Int64]).unwrap(), DataType::UInt64);
        assert_eq!(f(Op::Least).result_type(&[DataType::UInt64, DataType::Int64]).unwrap(), DataType::Int64);
        assert!(g.result_type(&[DataType::UInt64, DataType::Int8]).is_err(), "Int128 is refused");
        assert_eq!(f(Op::Abs).result_type(&[DataType::Int32]).unwrap(), DataType::UInt32);
    }
}
