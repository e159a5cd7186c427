//! ClickHouse's `addDays`, `subtractHours`, `date_add`, … (`addSeconds` to `addYears` and their `subtract*`), as the
//! DataFusion UDF `ch_date_add(unit, value, n)`, with ClickHouse's types: a `Date` plus days, weeks, months, quarters
//! or years stays a `Date`, plus seconds, minutes or hours becomes a `DateTime`; `DateTime` and `DateTime64` keep their
//! type. Months clamp to the month's last day (`addMonths('2024-01-31', 1)` is `2024-02-29`), as in ClickHouse.
//!
//! ClickHouse stores `Date` as days and `DateTime` as seconds in unsigned 16- and 32-bit integers. Months and years
//! before 1970 stop at 1970-01-01, as in ClickHouse; any other result past the range wraps around in ClickHouse
//! (`addDays(toDate('2149-06-06'), 1)` is `1970-01-01`, `+ INTERVAL 100 YEAR` from 2024 is 1987), and this engine
//! refuses it rather than give another date. `DateTime64` has no such limit.

use crate::types::ChType;
use chrono::{DateTime, Months, NaiveDate, NaiveDateTime, TimeDelta};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Date32Array, PrimitiveArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Registers `ch_date_add`, `ch_datetime_only` and `ch_from_unix`.
pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udf(date_add_udf());
    ctx.register_udf(wall_clock_udf());
    ctx.register_udf(ScalarUDF::new_from_impl(DateTimeOnly { signature: Signature::any(2, Volatility::Immutable) }));
    ctx.register_udf(ScalarUDF::new_from_impl(FromUnix { signature: Signature::any(1, Volatility::Immutable) }));
    for (name, op) in [("ch_to_unix64", Unix64::To), ("ch_from_unix64", Unix64::From)] {
        ctx.register_udf(ScalarUDF::new_from_impl(Unix64Function {
            name,
            op,
            signature: Signature::any(2, Volatility::Immutable),
        }));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(DateOrDateTime { signature: Signature::any(2, Volatility::Immutable) }));
    for (name, part) in
        [("ch_week", WeekPart::Week), ("ch_year_week", WeekPart::YearWeek), ("ch_iso_year", WeekPart::IsoYear)]
    {
        ctx.register_udf(ScalarUDF::new_from_impl(Week {
            name,
            part,
            signature: Signature::any(2, Volatility::Immutable),
        }));
    }
    for (name, ch, datetime, zero) in [
        ("ch_to_date_or_null", "toDateOrNull", false, false),
        ("ch_to_date_or_zero", "toDateOrZero", false, true),
        ("ch_to_datetime_or_null", "toDateTimeOrNull", true, false),
        ("ch_to_datetime_or_zero", "toDateTimeOrZero", true, true),
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(LenientDate {
            name,
            ch,
            datetime,
            zero,
            signature: Signature::any(1, Volatility::Immutable),
        }));
    }
}

/// `toDateOrNull`, `toDateOrZero`, `toDateTimeOrNull`, `toDateTimeOrZero` of text: `YYYY-MM-DD` or `YYYY-MM-DD
/// hh:mm:ss` (a valid date in the type's range) gives its value, text without a digit NULL (or the zero value); any
/// other text is refused, since ClickHouse reads it by rules of its own (`2024-1-1` is a date there, `2024-13-01` is
/// 1970-01-01).
#[derive(Debug, PartialEq, Eq, Hash)]
struct LenientDate {
    name: &'static str,
    ch: &'static str,
    datetime: bool,
    zero: bool,
    signature: Signature,
}

impl LenientDate {
    /// Seconds since the epoch of the text's value; None for text without a digit.
    fn seconds(&self, text: &str) -> Result<Option<i64>> {
        if !text.bytes().any(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let parsed =
            NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok().filter(|_| text.len() == 19).or_else(|| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .filter(|_| text.len() == 10)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            });
        let max = if self.datetime { MAX_DATETIME } else { MAX_DATE * 86_400 };
        match parsed.map(|t| t.and_utc().timestamp()) {
            Some(s) if (0..=max).contains(&s) => Ok(Some(if self.datetime { s } else { s - s.rem_euclid(86_400) })),
            // The value stays out of the message: an error must not show a row the caller's filter hides.
            _ => exec_err!(
                "DB::Exception: {} of text other than YYYY-MM-DD or YYYY-MM-DD hh:mm:ss in the type's range \
                 (ClickHouse reads other text by rules of its own) is not supported by tinybird-local's DataFusion \
                 engine",
                self.ch
            ),
        }
    }
}

