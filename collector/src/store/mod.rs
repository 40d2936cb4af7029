//! Durable storage in SQLite with group commit.
//!
//! One writer thread owns the write connection. Requests hand it rows through
//! a bounded channel; it commits whatever has queued up (up to `max_batch`)
//! in one transaction, and only then acknowledges each request. It never
//! waits for more rows: while one batch commits, the next one gathers by
//! itself (classic group commit), so a lone event is not delayed. So an acknowledged event is on disk,
//! and no request ever holds a transaction or a lock of its own (seed 001).
//! A full queue is refused at once (503), never waited on or dropped
//! silently (seed 003, pitfall 7).

pub mod backup;
pub mod rows;
pub mod schema;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::metrics::Metrics;
pub use rows::{Dimensions, EngagementRow, EventRow, SessionRow};

/// What a `202` survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A crash of the collector process (`kill -9`, OOM, panic): SQLite WAL
    /// with `synchronous=NORMAL`. The operating system may still lose the
    /// last commits on power loss or a kernel crash.
    #[default]
    Process,
    /// Power loss too: every batch is fsynced (`synchronous=FULL`) before
    /// its requests are answered. Costs the disk's fsync latency per batch.
    Power,
}

#[derive(Debug, Clone, Copy)]
pub struct StoreConfig {
    /// Rows waiting for the writer before requests are refused with 503.
    pub queue_capacity: usize,
    /// Most rows committed in one transaction.
    pub max_batch: usize,
    pub durability: Durability,
    pub wal: WalConfig,
}

/// How often the WAL is copied back into the database, and the WAL length
/// (in pages) past which the writer finishes that copy itself.
#[derive(Debug, Clone, Copy)]
pub struct WalConfig {
    pub checkpoint_every: std::time::Duration,
    pub finish_pages: i64,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: std::time::Duration::from_secs(1),
            // 64 MB of 4 KB pages: at 5,000 events/s the writer finishes a
            // checkpoint (two short fsyncs) every few seconds.
            finish_pages: 16384,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 8192,
            max_batch: 512,
            durability: Durability::Process,
            wal: WalConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "database {path}: schema version {version} is newer than this binary knows \
         (a newer tallymark wrote it: run that one, or restore a backup)"
    )]
    SchemaTooNew { path: String, version: i64 },
    /// SQLite opens a file it may not write read-only, without an error:
    /// every later write would fail instead.
    #[error(
        "database {0} is read-only: the collector must be able to write it \
         (and create files beside it); check its owner and permissions"
    )]
    ReadOnly(String),
    #[error("starting the writer thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("the write queue is full")]
    QueueFull,
    #[error("the writer has stopped")]
    WriterGone,
    /// The database file was deleted or replaced under the running
    /// collector: SQLite would go on committing into the old file, which
    /// nothing will ever read again.
    #[error(
        "database {0} was deleted or moved away while the collector ran: events \
         are refused; restart `tallymark serve` (stop it before replacing its database)"
    )]
    FileGone(String),
    /// The last batch could not be committed (its events were answered
    /// 503); cleared by the next commit that works.
    #[error("the last commit failed ({0}): events are answered 503 until one works")]
    CommitFailing(String),
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Committed to disk.
    Committed,
    /// Its `event_id` was stored before: nothing written.
    Duplicate,
}

/// Work for the writer's connection; it sends its own result back.
type Maintenance = Box<dyn FnOnce(&mut Connection) + Send>;

enum Job {
    Event {
        event: Box<EventRow>,
        session: Box<SessionRow>,
        ack: oneshot::Sender<Result<Ack, ()>>,
    },
    Engagement {
        row: Box<EngagementRow>,
        ack: oneshot::Sender<Result<Ack, ()>>,
    },
    Maintenance(Maintenance),
}

pub struct Store {
    queue: Queue,
    /// Dropped with the store, which ends the checkpoint thread.
    _stop_checkpoints: SyncSender<()>,
}

/// The writer's bounded job queue.
#[derive(Clone)]
struct Queue {
    tx: SyncSender<Job>,
    /// Jobs in the channel plus places reserved for one ([`Slot`]); never
    /// more than `capacity`, so a reserved place always fits.
    depth: Arc<AtomicUsize>,
    capacity: usize,
    /// Watches the database file (see [`FileWatch`]): once it is gone every
    /// event is refused, never acknowledged into a file no one will read.
    watch: FileWatch,
}

