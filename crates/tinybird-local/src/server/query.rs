//! `/v0/pipes/{name}.{format}` and `/v0/sql`.

use super::auth::{Principal, authenticate, request_token};
use super::error::ApiError;
use super::params::{Body, Params, collect};
use super::state::Workspace;
use crate::engine::compat;
use crate::format::{Format, OutputOptions, parse_format, render};
use crate::resources::Pipe;
use crate::template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;
use tinybird_template::{ParamValue, Variables};

/// How deep pipes may read other pipes.
const MAX_PIPE_DEPTH: usize = 8;

fn output_options(params: &Params) -> Result<OutputOptions, ApiError> {
    let flag = |name: &str| -> Result<bool, ApiError> {
        match params.get(name).as_deref() {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(v) if v.parse::<i64>().is_ok() => Err(ApiError::bad_request(format!("{name} must be 0 or 1"))),
            Some(_) => Err(ApiError::bad_request(format!("{name} must be an integer value"))),
        }
    };
    Ok(OutputOptions {
        quote_64bit: flag("output_format_json_quote_64bit_integers")?,
        quote_denormals: flag("output_format_json_quote_denormals")?,
    })
}

fn render_failure(e: template::RenderFailure) -> ApiError {
    match e.custom_body {
        Some(body) => ApiError::raw(e.status, body),
        None => ApiError::new(e.status, e.message),
    }
}

/// `WITH a AS (…), b AS (…) <final>`, merged into `final`'s own WITH list when it has one.
pub(super) fn with_ctes(ctes: &[(String, String)], final_sql: &str) -> String {
    if ctes.is_empty() {
        return final_sql.to_string();
    }
    let list: Vec<String> = ctes.iter().map(|(n, sql)| format!("{} AS (\n{}\n)", compat::quote_ident(n), sql)).collect();
    let trimmed = final_sql.trim_start();
    // `get` rather than indexing: byte 4 may fall inside a multi-byte character of user SQL.
    let after_with = trimmed
        .get(..4)
        .filter(|head| head.eq_ignore_ascii_case("with"))
        .and_then(|_| trimmed.get(4..))
        .filter(|rest| rest.starts_with(|c: char| c.is_whitespace()));
    if let Some(rest) = after_with {
        format!("WITH {},\n{}", list.join(",\n"), rest)
    } else {
        format!("WITH {}\n{}", list.join(",\n"), final_sql)
    }
}

/// Renders a pipe's nodes and composes them: earlier nodes become CTEs the later ones select from by name.
pub(super) fn compose_pipe(pipe: &Pipe, vars: &Variables, test_mode: bool) -> Result<(Vec<(String, String)>, String), ApiError> {
    let Some((last, earlier)) = pipe.nodes.split_last() else {
        return Err(ApiError::bad_request(format!("Pipe '{}' has no nodes", pipe.name)));
    };
    let mut ctes = Vec::new();
    for node in earlier {
        let sql = template::render(&node.sql, vars, test_mode).map_err(render_failure)?;
        ctes.push((node.name.clone(), sql));
    }
    let last_sql = template::render(&last.sql, vars, test_mode).map_err(render_failure)?;
    Ok((ctes, last_sql))
}

/// Resolves references to pipes (as tables) into CTEs, applies DATASOURCES:READ filters and checks access.
fn finish_sql(
    ws: &Workspace,
    principal: &Principal,
    sql: String,
    vars: &Variables,
    test_mode: bool,
    check_access: bool,
) -> Result<String, ApiError> {
    let mut sql = sql;
    for _ in 0..MAX_PIPE_DEPTH {
        let query = compat::parse(&sql).map_err(ApiError::from)?;
        let mut ctes = Vec::new();
        for table in compat::referenced_tables(&query) {
            if ws.is_datasource(&table) {
                if check_access {
                    principal.read_datasource(&table)?;
                }
                continue;
            }
            match ws.pipe(&table) {
                Some(pipe) => {
                    if check_access {
                        principal.read_pipe(&pipe.name)?;
                    }
                    let (inner, last) = compose_pipe(&pipe, vars, test_mode)?;
                    ctes.push((table.clone(), with_ctes(&inner, &last)));
                }
                None if table.ends_with("_quarantine") && principal.is_admin() => {}
                None => return Err(ApiError::not_found(&table)),
            }
        }
        if ctes.is_empty() {
            let filters = principal.filters();
            if filters.is_empty() {
                return Ok(sql);
            }
            let mut query = query;
            compat::apply_filters(&mut query, &filters)?;
            return Ok(query.to_string());
        }
        sql = with_ctes(&ctes, &sql);
    }
    Err(ApiError::bad_request(format!("Pipes read each other more than {MAX_PIPE_DEPTH} levels deep")))
}

