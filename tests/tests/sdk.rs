//! The browser SDK end to end: the script tag served by the real collector,
//! driven in real Chromium (`tests/browser/sdk.mjs`), checked against the
//! rows in the collector's SQLite database.

use std::time::Duration;

use serde_json::{Value, json};
use tallymark_e2e::{Collector, browser};

const WAIT: Duration = Duration::from_secs(10);

fn run(collector: &Collector, scenario: &str) -> Value {
    let base = collector.url("");
    browser("sdk.mjs", &[scenario, base.trim_end_matches('/')])
}

/// `(kind, name, path)` of every stored event, in order.
fn events(collector: &Collector) -> Vec<(String, Option<String>, String)> {
    let conn = rusqlite::Connection::open_with_flags(
        collector.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open db");
    let mut stmt = conn
        .prepare("SELECT kind, name, path FROM events ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn pv(path: &str) -> (String, Option<String>, String) {
    ("pageview".into(), None, path.into())
}

fn ev(name: &str, path: &str) -> (String, Option<String>, String) {
    ("event".into(), Some(name.into()), path.into())
}

fn props(collector: &Collector, name: &str) -> Value {
    let rows: Vec<Vec<Option<String>>> = collector.query(&format!(
        "SELECT props FROM events WHERE name = '{name}' ORDER BY id"
    ));
    let text = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_else(|| panic!("no props for {name}"));
    serde_json::from_str(&text).expect("props are JSON")
}

fn assert_clean(report: &Value) {
    assert_eq!(report["errors"], json!([]), "console errors: {report}");
    assert_eq!(report["pageErrors"], json!([]), "page errors: {report}");
}

#[test]
fn script_tag_counts_loads_spa_navigations_events_and_outbound_clicks() {
    let collector = Collector::start();
    let report = run(&collector, "script");
    assert_clean(&report);
    assert!(
        report["types"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t == "ping")),
        "all sent with sendBeacon: {report}"
    );
    assert_eq!(report["cookies"], json!([]), "no cookies");
    let storage = &report["storage"];
    assert_eq!(storage["localStorage"], 0);
    assert_eq!(storage["sessionStorage"], 0);
    assert_eq!(storage["indexedDB"], 0);
    assert_eq!(storage["cookie"], "");

    assert_eq!(
        collector.wait_for_count("SELECT COUNT(*) FROM events", 9, WAIT),
        9
    );
    assert_eq!(
        events(&collector),
        vec![
            pv("/spa"),
            pv("/spa"),
            pv("/spa/page1"),
            pv("/spa/page2"),
            pv("/spa/page3"),
            ev("Signup", "/spa/page3"),
            ev("Scrolled", "/spa/page3"),
            pv("/spa/inside"),
            ev("Outbound Link: Click", "/spa/inside"),
        ],
        "one view per load, one per SPA navigation, none for replaceState of the same URL"
    );
    assert_eq!(
        props(&collector, "Signup"),
        json!({"plan": "pro \"annual\"", "seats": 3, "trial": true})
    );
    let revenue: Vec<Vec<rusqlite::types::Value>> = collector.query(
        "SELECT revenue_amount, revenue_currency, screen_width FROM events WHERE name = 'Signup'",
    );
    assert_eq!(
        revenue,
        vec![vec![
            rusqlite::types::Value::Real(19.99),
            rusqlite::types::Value::Text("EUR".into()),
            rusqlite::types::Value::Integer(1280),
        ]]
    );
    // `{interactive: false}` travels in the body (the session's bounce
    // ignores the event: collector/tests/ingest.rs).
    let scrolled: Vec<&str> = report["beacons"]
        .as_array()
        .map(|b| b.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let scrolled: Vec<&&str> = scrolled.iter().filter(|b| b.contains("Scrolled")).collect();
    assert_eq!(scrolled.len(), 1, "{report}");
    assert!(scrolled[0].contains(r#""interactive":false"#), "{report}");
    assert!(
        report["beacons"].as_array().is_some_and(|b| b
            .iter()
            .filter(|b| b.as_str().is_some_and(|b| b.contains("interactive")))
            .count()
            == 1),
        "only that event says it: {report}"
    );
    let port = collector.port;
    let out = props(&collector, "Outbound Link: Click");
    let url = out["url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/elsewhere"),
        "{out} (collector on {port})"
    );
}

#[test]
fn a_pageview_and_an_event_sent_while_leaving_arrive() {
    let collector = Collector::start();
    let report = run(&collector, "pagehide");
    assert_clean(&report);
    collector.wait_for_count("SELECT COUNT(*) FROM events", 3, WAIT);
    // Both leave in the same pagehide: either may land first.
    let mut got = events(&collector);
    if let Some(tail) = got.get_mut(1..) {
        tail.sort();
    }
    assert_eq!(
        got,
        vec![pv("/leave"), ev("Leave", "/leave/bye"), pv("/leave/bye")]
    );
}

#[test]
fn without_send_beacon_the_fetch_fallback_delivers() {
    let collector = Collector::start();
    let report = run(&collector, "fallback");
    assert_clean(&report);
    assert_eq!(report["sendBeacon"], "undefined");
    assert_eq!(report["types"], json!(["fetch", "fetch"]), "{report}");
    collector.wait_for_count("SELECT COUNT(*) FROM events", 2, WAIT);
    assert_eq!(
        events(&collector),
        vec![pv("/fallback"), ev("Fallback", "/fallback")]
    );
    assert_eq!(props(&collector, "Fallback"), json!({"ok": true}));
}

#[test]
fn a_refusing_send_beacon_falls_back_to_fetch_at_the_data_api_endpoint() {
    let collector = Collector::start();
    let report = run(&collector, "refused");
    assert_clean(&report);
    assert_eq!(report["refused"], 1, "sendBeacon was asked first: {report}");
    assert_eq!(report["altTypes"], json!(["fetch"]), "{report}");
    assert_eq!(
        report["types"],
        json!([]),
        "nothing to the default endpoint"
    );
    collector.wait_for_count("SELECT COUNT(*) FROM events", 1, WAIT);
    assert_eq!(events(&collector), vec![pv("/refused")]);
}

#[test]
fn a_hostile_page_and_a_collector_that_is_down_never_see_an_exception() {
    let collector = Collector::start();
    let report = run(&collector, "hostile");
    assert_clean(&report);
    assert_eq!(report["after"], "function", "{report}");
    assert_eq!(report["afterDown"], true, "{report}");
    // The only console errors with the collector down are Chromium's own
    // network log lines, never an exception from the SDK.
    for e in report["downErrors"].as_array().into_iter().flatten() {
        let e = e.as_str().unwrap_or_default();
        assert!(e.contains("net::ERR_CONNECTION_REFUSED"), "{e}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        collector.wait_for_count("SELECT COUNT(*) FROM events", 0, WAIT),
        0
    );
}

#[test]
fn opt_ins_and_opt_outs() {
    let collector = Collector::start();
    let report = run(&collector, "options");
    assert_clean(&report);
    assert_eq!(report["prerenderBeacons"], 0, "nothing while prerendering");
    assert_eq!(report["notFoundStatus"], 404);
    assert_eq!(report["optOutBeacons"], 0, "localhost and tallymark_ignore");
    collector.wait_for_count("SELECT COUNT(*) FROM events", 8, WAIT);
    // The 404 page's view and event leave together, and so do the shown
    // prerendered page's view and what it queued (sent in that order, as
    // beacons at once): either may land first.
    let mut got = events(&collector);
    for group in [0..3, 6..8] {
        if let Some(g) = got.get_mut(group) {
            g.sort();
        }
    }
    assert_eq!(
        got,
        vec![
            // Shown: the view and what the prerendered page queued.
            ev("Hero", "/pre/moved"),
            ev("Loaded", "/pre/moved"),
            pv("/pre/moved"),
            pv("/hash"),
            pv("/hash#/one"),
            // Clicked after a jump to the anchor #install: not part of the path.
            ev("File Download", "/hash"),
            ev("404", "/missing-page"),
            pv("/missing-page"),
        ]
    );
    let dl = props(&collector, "File Download");
    assert!(
        dl["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/files/report.pdf")),
        "{dl}"
    );
    assert_eq!(props(&collector, "404"), json!({"path": "/missing-page"}));
}

#[test]
fn the_script_twice_counts_once_and_fragments_and_kept_paths_add_nothing() {
    let collector = Collector::start();
    let report = run(&collector, "twice");
    assert_clean(&report);
    assert_eq!(report["finished"], 3, "one copy sends: {report}");
    let beacons = report["beacons"].to_string();
    assert!(
        !beacons.contains("SECRET"),
        "a fragment was sent: {beacons}"
    );
    collector.wait_for_count("SELECT COUNT(*) FROM events", 3, WAIT);
    assert_eq!(
        events(&collector),
        vec![pv("/twice"), pv("/twice/next"), ev("Once", "/twice/next")],
        "the replaceState that dropped the query is not a view"
    );
    let utm: Vec<Vec<Option<String>>> =
        collector.query("SELECT utm_source FROM events ORDER BY id LIMIT 1");
    assert_eq!(utm, vec![vec![Some("mail".to_string())]]);
}

#[test]
fn engagement_is_sent_when_a_view_ends_and_shows_per_page() {
    let collector = Collector::start();
    let report = run(&collector, "engage");
    assert_clean(&report);
    assert_eq!(report["finished"], 2, "two views: {report}");
    let engaged: Vec<Value> = report["engaged"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| serde_json::from_str(b.as_str()?).ok())
                .collect()
        })
        .unwrap_or_default();
    // The first view's, sent before the app's next view: over a second
    // (the page was visible and focused: {report.focused}), scrolled to
    // (1000 + 1000) / 4000 px: about half.
    let first = engaged
        .iter()
        .find(|e| e["url"].as_str().is_some_and(|u| u.ends_with("/read")))
        .unwrap_or_else(|| panic!("no engagement for /read: {report}"));
    assert!(
        first["engaged_ms"].as_u64().unwrap_or(0) >= 1000,
        "{report}"
    );
    let depth = first["scroll_depth"].as_u64().unwrap_or(0);
    assert!((45..=55).contains(&depth), "{report}");
    // The second view's, sent while the page was left (in pagehide: the
    // browser sends it after the page is gone, so only the collector sees it).
    collector.wait_for_count("SELECT COUNT(*) FROM engagements", 2, WAIT);
    let paths: Vec<Vec<String>> = collector.query("SELECT path FROM engagements ORDER BY id");
    assert_eq!(
        paths,
        vec![vec!["/read".to_string()], vec!["/read/next".to_string()]],
        "{report}"
    );
    assert_eq!(
        events(&collector),
        vec![pv("/read"), pv("/read/next")],
        "no event"
    );
    // The stats API shows it per page.
    let token = tallymark_e2e::tallymark(&["token", "create", "--data"], collector.data.path());
    let token = token
        .split_whitespace()
        .find(|w| w.starts_with("tm_"))
        .unwrap_or_default()
        .to_string();
    let (_, response) = tallymark_e2e::http_get(
        collector.port,
        "/api/v1/stats/breakdown?site=localhost&period=day&property=page&metrics=visitors,time_on_page,scroll_depth",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .unwrap_or_default();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let read = body["results"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["value"] == "/read"))
        .cloned()
        .unwrap_or(Value::Null);
    assert!(read["time_on_page"].as_i64().unwrap_or(0) >= 1, "{body}");
    assert_eq!(read["scroll_depth"].as_u64(), Some(depth), "{body}");
}

#[test]
fn a_copy_that_is_off_does_not_silence_one_that_is_on() {
    let collector = Collector::start();
    let report = run(&collector, "offon");
    assert_clean(&report);
    assert_eq!(report["finished"], 2, "{report}");
    collector.wait_for_count("SELECT COUNT(*) FROM events", 2, WAIT);
    // Sent at once: either may land first.
    let mut got = events(&collector);
    got.sort();
    assert_eq!(got, vec![ev("Once", "/offon"), pv("/offon")]);
}

/// A site that swapped Plausible's tag for Tallymark's keeps its
/// `plausible()` calls: queued ones, props, revenue, the callback; and a page
/// where Plausible's own script defined it keeps Plausible's.
#[test]
fn plausibles_page_api_works_where_its_tag_was_swapped() {
    let collector = Collector::start();
    let report = run(&collector, "plausible");
    assert_clean(&report);
    assert_eq!(report["called"], true, "callback: {report}");
    assert_eq!(
        report["queue"], 1,
        "Plausible's queue left in place: {report}"
    );
    assert_eq!(report["own"], json!(["Kept"]), "{report}");
    assert_eq!(report["options"], json!({"endpoint": "/x"}), "{report}");
    assert_eq!(report["finished"], 6, "{report}");
    collector.wait_for_count("SELECT COUNT(*) FROM events", 6, WAIT);
    // The page view and the queued event leave at once, as two beacons:
    // either may be stored first.
    let mut stored = events(&collector);
    let mut want = vec![
        pv("/swapped"),
        ev("Queued", "/swapped"),
        ev("Signup", "/swapped"),
        pv("/beside"),
        pv("/twice"),
        ev("Twice", "/twice"),
    ];
    stored.sort();
    want.sort();
    assert_eq!(stored, want);
    assert_eq!(props(&collector, "Queued"), json!({"plan": "pro"}));
    assert_eq!(props(&collector, "Signup"), json!({"n": 2}));
    let revenue: Vec<Vec<rusqlite::types::Value>> = collector
        .query("SELECT revenue_amount, revenue_currency FROM events WHERE name = 'Signup'");
    assert_eq!(
        revenue,
        vec![vec![
            rusqlite::types::Value::Real(9.5),
            rusqlite::types::Value::Text("EUR".into())
        ]]
    );
}

#[test]
fn a_page_restored_from_the_back_forward_cache_is_a_view() {
    let collector = Collector::start();
    let report = run(&collector, "bfcache");
    assert_clean(&report);
    // Otherwise the test proves nothing: the pages must have been restored.
    assert_eq!(report["restoredBack"], 1, "not from the bfcache: {report}");
    assert_eq!(
        report["restoredForward"], 1,
        "not from the bfcache: {report}"
    );
    collector.wait_for_count("SELECT COUNT(*) FROM events", 4, WAIT);
    assert_eq!(
        events(&collector),
        vec![pv("/bf/one"), pv("/bf/two"), pv("/bf/one"), pv("/bf/two")]
    );
    let visits: Vec<Vec<Option<i64>>> =
        collector.query("SELECT COUNT(DISTINCT session_id) FROM events");
    assert_eq!(visits, vec![vec![Some(1)]], "one visit");
}

/// `GET path` on the collector; returns the response head, lower-cased.
fn head(collector: &Collector, path: &str) -> String {
    get(collector, path, None).0
}

/// `GET path` with `Accept-Encoding: accept` if given; returns the response
/// head (lower-cased) and the body as sent (not decoded).
fn get(collector: &Collector, path: &str, accept: Option<&str>) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", collector.port)).expect("connect");
    let accept = accept
        .map(|a| format!("Accept-Encoding: {a}\r\n"))
        .unwrap_or_default();
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&response[..end]).to_lowercase();
    (head, response[end + 4..].to_vec())
}

