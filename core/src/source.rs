//! Traffic attribution for one pageview: where the visitor came from.
//!
//! [`attribute`] turns the page URL, the raw referrer and the site's domain
//! into an [`Attribution`]: a display name for the source (Plausible's
//! "Sources" report), the referrer's domain, a [`Channel`] (like GA4's
//! default channel grouping), the UTM tags and which ad click id, if any,
//! was present (never its value).
//!
//! # Source
//!
//! First match wins:
//!
//! 1. A tag in the page URL: `utm_source`, else `source`, else `ref` (the
//!    first non-empty occurrence of each; keys match ASCII
//!    case-insensitively). A tag naming a known source is shown by that
//!    source's name: `google`, `Google`, `hackernews`, `hn` and
//!    `news.ycombinator.com` all become "Google"/"Hacker News" (names and
//!    hosts from `data/source/sources.tsv`, shorthands from
//!    `data/source/aliases.tsv`; compared by lowercase letters and digits
//!    only). A URL tag is shown by its host, like a referrer. Other tags
//!    are kept as the site wrote them, trimmed and cut to
//!    [`MAX_SOURCE_BYTES`]. Tags apply even when the referrer is the site
//!    itself (sessions keep their first pageview's source anyway).
//! 2. The referrer, when it is an `http(s)` URL with a host that is neither
//!    the site (nor a subdomain of it), nor the page's own host, nor the
//!    site or page host through Google's AMP cache or Google Translate
//!    (`www-example-com.cdn.ampproject.org`, `example-com.translate.goog`:
//!    the domain with `-` doubled and `.` as `-`, optionally after `www-`),
//!    nor loopback (`localhost`, `127.0.0.1`, `[::1]`): the named source for
//!    its host (`google.co.uk` → "Google", see [`named_source`]), else its
//!    host without `www.` (also for Google's and Yahoo!'s other hosts:
//!    `accounts.google.com` is not Google Search). An
//!    `android-app://package` referrer gives the app's name if known
//!    ("Gmail"), else `android-app://package` (as Plausible does).
//! 3. The ad network of a click id when nothing else named a source
//!    (`gclid` → "Google", `fbclid` → "Facebook"; [`ClickId::network`]).
//!
//! Anything else (no referrer, garbage, `about:blank`, `file://`…) gives
//! no source.
//!
//! # Channel
//!
//! A fixed rule list modelled on GA4's default channel grouping, first
//! match wins. `medium` is `utm_medium`, case-insensitively: "contains" and
//! "starts with" tests read it as written, separators included (as GA4's
//! regexes do: `organic_post` does not contain `cp`), "is" tests compare
//! lowercase letters and digits only (`Social-Media` is `socialmedia`);
//! `category` is the named source's category (`search`, `social`, `video`,
//! `email`, `shopping`, `other`).
//!
//! 1. **Paid** when `medium` contains `cp` (cpc, cpm, cpv…), is `ppc` or
//!    `retargeting`, or starts with `paid` (GA4's
//!    `^(.*cp.*|ppc|retargeting|paid.*)$`); or when the tag is an ad
//!    platform's alias (`adwords`, `fb-ads`: `aliases.tsv`, column 3); or
//!    when there is no `medium` but a click id that only ads carry (all but
//!    `fbclid`, see [`ClickId::marks_ad_click`]). Then a shopping campaign
//!    (rule 3) → [`Channel::PaidShopping`]; by category: search →
//!    [`Channel::PaidSearch`], social → [`Channel::PaidSocial`], video →
//!    [`Channel::PaidVideo`], shopping →
//!    [`Channel::PaidShopping`]; else by `medium` containing `search`,
//!    `social`, `video`, `shop`, or being a display medium (below); else by
//!    the click id's network (Google Ads, Microsoft, Yandex → PaidSearch;
//!    `dclid` → Display; Meta, TikTok, X, LinkedIn, Pinterest, Snapchat,
//!    Reddit → PaidSocial); else [`Channel::PaidOther`].
//! 2. By `medium`: `display|banner|expandable|interstitial|cpm` →
//!    [`Channel::Display`]; `email` (`e-mail`, `e_mail`…), or containing
//!    `email` or `newsletter` (`Email-Newsletter`) or the word `e-mail`,
//!    `e_mail` or `e mail` (`promo e-mail`, not `some-mail`) →
//!    [`Channel::Email`];
//!    `social|social-network|social-media|sm` →
//!    [`Channel::OrganicSocial`]; containing `video` →
//!    [`Channel::OrganicVideo`]; `affiliate(s)` → [`Channel::Affiliate`].
//! 3. A shopping campaign: `utm_campaign` with `shopping`, or `shop` at the
//!    start or after anything but a letter other than `e` (GA4's
//!    `^(.*(([^a-df-z]|^)shop|shopping).*)$`: `eshop`, `spring_shop`, not
//!    `workshop`) → [`Channel::OrganicShopping`].
//! 4. By category: search, social, video, shopping → the organic channel;
//!    email → [`Channel::Email`]; other → [`Channel::Referral`]. Then the
//!    mediums that only say "not paid": `organic` →
//!    [`Channel::OrganicSearch`], `referral|app|link` → [`Channel::Referral`]
//!    (so `utm_source=facebook&utm_medium=organic` is Organic Social, as in
//!    GA4).
//! 5. A `utm_source` of `mail`, or saying email as a medium would
//!    (`e-mail`, `Newsletter-UK`), unless it is a URL or host (contains
//!    `://` or a dot) → [`Channel::Email`]. Not `source=`/`ref=`.
//! 6. Any other `utm_*` tag → [`Channel::Campaign`].
//! 7. Any other source (unnamed referrer, `ref=`/`source=` tag) →
//!    [`Channel::Referral`].
//! 8. Nothing → [`Channel::Direct`].
//!
//! Unlike GA4, an email or affiliate `utm_medium` wins over the source's
//! category (GA4 files `utm_source=facebook&utm_medium=email` under Organic
//! Social); `data/source/README.md` lists this and the other deliberate
//! deviations.
//!
//! Caveat: Facebook and Instagram append `fbclid` to *every* outbound link,
//! organic posts included, so `fbclid` alone is not paid (as in GA4 and
//! Plausible): Meta ads without a paid `utm_medium` count as Organic Social.
//! The other click ids are only added to ad clicks.
//!
//! # Referrer spam
//!
//! [`attribute`] does not filter: like Plausible, the collector should drop
//! the whole event when [`Attribution::referrer_is_spam`] (or
//! [`is_referrer_spam`] on the referrer's host) says so. The blocklist is
//! Matomo's public-domain `referrer-spam-list`, see
//! `data/source/README.md`.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use serde::Serialize;
use url::Url;

/// Longest kept `utm_*` value, in bytes (cut at a char boundary).
pub const MAX_UTM_BYTES: usize = 256;
/// Longest kept source name, in bytes (cut at a char boundary).
pub const MAX_SOURCE_BYTES: usize = 256;
/// Longest referrer host or Android package accepted (the DNS limit).
pub const MAX_HOST_BYTES: usize = 253;

const SOURCES_TSV: &str = include_str!("../data/source/sources.tsv");
const ALIASES_TSV: &str = include_str!("../data/source/aliases.tsv");
const SPAM_TXT: &str = include_str!("../data/source/referrer-spam.txt");

const ANDROID_APP: &str = "android-app://";

/// The attribution of one pageview.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Attribution {
    /// Display name of the source ("Google", "news.example.org",
    /// "my-newsletter"), or `None` for direct traffic.
    pub source: Option<String>,
    /// The external referrer's host, lowercase, without `www.`; `None` when
    /// there is none, it is the site itself, or it is not an http(s) URL.
    pub referrer_domain: Option<String>,
    pub channel: Channel,
    pub utm: Utm,
    /// Which known ad click id the page URL carried (never its value).
    pub click_id: Option<ClickId>,
}

impl Attribution {
    /// Whether the referrer's domain (or a parent of it) is a known referrer
    /// spammer. The collector should then drop the event.
    pub fn referrer_is_spam(&self) -> bool {
        self.referrer_domain
            .as_deref()
            .is_some_and(is_referrer_spam)
    }
}

/// Marketing channel, after GA4's default channel grouping (module docs
/// give the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// No referrer, no tags, no click id.
    #[default]
    Direct,
    OrganicSearch,
    PaidSearch,
    OrganicSocial,
    PaidSocial,
    OrganicVideo,
    PaidVideo,
    OrganicShopping,
    PaidShopping,
    /// Display advertising (banner, cpm, `dclid`).
    Display,
    /// Paid, but not search, social, video, shopping or display.
    PaidOther,
    Email,
    Affiliate,
    /// Another site linked here (or a `ref=` tag).
    Referral,
    /// Tagged with `utm_*` that no other rule classifies.
    Campaign,
}

