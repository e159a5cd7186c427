//! A direct reader for the JSON Tinybird sends (`{"meta":[…],"data":[{…},…],…}`), for row types the derives
//! generate it for. It is an accelerator, never a second source of truth:
//!
//! - `meta` gives the key order of every row, so each key is compared as bytes instead of being parsed and looked up.
//! - Values are read in place: numbers from their digits, strings sliced without a copy until the owned `String`.
//! - Anything it does not read exactly as serde would (an escape it cannot slice, a number in an unusual form, a
//!   missing or extra key, a type it has no reader for) makes it give up (`None`), and the caller decodes the whole
//!   body again with serde_json. So the result is always what serde gives, or serde's own error.
//!
//! The derives (`#[derive(Datasource)]`, `#[derive(Row)]`, the inline `output(…)` of `#[derive(Endpoint)]`) generate
//! a [`RowDecoder`] for structs whose serde attributes it understands; `Row::__row_decoder` is `None` otherwise.
//! Not a public API: its items are reached through `tinybird::__private`.

use std::marker::PhantomData;

use serde::de::{DeserializeOwned, IgnoredAny};

use crate::client::query::Envelope;
use crate::client::{ColumnMeta, Statistics};

/// A position in a JSON text.
pub struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    #[inline]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skips whitespace, then consumes `b` if it is next.
    #[inline]
    pub fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// [`eat`](Self::eat), as an `Option`.
    #[inline]
    pub fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    /// The text of a string without escapes, quotes excluded; `None` (position unchanged) for anything else.
    #[inline]
    pub fn plain_str(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let b = self.bytes();
        if b.get(self.pos) != Some(&b'"') {
            return None;
        }
        let start = self.pos + 1;
        let mut i = start;
        while let Some(&c) = b.get(i) {
            if c == b'"' {
                self.pos = i + 1;
                // Both ends are ASCII quotes, so the slice is on character boundaries.
                return self.text.get(start..i);
            }
            if c == b'\\' || c < 0x20 {
                return None;
            }
            i += 1;
        }
        None
    }

    /// A JSON string as an owned `String`, escapes included (read by serde_json, which the escapes need).
    #[inline]
    pub fn string(&mut self) -> Option<String> {
        let save = self.pos;
        if let Some(s) = self.plain_str() {
            return Some(s.to_owned());
        }
        self.pos = save;
        if self.peek_after_ws() == Some(b'"') { self.serde() } else { None }
    }

    /// The next byte after whitespace.
    pub fn peek_after_ws(&mut self) -> Option<u8> {
        self.skip_ws();
        self.peek()
    }

    /// Consumes `null`.
    #[inline]
    pub fn null(&mut self) -> bool {
        self.skip_ws();
        if self.bytes()[self.pos..].starts_with(b"null") {
            self.pos += 4;
            true
        } else {
            false
        }
    }

    /// The text of a JSON number (strict JSON grammar) and whether it is an integer (no fraction, no exponent).
    #[inline]
    pub fn number(&mut self) -> Option<(&'a str, bool)> {
        self.skip_ws();
        let b = self.bytes();
        let start = self.pos;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = b.get(i) {
                    i += 1;
                }
            }
            _ => return None,
        }
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            integer = false;
            i += 1;
            let digits = i;
            while let Some(b'0'..=b'9') = b.get(i) {
                i += 1;
            }
            if i == digits {
                return None;
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            integer = false;
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            let digits = i;
            while let Some(b'0'..=b'9') = b.get(i) {
                i += 1;
            }
            if i == digits {
                return None;
            }
        }
        self.pos = i;
        Some((&self.text[start..i], integer))
    }

    /// An integer number, as serde_json reads it into `T` (no fraction or exponent, in range).
    #[inline]
    fn int<T: TryFrom<u64> + TryFrom<i64>>(&mut self) -> Option<T> {
        self.skip_ws();
        let b = self.bytes();
        // The common case, a short non-negative integer, is summed while it is scanned.
        let mut i = self.pos;
        let mut v: u64 = 0;
        while let Some(&d @ b'0'..=b'9') = b.get(i) {
            v = v.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            i += 1;
        }
        let len = i - self.pos;
        let leading_zero = len > 1 && b[self.pos] == b'0';
        if (1..=19).contains(&len) && !leading_zero && !matches!(b.get(i), Some(b'.' | b'e' | b'E')) {
            self.pos = i;
            return T::try_from(v).ok();
        }
        match self.number()? {
            (text, true) => int_text(text),
            _ => None,
        }
    }

    /// A number read into `f64` as serde_json reads it: integers through `u64`/`i64` (so `-0` is `0`), others
    /// parsed exactly; out-of-range numbers are serde's to report.
    #[inline]
    fn float(&mut self) -> Option<f64> {
        let (text, integer) = self.number()?;
        float_text(text, integer)
    }

    /// `true` or `false`.
    #[inline]
    pub fn bool_literal(&mut self) -> Option<bool> {
        bool_literal(self)
    }

    /// `[a, b, …]` with each element read by `item`.
    #[inline]
    pub fn array<T>(&mut self, item: impl FnMut(&mut Cursor<'_>) -> Option<T>) -> Option<Vec<T>> {
        array(self, item)
    }

    /// An object, `{` to `}`: `entry` reads the value of each key in turn. A key with escapes gives up.
    pub fn entries(&mut self, mut entry: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.plain_str()?;
            self.expect(b':')?;
            entry(self, key)?;
            if self.eat(b'}') {
                return Some(());
            }
            self.expect(b',')?;
        }
    }

    /// Only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos == self.text.len()
    }

    /// Any JSON value, skipped (read by serde_json).
    pub fn skip_value(&mut self) -> Option<()> {
        self.serde::<IgnoredAny>().map(|_| ())
    }

    /// One value read by serde_json at this position.
    fn serde<T: DeserializeOwned>(&mut self) -> Option<T> {
        self.skip_ws();
        let rest = self.text.get(self.pos..)?;
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        let value = values.next()?.ok()?;
        self.pos += values.byte_offset();
        Some(value)
    }

    /// A row: `{` then the plan's keys in order, each read by `field` (or skipped), then `}`.
    #[inline]
    pub fn object(&mut self, plan: &Plan, mut field: impl FnMut(&mut Self, usize) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        for (i, step) in plan.steps.iter().enumerate() {
            if i > 0 {
                self.expect(b',')?;
            }
            self.skip_ws();
            if !starts_with(&self.bytes()[self.pos..], &step.key) {
                return None;
            }
            self.pos += step.key.len();
            self.expect(b':')?;
            match step.field {
                Some(f) => field(self, f)?,
                None => self.skip_value()?,
            }
        }
        self.expect(b'}')
    }
}

