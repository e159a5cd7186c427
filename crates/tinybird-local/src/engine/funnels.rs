//! ClickHouse's `topK(N)(x)` and `windowFunnel(window)(timestamp, cond1, cond2, …)`, as the DataFusion aggregates
//! `ch_top_k(x, N)` and `ch_window_funnel(window, timestamp, cond1, …)`.
//!
//! - `topK` is approximate in ClickHouse (Filtered Space-Saving over `3 × N` counters). With at most `3 × N` distinct
//!   values its counts are exact, and its answer is the values by count, highest first; that is what is computed
//!   here. More distinct values (where ClickHouse's answer depends on the order it saw the rows), or equal counts
//!   where they decide the answer or its order, are refused.
//! - `windowFunnel` (the default mode): the events of each group sorted by timestamp (and, at one timestamp, by
//!   condition), each condition `i > 1` extending a chain whose condition `i - 1` was met within `window` of the
//!   chain's first event; the answer is the longest chain's length.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::sync::Arc;

/// Registers the aggregates.
pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(TopK { signature: Signature::any(2, Volatility::Immutable) }));
    ctx.register_udaf(AggregateUDF::new_from_impl(WindowFunnel {
        signature: Signature::variadic_any(Volatility::Immutable),
    }));
}

/// A constant argument of an aggregate as a u64 (`N` of `topK`, the window of `windowFunnel`).
fn constant(args: &AccumulatorArgs<'_>, i: usize, what: &str) -> Result<u64> {
    // A constant evaluates without rows.
    let batch = datafusion::arrow::record_batch::RecordBatch::new_empty(Arc::new(
        datafusion::arrow::datatypes::Schema::empty(),
    ));
    let Some(Ok(datafusion::logical_expr::ColumnarValue::Scalar(literal))) =
        args.exprs.get(i).map(|e| e.evaluate(&batch))
    else {
        return exec_err!("{what} must be a constant");
    };
    match literal.cast_to(&DataType::UInt64) {
        Ok(ScalarValue::UInt64(Some(n))) => Ok(n),
        _ => exec_err!("{what} must be a non-negative integer, got {literal}"),
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TopK {
    signature: Signature,
}

impl AggregateUDFImpl for TopK {
    fn name(&self) -> &str {
        "ch_top_k"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new("item", args[0].clone(), true))))
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        let value = args.input_fields[0].data_type().clone();
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[values]", args.name),
                DataType::List(Arc::new(Field::new("item", value, true))),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[counts]", args.name),
                DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))),
                true,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        let n = constant(&args, 1, "topK's N")?;
        if n == 0 || n > 65536 {
            return exec_err!("DB::Exception: Too large parameter(s) for aggregate function topK. Maximum: 65536");
        }
        let value_type = args.exprs[0].data_type(args.schema)?;
        Ok(Box::new(TopKAccumulator { n: n as usize, value_type, counts: HashMap::new() }))
    }
}

#[derive(Debug)]
struct TopKAccumulator {
    n: usize,
    value_type: DataType,
    counts: HashMap<ScalarValue, u64>,
}

