//! Column names as ClickHouse gives them. ClickHouse names an unaliased select item by printing the expression as
//! its parser read it: operators become the functions they stand for (`a + 1` is `plus(a, 1)`, `a AND b AND c` is
//! `and(a, b, c)`), `count(*)` is `count()`, `count(DISTINCT x)` is `countDistinct(x)`, strings are quoted with
//! backslash escapes. The DataFusion engine rewrites expressions into its own functions, so without this its column
//! names would be those rewrites (`ch_to_uint64(count(*))`); each unaliased item gets ClickHouse's name as an alias
//! before any rewrite. An expression this module does not know keeps the engine's name (a gap the differential test
//! lists, never a different value).

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DateTimeField, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Query,
    Select, SelectItem, Subscript, UnaryOperator, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;

/// Aliases every unaliased, non-column select item of the query (and its subqueries) with ClickHouse's name for it.
/// `columns` gives a table's column names (None for a name that is not a table), for the names of joined columns.
///
/// An unaliased scalar subquery is refused: ClickHouse names it by its place among the query's subqueries
/// (`_subquery_1`), which this module does not number.
pub fn name_columns(
    query: &mut Query,
    columns: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<(), crate::engine::EngineError> {
    struct Namer<'a> {
        columns: &'a dyn Fn(&str) -> Option<Vec<String>>,
        /// The CTEs of each query being visited, outermost first, with their columns' names when known.
        ctes: Vec<Vec<(String, Option<Vec<String>>)>>,
        refused: bool,
    }
    impl VisitorMut for Namer<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let ctes = query.with.as_ref().map_or_else(Vec::new, |with| {
                let named = |cte: &datafusion::sql::sqlparser::ast::Cte| match cte.alias.columns.as_slice() {
                    [] => output_names(&cte.query),
                    listed => Some(listed.iter().map(|c| c.name.value.clone()).collect()),
                };
                with.cte_tables.iter().map(|cte| (cte.alias.name.value.clone(), named(cte))).collect()
            });
            self.ctes.push(ctes);
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.ctes.pop();
            ControlFlow::Continue(())
        }
        fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
            let ctes = &self.ctes;
            let columns = self.columns;
            let in_scope = |table: &str| match ctes.iter().rev().flatten().find(|(name, _)| name == table) {
                Some((_, columns)) => columns.clone(),
                None => columns(table),
            };
            let qualified = Qualified::of(select, &in_scope);
            for item in &mut select.projection {
                let SelectItem::UnnamedExpr(expr) = item else { continue };
                if matches!(expr, Expr::Identifier(_)) {
                    continue;
                }
                // ClickHouse names a scalar subquery `_subquery_N`, numbered over the whole query.
                let mut holds_subquery = false;
                let _ = datafusion::sql::sqlparser::ast::visit_expressions(&*expr, |e| {
                    holds_subquery |= matches!(e, Expr::Subquery(_));
                    ControlFlow::<()>::Continue(())
                });
                if holds_subquery {
                    self.refused = true;
                    return ControlFlow::Break(());
                }
                let named = qualified.spelled(expr);
                if let Expr::CompoundIdentifier(_) = expr
                    && !matches!(&named, Expr::Identifier(i) if i.value.contains('.'))
                {
                    continue;
                }
                if let Some(name) = column_name(&named) {
                    let expr = std::mem::replace(expr, Expr::value(Value::Null));
                    *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('`', name) };
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut namer = Namer { columns, ctes: Vec::new(), refused: false };
    let _ = VisitMut::visit(query, &mut namer);
    match namer.refused {
        true => Err(crate::engine::EngineError::Unsupported(
            "a scalar subquery in a select list item without an alias (give the item one: `… AS name`)".into(),
        )),
        false => Ok(()),
    }
}

