//! The ingest pipeline, driven through `app()` with `oneshot`, on a real
//! SQLite database in a temporary directory and a clock the tests move.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use jiff::{SignedDuration, Timestamp};
use tallymark_collector::clock::ManualClock;
use tallymark_collector::config::Config;
use tallymark_collector::{AppState, app, sites, store};
use tower::ServiceExt;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const PEER: &str = "203.0.113.9:5555";

struct Harness {
    dir: tempfile::TempDir,
    state: AppState,
    clock: Arc<ManualClock>,
    peer: SocketAddr,
}

fn harness_with(config: impl FnOnce(&mut Config)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data: dir.path().to_path_buf(),
        ..Config::default()
    };
    config(&mut cfg);
    let conn = store::schema::open(&cfg.db_path()).unwrap();
    sites::add(&conn, "example.com", "Europe/Berlin", 0).unwrap();
    drop(conn);
    // 10:00 in Berlin, in winter.
    let clock = Arc::new(ManualClock::new("2026-01-15T09:00:00Z".parse().unwrap()));
    let state = AppState::open(cfg, clock.clone()).unwrap();
    Harness {
        dir,
        state,
        clock,
        peer: PEER.parse().unwrap(),
    }
}

fn harness() -> Harness {
    harness_with(|_| {})
}

struct Reply {
    status: StatusCode,
    dropped: Option<String>,
    json: serde_json::Value,
}

impl Harness {
    fn router(&self) -> Router {
        app(self.state.clone()).layer(MockConnectInfo(self.peer))
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.router().oneshot(req).await.unwrap();
        assert!(
            resp.headers().get(header::SET_COOKIE).is_none(),
            "never a cookie"
        );
        let status = resp.status();
        assert!(!status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE);
        let dropped = resp
            .headers()
            .get("x-tallymark-dropped")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Reply {
            status,
            dropped,
            json,
        }
    }

    async fn post(&self, body: &str, ua: &str, extra: &[(&str, &str)]) -> Reply {
        let mut req = Request::post("/api/event")
            .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
            .header(header::USER_AGENT, ua);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    async fn pageview(&self, path: &str) -> Reply {
        self.post(&pageview(path), FIREFOX, &[]).await
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.state.store.path()).unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

fn pageview(path: &str) -> String {
    format!(r#"{{"kind":"pageview","site":"example.com","url":"https://example.com{path}"}}"#)
}

#[tokio::test]
async fn a_valid_pageview_is_stored_before_the_202() {
    let h = harness();
    for ct in ["text/plain;charset=UTF-8", "application/json"] {
        let req = Request::post("/api/event")
            .header(header::CONTENT_TYPE, ct)
            .header(header::USER_AGENT, FIREFOX)
            .body(Body::from(pageview("/a")))
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert_eq!(r.json, serde_json::json!({"ok": true}));
        assert_eq!(r.dropped, None);
    }
    assert_eq!(
        h.count("SELECT COUNT(*) FROM events"),
        2,
        "each 202 is committed"
    );
    let (path, browser, os, device, channel): (String, String, String, String, String) = h
        .db()
        .query_row(
            "SELECT path, browser, os, device, channel FROM events LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        (
            path.as_str(),
            browser.as_str(),
            os.as_str(),
            device.as_str(),
            channel.as_str()
        ),
        ("/a", "firefox", "linux", "desktop", "direct")
    );
}

#[tokio::test]
async fn custom_events_keep_name_props_revenue_and_the_sessions_source() {
    let h = harness();
    let landing = r#"{"kind":"pageview","site":"example.com","url":"https://example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=launch","referrer":"https://mail.example.org/inbox?id=secret"}"#;
    assert_eq!(
        h.post(landing, SAFARI, &[]).await.status,
        StatusCode::ACCEPTED
    );
    let purchase = r#"{"kind":"event","site":"example.com","url":"https://example.com/checkout","name":"Purchase","props":{"plan":"pro","seats":3},"revenue":{"amount":49.5,"currency":"EUR"},"screen_width":390}"#;
    assert_eq!(
        h.post(purchase, SAFARI, &[]).await.status,
        StatusCode::ACCEPTED
    );
    let row: (String, String, f64, String, String, String, Option<String>, String) = h
        .db()
        .query_row(
            "SELECT name, props, revenue_amount, revenue_currency, utm_campaign, channel, referrer, device
             FROM events WHERE kind = 'event'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
        )
        .unwrap();
    assert_eq!(row.0, "Purchase");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&row.1).unwrap(),
        serde_json::json!({"plan": "pro", "seats": 3})
    );
    assert_eq!((row.2, row.3.as_str()), (49.5, "EUR"));
    assert_eq!(
        row.4, "launch",
        "the event carries its session's first-touch UTM"
    );
    assert_eq!(row.5, "email");
    assert_eq!(
        row.6.as_deref(),
        Some("mail.example.org/inbox"),
        "no referrer query stored"
    );
    assert_eq!(row.7, "mobile");
    let (pageviews, events, bounce_free): (i64, i64, i64) = h
        .db()
        .query_row(
            "SELECT pageviews, events, interactions FROM sessions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((pageviews, events, bounce_free), (1, 1, 1));
}

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_problem_and_stores_nothing() {
    let h = harness();
    let cases: Vec<(String, &str, StatusCode, &str)> = vec![
        (
            r#"{"kind":"pageview","site":"example.com","url":"ftp://x/"}"#.into(),
            "text/plain",
            StatusCode::BAD_REQUEST,
            "url:",
        ),
        (
            "not json".into(),
            "text/plain",
            StatusCode::BAD_REQUEST,
            "body:",
        ),
        (
            r#"{"kind":"pageview","site":"example.com","url":"https://evil.net/"}"#.into(),
            "text/plain",
            StatusCode::BAD_REQUEST,
            "url: host evil.net does not belong to site example.com",
        ),
        (
            r#"{"kind":"event","site":"example.com","url":"https://example.com/"}"#.into(),
            "text/plain",
            StatusCode::BAD_REQUEST,
            "name:",
        ),
        (
            r#"{"kind":"pageview","site":"unknown.org","url":"https://unknown.org/"}"#.into(),
            "text/plain",
            StatusCode::NOT_FOUND,
            "unknown site \"unknown.org\"",
        ),
        (
            pageview("/"),
            "application/xml",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type: expected application/json or text/plain, got \"application/xml\"",
        ),
        (
            pageview("/"),
            "application/x-www-form-urlencoded",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "add -H 'Content-Type: application/json'",
        ),
        (
            " ".repeat(17 * 1024),
            "text/plain",
            StatusCode::PAYLOAD_TOO_LARGE,
            "16384",
        ),
    ];
    for (body, ct, want, message) in cases {
        let req = Request::post("/api/event")
            .header(header::CONTENT_TYPE, ct)
            .header(header::USER_AGENT, FIREFOX)
            .body(Body::from(body))
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(r.status, want, "{message}");
        let error = r.json["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(message),
            "{error:?} should contain {message:?}"
        );
    }
    let gzip = Request::post("/api/event")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .header(header::USER_AGENT, FIREFOX)
        .body(Body::from(vec![0x1f, 0x8b, 8, 0]))
        .unwrap();
    let r = h.send(gzip).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        r.json["error"],
        "content-encoding: gzip is not read; send the body uncompressed"
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 0);
}

