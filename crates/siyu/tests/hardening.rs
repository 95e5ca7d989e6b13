//! The server against careless or hostile clients: /metrics labels drawn from closed sets
//! whatever the methods and paths; slow headers and bodies cut at their deadlines; the
//! connections past the cap shed and said in the log, and the cap fitted to the limit on
//! open files; JSON nested past reason refused with a 400 while the server goes on. The timing tests run `siyu serve` on port 0 with
//! deadlines of a second or two, and wait no longer than those.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use axum::http::StatusCode;

use common::api::{Api, runtime};
use siyu::http::openapi_document;
use siyu_core::access::Role;

/// A made-up but well-formed method and a path no route has, the `i`th of a run.
fn made_up(i: u64) -> (String, String) {
    let k = i.wrapping_mul(6_364_136_223_846_793_005).rotate_left(17);
    (
        format!("X{k:X}"),
        format!("/v1/{k:x}/{}", k.wrapping_mul(31) % 10_007),
    )
}

#[test]
fn made_up_methods_and_paths_leave_metrics_labels_in_closed_sets() {
    // Opened outside the runtime: the PostgreSQL client starts one of its own.
    let apis = Api::on_each_backend("metrics");
    runtime().block_on(async {
        let api = &apis[0];
        let routes = [
            "/v1/batch",
            "/v1/customers/{id}",
            "/v1/segments",
            "/healthz",
        ];
        for i in 0..300 {
            let (method, path) = made_up(i);
            // Made-up methods on paths no route has and on routes that exist, and known
            // methods on paths no route has.
            let _ = api.call(&method, &path, None, None).await;
            let route = routes[i as usize % routes.len()].replace("{id}", &path[4..]);
            let _ = api.call(&method, &route, None, None).await;
            let _ = api.call("GET", &path, None, None).await;
        }
        let (status, text) = api.call("GET", "/metrics", None, None).await;
        assert_eq!(status, StatusCode::OK);

        let methods = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
        ];
        let document = openapi_document();
        let mut known_routes: BTreeSet<String> = document["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect();
        known_routes.extend(
            [
                "/healthz",
                "/metrics",
                "/v1/openapi.json",
                "/v1/docs",
                "unmatched",
            ]
            .map(String::from),
        );
        let buckets = [
            "0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "0.25", "1", "5", "+Inf",
        ];
        let mut series = 0;
        let mut seen_methods = BTreeSet::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            series += 1;
            let Some((_, labels)) = line.split_once('{') else {
                continue;
            };
            let labels = labels.split_once('}').expect("labels end").0;
            for pair in labels.split("\",") {
                let (name, value) = pair.split_once("=\"").expect("name=\"value\"");
                let value = value.trim_end_matches('"');
                match name {
                    "method" => {
                        assert!(methods.contains(&value), "method {value}: {line}");
                        seen_methods.insert(value.to_owned());
                    }
                    "route" => assert!(known_routes.contains(value), "route {value}: {line}"),
                    "status" => assert!(
                        value.len() == 3 && value.parse::<u16>().is_ok(),
                        "status {value}: {line}"
                    ),
                    "le" => assert!(buckets.contains(&value), "le {value}: {line}"),
                    other => panic!("label {other}: {line}"),
                }
            }
        }
        assert!(seen_methods.contains("other"), "{text}");
        // 900 requests with 300 methods and 300 paths: a few dozen series, not thousands.
        assert!(series < 120, "{series} series:\n{text}");
    });
}

/// `depth` arrays (or objects with one key) one inside the other, as text.
fn nested(depth: usize, object: bool) -> String {
    let (open, close) = if object { ("{\"a\":", "}") } else { ("[", "]") };
    let mut s = open.repeat(depth);
    s.push('1');
    s.push_str(&close.repeat(depth));
    s
}

fn track(message: &str, properties: &str) -> String {
    format!(
        r#"{{"type": "track", "message_id": "{message}", "customer_id": "c1", "timestamp": "2025-05-02", "event": "view", "properties": {properties}}}"#
    )
}

