//! SQL for the ClickHouse engine: the checked tree made ready to run (tables bound to this server's database, the
//! scope's filters applied), printed so ClickHouse reads exactly that tree, and the DDL of a datasource.

use crate::engine::compat::{self, Flavor, call, cte_names, quote_ident};
use crate::engine::{EngineError, ScopedTable, TableScope};
use crate::types::ChType;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, GroupByWithModifier,
    Ident, ObjectName, ObjectNamePart, Query, SetExpr, TableAlias, TableFactor, Value, ValueWithSpan, VisitMut,
    VisitorMut,
};
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use tinybird_core::DatasourceDef;

/// Functions that reach tables, dictionaries or the server by a name given as a string or identifier, around the
/// scope the query was checked against. Matched case-insensitively; `dictGet*` by prefix.
const REFUSED_FUNCTIONS: &[&str] = &[
    "joinget",
    "joingetornull",
    "dicthas",
    "dictisin",
    "hascolumnintable",
    "gettypeserializationstreams",
    "getmergetreesettings",
    "getserverport",
    "getsetting",
    "getsettingordefault",
    "currentdatabase",
    "currentuser",
    "currentschemas",
    "globalvariable",
    "getmacro",
    "fqdn",
    "hostname",
    "uptime",
    "filesystemavailable",
    "filesystemcapacity",
    "filesystemunreserved",
    "file",
];

use crate::engine::GENERATORS;

/// `IN`-family functions: an identifier as their set argument names a table in ClickHouse.
const IN_FUNCTIONS: &[&str] = &[
    "in",
    "notin",
    "globalin",
    "globalnotin",
    "nullin",
    "notnullin",
    "globalnullin",
    "globalnotnullin",
    "inignoreset",
    "notinignoreset",
];

/// What a scoped query resolves each name to.
pub(super) struct Binding<'a> {
    /// This server's database.
    pub database: &'a str,
    /// The tables of this server, for [`TableScope::All`].
    pub tables: &'a HashSet<String>,
}

/// The SQL text ClickHouse runs for a checked tree: every table bound to this server's database (a filtered one to
/// a subquery applying its filters), the functions that reach beyond the scope refused, string literals escaped the
/// way ClickHouse reads them. The text is parsed again and must give the same tree, so the printer never changes
/// what the tree says.
pub(super) fn prepare(query: Query, scope: &TableScope, binding: &Binding<'_>) -> Result<String, EngineError> {
    prepare_shaped(query, scope, binding).map(|(text, _)| text)
}

/// [`prepare`], with the [`shape`] of the bound tree.
pub(super) fn prepare_shaped(
    mut query: Query,
    scope: &TableScope,
    binding: &Binding<'_>,
) -> Result<(String, String), EngineError> {
    let ctes = cte_names(&query);
    let names: HashMap<&str, &ScopedTable> = match scope {
        TableScope::All => HashMap::new(),
        TableScope::Only(list) => list.iter().map(|t| (t.name.as_str(), t)).collect(),
    };
    compat::refuse_shadowed_tables(&query)?;
    let mut bind = Bind {
        filtered: HashSet::new(),
        array_joins: HashSet::new(),
        binding: Some(binding),
        scope: Some(scope),
        names: Some(&names),
        ctes: Some(&ctes),
        error: None,
    };
    let _ = VisitMut::visit(&mut query, &mut bind);
    if let Some(e) = bind.error {
        return Err(e);
    }
    let shape = shape(&query);
    Ok((print(query)?, shape))
}

