//! SQL for the stats API. Every value that comes from a request is a bound
//! parameter; the only text spliced into SQL is column names chosen by
//! matching on [`Dimension`] (never taken from the request).
//!
//! Event metrics (`visitors`, `pageviews`, `events`) count the `events` rows
//! whose time is in the range. Session metrics (`visits`, `views_per_visit`,
//! `bounce_rate`, `visit_duration`) count the `sessions` that *started* in
//! the range.

use std::collections::HashMap;

use rusqlite::Connection;
use rusqlite::types::Value;

use super::params::{Bucket, Dimension, Filter, Metric, Op, Scope, wants_events, wants_sessions};

/// Raw sums from which every metric is derived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Distinct (daily) visitor ids among the events.
    pub visitors: i64,
    pub pageviews: i64,
    /// Events of every kind: pageviews plus custom events.
    pub events: i64,
    /// Sessions.
    pub visits: i64,
    /// Pageviews of those sessions (for views per visit).
    pub session_pageviews: i64,
    /// Sessions with at most one pageview and no interactive event.
    pub bounces: i64,
    /// Sum of (last event − first event) over those sessions, ms.
    pub duration_ms: i64,
}

/// What every query shares.
pub struct Scoped<'a> {
    pub site_id: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub filters: &'a [Filter],
}

#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Value>,
}

impl Sql {
    fn bind(&mut self, v: impl Into<Value>) -> String {
        self.args.push(v.into());
        format!("?{}", self.args.len())
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
}

/// JSON path for a property key (keys are checked: no `"` or `\`).
fn prop_path(key: &str) -> String {
    format!("$.\"{key}\"")
}

/// A property's value as the stats API shows it, from its JSON type and
/// its SQL value: as sent, `true`/`false` (SQLite's json_extract says 1/0)
/// and a whole number without `.0` (rows stored before core wrote it so).
/// Also what the ClickHouse shipper sends there (`clickhouse::ship`), so
/// both stores show a value alike.
pub(crate) fn prop_text(json_type: &str, v: &str) -> String {
    format!(
        "CASE {json_type} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
         WHEN 'real' THEN CASE WHEN {v} = CAST({v} AS INTEGER) AND abs({v}) < 9007199254740992 \
         THEN CAST(CAST({v} AS INTEGER) AS TEXT) ELSE CAST({v} AS TEXT) END \
         ELSE CAST({v} AS TEXT) END"
    )
}

/// A region in its country (`DE Bavaria`), from the columns prefixed
/// `prefix` (`e.`, or nothing): the stats' values and the rollups' alike.
pub(crate) fn region_sql(prefix: &str) -> String {
    format!(
        "CASE WHEN {prefix}region IS NULL OR {prefix}country IS NULL THEN NULL \
         ELSE {prefix}country || ' ' || {prefix}region END"
    )
}

/// A city in its country and region (`US Portland, Oregon`), as
/// [`region_sql`].
pub(crate) fn city_sql(prefix: &str) -> String {
    format!(
        "CASE WHEN {prefix}city IS NULL OR {prefix}country IS NULL THEN NULL \
         ELSE {prefix}country || ' ' || {prefix}city || coalesce(', ' || {prefix}region, '') END"
    )
}

/// The column (or expression) of `dim` in the table aliased `alias`.
fn column(dim: &Dimension, alias: char, sql: &mut Sql) -> String {
    match dim {
        Dimension::Page => format!("{alias}.path"),
        Dimension::Hostname => format!("{alias}.hostname"),
        Dimension::EventName => format!("{alias}.name"),
        Dimension::EventProp(key) => {
            let p = sql.bind(prop_path(key));
            prop_text(
                &format!("json_type({alias}.props, {p})"),
                &format!("json_extract({alias}.props, {p})"),
            )
        }
        // The key of the row of `json_each({alias}.props) AS j` (joined by
        // the breakdown that groups by it).
        Dimension::EventPropKeys => "j.key".to_string(),
        Dimension::EntryPage => format!("{alias}.entry_path"),
        Dimension::ExitPage => format!("{alias}.exit_path"),
        Dimension::BrowserVersion => format!(
            "CASE WHEN {alias}.browser_major IS NULL THEN NULL \
             ELSE {alias}.browser || ' ' || {alias}.browser_major END"
        ),
        Dimension::OsVersion => format!(
            "CASE WHEN {alias}.os_version IS NULL THEN NULL \
             ELSE {alias}.os || ' ' || {alias}.os_version END"
        ),
        // Names in their country (and a city in its region): two cities
        // called Portland are two rows.
        Dimension::Region => region_sql(&format!("{alias}.")),
        Dimension::City => city_sql(&format!("{alias}.")),
        other => match other.scope() {
            Scope::Shared(col) => format!("{alias}.{col}"),
            // Unreachable: every event and session dimension is matched above.
            Scope::Event | Scope::Session => "NULL".to_string(),
        },
    }
}

/// `expr` kept by filter `f`: any of its values (`==`, `~`), none of them
/// (`!=`; a value not set passes unless `(none)` is one of them).
fn condition(expr: &str, f: &Filter, sql: &mut Sql) -> String {
    let m = f.matchers();
    // Each true when `expr` is set and matches: the exact values, then
    // each pattern (GLOB: case-sensitive, as `=`).
    let mut alts = Vec::new();
    if f.op == Op::Contains {
        for v in &m.exact {
            alts.push(format!(
                "instr(lower({expr}), lower({})) > 0",
                sql.bind(v.clone())
            ));
        }
        return format!("({})", alts.join(" OR "));
    }
    if !m.exact.is_empty() {
        let binds: Vec<String> = m.exact.iter().map(|v| sql.bind(v.clone())).collect();
        alts.push(format!("{expr} IN ({})", binds.join(", ")));
    }
    for pieces in &m.patterns {
        alts.push(format!("{expr} GLOB {}", sql.bind(glob(pieces))));
    }
    let any = alts.join(" OR ");
    match (f.op, m.none, alts.is_empty()) {
        (Op::Is, true, true) => format!("({expr} IS NULL)"),
        (Op::Is, true, false) => format!("({expr} IS NULL OR {any})"),
        (Op::IsNot, true, true) => format!("({expr} IS NOT NULL)"),
        (Op::IsNot, true, false) => format!("({expr} IS NOT NULL AND NOT ({any}))"),
        (Op::IsNot, false, _) => format!("({expr} IS NULL OR NOT ({any}))"),
        _ => format!("({any})"),
    }
}

/// A wildcard pattern's pieces as a SQLite GLOB: `*` between them, and
/// GLOB's own `*`, `?` and `[` in them matched as themselves.
fn glob(pieces: &[String]) -> String {
    let escaped: Vec<String> = pieces
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| match c {
                    '*' => "[*]".to_string(),
                    '?' => "[?]".to_string(),
                    '[' => "[[]".to_string(),
                    c => c.to_string(),
                })
                .collect()
        })
        .collect();
    escaped.join("*")
}

