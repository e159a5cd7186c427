//! The ClickHouse compatibility layer: ClickHouse SQL in, a DataFusion-ready statement out.
//!
//! Queries are parsed in the ClickHouse dialect, then rewritten so DataFusion computes what ClickHouse would:
//! ClickHouse function names and semantics (`count()` is UInt64, `/` is float division, `round` is banker's, …),
//! `WITH expr AS name`, `LIMIT n BY`. Every function must be on the list in `rewrite_function`; anything else, and
//! constructs such as `FINAL`, `PREWHERE` or `SETTINGS`, fail with an error naming them rather than running with
//! different semantics.

use super::EngineError;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Cte, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, LimitClause,
    ObjectNamePart, OrderByKind, Query, SelectItem, SetExpr, Statement, TableAlias, TableFactor, Value as SqlValue,
    ValueWithSpan, Visit, VisitMut, Visitor, VisitorMut, With, helpers::attached_token::AttachedToken,
};
use datafusion::sql::sqlparser::dialect::{ClickHouseDialect, GenericDialect};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

/// A translated query.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The statement DataFusion plans.
    pub statement: Statement,
    /// `SELECT count(*)` over the query without its outermost LIMIT, when it has one that is not a literal.
    pub count_statement: Option<Statement>,
    /// The `Nullable`/`LowCardinality` wrappers ClickHouse gives each selected column (see the `hints` module).
    pub wrappers: Vec<Option<super::hints::Wrappers>>,
    /// The outermost `LIMIT n [OFFSET m]` when both are literals: `(offset, limit)`. It is removed from `statement`
    /// and applied to the result, so one execution gives both the rows and `rows_before_limit_at_least`.
    pub literal_limit: Option<(usize, usize)>,
    /// Tables the query reads (CTE names excluded).
    pub tables: Vec<String>,
}

/// Quotes an identifier for ClickHouse SQL.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

fn syntax(e: impl std::fmt::Display) -> EngineError {
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
const PARSER_RECURSION_LIMIT: usize = 2 * MAX_QUERY_DEPTH;

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
fn check_constructs(tokens: &[Token], flavor: Flavor) -> Result<(), EngineError> {
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

fn check_depth(tokens: &[Token]) -> Result<(), EngineError> {
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
fn in_array_to_tuple(tokens: &mut [Token]) {
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
fn tokens_of(sql: &str, flavor: Flavor) -> Result<(Vec<Token>, usize), EngineError> {
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
fn substr_as_written(tokens: &mut [Token]) {
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
fn take_finals(tokens: &mut Vec<Token>) -> usize {
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
fn base_table_count(query: &Query) -> usize {
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

fn parse_query(parser: &mut Parser<'_>) -> Result<Query, EngineError> {
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

/// Whether an expression reads any of these names.
fn uses_any(expr: &Expr, names: &HashMap<String, Expr>) -> bool {
    struct Uses<'a>(&'a HashMap<String, Expr>);
    impl Visitor for Uses<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(i) if self.0.contains_key(&i.value) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    Visit::visit(expr, &mut Uses(names)).is_break()
}

struct InlineScalars<'a> {
    scalars: &'a HashMap<String, Expr>,
    error: Option<EngineError>,
}

impl VisitorMut for InlineScalars<'_> {
    type Break = ();

    /// `WITH 5 AS x SELECT x` names its column `x` in ClickHouse: a bare reference selected keeps the name.
    fn pre_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::SelectItem;
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(Expr::Identifier(ident)) = item
                && self.scalars.contains_key(&ident.value)
            {
                let alias = ident.clone();
                *item = SelectItem::ExprWithAlias { expr: Expr::Identifier(ident.clone()), alias };
            } else if let SelectItem::UnnamedExpr(expr) = item
                && uses_any(expr, self.scalars)
            {
                // ClickHouse names `five + 1` `plus(five, 1)`: named before the scalar is inlined, which would change
                // the name.
                let Some(name) = super::names::column_name(expr) else {
                    self.error = Some(EngineError::Unsupported(format!(
                        "an unaliased column using a `WITH … AS name` scalar (`{expr}`): give it an alias"
                    )));
                    return ControlFlow::Break(());
                };
                let expr = std::mem::replace(expr, Expr::value(SqlValue::Null));
                *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('`', name) };
            }
        }
        ControlFlow::Continue(())
    }
    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Identifier(ident) = expr
            && let Some(value) = self.scalars.get(&ident.value)
        {
            *expr = Expr::Nested(Box::new(value.clone()));
        }
        ControlFlow::Continue(())
    }
}

/// Renames every reference to table `from` (outside CTEs of that name) to `to`.
pub fn rename_table(query: &mut Query, from: &str, to: &str) {
    struct Rename<'a> {
        from: &'a str,
        to: &'a str,
        ctes: HashSet<String>,
    }
    impl VisitorMut for Rename<'_> {
        type Break = ();
        fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, alias, .. } = factor
                && single_name(name).as_deref() == Some(self.from)
                && !self.ctes.contains(self.from)
            {
                if alias.is_none() {
                    // Keep `from.column` references working.
                    *alias = Some(datafusion::sql::sqlparser::ast::TableAlias {
                        explicit: true,
                        name: Ident::new(self.from),
                        columns: vec![],
                        at: None,
                    });
                }
                name.0 = vec![ObjectNamePart::Identifier(Ident::with_quote('`', self.to))];
            }
            ControlFlow::Continue(())
        }
    }
    let ctes = cte_names(query);
    let _ = VisitMut::visit(query, &mut Rename { from, to, ctes });
}

fn single_name(name: &datafusion::sql::sqlparser::ast::ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Some(ident.value.clone()),
        _ => None,
    }
}

/// Every CTE name defined anywhere in the query.
pub(crate) fn cte_names(query: &Query) -> HashSet<String> {
    struct Ctes(HashSet<String>);
    impl Visitor for Ctes {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                self.0.extend(with.cte_tables.iter().map(|c| c.alias.name.value.clone()));
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = Ctes(HashSet::new());
    let _ = Visit::visit(query, &mut v);
    v.0
}

/// Tables the query reads, CTE names excluded, in first-seen order.
pub fn referenced_tables(query: &Query) -> Vec<String> {
    struct Tables<'a> {
        ctes: &'a HashSet<String>,
        seen: Vec<String>,
    }
    impl Visitor for Tables<'_> {
        type Break = ();
        fn pre_visit_relation(&mut self, r: &datafusion::sql::sqlparser::ast::ObjectName) -> ControlFlow<()> {
            let name = single_name(r).unwrap_or_else(|| r.to_string());
            if !self.ctes.contains(&name) && !self.seen.contains(&name) {
                self.seen.push(name);
            }
            ControlFlow::Continue(())
        }
    }
    let ctes = cte_names(query);
    let mut v = Tables { ctes: &ctes, seen: Vec::new() };
    let _ = Visit::visit(query, &mut v);
    v.seen
}

/// What translating a query needs to know about the tables it may read.
pub trait Tables {
    /// Whether some table declares a column of this name `Nullable`: ClickHouse's `min`/`max`/`any`/`avg`… of an
    /// empty set are the type's default (0, '', nan) for a plain column and NULL for a `Nullable` one.
    fn nullable_column(&self, column: &str) -> bool;
    /// A table's column names, in order (None for a name that is not a table): a joined column's name depends on
    /// whether another table of the join has a column of the same name.
    fn columns(&self, table: &str) -> Option<Vec<String>>;
    /// The type of a column of this name, when every table that has one declares the same type.
    fn column_type(&self, column: &str) -> Option<crate::types::ChType>;
}

/// No tables: a query translated without a catalog.
pub struct NoTables;

impl Tables for NoTables {
    fn nullable_column(&self, _: &str) -> bool {
        false
    }
    fn columns(&self, _: &str) -> Option<Vec<String>> {
        None
    }
    fn column_type(&self, _: &str) -> Option<crate::types::ChType> {
        None
    }
}

/// Translates one ClickHouse query for DataFusion.
pub fn translate(sql: &str) -> Result<Translated, EngineError> {
    translate_with(sql, &NoTables)
}

/// [`translate`], told about the tables.
pub fn translate_with(sql: &str, tables: &dyn Tables) -> Result<Translated, EngineError> {
    translate_query(parse(sql)?, tables)
}

