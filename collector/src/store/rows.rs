//! Storage rows: what the database holds, kept apart from the wire types
//! (core) and from the stats API's JSON.

use rusqlite::{Transaction, params};
use tallymark_core::source::{Attribution, Channel, ClickId};
use tallymark_core::useragent::{Agent, Browser, Device, Os, OsVersion};

use crate::geo::Location;

/// One stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub site_id: i64,
    pub ts_ms: i64,
    pub kind: &'static str,
    pub name: Option<String>,
    pub visitor_id: i64,
    pub session_id: i64,
    pub hostname: String,
    pub path: String,
    pub dims: Dimensions,
    pub screen_width: Option<u32>,
    /// The custom properties as a JSON object.
    pub props: Option<String>,
    pub revenue_amount: Option<f64>,
    pub revenue_currency: Option<String>,
    pub event_id: Option<String>,
}

/// One engagement: time on a page and how far down it was seen, within a
/// visit (never a view or an event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngagementRow {
    pub site_id: i64,
    pub ts_ms: i64,
    pub session_id: i64,
    pub hostname: String,
    pub path: String,
    pub engaged_ms: u32,
    pub scroll_depth: Option<u8>,
}

pub fn insert_engagement(tx: &Transaction<'_>, row: &EngagementRow) -> rusqlite::Result<()> {
    // The id after every one ever given (migration 11), deleted rows' too.
    tx.prepare_cached(
        "INSERT INTO engagements (id, site_id, ts_ms, session_id, hostname, path, engaged_ms,
            scroll_depth) VALUES (
            (SELECT MAX(COALESCE((SELECT MAX(id) FROM engagements), 0),
                        COALESCE((SELECT last FROM engagement_ids), 0)) + 1),
            ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        row.site_id,
        row.ts_ms,
        row.session_id,
        row.hostname,
        row.path,
        row.engaged_ms,
        row.scroll_depth,
    ])?;
    Ok(())
}

/// The dimensions an event and its session share (a session keeps those of
/// its first event: first-touch attribution).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dimensions {
    /// Referrer host and path, without scheme, query or fragment.
    pub referrer: Option<String>,
    pub referrer_domain: Option<String>,
    pub source: Option<String>,
    pub channel: Channel,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    /// Which ad click id the landing URL carried (never its value).
    pub click_id: Option<ClickId>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// English names from a city database (`Bavaria`, `Munich`); only with
    /// the country they are in.
    pub region: Option<String>,
    pub city: Option<String>,
    pub browser: Browser,
    pub browser_major: Option<u16>,
    pub os: Os,
    pub os_version: Option<OsVersion>,
    pub device: Device,
}

impl Dimensions {
    /// Reads the stored labels back; a label this binary does not know
    /// becomes the enum's unknown value rather than an error.
    pub fn from_labels(
        channel: &str,
        browser: &str,
        os: &str,
        device: &str,
    ) -> (Channel, Browser, Os, Device) {
        (
            Channel::from_key(channel).unwrap_or_default(),
            browser.parse().unwrap_or(Browser::Unknown),
            os.parse().unwrap_or(Os::Unknown),
            device.parse().unwrap_or(Device::Unknown),
        )
    }

    /// A visit's dimensions from core's attribution of its first page and
    /// its agent, its place, and its referrer as stored (host and path).
    pub fn of(a: Attribution, referrer: Option<String>, place: Location, agent: Agent) -> Self {
        Dimensions {
            referrer,
            referrer_domain: a.referrer_domain,
            source: a.source,
            channel: a.channel,
            utm_source: a.utm.source,
            utm_medium: a.utm.medium,
            utm_campaign: a.utm.campaign,
            utm_term: a.utm.term,
            utm_content: a.utm.content,
            click_id: a.click_id,
            country: place.country,
            region: place.region,
            city: place.city,
            browser: agent.browser,
            browser_major: agent.browser_major,
            os: agent.os,
            os_version: agent.os_version,
            device: agent.device,
        }
    }
}

/// A session snapshot, upserted behind its events.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub id: i64,
    pub site_id: i64,
    pub visitor_id: i64,
    /// Hits so far: a newer snapshot always has a larger version.
    pub version: i64,
    pub started_ms: i64,
    pub last_ms: i64,
    pub entry_path: String,
    pub exit_path: String,
    pub pageviews: i64,
    pub events: i64,
    pub interactions: i64,
    pub dims: Dimensions,
}

