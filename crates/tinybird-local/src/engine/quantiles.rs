//! ClickHouse's `quantileExact(level)(x)` (and `medianExact`, `quantilesExact`) as the DataFusion aggregate
//! `ch_quantile_exact(x, level, form)`: the value at index `⌊level × n⌋` of the `n` non-NULL values in order (the
//! last one for level 1), in the argument's own type (an integer of any width, a float, a date, a time, a decimal),
//! as ClickHouse returns it. NaNs are skipped. No values give, as in ClickHouse (see [`Empty`]): for `quantileExact`
//! NULL for a Nullable argument, else NaN for a float and the type's default otherwise; for an element of
//! `quantilesExact` the type's default.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::{SortOptions, concat, filter, is_not_null, sort_to_indices};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Signature, Volatility};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Registers the aggregate.
pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(ExactQuantile {
        signature: Signature::any(3, Volatility::Immutable),
    }));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExactQuantile {
    signature: Signature,
}

/// Whether ClickHouse's `quantileExact` takes a value of this type and returns it as it is.
fn takes(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Float32
                | DataType::Float64
                | DataType::Date32
                | DataType::Timestamp(..)
                | DataType::Decimal128(..)
                | DataType::Null
        )
}

impl AggregateUDFImpl for ExactQuantile {
    fn name(&self) -> &str {
        "ch_quantile_exact"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &args[0] {
            // ClickHouse's `Nullable(Nothing)`, which this engine does not type.
            DataType::Null => {
                plan_err!("an exact quantile of NULL is not supported by tinybird-local's DataFusion engine")
            }
            t if takes(t) => Ok(t.clone()),
            t => plan_err!(
                "an exact quantile of {t} (ClickHouse takes numbers, dates and times) is not supported by \
                 tinybird-local's DataFusion engine"
            ),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        let value = args.return_field.data_type().clone();
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[values]", args.name),
                DataType::List(Arc::new(Field::new("item", value, true))),
                true,
            )),
            Arc::new(Field::new(format!("{}[level]", args.name), DataType::Float64, true)),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        let batch = datafusion::arrow::record_batch::RecordBatch::new_empty(Arc::new(
            datafusion::arrow::datatypes::Schema::empty(),
        ));
        let level = match args.exprs.get(1).map(|e| e.evaluate(&batch)) {
            Some(Ok(ColumnarValue::Scalar(literal))) => match literal.cast_to(&DataType::Float64) {
                Ok(ScalarValue::Float64(Some(level))) => level,
                _ => return exec_err!("DB::Exception: the quantile level must be a number"),
            },
            _ => return exec_err!("DB::Exception: the quantile level must be a constant"),
        };
        if !(0.0..=1.0).contains(&level) {
            return exec_err!("DB::Exception: Quantile level is out of range [0..1]");
        }
        let Some(Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(form))))) =
            args.exprs.get(2).map(|e| e.evaluate(&batch))
        else {
            return exec_err!("ch_quantile_exact: the form must be a constant string");
        };
        // A Nullable argument's no rows give NULL: known for a Nullable column ('null'); otherwise ('unknown') from
        // DataFusion's nullability when it says the value cannot be NULL, else refused then.
        let empty = match form.as_str() {
            "array" => Empty::Default,
            "null" => Empty::Null,
            "default" => Empty::NanOrDefault,
            _ if !args.exprs[0].nullable(args.schema)? => Empty::NanOrDefault,
            _ => Empty::Unknown,
        };
        Ok(Box::new(ExactQuantileAccumulator {
            level,
            value_type: args.return_field.data_type().clone(),
            parts: vec![],
            empty,
        }))
    }
}

#[derive(Debug)]
struct ExactQuantileAccumulator {
    level: f64,
    value_type: DataType,
    /// The non-NULL, non-NaN values seen, in batches.
    parts: Vec<ArrayRef>,
    /// What no values give.
    empty: Empty,
}

/// What an exact quantile of no values gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Empty {
    /// The type's default (an element of `quantilesExact`).
    Default,
    /// NULL (`quantileExact` of a Nullable column).
    Null,
    /// NaN for a float, else the type's default (`quantileExact` of a non-Nullable value).
    NanOrDefault,
    /// Not known here: refused.
    Unknown,
}

impl ExactQuantileAccumulator {
    fn keep(&mut self, values: &ArrayRef) -> Result<()> {
        let values = if values.data_type() == &self.value_type {
            values.clone()
        } else {
            datafusion::arrow::compute::cast(values, &self.value_type)?
        };
        let mut mask = is_not_null(&values)?;
        // NaN is not a value to ClickHouse's quantiles.
        let nan_free = match values.data_type() {
            DataType::Float64 => Some(
                values
                    .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                    .iter()
                    .map(|v| v.map(|v| !v.is_nan()))
                    .collect(),
            ),
            DataType::Float32 => Some(
                values
                    .as_primitive::<datafusion::arrow::datatypes::Float32Type>()
                    .iter()
                    .map(|v| v.map(|v| !v.is_nan()))
                    .collect(),
            ),
            _ => None,
        };
        if let Some(nan_free) = nan_free {
            let nan_free: datafusion::arrow::array::BooleanArray = nan_free;
            mask = datafusion::arrow::compute::and(&mask, &nan_free)?;
        }
        let kept = filter(values.as_ref(), &mask)?;
        if !kept.is_empty() {
            self.parts.push(kept);
        }
        Ok(())
    }
}

impl Accumulator for ExactQuantileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.keep(&values[0])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if !lists.is_null(i) {
                self.keep(&lists.value(i))?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: ArrayRef = if self.parts.is_empty() {
            datafusion::arrow::array::new_empty_array(&self.value_type)
        } else {
            let parts: Vec<&dyn Array> = self.parts.iter().map(AsRef::as_ref).collect();
            concat(&parts)?
        };
        self.parts = if values.is_empty() { vec![] } else { vec![values.clone()] };
        let list = datafusion::arrow::array::ListArray::new(
            Arc::new(Field::new("item", self.value_type.clone(), true)),
            datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]),
            values,
            None,
        );
        Ok(vec![ScalarValue::List(Arc::new(list)), ScalarValue::Float64(Some(self.level))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let n: usize = self.parts.iter().map(|p| Array::len(p.as_ref())).sum();
        if n == 0 {
            return match (self.empty, &self.value_type) {
                (Empty::Unknown, _) => exec_err!(
                    "DB::Exception: an exact quantile of no rows of an expression whose Nullable type is not known \
                     here is not supported by tinybird-local's DataFusion engine"
                ),
                (Empty::Null, t) => ScalarValue::try_from(t),
                (Empty::NanOrDefault, DataType::Float64) => Ok(ScalarValue::Float64(Some(f64::NAN))),
                (Empty::NanOrDefault, DataType::Float32) => Ok(ScalarValue::Float32(Some(f32::NAN))),
                (_, t) => ScalarValue::new_default(t),
            };
        }
        let parts: Vec<&dyn Array> = self.parts.iter().map(AsRef::as_ref).collect();
        let values = concat(&parts)?;
        let order = sort_to_indices(&values, Some(SortOptions { descending: false, nulls_first: false }), None)?;
        let i = if self.level < 1.0 { ((self.level * n as f64) as usize).min(n - 1) } else { n - 1 };
        ScalarValue::try_from_array(&values, order.value(i) as usize)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.parts.iter().map(|p| Array::get_array_memory_size(p.as_ref())).sum::<usize>()
    }
}
