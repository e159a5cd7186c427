//! The shared conformance vectors and the cases recorded from the reference renderer.

use std::path::PathBuf;

use serde_json::Value;
use tinybird_template::{ParamValue, RenderOptions, Template, Variables};

/// Load a data file: the shared copy beside the workspace when present, else the crate's own copy.
fn load(shared: &str, local: &str) -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared_path = dir.join(shared);
    let path = if shared_path.exists() { shared_path } else { dir.join(local) };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str::<Vec<Value>>(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn variables(case: &Value) -> Variables {
    let mut vars = Variables::new();
    if let Some(params) = case.get("params").and_then(Value::as_object) {
        for (k, v) in params {
            match v {
                Value::String(s) => vars.insert(k.clone(), ParamValue::Str(s.clone())),
                Value::Array(items) if items.iter().all(Value::is_string) => vars.insert(
                    k.clone(),
                    ParamValue::List(items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect()),
                ),
                other => vars.insert(k.clone(), ParamValue::Json(other.clone())),
            };
        }
    }
    if let Some(params) = case.get("json_params").and_then(Value::as_object) {
        for (k, v) in params {
            vars.insert(k.clone(), ParamValue::Json(v.clone()));
        }
    }
    vars
}

/// Run one case; returns a description of the mismatch, if any.
fn run(case: &Value) -> Option<String> {
    let id = case["id"].as_str().unwrap_or("?");
    let template = case["template"].as_str().expect("template");
    let opts = RenderOptions {
        test_mode: case.get("test_mode").and_then(Value::as_bool).unwrap_or(false),
        now: Some("2024-01-02 03:04:05".into()),
        ..RenderOptions::default()
    };
    let result = Template::parse(template)
        .map_err(tinybird_template::RenderError::from)
        .and_then(|t| t.render(&variables(case), &opts));
    let ok = case["ok"].as_bool().unwrap_or(false);
    match (ok, result) {
        (true, Ok(r)) => {
            let want = case["sql"].as_str().unwrap_or_default();
            (r.sql != want).then(|| format!("{id}: template {template:?}\n  want {want:?}\n  got  {:?}", r.sql))
        }
        (true, Err(e)) => Some(format!("{id}: template {template:?}\n  want sql {:?}\n  got error {e}", case["sql"])),
        (false, Ok(r)) => {
            Some(format!("{id}: template {template:?}\n  want error {:?}\n  got sql {:?}", case["error"], r.sql))
        }
        (false, Err(e)) => {
            let want = case["error"].as_str().unwrap_or_default();
            if e.to_string() != want {
                return Some(format!(
                    "{id}: template {template:?}\n  want error {want:?}\n  got error  {:?}",
                    e.to_string()
                ));
            }
            if let Some(code) = case.get("code").and_then(Value::as_u64)
                && u64::from(e.http_status()) != code
            {
                return Some(format!("{id}: want status {code}, got {}", e.http_status()));
            }
            if let Some(err) = case.get("err")
                && e.custom_body() != Some(err)
            {
                return Some(format!("{id}: want body {err}, got {:?}", e.custom_body()));
            }
            None
        }
    }
}

fn check_all(cases: &[Value]) {
    let failures: Vec<String> = cases.iter().filter_map(run).collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn shared_conformance_vectors() {
    let cases = load("../../../shared/conformance/template-vectors.json", "tests/data/template-vectors.json");
    assert!(cases.len() >= 30, "expected the 30+ shared vectors, found {}", cases.len());
    check_all(&cases);
}

#[test]
fn reference_recorded_cases() {
    let cases = load("tests/data/reference-cases.json", "tests/data/reference-cases.json");
    assert!(cases.len() >= 200, "expected the recorded reference cases, found {}", cases.len());
    check_all(&cases);
}

/// Differential runs against a case file recorded elsewhere (for example by `tests/data/gen_reference.py` over
/// generated inputs): `TINYBIRD_TEMPLATE_CASES=/path/cases.json cargo test -p tinybird-template -- --ignored`.
#[test]
#[ignore = "needs TINYBIRD_TEMPLATE_CASES"]
fn external_recorded_cases() {
    let path = std::env::var("TINYBIRD_TEMPLATE_CASES").expect("TINYBIRD_TEMPLATE_CASES");
    let text = std::fs::read_to_string(&path).expect("readable case file");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("JSON case list");
    check_all(&cases);
}

/// Random templates from `tests/data/gen_random_inputs.py` (seed 1), recorded with the reference renderer.
#[test]
fn generated_recorded_cases() {
    let cases = load("tests/data/generated-cases.json", "tests/data/generated-cases.json");
    assert!(cases.len() >= 1000, "expected the generated cases, found {}", cases.len());
    check_all(&cases);
}
