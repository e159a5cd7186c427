//! `json.loads` as CPython 3.11 does it: the values it produces (`1e400` → `inf`, `NaN`, big ints) and its exact
//! error messages (`Expecting value: line 1 column 1 (char 0)`), which `JSON()` shows to users.

use crate::value::Value;

/// Maximum nesting of arrays/objects accepted (CPython raises RecursionError near 1000).
const MAX_DEPTH: usize = 200;

pub(crate) fn loads(s: &str) -> Result<Value, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut p = P { s: &chars, depth: 0 };
    let start = p.ws(0);
    let (v, end) = p.value(start)?;
    let end = p.ws(end);
    if end != chars.len() {
        return Err(p.err("Extra data", end));
    }
    Ok(v)
}

struct P<'a> {
    s: &'a [char],
    depth: usize,
}

impl P<'_> {
    fn err(&self, msg: &str, pos: usize) -> String {
        let before = &self.s[..pos.min(self.s.len())];
        let line = before.iter().filter(|c| **c == '\n').count() + 1;
        let col = match before.iter().rposition(|c| *c == '\n') {
            Some(nl) => pos - nl,
            None => pos + 1,
        };
        format!("{msg}: line {line} column {col} (char {pos})")
    }

    fn ws(&self, mut i: usize) -> usize {
        while i < self.s.len() && matches!(self.s[i], ' ' | '\t' | '\n' | '\r') {
            i += 1;
        }
        i
    }

    fn lit(&self, i: usize, word: &str) -> bool {
        let w: Vec<char> = word.chars().collect();
        self.s.get(i..i + w.len()) == Some(&w[..])
    }

    fn value(&mut self, i: usize) -> Result<(Value, usize), String> {
        let Some(&c) = self.s.get(i) else {
            return Err(self.err("Expecting value", i));
        };
        match c {
            '"' => {
                let (st, end) = self.string(i + 1)?;
                Ok((Value::Str(st), end))
            }
            '{' => self.object(i + 1),
            '[' => self.array(i + 1),
            'n' if self.lit(i, "null") => Ok((Value::None, i + 4)),
            't' if self.lit(i, "true") => Ok((Value::Bool(true), i + 4)),
            'f' if self.lit(i, "false") => Ok((Value::Bool(false), i + 5)),
            'N' if self.lit(i, "NaN") => Ok((Value::Float(f64::NAN), i + 3)),
            'I' if self.lit(i, "Infinity") => Ok((Value::Float(f64::INFINITY), i + 8)),
            '-' if self.lit(i, "-Infinity") => Ok((Value::Float(f64::NEG_INFINITY), i + 9)),
            _ => self.number(i).ok_or_else(|| self.err("Expecting value", i)),
        }
    }

    fn number(&self, start: usize) -> Option<(Value, usize)> {
        let s = self.s;
        let mut i = start;
        if s.get(i) == Some(&'-') {
            i += 1;
        }
        match s.get(i) {
            Some('0') => i += 1,
            Some(c) if c.is_ascii_digit() => {
                while s.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return None,
        }
        let mut is_float = false;
        if s.get(i) == Some(&'.') && s.get(i + 1).is_some_and(char::is_ascii_digit) {
            is_float = true;
            i += 1;
            while s.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(s.get(i), Some('e' | 'E')) {
            let mut j = i + 1;
            if matches!(s.get(j), Some('+' | '-')) {
                j += 1;
            }
            if s.get(j).is_some_and(char::is_ascii_digit) {
                is_float = true;
                while s.get(j).is_some_and(char::is_ascii_digit) {
                    j += 1;
                }
                i = j;
            }
        }
        let text: String = s[start..i].iter().collect();
        if !is_float && let Ok(v) = text.parse::<i128>() {
            return Some((Value::Int(v), i));
        }
        text.parse::<f64>().ok().map(|f| (Value::Float(f), i))
    }

    fn string(&self, start: usize) -> Result<(String, usize), String> {
        let s = self.s;
        let mut out = String::new();
        let mut i = start;
        loop {
            let Some(&c) = s.get(i) else {
                return Err(self.err("Unterminated string starting at", start - 1));
            };
            match c {
                '"' => return Ok((out, i + 1)),
                '\\' => {
                    let Some(&e) = s.get(i + 1) else {
                        return Err(self.err("Unterminated string starting at", start - 1));
                    };
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'b' => out.push('\x08'),
                        'f' => out.push('\x0c'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let hex = |at: usize| -> Option<u32> {
                                let h: String = s.get(at..at + 4)?.iter().collect();
                                if h.chars().all(|c| c.is_ascii_hexdigit()) {
                                    u32::from_str_radix(&h, 16).ok()
                                } else {
                                    None
                                }
                            };
                            let Some(u) = hex(i + 2) else {
                                return Err(self.err("Invalid \\uXXXX escape", i + 1));
                            };
                            let mut code = u;
                            let mut consumed = 6;
                            if (0xd800..0xdc00).contains(&u)
                                && s.get(i + 6) == Some(&'\\')
                                && s.get(i + 7) == Some(&'u')
                                && let Some(lo) = hex(i + 8)
                                && (0xdc00..0xe000).contains(&lo)
                            {
                                code = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                                consumed = 12;
                            }
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            i += consumed;
                            continue;
                        }
                        _ => return Err(self.err("Invalid \\escape", i)),
                    }
                    i += 2;
                }
                c if (c as u32) < 0x20 => return Err(self.err("Invalid control character at", i)),
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("JSON nested too deeply", at));
        }
        Ok(())
    }

    fn object(&mut self, start: usize) -> Result<(Value, usize), String> {
        self.enter(start)?;
        let mut pairs: Vec<(Value, Value)> = Vec::new();
        let mut i = self.ws(start);
        if self.s.get(i) == Some(&'}') {
            self.depth -= 1;
            return Ok((Value::Dict(pairs), i + 1));
        }
        loop {
            if self.s.get(i) != Some(&'"') {
                return Err(self.err("Expecting property name enclosed in double quotes", i));
            }
            let (key, end) = self.string(i + 1)?;
            i = self.ws(end);
            if self.s.get(i) != Some(&':') {
                return Err(self.err("Expecting ':' delimiter", i));
            }
            i = self.ws(i + 1);
            let (v, end) = self.value(i)?;
            let key = Value::Str(key);
            match pairs.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = v,
                None => pairs.push((key, v)),
            }
            i = self.ws(end);
            match self.s.get(i) {
                Some('}') => {
                    self.depth -= 1;
                    return Ok((Value::Dict(pairs), i + 1));
                }
                Some(',') => i = self.ws(i + 1),
                _ => return Err(self.err("Expecting ',' delimiter", i)),
            }
        }
    }

    fn array(&mut self, start: usize) -> Result<(Value, usize), String> {
        self.enter(start)?;
        let mut items = Vec::new();
        let mut i = self.ws(start);
        if self.s.get(i) == Some(&']') {
            self.depth -= 1;
            return Ok((Value::List(items), i + 1));
        }
        loop {
            let (v, end) = self.value(i)?;
            items.push(v);
            i = self.ws(end);
            match self.s.get(i) {
                Some(']') => {
                    self.depth -= 1;
                    return Ok((Value::List(items), i + 1));
                }
                Some(',') => i = self.ws(i + 1),
                _ => return Err(self.err("Expecting ',' delimiter", i)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_cpython() {
        assert_eq!(loads("").unwrap_err(), "Expecting value: line 1 column 1 (char 0)");
        assert_eq!(loads("not json").unwrap_err(), "Expecting value: line 1 column 1 (char 0)");
        assert_eq!(loads("{\"a\": 1").unwrap_err(), "Expecting ',' delimiter: line 1 column 8 (char 7)");
        assert_eq!(loads("[1, 2] x").unwrap_err(), "Extra data: line 1 column 8 (char 7)");
        assert_eq!(
            loads("{1: 2}").unwrap_err(),
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
        );
        assert_eq!(loads("\"abc").unwrap_err(), "Unterminated string starting at: line 1 column 1 (char 0)");
        assert_eq!(loads("[\n1,\n]").unwrap_err(), "Expecting value: line 3 column 1 (char 5)");
    }

    #[test]
    fn values() {
        assert_eq!(loads("1e400").unwrap(), Value::Float(f64::INFINITY));
        assert_eq!(loads("[1, 2.5, true, null]").unwrap().py_repr(), "[1, 2.5, True, None]");
        assert_eq!(loads("{\"a\": 1, \"a\": 2}").unwrap().py_repr(), "{'a': 2}");
        assert_eq!(loads("\"\\u00e9\\ud83d\\ude00\"").unwrap(), Value::Str("é😀".into()));
        assert!(loads(&"[".repeat(10_000)).is_err());
    }
}