impl Channel {
    pub const ALL: [Channel; 15] = [
        Channel::Direct,
        Channel::OrganicSearch,
        Channel::PaidSearch,
        Channel::OrganicSocial,
        Channel::PaidSocial,
        Channel::OrganicVideo,
        Channel::PaidVideo,
        Channel::OrganicShopping,
        Channel::PaidShopping,
        Channel::Display,
        Channel::PaidOther,
        Channel::Email,
        Channel::Affiliate,
        Channel::Referral,
        Channel::Campaign,
    ];

    /// Stable snake_case key (same as the serde form).
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Direct => "direct",
            Channel::OrganicSearch => "organic_search",
            Channel::PaidSearch => "paid_search",
            Channel::OrganicSocial => "organic_social",
            Channel::PaidSocial => "paid_social",
            Channel::OrganicVideo => "organic_video",
            Channel::PaidVideo => "paid_video",
            Channel::OrganicShopping => "organic_shopping",
            Channel::PaidShopping => "paid_shopping",
            Channel::Display => "display",
            Channel::PaidOther => "paid_other",
            Channel::Email => "email",
            Channel::Affiliate => "affiliate",
            Channel::Referral => "referral",
            Channel::Campaign => "campaign",
        }
    }

    /// Human label for reports ("Organic Search").
    pub const fn label(self) -> &'static str {
        match self {
            Channel::Direct => "Direct",
            Channel::OrganicSearch => "Organic Search",
            Channel::PaidSearch => "Paid Search",
            Channel::OrganicSocial => "Organic Social",
            Channel::PaidSocial => "Paid Social",
            Channel::OrganicVideo => "Organic Video",
            Channel::PaidVideo => "Paid Video",
            Channel::OrganicShopping => "Organic Shopping",
            Channel::PaidShopping => "Paid Shopping",
            Channel::Display => "Display",
            Channel::PaidOther => "Paid Other",
            Channel::Email => "Email",
            Channel::Affiliate => "Affiliate",
            Channel::Referral => "Referral",
            Channel::Campaign => "Campaign",
        }
    }

    /// Inverse of [`Channel::as_str`].
    pub fn from_key(key: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == key)
    }
}

/// The `utm_*` tags of the page URL: percent-decoded, trimmed, empty → `None`,
/// cut to [`MAX_UTM_BYTES`]. The first non-empty occurrence of each wins.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
}

impl Utm {
    pub fn is_empty(&self) -> bool {
        self.source.is_none()
            && self.medium.is_none()
            && self.campaign.is_none()
            && self.term.is_none()
            && self.content.is_none()
    }
}

/// A known ad-click id query parameter. Only its presence is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ClickId {
    /// Google Ads.
    #[serde(rename = "gclid")]
    Gclid,
    /// Google Ads (iOS app-to-web).
    #[serde(rename = "gbraid")]
    Gbraid,
    /// Google Ads (iOS web-to-app).
    #[serde(rename = "wbraid")]
    Wbraid,
    /// Google Display & Video 360 / Campaign Manager.
    #[serde(rename = "dclid")]
    Dclid,
    /// Microsoft Advertising (Bing).
    #[serde(rename = "msclkid")]
    Msclkid,
    /// Yandex Direct.
    #[serde(rename = "yclid")]
    Yclid,
    /// Meta (Facebook, Instagram). Also added to organic links, so not a
    /// paid signal on its own ([`ClickId::marks_ad_click`]).
    #[serde(rename = "fbclid")]
    Fbclid,
    /// TikTok Ads.
    #[serde(rename = "ttclid")]
    Ttclid,
    /// X (Twitter) Ads.
    #[serde(rename = "twclid")]
    Twclid,
    /// LinkedIn Ads.
    #[serde(rename = "li_fat_id")]
    LiFatId,
    /// Pinterest Ads.
    #[serde(rename = "epik")]
    Epik,
    /// Snapchat Ads (`ScCid`).
    #[serde(rename = "sccid")]
    ScCid,
    /// Reddit Ads.
    #[serde(rename = "rdt_cid")]
    RdtCid,
}

impl ClickId {
    pub const ALL: [ClickId; 13] = [
        ClickId::Gclid,
        ClickId::Gbraid,
        ClickId::Wbraid,
        ClickId::Dclid,
        ClickId::Msclkid,
        ClickId::Yclid,
        ClickId::Fbclid,
        ClickId::Ttclid,
        ClickId::Twclid,
        ClickId::LiFatId,
        ClickId::Epik,
        ClickId::ScCid,
        ClickId::RdtCid,
    ];

    /// The query parameter name, lowercase (same as the serde form).
    pub const fn as_str(self) -> &'static str {
        match self {
            ClickId::Gclid => "gclid",
            ClickId::Gbraid => "gbraid",
            ClickId::Wbraid => "wbraid",
            ClickId::Dclid => "dclid",
            ClickId::Msclkid => "msclkid",
            ClickId::Yclid => "yclid",
            ClickId::Fbclid => "fbclid",
            ClickId::Ttclid => "ttclid",
            ClickId::Twclid => "twclid",
            ClickId::LiFatId => "li_fat_id",
            ClickId::Epik => "epik",
            ClickId::ScCid => "sccid",
            ClickId::RdtCid => "rdt_cid",
        }
    }

    /// The ad network that issues it.
    pub const fn network(self) -> &'static str {
        match self {
            ClickId::Gclid | ClickId::Gbraid | ClickId::Wbraid => "Google Ads",
            ClickId::Dclid => "Google Display & Video 360",
            ClickId::Msclkid => "Microsoft Advertising",
            ClickId::Yclid => "Yandex Direct",
            ClickId::Fbclid => "Meta",
            ClickId::Ttclid => "TikTok Ads",
            ClickId::Twclid => "X Ads",
            ClickId::LiFatId => "LinkedIn Ads",
            ClickId::Epik => "Pinterest Ads",
            ClickId::ScCid => "Snapchat Ads",
            ClickId::RdtCid => "Reddit Ads",
        }
    }

    /// Parameter name → click id, ASCII case-insensitive.
    pub fn from_param(name: &str) -> Option<ClickId> {
        ClickId::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name))
    }

    /// The source named when nothing else names one (a name in
    /// `sources.tsv`).
    const fn default_source(self) -> Option<&'static str> {
        match self {
            ClickId::Gclid | ClickId::Gbraid | ClickId::Wbraid => Some("Google"),
            ClickId::Dclid => None,
            ClickId::Msclkid => Some("Bing"),
            ClickId::Yclid => Some("Yandex"),
            ClickId::Fbclid => Some("Facebook"),
            ClickId::Ttclid => Some("TikTok"),
            ClickId::Twclid => Some("Twitter"),
            ClickId::LiFatId => Some("LinkedIn"),
            ClickId::Epik => Some("Pinterest"),
            ClickId::ScCid => Some("Snapchat"),
            ClickId::RdtCid => Some("Reddit"),
        }
    }

    /// Whether the platform adds this id to ad clicks only, so that it
    /// alone makes a visit paid. Not `fbclid`: Facebook and Instagram add it
    /// to every outbound link, organic posts included.
    pub const fn marks_ad_click(self) -> bool {
        !matches!(self, ClickId::Fbclid)
    }

    const fn paid_channel(self) -> Channel {
        match self {
            ClickId::Gclid
            | ClickId::Gbraid
            | ClickId::Wbraid
            | ClickId::Msclkid
            | ClickId::Yclid => Channel::PaidSearch,
            ClickId::Dclid => Channel::Display,
            ClickId::Fbclid
            | ClickId::Ttclid
            | ClickId::Twclid
            | ClickId::LiFatId
            | ClickId::Epik
            | ClickId::ScCid
            | ClickId::RdtCid => Channel::PaidSocial,
        }
    }
}

/// What kind of site a named source is (column 3 of `sources.tsv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceCategory {
    Search,
    Social,
    Video,
    Email,
    Shopping,
    /// Named, but channel Referral (GitHub, Wikipedia, ChatGPT…).
    Other,
}

impl SourceCategory {
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceCategory::Search => "search",
            SourceCategory::Social => "social",
            SourceCategory::Video => "video",
            SourceCategory::Email => "email",
            SourceCategory::Shopping => "shopping",
            SourceCategory::Other => "other",
        }
    }

    fn parse(s: &str) -> Option<SourceCategory> {
        Some(match s {
            "search" => SourceCategory::Search,
            "social" => SourceCategory::Social,
            "video" => SourceCategory::Video,
            "email" => SourceCategory::Email,
            "shopping" => SourceCategory::Shopping,
            "other" => SourceCategory::Other,
            _ => return None,
        })
    }
}

/// A source from the named-source table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct NamedSource {
    pub name: &'static str,
    pub category: SourceCategory,
}

