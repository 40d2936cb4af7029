//! Daily rollups: the stats API's fast path, exact by construction.
//!
//! A dashboard asks for whole local days without filters: totals, a daily
//! timeseries and a few breakdowns (and, after a click on a source, the same
//! with one filter on a visit dimension: that dimension's row of the value). Scanning every event of a busy month for
//! each of them is too slow on SQLite, so each finished local day of each
//! site is summed once into `rollup_events` (per event dimension and value)
//! and `rollup_sessions` (per session dimension and value, by start day).
//!
//! Distinct counts stay exact. Visitor ids are daily (salted per local day),
//! so a visitor id appears on two days only through a visit that crossed
//! midnight. Each rolled day therefore stores, besides its distinct visitors
//! (and sessions), how many of them already appeared on the day before with
//! the same value (`carried_*`); over consecutive days d₁…dₙ the distinct
//! count is `Σ distinct(dᵢ) − Σ_{i>1} carried(dᵢ)`, exactly what
//! `COUNT(DISTINCT …)` over the raw rows gives. Sessions started on a day
//! always carry that day's visitor id (a new session never takes yesterday's
//! id), so session-side visitors of different start days never overlap.
//!
//! The same fact bounds the work: the ids a day shares with the day before
//! belong to visits that crossed midnight, so only the day before from the
//! first start of those visitors' visits is read to find them.
//!
//! A day is rolled once it is over (events) and once no session started on it
//! can still grow (sessions). Days not rolled yet (today, usually) are
//! computed on the fly from the raw rows with the same code, so an answer
//! never depends on whether the rollup job has run. Filters, event
//! properties, realtime and hour/minute buckets take the raw path in
//! `query.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use rusqlite::{Connection, OptionalExtension, params};

use super::params::{
    Bucket, Dimension, Metric, NONE_LABEL, Op, Scope, wants_events, wants_sessions,
};
use super::query::{Scoped, Totals};
use crate::sites::Site;

/// A day is rolled this long after it ended (late commits of its events).
pub const GRACE_MS: i64 = 2 * 60 * 1000;

/// Dimensions of the visit, on both events and sessions.
const SHARED_DIMS: &[Dimension] = &[
    Dimension::Source,
    Dimension::Referrer,
    Dimension::Channel,
    Dimension::UtmSource,
    Dimension::UtmMedium,
    Dimension::UtmCampaign,
    Dimension::UtmTerm,
    Dimension::UtmContent,
    Dimension::Country,
    Dimension::Region,
    Dimension::City,
    Dimension::Browser,
    Dimension::Os,
    Dimension::Device,
];

/// What the region and city read: the values of `stats::query`'s
/// `column()`, so rolled and raw answers agree.
static REGION_SQL: LazyLock<String> = LazyLock::new(|| super::query::region_sql(""));
static CITY_SQL: LazyLock<String> = LazyLock::new(|| super::query::city_sql(""));

/// Whether the daily rollups hold `dim`'s values: the visit's dimensions
/// (not the browser version: many values, rarely asked), pages, entry and
/// exit pages and event names (not properties, nor hostnames: most sites
/// have one).
fn holds(dim: &Dimension) -> bool {
    SHARED_DIMS.contains(dim)
        || matches!(
            dim,
            Dimension::Page | Dimension::EventName | Dimension::EntryPage | Dimension::ExitPage
        )
}

/// The dimensions rolled up on one side: the site's totals (`None`), the
/// side's own dimensions, and the shared ones.
fn rolled_dims(own: [Dimension; 2]) -> Vec<Option<Dimension>> {
    std::iter::once(None)
        .chain(own.into_iter().map(Some))
        .chain(SHARED_DIMS.iter().cloned().map(Some))
        .collect()
}

fn dim_key(dim: &Option<Dimension>) -> String {
    dim.as_ref().map(|d| d.to_string()).unwrap_or_default()
}

/// One local day of a site, as a half-open span of Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    pub date: Date,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Day {
    pub fn new(date: Date, tz: &TimeZone) -> Option<Self> {
        let start_ms = date
            .to_zoned_datetime(tz.clone())
            .ok()?
            .timestamp()
            .as_millisecond();
        let end_ms = date
            .tomorrow()
            .ok()?
            .to_zoned_datetime(tz.clone())
            .ok()?
            .timestamp()
            .as_millisecond();
        Some(Self {
            date,
            start_ms,
            end_ms,
        })
    }

    fn before(&self, tz: &TimeZone) -> Option<Self> {
        Self::new(self.date.yesterday().ok()?, tz)
    }
}

/// Event-side sums of one day and value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSums {
    pub visitors: i64,
    pub carried_visitors: i64,
    pub sessions: i64,
    pub carried_sessions: i64,
    pub pageviews: i64,
    pub events: i64,
}

/// Session-side sums of one start day and value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSums {
    pub visitors: i64,
    pub visits: i64,
    pub pageviews: i64,
    pub bounces: i64,
    pub duration_ms: i64,
}

impl std::ops::AddAssign for EventSums {
    fn add_assign(&mut self, o: Self) {
        // Saturating: sums of imported files are bounded, not trusted.
        self.visitors = self.visitors.saturating_add(o.visitors);
        self.carried_visitors = self.carried_visitors.saturating_add(o.carried_visitors);
        self.sessions = self.sessions.saturating_add(o.sessions);
        self.carried_sessions = self.carried_sessions.saturating_add(o.carried_sessions);
        self.pageviews = self.pageviews.saturating_add(o.pageviews);
        self.events = self.events.saturating_add(o.events);
    }
}

impl std::ops::AddAssign for SessionSums {
    fn add_assign(&mut self, o: Self) {
        self.visitors = self.visitors.saturating_add(o.visitors);
        self.visits = self.visits.saturating_add(o.visits);
        self.pageviews = self.pageviews.saturating_add(o.pageviews);
        self.bounces = self.bounces.saturating_add(o.bounces);
        self.duration_ms = self.duration_ms.saturating_add(o.duration_ms);
    }
}

/// What is left of these sums without `o`'s (never below 0): the part of
/// an imported day no named value holds.
impl std::ops::SubAssign for EventSums {
    fn sub_assign(&mut self, o: Self) {
        let less = |a: i64, b: i64| a.saturating_sub(b).max(0);
        self.visitors = less(self.visitors, o.visitors);
        self.carried_visitors = less(self.carried_visitors, o.carried_visitors);
        self.sessions = less(self.sessions, o.sessions);
        self.carried_sessions = less(self.carried_sessions, o.carried_sessions);
        self.pageviews = less(self.pageviews, o.pageviews);
        self.events = less(self.events, o.events);
    }
}

