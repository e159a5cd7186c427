//! The workspace routes Tinybird Local's clients call at start: this server holds one workspace and answers
//! with it (creating a "branch workspace" returns the same one).

use super::auth::{authenticate, request_token};
use super::error::ApiError;
use super::state::Workspace;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

fn token_param(query: Option<&str>) -> Option<String> {
    super::params::form_pairs(query.unwrap_or("").as_bytes()).into_iter().find(|(k, _)| k == "token").map(|(_, v)| {
        match v {
            tinybird_template::ParamValue::Str(s) => s,
            _ => String::new(),
        }
    })
}

fn admin(ws: &Workspace, headers: &HeaderMap, query: Option<&str>) -> Result<(), ApiError> {
    let (principal, _) = authenticate(ws, request_token(headers, token_param(query).as_deref()))?;
    principal.require_admin()
}

fn workspace_json(ws: &Workspace) -> serde_json::Value {
    serde_json::json!({
        "id": ws.id,
        "name": ws.name,
        "token": ws.admin_token(),
        "user_id": ws.id,
        "user_email": "local@tinybird-local",
        "scope": "ADMIN",
        "main": null,
    })
}

/// `GET /v1/workspace`.
pub(super) async fn current(
    State(ws): State<Arc<Workspace>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&ws, &headers, query.as_deref())?;
    Ok(axum::Json(workspace_json(&ws)).into_response())
}

/// `GET /v1/user/workspaces`.
pub(super) async fn list(
    State(ws): State<Arc<Workspace>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&ws, &headers, query.as_deref())?;
    Ok(axum::Json(serde_json::json!({ "workspaces": [workspace_json(&ws)] })).into_response())
}

/// `POST /v1/workspaces`: this server has one workspace; it is returned whatever name is asked for.
pub(super) async fn create(
    State(ws): State<Arc<Workspace>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&ws, &headers, query.as_deref())?;
    Ok(axum::Json(workspace_json(&ws)).into_response())
}