#[test]
fn json_nested_100000_deep_is_refused_with_a_400_and_the_server_goes_on() {
    for api in Api::on_each_backend("nested") {
        let ingest = api.token("shop", Role::Ingest);
        let admin = api.token("shop", Role::Admin);
        runtime().block_on(async {
            for object in [false, true] {
                let deep = nested(100_000, object);
                let bodies = [
                    deep.clone(),
                    format!(r#"{{"batch": {deep}}}"#),
                    format!(r#"{{"batch": [{}]}}"#, track("deep", &deep)),
                ];
                for body in bodies {
                    let (status, text) = api
                        .call("POST", "/v1/batch", Some(&ingest), Some(body))
                        .await;
                    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
                    assert!(text.contains(r#""code":"malformed_json""#), "{text}");
                    assert!(text.contains("recursion limit"), "{text}");
                }
                // The other routes that take JSON read it the same way (this one takes
                // at most 64 KiB).
                let (status, text) = api
                    .call(
                        "POST",
                        "/v1/segments",
                        Some(&admin),
                        Some(nested(8_000, object)),
                    )
                    .await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
                assert!(text.contains(r#""code":"malformed_json""#), "{text}");
            }
            // Nothing of the refused batches was kept.
            let (status, text) = api
                .call("GET", "/v1/customers/c1", Some(&admin), None)
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
            // Properties as deep as a batch may carry are kept and read back whole.
            let body = format!(r#"{{"batch": [{}]}}"#, track("m1", &nested(120, true)));
            let (status, text) = api
                .call("POST", "/v1/batch", Some(&ingest), Some(body))
                .await;
            assert_eq!(status, StatusCode::OK, "{text}");
            assert!(text.contains(r#""accepted":1"#), "{text}");
            let (status, text) = api
                .call("GET", "/v1/customers/c1/export", Some(&admin), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{text}");
            assert!(text.contains(&"{\"a\":".repeat(120)), "{text}");
            let (status, text) = api
                .call("GET", "/v1/customers/c1", Some(&admin), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{text}");
        });
    }
}

/// `siyu serve` on port 0 with `args`; its address and the lines of its stderr.
struct Server {
    child: Child,
    addr: String,
    log: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(db: &Path, args: &[&str]) -> Server {
        Server::start_in(Command::new(env!("CARGO_BIN_EXE_siyu")), db, args)
    }

    /// As `start`, with `vars` set.
    fn start_with_env(db: &Path, args: &[&str], vars: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_siyu"));
        command.envs(vars.iter().copied());
        Server::start_in(command, db, args)
    }

    /// As `start`, in a process whose limits on open files are `soft` and `hard`.
    fn start_with_open_files(db: &Path, args: &[&str], soft: u32, hard: u32) -> Server {
        let mut sh = Command::new("sh");
        sh.args([
            "-c",
            &format!("ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_siyu"),
        ]);
        Server::start_in(sh, db, args)
    }

    fn start_in(mut command: Command, db: &Path, args: &[&str]) -> Server {
        let mut child = command
            .arg("--db")
            .arg(db)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .env_remove("SIYU_DB")
            .env_remove("SIYU_TENANT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("siyu serve");
        let (lines, log) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let (addr, line) = common::listening_address(&mut child);
        assert!(addr.starts_with("127.0.0.1:"), "{line}");
        Server { child, addr, log }
    }

    /// A connection whose reads give up after `wait`.
    fn connect(&self, wait: Duration) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(wait)).expect("read timeout");
        s
    }

    /// A whole request on its own connection; the answer.
    fn call(&self, request: &str) -> String {
        let mut s = self.connect(Duration::from_secs(10));
        s.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        answer
    }

    fn healthz(&self) -> String {
        self.call(&format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        ))
    }
}

/// What a read on `s` saw: the server closed it (no bytes), bytes, or nothing yet.
enum Seen {
    Closed,
    Bytes(Vec<u8>),
    Nothing,
}

fn read_once(s: &mut TcpStream) -> Seen {
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => Seen::Closed,
        Ok(n) => Seen::Bytes(buf[..n].to_vec()),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Seen::Closed,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Seen::Nothing,
        Err(e) => panic!("read: {e}"),
    }
}

#[test]
fn a_client_slow_with_its_headers_is_cut_off_and_so_is_an_idle_kept_alive_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("h.db"), &["--header-timeout-secs", "1"]);

    // A header line every 200 ms, as a slowloris does: cut off after a second, unanswered.
    let mut s = server.connect(Duration::from_millis(200));
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\n");
    let mut cut = false;
    for i in 0..50 {
        if s.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .is_err()
        {
            cut = true;
            break;
        }
        match read_once(&mut s) {
            Seen::Closed => {
                cut = true;
                break;
            }
            Seen::Bytes(b) => panic!("answered: {}", String::from_utf8_lossy(&b)),
            Seen::Nothing => {}
        }
    }
    assert!(cut, "still open after 50 header lines 200 ms apart");

    // A kept-alive connection answered once, then idle: closed after the same second.
    let mut s = server.connect(Duration::from_secs(10));
    s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes())
        .expect("send");
    let Seen::Bytes(answer) = read_once(&mut s) else {
        panic!("no answer")
    };
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    assert!(
        matches!(read_once(&mut s), Seen::Closed),
        "idle, still open"
    );

    assert!(server.healthz().starts_with("HTTP/1.1 200"));
}

#[test]
fn a_client_slow_with_its_body_is_answered_408_request_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("b.db");
    let out = common::siyu(&db, &["token", "create", "--role", "ingest"]);
    let token = common::text(&out.stdout).trim().to_owned();
    let server = Server::start(&db, &["--body-timeout-secs", "1"]);

    // Headers at once, then the body a byte every 200 ms: answered when the second is up,
    // though bytes keep coming.
    let mut s = server.connect(Duration::from_millis(200));
    s.write_all(
        format!(
            "POST /v1/batch HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
            server.addr
        )
        .as_bytes(),
    )
    .expect("send");
    let mut answer = Vec::new();
    for _ in 0..50 {
        let _ = s.write_all(b" ");
        match read_once(&mut s) {
            Seen::Bytes(b) => {
                answer = b;
                break;
            }
            Seen::Closed => break,
            Seen::Nothing => {}
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        answer.contains(
            r#"{"code":"request_timeout","message":"the request body did not come within 1 s"}"#
        ),
        "{answer}"
    );

    // The server goes on, and a body sent at once is taken.
    assert!(server.healthz().starts_with("HTTP/1.1 200"));
    let body = r#"{"batch": [{"type": "track", "message_id": "m1", "customer_id": "c1", "timestamp": "2025-05-02", "event": "view"}]}"#;
    let answer = server.call(&format!(
        "POST /v1/batch HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.addr,
        body.len()
    ));
    assert!(answer.contains(r#""accepted":1"#), "{answer}");
}

#[test]
fn connections_past_the_cap_are_shed_and_logged_until_the_slow_ones_are_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        &dir.path().join("c.db"),
        &["--max-connections", "8", "--header-timeout-secs", "2"],
    );

    // Eight connections that never finish their headers take every slot.
    let mut slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = server.connect(Duration::from_secs(10));
            s.write_all(b"GET /healthz HTTP/1.1\r\n").expect("send");
            s
        })
        .collect();

    // A ninth is closed at once, unanswered, and the log says so.
    let mut ninth = server.connect(Duration::from_secs(10));
    let _ = ninth
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes());
    assert!(
        matches!(read_once(&mut ninth), Seen::Closed),
        "ninth served"
    );
    let line = loop {
        let line = server
            .log
            .recv_timeout(Duration::from_secs(10))
            .expect("a log line on shedding");
        if line.contains("shedding") {
            break line;
        }
    };
    assert!(line.contains("all 8 connection slots taken"), "{line}");
    assert!(line.contains("since the last report: 1"), "{line}");
    assert!(!line.contains("127.0.0.1"), "{line}");

    // The slow ones are cut at their deadline, unanswered; then the server serves again.
    for s in &mut slow {
        assert!(
            matches!(read_once(s), Seen::Closed),
            "a slow one still open"
        );
    }
    assert!(server.healthz().starts_with("HTTP/1.1 200"));
}

#[test]
fn the_open_file_limit_is_raised_and_a_cap_it_cannot_hold_lowered_and_said() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with_open_files(
        &dir.path().join("f.db"),
        &["--max-connections", "5000"],
        256,
        512,
    );
    // 512 files, not 256: the soft limit was raised to the hard one.
    let line = server
        .log
        .recv_timeout(Duration::from_secs(10))
        .expect("a line on the cap");
    // A warning in the log's text form: time, level, where, what.
    assert!(line.contains(" WARN "), "{line}");
    assert!(
        line.ends_with("at most 384 connections at once, not 5000: the process may open 512 files"),
        "{line}"
    );
    assert!(server.healthz().starts_with("HTTP/1.1 200"));
}

#[test]
fn the_log_in_json_names_each_request_by_route_and_never_a_customer_name_phone_or_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("l.db");
    let out = common::siyu(&db, &["token", "create", "--role", "admin"]);
    let token = common::text(&out.stdout).trim().to_owned();
    // Everything that is logged at all, as JSON.
    let server = Server::start_with_env(
        &db,
        &["--log-format", "json"],
        &[("SIYU_LOG__FILTER", "trace")],
    );
    let (id, name, phone) = ("c-secret-7", "王小明", "13800001111");
    let batch = format!(
        r#"{{"batch": [{{"type": "identify", "message_id": "m1", "customer_id": "{id}", "traits": {{"name": "{name}", "phone": "{phone}"}}}},
            {{"type": "order", "message_id": "m2", "customer_id": "{id}", "order_id": "o1", "timestamp": "2026-01-02", "amount": "12.50"}}]}}"#
    );
    let requests = [
        ("POST", "/v1/batch".to_owned(), batch),
        ("GET", format!("/v1/customers/{id}"), String::new()),
        ("GET", format!("/v1/customers/{id}/export"), String::new()),
        (
            "POST",
            format!("/v1/customers/{id}/tags"),
            r#"{"tag": "vip"}"#.to_owned(),
        ),
        (
            "DELETE",
            "/v1/customers/nobody-x-9".to_owned(),
            String::new(),
        ),
        ("GET", format!("/v1/nowhere/{id}"), String::new()),
    ];
    let mut answers = Vec::new();
    for (method, path, body) in &requests {
        answers.push(server.call(&format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            server.addr,
            body.len()
        )));
    }
    assert!(answers[1].starts_with("HTTP/1.1 200"), "{}", answers[1]);
    assert!(answers[4].starts_with("HTTP/1.1 404"), "{}", answers[4]);

    // A line for each request served, then whatever else came.
    let mut lines = Vec::new();
    let mut served = 0;
    while served < requests.len() {
        let line = server
            .log
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("a line for each request; so far: {lines:#?}"));
        served += usize::from(line.contains("request served"));
        lines.push(line);
    }
    lines.extend(server.log.try_iter());

    let mut routes = BTreeSet::new();
    for line in &lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for secret in [id, name, phone, "nobody-x-9"] {
            assert!(!line.contains(secret), "{secret} in the log: {line}");
        }
        if event["fields"]["message"] == "request served" {
            let span = &event["span"];
            assert_eq!(span["name"], "request", "{line}");
            assert!(
                span["status"].is_u64() && span["latency_ms"].is_f64(),
                "{line}"
            );
            routes.insert(format!(
                "{} {} {}",
                span["method"].as_str().unwrap_or("?"),
                span["route"].as_str().unwrap_or("?"),
                span["status"]
            ));
        }
    }
    let expected: BTreeSet<String> = [
        "POST /v1/batch 200",
        "GET /v1/customers/{id} 200",
        "GET /v1/customers/{id}/export 200",
        "POST /v1/customers/{id}/tags 200",
        "DELETE /v1/customers/{id} 404",
        "GET unmatched 404",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(routes, expected, "{lines:#?}");
    // The store's work is in the request's span.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("store job done") && l.contains("/v1/customers/{id}")),
        "{lines:#?}"
    );
}

