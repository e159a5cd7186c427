//! `/v0/events` and the Data Sources API (`/v0/datasources…`, `/v0/jobs/{id}`).

use super::auth::{authenticate, request_token};
use super::error::ApiError;
use super::params::{collect, form_pairs, query_value};
use super::registry::Ws;
use super::state::{Workspace, ingest_columns_for};
use crate::engine::Value;
use crate::ingest::{IngestColumn, Parsed, Quarantined, convert, parse_ndjson};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::io::Read;
use tinybird_template::ParamValue;

fn truthy(v: Option<String>) -> bool {
    matches!(v.as_deref().map(str::to_ascii_lowercase).as_deref(), Some("true" | "1" | "yes"))
}

/// Reads a body up to the limit, then gunzips it when `Content-Encoding: gzip` (also bounded).
async fn read_body(ws: &Workspace, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let limit = ws.config.max_body_bytes;
    let too_large = || {
        ApiError::new(
            413,
            format!("The request body is larger than the limit of {limit} bytes. Split it in several requests."),
        )
    };
    let raw = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(raw);
    }
    let mut out = Vec::new();
    let decoder = flate2::read::GzDecoder::new(&raw[..]);
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("Content-Encoding is gzip but the body is not valid gzip: {e}")))?;
    if out.len() > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(out))
}

/// `POST /v0/events?name=<ds>[&wait=true]`.
pub(super) async fn events(Ws(ws): Ws, RawQuery(query): RawQuery, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let q = query.as_deref();
    let (principal, rate) = authenticate(&ws, request_token(&parts.headers, query_value(q, "token").as_deref()))?;
    let Some(name) = query_value(q, "name").filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request("The 'name' parameter is required: /v0/events?name=<datasource>"));
    };
    let wait = truthy(query_value(q, "wait"));
    let Some((_, columns)) = ws.datasource(&name) else { return Err(ApiError::not_found(&name)) };
    principal.append(&name)?;
    let body = read_body(&ws, &parts.headers, body).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("The request body is empty: send one JSON object per line (NDJSON)"));
    }
    let Parsed { rows, quarantined } = parse_ndjson(&body, &columns);
    let (ok, bad) = ws.append(&name, rows, quarantined, wait).await?;
    let status = if wait { StatusCode::OK } else { StatusCode::ACCEPTED };
    let response =
        (status, axum::Json(serde_json::json!({ "successful_rows": ok, "quarantined_rows": bad }))).into_response();
    Ok(super::query::add_headers(response, rate))
}

fn datasource_json(ws: &Workspace, def: &tinybird_core::DatasourceDef) -> serde_json::Value {
    let columns: Vec<serde_json::Value> = def
        .columns
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "type": c.ty,
                "jsonpath": c.json_path,
                "nullable": c.ty.starts_with("Nullable("),
                "default_value": c.default,
                "codec": c.codec,
            })
        })
        .collect();
    let engine = serde_json::json!({
        "engine": if def.engine.kind.is_empty() { "MergeTree" } else { def.engine.kind.as_str() },
        "sorting_key": def.engine.sorting_key,
        "partition_key": def.engine.partition_key,
        "ttl": def.engine.ttl,
    });
    let (created, updated) = ws.stamps(&format!("datasource:{}", def.name));
    serde_json::json!({
        "id": def.name,
        "name": def.name,
        "created_at": created,
        "updated_at": updated,
        "description": def.description,
        "type": "ndjson",
        "columns": columns,
        "schema": { "columns": columns },
        "engine": engine,
    })
}

/// `GET /v0/datasources`.
pub(super) async fn list(Ws(ws): Ws, RawQuery(query): RawQuery, headers: HeaderMap) -> Result<Response, ApiError> {
    let (principal, _) = authenticate(&ws, request_token(&headers, query_value(query.as_deref(), "token").as_deref()))?;
    let defs: Vec<_> = ws.live.read().map(|l| l.datasources.values().cloned().collect()).unwrap_or_default();
    let mut list = Vec::new();
    for d in defs.iter().filter(|d| principal.read_datasource(&d.name).is_ok() || principal.append(&d.name).is_ok()) {
        let mut json = datasource_json(&ws, d);
        // Row counts of whole tables, for the admin (a filtered token gets its own count from the detail route).
        if principal.is_admin() {
            let sql = format!("SELECT count() FROM {}", crate::engine::compat::quote_ident(&d.name));
            if let Ok(result) = ws.engine.query(&sql).await
                && let Some(Value::UInt(n)) = result.rows().first().and_then(|r| r.first())
            {
                json["statistics"] = serde_json::json!({ "row_count": n });
            }
        }
        list.push(json);
    }
    Ok(axum::Json(serde_json::json!({ "datasources": list })).into_response())
}

