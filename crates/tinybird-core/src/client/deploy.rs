//! Deployments (as `tb deploy` and the TypeScript SDK's `deploy` use them): `/v1/deploy` to the main workspace and `/v1/build` for branches
//! and local servers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;

use super::{Body, Client, MultipartPart, MultipartSpec, Request, RetryOn, read_body};
use crate::error::{Error, ErrorKind, FileError, Result, file_error_from_json};
use crate::project::{Project, ProjectFile};

/// A step of a deployment, reported to the progress callback.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeployProgress {
    /// Stale, non-live deployments are being discarded.
    CleaningUp {
        /// How many.
        stale: usize,
    },
    /// The datafiles are being uploaded.
    Uploading {
        /// How many datafiles.
        files: usize,
    },
    /// The server accepted the deployment.
    Created {
        /// The new deployment's id.
        id: String,
    },
    /// The deployment is still being prepared (`status` as the server reports it).
    Waiting {
        /// The deployment's id.
        id: String,
        /// Its current status (`calculating`, `creating_schema`, …).
        status: String,
    },
    /// Promoting the deployment.
    SettingLive {
        /// The deployment's id.
        id: String,
    },
    /// Discarding the deployment that was live before.
    RemovingPrevious {
        /// The previous deployment's id.
        id: String,
    },
    /// Finished: `id` is live.
    Live {
        /// The live deployment's id.
        id: String,
    },
}

type ProgressFn = Arc<dyn Fn(&DeployProgress) + Send + Sync>;

/// Options of [`Client::deploy`].
#[derive(Clone)]
#[must_use]
pub struct DeployOptions {
    check: bool,
    allow_destructive: bool,
    wait: bool,
    promote: bool,
    poll_interval: Duration,
    max_wait: Duration,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for DeployOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployOptions")
            .field("check", &self.check)
            .field("allow_destructive", &self.allow_destructive)
            .field("wait", &self.wait)
            .field("promote", &self.promote)
            .field("poll_interval", &self.poll_interval)
            .field("max_wait", &self.max_wait)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            check: false,
            allow_destructive: false,
            wait: true,
            promote: true,
            poll_interval: Duration::from_secs(1),
            max_wait: Duration::from_secs(300),
            progress: None,
        }
    }
}

impl DeployOptions {
    /// Only validate (`?check=true`): nothing is created or promoted.
    pub fn check(mut self, on: bool) -> Self {
        self.check = on;
        self
    }
    /// Allow changes that drop data (`allow_destructive_operations=true`).
    pub fn allow_destructive(mut self, on: bool) -> Self {
        self.allow_destructive = on;
        self
    }
    /// Wait for the deployment (default). Without waiting, [`Client::deploy`] returns
    /// [`DeployOutcome::Submitted`] as soon as the server accepts it; with [`promote`](Self::promote) on (the
    /// default) the server promotes it itself when its data is ready (`auto_promote=true`), as `tb deploy --no-wait`
    /// and the TypeScript SDK's `deploy --no-wait` do.
    pub fn wait(mut self, on: bool) -> Self {
        self.wait = on;
        self
    }
    /// Promote the deployment once its data is ready (default). Off, the deployment is staged: [`Client::deploy`]
    /// waits for `data_ready` and returns [`DeployOutcome::Staged`], the live deployment stays live, and
    /// [`Client::promote_deployment`] or [`Client::discard_deployment`] decides later (`--no-auto`).
    pub fn promote(mut self, on: bool) -> Self {
        self.promote = on;
        self
    }
    /// How often to poll the deployment's status (default 1 s).
    pub fn poll_interval(mut self, t: Duration) -> Self {
        self.poll_interval = t;
        self
    }
    /// How long to wait for the deployment to become ready (default 5 min).
    pub fn max_wait(mut self, t: Duration) -> Self {
        self.max_wait = t;
        self
    }
    /// Called at each step.
    pub fn on_progress(mut self, f: impl Fn(&DeployProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
    fn report(&self, p: DeployProgress) {
        if let Some(f) = &self.progress {
            f(&p);
        }
    }
}

/// One message of the server about a resource.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Feedback {
    /// `ERROR`, `WARNING` or `INFO`.
    #[serde(default)]
    pub level: String,
    /// The resource the message is about, when there is one.
    #[serde(default)]
    pub resource: Option<String>,
    /// The message.
    #[serde(default)]
    pub message: String,
}

/// How a deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeployOutcome {
    /// The project is what is already live.
    NoChanges,
    /// `check` mode: the server validated the project; nothing changed.
    Checked {
        /// What the server said about the project.
        feedback: Vec<Feedback>,
    },
    /// Not waited for ([`DeployOptions::wait`] off): the server accepted deployment `id`.
    Submitted {
        /// The new deployment's id.
        id: String,
        /// Whether the server promotes it itself when its data is ready.
        auto_promote: bool,
        /// What the server said about the project.
        feedback: Vec<Feedback>,
    },
    /// Staged ([`DeployOptions::promote`] off): deployment `id`'s data is ready and it is not live; promote it with
    /// [`Client::promote_deployment`] or drop it with [`Client::discard_deployment`].
    Staged {
        /// The staged deployment's id.
        id: String,
        /// What the server said about the project.
        feedback: Vec<Feedback>,
    },
    /// Deployment `id` is live; `previous` (if any) was removed.
    Deployed {
        /// The deployment now live.
        id: String,
        /// The deployment that was live before (now removed).
        previous: Option<String>,
        /// What the server said about the project.
        feedback: Vec<Feedback>,
    },
}

