//! Plausible's CSV export (`imported_visitors_20240101_20241231.csv`, …,
//! or the ZIP that holds them) imported as rolled-up days: a site moving
//! from Plausible keeps its history.
//!
//! The export is daily sums per dimension value, which is what Tallymark's
//! daily rollups (`stats::rollup`) hold; each imported day is written as a
//! rolled day with no raw rows and nothing carried over from the day
//! before. So the dashboard's and the stats API's whole-day answers (the
//! totals, the daily graph, a breakdown, one filter on a visit dimension)
//! include the imported days, as Plausible shows imported data; what needs
//! raw rows (several filters, hours, properties, funnels, exports, the
//! browser and OS versions) has nothing for them. Visitors over several
//! imported days are the sum of each day's, as in Plausible.
//!
//! Only whole days that are over, before the site's first stored event,
//! within the site's retention period (its own, else `--retention-days`),
//! and not rolled yet are imported: importing the same files again adds
//! nothing. A table's day given by two files (the ZIP and its unpacked
//! folder, overlapping exports) is refused rather than counted twice.

pub mod goatcounter;
pub mod raw;
pub mod umami;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::civil::Date;
use rusqlite::Connection;
use tallymark_core::source::{Attribution, attribute};

use crate::geo::PlaceNames;
use crate::sites::Site;
use crate::stats::params::Dimension;
use crate::stats::plausible::stored_value;
use crate::stats::rollup::{self, EventSums, Pending, SessionSums};

/// Why an import stopped. Every file is read before anything is written;
/// a database error while writing keeps the days written before it (each
/// day is one transaction), and running the import again adds the rest.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a ZIP archive Tallymark can read: {source}")]
    Zip {
        path: String,
        source: zip::result::ZipError,
    },
    #[error("{file}: line {line}: {message}")]
    Csv {
        file: String,
        line: u64,
        message: String,
    },
    #[error(
        "{0}: not a file of Plausible's CSV export (imported_visitors_YYYYMMDD_YYYYMMDD.csv, imported_sources_…, imported_pages_…, …)"
    )]
    Unknown(String),
    #[error(
        "no imported_visitors file among those given: it holds each day's totals, without which the other files cannot be shown"
    )]
    NoVisitors,
    #[error(
        "{table} of {day} is in both {first} and {second}: give each day once (the ZIP or its unpacked files, not both)"
    )]
    Twice {
        table: &'static str,
        day: Date,
        first: String,
        second: String,
    },
    #[error("{path}: {name} unpacks to more than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: String, name: String },
    #[error("database: {0}")]
    Store(#[from] rusqlite::Error),
    #[error(
        "an import into {site} stopped part-way with visits split after {minutes} minutes: run it again with --session-timeout-minutes {minutes}"
    )]
    Resumed { site: String, minutes: i64 },
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Days written, and the first and last of them.
    pub days: usize,
    pub first: Option<Date>,
    pub last: Option<Date>,
    /// Days left out: on or after the site's own first event, or not over
    /// yet.
    pub after_native: usize,
    /// Days left out: before the site's retention period.
    pub past_retention: usize,
    /// Days left out: with stored events, or rolled with anything in them
    /// (imported before, or rolled from raw rows).
    pub already: usize,
    /// The files read, by table (`visitors`, `sources`, …).
    pub tables: Vec<String>,
}

/// The largest file read (a ZIP entry unpacked): far above a real export.
const MAX_FILE_BYTES: u64 = 4 << 30;

/// The largest count taken from a cell (sums of many days stay far from
/// overflowing).
const MAX_COUNT: i64 = 1_000_000_000_000;

/// The tables of Plausible's export that this reads.
const TABLES: [&str; 10] = [
    "visitors",
    "sources",
    "pages",
    "entry_pages",
    "exit_pages",
    "custom_events",
    "locations",
    "devices",
    "browsers",
    "operating_systems",
];

/// `imported_sources_20240101_20241231.csv` (or without `imported_`) →
/// `sources`.
fn table_of(name: &str) -> Option<&'static str> {
    let base = name.rsplit(['/', '\\', ':']).next()?;
    let stem = base.strip_suffix(".csv")?;
    let stem = stem.strip_prefix("imported_").unwrap_or(stem);
    // `<table>_<8 digits>_<8 digits>`
    let (rest, to) = stem.rsplit_once('_')?;
    let (table, from) = rest.rsplit_once('_')?;
    let digits = |s: &str| s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(from) || !digits(to) {
        return None;
    }
    TABLES.iter().copied().find(|t| *t == table)
}

