//! The rewriting visitor: conditions, `ORDER BY` keys, `UNION` tails, typed integer literals and `LIMIT n BY`;
//! each function call goes to [`super::calls::rewrite_function`].

use super::*;

pub(super) struct Rewriter<'a> {
    pub(super) error: Option<EngineError>,
    pub(super) nullable: &'a dyn Fn(&str) -> bool,
    pub(super) text_stored: &'a dyn Fn(&str) -> bool,
}

/// The elements of a tuple written out (`struct(a, b)` once rewritten), or None.
fn struct_args(expr: &Expr) -> Option<Vec<String>> {
    if let Expr::Struct { values, .. } = expr {
        return Some(values.iter().map(ToString::to_string).collect());
    }
    let Expr::Function(f) = expr else { return None };
    if f.name.to_string() != "struct" {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else { return None };
    Some(list.args.iter().map(ToString::to_string).collect())
}

/// `=`, `!=`, `<`, `<=`, `>`, `>=`.
pub(super) fn comparison_operator(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
    )
}

/// Whether an expression is a condition by its form (a comparison, `AND`, `IS NULL`, …), so DataFusion reads it as a
/// boolean without help.
pub(super) fn is_condition(expr: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::UnaryOperator;
    match expr {
        Expr::BinaryOp { op, .. } => comparison_operator(op) || matches!(op, BinaryOperator::And | BinaryOperator::Or),
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
pub(super) fn as_condition(expr: &mut Expr) {
    if is_condition(expr) {
        return;
    }
    let inner = std::mem::replace(expr, Expr::value(SqlValue::Null));
    *expr = super::dialect::call("ch_cond", vec![inner]);
}

/// In ClickHouse, an `ORDER BY`/`LIMIT` after `A UNION ALL B` belongs to `B` alone (the last `SELECT`), not to the
/// union as in standard SQL: moves them into that operand. After a parenthesized last operand ClickHouse rejects them.
pub(super) fn bind_union_tail(query: &mut Query) -> Result<(), EngineError> {
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
    // DataFusion drops a subquery's sort that has no limit (its rows feed a set operation in any order): a limit
    // past any row count keeps it.
    if last.order_by.is_some() && last.limit_clause.is_none() {
        last.limit_clause = Some(datafusion::sql::sqlparser::ast::LimitClause::LimitOffset {
            limit: Some(Expr::value(SqlValue::Number(i64::MAX.to_string(), false))),
            offset: None,
            limit_by: vec![],
        });
    }
    query.order_by = None;
    query.limit_clause = None;
    if let SetExpr::SetOperation { right, .. } = query.body.as_mut() {
        **right = SetExpr::Query(Box::new(last));
    }
    Ok(())
}

/// ClickHouse sorts NULLs last in both directions unless told otherwise; DataFusion puts them first for `DESC`.
pub(super) fn nulls_last(order_by: &mut [datafusion::sql::sqlparser::ast::OrderByExpr]) {
    for item in order_by {
        if item.options.nulls_first.is_none() {
            item.options.nulls_first = Some(false);
        }
    }
}

/// ClickHouse reads an alias of the select list wherever its name appears in the same query's `WHERE`, `GROUP BY`,
/// `HAVING`, `QUALIFY` (and `ORDER BY`), before any column of that name: `SELECT toDate(ts) AS ts … GROUP BY ts` groups
/// by the date, and `WHERE id > 2` after `id + 1 AS id` compares the alias. DataFusion reads the column there. So the
/// alias's expression replaces each such name (not inside subqueries, which have their own aliases; not a qualified
/// `t.ts`, which is the column). Runs on the query as written, before any other rewrite.
///
/// Another item of the select list reads the alias too (`count() AS c, c * 2`), after the items are named; aliases
/// that use one another in a cycle (`SELECT name AS id, id AS name`) are refused.
pub(super) fn substitute_aliases(query: &mut Query) -> Result<(), EngineError> {
    struct Queries(Option<EngineError>);
    impl VisitorMut for Queries {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let Err(e) = substitute_in(query) {
                self.0 = Some(e);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut queries = Queries(None);
    let _ = VisitMut::visit(query, &mut queries);
    queries.0.map_or(Ok(()), Err)
}

fn substitute_in(query: &mut Query) -> Result<(), EngineError> {
    use datafusion::sql::sqlparser::ast::GroupByExpr;
    let SetExpr::Select(select) = query.body.as_mut() else { return Ok(()) };
    let aliases: HashMap<String, Expr> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias }
                if !matches!(expr, Expr::Identifier(i) if i.value == alias.value) =>
            {
                Some((alias.value.clone(), expr.clone()))
            }
            _ => None,
        })
        .collect();
    if aliases.is_empty() {
        return Ok(());
    }
    // The aliases each alias's expression uses (not inside its subqueries, not its own name).
    struct Uses<'a> {
        aliases: &'a HashMap<String, Expr>,
        own: Option<&'a str>,
        depth: usize,
        found: Vec<String>,
    }
    impl Visitor for Uses<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Identifier(ident) = expr
                && self.aliases.contains_key(&ident.value)
                && self.own != Some(ident.value.as_str())
            {
                self.found.push(ident.value.clone());
            }
            ControlFlow::Continue(())
        }
    }
    let uses = |expr: &Expr, own: Option<&str>| {
        let mut uses = Uses { aliases: &aliases, own, depth: 0, found: Vec::new() };
        let _ = Visit::visit(expr, &mut uses);
        uses.found
    };
    // Each alias's expression with the aliases it uses expanded, in dependency order; a cycle is refused.
    let mut expanded: HashMap<String, Expr> = HashMap::new();
    let mut pending: Vec<String> = aliases.keys().cloned().collect();
    pending.sort();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|name| uses(&aliases[name], Some(name)).iter().all(|dep| expanded.contains_key(dep)));
        let Some(at) = ready else {
            return Err(EngineError::Unsupported(format!(
                "the aliases `{}` used by one another in the select list (ClickHouse resolves such cycles by rules \
                 of its own)",
                pending.join("`, `")
            )));
        };
        let name = pending.remove(at);
        let mut expr = aliases[&name].clone();
        replace_outer_identifiers(&mut expr, &mut |ident| {
            (ident.value != name)
                .then(|| expanded.get(&ident.value).map(|r| Expr::Nested(Box::new(r.clone()))))
                .flatten()
        });
        expanded.insert(name, expr);
    }
    // The select list's items read the other items' aliases as ClickHouse does (`count() AS c, c * 2`). Their
    // column names were given before, as written.
    for item in &mut select.projection {
        // A bare alias selected again (`id AS x, x`) keeps its name.
        if let SelectItem::UnnamedExpr(Expr::Identifier(ident)) = item
            && let Some(replacement) = expanded.get(&ident.value)
        {
            let alias = ident.clone();
            *item = SelectItem::ExprWithAlias { expr: Expr::Nested(Box::new(replacement.clone())), alias };
            continue;
        }
        let (expr, own) = match item {
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            SelectItem::UnnamedExpr(expr) => (expr, None),
            _ => continue,
        };
        replace_outer_identifiers(expr, &mut |ident| {
            (own.as_deref() != Some(ident.value.as_str()))
                .then(|| expanded.get(&ident.value).map(|r| Expr::Nested(Box::new(r.clone()))))
                .flatten()
        });
    }
    let aliases = expanded;
    // The alias names in the other clauses, not inside their subqueries.
    let mut replace = |ident: &Ident| aliases.get(&ident.value).map(|r| Expr::Nested(Box::new(r.clone())));
    for clause in [&mut select.selection, &mut select.having, &mut select.qualify].into_iter().flatten() {
        replace_outer_identifiers(clause, &mut replace);
    }
    if let GroupByExpr::Expressions(keys, _) = &mut select.group_by {
        for key in keys {
            replace_outer_identifiers(key, &mut replace);
        }
    }
    // `ORDER BY` needs nothing: DataFusion reads an output name there before a column, as ClickHouse does.
    Ok(())
}

