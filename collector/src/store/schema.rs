//! The SQLite schema, as numbered migrations tracked in `PRAGMA user_version`.
//!
//! Entry `i` of [`MIGRATIONS`] moves the schema from version `i` to `i + 1`.
//! Never edit a released entry: add a new one.
//!
//! Dimension columns hold the stable `as_str()` labels of core's enums
//! (`channel`, `browser`, `os`, `device`, `kind`), never free text.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

pub const MIGRATIONS: &[&str] = &[
    // 1: sites, daily salts, events, sessions.
    "CREATE TABLE sites (
        id          INTEGER PRIMARY KEY,
        domain      TEXT NOT NULL UNIQUE,
        timezone    TEXT NOT NULL,
        created_ms  INTEGER NOT NULL
    );
    -- One secret salt per site per local day; deleted once expired.
    CREATE TABLE salts (
        site_id     INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
        day         TEXT NOT NULL,
        salt        BLOB NOT NULL,
        expires_ms  INTEGER NOT NULL,
        PRIMARY KEY (site_id, day)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id               INTEGER PRIMARY KEY,
        site_id          INTEGER NOT NULL,
        ts_ms            INTEGER NOT NULL,
        kind             TEXT NOT NULL,
        name             TEXT,
        visitor_id       INTEGER NOT NULL,
        session_id       INTEGER NOT NULL,
        hostname         TEXT NOT NULL,
        path             TEXT NOT NULL,
        referrer         TEXT,
        referrer_domain  TEXT,
        source           TEXT,
        channel          TEXT NOT NULL,
        utm_source       TEXT,
        utm_medium       TEXT,
        utm_campaign     TEXT,
        utm_term         TEXT,
        utm_content      TEXT,
        click_id         TEXT,
        country          TEXT,
        browser          TEXT NOT NULL,
        browser_major    INTEGER,
        os               TEXT NOT NULL,
        device           TEXT NOT NULL,
        screen_width     INTEGER,
        props            TEXT,
        revenue_amount   REAL,
        revenue_currency TEXT,
        event_id         TEXT
    );
    CREATE INDEX events_site_ts ON events (site_id, ts_ms);
    CREATE UNIQUE INDEX events_site_event_id ON events (site_id, event_id)
        WHERE event_id IS NOT NULL;
    -- Written behind, in the same transactions as their events; `version`
    -- (hits so far) makes a late, older snapshot lose against a newer one.
    CREATE TABLE sessions (
        id               INTEGER PRIMARY KEY,
        site_id          INTEGER NOT NULL,
        visitor_id       INTEGER NOT NULL,
        version          INTEGER NOT NULL,
        started_ms       INTEGER NOT NULL,
        last_ms          INTEGER NOT NULL,
        entry_path       TEXT NOT NULL,
        exit_path        TEXT NOT NULL,
        pageviews        INTEGER NOT NULL,
        events           INTEGER NOT NULL,
        interactions     INTEGER NOT NULL,
        referrer         TEXT,
        referrer_domain  TEXT,
        source           TEXT,
        channel          TEXT NOT NULL,
        utm_source       TEXT,
        utm_medium       TEXT,
        utm_campaign     TEXT,
        utm_term         TEXT,
        utm_content      TEXT,
        click_id         TEXT,
        country          TEXT,
        browser          TEXT NOT NULL,
        browser_major    INTEGER,
        os               TEXT NOT NULL,
        device           TEXT NOT NULL
    );
    CREATE INDEX sessions_site_started ON sessions (site_id, started_ms);
    CREATE INDEX sessions_last ON sessions (last_ms);",
    // 2: stats API tokens, stored only as SHA-256 hashes of the secret.
    "CREATE TABLE tokens (
        hash        BLOB PRIMARY KEY,
        kind        TEXT NOT NULL CHECK (kind IN ('admin', 'share')),
        site_id     INTEGER REFERENCES sites (id) ON DELETE CASCADE,
        created_ms  INTEGER NOT NULL,
        CHECK ((kind = 'admin') = (site_id IS NULL))
    ) WITHOUT ROWID;",
    // 3: daily rollups for the stats API (stats/rollup.rs). A `rollup_days`
    // row marks a day's events or sessions as rolled; its sums are final.
    "CREATE TABLE rollup_days (
        site_id     INTEGER NOT NULL,
        day         TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('events', 'sessions')),
        PRIMARY KEY (site_id, day, kind)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_events (
        site_id           INTEGER NOT NULL,
        day               TEXT NOT NULL,
        dim               TEXT NOT NULL,
        value             TEXT,
        visitors          INTEGER NOT NULL,
        carried_visitors  INTEGER NOT NULL,
        sessions          INTEGER NOT NULL,
        carried_sessions  INTEGER NOT NULL,
        pageviews         INTEGER NOT NULL,
        events            INTEGER NOT NULL
    );
    CREATE INDEX rollup_events_key ON rollup_events (site_id, dim, day);
    CREATE TABLE rollup_sessions (
        site_id      INTEGER NOT NULL,
        day          TEXT NOT NULL,
        dim          TEXT NOT NULL,
        value        TEXT,
        visitors     INTEGER NOT NULL,
        visits       INTEGER NOT NULL,
        pageviews    INTEGER NOT NULL,
        bounces      INTEGER NOT NULL,
        duration_ms  INTEGER NOT NULL
    );
    CREATE INDEX rollup_sessions_key ON rollup_sessions (site_id, dim, day);",
    // 4: site ids are never reused. A removed site's id stays taken, so
    // nothing cached under it (today's stats sums in a running collector)
    // or arriving late for it (beacons sent before the collector's next
    // site reload) can ever show up as a later site's.
    "CREATE TABLE site_ids (
        only  INTEGER PRIMARY KEY CHECK (only = 1),
        last  INTEGER NOT NULL
    );
    INSERT INTO site_ids SELECT 1, COALESCE(MAX(id), 0) FROM sites;",
    // 5: the revenue rows alone, for the stats API's `revenue` metric: a
    // shop's purchases are found without reading its pageviews, and summed
    // (in total, per bucket, per event name) from the index itself.
    "CREATE INDEX events_revenue
        ON events (site_id, ts_ms, revenue_currency, revenue_amount, name)
        WHERE revenue_amount IS NOT NULL;",
    // 6: event ids are never reused either. SQLite gives a new row the
    // largest id + 1, so deleting the newest rows (`site remove`) would hand
    // their ids out again, and a copy that resumes after the largest id it
    // holds (ClickHouse, clickhouse/ship.rs) would skip the new rows. The
    // writer numbers events above `last`, which a removal raises first.
    "CREATE TABLE event_ids (
        only  INTEGER PRIMARY KEY CHECK (only = 1),
        last  INTEGER NOT NULL
    );
    INSERT INTO event_ids SELECT 1, COALESCE(MAX(id), 0) FROM events;",
    // 7: engagement (time on a page, how far down it was read), apart from
    // the events: it is never a view or an event, never starts or changes a
    // visit, and no count of events reads it. Its visit (`session_id`)
    // gives it the visit's dimensions for filters.
    "CREATE TABLE engagements (
        id            INTEGER PRIMARY KEY,
        site_id       INTEGER NOT NULL,
        ts_ms         INTEGER NOT NULL,
        session_id    INTEGER NOT NULL,
        hostname      TEXT NOT NULL,
        path          TEXT NOT NULL,
        engaged_ms    INTEGER NOT NULL,
        scroll_depth  INTEGER
    );
    CREATE INDEX engagements_site_ts ON engagements (site_id, ts_ms);",
    // 8: a site's own retention (`tallymark site set --retention-days`),
    // over `serve --retention-days`; NULL: serve's.
    "ALTER TABLE sites ADD COLUMN retention_days INTEGER
        CHECK (retention_days IS NULL OR retention_days BETWEEN 1 AND 36500);",
    // 9: the OS version (`17.2`, core's `OsVersion`), on events and their
    // sessions; NULL where the UA states none, and on rows stored before.
    "ALTER TABLE events ADD COLUMN os_version TEXT;
    ALTER TABLE sessions ADD COLUMN os_version TEXT;",
    // 10: the region and city (English names from a city database, `--geoip`),
    // on events and their sessions; NULL without one, and on rows stored
    // before.
    // The days rolled up before have no region or city rows: theirs are the
    // day's totals under no value (no row had one), so they are copied.
    "ALTER TABLE events ADD COLUMN region TEXT;
    ALTER TABLE events ADD COLUMN city TEXT;
    ALTER TABLE sessions ADD COLUMN region TEXT;
    ALTER TABLE sessions ADD COLUMN city TEXT;
    INSERT INTO rollup_events (site_id, day, dim, value, visitors, carried_visitors,
        sessions, carried_sessions, pageviews, events)
        SELECT site_id, day, d.dim, NULL, visitors, carried_visitors, sessions,
            carried_sessions, pageviews, events
        FROM rollup_events, (SELECT 'region' AS dim UNION ALL SELECT 'city') AS d
        WHERE rollup_events.dim = '';
    INSERT INTO rollup_sessions (site_id, day, dim, value, visitors, visits, pageviews,
        bounces, duration_ms)
        SELECT site_id, day, d.dim, NULL, visitors, visits, pageviews, bounces, duration_ms
        FROM rollup_sessions, (SELECT 'region' AS dim UNION ALL SELECT 'city') AS d
        WHERE rollup_sessions.dim = '';",
    // 11: engagement ids are never given again either (as migration 6 for
    // events): ClickHouse's copy resumes after the largest id it holds.
    "CREATE TABLE engagement_ids (
        only  INTEGER PRIMARY KEY CHECK (only = 1),
        last  INTEGER NOT NULL
    );
    INSERT INTO engagement_ids SELECT 1, COALESCE(MAX(id), 0) FROM engagements;",
    // 12: visits written into the past (an import's: `import::goatcounter`),
    // which ClickHouse's copy of visits, in order of their end, may already
    // have passed: it sends them in this queue's order (`clickhouse::ship`).
    // AUTOINCREMENT: a number is never given twice.
    // `import_marks`: a site an import is writing into (the first day of the
    // site's own events then, and the session timeout it splits visits by);
    // its days are not rolled up meanwhile.
    "CREATE TABLE visit_backlog (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id  INTEGER NOT NULL
    );
    CREATE INDEX visit_backlog_session ON visit_backlog (session_id);
    CREATE TABLE import_marks (
        site_id       INTEGER PRIMARY KEY,
        first_native  TEXT,
        timeout_ms    INTEGER NOT NULL
    );",
    // 13: how far a stopped import got into the oldest day it wrote (it
    // writes a big day in parts), a digest of the files it read, when it
    // began and the oldest day it kept: run again with them, it writes the
    // rest of that day.
    "ALTER TABLE import_marks ADD COLUMN partial_day TEXT;
    ALTER TABLE import_marks ADD COLUMN partial_done INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE import_marks ADD COLUMN export BLOB;
    ALTER TABLE import_marks ADD COLUMN began_ms INTEGER;
    ALTER TABLE import_marks ADD COLUMN kept_from TEXT;",
];

/// Opens (creating and migrating) the database at `path` for writing.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        return Err(StoreError::ReadOnly(path.display().to_string()));
    }
    configure(&conn)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens a second read-write connection to an existing database, without
/// migrating: for WAL checkpoints beside the writer.
pub fn open_reader_writable(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Opens a read-only connection (WAL readers never block the writer).
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// The schema version of the existing database at `path` and this
/// binary's, when the database's is older (opening it for writing would
/// migrate it).
pub fn behind(path: &Path) -> Result<Option<(i64, i64)>, StoreError> {
    let conn = open_reader(path)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    Ok((version < known).then_some((version, known)))
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL in WAL mode: a committed transaction survives a crash of the
    // process (kill -9); the writer raises it to FULL for `--fsync`.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Deleted salts are overwritten, not left in free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::SchemaTooNew {
            path: path.display().to_string(),
            version,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(open(&path).unwrap());
        let conn = open(&path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let error = open(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.contains("schema version 99 is newer")
                && error.contains(&path.display().to_string()),
            "{error}"
        );
    }
}
