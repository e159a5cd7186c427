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
}

impl fmt::Display for ParseTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid Tinybird type `{}`: {} at position {}", self.input, self.message, self.position)
    }
}

impl std::error::Error for ParseTypeError {}

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
        ParseTypeError { input: self.input.to_owned(), position: self.pos, message: message.into() }
    }

    fn error_at(&self, position: usize, message: impl Into<String>) -> ParseTypeError {
        ParseTypeError { input: self.input.to_owned(), position, message: message.into() }
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
        let simple = match name.to_ascii_lowercase().as_str() {
            "string" => Some(ChType::String),
            "int8" => Some(ChType::Int8),
            "int16" => Some(ChType::Int16),
            "int32" => Some(ChType::Int32),
            "int64" => Some(ChType::Int64),
            "int128" => Some(ChType::Int128),
            "int256" => Some(ChType::Int256),
            "uint8" => Some(ChType::UInt8),
            "uint16" => Some(ChType::UInt16),
            "uint32" => Some(ChType::UInt32),
            "uint64" => Some(ChType::UInt64),
            "uint128" => Some(ChType::UInt128),
            "uint256" => Some(ChType::UInt256),
            "float32" => Some(ChType::Float32),
            "float64" => Some(ChType::Float64),
            "bool" | "boolean" => Some(ChType::Bool),
            "date" => Some(ChType::Date),
            "date32" => Some(ChType::Date32),
            "uuid" => Some(ChType::Uuid),
            "ipv4" => Some(ChType::IPv4),
            "ipv6" => Some(ChType::IPv6),
            "json" => Some(ChType::Json),
            "nothing" => Some(ChType::Nothing),
            _ => None,
        };
        if let Some(ty) = simple {
            self.skip_ws();
            if self.peek() == Some('(') {
                return Err(self.error(format!("`{name}` takes no arguments")));
            }
            return Ok(ty);
        }
        let lower = name.to_ascii_lowercase();
        if lower == "datetime" {
            if !self.eat('(') {
                return Ok(ChType::DateTime(None));
            }
            let tz = self.string()?;
            self.expect(')')?;
            return Ok(ChType::DateTime(Some(tz)));
        }
        let known = [
            "fixedstring",
            "decimal",
            "decimal32",
            "decimal64",
            "decimal128",
            "decimal256",
            "datetime64",
            "nullable",
            "lowcardinality",
            "array",
            "map",
            "tuple",
            "enum",
            "enum8",
            "enum16",
            "simpleaggregatefunction",
            "aggregatefunction",
        ];
        if !known.contains(&lower.as_str()) {
            return Err(self.error_at(start, format!("unknown type `{name}`")));
        }
        if !self.eat('(') {
            return Err(self.error(format!("expected `(` after `{name}`, found {}", self.found())));
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
            _ => {
                let function = self.function_name()?;
                let mut args = Vec::new();
                while self.comma_or_close()? {
                    args.push(self.ty()?);
                }
                Ok(ChType::AggregateFunction { function, args })
            }
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
