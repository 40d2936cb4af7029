//! GoatCounter's CSV export (Settings → Export → CSV:
//! `goatcounter-export-<site>-<time>.csv.gz`, gzipped or not) imported as
//! raw events and visits: a site moving from GoatCounter keeps its history,
//! and every answer (filters, hours, entry pages, funnels, exports) covers
//! it, as on the site's own days.
//!
//! The export has one row per pageview or event: its time, path (or event
//! name), referrer, browser, OS, screen width, location (`US-TX`), bot flag
//! and GoatCounter's session id. Each of its sessions is walked with core's
//! session state machine (so visits split after the same inactivity as
//! `serve`'s); a visit's visitor id is a hash of a random key, used for
//! this import only and then dropped, with the GoatCounter session and the
//! visit's first local day, so visitors stay daily as `serve`'s are.
//!
//! Rows GoatCounter marked as bots are left out, as `serve` drops bots.
//! What GoatCounter does not record stays unknown: the hostname (the
//! site's), the page of an event (the last page viewed in its GoatCounter
//! session, else `/`), cities, and regions without a city database to name them.
//!
//! Which days: as for Plausible's export (`super::write`): whole days that
//! are over, before the site's first stored event, within its retention
//! period and not rolled up (imported) before; events on other days are
//! left out, so importing the same file again adds nothing. Each day's
//! visits are written in one transaction, newest day first: an import that
//! stopped part-way is completed by running it again.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use jiff::Timestamp;
use jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use tallymark_core::session::{self, SessionConfig};
use tallymark_core::source::{self, Channel};
use tallymark_core::useragent::{self, Browser, Device, Os, OsVersion};
use tallymark_core::validate::normalize_path;
use tallymark_core::wire::{Kind, MAX_NAME_BYTES, MAX_URL_BYTES};

use super::ImportError;
use crate::geo::PlaceNames;
use crate::sites::Site;
use crate::stats::rollup;
use crate::store::{Dimensions, EventRow, SessionRow, rows};

/// The largest export read, unpacked.
const MAX_BYTES: u64 = 16 << 30;

/// How many unreadable rows are named in the report (all are counted).
const SKIPPED_SHOWN: usize = 10;

/// Whether `bytes` (a file's first bytes, gzipped or not) start a
/// GoatCounter CSV export: its header's first field is the format's version
/// and `Path` (`2Path,Title,Event,…`).
pub fn is_export(bytes: &[u8]) -> bool {
    let mut head = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let _ = flate2::read::MultiGzDecoder::new(bytes)
            .take(64)
            .read_to_end(&mut head);
    } else {
        head.extend(bytes.iter().take(64));
    }
    let head = String::from_utf8_lossy(&head);
    version(head.split([',', '\n']).next().unwrap_or_default()).is_some()
}

