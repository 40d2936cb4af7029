//! Copies committed rows from SQLite to ClickHouse, in id order, in large
//! batches, off the request path.
//!
//! Where it stands is ClickHouse's own largest event id, asked again after
//! every failure: each batch is one `INSERT` of events (all or nothing), so
//! an event reaches ClickHouse exactly once, whatever failed in between. The
//! sessions of a batch's events are inserted just before it, as they are in
//! SQLite then (a session row changes only in the transaction that stores
//! one of its events, so this sends every change); a session sent twice is
//! harmless (queries keep its highest version).
//!
//! Visits that are over are copied in order of their end `(last_ms, id)`.
//! Visits written into the past later (an import's, final when written)
//! may end before where that copy stands: SQLite queues them
//! (`visit_backlog`), and they are copied in the queue's order instead,
//! resuming after ClickHouse's largest `visits.backlog` (each carries its
//! place in the queue); the ordered copy leaves every queued visit out.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};
use serde_json::{Map, Value};

use super::{ClickHouse, ClickHouseError, int, lit, schema};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::StoreError;

/// Events per `INSERT` (and per SQLite read).
pub const BATCH: usize = 20_000;

/// How long the shipper sleeps when caught up, and after a failure.
const IDLE: Duration = Duration::from_millis(500);
const AFTER_FAILURE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error("reading SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sites(#[from] crate::sites::SiteError),
    #[error(
        "clickhouse holds {table} up to id {clickhouse}, but this SQLite database's newest \
         is {sqlite} (a restored backup, or another collector's database): drop the \
         clickhouse database and it is copied again"
    )]
    Behind {
        table: &'static str,
        sqlite: i64,
        clickhouse: i64,
    },
}

/// The columns copied as they are: each table's own, then the dimensions
/// an event and its session share.
const EVENT_COLUMNS: &[&str] = &[
    "id",
    "site_id",
    "ts_ms",
    "kind",
    "name",
    "visitor_id",
    "session_id",
    "hostname",
    "path",
    "screen_width",
    "revenue_amount",
    "revenue_currency",
    "event_id",
];

const SESSION_COLUMNS: &[&str] = &[
    "id",
    "site_id",
    "visitor_id",
    "version",
    "started_ms",
    "last_ms",
    "entry_path",
    "exit_path",
    "pageviews",
    "events",
    "interactions",
];

const DIMENSION_COLUMNS: &[&str] = &[
    "referrer",
    "referrer_domain",
    "source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "click_id",
    "country",
    "browser",
    "browser_major",
    "os",
    "device",
    "os_version",
    "region",
    "city",
];