/// The id the next stored event takes: above every id ever used, also
/// those of deleted rows (migration 6).
pub fn next_engagement_id(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "SELECT MAX(COALESCE((SELECT MAX(id) FROM engagements), 0),
                    COALESCE((SELECT last FROM engagement_ids), 0)) + 1",
    )?
    .query_row([], |r| r.get(0))
}

pub fn next_event_id(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "SELECT MAX(COALESCE((SELECT MAX(id) FROM events), 0),
                    COALESCE((SELECT last FROM event_ids), 0)) + 1",
    )?
    .query_row([], |r| r.get(0))
}

/// Inserts `row` as event `id` (`None`: SQLite's next rowid); `Ok(false)`
/// when its `event_id` was already stored.
pub fn insert_event(
    tx: &Transaction<'_>,
    row: &EventRow,
    id: Option<i64>,
) -> rusqlite::Result<bool> {
    let d = &row.dims;
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (site_id, ts_ms, kind, name, visitor_id, session_id,
            hostname, path, referrer, referrer_domain, source, channel, utm_source, utm_medium,
            utm_campaign, utm_term, utm_content, click_id, country, browser, browser_major, os,
            device, screen_width, props, revenue_amount, revenue_currency, event_id, id,
            os_version, region, city)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
            ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)",
    )?;
    let n = stmt.execute(params![
        row.site_id,
        row.ts_ms,
        row.kind,
        row.name,
        row.visitor_id,
        row.session_id,
        row.hostname,
        row.path,
        d.referrer,
        d.referrer_domain,
        d.source,
        d.channel.as_str(),
        d.utm_source,
        d.utm_medium,
        d.utm_campaign,
        d.utm_term,
        d.utm_content,
        d.click_id.map(ClickId::as_str),
        d.country,
        d.browser.as_str(),
        d.browser_major,
        d.os.as_str(),
        d.device.as_str(),
        row.screen_width,
        row.props,
        row.revenue_amount,
        row.revenue_currency,
        row.event_id,
        id,
        d.os_version.map(|v| v.to_string()),
        d.region,
        d.city,
    ])?;
    Ok(n == 1)
}

/// Upserts `row` unless a newer version is already stored.
pub fn upsert_session(tx: &Transaction<'_>, row: &SessionRow) -> rusqlite::Result<()> {
    // A later snapshot of a stored session changes only its counters and
    // exit: an UPDATE of those binds 8 values instead of 26. Where it finds
    // nothing newer to replace (never stored, or stored newer), the full
    // upsert below decides.
    if row.version > 1 {
        let mut stmt = tx.prepare_cached(
            "UPDATE sessions SET version = ?2, last_ms = ?3, entry_path = ?4, exit_path = ?5,
                pageviews = ?6, events = ?7, interactions = ?8
             WHERE id = ?1 AND version < ?2",
        )?;
        let changed = stmt.execute(params![
            row.id,
            row.version,
            row.last_ms,
            row.entry_path,
            row.exit_path,
            row.pageviews,
            row.events,
            row.interactions,
        ])?;
        if changed == 1 {
            return Ok(());
        }
    }
    let d = &row.dims;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO sessions (id, site_id, visitor_id, version, started_ms, last_ms, entry_path,
            exit_path, pageviews, events, interactions, referrer, referrer_domain, source,
            channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content, click_id,
            country, browser, browser_major, os, device, os_version, region, city)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
            ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)
         ON CONFLICT (id) DO UPDATE SET
            version = excluded.version, last_ms = excluded.last_ms,
            entry_path = excluded.entry_path, exit_path = excluded.exit_path,
            pageviews = excluded.pageviews, events = excluded.events,
            interactions = excluded.interactions
         WHERE excluded.version > sessions.version",
    )?;
    stmt.execute(params![
        row.id,
        row.site_id,
        row.visitor_id,
        row.version,
        row.started_ms,
        row.last_ms,
        row.entry_path,
        row.exit_path,
        row.pageviews,
        row.events,
        row.interactions,
        d.referrer,
        d.referrer_domain,
        d.source,
        d.channel.as_str(),
        d.utm_source,
        d.utm_medium,
        d.utm_campaign,
        d.utm_term,
        d.utm_content,
        d.click_id.map(ClickId::as_str),
        d.country,
        d.browser.as_str(),
        d.browser_major,
        d.os.as_str(),
        d.device.as_str(),
        d.os_version.map(|v| v.to_string()),
        d.region,
        d.city,
    ])?;
    Ok(())
}
