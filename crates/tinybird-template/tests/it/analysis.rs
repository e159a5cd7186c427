//! `Template::analyze`: what the derive macro relies on.

use tinybird_template::{Literal, Template, UseContext};

fn analyze(body: &str) -> tinybird_template::Analysis {
    Template::parse(body).unwrap().analyze()
}

#[test]
fn typed_uses_carry_function_default_and_position() {
    let body = "SELECT * FROM t\nWHERE a = {{String(a, 'x')}} AND b = {{Int32(b)}}";
    let a = analyze(body);
    assert_eq!(a.uses.len(), 2);
    let ua = &a.uses[0];
    assert_eq!(ua.name, "a");
    assert_eq!(ua.function.as_deref(), Some("String"));
    assert_eq!(ua.default, Some(Literal::Str("x".into())));
    assert!(!ua.defined_false && !ua.guarded);
    assert_eq!(ua.context, UseContext::Output);
    assert_eq!(ua.position.offset, body.find("a, 'x'").unwrap());
    assert_eq!((ua.position.line, ua.position.column), (2, 20));
    assert_eq!(ua.call_position.unwrap().offset, body.find("String(a").unwrap());
    let ub = &a.uses[1];
    assert_eq!(ub.function.as_deref(), Some("Int32"));
    assert_eq!(ub.default, None);
}

#[test]
fn every_typed_function_is_recognised() {
    for f in [
        "String",
        "Boolean",
        "Int8",
        "Int16",
        "Int32",
        "Int64",
        "Int128",
        "Int256",
        "UInt8",
        "UInt16",
        "UInt32",
        "UInt64",
        "UInt128",
        "UInt256",
        "Int",
        "Integer",
        "Float32",
        "Float64",
        "Date",
        "DateTime",
        "DateTime64",
        "JSON",
        "column",
        "columns",
        "symbol",
        "table",
        "split_to_array",
        "sql_unescape",
        "defined",
        "enumerate_with_last",
    ] {
        let a = analyze(&format!("{{{{ {f}(p) }}}}"));
        assert_eq!(a.uses.len(), 1, "{f}");
        assert_eq!(a.uses[0].function.as_deref(), Some(f), "{f}");
        assert_eq!(a.uses[0].name, "p");
    }
}

#[test]
fn array_element_type_and_defaults() {
    let a = analyze("{{Array(ids, 'UInt64', '1,2', defined=False)}} {{Array(tags)}} {{Array(x, default='a')}}");
    assert_eq!(a.uses[0].array_type.as_deref(), Some("UInt64"));
    assert_eq!(a.uses[0].default, Some(Literal::Str("1,2".into())));
    assert!(a.uses[0].defined_false);
    assert_eq!(a.uses[1].array_type.as_deref(), Some("String"));
    assert_eq!(a.uses[2].default, Some(Literal::Str("a".into())));
}

#[test]
fn metadata_keywords_are_exposed() {
    let a = analyze(
        "{{String(d, 'x', description='Start date', required=True, example='2024-01-01', format='date', enum=['a', 'b'])}}",
    );
    let m = &a.uses[0].metadata;
    assert_eq!(m.description, Some(Literal::Str("Start date".into())));
    assert_eq!(m.required, Some(Literal::Bool(true)));
    assert_eq!(m.example, Some(Literal::Str("2024-01-01".into())));
    assert_eq!(m.format, Some(Literal::Str("date".into())));
    assert_eq!(m.enum_values, Some(Literal::List(vec![Literal::Str("a".into()), Literal::Str("b".into())])));
    let a = analyze("{{Int32(n, 5, True, False, 'count')}}");
    assert_eq!(a.uses[0].metadata.description, Some(Literal::Str("count".into())));
    assert_eq!(a.uses[0].metadata.required, Some(Literal::Bool(false)));
}

#[test]
fn defined_guards_are_detected() {
    let a = analyze("{% if defined(c) %}{{String(c)}}{% else %}{{String(d)}}{% end %}{{String(c)}}");
    let guarded: Vec<(String, Option<String>, bool)> =
        a.uses.iter().map(|u| (u.name.clone(), u.function.clone(), u.guarded)).collect();
    assert_eq!(
        guarded,
        [
            ("c".into(), Some("defined".into()), false),
            ("c".into(), Some("String".into()), true),
            ("d".into(), Some("String".into()), false),
            ("c".into(), Some("String".into()), false),
        ]
    );
    assert_eq!(a.uses[0].context, UseContext::Condition);
}