/// The names of a subquery's columns (a UNION's are its first SELECT's), when each is a column or an alias.
fn output_names(query: &Query) -> Option<Vec<String>> {
    use datafusion::sql::sqlparser::ast::SetExpr;
    fn of_body(body: &SetExpr) -> Option<Vec<String>> {
        match body {
            SetExpr::Select(s) => s
                .projection
                .iter()
                .map(|item| match item {
                    SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
                    SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().map(|p| p.value.clone()),
                    _ => None,
                })
                .collect(),
            SetExpr::SetOperation { left, .. } => of_body(left),
            SetExpr::Query(q) => of_body(&q.body),
            _ => None,
        }
    }
    of_body(&query.body)
}

/// How ClickHouse names `t.c` in a join: `c`, unless another table of the join has a column `c` too, and then `t.c`
/// for every table but the first of a two-table join (`SELECT p.id, o.id, o.name … p JOIN o` names `id`, `o.id`,
/// `name`).
struct Qualified {
    /// Each table of the FROM clause: its name in the query (alias, else table name), and its columns when known.
    relations: Vec<(String, Option<Vec<String>>)>,
}

impl Qualified {
    fn of(select: &Select, columns: &dyn Fn(&str) -> Option<Vec<String>>) -> Qualified {
        use datafusion::sql::sqlparser::ast::TableFactor;
        let mut relations = Vec::new();
        for from in &select.from {
            for factor in std::iter::once(&from.relation).chain(from.joins.iter().map(|j| &j.relation)) {
                let entry = match factor {
                    TableFactor::Table { name, alias, .. } => {
                        let table =
                            name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.clone()).unwrap_or_default();
                        let known = columns(&table);
                        (alias.as_ref().map(|a| a.name.value.clone()).unwrap_or(table), known)
                    }
                    TableFactor::Derived { subquery, alias, .. } => {
                        (alias.as_ref().map(|a| a.name.value.clone()).unwrap_or_default(), output_names(subquery))
                    }
                    _ => (String::new(), None),
                };
                relations.push(entry);
            }
        }
        Qualified { relations }
    }

    /// Whether ClickHouse keeps the qualifier of `relation.column`; None when a table's columns are unknown.
    fn keeps(&self, relation: &str, column: &str) -> Option<bool> {
        if self.relations.len() < 2 {
            return Some(false);
        }
        let position = self.relations.iter().position(|(name, _)| name == relation)?;
        let mut holders = 0;
        for (_, columns) in &self.relations {
            holders += columns.as_ref()?.iter().any(|c| c == column) as usize;
        }
        Some(holders > 1 && (self.relations.len() > 2 || position > 0))
    }

    /// The expression with each `t.c` replaced by the identifier ClickHouse's name spells for it (`c` or `t.c`), or
    /// left as it is when that is unknown (then the item has no ClickHouse name here).
    fn spelled(&self, expr: &Expr) -> Expr {
        struct Spell<'a>(&'a Qualified);
        impl VisitorMut for Spell<'_> {
            type Break = ();
            fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
                if let Expr::CompoundIdentifier(parts) = e
                    && let [relation, column] = parts.as_slice()
                {
                    match self.0.keeps(&relation.value, &column.value) {
                        Some(true) => *e = Expr::Identifier(Ident::new(format!("{}.{}", relation.value, column.value))),
                        Some(false) => *e = Expr::Identifier(column.clone()),
                        None => {}
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut spelled = expr.clone();
        let _ = VisitMut::visit(&mut spelled, &mut Spell(self));
        spelled
    }
}

/// ClickHouse's name for an expression, or None when this module does not know how ClickHouse prints it.
pub fn column_name(expr: &Expr) -> Option<String> {
    let mut out = String::new();
    write(&mut out, expr)?;
    Some(out)
}

fn call(out: &mut String, name: &str, args: &[&Expr]) -> Option<()> {
    out.push_str(name);
    out.push('(');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write(out, a)?;
    }
    out.push(')');
    Some(())
}

