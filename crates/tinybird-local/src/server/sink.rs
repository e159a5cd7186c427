//! Sink pipes on demand (`POST /v0/pipes/{name}/sink`) and the connections they export through
//! (`GET /v0/connectors`).
//!
//! A sink here writes one file into a local `file://` folder (its bucket connection's stand-in), as csv or ndjson,
//! plain or gzipped, on demand or on its `EXPORT_SCHEDULE` (the copies' scheduler runs it); what else Tinybird's
//! sinks do (Kafka, real buckets, file-name placeholders, parquet, snappy) is refused at deploy, naming it (see
//! `resources`).

use super::auth::{authenticate, request_token};
use super::error::ApiError;
use super::grants::Principal;
use super::params::collect;
use super::registry::Ws;
use super::state::Workspace;
use crate::format::{Format, OutputOptions, render};
use crate::resources::Pipe;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// `POST /v0/pipes/{name}/sink[?param=value…]` (admin: it writes files on this machine). Renders the pipe with the
/// params, runs it, writes the result to `<EXPORT_BUCKET_URI folder>/<EXPORT_FILE_TEMPLATE>.<csv|ndjson>[.gz]`
/// (with `EXPORT_STRATEGY create_new`, the default, an existing file is kept and `_1`, `_2`… is added to the new
/// one's name; `replace` overwrites it) and records a job of kind `sink` naming the file.
pub(super) async fn run(
    Ws(ws): Ws,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (params, _) = collect(query.as_deref(), &headers, &body)?;
    let (principal, _) = authenticate(&ws, request_token(&headers, params.get("token").as_deref()))?;
    principal.require_admin()?;
    let Some(pipe) = ws.pipe(&name) else { return Err(ApiError::not_found(&name)) };
    let job = execute(&ws, &headers, pipe, principal, params.variables()?).await?;
    Ok(axum::Json(job).into_response())
}

/// Runs a sink pipe as `principal` with `vars`: writes its file and records its job.
pub(super) async fn execute(
    ws: &Arc<Workspace>,
    headers: &HeaderMap,
    pipe: Pipe,
    principal: Principal,
    vars: tinybird_template::Variables,
) -> Result<serde_json::Value, ApiError> {
    let started = Instant::now();
    let name = pipe.name.clone();
    let Some(sink) = pipe.sink.clone() else {
        return Err(ApiError::bad_request(format!("The pipe '{name}' is not a sink pipe (it has no TYPE sink node)")));
    };
    // Checked at deploy; read again here as the plain values they are.
    let folder = sink.get("BUCKET_URI").and_then(|u| u.strip_prefix("file://")).unwrap_or_default();
    let template = sink.get("FILE_TEMPLATE").unwrap_or_default().to_owned();
    let ndjson = sink.get("FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("ndjson"));
    let gzip = sink.get("COMPRESSION").is_some_and(|c| c.eq_ignore_ascii_case("gzip"));
    let replace = sink.get("STRATEGY").is_some_and(|s| s.eq_ignore_ascii_case("replace"));
    if folder.is_empty() || template.is_empty() {
        return Err(ApiError::bad_request(format!("The sink '{name}' has no file:// folder or file template")));
    }
    let format = if ndjson { Format::JsonEachRow } else { Format::Csv };
    let output = format.output(OutputOptions::default());
    let result = super::copy::run_pipe(ws, pipe, principal, vars, Some(output)).await?;
    let text = render(&result, format, OutputOptions::default(), started.elapsed().as_secs_f64());
    let bytes = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).and_then(|()| encoder.finish()).map_err(|e| io_error(&name, &e))?
    } else {
        text.into_bytes()
    };
    let extension = format!("{}{}", if ndjson { "ndjson" } else { "csv" }, if gzip { ".gz" } else { "" });
    let folder = PathBuf::from(folder);
    std::fs::create_dir_all(&folder).map_err(|e| io_error(&name, &e))?;
    let mut path = folder.join(format!("{template}.{extension}"));
    let mut n = 0;
    while !replace && path.exists() {
        n += 1;
        path = folder.join(format!("{template}_{n}.{extension}"));
    }
    std::fs::write(&path, &bytes).map_err(|e| io_error(&name, &e))?;
    let outcome = super::jobs::Outcome {
        kind: "sink",
        datasource: "",
        rows: result.num_rows() as u64,
        quarantined: 0,
        bytes: bytes.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
    };
    let files = serde_json::json!([format!("file://{}", path.display())]);
    Ok(super::jobs::record_pipe_run(ws, headers, outcome, &name, &[("files", files)]))
}

fn io_error(sink: &str, e: &std::io::Error) -> ApiError {
    ApiError::internal(format!("the sink '{sink}' could not write its file: {e}"))
}

/// `GET /v0/connectors` (admin): the deployed connections, by name and service. Their settings are not shown: they
/// hold secrets' names and the services' addresses, which a listing does not need.
pub(super) async fn connectors(
    Ws(ws): Ws,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = super::params::query_value(query.as_deref(), "token");
    let (principal, _) = authenticate(&ws, request_token(&headers, token.as_deref()))?;
    principal.require_admin()?;
    let live = ws.live.read().map_err(|_| ApiError::internal("state lock poisoned"))?;
    let list: Vec<serde_json::Value> = live
        .connections
        .values()
        .map(|c| serde_json::json!({ "id": format!("c_{}", c.name), "name": c.name, "service": c.kind }))
        .collect();
    Ok(axum::Json(serde_json::json!({ "connectors": list })).into_response())
}
