//! The public API: variables, options, side outputs, errors and their HTTP mapping.

use serde_json::json;
use tinybird_template::{
    ParamValue, RenderErrorKind, RenderOptions, Secrets, Template, TemplateErrorKind, Variables, is_template,
    template_body,
};

fn render(body: &str, vars: &Variables) -> Result<String, tinybird_template::RenderError> {
    Template::parse(body).map_err(Into::into).and_then(|t| t.render(vars, &RenderOptions::default())).map(|r| r.sql)
}

fn test_mode() -> RenderOptions {
    RenderOptions { test_mode: true, ..RenderOptions::default() }
}

#[test]
fn template_detection() {
    assert!(is_template("%\nSELECT {{String(x)}}"));
    assert!(is_template("\n   %SELECT 1"));
    assert!(!is_template("SELECT {{String(x)}}"));
    assert!(!is_template(""));
    assert_eq!(template_body("%\nSELECT 1"), Some("\nSELECT 1"));
    assert_eq!(template_body("  %  SELECT 1  \n"), Some("  SELECT 1"));
    assert_eq!(template_body("SELECT 1"), None);
}

#[test]
fn variables_from_pairs_groups_repeated_keys() {
    let v = Variables::from_pairs([("a", "1"), ("b", "x"), ("a", "2"), ("a", "3")]);
    assert_eq!(v.get("a"), Some(&ParamValue::List(vec!["1".into(), "2".into(), "3".into()])));
    assert_eq!(v.get("b"), Some(&ParamValue::Str("x".into())));
    assert_eq!(v.len(), 2);
    assert!(v.contains("a") && !v.contains("c"));
    assert!(!v.is_empty());
}

#[test]
fn fixed_params_win_and_keep_their_json_type() {
    let mut vars = Variables::from_pairs([("org", "999"), ("q2", "a")]);
    let fixed: Variables = [("org".to_string(), ParamValue::Json(json!(3)))].into_iter().collect();
    vars.overlay(&fixed);
    assert_eq!(render("{{String(org)}}", &vars).unwrap(), "'3'");
    assert_eq!(render("{{org}}", &vars).unwrap(), "3");
    assert_eq!(render("{{Int32(org)}}", &vars).unwrap(), "toInt32('3')");
    assert_eq!(render("{{String(q2)}}", &vars).unwrap(), "'a'");
}

#[test]
fn repeated_keys_feed_arrays() {
    let vars = Variables::from_pairs([("ids", "1"), ("ids", "2")]);
    assert_eq!(render("{{Array(ids, 'Int32')}}", &vars).unwrap(), "[1,2]");
    assert_eq!(
        render("{{Array(ids, 'Int32', defined=False)}}", &Variables::new()).unwrap_err().to_string(),
        "Template Syntax Error: expression \"Array(ids, 'Int32', ...\" evaluated to null"
    );
}

#[test]
fn insert_accepts_all_value_kinds() {
    let mut v = Variables::new();
    v.insert("a", "x").insert("b", "y".to_string()).insert("c", vec!["1".to_string()]).insert("d", json!(true));
    assert_eq!(render("{{a}}{{b}}{{c}}{{d}}", &v).unwrap(), "'x''y'['1']True");
}

#[test]
fn hints_are_side_outputs() {
    let t = Template::parse(
        "{{max_threads(4)}}{{cache_ttl('1h')}}{{backend_hint('b1')}}{{activate('analyzer')}}{{activate('parallel_replicas')}}{{disable('analyzer')}}SELECT 1",
    )
    .unwrap();
    let r = t.render(&Variables::new(), &RenderOptions::default()).unwrap();
    assert_eq!(r.hints.max_threads, Some(4));
    assert_eq!(r.hints.cache_ttl.as_deref(), Some("1h"));
    assert_eq!(r.hints.backend_hint.as_deref(), Some("b1"));
    assert_eq!(r.hints.activate.iter().map(String::as_str).collect::<Vec<_>>(), ["analyzer", "parallel_replicas"]);
    assert_eq!(r.hints.disable.as_deref(), Some("analyzer"));
    assert!(r.sql.starts_with("-- max_threads 4\n-- cache_ttl 1h\n-- backend_hint b1\n"));
    assert!(r.sql.ends_with("-- disable analyzer\nSELECT 1"));
}

