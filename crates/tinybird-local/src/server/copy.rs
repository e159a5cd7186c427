//! Copy pipes on demand (`POST /v0/pipes/{name}/copy`) and on their schedule (paused and resumed with
//! `POST /v0/pipes/{name}/copy/pause|resume`): the pipe's result, rendered with the request's params, is
//! written into its `TARGET_DATASOURCE` (appended, or replacing what it holds with `COPY_MODE replace`) and the
//! run is recorded as a job of kind `copy`. Copies with a cron `COPY_SCHEDULE` also run by themselves, each minute
//! their schedule matches, unless paused (`run_scheduled`).

use super::access::Access;
use super::auth::{authenticate, request_token};
use super::error::ApiError;
use super::grants::Principal;
use super::params::collect;
use super::registry::Ws;
use super::state::Workspace;
use crate::engine::runtime;
use crate::resources::Pipe;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;

/// `POST /v0/pipes/{name}/copy[?param=value…]`. The token must be able to read the pipe (its fixed params and
/// filters apply, as for an endpoint) and to append to the target; replacing needs an admin token, as an import
/// with `mode=replace` does.
pub(super) async fn run(
    Ws(ws): Ws,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (params, _) = collect(query.as_deref(), &headers, &body)?;
    let (principal, _) = authenticate(&ws, request_token(&headers, params.get("token").as_deref()))?;
    let Some(pipe) = ws.pipe(&name) else { return Err(ApiError::not_found(&name)) };
    let copy = copy_spec(&pipe)?;
    principal.read_pipe(&name)?;
    principal.append(&copy.target)?;
    if copy.replace {
        principal.require_admin()?;
    }
    let vars = params.variables()?;
    let job = execute(&ws, &headers, pipe, principal, vars).await?;
    Ok(axum::Json(job).into_response())
}

/// Runs a copy pipe as `principal` (checked by the caller) with `vars`, and records its job.
async fn execute(
    ws: &Arc<Workspace>,
    headers: &HeaderMap,
    pipe: Pipe,
    principal: Principal,
    vars: tinybird_template::Variables,
) -> Result<serde_json::Value, ApiError> {
    let started = Instant::now();
    let name = pipe.name.clone();
    let copy = copy_spec(&pipe)?;
    let result = run_pipe(ws, pipe, principal, vars, None).await?;
    let rows = ws.rows_for(&copy.target, &result, &format!("copy pipe '{name}'"))?;
    if copy.replace {
        let _lock = ws.deploy_lock.lock().await;
        let _guard = ws.write_guard().await;
        ws.engine.truncate(&copy.target).await?;
        ws.snapshot(&copy.target).await?;
    }
    let (written, _) = ws.append(&copy.target, rows, Vec::new(), true).await?;
    let outcome = super::jobs::Outcome {
        kind: "copy",
        datasource: &copy.target,
        rows: written,
        quarantined: 0,
        bytes: 0,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(super::jobs::record_pipe_run(ws, headers, outcome, &name, &[]))
}

/// The pipe's copy settings, or the error for a pipe that is not a copy pipe.
fn copy_spec(pipe: &Pipe) -> Result<crate::resources::CopySpec, ApiError> {
    pipe.copy.clone().ok_or_else(|| {
        ApiError::bad_request(format!("The pipe '{}' is not a copy pipe (it has no TYPE copy node)", pipe.name))
    })
}

/// A pipe's result as `principal` reads it with `vars` (fixed params and filters apply), on the query runtime, in
/// `output`'s form when given (rows formatted by the engine).
pub(super) async fn run_pipe(
    ws: &Arc<Workspace>,
    pipe: Pipe,
    principal: Principal,
    vars: tinybird_template::Variables,
    output: Option<crate::engine::Output>,
) -> Result<crate::engine::QueryResult, ApiError> {
    let task_ws = ws.clone();
    runtime::run(&ws.limits, async move {
        let ws = task_ws;
        let mut access = Access::new(&ws, &principal, &vars, false);
        let result_of_pipe = access.pipe(&pipe)?;
        let checked = access.finish(result_of_pipe);
        let result = match output {
            Some(output) => ws.engine.run_query_as(checked.query, &checked.scope, output).await?,
            None => ws.engine.run_query(checked.query, &checked.scope).await?,
        };
        Ok::<_, ApiError>(result)
    })
    .await
}

/// Runs, as the scheduler does at each minute, every copy pipe of `ws` whose `COPY_SCHEDULE` matches `at` (UTC)
/// and is not paused, and every sink whose `EXPORT_SCHEDULE` does, with their params' defaults, as the workspace's
/// admin. Each run leaves a job, `done` or, when it fails, `error` with the reason. Returns how many ran.
pub(super) async fn run_scheduled(ws: &Arc<Workspace>, at: chrono::NaiveDateTime) -> usize {
    let due: Vec<Pipe> = {
        let Ok(live) = ws.live.read() else { return 0 };
        let paused = ws.paused_copies.lock().map(|p| p.clone()).unwrap_or_default();
        live.pipes
            .values()
            .filter(|p| !paused.contains(&p.name))
            .filter(|p| {
                let copy = p.copy.as_ref().and_then(|c| c.schedule.as_deref());
                let sink = p.sink.as_ref().and_then(|s| s.get("SCHEDULE"));
                let schedule = copy.or(sink).unwrap_or("@on-demand");
                tinybird_core::pipes::CopySchedule::cron(schedule).is_ok_and(|s| s.matches(at))
            })
            .cloned()
            .collect()
    };
    let count = due.len();
    for pipe in due {
        let name = pipe.name.clone();
        let (kind, vars) = (if pipe.sink.is_some() { "sink" } else { "copy" }, tinybird_template::Variables::new());
        let outcome = if pipe.sink.is_some() {
            super::sink::execute(ws, &HeaderMap::new(), pipe, Principal::Admin, vars).await
        } else {
            execute(ws, &HeaderMap::new(), pipe, Principal::Admin, vars).await
        };
        if let Err(e) = outcome {
            let why = e.body["error"].as_str().map_or_else(|| e.body.to_string(), str::to_owned);
            eprintln!("tinybird-local: the scheduled {kind} '{name}' failed: {why}");
            super::jobs::record_failure(ws, kind, &name, &why);
        }
    }
    count
}

/// `POST /v0/pipes/{name}/copy/pause` and `/copy/resume` (admin): whether a copy pipe's schedule runs. This server
/// runs no schedules (a scheduled copy is refused at deploy), so the state is kept and shown, and a paused copy can
/// still be run on demand, as on Tinybird.
pub(super) async fn pause_or_resume(
    Ws(ws): Ws,
    Path((name, action)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (params, _) = collect(query.as_deref(), &headers, &body)?;
    let (principal, _) = authenticate(&ws, request_token(&headers, params.get("token").as_deref()))?;
    principal.require_admin()?;
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => return Err(ApiError::not_found(&format!("{name}/copy/{action}"))),
    };
    let Some(pipe) = ws.pipe(&name) else { return Err(ApiError::not_found(&name)) };
    copy_spec(&pipe)?;
    let mut set = ws.paused_copies.lock().map_err(|_| ApiError::internal("state lock poisoned"))?;
    if paused {
        set.insert(name.clone());
    } else {
        set.remove(&name);
    }
    let status = if paused { "paused" } else { "running" };
    Ok(axum::Json(serde_json::json!({ "name": name, "type": "copy", "copy_status": status })).into_response())
}