/// The CSV files in `paths`: files, directories (their files), ZIP archives
/// (their files), by name.
pub fn read_files(paths: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>, ImportError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ImportError::Io { path, source }
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut names: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io(path))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "csv" || e == "zip"))
                .collect();
            names.sort();
            files.extend(read_files(&names)?);
        } else if path.extension().is_some_and(|e| e == "zip") {
            let file = std::fs::File::open(path).map_err(io(path))?;
            let zip_error = |source| ImportError::Zip {
                path: path.display().to_string(),
                source,
            };
            let mut archive = zip::ZipArchive::new(file).map_err(zip_error)?;
            for i in 0..archive.len() {
                let entry = archive.by_index(i).map_err(zip_error)?;
                let name = entry.name().map_err(zip_error)?.to_string();
                // macOS's resource forks (`__MACOSX/._x.csv`) are not data.
                let resource_fork = name.contains("__MACOSX/")
                    || name.rsplit('/').next().is_some_and(|b| b.starts_with("._"));
                if !entry.is_file() || !name.ends_with(".csv") || resource_fork {
                    continue;
                }
                let mut bytes = Vec::new();
                entry
                    .take(MAX_FILE_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(io(path))?;
                if bytes.len() as u64 > MAX_FILE_BYTES {
                    return Err(ImportError::TooLarge {
                        path: path.display().to_string(),
                        name,
                    });
                }
                // Named with its archive: two exports' files stay apart.
                files.push((format!("{}:{name}", path.display()), bytes));
            }
        } else {
            let bytes = std::fs::read(path).map_err(io(path))?;
            files.push((path.display().to_string(), bytes));
        }
    }
    Ok(files)
}

/// One day's sums, by (dimension name, value) as the rollups key them.
#[derive(Default)]
struct DaySums {
    events: HashMap<(String, Option<String>), EventSums>,
    sessions: HashMap<(String, Option<String>), SessionSums>,
}

impl DaySums {
    /// The region and city rows under no value: what of the day's totals
    /// (custom events too) no named region or city holds, as on a native
    /// day, where they add up to the totals.
    fn unplaced(&mut self) {
        for dim in [Dimension::Region, Dimension::City] {
            unplaced(&mut self.events, &dim, |s| {
                s.visitors == 0 && s.sessions == 0
            });
            unplaced(&mut self.sessions, &dim, |s| {
                s.visitors == 0 && s.visits == 0
            });
            if let Some(s) = self.sessions.get_mut(&key(Some(&dim), None)) {
                // The export's files need not agree: never more bounces
                // than visits.
                s.bounces = s.bounces.min(s.visits);
            }
        }
    }
}

/// `dim`'s row under no value in `sums`: the totals less its named rows;
/// none when nothing is left (`empty`: no visitors, no visits), as on a
/// native day where every visitor was placed.
fn unplaced<S: Clone + std::ops::SubAssign>(
    sums: &mut HashMap<(String, Option<String>), S>,
    dim: &Dimension,
    empty: impl Fn(&S) -> bool,
) {
    let name = dim.to_string();
    let Some(mut rest) = sums.get(&key(None, None)).cloned() else {
        return;
    };
    for ((d, value), s) in sums.iter() {
        if *d == name && value.is_some() {
            rest -= s.clone();
        }
    }
    if !empty(&rest) {
        sums.insert(key(Some(dim), None), rest);
    }
}

