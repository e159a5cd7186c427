//! Ingestion over the Events API (Tinybird's Events API): one-shot [`Client::ingest`] and the batching [`Ingestor`].
//!
//! Nothing is dropped silently: every row is either acknowledged by the server (counted as successful or
//! quarantined) or handed back to the caller inside an error.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io::Write;
use std::ops::Range;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::{Body, Client, Request, RetryOn, RetryPolicy, read_body};
use crate::datasource::Datasource;
use crate::error::{Error, ErrorKind, Result};

/// The Events API's per-request limit on the Free plan; bodies are split below it (uncompressed size).
pub const MAX_REQUEST_BYTES: usize = 10 * 1000 * 1000;

/// What the server acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct IngestResult {
    /// Rows written to the datasource.
    #[serde(default)]
    pub successful_rows: u64,
    /// Rows that did not fit the schema and went to `<datasource>_quarantine`.
    #[serde(default)]
    pub quarantined_rows: u64,
}

impl IngestResult {
    fn add(&mut self, other: IngestResult) {
        // The counts are the server's numbers: saturate rather than overflow on a nonsensical answer.
        self.successful_rows = self.successful_rows.saturating_add(other.successful_rows);
        self.quarantined_rows = self.quarantined_rows.saturating_add(other.quarantined_rows);
    }
}

/// The counts an [`Ingestor`] reports for everything acknowledged since the previous `flush`.
pub type IngestReport = IngestResult;

/// Options of one [`Client::ingest`] call, set on its [`Ingest`] (all at once with [`Ingest::options`]).
#[derive(Debug, Clone)]
#[must_use]
pub struct IngestOptions {
    pub(crate) wait: bool,
    pub(crate) gzip: bool,
    pub(crate) max_request_bytes: usize,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry: Option<RetryPolicy>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions { wait: true, gzip: false, max_request_bytes: MAX_REQUEST_BYTES, timeout: None, retry: None }
    }
}

impl IngestOptions {
    /// `wait=true` (default), or `false` to return once the server has queued the rows (202). Without `wait`, a
    /// server error cannot be retried safely, so it is not.
    pub fn wait(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }
    /// Compress request bodies (`Content-Encoding: gzip`).
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }
    /// Largest uncompressed request body (default 10 MB); larger batches are split.
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes.max(1);
        self
    }
    /// Overrides the client's ingest timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// Overrides the client's retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
}

/// Rows to send with the Events API, made by [`Client::ingest`]: set per-call options on it, then `.await` it.
/// Nothing is sent until then.
#[must_use = "rows are sent when the ingest is awaited"]
pub struct Ingest<'a, D> {
    client: &'a Client,
    rows: &'a [D],
    opts: IngestOptions,
}

impl<D: Datasource> Ingest<'_, D> {
    /// `wait=true` (default), or `false` to return once the server has queued the rows (202). Without `wait`, a
    /// server error cannot be retried safely, so it is not.
    pub fn wait(mut self, wait: bool) -> Self {
        self.opts = self.opts.wait(wait);
        self
    }
    /// Compress request bodies (`Content-Encoding: gzip`).
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.opts = self.opts.gzip(gzip);
        self
    }
    /// Largest uncompressed request body (default 10 MB); larger batches are split.
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.opts = self.opts.max_request_bytes(bytes);
        self
    }
    /// Overrides the client's ingest timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.opts = self.opts.timeout(t);
        self
    }
    /// Overrides the client's retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.opts = self.opts.retry(policy);
        self
    }
    /// Replaces every option at once, for options shared by several calls.
    pub fn options(mut self, opts: IngestOptions) -> Self {
        self.opts = opts;
        self
    }
}

impl<'a, D: Datasource> IntoFuture for Ingest<'a, D> {
    type Output = Result<IngestResult>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.client.ingest_to(D::NAME, self.rows, &self.opts).await })
    }
}

impl<D> fmt::Debug for Ingest<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ingest").field("rows", &self.rows.len()).field("options", &self.opts).finish_non_exhaustive()
    }
}