impl ScalarUDFImpl for LenientDate {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null] => {
                Ok(if self.datetime { DataType::Timestamp(TimeUnit::Second, None) } else { DataType::Date32 })
            }
            [t] => exec_err!(
                "DB::Exception: tinybird-local's DataFusion engine supports {} of text only, not of {}",
                self.ch,
                ChType::from_arrow(t)
            ),
            _ => exec_err!("{} takes one argument", self.name),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let text = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Utf8)?;
        let mut out: Vec<Option<i64>> = Vec::with_capacity(text.len());
        for v in text.as_string::<i32>().iter() {
            out.push(match v {
                None => None,
                Some(v) => match self.seconds(v)? {
                    Some(s) => Some(s),
                    None if self.zero => Some(0),
                    None => None,
                },
            });
        }
        let seconds: ArrayRef = Arc::new(out.into_iter().collect::<PrimitiveArray<Int64Type>>());
        let timestamps = cast(&seconds, &DataType::Timestamp(TimeUnit::Second, None))?;
        let target = self.return_type(&[DataType::Utf8])?;
        Ok(ColumnarValue::Array(cast(&timestamps, &target)?))
    }
}

/// `ch_date_or_datetime(x, 'function')`: `x` when it is a `Date` or a `DateTime` (without a time zone); refused
/// otherwise (`date_trunc` of a `DateTime64` gives a `DateTime64(0)` or a `Date32` in ClickHouse, types this engine
/// does not have).
#[derive(Debug, PartialEq, Eq, Hash)]
struct DateOrDateTime {
    signature: Signature,
}

