//! Compile-time syntax check of ClickHouse type strings given in `#[tinybird(type = "…")]`.
//!
//! The runtime (`tinybird_core::types::ChType`) owns the type model; the macro only has to reject what Tinybird would
//! reject, with a message naming the mistake, before anything is deployed.

use crate::suggest;

const SCALARS: &[&str] = &[
    "String", "Int8", "Int16", "Int32", "Int64", "Int128", "Int256", "UInt8", "UInt16", "UInt32", "UInt64", "UInt128",
    "UInt256", "Float32", "Float64", "Bool", "Boolean", "Date", "Date32", "UUID", "IPv4", "IPv6", "JSON",
];
const PARAMETRIC: &[&str] = &[
    "FixedString",
    "LowCardinality",
    "Nullable",
    "Decimal",
    "Decimal32",
    "Decimal64",
    "Decimal128",
    "Decimal256",
    "DateTime",
    "DateTime64",
    "Array",
    "Map",
    "Tuple",
    "Enum8",
    "Enum16",
    "SimpleAggregateFunction",
    "AggregateFunction",
];

/// Checks a type string; the error says what is wrong in ClickHouse's terms.
pub(crate) fn check(src: &str) -> Result<(), String> {
    let mut p = Parser { s: src.as_bytes(), pos: 0, depth: 0 };
    p.ws();
    p.ty()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(format!("unexpected `{}` after the type in `{src}`", &src[p.pos..]));
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> Option<String> {
        self.ws();
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
            self.pos += 1;
        }
        (self.pos > start).then(|| String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }
    fn number(&mut self) -> Result<u64, String> {
        self.ws();
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        text.trim_start_matches('-').parse::<u64>().map_err(|_| "expected a number".to_owned())
    }
    fn string(&mut self) -> Result<(), String> {
        self.ws();
        if self.peek() != Some(b'\'') {
            return Err("expected a quoted string".into());
        }
        self.pos += 1;
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                b'\\' => self.pos += 1,
                b'\'' => return Ok(()),
                _ => {}
            }
        }
        Err("unterminated string".into())
    }
    fn expect(&mut self, c: u8, ctx: &str) -> Result<(), String> {
        if self.eat(c) { Ok(()) } else { Err(format!("expected `{}` in {ctx}", c as char)) }
    }

    fn ty(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > 32 {
            return Err("type nested too deeply".into());
        }
        let name = self.ident().ok_or("expected a type name")?;
        let has_args = self.eat(b'(');
        if SCALARS.contains(&name.as_str()) {
            if has_args {
                return Err(format!("`{name}` takes no arguments"));
            }
        } else if PARAMETRIC.contains(&name.as_str()) {
            if has_args {
                self.args(&name)?;
                self.expect(b')', &name)?;
            } else if !matches!(name.as_str(), "DateTime" | "Decimal") {
                return Err(format!("`{name}` needs arguments: {}", usage(&name)));
            }
        } else {
            let all = SCALARS.iter().chain(PARAMETRIC).copied();
            return Err(format!("unknown ClickHouse type `{name}`{}", suggest::hint(&name, all)));
        }
        self.depth -= 1;
        Ok(())
    }

    fn args(&mut self, name: &str) -> Result<(), String> {
        let wrong = || format!("wrong arguments for `{name}`: {}", usage(name));
        match name {
            "FixedString" => {
                if self.number().map_err(|_| wrong())? == 0 {
                    return Err("`FixedString(N)` needs N > 0".into());
                }
            }
            "LowCardinality" | "Nullable" | "Array" => self.ty()?,
            "Decimal" => {
                let p = self.number().map_err(|_| wrong())?;
                if !(1..=76).contains(&p) {
                    return Err("`Decimal(P, S)` needs 1 ≤ P ≤ 76".into());
                }
                if self.eat(b',') {
                    let s = self.number().map_err(|_| wrong())?;
                    if s > p {
                        return Err("`Decimal(P, S)` needs S ≤ P".into());
                    }
                }
            }
            "Decimal32" | "Decimal64" | "Decimal128" | "Decimal256" => {
                self.number().map_err(|_| wrong())?;
            }
            "DateTime" => self.string().map_err(|_| wrong())?,
            "DateTime64" => {
                if self.number().map_err(|_| wrong())? > 9 {
                    return Err("`DateTime64(p)` needs a precision from 0 to 9".into());
                }
                if self.eat(b',') {
                    self.string().map_err(|_| wrong())?;
                }
            }
            "Map" => {
                self.ty()?;
                self.expect(b',', name)?;
                self.ty()?;
            }
            "Tuple" => loop {
                // Named elements: `Tuple(a String, b UInt8)`.
                let save = self.pos;
                if self.ident().is_some() {
                    self.ws();
                    if !matches!(self.peek(), Some(b',' | b')' | b'(')) {
                        self.ty()?;
                    } else {
                        self.pos = save;
                        self.ty()?;
                    }
                } else {
                    return Err(wrong());
                }
                if !self.eat(b',') {
                    break;
                }
            },
            "Enum8" | "Enum16" => loop {
                self.string().map_err(|_| wrong())?;
                if self.eat(b'=') {
                    self.number().map_err(|_| wrong())?;
                }
                if !self.eat(b',') {
                    break;
                }
            },
            "SimpleAggregateFunction" | "AggregateFunction" => {
                // The function may be parametric: `quantiles(0.5, 0.9)`.
                self.ident().ok_or_else(wrong)?;
                if self.eat(b'(') {
                    while self.peek().is_some_and(|c| c != b')') {
                        self.pos += 1;
                    }
                    self.expect(b')', name)?;
                }
                while self.eat(b',') {
                    self.ty()?;
                }
            }
            _ => return Err(wrong()),
        }
        Ok(())
    }
}