async fn execute(ws: &Workspace, sql: &str, format: Format, options: OutputOptions, started: Instant) -> Result<Response, ApiError> {
    let result = ws.engine.query(sql).await?;
    let body = render(&result, format, options, started.elapsed().as_secs_f64());
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    Ok(response)
}

/// The response with the rate-limit headers `authenticate` returned (a value that is not a valid header is left out).
pub(super) fn add_headers(mut response: Response, headers: super::auth::RateHeaders) -> Response {
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// `GET|POST /v0/pipes/{name}.{json,ndjson,csv,csvwithnames}`.
pub async fn pipe(
    State(ws): State<Arc<Workspace>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (name, ext) = file.rsplit_once('.').unwrap_or((file.as_str(), "json"));
    let format = match ext {
        "json" => Format::Json,
        "ndjson" => Format::JsonEachRow,
        "csv" => Format::Csv,
        "csvwithnames" => Format::CsvWithNames,
        "pipe" => return pipe_datafile(&ws, name, query.as_deref(), &headers),
        other => return Err(ApiError::bad_request(format!("Unsupported format '{other}': use json, ndjson, csv or csvwithnames"))),
    };
    let (params, _) = collect(query.as_deref(), &headers, &body)?;
    let (principal, rate) = authenticate(&ws, request_token(&headers, params.get("token").as_deref()))?;
    let Some(pipe) = ws.pipe(name) else { return Err(ApiError::not_found(name)) };
    let fixed = principal.read_pipe(name)?;
    if !pipe.endpoint {
        return Err(ApiError::new(404, format!("The pipe '{name}' is not published as an API endpoint (it has no TYPE endpoint node)")));
    }
    let options = output_options(&params)?;
    let mut vars = params.variables()?;
    if !fixed.is_empty() {
        let fixed: Variables = fixed.into_iter().map(|(k, v)| (k, ParamValue::Json(v))).collect();
        vars.overlay(&fixed);
    }
    let (mut ctes, last) = compose_pipe(&pipe, &vars, false)?;
    let (sql, format) = match params.get("q") {
        Some(q) => {
            let (q, q_format) = compat::take_format(&q);
            let format = match q_format {
                Some(f) => parse_format(&f).map_err(|(s, m)| ApiError::new(s, m))?,
                None => format,
            };
            // `q` may only read the pipe (`_`) and what the token itself may read.
            let parsed = compat::parse(&q).map_err(ApiError::from)?;
            for table in compat::referenced_tables(&parsed) {
                if table == "_" {
                    continue;
                }
                if ws.is_datasource(&table) {
                    principal.read_datasource(&table)?;
                } else if ws.pipe(&table).is_some() {
                    principal.read_pipe(&table)?;
                } else {
                    return Err(ApiError::not_found(&table));
                }
            }
            ctes.push(("_".to_string(), last));
            (with_ctes(&ctes, &q), format)
        }
        None => (with_ctes(&ctes, &last), format),
    };
    // Access to the pipe covers what it reads; DATASOURCES:READ filters still apply.
    let sql = finish_sql(&ws, &principal, sql, &vars, false, false)?;
    let response = execute(&ws, &sql, format, options, started).await.map_err(|mut e| {
        e.headers.extend(rate.clone());
        e
    })?;
    Ok(add_headers(response, rate))
}

fn pipe_datafile(ws: &Workspace, name: &str, query: Option<&str>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let params = query.map(|q| super::params::form_pairs(q.as_bytes())).unwrap_or_default();
    let token = params.iter().find(|(k, _)| k == "token").map(|(_, v)| match v {
        ParamValue::Str(s) => s.clone(),
        _ => String::new(),
    });
    let (principal, _) = authenticate(ws, request_token(headers, token.as_deref()))?;
    principal.require_admin()?;
    let pipe = ws.pipe(name).ok_or_else(|| ApiError::not_found(name))?;
    let def = tinybird_core::datafile::PipeDef {
        name: pipe.name.clone(),
        nodes: pipe.nodes.clone(),
        tokens: pipe.tokens.clone(),
        kind: if pipe.endpoint { tinybird_core::datafile::PipeKind::Endpoint } else { Default::default() },
        ..Default::default()
    };
    let text = tinybird_core::datafile::write_pipe(&def).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], text).into_response())
}

