//! `tinybird-local [--port 7181] [--project DIR] [--data-dir DIR] [limits…]` and `tinybird-local render`.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use tinybird_local::{LocalServer, Resources};
use tinybird_template::{ParamValue, Variables};

const USAGE: &str = "usage:
  tinybird-local [--port 7181] [--project DIR] [--data-dir DIR] [--host 127.0.0.1]
                 [--query-timeout-secs 10] [--max-concurrent-queries N] [--memory-limit-mb 2048]
                 [--max-result-mb 512] [--max-body-mb 10] [--allow-private-urls]
                 [--engine datafusion|clickhouse] [--chdb PATH] [--libpython PATH]
      --engine clickhouse runs ClickHouse itself (chDB: python3 -m pip install chdb-core==26.9.0);
      TINYBIRD_LOCAL_ENGINE sets the default, TINYBIRD_LOCAL_CHDB / TINYBIRD_LOCAL_LIBPYTHON the paths
  tinybird-local render   (stdin: one {\"template\": \"...\", \"params\": {...}} per line; stdout: {\"sql\"} or {\"error\", \"status\"})";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("render") {
        return render();
    }
    let mut port: u16 = 7181;
    let mut project = None;
    let mut data_dir = None;
    let mut host: std::net::IpAddr = [127, 0, 0, 1].into();
    let mut builder = LocalServer::builder();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let result: Result<(), String> = match arg.as_str() {
            "--port" => {
                value("--port").and_then(|v| v.parse().map(|p| port = p).map_err(|_| format!("invalid port '{v}'")))
            }
            "--project" => value("--project").map(|v| project = Some(v)),
            "--data-dir" => value("--data-dir").map(|v| data_dir = Some(v)),
            "--host" => {
                value("--host").and_then(|v| v.parse().map(|h| host = h).map_err(|_| format!("invalid host '{v}'")))
            }
            "--query-timeout-secs" => number(value("--query-timeout-secs")).map(|n| {
                builder = std::mem::take(&mut builder).query_timeout(std::time::Duration::from_secs_f64(n));
            }),
            "--max-concurrent-queries" => number(value("--max-concurrent-queries"))
                .map(|n| builder = std::mem::take(&mut builder).max_concurrent_queries(n as usize)),
            "--memory-limit-mb" => number(value("--memory-limit-mb"))
                .map(|n| builder = std::mem::take(&mut builder).memory_limit((n * 1048576.0) as usize)),
            "--max-result-mb" => number(value("--max-result-mb"))
                .map(|n| builder = std::mem::take(&mut builder).max_result_bytes((n * 1048576.0) as usize)),
            "--max-body-mb" => number(value("--max-body-mb"))
                .map(|n| builder = std::mem::take(&mut builder).max_body_bytes((n * 1048576.0) as usize)),
            "--engine" => value("--engine").and_then(|v| {
                v.parse::<tinybird_local::EngineKind>().map(|k| builder = std::mem::take(&mut builder).engine(k))
            }),
            "--chdb" => value("--chdb").map(|v| builder = std::mem::take(&mut builder).chdb_library(v)),
            "--libpython" => value("--libpython").map(|v| builder = std::mem::take(&mut builder).libpython(v)),
            "--allow-private-urls" => {
                builder = std::mem::take(&mut builder).allow_private_urls(true);
                Ok(())
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument '{other}'")),
        };
        if let Err(e) = result {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let resources = match project {
            Some(dir) => match Resources::from_dir(&dir) {
                Ok(r) => r,
                Err(errors) => {
                    for e in errors.0 {
                        eprintln!("error: {e}");
                    }
                    return ExitCode::FAILURE;
                }
            },
            None => Resources::new(),
        };
        let mut builder = builder.port(port).resources(resources);
        if let Some(dir) = data_dir {
            builder = builder.data_dir(dir);
        }
        let server = match builder.start_on(host).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Registered before the first line is printed: whoever reads it may interrupt the server at once.
        #[cfg(unix)]
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
        let engine = match server.engine() {
            tinybird_local::EngineKind::DataFusion => "DataFusion",
            tinybird_local::EngineKind::ClickHouse => "ClickHouse (chDB)",
        };
        eprintln!(
            "tinybird-local listening on {} (workspace {}, engine {engine})",
            server.url(),
            server.workspace_id()
        );
        eprintln!("tokens: GET {}/tokens", server.url());
        #[cfg(unix)]
        match interrupt.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// A positive number from a flag's value.
fn number(value: Result<String, String>) -> Result<f64, String> {
    let v = value?;
    match v.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!("invalid value '{v}': expected a positive number")),
    }
}

fn render() -> ExitCode {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let out = match render_line(&line) {
            Ok(sql) => serde_json::json!({ "sql": sql }),
            Err((error, status)) => serde_json::json!({ "error": error, "status": status }),
        };
        if writeln!(stdout, "{out}").is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

fn render_line(line: &str) -> Result<String, (String, u16)> {
    let input: serde_json::Value = serde_json::from_str(line).map_err(|e| (format!("invalid JSON input: {e}"), 400))?;
    let template = input
        .get("template")
        .and_then(|t| t.as_str())
        .ok_or_else(|| ("the input needs a \"template\" string".to_string(), 400))?;
    let mut vars = Variables::new();
    if let Some(params) = input.get("params") {
        let Some(map) = params.as_object() else { return Err(("\"params\" must be an object".into(), 400)) };
        for (k, v) in map {
            let value = match v {
                serde_json::Value::String(s) => ParamValue::Str(s.clone()),
                serde_json::Value::Array(items) => ParamValue::List(
                    items.iter().map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string())).collect(),
                ),
                other => ParamValue::Json(other.clone()),
            };
            vars.insert(k.clone(), value);
        }
    }
    // A template given without its `%` line is still rendered as one, as Tinybird's renderer renders that text.
    let result = if tinybird_template::is_template(template) {
        tinybird_local::template::render(template, &vars, false)
    } else {
        tinybird_local::template::render_body(template, &vars, false)
    };
    result.map_err(|e| (e.message, e.status))
}