/// Translates a parsed query (from [`parse`]) for DataFusion, without printing or parsing it again as a whole.
pub fn translate_query(mut query: Query, catalog: &dyn Tables) -> Result<Translated, EngineError> {
    REWRITTEN.with(|c| c.set(0));
    if query.format_clause.is_some() {
        return Err(EngineError::Unsupported("FORMAT inside a subquery".into()));
    }
    let tables = referenced_tables(&query);
    let wrappers = super::hints::of_query(&query, &|column| catalog.column_type(column));
    // Columns keep the names ClickHouse gives them, whatever the rewrites below do to their expressions.
    super::names::name_columns(&mut query, &|table| catalog.columns(table));
    let nullable = |column: &str| catalog.nullable_column(column);
    let column_type = |column: &str| catalog.column_type(column);
    let mut rewriter = Rewriter { error: None, nullable: &nullable, column_type: &column_type };
    let _ = VisitMut::visit(&mut query, &mut rewriter);
    if let Some(e) = rewriter.error {
        return Err(e);
    }
    let literal = |e: &Expr| match e {
        Expr::Value(ValueWithSpan { value: SqlValue::Number(n, _), .. }) => n.parse::<usize>().ok(),
        _ => None,
    };
    let literal_limit = match &query.limit_clause {
        Some(LimitClause::LimitOffset { limit: Some(limit), offset, limit_by }) if limit_by.is_empty() => {
            match (literal(limit), offset.as_ref().map(|o| literal(&o.value))) {
                (Some(l), None) => Some((0, l)),
                (Some(l), Some(Some(o))) => Some((o, l)),
                _ => None,
            }
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => match (literal(offset), literal(limit)) {
            (Some(o), Some(l)) => Some((o, l)),
            _ => None,
        },
        _ => None,
    };
    if literal_limit.is_some() {
        query.limit_clause = None;
    }
    let count_statement = match &query.limit_clause {
        Some(LimitClause::LimitOffset { limit: Some(_), .. }) | Some(LimitClause::OffsetCommaLimit { .. }) => {
            let mut unlimited = query.clone();
            unlimited.limit_clause = None;
            unlimited.order_by = None;
            let text = format!("SELECT count(*) FROM ({unlimited}) AS __tb_rows_before_limit");
            Some(Statement::Query(Box::new(parse_generic(&text)?)))
        }
        _ => None,
    };
    Ok(Translated { statement: Statement::Query(Box::new(query)), count_statement, wrappers, literal_limit, tables })
}

fn parse_generic(text: &str) -> Result<Query, EngineError> {
    spend_rewrite_budget(text)?;
    let dialect = GenericDialect {};
    Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_query())
        .map(|q| *q)
        .map_err(|e| EngineError::Execution(format!("internal rewrite produced invalid SQL ({e}): {text}")))
}

/// The most text the rewrites of one translation may parse, in bytes. Rewrites print an argument into the text of
/// its translation, so nesting makes the work grow faster than the query; past this, the query is refused.
const REWRITE_BUDGET: usize = 8 * 1024 * 1024;

thread_local! {
    static REWRITTEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn spend_rewrite_budget(text: &str) -> Result<(), EngineError> {
    let spent = REWRITTEN.with(|c| {
        let total = c.get().saturating_add(text.len());
        c.set(total);
        total
    });
    if spent > REWRITE_BUDGET {
        return Err(EngineError::Unsupported(format!(
            "a query this deeply nested (translating it for the DataFusion engine takes more than {} MB of rewriting)",
            REWRITE_BUDGET / (1024 * 1024)
        )));
    }
    Ok(())
}

fn parse_expr(text: &str) -> Result<Expr, EngineError> {
    spend_rewrite_budget(text)?;
    let dialect = GenericDialect {};
    Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| EngineError::Execution(format!("internal rewrite produced invalid SQL ({e}): {text}")))
}

struct Rewriter<'a> {
    error: Option<EngineError>,
    nullable: &'a dyn Fn(&str) -> bool,
    column_type: &'a dyn Fn(&str) -> Option<crate::types::ChType>,
}