fn string(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

fn operator(op: &BinaryOperator) -> Option<&'static str> {
    Some(match op {
        BinaryOperator::Plus => "plus",
        BinaryOperator::Minus => "minus",
        BinaryOperator::Multiply => "multiply",
        BinaryOperator::Divide => "divide",
        BinaryOperator::Modulo => "modulo",
        BinaryOperator::Eq => "equals",
        BinaryOperator::NotEq => "notEquals",
        BinaryOperator::Lt => "less",
        BinaryOperator::LtEq => "lessOrEquals",
        BinaryOperator::Gt => "greater",
        BinaryOperator::GtEq => "greaterOrEquals",
        BinaryOperator::And => "and",
        BinaryOperator::Or => "or",
        BinaryOperator::Xor => "xor",
        BinaryOperator::StringConcat => "concat",
        BinaryOperator::Spaceship => "isNotDistinctFrom",
        _ => return None,
    })
}

/// The operands of a chain of one associative operator (`a AND b AND c`), which ClickHouse reads as one call.
fn chain<'e>(expr: &'e Expr, op: &BinaryOperator, into: &mut Vec<&'e Expr>) {
    match expr {
        Expr::BinaryOp { left, op: o, right } if o == op => {
            chain(left, op, into);
            chain(right, op, into);
        }
        other => into.push(other),
    }
}

fn interval_unit(field: &DateTimeField) -> Option<&'static str> {
    Some(match field {
        DateTimeField::Nanosecond | DateTimeField::Nanoseconds => "Nanosecond",
        DateTimeField::Microsecond | DateTimeField::Microseconds => "Microsecond",
        DateTimeField::Millisecond | DateTimeField::Milliseconds => "Millisecond",
        DateTimeField::Second | DateTimeField::Seconds => "Second",
        DateTimeField::Minute | DateTimeField::Minutes => "Minute",
        DateTimeField::Hour | DateTimeField::Hours => "Hour",
        DateTimeField::Day | DateTimeField::Days => "Day",
        DateTimeField::Week(None) | DateTimeField::Weeks => "Week",
        DateTimeField::Month | DateTimeField::Months => "Month",
        DateTimeField::Quarter => "Quarter",
        DateTimeField::Year | DateTimeField::Years => "Year",
        _ => return None,
    })
}

/// A number literal as ClickHouse names it: an integer as its value; any other number as the float it is, in
/// ClickHouse's float text, with a `.` when that text would read as an integer (`1e15` is `1000000000000000.`,
/// `1.50` is `1.5`, `1e-7` stays).
fn number(out: &mut String, n: &str) {
    if let Ok(i) = n.parse::<u64>() {
        out.push_str(itoa::Buffer::new().format(i));
        return;
    }
    let Ok(f) = n.parse::<f64>() else {
        out.push_str(n);
        return;
    };
    let text = crate::format::ch_text(&super::Value::Float(f), &crate::types::ChType::Float(64));
    out.push_str(&text);
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        out.push('.');
    }
}

