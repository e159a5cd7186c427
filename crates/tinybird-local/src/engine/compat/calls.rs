//! ClickHouse function calls, one by one: each name the DataFusion engine answers exactly as ClickHouse, with the
//! rewrite that makes it so, and window functions. Any other name is refused.

use super::*;

/// Positional arguments of a call, printed, plus whether it was `DISTINCT`.
pub(super) struct Call {
    pub(super) name: String,
    pub(super) params: Vec<String>,
    pub(super) args: Vec<String>,
    pub(super) distinct: bool,
    pub(super) star: bool,
    pub(super) windowed: bool,
}

/// The functions this engine answers whose names ClickHouse reads in any case (`Ceil`, `LENGTH`, `Lower`), as
/// ClickHouse registers them (`system.functions` where `case_insensitive`; checked against chDB by
/// `clickhouse::case_insensitive_functions_are_clickhouses`).
pub const CASE_INSENSITIVE_FUNCTIONS: &[&str] = &[
    "CAST",
    "abs",
    "array_agg",
    "avg",
    "ceil",
    "ceiling",
    "coalesce",
    "concat",
    "count",
    "dateDiff",
    "dense_rank",
    "exp",
    "first_value",
    "floor",
    "greatest",
    "if",
    "ifNull",
    "isNull",
    "lag",
    "last_value",
    "lcase",
    "lead",
    "least",
    "left",
    "length",
    "ln",
    "locate",
    "log",
    "log10",
    "log2",
    "lower",
    "max",
    "mid",
    "min",
    "now",
    "ntile",
    "nullIf",
    "position",
    "pow",
    "power",
    "rank",
    "repeat",
    "reverse",
    "right",
    "round",
    "row_number",
    "sign",
    "sqrt",
    "substr",
    "substring",
    "sum",
    "today",
    "trunc",
    "truncate",
    "ucase",
    "upper",
];

