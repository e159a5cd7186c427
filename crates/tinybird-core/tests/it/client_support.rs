//! An in-test HTTP server that records every request exactly and answers with scripted responses.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use tinybird_core::client::{Client, RetryPolicy};

pub(crate) const TOKEN: &str = "p.eyJ1IjogInRlc3QifQ.super-secret-signature";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: String,
    pub path: String,
    /// Decoded query pairs in order.
    pub query: Vec<(String, String)>,
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
    pub(crate) fn body_str(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("utf-8 body")
    }
    /// The body, gunzipped when `Content-Encoding: gzip`.
    pub(crate) fn decoded_body(&self) -> String {
        if self.header("content-encoding") == Some("gzip") {
            use std::io::Read;
            let mut out = String::new();
            flate2::read::GzDecoder::new(&self.body[..]).read_to_string(&mut out).expect("gzip body");
            out
        } else {
            self.body_str()
        }
    }
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
    /// The client's constant headers.
    pub(crate) fn assert_common(&self) {
        assert_eq!(self.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()), "{self:?}");
        assert!(self.header("user-agent").unwrap_or("").starts_with("tinybird-rust/"), "{self:?}");
        assert!(self.header("accept-encoding").unwrap_or("").contains("gzip"), "{self:?}");
        assert_eq!(self.query.last(), Some(&("from".to_owned(), "rust-sdk".to_owned())), "{self:?}");
        assert!(self.query.iter().all(|(k, v)| k != "token" && !v.contains(TOKEN)), "token leaked into the URL");
    }
}

/// A scripted answer.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ReplyBody,
    pub delay: Option<Duration>,
}

pub(crate) enum ReplyBody {
    Full(Bytes),
    /// Chunks sent one by one; `abort` ends the connection with an error after them (no clean end).
    Chunks {
        chunks: Vec<Bytes>,
        abort: bool,
    },
}

impl Reply {
    pub(crate) fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: ReplyBody::Full(Bytes::from(body.to_owned())),
            delay: None,
        }
    }
    pub(crate) fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: ReplyBody::Full(Bytes::from(body.to_owned())),
            delay: None,
        }
    }
    pub(crate) fn chunks(chunks: Vec<&str>, abort: bool) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/x-ndjson".into())],
            body: ReplyBody::Chunks { chunks: chunks.into_iter().map(|c| Bytes::from(c.to_owned())).collect(), abort },
            delay: None,
        }
    }
    pub(crate) fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub(crate) fn delay(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct AppState {
    log: Arc<Mutex<Vec<Recorded>>>,
    handler: Arc<Handler>,
}

pub(crate) struct MockServer {
    pub url: String,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl MockServer {
    /// Starts a server whose answer to the n-th request (0-based) is `handler(request, n)`.
    pub(crate) async fn start(handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> MockServer {
        Self::start_with_prefix("", handler).await
    }

    pub(crate) async fn start_with_prefix(
        prefix: &str,
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> MockServer {
        Self::start_at("127.0.0.1", prefix, handler).await
    }

    /// Listens on another loopback address (e.g. `127.0.0.2`, which the client does not treat as a local server).
    pub(crate) async fn start_at(
        ip: &str,
        prefix: &str,
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> MockServer {
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = AppState { log: log.clone(), handler: Arc::new(handler) };
        let app = axum::Router::new().fallback(handle).layer(DefaultBodyLimit::disable()).with_state(state);
        let listener = tokio::net::TcpListener::bind(format!("{ip}:0")).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockServer { url: format!("http://{addr}{prefix}"), log }
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// A client for this server with fast, jitter-free retries.
    pub(crate) fn client(&self) -> Client {
        Client::builder().base_url(&self.url).token(TOKEN).retry(fast_retry()).build().unwrap()
    }
}

pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy::default().max_retries(3).backoff(Duration::from_millis(5), Duration::from_millis(20)).jitter(false)
}

async fn handle(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let query = uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let headers =
        headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("<binary>").to_owned())).collect();
    let rec = Recorded { method: method.to_string(), path: uri.path().to_owned(), query, headers, body };
    let n = {
        let mut log = state.log.lock().unwrap();
        log.push(rec.clone());
        log.len() - 1
    };
    let reply = (state.handler)(&rec, n);
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    let mut resp = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (k, v) in &reply.headers {
        resp = resp.header(k, v);
    }
    let body = match reply.body {
        ReplyBody::Full(b) => Body::from(b),
        ReplyBody::Chunks { chunks, abort } => {
            let mut items: Vec<Result<Bytes, std::io::Error>> = chunks.into_iter().map(Ok).collect();
            if abort {
                items.push(Err(std::io::Error::other("connection cut by the test server")));
            }
            let stream = futures::stream::iter(items).then(|item| async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                item
            });
            Body::from_stream(stream)
        }
    };
    let _: Option<Infallible> = None;
    resp.body(body).unwrap()
}

use futures::StreamExt;
