//! What a request body asks for: a v1 payload ([`wire`]), or an event in
//! Plausible's or Umami's format, translated into one.
//!
//! Umami's tracker and `@umami/node` post `{"type": "event", "payload":
//! {…}}` to `/api/send` (the collector routes it here too); see
//! `from_umami`.
//!
//! Plausible's trackers (its script, `@plausible-analytics/tracker`,
//! `plausible-tracker`, `next-plausible`, the CMS plugins) and its Events API
//! (server-side and mobile clients) all `POST /api/event` a JSON object with
//! short keys (`n`, `u`, `d`, `r`, `w`, `h`, `p`, `$`) or long ones (`name`,
//! `url`, `domain`, `referrer`, `screen_width`, `hashMode`, `props`,
//! `revenue`). A site moving to Tallymark keeps its tracker and points its
//! endpoint at the collector; [`parse`] turns such a body into a
//! [`PayloadV1`], which then runs through the same limits and pipeline as the
//! SDK's.
//!
//! Liwan's tracker posts the same shape with long keys (`name`, `url`,
//! `referrer`) plus `entity_id` and a `utm` object, read as Plausible's.
//!
//! Only a failed v1 parse looks further, so the SDK's bodies pay nothing. A
//! body is Plausible's when it is a JSON object with neither `kind` nor
//! `site` (v1's required keys) and with one of `n`, `name`, `u`, `d`,
//! `domain`.
//!
//! Where Plausible is lenient, so is this: a screen width that is not a
//! width is left out, props that are not an object (or a JSON string of one)
//! are left out, and so are property values that are empty, null or nested,
//! as Plausible does. What v1 refuses (an over-long name, a 31st property, a
//! bad currency) is still refused, with the same message.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::bots::BotReason;
use crate::classify::DropReason;
use crate::validate::{host_belongs_to_site, hostname, normalize_site, strip_www};
use crate::wire::{
    self, Kind, MAX_SCREEN_WIDTH, PayloadV1, PropValue, Props, Revenue, WireError, has_http_scheme,
};

/// What a request body asks the collector to do.
// Made once per request and taken apart at once: boxing the payload would
// only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Record this event. `other_sites` is the rest of a Plausible
    /// comma-separated `domain` list (its "roll-up" setup): when
    /// `payload.site` is not registered, the first of them that is takes its
    /// place. The event is recorded once.
    Event {
        payload: PayloadV1,
        other_sites: Vec<String>,
    },
    /// Answered as a deliberate drop, nothing stored: Umami's `identify`
    /// call (data about a person: nobody is identified here), or a hit
    /// GoatCounter's script marked as automated.
    Drop(DropReason),
}

/// Parses a v1 body, or failing that a Plausible one. A body that is neither
/// gets v1's error.
pub fn parse(body: &[u8]) -> Result<Incoming, WireError> {
    match wire::parse(body) {
        Ok(payload) => Ok(Incoming::Event {
            payload,
            other_sites: Vec::new(),
        }),
        Err(WireError::BodyTooLarge) => Err(WireError::BodyTooLarge),
        Err(v1) => match foreign_object(body) {
            Some(object) if is_umami(&object) => from_umami(&object),
            Some(object) if is_plausible(&object) => from_plausible(&object),
            _ => Err(v1),
        },
    }
}

/// The body as a JSON object that is not v1's (neither `kind` nor `site`).
fn foreign_object(body: &[u8]) -> Option<Map<String, Value>> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let object: Map<String, Value> = serde_json::from_slice(body).ok()?;
    (!object.contains_key("kind") && !object.contains_key("site")).then_some(object)
}

/// Plausible's shape: one of `n`, `name`, `u`, `d`, `domain`.
fn is_plausible(object: &Map<String, Value>) -> bool {
    ["n", "name", "u", "d", "domain"]
        .iter()
        .any(|k| object.contains_key(*k))
}

/// Umami's shape: `{"type": "event", "payload": {…}}`.
fn is_umami(object: &Map<String, Value>) -> bool {
    object.get("type").is_some_and(Value::is_string)
        && object.get("payload").is_some_and(Value::is_object)
}

/// The first of Plausible's two names for a key that is present and not
/// null, with the name it was found under.
fn field<'a>(
    o: &'a Map<String, Value>,
    short: &'static str,
    long: &'static str,
) -> Option<(&'static str, &'a Value)> {
    [short, long]
        .into_iter()
        .find_map(|k| o.get(k).filter(|v| !v.is_null()).map(|v| (k, v)))
}