impl std::ops::SubAssign for SessionSums {
    fn sub_assign(&mut self, o: Self) {
        let less = |a: i64, b: i64| a.saturating_sub(b).max(0);
        self.visitors = less(self.visitors, o.visitors);
        self.visits = less(self.visits, o.visits);
        self.pageviews = less(self.pageviews, o.pageviews);
        self.bounces = less(self.bounces, o.bounces);
        self.duration_ms = less(self.duration_ms, o.duration_ms);
    }
}

type Value = Option<String>;

/// The `events` column a dimension reads (`None`: the site's totals, no
/// column).
fn event_column(dim: &Option<Dimension>) -> Option<&'static str> {
    match dim {
        None => None,
        Some(Dimension::Page) => Some("path"),
        Some(Dimension::EventName) => Some("name"),
        Some(Dimension::Region) => Some(REGION_SQL.as_str()),
        Some(Dimension::City) => Some(CITY_SQL.as_str()),
        Some(d) => match d.scope() {
            Scope::Shared(col) => Some(col),
            Scope::Event | Scope::Session => None,
        },
    }
}

/// Whether an event counts for `dim`: `page` counts pageviews only,
/// `event:name` custom events only (as the raw breakdowns do).
fn counts_for(dim: &Option<Dimension>, pageview: bool) -> bool {
    match dim {
        Some(Dimension::Page) => pageview,
        Some(Dimension::EventName) => !pageview,
        _ => true,
    }
}

/// The `sessions` column a session dimension reads.
fn session_column(dim: &Option<Dimension>) -> Option<&'static str> {
    match dim {
        None => None,
        Some(Dimension::EntryPage) => Some("entry_path"),
        Some(Dimension::ExitPage) => Some("exit_path"),
        Some(Dimension::Region) => Some(REGION_SQL.as_str()),
        Some(Dimension::City) => Some(CITY_SQL.as_str()),
        Some(d) => match d.scope() {
            Scope::Shared(col) => Some(col),
            Scope::Event | Scope::Session => None,
        },
    }
}

/// `SELECT` list entries for `dims`, and for each dim the index of its
/// column in that list (after the fixed leading columns).
fn columns(
    dims: &[Option<Dimension>],
    column: fn(&Option<Dimension>) -> Option<&'static str>,
) -> (String, Vec<Option<usize>>) {
    let mut names: Vec<&'static str> = Vec::new();
    let mut index = Vec::with_capacity(dims.len());
    for dim in dims {
        index.push(
            column(dim).map(|c| match names.iter().position(|n| *n == c) {
                Some(i) => i,
                None => {
                    names.push(c);
                    names.len() - 1
                }
            }),
        );
    }
    let list = names.iter().map(|n| format!(", {n}")).collect::<String>();
    (list, index)
}

/// Reads events of `site_id` in `[start, end)` with the columns `list`,
/// calling `f` with (visitor, session, is pageview, column values). Only
/// rows with `after < id <= upto` (ids grow with time: one writer appends);
/// `after == 0` reads the span through its index, otherwise by id.
fn each_event(
    conn: &Connection,
    site_id: i64,
    (start_ms, end_ms): (i64, i64),
    (after, upto): (i64, i64),
    list: &str,
    mut f: impl FnMut(i64, i64, bool, &[Value]),
) -> rusqlite::Result<()> {
    let from = if after == 0 {
        "events"
    } else {
        "events NOT INDEXED"
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT visitor_id, session_id, kind = 'pageview'{list} FROM {from}
         WHERE id > ?4 AND id <= ?5 AND site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3"
    ))?;
    let width = stmt.column_count() - 3;
    let mut rows = stmt.query(params![site_id, start_ms, end_ms, after, upto])?;
    let mut cols: Vec<Value> = vec![None; width];
    while let Some(r) = rows.next()? {
        let visitor: i64 = r.get(0)?;
        let session: i64 = r.get(1)?;
        let pageview: bool = r.get(2)?;
        for (i, c) in cols.iter_mut().enumerate() {
            *c = r.get(i + 3)?;
        }
        f(visitor, session, pageview, &cols);
    }
    Ok(())
}

#[derive(Default)]
struct Acc {
    visitors: HashSet<i64>,
    sessions: HashSet<i64>,
    carried_visitors: i64,
    carried_sessions: i64,
    pageviews: i64,
    events: i64,
}

/// The event sums of one day, built from its rows and then kept up to date
/// by folding in only the rows added since (see [`Live`]).
struct DayEvents {
    day: Day,
    dims: Vec<Option<Dimension>>,
    list: String,
    index: Vec<Option<usize>>,
    /// Rows with ids up to this one are folded in.
    upto: i64,
    acc: Vec<HashMap<Value, Acc>>,
    /// (value, visitor, false) and (value, session, true) pairs of the day
    /// before, for the visitors that can have been there too.
    seen: Vec<HashSet<(Value, i64, bool)>>,
}