#[test]
fn script_and_wasm_are_served_compressed_to_clients_that_accept_it() {
    use std::io::Read;
    let collector = Collector::start();
    let dist = tallymark_e2e::workspace_root().join("npm/dist/script");
    for (file, path) in [
        ("tallymark.js", "/js/tallymark.js"),
        ("tallymark.wasm", "/js/tallymark.wasm"),
    ] {
        let built = std::fs::read(dist.join(file)).expect("built SDK file");
        // What Chromium sends: brotli, about half the bytes.
        let (head, body) = get(&collector, path, Some("gzip, deflate, br, zstd"));
        assert!(head.contains("content-encoding: br"), "{head}");
        assert!(head.contains("vary: accept-encoding"), "{head}");
        assert!(
            body.len() * 10 < built.len() * 6,
            "{file}: {} of {}",
            body.len(),
            built.len()
        );
        let mut decoded = Vec::new();
        brotli::Decompressor::new(body.as_slice(), 4096)
            .read_to_end(&mut decoded)
            .expect("valid brotli");
        assert!(
            decoded == built,
            "{file}: brotli copy differs from the build"
        );
        // gzip only, brotli refused, or gzip on a second header line.
        for accept in ["gzip", "br;Q=0, gzip", "identity\r\nAccept-Encoding: gzip"] {
            let (head, body) = get(&collector, path, Some(accept));
            assert!(head.contains("content-encoding: gzip"), "{accept}: {head}");
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(body.as_slice())
                .read_to_end(&mut decoded)
                .expect("valid gzip");
            assert!(decoded == built, "{file}: gzip copy differs from the build");
        }
        // No Accept-Encoding: the file as built.
        let (head, body) = get(&collector, path, None);
        assert!(!head.contains("content-encoding"), "{head}");
        assert!(head.contains("vary: accept-encoding"), "{head}");
        assert!(body == built, "{file}: identity differs from the build");
    }
}

