//! The console in a real browser: headless Chromium driven through chromedriver (the W3C
//! WebDriver protocol, spoken here over plain HTTP) against `siyu serve` on a demo shop.
//! It signs in, visits every page, checks the GMV chart was drawn on its canvas, switches
//! to English, and writes a screenshot of each page, at a laptop's width and a phone's, to
//! `target/console-screenshots/` for a person to look at.
//!
//! `SIYU_TEST_CHROMEDRIVER` names chromedriver (`.ci/run` installs Debian's `chromium` and
//! `chromium-driver` and sets it); without it the test says so and passes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// A WebDriver session on chromedriver at `port`.
struct Driver {
    port: u16,
    session: String,
}

/// One WebDriver call: the answer's `value`, or the error WebDriver gave.
fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    // chromedriver keeps the connection open after its answer: read its Content-Length.
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection closed before an answer".into());
        }
        answer.extend_from_slice(&chunk[..n]);
        if let Some(at) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..at]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("an answer without Content-Length")?;
            break (at + 4, length);
        }
    };
    while answer.len() < head_end + length {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection closed mid-answer".into());
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    let json = String::from_utf8_lossy(&answer[head_end..head_end + length]).into_owned();
    let value: Value = serde_json::from_str(&json).map_err(|e| format!("{e}: {json}"))?;
    let value = value.get("value").cloned().unwrap_or(Value::Null);
    if let Some(error) = value.get("error") {
        return Err(format!("{method} {path}: {error}: {}", value["message"]));
    }
    Ok(value)
}

