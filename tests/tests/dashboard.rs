//! The dashboard in real Chromium against the real binary: a site owner
//! pastes a token made with `tallymark token create` and reads the numbers
//! the collector recorded; clicking a source filters the whole board.

use serde_json::{Value, json};
use tallymark_e2e::{Collector, FIREFOX, SAFARI, browser, http_get, tallymark, workspace_root};

fn rows(report: &Value, panel: &str) -> Vec<Vec<String>> {
    serde_json::from_value(report[panel].clone()).unwrap_or_default()
}

#[path = "../../collector/tests/support/clickhouse.rs"]
mod clickhouse_server;

#[test]
fn a_site_owner_reads_and_filters_the_numbers_in_the_dashboard() {
    site_owner_reads_the_dashboard(&[], |_| {});
}

/// The same, with ClickHouse answering what the daily rollups cannot
/// (the filtered panels, goals, properties, realtime): the same numbers.
/// With 10 days kept, the board (30 days) says that older days count
/// nothing.
#[test]
fn the_dashboard_shows_the_same_numbers_with_clickhouse() {
    let server = clickhouse_server::ClickHouseServer::start();
    let flags = ["--clickhouse", &server.url, "--retention-days", "10"];
    let c = site_owner_reads_the_dashboard(&flags, |c| c.wait_shipped(4.0));
    let asked = c
        .metric("tallymark_clickhouse_queries_total")
        .unwrap_or(0.0);
    assert!(asked >= 10.0, "clickhouse answered {asked} questions");
    assert_eq!(
        c.metric("tallymark_clickhouse_query_failures_total"),
        Some(0.0)
    );
}

