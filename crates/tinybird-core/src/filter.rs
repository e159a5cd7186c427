//! Typed row filters for `DATASOURCES:READ` JWT scopes.
//!
//! A [`Filter`] is a SQL condition built from typed [`Column`] handles and Rust values: column names come from the
//! datasource declaration, values are checked against the column's type by the compiler ([`FilterValue`]) and rendered
//! as ClickHouse literals, strings escaped. The result is what Tinybird appends as `WHERE <filter>` (Tinybird's JWT docs, datasource filters).
//!
//! ```
//! use tinybird_core::filter::Column;
//!
//! // `#[derive(Datasource)]` generates these handles; here they are written by hand.
//! let user_id = Column::<u64>::new("user_id");
//! let country = Column::<String>::new("country");
//! let filter = user_id.eq(42).and(country.in_(["ES", "FR"]).or(country.eq("it's")));
//! assert_eq!(filter.as_sql(), r"user_id = 42 AND (country IN ('ES', 'FR') OR country = 'it\'s')");
//! ```

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::marker::PhantomData;

/// A typed handle on one datasource column, used to build filters. `#[derive(Datasource)]` generates a struct with
/// one public `Column<T>` field per column, `T` being the field's Rust type.
pub struct Column<T: ?Sized> {
    name: &'static str,
    _ty: PhantomData<fn() -> T>,
}

impl<T: ?Sized> Column<T> {
    /// A handle on the column named `name` (the wire name).
    pub const fn new(name: &'static str) -> Self {
        Column { name, _ty: PhantomData }
    }
    /// The column's wire name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<T: ?Sized> Clone for Column<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: ?Sized> Copy for Column<T> {}
impl<T: ?Sized> std::fmt::Debug for Column<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Column({})", self.name)
    }
}

/// A SQL boolean condition over a datasource's columns, safe to put in a JWT scope's `filter`.
///
/// Build it from [`Column`] methods (`eq`, `in_`, `lt`, …) and combine with [`and`](Self::and), [`or`](Self::or) and
/// `!` (not). Rendering adds parentheses where precedence needs them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    sql: String,
    precedence: Precedence,
}

/// How tightly a rendered condition binds, to know when it needs parentheses inside another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Precedence {
    Or,
    And,
    Atom,
}

impl Filter {
    fn atom(sql: String) -> Filter {
        Filter { sql, precedence: Precedence::Atom }
    }

    fn join(self, other: Filter, op: &str, precedence: Precedence) -> Filter {
        let mut sql = String::with_capacity(self.sql.len() + other.sql.len() + op.len() + 6);
        for (i, part) in [self, other].into_iter().enumerate() {
            if i == 1 {
                sql.push_str(op);
            }
            if part.precedence < precedence {
                let _ = write!(sql, "({})", part.sql);
            } else {
                sql.push_str(&part.sql);
            }
        }
        Filter { sql, precedence }
    }

    /// Both conditions hold.
    pub fn and(self, other: Filter) -> Filter {
        self.join(other, " AND ", Precedence::And)
    }

    /// Either condition holds.
    pub fn or(self, other: Filter) -> Filter {
        self.join(other, " OR ", Precedence::Or)
    }

    /// The rendered SQL condition.
    pub fn as_sql(&self) -> &str {
        &self.sql
    }

    /// The rendered SQL condition.
    pub fn into_sql(self) -> String {
        self.sql
    }
}

impl std::ops::Not for Filter {
    type Output = Filter;

    /// The condition does not hold: `NOT (…)`.
    fn not(self) -> Filter {
        Filter::atom(format!("NOT ({})", self.sql))
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql)
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Filter({:?})", self.sql)
    }
}

/// A Rust value that can be compared with a column whose Rust type is `T`, rendered as a ClickHouse literal.
///
/// Implemented for the column types themselves (`u64` for `Column<u64>`, …), for `&str` against `String` columns,
/// and for any of these against a `Column<Option<T>>`. Implement it for your own column types with care: the output
/// goes into SQL as is.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be compared with a column of type `{T}`",
    label = "a value of the column's own type is expected here",
    note = "filter values must have the Rust type of the datasource column (`&str` works for `String` columns)"
)]
pub trait FilterValue<T: ?Sized> {
    /// Appends this value as a SQL literal.
    fn write_sql(&self, out: &mut String);
}

