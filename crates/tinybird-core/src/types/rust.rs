//! The default Tinybird type of Rust types.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{ChType, DateTime64, Decimal, Int256, UInt256};

/// A Rust type with a default Tinybird type: what `#[derive(Datasource)]` writes for a field of this type unless
/// `#[tinybird(type = "…")]` says otherwise.
///
/// `Option<T>` is `Nullable(T)`, sequences are `Array(T)`, maps `Map(K, V)`, tuples `Tuple(…)`. `LowCardinality`
/// has no Rust type: it changes storage, not values, so it is chosen with the attribute
/// (`#[tinybird(type = "LowCardinality(String)")]`) on a `String` field. `Decimal` defaults to `Decimal(38, 9)`
/// and `DateTime64<P>` to `DateTime64(P)`; a precision, scale or time zone of your own goes in the attribute too.
///
/// ```
/// use tinybird_core::types::{ChType, TinybirdType};
/// assert_eq!(<Option<u64>>::ch_type().to_string(), "Nullable(UInt64)");
/// assert_eq!(<std::collections::HashMap<String, Vec<i32>>>::ch_type().to_string(), "Map(String, Array(Int32))");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no default Tinybird type",
    label = "no default Tinybird type",
    note = "use a type with a Tinybird counterpart (integers, String, chrono dates, Option, Vec, …) or give the type \
            explicitly with `#[tinybird(type = \"…\")]`"
)]
pub trait TinybirdType {
    /// The Tinybird type of this Rust type.
    fn ch_type() -> ChType;
}

macro_rules! simple {
    ($($t:ty => $ch:expr),* $(,)?) => {$(
        impl TinybirdType for $t {
            fn ch_type() -> ChType {
                $ch
            }
        }
    )*};
}

simple!(
    bool => ChType::Bool,
    i8 => ChType::Int8,
    i16 => ChType::Int16,
    i32 => ChType::Int32,
    i64 => ChType::Int64,
    i128 => ChType::Int128,
    u8 => ChType::UInt8,
    u16 => ChType::UInt16,
    u32 => ChType::UInt32,
    u64 => ChType::UInt64,
    u128 => ChType::UInt128,
    f32 => ChType::Float32,
    f64 => ChType::Float64,
    String => ChType::String,
    str => ChType::String,
    char => ChType::String,
    serde_json::Value => ChType::Json,
    chrono::NaiveDate => ChType::Date,
    chrono::NaiveDateTime => ChType::DateTime(None),
    chrono::DateTime<chrono::Utc> => ChType::DateTime(None),
    Ipv4Addr => ChType::IPv4,
    Ipv6Addr => ChType::IPv6,
    uuid::Uuid => ChType::Uuid,
    Int256 => ChType::Int256,
    UInt256 => ChType::UInt256,
    Decimal => ChType::Decimal { precision: 38, scale: 9 },
);

impl TinybirdType for Cow<'_, str> {
    fn ch_type() -> ChType {
        ChType::String
    }
}

impl<const P: u8> TinybirdType for DateTime64<P> {
    fn ch_type() -> ChType {
        const { assert!(P <= 9, "DateTime64 precision must be in 0..=9") };
        ChType::DateTime64 { precision: P, tz: None }
    }
}

impl<T: TinybirdType + ?Sized> TinybirdType for &T {
    fn ch_type() -> ChType {
        T::ch_type()
    }
}

impl<T: TinybirdType + ?Sized> TinybirdType for Box<T>
where
    Box<T>: Sized,
{
    fn ch_type() -> ChType {
        T::ch_type()
    }
}

impl<T: TinybirdType> TinybirdType for Option<T> {
    fn ch_type() -> ChType {
        match T::ch_type() {
            // Already nullable: ClickHouse has no Nullable(Nullable(T)).
            ty @ (ChType::Nullable(_) | ChType::Nothing) => ty,
            ty => ChType::nullable(ty),
        }
    }
}

impl<T: TinybirdType> TinybirdType for Vec<T> {
    fn ch_type() -> ChType {
        ChType::array(T::ch_type())
    }
}

impl<T: TinybirdType> TinybirdType for [T] {
    fn ch_type() -> ChType {
        ChType::array(T::ch_type())
    }
}

impl<T: TinybirdType, const N: usize> TinybirdType for [T; N] {
    fn ch_type() -> ChType {
        ChType::array(T::ch_type())
    }
}

impl<K: TinybirdType, V: TinybirdType, H> TinybirdType for HashMap<K, V, H> {
    fn ch_type() -> ChType {
        ChType::map(K::ch_type(), V::ch_type())
    }
}

impl<K: TinybirdType, V: TinybirdType> TinybirdType for BTreeMap<K, V> {
    fn ch_type() -> ChType {
        ChType::map(K::ch_type(), V::ch_type())
    }
}

macro_rules! tuple {
    ($($name:ident),+) => {
        impl<$($name: TinybirdType),+> TinybirdType for ($($name,)+) {
            fn ch_type() -> ChType {
                ChType::tuple([$($name::ch_type()),+])
            }
        }
    };
}
tuple!(A);
tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);
tuple!(A, B, C, D, E);
tuple!(A, B, C, D, E, F);
tuple!(A, B, C, D, E, F, G);
tuple!(A, B, C, D, E, F, G, H);