/// The whole export, by day.
#[derive(Default)]
pub struct Export {
    days: BTreeMap<Date, DaySums>,
    tables: Vec<String>,
    /// Which file (its place among those given, and name) gave each
    /// table's day.
    given: HashMap<(&'static str, Date), (usize, String)>,
}

/// One row's counts (absent columns are 0).
struct Counts {
    visitors: i64,
    visits: i64,
    pageviews: i64,
    bounces: i64,
    duration_ms: i64,
    events: i64,
}

/// Reads Plausible's CSV files (named as its export names them) for
/// `site`.
pub fn parse(site: &Site, files: &[(String, Vec<u8>)]) -> Result<Export, ImportError> {
    parse_with(site, files, &PlaceNames::default())
}

/// As [`parse`], with the names of Plausible's region codes and GeoNames
/// city ids (from a city database: `Geo::place_names`), so its regions and
/// cities are Tallymark's (`DE Bavaria`, `DE Munich, Bavaria`); without a
/// name, a visit's region or city is unknown.
pub fn parse_with(
    site: &Site,
    files: &[(String, Vec<u8>)],
    names: &PlaceNames,
) -> Result<Export, ImportError> {
    let mut export = Export::default();
    for (file, (name, bytes)) in files.iter().enumerate() {
        let table = table_of(name).ok_or_else(|| ImportError::Unknown(name.clone()))?;
        read_table(site, table, (file, name), bytes, names, &mut export)?;
        export.tables.push(table.to_string());
    }
    if !export.tables.iter().any(|t| t == "visitors") {
        return Err(ImportError::NoVisitors);
    }
    export.tables.sort();
    export.tables.dedup();
    Ok(export)
}

fn read_table(
    site: &Site,
    table: &'static str,
    (file, name): (usize, &str),
    bytes: &[u8],
    names: &PlaceNames,
    export: &mut Export,
) -> Result<(), ImportError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let bad = |line: u64, message: String| ImportError::Csv {
        file: name.to_string(),
        line,
        message,
    };
    let header = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    // A spreadsheet's save may add a byte order mark before the first name.
    let column = |n: &str| {
        header
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').trim() == n)
    };
    let Some(date_at) = column("date") else {
        return Err(bad(1, "no `date` column".into()));
    };
    // The value columns this table must have.
    let keys: &[&str] = match table {
        "visitors" => &[],
        "sources" => &["source"],
        "pages" => &["page"],
        "entry_pages" => &["entry_page"],
        "exit_pages" => &["exit_page"],
        "custom_events" => &["name"],
        "locations" => &["country"],
        "devices" => &["device"],
        "browsers" => &["browser"],
        _ => &["operating_system"],
    };
    for k in keys {
        if column(k).is_none() {
            return Err(bad(1, format!("no `{k}` column")));
        }
    }
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            bad(line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let text = |n: &str| {
            column(n)
                .and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty() && *v != "(not set)")
                .map(str::to_string)
        };
        let number = |n: &str| -> Result<i64, ImportError> {
            match column(n).and_then(|i| record.get(i)).map(str::trim) {
                None | Some("") => Ok(0),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (0..=MAX_COUNT).contains(n))
                    .ok_or_else(|| bad(line, format!("{n}: {v:?} is not a count"))),
            }
        };
        let day: Date = record
            .get(date_at)
            .map(str::trim)
            .unwrap_or_default()
            .parse()
            .map_err(|_| bad(line, "date: not YYYY-MM-DD".into()))?;
        // The same file given twice counts as two.
        match export.given.get(&(table, day)) {
            Some((other, first)) if *other != file => {
                return Err(ImportError::Twice {
                    table,
                    day,
                    first: first.clone(),
                    second: name.to_string(),
                });
            }
            Some(_) => {}
            None => {
                export.given.insert((table, day), (file, name.to_string()));
            }
        }
        // `visits` is `entrances` on entry pages, `exits` on exit pages.
        let visits = match table {
            "entry_pages" => number("entrances")?,
            "exit_pages" => number("exits")?,
            _ => number("visits")?,
        };
        let c = Counts {
            visitors: number("visitors")?,
            visits,
            pageviews: number("pageviews")?,
            bounces: number("bounces")?,
            // Plausible's `visit_duration`: the visits' seconds, summed.
            duration_ms: number("visit_duration")?.saturating_mul(1000),
            events: number("events")?,
        };
        // A row of nothing (Plausible writes some) would be a row of 0 here.
        if c.visitors == 0 && c.visits == 0 && c.pageviews == 0 && c.events == 0 {
            continue;
        }
        let sums = export.days.entry(day).or_default();
        match table {
            "visitors" => {
                add_session(sums, None, None, &c);
                add_event(sums, None, None, &c, c.pageviews);
            }
            // Plausible's engagement pings are not events here (time on
            // page and scroll depth are not imported).
            "custom_events"
                if matches!(text("name").as_deref(), Some("engagement" | "pageview")) => {}
            "custom_events" => {
                let event = EventSums {
                    visitors: c.visitors,
                    // Visits with the event: not in the export; each of its
                    // visitors had at least one.
                    sessions: c.visitors,
                    events: c.events,
                    ..EventSums::default()
                };
                add(
                    sums.events
                        .entry(key(Some(&Dimension::EventName), text("name"))),
                    &event,
                );
                // The site's events count custom events too.
                let total = EventSums {
                    events: c.events,
                    ..EventSums::default()
                };
                add(sums.events.entry(key(None, None)), &total);
            }
            "pages" => add_event(sums, Some(&Dimension::Page), text("page"), &c, c.pageviews),
            "entry_pages" => add_session(sums, Some(&Dimension::EntryPage), text("entry_page"), &c),
            "exit_pages" => add_session(sums, Some(&Dimension::ExitPage), text("exit_page"), &c),
            "sources" => {
                let source = text("source");
                let referrer = text("referrer");
                let utm = [
                    (Dimension::UtmSource, text("utm_source")),
                    (Dimension::UtmMedium, text("utm_medium")),
                    (Dimension::UtmCampaign, text("utm_campaign")),
                    (Dimension::UtmContent, text("utm_content")),
                    (Dimension::UtmTerm, text("utm_term")),
                ];
                let attribution = attribution_of(
                    site,
                    source.as_deref(),
                    referrer.as_deref(),
                    utm[0].1.as_deref(),
                    utm[1].1.as_deref(),
                    utm[2].1.as_deref(),
                );
                // The source as Tallymark names it, so that it is one row
                // before and after the move; else Plausible's name.
                let source = attribution.source.or(source);
                let channel = attribution.channel;
                let mut values = vec![
                    (Dimension::Source, source),
                    (Dimension::Referrer, referrer),
                    (Dimension::Channel, Some(channel.as_str().to_string())),
                ];
                values.extend(utm);
                for (dim, value) in values {
                    add_visit_dimension(sums, &dim, value, &c);
                }
            }
            "locations" => {
                let country = text("country").and_then(|c| crate::geo::country_code(&c));
                add_visit_dimension(sums, &Dimension::Country, country.clone(), &c);
                if let Some(cc) = &country {
                    // `DE-BY` and a GeoNames id (0: none) as Tallymark's
                    // values, when the city database names them.
                    let region = text("region")
                        .and_then(|r| names.regions.get(&r.to_ascii_uppercase()))
                        .map(|name| format!("{cc} {name}"));
                    let city = text("city")
                        .and_then(|id| id.parse::<u64>().ok())
                        .and_then(|id| names.cities.get(&id))
                        .map(|(name, region)| match region {
                            Some(region) => format!("{cc} {name}, {region}"),
                            None => format!("{cc} {name}"),
                        });
                    for (dim, value) in [(Dimension::Region, region), (Dimension::City, city)] {
                        if value.is_some() {
                            add_visit_dimension(sums, &dim, value, &c);
                        }
                    }
                }
            }
            _ => {
                // Devices, browsers, OSs: Plausible's names as Tallymark's
                // labels (`Microsoft Edge` → `edge`, `Mac` → `macos`); one
                // Tallymark does not know is `other`, none is `unknown`.
                let (dim, column) = match table {
                    "devices" => (Dimension::Device, "device"),
                    "browsers" => (Dimension::Browser, "browser"),
                    _ => (Dimension::Os, "operating_system"),
                };
                let name = dim.to_string();
                let label = match text(column) {
                    None => "unknown".to_string(),
                    Some(v) => stored_value(&name, &v)
                        .filter(|l| l != super::stats::params::NONE_LABEL)
                        .unwrap_or_else(|| {
                            if dim == Dimension::Device {
                                "unknown".into()
                            } else {
                                "other".into()
                            }
                        }),
                };
                add_visit_dimension(sums, &dim, Some(label), &c);
            }
        }
    }
    Ok(())
}