/// What a query's result types depend on, as text: the query with the literals of its `WHERE`, `PREWHERE`, `HAVING`,
/// `LIMIT` and `OFFSET` (which choose rows, never a column's type) replaced by `?`, and the names drawn at random per
/// request (`__tb_<32 hex digits>`) by one fixed name. Queries with one shape, different parameters, describe alike.
pub(super) fn shape(query: &Query) -> String {
    use datafusion::sql::sqlparser::ast::{LimitClause, Select};
    struct Blank;
    impl VisitorMut for Blank {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let Some(LimitClause::LimitOffset { limit, offset, .. }) = &mut query.limit_clause {
                if let Some(limit) = limit {
                    *limit = Expr::value(Value::Placeholder("?".into()));
                }
                if let Some(offset) = offset {
                    offset.value = Expr::value(Value::Placeholder("?".into()));
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
            struct Literals;
            impl VisitorMut for Literals {
                type Break = ();
                fn pre_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
                    value.value = Value::Placeholder("?".into());
                    ControlFlow::Continue(())
                }
            }
            for clause in [&mut select.selection, &mut select.prewhere, &mut select.having].into_iter().flatten() {
                let _ = VisitMut::visit(clause, &mut Literals);
            }
            ControlFlow::Continue(())
        }
    }
    let mut blank = query.clone();
    let _ = VisitMut::visit(&mut blank, &mut Blank);
    let text = blank.to_string();
    // `__tb_` and 32 hexadecimal digits: a per-request name.
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("__tb_") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 5..];
        let hex = tail.bytes().take(32).take_while(u8::is_ascii_hexdigit).count();
        if hex == 32 {
            out.push_str("__tb_request");
            rest = &tail[32..];
        } else {
            out.push_str("__tb_");
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// The query with one more column, `count() OVER () AS counter`: the number of rows before its `LIMIT` (ClickHouse's
/// `rows_before_limit_at_least`), counted where the query runs rather than by running it again. Window functions
/// run after `WHERE`, `GROUP BY` and `HAVING` and before `ORDER BY` and `LIMIT`, so over the whole window they
/// count exactly what the `LIMIT` cuts. None where something runs between them and the `LIMIT` (`DISTINCT`,
/// `QUALIFY`, `LIMIT BY`, `WITH FILL`), for a set operation, or without a `LIMIT`.
pub(super) fn count_before_limit(query: &Query, counter: &str) -> Option<Query> {
    use datafusion::sql::sqlparser::ast::{LimitClause, OrderByKind, SelectItem, WindowSpec, WindowType};
    match &query.limit_clause {
        Some(LimitClause::LimitOffset { limit: Some(_), limit_by, .. }) if limit_by.is_empty() => {}
        Some(LimitClause::OffsetCommaLimit { .. }) => {}
        _ => return None,
    }
    if let Some(order_by) = &query.order_by
        && let OrderByKind::Expressions(items) = &order_by.kind
        && items.iter().any(|i| i.with_fill.is_some())
    {
        return None;
    }
    // `ORDER BY ALL` and `GROUP BY ALL` would take the new column in.
    if query.order_by.as_ref().is_some_and(|o| o.interpolate.is_some() || matches!(o.kind, OrderByKind::All(_))) {
        return None;
    }
    let mut query = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else { return None };
    if select.distinct.is_some() || select.qualify.is_some() || matches!(select.group_by, GroupByExpr::All(_)) {
        return None;
    }
    let mut count = call("count", Vec::new());
    if let Expr::Function(f) = &mut count {
        f.over = Some(WindowType::WindowSpec(WindowSpec {
            window_name: None,
            partition_by: Vec::new(),
            order_by: Vec::new(),
            window_frame: None,
        }));
    }
    select.projection.push(SelectItem::ExprWithAlias { expr: count, alias: quoted(counter) });
    Some(query)
}

/// The outermost `GROUP BY … WITH TOTALS` of a query, split into the query without it and a query whose one row is
/// the totals row. ClickHouse hands its totals row apart from the rows (the Arrow stream the engine reads refuses
/// it), so the engine asks for it as the empty grouping set: `GROUP BY GROUPING SETS ((keys), ())` keeping only the
/// row where every key is aggregated over, without `ORDER BY`/`LIMIT` (totals ignore them). That row is the totals
/// row: aggregates over every row, keys and what is computed from them at their default values (measured against
/// ClickHouse's own totals with chDB, Nullable, LowCardinality, arrays, dates and expressions of keys included).
/// `HAVING` is refused: ClickHouse's totals then cover only the groups that pass it.
pub(super) fn split_totals(mut query: Query) -> Result<(Query, Option<Query>), EngineError> {
    let refuse = |what: &str| Err(EngineError::Unsupported(format!("WITH TOTALS {what}")));
    let SetExpr::Select(select) = query.body.as_mut() else { return Ok((query, None)) };
    if let GroupByExpr::All(modifiers) = &select.group_by
        && modifiers.contains(&GroupByWithModifier::Totals)
    {
        return refuse("with GROUP BY ALL (name the keys)");
    }
    let GroupByExpr::Expressions(keys, modifiers) = &mut select.group_by else { return Ok((query, None)) };
    if !modifiers.contains(&GroupByWithModifier::Totals) {
        return Ok((query, None));
    }
    if modifiers.len() > 1 {
        return refuse("together with ROLLUP or CUBE");
    }
    if keys.is_empty() || keys.len() > 63 {
        return refuse("without GROUP BY keys, or with more than 63 of them");
    }
    if keys.iter().any(|k| matches!(k, Expr::Value(_))) {
        return refuse("with a GROUP BY key given by position");
    }
    if select.having.is_some() {
        return refuse("together with HAVING (the totals then cover only the groups that pass it)");
    }
    modifiers.clear();
    let rows = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else { return Ok((rows, None)) };
    let GroupByExpr::Expressions(keys, _) = &mut select.group_by else { return Ok((rows, None)) };
    let keys = std::mem::take(keys);
    let all = Expr::value(Value::Number(((1u64 << keys.len()) - 1).to_string(), false));
    select.having = Some(Expr::BinaryOp {
        left: Box::new(call("grouping", keys.clone())),
        op: BinaryOperator::Eq,
        right: Box::new(all),
    });
    select.group_by = GroupByExpr::Expressions(vec![Expr::GroupingSets(vec![keys, Vec::new()])], Vec::new());
    query.order_by = None;
    query.limit_clause = None;
    query.fetch = None;
    Ok((rows, Some(query)))
}

/// Prints a tree for ClickHouse, and checks that the text reads back as the same tree.
pub(super) fn print(query: Query) -> Result<String, EngineError> {
    let query = normalize(query)?;
    let expected = query.clone();
    let mut escaped = query;
    let mut escape = EscapeStrings { error: None };
    let _ = VisitMut::visit(&mut escaped, &mut escape);
    if let Some(e) = escape.error {
        return Err(e);
    }
    let _ = VisitMut::visit(&mut escaped, &mut ClickHouseForms);
    let text = escaped.to_string();
    // Every mark of the reader's is printed back by now, but for a collation in a window's `ORDER BY`.
    if text.contains(compat::COLLATE_MARK) {
        return Err(EngineError::Unsupported("COLLATE in a window's ORDER BY".into()));
    }
    check_lexing(&text)?;
    let reread = compat::parse_for(&text, Flavor::ClickHouse)
        .and_then(normalize)
        .map_err(|e| EngineError::Unsupported(format!("this query's form (it does not print back as itself: {e})")))?;
    if reread != expected {
        return Err(EngineError::Unsupported("this query's form (it does not print back as itself)".into()));
    }
    Ok(text)
}

/// Writes back as ClickHouse reads them the forms `compat`'s reader marked (`ARRAY JOIN` lists, `ASOF` joins, `COLLATE`
/// after the direction), each as a name the printer prints as it is; the expressions in them were checked, escaped and
/// normalized like every other.
struct ClickHouseForms;

impl VisitorMut for ClickHouseForms {
    type Break = ();

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let Some(items) = compat::array_join_items(factor) else { return ControlFlow::Continue(()) };
        let text = items
            .iter()
            .map(|(e, a)| if a.value.is_empty() { e.to_string() } else { format!("{e} AS {a}") })
            .collect::<Vec<_>>()
            .join(", ");
        if let TableFactor::Table { name, args, alias, .. } = factor {
            *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(text))]);
            *args = None;
            *alias = None;
        }
        ControlFlow::Continue(())
    }

    /// `ORDER BY s COLLATE <mark + locale> DESC` (see `compat::collations`) → `ORDER BY s DESC COLLATE 'locale'`.
    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::OrderByKind;
        let Some(OrderByKind::Expressions(items)) = query.order_by.as_mut().map(|o| &mut o.kind) else {
            return ControlFlow::Continue(());
        };
        for item in items {
            let Expr::Collate { expr, collation } = &item.expr else { continue };
            let Some(locale) =
                single_name(collation).and_then(|n| n.strip_prefix(compat::COLLATE_MARK).map(String::from))
            else {
                continue;
            };
            let mut text = expr.to_string();
            match item.options.asc {
                Some(true) => text.push_str(" ASC"),
                Some(false) => text.push_str(" DESC"),
                None => {}
            }
            match item.options.nulls_first {
                Some(true) => text.push_str(" NULLS FIRST"),
                Some(false) => text.push_str(" NULLS LAST"),
                None => {}
            }
            text.push_str(&format!(" COLLATE '{}'", locale.replace('\\', "\\\\").replace('\'', "\\'")));
            item.expr = Expr::Identifier(Ident::new(text));
            item.options.asc = None;
            item.options.nulls_first = None;
        }
        ControlFlow::Continue(())
    }

    /// `ASOF JOIN t MATCH_CONDITION (mark) ON …` (see `compat::asof_joins`) → `[LEFT] ASOF JOIN t ON …`: the
    /// relation and its joins printed as one name, the ASOF ones as ClickHouse writes them.
    fn post_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::{JoinConstraint, JoinOperator};
        fn asof(j: &datafusion::sql::sqlparser::ast::Join) -> Option<(bool, &JoinConstraint)> {
            match &j.join_operator {
                JoinOperator::AsOf { match_condition: Expr::Identifier(mark), constraint } => {
                    [compat::ASOF_MARK, compat::ASOF_LEFT_MARK]
                        .contains(&mark.value.as_str())
                        .then_some((mark.value == compat::ASOF_LEFT_MARK, constraint))
                }
                _ => None,
            }
        }
        for from in &mut select.from {
            if !from.joins.iter().any(|j| asof(j).is_some()) {
                continue;
            }
            let mut text = from.relation.to_string();
            for join in &from.joins {
                text.push(' ');
                let Some((left, constraint)) = asof(join) else {
                    text.push_str(&join.to_string());
                    continue;
                };
                let constraint = match constraint {
                    JoinConstraint::On(e) => format!(" ON {e}"),
                    JoinConstraint::Using(columns) => {
                        format!(" USING ({})", columns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
                    }
                    _ => String::new(),
                };
                let global = if join.global { "GLOBAL " } else { "" };
                let left = if left { "LEFT " } else { "" };
                text.push_str(&format!("{global}{left}ASOF JOIN {}{constraint}", join.relation));
            }
            from.relation = TableFactor::Table {
                name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(text))]),
                alias: None,
                args: None,
                with_hints: vec![],
                version: None,
                with_ordinality: false,
                partitions: vec![],
                json_path: None,
                sample: None,
                index_hints: vec![],
            };
            from.joins.clear();
        }
        ControlFlow::Continue(())
    }
}

