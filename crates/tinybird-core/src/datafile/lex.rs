//! Line tokenising (Python's non-POSIX `shlex` with `whitespace_split`), quoting for output, and dedenting.

/// Why a line could not be tokenised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnterminatedQuote;

/// Splits a line like `shlex.shlex(line, posix=False)` with `whitespace_split = True`: words are separated by
/// whitespace; a quote *starting* a token groups up to the matching quote and ends the token (quotes are kept, there
/// are no escapes); inside a word, quotes are ordinary characters; `#` outside quotes starts a comment.
pub(crate) fn tokens(line: &str) -> Result<Vec<String>, UnterminatedQuote> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(first) = chars.next() else { break };
        let mut token = String::from(first);
        match first {
            '#' => break,
            '"' | '\'' => loop {
                match chars.next() {
                    Some(c) => {
                        token.push(c);
                        if c == first {
                            break;
                        }
                    }
                    None => return Err(UnterminatedQuote),
                }
            },
            _ => {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '#') {
                    token.push(c);
                }
            }
        }
        out.push(token);
    }
    Ok(out)
}

/// Tinybird's `_unquote`: drops the outer quotes when the value starts and ends with one.
pub(crate) fn unquote(value: &str) -> &str {
    let quoted = |c: Option<char>| matches!(c, Some('"' | '\''));
    if value.len() >= 2 && quoted(value.chars().next()) && quoted(value.chars().last()) {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

/// A single-line argument quoted so that tokenising and `unquote` give it back exactly, or `None` when no quoting
/// can (a newline, or both kinds of quote).
pub(crate) fn quote(value: &str) -> Option<String> {
    if value.contains(['\n', '\r']) {
        return None;
    }
    if !value.contains('"') {
        Some(format!("\"{value}\""))
    } else if !value.contains('\'') {
        Some(format!("'{value}'"))
    } else {
        None
    }
}

/// A name as a bare word when tokenising keeps it whole, quoted otherwise.
pub(crate) fn word(value: &str) -> Option<String> {
    let bare = !value.is_empty() && !value.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '#'));
    if bare { Some(value.to_owned()) } else { quote(value) }
}

/// Bytes of leading spaces and tabs. Only these count as indentation, so slicing at it stays on a char boundary.
fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

/// Like Python's `inspect.cleandoc`: the first line loses its leading whitespace, the others their common
/// indentation; trailing whitespace and leading/trailing blank lines go. This is what makes an indented Rust string
/// literal (`sql = "\n    SELECT …\n"`) come out flush left.
pub(crate) fn dedent(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let indent = lines.iter().skip(1).filter(|l| !l.trim().is_empty()).map(|l| indentation(l)).min().unwrap_or(0);
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if i == 0 {
            out.push(line.trim_start());
        } else if line.trim().is_empty() {
            out.push("");
        } else {
            // `indent` counts bytes of leading whitespace, so slicing at it stays on a char boundary.
            out.push(&line[indent.min(indentation(line))..]);
        }
    }
    while out.first().is_some_and(|l| l.is_empty()) {
        out.remove(0);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// Like Python's `textwrap.dedent` on a block's lines: the common indentation of all non-blank lines goes, then
/// trailing whitespace and leading/trailing blank lines.
pub(crate) fn dedent_block(text: &str) -> String {
    let indent = text.lines().filter(|l| !l.trim().is_empty()).map(indentation).min().unwrap_or(0);
    let lines: Vec<&str> =
        text.lines().map(|l| if l.trim().is_empty() { "" } else { l[indent..].trim_end() }).collect();
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(start, |i| i + 1);
    lines[start..end].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_non_posix_shlex() {
        assert_eq!(tokens(r#"ENGINE_TTL "a 'x' b""#).unwrap(), ["ENGINE_TTL", r#""a 'x' b""#]);
        assert_eq!(tokens("X a # b").unwrap(), ["X", "a"]);
        assert_eq!(tokens(r#"X "a # b""#).unwrap(), ["X", r#""a # b""#]);
        assert_eq!(tokens(r"X 'it''s'").unwrap(), ["X", "'it'", "'s'"]);
        assert_eq!(tokens(r#"X a"b c"d e"#).unwrap(), ["X", r#"a"b"#, r#"c"d"#, "e"]);
        assert_eq!(tokens(r##"X "a"#b"##).unwrap(), ["X", r#""a""#]);
        assert_eq!(tokens(r#"X "a\b""#).unwrap(), ["X", r#""a\b""#]);
        assert_eq!(tokens("X \"open"), Err(UnterminatedQuote));
    }

    #[test]
    fn dedent_block_is_textwrap_dedent() {
        assert_eq!(dedent_block("\n    a\n      b\n\n    c  \n\n"), "a\n  b\n\nc");
        assert_eq!(dedent_block("    a\nb"), "    a\nb");
        // Other Unicode whitespace is content, not indentation.
        assert_eq!(dedent_block("  \u{3000}a\n  b"), "\u{3000}a\nb");
        assert_eq!(dedent("x\n\u{3000}  a\n  b"), "x\n\u{3000}  a\n  b");
    }

    #[test]
    fn dedent_is_cleandoc() {
        assert_eq!(dedent("\n    SELECT a\n      FROM b\n    "), "SELECT a\n  FROM b");
        assert_eq!(dedent("%\n        SELECT 1\n\n        FROM t"), "%\nSELECT 1\n\nFROM t");
    }

    #[test]
    fn quote_round_trips_through_tokens() {
        for value in ["a, b", "it's", r#"say "hi""#, "x # y", r"back\slash"] {
            let quoted = quote(value).unwrap();
            let toks = tokens(&format!("K {quoted}")).unwrap();
            assert_eq!(unquote(&toks[1..].join(" ")), value);
        }
        assert_eq!(quote(r#"both ' and ""#), None);
    }
}
