//! ClickHouse SQL as this crate reads it: sqlparser's ClickHouse dialect, plus the operators ClickHouse has that
//! sqlparser does not read. Each is read as the function call ClickHouse itself turns it into, so a column keeps
//! the name ClickHouse gives it:
//!
//! - `a DIV b` → `intDiv(a, b)` and `a MOD b` → `modulo(a, b)`, at the precedence of `*`;
//! - `t.1` → `tupleElement(t, 1)`, binding tighter than any operator (`t.1.2` is
//!   `tupleElement(tupleElement(t, 1), 2)`).
//!
//! The parser still sees the dialect as sqlparser's own (`dialect()` answers its type), so every ClickHouse-specific
//! rule inside sqlparser applies unchanged.

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName,
    ObjectNamePart, Value,
};
use datafusion::sql::sqlparser::dialect::{ClickHouseDialect, Dialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use std::any::TypeId;

/// The dialect every ClickHouse query of this crate is parsed with.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClickHouseSql {
    /// For queries as users write them (on either engine), one more form as ClickHouse reads and names it: `x::T`
    /// is `CAST(x, 'T')` with `T` as written (and a literal `x` as the literal's text: `1::Date` is
    /// `CAST('1', 'Date')`). Off for the SQL the DataFusion engine's rewrites print. `x IN [1, 2]` is always
    /// `in(x, [1, 2])`, ClickHouse's name for it (the DataFusion engine makes it a list again).
    pub users_forms: bool,
}

/// A type as ClickHouse prints it in a column's name, from its tokens: names as written, `, ` between arguments,
/// ` = ` in enum members, strings quoted with backslash escapes. None for tokens a type does not hold.
pub(crate) fn type_text(tokens: &[Token]) -> Option<String> {
    let mut out = String::new();
    let mut previous_is_value = false;
    for token in tokens {
        let value = matches!(token, Token::Word(_) | Token::Number(..) | Token::SingleQuotedString(_));
        if value && previous_is_value {
            out.push(' ');
        }
        match token {
            Token::Word(w) if w.quote_style.is_none() => out.push_str(&w.value),
            Token::Number(n, false) => out.push_str(n),
            Token::SingleQuotedString(s) => {
                out.push('\'');
                out.push_str(&s.replace('\\', "\\\\").replace('\'', "\\'"));
                out.push('\'');
            }
            Token::LParen => out.push('('),
            Token::RParen => out.push(')'),
            Token::Comma => out.push_str(", "),
            Token::Eq => out.push_str(" = "),
            Token::Minus => out.push('-'),
            _ => return None,
        }
        previous_is_value = value;
    }
    (!out.is_empty()).then_some(out)
}

/// The tokens of a type right after `::`: a name, then one balanced parenthesized group if one follows.
fn type_after_colons(parser: &Parser<'_>) -> Option<Vec<Token>> {
    let first = parser.peek_nth_token_ref(0).token.clone();
    if !matches!(&first, Token::Word(w) if w.quote_style.is_none()) {
        return None;
    }
    let mut tokens = vec![first];
    if parser.peek_nth_token_ref(1).token == Token::LParen {
        let mut depth = 0usize;
        let mut n = 1;
        loop {
            let token = parser.peek_nth_token_ref(n).token.clone();
            match token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::EOF => return None,
                _ => {}
            }
            tokens.push(token);
            n += 1;
            if depth == 0 {
                break;
            }
        }
    }
    Some(tokens)
}

/// `x::T` as ClickHouse reads it: `CAST(x, 'T')`, with a literal `x` as the literal's text (`'1'`, `'-1'`).
fn double_colon_cast(parser: &mut Parser<'_>, operand: Expr) -> Result<Expr, ParserError> {
    let Some(tokens) = type_after_colons(parser) else {
        return Err(ParserError::ParserError("Expected: a type after `::`".into()));
    };
    let Some(text) = type_text(&tokens) else {
        return Err(ParserError::ParserError("Expected: a type after `::`".into()));
    };
    for _ in 0..tokens.len() {
        parser.advance_token();
    }
    let operand = match operand {
        Expr::Value(v) => match v.value {
            Value::Number(n, _) => Expr::value(Value::SingleQuotedString(n)),
            Value::SingleQuotedString(s) => Expr::value(Value::SingleQuotedString(s)),
            other => {
                return Err(ParserError::ParserError(format!(
                    "`::` after the literal {other} is not supported by tinybird-local (use CAST)"
                )));
            }
        },
        Expr::Array(_) | Expr::Tuple(_) => {
            return Err(ParserError::ParserError(
                "`::` after an array or tuple literal is not supported by tinybird-local (use CAST)".into(),
            ));
        }
        other => other,
    };
    Ok(call("CAST", vec![operand, Expr::value(Value::SingleQuotedString(text))]))
}

const BASE: ClickHouseDialect = ClickHouseDialect {};

/// The position of a tuple element written `.N` right after an expression, as the tokenizer reads it (a number
/// `.N`): `N`, digits only.
fn tuple_index(token: &Token) -> Option<&str> {
    match token {
        Token::Number(text, false) => {
            text.strip_prefix('.').filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        }
        _ => None,
    }
}

