//! Raw rows of another tool's export (GoatCounter's, Umami's), read into
//! [`Hit`]s by their own modules, written as the site's own events and
//! visits: each export session's hits in time order, split into visits by
//! core's session state machine after `serve`'s session timeout, with a
//! daily visitor id (a hash of the export's session id and the visit's
//! first local day under a random key, used for one import only and then
//! dropped), so every answer covers the imported days as the site's own.
//!
//! Which days: as for Plausible's export (`super::write`): whole days that
//! are over, before the site's own first event (one no import wrote),
//! within its retention period, with no stored event and not rolled up
//! with anything in it (a day rolled empty is replaced); rows on other days
//! are left out, so importing the same file again adds nothing. (A stopped
//! import run again writes the rest of its own days, decided as when it
//! began.) The visits
//! are written in transactions of about half a second at most (a day in
//! parts, between two visitors: `serve` waits at most 5 seconds for the
//! database), newest day first, with pauses for `serve` to take its turn
//! ([`Pacing`]), while the site
//! is marked (`import_marks`): `serve` rolls up none of its days until the
//! import is done, and an import that stopped part-way is completed by
//! running it again. The visits are queued for ClickHouse's copy
//! (`visit_backlog`), which passed their days long ago.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::time::Instant;

use jiff::Timestamp;
use jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use tallymark_core::session::{self, SessionConfig};
use tallymark_core::useragent::{Device, IPAD_AS_MAC_BELOW, Os, OsVersion};
use tallymark_core::wire::{Kind, MAX_URL_BYTES, Revenue};

use super::{ImportError, Pacing};
use crate::sites::Site;
use crate::stats::rollup;
use crate::store::{Dimensions, EventRow, SessionRow, rows};

/// How many unreadable rows are named in the report (all are counted).
const SKIPPED_SHOWN: usize = 10;

/// One pageview or custom event of an export, as Tallymark stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub ts_ms: i64,
    /// The export's own visitor or session id, whatever its lifetime (a row
    /// without one is a visitor of its own).
    pub session: String,
    pub kind: Kind,
    /// A custom event's name.
    pub name: Option<String>,
    /// The page (normalised path); `None` for an event sent from no known
    /// page: the last page viewed in its session, else `/`.
    pub page: Option<String>,
    /// The page's host; `None`: the site's domain.
    pub hostname: Option<String>,
    /// The visit's dimensions when this hit starts one.
    pub dims: Dimensions,
    pub screen_width: Option<u32>,
    /// A custom event's properties (as stored: a JSON object) and revenue.
    pub data: Option<Box<EventData>>,
}

/// What a custom event carries besides its name.
#[derive(Debug, Clone, PartialEq)]
pub struct EventData {
    /// A JSON object, as `serve` stores props; `None`: none.
    pub props: Option<String>,
    pub revenue: Option<Revenue>,
}

/// Strings of one import (pages, event names, hosts, export sessions),
/// each kept once: an export repeats them on every row.
#[derive(Debug, Default)]
struct Pool {
    strings: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
}

/// No string.
const NONE: u32 = u32::MAX;

impl Pool {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        // Past 4 billion strings (never in practice) they share the last id:
        // never `NONE`.
        let id = u32::try_from(self.strings.len())
            .ok()
            .filter(|id| *id < NONE - 1)
            .unwrap_or(NONE - 1);
        self.strings.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(NONE, |s| self.id(s))
    }

    fn get(&self, id: u32) -> Option<&str> {
        self.strings.get(id as usize).map(|s| &**s)
    }
}

/// A hit as kept until it is written: its strings and dimensions by id
/// (40 bytes, where a [`Hit`] is 500 and more).
#[derive(Debug, Clone, Copy)]
pub(super) struct Packed {
    ts_ms: i64,
    /// [`NONE`]: no session, a visitor of its own.
    session: u32,
    kind: Kind,
    name: u32,
    page: u32,
    hostname: u32,
    dims: u32,
    /// 0: none.
    screen_width: u32,
    /// Its [`EventData`]: an index into [`Hits::data`], [`NONE`]: none.
    data: u32,
}

// A million rows in 40 MB: a field more must fit the padding.
const _: () = assert!(std::mem::size_of::<Packed>() == 40);

impl Packed {
    /// What tells two hits of two exports apart.
    fn key(&self) -> (u32, i64, Kind, u32, u32) {
        (self.session, self.ts_ms, self.kind, self.name, self.page)
    }
}

/// The rows of an export, packed (one import of millions of rows stays in
/// a few hundred megabytes).
#[derive(Debug, Default)]
pub struct Hits {
    packed: Vec<Packed>,
    strings: Pool,
    dims: Vec<Dimensions>,
    dim_ids: HashMap<Dimensions, u32>,
    /// Custom events' data: props by string id, and revenue.
    data: Vec<(u32, Option<Revenue>)>,
    /// Rows left out as no visitor's: bots (GoatCounter), Umami's link,
    /// pixel and performance events.
    pub bots: usize,
    /// Rows that could not be read, and the first few of them (line, why).
    pub skipped: usize,
    pub skipped_lines: Vec<(u64, String)>,
    /// SHA-256 of the export's text (unpacked): the same export given twice
    /// (gzipped and not) is refused. After [`Hits::append`], a digest of
    /// the exports' digests in their order.
    pub digest: [u8; 32],
}

