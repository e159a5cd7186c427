//! The examples, run as tests against an in-process `tinybird-local`: each example's `run` returns what it saw and
//! the tests assert on it.

#[path = "../../examples/quickstart.rs"]
mod quickstart;

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// Expected `user_analytics` rows for `user`: the ingested events grouped by day, computed here independently.
fn expected_days(events: &[quickstart::Event], user: u64) -> Vec<quickstart::UserAnalyticsRow> {
    let mut days: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for e in events.iter().filter(|e| e.user_id == user) {
        *days.entry(e.timestamp.date()).or_default() += 1;
    }
    days.into_iter().map(|(day, events)| quickstart::UserAnalyticsRow { day, events }).collect()
}

#[tokio::test]
async fn quickstart_each_jwt_sees_only_its_user() {
    let summary =
        quickstart::run(quickstart::Backend::Local).await.expect("the quickstart runs against tinybird-local");

    assert_eq!(summary.ingested, quickstart::sample_events());
    assert_eq!(summary.rows.len(), 2);
    for (user, rows) in &summary.rows {
        let expected = expected_days(&summary.ingested, *user);
        assert!(!expected.is_empty(), "user {user} has sample events");
        assert_eq!(rows, &expected, "user {user}'s JWT returns exactly user {user}'s days and counts");
    }
    // The two users' data differ, so equality above means no leak in either direction.
    assert_ne!(summary.rows[0].1, summary.rows[1].1);

    let own = &summary.rows[0].1;
    assert_eq!(&summary.tampered_typed, own, "typed params asking for user 2 are overridden by the JWT");
    assert_eq!(&summary.tampered_raw, own, "a raw ?user_id=2 is overridden by the JWT");

    let burst = 3 * quickstart::RPS as usize;
    assert_eq!(summary.burst_ok + summary.burst_rate_limited, burst);
    assert!(summary.burst_rate_limited > 0, "a burst of {burst} past {} rps gets 429s", quickstart::RPS);
    assert!(
        summary.burst_ok <= 2 * quickstart::RPS as usize,
        "at most two one-second windows of {} requests",
        quickstart::RPS
    );
    assert!(summary.retry_after.is_some(), "a 429 says when to retry");
}

use crate::token_server;

/// `user_analytics` rows for `user` from the token server's sample data, as `(day, events)`.
fn token_server_days(user: u64) -> Vec<(NaiveDate, u64)> {
    let mut days: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for e in token_server::sample_events().iter().filter(|e| e.user_id == user) {
        *days.entry(e.timestamp.date()).or_default() += 1;
    }
    days.into_iter().collect()
}

