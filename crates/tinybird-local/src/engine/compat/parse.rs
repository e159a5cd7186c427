//! Reading ClickHouse SQL: the `FORMAT` clause, the token-level guards (constructs the engine refuses, nesting
//! depth, size) and the parse itself, with `WITH expr AS name` scalars inlined.

use super::*;

pub(super) fn syntax(e: impl std::fmt::Display) -> EngineError {
    let text = e.to_string();
    EngineError::Syntax(format!("Syntax error: {}", text.trim_start_matches("sql parser error: ")))
}

/// ClickHouse's `#` comments, blanked: a `#` followed by a space or `!`, outside strings, quoted names and other
/// comments, starts a comment that runs to the end of the line (`SELECT 1 # why`, `#!/usr/bin/env clickhouse`).
/// Any other `#` is left for the tokenizer, which refuses it, as ClickHouse does (`#comment` is a syntax error).
/// The comment's bytes become spaces, so the positions of what follows on other lines do not move.
pub(super) fn blank_hash_comments(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('#') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let bytes = sql.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    // A backslash escapes the next byte; a doubled quote is one quote (the loop sees it as an end and a
                    // start).
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'$' if bytes.get(i + 1) == Some(&b'$') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'$')) {
                    i += 1;
                }
                i += 2;
            }
            b'#' if matches!(bytes.get(i + 1), Some(b' ' | b'!')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    // Only whole comments (ASCII `#` to a newline) were replaced, so the text is still UTF-8.
    std::borrow::Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| sql.to_owned()))
}

/// The tokens of ClickHouse SQL, with every literal read as ClickHouse reads it (sqlparser's own reading differs):
///
/// - string literals and quoted identifiers are unescaped by ClickHouse's rules ([`unescape`]);
/// - `$$text$$` is a string, as in ClickHouse;
/// - `0x1F` and `0b101` are integers (the tokenizer reads `0b101` as `0` aliased `b101`), `x'41'` is a string;
/// - a number followed at once by a word (`1abc`, `0x1Fg`) is a syntax error, as in ClickHouse, not an alias;
/// - `# ` and `#!` start a comment to the end of the line ([`blank_hash_comments`]).
pub(super) fn lex(sql: &str) -> Result<Vec<Token>, EngineError> {
    use datafusion::sql::sqlparser::tokenizer::TokenWithSpan;
    let sql = &*blank_hash_comments(sql);
    let located =
        Tokenizer::new(&ClickHouseSql::default(), sql).with_unescape(false).tokenize_with_location().map_err(syntax)?;
    // The first character of each line, to find what a token was written as.
    let line_starts: Vec<usize> = std::iter::once(0).chain(sql.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let first_char = |span: &datafusion::sql::sqlparser::tokenizer::Span| {
        let line = line_starts.get((span.start.line as usize).saturating_sub(1)).copied().unwrap_or(0);
        sql.get(line..).and_then(|rest| rest.chars().nth((span.start.column as usize).saturating_sub(1)))
    };
    let mut tokens = Vec::with_capacity(located.len());
    let mut iter = located.into_iter().peekable();
    while let Some(TokenWithSpan { token, span }) = iter.next() {
        let numeric = matches!(token, Token::Number(..))
            || (matches!(token, Token::HexStringLiteral(_)) && first_char(&span) == Some('0'));
        let token = match token {
            Token::SingleQuotedString(raw) => Token::SingleQuotedString(unescape(&raw, '\'')?),
            Token::Word(mut word) if matches!(word.quote_style, Some('"' | '`')) => {
                let quote = word.quote_style.unwrap_or('"');
                if word.value.contains('\\') {
                    return Err(EngineError::Unsupported("a backslash in a quoted identifier".into()));
                }
                word.value = word.value.replace(&format!("{quote}{quote}"), &quote.to_string());
                Token::Word(word)
            }
            Token::DollarQuotedString(text) => Token::SingleQuotedString(text.value),
            Token::HexStringLiteral(hex) if numeric => {
                let digits = hex.replace('_', "");
                if digits.is_empty() {
                    return Err(syntax("`0x` right after the number 0 needs hexadecimal digits"));
                }
                match u64::from_str_radix(&digits, 16) {
                    Ok(n) => Token::Number(n.to_string(), false),
                    Err(_) => {
                        return Err(EngineError::Unsupported(format!(
                            "the hexadecimal literal 0x{hex} (beyond UInt64, which ClickHouse reads as a Float64)"
                        )));
                    }
                }
            }
            Token::HexStringLiteral(hex) => {
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                    .collect::<Option<Vec<u8>>>();
                match bytes.and_then(|b| String::from_utf8(b).ok()) {
                    Some(text) => Token::SingleQuotedString(text),
                    None => {
                        return Err(EngineError::Unsupported(format!(
                            "the string literal x'{hex}' (it is not UTF-8 text, or not whole bytes)"
                        )));
                    }
                }
            }
            other => other,
        };
        // A word right after a number, with nothing between them.
        if numeric && let Some(TokenWithSpan { token: Token::Word(word), .. }) = iter.peek() {
            // `0b101`, and `0X1F` (the tokenizer reads only a lower-case `0x` as one token).
            let radix = |prefix: [char; 2], radix: u32| {
                word.value.strip_prefix(prefix).filter(|d| {
                    !d.is_empty() && d.chars().all(|c| c == '_' || c.is_digit(radix)) && !d.starts_with('_')
                })
            };
            let digits = radix(['b', 'B'], 2).map(|d| (d, 2)).or_else(|| radix(['X', 'x'], 16).map(|d| (d, 16)));
            match (&token, digits) {
                (Token::Number(zero, _), Some((digits, radix))) if zero == "0" && word.quote_style.is_none() => {
                    let value = u64::from_str_radix(&digits.replace('_', ""), radix).map_err(|_| {
                        EngineError::Unsupported(format!("the literal 0{} (beyond UInt64)", word.value))
                    })?;
                    iter.next();
                    tokens.push(Token::Number(value.to_string(), false));
                    continue;
                }
                _ => {
                    return Err(syntax(format!("unexpected `{}` right after the number `{token}`", word.value)));
                }
            }
        }
        tokens.push(token);
    }
    Ok(tokens)
}

/// A string literal's text as ClickHouse reads it (its `parseComplexEscapeSequence`), from the text between the
/// quotes: a doubled quote is one quote; `\xHH` is that byte; `\N` is nothing; `\a \b \e \f \n \r \t \v \0`
/// are their control characters and `\\ \' \" \` \/` their characters; any other `\c` stays `\c`, backslash
/// included (so `LIKE '100\%'` keeps its escape). sqlparser's own reading drops that backslash and reads `\x41` as
/// `x41`: different strings, so different answers.
pub(crate) fn unescape(raw: &str, quote: char) -> Result<String, EngineError> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        if c == quote && chars.peek() == Some(&quote) {
            chars.next();
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        if c != '\\' {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some(next) = chars.next() else {
            out.push(b'\\');
            break;
        };
        match next {
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(byte) if hex.len() == 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => out.push(byte),
                    _ => {
                        return Err(EngineError::Unsupported(format!(
                            "the escape `\\x{hex}` in a string literal (`\\x` takes two hexadecimal digits)"
                        )));
                    }
                }
            }
            'N' => {}
            _ => {
                let decoded = match next {
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'e' => '\u{1b}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    '0' => '\0',
                    other => other,
                };
                if !matches!(decoded, '\\' | '\'' | '"' | '`' | '/') && (decoded as u32) > 31 {
                    out.push(b'\\');
                }
                out.extend_from_slice(decoded.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| EngineError::Unsupported("a string literal whose `\\x` escapes do not make UTF-8 text".into()))
}

/// Splits a trailing `FORMAT <name>` clause off a query: `(query, format)`.
pub fn take_format(sql: &str) -> (String, Option<String>) {
    let dialect = ClickHouseDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return (sql.to_string(), None);
    };
    let significant: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_) | Token::SemiColon))
        .map(|(i, _)| i)
        .collect();
    if let [.., a, b] = significant[..]
        && let (Token::Word(kw), Token::Word(name)) = (&tokens[a].token, &tokens[b].token)
        && kw.keyword == Keyword::FORMAT
        && kw.quote_style.is_none()
    {
        // The text before `FORMAT`, cut from the original: printing the tokens again would lose how strings were
        // quoted and escaped (`'it''s'`, `'a\\b'`).
        let at = tokens[a].span.start;
        let offset = sql.split_inclusive('\n').take((at.line as usize).saturating_sub(1)).map(str::len).sum::<usize>()
            + sql
                .split_inclusive('\n')
                .nth((at.line as usize).saturating_sub(1))
                .map(|line| {
                    line.chars().take((at.column as usize).saturating_sub(1)).map(char::len_utf8).sum::<usize>()
                })
                .unwrap_or(0);
        if let Some(text) = sql.get(..offset) {
            return (text.to_string(), Some(name.value.clone()));
        }
    }
    (sql.to_string(), None)
}