/// A table's own columns and the shared dimensions.
fn with_dimensions(own: &[&'static str]) -> Vec<&'static str> {
    own.iter().chain(DIMENSION_COLUMNS).copied().collect()
}

struct Position {
    /// The largest event id ClickHouse holds; `None`: ask it.
    shipped: Option<i64>,
    /// `(last_ms, id)` of the last visit shipped as over; `None`: ask.
    closed: Option<(i64, i64)>,
    /// The largest engagement id ClickHouse holds; `None`: ask it.
    engaged: Option<i64>,
    /// The largest `visit_backlog` place ClickHouse's visits hold.
    backlog: Option<i64>,
    reader: Option<Connection>,
    /// Batches since the last look for removed sites.
    since_prune: u32,
}

/// A visit is over, and shipped to `visits` once, this long after the
/// session timeout has passed since its last event (room for a commit that
/// came late).
const CLOSE_GRACE_MS: i64 = 60_000;

/// Snapshots of open visits are read for visits started this recently;
/// any older visit is over (a session timeout is at most a day) and in
/// `visits`. Their daily partitions are dropped after this.
pub const OPEN_KEEP_MS: i64 = 8 * 86_400_000;

/// Every this many shipper rounds (about five minutes when idle), and on
/// every (re)start, the rows of sites removed from SQLite are deleted from
/// ClickHouse too, and ClickHouse is asked again where it stands.
pub const PRUNE_EVERY: u32 = 600;

/// The one shipper of a collector (its lock keeps a test's `ship` and the
/// background thread from sending the same rows).
pub struct Shipper {
    pub ch: Arc<ClickHouse>,
    db: PathBuf,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    /// The session timeout: a visit idle longer is over.
    timeout_ms: i64,
    /// `--retention-days`: older rows are deleted here too.
    retention_days: Option<u32>,
    /// SQLite deleted rows past the retention period: prune at the next
    /// round, not minutes later.
    prune_requested: AtomicBool,
    position: Mutex<Position>,
    /// The last round worked and left nothing behind: ClickHouse holds
    /// what SQLite holds (but for what arrived since).
    ready: AtomicBool,
}

impl Shipper {
    pub fn new(
        ch: Arc<ClickHouse>,
        db: PathBuf,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        timeout_ms: i64,
        retention_days: Option<u32>,
    ) -> Self {
        Self {
            ch,
            db,
            metrics,
            clock,
            timeout_ms,
            retention_days,
            prune_requested: AtomicBool::new(false),
            position: Mutex::new(Position {
                shipped: None,
                closed: None,
                engaged: None,
                backlog: None,
                reader: None,
                since_prune: PRUNE_EVERY,
            }),
            ready: AtomicBool::new(false),
        }
    }

    /// Whether the stats API may ask ClickHouse: the shipper has caught up
    /// and its last round worked. Until then (a backfill, an outage),
    /// ClickHouse would answer from part of the rows.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Counts a stats query asked of ClickHouse, answered or failed.
    pub fn count_query(&self, answered: bool) {
        if answered {
            self.metrics.clickhouse_queries.inc();
        } else {
            self.metrics.clickhouse_query_failures.inc();
        }
    }

    /// Ships one batch of at most `batch` events (and the snapshots of
    /// their visits), one of at most `batch` visits that are over and one
    /// of at most `batch` engagement rows; returns the largest count (below
    /// `batch`: caught up).
    pub fn ship_batch(&self, batch: usize) -> Result<usize, ShipError> {
        let mut pos = self.position.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.ship_locked(&mut pos, batch);
        self.ready
            .store(matches!(result, Ok(n) if n < batch), Ordering::Release);
        if result.is_err() {
            self.metrics.clickhouse_failures.inc();
            // Ask ClickHouse where it stands before the next try, and open
            // SQLite afresh (the file may have been replaced).
            pos.shipped = None;
            pos.closed = None;
            pos.engaged = None;
            pos.backlog = None;
            pos.reader = None;
        }
        result
    }

    /// Deletes the rows of removed sites, and those past the retention
    /// period, from ClickHouse now (the shipper does it on start and every
    /// few minutes). ClickHouse applies the deletion in the background,
    /// within seconds.
    pub fn prune(&self) -> Result<(), ShipError> {
        // Held: not while a batch of a site being removed is on its way.
        let _pos = self.position.lock().unwrap_or_else(|p| p.into_inner());
        let conn = crate::store::schema::open_reader(&self.db)?;
        prune_removed_sites(&self.ch, &conn)?;
        self.prune_past_retention(&conn)
    }

    /// Asks the next round to prune (SQLite deleted rows past the retention
    /// period: ClickHouse should follow within seconds).
    pub fn prune_soon(&self) {
        self.prune_requested.store(true, Ordering::Release);
    }

    /// Deletes what each site recorded before its retention horizon
    /// (retention.rs), as SQLite does: events by time, visits by start.
    fn prune_past_retention(&self, conn: &Connection) -> Result<(), ShipError> {
        let now = self.clock.now();
        let horizons: Vec<_> = crate::sites::list(conn)?
            .iter()
            .filter_map(|site| crate::retention::site_horizon(site, now, self.retention_days))
            .collect();
        if horizons.is_empty() {
            return Ok(());
        }
        for (table, time) in [
            ("events", "ts_ms"),
            ("visits", "started_ms"),
            ("open_visits", "started_ms"),
            ("engagements", "ts_ms"),
        ] {
            let old = horizons
                .iter()
                .map(|h| format!("(site_id = {} AND {time} < {})", h.site_id, h.from_ms))
                .collect::<Vec<_>>()
                .join(" OR ");
            if mutation_running(&self.ch, table)? {
                continue;
            }
            let found = self.ch.rows(&format!(
                "SELECT count() FROM {} WHERE {old}",
                self.ch.table(table)
            ))?;
            let found = found.first().and_then(|r| r.first()).map_or(0, int);
            if found > 0 {
                tracing::info!(
                    rows = found,
                    table,
                    "deleting rows older than the retention period from clickhouse"
                );
                self.ch.execute(&format!(
                    "ALTER TABLE {} DELETE WHERE {old}",
                    self.ch.table(table)
                ))?;
            }
        }
        Ok(())
    }

    /// Ships until caught up; returns the sum of each round's largest count
    /// (events, visits over or engagement rows).
    pub fn ship_all(&self) -> Result<usize, ShipError> {
        let mut total = 0;
        loop {
            let n = self.ship_batch(BATCH)?;
            total += n;
            if n < BATCH {
                return Ok(total);
            }
        }
    }

    fn ship_locked(&self, pos: &mut Position, batch: usize) -> Result<usize, ShipError> {
        pos.since_prune += 1;
        // Now and then ClickHouse is asked again where it stands: tables
        // emptied without an error (`TRUNCATE`) are then filled again too.
        let look_again =
            pos.since_prune >= PRUNE_EVERY || self.prune_requested.swap(false, Ordering::AcqRel);
        if look_again
            || pos.shipped.is_none()
            || pos.closed.is_none()
            || pos.engaged.is_none()
            || pos.backlog.is_none()
        {
            // Also after ClickHouse was down at start or lost its tables.
            schema::create(&self.ch)?;
            let rows = self
                .ch
                .rows(&format!("SELECT max(id) FROM {}", self.ch.table("events")))?;
            pos.shipped = Some(rows.first().and_then(|r| r.first()).map_or(0, int));
            // The ordered copy's own: queued visits end anywhere.
            let rows = self.ch.rows(&format!(
                "SELECT last_ms, id FROM {} WHERE backlog = 0 \
                 ORDER BY last_ms DESC, id DESC LIMIT 1",
                self.ch.table("visits")
            ))?;
            pos.closed = Some(rows.first().map_or((0, 0), |r| {
                (r.first().map_or(0, int), r.get(1).map_or(0, int))
            }));
            // Engagement ids are never given twice (migration 11).
            let rows = self.ch.rows(&format!(
                "SELECT max(id) FROM {}",
                self.ch.table("engagements")
            ))?;
            pos.engaged = Some(rows.first().and_then(|r| r.first()).map_or(0, int));
            let rows = self.ch.rows(&format!(
                "SELECT max(backlog) FROM {}",
                self.ch.table("visits")
            ))?;
            pos.backlog = Some(rows.first().and_then(|r| r.first()).map_or(0, int));
        }
        let (Some(shipped), Some(closed), Some(engaged), Some(backlog)) =
            (pos.shipped, pos.closed, pos.engaged, pos.backlog)
        else {
            return Ok(0);
        };
        if pos.reader.is_none() {
            pos.reader = Some(crate::store::schema::open_reader(&self.db)?);
        }
        let Some(conn) = pos.reader.as_mut() else {
            return Ok(0);
        };
        if look_again {
            prune_removed_sites(&self.ch, conn)?;
            self.prune_past_retention(conn)?;
            drop_old_open_visits(&self.ch, self.clock.now_ms())?;
            pos.since_prune = 0;
        }
        let tx = conn.transaction()?;
        // Every id SQLite ever gave, deleted rows' too (migration 6).
        let given = crate::store::rows::next_event_id(&tx)? - 1;
        if given < shipped {
            // ClickHouse holds events this database never had: a restored
            // backup, or another collector's database.
            return Err(ShipError::Behind {
                table: "events",
                sqlite: given,
                clickhouse: shipped,
            });
        }
        // Every place the queue ever gave (AUTOINCREMENT keeps it).
        let queued: i64 = tx
            .prepare_cached(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'visit_backlog'), 0)",
            )?
            .query_row([], |r| r.get(0))?;
        if queued < backlog {
            return Err(ShipError::Behind {
                table: "visits",
                sqlite: queued,
                clickhouse: backlog,
            });
        }
        let given_engagements = crate::store::rows::next_engagement_id(&tx)? - 1;
        if given_engagements < engaged {
            return Err(ShipError::Behind {
                table: "engagements",
                sqlite: given_engagements,
                clickhouse: engaged,
            });
        }
        self.metrics
            .clickhouse_lag
            .set(given.saturating_sub(shipped).max(0));
        let limit = i64::try_from(batch).unwrap_or(i64::MAX);
        let cutoff = self.clock.now_ms() - self.timeout_ms - CLOSE_GRACE_MS;
        let events = if given > shipped {
            read_events(&tx, shipped, limit, cutoff)?
        } else {
            Batch::default()
        };
        let over = read_visits_over(&tx, closed, cutoff, limit)?;
        let behind = read_backlog(&tx, backlog, limit)?;
        let engagement = read_engagements(&tx, engaged, limit)?;
        tx.finish()?;
        let db = &self.ch.database;
        if !events.visits.is_empty() {
            self.ch.insert(
                "open_visits",
                events.visits,
                &format!("tallymark-{db}-open-{shipped}-{}", events.last),
            )?;
        }
        if events.count > 0 {
            self.ch.insert(
                "events",
                events.lines,
                &format!("tallymark-{db}-events-{shipped}-{}", events.last),
            )?;
            pos.shipped = Some(events.last);
            self.metrics.clickhouse_shipped.inc_by(events.count as u64);
            self.metrics
                .clickhouse_lag
                .set(given.saturating_sub(events.last).max(0));
        }
        if let Some(last) = over.last.filter(|_| over.count > 0) {
            self.ch.insert(
                "visits",
                over.lines,
                &format!(
                    "tallymark-{db}-visits-{}-{}-{}-{}",
                    closed.0, closed.1, last.0, last.1
                ),
            )?;
            pos.closed = Some(last);
        }
        if behind.count > 0 {
            let last = behind.backlog;
            self.ch.insert(
                "visits",
                behind.lines,
                &format!("tallymark-{db}-backlog-{backlog}-{last}"),
            )?;
            pos.backlog = Some(last);
        }
        if engagement.count > 0 {
            self.ch.insert(
                "engagements",
                engagement.lines,
                &format!("tallymark-{db}-engagements-{engaged}-{}", engagement.last),
            )?;
            pos.engaged = Some(engagement.last);
        }
        Ok(events
            .count
            .max(over.count)
            .max(behind.count)
            .max(engagement.count))
    }
}