/// The parser reads a few functions into special forms that print differently from how they were written
/// (`floor(x)` prints `FLOOR(x)`, `CAST(x AS String)` prints `CAST(x AS STRING)`), and ClickHouse names a column by
/// the text it reads. Those forms become plain calls, and types are printed as ClickHouse spells them.
fn normalize(mut query: Query) -> Result<Query, EngineError> {
    let mut n = Normalize { error: None };
    let _ = VisitMut::visit(&mut query, &mut n);
    match n.error {
        Some(e) => Err(e),
        None => Ok(query),
    }
}

struct Normalize {
    error: Option<EngineError>,
}

/// A type as ClickHouse spells it, or None for a type this server does not print.
fn ch_type(ty: &DataType) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{ArrayElemTypeDef, ExactNumberInfo};
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    Some(match ty {
        DataType::Int8(None) => "Int8".into(),
        DataType::Int16 => "Int16".into(),
        DataType::Int32 => "Int32".into(),
        DataType::Int64 => "Int64".into(),
        DataType::Int128 => "Int128".into(),
        DataType::Int256 => "Int256".into(),
        DataType::UInt8 => "UInt8".into(),
        DataType::UInt16 => "UInt16".into(),
        DataType::UInt32 => "UInt32".into(),
        DataType::UInt64 => "UInt64".into(),
        DataType::UInt128 => "UInt128".into(),
        DataType::UInt256 => "UInt256".into(),
        DataType::Float32 => "Float32".into(),
        DataType::Float64 => "Float64".into(),
        DataType::String(None) => "String".into(),
        DataType::FixedString(n) => format!("FixedString({n})"),
        DataType::Bool | DataType::Boolean => "Bool".into(),
        DataType::Date => "Date".into(),
        DataType::Date32 => "Date32".into(),
        DataType::Datetime(None) => "DateTime".into(),
        DataType::Datetime64(p, None) => format!("DateTime64({p})"),
        DataType::Datetime64(p, Some(tz)) => format!("DateTime64({p}, {})", quote(tz)),
        DataType::Decimal(ExactNumberInfo::None) => "Decimal".into(),
        DataType::Decimal(ExactNumberInfo::Precision(p)) => format!("Decimal({p})"),
        DataType::Decimal(ExactNumberInfo::PrecisionAndScale(p, s)) => format!("Decimal({p}, {s})"),
        DataType::Uuid => "UUID".into(),
        DataType::JSON => "JSON".into(),
        DataType::Nullable(t) => format!("Nullable({})", ch_type(t)?),
        DataType::LowCardinality(t) => format!("LowCardinality({})", ch_type(t)?),
        DataType::Array(ArrayElemTypeDef::Parenthesis(t)) => format!("Array({})", ch_type(t)?),
        DataType::Map(k, v) => format!("Map({}, {})", ch_type(k)?, ch_type(v)?),
        DataType::Tuple(fields) => {
            let mut parts = Vec::with_capacity(fields.len());
            for f in fields {
                let ty = ch_type(&f.field_type)?;
                parts.push(match &f.field_name {
                    Some(name) if name.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                        format!("{} {ty}", name.value)
                    }
                    Some(_) => return None,
                    None => ty,
                });
            }
            format!("Tuple({})", parts.join(", "))
        }
        // SQL's names, which ClickHouse reads case-insensitively, printed as written.
        DataType::Int(None)
        | DataType::Integer(None)
        | DataType::BigInt(None)
        | DataType::SmallInt(None)
        | DataType::TinyInt(None)
        | DataType::Text
        | DataType::Varchar(None)
        | DataType::Real
        | DataType::DoublePrecision => ty.to_string(),
        DataType::Custom(name, modifiers) => {
            let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else { return None };
            if ident.quote_style.is_some() || !ident.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            match (ident.value.as_str(), modifiers.as_slice()) {
                (_, []) => ident.value.clone(),
                ("DateTime", [tz]) => format!("DateTime({})", quote(tz)),
                _ => return None,
            }
        }
        _ => return None,
    })
}

