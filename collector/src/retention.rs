//! Data retention (`serve --retention-days N`): what a site recorded before
//! its local midnight `N` days ago is deleted, in SQLite (here, a slice at a
//! time on the writer thread, between ingest batches) and in ClickHouse
//! (`clickhouse::ship`, one mutation per table), and nothing of it is ever
//! answered again.
//!
//! "Before the day" means: events and engagement by their time, visits by
//! their start (a visit is counted on the day it started, so a day's visits
//! go with its events), daily rollups by their day. A visit that started
//! before the horizon and went on past midnight loses its row; its later
//! events stay, with the dimensions each event carries. Deleted rows are
//! overwritten in the file (`secure_delete`, store/schema.rs), not left in
//! free pages, and the WAL is emptied after a pass that deleted anything
//! (`store::empty_wal`), so no older frame keeps a copy. Event ids stay taken (migration 6), as after
//! `site remove`.

use jiff::{Timestamp, ToSpan};
use rusqlite::{Connection, params};

use crate::sites::Site;
use crate::stats::rollup::Day;

/// Rows deleted per table per writer job: a job holds the writer for a few
/// milliseconds, and ingest batches queued meanwhile commit between jobs.
pub const SLICE: usize = 250;

/// After each job, a pause this many times as long as it took: deletion
/// takes at most 1/20 of the writer's time. Faster, it writes the WAL faster
/// than the checkpoints copy it back, and the writer must finish those
/// copies itself, a stall for every request waiting (`cargo xtask bench
/// retention`, BENCHMARKS.md: at full speed ingest p99 went from 1.3 to
/// 400 ms; paced, a few ms).
pub const PAUSE_FACTOR: u32 = 19;

/// How long one upkeep round deletes before it leaves the rest to the next
/// (5 s later): the round's other work (salts, sessions, rollups) waits
/// meanwhile.
pub const ROUND: std::time::Duration = std::time::Duration::from_secs(2);

/// The first moment a site keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub site_id: i64,
    /// Local midnight starting the oldest day kept.
    pub from_ms: i64,
    /// That day, as rollups name days (`2026-03-29`).
    pub day: jiff::civil::Date,
}

/// The site's horizon with its own retention, else `serve`'s (`global`);
/// `None` when it keeps everything.
pub fn site_horizon(site: &Site, now: Timestamp, global: Option<u32>) -> Option<Horizon> {
    horizon(site, now, site.retention_days.or(global)?)
}

/// Today (at `now`, in the site's timezone) and the `days` whole days before
/// it are kept; `None` when there is no such day (out of jiff's range).
pub fn horizon(site: &Site, now: Timestamp, days: u32) -> Option<Horizon> {
    let today = now.to_zoned_datetime(site.tz.clone()).date();
    let first = today.checked_sub(i64::from(days).days()).ok()?;
    let day = Day::new(first, &site.tz)?;
    Some(Horizon {
        site_id: site.id,
        from_ms: day.start_ms,
        day: first,
    })
}