/// Attributes one pageview. Never panics; garbage in gives less out.
///
/// `site_domain` is the site as registered ("example.com"); `www.` is folded
/// and its subdomains count as the site. `referrer` is the raw payload value.
pub fn attribute(page: &Url, referrer: Option<&str>, site_domain: &str) -> Attribution {
    let params = QueryParams::from_url(page);

    let site = normalize_site(site_domain);
    let page_host = page.host_str().map(normalize_host);
    let referrer = referrer
        .and_then(parse_referrer)
        .filter(|r| !r.is_internal(&site, page_host.as_deref()));

    // (display name, category when named)
    let tagged = params
        .utm
        .source
        .as_deref()
        .or(params.source.as_deref())
        .or(params.ref_.as_deref());
    let mut paid_tag = false;
    let resolved: Option<(String, Option<SourceCategory>)> = if let Some(tag) = tagged {
        Some(match lookup_tag(tag) {
            Some(t) => {
                paid_tag = t.paid;
                (t.named.name.to_owned(), Some(t.named.category))
            }
            // A URL (`ref=https://blog.example.org/post?id=1`) is shown by
            // its host, like a referrer: its path and query stay out.
            None => match tag.contains("://").then(|| parse_referrer(tag)).flatten() {
                Some(r) => (r.display(), None),
                None => (tag.to_owned(), None),
            },
        })
    } else if let Some(r) = &referrer {
        Some(match r.named() {
            Some(named) => (named.name.to_owned(), Some(named.category)),
            None => (r.display(), None),
        })
    } else {
        params
            .click_id
            .and_then(ClickId::default_source)
            .and_then(tagged_source)
            .map(|named| (named.name.to_owned(), Some(named.category)))
    };

    let category = resolved.as_ref().and_then(|(_, c)| *c);
    let channel = channel_for(
        category,
        paid_tag,
        &params.utm,
        params.click_id,
        resolved.is_some(),
    );

    Attribution {
        source: resolved.map(|(name, _)| truncate(&name, MAX_SOURCE_BYTES).to_owned()),
        referrer_domain: referrer.and_then(Referrer::into_domain),
        channel,
        utm: params.utm,
        click_id: params.click_id,
    }
}

/// The host of an `http(s)` referrer, lowercase, punycode, without a
/// trailing dot or a leading `www.`; `None` for anything else.
pub fn referrer_host(referrer: &str) -> Option<String> {
    parse_referrer(referrer).and_then(Referrer::into_domain)
}

/// Whether `package` (`com.google.android.gm`) is an Android app the
/// source table names: an export that wrote `android-app://` referrers as
/// a domain and a path can be read back as the app.
pub fn is_known_android_app(package: &str) -> bool {
    TABLE
        .android
        .contains_key(package.trim().to_ascii_lowercase().as_str())
}

/// Whether `host` or one of its parent domains is on the referrer-spam
/// blocklist (`data/source/referrer-spam.txt`). Case-insensitive; a trailing
/// dot is ignored.
pub fn is_referrer_spam(host: &str) -> bool {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return false;
    }
    let spam = &*SPAM;
    suffixes(&host).any(|s| spam.contains(s))
}

/// The named source for a host ("www.google.co.uk" → Google/search), from
/// `data/source/sources.tsv`. Exact hosts and their subdomains win over
/// `base.*` patterns; the longest match wins within each.
pub fn named_source(host: &str) -> Option<NamedSource> {
    let host = normalize_host(host);
    lookup_host(&host)
}

// ---------------------------------------------------------------------------
// Query parameters

struct QueryParams {
    utm: Utm,
    source: Option<String>,
    ref_: Option<String>,
    click_id: Option<ClickId>,
}

impl QueryParams {
    fn from_url(page: &Url) -> QueryParams {
        let mut p = QueryParams {
            utm: Utm::default(),
            source: None,
            ref_: None,
            click_id: None,
        };
        for (key, value) in page.query_pairs() {
            let slot = match_key(&key, &mut p);
            if let Some(slot) = slot {
                if slot.is_none() {
                    *slot = clean(&value, MAX_UTM_BYTES);
                }
                continue;
            }
            if p.click_id.is_none() && !value.trim().is_empty() {
                p.click_id = ClickId::from_param(&key);
            }
        }
        p
    }
}

fn match_key<'a>(key: &str, p: &'a mut QueryParams) -> Option<&'a mut Option<String>> {
    let k = |name: &str| key.eq_ignore_ascii_case(name);
    if k("utm_source") {
        Some(&mut p.utm.source)
    } else if k("utm_medium") {
        Some(&mut p.utm.medium)
    } else if k("utm_campaign") {
        Some(&mut p.utm.campaign)
    } else if k("utm_term") {
        Some(&mut p.utm.term)
    } else if k("utm_content") {
        Some(&mut p.utm.content)
    } else if k("source") {
        Some(&mut p.source)
    } else if k("ref") {
        Some(&mut p.ref_)
    } else {
        None
    }
}

/// Trimmed, non-empty, at most `max` bytes (cut at a char boundary).
fn clean(value: &str, max: usize) -> Option<String> {
    let v = truncate(value.trim(), max).trim_end();
    (!v.is_empty()).then(|| v.to_owned())
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Referrer

enum Referrer {
    /// An http(s) referrer's host, normalised.
    Web(String),
    /// An `android-app://` referrer's package, lowercase.
    AndroidApp(String),
}

impl Referrer {
    fn is_internal(&self, site: &str, page_host: Option<&str>) -> bool {
        let Referrer::Web(host) = self else {
            return false;
        };
        is_loopback(host)
            || page_host == Some(host.as_str())
            || (!site.is_empty() && is_same_or_subdomain(host, site))
            || is_proxy_of(host, site)
            || page_host.is_some_and(|p| is_proxy_of(host, p))
    }

    fn named(&self) -> Option<NamedSource> {
        match self {
            Referrer::Web(host) => lookup_host(host),
            Referrer::AndroidApp(package) => TABLE.android.get(package.as_str()).copied().flatten(),
        }
    }

    fn display(&self) -> String {
        match self {
            Referrer::Web(host) => host.clone(),
            Referrer::AndroidApp(package) => format!("{ANDROID_APP}{package}"),
        }
    }

    fn into_domain(self) -> Option<String> {
        match self {
            Referrer::Web(host) => Some(host),
            Referrer::AndroidApp(_) => None,
        }
    }
}

fn parse_referrer(raw: &str) -> Option<Referrer> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    match url.scheme() {
        "http" | "https" => {
            let host = normalize_host(url.host_str()?);
            (!host.is_empty() && host.len() <= MAX_HOST_BYTES).then_some(Referrer::Web(host))
        }
        "android-app" => {
            let package = url.host_str()?.to_ascii_lowercase();
            let valid = !package.is_empty()
                && package.len() <= MAX_HOST_BYTES
                && package
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
            valid.then_some(Referrer::AndroidApp(package))
        }
        _ => None,
    }
}

/// A development machine: `localhost` (and `*.localhost`), `127.0.0.1`,
/// `[::1]`.
fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost") || host == "127.0.0.1" || host == "[::1]"
}

/// Lowercase, no trailing dot, no leading `www.`.
fn normalize_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    match host.strip_prefix("www.") {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => host,
    }
}

/// The site's domain as a normalised host (punycode for IDNs).
fn normalize_site(site: &str) -> String {
    let site = site.trim();
    let ascii = match url::Host::parse(site) {
        Ok(url::Host::Domain(d)) => d,
        _ => site.to_owned(),
    };
    normalize_host(&ascii)
}

/// Google's AMP cache and Google Translate serving `domain`:
/// `www-example-com.cdn.ampproject.org`, `example-com.translate.goog` (the
/// domain with `-` doubled and `.` as `-`, optionally after `www-`).
fn is_proxy_of(host: &str, domain: &str) -> bool {
    let Some(label) = host
        .strip_suffix(".cdn.ampproject.org")
        .or_else(|| host.strip_suffix(".translate.goog"))
    else {
        return false;
    };
    !domain.is_empty()
        && (encodes_domain(label, domain)
            || label
                .strip_prefix("www-")
                .is_some_and(|l| encodes_domain(l, domain)))
}