impl Hits {
    /// Rows read.
    pub fn len(&self) -> usize {
        self.packed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// Keeps `hit`.
    pub fn push(&mut self, hit: Hit) {
        let packed = self.pack(&hit);
        self.packed.push(packed);
    }

    fn pack(&mut self, hit: &Hit) -> Packed {
        let dims = match self.dim_ids.get(&hit.dims) {
            Some(id) => *id,
            None => {
                let id = u32::try_from(self.dims.len())
                    .ok()
                    .filter(|id| *id < NONE - 1)
                    .unwrap_or(NONE - 1);
                self.dims.push(hit.dims.clone());
                self.dim_ids.insert(hit.dims.clone(), id);
                id
            }
        };
        Packed {
            ts_ms: hit.ts_ms,
            session: if hit.session.is_empty() {
                NONE
            } else {
                self.strings.id(&hit.session)
            },
            kind: hit.kind,
            name: self.strings.opt(hit.name.as_deref()),
            page: self.strings.opt(hit.page.as_deref()),
            hostname: self.strings.opt(hit.hostname.as_deref()),
            dims,
            screen_width: hit.screen_width.unwrap_or(0),
            data: match &hit.data {
                Some(d) => {
                    let props = self.strings.opt(d.props.as_deref());
                    self.data.push((props, d.revenue.clone()));
                    u32::try_from(self.data.len() - 1)
                        .ok()
                        .filter(|id| *id < NONE)
                        .unwrap_or(NONE)
                }
                None => NONE,
            },
        }
    }

    /// The data of a packed hit.
    fn data_of(&self, p: &Packed) -> Option<EventData> {
        let (props, revenue) = self.data.get(p.data as usize)?;
        Some(EventData {
            props: self.strings.get(*props).map(str::to_string),
            revenue: revenue.clone(),
        })
    }

    /// The hit `p` stands for.
    fn unpack(&self, p: &Packed) -> Hit {
        let text = |id: u32| self.strings.get(id).map(str::to_string);
        Hit {
            ts_ms: p.ts_ms,
            session: text(p.session).unwrap_or_default(),
            kind: p.kind,
            name: text(p.name),
            page: text(p.page),
            hostname: text(p.hostname),
            dims: self
                .dims
                .get(p.dims as usize)
                .cloned()
                .unwrap_or_else(no_dims),
            screen_width: (p.screen_width > 0).then_some(p.screen_width),
            data: self.data_of(p).map(Box::new),
        }
    }

    /// Every hit, unpacked.
    pub fn all(&self) -> Vec<Hit> {
        self.packed.iter().map(|p| self.unpack(p)).collect()
    }

    /// Adds another export's rows (several files of one site), but for
    /// those the rows already here hold (overlapping exports): how many
    /// were left out so.
    pub fn append(&mut self, other: Hits) -> usize {
        if self.packed.is_empty() && self.strings.strings.is_empty() {
            // The first export: taken as it is.
            *self = other;
            return 0;
        }
        let seen: std::collections::HashSet<(u32, i64, Kind, u32, u32)> =
            self.packed.iter().map(Packed::key).collect();
        let mut overlap = 0;
        for p in &other.packed {
            let packed = self.pack(&other.unpack(p));
            if packed.session != NONE && seen.contains(&packed.key()) {
                overlap += 1;
            } else {
                self.packed.push(packed);
            }
        }
        self.digest = Sha256::new()
            .chain_update(self.digest)
            .chain_update(other.digest)
            .finalize()
            .into();
        self.bots += other.bots;
        self.skipped += other.skipped;
        let room = SKIPPED_SHOWN.saturating_sub(self.skipped_lines.len());
        self.skipped_lines
            .extend(other.skipped_lines.into_iter().take(room));
        overlap
    }
}

/// The dimensions of nothing known (a packed hit's id is always in its
/// table; tests build hits with them).
fn no_dims() -> Dimensions {
    Dimensions {
        referrer: None,
        referrer_domain: None,
        source: None,
        channel: tallymark_core::source::Channel::Direct,
        utm_source: None,
        utm_medium: None,
        utm_campaign: None,
        utm_term: None,
        utm_content: None,
        click_id: None,
        country: None,
        region: None,
        city: None,
        browser: tallymark_core::useragent::Browser::Unknown,
        browser_major: None,
        os: Os::Unknown,
        os_version: None,
        device: Device::Unknown,
    }
}

/// The largest export read, unpacked.
const MAX_BYTES: u64 = 16 << 30;

/// `bytes`' first `n` bytes, gunzipped when gzipped (a file's first line,
/// to tell which export it is).
pub(super) fn head(bytes: &[u8], n: u64) -> String {
    let mut head = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let _ = flate2::read::MultiGzDecoder::new(bytes)
            .take(n)
            .read_to_end(&mut head);
    } else {
        head.extend(bytes.iter().take(usize::try_from(n).unwrap_or(usize::MAX)));
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The export's text, read from `bytes` (gunzipped when gzipped) as the
/// CSV reader asks for it, never whole in memory, and hashed on the way
/// (the same export given twice is refused).
pub(super) struct Unpacked<'a> {
    inner: Box<dyn Read + 'a>,
    sha: Sha256,
    read: u64,
}

impl<'a> Unpacked<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        let inner: Box<dyn Read + 'a> = if bytes.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(bytes))
        } else {
            Box::new(bytes)
        };
        Unpacked {
            inner,
            sha: Sha256::new(),
            read: 0,
        }
    }

    /// SHA-256 of the text read.
    pub(super) fn digest(self) -> [u8; 32] {
        self.sha.finalize().into()
    }
}

impl Read for Unpacked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > MAX_BYTES {
            return Err(std::io::Error::other(format!(
                "unpacks to more than {MAX_BYTES} bytes"
            )));
        }
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

/// What one row is.
pub(super) enum Row {
    Hit(Box<Hit>),
    /// No visitor's: a bot (GoatCounter), a link, pixel or performance
    /// event (Umami).
    LeftOut,
}

