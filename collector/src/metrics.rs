//! Prometheus metrics, served at `GET /metrics` in the text format.
//!
//! Every event the collector sees ends in exactly one of: accepted, dropped
//! (with a reason) or rejected (with an error). Nothing is lost silently
//! (seed 003, pitfall 7).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabel {
    pub site: String,
}

pub struct Metrics {
    registry: Registry,
    pub accepted: Family<KindLabel, Counter>,
    pub dropped: Family<ReasonLabel, Counter>,
    pub rejected: Family<ErrorLabel, Counter>,
    pub queue_depth: Gauge,
    pub batch_size: Histogram,
    pub commit_seconds: Histogram,
    pub commit_failures: Counter,
    pub live_sessions: Gauge,
    /// Pages in the SQLite WAL after the last checkpoint pass.
    pub wal_pages: Gauge,
    /// 1 while a site's last 24 h are more than the threshold below the 24 h before.
    pub volume_drop: Family<SiteLabel, Gauge>,
    /// Last 24 h over the 24 h before, in percent.
    pub volume_ratio: Family<SiteLabel, Gauge>,
    /// Events copied to ClickHouse (with `--clickhouse`).
    pub clickhouse_shipped: Counter,
    /// Events committed to SQLite and not yet in ClickHouse.
    pub clickhouse_lag: Gauge,
    /// Shipping attempts that failed (retried; nothing is lost).
    pub clickhouse_failures: Counter,
    /// Stats queries ClickHouse answered, and those it failed (then
    /// answered from SQLite).
    pub clickhouse_queries: Counter,
    pub clickhouse_query_failures: Counter,
    /// SQLite rows deleted past `--retention-days`.
    pub retention_deleted: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tallymark");
        let accepted = Family::<KindLabel, Counter>::default();
        let dropped = Family::<ReasonLabel, Counter>::default();
        let rejected = Family::<ErrorLabel, Counter>::default();
        let queue_depth = Gauge::default();
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        let commit_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let commit_failures = Counter::default();
        let live_sessions = Gauge::default();
        let wal_pages = Gauge::default();
        let volume_drop = Family::<SiteLabel, Gauge>::default();
        let volume_ratio = Family::<SiteLabel, Gauge>::default();
        let clickhouse_shipped = Counter::default();
        let clickhouse_lag = Gauge::default();
        let clickhouse_failures = Counter::default();
        let clickhouse_queries = Counter::default();
        let clickhouse_query_failures = Counter::default();
        let retention_deleted = Counter::default();
        registry.register(
            "events_accepted",
            "Events committed to storage",
            accepted.clone(),
        );
        registry.register(
            "events_dropped",
            "Events deliberately not stored (bots, skip paths, spam, duplicates)",
            dropped.clone(),
        );
        registry.register(
            "events_rejected",
            "Requests refused with an error status",
            rejected.clone(),
        );
        registry.register(
            "write_queue_depth",
            "Rows waiting for the writer",
            queue_depth.clone(),
        );
        registry.register(
            "write_batch_size",
            "Events per committed transaction",
            batch_size.clone(),
        );
        registry.register(
            "write_commit_seconds",
            "Time to commit one batch",
            commit_seconds.clone(),
        );
        registry.register(
            "write_commit_failures",
            "Batches whose commit failed (their requests got 503)",
            commit_failures.clone(),
        );
        registry.register(
            "live_sessions",
            "Sessions held in memory",
            live_sessions.clone(),
        );
        registry.register(
            "wal_pages",
            "Pages in the SQLite write-ahead log at the last checkpoint (it restarts from the beginning once all are copied back)",
            wal_pages.clone(),
        );
        registry.register(
            "volume_drop",
            "1 when a site's accepted events over the last 24 h fell more than the threshold below the 24 h before",
            volume_drop.clone(),
        );
        registry.register(
            "volume_ratio_percent",
            "A site's accepted events over the last 24 h as a percentage of the 24 h before",
            volume_ratio.clone(),
        );
        registry.register(
            "clickhouse_shipped_events",
            "Events copied from SQLite to ClickHouse",
            clickhouse_shipped.clone(),
        );
        registry.register(
            "clickhouse_lag_events",
            "Events committed to SQLite that ClickHouse does not hold yet",
            clickhouse_lag.clone(),
        );
        registry.register(
            "clickhouse_failures",
            "Attempts to ship to ClickHouse that failed (retried; the rows wait in SQLite)",
            clickhouse_failures.clone(),
        );
        registry.register(
            "clickhouse_queries",
            "Stats queries answered by ClickHouse",
            clickhouse_queries.clone(),
        );
        registry.register(
            "clickhouse_query_failures",
            "Stats queries ClickHouse failed (answered from SQLite instead)",
            clickhouse_query_failures.clone(),
        );
        registry.register(
            "retention_deleted_rows",
            "SQLite rows (events, visits, engagement, daily sums) deleted as older than --retention-days",
            retention_deleted.clone(),
        );
        Self {
            registry,
            accepted,
            dropped,
            rejected,
            queue_depth,
            batch_size,
            commit_seconds,
            commit_failures,
            live_sessions,
            wal_pages,
            volume_drop,
            volume_ratio,
            clickhouse_shipped,
            clickhouse_lag,
            clickhouse_failures,
            clickhouse_queries,
            clickhouse_query_failures,
            retention_deleted,
        }
    }

    pub fn accept(&self, kind: &str) {
        self.accepted
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    pub fn drop_event(&self, reason: &str) {
        self.dropped
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn reject(&self, error: &str) {
        self.rejected
            .get_or_create(&ErrorLabel {
                error: error.into(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
