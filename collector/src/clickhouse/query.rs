//! The stats API's counts in ClickHouse SQL: the same two questions as
//! `stats::query` asks SQLite's raw rows (revenue is always read from
//! SQLite's partial index of the revenue rows, which reads those rows only
//! where ClickHouse would scan the range), with the same meaning (event metrics count
//! the events in the range, visit metrics the sessions *started* in it; a
//! filter on an event dimension keeps the visits with a matching event),
//! so both stores give the same answers (a test compares them).
//!
//! Values from a request enter SQL only through [`lit`]; column names come
//! from matching on [`Dimension`]; numbers are the handler's own integers.

use std::collections::HashMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::Value;

use super::ship::OPEN_KEEP_MS;
use super::{ClickHouse, ClickHouseError, int, lit, text};
use crate::stats::params::{
    Bucket, Dimension, Filter, Metric, Op, Scope, wants_events, wants_sessions,
};
use crate::stats::query::{Engagement, Scoped, Totals, breakdown_sides, goal_filtered};

/// How rows fall into the requested buckets (which `stats::params::buckets`
/// made: equal steps from the range's start for minutes and hours, local
/// days for days, weeks and months).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grid {
    /// One bucket: the whole range.
    One,
    /// Bucket `i` starts `i` steps after `start_ms`.
    Steps { start_ms: i64, step_ms: i64 },
    /// `index[d]` is the bucket of the `d`-th local day from `first`.
    Days {
        first: Date,
        tz: String,
        index: Vec<usize>,
    },
}

impl Grid {
    /// The grid of `buckets` in the site's timezone (`tz_name` its IANA
    /// name, as ClickHouse knows it).
    pub fn of(buckets: &[Bucket], tz_name: &str, tz: &TimeZone) -> Grid {
        let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
            return Grid::One;
        };
        if buckets.len() == 1 {
            return Grid::One;
        }
        let starts: Option<Vec<Date>> = buckets.iter().map(|b| b.label.parse().ok()).collect();
        let Some(starts) = starts.filter(|_| first.label.len() == 10) else {
            return Grid::Steps {
                start_ms: first.start_ms,
                step_ms: (first.end_ms - first.start_ms).max(1),
            };
        };
        let last_day = jiff::Timestamp::from_millisecond(last.end_ms - 1)
            .map(|t| t.to_zoned_datetime(tz.clone()).date())
            .unwrap_or(starts[starts.len() - 1]);
        let mut index = Vec::new();
        let mut day = starts[0];
        let mut bucket = 0;
        while day <= last_day {
            while bucket + 1 < starts.len() && starts[bucket + 1] <= day {
                bucket += 1;
            }
            index.push(bucket);
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        Grid::Days {
            first: starts[0],
            tz: tz_name.to_string(),
            index,
        }
    }

    /// The bucket number of a row whose time (ms) is the column `col`.
    fn expr(&self, col: &str) -> String {
        match self {
            Grid::One => "0".to_string(),
            Grid::Steps { start_ms, step_ms } => format!("intDiv({col} - {start_ms}, {step_ms})"),
            Grid::Days { first, tz, index } => {
                let list: Vec<String> = index.iter().map(usize::to_string).collect();
                format!(
                    "[{}][toDate(toDateTime(intDiv({col}, 1000)), {}) - toDate({}) + 1]",
                    list.join(","),
                    lit(tz),
                    lit(&first.to_string())
                )
            }
        }
    }
}

