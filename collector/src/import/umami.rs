//! Umami's raw rows as CSV: its `website_event` rows joined with their
//! `session` (as Umami Cloud's data export writes them, or as a self-hosted
//! Umami's database gives them:
//! `\copy (SELECT e.session_id, e.created_at, e.url_path, e.url_query, e.utm_source, e.utm_medium, e.utm_campaign, e.utm_content, e.utm_term, e.referrer_path, e.referrer_domain, e.gclid, e.fbclid, e.msclkid, e.ttclid, e.li_fat_id, e.twclid, e.event_type, e.event_name, e.hostname, s.browser, s.os, s.device, s.screen, s.country, s.region, s.city, (SELECT json_object_agg(d.data_key, CASE d.data_type WHEN 2 THEN to_jsonb(d.number_value) WHEN 3 THEN to_jsonb(d.string_value = 'true') ELSE to_jsonb(d.string_value) END) FROM event_data d WHERE d.website_event_id = e.event_id AND d.data_type <> 5) AS event_data FROM website_event e JOIN session s USING (session_id, website_id) WHERE e.website_id = '…') TO 'umami.csv' CSV HEADER`),
//! gzipped or not, imported as raw events and visits (`super::raw`): a site
//! moving from Umami keeps its history.
//!
//! Columns are found by name, snake_case or camelCase (`url_path`,
//! `urlPath`), in any order; what is missing is unknown. Read: the time,
//! the session id (a visitor of Umami's, kept for a month; Tallymark's
//! visitors stay daily), the page's host, path and query (UTM tags and ad
//! click ids, also from their own columns), the referrer, the event type
//! and name, the browser, OS, device, screen, country, region and city,
//! and a custom event's `event_data` (its data rows as one JSON object):
//! props and revenue.
//! Page views (type 1) and custom events (type 2) are imported; Umami's
//! link, pixel and performance events are not page traffic and are left
//! out. Rows of another host than the site's are left out, as `serve`
//! refuses them. The page title, language and `distinct_id` (an id the site
//! gave a user) are never read.

use tallymark_core::source;
use tallymark_core::useragent::{Agent, Browser, Device, Os, OsVersion};
use tallymark_core::validate::{host_belongs_to_site, hostname, normalize_path};
use tallymark_core::wire::{
    Kind, MAX_NAME_BYTES, MAX_PROP_KEY_BYTES, MAX_PROP_VALUE_BYTES, MAX_PROPS, PropValue, Props,
};

use super::ImportError;
pub use super::Pacing;
use super::raw::{
    EventData, Hit, Row, Unpacked, device_of, head, page_url, read_rows, timestamp, truncate,
};
pub use super::raw::{Hits, Written, write};
use crate::geo::{Location, PlaceNames};
use crate::sites::Site;
use crate::store::Dimensions;

/// `url_path`, `urlPath` → `urlpath`.
fn key(name: &str) -> String {
    name.trim_start_matches('\u{feff}')
        .trim()
        .trim_matches('"')
        .chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `bytes` (gzipped or not) start a CSV of Umami's events: its
/// header names `url_path`, `session_id`, `created_at` and `event_type`.
pub fn is_export(bytes: &[u8]) -> bool {
    let head = head(bytes, 4096);
    let header: Vec<String> = head
        .lines()
        .next()
        .unwrap_or_default()
        .split(',')
        .map(key)
        .collect();
    ["urlpath", "sessionid", "createdat", "eventtype"]
        .iter()
        .all(|k| header.iter().any(|h| h == k))
}

/// Reads one export (`name` for errors), gzipped or not. Rows that cannot
/// be read are counted and left out.
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
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad(1, e.to_string()))?
        .iter()
        .map(key)
        .collect();
    let column = |n: &str| header.iter().position(|h| h == n);
    for required in ["urlpath", "sessionid", "createdat", "eventtype"] {
        if column(required).is_none() {
            return Err(bad(
                1,
                format!("no `{required}` column: not a CSV of Umami's website_event rows"),
            ));
        }
    }
    // `SELECT *` over a join writes `created_at` twice (the event's and the
    // session's): which is which is not known.
    for once in ["createdat", "sessionid", "hostname", "urlpath"] {
        if header.iter().filter(|h| *h == once).count() > 1 {
            return Err(bad(
                1,
                format!(
                    "two `{once}` columns: select the event's own (see the README's column list)"
                ),
            ));
        }
    }
    let mut out = Hits::default();
    read_rows(name, &mut reader, &mut out, |record| {
        let field = |n: &str| {
            column(n)
                .and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty() && *v != "\\N" && !v.eq_ignore_ascii_case("null"))
        };
        read_row(site, &field, names)
    })?;
    out.digest = reader.into_inner().digest();
    Ok(out)
}

