//! End to end in a real browser: `tinybird-local` and the `token_server` example, driven by headless Chromium over
//! WebDriver. Signed out, the page shows the token route's 401; signed in as user 1, it shows user 1's rows only,
//! fetched by the browser straight from Tinybird with the JWT the token server minted.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test.sh` installs them when run as root). Without them
//! the test fails and says so. Screenshots go to `target/browser-test/` (under `CARGO_TARGET_DIR` when set).

use crate::token_server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL_HINT: &str = "install Debian's `chromium` and `chromium-driver` \
    (`apt-get install -y chromium chromium-driver`; scripts/test.sh does it when run as root)";

/// How long any one thing may take to appear on the page.
const STEP: Duration = Duration::from_secs(20);

/// A `chromedriver` process on a free port, killed when dropped (also when the test panics).
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(Path::new(path).exists(), "{path} not found: {INSTALL_HINT}");
        }
        // A free port, released just before chromedriver binds it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {CHROMEDRIVER}: {e}; {INSTALL_HINT}"));
        let driver = ChromeDriver { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + STEP;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port} within {STEP:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session with a fresh profile (deleted with the returned directory).
async fn browser(driver: &ChromeDriver) -> (Client, tempfile::TempDir) {
    let profile = tempfile::tempdir().expect("a temporary profile directory");
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--window-size=900,700",
        &format!("--user-data-dir={}", profile.path().display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), "chrome".into());
    caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": CHROMIUM, "args": args }));
    // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
    let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    builder.capabilities(caps);
    let client = tokio::time::timeout(Duration::from_secs(60), builder.connect(&driver.url))
        .await
        .expect("Chromium started within 60 s")
        .unwrap_or_else(|e| panic!("could not start a Chromium session: {e}; {INSTALL_HINT}"));
    let timeouts = TimeoutConfiguration::new(Some(STEP), Some(STEP), Some(Duration::ZERO));
    client.update_timeouts(timeouts).await.expect("set WebDriver timeouts");
    (client, profile)
}

