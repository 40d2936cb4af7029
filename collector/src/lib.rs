//! The Tallymark collector: the only crate that knows HTTP, SQL and storage
//! rows.
//!
//! [`app`] builds the whole HTTP surface from an [`AppState`]; `main.rs` only
//! parses flags and binds a socket, so tests drive [`app`] directly with
//! `oneshot`. [`AppState::open`] takes the clock as an argument, so tests can
//! move time.

pub mod assets;
pub mod clickhouse;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod geo;
pub mod import;
pub mod ingest;
pub mod metrics;
pub mod retention;
pub mod salts;
pub mod sessions;
pub mod sites;
pub mod stats;
pub mod store;
pub mod volume;

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tallymark_core::bots::BotRules;
use tallymark_core::session::SessionConfig;
use tower_http::cors::CorsLayer;

use crate::clock::Clock;
use crate::config::Config;
use crate::geo::Geo;
use crate::ingest::classify::RecentEventIds;
use crate::metrics::Metrics;
use crate::salts::Salts;
use crate::sessions::{LiveSessions, SessionIds};
use crate::sites::Sites;
use crate::store::{Store, StoreConfig};

/// How long an `event_id` is remembered in memory (the database remembers it
/// for ever).
const RECENT_EVENT_ID_TTL_MS: i64 = 60 * 60 * 1000;

/// Days rolled up per site per round of upkeep (a backlog drains over
/// several rounds without stalling the writer).
const ROLLUP_DAYS_PER_ROUND: usize = 7;

