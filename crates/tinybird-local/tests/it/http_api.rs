//! The HTTP API over real sockets: pipes, /v0/sql, events, datasources, deployments, CORS.

use crate::common::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use std::io::Write;
use tinybird_local::LocalServer;

#[tokio::test]
async fn health_and_local_tokens() {
    let s = server().await;
    let (status, body) = get_json(&format!("{}/v0/health", s.url()), "").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let r: Value = client().get(format!("{}/tokens", s.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["workspace_admin_token"].as_str(), Some(s.admin_token()));
    assert!(r["user_token"].as_str().unwrap().starts_with("p."));
    // The admin token is Tinybird's static format with the workspace id inside.
    let middle = s.admin_token().split('.').nth(1).unwrap();
    use base64::Engine as _;
    let payload: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(middle).unwrap()).unwrap();
    assert_eq!(payload["u"].as_str(), Some(s.workspace_id()));
    assert!(!format!("{s:?}").contains(s.admin_token()));
}

#[tokio::test]
async fn pipe_json_envelope() {
    let s = server().await;
    seed(&s).await;
    let (status, body) = get_json(&format!("{}/v0/pipes/top_pages.json", s.url()), s.admin_token()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["meta"],
        json!([
            {"name": "page", "type": "String"},
            {"name": "hits", "type": "UInt64"},
            {"name": "total", "type": "Float64"},
            {"name": "big", "type": "UInt64"}
        ])
    );
    assert_eq!(body["data"][0], json!({"page": "/a", "hits": 2, "total": 4, "big": 18446744073709551615u64}));
    assert_eq!(body["data"][1], json!({"page": "/b", "hits": 1, "total": 4, "big": 2}));
    assert_eq!(body["rows"], 2);
    assert_eq!(body["rows_before_limit_at_least"], 2);
    assert!(body["statistics"]["elapsed"].is_number());
    assert_eq!(body["statistics"]["rows_read"], 4);
    // 64-bit integers are numbers by default (the raw text keeps all digits) and strings on request.
    let raw = client()
        .get(format!("{}/v0/pipes/top_pages.json?output_format_json_quote_64bit_integers=1", s.url()))
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.contains("\"big\":\"18446744073709551615\""), "{raw}");
    let (status, body) = get_json(
        &format!("{}/v0/pipes/top_pages.json?output_format_json_quote_64bit_integers=2", s.url()),
        s.admin_token(),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("output_format_json_quote_64bit_integers must be 0 or 1")));
    // DateTime values print as `YYYY-MM-DD HH:MM:SS`.
    let (_, body) = get_json(&format!("{}/v0/pipes/org_count.json?org_id=acme", s.url()), s.admin_token()).await;
    assert_eq!(body["data"][0], json!({"c": 3, "first_seen": "2024-01-01 00:00:00"}));
    assert_eq!(body["meta"][1], json!({"name": "first_seen", "type": "DateTime"}));
    assert!(body.get("rows_before_limit_at_least").is_none());
}

