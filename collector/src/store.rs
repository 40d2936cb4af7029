//! Durable storage in SQLite with group commit.
//!
//! One writer thread owns the connection. Requests hand it rows through a
//! bounded channel; it commits whatever has queued up (up to [`MAX_BATCH`])
//! in one transaction and only then acknowledges each request. So an
//! acknowledged event is on disk, and no request ever holds a transaction or
//! a lock of its own (the failure of seed 001).

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use rusqlite::{Connection, params};
use tallymark_core::wire::PayloadV1;
use tokio::sync::oneshot;

use crate::error::ApiError;

/// Most rows committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// Rows waiting for the writer before requests are refused with 503.
pub const QUEUE_CAPACITY: usize = 8192;
/// How long the writer waits for more rows to join a batch.
const LINGER: Duration = Duration::from_millis(2);

/// One stored event, as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub ts_ms: i64,
    pub site: String,
    pub kind: &'static str,
    pub url: String,
    pub referrer: Option<String>,
}

impl EventRow {
    pub fn from_payload(p: PayloadV1, ts_ms: i64) -> Self {
        Self {
            ts_ms,
            site: p.site,
            kind: p.kind.as_str(),
            url: p.url,
            referrer: p.referrer,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: schema version {0} is newer than this binary knows")]
    SchemaTooNew(i64),
    #[error("starting the writer thread: {0}")]
    Thread(#[from] std::io::Error),
}

struct Job {
    row: EventRow,
    ack: oneshot::Sender<bool>,
}

pub struct Store {
    tx: SyncSender<Job>,
}

/// Versioned migrations: entry `i` moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &["CREATE TABLE events (
        id       INTEGER PRIMARY KEY,
        ts_ms    INTEGER NOT NULL,
        site     TEXT NOT NULL,
        kind     TEXT NOT NULL,
        url      TEXT NOT NULL,
        referrer TEXT
    );
    CREATE INDEX events_site_ts ON events (site, ts_ms);"];

/// Opens (creating and migrating) the database at `path`.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::SchemaTooNew(version));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

impl Store {
    /// Opens the database and starts the writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_connection(path)?;
        let (tx, rx) = sync_channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("tallymark-writer".into())
            .spawn(move || writer(conn, rx))?;
        Ok(Self { tx })
    }

    /// Queues `row` and waits until its batch has committed.
    pub async fn insert(&self, row: EventRow) -> Result<(), ApiError> {
        let (ack, done) = oneshot::channel();
        match self.tx.try_send(Job { row, ack }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(ApiError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(ApiError::StorageUnavailable),
        }
        match done.await {
            Ok(true) => Ok(()),
            _ => Err(ApiError::StorageUnavailable),
        }
    }
}

fn writer(mut conn: Connection, rx: Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.recv_timeout(LINGER) {
                Ok(job) => batch.push(job),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let ok = match commit(&mut conn, &batch) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, rows = batch.len(), "batch commit failed");
                false
            }
        };
        for job in batch.drain(..) {
            let _ = job.ack.send(ok);
        }
    }
}

fn commit(conn: &mut Connection, batch: &[Job]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO events (ts_ms, site, kind, url, referrer) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for Job { row, .. } in batch {
            stmt.execute(params![
                row.ts_ms,
                row.site,
                row.kind,
                row.url,
                row.referrer
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}