#[test]
fn loop_and_set_names_are_locals_not_params() {
    let a = analyze("{% set lim = Int32(limit, 5) %}{% for v in split_to_array(vals) %}{{v}}{% end %}{{lim}}");
    let names: Vec<String> = a.params().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["limit", "vals"]);
    let locals: Vec<&str> = a.locals.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(locals, ["lim", "v"]);
    assert_eq!(a.locals[0].position.offset, 7);
    assert_eq!(a.uses_of("limit").next().unwrap().context, UseContext::Set);
    assert_eq!(a.uses_of("vals").next().unwrap().context, UseContext::Loop);
}

#[test]
fn functions_and_builtins_are_not_params() {
    let a = analyze("{{max_threads(4)}}{% if len(x) > 0 and sum([1]) %}{{columns(c, 'a')}}{% end %}{{tb_secret('k')}}");
    let names: Vec<String> = a.params().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["x", "c"]);
}

#[test]
fn invalid_calls_in_control_statements_are_listed() {
    let body = "{% if whatever(x) %}a{% elif bogus() %}b{% end %}";
    let a = analyze(body);
    let calls: Vec<(&str, usize)> = a.invalid_calls.iter().map(|c| (c.name.as_str(), c.position.offset)).collect();
    assert_eq!(calls, [("whatever", 6), ("bogus", body.find("bogus").unwrap())]);
}

#[test]
fn invalid_calls_in_output_are_parse_errors_with_position() {
    let e = Template::parse("SELECT\n  {{ whatever(x) }}").unwrap_err();
    assert_eq!(e.to_string(), "Template Syntax Error: Invalid function name: whatever");
    assert_eq!((e.line(), e.column()), (2, 6));
}

#[test]
fn params_merge_uses() {
    let a = analyze("{% if defined(x) %}{{Int32(x)}}{% end %}{{Int32(x, 3, description='n')}}{{String(y)}}{{z}}");
    let p = a.params();
    assert_eq!(p.len(), 3);
    assert_eq!(p[0].name, "x");
    assert_eq!(p[0].function.as_deref(), Some("Int32"));
    assert_eq!(p[0].default, Some(Literal::Int(3)));
    assert_eq!(p[0].metadata.description, Some(Literal::Str("n".into())));
    assert_eq!(p[0].uses, 3);
    assert!(!p[0].required, "guarded or defaulted everywhere");
    assert!(!p[0].always_guarded);
    assert!(p[1].required);
    assert_eq!(p[2].name, "z");
    assert!(p[2].required, "a bare {{z}} renders null without a value");
    assert_eq!(p[2].function, None);
}

#[test]
fn sql_and_filters_are_typed_and_optional() {
    let a = analyze("WHERE {{sql_and(a=String(a, defined=False), b__in=Array(b, 'Int32', defined=False))}}");
    let p = a.params();
    assert_eq!(p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert!(p.iter().all(|p| p.defined_false && !p.required));
    assert_eq!(p[1].array_type.as_deref(), Some("Int32"));
}

#[test]
fn negative_and_float_defaults() {
    let a = analyze("{{Int32(a, -5)}}{{Float64(b, 1.5)}}{{Int32(c, d)}}");
    assert_eq!(a.uses[0].default, Some(Literal::Int(-5)));
    assert_eq!(a.uses[1].default, Some(Literal::Float(1.5)));
    assert_eq!(a.uses[2].default, Some(Literal::Expr("d".into())));
    // `d` is read too.
    assert!(a.uses.iter().any(|u| u.name == "d" && u.function.is_none()));
}

#[test]
fn date_diff_reads_both_dates() {
    let a = analyze("{{day_diff(start, end)}}");
    let fs: Vec<(&str, Option<&str>)> = a.uses.iter().map(|u| (u.name.as_str(), u.function.as_deref())).collect();
    assert_eq!(fs, [("start", Some("day_diff")), ("end", Some("day_diff"))]);
}

#[test]
fn positions_on_later_lines_and_after_unicode() {
    let body = "-- ñ\nSELECT {{String(país)}}";
    let a = analyze(body);
    assert_eq!(a.uses[0].name, "país");
    assert_eq!(a.uses[0].position.line, 2);
    assert_eq!(a.uses[0].position.column, 17);
    assert_eq!(&body[a.uses[0].position.offset..a.uses[0].position.offset + "país".len()], "país");
}