/// ` AND …` for each filter, on the events table aliased `e`.
fn event_filters(q: &Scoped<'_>, sql: &mut Sql) {
    for f in q.filters {
        match f.dimension.scope() {
            Scope::Event | Scope::Shared(_) => {
                let col = column(&f.dimension, 'e', sql);
                let c = condition(&col, f, sql);
                sql.push(&format!(" AND {c}"));
            }
            Scope::Session => {
                let site = sql.bind(q.site_id);
                let col = column(&f.dimension, 's', sql);
                let c = condition(&col, f, sql);
                sql.push(&format!(
                    " AND e.session_id IN (SELECT s.id FROM sessions s WHERE s.site_id = {site} AND {c})"
                ));
            }
        }
    }
}

/// Engagement of one page: summed per visit of it (session and page), then
/// over those visits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Engagement {
    /// Visits of the page with engagement.
    pub visits: i64,
    /// Engaged milliseconds over those visits.
    pub engaged_ms: i64,
    /// Visits with a scroll depth, and the sum of each one's deepest.
    pub scrolled: i64,
    pub depth_sum: i64,
}

/// Engagement per page (path) of the site in the range. Filters on the page
/// and hostname apply to the engagement rows; filters on the visit (source,
/// country, entry page, …) to their visits. Event name and property filters
/// do not apply (the caller refuses them).
pub fn engagement_by_page(
    conn: &Connection,
    q: &Scoped<'_>,
) -> rusqlite::Result<HashMap<String, Engagement>> {
    let mut sql = Sql::default();
    let (engagements, range) = scan(conn, Table::Engagements, 'g', q, &mut sql)?;
    sql.push(&format!(
        "SELECT path, COUNT(*), SUM(ms), COUNT(depth), COALESCE(SUM(depth), 0) FROM \
         (SELECT g.path AS path, SUM(g.engaged_ms) AS ms, MAX(g.scroll_depth) AS depth \
         FROM {engagements} WHERE {range}"
    ));
    for f in q.filters {
        match f.dimension.scope() {
            Scope::Event => {
                let col = column(&f.dimension, 'g', &mut sql);
                let c = condition(&col, f, &mut sql);
                sql.push(&format!(" AND {c}"));
            }
            Scope::Session | Scope::Shared(_) => {
                let site = sql.bind(q.site_id);
                let col = column(&f.dimension, 's', &mut sql);
                let c = condition(&col, f, &mut sql);
                sql.push(&format!(
                    " AND g.session_id IN (SELECT s.id FROM sessions s WHERE s.site_id = {site} AND {c})"
                ));
            }
        }
    }
    sql.push(" GROUP BY g.session_id, g.path) GROUP BY path");
    let mut stmt = conn.prepare(&sql.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(sql.args.iter()), |r| {
        Ok((
            r.get::<_, String>(0)?,
            Engagement {
                visits: r.get(1)?,
                engaged_ms: r.get(2)?,
                scrolled: r.get(3)?,
                depth_sum: r.get(4)?,
            },
        ))
    })?;
    rows.collect()
}