/// ` OVER (PARTITION BY a ORDER BY b ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)` or ` OVER w`, as ClickHouse
/// prints a window: every ORDER BY item with its direction, a one-sided frame as `BETWEEN … AND CURRENT ROW`.
fn window(out: &mut String, over: &datafusion::sql::sqlparser::ast::WindowType) -> Option<()> {
    use datafusion::sql::sqlparser::ast::{WindowFrameBound, WindowFrameUnits, WindowType};
    let spec = match over {
        WindowType::NamedWindow(name) => {
            out.push_str(" OVER ");
            out.push_str(&name.value);
            return Some(());
        }
        WindowType::WindowSpec(spec) => spec,
    };
    if spec.window_name.is_some() {
        return None;
    }
    let mut parts = Vec::new();
    if !spec.partition_by.is_empty() {
        let keys: Option<Vec<String>> = spec.partition_by.iter().map(column_name).collect();
        parts.push(format!("PARTITION BY {}", keys?.join(", ")));
    }
    if !spec.order_by.is_empty() {
        let mut keys = Vec::new();
        for o in &spec.order_by {
            let mut key = column_name(&o.expr)?;
            key.push_str(if o.options.asc == Some(false) { " DESC" } else { " ASC" });
            match o.options.nulls_first {
                Some(true) => key.push_str(" NULLS FIRST"),
                Some(false) => key.push_str(" NULLS LAST"),
                None => {}
            }
            if o.with_fill.is_some() {
                return None;
            }
            keys.push(key);
        }
        parts.push(format!("ORDER BY {}", keys.join(", ")));
    }
    if let Some(frame) = &spec.window_frame {
        let bound = |b: &WindowFrameBound| -> Option<String> {
            Some(match b {
                WindowFrameBound::CurrentRow => "CURRENT ROW".into(),
                WindowFrameBound::Preceding(None) => "UNBOUNDED PRECEDING".into(),
                WindowFrameBound::Following(None) => "UNBOUNDED FOLLOWING".into(),
                WindowFrameBound::Preceding(Some(n)) => format!("{} PRECEDING", column_name(n)?),
                WindowFrameBound::Following(Some(n)) => format!("{} FOLLOWING", column_name(n)?),
            })
        };
        let units = match frame.units {
            WindowFrameUnits::Rows => "ROWS",
            WindowFrameUnits::Range => "RANGE",
            WindowFrameUnits::Groups => return None,
        };
        let end = match &frame.end_bound {
            Some(b) => bound(b)?,
            None => "CURRENT ROW".into(),
        };
        parts.push(format!("{units} BETWEEN {} AND {end}", bound(&frame.start_bound)?));
    }
    out.push_str(" OVER (");
    out.push_str(&parts.join(" "));
    out.push(')');
    Some(())
}

/// ClickHouse's name for `date_add(UNIT, n, x)` / `dateSub(UNIT, n, x)`, or None for any other call.
fn date_add_name(f: &datafusion::sql::sqlparser::ast::Function) -> Option<String> {
    let name = f.name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    let op = match name.as_str() {
        "date_add" | "dateadd" => "plus",
        "date_sub" | "datesub" => "minus",
        _ => return None,
    };
    let FunctionArguments::List(list) = &f.args else { return None };
    let [unit, n, x] = list.args.as_slice() else { return None };
    let arg = |a: &FunctionArg| match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
        _ => None,
    };
    let Expr::Identifier(unit) = arg(unit)? else { return None };
    let mut unit = unit.value.to_ascii_lowercase();
    if let Some(first) = unit.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    Some(format!("{op}({}, toInterval{unit}({}))", column_name(&arg(x)?)?, column_name(&arg(n)?)?))
}