/// `GET /v0/datasources/{name}` (also `{name}.datasource` for the datafile text).
pub(super) async fn detail(
    Ws(ws): Ws,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (principal, _) = authenticate(&ws, request_token(&headers, query_value(query.as_deref(), "token").as_deref()))?;
    let (base, datafile) = match name.strip_suffix(".datasource") {
        Some(b) => (b.to_string(), true),
        None => (name.clone(), query_value(query.as_deref(), "format").as_deref() == Some("datasource")),
    };
    principal.read_datasource(&base)?;
    let (def, _) = ws.datasource(&base).ok_or_else(|| ApiError::not_found(&base))?;
    if datafile {
        let text = tinybird_core::datafile::write_datasource(&def).map_err(|e| ApiError::internal(e.to_string()))?;
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], text).into_response());
    }
    let mut json = datasource_json(&ws, &def);
    // The rows this token may read: a filtered JWT sees its own count, not the table's.
    let task_ws = ws.clone();
    let rows = crate::engine::runtime::run(&ws.limits, async move {
        let ws = task_ws;
        let vars = tinybird_template::Variables::new();
        let access = super::access::Access::new(&ws, &principal, &vars, false);
        let sql = format!("SELECT count() FROM {}", crate::engine::compat::quote_ident(&base));
        let checked = access.check(ws.parse(&sql)?, None)?;
        Ok::<_, ApiError>(ws.engine.run_query(checked.query, &checked.scope).await?)
    })
    .await?;
    if let Some(Value::UInt(n)) = rows.rows().first().and_then(|r| r.first()) {
        json["statistics"] = serde_json::json!({ "row_count": n });
    }
    Ok(axum::Json(json).into_response())
}

/// `POST /v0/datasources?name=&mode=append|replace|create`: from a URL (`url=`), an uploaded file (multipart field
/// `csv`) or a schema (`mode=create`).
pub(super) async fn import(Ws(ws): Ws, RawQuery(query): RawQuery, request: Request) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let q = query.as_deref();
    let (principal, _) = authenticate(&ws, request_token(&parts.headers, query_value(q, "token").as_deref()))?;
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mut fields: Vec<(String, ParamValue)> = form_pairs(q.unwrap_or("").as_bytes());
    let mut upload: Option<(String, Bytes)> = None;
    if content_type.starts_with("multipart/form-data") {
        let request = Request::from_parts(parts.clone(), body);
        let mut multipart = <axum::extract::Multipart as axum::extract::FromRequest<()>>::from_request(request, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("Invalid multipart body: {e}")))?;
        while let Some(field) =
            multipart.next_field().await.map_err(|e| ApiError::bad_request(format!("Invalid multipart body: {e}")))?
        {
            let fname = field.name().unwrap_or_default().to_string();
            let file_name = field.file_name().unwrap_or_default().to_string();
            let data =
                field.bytes().await.map_err(|e| ApiError::bad_request(format!("Invalid multipart body: {e}")))?;
            if data.len() > ws.config.max_body_bytes {
                return Err(ApiError::new(413, "The uploaded file is too large"));
            }
            if file_name.is_empty() && fname != "csv" {
                fields.push((fname, ParamValue::Str(String::from_utf8_lossy(&data).into_owned())));
            } else {
                upload = Some((file_name, data));
            }
        }
    } else {
        let bytes = read_body(&ws, &parts.headers, body).await?;
        if content_type.starts_with("application/x-www-form-urlencoded") {
            fields.extend(form_pairs(&bytes));
        } else if !bytes.is_empty() {
            upload = Some((String::new(), bytes));
        }
    }
    let get = |k: &str| {
        fields.iter().find(|(n, _)| n == k).map(|(_, v)| match v {
            ParamValue::Str(s) => s.clone(),
            _ => String::new(),
        })
    };
    let name = get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("The 'name' parameter is required"))?;
    let mode = get("mode").unwrap_or_else(|| "create".into());
    if mode == "create" && get("schema").is_some() {
        principal.require_admin()?;
        return create_from_schema(&ws, &name, &get("schema").unwrap_or_default()).await;
    }
    let (_, columns) = ws.datasource(&name).ok_or_else(|| ApiError::not_found(&name))?;
    match mode.as_str() {
        "append" | "create" => principal.append(&name)?,
        "replace" => principal.require_admin()?,
        other => return Err(ApiError::bad_request(format!("Invalid mode '{other}': use append, replace or create"))),
    }
    let (file_name, data) = match (get("url"), upload) {
        (Some(url), _) => fetch(&url, ws.config.max_body_bytes, ws.config.allow_private_urls).await?,
        (None, Some(u)) => u,
        (None, None) => {
            return Err(ApiError::bad_request("Send the data as `url=<url>` or as a multipart file field named `csv`"));
        }
    };
    let format = get("format").unwrap_or_else(|| {
        let lower = file_name.to_ascii_lowercase();
        let path = lower.split('?').next().unwrap_or(&lower).to_string();
        if path.ends_with(".ndjson") || path.ends_with(".jsonl") || path.ends_with(".json") {
            "ndjson".into()
        } else {
            "csv".into()
        }
    });
    let parsed = match format.as_str() {
        "ndjson" | "jsonl" => parse_ndjson(&data, &columns),
        "csv" => parse_csv(&data, &columns, get("dialect_delimiter").and_then(|d| d.bytes().next()).unwrap_or(b',')),
        other => return Err(ApiError::bad_request(format!("Unsupported format '{other}': use csv or ndjson"))),
    };
    if mode == "replace" {
        let _lock = ws.deploy_lock.lock().await;
        let _guard = ws.write_guard().await;
        match get("replace_condition").filter(|c| !c.trim().is_empty()) {
            Some(cond) => {
                ws.engine.delete(&name, &cond, false).await?;
            }
            None => ws.engine.truncate(&name).await?,
        }
        ws.snapshot(&name).await?;
    }
    let (ok, bad) = ws.append(&name, parsed.rows, parsed.quarantined, true).await?;
    let job = super::jobs::record(
        &ws,
        &parts.headers,
        super::jobs::Outcome {
            kind: "import",
            datasource: &name,
            rows: ok,
            quarantined: bad,
            bytes: data.len() as u64,
            seconds: started.elapsed().as_secs_f64(),
        },
    );
    let import_id = job["id"].clone();
    Ok(axum::Json(serde_json::json!({
        "successful_rows": ok,
        "quarantined_rows": bad,
        "import_id": import_id,
        "job_id": import_id,
        "id": import_id,
        "status": "done",
        "job_url": job["job_url"],
        "datasource": { "name": name },
        "job": job,
    }))
    .into_response())
}

