//! Parse errors with their positions, this crate's own syntax messages, and the resource limits.

use tinybird_template::{
    MAX_BLOCK_DEPTH, MAX_TEMPLATE_BYTES, RenderErrorKind, RenderOptions, Template, TemplateErrorKind, Variables,
};

fn parse_err(body: &str) -> tinybird_template::TemplateError {
    match Template::parse(body) {
        Ok(_) => panic!("expected {body:?} to be rejected"),
        Err(e) => e,
    }
}

#[test]
fn tornado_parse_errors_have_reference_text_and_line() {
    let cases: &[(&str, &str, usize)] = &[
        ("SELECT {{x", "Missing end expression }} at <string>:1", 1),
        ("a\nb {% if x", "Missing end block %} at <string>:2", 2),
        ("a {# c", "Missing end comment #} at <string>:1", 1),
        ("a {{ }}", "Empty expression at <string>:1", 1),
        ("a {% %}", "Empty block tag ({% %}) at <string>:1", 1),
        ("a\n{% end %}", "Extra {% end %} block at <string>:2", 2),
        ("{% foo %}", "unknown operator: 'foo' at <string>:1", 1),
        ("{% elif x %}", "elif outside {'if'} block at <string>:1", 1),
        ("{% except %}", "except outside {'try'} block at <string>:1", 1),
        ("{% if x %}{% except %}{% end %}", "except block cannot be attached to if block at <string>:1", 1),
        ("\n{% import os %}", "import is forbidden at <string>:2", 2),
        ("{% from os import path %}", "import is forbidden at <string>:1", 1),
        ("{% extends 'x' %}", "extends is forbidden at <string>:1", 1),
        ("{% include 'x' %}", "include is forbidden at <string>:1", 1),
        ("{% raw x %}", "raw is forbidden at <string>:1", 1),
        ("{% module x %}", "module is forbidden at <string>:1", 1),
        ("{% autoescape x %}", "autoescape is forbidden at <string>:1", 1),
        ("{% apply x %}a{% end %}", "apply is forbidden at <string>:1", 1),
        ("{% block x %}a{% end %}", "block is forbidden at <string>:1", 1),
        ("{% set %}", "set missing statement at <string>:1", 1),
    ];
    for (body, msg, line) in cases {
        let e = parse_err(body);
        assert_eq!(e.to_string(), *msg, "{body:?}");
        assert_eq!(e.kind(), TemplateErrorKind::Parse, "{body:?}");
        assert!(e.line() >= 1 && e.line() <= *line, "{body:?}: line {}", e.line());
        assert_eq!(e.http_status(), 400);
    }
}

#[test]
fn break_outside_loop_names_both_loops() {
    for op in ["break", "continue"] {
        let e = parse_err(&format!("{{% {op} %}}"));
        let s = e.to_string();
        assert!(s.starts_with(&format!("{op} outside {{")) && s.contains("'for'") && s.contains("'while'"), "{s}");
    }
}

#[test]
fn unclosed_blocks_report_the_line_of_the_last_tag() {
    let e = parse_err("SELECT 1\n{% if defined(x) %}\n AND 1");
    assert_eq!(e.kind(), TemplateErrorKind::UnclosedBlock);
    assert_eq!(e.to_string(), "Missing {% end %} block for if at line 2");
    let e = parse_err("{% for v in x %}");
    assert_eq!(e.to_string(), "Missing {% end %} block for if at line 1");
}