/// Replaces each bare identifier of `expr` that `with` gives a replacement for, outside the subqueries in `expr`
/// (their names are their own).
pub(super) fn replace_outer_identifiers(expr: &mut Expr, with: &mut dyn FnMut(&Ident) -> Option<Expr>) {
    struct Replace<'a> {
        with: &'a mut dyn FnMut(&Ident) -> Option<Expr>,
        depth: usize,
    }
    impl VisitorMut for Replace<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Identifier(ident) = expr
                && let Some(replacement) = (self.with)(ident)
            {
                *expr = replacement;
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(expr, &mut Replace { with, depth: 0 });
}

/// `CAST(x AS T)`, `CAST(x, 'T')` and `x::T` as ClickHouse's conversion to `T` (its `toT`): integers wrap as
/// ClickHouse's do (`CAST(-1 AS UInt8)` is 255), text parses as ClickHouse parses it, and ClickHouse's SQL-standard
/// aliases (`INT`, `BIGINT UNSIGNED`, `DOUBLE`, `TEXT`, …) are its types. `Nullable(T)` converts as `T` (the
/// `hints` module makes the column Nullable). Types DataFusion does not store as ClickHouse does (decimals, enums,
/// UUIDs, …) are refused by name.
pub(super) fn conversion(arg: &str, type_text: &str) -> Result<String, EngineError> {
    let refused = || EngineError::Unsupported(format!("CAST to {type_text} on the DataFusion engine"));
    let mut text = type_text.trim();
    let mut nullable = false;
    if let Some(inner) = text.strip_prefix("Nullable(").and_then(|t| t.strip_suffix(')')) {
        text = inner.trim();
        nullable = true;
    }
    // To a non-Nullable type, a NULL is an error in ClickHouse.
    let checked = if nullable { arg.to_string() } else { format!("ch_not_null({arg})") };
    let arg = checked.as_str();
    let words: Vec<String> = text.split_whitespace().map(str::to_ascii_uppercase).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let alias = match words.as_slice() {
        ["TINYINT" | "INT1" | "BYTE"] | ["TINYINT" | "INT1", "SIGNED"] => Some("Int8"),
        ["SMALLINT"] | ["SMALLINT", "SIGNED"] => Some("Int16"),
        ["INT" | "INTEGER" | "MEDIUMINT"] | ["INT" | "INTEGER" | "MEDIUMINT", "SIGNED"] => Some("Int32"),
        ["BIGINT"] | ["BIGINT", "SIGNED"] => Some("Int64"),
        ["TINYINT" | "INT1", "UNSIGNED"] => Some("UInt8"),
        ["SMALLINT", "UNSIGNED"] => Some("UInt16"),
        ["INT" | "INTEGER" | "MEDIUMINT", "UNSIGNED"] => Some("UInt32"),
        ["BIGINT", "UNSIGNED"] => Some("UInt64"),
        ["FLOAT" | "REAL" | "SINGLE"] => Some("Float32"),
        ["DOUBLE"] | ["DOUBLE", "PRECISION"] => Some("Float64"),
        ["TEXT" | "VARCHAR" | "CHAR" | "LONGTEXT" | "MEDIUMTEXT" | "TINYTEXT" | "CLOB" | "BLOB"] => Some("String"),
        ["BOOLEAN"] => Some("Bool"),
        _ => None,
    };
    let ty = crate::types::ChType::parse(alias.unwrap_or(text)).map_err(|_| refused())?;
    use crate::types::ChType;
    Ok(match ty {
        ChType::Int { .. } | ChType::Float(_) => {
            format!("{}({})", super::calls::cast_fn(&ty.to_string()).ok_or_else(refused)?, arg)
        }
        ChType::String => format!("ch_to_string({arg})"),
        ChType::Bool => format!("CAST({arg} AS BOOLEAN)"),
        ChType::Date { wide: false } => format!("ch_to_date({arg})"),
        ChType::DateTime { precision: None, tz: None } => format!("ch_to_datetime({arg})"),
        ChType::DateTime { precision: Some(p @ (0 | 3 | 6 | 9)), tz: None } => {
            format!("ch_to_datetime64({arg}, {p}, '')")
        }
        ChType::DateTime { precision: Some(p), tz: None } => {
            return Err(super::calls::precision_refused("CAST to DateTime64", p));
        }
        ChType::Decimal(p, s) => format!("ch_to_decimal({arg}, {p}, {s}, 'error')"),
        _ => return Err(refused()),
    })
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    /// Constructs DataFusion would run otherwise than ClickHouse, refused by name: a `FULL JOIN … USING` (ClickHouse
    /// fills the key from whichever side has it), and two `arrayJoin`s in one select list (ClickHouse unfolds them
    /// as a product, DataFusion's `unnest` side by side).
    /// `CASE` is ClickHouse's `multiIf` (and `CASE x WHEN a` its `caseWithExpression`, `x = a` in turn): read as that
    /// call, so its results are typed as ClickHouse types them (`THEN 0 ELSE 1` is UInt8) and a missing `ELSE` is
    /// `NULL`.
    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        // A LIKE pattern ending in an escaping backslash is ClickHouse's error.
        if let Expr::Like { pattern, .. } | Expr::ILike { pattern, .. } = expr
            && let Expr::Value(ValueWithSpan { value: SqlValue::SingleQuotedString(p), .. }) = pattern.as_ref()
            && p.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
        {
            self.error = Some(EngineError::Syntax(
                "Invalid escape sequence at the end of LIKE pattern (CANNOT_PARSE_ESCAPE_SEQUENCE)".into(),
            ));
            return ControlFlow::Break(());
        }
        // `toTypeName` of a literal: ClickHouse's type for it, as text (before the literal is typed for DataFusion).
        if let Expr::Function(f) = expr
            && f.over.is_none()
            && matches!(f.name.0.as_slice(), [part] if part.as_ident().is_some_and(|i| i.value == "toTypeName"))
            && let FunctionArguments::List(list) = &f.args
            && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = list.args.as_slice()
            && let Some(name) = literal_type_name(arg)
        {
            *expr = Expr::value(SqlValue::SingleQuotedString(name));
            return ControlFlow::Continue(());
        }
        if let Expr::Case { operand, conditions, else_result, .. } = expr {
            let mut args = Vec::with_capacity(conditions.len() * 2 + 1);
            for when in conditions.iter() {
                // `CASE x WHEN v`: ClickHouse matches a NULL `x` with a NULL `v` (`CASE ni WHEN NULL THEN …`).
                args.push(match operand {
                    Some(operand) => {
                        let (x, v) = (
                            Box::new(Expr::Nested(operand.clone())),
                            Box::new(Expr::Nested(Box::new(when.condition.clone()))),
                        );
                        let equal = Expr::BinaryOp { left: x.clone(), op: BinaryOperator::Eq, right: v.clone() };
                        let both_null = Expr::BinaryOp {
                            left: Box::new(Expr::IsNull(x)),
                            op: BinaryOperator::And,
                            right: Box::new(Expr::IsNull(v)),
                        };
                        Expr::Nested(Box::new(Expr::BinaryOp {
                            left: Box::new(equal),
                            op: BinaryOperator::Or,
                            right: Box::new(Expr::Nested(Box::new(both_null))),
                        }))
                    }
                    None => when.condition.clone(),
                });
                args.push(when.result.clone());
            }
            args.push(else_result.as_deref().cloned().unwrap_or(Expr::value(SqlValue::Null)));
            *expr = call("multiIf", args);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
        let full_using = select
            .from
            .iter()
            .flat_map(|t| &t.joins)
            .any(|j| matches!(using_join(&j.join_operator), Some((_, UsingKey::Right | UsingKey::Full))));
        // The key of a RIGHT or FULL JOIN … USING takes the joined side's value in ClickHouse; DataFusion's, the left's.
        if full_using {
            self.error =
                Some(EngineError::Unsupported("RIGHT or FULL JOIN … USING (join ON the columns instead)".into()));
            return ControlFlow::Break(());
        }
        struct ArrayJoins(usize);
        impl Visitor for ArrayJoins {
            type Break = ();
            fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
                if let Expr::Function(f) = expr
                    && f.name.to_string().eq_ignore_ascii_case("arrayJoin")
                {
                    self.0 += 1;
                }
                ControlFlow::Continue(())
            }
        }
        let mut count = ArrayJoins(0);
        let _ = Visit::visit(&select.projection, &mut count);
        if count.0 > 1 {
            self.error = Some(EngineError::Unsupported(
                "more than one arrayJoin in a select list (ClickHouse unfolds them as a product)".into(),
            ));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Err(e) = bind_union_tail(query) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        if let Some(order_by) = &mut query.order_by
            && let OrderByKind::Expressions(items) = &mut order_by.kind
        {
            // A key ClickHouse orders by value rather than text (a UUID, an enum) is rewritten when planned (see
            // the `order` module), where its type is known.
            nulls_last(items);
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
        // The outermost SELECT's are taken off before this runs (see the `grouping` module); a subquery's
        // `WITH TOTALS` would pass its totals out, which this engine does not.
        if let datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(_, modifiers)
        | datafusion::sql::sqlparser::ast::GroupByExpr::All(modifiers) = &select.group_by
            && !modifiers.is_empty()
        {
            self.error = Some(EngineError::Unsupported(
                "GROUP BY … WITH ROLLUP, CUBE or TOTALS in a subquery, or with GROUP BY ALL".into(),
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
            Expr::Cast {
                kind:
                    datafusion::sql::sqlparser::ast::CastKind::Cast | datafusion::sql::sqlparser::ast::CastKind::DoubleColon,
                expr: inner,
                data_type,
                format: None,
                ..
            } => conversion(&inner.to_string(), &data_type.to_string()).and_then(|sql| parse_expr(&sql)).map(Some),
            // Tuples compared: NULL where an element is NULL, as ClickHouse compares them (DataFusion's structs
            // compare NULL fields as equal values).
            Expr::BinaryOp {
                left,
                op:
                    op @ (BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq),
                right,
            } if [left.as_ref(), right.as_ref()].iter().any(|e| struct_args(e).is_some()) => (|| {
                let (Some(l), Some(r)) = (struct_args(left), struct_args(right)) else {
                    return Err(EngineError::Unsupported(
                        "comparing a tuple with something other than a tuple written out".into(),
                    ));
                };
                if l.len() != r.len() {
                    return Err(EngineError::Syntax("comparing tuples of different sizes".into()));
                }
                let nulls: Vec<String> = l.iter().chain(r.iter()).map(|e| format!("({e}) IS NULL")).collect();
                parse_expr(&format!("CASE WHEN {} THEN NULL ELSE ({left} {op} {right}) END", nulls.join(" OR ")))
                    .map(Some)
            })(),
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
            // `(a, b)`: ClickHouse's tuple, a struct here (see `tuple` in the `calls` module).
            Expr::Tuple(items) => {
                let items: Vec<String> = items.iter().map(|x| typed_literal_text(&x.to_string())).collect();
                parse_expr(&format!("struct({})", items.join(", "))).map(Some)
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
                match picks_text_stored(f, self.text_stored) {
                    Some(e) => Err(e),
                    None => rewrite_function(expr, self.nullable),
                }
            }
            // The parser reads `substring(…)` as its own node: give it ClickHouse's byte semantics too.
            // `substring(s)` is a syntax error in ClickHouse.
            Expr::Substring { substring_from: None, .. } => Err(EngineError::Syntax(
                "Number of arguments for function substring doesn't match: passed 1, should be from 2 to 3".into(),
            )),
            Expr::Substring { expr: s, substring_from: Some(from), substring_for, .. } => {
                let mut args = vec![format!("ch_expect({s}, 'text', 'substring')"), from.to_string()];
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
                // A negative one too: `-2 * -3` is Int8 × Int8 = Int16.
                if let Some((_, l)) = typed_integer_literal(left) {
                    **left = l;
                }
                if let Some((_, r)) = typed_integer_literal(right) {
                    **right = r;
                }
                Ok(None)
            }
            // `[1, 2, 3]` is Array(UInt8): integer elements take ClickHouse's literal types, and the array the
            // common type of its elements, where DataFusion makes every one Int64.
            // ClickHouse types `[1, NULL]` `Array(Nullable(UInt8))`; the elements' types here carry no `Nullable`.
            Expr::Array(array)
                if array.elem.iter().any(|e| matches!(e, Expr::Value(ValueWithSpan { value: SqlValue::Null, .. }))) =>
            {
                Err(EngineError::Unsupported("an array literal holding NULL (ClickHouse's Array(Nullable(T)))".into()))
            }
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
pub(super) fn type_integer_literals(projection: &mut [SelectItem]) {
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
pub(super) fn typed_literal_text(arg: &str) -> String {
    parse_expr(arg).ok().and_then(|e| typed_integer_literal(&e)).map_or_else(|| arg.to_string(), |(_, e)| e.to_string())
}

/// An integer literal (`1`, `-1`) as `(its text, a cast to the smallest ClickHouse integer type holding it)`.
pub(super) fn typed_integer_literal(expr: &Expr) -> Option<(String, Expr)> {
    if let Expr::Nested(inner) = expr {
        return typed_integer_literal(inner);
    }
    let (negative, inner) = match expr {
        Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus, expr } => (true, expr.as_ref()),
        other => (false, other),
    };
    let Expr::Value(ValueWithSpan { value: SqlValue::Number(digits, _), .. }) = inner else { return None };
    let n: i128 = digits.parse().ok()?;
    let f = super::calls::cast_fn(smallest_integer_type(if negative { -n } else { n })?)?;
    let text = if negative { format!("-{digits}") } else { digits.clone() };
    // Built, not printed and parsed: an `IN [..]` of 10,000 numbers takes 10,000 of these.
    let literal = Expr::value(SqlValue::Number(digits.clone(), false));
    let literal = if negative {
        Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus, expr: Box::new(literal) }
    } else {
        literal
    };
    Some((text, super::dialect::call(f, vec![literal])))
}

/// The literal inside what [`typed_integer_literal`] made of it (`ch_to_uint8(1)` → `1`), else None.
pub(super) fn untyped_integer_literal(expr: &Expr) -> Option<Expr> {
    let Expr::Function(f) = expr else { return None };
    let name = f.name.to_string();
    const INTEGERS: [&str; 8] = ["Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"];
    if !INTEGERS.iter().any(|t| super::calls::cast_fn(t) == Some(name.as_str())) {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else { return None };
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = list.args.as_slice() else { return None };
    let number = match arg {
        Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus, expr } => expr.as_ref(),
        other => other,
    };
    matches!(number, Expr::Value(ValueWithSpan { value: SqlValue::Number(..), .. })).then(|| arg.clone())
}

/// `LIMIT n BY a, b` → a `row_number() OVER (PARTITION BY a, b ORDER BY …)` filter around the query.
pub(super) fn rewrite_limit_by(query: &mut Query) -> Result<(), EngineError> {
    let Some(LimitClause::LimitOffset { limit: Some(limit), offset, limit_by }) = &query.limit_clause else {
        return Ok(());
    };
    if limit_by.is_empty() {
        return Ok(());
    }
    if offset.is_some() {
        return Err(EngineError::Unsupported("LIMIT n OFFSET m BY".into()));
    }
    // A count that is not a whole number ≥ 0 (ClickHouse reads `LIMIT -1 BY` its own way).
    if !matches!(limit, Expr::Value(ValueWithSpan { value: SqlValue::Number(n, _), .. }) if n.parse::<u64>().is_ok()) {
        return Err(EngineError::Unsupported(format!("LIMIT {limit} BY (a count other than a whole number)")));
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
    // An ORDER BY expression that is not a selected column (`ORDER BY ts DESC LIMIT 1 BY id`): computed in a
    // hidden column of the inner query, which the outer one orders by and leaves out.
    let mut hidden: Vec<String> = Vec::new();
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
                    let alias = format!("__tb_limit_by_order_{}", hidden.len());
                    hidden.push(format!("{} AS {alias}", resolved.expr));
                    let mut outer = item.clone();
                    outer.expr = Expr::Identifier(Ident::new(alias));
                    outer_order.push(outer.to_string());
                }
            }
        }
    }
    if !hidden.is_empty() && select.distinct.is_some() {
        return Err(EngineError::Unsupported(
            "LIMIT BY with DISTINCT and ORDER BY on an expression that is not a selected column".into(),
        ));
    }
    let mut inner = query.clone();
    inner.limit_clause = None;
    inner.order_by = None;
    let window = format!(
        "row_number() OVER (PARTITION BY {}{}) AS __tb_limit_by_rn",
        by.join(", "),
        if window_order.is_empty() { String::new() } else { format!(" ORDER BY {}", window_order.join(", ")) }
    );
    let extra: Vec<String> = hidden.iter().cloned().chain(std::iter::once(window)).collect();
    if let SetExpr::Select(s) = inner.body.as_mut() {
        let item = parse_generic(&format!("SELECT {}", extra.join(", ")))?;
        if let SetExpr::Select(parsed) = *item.body {
            s.projection.extend(parsed.projection);
        }
    }
    let excluded: Vec<String> = (0..hidden.len())
        .map(|i| format!("__tb_limit_by_order_{i}"))
        .chain(std::iter::once("__tb_limit_by_rn".to_string()))
        .collect();
    let text = format!(
        "SELECT * EXCLUDE ({}) FROM ({inner}) AS __tb_limit_by WHERE __tb_limit_by_rn <= {limit}{}",
        excluded.join(", "),
        if outer_order.is_empty() { String::new() } else { format!(" ORDER BY {}", outer_order.join(", ")) }
    );
    *query = parse_generic(&text)?;
    Ok(())
}

/// Aggregates and window functions that return (or compare) a value of their first argument: over a column of a
/// type stored as text here (`UUID`, `IPv4`, an enum), ClickHouse keeps the type and compares by value, which this
/// engine does not for these. Refused, naming the function. (`any`, `anyLast`, `argMin`, `argMax`, `first_value`,
/// `last_value` keep the declared type through DataFusion's `first_value`/`last_value`, and `min`/`max` aggregates
/// are ordered by value by the `order` analyzer rule: not listed; `min`/`max` over a window are.)
const PICKS: &[&str] = &[
    // The `-If` forms pick through a `CASE`, which does not keep the declared type (nor its order).
    "minif",
    "maxif",
    "anyif",
    "anylastif",
    "argminif",
    "argmaxif",
    "nth_value",
    "grouparray",
    "groupuniqarray",
    "lag",
    "lead",
    "laginframe",
    "leadinframe",
];

/// Conditionals, which return one of their arguments with its type.
const CONDITIONALS: &[&str] = &["if", "multiif", "coalesce", "ifnull", "nullif", "assumenotnull"];

fn picks_text_stored(
    f: &datafusion::sql::sqlparser::ast::Function,
    text_stored: &dyn Fn(&str) -> bool,
) -> Option<EngineError> {
    let name = f.name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    let windowed_extreme = f.over.is_some() && matches!(name.as_str(), "min" | "max");
    if !PICKS.contains(&name.as_str()) && !CONDITIONALS.contains(&name.as_str()) && !windowed_extreme {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else { return None };
    let column_of = |arg: &FunctionArg| match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(i))) => Some(i.value.clone()),
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::CompoundIdentifier(parts))) => {
            parts.last().map(|p| p.value.clone())
        }
        _ => None,
    };
    // A conditional returns any of its arguments; the others, their first.
    let candidates: Vec<&FunctionArg> = if CONDITIONALS.contains(&name.as_str()) {
        list.args.iter().collect()
    } else {
        list.args.first().into_iter().collect()
    };
    let column = candidates.into_iter().filter_map(column_of).find(|c| text_stored(c))?;
    Some(column).map(|column| {
        EngineError::Unsupported(format!(
            "`{}` of the column `{column}`, whose type (UUID, IPv4, IPv6, enum…) the DataFusion engine stores as text",
            f.name
        ))
    })
}