/// `2Path` → 2 (a byte order mark and quotes allowed).
fn version(first: &str) -> Option<u32> {
    let first = first
        .trim_start_matches('\u{feff}')
        .trim()
        .trim_matches('"');
    let digits = first.strip_suffix("Path")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// One pageview or event of the export, as Tallymark stores it.
#[derive(Debug, Clone, PartialEq)]
struct Hit {
    ts_ms: i64,
    /// GoatCounter's session id (a row without one is a session of its own).
    session: String,
    kind: Kind,
    /// The page's path, or the event's name.
    path: String,
    dims: Dimensions,
    screen_width: Option<u32>,
}

/// The rows of an export.
#[derive(Debug, Default)]
pub struct Hits {
    hits: Vec<Hit>,
    /// Rows GoatCounter marked as bots.
    pub bots: usize,
    /// Rows that could not be read, and the first few of them (line, why).
    pub skipped: usize,
    pub skipped_lines: Vec<(u64, String)>,
    /// SHA-256 of the export's text (unpacked): the same export given twice
    /// (gzipped and not) is refused.
    pub digest: [u8; 32],
}

impl Hits {
    /// Rows read.
    pub fn len(&self) -> usize {
        self.hits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// Adds another export's rows (several files of one site), but for
    /// those the rows already here hold (overlapping exports): how many
    /// were left out so.
    pub fn append(&mut self, mut other: Hits) -> usize {
        let seen: std::collections::HashSet<(&str, i64, Kind, &str)> = self
            .hits
            .iter()
            .map(|h| (h.session.as_str(), h.ts_ms, h.kind, h.path.as_str()))
            .collect();
        let before = other.hits.len();
        other.hits.retain(|h| {
            h.session.is_empty()
                || !seen.contains(&(h.session.as_str(), h.ts_ms, h.kind, h.path.as_str()))
        });
        let overlap = before - other.hits.len();
        drop(seen);
        self.hits.append(&mut other.hits);
        self.bots += other.bots;
        self.skipped += other.skipped;
        let room = SKIPPED_SHOWN.saturating_sub(self.skipped_lines.len());
        self.skipped_lines
            .extend(other.skipped_lines.into_iter().take(room));
        overlap
    }
}

/// Reads one export (`name` for errors), gzipped or not. Rows that cannot
/// be read are counted and left out; a file that is not an export of a
/// version this reads is refused.
pub fn parse(
    site: &Site,
    name: &str,
    bytes: &[u8],
    names: &PlaceNames,
) -> Result<Hits, ImportError> {
    let unpacked;
    let text: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .take(MAX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|source| ImportError::Io {
                path: name.to_string(),
                source,
            })?;
        if out.len() as u64 > MAX_BYTES {
            return Err(ImportError::TooLarge {
                path: name.to_string(),
                name: name.to_string(),
            });
        }
        unpacked = out;
        &unpacked
    } else {
        bytes
    };
    let bad = |line: u64, message: String| ImportError::Csv {
        file: name.to_string(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(text);
    let header = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let v = header.get(0).and_then(version);
    if !matches!(v, Some(1 | 2)) {
        return Err(bad(
            1,
            "not a GoatCounter CSV export of version 1 or 2 (its header starts `2Path,Title,Event,…`)"
                .into(),
        ));
    }
    let column = |n: &str| {
        header.iter().enumerate().position(|(i, h)| {
            let h = h.trim_start_matches('\u{feff}').trim();
            h == n || (i == 0 && n == "Path" && version(h).is_some())
        })
    };
    let need = |n: &str| column(n).ok_or_else(|| bad(1, format!("no `{n}` column")));
    // Version 1's `Browser` is the User-Agent; version 2 names the browser
    // and the OS, and had the User-Agent too until GoatCounter stopped
    // storing it.
    let (ua_at, browser_at, system_at) = if v == Some(1) {
        (Some(need("Browser")?), None, None)
    } else {
        (
            column("UserAgent"),
            Some(need("Browser")?),
            Some(need("System")?),
        )
    };
    let at = Columns {
        path: need("Path")?,
        event: need("Event")?,
        session: need("Session")?,
        bot: column("Bot"),
        referrer: column("Referrer"),
        scheme: column("Referrer scheme"),
        size: column("Screen size"),
        location: column("Location"),
        date: need("Date")?,
        ua: ua_at,
        browser: browser_at,
        system: system_at,
    };
    let mut out = Hits {
        digest: Sha256::digest(text).into(),
        ..Hits::default()
    };
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A broken quote or invalid UTF-8: that row is left out.
                let line = e.position().map_or(0, |p| p.line());
                skip(&mut out, line, e.to_string());
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(bad(line, e.to_string()));
                }
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        match read_row(site, &record, &at, names) {
            Ok(Row::Hit(hit)) => out.hits.push(*hit),
            Ok(Row::Bot) => out.bots += 1,
            Err(why) => skip(&mut out, line, why),
        }
    }
    Ok(out)
}

fn skip(out: &mut Hits, line: u64, why: String) {
    out.skipped += 1;
    if out.skipped_lines.len() < SKIPPED_SHOWN {
        out.skipped_lines.push((line, why));
    }
}

/// Where each field is.
struct Columns {
    path: usize,
    event: usize,
    session: usize,
    bot: Option<usize>,
    referrer: Option<usize>,
    scheme: Option<usize>,
    size: Option<usize>,
    location: Option<usize>,
    date: usize,
    ua: Option<usize>,
    browser: Option<usize>,
    system: Option<usize>,
}

enum Row {
    Hit(Box<Hit>),
    Bot,
}

fn read_row(
    site: &Site,
    record: &csv::StringRecord,
    at: &Columns,
    names: &PlaceNames,
) -> Result<Row, String> {
    let field = |i: Option<usize>| i.and_then(|i| record.get(i)).map_or("", str::trim);
    let bot = field(at.bot);
    if !bot.is_empty() && bot != "0" {
        return match bot.parse::<i64>() {
            Ok(_) => Ok(Row::Bot),
            Err(_) => Err(format!("Bot: {bot:?} is not a number")),
        };
    }
    let event = boolean(field(Some(at.event)))
        .ok_or_else(|| format!("Event: {:?} is not true or false", field(Some(at.event))))?;
    let ts_ms = timestamp(field(Some(at.date)))
        .ok_or_else(|| format!("Date: {:?} is not a time", field(Some(at.date))))?;
    let raw_path = field(Some(at.path));
    if raw_path.is_empty() {
        return Err("Path: empty".into());
    }
    let (kind, path) = if event {
        // As GoatCounter names them: without a leading `/`.
        let name = raw_path.trim_start_matches('/').trim();
        let name = if name.is_empty() {
            "(no event name)"
        } else {
            name
        };
        (Kind::Event, truncate(name, MAX_NAME_BYTES).to_string())
    } else {
        let url = page_url(site, raw_path, None).ok_or_else(|| format!("Path: {raw_path:?}"))?;
        (Kind::Pageview, normalize_path(&url))
    };
    let width = field(at.size)
        .split(',')
        .next()
        .and_then(|w| w.trim().parse::<u32>().ok())
        .filter(|w| (1..=tallymark_core::wire::MAX_SCREEN_WIDTH).contains(w));
    let ua = field(at.ua);
    let agent = if !ua.is_empty() {
        useragent::parse(ua, width)
    } else {
        agent_of(field(at.browser), field(at.system), width)
    };
    // The attribution is the page's own when it is a pageview; an event's
    // is its visit's (the first hit's), as everywhere.
    let page = if event {
        page_url(site, "/", None)
    } else {
        page_url(site, raw_path, None)
    };
    let attribution = page
        .map(|page| attribution(site, &page, field(at.referrer), field(at.scheme)))
        .unwrap_or_default();
    let location = field(at.location);
    let (country, region) = match location.split_once('-') {
        Some((cc, _)) => (
            crate::geo::country_code(cc),
            names.regions.get(&location.to_ascii_uppercase()).cloned(),
        ),
        None => (crate::geo::country_code(location), None),
    };
    let region = region.filter(|_| country.is_some());
    let session = field(Some(at.session));
    Ok(Row::Hit(Box::new(Hit {
        ts_ms,
        session: if session.trim_matches(['0', '-']).is_empty() {
            String::new()
        } else {
            session.to_string()
        },
        kind,
        path,
        dims: Dimensions {
            referrer: attribution.referrer,
            referrer_domain: attribution.referrer_domain,
            source: attribution.source,
            channel: attribution.channel,
            utm_source: attribution.utm_source,
            utm_medium: None,
            utm_campaign: None,
            utm_term: None,
            utm_content: None,
            click_id: None,
            country,
            region,
            city: None,
            browser: agent.browser,
            browser_major: agent.browser_major,
            os: agent.os,
            os_version: agent.os_version,
            device: agent.device,
        },
        screen_width: width,
    })))
}

/// GoatCounter's booleans (`1`/`0` in its exports, `true`/`false` in its
/// documentation).
fn boolean(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "on" | "yes" => Some(true),
        "0" | "false" | "f" | "off" | "no" | "" => Some(false),
        _ => None,
    }
}