/// Deletes at most [`SLICE`] rows of each table from before `h`; how many
/// were deleted (fewer than a slice of each: the site is done). One
/// transaction.
pub fn delete_slice(conn: &mut Connection, h: &Horizon) -> rusqlite::Result<usize> {
    let day = h.day.to_string();
    // Nothing to delete (every pass but one a day): nothing written.
    let any: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM events WHERE site_id = ?1 AND ts_ms < ?2)
                 OR EXISTS (SELECT 1 FROM sessions WHERE site_id = ?1 AND started_ms < ?2)
                 OR EXISTS (SELECT 1 FROM engagements WHERE site_id = ?1 AND ts_ms < ?2)
                 OR EXISTS (SELECT 1 FROM rollup_days WHERE site_id = ?1 AND day < ?3)",
        )?
        .query_row(params![h.site_id, h.from_ms, day], |r| r.get(0))?;
    if !any {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    // Deleting the newest events must not hand their ids out again.
    tx.execute(
        "UPDATE event_ids SET last = MAX(last, (SELECT COALESCE(MAX(id), 0) FROM events))",
        [],
    )?;
    tx.execute(
        "UPDATE engagement_ids SET last = MAX(last, (SELECT COALESCE(MAX(id), 0) FROM engagements))",
        [],
    )?;
    let limit = SLICE as i64;
    let mut deleted = 0;
    for sql in [
        "DELETE FROM events WHERE id IN
             (SELECT id FROM events WHERE site_id = ?1 AND ts_ms < ?2 LIMIT ?3)",
        // Queued for ClickHouse (an import's): the visits go, and their places.
        "DELETE FROM visit_backlog WHERE session_id IN
             (SELECT id FROM sessions WHERE site_id = ?1 AND started_ms < ?2 LIMIT ?3)",
        "DELETE FROM sessions WHERE id IN
             (SELECT id FROM sessions WHERE site_id = ?1 AND started_ms < ?2 LIMIT ?3)",
        "DELETE FROM engagements WHERE id IN
             (SELECT id FROM engagements WHERE site_id = ?1 AND ts_ms < ?2 LIMIT ?3)",
    ] {
        deleted += tx
            .prepare_cached(sql)?
            .execute(params![h.site_id, h.from_ms, limit])?;
    }
    // Rollup rows are written with their day's mark (stats::rollup::save):
    // no old mark, no old rows, and the scan of the site's rollups is
    // skipped.
    let old_marks: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM rollup_days WHERE site_id = ?1 AND day < ?2)",
        )?
        .query_row(params![h.site_id, day], |r| r.get(0))?;
    if old_marks {
        for table in ["rollup_events", "rollup_sessions", "rollup_days"] {
            deleted += tx.execute(
                &format!("DELETE FROM {table} WHERE site_id = ?1 AND day < ?2"),
                params![h.site_id, day],
            )?;
        }
    }
    tx.commit()?;
    Ok(deleted)
}

/// Once a site's rows before `h` are all gone: none of the first kept day's
/// visitors or visits was also seen the day before any more. Its rollup
/// says how many were (to count them once over several days), and a period
/// reaching back past it would subtract them with nothing left to count
/// them in.
pub fn settle(conn: &mut Connection, h: &Horizon) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE rollup_events SET carried_visitors = 0, carried_sessions = 0
         WHERE site_id = ?1 AND day = ?2 AND (carried_visitors != 0 OR carried_sessions != 0)",
        params![h.site_id, h.day.to_string()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(tz: &str) -> Site {
        Site {
            id: 7,
            domain: "example.com".into(),
            timezone: tz.into(),
            tz: jiff::tz::TimeZone::get(tz).unwrap(),
            retention_days: None,
        }
    }

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn the_horizon_is_local_midnight_days_before_today() {
        let now: Timestamp = "2026-04-08T10:00:00Z".parse().unwrap();
        let h = horizon(&site("UTC"), now, 10).unwrap();
        assert_eq!(h.day.to_string(), "2026-03-29");
        assert_eq!(h.from_ms, ms("2026-03-29T00:00:00Z"));
        // Berlin is at +01:00 before 2026-03-29 02:00 and +02:00 after.
        let h = horizon(&site("Europe/Berlin"), now, 10).unwrap();
        assert_eq!(h.from_ms, ms("2026-03-28T23:00:00Z"));
        let h = horizon(&site("Europe/Berlin"), now, 9).unwrap();
        assert_eq!(h.from_ms, ms("2026-03-29T22:00:00Z"));
        // Already the 9th in Tokyo.
        let late: Timestamp = "2026-04-08T23:30:00Z".parse().unwrap();
        let h = horizon(&site("Asia/Tokyo"), late, 1).unwrap();
        assert_eq!(h.day.to_string(), "2026-04-08");
        assert_eq!(h.from_ms, ms("2026-04-07T15:00:00Z"));
        // A midnight that does not exist (Santiago's clocks skip 00:00 to
        // 01:00 on 2026-09-06): the day starts when it starts.
        let h = horizon(&site("America/Santiago"), ms_ts("2026-09-10T12:00:00Z"), 4).unwrap();
        assert_eq!(h.day.to_string(), "2026-09-06");
        assert_eq!(h.from_ms, ms("2026-09-06T04:00:00Z"));
    }

    fn ms_ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }
}
