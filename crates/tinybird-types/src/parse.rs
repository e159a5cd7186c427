//! The type-string parser: `FromStr for ChType`.

use std::fmt;
use std::str::FromStr;

use super::{ChType, TupleElement};

/// Nesting deeper than this is rejected rather than risking the stack on hostile input.
const MAX_DEPTH: usize = 64;

/// A type string that is not a valid Tinybird type. Says where (a 0-based byte offset) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseTypeError {
    input: String,
    position: usize,
    message: String,
    unknown: Option<String>,
    usage: Option<&'static str>,
}

impl ParseTypeError {
    /// The 0-based byte offset in the input where parsing failed.
    pub fn position(&self) -> usize {
        self.position
    }

    /// What went wrong, without the position (e.g. "expected `,` or `)`, found `]`").
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The name, when the error is a type name ClickHouse does not have (`Strin`, or `string`: most names are
    /// case-sensitive). A caller can suggest the closest of [`FAMILIES`].
    pub fn unknown_type(&self) -> Option<&str> {
        self.unknown.as_deref()
    }

    /// How the type is written, when the error is a type written without the arguments it needs (`Nullable`):
    /// "`Nullable(T)`".
    pub fn usage(&self) -> Option<&'static str> {
        self.usage
    }

    fn unknown(mut self, name: &str) -> Self {
        self.unknown = Some(name.to_owned());
        self
    }
}

impl fmt::Display for ParseTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid Tinybird type `{}`: {} at position {}", self.input, self.message, self.position)
    }
}

impl std::error::Error for ParseTypeError {}

/// A type family the parser reads, as ClickHouse registers it (`system.data_type_families`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// The name as ClickHouse spells it.
    pub name: &'static str,
    /// Whether ClickHouse also reads the name in another case (`datetime`, `BOOL`); most names (`String`, `UInt64`,
    /// `Nullable`) are read only as written.
    pub case_insensitive: bool,
    /// Whether it takes arguments, and how they are written.
    pub arguments: Arguments,
}