/// RFC 3339 (`2020-12-01T00:07:10Z`), or SQL's `2020-12-01 00:07:10` (UTC),
/// as GoatCounter's databases write it; from 2000 on (GoatCounter is from
/// 2019; Go's zero time, year 1, is no date).
fn timestamp(s: &str) -> Option<i64> {
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

/// `s` cut to at most `max` bytes, at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The page `path` of `site` as a URL (with `query` when given); `None` for
/// a path that makes no URL.
fn page_url(site: &Site, path: &str, query: Option<(&str, &str)>) -> Option<url::Url> {
    let path = truncate(path.trim(), MAX_URL_BYTES);
    let slash = if path.starts_with('/') { "" } else { "/" };
    let mut url = url::Url::parse(&format!("https://{}{slash}{path}", site.domain)).ok()?;
    if let Some((k, v)) = query {
        url.set_query(None);
        url.query_pairs_mut().append_pair(k, v);
    }
    Some(url)
}

/// What a hit's referrer stands for.
#[derive(Debug, Default, PartialEq)]
struct Attributed {
    referrer: Option<String>,
    referrer_domain: Option<String>,
    source: Option<String>,
    channel: Channel,
    utm_source: Option<String>,
}

/// GoatCounter's referrer by its scheme: `h` a URL without its scheme
/// (`www.reddit.com/r/rust`), `g` a name it gave a group of sites
/// (`Google`, `Hacker News`), `c` a campaign's `utm_source`/`ref`/`src`/
/// `source`, `o` anything else (an Android app's `android-app://…`),
/// attributed by core's rules as `serve` would have.
fn attribution(site: &Site, page: &url::Url, referrer: &str, scheme: &str) -> Attributed {
    let referrer = referrer.trim();
    if referrer.is_empty() {
        return Attributed::default();
    }
    let tagged = |keep_tag: bool| {
        let mut url = page.clone();
        url.set_query(None);
        url.query_pairs_mut().append_pair("utm_source", referrer);
        let a = source::attribute(&url, None, &site.domain);
        Attributed {
            source: a.source,
            channel: a.channel,
            utm_source: a.utm.source.filter(|_| keep_tag),
            ..Attributed::default()
        }
    };
    match scheme {
        "c" => tagged(true),
        "h" | "o" if referrer.contains("://") || scheme == "h" => {
            let full = if referrer.contains("://") {
                referrer.to_string()
            } else {
                format!("https://{referrer}")
            };
            let a = source::attribute(page, Some(&full), &site.domain);
            let referrer = a
                .referrer_domain
                .as_ref()
                .and_then(|_| crate::ingest::sessionize::referrer_without_query(&full));
            Attributed {
                referrer,
                referrer_domain: a.referrer_domain,
                source: a.source,
                channel: a.channel,
                utm_source: None,
            }
        }
        _ => tagged(false),
    }
}

/// The browser and OS as GoatCounter names them (`Chrome 86`, `macOS
/// 10.15`, `Linux Ubuntu`), in core's terms; the device from the screen
/// width as core reads it, else from the OS.
fn agent_of(browser: &str, system: &str, width: Option<u32>) -> useragent::Agent {
    let (b_name, b_version) = split_version(browser);
    let browser = if b_name.is_empty() {
        Browser::Unknown
    } else {
        crate::stats::plausible::stored_value("browser", b_name)
            .and_then(|label| label.parse().ok())
            .unwrap_or(match b_name {
                "Opera Mini" => Browser::Opera,
                "Samsung Internet" | "Samsung Browser" => Browser::SamsungInternet,
                _ => Browser::Other,
            })
    };
    let browser_major = (browser != Browser::Unknown && browser != Browser::Other)
        .then(|| leading_number(b_version))
        .flatten();
    let (os, os_version) = os_of(system);
    let mobile_os = matches!(os, Os::Ios | Os::Android);
    let device = match width.map(Device::from_screen_width) {
        // A phone or tablet OS is never a laptop or desktop (core's rule).
        Some(Device::Laptop | Device::Desktop) if mobile_os => Device::Tablet,
        Some(d) => d,
        None if mobile_os => Device::Mobile,
        None if matches!(os, Os::Windows | Os::MacOs | Os::Linux | Os::ChromeOs) => Device::Desktop,
        None => Device::Unknown,
    };
    useragent::Agent {
        browser,
        browser_major,
        os,
        os_version,
        device,
    }
}

/// `Chrome 86` → (`Chrome`, `86`); `Internet Explorer` → (it, ``).
fn split_version(s: &str) -> (&str, &str) {
    match s.trim().rsplit_once(' ') {
        Some((name, v)) if v.starts_with(|c: char| c.is_ascii_digit()) => (name.trim(), v),
        _ => (s.trim(), ""),
    }
}

fn leading_number(s: &str) -> Option<u16> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

/// GoatCounter's system names (zgo.at/gadget) as core's OS, with the
/// version where it is a number (`Windows 8.1`, `iOS 17.1`; not `Windows
/// XP`, nor a Linux distribution).
fn os_of(system: &str) -> (Os, Option<OsVersion>) {
    let system = system.trim();
    if system.is_empty() {
        return (Os::Unknown, None);
    }
    const NAMES: &[(&str, Os)] = &[
        ("Windows Phone", Os::Other),
        ("Windows", Os::Windows),
        ("macOS", Os::MacOs),
        ("Mac OS X", Os::MacOs),
        ("iOS", Os::Ios),
        ("iPadOS", Os::Ios),
        ("Android", Os::Android),
        ("Chrome OS", Os::ChromeOs),
        ("ChromeOS", Os::ChromeOs),
        ("Linux", Os::Linux),
    ];
    for (name, os) in NAMES {
        if let Some(rest) = system.strip_prefix(name)
            && (rest.is_empty() || rest.starts_with(' '))
        {
            let version = match os {
                Os::Linux | Os::ChromeOs | Os::Other => None,
                _ => rest.trim().parse::<OsVersion>().ok(),
            };
            return (*os, version);
        }
    }
    (Os::Other, None)
}

/// What a GoatCounter import wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Written {
    /// Days with a visit written, and the first and last of them.
    pub days: usize,
    pub first: Option<Date>,
    pub last: Option<Date>,
    pub visits: usize,
    pub pageviews: usize,
    pub events: usize,
    /// Hits left out: on or after the site's first stored event, or on a
    /// day not over yet.
    pub after_native: usize,
    /// Hits left out: before the site's retention period.
    pub past_retention: usize,
    /// Hits left out: on a day rolled up (imported) before.
    pub already: usize,
    /// Day rollups written afterwards.
    pub rolled: usize,
}

