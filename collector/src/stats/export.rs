//! `GET /api/v1/export`: a site's raw events of a period as CSV, for an
//! admin token: the site owner's own data, to keep or to analyse elsewhere.
//!
//! One row per stored event, in the order they were stored: its time (UTC),
//! kind, name, page, referrer and source, UTM, country, browser (and major
//! version), OS, device, screen width, properties (JSON), revenue and the
//! visit it belongs to. No visitor id: the daily ids exist to count
//! visitors, not to follow one through an export (visits are there). The
//! rows are streamed as they are read: a year of a busy site is never held
//! in memory.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use super::error::StatsError;
use super::params::{self};
use super::query::{self, ExportPages, ExportRow};
use super::{RawQueryString, auth, context, scoped};
use crate::AppState;

pub const EXPORT_PARAMS: &[&str] = &["site", "period", "date", "from", "to", "filter"];

/// The CSV's columns.
const HEADER: [&str; 26] = [
    "time",
    "kind",
    "name",
    "hostname",
    "path",
    "referrer",
    "source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "country",
    "region",
    "city",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "screen_width",
    "props",
    "revenue_amount",
    "revenue_currency",
    "visit",
];

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

/// Rows read per statement (no read snapshot is held between them).
const PAGE: usize = 5_000;

/// How long a chunk may wait for a client that stopped reading before the
/// export ends.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

type Chunk = Result<Vec<u8>, std::io::Error>;

pub(super) async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQueryString(query): RawQueryString,
) -> Result<Response, StatsError> {
    let (chunks, body) = mpsc::channel::<Chunk>(4);
    let (started, ready) = oneshot::channel::<Result<String, StatsError>>();
    let handle = Handle::current();
    tokio::task::spawn_blocking(move || {
        let opened = context(&state, &headers, query, EXPORT_PARAMS).and_then(|(cx, grant)| {
            if grant != auth::Grant::Admin {
                return Err(StatsError::AdminOnly("the export of raw events"));
            }
            let range = params::period(&cx.raw, &cx.site.tz, cx.now)?;
            let filters = cx.raw.filters()?;
            Ok((cx, range, filters))
        });
        let (cx, range, filters) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        let name = match range.days {
            Some((from, to)) => format!("{}_{from}_{to}.csv", cx.site.domain),
            None => format!("{}_realtime.csv", cx.site.domain),
        };
        if started.send(Ok(name)).is_err() {
            return;
        }
        let q = scoped(&cx.site, &range, &filters);
        let failed = chunks.clone();
        let out = Chunks {
            buf: Vec::with_capacity(CHUNK * 2),
            to: chunks,
            handle: handle.clone(),
        };
        // A write fails only when the client went away or stopped reading:
        // the export ends.
        if let Err(Stopped::Read(e)) = write_csv(&cx.conn, &q, out) {
            fail(&handle, &failed, e);
        }
    });
    let name = match ready.await {
        Ok(result) => result?,
        Err(_) => return Err(StatsError::Storage),
    };
    let stream = futures_util::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|chunk| (chunk, body))
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Why an export stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    /// Reading the database failed.
    #[error("reading the database: {0}")]
    Read(rusqlite::Error),
    /// Writing the CSV failed (the client went away, a full disk).
    #[error("writing the CSV: {0}")]
    Write(std::io::Error),
}

/// The CSV of the events `q` scopes, read a page at a time and written to
/// `out` as they are read.
pub fn write_csv<W: std::io::Write>(
    conn: &rusqlite::Connection,
    q: &query::Scoped<'_>,
    out: W,
) -> Result<(), Stopped> {
    let mut csv = csv::Writer::from_writer(out);
    let written = |r: csv::Result<()>| r.map_err(|e| Stopped::Write(e.into()));
    written(csv.write_record(HEADER))?;
    let mut pages = ExportPages::new(conn, q).map_err(Stopped::Read)?;
    loop {
        let page = query::export_page(conn, q, &mut pages, PAGE).map_err(Stopped::Read)?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            written(csv.write_record(record(row).map(cell)))?;
        }
    }
    csv.flush().map_err(Stopped::Write)
}