/// An ORDER BY key on a column stored as text whose ClickHouse order is not the text's: a UUID sorts by its last 16
/// hex digits, then its first 16 (ClickHouse compares the two 64-bit halves low first), so the key puts them in that
/// order; IPv4/IPv6 addresses and enums (numeric order) are refused.
fn order_key(
    expr: &Expr,
    column_type: &dyn Fn(&str) -> Option<crate::types::ChType>,
) -> Result<Option<Expr>, EngineError> {
    let name = match expr {
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(last) => &last.value,
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    let Some(ty) = column_type(name) else { return Ok(None) };
    let crate::types::ChType::Named(named) = ty.base() else { return Ok(None) };
    match named.as_str() {
        "UUID" => parse_expr(&format!(
            "concat(substr({expr}, 20, 4), substr({expr}, 25, 12), substr({expr}, 1, 8), substr({expr}, 10, 4), \
             substr({expr}, 15, 4))"
        ))
        .map(Some),
        other if other.starts_with("FixedString") => Ok(None),
        other => Err(EngineError::Unsupported(format!(
            "ORDER BY a column of type {other} (ClickHouse orders it by its value: the number of an enum, the address of an IP, not its text)"
        ))),
    }
}

/// Whether an expression is a condition by its form (a comparison, `AND`, `IS NULL`, …), so DataFusion reads it as a
/// boolean without help.
fn is_condition(expr: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::UnaryOperator;
    match expr {
        Expr::BinaryOp { op, .. } => matches!(
            op,
            BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq
                | BinaryOperator::And
                | BinaryOperator::Or
        ),
        Expr::UnaryOp { op: UnaryOperator::Not, .. } => true,
        Expr::Nested(inner) => is_condition(inner),
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::InList { .. }
        | Expr::InSubquery { .. }
        | Expr::Between { .. }
        | Expr::Exists { .. }
        | Expr::Value(ValueWithSpan { value: SqlValue::Boolean(_), .. }) => true,
        _ => false,
    }
}

/// `ch_cond(expr)` around an expression that is not a condition by its form (ClickHouse takes numbers as
/// conditions); conditions are left alone.
fn as_condition(expr: &mut Expr) {
    if is_condition(expr) {
        return;
    }
    let inner = std::mem::replace(expr, Expr::value(SqlValue::Null));
    *expr = Expr::Function(datafusion::sql::sqlparser::ast::Function {
        name: datafusion::sql::sqlparser::ast::ObjectName(vec![ObjectNamePart::Identifier(Ident::new("ch_cond"))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(datafusion::sql::sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(inner))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    });
}

/// In ClickHouse, an `ORDER BY`/`LIMIT` after `A UNION ALL B` belongs to `B` alone (the last `SELECT`), not to the
/// union as in standard SQL: moves them into that operand. After a parenthesized last operand ClickHouse rejects them.
fn bind_union_tail(query: &mut Query) -> Result<(), EngineError> {
    if !matches!(query.body.as_ref(), SetExpr::SetOperation { .. })
        || (query.order_by.is_none() && query.limit_clause.is_none())
    {
        return Ok(());
    }
    let SetExpr::SetOperation { right, .. } = query.body.as_ref() else { return Ok(()) };
    if !matches!(right.as_ref(), SetExpr::Select(_)) {
        return Err(EngineError::Unsupported(
            "ORDER BY or LIMIT after a UNION whose last SELECT is in parentheses (ClickHouse rejects it)".into(),
        ));
    }
    let mut last = query.clone();
    last.with = None;
    last.body = right.clone();
    query.order_by = None;
    query.limit_clause = None;
    if let SetExpr::SetOperation { right, .. } = query.body.as_mut() {
        **right = SetExpr::Query(Box::new(last));
    }
    Ok(())
}

/// ClickHouse sorts NULLs last in both directions unless told otherwise; DataFusion puts them first for `DESC`.
fn nulls_last(order_by: &mut [datafusion::sql::sqlparser::ast::OrderByExpr]) {
    for item in order_by {
        if item.options.nulls_first.is_none() {
            item.options.nulls_first = Some(false);
        }
    }
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Err(e) = bind_union_tail(query) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        if let Some(order_by) = &mut query.order_by
            && let OrderByKind::Expressions(items) = &mut order_by.kind
        {
            nulls_last(items);
            for item in items.iter_mut() {
                match order_key(&item.expr, self.column_type) {
                    Ok(Some(key)) => item.expr = key,
                    Ok(None) => {}
                    Err(e) => {
                        self.error = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Literals DataFusion would read otherwise than ClickHouse: `0x10` (a number there) and `x'41'` (a string)
    /// both parse as one hex-string form here, so neither is guessed at.
    fn post_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
        match &value.value {
            SqlValue::SingleQuotedString(_)
            | SqlValue::DollarQuotedString(_)
            | SqlValue::Number(..)
            | SqlValue::Boolean(_)
            | SqlValue::Null
            | SqlValue::Placeholder(_) => ControlFlow::Continue(()),
            other => {
                self.error = Some(EngineError::Unsupported(format!("the literal form `{other}`")));
                ControlFlow::Break(())
            }
        }
    }

    /// `WHERE 1`, `HAVING flag`, `ON a.x`: numbers as conditions.
    fn post_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
        if let datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(_, modifiers) = &select.group_by
            && !modifiers.is_empty()
        {
            self.error = Some(EngineError::Unsupported(
                "GROUP BY … WITH ROLLUP, CUBE or TOTALS (ClickHouse fills subtotal keys with defaults, not NULL)"
                    .into(),
            ));
            return ControlFlow::Break(());
        }
        if let Some(selection) = &mut select.selection {
            as_condition(selection);
        }
        if let Some(having) = &mut select.having {
            as_condition(having);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let result = match expr {
            // `is_bot AND x > 1`, `NOT flag`: each operand a condition.
            Expr::BinaryOp { left, op: BinaryOperator::And | BinaryOperator::Or, right } => {
                as_condition(left);
                as_condition(right);
                Ok(None)
            }
            Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Not, expr: inner } => {
                as_condition(inner);
                Ok(None)
            }
            // `-x` of an expression: ClickHouse's `negate` (unsigned integers negate into the next signed type).
            // Negative literals (`-5`) stay as they are, typed by `type_integer_literals`; `-(5)` is `negate(5)`.
            Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus, expr: inner }
                if !matches!(inner.as_ref(), Expr::Value(ValueWithSpan { value: SqlValue::Number(..), .. }))
                    && !matches!(inner.as_ref(), Expr::Interval(_)) =>
            {
                parse_expr(&format!("ch_negate({})", typed_literal_text(&inner.to_string()))).map(Some)
            }
            // `arr[i]` (and `arr[i][j]`): ClickHouse's `arrayElement`, with defaults outside the array.
            Expr::CompoundFieldAccess { root, access_chain } => (|| {
                use datafusion::sql::sqlparser::ast::{AccessExpr, Subscript};
                let mut text = root.to_string();
                for access in access_chain.iter() {
                    match access {
                        AccessExpr::Subscript(Subscript::Index { index }) => {
                            text = format!("ch_array_element({text}, {index})");
                        }
                        other => return Err(EngineError::Unsupported(format!("the access `{other}`"))),
                    }
                }
                parse_expr(&text).map(Some)
            })(),
            Expr::Function(f) => {
                if let Some(datafusion::sql::sqlparser::ast::WindowType::WindowSpec(spec)) = &mut f.over {
                    nulls_last(&mut spec.order_by);
                }
                rewrite_function(expr, self.nullable)
            }
            // The parser reads `substring(…)` as its own node: give it ClickHouse's byte semantics too.
            Expr::Substring { expr: s, substring_from, substring_for, .. } => {
                let mut args = vec![
                    s.to_string(),
                    substring_from.as_ref().map(std::string::ToString::to_string).unwrap_or_else(|| "1".into()),
                ];
                if let Some(len) = substring_for {
                    args.push(len.to_string());
                }
                parse_expr(&format!("ch_substring({})", args.join(", "))).map(Some)
            }
            // `column + 1`, `1 + 1`: literals take ClickHouse's types (UInt8 here), so `UInt64 + 1` stays UInt64 where
            // an Int64 literal would make DataFusion widen both to Decimal(21, 0); the result type is then ClickHouse's
            // (see `ClickHouseArithmetic` in the engine).
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply,
                right,
            } => {
                let unsigned =
                    |e: &Expr| typed_integer_literal(e).filter(|(text, _)| !text.starts_with('-')).map(|(_, e)| e);
                if let Some(l) = unsigned(left) {
                    **left = l;
                }
                if let Some(r) = unsigned(right) {
                    **right = r;
                }
                Ok(None)
            }
            // `[1, 2, 3]` is Array(UInt8): integer elements take ClickHouse's literal types, and the array the
            // common type of its elements, where DataFusion makes every one Int64.
            Expr::Array(array) => {
                for elem in &mut array.elem {
                    if let Some((_, typed)) = typed_integer_literal(elem) {
                        *elem = typed;
                    }
                }
                Ok(None)
            }
            // `POSITION(needle IN haystack)`: ClickHouse's byte offset.
            Expr::Position { expr: needle, r#in } => {
                parse_expr(&format!("ch_position({in}, {needle})", r#in = r#in)).map(Some)
            }
            // `a % b` is ClickHouse's `modulo`, with its result type.
            Expr::BinaryOp { left, op: BinaryOperator::Modulo, right } => parse_expr(&format!(
                "ch_modulo({}, {})",
                typed_literal_text(&left.to_string()),
                typed_literal_text(&right.to_string())
            ))
            .map(Some),
            // ClickHouse `/` always divides as floats: 7 / 2 = 3.5.
            Expr::BinaryOp { left, op: BinaryOperator::Divide, right } => {
                parse_expr(&format!("ch_divide({left}, {right})")).map(Some)
            }
            // ClickHouse fills the subtotal rows' keys with their type's default (0, ''), DataFusion with NULL.
            Expr::Rollup(_) | Expr::Cube(_) | Expr::GroupingSets(_) => Err(EngineError::Unsupported(
                "ROLLUP, CUBE and GROUPING SETS (ClickHouse fills subtotal keys with defaults, not NULL)".into(),
            )),
            // `TIMESTAMP '…'` is a DateTime in ClickHouse and a nanosecond timestamp here; `DATE '…'` agrees.
            Expr::TypedString(ts) if !matches!(ts.data_type, datafusion::sql::sqlparser::ast::DataType::Date) => {
                Err(EngineError::Unsupported(format!("the typed literal `{ts}` (use toDateTime('…') or toDate('…'))")))
            }
            _ => Ok(None),
        };
        match result {
            Ok(Some(new)) => *expr = new,
            Ok(None) => {}
            Err(e) => {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        // Every SELECT of a UNION too: `SELECT 1 UNION ALL SELECT id` is UInt8 ∪ UInt32 = UInt32 in ClickHouse.
        fn each_select(body: &mut SetExpr) {
            match body {
                SetExpr::Select(select) => type_integer_literals(&mut select.projection),
                SetExpr::SetOperation { left, right, .. } => {
                    each_select(left);
                    each_select(right);
                }
                _ => {}
            }
        }
        each_select(query.body.as_mut());
        if let Err(e) = rewrite_limit_by(query) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// An integer literal selected as a column gets ClickHouse's type, the smallest that holds it (`SELECT 1` is UInt8,
/// `SELECT -1` Int8, `SELECT 300` UInt16), where DataFusion would make every one Int64; an unnamed one keeps
/// ClickHouse's column name, its text.
fn type_integer_literals(projection: &mut [SelectItem]) {
    for item in projection.iter_mut() {
        match item {
            SelectItem::ExprWithAlias { expr, .. } => {
                if let Some((_, e)) = typed_integer_literal(expr) {
                    *expr = e;
                }
            }
            SelectItem::UnnamedExpr(expr) => {
                if let Some((text, e)) = typed_integer_literal(expr) {
                    *item = SelectItem::ExprWithAlias { expr: e, alias: Ident::with_quote('"', text) };
                }
            }
            _ => {}
        }
    }
}

/// A branch value of `if`/`multiIf`/`coalesce` as SQL text: an integer literal typed as ClickHouse types it (so
/// `if(c, 1, 0)` is UInt8 and `if(c, 1, -1)` Int16), anything else unchanged.
fn typed_literal_text(arg: &str) -> String {
    parse_expr(arg).ok().and_then(|e| typed_integer_literal(&e)).map_or_else(|| arg.to_string(), |(_, e)| e.to_string())
}

/// An integer literal (`1`, `-1`) as `(its text, a cast to the smallest ClickHouse integer type holding it)`.
fn typed_integer_literal(expr: &Expr) -> Option<(String, Expr)> {
    if let Expr::Nested(inner) = expr {
        return typed_integer_literal(inner);
    }
    let (negative, inner) = match expr {
        Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus, expr } => (true, expr.as_ref()),
        other => (false, other),
    };
    let Expr::Value(ValueWithSpan { value: SqlValue::Number(digits, _), .. }) = inner else { return None };
    let n: i128 = digits.parse().ok()?;
    let n = if negative { -n } else { n };
    #[allow(clippy::match_overlapping_arm)] // The first arm that holds `n` is the smallest type.
    let f = match n {
        0..=0xff => "ch_to_uint8",
        0..=0xffff => "ch_to_uint16",
        0..=0xffff_ffff => "ch_to_uint32",
        0.. if n <= i128::from(u64::MAX) => "ch_to_uint64",
        -0x80..=-1 => "ch_to_int8",
        -0x8000..=-1 => "ch_to_int16",
        -0x8000_0000..=-1 => "ch_to_int32",
        _ if n >= i128::from(i64::MIN) && n < 0 => "ch_to_int64",
        _ => return None,
    };
    let text = if negative { format!("-{digits}") } else { digits.clone() };
    let typed = parse_expr(&format!("{f}({text})")).ok()?;
    Some((text, typed))
}

/// `LIMIT n BY a, b` → a `row_number() OVER (PARTITION BY a, b ORDER BY …)` filter around the query.
fn rewrite_limit_by(query: &mut Query) -> Result<(), EngineError> {
    let Some(LimitClause::LimitOffset { limit: Some(limit), offset, limit_by }) = &query.limit_clause else {
        return Ok(());
    };
    if limit_by.is_empty() {
        return Ok(());
    }
    if offset.is_some() {
        return Err(EngineError::Unsupported("LIMIT n OFFSET m BY".into()));
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(EngineError::Unsupported("LIMIT BY on a UNION".into()));
    };
    // Window clauses cannot see the SELECT's aliases: substitute them.
    let mut aliases: HashMap<String, Expr> = HashMap::new();
    let mut outputs: HashSet<String> = HashSet::new();
    for item in &select.projection {
        match item {
            SelectItem::ExprWithAlias { expr, alias } => {
                aliases.insert(alias.value.clone(), expr.clone());
                outputs.insert(alias.value.clone());
            }
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => {
                outputs.insert(i.value.clone());
            }
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                if let Some(last) = parts.last() {
                    outputs.insert(last.value.clone());
                }
            }
            _ => {}
        }
    }
    let has_wildcard = select.projection.iter().any(|i| matches!(i, SelectItem::Wildcard(_)));
    let resolve = |e: &Expr| match e {
        Expr::Identifier(i) => aliases.get(&i.value).cloned().unwrap_or_else(|| e.clone()),
        _ => e.clone(),
    };
    let by: Vec<String> = limit_by.iter().map(|e| resolve(e).to_string()).collect();
    let mut window_order = Vec::new();
    let mut outer_order = Vec::new();
    if let Some(order) = &query.order_by {
        let OrderByKind::Expressions(items) = &order.kind else {
            return Err(EngineError::Unsupported("ORDER BY ALL with LIMIT BY".into()));
        };
        for item in items {
            let mut resolved = item.clone();
            resolved.expr = resolve(&item.expr);
            window_order.push(resolved.to_string());
            match &item.expr {
                Expr::Identifier(i) if outputs.contains(&i.value) || has_wildcard => outer_order.push(item.to_string()),
                _ => {
                    return Err(EngineError::Unsupported(
                        "LIMIT BY with ORDER BY on an expression that is not a selected column".into(),
                    ));
                }
            }
        }
    }
    let mut inner = query.clone();
    inner.limit_clause = None;
    inner.order_by = None;
    let window = format!(
        "row_number() OVER (PARTITION BY {}{}) AS __tb_limit_by_rn",
        by.join(", "),
        if window_order.is_empty() { String::new() } else { format!(" ORDER BY {}", window_order.join(", ")) }
    );
    if let SetExpr::Select(s) = inner.body.as_mut() {
        let item = parse_generic(&format!("SELECT {window}"))?;
        if let SetExpr::Select(parsed) = *item.body {
            s.projection.extend(parsed.projection);
        }
    }
    let text = format!(
        "SELECT * EXCLUDE (__tb_limit_by_rn) FROM ({inner}) AS __tb_limit_by WHERE __tb_limit_by_rn <= {limit}{}",
        if outer_order.is_empty() { String::new() } else { format!(" ORDER BY {}", outer_order.join(", ")) }
    );
    *query = parse_generic(&text)?;
    Ok(())
}

/// Positional arguments of a call, printed, plus whether it was `DISTINCT`.
struct Call {
    name: String,
    params: Vec<String>,
    args: Vec<String>,
    distinct: bool,
    star: bool,
    windowed: bool,
}

fn call_of(expr: &Expr) -> Result<Call, EngineError> {
    let Expr::Function(f) = expr else { unreachable!("called on functions only") };
    let name = match f.name.0.as_slice() {
        [ObjectNamePart::Identifier(Ident { value, .. })] => value.clone(),
        _ => return Err(EngineError::Unsupported(format!("function `{}`", f.name))),
    };
    let list = |a: &FunctionArguments, what: &str| -> Result<(Vec<String>, bool, bool), EngineError> {
        match a {
            FunctionArguments::None => Ok((vec![], false, false)),
            FunctionArguments::Subquery(q) => Ok((vec![format!("({q})")], false, false)),
            FunctionArguments::List(l) => {
                if !l.clauses.is_empty() {
                    return Err(EngineError::Unsupported(format!("{what} clauses in `{name}(…)`")));
                }
                let distinct = matches!(l.duplicate_treatment, Some(DuplicateTreatment::Distinct));
                let mut out = Vec::new();
                let mut star = false;
                for arg in &l.args {
                    match arg {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => out.push(e.to_string()),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                        _ => return Err(EngineError::Unsupported(format!("named arguments in `{name}(…)`"))),
                    }
                }
                Ok((out, distinct, star))
            }
        }
    };
    let (args, distinct, star) = list(&f.args, "argument")?;
    let (params, _, _) = list(&f.parameters, "parameter")?;
    if f.filter.is_some() || f.null_treatment.is_some() || !f.within_group.is_empty() {
        return Err(EngineError::Unsupported(format!("FILTER / WITHIN GROUP on `{name}`")));
    }
    Ok(Call { name, params, args, distinct, star, windowed: f.over.is_some() })
}

fn arity(call: &Call, range: std::ops::RangeInclusive<usize>) -> Result<(), EngineError> {
    if range.contains(&call.args.len()) {
        Ok(())
    } else {
        Err(EngineError::Syntax(format!(
            "Number of arguments for function {} doesn't match: passed {}, should be {}",
            call.name,
            call.args.len(),
            if range.start() == range.end() {
                range.start().to_string()
            } else {
                format!("from {} to {}", range.start(), range.end())
            }
        )))
    }
}

fn string_literal(text: &str) -> Option<String> {
    let e = parse_expr(text).ok()?;
    match e {
        Expr::Value(ValueWithSpan { value: SqlValue::SingleQuotedString(s), .. }) => Some(s),
        _ => None,
    }
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// ClickHouse `formatDateTime` patterns → chrono patterns (as `to_char` takes them).
fn chrono_format(ch: &str) -> Result<String, EngineError> {
    let mut out = String::new();
    let mut chars = ch.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            return Err(EngineError::Syntax("formatDateTime: pattern ends with %".into()));
        };
        let mapped = match spec {
            'Y' | 'm' | 'd' | 'H' | 'S' | 'y' | 'e' | 'j' | 'p' | 'I' | 'u' | 'V' | 'G' | 'a' | 'b' | 'D' | 'R'
            | 'T' => {
                format!("%{spec}")
            }
            'i' => "%M".into(),
            'M' => "%B".into(),
            's' => "%S".into(),
            'F' => "%Y-%m-%d".into(),
            'h' => "%I".into(),
            'w' => "%w".into(),
            'n' => "\n".into(),
            't' => "\t".into(),
            '%' => "%%".into(),
            'f' => "%6f".into(),
            other => return Err(EngineError::Unsupported(format!("formatDateTime pattern %{other}"))),
        };
        out.push_str(&mapped);
    }
    Ok(out)
}

fn interval_sql(text: &str) -> Result<(i64, String), EngineError> {
    let e = parse_expr(text)?;
    let bad = || EngineError::Unsupported(format!("toStartOfInterval with interval `{text}`"));
    match e {
        Expr::Interval(iv) => {
            let n: i64 = match iv.value.as_ref() {
                Expr::Value(ValueWithSpan { value: SqlValue::Number(n, _), .. }) => n.parse().map_err(|_| bad())?,
                Expr::Value(ValueWithSpan { value: SqlValue::SingleQuotedString(s), .. }) => {
                    s.trim().parse().map_err(|_| bad())?
                }
                _ => return Err(bad()),
            };
            let unit = iv.leading_field.ok_or_else(bad)?.to_string().to_ascii_lowercase();
            Ok((n, unit))
        }
        _ => Err(bad()),
    }
}

fn cast_fn(target: &str) -> Option<&'static str> {
    Some(match target {
        "Int8" => "ch_to_int8",
        "Int16" => "ch_to_int16",
        "Int32" => "ch_to_int32",
        "Int64" => "ch_to_int64",
        "UInt8" => "ch_to_uint8",
        "UInt16" => "ch_to_uint16",
        "UInt32" => "ch_to_uint32",
        "UInt64" => "ch_to_uint64",
        "Float32" => "ch_to_float32",
        "Float64" => "ch_to_float64",
        _ => return None,
    })
}

/// Whether an aggregate's argument may be NULL in ClickHouse: a bare (possibly qualified or quoted) column whose
/// declared type is `Nullable`. Expressions over columns count as not nullable.
fn nullable_argument(arg: &str, nullable: &dyn Fn(&str) -> bool) -> bool {
    bare_column(arg).is_some_and(nullable)
}

/// The column an argument names when it is a bare (possibly qualified or quoted) column, else None.
fn bare_column(arg: &str) -> Option<&str> {
    let last = arg.rsplit('.').next().unwrap_or(arg).trim();
    let name = last.trim_matches(|c| c == '`' || c == '"');
    (!name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')).then_some(name)
}

/// Wraps an aggregate so an empty set gives ClickHouse's answer rather than DataFusion's NULL: `nan` for `avg`,
/// the type's default (0, '', 1970-01-01, []) otherwise; a `Nullable` argument keeps NULL, as in ClickHouse.
fn empty_set_default(kind: &str, aggregate: String, arg: &str, nullable: &dyn Fn(&str) -> bool) -> String {
    if nullable_argument(arg, nullable) {
        aggregate
    } else if kind.eq_ignore_ascii_case("avg") {
        format!("coalesce({aggregate}, CAST('NaN' AS DOUBLE))")
    } else {
        format!("ch_zero_if_null({aggregate})")
    }
}

/// The supported functions and their translations. Anything not listed fails, naming the function.
fn rewrite_function(expr: &Expr, nullable: &dyn Fn(&str) -> bool) -> Result<Option<Expr>, EngineError> {
    let call = call_of(expr)?;
    let a = &call.args;
    let p = &call.params;
    let name = call.name.as_str();
    let param_free = |c: &Call| {
        if c.params.is_empty() { Ok(()) } else { Err(EngineError::Unsupported(format!("parameters on `{}`", c.name))) }
    };
    if call.windowed {
        return window_function(expr, &call, nullable).map(Some);
    }
    if !matches!(name, "quantile" | "quantiles" | "quantileExact" | "quantilesExact" | "groupArray") {
        param_free(&call)?;
    }
    let as_u64 = |inner: String| format!("ch_to_uint64({inner})");
    let sql = match name {
        // Aggregates
        "count" | "COUNT" | "Count" => {
            if call.star || a.is_empty() {
                as_u64("count(*)".into())
            } else if call.distinct {
                as_u64(format!("count(DISTINCT {})", a.join(", ")))
            } else {
                as_u64(format!("count({})", a[0]))
            }
        }
        "countIf" => {
            arity(&call, 1..=2)?;
            match a.len() {
                1 => as_u64(format!("count(CASE WHEN {} THEN 1 END)", a[0])),
                _ => as_u64(format!("count(CASE WHEN {} THEN {} END)", a[1], a[0])),
            }
        }
        "countDistinct" | "uniq" | "uniqExact" | "uniqCombined" | "uniqCombined64" | "uniqHLL12" => {
            arity(&call, 1..=1).map_err(|_| EngineError::Unsupported(format!("`{name}` with several arguments")))?;
            as_u64(format!("count(DISTINCT {})", a[0]))
        }
        "uniqIf" | "uniqExactIf" => {
            arity(&call, 2..=2)?;
            as_u64(format!("count(DISTINCT CASE WHEN {} THEN {} END)", a[1], a[0]))
        }
        // ClickHouse's sum and avg: their types, and their order of adding floats (see the `sums` module).
        // ClickHouse sums an empty set to 0, not NULL.
        "sum" | "SUM" | "Sum" if call.distinct => {
            arity(&call, 1..=1)?;
            format!("ch_zero_if_null(sum(DISTINCT {}))", a[0])
        }
        "sum" | "SUM" | "Sum" => {
            arity(&call, 1..=1)?;
            format!("ch_zero_if_null(ch_sum({}))", a[0])
        }
        "sumIf" => {
            arity(&call, 2..=2)?;
            format!("ch_zero_if_null(ch_sum(CASE WHEN {} THEN {} END))", a[1], a[0])
        }
        "avg" | "AVG" | "Avg" | "min" | "MIN" | "Min" | "max" | "MAX" | "Max" => {
            arity(&call, 1..=1)?;
            let f = match name.to_ascii_lowercase().as_str() {
                "avg" if call.distinct => "avg(DISTINCT ".to_string(),
                "avg" => "ch_avg(".to_string(),
                other => format!("{other}("),
            };
            empty_set_default(&name[..3], format!("{f}{})", a[0]), &a[0], nullable)
        }
        "avgIf" | "minIf" | "maxIf" => {
            arity(&call, 2..=2)?;
            let f = if name == "avgIf" { "ch_avg" } else { &name[..3] };
            empty_set_default(&name[..3], format!("{f}(CASE WHEN {} THEN {} END)", a[1], a[0]), &a[0], nullable)
        }
        "arrayElement" => {
            arity(&call, 2..=2)?;
            format!("ch_array_element({}, {})", a[0], a[1])
        }
        "median" => {
            arity(&call, 1..=1)?;
            format!("ch_quantile({}, 0.5)", a[0])
        }
        "quantile" | "quantileExact" => {
            arity(&call, 1..=1)?;
            let level = p.first().cloned().unwrap_or_else(|| "0.5".into());
            if p.len() > 1 {
                return Err(EngineError::Syntax(format!("{name} takes one level parameter")));
            }
            let f = if name == "quantile" { "ch_quantile" } else { "ch_quantile_exact" };
            format!("{f}({}, {level})", a[0])
        }
        "quantiles" | "quantilesExact" => {
            arity(&call, 1..=1)?;
            if p.is_empty() {
                return Err(EngineError::Syntax(format!("{name} needs at least one level parameter")));
            }
            let f = if name == "quantiles" { "ch_quantile" } else { "ch_quantile_exact" };
            let parts: Vec<String> = p.iter().map(|l| format!("{f}({}, {l})", a[0])).collect();
            format!("make_array({})", parts.join(", "))
        }
        "argMin" | "argMax" => {
            arity(&call, 2..=2)?;
            let dir = if name == "argMin" { "ASC" } else { "DESC" };
            empty_set_default(
                "arg",
                format!("first_value({} ORDER BY {} {dir} NULLS LAST)", a[0], a[1]),
                &a[0],
                nullable,
            )
        }
        "groupArray" | "groupUniqArray" | "any" | "anyLast" => {
            arity(&call, 1..=1)?;
            let (f, distinct) = match name {
                "groupArray" => ("array_agg", ""),
                "groupUniqArray" => ("array_agg", "DISTINCT "),
                "any" => ("first_value", ""),
                _ => ("last_value", ""),
            };
            // ClickHouse aggregates skip NULLs.
            let mut e = parse_expr(&format!("{f}({distinct}{})", a[0]))?;
            if let Expr::Function(func) = &mut e {
                func.filter = Some(Box::new(parse_expr(&format!("({}) IS NOT NULL", a[0]))?));
            }
            let e = match (name, p.first()) {
                ("groupArray", Some(max)) => parse_expr(&format!("array_slice({e}, 1, {max})"))?,
                (_, None) => e,
                _ => return Err(EngineError::Unsupported(format!("parameters on `{name}`"))),
            };
            // An empty set: `[]` for the array aggregates, the type's default for `any`/`anyLast` (NULL for a
            // `Nullable` column), where DataFusion answers NULL.
            let e = match name {
                "groupArray" | "groupUniqArray" => parse_expr(&format!("ch_zero_if_null({e})"))?,
                _ => parse_expr(&empty_set_default(name, e.to_string(), &a[0], nullable))?,
            };
            return Ok(Some(e));
        }
        // Dates and times
        "now" => {
            arity(&call, 0..=0)?;
            "ch_to_datetime(now())".into()
        }
        "today" => {
            arity(&call, 0..=0)?;
            "current_date()".into()
        }
        "yesterday" => {
            arity(&call, 0..=0)?;
            "ch_to_date(current_date() - INTERVAL '1 day')".into()
        }
        "toDate" => {
            arity(&call, 1..=1)?;
            format!("ch_to_date({})", a[0])
        }
        "toDateTime" => {
            arity(&call, 1..=1)?;
            format!("ch_to_datetime({})", a[0])
        }
        "toDateTime64" => {
            arity(&call, 2..=2)?;
            let precision: u8 = a[1]
                .trim()
                .parse()
                .map_err(|_| EngineError::Syntax("toDateTime64: the precision must be a number literal".into()))?;
            let f = match precision {
                0 => "ch_to_datetime",
                1..=3 => "ch_to_datetime64_3",
                4..=6 => "ch_to_datetime64_6",
                7..=9 => "ch_to_datetime64_9",
                _ => return Err(EngineError::Syntax(format!("toDateTime64: precision {precision} is out of range"))),
            };
            format!("{f}({})", a[0])
        }
        "parseDateTimeBestEffort" | "parseDateTimeBestEffortOrNull" => {
            arity(&call, 1..=1)?;
            let f = if name.ends_with("OrNull") { "ch_parse_datetime_or_null" } else { "ch_parse_datetime" };
            format!("{f}({})", a[0])
        }
        // DateTime64(3), the default precision; another precision is refused.
        "parseDateTime64BestEffort" | "parseDateTime64BestEffortOrNull" => {
            arity(&call, 1..=2)?;
            if a.get(1).is_some_and(|p| p.trim() != "3") {
                return Err(EngineError::Unsupported(format!("{name} with a precision other than 3")));
            }
            let f = if name.ends_with("OrNull") { "ch_parse_datetime64_or_null" } else { "ch_parse_datetime64" };
            format!("{f}({})", a[0])
        }
        // `addDays(x, n)`, `subtractHours(x, n)` (see the `dates` module).
        n if (n.starts_with("add") || n.starts_with("subtract"))
            && super::dates::unit_name(n.trim_start_matches("add").trim_start_matches("subtract")).is_some() =>
        {
            arity(&call, 2..=2)?;
            let sign = if n.starts_with("subtract") { "-" } else { "" };
            let unit = n.trim_start_matches("add").trim_start_matches("subtract");
            format!("ch_date_add('{sign}{unit}', {}, {})", a[0], a[1])
        }
        // `date_add(DAY, n, x)`, `dateSub(MONTH, n, x)`.
        n if matches!(n.to_ascii_lowercase().as_str(), "date_add" | "dateadd" | "date_sub" | "datesub") => {
            arity(&call, 3..=3)?;
            let unit = super::dates::unit_name(a[0].trim())
                .ok_or_else(|| EngineError::Unsupported(format!("{name} with the unit `{}`", a[0])))?;
            let sign = if n.to_ascii_lowercase().contains("sub") { "-" } else { "" };
            format!("ch_date_add('{sign}{unit}', {}, {})", a[2], a[1])
        }
        "toDayOfYear" => format!("ch_to_uint16(date_part('doy', {}))", one(&call)?),
        "toYYYYMMDDhhmmss" => {
            let x = one(&call)?;
            format!(
                "ch_to_uint64(date_part('year', {x}) * 10000000000 + date_part('month', {x}) * 100000000 + \
                 date_part('day', {x}) * 1000000 + date_part('hour', {x}) * 10000 + date_part('minute', {x}) * 100 + \
                 date_part('second', {x}))"
            )
        }
        "fromUnixTimestamp" => format!("ch_from_unix({})", one(&call)?),
        "toStartOfMinute"
        | "toStartOfHour"
        | "toStartOfDay"
        | "toStartOfFiveMinutes"
        | "toStartOfTenMinutes"
        | "toStartOfFifteenMinutes" => {
            arity(&call, 1..=1)?;
            let bin = match name {
                "toStartOfMinute" => "1 minute",
                "toStartOfHour" => "1 hour",
                "toStartOfDay" => "1 day",
                "toStartOfFiveMinutes" => "5 minutes",
                "toStartOfTenMinutes" => "10 minutes",
                _ => "15 minutes",
            };
            // Only toStartOfDay takes a Date; the others refuse it, as ClickHouse does.
            let arg =
                if name == "toStartOfDay" { a[0].clone() } else { format!("ch_datetime_only({}, '{name}')", a[0]) };
            format!(
                "ch_to_datetime(date_bin(INTERVAL '{bin}', ch_to_datetime({arg}), TIMESTAMP '1970-01-01 00:00:00'))"
            )
        }
        "toStartOfWeek" | "toMonday" => {
            arity(&call, 1..=2)?;
            // Mode 0 (the default) starts weeks on Sunday; odd modes and toMonday on Monday.
            let monday = name == "toMonday"
                || a.get(1)
                    .map(|m| m.trim().parse::<u8>().map(|m| m % 2 == 1))
                    .transpose()
                    .map_err(|_| EngineError::Syntax("toStartOfWeek: the mode must be a number literal".into()))?
                    .unwrap_or(false);
            let origin = if monday { "1970-01-05" } else { "1970-01-04" };
            format!("ch_to_date(date_bin(INTERVAL '7 days', ch_to_datetime({}), TIMESTAMP '{origin} 00:00:00'))", a[0])
        }
        "toStartOfMonth" | "toStartOfQuarter" | "toStartOfYear" => {
            arity(&call, 1..=1)?;
            let unit = match name {
                "toStartOfMonth" => "month",
                "toStartOfQuarter" => "quarter",
                _ => "year",
            };
            format!("ch_to_date(date_trunc('{unit}', ch_to_datetime({})))", a[0])
        }
        "toStartOfInterval" => {
            arity(&call, 2..=2)?;
            let (n, unit) = interval_sql(&a[1])?;
            if n <= 0 {
                return Err(EngineError::Syntax("toStartOfInterval: the interval must be positive".into()));
            }
            match unit.as_str() {
                "second" | "minute" | "hour" | "day" => format!(
                    "ch_to_datetime(date_bin(INTERVAL '{n} {unit}', ch_to_datetime({}), TIMESTAMP '1970-01-01 00:00:00'))",
                    a[0]
                ),
                "week" if n == 1 => {
                    format!(
                        "ch_to_date(date_bin(INTERVAL '7 days', ch_to_datetime({}), TIMESTAMP '1970-01-05 00:00:00'))",
                        a[0]
                    )
                }
                "month" | "quarter" | "year" if n == 1 => {
                    format!("ch_to_date(date_trunc('{unit}', ch_to_datetime({})))", a[0])
                }
                _ => return Err(EngineError::Unsupported(format!("toStartOfInterval with INTERVAL {n} {unit}"))),
            }
        }
        "toYYYYMM" => {
            arity(&call, 1..=1)?;
            format!("ch_to_uint32(date_part('year', {0}) * 100 + date_part('month', {0}))", a[0])
        }
        "toYYYYMMDD" => {
            arity(&call, 1..=1)?;
            format!(
                "ch_to_uint32(date_part('year', {0}) * 10000 + date_part('month', {0}) * 100 + date_part('day', {0}))",
                a[0]
            )
        }
        "toYear" => format!("ch_to_uint16(date_part('year', {}))", one(&call)?),
        "toMonth" => format!("ch_to_uint8(date_part('month', {}))", one(&call)?),
        "toDayOfMonth" => format!("ch_to_uint8(date_part('day', {}))", one(&call)?),
        "toHour" => format!("ch_to_uint8(date_part('hour', {}))", one(&call)?),
        "toMinute" => format!("ch_to_uint8(date_part('minute', {}))", one(&call)?),
        "toSecond" => format!("ch_to_uint8(date_part('second', {}))", one(&call)?),
        "toDayOfWeek" => format!("ch_to_uint8((ch_to_int64(date_part('dow', {})) + 6) % 7 + 1)", one(&call)?),
        "toUnixTimestamp" => format!("ch_to_uint32(ch_to_int64(ch_to_datetime({})))", one(&call)?),
        "formatDateTime" => {
            arity(&call, 2..=2)?;
            let pattern = string_literal(&a[1])
                .ok_or_else(|| EngineError::Unsupported("formatDateTime with a non-literal pattern".into()))?;
            format!("to_char({}, {})", a[0], sql_string(&chrono_format(&pattern)?))
        }
        "dateDiff" | "date_diff" | "DATE_DIFF" => {
            arity(&call, 3..=3)?;
            format!("ch_date_diff({}, {}, {})", a[0], a[1], a[2])
        }
        // Conditionals and NULLs
        "if" | "IF" => {
            arity(&call, 3..=3)?;
            format!("(CASE WHEN {} THEN {} ELSE {} END)", a[0], typed_literal_text(&a[1]), typed_literal_text(&a[2]))
        }
        "multiIf" => {
            if a.len() < 3 || a.len() % 2 == 0 {
                return Err(EngineError::Syntax("multiIf takes an odd number of arguments, at least 3".into()));
            }
            let mut s = String::from("(CASE");
            for pair in a[..a.len() - 1].chunks(2) {
                s.push_str(&format!(" WHEN {} THEN {}", pair[0], typed_literal_text(&pair[1])));
            }
            s.push_str(&format!(" ELSE {} END)", typed_literal_text(&a[a.len() - 1])));
            s
        }
        "coalesce" | "COALESCE" => {
            format!("coalesce({})", a.iter().map(|x| typed_literal_text(x)).collect::<Vec<_>>().join(", "))
        }
        "ifNull" => {
            arity(&call, 2..=2)?;
            format!("coalesce({}, {})", a[0], typed_literal_text(&a[1]))
        }
        "nullIf" | "NULLIF" => {
            arity(&call, 2..=2)?;
            format!("nullif({}, {})", a[0], a[1])
        }
        "isNull" => format!("(({}) IS NULL)", one(&call)?),
        "isNotNull" => format!("(({}) IS NOT NULL)", one(&call)?),
        // Arrays
        "has" => {
            arity(&call, 2..=2)?;
            format!("array_has({}, {})", a[0], a[1])
        }
        "hasAny" | "hasAll" => {
            arity(&call, 2..=2)?;
            format!("{}({}, {})", if name == "hasAny" { "array_has_any" } else { "array_has_all" }, a[0], a[1])
        }
        "length" | "LENGTH" => format!("ch_length({})", one(&call)?),
        "empty" => format!("(ch_length({}) = 0)", one(&call)?),
        "notEmpty" => format!("(ch_length({}) > 0)", one(&call)?),
        "arrayJoin" => format!("unnest({})", one(&call)?),
        "array" => format!("make_array({})", a.join(", ")),
        "arrayStringConcat" => {
            arity(&call, 1..=2)?;
            format!("array_to_string({}, {})", a[0], a.get(1).map(String::as_str).unwrap_or("''"))
        }
        "arraySort" => format!("array_sort({})", one(&call)?),
        "arrayDistinct" => format!("array_distinct({})", one(&call)?),
        "arrayConcat" => format!("array_concat({})", a.join(", ")),
        "indexOf" => {
            arity(&call, 2..=2)?;
            format!("ch_to_uint64(coalesce(array_position({}, {}), 0))", a[0], a[1])
        }
        // Strings
        "lower" | "LOWER" | "lcase" => format!("ch_lower_ascii({})", one(&call)?),
        "upper" | "UPPER" | "ucase" => format!("ch_upper_ascii({})", one(&call)?),
        "lowerUTF8" => format!("lower({})", one(&call)?),
        "upperUTF8" => format!("upper({})", one(&call)?),
        "concat" | "CONCAT" => {
            if a.is_empty() {
                return Err(EngineError::Syntax("concat needs at least one argument".into()));
            }
            // ClickHouse's concat is NULL when any argument is NULL, as `||` is.
            let parts: Vec<String> = a.iter().map(|x| format!("ch_to_string({x})")).collect();
            format!("({})", parts.join(" || "))
        }
        "like" | "notLike" | "ilike" | "notILike" => {
            arity(&call, 2..=2)?;
            let op = match name {
                "like" => "LIKE",
                "notLike" => "NOT LIKE",
                "ilike" => "ILIKE",
                _ => "NOT ILIKE",
            };
            format!("(({}) {op} ({}))", a[0], a[1])
        }
        "startsWith" | "endsWith" => {
            arity(&call, 2..=2)?;
            format!("{}({}, {})", if name == "startsWith" { "starts_with" } else { "ends_with" }, a[0], a[1])
        }
        "replaceAll" => {
            arity(&call, 3..=3)?;
            format!("replace({}, {}, {})", a[0], a[1], a[2])
        }
        "splitByChar" | "splitByString" => {
            arity(&call, 2..=2)?;
            format!("string_to_array({}, {})", a[1], a[0])
        }
        // Byte semantics, as ClickHouse (see the `strings` module).
        "lengthUTF8" => format!("ch_to_uint64(character_length({}))", one(&call)?),
        "position" | "POSITION" | "locate" => {
            arity(&call, 2..=2)?;
            format!("ch_position({}, {})", a[0], a[1])
        }
        "left" | "LEFT" => {
            arity(&call, 2..=2)?;
            format!("ch_substring({}, 1, {})", a[0], a[1])
        }
        "right" | "RIGHT" => {
            arity(&call, 2..=2)?;
            let n = format!("ch_to_int64({})", a[1]);
            format!("ch_substring({}, CASE WHEN {n} >= 0 THEN -{n} ELSE 1 - {n} END)", a[0])
        }
        "reverse" => format!("ch_reverse({})", one(&call)?),
        "repeat" => {
            arity(&call, 2..=2)?;
            format!("repeat({}, ch_to_int64({}))", a[0], a[1])
        }
        "replaceOne" => {
            arity(&call, 3..=3)?;
            format!("ch_replace_one({})", a.join(", "))
        }
        "base64Encode" => format!("ch_base64_encode({})", one(&call)?),
        "hex" | "HEX" => format!("ch_hex({})", typed_literal_text(one(&call)?)),
        "trim" | "trimBoth" => format!("btrim({})", one(&call)?),
        "trimLeft" => format!("ltrim({})", one(&call)?),
        "trimRight" => format!("rtrim({})", one(&call)?),
        "substring" | "SUBSTRING" | "substr" | "SUBSTR" | "Substr" | "mid" => {
            arity(&call, 2..=3)?;
            format!("ch_substring({})", a.join(", "))
        }
        "substringUTF8" => {
            arity(&call, 2..=3)?;
            format!("substr({})", a.join(", "))
        }
        // JSON
        "JSONExtractString" | "JSONExtractInt" | "JSONExtractUInt" | "JSONExtractFloat" | "JSONExtractBool"
        | "JSONExtractRaw" | "JSONHas" => {
            if a.is_empty() {
                return Err(EngineError::Syntax(format!("{name} needs the JSON argument")));
            }
            let f = match name {
                "JSONExtractString" => "ch_json_string",
                "JSONExtractInt" => "ch_json_int",
                "JSONExtractUInt" => "ch_json_uint",
                "JSONExtractFloat" => "ch_json_float",
                "JSONExtractBool" => "ch_json_bool",
                "JSONExtractRaw" => "ch_json_raw",
                _ => "ch_json_has",
            };
            format!("{f}({})", a.join(", "))
        }
        "JSONLength" | "JSONExtractKeys" | "JSONExtractArrayRaw" => {
            if a.is_empty() {
                return Err(EngineError::Syntax(format!("{name} needs the JSON argument")));
            }
            let f = match name {
                "JSONLength" => "ch_json_length",
                "JSONExtractKeys" => "ch_json_keys",
                _ => "ch_json_array_raw",
            };
            format!("{f}({})", a.join(", "))
        }
        "JSONExtract" => {
            if a.len() < 2 {
                return Err(EngineError::Syntax("JSONExtract needs the JSON and a return type".into()));
            }
            let ty = string_literal(&a[a.len() - 1])
                .ok_or_else(|| EngineError::Unsupported("JSONExtract with a non-literal type".into()))?;
            let path = a[..a.len() - 1].join(", ");
            match ty.as_str() {
                "String" => format!("ch_json_string({path})"),
                "Bool" => format!("ch_json_bool({path})"),
                t if t.starts_with("Int") => format!("{}(ch_json_int({path}))", cast_fn(t).unwrap_or("ch_to_int64")),
                t if t.starts_with("UInt") => format!("{}(ch_json_uint({path}))", cast_fn(t).unwrap_or("ch_to_uint64")),
                t if t.starts_with("Float") => {
                    format!("{}(ch_json_float({path}))", cast_fn(t).unwrap_or("ch_to_float64"))
                }
                other => return Err(EngineError::Unsupported(format!("JSONExtract to type {other}"))),
            }
        }
        // Conversions and numbers
        "toString" => format!("ch_to_string({})", one(&call)?),
        n if n.starts_with("to") && cast_fn(&n[2..]).is_some() => {
            format!("{}({})", cast_fn(&n[2..]).unwrap_or_default(), one(&call)?)
        }
        n if n.starts_with("to") && n.ends_with("OrNull") && cast_fn(&n[2..n.len() - 6]).is_some() => {
            format!("{}_or_null({})", cast_fn(&n[2..n.len() - 6]).unwrap_or_default(), one(&call)?)
        }
        n if n.starts_with("to") && n.ends_with("OrZero") && cast_fn(&n[2..n.len() - 6]).is_some() => {
            format!("coalesce({}_or_null({}), 0)", cast_fn(&n[2..n.len() - 6]).unwrap_or_default(), one(&call)?)
        }
        "round" | "ROUND" => {
            arity(&call, 1..=2)?;
            format!("ch_round({}, {})", a[0], a.get(1).map(String::as_str).unwrap_or("0"))
        }
        // ClickHouse's result types and edge values (see the `arithmetic` module); literals typed as ClickHouse types them.
        "intDiv" | "intDivOrZero" | "modulo" | "moduloOrZero" => {
            arity(&call, 2..=2)?;
            let f = match name {
                "intDiv" => "ch_int_div",
                "intDivOrZero" => "ch_int_div_or_zero",
                "modulo" => "ch_modulo",
                _ => "ch_modulo_or_zero",
            };
            format!("{f}({}, {})", typed_literal_text(&a[0]), typed_literal_text(&a[1]))
        }
        "abs" | "ABS" => format!("ch_abs({})", typed_literal_text(one(&call)?)),
        "divide" => {
            arity(&call, 2..=2)?;
            format!("ch_divide({}, {})", a[0], a[1])
        }
        "greatest" | "least" => {
            arity(&call, 2..=usize::MAX)?;
            let args: Vec<String> = a.iter().map(|x| typed_literal_text(x)).collect();
            format!("ch_{name}({})", args.join(", "))
        }
        "sqrt" | "exp" | "ln" | "log2" | "log10" | "floor" | "ceil" | "FLOOR" | "CEIL" => {
            format!("{}({})", name.to_ascii_lowercase(), one(&call)?)
        }
        // ClickHouse's `log` is the natural logarithm.
        "log" | "LOG" => format!("ln({})", one(&call)?),
        // Int8: -1, 0 or 1; NaN counts as positive, as in ClickHouse.
        "sign" => {
            let x = one(&call)?;
            format!(
                "ch_to_int8(CASE WHEN ({x}) IS NULL THEN NULL WHEN ({x}) < 0 THEN -1 WHEN ({x}) = 0 THEN 0 ELSE 1 END)"
            )
        }
        "pow" | "power" => format!("{}({})", name.to_ascii_lowercase(), a.join(", ")),
        "row_number" | "rank" | "dense_rank" => {
            return Err(EngineError::Unsupported(format!("`{name}` without OVER")));
        }
        other => return Err(EngineError::Unsupported(format!("function `{other}`"))),
    };
    parse_expr(&sql).map(Some)
}

/// A window function: ranks as they are; `count`, `sum`, `avg`, `min`, `max` over a frame that starts at the
/// partition's first row (ClickHouse adds rows to the running state as the frame grows, in order; a sliding frame
/// is refused for `sum`/`avg`, whose float rounding would differ); `lag`/`lagInFrame`, `lead`/`leadInFrame` of a
/// non-`Nullable` column, whose missing rows are the type's default (0, ''), not NULL; `ntile`.
fn window_function(expr: &Expr, call: &Call, nullable: &dyn Fn(&str) -> bool) -> Result<Expr, EngineError> {
    use datafusion::sql::sqlparser::ast::{WindowFrameBound, WindowType};
    let Expr::Function(f) = expr else { unreachable!("called on functions only") };
    if matches!(call.name.to_ascii_lowercase().as_str(), "row_number" | "rank" | "dense_rank") {
        return lowercase_name(expr);
    }
    let Some(WindowType::WindowSpec(spec)) = &f.over else {
        return Err(EngineError::Unsupported(format!("the named window of `{}` (write the window inline)", call.name)));
    };
    let frame = spec.window_frame.as_ref();
    let starts_first = frame.is_none_or(|fr| matches!(fr.start_bound, WindowFrameBound::Preceding(None)));
    let ends_last = frame.is_some_and(|fr| matches!(fr.end_bound, Some(WindowFrameBound::Following(None))));
    let a = &call.args;
    let lower = call.name.to_ascii_lowercase();
    // The call without its window, rewritten; the window is put back on the innermost function.
    let windowed = |inner: &str, wrap: &dyn Fn(String) -> String| -> Result<Expr, EngineError> {
        let mut e = parse_expr(inner)?;
        if let Expr::Function(g) = &mut e {
            g.over = f.over.clone();
        }
        parse_expr(&wrap(e.to_string()))
    };
    // Unqualified only, as before: `t.c` names a column of one table, which `nullable` does not tell apart.
    let plain_column = |arg: &str| !arg.contains('.') && bare_column(arg).is_some_and(|name| !nullable(name));
    match lower.as_str() {
        "ntile" => {
            arity(call, 1..=1)?;
            windowed(&format!("ntile({})", a[0]), &|e| e)
        }
        "count" | "sum" | "avg" | "min" | "max" if !call.distinct => {
            if !starts_first && matches!(lower.as_str(), "sum" | "avg") {
                return Err(EngineError::Unsupported(format!(
                    "`{}` over a sliding window frame (ClickHouse recomputes it, adding floats in another order)",
                    call.name
                )));
            }
            match lower.as_str() {
                "count" if call.star || a.is_empty() => windowed("count(*)", &|e| format!("ch_to_uint64({e})")),
                "count" => {
                    arity(call, 1..=1)?;
                    windowed(&format!("count({})", a[0]), &|e| format!("ch_to_uint64({e})"))
                }
                other => {
                    arity(call, 1..=1)?;
                    let f = match other {
                        "sum" => "ch_sum",
                        "avg" => "ch_avg",
                        m => m,
                    };
                    windowed(&format!("{f}({})", a[0]), &|e| e)
                }
            }
        }
        "lag" | "laginframe" | "lead" | "leadinframe" => {
            arity(call, 1..=3)?;
            let lead = lower.starts_with("lead");
            if lower.ends_with("inframe") && !(if lead { ends_last } else { starts_first }) {
                return Err(EngineError::Unsupported(format!(
                    "`{}` with a frame that does not reach {} (it sees only the rows of its frame)",
                    call.name,
                    if lead {
                        "the partition's last row: write ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
                    } else {
                        "back to the partition's first row"
                    }
                )));
            }
            let f = if lead { "lead" } else { "lag" };
            let offset = a.get(1).cloned().unwrap_or_else(|| "1".into());
            match a.get(2) {
                Some(default) => windowed(&format!("{f}({}, {offset}, {default})", a[0]), &|e| e),
                None if plain_column(&a[0]) => {
                    windowed(&format!("{f}({}, {offset})", a[0]), &|e| format!("ch_zero_if_null({e})"))
                }
                None => Err(EngineError::Unsupported(format!(
                    "`{}` of an expression or a Nullable column without a default (ClickHouse fills missing rows with the \
                     type's default, NULL only for Nullable values)",
                    call.name
                ))),
            }
        }
        _ => Err(EngineError::Unsupported(format!("window function `{}`", call.name))),
    }
}

fn one(call: &Call) -> Result<&str, EngineError> {
    arity(call, 1..=1)?;
    Ok(&call.args[0])
}

fn lowercase_name(expr: &Expr) -> Result<Expr, EngineError> {
    let mut e = expr.clone();
    if let Expr::Function(f) = &mut e {
        for part in &mut f.name.0 {
            if let ObjectNamePart::Identifier(ident) = part {
                ident.value = ident.value.to_ascii_lowercase();
            }
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_format_clause() {
        let (q, f) = take_format("SELECT 1 FORMAT JSON");
        assert_eq!(f.as_deref(), Some("JSON"));
        assert_eq!(q.trim(), "SELECT 1");
        assert_eq!(take_format("SELECT format FROM t").1, None);
        // The query text is kept as written: quotes and escapes inside strings, line breaks, multibyte text.
        let (q, f) = take_format("SELECT 'it''s', 'a\\\\b', 'ñ'\n  AS x FORMAT CSV");
        assert_eq!((q.as_str(), f.as_deref()), ("SELECT 'it''s', 'a\\\\b', 'ñ'\n  AS x ", Some("CSV")));
    }

    #[test]
    fn names_unsupported_constructs() {
        for (sql, construct) in [
            ("SELECT * FROM t FINAL", "FINAL"),
            ("SELECT * FROM t PREWHERE a = 1", "PREWHERE"),
            ("SELECT * FROM t SETTINGS max_threads = 1", "SETTINGS"),
            ("SELECT a FROM t ARRAY JOIN arr", "ARRAY JOIN"),
            ("SELECT toUnknownThing(a) FROM t", "toUnknownThing"),
        ] {
            let e = translate(sql).unwrap_err().to_string();
            assert!(e.contains(construct), "{sql}: {e}");
        }
    }

    #[test]
    fn rejects_non_select_and_multi_statements() {
        let e = translate("INSERT INTO t VALUES (1)").unwrap_err().to_string();
        assert!(e.contains("Only SELECT or DESCRIBE queries are supported. Got: InsertQuery"), "{e}");
        let e = translate("SELECT 1; SELECT 2").unwrap_err().to_string();
        assert!(e.contains("Multi-statements are not allowed"), "{e}");
    }

    #[test]
    fn in_array_literal_is_a_tuple() {
        let q = parse("SELECT 1 FROM t WHERE a IN ['x', 'y''z'] AND b NOT IN [1]").unwrap();
        assert_eq!(q.to_string(), "SELECT 1 FROM t WHERE a IN ('x', 'y''z') AND b NOT IN (1)");
        let q = parse(r"SELECT 1 FROM t WHERE a IN ['it\'s', 'back\\slash']").unwrap();
        assert_eq!(q.to_string(), r"SELECT 1 FROM t WHERE a IN ('it''s', 'back\slash')");
    }

    fn depth_of(sql: &str) -> usize {
        let tokens = Tokenizer::new(&ClickHouseDialect {}, sql).tokenize().unwrap();
        depth_bound(&tokens)
    }

    #[test]
    fn depth_bound_counts_nesting_and_chains() {
        // Chains of OR nest one level each; the comparisons between them do not add up.
        let or = |n: usize| format!("SELECT 1 FROM t WHERE {}", vec!["a = 1"; n].join(" OR "));
        assert!((100..110).contains(&depth_of(&or(100))), "{}", depth_of(&or(100)));
        assert!((900..910).contains(&depth_of(&or(900))), "{}", depth_of(&or(900)));
        // Arithmetic chains and parentheses add one level each; a comma starts a new expression.
        assert!(depth_of(&format!("SELECT {}", vec!["1"; 500].join(" + "))) >= 500);
        assert!(depth_of(&format!("SELECT {}1{}", "(".repeat(300), ")".repeat(300))) >= 300);
        assert!(depth_of(&format!("SELECT {}", vec!["a + b"; 2000].join(", "))) < 10);
        assert!(depth_of(&vec!["SELECT 1"; 400].join(" UNION ALL ")) >= 400);
        // Too deep: refused before any tree is built, with ClickHouse's error name.
        let e = parse(&format!("SELECT {}", vec!["1"; 1500].join(" + "))).unwrap_err().to_string();
        assert!(e.contains("TOO_DEEP_AST"), "{e}");
        assert!(parse(&or(900)).is_ok());
    }

    #[test]
    fn unbalanced_brackets_cost_linear_time() {
        // 200,000 `IN [` with no closing bracket: one pass, refused for depth, never quadratic.
        let started = std::time::Instant::now();
        let e = parse(&format!("SELECT 1 WHERE 1 {}", "IN [".repeat(200_000))).unwrap_err().to_string();
        assert!(e.contains("TOO_DEEP_AST"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    }

    #[test]
    fn string_literals_keep_their_backslashes_and_quotes() {
        // What the text said is what the tree holds: `'a\\'` is the two characters `a\`, and what follows is SQL.
        let q = parse(r"SELECT 1 FROM t WHERE s = 'a\\' OR s != ' UNION ALL SELECT 2 -- '").unwrap();
        let mut strings = Vec::new();
        let _ = Visit::visit(&q, &mut StringsOf(&mut strings));
        assert_eq!(strings, [r"a\", " UNION ALL SELECT 2 -- "]);
        let q = parse(r"SELECT 1 WHERE s = 'it\'s' AND t = 'x''y'").unwrap();
        let mut strings = Vec::new();
        let _ = Visit::visit(&q, &mut StringsOf(&mut strings));
        assert_eq!(strings, ["it's", "x'y"]);
    }

    struct StringsOf<'a>(&'a mut Vec<String>);

    impl Visitor for StringsOf<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Value(ValueWithSpan { value: SqlValue::SingleQuotedString(s), .. }) = e {
                self.0.push(s.clone());
            }
            ControlFlow::Continue(())
        }
    }

    #[test]
    fn ctes_are_built_as_nodes() {
        let q = parse(r"WITH a AS (SELECT 'x\'' AS s) SELECT s FROM a").unwrap();
        let with = q.with.as_ref().unwrap();
        assert_eq!(with.cte_tables.len(), 1);
        assert_eq!(with.cte_tables[0].alias.name.value, "a");
        assert!(parse("SELECT * INTO t FROM events").unwrap_err().to_string().contains("INTO"));
        assert!(parse("WITH RECURSIVE t AS (SELECT 1) SELECT * FROM t").unwrap_err().to_string().contains("RECURSIVE"));
    }

    #[test]
    fn union_tail_binds_to_the_last_select() {
        let t = translate("SELECT 1 AS x UNION ALL SELECT 2 AS x ORDER BY x LIMIT 1").unwrap();
        let text = t.statement.to_string();
        assert!(text.contains("UNION ALL (SELECT"), "{text}");
        let err = translate("SELECT 1 AS x UNION ALL (SELECT 2 AS x) ORDER BY x").unwrap_err().to_string();
        assert!(err.contains("last SELECT is in parentheses"), "{err}");
    }

    #[test]
    fn inlines_scalar_with() {
        let q = parse("WITH 2 AS two, t AS (SELECT 1 AS x) SELECT x * two FROM t").unwrap();
        assert_eq!(q.to_string(), "WITH t AS (SELECT 1 AS x) SELECT x * (2) AS `multiply(x, two)` FROM t");
    }
}