impl VisitorMut for Normalize {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::{CeilFloorKind, DateTimeField, UnaryOperator};
        // `- -x` prints as `--x`, a comment: the inner negation goes in parentheses (ClickHouse names both
        // `negate(negate(x))`).
        if let Expr::UnaryOp { op: UnaryOperator::Minus, expr: inner } = expr
            && matches!(inner.as_ref(), Expr::UnaryOp { op: UnaryOperator::Minus, .. })
        {
            let negated = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
            **inner = Expr::Nested(Box::new(negated));
        }
        let replaced = match expr {
            Expr::Floor { .. } | Expr::Ceil { .. } => {
                let name = if matches!(expr, Expr::Floor { .. }) { "floor" } else { "ceil" };
                let (Expr::Floor { expr: inner, field } | Expr::Ceil { expr: inner, field }) = expr else {
                    return ControlFlow::Continue(());
                };
                match field {
                    CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) => {
                        Some(call(name, vec![(**inner).clone()]))
                    }
                    CeilFloorKind::Scale(scale) => {
                        Some(call(name, vec![(**inner).clone(), Expr::Value(scale.clone())]))
                    }
                    CeilFloorKind::DateTimeField(_) => {
                        self.error = Some(EngineError::Unsupported(format!("`{}(… TO …)`", name.to_uppercase())));
                        return ControlFlow::Break(());
                    }
                }
            }
            Expr::Substring { expr: inner, substring_from, substring_for, special: true, shorthand } => {
                let mut args = vec![(**inner).clone()];
                args.extend(substring_from.iter().map(|e| (**e).clone()));
                args.extend(substring_for.iter().map(|e| (**e).clone()));
                Some(call(if *shorthand { "substr" } else { "substring" }, args))
            }
            Expr::Cast { data_type, .. } => {
                match ch_type(data_type) {
                    Some(text) if !matches!(data_type, DataType::Custom(_, m) if m.is_empty()) => {
                        *data_type =
                            DataType::Custom(ObjectName(vec![ObjectNamePart::Identifier(Ident::new(text))]), vec![]);
                    }
                    Some(_) => {}
                    None => {
                        self.error = Some(EngineError::Unsupported(format!("the type `{data_type}` in a CAST")));
                        return ControlFlow::Break(());
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(new) = replaced {
            *expr = new;
        }
        ControlFlow::Continue(())
    }
}

/// Prints one expression (a filter, a delete condition) for ClickHouse, with the same checks as [`print`].
pub(super) fn print_condition(expr: &Expr) -> Result<String, EngineError> {
    let mut escaped = expr.clone();
    let mut escape = EscapeStrings { error: None };
    let _ = VisitMut::visit(&mut escaped, &mut escape);
    if let Some(e) = escape.error {
        return Err(e);
    }
    let mut refuse = Bind::refusals();
    let _ = VisitMut::visit(&mut escaped, &mut refuse);
    if let Some(e) = refuse.error {
        return Err(e);
    }
    // No mark of the reader's here: `parse_condition` makes none, and refuses a name that holds one.
    let text = escaped.to_string();
    check_lexing(&text)?;
    let reread = compat::parse_condition(&text).map_err(|e| {
        EngineError::Unsupported(format!("this condition's form (it does not print back as itself: {e})"))
    })?;
    if &reread != expr {
        return Err(EngineError::Unsupported("this condition's form (it does not print back as itself)".into()));
    }
    Ok(text)
}

/// ClickHouse reads backslash escapes inside quoted identifiers, which the parser here does not: an identifier
/// holding a backslash could read differently there, so none is let through. Strings were escaped already.
fn check_lexing(text: &str) -> Result<(), EngineError> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\\') => {
                        chars.next();
                    }
                    Some('\'') | None => break,
                    Some(_) => {}
                }
            },
            '`' | '"' => loop {
                match chars.next() {
                    Some('\\') => {
                        return Err(EngineError::Unsupported("a backslash in a quoted identifier".into()));
                    }
                    Some(q) if q == c => break,
                    None => break,
                    Some(_) => {}
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// String literals as ClickHouse reads them: a backslash is an escape there, so each one is doubled.
struct EscapeStrings {
    error: Option<EngineError>,
}

impl VisitorMut for EscapeStrings {
    type Break = ();

    fn post_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
        let text = match &value.value {
            Value::SingleQuotedString(s) => s,
            Value::DollarQuotedString(d) => &d.value,
            Value::Number(..) | Value::Boolean(_) | Value::Null | Value::Placeholder(_) => {
                return ControlFlow::Continue(());
            }
            other => {
                self.error = Some(EngineError::Unsupported(format!("the literal form `{other}`")));
                return ControlFlow::Break(());
            }
        };
        // ClickHouse gets the text as a C string: a NUL byte is written as its escape.
        value.value = Value::SingleQuotedString(text.replace('\\', "\\\\").replace('\0', "\\0"));
        ControlFlow::Continue(())
    }
}

struct Bind<'b, 'a> {
    /// Aliases of the tables replaced by a subquery applying their filters.
    filtered: HashSet<String>,
    /// The relations of `ARRAY JOIN`s: columns of the row, never bound to tables.
    array_joins: HashSet<*const TableFactor>,
    binding: Option<&'b Binding<'a>>,
    scope: Option<&'b TableScope>,
    names: Option<&'b HashMap<&'b str, &'b ScopedTable>>,
    ctes: Option<&'b HashSet<String>>,
    error: Option<EngineError>,
}

impl<'b, 'a> Bind<'b, 'a> {
    #[allow(clippy::new_ret_no_self)]
    fn refusals() -> Bind<'static, 'static> {
        Bind {
            filtered: HashSet::new(),
            array_joins: HashSet::new(),
            binding: None,
            scope: None,
            names: None,
            ctes: None,
            error: None,
        }
    }

    fn fail(&mut self, e: EngineError) -> ControlFlow<()> {
        self.error = Some(e);
        ControlFlow::Break(())
    }

    /// The table a single name reads in this scope, with its filters.
    fn lookup(&self, name: &str) -> Option<(String, Vec<Expr>)> {
        let (binding, scope) = (self.binding?, self.scope?);
        if self.ctes.is_some_and(|c| c.contains(name)) {
            return None;
        }
        match scope {
            TableScope::All => binding.tables.contains(name).then(|| (name.to_string(), Vec::new())),
            TableScope::Only(_) => self.names?.get(name).map(|t| (t.table.clone(), t.filters.clone())),
        }
    }
}

fn quoted(name: &str) -> Ident {
    Ident::with_quote('`', name)
}

fn single_name(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Some(ident.value.clone()),
        _ => None,
    }
}