/// How deeply a query may nest: parentheses, brackets, `CASE`, subqueries, and chains of operators and `UNION`s
/// (`a OR b OR c` parses as a left-deep tree, one level per `OR`). ClickHouse's own `max_ast_depth` is 1000 too.
/// It is enforced on the tokens, before the parser builds any tree, so no recursive pass ever sees a deeper one.
pub const MAX_QUERY_DEPTH: usize = 1000;

/// How deep the parser itself may recurse (nested calls and parentheses): the depth bound above already limits the
/// tree, and the query threads' stacks hold it (sqlparser grows its stack on demand besides).
pub(super) const PARSER_RECURSION_LIMIT: usize = 2 * MAX_QUERY_DEPTH;

/// The most tokens one query may have: a bound on the work every later pass does.
pub const MAX_QUERY_TOKENS: usize = 1_000_000;

/// Which engine a query is parsed for: the constructs each can run differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// DataFusion: ClickHouse-only clauses (`PREWHERE`, `FINAL`, `SETTINGS`, `ARRAY JOIN`, …) are refused.
    #[default]
    DataFusion,
    /// ClickHouse itself: every clause the parser reads is passed on.
    ClickHouse,
}

/// An unquoted word, upper-cased: how ClickHouse's keywords are matched.
fn bare_word(token: &Token) -> Option<String> {
    match token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Rejects ClickHouse constructs the engine cannot honour, naming them.
pub(super) fn check_constructs(tokens: &[Token], flavor: Flavor) -> Result<(), EngineError> {
    let words: Vec<&Token> = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let kw = |i: usize| words.get(i).and_then(|t| bare_word(t));
    match kw(0).as_deref() {
        Some("SELECT" | "WITH" | "DESCRIBE" | "DESC") | None => {}
        Some(_) if matches!(words.first(), Some(Token::LParen)) => {}
        Some(other) => {
            let kind = {
                let mut k = other.to_ascii_lowercase();
                if let Some(first) = k.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                k
            };
            return Err(EngineError::Syntax(format!(
                "Only SELECT or DESCRIBE queries are supported. Got: {kind}Query"
            )));
        }
    }
    let mut statements = 0;
    for (i, t) in words.iter().enumerate() {
        if matches!(t, Token::SemiColon) && i + 1 < words.len() {
            statements += 1;
        }
        let Some(word) = kw(i) else { continue };
        let next = kw(i + 1);
        let unsupported = match (word.as_str(), next.as_deref()) {
            ("INTO", _) => Some("INTO (only SELECT queries run; they cannot write)"),
            _ if flavor == Flavor::ClickHouse => None,
            ("WITH", Some("RECURSIVE")) => Some("WITH RECURSIVE"),
            ("FINAL", _) => Some("FINAL"),
            ("SAMPLE", _) => Some("SAMPLE"),
            ("GLOBAL", _) => Some("GLOBAL"),
            ("ASOF", _) => Some("ASOF JOIN"),
            ("INTERPOLATE", _) => Some("INTERPOLATE"),
            _ => None,
        };
        if let Some(construct) = unsupported {
            return Err(EngineError::Unsupported(construct.to_string()));
        }
    }
    if statements > 0 {
        return Err(EngineError::Syntax("Syntax error (Multi-statements are not allowed)".into()));
    }
    Ok(())
}

/// An upper bound on the depth of the tree the parser would build from these tokens, computed without building
/// it, in one pass. Each open parenthesis, bracket or `CASE` adds a level. Within a level, each `AND`/`OR`/`XOR`/
/// `NOT` and each set operation adds one (a chain of them parses as a left-deep tree), plus the longest run of
/// other operators between two of them (`a = 1 OR b = 2`: the comparisons are operands of the `OR`s, they do not
/// nest on one another). A comma or a clause keyword starts a new expression in the same level.
pub fn depth_bound(tokens: &[Token]) -> usize {
    #[derive(Default)]
    struct Level {
        logical: usize,
        run: usize,
        longest_run: usize,
        sets: usize,
    }
    impl Level {
        fn depth(&self) -> usize {
            1 + self.logical + self.longest_run + self.sets
        }
    }
    let mut levels: Vec<Level> = vec![Level::default()];
    // The sum of every level's depth, kept as tokens arrive (so the pass stays linear).
    let mut depth = 1usize;
    let mut deepest = 1usize;
    for token in tokens {
        enum Step {
            Open,
            Close,
            Reset,
            Logical,
            Operator,
            SetOperation,
            Nothing,
        }
        let step = match token {
            Token::LParen | Token::LBracket | Token::LBrace => Step::Open,
            Token::RParen | Token::RBracket | Token::RBrace => Step::Close,
            Token::Comma => Step::Reset,
            Token::Word(w) if w.quote_style.is_none() => match w.keyword {
                Keyword::CASE => Step::Open,
                Keyword::END => Step::Close,
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::ORDER
                | Keyword::HAVING
                | Keyword::LIMIT
                | Keyword::OFFSET
                | Keyword::BY
                | Keyword::ON
                | Keyword::USING
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::QUALIFY
                | Keyword::WINDOW => Step::Reset,
                Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT => Step::SetOperation,
                Keyword::AND | Keyword::OR | Keyword::XOR | Keyword::NOT => Step::Logical,
                Keyword::IS
                | Keyword::IN
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::BETWEEN
                | Keyword::DIV
                | Keyword::MOD
                | Keyword::REGEXP
                | Keyword::RLIKE
                | Keyword::SIMILAR
                | Keyword::INTERVAL
                | Keyword::AS
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::JOIN
                | Keyword::EXISTS => Step::Operator,
                _ => Step::Nothing,
            },
            Token::Whitespace(_)
            | Token::Word(_)
            | Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::Period
            | Token::SemiColon
            | Token::EOF => Step::Nothing,
            // Every other token is an operator: `+`, `=`, `::`, `->`, `||`, …
            _ => Step::Operator,
        };
        let Some(top) = levels.last_mut() else { break };
        let before = top.depth();
        match step {
            Step::Open => levels.push(Level::default()),
            Step::Close => {
                if levels.len() > 1
                    && let Some(closed) = levels.pop()
                {
                    depth -= closed.depth();
                }
                deepest = deepest.max(depth);
                continue;
            }
            Step::Reset => {
                top.logical = 0;
                top.run = 0;
                top.longest_run = 0;
            }
            Step::Logical => {
                top.logical += 1;
                top.run = 0;
            }
            Step::Operator => {
                top.run += 1;
                top.longest_run = top.longest_run.max(top.run);
            }
            Step::SetOperation => top.sets += 1,
            Step::Nothing => {}
        }
        match step {
            Step::Open => depth += 1,
            _ => {
                if let Some(top) = levels.last() {
                    depth = depth + top.depth() - before;
                }
            }
        }
        deepest = deepest.max(depth);
    }
    deepest
}

pub(super) fn check_depth(tokens: &[Token]) -> Result<(), EngineError> {
    let significant = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))).count();
    if significant > MAX_QUERY_TOKENS {
        return Err(EngineError::Syntax(format!(
            "Max query size exceeded: the query has {significant} tokens, the limit is {MAX_QUERY_TOKENS}"
        )));
    }
    let depth = depth_bound(tokens);
    if depth > MAX_QUERY_DEPTH {
        return Err(EngineError::Syntax(format!(
            "AST is too deep: the query nests about {depth} levels (parentheses, CASE, subqueries and chained \
             operators or UNIONs), the limit is {MAX_QUERY_DEPTH}. (TOO_DEEP_AST)"
        )));
    }
    Ok(())
}