/// Every visit of a site started before `to` (and at or after `from`), with
/// the columns of SQLite's `sessions`: those over from `visits` (one final
/// row each), the others from `open_visits`, each at its latest snapshot.
/// What a later snapshot changes (the counters, the exit, the entry of a
/// visit that began with a custom event) is its highest version's; the
/// rest is alike in every snapshot. A visit over and shipped to `visits`
/// still has snapshots in `open_visits`: they are left out.
fn sessions_view(ch: &ClickHouse, site_id: i64, from: Option<i64>, to: i64, now_ms: i64) -> String {
    let mut range = format!("site_id = {site_id} AND started_ms < {to}");
    if let Some(a) = from {
        range.push_str(&format!(" AND started_ms >= {a}"));
    }
    // Older visits are all over, in `visits` (ship::OPEN_KEEP_MS).
    let recent = now_ms.saturating_sub(OPEN_KEEP_MS);
    let (visits, open) = (ch.table("visits"), ch.table("open_visits"));
    format!(
        "(SELECT id, visitor_id, started_ms, last_ms, entry_path, exit_path, pageviews, \
         interactions, referrer, referrer_domain, source, channel, utm_source, utm_medium, \
         utm_campaign, utm_term, utm_content, country, browser, browser_major, os, device, \
         os_version, region, city FROM {visits} WHERE {range} \
         UNION ALL \
         SELECT id, any(visitor_id) AS visitor_id, any(started_ms) AS started_ms, \
         argMax(last_ms, version) AS last_ms, argMax(entry_path, version) AS entry_path, \
         argMax(exit_path, version) AS exit_path, argMax(pageviews, version) AS pageviews, \
         argMax(interactions, version) AS interactions, any(referrer) AS referrer, \
         any(referrer_domain) AS referrer_domain, any(source) AS source, any(channel) AS channel, \
         any(utm_source) AS utm_source, any(utm_medium) AS utm_medium, \
         any(utm_campaign) AS utm_campaign, any(utm_term) AS utm_term, \
         any(utm_content) AS utm_content, any(country) AS country, any(browser) AS browser, \
         any(browser_major) AS browser_major, any(os) AS os, any(device) AS device, \
         any(os_version) AS os_version, any(region) AS region, any(city) AS city \
         FROM (SELECT * FROM {open} WHERE {range} AND started_ms >= {recent} \
         AND id NOT IN (SELECT id FROM {visits} WHERE {range} AND started_ms >= {recent})) \
         GROUP BY id)"
    )
}

/// The column (or expression) of `dim`, unqualified.
fn column(dim: &Dimension) -> String {
    match dim {
        Dimension::Page => "path".to_string(),
        Dimension::Hostname => "hostname".to_string(),
        Dimension::EventName => "name".to_string(),
        Dimension::EventProp(key) => format!(
            "if(has(prop_keys, {k}), prop_values[indexOf(prop_keys, {k})], NULL)",
            k = lit(key)
        ),
        Dimension::EventPropKeys => "arrayJoin(prop_keys)".to_string(),
        Dimension::EntryPage => "entry_path".to_string(),
        Dimension::ExitPage => "exit_path".to_string(),
        Dimension::BrowserVersion => "if(isNull(browser_major), NULL, \
            concat(browser, ' ', toString(assumeNotNull(browser_major))))"
            .to_string(),
        Dimension::OsVersion => {
            "if(isNull(os_version), NULL, concat(os, ' ', assumeNotNull(os_version)))".to_string()
        }
        // As SQLite's (`stats::query`): in the country, a city in its region.
        Dimension::Region => "if(isNull(region) OR isNull(country), NULL, \
            concat(assumeNotNull(country), ' ', assumeNotNull(region)))"
            .to_string(),
        Dimension::City => "if(isNull(city) OR isNull(country), NULL, \
            concat(assumeNotNull(country), ' ', assumeNotNull(city), \
            if(isNull(region), '', concat(', ', assumeNotNull(region)))))"
            .to_string(),
        other => match other.scope() {
            Scope::Shared(col) => col.to_string(),
            Scope::Event | Scope::Session => "NULL".to_string(),
        },
    }
}

/// SQLite's `lower` and `instr` are ASCII-case-insensitive, and so is this.
/// Any of `f`'s values, or none of them, as SQLite's `condition`.
fn condition(expr: &str, f: &Filter) -> String {
    let m = f.matchers();
    // Each 1 when `expr` is set and matches, else 0 (not NULL).
    let mut alts = Vec::new();
    if f.op == Op::Contains {
        for v in &m.exact {
            alts.push(format!(
                "ifNull(position(lower({expr}), lower({})) > 0, 0)",
                lit(v)
            ));
        }
        return format!("({})", alts.join(" OR "));
    }
    if !m.exact.is_empty() {
        let list: Vec<String> = m.exact.iter().map(|v| lit(v)).collect();
        alts.push(format!("ifNull({expr} IN ({}), 0)", list.join(", ")));
    }
    for pieces in &m.patterns {
        alts.push(format!("ifNull(like({expr}, {}), 0)", lit(&like(pieces))));
    }
    let any = alts.join(" OR ");
    match (f.op, m.none, alts.is_empty()) {
        (Op::Is, true, true) => format!("(isNull({expr}))"),
        (Op::Is, true, false) => format!("(isNull({expr}) OR {any})"),
        (Op::IsNot, true, true) => format!("(isNotNull({expr}))"),
        (Op::IsNot, true, false) => format!("(isNotNull({expr}) AND NOT ({any}))"),
        (Op::IsNot, false, _) => format!("(NOT ({any}))"),
        _ => format!("({any})"),
    }
}