impl VisitorMut for Bind<'_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if self.binding.is_none() {
            // A condition (delete) runs against one table: a subquery there could read any other.
            return self.fail(EngineError::Unsupported("a subquery in a condition".into()));
        }
        if let SetExpr::Select(select) = query.body.as_ref()
            && let GroupByExpr::Expressions(_, modifiers) | GroupByExpr::All(modifiers) = &select.group_by
            && modifiers.contains(&GroupByWithModifier::Totals)
        {
            // [`split_totals`] takes the outermost query's `WITH TOTALS` off before this runs; in a subquery,
            // ClickHouse passes its totals up to the outer query, which the server does not follow.
            return self.fail(EngineError::Unsupported("WITH TOTALS in a subquery".into()));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        // A CTE's name is the one lone name let through: ClickHouse reads it as a column of that name, else the CTE,
        // never a table then (the CTE hides it).
        let is_cte = |e: &Expr| matches!(e, Expr::Identifier(i) if self.ctes.is_some_and(|c| c.contains(&i.value)));
        if let Expr::InList { list, .. } = expr
            && let [name @ (Expr::Identifier(_) | Expr::CompoundIdentifier(_))] = list.as_slice()
            && !is_cte(name)
        {
            // `x IN (name)`: ClickHouse reads a lone name there as a table.
            return self.fail(EngineError::Unsupported("a lone name as the set of IN (write it as a subquery)".into()));
        }
        let Expr::Function(function) = expr else { return ControlFlow::Continue(()) };
        let name =
            function.name.0.last().map(|p| p.to_string().trim_matches('`').to_ascii_lowercase()).unwrap_or_default();
        if REFUSED_FUNCTIONS.contains(&name.as_str()) || name.starts_with("dictget") {
            return self.fail(EngineError::Unsupported(format!("function `{}`", function.name)));
        }
        if IN_FUNCTIONS.contains(&name.as_str())
            && let FunctionArguments::List(list) = &function.args
            && list.args.iter().skip(1).any(|a| {
                matches!(
                    a,
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(_) | Expr::CompoundIdentifier(_)))
                )
            })
        {
            return self.fail(EngineError::Unsupported(format!("a table name as the set of `{}`", function.name)));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
        self.array_joins.extend(compat::array_join_relations(select));
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if self.array_joins.contains(&(factor as *const TableFactor)) {
            // `ARRAY JOIN tags AS tag` unfolds a column of the row (ClickHouse engine only): no table is read.
            if let TableFactor::Table {
                args: None,
                with_hints,
                version: None,
                partitions,
                sample: None,
                json_path: None,
                ..
            } = factor
                && with_hints.is_empty()
                && partitions.is_empty()
            {
                return ControlFlow::Continue(());
            }
            // `ARRAY JOIN e1 AS a1, e2 AS a2`: expressions of the row (checked as every expression is), no table.
            if compat::array_join_items(factor).is_some() {
                return ControlFlow::Continue(());
            }
            return self.fail(EngineError::Unsupported("ARRAY JOIN of anything but a column name".into()));
        }
        if let TableFactor::Table { name, args: Some(_), .. } = factor {
            // Only functions that generate rows: every other table function reads files, URLs or other servers.
            let generator = single_name(name).is_some_and(|n| GENERATORS.iter().any(|g| g.eq_ignore_ascii_case(&n)));
            if !generator {
                return self.fail(EngineError::Unsupported(format!("table function `{name}`")));
            }
        }
        if self.array_joins.contains(&(factor as *const TableFactor)) {
            return ControlFlow::Continue(());
        }
        let TableFactor::Table { name, alias, args: None, .. } = factor else { return ControlFlow::Continue(()) };
        // `database.table` reaches past this workspace's database (other workspaces', `system`): never, whatever the
        // scope (materialized views run with every table in scope, but only this workspace's).
        let Some(single) = single_name(name) else {
            return self.fail(EngineError::Unsupported(format!(
                "the qualified table name `{name}`: only this workspace's datasources and pipes can be read"
            )));
        };
        let Some(binding) = self.binding else { return ControlFlow::Continue(()) };
        let Some((table, filters)) = self.lookup(&single) else { return ControlFlow::Continue(()) };
        // Keep `name.column` references working.
        let alias =
            alias.take().unwrap_or(TableAlias { explicit: true, name: quoted(&single), columns: vec![], at: None });
        let real = ObjectName(vec![
            ObjectNamePart::Identifier(quoted(binding.database)),
            ObjectNamePart::Identifier(quoted(&table)),
        ]);
        if filters.is_empty() {
            *name = real;
            if let TableFactor::Table { alias: a, .. } = factor {
                *a = Some(alias);
            }
            return ControlFlow::Continue(());
        }
        let condition = filters.into_iter().map(|f| Expr::Nested(Box::new(f))).reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        });
        let mut filtered = match compat::parse_for("SELECT * FROM t", Flavor::ClickHouse) {
            Ok(q) => q,
            Err(e) => return self.fail(e),
        };
        if let SetExpr::Select(select) = filtered.body.as_mut() {
            if let Some(TableFactor::Table { name, .. }) = select.from.first_mut().map(|f| &mut f.relation) {
                *name = real;
            }
            select.selection = condition;
        }
        self.filtered.insert(alias.name.value.clone());
        *factor =
            TableFactor::Derived { lateral: false, subquery: Box::new(filtered), alias: Some(alias), sample: None };
        ControlFlow::Continue(())
    }

    fn post_visit_select(&mut self, select: &mut datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
        // ClickHouse takes PREWHERE only on a table, and a filtered one is now a subquery: the condition joins the
        // WHERE, which gives the same rows (PREWHERE only changes the order in which columns are read).
        let reads_filtered = select.from.iter().any(|t| {
            std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)).any(
                |f| matches!(f, TableFactor::Derived { alias: Some(a), .. } if self.filtered.contains(&a.name.value)),
            )
        });
        if reads_filtered && let Some(prewhere) = select.prewhere.take() {
            select.selection = Some(match select.selection.take() {
                Some(w) => Expr::BinaryOp {
                    left: Box::new(Expr::Nested(Box::new(prewhere))),
                    op: BinaryOperator::And,
                    right: Box::new(Expr::Nested(Box::new(w))),
                },
                None => prewhere,
            });
        }
        ControlFlow::Continue(())
    }
}