pub(super) fn call_of(expr: &Expr) -> Result<Call, EngineError> {
    let Expr::Function(f) = expr else { unreachable!("called on functions only") };
    let name = match f.name.0.as_slice() {
        [ObjectNamePart::Identifier(Ident { value, quote_style: None, .. })] => {
            match CASE_INSENSITIVE_FUNCTIONS.iter().find(|n| n.eq_ignore_ascii_case(value)) {
                Some(registered) => (*registered).to_string(),
                None => value.clone(),
            }
        }
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

pub(super) fn arity(call: &Call, range: std::ops::RangeInclusive<usize>) -> Result<(), EngineError> {
    if range.contains(&call.args.len()) {
        Ok(())
    } else if call.args.len() > *range.end()
        && (call.args.iter().any(|a| a.contains(" -> "))
            || call.args[*range.end()..].iter().all(|a| string_literal(a).is_some()))
    {
        // A form ClickHouse has and this engine does not: a lambda first (`arraySort(x -> -x, arr)`), or a trailing
        // time zone or option (`toDayOfWeek(t, 0, 'Asia/Tokyo')`).
        Err(EngineError::Unsupported(format!(
            "`{}` with {} arguments (a lambda, a time zone or another option this engine does not take)",
            call.name,
            call.args.len()
        )))
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

pub(super) fn string_literal(text: &str) -> Option<String> {
    let e = parse_expr(text).ok()?;
    match e {
        Expr::Value(ValueWithSpan { value: SqlValue::SingleQuotedString(s), .. }) => Some(s),
        _ => None,
    }
}

pub(super) fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// ClickHouse `formatDateTime` patterns → chrono patterns (as `to_char` takes them).
pub(super) fn chrono_format(ch: &str) -> Result<String, EngineError> {
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
            'Y' | 'm' | 'd' | 'H' | 'S' | 'y' | 'j' | 'p' | 'I' | 'u' | 'V' | 'G' | 'a' | 'b' | 'D' | 'R' | 'T' => {
                format!("%{spec}")
            }
            'i' => "%M".into(),
            // The day without padding (`formatdatetime_e_with_space_padding` is off by default).
            'e' => "%-d".into(),
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

pub(super) fn interval_sql(text: &str) -> Result<(i64, String), EngineError> {
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

pub(super) fn cast_fn(target: &str) -> Option<&'static str> {
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
pub(super) fn nullable_argument(arg: &str, nullable: &dyn Fn(&str) -> bool) -> bool {
    // Through an argument check (`ch_expect(x, 'family', 'function')`, whose last two arguments are literals).
    if let Some(inner) = arg.strip_prefix("ch_expect(").and_then(|a| a.strip_suffix(')'))
        && let Some((checked, _)) = inner.rsplitn(3, ", ").nth(2).map(|x| (x, ()))
    {
        return nullable_argument(checked, nullable);
    }
    bare_column(arg).is_some_and(nullable) || arg.starts_with("ch_nullable_marker(")
}

/// The column an argument names when it is a bare (possibly qualified or quoted) column, else None.
pub(super) fn bare_column(arg: &str) -> Option<&str> {
    let last = arg.rsplit('.').next().unwrap_or(arg).trim();
    let name = last.trim_matches(|c| c == '`' || c == '"');
    (!name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')).then_some(name)
}

/// What `ch_quantile_exact` of no rows gives (see the `quantiles` module): NULL for a Nullable column; otherwise (a
/// name may be a subquery's alias of a Nullable column) decided by the engine.
fn empty_form(arg: &str, nullable: &dyn Fn(&str) -> bool) -> &'static str {
    match bare_column(arg) {
        Some(column) if nullable(column) => "null",
        _ => "unknown",
    }
}

/// Wraps an aggregate so an empty set gives ClickHouse's answer rather than DataFusion's NULL: `nan` for `avg`,
/// the type's default (0, '', 1970-01-01, []) otherwise; a `Nullable` argument keeps NULL, as in ClickHouse.
pub(super) fn empty_set_default(kind: &str, aggregate: String, arg: &str, nullable: &dyn Fn(&str) -> bool) -> String {
    if nullable_argument(arg, nullable) {
        aggregate
    } else if kind.eq_ignore_ascii_case("avg") {
        format!("coalesce({aggregate}, CAST('NaN' AS DOUBLE))")
    } else {
        format!("ch_zero_if_null({aggregate})")
    }
}

/// The supported functions and their translations. Anything not listed fails, naming the function.
pub(super) fn rewrite_function(expr: &Expr, nullable: &dyn Fn(&str) -> bool) -> Result<Option<Expr>, EngineError> {
    let mut call = call_of(expr)?;
    // Arguments ClickHouse takes of one family of types only: checked while the query is planned.
    if !call.windowed {
        for (i, family) in crate::engine::expect::expected(&call.name) {
            // Types stored as text are told apart by a column's declared type only: a bare column.
            let column_only = *family == crate::engine::expect::Family::NotTextStored;
            if let Some(arg) = call.args.get_mut(*i)
                && (!column_only || bare_column(arg).is_some())
            {
                // An integer literal keeps its ClickHouse type (`round(25, -1)` is a UInt8).
                *arg = format!("ch_expect({}, '{}', '{}')", typed_literal_text(arg), family.name(), call.name);
            }
        }
        // The condition of an `-If` aggregate (`countIf(c)`, `sumIf(x, c)`): a UInt8 or Bool.
        if crate::engine::expect::takes_condition(&call.name)
            && let Some(arg) = call.args.last_mut()
        {
            *arg = format!("ch_expect({}, 'condition', '{}')", typed_literal_text(arg), call.name);
        }
    }
    zoned_as_wall_clock(&mut call)?;
    let name = call.name.as_str();
    let param_free = |c: &Call| {
        if c.params.is_empty() { Ok(()) } else { Err(EngineError::Unsupported(format!("parameters on `{}`", c.name))) }
    };
    if call.windowed {
        return window_function(expr, &call, nullable).map(Some);
    }
    if !matches!(
        name,
        "quantile" | "quantiles" | "quantileExact" | "quantilesExact" | "groupArray" | "topK" | "windowFunnel"
    ) {
        param_free(&call)?;
    }
    const FAMILIES: [Family; 7] = [aggregates, dates, conditionals, arrays, strings, json, numbers];
    for family in FAMILIES {
        if let Some(rewritten) = family(&call, nullable)? {
            return Ok(Some(rewritten));
        }
    }
    match name {
        "row_number" | "rank" | "dense_rank" => Err(EngineError::Unsupported(format!("`{name}` without OVER"))),
        other => Err(EngineError::Unsupported(format!("function `{other}`"))),
    }
}

/// One family of functions: the rewrite of a call to one of its names, or `None` for a name of another family.
type Family = fn(&Call, &dyn Fn(&str) -> bool) -> Result<Option<Expr>, EngineError>;

/// `count(…)` and friends are UInt64 in ClickHouse.
fn as_u64(inner: String) -> String {
    format!("ch_to_uint64({inner})")
}

/// Calendar functions whose result holds no instant (a Date, a number, text), and the position of their optional
/// time zone argument: `toHour(t, 'Asia/Tokyo')` is `toHour` of `t`'s wall-clock time in Tokyo (see
/// `dates::WallClock`). Functions that return a `DateTime` of the zone (`toStartOfDay(t, 'Europe/Madrid')`,
/// `toTimezone`) are refused: this engine has no instant typed with another zone.
const ZONED: &[(&str, usize)] = &[
    ("toDate", 1),
    ("toYear", 1),
    ("toQuarter", 1),
    ("toMonth", 1),
    ("toDayOfMonth", 1),
    ("toDayOfYear", 1),
    ("toHour", 1),
    ("toMinute", 1),
    ("toSecond", 1),
    ("toYYYYMM", 1),
    ("toYYYYMMDD", 1),
    ("toYYYYMMDDhhmmss", 1),
    ("toStartOfMonth", 1),
    ("toStartOfQuarter", 1),
    ("toStartOfYear", 1),
    ("toMonday", 1),
    ("toISOWeek", 1),
    ("toISOYear", 1),
    ("toString", 1),
    ("formatDateTime", 2),
    ("toWeek", 2),
    ("toYearWeek", 2),
    ("toStartOfWeek", 2),
    ("toDayOfWeek", 2),
];

/// A [`ZONED`] call's time zone argument (a string literal) taken off: UTC's names dropped, another zone's applied to
/// the first argument as `ch_wall_clock(x, 'zone')`.
fn zoned_as_wall_clock(call: &mut Call) -> Result<(), EngineError> {
    // Functions whose result is an instant typed with the zone: refused with a zone, named.
    const INSTANTS: &[(&str, usize)] = &[
        ("toStartOfDay", 1),
        ("toStartOfHour", 1),
        ("toStartOfMinute", 1),
        ("toStartOfFiveMinutes", 1),
        ("toStartOfTenMinutes", 1),
        ("toStartOfFifteenMinutes", 1),
        ("toStartOfInterval", 2),
        ("toDateTime", 1),
        ("toTimezone", 1),
        ("toTimeZone", 1),
        ("now", 0),
        ("date_trunc", 2),
        ("dateTrunc", 2),
    ];
    if let Some((_, at)) = INSTANTS.iter().find(|(n, _)| *n == call.name)
        && call.args.len() == at + 1
        && !call.windowed
    {
        return Err(EngineError::Unsupported(format!(
            "{} with a time zone argument (its result is a DateTime of that zone, `DateTime('UTC')` included, which \
             this engine does not type)",
            call.name
        )));
    }
    // `toUnixTimestamp(t, zone)` of a date-time: the instant, whatever the zone (of text, the zone reads it: refused).
    if call.name == "toUnixTimestamp" && call.args.len() == 2 && !call.windowed {
        call.args.pop();
        call.args[0] = format!("ch_datetime_only({}, 'toUnixTimestamp with a time zone')", call.args[0]);
        return Ok(());
    }
    if matches!(call.name.as_str(), "dateDiff" | "date_diff" | "DATE_DIFF" | "timestampDiff" | "age")
        && call.args.len() == 4
    {
        return Err(EngineError::Unsupported(format!("{} with a time zone argument", call.name)));
    }
    let Some((_, at)) = ZONED.iter().find(|(n, _)| *n == call.name) else { return Ok(()) };
    if call.args.len() != at + 1 || call.windowed {
        return Ok(());
    }
    let Some(zone) = string_literal(&call.args[*at]) else {
        return Err(EngineError::Unsupported(format!("{} with a time zone that is not a string literal", call.name)));
    };
    call.args.pop();
    // These take a time zone with a date-time only (ClickHouse's error for a Date).
    if matches!(
        call.name.as_str(),
        "toString" | "toStartOfMonth" | "toStartOfQuarter" | "toStartOfYear" | "toMonday" | "toStartOfWeek"
    ) {
        call.args[0] = format!("ch_datetime_only({}, '{}')", call.args[0], call.name);
    }
    // Those that give a `Date`, or read the week of one, stop at 1970-01-01 as a `Date` does (the day before, in a
    // zone behind UTC, of the instant 0).
    let clamp = matches!(
        call.name.as_str(),
        "toDate"
            | "toStartOfMonth"
            | "toStartOfQuarter"
            | "toStartOfYear"
            | "toMonday"
            | "toStartOfWeek"
            | "toWeek"
            | "toYearWeek"
            | "toISOWeek"
            | "toISOYear"
    );
    if !crate::types::is_utc(&zone) {
        call.args[0] = format!("ch_wall_clock({}, {}, {clamp})", call.args[0], sql_string(&zone));
    }
    Ok(())
}

/// The count of a `uniq…` aggregate: exact (`countDistinct`, `uniqExact`), or ClickHouse's estimate, which is exact
/// up to a size (see `states::ExactUpTo`) and refused past it.
fn exact_up_to(function: &str, count: String) -> String {
    let limit = match function.trim_end_matches("If").trim_end_matches("Merge") {
        "uniq" => 65_536,
        "uniqCombined" | "uniqCombined64" => 4_096,
        "uniqHLL12" => 16,
        _ => return count,
    };
    format!("ch_exact_up_to({count}, {limit}, '{function}')")
}

/// The aggregates whose `-State` and `-Merge` this engine computes. A state is a struct whose first field,
/// `__tb_state_<aggregate>`, holds what the aggregate keeps: `count`'s count, `sum`'s sum, `avg`'s sum (and its
/// `count`), `uniq`'s and `uniqExact`'s distinct values (ClickHouse's `uniq` is exact at the sizes this engine runs).
/// `-Merge` takes only a state of its own aggregate (ClickHouse's error otherwise, see `ch_state_value`); a state
/// selected as a result (ClickHouse's binary `AggregateFunction` value) is refused.
const STATES: &[&str] = &["count", "sum", "avg", "uniq", "uniqExact"];

/// `countState(…)`, `sumState(x)`, `avgState(x)`, `uniqState(x)`, `uniqExactState(x)`.
fn state(call: &Call, base: &str, nullable: &dyn Fn(&str) -> bool) -> Result<Expr, EngineError> {
    let of = |name: &str| -> Result<Expr, EngineError> {
        let inner = Call {
            name: name.to_string(),
            params: call.params.clone(),
            args: call.args.clone(),
            distinct: call.distinct,
            star: call.star,
            windowed: false,
        };
        aggregates(&inner, nullable)?.ok_or_else(|| EngineError::Unsupported(format!("`{}`", call.name)))
    };
    if call.distinct || !call.params.is_empty() {
        return Err(EngineError::Unsupported(format!("`{}` with DISTINCT or parameters", call.name)));
    }
    let field = format!("'__tb_state_{base}'");
    let sql = match base {
        "count" | "sum" => format!("named_struct({field}, {})", of(base)?),
        "avg" => {
            arity(call, 1..=1)?;
            format!("named_struct({field}, {}, 'count', {})", of("sum")?, of("count")?)
        }
        _ => {
            // The distinct values but NULL (which `uniq` skips).
            if call.args.len() != 1 {
                return Err(EngineError::Unsupported(format!("`{}` of several arguments", call.name)));
            }
            let mut values = parse_expr(&format!("array_agg(DISTINCT {})", call.args[0]))?;
            if let Expr::Function(func) = &mut values {
                func.filter = Some(Box::new(parse_expr(&format!("({}) IS NOT NULL", call.args[0]))?));
            }
            format!("named_struct({field}, ch_zero_if_null({values}))")
        }
    };
    parse_expr(&sql)
}

/// `countMerge(s)`, `sumMerge(s)`, `avgMerge(s)`, `uniqMerge(s)`, `uniqExactMerge(s)`: the states' aggregate.
fn merge(call: &Call, base: &str, nullable: &dyn Fn(&str) -> bool) -> Result<Expr, EngineError> {
    arity(call, 1..=1)?;
    if call.distinct || !call.params.is_empty() {
        return Err(EngineError::Unsupported(format!("`{}` with DISTINCT or parameters", call.name)));
    }
    let value = format!("ch_state_value({}, '{base}')", call.args[0]);
    // States of a `Nullable` argument (as the hints read the state's column): no value merges to NULL, not 0 (or nan).
    let of_nullable = nullable_argument(&call.args[0], nullable);
    let sql = match base {
        "count" => as_u64(format!("ch_zero_if_null(sum({value}))")),
        "sum" if of_nullable => format!("ch_sum({value})"),
        "sum" => format!("ch_zero_if_null(ch_sum({value}))"),
        "avg" => format!(
            "CAST(ch_zero_if_null(ch_sum(get_field({value}, '__tb_state_avg'))) AS DOUBLE) / \
             {}",
            if of_nullable {
                format!("CAST(nullif(ch_zero_if_null(sum(get_field({value}, 'count'))), 0) AS DOUBLE)")
            } else {
                format!("CAST(ch_zero_if_null(sum(get_field({value}, 'count'))) AS DOUBLE)")
            }
        ),
        _ => exact_up_to(
            &call.name,
            as_u64(format!("ch_zero_if_null(cardinality(array_distinct(flatten(array_agg({value})))))")),
        ),
    };
    parse_expr(&sql)
}

/// Aggregate functions (with ClickHouse's result types and empty-set values).
fn aggregates(call: &Call, nullable: &dyn Fn(&str) -> bool) -> Result<Option<Expr>, EngineError> {
    let (a, p, name) = (&call.args, &call.params, call.name.as_str());
    if let Some(base) = name.strip_suffix("State").filter(|b| STATES.contains(b)) {
        return state(call, base, nullable).map(Some);
    }
    if let Some(base) = name.strip_suffix("Merge").filter(|b| STATES.contains(b)) {
        return merge(call, base, nullable).map(Some);
    }
    let sql = match name {
        "count" | "COUNT" | "Count" => {
            if call.star || a.is_empty() {
                as_u64("count(*)".into())
            } else if call.distinct {
                as_u64(format!("count(DISTINCT {})", a.join(", ")))
            } else if a.len() > 1 {
                return Err(EngineError::Syntax(
                    "Aggregate function count requires zero or one argument (NUMBER_OF_ARGUMENTS_DOESNT_MATCH)".into(),
                ));
            } else {
                as_u64(format!("count({})", a[0]))
            }
        }
        "countIf" => {
            arity(call, 1..=2)?;
            match a.len() {
                1 => as_u64(format!("count(CASE WHEN {} THEN 1 END)", a[0])),
                _ => as_u64(format!("count(CASE WHEN {} THEN {} END)", a[1], a[0])),
            }
        }
        "countDistinct" | "uniq" | "uniqExact" | "uniqCombined" | "uniqCombined64" | "uniqHLL12" => {
            arity(call, 1..=usize::MAX)?;
            let count = if a.len() == 1 {
                as_u64(format!("count(DISTINCT {})", a[0]))
            } else {
                // Distinct combinations; a row with a NULL in any argument is skipped, as ClickHouse skips it.
                let present: Vec<String> = a.iter().map(|x| format!("({x}) IS NOT NULL")).collect();
                as_u64(format!("count(DISTINCT CASE WHEN {} THEN struct({}) END)", present.join(" AND "), a.join(", ")))
            };
            exact_up_to(name, count)
        }
        "uniqIf" | "uniqExactIf" => {
            arity(call, 2..=2)?;
            exact_up_to(name, as_u64(format!("count(DISTINCT CASE WHEN {} THEN {} END)", a[1], a[0])))
        }
        // ClickHouse's sum and avg: their types, and their order of adding floats (see the `sums` module).
        // ClickHouse sums an empty set to 0, not NULL.
        // A Nullable argument sums no values to NULL.
        "sum" | "SUM" | "Sum" if call.distinct => {
            arity(call, 1..=1)?;
            empty_set_default("sum", format!("sum(DISTINCT {})", a[0]), &a[0], nullable)
        }
        "sum" | "SUM" | "Sum" => {
            arity(call, 1..=1)?;
            empty_set_default("sum", format!("ch_sum({})", typed_literal_text(&a[0])), &a[0], nullable)
        }
        "sumIf" => {
            arity(call, 2..=2)?;
            let value = typed_literal_text(&a[0]);
            empty_set_default("sum", format!("ch_sum(CASE WHEN {} THEN {value} END)", a[1]), &a[0], nullable)
        }
        "avg" | "AVG" | "Avg" | "min" | "MIN" | "Min" | "max" | "MAX" | "Max" => {
            arity(call, 1..=1)?;
            let f = match name.to_ascii_lowercase().as_str() {
                "avg" if call.distinct => "avg(DISTINCT ".to_string(),
                "avg" => "ch_avg(".to_string(),
                other => format!("{other}("),
            };
            empty_set_default(&name[..3], format!("{f}{})", a[0]), &a[0], nullable)
        }
        "avgIf" | "minIf" | "maxIf" => {
            arity(call, 2..=2)?;
            let f = if name == "avgIf" { "ch_avg" } else { &name[..3] };
            empty_set_default(&name[..3], format!("{f}(CASE WHEN {} THEN {} END)", a[1], a[0]), &a[0], nullable)
        }
        "arrayElement" => {
            arity(call, 2..=2)?;
            format!("ch_array_element({}, {})", a[0], a[1])
        }
        "median" => {
            arity(call, 1..=1)?;
            format!("ch_quantile(ch_quantile_arg({}), 0.5)", a[0])
        }
        "varPop" | "VAR_POP" | "varSamp" | "VAR_SAMP" | "stddevPop" | "STDDEV_POP" | "stddevSamp" | "STDDEV_SAMP" => {
            arity(call, 1..=1)?;
            let f = match name.to_ascii_lowercase().replace('_', "").as_str() {
                "varpop" => "ch_var_pop",
                "varsamp" => "ch_var_samp",
                "stddevpop" => "ch_stddev_pop",
                _ => "ch_stddev_samp",
            };
            // ClickHouse reads integers and floats as Float64 (a Float32's result is a Float32, refused here).
            format!("{f}(ch_spread_arg({}))", a[0])
        }
        // `topK(N)(x)` (N 10 by default) and `windowFunnel(window)(timestamp, cond…)`: see the `funnels` module.
        "topK" => {
            arity(call, 1..=1)?;
            if p.len() > 1 {
                return Err(EngineError::Unsupported("topK with more than one parameter".into()));
            }
            format!("ch_top_k({}, {})", a[0], p.first().map_or("10", String::as_str))
        }
        "windowFunnel" => {
            let [window] = p.as_slice() else {
                return Err(EngineError::Unsupported(
                    "windowFunnel without one window parameter, or with a mode".into(),
                ));
            };
            arity(call, 2..=33)?;
            let conditions: Vec<String> = a[1..].iter().map(|c| format!("ch_cond({c})")).collect();
            format!("ch_window_funnel({window}, {}, {})", a[0], conditions.join(", "))
        }
        // In the argument's type; no rows give its default (NULL for a Nullable argument, nan for a float).
        "medianExact" => {
            arity(call, 1..=1)?;
            format!("ch_quantile_exact({}, 0.5, '{}')", a[0], empty_form(&a[0], nullable))
        }
        // The arrays' elements in one array; `[]` for no rows.
        "groupArrayArray" => {
            arity(call, 1..=1)?;
            format!("ch_zero_if_null(flatten(array_agg({})))", a[0])
        }
        "quantile" | "quantileExact" => {
            arity(call, 1..=1)?;
            let level = p.first().cloned().unwrap_or_else(|| "0.5".into());
            if p.len() > 1 {
                return Err(EngineError::Syntax(format!("{name} takes one level parameter")));
            }
            if name == "quantile" {
                format!("ch_quantile(ch_quantile_arg({}), {level})", a[0])
            } else {
                format!("ch_quantile_exact({}, {level}, '{}')", a[0], empty_form(&a[0], nullable))
            }
        }
        "quantiles" | "quantilesExact" => {
            arity(call, 1..=1)?;
            if p.is_empty() {
                return Err(EngineError::Syntax(format!("{name} needs at least one level parameter")));
            }
            // `quantilesExact`'s elements are never NULL: no rows give each the type's default.
            let parts: Vec<String> = p
                .iter()
                .map(|l| match name {
                    "quantiles" => format!("ch_quantile(ch_quantile_arg({}), {l})", a[0]),
                    _ => format!("ch_quantile_exact({}, {l}, 'array')", a[0]),
                })
                .collect();
            format!("make_array({})", parts.join(", "))
        }
        "argMin" | "argMax" => {
            arity(call, 2..=2)?;
            let dir = if name == "argMin" { "ASC" } else { "DESC" };
            // ClickHouse skips a row where either argument is NULL.
            let mut e = parse_expr(&format!("first_value({} ORDER BY {} {dir} NULLS LAST)", a[0], a[1]))?;
            if let Expr::Function(func) = &mut e {
                // And a NaN value, as ClickHouse's comparisons never pick it.
                func.filter = Some(Box::new(parse_expr(&format!(
                    "({}) IS NOT NULL AND ({b}) IS NOT NULL AND NOT ch_is_nan({b})",
                    a[0],
                    b = a[1]
                ))?));
            }
            // NULL over no values when either argument is Nullable (ClickHouse's type is then Nullable).
            match nullable_argument(&a[1], nullable) {
                true => e.to_string(),
                false => empty_set_default("arg", e.to_string(), &a[0], nullable),
            }
        }
        "groupArray" | "groupUniqArray" | "any" | "anyLast" => {
            arity(call, 1..=1)?;
            if let Some(max) = p.first()
                && max.trim().parse::<u64>().is_ok_and(|n| n == 0)
            {
                return Err(EngineError::Syntax(format!(
                    "Parameter for aggregate function {name} should be positive number (BAD_ARGUMENTS)"
                )));
            }
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
        _ => return Ok(None),
    };
    parse_expr(&sql).map(Some)
}

/// Dates and times.
fn dates(call: &Call, _nullable: &dyn Fn(&str) -> bool) -> Result<Option<Expr>, EngineError> {
    let (a, name) = (&call.args, call.name.as_str());
    let sql = match name {
        "now" => {
            arity(call, 0..=0)?;
            "ch_to_datetime(now())".into()
        }
        "today" => {
            arity(call, 0..=0)?;
            "current_date()".into()
        }
        "yesterday" => {
            arity(call, 0..=0)?;
            "ch_to_date(current_date() - INTERVAL '1 day')".into()
        }
        "toDate" => {
            arity(call, 1..=1)?;
            format!("ch_to_date({})", a[0])
        }
        "toDateTime" => {
            arity(call, 1..=1)?;
            format!("ch_to_datetime({})", a[0])
        }
        // `toDateTime64(x, P[, 'UTC'])` (see the `datetime64` module); another time zone is refused.
        "toDateTime64" => {
            arity(call, 2..=3)?;
            let zone = match a.get(2).map(|tz| tz.trim()) {
                None => "",
                Some(tz) => match tz.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
                    Some(tz) if crate::types::is_utc(tz) => tz,
                    _ => return Err(EngineError::Unsupported(format!("{name} with a time zone other than UTC"))),
                },
            };
            match a[1].trim().parse::<u8>() {
                Ok(0 | 3 | 6 | 9) => {}
                Ok(p @ 1..=8) => return Err(precision_refused(name, p)),
                Ok(_) => {}
                Err(_) => return Err(EngineError::Syntax(format!("{name}: the precision must be a number literal"))),
            }
            format!("ch_to_datetime64({}, {}, '{zone}')", a[0], a[1].trim())
        }
        "parseDateTimeBestEffort" | "parseDateTimeBestEffortOrNull" => {
            arity(call, 1..=1)?;
            let f = if name.ends_with("OrNull") { "ch_parse_datetime_or_null" } else { "ch_parse_datetime" };
            format!("{f}({})", a[0])
        }
        // DateTime64(3), the default precision; another precision is refused.
        "parseDateTime64BestEffort" | "parseDateTime64BestEffortOrNull" => {
            arity(call, 1..=2)?;
            if a.get(1).is_some_and(|p| p.trim() != "3") {
                return Err(EngineError::Unsupported(format!("{name} with a precision other than 3")));
            }
            let f = if name.ends_with("OrNull") { "ch_parse_datetime64_or_null" } else { "ch_parse_datetime64" };
            format!("{f}({})", a[0])
        }
        // `addDays(x, n)`, `subtractHours(x, n)` (see the `dates` module).
        n if (n.starts_with("add") || n.starts_with("subtract"))
            && crate::engine::dates::unit_name(n.trim_start_matches("add").trim_start_matches("subtract"))
                .is_some() =>
        {
            arity(call, 2..=2)?;
            let sign = if n.starts_with("subtract") { "-" } else { "" };
            let unit = n.trim_start_matches("add").trim_start_matches("subtract");
            format!("ch_date_add('{sign}{unit}', {}, {})", a[0], a[1])
        }
        // `date_add(DAY, n, x)`, `dateSub(MONTH, n, x)`.
        n if matches!(n.to_ascii_lowercase().as_str(), "date_add" | "dateadd" | "date_sub" | "datesub") => {
            arity(call, 3..=3)?;
            let unit = crate::engine::dates::unit_name(a[0].trim())
                .ok_or_else(|| EngineError::Unsupported(format!("{name} with the unit `{}`", a[0])))?;
            let sign = if n.to_ascii_lowercase().contains("sub") { "-" } else { "" };
            format!("ch_date_add('{sign}{unit}', {}, {})", a[2], a[1])
        }
        "toDayOfYear" => format!("ch_to_uint16(date_part('doy', {}))", one(call)?),
        "toYYYYMMDDhhmmss" => {
            let x = one(call)?;
            format!(
                "ch_to_uint64(date_part('year', {x}) * 10000000000 + date_part('month', {x}) * 100000000 + \
                 date_part('day', {x}) * 1000000 + date_part('hour', {x}) * 10000 + date_part('minute', {x}) * 100 + \
                 date_part('second', {x}))"
            )
        }
        "fromUnixTimestamp" => format!("ch_from_unix({})", one(call)?),
        "toDateOrNull" | "toDateOrZero" | "toDateTimeOrNull" | "toDateTimeOrZero" => {
            format!("ch_{}({})", snake_case(name).replace("date_time", "datetime"), one(call)?)
        }
        "toUnixTimestamp64Second" | "toUnixTimestamp64Milli" | "toUnixTimestamp64Micro" | "toUnixTimestamp64Nano" => {
            let digits = match name.trim_start_matches("toUnixTimestamp64") {
                "Second" => 0,
                "Milli" => 3,
                "Micro" => 6,
                _ => 9,
            };
            format!("ch_to_unix64({}, {digits})", one(call)?)
        }
        "fromUnixTimestamp64Milli" | "fromUnixTimestamp64Micro" | "fromUnixTimestamp64Nano" => {
            let digits = match name.trim_start_matches("fromUnixTimestamp64") {
                "Milli" => 3,
                "Micro" => 6,
                _ => 9,
            };
            format!("ch_from_unix64({}, {digits})", one(call)?)
        }
        // `date_trunc('month', x)`: as the `toStartOf…` function of the unit, with ClickHouse's types (a DateTime
        // for a unit up to a day, a Date from a week on, Monday first).
        "date_trunc" | "dateTrunc" | "DATE_TRUNC" | "datetrunc" => {
            arity(call, 2..=2)?;
            let unit = string_literal(&a[0])
                .ok_or_else(|| EngineError::Unsupported(format!("{name} with a unit that is not a string literal")))?
                .to_ascii_lowercase();
            // A unit below a day takes a DateTime only, as in ClickHouse.
            let x = if matches!(unit.as_str(), "second" | "minute" | "hour") {
                format!("ch_to_datetime(ch_datetime_only(ch_date_or_datetime({}, 'date_trunc'), 'date_trunc'))", a[1])
            } else {
                format!("ch_to_datetime(ch_date_or_datetime({}, 'date_trunc'))", a[1])
            };
            match unit.as_str() {
                "second" => x,
                "minute" | "hour" | "day" => {
                    format!("ch_to_datetime(date_bin(INTERVAL '1 {unit}', {x}, TIMESTAMP '1970-01-01 00:00:00'))")
                }
                "week" => format!("ch_to_date(date_bin(INTERVAL '7 days', {x}, TIMESTAMP '1970-01-05 00:00:00'))"),
                "month" | "quarter" | "year" => format!("ch_to_date(date_trunc('{unit}', {x}))"),
                other => return Err(EngineError::Unsupported(format!("{name} with the unit '{other}'"))),
            }
        }
        "toStartOfMinute"
        | "toStartOfHour"
        | "toStartOfDay"
        | "toStartOfFiveMinutes"
        | "toStartOfTenMinutes"
        | "toStartOfFifteenMinutes" => {
            arity(call, 1..=1)?;
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
            arity(call, 1..=2)?;
            // Mode 0 (the default) starts weeks on Sunday; odd modes and toMonday on Monday.
            let monday = name == "toMonday"
                || a.get(1)
                    .map(|m| m.trim().parse::<u8>().map(|m| m % 2 == 1))
                    .transpose()
                    .map_err(|_| EngineError::Syntax("toStartOfWeek: the mode must be a number literal".into()))?
                    .unwrap_or(false);
            let origin = if monday { "1970-01-05" } else { "1970-01-04" };
            // Not before 1970-01-01, where ClickHouse's Date stops (NULL stays NULL).
            let week = format!("date_bin(INTERVAL '7 days', ch_to_datetime({}), TIMESTAMP '{origin} 00:00:00')", a[0]);
            format!(
                "ch_to_date(CASE WHEN {week} < TIMESTAMP '1970-01-01 00:00:00' THEN TIMESTAMP '1970-01-01 00:00:00' \
                 ELSE {week} END)"
            )
        }
        "toStartOfMonth" | "toStartOfQuarter" | "toStartOfYear" => {
            arity(call, 1..=1)?;
            let unit = match name {
                "toStartOfMonth" => "month",
                "toStartOfQuarter" => "quarter",
                _ => "year",
            };
            format!("ch_to_date(date_trunc('{unit}', ch_to_datetime({})))", a[0])
        }
        "toStartOfInterval" => {
            arity(call, 2..=2)?;
            let (n, unit) = interval_sql(&a[1])?;
            if n <= 0 {
                return Err(EngineError::Syntax("toStartOfInterval: the interval must be positive".into()));
            }
            match unit.as_str() {
                // ClickHouse starts hour buckets at each midnight: from the epoch, as below, only when the
                // hours divide a day.
                "hour" if 24 % n != 0 => {
                    let seconds = format!("ch_to_int64(ch_to_datetime(ch_time_of_day_arg({})))", a[0]);
                    format!("ch_to_datetime({seconds} - ({seconds} % 86400) % {})", n * 3600)
                }
                // Hours, minutes and seconds of a date-time only, as in ClickHouse.
                "second" | "minute" | "hour" => format!(
                    "ch_to_datetime(date_bin(INTERVAL '{n} {unit}', ch_to_datetime(ch_time_of_day_arg({})), \
                     TIMESTAMP '1970-01-01 00:00:00'))",
                    a[0]
                ),
                "day" => format!(
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
            arity(call, 1..=1)?;
            format!("ch_to_uint32(date_part('year', {0}) * 100 + date_part('month', {0}))", a[0])
        }
        "toYYYYMMDD" => {
            arity(call, 1..=1)?;
            format!(
                "ch_to_uint32(date_part('year', {0}) * 10000 + date_part('month', {0}) * 100 + date_part('day', {0}))",
                a[0]
            )
        }
        "toYear" => format!("ch_to_uint16(date_part('year', {}))", one(call)?),
        "toQuarter" => format!("ch_to_uint8(date_part('quarter', {}))", one(call)?),
        "toISOWeek" => format!("ch_week({}, 3)", one(call)?),
        "toISOYear" => format!("ch_iso_year({}, 3)", one(call)?),
        // `toWeek(x[, mode])`, `toYearWeek(x[, mode])`: the mode a constant, 0 by default (see the `dates` module).
        "toWeek" | "toYearWeek" => {
            arity(call, 1..=2)?;
            let mode = match a.get(1).map(|m| m.trim()) {
                None => "0",
                Some(m) if m.parse::<u8>().is_ok() => m,
                Some(_) => {
                    return Err(EngineError::Unsupported(format!("{name} with a mode that is not a number literal")));
                }
            };
            let f = if name == "toWeek" { "ch_week" } else { "ch_year_week" };
            format!("{f}({}, {mode})", a[0])
        }
        "toMonth" => format!("ch_to_uint8(date_part('month', {}))", one(call)?),
        "toDayOfMonth" => format!("ch_to_uint8(date_part('day', {}))", one(call)?),
        // Of a date-time only: a `Date` has no time of day in ClickHouse.
        "toHour" => format!("ch_to_uint8(date_part('hour', ch_time_of_day_arg({})))", one(call)?),
        "toMinute" => format!("ch_to_uint8(date_part('minute', ch_time_of_day_arg({})))", one(call)?),
        "toSecond" => format!("ch_to_uint8(date_part('second', ch_time_of_day_arg({})))", one(call)?),
        // Mode 0 (the default): Monday 1 to Sunday 7; 1: Monday 0 to Sunday 6; 2: Sunday 0 to Saturday 6; 3: Sunday
        // 1 to Saturday 7.
        "toDayOfWeek" => {
            arity(call, 1..=2)?;
            let dow = format!("ch_to_int64(date_part('dow', {}))", a[0]);
            match a.get(1).map(|m| m.trim()) {
                None | Some("0") => format!("ch_to_uint8(({dow} + 6) % 7 + 1)"),
                Some("1") => format!("ch_to_uint8(({dow} + 6) % 7)"),
                Some("2") => format!("ch_to_uint8({dow})"),
                Some("3") => format!("ch_to_uint8({dow} + 1)"),
                Some(m) => return Err(EngineError::Unsupported(format!("toDayOfWeek with the mode {m}"))),
            }
        }
        "toUnixTimestamp" => format!("ch_unix_timestamp({})", one(call)?),
        "formatDateTime" => {
            arity(call, 2..=2)?;
            let pattern = string_literal(&a[1])
                .ok_or_else(|| EngineError::Unsupported("formatDateTime with a non-literal pattern".into()))?;
            format!("to_char({}, {})", a[0], sql_string(&chrono_format(&pattern)?))
        }
        "dateDiff" | "date_diff" | "DATE_DIFF" => {
            arity(call, 3..=3)?;
            if a[1..].iter().any(|x| string_literal(x).is_some()) {
                return Err(EngineError::Syntax(format!(
                    "Illegal type String of an argument of function {name}: it takes Date or DateTime values \
                     (ILLEGAL_TYPE_OF_ARGUMENT)"
                )));
            }
            format!("ch_date_diff({}, {}, {})", a[0], a[1], a[2])
        }
        _ => return Ok(None),
    };
    parse_expr(&sql).map(Some)
}

/// Conditionals and NULLs.
fn conditionals(call: &Call, _nullable: &dyn Fn(&str) -> bool) -> Result<Option<Expr>, EngineError> {
    let (a, name) = (&call.args, call.name.as_str());
    let sql = match name {
        "if" | "IF" => {
            arity(call, 3..=3)?;
            format!(
                "ch_if_result(CASE WHEN ch_if_cond({}) THEN {} ELSE {} END)",
                a[0],
                typed_literal_text(&a[1]),
                typed_literal_text(&a[2])
            )
        }
        "multiIf" => {
            if a.len() < 3 || a.len() % 2 == 0 {
                return Err(EngineError::Syntax("multiIf takes an odd number of arguments, at least 3".into()));
            }
            let mut s = String::from("ch_if_result(CASE");
            for pair in a[..a.len() - 1].chunks(2) {
                s.push_str(&format!(" WHEN ch_if_cond({}) THEN {}", pair[0], typed_literal_text(&pair[1])));
            }
            s.push_str(&format!(" ELSE {} END)", typed_literal_text(&a[a.len() - 1])));
            s
        }
        "coalesce" | "COALESCE" => {
            format!("ch_coalesce({})", a.iter().map(|x| typed_literal_text(x)).collect::<Vec<_>>().join(", "))
        }
        "ifNull" => {
            arity(call, 2..=2)?;
            format!("ch_coalesce({}, {})", typed_literal_text(&a[0]), typed_literal_text(&a[1]))
        }
        "nullIf" | "NULLIF" => {
            arity(call, 2..=2)?;
            // `a`'s own type, where DataFusion's `nullif` widens both sides to a common one.
            format!("(CASE WHEN ({a}) = ({b}) THEN NULL ELSE {a} END)", a = a[0], b = typed_literal_text(&a[1]))
        }
        // `x IN [1, 2]` (read as `in(x, [1, 2])`, ClickHouse's name for it): the list.
        "in" | "notIn" if a.len() == 2 && a[1].starts_with('[') && a[1].ends_with(']') => {
            let list = &a[1][1..a[1].len() - 1];
            let not = if name == "notIn" { "NOT " } else { "" };
            match list.trim() {
                "" => (if name == "in" { "false" } else { "true" }).to_string(),
                list => {
                    // The array's integer literals were typed as ClickHouse types an array's elements; membership
                    // compares values, so the list takes them as they were written (as `x IN (1, 2)` does): 10,000
                    // casts would cost the planner more than the query.
                    let mut expr = parse_expr(&format!("({} {not}IN ({list}))", a[0]))?;
                    if let Expr::Nested(inner) = &mut expr
                        && let Expr::InList { list, .. } = inner.as_mut()
                    {
                        for item in list.iter_mut() {
                            if let Some(literal) = untyped_integer_literal(item) {
                                *item = literal;
                            }
                        }
                    }
                    return Ok(Some(expr));
                }
            }
        }
        // The value, and the type's default (0, '', 1970-01-01) for a NULL, as ClickHouse reads the nested column.
        "assumeNotNull" => format!("ch_zero_if_null({})", one(call)?),
        // The value; its type `Nullable` (see the hints), and so for the aggregates of it (`sum(toNullable(x))` of
        // no row is NULL).
        "toNullable" => format!("ch_nullable_marker({})", one(call)?),
        // The value; its type `LowCardinality` (see the hints).
        "toLowCardinality" => format!("ch_plain_value({})", typed_literal_text(one(call)?)),
        "isNull" => format!("(({}) IS NULL)", one(call)?),
        "isNotNull" => format!("(({}) IS NOT NULL)", one(call)?),
        _ => return Ok(None),
    };
    parse_expr(&sql).map(Some)
}

/// Arrays.
fn arrays(call: &Call, _nullable: &dyn Fn(&str) -> bool) -> Result<Option<Expr>, EngineError> {
    let (a, name) = (&call.args, call.name.as_str());
    let sql = match name {
        // No array here holds a NULL (an array of Nullable elements is refused): `has(arr, NULL)` is 0.
        "has" | "hasAny" | "hasAll" | "indexOf" if a.first().is_some_and(|x| x.trim().eq_ignore_ascii_case("NULL")) => {
            return Err(EngineError::Syntax(format!(
                "First argument for function {name} must be an array, map or JSON. Actual Nullable(Nothing) \
                 (ILLEGAL_TYPE_OF_ARGUMENT)"
            )));
        }
        "has" if a.get(1).is_some_and(|x| x.trim().eq_ignore_ascii_case("NULL")) => {
            arity(call, 2..=2)?;
            "ch_to_uint8(0)".to_string()
        }
        "has" => {
            arity(call, 2..=2)?;
            format!("array_has({}, {})", a[0], a[1])
        }
        "hasAny" | "hasAll" => {
            arity(call, 2..=2)?;
            format!("{}({}, {})", if name == "hasAny" { "array_has_any" } else { "array_has_all" }, a[0], a[1])
        }
        // Lambdas of one array: DataFusion's higher-order functions, the array first.
        "arrayMap" | "arrayFilter" | "arrayExists" | "arrayCount" | "arrayAll" | "arrayFirst" => {
            let [lambda, array] = a.as_slice() else {
                return Err(EngineError::Unsupported(format!("`{name}` of several arrays, or without a lambda")));
            };
            let Some((param, body)) = lambda.split_once(" -> ").filter(|(p, _)| bare_column(p) == Some(p.trim()))
            else {
                return Err(EngineError::Unsupported(format!("`{name}` without a one-parameter lambda")));
            };
            // A predicate is a condition: a UInt8 (`match(…)`, `1`) is one when not 0, NULL is false (ClickHouse's
            // reading; DataFusion's lambdas take booleans only).
            let body = match name {
                "arrayMap" => body.to_string(),
                "arrayAll" => format!("NOT coalesce(CAST(({body}) AS BOOLEAN), false)"),
                _ => format!("coalesce(CAST(({body}) AS BOOLEAN), false)"),
            };
            // `arrayMap`'s values are typed Nullable for the lambdas over them: DataFusion fixes a lambda variable's
            // type while planning and checks it again after the rewrites, which may make an element Nullable
            // (`arrayFilter(x -> x > 0, arrayMap(x -> x * 2, arr))`). The `meta` type does not depend on it.
            let body = if name == "arrayMap" { format!("ch_nullable_marker({body})") } else { body };
            let sql = match name {
                "arrayMap" => format!("array_transform({array}, {LAMBDA})"),
                "arrayFilter" => format!("array_filter({array}, {LAMBDA})"),
                "arrayExists" => format!("ch_to_uint8(coalesce(array_any_match({array}, {LAMBDA}), false))"),
                "arrayAll" => format!("ch_to_uint8(NOT coalesce(array_any_match({array}, {LAMBDA}), false))"),
                // No element matching: the element type's default, as in ClickHouse.
                "arrayFirst" => format!("ch_zero_if_null(array_first({array}, {LAMBDA}))"),
                _ => format!("ch_to_uint32(cardinality(array_filter({array}, {LAMBDA})))"),
            };
            return with_lambda(&sql, param.trim(), &body).map(Some);
        }
        "length" | "LENGTH" => format!("ch_length({})", one(call)?),
        "empty" => format!("(ch_length({}) = 0)", one(call)?),
        "notEmpty" => format!("(ch_length({}) > 0)", one(call)?),
        "arrayJoin" => format!("unnest({})", one(call)?),
        "range" if a.len() == 1 => format!("ch_range({})", typed_literal_text(&a[0])),
        "range" => return Err(EngineError::Unsupported("range(start, end[, step])".into())),
        "arrayEnumerate" => format!("ch_array_enumerate({})", one(call)?),
        "arrayCompact" => format!("ch_array_compact({})", one(call)?),
        "arraySlice" => {
            arity(call, 2..=3)?;
            // A NULL bound is no bound: a NULL offset starts at the first element, a NULL length goes to the end.
            let null = |x: &str| x.trim().eq_ignore_ascii_case("NULL");
            let offset = if null(&a[1]) { "1" } else { a[1].as_str() };
            match a.get(2) {
                Some(length) if !null(length) => format!("ch_array_slice({}, {offset}, {length})", a[0]),
                _ => format!("ch_array_slice({}, {offset})", a[0]),
            }
        }
        "arraySum" => format!("ch_array_sum({})", one(call)?),
        "arrayCumSum" => format!("ch_array_cum_sum({})", one(call)?),
        "arrayReverse" => format!("array_reverse({})", one(call)?),
        // `ARRAY JOIN a, b` (see `array_joins_as_subqueries`): one array of several unfolded side by side.
        ARRAY_JOIN_ZIP => format!("unnest(ch_array_join_sizes({}))", a.join(", ")),
        "array" => format!("make_array({})", a.join(", ")),
        // Tuples inside expressions, as DataFusion structs (fields c0, c1, …); a tuple as a result column is refused
        // where the result is typed.
        "tuple" => {
            arity(call, 1..=usize::MAX)?;
            format!("struct({})", a.iter().map(|x| typed_literal_text(x)).collect::<Vec<_>>().join(", "))
        }
        "tupleElement" => {
            arity(call, 2..=2)?;
            let index: usize =
                a[1].trim().parse().ok().filter(|i| *i >= 1).ok_or_else(|| {
                    EngineError::Unsupported("tupleElement by name, or by a non-literal index".into())
                })?;
            format!("get_field({}, 'c{}')", a[0], index - 1)
        }
        "arrayStringConcat" => {
            arity(call, 1..=2)?;
            format!("array_to_string({}, {})", a[0], a.get(1).map(String::as_str).unwrap_or("''"))
        }
        // NULLs last, as ClickHouse sorts them.
        "arraySort" => format!("array_sort({}, 'ASC', 'NULLS LAST')", one(call)?),
        "arrayReverseSort" => format!("array_sort({}, 'DESC', 'NULLS LAST')", one(call)?),
        // Distinct elements, a NULL counted once, as ClickHouse counts it.
        "arrayUniq" => format!("ch_to_uint32(cardinality(array_distinct({})))", one(call)?),
        "arrayFlatten" | "flatten" => format!("flatten({})", one(call)?),
        // ClickHouse drops the NULLs (and the `Nullable`): refused for an array holding any, when the query runs.
        "arrayDistinct" => format!("array_distinct(ch_no_null_elements({}))", one(call)?),
        "arrayConcat" => format!("array_concat({})", a.join(", ")),
        // `transform(x, [from…], [to…][, default])`: a CASE over the pairs; without a default, `x` itself.
        "transform" => {
            arity(call, 3..=4)?;
            let elements = |text: &str| -> Result<Vec<String>, EngineError> {
                match parse_expr(text)? {
                    Expr::Array(array) => Ok(array.elem.iter().map(|e| typed_literal_text(&e.to_string())).collect()),
                    _ => Err(EngineError::Unsupported("transform with arrays that are not literals".into())),
                }
            };
            let (from, to) = (elements(&a[1])?, elements(&a[2])?);
            if from.len() != to.len() {
                return Err(EngineError::Syntax(
                    "Second and third arguments of function transform must have equal size (BAD_ARGUMENTS)".into(),
                ));
            }
            if to.iter().chain(a.get(3)).any(|t| t.trim().eq_ignore_ascii_case("NULL")) {
                return Err(EngineError::Unsupported("transform to NULL".into()));
            }
            let x = typed_literal_text(&a[0]);
            let arms: String = from.iter().zip(&to).map(|(f, t)| format!(" WHEN ({x}) = {f} THEN {t}")).collect();
            let default = a.get(3).map_or_else(|| x.clone(), |d| typed_literal_text(d));
            format!("CASE{arms} ELSE {default} END")
        }
        "indexOf" => {
            arity(call, 2..=2)?;
            format!("ch_to_uint64(ch_zero_if_null(array_position({}, {})))", a[0], a[1])
        }
        _ => return Ok(None),
    };
    parse_expr(&sql).map(Some)
}

/// Strings.
fn strings(call: &Call, _nullable: &dyn Fn(&str) -> bool) -> Result<Option<Expr>, EngineError> {
    let (a, name) = (&call.args, call.name.as_str());
    let sql = match name {
        "lower" | "LOWER" | "lcase" => format!("ch_lower_ascii({})", one(call)?),
        "upper" | "UPPER" | "ucase" => format!("ch_upper_ascii({})", one(call)?),
        "lowerUTF8" => format!("lower({})", one(call)?),
        "upperUTF8" => format!("upper({})", one(call)?),
        "concat" | "CONCAT" => {
            if a.is_empty() {
                return Err(EngineError::Syntax("concat needs at least one argument".into()));
            }
            // ClickHouse's concat is NULL when any argument is NULL, as `||` is.
            let parts: Vec<String> = a.iter().map(|x| format!("ch_to_string({x})")).collect();
            format!("({})", parts.join(" || "))
        }
        "like" | "notLike" | "ilike" | "notILike" => {
            arity(call, 2..=2)?;
            let op = match name {
                "like" => "LIKE",
                "notLike" => "NOT LIKE",
                "ilike" => "ILIKE",
                _ => "NOT ILIKE",
            };
            format!("(({}) {op} ({}))", a[0], a[1])
        }
        "startsWith" | "endsWith" => {
            arity(call, 2..=2)?;
            format!("{}({}, {})", if name == "startsWith" { "starts_with" } else { "ends_with" }, a[0], a[1])
        }
        "replaceAll" => {
            arity(call, 3..=3)?;
            format!("replace({}, {}, {})", a[0], a[1], a[2])
        }
        "splitByChar" | "splitByString" => {
            arity(call, 2..=2)?;
            match (name, string_literal(&a[0])) {
                ("splitByChar", Some(sep)) if sep.len() != 1 => {
                    return Err(EngineError::Syntax(format!(
                        "Illegal separator for function splitByChar: it must be exactly one byte, not {} \
                         (BAD_ARGUMENTS)",
                        sep.len()
                    )));
                }
                ("splitByString", Some(sep)) if sep.is_empty() => {
                    return Err(EngineError::Unsupported(
                        "splitByString with an empty separator (ClickHouse splits the string into bytes)".into(),
                    ));
                }
                (_, None) => {
                    return Err(EngineError::Syntax(format!("{name}: the separator must be a constant string")));
                }
                _ => {}
            }
            // An empty string is one empty element in ClickHouse (`['']`), none in DataFusion.
            format!(
                "(CASE WHEN ({s}) = '' THEN make_array('') ELSE string_to_array({s}, {sep}) END)",
                s = a[1],
                sep = a[0]
            )
        }
        // Byte semantics, as ClickHouse (see the `strings` module).
        "lengthUTF8" => format!("ch_to_uint64(character_length({}))", one(call)?),
        "position" | "POSITION" => {
            arity(call, 2..=2)?;
            format!("ch_position({}, {})", a[0], a[1])
        }
        // `locate(needle, haystack)`, MySQL's order (ClickHouse's since 24.3).
        "locate" => {
            arity(call, 2..=2)?;
            format!("ch_position({}, {})", a[1], a[0])
        }
        "left" | "LEFT" => {
            arity(call, 2..=2)?;
            format!("ch_substring({}, 1, {})", a[0], a[1])
        }
        "right" | "RIGHT" => {
            arity(call, 2..=2)?;
            let n = format!("ch_to_int64({})", a[1]);
            // `right(s, 0)` is empty: an offset past the end (0 would be ClickHouse's error).
            format!(
                "ch_substring({s}, CASE WHEN {n} > 0 THEN -{n} WHEN {n} = 0 THEN ch_to_int64(ch_length({s})) + 1 \
                 ELSE 1 - {n} END)",
                s = a[0]
            )
        }
        "reverse" => format!("ch_reverse({})", one(call)?),
        // Code points in reverse order: DataFusion's `reverse`.
        "reverseUTF8" => format!("reverse({})", one(call)?),
        "repeat" => {
            arity(call, 2..=2)?;
            format!("repeat({}, ch_to_int64({}))", a[0], a[1])
        }
        "replaceOne" => {
            arity(call, 3..=3)?;
            format!("ch_replace_one({})", a.join(", "))
        }
        "base64Encode" => format!("ch_base64_encode({})", one(call)?),
        "leftPad" | "rightPad" | "lpad" | "rpad" => {
            arity(call, 2..=3)?;
            let f = if name.starts_with('l') { "ch_left_pad" } else { "ch_right_pad" };
            format!("{f}({}, {}, {})", a[0], a[1], a.get(2).map_or("' '", String::as_str))
        }
        "positionCaseInsensitive" => {
            arity(call, 2..=2)?;
            format!("ch_position(ch_lower_ascii(ch_to_string({})), ch_lower_ascii(ch_to_string({})))", a[0], a[1])
        }
        // Regular expressions: RE2 in ClickHouse, Rust's `regex` here (see `regex_pattern`).
        "replaceRegexpOne" | "replaceRegexpAll" | "regexp_replace" => {
            arity(call, 3..=3)?;
            // The pattern as written: the function reads it (see the `strings` module).
            let pattern = sql_string(&regex_pattern(name, &a[1])?);
            let f = if name == "replaceRegexpOne" { "ch_replace_regexp_one" } else { "ch_replace_regexp_all" };
            format!("{f}({}, {pattern}, {})", a[0], a[2])
        }
        "extractAll" => {
            arity(call, 2..=2)?;
            format!("ch_extract_all({}, {})", a[0], sql_string(&regex_pattern(name, &a[1])?))
        }
        // Any needle (an array literal of strings) found in the text, as bytes; an empty needle is found.
        "multiSearchAny" => {
            arity(call, 2..=2)?;
            let needles = match parse_expr(&a[1])? {
                Expr::Array(array) if !array.elem.is_empty() => array.elem,
                _ => {
                    return Err(EngineError::Unsupported(
                        "multiSearchAny with needles that are not a non-empty array literal".into(),
                    ));
                }
            };
            let mut found = Vec::with_capacity(needles.len());
            for n in needles {
                match n {
                    Expr::Value(ValueWithSpan { value: SqlValue::SingleQuotedString(t), .. }) => {
                        found.push(format!("ch_position({}, {}) > 0", a[0], sql_string(&t)));
                    }
                    _ => {
                        return Err(EngineError::Unsupported(
                            "multiSearchAny with needles that are not strings".into(),
                        ));
                    }
                }
            }
            format!("ch_to_uint8({})", found.join(" OR "))
        }
        "match" | "extract" => {
            arity(call, 2..=2)?;
            // ClickHouse compiles the pattern with RE2's `dot_nl`: `.` matches a newline.
            let pattern = sql_string(&format!("(?s){}", regex_pattern(name, &a[1])?));
            match name {
                "match" => format!("ch_match({}, {})", a[0], sql_string(&regex_pattern(name, &a[1])?)),
                _ => format!(
                    "CASE WHEN ({s}) IS NULL THEN NULL ELSE coalesce(array_element(regexp_match({s}, {pattern}), 1), \
                     '') END",
                    s = a[0]
                ),
            }
        }
        // `MD5` gives 16 bytes, which this engine's strings cannot hold: only their hex is computed.
        "hex" | "HEX" if matches!(parse_expr(one(call)?), Ok(Expr::Function(ref f)) if f.name.to_string() == "ch_md5") =>
        {
            format!("ch_md5_hex({}", &one(call)?["ch_md5(".len()..])
        }
        "hex" | "HEX" => format!("ch_hex({})", typed_literal_text(one(call)?)),
        "MD5" => format!("ch_md5({})", one(call)?),
        // `toTypeName` of a literal is answered before this (see the rewriter); of a column, its declared type.
        "toTypeName" => match bare_column(one(call)?) {
            Some(_) => format!("ch_type_name({})", one(call)?),
            None => return Err(EngineError::Unsupported("toTypeName of an expression (not a column)".into())),
        },
        "domain"
        | "domainWithoutWWW"
        | "protocol"
        | "path"
        | "pathFull"
        | "queryString"
        | "fragment"
        | "topLevelDomain"
        | "cutQueryString"
        | "cutFragment"
        | "cutQueryStringAndFragment"
        | "cutWWW" => {
            format!("ch_url_{}({})", snake_case(name), one(call)?)
        }
        "extractURLParameter"
        | "decodeURLComponent"
        | "encodeURLComponent"
        | "cityHash64"
        | "sipHash64"
        | "xxHash64"
        | "toUUID"
        | "toUUIDOrNull"
        | "toUUIDOrZero"
        | "isValidJSON"
        | "format"
        | "formatReadableSize"
        | "formatReadableQuantity" => {
            format!("ch_{}({})", snake_case(name), a.join(", "))
        }
        // `visitParamExtractInt` is `simpleJSONExtractInt` under its older name.
        n if (n.starts_with("simpleJSON") || n.starts_with("visitParam"))
            && matches!(
                n.trim_start_matches("simpleJSON").trim_start_matches("visitParam"),
                "Has" | "ExtractString" | "ExtractRaw" | "ExtractInt" | "ExtractUInt" | "ExtractFloat" | "ExtractBool"
            ) =>
        {
            arity(call, 2..=2)?;
            let rest = n.trim_start_matches("simpleJSON").trim_start_matches("visitParam");
            format!("ch_simple_json_{}({}, {})", snake_case(rest).replace("u_int", "uint"), a[0], a[1])
        }
        "trim" | "trimBoth" => format!("btrim({})", one(call)?),
        "trimLeft" | "ltrim" => format!("ltrim({})", one(call)?),
        "trimRight" | "rtrim" => format!("rtrim({})", one(call)?),
        "substring" | "SUBSTRING" | "substr" | "SUBSTR" | "Substr" | "mid" => {
            arity(call, 2..=3)?;
            format!("ch_substring({})", a.join(", "))
        }
        "substringUTF8" => {
            arity(call, 2..=3)?;
            format!("ch_substring_utf8({})", a.join(", "))
        }
        _ => return Ok(None),
    };
    parse_expr(&sql).map(Some)
}

/// JSON.
fn json(call: &Call, nullable: &dyn Fn(&str) -> bool) -> Result<Option<Expr>, EngineError> {
    let (a, name) = (&call.args, call.name.as_str());
    let sql = match name {
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
            // `Array(T)`: each element of the array (its raw JSON) read as `T`; anything but an array is `[]`.
            if let Some(element) = ty.strip_prefix("Array(").and_then(|t| t.strip_suffix(')')) {
                // Of a Nullable document, ClickHouse's type would be a Nullable array: its error.
                if nullable_argument(&a[0], nullable) {
                    return Err(EngineError::Syntax(format!(
                        "Nested type Array({}) cannot be inside Nullable type (ILLEGAL_TYPE_OF_ARGUMENT)",
                        element.trim()
                    )));
                }
                match element.trim() {
                    // Numbers and text (see `Json::TypedArray`).
                    t @ ("Int8" | "Int16" | "Int32" | "Int64" | "UInt8" | "UInt16" | "UInt32" | "UInt64"
                    | "Float32" | "Float64" | "String") => format!("ch_json_array_{}({path})", t.to_lowercase()),
                    other => return Err(EngineError::Unsupported(format!("JSONExtract to type Array({other})"))),
                }
            } else {
                json_extract_typed(&path, &ty)?
            }
        }
        _ => return Ok(None),
    };
    parse_expr(&sql).map(Some)
}

/// `JSONExtract(json, path…, 'T')` of a scalar type `T`, from the JSON and path arguments' text.
fn json_extract_typed(path: &str, ty: &str) -> Result<String, EngineError> {
    Ok(match ty {
        "String" => format!("ch_json_string({path})"),
        "Bool" => format!("ch_json_bool({path})"),
        // Within the type's range or 0, booleans 1/0 (see `Json::Typed`); the cast is then exact.
        t @ ("Int8" | "Int16" | "Int32" | "Int64" | "UInt8" | "UInt16" | "UInt32" | "UInt64") => {
            let (signed, bits) = t.strip_prefix('U').map_or((true, &t[3..]), |u| (false, &u[3..]));
            let f = cast_fn(t).unwrap_or("ch_to_int64");
            format!("{f}(ch_json_typed_{}{bits}({path}))", if signed { "i" } else { "u" })
        }
        t @ ("Float32" | "Float64") => {
            format!("{}(ch_json_typed_float({path}))", cast_fn(t).unwrap_or("ch_to_float64"))
        }
        other => return Err(EngineError::Unsupported(format!("JSONExtract to type {other}"))),
    })
}

/// Where a rewrite's SQL takes its lambda (the rewrites' SQL dialect reads `x -> e` as an operator).
const LAMBDA: &str = "__tb_lambda";

/// `sql` with [`LAMBDA`] replaced by the lambda `param -> body`.
fn with_lambda(sql: &str, param: &str, body: &str) -> Result<Expr, EngineError> {
    use datafusion::sql::sqlparser::ast::{LambdaFunction, LambdaFunctionParameter, LambdaSyntax, OneOrManyWithParens};
    struct Place(Option<Expr>);
    impl VisitorMut for Place {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if matches!(e, Expr::Identifier(i) if i.value == LAMBDA)
                && let Some(lambda) = self.0.take()
            {
                *e = lambda;
            }
            ControlFlow::Continue(())
        }
    }
    // The body in parentheses: printed into an outer call's text, `x -> (body)` reads back as one lambda (see
    // `parse_expr`).
    let lambda = Expr::Lambda(LambdaFunction {
        params: OneOrManyWithParens::One(LambdaFunctionParameter { name: Ident::new(param), data_type: None }),
        body: Box::new(Expr::Nested(Box::new(parse_expr(body)?))),
        syntax: LambdaSyntax::Arrow,
    });
    let mut expr = parse_expr(sql)?;
    let _ = VisitMut::visit(&mut expr, &mut Place(Some(lambda)));
    Ok(expr)
}

/// Conversions and numbers.
fn numbers(call: &Call, _nullable: &dyn Fn(&str) -> bool) -> Result<Option<Expr>, EngineError> {
    let (a, name) = (&call.args, call.name.as_str());
    let sql = match name {
        "toString" => format!("ch_to_string({})", one(call)?),
        // An aggregate's argument the hints read as Nullable (see `mark_nullable_aggregate_arguments`): itself.
        "__tb_nullable" => format!("ch_nullable_marker({})", one(call)?),
        "__tb_not_nullable" => format!("ch_not_nullable_marker({})", one(call)?),
        // `LEFT ARRAY JOIN`'s array (see `array_joins_as_subqueries`).
        "__tb_left_array" => format!("ch_left_array({})", one(call)?),
        // `toDecimal32(x, S)`: `Decimal(9, S)`; 64 and 128 bits are precision 18 and 38 (see the `decimals` module).
        n if n.starts_with("toDecimal") && n != "toDecimalString" => {
            let rest = &n["toDecimal".len()..];
            let (bits, mode) = match rest.split_at(rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())) {
                (bits, "") => (bits, "error"),
                (bits, "OrNull") => (bits, "null"),
                (bits, "OrZero") => (bits, "zero"),
                _ => return Ok(None),
            };
            let precision = match bits {
                "32" => 9,
                "64" => 18,
                "128" => 38,
                _ => return Ok(None),
            };
            arity(call, 2..=2)?;
            format!("ch_to_decimal({}, {precision}, {}, '{mode}')", a[0], a[1])
        }
        // `CAST(x, 'T')`: as `CAST(x AS T)`.
        "CAST" | "cast" | "Cast" if a.len() == 2 && string_literal(&a[1]).is_some() => {
            conversion(&a[0], &string_literal(&a[1]).unwrap_or_default())?
        }
        n if n.starts_with("to") && cast_fn(&n[2..]).is_some() => {
            format!("{}({})", cast_fn(&n[2..]).unwrap_or_default(), one(call)?)
        }
        n if n.starts_with("to") && n.ends_with("OrNull") && cast_fn(&n[2..n.len() - 6]).is_some() => {
            format!("{}_or_null({})", cast_fn(&n[2..n.len() - 6]).unwrap_or_default(), one(call)?)
        }
        // `toInt32OrZero(s)`, `toInt32OrDefault(s)`: 0 of the type where the text does not parse.
        n if n.starts_with("to")
            && (n.ends_with("OrZero") || (n.ends_with("OrDefault") && a.len() == 1))
            && cast_fn(n[2..].trim_end_matches("OrZero").trim_end_matches("OrDefault")).is_some() =>
        {
            let f = cast_fn(n[2..].trim_end_matches("OrZero").trim_end_matches("OrDefault")).unwrap_or_default();
            let x = one(call)?;
            if n.ends_with("OrZero") {
                // A NULL stays NULL (`toInt32OrZero(ns)` is a Nullable(Int32)); `…OrDefault` gives the default.
                format!("CASE WHEN ({x}) IS NULL THEN NULL ELSE coalesce({f}_or_null({x}), {f}(0)) END")
            } else {
                // A number converts accurately: an inexact or out-of-range one gets the default.
                format!("coalesce(ch_accurate({x}, {f}_or_null({x})), {f}(0))")
            }
        }
        "round" | "ROUND" | "roundBankers" | "floor" | "FLOOR" | "ceil" | "CEIL" | "ceiling" | "trunc" | "truncate"
        | "TRUNCATE" => {
            arity(call, 1..=2)?;
            let f = match name.to_ascii_lowercase().as_str() {
                "round" => "ch_round",
                "roundbankers" => "ch_round_bankers",
                "floor" => "ch_floor",
                "ceil" | "ceiling" => "ch_ceil",
                _ => "ch_trunc",
            };
            format!("{f}({}, {})", typed_literal_text(&a[0]), a.get(1).map(String::as_str).unwrap_or("0"))
        }
        // ClickHouse's result types and edge values (see the `arithmetic` module); literals typed as ClickHouse types them.
        "intDiv" | "intDivOrZero" | "modulo" | "moduloOrZero" => {
            arity(call, 2..=2)?;
            let f = match name {
                "intDiv" => "ch_int_div",
                "intDivOrZero" => "ch_int_div_or_zero",
                "modulo" => "ch_modulo",
                _ => "ch_modulo_or_zero",
            };
            format!("{f}({}, {})", typed_literal_text(&a[0]), typed_literal_text(&a[1]))
        }
        "abs" | "ABS" => format!("ch_abs({})", typed_literal_text(one(call)?)),
        "bitAnd" | "bitOr" | "bitXor" => {
            arity(call, 2..=2)?;
            let f = match name {
                "bitAnd" => "ch_bit_and",
                "bitOr" => "ch_bit_or",
                _ => "ch_bit_xor",
            };
            format!("{f}({}, {})", typed_literal_text(&a[0]), typed_literal_text(&a[1]))
        }
        "bitNot" => format!("ch_bit_not({})", typed_literal_text(one(call)?)),
        // True when an odd number of the arguments are: `<>` of booleans, left to right.
        "xor" => {
            arity(call, 2..=usize::MAX)?;
            let conditions: Vec<String> = a.iter().map(|x| format!("ch_cond({x})")).collect();
            format!("ch_to_uint8({})", conditions.join(" <> "))
        }
        "divide" => {
            arity(call, 2..=2)?;
            format!("ch_divide({}, {})", a[0], a[1])
        }
        "greatest" | "least" => {
            arity(call, 2..=usize::MAX)?;
            let args: Vec<String> = a.iter().map(|x| typed_literal_text(x)).collect();
            format!("ch_{name}({})", args.join(", "))
        }
        // In Float64, a Float32 argument too, as ClickHouse computes them.
        // A negative number's square root is NaN, where DataFusion's `sqrt` raises an error.
        "sqrt" => {
            let x = format!("CAST({} AS DOUBLE)", one(call)?);
            format!("CASE WHEN {x} < 0 THEN CAST('NaN' AS DOUBLE) ELSE sqrt({x}) END")
        }
        "exp" => format!("exp(CAST({} AS DOUBLE))", one(call)?),
        // Correctly rounded, as ClickHouse's (see the `math` module); `log` is the natural logarithm.
        "ln" | "log2" | "log10" | "log1p" | "sin" | "cos" | "cbrt" => {
            format!("ch_{}(CAST({} AS DOUBLE))", name.to_ascii_lowercase(), one(call)?)
        }
        "log" | "LOG" => format!("ch_ln(CAST({} AS DOUBLE))", one(call)?),
        // Int8: -1, 0 or 1; NaN counts as positive, as in ClickHouse.
        "sign" => {
            let x = one(call)?;
            format!(
                "ch_to_int8(CASE WHEN ({x}) IS NULL THEN NULL WHEN ({x}) < 0 THEN -1 WHEN ({x}) = 0 THEN 0 ELSE 1 END)"
            )
        }
        "pow" | "power" => format!("{}({})", name.to_ascii_lowercase(), a.join(", ")),
        _ => return Ok(None),
    };
    parse_expr(&sql).map(Some)
}

/// A window function: ranks as they are; `count`, `sum`, `avg`, `min`, `max` over a frame that starts at the
/// partition's first row (ClickHouse adds rows to the running state as the frame grows, in order; a sliding frame
/// is refused for `sum`/`avg`, whose float rounding would differ); `lag`/`lagInFrame`, `lead`/`leadInFrame` of a
/// non-`Nullable` column, whose missing rows are the type's default (0, ''), not NULL; `ntile`.
pub(super) fn window_function(expr: &Expr, call: &Call, nullable: &dyn Fn(&str) -> bool) -> Result<Expr, EngineError> {
    use datafusion::sql::sqlparser::ast::{WindowFrameBound, WindowType};
    let Expr::Function(f) = expr else { unreachable!("called on functions only") };
    if matches!(call.name.to_ascii_lowercase().as_str(), "row_number" | "rank" | "dense_rank") {
        return lowercase_name(expr);
    }
    let Some(WindowType::WindowSpec(spec)) = &f.over else {
        return Err(EngineError::Unsupported(format!("the named window of `{}` (write the window inline)", call.name)));
    };
    let frame = spec.window_frame.as_ref();
    if frame.is_some_and(|fr| fr.units == datafusion::sql::sqlparser::ast::WindowFrameUnits::Groups) {
        return Err(EngineError::Unsupported("a GROUPS window frame".into()));
    }
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
            if spec.order_by.is_empty() {
                return Err(EngineError::Syntax("Window function ntile requires an ORDER BY (BAD_ARGUMENTS)".into()));
            }
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
                    // A frame that may hold no rows (ending before the current row, or starting after it) gives
                    // the type's default in ClickHouse, where DataFusion gives NULL.
                    let may_be_empty = frame.is_some_and(|fr| {
                        matches!(fr.end_bound, Some(WindowFrameBound::Preceding(Some(_))))
                            || matches!(fr.start_bound, WindowFrameBound::Following(Some(_)))
                    });
                    match (may_be_empty, other) {
                        (false, _) => windowed(&format!("{f}({})", a[0]), &|e| e),
                        (true, "sum" | "min" | "max") if plain_column(&a[0]) => {
                            windowed(&format!("{f}({})", a[0]), &|e| format!("ch_zero_if_null({e})"))
                        }
                        _ => Err(EngineError::Unsupported(format!(
                            "`{}` of an expression, a Nullable column or an average over a frame that may hold no \
                             rows (ClickHouse gives the type's default there)",
                            call.name
                        ))),
                    }
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
            if offset.trim().starts_with('-') {
                return Err(EngineError::Syntax(format!(
                    "The offset of {} must not be negative (ARGUMENT_OUT_OF_BOUND)",
                    call.name
                )));
            }
            // The default typed as ClickHouse types its literal: the planner then checks it fits the value's type.
            match a.get(2) {
                Some(default) => windowed(&format!("{f}({}, {offset}, {})", a[0], typed_literal_text(default)), &|e| e),
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
        "percent_rank" | "cume_dist" => {
            arity(call, 0..=0)?;
            windowed(&format!("{lower}()"), &|e| e)
        }
        // A frame without rows gives the type's default, as in ClickHouse (a non-Nullable column never holds NULL,
        // so NULL here means no row). ClickHouse skips NULLs (`any`), which DataFusion does not: Nullable columns
        // and expressions are refused.
        "first_value" | "last_value" | "nth_value" if plain_column(&a[0]) => {
            arity(call, if lower == "nth_value" { 2..=2 } else { 1..=1 })?;
            if lower == "nth_value" && a[1].trim().parse::<i64>().is_ok_and(|n| n <= 0) {
                return Err(EngineError::Syntax("The offset of nth_value must be positive (BAD_ARGUMENTS)".into()));
            }
            windowed(&format!("{lower}({})", a.join(", ")), &|e| format!("ch_zero_if_null({e})"))
        }
        _ => Err(EngineError::Unsupported(format!("window function `{}`", call.name))),
    }
}

/// `extractURLParameter` → `extract_url_parameter`, `cityHash64` → `city_hash64`: the `ch_` UDFs' names.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let after_lower = i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
        let before_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
        if c.is_ascii_uppercase() && i > 0 && (after_lower || (before_lower && chars[i - 1].is_ascii_uppercase())) {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A regular expression's pattern (a string literal), for Rust's `regex`. RE2 and `regex` agree but for the classes
/// `\\d`, `\\s` and `\\w`, ASCII in RE2 and Unicode in `regex`: written out here as RE2's ASCII sets (`\\s` is RE2's
/// `[\\t\\n\\f\\r ]`, without `\\v`); the word boundaries `\\b`, `\\B` are refused. (POSIX classes, `[[:alpha:]]`,
/// are ASCII in both.)
fn regex_pattern(name: &str, arg: &str) -> Result<String, EngineError> {
    let pattern = string_literal(arg)
        .ok_or_else(|| EngineError::Unsupported(format!("`{name}` with a pattern that is not a literal")))?;
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('s') => out.push_str("[\\t\\n\\f\\r ]"),
            Some('S') => out.push_str("[^\\t\\n\\f\\r ]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('b' | 'B') => {
                return Err(EngineError::Unsupported(format!(
                    "`{name}` with a word boundary (\\b, \\B), ASCII in RE2 and Unicode in this engine"
                )));
            }
            // Rust's word-edge assertions (`\<`, `\>`).
            Some(c @ ('<' | '>')) => {
                return Err(EngineError::Unsupported(format!(
                    "`{name}` with `\\{c}` (read differently by RE2 and this engine)"
                )));
            }
            // A Unicode property in braces: the general categories and common scripts both read; not Rust's others
            // (`\p{Emoji}`).
            Some(c @ ('p' | 'P')) if chars.clone().next() == Some('{') => {
                let property: String = chars.clone().skip(1).take_while(|c| *c != '}').collect();
                const KNOWN: &[&str] = &[
                    "L",
                    "Lu",
                    "Ll",
                    "Lt",
                    "Lm",
                    "Lo",
                    "M",
                    "Mn",
                    "Mc",
                    "Me",
                    "N",
                    "Nd",
                    "Nl",
                    "No",
                    "P",
                    "Pc",
                    "Pd",
                    "Ps",
                    "Pe",
                    "Pi",
                    "Pf",
                    "Po",
                    "S",
                    "Sm",
                    "Sc",
                    "Sk",
                    "So",
                    "Z",
                    "Zs",
                    "Zl",
                    "Zp",
                    "C",
                    "Cc",
                    "Cf",
                    "Co",
                    "Latin",
                    "Greek",
                    "Cyrillic",
                    "Han",
                    "Arabic",
                    "Hebrew",
                    "Hiragana",
                    "Katakana",
                    "Hangul",
                    "Thai",
                    "Devanagari",
                    "Armenian",
                    "Georgian",
                ];
                if !KNOWN.contains(&property.as_str()) {
                    return Err(EngineError::Unsupported(format!(
                        "`{name}` with the Unicode property `\\{c}{{{property}}}` (RE2 may not have it)"
                    )));
                }
                out.push('\\');
                out.push(c);
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    // Syntax Rust's `regex` reads and RE2 does not (or reads otherwise): class set operations (`[a&&b]`, `--`,
    // `~~`), the flags `x`, `u` and `R`, repetitions past RE2's 1000.
    if ["&&", "--", "~~"].iter().any(|op| pattern.contains(op)) {
        return Err(EngineError::Unsupported(format!(
            "`{name}` with `&&`, `--` or `~~` in the pattern (read differently by RE2)"
        )));
    }
    let flags = pattern.match_indices("(?").any(|(i, _)| {
        pattern[i + 2..].chars().take_while(|c| *c != ')' && *c != ':').any(|c| matches!(c, 'x' | 'u' | 'R'))
    });
    let repeats = pattern.match_indices('{').any(|(i, _)| {
        pattern[i + 1..].split(['}', ',']).take(2).any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 1000))
    });
    if flags || repeats {
        return Err(EngineError::Unsupported(format!(
            "`{name}` with the flag x, u or R, or a repetition past 1000 (read differently by RE2)"
        )));
    }
    Ok(out)
}

pub(super) fn one(call: &Call) -> Result<&str, EngineError> {
    arity(call, 1..=1)?;
    Ok(&call.args[0])
}

pub(super) fn lowercase_name(expr: &Expr) -> Result<Expr, EngineError> {
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

/// A `DateTime64` precision this engine stores with more digits (1 and 2 as 3, …): a value computed from it would be
/// printed with those digits (`toString` gives `….030` where ClickHouse gives `….03`).
pub(super) fn precision_refused(what: &str, precision: u8) -> EngineError {
    EngineError::Unsupported(format!(
        "{what} with precision {precision} (this engine holds 0, 3, 6 or 9 digits of a second, and would print \
         {precision} as {})",
        precision.next_multiple_of(3)
    ))
}