/// `x IN ['a', 'b']` (how templates render `Array` params) → `x IN ('a', 'b')`, which the parser accepts. One pass
/// over the tokens with a stack of open brackets, so unbalanced input costs no more than balanced input.
pub(super) fn in_array_to_tuple(tokens: &mut [Token]) {
    let mut open: Vec<(usize, bool)> = Vec::new();
    let mut previous_is_in = false;
    for i in 0..tokens.len() {
        match &tokens[i] {
            Token::Whitespace(_) => continue,
            Token::LBracket => open.push((i, previous_is_in)),
            Token::RBracket => {
                if let Some((start, after_in)) = open.pop()
                    && after_in
                {
                    tokens[start] = Token::LParen;
                    tokens[i] = Token::RParen;
                }
            }
            _ => {}
        }
        previous_is_in = matches!(&tokens[i], Token::Word(w) if w.keyword == Keyword::IN && w.quote_style.is_none());
    }
}

/// Tokens of a ClickHouse query, checked for size, depth and unsupported constructs, and how many `FINAL`
/// modifiers were taken off its tables (ClickHouse flavor only).
/// What [`tokens_of`] took off the tokens for settings: `FINAL` modifiers, and `ANY` join strictness.
#[derive(Debug, Default)]
pub(super) struct Taken {
    finals: usize,
    any_joins: bool,
}

pub(super) fn tokens_of(sql: &str, flavor: Flavor) -> Result<(Vec<Token>, Taken), EngineError> {
    let mut tokens = lex(sql)?;
    check_depth(&tokens)?;
    check_constructs(&tokens, flavor)?;
    refuse_private_names(&tokens)?;
    tokens.retain(|t| !matches!(t, Token::Whitespace(_)));
    substr_as_written(&mut tokens);
    using_in_parentheses(&mut tokens);
    join_kind_first(&mut tokens);
    in_tuple_call(&mut tokens);
    interval_strings(&mut tokens);
    // Both engines: the DataFusion engine converts `CAST(x, 'T')` as ClickHouse does, under ClickHouse's name.
    casts_as_written(&mut tokens);
    array_join_lists(&mut tokens)?;
    asof_joins(&mut tokens);
    // `x IN name` → `x IN (name)`; the DataFusion engine then reads a CTE's name there as its rows
    // ([`super::in_ctes_as_subqueries`]).
    in_lone_name(&mut tokens);
    if flavor == Flavor::ClickHouse {
        collations(&mut tokens);
    }
    let taken = match flavor {
        Flavor::ClickHouse => Taken { finals: take_finals(&mut tokens), any_joins: take_join_strictness(&mut tokens)? },
        // `ALL` is the default strictness: taken off (an `ANY` join was refused above).
        Flavor::DataFusion => Taken { finals: 0, any_joins: take_join_strictness(&mut tokens)? },
    };
    Ok((tokens, taken))
}

/// `CAST(x AS T)` → `CAST(x, 'T')`, with `T` as written: ClickHouse reads the first as the second, and names the
/// column by the type as written (`CAST(x, 'DATE')`, `CAST(x, 'INT UNSIGNED')`); sqlparser's cast node keeps only
/// which type it is. So every type ClickHouse knows reaches it, spelled as the query spelled it.
pub(super) fn casts_as_written(tokens: &mut Vec<Token>) {
    let mut i = tokens.len();
    while i > 0 {
        i -= 1;
        let is_cast = matches!(&tokens[i], Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::CAST);
        if !is_cast || tokens.get(i + 1) != Some(&Token::LParen) {
            continue;
        }
        // The closing parenthesis, and the last `AS` at the call's own level.
        let (mut depth, mut as_at, mut close) = (0usize, None, None);
        for (j, t) in tokens.iter().enumerate().skip(i + 1) {
            match t {
                Token::LParen | Token::LBracket => depth += 1,
                Token::RParen | Token::RBracket => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                Token::Word(w) if depth == 1 && w.quote_style.is_none() && w.keyword == Keyword::AS => as_at = Some(j),
                _ => {}
            }
        }
        let (Some(k), Some(close)) = (as_at, close) else { continue };
        let Some(text) = super::dialect::type_text(&tokens[k + 1..close]) else { continue };
        tokens.splice(k..close, [Token::Comma, Token::SingleQuotedString(text)]);
    }
}

