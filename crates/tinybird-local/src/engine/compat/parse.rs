//! Reading ClickHouse SQL: the `FORMAT` clause, the token-level guards (constructs the engine refuses, nesting
//! depth, size) and the parse itself, with `WITH expr AS name` scalars inlined.

use super::*;

pub(super) fn syntax(e: impl std::fmt::Display) -> EngineError {
    let text = e.to_string();
    EngineError::Syntax(format!("Syntax error: {}", text.trim_start_matches("sql parser error: ")))
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

/// Rejects ClickHouse constructs the engine cannot honour, naming them.
pub(super) fn check_constructs(tokens: &[Token], flavor: Flavor) -> Result<(), EngineError> {
    let words: Vec<&Token> = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let kw = |i: usize| match words.get(i) {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
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
            ("WITH", Some("RECURSIVE")) => Some("WITH RECURSIVE"),
            ("INTO", _) => Some("INTO (only SELECT queries run; they cannot write)"),
            _ if flavor == Flavor::ClickHouse => None,
            ("PREWHERE", _) => Some("PREWHERE"),
            ("FINAL", _) => Some("FINAL"),
            ("SETTINGS", _) => Some("SETTINGS"),
            ("SAMPLE", _) => Some("SAMPLE"),
            ("ARRAY", Some("JOIN")) => Some("ARRAY JOIN"),
            ("GLOBAL", _) => Some("GLOBAL"),
            ("ASOF", _) => Some("ASOF JOIN"),
            ("WITH", Some("TOTALS")) => Some("WITH TOTALS"),
            ("WITH", Some("FILL")) => Some("WITH FILL"),
            ("INTERPOLATE", _) => Some("INTERPOLATE"),
            ("ANY" | "ALL", Some("JOIN" | "LEFT" | "INNER" | "RIGHT")) => Some("ANY/ALL JOIN strictness"),
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
pub(super) fn tokens_of(sql: &str, flavor: Flavor) -> Result<(Vec<Token>, usize), EngineError> {
    let dialect = ClickHouseDialect {};
    let mut tokens = Tokenizer::new(&dialect, sql).tokenize().map_err(syntax)?;
    check_depth(&tokens)?;
    check_constructs(&tokens, flavor)?;
    in_array_to_tuple(&mut tokens);
    tokens.retain(|t| !matches!(t, Token::Whitespace(_)));
    substr_as_written(&mut tokens);
    let finals = match flavor {
        Flavor::ClickHouse => take_finals(&mut tokens),
        Flavor::DataFusion => 0,
    };
    Ok((tokens, finals))
}

/// `SUBSTR(s, i)` spelled in any case but `substr`: a plain function call, so the column keeps ClickHouse's name,
/// which is the function as written (`SUBSTR(s, 2)`); the parser's own `SUBSTR` node forgets the spelling. The
/// `SUBSTR(s FROM i)` form then no longer parses, and is refused as a syntax error.
pub(super) fn substr_as_written(tokens: &mut [Token]) {
    for i in 0..tokens.len().saturating_sub(1) {
        let call = tokens[i + 1] == Token::LParen;
        if let Token::Word(w) = &mut tokens[i]
            && call
            && w.quote_style.is_none()
            && w.keyword == Keyword::SUBSTR
            && w.value != "substr"
        {
            w.keyword = Keyword::NoKeyword;
        }
    }
}

/// Removes the `FINAL` modifiers that follow tables in `FROM`/`JOIN` (the parser would read them as aliases) and
/// counts them. The query then gets `SETTINGS final = 1`, which ClickHouse defines as `FINAL` on every table the
/// query reads; [`parse_for`] accepts that only when every table had its `FINAL`, so the meaning is unchanged.
pub(super) fn take_finals(tokens: &mut Vec<Token>) -> usize {
    let upper = |t: &Token| match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
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
        let Some(word) = upper(t) else { continue };
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

/// Parses a ClickHouse query, inlining `WITH expr AS name` scalars. The text is tokenized once and the parser reads
/// those tokens: nothing is printed and parsed again, so what later passes check is what the text said.
pub fn parse(sql: &str) -> Result<Query, EngineError> {
    parse_for(sql, Flavor::DataFusion)
}

/// [`parse`] for an engine flavor: the ClickHouse flavor lets through the clauses only ClickHouse runs.
pub fn parse_for(sql: &str, flavor: Flavor) -> Result<Query, EngineError> {
    let (tokens, finals) = tokens_of(sql, flavor)?;
    let dialect = ClickHouseDialect {};
    let mut parser = Parser::new(&dialect).with_recursion_limit(PARSER_RECURSION_LIMIT).with_tokens(tokens);
    let mut query = parse_query(&mut parser)?;
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
        let setting = datafusion::sql::sqlparser::ast::Setting {
            key: Ident::new("final"),
            value: Expr::value(datafusion::sql::sqlparser::ast::Value::Number("1".into(), false)),
        };
        query.settings.get_or_insert_with(Vec::new).push(setting);
    }
    Ok(query)
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
    let dialect = ClickHouseDialect {};
    let mut tokens = Tokenizer::new(&dialect, sql).tokenize().map_err(syntax)?;
    check_depth(&tokens)?;
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
    let mut ctes = Vec::new();
    let mut scalars = Vec::new();
    loop {
        let is_cte = matches!(parser.peek_nth_token(0).token, Token::Word(_))
            && matches!(&parser.peek_nth_token(1).token, Token::Word(w) if w.keyword == Keyword::AS)
            && parser.peek_nth_token(2).token == Token::LParen;
        if is_cte {
            let name = parser.parse_identifier().map_err(syntax)?;
            parser.expect_keyword_is(Keyword::AS).map_err(syntax)?;
            parser.expect_token(&Token::LParen).map_err(syntax)?;
            let body = parse_query(parser)?;
            parser.expect_token(&Token::RParen).map_err(syntax)?;
            ctes.push(Cte {
                alias: TableAlias { explicit: false, name, columns: vec![], at: None },
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
                query.with = Some(With { with_token: AttachedToken::empty(), recursive: false, cte_tables: ctes });
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
