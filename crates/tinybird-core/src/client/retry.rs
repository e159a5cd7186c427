//! Retry policy: exponential backoff with jitter, server wait hints, a total deadline.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// How a call is retried. What is retried depends on the call (see [`Client`](super::Client)): reads retry 408, 429,
/// 5xx gateway/server errors and transport failures; writes retry only when the server certainly did nothing.
///
/// A 429 waits for `Retry-After` (seconds or an HTTP date), else `X-RateLimit-Reset` (seconds), else the backoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt. 0 disables retries.
    pub max_retries: u32,
    /// The first backoff; each retry doubles it.
    pub initial_backoff: Duration,
    /// The backoff cap. Server wait hints are honoured as given (the total deadline still bounds them).
    pub max_backoff: Duration,
    /// When set, no retry starts if its wait would end past this much time since the call began.
    pub total_deadline: Option<Duration>,
    /// Randomise each backoff between half and all of its value, so clients that failed together do not retry
    /// together.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// 3 retries, 200 ms doubling up to 10 s, with jitter, a 60 s total deadline.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            total_deadline: Some(Duration::from_secs(60)),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy { max_retries: 0, ..Self::default() }
    }

    /// Sets `max_retries`.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the first and the largest backoff.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets the total deadline (`None`: retries are bounded by `max_retries` only).
    pub fn total_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.total_deadline = deadline;
        self
    }

    /// Turns jitter on or off.
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.initial_backoff > self.max_backoff {
            return Err(format!(
                "retry policy: initial backoff {:?} is larger than the maximum {:?}",
                self.initial_backoff, self.max_backoff
            ));
        }
        Ok(())
    }

    /// The wait before retry number `n` (0-based).
    pub(crate) fn wait_for(&self, n: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX));
        let capped = exp.min(self.max_backoff);
        if self.jitter {
            let half = capped / 2;
            half + half.mul_f64(fastrand::f64())
        } else {
            capped
        }
    }
}

/// The server's wait hint: on 429 `Retry-After` (seconds or HTTP date), else `X-RateLimit-Reset` (seconds to wait, as
/// Tinybird documents it); on 503 `Retry-After` only.
pub(crate) fn server_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    let retry_after =
        headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
    match status.as_u16() {
        429 => retry_after.or_else(|| {
            headers
                .get("x-ratelimit-reset")
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<f64>().ok())
                // `try_`: a hint too large for a Duration is ignored, not a panic.
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
        }),
        503 => retry_after,
        _ => None,
    }
}

fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        // Negative, NaN or too large for a Duration: no usable hint (never a panic).
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default().jitter(false).backoff(Duration::from_millis(100), Duration::from_millis(500));
        let waits: Vec<_> = (0..5).map(|n| p.wait_for(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(p.wait_for(200).as_millis(), 500);
    }

    #[test]
    fn jitter_stays_between_half_and_full() {
        let p = RetryPolicy::default().backoff(Duration::from_millis(1000), Duration::from_secs(10));
        for _ in 0..100 {
            let w = p.wait_for(0);
            assert!(w >= Duration::from_millis(500) && w <= Duration::from_millis(1000), "{w:?}");
        }
    }

    #[test]
    fn wait_hints() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("7"));
        assert_eq!(server_wait(StatusCode::TOO_MANY_REQUESTS, &h), Some(Duration::from_secs(2)));
        h.remove("retry-after");
        assert_eq!(server_wait(StatusCode::TOO_MANY_REQUESTS, &h), Some(Duration::from_secs(7)));
        assert_eq!(server_wait(StatusCode::INTERNAL_SERVER_ERROR, &h), None);
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
        h.insert("retry-after", HeaderValue::from_str(&past).unwrap());
        assert_eq!(server_wait(StatusCode::TOO_MANY_REQUESTS, &h), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(server_wait(StatusCode::TOO_MANY_REQUESTS, &h), Some(Duration::from_secs(7)));
    }
}