/// `hay.starts_with(prefix)` for short prefixes, eight bytes at a time rather than through `memcmp`.
#[inline]
fn starts_with(hay: &[u8], prefix: &[u8]) -> bool {
    let Some(hay) = hay.get(..prefix.len()) else { return false };
    let mut a = hay.chunks_exact(8);
    let mut b = prefix.chunks_exact(8);
    for (x, y) in (&mut a).zip(&mut b) {
        if u64::from_ne_bytes(x.try_into().unwrap_or_default()) != u64::from_ne_bytes(y.try_into().unwrap_or_default())
        {
            return false;
        }
    }
    a.remainder() == b.remainder()
}

/// The integer in `text` (a JSON integer) as serde_json hands it to a visitor, converted to `T`.
pub fn int_text<T: TryFrom<u64> + TryFrom<i64>>(text: &str) -> Option<T> {
    if text == "-0" {
        // serde_json reads `-0` as the float -0.0, which no integer type accepts.
        None
    } else if text.starts_with('-') {
        T::try_from(text.parse::<i64>().ok()?).ok()
    } else {
        T::try_from(text.parse::<u64>().ok()?).ok()
    }
}

/// The number in `text` (a JSON number) as serde_json reads it into `f64`.
pub fn float_text(text: &str, integer: bool) -> Option<f64> {
    if text == "-0" {
        return Some(-0.0);
    }
    if integer {
        // serde_json hands integers that fit 64 bits to the visitor as integers, which casts them.
        if text.starts_with('-') {
            if let Ok(v) = text.parse::<i64>() {
                return Some(v as f64);
            }
        } else if let Ok(v) = text.parse::<u64>() {
            return Some(v as f64);
        }
    }
    let v: f64 = text.parse().ok()?;
    // serde_json refuses numbers beyond f64's range; leave that error to it.
    v.is_finite().then_some(v)
}

/// How to read the rows of one response: for each key of a row, in `meta` order, the field it fills (or `None` to
/// skip an extra column).
pub struct Plan {
    steps: Vec<Step>,
}

struct Step {
    /// `"name"`, quotes included.
    key: Vec<u8>,
    field: Option<usize>,
}

/// What a derive generates for a row type: its fields' wire names and a reader for one row.
pub struct RowDecoder<T> {
    fields: &'static [&'static str],
    deny_unknown_fields: bool,
    read: fn(&mut Cursor<'_>, &Plan) -> Option<T>,
}

impl<T> RowDecoder<T> {
    /// `fields`: the wire names, in the order `read` numbers them.
    pub const fn new(
        fields: &'static [&'static str],
        deny_unknown_fields: bool,
        read: fn(&mut Cursor<'_>, &Plan) -> Option<T>,
    ) -> Self {
        RowDecoder { fields, deny_unknown_fields, read }
    }

    /// The plan for rows with `meta`'s columns: every field must be a column, each column at most once.
    fn plan(&self, meta: &[ColumnMeta]) -> Option<Plan> {
        self.plan_for(meta.iter().map(|c| c.name.as_str()))
    }