/// Waits until the text of `css` satisfies `ok`, and returns it; fails with what the page showed instead.
async fn wait_for_text(client: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + STEP;
    let mut last = None;
    loop {
        if let Ok(el) = client.find(Locator::Css(css)).await
            && let Ok(text) = el.text().await
        {
            if ok(&text) {
                return text;
            }
            last = Some(text);
        }
        assert!(Instant::now() < deadline, "`{css}` did not show the expected text within {STEP:?}; it shows {last:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The analytics table as `(day, events)` text pairs, row by row.
async fn table_rows(client: &Client) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for row in client.find_all(Locator::Css("#rows tr.row")).await.expect("rows") {
        let cell = |column: &'static str| {
            let row = row.clone();
            async move { row.find(Locator::Css(&format!("td[data-column={column}]"))).await?.text().await }
        };
        out.push((cell("day").await.expect("a day cell"), cell("events").await.expect("an events cell")));
    }
    out
}

/// `user_analytics` for `user` from the token server's sample data, as the page prints it.
fn expected_rows(user: u64) -> Vec<(String, String)> {
    let mut days: BTreeMap<chrono::NaiveDate, u64> = BTreeMap::new();
    for e in token_server::sample_events().into_iter().filter(|e| e.user_id == user) {
        *days.entry(e.timestamp.date()).or_default() += 1;
    }
    days.into_iter().map(|(day, n)| (day.to_string(), n.to_string())).collect()
}

/// `target/browser-test/<name>.png` under `CARGO_TARGET_DIR` when set, else under this package.
async fn save_screenshot(client: &Client, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("browser-test");
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    let path = dir.join(format!("{name}.png"));
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(&path, png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
    path
}

#[tokio::test]
async fn browser_signs_in_and_sees_only_its_rows() {
    let driver = ChromeDriver::start().await;
    let server = token_server::start(token_server::Backend::Local, 0).await.expect("the token server starts");
    let (client, _profile) = browser(&driver).await;

    // The flow runs in its own task so that, whatever fails in it, the session is closed (and Chromium with it)
    // before chromedriver is killed; then its panic is re-raised here.
    let flow = tokio::spawn({
        let (client, url) = (client.clone(), server.url().to_owned());
        async move { drive(&client, &url).await }
    });
    let result = tokio::time::timeout(Duration::from_secs(180), flow).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the browser flow did not finish: {e}"),
        Err(_) => panic!("the browser flow did not finish within 180 s"),
    }
    server.shutdown().await;
}

async fn drive(client: &Client, url: &str) {
    let own = expected_rows(1);
    assert!(!own.is_empty());
    assert_ne!(own, expected_rows(2), "the sample data tells users 1 and 2 apart");

    // Signed out: the token route answers 401 and the page says so, with no table.
    client.goto(url).await.expect("open the page");
    let status = wait_for_text(client, "#status", |t| t.starts_with("401")).await;
    assert_eq!(status, "401: sign in to see your analytics");
    assert_eq!(wait_for_text(client, "#session", |t| t != "Checking session…").await, "Signed out");
    let table = client.find(Locator::Css("#analytics")).await.expect("the table element");
    assert!(!table.is_displayed().await.expect("visibility"), "no table while signed out");
    save_screenshot(client, "signed_out").await;

    // Sign in as user 1 with the form.
    let field = client.find(Locator::Css("#user_id")).await.expect("the user id field");
    field.clear().await.expect("clear the field");
    field.send_keys("1").await.expect("type the user id");
    client.find(Locator::Css("#signin-button")).await.expect("the sign-in button").click().await.expect("click");

    wait_for_text(client, "#session", |t| t == "Signed in as user 1").await;
    let status =
        wait_for_text(client, "#status", |t| t.ends_with("rows") || t.contains("error") || t.contains("answered"))
            .await;
    assert_eq!(status, format!("{} rows", own.len()), "the endpoint answered the browser");
    let headers: Vec<String> = {
        let mut out = Vec::new();
        for th in client.find_all(Locator::Css("#head th")).await.expect("headers") {
            out.push(th.text().await.expect("header text"));
        }
        out
    };
    assert_eq!(headers, ["day", "events"]);
    // The page asked for user_id=999; the JWT pins user 1, so these are exactly user 1's days and counts.
    assert_eq!(table_rows(client).await, own, "the browser shows user 1's rows only");
    let info = client.find(Locator::Css("#token-info")).await.expect("token info").text().await.expect("text");
    assert!(info.starts_with("Your Tinybird token expires at "), "{info}");
    save_screenshot(client, "signed_in_user_1").await;

    // The same JWT appends an event from the browser (DATASOURCES:APPEND); it shows up as today's row.
    let before = chrono::Utc::now().date_naive();
    client.find(Locator::Css("#record")).await.expect("the record button").click().await.expect("click");
    let status = wait_for_text(client, "#status", |t| t.contains("page view recorded") || t.contains("answered")).await;
    assert_eq!(status, format!("{} rows (page view recorded)", own.len() + 1));
    let after = chrono::Utc::now().date_naive();
    let rows = table_rows(client).await;
    // The browser stamps the event with its UTC clock; accept either side of a midnight during the click.
    let recorded_today = [before, after].iter().any(|day| {
        let mut expected = own.clone();
        expected.push((day.to_string(), "1".to_owned()));
        rows == expected
    });
    assert!(recorded_today, "the recorded page view is counted for user 1 today: {rows:?}");

    // Signed out again: back to the 401 path.
    client.find(Locator::Css("#signout-button")).await.expect("the sign-out button").click().await.expect("click");
    wait_for_text(client, "#session", |t| t == "Signed out").await;
    assert_eq!(wait_for_text(client, "#status", |t| t.starts_with("401")).await, "401: sign in to see your analytics");
}