/// ClickHouse's type for an integer literal: the smallest that holds it (`1` is UInt8, `-1` Int8, `256` UInt16); None
/// beyond 64 bits.
fn smallest_integer_type(n: i128) -> Option<&'static str> {
    #[allow(clippy::match_overlapping_arm)] // The first arm that holds `n` is the smallest type.
    Some(match n {
        0..=0xff => "UInt8",
        0..=0xffff => "UInt16",
        0..=0xffff_ffff => "UInt32",
        0.. if n <= i128::from(u64::MAX) => "UInt64",
        -0x80..=-1 => "Int8",
        -0x8000..=-1 => "Int16",
        -0x8000_0000..=-1 => "Int32",
        _ if n >= i128::from(i64::MIN) && n < 0 => "Int64",
        _ => return None,
    })
}

/// ClickHouse's type of a literal: the smallest integer type holding an integer (`1` is UInt8, `-1` Int8, `256`
/// UInt16), Float64 for a number with a point or exponent, String, Bool, `Nullable(Nothing)` for NULL. None for
/// anything else.
fn literal_type_name(expr: &Expr) -> Option<String> {
    let (negative, inner) = match expr {
        Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus, expr } => (true, expr.as_ref()),
        Expr::Nested(e) => return literal_type_name(e),
        other => (false, other),
    };
    let Expr::Value(ValueWithSpan { value, .. }) = inner else { return None };
    Some(match value {
        SqlValue::Number(digits, _) if digits.chars().all(|c| c.is_ascii_digit()) => {
            let n: i128 = digits.parse().ok()?;
            smallest_integer_type(if negative { -n } else { n })?.to_string()
        }
        SqlValue::Number(text, _) if text.parse::<f64>().is_ok_and(f64::is_finite) => "Float64".into(),
        SqlValue::SingleQuotedString(_) if !negative => "String".into(),
        SqlValue::Boolean(_) if !negative => "Bool".into(),
        SqlValue::Null if !negative => "Nullable(Nothing)".into(),
        _ => return None,
    })
}