#[tokio::test]
async fn pipe_params_from_query_form_and_json() {
    let s = server().await;
    seed(&s).await;
    let url = format!("{}/v0/pipes/top_pages.json", s.url());
    let pages = |b: &Value| {
        b["data"]
            .as_array()
            .unwrap_or_else(|| panic!("{b}"))
            .iter()
            .map(|r| r["page"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (_, body) = get_json(&format!("{url}?org_id=other"), s.admin_token()).await;
    assert_eq!(pages(&body), ["/c"]);
    let (_, body) = get_json(&format!("{url}?min_duration=3"), s.admin_token()).await;
    assert_eq!(pages(&body), ["/b"]);
    let (_, body) = get_json(&format!("{url}?limit=1"), s.admin_token()).await;
    assert_eq!((pages(&body), body["rows_before_limit_at_least"].as_u64()), (vec!["/a".to_string()], Some(2)));
    // Repeated keys and comma-separated values both fill an Array param.
    let (_, body) = get_json(&format!("{url}?pages=/b&pages=/zz"), s.admin_token()).await;
    assert_eq!(pages(&body), ["/b"]);
    let (_, body) = get_json(&format!("{url}?pages=/a,/b"), s.admin_token()).await;
    assert_eq!(pages(&body), ["/a", "/b"]);
    let form: Value = client()
        .post(&url)
        .bearer_auth(s.admin_token())
        .form(&[("org_id", "other")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pages(&form), ["/c"]);
    let body: Value = client()
        .post(&url)
        .bearer_auth(s.admin_token())
        .json(&json!({"org_id": "other"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pages(&body), ["/c"]);
    // Token in the query string.
    let (status, _) = get_json(&format!("{url}?token={}", s.admin_token()), "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn pipe_formats_and_q() {
    let s = server().await;
    seed(&s).await;
    let text = |path: String| {
        let token = s.admin_token().to_string();
        async move {
            let r = client().get(path).bearer_auth(token).send().await.unwrap();
            (r.headers()["content-type"].to_str().unwrap().to_string(), r.text().await.unwrap())
        }
    };
    let (ct, body) = text(format!("{}/v0/pipes/top_pages.csv", s.url())).await;
    assert_eq!(
        (ct.as_str(), body.as_str()),
        ("text/csv; charset=UTF-8; header=absent", "\"/a\",2,4,18446744073709551615\n\"/b\",1,4,2\n")
    );
    let (_, body) = text(format!("{}/v0/pipes/top_pages.csvwithnames", s.url())).await;
    assert!(body.starts_with("\"page\",\"hits\",\"total\",\"big\"\n\"/a\""), "{body}");
    let (ct, body) = text(format!("{}/v0/pipes/top_pages.ndjson", s.url())).await;
    assert!(ct.starts_with("application/x-ndjson"));
    // ClickHouse writes `/` as `\/` in JSON strings (output_format_json_escape_forward_slashes); both read as "/".
    assert_eq!(
        body.lines().next().unwrap().replace("\\/", "/"),
        r#"{"page":"/a","hits":2,"total":4,"big":18446744073709551615}"#
    );
    let (status, body) = get_json(
        &format!("{}/v0/pipes/top_pages.json?q=SELECT%20sum(hits)%20AS%20s%20FROM%20_", s.url()),
        s.admin_token(),
    )
    .await;
    assert_eq!((status, &body["data"]), (200, &json!([{"s": 3}])), "{body}");
    let (_, body) =
        text(format!("{}/v0/pipes/top_pages.json?q=SELECT%20count()%20FROM%20_%20FORMAT%20CSV", s.url())).await;
    assert_eq!(body, "2\n");
}

#[tokio::test]
async fn pipe_errors() {
    let s = server().await;
    let (status, body) = get_json(&format!("{}/v0/pipes/org_count.json", s.url()), s.admin_token()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().starts_with("Template Syntax Error: Required parameter is not defined"),
        "{body}"
    );
    assert!(body["documentation"].is_string());
    let (status, body) = get_json(&format!("{}/v0/pipes/nope.json", s.url()), s.admin_token()).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("Resource 'nope' not found")));
    let (status, _) = get_json(&format!("{}/v0/pipes/top_pages.json", s.url()), "p.bogus").await;
    assert_eq!(status, 403);
    let (status, _) = get_json(&format!("{}/v0/pipes/top_pages.json", s.url()), "").await;
    assert_eq!(status, 403);
    let (status, body) = get_json(&format!("{}/v0/pipes/top_pages.json?limit=abc", s.url()), s.admin_token()).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn sql_api() {
    let s = server().await;
    seed(&s).await;
    let url = format!("{}/v0/sql", s.url());
    let r = client()
        .get(&url)
        .query(&[("q", "SELECT count() AS c FROM events FORMAT JSON")])
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/json; charset=UTF-8");
    let body: Value = r.json().await.unwrap();
    assert_eq!((&body["meta"], &body["data"]), (&json!([{"name": "c", "type": "UInt64"}]), &json!([{"c": 4}])));
    // TSV by default.
    let r = client()
        .get(&url)
        .query(&[("q", "SELECT page, count() FROM events GROUP BY page ORDER BY page")])
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/tab-separated-values; charset=UTF-8");
    assert_eq!(r.text().await.unwrap(), "/a\t2\n/b\t1\n/c\t1\n");
    // POST raw text, form and JSON (templated).
    let raw = client()
        .post(&url)
        .bearer_auth(s.admin_token())
        .body("SELECT count() FROM events WHERE org_id = 'other'")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(raw, "1\n");
    let form = client()
        .post(&url)
        .bearer_auth(s.admin_token())
        .form(&[("q", "SELECT 1 + 1")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(form, "2\n");
    let templated = client()
        .post(&url)
        .bearer_auth(s.admin_token())
        .json(&json!({"q": "% SELECT count() AS c FROM events WHERE org_id = {{String(org)}} FORMAT JSONEachRow", "org": "acme"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(templated, "{\"c\":3}\n");
    // A pipe can be read as a table.
    let r = client()
        .get(&url)
        .query(&[("q", "SELECT count() FROM top_pages")])
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(r, "2\n");
    for (q, status, text) in [
        ("SELECT 1 FORMAT BogusFormat", 403, "invalid format BogusFormat"),
        ("INSERT INTO events VALUES (1)", 400, "Only SELECT or DESCRIBE queries are supported. Got: InsertQuery"),
        ("SELECT 1; SELECT 2", 400, "Multi-statements are not allowed"),
        ("SELECT * FROM missing_table", 403, "Resource 'missing_table' not found"),
        ("SELECT * FROM events FINAL", 400, "FINAL is not supported"),
        ("SELECT toUnknownFn(1)", 400, "toUnknownFn"),
    ] {
        if on_clickhouse() && q.contains("FINAL") {
            // ClickHouse runs FINAL.
            continue;
        }
        let r = client().get(&url).query(&[("q", q)]).bearer_auth(s.admin_token()).send().await.unwrap();
        let st = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(st, status, "{q}: {body}");
        assert!(body["error"].as_str().unwrap().contains(text), "{q}: {body}");
    }
    let (status, body) = get_json(&url, s.admin_token()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("missing q parameter. example q=select%201")));
    let r = client().post(&url).bearer_auth(s.admin_token()).body("").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "The request body should contain a query");
}

#[tokio::test]
async fn events_counts_statuses_and_quarantine() {
    let s = server().await;
    let url = format!("{}/v0/events?name=events", s.url());
    let bad = "{\"timestamp\":\"2024-01-01 00:00:00\",\"org_id\":\"acme\",\"page\":\"/a\",\"duration\":\"fast\",\"big\":1}\n\
               not json at all\n\
               {\"timestamp\":\"2024-01-01 00:00:00\",\"org_id\":\"acme\",\"page\":\"/a\",\"duration\":1,\"big\":-5}\n\
               [1,2]\n\
               \n\
               {\"timestamp\":\"2024-01-01 00:00:00\",\"org_id\":\"acme\",\"page\":\"/ok\",\"duration\":1,\"big\":1}";
    let r = client().post(&url).bearer_auth(s.admin_token()).body(bad).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"successful_rows": 1, "quarantined_rows": 4}));
    // Invalid UTF-8 and a single object without newline.
    let mut body =
        b"{\"timestamp\":\"2024-01-01 00:00:00\",\"org_id\":\"\xff\xfe\",\"page\":\"/x\",\"duration\":1,\"big\":1}\n"
            .to_vec();
    body.extend_from_slice(br#"{"timestamp":"2024-01-01 00:00:00","org_id":"acme","page":"/y","duration":1,"big":1}"#);
    let r = client().post(format!("{url}&wait=true")).bearer_auth(s.admin_token()).body(body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"successful_rows": 1, "quarantined_rows": 1}));
    let q = client()
        .get(format!("{}/v0/sql", s.url()))
        .query(&[("q", "SELECT duration, c__error_column, c__error FROM events_quarantine WHERE length(c__error_column) > 0 ORDER BY duration FORMAT JSON")])
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        q["data"][0]["c__error"],
        json!(["value '1' on column 'big' is not UInt64"])
            .as_array()
            .map(|_| q["data"][0]["c__error"].clone())
            .unwrap()
    );
    let errors: Vec<String> = q["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["c__error"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()))
        .collect();
    assert!(errors.contains(&"value 'fast' on column 'duration' is not Float64".to_string()), "{errors:?}");
    assert!(errors.contains(&"value '-5' on column 'big' is not UInt64".to_string()), "{errors:?}");
    let count = client()
        .get(format!("{}/v0/sql", s.url()))
        .query(&[("q", "SELECT count() FROM events_quarantine")])
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, "5\n");
}

#[tokio::test]
async fn events_bodies_gzip_limits_and_errors() {
    let s = LocalServer::builder().resources(resources()).max_body_bytes(4096).start().await.unwrap();
    let url = format!("{}/v0/events?name=events&wait=true", s.url());
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(ROWS.as_bytes()).unwrap();
    let r = client()
        .post(&url)
        .bearer_auth(s.admin_token())
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"successful_rows": 4, "quarantined_rows": 0}));
    let r = client()
        .post(&url)
        .bearer_auth(s.admin_token())
        .header("Content-Encoding", "gzip")
        .body(ROWS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("not valid gzip"));
    let big = ROWS.repeat(20);
    let r = client().post(&url).bearer_auth(s.admin_token()).body(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let r = client().post(&url).bearer_auth(s.admin_token()).body("").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r =
        client().post(format!("{}/v0/events", s.url())).bearer_auth(s.admin_token()).body(ROWS).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .post(format!("{}/v0/events?name=nope", s.url()))
        .bearer_auth(s.admin_token())
        .body(ROWS)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.json::<Value>().await.unwrap()["error"].clone()),
        (403, json!("Resource 'nope' not found"))
    );
    // Nothing acknowledged was lost: exactly the first four rows are there.
    let count = client()
        .get(format!("{}/v0/sql", s.url()))
        .query(&[("q", "SELECT count() FROM events")])
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, "4\n");
}

