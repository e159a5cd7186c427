//! Tinybird's token rules: resource tokens, JWTs (fixed_params, filters, expiry, forgery), rate limits, Token API.

use crate::common::*;
use serde_json::{Value, json};

fn pipe_jwt(s: &tinybird_local::LocalServer, fixed: Value) -> String {
    jwt(
        s,
        json!({
            "workspace_id": s.workspace_id(), "name": "frontend", "exp": in_one_hour(),
            "scopes": [{"type": "PIPES:READ", "resource": "top_pages", "fixed_params": fixed}]
        }),
    )
}

fn pages(b: &Value) -> Vec<String> {
    b["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{b}"))
        .iter()
        .map(|r| r["page"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn resource_tokens_from_datafiles() {
    let s = server().await;
    seed(&s).await;
    let read_top = s.token("read_top").unwrap();
    let append = s.token("events_append").unwrap();
    let read = s.token("events_read").unwrap();
    let (status, _) = get_json(&format!("{}/v0/pipes/top_pages.json", s.url()), &read_top).await;
    assert_eq!(status, 200);
    let (status, _) = get_json(&format!("{}/v0/pipes/org_count.json?org_id=a", s.url()), &read_top).await;
    assert_eq!(status, 403);
    // PIPES:READ on a pipe does not open its datasource to /v0/sql.
    let (status, _) = get_json(&format!("{}/v0/sql?q=SELECT%201%20FROM%20events", s.url()), &read_top).await;
    assert_eq!(status, 403);
    let (status, _) = get_json(&format!("{}/v0/sql?q=SELECT%20count()%20FROM%20events", s.url()), &read).await;
    assert_eq!(status, 200);
    let ingest = |token: String| {
        let url = format!("{}/v0/events?name=events&wait=true", s.url());
        async move { client().post(url).bearer_auth(token).body(ROWS).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ingest(append.clone()).await, 200);
    assert_eq!(ingest(read.clone()).await, 403);
    assert_eq!(ingest(read_top.clone()).await, 403);
    // The admin can list them.
    let (_, tokens) = get_json(&format!("{}/v0/tokens", s.url()), s.admin_token()).await;
    let names: Vec<&str> = tokens["tokens"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"read_top") && names.contains(&"events_append"), "{names:?}");
    let (status, _) = get_json(&format!("{}/v0/tokens", s.url()), &append).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn fixed_params_win_however_params_are_sent() {
    let s = server().await;
    seed(&s).await;
    let token = pipe_jwt(&s, json!({"org_id": "other"}));
    let url = format!("{}/v0/pipes/top_pages.json", s.url());
    for query in ["", "?org_id=acme", "?org_id=acme&org_id=acme", "?org_id=acme,acme"] {
        let (status, body) = get_json(&format!("{url}{query}"), &token).await;
        assert_eq!((status, pages(&body)), (200, vec!["/c".to_string()]), "{query}");
    }
    let body: Value =
        client().post(&url).bearer_auth(&token).form(&[("org_id", "acme")]).send().await.unwrap().json().await.unwrap();
    assert_eq!(pages(&body), ["/c"]);
    let body: Value = client()
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"org_id": "acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pages(&body), ["/c"]);
    let body: Value = client()
        .post(format!("{url}?org_id=acme"))
        .bearer_auth(&token)
        .json(&json!({"org_id": ["acme", "x"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pages(&body), ["/c"]);
    // `q` runs over the pipe's result only: it cannot reach the datasource behind the pipe.
    let (status, body) =
        get_json(&format!("{url}?q=SELECT%20count()%20AS%20c%20FROM%20_%20FORMAT%20JSON"), &token).await;
    assert_eq!((status, &body["data"]), (200, &json!([{"c": 1}])), "{body}");
    let (status, _) = get_json(&format!("{url}?q=SELECT%20*%20FROM%20events"), &token).await;
    assert_eq!(status, 403);
    let (status, _) =
        get_json(&format!("{url}?q=SELECT%20*%20FROM%20_%20WHERE%201%20IN%20(SELECT%201%20FROM%20events)"), &token)
            .await;
    assert_eq!(status, 403);
    // A JWT for one pipe cannot read another, nor /v0/sql, nor ingest.
    let (status, _) = get_json(&format!("{}/v0/pipes/org_count.json?org_id=acme", s.url()), &token).await;
    assert_eq!(status, 403);
    let (status, _) = get_json(&format!("{}/v0/sql?q=SELECT%201%20FROM%20events", s.url()), &token).await;
    assert_eq!(status, 403);
    let r = client()
        .post(format!("{}/v0/events?name=events", s.url()))
        .bearer_auth(&token)
        .body(ROWS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn datasource_filters_apply_in_sql_and_pipes() {
    let s = server().await;
    seed(&s).await;
    let token = jwt(
        &s,
        json!({
            "workspace_id": s.workspace_id(), "name": "reader", "exp": in_one_hour(),
            "scopes": [
                {"type": "DATASOURCES:READ", "resource": "events", "filter": "org_id = 'acme'"},
                {"type": "PIPES:READ", "resource": "top_pages"}
            ]
        }),
    );
    let sql = |q: &str| format!("{}/v0/sql?q={}", s.url(), q.replace(' ', "%20"));
    let (status, body) = get_json(&sql("SELECT count() AS c FROM events FORMAT JSON"), &token).await;
    assert_eq!((status, &body["data"]), (200, &json!([{"c": 3}])), "{body}");
    let (_, body) =
        get_json(&sql("SELECT count() AS c FROM events AS e WHERE e.org_id = 'other' FORMAT JSON"), &token).await;
    assert_eq!(body["data"], json!([{"c": 0}]));
    let (_, body) = get_json(&sql("SELECT count() AS c FROM (SELECT * FROM events) FORMAT JSON"), &token).await;
    assert_eq!(body["data"], json!([{"c": 3}]));
    // The totals and subtotal rows of `WITH TOTALS` and `ROLLUP` hold only the filtered rows too.
    let (status, body) =
        get_json(&sql("SELECT org_id, count() AS c FROM events GROUP BY org_id WITH TOTALS FORMAT JSON"), &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["data"], &body["totals"]),
        (&json!([{"org_id": "acme", "c": 3}]), &json!({"org_id": "", "c": 3}))
    );
    let (_, body) = get_json(
        &sql("SELECT org_id, count() AS c FROM events GROUP BY ROLLUP(org_id) ORDER BY c, org_id FORMAT JSON"),
        &token,
    )
    .await;
    assert_eq!(body["data"], json!([{"org_id": "", "c": 3}, {"org_id": "acme", "c": 3}]), "{body}");
    // Inside pipes too: asking for org 'other' through the pipe finds nothing.
    let (status, body) = get_json(&format!("{}/v0/pipes/top_pages.json?org_id=other", s.url()), &token).await;
    assert_eq!((status, pages(&body)), (200, Vec::<String>::new()));
    // Without a filter, DATASOURCES:READ reads everything.
    let open = jwt(
        &s,
        json!({
            "workspace_id": s.workspace_id(), "name": "r2", "exp": in_one_hour(),
            "scopes": [{"type": "DATASOURCES:READ", "resource": "events"}]
        }),
    );
    let (_, body) = get_json(&sql("SELECT count() AS c FROM events FORMAT JSON"), &open).await;
    assert_eq!(body["data"], json!([{"c": 4}]));
}

#[tokio::test]
async fn bad_jwts_are_rejected() {
    let s = server().await;
    let url = format!("{}/v0/pipes/top_pages.json", s.url());
    let scopes = json!([{"type": "PIPES:READ", "resource": "top_pages"}]);
    let expired = jwt(&s, json!({"workspace_id": s.workspace_id(), "name": "x", "exp": 1_000_000, "scopes": scopes}));
    let no_exp = jwt(&s, json!({"workspace_id": s.workspace_id(), "name": "x", "scopes": scopes}));
    let forged = {
        let key = jsonwebtoken::EncodingKey::from_secret(b"not the admin token");
        let payload = json!({"workspace_id": s.workspace_id(), "name": "x", "exp": in_one_hour(), "scopes": scopes});
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &payload, &key).unwrap()
    };
    let alg_none = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = json!({"workspace_id": s.workspace_id(), "name": "x", "exp": in_one_hour(), "scopes": scopes});
        format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), b64.encode(payload.to_string()))
    };
    let tampered = {
        let good =
            jwt(&s, json!({"workspace_id": s.workspace_id(), "name": "x", "exp": in_one_hour(), "scopes": scopes}));
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = json!({"workspace_id": s.workspace_id(), "name": "x", "exp": in_one_hour(), "scopes": [{"type": "PIPES:READ", "resource": "org_count"}]});
        parts[1] = b64.encode(payload.to_string());
        parts.join(".")
    };
    let other_workspace =
        jwt(&s, json!({"workspace_id": "someone-else", "name": "x", "exp": in_one_hour(), "scopes": scopes}));
    for (what, token) in [
        ("expired", expired),
        ("missing exp", no_exp),
        ("forged", forged),
        ("alg none", alg_none),
        ("tampered", tampered),
        ("other workspace", other_workspace),
        ("garbage", "eyJhbGciOi.garbage".to_string()),
    ] {
        let (status, body) = get_json(&url, &token).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert!(body["error"].is_string() && body["documentation"].is_string(), "{what}: {body}");
        assert!(!body.to_string().contains(s.admin_token()), "{what}");
    }
}

#[tokio::test]
async fn rate_limits_per_jwt_name() {
    let s = server().await;
    let claims = |name: &str| {
        json!({
            "workspace_id": s.workspace_id(), "name": name, "exp": in_one_hour(),
            "scopes": [{"type": "PIPES:READ", "resource": "top_pages"}], "limits": {"rps": 2}
        })
    };
    // Two JWTs with the same name share one bucket.
    let (a, b) = (
        jwt(&s, claims("shared")),
        jwt(&s, {
            let mut c = claims("shared");
            c["exp"] = json!(in_one_hour() + 5);
            c
        }),
    );
    let url = format!("{}/v0/pipes/top_pages.json", s.url());
    let mut statuses = Vec::new();
    let mut limited = None;
    // Eight calls within a second or two: at most 2 succeed per one-second window.
    for token in [&a, &b, &a, &b, &a, &b, &a, &b] {
        let r = client().get(&url).bearer_auth(token).send().await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            limited = Some(r);
        }
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(ok <= 4 && statuses.iter().filter(|s| **s == 429).count() >= 4, "{statuses:?}");
    let r = limited.unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["x-ratelimit-limit"], "2");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert!(r.headers().contains_key("x-ratelimit-reset"));
    // Another name has its own bucket.
    let other = jwt(&s, claims("other"));
    let r = client().get(&url).bearer_auth(&other).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-limit"], "2");
}

#[tokio::test]
async fn token_api_creates_jwts() {
    let s = server().await;
    seed(&s).await;
    let exp = in_one_hour();
    let body = json!({"name": "ui", "scopes": [{"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org_id": "other"}}], "limits": {"rps": 10}});
    let r = client()
        .post(format!("{}/v0/tokens/?expiration_time={exp}", s.url()))
        .bearer_auth(s.admin_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let created: Value = r.json().await.unwrap();
    assert_eq!(
        (created["name"].as_str(), created["exp"].as_i64(), created["limits"]["rps"].as_i64()),
        (Some("ui"), Some(exp), Some(10))
    );
    let token = created["token"].as_str().unwrap();
    let (status, body) = get_json(&format!("{}/v0/pipes/top_pages.json?org_id=acme", s.url()), token).await;
    assert_eq!((status, pages(&body)), (200, vec!["/c".to_string()]));
    // Name in the query string, as the CLI sends it.
    let r = client()
        .post(format!("{}/v0/tokens?name=cli&expiration_time={exp}", s.url()))
        .bearer_auth(s.admin_token())
        .body(r#"{"scopes":[{"type":"DATASOURCES:READ","resource":"events","filter":"org_id = 'acme'"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for (query, body, status, text) in [
        (
            "expiration_time=1".to_string(),
            json!({"name": "x", "scopes": []}),
            400,
            "The specified expiration time: '1' is invalid",
        ),
        (
            "expiration_time=abc".to_string(),
            json!({"name": "x", "scopes": []}),
            400,
            "is invalid, must be a future unix epoch timestamp",
        ),
        (
            format!("expiration_time={exp}"),
            json!({"name": "x", "scopes": {}}),
            400,
            "Invalid body, scopes must be a list of scope",
        ),
        (
            format!("expiration_time={exp}"),
            json!({"name": "x", "scopes": [{"type": "PIPES:READ", "resource": "nope"}]}),
            400,
            "Resource 'nope' not found",
        ),
        (
            format!("expiration_time={exp}"),
            json!({"name": "x", "scopes": [{"type": "PIPES:READ", "resource": ""}]}),
            400,
            "a resource name is required",
        ),
    ] {
        let r = client()
            .post(format!("{}/v0/tokens?{query}", s.url()))
            .bearer_auth(s.admin_token())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{query} {body}");
        let err: Value = r.json().await.unwrap();
        assert!(err["error"].as_str().unwrap().contains(text), "{err}");
    }
    let r = client()
        .post(format!("{}/v0/tokens?expiration_time={exp}", s.url()))
        .body("{not json")
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].as_str().unwrap().starts_with("Invalid body :"));
    let r = client()
        .post(format!("{}/v0/tokens?expiration_time={exp}", s.url()))
        .bearer_auth(s.token("read_top").unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.json::<Value>().await.unwrap()["error"].clone()),
        (403, json!("Token has not enough permissions to create an Token"))
    );
}