impl ScalarUDFImpl for DateOrDateTime {
    fn name(&self) -> &str {
        "ch_date_or_datetime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t @ (DataType::Date32 | DataType::Timestamp(TimeUnit::Second, None)), _] => Ok(t.clone()),
            [t, _] => exec_err!(
                "DB::Exception: tinybird-local's DataFusion engine does not support this function of a {} (only of a \
                 Date or a DateTime)",
                ChType::from_arrow(t)
            ),
            _ => exec_err!("ch_date_or_datetime takes a value and a function name"),
        }
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs<'_>,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let field = &args.arg_fields[0];
        // A Date32 is stored as a Date is: its declared type tells them apart (ClickHouse gives Date32 results).
        if matches!(ChType::of_field(field).base(), ChType::Date { wide: true }) {
            return exec_err!(
                "DB::Exception: tinybird-local's DataFusion engine does not support this function of a Date32 (only \
                 of a Date or a DateTime)"
            );
        }
        let ty = self.return_type(&[field.data_type().clone(), DataType::Utf8])?;
        Ok(Arc::new(datafusion::arrow::datatypes::Field::new(self.name(), ty, field.is_nullable())))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(args.args[0].clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Unix64 {
    /// `toUnixTimestamp64Milli(x)` (3), `…Micro` (6), `…Nano` (9), `…Second` (0): a `DateTime64` as an Int64 count.
    To,
    /// `fromUnixTimestamp64Milli(n)` (3), `…Micro` (6), `…Nano` (9): an integer count as a `DateTime64`.
    From,
}

/// `ch_to_unix64(x, digits)` and `ch_from_unix64(n, digits)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Unix64Function {
    name: &'static str,
    op: Unix64,
    signature: Signature,
}

fn unit_digits(unit: &TimeUnit) -> u32 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

fn digits_of(args: &ScalarFunctionArgs) -> Result<u32> {
    match &args.args[1] {
        ColumnarValue::Scalar(v) => match v.clone().cast_to(&DataType::UInt32)? {
            ScalarValue::UInt32(Some(d)) if matches!(d, 0 | 3 | 6 | 9) => Ok(d),
            other => exec_err!("unix timestamp digits must be 0, 3, 6 or 9, got {other}"),
        },
        ColumnarValue::Array(_) => exec_err!("unix timestamp digits must be a constant"),
    }
}

impl ScalarUDFImpl for Unix64Function {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match (self.op, args) {
            (Unix64::To, [DataType::Timestamp(unit, None), _]) if *unit != TimeUnit::Second => Ok(DataType::Int64),
            (Unix64::To, [t, _]) => exec_err!(
                "DB::Exception: A value of illegal type was provided as 1st argument 'value' to function \
                 'toUnixTimestamp64…'. Expected: DateTime64, got: {}. (ILLEGAL_TYPE_OF_ARGUMENT)",
                ChType::from_arrow(t)
            ),
            // The unit follows the digits, known only from the call: the planner calls `return_field_from_args`.
            (Unix64::From, [t, _]) if t.is_integer() || t.is_null() => {
                Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
            }
            (Unix64::From, [t, _]) => exec_err!(
                "DB::Exception: Illegal type {} of first argument of function fromUnixTimestamp64…",
                ChType::from_arrow(t)
            ),
            _ => exec_err!("{} takes two arguments", self.name),
        }
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs<'_>,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
        let mut ty = self.return_type(&types)?;
        if self.op == Unix64::From {
            ty = match args.scalar_arguments.get(1).copied().flatten().map(|v| v.clone().cast_to(&DataType::UInt32)) {
                Some(Ok(ScalarValue::UInt32(Some(3)))) => DataType::Timestamp(TimeUnit::Millisecond, None),
                Some(Ok(ScalarValue::UInt32(Some(6)))) => DataType::Timestamp(TimeUnit::Microsecond, None),
                Some(Ok(ScalarValue::UInt32(Some(9)))) => DataType::Timestamp(TimeUnit::Nanosecond, None),
                _ => return exec_err!("fromUnixTimestamp64…: the digits must be the constant 3, 6 or 9"),
            };
        }
        let nullable = args.arg_fields[0].is_nullable();
        Ok(Arc::new(datafusion::arrow::datatypes::Field::new(self.name, ty, nullable)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let digits = digits_of(&args)?;
        let x = args.args[0].to_array(args.number_rows)?;
        let raw = cast(&x, &DataType::Int64)?;
        let raw = raw.as_primitive::<Int64Type>();
        match self.op {
            Unix64::To => {
                let DataType::Timestamp(unit, _) = x.data_type() else { return exec_err!("expected a DateTime64") };
                let have = unit_digits(unit);
                // C++ integer division truncates toward zero, as Rust's does; a finer unit multiplies (wrapping).
                let mut out: Vec<Option<i64>> = Vec::with_capacity(raw.len());
                for v in raw.iter() {
                    out.push(match v {
                        None => None,
                        Some(v) if digits >= have => match v.checked_mul(10i64.pow(digits - have)) {
                            Some(n) => Some(n),
                            None => return exec_err!("DB::Exception: Decimal math overflow (DECIMAL_OVERFLOW)"),
                        },
                        Some(v) => Some(v / 10i64.pow(have - digits)),
                    });
                }
                let out: PrimitiveArray<Int64Type> = out.into_iter().collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            Unix64::From => {
                // A UInt64 past Int64: ClickHouse reads its bits as an Int64; refused rather than made NULL.
                if x.data_type() == &DataType::UInt64
                    && x.as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
                        .iter()
                        .flatten()
                        .any(|v| v > i64::MAX as u64)
                {
                    return exec_err!(
                        "DB::Exception: fromUnixTimestamp64… of a UInt64 above 9223372036854775807 is not supported by \
                         tinybird-local's DataFusion engine"
                    );
                }
                let unit = match digits {
                    3 => TimeUnit::Millisecond,
                    6 => TimeUnit::Microsecond,
                    _ => TimeUnit::Nanosecond,
                };
                Ok(ColumnarValue::Array(cast(&(Arc::new(raw.clone()) as ArrayRef), &DataType::Timestamp(unit, None))?))
            }
        }
    }
}

/// `ch_date_add`, for the planner to call directly.
pub(super) fn date_add_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(DateAdd { signature: Signature::any(3, Volatility::Immutable) })
}

/// `value ± INTERVAL …` (a literal interval) on a Date, DateTime or DateTime64, as `ch_date_add` calls: ClickHouse's
/// types, no 2262 limit for DateTime64, and a result ClickHouse would wrap refused. None for anything else (an
/// interval mixing months with days, or with a fraction of a second), left to DataFusion.
pub(super) fn plus_interval(
    value: &datafusion::logical_expr::Expr,
    value_type: &DataType,
    interval: &datafusion::logical_expr::Expr,
    subtract: bool,
) -> Option<datafusion::logical_expr::Expr> {
    use datafusion::logical_expr::Expr;
    if !matches!(value_type, DataType::Date32 | DataType::Timestamp(_, None)) {
        return None;
    }
    let Expr::Literal(literal, _) = interval else { return None };
    let (months, days, nanos): (i64, i64, i64) = match literal {
        ScalarValue::IntervalYearMonth(Some(m)) => (i64::from(*m), 0, 0),
        ScalarValue::IntervalDayTime(Some(v)) => (0, i64::from(v.days), i64::from(v.milliseconds) * 1_000_000),
        ScalarValue::IntervalMonthDayNano(Some(v)) => (i64::from(v.months), i64::from(v.days), v.nanoseconds),
        _ => return None,
    };
    let (unit, n) = match (months, days, nanos) {
        (m, 0, 0) => ("month", m),
        (0, d, 0) => ("day", d),
        (0, 0, ns) if ns % 1_000_000_000 == 0 => ("second", ns / 1_000_000_000),
        // A fraction of a second: in the unit that holds it (ClickHouse's `DateTime64(3)` plus microseconds is a
        // `DateTime64(6)`), where DataFusion would keep the value's unit and drop the digits.
        (0, 0, ns) => {
            let needed = match ns {
                ns if ns % 1_000_000 == 0 => TimeUnit::Millisecond,
                ns if ns % 1_000 == 0 => TimeUnit::Microsecond,
                _ => TimeUnit::Nanosecond,
            };
            let have = match value_type {
                DataType::Timestamp(unit, None) => *unit,
                _ => TimeUnit::Second,
            };
            let finer = |u: &TimeUnit| super::functions::per_second(u);
            let target = if finer(&needed) > finer(&have) { needed } else { have };
            let widened = Expr::Cast(datafusion::logical_expr::Cast::new(
                Box::new(value.clone()),
                DataType::Timestamp(target, None),
            ));
            let op = if subtract {
                datafusion::logical_expr::Operator::Minus
            } else {
                datafusion::logical_expr::Operator::Plus
            };
            return Some(Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr::new(
                Box::new(widened),
                op,
                Box::new(interval.clone()),
            )));
        }
        _ => return None,
    };
    let unit = if subtract { format!("-{unit}") } else { unit.to_string() };
    let call = datafusion::logical_expr::expr::ScalarFunction::new_udf(
        Arc::new(date_add_udf()),
        vec![
            Expr::Literal(ScalarValue::Utf8(Some(unit)), None),
            value.clone(),
            Expr::Literal(ScalarValue::Int64(Some(n)), None),
        ],
    );
    Some(Expr::ScalarFunction(call))
}

/// A unit of `addX`/`date_add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Unit {
    /// From ClickHouse's spelling: `Day` of `addDays`, `DAY` of `date_add(DAY, …)`.
    pub(super) fn parse(text: &str) -> Option<Unit> {
        Some(match text.to_ascii_lowercase().trim_end_matches('s') {
            "second" => Unit::Second,
            "minute" => Unit::Minute,
            "hour" => Unit::Hour,
            "day" => Unit::Day,
            "week" => Unit::Week,
            "month" => Unit::Month,
            "quarter" => Unit::Quarter,
            "year" => Unit::Year,
            _ => return None,
        })
    }