/// Rows serialised as NDJSON, one line per row, each followed by `\n`.
#[derive(Default)]
pub(crate) struct Encoded {
    pub(crate) buf: Vec<u8>,
    /// `ends[i]` is the offset of row i's terminating newline.
    ends: Vec<usize>,
}

impl Encoded {
    /// Appends one row. On failure nothing is appended.
    pub(crate) fn push<T: Serialize + ?Sized>(&mut self, row: &T) -> std::result::Result<(), serde_json::Error> {
        let before = self.buf.len();
        match serde_json::to_writer(&mut self.buf, row) {
            Ok(()) => {
                self.ends.push(self.buf.len());
                self.buf.push(b'\n');
                Ok(())
            }
            Err(e) => {
                self.buf.truncate(before);
                Err(e)
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    fn start(&self, row: usize) -> usize {
        if row == 0 { 0 } else { self.ends[row - 1] + 1 }
    }

    /// The request body for rows `r` (newline-separated, no trailing newline, as the official SDK sends it).
    fn body(&self, r: &Range<usize>) -> &[u8] {
        &self.buf[self.start(r.start)..self.ends[r.end - 1]]
    }

    /// Splits `r` into consecutive ranges whose bodies stay within `max` bytes (a single larger row stays alone).
    fn chunks(&self, r: Range<usize>, max: usize) -> VecDeque<Range<usize>> {
        let mut out = VecDeque::new();
        let mut first = r.start;
        for i in r.clone() {
            if i > first && self.ends[i] - self.start(first) > max {
                out.push_back(first..i);
                first = i;
            }
        }
        if first < r.end {
            out.push_back(first..r.end);
        }
        out
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }
}

/// Gzip at the fastest level: ingest bodies are repetitive JSON, so even level 1 shrinks them several times.
pub(crate) fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), flate2::Compression::fast());
    enc.write_all(data)?;
    enc.finish()
}

/// Encodes rows exactly as the client sends them to the Events API: NDJSON (one object per line, no trailing
/// newline), gzip-compressed when `gzip` is set. Useful to write a batch elsewhere (a dead-letter file, a queue).
pub fn encode_ndjson<T: Serialize>(rows: &[T], gzip_body: bool) -> Result<Vec<u8>> {
    let mut enc = Encoded::default();
    for (i, row) in rows.iter().enumerate() {
        enc.push(row).map_err(|e| Error::new(ErrorKind::Encode, format!("cannot serialise row {i}: {e}")))?;
    }
    if enc.len() == 0 {
        return Ok(Vec::new());
    }
    let body = enc.body(&(0..enc.len()));
    if gzip_body {
        gzip(body).map_err(|e| Error::new(ErrorKind::Encode, format!("gzip failed: {e}")))
    } else {
        Ok(body.to_vec())
    }
}

/// Failures after which the server may have written the batch: timeouts, cut connections, gateway errors, 422
/// (partially ingested) and 5xx other than 500/503 with `wait=true`. Connection failures before sending are retried, not reported here.
fn outcome_unknown(e: &Error, wait: bool) -> bool {
    match (e.kind(), e.status()) {
        (ErrorKind::Timeout | ErrorKind::Transport, _) => true,
        // With `wait=true` Tinybird answers 500/503 only when the write did not happen.
        (_, Some(500 | 503)) => !wait,
        (_, Some(status)) => status == 422 || status >= 500,
        _ => false,
    }
}

/// The outcome of sending some rows in order: the first `delivered` were acknowledged; on `error`, the rest were not.
struct Sent {
    delivered: usize,
    result: IngestResult,
    error: Option<Error>,
}

