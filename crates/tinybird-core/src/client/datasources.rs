//! Datasource operations (Tinybird's Data Sources API): append or replace from a URL or a file, delete rows,
//! truncate.

use std::path::PathBuf;

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;

use super::{Body, Client, MultipartPart, MultipartSpec, Request, RetryOn, read_body};
use crate::error::{Error, ErrorKind, Result};

/// Where imported data comes from.
#[derive(Debug, Clone)]
pub enum ImportSource {
    /// A URL Tinybird fetches itself.
    Url(String),
    /// A local file, uploaded. Its extension sets the format (`.csv`, `.ndjson`/`.jsonl`, `.parquet`).
    File(PathBuf),
    /// Bytes uploaded as a file named `filename` (the extension sets the format).
    Bytes {
        /// The file name sent (its extension sets the format).
        filename: String,
        /// The file content.
        data: Bytes,
    },
}

/// The import's counts, as the server reports them, and its job. Tinybird may answer before the import is done;
/// [`ImportResult::wait`] waits for the job and returns its final state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ImportResult {
    /// Rows written.
    #[serde(default)]
    pub successful_rows: u64,
    /// Rows sent to the quarantine datasource.
    #[serde(default)]
    pub quarantined_rows: u64,
    /// The import job, when the server runs it asynchronously.
    #[serde(default)]
    pub import_id: Option<String>,
    /// The job's id (`id`, also sent as `job_id`).
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    job_id: Option<String>,
}

impl ImportResult {
    /// The id of the job that runs the import, when the server names one.
    pub fn job_id(&self) -> Option<&str> {
        self.id.as_deref().or(self.job_id.as_deref()).or(self.import_id.as_deref()).filter(|id| !id.is_empty())
    }

    /// Waits for the import's job to finish ([`Client::wait_job`]): an import that failed is an
    /// [`ErrorKind::Job`] error with the server's reason. An answer that names no job was complete already; its
    /// job is then `None`.
    pub async fn wait(&self, client: &Client, wait: super::JobWait) -> Result<Option<super::Job>> {
        match self.job_id() {
            Some(id) => client.wait_job(id, wait).await.map(Some),
            None => Ok(None),
        }
    }
}

/// Options of [`Client::delete_rows`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct DeleteOptions {
    pub(crate) dry_run: bool,
}

impl DeleteOptions {
    /// Count the rows that would be deleted, without deleting them.
    pub fn dry_run(mut self, on: bool) -> Self {
        self.dry_run = on;
        self
    }
}

/// The answer to a delete: a job (deletes are asynchronous), or the count of a dry run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DeleteResult {
    /// The job id.
    #[serde(default)]
    pub id: Option<String>,
    /// The job id (the API sends both).
    #[serde(default)]
    pub job_id: Option<String>,
    /// Where to poll the job (`GET /v0/jobs/{id}`).
    #[serde(default)]
    pub job_url: Option<String>,
    /// The job's status when created (`waiting`, `working`).
    #[serde(default)]
    pub status: Option<String>,
    /// The delete operation's id.
    #[serde(default)]
    pub delete_id: Option<String>,
    /// Dry runs only.
    #[serde(default)]
    pub rows_to_be_deleted: Option<u64>,
}

impl Client {
    /// Appends data from a URL or a file to `datasource` (`POST /v0/datasources?name=…&mode=append`).
    pub async fn append(&self, datasource: &str, source: ImportSource) -> Result<ImportResult> {
        self.import(datasource, "append", source).await
    }

    /// Replaces all of `datasource`'s data with the data from a URL or a file (`mode=replace`).
    pub async fn replace(&self, datasource: &str, source: ImportSource) -> Result<ImportResult> {
        self.import(datasource, "replace", source).await
    }

