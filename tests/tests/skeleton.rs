//! The walking skeleton: a real browser loads the demo page, the beacon
//! reaches the real collector, and a row lands in SQLite.

use std::time::Duration;

use tallymark_e2e::{Collector, browser};

#[test]
fn demo_page_visit_becomes_a_sqlite_row() {
    let collector = Collector::start();
    let demo = collector.url("/demo");
    let report = browser("visit.mjs", &[&demo]);

    assert_eq!(report["beaconStatus"], 202, "{report}");
    assert_eq!(report["beaconMethod"], "POST");
    assert_eq!(report["dropped"], serde_json::Value::Null, "{report}");
    assert_eq!(report["cookies"], serde_json::json!([]), "no cookies");
    assert_eq!(report["storage"]["localStorage"], 0);
    assert_eq!(report["storage"]["sessionStorage"], 0);
    assert_eq!(report["storage"]["indexedDB"], 0);
    assert_eq!(report["storage"]["cookie"], "");
    assert_eq!(report["errors"], serde_json::json!([]), "console errors");

    let n = collector.wait_for_count("SELECT COUNT(*) FROM events", 1, Duration::from_secs(5));
    assert_eq!(n, 1, "exactly one pageview row");
    let rows: Vec<Vec<String>> = collector.query(
        "SELECT e.kind, s.domain, e.hostname, e.path, e.browser
         FROM events e JOIN sites s ON s.id = e.site_id",
    );
    let want = ["pageview", "localhost", "localhost", "/demo", "chrome"];
    assert_eq!(rows, vec![want.map(String::from).to_vec()]);
}

/// The collector prints `http://127.0.0.1:…`; the demo (site `localhost`)
/// opened there moves itself to `localhost` instead of sending beacons the
/// collector must refuse (another host).
#[test]
fn the_demo_opened_by_its_loopback_address_still_counts() {
    let collector = Collector::start();
    let demo = format!("http://127.0.0.1:{}/demo", collector.port);
    let report = browser("visit.mjs", &[&demo]);
    assert_eq!(report["beaconStatus"], 202, "{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "console errors");
    collector.wait_for_count("SELECT COUNT(*) FROM events", 1, Duration::from_secs(5));
    let rows: Vec<Vec<String>> = collector.query("SELECT hostname, path FROM events");
    assert_eq!(
        rows,
        vec![vec!["localhost".to_string(), "/demo".to_string()]]
    );
}
