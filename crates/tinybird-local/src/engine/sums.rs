//! ClickHouse's `sum` and `avg`, as the DataFusion aggregates `ch_sum` and `ch_avg`.
//!
//! Three things differ from DataFusion's own:
//! - **Types.** `sum(Decimal(P, S))` is `Decimal(38, S)`; `sum(Bool)` is UInt64; `avg` of anything is Float64.
//! - **Integers in `avg`.** ClickHouse adds them in Int64 (UInt64 for unsigned types), wrapping as `sum` does, and
//!   divides that sum by the count; DataFusion adds them as floats, which loses the low digits of 64-bit values.
//! - **Float rounding.** Without `GROUP BY`, ClickHouse adds a column of floats into 16 running partial sums (element
//!   `i` of each run of 16 into partial `i`), then adds the partials in order, then the elements after the last full
//!   run (`AggregateFunctionSumData::addMany`). Float addition is not associative, so the last digit depends on that
//!   order. Grouped rows are added one by one, in order. Both are reproduced here, so the same rows in one block give
//!   the same digits as ClickHouse.
//!
//! Both return NULL for an empty set, as DataFusion's do: the compatibility layer turns that into ClickHouse's 0 or
//! nan where the argument is not `Nullable`.

use crate::types::ChType;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Float64Array, Int64Array, UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Registers `ch_sum` and `ch_avg`.
pub(super) fn register(ctx: &SessionContext) {
    for (name, avg) in [("ch_sum", false), ("ch_avg", true)] {
        ctx.register_udaf(AggregateUDF::new_from_impl(Sum {
            name,
            avg,
            signature: Signature::any(1, Volatility::Immutable),
        }));
    }
}

/// How the values of a column are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// In Int64, wrapping.
    Signed,
    /// In UInt64, wrapping.
    Unsigned,
    /// In Float64.
    Float,
    /// Exactly, in the decimal's unscaled integers.
    Decimal { scale: i8 },
}

impl Kind {
    fn of(t: &DataType, function: &str) -> Result<Kind> {
        Ok(match (t, ChType::from_arrow(t)) {
            (DataType::Boolean, _) => Kind::Unsigned,
            (_, ChType::Int { signed: true, bits }) if bits <= 64 => Kind::Signed,
            (_, ChType::Int { signed: false, bits }) if bits <= 64 => Kind::Unsigned,
            (DataType::Float32 | DataType::Float64 | DataType::Null, _) => Kind::Float,
            (DataType::Decimal128(_, scale), _) => Kind::Decimal { scale: *scale },
            (_, ty) => {
                return exec_err!(
                    "DB::Exception: Illegal type {ty} of argument for aggregate function {function}. \
                     (ILLEGAL_TYPE_OF_ARGUMENT)"
                );
            }
        })
    }

