//! Audit: bad input to the HTTP API gets an error response, never a panic (a panic drops the connection).

use crate::common::*;
use serde_json::json;

async fn sql_status(s: &tinybird_local::LocalServer, token: &str, pairs: &[(&str, &str)]) -> (u16, String) {
    let r = client()
        .get(format!("{}/v0/sql", s.url()))
        .query(pairs)
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers instead of dropping the connection");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn sql_with_pipeline_and_multibyte_text_near_the_start_is_an_error_not_a_panic() {
    let s = server().await;
    // `é` spans bytes 3..5: the `WITH` check must not slice through it.
    let (status, body) = sql_status(&s, s.admin_token(), &[("q", "abcé"), ("pipeline", "top_pages")]).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn jwt_filter_that_is_not_a_single_select_is_an_error_not_a_panic() {
    let s = server().await;
    seed(&s).await;
    let token = jwt(
        &s,
        json!({
            "workspace_id": s.workspace_id(), "name": "reader", "exp": in_one_hour(),
            "scopes": [{"type": "DATASOURCES:READ", "resource": "events",
                        "filter": "1=1) AS t UNION ALL SELECT * FROM (SELECT * FROM events"}]
        }),
    );
    let (status, body) = sql_status(&s, &token, &[("q", "SELECT count() AS c FROM events FORMAT JSON")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("filter"), "{body}");
}

#[tokio::test]
async fn substring_with_huge_offsets_does_not_overflow() {
    let s = server().await;
    let q = "SELECT substring('abc', 9223372036854775807, 9223372036854775807) AS x FORMAT JSON";
    let (status, body) = sql_status(&s, s.admin_token(), &[("q", q)]).await;
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["data"], json!([{"x": ""}]));
}

/// The data directory's `workspace.json` holds the admin token: only its owner may read it.
#[cfg(unix)]
#[tokio::test]
async fn stored_identity_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!(
        "tinybird-local-audit-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    let s = tinybird_local::LocalServer::builder().resources(resources()).data_dir(&dir).start().await.unwrap();
    let mode = std::fs::metadata(dir.join("workspace.json")).unwrap().permissions().mode() & 0o777;
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(mode, 0o600, "mode {mode:o}");
}

/// Edge-case SQL and templates (huge or negative numbers, empty patterns, multi-byte text, missing arguments): each
/// gets a 200 or a 400, never a dropped connection or a 5xx.
#[tokio::test]
async fn edge_case_sql_gets_an_answer_never_a_dropped_connection() {
    let s = server().await;
    seed(&s).await;
    let queries = [
        "SELECT substring('héllo', 2, 1) AS x FORMAT JSON",
        "SELECT substring('héllo', -9223372036854775808, -9223372036854775808) AS x FORMAT JSON",
        "SELECT substring('héllo', 1, -9223372036854775808) AS x FORMAT JSON",
        "SELECT round(1.5, 9223372036854775807) AS x FORMAT JSON",
        "SELECT round(1.5, -9223372036854775808) AS x FORMAT JSON",
        "SELECT toDecimal64(1, 200) AS x FORMAT JSON",
        "SELECT toDateTime64(now(), 200) AS x FORMAT JSON",
        "SELECT toDateTime(99999999999999999) AS x FORMAT JSON",
        "SELECT toDate(-99999999999) AS x FORMAT JSON",
        "SELECT dateDiff('month', toDateTime(0), toDateTime(9223372036)) AS x FORMAT JSON",
        "SELECT dateDiff('year', toDateTime(-9223372036), toDateTime(9223372036)) AS x FORMAT JSON",
        "SELECT quantile(2)(duration) FROM events FORMAT JSON",
        "SELECT quantiles(0.5, 0.9)(duration) FROM events FORMAT JSON",
        "SELECT quantile(nan)(duration) FROM events FORMAT JSON",
        "SELECT formatDateTime(now(), '%') AS x FORMAT JSON",
        "SELECT formatDateTime(now(), '%é%') AS x FORMAT JSON",
        "SELECT toStartOfInterval(timestamp, INTERVAL 0 second) FROM events FORMAT JSON",
        "SELECT toStartOfInterval(timestamp, INTERVAL -1 day) FROM events FORMAT JSON",
        "SELECT toStartOfInterval(timestamp, INTERVAL 9223372036854775807 day) FROM events FORMAT JSON",
        "SELECT intDiv(1, 0) AS x FORMAT JSON",
        "SELECT intDiv(-9223372036854775808, -1) AS x FORMAT JSON",
        "SELECT modulo(-9223372036854775808, -1) AS x FORMAT JSON",
        "SELECT 1 % 0 AS x FORMAT JSON",
        "SELECT JSONExtractString('{\"a\":1}', 'a', 'b', 'c') AS x FORMAT JSON",
        "SELECT arrayElement([1,2], 9223372036854775807) AS x FORMAT JSON",
        "SELECT [1,2][0] AS x FORMAT JSON",
        "SELECT countIf() FROM events FORMAT JSON",
        "SELECT sumIf(duration) FROM events FORMAT JSON",
        "SELECT argMax(page) FROM events FORMAT JSON",
        "SELECT toUInt8OrNull() AS x FORMAT JSON",
        "SELECT multiIf(1) AS x FORMAT JSON",
        "SELECT if(1, 2) AS x FORMAT JSON",
        "SELECT splitByChar('', 'abc') AS x FORMAT JSON",
        "SELECT replaceAll('abc', '', 'x') AS x FORMAT JSON",
        "SELECT 1 FORMAT",
        "FORMAT JSON",
        "SELECT * FROM events LIMIT 9223372036854775807 FORMAT JSON",
        "SELECT * FROM events LIMIT 1 OFFSET 18446744073709551615 FORMAT JSON",
        "SELECT * FROM events LIMIT -1 FORMAT JSON",
        "SELECT toInt64(9223372036854775807) + 1 AS x FORMAT JSON",
        "SELECT -toInt64(-9223372036854775808) AS x FORMAT JSON",
        "SELECT abs(toInt64(-9223372036854775808)) AS x FORMAT JSON",
        "WITH x AS (SELECT 1) SELECT * FROM x FORMAT JSON",
        "é",
        "SELECT '\u{0}' AS x FORMAT JSON",
        "SELECT {{ 'x' }} AS x FORMAT JSON",
        "%\nSELECT {{ Int8(a, 300) }} AS x FORMAT JSON",
        "%\nSELECT {{ columns(cols, 'a') }} FORMAT JSON",
        "%\nSELECT {{ sql_unescape(String(a, 'x'), '%') }} FORMAT JSON",
        "%\nSELECT {{ Array(a, 'Int8', default='1,2,999') }} FORMAT JSON",
        "%\nSELECT {{ DateTime(a, '9999-99-99 99:99:99') }} FORMAT JSON",
        "%\nSELECT {{ day_diff('2020-01-01', '99999-01-01') }} FORMAT JSON",
        "%\nSELECT {{ date_diff_in_seconds('2020-01-01 00:00:00', '2020-01-01') }} FORMAT JSON",
    ];
    for q in queries {
        let (status, body) = sql_status(&s, s.admin_token(), &[("q", q)]).await;
        assert!(status == 200 || status == 400, "{q} -> {status} {body}");
    }
    for q in ["SELECT * FROM _ LIMIT 1 FORMAT JSON", "é", "abcé"] {
        let r = client()
            .get(format!("{}/v0/pipes/top_pages.json", s.url()))
            .query(&[("q", q), ("limit", "99999999999999999999999")])
            .bearer_auth(s.admin_token())
            .send()
            .await
            .expect("the server answers instead of dropping the connection");
        assert_eq!(r.status().as_u16(), 400, "{q}");
    }
}