/// The name of the table function an `ARRAY JOIN` list of expressions is read as (see `array_join_lists`). Its
/// first character is one no query can hold in a name (refused at lexing), so only that pass makes it.
pub const ARRAY_JOIN_MARK: &str = "\u{E001}array_join";

/// The function the DataFusion engine unfolds one array of an `ARRAY JOIN` list with, beside the others (its
/// arguments: that array, then all of them, whose lengths must agree). Named so no query can call it.
pub const ARRAY_JOIN_ZIP: &str = "\u{E001}arrayJoinZip";

/// The match condition an `ASOF JOIN` is read with (see `asof_joins`): ClickHouse writes the inequality in `ON`,
/// the parser reads only the form with `MATCH_CONDITION (…)`.
pub const ASOF_MARK: &str = "\u{E001}asof";
/// [`ASOF_MARK`] for `LEFT ASOF JOIN`.
pub const ASOF_LEFT_MARK: &str = "\u{E001}asof_left";

/// The first character of the name an `ORDER BY … COLLATE 'locale'` is read with (see `collations`), the locale
/// after it.
pub const COLLATE_MARK: char = '\u{E001}';

/// The characters only the server's own rewrites put in names ([`ARRAY_JOIN_MARK`], [`super::REPEATED_NAME_MARK`]).
const PRIVATE_NAME_CHARS: [char; 2] = ['\u{E000}', '\u{E001}'];

/// Refuses a name holding one of [`PRIVATE_NAME_CHARS`]: only the server's rewrites write them.
fn refuse_private_names(tokens: &[Token]) -> Result<(), EngineError> {
    if tokens.iter().any(|t| matches!(t, Token::Word(w) if w.value.contains(PRIVATE_NAME_CHARS))) {
        return Err(EngineError::Unsupported("the characters U+E000 and U+E001 in a name".into()));
    }
    Ok(())
}

/// `ARRAY JOIN e1 AS a1, e2 AS a2` (expressions, or several arrays at once): the parser reads only one table-like
/// name there, and would read `e2` as a second table. The list becomes the table function
/// `[ARRAY_JOIN_MARK](e1, e2) AS [ARRAY_JOIN_MARK](a1, a2)`, an empty name for an item written without an alias;
/// each engine turns it back into what it runs. One column name (`ARRAY JOIN tags AS tag`) is left as written.
pub(super) fn array_join_lists(tokens: &mut Vec<Token>) -> Result<(), EngineError> {
    const ENDS: &[&str] = &[
        "WHERE",
        "PREWHERE",
        "GROUP",
        "ORDER",
        "LIMIT",
        "HAVING",
        "SETTINGS",
        "FORMAT",
        "UNION",
        "WINDOW",
        "QUALIFY",
        "EXCEPT",
        "INTERSECT",
        "JOIN",
        "LEFT",
        "RIGHT",
        "INNER",
        "FULL",
        "CROSS",
        "ARRAY",
        "GLOBAL",
        "ANY",
        "ALL",
        "ASOF",
        "SEMI",
        "ANTI",
        "PASTE",
        "OUTER",
        "OFFSET",
        "FETCH",
    ];
    let mark = |value: &str| {
        Token::Word(datafusion::sql::sqlparser::tokenizer::Word {
            value: value.into(),
            quote_style: Some('`'),
            keyword: Keyword::NoKeyword,
        })
    };
    let mut i = 0;
    while i + 1 < tokens.len() {
        if bare_word(&tokens[i]).as_deref() != Some("ARRAY") || bare_word(&tokens[i + 1]).as_deref() != Some("JOIN") {
            i += 1;
            continue;
        }
        let start = i + 2;
        // The items: top-level commas part them; a closing parenthesis, `;` or a clause keyword (not a call:
        // `left(s, 1)`) ends the list.
        let (mut depth, mut end, mut items, mut item_start) = (0usize, tokens.len(), Vec::new(), start);
        for (j, t) in tokens.iter().enumerate().skip(start) {
            match t {
                Token::LParen | Token::LBracket => depth += 1,
                Token::RParen | Token::RBracket if depth == 0 => {
                    end = j;
                    break;
                }
                Token::RParen | Token::RBracket => depth -= 1,
                Token::SemiColon if depth == 0 => {
                    end = j;
                    break;
                }
                Token::Comma if depth == 0 => {
                    items.push(item_start..j);
                    item_start = j + 1;
                }
                Token::Word(_)
                    if depth == 0
                        && bare_word(t).is_some_and(|w| ENDS.contains(&w.as_str()))
                        && tokens.get(j + 1) != Some(&Token::LParen) =>
                {
                    end = j;
                    break;
                }
                _ => {}
            }
        }
        items.push(item_start..end);
        // Each item: an expression, then `AS alias` or nothing.
        let mut split = Vec::with_capacity(items.len());
        for item in &items {
            let t = &tokens[item.clone()];
            match t {
                [expr @ .., Token::Word(as_), alias @ Token::Word(_)]
                    if as_.quote_style.is_none() && as_.keyword == Keyword::AS && !expr.is_empty() =>
                {
                    split.push((expr.to_vec(), Some(alias.clone())));
                }
                // `range(n) x`, `[1, 2] x`: an alias without AS, after a call or an array.
                [expr @ .., Token::RParen | Token::RBracket, alias @ Token::Word(w)]
                    if w.quote_style.is_some()
                        || !matches!(
                            w.value.to_ascii_uppercase().as_str(),
                            "AND"
                                | "OR"
                                | "XOR"
                                | "NOT"
                                | "IS"
                                | "IN"
                                | "LIKE"
                                | "ILIKE"
                                | "BETWEEN"
                                | "DIV"
                                | "MOD"
                                | "COLLATE"
                                | "AS"
                        ) =>
                {
                    let mut expr = expr.to_vec();
                    expr.push(t[t.len() - 2].clone());
                    split.push((expr, Some(alias.clone())));
                }
                // `arr a`, `t.arr a`: a column name and an alias without AS.
                [Token::Word(_), alias @ Token::Word(w)]
                | [Token::Word(_), Token::Period, Token::Word(_), alias @ Token::Word(w)]
                    if w.quote_style.is_some() || w.keyword != Keyword::AS =>
                {
                    split.push((t[..t.len() - 1].to_vec(), Some(alias.clone())));
                }
                [] => return Err(syntax("an empty item in an ARRAY JOIN list")),
                expr => split.push((expr.to_vec(), None)),
            }
        }
        let is_name =
            |expr: &[Token]| matches!(expr, [Token::Word(_)] | [Token::Word(_), Token::Period, Token::Word(_)]);
        if let [(expr, _)] = split.as_slice()
            && is_name(expr)
        {
            i = end;
            continue;
        }
        let mut list = vec![mark(ARRAY_JOIN_MARK), Token::LParen];
        let mut aliases = vec![
            Token::Word(datafusion::sql::sqlparser::tokenizer::Word {
                value: "AS".into(),
                quote_style: None,
                keyword: Keyword::AS,
            }),
            mark(ARRAY_JOIN_MARK),
            Token::LParen,
        ];
        for (n, (expr, alias)) in split.into_iter().enumerate() {
            if n > 0 {
                list.push(Token::Comma);
                aliases.push(Token::Comma);
            }
            list.extend(expr);
            aliases.push(alias.unwrap_or_else(|| mark("")));
        }
        list.push(Token::RParen);
        aliases.push(Token::RParen);
        list.extend(aliases);
        let len = list.len();
        tokens.splice(start..end, list);
        i = start + len;
    }
    Ok(())
}