    /// Seconds of a fixed-length unit; None for months, quarters and years.
    fn seconds(self) -> Option<i64> {
        Some(match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3_600,
            Unit::Day => 86_400,
            Unit::Week => 7 * 86_400,
            Unit::Month | Unit::Quarter | Unit::Year => return None,
        })
    }

    fn months(self) -> Option<i64> {
        match self {
            Unit::Month => Some(1),
            Unit::Quarter => Some(3),
            Unit::Year => Some(12),
            _ => None,
        }
    }

    /// Whether a `Date` plus this unit is still a `Date`.
    fn keeps_dates(self) -> bool {
        !matches!(self, Unit::Second | Unit::Minute | Unit::Hour)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DateAdd {
    signature: Signature,
}

/// The unit, and whether it is subtracted (`-day`).
fn unit_of(arg: &ColumnarValue) -> Result<(Unit, bool)> {
    match arg {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(u))) => {
            let (text, subtract) = match u.strip_prefix('-') {
                Some(rest) => (rest, true),
                None => (u.as_str(), false),
            };
            match Unit::parse(text) {
                Some(unit) => Ok((unit, subtract)),
                None => exec_err!("tinybird-local's DataFusion engine does not support adding the unit '{text}'"),
            }
        }
        _ => exec_err!("ch_date_add: the unit must be a literal"),
    }
}

/// The largest `DateTime` ClickHouse holds: 2106-02-07 06:28:15.
const MAX_DATETIME: i64 = u32::MAX as i64;
/// The last `Date` ClickHouse holds: 2149-06-06, as days since 1970-01-01.
const MAX_DATE: i64 = u16::MAX as i64;

fn out_of_range<T>(what: &str) -> Result<T> {
    exec_err!(
        "the result is outside ClickHouse's {what} range, where ClickHouse wraps it around to another date; \
         tinybird-local's DataFusion engine refuses it"
    )
}