impl Accumulator for TopKAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let array = &values[0];
        for i in 0..array.len() {
            if array.is_valid(i) {
                *self.counts.entry(ScalarValue::try_from_array(array, i)?).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (values, counts) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..values.len() {
            if values.is_null(row) {
                continue;
            }
            let (v, c) = (values.value(row), counts.value(row));
            let c = c.as_primitive::<UInt64Type>();
            for i in 0..v.len() {
                *self.counts.entry(ScalarValue::try_from_array(&v, i)?).or_insert(0) += c.value(i);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (values, counts): (Vec<ScalarValue>, Vec<ScalarValue>) =
            self.counts.iter().map(|(v, c)| (v.clone(), ScalarValue::UInt64(Some(*c)))).unzip();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.value_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::UInt64)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.counts.len() > 3 * self.n {
            return exec_err!(
                "DB::Exception: topK({}) of more than {} distinct values (ClickHouse's answer is then approximate, \
                 depending on the order it reads the rows) is not supported by tinybird-local's DataFusion engine",
                self.n,
                3 * self.n
            );
        }
        let mut ranked: Vec<(&ScalarValue, u64)> = self.counts.iter().map(|(v, c)| (v, *c)).collect();
        ranked.sort_by_key(|r| std::cmp::Reverse(r.1));
        let kept = ranked.len().min(self.n);
        // Equal counts decide the order of the answer, or which value makes it: ClickHouse's pick is not reproduced.
        if (0..kept).any(|i| ranked.get(i + 1).is_some_and(|next| next.1 == ranked[i].1)) {
            return exec_err!(
                "DB::Exception: topK({}) where values have equal counts (ClickHouse orders them by how it stored \
                 them) is not supported by tinybird-local's DataFusion engine",
                self.n
            );
        }
        let values: Vec<ScalarValue> = ranked.into_iter().take(kept).map(|(v, _)| v.clone()).collect();
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.value_type)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.counts.len() * 64
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct WindowFunnel {
    signature: Signature,
}

impl AggregateUDFImpl for WindowFunnel {
    fn name(&self) -> &str {
        "ch_window_funnel"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [_, time, conditions @ ..] if !conditions.is_empty() && conditions.len() <= 32 => {
                let time_ok = time.is_unsigned_integer()
                    || matches!(
                        time,
                        DataType::Date32 | DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Second, None)
                    );
                if !time_ok {
                    return exec_err!(
                        "DB::Exception: windowFunnel's timestamp must be a DateTime, a Date or an unsigned integer \
                         here, not {}",
                        crate::types::ChType::from_arrow(time)
                    );
                }
                Ok(DataType::UInt8)
            }
            _ => exec_err!("DB::Exception: windowFunnel takes a timestamp and 1 to 32 conditions"),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        let list = |name: &str| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
                true,
            ))
        };
        Ok(vec![list("times"), list("events")])
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        let window = constant(&args, 0, "windowFunnel's window")?;
        let levels = args.exprs.len() - 2;
        let window = i64::try_from(window).unwrap_or(i64::MAX);
        Ok(Box::new(FunnelAccumulator { window, levels, events: Vec::new() }))
    }
}

#[derive(Debug)]
struct FunnelAccumulator {
    window: i64,
    levels: usize,
    /// (timestamp, condition number from 1) for each condition a row met.
    events: Vec<(i64, i64)>,
}

impl Accumulator for FunnelAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let times = cast(
            &cast(&values[1], &DataType::Int64).or_else(|_| {
                cast(&values[1], &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Second, None))
                    .and_then(|t| cast(&t, &DataType::Int64))
            })?,
            &DataType::Int64,
        )?;
        let times = times.as_primitive::<Int64Type>();
        for (level, condition) in values[2..].iter().enumerate() {
            let condition = cast(condition, &DataType::Boolean)?;
            let condition = condition.as_boolean();
            for row in 0..times.len() {
                if times.is_valid(row) && condition.is_valid(row) && condition.value(row) {
                    self.events.push((times.value(row), level as i64 + 1));
                }
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (times, events): (&ListArray, &ListArray) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..times.len() {
            if times.is_null(row) {
                continue;
            }
            let (t, e) = (times.value(row), events.value(row));
            let (t, e) = (t.as_primitive::<Int64Type>(), e.as_primitive::<Int64Type>());
            self.events.extend(t.values().iter().copied().zip(e.values().iter().copied()));
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (times, events): (Vec<ScalarValue>, Vec<ScalarValue>) =
            self.events.iter().map(|(t, e)| (ScalarValue::Int64(Some(*t)), ScalarValue::Int64(Some(*e)))).unzip();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&times, &DataType::Int64)),
            ScalarValue::List(ScalarValue::new_list_nullable(&events, &DataType::Int64)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.events.sort_unstable();
        // For each level reached: the timestamp of the chain's first event.
        let mut started: Vec<Option<i64>> = vec![None; self.levels];
        for &(time, level) in &self.events {
            let level = (level - 1) as usize;
            if level == 0 {
                started[0] = Some(time);
            } else if let Some(first) = started[level - 1]
                && time <= first.saturating_add(self.window)
            {
                started[level] = Some(first);
                if level + 1 == self.levels {
                    return Ok(ScalarValue::UInt8(Some(self.levels as u8)));
                }
            }
        }
        let reached = started.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        Ok(ScalarValue::UInt8(Some(reached as u8)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.events.capacity() * 16
    }
}