/// Reads every row of `reader` into `out` with `row`: a row it cannot read
/// (a broken quote, invalid UTF-8, a field `row` refuses) is counted and
/// left out, with its line; empty rows are skipped; only a read error
/// stops it.
pub(super) fn read_rows<R: std::io::Read>(
    name: &str,
    reader: &mut csv::Reader<R>,
    out: &mut Hits,
    mut row: impl FnMut(&csv::StringRecord) -> Result<Row, String>,
) -> Result<(), ImportError> {
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                // An I/O error (a broken gzip, past the size limit) has no
                // position of its own: where the reader got to.
                let line = e
                    .position()
                    .map_or_else(|| reader.position().line(), |p| p.line());
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(ImportError::Csv {
                        file: name.to_string(),
                        line,
                        message: e.to_string(),
                    });
                }
                skip(out, line, e.to_string());
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        match row(&record) {
            Ok(Row::Hit(hit)) => out.push(*hit),
            Ok(Row::LeftOut) => out.bots += 1,
            Err(why) => skip(out, line, why),
        }
    }
}

pub(super) fn skip(out: &mut Hits, line: u64, why: String) {
    out.skipped += 1;
    if out.skipped_lines.len() < SKIPPED_SHOWN {
        out.skipped_lines.push((line, why));
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub(super) fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// RFC 3339 (`2020-12-01T00:07:10Z`, `2020-12-01 00:07:10.123+00`), or
/// SQL's `2020-12-01 00:07:10` (UTC), as databases write it; from 2000 on
/// (GoatCounter is from 2019, Umami from 2020; Go's zero time, year 1, is
/// no date).
pub(super) fn timestamp(s: &str) -> Option<i64> {
    const Y2K_MS: i64 = 946_684_800_000;
    let ms = match s.parse::<Timestamp>() {
        Ok(t) => t.as_millisecond(),
        Err(_) => {
            let civil = s.strip_suffix(" UTC").unwrap_or(s);
            let dt = civil
                .replace(' ', "T")
                .parse::<jiff::civil::DateTime>()
                .ok()?;
            jiff::tz::TimeZone::UTC
                .to_timestamp(dt)
                .ok()?
                .as_millisecond()
        }
    };
    (ms >= Y2K_MS).then_some(ms)
}

/// The page `path` on `host` as a URL; `None` for a path that makes no URL.
pub(super) fn page_url(host: &str, path: &str) -> Option<url::Url> {
    let path = truncate(path.trim(), MAX_URL_BYTES);
    let slash = if path.starts_with('/') { "" } else { "/" };
    url::Url::parse(&format!("https://{host}{slash}{path}")).ok()
}

/// The OS, its version and the device class as core reads them with a
/// screen width (`useragent::parse`): a macOS narrower than
/// [`IPAD_AS_MAC_BELOW`] is an iPad asking for the desktop site, and a
/// phone or tablet OS is never a laptop or desktop; without a width, the
/// export's own class (`fallback`), else one from the OS.
pub(super) fn device_of(
    os: Os,
    version: Option<OsVersion>,
    width: Option<u32>,
    fallback: Option<Device>,
) -> (Os, Option<OsVersion>, Device) {
    if os == Os::MacOs && width.is_some_and(|w| w < IPAD_AS_MAC_BELOW) {
        let by_width = width.map_or(Device::Tablet, Device::from_screen_width);
        let device = match by_width {
            Device::Laptop | Device::Desktop => Device::Tablet,
            d => d,
        };
        return (Os::Ios, None, device);
    }
    let mobile_os = matches!(os, Os::Ios | Os::Android);
    let device = match width.map(Device::from_screen_width) {
        Some(Device::Laptop | Device::Desktop) if mobile_os => Device::Tablet,
        Some(d) => d,
        None => match fallback {
            Some(d) => d,
            None if mobile_os => Device::Mobile,
            None if matches!(os, Os::Windows | Os::MacOs | Os::Linux | Os::ChromeOs) => {
                Device::Desktop
            }
            None => Device::Unknown,
        },
    };
    (os, version, device)
}

/// What an import of raw rows wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Written {
    /// Days with a visit written, and the first and last of them.
    pub days: usize,
    pub first: Option<Date>,
    pub last: Option<Date>,
    pub visits: usize,
    pub pageviews: usize,
    pub events: usize,
    /// Hits left out: on or after the site's own first event, or on a day
    /// not over yet.
    pub after_native: usize,
    /// Hits left out: before the site's retention period.
    pub past_retention: usize,
    /// Hits left out: on a day with stored events or rolled with anything
    /// in it (imported before), or of visits a stopped import wrote.
    pub already: usize,
    /// Day rollups written afterwards.
    pub rolled: usize,
}

/// One visit to write, its strings still by id ([`Visit::rows`] makes its
/// rows when its day is written).
pub(super) struct Visit {
    visitor_id: i64,
    /// Its hits so far (the session row's version).
    version: i64,
    session: session::Session,
    dims: u32,
    events: Vec<Packed>,
}

impl Visit {
    /// The visit's session row and its events' rows, as stored.
    pub(super) fn rows(&self, site: &Site, hits: &Hits) -> (SessionRow, Vec<EventRow>) {
        let dims = hits
            .dims
            .get(self.dims as usize)
            .cloned()
            .unwrap_or_else(no_dims);
        let s = &self.session;
        let row = SessionRow {
            id: 0,
            site_id: site.id,
            visitor_id: self.visitor_id,
            version: self.version,
            started_ms: s.started_ms,
            last_ms: s.last_ms,
            entry_path: s.entry_path.clone(),
            exit_path: s.exit_path.clone(),
            pageviews: i64::from(s.pageviews),
            events: i64::from(s.events),
            interactions: i64::from(s.interactions),
            dims: dims.clone(),
        };
        let text = |id: u32| hits.strings.get(id).map(str::to_string);
        let events = self
            .events
            .iter()
            .map(|e| {
                (
                    e,
                    hits.data_of(e).unwrap_or(EventData {
                        props: None,
                        revenue: None,
                    }),
                )
            })
            .map(|(e, data)| EventRow {
                site_id: site.id,
                ts_ms: e.ts_ms,
                kind: if e.kind == Kind::Pageview {
                    "pageview"
                } else {
                    "event"
                },
                name: text(e.name),
                visitor_id: self.visitor_id,
                session_id: 0,
                hostname: text(e.hostname).unwrap_or_else(|| site.domain.clone()),
                path: text(e.page).unwrap_or_else(|| "/".into()),
                dims: dims.clone(),
                screen_width: (e.screen_width > 0).then_some(e.screen_width),
                props: data.props,
                revenue_amount: data.revenue.as_ref().map(|r| r.amount),
                revenue_currency: data.revenue.map(|r| r.currency),
                event_id: None,
            })
            .collect();
        (row, events)
    }
}

/// Where a stopped import was (`import_marks`).
struct Mark {
    first_native: Option<Date>,
    timeout_ms: i64,
    /// The oldest day written, and how many of its visits (in the order
    /// [`visits`] gives them); `None`: marked before parts were recorded.
    partial: Option<(Date, usize)>,
    /// What it read ([`Hits::digest`]): the order holds for the same files.
    export: Option<Vec<u8>>,
    /// When it began, and the oldest day it kept (retention): which days
    /// it took is decided as then.
    began_ms: Option<i64>,
    kept_from: Option<Date>,
}

/// Writes `hits` into `site` (see the module docs for which days), then
/// rolls up the days written. `timeout_ms`: `serve`'s session timeout.
///
/// While it writes, the site is marked (`import_marks`, with the first day
/// of the site's own events then): `serve` rolls up none of its days, which
/// the import's visits crossing midnight may still add to. A day is written
/// in parts when it takes long ([`Pacing`]), and the mark records how far
/// the oldest day written got. An import that stopped part-way leaves the
/// mark; run again with the same files, it keeps the mark's first day and
/// writes the rest of that day and the visits that start before it. (With
/// other files, the partly written day is left as it is: which of its
/// visits were written is known only by their order in the files.)
pub fn write(
    conn: &mut Connection,
    site: &Site,
    mut hits: Hits,
    now: Timestamp,
    retention_days: Option<u32>,
    timeout_ms: i64,
    pacing: Pacing,
) -> Result<Written, ImportError> {
    let mut done = Written::default();
    // The first day of the site's events: its own, or the first written by
    // an import that stopped part-way.
    let first_event = rollup::first_event_day(conn, site)?;
    let day_of = |s: Option<String>| s.and_then(|d| d.parse::<Date>().ok());
    let marked: Option<Mark> = conn
        .query_row(
            "SELECT first_native, timeout_ms, partial_day, partial_done, export, began_ms,
                 kept_from
             FROM import_marks WHERE site_id = ?1",
            [site.id],
            |r| {
                let partial_day: Option<String> = r.get(2)?;
                let done: i64 = r.get(3)?;
                Ok(Mark {
                    first_native: day_of(r.get(0)?),
                    timeout_ms: r.get(1)?,
                    partial: day_of(partial_day).map(|d| (d, usize::try_from(done).unwrap_or(0))),
                    export: r.get(4)?,
                    began_ms: r.get(5)?,
                    kept_from: day_of(r.get(6)?),
                })
            },
        )
        .optional()?;
    let first_native = match &marked {
        Some(m) if m.timeout_ms != timeout_ms => {
            return Err(ImportError::Resumed {
                site: site.domain.clone(),
                minutes: m.timeout_ms / 60_000,
            });
        }
        Some(Mark {
            first_native: Some(day),
            ..
        }) => Some(*day),
        // The site's own: of visits no import wrote, so a later export may
        // fill the days between an earlier one and the site's own (also
        // when a stopped import began before the site had events).
        _ => rollup::own_first_day(conn, site)?,
    };
    // A stopped import's days from the oldest it wrote (`written_from`) on:
    // the rest of its partly written day, when it read these files (in
    // their order: `skip`); days it wrote whole are left as they are.
    let (written_from, skip) = match &marked {
        None => (None, None),
        Some(Mark {
            partial: Some((day, n)),
            export: Some(export),
            ..
        }) if export.as_slice() == hits.digest.as_slice() => (Some(*day), Some((*day, *n))),
        Some(Mark {
            partial: Some((day, _)),
            ..
        }) => (Some(*day), None),
        // A mark of an older version, which wrote whole days.
        Some(_) => (first_event, None),
    };
    // Which days it takes is decided as when it began (retention and the
    // days over move on): a resumed day's visits are the same, in the same
    // order.
    let began_ms = marked
        .as_ref()
        .and_then(|m| m.began_ms)
        .unwrap_or(now.as_millisecond());
    let began = Timestamp::from_millisecond(began_ms).unwrap_or(now);
    let kept_from = match &marked {
        Some(m) if m.began_ms.is_some() => m.kept_from,
        _ => crate::retention::site_horizon(site, began, retention_days).map(|h| h.day),
    };
    let mut written: HashSet<Date> = HashSet::new();
    let mut day_ok: HashMap<Date, Result<(), Left>> = HashMap::new();
    let mut kept = Vec::with_capacity(hits.len());
    for hit in std::mem::take(&mut hits.packed) {
        let Ok(ts) = Timestamp::from_millisecond(hit.ts_ms) else {
            done.after_native += 1;
            continue;
        };
        let day = ts.to_zoned_datetime(site.tz.clone()).date();
        let verdict = match day_ok.get(&day) {
            Some(v) => *v,
            None => {
                let over = rollup::Day::new(day, &site.tz)
                    .is_some_and(|d| d.end_ms + rollup::GRACE_MS <= began_ms);
                let rolled = rollup::is_rolled_at_all(conn, site.id, day)?
                    // Rolled with nothing in it (`serve` rolls the days after
                    // an earlier import's): its sums are replaced.
                    && !rollup::is_rolled_empty(conn, site.id, day)?;
                let v = if first_native.is_some_and(|f| day >= f) || !over {
                    Err(Left::AfterNative)
                } else if kept_from.is_some_and(|k| day < k) {
                    Err(Left::PastRetention)
                } else if skip.is_some_and(|(partial, _)| partial == day) {
                    // Its first visits are skipped below.
                    Ok(())
                } else if rolled {
                    Err(Left::Already)
                } else if rollup::has_events(conn, site, day)? {
                    if written_from.is_some_and(|w| day >= w) {
                        // Written by the stopped import (not rolled: marked):
                        // its hits stay, for the rest of the visits that
                        // reach into it from the day before; visits starting
                        // on it are skipped below.
                        written.insert(day);
                        Ok(())
                    } else {
                        Err(Left::Already)
                    }
                } else {
                    Ok(())
                };
                day_ok.insert(day, v);
                v
            }
        };
        match verdict {
            Ok(()) => kept.push((day, hit)),
            Err(Left::AfterNative) => done.after_native += 1,
            Err(Left::PastRetention) => done.past_retention += 1,
            Err(Left::Already) => done.already += 1,
        }
    }
    // Nothing more is packed: the lookups go (the strings stay).
    hits.strings.ids = HashMap::new();
    hits.dim_ids = HashMap::new();
    let visits = visits(&hits, kept, timeout_ms)?;
    let mut writer = Writer {
        pacer: super::Pacer::new(pacing),
        marked: marked.is_some(),
        site,
        first_native,
        timeout_ms,
        export: hits.digest,
        began_ms,
        kept_from,
        checked: HashSet::new(),
    };
    for (day, visits) in visits.into_iter().rev() {
        let from = match skip {
            Some((partial, n)) if partial == day => n.min(visits.len()),
            _ if written.contains(&day) => visits.len(),
            _ => 0,
        };
        done.already += visits[..from].iter().map(|v| v.events.len()).sum::<usize>();
        if from == visits.len() {
            continue;
        }
        writer.day(conn, day, from, &visits, &hits, &mut done)?;
        done.days += 1;
        done.last.get_or_insert(day);
        done.first = Some(day);
    }
    // Every visit is written: `serve` may roll the days up again. They are
    // rolled now rather than by its next full round (within 5 minutes;
    // answers meanwhile are exact, only slower); the site's own days are
    // left to `serve`, whose session timeout decides when they are over.
    conn.execute("DELETE FROM import_marks WHERE site_id = ?1", [site.id])?;
    let kept_from_ms = crate::retention::site_horizon(site, now, retention_days).map(|h| h.from_ms);
    let mut pending = rollup::due(
        conn,
        site,
        now.as_millisecond(),
        timeout_ms,
        usize::MAX,
        true,
        kept_from_ms,
    )?;
    pending.retain(|p| first_native.is_none_or(|f| p.day < f));
    done.rolled = writer.pacer.save(conn, &pending, &HashSet::new())?;
    Ok(done)
}

/// Writes an import's days, in transactions of at most about
/// [`Pacing::hold`] each.
struct Writer<'a> {
    pacer: super::Pacer,
    /// Whether the site is marked yet.
    marked: bool,
    site: &'a Site,
    first_native: Option<Date>,
    timeout_ms: i64,
    export: [u8; 32],
    began_ms: i64,
    kept_from: Option<Date>,
    /// Days its events were written into, whose sums (when rolled empty)
    /// were dropped in the same transaction.
    checked: HashSet<Date>,
}

