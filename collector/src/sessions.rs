//! Live sessions, in memory: sharded, bounded, evicted after the timeout.
//!
//! Keyed by (site, visitor id). Each shard is a plain mutex held only for the
//! pure state-machine step (core's `session::step`): never across I/O, and
//! no database write per event (seed 003, pitfall 2). The step hands back a
//! snapshot that the writer upserts behind, in the same batch as the event.
//! On start the collector reloads the sessions that are still live from the
//! `sessions` table, so a restart (even `kill -9`) does not split them.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use tallymark_core::session::{self, Hit, Session, SessionConfig, Transition};
use tallymark_core::source::ClickId;

use crate::store::{Dimensions, SessionRow, StoreError};

const SHARDS: usize = 64;

/// Bits of a session id below its start millisecond.
pub(crate) const ID_SEQUENCE_BITS: u32 = 20;

/// Session ids in order of creation: the millisecond a session started,
/// shifted left, plus a sequence, and always above every id issued before.
/// New sessions so go to the end of the `sessions` table and live ones stay
/// together in its newest pages, where one batch's upserts share pages;
/// random ids put each session on a page of its own, so every event
/// rewrote a page of its own in the WAL (seed 003: write amplification).
pub struct SessionIds(AtomicU64);

impl SessionIds {
    /// Ids after those already stored (legacy random ids, far above any
    /// clock-based one, are ignored: a clash with them is as unlikely as
    /// between two random ids).
    pub fn load(conn: &Connection, now_ms: i64) -> Result<Self, StoreError> {
        let ceiling = Self::floor(now_ms.saturating_add(365 * 86_400_000));
        let max: Option<i64> = conn.query_row(
            "SELECT MAX(id) FROM sessions WHERE id BETWEEN 0 AND ?1",
            [ceiling as i64],
            |r| r.get(0),
        )?;
        Ok(Self(AtomicU64::new(max.unwrap_or(0).max(0) as u64)))
    }

    fn floor(now_ms: i64) -> u64 {
        (now_ms.max(0) as u64) << ID_SEQUENCE_BITS
    }

    /// The next id: never reused, increasing, starting at `now_ms`'s floor.
    pub fn next(&self, now_ms: i64) -> u64 {
        let floor = Self::floor(now_ms);
        let after = |prev: u64| prev.saturating_add(1).max(floor);
        let prev = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| Some(after(p)))
            .unwrap_or_else(|p| p);
        after(prev)
    }
}

type Key = (i64, u64);

#[derive(Debug, Clone)]
struct Entry {
    session: Session,
    visitor_id: u64,
    version: i64,
    dims: Dimensions,
}

pub struct LiveSessions {
    shards: Vec<Mutex<HashMap<Key, Entry>>>,
    hasher: RandomState,
    config: SessionConfig,
    per_shard_cap: usize,
}

/// The visitor ids an event may belong to: under today's salt, and under
/// yesterday's while sessions from before midnight may still be live.
#[derive(Debug, Clone, Copy)]
pub struct Candidates {
    pub today: u64,
    pub yesterday: Option<u64>,
}

/// What one step produced.
#[derive(Debug, Clone)]
pub struct Stepped {
    pub row: SessionRow,
    /// The visitor id the session is filed under (yesterday's for a session
    /// that crossed midnight).
    pub visitor_id: u64,
    pub started: bool,
    /// The live entry before this step (`None`: there was none), for
    /// [`LiveSessions::undo`] when the event is not stored after all.
    previous: Option<Box<Entry>>,
}