macro_rules! display_literals {
    ($($ty:ty),*) => {$(
        impl FilterValue<$ty> for $ty {
            fn write_sql(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
display_literals!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, bool);

macro_rules! float_literals {
    ($($ty:ty),*) => {$(
        impl FilterValue<$ty> for $ty {
            fn write_sql(&self, out: &mut String) {
                // ClickHouse's spellings of the non-finite values; finite ones print without exponent in Rust.
                if self.is_nan() {
                    out.push_str("nan");
                } else if self.is_infinite() {
                    out.push_str(if *self > 0.0 { "inf" } else { "-inf" });
                } else {
                    let _ = write!(out, "{self}");
                }
            }
        }
    )*};
}
float_literals!(f32, f64);

macro_rules! string_literals {
    ($($ty:ty),*) => {$(
        impl FilterValue<String> for $ty {
            fn write_sql(&self, out: &mut String) {
                write_string_literal(self, out);
            }
        }
    )*};
}
string_literals!(String, &str, &String, Cow<'_, str>);

impl FilterValue<String> for char {
    fn write_sql(&self, out: &mut String) {
        write_string_literal(self.encode_utf8(&mut [0; 4]), out);
    }
}

impl FilterValue<chrono::DateTime<chrono::Utc>> for chrono::DateTime<chrono::Utc> {
    fn write_sql(&self, out: &mut String) {
        FilterValue::<chrono::NaiveDateTime>::write_sql(&self.naive_utc(), out);
    }
}

impl FilterValue<chrono::NaiveDateTime> for chrono::NaiveDateTime {
    /// `'YYYY-MM-DD hh:mm:ss'`, with the sub-second digits only when there are any.
    fn write_sql(&self, out: &mut String) {
        let text = if chrono::Timelike::nanosecond(self) == 0 {
            self.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            self.format("%Y-%m-%d %H:%M:%S%.f").to_string()
        };
        write_string_literal(&text, out);
    }
}

impl FilterValue<chrono::NaiveDate> for chrono::NaiveDate {
    fn write_sql(&self, out: &mut String) {
        write_string_literal(&self.format("%Y-%m-%d").to_string(), out);
    }
}

impl FilterValue<uuid::Uuid> for uuid::Uuid {
    fn write_sql(&self, out: &mut String) {
        let _ = write!(out, "'{}'", self.hyphenated());
    }
}

impl<const P: u8> FilterValue<crate::types::DateTime64<P>> for crate::types::DateTime64<P> {
    fn write_sql(&self, out: &mut String) {
        write_string_literal(&self.to_string(), out);
    }
}

impl FilterValue<crate::types::Decimal> for crate::types::Decimal {
    /// Quoted: ClickHouse converts the string to the column's Decimal type without going through a float.
    fn write_sql(&self, out: &mut String) {
        write_string_literal(self.as_str(), out);
    }
}

/// `&value` works wherever `value` does (`.eq(&user.id)`, `.in_(&ids)`); strings have their own impls above.
macro_rules! by_reference {
    ($($ty:ty),*) => {$(
        impl FilterValue<$ty> for &$ty {
            fn write_sql(&self, out: &mut String) {
                FilterValue::<$ty>::write_sql(*self, out);
            }
        }
    )*};
}
by_reference!(
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    bool,
    f32,
    f64,
    chrono::DateTime<chrono::Utc>,
    chrono::NaiveDateTime,
    chrono::NaiveDate,
    uuid::Uuid,
    crate::types::Decimal
);

impl<T, V: FilterValue<T>> FilterValue<Option<T>> for V {
    fn write_sql(&self, out: &mut String) {
        FilterValue::<T>::write_sql(self, out);
    }
}

/// A ClickHouse string literal: single quotes, with `\` escapes for the quote, the backslash and control characters.
fn write_string_literal(value: &str, out: &mut String) {
    out.reserve(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// Words a bare column name may not be, so they are quoted with backticks instead.
const RESERVED: &[&str] = &[
    "all", "and", "any", "array", "as", "asc", "between", "by", "case", "cast", "desc", "distinct", "else", "end",
    "exists", "false", "final", "format", "from", "global", "group", "having", "ilike", "in", "inner", "interval",
    "is", "join", "like", "limit", "not", "null", "offset", "on", "or", "order", "prewhere", "sample", "select",
    "settings", "table", "then", "true", "union", "using", "when", "where", "with",
];

/// The column name as SQL: bare when it is a plain identifier, otherwise in backticks with `\` escapes.
fn write_column(name: &str, out: &mut String) {
    let plain = tinybird_types::is_valid_name(name) && !RESERVED.iter().any(|w| w.eq_ignore_ascii_case(name));
    if plain {
        out.push_str(name);
        return;
    }
    out.push('`');
    for c in name.chars() {
        match c {
            '`' => out.push_str("\\`"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('`');
}

impl<T: ?Sized> Column<T> {
    fn compare(&self, op: &str, value: &dyn Fn(&mut String)) -> Filter {
        let mut sql = String::with_capacity(self.name.len() + op.len() + 16);
        write_column(self.name, &mut sql);
        sql.push_str(op);
        value(&mut sql);
        Filter::atom(sql)
    }

    fn membership<V: FilterValue<T>>(&self, values: impl IntoIterator<Item = V>, negated: bool) -> Filter {
        let mut list = String::new();
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                list.push_str(", ");
            }
            value.write_sql(&mut list);
        }
        if list.is_empty() {
            // `x IN ()` is not valid SQL; membership in nothing is simply false (and its negation true).
            return Filter::atom(if negated { "1 = 1" } else { "1 = 0" }.to_owned());
        }
        self.compare(if negated { " NOT IN " } else { " IN " }, &|sql| {
            let _ = write!(sql, "({list})");
        })
    }

    /// `column = value`.
    pub fn eq<V: FilterValue<T>>(&self, value: V) -> Filter {
        self.compare(" = ", &|sql| value.write_sql(sql))
    }

    /// `column != value`.
    pub fn ne<V: FilterValue<T>>(&self, value: V) -> Filter {
        self.compare(" != ", &|sql| value.write_sql(sql))
    }

    /// `column < value`.
    pub fn lt<V: FilterValue<T>>(&self, value: V) -> Filter {
        self.compare(" < ", &|sql| value.write_sql(sql))
    }

    /// `column <= value`.
    pub fn le<V: FilterValue<T>>(&self, value: V) -> Filter {
        self.compare(" <= ", &|sql| value.write_sql(sql))
    }

    /// `column > value`.
    pub fn gt<V: FilterValue<T>>(&self, value: V) -> Filter {
        self.compare(" > ", &|sql| value.write_sql(sql))
    }

    /// `column >= value`.
    pub fn ge<V: FilterValue<T>>(&self, value: V) -> Filter {
        self.compare(" >= ", &|sql| value.write_sql(sql))
    }

    /// `column IN (v1, v2, …)`; with no values, a condition that never holds.
    pub fn in_<V: FilterValue<T>>(&self, values: impl IntoIterator<Item = V>) -> Filter {
        self.membership(values, false)
    }

    /// `column NOT IN (v1, v2, …)`; with no values, a condition that always holds.
    pub fn not_in<V: FilterValue<T>>(&self, values: impl IntoIterator<Item = V>) -> Filter {
        self.membership(values, true)
    }
}

impl<T> Column<Option<T>> {
    /// `column IS NULL`.
    pub fn is_null(&self) -> Filter {
        self.compare(" IS NULL", &|_| {})
    }

    /// `column IS NOT NULL`.
    pub fn is_not_null(&self) -> Filter {
        self.compare(" IS NOT NULL", &|_| {})
    }
}

impl<T> Column<Vec<T>> {
    /// `has(column, value)`: the array column contains `value`.
    pub fn contains<V: FilterValue<T>>(&self, value: V) -> Filter {
        let mut sql = String::from("has(");
        write_column(self.name, &mut sql);
        sql.push_str(", ");
        value.write_sql(&mut sql);
        sql.push(')');
        Filter::atom(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_typed_comparisons() {
        let id = Column::<u64>::new("user_id");
        let score = Column::<f64>::new("score");
        let active = Column::<bool>::new("active");
        assert_eq!(id.eq(42).as_sql(), "user_id = 42");
        assert_eq!(id.ne(1).as_sql(), "user_id != 1");
        assert_eq!(score.ge(0.5).as_sql(), "score >= 0.5");
        assert_eq!(score.lt(f64::NAN).as_sql(), "score < nan");
        assert_eq!(score.lt(f64::NEG_INFINITY).as_sql(), "score < -inf");
        assert_eq!(score.gt(1e20).as_sql(), "score > 100000000000000000000");
        assert_eq!(active.eq(true).as_sql(), "active = true");
        assert_eq!(id.in_([1, 2, 3]).as_sql(), "user_id IN (1, 2, 3)");
        let ids = [4_u64, 5];
        assert_eq!(id.in_(ids.iter()).as_sql(), "user_id IN (4, 5)");
        let first = &ids[0];
        assert_eq!(id.eq(first).as_sql(), "user_id = 4");
        assert_eq!(id.not_in(Vec::<u64>::new()).as_sql(), "1 = 1");
        assert_eq!(id.in_(Vec::<u64>::new()).as_sql(), "1 = 0");
    }

    #[test]
    fn escapes_strings_per_clickhouse_rules() {
        let c = Column::<String>::new("country");
        assert_eq!(c.eq("ES").as_sql(), "country = 'ES'");
        assert_eq!(c.eq("x' OR 1=1 --").as_sql(), r"country = 'x\' OR 1=1 --'");
        assert_eq!(c.eq(r"back\slash").as_sql(), r"country = 'back\\slash'");
        assert_eq!(c.eq("a\nb\tc\0\u{7}").as_sql(), r"country = 'a\nb\tc\0\x07'");
        assert_eq!(c.eq(String::from("é")).as_sql(), "country = 'é'");
        assert_eq!(c.in_(["it's", "b"]).as_sql(), r"country IN ('it\'s', 'b')");
        // A quote preceded by a backslash must not close the literal.
        assert_eq!(c.eq(r"\'").as_sql(), r"country = '\\\''");
    }

    #[test]
    fn quotes_unusual_column_names() {
        assert_eq!(Column::<u8>::new("order").eq(1).as_sql(), "`order` = 1");
        assert_eq!(Column::<u8>::new("a b").eq(1).as_sql(), "`a b` = 1");
        assert_eq!(Column::<u8>::new("a`b").eq(1).as_sql(), r"`a\`b` = 1");
        assert_eq!(Column::<u8>::new("1st").eq(1).as_sql(), "`1st` = 1");
    }

    #[test]
    fn combines_with_precedence() {
        let a = Column::<u8>::new("a");
        let b = Column::<u8>::new("b");
        let c = Column::<u8>::new("c");
        assert_eq!(a.eq(1).and(b.eq(2)).and(c.eq(3)).as_sql(), "a = 1 AND b = 2 AND c = 3");
        assert_eq!(a.eq(1).or(b.eq(2)).and(c.eq(3)).as_sql(), "(a = 1 OR b = 2) AND c = 3");
        assert_eq!(a.eq(1).and(b.eq(2)).or(c.eq(3)).as_sql(), "a = 1 AND b = 2 OR c = 3");
        assert_eq!((!a.eq(1).or(b.eq(2))).as_sql(), "NOT (a = 1 OR b = 2)");
    }

    #[test]
    fn renders_dates_nullables_and_arrays() {
        use chrono::{NaiveDate, TimeZone, Utc};
        let ts = Column::<chrono::DateTime<Utc>>::new("timestamp");
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 12, 30, 0).unwrap();
        assert_eq!(ts.ge(at).as_sql(), "timestamp >= '2024-05-01 12:30:00'");
        let precise = at + chrono::Duration::milliseconds(250);
        assert_eq!(ts.ge(precise).as_sql(), "timestamp >= '2024-05-01 12:30:00.250'");
        let day = Column::<NaiveDate>::new("day");
        assert_eq!(day.eq(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()).as_sql(), "day = '2024-02-29'");
        let org = Column::<Option<String>>::new("org");
        assert_eq!(org.eq("acme").as_sql(), "org = 'acme'");
        assert_eq!(org.is_null().as_sql(), "org IS NULL");
        assert_eq!(org.is_not_null().as_sql(), "org IS NOT NULL");
        let n = Column::<Option<u32>>::new("n");
        assert_eq!(n.in_([1, 2]).as_sql(), "n IN (1, 2)");
        let tags = Column::<Vec<String>>::new("tags");
        assert_eq!(tags.contains("a'b").as_sql(), r"has(tags, 'a\'b')");
        let id = Column::<uuid::Uuid>::new("id");
        assert_eq!(id.eq(uuid::Uuid::nil()).as_sql(), "id = '00000000-0000-0000-0000-000000000000'");
    }
}