/// A site owner's visit to the dashboard, checked; `ready` runs after the
/// events are sent, before the browser opens.
fn site_owner_reads_the_dashboard(flags: &[&str], ready: impl Fn(&Collector)) -> Collector {
    let data = tempfile::tempdir().unwrap();
    tallymark(&["site", "add", "localhost", "--data"], data.path());
    tallymark(&["site", "add", "other.example", "--data"], data.path());
    let admin = tallymark(&["token", "create", "--data"], data.path());
    let admin = admin.trim().to_string();
    // A city database, and the test as the trusted proxy: Safari comes from
    // Dresden (the address GeoLite2-City places there), Firefox from the
    // loopback address, which no database places.
    let city_db = workspace_root().join("target/test-data/GeoLite2-City.mmdb");
    assert!(city_db.exists(), "run `cargo xtask test-data`");
    let mut flags = flags.to_vec();
    flags.extend([
        "--geoip",
        city_db.to_str().unwrap(),
        "--trusted-proxies",
        "127.0.0.1",
    ]);
    let c = Collector::serve(data, &flags);
    // Two visitors: Firefox direct (2 pageviews), Safari from Google (1
    // pageview, a purchase of 19.99 EUR).
    for (ua, body) in [
        (
            FIREFOX,
            r#"{"kind":"pageview","site":"localhost","url":"http://localhost/"}"#,
        ),
        (
            FIREFOX,
            r#"{"kind":"pageview","site":"localhost","url":"http://localhost/pricing"}"#,
        ),
        (
            SAFARI,
            r#"{"kind":"pageview","site":"localhost","url":"http://localhost/","referrer":"https://www.google.com/"}"#,
        ),
        (
            SAFARI,
            r#"{"kind":"event","name":"Purchase","site":"localhost","url":"http://localhost/checkout","props":{"plan":"pro"},"revenue":{"amount":19.99,"currency":"EUR"}}"#,
        ),
    ] {
        let from = if ua == SAFARI {
            "141.30.1.1"
        } else {
            "127.0.0.1"
        };
        let sent = c.post(
            "/api/event",
            body,
            &[("User-Agent", ua), ("X-Forwarded-For", from)],
        );
        assert_eq!(sent.map(|(status, _)| status), Some(202), "{body}");
    }

    // Two days of Plausible's export, long before (the ClickHouse run keeps
    // only 10 days: its retention would delete them).
    let imports = !flags.contains(&"--retention-days");
    let export = tempfile::tempdir().unwrap();
    if imports {
        std::fs::write(
            export
                .path()
                .join("imported_visitors_20210110_20210111.csv"),
            "date,visitors,pageviews,bounces,visits,visit_duration\n\
             2021-01-10,7,9,3,8,400\n2021-01-11,3,5,1,3,100\n",
        )
        .unwrap();
        let dir = export.path().display().to_string();
        tallymark(
            &["import", "--site", "localhost", &dir, "--data"],
            c.data.path(),
        );
    }
    ready(&c);
    let report = browser("dashboard.mjs", &[&c.url(""), &admin]);
    if imports {
        assert_eq!(report["importedView"]["visitors"], "10", "{report}");
        assert!(
            report["importedView"]["note"]
                .as_str()
                .is_some_and(|n| n.starts_with("Days from 2021-01-10 to 2021-01-11 were imported")),
            "{report}"
        );
    } else {
        assert_eq!(report["importedView"]["note"], Value::Null, "{report}");
    }
    assert_eq!(report["landed"], "/dashboard", "{report}");
    assert!(
        report["refused"]
            .as_str()
            .unwrap_or_default()
            .contains("not known"),
        "{report}"
    );

    let before = &report["before"];
    assert_eq!(before["cards"]["visitors"], "2", "{before}");
    assert_eq!(before["cards"]["visits"], "2", "{before}");
    assert_eq!(before["cards"]["pageviews"], "3", "{before}");
    assert_eq!(before["cards"]["events"], "4", "{before}");
    assert_eq!(before["cards"]["revenue"], "€19.99", "{before}");
    // 30 days, one bar each.
    assert_eq!(before["bars"], 30, "{before}");
    assert!(
        before["realtime"]
            .as_str()
            .unwrap_or_default()
            .contains("2 current visitors"),
        "{before}"
    );
    let sources = rows(&before["panels"], "Sources");
    assert_eq!(
        sources,
        [["Direct / None", "1"], ["Google", "1"]].map(|r| r.map(String::from).to_vec()),
        "{before}"
    );
    // The Sources table as CSV: display names, one row per value.
    let csv = &report["csv"];
    assert_eq!(
        csv["text"], "source,visitors\r\nDirect / None,1\r\nGoogle,1\r\n",
        "{report}"
    );
    let name = csv["name"].as_str().unwrap_or_default();
    assert!(
        name.starts_with("localhost_source_") && name.ends_with(".csv"),
        "{report}"
    );
    // The raw events: a header and the four events, in time order.
    let raw = report["raw"]["text"].as_str().unwrap_or_default();
    let lines: Vec<&str> = raw.lines().collect();
    assert_eq!(lines.len(), 5, "{report}");
    assert!(
        lines[0].starts_with("time,kind,name,hostname,path"),
        "{report}"
    );
    assert!(
        lines[4].contains(",event,Purchase,localhost,/checkout,"),
        "{report}"
    );
    assert!(
        report["raw"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("localhost_") && n.ends_with(".csv")),
        "{report}"
    );
    // The Engagement tab: per page, its columns (what the browser's pings
    // gave is checked in tests/tests/sdk.rs; here the table's shape).
    let engagement = report["engagement"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        engagement.first(),
        Some(&json!(["", "Visitors", "Time on page", "Scroll"])),
        "{report}"
    );
    assert!(engagement.len() >= 2, "a row per page: {report}");
    // The funnel: both visitors saw the home page, one of them bought.
    assert_eq!(
        report["funnel"],
        json!({
            "rows": [
                ["Step", "Visitors", "Conversion", "From previous", "Dropoff"],
                ["page==/", "2", "100.0%", "100.0%", "0"],
                ["event:name==Purchase", "1", "50.0%", "50.0%", "1"],
            ],
            "steps": ["page==/", "event:name==Purchase"],
        }),
        "{report}"
    );
    // Browser versions: each browser's display name and major version, and
    // as many visitors as the browser's.
    let versions: Vec<Vec<String>> =
        serde_json::from_value(report["versions"].clone()).unwrap_or_default();
    let browsers: Vec<Vec<String>> =
        serde_json::from_value(report["browsers"].clone()).unwrap_or_default();
    assert!(versions.len() >= 2, "a row per version: {report}");
    assert_eq!(versions.len(), browsers.len(), "{report}");
    for (version, browser) in versions.iter().zip(&browsers).skip(1) {
        let (name, major) = version[0].rsplit_once(' ').unwrap_or_default();
        assert_eq!(name, browser[0], "{report}");
        assert!(major.parse::<u16>().is_ok(), "{report}");
        assert_eq!(version[1], browser[1], "{report}");
    }
    // OS versions: Safari on macOS 14.5 states it, Firefox on Linux none.
    let mut os_versions: Vec<Vec<String>> =
        serde_json::from_value(report["osVersions"].clone()).unwrap_or_default();
    os_versions.sort();
    assert_eq!(
        os_versions,
        [["", "Visitors"], ["Unknown", "1"], ["macOS 14.5", "1"]]
            .map(|r| r.map(String::from).to_vec()),
        "{report}"
    );
    // Cities in their region, with their country's code.
    let mut cities: Vec<Vec<String>> =
        serde_json::from_value(report["cities"].clone()).unwrap_or_default();
    cities.sort();
    assert_eq!(
        cities,
        [
            ["", "Visitors"],
            ["Dresden, Saxony (DE)", "1"],
            ["Unknown", "1"]
        ]
        .map(|r| r.map(String::from).to_vec()),
        "{report}"
    );
    // Devices by their display names (core's titles), not stored labels.
    let devices = rows(&before["panels"], "Devices");
    assert!(
        devices
            .first()
            .and_then(|r| r.first())
            .is_some_and(|d| ["Desktop", "Laptop", "Mobile", "Tablet"].contains(&d.as_str())),
        "{before}"
    );
    assert_eq!(
        rows(&before["panels"], "Goals"),
        [["Purchase", "1", "1", "50.0%", "€19.99"]].map(|r| r.map(String::from).to_vec()),
        "{before}"
    );
    assert_eq!(
        rows(&before["panels"], "Pages"),
        [["/", "2", "2"], ["/pricing", "1", "1"]].map(|r| r.map(String::from).to_vec()),
        "{before}"
    );
    assert_eq!(before["volume"], Value::Null);
    if flags.contains(&"--retention-days") {
        // The site's timezone: UTC (`site add` without one).
        let today = jiff::Timestamp::now()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date();
        let kept_from = (today - jiff::ToSpan::days(10)).to_string();
        let note = before["kept"].as_str().unwrap_or_default();
        assert!(
            note.contains(&format!("keeps events from {kept_from} on")),
            "{before}"
        );
    } else {
        assert_eq!(before["kept"], Value::Null, "{before}");
    }

    // Filtered by Google: one visitor, one pageview, the purchase.
    let filtered = &report["filtered"];
    assert_eq!(
        filtered["filters"],
        json!(["source is Google ×"]),
        "{filtered}"
    );
    assert_eq!(filtered["cards"]["visitors"], "1", "{filtered}");
    assert_eq!(filtered["cards"]["pageviews"], "1", "{filtered}");
    assert_eq!(filtered["cards"]["revenue"], "€19.99", "{filtered}");
    assert_eq!(
        rows(&filtered["panels"], "Sources"),
        [["Google", "1"]].map(|r| r.map(String::from).to_vec())
    );
    assert!(
        filtered["search"]
            .as_str()
            .unwrap_or_default()
            .contains("filter=source%3D%3DGoogle"),
        "{filtered}"
    );
    // A reload shows the same view.
    assert_eq!(report["reloaded"]["cards"], filtered["cards"], "{report}");
    assert_eq!(report["reloaded"]["filters"], filtered["filters"]);

    // The 30 days before: nothing; "next" is off at today and back again.
    assert_eq!(report["nextAtToday"], true, "{report}");
    let now: Vec<&str> = report["rangeNow"]
        .as_str()
        .unwrap_or_default()
        .split(" – ")
        .collect();
    let before: Vec<&str> = report["rangeBefore"]
        .as_str()
        .unwrap_or_default()
        .split(" – ")
        .collect();
    assert_eq!((now.len(), before.len()), (2, 2), "{report}");
    let day = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
    assert_eq!(day(before[1]).tomorrow().unwrap(), day(now[0]), "{report}");
    assert_eq!((day(before[1]) - day(before[0])).get_days(), 29, "{report}");
    assert_eq!(report["previous"]["cards"]["visitors"], "0", "{report}");
    // The picker says "30 days" for a past period, "Last 30 days" for now.
    assert_eq!(report["previous"]["picker"], "30 days", "{report}");
    assert_eq!(report["back"]["picker"], "Last 30 days", "{report}");
    assert!(
        report["previous"]["search"]
            .as_str()
            .unwrap_or_default()
            .contains("date="),
        "{report}"
    );
    // The browser's Back undid the filter; previous/next came back to it.
    assert_eq!(
        report["unfiltered"]["cards"], report["before"]["cards"],
        "{report}"
    );
    assert_eq!(
        report["back"]["cards"], report["before"]["cards"],
        "{report}"
    );
    // A goal: 1 of the 2 visitors converted.
    let goal = &report["goal"];
    assert_eq!(goal["filters"], json!(["goal is Purchase ×"]), "{goal}");
    assert_eq!(
        goal["cards"],
        json!({"visitors": "1", "events": "1", "conversion_rate": "50.0%", "revenue": "€19.99"}),
        "{goal}"
    );
    // Pages under a goal: where it was reached, with its events.
    assert_eq!(
        rows(&goal["panels"], "Pages"),
        [["/checkout", "1", "1"]].map(|r| r.map(String::from).to_vec()),
        "{goal}"
    );
    // The goal's properties, a key's values, and a value as a filter.
    assert_eq!(report["goalKeys"], json!([["plan", "1", "1"]]), "{report}");
    assert_eq!(report["planValues"], json!([["pro", "1", "1"]]), "{report}");
    // A panel's tab is kept in the address, and a reload shows it.
    assert_eq!(report["goalsTab"], "event:props:plan", "{report}");
    assert_eq!(
        report["planValuesReloaded"], report["planValues"],
        "{report}"
    );
    assert_eq!(
        report["propFiltered"]["filters"],
        json!(["goal is Purchase ×", "property plan is pro ×"]),
        "{report}"
    );
    assert_eq!(report["propFiltered"]["cards"], goal["cards"], "{report}");
    // Custom range: it starts from the 30 days shown, same figures.
    let custom = &report["custom"];
    assert!(
        custom["search"]
            .as_str()
            .unwrap_or_default()
            .contains("from="),
        "{custom}"
    );
    assert_eq!(custom["cards"], goal["cards"], "{custom}");
    assert_eq!(
        custom["filters"].as_array().map(Vec::len),
        Some(2),
        "{custom}"
    );
    assert_eq!(custom["nextDisabled"], true, "{custom}");
    // The last 6 calendar months: today's events, the same figures; back
    // is the 6 months before, and forward comes back.
    let months = &report["months"];
    let span = |range: &Value| -> Option<(i64, i64, String, String)> {
        let (from, to) = range.as_str()?.split_once(" – ")?;
        let month = |d: &str| -> Option<i64> {
            Some(d.get(..4)?.parse::<i64>().ok()? * 12 + d.get(5..7)?.parse::<i64>().ok()?)
        };
        Some((month(from)?, month(to)?, from.to_string(), to.to_string()))
    };
    let (first, last, from, _) = span(&months["range"]).unwrap_or_else(|| panic!("{months}"));
    assert_eq!(last - first, 5, "{months}");
    assert!(from.ends_with("-01"), "{months}");
    let (p_first, p_last, _, _) = span(&months["previous"]).unwrap_or_else(|| panic!("{months}"));
    assert_eq!((p_first, p_last), (first - 6, first - 1), "{months}");
    assert_eq!(months["again"], months["range"], "{months}");
    assert_eq!(months["cards"], custom["cards"], "{months}");
    // Realtime: the same conversion, minute bars, no previous/next.
    let live = &report["live"];
    assert_eq!(live["cards"]["visitors"], "1", "{live}");
    assert_eq!(live["navHidden"], true, "{live}");
    let hosts = live["hostnames"].as_array().cloned().unwrap_or_default();
    assert_eq!(hosts.len(), 1, "{live}");
    assert_eq!(hosts[0][0], "localhost", "{live}");
    assert!(live["bars"].as_u64().unwrap_or(0) >= 5, "{live}");
    assert_eq!(custom["again"]["search"], custom["search"], "{custom}");
    assert_eq!(custom["again"]["cards"], custom["cards"], "{custom}");
    // The other site: its own figures, the filter not carried over.
    assert_eq!(report["other"]["cards"]["visitors"], "0", "{report}");
    assert_eq!(report["other"]["filters"], json!([]), "{report}");

    // A refused view shows why, and no figures.
    let refused = &report["refusedView"];
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("filter:"),
        "{refused}"
    );
    assert_eq!(refused["cards"], 0, "{refused}");
    for panel in refused["panels"].as_array().unwrap() {
        assert!(
            panel
                .as_str()
                .unwrap_or_default()
                .starts_with("Could not load"),
            "{refused}"
        );
    }

    // Nothing kept in the browser; no console error (a CSP violation is one).
    assert_eq!(report["cookies"], json!([]));
    assert_eq!(
        report["storage"],
        json!({"localStorage": 0, "sessionStorage": 0, "indexedDB": 0, "cookie": ""})
    );
    assert_eq!(report["errors"], json!([]), "{report}");

    // The page is served with a CSP that allows nothing but this origin.
    let (status, response) = http_get(c.port, "/dashboard", &[]).unwrap();
    assert_eq!(status, 200);
    let lower = response.to_ascii_lowercase();
    assert!(
        lower.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{response}"
    );
    assert!(!lower.contains("set-cookie"), "{response}");
    c
}