impl DayEvents {
    /// The day's rows so far. Only visitors of visits that were live at
    /// midnight can also have been there the day before (a new visit
    /// always takes the new day's id); that set cannot grow after midnight,
    /// so their pairs of the day before are read once, from the first start
    /// of any of their visits.
    fn build(
        conn: &Connection,
        site_id: i64,
        day: Day,
        before: Option<Day>,
        timeout_ms: i64,
        dims: &[Option<Dimension>],
    ) -> rusqlite::Result<Self> {
        let (list, index) = columns(dims, event_column);
        let mut me = Self {
            day,
            dims: dims.to_vec(),
            list,
            index,
            upto: 0,
            acc: dims.iter().map(|_| HashMap::new()).collect(),
            seen: dims.iter().map(|_| HashSet::new()).collect(),
        };
        if let Some(before) = before {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT visitor_id FROM sessions
                 WHERE site_id = ?1 AND started_ms >= ?2 AND started_ms < ?3 AND last_ms >= ?4",
            )?;
            let candidates: HashSet<i64> = stmt
                .query_map(
                    params![
                        site_id,
                        before.start_ms,
                        day.start_ms,
                        day.start_ms - timeout_ms
                    ],
                    |r| r.get(0),
                )?
                .collect::<rusqlite::Result<_>>()?;
            let from_ms: Option<i64> = if candidates.is_empty() {
                None
            } else {
                conn.prepare_cached(
                    "SELECT MIN(s.started_ms) FROM sessions s
                     WHERE s.site_id = ?1 AND s.started_ms >= ?2 AND s.started_ms < ?3
                       AND s.visitor_id IN (
                         SELECT c.visitor_id FROM sessions c
                         WHERE c.site_id = ?1 AND c.started_ms >= ?2 AND c.started_ms < ?3
                           AND c.last_ms >= ?4)",
                )?
                .query_row(
                    params![
                        site_id,
                        before.start_ms,
                        day.start_ms,
                        day.start_ms - timeout_ms
                    ],
                    |r| r.get(0),
                )?
            };
            if let Some(from_ms) = from_ms {
                let (index, dims, seen) = (&me.index, &me.dims, &mut me.seen);
                each_event(
                    conn,
                    site_id,
                    (from_ms.max(before.start_ms), before.end_ms),
                    (0, i64::MAX),
                    &me.list,
                    |visitor, session, pageview, cols| {
                        if !candidates.contains(&visitor) {
                            return;
                        }
                        for (i, dim) in dims.iter().enumerate() {
                            if let Some(value) = value_of(dim, index[i], pageview, cols) {
                                seen[i].insert((value.clone(), visitor, false));
                                seen[i].insert((value, session, true));
                            }
                        }
                    },
                )?;
            }
        }
        me.update(conn, site_id)?;
        Ok(me)
    }

    /// Folds in the day's rows added since the last call.
    fn update(&mut self, conn: &Connection, site_id: i64) -> rusqlite::Result<()> {
        let upto: i64 = conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")?
            .query_row([], |r| r.get(0))?;
        if upto <= self.upto {
            return Ok(());
        }
        let (index, dims, seen, acc) = (&self.index, &self.dims, &self.seen, &mut self.acc);
        each_event(
            conn,
            site_id,
            (self.day.start_ms, self.day.end_ms),
            (self.upto, upto),
            &self.list,
            |visitor, session, pageview, cols| {
                for (i, dim) in dims.iter().enumerate() {
                    let Some(value) = value_of(dim, index[i], pageview, cols) else {
                        continue;
                    };
                    let carried_v = seen[i].contains(&(value.clone(), visitor, false));
                    let carried_s = seen[i].contains(&(value.clone(), session, true));
                    let a = acc[i].entry(value).or_default();
                    if a.visitors.insert(visitor) && carried_v {
                        a.carried_visitors += 1;
                    }
                    if a.sessions.insert(session) && carried_s {
                        a.carried_sessions += 1;
                    }
                    a.pageviews += i64::from(pageview);
                    a.events += 1;
                }
            },
        )?;
        self.upto = upto;
        Ok(())
    }

    fn sums(&self) -> HashMap<(String, Value), EventSums> {
        let mut out = HashMap::new();
        for (i, dim) in self.dims.iter().enumerate() {
            let key = dim_key(dim);
            for (value, a) in &self.acc[i] {
                out.insert(
                    (key.clone(), value.clone()),
                    EventSums {
                        visitors: a.visitors.len() as i64,
                        carried_visitors: a.carried_visitors,
                        sessions: a.sessions.len() as i64,
                        carried_sessions: a.carried_sessions,
                        pageviews: a.pageviews,
                        events: a.events,
                    },
                );
            }
        }
        out
    }
}

/// The value an event has for `dim` (column `index` of `cols`), or `None`
/// when it does not count for it: `page` counts pageviews only, `event:name`
/// custom events only, a dimension without an events column nothing.
fn value_of(
    dim: &Option<Dimension>,
    index: Option<usize>,
    pageview: bool,
    cols: &[Value],
) -> Option<Value> {
    if dim.is_some() && index.is_none() || !counts_for(dim, pageview) {
        return None;
    }
    Some(index.and_then(|c| cols.get(c).cloned().flatten()))
}

/// The event sums of `day` for each of `dims` and value, from the raw rows.
pub fn compute_event_day(
    conn: &Connection,
    site_id: i64,
    day: Day,
    before: Option<Day>,
    timeout_ms: i64,
    dims: &[Option<Dimension>],
) -> rusqlite::Result<HashMap<(String, Value), EventSums>> {
    Ok(DayEvents::build(conn, site_id, day, before, timeout_ms, dims)?.sums())
}

/// The session sums of the sessions started on `day`, per each of `dims`
/// and value, from the raw rows.
pub fn compute_session_day(
    conn: &Connection,
    site_id: i64,
    day: Day,
    dims: &[Option<Dimension>],
) -> rusqlite::Result<HashMap<(String, Value), SessionSums>> {
    #[derive(Default)]
    struct Acc {
        visitors: HashSet<i64>,
        sums: SessionSums,
    }
    let (list, index) = columns(dims, session_column);
    let mut acc: Vec<HashMap<Value, Acc>> = dims.iter().map(|_| HashMap::new()).collect();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT visitor_id, pageviews, pageviews <= 1 AND interactions = 0,
                last_ms - started_ms{list}
         FROM sessions WHERE site_id = ?1 AND started_ms >= ?2 AND started_ms < ?3"
    ))?;
    let width = stmt.column_count() - 4;
    let mut rows = stmt.query(params![site_id, day.start_ms, day.end_ms])?;
    let mut cols: Vec<Value> = vec![None; width];
    while let Some(r) = rows.next()? {
        let visitor: i64 = r.get(0)?;
        let pageviews: i64 = r.get(1)?;
        let bounce: i64 = r.get(2)?;
        let duration: i64 = r.get(3)?;
        for (i, c) in cols.iter_mut().enumerate() {
            *c = r.get(i + 4)?;
        }
        for (i, dim) in dims.iter().enumerate() {
            if dim.is_some() && index[i].is_none() {
                continue;
            }
            let value = index[i].and_then(|c| cols.get(c).cloned().flatten());
            let a = acc[i].entry(value).or_default();
            a.visitors.insert(visitor);
            a.sums.visits += 1;
            a.sums.pageviews += pageviews;
            a.sums.bounces += bounce;
            a.sums.duration_ms += duration;
        }
    }
    let mut out = HashMap::new();
    for (i, dim) in dims.iter().enumerate() {
        let key = dim_key(dim);
        for (value, mut a) in acc[i].drain() {
            a.sums.visitors = a.visitors.len() as i64;
            out.insert((key.clone(), value), a.sums);
        }
    }
    Ok(out)
}

