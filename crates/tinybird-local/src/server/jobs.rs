//! Jobs (`/v0/jobs`, `/v0/jobs/{id}`): every import, append and delete leaves one, as Tinybird's Jobs API lists them.
//! This server runs them before answering, so a job is `done` (or `error`) as soon as it exists.

use super::auth::{authenticate, request_token};
use super::error::ApiError;
use super::identity::timestamp_now;
use super::params::{query_value, query_values};
use super::registry::Ws;
use super::state::Workspace;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

/// The most jobs a workspace keeps; older ones are forgotten first.
const MAX_JOBS: usize = 10_000;

/// `http://<Host>` of the request, for absolute URLs in answers (`job_url`, `/examples/query.http`), when the Host is
/// this machine's: an IP address or `localhost`. Any other name (which a caller may set to anything, and which
/// another caller would then follow with its token) gives a relative URL.
pub(super) fn base_url(headers: &HeaderMap) -> String {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return String::new() };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    let local = bare.parse::<std::net::IpAddr>().is_ok() || bare.eq_ignore_ascii_case("localhost");
    if local && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)) {
        format!("http://{host}")
    } else {
        String::new()
    }
}

/// What a finished job did.
pub(super) struct Outcome<'a> {
    pub kind: &'a str,
    pub datasource: &'a str,
    /// Rows written (or deleted), rows quarantined, bytes read.
    pub rows: u64,
    pub quarantined: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Records a finished job and returns it as `GET /v0/jobs/{id}` shows it.
pub(super) fn record(ws: &Workspace, headers: &HeaderMap, outcome: Outcome<'_>) -> serde_json::Value {
    let id = uuid::Uuid::new_v4().to_string();
    let now = timestamp_now();
    let job = serde_json::json!({
        "id": id,
        "job_id": id,
        "kind": outcome.kind,
        "status": "done",
        "created_at": now,
        "started_at": now,
        "updated_at": now,
        "job_url": format!("{}/v0/jobs/{id}", base_url(headers)),
        "datasource": { "name": outcome.datasource },
        "rows_affected": outcome.rows,
        "statistics": { "row_count": outcome.rows, "quarantine_rows": outcome.quarantined, "bytes": outcome.bytes },
        "blocks": [{
            "process_return": [{ "lines": outcome.rows, "quarantine": outcome.quarantined, "bytes": outcome.bytes }],
            "processing_time": outcome.seconds,
        }],
    });
    if let Ok(mut jobs) = ws.jobs.lock() {
        if jobs.len() >= MAX_JOBS {
            let oldest = jobs
                .iter()
                .min_by(|a, b| a.1["created_at"].as_str().cmp(&b.1["created_at"].as_str()))
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                jobs.remove(&oldest);
            }
        }
        jobs.insert(id, job.clone());
    }
    job
}

/// Records a finished run of a pipe (a copy or a sink): the job, with `pipe_name` and the `extra` fields.
pub(super) fn record_pipe_run(
    ws: &Workspace,
    headers: &HeaderMap,
    outcome: Outcome<'_>,
    pipe: &str,
    extra: &[(&str, serde_json::Value)],
) -> serde_json::Value {
    let mut job = record(ws, headers, outcome);
    job["pipe_name"] = serde_json::Value::String(pipe.to_owned());
    for (key, value) in extra {
        job[*key] = value.clone();
    }
    if let Ok(mut jobs) = ws.jobs.lock()
        && let Some(id) = job["id"].as_str()
    {
        jobs.insert(id.to_string(), job.clone());
    }
    job
}

/// Records a job that failed where no caller waits for it (a scheduled copy): status `error`, with the reason.
pub(super) fn record_failure(ws: &Workspace, kind: &str, pipe: &str, why: &str) {
    let id = uuid::Uuid::new_v4().to_string();
    let now = timestamp_now();
    let job = serde_json::json!({
        "id": id,
        "job_id": id,
        "kind": kind,
        "status": "error",
        "error": why,
        "pipe_name": pipe,
        "created_at": now,
        "started_at": now,
        "updated_at": now,
    });
    if let Ok(mut jobs) = ws.jobs.lock() {
        jobs.insert(id, job);
    }
}

/// `GET /v0/jobs[?status=…&kind=…]` (admin): the workspace's jobs, newest first.
pub(super) async fn list(Ws(ws): Ws, RawQuery(query): RawQuery, headers: HeaderMap) -> Result<Response, ApiError> {
    let q = query.as_deref();
    let (principal, _) = authenticate(&ws, request_token(&headers, query_value(q, "token").as_deref()))?;
    principal.require_admin()?;
    let (statuses, kinds) = (query_values(q, "status"), query_values(q, "kind"));
    let mut jobs: Vec<serde_json::Value> = ws
        .jobs
        .lock()
        .map(|j| j.values().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|j| statuses.is_empty() || statuses.iter().any(|s| j["status"] == s.as_str()))
        .filter(|j| kinds.is_empty() || kinds.iter().any(|k| j["kind"] == k.as_str()))
        .collect();
    jobs.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    Ok(axum::Json(serde_json::json!({ "jobs": jobs })).into_response())
}

/// `GET /v0/jobs/{id}`.
pub(super) async fn get(
    Ws(ws): Ws,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&ws, request_token(&headers, query_value(query.as_deref(), "token").as_deref()))?;
    let job = ws
        .jobs
        .lock()
        .ok()
        .and_then(|j| j.get(&id).cloned())
        .ok_or_else(|| ApiError::new(404, format!("Job '{id}' not found")))?;
    Ok(axum::Json(job).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_urls_only_for_this_machine() {
        let url = |host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, host.parse().unwrap());
            base_url(&headers)
        };
        assert_eq!(url("127.0.0.1:7181"), "http://127.0.0.1:7181");
        assert_eq!(url("localhost:7181"), "http://localhost:7181");
        assert_eq!(url("[::1]:7181"), "http://[::1]:7181");
        for other in ["evil.example:80", "evil.example", "localhost.evil.example", "127.0.0.1@evil.example"] {
            assert_eq!(url(other), "", "{other}");
        }
    }
}
