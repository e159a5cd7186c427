//! `/tokens` (Tinybird Local's bootstrap route) and the Token API (`/v0/tokens`).

use super::auth::{authenticate, request_token, sign_jwt};
use super::error::ApiError;
use super::grants::{JwtClaims, JwtLimits, JwtScope, ScopeKind, now_unix};
use super::identity::token_id;
use super::params::collect;
use super::registry::Ws;
use super::state::{TokenListing, Workspace};
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

const TOKEN_DOCS: &str = "https://www.tinybird.co/docs/api-reference/token-api.html#post--v0-tokens-?";

fn token_error(message: String) -> ApiError {
    let mut e = ApiError::bad_request(message);
    e.body["documentation"] = serde_json::json!(TOKEN_DOCS);
    e
}

/// `GET /tokens`: the workspace's tokens, unauthenticated, as Tinybird Local serves them.
pub(super) async fn local_tokens(Ws(ws): Ws) -> Response {
    axum::Json(serde_json::json!({
        "user_token": ws.user_token(),
        "admin_token": ws.admin_token(),
        "workspace_admin_token": ws.admin_token(),
    }))
    .into_response()
}

/// `GET /v0/tokens`: static tokens (admin only).
pub(super) async fn list(Ws(ws): Ws, RawQuery(query): RawQuery, headers: HeaderMap) -> Result<Response, ApiError> {
    let (params, _) = collect(query.as_deref(), &headers, &[])?;
    let (principal, _) = authenticate(&ws, request_token(&headers, params.get("token").as_deref()))?;
    principal.require_admin()?;
    let mut tokens = vec![serde_json::json!({
        "id": token_id(ws.admin_token()),
        "name": "workspace admin token",
        "token": ws.admin_token(),
        "scopes": [{ "type": "ADMIN" }],
    })];
    for (name, value, scopes) in ws.resource_tokens() {
        tokens.push(token_json(&name, &value, &scopes));
    }
    Ok(axum::Json(serde_json::json!({ "tokens": tokens })).into_response())
}

fn token_json(name: &str, value: &str, scopes: &[(ScopeKind, String)]) -> serde_json::Value {
    let scopes: Vec<_> = scopes.iter().map(|(k, r)| serde_json::json!({ "type": k.as_str(), "resource": r })).collect();
    serde_json::json!({ "id": token_id(value), "name": name, "token": value, "scopes": scopes })
}

/// `GET /v0/tokens/{name}` (admin): one static token, by name or id.
pub(super) async fn get(
    Ws(ws): Ws,
    axum::extract::Path(name): axum::extract::Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (params, _) = collect(query.as_deref(), &headers, &[])?;
    let (principal, _) = authenticate(&ws, request_token(&headers, params.get("token").as_deref()))?;
    principal.require_admin()?;
    let (n, v, s) = static_token(&ws, &name)?;
    Ok(axum::Json(token_json(&n, &v, &s)).into_response())
}

/// The static token a name or a token id names: `(name, value, scopes)`, or a 404.
fn static_token(ws: &Workspace, name_or_id: &str) -> Result<TokenListing, ApiError> {
    ws.resource_tokens()
        .into_iter()
        .find(|(n, v, _)| n == name_or_id || token_id(v) == name_or_id)
        .ok_or_else(|| ApiError::new(404, format!("Token '{name_or_id}' not found")))
}