/// Rows read from SQLite for one `INSERT` (JSON lines).
#[derive(Default)]
struct Batch {
    lines: String,
    count: usize,
    last: i64,
    /// With events: the latest snapshots of their visits.
    visits: String,
}

/// At most `limit` events after id `from`, of sites SQLite still has, and
/// the snapshots of their visits still going (last event after `cutoff`)
/// as SQLite holds them now; a visit already over goes to `visits` only
/// (a backfill sends no snapshots).
fn read_events(
    tx: &rusqlite::Transaction<'_>,
    from: i64,
    limit: i64,
    cutoff: i64,
) -> Result<Batch, ShipError> {
    let mut out = Batch {
        last: from,
        ..Batch::default()
    };
    let event_columns = with_dimensions(EVENT_COLUMNS);
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {}, {} FROM events WHERE id > ?1 AND site_id IN (SELECT id FROM sites) \
         ORDER BY id LIMIT ?2",
        event_columns.join(", "),
        *PROP_PAIRS
    ))?;
    let mut rows = stmt.query([from, limit])?;
    while let Some(r) = rows.next()? {
        let mut obj = columns(r, &event_columns)?;
        let pairs: Option<String> = r.get(event_columns.len())?;
        let (keys, values) = props_arrays(pairs.as_deref());
        obj.insert("prop_keys".into(), Value::from(keys));
        obj.insert("prop_values".into(), Value::from(values));
        out.last = r.get(0)?;
        out.count += 1;
        push_line(&mut out.lines, obj);
    }
    let session_columns = with_dimensions(SESSION_COLUMNS);
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {} FROM sessions WHERE id IN \
         (SELECT session_id FROM events WHERE id > ?1 AND id <= ?2) AND last_ms > ?3",
        session_columns.join(", ")
    ))?;
    let mut rows = stmt.query([from, out.last, cutoff])?;
    while let Some(r) = rows.next()? {
        push_line(&mut out.visits, columns(r, &session_columns)?);
    }
    Ok(out)
}