#[test]
fn sigterm_stops_the_server_after_answering_what_is_in_flight_and_it_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("term.db");
    let mut server = Server::start(&db, &[]);
    assert!(server.healthz().starts_with("HTTP/1.1 200"));
    // A kept-alive connection left idle does not hold the stop up.
    let idle = server.connect(Duration::from_secs(10));
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "siyu serve still runs 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(idle);
    assert!(status.success(), "{status:?}");
    let log: Vec<String> = server.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("stopping")),
        "{}",
        log.join("\n")
    );
    // Nothing listens any more.
    assert!(TcpStream::connect(&server.addr).is_err());
}

#[test]
fn the_server_sweeps_a_tenant_with_rules_when_it_starts_and_records_the_occasion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("sweep.db");
    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "order_id,customer_id,ordered_at,amount\no1,c1,2024-05-01 10:00:00,100\n",
    )
    .expect("write");
    let out = common::siyu(&db, &["import", "orders", &orders.to_string_lossy()]);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    // A segment saved without an evaluation: its members are not current until a sweep.
    {
        let mut store = siyu_store::open(&db.to_string_lossy()).expect("store");
        let tenant = store.tenant("default").expect("tenant");
        let mut tx = store.begin_pool(&tenant).expect("tx");
        tx.save_rule(&siyu_store::StoredRule {
            kind: siyu_core::segment::rules::RuleKind::Segment,
            name: "buyers".to_owned(),
            rule: "orders >= 1".to_owned(),
            created_by: "test".to_owned(),
            created_at: siyu_core::Timestamp::now(),
            purpose: siyu_core::segment::rules::Purpose::Analysis,
        })
        .expect("saved");
        tx.commit().expect("commit");
    }
    let history = || {
        let out = common::siyu(&db, &["segment", "history", "buyers", "--format", "json"]);
        assert!(out.status.success(), "{}", common::text(&out.stderr));
        common::text(&out.stdout)
    };
    assert!(!history().contains("c1"), "{}", history());
    let _server = Server::start(&db, &[]);
    let started = std::time::Instant::now();
    loop {
        let seen = history();
        if seen.contains("c1") {
            assert!(seen.contains("server start"), "{seen}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no sweep 20 s after the server started: {seen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
