//! Events API ingestion: one-shot and batching, against an in-test server that checks every request exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::client_support::{MockServer, Recorded, Reply};
use serde::{Deserialize, Serialize};
use tinybird_core::client::{IngestOptions, IngestResult, QuarantinePolicy};
use tinybird_core::datasource::{Datasource, DatasourceDef};
use tinybird_core::error::ErrorKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Event {
    id: u64,
    user: String,
}

impl Datasource for Event {
    const NAME: &'static str = "events";
    type Columns = ();
    fn definition() -> DatasourceDef {
        DatasourceDef { name: Self::NAME.into(), ..Default::default() }
    }
}

fn events(n: u64) -> Vec<Event> {
    (0..n).map(|id| Event { id, user: format!("u{}", id % 7) }).collect()
}

/// The ids in an NDJSON body.
fn ids(r: &Recorded) -> Vec<u64> {
    r.decoded_body().lines().map(|l| serde_json::from_str::<Event>(l).unwrap().id).collect()
}

/// Answers like the Events API: every line counted as successful.
fn accept_all(r: &Recorded) -> Reply {
    let n = r.decoded_body().lines().count();
    Reply::json(200, &format!(r#"{{"successful_rows":{n},"quarantined_rows":0}}"#))
}

#[tokio::test]
async fn ingest_request_shape() {
    let server = MockServer::start(|r, _| accept_all(r)).await;
    let res = server.client().ingest(&events(3)).await.unwrap();
    assert_eq!(res, IngestResult { successful_rows: 3, quarantined_rows: 0 });
    let r = &server.requests()[0];
    r.assert_common();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v0/events");
    let q: Vec<(&str, &str)> = r.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(q, [("name", "events"), ("wait", "true"), ("from", "rust-sdk")]);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body_str(), "{\"id\":0,\"user\":\"u0\"}\n{\"id\":1,\"user\":\"u1\"}\n{\"id\":2,\"user\":\"u2\"}");
}

#[tokio::test]
async fn empty_ingest_sends_nothing() {
    let server = MockServer::start(|r, _| accept_all(r)).await;
    let res = server.client().ingest::<Event>(&[]).await.unwrap();
    assert_eq!(res, IngestResult::default());
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn wait_false_and_gzip() {
    let server = MockServer::start(|r, _| {
        let n = r.decoded_body().lines().count();
        Reply::json(202, &format!(r#"{{"successful_rows":{n},"quarantined_rows":0}}"#))
    })
    .await;
    let opts = IngestOptions::default().wait(false).gzip(true);
    let res = server.client().ingest(&events(50)).options(opts.clone()).await.unwrap();
    assert_eq!(res.successful_rows, 50);
    let r = &server.requests()[0];
    assert_eq!(r.query, [("name".to_owned(), "events".to_owned()), ("from".to_owned(), "rust-sdk".to_owned())]);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(ids(r), (0..50).collect::<Vec<_>>());
    assert!(r.body.len() < r.decoded_body().len());
}

#[tokio::test]
async fn bodies_are_split_below_the_size_limit() {
    let server = MockServer::start(|r, _| accept_all(r)).await;
    let opts = IngestOptions::default().max_request_bytes(100);
    let res = server.client().ingest(&events(20)).options(opts.clone()).await.unwrap();
    assert_eq!(res.successful_rows, 20);
    let reqs = server.requests();
    assert!(reqs.len() > 1);
    for r in &reqs {
        assert!(r.body.len() <= 100, "{} bytes", r.body.len());
    }
    let all: Vec<u64> = reqs.iter().flat_map(ids).collect();
    assert_eq!(all, (0..20).collect::<Vec<_>>(), "every row once, in order");
}

#[tokio::test]
async fn absurd_counts_from_the_server_do_not_overflow() {
    let server = MockServer::start(|_, _| {
        Reply::json(200, r#"{"successful_rows":18446744073709551615,"quarantined_rows":18446744073709551615}"#)
    })
    .await;
    let opts = IngestOptions::default().max_request_bytes(100);
    let res = server.client().ingest(&events(20)).options(opts.clone()).await.unwrap();
    assert!(server.requests().len() > 1);
    assert_eq!(res.successful_rows, u64::MAX);
    assert_eq!(res.quarantined_rows, u64::MAX);
}

#[tokio::test]
async fn payload_too_large_splits_and_retries() {
    // The server takes at most 3 rows per request.
    let server = MockServer::start(|r, _| {
        if r.decoded_body().lines().count() > 3 {
            Reply::json(413, r#"{"error":"Request entity too large"}"#)
        } else {
            accept_all(r)
        }
    })
    .await;
    let res = server.client().ingest(&events(10)).await.unwrap();
    assert_eq!(res.successful_rows, 10);
    let accepted: Vec<u64> =
        server.requests().iter().filter(|r| r.decoded_body().lines().count() <= 3).flat_map(ids).collect();
    assert_eq!(accepted, (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_single_row_over_the_limit_fails_clearly() {
    let server = MockServer::start(|_, _| Reply::json(413, r#"{"error":"Request entity too large"}"#)).await;
    let err = server.client().ingest(&events(1)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::PayloadTooLarge);
    assert_eq!(err.rows_delivered(), Some(0));
}

#[tokio::test]
async fn bad_rows_are_counted_and_good_rows_kept() {
    let server = MockServer::start(|r, _| {
        let body = r.decoded_body();
        let bad = body.lines().filter(|l| l.contains("\"u3\"")).count();
        let good = body.lines().count() - bad;
        Reply::json(200, &format!(r#"{{"successful_rows":{good},"quarantined_rows":{bad}}}"#))
    })
    .await;
    let res = server.client().ingest(&events(14)).await.unwrap();
    assert_eq!(res, IngestResult { successful_rows: 12, quarantined_rows: 2 });
}

#[tokio::test]
async fn rate_limit_and_503_with_wait_are_retried() {
    let server = MockServer::start(|r, n| match n {
        0 => Reply::json(429, r#"{"error":"rate"}"#).header("retry-after", "0"),
        1 => Reply::text(503, "Service unavailable"),
        _ => accept_all(r),
    })
    .await;
    let res = server.client().ingest(&events(5)).await.unwrap();
    assert_eq!(res.successful_rows, 5);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs.iter().all(|r| ids(r) == [0, 1, 2, 3, 4]));
}

#[tokio::test]
async fn ambiguous_failures_are_not_retried() {
    // Without wait=true, a 503 may come after the rows were queued: resending could duplicate them.
    let server = MockServer::start(|_, _| Reply::text(503, "Service unavailable")).await;
    let err = server.client().ingest(&events(5)).wait(false).await.unwrap_err();
    assert_eq!(server.count(), 1);
    assert_eq!(err.rows_delivered(), Some(0));

    for status in [502, 504, 422, 408] {
        let server = MockServer::start(move |_, _| Reply::text(status, "nope")).await;
        server.client().ingest(&events(5)).await.unwrap_err();
        assert_eq!(server.count(), 1, "status {status} must not be retried");
    }
}

#[tokio::test]
async fn failing_mid_ingest_reports_the_delivered_prefix() {
    let server =
        MockServer::start(|r, n| if n < 2 { accept_all(r) } else { Reply::json(400, r#"{"error":"bad"}"#) }).await;
    let opts = IngestOptions::default().max_request_bytes(60);
    let rows = events(12);
    let err = server.client().ingest(&rows).options(opts.clone()).await.unwrap_err();
    let delivered = err.rows_delivered().unwrap() as usize;
    let acked: Vec<u64> = server.requests()[..2].iter().flat_map(ids).collect();
    assert_eq!(acked, (0..delivered as u64).collect::<Vec<_>>());
    assert!(delivered < rows.len());
    assert_eq!(server.count(), 3, "stops at the first failure");
}

#[tokio::test]
async fn ingestor_flushes_on_row_count_and_returns_counts() {
    let server = MockServer::start(|r, _| accept_all(r)).await;
    let ing = server.client().ingestor::<Event>().max_rows(4).interval(Duration::from_secs(3600)).start();
    for e in events(10) {
        ing.push(e).await.unwrap();
    }
    let report = ing.flush().await.unwrap();
    assert_eq!(report.successful_rows, 10);
    let sizes: Vec<usize> = server.requests().iter().map(|r| ids(r).len()).collect();
    assert_eq!(sizes, [4, 4, 2]);
    let all: Vec<u64> = server.requests().iter().flat_map(ids).collect();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    let report = ing.close().await.unwrap();
    assert_eq!(report, IngestResult::default(), "nothing new since the last flush");
}

#[tokio::test]
async fn ingestor_flushes_on_interval_and_bytes() {
    let server = MockServer::start(|r, _| accept_all(r)).await;
    let ing = server.client().ingestor::<Event>().interval(Duration::from_millis(50)).start();
    ing.push(events(1).remove(0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.count(), 1, "the interval flushed the lone row");

    let by_bytes =
        server.client().ingestor::<Event>().max_bytes(50).interval(Duration::from_secs(3600)).gzip(true).start();
    for e in events(6) {
        by_bytes.push(e).await.unwrap();
    }
    let report = by_bytes.close().await.unwrap();
    assert_eq!(report.successful_rows, 6);
    let later = &server.requests()[1..];
    assert!(later.len() >= 2, "{} requests", later.len());
    assert!(later.iter().all(|r| r.header("content-encoding") == Some("gzip")));
    ing.close().await.unwrap();
}

#[tokio::test]
async fn ingestor_hands_back_exactly_the_rows_not_delivered() {
    // Every third request fails with a non-retriable error: its rows must come back, all others acknowledged.
    let server =
        MockServer::start(|r, n| if n % 3 == 2 { Reply::json(400, r#"{"error":"boom"}"#) } else { accept_all(r) })
            .await;
    let ing = server.client().ingestor::<Event>().max_rows(5).interval(Duration::from_secs(3600)).start();
    let rows = events(40);
    for e in rows.clone() {
        ing.push(e).await.unwrap();
    }
    let failure = ing.close().await.unwrap_err();
    assert_eq!(failure.error.status(), Some(400));
    let mut acked: Vec<u64> = Vec::new();
    let mut rejected: Vec<u64> = Vec::new();
    for (n, r) in server.requests().iter().enumerate() {
        if n % 3 == 2 {
            rejected.extend(ids(r));
        } else {
            acked.extend(ids(r));
        }
    }
    let returned: Vec<u64> = failure.rows.iter().map(|e| e.id).collect();
    assert_eq!(returned, rejected, "handed back = rejected by the server");
    assert_eq!(failure.report.successful_rows as usize, acked.len());
    let mut all: Vec<u64> = acked.iter().chain(&returned).copied().collect();
    all.sort();
    assert_eq!(all, (0..40).collect::<Vec<_>>(), "every row acknowledged or handed back, none twice");
}

#[tokio::test]
async fn ingestor_server_dying_mid_ingest_loses_nothing() {
    let served = Arc::new(AtomicUsize::new(0));
    let s = served.clone();
    let server = MockServer::start(move |r, n| {
        if n < 3 {
            s.fetch_add(r.decoded_body().lines().count(), Ordering::SeqCst);
            accept_all(r)
        } else {
            Reply::text(500, "Internal Server Error")
        }
    })
    .await;
    let ing = server.client().ingestor::<Event>().max_rows(7).interval(Duration::from_secs(3600)).start();
    for e in events(50) {
        ing.push(e).await.unwrap();
    }
    let failure = ing.flush().await.unwrap_err();
    assert_eq!(failure.error.kind(), &ErrorKind::Server);
    let acked = served.load(Ordering::SeqCst);
    assert_eq!(acked, 21);
    assert_eq!(failure.report.successful_rows as usize, acked);
    let returned: Vec<u64> = failure.rows.iter().map(|e| e.id).collect();
    assert_eq!(returned, (21..50).collect::<Vec<_>>());
    // After a failure the ingestor keeps working.
    ing.push(Event { id: 99, user: "x".into() }).await.unwrap();
    let again = ing.close().await.unwrap_err();
    assert_eq!(again.rows.len(), 1);
}

#[tokio::test]
async fn quarantine_policy_fail_reports_an_error() {
    let server = MockServer::start(|r, _| {
        let n = r.decoded_body().lines().count();
        Reply::json(200, &format!(r#"{{"successful_rows":{},"quarantined_rows":1}}"#, n - 1))
    })
    .await;
    let ing = server.client().ingestor::<Event>().quarantine(QuarantinePolicy::Fail).start();
    for e in events(3) {
        ing.push(e).await.unwrap();
    }
    let failure = ing.close().await.unwrap_err();
    assert_eq!(failure.error.kind(), &ErrorKind::Quarantined { rows: 1 });
    assert!(failure.rows.is_empty(), "quarantined rows are stored server-side, not handed back");
    assert_eq!(failure.report, IngestResult { successful_rows: 2, quarantined_rows: 1 });

    let warn = server.client().ingestor::<Event>().start();
    warn.push(events(1).remove(0)).await.unwrap();
    assert_eq!(warn.close().await.unwrap(), IngestResult { successful_rows: 0, quarantined_rows: 1 });
}

#[tokio::test]
async fn bounded_queue_applies_back_pressure() {
    // A slow server: pushes must wait once the queue and the current batch are full.
    let server = MockServer::start(|r, _| accept_all(r).delay(Duration::from_millis(200))).await;
    let ing = server.client().ingestor::<Event>().max_rows(2).queue_capacity(2).start();
    let started = std::time::Instant::now();
    for e in events(8) {
        ing.push(e).await.unwrap();
    }
    assert!(started.elapsed() >= Duration::from_millis(200), "push never waited: {:?}", started.elapsed());
    assert_eq!(ing.close().await.unwrap().successful_rows, 8);
}

#[tokio::test]
async fn ambiguous_failures_say_rows_may_be_stored() {
    let server =
        MockServer::start(|_, _| Reply::json(422, r#"{"error":"partially ingested: materialized view failed"}"#)).await;
    let err = server.client().ingest(&events(2)).await.unwrap_err();
    assert!(err.to_string().contains("may have stored some or all of these rows"), "{err}");

    let server = MockServer::start(|_, _| Reply::json(400, r#"{"error":"missing name"}"#)).await;
    let err = server.client().ingest(&events(2)).await.unwrap_err();
    assert!(!err.to_string().contains("may have stored"), "a 400 stored nothing: {err}");

    let server = MockServer::start(|r, _| accept_all(r).delay(Duration::from_millis(400))).await;
    let opts = IngestOptions::default().timeout(Duration::from_millis(50));
    let err = server.client().ingest(&events(2)).options(opts.clone()).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(server.count(), 1, "a timed-out ingest is not resent");
    assert_eq!(err.rows_delivered(), Some(0));
    assert!(err.to_string().contains("may have stored"), "{err}");
}