#[test]
fn security_errors_point_at_the_offending_node() {
    // (template, message, the text the error points at)
    let cases: &[(&str, &str, &str)] = &[
        ("SELECT {{10**2}}", "Template Syntax Error: Invalid BinOp: Pow()", "10**2"),
        ("SELECT {{ a / b }}", "Template Syntax Error: Invalid BinOp: Div()", "a / b"),
        ("SELECT {{ eval('1') }}", "Template Syntax Error: Invalid function name: eval", "eval"),
        ("SELECT {{ x.lower() }}", "Template Syntax Error: Invalid method name: lower", "x.lower"),
        ("SELECT {{ __builtins__ }}", "Template Syntax Error: Invalid name: __builtins__", "__builtins__"),
        ("SELECT {{ +x }}", "Template Syntax Error: Invalid UnaryOp: UAdd()", "+x"),
        (
            "SELECT {{ a == b }}",
            "Template Syntax Error: Invalid expression type: Compare(left=Name(id='a', ctx=Load()), ops=[Eq()], comparators=[Name(id='b', ctx=Load())])",
            "a == b",
        ),
        ("SELECT {{ x[i] }}", "Template Syntax Error: Invalid Slice expression: Name(id='i', ctx=Load())", "i]"),
        ("{% if x.__class__ %}{% end %}", "Template Syntax Error: Invalid attribute: __class__", "x.__class__"),
        ("{% if eval('1') %}{% end %}", "Template Syntax Error: Invalid function name: eval", "eval"),
        ("{% set x = 1; y = 2 %}", "Template Syntax Error: Invalid set statement: x = 1; y = 2", "x = 1"),
        ("{% if x %}{% else if 1 %}{% end %}", "Template Syntax Error: Invalid control block: else if 1", "else if"),
    ];
    for (body, msg, at) in cases {
        let e = parse_err(body);
        assert_eq!(e.to_string(), *msg, "{body:?}");
        assert_eq!(e.kind(), TemplateErrorKind::Security, "{body:?}");
        let offset = body.find(at).unwrap();
        assert_eq!((e.offset(), e.line(), e.column()), (offset, 1, offset + 1), "{body:?}");
    }
}

#[test]
fn python_syntax_errors_are_clear() {
    let cases: &[(&str, &str)] = &[
        ("{{ String(x }}", "invalid syntax: expected `)`"),
        ("{{ (lambda: 1) }}", "lambda expressions are not supported in templates"),
        ("{{ [i for i in x] }}", "comprehensions are not supported in templates"),
        ("{{ f'{x}' }}", "f-strings are not supported in templates"),
        ("{{ 'abc }}", "unterminated string literal"),
        ("{{ 1 2 }}", "invalid syntax: unexpected number"),
        ("{{ String(*x) }}", "argument unpacking (* and **) is not supported in templates"),
        ("{{ String(a=1, a=2) }}", "keyword argument repeated: a"),
        ("{{ String(a=1, 2) }}", "positional argument follows keyword argument"),
        ("{{ 1j }}", "complex numbers are not supported in templates"),
        (
            "{{ 007 }}",
            "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers",
        ),
        ("{% set x.y = 1 %}", "only names can be assigned in templates (no attributes or subscripts)"),
        ("{% if %}{% end %}", "invalid syntax: missing condition"),
        ("{% for in x %}{% end %}", "invalid syntax: expected a name"),
        ("{% for a in %}{% end %}", "unexpected end of expression"),
        ("{% try %}a{% end %}", "invalid syntax: {% try %} needs an {% except %} or {% finally %}"),
        ("{% if a %}{% else %}{% elif b %}{% end %}", "invalid syntax: misplaced {% elif %}"),
        ("{% whitespace wide %}", "invalid whitespace mode wide"),
        ("{% break x %}", "invalid syntax: `break x`"),
    ];
    for (body, msg) in cases {
        let body = body.replace("{% break x %}", "{% for a in b %}{% break x %}{% end %}");
        let e = parse_err(&body);
        assert_eq!(e.to_string(), *msg, "{body:?}");
    }
}

#[test]
fn syntax_error_positions_are_inside_the_body() {
    let e = parse_err("SELECT 1\nWHERE a = {{ String(x, ) ) }}");
    assert_eq!(e.line(), 2);
    assert_eq!(e.column(), 26);
    assert_eq!(e.offset(), 9 + 25);
    let e = parse_err("é\n  {{ 'x' + }}");
    assert_eq!((e.line(), e.column()), (2, 11), "points just after the dangling operator");
}

#[test]
fn list_literal_as_variable_is_refused() {
    let e = parse_err("{{ defined([1, 2]) }}");
    assert_eq!(e.to_string(), "\"[1, 2]\" can not be used as a variable name");
    let e = parse_err("{{ String(['a']) }}");
    assert_eq!(e.to_string(), "\"['a']\" can not be used as a variable name");
}

#[test]
fn oversized_templates_are_refused() {
    let body = "a".repeat(MAX_TEMPLATE_BYTES + 1);
    let e = parse_err(&body);
    assert_eq!(e.kind(), TemplateErrorKind::Limit);
    assert!(e.to_string().starts_with("template is too large"));
}