/// A wildcard pattern's pieces as a LIKE pattern (case-sensitive in
/// ClickHouse, as SQLite's GLOB): `%` between them, and `%`, `_` and `\`
/// in them escaped.
fn like(pieces: &[String]) -> String {
    let escaped: Vec<String> = pieces
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| match c {
                    '%' | '_' | '\\' => format!("\\{c}"),
                    c => c.to_string(),
                })
                .collect()
        })
        .collect();
    escaped.join("%")
}

fn events_in(ch: &ClickHouse, q: &Scoped<'_>) -> String {
    format!(
        "{} WHERE site_id = {} AND ts_ms >= {} AND ts_ms < {}",
        ch.table("events"),
        q.site_id,
        q.start_ms,
        q.end_ms
    )
}

/// ` AND …` for each filter, on the events.
fn event_filters(ch: &ClickHouse, q: &Scoped<'_>, now_ms: i64) -> String {
    let mut out = String::new();
    for f in q.filters {
        let c = condition(&column(&f.dimension), f);
        match f.dimension.scope() {
            Scope::Event | Scope::Shared(_) => out.push_str(&format!(" AND {c}")),
            // A visit started after the range has no event in it.
            Scope::Session => out.push_str(&format!(
                " AND session_id IN (SELECT id FROM {} WHERE {c})",
                sessions_view(ch, q.site_id, None, q.end_ms, now_ms)
            )),
        }
    }
    out
}

/// ` AND …` for each filter, on the sessions view.
fn session_filters(ch: &ClickHouse, q: &Scoped<'_>) -> String {
    let mut out = String::new();
    for f in q.filters {
        let c = condition(&column(&f.dimension), f);
        match f.dimension.scope() {
            Scope::Session | Scope::Shared(_) => out.push_str(&format!(" AND {c}")),
            Scope::Event => out.push_str(&format!(
                " AND id IN (SELECT session_id FROM {} WHERE site_id = {} AND ts_ms >= {} AND {c})",
                ch.table("events"),
                q.site_id,
                q.start_ms
            )),
        }
    }
    out
}

/// Engagement per page, as SQLite's `stats::query::engagement_by_page`:
/// each visit's engaged time on a page summed and its deepest scroll; page
/// and hostname filters on the engagement rows, the visit's on their visits
/// (event names and properties are refused before).
pub fn engagement_by_page(
    ch: &ClickHouse,
    q: &Scoped<'_>,
    now_ms: i64,
) -> Result<HashMap<String, Engagement>, ClickHouseError> {
    let mut filters = String::new();
    for f in q.filters {
        let c = condition(&column(&f.dimension), f);
        match f.dimension.scope() {
            Scope::Event => filters.push_str(&format!(" AND {c}")),
            Scope::Session | Scope::Shared(_) => filters.push_str(&format!(
                " AND session_id IN (SELECT id FROM {} WHERE {c})",
                sessions_view(ch, q.site_id, None, q.end_ms, now_ms)
            )),
        }
    }
    let sql = format!(
        "SELECT path, count(), sum(ms), count(depth), ifNull(sum(depth), 0) FROM \
         (SELECT path, sum(engaged_ms) AS ms, max(scroll_depth) AS depth FROM {} \
         WHERE site_id = {} AND ts_ms >= {} AND ts_ms < {}{filters} GROUP BY session_id, path) \
         GROUP BY path",
        ch.table("engagements"),
        q.site_id,
        q.start_ms,
        q.end_ms
    );
    let mut out = HashMap::new();
    for r in ch.rows(&sql)? {
        let Some(path) = r.first().and_then(text) else {
            continue;
        };
        out.insert(
            path,
            Engagement {
                visits: int(cell(&r, 1)),
                engaged_ms: int(cell(&r, 2)),
                scrolled: int(cell(&r, 3)),
                depth_sum: int(cell(&r, 4)),
            },
        );
    }
    Ok(out)
}