    async fn import(&self, datasource: &str, mode: &str, source: ImportSource) -> Result<ImportResult> {
        check_name(datasource)?;
        let (body, format) = match source {
            ImportSource::Url(u) => {
                let format = format_of(&u);
                (Body::form(&[("url", u.as_str())]), format)
            }
            ImportSource::File(path) => {
                let filename = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| Error::config(format!("`{}` is not a file path", path.display())))?;
                let read_path = path.clone();
                let data = tokio::task::spawn_blocking(move || std::fs::read(&read_path))
                    .await
                    .map_err(|e| Error::new(ErrorKind::Config, format!("reading `{}` failed: {e}", path.display())))?
                    .map_err(|e| Error::new(ErrorKind::Config, format!("cannot read `{}`: {e}", path.display())))?;
                let format = format_of(&filename);
                (file_body(filename, Bytes::from(data)), format)
            }
            ImportSource::Bytes { filename, data } => {
                let format = format_of(&filename);
                (file_body(filename, data), format)
            }
        };
        let mut pairs = vec![("name", datasource), ("mode", mode)];
        if let Some(f) = format {
            pairs.push(("format", f));
        }
        let url = self.url(&["v0", "datasources"], pairs);
        let req = Request::new(Method::POST, url, RetryOn::NotIdempotent).body(body).timeout(self.timeouts().admin);
        let what = req.what.clone();
        let resp = self.send(req).await?;
        let bytes = read_body(&what, resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(ErrorKind::Decode { column: None, row: None }, format!("{what}: unexpected response: {e}"))
        })
    }

    /// Deletes the rows matching `condition` (an SQL expression) from `datasource`. The delete runs as a job; the
    /// result names it. With [`DeleteOptions::dry_run`], only counts the rows.
    pub async fn delete_rows(&self, datasource: &str, condition: &str, opts: &DeleteOptions) -> Result<DeleteResult> {
        check_name(datasource)?;
        if condition.trim().is_empty() {
            return Err(Error::new(
                ErrorKind::BadRequest,
                "the delete condition is empty; use `truncate` to delete every row",
            ));
        }
        let url = self.url(&["v0", "datasources", datasource, "delete"], []);
        let mut form = vec![("delete_condition", condition)];
        if opts.dry_run {
            form.push(("dry_run", "true"));
        }
        let req = Request::new(Method::POST, url, RetryOn::NotIdempotent)
            .body(Body::form(&form))
            .timeout(self.timeouts().admin);
        let what = req.what.clone();
        let resp = self.send(req).await?;
        let bytes = read_body(&what, resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(ErrorKind::Decode { column: None, row: None }, format!("{what}: unexpected response: {e}"))
        })
    }

    /// Deletes every row of `datasource` (`POST /v0/datasources/{name}/truncate`).
    pub async fn truncate(&self, datasource: &str) -> Result<()> {
        check_name(datasource)?;
        let url = self.url(&["v0", "datasources", datasource, "truncate"], []);
        // Retrying a truncate is harmless (it has the same effect twice), so reads' retry rules apply.
        let req = Request::new(Method::POST, url, RetryOn::Idempotent).timeout(self.timeouts().admin);
        self.send(req).await?;
        Ok(())
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::new(ErrorKind::BadRequest, "the datasource name is empty"));
    }
    Ok(())
}

fn file_body(filename: String, data: Bytes) -> Body {
    // The field is always named `csv`, whatever the format: that is what the API expects.
    Body::Multipart(MultipartSpec {
        parts: vec![MultipartPart {
            name: "csv".into(),
            filename: Some(filename),
            content_type: "application/octet-stream",
            data,
        }],
    })
}

fn format_of(name: &str) -> Option<&'static str> {
    let path = name.split(['?', '#']).next().unwrap_or(name).to_ascii_lowercase();
    if path.ends_with(".csv") || path.ends_with(".csv.gz") {
        Some("csv")
    } else if path.ends_with(".ndjson") || path.ends_with(".jsonl") || path.ends_with(".ndjson.gz") {
        Some("ndjson")
    } else if path.ends_with(".parquet") {
        Some("parquet")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::format_of;

    #[test]
    fn formats_from_names() {
        assert_eq!(format_of("https://x/data.CSV?sig=1"), Some("csv"));
        assert_eq!(format_of("events.jsonl"), Some("ndjson"));
        assert_eq!(format_of("a.parquet"), Some("parquet"));
        assert_eq!(format_of("a.txt"), None);
    }
}