impl Client {
    /// Ingests rows into datasource `D` through the Events API: NDJSON, `wait=true`, split below 10 MB.
    ///
    /// Returns the acknowledged counts. On error, [`Error::rows_delivered`] says how many leading rows were
    /// acknowledged before the failure; the others were not and may be sent again. An empty slice sends nothing.
    /// Per-call options go on the returned [`Ingest`] before it is awaited:
    /// `client.ingest(&rows).gzip(true).await`.
    pub fn ingest<'a, D: Datasource>(&'a self, rows: &'a [D]) -> Ingest<'a, D> {
        Ingest { client: self, rows, opts: IngestOptions::default() }
    }

    /// Ingests any serialisable rows (for example `serde_json::Value`) into the datasource named `datasource`.
    pub async fn ingest_to<T: Serialize>(
        &self,
        datasource: &str,
        rows: &[T],
        opts: &IngestOptions,
    ) -> Result<IngestResult> {
        let mut enc = Encoded::default();
        for (i, row) in rows.iter().enumerate() {
            if let Err(e) = enc.push(row) {
                return Err(Error::new(ErrorKind::Encode, format!("cannot serialise row {i} for `{datasource}`: {e}"))
                    .with_rows_delivered(0));
            }
        }
        if enc.len() == 0 {
            return Ok(IngestResult::default());
        }
        let sent = self.send_encoded(datasource, &enc, opts).await;
        match sent.error {
            None => Ok(sent.result),
            Some(e) => Err(e.with_rows_delivered(sent.delivered as u64)),
        }
    }

    /// Sends all rows of `enc` in order, splitting by size and on 413, stopping at the first failure.
    async fn send_encoded(&self, datasource: &str, enc: &Encoded, opts: &IngestOptions) -> Sent {
        let mut queue = enc.chunks(0..enc.len(), opts.max_request_bytes);
        let mut sent = Sent { delivered: 0, result: IngestResult::default(), error: None };
        while let Some(range) = queue.pop_front() {
            match self.post_events(datasource, enc.body(&range), range.len(), opts).await {
                Ok(r) => {
                    sent.delivered += range.len();
                    sent.result.add(r);
                }
                Err(e) if matches!(e.kind(), ErrorKind::PayloadTooLarge) && range.len() > 1 => {
                    let mid = range.start + range.len() / 2;
                    tracing::debug!(datasource, rows = range.len(), "413 from the Events API; splitting the batch");
                    queue.push_front(mid..range.end);
                    queue.push_front(range.start..mid);
                }
                Err(e) => {
                    sent.error = Some(e);
                    break;
                }
            }
        }
        sent
    }

    /// One `POST /v0/events` with retries limited to failures where the server certainly kept nothing.
    async fn post_events(
        &self,
        datasource: &str,
        body: &[u8],
        rows: usize,
        opts: &IngestOptions,
    ) -> Result<IngestResult> {
        let mut pairs = vec![("name", datasource)];
        if opts.wait {
            pairs.push(("wait", "true"));
        }
        let url = self.url(&["v0", "events"], pairs);
        let (data, encoding) = if opts.gzip {
            let z = gzip(body).map_err(|e| Error::new(ErrorKind::Encode, format!("gzip failed: {e}")))?;
            (Bytes::from(z), Some("gzip"))
        } else {
            (Bytes::copy_from_slice(body), None)
        };
        let req = Request::new(Method::POST, url, RetryOn::Ingest { wait: opts.wait })
            .body(Body::Bytes { data, content_type: "application/x-ndjson", content_encoding: encoding })
            .timeout(opts.timeout.or(self.timeouts().ingest))
            .retry(opts.retry.as_ref());
        let what = req.what.clone();
        let resp = self.send(req).await.map_err(|e| {
            if outcome_unknown(&e, opts.wait) {
                e.with_hint("the server may have stored some or all of these rows: resending them can duplicate them")
            } else {
                e
            }
        })?;
        let body = read_body(&what, resp).await?;
        // A 2xx means the rows were taken. If the body is not the documented JSON, count them all as successful
        // rather than hand them back (which would duplicate them on resend).
        Ok(serde_json::from_slice::<IngestResult>(&body)
            .unwrap_or(IngestResult { successful_rows: rows as u64, quarantined_rows: 0 }))
    }