#[tokio::test]
async fn token_server_routes() {
    let server = token_server::start(token_server::Backend::Local, 0).await.expect("the token server starts");
    let http =
        reqwest::Client::builder().cookie_store(true).timeout(std::time::Duration::from_secs(30)).build().unwrap();
    let url = |path: &str| format!("{}{path}", server.url());
    let token_route = url("/api/auth/tinybird-token");

    // The page and its configuration.
    let page = http.get(url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/api/auth/tinybird-token"));
    let config: serde_json::Value = http.get(url("/config.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config, serde_json::json!({"tinybird_url": server.tinybird_url(), "endpoint": "user_analytics"}));

    // Signed out: 401, no token.
    let res = http.post(&token_route).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"error": "Not signed in"}));
    let me: serde_json::Value = http.get(url("/api/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me, serde_json::json!({"user_id": null}));

    // A login that is not a user id is refused, and does not sign in.
    let res = http.post(url("/login")).form(&[("user_id", "1 OR 1=1")]).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("user_id must be a non-negative integer"));
    assert_eq!(http.post(&token_route).send().await.unwrap().status(), 401);

    // Signed in as user 1: a token, cached (the same one twice), that reads user 1's rows only.
    let res = http.post(url("/login")).form(&[("user_id", "1")]).send().await.unwrap();
    assert_eq!(res.status(), 200, "the login redirects to the page");
    let me: serde_json::Value = http.get(url("/api/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me, serde_json::json!({"user_id": 1}));
    let res = http.post(&token_route).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    let token = body["token"].as_str().expect("a token").to_owned();
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().expect("an expiry")).unwrap();
    let ttl = expires_at.timestamp() - chrono::Utc::now().timestamp();
    assert!((14 * 60..=15 * 60).contains(&ttl), "15 minute token, got {ttl} s");
    let again: serde_json::Value = http.post(&token_route).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["token"], body["token"], "the token is reused from the cache");

    let user1 = tinybird::client::Client::builder().base_url(server.tinybird_url()).token(&token).build().unwrap();
    let rows = user1
        .query(&token_server::UserAnalytics { user_id: 2, start_date: None, end_date: None, limit: None })
        .await
        .unwrap()
        .data;
    let got: Vec<(NaiveDate, u64)> = rows.iter().map(|r| (r.day, r.events)).collect();
    assert_eq!(got, token_server_days(1), "asking for user 2 with user 1's token returns user 1's rows");
    assert_ne!(token_server_days(1), token_server_days(2));

    // The token may append to `events` and nothing else: not read the datasource, not query other pipes.
    let event = token_server::Event {
        timestamp: NaiveDate::from_ymd_opt(2024, 3, 9).unwrap().and_hms_opt(12, 0, 0).unwrap(),
        user_id: 1,
        event_type: "click".into(),
        page: "/".into(),
    };
    let appended = user1.ingest(&[event]).await.expect("DATASOURCES:APPEND on events");
    assert_eq!(appended.successful_rows, 1);
    let err = user1.sql::<serde_json::Value>("SELECT count() FROM events").await.unwrap_err();
    assert!(matches!(err.kind(), tinybird::error::ErrorKind::Forbidden), "{err}");

    // Signed out again: 401.
    assert_eq!(http.post(url("/logout")).send().await.unwrap().status(), 200);
    assert_eq!(http.post(&token_route).send().await.unwrap().status(), 401);
    server.shutdown().await;
}

#[path = "../../examples/multi_tenant.rs"]
mod multi_tenant;

#[tokio::test]
async fn multi_tenant_org_a_cannot_see_org_b() {
    use std::collections::{BTreeMap, BTreeSet};
    use tinybird::jwt::ScopeKind;

    let summary =
        multi_tenant::run(multi_tenant::Backend::Local).await.expect("the example runs against tinybird-local");
    assert_eq!(summary.ingested, multi_tenant::sample_events());
    assert_eq!(summary.views.len(), 2);

    for view in &summary.views {
        let org = view.org_id;
        let own: Vec<&multi_tenant::Event> = summary.ingested.iter().filter(|e| e.org_id == org).collect();

        // org_analytics: exactly the org's users, with their counts and last event, most active first.
        let mut expected: BTreeMap<u64, (u64, chrono::NaiveDateTime)> = BTreeMap::new();
        for e in &own {
            let entry = expected.entry(e.user_id).or_insert((0, e.timestamp));
            entry.0 += 1;
            entry.1 = entry.1.max(e.timestamp);
        }
        let mut expected: Vec<multi_tenant::OrgUser> = expected
            .into_iter()
            .map(|(user_id, (events, last_seen))| multi_tenant::OrgUser { user_id, events, last_seen })
            .collect();
        expected.sort_by(|x, y| y.events.cmp(&x.events).then(x.user_id.cmp(&y.user_id)));
        assert_eq!(view.users, expected, "org {org}'s token returns org {org}'s users only");

        // org_events: every event of the org and nothing else.
        assert!(view.events.iter().all(|e| e.org_id == org), "org {org} sees only its own events");
        let got: BTreeSet<String> = view.events.iter().map(|e| format!("{e:?}")).collect();
        let want: BTreeSet<String> = own.iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(got, want);

        // The token: createOrgToken's shape, verified with the signing key.
        let claims = &view.claims;
        assert_eq!(claims.name, format!("org_{org}"));
        assert_eq!(claims.rps(), Some(50));
        let ttl = claims.exp - chrono::Utc::now().timestamp();
        assert!((24 * 3600 - 120..=24 * 3600).contains(&ttl), "24 h token, got {ttl} s");
        assert_eq!(claims.scopes.len(), 3);
        for pipe in ["org_analytics", "org_events"] {
            let scope = claims.scope(ScopeKind::PipesRead, pipe).expect("PIPES:READ on both endpoints");
            assert_eq!(scope.fixed_params.as_ref().unwrap()["org_id"], serde_json::json!(org), "a JSON number");
        }
        assert!(claims.scope(ScopeKind::DatasourcesAppend, "events").is_some());
    }
    assert_ne!(summary.views[0].users, summary.views[1].users);

    assert_eq!(summary.tampered_users, summary.views[0].users, "org 1 asking org_analytics for org 2 gets org 1");
    assert_eq!(summary.tampered_events, summary.views[0].events, "org 1 asking org_events for org 2 gets org 1");
    assert_eq!(summary.appended, 1);
    assert!(summary.long_ttl_refused.contains("org_1"), "{}", summary.long_ttl_refused);
}