fn malformed(field: &str, reason: &str) -> WireError {
    WireError::Malformed {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

fn required_string<'a>(
    o: &'a Map<String, Value>,
    short: &'static str,
    long: &'static str,
) -> Result<&'a str, WireError> {
    match field(o, short, long) {
        Some((_, Value::String(s))) => Ok(s),
        Some((key, _)) => Err(malformed(key, "must be a string")),
        None => Err(malformed(long, "required")),
    }
}

fn from_plausible(o: &Map<String, Value>) -> Result<Incoming, WireError> {
    let name = required_string(o, "n", "name")?;
    let kind = match name {
        "pageview" => Kind::Pageview,
        "engagement" => Kind::Engagement,
        _ => Kind::Event,
    };
    let url = with_utm(page_url(required_string(o, "u", "url")?, hash_mode(o)), o);
    let mut sites: Vec<String> = match field(o, "d", "domain") {
        Some((_, Value::String(list))) => list
            .split(',')
            .map(|d| strip_www(d.trim()).to_string())
            .filter(|d| !d.is_empty())
            .collect(),
        Some((key, _)) => return Err(malformed(key, "must be a string")),
        None => Vec::new(),
    };
    let host = url::Url::parse(&url).ok().and_then(|u| hostname(&u));
    if sites.is_empty() {
        // As Plausible does: the page's own host, without `www.`.
        sites.push(
            host.clone()
                .ok_or_else(|| malformed("domain", "required when url has no host"))?,
        );
        // Liwan's `entity_id` (its name for a site) after it, in case that
        // is what was registered, then the host's parent domains (a
        // subdomain's page on its site's registration).
        if let Some(Value::String(entity)) = o.get("entity_id") {
            let entity = strip_www(entity.trim());
            if !entity.is_empty() && !sites.iter().any(|s| s == entity) {
                sites.push(entity.to_string());
            }
        }
        for parent in host.iter().flat_map(|h| parent_domains(h)) {
            if !sites.contains(&parent) {
                sites.push(parent);
            }
        }
    }
    // Domains the page belongs to first (a list may name a roll-up site
    // before the page's own), in their order otherwise.
    if let Some(host) = &host {
        sites.sort_by_key(|d| !normalize_site(d).is_some_and(|d| host_belongs_to_site(host, &d)));
    }
    let site = sites.remove(0);
    let referrer = match field(o, "r", "referrer") {
        Some((_, Value::String(r))) if !r.trim().is_empty() => Some(r.clone()),
        _ => None,
    };
    let revenue = match (kind, field(o, "$", "revenue")) {
        (Kind::Event, Some((key, value))) => Some(revenue(key, value)?),
        // Plausible ignores revenue on a pageview; v1 would refuse it.
        _ => None,
    };
    let mut payload = PayloadV1 {
        kind,
        site,
        url,
        referrer,
        screen_width: screen_width(o),
        name: (kind == Kind::Event).then(|| name.to_string()),
        props: props(o),
        revenue,
        event_id: None,
        // `i: false`: Plausible's non-interactive event.
        interactive: match field(o, "i", "interactive") {
            Some((_, Value::Bool(false))) if kind == Kind::Event => Some(false),
            _ => None,
        },
        // Its engagement ping: `e` engaged milliseconds (capped at a day),
        // `sd` scroll depth in percent.
        engaged_ms: (kind == Kind::Engagement).then(|| {
            let ms = o.get("e").and_then(Value::as_f64).unwrap_or(0.0);
            ms.clamp(0.0, f64::from(wire::MAX_ENGAGED_MS)) as u32
        }),
        scroll_depth: o
            .get("sd")
            .and_then(Value::as_f64)
            .filter(|_| kind == Kind::Engagement)
            .filter(|d| d.is_finite())
            .map(|d| d.clamp(0.0, 100.0).round() as u8),
    };
    if let Some(revenue) = &mut payload.revenue {
        revenue.currency.make_ascii_uppercase();
    }
    payload.check_limits()?;
    Ok(Incoming::Event {
        payload,
        other_sites: sites,
    })
}