/// What every handler shares.
pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub sites: Sites,
    pub salts: Salts,
    pub sessions: LiveSessions,
    pub session_ids: SessionIds,
    pub geo: Geo,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub bot_rules: BotRules,
    pub recent_ids: RecentEventIds,
    /// Upkeep rounds so far.
    rounds: std::sync::atomic::AtomicU64,
    /// The last retention pass stopped before it was done.
    retention_backlog: AtomicBool,
    /// Sites whose rows past the retention period are being deleted, to
    /// settle once done (`retention::settle`).
    unsettled: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// Expired salts were deleted, and the WAL still holds older copies of
    /// them (emptied at the next round).
    wal_holds_salts: AtomicBool,
    /// The same for rows past the retention period (emptied once a backlog
    /// is done).
    wal_holds_retired: AtomicBool,
    /// Stats sums of days not rolled up yet, shared by nearby requests.
    pub live: Arc<stats::rollup::Live>,
    /// With `--clickhouse`: what copies rows there (and its client, which
    /// the stats API then reads).
    pub analytics: Option<Arc<clickhouse::ship::Shipper>>,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("creating data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("locking data directory {path}: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "data directory {path} is in use by another `tallymark serve`{holder}: \
         stop it first, or give this one another --data"
    )]
    InUse { path: String, holder: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Sites(#[from] sites::SiteError),
    #[error(transparent)]
    Geo(#[from] geo::GeoError),
    #[error(transparent)]
    ClickHouse(#[from] clickhouse::ClickHouseError),
    #[error("starting the clickhouse shipper: {0}")]
    Thread(std::io::Error),
}

/// The name of the lock file `serve` holds in its data directory.
pub const LOCK_FILE: &str = "tallymark.lock";

/// `serve`'s exclusive hold on its data directory, released when dropped or
/// when the process ends, however it ends (`kill -9` too).
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Creates the data directory if missing and takes its lock (an advisory
/// `flock` on [`LOCK_FILE`], which then holds this process's id), or refuses
/// at once if another process holds it: two collectors on one database would
/// both answer 202 while each kept its own live sessions, visits split in
/// two and session ids that can collide. The CLI's `site` and `token`
/// commands take no lock: they are meant to run beside `serve`.
pub fn lock_data_dir(dir: &std::path::Path) -> Result<DataDirLock, StartError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(LOCK_FILE);
    let lock_error = |source| StartError::Lock {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
        path: dir.display().to_string(),
        source,
    })?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(lock_error)?;
    // Fully qualified: `File::try_lock` of std 1.89+ is newer than our MSRV.
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = text
                .trim()
                .parse::<u32>()
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            return Err(StartError::InUse {
                path: dir.display().to_string(),
                holder,
            });
        }
        Err(fs4::TryLockError::Error(source)) => return Err(lock_error(source)),
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(lock_error)?;
    Ok(DataDirLock { _file: file })
}

impl AppState {
    /// Opens the database, loads sites, salts and live sessions, and starts
    /// the writer. Call [`AppState::maintain`] periodically (see
    /// [`spawn_maintenance`]).
    pub fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        std::fs::create_dir_all(&config.data).map_err(|source| StartError::DataDir {
            path: config.data.display().to_string(),
            source,
        })?;
        let metrics = Arc::new(Metrics::new());
        let store = Store::open(
            &config.db_path(),
            StoreConfig {
                queue_capacity: config.queue_capacity,
                max_batch: config.max_batch,
                durability: if config.fsync {
                    store::Durability::Power
                } else {
                    store::Durability::Process
                },
                wal: store::WalConfig::default(),
            },
            metrics.clone(),
        )?;
        let reader = store.reader()?;
        let sites = Sites::load(&reader)?;
        let salts = Salts::load(&reader)?;
        let session_config = SessionConfig {
            timeout_ms: config.session_timeout.as_millis() as i64,
        };
        let sessions = LiveSessions::new(session_config, config.max_live_sessions);
        let reloaded = sessions.reload(&reader, clock.now_ms())?;
        let session_ids = SessionIds::load(&reader, clock.now_ms())?;
        drop(reader);
        let geo = Geo::open(&config.geoip)?;
        let analytics = match &config.clickhouse {
            Some(cfg) => {
                let ch = Arc::new(clickhouse::ClickHouse::new(cfg)?);
                // No call to ClickHouse here: the start never waits for it.
                // The shipper creates the tables once it answers; events
                // wait in SQLite and SQLite answers the stats meanwhile.
                let shipper = Arc::new(clickhouse::ship::Shipper::new(
                    ch,
                    config.db_path(),
                    metrics.clone(),
                    clock.clone(),
                    config.session_timeout.as_millis() as i64,
                    config.retention_days,
                ));
                clickhouse::ship::spawn(Arc::downgrade(&shipper)).map_err(StartError::Thread)?;
                Some(shipper)
            }
            None => None,
        };
        tallymark_core::bots::warm_up();
        let bot_rules = BotRules::default().extend_skip_paths(&config.skip_paths);
        tracing::info!(
            sites = sites.all().len(),
            live_sessions = reloaded,
            geoip = geo.is_enabled(),
            "state loaded"
        );
        Ok(Self(Arc::new(Inner {
            config,
            store,
            sites,
            salts,
            sessions,
            session_ids,
            geo,
            metrics,
            clock,
            bot_rules,
            recent_ids: RecentEventIds::new(RECENT_EVENT_ID_TTL_MS, 200_000),
            rounds: std::sync::atomic::AtomicU64::new(0),
            wal_holds_salts: AtomicBool::new(false),
            wal_holds_retired: AtomicBool::new(false),
            retention_backlog: AtomicBool::new(false),
            unsettled: Default::default(),
            live: Arc::default(),
            analytics,
        })))
    }

    /// One round of upkeep: reload sites, create upcoming salts and delete
    /// expired ones, evict ended sessions.
    pub async fn maintain(&self) -> Result<(), StartError> {
        // First: a reader would otherwise create an empty database in its
        // place, and the rounds below would work on that.
        self.store.check_file()?;
        let reader = self.store.reader()?;
        self.sites.refresh(&reader)?;
        drop(reader);
        let now = self.clock.now();
        let deleted = self
            .salts
            .rotate(
                &self.store,
                &self.sites.all(),
                now,
                self.config.session_timeout,
            )
            .await?;
        if deleted > 0 {
            tracing::info!(deleted, "expired salts deleted");
            self.wal_holds_salts.store(true, Ordering::Release);
        }
        let live = self.sessions.sweep(now.as_millisecond());
        self.metrics.live_sessions.set(live as i64);
        let round = self
            .rounds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Every minute from the round after the one `serve` waits for before
        // it answers, and every round while a backlog lasts: deleted before
        // rolled up.
        let backlog = self.retention_backlog.load(Ordering::Acquire);
        if round % 12 == 1 || backlog {
            // Not fatal to the round: the salts' WAL below must go anyway.
            if let Err(e) = self.retain().await {
                tracing::error!(error = %e, "deleting rows past the retention period failed");
            }
        }
        // What was deleted must not stay in the WAL's older frames. Rows
        // past the retention period not while a backlog lasts: each emptying
        // copies the whole WAL back on the writer, a stall for every request
        // in between. Expired salts at once.
        let salts = self.wal_holds_salts.load(Ordering::Acquire);
        let retired = self.wal_holds_retired.load(Ordering::Acquire)
            && !self.retention_backlog.load(Ordering::Acquire);
        if (salts || retired) && self.store.maintain(store::empty_wal).await? {
            self.wal_holds_salts.store(false, Ordering::Release);
            self.wal_holds_retired.store(false, Ordering::Release);
        }
        if self.config.rollups {
            // Every 60th round (5 minutes) walks each site's whole history.
            self.roll_up(ROLLUP_DAYS_PER_ROUND, round % 60 == 0).await?;
        }
        Ok(())
    }

    /// Deletes what each site recorded before its retention horizon
    /// (`--retention-days`; retention.rs), a slice at a time on the writer,
    /// for at most [`retention::ROUND`] (a backlog, such as a first pass over
    /// years of rows, goes on in the next upkeep rounds: `retention_backlog`);
    /// how many rows. The round that calls it empties the WAL after;
    /// ClickHouse's copies go in the shipper's next prune.
    pub async fn retain(&self) -> Result<usize, StartError> {
        let now = self.clock.now();
        let started = Instant::now();
        let mut total = 0;
        let mut backlog = false;
        for site in self.sites.all() {
            if started.elapsed() >= retention::ROUND {
                backlog = true;
                break;
            }
            let Some(h) = retention::site_horizon(&site, now, self.config.retention_days) else {
                continue;
            };
            let mut deleted = 0;
            let done = loop {
                let slice = Instant::now();
                let n = self
                    .store
                    .maintain(move |conn| retention::delete_slice(conn, &h))
                    .await?;
                if n == 0 {
                    break true;
                }
                deleted += n;
                total += n;
                self.metrics.retention_deleted.inc_by(n as u64);
                self.wal_holds_retired.store(true, Ordering::Release);
                if let Ok(mut unsettled) = self.unsettled.lock() {
                    unsettled.insert(site.id);
                }
                // Below a slice in all: none of the tables has more.
                if n < retention::SLICE {
                    break true;
                }
                tokio::time::sleep(slice.elapsed() * retention::PAUSE_FACTOR).await;
                if started.elapsed() >= retention::ROUND {
                    break false;
                }
            };
            if deleted > 0 {
                // Sums of deleted days (and of the first day kept, whose
                // visitors seen the day before were told apart from that
                // day's) built before are not answered.
                self.live.forget_through(site.id, h.day);
            }
            let settle = done
                && self
                    .unsettled
                    .lock()
                    .is_ok_and(|unsettled| unsettled.contains(&site.id));
            if settle {
                self.store
                    .maintain(move |conn| retention::settle(conn, &h))
                    .await?;
                if let Ok(mut unsettled) = self.unsettled.lock() {
                    unsettled.remove(&site.id);
                }
                self.live.forget_through(site.id, h.day);
                // ClickHouse follows once the site is done (a deletion
                // there rewrites whole parts: one, not one per slice).
                if let Some(shipper) = &self.analytics {
                    shipper.prune_soon();
                }
            }
            if !done {
                backlog = true;
                break;
            }
        }
        self.retention_backlog.store(backlog, Ordering::Release);
        if total > 0 {
            tracing::info!(
                deleted = total,
                "rows older than the retention period deleted"
            );
        }
        Ok(total)
    }

    /// Copies every committed row not yet in ClickHouse there, on the
    /// blocking pool; the sum of each round's largest count of rows sent
    /// (0 without `--clickhouse`).
    /// The background shipper does this on its own every half second.
    pub async fn ship_all(&self) -> Result<usize, clickhouse::ship::ShipError> {
        let Some(shipper) = self.analytics.clone() else {
            return Ok(0);
        };
        tokio::task::spawn_blocking(move || shipper.ship_all())
            .await
            .map_err(|_| clickhouse::ship::ShipError::Store(store::StoreError::WriterGone))?
    }

    /// Rolls up finished days for the stats API (at most `max_days` per
    /// site); returns how many day rollups were written. The sums are read
    /// on the blocking pool and written by the writer thread. `full` walks
    /// every site's whole history for days left behind.
    pub async fn roll_up(&self, max_days: usize, full: bool) -> Result<usize, StartError> {
        let mut written = 0;
        for site in self.sites.all() {
            let state = self.clone();
            let now_ms = self.clock.now_ms();
            let timeout_ms = self.config.session_timeout.as_millis() as i64;
            let kept_from_ms =
                retention::site_horizon(&site, self.clock.now(), self.config.retention_days)
                    .map(|h| h.from_ms);
            let site_for_task = site.clone();
            let (pending, importing) = tokio::task::spawn_blocking(move || {
                let conn = state.store.reader()?;
                let pending = stats::rollup::due(
                    &conn,
                    &site_for_task,
                    now_ms,
                    timeout_ms,
                    max_days,
                    full,
                    kept_from_ms,
                )
                .map_err(store::StoreError::from)?;
                let importing = full
                    && conn
                        .query_row(
                            "SELECT EXISTS (SELECT 1 FROM import_marks WHERE site_id = ?1)",
                            [site_for_task.id],
                            |r| r.get::<_, bool>(0),
                        )
                        .map_err(store::StoreError::from)?;
                Ok::<_, StartError>((pending, importing))
            })
            .await
            .map_err(|_| store::StoreError::WriterGone)??;
            if importing {
                // Every full round (5 minutes): an import that stopped
                // part-way leaves its mark until it is run again.
                tracing::warn!(
                    site = %site.domain,
                    "an import is writing into this site, or stopped part-way: none of its days \
                     are rolled up until `tallymark import` runs to the end"
                );
            }
            if full {
                // Keep today's live stats sums built (stats::rollup::Live).
                let state = self.clone();
                let site_for_task = site.clone();
                let warmed = tokio::task::spawn_blocking(move || {
                    let conn = state.store.reader()?;
                    stats::rollup::warm(&stats::rollup::At {
                        conn: &conn,
                        site: &site_for_task,
                        live: &state.live,
                        now_ms,
                        timeout_ms,
                    })
                    .map_err(store::StoreError::from)
                })
                .await;
                if let Ok(Err(e)) = warmed {
                    tracing::warn!(error = %e, "warming live stats failed");
                }
            }
            if pending.is_empty() {
                continue;
            }
            written += self
                .store
                .maintain(move |conn| stats::rollup::save(conn, &pending))
                .await?;
        }
        Ok(written)
    }

    /// The volume-drop check for every site.
    pub fn check_volume(&self) -> Result<(), StartError> {
        let reader = self.store.reader()?;
        volume::check_all(
            &reader,
            &self.sites.all(),
            self.clock.now_ms(),
            self.config.volume_drop_percent,
            self.config.retention_days,
            &self.metrics,
        );
        Ok(())
    }
}

