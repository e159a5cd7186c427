//! `min`/`max` of floats as ClickHouse computes them: NaN is skipped (the answer is NaN only when every value is), and
//! ±inf are values like any other. DataFusion's own `min`/`max` order floats totally, so a NaN wins `max` (and a
//! negative NaN, what `0/0` gives here, wins `min`), and its grouped `max` of values that are all `-inf` answers
//! `f64::MIN`. The rewrite (see `datafusion.rs`) replaces `min`/`max` of a `Float32`/`Float64` argument with
//! `ch_min_float32`/`ch_max_float64`…, keeping the call's `DISTINCT`, `FILTER` and `ORDER BY`.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{Accumulator, AggregateUDF, Volatility, create_udaf};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// The UDAF standing for `min` (`max` when `largest`) of a float type, or None for another type.
pub(super) fn replacement(largest: bool, input: &DataType) -> Option<Arc<AggregateUDF>> {
    let (name, ty) = match (largest, input) {
        (false, DataType::Float32) => ("ch_min_float32", DataType::Float32),
        (false, DataType::Float64) => ("ch_min_float64", DataType::Float64),
        (true, DataType::Float32) => ("ch_max_float32", DataType::Float32),
        (true, DataType::Float64) => ("ch_max_float64", DataType::Float64),
        _ => return None,
    };
    Some(Arc::new(udaf(name, largest, ty)))
}

fn udaf(name: &str, largest: bool, ty: DataType) -> AggregateUDF {
    let output = ty.clone();
    create_udaf(
        name,
        vec![ty.clone()],
        Arc::new(ty),
        Volatility::Immutable,
        Arc::new(move |_| Ok(Box::new(Extreme { largest, best: None, nan: false, output: output.clone() }))),
        Arc::new(vec![DataType::Float64, DataType::Boolean]),
    )
}

/// Registers the four UDAFs (so plans that name them resolve).
pub(super) fn register(ctx: &SessionContext) {
    for largest in [false, true] {
        for ty in [DataType::Float32, DataType::Float64] {
            if let Some(f) = replacement(largest, &ty) {
                ctx.register_udaf(f.as_ref().clone());
            }
        }
    }
}

#[derive(Debug)]
struct Extreme {
    largest: bool,
    /// The smallest (largest) value that is not NaN.
    best: Option<f64>,
    /// Whether a NaN was seen.
    nan: bool,
    output: DataType,
}

impl Extreme {
    fn add(&mut self, v: f64) {
        if v.is_nan() {
            self.nan = true;
            return;
        }
        let better = match self.best {
            None => true,
            Some(b) if self.largest => v > b,
            Some(b) => v < b,
        };
        if better {
            self.best = Some(v);
        }
    }
}

impl Accumulator for Extreme {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let xs = cast(&values[0], &DataType::Float64)?;
        for v in xs.as_primitive::<Float64Type>().iter().flatten() {
            self.add(v);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let best = states[0].as_primitive::<Float64Type>();
        let nan = states[1].as_boolean();
        for i in 0..best.len() {
            if !best.is_null(i) {
                self.add(best.value(i));
            }
            if nan.is_valid(i) && nan.value(i) {
                self.nan = true;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Float64(self.best), ScalarValue::Boolean(Some(self.nan))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let value = self.best.or(self.nan.then_some(f64::NAN));
        ScalarValue::Float64(value).cast_to(&self.output)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}