/// One visit to write.
struct Visit {
    row: SessionRow,
    events: Vec<EventRow>,
}

/// Writes `hits` into `site` (see the module docs for which days), then
/// rolls up the days written. `timeout_ms`: `serve`'s session timeout.
///
/// While it writes, the site is marked (`import_marks`, with the first day
/// of the site's own events then): `serve` rolls up none of its days, which
/// the import's visits crossing midnight may still add to. An import that
/// stopped part-way leaves the mark; run again, it keeps the mark's first
/// day and writes the visits that start before the first day written.
pub fn write(
    conn: &mut Connection,
    site: &Site,
    hits: Hits,
    now: Timestamp,
    retention_days: Option<u32>,
    timeout_ms: i64,
) -> Result<Written, ImportError> {
    let mut done = Written::default();
    let kept_from = crate::retention::site_horizon(site, now, retention_days).map(|h| h.day);
    // The first day of the site's events: its own, or the first written by
    // an import that stopped part-way.
    let first_event = rollup::first_event_day(conn, site)?;
    let marked: Option<(Option<String>, i64)> = conn
        .query_row(
            "SELECT first_native, timeout_ms FROM import_marks WHERE site_id = ?1",
            [site.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let first_native = match &marked {
        Some((_, marked_timeout)) if *marked_timeout != timeout_ms => {
            return Err(ImportError::Resumed {
                site: site.domain.clone(),
                minutes: marked_timeout / 60_000,
            });
        }
        Some((Some(day), _)) => day.parse::<Date>().ok(),
        // The site had no events when the stopped import began: its own are
        // those of visits no import wrote.
        Some((None, _)) => native_first_day(conn, site)?,
        None => first_event,
    };
    let now_ms = now.as_millisecond();
    let mut day_ok: HashMap<Date, Result<(), Left>> = HashMap::new();
    let mut kept = Vec::with_capacity(hits.hits.len());
    for hit in hits.hits {
        let Ok(ts) = Timestamp::from_millisecond(hit.ts_ms) else {
            done.after_native += 1;
            continue;
        };
        let day = ts.to_zoned_datetime(site.tz.clone()).date();
        let verdict = match day_ok.get(&day) {
            Some(v) => *v,
            None => {
                let over = rollup::Day::new(day, &site.tz)
                    .is_some_and(|d| d.end_ms + rollup::GRACE_MS <= now_ms);
                let v = if first_native.is_some_and(|f| day >= f) || !over {
                    Err(Left::AfterNative)
                } else if kept_from.is_some_and(|k| day < k) {
                    Err(Left::PastRetention)
                } else if rollup::is_rolled_at_all(conn, site.id, day)? {
                    Err(Left::Already)
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
    let visits = visits(site, kept, timeout_ms)?;
    // Newest day first, each in its own transaction (see the module docs);
    // the visits of days written before (a stopped import) are not again.
    let written_from = if marked.is_some() { first_event } else { None };
    let mut mark = marked.is_none();
    for (day, visits) in visits.into_iter().rev() {
        if written_from.is_some_and(|w| day >= w) {
            done.already += visits.iter().map(|v| v.events.len()).sum::<usize>();
            continue;
        }
        // Immediate: it reads (ids) before it writes, beside `serve`'s writer.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if mark {
            // With the first day written, not before: an import that writes
            // nothing, or fails before it writes, leaves no mark.
            tx.execute(
                "INSERT INTO import_marks (site_id, first_native, timeout_ms) VALUES (?1, ?2, ?3)",
                rusqlite::params![site.id, first_native.map(|d| d.to_string()), timeout_ms],
            )?;
            mark = false;
        }
        let mut next_event = rows::next_event_id(&tx)?;
        for mut visit in visits {
            visit.row.id = free_session_id(&tx, visit.row.started_ms)?;
            rows::upsert_session(&tx, &visit.row)?;
            tx.prepare_cached("INSERT INTO visit_backlog (session_id) VALUES (?1)")?
                .execute([visit.row.id])?;
            for mut event in visit.events {
                event.session_id = visit.row.id;
                rows::insert_event(&tx, &event, Some(next_event))?;
                next_event += 1;
                match event.kind {
                    "pageview" => done.pageviews += 1,
                    _ => done.events += 1,
                }
            }
            done.visits += 1;
        }
        tx.commit()?;
        done.days += 1;
        done.last.get_or_insert(day);
        done.first = Some(day);
    }
    // Every visit is written: `serve` may roll the days up again. They are
    // rolled now rather than by its next full round (within the hour;
    // answers meanwhile are exact, only slower); the site's own days are
    // left to `serve`, whose session timeout decides when they are over.
    conn.execute("DELETE FROM import_marks WHERE site_id = ?1", [site.id])?;
    let kept_from_ms = crate::retention::site_horizon(site, now, retention_days).map(|h| h.from_ms);
    let mut pending = rollup::due(
        conn,
        site,
        now_ms,
        timeout_ms,
        usize::MAX,
        true,
        kept_from_ms,
    )?;
    pending.retain(|p| first_native.is_none_or(|f| p.day < f));
    done.rolled = rollup::save(conn, &pending)?;
    Ok(done)
}

#[derive(Debug, Clone, Copy)]
enum Left {
    AfterNative,
    PastRetention,
    Already,
}

/// The first day of `site`'s own events: of visits no import queued.
fn native_first_day(conn: &Connection, site: &Site) -> rusqlite::Result<Option<Date>> {
    let ms: Option<i64> = conn.query_row(
        "SELECT MIN(ts_ms) FROM events WHERE site_id = ?1
         AND NOT EXISTS (SELECT 1 FROM visit_backlog WHERE session_id = events.session_id)",
        [site.id],
        |r| r.get(0),
    )?;
    Ok(ms
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_zoned_datetime(site.tz.clone()).date()))
}

/// Session ids of imported visits: from their start's millisecond, as
/// `serve`'s (`sessions::SessionIds`), in the upper half of its sequence
/// (which `serve` fills from the bottom), skipping any already stored.
fn free_session_id(tx: &rusqlite::Transaction<'_>, started_ms: i64) -> rusqlite::Result<i64> {
    let mut id = (started_ms.max(0) << 20) | (1 << 19);
    let mut stmt = tx.prepare_cached("SELECT 1 FROM sessions WHERE id = ?1")?;
    while stmt.query_row([id], |_| Ok(())).optional()?.is_some() {
        id += 1;
    }
    Ok(id)
}

/// The hits as visits, by the local day each started on: each GoatCounter
/// session's hits in time order, split by core's state machine after
/// `timeout_ms` without a hit.
fn visits(
    site: &Site,
    hits: Vec<(Date, Hit)>,
    timeout_ms: i64,
) -> Result<BTreeMap<Date, Vec<Visit>>, ImportError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| ImportError::Io {
        path: "the random key".into(),
        source: std::io::Error::other(e),
    })?;
    let mut by_session: HashMap<String, Vec<(Date, Hit)>> = HashMap::new();
    let mut alone = Vec::new();
    for (day, hit) in hits {
        if hit.session.is_empty() {
            alone.push(vec![(day, hit)]);
        } else {
            by_session
                .entry(hit.session.clone())
                .or_default()
                .push((day, hit));
        }
    }
    let config = SessionConfig { timeout_ms };
    let mut out: BTreeMap<Date, Vec<Visit>> = BTreeMap::new();
    let groups = by_session.into_values().chain(alone);
    for (n, mut group) in groups.enumerate() {
        group.sort_by_key(|(_, h)| h.ts_ms);
        let mut current: Option<(session::Session, Date, Visit)> = None;
        let mut page = String::from("/");
        for (day, hit) in group {
            let (s, transition) = session::step(
                current.as_ref().map(|(s, _, _)| s.clone()),
                session::Hit {
                    kind: hit.kind,
                    path: if hit.kind == Kind::Pageview {
                        &hit.path
                    } else {
                        &page
                    },
                    interactive: true,
                },
                hit.ts_ms,
                &config,
                0,
            );
            if matches!(transition, session::Transition::Started { .. }) {
                if let Some((_, started, visit)) = current.take() {
                    out.entry(started).or_default().push(visit);
                }
                let visitor = visitor_id(&key, &hit.session, n, day);
                current = Some((
                    s.clone(),
                    day,
                    Visit {
                        row: SessionRow {
                            id: 0,
                            site_id: site.id,
                            visitor_id: visitor,
                            version: 0,
                            started_ms: hit.ts_ms,
                            last_ms: hit.ts_ms,
                            entry_path: String::new(),
                            exit_path: String::new(),
                            pageviews: 0,
                            events: 0,
                            interactions: 0,
                            dims: hit.dims.clone(),
                        },
                        events: Vec::new(),
                    },
                ));
            }
            let Some((session, _, visit)) = current.as_mut() else {
                continue;
            };
            *session = s;
            let (kind, name, path) = match hit.kind {
                Kind::Pageview => {
                    page.clone_from(&hit.path);
                    ("pageview", None, hit.path)
                }
                _ => ("event", Some(hit.path), page.clone()),
            };
            visit.row.version += 1;
            visit.row.last_ms = session.last_ms;
            visit.row.entry_path.clone_from(&session.entry_path);
            visit.row.exit_path.clone_from(&session.exit_path);
            visit.row.pageviews = i64::from(session.pageviews);
            visit.row.events = i64::from(session.events);
            visit.row.interactions = i64::from(session.interactions);
            visit.events.push(EventRow {
                site_id: site.id,
                ts_ms: hit.ts_ms,
                kind,
                name,
                visitor_id: visit.row.visitor_id,
                session_id: 0,
                hostname: site.domain.clone(),
                path,
                dims: visit.row.dims.clone(),
                screen_width: hit.screen_width,
                props: None,
                revenue_amount: None,
                revenue_currency: None,
                event_id: None,
            });
        }
        if let Some((_, started, visit)) = current {
            out.entry(started).or_default().push(visit);
        }
    }
    Ok(out)
}

/// A visit's visitor id: its GoatCounter session on the local day the
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
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            id: 1,
            domain: "example.com".into(),
            timezone: "UTC".into(),
            tz: jiff::tz::TimeZone::UTC,
            retention_days: None,
        }
    }

    /// GoatCounter's own test export (its `cmd/goatcounter/testdata`
    /// shape): version 2, with the User-Agent column still filled.
    const EXPORT: &str = "2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,Referrer scheme,Screen size,Location,FirstVisit,Date
