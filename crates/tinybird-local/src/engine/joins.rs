//! Outer joins as ClickHouse runs them (`join_use_nulls = 0`, its default and Tinybird's): a row without a match
//! gets its column type's default (`0`, `''`, `1970-01-01`, `[]`) on the missing side, and NULL only where the column
//! is `Nullable`. DataFusion gives NULL everywhere, so an analyzer rule puts a projection above every outer join
//! that fills the missing side's non-`Nullable` columns with their defaults, before any later node (a `WHERE o.name
//! = ''`, an aggregate, the output) sees them.

use crate::types::ChType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::metadata::FieldMetadata;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, Projection, lit};
use datafusion::optimizer::AnalyzerRule;
use std::sync::Arc;

/// The analyzer rule; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct OuterJoinDefaults;

impl AnalyzerRule for OuterJoinDefaults {
    fn name(&self) -> &str {
        "clickhouse_outer_join_defaults"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let LogicalPlan::Join(join) = &plan else { return Ok(Transformed::no(plan)) };
            let (left_missing, right_missing) = match join.join_type {
                JoinType::Left => (false, true),
                JoinType::Right => (true, false),
                JoinType::Full => (true, true),
                _ => return Ok(Transformed::no(plan)),
            };
            let left_len = join.left.schema().fields().len();
            let schema = plan.schema().clone();
            let mut exprs = Vec::with_capacity(schema.fields().len());
            let mut changed = false;
            for (i, (qualifier, field)) in schema.iter().enumerate() {
                let column = Expr::Column(datafusion::common::Column::new(qualifier.cloned(), field.name()));
                let missing = if i < left_len { left_missing } else { right_missing };
                let declared = ChType::of_field(field);
                if !missing || declared.is_nullable() {
                    exprs.push(column);
                    continue;
                }
                let default = default_value(&declared, field.data_type())?;
                let metadata = (!field.metadata().is_empty()).then(|| FieldMetadata::from(field.metadata().clone()));
                let filled = datafusion::functions::expr_fn::coalesce(vec![column, lit(default)]);
                exprs.push(filled.alias_qualified_with_metadata(qualifier.cloned(), field.name(), metadata));
                changed = true;
            }
            if !changed {
                return Ok(Transformed::no(plan));
            }
            let projection = Projection::try_new(exprs, Arc::new(plan))?;
            Ok(Transformed::yes(LogicalPlan::Projection(projection)))
        })
        .map(|t| t.data)
    }
}

/// ClickHouse's default value of a column type, as the Arrow value the column holds.
fn default_value(ty: &ChType, arrow: &datafusion::arrow::datatypes::DataType) -> Result<ScalarValue> {
    let text = |s: &str| Ok(ScalarValue::Utf8(Some(s.to_string())));
    match ty.base() {
        ChType::Named(name) if name == "UUID" => text("00000000-0000-0000-0000-000000000000"),
        ChType::Named(name) if name == "IPv4" => text("0.0.0.0"),
        ChType::Named(name) if name == "IPv6" => text("::"),
        ChType::Named(name) | ChType::Opaque(name) => {
            plan_err!(
                "an outer join whose unmatched side has a column of type {name} is not supported by tinybird-local"
            )
        }
        _ => ScalarValue::new_default(arrow),
    }
}

/// `ch_any_join_unique(n)`: true where the joined relation of an `ANY JOIN` has one row for the key (`n`, the
/// rows sharing it); ClickHouse's choice among several is not reproduced, so such a key refuses the query (see
/// `compat::any_joins_checked`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct AnyJoinUnique {
    signature: datafusion::logical_expr::Signature,
}

/// Registers `ch_any_join_unique`.
pub(crate) fn register(ctx: &datafusion::prelude::SessionContext) {
    use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};
    ctx.register_udf(ScalarUDF::new_from_impl(AnyJoinUnique { signature: Signature::any(1, Volatility::Immutable) }));
}

impl datafusion::logical_expr::ScalarUDFImpl for AnyJoinUnique {
    fn name(&self) -> &str {
        "ch_any_join_unique"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(
        &self,
        _: &[datafusion::arrow::datatypes::DataType],
    ) -> Result<datafusion::arrow::datatypes::DataType> {
        Ok(datafusion::arrow::datatypes::DataType::Boolean)
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::array::AsArray;
        let counts = args.args[0].to_array(args.number_rows)?;
        let counts = datafusion::arrow::compute::cast(&counts, &datafusion::arrow::datatypes::DataType::Int64)?;
        let counts = counts.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        if counts.iter().flatten().any(|n| n > 1) {
            return datafusion::common::exec_err!(
                "DB::Exception: an ANY JOIN whose joined relation has several rows for one key (ClickHouse joins any \
                 one of them) is not supported by tinybird-local's DataFusion engine (use --engine clickhouse, or \
                 make the key unique)"
            );
        }
        Ok(datafusion::logical_expr::ColumnarValue::Array(std::sync::Arc::new(
            datafusion::arrow::array::BooleanArray::from(vec![true; counts.len()]),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_clickhouse_defaults() {
        let default = |ty: &str| default_value(&ChType::parse(ty).unwrap(), &ChType::parse(ty).unwrap().arrow());
        assert_eq!(default("String").unwrap(), ScalarValue::Utf8(Some(String::new())));
        assert_eq!(default("UInt64").unwrap(), ScalarValue::UInt64(Some(0)));
        assert_eq!(default("UUID").unwrap(), ScalarValue::Utf8(Some("00000000-0000-0000-0000-000000000000".into())));
        assert_eq!(default("Date").unwrap(), ScalarValue::Date32(Some(0)));
        let message = default("Enum8('a' = 1, 'b' = 2)").unwrap_err().to_string();
        assert!(message.contains("Enum8('a' = 1, 'b' = 2) is not supported"), "{message}");
        assert!(matches!(default("Array(String)").unwrap(), ScalarValue::List(_)));
    }
}
