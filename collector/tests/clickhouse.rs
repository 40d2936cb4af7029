//! The ClickHouse store against a real server (Debian's 18.16, started per
//! test): string literals survive any text, and ClickHouse going away loses
//! nothing and slows no beacon. `tests/stats.rs` checks that its answers
//! equal SQLite's.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::Value;
use tallymark_collector::clickhouse::{ClickHouse, ClickHouseConfig, lit, text};
use tallymark_collector::clock::ManualClock;
use tallymark_collector::config::Config;
use tallymark_collector::stats::auth::{self, TokenKind};
use tallymark_collector::{AppState, app, sites, store};
use tower::ServiceExt;

#[path = "support/clickhouse.rs"]
mod clickhouse_server;
use clickhouse_server::ClickHouseServer;

/// Any text a request can carry (filters, property keys) comes back from
/// ClickHouse unchanged as a literal: nothing in it ends the string early.
#[test]
fn literals_round_trip_any_text() {
    let server = ClickHouseServer::start();
    let ch = ClickHouse::new(&ClickHouseConfig {
        url: server.url.clone(),
        database: "default".into(),
    })
    .unwrap();
    let mut fixed: Vec<String> = [
        "",
        "'",
        "\\",
        "\\'",
        "'); DROP TABLE x; --",
        "a\\nb",
        "tab\there\nnewline",
        "\u{0}nul",
        "ünïcödé 🎉",
        "%s{0}?",
    ]
    .map(String::from)
    .to_vec();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(200));
    for _ in 0..200 {
        let tree = any::<String>().new_tree(&mut runner).unwrap();
        fixed.push(tree.current());
    }
    // Many per query: one round trip for all.
    for chunk in fixed.chunks(50) {
        let sql = format!(
            "SELECT {}",
            chunk.iter().map(|s| lit(s)).collect::<Vec<_>>().join(", ")
        );
        let rows = ch.rows(&sql).unwrap_or_else(|e| panic!("{sql:?}: {e}"));
        let got: Vec<String> = rows[0].iter().map(|v| text(v).unwrap()).collect();
        assert_eq!(got, chunk, "{sql:?}");
    }
}

/// A user and password in the URL are ClickHouse's credentials (sent as
/// HTTP Basic auth); a wrong password is refused, naming ClickHouse.
#[test]
fn credentials_in_the_url_log_in() {
    let server = ClickHouseServer::start();
    let with = |userinfo: &str| {
        let url = server
            .url
            .replace("http://", &format!("http://{userinfo}@"));
        ClickHouse::new(&ClickHouseConfig {
            url,
            database: "default".into(),
        })
        .unwrap()
        .rows("SELECT 1")
    };
    let rows = with("tallymark:s3cr%3At").unwrap();
    assert_eq!(rows[0][0], 1);
    let err = with("tallymark:wrong").unwrap_err().to_string();
    assert!(err.starts_with("clickhouse: "), "{err}");
}

const SITE: &str = "shop.example";

/// `config`'s collector with the site [`SITE`], at 2026-04-01 10:00 UTC,
/// and an admin token.
fn open(config: Config) -> (AppState, String, Arc<ManualClock>) {
    let conn = store::schema::open(&config.db_path()).unwrap();
    sites::add(&conn, SITE, "UTC", 0).unwrap();
    let token = auth::create(&conn, TokenKind::Admin, None, 0).unwrap();
    drop(conn);
    let clock = Arc::new(ManualClock::new("2026-04-01T10:00:00Z".parse().unwrap()));
    (AppState::open(config, clock.clone()).unwrap(), token, clock)
}

/// A collector in `dir` behind a trusted proxy, with ClickHouse `database`.
fn config(dir: &tempfile::TempDir, server: &ClickHouseServer, database: &str) -> Config {
    Config {
        data: dir.path().to_path_buf(),
        trusted_proxies: "10.0.0.0/8".parse().unwrap(),
        clickhouse: Some(ClickHouseConfig {
            url: server.url.clone(),
            database: database.into(),
        }),
        ..Config::default()
    }
}
const PAGE: &str = r#"{"kind":"pageview","site":"shop.example","url":"https://shop.example/"}"#;

async fn beacon(state: &AppState, ip: &str) -> StatusCode {
    send(state, ip, PAGE).await
}

async fn send(state: &AppState, ip: &str, body: &str) -> StatusCode {
    send_as(
        state,
        ip,
        body,
        "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
    )
    .await
}