    /// The plan for rows with these keys, in this order.
    fn plan_for<'n>(&self, names: impl ExactSizeIterator<Item = &'n str>) -> Option<Plan> {
        let mut seen = vec![false; self.fields.len()];
        let mut steps = Vec::with_capacity(names.len());
        for name in names {
            if name.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20) {
                return None;
            }
            let field = self.fields.iter().position(|f| *f == name);
            match field {
                Some(f) if seen[f] => return None,
                Some(f) => seen[f] = true,
                None if self.deny_unknown_fields => return None,
                None => {}
            }
            let mut key = Vec::with_capacity(name.len() + 2);
            key.push(b'"');
            key.extend_from_slice(name.as_bytes());
            key.push(b'"');
            steps.push(Step { key, field });
        }
        seen.iter().all(|s| *s).then_some(Plan { steps })
    }

    /// The plan for NDJSON rows shaped like `line` (`JSONEachRow`, which has no `meta`): its keys, in its order.
    pub(crate) fn plan_for_line(&self, line: &str) -> Option<Plan> {
        let mut names = Vec::new();
        Cursor::new(line).entries(|c, key| {
            names.push(key);
            c.skip_value()
        })?;
        self.plan_for(names.into_iter())
    }

    /// One NDJSON row read with `plan`, or `None`: then serde reads the line.
    pub(crate) fn read_line(&self, line: &str, plan: &Plan) -> Option<T> {
        let mut c = Cursor::new(line);
        let row = (self.read)(&mut c, plan)?;
        c.at_end().then_some(row)
    }
}

/// Reads a whole response, or `None` when anything is not exactly as expected.
pub(crate) fn decode<T>(text: &str, decoder: &RowDecoder<T>) -> Option<Envelope<T>> {
    let mut c = Cursor::new(text);
    let mut meta: Option<Vec<ColumnMeta>> = None;
    let mut data: Option<Vec<T>> = None;
    let mut rows = None;
    let mut before = None;
    let mut totals: Option<Option<T>> = None;
    let mut statistics = None;
    c.entries(|c, key| {
        // A repeated key is an error for serde; leave it to serde.
        match key {
            "meta" if meta.is_none() => meta = Some(c.serde()?),
            "data" if data.is_none() => {
                let plan = decoder.plan(meta.as_deref()?)?;
                data = Some(rows_of(c, &plan, decoder.read, text.len())?);
            }
            "rows" if rows.is_none() => rows = Some(c.serde::<Option<u64>>()?),
            "rows_before_limit_at_least" if before.is_none() => before = Some(c.serde::<Option<u64>>()?),
            "statistics" if statistics.is_none() => statistics = Some(c.serde::<Option<Statistics>>()?),
            "totals" if totals.is_none() => {
                let plan = decoder.plan(meta.as_deref()?)?;
                totals = Some(Some((decoder.read)(c, &plan)?));
            }
            "meta" | "data" | "rows" | "rows_before_limit_at_least" | "statistics" | "totals" => return None,
            _ => c.skip_value()?,
        }
        Some(())
    })?;
    if !c.at_end() {
        return None;
    }
    Some(Envelope {
        meta: meta.unwrap_or_default(),
        data: data?,
        rows: rows.flatten(),
        rows_before_limit_at_least: before.flatten(),
        totals: totals.flatten(),
        statistics: statistics.flatten(),
    })
}

