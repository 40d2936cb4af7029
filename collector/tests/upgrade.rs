//! Upgrades: a database written at the oldest schema version, with rows,
//! opened by the current code as `tallymark serve` opens it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tallymark_collector::clock::ManualClock;
use tallymark_collector::config::Config;
use tallymark_collector::stats::auth::{self, TokenKind};
use tallymark_collector::store::{EventRow, SessionRow, schema};
use tallymark_collector::{AppState, app, sites};
use tower::ServiceExt;

/// 2026-01-15, 10:00 in Berlin.
const MORNING_MS: i64 = 1_768_467_600_000;

#[path = "fixtures/rows.rs"]
mod fixture_rows;

/// The `n`th page view of one visit on site 1, a minute apart.
fn pageview(n: i64) -> (EventRow, SessionRow) {
    let visit = fixture_rows::Visit {
        visitor: 42,
        session: 7,
        started_ms: MORNING_MS,
        entry_path: "/0",
    };
    let (mut event, session) =
        fixture_rows::pageview(&visit, n, MORNING_MS + n * 60_000, format!("/{n}"));
    event.event_id = Some(format!("old-{n}"));
    (event, session)
}

/// Stores `event` and `session` as the first release did: schema 1's
/// columns only (today's row code writes columns added since).
fn insert_as_schema_1(tx: &rusqlite::Transaction<'_>, event: &EventRow, session: &SessionRow) {
    let d = &event.dims;
    tx.execute(
        "INSERT INTO events (site_id, ts_ms, kind, visitor_id, session_id, hostname, path,
            channel, browser, browser_major, os, device, screen_width, event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        rusqlite::params![
            event.site_id,
            event.ts_ms,
            event.kind,
            event.visitor_id,
            event.session_id,
            event.hostname,
            event.path,
            d.channel.as_str(),
            d.browser.as_str(),
            d.browser_major,
            d.os.as_str(),
            d.device.as_str(),
            event.screen_width,
            event.event_id,
        ],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO sessions (id, site_id, visitor_id, version, started_ms, last_ms,
            entry_path, exit_path, pageviews, events, interactions, channel, browser,
            browser_major, os, device)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version,
            last_ms = excluded.last_ms, exit_path = excluded.exit_path,
            pageviews = excluded.pageviews, events = excluded.events",
        rusqlite::params![
            session.id,
            session.site_id,
            session.visitor_id,
            session.version,
            session.started_ms,
            session.last_ms,
            session.entry_path,
            session.exit_path,
            session.pageviews,
            session.events,
            session.interactions,
            d.channel.as_str(),
            d.browser.as_str(),
            d.browser_major,
            d.os.as_str(),
            d.device.as_str(),
        ],
    )
    .unwrap();
}

/// A `200` answer's JSON, as the admin.
async fn get_json(router: &axum::Router, admin: &str, uri: &str) -> serde_json::Value {
    let resp = router
        .clone()
        .oneshot(
            Request::get(uri)
                .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{uri}");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A database of the first release (schema 1: sites, salts, events,
/// sessions; a site removed, so ids 1 and 3) is migrated to the current
/// version on start, once; its rows survive, the stats API answers from
/// them, a token can be created (table of migration 2) and a new site's id
/// is above every old one (migration 4).
#[tokio::test]
async fn a_schema_1_database_with_rows_is_migrated_once_and_answers_stats() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data: dir.path().to_path_buf(),
        ..Config::default()
    };
    let path = cfg.db_path();
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO sites VALUES (1, 'example.com', 'Europe/Berlin', 0),
                                      (3, 'shop.example', 'UTC', 0);",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        for n in 0..3 {
            let (event, session) = pageview(n);
            insert_as_schema_1(&tx, &event, &session);
        }
        tx.commit().unwrap();
    }

    let clock = Arc::new(ManualClock::new("2026-01-16T12:00:00Z".parse().unwrap()));
    let state = AppState::open(cfg.clone(), clock.clone()).unwrap();
    state.maintain().await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version = |conn: &rusqlite::Connection| count(conn, "PRAGMA user_version");
    assert_eq!(version(&conn), schema::MIGRATIONS.len() as i64);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM events"), 3);
    assert_eq!(count(&conn, "SELECT pageviews FROM sessions"), 3);
    // Columns added since (migration 9) read NULL on the old rows.
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM events WHERE os_version IS NULL"
        ),
        3
    );
    assert_eq!(count(&conn, "SELECT last FROM site_ids"), 3);

    let admin = auth::create(&conn, TokenKind::Admin, None, 0).unwrap();
    let router = app(state.clone()).layer(MockConnectInfo(
        "127.0.0.1:1".parse::<SocketAddr>().unwrap(),
    ));
    let json = get_json(
        &router,
        &admin,
        "/api/v1/stats/aggregate?site=example.com&period=day&date=2026-01-15\
         &metrics=visitors,visits,pageviews",
    )
    .await;
    assert_eq!(
        json["results"],
        serde_json::json!({"visitors": 1, "visits": 1, "pageviews": 3}),
        "{json}"
    );
    assert_eq!(sites::add(&conn, "new.example", "UTC", 0).unwrap().id, 4);

    // A restart applies nothing twice.
    drop(state);
    let again = AppState::open(cfg, clock).unwrap();
    again.maintain().await.unwrap();
    assert_eq!(version(&conn), schema::MIGRATIONS.len() as i64);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM site_ids"), 1);
    assert_eq!(count(&conn, "SELECT last FROM site_ids"), 4);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM events"), 3);
}