/// `POST /v1/datasources/{name}/append?format=ndjson|csv[&mode=replace][&url=…]`: the body is the data itself (or
/// `url=` names it), as `tb datasource append` and its fixtures send it. Parquet is refused by name.
pub(super) async fn append_v1(
    ws: Ws,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let mut q = form_urlencoded::Serializer::new(String::new()).append_pair("name", &name).finish();
    if let Some(extra) = query.filter(|e| !e.is_empty()) {
        q.push('&');
        q.push_str(&extra);
    }
    // `import` reads the first `mode`: one in the query wins over this default.
    q.push_str("&mode=append");
    import(ws, RawQuery(Some(q)), request).await
}

async fn create_from_schema(ws: &Workspace, name: &str, schema: &str) -> Result<Response, ApiError> {
    if ws.datasource(name).is_some() {
        return Err(ApiError::new(409, format!("Data Source '{name}' already exists")));
    }
    let text = format!("SCHEMA >\n    {}\n", schema.lines().collect::<Vec<_>>().join("\n    "));
    let def =
        tinybird_core::datafile::parse_datasource(name, &text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    ingest_columns_for(&def, ws.engine.flavor()).map_err(ApiError::bad_request)?;
    let _lock = ws.deploy_lock.lock().await;
    let mut resources = crate::resources::Resources::new();
    if let Ok(live) = ws.live.read() {
        resources.datasources = live.datasources.values().cloned().collect();
        resources.pipes = live.pipes.values().cloned().collect();
    }
    resources.datasources.push(def.clone());
    ws.apply(&resources, false).await?;
    Ok(axum::Json(serde_json::json!({ "datasource": datasource_json(ws, &def) })).into_response())
}

/// Downloads a URL import. Only `http`/`https`; loopback, private, link-local and other non-public addresses are
/// refused (unless the server allows them), whether the URL names them, a host name resolves to them, or a
/// redirect leads to them; the body is read in chunks and the download stops as soon as it passes `limit`.
async fn fetch(url: &str, limit: usize, allow_private: bool) -> Result<(String, Bytes), ApiError> {
    let shown = super::urls::redact(url);
    let parsed = reqwest::Url::parse(url).map_err(|e| ApiError::bad_request(format!("Invalid URL {shown}: {e}")))?;
    super::urls::check(&parsed, allow_private)
        .map_err(|why| ApiError::bad_request(format!("Refused to fetch {shown}: {why}")))?;
    let client = super::urls::client(allow_private)
        .map_err(|e| ApiError::internal(format!("could not build an HTTP client: {e}")))?;
    let mut response = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| ApiError::bad_request(format!("Could not fetch {shown}: {}", super::urls::describe(e))))?;
    if !response.status().is_success() {
        return Err(ApiError::bad_request(format!("Could not fetch {shown}: HTTP {}", response.status())));
    }
    let too_large = || ApiError::new(413, format!("The file at {shown} is larger than {limit} bytes"));
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ApiError::bad_request(format!("Could not fetch {shown}: {}", super::urls::describe(e))))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((url.to_string(), Bytes::from(body)))
}