fn rows_of<T>(
    c: &mut Cursor<'_>,
    plan: &Plan,
    read: fn(&mut Cursor<'_>, &Plan) -> Option<T>,
    body_len: usize,
) -> Option<Vec<T>> {
    c.expect(b'[')?;
    let mut out = Vec::new();
    if c.eat(b']') {
        return Some(out);
    }
    let start = c.pos;
    loop {
        out.push(read(c, plan)?);
        if out.len() == 1 {
            // Reserve for the rest of the array from the first row's size, rather than doubling twenty times, but
            // never more memory than a few times the body (a row type much larger than its JSON).
            let estimate = (body_len - c.pos) / (c.pos - start).max(1);
            let bound = body_len.saturating_mul(4) / size_of::<T>().max(1);
            out.reserve(estimate.min(bound));
        }
        if c.eat(b']') {
            return Some(out);
        }
        c.expect(b',')?;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Readers for field types

/// A type read exactly as its own `Deserialize` reads it from serde_json.
pub trait FastPlain: Sized {
    /// The value at the cursor, or `None` to leave the body to serde.
    fn read_plain(c: &mut Cursor<'_>) -> Option<Self>;
}

macro_rules! plain_ints {
    ($($t:ty),*) => {$(
        impl FastPlain for $t {
            #[inline]
            fn read_plain(c: &mut Cursor<'_>) -> Option<Self> {
                c.int()
            }
        }
    )*};
}
plain_ints!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl FastPlain for f64 {
    #[inline]
    fn read_plain(c: &mut Cursor<'_>) -> Option<Self> {
        c.float()
    }
}

impl FastPlain for f32 {
    #[inline]
    fn read_plain(c: &mut Cursor<'_>) -> Option<Self> {
        // serde_json reads an f64 and narrows it.
        c.float().map(|v| v as f32)
    }
}

impl FastPlain for bool {
    #[inline]
    fn read_plain(c: &mut Cursor<'_>) -> Option<Self> {
        bool_literal(c)
    }
}

fn bool_literal(c: &mut Cursor<'_>) -> Option<bool> {
    c.skip_ws();
    let rest = &c.bytes()[c.pos..];
    if rest.starts_with(b"true") {
        c.pos += 4;
        Some(true)
    } else if rest.starts_with(b"false") {
        c.pos += 5;
        Some(false)
    } else {
        None
    }
}

impl FastPlain for String {
    #[inline]
    fn read_plain(c: &mut Cursor<'_>) -> Option<Self> {
        c.string()
    }
}

impl<T: FastPlain> FastPlain for Option<T> {
    #[inline]
    fn read_plain(c: &mut Cursor<'_>) -> Option<Self> {
        if c.null() { Some(None) } else { T::read_plain(c).map(Some) }
    }
}

impl<T: FastPlain> FastPlain for Vec<T> {
    fn read_plain(c: &mut Cursor<'_>) -> Option<Self> {
        array(c, T::read_plain)
    }
}

/// `[a, b, …]` with each element read by `item`.
pub(crate) fn array<T>(c: &mut Cursor<'_>, mut item: impl FnMut(&mut Cursor<'_>) -> Option<T>) -> Option<Vec<T>> {
    c.expect(b'[')?;
    let mut out = Vec::new();
    if c.eat(b']') {
        return Some(out);
    }
    loop {
        out.push(item(c)?);
        if c.eat(b']') {
            return Some(out);
        }
        c.expect(b',')?;
    }
}

/// What `tinybird::types::wire` reads, for the types it reads (see [`WireFormat::read_fast`](crate::types::wire::WireFormat)).
pub(crate) mod wire {
    use super::Cursor;

    /// An integer as the wire module reads it: a JSON integer, or a string holding one (one leading `+` allowed).
    #[inline]
    pub(crate) fn int<T: TryFrom<u64> + TryFrom<i64> + std::str::FromStr>(c: &mut Cursor<'_>) -> Option<T> {
        match c.peek_after_ws()? {
            b'"' => {
                let text = c.plain_str()?;
                text.strip_prefix('+').unwrap_or(text).parse().ok()
            }
            _ => c.int(),
        }
    }

    /// A float as the wire module reads it: a number, `null` (NaN), or `nan`/`inf`/… as a string.
    #[inline]
    pub(crate) fn float(c: &mut Cursor<'_>) -> Option<f64> {
        match c.peek_after_ws()? {
            b'n' => c.null().then_some(f64::NAN),
            b'"' => crate::types::wire::parse_float(c.plain_str()?),
            _ => c.float(),
        }
    }

    /// `true`/`false`, `0`/`1`, or those as strings.
    #[inline]
    pub(crate) fn bool(c: &mut Cursor<'_>) -> Option<bool> {
        match c.peek_after_ws()? {
            b'"' => match c.plain_str()? {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            b't' | b'f' => super::bool_literal(c),
            _ => match c.int::<u64>()? {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            },
        }
    }

    /// The text of a string without escapes.
    #[inline]
    pub(crate) fn text<'a>(c: &mut Cursor<'a>) -> Option<&'a str> {
        c.plain_str()
    }

    /// An owned string.
    #[inline]
    pub(crate) fn string(c: &mut Cursor<'_>) -> Option<String> {
        c.string()
    }

    /// `null`.
    #[inline]
    pub(crate) fn null(c: &mut Cursor<'_>) -> bool {
        c.null()
    }

    pub(crate) use super::array;
}

// ---------------------------------------------------------------------------------------------------------------
// Choosing a reader per field in generated code

/// Stands for a field type in generated code, which calls `(&&Probe::<T>::NEW).plain(c)` (or `.wire(c)`): the
/// reader of `T` when it has one, else a reader that gives up. (Method lookup tries `&&Probe` before `&Probe`.)
pub struct Probe<T>(PhantomData<T>);

impl<T> Probe<T> {
    /// The probe.
    pub const NEW: Self = Probe(PhantomData);
}

/// `T` has a plain reader.
pub trait ViaPlain<T> {
    /// Reads a `T`.
    fn plain(&self, c: &mut Cursor<'_>) -> Option<T>;
}

impl<T: FastPlain> ViaPlain<T> for &Probe<T> {
    #[inline]
    fn plain(&self, c: &mut Cursor<'_>) -> Option<T> {
        T::read_plain(c)
    }
}

/// `T` has no plain reader.
pub trait NoPlain<T> {
    /// Gives up.
    fn plain(&self, c: &mut Cursor<'_>) -> Option<T>;
}

impl<T> NoPlain<T> for Probe<T> {
    #[inline]
    fn plain(&self, _: &mut Cursor<'_>) -> Option<T> {
        None
    }
}

/// `T` is read through `tinybird::types::wire`.
pub trait ViaWire<T> {
    /// Reads a `T`.
    fn wire(&self, c: &mut Cursor<'_>) -> Option<T>;
}

impl<T: crate::types::wire::WireFormat> ViaWire<T> for &Probe<T> {
    #[inline]
    fn wire(&self, c: &mut Cursor<'_>) -> Option<T> {
        T::read_fast(c)
    }
}

/// `T` is not a wire type.
pub trait NoWire<T> {
    /// Gives up.
    fn wire(&self, c: &mut Cursor<'_>) -> Option<T>;
}

impl<T> NoWire<T> for Probe<T> {
    #[inline]
    fn wire(&self, _: &mut Cursor<'_>) -> Option<T> {
        None
    }
}

#[cfg(test)]
mod tests {
    //! The direct reader against serde on the same bodies: random envelopes over every supported field type, with
    //! valid and invalid values, odd whitespace, escapes, reordered, missing, extra and repeated keys. Whatever the
    //! body, the two must give the same rows or the same error; and the direct reader must take the typical body.
    use super::*;
    use crate::client::QueryResponse;
    use crate::row::{Row, RowColumn};

    macro_rules! twin_rows {
        ($($body:tt)*) => {
            mod fast {
                use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
                #[derive(Debug, serde::Deserialize, tinybird_macros::Row)]
                #[allow(dead_code)] // compared through Debug
                #[tinybird(crate = "::tinybird_core")]
                pub(super) struct R { $($body)* }
            }
            mod slow {
                use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
                #[derive(Debug, serde::Deserialize)]
                #[allow(dead_code)] // compared through Debug
                pub(super) struct R { $($body)* }
            }
        };
    }

    twin_rows! {
        #[serde(with = "tinybird_core::types::wire")]
        pub at: NaiveDateTime,
        #[serde(with = "tinybird_core::types::wire")]
        pub day: NaiveDate,
        #[serde(with = "tinybird_core::types::wire")]
        pub big: u64,
        #[serde(with = "tinybird_core::types::wire")]
        pub ratio: f64,
        #[serde(with = "tinybird_core::types::wire")]
        pub maybe: Option<i32>,
        #[serde(with = "tinybird_core::types::wire")]
        pub flag: bool,
        #[serde(with = "tinybird_core::types::wire")]
        pub tags: Vec<String>,
        #[serde(with = "tinybird_core::types::wire")]
        pub utc: DateTime<Utc>,
        #[serde(with = "tinybird_core::types::wire")]
        pub f: f32,
        pub n: i64,
        pub u: u8,
        pub x: f64,
        pub s: String,
        pub o: Option<String>,
        pub v: Vec<u32>,
        pub b: bool,
        #[serde(rename = "renamed")]
        pub r: u16,
    }

    impl Row for slow::R {
        fn columns() -> Vec<RowColumn> {
            fast::R::columns()
        }
    }

    /// Column name, and value texts: mostly valid, some not.
    const FIELDS: &[(&str, &[&str])] = &[
        (
            "at",
            &[
                r#""2024-01-02 03:04:05""#,
                r#""2024-01-02 03:04:05.123""#,
                r#""1999-12-31 23:59:59.999999999""#,
                r#""2024-01-02T03:04:05""#,
                r#"" 2024-01-02 03:04:05 ""#,
                r#""2024-02-30 00:00:00""#,
                "1700000000",
                "-1",
                r#""2024-01-02 03:04:0\u0035""#,
                "null",
                r#""x""#,
            ],
        ),
        (
            "day",
            &[
                r#""2024-01-02""#,
                r#""2024-02-29""#,
                r#"" 2024-01-02""#,
                r#""2024-1-2""#,
                r#""2023-02-29""#,
                "19000",
                "null",
            ],
        ),
        (
            "big",
            &[
                "0",
                "7",
                "18446744073709551615",
                r#""18446744073709551615""#,
                "18446744073709551616",
                r#""+5""#,
                r#""-1""#,
                "-0",
                "1.0",
                "1e3",
                r#""1\u0032""#,
                "null",
                "007",
                r#""""#,
                "-5",
            ],
        ),
        (
            "ratio",
            &[
                "0",
                "-0",
                "1.5",
                "-2.5e-3",
                "1E+2",
                "1e400",
                "null",
                r#""nan""#,
                r#""inf""#,
                r#""-inf""#,
                r#""1.5""#,
                "123456789012345678901234567890",
                "0.1",
                "2.2250738585072014e-308",
                "5e-324",
                "true",
                "9007199254740993",
                "-9223372036854775809",
                "1.",
                ".5",
                "-",
            ],
        ),
        ("maybe", &["null", "5", r#""6""#, "-2147483648", "2147483648", "nul", "-0", "1.5"]),
        ("flag", &["true", "false", "0", "1", "2", r#""true""#, r#""0""#, r#""yes""#, "-0", "tru"]),
        (
            "tags",
            &[
                "[]",
                r#"["a","b"]"#,
                r#"[ "a" , "\"q\"" ]"#,
                r#"["\u00e9\ud83d\ude00"]"#,
                r#"["é"]"#,
                "[1]",
                "[",
                r#"["a",]"#,
                "null",
            ],
        ),
        ("utc", &[r#""2024-01-02 03:04:05""#, r#""2024-01-02 03:04:05+02:00""#, "0", r#""bad""#]),
        ("f", &["1.1", "3.4028235e38", "3.5e38", "null", r#""inf""#, "16777217"]),
        (
            "n",
            &[
                "-9223372036854775808",
                "9223372036854775807",
                "9223372036854775808",
                "-0",
                "0",
                "42",
                r#""5""#,
                "1.0",
                "-12",
            ],
        ),
        ("u", &["255", "0", "256", "-1", "3"]),
        (
            "x",
            &[
                "1",
                "-0",
                "0.30000000000000004",
                "1e400",
                "null",
                r#""1""#,
                "17976931348623157e292",
                "1e-400",
                "4.9406564584124654e-324",
            ],
        ),
        (
            "s",
            &[
                r#""plain""#,
                r#""""#,
                r#""with \"escape\"""#,
                r#""\u00e9\ud83d\ude00""#,
                r#""tab\there""#,
                "\"raw\u{1}\"",
                r#""é ü""#,
                r#""\/slash""#,
                "null",
                "5",
                r#""\ud800""#,
                r#""bad \x""#,
            ],
        ),
        ("o", &["null", r#""x""#, r#""\n""#, "1"]),
        ("v", &["[]", "[1,2,3]", "[ 1 , 2 ]", "[-1]", "[1.5]", "null", "[4294967296]"]),
        ("b", &["true", "false", "1"]),
        ("renamed", &["65535", "0", "65536"]),
    ];

    const TYPES: &[&str] = &[
        "DateTime",
        "Date",
        "UInt64",
        "Float64",
        "Nullable(Int32)",
        "Bool",
        "Array(String)",
        "DateTime('UTC')",
        "Float32",
        "Int64",
        "UInt8",
        "Float64",
        "String",
        "Nullable(String)",
        "Array(UInt32)",
        "Bool",
        "UInt16",
    ];

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    /// Whitespace JSON allows, sometimes, in odd bodies.
    fn ws(rng: &mut Rng, out: &mut String, odd: bool) {
        if odd && rng.chance(5) {
            out.push_str([" ", "\n", "\t", "\r\n  "][rng.below(4)]);
        }
    }

    /// One body; unless `odd`, every value is the first (valid) choice and the layout is regular.
    fn body(rng: &mut Rng, odd: bool) -> String {
        let mut cols: Vec<usize> = (0..FIELDS.len()).collect();
        if odd && rng.chance(20) {
            let (i, j) = (rng.below(cols.len()), rng.below(cols.len()));
            cols.swap(i, j);
        }
        let extra = odd && rng.chance(10);
        let mut out = String::from("{");
        let mut meta = String::from(r#""meta":["#);
        for (k, &c) in cols.iter().enumerate() {
            if k > 0 {
                meta.push(',');
            }
            meta.push_str(&format!(r#"{{"name":"{}","type":"{}"}}"#, FIELDS[c].0, TYPES[c]));
        }
        if extra {
            meta.push_str(r#",{"name":"extra","type":"String"}"#);
        }
        meta.push(']');
        let mut data = String::from(r#""data":["#);
        let rows = rng.below(6);
        let mut first_row = None;
        for r in 0..rows {
            if r > 0 {
                data.push(',');
            }
            ws(rng, &mut data, odd);
            let start = data.len();
            data.push('{');
            let mut keys: Vec<Option<usize>> = cols.iter().map(|&c| Some(c)).collect();
            if extra {
                keys.push(None);
            }
            if odd && rng.chance(3) {
                let (i, j) = (rng.below(keys.len()), rng.below(keys.len()));
                keys.swap(i, j);
            }
            if odd && rng.chance(3) {
                keys.remove(rng.below(keys.len()));
            }
            if odd && rng.chance(2) {
                let k = keys[rng.below(keys.len())];
                keys.push(k);
            }
            for (k, key) in keys.iter().enumerate() {
                if k > 0 {
                    ws(rng, &mut data, odd);
                    data.push(',');
                }
                ws(rng, &mut data, odd);
                let (name, values) = match key {
                    Some(c) => FIELDS[*c],
                    None => ("extra", &[r#""e""#, r#"{"deep":[1,{"x":null}]}"#, "1e5"][..]),
                };
                data.push_str(&format!(r#""{name}""#));
                ws(rng, &mut data, odd);
                data.push(':');
                ws(rng, &mut data, odd);
                let v = if odd && rng.chance(15) { values[rng.below(values.len())] } else { values[0] };
                data.push_str(v);
                ws(rng, &mut data, odd);
            }
            data.push('}');
            if r == 0 {
                first_row = Some(data[start..].to_string());
            }
        }
        data.push(']');
        let mut parts = vec![
            meta,
            data,
            format!(r#""rows":{rows}"#),
            r#""statistics":{"elapsed":0.001,"rows_read":10,"bytes_read":100}"#.to_string(),
        ];
        // A `WITH TOTALS` row, shaped like the rows.
        if let Some(row) = first_row.filter(|_| rng.chance(3)) {
            parts.push(format!(r#""totals":{row}"#));
        }
        if odd && rng.chance(10) {
            parts.push(r#""rows_before_limit_at_least":null"#.to_string());
        }
        if odd && rng.chance(10) {
            parts.push(r#""other":[1,"two",{"three":3}]"#.to_string());
        }
        if odd && rng.chance(10) {
            let i = rng.below(parts.len());
            let j = rng.below(parts.len());
            parts.swap(i, j);
        }
        if odd && rng.chance(3) {
            let i = rng.below(parts.len());
            parts.push(parts[i].clone());
        }
        for (k, p) in parts.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            ws(rng, &mut out, odd);
            out.push_str(p);
            ws(rng, &mut out, odd);
        }
        out.push('}');
        if odd && rng.chance(2) {
            out.push_str(["x", " ", "}", "\n"][rng.below(4)]);
        }
        out
    }

    fn both(text: &str) -> (String, String) {
        let fast = QueryResponse::<fast::R>::from_slice(text.as_bytes());
        let slow = QueryResponse::<slow::R>::from_slice(text.as_bytes());
        let show = |r: Result<String, crate::error::Error>| match r {
            Ok(s) => s,
            Err(e) => format!("error {:?}: {}", e.kind(), e).replace("fast::R", "R").replace("slow::R", "R"),
        };
        (
            show(fast.map(|r| {
                let (before, totals) = (r.rows_before_limit_at_least, &r.totals);
                format!("{:?} {:?} {} {before:?} {totals:?} {:?}", r.data, r.meta, r.rows, r.statistics)
            })),
            show(slow.map(|r| {
                let (before, totals) = (r.rows_before_limit_at_least, &r.totals);
                format!("{:?} {:?} {} {before:?} {totals:?} {:?}", r.data, r.meta, r.rows, r.statistics)
            })),
        )
    }

    #[test]
    fn agrees_with_serde_on_random_bodies() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let decoder = <fast::R as Row>::__row_decoder().expect("the derive generates a reader");
        let (mut direct, mut ok, mut total) = (0, 0, 0);
        for i in 0..6000 {
            let text = body(&mut rng, i % 3 != 0);
            let (fast, slow) = both(&text);
            assert_eq!(fast, slow, "body: {text}");
            total += 1;
            if !slow.starts_with("error") {
                ok += 1;
            }
            if decode(&text, &decoder).is_some() {
                direct += 1;
            }
        }
        eprintln!("{total} bodies: {ok} decoded, {direct} read directly");
        // The regular third is all taken directly; the odd bodies often are too, the rest fall back.
        assert!(direct >= total / 3, "only {direct} of {total} bodies were read directly");
        assert!(ok > direct / 2 && ok < total, "{ok} of {total} decoded: the generator should make both kinds");
    }

    #[test]
    fn every_value_alone_agrees_with_serde() {
        let decoder = <fast::R as Row>::__row_decoder().unwrap();
        let meta: Vec<String> =
            FIELDS.iter().zip(TYPES).map(|(f, t)| format!(r#"{{"name":"{}","type":"{t}"}}"#, f.0)).collect();
        let (mut direct, mut total) = (0, 0);
        for (target, (_, values)) in FIELDS.iter().enumerate() {
            for value in *values {
                let row: Vec<String> = FIELDS
                    .iter()
                    .enumerate()
                    .map(|(i, (name, vals))| format!(r#""{name}":{}"#, if i == target { value } else { vals[0] }))
                    .collect();
                let row = format!("{{{}}}", row.join(","));
                let text = format!(r#"{{"meta":[{}],"data":[{row},{row}],"rows":2}}"#, meta.join(","));
                let (fast, slow) = both(&text);
                assert_eq!(fast, slow, "{} = {value}", FIELDS[target].0);
                total += 1;
                direct += usize::from(decode(&text, &decoder).is_some());
            }
        }
        assert!(direct * 2 > total, "{direct} of {total} read directly");
    }

    #[test]
    fn ndjson_lines_agree_with_serde() {
        let decoder = <fast::R as Row>::__row_decoder().unwrap();
        let line = |target: usize, value: &str| -> String {
            let fields: Vec<String> = FIELDS
                .iter()
                .enumerate()
                .map(|(i, (name, vals))| format!(r#""{name}":{}"#, if i == target { value } else { vals[0] }))
                .collect();
            format!("{{{}}}", fields.join(","))
        };
        let regular = line(usize::MAX, "");
        let plan = decoder.plan_for_line(&regular).expect("a plan from the first line's keys");
        assert!(decoder.read_line(&regular, &plan).is_some());
        assert!(decoder.read_line(&format!("{regular} x"), &plan).is_none(), "trailing characters");
        assert!(decoder.plan_for_line(r#"{"at":"2024-01-02 03:04:05"}"#).is_none(), "fields missing");
        let (mut direct, mut total) = (0, 0);
        for (target, (_, values)) in FIELDS.iter().enumerate() {
            for value in *values {
                let text = line(target, value);
                let slow = serde_json::from_str::<slow::R>(&text);
                total += 1;
                if let Some(fast) = decoder.read_line(&text, &plan) {
                    direct += 1;
                    let slow = slow.unwrap_or_else(|e| panic!("serde refuses what was read directly: {text}: {e}"));
                    assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{text}");
                }
            }
        }
        assert!(direct * 2 > total, "{direct} of {total} read directly");
    }

    #[test]
    fn reads_the_regular_body_directly() {
        let mut rng = Rng(7);
        let decoder = <fast::R as Row>::__row_decoder().unwrap();
        for _ in 0..50 {
            let text = body(&mut rng, false);
            assert!(decode(&text, &decoder).is_some(), "{text}");
        }
        // Escapes, negative zero and exponent numbers do not stop it where serde reads them the same way.
        let text = body(&mut Rng(9), false)
            .replace(r#""s":"plain""#, r#""s":"with \"escape\" \u00e9""#)
            .replace(r#""x":1"#, r#""x":-0"#)
            .replace(r#""ratio":0"#, r#""ratio":-2.5e-3"#);
        let env = decode(&text, &decoder).expect("read directly");
        if let Some(row) = env.data.first() {
            assert_eq!(row.s, "with \"escape\" é");
            assert!(row.x == 0.0 && row.x.is_sign_negative());
            assert_eq!(row.ratio, -2.5e-3);
        }
    }

    #[test]
    fn gives_up_where_serde_must_decide() {
        let decoder = <fast::R as Row>::__row_decoder().unwrap();
        let regular = body(&mut Rng(11), false);
        assert!(regular.contains(r#""big":0"#));
        for (from, to) in [
            (r#""big":0"#, r#""big":1.0"#),
            (r#""big":0"#, r#""big":-0"#),
            (r#""big":0"#, r#""big":18446744073709551616"#),
            (r#""u":255"#, r#""u":256"#),
            (r#""x":1"#, r#""x":1e400"#),
            (r#""renamed":65535"#, r#""renamed":65535,"renamed":1"#),
            (r#""at":"2024-01-02 03:04:05""#, r#""at":"2024-01-02 03:04:0\u0035""#),
        ] {
            let text = regular.replacen(from, to, 1);
            if text.contains(r#""data":[]"#) {
                continue;
            }
            assert!(decode(&text, &decoder).is_none(), "{to}");
            let (fast, slow) = both(&text);
            assert_eq!(fast, slow);
        }
    }

    #[test]
    fn a_plan_needs_every_field_once() {
        let decoder = <fast::R as Row>::__row_decoder().unwrap();
        let meta = |names: &[&str]| -> Vec<ColumnMeta> {
            names.iter().map(|n| ColumnMeta { name: (*n).into(), ty: "String".into() }).collect()
        };
        let all: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
        assert!(decoder.plan(&meta(&all)).is_some());
        assert!(decoder.plan(&meta(&all[1..])).is_none(), "a field without a column");
        let mut twice = all.clone();
        twice.push("at");
        assert!(decoder.plan(&meta(&twice)).is_none(), "a column twice");
        let mut extra = all.clone();
        extra.insert(3, "extra");
        let plan = decoder.plan(&meta(&extra)).expect("extra columns are skipped");
        assert_eq!(plan.steps[3].field, None);
        assert_eq!(plan.steps[3].key, b"\"extra\"");
        let mut quoted = all.clone();
        quoted.push("a\"b");
        assert!(decoder.plan(&meta(&quoted)).is_none(), "a name that needs escaping");
    }

    #[test]
    fn short_prefix_comparison() {
        assert!(starts_with(b"\"timestamp\":1", b"\"timestamp\""));
        assert!(!starts_with(b"\"timestamq\":1", b"\"timestamp\""));
        assert!(!starts_with(b"\"time", b"\"timestamp\""));
        assert!(starts_with(b"anything", b""));
        assert!(!starts_with(b"\"a\"", b"\"b\""));
    }
}