click-cv-html,HTML source,1,\"Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/86.0.4240.198 Safari/537.36\",Chrome 86,Windows 7,287fb97cbed4e4f-8e4f5c975b8fee06,0,,,\"1280,768,1\",AR,1,2020-12-01T00:07:10Z
/stupid-light.html,Stupid light software,0,\"Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/86.0.4240.198 Safari/537.36\",Chrome 86,Windows 7,287fb97cbed4e4f-8e4f5c975b8fee06,0,,,\"1280,768,1\",AR,1,2020-12-01T00:07:44Z
/static-go.html,Statically compiling Go programs,0,\"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.0.2 Safari/605.1.15\",Safari 14.0,macOS 10.15,c8b722d57674550-bcd20ab1989d7739,0,www.reddit.com,h,\"1680,1050,2\",RO,1,2020-12-27T00:37:37Z
";

    #[test]
    fn goatcounters_own_export_reads() {
        assert!(is_export(EXPORT.as_bytes()));
        let hits = parse(&site(), "x.csv", EXPORT.as_bytes(), &PlaceNames::default()).unwrap();
        assert_eq!((hits.bots, hits.skipped), (0, 0));
        assert_eq!(hits.hits.len(), 3);
        let [event, view, reddit] = &hits.hits[..] else {
            panic!("three hits");
        };
        assert_eq!(
            (event.kind, event.path.as_str()),
            (Kind::Event, "click-cv-html")
        );
        assert_eq!(event.session, view.session);
        assert_eq!(
            (view.kind, view.path.as_str()),
            (Kind::Pageview, "/stupid-light.html")
        );
        assert_eq!(view.ts_ms, 1_606_781_264_000);
        assert_eq!(view.dims.country.as_deref(), Some("AR"));
        assert_eq!(
            (view.dims.browser, view.dims.browser_major, view.dims.os),
            (Browser::Chrome, Some(86), Os::Windows)
        );
        assert_eq!(view.dims.device, Device::Laptop);
        assert_eq!(view.screen_width, Some(1280));
        assert_eq!(view.dims.channel, Channel::Direct);
        assert_eq!(reddit.dims.source.as_deref(), Some("Reddit"));
        assert_eq!(reddit.dims.referrer.as_deref(), Some("reddit.com"));
        assert_eq!(reddit.dims.referrer_domain.as_deref(), Some("reddit.com"));
        assert_eq!(reddit.dims.channel, Channel::OrganicSocial);
        assert_eq!(reddit.dims.os, Os::MacOs);
    }

    #[test]
    fn gzipped_exports_read_as_plain_ones() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, EXPORT.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        assert!(is_export(&gz));
        let hits = parse(&site(), "x.csv.gz", &gz, &PlaceNames::default()).unwrap();
        let plain = parse(&site(), "x.csv", EXPORT.as_bytes(), &PlaceNames::default()).unwrap();
        assert_eq!(hits.hits, plain.hits);
        assert!(!is_export(b"date,visitors,pageviews\n"));
        assert!(!is_export(b"Path,Title\n"));
    }

    /// Today's exports: no User-Agent, GoatCounter's names; bots, regions,
    /// generated and campaign referrers, SQL times, unreadable rows.
    #[test]
    fn names_referrers_and_bad_rows() {
        let text = "2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,Referrer scheme,Screen size,Location,FirstVisit,Date
/a,A,false,,Firefox 120,Linux Ubuntu,s1,0,Google,g,\"0,0,1\",US-TX,true,2024-03-01 10:00:00
/b,B,false,,Safari 17.1,iOS 17.1,s2,0,newsletter,c,\"390,0,1\",DE-BY,true,2024-03-01T10:00:00Z
/c,C,false,,Internet Explorer 11,Windows 8.1,s3,0,android-app://com.slack,o,,,true,2024-03-01T10:00:00+01:00
/d,D,false,,Edge 120,Windows XP,s4,3,,,,,true,2024-03-01T10:00:00Z
/e,E,maybe,,,,s5,0,,,,,true,2024-03-01T10:00:00Z
/f,F,false,,,,s6,0,,,,,true,yesterday
/g,G,false,,Chrome,Chrome OS,,0,,,,XX,true,2024-03-01T10:00:00Z
";
        let names = PlaceNames {
            regions: [("US-TX".to_string(), "Texas".to_string())].into(),
            cities: HashMap::new(),
        };
        let hits = parse(&site(), "x.csv", text.as_bytes(), &names).unwrap();
        assert_eq!((hits.bots, hits.skipped), (1, 2));
        assert_eq!(hits.skipped_lines[0].0, 6);
        assert!(
            hits.skipped_lines[1].1.contains("Date"),
            "{:?}",
            hits.skipped_lines
        );
        let [a, b, c, g] = &hits.hits[..] else {
            panic!("{:?}", hits.hits);
        };
        assert_eq!(a.ts_ms, 1_709_287_200_000);
        assert_eq!(
            (
                a.dims.source.as_deref(),
                a.dims.channel,
                a.dims.utm_source.as_deref()
            ),
            (Some("Google"), Channel::OrganicSearch, None)
        );
        assert_eq!(
            (a.dims.country.as_deref(), a.dims.region.as_deref()),
            (Some("US"), Some("Texas"))
        );
        assert_eq!(
            (a.dims.browser, a.dims.os, a.dims.os_version),
            (Browser::Firefox, Os::Linux, None)
        );
        assert_eq!((a.screen_width, a.dims.device), (None, Device::Desktop));
        assert_eq!(b.dims.utm_source.as_deref(), Some("newsletter"));
        assert_eq!(b.dims.source.as_deref(), Some("newsletter"));
        // No name for DE-BY: the country only.
        assert_eq!(
            (b.dims.country.as_deref(), b.dims.region.as_deref()),
            (Some("DE"), None)
        );
        assert_eq!(
            (
                b.dims.os,
                b.dims.os_version.map(|v| v.to_string()),
                b.dims.device
            ),
            (Os::Ios, Some("17.1".into()), Device::Mobile)
        );
        assert_eq!(c.ts_ms, 1_709_283_600_000);
        assert_eq!(
            (
                c.dims.browser,
                c.dims.browser_major,
                c.dims.os_version.map(|v| v.to_string())
            ),
            (Browser::InternetExplorer, Some(11), Some("8.1".into()))
        );
        assert_eq!(c.dims.source.as_deref(), Some("Slack"), "{:?}", c.dims);
        assert_eq!((g.session.as_str(), g.dims.country.as_deref()), ("", None));
        assert_eq!(
            (g.dims.browser, g.dims.browser_major, g.dims.os),
            (Browser::Chrome, None, Os::ChromeOs)
        );
    }

    /// Two exports taken months apart overlap: the rows of the second
    /// that the first holds are left out once, the new ones kept.
    #[test]
    fn overlapping_exports_count_each_row_once() {
        let names = PlaceNames::default();
        let mut all = parse(&site(), "a.csv", EXPORT.as_bytes(), &names).unwrap();
        let later = format!(
            "{EXPORT}/new.html,New,0,,Firefox 133,Linux,fff-1,0,,,,DE,1,2021-01-05T10:00:00Z\n"
        );
        let later = parse(&site(), "b.csv", later.as_bytes(), &names).unwrap();
        assert_eq!(all.append(later), 3);
        assert_eq!(all.len(), 4);
    }

    #[test]
    fn times_are_rfc_3339_or_sql_from_2000_on() {
        assert_eq!(timestamp("2020-12-01T00:07:10Z"), Some(1_606_781_230_000));
        assert_eq!(timestamp("2020-12-01 00:07:10"), Some(1_606_781_230_000));
        assert_eq!(
            timestamp("2020-12-01 01:07:10+01:00"),
            Some(1_606_781_230_000)
        );
        assert_eq!(timestamp("2020-12-01T00:07:10.5Z"), Some(1_606_781_230_500));
        // Go's zero time, and anything before GoatCounter could have been.
        assert_eq!(timestamp("0001-01-01T00:00:00Z"), None);
        assert_eq!(timestamp("1970-01-01 00:00:00"), None);
        assert_eq!(timestamp("yesterday"), None);
        assert_eq!(timestamp(""), None);
    }

    #[test]
    fn other_files_and_versions_are_refused() {
        let e = parse(
            &site(),
            "x.csv",
            b"3Path,Title\n/a,A\n",
            &PlaceNames::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("version 1 or 2"), "{e}");
        let e = parse(
            &site(),
            "x.csv",
            b"2Path,Browser,System,Session,Date\n/a,,,,\n",
            &PlaceNames::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no `Event` column"), "{e}");
    }

    #[test]
    fn visits_split_after_the_timeout_and_take_a_daily_visitor() {
        let hit = |session: &str, minute: i64, kind: Kind, path: &str| {
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
                    path: path.into(),
                    dims: Dimensions {
                        referrer: None,
                        referrer_domain: None,
                        source: None,
                        channel: Channel::Direct,
                        utm_source: None,
                        utm_medium: None,
                        utm_campaign: None,
                        utm_term: None,
                        utm_content: None,
                        click_id: None,
                        country: None,
                        region: None,
                        city: None,
                        browser: Browser::Unknown,
                        browser_major: None,
                        os: Os::Unknown,
                        os_version: None,
                        device: Device::Unknown,
                    },
                    screen_width: None,
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
        let out = visits(&site(), hits, 30 * 60_000).unwrap();
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

    proptest::proptest! {
        /// Any bytes after a GoatCounter header, or any bytes at all: read
        /// (rows skipped and counted) or refused with an error; never a
        /// panic.
        #[test]
        fn any_export_reads_or_is_refused(
            rows in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::strategy::Just("2024-02-29T10:00:00Z".to_string()),
                        proptest::strategy::Just("1".to_string()),
                        proptest::strategy::Just("h".to_string()),
                        "[0-9,]{0,13}",
                        ".{0,24}",
                    ],
                    0..16,
                ),
                0..8,
            ),
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96),
        ) {
            let mut text = String::from(
                "2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,Referrer scheme,Screen size,Location,FirstVisit,Date\n",
            );
            for r in &rows {
                text.push_str(&r.join(","));
                text.push('\n');
            }
            for bytes in [text.into_bytes(), raw] {
                if let Ok(hits) = parse(&site(), "x.csv", &bytes, &PlaceNames::default()) {
                    let visits = visits(&site(), hits.hits.into_iter().map(|h| (jiff::civil::date(2024, 2, 29), h)).collect(), 1_800_000).unwrap();
                    for v in visits.values().flatten() {
                        proptest::prop_assert!(v.row.pageviews + v.row.events == v.events.len() as i64);
                    }
                }
            }
        }
    }
}