#[tokio::test]
async fn jwt_append_scope_and_bounded_bodies() {
    let s = tinybird_local::LocalServer::builder().resources(resources()).max_body_bytes(2048).start().await.unwrap();
    let token = jwt(
        &s,
        json!({
            "workspace_id": s.workspace_id(), "name": "ingest", "exp": in_one_hour(),
            "scopes": [{"type": "DATASOURCES:APPEND", "resource": "events"}]
        }),
    );
    let r = client()
        .post(format!("{}/v0/events?name=events&wait=true", s.url()))
        .bearer_auth(&token)
        .body(ROWS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _) = get_json(&format!("{}/v0/sql?q=SELECT%201%20FROM%20events", s.url()), &token).await;
    assert_eq!(status, 403);
    // Every route bounds its body, and the 413 is JSON.
    let r = client()
        .post(format!("{}/v0/sql", s.url()))
        .bearer_auth(s.admin_token())
        .body("SELECT 1 ".repeat(1000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    // A deploy without a multipart body is a JSON 400, not a plain-text rejection.
    let r =
        client().post(format!("{}/v1/deploy", s.url())).bearer_auth(s.admin_token()).body("x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let (status, body) = get_json(&format!("{}/v1/user/workspaces", s.url()), s.admin_token()).await;
    assert_eq!((status, body["workspaces"][0]["id"].as_str()), (200, Some(s.workspace_id())));
}

/// Nothing a workspace's admin deploys reaches past the workspace: on the ClickHouse engine every workspace is a
/// database of one ClickHouse, so a view naming `system.tables` or another database, a `Merge` engine over every
/// database, or DDL text with a comment, subquery or qualified name would read (or write) other workspaces' tables.
/// Each is refused at deploy, on both engines, and the workspace's live project is untouched.
#[tokio::test]
async fn deployed_text_never_reaches_another_database() {
    let s = server().await;
    seed(&s).await;
    let events = std::fs::read_to_string(project_dir().join("events.datasource")).unwrap();
    let target = "SCHEMA >\n    `n` UInt64\n\nENGINE \"MergeTree\"\nENGINE_SORTING_KEY \"n\"\n";
    let view = |sql: &str| format!("NODE v\nSQL >\n    {sql}\n\nTYPE materialized\nDATASOURCE target\n");
    let datasource = |extra: &str| format!("SCHEMA >\n    `n` UInt64{extra}\n");
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        (
            "a view reading system.tables",
            vec![
                ("target.datasource".into(), target.into()),
                ("leak.pipe".into(), view("SELECT count() AS n FROM system.tables")),
            ],
        ),
        (
            "a view reading another database's table",
            vec![
                ("target.datasource".into(), target.into()),
                ("leak.pipe".into(), view("SELECT count() AS n FROM tb_other.events")),
            ],
        ),
        (
            "a Merge engine over every database",
            vec![("leak.datasource".into(), datasource("\n\nENGINE \"Merge(REGEXP('^tb_'), '^events$') --\""))],
        ),
        (
            "a Buffer engine writing elsewhere",
            vec![(
                "leak.datasource".into(),
                datasource("\n\nENGINE \"Buffer(tb_other, events, 1, 1, 1, 1, 1, 1, 1)\""),
            )],
        ),
        (
            "a subquery in a default",
            vec![(
                "leak.datasource".into(),
                "SCHEMA >\n    `n` UInt64 DEFAULT (SELECT count() FROM system.tables)\n".into(),
            )],
        ),
        (
            "a comment in the sorting key",
            vec![("leak.datasource".into(), datasource("\n\nENGINE \"MergeTree\"\nENGINE_SORTING_KEY \"n) -- \""))],
        ),
        (
            "a qualified name in the TTL",
            vec![(
                "leak.datasource".into(),
                datasource(
                    ", `d` DateTime\n\nENGINE \"MergeTree\"\nENGINE_TTL \"d + toIntervalDay(system.one.dummy)\"",
                ),
            )],
        ),
        (
            "joinGet in a default",
            vec![("leak.datasource".into(), "SCHEMA >\n    `n` UInt64 DEFAULT joinGet('tb_other.j', 'v', 1)\n".into())],
        ),
        (
            "a disk in the settings",
            vec![(
                "leak.datasource".into(),
                datasource("\n\nENGINE \"MergeTree\"\nENGINE_SETTINGS \"disk = disk(type = local, path = '/tmp/x/')\""),
            )],
        ),
    ];
    for (what, files) in cases {
        let mut all: Vec<(&str, &str)> = vec![("events.datasource", events.as_str())];
        all.extend(files.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        let (status, body) = build(&s, &all).await;
        assert!(status >= 400 || body["result"] == "failed", "{what} was deployed: {status} {body}");
        let (_, rows) = get_json(
            &format!("{}/v0/sql?q=SELECT%20count()%20AS%20c%20FROM%20events%20FORMAT%20JSON", s.url()),
            s.admin_token(),
        )
        .await;
        assert_eq!(rows["data"][0]["c"], 4, "{what}: the live project is untouched: {rows}");
    }
}
