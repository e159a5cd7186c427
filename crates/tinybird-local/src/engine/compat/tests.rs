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