#[test]
fn deep_block_nesting_is_refused_without_overflow() {
    let depth = MAX_BLOCK_DEPTH + 10;
    let body = format!("{}x{}", "{% if 1 %}".repeat(depth), "{% end %}".repeat(depth));
    let e = parse_err(&body);
    assert_eq!(e.kind(), TemplateErrorKind::Limit);
    // Just under the limit works.
    let ok = format!("{}x{}", "{% if 1 %}".repeat(MAX_BLOCK_DEPTH - 1), "{% end %}".repeat(MAX_BLOCK_DEPTH - 1));
    let t = Template::parse(&ok).unwrap();
    assert_eq!(t.render(&Variables::new(), &RenderOptions::default()).unwrap().sql, "x");
}

#[test]
fn deep_expression_nesting_is_refused_without_overflow() {
    for (open, close) in [("(", ")"), ("[", "]"), ("{1: ", "}"), ("String(", ")"), ("-", ""), ("not ", "")] {
        let body = format!("{{% if {}1{} %}}{{% end %}}", open.repeat(100_000), close.repeat(100_000));
        let e = parse_err(&body);
        assert!(e.to_string().contains("nested too deeply"), "{open}: {e}");
    }
    let chain = format!("{{{{ 1{} }}}}", " + 1".repeat(100_000));
    assert!(parse_err(&chain).to_string().contains("nested too deeply"));
    let calls = format!("{{% if x{} %}}{{% end %}}", "()".repeat(100_000));
    assert!(parse_err(&calls).to_string().contains("nested too deeply"));
    let attrs = format!("{{% if x{} %}}{{% end %}}", ".a".repeat(100_000));
    assert!(Template::parse(&attrs).is_err() || Template::parse(&attrs).is_ok());
}

#[test]
fn runaway_loops_stop_with_a_limit_error() {
    let t = Template::parse("{% set i = 0 %}{% while True %}{% set i = i + 1 %}{% end %}").unwrap();
    let e = t.render(&Variables::new(), &RenderOptions::default()).unwrap_err();
    assert_eq!(e.kind(), RenderErrorKind::Limit);
    assert!(e.to_string().contains("iterations"));
}

#[test]
fn huge_outputs_stop_with_a_limit_error() {
    let t = Template::parse("{% for i in range(1000) %}{% for j in range(1000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% end %}{% end %}").unwrap();
    let e = t.render(&Variables::new(), &RenderOptions::default()).unwrap_err();
    assert_eq!(e.kind(), RenderErrorKind::Limit);
    let t = Template::parse("{% set s = 'x' * 100000000 %}").unwrap();
    assert_eq!(t.render(&Variables::new(), &RenderOptions::default()).unwrap_err().kind(), RenderErrorKind::Limit);
    let t = Template::parse("{% for i in range(10**12) %}{% end %}").unwrap();
    assert_eq!(t.render(&Variables::new(), &RenderOptions::default()).unwrap_err().kind(), RenderErrorKind::Limit);
}

#[test]
fn integer_overflow_is_an_error_not_a_panic() {
    for body in [
        "{% set x = 2 ** 200 %}",
        "{% set x = 170141183460469231731687303715884105727 + 1 %}",
        "{% set x = -(-170141183460469231731687303715884105727 - 1) %}",
        "{% set x = 1 << 200 %}",
    ] {
        let t = Template::parse(body).unwrap();
        let e = t.render(&Variables::new(), &RenderOptions::default()).unwrap_err();
        assert!(e.to_string().contains("overflow"), "{body}: {e}");
    }
}

#[test]
fn unsupported_builtins_are_internal_errors() {
    let t = Template::parse("{% if callable(x) %}{% end %}").unwrap();
    let e = t.render(&Variables::new(), &RenderOptions::default()).unwrap_err();
    assert_eq!(e.kind(), RenderErrorKind::Internal);
    assert_eq!(e.http_status(), 500);
    assert_eq!(e.to_string(), "the builtin `callable` is not supported by this renderer");
}

#[test]
fn render_errors_convert_from_parse_errors() {
    let e: tinybird_template::RenderError = parse_err("{% import os %}").into();
    assert_eq!(e.kind(), RenderErrorKind::Parse);
    assert_eq!(e.to_string(), "import is forbidden at <string>:1");
    assert_eq!(e.http_status(), 400);
}