/// ` AND …` for each filter, on the sessions table aliased `s`. An event
/// dimension keeps the sessions with a matching event, for every operator
/// (`page!=/pricing`: visits with a page view other than /pricing), so the
/// visit metrics count the visits of the events the event metrics count.
fn session_filters(q: &Scoped<'_>, sql: &mut Sql) {
    for f in q.filters {
        match f.dimension.scope() {
            Scope::Session | Scope::Shared(_) => {
                let col = column(&f.dimension, 's', sql);
                let c = condition(&col, f, sql);
                sql.push(&format!(" AND {c}"));
            }
            Scope::Event => {
                let site = sql.bind(q.site_id);
                let start = sql.bind(q.start_ms);
                let col = column(&f.dimension, 'e', sql);
                let c = condition(&col, f, sql);
                sql.push(&format!(
                    " AND s.id IN (SELECT e.session_id FROM events e \
                     WHERE e.site_id = {site} AND e.ts_ms >= {start} AND {c})"
                ));
            }
        }
    }
}

/// How a query reads a site's rows of a time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Through the (site, time) index: one table lookup per row.
    Index,
    /// As one sequential run of the table between the first and the last
    /// rowid of those rows (the other rows in it are skipped by the same
    /// site and time conditions).
    Rowids(i64, i64),
}

/// Picks the cheaper [`Read`] for the rows of `table` (`events` and
/// `engagements` by `ts_ms`, `sessions` by `started_ms`) of the site in `[start_ms, end_ms)`. The
/// collector appends rows in time order, so a range's rows are mostly a
/// contiguous run of rowids (shared with the other sites of the same
/// moments); reading that run in order costs about an eighth of a lookup per
/// row (BENCHMARKS.md), so it wins while the site's rows are at least an
/// eighth of the run. Finding out is one pass over the index range, with no
/// table access.
fn plan(conn: &Connection, table: Table, q: &Scoped<'_>) -> rusqlite::Result<Read> {
    let (rows, first, last): (i64, Option<i64>, Option<i64>) = conn.query_row(
        &format!(
            "SELECT COUNT(*), MIN(rowid), MAX(rowid) FROM {t} \
             WHERE site_id = ?1 AND {c} >= ?2 AND {c} < ?3",
            t = table.name(),
            c = table.time()
        ),
        [q.site_id, q.start_ms, q.end_ms],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let (Some(a), Some(b)) = (first, last) else {
        return Ok(Read::Index);
    };
    // The run's length: event ids are dense (SQLite's next rowid), so the
    // ids' span; session ids are sparse (start time and a sequence), so
    // counted (a walk of the run's keys, no record read).
    let run = match table {
        // (Engagement ids are SQLite's next rowid too.)
        Table::Events | Table::Engagements => b.saturating_sub(a).saturating_add(1),
        Table::Sessions => conn.query_row(
            "SELECT COUNT(*) FROM sessions WHERE rowid BETWEEN ?1 AND ?2",
            [a, b],
            |r| r.get(0),
        )?,
    };
    Ok(if rows.saturating_mul(8) >= run {
        Read::Rowids(a, b)
    } else {
        Read::Index
    })
}

#[derive(Debug, Clone, Copy)]
enum Table {
    Events,
    Sessions,
    Engagements,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Sessions => "sessions",
            Table::Engagements => "engagements",
        }
    }

    fn time(self) -> &'static str {
        match self {
            Table::Events | Table::Engagements => "ts_ms",
            Table::Sessions => "started_ms",
        }
    }
}