const ENGAGEMENT_COLUMNS: &[&str] = &[
    "id",
    "site_id",
    "ts_ms",
    "session_id",
    "hostname",
    "path",
    "engaged_ms",
    "scroll_depth",
];

/// At most `limit` engagement rows after id `from`, of sites SQLite still
/// has (time on page and scroll depth: never changed once written).
fn read_engagements(
    tx: &rusqlite::Transaction<'_>,
    from: i64,
    limit: i64,
) -> Result<Batch, ShipError> {
    let mut out = Batch {
        last: from,
        ..Batch::default()
    };
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {} FROM engagements WHERE id > ?1 AND site_id IN (SELECT id FROM sites) \
         ORDER BY id LIMIT ?2",
        ENGAGEMENT_COLUMNS.join(", ")
    ))?;
    let mut rows = stmt.query([from, limit])?;
    while let Some(r) = rows.next()? {
        out.last = r.get(0)?;
        out.count += 1;
        push_line(&mut out.lines, columns(r, ENGAGEMENT_COLUMNS)?);
    }
    Ok(out)
}

/// Visits read for one `INSERT` into `visits` (JSON lines), the
/// `(last_ms, id)` of the last, and (queued visits) the last's place.
struct Over {
    lines: String,
    count: usize,
    last: Option<(i64, i64)>,
    backlog: i64,
}