/// Which kind of rollup a `rollup_days` row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Events,
    Sessions,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Events => "events",
            Kind::Sessions => "sessions",
        }
    }
}

/// The local day of the site's first stored event.
pub fn first_event_day(conn: &Connection, site: &Site) -> rusqlite::Result<Option<Date>> {
    Ok(super::query::first_event_ms(conn, site.id)?
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_zoned_datetime(site.tz.clone()).date()))
}

/// The first day of `site`'s own events: of visits no import queued (one
/// probe per imported event before it).
pub fn own_first_day(conn: &Connection, site: &Site) -> rusqlite::Result<Option<Date>> {
    let ms: Option<i64> = conn.query_row(
        "SELECT MIN(ts_ms) FROM events WHERE site_id = ?1
         AND NOT EXISTS (SELECT 1 FROM visit_backlog WHERE session_id = events.session_id)",
        [site.id],
        |r| r.get(0),
    )?;
    Ok(ms
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_zoned_datetime(site.tz.clone()).date()))
}

/// The site's first day with data: of its first stored event, or of its
/// first rolled day (an import's days come before its events).
pub fn first_day(conn: &Connection, site: &Site) -> rusqlite::Result<Option<Date>> {
    let event = first_event_day(conn, site)?;
    let rolled: Option<String> = conn
        .prepare_cached("SELECT MIN(day) FROM rollup_days WHERE site_id = ?1")?
        .query_row([site.id], |r| r.get(0))?;
    let rolled = rolled.and_then(|d| d.parse::<Date>().ok());
    Ok(match (event, rolled) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// The first and last days imported as daily totals (`tallymark import` of
/// Plausible's export): days with rolled totals and no stored event (a day
/// rolled from events keeps them, also an import's of raw rows; a day
/// rolled empty has no row). One index probe per rolled day.
pub fn imported_days(conn: &Connection, site: &Site) -> rusqlite::Result<Option<(Date, Date)>> {
    let days: Vec<String> = conn
        .prepare_cached(
            "SELECT DISTINCT day FROM rollup_events WHERE site_id = ?1 AND dim = '' ORDER BY day",
        )?
        .query_map([site.id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out: Option<(Date, Date)> = None;
    for day in days.iter().filter_map(|d| d.parse::<Date>().ok()) {
        if !has_events(conn, site, day)? {
            out = Some(out.map_or((day, day), |(first, _)| (first, day)));
        }
    }
    Ok(out)
}

/// Whether `site` has any event stored on its local `day`.
pub fn has_events(conn: &Connection, site: &Site, day: Date) -> rusqlite::Result<bool> {
    let Some(d) = Day::new(day, &site.tz) else {
        return Ok(false);
    };
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM events WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3)",
    )?
    .query_row(params![site.id, d.start_ms, d.end_ms], |r| r.get(0))
}

/// Whether `site_id`'s rolled `date` holds nothing: no page view, custom
/// event or visit (`serve` rolls the days after an imported history up to
/// its own first event; a later import may fill them: [`forget_day`]).
pub fn is_rolled_empty(conn: &Connection, site_id: i64, date: Date) -> rusqlite::Result<bool> {
    let day = date.to_string();
    conn.prepare_cached(
        "SELECT NOT EXISTS (SELECT 1 FROM rollup_events WHERE site_id = ?1 AND day = ?2
                AND (pageviews > 0 OR events > 0 OR visitors > 0))
            AND NOT EXISTS (SELECT 1 FROM rollup_sessions WHERE site_id = ?1 AND day = ?2
                AND (visits > 0 OR visitors > 0))",
    )?
    .query_row(params![site_id, day], |r| r.get(0))
}

/// Drops the sums of `site_id`'s rolled `date` (an import writes into it
/// in the same transaction; the day is rolled again after).
pub fn forget_day(conn: &Connection, site_id: i64, date: Date) -> rusqlite::Result<()> {
    let day = date.to_string();
    for table in ["rollup_days", "rollup_events", "rollup_sessions"] {
        conn.prepare_cached(&format!(
            "DELETE FROM {table} WHERE site_id = ?1 AND day = ?2"
        ))?
        .execute(params![site_id, day])?;
    }
    Ok(())
}

/// Whether `date` is rolled for either side (imports write neither then).
pub fn is_rolled_at_all(conn: &Connection, site_id: i64, date: Date) -> rusqlite::Result<bool> {
    Ok(is_rolled(conn, site_id, date, Kind::Events)?
        || is_rolled(conn, site_id, date, Kind::Sessions)?)
}

fn is_rolled(conn: &Connection, site_id: i64, date: Date, kind: Kind) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM rollup_days WHERE site_id = ?1 AND day = ?2 AND kind = ?3")?
        .query_row(
            params![site_id, date.to_string(), kind.as_str()],
            |_| Ok(()),
        )
        .optional()
        .map(|r| r.is_some())
}

/// The event sums of `day` for `dim`: from the rollup when the day is
/// rolled, else from [`Live`].
fn event_day(
    at: &At<'_>,
    day: Day,
    dim: &Option<Dimension>,
) -> rusqlite::Result<HashMap<Value, EventSums>> {
    let (conn, site) = (at.conn, at.site);
    let key = dim_key(dim);
    if is_rolled(conn, site.id, day.date, Kind::Events)? {
        let mut stmt = conn.prepare_cached(
            "SELECT value, visitors, carried_visitors, sessions, carried_sessions, pageviews, events
             FROM rollup_events WHERE site_id = ?1 AND day = ?2 AND dim = ?3",
        )?;
        let rows = stmt.query_map(params![site.id, day.date.to_string(), key], |r| {
            Ok((
                r.get::<_, Value>(0)?,
                EventSums {
                    visitors: r.get(1)?,
                    carried_visitors: r.get(2)?,
                    sessions: r.get(3)?,
                    carried_sessions: r.get(4)?,
                    pageviews: r.get(5)?,
                    events: r.get(6)?,
                },
            ))
        })?;
        return rows.collect();
    }
    if not_begun(at, day) {
        return Ok(HashMap::new());
    }
    let (events, _) = at.live.get(at, day)?;
    Ok(of_dim(&events, &key))
}