/// A row of Plausible's sources attributed by Tallymark's own rules: its
/// referrer and UTM tags as a landing page would carry them (the source
/// name stands for `utm_source` when the row has neither).
fn attribution_of(
    site: &Site,
    source: Option<&str>,
    referrer: Option<&str>,
    utm_source: Option<&str>,
    utm_medium: Option<&str>,
    utm_campaign: Option<&str>,
) -> Attribution {
    let Ok(mut page) = url::Url::parse(&format!("https://{}/", site.domain)) else {
        return Attribution::default();
    };
    {
        let mut q = page.query_pairs_mut();
        if let Some(s) = utm_source.or(if referrer.is_none() { source } else { None }) {
            q.append_pair("utm_source", s);
        }
        if let Some(m) = utm_medium {
            q.append_pair("utm_medium", m);
        }
        if let Some(c) = utm_campaign {
            q.append_pair("utm_campaign", c);
        }
    }
    let referrer = referrer.map(|r| {
        if r.contains("://") {
            r.to_string()
        } else {
            format!("https://{r}")
        }
    });
    attribute(&page, referrer.as_deref(), &site.domain)
}

fn key(dim: Option<&Dimension>, value: Option<String>) -> (String, Option<String>) {
    (dim.map(|d| d.to_string()).unwrap_or_default(), value)
}

