//! `LEFT ARRAY JOIN`'s arrays: the DataFusion UDF `ch_left_array(arr)` gives each empty array as a one-element array
//! of the element type's default (NULL for a `Nullable` element), so that unfolding it keeps the row, as ClickHouse's
//! `LEFT ARRAY JOIN` does. The array must carry its declared ClickHouse type (a column): the default depends on it
//! (`Array(Nullable(String))` gives NULL, `Array(String)` `''`, `Array(UUID)` the zero UUID), and this engine does not
//! know the element type of an array it computed.
//!
//! Also `ch_array_cum_sum`, ClickHouse's `arrayCumSum`.

use super::functions::default_of;
use crate::types::ChType;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, new_null_array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Registers `ch_left_array` and `ch_array_cum_sum`.
pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(LeftArray { signature: Signature::any(1, Volatility::Immutable) }));
    ctx.register_udf(cum_sum_udf());
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LeftArray {
    signature: Signature,
}

/// The declared element type of an array field, when it has one.
fn declared_element(field: &datafusion::arrow::datatypes::Field) -> Option<ChType> {
    field.metadata().get(crate::types::CH_TYPE_KEY)?;
    match ChType::of_field(field) {
        ChType::Array(inner) => Some(*inner),
        _ => None,
    }
}

impl ScalarUDFImpl for LeftArray {
    fn name(&self) -> &str {
        "ch_left_array"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t @ DataType::List(_)] => Ok(t.clone()),
            _ => exec_err!("LEFT ARRAY JOIN takes an array"),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let [field] = args.arg_fields else { return exec_err!("LEFT ARRAY JOIN takes one array") };
        if !matches!(field.data_type(), DataType::List(_)) {
            return exec_err!("LEFT ARRAY JOIN takes an array, not a {}", ChType::of_field(field));
        }
        if declared_element(field).is_none() {
            return exec_err!(
                "tinybird-local's DataFusion engine supports LEFT ARRAY JOIN of a column only (the default element \
                 of an empty array depends on a type it does not know for an expression; use --engine clickhouse)"
            );
        }
        Ok(Arc::clone(field))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(element) = args.arg_fields.first().and_then(|f| declared_element(f)) else {
            return exec_err!("LEFT ARRAY JOIN of a column only");
        };
        let lists = args.args[0].to_array(args.number_rows)?;
        let lists = lists.as_list::<i32>();
        if !(0..lists.len()).any(|r| lists.is_valid(r) && lists.value_length(r) == 0) {
            return Ok(ColumnarValue::Array(Arc::new(lists.clone())));
        }
        let DataType::List(item) = lists.data_type() else { return exec_err!("LEFT ARRAY JOIN takes an array") };
        let default: ArrayRef = if element.is_nullable() {
            new_null_array(item.data_type(), 1)
        } else {
            default_of(Some(&element.field("item")), item.data_type())?.to_array_of_size(1)?
        };
        // Each row's elements, or the default for an empty array.
        let mut pieces: Vec<ArrayRef> = Vec::with_capacity(lists.len());
        let mut lengths = Vec::with_capacity(lists.len());
        for r in 0..lists.len() {
            if lists.is_valid(r) && lists.value_length(r) == 0 {
                pieces.push(Arc::clone(&default));
                lengths.push(1);
            } else if lists.is_valid(r) {
                pieces.push(lists.value(r));
                lengths.push(lists.value_length(r) as usize);
            } else {
                lengths.push(0);
            }
        }
        let parts: Vec<&dyn Array> = pieces.iter().map(AsRef::as_ref).collect();
        let values = if parts.is_empty() {
            new_null_array(item.data_type(), 0)
        } else {
            datafusion::arrow::compute::concat(&parts)?
        };
        let out =
            ListArray::try_new(Arc::clone(item), OffsetBuffer::from_lengths(lengths), values, lists.nulls().cloned())?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `ch_array_cum_sum(arr)`: ClickHouse's `arrayCumSum` of an array of integers or floats: the running sums left to
/// right, in Int64 for signed integers, UInt64 for unsigned (wrapping as ClickHouse's adds), Float64 for floats.
/// An array type with Nullable elements is ClickHouse's error.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CumSum {
    signature: Signature,
}

pub(super) fn cum_sum_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(CumSum { signature: Signature::any(1, Volatility::Immutable) })
}

impl ScalarUDFImpl for CumSum {
    fn name(&self) -> &str {
        "ch_array_cum_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let item = |t: DataType| DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new("item", t, true)));
        match args {
            [DataType::List(f)] if f.data_type().is_signed_integer() => Ok(item(DataType::Int64)),
            [DataType::List(f)] if f.data_type().is_unsigned_integer() => Ok(item(DataType::UInt64)),
            [DataType::List(f)] if f.data_type().is_floating() => Ok(item(DataType::Float64)),
            [DataType::List(f)] if f.data_type() == &DataType::Null => Ok(item(DataType::Int64)),
            [t] => exec_err!(
                "arrayCumSum cannot add values of type {} (ILLEGAL_TYPE_OF_ARGUMENT)",
                match t {
                    DataType::List(f) => ChType::from_arrow(f.data_type()).to_string(),
                    t => ChType::from_arrow(t).to_string(),
                }
            ),
            _ => exec_err!("arrayCumSum takes one array"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::compute::cast;
        use datafusion::arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
        let lists = args.args[0].to_array(args.number_rows)?;
        let lists = lists.as_list::<i32>();
        let target = match self.return_type(&[lists.data_type().clone()])? {
            DataType::List(f) => f.data_type().clone(),
            _ => DataType::Int64,
        };
        let values = lists.values();
        if values.null_count() > 0 {
            return exec_err!(
                "arrayCumSum cannot add values of type Nullable({}) (ILLEGAL_TYPE_OF_ARGUMENT)",
                ChType::from_arrow(values.data_type())
            );
        }
        let wide = cast(values, &target)?;
        let offsets = lists.value_offsets();
        let running = match target {
            DataType::UInt64 => running_sums::<UInt64Type>(&wide, offsets),
            DataType::Float64 => running_sums::<Float64Type>(&wide, offsets),
            _ => running_sums::<Int64Type>(&wide, offsets),
        };
        // The sums of each row's own slice, starting where its elements start.
        let start = offsets[0];
        let shifted: Vec<i32> = offsets.iter().map(|o| o - start).collect();
        let out = ListArray::try_new(
            Arc::new(datafusion::arrow::datatypes::Field::new("item", target, true)),
            OffsetBuffer::new(shifted.into()),
            running,
            lists.nulls().cloned(),
        )?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// Each row's running sums over `values` (the rows' slices given by `offsets`), added as ClickHouse adds: wrapping for
/// integers, in order for floats.
fn running_sums<T: datafusion::arrow::datatypes::ArrowPrimitiveType>(values: &ArrayRef, offsets: &[i32]) -> ArrayRef {
    use datafusion::arrow::datatypes::ArrowNativeTypeOp;
    let v = values.as_primitive::<T>();
    let mut out = Vec::with_capacity(v.len());
    for w in offsets.windows(2) {
        let mut total = T::Native::ZERO;
        for i in w[0] as usize..w[1] as usize {
            total = total.add_wrapping(v.value(i));
            out.push(total);
        }
    }
    Arc::new(datafusion::arrow::array::PrimitiveArray::<T>::from_iter_values(out))
}