/// `tallymark export`: the same CSV for the operator, from the database
/// itself (no token: whoever reads the data directory reads the events).
/// `query` is the endpoint's query string (`site=…&period=…&filter=…`).
pub fn export_cli<W: std::io::Write>(
    conn: &rusqlite::Connection,
    query: &str,
    now: jiff::Timestamp,
    out: W,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let raw = params::RawQuery::parse(Some(query), EXPORT_PARAMS)?;
    let domain = raw.site()?;
    let site = crate::sites::get(conn, domain)?
        .ok_or_else(|| crate::sites::SiteError::NotFound(domain.to_string()))?;
    let range = params::period(&raw, &site.tz, now)?;
    let filters = raw.filters()?;
    write_csv(conn, &scoped(&site, &range, &filters), out)?;
    Ok(())
}

/// A read that failed once the answer had begun: the body ends with an
/// error (the connection is cut, so the file is not taken for whole), and
/// the log says why.
fn fail(handle: &Handle, to: &mpsc::Sender<Chunk>, e: rusqlite::Error) {
    tracing::error!(error = %e, "export stopped");
    let error = std::io::Error::other("the export stopped: reading the database failed");
    let _ = handle.block_on(tokio::time::timeout(SEND_TIMEOUT, to.send(Err(error))));
}

/// Where the CSV is written: gathered into chunks of [`CHUNK`] bytes, each
/// sent to the response as it fills (the last one on `flush`); a client
/// that stops reading for [`SEND_TIMEOUT`] ends the export.
struct Chunks {
    buf: Vec<u8>,
    to: mpsc::Sender<Chunk>,
    handle: Handle,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK * 2));
        match self
            .handle
            .block_on(tokio::time::timeout(SEND_TIMEOUT, self.to.send(Ok(chunk))))
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(std::io::ErrorKind::BrokenPipe.into()),
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

impl std::io::Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A field a spreadsheet would run as a formula (anyone can send an event
/// named `=HYPERLINK(…)`) gets a leading `'`, as the dashboard's CSV files
/// do; numbers (a refund's `-5.5`) stay as they are.
fn cell(field: String) -> String {
    let formula = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    // A number: a sign, digits, at most one point (not `-inf` or `+NaN`,
    // which a spreadsheet reads as formulas).
    let digits = field.trim_start_matches(['+', '-']);
    let number = field.len() - digits.len() == 1
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1;
    if formula && !number {
        format!("'{field}")
    } else {
        field
    }
}

/// One event's fields, in [`HEADER`]'s order.
fn record(row: &ExportRow) -> [String; 26] {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let number = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let time = jiff::Timestamp::from_millisecond(row.ts_ms)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let version = row
        .browser_major
        .map(|m| format!("{} {m}", row.browser))
        .unwrap_or_default();
    [
        time,
        row.kind.clone(),
        text(&row.name),
        row.hostname.clone(),
        row.path.clone(),
        text(&row.referrer),
        text(&row.source),
        row.channel.clone(),
        text(&row.utm[0]),
        text(&row.utm[1]),
        text(&row.utm[2]),
        text(&row.utm[3]),
        text(&row.utm[4]),
        text(&row.country),
        text(&row.region),
        text(&row.city),
        row.browser.clone(),
        version,
        row.os.clone(),
        row.os_version
            .as_ref()
            .map(|v| format!("{} {v}", row.os))
            .unwrap_or_default(),
        row.device.clone(),
        number(row.screen_width),
        text(&row.props),
        row.revenue_amount
            .map(|a| a.to_string())
            .unwrap_or_default(),
        text(&row.revenue_currency),
        row.session_id.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formulas_are_quoted_and_numbers_are_not() {
        for (field, shown) in [
            ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
            ("@sum", "'@sum"),
            ("-", "'-"),
            ("-inf", "'-inf"),
            ("+NaN", "'+NaN"),
            ("+1abc", "'+1abc"),
            ("--1", "'--1"),
            ("-5.5", "-5.5"),
            ("+1", "+1"),
            ("/pricing", "/pricing"),
            ("", ""),
        ] {
            assert_eq!(cell(field.to_string()), shown, "{field}");
        }
    }
}
