//! Compile-time assertions used by the code `#[derive(Endpoint)]` generates.
//!
//! Each trait says "a parameter of this Rust type can be read by this template function". The derive asserts, for every
//! `{{F(param)}}` in a node's SQL, that the param's field type implements the trait for `F`, with the assertion spanned
//! on the field's type. Because the compiler resolves the field type, aliases and paths work, and the message (from
//! `#[diagnostic::on_unimplemented]`) speaks Tinybird's language.
//!
//! Range rules are strict: `Int32(x)` accepts Rust integers whose every value is a valid Int32 (`i8`…`i32`, `u8`,
//! `u16`), so a value the SDK sends can never fail Tinybird's validation.

use std::borrow::Cow;

macro_rules! template_fn {
    ($(#[$doc:meta])* $trait:ident, $msg:literal, $note:literal, [$($ty:ty),* $(,)?]) => {
        $(#[$doc])*
        #[diagnostic::on_unimplemented(message = $msg, label = "the type of this endpoint parameter", note = $note)]
        pub trait $trait {}
        $(impl $trait for $ty {})*
    };
}

template_fn!(
    /// `{{String(x)}}`, `column(x)`, `columns(x)`, `symbol(x)`, `split_to_array(x)`: text.
    AcceptsString,
    "`{Self}` cannot be read with `String()` (or `column`, `columns`, `symbol`, `split_to_array`) in a Tinybird template",
    "these functions take text: use `String` (or `&'static str`, `Box<str>`, `Cow<str>`, `char`)",
    [String, str, &'static str, Box<str>, Cow<'static, str>, char, uuid::Uuid]
);
template_fn!(
    /// `{{Boolean(x)}}`.
    AcceptsBoolean,
    "`{Self}` cannot be read with `Boolean()` in a Tinybird template",
    "`Boolean(x)` takes a `bool`",
    [bool]
);
template_fn!(
    /// `{{Int8(x)}}`.
    AcceptsInt8,
    "`{Self}` cannot be read with `Int8()` in a Tinybird template",
    "every value of the field must fit Int8: use `i8`",
    [i8]
);
template_fn!(
    /// `{{Int16(x)}}`.
    AcceptsInt16,
    "`{Self}` cannot be read with `Int16()` in a Tinybird template",
    "every value of the field must fit Int16: use `i8`, `i16` or `u8`",
    [i8, i16, u8]
);
template_fn!(
    /// `{{Int32(x)}}`, `{{Int(x)}}`, `{{Integer(x)}}`.
    AcceptsInt32,
    "`{Self}` cannot be read with `Int32()`/`Int()` in a Tinybird template",
    "every value of the field must fit Int32: use `i8`, `i16`, `i32`, `u8` or `u16`",
    [i8, i16, i32, u8, u16]
);
template_fn!(
    /// `{{Int64(x)}}`.
    AcceptsInt64,
    "`{Self}` cannot be read with `Int64()` in a Tinybird template",
    "every value of the field must fit Int64: use `i8`…`i64` or `u8`…`u32`",
    [i8, i16, i32, i64, u8, u16, u32]
);
template_fn!(
    /// `{{Int128(x)}}`.
    AcceptsInt128,
    "`{Self}` cannot be read with `Int128()` in a Tinybird template",
    "every value of the field must fit Int128: use `i8`…`i128` or `u8`…`u64`",
    [i8, i16, i32, i64, i128, u8, u16, u32, u64]
);
template_fn!(
    /// `{{Int256(x)}}`.
    AcceptsInt256,
    "`{Self}` cannot be read with `Int256()` in a Tinybird template",
    "use a Rust integer type or `tinybird::types::Int256`",
    [i8, i16, i32, i64, i128, u8, u16, u32, u64, u128, crate::types::Int256]
);
template_fn!(
    /// `{{UInt8(x)}}`.
    AcceptsUInt8,
    "`{Self}` cannot be read with `UInt8()` in a Tinybird template",
    "every value of the field must fit UInt8: use `u8`",
    [u8]
);
template_fn!(
    /// `{{UInt16(x)}}`.
    AcceptsUInt16,
    "`{Self}` cannot be read with `UInt16()` in a Tinybird template",
    "every value of the field must fit UInt16: use `u8` or `u16`",
    [u8, u16]
);
template_fn!(
    /// `{{UInt32(x)}}`.
    AcceptsUInt32,
    "`{Self}` cannot be read with `UInt32()` in a Tinybird template",
    "every value of the field must fit UInt32: use `u8`, `u16` or `u32`",
    [u8, u16, u32]
);
template_fn!(
    /// `{{UInt64(x)}}`.
    AcceptsUInt64,
    "`{Self}` cannot be read with `UInt64()` in a Tinybird template",
    "every value of the field must fit UInt64: use `u8`…`u64`",
    [u8, u16, u32, u64]
);
template_fn!(
    /// `{{UInt128(x)}}`.
    AcceptsUInt128,
    "`{Self}` cannot be read with `UInt128()` in a Tinybird template",
    "every value of the field must fit UInt128: use `u8`…`u128`",
    [u8, u16, u32, u64, u128]
);
template_fn!(
    /// `{{UInt256(x)}}`.
    AcceptsUInt256,
    "`{Self}` cannot be read with `UInt256()` in a Tinybird template",
    "every value of the field must be unsigned: use `u8`…`u128` or `tinybird::types::UInt256`",
    [u8, u16, u32, u64, u128, crate::types::UInt256]
);
template_fn!(
    /// `{{Float32(x)}}`, `{{Float64(x)}}`.
    AcceptsFloat,
    "`{Self}` cannot be read with `Float32()`/`Float64()` in a Tinybird template",
    "use `f32`, `f64` or an integer of at most 32 bits",
    [f32, f64, i8, i16, i32, u8, u16, u32]
);
template_fn!(
    /// `{{Date(x)}}`.
    AcceptsDate,
    "`{Self}` cannot be read with `Date()` in a Tinybird template",
    "`Date(x)` takes a calendar date: use `chrono::NaiveDate`",
    [chrono::NaiveDate]
);
template_fn!(
    /// `{{DateTime(x)}}`, `{{DateTime64(x)}}`.
    AcceptsDateTime,
    "`{Self}` cannot be read with `DateTime()`/`DateTime64()` in a Tinybird template",
    "these take a date and time: use `chrono::NaiveDateTime` or `chrono::DateTime<Utc>`",
    [chrono::NaiveDateTime]
);
impl<Tz: chrono::TimeZone> AcceptsDateTime for chrono::DateTime<Tz> {}
impl<const P: u8> AcceptsDateTime for crate::types::DateTime64<P> {}
template_fn!(
    /// `{{JSON(x)}}`.
    AcceptsJson,
    "`{Self}` cannot be read with `JSON()` in a Tinybird template",
    "`JSON(x)` takes a JSON document: use `String` or `serde_json::Value`",
    [String, serde_json::Value]
);

/// `{{Array(x, 'T')}}`: a list whose elements are checked against `T`'s trait.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read with `Array()` in a Tinybird template",
    label = "the type of this endpoint parameter",
    note = "`Array(x, 'T')` takes a list: use `Vec<T>`"
)]
pub trait TemplateArray {
    /// The element type, checked against the array's element function.
    type Element: ?Sized;
}
impl<T> TemplateArray for Vec<T> {
    type Element = T;
}
impl<T> TemplateArray for [T] {
    type Element = T;
}
impl<T, const N: usize> TemplateArray for [T; N] {
    type Element = T;
}
impl<T> TemplateArray for Box<[T]> {
    type Element = T;
}
