//! Deployments (`/v1/deploy`, `/v1/deployments…`) and `/v1/build`, taking datafiles as the official SDK and CLI
//! send them: multipart parts named `data_project://` (and `data_project_vendored://`), one file per part.

use super::auth::{authenticate, request_token};
use super::error::ApiError;
use super::registry::Ws;
use super::state::{Deployment, Workspace};
use crate::resources::Resources;
use axum::extract::{Multipart, Path, RawQuery};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tinybird_template::Variables;

fn flag(query: Option<&str>, key: &str) -> bool {
    super::params::form_pairs(query.unwrap_or("").as_bytes())
        .into_iter()
        .any(|(k, v)| k == key && matches!(v, tinybird_template::ParamValue::Str(ref s) if s == "true" || s == "1"))
}

async fn read_files(mut multipart: Multipart) -> Result<Vec<(String, String)>, ApiError> {
    let mut files = Vec::new();
    while let Some(field) =
        multipart.next_field().await.map_err(|e| ApiError::bad_request(format!("Invalid multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().unwrap_or_default().to_string();
        // Some clients percent-encode the `data_project://` field name; the file name decides then.
        let is_datafile = [".datasource", ".pipe", ".connection"].iter().any(|e| file_name.ends_with(e));
        if !(name.starts_with("data_project")
            || name.contains("data_project")
            || (!name.starts_with("context") && is_datafile))
        {
            continue;
        }
        if super::store::plain_file_name(&file_name).is_none() {
            return Err(ApiError::bad_request(format!(
                "Invalid file name {file_name:?}: each datafile part needs a plain relative file name, such as \
                 `events.datasource` (no `..`, no absolute path)"
            )));
        }
        if !is_datafile {
            // Other project files (fixtures, READMEs) are not resources.
            continue;
        }
        let bytes = field.bytes().await.map_err(|e| ApiError::bad_request(format!("Invalid multipart body: {e}")))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request(format!("[{file_name}] the file is not valid UTF-8")))?;
        files.push((file_name, text));
    }
    if files.is_empty() {
        // A build or deployment replaces the whole project: one without any datafile would delete everything.
        return Err(ApiError::bad_request(
            "The request has no datafiles: send each .datasource and .pipe file as a `data_project://` part",
        ));
    }
    Ok(files)
}

/// Parses the files and checks every node's template renders (in test mode, as Tinybird's parser does).
fn check(files: &[(String, String)], flavor: crate::engine::Flavor) -> Result<Resources, Vec<serde_json::Value>> {
    let resources = Resources::from_files(files.iter().map(|(n, t)| (n.as_str(), t.as_str()))).map_err(|errs| {
        errs.0.into_iter().map(|e| serde_json::json!({ "filename": e.filename, "error": e.error })).collect::<Vec<_>>()
    })?;
    let mut errors = Vec::new();
    let datasources: std::collections::HashSet<&str> = resources.datasources.iter().map(|d| d.name.as_str()).collect();
    let pipes: std::collections::HashSet<&str> = resources.pipes.iter().map(|p| p.name.as_str()).collect();
    for pipe in &resources.pipes {
        for (i, node) in pipe.nodes.iter().enumerate() {
            let sql = match crate::template::render(&node.sql, &Variables::new(), true) {
                Ok(sql) => sql,
                Err(e) => {
                    errors.push(serde_json::json!({ "filename": format!("{}.pipe", pipe.name), "error": format!("node '{}': {}", node.name, e.message) }));
                    continue;
                }
            };
            // Every table a node reads must exist in the project: a datasource (or its quarantine table), another
            // pipe, or another node of the same pipe. Tinybird refuses the deployment otherwise. A node this
            // server cannot parse is left to fail when it runs (the error then names the construct).
            let Ok(translated) = crate::engine::compat::translate(&sql) else { continue };
            for table in translated.tables {
                let known = datasources.contains(table.as_str())
                    || table.strip_suffix("_quarantine").is_some_and(|ds| datasources.contains(ds))
                    || pipes.contains(table.as_str())
                    || pipe.nodes.iter().enumerate().any(|(j, n)| j != i && n.name == table)
                    // Tinybird's service datasources (`tinybird.pipe_stats`, …) deploy; reading them is refused when
                    // the pipe runs. Any other `database.table` is another database: not found.
                    || table.starts_with("tinybird.");
                if !known {
                    errors.push(serde_json::json!({
                        "filename": format!("{}.pipe", pipe.name),
                        "error": format!("node '{}': Resource '{table}' not found", node.name),
                    }));
                }
            }
        }
    }
    for ds in &resources.datasources {
        if let Err(e) = super::state::ingest_columns_for(ds, flavor) {
            errors.push(serde_json::json!({ "filename": format!("{}.datasource", ds.name), "error": e }));
        }
        // What goes into `CREATE TABLE` as text, checked the same on both engines (see the ClickHouse engine).
        if let Err(e) = crate::engine::clickhouse::check_ddl(ds) {
            errors.push(serde_json::json!({ "filename": format!("{}.datasource", ds.name), "error": e.to_string() }));
        }
    }
    if errors.is_empty() { Ok(resources) } else { Err(errors) }
}

fn deployment_json(d: &Deployment) -> serde_json::Value {
    let mut json = serde_json::json!({
        "id": d.id.to_string(),
        "status": d.status,
        "live": d.live,
        "created_at": d.created_at,
        "errors": [],
        "feedback": [],
        "new_data_connector_names": [],
        "changed_data_connector_names": [],
        "deleted_data_connector_names": [],
        "disconnected_data_source_names": [],
        "token_changes": [],
        "data_movements": null,
    });
    if let (Some(obj), Ok(serde_json::Value::Object(changes))) =
        (json.as_object_mut(), serde_json::to_value(&d.changes))
    {
        obj.extend(changes);
    }
    json
}

fn failed(errors: Vec<serde_json::Value>, key: &str) -> Response {
    let message = errors
        .iter()
        .map(|e| format!("[{}] {}", e["filename"].as_str().unwrap_or("unknown"), e["error"].as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("\n");
    let feedback: Vec<_> = errors
        .iter()
        .map(|e| serde_json::json!({ "level": "ERROR", "resource": e["filename"], "message": e["error"] }))
        .collect();
    let body = serde_json::json!({
        "result": "failed",
        "error": message,
        "errors": errors,
        key: { "status": "failed", "errors": errors, "feedback": feedback },
    });
    (axum::http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// `POST /v1/build`: applies the files right away (Tinybird Local and branches).
pub(super) async fn build(
    Ws(ws): Ws,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let (principal, _) =
        authenticate(&ws, request_token(&headers, super::params::query_value(query.as_deref(), "token").as_deref()))?;
    principal.require_admin()?;
    let files = read_files(multipart).await?;
    let resources = match check(&files, ws.engine.flavor()) {
        Ok(r) => r,
        Err(errors) => return Ok(failed(errors, "build")),
    };
    let _lock = ws.deploy_lock.lock().await;
    let changes = ws.apply(&resources, true).await?;
    if let Some(store) = &ws.store {
        store.save_project(&files).map_err(|e| ApiError::internal(format!("could not save the project: {e}")))?;
    }
    let id = next_id(&ws);
    // An unchanged project is a `success` whose change lists are all empty, as Tinybird Local answers it (`tb`
    // prints "No changes. Build skipped." then, and fails on any other `result`).
    let mut build = serde_json::to_value(&changes).unwrap_or_default();
    build["id"] = serde_json::json!(format!("build-{id}"));
    build["feedback"] = serde_json::json!([]);
    for key in ["new_data_connector_names", "changed_data_connector_names", "deleted_data_connector_names"] {
        build[key] = serde_json::json!([]);
    }
    Ok(axum::Json(serde_json::json!({ "result": "success", "build": build })).into_response())
}

fn next_id(ws: &Workspace) -> u64 {
    ws.deployments.lock().map(|d| d.iter().map(|d| d.id).max().unwrap_or(0) + 1).unwrap_or(1)
}

/// `POST /v1/deploy[?check=true][&auto_promote=true][&allow_destructive_operations=true]`.
pub(super) async fn deploy(
    Ws(ws): Ws,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let q = query.as_deref();
    let (principal, _) = authenticate(&ws, request_token(&headers, super::params::query_value(q, "token").as_deref()))?;
    principal.require_admin()?;
    let files = read_files(multipart).await?;
    let resources = match check(&files, ws.engine.flavor()) {
        Ok(r) => r,
        Err(errors) => return Ok(failed(errors, "deployment")),
    };
    let live = ws.deployments.lock().ok().and_then(|d| d.iter().find(|d| d.live).map(|d| d.resources.clone()));
    if live.as_ref() == Some(&resources) {
        let current = ws.deployments.lock().ok().and_then(|d| d.iter().find(|d| d.live).cloned());
        let json = current.as_ref().map(deployment_json).unwrap_or_else(
            || serde_json::json!({ "status": "data_ready", "live": true, "errors": [], "feedback": [] }),
        );
        return Ok(axum::Json(serde_json::json!({ "result": "no_changes", "deployment": json })).into_response());
    }
    if flag(q, "check") {
        return Ok(axum::Json(
            serde_json::json!({ "result": "success", "deployment": { "status": "calculating", "feedback": [] } }),
        )
        .into_response());
    }
    let id = next_id(&ws);
    let mut deployment = Deployment {
        id,
        status: "data_ready".into(),
        live: false,
        resources,
        files,
        changes: Default::default(),
        allow_destructive: flag(q, "allow_destructive_operations"),
        created_at: chrono::Utc::now().to_rfc3339(),
    };
    if flag(q, "auto_promote") {
        promote(&ws, &mut deployment).await?;
    }
    let json = deployment_json(&deployment);
    if let Ok(mut list) = ws.deployments.lock() {
        if deployment.live {
            // Promoted on its own: the deployment it replaces is removed, as Tinybird removes it.
            for d in list.iter_mut().filter(|d| d.live) {
                d.live = false;
                d.status = "deleted".into();
            }
        }
        list.push(deployment);
    }
    Ok(axum::Json(serde_json::json!({ "result": "success", "deployment": json })).into_response())
}

async fn promote(ws: &Workspace, d: &mut Deployment) -> Result<(), ApiError> {
    let _lock = ws.deploy_lock.lock().await;
    d.changes = ws.apply(&d.resources, d.allow_destructive).await?;
    if let Some(store) = &ws.store {
        store.save_project(&d.files).map_err(|e| ApiError::internal(format!("could not save the project: {e}")))?;
    }
    d.live = true;
    d.status = "data_ready".into();
    Ok(())
}

fn admin(ws: &Workspace, headers: &HeaderMap, query: Option<&str>) -> Result<(), ApiError> {
    let (principal, _) =
        authenticate(ws, request_token(headers, super::params::query_value(query, "token").as_deref()))?;
    principal.require_admin()
}

/// `GET /v1/deployments[?include_deleted=true]`: oldest first.
pub(super) async fn list(Ws(ws): Ws, RawQuery(query): RawQuery, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&ws, &headers, query.as_deref())?;
    let include_deleted = flag(query.as_deref(), "include_deleted");
    let list: Vec<_> = ws
        .deployments
        .lock()
        .map(|d| d.iter().filter(|d| include_deleted || d.status != "deleted").map(deployment_json).collect())
        .unwrap_or_default();
    Ok(axum::Json(serde_json::json!({ "deployments": list })).into_response())
}

/// `GET /v1/deployments/{id}`.
pub(super) async fn get(
    Ws(ws): Ws,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&ws, &headers, query.as_deref())?;
    let d = ws
        .deployments
        .lock()
        .ok()
        .and_then(|d| d.iter().find(|d| d.id.to_string() == id).cloned())
        .ok_or_else(|| ApiError::new(404, format!("Deployment {id} not found")))?;
    Ok(axum::Json(serde_json::json!({ "result": "success", "deployment": deployment_json(&d) })).into_response())
}

/// `POST /v1/deployments/{id}/set-live`.
pub(super) async fn set_live(
    Ws(ws): Ws,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&ws, &headers, query.as_deref())?;
    let mut d = ws
        .deployments
        .lock()
        .ok()
        .and_then(|d| d.iter().find(|d| d.id.to_string() == id).cloned())
        .ok_or_else(|| ApiError::new(404, format!("Deployment {id} not found")))?;
    if d.status == "deleted" {
        return Err(ApiError::bad_request(format!("Deployment {id} was deleted and cannot be made live")));
    }
    if !d.live {
        promote(&ws, &mut d).await?;
    }
    if let Ok(mut list) = ws.deployments.lock() {
        for other in list.iter_mut() {
            if other.id == d.id {
                *other = d.clone();
            } else if other.live {
                other.live = false;
                other.status = "data_ready".into();
            }
        }
    }
    Ok(axum::Json(serde_json::json!({ "result": "success", "deployment": deployment_json(&d) })).into_response())
}

/// `DELETE /v1/deployments/{id}`: discards a deployment that is not live.
pub(super) async fn delete(
    Ws(ws): Ws,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&ws, &headers, query.as_deref())?;
    let mut list = ws.deployments.lock().map_err(|_| ApiError::internal("state lock poisoned"))?;
    let Some(d) = list.iter_mut().find(|d| d.id.to_string() == id) else {
        return Err(ApiError::new(404, format!("Deployment {id} not found")));
    };
    if d.live {
        return Err(ApiError::bad_request(format!("Deployment {id} is live and cannot be deleted")));
    }
    // Kept, as `deleted`, so that clients polling it see it go (`tb deployment promote --wait`).
    d.status = "deleted".into();
    d.files = Vec::new();
    Ok(axum::Json(serde_json::json!({ "result": "success", "deployment": deployment_json(d) })).into_response())
}