/// The answer to `/v1/build`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct BuildResult {
    /// `success` or `no_changes`.
    #[serde(default)]
    pub result: String,
    /// Datasources created.
    #[serde(default)]
    pub new_datasource_names: Vec<String>,
    /// Datasources changed.
    #[serde(default)]
    pub changed_datasource_names: Vec<String>,
    /// Datasources removed.
    #[serde(default)]
    pub deleted_datasource_names: Vec<String>,
    /// Pipes created.
    #[serde(default)]
    pub new_pipe_names: Vec<String>,
    /// Pipes changed.
    #[serde(default)]
    pub changed_pipe_names: Vec<String>,
    /// Pipes removed.
    #[serde(default)]
    pub deleted_pipe_names: Vec<String>,
    /// What the server said about the project.
    #[serde(default)]
    pub feedback: Vec<Feedback>,
}

#[derive(Deserialize)]
struct DeployResponse {
    #[serde(default)]
    result: String,
    #[serde(default)]
    deployment: Option<Deployment>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

/// A deployment as `GET /v1/deployments` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Deployment {
    /// Its id (a string in the API; numbers are accepted).
    #[serde(default, deserialize_with = "id_string")]
    pub id: String,
    /// `calculating`, `creating_schema`, `schema_ready`, `data_ready`, `failed`, `deleting`, `deleted`.
    #[serde(default)]
    pub status: String,
    /// Whether it is the live one.
    #[serde(default)]
    pub live: bool,
    /// When it was created (RFC 3339), when the server says.
    #[serde(default)]
    pub created_at: Option<String>,
    /// What the server said about it.
    #[serde(default)]
    pub feedback: Vec<Feedback>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

impl Deployment {
    /// Live, whichever way the server says it (`live: true`, or the older `status: "live"`).
    pub fn is_live(&self) -> bool {
        self.live || self.status == "live"
    }
}

#[derive(Deserialize)]
struct DeploymentList {
    #[serde(default)]
    deployments: Vec<Deployment>,
}

#[derive(Deserialize)]
struct BuildResponse {
    #[serde(default)]
    result: String,
    #[serde(default)]
    build: Option<BuildResult>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

/// Deployment ids are strings in the API, but accept numbers too.
fn id_string<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

fn multipart(files: &[ProjectFile]) -> Body {
    Body::Multipart(MultipartSpec {
        parts: files
            .iter()
            .map(|file| MultipartPart {
                name: "data_project://".into(),
                filename: Some(file.path.clone()),
                content_type: "text/plain",
                data: Bytes::from(file.content.clone()),
            })
            .collect(),
    })
}

/// Per-file errors from `errors` and ERROR-level feedback, the way the server reports them.
fn collect_errors(errors: &[serde_json::Value], feedback: &[Feedback], error: Option<&str>) -> Vec<FileError> {
    let mut out: Vec<FileError> = feedback
        .iter()
        .filter(|f| f.level.eq_ignore_ascii_case("error"))
        .map(|f| FileError { file: f.resource.clone(), message: f.message.clone() })
        .collect();
    out.extend(errors.iter().map(file_error_from_json));
    if out.is_empty()
        && let Some(e) = error
    {
        out.push(FileError { file: None, message: e.to_owned() });
    }
    out
}

fn deploy_error(what: &str, errors: Vec<FileError>) -> Error {
    // A server may report one problem in several places (`feedback`, `deployment.errors`, top-level `errors`):
    // list it once.
    let mut unique: Vec<FileError> = Vec::with_capacity(errors.len());
    for e in errors {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    let errors = unique;
    let list: Vec<String> = errors.iter().map(FileError::to_string).collect();
    let detail = if list.is_empty() { "no reason given".to_owned() } else { list.join("\n") };
    Error::new(ErrorKind::Deploy, format!("{what} failed:\n{detail}")).with_file_errors(errors)
}

fn project_files(project: &Project) -> Result<Vec<ProjectFile>> {
    project.files().map_err(|e| Error::new(ErrorKind::BadRequest, format!("cannot write the project's datafiles: {e}")))
}

fn check_files(files: &[ProjectFile]) -> Result<()> {
    if files.is_empty() {
        return Err(Error::new(ErrorKind::BadRequest, "the project has no datafiles to deploy"));
    }
    Ok(())
}

impl Client {
    /// Deploys datafiles (for example [`Project::files`]) to the
    /// workspace: discards stale deployments, uploads to `/v1/deploy`, waits for `data_ready`, sets it live and
    /// removes the previously live deployment. Errors carry the server's message for each file
    /// ([`Error::file_errors`]).
    pub async fn deploy(&self, files: &[ProjectFile], opts: &DeployOptions) -> Result<DeployOutcome> {
        check_files(files)?;
        let mut previous = None;
        if !opts.check {
            let list = self.deployments().await?;
            previous = list.iter().find(|d| d.is_live()).map(|d| d.id.clone());
            let stale: Vec<&Deployment> = list.iter().filter(|d| !d.is_live() && d.status != "deleted").collect();
            if !stale.is_empty() {
                opts.report(DeployProgress::CleaningUp { stale: stale.len() });
            }
            for d in stale {
                // A stale deployment that cannot be deleted does not block this one; the server will say if it does.
                if let Err(e) = self.delete_deployment(&d.id).await {
                    tracing::warn!(id = %d.id, error = %e, "could not discard a stale deployment");
                }
            }
        }
        opts.report(DeployProgress::Uploading { files: files.len() });
        let mut pairs = Vec::new();
        if opts.check {
            pairs.push(("check", "true"));
        }
        if opts.allow_destructive {
            pairs.push(("allow_destructive_operations", "true"));
        }
        // Not waiting: the server promotes it (waiting, this client promotes it itself once its data is ready).
        let auto_promote = !opts.check && !opts.wait && opts.promote;
        if auto_promote {
            pairs.push(("auto_promote", "true"));
        }
        let url = self.url(&["v1", "deploy"], pairs);
        let what = format!("POST {}", url.path());
        let parsed: DeployResponse = self.upload_datafiles(url, files, "deployment").await?;
        let (feedback, dep_errors, id) = match &parsed.deployment {
            Some(d) => (d.feedback.clone(), d.errors.clone(), d.id.clone()),
            None => (Vec::new(), Vec::new(), String::new()),
        };
        match parsed.result.as_str() {
            "no_changes" => return Ok(DeployOutcome::NoChanges),
            "failed" => {
                let mut errors = dep_errors;
                errors.extend(parsed.errors);
                return Err(deploy_error("deployment", collect_errors(&errors, &feedback, parsed.error.as_deref())));
            }
            _ => {}
        }
        if opts.check {
            return Ok(DeployOutcome::Checked { feedback });
        }
        if id.is_empty() {
            return Err(Error::new(
                ErrorKind::Decode { column: Some("deployment.id".into()), row: None },
                format!("{what}: the response has no deployment id"),
            ));
        }
        opts.report(DeployProgress::Created { id: id.clone() });
        if !opts.wait {
            return Ok(DeployOutcome::Submitted { id, auto_promote, feedback });
        }
        let live = self.wait_ready(&id, opts).await?;
        if !opts.promote {
            return Ok(DeployOutcome::Staged { id, feedback });
        }
        if !live {
            opts.report(DeployProgress::SettingLive { id: id.clone() });
            self.set_live(&id).await?;
        }
        if let Some(prev) = &previous
            && *prev != id
        {
            opts.report(DeployProgress::RemovingPrevious { id: prev.clone() });
            self.delete_previous(prev).await?;
        }
        opts.report(DeployProgress::Live { id: id.clone() });
        Ok(DeployOutcome::Deployed { id, previous, feedback })
    }

    async fn set_live(&self, id: &str) -> Result<()> {
        let url = self.url(&["v1", "deployments", id, "set-live"], []);
        self.send(Request::new(Method::POST, url, RetryOn::NotIdempotent).timeout(self.timeouts().admin)).await?;
        Ok(())
    }

    /// Deletes the deployment a promotion replaced; one the server removed already (404) is done.
    async fn delete_previous(&self, id: &str) -> Result<()> {
        match self.delete_deployment(id).await {
            Err(e) if e.kind() == &ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Promotes a staged deployment (its data must be ready): sets it live, then deletes the deployment that was live
    /// before, whose id is returned. As `tb deployment promote`.
    pub async fn promote_deployment(&self, id: &str) -> Result<Option<String>> {
        let list = self.deployments().await?;
        let target = list.iter().find(|d| d.id == id).ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("deployment {id} not found (or already deleted)"))
        })?;
        if target.is_live() {
            return Ok(None);
        }
        if target.status != "data_ready" {
            return Err(Error::new(
                ErrorKind::BadRequest,
                format!(
                    "deployment {id} is {}; only a deployment whose data is ready (data_ready) can be promoted",
                    target.status
                ),
            ));
        }
        let previous = list.iter().find(|d| d.is_live()).map(|d| d.id.clone());
        self.set_live(id).await?;
        if let Some(prev) = &previous {
            self.delete_previous(prev).await?;
        }
        Ok(previous)
    }

    /// Discards a deployment that is not live (a staged or failed one), as `tb deployment discard`. The live
    /// deployment cannot be discarded: promote another one first.
    pub async fn discard_deployment(&self, id: &str) -> Result<()> {
        let list = self.deployments().await?;
        match list.iter().find(|d| d.id == id) {
            None => Err(Error::new(ErrorKind::NotFound, format!("deployment {id} not found (or already deleted)"))),
            Some(d) if d.is_live() => Err(Error::new(
                ErrorKind::BadRequest,
                format!("deployment {id} is live and cannot be discarded; promote another deployment first"),
            )),
            Some(_) => self.delete_deployment(id).await,
        }
    }

    /// The workspace's deployments, oldest first, without deleted ones (`GET /v1/deployments`).
    pub async fn deployments(&self) -> Result<Vec<Deployment>> {
        let url = self.url(&["v1", "deployments"], []);
        let req = Request::new(Method::GET, url, RetryOn::Idempotent).timeout(self.timeouts().admin);
        let what = req.what.clone();
        let body = read_body(&what, self.send(req).await?).await?;
        let mut list: DeploymentList = serde_json::from_slice(&body).map_err(|e| {
            Error::new(ErrorKind::Decode { column: None, row: None }, format!("{what}: unexpected response: {e}"))
        })?;
        list.deployments.retain(|d| d.status != "deleted");
        Ok(list.deployments)
    }

    async fn delete_deployment(&self, id: &str) -> Result<()> {
        let url = self.url(&["v1", "deployments", id], []);
        // Deleting twice ends in the same state, so it may be retried like a read.
        self.send(Request::new(Method::DELETE, url, RetryOn::Idempotent).timeout(self.timeouts().admin)).await?;
        Ok(())
    }

    /// Waits for `data_ready`; returns whether the deployment is live already (promoted by the server).
    async fn wait_ready(&self, id: &str, opts: &DeployOptions) -> Result<bool> {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            let url = self.url(&["v1", "deployments", id], []);
            let req = Request::new(Method::GET, url, RetryOn::Idempotent).timeout(self.timeouts().admin);
            let what = req.what.clone();
            let body = read_body(&what, self.send(req).await?).await?;
            let parsed: DeployResponse = serde_json::from_slice(&body).map_err(|e| {
                Error::new(ErrorKind::Decode { column: None, row: None }, format!("{what}: unexpected response: {e}"))
            })?;
            let dep = parsed.deployment.ok_or_else(|| {
                Error::new(
                    ErrorKind::Decode { column: Some("deployment".into()), row: None },
                    format!("{what}: no deployment in the response"),
                )
            })?;
            match dep.status.as_str() {
                "data_ready" => return Ok(dep.live),
                "failed" | "error" | "deleted" | "deleting" => {
                    let mut errors = collect_errors(&dep.errors, &dep.feedback, parsed.error.as_deref());
                    if errors.is_empty() {
                        errors.push(FileError { file: None, message: format!("deployment {id} is {}", dep.status) });
                    }
                    return Err(deploy_error("deployment", errors));
                }
                status => {
                    if status != last {
                        opts.report(DeployProgress::Waiting { id: id.to_owned(), status: status.to_owned() });
                        last = status.to_owned();
                    }
                }
            }
            if started.elapsed().saturating_add(opts.poll_interval) > opts.max_wait {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("deployment {id} was not ready after {:?} (last status: {last})", opts.max_wait),
                ));
            }
            tokio::time::sleep(opts.poll_interval).await;
        }
    }

    /// Sends datafiles as the multipart body `/v1/deploy` and `/v1/build` take and decodes the JSON answer. A refusal
    /// that lists per-file errors becomes an [`ErrorKind::Deploy`] error for the `what` ("deployment", "build").
    async fn upload_datafiles<R: serde::de::DeserializeOwned>(
        &self,
        url: reqwest::Url,
        files: &[ProjectFile],
        what_kind: &str,
    ) -> Result<R> {
        let req = Request::new(Method::POST, url, RetryOn::NotIdempotent)
            .body(multipart(files))
            .timeout(self.timeouts().admin);
        let what = req.what.clone();
        let resp = self.send(req).await.map_err(|e| {
            if e.file_errors().is_empty() {
                e
            } else {
                deploy_error(what_kind, e.file_errors().to_vec()).with_status(e.status().unwrap_or(0))
            }
        })?;
        let body = read_body(&what, resp).await?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::new(ErrorKind::Decode { column: None, row: None }, format!("{what}: unexpected response: {e}"))
        })
    }

    /// Deploys a [`Project`]: its datafiles ([`Project::files`]) through [`deploy`](Client::deploy). A project whose
    /// datafiles cannot be written is a [`ErrorKind::BadRequest`] error and nothing is sent.
    pub async fn deploy_project(&self, project: &Project, opts: &DeployOptions) -> Result<DeployOutcome> {
        self.deploy(&project_files(project)?, opts).await
    }

    /// Builds a [`Project`] on a branch or a local server through [`build`](Client::build).
    pub async fn build_project(&self, project: &Project) -> Result<BuildResult> {
        self.build(&project_files(project)?).await
    }

    /// Builds datafiles on a branch or a local server (`POST /v1/build`). A failed build is an
    /// [`ErrorKind::Deploy`] error whose [`Error::file_errors`] list the server's message per file.
    pub async fn build(&self, files: &[ProjectFile]) -> Result<BuildResult> {
        check_files(files)?;
        let url = self.url(&["v1", "build"], []);
        let parsed: BuildResponse = self.upload_datafiles(url, files, "build").await?;
        if parsed.result == "failed" {
            let feedback = parsed.build.as_ref().map(|b| b.feedback.clone()).unwrap_or_default();
            return Err(deploy_error("build", collect_errors(&parsed.errors, &feedback, parsed.error.as_deref())));
        }
        let mut out = parsed.build.unwrap_or_default();
        out.result = parsed.result;
        Ok(out)
    }
}