/// The items of an `ARRAY JOIN` list as `array_join_lists` reads them: each expression, with its alias
/// (an empty name where none was written).
pub fn array_join_items(factor: &TableFactor) -> Option<Vec<(&Expr, &Ident)>> {
    let TableFactor::Table { name, args: Some(args), alias: Some(alias), .. } = factor else { return None };
    if tables::single_name(name).as_deref() != Some(ARRAY_JOIN_MARK)
        || alias.name.value != ARRAY_JOIN_MARK
        || args.settings.is_some()
        || args.args.len() != alias.columns.len()
    {
        return None;
    }
    args.args
        .iter()
        .zip(&alias.columns)
        .map(|(arg, column)| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) if column.data_type.is_none() => Some((e, &column.name)),
            _ => None,
        })
        .collect()
}

/// `[LEFT] ASOF JOIN t ON …` (also `ASOF LEFT JOIN`, `ASOF INNER JOIN`) → `ASOF JOIN t MATCH_CONDITION
/// ([ASOF_MARK]) ON …`, the form the parser reads; the mark says which kind it was, and the ClickHouse engine prints
/// it back as ClickHouse writes it. Only `ON` or `USING` ends the joined relation; without either the parser fails.
pub(super) fn asof_joins(tokens: &mut Vec<Token>) {
    let kind = |t: &Token| bare_word(t).filter(|w| matches!(w.as_str(), "ASOF" | "LEFT" | "INNER" | "OUTER"));
    let mut i = 0;
    while i < tokens.len() {
        if bare_word(&tokens[i]).as_deref() != Some("ASOF") {
            i += 1;
            continue;
        }
        let mut start = i;
        while start > 0 && kind(&tokens[start - 1]).is_some() {
            start -= 1;
        }
        let mut join = i;
        while join < tokens.len() && kind(&tokens[join]).is_some() {
            join += 1;
        }
        if tokens.get(join).and_then(bare_word).as_deref() != Some("JOIN") {
            i += 1;
            continue;
        }
        let left = (start..join).any(|k| bare_word(&tokens[k]).as_deref() == Some("LEFT"));
        let word = |value: &str, keyword: Keyword| {
            Token::Word(datafusion::sql::sqlparser::tokenizer::Word { value: value.into(), quote_style: None, keyword })
        };
        tokens.splice(start..=join, [word("ASOF", Keyword::ASOF), word("JOIN", Keyword::JOIN)]);
        // The relation ends at the first top-level ON or USING.
        let mut depth = 0usize;
        let mut at = None;
        for (k, t) in tokens.iter().enumerate().skip(start + 2) {
            match t {
                Token::LParen | Token::LBracket => depth += 1,
                Token::RParen | Token::RBracket if depth == 0 => break,
                Token::RParen | Token::RBracket => depth -= 1,
                _ if depth == 0 && matches!(bare_word(t).as_deref(), Some("ON" | "USING")) => {
                    at = Some(k);
                    break;
                }
                _ => {}
            }
        }
        let Some(at) = at else {
            i = start + 2;
            continue;
        };
        let mark = Token::Word(datafusion::sql::sqlparser::tokenizer::Word {
            value: (if left { ASOF_LEFT_MARK } else { ASOF_MARK }).into(),
            quote_style: Some('`'),
            keyword: Keyword::NoKeyword,
        });
        tokens.splice(at..at, [word("MATCH_CONDITION", Keyword::MATCH_CONDITION), Token::LParen, mark, Token::RParen]);
        i = at + 4;
    }
}

/// `x IN name` → `x IN (name)`, which ClickHouse reads alike (a column of that name, else a CTE or table) and the
/// parser reads at all. The ClickHouse engine lets it through only for a CTE's name.
pub(super) fn in_lone_name(tokens: &mut Vec<Token>) {
    parenthesize_lone_name(tokens, Keyword::IN, |w| w.quote_style.is_some() || w.keyword == Keyword::NoKeyword);
}

/// `keyword name` → `keyword (name)` where the name (one word that `takes`, not a call or a qualified name) follows
/// the unquoted `keyword`.
fn parenthesize_lone_name(
    tokens: &mut Vec<Token>,
    keyword: Keyword,
    takes: impl Fn(&datafusion::sql::sqlparser::tokenizer::Word) -> bool,
) {
    let mut i = 0;
    while i + 1 < tokens.len() {
        if matches!(&tokens[i], Token::Word(w) if w.quote_style.is_none() && w.keyword == keyword)
            && matches!(&tokens[i + 1], Token::Word(w) if takes(w))
            && !matches!(tokens.get(i + 2), Some(Token::Period | Token::LParen))
        {
            tokens.insert(i + 1, Token::LParen);
            tokens.insert(i + 3, Token::RParen);
            i += 3;
        }
        i += 1;
    }
}

/// `ORDER BY s DESC NULLS LAST COLLATE 'en'` → `ORDER BY s COLLATE <mark>en DESC NULLS LAST` (the name quoted, the mark
/// [`COLLATE_MARK`]): ClickHouse writes the collation after the direction, the parser reads one only as part of the
/// expression. The ClickHouse engine prints it back in its place.
pub(super) fn collations(tokens: &mut Vec<Token>) {
    let mut i = 0;
    while i + 1 < tokens.len() {
        let is_collate = bare_word(&tokens[i]).as_deref() == Some("COLLATE");
        let Token::SingleQuotedString(locale) = &tokens[i + 1] else {
            i += 1;
            continue;
        };
        if !is_collate {
            i += 1;
            continue;
        }
        let mut at = i;
        while at > 0
            && bare_word(&tokens[at - 1])
                .is_some_and(|w| matches!(w.as_str(), "ASC" | "DESC" | "NULLS" | "FIRST" | "LAST"))
        {
            at -= 1;
        }
        let name = Token::Word(datafusion::sql::sqlparser::tokenizer::Word {
            value: format!("{COLLATE_MARK}{locale}"),
            quote_style: Some('`'),
            keyword: Keyword::NoKeyword,
        });
        let collate = tokens[i].clone();
        tokens.drain(i..i + 2);
        tokens.splice(at..at, [collate, name]);
        i += 2;
    }
}