/// A funnel's visits and visitors per step, counted as `stats::funnel`'s
/// `Tally` counts SQLite's rows: a visit's matching events in time order
/// (then id); it reaches step k when they match steps 1 to k in order, one
/// event per step (`p{k}`: the place of step k's event after step k-1's, 0
/// for none); a visitor reaches the most steps one of their visits did.
pub fn funnel(
    ch: &ClickHouse,
    q: &Scoped<'_>,
    now_ms: i64,
    steps: &[Filter],
) -> Result<(Vec<i64>, Vec<i64>), ClickHouseError> {
    let flags: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let c = condition(&column(&step.dimension), step);
            let kind = if step.dimension.is_goal() {
                "kind = 'event'"
            } else {
                "kind = 'pageview'"
            };
            // Bits apart: their sum is their union.
            format!("if({kind} AND {c}, {}, 0)", 1u32 << i)
        })
        .collect();
    let mut places = Vec::with_capacity(steps.len());
    for i in 0..steps.len() {
        let bit = 1u32 << i;
        let k = i + 1;
        places.push(if i == 0 {
            format!("arrayFirstIndex(x -> bitAnd(x, {bit}) != 0, s) AS p1")
        } else {
            format!(
                "if(p{i} = 0, 0, arrayFirstIndex((x, j) -> bitAnd(x, {bit}) != 0 AND j > p{i}, \
                 s, arrayEnumerate(s))) AS p{k}"
            )
        });
    }
    let reached: Vec<String> = (1..=steps.len()).map(|k| format!("(p{k} > 0)")).collect();
    let visits = format!(
        "SELECT visitor_id, {}, {} AS reached FROM \
         (SELECT visitor_id, arrayMap(t -> tupleElement(t, 3), \
            arraySort(groupArray((ts_ms, id, steps)))) AS s FROM \
           (SELECT visitor_id, session_id, ts_ms, id, {} AS steps FROM {}{}) \
          WHERE steps != 0 GROUP BY visitor_id, session_id)",
        places.join(", "),
        reached.join(" + "),
        flags.join(" + "),
        events_in(ch, q),
        event_filters(ch, q, now_ms)
    );
    // In one statement (one snapshot): per visitor, their best visit and
    // each visit's steps; how many visits reached `r` steps, and how many
    // visitors (their first visit's row) had `best` as their best.
    let sql = format!(
        "SELECT best, r, count(), countIf(i = 1) FROM \
         (SELECT max(reached) AS best, groupArray(reached) AS rs FROM ({visits}) \
          GROUP BY visitor_id) \
         ARRAY JOIN rs AS r, arrayEnumerate(rs) AS i \
         GROUP BY best, r"
    );
    let (mut by_visit, mut by_visitor) = (vec![0; steps.len()], vec![0; steps.len()]);
    let reached = |v: &Value| usize::try_from(int(v)).unwrap_or(0).min(steps.len());
    for row in ch.rows(&sql)? {
        for step in &mut by_visit[..reached(cell(&row, 1))] {
            *step += int(cell(&row, 2));
        }
        for step in &mut by_visitor[..reached(cell(&row, 0))] {
            *step += int(cell(&row, 3));
        }
    }
    Ok((by_visit, by_visitor))
}

fn index(v: &Value, len: usize) -> Option<usize> {
    usize::try_from(int(v)).ok().filter(|i| *i < len)
}

fn cell(row: &[Value], i: usize) -> &Value {
    row.get(i).unwrap_or(&Value::Null)
}

/// Totals per bucket (same order as `buckets`; empty buckets are zero).
pub fn by_bucket(
    ch: &ClickHouse,
    q: &Scoped<'_>,
    now_ms: i64,
    grid: &Grid,
    buckets: &[Bucket],
    metrics: &[Metric],
) -> Result<Vec<Totals>, ClickHouseError> {
    let mut out = vec![Totals::default(); buckets.len()];
    if buckets.is_empty() {
        return Ok(out);
    }
    if wants_events(metrics) {
        let sql = format!(
            "SELECT {} AS b, uniqExact(visitor_id), countIf(kind = 'pageview'), count() \
             FROM {}{} GROUP BY b",
            grid.expr("ts_ms"),
            events_in(ch, q),
            event_filters(ch, q, now_ms)
        );
        for r in ch.rows(&sql)? {
            if let Some(t) = index(cell(&r, 0), out.len()).and_then(|i| out.get_mut(i)) {
                t.visitors = int(cell(&r, 1));
                t.pageviews = int(cell(&r, 2));
                t.events = int(cell(&r, 3));
            }
        }
    }
    if wants_sessions(metrics) {
        let sql = format!(
            "SELECT {} AS b, count(), sum(pageviews), \
             countIf(pageviews <= 1 AND interactions = 0), sum(last_ms - started_ms) \
             FROM {} WHERE 1{} GROUP BY b",
            grid.expr("started_ms"),
            sessions_view(ch, q.site_id, Some(q.start_ms), q.end_ms, now_ms),
            session_filters(ch, q)
        );
        for r in ch.rows(&sql)? {
            if let Some(t) = index(cell(&r, 0), out.len()).and_then(|i| out.get_mut(i)) {
                t.visits = int(cell(&r, 1));
                t.session_pageviews = int(cell(&r, 2));
                t.bounces = int(cell(&r, 3));
                t.duration_ms = int(cell(&r, 4));
            }
        }
    }
    Ok(out)
}