#[tokio::test]
async fn datasources_api() {
    let s = server().await;
    seed(&s).await;
    let base = format!("{}/v0/datasources", s.url());
    let (status, list) = get_json(&base, s.admin_token()).await;
    assert_eq!(status, 200);
    assert_eq!(list["datasources"][0]["name"], "events");
    let (_, detail) = get_json(&format!("{base}/events"), s.admin_token()).await;
    assert_eq!(detail["statistics"]["row_count"], 4);
    // Dry run, then delete.
    let r: Value = client()
        .post(format!("{base}/events/delete"))
        .bearer_auth(s.admin_token())
        .form(&[("delete_condition", "org_id = 'other'"), ("dry_run", "true")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({"rows_to_be_deleted": 1}));
    let r: Value = client()
        .post(format!("{base}/events/delete"))
        .bearer_auth(s.admin_token())
        .form(&[("delete_condition", "org_id = 'other'")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "done");
    let (status, job) =
        get_json(&format!("{}/v0/jobs/{}", s.url(), r["job_id"].as_str().unwrap()), s.admin_token()).await;
    assert_eq!((status, job["status"].as_str()), (200, Some("done")));
    let (_, detail) = get_json(&format!("{base}/events"), s.admin_token()).await;
    assert_eq!(detail["statistics"]["row_count"], 3);
    // Append an uploaded NDJSON file and a CSV file, then replace.
    let part = reqwest::multipart::Part::bytes(ROWS.as_bytes().to_vec()).file_name("rows.ndjson");
    let r: Value = client()
        .post(format!("{base}?name=events&mode=append&format=ndjson"))
        .bearer_auth(s.admin_token())
        .multipart(reqwest::multipart::Form::new().part("csv", part))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((r["successful_rows"].as_u64(), r["quarantined_rows"].as_u64()), (Some(4), Some(0)), "{r}");
    let csv = "timestamp,org_id,page,user_id,duration,big\n2024-03-01 00:00:00,csv,/csv,\\N,1.5,7\n2024-03-01 00:00:00,csv,/csv,5,oops,7\n";
    let part = reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("rows.csv");
    let r: Value = client()
        .post(format!("{base}?name=events&mode=append"))
        .bearer_auth(s.admin_token())
        .multipart(reqwest::multipart::Form::new().part("csv", part))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((r["successful_rows"].as_u64(), r["quarantined_rows"].as_u64()), (Some(1), Some(1)), "{r}");
    let (_, detail) = get_json(&format!("{base}/events"), s.admin_token()).await;
    assert_eq!(detail["statistics"]["row_count"], 8);
    let part = reqwest::multipart::Part::bytes(ROWS.as_bytes().to_vec()).file_name("rows.ndjson");
    client()
        .post(format!("{base}?name=events&mode=replace"))
        .bearer_auth(s.admin_token())
        .multipart(reqwest::multipart::Form::new().part("csv", part))
        .send()
        .await
        .unwrap();
    let (_, detail) = get_json(&format!("{base}/events"), s.admin_token()).await;
    assert_eq!(detail["statistics"]["row_count"], 4);
    // Truncate (trailing slash accepted).
    let r = client().post(format!("{base}/events/truncate/")).bearer_auth(s.admin_token()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, detail) = get_json(&format!("{base}/events"), s.admin_token()).await;
    assert_eq!(detail["statistics"]["row_count"], 0);
    // Resource tokens cannot delete.
    let append = s.token("events_append").unwrap();
    let r = client().post(format!("{base}/events/truncate")).bearer_auth(&append).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let s = server().await;
    let r = client()
        .request(reqwest::Method::OPTIONS, format!("{}/v0/pipes/top_pages.json", s.url()))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example");
    assert!(r.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    let r = client()
        .get(format!("{}/v0/pipes/top_pages.json", s.url()))
        .header("Origin", "https://app.example")
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example");
}

#[tokio::test]
async fn deploy_flow_keeps_data() {
    let s = server().await;
    seed(&s).await;
    let events = std::fs::read_to_string(project_dir().join("events.datasource")).unwrap();
    let new_pipe = "NODE n\nSQL >\n    SELECT count() AS c FROM events\n\nTYPE endpoint\n";
    let (status, list) = get_json(&format!("{}/v1/deployments", s.url()), s.admin_token()).await;
    assert_eq!((status, list["deployments"][0]["live"].as_bool()), (200, Some(true)));
    let r = client()
        .post(format!("{}/v1/deploy", s.url()))
        .bearer_auth(s.admin_token())
        .multipart(datafiles_form(&[("events.datasource", &events), ("pipes/total.pipe", new_pipe)]))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"], "success", "{body}");
    let id = body["deployment"]["id"].as_str().unwrap().to_string();
    let (_, got) = get_json(&format!("{}/v1/deployments/{id}", s.url()), s.admin_token()).await;
    assert_eq!(got["deployment"]["status"], "data_ready");
    // Not live yet.
    let (status, _) = get_json(&format!("{}/v0/pipes/total.json", s.url()), s.admin_token()).await;
    assert_eq!(status, 403);
    let r: Value = client()
        .post(format!("{}/v1/deployments/{id}/set-live", s.url()))
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], "success");
    let (status, body) = get_json(&format!("{}/v0/pipes/total.json", s.url()), s.admin_token()).await;
    assert_eq!((status, &body["data"]), (200, &json!([{"c": 4}])), "{body}");
    // The old pipe is gone, the old deployment can be deleted, the live one cannot.
    let (status, _) = get_json(&format!("{}/v0/pipes/top_pages.json", s.url()), s.admin_token()).await;
    assert_eq!(status, 403);
    let r = client().delete(format!("{}/v1/deployments/1", s.url())).bearer_auth(s.admin_token()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r =
        client().delete(format!("{}/v1/deployments/{id}", s.url())).bearer_auth(s.admin_token()).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // A broken datafile fails with per-file errors.
    let r = client()
        .post(format!("{}/v1/deploy", s.url()))
        .bearer_auth(s.admin_token())
        .multipart(datafiles_form(&[("bad.datasource", "SCHEMA >\n    `a` NotAType\n")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"], "failed");
    assert_eq!(body["errors"][0]["filename"], "bad.datasource", "{body}");
    // A pipe reading a datasource the project does not have is refused, naming the node and the table; reading
    // another node of the same pipe is fine.
    let orphan = "NODE a\nSQL >\n    SELECT * FROM events\n\nNODE b\nSQL >\n    %\n    SELECT count() AS c FROM a JOIN ghosts USING (user_id) WHERE user_id = {{UInt64(u, 1)}}\n\nTYPE endpoint\n";
    let r = client()
        .post(format!("{}/v1/deploy", s.url()))
        .bearer_auth(s.admin_token())
        .multipart(datafiles_form(&[("events.datasource", &events), ("pipes/orphan.pipe", orphan)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["errors"],
        json!([{"filename": "orphan.pipe", "error": "node 'b': Resource 'ghosts' not found"}]),
        "{body}"
    );
    // Deploys need an admin token.
    let r = client()
        .post(format!("{}/v1/deploy", s.url()))
        .bearer_auth(s.token("events_append").unwrap())
        .multipart(datafiles_form(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn build_applies_immediately() {
    let s = LocalServer::start(tinybird_local::Resources::new()).await.unwrap();
    let events = std::fs::read_to_string(project_dir().join("events.datasource")).unwrap();
    let top = std::fs::read_to_string(project_dir().join("top_pages.pipe")).unwrap();
    let r: Value = client()
        .post(format!("{}/v1/build", s.url()))
        .bearer_auth(s.admin_token())
        .multipart(datafiles_form(&[("events.datasource", &events), ("top_pages.pipe", &top)]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], "success", "{r}");
    assert_eq!(r["build"]["new_datasource_names"], json!(["events"]));
    assert_eq!(r["build"]["new_pipe_names"], json!(["top_pages"]));
    seed(&s).await;
    let (status, _) = get_json(&format!("{}/v0/pipes/top_pages.json", s.url()), s.admin_token()).await;
    assert_eq!(status, 200);
    assert!(s.token("read_top").is_some());
}

#[tokio::test]
async fn durable_with_data_dir() {
    let dir = std::env::temp_dir().join(format!("tinybird-local-test-{}", uuid_like()));
    let s = LocalServer::builder().resources(resources()).data_dir(&dir).start().await.unwrap();
    let admin = s.admin_token().to_string();
    seed(&s).await;
    client()
        .post(format!("{}/v0/datasources/events/delete", s.url()))
        .bearer_auth(&admin)
        .form(&[("delete_condition", "page = '/c'")])
        .send()
        .await
        .unwrap();
    s.shutdown().await;
    let s = LocalServer::builder().resources(resources()).data_dir(&dir).start().await.unwrap();
    assert_eq!(s.admin_token(), admin);
    let (status, body) = get_json(
        &format!("{}/v0/sql?q=SELECT%20count()%20AS%20c,%20max(big)%20AS%20b%20FROM%20events%20FORMAT%20JSON", s.url()),
        &admin,
    )
    .await;
    assert_eq!((status, &body["data"]), (200, &json!([{"c": 3, "b": 18446744073709551615u64}])), "{body}");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_clients() {
    let s = server().await;
    seed(&s).await;
    let url = s.url().to_string();
    let token = s.admin_token().to_string();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (url, token) = (url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            if i % 2 == 0 {
                let r = c
                    .post(format!("{url}/v0/events?name=events&wait=true"))
                    .bearer_auth(&token)
                    .body(ROWS)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(r.json::<Value>().await.unwrap()["successful_rows"], 4);
            } else {
                let r = c.get(format!("{url}/v0/pipes/top_pages.json")).bearer_auth(&token).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let count = client()
        .get(format!("{url}/v0/sql"))
        .query(&[("q", "SELECT count() FROM events")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, format!("{}\n", 4 + 100 * 4));
}

#[tokio::test]
async fn append_from_url_and_deployed_project_survives_restart() {
    let dir = std::env::temp_dir().join(format!("tinybird-local-deploy-{}", uuid_like()));
    // The import below reads this server's own loopback address, which URL imports refuse unless allowed.
    let s = LocalServer::builder().data_dir(&dir).allow_private_urls(true).start().await.unwrap();
    let events = std::fs::read_to_string(project_dir().join("events.datasource")).unwrap();
    let r = client()
        .post(format!("{}/v1/build", s.url()))
        .bearer_auth(s.admin_token())
        .multipart(datafiles_form(&[("events.datasource", &events)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    seed(&s).await;
    // The server's own /v0/sql output is a URL to import from.
    let source = format!(
        "{}/v0/sql?token={}&q=SELECT%20*%20FROM%20events%20WHERE%20page%20%3D%20'/a'%20FORMAT%20JSONEachRow",
        s.url(),
        s.admin_token()
    );
    let r: Value = client()
        .post(format!("{}/v0/datasources?name=events&mode=append&format=ndjson", s.url()))
        .bearer_auth(s.admin_token())
        .form(&[("url", source.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((r["successful_rows"].as_u64(), r["quarantined_rows"].as_u64()), (Some(2), Some(0)), "{r}");
    let admin = s.admin_token().to_string();
    s.shutdown().await;
    // Restarted with no project: the built datasource and its 6 rows come back from the data dir.
    let s = LocalServer::builder().data_dir(&dir).start().await.unwrap();
    let count = client()
        .get(format!("{}/v0/sql", s.url()))
        .query(&[("q", "SELECT count() FROM events")])
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, "6\n");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn check_daily(s: &LocalServer) {
    let q = "SELECT toString(date) AS d, org_id, sum(views) AS v FROM daily GROUP BY date, org_id ORDER BY date FORMAT JSON";
    let body: Value = client()
        .get(format!("{}/v0/sql", s.url()))
        .query(&[("q", q)])
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["data"],
        json!([{"d": "2024-01-01", "org_id": "acme", "v": 6}, {"d": "2024-01-02", "org_id": "other", "v": 2}]),
        "{body}"
    );
}

#[tokio::test]
async fn materialized_views_run_on_ingestion() {
    let s = LocalServer::start(tinybird_local::Resources::new()).await.unwrap();
    let events = std::fs::read_to_string(project_dir().join("events.datasource")).unwrap();
    let daily = "SCHEMA >\n    `date` Date,\n    `org_id` String,\n    `views` UInt64\n\nENGINE \"SummingMergeTree\"\nENGINE_SORTING_KEY \"date, org_id\"\n";
    let mv = "NODE agg\nSQL >\n    SELECT toDate(timestamp) AS date, org_id, count() AS views\n    FROM events\n    GROUP BY date, org_id\n\nTYPE materialized\nDATASOURCE daily\n";
    let r: Value = client()
        .post(format!("{}/v1/build", s.url()))
        .bearer_auth(s.admin_token())
        .multipart(datafiles_form(&[
            ("events.datasource", &events),
            ("daily.datasource", daily),
            ("daily_mv.pipe", mv),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], "success", "{r}");
    seed(&s).await;
    seed(&s).await;
    check_daily(&s).await;
    // Deploying the view again changes nothing; deploying it anew over existing data backfills it.
    let fresh = LocalServer::start(tinybird_local::Resources::new()).await.unwrap();
    let build = |files: Vec<(&'static str, String)>| {
        let (url, token) = (fresh.url().to_string(), fresh.admin_token().to_string());
        async move {
            let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
            client()
                .post(format!("{url}/v1/build"))
                .bearer_auth(token)
                .multipart(datafiles_form(&files))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(build(vec![("events.datasource", events.clone()), ("daily.datasource", daily.to_string())]).await, 200);
    seed(&fresh).await;
    seed(&fresh).await;
    assert_eq!(
        build(vec![
            ("events.datasource", events.clone()),
            ("daily.datasource", daily.to_string()),
            ("daily_mv.pipe", mv.to_string())
        ])
        .await,
        200
    );
    check_daily(&fresh).await;
    // A view that cannot run: the rows are ingested and the answer is 422.
    let broken = "NODE agg\nSQL >\n    SELECT toDate(timestamp) AS date, org_id, countState() AS views FROM events GROUP BY date, org_id\n\nTYPE materialized\nDATASOURCE daily\n";
    let r: Value = client()
        .post(format!("{}/v1/build", s.url()))
        .bearer_auth(s.admin_token())
        .multipart(datafiles_form(&[
            ("events.datasource", &events),
            ("daily.datasource", daily),
            ("daily_mv.pipe", broken),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], "success", "{r}");
    let r = client()
        .post(format!("{}/v0/events?name=events&wait=true", s.url()))
        .bearer_auth(s.admin_token())
        .body(ROWS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let error = r.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_string();
    // Both name the column: DataFusion refuses a -State value as a result, and ClickHouse's aggregate state does not
    // fit the UInt64 column.
    assert!(error.contains("views"), "{error}");
    let count = client()
        .get(format!("{}/v0/sql", s.url()))
        .query(&[("q", "SELECT count() FROM events")])
        .bearer_auth(s.admin_token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, "12\n");
    // A view writing to a datasource that does not exist is refused at build time.
    let r = client()
        .post(format!("{}/v1/build", s.url()))
        .bearer_auth(s.admin_token())
        .multipart(datafiles_form(&[("events.datasource", &events), ("daily_mv.pipe", mv)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// Workspaces made with the user token are isolated from each other (data, tokens, JWTs) and, with a data dir,
/// come back after a restart with their tokens and rows.
#[tokio::test]
async fn workspaces_are_isolated_and_durable() {
    let dir = std::env::temp_dir().join(format!("tinybird-local-test-{}", uuid_like()));
    let s = LocalServer::builder().resources(resources()).data_dir(&dir).start().await.unwrap();
    seed(&s).await;
    // Only the user token creates workspaces; names are checked.
    let create = |name: &str, token: &str| {
        client().post(format!("{}/v1/workspaces?name={name}", s.url())).bearer_auth(token.to_string()).send()
    };
    let r = create("Tenant_B", s.admin_token()).await.unwrap();
    assert_eq!(r.status(), 403);
    let r = create("bad-name", s.user_token()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Invalid workspace name"));
    let b: Value = create("Tenant_B", s.user_token()).await.unwrap().json().await.unwrap();
    let (b_id, b_token) = (b["id"].as_str().unwrap().to_string(), b["token"].as_str().unwrap().to_string());
    assert_ne!(b_token, s.admin_token());
    let r = create("Tenant_B", s.user_token()).await.unwrap();
    assert_eq!(r.status(), 400, "a second workspace of the same name");

    // B starts empty: the server's workspace's datasource is not there.
    let (status, body) = get_json(&format!("{}/v0/datasources", s.url()), &b_token).await;
    assert_eq!((status, body["datasources"].clone()), (200, json!([])));
    let events = std::fs::read_to_string(project_dir().join("events.datasource")).unwrap();
    let r: Value = client()
        .post(format!("{}/v1/build", s.url()))
        .bearer_auth(&b_token)
        .multipart(datafiles_form(&[("events.datasource", &events)]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], "success", "{r}");
    let row = r#"{"timestamp":"2024-03-01 00:00:00","org_id":"b","page":"/b-only","duration":1,"big":7}"#;
    let r = client()
        .post(format!("{}/v0/events?name=events&wait=true", s.url()))
        .bearer_auth(&b_token)
        .body(row)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let count = |token: String| {
        let url = format!("{}/v0/sql?q=SELECT%20count()%20AS%20c%20FROM%20events%20FORMAT%20JSON", s.url());
        async move { get_json(&url, &token).await.1["data"][0]["c"].clone() }
    };
    assert_eq!((count(b_token.clone()).await, count(s.admin_token().to_string()).await), (json!(1), json!(4)));

    // JWTs: signed with B's admin token for B, they read B; signed with the server's token but naming B, refused;
    // signed with B's token but naming the server's workspace, refused.
    let sign = |key: &str, ws: &str| {
        let payload = json!({"workspace_id": ws, "name": "t", "exp": 4_000_000_000u64,
            "scopes": [{"type": "DATASOURCES:READ", "resource": "events"}]});
        let key = jsonwebtoken::EncodingKey::from_secret(key.as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &payload, &key).unwrap()
    };
    assert_eq!(count(sign(&b_token, &b_id)).await, json!(1));
    for forged in [sign(s.admin_token(), &b_id), sign(&b_token, s.workspace_id())] {
        let url = format!("{}/v0/sql?q=SELECT%20count()%20FROM%20events", s.url());
        let (status, body) = get_json(&url, &forged).await;
        assert_eq!(status, 403, "{body}");
    }
    // The user token lists both; B's token lists B alone; /v1/workspace is the token's own.
    let (_, all) = get_json(&format!("{}/v1/user/workspaces", s.url()), s.user_token()).await;
    assert_eq!(all["workspaces"].as_array().unwrap().len(), 2, "{all}");
    let (_, only_b) = get_json(&format!("{}/v1/user/workspaces", s.url()), &b_token).await;
    assert_eq!(
        only_b["workspaces"].as_array().unwrap().iter().map(|w| w["id"].clone()).collect::<Vec<_>>(),
        [json!(b_id)]
    );
    let (_, current) = get_json(&format!("{}/v1/workspace", s.url()), &b_token).await;
    assert_eq!(current["name"], "Tenant_B");

    // A restart keeps B: its token, its datafiles, its rows.
    let own_admin = s.admin_token().to_string();
    s.shutdown().await;
    let s = LocalServer::builder().resources(resources()).data_dir(&dir).start().await.unwrap();
    assert_eq!(s.admin_token(), own_admin);
    let count = |token: String| {
        let url = format!("{}/v0/sql?q=SELECT%20count()%20AS%20c%20FROM%20events%20FORMAT%20JSON", s.url());
        async move { get_json(&url, &token).await.1["data"][0]["c"].clone() }
    };
    assert_eq!((count(b_token.clone()).await, count(own_admin.clone()).await), (json!(1), json!(4)));

    // Deleting: not with B's own token, never the server's own workspace, then B goes with its folder and token.
    let delete = |id: &str, token: &str| {
        client().delete(format!("{}/v1/workspaces/{id}", s.url())).bearer_auth(token.to_string()).send()
    };
    assert_eq!(delete(&b_id, &b_token).await.unwrap().status(), 403);
    assert_eq!(delete(s.workspace_id(), s.user_token()).await.unwrap().status(), 400);
    assert_eq!(delete(&b_id, s.user_token()).await.unwrap().status(), 200);
    assert_eq!(delete(&b_id, s.user_token()).await.unwrap().status(), 404);
    let (status, _) = get_json(&format!("{}/v0/datasources", s.url()), &b_token).await;
    assert_eq!(status, 403, "a deleted workspace's token");
    assert!(!dir.join("workspaces").join(&b_id).exists());
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `POST /v1/datasources/{ds}/append` (what `tb datasource append` and its fixtures send): the body is the data,
/// NDJSON or CSV by `format`; `mode=replace` replaces the rows; Parquet is refused by name; an append token may
/// append but not replace; each call leaves a job.
#[tokio::test]
async fn v1_append_takes_ndjson_csv_and_replace() {
    let s = server().await;
    let append = |query: &str, content_type: &'static str, body: &'static str, token: String| {
        client()
            .post(format!("{}/v1/datasources/events/append?{query}", s.url()))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let count = || async {
        let url = format!("{}/v0/sql?q=SELECT%20count()%20AS%20c%20FROM%20events%20FORMAT%20JSON", s.url());
        get_json(&url, s.admin_token()).await.1["data"][0]["c"].clone()
    };
    let admin = s.admin_token().to_string();
    let r = append("format=ndjson", "application/x-ndjson", ROWS, admin.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["successful_rows"], 4, "{job}");
    let (status, listed) = get_json(&format!("{}/v0/jobs/{}", s.url(), job["id"].as_str().unwrap()), &admin).await;
    assert_eq!((status, listed["status"].as_str(), listed["kind"].as_str()), (200, Some("done"), Some("import")));
    let csv = "timestamp,org_id,page,user_id,duration,big\n2024-02-01 00:00:00,acme,/csv,7,1.5,9\n";
    let r = append("format=csv", "text/csv", csv, admin.clone()).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(count().await, json!(5));
    // An append token appends, but may not replace.
    let append_token = s.token("events_append").unwrap();
    let r = append("format=csv", "text/csv", csv, append_token.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = append("format=csv&mode=replace", "text/csv", csv, append_token).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(count().await, json!(6));
    let r = append("format=csv&mode=replace", "text/csv", csv, admin.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(count().await, json!(1), "replaced by the one CSV row");
    let r = append("format=parquet", "application/vnd.apache.parquet", "PAR1", admin.clone()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Unsupported format 'parquet'"));
    let r = append("format=ndjson", "application/x-ndjson", "", admin).await.unwrap();
    assert_eq!(r.status(), 400, "an empty body names what to send");
    assert_eq!(count().await, json!(1));
}

const COPY_SOURCE: &str = "SCHEMA >\n    `org` String `json:$.org`,\n    `n` UInt32 `json:$.n`\n\nENGINE \"MergeTree\"\nENGINE_SORTING_KEY \"org\"\n";
const COPY_TARGET: &str =
    "SCHEMA >\n    `org` String,\n    `total` UInt64\n\nENGINE \"MergeTree\"\nENGINE_SORTING_KEY \"org\"\n";

fn copy_pipe(mode: &str, schedule: &str) -> String {
    format!(
        "NODE totals\nSQL >\n    %\n    SELECT org, sum(n) AS total FROM source\n    {{% if defined(org) %}} WHERE org = \
         {{{{ String(org) }}}} {{% end %}}\n    GROUP BY org\n\nTYPE COPY\nTARGET_DATASOURCE daily\nCOPY_MODE {mode}\n{schedule}"
    )
}

/// Copy pipes run on demand (`POST /v0/pipes/{name}/copy`): the result, rendered with the request's params, is
/// appended to the target (or replaces it with `COPY_MODE replace`) and leaves a `copy` job. A pipe that is not a copy
/// pipe, an unknown pipe and a token that may not write the target are refused.
#[tokio::test]
async fn copy_pipes_run_on_demand() {
    let s = server().await;
    let files = [
        ("source.datasource", COPY_SOURCE.to_string()),
        ("daily.datasource", COPY_TARGET.to_string()),
        ("totals.pipe", copy_pipe("append", "")),
        ("totals_replace.pipe", copy_pipe("replace", "COPY_SCHEDULE @on-demand\n")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let (status, body) = build(&s, &files).await;
    assert_eq!(status, 200, "{body}");
    let rows = "{\"org\":\"acme\",\"n\":1}\n{\"org\":\"acme\",\"n\":2}\n{\"org\":\"beta\",\"n\":5}\n";
    let r = client()
        .post(format!("{}/v0/events?name=source&wait=true", s.url()))
        .bearer_auth(s.admin_token())
        .body(rows)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let copy = |pipe: &str, query: &str, token: String| {
        client().post(format!("{}/v0/pipes/{pipe}/copy?{query}", s.url())).bearer_auth(token).send()
    };
    let daily = || async {
        let url = format!(
            "{}/v0/sql?q=SELECT%20org%2C%20total%20FROM%20daily%20ORDER%20BY%20org%2C%20total%20FORMAT%20JSON",
            s.url()
        );
        get_json(&url, s.admin_token()).await.1["data"].clone()
    };
    let admin = s.admin_token().to_string();
    let r = copy("totals", "", admin.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let job: Value = r.json().await.unwrap();
    assert_eq!((job["kind"].as_str(), job["status"].as_str()), (Some("copy"), Some("done")), "{job}");
    assert_eq!((job["pipe_name"].as_str(), job["datasource"]["name"].as_str()), (Some("totals"), Some("daily")));
    assert_eq!(job["rows_affected"], 2);
    let (status, listed) = get_json(&format!("{}/v0/jobs/{}", s.url(), job["id"].as_str().unwrap()), &admin).await;
    assert_eq!((status, listed["kind"].as_str(), listed["pipe_name"].as_str()), (200, Some("copy"), Some("totals")));
    assert_eq!(daily().await, json!([{"org": "acme", "total": 3}, {"org": "beta", "total": 5}]));
    // The params render the template: only acme this time, appended.
    let r = copy("totals", "org=acme", admin.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        daily().await,
        json!([{"org": "acme", "total": 3}, {"org": "acme", "total": 3}, {"org": "beta", "total": 5}])
    );
    // COPY_MODE replace empties the target first.
    let r = copy("totals_replace", "org=beta", admin.clone()).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(daily().await, json!([{"org": "beta", "total": 5}]));
    // Refusals.
    let r = copy("nope", "", admin.clone()).await.unwrap();
    assert_eq!(r.status(), 403, "Tinybird answers 403 for a resource it does not have");
    assert!(r.text().await.unwrap().contains("Resource 'nope' not found"));
    let r = client().post(format!("{}/v0/pipes/totals/copy", s.url())).send().await.unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 403), "no token: {}", r.status());
    let read_only = jwt(
        &s,
        json!({"workspace_id": s.workspace_id(), "name": "r", "exp": 4102444800u64,
        "scopes": [{"type": "PIPES:READ", "resource": "totals"}]}),
    );
    let r = copy("totals", "", read_only).await.unwrap();
    assert_eq!(r.status(), 403, "a token that may read the pipe but not write the target");
    assert_eq!(daily().await, json!([{"org": "beta", "total": 5}]), "refused copies wrote nothing");
}

/// What tinybird-local does not simulate is refused at deploy, naming it, never deployed and silently ignored:
/// scheduled copies, connections, connector datasources and sinks.
#[tokio::test]
async fn unsimulated_resource_kinds_are_refused_at_deploy() {
    let s = server().await;
    let scheduled = copy_pipe("append", "COPY_SCHEDULE 0 25 * * *\n");
    let orphan = copy_pipe("append", "");
    let kafka = format!("{COPY_SOURCE}\nKAFKA_CONNECTION_NAME kafka\nKAFKA_TOPIC events\nKAFKA_GROUP_ID g\n");
    let sink = |connection: &str, keys: &str| {
        format!("NODE out\nSQL >\n    SELECT * FROM source\n\nTYPE sink\nEXPORT_CONNECTION_NAME {connection}\n{keys}")
    };
    let to_s3 = sink("s3", "EXPORT_BUCKET_URI s3://b/p\nEXPORT_FILE_TEMPLATE x\nEXPORT_SCHEDULE @on-demand\n");
    let file = |extra: &str| {
        sink(
            "s3",
            &format!("EXPORT_BUCKET_URI file:///tmp/x\nEXPORT_FILE_TEMPLATE x\nEXPORT_SCHEDULE @on-demand\n{extra}"),
        )
    };
    let (parquet, snappy) = (file("EXPORT_FORMAT parquet\n"), file("EXPORT_COMPRESSION snappy\n"));
    let placeholders =
        sink("s3", "EXPORT_BUCKET_URI file:///tmp/x\nEXPORT_FILE_TEMPLATE x_{date}\nEXPORT_SCHEDULE @on-demand\n");
    let hourly = sink("s3", "EXPORT_BUCKET_URI file:///tmp/x\nEXPORT_FILE_TEMPLATE x\nEXPORT_SCHEDULE \"0 * * * 8\"\n");
    let to_kafka = sink("kafka", "EXPORT_KAFKA_TOPIC t\nEXPORT_SCHEDULE @on-demand\n");
    let s3 = "TYPE s3\nS3_REGION us-east-1\nS3_ARN arn:aws:iam::1:role/r\n";
    let kafka_connection = "TYPE kafka\nKAFKA_BOOTSTRAP_SERVERS k:9092\n";
    let with = |pipe: &'static str| vec![("source.datasource", COPY_SOURCE), ("s3.connection", s3), ("out.pipe", pipe)];
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    for (files, expected) in [
        (
            vec![("source.datasource", COPY_SOURCE), ("daily.datasource", COPY_TARGET), ("t.pipe", scheduled.as_str())],
            "COPY_SCHEDULE: invalid cron expression",
        ),
        (vec![("source.datasource", kafka.as_str())], "KAFKA_CONNECTION_NAME ingests from a connection"),
        (
            vec![("source.datasource", COPY_SOURCE), ("out.pipe", leak(to_s3.clone()))],
            "exports through 's3', which is not a connection of the project",
        ),
        (with(leak(to_s3)), "EXPORT_BUCKET_URI s3://b/p: not a file:// folder"),
        (with(leak(parquet)), "EXPORT_FORMAT parquet is not simulated"),
        (with(leak(snappy)), "EXPORT_COMPRESSION snappy is not simulated"),
        (with(leak(placeholders)), "EXPORT_FILE_TEMPLATE x_{date}"),
        (with(leak(hourly)), "the day of week `8` is not"),
        (
            vec![
                ("source.datasource", COPY_SOURCE),
                ("kafka.connection", kafka_connection),
                ("out.pipe", leak(to_kafka)),
            ],
            "sinks to Kafka are not simulated",
        ),
        (
            vec![("source.datasource", COPY_SOURCE), ("t.pipe", orphan.as_str())],
            "writes to 'daily', which is not a datasource",
        ),
    ] {
        let (status, body) = build(&s, &files).await;
        assert_eq!(status, 400, "{files:?}: {body}");
        assert!(body.to_string().contains(expected), "{expected}: {body}");
    }
}

/// Connections deploy and are listed (by name and service, never their settings); a sink to a `file://` bucket
/// writes the pipe's result, rendered with the request's params, as csv or gzipped ndjson, keeps an existing file
/// (`create_new`) or replaces it, and leaves a `sink` job naming the file. Only an admin token runs a sink (it writes
/// on this machine); an unknown pipe is a 403, as on Tinybird. A copy pipe's schedule is paused and resumed; other
/// pipes have none.
#[tokio::test]
async fn connections_deploy_and_sinks_write_files() {
    let s = server().await;
    let dir = tempfile::Builder::new().prefix("tb-sink").tempdir().unwrap();
    let folder = dir.path().join("exports");
    let s3 = "TYPE s3\nS3_REGION us-east-1\nS3_ACCESS_KEY {{ tb_secret(\"S3_KEY\") }}\nS3_SECRET {{ tb_secret(\"S3_SECRET\") }}\n";
    let sink = |name: &str, keys: &str| {
        format!(
            "NODE out\nSQL >\n    %\n    SELECT org, n FROM source {{% if defined(org) %}} WHERE org = {{{{ String(org) }}}} {{% end %}} \
             ORDER BY org, n\n\nTYPE sink\nEXPORT_CONNECTION_NAME exports\nEXPORT_BUCKET_URI file://{}\n\
             EXPORT_FILE_TEMPLATE {name}\nEXPORT_SCHEDULE @on-demand\n{keys}",
            folder.display()
        )
    };
    let (plain, packed) =
        (sink("rows", ""), sink("packed", "EXPORT_FORMAT ndjson\nEXPORT_COMPRESSION gzip\nEXPORT_STRATEGY replace\n"));
    let files = [
        ("connections/exports.connection", s3.to_string()),
        ("source.datasource", COPY_SOURCE.to_string()),
        ("daily.datasource", COPY_TARGET.to_string()),
        ("rows_export.pipe", plain),
        ("packed_export.pipe", packed),
        ("totals.pipe", copy_pipe("append", "")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let (status, body) = build(&s, &files).await;
    assert_eq!(status, 200, "{body}");
    let admin = s.admin_token().to_string();
    let (status, listed) = get_json(&format!("{}/v0/connectors", s.url()), &admin).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["connectors"], json!([{"id": "c_exports", "name": "exports", "service": "s3"}]));
    let rows = "{\"org\":\"acme\",\"n\":1}\n{\"org\":\"acme\",\"n\":2}\n{\"org\":\"beta\",\"n\":5}\n";
    let r = client().post(format!("{}/v0/events?name=source&wait=true", s.url())).bearer_auth(&admin).body(rows).send();
    assert_eq!(r.await.unwrap().status(), 200);

    let run = |pipe: &str, query: &str, token: &str| {
        client().post(format!("{}/v0/pipes/{pipe}/sink?{query}", s.url())).bearer_auth(token.to_owned()).send()
    };
    let r = run("rows_export", "", &admin).await.unwrap();
    assert_eq!(r.status(), 200);
    let job: Value = r.json().await.unwrap();
    assert_eq!((job["kind"].as_str(), job["status"].as_str()), (Some("sink"), Some("done")), "{job}");
    assert_eq!(job["files"], json!([format!("file://{}", folder.join("rows.csv").display())]));
    assert_eq!(std::fs::read_to_string(folder.join("rows.csv")).unwrap(), "\"acme\",1\n\"acme\",2\n\"beta\",5\n");
    // `create_new` (the default) keeps the first file; params reach the template.
    let r = run("rows_export", "org=beta", &admin).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(std::fs::read_to_string(folder.join("rows_1.csv")).unwrap(), "\"beta\",5\n");
    assert!(folder.join("rows.csv").exists());
    // ndjson, gzipped, replaced in place.
    for _ in 0..2 {
        assert_eq!(run("packed_export", "org=acme", &admin).await.unwrap().status(), 200);
    }
    let packed = std::fs::read(folder.join("packed.ndjson.gz")).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&packed[..]), &mut text).unwrap();
    assert_eq!(text, "{\"org\":\"acme\",\"n\":1}\n{\"org\":\"acme\",\"n\":2}\n");
    assert!(!folder.join("packed_1.ndjson.gz").exists(), "replace overwrites");
    let (_, jobs) = get_json(&format!("{}/v0/jobs?kind=sink", s.url()), &admin).await;
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(4), "{jobs}");

    // Refusals: a token that is not admin, an unknown pipe, a pipe that is not a sink.
    let created: Value = client()
        .post(format!("{}/v0/tokens?name=reader&scope=PIPES:READ:rows_export", s.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reader = created["token"].as_str().expect("a token").to_owned();
    assert_eq!(run("rows_export", "", &reader).await.unwrap().status(), 403);
    // An unknown pipe is Tinybird's 403 "Resource 'nope' not found".
    assert_eq!(run("nope", "", &admin).await.unwrap().status(), 403);
    assert_eq!(run("totals", "", &admin).await.unwrap().status(), 400);
    let (status, _) = get_json(&format!("{}/v0/connectors", s.url()), &reader).await;
    assert_eq!(status, 403);

    // A copy pipe's schedule: paused, resumed; a sink has none.
    let control = |pipe: &str, action: &str| {
        client().post(format!("{}/v0/pipes/{pipe}/copy/{action}", s.url())).bearer_auth(admin.clone()).send()
    };
    let r = control("totals", "pause").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["copy_status"], "paused");
    let r = control("totals", "resume").await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["copy_status"], "running");
    assert_eq!(control("rows_export", "pause").await.unwrap().status(), 400);
    assert_eq!(control("nope", "pause").await.unwrap().status(), 403);
    assert_eq!(control("totals", "explode").await.unwrap().status(), 403);
}

/// The Token API's other half: a static token refreshed (by name or id) gets a new value and keeps its id and
/// scopes, the old value stops working; a deleted token stops working and is no longer listed. Only an admin token
/// may do either, and the workspace admin token can be neither.
#[tokio::test]
async fn static_tokens_refresh_and_delete() {
    let s = server().await;
    let admin = s.admin_token().to_string();
    let create = client()
        .post(format!("{}/v0/tokens?name=reader&scope=PIPES:READ:top_pages", s.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 200);
    let created: Value = create.json().await.unwrap();
    let old = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    let url = format!("{}/v0/pipes/top_pages.json", s.url());
    let works = |token: String| {
        let url = url.clone();
        async move { client().get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(works(old.clone()).await, 200);
    // Only an admin token refreshes.
    let r = client().post(format!("{}/v0/tokens/reader/refresh", s.url())).bearer_auth(&old).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = client().post(format!("{}/v0/tokens/{id}/refresh", s.url())).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let refreshed: Value = r.json().await.unwrap();
    let new = refreshed["token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!((refreshed["id"].as_str(), refreshed["name"].as_str()), (Some(id.as_str()), Some("reader")));
    assert_eq!(refreshed["scopes"], created["scopes"]);
    assert_eq!(works(old).await, 403, "the old value no longer works");
    assert_eq!(works(new.clone()).await, 200);
    // Deleting.
    let r = client().delete(format!("{}/v0/tokens/reader", s.url())).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(works(new).await, 403, "a deleted token no longer works");
    let (_, listed) = get_json(&format!("{}/v0/tokens", s.url()), &admin).await;
    assert!(!listed.to_string().contains("\"reader\""), "{listed}");
    let r = client().delete(format!("{}/v0/tokens/reader", s.url())).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // The workspace admin token is the workspace's identity.
    let r = client()
        .post(format!("{}/v0/tokens/workspace%20admin%20token/refresh", s.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(works(admin).await, 200);
}

/// Static tokens' scopes are checked when the token is created, and nothing is created for a refused one: Tinybird
/// Forward refuses the classic `:sql_filter` suffix (a token that ignored its filter would read every row), a scope
/// must name an existing resource, and workspace-wide scopes, which this server does not simulate, are refused by name.
#[tokio::test]
async fn static_token_scopes_are_checked() {
    let s = server().await;
    let admin = s.admin_token().to_string();
    let create = |scope: &str| {
        let url = format!("{}/v0/tokens", s.url());
        let query = vec![("name".to_string(), "checked".to_string()), ("scope".to_string(), scope.to_string())];
        let admin = admin.clone();
        async move {
            let r = client().post(url).query(&query).bearer_auth(admin).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let refused = [
        (
            "DATASOURCES:READ:events:org_id = 'acme'",
            "the :sql_filter suffix on resource-scoped tokens is not supported",
        ),
        ("PIPES:READ:top_pages:1 = 1", "the :sql_filter suffix on resource-scoped tokens is not supported"),
        ("DATASOURCES:READ:no_such_datasource", "Resource 'no_such_datasource' not found"),
        ("PIPES:READ:", "a resource name is required"),
        ("ADMIN", "tinybird-local creates static tokens with PIPES:READ:<pipe>"),
        ("WORKSPACE:READ_ALL", "tinybird-local creates static tokens with PIPES:READ:<pipe>"),
    ];
    for (scope, expected) in refused {
        let (status, body) = create(scope).await;
        assert_eq!(status, 400, "{scope}: {body}");
        assert!(body.contains(expected), "{scope}: {body}");
    }
    let (_, listed) = get_json(&format!("{}/v0/tokens", s.url()), &admin).await;
    assert!(!listed.to_string().contains("\"checked\""), "nothing was created: {listed}");
    let (status, body) = create("DATASOURCES:READ:events").await;
    assert_eq!(status, 200, "{body}");
}