impl ScalarUDFImpl for DateAdd {
    fn name(&self) -> &str {
        "ch_date_add"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [_, DataType::Date32, n] if n.is_integer() || n.is_null() => Ok(DataType::Date32),
            [_, DataType::Timestamp(_, Some(tz)), _] if !tz.eq_ignore_ascii_case("UTC") => {
                exec_err!("tinybird-local's DataFusion engine does not support date arithmetic in the time zone {tz}")
            }
            [_, t @ DataType::Timestamp(..), n] if n.is_integer() || n.is_null() => Ok(t.clone()),
            [_, t, n] => exec_err!(
                "Illegal types {} and {} of arguments of a date addition (a Date, DateTime or DateTime64 and an integer)",
                ChType::from_arrow(t),
                ChType::from_arrow(n)
            ),
            _ => exec_err!("ch_date_add takes a unit, a date and a number"),
        }
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs<'_>,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
        let mut ty = self.return_type(&types)?;
        // A Date plus hours is a DateTime: the unit (a literal) decides.
        if ty == DataType::Date32
            && let Some(Some(ScalarValue::Utf8(Some(u)))) = args.scalar_arguments.first()
            && Unit::parse(u.trim_start_matches('-')).is_some_and(|u| !u.keeps_dates())
        {
            ty = DataType::Timestamp(TimeUnit::Second, None);
        }
        Ok(Arc::new(datafusion::arrow::datatypes::Field::new(self.name(), ty, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (unit, subtract) = unit_of(&args.args[0])?;
        let rows = args.number_rows;
        let value = args.args[1].to_array(rows)?;
        let n = cast(&args.args[2].to_array(rows)?, &DataType::Int64)?;
        let n = n.as_primitive::<Int64Type>();
        let negated;
        let n = if subtract {
            negated = n.iter().map(|v| v.and_then(i64::checked_neg)).collect::<PrimitiveArray<Int64Type>>();
            &negated
        } else {
            n
        };
        let out: ArrayRef = match value.data_type() {
            DataType::Date32 if unit.keeps_dates() => {
                let days = value.as_primitive::<datafusion::arrow::datatypes::Date32Type>();
                let mut out = Vec::with_capacity(rows);
                for r in 0..rows {
                    if days.is_null(r) || n.is_null(r) {
                        out.push(None);
                        continue;
                    }
                    let date = NaiveDate::from_num_days_from_ce_opt(days.value(r) + 719_163);
                    let moved = date.and_then(|d| add_to_date(d, unit, n.value(r)));
                    let day = moved.map(|d| i64::from(chrono::Datelike::num_days_from_ce(&d)) - 719_163);
                    match day {
                        Some(day) if (0..=MAX_DATE).contains(&day) => out.push(Some(day as i32)),
                        // Months and years before 1970 stop at 1970-01-01 in ClickHouse.
                        Some(day) if day < 0 && unit.months().is_some() => out.push(Some(0)),
                        _ => return out_of_range("Date (1970-01-01 to 2149-06-06)"),
                    }
                }
                Arc::new(Date32Array::from(out))
            }
            DataType::Date32 => {
                let seconds = cast(&cast(&value, &DataType::Timestamp(TimeUnit::Second, None))?, &DataType::Int64)?;
                let moved = add_to_timestamps(seconds.as_primitive::<Int64Type>(), n, unit, 1)?;
                let moved = check_datetime(moved, unit)?;
                cast(&(Arc::new(moved) as ArrayRef), &DataType::Timestamp(TimeUnit::Second, None))?
            }
            t @ DataType::Timestamp(time_unit, _) => {
                let per_second = super::functions::per_second(time_unit);
                let raw = cast(&value, &DataType::Int64)?;
                let moved = add_to_timestamps(raw.as_primitive::<Int64Type>(), n, unit, per_second)?;
                // A DateTime wraps as its UInt32 does; a DateTime64 (an Int64) goes where the arithmetic takes it.
                let moved = if per_second == 1 { check_datetime(moved, unit)? } else { moved };
                cast(&(Arc::new(moved) as ArrayRef), t)?
            }
            other => return exec_err!("cannot add to a value of type {}", ChType::from_arrow(other)),
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// DateTime seconds in ClickHouse's range: months and years before 1970 stop at 1970-01-01 00:00:00, as in
/// ClickHouse; anything else outside the range is refused (ClickHouse wraps it).
fn check_datetime(seconds: PrimitiveArray<Int64Type>, unit: Unit) -> Result<PrimitiveArray<Int64Type>> {
    let mut out = Vec::with_capacity(seconds.len());
    for v in seconds.iter() {
        out.push(match v {
            Some(v) if (0..=MAX_DATETIME).contains(&v) => Some(v),
            Some(v) if v < 0 && unit.months().is_some() => Some(0),
            Some(_) => return out_of_range("DateTime (1970-01-01 00:00:00 to 2106-02-07 06:28:15)"),
            None => None,
        });
    }
    Ok(PrimitiveArray::from(out))
}

fn add_to_date(date: NaiveDate, unit: Unit, n: i64) -> Option<NaiveDate> {
    match (unit.months(), unit.seconds()) {
        (Some(per), _) => add_months(date, n.checked_mul(per)?),
        (None, Some(seconds)) => date.checked_add_signed(TimeDelta::try_days(n.checked_mul(seconds / 86_400)?)?),
        (None, None) => None,
    }
}

fn add_months(date: NaiveDate, months: i64) -> Option<NaiveDate> {
    let m = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    if months >= 0 { date.checked_add_months(m) } else { date.checked_sub_months(m) }
}

/// Timestamps (in units of `1 / per_second` s) moved by `n` units each.
fn add_to_timestamps(
    raw: &PrimitiveArray<Int64Type>,
    n: &PrimitiveArray<Int64Type>,
    unit: Unit,
    per_second: i64,
) -> Result<PrimitiveArray<Int64Type>> {
    let mut out = Vec::with_capacity(raw.len());
    for r in 0..raw.len() {
        if raw.is_null(r) || n.is_null(r) {
            out.push(None);
            continue;
        }
        let (v, k) = (raw.value(r), n.value(r));
        let moved = match (unit.seconds(), unit.months()) {
            (Some(s), _) => k.checked_mul(s).and_then(|d| d.checked_mul(per_second)).and_then(|d| v.checked_add(d)),
            (None, Some(per)) => {
                let (secs, sub) = (v.div_euclid(per_second), v.rem_euclid(per_second));
                DateTime::from_timestamp(secs, 0)
                    .map(|t| t.naive_utc())
                    .and_then(|t: NaiveDateTime| {
                        let d = add_months(t.date(), k.checked_mul(per)?)?;
                        Some(d.and_time(t.time()))
                    })
                    .and_then(|t| t.and_utc().timestamp().checked_mul(per_second))
                    .and_then(|t| t.checked_add(sub))
            }
            (None, None) => None,
        };
        match moved {
            Some(m) => out.push(Some(m)),
            None => return out_of_range("date and time"),
        }
    }
    Ok(PrimitiveArray::from(out))
}

/// The unit of `addDays`/`date_add(DAY, …)` as `ch_date_add` takes it (`day`), or None for one it does not support.
pub(super) fn unit_name(text: &str) -> Option<&'static str> {
    Some(match Unit::parse(text)? {
        Unit::Second => "second",
        Unit::Minute => "minute",
        Unit::Hour => "hour",
        Unit::Day => "day",
        Unit::Week => "week",
        Unit::Month => "month",
        Unit::Quarter => "quarter",
        Unit::Year => "year",
    })
}

/// `ch_datetime_only(x, 'function')`: `x` when it is a `DateTime` or `DateTime64`; ClickHouse's error otherwise
/// (`toStartOfHour` and friends take no `Date`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct DateTimeOnly {
    signature: Signature,
}

impl ScalarUDFImpl for DateTimeOnly {
    fn name(&self) -> &str {
        "ch_datetime_only"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t @ DataType::Timestamp(..), _] => Ok(t.clone()),
            [t, _] => {
                exec_err!("Illegal argument of type {} for this function (it takes a DateTime)", ChType::from_arrow(t))
            }
            _ => exec_err!("ch_datetime_only takes a value and a function name"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(args.args[0].clone())
    }
}

/// `ch_from_unix(n)`: ClickHouse's `fromUnixTimestamp` of an integer, a `DateTime` clamped to its range (a negative
/// number is 1970-01-01 00:00:00, one past 2106 is 2106-02-07 06:28:15).
#[derive(Debug, PartialEq, Eq, Hash)]
struct FromUnix {
    signature: Signature,
}

impl ScalarUDFImpl for FromUnix {
    fn name(&self) -> &str {
        "ch_from_unix"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t] if t.is_integer() || t.is_null() => Ok(DataType::Timestamp(TimeUnit::Second, None)),
            [t] => exec_err!("Illegal type {} of first argument of function fromUnixTimestamp", ChType::from_arrow(t)),
            _ => exec_err!("fromUnixTimestamp takes one argument"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.args[0].to_array(args.number_rows)?;
        let wide = if n.data_type() == &DataType::UInt64 {
            // Above i64::MAX is past the range anyway.
            let u = n.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
            u.iter().map(|v| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))).collect::<PrimitiveArray<Int64Type>>()
        } else {
            cast(&n, &DataType::Int64)?.as_primitive::<Int64Type>().clone()
        };
        let clamped: PrimitiveArray<Int64Type> = wide.iter().map(|v| v.map(|v| v.clamp(0, MAX_DATETIME))).collect();
        Ok(ColumnarValue::Array(cast(&(Arc::new(clamped) as ArrayRef), &DataType::Timestamp(TimeUnit::Second, None))?))
    }
}

/// What `ch_week(x, mode)`, `ch_year_week(x, mode)` and `ch_iso_year(x, 3)` give of a date's week.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum WeekPart {
    /// `toWeek(x, mode)` (and `toISOWeek`, mode 3): the week's number in its year, a UInt8.
    Week,
    /// `toYearWeek(x, mode)`: year × 100 + week, the week's year first, a UInt32.
    YearWeek,
    /// `toISOYear(x)`: the ISO week's year, a UInt16.
    IsoYear,
}

