//! Tinybird's own CLI (`tb`, PyPI `tinybird==5.0.3`) against this server, as a new user runs it: `tb init`, then the
//! everyday commands, each checked by its outcome (rows present, endpoints answering), not only its exit code.
//!
//! `scripts/test.sh` installs `tb` into a cache folder and sets `TINYBIRD_TB` to it. Without it the test says so and
//! passes, unless `TINYBIRD_LOCAL_REQUIRE_TB=1` (CI) makes a missing `tb` a failure.

use crate::common::{client, get_json};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use tinybird_local::LocalServer;

fn tb_binary() -> Option<PathBuf> {
    match std::env::var_os("TINYBIRD_TB").map(PathBuf::from).filter(|p| p.exists()) {
        Some(p) => Some(p),
        None => {
            assert!(
                std::env::var("TINYBIRD_LOCAL_REQUIRE_TB").as_deref() != Ok("1"),
                "TINYBIRD_LOCAL_REQUIRE_TB=1 but TINYBIRD_TB does not name a `tb` executable"
            );
            eprintln!("skipped: set TINYBIRD_TB to a `tb` executable (pip install tinybird==5.0.3)");
            None
        }
    }
}

struct Tb {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Tb {
    /// Runs `tb <args>` in the project folder and returns its output (stdout and stderr together).
    async fn run(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .current_dir(&self.dir)
            .env("TB_LOCAL_HOST", "127.0.0.1")
            .env("TB_LOCAL_PORT", self.port.to_string())
            .env("TB_VERSION_WARNING", "0")
            .env("TB_CLI_TELEMETRY_OPTOUT", "1")
            .env("HOME", &self.dir)
            .env_remove("TB_TOKEN")
            .env_remove("TB_HOST")
            .stdin(std::process::Stdio::null());
        let Output { status, stdout, stderr } = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("tb {args:?} did not finish in 120 s"))
            .unwrap_or_else(|e| panic!("tb {args:?} could not start: {e}"));
        let text = format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
        (status.success(), text)
    }

    /// Runs `tb <args>`, which must succeed and print `expected`.
    async fn ok(&self, args: &[&str], expected: &str) -> String {
        let (ok, out) = self.run(args).await;
        assert!(ok, "tb {args:?} failed:\n{out}");
        assert!(out.contains(expected), "tb {args:?} did not print {expected:?}:\n{out}");
        out
    }
}

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const EVENTS: &str = "SCHEMA >
    `ts` DateTime `json:$.ts`,
    `user_id` UInt64 `json:$.user_id`,
    `page` String `json:$.page`

ENGINE \"MergeTree\"
ENGINE_SORTING_KEY \"ts\"
";

const TOP_PAGES: &str = "TOKEN top_pages_reader READ

NODE top
SQL >
    %
    SELECT page, count() AS hits
    FROM events
    WHERE user_id >= {{UInt64(min_user, 0)}}
    GROUP BY page
    ORDER BY hits DESC, page

TYPE endpoint
";

