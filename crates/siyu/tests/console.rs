//! The web console over HTTP, in process, on SQLite and PostgreSQL: signing in (CSRF,
//! wrong passwords, the lock after repeated failures), sessions that end, pages whose
//! figures are the API's, values shown as text, and tenants kept apart.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use common::api::{Api, runtime};
use siyu::http::router;
use siyu::service::users;
use siyu_core::access::Role;

const PASSWORD: &str = "tea-shop-secret";

/// A browser's cookies, as far as the console sets them.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn take(&mut self, headers: &HeaderMap) {
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().expect("ascii");
            let (pair, attributes) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').expect("pair");
            self.0.retain(|(name, _)| name != k);
            if !attributes.contains("Max-Age=0") {
                self.0.push((k.to_owned(), val.to_owned()));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn request(
    api: &Api,
    jar: &mut Jar,
    method: &str,
    uri: &str,
    form: &[(&str, &str)],
) -> Answer {
    request_from(api, jar, None, &[], method, uri, form).await
}

/// A request as `siyu serve` hands it on: from a connection's peer `from`, with `headers`.
async fn request_from(
    api: &Api,
    jar: &mut Jar,
    from: Option<&str>,
    headers: &[(&str, &str)],
    method: &str,
    uri: &str,
    form: &[(&str, &str)],
) -> Answer {
    let mut r = Request::builder().method(method).uri(uri);
    if let Some(peer) = from {
        let peer: std::net::SocketAddr = peer.parse().expect("a socket address");
        r = r.extension(axum::extract::ConnectInfo(peer));
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if !jar.0.is_empty() {
        r = r.header("cookie", jar.header());
    }
    let body = if method == "POST" {
        r = r.header("content-type", "application/x-www-form-urlencoded");
        let encoded: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        Body::from(encoded.join("&"))
    } else {
        Body::empty()
    };
    let response = router(Arc::clone(&api.state))
        .oneshot(r.body(body).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    jar.take(&headers);
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The CSRF token a page's form carries.
fn form_token(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + 32].to_owned()
}

fn create_user(api: &Api, tenant: &str, name: &str, role: Role) {
    let mut store = siyu_store::open(&api.db).expect("store");
    let tenant = store.tenant(tenant).expect("tenant");
    users::create_user(store.as_mut(), &tenant, name, role, PASSWORD).expect("user");
}

/// Signs in through the form; the answer to the POST.
async fn sign_in(api: &Api, jar: &mut Jar, tenant: &str, name: &str, password: &str) -> Answer {
    let form = request(api, jar, "GET", "/console/sign-in", &[]).await;
    assert_eq!(form.status, StatusCode::OK);
    let token = form_token(&form.text);
    request(
        api,
        jar,
        "POST",
        "/console/sign-in",
        &[
            ("tenant", tenant),
            ("name", name),
            ("password", password),
            ("csrf", &token),
        ],
    )
    .await
}

fn import_shop(api: &Api, tenant: &str, orders: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("orders.csv");
    std::fs::write(&path, orders).expect("write");
    api.cli(tenant, &["import", "orders", path.to_str().expect("path")]);
}

#[test]
fn an_operator_signs_in_sees_the_apis_figures_and_signs_out() {
    let rt = runtime();
    for api in Api::on_each_backend("console_pages") {
        import_shop(
            &api,
            "default",
            "order_id,customer_id,ordered_at,amount\no1,c1,2026-05-01 10:00,12800\no2,c2,2026-06-01 10:00,99\no3,c1,2026-06-03 10:00,50\n",
        );
        create_user(&api, "default", "小王", Role::Operator);
        let token = api.token("default", Role::Viewer);
        rt.block_on(async {
            let mut jar = Jar::default();
            // Signed out, every page leads to the sign-in form.
            let a = request(&api, &mut jar, "GET", "/console", &[]).await;
            assert_eq!(
                (a.status, a.location()),
                (StatusCode::SEE_OTHER, "/console/sign-in")
            );
            let a = sign_in(&api, &mut jar, "default", "小王", PASSWORD).await;
            assert_eq!(
                (a.status, a.location()),
                (StatusCode::SEE_OTHER, "/console")
            );
            let cookie = a
                .headers
                .get("set-cookie")
                .expect("cookie")
                .to_str()
                .expect("ascii");
            assert!(
                cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
                "{cookie}"
            );
            let page = request(&api, &mut jar, "GET", "/console", &[]).await;
            assert_eq!(page.status, StatusCode::OK);
            assert_eq!(
                page.headers.get("cache-control").expect("no-store"),
                "no-store"
            );
            // The API's figures, as the operator reads them.
            let (_, json) = api
                .call("GET", "/v1/reports/overview", Some(&token), None)
                .await;
            let o: Value = serde_json::from_str(&json).expect("json");
            assert_eq!(o["customers"], 2);
            assert_eq!(o["gmv"], 1_294_900, "fen");
            assert_eq!(
                (o["aov"].as_i64(), o["repurchase_rate"].as_f64()),
                (Some(431_633), Some(0.5))
            );
            for shown in [
                "<div class=\"value\">2</div>",
                "<div class=\"value\">¥1.29万</div>",
                "<div class=\"value\">50.0%</div>",
                "<div class=\"value\">¥4,316.33</div>",
            ] {
                assert!(page.text.contains(shown), "{shown} in {}", page.text);
            }
            assert!(
                page.text.contains("2026-05") && page.text.contains("2026-06"),
                "months"
            );
            assert!(page.text.contains("data-chart="), "the GMV chart");
            // By week and by day too: each period's row, summing to the same paid orders.
            for by in ["week", "day"] {
                let shown = request(&api, &mut jar, "GET", &format!("/console?by={by}"), &[]).await;
                assert_eq!(shown.status, StatusCode::OK);
                let rows = period_rows(&shown.text);
                assert!(rows.len() > 2, "{by}: {rows:?}");
                let orders: u64 = rows.iter().map(|(_, n)| n).sum();
                assert_eq!(Some(orders), o["paid_orders"].as_u64(), "{by}: {rows:?}");
            }
            let year = request(&api, &mut jar, "GET", "/console?by=year", &[]).await;
            assert_eq!(year.status, StatusCode::BAD_REQUEST);
            // The funnel and the cohorts as the API gives them.
            let (_, json) = api
                .call("GET", "/v1/reports/funnel", Some(&token), None)
                .await;
            let funnel: Value = serde_json::from_str(&json).expect("json");
            let life = request(&api, &mut jar, "GET", "/console/lifecycle", &[]).await;
            assert_eq!(life.status, StatusCode::OK);
            for step in funnel["steps"].as_array().expect("steps") {
                let shown = format!("<td>{}</td>", step["reached"]);
                assert!(life.text.contains(&shown), "{shown} in {}", life.text);
            }
            let (_, json) = api
                .call("GET", "/v1/reports/cohorts", Some(&token), None)
                .await;
            let cohorts: Value = serde_json::from_str(&json).expect("json");
            let page = request(&api, &mut jar, "GET", "/console/cohorts", &[]).await;
            assert_eq!(page.status, StatusCode::OK);
            let may = &cohorts["cohorts"][0];
            assert_eq!(may["customers"], 1);
            let share = may["shares"][0].as_f64().expect("a share");
            assert!(
                page.text
                    .contains(&format!("<td>{:.1}%</td>", share * 100.0)),
                "{}",
                page.text
            );
            let rfm = request(&api, &mut jar, "GET", "/console/rfm", &[]).await;
            assert_eq!(rfm.status, StatusCode::OK);
            assert!(rfm.text.contains("重要价值"), "{}", rfm.text);
            // English by the switch, and back to the page.
            let a = request(
                &api,
                &mut jar,
                "GET",
                "/console/lang/en?back=/console/rfm",
                &[],
            )
            .await;
            assert_eq!(a.location(), "/console/rfm");
            let rfm = request(&api, &mut jar, "GET", "/console/rfm", &[]).await;
            assert!(rfm.text.contains("important value") && rfm.text.contains("lang=\"en\""));
            // Never redirected off the console.
            let a = request(
                &api,
                &mut jar,
                "GET",
                "/console/lang/zh?back=//evil.example/console",
                &[],
            )
            .await;
            assert_eq!(a.location(), "/console");
            // Signing out needs the form's token, and ends the session.
            let secret = jar.get("siyu_session").expect("session").to_owned();
            let a = request(&api, &mut jar, "POST", "/console/sign-out", &[]).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "no token, no sign-out");
            let a = request(
                &api,
                &mut jar,
                "POST",
                "/console/sign-out",
                &[("csrf", &form_token(&page.text))],
            )
            .await;
            assert_eq!(a.location(), "/console/sign-in");
            let mut old = Jar(vec![("siyu_session".into(), secret)]);
            let a = request(&api, &mut old, "GET", "/console", &[]).await;
            assert_eq!(
                a.location(),
                "/console/sign-in",
                "the old cookie opens nothing"
            );
        });
    }
}

#[test]
fn sign_ins_need_the_forms_token_and_lock_after_repeated_failures() {
    let rt = runtime();
    for api in Api::on_each_backend("console_lock") {
        create_user(&api, "default", "ops", Role::Viewer);
        rt.block_on(async {
            let mut jar = Jar::default();
            // A form posted from elsewhere carries no token of this browser.
            let a = request(
                &api,
                &mut jar,
                "POST",
                "/console/sign-in",
                &[
                    ("tenant", "default"),
                    ("name", "ops"),
                    ("password", PASSWORD),
                    ("csrf", "0123456789abcdef0123456789abcdef"),
                ],
            )
            .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
            assert!(jar.get("siyu_session").is_none());
            // Wrong passwords, an unknown user and an unknown tenant read the same.
            for (tenant, name, password) in [
                ("default", "ops", "wrong-password"),
                ("default", "nobody", PASSWORD),
                ("elsewhere", "ops", PASSWORD),
            ] {
                let a = sign_in(&api, &mut jar, tenant, name, password).await;
                assert_eq!(
                    a.location(),
                    "/console/sign-in?failed=wrong",
                    "{tenant}/{name}"
                );
            }
            let form = request(&api, &mut jar, "GET", "/console/sign-in?failed=wrong", &[]).await;
            assert!(form.text.contains("用户名或密码不正确"));
            // The fifth failure in a row locks the user: even the right password then fails.
            for _ in 0..3 {
                sign_in(&api, &mut jar, "default", "ops", "wrong-password").await;
            }
            let a = sign_in(&api, &mut jar, "default", "ops", "wrong-password").await;
            assert_eq!(a.location(), "/console/sign-in?failed=locked");
            let a = sign_in(&api, &mut jar, "default", "ops", PASSWORD).await;
            assert_eq!(a.location(), "/console/sign-in?failed=locked");
            assert!(jar.get("siyu_session").is_none());
        });
        // A new password (set by an admin) unlocks.
        let mut store = siyu_store::open(&api.db).expect("store");
        let tenant = store.tenant("default").expect("tenant");
        users::set_password(store.as_mut(), &tenant, "ops", "another-secret").expect("passwd");
        // The console is for people: an ingest role is no console role.
        assert!(
            users::create_user(store.as_mut(), &tenant, "bot", Role::Ingest, PASSWORD).is_err()
        );
        drop(store);
        rt.block_on(async {
            let mut jar = Jar::default();
            let a = sign_in(&api, &mut jar, "default", "ops", "another-secret").await;
            assert_eq!(a.location(), "/console");
        });
    }
}

#[test]
fn values_are_shown_as_text_and_a_session_sees_only_its_tenant() {
    let rt = runtime();
    for api in Api::on_each_backend("console_tenants") {
        import_shop(
            &api,
            "shop-a",
            "order_id,customer_id,ordered_at,amount\na1,x,2026-05-01 10:00,100\n",
        );
        import_shop(
            &api,
            "shop-b",
            "order_id,customer_id,ordered_at,amount\nb1,y1,2026-05-01 10:00,7000\nb2,y2,2026-05-02 10:00,7000\nb3,y3,2026-05-03 10:00,7000\n",
        );
        let evil = "<script>alert(1)</script>";
        create_user(&api, "shop-a", evil, Role::Viewer);
        create_user(&api, "shop-b", "b-ops", Role::Viewer);
        rt.block_on(async {
            let mut jar = Jar::default();
            let a = sign_in(&api, &mut jar, "shop-a", evil, PASSWORD).await;
            assert_eq!(a.location(), "/console");
            let page = request(&api, &mut jar, "GET", "/console", &[]).await;
            assert!(!page.text.contains(evil), "the name is never markup");
            assert!(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
            // Shop A's figures, none of shop B's.
            assert!(page.text.contains("shop-a") && !page.text.contains("shop-b"));
            assert!(
                page.text.contains("<div class=\"value\">¥100.00</div>"),
                "{}",
                page.text
            );
            assert!(!page.text.contains("¥2.10万"));
            // B's user cannot sign in to A.
            let mut other = Jar::default();
            let a = sign_in(&api, &mut other, "shop-a", "b-ops", PASSWORD).await;
            assert_eq!(a.location(), "/console/sign-in?failed=wrong");
            let a = sign_in(&api, &mut other, "shop-b", "b-ops", PASSWORD).await;
            assert_eq!(a.location(), "/console");
            let page = request(&api, &mut other, "GET", "/console", &[]).await;
            assert!(page.text.contains("¥2.10万"), "{}", page.text);
        });
    }
}

#[test]
fn assets_are_embedded_and_kept_by_browsers() {
    let rt = runtime();
    let api = Api::new(siyu::http::RateLimit::default());
    rt.block_on(async {
        let mut jar = Jar::default();
        let form = request(&api, &mut jar, "GET", "/console/sign-in", &[]).await;
        let at = form.text.find("/assets/").expect("an asset link");
        let href: String = form.text[at..].chars().take_while(|c| *c != '"').collect();
        assert!(href.ends_with("/console.css"), "{href}");
        let css = request(&api, &mut jar, "GET", &href, &[]).await;
        assert_eq!(css.status, StatusCode::OK);
        assert_eq!(
            css.headers.get("cache-control").expect("cache"),
            "public, max-age=31536000, immutable"
        );
        let echarts = request(
            &api,
            &mut jar,
            "GET",
            &href.replace("console.css", "echarts.min.js"),
            &[],
        )
        .await;
        assert!(echarts.text.len() > 500_000 && echarts.text.contains("echarts"));
        let missing = request(
            &api,
            &mut jar,
            "GET",
            &href.replace("console.css", "nothing.js"),
            &[],
        )
        .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    });
}

#[test]
fn users_are_made_listed_and_removed_from_the_command_line_without_their_hashes() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("users.db");
    let run = |args: &[&str], password: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_siyu"));
        c.arg("--db").arg(&db).args(args);
        c.env_remove("SIYU_DB")
            .env_remove("SIYU_TENANT")
            .env_remove("SIYU_PASSWORD");
        if let Some(p) = password {
            c.env("SIYU_PASSWORD", p);
        }
        c.output().expect("siyu")
    };
    let made = run(
        &["user", "create", "运营小李", "--role", "operator"],
        Some(PASSWORD),
    );
    assert!(made.status.success(), "{}", common::text(&made.stderr));
    let short = run(&["user", "create", "x", "--role", "viewer"], Some("short"));
    assert!(!short.status.success());
    assert!(common::text(&short.stderr).contains("10 to 128 characters"));
    let bot = run(
        &["user", "create", "bot", "--role", "ingest"],
        Some(PASSWORD),
    );
    assert!(common::text(&bot.stderr).contains("not a console role"));
    let again = run(
        &["user", "create", "运营小李", "--role", "viewer"],
        Some(PASSWORD),
    );
    assert!(common::text(&again.stderr).contains("already"));
    let list = run(&["user", "list", "--format", "json"], None);
    let listed = common::text(&list.stdout);
    assert!(
        listed.contains("运营小李") && listed.contains("operator"),
        "{listed}"
    );
    assert!(!listed.contains("argon2"), "never the hash: {listed}");
    let gone = run(&["user", "delete", "运营小李"], None);
    assert!(gone.status.success());
    let list = run(&["user", "list", "--format", "json"], None);
    assert!(!common::text(&list.stdout).contains("运营小李"));
}

#[test]
fn segments_are_checked_as_typed_created_by_operators_and_their_members_listed() {
    let rt = runtime();
    for api in Api::on_each_backend("console_segments") {
        import_shop(
            &api,
            "default",
            "order_id,customer_id,ordered_at,amount\no1,c1,2026-05-01 10:00,100\no2,c1,2026-06-01 10:00,99\no3,c2,2026-06-03 10:00,50\no4,c3,2026-06-04 10:00,80\n",
        );
        create_user(&api, "default", "op", Role::Operator);
        create_user(&api, "default", "look", Role::Viewer);
        let viewer = api.token("default", Role::Viewer);
        rt.block_on(async {
            let mut jar = Jar::default();
            sign_in(&api, &mut jar, "default", "op", PASSWORD).await;
            let list = request(&api, &mut jar, "GET", "/console/segments", &[]).await;
            assert_eq!(list.status, StatusCode::OK);
            assert!(
                list.text.contains("action=\"/console/segments\""),
                "an operator gets the form"
            );
            // As typed: the mistake at its column, or the customers it holds now.
            let wrong = request(
                &api,
                &mut jar,
                "GET",
                "/console/segments/check?rule=orders%20%3E%3D%202%20and%20chanel%20%3D%20%22x%22",
                &[],
            )
            .await;
            assert!(
                wrong.text.contains("role=\"alert\"") && wrong.text.contains("data-column=\"17\""),
                "{}",
                wrong.text
            );
            let right = request(
                &api,
                &mut jar,
                "GET",
                "/console/segments/check?rule=orders%20%3E%3D%201",
                &[],
            )
            .await;
            assert!(right.text.contains("data-count=\"3\""), "{}", right.text);
            // Sent with the mistake: the form again, the mistake shown, nothing saved.
            let token = form_token(&list.text);
            let a = request(
                &api,
                &mut jar,
                "POST",
                "/console/segments",
                &[
                    ("name", "repeat"),
                    ("rule", "orders >= 2 and chanel = \"x\""),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST);
            assert!(
                a.text.contains("chanel") && a.text.contains("^"),
                "{}",
                a.text
            );
            // Without the form's token: refused.
            let a = request(
                &api,
                &mut jar,
                "POST",
                "/console/segments",
                &[("name", "repeat"), ("rule", "orders >= 2")],
            )
            .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
            let a = request(
                &api,
                &mut jar,
                "POST",
                "/console/segments",
                &[
                    ("name", "回头客"),
                    ("rule", "orders >= 2"),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
            let members = request(&api, &mut jar, "GET", a.location(), &[]).await;
            assert_eq!(members.status, StatusCode::OK);
            assert!(
                members.text.contains(">c1<") && !members.text.contains(">c2<"),
                "{}",
                members.text
            );
            // The API agrees.
            let (_, json) = api.call("GET", "/v1/segments", Some(&viewer), None).await;
            let segments: Value = serde_json::from_str(&json).expect("json");
            assert_eq!(segments[0]["name"], "回头客");
            assert_eq!(segments[0]["members"], 1);
            let csv = request(
                &api,
                &mut jar,
                "GET",
                &format!("{}/members.csv", a.location()),
                &[],
            )
            .await;
            assert!(
                csv.text.starts_with("customer_id,since,stage"),
                "{}",
                csv.text
            );
            assert!(csv.text.contains("\nc1,"));

            // A viewer reads, but gets no form, and a post is refused.
            let mut looker = Jar::default();
            sign_in(&api, &mut looker, "default", "look", PASSWORD).await;
            let list = request(&api, &mut looker, "GET", "/console/segments", &[]).await;
            assert!(list.text.contains("回头客"));
            assert!(
                !list.text.contains("action=\"/console/segments\""),
                "no form for a viewer"
            );
            let token = form_token(&list.text);
            let a = request(
                &api,
                &mut looker,
                "POST",
                "/console/segments",
                &[("name", "mine"), ("rule", "orders >= 1"), ("csrf", &token)],
            )
            .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
            let missing = request(&api, &mut looker, "GET", "/console/segments/nothing", &[]).await;
            assert_eq!(missing.status, StatusCode::NOT_FOUND);
        });
    }
}

#[test]
fn customers_are_found_shown_with_masked_phones_as_text_and_changed_by_their_roles() {
    let rt = runtime();
    for api in Api::on_each_backend("console_customers") {
        let dir = tempfile::tempdir().expect("dir");
        let customers = dir.path().join("customers.csv");
        std::fs::write(
            &customers,
            "customer_id,name,phone,channel\nc1,<script>alert(1)</script>,13812345678,douyin\nc2,王小明,13900001111,store\n",
        )
        .expect("write");
        api.cli(
            "default",
            &["import", "customers", customers.to_str().expect("path")],
        );
        import_shop(
            &api,
            "default",
            "order_id,customer_id,ordered_at,amount\no1,c1,2026-05-01 10:00,100\n",
        );
        create_user(&api, "default", "op", Role::Operator);
        create_user(&api, "default", "boss", Role::Admin);
        create_user(&api, "default", "look", Role::Viewer);
        let admin = api.token("default", Role::Admin);
        rt.block_on(async {
            let mut look = Jar::default();
            sign_in(&api, &mut look, "default", "look", PASSWORD).await;
            // Found by name prefix, by phone (however written), and straight to an id.
            let found = request(
                &api,
                &mut look,
                "GET",
                "/console/customers?q=%E7%8E%8B",
                &[],
            )
            .await;
            assert!(
                found.text.contains(">c2<") && !found.text.contains(">c1<"),
                "{}",
                found.text
            );
            let found = request(
                &api,
                &mut look,
                "GET",
                "/console/customers?q=139%200000%201111",
                &[],
            )
            .await;
            assert!(found.text.contains(">c2<"), "{}", found.text);
            let a = request(&api, &mut look, "GET", "/console/customers?q=c1", &[]).await;
            assert_eq!(a.location(), "/console/customers/c1");
            let listed = request(&api, &mut look, "GET", "/console/customers", &[]).await;
            assert!(listed.text.contains(">c1<") && listed.text.contains(">c2<"));
            // The 360 view: the name as text, the phone masked, no forms for a viewer.
            let c1 = request(&api, &mut look, "GET", "/console/customers/c1", &[]).await;
            assert_eq!(c1.status, StatusCode::OK);
            assert!(!c1.text.contains("<script>alert(1)</script>"));
            assert!(c1.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
            assert!(c1.text.contains("138****5678") && !c1.text.contains("13812345678"));
            assert!(
                !c1.text.contains("/c1/tags\"") && !c1.text.contains("/erase\""),
                "no forms for a viewer"
            );
            let token = form_token(&c1.text);
            let a = request(
                &api,
                &mut look,
                "POST",
                "/console/customers/c1/tags",
                &[("tag", "vip"), ("csrf", &token)],
            )
            .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
            let missing = request(&api, &mut look, "GET", "/console/customers/nobody", &[]).await;
            assert_eq!(missing.status, StatusCode::NOT_FOUND);

            // An operator tags, untags and records an opt-out; no admin forms.
            let mut op = Jar::default();
            sign_in(&api, &mut op, "default", "op", PASSWORD).await;
            let c1 = request(&api, &mut op, "GET", "/console/customers/c1", &[]).await;
            assert!(c1.text.contains("/tags\"") && !c1.text.contains("/erase\""));
            let token = form_token(&c1.text);
            let a = request(
                &api,
                &mut op,
                "POST",
                "/console/customers/c1/tags",
                &[("tag", "老客"), ("csrf", &token)],
            )
            .await;
            assert_eq!(a.location(), "/console/customers/c1");
            let c1 = request(&api, &mut op, "GET", "/console/customers/c1", &[]).await;
            assert!(
                c1.text.contains("老客") && c1.text.contains("manual:console:op"),
                "{}",
                c1.text
            );
            request(
                &api,
                &mut op,
                "POST",
                "/console/customers/c1/tags/remove",
                &[("tag", "老客"), ("csrf", &token)],
            )
            .await;
            let c1 = request(&api, &mut op, "GET", "/console/customers/c1", &[]).await;
            assert!(!c1.text.contains("老客"));
            request(
                &api,
                &mut op,
                "POST",
                "/console/customers/c1/opt-out",
                &[("opted_out", "true"), ("csrf", &token)],
            )
            .await;
            let c1 = request(&api, &mut op, "GET", "/console/customers/c1", &[]).await;
            assert!(c1.text.contains("已退订营销"));
            let a = request(
                &api,
                &mut op,
                "POST",
                "/console/customers/c1/erase",
                &[("confirm", "c1"), ("csrf", &token)],
            )
            .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "an operator erases nobody");

            // An admin exports (audited) and erases once the id is typed again.
            let mut boss = Jar::default();
            sign_in(&api, &mut boss, "default", "boss", PASSWORD).await;
            let c2 = request(&api, &mut boss, "GET", "/console/customers/c2", &[]).await;
            let token = form_token(&c2.text);
            let export = request(
                &api,
                &mut boss,
                "POST",
                "/console/customers/c2/export",
                &[("csrf", &token)],
            )
            .await;
            assert_eq!(export.status, StatusCode::OK);
            assert!(
                export.text.contains("13900001111"),
                "the export holds the data"
            );
            let (_, audit) = api.call("GET", "/v1/audit", Some(&admin), None).await;
            assert!(
                audit.contains("console:boss") && audit.contains("export"),
                "{audit}"
            );
            let a = request(
                &api,
                &mut boss,
                "POST",
                "/console/customers/c2/erase",
                &[("confirm", "c3"), ("csrf", &token)],
            )
            .await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST);
            assert!(a.text.contains("未删除"));
            let a = request(
                &api,
                &mut boss,
                "POST",
                "/console/customers/c2/erase",
                &[("confirm", "c2"), ("csrf", &token)],
            )
            .await;
            assert_eq!(a.status, StatusCode::SEE_OTHER);
            let gone = request(&api, &mut boss, "GET", "/console/customers/c2", &[]).await;
            assert_eq!(gone.status, StatusCode::NOT_FOUND);
        });
    }
}

#[test]
fn phones_are_masked_to_three_and_four_digits() {
    use siyu::http::console_masked_phone as masked;
    assert_eq!(masked("13812345678"), "138****5678");
    assert_eq!(masked("+8613812345678"), "+86*******5678");
    assert_eq!(masked("5551234"), "55***34");
    assert_eq!(masked("186******05"), "186******05");
    assert_eq!(masked("1234"), "****");
}

#[test]
fn admins_change_settings_users_and_tokens_from_the_console() {
    let rt = runtime();
    for api in Api::on_each_backend("console_settings") {
        create_user(&api, "default", "boss", Role::Admin);
        create_user(&api, "default", "look", Role::Viewer);
        rt.block_on(async {
            let mut boss = Jar::default();
            sign_in(&api, &mut boss, "default", "boss", PASSWORD).await;
            let page = request(&api, &mut boss, "GET", "/console/settings", &[]).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                page.text.contains("repurchase_cycle_days") && page.text.contains("Asia/Shanghai")
            );
            let token = form_token(&page.text);
            let a = request(
                &api,
                &mut boss,
                "POST",
                "/console/settings",
                &[
                    ("key", "repurchase_cycle_days"),
                    ("value", "45"),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.location(), "/console/settings");
            let a = request(
                &api,
                &mut boss,
                "POST",
                "/console/settings",
                &[
                    ("key", "time_zone"),
                    ("value", "Mars/Olympus"),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST);
            assert!(a.text.contains("role=\"alert\""), "{}", a.text);
            // A user, and an API token shown once that the API then takes, revoked at once.
            let a = request(
                &api,
                &mut boss,
                "POST",
                "/console/settings/users",
                &[
                    ("name", "新人"),
                    ("role", "operator"),
                    ("password", "short"),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "a short password");
            let a = request(
                &api,
                &mut boss,
                "POST",
                "/console/settings/users",
                &[
                    ("name", "新人"),
                    ("role", "operator"),
                    ("password", PASSWORD),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.location(), "/console/settings");
            let made = request(
                &api,
                &mut boss,
                "POST",
                "/console/settings/tokens",
                &[("role", "viewer"), ("label", "bi"), ("csrf", &token)],
            )
            .await;
            let at = made
                .text
                .find("id=\"new-token\">")
                .expect("the token shown")
                + "id=\"new-token\">".len();
            let secret: String = made.text[at..].chars().take_while(|c| *c != '<').collect();
            assert!(secret.starts_with("siyu_"), "{secret}");
            let (status, _) = api.call("GET", "/v1/segments", Some(&secret), None).await;
            assert_eq!(status, StatusCode::OK);
            let again = request(&api, &mut boss, "GET", "/console/settings", &[]).await;
            assert!(!again.text.contains(&secret), "shown once only");
            let at = again
                .text
                .find("name=\"prefix\" value=\"")
                .expect("a revoke form")
                + 21;
            let prefix: String = again.text[at..].chars().take_while(|c| *c != '"').collect();
            request(
                &api,
                &mut boss,
                "POST",
                "/console/settings/tokens/revoke",
                &[("prefix", &prefix), ("csrf", &token)],
            )
            .await;
            let (status, _) = api.call("GET", "/v1/segments", Some(&secret), None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked at once");
            let a = request(
                &api,
                &mut boss,
                "POST",
                "/console/settings/users/delete",
                &[("name", "boss"), ("csrf", &token)],
            )
            .await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "not oneself");
            // A viewer reads the settings, nothing else, and changes nothing.
            let mut look = Jar::default();
            sign_in(&api, &mut look, "default", "look", PASSWORD).await;
            let page = request(&api, &mut look, "GET", "/console/settings", &[]).await;
            assert!(
                page.text.contains("45")
                    && !page.text.contains("新人")
                    && !page.text.contains("action=\"/console/settings\"")
            );
            let token = form_token(&page.text);
            let a = request(
                &api,
                &mut look,
                "POST",
                "/console/settings",
                &[
                    ("key", "repurchase_cycle_days"),
                    ("value", "30"),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
            let a = request(
                &api,
                &mut look,
                "POST",
                "/console/settings/tokens",
                &[("role", "admin"), ("label", "x"), ("csrf", &token)],
            )
            .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
        });
        let out = api.cli("default", &["config", "get", "repurchase_cycle_days"]);
        assert_eq!(out.trim(), "45");
    }
}

#[test]
fn channels_and_referrals_show_the_apis_figures_and_spend_is_recorded_by_operators() {
    let rt = runtime();
    for api in Api::on_each_backend("console_channels") {
        let dir = tempfile::tempdir().expect("dir");
        let customers = dir.path().join("customers.csv");
        std::fs::write(
            &customers,
            "customer_id,channel,referrer_id,joined_at\nr1,douyin,,2026-05-01 09:00\nr2,douyin,r1,2026-05-02 09:00\nr3,store,r1,2026-05-03 09:00\n",
        )
        .expect("write");
        api.cli(
            "default",
            &["import", "customers", customers.to_str().expect("path")],
        );
        import_shop(
            &api,
            "default",
            "order_id,customer_id,ordered_at,amount\no1,r1,2026-05-01 10:00,100\no2,r2,2026-05-04 10:00,80\n",
        );
        create_user(&api, "default", "op", Role::Operator);
        create_user(&api, "default", "look", Role::Viewer);
        let viewer = api.token("default", Role::Viewer);
        rt.block_on(async {
            let mut op = Jar::default();
            sign_in(&api, &mut op, "default", "op", PASSWORD).await;
            let page = request(&api, &mut op, "GET", "/console/referrals", &[]).await;
            assert_eq!(page.status, StatusCode::OK);
            let (_, json) = api
                .call("GET", "/v1/reports/referrals", Some(&viewer), None)
                .await;
            let r: Value = serde_json::from_str(&json).expect("json");
            assert_eq!(
                (r["referred"].as_u64(), r["referred_buyers"].as_u64()),
                (Some(2), Some(1))
            );
            assert!(
                page.text.contains(">r1<"),
                "the top referrer: {}",
                page.text
            );
            for (g, n) in r["generations"]
                .as_array()
                .expect("generations")
                .iter()
                .enumerate()
            {
                let row = format!("<tr><td>{g}</td><td>{n}</td></tr>");
                assert!(page.text.contains(&row), "{row} in {}", page.text);
            }

            let page = request(&api, &mut op, "GET", "/console/channels", &[]).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(page.text.contains("抖音") && page.text.contains("门店"));
            let token = form_token(&page.text);
            let a = request(
                &api,
                &mut op,
                "POST",
                "/console/channels/spend",
                &[
                    ("channel", "抖音"),
                    ("month", "2026-13"),
                    ("amount", "300"),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST);
            assert!(a.text.contains("month"), "{}", a.text);
            let a = request(
                &api,
                &mut op,
                "POST",
                "/console/channels/spend",
                &[
                    ("channel", "抖音"),
                    ("month", "2026-05"),
                    ("amount", "300"),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.location(), "/console/channels");
            let (_, json) = api
                .call(
                    "GET",
                    "/v1/reports/channels?from=2025-12-09&to=2026-12-08",
                    Some(&viewer),
                    None,
                )
                .await;
            let c: Value = serde_json::from_str(&json).expect("json");
            let douyin = c["channels"]
                .as_array()
                .expect("channels")
                .iter()
                .find(|l| l["channel"] == "douyin")
                .expect("douyin")
                .clone();
            assert_eq!(douyin["spend"], 30_000, "fen");
            let page = request(&api, &mut op, "GET", "/console/channels", &[]).await;
            assert!(page.text.contains("¥300.00"), "{}", page.text);

            let mut look = Jar::default();
            sign_in(&api, &mut look, "default", "look", PASSWORD).await;
            let page = request(&api, &mut look, "GET", "/console/channels", &[]).await;
            assert!(!page.text.contains("/console/channels/spend"));
            let token = form_token(&page.text);
            let a = request(
                &api,
                &mut look,
                "POST",
                "/console/channels/spend",
                &[
                    ("channel", "抖音"),
                    ("month", "2026-05"),
                    ("amount", "1"),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
        });
    }
}

#[test]
fn the_gmv_factors_page_splits_the_change_and_projects_a_what_if_as_the_api_does() {
    let rt = runtime();
    for api in Api::on_each_backend("console_gmv") {
        import_shop(
            &api,
            "default",
            "order_id,customer_id,ordered_at,amount\no1,c1,2026-04-05 10:00,100\no2,c2,2026-04-20 10:00,50\no3,c1,2026-05-03 10:00,120\no4,c3,2026-05-10 10:00,80\no5,c3,2026-05-11 10:00,30\n",
        );
        create_user(&api, "default", "look", Role::Viewer);
        let viewer = api.token("default", Role::Viewer);
        rt.block_on(async {
            let mut look = Jar::default();
            sign_in(&api, &mut look, "default", "look", PASSWORD).await;
            let asked =
                "from=2026-05-01&to=2026-05-31&compare_from=2026-04-01&compare_to=2026-04-30";
            let page = request(
                &api,
                &mut look,
                "GET",
                &format!("/console/gmv?{asked}&aov=10&users=-5"),
                &[],
            )
            .await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            let (_, json) = api
                .call(
                    "GET",
                    &format!("/v1/reports/gmv?{asked}&what_if=aov%3D10%25,users%3D-5%25"),
                    Some(&viewer),
                    None,
                )
                .await;
            let r: Value = serde_json::from_str(&json).expect("json");
            let all = &r["slices"][0];
            let money = |fen: i64| siyu::http::console_money(fen);
            assert!(
                page.text
                    .contains(&money(all["factors"]["gmv"].as_i64().expect("gmv")))
            );
            for part in all["compared"]["parts"].as_array().expect("parts") {
                let shown = money(part["share"].as_i64().expect("share"));
                assert!(
                    page.text.contains(&format!("<td>{shown}</td>")),
                    "{shown} in {}",
                    page.text
                );
            }
            let projected = money(all["what_if"].as_i64().expect("what if"));
            assert!(page.text.contains(&projected), "{projected}");
            let bad = request(&api, &mut look, "GET", "/console/gmv?aov=80", &[]).await;
            assert_eq!(bad.status, StatusCode::BAD_REQUEST);
            let bad = request(
                &api,
                &mut look,
                "GET",
                "/console/gmv?from=2026-05-31&to=2026-05-01",
                &[],
            )
            .await;
            assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        });
    }
}

#[test]
fn a_shop_too_small_for_the_model_says_so_and_a_viewer_cannot_fit() {
    let rt = runtime();
    for api in Api::on_each_backend("console_clv") {
        import_shop(
            &api,
            "default",
            "order_id,customer_id,ordered_at,amount\no1,c1,2026-05-01 10:00,100\n",
        );
        create_user(&api, "default", "op", Role::Operator);
        create_user(&api, "default", "look", Role::Viewer);
        rt.block_on(async {
            let mut op = Jar::default();
            sign_in(&api, &mut op, "default", "op", PASSWORD).await;
            let page = request(&api, &mut op, "GET", "/console/clv", &[]).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(page.text.contains("还没有拟合模型"));
            let token = form_token(&page.text);
            let a = request(
                &api,
                &mut op,
                "POST",
                "/console/clv/fit",
                &[("csrf", &token)],
            )
            .await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST);
            assert!(a.text.contains("无法拟合"), "{}", a.text);
            let mut look = Jar::default();
            sign_in(&api, &mut look, "default", "look", PASSWORD).await;
            let page = request(&api, &mut look, "GET", "/console/clv", &[]).await;
            assert!(!page.text.contains("/console/clv/fit"));
            let token = form_token(&page.text);
            let a = request(
                &api,
                &mut look,
                "POST",
                "/console/clv/fit",
                &[("csrf", &token)],
            )
            .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
        });
    }
}

/// The rows of a page's history table: (customer, change) in the page's order.
fn history_rows(page: &str) -> Vec<(String, String)> {
    let Some(at) = page.find("<table class=\"history\">") else {
        return Vec::new();
    };
    let table = &page[at..page[at..].find("</table>").map_or(page.len(), |e| at + e)];
    table
        .split("<tr data-change=\"")
        .skip(1)
        .map(|row| {
            let change = row[..row.find('"').expect("quote")].to_owned();
            let id_at = row.find("/console/customers/").expect("a customer link") + 19;
            let id = row[id_at..id_at + row[id_at..].find('"').expect("quote")].to_owned();
            (id, change)
        })
        .collect()
}

#[test]
fn a_segments_history_and_tag_rules_are_shown_paged_and_changed_by_operators_only() {
    let rt = runtime();
    for api in Api::on_each_backend("console_history") {
        // 60 buyers: c00 … c59; c00 twice.
        let mut orders = String::from("order_id,customer_id,ordered_at,amount\n");
        for i in 0..60 {
            orders.push_str(&format!("o{i},c{i:02},2026-05-01 10:00,100\n"));
        }
        orders.push_str("o99,c00,2026-06-01 10:00,50\n");
        import_shop(&api, "default", &orders);
        create_user(&api, "default", "op", Role::Operator);
        create_user(&api, "default", "look", Role::Viewer);
        let viewer = api.token("default", Role::Viewer);
        rt.block_on(async {
            let mut jar = Jar::default();
            sign_in(&api, &mut jar, "default", "op", PASSWORD).await;
            let list = request(&api, &mut jar, "GET", "/console/tags", &[]).await;
            assert_eq!(list.status, StatusCode::OK);
            assert!(
                list.text.contains("action=\"/console/tags\""),
                "an operator gets the form"
            );
            assert!(
                list.text.contains("<code>days_since_order</code>"),
                "the field list"
            );
            // The live check is the segments' one, counting everyone the rule selects.
            let wrong = request(
                &api,
                &mut jar,
                "GET",
                "/console/tags/check?rule=oders%20%3E%3D%201",
                &[],
            )
            .await;
            assert!(wrong.text.contains("data-column=\"1\""), "{}", wrong.text);
            let right = request(
                &api,
                &mut jar,
                "GET",
                "/console/tags/check?rule=orders%20%3E%3D%201",
                &[],
            )
            .await;
            assert!(right.text.contains("data-count=\"60\""), "{}", right.text);
            let token = form_token(&list.text);
            let a = request(
                &api,
                &mut jar,
                "POST",
                "/console/tags",
                &[
                    ("name", "stage:x"),
                    ("rule", "orders >= 1"),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "a level tag's name");
            let a = request(
                &api,
                &mut jar,
                "POST",
                "/console/tags",
                &[("name", "买家"), ("rule", "orders >= 1"), ("csrf", &token)],
            )
            .await;
            assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
            let tag_page = a.location().to_owned();
            assert!(tag_page.starts_with("/console/tags/"), "{tag_page}");
            // Its members by page, and its entries newest first, 50 a page.
            let page = request(&api, &mut jar, "GET", &tag_page, &[]).await;
            assert_eq!(page.status, StatusCode::OK);
            let first = history_rows(&page.text);
            assert_eq!(first.len(), 50, "{}", page.text);
            assert!(first.iter().all(|(_, c)| c == "entered"));
            assert!(
                page.text.contains("tag created by console:op"),
                "the occasion"
            );
            assert!(page.text.contains("?history=1#history"));
            let older = request(&api, &mut jar, "GET", &format!("{tag_page}?history=1"), &[]).await;
            let second = history_rows(&older.text);
            assert_eq!(second.len(), 10);
            let mut all: Vec<String> = first
                .iter()
                .chain(&second)
                .map(|(id, _)| id.clone())
                .collect();
            all.sort();
            all.dedup();
            assert_eq!(all.len(), 60, "every entry once across the pages");
            let csv = request(
                &api,
                &mut jar,
                "GET",
                &format!("{tag_page}/members.csv"),
                &[],
            )
            .await;
            assert_eq!(csv.text.lines().count(), 61, "{}", csv.text);
            // The API's tag list agrees.
            let (_, json) = api.call("GET", "/v1/tags", Some(&viewer), None).await;
            let tags: Value = serde_json::from_str(&json).expect("json");
            let bought = tags
                .as_array()
                .expect("tags")
                .iter()
                .find(|t| t["tag"] == "买家")
                .expect("the tag");
            assert_eq!(bought["customers"], 60, "{bought}");

            // A segment on the tag: its history equals the API's.
            let a = request(
                &api,
                &mut jar,
                "POST",
                "/console/segments",
                &[
                    ("name", "回头客"),
                    ("rule", "orders >= 2 and has_tag(\"买家\")"),
                    ("csrf", &token),
                ],
            )
            .await;
            assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
            import_shop(
                &api,
                "default",
                "order_id,customer_id,ordered_at,amount\no100,c01,2026-06-02 10:00,70\n",
            );
            let page = request(&api, &mut jar, "GET", a.location(), &[]).await;
            let (_, json) = api
                .call(
                    "GET",
                    "/v1/segments/%E5%9B%9E%E5%A4%B4%E5%AE%A2/history",
                    Some(&viewer),
                    None,
                )
                .await;
            let history: Value = serde_json::from_str(&json).expect("json");
            let from_api: Vec<(String, String)> = history
                .as_array()
                .expect("lines")
                .iter()
                .map(|l| {
                    (
                        l["customer_id"].as_str().expect("id").to_owned(),
                        l["change"].as_str().expect("change").to_owned(),
                    )
                })
                .collect();
            assert_eq!(history_rows(&page.text), from_api);
            // Members by day, up to today's: the two now.
            let series = &page.text[page
                .text
                .find("<table class=\"series\">")
                .expect("members by day")..];
            let today = series[..series.find("</tbody>").expect("rows")]
                .rsplit("<tr>")
                .next()
                .expect("a row");
            assert!(today.ends_with("<td>2</td></tr>"), "{today}");
            assert_eq!(
                from_api,
                [
                    ("c01".to_owned(), "entered".to_owned()),
                    ("c00".to_owned(), "entered".to_owned())
                ]
            );
            assert!(
                page.text.contains("<td>import"),
                "the import's occasion: {}",
                page.text
            );

            // A viewer reads both, with no form to create or delete.
            let mut looker = Jar::default();
            sign_in(&api, &mut looker, "default", "look", PASSWORD).await;
            let seen = request(&api, &mut looker, "GET", &tag_page, &[]).await;
            assert_eq!(seen.status, StatusCode::OK);
            assert!(!seen.text.contains("/delete\""), "no delete for a viewer");
            let list = request(&api, &mut looker, "GET", "/console/tags", &[]).await;
            assert!(!list.text.contains("action=\"/console/tags\""));
            let viewer_token = form_token(&list.text);
            let a = request(
                &api,
                &mut looker,
                "POST",
                &format!("{tag_page}/delete"),
                &[("csrf", &viewer_token)],
            )
            .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
            // An operator deletes, with the form's token only; the history stays.
            let a = request(&api, &mut jar, "POST", &format!("{tag_page}/delete"), &[]).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
            let a = request(
                &api,
                &mut jar,
                "POST",
                &format!("{tag_page}/delete"),
                &[("csrf", &token)],
            )
            .await;
            assert_eq!(
                (a.status, a.location()),
                (StatusCode::SEE_OTHER, "/console/tags")
            );
            let gone = request(&api, &mut jar, "GET", &tag_page, &[]).await;
            assert_eq!(gone.status, StatusCode::NOT_FOUND);
            let (_, json) = api.call("GET", "/v1/tags", Some(&viewer), None).await;
            assert!(!json.contains("买家"), "{json}");
        });
    }
}

/// The numbers in the cells of a table row that starts `<tr {row}>`.
fn row_cells(page: &str, row: &str) -> Vec<u64> {
    let at = page
        .find(&format!("<tr {row}>"))
        .unwrap_or_else(|| panic!("{row} in {page}"));
    let end = at + page[at..].find("</tr>").expect("row end");
    page[at..end]
        .split("<td>")
        .skip(1)
        .map(|c| {
            c[..c.find("</td>").expect("cell end")]
                .replace(',', "")
                .parse()
                .expect("a count")
        })
        .collect()
}

#[test]
fn rfm_classes_list_their_customers_and_the_quintiles_are_siyu_rfms() {
    let rt = runtime();
    for api in Api::on_each_backend("console_rfm") {
        let mut orders = String::from("order_id,customer_id,ordered_at,amount\n");
        for i in 0..23u32 {
            for k in 0..=(i % 4) {
                let day = 1 + (i * 7 + k * 3) % 28;
                let month = 1 + (i % 6);
                orders.push_str(&format!(
                    "o{i}-{k},c{i:02},2026-{month:02}-{day:02} 10:00,{}\n",
                    50 + i * 13 + k
                ));
            }
        }
        import_shop(&api, "default", &orders);
        create_user(&api, "default", "look", Role::Viewer);
        let json: Value =
            serde_json::from_str(&api.cli("default", &["rfm", "--format", "json"])).expect("json");
        let customers = json["customers"].as_array().expect("customers");
        let mut each = [[0u64; 5]; 3];
        let mut rf = [[0u64; 5]; 5];
        for c in customers {
            let q = &c["quintiles"];
            let s = |d: &str| usize::try_from(q[d].as_u64().expect("score")).expect("small") - 1;
            for (i, d) in ["r", "f", "m"].into_iter().enumerate() {
                each[i][s(d)] += 1;
            }
            rf[s("r")][s("f")] += 1;
        }
        assert!(
            each[0].iter().filter(|&&n| n > 0).count() > 1,
            "scores differ: {each:?}"
        );
        rt.block_on(async {
            let mut jar = Jar::default();
            sign_in(&api, &mut jar, "default", "look", PASSWORD).await;
            let page = request(&api, &mut jar, "GET", "/console/rfm", &[]).await;
            assert_eq!(page.status, StatusCode::OK);
            for (i, d) in ["R", "F", "M"].into_iter().enumerate() {
                assert_eq!(
                    row_cells(&page.text, &format!("data-dimension=\"{d}\"")),
                    each[i],
                    "{d}"
                );
            }
            for r in 1..=5 {
                assert_eq!(
                    row_cells(&page.text, &format!("data-r=\"{r}\"")),
                    rf[r - 1],
                    "R{r}"
                );
            }
            // Each class leads to its customers, as siyu rfm classes them.
            for line in json["classes"].as_array().expect("classes") {
                let class = line["segment"].as_str().expect("class");
                assert!(
                    page.text
                        .contains(&format!("href=\"/console/rfm/{class}\""))
                );
                let listed =
                    request(&api, &mut jar, "GET", &format!("/console/rfm/{class}"), &[]).await;
                assert_eq!(listed.status, StatusCode::OK);
                let mut want: Vec<&str> = customers
                    .iter()
                    .filter(|c| c["segment"] == class)
                    .map(|c| c["customer_id"].as_str().expect("id"))
                    .collect();
                want.sort_unstable();
                let got: Vec<&str> = listed
                    .text
                    .split("href=\"/console/customers/")
                    .skip(1)
                    .map(|rest| &rest[..rest.find('"').expect("quote")])
                    .collect();
                assert_eq!(got, want, "{class}");
                assert_eq!(line["customers"].as_u64(), Some(want.len() as u64));
                let csv = request(
                    &api,
                    &mut jar,
                    "GET",
                    &format!("/console/rfm/{class}/members.csv"),
                    &[],
                )
                .await;
                let all = api.cli("default", &["rfm", "--format", "csv", "--quintiles"]);
                let lines: Vec<&str> = all
                    .lines()
                    .filter(|l| l.ends_with(&format!(",{class}")))
                    .collect();
                assert_eq!(
                    csv.text.lines().skip(1).collect::<Vec<_>>(),
                    lines,
                    "{class}"
                );
            }
            let missing = request(&api, &mut jar, "GET", "/console/rfm/nothing", &[]).await;
            assert_eq!(missing.status, StatusCode::NOT_FOUND);
        });
    }
}

#[test]
fn lifecycle_flows_count_the_moves_between_stages_and_stages_read_in_the_pages_language() {
    let rt = runtime();
    for api in Api::on_each_backend("console_flows") {
        let dir = tempfile::tempdir().expect("dir");
        let customers = dir.path().join("customers.csv");
        std::fs::write(&customers, "customer_id,name\nc1,甲\nc2,乙\nc3,丙\n").expect("write");
        api.cli(
            "default",
            &["import", "customers", customers.to_str().expect("path")],
        );
        let ago = |days: i64| {
            let at = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days);
            at.strftime("%Y-%m-%d %H:%M").to_string()
        };
        import_shop(
            &api,
            "default",
            &format!(
                "order_id,customer_id,ordered_at,amount\no1,c1,{},10\no2,c2,{},10\no9,c3,{},500\n",
                ago(3),
                ago(3),
                ago(3)
            ),
        );
        import_shop(
            &api,
            "default",
            &format!(
                "order_id,customer_id,ordered_at,amount\no3,c1,{},10\n",
                ago(1)
            ),
        );
        create_user(&api, "default", "look", Role::Viewer);
        rt.block_on(async {
            let mut jar = Jar::default();
            sign_in(&api, &mut jar, "default", "look", PASSWORD).await;
            let page = request(&api, &mut jar, "GET", "/console/lifecycle/flows", &[]).await;
            assert_eq!(page.status, StatusCode::OK);
            let cell = |page: &str, from: &str, to: &str| -> u64 {
                let row = page
                    .find(&format!("<tr data-from=\"{from}\">"))
                    .unwrap_or_else(|| panic!("row {from}"));
                let at = row
                    + page[row..]
                        .find(&format!("data-to=\"{to}\">"))
                        .expect("cell");
                let text = &page[at..];
                let text = &text[text.find('>').expect(">") + 1..text.find("</td>").expect("end")];
                text.replace(',', "").parse().unwrap_or(0)
            };
            assert_eq!(cell(&page.text, "none", "prospect"), 3, "{}", page.text);
            assert_eq!(
                cell(&page.text, "prospect", "first_purchase"),
                2,
                "{}",
                page.text
            );
            assert_eq!(cell(&page.text, "first_purchase", "repeat"), 1);
            // The top fifth by spend are super users (c3).
            assert_eq!(cell(&page.text, "prospect", "vip"), 1);
            assert_eq!(cell(&page.text, "prospect", "repeat"), 0);
            assert!(page.text.contains("首购") && page.text.contains("data-chart"));
            // A period before the shop: nothing moved; a backwards one is refused.
            let old = request(
                &api,
                &mut jar,
                "GET",
                "/console/lifecycle/flows?from=2020-01-01&to=2020-01-31",
                &[],
            )
            .await;
            assert_eq!(cell(&old.text, "none", "prospect"), 0);
            let wrong = request(
                &api,
                &mut jar,
                "GET",
                "/console/lifecycle/flows?from=2020-02-01&to=2020-01-31",
                &[],
            )
            .await;
            assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
            assert!(wrong.text.contains("role=\"alert\""));
            // The customer page names the stage in Chinese, and in English after the switch.
            let c1 = request(&api, &mut jar, "GET", "/console/customers/c1", &[]).await;
            assert!(
                c1.text.contains("<div class=\"value\">复购</div>"),
                "{}",
                c1.text
            );
            request(&api, &mut jar, "GET", "/console/lang/en", &[]).await;
            let c1 = request(&api, &mut jar, "GET", "/console/customers/c1", &[]).await;
            assert!(c1.text.contains("<div class=\"value\">repeat</div>"));
        });
    }
}

#[test]
fn phones_are_whole_only_in_an_admins_audited_reveal() {
    let rt = runtime();
    for api in Api::on_each_backend("console_phones") {
        let dir = tempfile::tempdir().expect("dir");
        let customers = dir.path().join("customers.csv");
        std::fs::write(
            &customers,
            "customer_id,name,phone\nc1,王小明,13812345678\nc2,李四,+86 139 0000 1111\n",
        )
        .expect("write");
        api.cli(
            "default",
            &["import", "customers", customers.to_str().expect("path")],
        );
        import_shop(
            &api,
            "default",
            "order_id,customer_id,ordered_at,amount\no1,c1,2026-05-01 10:00,100\no2,c1,2026-06-01 10:00,50\no3,c2,2026-06-02 10:00,70\n",
        );
        api.cli("default", &["segment", "create", "buyers", "orders >= 1"]);
        for (name, role) in [
            ("look", Role::Viewer),
            ("op", Role::Operator),
            ("boss", Role::Admin),
        ] {
            create_user(&api, "default", name, role);
        }
        let admin_token = api.token("default", Role::Admin);
        rt.block_on(async {
            // A viewer and an operator: no page holds a whole number, and a reveal is refused.
            for name in ["look", "op"] {
                let mut jar = Jar::default();
                sign_in(&api, &mut jar, "default", name, PASSWORD).await;
                let mut token = String::new();
                for path in [
                    "/console",
                    "/console/customers",
                    "/console/customers?q=%E7%8E%8B",
                    "/console/customers/c1",
                    "/console/customers/c2",
                    "/console/segments",
                    "/console/segments/buyers",
                    "/console/segments/buyers/members.csv",
                    "/console/tags",
                    "/console/rfm",
                    "/console/rfm/important_value",
                    "/console/lifecycle",
                    "/console/lifecycle/flows",
                    "/console/cohorts",
                    "/console/channels",
                    "/console/referrals",
                    "/console/clv",
                    "/console/settings",
                ] {
                    let page = request(&api, &mut jar, "GET", path, &[]).await;
                    assert_eq!(page.status, StatusCode::OK, "{name} {path}");
                    for whole in ["13812345678", "8613900001111", "13900001111"] {
                        assert!(!page.text.contains(whole), "{name} {path}: {whole}");
                    }
                    if path == "/console/customers/c1" {
                        assert!(page.text.contains("138****5678"));
                        assert!(!page.text.contains("/c1/phone\""), "no reveal for {name}");
                        token = form_token(&page.text);
                    }
                }
                let a = request(
                    &api,
                    &mut jar,
                    "POST",
                    "/console/customers/c1/phone",
                    &[("csrf", &token)],
                )
                .await;
                assert_eq!(a.status, StatusCode::FORBIDDEN, "{name}");
                assert!(!a.text.contains("13812345678"));
            }
            let (_, json) = api.call("GET", "/v1/audit", Some(&admin_token), None).await;
            assert!(!json.contains("view_phone"), "nothing revealed yet: {json}");

            // An admin: masked at first, a button; the reveal needs the form's token, shows
            // the number and is in the audit log (who, whom, view_phone).
            let mut jar = Jar::default();
            sign_in(&api, &mut jar, "default", "boss", PASSWORD).await;
            let page = request(&api, &mut jar, "GET", "/console/customers/c1", &[]).await;
            assert!(page.text.contains("138****5678") && !page.text.contains("13812345678"));
            assert!(page.text.contains("action=\"/console/customers/c1/phone\""));
            let a = request(&api, &mut jar, "POST", "/console/customers/c1/phone", &[]).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
            let token = form_token(&page.text);
            let shown = request(
                &api,
                &mut jar,
                "POST",
                "/console/customers/c1/phone",
                &[("csrf", &token)],
            )
            .await;
            assert_eq!(shown.status, StatusCode::OK);
            assert!(shown.text.contains("13812345678"), "{}", shown.text);
            assert!(
                !shown.text.contains("13900001111"),
                "only the one asked for"
            );
            let missing = request(
                &api,
                &mut jar,
                "POST",
                "/console/customers/nobody/phone",
                &[("csrf", &token)],
            )
            .await;
            assert_eq!(missing.status, StatusCode::NOT_FOUND);
            let (_, json) = api.call("GET", "/v1/audit", Some(&admin_token), None).await;
            let log: Value = serde_json::from_str(&json).expect("json");
            let reveals: Vec<&Value> = log
                .as_array()
                .expect("entries")
                .iter()
                .filter(|e| e["action"] == "view_phone")
                .collect();
            assert_eq!(reveals.len(), 1, "{json}");
            assert_eq!(reveals[0]["actor"], "console:boss");
            let c1 = api.cli("default", &["customer", "audit", "c1", "--format", "json"]);
            assert!(c1.contains("view_phone"), "the entry is about c1: {c1}");
            // Back on the page, masked again.
            let page = request(&api, &mut jar, "GET", "/console/customers/c1", &[]).await;
            assert!(!page.text.contains("13812345678"));
        });
    }
}

/// Signs in from a connection's peer `from` (with `headers`); the answer to the POST.
async fn sign_in_from(
    api: &Api,
    from: &str,
    headers: &[(&str, &str)],
    name: &str,
    password: &str,
) -> Answer {
    let mut jar = Jar::default();
    let form = request_from(
        api,
        &mut jar,
        Some(from),
        headers,
        "GET",
        "/console/sign-in",
        &[],
    )
    .await;
    let token = form_token(&form.text);
    request_from(
        api,
        &mut jar,
        Some(from),
        headers,
        "POST",
        "/console/sign-in",
        &[
            ("tenant", "default"),
            ("name", name),
            ("password", password),
            ("csrf", &token),
        ],
    )
    .await
}

#[test]
fn an_address_with_repeated_failed_sign_ins_is_refused_whatever_it_sends() {
    let rt = runtime();
    for api in Api::on_each_backend("console_address") {
        create_user(&api, "default", "op", Role::Operator);
        rt.block_on(async {
            let attacker = "203.0.113.7:40000";
            // Ten wrong sign-ins, each to another name (no user's own lock comes into it).
            for i in 0..10 {
                let a = sign_in_from(
                    &api,
                    attacker,
                    &[],
                    &format!("guess{i}"),
                    "not-the-password",
                )
                .await;
                assert_eq!(a.location(), "/console/sign-in?failed=wrong", "failure {i}");
            }
            // Now even the right password from that address is refused, and says why.
            let a = sign_in_from(&api, attacker, &[], "op", PASSWORD).await;
            assert_eq!(a.location(), "/console/sign-in?failed=address");
            assert!(
                a.headers
                    .get_all("set-cookie")
                    .iter()
                    .all(|c| !c.to_str().unwrap_or("").starts_with("siyu_session="))
            );
            let mut jar = Jar::default();
            let said = request(&api, &mut jar, "GET", a.location(), &[]).await;
            assert!(said.text.contains("15 分钟"), "{}", said.text);
            // Another address signs in; the user was never locked.
            let a = sign_in_from(&api, "198.51.100.4:5000", &[], "op", PASSWORD).await;
            assert_eq!(a.location(), "/console");
            // Behind a proxy on the host, the address it names is the client's; a client far
            // away cannot name another address to get round the lock.
            let proxied = [("x-forwarded-for", "203.0.113.7")];
            let a = sign_in_from(&api, "127.0.0.1:6000", &proxied, "op", PASSWORD).await;
            assert_eq!(a.location(), "/console/sign-in?failed=address");
            let other = [("x-forwarded-for", "198.51.100.9")];
            let a = sign_in_from(&api, "127.0.0.1:6000", &other, "op", PASSWORD).await;
            assert_eq!(a.location(), "/console");
            let a = sign_in_from(&api, attacker, &other, "op", PASSWORD).await;
            assert_eq!(a.location(), "/console/sign-in?failed=address");
        });
    }
}

/// Doubles every order's amount straight in the database, as no writer of siyu would:
/// the tenant's change counter does not move.
fn double_amounts_unannounced(api: &Api) {
    let sql = "UPDATE orders SET amount = amount * 2";
    if api.db.starts_with("postgres") {
        // On a thread of its own: the client drives a runtime, which may not start in the test's.
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut client =
                    postgres::Client::connect(&api.db, postgres::NoTls).expect("connect");
                client.batch_execute(sql).expect("update");
            });
        });
    } else {
        let conn = rusqlite::Connection::open(&api.db).expect("open");
        conn.execute_batch(sql).expect("update");
    }
}

#[test]
fn report_figures_are_kept_until_any_writer_changes_the_tenant() {
    let rt = runtime();
    for api in Api::on_each_backend("console_cache") {
        import_shop(
            &api,
            "default",
            "order_id,customer_id,ordered_at,amount\no1,c1,2026-05-01 10:00,1\no2,c2,2026-06-01 10:00,2\n",
        );
        create_user(&api, "default", "ops", Role::Operator);
        let ingest = api.token("default", Role::Ingest);
        rt.block_on(async {
            let mut jar = Jar::default();
            sign_in(&api, &mut jar, "default", "ops", PASSWORD).await;
            let gmv_shown = async |jar: &mut Jar, page: &str, gmv: &str| {
                let page = request(&api, jar, "GET", page, &[]).await;
                assert_eq!(page.status, StatusCode::OK);
                let shown = format!("<div class=\"value\">{gmv}</div>");
                page.text.contains(&shown)
            };
            assert!(gmv_shown(&mut jar, "/console", "¥3.00").await);
            // A change no writer announced is not seen: the page's figures are kept.
            double_amounts_unannounced(&api);
            assert!(gmv_shown(&mut jar, "/console", "¥3.00").await, "kept");
            // An import by another process moves the counter: the figures are read again
            // (with the change above, now seen too).
            let dir = tempfile::tempdir().expect("dir");
            let path = dir.path().join("more.csv");
            std::fs::write(
                &path,
                "order_id,customer_id,ordered_at,amount\no3,c3,2026-06-02 10:00,4\n",
            )
            .expect("write");
            api.cli(
                "default",
                &["import", "orders", path.to_str().expect("path")],
            );
            assert!(gmv_shown(&mut jar, "/console", "¥10.00").await, "2 + 4 + 4");
            // So does the API's ingest, in this server.
            double_amounts_unannounced(&api);
            assert!(gmv_shown(&mut jar, "/console", "¥10.00").await, "kept");
            let body = serde_json::json!({"batch": [{"type": "order", "message_id": "m1",
                "customer_id": "c4", "timestamp": "2026-06-03 10:00:00", "order_id": "o4",
                "amount": "1"}]});
            let (status, text) = api.batch(&ingest, body).await;
            assert_eq!(status, StatusCode::OK, "{text}");
            assert!(
                gmv_shown(&mut jar, "/console", "¥21.00").await,
                "4 + 8 + 8 + 1"
            );
            // And a setting (here a channel's spend, from the console's own form).
            double_amounts_unannounced(&api);
            let page = request(&api, &mut jar, "GET", "/console/channels", &[]).await;
            assert!(gmv_shown(&mut jar, "/console", "¥21.00").await, "kept");
            let a = request(
                &api,
                &mut jar,
                "POST",
                "/console/channels/spend",
                &[
                    ("channel", "douyin"),
                    ("month", "2026-06"),
                    ("amount", "10"),
                    ("csrf", &form_token(&page.text)),
                ],
            )
            .await;
            assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
            assert!(gmv_shown(&mut jar, "/console", "¥42.00").await, "doubled");
        });
    }
}

#[test]
fn a_rule_counts_at_once_on_the_pool_read_a_moment_ago_and_says_so_until_a_fresh_read() {
    let rt = runtime();
    for api in Api::on_each_backend("console_aged_count") {
        import_shop(
            &api,
            "default",
            "order_id,customer_id,ordered_at,amount\no1,c1,2026-05-01 10:00,100\no2,c2,2026-06-03 10:00,50\n",
        );
        create_user(&api, "default", "op", Role::Operator);
        rt.block_on(async {
            let mut jar = Jar::default();
            sign_in(&api, &mut jar, "default", "op", PASSWORD).await;
            let check = "/console/segments/check?rule=orders%20%3E%3D%201";
            let first = request(&api, &mut jar, "GET", check, &[]).await;
            assert!(first.text.contains("data-count=\"2\""), "{}", first.text);
            assert!(!first.text.contains("data-aged"), "{}", first.text);
            // Another writer adds a buyer: the next count answers from the pool read a
            // moment ago, saying so, and reads the pool again beside.
            import_shop(
                &api,
                "default",
                "order_id,customer_id,ordered_at,amount\no3,c3,2026-06-04 10:00,80\n",
            );
            let aged = request(&api, &mut jar, "GET", check, &[]).await;
            assert!(
                aged.text.contains("data-count=\"2\"") && aged.text.contains("data-aged="),
                "{}",
                aged.text
            );
            // The fresh read lands: the count is current again, with the new buyer.
            let mut current = String::new();
            for _ in 0..200 {
                let again = request(&api, &mut jar, "GET", check, &[]).await;
                if !again.text.contains("data-aged") {
                    current = again.text;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert!(current.contains("data-count=\"3\""), "{current}");
        });
    }
}

/// The rows of the overview's GMV table: (period, paid orders).
fn period_rows(page: &str) -> Vec<(String, u64)> {
    let Some(at) = page.find("<details>") else {
        return Vec::new();
    };
    let table = &page[at..page[at..].find("</table>").map_or(page.len(), |e| at + e)];
    table
        .split("<tr><td>")
        .skip(1)
        .map(|row| {
            let cells: Vec<&str> = row.split("</td><td>").collect();
            let orders = cells[2].split("</td>").next().expect("a cell");
            (cells[0].to_owned(), orders.parse().expect("paid orders"))
        })
        .collect()
}

#[test]
fn campaigns_are_listed_shown_with_the_clis_results_and_run_by_operators_only() {
    let rt = runtime();
    for api in Api::on_each_backend("console_campaigns") {
        import_shop(
            &api,
            "default",
            "order_id,customer_id,ordered_at,amount\no1,c1,2026-05-01 10:00,100\no2,c2,2026-06-03 10:00,50\no3,c3,2026-06-04 10:00,80\n",
        );
        let dir = tempfile::tempdir().expect("dir");
        let people = dir.path().join("customers.csv");
        std::fs::write(
            &people,
            "customer_id,name,phone\nc1,Li,13812345678\nc2,Wang,13912345678\nc3,Zhao,13712345678\n",
        )
        .expect("write");
        api.cli(
            "default",
            &["import", "customers", people.to_str().expect("path")],
        );
        create_user(&api, "default", "op", Role::Operator);
        create_user(&api, "default", "boss", Role::Admin);
        create_user(&api, "default", "look", Role::Viewer);
        let operator = api.token("default", Role::Operator);
        rt.block_on(async {
            let (s, t) = api
                .call(
                    "POST",
                    "/v1/offers",
                    Some(&operator),
                    Some(r#"{"name":"ten","kind":"no_threshold","off":10}"#.to_owned()),
                )
                .await;
            assert_eq!(s.as_u16(), 201, "{t}");
            let body = r#"{"name":"spring","customers":["c1","c2","c3"],"message":"hi <script>x</script>","tiers":[{"name":"all","rule":"","offer":"ten"}],"holdout":0,"quiet_hours":"none"}"#;
            let (s, t) = api
                .call("POST", "/v1/campaigns", Some(&operator), Some(body.to_owned()))
                .await;
            assert_eq!(s.as_u16(), 201, "{t}");

            // A viewer reads the list and the page, and has no form to run or pause.
            let mut look = Jar::default();
            sign_in(&api, &mut look, "default", "look", PASSWORD).await;
            let list = request(&api, &mut look, "GET", "/console/campaigns", &[]).await;
            assert_eq!(list.status, StatusCode::OK);
            assert!(list.text.contains("href=\"/console/campaigns/spring\""), "{}", list.text);
            assert!(list.text.contains("<td>ten</td>"), "the offer is listed");
            let shown = request(&api, &mut look, "GET", "/console/campaigns/spring", &[]).await;
            assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
            assert!(shown.text.contains("hi &lt;script&gt;"), "{}", shown.text);
            assert!(!shown.text.contains("<script>x"));
            assert!(!shown.text.contains("/run\""), "a viewer gets no run form");
            let token = form_token(&shown.text);
            let refused = request(
                &api,
                &mut look,
                "POST",
                "/console/campaigns/spring/run",
                &[("csrf", &token), ("confirm", "yes")],
            )
            .await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN);
            assert!(!list.text.contains("action=\"/console/offers\""), "no offer form for viewers");
            let refused = request(
                &api,
                &mut look,
                "POST",
                "/console/offers",
                &[("csrf", &token), ("name", "v"), ("kind", "no_threshold"), ("off", "5")],
            )
            .await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN);
            assert!(!list.text.contains("/console/campaigns/new"));
            let form = request(&api, &mut look, "GET", "/console/campaigns/new", &[]).await;
            assert_eq!(form.status, StatusCode::FORBIDDEN, "viewers cannot reach the form");
            let refused = request(
                &api,
                &mut look,
                "POST",
                "/console/campaigns",
                &[("csrf", &token), ("name", "v"), ("customers", "c1"), ("message", "m")],
            )
            .await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN);
            let missing = request(&api, &mut look, "GET", "/console/campaigns/nope", &[]).await;
            assert_eq!(missing.status, StatusCode::NOT_FOUND);

            // An operator runs it: with the form's token and the confirmation only.
            let mut jar = Jar::default();
            sign_in(&api, &mut jar, "default", "op", PASSWORD).await;
            let before = request(&api, &mut jar, "GET", "/console/campaigns/spring", &[]).await;
            assert!(before.text.contains("action=\"/console/campaigns/spring/run\""));
            let token = form_token(&before.text);
            let run_uri = "/console/campaigns/spring/run";
            let forged_token = "0".repeat(32);
            let forged = request(&api, &mut jar, "POST", run_uri, &[("csrf", &forged_token), ("confirm", "yes")]).await;
            assert_eq!(forged.status, StatusCode::FORBIDDEN);
            let unconfirmed = request(&api, &mut jar, "POST", run_uri, &[("csrf", &token)]).await;
            assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
            // Offers from the list's form: a mistake shown, a good one listed.
            let list = request(&api, &mut jar, "GET", "/console/campaigns", &[]).await;
            assert!(list.text.contains("action=\"/console/offers\""));
            assert!(list.text.contains("<label for=\"offer-off\">"));
            let wrong = request(
                &api,
                &mut jar,
                "POST",
                "/console/offers",
                &[("csrf", &token), ("name", "big"), ("kind", "threshold"), ("min", "300"), ("off", "lots")],
            )
            .await;
            assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
            assert!(wrong.text.contains("role=\"alert\">off: "), "{}", wrong.text);
            let made = request(
                &api,
                &mut jar,
                "POST",
                "/console/offers",
                &[("csrf", &token), ("name", "big"), ("kind", "threshold"), ("min", "300"), ("off", "50"), ("days", "7"), ("max_coupons", "")],
            )
            .await;
            assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.text);
            let list = request(&api, &mut jar, "GET", "/console/campaigns", &[]).await;
            assert!(list.text.contains("<td>big</td>") && list.text.contains("满300"), "{}", list.text);

            // A campaign from the form: the default tiers shown, a mistake shown with it.
            let form = request(&api, &mut jar, "GET", "/console/campaigns/new", &[]).await;
            assert_eq!(form.status, StatusCode::OK);
            assert!(form.text.contains("<label for=\"c-tiers\">") && form.text.contains("value | "), "{}", form.text);
            let fields = |holdout: &'static str| {
                vec![
                    ("csrf", token.clone()),
                    ("name", "autumn".to_owned()),
                    ("segment", String::new()),
                    ("customers", "c1, c2\nc3".to_owned()),
                    ("message", "hello <b>".to_owned()),
                    ("channel", "export".to_owned()),
                    ("tiers", "all |  | big\n".to_owned()),
                    ("holdout", holdout.to_owned()),
                    ("quiet_hours", "none".to_owned()),
                ]
            };
            let wrong = fields("80");
            let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let a = request(&api, &mut jar, "POST", "/console/campaigns", &wrong).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST);
            assert!(a.text.contains("role=\"alert\">holdout: 80% is not 0 to 50"), "{}", a.text);
            assert!(a.text.contains("hello &lt;b&gt;"), "the form kept, escaped");
            let right = fields("0");
            let right: Vec<(&str, &str)> = right.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let b = request(&api, &mut jar, "POST", "/console/campaigns", &right).await;
            assert_eq!((b.status, b.location()), (StatusCode::SEE_OTHER, "/console/campaigns/autumn"), "{}", b.text);
            let page = request(&api, &mut jar, "GET", "/console/campaigns/autumn", &[]).await;
            assert!(page.text.contains("3 listed customers") || page.text.contains("3 个指定客户"), "{}", page.text);

            // The preview counts what the run then decides, and writes nothing.
            let preview = request(&api, &mut jar, "GET", "/console/campaigns/spring/preview", &[]).await;
            assert_eq!(preview.status, StatusCode::OK, "{}", preview.text);
            let send = preview.text.find("data-outcome=\"send\"").expect("a send row");
            let row = &preview.text[send..send + preview.text[send..].find("</tr>").expect("row")];
            assert!(row.ends_with("<td>3</td>"), "the three a run sends: {row}");
            let still = request(&api, &mut jar, "GET", "/console/campaigns/spring", &[]).await;
            assert!(!still.text.contains(">c1</a>"), "a preview decides nobody");
            let ran = request(&api, &mut jar, "POST", run_uri, &[("csrf", &token), ("confirm", "yes")]).await;
            assert_eq!(ran.status, StatusCode::SEE_OTHER, "{}", ran.text);
            let after = request(&api, &mut jar, "GET", "/console/campaigns/spring?outcome=send", &[]).await;
            for c in ["c1", "c2", "c3"] {
                assert!(after.text.contains(&format!(">{c}</a>")), "{c}: {}", after.text);
            }
            let list = request(&api, &mut jar, "GET", "/console/campaigns", &[]).await;
            assert!(list.text.contains("sent 3") || list.text.contains("发送 3"), "{}", list.text);
            let held = request(&api, &mut jar, "GET", "/console/campaigns/spring?outcome=held", &[]).await;
            assert!(!held.text.contains(">c1</a>"), "filtered by outcome");

            // The results are the CLI's.
            let cli: Value = serde_json::from_str(&api.cli(
                "default",
                &["campaign", "results", "spring", "--format", "json"],
            ))
            .expect("json");
            let treated = cli["overall"]["treated"]["customers"].as_u64().expect("count");
            assert_eq!(treated, 3);
            let at = after.text.find("<th scope=\"row\">").expect("a results row");
            assert!(after.text[at..].contains(&format!("<td>{treated} / 0</td>")), "{}", &after.text[at..]);
            assert!(after.text.contains("too-small"), "groups this small are said to be");

            // The export: phones masked for an operator, who may not ask for them whole.
            let export = "/console/campaigns/spring/export";
            let whole = request(&api, &mut jar, "POST", export, &[("csrf", &token), ("full_phones", "yes")]).await;
            assert_eq!(whole.status, StatusCode::FORBIDDEN);
            let csv = request(&api, &mut jar, "POST", export, &[("csrf", &token)]).await;
            assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
            assert!(csv.text.contains("138****5678") && !csv.text.contains("13812345678"), "{}", csv.text);
            assert_eq!(csv.text.lines().count(), 4, "a header and the three sends: {}", csv.text);
            let refused = request(&api, &mut look, "POST", export, &[("csrf", &form_token(&shown.text))]).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "not for viewers");
            // An admin's whole phones, each written to the audit log first.
            let mut boss = Jar::default();
            sign_in(&api, &mut boss, "default", "boss", PASSWORD).await;
            let page = request(&api, &mut boss, "GET", "/console/campaigns/spring", &[]).await;
            let boss_token = form_token(&page.text);
            let again = request(&api, &mut boss, "POST", run_uri, &[("csrf", &boss_token), ("confirm", "yes")]).await;
            assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.text);
            let csv = request(&api, &mut boss, "POST", export, &[("csrf", &boss_token), ("full_phones", "yes")]).await;
            assert!(csv.text.contains("13812345678"), "{}", csv.text);
            let audit = api.cli("default", &["customer", "audit", "c1"]);
            assert!(audit.contains("console:boss"), "{audit}");

            // Paused: it does not run, and says why.
            let paused = request(
                &api,
                &mut jar,
                "POST",
                "/console/campaigns/spring/pause",
                &[("csrf", &token)],
            )
            .await;
            assert_eq!(paused.status, StatusCode::SEE_OTHER);
            let again = request(&api, &mut jar, "POST", run_uri, &[("csrf", &token), ("confirm", "yes")]).await;
            assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
        });
    }
}