/// Umami's tracker (`POST /api/send`, `{"type", "payload": {"website",
/// "hostname", "url", "referrer", "screen", "name", "data", …}}`). The
/// `website` id is not needed: the site is the registered domain the page's
/// host belongs to (the host first, then each parent domain). `url` is the
/// path Umami sends (or a full URL); `referrer` counts only as a full URL
/// (after an in-app navigation Umami sends the previous path); `screen` is
/// `WIDTHxHEIGHT`; `data` is the event's props, its numeric `revenue` with a
/// `currency` the revenue. `title` and `language` are not recorded.
fn from_umami(o: &Map<String, Value>) -> Result<Incoming, WireError> {
    match o.get("type").and_then(Value::as_str) {
        Some("event") => {}
        Some("identify") => return Ok(Incoming::Drop(DropReason::Identify)),
        _ => return Err(malformed("type", "must be \"event\" or \"identify\"")),
    }
    let Some(Value::Object(p)) = o.get("payload") else {
        return Err(malformed("payload", "must be an object"));
    };
    let text = |key: &str| {
        p.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    // Umami 2's tracker sends `encodeURI(location.pathname + search)` and
    // `encodeURI(document.referrer)`: addresses already percent-encoded by
    // the browser, encoded once more (`/caf%C3%A9` as `/caf%25C3%25A9`).
    // One decoding gives back what the browser had.
    let url_text = text("url").map(decode_once);
    let raw = url_text.as_deref().unwrap_or("/");
    let url = if has_http_scheme(raw) {
        raw.to_string()
    } else {
        let host = text("hostname")
            .ok_or_else(|| malformed("payload.hostname", "required when url is a path"))?;
        let slash = if raw.starts_with('/') { "" } else { "/" };
        ["https://", host, slash, raw].concat()
    };
    let host = url::Url::parse(&url)
        .ok()
        .and_then(|u| hostname(&u))
        .ok_or_else(|| malformed("payload.url", "not a page address"))?;
    let mut sites = vec![host.clone()];
    sites.extend(parent_domains(&host));
    let name = text("name");
    let kind = if name.is_some() {
        Kind::Event
    } else {
        Kind::Pageview
    };
    let (props, revenue) = match p.get("data") {
        Some(Value::Object(data)) => umami_data(data, kind),
        _ => (Props::new(), None),
    };
    let screen_width = text("screen")
        .and_then(|s| s.split('x').next())
        .and_then(|w| w.trim().parse::<u32>().ok())
        .filter(|w| (1..=MAX_SCREEN_WIDTH).contains(w));
    let payload = PayloadV1 {
        kind,
        referrer: text("referrer")
            .map(decode_once)
            .filter(|r| has_http_scheme(r)),
        screen_width,
        name: name.map(str::to_string),
        props: (!props.is_empty()).then_some(props),
        revenue,
        ..PayloadV1::pageview(sites.remove(0), url)
    };
    payload.check_limits()?;
    Ok(Incoming::Event {
        payload,
        other_sites: sites,
    })
}

/// A hit of GoatCounter's `count.js`: the query of its `GET /count?p=…`
/// (`p` the path and query, or with `e=true` an event's name; `r` the
/// referrer, `s` `width,height,ratio`, `b` non-zero when the script saw a
/// driven browser, `q` the page's own query: its `utm_*` parameters are
/// added when `p` (a canonical link's path) lacks them; `t` and `rnd` are
/// not needed). It sends no site and no host: the site is the one in the
/// endpoint's path (`/count/example.com`), else the page's host (from the
/// request's `Referer` or `Origin`), else both are required. An event's
/// page is the `Referer`'s path when it is of that host, else `/`.
pub fn from_goatcounter(
    query: &[(String, String)],
    site: Option<&str>,
    page: Option<&url::Url>,
) -> Result<Incoming, WireError> {
    let page_host = page.and_then(hostname);
    let get = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    if get("b").is_some_and(|b| b != "0") {
        return Ok(Incoming::Drop(DropReason::Bot(BotReason::Automation)));
    }
    let path = get("p").ok_or_else(|| malformed("p", "required (the page's path)"))?;
    let host = page_host
        .as_deref()
        .map(strip_www)
        .filter(|h| !h.is_empty())
        .or(site)
        .ok_or_else(|| {
            malformed(
                "site",
                "unknown: send the page's Origin or Referer, or put the site in the \
                 endpoint (/count/example.com)",
            )
        })?;
    let event = get("e") == Some("true");
    let url = if event {
        let on_page = page
            .filter(|p| hostname(p).is_some_and(|h| strip_www(&h) == host))
            .map_or("/", url::Url::path);
        ["https://", host, on_page].concat()
    } else if has_http_scheme(path) {
        path.to_string()
    } else {
        let slash = if path.starts_with('/') { "" } else { "/" };
        ["https://", host, slash, path].concat()
    };
    let url = match get("q").filter(|_| !event) {
        Some(q) => add_utm(
            url,
            url::form_urlencoded::parse(q.trim_start_matches('?').as_bytes()).into_owned(),
        ),
        None => url,
    };
    let mut sites: Vec<String> = site.map(str::to_string).into_iter().collect();
    if sites.is_empty() {
        sites.push(host.to_string());
        sites.extend(parent_domains(host));
    }
    let payload = PayloadV1 {
        kind: if event { Kind::Event } else { Kind::Pageview },
        referrer: get("r").filter(|r| has_http_scheme(r)).map(str::to_string),
        screen_width: get("s")
            .and_then(|s| s.split(',').next())
            .and_then(|w| w.trim().parse::<u32>().ok())
            .filter(|w| (1..=MAX_SCREEN_WIDTH).contains(w)),
        name: event.then(|| path.trim_start_matches('/').to_string()),
        ..PayloadV1::pageview(sites.remove(0), url)
    };
    payload.check_limits()?;
    Ok(Incoming::Event {
        payload,
        other_sites: sites,
    })
}

/// Each parent domain of `host` down to two labels, nearest first (none for
/// an IP address): `a.b.example.com` → `b.example.com`, `example.com`.
fn parent_domains(host: &str) -> Vec<String> {
    let mut parents = Vec::new();
    if host.parse::<core::net::Ipv4Addr>().is_ok() || host.starts_with('[') {
        return parents;
    }
    let mut rest = host;
    while let Some((_, parent)) = rest.split_once('.') {
        if !parent.contains('.') {
            break;
        }
        parents.push(parent.to_string());
        rest = parent;
    }
    parents
}

/// `text` with its `%XX` escapes decoded once, or as it was when that is
/// not UTF-8. (Not `form_urlencoded`: a `+` stays a `+`.)
fn decode_once(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map_or_else(|_| text.to_string(), |decoded| decoded.into_owned())
}

/// `url` with Liwan's `utm` object (`{"source": "news", "medium": null, …}`:
/// its tracker sends the page without its query) as the `utm_*` parameters
/// the collector reads, unless the URL has that parameter already.
fn with_utm(url: String, o: &Map<String, Value>) -> String {
    let Some(Value::Object(utm)) = o.get("utm") else {
        return url;
    };
    let pairs = ["source", "medium", "campaign", "term", "content"]
        .into_iter()
        .filter_map(|key| match utm.get(key) {
            Some(Value::String(value)) => Some((["utm_", key].concat(), value.clone())),
            _ => None,
        });
    add_utm(url, pairs)
}

/// `url` with the `utm_*` parameters of `pairs` it does not have yet.
fn add_utm(url: String, pairs: impl Iterator<Item = (String, String)>) -> String {
    let Ok(mut parsed) = url::Url::parse(&url) else {
        return url;
    };
    let mut added = false;
    for (param, value) in pairs {
        if !param.starts_with("utm_")
            || value.trim().is_empty()
            || parsed.query_pairs().any(|(k, _)| k == param.as_str())
        {
            continue;
        }
        parsed.query_pairs_mut().append_pair(&param, value.trim());
        added = true;
    }
    if added { parsed.into() } else { url }
}

/// `h: 1` (or `hashMode`): the page is a hash-routed app.
fn hash_mode(o: &Map<String, Value>) -> bool {
    match field(o, "h", "hashMode") {
        Some((_, Value::Number(n))) => n.as_f64() == Some(1.0),
        Some((_, Value::Bool(b))) => *b,
        Some((_, Value::String(s))) => s == "1" || s == "true",
        _ => false,
    }
}

/// Outside hash mode Plausible ignores the fragment. In hash mode the URL
/// keeps it, and the collector counts it as a route when it is one
/// (`#/…`, `#!/…`).
fn page_url(url: &str, hash_mode: bool) -> String {
    match url.split_once('#') {
        Some((before, _)) if !hash_mode => before.to_string(),
        _ => url.to_string(),
    }
}

/// `w` as Plausible's tracker sends it (`innerWidth`, a whole number), or
/// as a numeric string; anything else is left out.
fn screen_width(o: &Map<String, Value>) -> Option<u32> {
    let width = match field(o, "w", "screen_width")?.1 {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let width = width.round();
    (width >= 1.0 && width <= f64::from(MAX_SCREEN_WIDTH)).then_some(width as u32)
}

/// Props from `p`, `props`, or the older `m`/`meta`: an object, or a string
/// holding one (what `plausible-tracker` sends). Values that are empty
/// strings, null, arrays or objects are left out, as Plausible does.
fn props(o: &Map<String, Value>) -> Option<Props> {
    let raw = ["m", "meta", "p", "props"]
        .iter()
        .find_map(|k| o.get(*k).filter(|v| !v.is_null()))?;
    let parsed;
    let object = match raw {
        Value::Object(object) => object,
        Value::String(text) => {
            parsed = serde_json::from_str::<Map<String, Value>>(text).ok()?;
            &parsed
        }
        _ => return None,
    };
    let props = flat_props(object);
    (!props.is_empty()).then_some(props)
}

/// An Umami event's `data` (its tracker's, or its `event_data` rows as one
/// object: `tallymark import`) as Tallymark's props and revenue: strings,
/// numbers and booleans are props (anything else is left out); a custom
/// event's numeric `revenue` (within core's limit) with a real `currency`
/// is its revenue, and those two are then no props. Anything else stays a
/// prop rather than losing the event to a refused revenue.
pub fn umami_data(data: &Map<String, Value>, kind: Kind) -> (Props, Option<Revenue>) {
    let props = flat_props(data);
    let currency = match props.get("currency") {
        Some(PropValue::String(c)) => c.trim().to_ascii_uppercase(),
        _ => String::new(),
    };
    let revenue = match (kind, props.get("revenue")) {
        (Kind::Event, Some(PropValue::Number(amount)))
            if wire::is_currency(&currency) && amount.abs() <= wire::MAX_REVENUE_AMOUNT =>
        {
            Some(Revenue {
                amount: *amount,
                currency,
            })
        }
        _ => None,
    };
    if revenue.is_none() {
        return (props, None);
    }
    let props = props
        .iter()
        .filter(|(k, _)| *k != "revenue" && *k != "currency")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (props, revenue)
}

/// The scalar values of `object` as props; empty strings, nulls, arrays and
/// objects are left out (as Plausible and Umami's flat reports do).
fn flat_props(object: &Map<String, Value>) -> Props {
    object
        .iter()
        .filter_map(|(key, value)| {
            let value = match value {
                Value::String(s) if !s.is_empty() => PropValue::String(s.clone()),
                Value::Number(n) => PropValue::Number(n.as_f64()?),
                Value::Bool(b) => PropValue::Bool(*b),
                _ => return None,
            };
            Some((key.clone(), value))
        })
        .collect()
}

/// `$` / `revenue`: `{"amount": 19.99 or "19.99", "currency": "EUR"}`.
fn revenue(key: &str, value: &Value) -> Result<Revenue, WireError> {
    let Value::Object(o) = value else {
        return Err(malformed(key, "must be an object with amount and currency"));
    };
    let amount = match o.get("amount") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| malformed(&[key, ".amount"].concat(), "must be a number"))?;
    let currency = match o.get("currency") {
        Some(Value::String(c)) => c.trim().to_string(),
        _ => return Err(malformed(&[key, ".currency"].concat(), "must be a string")),
    };
    Ok(Revenue { amount, currency })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(body: &str) -> (PayloadV1, Vec<String>) {
        match parse(body.as_bytes()) {
            Ok(Incoming::Event {
                payload,
                other_sites,
            }) => (payload, other_sites),
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn v1_bodies_are_unchanged() {
        let body = r#"{"kind":"pageview","site":"example.com","url":"https://example.com/a"}"#;
        assert_eq!(
            event(body),
            (
                PayloadV1::pageview("example.com", "https://example.com/a"),
                vec![]
            )
        );
        // A v1 body with an error keeps v1's error, not a Plausible one.
        let error = parse(br#"{"site":"example.com","url":"https://example.com/"}"#).unwrap_err();
        assert!(
            error.to_string().contains("missing field `kind`"),
            "{error}"
        );
    }

    #[test]
    fn plausible_script_pageview() {
        // What Plausible's script and @plausible-analytics/tracker send.
        let (p, other) = event(
            r#"{"n":"pageview","v":36,"u":"https://www.example.com/blog?utm_source=news#top","d":"example.com","r":"https://news.ycombinator.com/","w":1280}"#,
        );
        assert_eq!(p.kind, Kind::Pageview);
        assert_eq!(p.site, "example.com");
        assert_eq!(p.url, "https://www.example.com/blog?utm_source=news");
        assert_eq!(p.referrer.as_deref(), Some("https://news.ycombinator.com/"));
        assert_eq!(p.screen_width, Some(1280));
        assert_eq!(p.name, None);
        assert!(other.is_empty());
    }

    #[test]
    fn events_api_long_names() {
        // Plausible's documented server-side call.
        let (p, _) = event(
            r#"{"name":"Signup","url":"http://dummy.site/join","domain":"dummy.site","screen_width":1666,"props":{"plan":"pro","seats":3,"annual":true,"empty":"","gone":null,"list":[1]},"revenue":{"amount":"19.90","currency":"eur"}}"#,
        );
        assert_eq!(p.kind, Kind::Event);
        assert_eq!(p.name.as_deref(), Some("Signup"));
        assert_eq!(p.screen_width, Some(1666));
        let props = p.props.unwrap();
        assert_eq!(props.len(), 3, "{props:?}");
        assert_eq!(props.get("seats"), Some(&PropValue::Number(3.0)));
        assert_eq!(props.get("annual"), Some(&PropValue::Bool(true)));
        assert_eq!(
            p.revenue,
            Some(Revenue {
                amount: 19.9,
                currency: "EUR".into()
            })
        );
    }

    #[test]
    fn props_as_a_json_string_and_hash_mode() {
        // plausible-tracker 0.3 sends props as a string and h as 0 or 1.
        let (p, _) = event(
            r#"{"n":"Download","u":"https://app.example/#/files/1","d":"app.example","r":null,"w":390,"h":1,"p":"{\"file\":\"a.pdf\"}"}"#,
        );
        assert_eq!(p.url, "https://app.example/#/files/1");
        assert_eq!(p.referrer, None);
        assert_eq!(
            p.props.unwrap().get("file"),
            Some(&PropValue::String("a.pdf".into()))
        );
        let (p, _) = event(
            r#"{"n":"pageview","u":"https://app.example/#/files/1","d":"app.example","h":0}"#,
        );
        assert_eq!(p.url, "https://app.example/");
    }

    #[test]
    fn domain_lists_and_defaults() {
        let (p, other) = event(
            r#"{"n":"pageview","u":"https://example.com/","d":" www.example.com , rollup.example ,"}"#,
        );
        assert_eq!(p.site, "example.com");
        assert_eq!(other, vec!["rollup.example".to_string()]);
        // The page's own domain comes first, whatever the list's order.
        let (p, other) = event(
            r#"{"n":"pageview","u":"https://blog.example.com/","d":"rollup.example,other.example,example.com"}"#,
        );
        assert_eq!(p.site, "example.com");
        assert_eq!(
            other,
            vec!["rollup.example".to_string(), "other.example".to_string()]
        );
        // No domain: the page's host, as Plausible does.
        let (p, _) = event(r#"{"n":"pageview","u":"https://www.shop.example/x"}"#);
        assert_eq!(p.site, "shop.example");
    }

    #[test]
    fn lenient_where_plausible_is() {
        for width in [r#""1280""#, "1280.4", r#""wide""#, "0", "-3", "1e9", "true"] {
            let body = [
                r#"{"n":"pageview","u":"https://example.com/","d":"example.com","w":"#,
                width,
                "}",
            ]
            .concat();
            let (p, _) = event(&body);
            let want = if width.contains("1280") {
                Some(1280)
            } else {
                None
            };
            assert_eq!(p.screen_width, want, "{width}");
        }
        // Props that are not an object are left out, not refused.
        let (p, _) = event(r#"{"n":"x","u":"https://example.com/","d":"example.com","p":"[1,2]"}"#);
        assert_eq!(p.props, None);
        // Revenue on a pageview is ignored (v1 refuses it).
        let (p, _) = event(
            r#"{"n":"pageview","u":"https://example.com/","d":"example.com","$":{"amount":5,"currency":"EUR"}}"#,
        );
        assert_eq!(p.revenue, None);
    }

    #[test]
    fn a_byte_order_mark_is_not_content() {
        let (p, _) = event("\u{feff}{\"n\":\"pageview\",\"u\":\"https://example.com/\"}");
        assert_eq!(p.site, "example.com");
    }

    #[test]
    fn non_interactive_events_stay_so() {
        let (p, _) = event(r#"{"n":"Scroll","u":"https://example.com/","i":false}"#);
        assert_eq!(p.interactive, Some(false));
        let (p, _) = event(r#"{"n":"Click","u":"https://example.com/","i":true}"#);
        assert_eq!(p.interactive, None);
        let (p, _) = event(r#"{"n":"pageview","u":"https://example.com/","i":false}"#);
        assert_eq!(p.interactive, None, "a view is no event");
    }

    #[test]
    fn umami_addresses_are_decoded_once_and_ips_have_no_parents() {
        let (p, other) = event(
            r#"{"type":"event","payload":{"website":"w","hostname":"example.com","url":"/caf%25C3%25A9?q=a%2520b+c","referrer":"https://search.example/?q=caf%25C3%25A9"}}"#,
        );
        assert_eq!(p.url, "https://example.com/caf%C3%A9?q=a%20b+c");
        assert_eq!(
            p.referrer.as_deref(),
            Some("https://search.example/?q=caf%C3%A9")
        );
        assert!(other.is_empty());
        let (p, other) = event(
            r#"{"type":"event","payload":{"website":"w","hostname":"192.168.0.10","url":"/"}}"#,
        );
        assert_eq!((p.site.as_str(), other.len()), ("192.168.0.10", 0));
        // A currency that is none stays a prop; the event is kept.
        let (p, _) = event(
            r#"{"type":"event","payload":{"website":"w","hostname":"example.com","url":"/","name":"Buy","data":{"revenue":5,"currency":"dollars"}}}"#,
        );
        assert_eq!(p.revenue, None);
        assert_eq!(p.props.as_ref().map(Props::len), Some(2));
        // A truncated escape stays as it is.
        assert_eq!(decode_once("/a%2"), "/a%2");
        assert_eq!(decode_once("/%zz%41"), "/%zzA");
    }

    #[test]
    fn umami_tracker_views_and_events() {
        // What Umami's tracker sends on load: the path, its own hostname.
        let (p, other) = event(
            r#"{"type":"event","payload":{"website":"4fb7fa4c-5b46-438d-94b3-3a8fb9bc2e8b","hostname":"docs.example.com","screen":"1440x900","language":"en-US","title":"Docs","url":"/guide?utm_source=newsletter","referrer":"https://duckduckgo.com/"}}"#,
        );
        assert_eq!(p.kind, Kind::Pageview);
        assert_eq!(
            p.url,
            "https://docs.example.com/guide?utm_source=newsletter"
        );
        assert_eq!(
            (p.site.as_str(), other),
            ("docs.example.com", vec!["example.com".to_string()])
        );
        assert_eq!(p.screen_width, Some(1440));
        assert_eq!(p.referrer.as_deref(), Some("https://duckduckgo.com/"));
        // An in-app navigation: the previous path is no referrer.
        let (p, _) = event(
            r#"{"type":"event","payload":{"website":"w","hostname":"example.com","url":"/b","referrer":"/a"}}"#,
        );
        assert_eq!(p.referrer, None);
        // A custom event with data, and Umami's revenue.
        let (p, other) = event(
            r#"{"type":"event","payload":{"website":"w","hostname":"www.shop.example","url":"/checkout","name":"Purchase","data":{"plan":"pro","revenue":19.99,"currency":"eur","items":[1]}}}"#,
        );
        assert_eq!(p.kind, Kind::Event);
        assert_eq!(p.name.as_deref(), Some("Purchase"));
        assert_eq!(p.site, "shop.example");
        assert!(other.is_empty());
        assert_eq!(p.props.as_ref().map(Props::len), Some(1));
        assert_eq!(
            p.revenue,
            Some(Revenue {
                amount: 19.99,
                currency: "EUR".into()
            })
        );
        // identify: nothing about a person is kept.
        assert_eq!(
            parse(br#"{"type":"identify","payload":{"website":"w","data":{"email":"a@b.c"}}}"#),
            Ok(Incoming::Drop(DropReason::Identify))
        );
        let e = parse(br#"{"type":"event","payload":{"website":"w","url":"/x"}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "payload.hostname: required when url is a path"
        );
        let e = parse(br#"{"type":"alias","payload":{}}"#).unwrap_err();
        assert!(e.to_string().starts_with("type:"), "{e}");
    }

    #[test]
    fn engagement_pings_are_engagement_events() {
        let (p, _) = event(
            r#"{"n":"engagement","sd":42,"d":"example.com","u":"https://example.com/","p":{},"e":5230,"v":36}"#,
        );
        assert_eq!(p.kind, Kind::Engagement);
        assert_eq!((p.engaged_ms, p.scroll_depth), (Some(5230), Some(42)));
        assert_eq!((p.name, p.props), (None, None));
        // Out-of-range values are brought into range, not refused.
        let (p, _) = event(r#"{"n":"engagement","sd":140,"u":"https://example.com/","e":1e12}"#);
        assert_eq!(
            (p.engaged_ms, p.scroll_depth),
            (Some(wire::MAX_ENGAGED_MS), Some(100))
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"u":"https://example.com/","d":"example.com"}"#,
                "name: required",
            ),
            (
                r#"{"n":5,"u":"https://example.com/","d":"example.com"}"#,
                "n: must be a string",
            ),
            (r#"{"n":"pageview","d":"example.com"}"#, "url: required"),
            (
                r#"{"n":"pageview","u":"ftp://example.com/","d":"example.com"}"#,
                "url: must start with http:// or https://",
            ),
            (
                r#"{"n":"pageview","u":"https://example.com/","d":7}"#,
                "d: must be a string",
            ),
            (
                r#"{"n":"Buy","u":"https://example.com/","d":"example.com","$":{"amount":"lots","currency":"EUR"}}"#,
                "$.amount: must be a number",
            ),
            (
                r#"{"n":"Buy","u":"https://example.com/","d":"example.com","$":{"amount":1,"currency":"EURO"}}"#,
                "revenue.currency: must be an ISO-4217 code such as \"EUR\"",
            ),
            (
                r#"{"n":"","u":"https://example.com/","d":"example.com"}"#,
                "name: must not be empty",
            ),
        ];
        for (body, want) in cases {
            let error = parse(body.as_bytes()).unwrap_err();
            assert_eq!(error.to_string(), want, "{body}");
        }
        let too_many: String = (0..31).map(|i| format!(r#""k{i}":"v","#)).collect();
        let body = format!(
            r#"{{"n":"x","u":"https://example.com/","d":"example.com","props":{{{}}}}}"#,
            too_many.trim_end_matches(',')
        );
        assert_eq!(parse(body.as_bytes()), Err(WireError::TooManyProps));
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&body);
        }

        #[test]
        fn goatcounter_never_panics(
            pairs in proptest::collection::vec(
                (prop_oneof![Just("p"), Just("e"), Just("r"), Just("s"), Just("b"), Just("t")], ".{0,40}"),
                0..8,
            ),
            site in proptest::option::of(".{0,20}"),
            page in proptest::option::of("https?://.{0,30}"),
        ) {
            let query: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let page = page.and_then(|p| url::Url::parse(&p).ok());
            let _ = from_goatcounter(&query, site.as_deref(), page.as_ref());
        }

        #[test]
        fn never_panics_on_plausible_shaped_json(
            keys in proptest::collection::vec(
                prop_oneof![
                    Just("n"), Just("name"), Just("u"), Just("url"), Just("d"), Just("domain"),
                    Just("r"), Just("w"), Just("h"), Just("p"), Just("m"), Just("props"), Just("$"),
                ],
                1..8,
            ),
            values in proptest::collection::vec(
                prop_oneof![
                    Just("null".to_string()), Just("1".to_string()), Just("-1e400".to_string()),
                    Just("\"pageview\"".to_string()), Just("\"https://example.com/#/a\"".to_string()),
                    Just("\"{\\\"a\\\":[]}\"".to_string()), Just("{\"amount\":\"1e999\",\"currency\":\"usd\"}".to_string()),
                    Just("[]".to_string()), Just("{\"k\":{}}".to_string()), ".{0,12}".prop_map(|s| format!("{s:?}")),
                ],
                8,
            ),
        ) {
            let fields: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("{k:?}:{v}")).collect();
            let body = format!("{{{}}}", fields.join(","));
            let _ = parse(body.as_bytes());
        }
    }

    #[test]
    fn goatcounter_hits_become_v1_payloads() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let event = |incoming| match incoming {
            Ok(Incoming::Event {
                payload,
                other_sites,
            }) => (payload, other_sites),
            other => panic!("{other:?}"),
        };
        let page = |u: &str| url::Url::parse(u).unwrap();
        // The page's host (www. dropped), then its parent domains; the
        // page's own UTM (`q`) when `p` (a canonical path) has none.
        let (p, other) = event(from_goatcounter(
            &q(&[
                ("p", "/a?b=1"),
                ("s", "1280,800,2"),
                ("r", "android-app://x"),
                ("q", "?utm_source=nl&utm_medium=&x=1"),
            ]),
            None,
            Some(&page("https://www.docs.example.com/")),
        ));
        assert_eq!(
            (p.kind, p.site.as_str(), p.url.as_str()),
            (
                Kind::Pageview,
                "docs.example.com",
                "https://docs.example.com/a?b=1&utm_source=nl"
            )
        );
        assert_eq!(other, ["example.com"]);
        assert_eq!((p.screen_width, p.referrer), (Some(1280), None));
        // The endpoint's site, and a full URL from a path callback.
        let (p, other) = event(from_goatcounter(
            &q(&[("p", "https://shop.example.com/x"), ("b", "0")]),
            Some("example.com"),
            None,
        ));
        assert_eq!(
            (p.site.as_str(), p.url.as_str()),
            ("example.com", "https://shop.example.com/x")
        );
        assert!(other.is_empty());
        // An event is named by `p`, on the Referer's page (its path only).
        let (p, _) = event(from_goatcounter(
            &q(&[("p", "/download-pdf"), ("e", "true")]),
            None,
            Some(&page("https://example.com/docs/x?y=1")),
        ));
        assert_eq!(
            (p.kind, p.name.as_deref(), p.url.as_str()),
            (
                Kind::Event,
                Some("download-pdf"),
                "https://example.com/docs/x"
            )
        );
        // A too-long name is v1's error.
        let long = "x".repeat(500);
        let e = from_goatcounter(
            &q(&[("p", &long), ("e", "true")]),
            None,
            Some(&page("https://example.com/")),
        );
        assert!(e.unwrap_err().to_string().starts_with("name:"));
        assert_eq!(
            from_goatcounter(&q(&[("p", "/"), ("b", "152")]), None, None),
            Ok(Incoming::Drop(DropReason::Bot(BotReason::Automation)))
        );
    }
}
