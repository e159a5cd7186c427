//! The column types of a `UNION` as ClickHouse takes them: a `Date` among `DateTime`s becomes a `DateTime` (and
//! among `DateTime64(P)`s a `DateTime64(P)`), where DataFusion's coercion would give a nanosecond timestamp, which
//! ClickHouse would print as a `DateTime64(9)` (`.000000000`). An analyzer rule that runs before DataFusion's type
//! coercion casts each branch's column to the finest date-time type among the branches.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{Cast, Expr, LogicalPlan, Projection, Union};
use datafusion::optimizer::AnalyzerRule;
use std::sync::Arc;

/// The analyzer rule; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct UnionDateTimes;

/// The finest date-time type among branch types that are all dates or UTC date-times, when they differ.
fn common(types: &[&DataType]) -> Option<DataType> {
    let rank = |u: &TimeUnit| match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    };
    let mut finest: Option<TimeUnit> = None;
    for t in types {
        match t {
            DataType::Date32 | DataType::Null => {}
            DataType::Timestamp(unit, None) => {
                if finest.as_ref().is_none_or(|f| rank(unit) > rank(f)) {
                    finest = Some(*unit);
                }
            }
            _ => return None,
        }
    }
    let target = DataType::Timestamp(finest?, None);
    types.iter().any(|t| matches!(t, DataType::Date32) || (**t != target && !t.is_null())).then_some(target)
}

impl AnalyzerRule for UnionDateTimes {
    fn name(&self) -> &str {
        "clickhouse_union_date_times"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let LogicalPlan::Union(union) = &plan else { return Ok(Transformed::no(plan)) };
            let width = union.schema.fields().len();
            if union.inputs.iter().any(|i| i.schema().fields().len() != width) {
                return Ok(Transformed::no(plan));
            }
            let targets: Vec<Option<DataType>> = (0..width)
                .map(|c| {
                    let types: Vec<&DataType> = union.inputs.iter().map(|i| i.schema().field(c).data_type()).collect();
                    common(&types)
                })
                .collect();
            // Branches whose columns carry different declared types (`s` and `ns`): the values without them, as the
            // logical union's schema keeps only what all branches share and the physical one would keep the first
            // branch's (DataFusion then refuses the plan of an aggregate over it).
            // (A branch without one, a NULL or a literal, takes the others'.)
            let unlike: Vec<bool> = (0..width)
                .map(|c| {
                    let mut declared =
                        union.inputs.iter().map(|i| i.schema().field(c).metadata()).filter(|m| !m.is_empty());
                    let first = declared.next();
                    declared.any(|m| Some(m) != first)
                })
                .collect();
            if targets.iter().all(Option::is_none) && !unlike.contains(&true) {
                return Ok(Transformed::no(plan));
            }
            let plain = Arc::new(super::functions::plain_value_udf());
            let mut inputs = Vec::with_capacity(union.inputs.len());
            for input in &union.inputs {
                let schema = input.schema().clone();
                let mut changed = false;
                let exprs: Vec<Expr> = schema
                    .iter()
                    .zip(targets.iter().zip(&unlike))
                    .map(|((qualifier, field), (target, unlike))| {
                        let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
                        let value = match target {
                            Some(t) if field.data_type() != t => Expr::Cast(Cast::new(Box::new(column), t.clone())),
                            _ if *unlike && !field.metadata().is_empty() => {
                                datafusion::logical_expr::Expr::ScalarFunction(
                                    datafusion::logical_expr::expr::ScalarFunction::new_udf(
                                        plain.clone(),
                                        vec![column],
                                    ),
                                )
                            }
                            _ => return column,
                        };
                        changed = true;
                        value.alias_qualified(qualifier.cloned(), field.name())
                    })
                    .collect();
                inputs.push(if changed {
                    Arc::new(LogicalPlan::Projection(Projection::try_new(exprs, input.clone())?))
                } else {
                    input.clone()
                });
            }
            Ok(Transformed::yes(LogicalPlan::Union(Union::try_new_with_loose_types(inputs)?)))
        })
        .map(|t| t.data)
    }
}