/// A custom event's `event_data` rows as one JSON object (the README's
/// column list builds it), read as Umami's tracker `data` is
/// (`intake::umami_data`): its props, and its revenue. Props past core's
/// limits are left out (a longer text is cut), not the event.
fn event_data(json: &str) -> Option<EventData> {
    let serde_json::Value::Object(data) = serde_json::from_str(json).ok()? else {
        return None;
    };
    let (props, revenue) = tallymark_core::intake::umami_data(&data, Kind::Event);
    let props: Props = props
        .iter()
        .filter(|(key, value)| {
            !key.is_empty()
                && key.len() <= MAX_PROP_KEY_BYTES
                && !matches!(value, PropValue::Number(n) if !n.is_finite())
        })
        .take(MAX_PROPS)
        .map(|(key, value)| {
            let value = match value {
                PropValue::String(s) => {
                    PropValue::String(truncate(s, MAX_PROP_VALUE_BYTES).to_string())
                }
                v => v.clone(),
            };
            (key.clone(), value)
        })
        .collect();
    let props = (!props.is_empty())
        .then(|| serde_json::to_string(&props).ok())
        .flatten();
    (props.is_some() || revenue.is_some()).then_some(EventData { props, revenue })
}

/// The ad click ids Umami keeps in columns of their own, by query name.
const CLICK_IDS: &[&str] = &[
    "gclid",
    "fbclid",
    "msclkid",
    "ttclid",
    "li_fat_id",
    "twclid",
];
const UTM: &[&str] = &[
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
];

