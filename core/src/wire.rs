//! The versioned beacon payload the SDK sends and the collector accepts.
//!
//! v1 is JSON. The SDK encodes it with [`PayloadV1::to_json`] (hand-written so
//! the WASM beacon carries no `serde_json`); the collector decodes it with
//! [`parse`] (serde). Both sides check the same limits with
//! [`PayloadV1::check_limits`]. A test proves encoder and parser agree, and
//! golden fixtures in `core/tests/fixtures/wire/` pin the outcome of real
//! bodies.
//!
//! Timestamps are deliberately absent: the collector's clock is the only one.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest accepted page URL or referrer.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest accepted site domain (the DNS limit).
pub const MAX_SITE_BYTES: usize = 253;
/// Longest custom event name.
pub const MAX_NAME_BYTES: usize = 120;
/// Most custom properties on one event.
pub const MAX_PROPS: usize = 30;
/// Longest property key.
pub const MAX_PROP_KEY_BYTES: usize = 64;
/// Longest property string value.
pub const MAX_PROP_VALUE_BYTES: usize = 256;
/// Longest client-generated event id.
pub const MAX_EVENT_ID_BYTES: usize = 64;
/// Widest plausible screen, in CSS pixels.
pub const MAX_SCREEN_WIDTH: u32 = 100_000;
/// Largest revenue amount, in either direction (refunds may be negative).
pub const MAX_REVENUE_AMOUNT: f64 = 1e12;
/// Longest engaged time one engagement event reports: a day.
pub const MAX_ENGAGED_MS: u32 = 86_400_000;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pageview,
    Event,
    /// Time on a page and how far down it was read, sent when the page is
    /// left (or hidden): never a view or a custom event.
    Engagement,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Pageview => "pageview",
            Kind::Event => "event",
            Kind::Engagement => "engagement",
        }
    }
}

/// A custom property value: JSON string, number or boolean (nothing nested).
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    String(String),
    Number(f64),
    Bool(bool),
}

/// 2^53 − 1: above it, not every whole number is an `f64`.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

impl Serialize for PropValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PropValue::String(v) => s.serialize_str(v),
            // A whole number is written as one (`3`, not `3.0`): what the
            // client sent, and what a filter on it says.
            // (Compared by hand: `f64::fract`/`abs` need std, core is no_std in WASM.)
            PropValue::Number(v)
                if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(v)
                    && (*v as i64) as f64 == *v =>
            {
                s.serialize_i64(*v as i64)
            }
            PropValue::Number(v) => s.serialize_f64(*v),
            PropValue::Bool(v) => s.serialize_bool(*v),
        }
    }
}