    /// A batching ingestor for datasource `D`, configured by the returned builder.
    ///
    /// ```no_run
    /// # async fn run<D: tinybird_core::Datasource>(client: tinybird_core::client::Client, rows: Vec<D>) {
    /// use std::time::Duration;
    /// let ingestor = client.ingestor::<D>().max_rows(5_000).interval(Duration::from_millis(500)).gzip(true).start();
    /// for row in rows {
    ///     ingestor.push(row).await.expect("the ingestor is running");
    /// }
    /// match ingestor.close().await {
    ///     Ok(report) => println!("{} rows stored, {} quarantined", report.successful_rows, report.quarantined_rows),
    ///     // Exactly the rows the server did not acknowledge: keep them (a file, a queue) or retry later.
    ///     Err(failure) => eprintln!("{failure}; {} rows handed back", failure.rows.len()),
    /// }
    /// # }
    /// ```
    pub fn ingestor<D: Datasource>(&self) -> IngestorBuilder<D> {
        IngestorBuilder {
            client: self.clone(),
            max_rows: 10_000,
            max_bytes: 4 * 1024 * 1024,
            interval: Duration::from_secs(1),
            queue: 10_000,
            quarantine: QuarantinePolicy::Warn,
            opts: IngestOptions::default(),
            _d: std::marker::PhantomData,
        }
    }
}

/// What an [`Ingestor`] does when the server quarantines rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantinePolicy {
    /// Log a warning (`tracing`) and count them in the report.
    Warn,
    /// Make the next `flush`/`close` fail with [`ErrorKind::Quarantined`]. The rows are in `<ds>_quarantine`, not
    /// handed back.
    Fail,
}

/// Configures an [`Ingestor`].
#[must_use]
pub struct IngestorBuilder<D> {
    client: Client,
    max_rows: usize,
    max_bytes: usize,
    interval: Duration,
    queue: usize,
    quarantine: QuarantinePolicy,
    opts: IngestOptions,
    _d: std::marker::PhantomData<fn(D)>,
}

impl<D> std::fmt::Debug for IngestorBuilder<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestorBuilder")
            .field("max_rows", &self.max_rows)
            .field("max_bytes", &self.max_bytes)
            .field("interval", &self.interval)
            .field("queue", &self.queue)
            .field("quarantine", &self.quarantine)
            .field("options", &self.opts)
            .finish()
    }
}

impl<D: Datasource> IngestorBuilder<D> {
    /// Flush when this many rows are buffered (default 10 000).
    pub fn max_rows(mut self, n: usize) -> Self {
        self.max_rows = n.max(1);
        self
    }
    /// Flush when the buffered NDJSON reaches this many bytes (default 4 MiB).
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n.max(1);
        self
    }
    /// Flush at least this often while rows are buffered (default 1 s).
    pub fn interval(mut self, t: Duration) -> Self {
        self.interval = t.max(Duration::from_millis(1));
        self
    }
    /// Rows that may wait in the queue before `push` waits (back-pressure; default 10 000).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue = n.max(1);
        self
    }
    /// What to do with quarantined rows (default [`QuarantinePolicy::Warn`]).
    pub fn quarantine(mut self, policy: QuarantinePolicy) -> Self {
        self.quarantine = policy;
        self
    }
    /// Request options: `wait`, gzip, request size limit, timeout, retries.
    pub fn options(mut self, opts: IngestOptions) -> Self {
        self.opts = opts;
        self
    }
    /// Compress request bodies.
    pub fn gzip(mut self, on: bool) -> Self {
        self.opts.gzip = on;
        self
    }

    /// Starts the background task. Must be called inside a Tokio runtime.
    pub fn start(self) -> Ingestor<D> {
        let (tx, rx) = mpsc::channel(self.queue);
        let worker = Worker {
            client: self.client,
            max_rows: self.max_rows,
            max_bytes: self.max_bytes,
            quarantine: self.quarantine,
            opts: self.opts,
            pending: Vec::new(),
            enc: Encoded::default(),
            failed: Vec::new(),
            error: None,
            report: IngestResult::default(),
            quarantined_since_flush: 0,
        };
        let task = tokio::spawn(worker.run(rx, self.interval));
        Ingestor { tx, task: Some(task) }
    }
}