/// ClickHouse's `toWeek`, `toYearWeek`, `toISOWeek` and `toISOYear` of a Date or DateTime, in the ten week modes
/// (MySQL's eight: bit 0 starts weeks on Monday, bit 1 numbers 1–53 rather than 0–53, bit 2 makes week 1 the first
/// with a start day in the year rather than the first with 4 or more days in it; and bit 3, ClickHouse's own, makes
/// week 1 the week holding January 1). The mode must be a constant from 0 to 9... read modulo 16 as ClickHouse reads it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Week {
    name: &'static str,
    part: WeekPart,
    signature: Signature,
}

/// Days since 1970-01-01 of a Date32 or Timestamp array (of UTC wall-clock time, as this engine stores them).
fn days_of(a: &ArrayRef) -> Result<PrimitiveArray<Int64Type>> {
    Ok(match a.data_type() {
        DataType::Date32 => cast(a, &DataType::Int64)?.as_primitive::<Int64Type>().clone(),
        DataType::Timestamp(unit, _) => {
            let per_day = 86_400 * 10_i64.pow(unit_digits(unit));
            let ticks = cast(a, &DataType::Int64)?;
            ticks.as_primitive::<Int64Type>().iter().map(|v| v.map(|v| v.div_euclid(per_day))).collect()
        }
        DataType::Null => PrimitiveArray::new_null(a.len()),
        other => {
            return exec_err!("a week of a value of type {} (it takes a Date or DateTime)", ChType::from_arrow(other));
        }
    })
}