/// Whether `label` is `domain` with `-` as `--` and `.` as `-`.
fn encodes_domain(label: &str, domain: &str) -> bool {
    let mut rest = label.as_bytes();
    for b in domain.bytes() {
        let want: &[u8] = match b {
            b'-' => b"--",
            b'.' => b"-",
            _ => std::slice::from_ref(&b),
        };
        match rest.strip_prefix(want) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

fn is_same_or_subdomain(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// `a.b.c`, `b.c`, `c`.
fn suffixes(host: &str) -> impl Iterator<Item = &str> {
    std::iter::once(host).chain(
        host.match_indices('.')
            .filter_map(move |(i, _)| host.get(i + 1..)),
    )
}

// ---------------------------------------------------------------------------
// Tagged sources

/// Lowercase letters and digits only: `Hacker-News` → `hackernews`.
fn tag_key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// What a tag (`utm_source`, `source`, `ref`) names, and whether the tag
/// itself says "ad" (`aliases.tsv`, third column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag {
    named: NamedSource,
    paid: bool,
}

/// The named source a tag refers to: a name, an alias, a URL or a host.
fn lookup_tag(tag: &str) -> Option<Tag> {
    let key = tag_key(tag);
    if key.is_empty() {
        return None;
    }
    if let Some(t) = TABLE.tags.get(&key) {
        return Some(*t);
    }
    let named = if tag.contains("://") {
        parse_referrer(tag).and_then(|r| r.named())
    } else if tag.contains('.') && !tag.contains(char::is_whitespace) {
        named_source(tag)
    } else {
        None
    };
    named.map(|named| Tag { named, paid: false })
}

fn tagged_source(tag: &str) -> Option<NamedSource> {
    lookup_tag(tag).map(|t| t.named)
}

// ---------------------------------------------------------------------------
// Channel

fn channel_for(
    category: Option<SourceCategory>,
    paid_tag: bool,
    utm: &Utm,
    click_id: Option<ClickId>,
    has_source: bool,
) -> Channel {
    // Substring tests run on the medium as written (case-insensitively), so
    // words do not run together (`organic_post` has no `cp`); exact words on
    // its `tag_key` (`Social-Media` = `socialmedia`).
    let raw = utm.medium.as_deref();
    let key = raw.map(tag_key);
    let medium = raw.zip(key.as_deref());
    let paid = paid_tag
        || match medium {
            Some(m) => is_paid_medium(m),
            None => click_id.is_some_and(ClickId::marks_ad_click),
        };
    let shopping = utm.campaign.as_deref().is_some_and(is_shopping_campaign);

    if paid {
        if shopping {
            return Channel::PaidShopping;
        }
        if let Some(c) = category.and_then(paid_by_category) {
            return c;
        }
        if let Some(c) = medium.and_then(paid_by_medium) {
            return c;
        }
        if let Some(c) = click_id {
            return c.paid_channel();
        }
        return Channel::PaidOther;
    }

    if let Some(c) = medium.and_then(organic_by_medium) {
        return c;
    }
    if shopping {
        return Channel::OrganicShopping;
    }
    // `organic` and `referral` only say "not paid": the source's category,
    // when known, says more (`utm_source=facebook&utm_medium=organic` is
    // Organic Social, as in GA4).
    if let Some(c) = category {
        return match c {
            SourceCategory::Search => Channel::OrganicSearch,
            SourceCategory::Social => Channel::OrganicSocial,
            SourceCategory::Video => Channel::OrganicVideo,
            SourceCategory::Shopping => Channel::OrganicShopping,
            SourceCategory::Email => Channel::Email,
            SourceCategory::Other => Channel::Referral,
        };
    }
    match medium.map(|(_, key)| key) {
        Some("organic") => return Channel::OrganicSearch,
        Some("referral" | "app" | "link") => return Channel::Referral,
        _ => {}
    }
    if utm.source.as_deref().is_some_and(is_email_source) {
        return Channel::Email;
    }
    if !utm.is_empty() {
        return Channel::Campaign;
    }
    if has_source {
        return Channel::Referral;
    }
    Channel::Direct
}

/// A medium or source as written and as its [`tag_key`].
type Medium<'a> = (&'a str, &'a str);

/// `email`, `e-mail`, `e_mail`, `e mail` (GA4) and anything containing
/// `email` or `newsletter` (`email-newsletter`, `Newsletter-UK`; as
/// Plausible) or one of GA4's spellings as a word (`promo e-mail`), but not
/// letters that only run together without punctuation (`some-mail`).
fn is_email_medium((raw, key): Medium) -> bool {
    key == "email" || has_email_word(raw)
}

/// A `utm_source` that says email: `mail`, or as [`is_email_medium`]; never
/// a URL or host (`emailtools.example.com` is a site).
fn is_email_source(source: &str) -> bool {
    !source.contains("://")
        && !source.contains('.')
        && (key_eq(source, "mail") || key_eq(source, "email") || has_email_word(source))
}

fn has_email_word(raw: &str) -> bool {
    contains_ci(raw, "email")
        || contains_ci(raw, "newsletter")
        || ["e-mail", "e_mail", "e mail"]
            .iter()
            .any(|w| contains_word_ci(raw, w))
}

/// Whether `hay` contains the ASCII `needle`, ignoring ASCII case.
fn contains_ci(hay: &str, needle: &str) -> bool {
    find_ci(hay, needle).next().is_some()
}

/// Whether `hay` contains the ASCII `needle` at its start or after a byte
/// that is not a letter or digit, ignoring ASCII case.
fn contains_word_ci(hay: &str, needle: &str) -> bool {
    let bytes = hay.as_bytes();
    find_ci(hay, needle).any(|i| {
        i.checked_sub(1)
            .and_then(|j| bytes.get(j))
            .is_none_or(|b| !b.is_ascii_alphanumeric())
    })
}

/// Byte offsets where the ASCII `needle` occurs in `hay`, ignoring ASCII case.
fn find_ci<'a>(hay: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    hay.as_bytes()
        .windows(needle.len().max(1))
        .enumerate()
        .filter(move |(_, w)| w.eq_ignore_ascii_case(needle.as_bytes()))
        .map(|(i, _)| i)
}

/// Whether `s`'s [`tag_key`] is `word` (lowercase ASCII), without
/// building it.
fn key_eq(s: &str, word: &str) -> bool {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .eq(word.chars())
}

/// GA4's shopping campaign, `^(.*(([^a-df-z]|^)shop|shopping).*)$`
/// case-insensitively: `shop` at the start or after anything but a letter
/// other than `e` (`eshop`, `summer_shop`; not `workshop`), or `shopping`.
fn is_shopping_campaign(campaign: &str) -> bool {
    let c = campaign.to_ascii_lowercase();
    let bytes = c.as_bytes();
    c.contains("shopping")
        || c.match_indices("shop").any(|(i, _)| {
            i.checked_sub(1)
                .and_then(|j| bytes.get(j))
                .is_none_or(|&b| b == b'e' || !b.is_ascii_lowercase())
        })
}

/// GA4's `^(.*cp.*|ppc|retargeting|paid.*)$`, case-insensitively.
fn is_paid_medium((raw, key): Medium) -> bool {
    contains_ci(raw, "cp")
        || key == "ppc"
        || key == "retargeting"
        || raw.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("paid"))
}

fn is_display_medium(m: &str) -> bool {
    matches!(
        m,
        "display" | "banner" | "expandable" | "interstitial" | "cpm"
    )
}

fn paid_by_category(c: SourceCategory) -> Option<Channel> {
    match c {
        SourceCategory::Search => Some(Channel::PaidSearch),
        SourceCategory::Social => Some(Channel::PaidSocial),
        SourceCategory::Video => Some(Channel::PaidVideo),
        SourceCategory::Shopping => Some(Channel::PaidShopping),
        SourceCategory::Email | SourceCategory::Other => None,
    }
}

fn paid_by_medium((raw, key): Medium) -> Option<Channel> {
    if contains_ci(raw, "search") {
        Some(Channel::PaidSearch)
    } else if contains_ci(raw, "social") {
        Some(Channel::PaidSocial)
    } else if contains_ci(raw, "video") {
        Some(Channel::PaidVideo)
    } else if contains_ci(raw, "shop") {
        Some(Channel::PaidShopping)
    } else if is_display_medium(key) {
        Some(Channel::Display)
    } else {
        None
    }
}