/// At most `limit` queued visits (`visit_backlog`) after place `from`, in
/// the queue's order, each with its place (`backlog`).
fn read_backlog(tx: &rusqlite::Transaction<'_>, from: i64, limit: i64) -> Result<Over, ShipError> {
    let mut session_columns = with_dimensions(SESSION_COLUMNS);
    let select: Vec<String> = session_columns
        .iter()
        .map(|c| format!("sessions.{c}"))
        .chain([String::from("visit_backlog.seq")])
        .collect();
    session_columns.push("backlog");
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {} FROM visit_backlog JOIN sessions ON sessions.id = visit_backlog.session_id \
         WHERE visit_backlog.seq > ?1 AND sessions.site_id IN (SELECT id FROM sites) \
         ORDER BY visit_backlog.seq LIMIT ?2",
        select.join(", ")
    ))?;
    let mut rows = stmt.query([from, limit])?;
    let mut out = Over {
        lines: String::new(),
        count: 0,
        last: None,
        backlog: from,
    };
    let place_at = session_columns.len() - 1;
    while let Some(r) = rows.next()? {
        out.backlog = r.get(place_at)?;
        out.count += 1;
        push_line(&mut out.lines, columns(r, &session_columns)?);
    }
    Ok(out)
}

/// Visits that are over (last event at or before `cutoff`), after `from`
/// in `(last_ms, id)` order: at most `limit`, each as SQLite holds it,
/// final (a visit that is over never changes again).
fn read_visits_over(
    tx: &rusqlite::Transaction<'_>,
    from: (i64, i64),
    cutoff: i64,
    limit: i64,
) -> Result<Over, ShipError> {
    let session_columns = with_dimensions(SESSION_COLUMNS);
    // Queued visits are the queue's to send (`read_backlog`).
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {} FROM sessions WHERE last_ms >= ?1 AND (last_ms > ?1 OR id > ?2) \
         AND last_ms <= ?3 AND site_id IN (SELECT id FROM sites) \
         AND NOT EXISTS (SELECT 1 FROM visit_backlog WHERE session_id = sessions.id) \
         ORDER BY last_ms, id LIMIT ?4",
        session_columns.join(", ")
    ))?;
    let mut rows = stmt.query([from.0, from.1, cutoff, limit])?;
    let mut out = Over {
        lines: String::new(),
        count: 0,
        last: None,
        backlog: 0,
    };
    let (id_at, last_at) = (
        session_columns.iter().position(|c| *c == "id").unwrap_or(0),
        session_columns
            .iter()
            .position(|c| *c == "last_ms")
            .unwrap_or(0),
    );
    while let Some(r) = rows.next()? {
        out.last = Some((r.get(last_at)?, r.get(id_at)?));
        out.count += 1;
        push_line(&mut out.lines, columns(r, &session_columns)?);
    }
    Ok(out)
}