impl LiveSessions {
    pub fn new(config: SessionConfig, capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            config,
            per_shard_cap: (capacity / SHARDS).max(16),
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    fn shard(&self, key: &Key) -> &Mutex<HashMap<Key, Entry>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// Applies one hit. `new_id` is the session id if one starts; `dims` is
    /// called only then (first-touch attribution).
    pub fn step(
        &self,
        site_id: i64,
        visitor: Candidates,
        hit: Hit<'_>,
        now_ms: i64,
        new_id: u64,
        dims: impl FnOnce() -> Dimensions,
    ) -> Stepped {
        if let Some(old) = visitor.yesterday
            && let Some(stepped) = self.continue_live(site_id, old, hit, now_ms)
        {
            self.alias(site_id, visitor.today, old);
            return stepped;
        }
        let key = (site_id, visitor.today);
        let Ok(mut shard) = self.shard(&key).lock() else {
            // A poisoned shard (a panic elsewhere) must not fail the event:
            // count it as a new session.
            return self.fresh(site_id, visitor.today, hit, now_ms, new_id, dims());
        };
        // An alias: this visitor's session crossed midnight and is filed
        // under yesterday's id, which can no longer be computed once
        // yesterday's salt is deleted (midnight + the timeout). The visit
        // goes on as long as it stays live, however long after midnight.
        let mut previous = shard.get(&key).cloned();
        if let Some(old) = previous
            .as_ref()
            .map(|e| e.visitor_id)
            .filter(|id| *id != visitor.today)
        {
            drop(shard);
            if let Some(stepped) = self.continue_live(site_id, old, hit, now_ms) {
                self.alias(site_id, visitor.today, old);
                return stepped;
            }
            let Ok(again) = self.shard(&key).lock() else {
                return self.fresh(site_id, visitor.today, hit, now_ms, new_id, dims());
            };
            shard = again;
            shard.remove(&key);
            previous = None;
        }
        let before = previous.clone().map(Box::new);
        let (session, transition) = session::step(
            previous.as_ref().map(|e| e.session.clone()),
            hit,
            now_ms,
            &self.config,
            new_id,
        );
        let started = matches!(transition, Transition::Started { .. });
        let (dims, version) = match previous {
            Some(e) if !started => (e.dims, e.version + 1),
            _ => (dims(), 1),
        };
        let entry = Entry {
            session,
            visitor_id: visitor.today,
            version,
            dims,
        };
        let row = row_of(site_id, &entry);
        if shard.len() >= self.per_shard_cap && !shard.contains_key(&key) {
            evict_oldest(&mut shard);
        }
        shard.insert(key, entry);
        Stepped {
            row,
            visitor_id: visitor.today,
            started,
            previous: before,
        }
    }

    /// The live session `visitor` is in now, without changing it (an
    /// engagement event belongs to it but never steps it): under
    /// yesterday's id while a visit that crossed midnight goes on, else
    /// under today's (through its alias, where the visit really is).
    pub fn current(&self, site_id: i64, visitor: Candidates, now_ms: i64) -> Option<i64> {
        let live = |visitor_id: u64| -> Option<(i64, u64)> {
            let key = (site_id, visitor_id);
            let shard = self.shard(&key).lock().ok()?;
            let entry = shard.get(&key)?;
            entry
                .session
                .is_live(now_ms, &self.config)
                .then_some((entry.session.id as i64, entry.visitor_id))
        };
        if let Some(old) = visitor.yesterday
            && let Some((id, _)) = live(old)
        {
            return Some(id);
        }
        match live(visitor.today)? {
            (id, filed) if filed == visitor.today => Some(id),
            // An alias: the visit is filed under yesterday's id.
            (_, filed) => live(filed).map(|(id, _)| id),
        }
    }

    /// Takes back `stepped` when its event was not stored (queue full at
    /// commit, a duplicate found by the database, a failed commit), so the
    /// live session counts only stored events. Only while the entry is still
    /// the one this step produced: a later event of the same visitor has
    /// already built on it and keeps it (a rare race, at most one count).
    pub fn undo(&self, stepped: Stepped) {
        let key = (stepped.row.site_id, stepped.visitor_id);
        let Ok(mut shard) = self.shard(&key).lock() else {
            return;
        };
        let current = shard.get(&key).map(|e| (e.session.id as i64, e.version));
        if current != Some((stepped.row.id, stepped.row.version)) {
            return;
        }
        match stepped.previous {
            Some(previous) => {
                shard.insert(key, *previous);
            }
            None => {
                shard.remove(&key);
            }
        }
    }

    fn continue_live(
        &self,
        site_id: i64,
        visitor: u64,
        hit: Hit<'_>,
        now_ms: i64,
    ) -> Option<Stepped> {
        let key = (site_id, visitor);
        let mut shard = self.shard(&key).lock().ok()?;
        let entry = shard.get_mut(&key)?;
        if !entry.session.is_live(now_ms, &self.config) {
            return None;
        }
        let previous = Some(Box::new(entry.clone()));
        let (session, _) = session::step(Some(entry.session.clone()), hit, now_ms, &self.config, 0);
        entry.session = session;
        entry.version += 1;
        Some(Stepped {
            row: row_of(site_id, entry),
            visitor_id: visitor,
            started: false,
            previous,
        })
    }

    /// Files (site, `today`) as an alias of the live session under `old`: a
    /// copy of its entry (so the sweep keeps it exactly as long), whose
    /// `visitor_id` names where the session really is.
    fn alias(&self, site_id: i64, today: u64, old: u64) {
        let copy = match self.shard(&(site_id, old)).lock() {
            Ok(shard) => shard.get(&(site_id, old)).cloned(),
            Err(_) => None,
        };
        if let Some(copy) = copy
            && let Ok(mut shard) = self.shard(&(site_id, today)).lock()
        {
            shard.insert((site_id, today), copy);
        }
    }

    fn fresh(
        &self,
        site_id: i64,
        visitor: u64,
        hit: Hit<'_>,
        now_ms: i64,
        new_id: u64,
        dims: Dimensions,
    ) -> Stepped {
        let (session, _) = session::step(None, hit, now_ms, &self.config, new_id);
        let entry = Entry {
            session,
            visitor_id: visitor,
            version: 1,
            dims,
        };
        Stepped {
            row: row_of(site_id, &entry),
            visitor_id: visitor,
            started: true,
            previous: None,
        }
    }

    /// Drops sessions idle longer than the timeout; returns how many remain.
    pub fn sweep(&self, now_ms: i64) -> usize {
        let mut live = 0;
        for shard in &self.shards {
            if let Ok(mut map) = shard.lock() {
                map.retain(|_, e| e.session.is_live(now_ms, &self.config));
                live += map.len();
            }
        }
        live
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reloads the sessions still live at `now_ms` from the database.
    pub fn reload(&self, conn: &Connection, now_ms: i64) -> Result<usize, StoreError> {
        let mut stmt = conn.prepare(
            "SELECT id, site_id, visitor_id, version, started_ms, last_ms, entry_path,
                exit_path, pageviews, events, interactions, referrer, referrer_domain, source,
                channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content, click_id,
                country, browser, browser_major, os, device, os_version, region, city
             FROM sessions WHERE last_ms >= ?1",
        )?;
        let since = now_ms - self.config.timeout_ms;
        let rows = stmt.query_map([since], |r| {
            let site_id: i64 = r.get(1)?;
            let visitor_id: i64 = r.get(2)?;
            let (channel, browser, os, device) = Dimensions::from_labels(
                &r.get::<_, String>(14)?,
                &r.get::<_, String>(22)?,
                &r.get::<_, String>(24)?,
                &r.get::<_, String>(25)?,
            );
            let click_id: Option<String> = r.get(20)?;
            let entry = Entry {
                session: Session {
                    id: r.get::<_, i64>(0)? as u64,
                    started_ms: r.get(4)?,
                    last_ms: r.get(5)?,
                    entry_path: r.get(6)?,
                    exit_path: r.get(7)?,
                    pageviews: r.get(8)?,
                    events: r.get(9)?,
                    interactions: r.get(10)?,
                },
                visitor_id: visitor_id as u64,
                version: r.get(3)?,
                dims: Dimensions {
                    referrer: r.get(11)?,
                    referrer_domain: r.get(12)?,
                    source: r.get(13)?,
                    channel,
                    utm_source: r.get(15)?,
                    utm_medium: r.get(16)?,
                    utm_campaign: r.get(17)?,
                    utm_term: r.get(18)?,
                    utm_content: r.get(19)?,
                    click_id: click_id.as_deref().and_then(ClickId::from_param),
                    country: r.get(21)?,
                    region: r.get(27)?,
                    city: r.get(28)?,
                    browser,
                    browser_major: r.get(23)?,
                    os,
                    // A value this binary cannot read is no version.
                    os_version: r.get::<_, Option<String>>(26)?.and_then(|v| v.parse().ok()),
                    device,
                },
            };
            Ok((site_id, entry))
        })?;
        let mut n = 0;
        for row in rows {
            let (site_id, entry) = row?;
            let key = (site_id, entry.visitor_id);
            if let Ok(mut shard) = self.shard(&key).lock() {
                shard.insert(key, entry);
                n += 1;
            }
        }
        Ok(n)
    }
}

fn evict_oldest(shard: &mut HashMap<Key, Entry>) {
    if let Some(key) = shard
        .iter()
        .min_by_key(|(_, e)| e.session.last_ms)
        .map(|(k, _)| *k)
    {
        shard.remove(&key);
    }
}

fn row_of(site_id: i64, e: &Entry) -> SessionRow {
    let s = &e.session;
    SessionRow {
        id: s.id as i64,
        site_id,
        visitor_id: e.visitor_id as i64,
        version: e.version,
        started_ms: s.started_ms,
        last_ms: s.last_ms,
        entry_path: s.entry_path.clone(),
        exit_path: s.exit_path.clone(),
        pageviews: s.pageviews.into(),
        events: s.events.into(),
        interactions: s.interactions.into(),
        dims: e.dims.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000_000;

    #[test]
    fn session_ids_increase_from_the_start_millisecond() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::schema::open(&dir.path().join("t.sqlite3")).unwrap();
        let ids = SessionIds::load(&conn, NOW).unwrap();
        let a = ids.next(NOW);
        let b = ids.next(NOW);
        // A clock that steps back never repeats or lowers an id.
        let c = ids.next(NOW - 60_000);
        assert_eq!(a >> ID_SEQUENCE_BITS, NOW as u64);
        assert!(a < b && b < c, "{a} {b} {c}");
        let later = ids.next(NOW + 1000);
        assert_eq!(later, ((NOW + 1000) as u64) << ID_SEQUENCE_BITS);
        assert!(i64::try_from(later).is_ok(), "ids are stored as INTEGER");
    }

    #[test]
    fn session_ids_continue_after_stored_ones_and_ignore_legacy_random_ones() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::schema::open(&dir.path().join("t.sqlite3")).unwrap();
        let insert = |id: i64| {
            conn.execute(
                "INSERT INTO sessions (id, site_id, visitor_id, version, started_ms, last_ms,
                    entry_path, exit_path, pageviews, events, interactions, channel, browser,
                    os, device)
                 VALUES (?1, 1, 1, 1, 0, 0, '/', '/', 1, 1, 0, 'direct', 'Firefox', 'Linux',
                    'Desktop')",
                [id],
            )
            .unwrap()
        };
        // Issued by an earlier run whose clock was ahead of ours.
        let ahead = ((NOW + 5_000) << ID_SEQUENCE_BITS) + 7;
        insert(ahead);
        // Random ids from before ids were ordered: far above, or negative.
        insert(i64::MAX - 3);
        insert(-42);
        let ids = SessionIds::load(&conn, NOW).unwrap();
        assert_eq!(ids.next(NOW), ahead as u64 + 1);
    }
}