/// ClickHouse's `DateLUTImpl::toYearWeek(day, mode)`: (year, week) of the day since 1970-01-01.
pub(super) fn year_week(day: i64, mode: u8) -> Option<(i32, u32)> {
    use chrono::Datelike;
    const MONDAY_FIRST: u8 = 1;
    const YEAR: u8 = 2;
    const FIRST_WEEKDAY: u8 = 4;
    let date = NaiveDate::from_num_days_from_ce_opt(i32::try_from(day + 719_163).ok()?)?;
    let newyear_day = mode & 8 != 0;
    let mut mode = mode & 7;
    if mode & MONDAY_FIRST == 0 {
        mode ^= FIRST_WEEKDAY;
    }
    let monday_first = mode & MONDAY_FIRST != 0;
    let mut week_year = mode & YEAR != 0;
    let first_weekday = mode & FIRST_WEEKDAY != 0;
    // Day numbers and weekdays (0 for the week's first day) as ClickHouse's `calc_weekday` counts them.
    let day_number = |d: NaiveDate| i64::from(d.num_days_from_ce());
    let weekday = |n: i64| if monday_first { (n + 6).rem_euclid(7) } else { n.rem_euclid(7) };
    let days_in_year = |y: i32| if NaiveDate::from_ymd_opt(y, 2, 29).is_some() { 366 } else { 365 };
    if newyear_day {
        // Week 1 holds January 1: count whole weeks from the start of January 1's week.
        let start_of_week = |n: i64| n - weekday(n);
        let this = day_number(date);
        // The week's year: the year of the week's last day.
        let year = NaiveDate::from_num_days_from_ce_opt(i32::try_from(start_of_week(this) + 6).ok()?)?.year();
        let first = day_number(NaiveDate::from_ymd_opt(year, 1, 1)?);
        return Some((year, u32::try_from((start_of_week(this) - start_of_week(first)) / 7 + 1).ok()?));
    }
    let mut year = date.year();
    let daynr = day_number(date);
    let mut first_daynr = day_number(NaiveDate::from_ymd_opt(year, 1, 1)?);
    let mut wd = weekday(first_daynr);
    if date.month() == 1 && i64::from(date.day()) <= 7 - wd {
        if !week_year && ((first_weekday && wd != 0) || (!first_weekday && wd >= 4)) {
            return Some((year, 0));
        }
        week_year = true;
        year -= 1;
        let days = days_in_year(year);
        first_daynr -= days;
        wd = (wd + 53 * 7 - days).rem_euclid(7);
    }
    let days = if (first_weekday && wd != 0) || (!first_weekday && wd >= 4) {
        daynr - (first_daynr + (7 - wd))
    } else {
        daynr - (first_daynr - wd)
    };
    if week_year && days >= 52 * 7 {
        let wd = (wd + days_in_year(year)).rem_euclid(7);
        if (!first_weekday && wd < 4) || (first_weekday && wd == 0) {
            return Some((year + 1, 1));
        }
    }
    Some((year, u32::try_from(days / 7 + 1).ok()?))
}

