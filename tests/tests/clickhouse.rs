//! The real binary with ClickHouse (Debian's 18.16, started for the test):
//! a collector that ran on SQLite alone gets `--clickhouse`, copies its
//! history there, keeps copying new events, and answers from ClickHouse
//! what the daily rollups cannot, with the numbers the events make.

use tallymark_e2e::{Collector, FIREFOX, SAFARI, http_get, tallymark};

#[path = "../../collector/tests/support/clickhouse.rs"]
mod clickhouse_server;

fn get(c: &Collector, path: &str, token: &str) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {token}");
    let (status, response) = http_get(c.port, path, &[("Authorization", &auth)]).expect("GET");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or_default())
}

const BY_PAGE_FROM_GOOGLE: &str = "/api/v1/stats/breakdown?site=localhost&period=day&property=page&metrics=visitors,pageviews&filter=source==Google";
const HOME: &str = r#"{"kind":"pageview","site":"localhost","url":"http://localhost/"}"#;
const PRICING: &str = r#"{"kind":"pageview","site":"localhost","url":"http://localhost/pricing","referrer":"https://www.google.com/"}"#;
const SIGNUP: &str = r#"{"kind":"event","name":"Signup","site":"localhost","url":"http://localhost/pricing","props":{"plan":"pro"},"revenue":{"amount":9.5,"currency":"EUR"}}"#;

/// The page breakdown under `source==Google`: the one view of /pricing.
fn pricing_from_google(c: &Collector, token: &str) {
    let (status, json) = get(c, BY_PAGE_FROM_GOOGLE, token);
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["results"],
        serde_json::json!([{"value": "/pricing", "visitors": 1, "pageviews": 1}])
    );
}

#[test]
fn a_collector_moved_to_clickhouse_copies_its_history_and_answers_from_it() {
    let server = clickhouse_server::ClickHouseServer::start();
    let data = tempfile::tempdir().unwrap();
    tallymark(&["site", "add", "localhost", "--data"], data.path());
    let token = tallymark(&["token", "create", "--data"], data.path());
    let token = token.trim();

    // First on SQLite alone: one visitor, one pageview.
    let c = Collector::serve(data, &[]);
    c.accept(FIREFOX, HOME);
    let data = c.kill();

    // Then with ClickHouse: the history arrives, and what comes next too.
    let c = Collector::serve(
        data,
        &["--clickhouse", &server.url, "--clickhouse-database", "e2e"],
    );
    c.wait_shipped(1.0);
    c.accept(SAFARI, PRICING);
    c.accept(SAFARI, SIGNUP);
    c.wait_shipped(3.0);

    // Questions the daily rollups cannot answer (filters across
    // dimensions, properties, revenue) are ClickHouse's.
    let (status, json) = get(
        &c,
        "/api/v1/stats/aggregate?site=localhost&period=day&metrics=visitors,visits,pageviews,events,revenue&filter=event:name==Signup",
        token,
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["results"],
        serde_json::json!({
            "visitors": 1, "visits": 1, "pageviews": 0, "events": 1,
            "revenue": [{"currency": "EUR", "total": 9.5, "average": 9.5, "events": 1}]
        })
    );
    pricing_from_google(&c, token);
    let (status, json) = get(
        &c,
        "/api/v1/stats/breakdown?site=localhost&period=day&property=event:props:plan&metrics=visitors,events&filter=event:name==Signup",
        token,
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["results"],
        serde_json::json!([{"value": "pro", "visitors": 1, "events": 1}])
    );

    // ClickHouse answered those three.
    assert_eq!(c.metric("tallymark_clickhouse_queries_total"), Some(3.0));
    assert_eq!(
        c.metric("tallymark_clickhouse_query_failures_total"),
        Some(0.0)
    );

    // Without ClickHouse, SQLite answers them (more slowly), alike, and
    // beacons are still stored.
    drop(server);
    pricing_from_google(&c, token);
    let (status, json) = get(
        &c,
        "/api/v1/stats/aggregate?site=localhost&period=day&metrics=visitors,pageviews,events",
        token,
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["results"],
        serde_json::json!({"visitors": 2, "pageviews": 2, "events": 3})
    );
    c.accept(FIREFOX, HOME);
    assert_eq!(c.query::<i64>("SELECT COUNT(*) FROM events"), vec![vec![4]]);
}