async fn send_as(state: &AppState, ip: &str, body: &str, user_agent: &str) -> StatusCode {
    let req = Request::post("/api/event")
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::USER_AGENT, user_agent)
        .header("x-forwarded-for", ip)
        .body(Body::from(body.to_string()))
        .unwrap();
    app(state.clone())
        .layer(MockConnectInfo(
            "10.0.0.1:443".parse::<SocketAddr>().unwrap(),
        ))
        .oneshot(req)
        .await
        .unwrap()
        .status()
}

async fn stats(state: &AppState, token: &str, query: &str) -> (StatusCode, Value) {
    let req = Request::get(format!("/api/v1/stats/{query}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Answered by the daily rollups (from SQLite) without ClickHouse.
const AGGREGATE: &str =
    "aggregate?site=shop.example&period=day&date=2026-04-01&metrics=visitors,pageviews";
/// A page breakdown under a filter on a visit dimension: raw rows, so
/// ClickHouse answers it.
const FILTERED: &str = "breakdown?site=shop.example&period=day&date=2026-04-01&property=page\
    &metrics=visitors,pageviews&filter=browser%3D%3Dfirefox";

/// ClickHouse stops: beacons are still answered 202 (stored in SQLite), the
/// stats come from SQLite (rollups, raw rows) with every event, the
/// failures are counted. It comes back: everything stored meanwhile
/// arrives, once, and ClickHouse answers again.
#[tokio::test]
async fn an_outage_of_clickhouse_loses_nothing() {
    let mut server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, &server, "outage");
    let (state, token, _) = open(config);
    for i in 0..5 {
        assert_eq!(
            beacon(&state, &format!("203.0.113.{i}")).await,
            StatusCode::ACCEPTED
        );
    }
    state.ship_all().await.unwrap();
    let (status, before) = stats(&state, &token, FILTERED).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["results"][0]["visitors"], 5, "{before}");

    server.stop();
    for i in 5..12 {
        assert_eq!(
            beacon(&state, &format!("203.0.113.{i}")).await,
            StatusCode::ACCEPTED
        );
    }
    assert!(state.ship_all().await.is_err());
    let shipper = state.analytics.clone().unwrap();
    assert!(!shipper.ready());
    // Meanwhile SQLite's raw rows answer, with every event.
    let asked = state.metrics.clickhouse_queries.get();
    let (status, body) = stats(&state, &token, FILTERED).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["visitors"], 12, "{body}");
    assert_eq!(state.metrics.clickhouse_queries.get(), asked);
    let (status, body) = stats(&state, &token, AGGREGATE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"]["visitors"], 12, "{body}");
    let metrics = state.metrics.encode();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tallymark_clickhouse_failures_total") && !l.ends_with(" 0")),
        "{metrics}"
    );

    server.resume();
    state.ship_all().await.unwrap();
    assert!(shipper.ready());
    let (status, after) = stats(&state, &token, FILTERED).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    // From ClickHouse again, which has them all now.
    assert_eq!(state.metrics.clickhouse_queries.get(), asked + 1);
    assert_eq!(after["results"][0]["visitors"], 12, "{after}");
    assert_eq!(after["results"][0]["pageviews"], 12, "{after}");
    // Shipping again sends nothing twice.
    state.ship_all().await.unwrap();
    assert_eq!(stats(&state, &token, FILTERED).await.1, after);
}