fn organic_by_medium(m @ (raw, key): Medium) -> Option<Channel> {
    Some(match key {
        _ if is_display_medium(key) => Channel::Display,
        _ if is_email_medium(m) => Channel::Email,
        "social" | "socialnetwork" | "socialmedia" | "sm" => Channel::OrganicSocial,
        _ if contains_ci(raw, "video") => Channel::OrganicVideo,
        "affiliate" | "affiliates" => Channel::Affiliate,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Data tables

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pattern<'a> {
    /// A host (and its subdomains, unless the row starts with `=`).
    Host(&'a str),
    /// `base.*`: base under `com` or a country ending (and subdomains of
    /// those, unless the row starts with `=`).
    Wildcard(&'a str),
    /// `android-app://package`.
    AndroidApp(&'a str),
}

/// Second-level labels that form a two-label country tail (`co.uk`).
const SECOND_LEVEL: [&str; 10] = [
    "co", "com", "net", "org", "ac", "edu", "gov", "gob", "ne", "or",
];

/// Leading mark of a row that matches its host only, not its subdomains.
const HOST_ONLY: &str = "=";

/// A row of `sources.tsv`: a named source, or `None` for a `-` row (a
/// host carved out of a broader pattern and shown as itself).
type Entry = Option<NamedSource>;

/// A host or `base.*` row: what it names and whether it also matches
/// subdomains (no leading `=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    entry: Entry,
    subdomains: bool,
}

struct SourceTable {
    exact: HashMap<&'static str, Row>,
    wildcard: HashMap<&'static str, Row>,
    android: HashMap<&'static str, Entry>,
    /// `tag_key(name)` and `tag_key(alias)` → source.
    tags: HashMap<String, Tag>,
}

static TABLE: LazyLock<SourceTable> = LazyLock::new(|| {
    let mut t = SourceTable {
        exact: HashMap::new(),
        wildcard: HashMap::new(),
        android: HashMap::new(),
        tags: HashMap::new(),
    };
    for (pattern, row) in data_lines(SOURCES_TSV).filter_map(|l| parse_source_line(l).ok()) {
        match pattern {
            Pattern::Host(h) => {
                t.exact.entry(h).or_insert(row);
            }
            Pattern::Wildcard(b) => {
                t.wildcard.entry(b).or_insert(row);
            }
            Pattern::AndroidApp(p) => {
                t.android.entry(p).or_insert(row.entry);
            }
        }
        if let Some(named) = row.entry {
            let tag = Tag { named, paid: false };
            t.tags.entry(tag_key(named.name)).or_insert(tag);
        }
    }
    let aliases: Vec<_> = data_lines(ALIASES_TSV)
        .filter_map(|l| parse_alias_line(l, &t.tags).ok())
        .collect();
    for (key, tag) in aliases {
        t.tags.entry(key).or_insert(tag);
    }
    t
});

static SPAM: LazyLock<HashSet<String>> = LazyLock::new(|| {
    data_lines(SPAM_TXT)
        .map(|l| l.trim_end_matches('.').to_ascii_lowercase())
        .filter(|l| !l.is_empty())
        .collect()
});

/// Non-blank, non-comment lines, trimmed of `\r` and outer spaces.
fn data_lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Name column of a row that names no source (see `sources.tsv`).
const UNNAMED: &str = "-";

fn parse_source_line(line: &'static str) -> Result<(Pattern<'static>, Row), String> {
    let mut cols = line.split('\t').map(str::trim);
    let (Some(pattern), Some(name), Some(category), None) =
        (cols.next(), cols.next(), cols.next(), cols.next())
    else {
        return Err(format!("want 3 TAB-separated columns: {line:?}"));
    };
    let category =
        SourceCategory::parse(category).ok_or_else(|| format!("bad category: {line:?}"))?;
    let unnamed = name == UNNAMED;
    if unnamed && (category != SourceCategory::Other || pattern.starts_with(ANDROID_APP)) {
        return Err(format!(
            "a \"-\" row is a web host of category other: {line:?}"
        ));
    }
    if !unnamed && tag_key(name).is_empty() {
        return Err(format!("empty name: {line:?}"));
    }
    let host_ok = |h: &str| {
        !h.is_empty()
            && !h.starts_with("www.")
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    };
    let (pattern, subdomains) = match pattern.strip_prefix(HOST_ONLY) {
        Some(p) => (p, false),
        None => (pattern, true),
    };
    let pattern = if let Some(package) = pattern.strip_prefix(ANDROID_APP) {
        let ok = subdomains
            && !package.is_empty()
            && package
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
        ok.then_some(Pattern::AndroidApp(package))
    } else if let Some(base) = pattern.strip_suffix(".*") {
        host_ok(base).then_some(Pattern::Wildcard(base))
    } else {
        (host_ok(pattern) && pattern.contains('.')).then_some(Pattern::Host(pattern))
    };
    let pattern = pattern.ok_or_else(|| format!("bad pattern: {line:?}"))?;
    let entry = (!unnamed).then_some(NamedSource { name, category });
    Ok((pattern, Row { entry, subdomains }))
}

fn parse_alias_line(line: &str, names: &HashMap<String, Tag>) -> Result<(String, Tag), String> {
    let mut cols = line.split('\t').map(str::trim);
    let (Some(alias), Some(name), paid, None) =
        (cols.next(), cols.next(), cols.next(), cols.next())
    else {
        return Err(format!("want 2 or 3 TAB-separated columns: {line:?}"));
    };
    let paid = match paid {
        None => false,
        Some("paid") => true,
        Some(_) => return Err(format!("third column must be \"paid\": {line:?}")),
    };
    let key = tag_key(alias);
    if key.is_empty() {
        return Err(format!("empty alias: {line:?}"));
    }
    let named = names
        .get(&tag_key(name))
        .map(|t| t.named)
        .filter(|n| n.name == name)
        .ok_or_else(|| format!("alias to a name not in sources.tsv: {line:?}"))?;
    Ok((key, Tag { named, paid }))
}

/// The first (most specific) row matching `host`; a `-` row stops the
/// search with no name.
fn lookup_host(host: &str) -> Option<NamedSource> {
    let t = &*TABLE;
    if let Some(entry) = find_row(&t.exact, host) {
        return entry;
    }
    // base.* : strip a one-label tail (`com` or a country code), then a
    // two-label one (`co.uk`, `com.br`).
    let (rest, last) = host.rsplit_once('.')?;
    let country = last.len() == 2 && last.bytes().all(|b| b.is_ascii_lowercase());
    let one = (country || last == "com").then_some(rest);
    let two = country
        .then(|| rest.rsplit_once('.'))
        .flatten()
        .filter(|(_, second)| SECOND_LEVEL.contains(second))
        .map(|(prefix, _)| prefix);
    [one, two]
        .into_iter()
        .flatten()
        .find_map(|prefix| find_row(&t.wildcard, prefix))
        .flatten()
}

/// The row for `name` or, failing that, for its nearest parent domain whose
/// row covers subdomains.
fn find_row(rows: &HashMap<&'static str, Row>, name: &str) -> Option<Entry> {
    suffixes(name)
        .enumerate()
        .find_map(|(i, s)| rows.get(s).filter(|r| i == 0 || r.subdomains))
        .map(|r| r.entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    struct Case {
        name: &'static str,
        page: &'static str,
        referrer: Option<&'static str>,
        source: Option<&'static str>,
        referrer_domain: Option<&'static str>,
        channel: Channel,
    }

    const SITE: &str = "example.com";
    const PAGE: &str = "https://example.com/pricing";

    fn case(
        name: &'static str,
        page: &'static str,
        referrer: Option<&'static str>,
        source: Option<&'static str>,
        referrer_domain: Option<&'static str>,
        channel: Channel,
    ) -> Case {
        Case {
            name,
            page,
            referrer,
            source,
            referrer_domain,
            channel,
        }
    }

    #[test]
    fn attribution_table() {
        use Channel::*;
        let cases = [
            case("no referrer", PAGE, None, None, None, Direct),
            case("empty referrer", PAGE, Some(""), None, None, Direct),
            case("blank referrer", PAGE, Some("   "), None, None, Direct),
            case(
                "garbage referrer",
                PAGE,
                Some("not a url"),
                None,
                None,
                Direct,
            ),
            case("about:blank", PAGE, Some("about:blank"), None, None, Direct),
            case(
                "file referrer",
                PAGE,
                Some("file:///etc/passwd"),
                None,
                None,
                Direct,
            ),
            case(
                "google.com",
                PAGE,
                Some("https://www.google.com/"),
                Some("Google"),
                Some("google.com"),
                OrganicSearch,
            ),
            case(
                "google.co.uk",
                PAGE,
                Some("https://www.google.co.uk/search?q=x"),
                Some("Google"),
                Some("google.co.uk"),
                OrganicSearch,
            ),
            case(
                "google.com.br",
                PAGE,
                Some("https://google.com.br/"),
                Some("Google"),
                Some("google.com.br"),
                OrganicSearch,
            ),
            case(
                "google.de uppercase",
                PAGE,
                Some("HTTPS://WWW.GOOGLE.DE/"),
                Some("Google"),
                Some("google.de"),
                OrganicSearch,
            ),
            case(
                "bing",
                PAGE,
                Some("https://www.bing.com/search?q=tallymark"),
                Some("Bing"),
                Some("bing.com"),
                OrganicSearch,
            ),
            case(
                "duckduckgo",
                PAGE,
                Some("https://duckduckgo.com/"),
                Some("DuckDuckGo"),
                Some("duckduckgo.com"),
                OrganicSearch,
            ),
            case(
                "yahoo japan",
                PAGE,
                Some("https://search.yahoo.co.jp/search?p=x"),
                Some("Yahoo!"),
                Some("search.yahoo.co.jp"),
                OrganicSearch,
            ),
            case(
                "t.co",
                PAGE,
                Some("https://t.co/abc123"),
                Some("Twitter"),
                Some("t.co"),
                OrganicSocial,
            ),
            case(
                "l.facebook.com",
                PAGE,
                Some("https://l.facebook.com/"),
                Some("Facebook"),
                Some("l.facebook.com"),
                OrganicSocial,
            ),
            case(
                "hacker news",
                PAGE,
                Some("https://news.ycombinator.com/item?id=1"),
                Some("Hacker News"),
                Some("news.ycombinator.com"),
                OrganicSocial,
            ),
            case(
                "youtube",
                PAGE,
                Some("https://m.youtube.com/watch?v=x"),
                Some("YouTube"),
                Some("m.youtube.com"),
                OrganicVideo,
            ),
            case(
                "gmail web",
                PAGE,
                Some("https://mail.google.com/"),
                Some("Gmail"),
                Some("mail.google.com"),
                Email,
            ),
            case(
                "gemini beats google.*",
                PAGE,
                Some("https://gemini.google.com/app"),
                Some("Gemini"),
                Some("gemini.google.com"),
                Referral,
            ),
            case(
                "google news",
                PAGE,
                Some("https://news.google.de/"),
                Some("Google News"),
                Some("news.google.de"),
                Referral,
            ),
            case(
                "google.* does not match google.evil.com",
                PAGE,
                Some("https://google.evil.com/"),
                Some("google.evil.com"),
                Some("google.evil.com"),
                Referral,
            ),
            case(
                "unknown referrer, www folded",
                PAGE,
                Some("https://www.blog.example.org/post"),
                Some("blog.example.org"),
                Some("blog.example.org"),
                Referral,
            ),
            case(
                "self-referral",
                PAGE,
                Some("https://example.com/"),
                None,
                None,
                Direct,
            ),
            case(
                "self-referral, www",
                PAGE,
                Some("https://www.example.com/a"),
                None,
                None,
                Direct,
            ),
            case(
                "self-referral, subdomain",
                PAGE,
                Some("http://docs.example.com/"),
                None,
                None,
                Direct,
            ),
            case(
                "self-referral, page host alias",
                "https://example.net/",
                Some("https://www.example.net/x"),
                None,
                None,
                Direct,
            ),
            case(
                "not a subdomain: notexample.com",
                PAGE,
                Some("https://notexample.com/"),
                Some("notexample.com"),
                Some("notexample.com"),
                Referral,
            ),
            case(
                "localhost",
                PAGE,
                Some("http://localhost:3000/"),
                None,
                None,
                Direct,
            ),
            case(
                "utm_source overrides referrer",
                "https://example.com/?utm_source=partner-42",
                Some("https://www.google.com/"),
                Some("partner-42"),
                Some("google.com"),
                Campaign,
            ),
            case(
                "utm_source google maps to Google",
                "https://example.com/?utm_source=google",
                None,
                Some("Google"),
                None,
                OrganicSearch,
            ),
            case(
                "utm_source alias fb",
                "https://example.com/?utm_source=FB&utm_medium=social",
                None,
                Some("Facebook"),
                None,
                OrganicSocial,
            ),
            case(
                "utm_source host",
                "https://example.com/?utm_source=news.ycombinator.com",
                None,
                Some("Hacker News"),
                None,
                OrganicSocial,
            ),
            case(
                "utm_source on self-referral",
                "https://example.com/?utm_source=partner",
                Some("https://example.com/"),
                Some("partner"),
                None,
                Campaign,
            ),
            case(
                "ref= fallback",
                "https://example.com/?ref=mysite.dev",
                None,
                Some("mysite.dev"),
                None,
                Referral,
            ),
            case(
                "ref=producthunt is Product Hunt",
                "https://example.com/?ref=producthunt",
                Some("https://www.producthunt.com/posts/x"),
                Some("Product Hunt"),
                Some("producthunt.com"),
                OrganicSocial,
            ),
            case(
                "source= before ref=",
                "https://example.com/?ref=b&source=a",
                None,
                Some("a"),
                None,
                Referral,
            ),
            case(
                "empty utm_source falls back to ref",
                "https://example.com/?utm_source=%20&ref=b",
                None,
                Some("b"),
                None,
                Referral,
            ),
            case(
                "gclid",
                "https://example.com/?gclid=abc",
                Some("https://www.google.com/"),
                Some("Google"),
                Some("google.com"),
                PaidSearch,
            ),
            case(
                "gclid without referrer",
                "https://example.com/?gclid=abc",
                None,
                Some("Google"),
                None,
                PaidSearch,
            ),
            case(
                "gclid on youtube",
                "https://example.com/?gclid=abc",
                Some("https://www.youtube.com/"),
                Some("YouTube"),
                Some("youtube.com"),
                PaidVideo,
            ),
            case(
                "fbclid alone is not paid (Facebook adds it to every link)",
                "https://example.com/?fbclid=IwAR0",
                Some("https://l.facebook.com/"),
                Some("Facebook"),
                Some("l.facebook.com"),
                OrganicSocial,
            ),
            case(
                "fbclid with a paid medium",
                "https://example.com/?fbclid=IwAR0&utm_medium=paid",
                Some("https://l.facebook.com/"),
                Some("Facebook"),
                Some("l.facebook.com"),
                PaidSocial,
            ),
            case(
                "fbclid but utm_medium=social",
                "https://example.com/?fbclid=IwAR0&utm_medium=social",
                Some("https://l.facebook.com/"),
                Some("Facebook"),
                Some("l.facebook.com"),
                OrganicSocial,
            ),
            case(
                "msclkid",
                "https://example.com/?msclkid=1",
                None,
                Some("Bing"),
                None,
                PaidSearch,
            ),
            case(
                "dclid",
                "https://example.com/?dclid=1",
                None,
                None,
                None,
                Display,
            ),
            case(
                "utm cpc google",
                "https://example.com/?utm_source=google&utm_medium=cpc",
                None,
                Some("Google"),
                None,
                PaidSearch,
            ),
            case(
                "utm paid_social unknown source",
                "https://example.com/?utm_source=partner&utm_medium=paid_social",
                None,
                Some("partner"),
                None,
                PaidSocial,
            ),
            case(
                "utm ppc unknown source",
                "https://example.com/?utm_source=partner&utm_medium=ppc",
                None,
                Some("partner"),
                None,
                PaidOther,
            ),
            case(
                "utm_medium=email",
                "https://example.com/?utm_source=weekly&utm_medium=email",
                None,
                Some("weekly"),
                None,
                Email,
            ),
            case(
                "utm_medium=E-Mail",
                "https://example.com/?utm_medium=E-Mail",
                None,
                None,
                None,
                Email,
            ),
            case(
                "utm_source=newsletter",
                "https://example.com/?utm_source=newsletter",
                None,
                Some("newsletter"),
                None,
                Email,
            ),
            case(
                "utm_medium=banner",
                "https://example.com/?utm_source=ads-r-us&utm_medium=banner",
                None,
                Some("ads-r-us"),
                None,
                Display,
            ),
            case(
                "utm_medium=affiliate",
                "https://example.com/?utm_source=blog&utm_medium=affiliate",
                None,
                Some("blog"),
                None,
                Affiliate,
            ),
            case(
                "utm_campaign only",
                "https://example.com/?utm_campaign=spring",
                None,
                None,
                None,
                Campaign,
            ),
            case(
                "android-app gmail",
                PAGE,
                Some("android-app://com.google.android.gm"),
                Some("Gmail"),
                None,
                Email,
            ),
            case(
                "android-app google quick search box",
                PAGE,
                Some("android-app://com.google.android.googlequicksearchbox/https/www.google.com"),
                Some("Google"),
                None,
                OrganicSearch,
            ),
            case(
                "android-app unknown",
                PAGE,
                Some("android-app://org.example.reader"),
                Some("android-app://org.example.reader"),
                None,
                Referral,
            ),
            case(
                "ip referrer",
                PAGE,
                Some("http://192.168.1.10:8080/x"),
                Some("192.168.1.10"),
                Some("192.168.1.10"),
                Referral,
            ),
            case(
                "idn referrer is punycode",
                PAGE,
                Some("https://bücher.example/"),
                Some("xn--bcher-kva.example"),
                Some("xn--bcher-kva.example"),
                Referral,
            ),
        ];
        assert!(cases.len() >= 25);
        for c in &cases {
            let got = attribute(&url(c.page), c.referrer, SITE);
            assert_eq!(got.source.as_deref(), c.source, "{}: source", c.name);
            assert_eq!(
                got.referrer_domain.as_deref(),
                c.referrer_domain,
                "{}: referrer_domain",
                c.name
            );
            assert_eq!(got.channel, c.channel, "{}: channel", c.name);
        }
    }

    /// The real-world check list: `tests/fixtures/source/*.tsv` (format in
    /// that directory's README.md).
    const FIXTURES: [(&str, &str); 5] = [
        (
            "search.tsv",
            include_str!("../tests/fixtures/source/search.tsv"),
        ),
        (
            "social.tsv",
            include_str!("../tests/fixtures/source/social.tsv"),
        ),
        (
            "email.tsv",
            include_str!("../tests/fixtures/source/email.tsv"),
        ),
        (
            "paid.tsv",
            include_str!("../tests/fixtures/source/paid.tsv"),
        ),
        (
            "direct.tsv",
            include_str!("../tests/fixtures/source/direct.tsv"),
        ),
    ];

    #[test]
    fn attribution_fixtures() {
        let mut failures = Vec::new();
        let mut checked = 0;
        for (file, text) in FIXTURES {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() || line.starts_with('#') {
                    continue;
                }
                let at = format!("{file}:{}", i + 1);
                let cols: Vec<&str> = line.split('\t').collect();
                assert!(
                    matches!(cols.len(), 4 | 5),
                    "{at}: want 4 or 5 TAB-separated columns: {line:?}"
                );
                let referrer = match cols[1] {
                    "-" => None,
                    "\"\"" => Some(""),
                    r => Some(r),
                };
                let want_source = (cols[2] != "-").then_some(cols[2]);
                let want_channel = Channel::from_key(cols[3])
                    .unwrap_or_else(|| panic!("{at}: unknown channel {:?}", cols[3]));
                let site = cols.get(4).copied().unwrap_or(SITE);
                let a = attribute(&url(cols[0]), referrer, site);
                if a.source.as_deref() != want_source || a.channel != want_channel {
                    failures.push(format!(
                        "{at}: {} ← {:?}: got {:?} {}, want {:?} {}",
                        cols[0],
                        referrer,
                        a.source,
                        a.channel.as_str(),
                        want_source,
                        want_channel.as_str()
                    ));
                }
                // Only the referrer's host is kept: never its path or query.
                if let Some(domain) = &a.referrer_domain {
                    assert!(
                        !domain.contains(['/', '?', '#', '@', ' ']),
                        "{at}: referrer_domain {domain:?}"
                    );
                }
                if let Some(query) = referrer
                    .and_then(|r| Url::parse(r).ok())
                    .and_then(|u| u.query().map(str::to_owned))
                {
                    assert!(!format!("{a:?}").contains(&query), "{at}: query kept");
                }
                checked += 1;
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {checked} fixture lines fail:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(checked >= 200, "only {checked} fixture lines");
    }

    #[test]
    fn site_domain_is_normalised() {
        let page = url("https://blog.example.com/");
        for site in ["www.example.com", "EXAMPLE.com.", " example.com "] {
            let a = attribute(&page, Some("https://shop.example.com/"), site);
            assert_eq!(a.source, None, "{site}");
            assert_eq!(a.channel, Channel::Direct, "{site}");
        }
        // A parent domain is not the site.
        let a = attribute(&page, Some("https://example.com/"), "blog.example.com");
        assert_eq!(a.source.as_deref(), Some("example.com"));
        // An empty or garbage site matches nothing.
        let a = attribute(&page, Some("https://other.org/"), "");
        assert_eq!(a.source.as_deref(), Some("other.org"));
        let a = attribute(&page, Some("https://other.org/"), "not a domain!");
        assert_eq!(a.source.as_deref(), Some("other.org"));
    }

    #[test]
    fn utm_fields_are_decoded_trimmed_and_first_wins() {
        let a = attribute(
            &url(
                "https://example.com/?UTM_SOURCE=Spring%20Sale&utm_medium=+email+\
                 &utm_campaign=caf%C3%A9+2025&utm_term=&utm_content=hero&utm_medium=cpc",
            ),
            None,
            SITE,
        );
        assert_eq!(
            a.utm,
            Utm {
                source: Some("Spring Sale".into()),
                medium: Some("email".into()),
                campaign: Some("café 2025".into()),
                term: None,
                content: Some("hero".into()),
            }
        );
        assert_eq!(a.source.as_deref(), Some("Spring Sale"));
        assert_eq!(a.channel, Channel::Email);
        assert_eq!(a.click_id, None);
    }

    #[test]
    fn utm_is_truncated_at_a_char_boundary() {
        // 255 ASCII bytes, then a 2-byte char straddling the limit.
        let value = format!("{}é tail", "a".repeat(MAX_UTM_BYTES - 1));
        let mut page = url("https://example.com/");
        page.query_pairs_mut().append_pair("utm_campaign", &value);
        page.query_pairs_mut()
            .append_pair("utm_source", &"€".repeat(200));
        let a = attribute(&page, None, SITE);
        let campaign = a.utm.campaign.expect("campaign");
        assert_eq!(campaign, "a".repeat(MAX_UTM_BYTES - 1));
        let source = a.utm.source.expect("source");
        assert_eq!(source, "€".repeat(MAX_UTM_BYTES / 3));
        assert!(source.len() <= MAX_UTM_BYTES);
        assert_eq!(a.source.as_deref(), Some(source.as_str()));
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("ab", 5), "ab");
    }

    #[test]
    fn click_ids() {
        for id in ClickId::ALL {
            assert_eq!(ClickId::from_param(id.as_str()), Some(id));
            assert_eq!(
                ClickId::from_param(&id.as_str().to_ascii_uppercase()),
                Some(id)
            );
            let mut page = url(&format!(
                "https://example.com/?{}=secret-value",
                id.as_str()
            ));
            let a = attribute(&page, None, SITE);
            assert_eq!(a.click_id, Some(id));
            if id.marks_ad_click() {
                assert_eq!(a.channel, id.paid_channel(), "{}", id.as_str());
            } else {
                assert!(!is_paid(a.channel), "{}: {:?}", id.as_str(), a.channel);
            }
            // With a paid medium every click id is paid, on its own network.
            page.query_pairs_mut().append_pair("utm_medium", "cpc");
            let a = attribute(&page, None, SITE);
            assert_eq!(a.channel, id.paid_channel(), "{} + cpc", id.as_str());
            assert!(
                !format!("{a:?}").contains("secret-value"),
                "value never kept"
            );
            if let Some(name) = id.default_source() {
                assert_eq!(tagged_source(name).map(|n| n.name), Some(name));
            }
            let json = serde_json::to_string(&id).expect("serialize");
            assert_eq!(json, format!("\"{}\"", id.as_str()));
        }
        assert_eq!(ClickId::from_param("ScCid"), Some(ClickId::ScCid));
        assert_eq!(ClickId::from_param("utm_source"), None);
        // Empty value: not a click.
        let a = attribute(&url("https://example.com/?gclid=&fbclid=x"), None, SITE);
        assert_eq!(a.click_id, Some(ClickId::Fbclid));
        assert_eq!(ClickId::Gclid.network(), "Google Ads");
        assert!(!ClickId::Fbclid.marks_ad_click());
    }

    fn is_paid(c: Channel) -> bool {
        matches!(
            c,
            Channel::PaidSearch
                | Channel::PaidSocial
                | Channel::PaidVideo
                | Channel::PaidShopping
                | Channel::PaidOther
                | Channel::Display
        )
    }

    #[test]
    fn shopping_campaigns_follow_ga4() {
        for c in [
            "shop",
            "Shop-Launch",
            "eshop",
            "summer_shop",
            "2024shop",
            "Shopping - Q1",
        ] {
            assert!(is_shopping_campaign(c), "{c}");
        }
        for c in ["workshop", "bishop", "spring", "sho p", ""] {
            assert!(!is_shopping_campaign(c), "{c}");
        }
    }

    #[test]
    fn medium_tests_keep_separators() {
        let paid = |raw: &str| is_paid_medium((raw, &tag_key(raw)));
        let email = |raw: &str| is_email_medium((raw, &tag_key(raw)));
        for raw in [
            "cpc",
            "CPV",
            "ppc",
            "re-targeting",
            "paid_social",
            "Paid Search",
            "cpc_brand",
        ] {
            assert!(paid(raw), "{raw}");
        }
        for raw in [
            "organic_post",
            "organic-post",
            "public-profile",
            "topic-page",
            "_paid",
            "",
        ] {
            assert!(!paid(raw), "{raw}");
        }
        for raw in [
            "email",
            "E-Mail",
            "e mail",
            "Email_Marketing",
            "promo_e-mail",
            "Newsletter",
        ] {
            assert!(email(raw), "{raw}");
        }
        for raw in ["some-mail", "mail", "news-letter", "female"] {
            assert!(!email(raw), "{raw}");
        }
        assert!(is_email_source("Mail"));
        assert!(is_email_source("weekly-newsletter"));
        assert!(!is_email_source("newsletter.example.com"));
        assert!(!is_email_source("https://email.example/"));
        assert!(!is_email_source("gmail"));
        assert!(contains_word_ci("x E-MAIL", "e-mail"));
        assert!(!contains_word_ci("some-mail", "e-mail"));
        assert!(!contains_ci("", "cp"));
        assert!(key_eq("E-Mail", "email"));
        assert!(!key_eq("E-Mails", "email"));
    }

    #[test]
    fn proxies_of_the_site_are_internal() {
        assert!(is_proxy_of("example-com.translate.goog", "example.com"));
        assert!(is_proxy_of(
            "www-example-com.cdn.ampproject.org",
            "example.com"
        ));
        assert!(is_proxy_of(
            "my--site-example.cdn.ampproject.org",
            "my-site.example"
        ));
        assert!(!is_proxy_of(
            "my-site-example.cdn.ampproject.org",
            "my-site.example"
        ));
        assert!(!is_proxy_of("a--example-com.translate.goog", "example.com"));
        assert!(!is_proxy_of("example-com.translate.goog", ""));
        assert!(!is_proxy_of("example-com.example.org", "example.com"));
        assert!(!is_proxy_of("translate.goog", "example.com"));
        // The page's own host counts too.
        let a = attribute(
            &url("https://example.net/"),
            Some("https://example-net.translate.goog/"),
            SITE,
        );
        assert_eq!(a.channel, Channel::Direct);
    }

    #[test]
    fn referrer_host_normalises() {
        assert_eq!(
            referrer_host("https://WWW.Example.ORG./a?b#c").as_deref(),
            Some("example.org")
        );
        assert_eq!(referrer_host("http://www/").as_deref(), Some("www"));
        assert_eq!(
            referrer_host("https://user:pw@x.io:8443/").as_deref(),
            Some("x.io")
        );
        assert_eq!(referrer_host("android-app://com.google.android.gm"), None);
        assert_eq!(referrer_host("ftp://example.org/"), None);
        assert_eq!(referrer_host("example.org"), None);
        assert_eq!(referrer_host(""), None);
        assert_eq!(referrer_host("https://"), None);
        let long = format!("https://{}.com/", "a.".repeat(200));
        assert_eq!(referrer_host(&long), None);
    }

    #[test]
    fn referrer_spam() {
        assert!(is_referrer_spam("semalt.com"));
        assert!(is_referrer_spam("darodar.com"));
        assert!(is_referrer_spam("buttons-for-website.com"));
        assert!(is_referrer_spam("forum.semalt.com"), "subdomain");
        assert!(is_referrer_spam("SEMALT.COM."), "case, trailing dot");
        assert!(
            is_referrer_spam("qiwi.xyz"),
            "list entry QIWI.xyz lowercased"
        );
        assert!(!is_referrer_spam("notsemalt.com"));
        assert!(!is_referrer_spam("semalt.com.example.org"));
        assert!(!is_referrer_spam("google.com"));
        assert!(!is_referrer_spam(""));
        assert!(!is_referrer_spam("com"));

        let a = attribute(&url(PAGE), Some("http://www.semalt.com/crawler"), SITE);
        assert_eq!(a.referrer_domain.as_deref(), Some("semalt.com"));
        assert!(a.referrer_is_spam());
        let a = attribute(&url(PAGE), Some("https://www.google.com/"), SITE);
        assert!(!a.referrer_is_spam());
        assert!(!Attribution::default().referrer_is_spam());
    }

    #[test]
    fn named_source_lookup() {
        let n = |h: &str| named_source(h).map(|s| (s.name, s.category));
        assert_eq!(
            n("www.google.co.uk"),
            Some(("Google", SourceCategory::Search))
        );
        assert_eq!(n("google.com.au"), Some(("Google", SourceCategory::Search)));
        assert_eq!(
            n("images.google.fr"),
            Some(("Google", SourceCategory::Search))
        );
        assert_eq!(
            n("mail.yahoo.co.jp"),
            Some(("Yahoo! Mail", SourceCategory::Email))
        );
        assert_eq!(
            n("shopping.google.com"),
            Some(("Google Shopping", SourceCategory::Shopping))
        );
        assert_eq!(n("x.com"), Some(("Twitter", SourceCategory::Social)));
        assert_eq!(n("lnkd.in"), Some(("LinkedIn", SourceCategory::Social)));
        assert_eq!(
            n("de.wikipedia.org"),
            Some(("Wikipedia", SourceCategory::Other))
        );
        assert_eq!(
            n("amazon.co.jp"),
            Some(("Amazon", SourceCategory::Shopping))
        );
        // Google Search is google.<com or country> and a few hosts on it;
        // other subdomains and endings are not search.
        assert_eq!(n("m.google.de"), Some(("Google", SourceCategory::Search)));
        assert_eq!(n("docs.google.de"), None);
        assert_eq!(n("x.images.google.com"), None);
        assert_eq!(n("google.dev"), None);
        assert_eq!(n("google.org"), None);
        assert_eq!(n("google.co.dev"), None);
        assert_eq!(
            n("maps.google.com.mx"),
            Some(("Google Maps", SourceCategory::Other))
        );
        assert_eq!(
            n("r.search.yahoo.com"),
            Some(("Yahoo!", SourceCategory::Search))
        );
        assert_eq!(n("login.yahoo.com"), None);
        assert_eq!(
            n("suche.gmx.net"),
            Some(("GMX Search", SourceCategory::Search))
        );
        assert_eq!(n("mygoogle.com"), None);
        assert_eq!(n("google"), None);
        assert_eq!(n("co.uk"), None);
        assert_eq!(n(""), None);
        assert_eq!(n("."), None);
    }

    #[test]
    fn channel_keys_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::from_key(c.as_str()), Some(c));
            let json = serde_json::to_string(&c).expect("serialize");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert!(!c.label().is_empty());
        }
        assert_eq!(Channel::default(), Channel::Direct);
    }

    #[test]
    fn data_files_are_well_formed() {
        let mut names: HashMap<&str, SourceCategory> = HashMap::new();
        let mut patterns = HashSet::new();
        let mut hosts = 0;
        for line in data_lines(SOURCES_TSV) {
            let (pattern, row) = parse_source_line(line).unwrap_or_else(|e| panic!("{e}"));
            assert!(patterns.insert(pattern), "duplicate pattern: {line:?}");
            if let Some(named) = row.entry {
                let category = *names.entry(named.name).or_insert(named.category);
                assert_eq!(category, named.category, "one category per name: {line:?}");
            }
            if let Pattern::Host(h) | Pattern::Wildcard(h) = pattern {
                hosts += 1;
                assert!(!is_referrer_spam(h), "named source on spam list: {h}");
            }
        }
        assert!(hosts >= 60, "only {hosts} host patterns");
        // Every name resolves to itself as a tag (no key collisions).
        for name in names.keys() {
            assert_eq!(tagged_source(name).map(|n| n.name), Some(*name), "{name}");
        }
        // Every alias is used: not a name's key, nor another alias's.
        let mut alias_keys = HashSet::new();
        for line in data_lines(ALIASES_TSV) {
            let (key, tag) = parse_alias_line(line, &TABLE.tags).unwrap_or_else(|e| panic!("{e}"));
            assert!(alias_keys.insert(key.clone()), "duplicate alias: {line:?}");
            assert!(
                !names.keys().any(|n| tag_key(n) == key),
                "alias shadowed by a name: {line:?}"
            );
            assert_eq!(TABLE.tags.get(&key), Some(&tag), "{line:?}");
        }
        // A "-" row is a web host, of category other.
        assert!(parse_source_line("x.example.com\t-\tsearch").is_err());
        assert!(parse_source_line("android-app://com.example\t-\tother").is_err());
        assert!(parse_source_line("=android-app://com.example\tX\tother").is_err());
        assert!(parse_source_line("==x.example.com\tX\tother").is_err());
        let (pattern, row) = parse_source_line("=x.example.*\tX\tother").expect("host-only row");
        assert_eq!(pattern, Pattern::Wildcard("x.example"));
        assert!(!row.subdomains);
        assert!(parse_alias_line("x\tGoogle\tfree", &TABLE.tags).is_err());
        let spam: Vec<_> = data_lines(SPAM_TXT).collect();
        assert!(spam.len() > 2000, "spam list has {} entries", spam.len());
        for line in spam {
            assert!(
                line.contains('.') && !line.contains(char::is_whitespace),
                "spam line: {line:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn attribute_never_panics(
            referrer in proptest::option::of(any::<String>()),
            query in any::<String>(),
            site in "[a-zA-Z0-9.\\-]{0,20}",
        ) {
            let mut page = url("https://example.com/");
            page.set_query(Some(&query));
            let a = attribute(&page, referrer.as_deref(), &site);
            for v in [&a.utm.source, &a.utm.medium, &a.utm.campaign, &a.utm.term, &a.utm.content]
                .into_iter()
                .flatten()
            {
                prop_assert!(!v.is_empty() && v.len() <= MAX_UTM_BYTES);
                prop_assert_eq!(v.trim(), v.as_str());
            }
            if let Some(s) = &a.source {
                prop_assert!(!s.is_empty() && s.len() <= MAX_SOURCE_BYTES);
            }
            prop_assert_eq!(a.channel == Channel::Direct, a.source.is_none()
                && a.utm.is_empty() && a.click_id.is_none());
        }

        #[test]
        fn attribute_never_panics_on_url_like_input(
            referrer in "(https?|android-app|ftp)?(://)?[a-zA-Z0-9.\\-:@%_/]{0,40}",
            query in "((utm_[a-z]{0,8}|ref|source|gclid|fbclid)=[a-zA-Z0-9%+. _\\-]{0,20}&?){0,5}",
        ) {
            let mut page = url("https://example.com/");
            page.set_query(Some(&query));
            let _ = attribute(&page, Some(&referrer), SITE);
            let _ = referrer_host(&referrer);
            let _ = is_referrer_spam(&referrer);
            let _ = named_source(&referrer);
        }
    }
}
