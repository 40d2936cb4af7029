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
//! The rows become hits (`super::raw`), which are written as the
//! site's own events and visits.

use tallymark_core::source::{self, Channel};
use tallymark_core::useragent::{self, Browser, Os, OsVersion};
use tallymark_core::validate::normalize_path;
use tallymark_core::wire::{Kind, MAX_NAME_BYTES};

use super::ImportError;
pub use super::Pacing;
use super::raw::{Hit, Row, Unpacked, device_of, head, page_url, read_rows, timestamp, truncate};
pub use super::raw::{Hits, Written, write};
use crate::geo::PlaceNames;
use crate::sites::Site;
use crate::store::Dimensions;

/// Whether `bytes` (a file's first bytes, gzipped or not) start a
/// GoatCounter CSV export: its header's first field is the format's version
/// and `Path` (`2Path,Title,Event,…`).
pub fn is_export(bytes: &[u8]) -> bool {
    let head = head(bytes, 64);
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

/// Reads one export (`name` for errors), gzipped or not. Rows that cannot
/// be read are counted and left out; a file that is not an export of a
/// version this reads is refused.
pub fn parse(
    site: &Site,
    name: &str,
    bytes: &[u8],
    names: &PlaceNames,
) -> Result<Hits, ImportError> {
    let text = Unpacked::new(bytes);
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
    let mut out = Hits::default();
    read_rows(name, &mut reader, &mut out, |record| {
        read_row(site, record, &at, names)
    })?;
    out.digest = reader.into_inner().digest();
    Ok(out)
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
            Ok(_) => Ok(Row::LeftOut),
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
    let (kind, name, page) = if event {
        // As GoatCounter names them: without a leading `/`.
        let name = raw_path.trim_start_matches('/').trim();
        let name = if name.is_empty() {
            "(no event name)"
        } else {
            name
        };
        let name = truncate(name, MAX_NAME_BYTES).to_string();
        (Kind::Event, Some(name), None)
    } else {
        let url = page_url(&site.domain, raw_path).ok_or_else(|| format!("Path: {raw_path:?}"))?;
        (Kind::Pageview, None, Some(normalize_path(&url)))
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
    let landing = if event {
        page_url(&site.domain, "/")
    } else {
        page_url(&site.domain, raw_path)
    };
    let attribution = landing
        .map(|landing| attribution(site, &landing, field(at.referrer), field(at.scheme)))
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
        name,
        page,
        hostname: None,
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
        data: None,
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
    let (os, os_version, device) = device_of(os, os_version, width, None);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tallymark_core::useragent::Device;

    use crate::import::raw::tests::site;

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
        assert_eq!(hits.len(), 3);
        let all = hits.all();
        let [event, view, reddit] = &all[..] else {
            panic!("three hits");
        };
        assert_eq!(
            (event.kind, event.name.as_deref(), event.page.as_deref()),
            (Kind::Event, Some("click-cv-html"), None)
        );
        assert_eq!(event.session, view.session);
        assert_eq!(
            (view.kind, view.page.as_deref()),
            (Kind::Pageview, Some("/stupid-light.html"))
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
        assert_eq!(hits.all(), plain.all());
        // A download cut short: refused, naming the file and how far it got.
        let e = parse(
            &site(),
            "x.csv.gz",
            &gz[..gz.len() - 20],
            &PlaceNames::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("x.csv.gz: line "), "{e}");
        assert!(!e.starts_with("x.csv.gz: line 0"), "{e}");
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
            cities: std::collections::HashMap::new(),
        };
        let hits = parse(&site(), "x.csv", text.as_bytes(), &names).unwrap();
        assert_eq!((hits.bots, hits.skipped), (1, 2));
        assert_eq!(hits.skipped_lines[0].0, 6);
        assert!(
            hits.skipped_lines[1].1.contains("Date"),
            "{:?}",
            hits.skipped_lines
        );
        let all = hits.all();
        let [a, b, c, g] = &all[..] else {
            panic!("{all:?}");
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

    /// Version 1 (before GoatCounter 1.4): another column order, and
    /// `Browser` is the User-Agent itself, read by core as `serve` reads it.
    #[test]
    fn version_1_exports_read_their_user_agent() {
        let text = "1Path,Title,Event,Bot,Session,FirstVisit,Referrer,Referrer scheme,Browser,Screen size,Location,Date
/a,A,false,0,12,true,news.ycombinator.com/item,h,\"Mozilla/5.0 (iPhone; CPU iPhone OS 13_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0.5 Mobile/15E148 Safari/604.1\",\"375,812,3\",NL,2020-02-01T10:00:00Z
/b,B,false,1,13,true,,,curl/7.64.1,,,2020-02-01T10:00:00Z
";
        assert!(is_export(text.as_bytes()));
        let hits = parse(&site(), "v1.csv", text.as_bytes(), &PlaceNames::default()).unwrap();
        assert_eq!((hits.len(), hits.bots, hits.skipped), (1, 1, 0));
        let all = hits.all();
        let a = &all[0];
        assert_eq!(
            (a.dims.browser, a.dims.os, a.dims.device),
            (Browser::Safari, Os::Ios, Device::Mobile)
        );
        assert_eq!(a.dims.source.as_deref(), Some("Hacker News"));
        assert_eq!((a.session.as_str(), a.screen_width), ("12", Some(375)));
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
                    let visits = crate::import::raw::tests::visit_rows(&site(), hits.all().into_iter().map(|h| (jiff::civil::date(2024, 2, 29), h)).collect(), 1_800_000);
                    for v in visits.values().flatten() {
                        proptest::prop_assert!(v.row.pageviews + v.row.events == v.events.len() as i64);
                    }
                }
            }
        }
    }
}