/// Days rolled up before regions and cities were recorded (migration 10)
/// answer a region or city breakdown with their totals under `(none)`, as
/// their raw rows (none of which has one) would.
#[tokio::test]
async fn days_rolled_before_regions_and_cities_count_under_none() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data: dir.path().to_path_buf(),
        ..Config::default()
    };
    let path = cfg.db_path();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        for migration in &schema::MIGRATIONS[..9] {
            conn.execute_batch(migration).unwrap();
        }
        conn.pragma_update(None, "user_version", 9).unwrap();
        conn.execute_batch(
            "INSERT INTO sites (id, domain, timezone, created_ms) VALUES (1, 'example.com', 'UTC', 0);
             INSERT INTO rollup_days VALUES (1, '2026-01-15', 'events'), (1, '2026-01-15', 'sessions');
             INSERT INTO rollup_events VALUES
                (1, '2026-01-15', '', NULL, 5, 0, 6, 0, 9, 2),
                (1, '2026-01-15', 'country', 'DE', 5, 0, 6, 0, 9, 2);
             INSERT INTO rollup_sessions VALUES
                (1, '2026-01-15', '', NULL, 5, 6, 9, 3, 60000),
                (1, '2026-01-15', 'country', 'DE', 5, 6, 9, 3, 60000);",
        )
        .unwrap();
    }
    let clock = Arc::new(ManualClock::new("2026-01-20T12:00:00Z".parse().unwrap()));
    let state = AppState::open(cfg, clock).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let admin = auth::create(&conn, TokenKind::Admin, None, 0).unwrap();
    let router = app(state.clone()).layer(MockConnectInfo(
        "127.0.0.1:1".parse::<SocketAddr>().unwrap(),
    ));
    for property in ["region", "city"] {
        let json = get_json(
            &router,
            &admin,
            &format!(
                "/api/v1/stats/breakdown?site=example.com&period=day&date=2026-01-15\
                 &property={property}&metrics=visitors,visits,pageviews,bounce_rate"
            ),
        )
        .await;
        assert_eq!(
            json["results"],
            serde_json::json!([{"value": "(none)", "visitors": 5, "visits": 6, "pageviews": 9, "bounce_rate": 50.0}]),
            "{property}: {json}"
        );
    }
}

/// A command of a newer version does not migrate the database under a
/// running `serve` (the data directory's lock held) of an older one, which
/// would go on writing beside it into a schema it does not know: it says
/// what to do and changes nothing; with no `serve` running, it migrates.
#[test]
fn a_newer_command_does_not_migrate_under_an_older_serve() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tallymark.sqlite3");
    let older = schema::MIGRATIONS.len() - 1;
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        for sql in &schema::MIGRATIONS[..older] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", older as i64)
            .unwrap();
    }
    let version = || -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    let list = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tallymark"))
            .args(["site", "list", "--data"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let serve = tallymark_collector::lock_data_dir(dir.path()).unwrap();
    let out = list();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "{} is in use (pid {}), by a `tallymark serve` of an older version or another \
             command: its database has schema version {older}, this tallymark's is {}",
            dir.path().display(),
            std::process::id(),
            older + 1
        )),
        "{stderr}"
    );
    assert_eq!(version(), older as i64);
    drop(serve);
    let out = list();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(version(), older as i64 + 1);
}
