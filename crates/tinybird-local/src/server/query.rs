//! `/v0/pipes/{name}.{format}` and `/v0/sql`.

use super::access::Access;
use super::auth::{authenticate, request_token};
use super::compose::render_failure;
use super::error::ApiError;
use super::params::{Body, Params, collect};
use super::registry::Ws;
use super::state::Workspace;
use crate::engine::{QueryResult, compat, runtime};
use crate::format::{Format, OutputOptions, parse_format, render};
use crate::resources::Pipe;
use crate::template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tinybird_template::ParamValue;

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

/// Splits a `FORMAT` clause off a query: the format it names, or `default`.
fn split_format(sql: &str, default: Format) -> Result<(String, Format), ApiError> {
    let (sql, name) = compat::take_format(sql);
    let format = match name {
        Some(f) => parse_format(&f).map_err(|(s, m)| ApiError::new(s, m))?,
        None => default,
    };
    Ok((sql, format))
}

fn respond(result: &QueryResult, format: Format, options: OutputOptions, started: Instant) -> Response {
    let body = render(result, format, options, started.elapsed().as_secs_f64());
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    response
}

/// The response with the rate-limit headers `authenticate` returned (a value that is not a valid header is left out).
pub(super) fn add_headers(mut response: Response, headers: super::grants::RateHeaders) -> Response {
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// `GET|POST /v0/pipes/{name}.{json,ndjson,csv,csvwithnames}`.
pub(super) async fn pipe(
    Ws(ws): Ws,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Some((name, ext)) = file.rsplit_once('.') else {
        return pipe_detail(&ws, &file, query.as_deref(), &headers);
    };
    let format = match ext {
        "json" => Format::Json,
        "ndjson" => Format::JsonEachRow,
        "csv" => Format::Csv,
        "csvwithnames" => Format::CsvWithNames,
        "pipe" => return pipe_datafile(&ws, name, query.as_deref(), &headers),
        other => {
            return Err(ApiError::bad_request(format!(
                "Unsupported format '{other}': use json, ndjson, csv or csvwithnames"
            )));
        }
    };
    let (params, _) = collect(query.as_deref(), &headers, &body)?;
    let (principal, rate) = authenticate(&ws, request_token(&headers, params.get("token").as_deref()))?;
    let Some(pipe) = ws.pipe(name) else { return Err(ApiError::not_found(name)) };
    principal.read_pipe(name)?;
    if !pipe.endpoint {
        return Err(ApiError::new(
            404,
            format!("The pipe '{name}' is not published as an API endpoint (it has no TYPE endpoint node)"),
        ));
    }
    let options = output_options(&params)?;
    let vars = params.variables()?;
    let q = params.get("q");
    let task_ws = ws.clone();
    // Rendering, parsing, checking and running all happen on the query runtime, under its limits.
    let outcome = runtime::run(&ws.limits, async move {
        let ws = task_ws;
        let mut access = Access::new(&ws, &principal, &vars, false);
        let result_of_pipe = access.pipe(&pipe)?;
        let (checked, format) = match q {
            // `q` reads the pipe's result as `_`, and what the token itself may read.
            Some(q) => {
                let (q, format) = split_format(&q, format)?;
                (access.check(ws.parse(&q)?, Some(result_of_pipe))?, format)
            }
            None => (access.finish(result_of_pipe), format),
        };
        let result = ws.engine.run_query_as(checked.query, &checked.scope, format.output(options)).await?;
        Ok::<_, ApiError>((result, format))
    })
    .await;
    let (result, format) = outcome.map_err(|mut e| {
        e.headers.extend(rate.clone());
        e
    })?;
    Ok(add_headers(respond(&result, format, options, started), rate))
}

fn token_of(query: Option<&str>, headers: &HeaderMap) -> Option<String> {
    let params = query.map(|q| super::params::form_pairs(q.as_bytes())).unwrap_or_default();
    let token = params.into_iter().find(|(k, _)| k == "token").map(|(_, v)| match v {
        ParamValue::Str(s) => s,
        _ => String::new(),
    });
    request_token(headers, token.as_deref())
}

/// One pipe as the Pipes API lists it: nodes (with their SQL and type), the endpoint node, timestamps.
pub(super) fn pipe_json(ws: &Workspace, p: &Pipe) -> serde_json::Value {
    let endpoint = if p.endpoint { p.nodes.last().map(|n| n.name.clone()) } else { None };
    let last = p.nodes.len().saturating_sub(1);
    let (created, updated) = ws.stamps(&format!("pipe:{}", p.name));
    let nodes: Vec<_> = p
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let node_type = match (&p.kind, i == last) {
                (_, false) => "standard".to_string(),
                (Some(kind), true) => kind.clone(),
                (None, true) if p.endpoint => "endpoint".to_string(),
                (None, true) => "standard".to_string(),
            };
            serde_json::json!({
                "id": format!("{}_{}", p.name, n.name),
                "name": n.name,
                "sql": n.sql,
                "description": n.description,
                "node_type": node_type,
            })
        })
        .collect();
    serde_json::json!({
        "id": p.name,
        "name": p.name,
        "type": p.kind.clone().unwrap_or_else(|| if p.endpoint { "endpoint".into() } else { "default".into() }),
        "endpoint": endpoint,
        "url": endpoint.as_ref().map(|_| format!("/v0/pipes/{}.json", p.name)),
        "nodes": nodes,
        "created_at": created,
        "updated_at": updated,
    })
}

