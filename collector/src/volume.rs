//! The volume-drop check (seed 003, pitfall 7: silent ingestion failures).
//!
//! For each site, accepted events over the last 24 hours are compared with
//! the 24 hours before. A fall of more than the configured percentage logs a
//! warning and sets `tallymark_volume_drop{site}` to 1. When retention
//! (`--retention-days 1`) has deleted part of the earlier 24 hours, there is
//! nothing to compare with: no drop is reported.

use rusqlite::Connection;

use crate::metrics::{Metrics, SiteLabel};
use crate::sites::Site;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Below this many events in the earlier day, a ratio means nothing.
pub const MIN_BASELINE_EVENTS: i64 = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub last_24h: i64,
    pub previous_24h: i64,
    /// Set when the fall exceeds the threshold.
    pub dropped_percent: Option<f64>,
    /// Retention deleted part of the earlier 24 hours: nothing compared.
    pub partial: bool,
}

/// `retention_days`: serve's `--retention-days` (a site's own wins).
pub fn check(
    conn: &Connection,
    site: &Site,
    now_ms: i64,
    threshold_percent: f64,
    retention_days: Option<u32>,
) -> rusqlite::Result<Volume> {
    let count = |from: i64, to: i64| -> rusqlite::Result<i64> {
        conn.query_row(
            "SELECT COUNT(*) FROM events WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3",
            [site.id, from, to],
            |r| r.get(0),
        )
    };
    let last_24h = count(now_ms - DAY_MS, now_ms)?;
    let previous_24h = count(now_ms - 2 * DAY_MS, now_ms - DAY_MS)?;
    // The earlier 24 hours reach before the oldest row kept: partly deleted.
    let deleted = jiff::Timestamp::from_millisecond(now_ms)
        .ok()
        .and_then(|now| crate::retention::site_horizon(site, now, retention_days))
        .is_some_and(|h| h.from_ms > now_ms - 2 * DAY_MS);
    let fall = if previous_24h >= MIN_BASELINE_EVENTS && !deleted {
        100.0 * (previous_24h - last_24h) as f64 / previous_24h as f64
    } else {
        0.0
    };
    Ok(Volume {
        last_24h,
        previous_24h,
        dropped_percent: (fall > threshold_percent).then_some(fall),
        partial: deleted,
    })
}

/// Checks every site, updating metrics and logging drops.
pub fn check_all(
    conn: &Connection,
    sites: &[std::sync::Arc<Site>],
    now_ms: i64,
    threshold_percent: f64,
    retention_days: Option<u32>,
    metrics: &Metrics,
) {
    for site in sites {
        let label = SiteLabel {
            site: site.domain.clone(),
        };
        match check(conn, site, now_ms, threshold_percent, retention_days) {
            Ok(v) => {
                let ratio = if v.previous_24h > 0 && !v.partial {
                    100 * v.last_24h / v.previous_24h
                } else {
                    100
                };
                metrics.volume_ratio.get_or_create(&label).set(ratio);
                metrics
                    .volume_drop
                    .get_or_create(&label)
                    .set(i64::from(v.dropped_percent.is_some()));
                if let Some(fall) = v.dropped_percent {
                    tracing::warn!(
                        site = %site.domain,
                        last_24h = v.last_24h,
                        previous_24h = v.previous_24h,
                        fall_percent = format!("{fall:.1}"),
                        "accepted events fell sharply: check the tracking script and the collector"
                    );
                }
            }
            Err(e) => tracing::error!(site = %site.domain, error = %e, "volume check failed"),
        }
    }
}