/// `site remove` deletes "everything stored for it": with ClickHouse, its
/// rows there too (the shipper prunes removed sites), and no other site's.
#[tokio::test]
async fn a_removed_site_s_rows_leave_clickhouse_too() {
    let server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, &server, "removal");
    let mut conn = store::schema::open(&config.db_path()).unwrap();
    let shop = sites::add(&conn, SITE, "UTC", 0).unwrap();
    let other = sites::add(&conn, "other.example", "UTC", 0).unwrap();
    let clock = Arc::new(ManualClock::new("2026-04-01T10:00:00Z".parse().unwrap()));
    let state = AppState::open(config, clock).unwrap();
    for i in 0..3 {
        assert_eq!(
            beacon(&state, &format!("203.0.113.{i}")).await,
            StatusCode::ACCEPTED
        );
    }
    // Time on page of the shop, then a page and time on page of the other
    // site: the newest rows are the other site's.
    let engaged = r#"{"kind":"engagement","site":"shop.example","url":"https://shop.example/","engaged_ms":5000}"#;
    assert_eq!(
        send(&state, "203.0.113.0", engaged).await,
        StatusCode::ACCEPTED
    );
    for body in [
        r#"{"kind":"pageview","site":"other.example","url":"https://other.example/"}"#,
        r#"{"kind":"engagement","site":"other.example","url":"https://other.example/","engaged_ms":5000}"#,
    ] {
        let req = Request::post("/api/event")
            .header(header::CONTENT_TYPE, "text/plain")
            .header(
                header::USER_AGENT,
                "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
            )
            .header("x-forwarded-for", "198.51.100.1")
            .body(Body::from(body))
            .unwrap();
        let resp = app(state.clone())
            .layer(MockConnectInfo(
                "10.0.0.1:443".parse::<SocketAddr>().unwrap(),
            ))
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
    state.ship_all().await.unwrap();
    let shipper = state.analytics.clone().unwrap();
    let count = |site: i64, table: &str| {
        let rows = shipper
            .ch
            .rows(&format!(
                "SELECT count() FROM {} WHERE site_id = {site}",
                shipper.ch.table(table)
            ))
            .unwrap();
        tallymark_collector::clickhouse::int(&rows[0][0])
    };
    assert_eq!(
        (count(shop.id, "events"), count(other.id, "events")),
        (3, 1)
    );
    assert_eq!(count(other.id, "open_visits"), 1);
    assert_eq!(
        (
            count(shop.id, "engagements"),
            count(other.id, "engagements")
        ),
        (1, 1)
    );

    sites::remove(&mut conn, "other.example").unwrap();
    shipper.prune().unwrap();
    // ClickHouse applies a deletion in the background.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count(other.id, "events")
        + count(other.id, "open_visits")
        + count(other.id, "engagements")
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "still there after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(count(shop.id, "events"), 3);
    assert_eq!(count(shop.id, "open_visits"), 3);

    // The removed site held the newest event: its id is not handed out
    // again, so the next event is shipped too.
    assert_eq!(beacon(&state, "203.0.113.9").await, StatusCode::ACCEPTED);
    state.ship_all().await.unwrap();
    assert_eq!(count(shop.id, "events"), 4);
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, [1, 2, 3, 5]);
    // So was the newest engagement row: the next one of the shop gets a new
    // id, and is shipped.
    assert_eq!(
        send(&state, "203.0.113.9", engaged).await,
        StatusCode::ACCEPTED
    );
    state.ship_all().await.unwrap();
    assert_eq!(count(shop.id, "engagements"), 2);
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM engagements ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, [1, 3]);
}

/// A SQLite database behind its ClickHouse (a restored backup, or another
/// collector's data directory): nothing is shipped over rows it never had,
/// the error says what to do, and the stats come from SQLite.
#[tokio::test]
async fn a_database_behind_its_clickhouse_is_not_mixed_into_it() {
    let server = ClickHouseServer::start();
    let mut tokens = Vec::new();
    let mut states = Vec::new();
    for beacons in [5, 2] {
        let dir = tempfile::tempdir().unwrap();
        let (state, token, _) = open(config(&dir, &server, "restored"));
        tokens.push(token);
        for i in 0..beacons {
            assert_eq!(
                beacon(&state, &format!("203.0.113.{i}")).await,
                StatusCode::ACCEPTED
            );
        }
        // The first is copied whole before the second starts.
        if states.is_empty() {
            state.ship_all().await.unwrap();
        }
        states.push((dir, state));
    }
    let (first, behind) = (&states[0].1, &states[1].1);
    let err = behind.ship_all().await.unwrap_err().to_string();
    assert!(
        err.contains("up to id 5") && err.contains("drop the clickhouse database"),
        "{err}"
    );
    assert!(!behind.analytics.as_ref().unwrap().ready());
    let (status, body) = stats(behind, &tokens[1], FILTERED).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["visitors"], 2, "{body}");
    assert_eq!(behind.metrics.clickhouse_queries.get(), 0);
    let (_, body) = stats(first, &tokens[0], FILTERED).await;
    assert_eq!(body["results"][0]["visitors"], 5, "{body}");
    assert_eq!(first.metrics.clickhouse_queries.get(), 1);
}