impl Queue {
    /// Reserves a place, or refuses at once when the queue is full.
    fn reserve(&self) -> Result<Slot<'_>, StoreError> {
        self.watch.refuse_if_gone()?;
        self.depth
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                (d < self.capacity).then_some(d + 1)
            })
            .map_err(|_| StoreError::QueueFull)?;
        Ok(Slot {
            queue: self,
            used: false,
        })
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        let mut slot = self.reserve()?;
        slot.used = true;
        self.send_reserved(job)
    }

    /// Sends a job whose place is already counted in `depth`.
    fn send_reserved(&self, job: Job) -> Result<(), StoreError> {
        let result = self.tx.try_send(job);
        if result.is_err() {
            self.depth.fetch_sub(1, Ordering::AcqRel);
        }
        match result {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoreError::QueueFull),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::WriterGone),
        }
    }
}

/// A place in the write queue, reserved before the event's session is
/// stepped: once a request holds one, its event cannot be refused for a full
/// queue, so the live session never counts an event that was answered 503.
/// Dropped unused, the place is given back.
pub struct Slot<'a> {
    queue: &'a Queue,
    used: bool,
}

impl Slot<'_> {
    /// Queues an event and its session snapshot; resolves once committed.
    pub async fn ingest(self, event: EventRow, session: SessionRow) -> Result<Ack, StoreError> {
        self.submit(|ack| Job::Event {
            event: Box::new(event),
            session: Box::new(session),
            ack,
        })
        .await
    }

    /// Queues an engagement row; resolves once committed (in the same
    /// transactions as events: one batch, one commit).
    pub async fn engage(self, row: EngagementRow) -> Result<Ack, StoreError> {
        self.submit(|ack| Job::Engagement {
            row: Box::new(row),
            ack,
        })
        .await
    }

    /// Sends the job `job(ack)` in this place; resolves once committed.
    async fn submit(
        mut self,
        job: impl FnOnce(oneshot::Sender<Result<Ack, ()>>) -> Job,
    ) -> Result<Ack, StoreError> {
        let (ack, done) = oneshot::channel();
        self.used = true;
        self.queue.send_reserved(job(ack))?;
        done.await
            .map_err(|_| StoreError::WriterGone)?
            .map_err(|()| StoreError::WriterGone)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.queue.depth.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Store {
    /// Opens (creating and migrating) the database and starts the writer.
    pub fn open(
        path: &Path,
        config: StoreConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let conn = schema::open(path)?;
        if config.durability == Durability::Power {
            conn.pragma_update(None, "synchronous", "FULL")?;
        }
        // Checkpoints leave the commit path: a commit that happens to cross
        // the WAL's auto-checkpoint threshold would otherwise copy pages and
        // sync the database file while its whole batch waits for the ack.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // After a burst, the WAL file shrinks back to this when it restarts.
        conn.pragma_update(None, "journal_size_limit", 128 * 1024 * 1024)?;
        let (tx, rx) = sync_channel(config.queue_capacity);
        let queue = Queue {
            tx,
            depth: Arc::new(AtomicUsize::new(0)),
            capacity: config.queue_capacity,
            watch: FileWatch::new(path),
        };
        let (stop_checkpoints, stopped) = sync_channel::<()>(0);
        let checkpointer = schema::open_reader_writable(path)?;
        let finisher = queue.clone();
        let wal = config.wal;
        let wal_pages = metrics.wal_pages.clone();
        std::thread::Builder::new()
            .name("tallymark-checkpoint".into())
            .spawn(move || checkpoints(checkpointer, stopped, finisher, wal, wal_pages))?;
        let writer_depth = queue.depth.clone();
        let max_batch = config.max_batch.max(1);
        let watch = queue.watch.clone();
        std::thread::Builder::new()
            .name("tallymark-writer".into())
            .spawn(move || writer(conn, rx, max_batch, writer_depth, metrics, watch))?;
        Ok(Self {
            queue,
            _stop_checkpoints: stop_checkpoints,
        })
    }

    pub fn path(&self) -> &Path {
        &self.queue.watch.path
    }

    /// The error events get once the database file was found deleted or
    /// moved away (by the writer after a commit, or by the checkpoint thread
    /// within a second when idle); `Ok` while it is in place.
    pub fn check_file(&self) -> Result<(), StoreError> {
        self.queue.watch.refuse_if_gone()
    }

    /// For `/healthz`: the file is still there and the last commit worked.
    pub fn health(&self) -> Result<(), StoreError> {
        self.queue.watch.health()
    }

    /// A new read-only connection.
    pub fn reader(&self) -> Result<Connection, StoreError> {
        schema::open_reader(self.path())
    }

    /// Rows queued for the writer now.
    pub fn queue_depth(&self) -> usize {
        self.queue.depth.load(Ordering::Relaxed)
    }

    /// Reserves a place in the write queue, or refuses at once when it is
    /// full (the request answers 503).
    pub fn reserve(&self) -> Result<Slot<'_>, StoreError> {
        self.queue.reserve()
    }

    /// Runs `work` on the writer's connection, between batches, so nothing
    /// else ever writes concurrently (salts, deletions, checkpoints).
    pub async fn maintain<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (ack, done) = oneshot::channel();
        self.queue.send(Job::Maintenance(Box::new(move |conn| {
            let _ = ack.send(work(conn));
        })))?;
        Ok(done.await.map_err(|_| StoreError::WriterGone)??)
    }
}