/// The name of the static token `name_or_id` names (admin only), or a 404.
fn static_token_name(
    ws: &Workspace,
    name_or_id: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<String, ApiError> {
    let (params, _) = collect(query, headers, &[])?;
    let (principal, _) = authenticate(ws, request_token(headers, params.get("token").as_deref()))?;
    principal.require_admin()?;
    if name_or_id == token_id(ws.admin_token()) || name_or_id == "workspace admin token" {
        return Err(ApiError::bad_request(
            "The workspace admin token is this tinybird-local workspace's identity (and JWT signing key): it cannot be \
             refreshed or deleted here",
        ));
    }
    static_token(ws, name_or_id).map(|(name, _, _)| name)
}

/// `POST /v0/tokens/{name}/refresh` (admin): a static token, by name or id, gets a new value; the old one stops
/// working at once.
pub(super) async fn refresh(
    Ws(ws): Ws,
    axum::extract::Path(name_or_id): axum::extract::Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = static_token_name(&ws, &name_or_id, &headers, query.as_deref())?;
    ws.refresh_static_token(&name).ok_or_else(|| ApiError::new(404, format!("Token '{name_or_id}' not found")))?;
    let (n, v, s) = static_token(&ws, &name)?;
    Ok(axum::Json(token_json(&n, &v, &s)).into_response())
}

/// `DELETE /v0/tokens/{name}` (admin): a static token, by name or id, stops working. 204 No Content.
pub(super) async fn delete(
    Ws(ws): Ws,
    axum::extract::Path(name_or_id): axum::extract::Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = static_token_name(&ws, &name_or_id, &headers, query.as_deref())?;
    if !ws.delete_static_token(&name) {
        return Err(ApiError::new(404, format!("Token '{name_or_id}' not found")));
    }
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// `PUT /v0/tokens/{name}?scope=…` (admin): replaces a static token's scopes; its value stays.
pub(super) async fn update(
    Ws(ws): Ws,
    axum::extract::Path(name): axum::extract::Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut query_params = super::params::form_pairs(query.as_deref().unwrap_or("").as_bytes());
    let token = query_params.iter().find(|(k, _)| k == "token").and_then(|(_, v)| match v {
        tinybird_template::ParamValue::Str(s) => Some(s.clone()),
        _ => None,
    });
    let (principal, _) = authenticate(&ws, request_token(&headers, token.as_deref()))?;
    principal.require_admin()?;
    if !ws.resource_tokens().iter().any(|(n, _, _)| *n == name) {
        return Err(ApiError::new(404, format!("Token '{name}' not found")));
    }
    query_params.retain(|(k, _)| k != "name");
    query_params.push(("name".into(), tinybird_template::ParamValue::Str(name)));
    create_static(&ws, &query_params, &headers, &body)
}

/// `POST /v0/tokens?name=&expiration_time=`: a JWT (with `expiration_time`) or a static token (`scope=` args).
pub(super) async fn create(
    Ws(ws): Ws,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let query_params = super::params::form_pairs(query.as_deref().unwrap_or("").as_bytes());
    let get = |k: &str| {
        query_params.iter().find(|(n, _)| n == k).map(|(_, v)| match v {
            tinybird_template::ParamValue::Str(s) => s.clone(),
            _ => String::new(),
        })
    };
    let (principal, _) = authenticate(&ws, request_token(&headers, get("token").as_deref()))?;
    if !principal.is_admin() {
        return Err(ApiError::forbidden("Token has not enough permissions to create an Token"));
    }
    let Some(expiration) = get("expiration_time") else {
        return create_static(&ws, &query_params, &headers, &body);
    };
    let exp: i64 = expiration.trim().parse().ok().filter(|e| *e > now_unix()).ok_or_else(|| {
        token_error(format!(
            "The specified expiration time: '{expiration}' is invalid, must be a future unix epoch timestamp indicating the token expiration time"
        ))
    })?;
    let payload: serde_json::Value = if body.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("Invalid body : {e}")))?
    };
    let name = get("name")
        .or_else(|| payload.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| token_error("The 'name' parameter is required".into()))?;
    let scopes_json = payload.get("scopes").cloned().unwrap_or(serde_json::json!([]));
    let scopes: Vec<JwtScope> = match scopes_json {
        serde_json::Value::Array(_) => serde_json::from_value(scopes_json)
            .map_err(|e| token_error(format!("Invalid body, scopes must be a list of scope: {e}")))?,
        _ => return Err(token_error("Invalid body, scopes must be a list of scope".into())),
    };
    for s in &scopes {
        let Some(kind) = ScopeKind::parse(&s.kind) else {
            return Err(token_error(format!(
                "Invalid scope type '{}': use PIPES:READ, DATASOURCES:READ or DATASOURCES:APPEND",
                s.kind
            )));
        };
        if s.resource.is_empty() {
            return Err(token_error(format!(
                "When creating a jwt token for {}, a resource name is required",
                kind.as_str()
            )));
        }
        require_resource(&ws, kind, &s.resource)?;
    }
    let limits = match payload.get("limits") {
        None | Some(serde_json::Value::Null) => None,
        Some(l) => Some(
            serde_json::from_value::<JwtLimits>(l.clone())
                .map_err(|e| ApiError::bad_request(format!("Invalid body : limits: {e}")))?,
        ),
    };
    let claims = JwtClaims { workspace_id: ws.id.clone(), name: name.clone(), exp, scopes, limits };
    let token = sign_jwt(&ws, &claims)?;
    Ok(axum::Json(serde_json::json!({
        "token": token,
        "name": name,
        "exp": exp,
        "scopes": claims.scopes,
        "limits": { "rps": claims.limits.as_ref().and_then(|l| l.rps) },
    }))
    .into_response())
}