fn session_day(
    at: &At<'_>,
    day: Day,
    dim: &Option<Dimension>,
) -> rusqlite::Result<HashMap<Value, SessionSums>> {
    let (conn, site) = (at.conn, at.site);
    let key = dim_key(dim);
    if is_rolled(conn, site.id, day.date, Kind::Sessions)? {
        let mut stmt = conn.prepare_cached(
            "SELECT value, visitors, visits, pageviews, bounces, duration_ms
             FROM rollup_sessions WHERE site_id = ?1 AND day = ?2 AND dim = ?3",
        )?;
        let rows = stmt.query_map(params![site.id, day.date.to_string(), key], |r| {
            Ok((
                r.get::<_, Value>(0)?,
                SessionSums {
                    visitors: r.get(1)?,
                    visits: r.get(2)?,
                    pageviews: r.get(3)?,
                    bounces: r.get(4)?,
                    duration_ms: r.get(5)?,
                },
            ))
        })?;
        return rows.collect();
    }
    if not_begun(at, day) {
        return Ok(HashMap::new());
    }
    let (_, sessions) = at.live.get(at, day)?;
    Ok(of_dim(&sessions, &key))
}

/// A day that has not begun has no events (the collector stamps them) and
/// must get no live sums: built now, they would miss the visits that begin
/// before it and run into it, and be reused once it is today.
fn not_begun(at: &At<'_>, day: Day) -> bool {
    day.start_ms > at.now_ms
}

fn of_dim<S: Clone>(all: &HashMap<(String, Value), S>, key: &str) -> HashMap<Value, S> {
    all.iter()
        .filter(|((dim, _), _)| dim == key)
        .map(|((_, value), s)| (value.clone(), s.clone()))
        .collect()
}

/// Where a stats request reads: its connection, its site, the live sums, the
/// request's time and the session timeout.
pub struct At<'a> {
    pub conn: &'a Connection,
    pub site: &'a Site,
    pub live: &'a Live,
    pub now_ms: i64,
    pub timeout_ms: i64,
}

/// How long after a request brought a live day up to date other requests
/// may reuse its sums although new events arrived (a dashboard's requests
/// share one update).
pub const LIVE_TTL_MS: i64 = 1_000;

/// How long a day's live state is kept without being used.
const LIVE_KEEP_MS: i64 = 60 * 60 * 1000;

type EventDay = Arc<HashMap<(String, Value), EventSums>>;
type SessionDay = Arc<HashMap<(String, Value), SessionSums>>;

struct LiveState {
    /// When a request last brought it up to date (`None`: only upkeep has).
    updated_ms: Option<i64>,
    /// When it was last used, by a request or upkeep.
    used_ms: i64,
    events: DayEvents,
    event_sums: EventDay,
    sessions: SessionDay,
}

/// One day's live state; locked while it is built or brought up to date.
type Slot = Arc<Mutex<Option<LiveState>>>;

/// The sums of days not rolled up yet (today), every dimension at once. The
/// first use builds them from the day's rows; later ones fold in only the
/// event rows added since (by id) and recount the day's sessions, and only
/// when events were added (sessions change only with them). Requests within
/// [`LIVE_TTL_MS`] of an update reuse it, so a dashboard load shares one
/// update and today's figures lag by at most a second. Realtime and
/// filtered requests read the rows themselves.
#[derive(Default)]
pub struct Live {
    slots: Mutex<HashMap<(i64, Date), Slot>>,
}

impl Live {
    /// Drops the sums of `site_id`'s days up to `day` (the rows before it
    /// were deleted, which changes its visitors carried over from the day
    /// before: retention.rs).
    pub fn forget_through(&self, site_id: i64, day: Date) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|(site, date), _| *site != site_id || *date > day);
    }

    fn get(&self, at: &At<'_>, day: Day) -> rusqlite::Result<(EventDay, SessionDay)> {
        self.refresh(at, day, true)
    }

    fn refresh(
        &self,
        at: &At<'_>,
        day: Day,
        by_request: bool,
    ) -> rusqlite::Result<(EventDay, SessionDay)> {
        let age = |t: i64| at.now_ms - t;
        // An import writing into the site (or stopped part-way) may add rows
        // to this day or the day before, which change who this day's
        // visitors carried over from the day before are: read afresh each
        // time, kept never. It writes only days before the site's own first
        // day then (none: days over when it began, so before today).
        let today = jiff::Timestamp::from_millisecond(at.now_ms)
            .map(|t| t.to_zoned_datetime(at.site.tz.clone()).date())
            .unwrap_or(day.date);
        if import_bound(at.conn, at.site.id)?.is_some_and(|b| day.date < b.unwrap_or(today)) {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.remove(&(at.site.id, day.date));
            drop(slots);
            if !by_request {
                // Upkeep's warming: nothing to keep.
                return Ok(Default::default());
            }
            let events = live_events(at, day)?;
            return Ok((Arc::new(events.sums()), Arc::new(live_sessions(at, day)?)));
        }
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.retain(|_, slot| match slot.try_lock() {
                Ok(guard) => guard
                    .as_ref()
                    .is_some_and(|s| (0..LIVE_KEEP_MS).contains(&age(s.used_ms))),
                Err(_) => true,
            });
            slots.entry((at.site.id, day.date)).or_default().clone()
        };
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = guard.as_mut()
            && age(state.used_ms) >= 0
        {
            state.used_ms = at.now_ms;
            let newest: i64 = at
                .conn
                .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")?
                .query_row([], |r| r.get(0))?;
            let recent = state
                .updated_ms
                .is_some_and(|t| (0..LIVE_TTL_MS).contains(&age(t)));
            if newest > state.events.upto && !(by_request && recent) {
                state.events.update(at.conn, at.site.id)?;
                state.event_sums = Arc::new(state.events.sums());
                state.sessions = Arc::new(live_sessions(at, day)?);
                if by_request {
                    state.updated_ms = Some(at.now_ms);
                }
            }
            return Ok((state.event_sums.clone(), state.sessions.clone()));
        }
        let events = live_events(at, day)?;
        let state = LiveState {
            updated_ms: by_request.then_some(at.now_ms),
            used_ms: at.now_ms,
            event_sums: Arc::new(events.sums()),
            events,
            sessions: Arc::new(live_sessions(at, day)?),
        };
        let out = (state.event_sums.clone(), state.sessions.clone());
        *guard = Some(state);
        Ok(out)
    }
}

/// Builds or brings up to date the live sums of `at.site`'s current day
/// (and of the day before while it is not rolled up), so the next dashboard
/// load finds them ready. Run by upkeep.
pub fn warm(at: &At<'_>) -> rusqlite::Result<()> {
    let Ok(now) = jiff::Timestamp::from_millisecond(at.now_ms) else {
        return Ok(());
    };
    let today = now.to_zoned_datetime(at.site.tz.clone()).date();
    let Some(day) = Day::new(today, &at.site.tz) else {
        return Ok(());
    };
    for day in [day.before(&at.site.tz), Some(day)].into_iter().flatten() {
        if !is_rolled(at.conn, at.site.id, day.date, Kind::Events)? {
            at.live.refresh(at, day, false)?;
        }
    }
    Ok(())
}

