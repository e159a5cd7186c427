//! The workspace routes: the current workspace (`GET /v1/workspace`), and with the user token (from `/tokens`) the
//! list, creation and deletion of workspaces, as Tinybird Local's clients (`tb`) use them.

use super::auth::{authenticate, request_token};
use super::error::ApiError;
use super::registry::{Registry, Ws};
use super::state::Workspace;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

fn token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    request_token(headers, super::params::query_value(query, "token").as_deref())
}

fn admin(ws: &Workspace, headers: &HeaderMap, query: Option<&str>) -> Result<(), ApiError> {
    let (principal, _) = authenticate(ws, token(headers, query))?;
    principal.require_admin()
}

/// The user token, which manages workspaces: the caller's token must be it.
fn user(registry: &Registry, headers: &HeaderMap, query: Option<&str>) -> Result<(), ApiError> {
    match token(headers, query) {
        Some(t) if registry.is_user_token(&t) => Ok(()),
        Some(_) => Err(ApiError::forbidden(
            "This operation needs the user token (GET /tokens gives it as `user_token`); a workspace's tokens \
             cannot create or delete workspaces",
        )),
        None => Err(ApiError::forbidden("Token is missing. Send it as `Authorization: Bearer <token>` or `?token=`")),
    }
}

fn workspace_json(ws: &Workspace) -> serde_json::Value {
    serde_json::json!({
        "id": ws.id,
        "name": ws.name,
        "token": ws.admin_token(),
        "user_id": "local",
        "user_email": "local@tinybird-local",
        "scope": "ADMIN",
        "role": "admin",
        "main": null,
        "is_branch": false,
        "created_at": ws.created_at(),
    })
}

/// `GET /v1/workspace`: the workspace the token belongs to.
pub(super) async fn current(Ws(ws): Ws, RawQuery(query): RawQuery, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&ws, &headers, query.as_deref())?;
    Ok(axum::Json(workspace_json(&ws)).into_response())
}

/// `GET /v1/user/workspaces`: with the user token or the server's own admin token (the `admin_token` of
/// `/tokens`, which `tb` lists with) every workspace, with another workspace's admin token that one.
pub(super) async fn list(
    State(registry): State<Arc<Registry>>,
    Ws(ws): Ws,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = query.as_deref();
    let everything = user(&registry, &headers, q).is_ok() || {
        admin(&ws, &headers, q)?;
        Arc::ptr_eq(&ws, &registry.own())
    };
    let workspaces: Vec<_> =
        if everything { registry.all().iter().map(|w| workspace_json(w)).collect() } else { vec![workspace_json(&ws)] };
    Ok(axum::Json(serde_json::json!({ "workspaces": workspaces })).into_response())
}

/// `POST /v1/workspaces?name=…` (user token): creates an empty workspace with its own admin token.
pub(super) async fn create(
    State(registry): State<Arc<Registry>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let q = query.as_deref();
    user(&registry, &headers, q)?;
    // The name as a query parameter (`tb`), a form field or a JSON body.
    let name = super::params::query_value(q, "name")
        .or_else(|| super::params::query_value(std::str::from_utf8(&body).ok(), "name"))
        .or_else(|| serde_json::from_slice::<serde_json::Value>(&body).ok()?.get("name")?.as_str().map(str::to_string))
        .ok_or_else(|| ApiError::bad_request("The workspace needs a name: POST /v1/workspaces?name=<name>"))?;
    let ws = registry.create(&name).await?;
    Ok(axum::Json(workspace_json(&ws)).into_response())
}

/// `DELETE /v1/workspaces/{id}` (user token): deletes a workspace (by id or name) and its data.
pub(super) async fn delete(
    State(registry): State<Arc<Registry>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    user(&registry, &headers, query.as_deref())?;
    let ws = registry.delete(&id).await?;
    Ok(axum::Json(serde_json::json!({ "id": ws.id, "name": ws.name, "status": "deleted" })).into_response())
}
