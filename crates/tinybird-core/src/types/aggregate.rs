//! Aggregate-state columns, the columns of an `AggregatingMergeTree` rollup: [`AggregateState`]
//! (`AggregateFunction(f, T)`) and [`SimpleAggregate`] (`SimpleAggregateFunction(f, T)`), named by a function marker
//! from [`agg`].
//!
//! A materialized view writes them (`uniqState(user_id) AS visitors`, `sum(views) AS views`) and an endpoint reads
//! them back merged (`uniqMerge(visitors)`, `sum(views)`), into ordinary Rust types (`u64`).
//!
//! ```
//! use tinybird_core::types::{AggregateState, ChType, SimpleAggregate, TinybirdType, agg};
//!
//! assert_eq!(<AggregateState<agg::Uniq, String>>::ch_type().to_string(), "AggregateFunction(uniq, String)");
//! assert_eq!(<SimpleAggregate<agg::Sum, u64>>::ch_type().to_string(), "SimpleAggregateFunction(sum, UInt64)");
//! let views = SimpleAggregate::<agg::Sum, u64>::new(3);
//! assert_eq!(*views, 3);
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::Deserializer;
use serde::ser::{Error as _, Serializer};
use serde::{Deserialize, Serialize};

use super::{ChType, TinybirdType};

/// An aggregate function a state column is declared with: its ClickHouse name.
pub trait AggregateFunction {
    /// The function's ClickHouse name (`uniq`, `sum`, `quantiles(0.5, 0.9)`).
    const NAME: &'static str;
}

/// Markers for ClickHouse's aggregate functions, for [`AggregateState`] and [`SimpleAggregate`]. A function not
/// listed here is one `impl AggregateFunction for MyMarker { const NAME: &'static str = "…"; }` away.
pub mod agg {
    macro_rules! markers {
        ($($(#[$doc:meta])* $marker:ident => $name:literal),* $(,)?) => {$(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
            pub struct $marker;
            impl super::AggregateFunction for $marker {
                const NAME: &'static str = $name;
            }
        )*};
    }
    markers!(
        /// `count`.
        Count => "count",
        /// `sum`.
        Sum => "sum",
        /// `min`.
        Min => "min",
        /// `max`.
        Max => "max",
        /// `avg`.
        Avg => "avg",
        /// `any`.
        Any => "any",
        /// `anyLast`.
        AnyLast => "anyLast",
        /// `uniq`: approximate distinct count.
        Uniq => "uniq",
        /// `uniqExact`: exact distinct count.
        UniqExact => "uniqExact",
        /// `uniqCombined`.
        UniqCombined => "uniqCombined",
        /// `groupUniqArray`.
        GroupUniqArray => "groupUniqArray",
        /// `groupArray`.
        GroupArray => "groupArray",
        /// `argMax`.
        ArgMax => "argMax",
        /// `argMin`.
        ArgMin => "argMin",
        /// `quantile` (the median).
        Quantile => "quantile",
    );
}

/// An `AggregateFunction(F, A)` column: the partial aggregation states of `F` over values of type `A`, which a
/// materialized view writes with `-State` (`uniqState(user_id)`) and an endpoint merges with `-Merge`
/// (`uniqMerge(visitors)`, decoded as the merged type, here `u64`).
///
/// A state is ClickHouse's binary format, not a value: it is never sent (ingesting a row holding one fails to encode,
/// naming the column's function) and what a read returns is kept as opaque text.
pub struct AggregateState<F, A> {
    raw: Option<String>,
    _function: PhantomData<fn() -> (F, A)>,
}

impl<F, A> AggregateState<F, A> {
    /// A placeholder for a row type's state column: the materialized view fills the real one.
    pub fn new() -> Self {
        AggregateState { raw: None, _function: PhantomData }
    }

    /// The state as a read returned it (ClickHouse's binary serialization, as JSON text), if this value came from one.
    pub fn raw(&self) -> Option<&str> {
        self.raw.as_deref()
    }
}

impl<F, A> Default for AggregateState<F, A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F, A> Clone for AggregateState<F, A> {
    fn clone(&self) -> Self {
        AggregateState { raw: self.raw.clone(), _function: PhantomData }
    }
}

impl<F, A> PartialEq for AggregateState<F, A> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<F: AggregateFunction, A: TinybirdType> fmt::Debug for AggregateState<F, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AggregateState({})", Self::ch_type())
    }
}

impl<F: AggregateFunction, A: TinybirdType> TinybirdType for AggregateState<F, A> {
    fn ch_type() -> ChType {
        ChType::AggregateFunction { function: F::NAME.to_owned(), args: vec![A::ch_type()] }
    }
}

impl<F: AggregateFunction, A: TinybirdType> Serialize for AggregateState<F, A> {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(S::Error::custom(format!(
            "a column of type {} holds states that a materialized view writes (`{}State(…)`); they are not sent",
            Self::ch_type(),
            F::NAME
        )))
    }
}

impl<'de, F, A> Deserialize<'de> for AggregateState<F, A> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(AggregateState { raw: Some(String::deserialize(deserializer)?), _function: PhantomData })
    }
}

/// A `SimpleAggregateFunction(F, T)` column: plain values of `T` that ClickHouse combines with `F` when it merges
/// parts (`sum` adds, `max` keeps the largest). Sent and read as `T`; read merged with `F` itself (`sum(views)`).
pub struct SimpleAggregate<F, T> {
    value: T,
    _function: PhantomData<fn() -> F>,
}

impl<F, T> SimpleAggregate<F, T> {
    /// A value.
    pub const fn new(value: T) -> Self {
        SimpleAggregate { value, _function: PhantomData }
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<F, T> Deref for SimpleAggregate<F, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<F, T> From<T> for SimpleAggregate<F, T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<F, T: Default> Default for SimpleAggregate<F, T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<F, T: Clone> Clone for SimpleAggregate<F, T> {
    fn clone(&self) -> Self {
        Self::new(self.value.clone())
    }
}

impl<F, T: Copy> Copy for SimpleAggregate<F, T> {}

impl<F, T: PartialEq> PartialEq for SimpleAggregate<F, T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<F, T: fmt::Debug> fmt::Debug for SimpleAggregate<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<F: AggregateFunction, T: TinybirdType> TinybirdType for SimpleAggregate<F, T> {
    fn ch_type() -> ChType {
        ChType::SimpleAggregateFunction { function: F::NAME.to_owned(), ty: Box::new(T::ch_type()) }
    }
}

impl<F, T: Serialize> Serialize for SimpleAggregate<F, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de, F, T: Deserialize<'de>> Deserialize<'de> for SimpleAggregate<F, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::new)
    }
}