impl Writer<'_> {
    /// Writes `visits[from..]`, the visits starting on `day`, and records
    /// how far it got with each commit. A day rolled up empty that an event
    /// is written into (also past midnight) loses its sums in the same
    /// transaction (it is rolled again after).
    fn day(
        &mut self,
        conn: &mut Connection,
        day: Date,
        from: usize,
        visits: &[Visit],
        hits: &Hits,
        done: &mut Written,
    ) -> Result<(), ImportError> {
        let mut next = from;
        let day_end_ms = rollup::Day::new(day, &self.site.tz).map_or(i64::MAX, |d| d.end_ms);
        while next < visits.len() {
            // Immediate: it reads (ids) before it writes, beside `serve`'s
            // writer.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Held from here (the wait for `serve`'s batch is not).
            let began = Instant::now();
            if !self.marked {
                // With the first visits written, not before: an import that
                // writes nothing, or fails before it writes, leaves no mark.
                tx.execute(
                    "INSERT INTO import_marks (site_id, first_native, timeout_ms, export, began_ms,
                         kept_from)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![
                        self.site.id,
                        self.first_native.map(|d| d.to_string()),
                        self.timeout_ms,
                        self.export.as_slice(),
                        self.began_ms,
                        self.kept_from.map(|d| d.to_string())
                    ],
                )?;
                self.marked = true;
            }
            self.replace(&tx, day)?;
            let mut next_event = rows::next_event_id(&tx)?;
            let first = next;
            while let Some(visit) = visits.get(next) {
                // A visitor's visits of the day go together: an import run
                // again has another key, so another visitor id.
                let other_visitor = next > first
                    && visits
                        .get(next - 1)
                        .is_some_and(|before| before.visitor_id != visit.visitor_id);
                if other_visitor && began.elapsed() >= self.pacer.remaining() {
                    break;
                }
                if visit.session.last_ms >= day_end_ms {
                    for e in &visit.events {
                        if e.ts_ms >= day_end_ms
                            && let Ok(t) = Timestamp::from_millisecond(e.ts_ms)
                        {
                            self.replace(&tx, t.to_zoned_datetime(self.site.tz.clone()).date())?;
                        }
                    }
                }
                let (mut row, events) = visit.rows(self.site, hits);
                row.id = free_session_id(&tx, row.started_ms)?;
                rows::upsert_session(&tx, &row)?;
                tx.prepare_cached("INSERT INTO visit_backlog (session_id) VALUES (?1)")?
                    .execute([row.id])?;
                for mut event in events {
                    event.session_id = row.id;
                    rows::insert_event(&tx, &event, Some(next_event))?;
                    next_event += 1;
                    match event.kind {
                        "pageview" => done.pageviews += 1,
                        _ => done.events += 1,
                    }
                }
                done.visits += 1;
                next += 1;
            }
            // (With this run's files: the order is theirs.)
            tx.execute(
                "UPDATE import_marks SET partial_day = ?2, partial_done = ?3, export = ?4
                 WHERE site_id = ?1",
                rusqlite::params![
                    self.site.id,
                    day.to_string(),
                    i64::try_from(next).unwrap_or(i64::MAX),
                    self.export.as_slice()
                ],
            )?;
            tx.commit()?;
            // `serve`'s writer, waiting meanwhile, gets its turn.
            self.pacer.held(began.elapsed());
        }
        Ok(())
    }

    /// Drops `day`'s sums in `tx` when it was rolled up empty (once a run).
    fn replace(&mut self, tx: &rusqlite::Transaction<'_>, day: Date) -> rusqlite::Result<()> {
        if self.checked.insert(day)
            && rollup::is_rolled_at_all(tx, self.site.id, day)?
            && rollup::is_rolled_empty(tx, self.site.id, day)?
        {
            rollup::forget_day(tx, self.site.id, day)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Left {
    AfterNative,
    PastRetention,
    Already,
}

/// Session ids of imported visits: from their start's millisecond, as
/// `serve`'s (`sessions::SessionIds`), in the upper half of its sequence
/// (which `serve` fills from the bottom), skipping any already stored.
fn free_session_id(tx: &rusqlite::Transaction<'_>, started_ms: i64) -> rusqlite::Result<i64> {
    let bits = crate::sessions::ID_SEQUENCE_BITS;
    let mut id = (started_ms.max(0) << bits) | (1 << (bits - 1));
    let mut stmt = tx.prepare_cached("SELECT 1 FROM sessions WHERE id = ?1")?;
    while stmt.query_row([id], |_| Ok(())).optional()?.is_some() {
        id += 1;
    }
    Ok(id)
}

/// The hits as visits, by the local day each started on: each export
/// session's hits in time order, split by core's state machine after
/// `timeout_ms` without a hit.
pub(super) fn visits(
    hits: &Hits,
    mut kept: Vec<(Date, Packed)>,
    timeout_ms: i64,
) -> Result<BTreeMap<Date, Vec<Visit>>, ImportError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| ImportError::Io {
        path: "the random key".into(),
        source: std::io::Error::other(e),
    })?;
    // Each session's hits together, in time order (a row without a session
    // is a group of its own).
    kept.sort_by_key(|(_, h)| (h.session, h.ts_ms));
    let config = SessionConfig { timeout_ms };
    let mut out: BTreeMap<Date, Vec<Visit>> = BTreeMap::new();
    let mut current: Option<(Date, Visit)> = None;
    let mut page = NONE;
    let mut group = (NONE, 0usize);
    for (n, (day, hit)) in kept.into_iter().enumerate() {
        let same_group = hit.session != NONE && hit.session == group.0;
        if !same_group {
            if let Some((started, visit)) = current.take() {
                out.entry(started).or_default().push(visit);
            }
            page = NONE;
            group = (hit.session, n);
        }
        let path = hits
            .strings
            .get(if hit.page != NONE { hit.page } else { page })
            .unwrap_or("/");
        let (s, transition) = session::step(
            current.as_ref().map(|(_, v)| v.session.clone()),
            session::Hit {
                kind: hit.kind,
                path,
                interactive: true,
            },
            hit.ts_ms,
            &config,
            0,
        );
        if matches!(transition, session::Transition::Started { .. }) {
            if let Some((started, visit)) = current.take() {
                out.entry(started).or_default().push(visit);
            }
            let session = hits.strings.get(hit.session).unwrap_or_default();
            current = Some((
                day,
                Visit {
                    visitor_id: visitor_id(&key, session, group.1, day),
                    version: 0,
                    session: s.clone(),
                    dims: hit.dims,
                    events: Vec::new(),
                },
            ));
        }
        let Some((_, visit)) = current.as_mut() else {
            continue;
        };
        visit.session = s;
        visit.version += 1;
        let mut event = hit;
        if event.page == NONE {
            event.page = page;
        }
        if event.kind == Kind::Pageview {
            page = event.page;
        }
        visit.events.push(event);
    }
    if let Some((started, visit)) = current {
        out.entry(started).or_default().push(visit);
    }
    Ok(out)
}