fn live_events(at: &At<'_>, day: Day) -> rusqlite::Result<DayEvents> {
    DayEvents::build(
        at.conn,
        at.site.id,
        day,
        day.before(&at.site.tz),
        at.timeout_ms,
        &rolled_dims([Dimension::Page, Dimension::EventName]),
    )
}

/// Whether an import is writing visits into `site_id`'s past, or stopped
/// part-way (`import::raw`), and the first day of the site's own events
/// then (`None`: it had none): the import writes only days before it.
fn import_bound(conn: &Connection, site_id: i64) -> rusqlite::Result<Option<Option<Date>>> {
    let bound: Option<Option<String>> = conn
        .prepare_cached("SELECT first_native FROM import_marks WHERE site_id = ?1")?
        .query_row([site_id], |r| r.get(0))
        .optional()?;
    Ok(bound.map(|b| b.and_then(|d| d.parse().ok())))
}

fn live_sessions(at: &At<'_>, day: Day) -> rusqlite::Result<HashMap<(String, Value), SessionSums>> {
    compute_session_day(
        at.conn,
        at.site.id,
        day,
        &rolled_dims([Dimension::EntryPage, Dimension::ExitPage]),
    )
}

/// The local days exactly covering `[start, end)`, or `None` when the span
/// does not start and end at the site's midnights.
fn days_of(site: &Site, start_ms: i64, end_ms: i64) -> Option<Vec<Day>> {
    let tz = &site.tz;
    let first = jiff::Timestamp::from_millisecond(start_ms)
        .ok()?
        .to_zoned_datetime(tz.clone())
        .date();
    let mut day = Day::new(first, tz)?;
    if day.start_ms != start_ms {
        return None;
    }
    let mut days = Vec::new();
    while day.end_ms <= end_ms {
        days.push(day);
        if day.end_ms == end_ms {
            return Some(days);
        }
        day = Day::new(day.date.tomorrow().ok()?, tz)?;
    }
    None
}

/// The rows of the rollups the filters keep, when they can say: no filter
/// (the site's totals: `(None, None)`), one `dim==value` on a visit
/// dimension (that dimension's row for the value, exactly what the filter
/// keeps of events and of visits), or one `event:name==value` when only
/// events are counted (the name's row: its visitors and events; the visits
/// that had it are not rolled up). `None`: only the raw rows can answer.
fn rolled_filter(q: &Scoped<'_>, metrics: &[Metric]) -> Option<(Option<Dimension>, Value)> {
    match q.filters {
        [] => Some((None, None)),
        // Not `event:name==(none)`: the page views, which the name's rows
        // (custom events only) do not hold.
        [f] if f.op == Op::Is
            && (SHARED_DIMS.contains(&f.dimension)
                || (f.dimension == Dimension::EventName
                    && !wants_sessions(metrics)
                    && f.single().is_some_and(|v| v != NONE_LABEL))) =>
        {
            let value = f.single()?;
            let value = (value != NONE_LABEL).then_some(value);
            Some((Some(f.dimension.clone()), value))
        }
        _ => None,
    }
}

/// Adds one day's event sums; `first` says whether the day starts the span
/// being counted (its carried-over ids are then new to the span).
fn add_events(t: &mut Totals, s: &EventSums, first: bool, sessions_as_visits: bool) {
    let (cv, cs) = if first {
        (0, 0)
    } else {
        (s.carried_visitors, s.carried_sessions)
    };
    t.visitors += s.visitors - cv;
    if sessions_as_visits {
        t.visits += s.sessions - cs;
    }
    t.pageviews += s.pageviews;
    t.events += s.events;
}

fn add_sessions(t: &mut Totals, s: &SessionSums, visitors: bool) {
    if visitors {
        t.visitors += s.visitors;
    }
    t.visits += s.visits;
    t.session_pageviews += s.pageviews;
    t.bounces += s.bounces;
    t.duration_ms += s.duration_ms;
}

/// [`super::query::by_bucket`] from rollups, or `None` when it cannot answer
/// (filters, or buckets that are not whole days).
pub fn by_bucket(
    at: &At<'_>,
    q: &Scoped<'_>,
    buckets: &[Bucket],
    metrics: &[Metric],
) -> rusqlite::Result<Option<Vec<Totals>>> {
    let Some((dim, value)) = rolled_filter(q, metrics) else {
        return Ok(None);
    };
    if buckets.is_empty() {
        return Ok(None);
    }
    let mut spans = Vec::with_capacity(buckets.len());
    for b in buckets {
        match days_of(at.site, b.start_ms, b.end_ms) {
            Some(days) => spans.push(days),
            None => return Ok(None),
        }
    }
    let mut out = vec![Totals::default(); buckets.len()];
    for (t, days) in out.iter_mut().zip(&spans) {
        for (i, day) in days.iter().enumerate() {
            if wants_events(metrics)
                && let Some(s) = event_day(at, *day, &dim)?.get(&value)
            {
                add_events(t, s, i == 0, false);
            }
            if wants_sessions(metrics)
                && let Some(s) = session_day(at, *day, &dim)?.get(&value)
            {
                add_sessions(t, s, false);
            }
        }
    }
    Ok(Some(out))
}