impl Driver {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        call(self.port, method, &path, body).expect("webdriver")
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(&json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn find(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            Some(&json!({"using": "css selector", "value": css})),
        );
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("element id")
            .to_owned()
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/clear"), Some(&json!({})));
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(&json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/click"), Some(&json!({})));
    }

    fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": []})),
        )
    }

    /// Waits up to ten seconds for `script` to return true.
    fn wait_for(&self, script: &str) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.script(script) == Value::Bool(true) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn size(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(&json!({"width": width, "height": height})),
        );
    }

    fn screenshot(&self, to: &Path) {
        let png = self.call("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("png");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(to, bytes).expect("screenshot");
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/console-screenshots")
        .join("every_console_page_in_chromium");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

#[test]
fn every_console_page_in_chromium() {
    let Ok(chromedriver) = std::env::var("SIYU_TEST_CHROMEDRIVER") else {
        eprintln!("SIYU_TEST_CHROMEDRIVER is not set: skipped (.ci/run sets it)");
        return;
    };
    let chromium =
        std::env::var("SIYU_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("shop.db");
    let demo = common::siyu(&db, &["demo", "--customers", "3000"]);
    assert!(demo.status.success(), "{}", common::text(&demo.stderr));
    // The demo says how to sign in to its console.
    let said = common::text(&demo.stdout);
    let password = said
        .split("sign in as demo, password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the demo says how to sign in: {said}"))
        .to_owned();
    let (server, addr) = common::serve(&db);
    let _server = Killed(server);
    let base = format!("http://{addr}");

    let port = free_port();
    let _driver = Killed(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver"),
    );
    let until = Instant::now() + Duration::from_secs(20);
    while call(port, "GET", "/status", None).is_err() {
        assert!(Instant::now() < until, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = call(
        port,
        "POST",
        "/session",
        Some(&json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"]
            }
        }}})),
    )
    .expect("a browser session");
    let driver = Driver {
        port,
        session: started["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned(),
    };
    let shots = screenshots();

    // Signed out, the console asks to sign in.
    driver.go(&format!("{base}/"));
    assert!(
        driver.url().ends_with("/console/sign-in"),
        "{}",
        driver.url()
    );
    driver.screenshot(&shots.join("sign-in.png"));
    // A wrong password says so.
    driver.type_into("#name", "demo");
    driver.type_into("#password", "not-the-password");
    driver.click("button[type=submit]");
    assert!(driver.wait_for("return document.querySelector('[role=alert]') !== null"));
    driver.screenshot(&shots.join("sign-in-wrong.png"));
    driver.type_into("#name", "demo");
    driver.type_into("#password", &password);
    driver.click("button[type=submit]");
    assert!(driver.wait_for("return location.pathname === '/console'"));

    // The overview: its chart drawn on a canvas with something on it.
    assert!(
        driver.wait_for(
            "const c = document.querySelector('.chart[data-drawn] canvas');
             return c !== null && c.width > 0 && c.toDataURL().length > 5000;"
        ),
        "the GMV chart was drawn"
    );
    let pool = driver.script("return document.querySelector('.card .value').textContent");
    assert_eq!(pool, "3,000", "the pool on the overview");
    driver.screenshot(&shots.join("overview.png"));

    driver.click("nav.menu a[href='/console/rfm']");
    assert!(driver.wait_for("return location.pathname === '/console/rfm'"));
    assert!(driver.wait_for("return document.body.textContent.includes('重要价值')"));
    driver.screenshot(&shots.join("rfm.png"));
    driver.script("document.getElementById('quintiles').scrollIntoView(); return true;");
    driver.screenshot(&shots.join("rfm-quintiles.png"));
    // A class leads to its customers.
    driver.click(".rfm-grid a.card");
    assert!(driver.wait_for("return location.pathname.startsWith('/console/rfm/')"));
    assert!(driver.wait_for("return document.querySelectorAll('main tbody tr').length > 0"));
    driver.screenshot(&shots.join("rfm-class.png"));

    // Segments: a rule with a mistake shows it as typed, at its column; mended, the
    // count of customers it holds; created, its members.
    driver.click("nav.menu a[href='/console/segments']");
    assert!(driver.wait_for("return location.pathname === '/console/segments'"));
    driver.type_into("#segment-name", "回头客");
    driver.type_into("#segment-rule", "orders >= 2 and chanel = 'douyin'");
    assert!(
        driver.wait_for("const a = document.querySelector('#rule-check [role=alert]'); return a !== null && a.textContent.includes('chanel');"),
        "the mistake is shown as typed"
    );
    driver.screenshot(&shots.join("segment-mistake.png"));
    driver.type_into("#segment-rule", "orders >= 2");
    assert!(
        driver.wait_for("const c = document.querySelector('#rule-check [data-count]'); return c !== null && Number(c.getAttribute('data-count')) > 0;"),
        "the live count"
    );
    driver.screenshot(&shots.join("segment-count.png"));
    driver.click(".segment-form button[type=submit]");
    assert!(driver.wait_for("return location.pathname.startsWith('/console/segments/')"));
    let rows = driver.script("return document.querySelectorAll('main tbody tr').length");
    assert!(
        rows.as_u64().is_some_and(|n| n > 0),
        "members listed: {rows}"
    );
    driver.screenshot(&shots.join("segment-members.png"));
    // Its entries, each with its occasion, further down the same page.
    assert!(driver.wait_for(
        "return document.querySelectorAll('table.history tr[data-change=entered]').length > 0"
    ));
    driver.script("document.getElementById('history').scrollIntoView(); return true;");
    driver.screenshot(&shots.join("segment-history.png"));
    driver.go(&format!("{base}/console/segments"));
    assert!(driver.wait_for("return document.body.textContent.includes('回头客')"));
    driver.screenshot(&shots.join("segments.png"));

    // Tag rules, by the segments' own pages: the field list, the live count, the tag's page.
    driver.click("nav.menu a[href='/console/tags']");
    assert!(driver.wait_for("return location.pathname === '/console/tags'"));
    driver.type_into("#segment-name", "高消费");
    driver.type_into("#segment-rule", "net_spend >= 500");
    assert!(
        driver.wait_for(
            "const c = document.querySelector('#rule-check [data-count]'); return c !== null;"
        ),
        "the live count of a tag rule"
    );
    driver.script("document.querySelector('details.fields').open = true; return true;");
    driver.screenshot(&shots.join("tag-rule-form.png"));
    driver.click(".segment-form button[type=submit]");
    assert!(driver.wait_for("return location.pathname.startsWith('/console/tags/')"));
    assert!(driver.wait_for("return document.querySelector('table.history') !== null"));
    driver.screenshot(&shots.join("tag-rule.png"));

    // Customers: the list, then one customer's 360 view, phone masked.
    driver.click("nav.menu a[href='/console/customers']");
    assert!(driver.wait_for("return location.pathname === '/console/customers'"));
    driver.screenshot(&shots.join("customers.png"));
    driver.click("main tbody tr:first-child a");
    assert!(driver.wait_for("return location.pathname.startsWith('/console/customers/')"));
    assert!(driver.wait_for("return document.querySelector('table.attributes') !== null"));
    driver.screenshot(&shots.join("customer.png"));
    // The demo's user is an admin: the phone shown whole by the button (and audited).
    if driver.script("return document.querySelector('form[action$=\"/phone\"] button') !== null")
        == json!(true)
    {
        let masked = driver.script("return document.querySelector('span.phone').textContent");
        driver.click("form[action$='/phone'] button");
        assert!(driver.wait_for("const p = document.querySelector('span.phone'); return p !== null && !p.textContent.includes('*');"));
        let whole = driver.script("return document.querySelector('span.phone').textContent");
        assert_ne!(masked, whole);
        driver.screenshot(&shots.join("customer-phone.png"));
    }

    // Lifecycle (the journey funnel), its stage flows, and cohorts (the retention heatmap),
    // all drawn.
    for (page, shot) in [
        ("lifecycle", "lifecycle.png"),
        ("lifecycle/flows", "lifecycle-flows.png"),
        ("cohorts", "cohorts.png"),
        ("channels", "channels.png"),
    ] {
        driver.click(&format!("a[href='/console/{page}']"));
        assert!(driver.wait_for(&format!(
            "return location.pathname === '/console/{page}' && document.querySelector('.chart[data-drawn] canvas') !== null"
        )));
        driver.screenshot(&shots.join(shot));
    }

    // Campaigns: the demo's two finished ones listed with the offers, one's page with its
    // results per tier and its decisions, and the preview of a run now.
    driver.click("nav.menu a[href='/console/campaigns']");
    assert!(driver.wait_for(
        "return location.pathname === '/console/campaigns' && document.querySelectorAll('table.campaigns tbody tr').length === 2"
    ), "the demo's campaigns are listed");
    driver.screenshot(&shots.join("campaigns.png"));
    driver.click("table.campaigns tbody tr a");
    assert!(driver.wait_for(
        "return document.querySelectorAll('table.results tbody tr').length > 1 && document.querySelectorAll('table.decisions tbody tr').length > 0 && document.querySelector('.chart[data-drawn] canvas') !== null"
    ), "a campaign's results, its lift chart and its decisions");
    driver.script("document.querySelector('.chart[data-drawn]').scrollIntoView(); return true;");
    driver.screenshot(&shots.join("campaign-results.png"));
    driver.script("window.scrollTo(0, 0); return true;");
    driver.screenshot(&shots.join("campaign.png"));
    driver.click("a[href$='/preview']");
    assert!(driver.wait_for("return document.querySelector('table.preview') !== null"));
    driver.screenshot(&shots.join("campaign-preview.png"));

    // GMV's factors: moving a slider moves the projection at once.
    driver.click("nav.menu a[href='/console/gmv']");
    assert!(driver.wait_for("return location.pathname === '/console/gmv'"));
    let before = driver.script("return document.getElementById('projected').textContent");
    driver.script(
        "const s = document.querySelector('input[data-move=aov]'); s.value = 20; s.dispatchEvent(new Event('input')); return true;",
    );
    let after = driver.script("return document.getElementById('projected').textContent");
    assert_ne!(before, after, "the what-if moved the projection");
    driver.screenshot(&shots.join("gmv.png"));
    driver.click("nav.menu a[href='/console/referrals']");
    assert!(driver.wait_for("return location.pathname === '/console/referrals'"));
    driver.screenshot(&shots.join("referrals.png"));
    // Lifetime value: fitted from the page, then the model, the holdout chart and the
    // customers of highest predicted value.
    driver.click("nav.menu a[href='/console/clv']");
    assert!(driver.wait_for("return location.pathname === '/console/clv'"));
    driver.click("form[action='/console/clv/fit'] button");
    assert!(driver.wait_for(
        "return document.querySelector('.chart[data-drawn] canvas') !== null && document.querySelectorAll('main tbody tr').length > 5"
    ), "the fitted model's page");
    driver.screenshot(&shots.join("clv.png"));
    driver.click("nav.menu a[href='/console/settings']");
    assert!(driver.wait_for("return location.pathname === '/console/settings'"));
    driver.screenshot(&shots.join("settings.png"));

    driver.go(&format!("{base}/console/rfm"));
    assert!(driver.wait_for("return location.pathname === '/console/rfm'"));
    // English, on the same page.
    driver.click("header a[href^='/console/lang/en']");
    assert!(driver.wait_for(
        "return document.documentElement.lang === 'en' && location.pathname === '/console/rfm'"
    ));
    driver.screenshot(&shots.join("rfm-en.png"));

    // A phone's width: the menu above the page, the cards two by two.
    driver.size(390, 844);
    driver.go(&format!("{base}/console"));
    assert!(driver.wait_for("return document.querySelector('.chart[data-drawn] canvas') !== null"));
    driver.screenshot(&shots.join("overview-phone.png"));
    driver.size(1280, 900);

    // Keyboard: the first tab stop skips to the content.
    let first = driver.script("return document.querySelector('a.skip').getAttribute('href')");
    assert_eq!(first, "#main");

    // Signing out ends the session.
    driver.click("form[action='/console/sign-out'] button");
    assert!(driver.wait_for("return location.pathname === '/console/sign-in'"));
    driver.go(&format!("{base}/console/rfm"));
    assert!(driver.url().ends_with("/console/sign-in"));

    let _ = call(
        port,
        "DELETE",
        &format!("/session/{}", driver.session),
        None,
    );
    for shot in [
        "sign-in",
        "sign-in-wrong",
        "overview",
        "rfm",
        "rfm-en",
        "overview-phone",
    ] {
        let size = std::fs::metadata(shots.join(format!("{shot}.png")))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 5_000, "{shot}.png is {size} bytes");
    }
}