/// `SEMI LEFT JOIN` → `LEFT SEMI JOIN` (and `ANTI`, `RIGHT`): ClickHouse takes either order, the parser the second.
pub(super) fn join_kind_first(tokens: &mut [Token]) {
    for i in 0..tokens.len().saturating_sub(2) {
        if matches!(bare_word(&tokens[i]).as_deref(), Some("SEMI" | "ANTI"))
            && matches!(bare_word(&tokens[i + 1]).as_deref(), Some("LEFT" | "RIGHT"))
            && bare_word(&tokens[i + 2]).as_deref() == Some("JOIN")
        {
            tokens.swap(i, i + 1);
        }
    }
}

/// `JOIN t USING id` → `JOIN t USING (id)`: ClickHouse takes one column without parentheses, the parser only a
/// list in them. The column's name and the join are the same either way.
pub(super) fn using_in_parentheses(tokens: &mut Vec<Token>) {
    parenthesize_lone_name(tokens, Keyword::USING, |_| true);
}

/// `x IN tuple(1, 2)` → `x IN (1, 2)`, which the parser accepts and ClickHouse names the same (`in(x, (1, 2))`).
/// Only with two elements or more: `tuple(1)` is a tuple, `(1)` is not.
pub(super) fn in_tuple_call(tokens: &mut Vec<Token>) {
    let mut i = 0;
    while i + 2 < tokens.len() {
        let is_in = matches!(&tokens[i], Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::IN);
        let is_tuple = matches!(&tokens[i + 1], Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("tuple"));
        if is_in && is_tuple && tokens[i + 2] == Token::LParen {
            let mut depth = 0usize;
            let mut commas = 0usize;
            for t in &tokens[i + 2..] {
                match t {
                    Token::LParen | Token::LBracket => depth += 1,
                    Token::RParen | Token::RBracket => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Token::Comma if depth == 1 => commas += 1,
                    _ => {}
                }
            }
            if commas > 0 {
                tokens.remove(i + 1);
            }
        }
        i += 1;
    }
}

/// `INTERVAL '1 day'` → `INTERVAL 1 day`: ClickHouse reads a count and a unit from the string, and names both
/// forms `toIntervalDay(1)`. Other strings are left to the parser, which refuses them.
pub(super) fn interval_strings(tokens: &mut Vec<Token>) {
    use datafusion::sql::sqlparser::tokenizer::Word;
    const UNITS: &[&str] = &[
        "nanosecond",
        "microsecond",
        "millisecond",
        "second",
        "minute",
        "hour",
        "day",
        "week",
        "month",
        "quarter",
        "year",
    ];
    let mut i = 0;
    while i + 1 < tokens.len() {
        let is_interval =
            matches!(&tokens[i], Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::INTERVAL);
        if is_interval
            && let Token::SingleQuotedString(text) = &tokens[i + 1]
            && !matches!(tokens.get(i + 2), Some(Token::Word(w)) if w.quote_style.is_none()
                && UNITS.iter().any(|u| w.value.to_ascii_lowercase().trim_end_matches('s') == *u))
            && let Some((count, unit)) = text.trim().split_once(char::is_whitespace)
            && let (negative, count) = match count.strip_prefix('-') {
                Some(digits) => (true, digits),
                None => (false, count),
            }
            && !count.is_empty()
            && count.bytes().all(|b| b.is_ascii_digit())
        {
            let unit = unit.trim().to_ascii_lowercase();
            let singular = unit.strip_suffix('s').unwrap_or(&unit);
            if let Some(unit) = UNITS.iter().find(|u| **u == singular) {
                let count = count.to_string();
                tokens[i + 1] = Token::Number(count, false);
                // `'-1 hour'`: a negative count, `toIntervalHour(-1)` to ClickHouse.
                if negative {
                    tokens.insert(i + 1, Token::Minus);
                    i += 1;
                }
                tokens.insert(
                    i + 2,
                    Token::Word(Word {
                        value: unit.to_ascii_uppercase(),
                        quote_style: None,
                        keyword: unit_keyword(unit),
                    }),
                );
            }
        }
        i += 1;
    }
}

fn unit_keyword(unit: &str) -> Keyword {
    match unit {
        "nanosecond" => Keyword::NANOSECOND,
        "microsecond" => Keyword::MICROSECOND,
        "millisecond" => Keyword::MILLISECOND,
        "second" => Keyword::SECOND,
        "minute" => Keyword::MINUTE,
        "hour" => Keyword::HOUR,
        "day" => Keyword::DAY,
        "week" => Keyword::WEEK,
        "month" => Keyword::MONTH,
        "quarter" => Keyword::QUARTER,
        _ => Keyword::YEAR,
    }
}

/// `SUBSTR(s, i)` spelled in any case but `substr`, and `FLOOR(x)`/`CEIL(x)` in any case: plain function calls, so
/// the column keeps ClickHouse's name, which is the function as written (`SUBSTR(s, 2)`, `FLOOR(x)`); the parser's
/// own nodes for them forget the spelling. The `SUBSTR(s FROM i)` and `CEIL(x TO DAY)` forms then no longer parse,
/// and are refused as syntax errors (ClickHouse has neither).
pub(super) fn substr_as_written(tokens: &mut [Token]) {
    for i in 0..tokens.len().saturating_sub(1) {
        let call = tokens[i + 1] == Token::LParen;
        if let Token::Word(w) = &mut tokens[i]
            && call
            && w.quote_style.is_none()
            && ((w.keyword == Keyword::SUBSTR && w.value != "substr")
                || matches!(w.keyword, Keyword::FLOOR | Keyword::CEIL))
        {
            w.keyword = Keyword::NoKeyword;
        }
    }
}

/// Removes the `FINAL` modifiers that follow tables in `FROM`/`JOIN` (the parser would read them as aliases) and
/// counts them. The query then gets `SETTINGS final = 1`, which ClickHouse defines as `FINAL` on every table the
/// query reads; [`parse_for`] accepts that only when every table had its `FINAL`, so the meaning is unchanged.
pub(super) fn take_finals(tokens: &mut Vec<Token>) -> usize {
    // Per parenthesis level: whether the tokens are inside a FROM clause (tables, joins, aliases).
    let mut in_from = vec![false];
    let mut remove = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::LParen => in_from.push(false),
            Token::RParen if in_from.len() > 1 => {
                in_from.pop();
            }
            _ => {}
        }
        let Some(word) = bare_word(t) else { continue };
        let level = in_from.last_mut().expect("never empty");
        match word.as_str() {
            "FROM" | "JOIN" => *level = true,
            "SELECT" | "WHERE" | "PREWHERE" | "GROUP" | "ORDER" | "LIMIT" | "HAVING" | "SETTINGS" | "ON" | "USING"
            | "UNION" | "WINDOW" | "QUALIFY" | "EXCEPT" | "INTERSECT" | "FORMAT" => *level = false,
            "FINAL" if *level && i > 0 && matches!(tokens[i - 1], Token::Word(_) | Token::RParen) => remove.push(i),
            _ => {}
        }
    }
    for &i in remove.iter().rev() {
        tokens.remove(i);
    }
    remove.len()
}