/// Totals per value of `dim` (`None`: not set), in no particular order.
pub fn breakdown(
    ch: &ClickHouse,
    q: &Scoped<'_>,
    now_ms: i64,
    dim: &Dimension,
    metrics: &[Metric],
) -> Result<Vec<(Option<String>, Totals)>, ClickHouseError> {
    let mut groups: HashMap<Option<String>, Totals> = HashMap::new();
    let scope = dim.scope();
    let (event_side, session_side) = breakdown_sides(dim, metrics);
    if event_side {
        let only = match dim {
            // As in SQLite: pages by their views, or by a goal's events.
            Dimension::Page if !goal_filtered(q.filters) => " AND kind = 'pageview'",
            Dimension::EventName => " AND kind = 'event'",
            Dimension::EventProp(_) => " AND isNotNull(v)",
            _ => "",
        };
        let sql = format!(
            "SELECT {} AS v, uniqExact(visitor_id), uniqExact(session_id), \
             countIf(kind = 'pageview'), count() FROM {}{only}{} GROUP BY v",
            column(dim),
            events_in(ch, q),
            event_filters(ch, q, now_ms)
        );
        for r in ch.rows(&sql)? {
            let value = text(cell(&r, 0));
            if *dim == Dimension::EventPropKeys
                && !value
                    .as_deref()
                    .is_some_and(crate::stats::params::valid_prop_key)
            {
                continue;
            }
            let t = groups.entry(value).or_default();
            t.visitors = int(cell(&r, 1));
            if scope == Scope::Event {
                t.visits = int(cell(&r, 2));
            }
            t.pageviews = int(cell(&r, 3));
            t.events = int(cell(&r, 4));
        }
    }
    if session_side {
        let sql = format!(
            "SELECT {} AS v, uniqExact(visitor_id), count(), sum(pageviews), \
             countIf(pageviews <= 1 AND interactions = 0), sum(last_ms - started_ms) \
             FROM {} WHERE 1{} GROUP BY v",
            column(dim),
            sessions_view(ch, q.site_id, Some(q.start_ms), q.end_ms, now_ms),
            session_filters(ch, q)
        );
        for r in ch.rows(&sql)? {
            let t = groups.entry(text(cell(&r, 0))).or_default();
            if scope == Scope::Session {
                t.visitors = int(cell(&r, 1));
            }
            t.visits = int(cell(&r, 2));
            t.session_pageviews = int(cell(&r, 3));
            t.bounces = int(cell(&r, 4));
            t.duration_ms = int(cell(&r, 5));
        }
    }
    Ok(groups.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(label: &str, start_ms: i64, end_ms: i64) -> Bucket {
        Bucket {
            label: label.into(),
            start_ms,
            end_ms,
        }
    }

    #[test]
    fn weeks_clipped_at_the_start_map_every_day_to_its_bucket() {
        let tz = TimeZone::UTC;
        let day = 86_400_000;
        // 2026-03-04 (Wednesday) to 2026-03-17: weeks from 03-04, 03-09, 03-16.
        let start = jiff::civil::date(2026, 3, 4)
            .to_zoned_datetime(tz.clone())
            .unwrap()
            .timestamp()
            .as_millisecond();
        let buckets = [
            bucket("2026-03-04", start, start + 5 * day),
            bucket("2026-03-09", start + 5 * day, start + 12 * day),
            bucket("2026-03-16", start + 12 * day, start + 14 * day),
        ];
        let Grid::Days { first, index, .. } = Grid::of(&buckets, "UTC", &tz) else {
            panic!("not days");
        };
        assert_eq!(first.to_string(), "2026-03-04");
        assert_eq!(index, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2]);
        let hours = [
            bucket("2026-03-04T00:00:00+00:00", 0, 3_600_000),
            bucket("x", 3_600_000, 7_200_000),
        ];
        assert_eq!(
            Grid::of(&hours, "UTC", &tz),
            Grid::Steps {
                start_ms: 0,
                step_ms: 3_600_000
            }
        );
        assert_eq!(Grid::of(&hours[..1], "UTC", &tz), Grid::One);
    }
}
