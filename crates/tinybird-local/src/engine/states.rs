//! ClickHouse's `-State` values and their `-Merge` (see `compat::calls::STATES`): a state is a struct whose first
//! field is `__tb_state_<aggregate>`. The DataFusion UDF `ch_state_value(state, 'aggregate')` gives what a state of
//! that aggregate holds (the whole struct for `avg`), and refuses, as ClickHouse does, a value that is not one:
//! `countMerge(x)` of a number, `uniqMerge` of a `sum` state. `sum` and `avg` states of floats are refused there:
//! ClickHouse adds partial sums in an order of its own.

use crate::types::ChType;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// The first field's name of every state struct.
pub(crate) const STATE_PREFIX: &str = "__tb_state_";

/// Registers `ch_state_value` and `ch_exact_up_to`.
pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(StateValue { signature: Signature::any(2, Volatility::Immutable) }));
    ctx.register_udf(exact_up_to_udf());
}

/// Whether a column of this type holds `-State` values.
pub(crate) fn is_state(ty: &DataType) -> bool {
    matches!(ty, DataType::Struct(fields) if fields.first().is_some_and(|f| f.name().starts_with(STATE_PREFIX)))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct StateValue {
    signature: Signature,
}

/// The aggregate named by the second argument (a string literal).
fn aggregate_of(arg: Option<&ScalarValue>) -> Result<String> {
    match arg {
        Some(ScalarValue::Utf8(Some(a))) => Ok(a.clone()),
        _ => exec_err!("ch_state_value takes a state and an aggregate's name"),
    }
}

impl ScalarUDFImpl for StateValue {
    fn name(&self) -> &str {
        "ch_state_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        exec_err!("ch_state_value's type comes from its arguments")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let aggregate = aggregate_of(args.scalar_arguments.get(1).copied().flatten())?;
        let ty = args.arg_fields[0].data_type();
        let DataType::Struct(fields) = ty else {
            return exec_err!(
                "Illegal type {} of argument for aggregate function {aggregate}Merge, expected \
                 AggregateFunction({aggregate}, …) or equivalent type (ILLEGAL_TYPE_OF_ARGUMENT)",
                ChType::of_field(&args.arg_fields[0])
            );
        };
        let Some(first) = fields.first().filter(|f| f.name() == &format!("{STATE_PREFIX}{aggregate}")) else {
            let other = fields.first().and_then(|f| f.name().strip_prefix(STATE_PREFIX)).unwrap_or("another value");
            return exec_err!(
                "Illegal type AggregateFunction({other}, …) of argument for aggregate function {aggregate}Merge, \
                 expected AggregateFunction({aggregate}, …) (ILLEGAL_TYPE_OF_ARGUMENT)"
            );
        };
        if matches!(aggregate.as_str(), "sum" | "avg") && first.data_type().is_floating() {
            return exec_err!(
                "tinybird-local's DataFusion engine does not support {aggregate}Merge of a state of floats \
                 (ClickHouse adds the partial sums in an order of its own; use --engine clickhouse)"
            );
        }
        if matches!(aggregate.as_str(), "uniq" | "uniqExact")
            && matches!(first.data_type(), DataType::List(values) if matches!(values.data_type(), DataType::List(_)))
        {
            return exec_err!(
                "tinybird-local's DataFusion engine does not support {aggregate}Merge of a state of arrays (use \
                 --engine clickhouse)"
            );
        }
        Ok(Arc::new(match aggregate.as_str() {
            "avg" => Field::new("state", ty.clone(), true),
            _ => Field::new("state", first.data_type().clone(), true),
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let aggregate = match &args.args[1] {
            ColumnarValue::Scalar(s) => aggregate_of(Some(s))?,
            ColumnarValue::Array(_) => return exec_err!("ch_state_value takes a constant aggregate name"),
        };
        let states = args.args[0].to_array(args.number_rows)?;
        if aggregate == "avg" {
            return Ok(ColumnarValue::Array(states));
        }
        let states = states.as_struct();
        let value = states.column(0);
        // A state that is NULL (a row a LEFT JOIN did not match) holds nothing.
        let value = match states.nulls() {
            Some(nulls) if nulls.null_count() > 0 => datafusion::arrow::compute::nullif(
                value,
                &datafusion::arrow::array::BooleanArray::new(!nulls.inner(), None),
            )?,
            _ => Arc::clone(value),
        };
        Ok(ColumnarValue::Array(value))
    }
}

/// `ch_exact_up_to(n, limit, 'function')`: the count `n` of an approximate `uniq…` aggregate, computed exactly here,
/// where ClickHouse's is exact too (at most `limit` distinct values: `uniq` 65,536, `uniqCombined` 4,096,
/// `uniqHLL12` 16, measured on ClickHouse 26.9); past it ClickHouse estimates, and the query is refused.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExactUpTo {
    signature: Signature,
}

pub(super) fn exact_up_to_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ExactUpTo { signature: Signature::any(3, Volatility::Immutable) })
}

impl ScalarUDFImpl for ExactUpTo {
    fn name(&self) -> &str {
        "ch_exact_up_to"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args.first().cloned().unwrap_or(DataType::UInt64))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (ColumnarValue::Scalar(limit), ColumnarValue::Scalar(ScalarValue::Utf8(Some(function)))) =
            (&args.args[1], &args.args[2])
        else {
            return exec_err!("ch_exact_up_to takes a count, a constant limit and a function name");
        };
        let ScalarValue::UInt64(Some(limit)) = limit.cast_to(&DataType::UInt64)? else {
            return exec_err!("ch_exact_up_to takes a constant limit");
        };
        let counts = args.args[0].to_array(args.number_rows)?;
        let wide = datafusion::arrow::compute::cast(&counts, &DataType::UInt64)?;
        if wide.as_primitive::<datafusion::arrow::datatypes::UInt64Type>().iter().flatten().any(|n| n > limit) {
            return exec_err!(
                "tinybird-local's DataFusion engine does not support {function} of more than {limit} distinct values \
                 (ClickHouse estimates the count from there; use uniqExact, or --engine clickhouse)"
            );
        }
        Ok(args.args[0].clone())
    }
}