/// A body that stops short (the client went away, or the read deadline of
/// `tallymark serve` cut it off) is a 408 naming the body, not a 413.
#[tokio::test]
async fn a_body_that_stops_short_is_a_408() {
    let h = harness();
    let parts: Vec<Result<&'static str, std::io::Error>> = vec![
        Ok(r#"{"kind":"pageview","#),
        Err(std::io::Error::other("connection reset")),
    ];
    let req = Request::post("/api/event")
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::USER_AGENT, FIREFOX)
        .body(Body::from_stream(futures_util::stream::iter(parts)))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
    let error = r.json["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("body:"), "{error:?}");
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 0);
}

/// An operator deletes the database under the running collector, or moves a
/// backup over it. SQLite would go on committing into the file it has open,
/// acknowledging events no one will ever read, and its WAL, left at the
/// path, would be replayed into the restored file at the next start. So: an
/// event committed after the file went is answered 503, `/healthz` says why,
/// and the WAL at the path is emptied.
#[tokio::test]
async fn a_database_deleted_or_replaced_under_the_collector_refuses_events_loudly() {
    for replace in [false, true] {
        let h = harness();
        assert_eq!(h.pageview("/before").await.status, StatusCode::ACCEPTED);
        let db = h.state.store.path().to_path_buf();
        if replace {
            // A backup made elsewhere (a WAL database, closed cleanly), then
            // moved over the live file.
            let backup = h.dir.path().join("backup.sqlite3");
            let conn = rusqlite::Connection::open(&backup).unwrap();
            conn.execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE restored (n); INSERT INTO restored VALUES (7);",
            )
            .unwrap();
            drop(conn);
            std::fs::rename(&backup, &db).unwrap();
        } else {
            std::fs::remove_file(&db).unwrap();
        }
        let r = h.pageview("/after").await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "replace: {replace}"
        );
        let health = h
            .router()
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = health.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let error = json["error"].as_str().unwrap_or_default();
        assert!(error.contains("deleted or moved away"), "{error}");
        assert!(error.contains(&db.display().to_string()), "{error}");
        assert_eq!(
            h.pageview("/later").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let wal = std::path::PathBuf::from(format!("{}-wal", db.display()));
        let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert_eq!(wal_len, 0, "the WAL left at the path is emptied");
        if replace {
            let restored = rusqlite::Connection::open(&db).unwrap();
            let check: String = restored
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok");
            let n: i64 = restored
                .query_row("SELECT n FROM restored", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 7, "the backup is intact");
        }
    }
}