/// `DIV` or `MOD` written as an operator, and the function ClickHouse reads it as.
fn integer_operator(token: &Token) -> Option<&'static str> {
    match token {
        Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::DIV => Some("intDiv"),
        Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::MOD => Some("modulo"),
        _ => None,
    }
}

/// A plain call `name(args…)`.
pub(crate) fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

impl Dialect for ClickHouseSql {
    fn dialect(&self) -> TypeId {
        TypeId::of::<ClickHouseDialect>()
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        BASE.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        BASE.is_identifier_part(ch)
    }

    fn supports_string_literal_backslash_escape(&self) -> bool {
        BASE.supports_string_literal_backslash_escape()
    }

    fn supports_select_wildcard_except(&self) -> bool {
        BASE.supports_select_wildcard_except()
    }

    fn describe_requires_table_keyword(&self) -> bool {
        BASE.describe_requires_table_keyword()
    }

    fn require_interval_qualifier(&self) -> bool {
        BASE.require_interval_qualifier()
    }

    fn supports_limit_comma(&self) -> bool {
        BASE.supports_limit_comma()
    }

    fn supports_insert_table_function(&self) -> bool {
        BASE.supports_insert_table_function()
    }

    fn supports_insert_format(&self) -> bool {
        BASE.supports_insert_format()
    }

    fn supports_numeric_literal_underscores(&self) -> bool {
        BASE.supports_numeric_literal_underscores()
    }

    fn supports_partition_by_after_order_by(&self) -> bool {
        BASE.supports_partition_by_after_order_by()
    }

    fn supports_array_join_syntax(&self) -> bool {
        BASE.supports_array_join_syntax()
    }

    fn supports_dictionary_syntax(&self) -> bool {
        BASE.supports_dictionary_syntax()
    }

    fn supports_lambda_functions(&self) -> bool {
        BASE.supports_lambda_functions()
    }

    fn supports_from_first_select(&self) -> bool {
        BASE.supports_from_first_select()
    }

    fn supports_order_by_all(&self) -> bool {
        BASE.supports_order_by_all()
    }

    fn supports_group_by_expr(&self) -> bool {
        BASE.supports_group_by_expr()
    }

    fn supports_group_by_with_modifier(&self) -> bool {
        BASE.supports_group_by_with_modifier()
    }

    fn supports_nested_comments(&self) -> bool {
        BASE.supports_nested_comments()
    }

    fn supports_optimize_table(&self) -> bool {
        BASE.supports_optimize_table()
    }

    fn supports_prewhere(&self) -> bool {
        BASE.supports_prewhere()
    }

    fn supports_with_fill(&self) -> bool {
        BASE.supports_with_fill()
    }

    fn supports_limit_by(&self) -> bool {
        BASE.supports_limit_by()
    }

    fn supports_interpolate(&self) -> bool {
        BASE.supports_interpolate()
    }

    fn supports_settings(&self) -> bool {
        BASE.supports_settings()
    }

    fn supports_select_format(&self) -> bool {
        BASE.supports_select_format()
    }

    fn supports_select_wildcard_replace(&self) -> bool {
        BASE.supports_select_wildcard_replace()
    }

    fn supports_comma_separated_trim(&self) -> bool {
        BASE.supports_comma_separated_trim()
    }

    /// `count() FILTER (WHERE …)`, which ClickHouse reads as `countIf(…)`. The DataFusion engine refuses it.
    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    /// `SELECT 1 SETTINGS max_threads = 1` is a clause, not `1` aliased `SETTINGS`; `SELECT 1 format` is an error
    /// in ClickHouse, not an alias.
    fn is_column_alias(&self, kw: &Keyword, _parser: &mut Parser<'_>) -> bool {
        !matches!(kw, Keyword::SETTINGS | Keyword::FORMAT)
            && !datafusion::sql::sqlparser::keywords::RESERVED_FOR_COLUMN_ALIAS.contains(kw)
    }

    fn parse_prefix(&self, parser: &mut Parser<'_>) -> Option<Result<Expr, ParserError>> {
        // `-1::Int8` is `CAST('-1', 'Int8')` in ClickHouse: the sign belongs to the literal.
        if self.users_forms
            && parser.peek_nth_token_ref(0).token == Token::Minus
            && let Token::Number(n, false) = &parser.peek_nth_token_ref(1).token
            && parser.peek_nth_token_ref(2).token == Token::DoubleColon
        {
            let literal = Expr::value(Value::Number(format!("-{n}"), false));
            for _ in 0..3 {
                parser.advance_token();
            }
            return Some(double_colon_cast(parser, literal));
        }
        // `tuple(a, b)` is a call: the parser would read `tuple(a, b) .2` as a typed literal of type `Tuple(a, b)`.
        if matches!(&parser.peek_nth_token_ref(0).token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("tuple"))
            && parser.peek_nth_token_ref(1).token == Token::LParen
        {
            let name = parser.next_token().to_string();
            parser.advance_token();
            if parser.consume_token(&Token::RParen) {
                return Some(Ok(call(&name, vec![])));
            }
            let args = match parser.parse_comma_separated(Parser::parse_expr) {
                Ok(args) => args,
                Err(e) => return Some(Err(e)),
            };
            if let Err(e) = parser.expect_token(&Token::RParen) {
                return Some(Err(e));
            }
            return Some(Ok(call(&name, args)));
        }
        None
    }