/// Takes the `ANY`/`ALL` strictness off the joins, which the parser does not read (`a ANY LEFT JOIN b`, `a LEFT ANY
/// JOIN b`). `ALL` is ClickHouse's default and goes. `ANY` becomes `SETTINGS join_default_strictness = 'ANY'`
/// (returns true), which ClickHouse applies to every join written without a strictness: so every such join of the
/// query must be `ANY`, or the query is refused. Joins of their own kind (`CROSS`, `SEMI`, `ANTI`, `ASOF`, `ARRAY`,
/// `PASTE`) are not concerned.
pub(super) fn take_join_strictness(tokens: &mut Vec<Token>) -> Result<bool, EngineError> {
    const MODIFIERS: &[&str] = &[
        "LEFT", "RIGHT", "INNER", "FULL", "OUTER", "ANY", "ALL", "SEMI", "ANTI", "ASOF", "CROSS", "ARRAY", "GLOBAL",
        "PASTE",
    ];
    let (mut any, mut default, mut remove) = (0usize, 0usize, Vec::new());
    for j in 0..tokens.len() {
        if bare_word(&tokens[j]).as_deref() != Some("JOIN") {
            continue;
        }
        let mut start = j;
        while start > 0 && bare_word(&tokens[start - 1]).is_some_and(|w| MODIFIERS.contains(&w.as_str())) {
            start -= 1;
        }
        let modifiers: Vec<(usize, String)> =
            (start..j).filter_map(|i| bare_word(&tokens[i]).map(|w| (i, w))).collect();
        let has = |m: &str| modifiers.iter().any(|(_, w)| w == m);
        if ["CROSS", "SEMI", "ANTI", "ASOF", "ARRAY", "PASTE"].iter().any(|m| has(m)) {
            continue;
        }
        if has("ANY") {
            any += 1;
        } else {
            default += 1;
        }
        remove.extend(modifiers.iter().filter(|(_, w)| w == "ANY" || w == "ALL").map(|(i, _)| *i));
    }
    if remove.is_empty() {
        return Ok(false);
    }
    if tokens.iter().any(|t| bare_word(t).is_some_and(|w| w == "JOIN_DEFAULT_STRICTNESS")) {
        return Err(EngineError::Unsupported(
            "ANY/ALL join strictness together with the join_default_strictness setting".into(),
        ));
    }
    if any > 0 && default > 0 {
        return Err(EngineError::Unsupported(format!(
            "ANY JOIN next to joins of the default strictness in one query ({any} ANY, {default} other; \
             tinybird-local applies ANY to every join of a query or to none)"
        )));
    }
    for &i in remove.iter().rev() {
        tokens.remove(i);
    }
    Ok(any > 0)
}

/// Parses a ClickHouse query, inlining `WITH expr AS name` scalars. The text is tokenized once and the parser reads
/// those tokens: nothing is printed and parsed again, so what later passes check is what the text said.
pub fn parse(sql: &str) -> Result<Query, EngineError> {
    parse_for(sql, Flavor::DataFusion)
}

/// [`parse`] for an engine flavor: the ClickHouse flavor lets through the clauses only ClickHouse runs.
pub fn parse_for(sql: &str, flavor: Flavor) -> Result<Query, EngineError> {
    let (tokens, Taken { finals, any_joins }) = tokens_of(sql, flavor)?;
    let dialect = ClickHouseSql { users_forms: true };
    let mut parser = Parser::new(&dialect).with_recursion_limit(PARSER_RECURSION_LIMIT).with_tokens(tokens);
    let mut query = parse_query(&mut parser)?;
    if parser.peek_keyword(Keyword::LIMIT) && has_limit_by(&query) {
        query = limit_after_limit_by(&mut parser, query)?;
    }
    while parser.consume_token(&Token::SemiColon) {}
    if parser.peek_token().token != Token::EOF {
        return Err(syntax(format!("unexpected `{}` after the end of the query", parser.peek_token().token)));
    }
    if finals > 0 {
        let tables = base_table_count(&query);
        if finals != tables {
            return Err(EngineError::Unsupported(format!(
                "FINAL on {finals} of the {tables} tables this query reads (tinybird-local applies FINAL to every table \
                 of a query or to none)"
            )));
        }
        // `final = true` rather than `final = 1`: the same setting to ClickHouse, and the mark by which
        // [`has_final`] knows `FINAL` was written.
        let setting = datafusion::sql::sqlparser::ast::Setting {
            key: Ident::new("final"),
            value: Expr::value(datafusion::sql::sqlparser::ast::Value::Boolean(true)),
        };
        query.settings.get_or_insert_with(Vec::new).push(setting);
    }
    if any_joins {
        let setting = datafusion::sql::sqlparser::ast::Setting {
            key: Ident::new("join_default_strictness"),
            value: Expr::value(datafusion::sql::sqlparser::ast::Value::SingleQuotedString("ANY".into())),
        };
        query.settings.get_or_insert_with(Vec::new).push(setting);
    }
    Ok(query)
}

fn has_limit_by(query: &Query) -> bool {
    matches!(&query.limit_clause, Some(datafusion::sql::sqlparser::ast::LimitClause::LimitOffset { limit_by, .. }) if !limit_by.is_empty())
}

/// `… ORDER BY a LIMIT n BY k LIMIT m [OFFSET o]` (or `LIMIT o, m`): ClickHouse's last `LIMIT` over the rows `LIMIT
/// BY` keeps, in the query's order. Read here, after the query (sqlparser stops at it), as a query around it:
/// `SELECT * FROM (query) ORDER BY a LIMIT m OFFSET o`, ordered by the same selected columns.
fn limit_after_limit_by(parser: &mut Parser<'_>, query: Query) -> Result<Query, EngineError> {
    use datafusion::sql::sqlparser::ast::{
        LimitClause, Offset, OffsetRows, OrderBy, OrderByKind, SetExpr, TableFactor,
    };
    parser.expect_keyword(Keyword::LIMIT).map_err(syntax)?;
    let first = parser.parse_expr().map_err(syntax)?;
    let (limit, offset) = if parser.consume_token(&Token::Comma) {
        (parser.parse_expr().map_err(syntax)?, Some(first))
    } else if parser.parse_keyword(Keyword::OFFSET) {
        (first, Some(parser.parse_expr().map_err(syntax)?))
    } else {
        (first, None)
    };
    let order = match &query.order_by {
        None => None,
        Some(OrderBy { kind: OrderByKind::Expressions(items), .. }) => {
            let mut outer = Vec::with_capacity(items.len());
            for item in items {
                let name = match &item.expr {
                    Expr::Identifier(i) => i.clone(),
                    Expr::CompoundIdentifier(parts) if !parts.is_empty() => parts[parts.len() - 1].clone(),
                    _ => {
                        return Err(EngineError::Unsupported(
                            "LIMIT BY followed by LIMIT with ORDER BY on an expression that is not a selected column"
                                .into(),
                        ));
                    }
                };
                let mut item = item.clone();
                item.expr = Expr::Identifier(name);
                outer.push(item);
            }
            Some(OrderBy { kind: OrderByKind::Expressions(outer), interpolate: None })
        }
        Some(_) => return Err(EngineError::Unsupported("ORDER BY ALL with LIMIT BY".into())),
    };
    let generic = datafusion::sql::sqlparser::dialect::GenericDialect {};
    let mut outer = Parser::new(&generic)
        .try_with_sql("SELECT * FROM (SELECT 1) AS __tb_limit_after_by")
        .and_then(|mut p| p.parse_query())
        .map_err(syntax)?;
    if let SetExpr::Select(select) = outer.body.as_mut()
        && let Some(from) = select.from.first_mut()
        && let TableFactor::Derived { subquery, .. } = &mut from.relation
    {
        **subquery = query;
    }
    outer.order_by = order;
    outer.limit_clause = Some(LimitClause::LimitOffset {
        limit: Some(limit),
        offset: offset.map(|value| Offset { value, rows: OffsetRows::None }),
        limit_by: vec![],
    });
    Ok(*outer)
}