fn add<S: std::ops::AddAssign<S> + Clone + Default>(
    entry: std::collections::hash_map::Entry<'_, (String, Option<String>), S>,
    sums: &S,
) {
    *entry.or_default() += sums.clone();
}

fn add_session(sums: &mut DaySums, dim: Option<&Dimension>, value: Option<String>, c: &Counts) {
    let s = SessionSums {
        visitors: c.visitors,
        visits: c.visits,
        pageviews: c.pageviews,
        bounces: c.bounces,
        duration_ms: c.duration_ms,
    };
    add(sums.sessions.entry(key(dim, value)), &s);
}

fn add_event(
    sums: &mut DaySums,
    dim: Option<&Dimension>,
    value: Option<String>,
    c: &Counts,
    events: i64,
) {
    let e = EventSums {
        visitors: c.visitors,
        sessions: c.visits,
        pageviews: c.pageviews,
        events,
        ..EventSums::default()
    };
    add(sums.events.entry(key(dim, value)), &e);
}

/// A dimension of the visit: on both sides, as the rollups hold it.
fn add_visit_dimension(sums: &mut DaySums, dim: &Dimension, value: Option<String>, c: &Counts) {
    add_session(sums, Some(dim), value.clone(), c);
    add_event(sums, Some(dim), value, c, c.pageviews);
}

/// How an import shares the database with a running `serve`, whose writer
/// waits at most 5 seconds for it (`store::schema`'s busy timeout) before
/// its events are answered 503.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// The import pauses once its transactions held the database this long
    /// since its last pause, and a transaction is committed when that is
    /// reached (between two visitors: a visitor's visits of a day are
    /// written together).
    pub hold: Duration,
    /// How long it pauses: longer than SQLite's longest sleep between two
    /// tries of a waiting writer (100 ms), so a waiting `serve` gets its turn.
    pub pause: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            hold: Duration::from_millis(500),
            pause: Duration::from_millis(150),
        }
    }
}

/// Paces an import's transactions ([`Pacing`]).
pub(crate) struct Pacer {
    pacing: Pacing,
    /// How long its transactions held the database since its last pause.
    held: Duration,
}

impl Pacer {
    pub(crate) fn new(pacing: Pacing) -> Self {
        Self {
            pacing,
            held: Duration::ZERO,
        }
    }

    /// How long the next transaction may hold the database before the
    /// next pause is due.
    pub(crate) fn remaining(&self) -> Duration {
        self.pacing.hold.saturating_sub(self.held)
    }

    /// A transaction held the database `d` and committed: a pause when
    /// the ones since the last pause held it [`Pacing::hold`] in all.
    pub(crate) fn held(&mut self, d: Duration) {
        self.held += d;
        if self.held >= self.pacing.hold {
            std::thread::sleep(self.pacing.pause);
            self.held = Duration::ZERO;
        }
    }

    /// [`rollup::save_replacing`], paced: a day per transaction.
    pub(crate) fn save(
        &mut self,
        conn: &mut Connection,
        pending: &[Pending],
        replace: &std::collections::HashSet<Date>,
    ) -> rusqlite::Result<usize> {
        let mut saved = 0;
        for p in pending.chunks(1) {
            // (With the wait for `BEGIN`: more pauses, never fewer.)
            let began = Instant::now();
            saved += rollup::save_replacing(conn, p, replace)?;
            self.held(began.elapsed());
        }
        Ok(saved)
    }
}

