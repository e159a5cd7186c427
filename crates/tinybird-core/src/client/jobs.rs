//! Jobs (`/v0/jobs`): imports from a URL or a file, deletes and other work Tinybird runs after answering. A job is
//! `waiting`, then `working`, then `done`, `error` or `cancelled`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;

use super::{Client, Request, RetryOn, read_body};
use crate::error::{Error, ErrorKind, Result};

/// A job, as `GET /v0/jobs/{id}` describes it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Job {
    /// Its id.
    #[serde(default)]
    pub id: String,
    /// `import`, `delete_data`, `copy`, `deployment`, …
    #[serde(default)]
    pub kind: String,
    /// `waiting`, `working`, `done`, `error` or `cancelled`.
    #[serde(default)]
    pub status: String,
    /// When it was created, as the server writes it.
    #[serde(default)]
    pub created_at: Option<String>,
    /// When it last changed.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// The whole description, for the fields not modelled here (`blocks`, `statistics`, `datasource`, …).
    #[serde(skip)]
    pub raw: serde_json::Value,
}

impl Job {
    /// Whether it will not change any more (`done`, `error` or `cancelled`).
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "done" | "error" | "cancelled")
    }

    /// The datasource it works on, when it names one.
    pub fn datasource(&self) -> Option<&str> {
        self.raw["datasource"]["name"].as_str()
    }

    /// Rows it wrote and quarantined, summed over its blocks (imports), when the server reports them.
    pub fn rows(&self) -> Option<(u64, u64)> {
        let blocks = self.raw["blocks"].as_array()?;
        let returns = blocks.iter().filter_map(|b| b["process_return"].as_array()).flatten();
        Some(returns.fold((0, 0), |(rows, quarantined), r| {
            (rows + r["lines"].as_u64().unwrap_or(0), quarantined + r["quarantine"].as_u64().unwrap_or(0))
        }))
    }

    /// The server's reason for an `error` or `cancelled` job.
    pub fn error_message(&self) -> Option<String> {
        let mut message = match &self.raw["error"] {
            serde_json::Value::String(s) if !s.is_empty() => s.clone(),
            _ if self.status == "cancelled" => "the job was cancelled".to_owned(),
            _ if self.status == "error" => "the job failed".to_owned(),
            _ => return None,
        };
        if let Some(errors) = self.raw["errors"].as_array().filter(|e| !e.is_empty()) {
            let list: Vec<String> =
                errors.iter().map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned)).collect();
            message.push_str(": ");
            message.push_str(&list.join("; "));
        }
        Some(message)
    }

    fn from_value(raw: serde_json::Value, what: &str) -> Result<Job> {
        let mut job: Job = serde_json::from_value(raw.clone()).map_err(|e| {
            Error::new(ErrorKind::Decode { column: None, row: None }, format!("{what}: unexpected response: {e}"))
        })?;
        job.raw = raw;
        Ok(job)
    }
}

/// How [`Client::wait_job`] polls.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct JobWait {
    poll_interval: Duration,
    max_wait: Duration,
}

impl Default for JobWait {
    fn default() -> Self {
        JobWait { poll_interval: Duration::from_secs(1), max_wait: Duration::from_secs(600) }
    }
}

impl JobWait {
    /// How often to ask (default 1 s).
    pub fn poll_interval(mut self, t: Duration) -> Self {
        self.poll_interval = t;
        self
    }
    /// How long to wait in all (default 10 min); then [`ErrorKind::Timeout`].
    pub fn max_wait(mut self, t: Duration) -> Self {
        self.max_wait = t;
        self
    }
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(Error::new(ErrorKind::BadRequest, format!("invalid job id {id:?}")));
    }
    Ok(())
}

impl Client {
    /// Sends a request and reads its JSON answer.
    async fn json(&self, req: Request<'_>) -> Result<(serde_json::Value, String)> {
        let what = req.what.clone();
        let body = read_body(&what, self.send(req).await?).await?;
        let raw = serde_json::from_slice(&body).map_err(|e| {
            Error::new(ErrorKind::Decode { column: None, row: None }, format!("{what}: unexpected response: {e}"))
        })?;
        Ok((raw, what))
    }

    /// One job (`GET /v0/jobs/{id}`).
    pub async fn job(&self, id: &str) -> Result<Job> {
        check_id(id)?;
        let url = self.url(&["v0", "jobs", id], []);
        let (raw, what) =
            self.json(Request::new(Method::GET, url, RetryOn::Idempotent).timeout(self.timeouts().admin)).await?;
        Job::from_value(raw, &what)
    }