/// Whether `FINAL` was written on the tables of a query [`parse_for`] read (or `SETTINGS final = true`, which is
/// read the same way).
pub fn has_final(query: &Query) -> bool {
    query.settings.iter().flatten().any(|s| {
        s.key.value.eq_ignore_ascii_case("final")
            && matches!(&s.value, Expr::Value(v) if v.value == datafusion::sql::sqlparser::ast::Value::Boolean(true))
    })
}

/// How many table references (not CTE names, not subqueries) a query has.
pub(super) fn base_table_count(query: &Query) -> usize {
    struct Count<'a>(usize, &'a HashSet<String>);
    impl Visitor for Count<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, .. } = factor
                && !single_name(name).is_some_and(|n| self.1.contains(&n))
            {
                self.0 += 1;
            }
            ControlFlow::Continue(())
        }
    }
    let ctes = cte_names(query);
    let mut count = Count(0, &ctes);
    let _ = Visit::visit(query, &mut count);
    count.0
}

/// Parses one ClickHouse boolean expression (a JWT's `DATASOURCES:READ` filter, a delete condition): exactly one
/// expression, nothing after it.
pub fn parse_condition(sql: &str) -> Result<Expr, EngineError> {
    let dialect = ClickHouseSql::default();
    let mut tokens = lex(sql)?;
    check_depth(&tokens)?;
    refuse_private_names(&tokens)?;
    in_array_to_tuple(&mut tokens);
    tokens.retain(|t| !matches!(t, Token::Whitespace(_)));
    substr_as_written(&mut tokens);
    let mut parser = Parser::new(&dialect).with_recursion_limit(PARSER_RECURSION_LIMIT).with_tokens(tokens);
    let expr = parser.parse_expr().map_err(syntax)?;
    if parser.peek_token().token != Token::EOF {
        return Err(syntax(format!("unexpected `{}` after the condition", parser.peek_token().token)));
    }
    Ok(expr)
}

pub(super) fn parse_query(parser: &mut Parser<'_>) -> Result<Query, EngineError> {
    if !parser.peek_keyword(Keyword::WITH) {
        return parser.parse_query().map(|q| *q).map_err(syntax);
    }
    parser.expect_keyword_is(Keyword::WITH).map_err(syntax)?;
    // Refused for the DataFusion engine before parsing.
    let recursive = parser.parse_keyword(Keyword::RECURSIVE);
    let mut ctes = Vec::new();
    let mut scalars = Vec::new();
    loop {
        let is_cte = matches!(parser.peek_nth_token(0).token, Token::Word(_))
            && matches!(&parser.peek_nth_token(1).token, Token::Word(w) if w.keyword == Keyword::AS)
            && parser.peek_nth_token(2).token == Token::LParen;
        // `name (a, b) AS (…)`: the CTE's columns renamed.
        // (`sumState(id) AS st`, a scalar, has the same start: only `) AS (` after names and commas makes a CTE.)
        let with_columns = matches!(parser.peek_nth_token(0).token, Token::Word(_))
            && parser.peek_nth_token(1).token == Token::LParen
            && {
                let mut n = 2;
                while matches!(parser.peek_nth_token(n).token, Token::Word(_))
                    && parser.peek_nth_token(n + 1).token == Token::Comma
                {
                    n += 2;
                }
                matches!(parser.peek_nth_token(n).token, Token::Word(_))
                    && parser.peek_nth_token(n + 1).token == Token::RParen
                    && matches!(&parser.peek_nth_token(n + 2).token, Token::Word(w) if w.keyword == Keyword::AS)
                    && parser.peek_nth_token(n + 3).token == Token::LParen
            };
        if is_cte || with_columns {
            let name = parser.parse_identifier().map_err(syntax)?;
            let columns = if with_columns {
                parser
                    .parse_parenthesized_column_list(datafusion::sql::sqlparser::parser::IsOptional::Mandatory, false)
                    .map_err(syntax)?
                    .into_iter()
                    .map(|name| datafusion::sql::sqlparser::ast::TableAliasColumnDef { name, data_type: None })
                    .collect()
            } else {
                vec![]
            };
            parser.expect_keyword_is(Keyword::AS).map_err(syntax)?;
            parser.expect_token(&Token::LParen).map_err(syntax)?;
            let body = parse_query(parser)?;
            parser.expect_token(&Token::RParen).map_err(syntax)?;
            ctes.push(Cte {
                alias: TableAlias { explicit: false, name, columns, at: None },
                query: Box::new(body),
                from: None,
                materialized: None,
                closing_paren_token: AttachedToken::empty(),
            });
        } else {
            let expr = parser.parse_expr().map_err(syntax)?;
            parser.expect_keyword_is(Keyword::AS).map_err(syntax)?;
            let name = parser.parse_identifier().map_err(syntax)?;
            scalars.push((name.value, expr));
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    let mut query = parse_query(parser)?;
    if !ctes.is_empty() {
        match &mut query.with {
            Some(with) => {
                ctes.append(&mut with.cte_tables);
                with.cte_tables = ctes;
            }
            None => {
                query.with = Some(With { with_token: AttachedToken::empty(), recursive, cte_tables: ctes });
            }
        }
    }
    if !scalars.is_empty() {
        let scalars: HashMap<String, Expr> = scalars.into_iter().collect();
        let mut inline = InlineScalars { scalars: &scalars, error: None };
        let _ = VisitMut::visit(&mut query, &mut inline);
        if let Some(e) = inline.error {
            return Err(e);
        }
    }
    Ok(query)
}