/// One row as a hit, or left out: not page traffic (Umami's link, pixel and
/// performance events).
fn read_row<'a>(
    site: &Site,
    field: &impl Fn(&str) -> Option<&'a str>,
    names: &PlaceNames,
) -> Result<Row, String> {
    let kind = match field("eventtype") {
        Some("1") => Kind::Pageview,
        Some("2") => Kind::Event,
        Some("3" | "4" | "5") => return Ok(Row::LeftOut),
        other => return Err(format!("event_type: {other:?} is not 1 to 5")),
    };
    let created = field("createdat").unwrap_or_default();
    let ts_ms =
        timestamp(created).ok_or_else(|| format!("created_at: {created:?} is not a time"))?;
    // The page, with its query (UTM tags, click ids) for the attribution.
    let host = field("hostname").unwrap_or(&site.domain);
    let path = field("urlpath").ok_or("url_path: empty")?;
    // Umami stores the path through `decodeURI`: a `%` it holds is a `%`.
    let mut url =
        page_url(host, &path.replace('%', "%25")).ok_or_else(|| format!("url_path: {path:?}"))?;
    let host = hostname(&url).unwrap_or_default();
    if !host_belongs_to_site(&host, &site.domain) {
        return Err(format!("hostname {host:?} is not {}'s", site.domain));
    }
    if let Some(query) = field("urlquery") {
        // Before 2025 Umami cut the address at `?` only: a hash route
        // after the query is the page's.
        let (query, fragment) = match query.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (query, None),
        };
        url.set_query(Some(query.trim_start_matches('?')));
        if let Some(f) = fragment
            && url.fragment().is_none()
        {
            url.set_fragment(Some(f));
        }
    }
    {
        let present: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let mut pairs = url.query_pairs_mut();
        for name in UTM.iter().chain(CLICK_IDS) {
            if let Some(v) = field(&key(name))
                && !present.iter().any(|p| p == name)
            {
                pairs.append_pair(name, v);
            }
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    let referrer = field("referrerdomain").map(|domain| {
        let path = field("referrerpath").unwrap_or("");
        let slash = if path.is_empty() || path.starts_with('/') {
            ""
        } else {
            "/"
        };
        // Umami keeps an `android-app://` referrer as its package and path.
        let scheme = if source::is_known_android_app(domain) {
            "android-app://"
        } else {
            "https://"
        };
        format!("{scheme}{domain}{slash}{path}")
    });
    let a = source::attribute(&url, referrer.as_deref(), &site.domain);
    let referrer = a
        .referrer_domain
        .as_ref()
        .and(referrer.as_deref())
        .and_then(crate::ingest::sessionize::referrer_without_query);
    let width = field("screen")
        .and_then(|s| s.split(['x', 'X']).next())
        .and_then(|w| w.trim().parse::<u32>().ok())
        .filter(|w| (1..=tallymark_core::wire::MAX_SCREEN_WIDTH).contains(w));
    let umami_browser = field("browser").unwrap_or("");
    let (os, os_version) = os_of(field("os").unwrap_or(""));
    // An iOS browser asking for the desktop site sends a Mac's User-Agent.
    let os = match (os, umami_browser) {
        (Os::MacOs, "crios" | "fxios" | "edge-ios") => Os::Ios,
        (os, _) => os,
    };
    let (os, os_version, device) = match field("device") {
        // TVs and consoles are no device class of core's, whatever their
        // screen.
        Some("smarttv" | "console") => (os, os_version, Device::Unknown),
        umami => device_of(os, os_version, width, umami.and_then(|d| d.parse().ok())),
    };
    let browser = browser_of(umami_browser, os);
    let country = field("country").and_then(crate::geo::country_code);
    // `region` (`US-CA`; before 2023 sometimes the bare `CA`), named
    // `subdivision1` before April 2025; only in the row's country.
    let region = country.as_ref().and_then(|cc| {
        let code = field("region")
            .or(field("subdivision1"))?
            .to_ascii_uppercase();
        let code = if code.contains('-') {
            code
        } else {
            format!("{cc}-{code}")
        };
        code.starts_with(&format!("{cc}-"))
            .then(|| names.regions.get(&code).cloned())
            .flatten()
    });
    let city = country
        .as_ref()
        .and_then(|_| crate::geo::place_name(field("city").map(str::to_string)));
    let name = match kind {
        Kind::Event => {
            let name = field("eventname").unwrap_or("(no event name)");
            Some(truncate(name, MAX_NAME_BYTES).to_string())
        }
        _ => None,
    };
    let data = match kind {
        Kind::Event => field("eventdata").or(field("data")).and_then(event_data),
        _ => None,
    };
    let session = field("sessionid").unwrap_or_default().to_string();
    Ok(Row::Hit(Box::new(Hit {
        ts_ms,
        session,
        kind,
        name,
        page: Some(normalize_path(&url)),
        hostname: Some(host),
        dims: Dimensions::of(
            a,
            referrer,
            Location {
                country,
                region,
                city,
            },
            Agent {
                browser,
                browser_major: None,
                os,
                os_version,
                device,
            },
        ),
        screen_width: width,
        data: data.map(Box::new),
    })))
}

/// Umami's browser names (detect-browser's: `chrome`, `crios`,
/// `edge-chromium`, `ios`, …) as core's; in-app views as their engine's
/// browser on that OS, as core reads their User-Agents.
fn browser_of(name: &str, os: Os) -> Browser {
    match name.to_ascii_lowercase().as_str() {
        "" => Browser::Unknown,
        "chrome" | "crios" | "chromium-webview" | "silk" | "miui" | "aol" => Browser::Chrome,
        "firefox" | "fxios" => Browser::Firefox,
        "safari" | "ios" | "ios-webview" => Browser::Safari,
        "edge" | "edge-chromium" | "edge-ios" => Browser::Edge,
        "opera" | "opera-mini" => Browser::Opera,
        "samsung" => Browser::SamsungInternet,
        "ie" => Browser::InternetExplorer,
        "yandexbrowser" => Browser::Yandex,
        "vivaldi" => Browser::Vivaldi,
        "facebook" | "instagram" | "kakaotalk" => match os {
            Os::Ios => Browser::Safari,
            Os::Android => Browser::Chrome,
            _ => Browser::Other,
        },
        _ => Browser::Other,
    }
}

/// Umami's OS names (`Windows 10`, `Mac OS`, `iOS`, `Android OS`, `Chrome
/// OS`, …) as core's, with Windows' version where it is a number.
fn os_of(name: &str) -> (Os, Option<OsVersion>) {
    let name = name.trim();
    if name.is_empty() {
        return (Os::Unknown, None);
    }
    if let Some(version) = name.strip_prefix("Windows ") {
        if version.starts_with("Mobile") || version.starts_with("Phone") {
            return (Os::Other, None);
        }
        // The versions core reads from a User-Agent.
        let version = matches!(version, "7" | "8" | "8.1" | "10")
            .then(|| version.parse().ok())
            .flatten();
        return (Os::Windows, version);
    }
    let os = match name {
        "Mac OS" | "macOS" => Os::MacOs,
        "iOS" => Os::Ios,
        "Android OS" | "Android" => Os::Android,
        "Linux" => Os::Linux,
        "Chrome OS" => Os::ChromeOs,
        _ => Os::Other,
    };
    (os, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tallymark_core::source::Channel;

    use crate::import::raw::tests::site;

    /// `website_event` joined with `session`, as Postgres writes it.
    const EXPORT: &str = "event_id,website_id,session_id,visit_id,created_at,url_path,url_query,utm_source,utm_medium,utm_campaign,utm_content,utm_term,referrer_path,referrer_query,referrer_domain,page_title,gclid,fbclid,msclkid,ttclid,li_fat_id,twclid,event_type,event_name,tag,hostname,browser,os,device,screen,language,country,region,city,distinct_id
e1,w1,5a45d799-e6f5-56ac-9893-fde6f769c36a,v1,2024-09-09 17:44:35.123+00,/pricing,,,,,,,/search,q=x,www.google.com,Pricing,,,,,,,1,,,example.com,chrome,Windows 10,laptop,1536x960,en-US,US,US-CA,Roseville,
e2,w1,5a45d799-e6f5-56ac-9893-fde6f769c36a,v1,2024-09-09 17:45:00+00,/pricing,,,,,,,,,,Pricing,,,,,,,2,signup,,example.com,chrome,Windows 10,laptop,1536x960,en-US,US,US-CA,Roseville,user-42
e3,w1,753ce23b-0dab-5a33-badc-4d2239528dd9,v2,2024-09-09T08:54:18Z,/blog/a/,ref=x,newsletter,email,spring,,,,,,A,abc,,,,,,1,,,www.example.com,ios,iOS,mobile,390x844,de-DE,DE,DE-BY,Munich,
e4,w1,753ce23b-0dab-5a33-badc-4d2239528dd9,v2,2024-09-09T08:55:18Z,/go,,,,,,,,,,,,,,,,,3,,,example.com,ios,iOS,mobile,390x844,de-DE,DE,DE-BY,Munich,
e5,w1,aaaa,v3,2024-09-09T08:55:18Z,/,,,,,,,,,,,,,,,,,1,,,localhost,firefox,Linux,desktop,,en,,,,
e6,w1,aaaa,v3,never,/,,,,,,,,,,,,,,,,,1,,,example.com,firefox,Linux,desktop,,en,,,,
";

    #[test]
    fn umamis_rows_read_by_name() {
        assert!(is_export(EXPORT.as_bytes()));
        let names = PlaceNames {
            regions: [("US-CA".to_string(), "California".to_string())].into(),
            cities: std::collections::HashMap::new(),
        };
        let hits = parse(&site(), "umami.csv", EXPORT.as_bytes(), &names).unwrap();
        // The link event; the other host and the bad time.
        assert_eq!(
            (hits.bots, hits.skipped),
            (1, 2),
            "{:?}",
            hits.skipped_lines
        );
        assert!(hits.skipped_lines[0].1.contains("localhost"));
        let all = hits.all();
        let [view, signup, blog] = &all[..] else {
            panic!("{all:?}");
        };
        assert_eq!(view.ts_ms, 1_725_903_875_123);
        assert_eq!(view.page.as_deref(), Some("/pricing"));
        assert_eq!(
            (
                view.dims.source.as_deref(),
                view.dims.referrer.as_deref(),
                view.dims.channel
            ),
            (
                Some("Google"),
                Some("google.com/search"),
                Channel::OrganicSearch
            )
        );
        assert_eq!(
            (
                view.dims.country.as_deref(),
                view.dims.region.as_deref(),
                view.dims.city.as_deref()
            ),
            (Some("US"), Some("California"), Some("Roseville"))
        );
        assert_eq!(
            (
                view.dims.browser,
                view.dims.os,
                view.dims.os_version.map(|v| v.to_string())
            ),
            (Browser::Chrome, Os::Windows, Some("10".into()))
        );
        // By core's widths (as `serve` would), not Umami's `laptop`.
        assert_eq!(
            (view.screen_width, view.dims.device),
            (Some(1536), Device::Desktop)
        );
        assert_eq!(
            (signup.kind, signup.name.as_deref(), signup.page.as_deref()),
            (Kind::Event, Some("signup"), Some("/pricing"))
        );
        assert_eq!(blog.page.as_deref(), Some("/blog/a"));
        assert_eq!(blog.hostname.as_deref(), Some("example.com"));
        assert_eq!(
            (
                blog.dims.utm_source.as_deref(),
                blog.dims.utm_medium.as_deref(),
                blog.dims.utm_campaign.as_deref(),
                blog.dims.channel
            ),
            (
                Some("newsletter"),
                Some("email"),
                Some("spring"),
                Channel::Email
            )
        );
        assert_eq!(blog.dims.click_id.map(|c| c.as_str()), Some("gclid"));
        assert_eq!(
            (blog.dims.region.as_deref(), blog.dims.city.as_deref()),
            (None, Some("Munich"))
        );
        assert_eq!(
            (blog.dims.browser, blog.dims.os, blog.dims.device),
            (Browser::Safari, Os::Ios, Device::Mobile)
        );
    }

    /// What a User-Agent would have told `serve`, from Umami's values.
    #[test]
    fn umami_values_map_as_core_reads_user_agents() {
        let header = "session_id,created_at,url_path,url_query,referrer_domain,referrer_path,event_type,hostname,browser,os,device,screen,country,region,city";
        let rows = [
            // An iPad asking for the desktop site; Chrome on it.
            "s1,2024-01-02T03:04:05Z,/a,,,,1,example.com,safari,Mac OS,tablet,820x1180,US,CA,Austin",
            "s2,2024-01-02T03:04:05Z,/b,,,,1,example.com,crios,Mac OS,desktop,,US,US-TX,\u{7}Austin",
            // The Google app; an in-app view; Windows 95; a TV.
            "s3,2024-01-02T03:04:05Z,/100%,,com.google.android.googlequicksearchbox,/https/www.google.com,1,example.com,facebook,Android OS,mobile,412x915,MX,US-CA,",
            "s4,2024-01-02T03:04:05Z,/app,x=1#/settings,,,1,example.com,chrome,Windows 95,desktop,,,,",
            "s5,2024-01-02T03:04:05Z,/,,,,1,example.com,chrome,Linux,smarttv,1920x1080,,,",
        ];
        let text = format!("{header}\n{}\n", rows.join("\n")).replace("\\u{7}", "\u{7}");
        let names = PlaceNames {
            regions: [
                ("US-CA".to_string(), "California".to_string()),
                ("US-TX".to_string(), "Texas".to_string()),
            ]
            .into(),
            cities: std::collections::HashMap::new(),
        };
        let hits = parse(&site(), "u.csv", text.as_bytes(), &names).unwrap();
        let all = hits.all();
        let [ipad, crios, app, windows, tv] = &all[..] else {
            panic!("{all:?} {:?}", hits.skipped_lines);
        };
        assert_eq!(
            (ipad.dims.os, ipad.dims.device, ipad.dims.browser),
            (Os::Ios, Device::Tablet, Browser::Safari)
        );
        // A bare region code is the row's country's.
        assert_eq!(ipad.dims.region.as_deref(), Some("California"));
        assert_eq!(
            (crios.dims.os, crios.dims.browser),
            (Os::Ios, Browser::Chrome)
        );
        assert_eq!(crios.dims.city.as_deref(), Some("Austin"));
        assert_eq!(
            (
                app.dims.source.as_deref(),
                app.dims.channel,
                app.dims.referrer.as_deref()
            ),
            (Some("Google"), Channel::OrganicSearch, None)
        );
        assert_eq!(app.dims.browser, Browser::Chrome);
        // A region of another country than the row's is none.
        assert_eq!(
            (app.dims.country.as_deref(), app.dims.region.as_deref()),
            (Some("MX"), None)
        );
        // As `serve` stores it (a `%` stays escaped).
        assert_eq!(app.page.as_deref(), Some("/100%25"));
        assert_eq!(windows.page.as_deref(), Some("/app#/settings"));
        assert_eq!(
            (windows.dims.os, windows.dims.os_version),
            (Os::Windows, None)
        );
        assert_eq!(tv.dims.device, Device::Unknown);
        // `SELECT *` over a join: two `created_at` columns.
        let e = parse(
            &site(),
            "u.csv",
            b"session_id,created_at,url_path,event_type,created_at\ns,2024-01-02T03:04:05Z,/,1,2023-01-01T00:00:00Z\n",
            &PlaceNames::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("two `createdat` columns"), "{e}");
    }

    #[test]
    fn camel_case_headers_and_other_files() {
        let text =
            "sessionId,createdAt,urlPath,eventType,eventName\ns1,2024-01-02T03:04:05Z,/x,1,\n";
        assert!(is_export(text.as_bytes()));
        let hits = parse(&site(), "x.csv", text.as_bytes(), &PlaceNames::default()).unwrap();
        assert_eq!(hits.len(), 1);
        assert!(!is_export(b"2Path,Title,Event\n"));
        assert!(!is_export(b"date,visitors\n"));
        let e = parse(
            &site(),
            "x.csv",
            b"url_path,session_id\n/a,s\n",
            &PlaceNames::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no `createdat` column"), "{e}");
    }

    /// A custom event's `event_data` object: props as the tracker's `data`
    /// (nested values left out), its revenue; past the limits props are
    /// left out or cut, not the event; a page view's is not read.
    #[test]
    fn event_data_is_props_and_revenue() {
        let long = "v".repeat(300);
        let key = "k".repeat(65);
        let data = format!(
            r#"{{"plan":"pro","seats":3,"annual":true,"revenue":19.99,"currency":"eur","nested":{{"a":1}},"long":"{long}","{key}":"x"}}"#
        );
        let csv = |data: &str| {
            format!(
                "session_id,created_at,url_path,event_type,event_name,hostname,event_data\n\
                 s1,2024-01-02T03:04:05Z,/buy,2,Purchase,example.com,\"{q}\"\n\
                 s1,2024-01-02T03:04:06Z,/buy,1,,example.com,\"{q}\"\n",
                q = data.replace('"', "\"\"")
            )
        };
        let hits = parse(
            &site(),
            "x.csv",
            csv(&data).as_bytes(),
            &PlaceNames::default(),
        )
        .unwrap();
        let all = hits.all();
        let event = all[0].data.as_deref().unwrap();
        let props: serde_json::Value =
            serde_json::from_str(event.props.as_deref().unwrap()).unwrap();
        assert_eq!(
            props,
            serde_json::json!({"plan": "pro", "seats": 3, "annual": true, "long": "v".repeat(256)})
        );
        let revenue = event.revenue.as_ref().unwrap();
        assert_eq!((revenue.amount, revenue.currency.as_str()), (19.99, "EUR"));
        assert_eq!(all[1].data, None);
        // Not an object, or no real currency: no revenue, the rest props.
        for (data, want) in [
            ("[1,2]", None),
            ("not json", None),
            (
                r#"{"revenue":5,"currency":"dollars"}"#,
                Some(serde_json::json!({"revenue": 5, "currency": "dollars"})),
            ),
            (
                r#"{"revenue":5e12,"currency":"EUR"}"#,
                Some(serde_json::json!({"revenue": 5_000_000_000_000_i64, "currency": "EUR"})),
            ),
        ] {
            let hits = parse(
                &site(),
                "x.csv",
                csv(data).as_bytes(),
                &PlaceNames::default(),
            )
            .unwrap();
            let got = hits.all()[0].data.clone().map(|d| {
                assert_eq!(d.revenue, None);
                serde_json::from_str::<serde_json::Value>(d.props.as_deref().unwrap()).unwrap()
            });
            assert_eq!(got, want, "{data}");
        }
    }

    proptest::proptest! {
        /// Any text as a custom event's `event_data`: read within core's
        /// limits, or left out; never a panic.
        #[test]
        fn any_event_data_keeps_to_the_limits(
            pairs in proptest::collection::vec((".{0,80}", ".{0,300}", 0u8..4), 0..40),
            raw in ".{0,64}",
        ) {
            let mut object = serde_json::Map::new();
            for (key, value, kind) in &pairs {
                let value = match kind {
                    0 => serde_json::json!(value),
                    1 => serde_json::json!(value.len() as f64 * 1.5e10),
                    2 => serde_json::json!(value.is_empty()),
                    _ => serde_json::json!({"nested": value}),
                };
                object.insert(key.clone(), value);
            }
            object.insert("revenue".into(), serde_json::json!(pairs.len() as f64 * 1e11));
            object.insert("currency".into(), serde_json::json!("EUR"));
            for text in [serde_json::Value::Object(object).to_string(), raw] {
                let data = event_data(&text);
                if let Some(r) = data.as_ref().and_then(|d| d.revenue.as_ref()) {
                    proptest::prop_assert!(r.amount.abs() <= 1e12 && r.currency == "EUR");
                }
                if let Some(EventData { props: Some(props), .. }) = data {
                    let props: Props = serde_json::from_str(&props).unwrap();
                    let mut payload = tallymark_core::wire::PayloadV1::pageview(
                        "example.com",
                        "https://example.com/",
                    );
                    payload.kind = Kind::Event;
                    payload.name = Some("e".into());
                    payload.props = Some(props);
                    proptest::prop_assert!(payload.check_limits().is_ok());
                }
            }
        }

        /// Any rows under Umami's header, or any bytes: read (rows skipped
        /// and counted) or refused with an error; never a panic.
        #[test]
        fn any_export_reads_or_is_refused(
            rows in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::strategy::Just("2024-02-29T10:00:00Z".to_string()),
                        proptest::strategy::Just("1".to_string()),
                        proptest::strategy::Just("example.com".to_string()),
                        "[0-9x]{0,9}",
                        ".{0,24}",
                    ],
                    0..36,
                ),
                0..8,
            ),
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96),
        ) {
            let mut text = EXPORT.lines().next().unwrap_or_default().to_string();
            text.push('\n');
            for r in &rows {
                text.push_str(&r.join(","));
                text.push('\n');
            }
            for bytes in [text.into_bytes(), raw] {
                let _ = parse(&site(), "x.csv", &bytes, &PlaceNames::default());
            }
        }
    }
}