/// `FROM <table> AS <alias> …` and the rowid condition (with its ` AND `)
/// for `read`.
fn from(table: Table, alias: char, read: Read, sql: &mut Sql) -> (String, String) {
    match read {
        Read::Index => (format!("{} AS {alias}", table.name()), String::new()),
        Read::Rowids(a, b) => {
            let (a, b) = (sql.bind(a), sql.bind(b));
            (
                format!("{} AS {alias} NOT INDEXED", table.name()),
                format!("{alias}.rowid BETWEEN {a} AND {b} AND "),
            )
        }
    }
}

/// The rows of `table` (aliased `alias`) of the site in `q`'s range, read
/// as [`plan`] picks: what to select `FROM`, and the `WHERE` conditions.
fn scan(
    conn: &Connection,
    table: Table,
    alias: char,
    q: &Scoped<'_>,
    sql: &mut Sql,
) -> rusqlite::Result<(String, String)> {
    let read = plan(conn, table, q)?;
    Ok(scan_read(table, alias, read, q, sql))
}

/// [`scan`] with the read already planned.
fn scan_read(
    table: Table,
    alias: char,
    read: Read,
    q: &Scoped<'_>,
    sql: &mut Sql,
) -> (String, String) {
    let (rows, rowids) = from(table, alias, read, sql);
    let site = sql.bind(q.site_id);
    let start = sql.bind(q.start_ms);
    let end = sql.bind(q.end_ms);
    let t = table.time();
    (
        rows,
        format!(
            "{rowids}{alias}.site_id = {site} AND {alias}.{t} >= {start} AND {alias}.{t} < {end}"
        ),
    )
}

fn buckets_json(buckets: &[Bucket]) -> String {
    let pairs: Vec<[i64; 2]> = buckets.iter().map(|b| [b.start_ms, b.end_ms]).collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_string())
}

/// Totals per bucket (same order as `buckets`; empty buckets are zero).
/// `q.start_ms`/`q.end_ms` must span the buckets.
pub fn by_bucket(
    conn: &Connection,
    q: &Scoped<'_>,
    buckets: &[Bucket],
    metrics: &[Metric],
) -> rusqlite::Result<Vec<Totals>> {
    let mut out = vec![Totals::default(); buckets.len()];
    if buckets.is_empty() {
        return Ok(out);
    }
    let json = buckets_json(buckets);
    // One bucket (an aggregate) may read its rows as a run of rowids; many
    // buckets each use the index (a run would meet every bucket per row).
    let read = |table| {
        if buckets.len() == 1 {
            plan(conn, table, q)
        } else {
            Ok(Read::Index)
        }
    };
    if wants_events(metrics) {
        let read = read(Table::Events)?;
        let mut sql = Sql::default();
        let b = sql.bind(json.clone());
        let (events, rowids) = from(Table::Events, 'e', read, &mut sql);
        let site = sql.bind(q.site_id);
        sql.push(&format!(
            "SELECT b.key, COUNT(DISTINCT e.visitor_id), \
             COALESCE(SUM(e.kind = 'pageview'), 0), COUNT(*) \
             FROM json_each({b}) AS b CROSS JOIN {events} \
             WHERE {rowids}e.site_id = {site} AND e.ts_ms >= b.value ->> 0 AND e.ts_ms < b.value ->> 1"
        ));
        event_filters(q, &mut sql);
        sql.push(" GROUP BY b.key");
        let mut stmt = conn.prepare(&sql.text)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(sql.args.iter()))?;
        while let Some(r) = rows.next()? {
            let i: usize = r.get::<_, i64>(0)?.try_into().unwrap_or(usize::MAX);
            if let Some(t) = out.get_mut(i) {
                t.visitors = r.get(1)?;
                t.pageviews = r.get(2)?;
                t.events = r.get(3)?;
            }
        }
    }
    if wants_sessions(metrics) {
        let read = read(Table::Sessions)?;
        let mut sql = Sql::default();
        let b = sql.bind(json);
        let (sessions, rowids) = from(Table::Sessions, 's', read, &mut sql);
        let site = sql.bind(q.site_id);
        sql.push(&format!(
            "SELECT b.key, COUNT(*), COALESCE(SUM(s.pageviews), 0), \
             COALESCE(SUM(s.pageviews <= 1 AND s.interactions = 0), 0), \
             COALESCE(SUM(s.last_ms - s.started_ms), 0) \
             FROM json_each({b}) AS b CROSS JOIN {sessions} \
             WHERE {rowids}s.site_id = {site} AND s.started_ms >= b.value ->> 0 AND s.started_ms < b.value ->> 1"
        ));
        session_filters(q, &mut sql);
        sql.push(" GROUP BY b.key");
        let mut stmt = conn.prepare(&sql.text)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(sql.args.iter()))?;
        while let Some(r) = rows.next()? {
            let i: usize = r.get::<_, i64>(0)?.try_into().unwrap_or(usize::MAX);
            if let Some(t) = out.get_mut(i) {
                t.visits = r.get(1)?;
                t.session_pageviews = r.get(2)?;
                t.bounces = r.get(3)?;
                t.duration_ms = r.get(4)?;
            }
        }
    }
    Ok(out)
}