/// A visit's visitor id: its export session on the local day the
/// visit started, under this import's random key (a row without a session
/// is a visitor of its own: `n`, its group).
fn visitor_id(key: &[u8; 32], session: &str, n: usize, day: Date) -> i64 {
    let mut h = Sha256::new();
    h.update(key);
    if session.is_empty() {
        h.update(b"\x00alone");
        h.update((n as u64).to_le_bytes());
    } else {
        h.update(b"\x01session");
        h.update(session.as_bytes());
    }
    h.update(day.to_string().as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first) as i64
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A visit's rows, as written.
    pub(in crate::import) struct Rows {
        pub row: SessionRow,
        pub events: Vec<EventRow>,
    }

    /// `input`'s visits (each hit on its day) as their rows.
    pub(in crate::import) fn visit_rows(
        site: &Site,
        input: Vec<(Date, Hit)>,
        timeout_ms: i64,
    ) -> BTreeMap<Date, Vec<Rows>> {
        let mut hits = Hits::default();
        let kept = input
            .into_iter()
            .map(|(day, hit)| (day, hits.pack(&hit)))
            .collect();
        let out = visits(&hits, kept, timeout_ms).unwrap();
        out.into_iter()
            .map(|(day, visits)| {
                let rows = visits
                    .iter()
                    .map(|v| {
                        let (row, events) = v.rows(site, &hits);
                        Rows { row, events }
                    })
                    .collect();
                (day, rows)
            })
            .collect()
    }

    /// A page view of `session` at `ts_ms`.
    fn pageview(ts_ms: i64, session: &str, page: &str) -> Hit {
        Hit {
            ts_ms,
            session: session.into(),
            kind: Kind::Pageview,
            name: None,
            page: Some(page.into()),
            hostname: None,
            dims: no_dims(),
            screen_width: None,
            data: None,
        }
    }

    /// A database with the site `example.com` (UTC) and nothing else.
    fn empty_site() -> (tempfile::TempDir, Connection, Site) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::schema::open(&dir.path().join("db")).unwrap();
        let site = crate::sites::add(&conn, "example.com", "UTC", 0).unwrap();
        (dir, conn, site)
    }

    pub(in crate::import) fn site() -> Site {
        Site {
            id: 1,
            domain: "example.com".into(),
            timezone: "UTC".into(),
            tz: jiff::tz::TimeZone::UTC,
            retention_days: None,
        }
    }

    /// An import stopped in the middle of a day (a transaction per visitor
    /// here) writes the rest of that day when run again with the same
    /// files, each visit once; run with other files, it leaves that day as
    /// it is (which of its visits were written is known only by their order
    /// in the files) and writes the days before it.
    #[test]
    fn a_day_written_in_parts_is_resumed_with_the_same_files_only() {
        let pacing = Pacing {
            hold: std::time::Duration::ZERO,
            pause: std::time::Duration::ZERO,
        };
        let hits = |digest: u8| {
            let mut hits = Hits::default();
            // 2024-03-01 and 03-02 (UTC), three visitors each; 03-03 two.
            for (day, session) in [
                (0, "a"),
                (0, "b"),
                (0, "c"),
                (1, "d"),
                (1, "e"),
                (1, "f"),
                (2, "g"),
                (2, "h"),
            ] {
                for minute in [0, 1] {
                    hits.push(pageview(
                        1_709_287_200_000 + day * 86_400_000 + minute * 60_000,
                        session,
                        &format!("/{session}"),
                    ));
                }
            }
            hits.digest = [digest; 32];
            hits
        };
        let now: Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
        // Run again 20 days later, and with 10 days kept instead of 100:
        // 03-01 to 03-03 are past retention now, but were not when it began
        // (its days are decided as then, so the partly written day's visits
        // are the same).
        let later = now + jiff::SignedDuration::from_hours(20 * 24);
        let count = |conn: &Connection, sql: &str| -> i64 {
            conn.query_row(sql, [], |r| r.get(0)).unwrap()
        };
        // (Files, visits written, hits left out as written before.)
        for (again, visits, left) in [(1u8, 5, 6), (2, 3, 10)] {
            let (_dir, mut conn, site) = empty_site();
            conn.execute_batch(
                "CREATE TRIGGER stop BEFORE INSERT ON sessions
                 WHEN (SELECT COUNT(*) FROM visit_backlog) >= 3
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
            let stopped = write(&mut conn, &site, hits(1), now, Some(100), 1_800_000, pacing);
            assert!(stopped.is_err());
            let partial: (String, i64) = conn
                .query_row(
                    "SELECT partial_day, partial_done FROM import_marks",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(partial, ("2024-03-02".into(), 1));
            conn.execute_batch("DROP TRIGGER stop").unwrap();
            let done = write(
                &mut conn,
                &site,
                hits(again),
                later,
                Some(10),
                1_800_000,
                pacing,
            )
            .unwrap();
            assert_eq!(
                (done.visits, done.already, done.past_retention),
                (visits, left, 0),
                "{done:?}"
            );
            // Each visit once: 03-03's two, written before, are skipped
            // (with other files, 03-02's other two are never written).
            assert_eq!(
                count(&conn, "SELECT COUNT(*) FROM sessions"),
                3 + visits as i64
            );
            assert_eq!(
                count(&conn, "SELECT COUNT(DISTINCT path) FROM events"),
                3 + visits as i64
            );
            assert_eq!(count(&conn, "SELECT COUNT(*) FROM import_marks"), 0);
        }
    }

    /// A later import fills the days between an earlier one and the site's
    /// own first event, which `serve` rolled up empty meanwhile; it leaves
    /// out the days with events (the earlier import's) and from the site's
    /// own first day on. Days rolled from events, imported or not, are not
    /// "imported as daily totals" (the dashboard's note); a day with
    /// totals and no events is.
    #[test]
    fn a_later_import_fills_the_days_rolled_empty_before_the_sites_own() {
        let pacing = Pacing::default();
        // 2024-03-01 10:00 UTC, + days.
        let at = |day: i64| 1_709_287_200_000 + day * 86_400_000;
        let hits = |days: &[i64], digest: u8| {
            let mut hits = Hits::default();
            for &day in days {
                hits.push(pageview(at(day), &format!("s{day}"), &format!("/{day}")));
            }
            hits.digest = [digest; 32];
            hits
        };
        let now: Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
        let (_dir, mut conn, site) = empty_site();
        // `serve`'s rollup job, as of `now`.
        let due = |conn: &Connection| {
            rollup::due(
                conn,
                &site,
                now.as_millisecond(),
                1_800_000,
                usize::MAX,
                true,
                None,
            )
            .unwrap()
        };
        let roll_up = |conn: &mut Connection| {
            let pending = due(conn);
            rollup::save(conn, &pending).unwrap();
        };
        let done = write(
            &mut conn,
            &site,
            hits(&[0, 1], 1),
            now,
            None,
            1_800_000,
            pacing,
        )
        .unwrap();
        assert_eq!(done.visits, 2);
        // The site's own first event, on 05-01 (day 61); `serve` rolls the
        // days from the first event on, 03-03 to 04-30 empty.
        let day = |d: i64| {
            Timestamp::from_millisecond(at(d))
                .unwrap()
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .date()
        };
        let own = visit_rows(
            &site,
            vec![(day(61), hits(&[61], 0).all()[0].clone())],
            1_800_000,
        );
        let tx = conn.transaction().unwrap();
        for visit in own.values().flatten() {
            let mut row = visit.row.clone();
            row.id = 77;
            rows::upsert_session(&tx, &row).unwrap();
            for event in &visit.events {
                let mut event = event.clone();
                event.session_id = 77;
                rows::insert_event(&tx, &event, None).unwrap();
            }
        }
        tx.commit().unwrap();
        roll_up(&mut conn);
        assert!(rollup::is_rolled_at_all(&conn, site.id, day(20)).unwrap());
        // A day of daily totals and no events (Plausible's import).
        conn.execute(
            "INSERT INTO rollup_events (site_id, day, dim, value, visitors, carried_visitors,
                 sessions, carried_sessions, pageviews, events)
             VALUES (?1, '2024-02-20', '', NULL, 5, 0, 5, 0, 9, 9)",
            [site.id],
        )
        .unwrap();
        assert_eq!(
            rollup::imported_days(&conn, &site).unwrap(),
            Some((day(-10), day(-10)))
        );
        // `serve` computes day 20's sums (not rolled yet, say) before the
        // import writes into it, and saves them after.
        rollup::forget_day(&conn, site.id, day(20)).unwrap();
        let stale = due(&conn);
        assert_eq!(stale.len(), 1);
        // Day 1 has the earlier import's event; 20 and 60 were rolled empty;
        // 61 is the site's own; 62 on. A visit from 23:50 on day 30 goes on
        // past midnight into day 31, where no visit starts.
        let mut later = hits(&[1, 20, 60, 61, 62], 2);
        for minutes in [13 * 60 + 50, 14 * 60 + 10] {
            later.push(pageview(
                at(30) + minutes * 60_000,
                "late",
                &format!("/late-{minutes}"),
            ));
        }
        let done = write(&mut conn, &site, later, now, None, 1_800_000, pacing).unwrap();
        assert_eq!(
            (
                done.visits,
                done.already,
                done.after_native,
                done.first,
                done.last
            ),
            (3, 1, 2, Some(day(20)), Some(day(60))),
            "{done:?}"
        );
        // `serve`'s stale sums, saved before the import's own reached day
        // 20 (undone here to see): left for its next round.
        rollup::forget_day(&conn, site.id, day(20)).unwrap();
        assert_eq!(rollup::save(&mut conn, &stale).unwrap(), 0);
        assert!(!rollup::is_rolled_at_all(&conn, site.id, day(20)).unwrap());
        roll_up(&mut conn);
        // Rolled again, with the visits.
        for d in [20, 30, 31, 60] {
            let pageviews: i64 = conn
                .query_row(
                    "SELECT pageviews FROM rollup_events WHERE site_id = ?1 AND day = ?2 AND dim = ''",
                    rusqlite::params![site.id, day(d).to_string()],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(pageviews, 1, "day {d}");
        }
        assert_eq!(
            rollup::imported_days(&conn, &site).unwrap(),
            Some((day(-10), day(-10)))
        );
    }

    #[test]
    fn visits_split_after_the_timeout_and_take_a_daily_visitor() {
        let hit = |session: &str, minute: i64, kind: Kind, path: &str| {
            let (name, page) = match kind {
                Kind::Pageview => (None, Some(path.to_string())),
                _ => (Some(path.to_string()), None),
            };
            let ts_ms = 1_709_287_200_000 + minute * 60_000;
            let day = Timestamp::from_millisecond(ts_ms)
                .unwrap()
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .date();
            (
                day,
                Hit {
                    ts_ms,
                    session: session.into(),
                    kind,
                    name,
                    page,
                    hostname: None,
                    dims: no_dims(),
                    screen_width: None,
                    data: None,
                },
            )
        };
        let hits = vec![
            hit("s", 10, Kind::Pageview, "/b"),
            hit("s", 0, Kind::Event, "signup"),
            hit("s", 5, Kind::Pageview, "/a"),
            // 31 minutes later: a new visit, the same visitor that day.
            hit("s", 41, Kind::Pageview, "/c"),
            // 14 hours later: the next day, another visitor id.
            hit("s", 14 * 60, Kind::Pageview, "/d"),
            hit("", 0, Kind::Pageview, "/x"),
            hit("", 0, Kind::Pageview, "/y"),
        ];
        let out = visit_rows(&site(), hits, 30 * 60_000);
        let days: Vec<_> = out.keys().copied().collect();
        assert_eq!(days.len(), 2);
        let first = &out[&days[0]];
        assert_eq!(first.len(), 4);
        let three = first.iter().find(|v| v.events.len() == 3).unwrap();
        assert_eq!(
            (three.row.entry_path.as_str(), three.row.exit_path.as_str()),
            ("/a", "/b")
        );
        assert_eq!(
            (three.row.pageviews, three.row.events, three.row.version),
            (2, 1, 3)
        );
        // The event came first: on the page `/`, none viewed before it.
        assert_eq!(three.events[0].path, "/");
        assert_eq!(three.events[0].name.as_deref(), Some("signup"));
        let c = first.iter().find(|v| v.row.entry_path == "/c").unwrap();
        assert_eq!(c.row.visitor_id, three.row.visitor_id);
        let d = &out[&days[1]][0];
        assert_ne!(d.row.visitor_id, three.row.visitor_id);
        let alone: Vec<_> = first
            .iter()
            .filter(|v| matches!(v.row.entry_path.as_str(), "/x" | "/y"))
            .collect();
        assert_eq!(alone.len(), 2);
        assert_ne!(alone[0].row.visitor_id, alone[1].row.visitor_id);
    }
}
