//! `LEFT ARRAY JOIN`'s arrays: the DataFusion UDF `ch_left_array(arr)` gives each empty array as a one-element array
//! of the element type's default (NULL for a `Nullable` element), so that unfolding it keeps the row, as ClickHouse's
//! `LEFT ARRAY JOIN` does. The array must carry its declared ClickHouse type (a column): the default depends on it
//! (`Array(Nullable(String))` gives NULL, `Array(String)` `''`, `Array(UUID)` the zero UUID), and this engine does not
//! know the element type of an array it computed.

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

/// Registers `ch_left_array`.
pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(LeftArray { signature: Signature::any(1, Volatility::Immutable) }));
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