/// `GET /v0/pipes/{name}`: the pipe's description (any token that may read it).
fn pipe_detail(ws: &Workspace, name: &str, query: Option<&str>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let (principal, _) = authenticate(ws, token_of(query, headers))?;
    let pipe = ws.pipe(name).ok_or_else(|| ApiError::not_found(name))?;
    principal.read_pipe(name)?;
    Ok(axum::Json(pipe_json(ws, &pipe)).into_response())
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
    // Exactly `text/plain`: `tb` reads a body as text only when the type is exactly that.
    Ok(([(header::CONTENT_TYPE, "text/plain")], text).into_response())
}

/// `GET|POST /v0/sql`.
pub(super) async fn sql(
    Ws(ws): Ws,
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
    let pipeline = params.get("pipeline");
    let task_ws = ws.clone();
    let (result, format) = runtime::run(&ws.limits, async move {
        let ws = task_ws;
        let test_mode = vars.is_empty();
        let rendered = template::render(&q, &vars, test_mode).map_err(render_failure)?;
        let (rendered, format) = split_format(&rendered, Format::Tsv)?;
        let mut access = Access::new(&ws, &principal, &vars, test_mode);
        // `pipeline=NAME`: `_` reads that pipe.
        let underscore = match pipeline {
            Some(pipeline) => {
                let pipe = ws.pipe(&pipeline).ok_or_else(|| ApiError::not_found(&pipeline))?;
                Some(access.pipe(&pipe)?)
            }
            None => None,
        };
        let checked = access.check(ws.parse(&rendered)?, underscore)?;
        let result = ws.engine.run_query_as(checked.query, &checked.scope, format.output(options)).await?;
        Ok::<_, ApiError>((result, format))
    })
    .await?;
    Ok(add_headers(respond(&result, format, options, started), rate))
}

/// `GET /v0/pipes` and `/v1/pipes`: the pipes, with their nodes.
pub(super) async fn list_pipes(
    Ws(ws): Ws,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (params, _) = collect(query.as_deref(), &headers, &[])?;
    let (principal, _) = authenticate(&ws, request_token(&headers, params.get("token").as_deref()))?;
    let pipes: Vec<Pipe> = ws.live.read().map(|l| l.pipes.values().cloned().collect()).unwrap_or_default();
    let list: Vec<serde_json::Value> =
        pipes.iter().filter(|p| principal.read_pipe(&p.name).is_ok()).map(|p| pipe_json(&ws, p)).collect();
    Ok(axum::Json(serde_json::json!({ "pipes": list })).into_response())
}

/// `GET /examples/query.http?pipe=<name>&format=json&token=…`: the URL that reads the endpoint with the caller's own
/// token, as plain text (what `tb endpoint url` prints). The token must be able to read the pipe.
pub(super) async fn example_url(
    Ws(ws): Ws,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pairs = super::params::form_pairs(query.as_deref().unwrap_or("").as_bytes());
    let get = |key: &str| {
        pairs.iter().find(|(k, _)| k == key).and_then(|(_, v)| match v {
            ParamValue::Str(s) => Some(s.clone()),
            _ => None,
        })
    };
    let token = request_token(&headers, get("token").as_deref());
    let (principal, _) = authenticate(&ws, token.clone())?;
    let name = get("pipe")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("The 'pipe' parameter is required"))?;
    let pipe = ws.pipe(&name).ok_or_else(|| ApiError::not_found(&name))?;
    principal.read_pipe(&name)?;
    let format = match get("format").as_deref() {
        None | Some("" | "json") => "json",
        Some("ndjson") => "ndjson",
        Some("csv") => "csv",
        Some(other) => {
            return Err(ApiError::bad_request(format!("Unsupported format '{other}': use json, ndjson or csv")));
        }
    };
    let mut url = format!("{}/v0/pipes/{}.{format}", super::jobs::base_url(&headers), pipe.name);
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(token) = &token {
        query.append_pair("token", token);
    }
    let query = query.finish();
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain")], url).into_response())
}