const FIXTURE: &str = "{\"ts\":\"2024-01-01 00:00:00\",\"user_id\":1,\"page\":\"/home\"}
{\"ts\":\"2024-01-01 00:00:01\",\"user_id\":2,\"page\":\"/home\"}
{\"ts\":\"2024-01-01 00:00:02\",\"user_id\":3,\"page\":\"/pricing\"}
";

/// The workspace `tb` made for the project, from the user token's listing.
async fn tb_workspace(server: &LocalServer) -> Value {
    let (status, body) = get_json(&format!("{}/v1/user/workspaces", server.url()), server.user_token()).await;
    assert_eq!(status, 200, "{body}");
    let list = body["workspaces"].as_array().unwrap().clone();
    list.into_iter()
        .find(|w| w["name"].as_str().is_some_and(|n| n.starts_with("Tinybird_Local_Build_")))
        .unwrap_or_else(|| panic!("no Tinybird_Local_Build_ workspace in {body}"))
}

async fn count(server: &LocalServer, token: &str) -> u64 {
    let (status, body) = get_json(
        &format!("{}/v0/sql?q={}", server.url(), "SELECT%20count()%20AS%20c%20FROM%20events%20FORMAT%20JSON"),
        token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"][0]["c"].as_u64().unwrap_or_else(|| panic!("{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tb_cli_runs_the_everyday_commands_against_tinybird_local() {
    let Some(bin) = tb_binary() else { return };
    let server = LocalServer::builder().start().await.unwrap();
    let port: u16 = server.url().rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tb = Tb { bin, dir: dir.path().to_path_buf(), port };

    let (ok, out) = tb
        .run(&["init", "--type", "cli", "--dev-mode", "manual", "--folder", ".", "--cicd", "skip", "--skip-login"])
        .await;
    assert!(ok, "tb init failed:\n{out}");
    write(tb.dir.as_path(), "datasources/events.datasource", EVENTS);
    write(tb.dir.as_path(), "endpoints/top_pages.pipe", TOP_PAGES);
    write(tb.dir.as_path(), "fixtures/events.ndjson", FIXTURE);

    // Build: a workspace of its own, the resources, and the fixture's three rows.
    tb.ok(&["build"], "Build completed").await;
    let ws = tb_workspace(&server).await;
    let ws_token = ws["token"].as_str().unwrap().to_string();
    assert_eq!(count(&server, &ws_token).await, 3);
    // Isolated: the server's own workspace has no such datasource.
    let (status, body) = get_json(&format!("{}/v0/datasources/events", server.url()), server.admin_token()).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("Resource 'events' not found")));
    tb.ok(&["build"], "No changes. Build skipped.").await;
    assert_eq!(count(&server, &ws_token).await, 3, "an unchanged build loads no fixture twice");

    // Deploy: live at once, then an unchanged deploy.
    tb.ok(&["--local", "deploy"], "is live").await;
    tb.ok(&["--local", "deploy"], "No changes").await;
    let out = tb.ok(&["deployment", "ls"], "Live").await;
    assert!(!out.contains("In progress"), "{out}");

    tb.ok(&["datasource", "ls"], "events").await;
    write(tb.dir.as_path(), "more.ndjson", "{\"ts\":\"2024-01-02 00:00:00\",\"user_id\":4,\"page\":\"/docs\"}\n");
    tb.ok(&["datasource", "append", "events", "more.ndjson"], "appended").await;
    assert_eq!(count(&server, &ws_token).await, 4);
    tb.ok(
        &["datasource", "append", "events", "--events", r#"{"ts":"2024-01-03 00:00:00","user_id":5,"page":"/docs"}"#],
        "1 row appended",
    )
    .await;
    assert_eq!(count(&server, &ws_token).await, 5);

    let out = tb.ok(&["sql", "SELECT count() AS c, uniqExact(page) AS pages FROM events"], "5").await;
    assert!(out.contains('3'), "{out}");

    tb.ok(&["endpoint", "ls"], "top_pages").await;
    let out = tb.ok(&["endpoint", "data", "top_pages"], "/home").await;
    assert!(out.contains("/docs") && out.contains("/pricing"), "{out}");
    let out = tb.ok(&["endpoint", "url", "top_pages"], "/v0/pipes/top_pages.json").await;
    let url = out.split_whitespace().find(|w| w.starts_with("http")).unwrap_or_else(|| panic!("no URL in {out}"));
    let r = client().get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "the printed URL answers");
    let out = tb.ok(&["endpoint", "token", "top_pages"], "p.").await;
    let reader = out.split_whitespace().find(|w| w.starts_with("p.")).unwrap().to_string();
    let (status, body) = get_json(&format!("{}/v0/pipes/top_pages.json?min_user=3", server.url()), &reader).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!([{"page": "/docs", "hits": 2}, {"page": "/pricing", "hits": 1}]));

    tb.ok(&["pipe", "ls"], "top_pages").await;
    tb.ok(&["token", "ls"], "top_pages_reader").await;
    tb.ok(&["token", "create", "static", "dashboard", "--scope", "PIPES:READ", "--resource", "top_pages"], "dashboard")
        .await;
    let (_, tokens) = get_json(&format!("{}/v0/tokens", server.url()), &ws_token).await;
    let dashboard = tokens["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "dashboard").cloned();
    let dashboard = dashboard.unwrap_or_else(|| panic!("no dashboard token in {tokens}"));
    assert_eq!(dashboard["scopes"], json!([{"type": "PIPES:READ", "resource": "top_pages"}]));
    let (status, _) =
        get_json(&format!("{}/v0/pipes/top_pages.json", server.url()), dashboard["token"].as_str().unwrap()).await;
    assert_eq!(status, 200);

    let out = tb.ok(&["datasource", "export", "events", "--format", "ndjson", "--rows", "10"], "").await;
    let exported =
        std::fs::read_to_string(tb.dir.join("fixtures/events.ndjson")).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(exported.lines().count(), 5, "{exported}");

    tb.ok(&["job", "ls"], "import").await;

    tb.ok(&["datasource", "truncate", "events", "--yes"], "truncated").await;
    assert_eq!(count(&server, &ws_token).await, 0);

    // `tb test run`: a fresh workspace, the project built into it with its fixture, the test's expected rows (text
    // compared exactly: ClickHouse's JSON escapes `/`).
    write(tb.dir.as_path(), "fixtures/events.ndjson", FIXTURE);
    write(
        tb.dir.as_path(),
        "tests/top_pages.yaml",
        "- name: top_pages_default\n  description: all users\n  parameters: ''\n  expected_result: |\n    {\"page\":\"\\/home\",\"hits\":2}\n    {\"page\":\"\\/pricing\",\"hits\":1}\n",
    );
    tb.ok(&["test", "run"], "passed").await;
    let (_, listing) = get_json(&format!("{}/v1/user/workspaces", server.url()), server.user_token()).await;
    assert!(
        listing["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"].as_str().unwrap().starts_with("Tinybird_Local_Test_")),
        "{listing}"
    );

    // Bad input: a workspace's token cannot create or delete workspaces, the server's own workspace cannot be deleted,
    // and a deleted workspace's token is refused.
    let r = client()
        .post(format!("{}/v1/workspaces?name=Other", server.url()))
        .bearer_auth(&ws_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .delete(format!("{}/v1/workspaces/{}", server.url(), server.workspace_id()))
        .bearer_auth(server.user_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("cannot be deleted"));
    let r = client()
        .delete(format!("{}/v1/workspaces/{}", server.url(), ws["id"].as_str().unwrap()))
        .bearer_auth(server.user_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = get_json(&format!("{}/v0/datasources", server.url()), &ws_token).await;
    assert_eq!(status, 403, "a deleted workspace's token: {body}");
    let r = client()
        .delete(format!("{}/v1/workspaces/NoSuchWorkspace", server.url()))
        .bearer_auth(server.user_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// The official TypeScript SDK's command (`@tinybirdco/sdk@0.0.84`, `tinybird build` and `tinybird deploy`) on a
/// small TypeScript project. Its Tinybird Local address is fixed (`http://localhost:7181`), so this test serves
/// there; `scripts/test.sh` installs the package and sets `TINYBIRD_TS_SDK` to the folder holding its
/// `node_modules`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_cli_builds_and_deploys_against_tinybird_local() {
    let required = std::env::var("TINYBIRD_LOCAL_REQUIRE_TS_SDK").as_deref() == Ok("1");
    let Some(sdk) = std::env::var_os("TINYBIRD_TS_SDK").map(PathBuf::from).filter(|p| p.join("node_modules").exists())
    else {
        assert!(!required, "TINYBIRD_LOCAL_REQUIRE_TS_SDK=1 but TINYBIRD_TS_SDK has no node_modules");
        eprintln!("skipped: set TINYBIRD_TS_SDK to a folder with @tinybirdco/sdk@0.0.84 in its node_modules");
        return;
    };
    let server = match LocalServer::builder().port(7181).start().await {
        Ok(s) => s,
        Err(e) => {
            assert!(!required, "port 7181 (the SDK's fixed Tinybird Local address) is not free: {e}");
            eprintln!("skipped: port 7181 is taken ({e})");
            return;
        }
    };
    // Not `tempdir()`'s `.tmpXXXX`: `tinybird dev` ignores every path with a component starting with a dot, so it
    // would watch nothing there (and exit).
    let dir = tempfile::Builder::new().prefix("tinybird-ts-sdk-").tempdir().unwrap();
    let root = dir.path();
    std::os::unix::fs::symlink(sdk.join("node_modules"), root.join("node_modules")).unwrap();
    write(
        root,
        "tinybird.config.json",
        r#"{"include": ["src/datasources.ts", "src/pipes.ts"], "token": "${TINYBIRD_TOKEN}",
            "baseUrl": "http://localhost:7181", "devMode": "local"}"#,
    );
    write(
        root,
        "src/datasources.ts",
        r#"import { defineDatasource, t, engine } from "@tinybirdco/sdk";
export const events = defineDatasource("events", {
  schema: { ts: t.dateTime(), user_id: t.uint64(), page: t.string() },
  engine: engine.mergeTree({ sortingKey: ["ts"] }),
});
"#,
    );
    write(
        root,
        "src/pipes.ts",
        r#"import { defineEndpoint, node, t } from "@tinybirdco/sdk";
export const topPages = defineEndpoint("top_pages", {
  nodes: [node({ name: "top", sql: `SELECT page, count() AS hits FROM events GROUP BY page ORDER BY hits DESC, page` })],
  output: { page: t.string(), hits: t.uint64() },
});
"#,
    );
    let run = |args: &'static [&'static str]| {
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(sdk.join("node_modules/@tinybirdco/sdk/dist/cli/index.js"))
            .args(args)
            .current_dir(root)
            .env("TINYBIRD_TOKEN", server.admin_token())
            // `localhost` as IPv4 first, where the server listens, whatever /etc/hosts says of ::1.
            .env("NODE_OPTIONS", "--dns-result-order=ipv4first")
            .stdin(std::process::Stdio::null());
        async move {
            let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
                .await
                .unwrap_or_else(|_| panic!("tinybird {args:?} did not finish in 120 s"))
                .unwrap_or_else(|e| panic!("tinybird {args:?} could not start: {e}"));
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "tinybird {args:?} failed:\n{text}");
            text
        }
    };
    let out = run(&["build"]).await;
    assert!(out.contains("Build completed") && out.contains("events.datasource created"), "{out}");
    let out = run(&["build"]).await;
    assert!(!out.contains("created"), "an unchanged build creates nothing:\n{out}");
    let out = run(&["deploy"]).await;
    assert!(out.contains("is live") || out.contains("No changes"), "{out}");

    // What it built answers.
    let rows = "{\"ts\":\"2024-01-01 00:00:00\",\"user_id\":1,\"page\":\"/a\"}\n{\"ts\":\"2024-01-01 00:00:01\",\"user_id\":2,\"page\":\"/a\"}";
    let r = client()
        .post(format!("{}/v0/events?name=events&wait=true", server.url()))
        .bearer_auth(server.admin_token())
        .body(rows)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = get_json(&format!("{}/v0/pipes/top_pages.json", server.url()), server.admin_token()).await;
    assert_eq!((status, &body["data"]), (200, &json!([{"page": "/a", "hits": 2}])), "{body}");

    // A changed project deploys, and the deployment it replaces is gone.
    write(
        root,
        "src/pipes.ts",
        r#"import { defineEndpoint, node, t } from "@tinybirdco/sdk";
export const topPages = defineEndpoint("top_pages", {
  nodes: [node({ name: "top", sql: `SELECT page, count() AS hits, uniq(user_id) AS users FROM events GROUP BY page` })],
  output: { page: t.string(), hits: t.uint64(), users: t.uint64() },
});
"#,
    );
    let out = run(&["deploy"]).await;
    assert!(out.contains("is live"), "{out}");
    let (_, body) = get_json(&format!("{}/v0/pipes/top_pages.json", server.url()), server.admin_token()).await;
    assert_eq!(body["data"], json!([{"page": "/a", "hits": 2, "users": 2}]), "{body}");
    let (_, list) = get_json(&format!("{}/v1/deployments", server.url()), server.admin_token()).await;
    let live: Vec<_> = list["deployments"].as_array().unwrap().iter().filter(|d| d["live"] == true).collect();
    assert_eq!(live.len(), 1, "{list}");
    assert_eq!(list["deployments"].as_array().unwrap().len(), 1, "old deployments are deleted: {list}");
    let out = run(&["deploy"]).await;
    assert!(out.contains("No changes"), "{out}");

    // `tinybird dev`: builds, checks the endpoint's output against the server's `meta`, and rebuilds on a change.
    use tokio::io::AsyncBufReadExt;
    let mut dev = tokio::process::Command::new("node")
        .arg(sdk.join("node_modules/@tinybirdco/sdk/dist/cli/index.js"))
        .arg("dev")
        .current_dir(root)
        .env("TINYBIRD_TOKEN", server.admin_token())
        .env("NODE_OPTIONS", "--dns-result-order=ipv4first")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("tinybird dev starts");
    let mut lines = tokio::io::BufReader::new(dev.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let mut wait_for = async |what: &str| {
        let found = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(what) {
                    return true;
                }
            }
            false
        })
        .await;
        (matches!(found, Ok(true)), seen.clone())
    };
    let (ok, seen) = wait_for("Watching for changes").await;
    assert!(ok, "tinybird dev never said it was watching:\n{seen}");
    assert!(dev.try_wait().unwrap().is_none(), "tinybird dev stopped after its first build:\n{seen}");
    // The watcher scans the folder after saying it watches: a change made at once could go unseen.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    // Written aside and renamed into place, as editors save: the watcher never sees a half-written file.
    write(
        root,
        "src/pipes.ts.new",
        r#"import { defineEndpoint, node, t } from "@tinybirdco/sdk";
export const topPages = defineEndpoint("top_pages", {
  nodes: [node({ name: "top", sql: `SELECT page, count() AS views FROM events GROUP BY page` })],
  output: { page: t.string(), views: t.uint64() },
});
"#,
    );
    std::fs::rename(root.join("src/pipes.ts.new"), root.join("src/pipes.ts")).unwrap();
    let (ok, seen) = wait_for("Rebuild completed").await;
    assert!(ok, "tinybird dev did not rebuild after a change ({:?}):\n{seen}", dev.try_wait());
    let (_, body) = get_json(&format!("{}/v0/pipes/top_pages.json", server.url()), server.admin_token()).await;
    assert_eq!(body["data"], json!([{"page": "/a", "views": 2}]), "{body}");
    let _ = dev.kill().await;
}