/// One `scope=` of a static token: `PIPES:READ:<pipe>`, `DATASOURCES:READ:<datasource>` or
/// `DATASOURCES:APPEND:<datasource>`, naming a resource of the workspace. Tinybird Forward refuses the `:sql_filter`
/// suffix of the classic Token API (row filters belong to JWTs), and so does this server: a token that silently
/// ignored its filter would read every row. Workspace-wide scopes (`ADMIN`, `TOKENS`, `WORKSPACE:READ_ALL`) are not
/// simulated and are refused by name.
fn static_scope(ws: &Workspace, scope: &str) -> Result<(ScopeKind, String), ApiError> {
    let mut parts = scope.splitn(3, ':');
    let kind = format!("{}:{}", parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let Some(kind) = ScopeKind::parse(&kind) else {
        return Err(token_error(format!(
            "Invalid scope '{scope}': tinybird-local creates static tokens with PIPES:READ:<pipe>, \
             DATASOURCES:READ:<datasource> or DATASOURCES:APPEND:<datasource> scopes"
        )));
    };
    let resource = parts.next().unwrap_or("");
    if resource.contains(':') {
        return Err(token_error(format!(
            "Invalid scope '{scope}': the :sql_filter suffix on resource-scoped tokens is not supported in Tinybird \
             Forward; use a JWT with a DATASOURCES:READ filter instead"
        )));
    }
    if resource.is_empty() {
        return Err(token_error(format!("Invalid scope '{scope}': a resource name is required")));
    }
    require_resource(ws, kind, resource)?;
    Ok((kind, resource.to_string()))
}

/// A 400 `Resource '…' not found` unless the workspace has the pipe (`PIPES:READ`) or datasource a scope names.
fn require_resource(ws: &Workspace, kind: ScopeKind, resource: &str) -> Result<(), ApiError> {
    let exists = match kind {
        ScopeKind::PipesRead => ws.pipe(resource).is_some(),
        _ => ws.is_datasource(resource),
    };
    if exists { Ok(()) } else { Err(token_error(format!("Resource '{resource}' not found"))) }
}

fn create_static(
    ws: &Workspace,
    query: &[(String, tinybird_template::ParamValue)],
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                match v {
                    tinybird_template::ParamValue::Str(s) => s.clone(),
                    _ => String::new(),
                },
            )
        })
        .collect();
    let (params, _) = collect(None, headers, body)?;
    let body_scope = params.get("scope");
    if let Some(s) = body_scope {
        pairs.push(("scope".into(), s));
    }
    let name = pairs
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.clone())
        .or_else(|| params.get("name"))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| token_error("The 'name' parameter is required".into()))?;
    let mut scopes = Vec::new();
    for (_, scope) in pairs.iter().filter(|(k, _)| k == "scope") {
        scopes.push(static_scope(ws, scope)?);
    }
    let token = ws.add_static_token(&name, scopes.clone());
    Ok(axum::Json(token_json(&name, &token, &scopes)).into_response())
}