fn usage(name: &str) -> &'static str {
    match name {
        "FixedString" => "`FixedString(N)`",
        "LowCardinality" => "`LowCardinality(T)`",
        "Nullable" => "`Nullable(T)`",
        "Decimal" => "`Decimal(P, S)`",
        "Decimal32" | "Decimal64" | "Decimal128" | "Decimal256" => "`DecimalN(S)`",
        "DateTime" => "`DateTime` or `DateTime('Europe/Madrid')`",
        "DateTime64" => "`DateTime64(3)` or `DateTime64(3, 'UTC')`",
        "Array" => "`Array(T)`",
        "Map" => "`Map(K, V)`",
        "Tuple" => "`Tuple(T1, T2, …)`",
        "Enum8" | "Enum16" => "`Enum8('a' = 1, 'b' = 2)`",
        _ => "`SimpleAggregateFunction(fn, T)`",
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_tinybird_schema_types() {
        for t in [
            "String",
            "LowCardinality(Nullable(String))",
            "DateTime64(3, 'UTC')",
            "DateTime('Europe/Madrid')",
            "Decimal(18, 4)",
            "Map(String, Array(UInt64))",
            "Tuple(a String, b UInt8)",
            "Enum8('a' = 1, 'b\\'c' = 2)",
            "SimpleAggregateFunction(sum, UInt64)",
            "AggregateFunction(quantiles(0.5, 0.9), Float64)",
            "FixedString(16)",
        ] {
            assert_eq!(check(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(check("Strin").unwrap_err(), "unknown ClickHouse type `Strin`; did you mean `String`?");
        assert!(check("Nullable").unwrap_err().contains("`Nullable(T)`"));
        assert!(check("UInt64(3)").unwrap_err().contains("takes no arguments"));
        assert!(check("DateTime64(12)").unwrap_err().contains("0 to 9"));
        assert!(check("Array(String").unwrap_err().contains("expected `)`"));
        assert!(check("String extra").unwrap_err().contains("unexpected"));
    }
}