/// Checks a piece of datafile text that goes into `CREATE TABLE` as it is (a type, a default, a key, a TTL): one
/// expression of this table's own columns. No comment, `;`, subquery, qualified name (another database's table) or
/// function that reaches tables or the server by name, so a datafile cannot reach past its workspace's database.
fn check_fragment(datasource: &str, what: &str, text: &str) -> Result<(), EngineError> {
    use datafusion::sql::sqlparser::dialect::ClickHouseDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
    let refuse = |why: &str| {
        Err(EngineError::Schema(format!(
            "datasource '{datasource}': {what} `{}`: {why}",
            text.chars().take(80).collect::<String>()
        )))
    };
    let Ok(tokens) = Tokenizer::new(&ClickHouseDialect {}, text).tokenize() else {
        return refuse("it does not parse");
    };
    let significant: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(Whitespace::Space | Whitespace::Newline | Whitespace::Tab)))
        .collect();
    for (i, token) in significant.iter().enumerate() {
        match token {
            Token::Whitespace(_) => return refuse("comments are not allowed here"),
            Token::SemiColon => return refuse("`;` is not allowed here"),
            Token::Period if matches!(significant.get(i + 1), Some(Token::Word(_))) && i > 0 => {
                return refuse("qualified names (another database's tables) are not allowed");
            }
            Token::Word(w) if w.keyword == Keyword::SELECT => {
                return refuse("subqueries are not allowed here");
            }
            Token::Word(w) if matches!(significant.get(i + 1), Some(Token::LParen)) => {
                let name = w.value.to_ascii_lowercase();
                if REFUSED_FUNCTIONS.contains(&name.as_str()) || name.starts_with("dictget") || name == "disk" {
                    return refuse(&format!("the function `{}` is not allowed here", w.value));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks what of a datasource's datafile goes into `CREATE TABLE` as text: its engine is one of
/// [`crate::engine::ENGINES`], and every type, default, codec, index, key, TTL and setting passes [`check_fragment`].
/// Run at deploy on both engines, so a datafile is refused the same way whichever engine serves it.
pub(crate) fn check_ddl(def: &DatasourceDef) -> Result<(), EngineError> {
    let ds = def.name.as_str();
    for c in &def.columns {
        check_fragment(ds, &format!("the type of column '{}'", c.name), &c.ty)?;
        if let Some(default) = &c.default {
            check_fragment(ds, &format!("the default of column '{}'", c.name), default)?;
        }
        if let Some(codec) = &c.codec {
            check_fragment(ds, &format!("the codec of column '{}'", c.name), codec)?;
        }
    }
    for index in &def.indexes {
        check_fragment(ds, &format!("index '{}'", index.name), &index.expr)?;
        check_fragment(ds, &format!("the type of index '{}'", index.name), &index.ty)?;
    }
    let e = &def.engine;
    let kind = if e.kind.is_empty() { "MergeTree" } else { e.kind.as_str() };
    if !crate::engine::ENGINES.contains(&kind) {
        return Err(EngineError::Schema(format!(
            "datasource '{ds}': the engine `{}` is not supported; use one of {}",
            kind.chars().take(80).collect::<String>(),
            crate::engine::ENGINES.join(", ")
        )));
    }
    let parts = [
        ("ENGINE_VER", &e.ver),
        ("ENGINE_IS_DELETED", &e.is_deleted),
        ("ENGINE_SIGN", &e.sign),
        ("ENGINE_VERSION", &e.version),
        ("ENGINE_PARTITION_KEY", &e.partition_key),
        ("ENGINE_PRIMARY_KEY", &e.primary_key),
        ("ENGINE_SORTING_KEY", &e.sorting_key),
        ("ENGINE_SAMPLING_KEY", &e.sampling_key),
        ("ENGINE_TTL", &e.ttl),
        ("ENGINE_SETTINGS", &e.settings),
        ("ENGINE_COLUMNS", &e.columns),
    ];
    for (what, text) in parts {
        if let Some(text) = text {
            check_fragment(ds, what, text)?;
        }
    }
    Ok(())
}

/// `CREATE TABLE` for a datasource: its columns (defaults and codecs included), indexes, engine and keys. Every piece
/// of datafile text in it is checked first ([`check_fragment`]), and the engine is one of [`crate::engine::ENGINES`].
pub(super) fn create_table(database: &str, def: &DatasourceDef) -> Result<String, EngineError> {
    if def.columns.is_empty() {
        return Err(EngineError::Schema(format!("datasource '{}' has no columns", def.name)));
    }
    check_ddl(def)?;
    let mut columns: Vec<String> = def
        .columns
        .iter()
        .map(|c| {
            let mut text = format!("{} {}", quote_ident(&c.name), c.ty);
            if let Some(default) = &c.default {
                text.push_str(" DEFAULT ");
                text.push_str(default.trim());
            }
            if let Some(codec) = &c.codec {
                text.push_str(&format!(" CODEC({codec})"));
            }
            text
        })
        .collect();
    for index in &def.indexes {
        columns.push(format!(
            "INDEX {} {} TYPE {} GRANULARITY {}",
            quote_ident(&index.name),
            index.expr,
            index.ty,
            index.granularity
        ));
    }
    let e = &def.engine;
    let kind = if e.kind.is_empty() { "MergeTree" } else { e.kind.as_str() };
    let args: Vec<&str> = match kind {
        "ReplacingMergeTree" => e.ver.iter().chain(e.is_deleted.iter()).map(String::as_str).collect(),
        "CollapsingMergeTree" => e.sign.iter().map(String::as_str).collect(),
        "VersionedCollapsingMergeTree" => e.sign.iter().chain(e.version.iter()).map(String::as_str).collect(),
        "SummingMergeTree" => e.columns.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let mut sql = format!(
        "CREATE TABLE {}.{} ({}) ENGINE = {kind}",
        quote_ident(database),
        quote_ident(&def.name),
        columns.join(", ")
    );
    if !matches!(kind, "Null" | "Memory" | "Join" | "Set") {
        sql.push_str(&format!("({})", args.join(", ")));
        if let Some(p) = &e.partition_key {
            sql.push_str(&format!(" PARTITION BY {}", key(p)));
        }
        if let Some(p) = &e.primary_key {
            sql.push_str(&format!(" PRIMARY KEY {}", key(p)));
        }
        let order = e.sorting_key.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("tuple()");
        sql.push_str(&format!(" ORDER BY {}", key(order)));
        if let Some(s) = &e.sampling_key {
            sql.push_str(&format!(" SAMPLE BY {s}"));
        }
        if let Some(t) = &e.ttl {
            sql.push_str(&format!(" TTL {t}"));
        }
        if let Some(s) = &e.settings {
            sql.push_str(&format!(" SETTINGS {s}"));
        }
    }
    Ok(sql)
}

/// A key as a datafile writes it (`date, org_id`) as ClickHouse's DDL needs it: a list in parentheses.
fn key(text: &str) -> String {
    let text = text.trim();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut top_level_comma = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '`' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => top_level_comma = true,
            _ => {}
        }
    }
    if top_level_comma { format!("({text})") } else { text.to_string() }
}

/// `CREATE TABLE` from explicit columns (quarantine and scratch tables): a plain MergeTree.
pub(super) fn create_table_with_columns(database: &str, name: &str, columns: &[(String, ChType)]) -> String {
    let columns: Vec<String> = columns.iter().map(|(n, t)| format!("{} {t}", quote_ident(n))).collect();
    format!(
        "CREATE TABLE {}.{} ({}) ENGINE = MergeTree ORDER BY tuple()",
        quote_ident(database),
        quote_ident(name),
        columns.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prep(sql: &str, scope: &TableScope) -> Result<String, EngineError> {
        let tables: HashSet<String> = ["events".to_string()].into();
        let binding = Binding { database: "db1", tables: &tables };
        prepare(compat::parse_for(sql, Flavor::ClickHouse)?, scope, &binding)
    }

    #[test]
    fn binds_tables_to_the_database_and_applies_filters() {
        let sql = prep("SELECT count() FROM events WHERE x = 1", &TableScope::All).unwrap();
        assert_eq!(sql, "SELECT count() FROM `db1`.`events` AS `events` WHERE x = 1");
        let scope = TableScope::Only(vec![ScopedTable {
            name: "__tb_1".into(),
            table: "events".into(),
            filters: vec![compat::parse_condition("tenant = 'a'").unwrap()],
        }]);
        let sql = prep("SELECT * FROM __tb_1 AS events", &scope).unwrap();
        assert_eq!(sql, "SELECT * FROM (SELECT * FROM `db1`.`events` WHERE (tenant = 'a')) AS events");
        // A name outside the scope is left alone: it resolves in an empty database and fails there.
        let sql = prep("SELECT * FROM events", &scope).unwrap();
        assert_eq!(sql, "SELECT * FROM events");
    }

    #[test]
    fn array_join_lists_print_as_clickhouse_reads_them() {
        // Expressions, several arrays, an alias without AS, an item without alias: printed back as written.
        let sql = prep(
            "SELECT x, y FROM events ARRAY JOIN arrayMap(v -> v * 2, arr) AS x, range(n) y, tags WHERE x > 1",
            &TableScope::All,
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT x, y FROM `db1`.`events` AS `events` ARRAY JOIN arrayMap(v -> v * 2, arr) AS x, range(n) AS y, \
             tags WHERE x > 1"
        );
        // A subquery in an item reads through the scope like any other: bound and filtered.
        let scope = TableScope::Only(vec![ScopedTable {
            name: "events".into(),
            table: "events".into(),
            filters: vec![compat::parse_condition("tenant = 'a'").unwrap()],
        }]);
        let sql = prep("SELECT x FROM (SELECT 1) ARRAY JOIN (SELECT groupArray(s) FROM events) AS x", &scope).unwrap();
        assert!(
            sql.contains("(SELECT groupArray(s) FROM (SELECT * FROM `db1`.`events` WHERE (tenant = 'a'))"),
            "{sql}"
        );
        // One column stays the plain form.
        let sql = prep("SELECT t FROM events ARRAY JOIN tags AS t", &TableScope::All).unwrap();
        assert!(sql.ends_with("ARRAY JOIN tags AS t"), "{sql}");
    }

    #[test]
    fn asof_joins_recursive_ctes_and_in_cte_print_as_clickhouse_reads_them() {
        let sql = prep(
            "SELECT e.n FROM events e LEFT ASOF JOIN events o ON e.k = o.k AND e.t >= o.t ASOF JOIN events p USING (k, t)",
            &TableScope::All,
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT e.n FROM `db1`.`events` e LEFT ASOF JOIN `db1`.`events` o ON e.k = o.k AND e.t >= o.t \
             ASOF JOIN `db1`.`events` p USING (k, t)"
        );
        let sql = prep(
            "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r",
            &TableScope::All,
        )
        .unwrap();
        assert!(
            sql.starts_with("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3)"),
            "{sql}"
        );
        let sql = prep("WITH c (x) AS (SELECT 1) SELECT x FROM c WHERE 1 IN c", &TableScope::All).unwrap();
        assert_eq!(sql, "WITH c (x) AS (SELECT 1) SELECT x FROM c WHERE 1 IN (c)");
        // `COLLATE` after the direction, as ClickHouse writes it; not in a window's ORDER BY.
        let sql = prep("SELECT s FROM events ORDER BY s DESC NULLS LAST COLLATE 'en', n", &TableScope::All).unwrap();
        assert!(sql.ends_with("ORDER BY s DESC NULLS LAST COLLATE 'en', n"), "{sql}");
        let e = prep("SELECT row_number() OVER (ORDER BY s COLLATE 'en') FROM events", &TableScope::All).unwrap_err();
        assert!(e.to_string().contains("COLLATE in a window's ORDER BY"), "{e}");
        // A lone name that is no CTE's: refused (ClickHouse would read it as a table).
        let e = prep("SELECT 1 WHERE 1 IN events", &TableScope::All).unwrap_err().to_string();
        assert!(e.contains("a lone name as the set of IN"), "{e}");
    }

    #[test]
    fn final_on_every_table_becomes_the_final_setting() {
        let sql = prep("SELECT * FROM events FINAL WHERE x = 1", &TableScope::All).unwrap();
        assert_eq!(sql, "SELECT * FROM `db1`.`events` AS `events` WHERE x = 1 SETTINGS final = true");
        let e = prep("SELECT * FROM events FINAL JOIN other ON 1", &TableScope::All).unwrap_err();
        assert!(e.to_string().contains("FINAL on 1 of the 2 tables"), "{e}");
        // A column named `final` is still a column.
        assert!(prep("SELECT a, final FROM events", &TableScope::All).unwrap().contains("a, final FROM"));
    }

    #[test]
    fn strings_are_escaped_for_clickhouse() {
        let sql = prep(r"SELECT 'a\\' AS x, 'it''s' AS y", &TableScope::All).unwrap();
        assert_eq!(sql, r"SELECT 'a\\' AS x, 'it''s' AS y");
        let sql = prep(r"SELECT 'a\'b' AS x", &TableScope::All).unwrap();
        assert_eq!(sql, r"SELECT 'a''b' AS x");
        // ClickHouse gets the text as a C string: a NUL byte goes as its escape. An escape ClickHouse keeps the
        // backslash of is printed with it.
        let sql = prep(r"SELECT 'a\0b' AS x, 'c\%' AS y", &TableScope::All).unwrap();
        assert_eq!(sql, r"SELECT 'a\0b' AS x, 'c\\%' AS y");
    }

    #[test]
    fn with_totals_becomes_the_empty_grouping_set() {
        let q = compat::parse_for(
            "SELECT k, count() FROM t GROUP BY k, j WITH TOTALS ORDER BY k LIMIT 1",
            Flavor::ClickHouse,
        )
        .unwrap();
        let (rows, totals) = split_totals(q).unwrap();
        assert_eq!(rows.to_string(), "SELECT k, count() FROM t GROUP BY k, j ORDER BY k LIMIT 1");
        assert_eq!(
            totals.unwrap().to_string(),
            "SELECT k, count() FROM t GROUP BY GROUPING SETS ((k, j), ()) HAVING grouping(k, j) = 3"
        );
        let q = compat::parse_for("SELECT k FROM t GROUP BY k", Flavor::ClickHouse).unwrap();
        assert!(split_totals(q).unwrap().1.is_none());
    }

    #[test]
    fn refuses_what_reaches_around_the_scope() {
        for sql in [
            "SELECT joinGet('db1.events', 'x', 1)",
            "SELECT dictGetString('d', 'a', 1)",
            "SELECT in(1, db1.events)",
            "SELECT currentDatabase()",
            "SELECT `a\\b` FROM events",
            "SELECT x, count() FROM events GROUP BY x WITH TOTALS",
        ] {
            let e = prep(sql, &TableScope::All);
            assert!(matches!(e, Err(EngineError::Unsupported(_)) | Err(EngineError::Syntax(_))), "{sql}: {e:?}");
        }
    }

    #[test]
    fn datasource_ddl_carries_engine_and_keys() {
        let mut def = DatasourceDef { name: "t".into(), ..Default::default() };
        def.columns.push(tinybird_core::datasource::ColumnDef {
            name: "id".into(),
            ty: "UInt64".into(),
            ..Default::default()
        });
        def.columns.push(tinybird_core::datasource::ColumnDef {
            name: "v".into(),
            ty: "UInt32".into(),
            default: Some("7".into()),
            ..Default::default()
        });
        def.engine.kind = "ReplacingMergeTree".into();
        def.engine.sorting_key = Some("id".into());
        def.engine.ver = Some("v".into());
        def.engine.partition_key = Some("tuple()".into());
        def.engine.primary_key = Some("id, v".into());
        assert_eq!(
            create_table("db", &def).unwrap(),
            "CREATE TABLE `db`.`t` (`id` UInt64, `v` UInt32 DEFAULT 7) ENGINE = ReplacingMergeTree(v) PARTITION BY tuple() PRIMARY KEY (id, v) ORDER BY id"
        );
    }
}