    /// The type of the sum.
    fn sum_type(self) -> DataType {
        match self {
            Kind::Signed => DataType::Int64,
            Kind::Unsigned => DataType::UInt64,
            Kind::Float => DataType::Float64,
            Kind::Decimal { scale } => DataType::Decimal128(38, scale),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Sum {
    name: &'static str,
    avg: bool,
    signature: Signature,
}

impl Sum {
    fn function(&self) -> &'static str {
        if self.avg { "avg" } else { "sum" }
    }
}

impl AggregateUDFImpl for Sum {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let [t] = args else { return exec_err!("{} takes one argument", self.function()) };
        let kind = Kind::of(t, self.function())?;
        Ok(if self.avg { DataType::Float64 } else { kind.sum_type() })
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        let kind = Kind::of(args.input_fields[0].data_type(), self.function())?;
        Ok(vec![
            Arc::new(Field::new(format!("{}[sum]", args.name), kind.sum_type(), true)),
            Arc::new(Field::new(format!("{}[count]", args.name), DataType::UInt64, false)),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        let kind = Kind::of(&args.exprs[0].data_type(args.schema)?, self.function())?;
        Ok(Box::new(Single { kind, avg: self.avg, int: 0, float: 0.0, count: 0 }))
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs<'_>) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn GroupsAccumulator>> {
        let kind = Kind::of(&args.exprs[0].data_type(args.schema)?, self.function())?;
        Ok(Box::new(Groups { kind, avg: self.avg, ints: Vec::new(), floats: Vec::new(), counts: Vec::new() }))
    }
}

/// A column's values as what they are added in: integers (wrapping: signed and unsigned values both as their bits
/// in an i128, reduced at the end) or floats.
enum Values {
    Ints(Vec<Option<i128>>),
    Floats(Vec<Option<f64>>),
}

fn values(kind: Kind, array: &ArrayRef) -> Result<Values> {
    Ok(match kind {
        Kind::Signed => Values::Ints(
            cast(array, &DataType::Int64)?.as_primitive::<Int64Type>().iter().map(|v| v.map(i128::from)).collect(),
        ),
        Kind::Unsigned => Values::Ints(
            cast(array, &DataType::UInt64)?.as_primitive::<UInt64Type>().iter().map(|v| v.map(i128::from)).collect(),
        ),
        Kind::Decimal { .. } => {
            Values::Ints(array.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>().iter().collect())
        }
        Kind::Float => Values::Floats(cast(array, &DataType::Float64)?.as_primitive::<Float64Type>().iter().collect()),
    })
}

/// Applies a `FILTER (WHERE …)` mask: filtered-out rows count as NULL.
fn filtered(mut values: Values, filter: Option<&BooleanArray>) -> Values {
    if let Some(filter) = filter {
        let keep = |i: usize| filter.is_valid(i) && filter.value(i);
        match &mut values {
            Values::Ints(v) => v.iter_mut().enumerate().filter(|(i, _)| !keep(*i)).for_each(|(_, x)| *x = None),
            Values::Floats(v) => v.iter_mut().enumerate().filter(|(i, _)| !keep(*i)).for_each(|(_, x)| *x = None),
        }
    }
    values
}

/// The final value of a sum state.
fn finish(kind: Kind, avg: bool, int: i128, float: f64, count: u64) -> ScalarValue {
    if count == 0 {
        return if avg {
            ScalarValue::Float64(None)
        } else {
            ScalarValue::try_from(&kind.sum_type()).unwrap_or(ScalarValue::Null)
        };
    }
    let sum = match kind {
        Kind::Signed => ScalarValue::Int64(Some(int as i64)),
        Kind::Unsigned => ScalarValue::UInt64(Some(int as u64)),
        Kind::Float => ScalarValue::Float64(Some(float)),
        Kind::Decimal { scale } => ScalarValue::Decimal128(Some(int), 38, scale),
    };
    if !avg {
        return sum;
    }
    let numerator = match kind {
        Kind::Signed => (int as i64) as f64,
        Kind::Unsigned => (int as u64) as f64,
        Kind::Float => float,
        Kind::Decimal { scale } => int as f64 / 10f64.powi(i32::from(scale)),
    };
    ScalarValue::Float64(Some(numerator / count as f64))
}

/// The aggregate without `GROUP BY`: ClickHouse's unrolled addition for floats.
#[derive(Debug)]
struct Single {
    kind: Kind,
    avg: bool,
    int: i128,
    float: f64,
    count: u64,
}

/// How many partial sums ClickHouse keeps for a Float64 accumulator: `128 / sizeof(Float64)`.
const UNROLL: usize = 16;

impl Accumulator for Single {
    fn update_batch(&mut self, arrays: &[ArrayRef]) -> Result<()> {
        match values(self.kind, &arrays[0])? {
            Values::Ints(v) => {
                for x in v.into_iter().flatten() {
                    self.int = self.int.wrapping_add(x);
                    self.count += 1;
                }
            }
            Values::Floats(v) => {
                let full = v.len() / UNROLL * UNROLL;
                let mut partial = [0.0f64; UNROLL];
                for run in v[..full].chunks_exact(UNROLL) {
                    for (p, x) in partial.iter_mut().zip(run) {
                        if let Some(x) = x {
                            *p += x;
                        }
                    }
                }
                for p in partial {
                    self.float += p;
                }
                let mut rest = 0.0;
                for x in v[full..].iter().flatten() {
                    rest += x;
                }
                self.float += rest;
                self.count += v.iter().flatten().count() as u64;
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let counts = states[1].as_primitive::<UInt64Type>();
        match values(self.kind, &states[0])? {
            Values::Ints(v) => {
                for (x, n) in v.into_iter().zip(counts.iter()) {
                    self.int = self.int.wrapping_add(x.unwrap_or(0));
                    self.count += n.unwrap_or(0);
                }
            }
            Values::Floats(v) => {
                for (x, n) in v.into_iter().zip(counts.iter()) {
                    self.float += x.unwrap_or(0.0);
                    self.count += n.unwrap_or(0);
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let sum = finish(self.kind, false, self.int, self.float, self.count.max(1));
        Ok(vec![sum, ScalarValue::UInt64(Some(self.count))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(finish(self.kind, self.avg, self.int, self.float, self.count))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// The aggregate with `GROUP BY`: each row added to its group in order, as ClickHouse does.
#[derive(Debug)]
struct Groups {
    kind: Kind,
    avg: bool,
    ints: Vec<i128>,
    floats: Vec<f64>,
    counts: Vec<u64>,
}

impl Groups {
    fn grow(&mut self, groups: usize) {
        self.ints.resize(groups, 0);
        self.floats.resize(groups, 0.0);
        self.counts.resize(groups, 0);
    }

    fn add(&mut self, values: Values, groups: &[usize], counts: Option<&UInt64Array>) {
        let n = |i: usize| counts.map_or(1, |c| c.value(i));
        match values {
            Values::Ints(v) => {
                for (i, (x, &g)) in v.into_iter().zip(groups).enumerate() {
                    if let Some(x) = x.or(counts.map(|_| 0)) {
                        self.ints[g] = self.ints[g].wrapping_add(x);
                        self.counts[g] += n(i);
                    }
                }
            }
            Values::Floats(v) => {
                for (i, (x, &g)) in v.into_iter().zip(groups).enumerate() {
                    if let Some(x) = x.or(counts.map(|_| 0.0)) {
                        self.floats[g] += x;
                        self.counts[g] += n(i);
                    }
                }
            }
        }
    }

    fn emit(&mut self, emit_to: EmitTo, avg: bool) -> Result<ArrayRef> {
        let ints = emit_to.take_needed(&mut self.ints);
        let floats = emit_to.take_needed(&mut self.floats);
        let counts = emit_to.take_needed(&mut self.counts);
        let values: Vec<ScalarValue> =
            (0..counts.len()).map(|g| finish(self.kind, avg, ints[g], floats[g], counts[g])).collect();
        if values.is_empty() {
            let t = if avg { DataType::Float64 } else { self.kind.sum_type() };
            return Ok(datafusion::arrow::array::new_empty_array(&t));
        }
        ScalarValue::iter_to_array(values)
    }
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        arrays: &[ArrayRef],
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> Result<()> {
        self.grow(total);
        let v = filtered(values(self.kind, &arrays[0])?, filter);
        self.add(v, groups, None);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef], groups: &[usize], total: usize) -> Result<()> {
        self.grow(total);
        let v = values(self.kind, &states[0])?;
        self.add(v, groups, Some(states[1].as_primitive::<UInt64Type>()));
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        self.emit(emit_to, self.avg)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        // Sums of empty groups are 0 in the state (their count says they are empty).
        let counts = UInt64Array::from(emit_to.take_needed(&mut self.counts));
        let ints = emit_to.take_needed(&mut self.ints);
        let floats = emit_to.take_needed(&mut self.floats);
        let sums: ArrayRef = match self.kind {
            Kind::Signed => Arc::new(Int64Array::from_iter_values(ints.iter().map(|&x| x as i64))),
            Kind::Unsigned => Arc::new(UInt64Array::from_iter_values(ints.iter().map(|&x| x as u64))),
            Kind::Float => Arc::new(Float64Array::from(floats)),
            Kind::Decimal { scale } => {
                Arc::new(Decimal128Array::from_iter_values(ints).with_precision_and_scale(38, scale)?)
            }
        };
        Ok(vec![sums, Arc::new(counts)])
    }

    fn convert_to_state(&self, arrays: &[ArrayRef], filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let mut one =
            Groups { kind: self.kind, avg: self.avg, ints: Vec::new(), floats: Vec::new(), counts: Vec::new() };
        let rows = arrays[0].len();
        one.grow(rows);
        let groups: Vec<usize> = (0..rows).collect();
        one.add(filtered(values(self.kind, &arrays[0])?, filter), &groups, None);
        one.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        self.ints.capacity() * 16 + self.floats.capacity() * 8 + self.counts.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_add_in_clickhouses_order() {
        // The Float32 column of the differential fixture: ClickHouse's sum ends in ...408, a plain loop in ...407.
        let v: Vec<f64> = (1..=40).map(|id| f64::from([0.1f32, -2.5, 1e-7, 3.25, 0.0, 100.75][id % 6])).collect();
        let mut single = Single { kind: Kind::Float, avg: false, int: 0, float: 0.0, count: 0 };
        single.update_batch(&[Arc::new(Float64Array::from(v.clone())) as ArrayRef]).unwrap();
        assert_eq!(single.evaluate().unwrap(), ScalarValue::Float64(Some(610.3500007089408)));
        assert_eq!(v.iter().sum::<f64>(), 610.3500007089407);
    }

    #[test]
    fn integer_averages_wrap_like_clickhouse() {
        let mut single = Single { kind: Kind::Signed, avg: true, int: 0, float: 0.0, count: 0 };
        single.update_batch(&[Arc::new(Int64Array::from(vec![i64::MAX, i64::MAX])) as ArrayRef]).unwrap();
        assert_eq!(single.evaluate().unwrap(), ScalarValue::Float64(Some(-1.0)));
    }
}
