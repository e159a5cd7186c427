//! ClickHouse functions DataFusion lacks or computes differently, as DataFusion UDFs named `ch_*`.
//! [`super::compat`] rewrites ClickHouse calls onto them.

use super::Value;
use super::datafusion::value_at;
use crate::format::ch_text;
use crate::types::ChType;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Float64Builder, Int64Builder, ListArray, StringBuilder,
    TimestampSecondBuilder, UInt8Builder, UInt64Builder,
};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    Accumulator, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, create_udaf,
};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// `ch_cond(x)`: a ClickHouse condition as DataFusion's boolean. ClickHouse takes any number as a condition
/// (`WHERE 1`, `WHERE is_bot`, `NOT flag`): non-zero is true, NULL stays NULL. A boolean argument is the condition
/// itself, and planning removes the call (`simplify`), so ordinary conditions cost nothing.
/// `ch_if_cond(x)` is the condition of `if`/`multiIf`, which ClickHouse takes only as `UInt8` or `Bool`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Condition {
    signature: Signature,
    of_if: bool,
}

impl ScalarUDFImpl for Condition {
    fn name(&self) -> &str {
        if self.of_if { "ch_if_cond" } else { "ch_cond" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t] if self.of_if && !matches!(t, DataType::Boolean | DataType::UInt8 | DataType::Null) => exec_err!(
                "DB::Exception: Illegal type {} of argument (condition) of function if or multiIf. Must be UInt8 \
                 (ILLEGAL_TYPE_OF_ARGUMENT)",
                ChType::from_arrow(t)
            ),
            [t] if t == &DataType::Boolean || t.is_integer() || t.is_floating() || t == &DataType::Null => {
                Ok(DataType::Boolean)
            }
            [t] => exec_err!(
                "DB::Exception: Illegal type {} of a condition: it must be a number or Bool. (ILLEGAL_TYPE_OF_COLUMN_FOR_FILTER)",
                ChType::from_arrow(t)
            ),
            _ => exec_err!("ch_cond takes one argument"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else { return exec_err!("ch_cond takes one argument") };
        let array = arg.to_array(args.number_rows)?;
        if array.data_type() == &DataType::Boolean {
            return Ok(ColumnarValue::Array(array));
        }
        let numbers = cast(&array, &DataType::Float64)?;
        let numbers = numbers.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        let out: datafusion::arrow::array::BooleanArray = numbers.iter().map(|v| v.map(|f| f != 0.0)).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }

    fn simplify(
        &self,
        mut args: Vec<datafusion::logical_expr::Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        use datafusion::logical_expr::simplify::ExprSimplifyResult;
        if args.len() == 1 && info.is_boolean_type(&args[0]).unwrap_or(false) {
            return Ok(ExprSimplifyResult::Simplified(args.remove(0)));
        }
        Ok(ExprSimplifyResult::Original(args))
    }
}

/// `ch_array_element(arr, i)`: ClickHouse's `arr[i]` (`arrayElement`). Indexes are 1-based, negative ones count from
/// the end, 0 is an error, and an index outside the array gives the element type's default (`0`, `''`), or NULL when
/// the elements are `Nullable`, where DataFusion gives NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayElement {
    signature: Signature,
}

impl ScalarUDFImpl for ArrayElement {
    fn name(&self) -> &str {
        "ch_array_element"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::List(item), index] if index.is_integer() => Ok(item.data_type().clone()),
            [DataType::Null, _] => Ok(DataType::Null),
            [t, _] => exec_err!(
                "DB::Exception: First argument for function arrayElement must be array, got {} instead. (ILLEGAL_TYPE_OF_ARGUMENT)",
                ChType::from_arrow(t)
            ),
            _ => exec_err!("arrayElement takes an array and an index"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::UInt32Builder;
        use datafusion::arrow::compute::kernels::{take::take, zip::zip};
        let arrays = arrays_of(&args)?;
        let [list, index] = arrays.as_slice() else { return exec_err!("arrayElement takes an array and an index") };
        if list.data_type() == &DataType::Null {
            return Ok(ColumnarValue::Array(list.clone()));
        }
        let (DataType::List(item), list) = (list.data_type(), list.as_list::<i32>()) else {
            return exec_err!("arrayElement takes an array");
        };
        let index = cast(index, &DataType::Int64)?;
        let index = index.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let offsets = list.value_offsets();
        let mut positions = UInt32Builder::with_capacity(list.len());
        for row in 0..list.len() {
            let (start, end) = (offsets[row] as i64, offsets[row + 1] as i64);
            let len = end - start;
            let at = match (list.is_null(row) || index.is_null(row), index.value(row)) {
                (true, _) => None,
                (false, 0) => {
                    return exec_err!(
                        "DB::Exception: Array indices are 1-based: while executing function arrayElement. (ZERO_ARRAY_OR_TUPLE_INDEX)"
                    );
                }
                (false, i) if i > 0 && i <= len => Some(start + i - 1),
                (false, i) if i < 0 && -i <= len => Some(end + i),
                _ => None,
            };
            positions.append_option(at.and_then(|p| u32::try_from(p).ok()));
        }
        let taken = take(list.values().as_ref(), &positions.finish(), None)?;
        // Whether the elements are `Nullable`: as the column's ClickHouse type says; for an array computed in the
        // query (whose Arrow items are always marked nullable), whether it holds a NULL (`[1, NULL]`).
        let nullable_items = match args.arg_fields.first().map(|f| ChType::of_field(f)) {
            Some(ChType::Array(inner)) if args.arg_fields[0].metadata().contains_key(crate::types::CH_TYPE_KEY) => {
                inner.is_nullable()
            }
            _ => item.is_nullable() && list.values().null_count() > 0,
        };
        if nullable_items {
            return Ok(ColumnarValue::Array(taken));
        }
        let default = ScalarValue::new_default(item.data_type())?.to_array_of_size(taken.len())?;
        let present = datafusion::arrow::compute::is_not_null(&taken)?;
        Ok(ColumnarValue::Array(zip(&present, &taken, &default)?))
    }
}

/// `ch_negate(x)`: ClickHouse's `negate` (`-x`). Signed integers, floats and decimals keep their type and wrap
/// (`-(-128)` is -128 in Int8); unsigned integers become the next signed size (UInt8 → Int16, UInt16 → Int32,
/// UInt32 → Int64) and UInt64 becomes Int64, wrapping, as in ClickHouse. DataFusion refuses `-` on unsigned types.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Negate {
    signature: Signature,
}