/// Writes `export`'s days for `site` as rolled days, each in its own
/// transaction; days on or after the site's first own event (not an
/// import's) or not over at `now`, days before the site's retention period
/// (its own, else `retention_days`, serve's), days with stored events and
/// days rolled with anything in them are left out. A day rolled empty
/// (`serve` rolls those after an import of raw rows) is replaced.
pub fn write(
    conn: &mut Connection,
    site: &Site,
    export: Export,
    now: jiff::Timestamp,
    retention_days: Option<u32>,
) -> Result<Imported, ImportError> {
    let kept_from = crate::retention::site_horizon(site, now, retention_days).map(|h| h.day);
    let first_native = rollup::own_first_day(conn, site)?;
    let mut done = Imported {
        days: 0,
        first: None,
        last: None,
        after_native: 0,
        past_retention: 0,
        already: 0,
        tables: export.tables,
    };
    let mut pending = Vec::new();
    let mut replace = std::collections::HashSet::new();
    for (day, sums) in export.days {
        // A day not over yet (Plausible's export ends today) would freeze
        // as rolled, and the site's own events of it would not count.
        let over = rollup::Day::new(day, &site.tz)
            .is_some_and(|d| d.end_ms + rollup::GRACE_MS <= now.as_millisecond());
        if first_native.is_some_and(|f| day >= f) || !over {
            done.after_native += 1;
            continue;
        }
        if kept_from.is_some_and(|k| day < k) {
            done.past_retention += 1;
            continue;
        }
        if rollup::has_events(conn, site, day)? {
            done.already += 1;
            continue;
        }
        if rollup::is_rolled_at_all(conn, site.id, day)? {
            if !rollup::is_rolled_empty(conn, site.id, day)? {
                done.already += 1;
                continue;
            }
            replace.insert(day);
        }
        done.first.get_or_insert(day);
        done.last = Some(day);
        done.days += 1;
        let mut sums = sums;
        sums.unplaced();
        pending.push(Pending::new(site.id, day, sums.events, sums.sessions));
    }
    Pacer::new(Pacing::default()).save(conn, &pending, &replace)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unplaced_is_what_named_regions_and_cities_leave_of_the_totals() {
        let counts = |visitors, visits, bounces| Counts {
            visitors,
            visits,
            pageviews: visits,
            bounces,
            duration_ms: 0,
            events: 0,
        };
        let mut day = DaySums::default();
        add_session(&mut day, None, None, &counts(10, 12, 3));
        add_event(&mut day, None, None, &counts(10, 12, 3), 15);
        let bavaria = Some("DE Bavaria".to_string());
        add_visit_dimension(&mut day, &Dimension::Region, bavaria, &counts(10, 11, 5));
        let munich = Some("DE Munich, Bavaria".to_string());
        add_visit_dimension(&mut day, &Dimension::City, munich, &counts(6, 6, 0));
        day.unplaced();
        let none = |dim: &Dimension| key(Some(dim), None);
        // Every visitor has a region: a visit and 3 events (not named by a
        // region row) are left, and no bounce beyond the visits.
        let region = &day.sessions[&none(&Dimension::Region)];
        assert_eq!((region.visitors, region.visits, region.bounces), (0, 1, 0));
        assert_eq!(day.events[&none(&Dimension::Region)].events, 4);
        let city = &day.sessions[&none(&Dimension::City)];
        assert_eq!((city.visitors, city.visits, city.bounces), (4, 6, 3));
        // Named rows that cover the day leave no row under no value.
        let mut day = DaySums::default();
        add_session(&mut day, None, None, &counts(2, 2, 0));
        add_event(&mut day, None, None, &counts(2, 2, 0), 2);
        let named = Some("DE Bavaria".to_string());
        add_visit_dimension(&mut day, &Dimension::Region, named, &counts(2, 2, 0));
        day.unplaced();
        assert!(!day.sessions.contains_key(&none(&Dimension::Region)));
        assert!(!day.events.contains_key(&none(&Dimension::Region)));
        // Without named rows, the totals.
        assert_eq!(day.sessions[&none(&Dimension::City)].visits, 2);
    }

    fn site() -> Site {
        Site {
            id: 1,
            domain: "example.com".into(),
            timezone: "UTC".into(),
            tz: jiff::tz::TimeZone::UTC,
            retention_days: None,
        }
    }

    proptest::proptest! {
        /// Any bytes in any of the export's files: read, or refused with an
        /// error naming the file; never a panic.
        #[test]
        fn any_file_content_reads_or_is_refused(
            table in proptest::sample::select(TABLES.to_vec()),
            header in proptest::sample::select(vec![
                "date,visitors,pageviews,bounces,visits,visit_duration",
                "date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,pageviews,visitors,visits,visit_duration,bounces",
                "date,name,link_url,path,visitors,events",
                "date,country,region,city,visitors,visits,visit_duration,bounces,pageviews",
                "date,browser,browser_version,visitors,visits,visit_duration,bounces,pageviews",
                "",
            ]),
            rows in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::strategy::Just("2024-02-29".to_string()),
                        proptest::strategy::Just("9223372036854775807".to_string()),
                        "[0-9]{0,13}",
                        ".{0,12}",
                    ],
                    0..14,
                ),
                0..6,
            ),
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let name = format!("imported_{table}_20240101_20241231.csv");
            let mut text = format!("{header}\n");
            for r in &rows {
                text.push_str(&r.join(","));
                text.push('\n');
            }
            for bytes in [text.into_bytes(), raw] {
                let files = vec![(name.clone(), bytes)];
                if let Err(e) = parse(&site(), &files) {
                    let e = e.to_string();
                    proptest::prop_assert!(
                        e.contains(&name) || e.starts_with("no imported_visitors"),
                        "{}",
                        e
                    );
                }
            }
        }
    }

    /// Plausible's own test export (quoted names and values, columns in
    /// another order, a byte order mark): read by name.
    #[test]
    fn quoted_reordered_columns_are_read_by_name() {
        let files = vec![
            (
                "imported_visitors_20211230_20211231.csv".to_string(),
                b"\xef\xbb\xbf\"date\",\"visitors\",\"pageviews\",\"bounces\",\"visits\",\"visit_duration\"\n\"2021-12-30\",5,50,2,7,8640\n".to_vec(),
            ),
            (
                "imported_entry_pages_20211230_20211231.csv".to_string(),
                b"\"date\",\"visitors\",\"entrances\",\"visit_duration\",\"bounces\",\"entry_page\"\n\"2021-12-30\",6,6,0,6,\"/a\"\n\"2021-12-30\",2,3,40,1,\"/a\"\n".to_vec(),
            ),
        ];
        let export = parse(&site(), &files).unwrap();
        let day = export.days[&jiff::civil::date(2021, 12, 30)]
            .sessions
            .clone();
        let totals = &day[&(String::new(), None)];
        assert_eq!(
            (
                totals.visitors,
                totals.visits,
                totals.pageviews,
                totals.bounces,
                totals.duration_ms
            ),
            (5, 7, 50, 2, 8_640_000)
        );
        let entry = &day[&("entry_page".to_string(), Some("/a".to_string()))];
        assert_eq!(
            (
                entry.visitors,
                entry.visits,
                entry.bounces,
                entry.duration_ms
            ),
            (8, 9, 7, 40_000)
        );
    }

    #[test]
    fn export_file_names_name_their_table() {
        for (name, table) in [
            ("imported_visitors_20240101_20241231.csv", Some("visitors")),
            (
                "plausible/imported_sources_20240101_20241231.csv",
                Some("sources"),
            ),
            (
                "operating_systems_20240101_20241231.csv",
                Some("operating_systems"),
            ),
            (
                "export.zip:imported_pages_20240101_20241231.csv",
                Some("pages"),
            ),
            (
                "/x/export.zip:y/imported_devices_20240101_20241231.csv",
                Some("devices"),
            ),
            (
                "imported_entry_pages_20240101_20241231.csv",
                Some("entry_pages"),
            ),
            ("imported_visitors_2024010_20241231.csv", None),
            ("imported_visitors.csv", None),
            ("imported_cities_20240101_20241231.csv", None),
            ("imported_visitors_20240101_20241231.txt", None),
        ] {
            assert_eq!(table_of(name), table, "{name}");
        }
    }
}