impl<'de> Deserialize<'de> for PropValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PropValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PropValue, E> {
                Ok(PropValue::String(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<PropValue, E> {
                Ok(PropValue::String(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<PropValue, E> {
                Ok(PropValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PropValue, E> {
                Ok(PropValue::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PropValue, E> {
                Ok(PropValue::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<PropValue, E> {
                Ok(PropValue::Number(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Custom properties: keys unique, ordered by key, a JSON object on the wire.
///
/// A sorted `Vec`, not a `BTreeMap`: the same order, equality and serde
/// shape at a fraction of the code — BTreeMap's node code was ~6 KB of the
/// WASM beacon, which only ever holds up to [`MAX_PROPS`] entries. Parsing
/// collects then sorts once (O(n log n) however many keys a body carries);
/// a repeated key keeps its last value, as a map would.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Props(Vec<(String, PropValue)>);

impl Props {
    pub const fn new() -> Self {
        Props(Vec::new())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: String, value: PropValue) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    slot.1 = value;
                }
            }
            // `i <= len` (binary search), so this never panics; a
            // push + `rotate_right` instead would cost ~800 B more WASM.
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&PropValue> {
        let i = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        self.0.get(i).map(|(_, v)| v)
    }

    /// The properties in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &PropValue)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Sorts `entries` by key, keeping the last value of a repeated key.
    fn from_entries(mut entries: Vec<(String, PropValue)>) -> Self {
        // Reversed first, so that after the stable sort the last value of a
        // key comes first and `dedup_by` (which keeps the first) keeps it.
        entries.reverse();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        Props(entries)
    }
}

impl FromIterator<(String, PropValue)> for Props {
    fn from_iter<I: IntoIterator<Item = (String, PropValue)>>(iter: I) -> Self {
        Props::from_entries(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, PropValue); N]> for Props {
    fn from(entries: [(String, PropValue); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl Serialize for Props {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Props {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Props;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Props, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Props::from_entries(entries))
            }
        }
        d.deserialize_map(V)
    }
}

/// Revenue attached to a custom event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revenue {
    pub amount: f64,
    /// ISO-4217 code, upper case (`EUR`).
    pub currency: String,
}

/// Payload version 1. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadV1 {
    pub kind: Kind,
    /// The site's domain, as registered with the collector.
    pub site: String,
    /// The full page URL.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// `screen.width` in CSS pixels; refines the device class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen_width: Option<u32>,
    /// The custom event's name; required when `kind` is `event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub props: Option<Props>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<Revenue>,
    /// Client-generated id; a retried event with the same id is stored once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `false`: a custom event that is not an interaction (a scroll mark, a
    /// video that played by itself), so a visit with it and one pageview is
    /// still a bounce. Absent or `true`: an interaction. Ignored on pageviews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    /// Engagement only (required there): milliseconds the page was visible
    /// and focused since the view (or the last engagement event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engaged_ms: Option<u32>,
    /// Engagement only: how far down the page was seen, in percent (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scroll_depth: Option<u8>,
}

/// Why a payload was refused. Each message names the field and the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("body: larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    /// Not JSON, or JSON of the wrong shape. `field` is the JSON path of the
    /// offending value (`body` when the whole body is wrong).
    #[error("{field}: {reason}")]
    Malformed { field: String, reason: String },
    #[error("site: must not be empty")]
    SiteEmpty,
    #[error("site: longer than {MAX_SITE_BYTES} bytes")]
    SiteTooLong,
    #[error("url: must not be empty")]
    UrlEmpty,
    #[error("url: longer than {MAX_URL_BYTES} bytes")]
    UrlTooLong,
    #[error("url: must start with http:// or https://")]
    UrlScheme,
    #[error("referrer: longer than {MAX_URL_BYTES} bytes")]
    ReferrerTooLong,
    #[error("screen_width: must be between 1 and {MAX_SCREEN_WIDTH}")]
    ScreenWidthOutOfRange,
    #[error("name: required when kind is \"event\"")]
    NameMissing,
    #[error("name: must not be empty")]
    NameEmpty,
    #[error("name: longer than {MAX_NAME_BYTES} bytes")]
    NameTooLong,
    #[error("props: more than {MAX_PROPS} properties")]
    TooManyProps,
    #[error("props: a key must not be empty")]
    PropKeyEmpty,
    #[error("props: key longer than {MAX_PROP_KEY_BYTES} bytes")]
    PropKeyTooLong,
    #[error("props: value longer than {MAX_PROP_VALUE_BYTES} bytes")]
    PropValueTooLong,
    #[error("props: a number must be finite")]
    PropValueNotFinite,
    #[error("revenue: only custom events (kind \"event\") carry revenue")]
    RevenueOnPageview,
    #[error("revenue.amount: must be finite and at most {MAX_REVENUE_AMOUNT} in magnitude")]
    RevenueAmount,
    #[error("revenue.currency: must be an ISO-4217 code such as \"EUR\"")]
    RevenueCurrency,
    #[error("event_id: must be 1 to {MAX_EVENT_ID_BYTES} printable ASCII characters")]
    EventId,
    #[error("engaged_ms: required when kind is \"engagement\", at most {MAX_ENGAGED_MS}")]
    EngagedMs,
    #[error("scroll_depth: a percent, 0 to 100")]
    ScrollDepth,
}

impl PayloadV1 {
    /// A pageview for `url` with nothing optional set.
    pub fn pageview(site: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            kind: Kind::Pageview,
            site: site.into(),
            url: url.into(),
            referrer: None,
            screen_width: None,
            name: None,
            props: None,
            revenue: None,
            event_id: None,
            interactive: None,
            engaged_ms: None,
            scroll_depth: None,
        }
    }

    /// Checks every limit that needs no parsing, cheapest first. The SDK runs
    /// this before sending; the collector after parsing.
    pub fn check_limits(&self) -> Result<(), WireError> {
        if self.site.is_empty() {
            return Err(WireError::SiteEmpty);
        }
        if self.site.len() > MAX_SITE_BYTES {
            return Err(WireError::SiteTooLong);
        }
        if self.url.is_empty() {
            return Err(WireError::UrlEmpty);
        }
        if self.url.len() > MAX_URL_BYTES {
            return Err(WireError::UrlTooLong);
        }
        if !has_http_scheme(&self.url) {
            return Err(WireError::UrlScheme);
        }
        if self
            .referrer
            .as_ref()
            .is_some_and(|r| r.len() > MAX_URL_BYTES)
        {
            return Err(WireError::ReferrerTooLong);
        }
        if self
            .screen_width
            .is_some_and(|w| w == 0 || w > MAX_SCREEN_WIDTH)
        {
            return Err(WireError::ScreenWidthOutOfRange);
        }
        if let Some(id) = &self.event_id {
            let printable = id.bytes().all(|b| b.is_ascii_graphic());
            if id.is_empty() || id.len() > MAX_EVENT_ID_BYTES || !printable {
                return Err(WireError::EventId);
            }
        }
        match (self.kind, &self.name) {
            (Kind::Event, None) => return Err(WireError::NameMissing),
            // `all(is_whitespace)` is `trim().is_empty()` in less WASM.
            (_, Some(name)) if name.chars().all(char::is_whitespace) => {
                return Err(WireError::NameEmpty);
            }
            (_, Some(name)) if name.len() > MAX_NAME_BYTES => return Err(WireError::NameTooLong),
            _ => {}
        }
        if self.kind == Kind::Engagement && self.engaged_ms.is_none_or(|ms| ms > MAX_ENGAGED_MS) {
            return Err(WireError::EngagedMs);
        }
        if self.scroll_depth.is_some_and(|d| d > 100) {
            return Err(WireError::ScrollDepth);
        }
        if let Some(props) = &self.props {
            check_props(props)?;
        }
        if let Some(revenue) = &self.revenue {
            if self.kind != Kind::Event {
                return Err(WireError::RevenueOnPageview);
            }
            if !revenue.amount.is_finite() || revenue.amount.abs() > MAX_REVENUE_AMOUNT {
                return Err(WireError::RevenueAmount);
            }
            if !is_currency(&revenue.currency) {
                return Err(WireError::RevenueCurrency);
            }
        }
        Ok(())
    }

    /// Encodes the payload as JSON. Hand-written (see the module docs); the
    /// collector's serde parser reads it back unchanged.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(96 + self.url.len());
        out.push_str("{\"kind\":\"");
        out.push_str(self.kind.as_str());
        out.push_str("\",\"site\":");
        push_json_str(&mut out, &self.site);
        out.push_str(",\"url\":");
        push_json_str(&mut out, &self.url);
        if let Some(r) = &self.referrer {
            out.push_str(",\"referrer\":");
            push_json_str(&mut out, r);
        }
        if let Some(w) = self.screen_width {
            out.push_str(",\"screen_width\":");
            push_u64(&mut out, w.into());
        }
        if let Some(n) = &self.name {
            out.push_str(",\"name\":");
            push_json_str(&mut out, n);
        }
        if let Some(props) = &self.props {
            out.push_str(",\"props\":{");
            for (i, (k, v)) in props.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(&mut out, k);
                out.push(':');
                match v {
                    PropValue::String(s) => push_json_str(&mut out, s),
                    PropValue::Number(n) => push_f64(&mut out, *n),
                    PropValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                }
            }
            out.push('}');
        }
        if let Some(rev) = &self.revenue {
            out.push_str(",\"revenue\":{\"amount\":");
            push_f64(&mut out, rev.amount);
            out.push_str(",\"currency\":");
            push_json_str(&mut out, &rev.currency);
            out.push('}');
        }
        if let Some(id) = &self.event_id {
            out.push_str(",\"event_id\":");
            push_json_str(&mut out, id);
        }
        if let Some(ms) = self.engaged_ms {
            out.push_str(",\"engaged_ms\":");
            push_u64(&mut out, ms.into());
        }
        if let Some(depth) = self.scroll_depth {
            out.push_str(",\"scroll_depth\":");
            push_u64(&mut out, depth.into());
        }
        if let Some(interactive) = self.interactive {
            out.push_str(if interactive {
                ",\"interactive\":true"
            } else {
                ",\"interactive\":false"
            });
        }
        out.push('}');
        out
    }
}

/// Whether `url` starts with `http://` or `https://` (any case).
pub(crate) fn has_http_scheme(url: &str) -> bool {
    let starts = |p: &str| {
        url.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    starts("http://") || starts("https://")
}

fn check_props(props: &Props) -> Result<(), WireError> {
    if props.len() > MAX_PROPS {
        return Err(WireError::TooManyProps);
    }
    for (key, value) in props.iter() {
        if key.is_empty() {
            return Err(WireError::PropKeyEmpty);
        }
        if key.len() > MAX_PROP_KEY_BYTES {
            return Err(WireError::PropKeyTooLong);
        }
        match value {
            PropValue::String(s) if s.len() > MAX_PROP_VALUE_BYTES => {
                return Err(WireError::PropValueTooLong);
            }
            PropValue::Number(n) if !n.is_finite() => return Err(WireError::PropValueNotFinite),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `code` is an ISO-4217 currency code (current, plus a few recently
/// retired ones that old price lists still carry).
pub fn is_currency(code: &str) -> bool {
    <[u8; 3]>::try_from(code.as_bytes()).is_ok_and(|c| CURRENCIES.binary_search(&c).is_ok())
}

/// ISO-4217 codes, sorted. Byte triples, not `&str`s: 3 bytes an entry in
/// the WASM data instead of 11 (pointer, length, text).
const CURRENCIES: &[[u8; 3]] = &[
    *b"AED", *b"AFN", *b"ALL", *b"AMD", *b"ANG", *b"AOA", *b"ARS", *b"AUD", *b"AWG", *b"AZN",
    *b"BAM", *b"BBD", *b"BDT", *b"BGN", *b"BHD", *b"BIF", *b"BMD", *b"BND", *b"BOB", *b"BOV",
    *b"BRL", *b"BSD", *b"BTN", *b"BWP", *b"BYN", *b"BZD", *b"CAD", *b"CDF", *b"CHE", *b"CHF",
    *b"CHW", *b"CLF", *b"CLP", *b"CNY", *b"COP", *b"COU", *b"CRC", *b"CUC", *b"CUP", *b"CVE",
    *b"CZK", *b"DJF", *b"DKK", *b"DOP", *b"DZD", *b"EGP", *b"ERN", *b"ETB", *b"EUR", *b"FJD",
    *b"FKP", *b"GBP", *b"GEL", *b"GHS", *b"GIP", *b"GMD", *b"GNF", *b"GTQ", *b"GYD", *b"HKD",
    *b"HNL", *b"HRK", *b"HTG", *b"HUF", *b"IDR", *b"ILS", *b"INR", *b"IQD", *b"IRR", *b"ISK",
    *b"JMD", *b"JOD", *b"JPY", *b"KES", *b"KGS", *b"KHR", *b"KMF", *b"KPW", *b"KRW", *b"KWD",
    *b"KYD", *b"KZT", *b"LAK", *b"LBP", *b"LKR", *b"LRD", *b"LSL", *b"LYD", *b"MAD", *b"MDL",
    *b"MGA", *b"MKD", *b"MMK", *b"MNT", *b"MOP", *b"MRU", *b"MUR", *b"MVR", *b"MWK", *b"MXN",
    *b"MXV", *b"MYR", *b"MZN", *b"NAD", *b"NGN", *b"NIO", *b"NOK", *b"NPR", *b"NZD", *b"OMR",
    *b"PAB", *b"PEN", *b"PGK", *b"PHP", *b"PKR", *b"PLN", *b"PYG", *b"QAR", *b"RON", *b"RSD",
    *b"RUB", *b"RWF", *b"SAR", *b"SBD", *b"SCR", *b"SDG", *b"SEK", *b"SGD", *b"SHP", *b"SLE",
    *b"SLL", *b"SOS", *b"SRD", *b"SSP", *b"STN", *b"SVC", *b"SYP", *b"SZL", *b"THB", *b"TJS",
    *b"TMT", *b"TND", *b"TOP", *b"TRY", *b"TTD", *b"TWD", *b"TZS", *b"UAH", *b"UGX", *b"USD",
    *b"USN", *b"UYI", *b"UYU", *b"UYW", *b"UZS", *b"VED", *b"VES", *b"VND", *b"VUV", *b"WST",
    *b"XAF", *b"XAG", *b"XAU", *b"XBA", *b"XBB", *b"XBC", *b"XBD", *b"XCD", *b"XCG", *b"XDR",
    *b"XOF", *b"XPD", *b"XPF", *b"XPT", *b"XSU", *b"XUA", *b"YER", *b"ZAR", *b"ZMW", *b"ZWG",
    *b"ZWL",
];

/// Appends `s` as a JSON string literal (RFC 8259 escaping).
pub fn push_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    // Copies runs of bytes that need no escape in one go: everything to
    // escape is ASCII, so every cut is on a char boundary (`get` never
    // fails) and no UTF-8 decoding is needed.
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "\\u00",
            _ => continue,
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        out.push_str(escape);
        if b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t') {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// Appends an unsigned integer in decimal without `core::fmt` (WASM size).
fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut used = 0;
    // Iterators, not indexing: no bounds-check panics (whose messages would
    // bring integer formatting back).
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        used += 1;
        if n == 0 {
            break;
        }
    }
    buf.iter()
        .skip(buf.len() - used)
        .for_each(|&b| out.push(b as char));
}

/// Appends a finite number as a JSON number, without `core::fmt`: Rust's
/// float formatting (Grisu/Dragon with its tables) is ~20 KB of WASM, most of
/// the beacon. Integers below 2^64 are written exactly. Non-finite numbers
/// (which `check_limits` refuses) are written as `0`, never as invalid JSON.
///
/// Precision choice: other numbers are written with at most 15 significant
/// digits (`DBL_DIG`), trailing zeros dropped. Every decimal of up to 15
/// significant digits survives decimal → f64 → decimal unchanged at 15
/// digits, so any value a person or a price list wrote (19.99, 0.1, 1e-7,
/// 1.5e21, -3.25) comes back as exactly the same f64. Numbers that need 16–17
/// digits to round-trip (`0.1 + 0.2`) come back as their 15-digit rounding
/// (0.3), a relative change below 5e-15 — fine for analytics, and what
/// shortest-round-trip printing would cost ~10 KB of tables to avoid.
///
/// How: scale by an exact power of ten (10^0..10^22 are exact in f64) into
/// [1e14, 1e15) and round to an integer. Each of the (at most three)
/// roundings errs by at most 2^-53 relative, < 0.34 absolute at 1e15, so the
/// 15 digits are exact when the decimal exponent is within -8..=36 (one
/// scaling step). Outside it the scaling takes several steps and the 15th
/// digit may be off by one or two. Layout follows JavaScript's
/// `Number.prototype.toString`: positional for 1e-6 <= |n| < 1e21, else
/// `d.ddde[-]x`.
fn push_f64(out: &mut String, n: f64) {
    if !n.is_finite() {
        out.push('0');
        return;
    }
    if n < 0.0 {
        out.push('-');
    }
    let x = n.abs();
    // Every integral f64 below 2^64 is exactly a u64 (the cast truncates;
    // `fract` needs std).
    if x < 18_446_744_073_709_551_616.0 && (x as u64) as f64 == x {
        push_u64(out, x as u64);
        return;
    }
    // The decimal exponent, estimated from the binary one (log10(2) ≈
    // 78913 / 2^18), then corrected: `digits` must land in [1e14, 1e15).
    let e2 = ((x.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let mut e10 = (e2 * 78_913) >> 18;
    let mut digits = 0_u64;
    // Bounded: the estimate is off by at most one for normal numbers and
    // by at most 17 for subnormals.
    for _ in 0..24 {
        digits = (scale10(x, 14 - e10) + 0.5) as u64;
        if digits >= 1_000_000_000_000_000 {
            e10 += 1;
        } else if digits < 100_000_000_000_000 {
            e10 -= 1;
        } else {
            break;
        }
    }
    // Clamped: only a non-converging loop (impossible) could exceed the
    // first; the second keeps numbers near f64::MAX from rounding up past
    // it (which parsers refuse as out of range).
    let max = if e10 >= 308 {
        179_769_313_486_231
    } else {
        999_999_999_999_999
    };
    let mut digits = digits.min(max);
    let mut buf = [b'0'; 15];
    let mut len = 15;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (digits % 10) as u8;
        digits /= 10;
    }
    while len > 1 && buf.get(len - 1) == Some(&b'0') {
        len -= 1;
    }
    // `get`, not indexing: no bounds-check panics in the beacon.
    let part = |r: core::ops::Range<usize>| buf.get(r).unwrap_or_default();
    let push_all = |out: &mut String, d: &[u8]| d.iter().for_each(|&b| out.push(b as char));
    if (-6..21).contains(&e10) {
        if e10 < 0 {
            out.push_str("0.");
            (1..-e10).for_each(|_| out.push('0'));
            push_all(out, part(0..len));
        } else {
            let int = e10 as usize + 1;
            push_all(out, part(0..int.min(len)));
            (len..int).for_each(|_| out.push('0'));
            if int < len {
                out.push('.');
                push_all(out, part(int..len));
            }
        }
    } else {
        push_all(out, part(0..1));
        if len > 1 {
            out.push('.');
            push_all(out, part(1..len));
        }
        out.push('e');
        if e10 < 0 {
            out.push('-');
        }
        push_u64(out, u64::from(e10.unsigned_abs()));
    }
}

/// `x * 10^e`, with exact powers of ten (10^22 is the largest exact f64).
fn scale10(mut x: f64, mut e: i32) -> f64 {
    const E22: f64 = 1e22;
    while e > 22 {
        x *= E22;
        e -= 22;
    }
    while e < -22 {
        x /= E22;
        e += 22;
    }
    let mut p = 1.0;
    for _ in 0..e.unsigned_abs() {
        p *= 10.0;
    }
    if e < 0 { x / p } else { x * p }
}

/// Parses and checks a v1 payload from a request body.
#[cfg(feature = "server")]
pub fn parse(body: &[u8]) -> Result<PayloadV1, WireError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WireError::BodyTooLarge);
    }
    // A UTF-8 byte order mark (some HTTP clients write one) is not content.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(WireError::Malformed {
            field: "body".into(),
            reason: "must be a JSON object".into(),
        });
    }
    // The fast path: plain serde. Only a failure pays for a second pass that
    // tracks the JSON path, to name the offending field.
    let mut payload: PayloadV1 = match serde_json::from_slice(body) {
        Ok(payload) => payload,
        Err(_) => return Err(locate_error(body)),
    };
    // `usd` (what Stripe's API returns) is USD, not a reason to lose a sale.
    if let Some(revenue) = &mut payload.revenue {
        revenue.currency.make_ascii_uppercase();
    }
    payload.check_limits()?;
    Ok(payload)
}

/// Re-parses a body serde refused, tracking the path of the failure.
#[cfg(feature = "server")]
fn locate_error(body: &[u8]) -> WireError {
    let mut de = serde_json::Deserializer::from_slice(body);
    let result: Result<PayloadV1, _> = serde_path_to_error::deserialize(&mut de);
    let (field, reason) = match result {
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." {
                "body".to_string()
            } else {
                path
            };
            (field, e.into_inner().to_string())
        }
        // Only trailing characters can fail after a good value.
        Ok(_) => match de.end() {
            Err(e) => ("body".to_string(), e.to_string()),
            Ok(()) => ("body".to_string(), "not a valid payload".to_string()),
        },
    };
    WireError::Malformed { field, reason }
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn full() -> PayloadV1 {
        let mut props = Props::new();
        props.insert("plan".into(), PropValue::String("pro \"annual\"".into()));
        props.insert("seats".into(), PropValue::Number(12.0));
        props.insert("ratio".into(), PropValue::Number(-0.125));
        props.insert("trial".into(), PropValue::Bool(false));
        PayloadV1 {
            kind: Kind::Event,
            site: "example.com".into(),
            url: "https://example.com/a?q=\"x\"\\\n\u{1}é".into(),
            referrer: Some("https://search.example/?q=\t".into()),
            screen_width: Some(1440),
            name: Some("Signup".into()),
            props: Some(props),
            revenue: Some(Revenue {
                amount: 19.99,
                currency: "EUR".into(),
            }),
            event_id: Some("k3j4-88af".into()),
            interactive: Some(false),
            engaged_ms: None,
            scroll_depth: None,
        }
    }

    #[test]
    fn to_json_round_trips_through_the_collector_parser() {
        let p = full();
        assert_eq!(parse(p.to_json().as_bytes()).unwrap(), p);
        let mut engaged = PayloadV1::pageview("example.com", "https://example.com/guide");
        engaged.kind = Kind::Engagement;
        engaged.engaged_ms = Some(12_345);
        engaged.scroll_depth = Some(80);
        assert_eq!(parse(engaged.to_json().as_bytes()).unwrap(), engaged);
        engaged.engaged_ms = None;
        assert_eq!(engaged.check_limits(), Err(WireError::EngagedMs));
        engaged.engaged_ms = Some(MAX_ENGAGED_MS + 1);
        assert_eq!(engaged.check_limits(), Err(WireError::EngagedMs));
        engaged.engaged_ms = Some(0);
        engaged.scroll_depth = Some(101);
        assert_eq!(engaged.check_limits(), Err(WireError::ScrollDepth));
        let plain = PayloadV1::pageview("example.com", "https://example.com/");
        assert_eq!(parse(plain.to_json().as_bytes()).unwrap(), plain);
    }

    #[test]
    fn props_are_a_sorted_map_with_the_last_value_winning() {
        let mut p = Props::new();
        p.insert("b".into(), PropValue::Bool(true));
        p.insert("a".into(), PropValue::Number(1.0));
        p.insert("b".into(), PropValue::Number(2.0));
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(p.get("b"), Some(&PropValue::Number(2.0)));
        let parsed: Props = serde_json::from_str(r#"{"z":1,"a":"x","z":3}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            r#"{"a":"x","z":3}"#,
            "a whole number is stored as sent"
        );
        let more: Props = serde_json::from_str(r#"{"f":2.5,"big":1e300,"neg":-4}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&more).unwrap(),
            r#"{"big":1e+300,"f":2.5,"neg":-4}"#
        );
        assert_eq!(
            parsed,
            [
                ("z".to_string(), PropValue::Number(3.0)),
                ("a".to_string(), PropValue::String("x".into())),
            ]
            .into()
        );
    }

    #[test]
    fn currencies_are_sorted_for_binary_search() {
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_currency("USD") && is_currency("EUR") && is_currency("JPY"));
        assert!(!is_currency("usd") && !is_currency("ABC") && !is_currency("EURO"));
    }

    type Mutation = Box<dyn Fn(&mut PayloadV1)>;

    #[test]
    fn each_limit_is_its_own_error() {
        let cases: Vec<(Mutation, WireError)> = vec![
            (Box::new(|p| p.site.clear()), WireError::SiteEmpty),
            (
                Box::new(|p| p.site = "a".repeat(254)),
                WireError::SiteTooLong,
            ),
            (Box::new(|p| p.url.clear()), WireError::UrlEmpty),
            (
                Box::new(|p| p.url = format!("https://x/{}", "a".repeat(MAX_URL_BYTES))),
                WireError::UrlTooLong,
            ),
            (
                Box::new(|p| p.url = "ftp://x/".into()),
                WireError::UrlScheme,
            ),
            (
                Box::new(|p| p.referrer = Some("r".repeat(MAX_URL_BYTES + 1))),
                WireError::ReferrerTooLong,
            ),
            (
                Box::new(|p| p.screen_width = Some(0)),
                WireError::ScreenWidthOutOfRange,
            ),
            (Box::new(|p| p.name = None), WireError::NameMissing),
            (
                Box::new(|p| p.name = Some("  ".into())),
                WireError::NameEmpty,
            ),
            (
                Box::new(|p| p.name = Some("n".repeat(MAX_NAME_BYTES + 1))),
                WireError::NameTooLong,
            ),
            (
                Box::new(|p| {
                    let props = (0..=MAX_PROPS)
                        .map(|i| (format!("k{i}"), PropValue::Bool(true)))
                        .collect();
                    p.props = Some(props);
                }),
                WireError::TooManyProps,
            ),
            (
                Box::new(|p| {
                    p.props = Some([(String::new(), PropValue::Bool(true))].into());
                }),
                WireError::PropKeyEmpty,
            ),
            (
                Box::new(|p| {
                    let key = "k".repeat(MAX_PROP_KEY_BYTES + 1);
                    p.props = Some([(key, PropValue::Bool(true))].into());
                }),
                WireError::PropKeyTooLong,
            ),
            (
                Box::new(|p| {
                    let v = PropValue::String("v".repeat(MAX_PROP_VALUE_BYTES + 1));
                    p.props = Some([("k".to_string(), v)].into());
                }),
                WireError::PropValueTooLong,
            ),
            (
                Box::new(|p| {
                    p.props = Some([("k".to_string(), PropValue::Number(f64::NAN))].into());
                }),
                WireError::PropValueNotFinite,
            ),
            (
                Box::new(|p| {
                    p.kind = Kind::Pageview;
                    p.name = None;
                }),
                WireError::RevenueOnPageview,
            ),
            (
                Box::new(|p| p.revenue.as_mut().unwrap().amount = 1e13),
                WireError::RevenueAmount,
            ),
            (
                Box::new(|p| p.revenue.as_mut().unwrap().currency = "XYZ".into()),
                WireError::RevenueCurrency,
            ),
            (
                Box::new(|p| p.event_id = Some(String::new())),
                WireError::EventId,
            ),
            (
                Box::new(|p| p.event_id = Some("a b".into())),
                WireError::EventId,
            ),
        ];
        for (mutate, want) in cases {
            let mut p = full();
            mutate(&mut p);
            assert_eq!(p.check_limits(), Err(want.clone()), "{want}");
            let field = want.to_string();
            assert!(field.contains(':'), "message names its field: {field}");
        }
        assert_eq!(full().check_limits(), Ok(()));
    }

    #[test]
    fn nested_prop_values_are_refused_with_the_field_named() {
        let body = br#"{"kind":"event","site":"x.com","url":"https://x.com/","name":"a","props":{"k":{"n":1}}}"#;
        let err = parse(body).unwrap_err().to_string();
        assert!(err.contains("props"), "{err}");
    }

    fn json_f64(n: f64) -> String {
        let mut out = String::new();
        push_f64(&mut out, n);
        out
    }

    #[test]
    fn numbers_are_written_without_fmt_and_round_trip() {
        let cases: &[(f64, &str)] = &[
            (19.99, "19.99"),
            (0.1, "0.1"),
            (1e-7, "1e-7"),
            (1.5e21, "1.5e21"),
            (-3.25, "-3.25"),
            (0.000001, "0.000001"),
            (1.5e-7, "1.5e-7"),
            (1e20, "100000000000000000000"),
            (123456.789, "123456.789"),
            (-0.125, "-0.125"),
            (12.0, "12"),
            (-0.0, "0"),
            (0.1 + 0.2, "0.3"),
            (1e300, "1e300"),
            (-2.5e-300, "-2.5e-300"),
            (f64::MAX, "1.79769313486231e308"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (1e19, "10000000000000000000"),
            (f64::NAN, "0"),
            (f64::INFINITY, "0"),
        ];
        for &(n, want) in cases {
            assert_eq!(json_f64(n), want, "{n:e}");
        }
        for n in [19.99, 0.1, 1e-7, 1.5e21, -3.25, 1e300, -2.5e-300] {
            assert_eq!(serde_json::from_str::<f64>(&json_f64(n)).unwrap(), n);
        }
        assert!(serde_json::from_str::<f64>(&json_f64(f64::MAX)).is_ok());
    }

    proptest! {
        /// Any decimal of at most 15 significant digits with a decimal
        /// exponent in -8..=36 comes back as exactly the same f64.
        #[test]
        fn fifteen_digit_decimals_round_trip_exactly(
            mantissa in 1u64..1_000_000_000_000_000, exp in -22i32..=22, neg in any::<bool>(),
        ) {
            let text = format!("{}{mantissa}e{exp}", if neg { "-" } else { "" });
            let n: f64 = text.parse().unwrap();
            let e10 = n.abs().log10().floor() as i32;
            prop_assume!((-8..=36).contains(&e10));
            let json = json_f64(n);
            prop_assert_eq!(serde_json::from_str::<f64>(&json).unwrap(), n, "{} -> {}", text, json);
        }

        /// Any finite f64 is written as a JSON number within 15-digit
        /// rounding plus one scaling error of itself (6.2e-15 relative), or
        /// several scaling errors at the extreme exponents (2.5e-14).
        #[test]
        fn any_finite_number_is_valid_json_and_close(n in any::<f64>()) {
            prop_assume!(n.is_finite());
            let json = json_f64(n);
            let back: f64 = serde_json::from_str(&json).unwrap();
            let e10 = n.abs().log10().floor();
            let tolerance = if (-8.0..=36.0).contains(&e10) { 6.2e-15 } else { 2.5e-14 };
            prop_assert!(back == n || ((back - n) / n).abs() <= tolerance, "{:e} -> {}", n, json);
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&body);
        }

        #[test]
        fn parse_never_panics_on_near_valid_json(
            url in ".{0,64}", name in proptest::option::of(".{0,16}"),
            width in proptest::option::of(any::<u32>()), amount in any::<f64>(),
        ) {
            let body = serde_json::json!({
                "kind": if name.is_some() { "event" } else { "pageview" },
                "site": "example.com", "url": url, "name": name, "screen_width": width,
                "revenue": if amount.is_finite() { serde_json::json!({"amount": amount, "currency": "EUR"}) } else { serde_json::Value::Null },
            });
            let _ = parse(body.to_string().as_bytes());
        }

        #[test]
        fn whatever_passes_the_limits_round_trips(
            path in "[ -~]{0,40}", name in "[a-zA-Z ]{1,20}", key in "[a-z]{1,8}",
            sval in "\\PC{0,20}", num in -1e9f64..1e9, flag in any::<bool>(),
        ) {
            let mut p = PayloadV1::pageview("example.com", format!("https://example.com/{path}"));
            p.kind = Kind::Event;
            p.name = Some(name);
            let mut props = Props::new();
            props.insert(key.clone(), PropValue::String(sval));
            // The encoder keeps 15 significant digits (see `push_f64`).
            let num: f64 = format!("{num:.14e}").parse().unwrap();
            props.insert(format!("{key}_n"), PropValue::Number(num));
            props.insert(format!("{key}_b"), PropValue::Bool(flag));
            p.props = Some(props);
            prop_assume!(p.check_limits().is_ok());
            prop_assert_eq!(parse(p.to_json().as_bytes()).unwrap(), p);
        }
    }
}