/// Runs [`AppState::maintain`] every few seconds and the volume check every
/// ten minutes, until the runtime stops.
pub fn spawn_maintenance(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut last_volume: Option<Instant> = None;
        loop {
            tick.tick().await;
            if let Err(e) = state.maintain().await {
                tracing::error!(error = %e, "maintenance failed");
            }
            if last_volume.is_none_or(|t| t.elapsed() >= Duration::from_secs(600)) {
                last_volume = Some(Instant::now());
                let s = state.clone();
                let result = tokio::task::spawn_blocking(move || s.check_volume()).await;
                if let Ok(Err(e)) = result {
                    tracing::error!(error = %e, "volume check failed");
                }
            }
        }
    });
}

/// The collector's HTTP surface.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/api/event", post(ingest::event))
        // Umami's tracker and `@umami/node` post here (core::intake).
        .route("/api/send", post(ingest::event))
        // GoatCounter's count.js loads an image from here (`?p=/path&…`).
        .route("/count", get(ingest::goatcounter).post(ingest::goatcounter))
        .route(
            "/count/{site}",
            get(ingest::goatcounter_site).post(ingest::goatcounter_site),
        )
        // Any site may send beacons. `sendBeacon` always sends in credentials
        // mode "include", so a JSON beacon's preflight must name the origin
        // and allow credentials: `*` fails it and the beacon is lost
        // silently. (The collector never reads or sets a cookie.)
        .layer(CorsLayer::very_permissive())
        // Stats: bearer tokens, no CORS (same-origin dashboards only).
        .merge(stats::router())
        .merge(dashboard::router())
        .route("/js/{file}", get(assets::sdk_file))
        .route("/demo", get(assets::demo))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        // Every error body is JSON, axum's own 404/405 included.
        .fallback(|| async { error::ApiError::NotFound("no such route") })
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// `GET /healthz`: `ok`, or 503 naming the problem when events cannot be
/// stored (the database file was deleted or replaced under the collector).
async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.health() {
        Ok(()) => "ok".into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    state
        .metrics
        .queue_depth
        .set(state.store.queue_depth() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// The one middleware: logs each request (method, path, status, time;
/// never an IP or a User-Agent) and gives axum's bare 405 its JSON body.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let started = Instant::now();
    let response = json_405(next.run(request).await);
    let status = response.status();
    let micros = started.elapsed().as_micros() as u64;
    let path = uri.path();
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), micros, "request");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), micros, "request");
    }
    response
}

/// axum's own 405 has no body: give it the JSON error every other error
/// has (keeping its `Allow` header).
fn json_405(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut json = error::ApiError::MethodNotAllowed.into_response();
    if let Some(allow) = allow {
        json.headers_mut().insert(header::ALLOW, allow);
    }
    json
}
