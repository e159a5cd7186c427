//! "Can values of this wire type be decoded as that declared type?": checking an endpoint's declared output
//! against the `meta` of a response.

use super::ChType;

impl ChType {
    /// Whether a column that arrives as `self` (the type in a response's `meta`) can be decoded into a field
    /// declared as `declared`, without loss and without failing on some values.
    ///
    /// The rules, chosen for what the JSON on the wire looks like:
    /// - `LowCardinality` is ignored on both sides: it changes storage, not values.
    /// - A non-nullable wire type fits a `Nullable` declaration (an `Option` field never sees `None`), but a
    ///   `Nullable` wire type needs a `Nullable` declaration. `Nothing` (the type of `NULL` and of `[]`) fits anything.
    /// - Time zones are ignored (`DateTime('UTC')` fits `DateTime`): values are printed without a zone. `DateTime64`
    ///   precisions must be equal; `Date` fits `Date32` but not the reverse.
    /// - Integers and floats widen losslessly: `UInt32` fits `UInt64`, `Int64` and `Int128`; `Float32` fits `Float64`.
    ///   A narrower declaration (`UInt64` on the wire, `UInt32` declared) does not fit.
    /// - `Decimal(P1, S1)` fits `Decimal(P2, S2)` when `S1 ≤ S2` and `P1 − S1 ≤ P2 − S2`.
    /// - `FixedString(N)`, `Enum8`/`Enum16`, `UUID`, `IPv4` and `IPv6` values are JSON strings and fit `String`.
    ///   An `Enum` fits another `Enum` declaring every name it can hold.
    /// - `SimpleAggregateFunction(f, T)` fits `T` (its values are `T`s) and the reverse.
    /// - `Array`, `Map` and `Tuple` compare element-wise; tuple element names are ignored, arity must match.
    /// - `JSON`, `AggregateFunction` and the rest fit only themselves.
    ///
    /// ```
    /// use tinybird_types::ChType;
    /// let wire: ChType = "LowCardinality(String)".parse().unwrap();
    /// assert!(wire.is_compatible_with(&"Nullable(String)".parse().unwrap()));
    /// let wire: ChType = "Nullable(UInt64)".parse().unwrap();
    /// assert!(!wire.is_compatible_with(&ChType::UInt64));
    /// ```
    pub fn is_compatible_with(&self, declared: &ChType) -> bool {
        use ChType as T;
        let wire = strip_wrappers(self);
        let declared = strip_wrappers(declared);
        match (wire, declared) {
            (T::Nothing, _) => true,
            (T::Nullable(w), T::Nullable(d)) => w.is_compatible_with(d),
            (T::Nullable(_), _) => false,
            (w, T::Nullable(d)) => w.is_compatible_with(d),
            (w, d) if w == d => true,
            (T::DateTime(_), T::DateTime(_)) => true,
            (T::DateTime64 { precision: p1, .. }, T::DateTime64 { precision: p2, .. }) => p1 == p2,
            (T::Date, T::Date32) => true,
            (T::Float32, T::Float64) => true,
            (T::Decimal { precision: p1, scale: s1 }, T::Decimal { precision: p2, scale: s2 }) => {
                s1 <= s2 && p1 - s1 <= p2 - s2
            }
            (T::FixedString(_) | T::Enum8(_) | T::Enum16(_) | T::Uuid | T::IPv4 | T::IPv6, T::String) => true,
            (T::Enum8(w), T::Enum8(d)) => w.iter().all(|(n, _)| d.iter().any(|(m, _)| m == n)),
            (T::Enum8(w), T::Enum16(d)) => w.iter().all(|(n, _)| d.iter().any(|(m, _)| m == n)),
            (T::Enum16(w), T::Enum8(d)) => w.iter().all(|(n, _)| d.iter().any(|(m, _)| m == n)),
            (T::Enum16(w), T::Enum16(d)) => w.iter().all(|(n, _)| d.iter().any(|(m, _)| m == n)),
            (T::SimpleAggregateFunction { ty, .. }, d) => ty.is_compatible_with(d),
            (w, T::SimpleAggregateFunction { ty, .. }) => w.is_compatible_with(ty),
            (T::Array(w), T::Array(d)) => w.is_compatible_with(d),
            (T::Map(wk, wv), T::Map(dk, dv)) => wk.is_compatible_with(dk) && wv.is_compatible_with(dv),
            (T::Tuple(w), T::Tuple(d)) => {
                w.len() == d.len() && w.iter().zip(d).all(|(w, d)| w.ty.is_compatible_with(&d.ty))
            }
            (w, d) => match (w.integer_info(), d.integer_info()) {
                (Some((ws, wb)), Some((ds, db))) => match (ws, ds) {
                    (false, false) | (true, true) => wb <= db,
                    (false, true) => wb < db,
                    (true, false) => false,
                },
                _ => false,
            },
        }
    }
}

/// `LowCardinality` anywhere in the outer wrappers is storage only.
fn strip_wrappers(ty: &ChType) -> &ChType {
    match ty {
        ChType::LowCardinality(inner) => strip_wrappers(inner),
        other => other,
    }
}