/// Whether a [`Family`] takes arguments: the type its bare name is, and how arguments are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arguments {
    /// Never: the name is the type (`UInt64`).
    Bare(ChType),
    /// Optionally: the bare name is ClickHouse's default (`DateTime64` is `DateTime64(3)`, `Decimal` is
    /// `Decimal(10, 0)`).
    Optional(&'static str, ChType),
    /// Always (`Nullable(T)`).
    Required(&'static str),
}

const fn family(name: &'static str, case_insensitive: bool, arguments: Arguments) -> Family {
    Family { name, case_insensitive, arguments }
}

/// Every type family the model holds. A test checks the case rule of each against ClickHouse's own table.
pub const FAMILIES: &[Family] = {
    use Arguments::{Bare, Optional, Required};
    &[
        family("String", false, Bare(ChType::String)),
        family("FixedString", false, Required("`FixedString(N)`")),
        family("Int8", false, Bare(ChType::Int8)),
        family("Int16", false, Bare(ChType::Int16)),
        family("Int32", false, Bare(ChType::Int32)),
        family("Int64", false, Bare(ChType::Int64)),
        family("Int128", false, Bare(ChType::Int128)),
        family("Int256", false, Bare(ChType::Int256)),
        family("UInt8", false, Bare(ChType::UInt8)),
        family("UInt16", false, Bare(ChType::UInt16)),
        family("UInt32", false, Bare(ChType::UInt32)),
        family("UInt64", false, Bare(ChType::UInt64)),
        family("UInt128", false, Bare(ChType::UInt128)),
        family("UInt256", false, Bare(ChType::UInt256)),
        family("Float32", false, Bare(ChType::Float32)),
        family("Float64", false, Bare(ChType::Float64)),
        family("Decimal", true, Optional("`Decimal(P, S)`", ChType::Decimal { precision: 10, scale: 0 })),
        family("Decimal32", true, Required("`Decimal32(S)`")),
        family("Decimal64", true, Required("`Decimal64(S)`")),
        family("Decimal128", true, Required("`Decimal128(S)`")),
        family("Decimal256", true, Required("`Decimal256(S)`")),
        family("Bool", true, Bare(ChType::Bool)),
        family("Boolean", true, Bare(ChType::Bool)),
        family("Date", true, Bare(ChType::Date)),
        family("Date32", true, Bare(ChType::Date32)),
        family("DateTime", true, Optional("`DateTime` or `DateTime('Europe/Madrid')`", ChType::DateTime(None))),
        family(
            "DateTime64",
            true,
            Optional("`DateTime64(3)` or `DateTime64(3, 'UTC')`", ChType::DateTime64 { precision: 3, tz: None }),
        ),
        family("UUID", false, Bare(ChType::Uuid)),
        family("IPv4", false, Bare(ChType::IPv4)),
        family("IPv6", false, Bare(ChType::IPv6)),
        family("JSON", true, Bare(ChType::Json)),
        family("Nothing", false, Bare(ChType::Nothing)),
        family("Nullable", false, Required("`Nullable(T)`")),
        family("LowCardinality", false, Required("`LowCardinality(T)`")),
        family("Array", false, Required("`Array(T)`")),
        family("Map", false, Required("`Map(K, V)`")),
        family("Tuple", false, Required("`Tuple(T1, T2, …)` or `Tuple(a T1, b T2, …)`")),
        family("Enum", true, Required("`Enum('a' = 1, 'b' = 2)`")),
        family("Enum8", false, Required("`Enum8('a' = 1, 'b' = 2)`")),
        family("Enum16", false, Required("`Enum16('a' = 1, 'b' = 2)`")),
        family("SimpleAggregateFunction", false, Required("`SimpleAggregateFunction(sum, UInt64)`")),
        family("AggregateFunction", false, Required("`AggregateFunction(uniq, String)`")),
    ]
};

impl Family {
    /// The family a type name names, with ClickHouse's case rule.
    pub fn find(name: &str) -> Option<&'static Family> {
        FAMILIES.iter().find(|f| f.name == name || (f.case_insensitive && f.name.eq_ignore_ascii_case(name)))
    }
}

