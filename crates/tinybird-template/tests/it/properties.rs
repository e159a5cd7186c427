//! Property tests: parameter values never escape their literal or identifier, and no input makes the parser
//! or the renderer panic.

use proptest::prelude::*;
use tinybird_template::{ParamValue, RenderOptions, Template, Variables};

/// Read one single-quoted ClickHouse literal starting at `sql[0]`; returns (decoded value, bytes consumed).
fn read_string_literal(sql: &str) -> Option<(String, usize)> {
    let mut chars = sql.char_indices();
    if chars.next()?.1 != '\'' {
        return None;
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => return Some((out, i + 1)),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    '0' => '\0',
                    'r' => '\r',
                    'b' => '\x08',
                    't' => '\t',
                    'z' => '\x1a',
                    'n' => '\n',
                    other => other,
                });
            }
            c => out.push(c),
        }
    }
    None
}

/// Read one backquoted identifier.
fn read_identifier(sql: &str) -> Option<(String, usize)> {
    let mut chars = sql.char_indices();
    if chars.next()?.1 != '`' {
        return None;
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '`' => return Some((out, i + 1)),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    '0' => '\0',
                    'r' => '\r',
                    'b' => '\x08',
                    't' => '\t',
                    'z' => '\x1a',
                    'n' => '\n',
                    other => other,
                });
            }
            c => out.push(c),
        }
    }
    None
}

/// Case count: `PROPTEST_CASES` when set (for long local fuzzing runs), else the CI default.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn render(body: &str, vars: &Variables) -> String {
    Template::parse(body).unwrap().render(vars, &RenderOptions::default()).unwrap().sql
}