/// A batching ingestor: [`push`](Ingestor::push) rows, and a background task sends them in batches.
///
/// Rows are flushed when `max_rows` or `max_bytes` are reached or every `interval`. A full queue makes `push` wait.
/// [`flush`](Ingestor::flush) and [`close`](Ingestor::close) return only when every row pushed before them was
/// acknowledged, or with an [`IngestFailure`] holding exactly the rows that were not delivered.
pub struct Ingestor<D> {
    tx: mpsc::Sender<Command<D>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl<D> std::fmt::Debug for Ingestor<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor").field("queued_capacity", &self.tx.capacity()).finish()
    }
}

type Reply<D> = oneshot::Sender<std::result::Result<IngestReport, IngestFailure<D>>>;

enum Command<D> {
    Row(D),
    Flush(Reply<D>),
    Close(Reply<D>),
}

/// Rows that were not delivered, with the reason.
pub struct IngestFailure<D> {
    /// The first error met (later failures' rows are included in `rows` too).
    pub error: Error,
    /// Exactly the rows not acknowledged by the server, in push order. Resend them or store them elsewhere.
    pub rows: Vec<D>,
    /// What was acknowledged in the same period.
    pub report: IngestReport,
}

impl<D> std::fmt::Debug for IngestFailure<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestFailure")
            .field("error", &self.error)
            .field("rows_not_delivered", &self.rows.len())
            .field("report", &self.report)
            .finish()
    }
}

impl<D> std::fmt::Display for IngestFailure<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} rows not delivered: {}", self.rows.len(), self.error)
    }
}

impl<D> std::error::Error for IngestFailure<D> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<D: Datasource> Ingestor<D> {
    /// Queues one row, waiting while the queue is full. Fails (handing the row back) only if the ingestor stopped.
    pub async fn push(&self, row: D) -> std::result::Result<(), IngestFailure<D>> {
        self.tx.send(Command::Row(row)).await.map_err(|e| match e.0 {
            Command::Row(row) => stopped(vec![row]),
            _ => stopped(Vec::new()),
        })
    }

    /// Sends everything pushed so far and waits for the answer. Returns the counts acknowledged since the previous
    /// flush, or the rows that could not be delivered (and, with [`QuarantinePolicy::Fail`], a quarantine error).
    pub async fn flush(&self) -> std::result::Result<IngestReport, IngestFailure<D>> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Flush(reply)).await.is_err() {
            return Err(stopped(Vec::new()));
        }
        rx.await.unwrap_or_else(|_| Err(stopped(Vec::new())))
    }

    /// Flushes and stops the background task.
    pub async fn close(mut self) -> std::result::Result<IngestReport, IngestFailure<D>> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Close(reply)).await.is_err() {
            return Err(stopped(Vec::new()));
        }
        let out = rx.await.unwrap_or_else(|_| Err(stopped(Vec::new())));
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        out
    }
}

fn stopped<D>(rows: Vec<D>) -> IngestFailure<D> {
    IngestFailure {
        error: Error::new(ErrorKind::Transport, "the ingestor's background task has stopped"),
        rows,
        report: IngestReport::default(),
    }
}

struct Worker<D> {
    client: Client,
    max_rows: usize,
    max_bytes: usize,
    quarantine: QuarantinePolicy,
    opts: IngestOptions,
    pending: Vec<D>,
    enc: Encoded,
    failed: Vec<D>,
    error: Option<Error>,
    report: IngestResult,
    quarantined_since_flush: u64,
}