    fn get_next_precedence(&self, parser: &Parser<'_>) -> Option<Result<u8, ParserError>> {
        let token = &parser.peek_token_ref().token;
        if integer_operator(token).is_some() {
            return Some(Ok(self.prec_value(Precedence::MulDivModOp)));
        }
        if tuple_index(token).is_some() {
            return Some(Ok(self.prec_value(Precedence::Period)));
        }
        None
    }

    fn parse_infix(&self, parser: &mut Parser<'_>, expr: &Expr, precedence: u8) -> Option<Result<Expr, ParserError>> {
        let token = parser.peek_token_ref().token.clone();
        if let Some(function) = integer_operator(&token) {
            parser.advance_token();
            return Some(parser.parse_subexpr(precedence).map(|right| call(function, vec![expr.clone(), right])));
        }
        // `x IN [1, 2]`, `x NOT IN [1, 2]`: the parser takes only a list in parentheses after IN.
        let not = matches!(&token, Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::NOT);
        let is_in = |t: &Token| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::IN);
        let skip = usize::from(not) + 1;
        if is_in(&parser.peek_nth_token_ref(skip - 1).token) && parser.peek_nth_token_ref(skip).token == Token::LBracket
        {
            for _ in 0..skip {
                parser.advance_token();
            }
            let function = if not { "notIn" } else { "in" };
            return Some(parser.parse_prefix().map(|array| call(function, vec![expr.clone(), array])));
        }
        if self.users_forms && token == Token::DoubleColon {
            parser.advance_token();
            return Some(double_colon_cast(parser, expr.clone()));
        }
        if let Some(index) = tuple_index(&token) {
            let index = Expr::value(Value::Number(index.to_string(), false));
            parser.advance_token();
            return Some(Ok(call("tupleElement", vec![expr.clone(), index])));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(sql: &str) -> String {
        let dialect = ClickHouseSql { users_forms: true };
        Parser::new(&dialect).try_with_sql(sql).and_then(|mut p| p.parse_expr()).map(|e| e.to_string()).unwrap()
    }

    #[test]
    fn operators_read_as_clickhouse_reads_them() {
        // Each as ClickHouse 26.9 names the column (measured with chDB).
        assert_eq!(expr("7 DIV 2"), "intDiv(7, 2)");
        assert_eq!(expr("7 mod 2"), "modulo(7, 2)");
        assert_eq!(expr("1 + 2 DIV 2"), "1 + intDiv(2, 2)");
        assert_eq!(expr("10 DIV 3 * 2"), "intDiv(10, 3) * 2");
        assert_eq!(expr("7 DIV 2 DIV 2"), "intDiv(intDiv(7, 2), 2)");
        assert_eq!(expr("10 % 3 DIV 1"), "intDiv(10 % 3, 1)");
        assert_eq!(expr("t.1"), "tupleElement(t, 1)");
        assert_eq!(expr("t.1.2"), "tupleElement(tupleElement(t, 1), 2)");
        assert_eq!(expr("(1, 'a').2"), "tupleElement((1, 'a'), 2)");
        assert_eq!(expr("[(1, 2)][1].2"), "tupleElement([(1, 2)][1], 2)");
        assert_eq!(expr("t.1 + 1"), "tupleElement(t, 1) + 1");
        // `tuple(…)` of names is a call, not a `Tuple(…)` typed literal of `.2`.
        assert_eq!(expr("tuple(a, b).2"), "tupleElement(tuple(a, b), 2)");
        assert_eq!(expr("tuple()"), "tuple()");
        // A function named like the operators is still a function.
        assert_eq!(expr("mod(7, 2)"), "mod(7, 2)");
        // `.5` where an expression starts is a number.
        assert_eq!(expr(".5 + 1"), ".5 + 1");
        // `::` as ClickHouse names it: the type as written, a literal operand as its text.
        assert_eq!(expr("x::DATE"), "CAST(x, 'DATE')");
        assert_eq!(expr("(1 + 1)::Nullable(UInt8)"), "CAST((1 + 1), 'Nullable(UInt8)')");
        assert_eq!(expr("1::Decimal(10,2)"), "CAST('1', 'Decimal(10, 2)')");
        assert_eq!(expr("-1::Int8"), "CAST('-1', 'Int8')");
        assert_eq!(expr("a + b::UInt8"), "a + CAST(b, 'UInt8')");
        assert_eq!(expr("x::DateTime('UTC')"), "CAST(x, 'DateTime(''UTC'')')");
        assert_eq!(expr("x IN [1, 2] AND y NOT IN ['a']"), "in(x, [1, 2]) AND notIn(y, ['a'])");
    }
}
