//! Plausible's own trackers, as published on npm, in real Chromium against
//! the real collector (`tests/browser/plausible.mjs`): a site moving from
//! Plausible keeps its tracker, points its endpoint at Tallymark, and every
//! page view and custom event arrives, and so do the engagement pings (time
//! on a page, scroll depth), apart from the events.

use std::time::Duration;

use serde_json::{Value, json};
use tallymark_e2e::{Collector, browser};

#[test]
fn plausibles_trackers_record_views_and_events() {
    let collector = Collector::start();
    let base = collector.url("");
    let report = browser("plausible.mjs", &[base.trim_end_matches('/')]);
    assert_eq!(report["errors"], json!([]), "console errors: {report}");
    assert_eq!(report["pageErrors"], json!([]), "page errors: {report}");
    let sent = report["sent"].as_array().cloned().unwrap_or_default();
    for s in &sent {
        assert_eq!(s["status"], 202, "every request accepted: {report}");
        assert_eq!(s["dropped"], Value::Null, "and recorded: {report}");
    }
    let pings = sent.iter().filter(|s| s["n"] == "engagement").count();
    assert!(
        pings >= 2,
        "the new tracker sends engagement pings: {report}"
    );

    let stored =
        collector.wait_for_count("SELECT COUNT(*) FROM events", 9, Duration::from_secs(10));
    let rows: Vec<(String, Option<String>, String)> = collector
        .query::<rusqlite::types::Value>("SELECT kind, name, path FROM events ORDER BY id")
        .into_iter()
        .map(|r| {
            let text = |v: &rusqlite::types::Value| match v {
                rusqlite::types::Value::Text(t) => Some(t.clone()),
                _ => None,
            };
            (
                text(&r[0]).unwrap_or_default(),
                text(&r[1]),
                text(&r[2]).unwrap_or_default(),
            )
        })
        .collect();
    let pv = |p: &str| ("pageview".to_string(), None, p.to_string());
    let ev = |n: &str, p: &str| ("event".to_string(), Some(n.to_string()), p.to_string());
    assert_eq!(
        rows,
        vec![
            pv("/new"),
            pv("/new/a"),
            pv("/new/b"),
            ev("Signup", "/new/b"),
            ev("Outbound Link: Click", "/new/b"),
            pv("/old"),
            pv("/old/x"),
            ev("Download", "/old/x"),
        ],
        "{stored} rows; report: {report}"
    );

    let text = |sql: &str| -> String {
        match collector
            .query::<rusqlite::types::Value>(sql)
            .first()
            .and_then(|r| r.first())
        {
            Some(rusqlite::types::Value::Text(t)) => t.clone(),
            other => panic!("{sql}: {other:?}"),
        }
    };
    let props = |name: &str| -> Value {
        serde_json::from_str(&text(&format!(
            "SELECT props FROM events WHERE name = '{name}'"
        )))
        .expect("props are JSON")
    };
    assert_eq!(props("Signup"), json!({"plan": "pro", "seats": 3}));
    assert_eq!(props("Download"), json!({"format": "pdf"}));
    let outbound = props("Outbound Link: Click");
    assert!(
        outbound["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/elsewhere")),
        "{outbound}"
    );
    assert_eq!(
        text("SELECT revenue_currency || ' ' || revenue_amount FROM events WHERE name = 'Signup'"),
        "EUR 19.99"
    );
    // Its engagement pings: time and scroll depth per page, apart from the
    // events (the SPA's two first pages at least).
    let engaged: Vec<Vec<String>> =
        collector.query("SELECT DISTINCT path FROM engagements ORDER BY path");
    assert!(
        engaged.len() >= 2 && engaged[0][0] == "/new",
        "{engaged:?}; report: {report}"
    );
    // One browser: one daily visitor.
    assert_eq!(
        collector.query::<i64>("SELECT COUNT(DISTINCT visitor_id) FROM events"),
        vec![vec![1]]
    );
}