#[test]
fn script_and_wasm_are_served_with_their_types_and_long_caching() {
    let collector = Collector::start();
    let js = head(&collector, "/js/tallymark.js");
    assert!(js.starts_with("http/1.1 200"), "{js}");
    assert!(js.contains("content-type: text/javascript"), "{js}");
    assert!(
        js.contains("cache-control: public, max-age=86400, stale-while-revalidate=604800"),
        "{js}"
    );
    assert!(js.contains("access-control-allow-origin: *"), "{js}");
    // The script names its wasm by a hash of its bytes.
    let root = tallymark_e2e::workspace_root();
    let script =
        std::fs::read_to_string(root.join("npm/dist/script/tallymark.js")).expect("script");
    let version = script
        .split("tallymark.wasm?v=")
        .nth(1)
        .and_then(|rest| rest.get(..16))
        .expect("versioned wasm URL in the script");
    assert!(version.bytes().all(|b| b.is_ascii_hexdigit()), "{version}");
    let wasm = head(&collector, &format!("/js/tallymark.wasm?v={version}"));
    assert!(wasm.contains("content-type: application/wasm"), "{wasm}");
    assert!(
        wasm.contains("cache-control: public, max-age=31536000, immutable"),
        "{wasm}"
    );
    // Another build's version is never cached under its URL.
    let other = head(&collector, "/js/tallymark.wasm?v=0123456789abcdef");
    assert!(other.contains("cache-control: no-cache"), "{other}");
    assert!(head(&collector, "/js/nope.js").starts_with("http/1.1 404"));
}