#[tokio::test]
async fn other_methods_get_405_and_preflight_is_open() {
    let h = harness();
    let r = h
        .send(Request::get("/api/event").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json["error"], "method not allowed");
    let r = h
        .send(Request::get("/no/such/page").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["error"], "not found: no such route");
    let r = h
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let resp = h
        .router()
        .oneshot(
            Request::options("/api/event")
                .header(header::ORIGIN, "https://example.com")
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(resp.status().is_success());
    // A beacon is credentialed: `*` would fail its preflight.
    let h = resp.headers();
    assert_eq!(
        h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://example.com"
    );
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    assert!(
        h[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .is_ok_and(|v| v.contains("content-type")),
        "{h:?}"
    );
}

#[tokio::test]
async fn each_drop_reason_answers_202_with_its_header_and_stores_nothing() {
    let h = harness();
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let spam = r#"{"kind":"pageview","site":"example.com","url":"https://example.com/","referrer":"https://semalt.com/"}"#;
    let cases = [
        (pageview("/"), googlebot, "bot_crawler"),
        (pageview("/"), "", "bot_empty_user_agent"),
        (pageview("/"), "curl/8.5.0", "bot_short_user_agent"),
        (
            pageview("/"),
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
            "bot_automation",
        ),
        (
            pageview("/"),
            "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
            "bot_monitoring",
        ),
        (pageview("/robots.txt"), FIREFOX, "skip_path"),
        (spam.to_string(), FIREFOX, "referrer_spam"),
    ];
    for (body, ua, reason) in cases {
        let r = h.post(&body, ua, &[]).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{reason}");
        assert_eq!(r.dropped.as_deref(), Some(reason));
    }
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 0);

    let with_id = r#"{"kind":"pageview","site":"example.com","url":"https://example.com/","event_id":"retry-1"}"#;
    assert_eq!(h.post(with_id, FIREFOX, &[]).await.dropped, None);
    assert_eq!(
        h.post(with_id, FIREFOX, &[]).await.dropped.as_deref(),
        Some("duplicate")
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 1, "stored once");

    let metrics = h
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(metrics.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_accepted_dropped_and_rejected() {
    let h = harness();
    h.pageview("/").await;
    h.post(&pageview("/robots.txt"), FIREFOX, &[]).await;
    h.post("nope", FIREFOX, &[]).await;
    let resp = h
        .router()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    for line in [
        "tallymark_events_accepted_total{kind=\"pageview\"} 1",
        "tallymark_events_dropped_total{reason=\"skip_path\"} 1",
        "tallymark_events_rejected_total{error=\"invalid_payload\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("tallymark_write_commit_seconds"));
    assert!(text.contains("tallymark_write_queue_depth"));
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let h = harness();
    for spoof in ["1.1.1.1", "8.8.8.8, 9.9.9.9", "garbage"] {
        h.post(
            &pageview("/"),
            FIREFOX,
            &[("x-forwarded-for", spoof), ("x-real-ip", spoof)],
        )
        .await;
    }
    assert_eq!(
        h.count("SELECT COUNT(DISTINCT visitor_id) FROM events"),
        1,
        "the socket peer decides"
    );

    let trusting = harness_with(|c| c.trusted_proxies = "203.0.113.0/24".parse().unwrap());
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        trusting
            .post(&pageview("/"), FIREFOX, &[("x-forwarded-for", client)])
            .await;
    }
    assert_eq!(
        trusting.count("SELECT COUNT(DISTINCT visitor_id) FROM events"),
        3,
        "behind a trusted proxy the forwarded client decides"
    );
}

/// `client_ip_header`: with one header named, a client's forged
/// `CF-Connecting-IP`, `Forwarded`, `X-Real-IP` or `CF-IPCountry` passed on by
/// the proxy changes nothing; with `any` (the default) the first wins, as
/// documented (the proxy must clear the others).
#[tokio::test]
async fn with_one_client_ip_header_the_other_forwarding_headers_are_ignored() {
    use tallymark_collector::config::ClientIpHeader;
    let forged = |i: usize| {
        [
            ("cf-connecting-ip", format!("1.1.1.{i}")),
            ("forwarded", format!("for=2.2.2.{i}")),
            ("x-real-ip", format!("3.3.3.{i}")),
            ("cf-ipcountry", "KP".to_string()),
            // What the proxy appends: the one real client.
            ("x-forwarded-for", format!("4.4.4.{i}, 198.51.100.7")),
        ]
    };
    let run = |header: ClientIpHeader| async move {
        let h = harness_with(|c| {
            c.trusted_proxies = "203.0.113.0/24".parse().unwrap();
            c.client_ip_header = header;
        });
        for i in 0..3 {
            let headers = forged(i);
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.post(&pageview("/"), FIREFOX, &headers).await;
        }
        (
            h.count("SELECT COUNT(DISTINCT visitor_id) FROM events"),
            h.count("SELECT COUNT(*) FROM events WHERE country IS NOT NULL"),
        )
    };
    // Only X-Forwarded-For, walked from the right: one visitor, no country.
    assert_eq!(run(ClientIpHeader::XForwardedFor).await, (1, 0));
    // Any: CF-Connecting-IP first, so each forged one is a new visitor.
    assert_eq!(run(ClientIpHeader::Any).await, (3, 3));
    // Only CF-Connecting-IP (behind Cloudflare): its address and country.
    assert_eq!(run(ClientIpHeader::CfConnectingIp).await, (3, 3));
    assert!(
        "X-Forwarded-For"
            .parse::<ClientIpHeader>()
            .is_ok_and(|h| h == ClientIpHeader::XForwardedFor)
    );
    assert!("via".parse::<ClientIpHeader>().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_requests_of_one_visitor_make_one_visitor_and_one_session() {
    let h = harness();
    let router = h.router();
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let router = router.clone();
            tokio::spawn(async move {
                let req = Request::post("/api/event")
                    .header(header::USER_AGENT, FIREFOX)
                    .body(Body::from(pageview(&format!("/p{}", i % 7))))
                    .unwrap();
                router.oneshot(req).await.unwrap().status()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::ACCEPTED);
    }
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 500);
    assert_eq!(h.count("SELECT COUNT(DISTINCT visitor_id) FROM events"), 1);
    assert_eq!(h.count("SELECT COUNT(DISTINCT session_id) FROM events"), 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM sessions"), 1);
    assert_eq!(
        h.count("SELECT pageviews FROM sessions"),
        500,
        "the newest snapshot won"
    );
    assert_eq!(
        h.count("SELECT COUNT(*) FROM salts WHERE day = '2026-01-15'"),
        1
    );
}

#[tokio::test]
async fn a_burst_is_one_session_split_after_thirty_idle_minutes() {
    let h = harness();
    for i in 0..200 {
        h.pageview(&format!("/page/{}", i % 10)).await;
        h.clock.advance(SignedDuration::from_secs(5));
    }
    assert_eq!(h.count("SELECT COUNT(DISTINCT session_id) FROM events"), 1);
    h.clock.advance(SignedDuration::from_mins(29));
    h.pageview("/still").await;
    assert_eq!(h.count("SELECT COUNT(DISTINCT session_id) FROM events"), 1);
    h.clock.advance(SignedDuration::from_mins(31));
    h.pageview("/again").await;
    assert_eq!(h.count("SELECT COUNT(DISTINCT session_id) FROM events"), 2);
    let (entry, exit, pageviews, duration): (String, String, i64, i64) = h
        .db()
        .query_row(
            "SELECT entry_path, exit_path, pageviews, last_ms - started_ms FROM sessions ORDER BY started_ms LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (entry.as_str(), exit.as_str(), pageviews),
        ("/page/0", "/still", 201)
    );
    assert_eq!(duration, (199 * 5 + 5 + 29 * 60) * 1000);
}

#[tokio::test]
async fn a_session_crossing_the_sites_midnight_continues() {
    let h = harness();
    // 23:50 in Berlin.
    h.clock.set("2026-01-15T22:50:00Z".parse().unwrap());
    h.state.maintain().await.unwrap();
    h.pageview("/before").await;
    h.clock.advance(SignedDuration::from_mins(20));
    h.pageview("/after").await;
    assert_eq!(h.count("SELECT COUNT(DISTINCT session_id) FROM events"), 1);
    assert_eq!(h.count("SELECT COUNT(DISTINCT visitor_id) FROM events"), 1);
    // The same browser after that session ended is today's visitor.
    h.clock.advance(SignedDuration::from_mins(45));
    h.pageview("/later").await;
    assert_eq!(h.count("SELECT COUNT(DISTINCT session_id) FROM events"), 2);
}

/// A visit still going at midnight + the session timeout, when yesterday's
/// salt is deleted, is still one visit of one visitor.
#[tokio::test]
async fn a_session_crossing_midnight_continues_after_yesterdays_salt_is_gone() {
    let h = harness();
    // 23:40 in Berlin, then a page every 12 minutes until 01:04.
    h.clock.set("2026-01-15T22:40:00Z".parse().unwrap());
    h.state.maintain().await.unwrap();
    for i in 0..8 {
        if i > 0 {
            h.clock.advance(SignedDuration::from_mins(12));
        }
        // Upkeep deletes yesterday's salt once midnight + 30 min passed.
        h.state.maintain().await.unwrap();
        h.pageview(&format!("/p{i}")).await;
    }
    assert_eq!(
        h.count("SELECT COUNT(*) FROM salts WHERE day = '2026-01-15'"),
        0,
        "yesterday's salt is deleted on time"
    );
    assert_eq!(h.count("SELECT COUNT(DISTINCT session_id) FROM events"), 1);
    assert_eq!(h.count("SELECT COUNT(DISTINCT visitor_id) FROM events"), 1);
    assert_eq!(h.count("SELECT pageviews FROM sessions"), 8);
    // Idle past the timeout: a new visit, under today's id.
    h.clock.advance(SignedDuration::from_mins(31));
    h.state.maintain().await.unwrap();
    h.pageview("/next").await;
    assert_eq!(h.count("SELECT COUNT(DISTINCT session_id) FROM events"), 2);
    assert_eq!(h.count("SELECT COUNT(DISTINCT visitor_id) FROM events"), 2);
}

#[tokio::test]
async fn yesterdays_salt_is_deleted_after_rotation_and_gone_from_disk() {
    let h = harness();
    h.pageview("/").await;
    let old: Vec<u8> = h
        .db()
        .query_row("SELECT salt FROM salts WHERE day = '2026-01-15'", [], |r| {
            r.get(0)
        })
        .unwrap();
    // A day later, past midnight plus the session timeout.
    h.clock
        .set("2026-01-16T09:00:00Z".parse::<Timestamp>().unwrap());
    h.state.maintain().await.unwrap();
    h.pageview("/").await;
    assert_eq!(
        h.count("SELECT COUNT(*) FROM salts WHERE day = '2026-01-15'"),
        0
    );
    assert_eq!(
        h.count("SELECT COUNT(DISTINCT visitor_id) FROM events"),
        2,
        "ids rotate daily"
    );
    for entry in walk(h.dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(old.len()).any(|w| w == old.as_slice()),
            "old salt bytes still in {}",
            entry.display()
        );
    }
}

#[tokio::test]
async fn a_full_write_queue_answers_503_with_retry_after() {
    let h = harness_with(|c| c.queue_capacity = 1);
    // Today's salt exists before traffic (as after `serve`'s first upkeep).
    h.state.maintain().await.unwrap();
    // Park the writer so the queue cannot drain.
    let (release, parked) = std::sync::mpsc::channel::<()>();
    let store = h.state.clone();
    let blocker = tokio::spawn(async move {
        store
            .store
            .maintain(move |_| {
                let _ = parked.recv();
                Ok(())
            })
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let router = h.router();
    let first = tokio::spawn(
        router.clone().oneshot(
            Request::post("/api/event")
                .header(header::USER_AGENT, FIREFOX)
                .body(Body::from(pageview("/1")))
                .unwrap(),
        ),
    );
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let resp = router
        .oneshot(
            Request::post("/api/event")
                .header(header::USER_AGENT, FIREFOX)
                .body(Body::from(pageview("/2")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 1);
    // The refused event left no trace in the live session.
    assert_eq!(h.pageview("/3").await.status, StatusCode::ACCEPTED);
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 2);
    assert_eq!(h.count("SELECT pageviews FROM sessions"), 2);
    assert_eq!(h.count("SELECT exit_path = '/3' FROM sessions"), 1);
}

/// A full disk: SQLite's own `SQLITE_FULL` on the writer's connection (its
/// `max_page_count` capped at the database's size, as a full file system
/// does; a 2 MB tmpfs filled up gives the real binary the same answers).
/// An event whose batch did not commit is a 503 with `Retry-After`, never a
/// 202 and never a 500; the failure is counted; the writer survives and
/// stores again once there is room, and the live session counted only what
/// was stored.
#[tokio::test]
async fn a_full_disk_answers_503_and_the_writer_recovers_once_there_is_room() {
    let h = harness();
    h.state.maintain().await.unwrap();
    assert_eq!(h.pageview("/first").await.status, StatusCode::ACCEPTED);
    let cap = |pages: Option<i64>| {
        h.state.store.maintain(move |conn| {
            let now: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            conn.pragma_update(None, "max_page_count", pages.unwrap_or(now))
        })
    };
    cap(None).await.unwrap();
    let (mut acked, mut refused) = (0, 0);
    for i in 0..40 {
        // Long paths (about 1.8 KB): a new page is needed within a few events.
        let body = pageview(&format!("/{i}/{}", "x".repeat(1800)));
        let resp = h
            .router()
            .oneshot(
                Request::post("/api/event")
                    .header(header::USER_AGENT, FIREFOX)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        match resp.status() {
            StatusCode::ACCEPTED => acked += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
                let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(
                    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
                    serde_json::json!({"error": "storage is unavailable; retry shortly"})
                );
            }
            other => panic!("a full disk answered {other}"),
        }
    }
    assert!(refused > 0, "the disk never filled ({acked} stored)");
    // /healthz says so while no commit works (the last batch failed).
    let health = |h: &Harness| {
        let router = h.router();
        async move {
            let resp = router
                .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let (status, body) = health(&h).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("the last commit failed"), "{body}");
    // Every 202 is a row; no 503 left one.
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 1 + acked);
    let text = h.state.metrics.encode();
    assert!(
        text.contains("tallymark_write_commit_failures_total ")
            && !text.contains("tallymark_write_commit_failures_total 0"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "tallymark_events_rejected_total{{error=\"storage_unavailable\"}} {refused}"
        )),
        "{text}"
    );

    // Room again: the same writer stores the next event, and is healthy.
    cap(Some(1 << 30)).await.unwrap();
    assert_eq!(h.pageview("/after").await.status, StatusCode::ACCEPTED);
    assert_eq!(health(&h).await, (StatusCode::OK, "ok".to_string()));
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 2 + acked);
    assert_eq!(h.count("SELECT pageviews FROM sessions"), 2 + acked);
    assert_eq!(h.count("SELECT exit_path = '/after' FROM sessions"), 1);
}

#[tokio::test]
async fn a_duplicate_found_by_the_database_after_a_restart_is_not_counted_in_the_session() {
    let h = harness();
    let body = r#"{"kind":"pageview","site":"example.com","url":"https://example.com/a","event_id":"retry-1"}"#;
    assert_eq!(
        h.post(body, FIREFOX, &[]).await.status,
        StatusCode::ACCEPTED
    );
    // A restart forgets the in-memory recent ids: the database's unique
    // index is what catches the retried beacon now.
    let config = h.state.config.clone();
    let clock = h.clock.clone();
    drop(h.state);
    clock.advance(SignedDuration::from_mins(1));
    let h = Harness {
        state: AppState::open(config, clock.clone()).unwrap(),
        dir: h.dir,
        clock,
        peer: h.peer,
    };
    let again = h.post(body, FIREFOX, &[]).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.dropped.as_deref(), Some("duplicate"));
    assert_eq!(h.pageview("/b").await.status, StatusCode::ACCEPTED);
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 2);
    assert_eq!(h.count("SELECT COUNT(*) FROM sessions"), 1);
    assert_eq!(h.count("SELECT pageviews FROM sessions"), 2);
}

#[tokio::test]
async fn live_sessions_survive_a_restart() {
    let h = harness();
    h.pageview("/one").await;
    let config = h.state.config.clone();
    let clock = h.clock.clone();
    drop(h.state);
    clock.advance(SignedDuration::from_mins(10));
    let again = AppState::open(config, clock.clone()).unwrap();
    let h2 = Harness {
        dir: h.dir,
        state: again,
        clock,
        peer: h.peer,
    };
    h2.pageview("/two").await;
    assert_eq!(h2.count("SELECT COUNT(DISTINCT session_id) FROM events"), 1);
    assert_eq!(h2.count("SELECT pageviews FROM sessions"), 2);
}

#[tokio::test]
async fn a_sharp_volume_fall_raises_the_metric() {
    let h = harness();
    for _ in 0..120 {
        h.pageview("/").await;
    }
    h.clock.advance(SignedDuration::from_hours(25));
    h.state.maintain().await.unwrap();
    for _ in 0..10 {
        h.pageview("/").await;
    }
    h.state.check_volume().unwrap();
    let text = h.state.metrics.encode();
    assert!(
        text.contains("tallymark_volume_drop{site=\"example.com\"} 1"),
        "{text}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

mod never_a_5xx {
    use super::*;
    use proptest::prelude::*;

    fn any_body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            // Near-valid payloads with hostile values in every field.
            (
                "\\PC{0,40}",
                "\\PC{0,60}",
                proptest::option::of("\\PC{0,60}"),
                proptest::option::of(any::<i64>()),
                proptest::option::of("\\PC{0,20}"),
            )
                .prop_map(|(site, url, referrer, width, name)| {
                    serde_json::json!({
                        "kind": if name.is_some() { "event" } else { "pageview" },
                        "site": site, "url": url, "referrer": referrer,
                        "screen_width": width, "name": name,
                        "props": {"k": url.clone()}, "event_id": referrer,
                    })
                    .to_string()
                    .into_bytes()
                }),
            "https?://(www\\.)?example\\.com/\\PC{0,30}".prop_map(|url| {
                format!(
                    r#"{{"kind":"pageview","site":"example.com","url":{}}}"#,
                    serde_json::json!(url)
                )
                .into_bytes()
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn no_input_gets_a_server_error(
            body in any_body(),
            content_type in prop_oneof![Just("text/plain".to_string()), Just("application/json".to_string()), "\\PC{0,20}".prop_map(String::from)],
            ua in "\\PC{0,80}",
            xff in "\\PC{0,40}",
        ) {
            let h = harness();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let status = runtime.block_on(async {
                let mut req = Request::post("/api/event");
                if let Ok(v) = axum::http::HeaderValue::from_str(&content_type) {
                    req = req.header(header::CONTENT_TYPE, v);
                }
                if let Ok(v) = axum::http::HeaderValue::from_str(&ua) {
                    req = req.header(header::USER_AGENT, v);
                }
                if let Ok(v) = axum::http::HeaderValue::from_str(&xff) {
                    req = req.header("x-forwarded-for", v);
                }
                let resp = h.router().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
                let status = resp.status();
                let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                if status != StatusCode::ACCEPTED {
                    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    assert!(json["error"].is_string(), "every refusal names its problem");
                }
                status
            });
            prop_assert!(!status.is_server_error(), "{status}");
        }
    }
}

/// Plausible's trackers and Events API post their own format to the same
/// path; it is recorded like the SDK's (see `tallymark_core::intake`).
#[tokio::test]
async fn plausible_format_events_are_recorded_like_the_sdks() {
    let h = harness();
    // Plausible's script / @plausible-analytics/tracker: short keys, text/plain.
    let pageview = r#"{"n":"pageview","v":36,"u":"https://www.example.com/pricing?utm_source=newsletter&utm_campaign=launch#faq","d":"example.com","r":"https://duckduckgo.com/","w":1440}"#;
    let r = h.post(pageview, FIREFOX, &[]).await;
    assert_eq!((r.status, r.dropped), (StatusCode::ACCEPTED, None));
    // Its engagement ping when the page is left: time on the page and
    // scroll depth, stored apart (never an event).
    let engagement = r#"{"n":"engagement","sd":64,"d":"example.com","u":"https://www.example.com/pricing","p":{},"e":18250,"v":36}"#;
    let r = h.post(engagement, FIREFOX, &[]).await;
    assert_eq!((r.status, r.dropped), (StatusCode::ACCEPTED, None));
    let (path, ms, depth): (String, i64, i64) = h
        .db()
        .query_row(
            "SELECT path, engaged_ms, scroll_depth FROM engagements",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((path.as_str(), ms, depth), ("/pricing", 18250, 64));
    // A custom event with props and revenue (`$`, amount as a string).
    let purchase = r#"{"n":"Purchase","v":36,"u":"https://www.example.com/checkout","d":"example.com","r":null,"p":{"plan":"pro","seats":3,"note":""},"$":{"amount":"49.50","currency":"eur"}}"#;
    assert_eq!(
        h.post(purchase, FIREFOX, &[]).await.status,
        StatusCode::ACCEPTED
    );
    // The Events API from a server: long names, application/json.
    let api = r#"{"name":"Signup","url":"https://example.com/join","domain":"example.com","screen_width":1440,"props":"{\"source\":\"api\"}"}"#;
    let r = h
        .post(api, FIREFOX, &[("content-type", "application/json")])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);

    /// kind, path, name, props, revenue amount
    type Row = (String, String, Option<String>, Option<String>, Option<f64>);
    let rows: Vec<Row> = {
        let db = h.db();
        let mut stmt = db
            .prepare("SELECT kind, path, name, props, revenue_amount FROM events ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("pageview", "/pricing")
    );
    assert_eq!(rows[1].2.as_deref(), Some("Purchase"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(rows[1].3.as_deref().unwrap()).unwrap(),
        serde_json::json!({"plan": "pro", "seats": 3}),
        "an empty value is left out, as Plausible does"
    );
    assert_eq!(rows[1].4, Some(49.5));
    assert_eq!(rows[2].2.as_deref(), Some("Signup"));
    assert_eq!(rows[2].3.as_deref(), Some(r#"{"source":"api"}"#));
    let (visits, pageviews, events, source, campaign): (i64, i64, i64, String, String) = h
        .db()
        .query_row(
            "SELECT COUNT(*), SUM(pageviews), SUM(events), MAX(utm_source), MAX(utm_campaign) FROM sessions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        (visits, pageviews, events),
        (1, 1, 2),
        "one visit, two custom events: the ping is none"
    );
    assert_eq!(
        (source.as_str(), campaign.as_str()),
        ("newsletter", "launch")
    );
}

#[tokio::test]
async fn plausible_domain_lists_record_once_for_the_first_registered_site() {
    let h = harness();
    let body = |d: &str| format!(r#"{{"n":"pageview","u":"https://blog.example.com/","d":"{d}"}}"#);
    for list in [
        "www.example.com,rollup.example",
        "rollup.example, example.com",
    ] {
        let r = h.post(&body(list), FIREFOX, &[]).await;
        assert_eq!(
            (r.status, r.dropped),
            (StatusCode::ACCEPTED, None),
            "{list}"
        );
    }
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 2);
    let r = h
        .post(&body("rollup.example,other.example"), FIREFOX, &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let error = r.json["error"].as_str().unwrap();
    assert!(
        error.starts_with(r#"unknown site "rollup.example""#),
        "{error}"
    );
    // Errors name Plausible's field.
    let r = h
        .post(r#"{"n":"pageview","d":"example.com"}"#, FIREFOX, &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["error"], "url: required");
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 2);
}

/// `interactive: false` (the SDK's `track(…, {interactive: false})`,
/// Plausible's `i: false`): counted as an event, not as an interaction, so
/// the visit still bounces.
#[tokio::test]
async fn a_non_interactive_event_leaves_the_visit_a_bounce() {
    let h = harness();
    assert_eq!(h.pageview("/guide").await.status, StatusCode::ACCEPTED);
    let quiet = r#"{"kind":"event","site":"example.com","url":"https://example.com/guide","name":"Scrolled","interactive":false}"#;
    assert_eq!(
        h.post(quiet, FIREFOX, &[]).await.status,
        StatusCode::ACCEPTED
    );
    let plausible =
        r#"{"n":"Video autoplay","u":"https://example.com/guide","d":"example.com","i":false}"#;
    assert_eq!(
        h.post(plausible, FIREFOX, &[]).await.status,
        StatusCode::ACCEPTED
    );
    let row = |h: &Harness| -> (i64, i64, i64) {
        h.db()
            .query_row(
                "SELECT pageviews, events, interactions FROM sessions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    };
    assert_eq!(row(&h), (1, 2, 0), "two events, no interaction: a bounce");
    let click = r#"{"kind":"event","site":"example.com","url":"https://example.com/guide","name":"Clicked"}"#;
    assert_eq!(
        h.post(click, FIREFOX, &[]).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(row(&h), (1, 3, 1), "an interactive one ends the bounce");
}

/// Umami's tracker and `@umami/node` post to `/api/send`; the site is the
/// registered domain the page's host belongs to (Umami's website id is not
/// needed), and `identify` keeps nothing.
#[tokio::test]
async fn umami_format_events_at_api_send() {
    let h = harness();
    let send = |body: &'static str| {
        Request::post("/api/send")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, FIREFOX)
            .body(Body::from(body))
            .unwrap()
    };
    let view = r#"{"type":"event","payload":{"website":"4fb7fa4c-5b46-438d-94b3-3a8fb9bc2e8b","hostname":"docs.example.com","screen":"1440x900","language":"en-US","title":"Docs","url":"/guide","referrer":"https://duckduckgo.com/"}}"#;
    let r = h.send(send(view)).await;
    assert_eq!((r.status, r.dropped), (StatusCode::ACCEPTED, None));
    let who = r#"{"type":"identify","payload":{"website":"w","hostname":"example.com","url":"/","data":{"email":"someone@example.com"}}}"#;
    let r = h.send(send(who)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.dropped.as_deref(), Some("identify"));
    let elsewhere =
        r#"{"type":"event","payload":{"website":"w","hostname":"unknown.org","url":"/"}}"#;
    assert_eq!(h.send(send(elsewhere)).await.status, StatusCode::NOT_FOUND);
    let (host, path, source): (String, String, String) = h
        .db()
        .query_row("SELECT hostname, path, source FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(
        (host.as_str(), path.as_str(), source.as_str()),
        ("docs.example.com", "/guide", "DuckDuckGo")
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 1);
}

/// Engagement (time on a page, scroll depth) belongs to the visit going on:
/// it is stored apart, never counts as a view or an event, never moves the
/// visit's end, and with no visit going on it is dropped.
#[tokio::test]
async fn engagement_joins_the_live_visit_and_changes_nothing_in_it() {
    let h = harness();
    let engaged = |path: &str, ms: u32| {
        format!(
            r#"{{"kind":"engagement","site":"example.com","url":"https://example.com{path}","engaged_ms":{ms},"scroll_depth":40}}"#
        )
    };
    // No visit yet: nothing to join.
    let r = h.post(&engaged("/a", 5000), FIREFOX, &[]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.dropped.as_deref(), Some("engagement"));
    assert_eq!(h.count("SELECT COUNT(*) FROM engagements"), 0);

    assert_eq!(h.pageview("/a").await.status, StatusCode::ACCEPTED);
    let visit = |h: &Harness| -> (i64, i64, i64, i64) {
        h.db()
            .query_row(
                "SELECT id, pageviews, events, last_ms - started_ms FROM sessions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap()
    };
    let before = visit(&h);
    h.clock.advance(SignedDuration::from_secs(20));
    let r = h.post(&engaged("/a", 19_000), FIREFOX, &[]).await;
    assert_eq!((r.status, r.dropped), (StatusCode::ACCEPTED, None));
    assert_eq!(visit(&h), before, "the visit is as it was");
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 1);
    let row: (i64, String, i64, i64) = h
        .db()
        .query_row(
            "SELECT session_id, path, engaged_ms, scroll_depth FROM engagements",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(row, (before.0, "/a".to_string(), 19_000, 40));
    // Once the visit is over (30 idle minutes), a late ping is dropped.
    h.clock.advance(SignedDuration::from_mins(31));
    let r = h.post(&engaged("/a", 1000), FIREFOX, &[]).await;
    assert_eq!(r.dropped.as_deref(), Some("engagement"));
    assert_eq!(h.count("SELECT COUNT(*) FROM engagements"), 1);
}

/// GoatCounter's count.js loads an image from `/count?p=…`: the site is
/// the page's host (its `Referer`), or the one named in the endpoint
/// (`/count/example.com`); `e=true` is an event named by `p`, `b` non-zero
/// a driven browser. Each answer is an image.
#[tokio::test]
async fn goatcounter_hits_at_count() {
    let h = harness();
    let hit = |uri: &str, referer: Option<&str>| {
        let mut req = Request::get(uri).header(header::USER_AGENT, SAFARI);
        if let Some(r) = referer {
            req = req.header(header::REFERER, r);
        }
        req.body(Body::empty()).unwrap()
    };
    let page = "/count?p=%2Fguide%3Futm_source%3Dnewsletter&r=https%3A%2F%2Fnews.ycombinator.com%2F&t=Guide&e=false&s=390%2C844%2C3&b=0&q=%3Futm_source%3Dnewsletter&rnd=x1y2z";
    let resp = h
        .router()
        .oneshot(hit(page, Some("https://www.example.com/")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "image/gif");
    let gif = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(gif.starts_with(b"GIF89a"), "an image");
    let r = h
        .send(hit(
            "/count?p=signup-click&t=Sign%20up&e=true&s=390%2C844%2C3&b=0&rnd=a",
            Some("https://example.com/"),
        ))
        .await;
    assert_eq!((r.status, r.dropped), (StatusCode::ACCEPTED, None));
    // Named in the endpoint, with no Referer (a no-referrer page).
    let r = h
        .send(hit("/count/example.com?p=%2Fabout&rnd=b", None))
        .await;
    assert_eq!((r.status, r.dropped), (StatusCode::ACCEPTED, None));
    // A canonical path (`p`) and the page's own query (`q`): its UTM counts;
    // an event on a page of the site is placed on that page.
    let canonical = Request::get("/count?p=%2Fpost&q=%3Futm_source%3Dmastodon&rnd=c")
        .header(header::USER_AGENT, FIREFOX)
        .header(
            header::REFERER,
            "https://example.com/post?utm_source=mastodon",
        )
        .body(Body::empty())
        .unwrap();
    let r = h.send(canonical).await;
    assert_eq!((r.status, r.dropped), (StatusCode::ACCEPTED, None));
    let click = Request::get("/count?p=share&e=true&rnd=d")
        .header(header::USER_AGENT, FIREFOX)
        .header(header::REFERER, "https://example.com/post")
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(click).await.status, StatusCode::ACCEPTED);
    // A driven browser, as the script saw it: dropped, nothing stored.
    let r = h
        .send(hit("/count?p=%2F&b=153", Some("https://example.com/")))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.dropped.as_deref(), Some("bot_automation"));
    // What cannot be placed is a 400 naming it.
    let r = h.send(hit("/count?p=%2F", None)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json["error"].as_str().unwrap().starts_with("site:"),
        "{}",
        r.json
    );
    let r = h
        .send(hit("/count?r=x", Some("https://example.com/")))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json["error"].as_str().unwrap().starts_with("p:"),
        "{}",
        r.json
    );
    let r = h
        .send(hit("/count?p=%2F", Some("https://other.org/")))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.send(hit("/count/%FF?p=%2F", None)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json["error"].as_str().unwrap().starts_with("site:"),
        "{}",
        r.json
    );
    // A link checker's HEAD records nothing.
    let head = Request::head("/count?p=%2Fhead")
        .header(header::USER_AGENT, SAFARI)
        .header(header::REFERER, "https://example.com/")
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(head).await.status, StatusCode::OK);
    type Row = (
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let rows: Vec<Row> = h
        .db()
        .prepare(
            "SELECT kind, name, path, source, utm_source, screen_width FROM events ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "pageview".into(),
                None,
                "/guide".into(),
                Some("newsletter".into()),
                Some("newsletter".into()),
                Some(390)
            ),
            (
                "event".into(),
                Some("signup-click".into()),
                "/".into(),
                Some("newsletter".into()),
                Some("newsletter".into()),
                Some(390)
            ),
            (
                "pageview".into(),
                None,
                "/about".into(),
                Some("newsletter".into()),
                Some("newsletter".into()),
                None
            ),
            (
                "pageview".into(),
                None,
                "/post".into(),
                Some("Mastodon".into()),
                Some("mastodon".into()),
                None
            ),
            (
                "event".into(),
                Some("share".into()),
                "/post".into(),
                Some("Mastodon".into()),
                Some("mastodon".into()),
                None
            ),
        ]
    );
}
