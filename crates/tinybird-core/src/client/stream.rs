//! Streaming endpoint results: the `.ndjson` form decoded row by row, in constant memory.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;

use super::query::missing_field;
use reqwest::Method;

use super::{Body, Client, Request, RetryOn};
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::row::Row;
use crate::rowjson::{Plan, RowDecoder};

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A stream of typed rows read from an NDJSON response.
///
/// Bytes are pulled from the connection only as rows are consumed, so a slow consumer slows the server down
/// (back-pressure) and memory stays bounded by the longest row. The stream ends with an error, never silently, when
/// the connection drops or the body ends in the middle of a row.
pub struct RowStream<T> {
    body: Option<ByteStream>,
    buf: Vec<u8>,
    /// Start of the first unconsumed byte in `buf`.
    start: usize,
    /// Bytes of `buf[start..scanned]` are known to hold no newline.
    scanned: usize,
    row: u64,
    what: String,
    finished: bool,
    /// The derives' direct reader and its plan, learnt from the first row's keys.
    direct: Direct<T>,
    _row: PhantomData<fn() -> T>,
}

enum Direct<T> {
    /// Before the first row.
    Unknown,
    /// The row type has no direct reader, or the first row's keys do not fit it: serde reads every row.
    Off,
    On(RowDecoder<T>, Plan),
}

impl<T> std::fmt::Debug for RowStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream").field("what", &self.what).field("rows_read", &self.row).finish()
    }
}

impl<T> RowStream<T> {
    pub(crate) fn new(what: String, body: ByteStream) -> Self {
        RowStream {
            body: Some(body),
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            row: 0,
            what,
            finished: false,
            direct: Direct::Unknown,
            _row: PhantomData,
        }
    }

    /// Rows yielded so far.
    pub fn rows_read(&self) -> u64 {
        self.row
    }
}

impl<T: Row> RowStream<T> {
    fn decode(&mut self, line_end: usize) -> Option<Result<T>> {
        let mut line = &self.buf[self.start..line_end];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let row = self.row;
        self.row += 1;
        if let Ok(text) = std::str::from_utf8(line) {
            if let Direct::Unknown = self.direct {
                self.direct = match T::__row_decoder().and_then(|d| Some((d.plan_for_line(text)?, d))) {
                    Some((plan, decoder)) => Direct::On(decoder, plan),
                    None => Direct::Off,
                };
            }
            if let Direct::On(decoder, plan) = &self.direct
                && let Some(value) = decoder.read_line(text, plan)
            {
                return Some(Ok(value));
            }
        }
        Some(decode_line(&self.what, line, row))
    }

    fn fail(&mut self, err: Error) -> Poll<Option<Result<T>>> {
        self.finished = true;
        self.body = None;
        Poll::Ready(Some(Err(err)))
    }
}

fn decode_line<T: Row>(what: &str, line: &[u8], row: u64) -> Result<T> {
    match super::query::json_from_bytes::<T>(line) {
        Ok(v) => Ok(v),
        Err(first) => {
            let mut de = serde_json::Deserializer::from_slice(line);
            let (column, inner) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Ok(_) => (None, first.to_string()),
                Err(e) => {
                    let column = e
                        .path()
                        .iter()
                        .next()
                        .and_then(|s| match s {
                            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                            _ => None,
                        })
                        .or_else(|| missing_field(&e.inner().to_string()));
                    (column, e.inner().to_string())
                }
            };
            let place = match &column {
                Some(c) => format!("column `{c}` of row {row}"),
                None => format!("row {row}"),
            };
            let preview: String = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
            Err(Error::new(
                ErrorKind::Decode { column, row: Some(row) },
                format!("{what}: cannot decode {place}: {inner} (line starts: {preview})"),
            ))
        }
    }
}

impl<T: Row> Stream for RowStream<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            // A complete line already buffered?
            if let Some(pos) = memchr::memchr(b'\n', &this.buf[this.scanned..]) {
                let end = this.scanned + pos;
                let item = this.decode(end);
                this.start = end + 1;
                this.scanned = this.start;
                match item {
                    Some(Ok(v)) => return Poll::Ready(Some(Ok(v))),
                    Some(Err(e)) => return this.fail(e),
                    None => continue,
                }
            }
            this.scanned = this.buf.len();
            let Some(body) = this.body.as_mut() else {
                // The body ended: whatever is left must be one complete row (a trailing newline is optional).
                this.finished = true;
                let rest = &this.buf[this.start..];
                if rest.iter().all(u8::is_ascii_whitespace) {
                    return Poll::Ready(None);
                }
                let row = this.row;
                let cut = matches!(serde_json::from_slice::<serde::de::IgnoredAny>(rest), Err(e) if e.is_eof());
                if cut {
                    return Poll::Ready(Some(Err(Error::new(
                        ErrorKind::Transport,
                        format!(
                            "{}: the response ended in the middle of row {row} ({} bytes of it received)",
                            this.what,
                            rest.len()
                        ),
                    ))));
                }
                let item = decode_line::<T>(&this.what, rest, row);
                if item.is_ok() {
                    this.row += 1;
                }
                return Poll::Ready(Some(item));
            };
            match body.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.body = None,
                Poll::Ready(Some(Err(e))) => {
                    let err = Error::from_reqwest(&this.what, e).with_context(&format!("after {} rows", this.row));
                    return this.fail(err);
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    // Drop consumed bytes before growing, so the buffer holds at most one partial row plus a chunk.
                    if this.start > 0 {
                        this.buf.drain(..this.start);
                        this.scanned -= this.start;
                        this.start = 0;
                    }
                    this.buf.extend_from_slice(&chunk);
                }
            }
        }
    }
}

impl Client {
    /// Streams an endpoint's rows from `GET /v0/pipes/{NAME}.ndjson` as they arrive: [`Query::stream`] with the
    /// default options (set options with `client.query(&params).timeout(…).stream()`).
    ///
    /// [`Query::stream`]: super::Query::stream
    pub async fn query_stream<E: Endpoint>(&self, endpoint: &E) -> Result<RowStream<E::Output>> {
        self.query(endpoint).stream().await
    }

    /// Streams the rows of an SQL query (`POST /v0/sql`, `FORMAT JSONEachRow` appended), decoded one by one as they
    /// arrive, like [`query_stream`](Client::query_stream).
    pub async fn sql_stream<R: Row>(&self, sql: &str) -> Result<RowStream<R>> {
        let sql = super::query::with_format_each_row(sql)?;
        let url = self.url(&["v0", "sql"], []);
        let mut req = Request::new(Method::POST, url, RetryOn::Idempotent).body(Body::Bytes {
            data: sql.into_bytes().into(),
            content_type: "text/plain",
            content_encoding: None,
        });
        req.header_timeout = self.timeouts().query;
        let what = req.what.clone();
        let resp = self.send(req).await?;
        Ok(RowStream::new(what, Box::pin(resp.bytes_stream())))
    }
}
