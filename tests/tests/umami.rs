//! Umami's own tracker, as published on npm, in real Chromium against the
//! real collector (`tests/browser/umami.mjs`): a site moving from Umami keeps
//! its tag, points `data-host-url` at Tallymark, and its page views and
//! events arrive; `identify` is answered and nothing of it kept.

use std::time::Duration;

use serde_json::{Value, json};
use tallymark_e2e::{Collector, browser, workspace_root};

/// Written by `cargo xtask test` (`tools::ensure_npm_file`, `UMAMI_VERSION`).
const TRACKER: &str = "target/test-clients/umami-2.10.0-tracker.js";

#[test]
fn umamis_tracker_records_views_and_events() {
    let tracker = workspace_root().join(TRACKER);
    assert!(
        tracker.is_file(),
        "no {}: run `cargo xtask test`, which fetches it",
        tracker.display()
    );
    let collector = Collector::start();
    let base = collector.url("");
    let report = browser(
        "umami.mjs",
        &[base.trim_end_matches('/'), &tracker.to_string_lossy()],
    );
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["pageErrors"], json!([]), "{report}");
    let sent = report["sent"].as_array().cloned().unwrap_or_default();
    assert_eq!(sent.len(), 5, "{report}");
    for s in &sent {
        assert_eq!(s["status"], 202, "{report}");
        let want = (s["type"] == "identify").then_some("identify");
        assert_eq!(s["dropped"].as_str(), want, "{report}");
    }

    collector.wait_for_count("SELECT COUNT(*) FROM events", 4, Duration::from_secs(10));
    let rows: Vec<Vec<Option<String>>> =
        collector.query("SELECT kind, name, path, props FROM events ORDER BY id");
    let cell = |r: &Vec<Option<String>>, i: usize| r.get(i).cloned().flatten();
    let kinds: Vec<(Option<String>, Option<String>, Option<String>)> = rows
        .iter()
        .map(|r| (cell(r, 0), cell(r, 1), cell(r, 2)))
        .collect();
    let s = |t: &str| Some(t.to_string());
    assert_eq!(
        kinds,
        vec![
            (s("pageview"), None, s("/u")),
            (s("pageview"), None, s("/u/next")),
            (s("event"), s("Signup"), s("/u/next")),
            (s("event"), s("Buy"), s("/u/next")),
        ],
        "{report}"
    );
    let props = |i: usize| -> Value {
        serde_json::from_str(&cell(&rows[i], 3).unwrap_or_default()).unwrap_or(Value::Null)
    };
    assert_eq!(props(2), json!({"plan": "pro"}), "revenue is not a prop");
    assert_eq!(
        props(3),
        json!({"plan": "pro"}),
        "the tag's data-umami-event-plan"
    );
    let revenue: Vec<Vec<rusqlite::types::Value>> = collector
        .query("SELECT revenue_amount, revenue_currency FROM events WHERE name = 'Signup'");
    assert_eq!(
        revenue,
        vec![vec![
            rusqlite::types::Value::Real(19.99),
            rusqlite::types::Value::Text("EUR".into()),
        ]]
    );
    assert_eq!(
        collector.query::<i64>("SELECT COUNT(DISTINCT visitor_id) FROM events"),
        vec![vec![1]]
    );
}
