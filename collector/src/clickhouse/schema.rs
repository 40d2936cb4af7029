//! The ClickHouse tables: SQLite's `events` and `engagements`, and its
//! `sessions` as `visits` (over, one row each) and `open_visits`
//! (snapshots), created if missing. Times stay integer milliseconds (18.16
//! has no `DateTime64`); properties are two parallel arrays of keys and
//! values rendered as text, as the stats API shows them.

use super::{ClickHouse, ClickHouseError, int, lit};

/// The shared dimension columns, in both tables.
const DIMENSIONS: &str = "referrer Nullable(String),
    referrer_domain Nullable(String),
    source Nullable(String),
    channel String,
    utm_source Nullable(String),
    utm_medium Nullable(String),
    utm_campaign Nullable(String),
    utm_term Nullable(String),
    utm_content Nullable(String),
    click_id Nullable(String),
    country Nullable(String),
    browser String,
    browser_major Nullable(Int64),
    os String,
    device String,
    os_version Nullable(String),
    region Nullable(String),
    city Nullable(String)";

/// A visit's own columns (SQLite's `sessions`), before the dimensions.
const VISIT_OWN: &str = "id Int64, site_id Int64, visitor_id Int64, version UInt64, \
    started_ms Int64, last_ms Int64, entry_path String, exit_path String, pageviews Int64, \
    events Int64, interactions Int64";

/// Creates the database and its three tables unless they exist.
pub fn create(ch: &ClickHouse) -> Result<(), ClickHouseError> {
    let visit_columns = format!("{VISIT_OWN}, {DIMENSIONS}");
    ch.execute(&format!("CREATE DATABASE IF NOT EXISTS {}", ch.database))?;
    // Events are inserted once each (the shipper resumes after the largest
    // id ClickHouse holds), so a plain MergeTree; sorted by site and time,
    // what every stats query reads.
    ch.execute(&format!(
        "CREATE TABLE IF NOT EXISTS {} (
            id Int64,
            site_id Int64,
            ts_ms Int64,
            kind String,
            name Nullable(String),
            visitor_id Int64,
            session_id Int64,
            hostname String,
            path String,
            {DIMENSIONS},
            screen_width Nullable(Int64),
            prop_keys Array(String),
            prop_values Array(String),
            revenue_amount Nullable(Float64),
            revenue_currency Nullable(String),
            event_id Nullable(String)
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMM(toDateTime(intDiv(ts_ms, 1000)))
        ORDER BY (site_id, ts_ms, id)",
        ch.table("events")
    ))?;
    // A visit that is over (no event can join it any more) is inserted
    // once, final: one row per visit, read without grouping.
    // `backlog`: the visit's place in SQLite's `visit_backlog` (visits
    // written into the past, by an import), else 0; its largest is where
    // the shipper's copy of that queue stands.
    ch.execute(&format!(
        "CREATE TABLE IF NOT EXISTS {} ({visit_columns}, backlog Int64) ENGINE = MergeTree
        PARTITION BY toYYYYMM(toDateTime(intDiv(started_ms, 1000)))
        ORDER BY (site_id, started_ms, id)",
        ch.table("visits")
    ))?;
    // A visit still open is inserted again with each new snapshot
    // (`version`: hits so far); queries keep the highest version of each id
    // (`argMax`), whether ClickHouse has merged the older ones away or not.
    // Daily partitions: the days long over are dropped (`clickhouse::ship`).
    ch.execute(&format!(
        "CREATE TABLE IF NOT EXISTS {} ({visit_columns}) ENGINE = ReplacingMergeTree(version)
        PARTITION BY toYYYYMMDD(toDateTime(intDiv(started_ms, 1000)))
        ORDER BY (site_id, started_ms, id)",
        ch.table("open_visits")
    ))?;
    // Time on page and scroll depth (SQLite's `engagements`), inserted once
    // each as events are; the stats read them by site and time.
    ch.execute(&format!(
        "CREATE TABLE IF NOT EXISTS {} (
            id Int64,
            site_id Int64,
            ts_ms Int64,
            session_id Int64,
            hostname String,
            path String,
            engaged_ms Int64,
            scroll_depth Nullable(Int64)
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMM(toDateTime(intDiv(ts_ms, 1000)))
        ORDER BY (site_id, ts_ms, id)",
        ch.table("engagements")
    ))?;
    upgrade(ch)
}

/// Columns added since the first release, as (name, type): added to tables
/// made before them (ClickHouse 18.16 has no `ADD COLUMN IF NOT EXISTS`).
/// Their rows shipped before read NULL (`backlog`: 0).
const ADDED: &[(&[&str], &str, &str)] = &[
    (
        &["events", "visits", "open_visits"],
        "os_version",
        "Nullable(String)",
    ),
    (
        &["events", "visits", "open_visits"],
        "region",
        "Nullable(String)",
    ),
    (
        &["events", "visits", "open_visits"],
        "city",
        "Nullable(String)",
    ),
    (&["visits"], "backlog", "Int64"),
];

fn upgrade(ch: &ClickHouse) -> Result<(), ClickHouseError> {
    for (tables, column, kind) in ADDED {
        for table in *tables {
            let found = ch.rows(&format!(
                "SELECT count() FROM system.columns WHERE database = {} AND table = {} AND name = {}",
                lit(&ch.database),
                lit(table),
                lit(column)
            ))?;
            if found.first().and_then(|r| r.first()).map_or(0, int) == 0 {
                ch.execute(&format!(
                    "ALTER TABLE {} ADD COLUMN {column} {kind}",
                    ch.table(table)
                ))?;
            }
        }
    }
    Ok(())
}
