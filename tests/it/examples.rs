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

#[path = "../../examples/rollup.rs"]
mod rollup;

/// The rollup example on tinybird-local's ClickHouse engine (aggregate states are ClickHouse's format): each org's
/// days, merged from partial rows written by two ingests, equal what the raw events say, computed here; org 1's
/// token asking for org 2 gets org 1; a row of states is not sent. Without chDB the test says so and passes, unless
/// `TINYBIRD_LOCAL_REQUIRE_CLICKHOUSE=1` (set by `scripts/test.sh`).
#[tokio::test]
async fn rollup_merges_each_orgs_days_from_partial_states() {
    use std::collections::{BTreeMap, BTreeSet};
    let summary = match rollup::run(rollup::Backend::Local).await {
        Ok(summary) => summary,
        Err(e) if std::env::var_os("TINYBIRD_LOCAL_REQUIRE_CLICKHOUSE").is_none() => {
            eprintln!("SKIPPED: the ClickHouse engine is not available here: {e}");
            return;
        }
        Err(e) => panic!("the rollup example fails: {e}"),
    };
    assert_eq!(summary.ingested.len(), 11);
    for (org, days) in &summary.days {
        let mut expected: BTreeMap<NaiveDate, (u64, BTreeSet<u64>, chrono::NaiveDateTime)> = BTreeMap::new();
        for e in summary.ingested.iter().filter(|e| e.org_id == *org) {
            let day = expected.entry(e.timestamp.date()).or_insert((0, BTreeSet::new(), e.timestamp));
            day.0 += 1;
            day.1.insert(e.user_id);
            day.2 = day.2.max(e.timestamp);
        }
        let expected: Vec<rollup::OrgDay> = expected
            .into_iter()
            .map(|(day, (events, users, last_seen))| rollup::OrgDay {
                day,
                events,
                users: users.len() as u64,
                last_seen,
            })
            .collect();
        assert_eq!(days, &expected, "org {org}'s rollup");
    }
    assert_ne!(summary.days[0].1, summary.days[1].1);
    assert_eq!(summary.tampered, summary.days[0].1, "org 1 asking for org 2 gets org 1");
    assert!(summary.state_not_sent.contains("AggregateFunction(uniq, UInt64)"), "{}", summary.state_not_sent);
    assert!(summary.state_not_sent.contains("not sent"), "{}", summary.state_not_sent);
}

/// Tinybird's own datafile parser (`tinybird==5.0.3`) reads the rollup's generated files: the aggregate-state
/// columns with their types, the `AggregatingMergeTree` engine, the view's target. Without `TINYBIRD_TB` it says so
/// and passes, unless `TINYBIRD_LOCAL_REQUIRE_TB=1`.
#[test]
fn tinybirds_parser_reads_the_rollups_datafiles() {
    let script = r#"
import sys, glob, json
from tinybird.datafile.parse_pipe import parse_pipe
from tinybird.datafile.parse_datasource import parse_datasource
from tinybird.sql import parse_table_structure
out = {}
for f in sorted(glob.glob(sys.argv[1] + "/**/*.*", recursive=True)):
    name = f.rsplit("/", 1)[1]
    if f.endswith(".pipe"):
        out[name] = {k: str(v) for k, v in parse_pipe(f).datafile.nodes[-1].items() if k != "sql"}
    else:
        d = parse_datasource(f).datafile
        node = d.nodes[0]
        out[name] = {"engine": node.get("engine", {}).get("type"), "columns": {c["name"]: c["type"] for c in parse_table_structure(node["schema"])}}
print(json.dumps(out))
"#;
    let Some(parsed) = crate::tb_parser::parse(&rollup::project(), script) else { return };
    let daily = &parsed["org_daily.datasource"];
    assert_eq!(daily["engine"], "AggregatingMergeTree", "{parsed}");
    assert_eq!(daily["columns"]["events"], "SimpleAggregateFunction(sum, UInt64)", "{parsed}");
    assert_eq!(daily["columns"]["users"], "AggregateFunction(uniq, UInt64)", "{parsed}");
    assert_eq!(daily["columns"]["last_seen"], "AggregateFunction(max, DateTime)", "{parsed}");
    assert_eq!(parsed["org_daily_mv.pipe"]["type"], "materialized", "{parsed}");
    assert_eq!(parsed["org_daily_mv.pipe"]["datasource"], "org_daily", "{parsed}");
}
