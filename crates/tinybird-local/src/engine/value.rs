//! Engine-neutral cell values.

/// One cell of a row, as the engine stores or returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// `Bool` (and UInt8 0/1 results of comparisons, which print as numbers).
    Bool(bool),
    /// Signed integers.
    Int(i64),
    /// Unsigned integers.
    UInt(u64),
    /// Floats.
    Float(f64),
    /// Decimals: unscaled value and scale.
    Decimal(i128, i8),
    /// Text (String, UUID, FixedString, Enum, …).
    Str(String),
    /// Days since 1970-01-01.
    Date(i32),
    /// Nanoseconds since 1970-01-01 00:00:00 UTC (an i128: a DateTime64(3) reaches 2299, past i64 nanoseconds).
    DateTime(i128),
    /// Arrays.
    Array(Vec<Value>),
}