/// `GET|POST /v0/sql`.
pub async fn sql(
    State(ws): State<Arc<Workspace>>,
    RawQuery(query): RawQuery,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (params, body) = collect(query.as_deref(), &headers, &body)?;
    let (principal, rate) = authenticate(&ws, request_token(&headers, params.get("token").as_deref()))?;
    let q = match (params.get("q"), body) {
        (Some(q), _) => q,
        (None, Body::Text(text)) => text,
        (None, Body::None) if method == axum::http::Method::GET => {
            return Err(ApiError::bad_request("missing q parameter. example q=select%201"));
        }
        (None, Body::None) => return Err(ApiError::bad_request("The request body should contain a query")),
    };
    if q.trim().is_empty() {
        return Err(ApiError::bad_request("The request body should contain a query"));
    }
    let options = output_options(&params)?;
    let vars = params.variables()?;
    let test_mode = vars.is_empty();
    let rendered = template::render(&q, &vars, test_mode).map_err(render_failure)?;
    let (rendered, format_name) = compat::take_format(&rendered);
    let format = match format_name {
        Some(f) => parse_format(&f).map_err(|(s, m)| ApiError::new(s, m))?,
        None => Format::Tsv,
    };
    let mut sql = rendered;
    if let Some(pipeline) = params.get("pipeline") {
        let pipe = ws.pipe(&pipeline).ok_or_else(|| ApiError::not_found(&pipeline))?;
        principal.read_pipe(&pipeline)?;
        let (inner, last) = compose_pipe(&pipe, &vars, test_mode)?;
        sql = with_ctes(&[("_".to_string(), with_ctes(&inner, &last))], &sql);
    }
    let sql = finish_sql(&ws, &principal, sql, &vars, test_mode, true)?;
    let response = execute(&ws, &sql, format, options, started).await?;
    Ok(add_headers(response, rate))
}

/// `GET /v0/pipes` and `/v1/pipes`: the pipes, with their nodes.
pub async fn list_pipes(
    State(ws): State<Arc<Workspace>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (params, _) = collect(query.as_deref(), &headers, &[])?;
    let (principal, _) = authenticate(&ws, request_token(&headers, params.get("token").as_deref()))?;
    let pipes: Vec<Pipe> = ws.live.read().map(|l| l.pipes.values().cloned().collect()).unwrap_or_default();
    let list: Vec<serde_json::Value> = pipes
        .iter()
        .filter(|p| principal.read_pipe(&p.name).is_ok())
        .map(|p| {
            serde_json::json!({
                "id": p.name,
                "name": p.name,
                "type": p.kind.clone().unwrap_or_else(|| "default".into()),
                "endpoint": if p.endpoint { p.nodes.last().map(|n| n.name.clone()) } else { None },
                "nodes": p.nodes.iter().map(|n| serde_json::json!({"name": n.name, "sql": n.sql, "description": n.description})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "pipes": list })).into_response())
}