/// [`super::query::breakdown`] from rollups, or `None` when it cannot answer
/// (filters other than one on this very dimension, event properties, a
/// span that is not whole days).
pub fn breakdown(
    at: &At<'_>,
    q: &Scoped<'_>,
    dim: &Dimension,
    metrics: &[Metric],
) -> rusqlite::Result<Option<Vec<(Value, Totals)>>> {
    // A region's or city's name alone (Plausible's `visit:region`,
    // `visit:city`): the rows in their country, renamed, unless two share a
    // name (a visitor in both would count twice): then from the raw rows.
    if matches!(dim, Dimension::RegionName | Dimension::CityName) {
        let Some(regions) = breakdown(at, q, &Dimension::Region, metrics)? else {
            return Ok(None);
        };
        if *dim == Dimension::RegionName {
            return Ok(by_name(regions, |v| {
                v.split_once(' ').map(|(_, name)| name.to_string())
            }));
        }
        let Some(cities) = breakdown(at, q, &Dimension::City, metrics)? else {
            return Ok(None);
        };
        let known: HashSet<String> = regions.into_iter().filter_map(|(v, _)| v).collect();
        return Ok(by_name(cities, |v| city_name(v, &known)));
    }
    // Filtered by `dim==v` itself: the breakdown is the row of `v`.
    let only = match rolled_filter(q, metrics) {
        Some((None, _)) => None,
        Some((Some(f), v)) if f == *dim => Some(v),
        _ => return Ok(None),
    };
    if !holds(dim) {
        return Ok(None);
    }
    let Some(days) = days_of(at.site, q.start_ms, q.end_ms) else {
        return Ok(None);
    };
    let scope = dim.scope();
    let event_side = match scope {
        Scope::Event => true,
        Scope::Session => false,
        Scope::Shared(_) => wants_events(metrics),
    };
    let session_side = match scope {
        Scope::Event => false,
        Scope::Session => true,
        Scope::Shared(_) => wants_sessions(metrics),
    };
    let dim = Some(dim.clone());
    let mut groups: HashMap<Value, Totals> = HashMap::new();
    for (i, day) in days.iter().enumerate() {
        if event_side {
            for (value, s) in event_day(at, *day, &dim)? {
                let t = groups.entry(value).or_default();
                add_events(t, &s, i == 0, scope == Scope::Event);
            }
        }
        if session_side {
            for (value, s) in session_day(at, *day, &dim)? {
                let t = groups.entry(value).or_default();
                add_sessions(t, &s, scope == Scope::Session);
            }
        }
    }
    Ok(Some(
        groups
            .into_iter()
            .filter(|(value, _)| only.as_ref().is_none_or(|v| v == value))
            .collect(),
    ))
}

/// `rows` with each value renamed by `name` (`None`: the value cannot be
/// read: nothing), or nothing when two values get one name.
fn by_name(
    rows: Vec<(Value, Totals)>,
    name: impl Fn(&str) -> Option<String>,
) -> Option<Vec<(Value, Totals)>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for (value, totals) in rows {
        let value = match value {
            Some(v) => Some(name(&v)?),
            None => None,
        };
        if !seen.insert(value.clone()) {
            return None;
        }
        out.push((value, totals));
    }
    Some(out)
}

/// The city's name of a city row (`US Portland, Oregon`: `Portland`), its
/// region known by `regions` (the range's region rows, `US Oregon`): a
/// city name may hold `, ` too. `None` when it is not clear.
fn city_name(value: &str, regions: &HashSet<String>) -> Option<String> {
    let (country, rest) = value.split_once(' ')?;
    let mut found = rest
        .match_indices(", ")
        .filter(|(at, sep)| regions.contains(&format!("{country} {}", &rest[at + sep.len()..])))
        .map(|(at, _)| rest[..at].to_string());
    let name = found.next();
    if found.next().is_some() {
        return None;
    }
    match name {
        Some(name) => Some(name),
        // No region read: a city with none, unless its name has a comma
        // (whose region row may be missing: an import's unknown code).
        None if rest.contains(", ") => None,
        None => Some(rest.to_string()),
    }
}

/// One day's rollups, computed and not yet stored.
pub struct Pending {
    pub site_id: i64,
    pub day: Date,
    events: Option<HashMap<(String, Value), EventSums>>,
    sessions: Option<HashMap<(String, Value), SessionSums>>,
    /// [`backlog_seq`] before the sums were computed ([`due`]'s): an import
    /// that wrote the site's visits since may have written into the day, and
    /// [`save`] then leaves it for the next round.
    basis: Option<i64>,
}

impl Pending {
    /// A day's sums from elsewhere (an import), keyed by dimension name
    /// (`""` for the site's totals) and value; both sides are marked rolled.
    pub fn new(
        site_id: i64,
        day: Date,
        events: HashMap<(String, Value), EventSums>,
        sessions: HashMap<(String, Value), SessionSums>,
    ) -> Self {
        Self {
            site_id,
            day,
            events: Some(events),
            sessions: Some(sessions),
            basis: None,
        }
    }
}

/// How many visits imports have queued (`visit_backlog`'s high-water
/// mark): it grows with every transaction of an import of raw rows, and
/// those queued after it are read by their place (`seq`).
fn backlog_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'visit_backlog'), 0)",
    )?
    .query_row([], |r| r.get(0))
}

/// The rollups `site` is due at `now_ms`, at most `max_days` days of them,
/// computed from the raw rows on `conn` (a reader). Store them with [`save`].
pub fn due(
    conn: &Connection,
    site: &Site,
    now_ms: i64,
    session_timeout_ms: i64,
    max_days: usize,
    full: bool,
    kept_from_ms: Option<i64>,
) -> rusqlite::Result<Vec<Pending>> {
    // Read first: the reads below are each their own snapshot.
    let basis = backlog_seq(conn)?;
    let Some(first_ms) = super::query::first_event_ms(conn, site.id)? else {
        return Ok(Vec::new());
    };
    // An import is writing visits into the site's past: not yet.
    if import_bound(conn, site.id)?.is_some() {
        return Ok(Vec::new());
    }
    // Days past the retention period are about to be deleted: not rolled.
    let first_ms = first_ms.max(kept_from_ms.unwrap_or(i64::MIN));
    let Ok(first) = jiff::Timestamp::from_millisecond(first_ms) else {
        return Ok(Vec::new());
    };
    let mut date = first.to_zoned_datetime(site.tz.clone()).date();
    // Days are rolled in order; a round resumes a few days before the last
    // one rolled (a day whose sessions were still growing is retried)
    // instead of walking the site's whole history; a `full` round walks it
    // all and catches any day left behind (meanwhile such a day is still
    // answered exactly, computed on the fly).
    let last: Option<String> = conn
        .prepare_cached(
            "SELECT MIN(last) FROM (SELECT MAX(day) AS last FROM rollup_days
             WHERE site_id = ?1 GROUP BY kind HAVING COUNT(*) > 0)",
        )?
        .query_row([site.id], |r| r.get(0))?;
    if !full
        && let Some(resume) = last
            .and_then(|d| d.parse::<Date>().ok())
            .and_then(|d| d.checked_sub(jiff::ToSpan::days(3)).ok())
        && resume > date
    {
        date = resume;
    }
    let mut out = Vec::new();
    while out.len() < max_days {
        let Some(day) = Day::new(date, &site.tz) else {
            break;
        };
        if day.end_ms + GRACE_MS > now_ms {
            break;
        }
        let events = if is_rolled(conn, site.id, date, Kind::Events)? {
            None
        } else {
            let before = day.before(&site.tz);
            Some(compute_event_day(
                conn,
                site.id,
                day,
                before,
                session_timeout_ms,
                &rolled_dims([Dimension::Page, Dimension::EventName]),
            )?)
        };
        // Sessions started on the day are final once none can grow.
        let sessions = if is_rolled(conn, site.id, date, Kind::Sessions)? {
            None
        } else {
            let growing: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM sessions WHERE site_id = ?1
                     AND started_ms >= ?2 AND started_ms < ?3 AND last_ms >= ?4",
                )?
                .query_row(
                    params![
                        site.id,
                        day.start_ms,
                        day.end_ms,
                        now_ms - session_timeout_ms - GRACE_MS
                    ],
                    |r| r.get(0),
                )?;
            (growing == 0)
                .then(|| {
                    compute_session_day(
                        conn,
                        site.id,
                        day,
                        &rolled_dims([Dimension::EntryPage, Dimension::ExitPage]),
                    )
                })
                .transpose()?
        };
        if events.is_some() || sessions.is_some() {
            out.push(Pending {
                site_id: site.id,
                day: date,
                events,
                sessions,
                basis: Some(basis),
            });
        }
        let Ok(next) = date.tomorrow() else {
            break;
        };
        date = next;
    }
    Ok(out)
}