impl ScalarUDFImpl for Week {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::Date32 | DataType::Timestamp(..) | DataType::Null, m] if m.is_integer() => Ok(match self.part {
                WeekPart::Week => DataType::UInt8,
                WeekPart::YearWeek => DataType::UInt32,
                WeekPart::IsoYear => DataType::UInt16,
            }),
            [t, m] if m.is_integer() => exec_err!(
                "Illegal type {} of the first argument of a week function: it takes a Date or DateTime",
                ChType::from_arrow(t)
            ),
            _ => exec_err!("the week mode must be an integer constant"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mode = match &args.args[1] {
            ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(m)) => m.rem_euclid(16) as u8,
                _ => return exec_err!("the week mode must be an integer constant"),
            },
            ColumnarValue::Array(_) => return exec_err!("the week mode must be an integer constant"),
        };
        // toYearWeek counts weeks by their year (MySQL's YEARWEEK), whatever the mode.
        let mode = if self.part == WeekPart::Week { mode } else { mode | 2 };
        let days = days_of(&args.args[0].to_array(args.number_rows)?)?;
        let weeks = days.iter().map(|d| d.map(|d| year_week(d, mode))).map(|w| match w {
            Some(Some(w)) => Ok(Some(w)),
            Some(None) => exec_err!("a date outside the calendar"),
            None => Ok(None),
        });
        let out: ArrayRef = match self.part {
            WeekPart::Week => Arc::new(
                weeks
                    .map(|w| w.map(|w| w.map(|(_, n)| n as u8)))
                    .collect::<Result<datafusion::arrow::array::UInt8Array>>()?,
            ),
            WeekPart::YearWeek => Arc::new(
                weeks
                    .map(|w| w.map(|w| w.map(|(y, n)| (y as u32) * 100 + n)))
                    .collect::<Result<datafusion::arrow::array::UInt32Array>>()?,
            ),
            WeekPart::IsoYear => Arc::new(
                weeks
                    .map(|w| w.map(|w| w.map(|(y, _)| y as u16)))
                    .collect::<Result<datafusion::arrow::array::UInt16Array>>()?,
            ),
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `ch_wall_clock(x, 'zone')`: a `DateTime` or `DateTime64` instant (stored as UTC) as the wall-clock time of `zone`,
/// for a calendar function's time zone argument (`toDate(t, 'Europe/Madrid')`, `toHour(t, 'Asia/Tokyo')`,
/// `formatDateTime(t, '%F', 'America/New_York')`): the function then reads the local date and time. Its result is
/// consumed at once by that function, whose result (a Date, a number, text) holds no instant. A `Date` has no time of
/// day and stays as it is, as in ClickHouse. With `clamp` (for the functions that give a `Date` or a week), a local
/// time before 1970 is 1970-01-01 00:00:00, where ClickHouse's `Date` stops.
#[derive(Debug, PartialEq, Eq, Hash)]
struct WallClock {
    signature: Signature,
}

pub(super) fn wall_clock_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(WallClock { signature: Signature::any(3, Volatility::Immutable) })
}

impl ScalarUDFImpl for WallClock {
    fn name(&self) -> &str {
        "ch_wall_clock"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t @ (DataType::Date32 | DataType::Null), _, _] => Ok(t.clone()),
            [DataType::Timestamp(unit, _), _, _] => Ok(DataType::Timestamp(*unit, None)),
            [t, _, _] => exec_err!(
                "tinybird-local's DataFusion engine supports a time zone argument of a DateTime, DateTime64 or Date \
                 only, not of {}",
                ChType::from_arrow(t)
            ),
            _ => exec_err!("ch_wall_clock takes a value, a time zone and whether to stop at 1970"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let zone = match &args.args[1] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(z))) => z.clone(),
            _ => return exec_err!("the time zone must be a string constant"),
        };
        let tz: chrono_tz::Tz = zone
            .parse()
            .map_err(|_| datafusion::error::DataFusionError::Execution(format!("Unknown time zone: {zone}")))?;
        let clamp = matches!(&args.args[2], ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))));
        let values = args.args[0].to_array(args.number_rows)?;
        let DataType::Timestamp(unit, _) = values.data_type().clone() else {
            return Ok(ColumnarValue::Array(values));
        };
        let per_second = 10_i64.pow(unit_digits(&unit));
        let ticks = cast(&values, &DataType::Int64)?;
        let local = ticks.as_primitive::<Int64Type>().iter().map(|v| {
            v.map(|v| {
                let (seconds, fraction) = (v.div_euclid(per_second), v.rem_euclid(per_second));
                let instant = DateTime::from_timestamp(seconds, 0).ok_or_else(|| {
                    datafusion::error::DataFusionError::Execution("a date outside the calendar".into())
                })?;
                let wall = instant.with_timezone(&tz).naive_local().and_utc().timestamp();
                Ok(if clamp && wall < 0 { 0 } else { wall * per_second + fraction })
            })
            .transpose()
        });
        let local: PrimitiveArray<Int64Type> = local.collect::<Result<_>>()?;
        Ok(ColumnarValue::Array(cast(&(Arc::new(local) as ArrayRef), &DataType::Timestamp(unit, None))?))
    }
}