impl FromStr for ChType {
    type Err = ParseTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parser = Parser { input: s, pos: 0, depth: 0 };
        let ty = parser.ty()?;
        parser.skip_ws();
        if parser.pos < s.len() {
            return Err(parser.error(format!("expected end of type, found {}", parser.found())));
        }
        Ok(ty)
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, message: impl Into<String>) -> ParseTypeError {
        ParseTypeError {
            input: self.input.to_owned(),
            position: self.pos,
            message: message.into(),
            unknown: None,
            usage: None,
        }
    }

    fn error_at(&self, position: usize, message: impl Into<String>) -> ParseTypeError {
        ParseTypeError { input: self.input.to_owned(), position, message: message.into(), unknown: None, usage: None }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn found(&self) -> String {
        match self.peek() {
            Some(c) => format!("`{c}`"),
            None => "end of input".to_owned(),
        }
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.input.len() - trimmed.len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ParseTypeError> {
        if self.eat(c) { Ok(()) } else { Err(self.error(format!("expected `{c}`, found {}", self.found()))) }
    }

    /// `,` → true, `)` → false, anything else is an error.
    fn comma_or_close(&mut self) -> Result<bool, ParseTypeError> {
        if self.eat(',') {
            Ok(true)
        } else if self.eat(')') {
            Ok(false)
        } else {
            Err(self.error(format!("expected `,` or `)`, found {}", self.found())))
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_alphanumeric() || c == '_') || (i == 0 && c.is_ascii_digit()))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            return None;
        }
        self.pos += len;
        Some(&rest[..len])
    }

    fn integer(&mut self, what: &str) -> Result<(i128, usize), ParseTypeError> {
        self.skip_ws();
        let start = self.pos;
        let rest = self.rest();
        let sign = usize::from(rest.starts_with('-'));
        let digits = rest[sign..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(self.error(format!("expected {what}, found {}", self.found())));
        }
        self.pos += sign + digits;
        let text = &self.input[start..self.pos];
        text.parse::<i128>()
            .map(|v| (v, start))
            .map_err(|_| self.error_at(start, format!("{what} `{text}` is out of range")))
    }

    fn small_int<T: TryFrom<i128>>(&mut self, what: &str, range: &str) -> Result<T, ParseTypeError> {
        let (value, start) = self.integer(what)?;
        T::try_from(value).map_err(|_| self.error_at(start, format!("{what} must be in {range}, found {value}")))
    }

    fn string(&mut self) -> Result<String, ParseTypeError> {
        self.skip_ws();
        if self.peek() != Some('\'') {
            return Err(self.error(format!("expected a quoted string, found {}", self.found())));
        }
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error_at(start, "unterminated string"));
            };
            self.pos += c.len_utf8();
            match c {
                // SQL's doubled quote is a quote, as `\'` is.
                '\'' if self.peek() == Some('\'') => {
                    self.pos += 1;
                    out.push('\'');
                }
                '\'' => return Ok(out),
                '\\' => {
                    let Some(escaped) = self.peek() else {
                        return Err(self.error_at(start, "unterminated string"));
                    };
                    self.pos += escaped.len_utf8();
                    out.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
    }

    fn ty(&mut self) -> Result<ChType, ParseTypeError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("types nested more than {MAX_DEPTH} deep")));
        }
        self.depth += 1;
        let ty = self.ty_inner();
        self.depth -= 1;
        ty
    }

    fn ty_inner(&mut self) -> Result<ChType, ParseTypeError> {
        self.skip_ws();
        let start = self.pos;
        let Some(name) = self.ident() else {
            return Err(self.error(format!("expected a type name, found {}", self.found())));
        };
        let Some(family) = Family::find(name) else {
            return Err(self.error_at(start, format!("unknown type `{name}`")).unknown(name));
        };
        self.skip_ws();
        let has_arguments = self.peek() == Some('(');
        match (&family.arguments, has_arguments) {
            (Arguments::Bare(_), true) => Err(self.error(format!("`{}` takes no arguments", family.name))),
            (Arguments::Required(usage), false) => {
                let mut err = self.error(format!("expected `(` after `{}`, found {}", family.name, self.found()));
                err.usage = Some(usage);
                Err(err)
            }
            (Arguments::Bare(ty) | Arguments::Optional(_, ty), false) => Ok(ty.clone()),
            (_, true) => self.arguments(family, start),
        }
    }

    /// The arguments of a family that takes them, from its `(` to its `)`; `start` is where its name starts.
    fn arguments(&mut self, family: &Family, start: usize) -> Result<ChType, ParseTypeError> {
        let lower = family.name.to_ascii_lowercase();
        self.expect('(')?;
        if lower == "datetime" {
            let tz = self.string()?;
            self.expect(')')?;
            return Ok(ChType::DateTime(Some(tz)));
        }
        match lower.as_str() {
            "fixedstring" => {
                let n = self.small_int::<u32>("a length", "1..=4294967295")?;
                if n == 0 {
                    return Err(self.error("FixedString length must be at least 1"));
                }
                self.expect(')')?;
                Ok(ChType::FixedString(n))
            }
            "decimal" => {
                let precision = self.decimal_precision(76)?;
                let scale = if self.comma_or_close()? {
                    let scale = self.decimal_scale(precision)?;
                    self.expect(')')?;
                    scale
                } else {
                    0
                };
                Ok(ChType::Decimal { precision, scale })
            }
            "decimal32" | "decimal64" | "decimal128" | "decimal256" => {
                let precision = match lower.as_str() {
                    "decimal32" => 9,
                    "decimal64" => 18,
                    "decimal128" => 38,
                    _ => 76,
                };
                let scale = self.decimal_scale(precision)?;
                self.expect(')')?;
                Ok(ChType::Decimal { precision, scale })
            }
            "datetime64" => {
                let (value, start) = self.integer("a precision")?;
                let precision = match u8::try_from(value) {
                    Ok(p) if p <= 9 => p,
                    _ => {
                        return Err(
                            self.error_at(start, format!("DateTime64 precision must be in 0..=9, found {value}"))
                        );
                    }
                };
                let tz = if self.comma_or_close()? {
                    let tz = self.string()?;
                    self.expect(')')?;
                    Some(tz)
                } else {
                    None
                };
                Ok(ChType::DateTime64 { precision, tz })
            }
            "nullable" => {
                let inner = self.ty()?;
                self.expect(')')?;
                Ok(ChType::Nullable(Box::new(inner)))
            }
            "lowcardinality" => {
                let inner = self.ty()?;
                self.expect(')')?;
                Ok(ChType::LowCardinality(Box::new(inner)))
            }
            "array" => {
                let inner = self.ty()?;
                self.expect(')')?;
                Ok(ChType::Array(Box::new(inner)))
            }
            "map" => {
                let key = self.ty()?;
                self.expect(',')?;
                let value = self.ty()?;
                self.expect(')')?;
                Ok(ChType::Map(Box::new(key), Box::new(value)))
            }
            "tuple" => {
                let mut elements = Vec::new();
                loop {
                    elements.push(self.tuple_element()?);
                    if !self.comma_or_close()? {
                        break;
                    }
                }
                Ok(ChType::Tuple(elements))
            }
            "enum" | "enum8" | "enum16" => self.enumeration(&lower),
            "simpleaggregatefunction" => {
                let function = self.function_name()?;
                self.expect(',')?;
                let ty = self.ty()?;
                self.expect(')')?;
                Ok(ChType::SimpleAggregateFunction { function, ty: Box::new(ty) })
            }
            "aggregatefunction" => {
                let function = self.function_name()?;
                let mut args = Vec::new();
                while self.comma_or_close()? {
                    args.push(self.ty()?);
                }
                Ok(ChType::AggregateFunction { function, args })
            }
            _ => Err(self.error_at(start, format!("`{}` takes no arguments", family.name))),
        }
    }

    fn decimal_precision(&mut self, max: u8) -> Result<u8, ParseTypeError> {
        let (value, start) = self.integer("a precision")?;
        match u8::try_from(value) {
            Ok(p) if (1..=max).contains(&p) => Ok(p),
            _ => Err(self.error_at(start, format!("Decimal precision must be in 1..={max}, found {value}"))),
        }
    }

    fn decimal_scale(&mut self, precision: u8) -> Result<u8, ParseTypeError> {
        let (value, start) = self.integer("a scale")?;
        match u8::try_from(value) {
            Ok(s) if s <= precision => Ok(s),
            _ => Err(self.error_at(start, format!("Decimal scale must be in 0..={precision}, found {value}"))),
        }
    }

    /// `name Type` or `Type`: a name is an identifier followed by something that starts another identifier.
    fn tuple_element(&mut self) -> Result<TupleElement, ParseTypeError> {
        self.skip_ws();
        let save = self.pos;
        let name = if self.peek() == Some('`') {
            Some(self.backquoted()?)
        } else if let Some(ident) = self.ident() {
            let after_ident = self.pos;
            self.skip_ws();
            let another =
                self.pos > after_ident && matches!(self.peek(), Some(c) if c.is_ascii_alphabetic() || c == '_');
            if another {
                Some(ident.to_owned())
            } else {
                self.pos = save;
                None
            }
        } else {
            None
        };
        let ty = self.ty()?;
        Ok(TupleElement { name, ty })
    }

    fn backquoted(&mut self) -> Result<String, ParseTypeError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error_at(start, "unterminated back-quoted name"));
            };
            self.pos += c.len_utf8();
            match c {
                '`' => return Ok(out),
                '\\' => {
                    let Some(escaped) = self.peek() else {
                        return Err(self.error_at(start, "unterminated back-quoted name"));
                    };
                    self.pos += escaped.len_utf8();
                    out.push(escaped);
                }
                c => out.push(c),
            }
        }
    }

    fn enumeration(&mut self, kind: &str) -> Result<ChType, ParseTypeError> {
        let mut values: Vec<(String, i128)> = Vec::new();
        let mut next = 1i128;
        loop {
            let name = self.string()?;
            let value = if self.eat('=') { self.integer("an enum value")?.0 } else { next };
            if values.iter().any(|(n, _)| *n == name) {
                return Err(self.error(format!("duplicate enum name '{name}'")));
            }
            if values.iter().any(|(_, v)| *v == value) {
                return Err(self.error(format!("duplicate enum value {value}")));
            }
            values.push((name, value));
            next = value + 1;
            if !self.comma_or_close()? {
                break;
            }
        }
        let fits8 = values.iter().all(|(_, v)| i8::try_from(*v).is_ok());
        let fits16 = values.iter().all(|(_, v)| i16::try_from(*v).is_ok());
        match kind {
            "enum8" | "enum" if fits8 => Ok(ChType::Enum8(values.into_iter().map(|(n, v)| (n, v as i8)).collect())),
            "enum16" | "enum" if fits16 => Ok(ChType::Enum16(values.into_iter().map(|(n, v)| (n, v as i16)).collect())),
            "enum8" => Err(self.error("Enum8 values must be in -128..=127")),
            _ => Err(self.error("Enum16 values must be in -32768..=32767")),
        }
    }

    /// An aggregate function name, with its parameters kept verbatim: `uniq`, `quantiles(0.5, 0.9)`.
    fn function_name(&mut self) -> Result<String, ParseTypeError> {
        self.skip_ws();
        let start = self.pos;
        if self.ident().is_none() {
            return Err(self.error(format!("expected an aggregate function name, found {}", self.found())));
        }
        self.skip_ws();
        if self.peek() == Some('(') {
            let mut depth = 0usize;
            loop {
                let Some(c) = self.peek() else {
                    return Err(self.error_at(start, "unbalanced parentheses in aggregate function parameters"));
                };
                self.pos += c.len_utf8();
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    '\'' => {
                        self.pos -= 1;
                        self.string()?;
                    }
                    _ => {}
                }
            }
        }
        Ok(self.input[start..self.pos].to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_is_listed_once_and_found_by_its_name() {
        for (i, f) in FAMILIES.iter().enumerate() {
            assert!(FAMILIES[..i].iter().all(|g| !g.name.eq_ignore_ascii_case(f.name)), "`{}` twice", f.name);
            assert_eq!(Family::find(f.name), Some(f));
        }
    }

    #[test]
    fn names_are_read_with_clickhouses_case_rule() {
        assert_eq!("datetime".parse::<ChType>(), Ok(ChType::DateTime(None)));
        assert_eq!("BOOL".parse::<ChType>(), Ok(ChType::Bool));
        assert_eq!("nullable(UInt8)".parse::<ChType>().unwrap_err().unknown_type(), Some("nullable"));
        assert_eq!("UINT64".parse::<ChType>().unwrap_err().unknown_type(), Some("UINT64"));
    }

    #[test]
    fn bare_names_take_clickhouses_defaults() {
        assert_eq!("DateTime64".parse::<ChType>(), Ok(ChType::DateTime64 { precision: 3, tz: None }));
        assert_eq!("Decimal".parse::<ChType>(), Ok(ChType::Decimal { precision: 10, scale: 0 }));
        let err = "Array".parse::<ChType>().unwrap_err();
        assert_eq!(
            (err.message(), err.usage()),
            ("expected `(` after `Array`, found end of input", Some("`Array(T)`"))
        );
        assert_eq!("Nullable()".parse::<ChType>().unwrap_err().message(), "expected a type name, found `)`");
    }
}