impl<D: Datasource> Worker<D> {
    async fn run(mut self, mut rx: mpsc::Receiver<Command<D>>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Command::Row(row)) => {
                        self.add(row);
                        if self.pending.len() >= self.max_rows || self.enc.buf.len() >= self.max_bytes {
                            self.send_pending().await;
                            tick.reset();
                        }
                    }
                    Some(Command::Flush(reply)) => {
                        self.send_pending().await;
                        let _ = reply.send(self.take_outcome());
                    }
                    Some(Command::Close(reply)) => {
                        self.send_pending().await;
                        let _ = reply.send(self.take_outcome());
                        return;
                    }
                    None => {
                        // Dropped without `close`: send what is left; report anything undelivered loudly.
                        self.send_pending().await;
                        if let Err(f) = self.take_outcome() {
                            tracing::error!(datasource = D::NAME, rows = f.rows.len(), error = %f.error,
                                "ingestor dropped without close(): rows not delivered");
                        }
                        return;
                    }
                },
                _ = tick.tick() => {
                    if !self.pending.is_empty() {
                        self.send_pending().await;
                    }
                }
            }
        }
    }

    fn add(&mut self, row: D) {
        match self.enc.push(&row) {
            Ok(()) => self.pending.push(row),
            Err(e) => {
                let err = Error::new(ErrorKind::Encode, format!("cannot serialise a row for `{}`: {e}", D::NAME));
                self.error.get_or_insert(err);
                self.failed.push(row);
            }
        }
    }

    async fn send_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let sent = self.client.send_encoded(D::NAME, &self.enc, &self.opts).await;
        self.enc.clear();
        let mut rows = std::mem::take(&mut self.pending);
        let undelivered = rows.split_off(sent.delivered);
        self.report.add(sent.result);
        if sent.result.quarantined_rows > 0 {
            self.quarantined_since_flush = self.quarantined_since_flush.saturating_add(sent.result.quarantined_rows);
            if self.quarantine == QuarantinePolicy::Warn {
                tracing::warn!(
                    datasource = D::NAME,
                    rows = sent.result.quarantined_rows,
                    "rows did not fit the schema and went to the quarantine datasource"
                );
            }
        }
        if let Some(e) = sent.error {
            tracing::warn!(datasource = D::NAME, rows = undelivered.len(), error = %e, "batch not delivered");
            self.error.get_or_insert(e);
            self.failed.extend(undelivered);
        }
    }

    fn take_outcome(&mut self) -> std::result::Result<IngestReport, IngestFailure<D>> {
        let report = std::mem::take(&mut self.report);
        let quarantined = std::mem::take(&mut self.quarantined_since_flush);
        let rows = std::mem::take(&mut self.failed);
        if let Some(error) = self.error.take() {
            return Err(IngestFailure { error, rows, report });
        }
        if self.quarantine == QuarantinePolicy::Fail && quarantined > 0 {
            let error = Error::new(
                ErrorKind::Quarantined { rows: quarantined },
                format!("{quarantined} rows sent to `{}` went to `{}_quarantine`", D::NAME, D::NAME),
            );
            return Err(IngestFailure { error, rows, report });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_byte_limit() {
        let mut enc = Encoded::default();
        for i in 0..10 {
            enc.push(&serde_json::json!({ "i": i })).unwrap(); // `{"i":0}` = 7 bytes
        }
        let chunks: Vec<_> = enc.chunks(0..10, 15).into_iter().collect();
        assert_eq!(chunks, vec![0..2, 2..4, 4..6, 6..8, 8..10]);
        assert_eq!(enc.body(&(2..4)), b"{\"i\":2}\n{\"i\":3}");
        let chunks: Vec<_> = enc.chunks(0..10, 1).into_iter().collect();
        assert_eq!(chunks.len(), 10);
        assert_eq!(enc.chunks(0..10, MAX_REQUEST_BYTES).len(), 1);
    }

    #[test]
    fn failed_encoding_appends_nothing() {
        let mut enc = Encoded::default();
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1); // non-string map keys cannot be JSON
        assert!(enc.push(&bad).is_err());
        assert_eq!(enc.len(), 0);
        assert!(enc.buf.is_empty());
    }
}