#[test]
fn backend_hint_none_clears() {
    let t = Template::parse("{{backend_hint(None)}}").unwrap();
    let r = t.render(&Variables::new(), &RenderOptions::default()).unwrap();
    assert_eq!(r.hints.backend_hint, None);
    assert_eq!(r.sql, "-- backend_hint None\n");
}

#[test]
fn backend_hint_cannot_break_out_of_its_comment() {
    let vars = Variables::from_pairs([("h", "x\nDROP TABLE t")]);
    assert_eq!(render("{{backend_hint(h)}}SELECT 1", &vars).unwrap(), "-- backend_hint x DROP TABLE t\nSELECT 1");
}

#[test]
fn invalid_hints_have_reference_errors() {
    let e = render("{{cache_ttl('2h')}}", &Variables::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Template Syntax Error: Invalid TTL cache expression, valid expressions are ('5s', '1m', '5m', '30m', '1h')"
    );
    assert_eq!(e.kind(), RenderErrorKind::Template);
    assert_eq!(e.http_status(), 400);
    let e = render("{{activate('x')}}", &Variables::new()).unwrap_err();
    assert_eq!(e.to_string(), "Template Syntax Error: 'x' is not a valid 'activate' argument");
    let e = render("{{disable('parallel')}}", &Variables::new()).unwrap_err();
    assert_eq!(e.to_string(), "Template Syntax Error: 'parallel' is not a valid 'disable' argument");
    assert_eq!(render("{{max_threads('many')}}", &Variables::new()).unwrap(), "-- max_threads: wrong argument\n");
}

#[test]
fn secrets_become_query_parameters() {
    let t = Template::parse("SELECT {{tb_secret('api_key')}}, {{tb_var('region', 'eu')}}").unwrap();
    let mut secrets = Secrets::new();
    secrets.insert("api_key", "s3cr3t");
    let opts = RenderOptions { secrets, ..RenderOptions::default() };
    let r = t.render(&Variables::new(), &opts).unwrap();
    assert_eq!(r.sql, "SELECT {api_key: String}, 'eu'");
    assert_eq!(r.query_params, ["api_key"]);
    assert_eq!(opts.secrets.get("api_key"), Some("s3cr3t"));
    let debug = format!("{opts:?}");
    assert!(!debug.contains("s3cr3t"), "secret value leaked into Debug: {debug}");
    assert!(debug.contains("api_key"));
}

#[test]
fn missing_secret_is_an_error_outside_test_mode() {
    let t = Template::parse("SELECT {{tb_secret('k')}}").unwrap();
    let e = t.render(&Variables::new(), &RenderOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Template Syntax Error: Cannot access secret 'k'. Check the secret exists in the Workspace and the token has the required scope."
    );
    assert_eq!(t.render(&Variables::new(), &test_mode()).unwrap().sql, "SELECT {k: String}");
}

#[test]
fn secret_names_are_escaped() {
    let mut secrets = Secrets::new();
    secrets.insert("a'b", "v");
    let t = Template::parse("{{tb_secret(\"a'b\")}}").unwrap();
    let r = t.render(&Variables::new(), &RenderOptions { secrets, ..RenderOptions::default() }).unwrap();
    assert_eq!(r.sql, "{a\\'b: String}");
}

#[test]
fn custom_error_sets_status_and_body() {
    let t = Template::parse("{{custom_error({'error': 'nope', 'hint': [1, 2]}, 403)}}").unwrap();
    let e = t.render(&Variables::new(), &RenderOptions::default()).unwrap_err();
    assert_eq!(e.kind(), RenderErrorKind::Custom);
    assert_eq!(e.http_status(), 403);
    assert_eq!(e.custom_body(), Some(&json!({"error": "nope", "hint": [1, 2]})));
    assert_eq!(e.to_string(), "{'error': 'nope', 'hint': [1, 2]}");
}