fn write(out: &mut String, expr: &Expr) -> Option<()> {
    match expr {
        Expr::Identifier(ident) => out.push_str(&ident.value),
        Expr::CompoundIdentifier(parts) => {
            out.push_str(&parts.iter().map(|p| p.value.as_str()).collect::<Vec<_>>().join("."));
        }
        Expr::Value(ValueWithSpan { value, .. }) => match value {
            Value::Number(n, _) => number(out, n),
            Value::SingleQuotedString(s) => string(out, s),
            Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Null => out.push_str("NULL"),
            _ => return None,
        },
        Expr::Nested(inner) => write(out, inner)?,
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match expr.as_ref() {
            Expr::Value(ValueWithSpan { value: Value::Number(n, _), .. }) => {
                out.push('-');
                number(out, n);
            }
            other => call(out, "negate", &[other])?,
        },
        Expr::UnaryOp { op: UnaryOperator::Not, expr } => call(out, "not", &[expr])?,
        Expr::UnaryOp { op: UnaryOperator::Plus, expr } => write(out, expr)?,
        Expr::BinaryOp { left, op, right } => {
            let name = operator(op)?;
            if matches!(op, BinaryOperator::And | BinaryOperator::Or | BinaryOperator::StringConcat) {
                let mut operands = Vec::new();
                chain(expr, op, &mut operands);
                call(out, name, &operands)?;
            } else {
                call(out, name, &[left, right])?;
            }
        }
        Expr::Floor {
            expr,
            field: datafusion::sql::sqlparser::ast::CeilFloorKind::DateTimeField(DateTimeField::NoDateTime),
        } => {
            call(out, "floor", &[expr])?;
        }
        Expr::Ceil {
            expr,
            field: datafusion::sql::sqlparser::ast::CeilFloorKind::DateTimeField(DateTimeField::NoDateTime),
        } => {
            call(out, "ceil", &[expr])?;
        }
        Expr::IsNull(e) => call(out, "isNull", &[e])?,
        Expr::IsNotDistinctFrom(a, b) => call(out, "isNotDistinctFrom", &[a, b])?,
        Expr::IsNotNull(e) => call(out, "isNotNull", &[e])?,
        Expr::Like { negated, expr, pattern, escape_char: None, any: false } => {
            call(out, if *negated { "notLike" } else { "like" }, &[expr, pattern])?;
        }
        Expr::ILike { negated, expr, pattern, escape_char: None, any: false } => {
            call(out, if *negated { "notILike" } else { "ilike" }, &[expr, pattern])?;
        }
        Expr::InList { expr, list, negated } => {
            out.push_str(if *negated { "notIn(" } else { "in(" });
            write(out, expr)?;
            out.push_str(", ");
            match list.as_slice() {
                [one] => write(out, one)?,
                many => {
                    out.push('(');
                    for (i, e) in many.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        write(out, e)?;
                    }
                    out.push(')');
                }
            }
            out.push(')');
        }
        // `BETWEEN` is `and(greaterOrEquals(x, low), lessOrEquals(x, high))`, `NOT BETWEEN` `or(less(…), greater(…))`.
        Expr::Between { expr, negated, low, high } => {
            let (join, above, below) =
                if *negated { ("or", "less", "greater") } else { ("and", "greaterOrEquals", "lessOrEquals") };
            out.push_str(&format!("{join}({above}("));
            write(out, expr)?;
            out.push_str(", ");
            write(out, low)?;
            out.push_str(&format!("), {below}("));
            write(out, expr)?;
            out.push_str(", ");
            write(out, high)?;
            out.push_str("))");
        }
        Expr::Cast { kind: CastKind::Cast | CastKind::DoubleColon, expr, data_type, format: None, .. } => {
            out.push_str("CAST(");
            write(out, expr)?;
            out.push_str(", ");
            string(out, &data_type.to_string());
            out.push(')');
            // Only where the type prints as ClickHouse spells it (`String`, not `STRING`).
            let printed = data_type.to_string();
            if printed.chars().any(|c| c.is_ascii_lowercase()) || printed.is_empty() {
                return Some(());
            }
            return None;
        }
        // `x -> x * 2` is `lambda(tuple(x), multiply(x, 2))`.
        Expr::Lambda(lambda) => {
            use datafusion::sql::sqlparser::ast::OneOrManyWithParens;
            let params: Vec<&Ident> = match &lambda.params {
                OneOrManyWithParens::One(p) => vec![&p.name],
                OneOrManyWithParens::Many(ps) => ps.iter().map(|p| &p.name).collect(),
            };
            out.push_str("lambda(tuple(");
            for (i, p) in params.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&p.value);
            }
            out.push_str("), ");
            write(out, &lambda.body)?;
            out.push(')');
        }
        Expr::Array(array) => {
            // A literal array of numbers where one is a float holds floats: ClickHouse names `[1, 2.5]` `[1., 2.5]`.
            let number = |e: &Expr| -> Option<bool> {
                let e = match e {
                    Expr::UnaryOp { op: UnaryOperator::Minus, expr } => expr.as_ref(),
                    other => other,
                };
                match e {
                    Expr::Value(ValueWithSpan { value: Value::Number(n, _), .. }) => Some(n.parse::<i128>().is_ok()),
                    _ => None,
                }
            };
            let float_literal = |e: &Expr| number(e) == Some(false);
            let integer_literal = |e: &Expr| number(e) == Some(true);
            let floats = array.elem.iter().any(float_literal)
                && array.elem.iter().all(|e| float_literal(e) || integer_literal(e));
            out.push('[');
            for (i, e) in array.elem.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, e)?;
                if floats && integer_literal(e) {
                    out.push('.');
                }
            }
            out.push(']');
        }
        Expr::Tuple(items) => {
            out.push('(');
            for (i, e) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, e)?;
            }
            out.push(')');
        }
        // `a[i][j]` is `arrayElement(arrayElement(a, i), j)`.
        Expr::CompoundFieldAccess { root, access_chain } => {
            let mut text = column_name(root)?;
            for access in access_chain {
                let datafusion::sql::sqlparser::ast::AccessExpr::Subscript(Subscript::Index { index }) = access else {
                    return None;
                };
                text = format!("arrayElement({text}, {})", column_name(index)?);
            }
            out.push_str(&text);
        }
        // `SUBSTRING(s FROM i FOR n)` and `substring(s, i)` are `substring(s, i[, n])`; lower-case `substr(s, i)`
        // keeps its name (other spellings of SUBSTR are parsed as plain calls, see `compat`).
        Expr::Substring { expr, substring_from, substring_for, shorthand, .. } => {
            let mut args: Vec<&Expr> = vec![expr];
            args.extend(substring_from.as_deref());
            args.extend(substring_for.as_deref());
            call(out, if *shorthand { "substr" } else { "substring" }, &args)?;
        }
        // `POSITION(n IN h)` is `position(h, n)`.
        Expr::Position { expr: needle, r#in } => call(out, "position", &[r#in, needle])?,
        // `trim(BOTH c FROM s)` is `trimBoth(s, c)`; `trim(s)` is `trimBoth(s)`.
        Expr::Trim { trim_where, trim_what, expr, trim_characters: None } => {
            use datafusion::sql::sqlparser::ast::TrimWhereField;
            let name = match trim_where {
                None | Some(TrimWhereField::Both) => "trimBoth",
                Some(TrimWhereField::Leading) => "trimLeft",
                Some(TrimWhereField::Trailing) => "trimRight",
            };
            let mut args: Vec<&Expr> = vec![expr];
            args.extend(trim_what.as_deref());
            call(out, name, &args)?;
        }
        Expr::Interval(interval) => {
            let unit = interval_unit(interval.leading_field.as_ref()?)?;
            if interval.leading_precision.is_some() || interval.last_field.is_some() {
                return None;
            }
            // `INTERVAL 1 DAY` and `INTERVAL '1' DAY` both read as toIntervalDay(1).
            let value = match interval.value.as_ref() {
                Expr::Value(ValueWithSpan { value: Value::SingleQuotedString(s), .. })
                    if s.trim().chars().all(|c| c.is_ascii_digit()) =>
                {
                    s.trim().to_string()
                }
                other => column_name(other)?,
            };
            out.push_str(&format!("toInterval{unit}({value})"));
        }
        // `CASE WHEN c THEN r … END` is `multiIf(c, r, …, else)`; `CASE x WHEN a THEN r … END` is
        // `caseWithExpression(x, a, r, …, else)`. A missing `ELSE` is `NULL`.
        Expr::Case { operand, conditions, else_result, .. } => {
            match operand {
                Some(operand) => {
                    out.push_str("caseWithExpression(");
                    write(out, operand)?;
                    out.push_str(", ");
                }
                None => out.push_str("multiIf("),
            }
            for when in conditions {
                write(out, &when.condition)?;
                out.push_str(", ");
                write(out, &when.result)?;
                out.push_str(", ");
            }
            match else_result {
                Some(e) => write(out, e)?,
                None => out.push_str("NULL"),
            }
            out.push(')');
        }
        Expr::Function(f) if f.over.is_some() => {
            let mut plain = f.clone();
            plain.over = None;
            write(out, &Expr::Function(plain))?;
            window(out, f.over.as_ref()?)?;
        }
        // `date_add(DAY, n, x)` reads as `plus(x, toIntervalDay(n))`, `date_sub` as `minus`.
        Expr::Function(f) if date_add_name(f).is_some() => out.push_str(&date_add_name(f)?),
        Expr::Function(f) => {
            if f.filter.is_some() || f.null_treatment.is_some() || !f.within_group.is_empty() {
                return None;
            }
            let [datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(name)] = f.name.0.as_slice() else {
                return None;
            };
            // ClickHouse names a function by its canonical name where it has one for the alias written.
            let mut name = match name.value.as_str() {
                "date_diff" | "DATE_DIFF" | "timestampDiff" | "TIMESTAMP_DIFF" => "dateDiff".to_string(),
                "ltrim" => "trimLeft".to_string(),
                "rtrim" => "trimRight".to_string(),
                other => other.to_string(),
            };
            let mut args: Vec<&Expr> = Vec::new();
            match &f.args {
                FunctionArguments::None => {}
                FunctionArguments::Subquery(_) => return None,
                FunctionArguments::List(list) => {
                    if !list.clauses.is_empty() {
                        return None;
                    }
                    if matches!(
                        list.duplicate_treatment,
                        Some(datafusion::sql::sqlparser::ast::DuplicateTreatment::Distinct)
                    ) {
                        name.push_str("Distinct");
                    }
                    for arg in &list.args {
                        match arg {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
                            // `count(*)` is `count()`.
                            FunctionArg::Unnamed(FunctionArgExpr::Wildcard) if list.args.len() == 1 => {}
                            _ => return None,
                        }
                    }
                }
            }
            // `tuple(a, b)` is named as the tuple it makes: `(a, b)`; `array(a, b)` as the array: `[a, b]`.
            if name == "tuple" && !args.is_empty() && matches!(f.parameters, FunctionArguments::None) {
                name.clear();
            }
            if name == "array" && matches!(f.parameters, FunctionArguments::None) {
                out.push('[');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(out, a)?;
                }
                out.push(']');
                return Some(());
            }
            out.push_str(&name);
            if let FunctionArguments::List(params) = &f.parameters {
                out.push('(');
                for (i, p) in params.args.iter().enumerate() {
                    let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = p else { return None };
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(out, e)?;
                }
                out.push(')');
            }
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, a)?;
            }
            out.push(')');
        }
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(sql: &str) -> Option<String> {
        let query = crate::engine::compat::parse(&format!("SELECT {sql}")).unwrap();
        let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = query.body.as_ref() else { panic!() };
        let SelectItem::UnnamedExpr(e) = &select.projection[0] else { panic!() };
        column_name(e)
    }

    #[test]
    fn names_columns_as_clickhouse_does() {
        for (sql, expected) in [
            ("count()", "count()"),
            ("count(*)", "count()"),
            ("count(DISTINCT lc)", "countDistinct(lc)"),
            ("sum(amount)", "sum(amount)"),
            ("i32 + 1", "plus(i32, 1)"),
            ("a = 1 AND b = 2 AND c", "and(equals(a, 1), equals(b, 2), c)"),
            ("NOT b", "not(b)"),
            ("1e15", "1000000000000000."),
            ("1.50", "1.5"),
            ("1e-7", "1e-7"),
            ("-0.0", "-0."),
            ("toString(1e21)", "toString(1e21)"),
            ("-5", "-5"),
            ("-x", "negate(x)"),
            ("s LIKE '%a%'", "like(s, '%a%')"),
            ("s NOT ILIKE 'a'", "notILike(s, 'a')"),
            ("x IN (1, 2)", "in(x, (1, 2))"),
            ("x NOT IN (1)", "notIn(x, 1)"),
            ("'it''s'", "'it\\'s'"),
            ("quantile(0.5)(x)", "quantile(0.5)(x)"),
            ("arr[1]", "arrayElement(arr, 1)"),
            ("dt + INTERVAL 1 DAY", "plus(dt, toIntervalDay(1))"),
            ("CASE WHEN x > 0 THEN 'p' ELSE 'n' END", "multiIf(greater(x, 0), 'p', 'n')"),
            ("toDate(dt)", "toDate(dt)"),
            ("[1, 2]", "[1, 2]"),
            ("x IS NULL", "isNull(x)"),
        ] {
            assert_eq!(name(sql).as_deref(), Some(expected), "{sql}");
        }
    }
}