/// Which metrics a breakdown by `dim` can compute; `Err` names one that it
/// cannot.
pub fn breakdown_supports(dim: &Dimension, metrics: &[Metric]) -> Result<(), Metric> {
    let ok = |m: Metric| match dim.scope() {
        // Per page: only a breakdown by page.
        _ if m.is_engagement() => *dim == Dimension::Page,
        Scope::Shared(_) => true,
        // Keys: how many events (of which visitors and visits) carry each.
        Scope::Event if *dim == Dimension::EventPropKeys => matches!(
            m,
            Metric::Visitors
                | Metric::Visits
                | Metric::Pageviews
                | Metric::Events
                | Metric::ConversionRate
        ),
        Scope::Event => matches!(
            m,
            Metric::Visitors
                | Metric::Visits
                | Metric::Pageviews
                | Metric::Events
                | Metric::Revenue
                | Metric::ConversionRate
        ),
        Scope::Session => m != Metric::Pageviews && m != Metric::Events,
    };
    match metrics.iter().find(|m| !ok(**m)) {
        Some(m) => Err(*m),
        None => Ok(()),
    }
}

/// Which rows a breakdown by `dim` reads: (events, sessions).
pub(crate) fn breakdown_sides(dim: &Dimension, metrics: &[Metric]) -> (bool, bool) {
    match dim.scope() {
        Scope::Event => (true, false),
        Scope::Session => (false, true),
        Scope::Shared(_) => (wants_events(metrics), wants_sessions(metrics)),
    }
}

/// Whether a filter keeps only events of some name (`event:name==X` or
/// `event:name~X`): then the events counted are those, not pageviews.
pub(crate) fn goal_filtered(filters: &[Filter]) -> bool {
    filters
        .iter()
        .any(|f| f.dimension == Dimension::EventName && f.op != Op::IsNot && f.matchers().any_set())
}

/// Totals per value of `dim` (`None`: not set), in no particular order.
pub fn breakdown(
    conn: &Connection,
    q: &Scoped<'_>,
    dim: &Dimension,
    metrics: &[Metric],
) -> rusqlite::Result<Vec<(Option<String>, Totals)>> {
    let mut groups: HashMap<Option<String>, Totals> = HashMap::new();
    let scope = dim.scope();
    let (event_side, session_side) = breakdown_sides(dim, metrics);
    if event_side {
        let mut sql = Sql::default();
        let col = column(dim, 'e', &mut sql);
        let (events, range) = scan(conn, Table::Events, 'e', q, &mut sql)?;
        sql.push(&format!(
            "SELECT {col} AS v, COUNT(DISTINCT e.visitor_id), COUNT(DISTINCT e.session_id), \
             COALESCE(SUM(e.kind = 'pageview'), 0), COUNT(*) \
             FROM {events}{keys} WHERE {range}",
            keys = if *dim == Dimension::EventPropKeys {
                ", json_each(e.props) AS j"
            } else {
                ""
            },
        ));
        match dim {
            // Pages are counted by their views; with a filter on an event
            // name, by the events of that name (the pages where a goal was
            // reached, as Plausible shows them).
            Dimension::Page if !goal_filtered(q.filters) => sql.push(" AND e.kind = 'pageview'"),
            Dimension::EventName => sql.push(" AND e.kind = 'event'"),
            Dimension::EventProp(_) => sql.push(" AND v IS NOT NULL"),
            _ => {}
        }
        event_filters(q, &mut sql);
        sql.push(" GROUP BY v");
        let mut stmt = conn.prepare(&sql.text)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(sql.args.iter()))?;
        while let Some(r) = rows.next()? {
            let value: Option<String> = r.get(0)?;
            // Keys a filter or `event:props:<key>` cannot name (the ingest
            // takes a few more, such as `a==b`) are not listed.
            if *dim == Dimension::EventPropKeys
                && !value.as_deref().is_some_and(super::params::valid_prop_key)
            {
                continue;
            }
            let t = groups.entry(value).or_default();
            t.visitors = r.get(1)?;
            if scope == Scope::Event {
                // Sessions with such an event.
                t.visits = r.get(2)?;
            }
            t.pageviews = r.get(3)?;
            t.events = r.get(4)?;
        }
    }
    if session_side {
        let mut sql = Sql::default();
        let col = column(dim, 's', &mut sql);
        let (sessions, range) = scan(conn, Table::Sessions, 's', q, &mut sql)?;
        sql.push(&format!(
            "SELECT {col} AS v, COUNT(DISTINCT s.visitor_id), COUNT(*), \
             COALESCE(SUM(s.pageviews), 0), \
             COALESCE(SUM(s.pageviews <= 1 AND s.interactions = 0), 0), \
             COALESCE(SUM(s.last_ms - s.started_ms), 0) \
             FROM {sessions} WHERE {range}"
        ));
        session_filters(q, &mut sql);
        sql.push(" GROUP BY v");
        let mut stmt = conn.prepare(&sql.text)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(sql.args.iter()))?;
        while let Some(r) = rows.next()? {
            let t = groups.entry(r.get(0)?).or_default();
            if scope == Scope::Session {
                t.visitors = r.get(1)?;
            }
            t.visits = r.get(2)?;
            t.session_pageviews = r.get(3)?;
            t.bounces = r.get(4)?;
            t.duration_ms = r.get(5)?;
        }
    }
    Ok(groups.into_iter().collect())
}