    /// The workspace's recent jobs (`GET /v0/jobs`).
    pub async fn jobs(&self) -> Result<Vec<Job>> {
        let url = self.url(&["v0", "jobs"], []);
        let (raw, what) =
            self.json(Request::new(Method::GET, url, RetryOn::Idempotent).timeout(self.timeouts().admin)).await?;
        let list = raw["jobs"].as_array().ok_or_else(|| {
            Error::new(ErrorKind::Decode { column: Some("jobs".into()), row: None }, format!("{what}: no `jobs` list"))
        })?;
        list.iter().map(|j| Job::from_value(j.clone(), &what)).collect()
    }

    /// Runs a copy pipe now (`POST /v0/pipes/{name}/copy`), with these values for its template params, and returns
    /// its job (kind `copy`): wait for it with [`Client::wait_job`]. The pipe writes its result into its
    /// `TARGET_DATASOURCE`, appending or replacing as its `COPY_MODE` says. Needs a token that may run the pipe and
    /// write the target (an admin token does).
    pub async fn copy_pipe(&self, pipe: &str, params: &[(&str, &str)]) -> Result<Job> {
        self.run_pipe(pipe, "copy", params).await
    }

    /// Runs a sink pipe now (`POST /v0/pipes/{name}/sink`), with these values for its template params, and returns
    /// its job (kind `sink`): wait for it with [`Client::wait_job`]. The pipe exports its result through its
    /// connection (a Kafka topic, or files in a bucket).
    pub async fn sink_pipe(&self, pipe: &str, params: &[(&str, &str)]) -> Result<Job> {
        self.run_pipe(pipe, "sink", params).await
    }

    /// Pauses a copy pipe's schedule (`POST /v0/pipes/{name}/copy/pause`): it stops running by itself until
    /// [`Client::resume_copy`]; it can still be run on demand.
    pub async fn pause_copy(&self, pipe: &str) -> Result<()> {
        self.copy_schedule(pipe, "pause").await
    }

    /// Resumes a paused copy pipe's schedule (`POST /v0/pipes/{name}/copy/resume`).
    pub async fn resume_copy(&self, pipe: &str) -> Result<()> {
        self.copy_schedule(pipe, "resume").await
    }

    async fn copy_schedule(&self, pipe: &str, action: &str) -> Result<()> {
        check_pipe_name(pipe)?;
        let url = self.url(&["v0", "pipes", pipe, "copy", action], []);
        // Pausing or resuming twice leaves the same state, so a retry is safe. The answer (the pipe) is not needed:
        // a success status is the whole result.
        let req = Request::new(Method::POST, url, RetryOn::Idempotent).timeout(self.timeouts().admin);
        let what = req.what.clone();
        read_body(&what, self.send(req).await?).await.map(drop)
    }

    /// `POST /v0/pipes/{name}/{kind}` (copy or sink) and the job it answers with.
    async fn run_pipe(&self, pipe: &str, kind: &str, params: &[(&str, &str)]) -> Result<Job> {
        check_pipe_name(pipe)?;
        let url = self.url(&["v0", "pipes", pipe, kind], params.iter().copied());
        let req = Request::new(Method::POST, url, RetryOn::NotIdempotent).timeout(self.timeouts().admin);
        let (mut raw, what) = self.json(req).await?;
        // Tinybird answers with the job itself, or with it under `job`.
        if raw.get("job").is_some_and(serde_json::Value::is_object) {
            raw = raw["job"].take();
        }
        Job::from_value(raw, &what)
    }

    /// Waits until a job finishes: `done` is `Ok`, `error` and `cancelled` are an [`ErrorKind::Job`] error with the
    /// server's reason, and a job still running after [`JobWait::max_wait`] is [`ErrorKind::Timeout`].
    pub async fn wait_job(&self, id: &str, wait: JobWait) -> Result<Job> {
        let started = Instant::now();
        loop {
            let job = self.job(id).await?;
            if job.is_finished() {
                return match job.error_message() {
                    Some(why) if job.status != "done" => {
                        Err(Error::new(ErrorKind::Job, format!("job {id} ({}): {why}", job.kind)))
                    }
                    _ => Ok(job),
                };
            }
            if started.elapsed().saturating_add(wait.poll_interval) > wait.max_wait {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("job {id} was still {} after {:?}", job.status, wait.max_wait),
                ));
            }
            tokio::time::sleep(wait.poll_interval).await;
        }
    }
}

/// Tinybird's name rule, before a pipe's name goes into a URL path.
fn check_pipe_name(pipe: &str) -> Result<()> {
    if tinybird_types::is_valid_name(pipe) {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::BadRequest, format!("invalid pipe name {pipe:?}")))
    }
}