/// Writes computed rollups (on the writer's connection), each day in one
/// transaction with its `rollup_days` mark.
pub fn save(conn: &mut Connection, pending: &[Pending]) -> rusqlite::Result<usize> {
    save_replacing(conn, pending, &HashSet::new())
}

/// [`save`], the days of `replace` (rolled empty: [`is_rolled_empty`])
/// forgotten first in the same transaction.
pub fn save_replacing(
    conn: &mut Connection,
    pending: &[Pending],
    replace: &HashSet<Date>,
) -> rusqlite::Result<usize> {
    let mut written = 0;
    for p in pending {
        // Immediate: it reads (rolled meanwhile?) before it writes, beside
        // another writer (an import, `serve`).
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // An import wrote the site's visits since the sums were computed
        // (perhaps into this day, the site not marked then): computed again
        // next round.
        if let Some(basis) = p.basis
            && tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM visit_backlog b
                         JOIN sessions s ON s.id = b.session_id
                     WHERE b.seq > ?1 AND s.site_id = ?2)",
                )?
                .query_row(params![basis, p.site_id], |r| r.get::<_, bool>(0))?
        {
            continue;
        }
        if replace.contains(&p.day) && is_rolled_empty(&tx, p.site_id, p.day)? {
            forget_day(&tx, p.site_id, p.day)?;
        }
        let day = p.day.to_string();
        // Rolled meanwhile by another writer (`serve`'s job and an import
        // both roll days): a day's sums are written once.
        let rolled = |kind: Kind| -> rusqlite::Result<bool> {
            Ok(tx
                .prepare_cached(
                    "SELECT 1 FROM rollup_days WHERE site_id = ?1 AND day = ?2 AND kind = ?3",
                )?
                .query_row(params![p.site_id, day, kind.as_str()], |_| Ok(()))
                .optional()?
                .is_some())
        };
        let events = match &p.events {
            Some(rows) if !rolled(Kind::Events)? => Some(rows),
            _ => None,
        };
        let sessions = match &p.sessions {
            Some(rows) if !rolled(Kind::Sessions)? => Some(rows),
            _ => None,
        };
        if let Some(rows) = events {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO rollup_events (site_id, day, dim, value, visitors, carried_visitors,
                     sessions, carried_sessions, pageviews, events)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for ((dim, value), s) in rows {
                stmt.execute(params![
                    p.site_id,
                    day,
                    dim,
                    value,
                    s.visitors,
                    s.carried_visitors,
                    s.sessions,
                    s.carried_sessions,
                    s.pageviews,
                    s.events
                ])?;
            }
            tx.execute(
                "INSERT OR IGNORE INTO rollup_days (site_id, day, kind) VALUES (?1, ?2, 'events')",
                params![p.site_id, day],
            )?;
            written += 1;
        }
        if let Some(rows) = sessions {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO rollup_sessions (site_id, day, dim, value, visitors, visits,
                     pageviews, bounces, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for ((dim, value), s) in rows {
                stmt.execute(params![
                    p.site_id,
                    day,
                    dim,
                    value,
                    s.visitors,
                    s.visits,
                    s.pageviews,
                    s.bounces,
                    s.duration_ms
                ])?;
            }
            tx.execute(
                "INSERT OR IGNORE INTO rollup_days (site_id, day, kind) VALUES (?1, ?2, 'sessions')",
                params![p.site_id, day],
            )?;
            written += 1;
        }
        tx.commit()?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_city_row_is_named_without_its_country_and_region() {
        let regions: HashSet<String> = [
            "US Oregon",
            "US Maine",
            "DE Bavaria",
            "XX A, B",
            "YY A, B",
            "YY B",
        ]
        .map(String::from)
        .into();
        for (row, name) in [
            ("US Portland, Oregon", Some("Portland")),
            ("DE Munich", Some("Munich")),
            // A comma in the city's own name.
            ("US Washington, D.C., Maine", Some("Washington, D.C.")),
            // A comma and no region known: not clear.
            ("US Washington, D.C.", None),
            // A region with a comma in its name.
            ("XX Town, A, B", Some("Town")),
            // Two readings: not clear.
            ("YY Town, A, B", None),
            ("nospace", None),
        ] {
            assert_eq!(city_name(row, &regions).as_deref(), name, "{row}");
        }
    }

    #[test]
    fn rows_renamed_alike_are_not_merged() {
        let rows = |values: &[&str]| {
            values
                .iter()
                .map(|v| (Some(v.to_string()), Totals::default()))
                .chain([(None, Totals::default())])
                .collect::<Vec<_>>()
        };
        let region = |v: &str| v.split_once(' ').map(|(_, n)| n.to_string());
        let named = by_name(rows(&["DE Bavaria", "US Georgia"]), region).unwrap();
        let values: Vec<_> = named.into_iter().map(|(v, _)| v).collect();
        assert_eq!(
            values,
            [Some("Bavaria".into()), Some("Georgia".into()), None]
        );
        assert!(by_name(rows(&["US Georgia", "GE Georgia"]), region).is_none());
    }
}
