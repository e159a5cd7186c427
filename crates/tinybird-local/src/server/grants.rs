//! Who a caller is and what it may do, as values: scope kinds, JWT claims, a static token's grants, the
//! authenticated [`Principal`] with its checks. No workspace state: `auth` authenticates requests into these, and
//! the workspace stores them.

use super::error::ApiError;
use axum::http::HeaderName;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// What a scope allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum ScopeKind {
    PipesRead,
    DatasourcesRead,
    DatasourcesAppend,
}

impl ScopeKind {
    pub(super) fn parse(s: &str) -> Option<ScopeKind> {
        match s {
            "PIPES:READ" => Some(ScopeKind::PipesRead),
            "DATASOURCES:READ" => Some(ScopeKind::DatasourcesRead),
            "DATASOURCES:APPEND" => Some(ScopeKind::DatasourcesAppend),
            _ => None,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            ScopeKind::PipesRead => "PIPES:READ",
            ScopeKind::DatasourcesRead => "DATASOURCES:READ",
            ScopeKind::DatasourcesAppend => "DATASOURCES:APPEND",
        }
    }
}

/// A JWT's payload (Tinybird's JWT docs, payload).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct JwtClaims {
    pub workspace_id: String,
    pub name: String,
    pub exp: i64,
    pub scopes: Vec<JwtScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<JwtLimits>,
}

/// One JWT scope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct JwtScope {
    #[serde(rename = "type")]
    pub kind: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_params: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// `limits`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct JwtLimits {
    #[serde(default)]
    pub rps: Option<i64>,
}

/// A static token's grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Grants {
    pub name: String,
    pub scopes: Vec<(ScopeKind, String)>,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(super) enum Principal {
    Admin,
    Static(Grants),
    Jwt(JwtClaims),
}

impl Principal {
    pub(super) fn is_admin(&self) -> bool {
        matches!(self, Principal::Admin)
    }

    fn has(&self, kind: ScopeKind, resource: &str) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Static(g) => g.scopes.iter().any(|(k, r)| *k == kind && r == resource),
            Principal::Jwt(c) => {
                c.scopes.iter().any(|s| ScopeKind::parse(&s.kind) == Some(kind) && s.resource == resource)
            }
        }
    }

    /// Checks PIPES:READ on a pipe; returns the `fixed_params` the token pins on it.
    pub(super) fn read_pipe(&self, pipe: &str) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        if let Principal::Jwt(_) = self {
            return match self.fixed_params(pipe)? {
                Some(fixed) => Ok(fixed),
                None => Err(ApiError::forbidden(format!(
                    "Not enough permissions: the JWT has no PIPES:READ scope on pipe '{pipe}'"
                ))),
            };
        }
        if self.has(ScopeKind::PipesRead, pipe) {
            Ok(Default::default())
        } else {
            Err(ApiError::forbidden(format!(
                "Not enough permissions: the token has no PIPES:READ scope on pipe '{pipe}'"
            )))
        }
    }

    /// The `fixed_params` of every PIPES:READ scope a JWT has on a pipe, together: a scope listed twice cannot undo
    /// the other's pins (the most restrictive wins), and two scopes pinning one param to different values are
    /// refused. None when the JWT has no scope on the pipe (or the caller is not a JWT).
    pub(super) fn fixed_params(
        &self,
        pipe: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ApiError> {
        let Principal::Jwt(c) = self else { return Ok(None) };
        let mut merged: Option<serde_json::Map<String, serde_json::Value>> = None;
        for scope in c.scopes.iter().filter(|s| s.kind == "PIPES:READ" && s.resource == pipe) {
            let merged = merged.get_or_insert_with(Default::default);
            for (key, value) in scope.fixed_params.iter().flatten() {
                match merged.get(key) {
                    Some(existing) if existing != value => {
                        return Err(ApiError::forbidden(format!(
                            "Not enough permissions: the JWT's scopes on pipe '{pipe}' pin `{key}` to different values"
                        )));
                    }
                    Some(_) => {}
                    None => {
                        merged.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        Ok(merged)
    }

    /// Checks DATASOURCES:READ on a datasource.
    pub(super) fn read_datasource(&self, ds: &str) -> Result<(), ApiError> {
        if self.has(ScopeKind::DatasourcesRead, ds) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "Not enough permissions: the token has no DATASOURCES:READ scope on '{ds}'"
            )))
        }
    }

    /// Checks DATASOURCES:APPEND on a datasource.
    pub(super) fn append(&self, ds: &str) -> Result<(), ApiError> {
        if self.has(ScopeKind::DatasourcesAppend, ds) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "Not enough permissions: the token has no DATASOURCES:APPEND scope on '{ds}'"
            )))
        }
    }

    /// The row filters of every DATASOURCES:READ scope on a datasource: all of them apply (a scope without a filter
    /// does not lift another's).
    pub(super) fn filters_for(&self, ds: &str) -> Vec<String> {
        match self {
            Principal::Jwt(c) => c
                .scopes
                .iter()
                .filter(|s| s.kind == "DATASOURCES:READ" && s.resource == ds)
                .filter_map(|s| s.filter.as_ref().filter(|f| !f.trim().is_empty()).cloned())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub(super) fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("Not enough permissions: this operation needs an admin token"))
        }
    }
}

/// Rate-limit headers to add to a successful response.
pub(super) type RateHeaders = Vec<(HeaderName, String)>;

/// Seconds since the epoch.
pub(super) fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