/// CSV rows map to columns by position; a first row equal to the column names is a header.
fn parse_csv(data: &[u8], columns: &[IngestColumn], delimiter: u8) -> Parsed {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(data);
    let mut parsed = Parsed::default();
    for (i, record) in reader.byte_records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                parsed.quarantined.push(Quarantined {
                    values: vec![None; columns.len()],
                    error_columns: vec![],
                    errors: vec![format!("invalid CSV: {e}")],
                });
                continue;
            }
        };
        let fields: Vec<String> = record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        if i == 0 && fields.len() == columns.len() && fields.iter().zip(columns).all(|(f, c)| f == &c.name) {
            continue;
        }
        let mut q =
            Quarantined { values: fields.iter().cloned().map(Some).collect(), error_columns: vec![], errors: vec![] };
        q.values.resize(columns.len(), None);
        if fields.len() != columns.len() {
            q.errors.push(format!("the row has {} fields, the datasource has {} columns", fields.len(), columns.len()));
            parsed.quarantined.push(q);
            continue;
        }
        let mut row = Vec::with_capacity(columns.len());
        for (f, c) in fields.iter().zip(columns) {
            let json = if f == "\\N" {
                serde_json::Value::Null
            } else if matches!(c.ty.base(), crate::types::ChType::Array(_)) {
                serde_json::from_str(&f.replace('\'', "\"")).unwrap_or(serde_json::Value::String(f.clone()))
            } else {
                serde_json::Value::String(f.clone())
            };
            match convert(&json, &c.ty) {
                Ok(v) => row.push(v),
                Err(_) => {
                    q.error_columns.push(c.name.clone());
                    q.errors.push(format!("value '{f}' on column '{}' is not {}", c.name, c.ty));
                }
            }
        }
        if q.errors.is_empty() { parsed.rows.push(row) } else { parsed.quarantined.push(q) }
    }
    parsed
}

/// `POST /v0/datasources/{name}/delete` (`delete_condition`, `dry_run`).
pub(super) async fn delete(
    Ws(ws): Ws,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (params, _) = collect(query.as_deref(), &headers, &body)?;
    let (principal, _) = authenticate(&ws, request_token(&headers, params.get("token").as_deref()))?;
    if ws.datasource(&name).is_none() {
        return Err(ApiError::not_found(&name));
    }
    principal.require_admin()?;
    let condition = params
        .get("delete_condition")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("delete_condition is required, e.g. delete_condition=user_id = 42"))?;
    let dry_run = truthy(params.get("dry_run"));
    // The condition must be one expression on its own: nothing after it, no second statement.
    crate::engine::compat::parse_condition(&condition).map_err(ApiError::from)?;
    if dry_run {
        let n = ws.engine.delete(&name, &condition, true).await?;
        return Ok(axum::Json(serde_json::json!({ "rows_to_be_deleted": n })).into_response());
    }
    let n = {
        let _lock = ws.deploy_lock.lock().await;
        let _guard = ws.write_guard().await;
        let n = ws.engine.delete(&name, &condition, false).await?;
        ws.snapshot(&name).await?;
        n
    };
    let mut job = super::jobs::record(
        &ws,
        &headers,
        super::jobs::Outcome {
            kind: "delete_data",
            datasource: &name,
            rows: n,
            quarantined: 0,
            bytes: 0,
            seconds: 0.0,
        },
    );
    job["delete_id"] = job["id"].clone();
    Ok(axum::Json(job).into_response())
}

/// `POST /v0/datasources/{name}/truncate`.
pub(super) async fn truncate(
    Ws(ws): Ws,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (principal, _) = authenticate(&ws, request_token(&headers, query_value(query.as_deref(), "token").as_deref()))?;
    if ws.datasource(&name).is_none() {
        return Err(ApiError::not_found(&name));
    }
    principal.require_admin()?;
    {
        let _lock = ws.deploy_lock.lock().await;
        let _guard = ws.write_guard().await;
        ws.engine.truncate(&name).await?;
        ws.snapshot(&name).await?;
    }
    Ok(axum::Json(serde_json::json!({ "status": "ok" })).into_response())
}