#[test]
fn custom_error_with_a_bad_code_falls_back_to_400() {
    let t = Template::parse("{{custom_error({'error': 'x'}, 'abc')}}").unwrap();
    assert_eq!(t.render(&Variables::new(), &RenderOptions::default()).unwrap_err().http_status(), 400);
    let t = Template::parse("{{custom_error({'error': 'x'}, 99999)}}").unwrap();
    assert_eq!(t.render(&Variables::new(), &RenderOptions::default()).unwrap_err().http_status(), 400);
}

#[test]
fn error_is_a_plain_value_error() {
    let e = render("{{error('boom')}}", &Variables::new()).unwrap_err();
    assert_eq!(e.kind(), RenderErrorKind::Value);
    assert_eq!(e.to_string(), "boom");
    assert_eq!(e.http_status(), 400);
    assert_eq!(e.custom_body(), None);
}

#[test]
fn test_mode_disables_errors_and_uses_placeholders() {
    let t =
        Template::parse("{% if not defined(x) %}{{error('x')}}{% end %}SELECT {{String(x)}}, {{Int32(y)}}").unwrap();
    assert_eq!(t.render(&Variables::new(), &test_mode()).unwrap().sql, "-- {x} \nSELECT '__no_value__', toInt32('0')");
}

#[test]
fn reserved_names_warn() {
    let t = Template::parse("SELECT {{String(pipeline, 'a')}}, {{String(token, 'b')}}").unwrap();
    let r = t.render(&Variables::new(), &RenderOptions::default()).unwrap();
    assert_eq!(r.sql, "SELECT 'a', 'b'");
    assert_eq!(r.warnings.len(), 2);
    assert!(r.warnings[0].contains("\"pipeline\""));
    assert!(r.warnings[1].contains("\"token\""));
}

#[test]
fn format_and_q_are_refused_at_parse() {
    for (body, line) in [("SELECT {{String(format)}}", 1), ("SELECT 1\n\n{{q}}", 3)] {
        let e = Template::parse(body).unwrap_err();
        assert_eq!(e.kind(), TemplateErrorKind::ReservedName);
        let name = if body.contains("format") { "format" } else { "q" };
        assert_eq!(e.to_string(), format!("\"{name}\" can not be used as a variable name, line {line}"));
        assert_eq!(e.line(), line);
    }
    // As keyword arguments they are fine.
    assert!(Template::parse("{{String(x, format='date')}}").is_ok());
}

#[test]
fn job_timestamp_defaults_to_now() {
    let t = Template::parse("SELECT {{DateTime(job_timestamp)}}").unwrap();
    let opts = RenderOptions { now: Some("2024-05-06 07:08:09".into()), ..RenderOptions::default() };
    assert_eq!(t.render(&Variables::new(), &opts).unwrap().sql, "SELECT '2024-05-06 07:08:09'");
    let given = Variables::from_pairs([("job_timestamp", "2020-01-01 00:00:00")]);
    assert_eq!(t.render(&given, &opts).unwrap().sql, "SELECT '2020-01-01 00:00:00'");
    let sql = t.render(&Variables::new(), &RenderOptions::default()).unwrap().sql;
    assert_eq!(sql.len(), "SELECT '2024-05-06 07:08:09'".len(), "system clock formatted as YYYY-MM-DD HH:MM:SS: {sql}");
}

#[test]
fn templates_are_shared_across_threads() {
    let t = Template::parse("SELECT {{Int32(n)}}").unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                let vars = Variables::from_pairs([("n", i.to_string())]);
                t.render(&vars, &RenderOptions::default()).unwrap().sql
            })
        })
        .collect();
    let out: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(out, ["SELECT toInt32('0')", "SELECT toInt32('1')", "SELECT toInt32('2')", "SELECT toInt32('3')"]);
}

#[test]
fn body_is_kept() {
    let t = Template::parse("SELECT 1").unwrap();
    assert_eq!(t.body(), "SELECT 1");
}
