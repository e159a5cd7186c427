//! The `tinybird-local` binary: `render` over stdin, and serving a project folder.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tinybird-local");

#[test]
fn render_reads_json_lines() {
    let mut child = Command::new(BIN).arg("render").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let input = [
        r#"{"template": "% SELECT * FROM t WHERE a = {{String(a)}}", "params": {"a": "x'y"}}"#,
        r#"{"template": "SELECT {{Int32(n, 5)}}", "params": {}}"#,
        r#"{"template": "% SELECT {{String(a, required=True)}}", "params": {}}"#,
        r#"not json"#,
        r#"{"template": "% SELECT {{Array(ids, 'Int32')}}", "params": {"ids": ["1", "2"]}}"#,
        r#"{"template": "SELECT 1", "params": {}}"#,
        r#"{"template": "SELECT * FROM t WHERE s = {{String(s)}}", "params": {"s": "hello"}}"#,
    ]
    .join("\n");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7);
    let sql = |i: usize| lines[i]["sql"].as_str().unwrap_or_else(|| panic!("{}", lines[i])).trim().to_string();
    assert_eq!(sql(0), "SELECT * FROM t WHERE a = 'x\\'y'");
    // How a default is spelled (`5` or `toInt32('5')`) is the template crate's business.
    assert!(sql(1).starts_with("SELECT ") && sql(1).contains('5'), "{}", sql(1));
    assert_eq!(lines[2]["status"], 400);
    assert!(
        lines[2]["error"].as_str().unwrap().starts_with("Template Syntax Error: Required parameter is not defined")
    );
    assert_eq!(lines[3]["status"], 400);
    assert_eq!(sql(4), "SELECT [1,2]");
    // Without a `%` line the text renders exactly, with no line added (Tinybird's reference renderer).
    assert_eq!(lines[5]["sql"], "SELECT 1");
    assert_eq!(lines[6]["sql"], "SELECT * FROM t WHERE s = 'hello'");
}

#[test]
fn serves_a_project_folder() {
    let project = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/project");
    let mut child =
        Command::new(BIN).args(["--port", "0", "--project", project]).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line.split_whitespace().nth(3).unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tokens: serde_json::Value =
        rt.block_on(async { reqwest::get(format!("{url}/tokens")).await.unwrap().json().await.unwrap() });
    let admin = tokens["admin_token"].as_str().unwrap().to_string();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/v0/pipes/top_pages.json"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    let _ = child.kill();
    let _ = child.wait();
    let bad = Command::new(BIN).args(["--port", "nope"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