/// Values full of what could break out: quotes, backslashes, `%`, newlines, NUL, braces, backticks, unicode.
fn nasty() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("\"".to_string()),
        Just("`".to_string()),
        Just("%".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\0".to_string()),
        Just("\x1a".to_string()),
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{%".to_string()),
        Just("--".to_string()),
        Just("/*".to_string()),
        Just(";".to_string()),
        Just(".".to_string()),
        Just(",".to_string()),
        Just("\\'".to_string()),
        Just("' OR 1=1 --".to_string()),
        "\\PC{0,3}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1000), ..ProptestConfig::default() })]

    #[test]
    fn string_values_stay_one_literal(value in nasty()) {
        let vars = Variables::from_pairs([("x", value.clone())]);
        for body in ["SELECT {{String(x)}} AS v", "SELECT {{x}} AS v", "SELECT {{DateTime(String(x, 'd'))}} AS v"] {
            let t = Template::parse(body).unwrap();
            let sql = match t.render(&vars, &RenderOptions::default()) {
                Ok(r) => r.sql,
                // DateTime validation may refuse the value; refusing is safe.
                Err(_) => continue,
            };
            let rest = sql.strip_prefix("SELECT ").expect("prefix kept");
            let (decoded, used) = read_string_literal(rest).expect("one literal");
            prop_assert_eq!(&decoded, &value);
            prop_assert_eq!(&rest[used..], " AS v");
        }
    }

    #[test]
    fn like_patterns_stay_one_literal(value in nasty()) {
        let vars = Variables::from_pairs([("x", value.clone())]);
        let sql = render("SELECT {{sql_unescape(String(x), '%')}} AS v", &vars);
        let rest = sql.strip_prefix("SELECT ").unwrap();
        let (decoded, used) = read_string_literal(rest).expect("one literal");
        prop_assert_eq!(&rest[used..], " AS v");
        prop_assert_eq!(decoded, value);
    }

    #[test]
    fn json_params_stay_one_literal(value in nasty()) {
        let mut vars = Variables::new();
        vars.insert("x", ParamValue::Json(serde_json::Value::String(value.clone())));
        let sql = render("SELECT {{x}} AS v", &vars);
        let rest = sql.strip_prefix("SELECT ").unwrap();
        let (decoded, used) = read_string_literal(rest).expect("one literal");
        prop_assert_eq!(decoded, value);
        prop_assert_eq!(&rest[used..], " AS v");
    }

    #[test]
    fn column_values_stay_identifiers(value in nasty()) {
        let vars = Variables::from_pairs([("c", value.clone())]);
        let sql = render("SELECT {{column(c)}} FROM t", &vars);
        let mut rest = sql.strip_prefix("SELECT ").unwrap();
        let mut parts = Vec::new();
        loop {
            let (part, used) = read_identifier(rest).expect("an identifier");
            parts.push(part);
            rest = &rest[used..];
            match rest.strip_prefix('.') {
                Some(r) => rest = r,
                None => break,
            }
        }
        prop_assert_eq!(rest, " FROM t");
        prop_assert_eq!(parts.join("."), value.replace('"', ""));
    }

    #[test]
    fn symbol_and_table_values_stay_put(value in nasty()) {
        let vars = Variables::from_pairs([("s", value.clone())]);
        let sql = render("SELECT {{symbol(s)}} FROM t", &vars);
        let rest = sql.strip_prefix("SELECT ").unwrap();
        let (ident, used) = read_identifier(rest).expect("one identifier");
        prop_assert_eq!(&rest[used..], " FROM t");
        prop_assert_eq!(ident, value.replace('"', ""));
    }

    #[test]
    fn array_values_stay_literals(values in prop::collection::vec(nasty(), 1..6)) {
        let vars = Variables::from_iter([("a".to_string(), ParamValue::List(values.clone()))]);
        let sql = render("SELECT {{Array(a)}} AS v", &vars);
        let mut rest = sql.strip_prefix("SELECT [").unwrap();
        let mut decoded = Vec::new();
        loop {
            let (v, used) = read_string_literal(rest).expect("a literal");
            decoded.push(v);
            rest = &rest[used..];
            match rest.strip_prefix(',') {
                Some(r) => rest = r,
                None => break,
            }
        }
        prop_assert_eq!(rest, "] AS v");
        prop_assert_eq!(decoded.len(), values.len());
    }

    #[test]
    fn comma_separated_arrays_split_into_literals(value in nasty()) {
        let vars = Variables::from_pairs([("a", value.clone())]);
        let sql = render("SELECT {{Array(a, 'String')}} AS v", &vars);
        let mut rest = sql.strip_prefix("SELECT [").unwrap();
        let mut decoded = Vec::new();
        loop {
            let (v, used) = read_string_literal(rest).expect("a literal");
            decoded.push(v);
            rest = &rest[used..];
            match rest.strip_prefix(',') {
                Some(r) => rest = r,
                None => break,
            }
        }
        prop_assert_eq!(rest, "] AS v");
        prop_assert_eq!(decoded.len(), value.split(',').count());
    }

    #[test]
    fn typed_numbers_are_validated_or_refused(value in nasty()) {
        let vars = Variables::from_pairs([("n", value)]);
        for body in ["{{Int32(n)}}", "{{UInt256(n)}}", "{{Float64(n)}}", "{{Date(n)}}", "{{Array(n, 'Int64')}}", "{{Boolean(n)}}"] {
            let t = Template::parse(body).unwrap();
            if let Ok(r) = t.render(&vars, &RenderOptions::default()) {
                prop_assert!(!r.sql.contains(['\n', ';', '"']), "{} rendered {:?}", body, r.sql);
            }
        }
    }
}

/// Fragments that exercise the template grammar.
fn template_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{%".to_string()),
        Just("%}".to_string()),
        Just("{#".to_string()),
        Just("#}".to_string()),
        Just("{{!".to_string()),
        Just(" if ".to_string()),
        Just(" elif ".to_string()),
        Just(" else ".to_string()),
        Just(" end ".to_string()),
        Just(" for ".to_string()),
        Just(" in ".to_string()),
        Just(" set ".to_string()),
        Just(" while ".to_string()),
        Just(" try ".to_string()),
        Just(" except ".to_string()),
        Just(" break ".to_string()),
        Just("defined(".to_string()),
        Just("String(".to_string()),
        Just("Int32(".to_string()),
        Just("Array(".to_string()),
        Just("column(".to_string()),
        Just("sql_and(".to_string()),
        Just("JSON(".to_string()),
        Just("split_to_array(".to_string()),
        Just("range(".to_string()),
        Just(")".to_string()),
        Just("(".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("=".to_string()),
        Just("==".to_string()),
        Just("+".to_string()),
        Just("-".to_string()),
        Just("*".to_string()),
        Just("**".to_string()),
        Just("/".to_string()),
        Just("%".to_string()),
        Just(".".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("x".to_string()),
        Just("y".to_string()),
        Just("1".to_string()),
        Just("2.5".to_string()),
        Just("'a'".to_string()),
        Just("None".to_string()),
        Just("True".to_string()),
        Just(" not ".to_string()),
        Just(" and ".to_string()),
        Just(" or ".to_string()),
        Just("\n".to_string()),
        Just(" ".to_string()),
        Just("__class__".to_string()),
        Just("'Int32'".to_string()),
        Just("x=".to_string()),
        Just("SELECT ".to_string()),
        "\\PC{0,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(3000), ..ProptestConfig::default() })]

    #[test]
    fn parse_and_render_never_panic(fragments in prop::collection::vec(template_fragment(), 0..40), test_mode: bool) {
        let body: String = fragments.concat();
        if let Ok(t) = Template::parse(&body) {
            let _ = t.analyze().params();
            let vars = Variables::from_pairs([("x", "1,2"), ("y", "a")]);
            let opts = RenderOptions { test_mode, ..RenderOptions::default() };
            let _ = t.render(&vars, &opts);
            let _ = t.render(&Variables::new(), &opts);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(body in "\\PC{0,200}") {
        if let Ok(t) = Template::parse(&body) {
            let _ = t.analyze();
            let _ = t.render(&Variables::new(), &RenderOptions::default());
        }
    }
}

#[test]
fn well_formed_templates_with_random_values_render() {
    // A deterministic sweep over value shapes for every template function: never a panic, always Ok or a clean error.
    let values =
        ["", "0", "-1", "1e3", "nan", "2024-01-01", "2024-01-01 00:00:00.000", "a,b", "'", "\\", "٣", "\u{2028}"];
    // Every name a template may call, from the one table of them.
    let fns = tinybird_template::registry::TEMPLATE_FUNCTIONS.iter().filter(|f| f.callable).map(|f| f.name);
    for f in fns {
        let t = Template::parse(&format!("{{{{ {f}(v) }}}}")).unwrap();
        for v in values {
            let vars = Variables::from_pairs([("v", v)]);
            match t.render(&vars, &RenderOptions::default()) {
                // `table('')` renders nothing, legitimately; what matters is no panic and a worded error.
                Ok(_) => {}
                // `error(v)` and `custom_error(v)` raise the caller's own message, empty when `v` is (as the
                // reference renderer does).
                Err(e) if matches!(f, "error" | "custom_error") => assert!(e.to_string().contains(v), "{f}({v:?})"),
                Err(e) => assert!(!e.to_string().is_empty(), "{f}({v:?})"),
            }
        }
    }
}