/// Drops the daily partitions of `open_visits` older than [`OPEN_KEEP_MS`]
/// (queries no longer read them; their visits are in `visits`).
fn drop_old_open_visits(ch: &ClickHouse, now_ms: i64) -> Result<(), ShipError> {
    // The partition of that moment, in ClickHouse's own timezone, as it
    // names them.
    let rows = ch.rows(&format!(
        "SELECT toYYYYMMDD(toDateTime(intDiv({}, 1000)))",
        (now_ms - OPEN_KEEP_MS).max(0)
    ))?;
    let keep_from = rows.first().and_then(|r| r.first()).map_or(0, int);
    let parts = ch.rows(&format!(
        "SELECT DISTINCT partition_id FROM system.parts \
         WHERE database = {} AND table = 'open_visits' AND active",
        lit(&ch.database)
    ))?;
    for p in parts {
        let id = p.first().and_then(super::text).unwrap_or_default();
        if id.parse::<i64>().is_ok_and(|day| day < keep_from) {
            ch.execute(&format!(
                "ALTER TABLE {} DROP PARTITION ID {}",
                ch.table("open_visits"),
                lit(&id)
            ))?;
        }
    }
    Ok(())
}

/// Deletes from ClickHouse the rows of every site SQLite no longer has
/// (`tallymark site remove`: "everything stored for it"). Site ids are
/// never reused, so nothing of a later site can be caught.
fn prune_removed_sites(ch: &ClickHouse, conn: &Connection) -> Result<(), ShipError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM sites")?;
    let known: std::collections::HashSet<i64> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    // The largest site id this database ever gave (migration 4): a larger
    // one in ClickHouse is not a site removed here (another collector's
    // database, a wrong `--data`) and is never touched.
    let given: i64 = conn.query_row("SELECT last FROM site_ids", [], |r| r.get(0))?;
    for table in ["events", "visits", "open_visits", "engagements"] {
        if mutation_running(ch, table)? {
            continue;
        }
        let gone: Vec<String> = ch
            .rows(&format!("SELECT DISTINCT site_id FROM {}", ch.table(table)))?
            .iter()
            .filter_map(|r| r.first().map(int))
            .filter(|id| !known.contains(id) && *id <= given)
            .map(|id| id.to_string())
            .collect();
        if !gone.is_empty() {
            tracing::info!(sites = %gone.join(","), table, "deleting removed sites' rows from clickhouse");
            ch.execute(&format!(
                "ALTER TABLE {} DELETE WHERE site_id IN ({})",
                ch.table(table),
                gone.join(", ")
            ))?;
        }
    }
    Ok(())
}

/// Whether a deletion of `table` is still being applied: it rewrites the
/// table's parts in the background, so never a second while one runs.
fn mutation_running(ch: &ClickHouse, table: &str) -> Result<bool, ShipError> {
    let running = ch.rows(&format!(
        "SELECT count() FROM system.mutations WHERE database = {} AND table = {} AND is_done = 0",
        lit(&ch.database),
        lit(table)
    ))?;
    Ok(running.first().and_then(|r| r.first()).map_or(0, int) > 0)
}