/// A visit that began with a custom event enters on its first pageview: a
/// later snapshot changes its entry page. Shipped in between, ClickHouse
/// holds both snapshots (until it merges them, in the background) and
/// answers with the later one's entry.
#[tokio::test]
async fn a_visit_s_later_snapshot_wins_also_for_its_entry_page() {
    let server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        rollups: false,
        ..config(&dir, &server, "snapshots")
    };
    let (state, token, clock) = open(config);
    let event = r#"{"kind":"event","name":"Signup","site":"shop.example","url":"https://shop.example/checkout"}"#;
    let landing =
        r#"{"kind":"pageview","site":"shop.example","url":"https://shop.example/landing"}"#;
    // No merging away of the older snapshots (18.16 merges two small parts
    // within moments): the queries must choose between them.
    let ch = state.analytics.clone().unwrap().ch.clone();
    // The first round creates the tables.
    state.ship_all().await.unwrap();
    ch.execute(&format!("SYSTEM STOP MERGES {}", ch.table("open_visits")))
        .unwrap();
    for body in [event, landing] {
        for i in 0..60 {
            let ip = format!("203.0.113.{i}");
            assert_eq!(send(&state, &ip, body).await, StatusCode::ACCEPTED);
        }
        state.ship_all().await.unwrap();
    }
    // And in the other order too: stale first snapshots inserted last.
    let t = ch.table("open_visits");
    ch.execute(&format!(
        "INSERT INTO {t} SELECT id, site_id, visitor_id, toUInt64(1), started_ms, last_ms, \
         '/checkout', exit_path, pageviews, events, interactions, referrer, referrer_domain, \
         source, channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content, \
         click_id, country, browser, browser_major, os, device, os_version, region, city \
         FROM {t} WHERE version = 2"
    ))
    .unwrap();
    let (status, body) = stats(
        &state,
        &token,
        "breakdown?site=shop.example&period=day&date=2026-04-01&property=entry_page&metrics=visits",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["results"],
        serde_json::json!([{"value": "/landing", "visits": 60}])
    );
    assert_eq!(state.metrics.clickhouse_queries.get(), 1);

    // An hour later the visits are over: shipped once more, final, to
    // `visits`, and read from there (their snapshots left out).
    clock.set("2026-04-01T11:00:00Z".parse().unwrap());
    state.ship_all().await.unwrap();
    let rows = ch
        .rows(&format!(
            "SELECT count(), any(entry_path) FROM {}",
            ch.table("visits")
        ))
        .unwrap();
    assert_eq!(
        rows[0],
        [serde_json::json!(60), serde_json::json!("/landing")]
    );
    let (_, again) = stats(
        &state,
        &token,
        "breakdown?site=shop.example&period=day&date=2026-04-01&property=entry_page&metrics=visits",
    )
    .await;
    assert_eq!(again["results"], body["results"], "{again}");
    assert_eq!(state.metrics.clickhouse_queries.get(), 2);
}

/// Tables emptied behind the collector's back, without an error it would
/// notice (`TRUNCATE`), are filled again when the shipper next asks
/// ClickHouse where it stands (every few minutes).
#[tokio::test]
async fn emptied_tables_are_filled_again() {
    let server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (state, _, _) = open(config(&dir, &server, "emptied"));
    for i in 0..5 {
        assert_eq!(
            beacon(&state, &format!("203.0.113.{i}")).await,
            StatusCode::ACCEPTED
        );
    }
    state.ship_all().await.unwrap();
    let shipper = state.analytics.clone().unwrap();
    let count = || {
        let rows = shipper
            .ch
            .rows(&format!(
                "SELECT count() FROM {}",
                shipper.ch.table("events")
            ))
            .unwrap();
        tallymark_collector::clickhouse::int(&rows[0][0])
    };
    assert_eq!(count(), 5);
    for table in ["events", "visits", "open_visits"] {
        shipper
            .ch
            .execute(&format!("TRUNCATE TABLE {}", shipper.ch.table(table)))
            .unwrap();
    }
    assert_eq!(count(), 0);
    let shipper_for_task = shipper.clone();
    tokio::task::spawn_blocking(move || {
        for _ in 0..=tallymark_collector::clickhouse::ship::PRUNE_EVERY {
            shipper_for_task
                .ship_batch(tallymark_collector::clickhouse::ship::BATCH)
                .unwrap();
        }
    })
    .await
    .unwrap();
    assert_eq!(count(), 5);
}

