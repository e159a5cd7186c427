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
        ("SELECT * FROM t SAMPLE 1 / 2", "SAMPLE"),
        ("SELECT * FROM t SETTINGS max_threads = 1, join_use_nulls = 1", "the setting `join_use_nulls = 1`"),
        ("SELECT a FROM t LEFT ARRAY JOIN [a, 1] AS x", "ARRAY JOIN LEFT of an expression"),
        ("SELECT a FROM t JOIN u ON t.a = u.a ARRAY JOIN arr", "ARRAY JOIN with other joins"),
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
fn in_array_literal_is_clickhouses_in_and_a_list_for_datafusion() {
    // Read as ClickHouse reads it (and names the column): `in(a, [..])`.
    let q = parse("SELECT 1 FROM t WHERE a IN ['x', 'y''z'] AND b NOT IN [1]").unwrap();
    assert_eq!(q.to_string(), "SELECT 1 FROM t WHERE in(a, ['x', 'y''z']) AND notIn(b, [1])");
    // Translated for DataFusion: a list.
    let q = translate(r"SELECT 1 FROM t WHERE a IN ['it\'s', 'back\\slash'] AND b NOT IN [] AND c IN []").unwrap();
    let text = q.statement.to_string();
    assert!(text.contains(r"(a IN ('it''s', 'back\slash')) AND true AND false"), "{text}");
    // Numbers as written, as in `b IN (1, 300, -1)`: membership compares values, and no cast per element.
    let q = translate("SELECT 1 FROM t WHERE b IN [1, 300, -1] AND c NOT IN [70000]").unwrap();
    let text = q.statement.to_string();
    assert!(text.contains("(b IN (1, 300, -1)) AND (c NOT IN (70000))"), "{text}");
    // An array elsewhere keeps ClickHouse's element types.
    let text = translate("SELECT [1, 300] AS a").unwrap().statement.to_string();
    assert!(text.contains("ch_to_uint8(1), ch_to_uint16(300)"), "{text}");
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

fn strings_of(sql: &str) -> Vec<String> {
    let q = parse_for(sql, Flavor::ClickHouse).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut strings = Vec::new();
    let _ = Visit::visit(&q, &mut StringsOf(&mut strings));
    strings
}

#[test]
fn string_literals_are_read_as_clickhouse_reads_them() {
    // Each as ClickHouse 26.9 reads it (measured with chDB): an escape it does not know keeps its backslash (so
    // `LIKE 'a\%'` stays an escaped `%`), `\xHH` is a byte, `\N` is nothing; sqlparser alone reads `\c` as `c`,
    // `\Z` as U+001A and `\x41` as `x41`.
    assert_eq!(
        strings_of(r"SELECT 'a\x41', '\c', '\\', '\N', '\v', '\a', '\e', '\Z', 'a\'b', 'a''b', '\%', '\_', '\/', '\0'"),
        ["aA", r"\c", r"\", "", "\u{b}", "\u{7}", "\u{1b}", r"\Z", "a'b", "a'b", r"\%", r"\_", "/", "\0"]
    );
    assert_eq!(
        strings_of(r"SELECT 'x\xe2\x82\xacy', X'414243', x'e282ac', $$it's \n$$"),
        ["x€y", "ABC", "€", r"it's \n"]
    );
    // Bytes that are not UTF-8 text, and a `\x` without two hex digits, are refused, naming the literal.
    for sql in [r"SELECT '\xff'", r"SELECT '\xZ1'", "SELECT x'ff'", "SELECT x'4'"] {
        let e = parse_for(sql, Flavor::ClickHouse).unwrap_err().to_string();
        assert!(e.contains("not supported"), "{sql}: {e}");
    }
}

#[test]
fn numeric_literals_are_read_as_clickhouse_reads_them() {
    let q = parse_for("SELECT 0x1F, 0X0a, 0xFFFFFFFFFFFFFFFF, 0b101, 0b1_0, 0x1_F, 1_000", Flavor::ClickHouse).unwrap();
    assert_eq!(q.to_string(), "SELECT 31, 10, 18446744073709551615, 5, 2, 31, 1_000");
    // A word right after a number is a syntax error, as in ClickHouse, never an alias (`0b2` was `0 AS b2`).
    for sql in ["SELECT 1abc", "SELECT 0x1Fz", "SELECT 0b2", "SELECT 0xg"] {
        let e = parse_for(sql, Flavor::ClickHouse).unwrap_err().to_string();
        assert!(e.contains("right after the number"), "{sql}: {e}");
    }
    let e = parse_for("SELECT 0x10000000000000000", Flavor::ClickHouse).unwrap_err().to_string();
    assert!(e.contains("beyond UInt64"), "{e}");
}

#[test]
fn clickhouse_spellings_the_parser_lacks_are_read() {
    for (sql, read) in [
        ("SELECT 7 DIV 2, x MOD 3 FROM t", "SELECT intDiv(7, 2), modulo(x, 3) FROM t"),
        ("SELECT t.1, t.2.1 FROM t", "SELECT tupleElement(t, 1), tupleElement(tupleElement(t, 2), 1) FROM t"),
        ("SELECT a FROM t JOIN u USING id", "SELECT a FROM t JOIN u USING(id)"),
        ("SELECT a FROM t WHERE a IN tuple(1, 2)", "SELECT a FROM t WHERE a IN (1, 2)"),
        ("SELECT d + INTERVAL '3 hours', INTERVAL '1 day' FROM t", "SELECT d + INTERVAL 3 HOUR, INTERVAL 1 DAY FROM t"),
        ("SELECT d + INTERVAL '-1 hour' FROM t", "SELECT d + INTERVAL -1 HOUR FROM t"),
        ("SELECT count() FILTER (WHERE a > 1) FROM t", "SELECT count() FILTER (WHERE a > 1) FROM t"),
        (
            "SELECT a FROM t ANY LEFT JOIN u ON t.a = u.a",
            "SELECT a FROM t LEFT JOIN u ON t.a = u.a SETTINGS join_default_strictness = 'ANY'",
        ),
        (
            "SELECT a FROM t LEFT ANY JOIN u ON t.a = u.a",
            "SELECT a FROM t LEFT JOIN u ON t.a = u.a SETTINGS join_default_strictness = 'ANY'",
        ),
        ("SELECT a FROM t ALL INNER JOIN u ON t.a = u.a", "SELECT a FROM t INNER JOIN u ON t.a = u.a"),
        ("SELECT a FROM t FINAL", "SELECT a FROM t SETTINGS final = true"),
        (
            "SELECT CAST(x AS DATE), CAST(y AS Nullable( UInt8 )), CAST(z AS INT UNSIGNED), CAST(w AS Enum8('a'=1)) FROM t",
            "SELECT CAST(x, 'DATE'), CAST(y, 'Nullable(UInt8)'), CAST(z, 'INT UNSIGNED'), CAST(w, 'Enum8(''a'' = 1)') FROM t",
        ),
        ("SELECT 1::Date, x::DOUBLE FROM t", "SELECT CAST('1', 'Date'), CAST(x, 'DOUBLE') FROM t"),
    ] {
        let q = parse_for(sql, Flavor::ClickHouse).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(q.to_string(), read, "{sql}");
    }
    // `IN tuple(1)` is a one-element tuple, `IN (1)` is not: left to the parser, which refuses it.
    assert!(parse_for("SELECT a FROM t WHERE a IN tuple(1)", Flavor::ClickHouse).is_err());
    // ANY on some joins and the default on others cannot be one setting.
    let e = parse_for("SELECT 1 FROM t ANY LEFT JOIN u ON t.a = u.a JOIN v ON v.a = t.a", Flavor::ClickHouse)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ANY JOIN next to joins of the default strictness"), "{e}");
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
    let t = translate("WITH t AS (SELECT 1 AS x) SELECT x FROM t UNION ALL SELECT x FROM t ORDER BY x").unwrap();
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

#[test]
fn hash_comments_are_read_as_clickhouse_reads_them() {
    // `# ` and `#!` start a comment to the end of the line; inside strings, names and other comments `#` is text.
    for (sql, blanked) in [
        ("SELECT 1 # why\n, 2", "SELECT 1      \n, 2"),
        ("#!/usr/bin/env clickhouse\nSELECT 1", "                         \nSELECT 1"),
        ("SELECT '# not', `# not` -- # not\n", "SELECT '# not', `# not` -- # not\n"),
        ("SELECT 'it\\'s # not' /* # not */ # yes", "SELECT 'it\\'s # not' /* # not */      "),
        ("SELECT $$ # not $$ # é", "SELECT $$ # not $$     "),
    ] {
        assert_eq!(blank_hash_comments(sql), blanked, "{sql}");
    }
    assert!(matches!(blank_hash_comments("SELECT 1"), std::borrow::Cow::Borrowed(_)));
    // Any other `#` stays, and is a syntax error, as in ClickHouse.
    assert_eq!(blank_hash_comments("SELECT 1 #comment"), "SELECT 1 #comment");
    assert!(lex("SELECT 1 #comment").is_err() || parse_for("SELECT 1 #comment", Flavor::DataFusion).is_err());
    assert!(parse_for("SELECT 1 # a comment\n, 2 AS two", Flavor::DataFusion).is_ok());
}

#[test]
fn array_join_lists_are_read_as_one_relation() {
    let mark = ARRAY_JOIN_MARK;
    let q = parse_for("SELECT x FROM t ARRAY JOIN arrayMap(v -> v, a) AS x, b y, c WHERE x > 0", Flavor::ClickHouse)
        .unwrap();
    let text = q.to_string();
    assert!(text.contains(&format!("ARRAY JOIN `{mark}`(arrayMap(v -> v, a), b, c) AS `{mark}` (x, y, ``)")), "{text}");
    // One column name (qualified or not, aliased or not) keeps the parser's own form.
    for sql in ["SELECT 1 FROM t ARRAY JOIN a", "SELECT 1 FROM t ARRAY JOIN t.a AS x", "SELECT 1 FROM t ARRAY JOIN a x"]
    {
        assert!(!parse_for(sql, Flavor::ClickHouse).unwrap().to_string().contains(mark), "{sql}");
    }
    // The list ends at the next clause, join or closing parenthesis, not at a call named like one.
    let q = parse_for(
        "SELECT * FROM (SELECT x FROM t ARRAY JOIN [left(s, 1), right(s, 1)] AS x) AS u LEFT JOIN v ON 1",
        Flavor::ClickHouse,
    )
    .unwrap();
    assert!(q.to_string().contains(&format!("[left(s, 1), right(s, 1)]) AS `{mark}` (x)) AS u LEFT JOIN v")), "{q}");
    // The mark cannot be written by a query.
    let forged = format!("SELECT x FROM t ARRAY JOIN `{mark}`(a) AS `{mark}`(x)");
    let e = parse_for(&forged, Flavor::ClickHouse).unwrap_err().to_string();
    assert!(e.contains("U+E000 and U+E001"), "{e}");
    let e = parse("SELECT 1 AS `a\u{E000}1`").unwrap_err().to_string();
    assert!(e.contains("U+E000 and U+E001"), "{e}");
    // Nor by a JWT's filter or a delete condition.
    let e = parse_condition("`\u{E001}x` = 1").unwrap_err().to_string();
    assert!(e.contains("U+E000 and U+E001"), "{e}");
    // An empty item is a syntax error, named.
    let e = parse_for("SELECT x FROM t ARRAY JOIN a, , b", Flavor::ClickHouse).unwrap_err().to_string();
    assert!(e.contains("empty item in an ARRAY JOIN list"), "{e}");
}

#[test]
fn cte_column_lists_and_scalars_with_calls_are_told_apart() {
    let q = parse("WITH t (a, b) AS (SELECT 1, 2) SELECT a FROM t").unwrap();
    assert!(q.to_string().starts_with("WITH t (a, b) AS (SELECT 1, 2)"), "{q}");
    // A scalar that is a call of one column: inlined, not a CTE.
    let q = parse_for("WITH sumState(id) AS st SELECT finalizeAggregation(st) FROM t", Flavor::ClickHouse).unwrap();
    assert_eq!(q.to_string(), "SELECT finalizeAggregation((sumState(id))) AS `finalizeAggregation(st)` FROM t");
}