/// One currency's revenue: how many events carried an amount in it, and
/// their sum (SQLite sums REALs with Kahan-Babuska-Neumaier compensation).
#[derive(Debug, Clone, PartialEq)]
pub struct CurrencySum {
    pub currency: String,
    pub events: i64,
    pub total: f64,
}

/// The revenue rows of the scope, through the partial index on them (a
/// shop's few purchases among many pageviews; `INDEXED BY` so the planner
/// never walks every event of the range instead).
const REVENUE_FROM: &str = "events AS e INDEXED BY events_revenue";

fn currency_sums(
    conn: &Connection,
    sql: &Sql,
    mut add: impl FnMut(&rusqlite::Row<'_>, CurrencySum) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.args.iter()))?;
    while let Some(r) = rows.next()? {
        let sum = CurrencySum {
            currency: r.get(1)?,
            events: r.get(2)?,
            total: r.get(3)?,
        };
        add(r, sum)?;
    }
    Ok(())
}

/// Revenue per bucket (same order as `buckets`), currencies in
/// alphabetical order; an empty list where none was recorded.
pub fn revenue_by_bucket(
    conn: &Connection,
    q: &Scoped<'_>,
    buckets: &[Bucket],
) -> rusqlite::Result<Vec<Vec<CurrencySum>>> {
    let mut out = vec![Vec::new(); buckets.len()];
    if buckets.is_empty() {
        return Ok(out);
    }
    let mut sql = Sql::default();
    let b = sql.bind(buckets_json(buckets));
    let site = sql.bind(q.site_id);
    sql.push(&format!(
        "SELECT b.key, e.revenue_currency, COUNT(*), SUM(e.revenue_amount) \
         FROM json_each({b}) AS b CROSS JOIN {REVENUE_FROM} \
         WHERE e.site_id = {site} AND e.revenue_amount IS NOT NULL \
         AND e.ts_ms >= b.value ->> 0 AND e.ts_ms < b.value ->> 1"
    ));
    event_filters(q, &mut sql);
    sql.push(" GROUP BY b.key, e.revenue_currency ORDER BY b.key, e.revenue_currency");
    currency_sums(conn, &sql, |r, sum| {
        let i: usize = r.get::<_, i64>(0)?.try_into().unwrap_or(usize::MAX);
        if let Some(v) = out.get_mut(i) {
            v.push(sum);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Revenue per value of `dim` (`None`: not set), currencies in alphabetical
/// order. An event's revenue goes to its own page, name and properties,
/// and to its visit's entry and exit page, source, country, and so on.
pub fn revenue_breakdown(
    conn: &Connection,
    q: &Scoped<'_>,
    dim: &Dimension,
) -> rusqlite::Result<HashMap<Option<String>, Vec<CurrencySum>>> {
    let mut sql = Sql::default();
    let (col, join) = match dim.scope() {
        Scope::Session => (
            column(dim, 's', &mut sql),
            " JOIN sessions AS s ON s.id = e.session_id",
        ),
        Scope::Event | Scope::Shared(_) => (column(dim, 'e', &mut sql), ""),
    };
    let site = sql.bind(q.site_id);
    let start = sql.bind(q.start_ms);
    let end = sql.bind(q.end_ms);
    sql.push(&format!(
        "SELECT {col} AS v, e.revenue_currency, COUNT(*), SUM(e.revenue_amount) \
         FROM {REVENUE_FROM}{join} \
         WHERE e.site_id = {site} AND e.revenue_amount IS NOT NULL \
         AND e.ts_ms >= {start} AND e.ts_ms < {end}"
    ));
    if matches!(dim, Dimension::EventProp(_)) {
        sql.push(" AND v IS NOT NULL");
    }
    event_filters(q, &mut sql);
    sql.push(" GROUP BY v, e.revenue_currency ORDER BY v, e.revenue_currency");
    let mut groups: HashMap<Option<String>, Vec<CurrencySum>> = HashMap::new();
    currency_sums(conn, &sql, |r, sum| {
        groups.entry(r.get(0)?).or_default().push(sum);
        Ok(())
    })?;
    Ok(groups)
}

/// The events of the site in the range that match any of `steps`, in the
/// order each visit made them, a visitor's visits together (visitor, visit,
/// time, id: counted as they stream, nothing held per visitor), with the steps each
/// matches (bit `i`: step `i`); `q.filters` (the visit's dimensions only)
/// keep the visits. A step on the page or hostname matches page views, one
/// on an event name or property custom events.
pub fn funnel_rows(
    conn: &Connection,
    q: &Scoped<'_>,
    steps: &[Filter],
    mut each: impl FnMut(i64, i64, u32),
) -> rusqlite::Result<()> {
    let mut sql = Sql::default();
    let (events, range) = scan(conn, Table::Events, 'e', q, &mut sql)?;
    let mut flags = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let col = column(&step.dimension, 'e', &mut sql);
        let c = condition(&col, step, &mut sql);
        let kind = if step.dimension.is_goal() {
            "e.kind = 'event'"
        } else {
            "e.kind = 'pageview'"
        };
        flags.push(format!(
            "(CASE WHEN {kind} AND {c} THEN {} ELSE 0 END)",
            1u32 << i
        ));
    }
    sql.push(&format!(
        "SELECT session_id, visitor_id, steps FROM (SELECT e.session_id, e.visitor_id, e.ts_ms, e.id, {} AS steps \
         FROM {events} WHERE {range}",
        flags.join(" | ")
    ));
    event_filters(q, &mut sql);
    sql.push(") WHERE steps <> 0 ORDER BY visitor_id, session_id, ts_ms, id");
    let mut stmt = conn.prepare(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.args.iter()))?;
    while let Some(r) = rows.next()? {
        each(r.get(0)?, r.get(1)?, r.get(2)?);
    }
    Ok(())
}

/// One stored event as the export writes it (no visitor id).
pub struct ExportRow {
    pub id: i64,
    pub ts_ms: i64,
    pub kind: String,
    pub name: Option<String>,
    pub hostname: String,
    pub path: String,
    pub referrer: Option<String>,
    pub source: Option<String>,
    pub channel: String,
    pub utm: [Option<String>; 5],
    pub country: Option<String>,
    pub browser: String,
    pub browser_major: Option<i64>,
    pub os: String,
    pub os_version: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub device: String,
    pub screen_width: Option<i64>,
    pub props: Option<String>,
    pub revenue_amount: Option<f64>,
    pub revenue_currency: Option<String>,
    pub session_id: i64,
}

/// The time of the site's first stored event, if any (Plausible's `all`
/// starts on its day): one step down the (site, time) index.
pub fn first_event_ms(conn: &Connection, site_id: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT MIN(ts_ms) FROM events WHERE site_id = ?1")?
        .query_row([site_id], |r| r.get(0))
}

/// Where an export has got to: its read, planned once, and the last row
/// given.
pub struct ExportPages {
    read: Read,
    after: Option<(i64, i64)>,
}

impl ExportPages {
    pub fn new(conn: &Connection, q: &Scoped<'_>) -> rusqlite::Result<Self> {
        // An import's visits (queued in `visit_backlog`, never removed) are
        // stored newest day first: a range with any of them is read through
        // the index, in time order. A session id is its start's millisecond
        // shifted left (`sessions::SessionIds`, `import::raw`), so the
        // queue's index is read from a day before the range (a visit that
        // started earlier still in it is read in stored order) to its end.
        let bits = crate::sessions::ID_SEQUENCE_BITS;
        let id = |ms: i64| ms.clamp(0, i64::MAX >> bits) << bits;
        let imported: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM visit_backlog b JOIN sessions s ON s.id = b.session_id
                 WHERE b.session_id >= ?3 AND b.session_id < ?4
                   AND s.site_id = ?1 AND s.last_ms >= ?2)",
            )?
            .query_row(
                [
                    q.site_id,
                    q.start_ms,
                    id(q.start_ms.saturating_sub(86_400_000)),
                    id(q.end_ms),
                ],
                |r| r.get(0),
            )?;
        Ok(Self {
            read: if imported {
                Read::Index
            } else {
                plan(conn, Table::Events, q)?
            },
            after: None,
        })
    }
}

/// The next page of at most `limit` of the site's events in the range that
/// `q.filters` keep (empty at the end). Each page is its own statement,
/// over by the time it returns: an export never holds a read snapshot (the
/// WAL could not restart, a deleted salt's pages would stay in it) while
/// its client reads. Read as one rowid run, the rows come as stored; read
/// through the (site, time) index, in time order: both need no sort.
pub fn export_page(
    conn: &Connection,
    q: &Scoped<'_>,
    pages: &mut ExportPages,
    limit: usize,
) -> rusqlite::Result<Vec<ExportRow>> {
    let by_id = matches!(pages.read, Read::Rowids(..));
    // Read as a rowid run, the next page's run starts after the last row:
    // a range SQLite seeks to (a condition beside it would be a filter, and
    // each page would scan the run from its start again).
    let read = match (pages.read, pages.after) {
        (Read::Rowids(a, b), Some((_, last))) => Read::Rowids(a.max(last.saturating_add(1)), b),
        (read, _) => read,
    };
    let mut sql = Sql::default();
    let (events, range) = scan_read(Table::Events, 'e', read, q, &mut sql);
    sql.push(&format!(
        "SELECT e.id, e.ts_ms, e.kind, e.name, e.hostname, e.path, e.referrer, e.source, e.channel, \
         e.utm_source, e.utm_medium, e.utm_campaign, e.utm_term, e.utm_content, e.country, \
         e.browser, e.browser_major, e.os, e.device, e.screen_width, e.props, \
         e.revenue_amount, e.revenue_currency, e.session_id, e.os_version, e.region, e.city \
         FROM {events} WHERE {range}"
    ));
    if let Some((ts, id)) = pages.after.filter(|_| !by_id) {
        // Through the (site, time) index: from the last row's time on (a
        // range of the index), then past the rows of that time already given.
        let (ts, id) = (sql.bind(ts), sql.bind(id));
        sql.push(&format!(
            " AND e.ts_ms >= {ts} AND (e.ts_ms, e.id) > ({ts}, {id})"
        ));
    }
    event_filters(q, &mut sql);
    let limit = sql.bind(limit as i64);
    sql.push(if by_id {
        " ORDER BY e.id"
    } else {
        " ORDER BY e.ts_ms, e.id"
    });
    sql.push(&format!(" LIMIT {limit}"));
    let mut stmt = conn.prepare(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.args.iter()))?;
    let mut page = Vec::new();
    while let Some(r) = rows.next()? {
        let row = ExportRow {
            id: r.get(0)?,
            ts_ms: r.get(1)?,
            kind: r.get(2)?,
            name: r.get(3)?,
            hostname: r.get(4)?,
            path: r.get(5)?,
            referrer: r.get(6)?,
            source: r.get(7)?,
            channel: r.get(8)?,
            utm: [r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?],
            country: r.get(14)?,
            browser: r.get(15)?,
            browser_major: r.get(16)?,
            os: r.get(17)?,
            device: r.get(18)?,
            screen_width: r.get(19)?,
            props: r.get(20)?,
            revenue_amount: r.get(21)?,
            revenue_currency: r.get(22)?,
            session_id: r.get(23)?,
            os_version: r.get(24)?,
            region: r.get(25)?,
            city: r.get(26)?,
        };
        page.push(row);
    }
    if let Some(last) = page.last() {
        pages.after = Some((last.ts_ms, last.id));
    }
    Ok(page)
}
