//! Who is calling: the admin token, resource tokens from datafiles, or a JWT signed with the admin token.

use super::error::ApiError;
use super::grants::{JwtClaims, JwtLimits, JwtScope, Principal, RateHeaders};
use super::state::Workspace;
use axum::http::HeaderMap;
use jsonwebtoken::Algorithm;

/// The token of a request: `Authorization: Bearer …` or `?token=…`.
pub(super) fn request_token(headers: &HeaderMap, query_token: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        let token = if v.eq_ignore_ascii_case("bearer") {
            ""
        } else {
            v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v).trim()
        };
        if !token.is_empty() {
            return Some(token.to_string());
        }
    }
    query_token.filter(|t| !t.is_empty()).map(str::to_string)
}

/// Authenticates a request and applies the JWT rate limit.
pub(super) fn authenticate(ws: &Workspace, token: Option<String>) -> Result<(Principal, RateHeaders), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::forbidden("Token is missing. Send it as `Authorization: Bearer <token>` or `?token=`"));
    };
    if token.starts_with("p.") {
        if ws.is_admin_token(&token) {
            return Ok((Principal::Admin, Vec::new()));
        }
        return match ws.static_grants(&token) {
            Some(g) => Ok((Principal::Static(g), Vec::new())),
            None => Err(ApiError::forbidden("Invalid token")),
        };
    }
    let claims = verify_jwt(ws, &token)?;
    let headers = ws.rate_limit(&claims)?;
    Ok((Principal::Jwt(claims), headers))
}

/// Verifies with the SDK's own verifier (`tinybird_core::jwt::verify`), so the server and the SDK refuse exactly the
/// same tokens: any alg but HS256 (`none` included), a bad signature, a missing or past `exp`, another workspace.
fn verify_jwt(ws: &Workspace, token: &str) -> Result<JwtClaims, ApiError> {
    let admin_token = std::str::from_utf8(ws.signing_key()).map_err(|_| ApiError::internal("invalid signing key"))?;
    let key = tinybird_core::jwt::SigningKey::with_workspace_id(admin_token, ws.id.clone())
        .map_err(|_| ApiError::internal("invalid signing key"))?;
    // VerifyError's text never includes the token itself.
    let claims =
        tinybird_core::jwt::verify(token, &key).map_err(|e| ApiError::forbidden(format!("Invalid token: {e}")))?;
    Ok(JwtClaims {
        workspace_id: claims.workspace_id,
        name: claims.name,
        exp: claims.exp,
        scopes: claims
            .scopes
            .into_iter()
            .map(|s| JwtScope {
                kind: s.kind.as_str().to_string(),
                resource: s.resource,
                fixed_params: s.fixed_params,
                filter: s.filter,
            })
            .collect(),
        limits: claims.limits.map(|l| JwtLimits { rps: l.rps }),
    })
}

/// Signs a JWT with the workspace's admin token.
pub(super) fn sign_jwt(ws: &Workspace, claims: &JwtClaims) -> Result<String, ApiError> {
    let header = jsonwebtoken::Header::new(Algorithm::HS256);
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_secret(ws.signing_key()))
        .map_err(|_| ApiError::internal("could not sign the JWT"))
}