fn push_line(out: &mut String, obj: Map<String, Value>) {
    out.push_str(&Value::Object(obj).to_string());
    out.push('\n');
}

/// The named columns of `r` (selected in that order) as JSON.
fn columns(r: &Row<'_>, names: &[&str]) -> rusqlite::Result<Map<String, Value>> {
    let mut obj = Map::new();
    for (i, name) in names.iter().enumerate() {
        let v = match r.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::from(n),
            ValueRef::Real(f) => Value::from(f),
            ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(_) => Value::Null,
        };
        obj.insert((*name).to_string(), v);
    }
    Ok(obj)
}

/// An event's properties as a JSON list of `[key, value]` pairs, each value
/// rendered by SQLite exactly as the stats API shows it from SQLite
/// (`stats::query::prop_text`), in the order they were sent.
static PROP_PAIRS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "(SELECT json_group_array(json_array(j.key, {})) FROM json_each(events.props) AS j \
         WHERE j.type <> 'null')",
        crate::stats::query::prop_text("j.type", "j.value")
    )
});

/// The `[key, value]` pairs of [`PROP_PAIRS`] as parallel arrays.
fn props_arrays(pairs: Option<&str>) -> (Vec<String>, Vec<String>) {
    let pairs: Vec<(String, String)> = pairs
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    pairs.into_iter().unzip()
}

/// Ships in the background until the process ends: a batch whenever there
/// is one, else every [`IDLE`]. A failure is logged once (and counted in
/// `tallymark_clickhouse_failures_total`), retried every [`AFTER_FAILURE`],
/// and its end is logged; nothing is lost meanwhile (the rows wait in SQLite).
/// The thread ends once the shipper is dropped.
pub fn spawn(shipper: Weak<Shipper>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("clickhouse-shipper".into())
        .spawn(move || {
            let mut failing = false;
            while let Some(shipper) = shipper.upgrade() {
                match shipper.ship_batch(BATCH) {
                    Ok(n) => {
                        if failing {
                            tracing::info!("shipping to clickhouse works again");
                            failing = false;
                        }
                        if n < BATCH {
                            std::thread::sleep(IDLE);
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "shipping to clickhouse failed; retrying");
                            failing = true;
                        }
                        std::thread::sleep(AFTER_FAILURE);
                    }
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_sent_as_the_stats_api_shows_them_from_sqlite() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY, props TEXT)")
            .unwrap();
        let props = r#"{"plan":"pro","n":3,"x":2.5,"y":4.0,"ok":true,"no":false,
            "big":1e16,"huge":1e21,"tiny":1e-7,"neg":-0.5,"z":null}"#;
        conn.execute("INSERT INTO events (props) VALUES (?1)", [props])
            .unwrap();
        let pairs: Option<String> = conn
            .query_row(&format!("SELECT {} FROM events", *PROP_PAIRS), [], |r| {
                r.get(0)
            })
            .unwrap();
        let (keys, values) = props_arrays(pairs.as_deref());
        assert_eq!(keys.len(), 10, "{keys:?} (a null is not a value)");
        for (key, value) in keys.iter().zip(&values) {
            // What the stats API's SQLite expression makes of the same key.
            let shown: String = conn
                .query_row(
                    &format!(
                        "SELECT {} FROM events",
                        crate::stats::query::prop_text(
                            "json_type(props, ?1)",
                            "json_extract(props, ?1)"
                        )
                    ),
                    [format!("$.\"{key}\"")],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(value, &shown, "{key}");
        }
        let pairs: Vec<_> = keys.iter().zip(&values).collect();
        for (key, value) in [("plan", "pro"), ("n", "3"), ("y", "4"), ("ok", "true")] {
            assert!(
                pairs.contains(&(&key.to_string(), &value.to_string())),
                "{pairs:?}"
            );
        }
        assert_eq!(props_arrays(None), (vec![], vec![]));
    }
}