/// Tables made by a collector from before a column was added (the OS
/// version) get it when a newer one starts shipping; its rows carry it and
/// ClickHouse answers a breakdown by it.
#[tokio::test]
async fn older_tables_get_the_columns_added_since() {
    let server = ClickHouseServer::start();
    {
        // The tables as an older collector made them: without `os_version`,
        // `region` and `city`.
        let old_dir = tempfile::tempdir().unwrap();
        let (old, _, _) = open(config(&old_dir, &server, "older"));
        old.ship_all().await.unwrap();
        let ch = &old.analytics.clone().unwrap().ch;
        for table in ["events", "visits", "open_visits"] {
            for column in ["os_version", "region", "city"] {
                ch.execute(&format!(
                    "ALTER TABLE {} DROP COLUMN {column}",
                    ch.table(table)
                ))
                .unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (state, token, _) = open(config(&dir, &server, "older"));
    let ios = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    for i in 0..3 {
        let ip = format!("203.0.113.{i}");
        assert_eq!(send_as(&state, &ip, PAGE, ios).await, StatusCode::ACCEPTED);
    }
    assert_eq!(beacon(&state, "203.0.113.9").await, StatusCode::ACCEPTED);
    state.ship_all().await.unwrap();
    let ch = state.analytics.clone().unwrap().ch.clone();
    for table in ["events", "open_visits"] {
        let rows = ch
            .rows(&format!(
                "SELECT os_version, count(), any(city) FROM {} GROUP BY os_version ORDER BY os_version",
                ch.table(table)
            ))
            .unwrap();
        assert_eq!(
            rows,
            [
                vec![Value::from("17.5"), Value::from(3), Value::Null],
                vec![Value::Null, Value::from(1), Value::Null]
            ],
            "{table}"
        );
    }
    let (status, body) = stats(
        &state,
        &token,
        "breakdown?site=shop.example&period=day&date=2026-04-01&property=os_version&metrics=visitors",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["results"],
        serde_json::json!([{"value": "ios 17.5", "visitors": 3}, {"value": "(none)", "visitors": 1}])
    );
    assert_eq!(
        state.metrics.clickhouse_queries.get(),
        1,
        "asked of ClickHouse"
    );
}

/// `--retention-days` deletes from ClickHouse what it deletes from SQLite
/// (events by time, visits by start, per site at its own local midnight),
/// and nothing kept.
#[tokio::test]
async fn past_the_retention_period_rows_leave_clickhouse_too() {
    let server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        retention_days: Some(10),
        ..config(&dir, &server, "retention")
    };
    let (state, token, clock) = open(config);
    // Two visits on 04-01, three on 04-20; time on page in one of each.
    let engaged = r#"{"kind":"engagement","site":"shop.example","url":"https://shop.example/","engaged_ms":5000,"scroll_depth":50}"#;
    for i in 0..2 {
        assert_eq!(
            beacon(&state, &format!("203.0.113.{i}")).await,
            StatusCode::ACCEPTED
        );
    }
    assert_eq!(
        send(&state, "203.0.113.0", engaged).await,
        StatusCode::ACCEPTED
    );
    clock.set("2026-04-20T10:00:00Z".parse().unwrap());
    for i in 0..3 {
        assert_eq!(
            beacon(&state, &format!("198.51.100.{i}")).await,
            StatusCode::ACCEPTED
        );
    }
    assert_eq!(
        send(&state, "198.51.100.0", engaged).await,
        StatusCode::ACCEPTED
    );
    state.ship_all().await.unwrap();
    let shipper = state.analytics.clone().unwrap();
    let count = |table: &str| {
        let rows = shipper
            .ch
            .rows(&format!("SELECT count() FROM {}", shipper.ch.table(table)))
            .unwrap();
        tallymark_collector::clickhouse::int(&rows[0][0])
    };
    assert_eq!(count("events"), 5);
    assert_eq!(count("engagements"), 2);
    // The 04-01 visits are over: final rows in `visits`.
    assert_eq!(count("visits"), 2);

    // 04-25: the site keeps 04-15 and after.
    clock.set("2026-04-25T10:00:00Z".parse().unwrap());
    assert_eq!(
        state.retain().await.unwrap(),
        5,
        "2 events, 2 visits, 1 engagement"
    );
    state.ship_all().await.unwrap();
    shipper.prune().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // The three of 04-20 are over now too, and shipped as such.
    while count("events") > 3 || count("visits") > 3 || count("engagements") > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "still there after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        (count("events"), count("visits"), count("engagements")),
        (3, 3, 1)
    );
    let filtered = |date: &str| {
        format!(
            "breakdown?site=shop.example&period=day&date={date}&property=page\
             &metrics=visitors,pageviews&filter=browser%3D%3Dfirefox"
        )
    };
    let asked = state.metrics.clickhouse_queries.get();
    let (status, old) = stats(&state, &token, &filtered("2026-04-01")).await;
    assert_eq!(
        (status, &old["results"]),
        (StatusCode::OK, &serde_json::json!([])),
        "{old}"
    );
    let (status, new) = stats(&state, &token, &filtered("2026-04-20")).await;
    assert_eq!(status, StatusCode::OK, "{new}");
    assert_eq!(new["results"][0]["visitors"], 3, "{new}");
    assert_eq!(
        state.metrics.clickhouse_queries.get(),
        asked + 2,
        "ClickHouse answered"
    );
}
