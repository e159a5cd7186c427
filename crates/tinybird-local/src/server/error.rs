//! API errors: Tinybird's `{"error", "documentation"}` bodies with Tinybird's statuses.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const DOCS: &str = "https://www.tinybird.co/docs/api-reference/overview#errors";

/// An error response.
#[derive(Debug, Clone)]
pub(super) struct ApiError {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    /// `{"error": message, "documentation": …}` with a status.
    pub(super) fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: serde_json::json!({ "error": message.into(), "documentation": DOCS }),
            headers: Vec::new(),
        }
    }

    /// A body sent exactly as given (`custom_error`).
    pub(super) fn raw(status: u16, body: serde_json::Value) -> ApiError {
        ApiError { status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), body, headers: Vec::new() }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    pub(super) fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, message)
    }

    /// Tinybird answers 403 for resources that do not exist.
    pub(super) fn not_found(resource: &str) -> ApiError {
        ApiError::new(403, format!("Resource '{resource}' not found"))
    }

    pub(super) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, message)
    }

    pub(super) fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }
}

impl From<crate::engine::EngineError> for ApiError {
    fn from(e: crate::engine::EngineError) -> ApiError {
        use crate::engine::EngineError as E;
        match &e {
            E::UnknownTable(name) => ApiError::not_found(name),
            E::Unsupported(_) | E::Syntax(_) | E::Execution(_) | E::Schema(_) | E::ClickHouse(_) => {
                ApiError::bad_request(e.to_string())
            }
            E::Timeout(_) => ApiError::new(408, e.to_string()),
            E::ViewFailed(_) => ApiError::new(422, e.to_string()),
            E::Memory(_) => ApiError::new(400, e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, v);
            }
        }
        response
    }
}