/// Copies the WAL back into the database every `wal.checkpoint_every`
/// (PASSIVE: never waits for, nor blocks, the writer or readers), until the
/// store is dropped.
///
/// Under a steady stream of commits such a checkpoint never catches up with
/// the end of the WAL, and SQLite restarts the WAL from its beginning only
/// once every frame was copied back: the file would grow without bound (1.3
/// GB after three minutes of benchmark load). So when the WAL is longer
/// than `wal.finish_pages`, the writer is asked to finish the job between
/// two batches: it copies back only what was committed since this pass
/// (milliseconds of work) and, as nothing writes meanwhile, completes; its
/// next transaction restarts the WAL.
fn checkpoints(
    conn: Connection,
    stop: Receiver<()>,
    writer: Queue,
    wal: WalConfig,
    wal_pages: prometheus_client::metrics::gauge::Gauge,
) {
    let mut wal_emptied = false;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(wal.checkpoint_every)
    {
        // Noticed here when no events come (the writer notices after a
        // commit): the WAL beside the path still holds the old file's pages
        // and would be replayed into whatever file is put there next.
        if !writer.watch.still_there() {
            if !wal_emptied {
                wal_emptied = truncate_wal(&conn);
            }
            continue;
        }
        // A second pass copies only what was committed during the first, so
        // that the writer, if asked below, has little left to copy.
        match passive_checkpoint(&conn).and_then(|_| passive_checkpoint(&conn)) {
            Ok(pages) => {
                wal_pages.set(pages);
                if pages > wal.finish_pages {
                    let finish: Maintenance = Box::new(|conn| {
                        if let Err(e) = passive_checkpoint(conn) {
                            tracing::warn!(error = %e, "WAL checkpoint by the writer failed");
                        }
                    });
                    // A full queue is busy enough: the next pass asks again.
                    let _ = writer.send(Job::Maintenance(finish));
                }
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

/// Runs a PASSIVE checkpoint; returns the WAL's length in pages.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

fn writer(
    mut conn: Connection,
    rx: Receiver<Job>,
    max_batch: usize,
    depth: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    watch: FileWatch,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    let mut failures = FailureLog::default();
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        depth.fetch_sub(batch.len(), Ordering::AcqRel);
        metrics
            .queue_depth
            .set(depth.load(Ordering::Relaxed) as i64);
        let started = Instant::now();
        commit_batch(&mut conn, &mut batch, &metrics, &watch, &mut failures);
        metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}

/// How often a run of failing commits is summed up in the log.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

/// Logs failing commits without a line per batch (a full disk under load
/// fails hundreds a second): the first failure at once, then one summary
/// every [`FAILURE_LOG_EVERY`] while they go on (or when the error
/// changes), and one line when a commit works again.
#[derive(Default)]
struct FailureLog {
    /// Since the last line: failed batches, their events.
    batches: u64,
    rows: u64,
    /// Failing since, and the last line's time and error.
    since: Option<Instant>,
    logged: Option<(Instant, String)>,
}

impl FailureLog {
    fn failed(&mut self, error: &str, rows: usize) {
        let now = Instant::now();
        self.since.get_or_insert(now);
        self.batches += 1;
        self.rows += rows as u64;
        let due = match &self.logged {
            None => true,
            Some((at, last)) => now.duration_since(*at) >= FAILURE_LOG_EVERY || last != error,
        };
        if due {
            tracing::error!(
                error,
                batches = self.batches,
                rows = self.rows,
                "batch commit failed; its events were answered 503"
            );
            self.batches = 0;
            self.rows = 0;
            self.logged = Some((now, error.to_string()));
        }
    }

    fn worked(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::warn!(
                failing_for_ms = since.elapsed().as_millis() as u64,
                unlogged_batches = self.batches,
                unlogged_rows = self.rows,
                "batch commits work again"
            );
            *self = FailureLog::default();
        }
    }
}

/// Commits the events of `batch` in one transaction and acknowledges them;
/// then runs the maintenance jobs.
fn commit_batch(
    conn: &mut Connection,
    batch: &mut Vec<Job>,
    metrics: &Metrics,
    watch: &FileWatch,
    failures: &mut FailureLog,
) {
    // Rows apart from their acks, which are answered in one order: the
    // events', then the engagements'.
    let (mut events, mut engagements, mut maintenance) = (Vec::new(), Vec::new(), Vec::new());
    let (mut event_acks, mut engaged_acks) = (Vec::new(), Vec::new());
    for job in batch.drain(..) {
        match job {
            Job::Event {
                event,
                session,
                ack,
            } => {
                events.push((event, session));
                event_acks.push(ack);
            }
            Job::Engagement { row, ack } => {
                engagements.push(row);
                engaged_acks.push(ack);
            }
            Job::Maintenance(work) => maintenance.push(work),
        }
    }
    let acks = event_acks.into_iter().chain(engaged_acks);
    let rows = events.len() + engagements.len();
    if rows > 0 {
        metrics.batch_size.observe(rows as f64);
        match write_events(conn, &events, &engagements) {
            // Committed, but into a file deleted or moved away meanwhile:
            // no one will read these rows, so they are not acknowledged
            // (one `stat` per batch, on this thread, not per request).
            Ok(_) if !watch.still_there() => {
                truncate_wal(conn);
                for ack in acks {
                    let _ = ack.send(Err(()));
                }
            }
            Ok(outcomes) => {
                watch.commit_result(None);
                failures.worked();
                for (ack, outcome) in acks.zip(outcomes) {
                    let _ = ack.send(Ok(outcome));
                }
            }
            Err(e) => {
                let error = e.to_string();
                failures.failed(&error, rows);
                watch.commit_result(Some(error));
                metrics.commit_failures.inc();
                for ack in acks {
                    let _ = ack.send(Err(()));
                }
            }
        }
    }
    for work in maintenance {
        work(conn);
    }
}

/// Writes a batch's events (with one snapshot per session) and engagement
/// rows in one transaction; the outcomes in order, the events' then the
/// engagements' (always committed).
fn write_events(
    conn: &mut Connection,
    events: &[(Box<EventRow>, Box<SessionRow>)],
    engagements: &[Box<EngagementRow>],
) -> rusqlite::Result<Vec<Ack>> {
    // Immediate: the batch reads (the next id) before it writes, and another
    // process may write beside `serve` (`tallymark import`): a deferred
    // transaction would fail at its first write instead of waiting its turn.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for row in engagements {
        rows::insert_engagement(&tx, row)?;
    }
    let mut outcomes = Vec::with_capacity(events.len());
    // One upsert per session per batch, whatever its number of events: the
    // newest snapshot wins (seed 003, pitfall 2: no write per event).
    let mut sessions: HashMap<i64, &SessionRow> = HashMap::new();
    let mut next_id = rows::next_event_id(&tx)?;
    for (event, session) in events {
        let inserted = rows::insert_event(&tx, event, Some(next_id))?;
        if inserted {
            next_id += 1;
        }
        outcomes.push(if inserted {
            Ack::Committed
        } else {
            Ack::Duplicate
        });
        if inserted {
            sessions
                .entry(session.id)
                .and_modify(|s| {
                    if session.version > s.version {
                        *s = session;
                    }
                })
                .or_insert(session);
        }
    }
    for session in sessions.values() {
        rows::upsert_session(&tx, session)?;
    }
    tx.commit()?;
    outcomes.extend(engagements.iter().map(|_| Ack::Committed));
    Ok(outcomes)
}

/// Copies the WAL back into the database and empties the file, after rows
/// that must not stay on disk were deleted (expired salts, rows past the
/// retention period): the frames written before the deletion still hold
/// them, and a WAL that restarts overwrites them only as far as it grows
/// again. `false` when a reader in the middle of a query kept it from
/// finishing (the next upkeep round tries again); it waits for one at most
/// a quarter second, since ingest batches queue behind it. Run it on the
/// writer ([`Store::maintain`]).
pub fn empty_wal(conn: &mut Connection) -> rusqlite::Result<bool> {
    conn.busy_timeout(Duration::from_millis(250))?;
    let busy = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.busy_timeout(Duration::from_secs(5))?;
    match busy {
        Ok(busy) => Ok(busy == 0),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Empties the WAL into the (deleted or moved) database file this process
/// has open, so the `-wal` file left at the path is empty: a database put
/// there later (a restored backup) is not overwritten with the old file's
/// pages when the next `serve` opens it. Returns whether it succeeded (a
/// reader in the middle of a query makes it busy: tried again).
fn truncate_wal(conn: &Connection) -> bool {
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(error = %e, "emptying the WAL of a database that is gone failed");
            false
        }
    }
}

/// Notices the database file being deleted or moved away under the running
/// collector: SQLite would go on committing into the file it has open, which
/// no one will read again. (Bytes copied over the same file keep its inode
/// and are not noticed; that corrupts the database whatever we do.)
#[derive(Clone)]
struct FileWatch {
    path: Arc<Path>,
    /// Device and inode of the file opened; `None` off Unix (never gone).
    id: Option<(u64, u64)>,
    gone: Arc<AtomicBool>,
    /// Why the writer's last commit failed, while no later one worked
    /// (disk full, I/O error): for `/healthz`.
    failing: Arc<std::sync::Mutex<Option<String>>>,
}

impl FileWatch {
    fn new(path: &Path) -> Self {
        Self {
            path: path.into(),
            id: file_id(path).ok().flatten(),
            gone: Arc::new(AtomicBool::new(false)),
            failing: Arc::default(),
        }
    }

    /// Records how the last commit went.
    fn commit_result(&self, error: Option<String>) {
        if let Ok(mut failing) = self.failing.lock() {
            *failing = error;
        }
    }

    /// Gone, or the last commit failed.
    fn health(&self) -> Result<(), StoreError> {
        self.refuse_if_gone()?;
        match self.failing.lock().ok().and_then(|f| f.clone()) {
            Some(e) => Err(StoreError::CommitFailing(e)),
            None => Ok(()),
        }
    }

    /// Whether the path still names the file opened; once it did not, never
    /// again. Only a missing file or another file counts: any other error
    /// (permissions, a network file system's hiccup) is asked again later.
    fn still_there(&self) -> bool {
        if self.gone.load(Ordering::Relaxed) {
            return false;
        }
        let Some(opened) = self.id else {
            return true;
        };
        let there = match file_id(&self.path) {
            Ok(now) => now == Some(opened),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(_) => true,
        };
        if !there {
            self.gone.store(true, Ordering::Relaxed);
            tracing::error!(
                path = %self.path.display(),
                "the database file was deleted or moved away; refusing events until restarted"
            );
        }
        there
    }

    fn refuse_if_gone(&self) -> Result<(), StoreError> {
        if self.gone.load(Ordering::Relaxed) {
            return Err(StoreError::FileGone(self.path.display().to_string()));
        }
        Ok(())
    }
}

/// Device and inode of the file at `path` (`Ok(None)` off Unix).
fn file_id(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).map(|m| Some((m.dev(), m.ino())))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_commits_are_logged_once_then_summed_up() {
        let mut log = FailureLog::default();
        log.failed("database or disk is full", 5);
        // Logged at once: nothing left to sum up.
        assert_eq!((log.batches, log.rows), (0, 0));
        for _ in 0..100 {
            log.failed("database or disk is full", 3);
        }
        // Within FAILURE_LOG_EVERY: counted, not logged.
        assert_eq!((log.batches, log.rows), (100, 300));
        // Another error is logged at once.
        log.failed("disk I/O error", 1);
        assert_eq!((log.batches, log.rows), (0, 0));
        log.failed("disk I/O error", 2);
        assert!(log.since.is_some());
        log.worked();
        assert!(log.since.is_none() && log.logged.is_none());
        assert_eq!((log.batches, log.rows), (0, 0));
    }
}