impl ScalarUDFImpl for Negate {
    fn name(&self) -> &str {
        "ch_negate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::UInt8] => Ok(DataType::Int16),
            [DataType::UInt16] => Ok(DataType::Int32),
            [DataType::UInt32 | DataType::UInt64] => Ok(DataType::Int64),
            [t] if t.is_signed_integer() || t.is_floating() || t.is_null() => Ok(t.clone()),
            [t @ (DataType::Decimal128(..) | DataType::Decimal256(..))] => Ok(t.clone()),
            [t] => exec_err!(
                "DB::Exception: Illegal type {} of argument of function negate. (ILLEGAL_TYPE_OF_ARGUMENT)",
                ChType::from_arrow(t)
            ),
            _ => exec_err!("negate takes one argument"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::datatypes::{Int64Type, UInt64Type};
        let [arg] = args.args.as_slice() else { return exec_err!("negate takes one argument") };
        let array = arg.to_array(args.number_rows)?;
        let signed: ArrayRef = match array.data_type() {
            DataType::Null => return Ok(ColumnarValue::Array(array)),
            DataType::UInt8 => cast(&array, &DataType::Int16)?,
            DataType::UInt16 => cast(&array, &DataType::Int32)?,
            DataType::UInt32 => cast(&array, &DataType::Int64)?,
            // Two's complement, as ClickHouse reads a UInt64 negated into Int64.
            DataType::UInt64 => Arc::new(array.as_primitive::<UInt64Type>().unary::<_, Int64Type>(|v| v as i64)),
            _ => array,
        };
        Ok(ColumnarValue::Array(datafusion::arrow::compute::kernels::numeric::neg_wrapping(&signed)?))
    }
}

/// Registers every `ch_*` function on a session.
pub fn register(ctx: &SessionContext) {
    for of_if in [false, true] {
        ctx.register_udf(ScalarUDF::new_from_impl(Condition {
            signature: Signature::any(1, Volatility::Immutable),
            of_if,
        }));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(ArrayElement { signature: Signature::any(2, Volatility::Immutable) }));
    ctx.register_udf(ScalarUDF::new_from_impl(Negate { signature: Signature::any(1, Volatility::Immutable) }));
    let casts: [(&'static str, DataType); 12] = [
        ("ch_to_int8", DataType::Int8),
        ("ch_to_int16", DataType::Int16),
        ("ch_to_int32", DataType::Int32),
        ("ch_to_int64", DataType::Int64),
        ("ch_to_uint8", DataType::UInt8),
        ("ch_to_uint16", DataType::UInt16),
        ("ch_to_uint32", DataType::UInt32),
        ("ch_to_uint64", DataType::UInt64),
        ("ch_to_float32", DataType::Float32),
        ("ch_to_float64", DataType::Float64),
        ("ch_to_date", DataType::Date32),
        ("ch_to_datetime", DataType::Timestamp(TimeUnit::Second, None)),
    ];
    for (name, target) in casts {
        ctx.register_udf(udf(
            name,
            Kind::Cast { target: target.clone(), safe: false },
            Signature::any(1, Volatility::Immutable),
        ));
        let lenient: &'static str = Box::leak(format!("{name}_or_null").into_boxed_str());
        ctx.register_udf(udf(lenient, Kind::Cast { target, safe: true }, Signature::any(1, Volatility::Immutable)));
    }
    let any1 = || Signature::any(1, Volatility::Immutable);
    let variadic = || Signature::variadic_any(Volatility::Immutable);
    ctx.register_udf(udf("ch_to_string", Kind::ToString, any1()));
    ctx.register_udf(udf("ch_length", Kind::Length, any1()));
    ctx.register_udf(udf("ch_zero_if_null", Kind::ZeroIfNull, any1()));
    ctx.register_udf(udf("ch_nullable_marker", Kind::Identity, any1()));
    ctx.register_udf(udf("ch_not_nullable_marker", Kind::Identity, any1()));
    ctx.register_udf(udf("ch_is_nan", Kind::IsNan, any1()));
    for (name, nullable) in [("ch_grouping_key", false), ("ch_grouping_key_nullable", true)] {
        ctx.register_udf(udf(name, Kind::GroupingKey { nullable }, Signature::any(2, Volatility::Immutable)));
    }
    ctx.register_udf(udf("ch_not_null", Kind::NotNull, any1()));
    ctx.register_udf(udf("ch_if_result", Kind::IfResult, any1()));
    ctx.register_udf(udf("ch_time_of_day_arg", Kind::TimeOfDayArg, any1()));
    ctx.register_udf(udf("ch_unix_timestamp", Kind::UnixTimestamp, any1()));
    ctx.register_udf(udf("ch_accurate", Kind::Accurate, Signature::any(2, Volatility::Immutable)));
    ctx.register_udf(udf("ch_coalesce", Kind::Coalesce, variadic()));
    ctx.register_udf(plain_value_udf());
    ctx.register_udf(udf("ch_array_join_sizes", Kind::ArrayJoinSizes, variadic()));
    ctx.register_udf(udf("ch_range", Kind::Range, any1()));
    ctx.register_udf(udf("ch_array_sum", Kind::ArraySum, any1()));
    ctx.register_udf(udf("ch_no_null_elements", Kind::NoNullElements, any1()));
    ctx.register_udf(udf("ch_array_enumerate", Kind::Enumerate, any1()));
    ctx.register_udf(udf("ch_array_slice", Kind::ArraySlice, variadic()));
    ctx.register_udf(udf("ch_array_compact", Kind::ArrayCompact, any1()));
    for (name, ints, float32, what) in [
        ("ch_quantile_arg", true, true, "a quantile"),
        ("ch_spread_arg", true, false, "a variance or standard deviation"),
    ] {
        ctx.register_udf(udf(name, Kind::Float64Arg { ints, float32, what }, any1()));
    }
    ctx.register_udf(udf("ch_substring", Kind::Substring { chars: false }, variadic()));
    ctx.register_udf(udf("ch_substring_utf8", Kind::Substring { chars: true }, variadic()));
    ctx.register_udf(udf("ch_lower_ascii", Kind::Lower, Signature::exact(vec![DataType::Utf8], Volatility::Immutable)));
    ctx.register_udf(udf("ch_upper_ascii", Kind::Upper, Signature::exact(vec![DataType::Utf8], Volatility::Immutable)));
    for (name, mode) in [
        ("ch_round", Rounding::HalfAway),
        ("ch_round_bankers", Rounding::Bankers),
        ("ch_floor", Rounding::Floor),
        ("ch_ceil", Rounding::Ceil),
        ("ch_trunc", Rounding::Trunc),
    ] {
        ctx.register_udf(udf(name, Kind::Round { mode }, Signature::any(2, Volatility::Immutable)));
    }
    ctx.register_udf(udf("ch_date_diff", Kind::DateDiff, Signature::any(3, Volatility::Immutable)));
    ctx.register_udf(udf("ch_parse_datetime", Kind::ParseDateTime { or_null: false }, any1()));
    ctx.register_udf(udf("ch_parse_datetime_or_null", Kind::ParseDateTime { or_null: true }, any1()));
    ctx.register_udf(udf("ch_parse_datetime64", Kind::ParseDateTime64 { or_null: false }, any1()));
    ctx.register_udf(udf("ch_parse_datetime64_or_null", Kind::ParseDateTime64 { or_null: true }, any1()));
    for (name, kind) in [
        ("ch_json_string", Json::String),
        ("ch_json_int", Json::Int),
        ("ch_json_uint", Json::UInt),
        ("ch_json_float", Json::Float),
        ("ch_json_bool", Json::Bool),
        ("ch_json_raw", Json::Raw),
        ("ch_json_has", Json::Has),
        ("ch_json_length", Json::Length),
        ("ch_json_keys", Json::Keys),
        ("ch_json_array_raw", Json::ArrayRaw),
        ("ch_json_typed_float", Json::TypedFloat),
    ] {
        ctx.register_udf(udf(name, Kind::Json(kind), variadic()));
    }
    for signed in [true, false] {
        for bits in [8u8, 16, 32, 64] {
            let name: &'static str =
                Box::leak(format!("ch_json_typed_{}{bits}", if signed { "i" } else { "u" }).into_boxed_str());
            ctx.register_udf(udf(name, Kind::Json(Json::Typed { signed, bits }), variadic()));
        }
    }
    for element in [
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float32,
        DataType::Float64,
        DataType::Utf8,
    ] {
        let name: &'static str = Box::leak(
            format!("ch_json_array_{}", ChType::from_arrow(&element).to_string().to_lowercase()).into_boxed_str(),
        );
        ctx.register_udf(udf(name, Kind::Json(Json::TypedArray(element)), variadic()));
    }
    for (name, spread) in [
        ("ch_var_pop", Spread::VarPop),
        ("ch_var_samp", Spread::VarSamp),
        ("ch_stddev_pop", Spread::StddevPop),
        ("ch_stddev_samp", Spread::StddevSamp),
    ] {
        ctx.register_udaf(create_udaf(
            name,
            vec![DataType::Float64],
            Arc::new(DataType::Float64),
            Volatility::Immutable,
            Arc::new(move |_| Ok(Box::new(Moments { m: [0.0; 3], spread }))),
            Arc::new(vec![DataType::Float64; 3]),
        ));
    }
    let state =
        Arc::new(vec![DataType::List(Arc::new(Field::new("item", DataType::Float64, true))), DataType::Float64]);
    ctx.register_udaf(create_udaf(
        "ch_quantile",
        vec![DataType::Float64, DataType::Float64],
        Arc::new(DataType::Float64),
        Volatility::Immutable,
        Arc::new(move |_| Ok(Box::new(Quantile { values: Vec::new(), level: None }))),
        state,
    ));
}

/// A ClickHouse type's default in this engine's form (`field` tells a declared type): 0, '', the epoch, an empty list;
/// a UUID or an address stored as text is its zero; an enum its name of the smallest number.
pub(super) fn default_of(field: Option<&Field>, ty: &DataType) -> Result<ScalarValue> {
    let default = match field.map(|f| ChType::of_field(f).base().clone()) {
        Some(ChType::Named(name)) if name == "UUID" => {
            ScalarValue::Utf8(Some("00000000-0000-0000-0000-000000000000".into()))
        }
        Some(ChType::Named(name)) if name == "IPv4" => ScalarValue::Utf8(Some("0.0.0.0".into())),
        Some(ChType::Named(name)) if name == "IPv6" => ScalarValue::Utf8(Some("::".into())),
        Some(ChType::Named(name)) if name.starts_with("Enum") => {
            let smallest = match name.parse::<tinybird_types::ChType>() {
                Ok(tinybird_types::ChType::Enum8(values)) => {
                    values.iter().min_by_key(|(_, v)| *v).map(|(n, _)| n.clone())
                }
                Ok(tinybird_types::ChType::Enum16(values)) => {
                    values.iter().min_by_key(|(_, v)| *v).map(|(n, _)| n.clone())
                }
                _ => None,
            };
            let Some(smallest) = smallest else {
                return exec_err!("DB::Exception: the default of an enum without values");
            };
            ScalarValue::Utf8(Some(smallest))
        }
        _ => ScalarValue::new_default(ty)?,
    };
    default.cast_to(ty)
}

fn udf(name: &'static str, kind: Kind, signature: Signature) -> ScalarUDF {
    ScalarUDF::new_from_impl(ChFunction { name, kind, signature })
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Json {
    String,
    Int,
    UInt,
    Float,
    Bool,
    Raw,
    Has,
    /// `JSONLength`: elements of an array, keys of an object, else 0.
    Length,
    /// `JSONExtractKeys`: an object's keys in document order, else `[]`.
    Keys,
    /// `JSONExtractArrayRaw`: an array's elements as raw JSON text, else `[]`.
    ArrayRaw,
    /// `JSONExtract(…, 'Int8')` … `'UInt64'`: a number (or a number written as a string) within the type's range,
    /// truncated toward zero, or a boolean as 1/0; anything else, an out-of-range number included, 0 (measured).
    Typed {
        signed: bool,
        bits: u8,
    },
    /// `JSONExtract(…, 'Float32' | 'Float64')`: a number, or a boolean as 1/0; anything else 0.
    TypedFloat,
    /// `JSONExtract(…, 'Array(T)')` of a number type or `String` (the element type): each element as `Typed`/
    /// `TypedFloat`/`String` reads it (an element it cannot read is 0, a `null` is `''`), and `[]` when no element
    /// reads as `T` (ClickHouse's `were_valid_elements`) or the value is not an array.
    TypedArray(DataType),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    Cast {
        target: DataType,
        safe: bool,
    },
    ToString,
    Length,
    Lower,
    Upper,
    Round {
        mode: Rounding,
    },
    Substring {
        chars: bool,
    },
    ZeroIfNull,
    /// The value, and an error for a NULL: `CAST(x AS T)` to a non-Nullable `T`.
    NotNull,
    /// The value as it is (`ch_nullable_marker`, which marks an aggregate's argument `Nullable` for the rewrite).
    Identity,
    /// Whether a float is NaN (false for any other value, NULL included).
    IsNan,
    /// `ch_grouping_key(key, count(*))`: a non-Nullable `GROUP BY` key of grouping sets, its type's default on a row
    /// not grouped by it (where DataFusion gives NULL), as ClickHouse fills it; a Nullable one (`nullable`) as it is.
    /// The second argument, unused, keeps DataFusion from taking the key for a constant where a filter pins it
    /// (`WHERE k = 'a'`): it would drop it from `ORDER BY`, where grouping sets make it vary.
    GroupingKey {
        nullable: bool,
    },
    /// The result of `if`/`multiIf`, as it is, unless DataFusion had to widen a `UInt64` and a signed integer to
    /// `Decimal(20, 0)`, where ClickHouse's result is a `Variant`: refused when the query is planned.
    IfResult,
    /// The argument of `toHour`/`toMinute`/`toSecond`, as it is, unless it is a `Date` (an error in ClickHouse).
    TimeOfDayArg,
    /// `toUnixTimestamp(x)`: a number as `toUInt32` takes it (wrapping), a date, date-time or text as its seconds.
    UnixTimestamp,
    /// `ch_plain_value(x)`: `x`, its field without a declared ClickHouse type.
    Plain,
    /// `ch_coalesce(a, b, …)`: ClickHouse's `coalesce`/`ifNull`, the first argument that is not NULL, in their common
    /// type (a condition among integers is a UInt8: `ifNull(ns = 'a', 0)`, which DataFusion's `coalesce` cannot type).
    /// Planning rewrites it to DataFusion's `coalesce` of the arguments cast as ClickHouse would (see the engine's
    /// `BoolAsInteger`); this is the same computation for a plan that keeps it.
    Coalesce,
    /// `ch_accurate(x, y)`: `y` (x converted) where it is exactly `x`'s number, else NULL: ClickHouse's
    /// `toInt64OrDefault(2.5)` converts accurately, and an inexact or out-of-range value gets the default.
    Accurate,
    /// The argument of an aggregate this engine computes in Float64, as it is, when ClickHouse's result is a
    /// Float64 for it too: integers (when `ints`), Float32 (when `float32`) and Float64 (`quantile` of any of them;
    /// `varPop` and the like not of a Float32, whose result is a Float32). Anything else is refused when the query is
    /// planned.
    Float64Arg {
        ints: bool,
        float32: bool,
        what: &'static str,
    },
    /// `ARRAY JOIN a, b`: the first array, as it is, when every array of the row has its length; else ClickHouse's
    /// error.
    ArrayJoinSizes,
    /// `range(n)` of an unsigned integer: `[0, n)`, elements of `n`'s type.
    Range,
    /// `arrayEnumerate(arr)`: `[1, length(arr)]` as `UInt32`.
    Enumerate,
    /// `arraySlice(arr, offset[, length])`, with ClickHouse's reading of negative and out-of-range bounds.
    ArraySlice,
    /// `arrayCompact(arr)`: runs of equal elements (NULLs included) kept once.
    ArrayCompact,
    /// An array as it is, unless an element is NULL (`arrayDistinct`, which drops them in ClickHouse): refused.
    NoNullElements,
    /// `arraySum(arr)` of integers: `UInt64` or `Int64`, wrapping on overflow as ClickHouse's does.
    ArraySum,
    DateDiff,
    ParseDateTime {
        or_null: bool,
    },
    /// `parseDateTime64BestEffort`: milliseconds kept.
    ParseDateTime64 {
        or_null: bool,
    },
    Json(Json),
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ChFunction {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

impl ScalarUDFImpl for ChFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The return type; `ch_zero_if_null` and `ch_not_null` keep their argument's declared type when it is one stored
    /// as text (a UUID, an address, an enum), which its order and default follow.
    fn return_field_from_args(&self, args: datafusion::logical_expr::ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
        let ty = self.return_type(&types)?;
        let field = Field::new(self.name, ty, true);
        Ok(Arc::new(match (&self.kind, args.arg_fields.first().map(|f| ChType::of_field(f).base().clone())) {
            (
                Kind::ZeroIfNull | Kind::NotNull | Kind::Identity | Kind::GroupingKey { .. },
                Some(declared @ ChType::Named(_)),
            ) => field.with_metadata(declared.field(self.name).metadata().clone()),
            _ => field,
        }))
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match &self.kind {
            Kind::Cast { target, .. } => target.clone(),
            Kind::ToString | Kind::Lower | Kind::Upper | Kind::Substring { .. } => DataType::Utf8,
            Kind::Length => DataType::UInt64,
            Kind::Round { .. } => match args.first() {
                // A Bool or a comparison: the UInt8 it is in ClickHouse.
                Some(t) if t.is_integer() || t == &DataType::Float32 => t.clone(),
                Some(DataType::Boolean) => DataType::UInt8,
                _ => DataType::Float64,
            },
            Kind::DateDiff => DataType::Int64,
            Kind::IsNan => DataType::Boolean,
            Kind::ZeroIfNull | Kind::NotNull | Kind::Identity | Kind::Plain | Kind::GroupingKey { .. } => {
                args.first().cloned().unwrap_or(DataType::Int64)
            }
            Kind::Range => match args {
                [t] if t.is_unsigned_integer() => DataType::List(Arc::new(Field::new("item", t.clone(), false))),
                _ => {
                    return exec_err!(
                        "tinybird-local's DataFusion engine supports range(n) of one unsigned integer only (use \
                         --engine clickhouse for the rest)"
                    );
                }
            },
            Kind::NoNullElements => args.first().cloned().unwrap_or(DataType::Null),
            Kind::ArraySum => match args {
                [DataType::List(f)] if f.data_type().is_unsigned_integer() => DataType::UInt64,
                [DataType::List(f)] if f.data_type().is_signed_integer() => DataType::Int64,
                _ => {
                    return exec_err!(
                        "tinybird-local's DataFusion engine supports arraySum of an array of integers only (floats \
                         add up in ClickHouse's order; use --engine clickhouse)"
                    );
                }
            },
            Kind::ArrayCompact => match args {
                [t @ DataType::List(_)] => t.clone(),
                _ => {
                    return exec_err!(
                        "The argument of function arrayCompact must be an array (ILLEGAL_TYPE_OF_ARGUMENT)"
                    );
                }
            },
            Kind::ArraySlice => match args {
                [t @ DataType::List(_), rest @ ..]
                    if (1..=2).contains(&rest.len()) && rest.iter().all(|r| r.is_integer() || r.is_null()) =>
                {
                    t.clone()
                }
                _ => {
                    return exec_err!(
                        "arraySlice takes an array, an integer offset and an optional integer length \
                         (ILLEGAL_TYPE_OF_ARGUMENT)"
                    );
                }
            },
            Kind::Enumerate => match args {
                [DataType::List(_)] => DataType::List(Arc::new(Field::new("item", DataType::UInt32, false))),
                _ => {
                    return exec_err!(
                        "The argument of function arrayEnumerate must be an array (ILLEGAL_TYPE_OF_ARGUMENT)"
                    );
                }
            },
            Kind::ArrayJoinSizes => match args.first() {
                Some(t @ DataType::List(_)) if args.iter().all(|a| matches!(a, DataType::List(_))) => t.clone(),
                _ => return exec_err!("ARRAY JOIN requires arrays (TYPE_MISMATCH)"),
            },
            Kind::IfResult => match args.first() {
                Some(DataType::Decimal128(20, 0)) => {
                    return exec_err!(
                        "tinybird-local's DataFusion engine does not support if/multiIf/CASE of a UInt64 and a signed \
                         integer (ClickHouse's result is a Variant(Int64, UInt64))"
                    );
                }
                other => other.cloned().unwrap_or(DataType::Null),
            },
            Kind::UnixTimestamp => DataType::UInt32,
            Kind::Accurate => args.get(1).cloned().unwrap_or(DataType::Null),
            Kind::Coalesce => coalesce_type(args),
            Kind::TimeOfDayArg => match args.first() {
                Some(DataType::Date32 | DataType::Date64) => {
                    return exec_err!(
                        "Illegal argument of type Date for a function of the time of day (toHour, toMinute, \
                         toSecond): a Date has none (ILLEGAL_TYPE_OF_ARGUMENT)"
                    );
                }
                other => other.cloned().unwrap_or(DataType::Null),
            },
            Kind::Float64Arg { ints, float32, what } => {
                let t = args.first().cloned().unwrap_or(DataType::Null);
                let fits = matches!(t, DataType::Float64 | DataType::Null)
                    || (*ints && t.is_integer())
                    || (*float32 && t == DataType::Float32);
                if !fits {
                    return exec_err!(
                        "tinybird-local's DataFusion engine does not support {what} of {} (ClickHouse returns its own \
                         type for it; this engine computes in Float64)",
                        ChType::from_arrow(&t)
                    );
                }
                t
            }
            Kind::ParseDateTime { .. } => DataType::Timestamp(TimeUnit::Second, None),
            Kind::ParseDateTime64 { .. } => DataType::Timestamp(TimeUnit::Millisecond, None),
            Kind::Json(j) => match j {
                Json::String | Json::Raw => DataType::Utf8,
                Json::Int | Json::Typed { signed: true, .. } => DataType::Int64,
                Json::UInt | Json::Typed { signed: false, .. } => DataType::UInt64,
                Json::Float | Json::TypedFloat => DataType::Float64,
                Json::Bool | Json::Has => DataType::UInt8,
                Json::Length => DataType::UInt64,
                Json::Keys | Json::ArrayRaw => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                Json::TypedArray(element) => DataType::List(Arc::new(Field::new("item", element.clone(), true))),
            },
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = arrays_of(&args)?;
        let rows = args.number_rows;
        let out: ArrayRef = match &self.kind {
            Kind::Cast { target, safe } => ch_cast(&arrays[0], target, *safe)?,
            // Date-times from their seconds and nanoseconds: a DateTime64(3) reaches 2299, past i64 nanoseconds.
            Kind::ToString if matches!(arrays[0].data_type(), DataType::Timestamp(..)) => {
                let ty = ChType::from_arrow(arrays[0].data_type());
                let DataType::Timestamp(unit, _) = arrays[0].data_type() else { unreachable!("matched above") };
                let per = per_second(unit);
                let raw = cast(&arrays[0], &DataType::Int64)?;
                let mut b = StringBuilder::new();
                let mut text = String::new();
                for v in raw.as_primitive::<datafusion::arrow::datatypes::Int64Type>().iter() {
                    match v {
                        None => b.append_null(),
                        Some(v) => {
                            text.clear();
                            let nanos = (v.rem_euclid(per) * (1_000_000_000 / per)) as u32;
                            crate::format::write_datetime_parts(&mut text, v.div_euclid(per), nanos, &ty);
                            b.append_value(&text);
                        }
                    }
                }
                Arc::new(b.finish())
            }
            Kind::ToString => {
                let ty = ChType::from_arrow(arrays[0].data_type());
                let ty = if arrays[0].data_type() == &DataType::Boolean { ChType::Bool } else { ty };
                let mut b = StringBuilder::new();
                for r in 0..rows {
                    match value_at(arrays[0].as_ref(), r) {
                        Value::Null => b.append_null(),
                        v => b.append_value(ch_text(&v, &ty)),
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Length => {
                let a = &arrays[0];
                let mut b = UInt64Builder::new();
                match a.data_type() {
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                        let s = cast(a, &DataType::Utf8)?;
                        let s = s.as_string::<i32>();
                        // A UUID (stored as its text) is 16 bytes, and empty when it is the nil UUID (`empty(k)`).
                        let uuid = args
                            .arg_fields
                            .first()
                            .is_some_and(|f| matches!(ChType::of_field(f).base(), ChType::Named(n) if n == "UUID"));
                        for r in 0..rows {
                            if s.is_null(r) {
                                b.append_null();
                            } else if uuid {
                                let nil = s.value(r) == "00000000-0000-0000-0000-000000000000";
                                b.append_value(if nil { 0 } else { 16 });
                            } else {
                                b.append_value(s.value(r).len() as u64);
                            }
                        }
                    }
                    DataType::List(_) => {
                        let l: &ListArray = a.as_list::<i32>();
                        for r in 0..rows {
                            if l.is_null(r) { b.append_null() } else { b.append_value(l.value_length(r) as u64) }
                        }
                    }
                    DataType::Null => b.append_nulls(rows),
                    other => {
                        return exec_err!("Illegal type {} of argument of function length", ChType::from_arrow(other));
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Lower | Kind::Upper => {
                let s = arrays[0].as_string::<i32>();
                let mut b = StringBuilder::new();
                for r in 0..rows {
                    if s.is_null(r) {
                        b.append_null();
                    } else if self.kind == Kind::Lower {
                        b.append_value(s.value(r).to_ascii_lowercase());
                    } else {
                        b.append_value(s.value(r).to_ascii_uppercase());
                    }
                }
                Arc::new(b.finish())
            }
            // A Bool or a comparison rounds as the UInt8 it is in ClickHouse (`ceil(id > 3, -1)` is 10; the hints
            // make a `Bool` argument's result a `Bool` again).
            Kind::Round { mode } if arrays[0].data_type() == &DataType::Boolean => {
                round(&cast(&arrays[0], &DataType::UInt8)?, &arrays[1], rows, *mode)?
            }
            Kind::Round { mode } => round(&arrays[0], &arrays[1], rows, *mode)?,
            Kind::Substring { chars } => substring(&arrays, rows, *chars)?,
            Kind::DateDiff => date_diff(&arrays, rows)?,
            Kind::IsNan => {
                let a = &arrays[0];
                let out: datafusion::arrow::array::BooleanArray = if a.data_type().is_floating() {
                    let f = cast(a, &DataType::Float64)?;
                    f.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                        .iter()
                        .map(|v| Some(v.is_some_and(f64::is_nan)))
                        .collect()
                } else {
                    (0..rows).map(|_| Some(false)).collect()
                };
                Arc::new(out)
            }
            Kind::NotNull if arrays[0].logical_null_count() > 0 => {
                return exec_err!(
                    "Cannot convert NULL value to non-Nullable type (CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN): cast to \
                     Nullable(T) to keep NULLs"
                );
            }
            Kind::Accurate => accurate(&arrays[0], &arrays[1])?,
            Kind::Coalesce => {
                let target = coalesce_type(&arrays.iter().map(|a| a.data_type().clone()).collect::<Vec<_>>());
                let mut out = datafusion::arrow::array::new_null_array(&target, rows);
                for a in arrays.iter().rev() {
                    let a = if a.data_type() == &target { a.clone() } else { cast(a, &target)? };
                    let present = datafusion::arrow::compute::is_not_null(&a)?;
                    out = datafusion::arrow::compute::kernels::zip::zip(&present, &a, &out)?;
                }
                out
            }
            Kind::UnixTimestamp => {
                let a = &arrays[0];
                if a.data_type().is_integer() || a.data_type().is_floating() || a.data_type() == &DataType::Boolean {
                    ch_cast(a, &DataType::UInt32, false)?
                } else {
                    let seconds = ch_cast(a, &DataType::Timestamp(TimeUnit::Second, None), false)?;
                    ch_cast(&ch_cast(&seconds, &DataType::Int64, false)?, &DataType::UInt32, false)?
                }
            }
            Kind::NotNull
            | Kind::Identity
            | Kind::Plain
            | Kind::Float64Arg { .. }
            | Kind::IfResult
            | Kind::TimeOfDayArg => arrays[0].clone(),
            Kind::GroupingKey { nullable } => {
                let key = &arrays[0];
                if *nullable || key.null_count() == 0 || key.data_type() == &DataType::Null {
                    key.clone()
                } else {
                    let default = default_of(args.arg_fields.first().map(AsRef::as_ref), key.data_type())?;
                    let mask = datafusion::arrow::compute::is_null(key.as_ref())?;
                    datafusion::arrow::compute::kernels::zip::zip(&mask, &default.to_scalar()?, key)?
                }
            }
            Kind::Range | Kind::Enumerate => ranges(&arrays[0], rows, &self.kind)?,
            Kind::ArraySlice => array_slice(&arrays, rows)?,
            Kind::ArrayCompact => array_compact(&arrays[0], rows)?,
            Kind::NoNullElements => {
                if let DataType::List(_) = arrays[0].data_type()
                    && let values = arrays[0].as_list::<i32>().values()
                    && (values.null_count() > 0 || values.data_type() == &DataType::Null && !values.is_empty())
                {
                    return exec_err!(
                        "tinybird-local's DataFusion engine does not support arrayDistinct of an array holding NULLs \
                         (ClickHouse drops them, and the Nullable)"
                    );
                }
                arrays[0].clone()
            }
            Kind::ArraySum => {
                let lists = arrays[0].as_list::<i32>();
                let unsigned = matches!(lists.value_type(), t if t.is_unsigned_integer());
                // Every element as 64 bits (two's complement for the signed), added with wrapping.
                let values = cast(lists.values(), if unsigned { &DataType::UInt64 } else { &DataType::Int64 })?;
                if values.null_count() > 0 {
                    return exec_err!(
                        "tinybird-local's DataFusion engine does not support arraySum of an array holding NULLs"
                    );
                }
                let bits: Vec<u64> = if unsigned {
                    values.as_primitive::<datafusion::arrow::datatypes::UInt64Type>().values().to_vec()
                } else {
                    values
                        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                        .values()
                        .iter()
                        .map(|v| *v as u64)
                        .collect()
                };
                let offsets = lists.value_offsets();
                let sums = (0..rows).map(|r| {
                    let (start, end) = (offsets[r] as usize, offsets[r + 1] as usize);
                    (!lists.is_null(r)).then(|| bits[start..end].iter().fold(0u64, |a, b| a.wrapping_add(*b)))
                });
                if unsigned {
                    Arc::new(sums.collect::<datafusion::arrow::array::UInt64Array>())
                } else {
                    Arc::new(sums.map(|s| s.map(|s| s as i64)).collect::<datafusion::arrow::array::Int64Array>())
                }
            }
            Kind::ArrayJoinSizes => {
                let lists: Vec<&ListArray> = arrays.iter().map(AsArray::as_list::<i32>).collect();
                for r in 0..rows {
                    let len = |l: &ListArray| if l.is_null(r) { 0 } else { l.value_length(r) };
                    if lists.iter().any(|l| len(l) != len(lists[0])) {
                        return exec_err!(
                            "Sizes of ARRAY-JOIN-ed arrays do not match: While executing ArrayJoinTransform. \
                             (SIZES_OF_ARRAYS_DONT_MATCH)"
                        );
                    }
                }
                arrays[0].clone()
            }
            Kind::ZeroIfNull => {
                let a = &arrays[0];
                if a.null_count() == 0 || a.data_type() == &DataType::Null {
                    a.clone()
                } else {
                    let default = default_of(args.arg_fields.first().map(AsRef::as_ref), a.data_type())?;
                    let zeros = default.to_array_of_size(a.len())?;
                    let mask = datafusion::arrow::compute::is_null(a.as_ref())?;
                    datafusion::arrow::compute::kernels::zip::zip(&mask, &zeros, a)?
                }
            }
            Kind::ParseDateTime { or_null } => {
                let s = cast(&arrays[0], &DataType::Utf8)?;
                let s = s.as_string::<i32>();
                let mut b = TimestampSecondBuilder::new();
                for r in 0..rows {
                    if s.is_null(r) {
                        b.append_null();
                        continue;
                    }
                    match parse_best_effort(s.value(r)) {
                        Some(t) => b.append_value(t),
                        None if *or_null => b.append_null(),
                        None => {
                            // The text stays out of the message (see `ch_cast`).
                            return exec_err!("Cannot read DateTime: unexpected text (CANNOT_PARSE_DATETIME)");
                        }
                    }
                }
                Arc::new(b.finish())
            }
            Kind::ParseDateTime64 { or_null } => text_to_timestamp(&arrays[0], &TimeUnit::Millisecond, *or_null)?,
            // A NULL document gives NULL (ClickHouse's default for a Nullable argument), not the function's default.
            Kind::Json(kind) => {
                let out = json(kind, &arrays, rows)?;
                match arrays[0].logical_nulls() {
                    Some(nulls) if nulls.null_count() > 0 && arrays[0].data_type() != &DataType::Null => {
                        let is_null = datafusion::arrow::array::BooleanArray::new(!nulls.inner(), None);
                        datafusion::arrow::compute::nullif(&out, &is_null)?
                    }
                    _ => out,
                }
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

fn ch_cast(a: &ArrayRef, target: &DataType, safe: bool) -> Result<ArrayRef> {
    let options = CastOptions { safe, ..Default::default() };
    let source = a.data_type();
    // Integer to integer wraps, as ClickHouse's conversions do (`toUInt8(300)` is 44, `toUInt64(toInt8(-1))`
    // 18446744073709551615), where arrow's cast fails.
    if (source.is_integer() || *source == DataType::Boolean) && target.is_integer() && source != target {
        use datafusion::arrow::array::{Int64Array, UInt64Array};
        let wide = integers_wide(a)?;
        let ChType::Int { signed, bits } = ChType::from_arrow(target) else { unreachable!("an integer type") };
        let wrapped = wide.into_iter().map(|v| v.map(|v| super::arithmetic::wrap(v, signed, u32::from(bits))));
        let exact: ArrayRef = if signed {
            Arc::new(wrapped.map(|v| v.map(|v| v as i64)).collect::<Int64Array>())
        } else {
            Arc::new(wrapped.map(|v| v.map(|v| v as u64)).collect::<UInt64Array>())
        };
        return Ok(cast(&exact, target)?);
    }
    // A date-time as a number is its seconds (truncated toward zero; a float keeps the fraction), as in ClickHouse;
    // arrow's cast would give the unit's count (milliseconds of a DateTime64(3)).
    if let DataType::Timestamp(unit, _) = source
        && (target.is_integer() || target.is_floating())
    {
        use datafusion::arrow::datatypes::{Float64Type, Int64Type};
        let per = per_second(unit);
        let raw = cast(a, &DataType::Int64)?;
        let raw = raw.as_primitive::<Int64Type>();
        let out: ArrayRef = if target.is_floating() {
            Arc::new(raw.unary::<_, Float64Type>(|v| v as f64 / per as f64))
        } else {
            let seconds = raw.unary::<_, Int64Type>(|v| v / per);
            // A DateTime64 (a decimal in ClickHouse) that does not fit the integer is ClickHouse's error.
            if per > 1 {
                let ChType::Int { signed, bits } = ChType::from_arrow(target) else { unreachable!("an integer type") };
                let (low, high) = super::arithmetic::int_range(signed, u32::from(bits));
                if seconds.iter().flatten().any(|v| !(low..=high).contains(&i128::from(v))) {
                    return exec_err!("DB::Exception: Convert overflow (DECIMAL_OVERFLOW)");
                }
            }
            Arc::new(seconds)
        };
        return ch_cast(&out, target, safe);
    }
    // Text with spaces around a number is not one to ClickHouse (arrow's parser would trim them).
    if matches!(source, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        && (target.is_integer() || target.is_floating())
    {
        let text = cast(a, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let spaced = |v: &str| v.starts_with(char::is_whitespace) || v.ends_with(char::is_whitespace);
        if text.iter().flatten().any(spaced) {
            if !safe {
                return exec_err!(
                    "Cannot parse {} from String: a value has spaces around it (CANNOT_PARSE_TEXT)",
                    ChType::from_arrow(target)
                );
            }
            let cleaned: datafusion::arrow::array::StringArray =
                text.iter().map(|v| v.filter(|v| !spaced(v))).collect();
            return ch_cast(&(Arc::new(cleaned) as ArrayRef), target, safe);
        }
    }
    // A Date as a number is its day number.
    if *source == DataType::Date32 && (target.is_integer() || target.is_floating()) {
        return ch_cast(&cast(a, &DataType::Int32)?, target, safe);
    }
    let staged: ArrayRef = match (source, target) {
        // Integers are seconds since the epoch for DateTime, clamped to its range as ClickHouse does; arrow casts
        // only from Int64.
        (s, DataType::Timestamp(TimeUnit::Second, None)) if s.is_integer() => {
            Arc::new(integers_clamped(a, 0, i128::from(u32::MAX))?)
        }
        // A float's seconds are truncated toward zero and clamped alike (`toDateTime(toFloat32(-1.5))` is the epoch).
        (s, DataType::Timestamp(TimeUnit::Second, None)) if s.is_floating() => {
            let floats = cast(a, &DataType::Float64)?;
            let seconds: datafusion::arrow::array::Int64Array = floats
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .iter()
                .map(|v| v.map(|f| if f.is_nan() { 0 } else { f.trunc().clamp(0.0, f64::from(u32::MAX)) as i64 }))
                .collect();
            Arc::new(seconds)
        }
        (s, DataType::Timestamp(..)) if s.is_integer() => cast_with_options(a, &DataType::Int64, &options)?,
        // An integer to a Date: a day number below 65536, seconds since the epoch from there (ClickHouse's reading),
        // clamped to the Date range.
        (s, DataType::Date32) if s.is_integer() => {
            let days =
                integers_clamped(a, i128::MIN, i128::MAX)?.unary::<_, datafusion::arrow::datatypes::Int32Type>(|v| {
                    // Seconds are a DateTime's: clamped to 2106-02-07 06:28:15 first.
                    let days = if v < 65_536 { v.max(0) } else { v.min(i64::from(u32::MAX)) / 86_400 };
                    days.clamp(0, 65_535) as i32
                });
            return Ok(Arc::new(days.reinterpret_cast::<datafusion::arrow::datatypes::Date32Type>()));
        }
        // `toDate('2024-01-01 10:00:00')` keeps the date of a full timestamp string.
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, DataType::Date32) => {
            cast_with_options(a, &DataType::Timestamp(TimeUnit::Second, None), &options)?
        }
        // Text to a DateTime64: parsed here (see `text_to_timestamp`).
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, DataType::Timestamp(unit, None))
            if *unit != TimeUnit::Second =>
        {
            return text_to_timestamp(a, unit, safe);
        }
        // Timestamps with a zone are shown in UTC, as the server's zone.
        (DataType::Timestamp(unit, Some(_)), _) => cast_with_options(a, &DataType::Timestamp(*unit, None), &options)?,
        _ => a.clone(),
    };
    // Arrow's message names the value; an error must not show a row the caller's filter hides, so it is left out.
    let out = cast_with_options(&staged, target, &options).map_err(|_| {
        datafusion::error::DataFusionError::Execution(format!(
            "Cannot convert {} to {}: a value does not parse as one (CANNOT_PARSE_TEXT)",
            ChType::from_arrow(source),
            ChType::from_arrow(target)
        ))
    })?;
    Ok(out)
}

/// `ch_plain_value(x)`: `x` without its column's declared ClickHouse type (a fresh field), for a `UNION` whose
/// branches declare different ones (see the `unions` module).
pub(crate) fn plain_value_udf() -> ScalarUDF {
    udf("ch_plain_value", Kind::Plain, Signature::any(1, Volatility::Immutable))
}

/// The type of `ch_coalesce`'s result: UInt8 for conditions among integers (then the integers' common type), else
/// the first argument's type that is not NULL's.
pub(crate) fn coalesce_type(args: &[DataType]) -> DataType {
    let present: Vec<&DataType> = args.iter().filter(|t| !t.is_null()).collect();
    if present.iter().any(|t| **t == DataType::Boolean) && present.iter().any(|t| t.is_integer()) {
        let ints: Vec<DataType> =
            present.iter().map(|t| if **t == DataType::Boolean { DataType::UInt8 } else { (*t).clone() }).collect();
        return datafusion::logical_expr::type_coercion::binary::type_union_resolution(&ints)
            .unwrap_or(DataType::Int64);
    }
    datafusion::logical_expr::type_coercion::binary::type_union_resolution(
        &present.iter().map(|t| (*t).clone()).collect::<Vec<_>>(),
    )
    .or_else(|| present.first().map(|t| (*t).clone()))
    .unwrap_or(DataType::Null)
}

/// `y` where it holds exactly `x`'s number (`x` an integer or a float), else NULL; any other `x` (text, a decimal,
/// which ClickHouse truncates) keeps `y`.
fn accurate(x: &ArrayRef, y: &ArrayRef) -> Result<ArrayRef> {
    #[derive(Clone, Copy)]
    enum Num {
        Int(i128),
        Float(f64),
    }
    fn numbers(a: &ArrayRef) -> Result<Option<Vec<Option<Num>>>> {
        let t = a.data_type();
        Ok(if t.is_integer() {
            Some(integers_wide(a)?.into_iter().map(|v| v.map(Num::Int)).collect())
        } else if t.is_floating() {
            let f = cast(a, &DataType::Float64)?;
            Some(
                f.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                    .iter()
                    .map(|v| v.map(Num::Float))
                    .collect(),
            )
        } else {
            None
        })
    }
    let (Some(xs), Some(ys)) = (numbers(x)?, numbers(y)?) else { return Ok(y.clone()) };
    let same = |a: Num, b: Num| match (a, b) {
        (Num::Int(a), Num::Int(b)) => a == b,
        (Num::Float(a), Num::Float(b)) => a == b,
        (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => {
            f.is_finite() && f.fract() == 0.0 && f.abs() < 1.7e38 && f as i128 == i && i as f64 == f
        }
    };
    let keep: datafusion::arrow::array::BooleanArray =
        xs.iter().zip(&ys).map(|(a, b)| Some(matches!((a, b), (Some(a), Some(b)) if same(*a, *b)))).collect();
    let nulls = datafusion::arrow::array::new_null_array(y.data_type(), y.len());
    Ok(datafusion::arrow::compute::kernels::zip::zip(&keep, y, &nulls)?)
}

/// A call's arguments as arrays of its row count. (`ColumnarValue::values_to_arrays` makes constants as long as
/// the first array, or one row when all are constants, where the call may be asked for more rows: a column a plan
/// turned into a constant, such as a LEFT JOIN's default-filled side when no row matched.)
pub(crate) fn arrays_of(args: &ScalarFunctionArgs) -> Result<Vec<ArrayRef>> {
    args.args.iter().map(|a| a.to_array(args.number_rows)).collect()
}

/// Integers (or booleans) as exact i128 values.
fn integers_wide(a: &ArrayRef) -> Result<Vec<Option<i128>>> {
    use datafusion::arrow::datatypes::{Int64Type, UInt64Type};
    Ok(match a.data_type() {
        DataType::UInt64 => a.as_primitive::<UInt64Type>().iter().map(|v| v.map(i128::from)).collect(),
        _ => cast(a, &DataType::Int64)?.as_primitive::<Int64Type>().iter().map(|v| v.map(i128::from)).collect(),
    })
}

/// Integers as Int64 (a UInt64 past it saturating), clamped to `[low, high]`.
fn integers_clamped(a: &ArrayRef, low: i128, high: i128) -> Result<datafusion::arrow::array::Int64Array> {
    let wide = integers_wide(a)?;
    Ok(wide
        .into_iter()
        .map(|v| v.map(|v| v.clamp(low, high).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64))
        .collect())
}

/// The most elements `range` and `arrayEnumerate` build for one batch (ClickHouse's own limit is in the same spirit:
/// `function_range_max_elements_in_block`).
const MAX_RANGE_ELEMENTS: usize = 100_000_000;

/// `range(n)` (`[0, n)` in `n`'s type) or `arrayEnumerate(arr)` (`[1, length]` as `UInt32`), one list per row.
fn ranges(arg: &ArrayRef, rows: usize, kind: &Kind) -> Result<ArrayRef> {
    use datafusion::arrow::buffer::OffsetBuffer;
    let lengths: Vec<usize> = match kind {
        Kind::Range => {
            let n = cast(arg, &DataType::UInt64)?;
            let n = n.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
            (0..rows)
                .map(|r| if n.is_null(r) { 0 } else { usize::try_from(n.value(r)).unwrap_or(usize::MAX) })
                .collect()
        }
        _ => {
            let l = arg.as_list::<i32>();
            (0..rows).map(|r| if l.is_null(r) { 0 } else { l.value_length(r) as usize }).collect()
        }
    };
    let total = lengths.iter().try_fold(0usize, |sum, n| sum.checked_add(*n).filter(|t| *t <= MAX_RANGE_ELEMENTS));
    if total.is_none() {
        return exec_err!(
            "A call to function range would produce more than {MAX_RANGE_ELEMENTS} array elements in one block \
             (ARGUMENT_OUT_OF_BOUND)"
        );
    }
    let (first, element) = match kind {
        Kind::Range => (0u64, arg.data_type().clone()),
        _ => (1u64, DataType::UInt32),
    };
    let mut values = UInt64Builder::new();
    for n in &lengths {
        for i in 0..*n as u64 {
            values.append_value(first + i);
        }
    }
    let values = cast(&(Arc::new(values.finish()) as ArrayRef), &element)?;
    let field = Arc::new(Field::new("item", element, false));
    Ok(Arc::new(ListArray::try_new(field, OffsetBuffer::from_lengths(lengths), values, None)?))
}

/// The part of one array `arraySlice` keeps, as element positions `[start, end)`, as ClickHouse reads the bounds:
/// offset 1 is the first element, -1 the last (counted from the end it may fall before the first: the length then
/// counts from there), 0 nothing; a negative length stops that many elements before the end.
fn slice_bounds(len: i64, offset: i64, length: Option<i64>) -> (i64, i64) {
    let start = match offset {
        0 => return (0, 0),
        o if o > 0 => o - 1,
        o => len.saturating_add(o),
    };
    let end = match length {
        None => len,
        Some(l) if l >= 0 => start.saturating_add(l),
        Some(l) => len.saturating_add(l),
    };
    let (start, end) = (start.clamp(0, len), end.clamp(0, len));
    if end <= start { (0, 0) } else { (start, end) }
}

fn array_compact(array: &ArrayRef, rows: usize) -> Result<ArrayRef> {
    use datafusion::arrow::array::UInt32Array;
    use datafusion::arrow::buffer::OffsetBuffer;
    let list = array.as_list::<i32>();
    let values = list.values();
    let mut indices: Vec<u32> = Vec::new();
    let mut lengths: Vec<usize> = Vec::with_capacity(rows);
    for r in 0..rows {
        if list.is_null(r) {
            lengths.push(0);
            continue;
        }
        let (first, len) = (list.value_offsets()[r] as usize, list.value_length(r) as usize);
        let mut kept = 0;
        let mut previous: Option<ScalarValue> = None;
        for i in first..first + len {
            let v = ScalarValue::try_from_array(values, i)?;
            if previous.as_ref() != Some(&v) {
                indices.push(i as u32);
                kept += 1;
            }
            previous = Some(v);
        }
        lengths.push(kept);
    }
    let taken = datafusion::arrow::compute::take(values.as_ref(), &UInt32Array::from(indices), None)?;
    let DataType::List(field) = array.data_type() else { return exec_err!("arrayCompact of a non-array") };
    Ok(Arc::new(ListArray::try_new(field.clone(), OffsetBuffer::from_lengths(lengths), taken, list.nulls().cloned())?))
}

fn array_slice(arrays: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    use datafusion::arrow::array::UInt32Array;
    use datafusion::arrow::buffer::OffsetBuffer;
    let list = arrays[0].as_list::<i32>();
    let int = |a: &ArrayRef, r: usize| match value_at(a.as_ref(), r) {
        Value::Int(n) => Some(n),
        Value::UInt(n) => Some(i64::try_from(n).unwrap_or(i64::MAX)),
        _ => None,
    };
    let mut indices: Vec<u32> = Vec::new();
    let mut lengths: Vec<usize> = Vec::with_capacity(rows);
    for r in 0..rows {
        if list.is_null(r) {
            lengths.push(0);
            continue;
        }
        let (first, len) = (list.value_offsets()[r] as i64, list.value_length(r) as i64);
        if int(&arrays[1], r) == Some(i64::MIN) || arrays.get(2).and_then(|a| int(a, r)) == Some(i64::MIN) {
            return exec_err!(
                "DB::Exception: Overflow in length argument of substring-like function: -9223372036854775808 \
                 (ARGUMENT_OUT_OF_BOUND)"
            );
        }
        // A NULL bound is no bound (as ClickHouse reads it).
        let (start, end) = slice_bounds(len, int(&arrays[1], r).unwrap_or(1), arrays.get(2).and_then(|a| int(a, r)));
        indices.extend((first + start..first + end).map(|i| i as u32));
        lengths.push((end - start) as usize);
    }
    let values = datafusion::arrow::compute::take(list.values().as_ref(), &UInt32Array::from(indices), None)?;
    let field = match arrays[0].data_type() {
        DataType::List(f) => f.clone(),
        other => return exec_err!("arraySlice of {other}"),
    };
    Ok(Arc::new(ListArray::try_new(field, OffsetBuffer::from_lengths(lengths), values, list.nulls().cloned())?))
}

/// ClickHouse's `substring(s, offset[, length])` (bytes) and `substringUTF8` (`chars`: characters): 1-based; a
/// negative offset counts from the end, and the window `[offset, offset + length)` is clipped to the string (so
/// `substring('ab', -10, 3)` is empty); a negative length stops that many before the end; offset 0 is ClickHouse's
/// error for a column (its answer for a constant, '', is not given).
fn substring(arrays: &[ArrayRef], rows: usize, chars: bool) -> Result<ArrayRef> {
    if !(2..=3).contains(&arrays.len()) {
        return exec_err!("substring takes 2 or 3 arguments");
    }
    let s = cast(&arrays[0], &DataType::Utf8)?;
    let s = s.as_string::<i32>();
    // A float offset or length is truncated toward zero, a Bool is 0 or 1 (`left(s, length(s) / 2)`), as in ClickHouse.
    let int = |a: &ArrayRef, r: usize| match value_at(a.as_ref(), r) {
        Value::Int(n) => Some(n),
        Value::UInt(n) => Some(i64::try_from(n).unwrap_or(i64::MAX)),
        Value::Float(f) if f.is_finite() => Some(f.trunc().clamp(i64::MIN as f64, i64::MAX as f64) as i64),
        Value::Bool(b) => Some(i64::from(b)),
        Value::Decimal(v, scale) => i64::try_from(v / 10i128.pow(u32::from(scale.max(0).unsigned_abs()))).ok(),
        _ => None,
    };
    let mut b = StringBuilder::new();
    let mut boundaries: Vec<usize> = Vec::new();
    for r in 0..rows {
        let (Some(off), true) = (int(&arrays[1], r), !s.is_null(r)) else {
            b.append_null();
            continue;
        };
        let text = s.value(r);
        // Positions are bytes, or characters (their byte offsets in `boundaries`, the end included).
        let n = if chars {
            boundaries.clear();
            boundaries.extend(text.char_indices().map(|(i, _)| i));
            boundaries.push(text.len());
            boundaries.len() as i64 - 1
        } else {
            text.len() as i64
        };
        let start = match off {
            0 => return exec_err!("DB::Exception: Indices in strings are 1-based (ZERO_ARRAY_OR_TUPLE_INDEX)"),
            o if o > 0 => o - 1,
            o => n.saturating_add(o),
        };
        let end = match arrays.get(2).map(|a| int(a, r)) {
            None => n,
            // Offsets and lengths are user numbers: saturate rather than overflow.
            Some(Some(len)) if len >= 0 => start.saturating_add(len),
            Some(Some(len)) => n.saturating_add(len),
            Some(None) => {
                b.append_null();
                continue;
            }
        };
        let (lo, hi) = (start.clamp(0, n) as usize, end.clamp(0, n) as usize);
        if lo >= hi {
            b.append_value("");
            continue;
        }
        if chars {
            b.append_value(&text[boundaries[lo]..boundaries[hi]]);
            continue;
        }
        // ClickHouse cuts bytes, and may return part of a character: text this engine cannot hold.
        match text.get(lo..hi) {
            Some(part) => b.append_value(part),
            None => {
                return exec_err!(
                    "DB::Exception: substring from byte {} to byte {hi} cuts a multi-byte UTF-8 character, which \
                     tinybird-local's DataFusion engine does not support (use substringUTF8 to count characters)",
                    lo + 1
                );
            }
        }
    }
    Ok(Arc::new(b.finish()))
}

/// How `round`, `roundBankers`, `floor`, `ceil` and `trunc` go to a multiple of `10^-n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Rounding {
    /// `round`: integers half away from zero; floats half to even (`nearbyint`).
    HalfAway,
    /// `roundBankers`: half to even.
    Bankers,
    Floor,
    Ceil,
    Trunc,
}

impl Rounding {
    fn name(self) -> &'static str {
        match self {
            Rounding::HalfAway => "round",
            Rounding::Bankers => "roundBankers",
            Rounding::Floor => "floor",
            Rounding::Ceil => "ceil",
            Rounding::Trunc => "trunc",
        }
    }

    fn float(self, v: f64) -> f64 {
        match self {
            Rounding::HalfAway | Rounding::Bankers => v.round_ties_even(),
            Rounding::Floor => v.floor(),
            Rounding::Ceil => v.ceil(),
            Rounding::Trunc => v.trunc(),
        }
    }

    fn float32(self, v: f32) -> f32 {
        match self {
            Rounding::HalfAway | Rounding::Bankers => v.round_ties_even(),
            Rounding::Floor => v.floor(),
            Rounding::Ceil => v.ceil(),
            Rounding::Trunc => v.trunc(),
        }
    }
}

/// ClickHouse's integer rounding to a multiple of `scale`, step by step in the value's own type as its C++ does:
/// each assignment wraps to the type's width, each operation to the width C++ computes it in (`int` for narrower
/// types). So `round(toUInt8(255), -1)` is 4 and `round(toInt8(-125), -1)` 120, as there.
fn round_integer(x: i128, scale: i128, bits: u32, signed: bool, mode: Rounding) -> i128 {
    let (op_bits, op_signed) = if bits < 32 { (32, true) } else { (bits, signed) };
    let op = |v: i128| super::arithmetic::wrap(v, op_signed, op_bits);
    let set = |v: i128| super::arithmetic::wrap(v, signed, bits);
    // C++ division truncates toward zero, as i128's does.
    let mut x = x;
    match mode {
        Rounding::Trunc => set(op(op(x / scale) * scale)),
        Rounding::Floor => {
            if x < 0 {
                x = set(op(x - (scale - 1)));
            }
            set(op(op(x / scale) * scale))
        }
        Rounding::Ceil => {
            if x >= 0 {
                x = set(op(x + (scale - 1)));
            }
            set(op(op(x / scale) * scale))
        }
        Rounding::HalfAway | Rounding::Bankers => {
            if x < 0 {
                x = set(op(x - scale));
            }
            let half = scale / 2;
            if mode == Rounding::HalfAway {
                return set(op(op(op(x + half) / scale) * scale));
            }
            let quotient = set(op(op(x + half) / scale));
            if op(quotient * scale) == op(x + half) {
                // Half to even.
                set(op(op(op(quotient + i128::from(x < 0)) & !1) * scale))
            } else {
                set(op(quotient * scale))
            }
        }
    }
}

/// `round`, `roundBankers`, `floor`, `ceil` and `trunc` with a number of digits, as ClickHouse computes them: an
/// integer keeps its type (see [`round_integer`]); a float is multiplied by `10^n` (or divided by `10^-n`), rounded,
/// and divided back (or multiplied), in Float32 for a Float32.
fn round(x: &ArrayRef, digits: &ArrayRef, rows: usize, mode: Rounding) -> Result<ArrayRef> {
    // The digits of every row must be the first row's (a constant, as pipes write them): one number applies to all.
    let wide = cast(digits, &DataType::Int64)?;
    let wide = wide.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    if wide.len() > 1 && (wide.null_count() > 0 || wide.values().iter().any(|v| *v != wide.values()[0])) {
        return exec_err!(
            "DB::Exception: tinybird-local's DataFusion engine does not support {} to a number of digits that \
             varies by row (write a constant)",
            mode.name()
        );
    }
    let n = match value_at(digits.as_ref(), 0) {
        Value::Int(n) => n,
        Value::UInt(n) => n as i64,
        Value::Null => 0,
        other => return exec_err!("{}: the number of digits must be an integer, got {other:?}", mode.name()),
    };
    let name = mode.name();
    if !(-18..=18).contains(&n) {
        return exec_err!(
            "DB::Exception: tinybird-local's DataFusion engine does not support {name} to {n} digits (at most 18 either \
             way)"
        );
    }
    if matches!(x.data_type(), DataType::Decimal128(..) | DataType::Decimal256(..)) {
        return exec_err!(
            "DB::Exception: tinybird-local's DataFusion engine does not support {name} of a Decimal (ClickHouse keeps \
             the Decimal type)"
        );
    }
    if x.data_type().is_integer() {
        if n >= 0 {
            return Ok(x.clone());
        }
        let (bits, signed) = match ChType::from_arrow(x.data_type()) {
            ChType::Int { bits, signed } => (u32::from(bits), signed),
            _ => (64, true),
        };
        let scale = 10i128.pow((-n) as u32);
        let max = if signed { (1i128 << (bits - 1)) - 1 } else { (1i128 << bits) - 1 };
        // A multiple of more than the type holds: 0, as ClickHouse gives.
        let beyond = scale > max;
        let mut out: Vec<Option<i128>> = Vec::with_capacity(rows);
        for r in 0..rows {
            out.push(match value_at(x.as_ref(), r) {
                Value::Int(_) | Value::UInt(_) if beyond => Some(0),
                Value::Int(v) => Some(round_integer(v as i128, scale, bits, signed, mode)),
                Value::UInt(v) => Some(round_integer(v as i128, scale, bits, signed, mode)),
                _ => None,
            });
        }
        let wide: ArrayRef = if signed {
            Arc::new(out.iter().map(|v| v.map(|v| v as i64)).collect::<datafusion::arrow::array::Int64Array>())
        } else {
            Arc::new(out.iter().map(|v| v.map(|v| v as u64)).collect::<datafusion::arrow::array::UInt64Array>())
        };
        // Every value fits its type now: the cast only narrows.
        return Ok(cast(&wide, x.data_type())?);
    }
    if x.data_type() == &DataType::Float32 {
        // ClickHouse rounds a Float32 in Float32.
        let f: &datafusion::arrow::array::Float32Array = x.as_primitive();
        let scale = 10f32.powi(n.unsigned_abs() as i32);
        let out: datafusion::arrow::array::Float32Array = f
            .iter()
            .map(|v| v.map(|v| if n >= 0 { mode.float32(v * scale) / scale } else { mode.float32(v / scale) * scale }))
            .collect();
        return Ok(Arc::new(out));
    }
    let f = cast(x, &DataType::Float64)?;
    let f: &Float64Array = f.as_primitive();
    let scale = 10f64.powi(n.unsigned_abs() as i32);
    let out: Float64Array = f
        .iter()
        .map(|v| v.map(|v| if n >= 0 { mode.float(v * scale) / scale } else { mode.float(v / scale) * scale }))
        .collect();
    Ok(Arc::new(out))
}

fn date_diff(arrays: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    let unit = match value_at(arrays[0].as_ref(), 0) {
        Value::Str(s) => s.to_ascii_lowercase(),
        _ => return exec_err!("dateDiff: the unit must be a string such as 'day'"),
    };
    let seconds = |a: &ArrayRef| ch_cast(a, &DataType::Timestamp(TimeUnit::Second, None), false);
    let (a, b) = (seconds(&arrays[1])?, seconds(&arrays[2])?);
    let mut out = Int64Builder::new();
    for r in 0..rows {
        let (Value::DateTime(x), Value::DateTime(y)) = (value_at(a.as_ref(), r), value_at(b.as_ref(), r)) else {
            out.append_null();
            continue;
        };
        let seconds = |ns: i128| i64::try_from(ns.div_euclid(1_000_000_000)).unwrap_or_default();
        let (x, y) = (seconds(x), seconds(y));
        let per = |s: i64| y.div_euclid(s) - x.div_euclid(s);
        let ym = |t: i64| {
            let d = DateTime::from_timestamp(t, 0).map(|d| d.naive_utc()).unwrap_or_default();
            (d.year() as i64, d.month() as i64)
        };
        let v = match unit.as_str() {
            "second" | "seconds" | "ss" | "s" => y - x,
            "minute" | "minutes" | "mi" | "n" => per(60),
            "hour" | "hours" | "hh" | "h" => per(3600),
            "day" | "days" | "dd" | "d" => per(86_400),
            // Weeks start on Monday; 1970-01-01 was a Thursday.
            "week" | "weeks" | "wk" | "ww" => {
                (y.div_euclid(86_400) + 3).div_euclid(7) - (x.div_euclid(86_400) + 3).div_euclid(7)
            }
            "month" | "months" | "mm" | "m" => {
                let ((ya, ma), (yb, mb)) = (ym(x), ym(y));
                (yb * 12 + mb) - (ya * 12 + ma)
            }
            "quarter" | "quarters" | "qq" | "q" => {
                let ((ya, ma), (yb, mb)) = (ym(x), ym(y));
                (yb * 4 + (mb - 1) / 3) - (ya * 4 + (ma - 1) / 3)
            }
            "year" | "years" | "yyyy" | "yy" => ym(y).0 - ym(x).0,
            other => return exec_err!("dateDiff: unknown unit '{other}'"),
        };
        out.append_value(v);
    }
    Ok(Arc::new(out.finish()))
}

/// `parseDateTimeBestEffort`: ISO 8601 / RFC 3339 / RFC 2822, date only, or a unix timestamp; UTC seconds.
pub(crate) fn parse_best_effort(text: &str) -> Option<i64> {
    parse_datetime_ns(text).map(|ns| ns.div_euclid(1_000_000_000))
}

/// Parses a date-time as ClickHouse's best-effort parser does, to nanoseconds since the epoch (UTC).
pub fn parse_datetime_ns(text: &str) -> Option<i64> {
    parse_datetime(text)?.and_utc().timestamp_nanos_opt()
}

/// Parses a date-time as ClickHouse's best-effort parser does, as a UTC date and time (any year chrono holds, where
/// nanoseconds in an i64 end in 2262).
pub fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    // The form ClickHouse prints and clients send, without trying the general formats below one by one.
    if let Some(t) = tinybird_core::types::wire::parse_datetime_fast(s.as_bytes()) {
        return Some(t);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) && s.len() >= 9 {
        return DateTime::from_timestamp(s.parse::<i64>().ok()?, 0).map(|d| d.naive_utc());
    }
    let utc = |d: DateTime<chrono::FixedOffset>| Some(d.naive_utc());
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return utc(d);
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return utc(d);
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%z"]
    {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return utc(d);
        }
    }
    let naive = s.strip_suffix('Z').unwrap_or(s);
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%d/%m/%Y %H:%M:%S",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(naive, f) {
            return Some(d);
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(naive, f) {
            return Some(d.and_time(NaiveTime::MIN));
        }
    }
    None
}

/// A parsed date-time in a timestamp unit (`per_second` of them a second), None when it does not fit an i64.
fn in_unit(t: NaiveDateTime, per_second: i64) -> Option<i64> {
    let t = t.and_utc();
    t.timestamp()
        .checked_mul(per_second)?
        .checked_add(i64::from(t.timestamp_subsec_nanos()) / (1_000_000_000 / per_second))
}

/// How many of `unit` make a second.
pub(super) fn per_second(unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// Text to a timestamp of `unit`, parsed here rather than by Arrow, whose parser goes through i64 nanoseconds and
/// so ends at 2262 (ClickHouse's DateTime64 reaches 2299). Unparseable text is an error, or NULL when `safe`.
fn text_to_timestamp(a: &ArrayRef, unit: &TimeUnit, safe: bool) -> Result<ArrayRef> {
    let text = cast(a, &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    let mut out = Vec::with_capacity(text.len());
    for v in text.iter() {
        let Some(v) = v else {
            out.push(None);
            continue;
        };
        match parse_datetime(v).and_then(|t| in_unit(t, per_second(unit))) {
            Some(t) => out.push(Some(t)),
            None if safe => out.push(None),
            // The value stays out of the message: an error must not show a row a filter hides.
            None => return exec_err!("Cannot parse DateTime from String (CANNOT_PARSE_DATETIME)"),
        }
    }
    let raw: ArrayRef = Arc::new(datafusion::arrow::array::Int64Array::from(out));
    Ok(cast(&raw, &DataType::Timestamp(*unit, None))?)
}

fn json(kind: &Json, arrays: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    use super::json::{Json as Doc, Step};
    let docs = cast(&arrays[0], &DataType::Utf8)?;
    let docs = docs.as_string::<i32>();
    // The value at the path in row `r`'s document, and what `f` makes of it (`f(None)` when there is none).
    let at = |r: usize, f: &mut dyn FnMut(Option<&Doc>)| {
        let doc = if docs.is_null(r) { None } else { Doc::parse(docs.value(r)) };
        let mut found = doc.as_ref();
        for key in &arrays[1..] {
            let Some(v) = found else { break };
            found = match value_at(key.as_ref(), r) {
                Value::Str(k) => v.get(Step::Key(&k)),
                Value::Int(i) => v.get(Step::Index(i)),
                Value::UInt(i) => i64::try_from(i).ok().and_then(|i| v.get(Step::Index(i))),
                _ => None,
            };
        }
        f(found);
    };
    Ok(match kind {
        Json::String | Json::Raw => {
            let mut b = StringBuilder::new();
            for r in 0..rows {
                at(r, &mut |v| match (kind, v) {
                    (Json::Raw, Some(v)) => b.append_value(v.raw()),
                    (_, Some(v)) => b.append_value(v.to_text()),
                    _ => b.append_value(""),
                });
            }
            Arc::new(b.finish())
        }
        Json::Int => {
            let mut b = Int64Builder::new();
            for r in 0..rows {
                at(r, &mut |v| b.append_value(v.map_or(0, Doc::to_i64)));
            }
            Arc::new(b.finish())
        }
        Json::UInt => {
            let mut b = UInt64Builder::new();
            for r in 0..rows {
                at(r, &mut |v| b.append_value(v.map_or(0, Doc::to_u64)));
            }
            Arc::new(b.finish())
        }
        Json::Float => {
            let mut b = Float64Builder::new();
            for r in 0..rows {
                at(r, &mut |v| b.append_value(v.map_or(0.0, Doc::to_f64)));
            }
            Arc::new(b.finish())
        }
        Json::TypedFloat => {
            let mut b = Float64Builder::new();
            for r in 0..rows {
                at(r, &mut |v| b.append_value(v.and_then(json_float).unwrap_or(0.0)));
            }
            Arc::new(b.finish())
        }
        Json::Typed { signed, bits } => {
            let read = |v: Option<&Doc>| v.and_then(|v| json_integer(v, *signed, *bits)).unwrap_or(0);
            if *signed {
                let mut b = Int64Builder::new();
                for r in 0..rows {
                    at(r, &mut |v| b.append_value(read(v) as i64));
                }
                Arc::new(b.finish())
            } else {
                let mut b = UInt64Builder::new();
                for r in 0..rows {
                    at(r, &mut |v| b.append_value(read(v) as u64));
                }
                Arc::new(b.finish())
            }
        }
        Json::TypedArray(element) => {
            // A NULL document: ClickHouse's type would be a Nullable array, which it refuses.
            if docs.null_count() > 0 {
                return exec_err!(
                    "Nested type Array({}) cannot be inside Nullable type (ILLEGAL_TYPE_OF_ARGUMENT)",
                    ChType::from_arrow(element)
                );
            }
            // Every element as f64, i128 (exact in each) or text, then cast to the element type (in range: exact).
            let float = element.is_floating();
            let text = element == &DataType::Utf8;
            let (signed, bits) = match ChType::from_arrow(element) {
                ChType::Int { signed, bits } => (signed, bits),
                _ => (true, 64),
            };
            let mut lengths = Vec::with_capacity(rows);
            let (mut floats, mut integers, mut texts) = (Vec::new(), Vec::new(), Vec::new());
            for r in 0..rows {
                at(r, &mut |v| {
                    let items = match v {
                        Some(Doc::Array(items)) => items.as_slice(),
                        _ => &[],
                    };
                    let before = (floats.len(), integers.len(), texts.len());
                    let mut valid = false;
                    for item in items {
                        if text {
                            // `null` is not a string: `''`, and not a valid element.
                            valid |= !matches!(item, Doc::Null);
                            texts.push(item.to_text());
                        } else if float {
                            let x = json_float(item);
                            valid |= x.is_some();
                            floats.push(x.unwrap_or(0.0));
                        } else {
                            let x = json_integer(item, signed, bits);
                            valid |= x.is_some();
                            integers.push(x.unwrap_or(0));
                        }
                    }
                    if !valid {
                        floats.truncate(before.0);
                        integers.truncate(before.1);
                        texts.truncate(before.2);
                    }
                    lengths.push(if valid { items.len() } else { 0 });
                });
            }
            let values: ArrayRef = if text {
                Arc::new(datafusion::arrow::array::StringArray::from(texts))
            } else if float {
                Arc::new(datafusion::arrow::array::Float64Array::from(floats))
            } else if signed {
                Arc::new(datafusion::arrow::array::Int64Array::from_iter_values(integers.iter().map(|&n| n as i64)))
            } else {
                Arc::new(datafusion::arrow::array::UInt64Array::from_iter_values(integers.iter().map(|&n| n as u64)))
            };
            Arc::new(datafusion::arrow::array::ListArray::try_new(
                Arc::new(Field::new("item", element.clone(), true)),
                datafusion::arrow::buffer::OffsetBuffer::from_lengths(lengths),
                cast(&values, element)?,
                None,
            )?)
        }
        Json::Length => {
            let mut b = UInt64Builder::new();
            for r in 0..rows {
                at(r, &mut |v| {
                    b.append_value(match v {
                        Some(Doc::Array(items)) => items.len() as u64,
                        Some(Doc::Object(fields)) => fields.len() as u64,
                        _ => 0,
                    });
                });
            }
            Arc::new(b.finish())
        }
        Json::Keys | Json::ArrayRaw => {
            let mut b = datafusion::arrow::array::ListBuilder::new(StringBuilder::new());
            for r in 0..rows {
                at(r, &mut |v| {
                    match (kind, v) {
                        (Json::Keys, Some(Doc::Object(fields))) => {
                            for (k, _) in fields {
                                b.values().append_value(k);
                            }
                        }
                        (Json::ArrayRaw, Some(Doc::Array(items))) => {
                            for item in items {
                                b.values().append_value(item.raw());
                            }
                        }
                        _ => {}
                    }
                    b.append(true);
                });
            }
            Arc::new(b.finish())
        }
        Json::Bool | Json::Has => {
            let mut b = UInt8Builder::new();
            for r in 0..rows {
                at(r, &mut |v| {
                    b.append_value(match kind {
                        Json::Has => v.is_some() as u8,
                        _ => v.is_some_and(Doc::to_bool) as u8,
                    });
                });
            }
            Arc::new(b.finish())
        }
    })
}

/// A JSON value as `JSONExtract(…, 'IntN'/'UIntN')` reads it: a number (or a number written as a string) within the
/// type's range, truncated toward zero, or a boolean as 1/0; None for anything else (ClickHouse's default, 0).
fn json_integer(v: &super::json::Json, signed: bool, bits: u8) -> Option<i128> {
    use super::json::Json as Doc;
    let (min, max): (i128, i128) =
        if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) };
    let n = match v {
        Doc::Bool(t) => i128::from(*t),
        v => match v.number()? {
            Doc::Int(n) => i128::from(n),
            Doc::UInt(n) => i128::from(n),
            Doc::Float(f) if f >= min as f64 && f <= max as f64 => f.trunc() as i128,
            _ => return None,
        },
    };
    (min..=max).contains(&n).then_some(n)
}

/// A JSON value as `JSONExtract(…, 'Float64')` reads it: a number or a boolean as 1/0; None for anything else.
fn json_float(v: &super::json::Json) -> Option<f64> {
    use super::json::Json as Doc;
    match v {
        Doc::Bool(t) => Some(f64::from(u8::from(*t))),
        v => v.number().map(|n| n.to_f64()),
    }
}

/// Which spread `Moments` gives.
#[derive(Debug, Clone, Copy)]
enum Spread {
    VarPop,
    VarSamp,
    StddevPop,
    StddevSamp,
}

/// ClickHouse's `varPop`, `varSamp`, `stddevPop` and `stddevSamp`: the count, sum and sum of squares of the values as
/// Float64, added row by row, then `(Σx² − (Σx)²/n) / n` (or `/ (n − 1)`), never below 0; nan for no rows (or one,
/// for the sample forms). The same formula and order as ClickHouse's `VarMoments`, so the same digits.
#[derive(Debug)]
struct Moments {
    m: [f64; 3],
    spread: Spread,
}

impl Accumulator for Moments {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let xs = values[0].as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        for v in xs.iter().flatten() {
            self.m[0] += 1.0;
            self.m[1] += v;
            self.m[2] += v * v;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let parts: Vec<_> =
            states.iter().map(AsArray::as_primitive::<datafusion::arrow::datatypes::Float64Type>).collect();
        for row in 0..parts[0].len() {
            for (m, part) in self.m.iter_mut().zip(&parts) {
                if !part.is_null(row) {
                    *m += part.value(row);
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.m.iter().map(|v| ScalarValue::Float64(Some(*v))).collect())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let [n, sum, squares] = self.m;
        let sample = matches!(self.spread, Spread::VarSamp | Spread::StddevSamp);
        let variance = if n < 1.0 || (sample && n <= 1.0) {
            f64::NAN
        } else {
            ((squares - sum * sum / n) / if sample { n - 1.0 } else { n }).max(0.0)
        };
        Ok(ScalarValue::Float64(Some(match self.spread {
            Spread::VarPop | Spread::VarSamp => variance,
            Spread::StddevPop | Spread::StddevSamp => variance.sqrt(),
        })))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// `quantile(level)(x)`: interpolated, as ClickHouse's reservoir sampler computes it while it holds every value
/// (`quantileExact` is in the `quantiles` module).
#[derive(Debug)]
struct Quantile {
    values: Vec<f64>,
    level: Option<f64>,
}

impl Accumulator for Quantile {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let xs = values[0].as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        self.values.extend(xs.iter().flatten().filter(|v| !v.is_nan()));
        if self.level.is_none() {
            let levels = values[1].as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            self.level = levels.iter().flatten().next();
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_null(i) {
                continue;
            }
            let part = lists.value(i);
            let part = part.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            self.values.extend(part.iter().flatten());
        }
        if self.level.is_none() {
            let levels = states[1].as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            self.level = levels.iter().flatten().next();
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = ScalarValue::new_list_nullable(
            &self.values.iter().map(|v| ScalarValue::Float64(Some(*v))).collect::<Vec<_>>(),
            &DataType::Float64,
        );
        Ok(vec![ScalarValue::List(list), ScalarValue::Float64(self.level)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let level = self.level.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&level) {
            return exec_err!("Quantile level {level} is out of range [0..1]");
        }
        if self.values.is_empty() {
            return Ok(ScalarValue::Float64(Some(f64::NAN)));
        }
        let v = &mut self.values;
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let index = (level * (n - 1) as f64).clamp(0.0, (n - 1) as f64);
        let i = index as usize;
        // ClickHouse's weights, in its order of operations (`ReservoirSampler::quantileInterpolated`): the last
        // digit depends on it.
        let result = if i + 1 == n { v[i] } else { v[i] * ((i + 1) as f64 - index) + v[i + 1] * (index - i as f64) };
        Ok(ScalarValue::Float64(Some(result)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * 8
    }
}
