//! Query-string parsing: every parameter becomes a typed value (enums for
//! dimensions, metrics, periods and intervals) or a `400` naming it.
//!
//! Syntax (see `docs/stats-api.md`):
//!
//! - `site=example.com`
//! - `period=realtime|day|7d|30d|month|year|custom`, `date=YYYY-MM-DD`
//!   (anchor, default today in the site's timezone), `from`/`to` (custom)
//! - `filter=<dimension><op><value>`, repeatable (all must hold), with
//!   `op` one of `==` (is), `!=` (is not), `~` (contains, case-insensitive);
//!   the value `(none)` stands for "not set" with `==` and `!=`
//! - `metrics=visitors,pageviews,...`
//! - `compare=previous_period` (aggregate), `interval=minute|hour|day|week|month`
//!   (timeseries), `property=<dimension>`, `limit`, `page`, `sort=<metric|value>:<asc|desc>`
//!   (breakdown)

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::error::StatsError;

/// The label breakdowns use, and filters accept, for "not set".
pub const NONE_LABEL: &str = "(none)";

/// The longest range a request may cover, in days (5 years).
pub const MAX_RANGE_DAYS: i32 = 5 * 366;

/// The most buckets one timeseries may have.
pub const MAX_BUCKETS: usize = 5000;

/// The realtime window.
pub const REALTIME_WINDOW: SignedDuration = SignedDuration::from_mins(5);

/// Largest `limit` of a breakdown page.
pub const MAX_LIMIT: usize = 1000;

/// Dates outside this span are refused (keeps date arithmetic in range).
const MIN_DATE: Date = jiff::civil::date(2000, 1, 1);
const MAX_DATE: Date = jiff::civil::date(2100, 12, 31);

/// Something a filter or a breakdown can look at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// The path of the event (pageviews and custom events).
    Page,
    /// The page's host, without `www.` (a site's subdomains apart).
    Hostname,
    /// The first page of the session.
    EntryPage,
    /// The last page of the session.
    ExitPage,
    /// Named source (e.g. `Google`), from the referrer or `utm_source`.
    Source,
    /// Referrer host and path (no scheme, no query).
    Referrer,
    Channel,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmTerm,
    UtmContent,
    /// ISO 3166-1 alpha-2.
    Country,
    /// The region in its country, `DE Bavaria` (a city database's English
    /// name after the country's code).
    Region,
    /// The city in its country and region, `US Portland, Oregon` (`DE
    /// Munich` where the database has no region).
    City,
    /// The region's name alone, in any country (`Bavaria`; Plausible's
    /// `visit:region_name`; not rolled up: a breakdown renames the region
    /// rows when no two share a name, `rollup::breakdown`).
    RegionName,
    /// The city's name alone, in any country or region (`Portland`;
    /// Plausible's `visit:city_name`; not rolled up: as `RegionName`).
    CityName,
    Browser,
    /// The browser and its major version, `chrome 120` (not rolled up).
    BrowserVersion,
    Os,
    /// The OS and its version, `ios 17.2` (not rolled up).
    OsVersion,
    Device,
    /// `event:name`: the custom event's name.
    EventName,
    /// `event:props:<key>`: a custom property's value, as text.
    EventProp(String),
    /// `event:props`: the custom properties' keys (breakdowns only: which
    /// properties the events carry).
    EventPropKeys,
}

/// Which table a dimension lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// On events only (page, event name, properties).
    Event,
    /// On sessions only (entry and exit page).
    Session,
    /// On both, with the same column (session dimensions copied to each event).
    Shared(&'static str),
}

impl Dimension {
    /// Whether it describes the goal of a conversion rate: the custom
    /// event's name or its properties (Plausible's `event:goal` and
    /// `event:props`).
    pub fn is_goal(&self) -> bool {
        matches!(
            self,
            Dimension::EventName | Dimension::EventProp(_) | Dimension::EventPropKeys
        )
    }

    /// Every fixed dimension's name, for messages and the docs.
    pub const NAMES: &'static [&'static str] = &[
        "page",
        "hostname",
        "entry_page",
        "exit_page",
        "source",
        "referrer",
        "channel",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "country",
        "region",
        "city",
        "region_name",
        "city_name",
        "browser",
        "browser_version",
        "os",
        "os_version",
        "device",
        "event:name",
        "event:props:<key>",
        "event:props",
    ];

    pub fn scope(&self) -> Scope {
        match self {
            Dimension::Page
            | Dimension::Hostname
            | Dimension::EventName
            | Dimension::EventProp(_)
            | Dimension::EventPropKeys => Scope::Event,
            Dimension::EntryPage | Dimension::ExitPage => Scope::Session,
            Dimension::Source => Scope::Shared("source"),
            Dimension::Referrer => Scope::Shared("referrer"),
            Dimension::Channel => Scope::Shared("channel"),
            Dimension::UtmSource => Scope::Shared("utm_source"),
            Dimension::UtmMedium => Scope::Shared("utm_medium"),
            Dimension::UtmCampaign => Scope::Shared("utm_campaign"),
            Dimension::UtmTerm => Scope::Shared("utm_term"),
            Dimension::UtmContent => Scope::Shared("utm_content"),
            Dimension::Country => Scope::Shared("country"),
            Dimension::Region => Scope::Shared("region"),
            Dimension::City => Scope::Shared("city"),
            Dimension::RegionName => Scope::Shared("region"),
            Dimension::CityName => Scope::Shared("city"),
            Dimension::Browser => Scope::Shared("browser"),
            Dimension::BrowserVersion => Scope::Shared("browser_major"),
            Dimension::Os => Scope::Shared("os"),
            Dimension::OsVersion => Scope::Shared("os_version"),
            Dimension::Device => Scope::Shared("device"),
        }
    }
}

impl FromStr for Dimension {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "page" => Dimension::Page,
            "hostname" => Dimension::Hostname,
            "entry_page" => Dimension::EntryPage,
            "exit_page" => Dimension::ExitPage,
            "source" => Dimension::Source,
            "referrer" => Dimension::Referrer,
            "channel" => Dimension::Channel,
            "utm_source" => Dimension::UtmSource,
            "utm_medium" => Dimension::UtmMedium,
            "utm_campaign" => Dimension::UtmCampaign,
            "utm_term" => Dimension::UtmTerm,
            "utm_content" => Dimension::UtmContent,
            "country" => Dimension::Country,
            "region" => Dimension::Region,
            "city" => Dimension::City,
            "region_name" => Dimension::RegionName,
            "city_name" => Dimension::CityName,
            "browser" => Dimension::Browser,
            "browser_version" => Dimension::BrowserVersion,
            "os" => Dimension::Os,
            "os_version" => Dimension::OsVersion,
            "device" => Dimension::Device,
            "event:name" => Dimension::EventName,
            "event:props" => Dimension::EventPropKeys,
            other => match other.strip_prefix("event:props:") {
                Some(key) if valid_prop_key(key) => Dimension::EventProp(key.to_string()),
                Some(key) => {
                    return Err(format!(
                        "property key {key:?}: 1 to 64 bytes, no surrounding spaces, no control characters, none of \" \\ = ~"
                    ));
                }
                None => {
                    return Err(format!(
                        "unknown dimension {other:?} (known: {})",
                        Dimension::NAMES.join(", ")
                    ));
                }
            },
        })
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Dimension::Page => "page",
            Dimension::Hostname => "hostname",
            Dimension::EntryPage => "entry_page",
            Dimension::ExitPage => "exit_page",
            Dimension::Source => "source",
            Dimension::Referrer => "referrer",
            Dimension::Channel => "channel",
            Dimension::UtmSource => "utm_source",
            Dimension::UtmMedium => "utm_medium",
            Dimension::UtmCampaign => "utm_campaign",
            Dimension::UtmTerm => "utm_term",
            Dimension::UtmContent => "utm_content",
            Dimension::Country => "country",
            Dimension::Region => "region",
            Dimension::City => "city",
            Dimension::RegionName => "region_name",
            Dimension::CityName => "city_name",
            Dimension::Browser => "browser",
            Dimension::BrowserVersion => "browser_version",
            Dimension::Os => "os",
            Dimension::OsVersion => "os_version",
            Dimension::Device => "device",
            Dimension::EventName => "event:name",
            Dimension::EventPropKeys => "event:props",
            Dimension::EventProp(key) => return write!(f, "event:props:{key}"),
        };
        f.write_str(name)
    }
}

/// Any key the ingest accepts that a filter and a JSON path can name: 1 to
/// 64 bytes, no surrounding spaces, no control character, none of `"` `\`
/// (JSON path quoting) or `=` `~` (filter operators). "Plan Name" and
/// "größe" are fine.
pub fn valid_prop_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key.trim() == key
        && !key
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '\\' | '=' | '~'))
}

/// A number the API reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Visitors,
    Visits,
    Pageviews,
    ViewsPerVisit,
    BounceRate,
    VisitDuration,
    Events,
    /// Revenue of custom events that carry it, per currency.
    Revenue,
    /// Mean engaged seconds per visit of a page (breakdown by page only).
    TimeOnPage,
    /// Mean of each visit's deepest scroll on a page, in percent
    /// (breakdown by page only).
    ScrollDepth,
    /// Percent of the visitors who reached the goal: the visitors counted
    /// with every filter over those counted without the goal's (see
    /// [`without_goal`]). Needs an `event:name` or `page` filter, or a
    /// breakdown by either.
    ConversionRate,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::Visitors,
        Metric::Visits,
        Metric::Pageviews,
        Metric::ViewsPerVisit,
        Metric::BounceRate,
        Metric::VisitDuration,
        Metric::Events,
        Metric::Revenue,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Metric::Visitors => "visitors",
            Metric::Visits => "visits",
            Metric::Pageviews => "pageviews",
            Metric::ViewsPerVisit => "views_per_visit",
            Metric::BounceRate => "bounce_rate",
            Metric::VisitDuration => "visit_duration",
            Metric::Events => "events",
            Metric::Revenue => "revenue",
            Metric::TimeOnPage => "time_on_page",
            Metric::ScrollDepth => "scroll_depth",
            Metric::ConversionRate => "conversion_rate",
        }
    }

    /// Per page, from the engagement rows: only in a breakdown by page, and
    /// never a default.
    pub const ENGAGEMENT: [Metric; 2] = [Metric::TimeOnPage, Metric::ScrollDepth];

    pub const fn is_engagement(self) -> bool {
        matches!(self, Metric::TimeOnPage | Metric::ScrollDepth)
    }

    /// Computed from the events table's revenue rows, per currency (not a
    /// count: see [`super::query::CurrencySum`]).
    pub const fn is_revenue(self) -> bool {
        matches!(self, Metric::Revenue)
    }

    /// Computed from the sessions table (sessions started in the range).
    pub const fn is_session_metric(self) -> bool {
        matches!(
            self,
            Metric::Visits | Metric::ViewsPerVisit | Metric::BounceRate | Metric::VisitDuration
        )
    }
}

/// The counts [`super::query::Totals`] holds that `metrics` need: not
/// revenue nor engagement (their own rows), and visitors for a conversion
/// rate.
pub fn counts(metrics: &[Metric]) -> Vec<Metric> {
    let mut counts = Vec::with_capacity(metrics.len());
    for m in metrics {
        let m = match m {
            Metric::ConversionRate => Metric::Visitors,
            m if m.is_revenue() || m.is_engagement() => continue,
            m => *m,
        };
        if !counts.contains(&m) {
            counts.push(m);
        }
    }
    counts
}

/// Whether any of `metrics` counts rows of the events table.
pub fn wants_events(metrics: &[Metric]) -> bool {
    metrics
        .iter()
        .any(|m| !m.is_session_metric() && !m.is_revenue() && !m.is_engagement())
}

/// Whether any of `metrics` counts sessions.
pub fn wants_sessions(metrics: &[Metric]) -> bool {
    metrics.iter().any(|m| m.is_session_metric())
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Metric::ALL
            .into_iter()
            .chain(Metric::ENGAGEMENT)
            .chain([Metric::ConversionRate])
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Metric::ALL
                    .iter()
                    .chain(&Metric::ENGAGEMENT)
                    .chain(&[Metric::ConversionRate])
                    .map(|m| m.as_str())
                    .collect();
                format!("unknown metric {s:?} (known: {})", known.join(", "))
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Is,
    IsNot,
    Contains,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub dimension: Dimension,
    pub op: Op,
    /// One or several (`country==FR|DE`: any of them; `!=`: none of them).
    pub values: Vec<String>,
}

/// At most this many values in one filter.
pub const MAX_FILTER_VALUES: usize = 50;

/// What a filter's values match, read from their text: `(none)` (not set),
/// exact values, and with `==`/`!=` wildcard patterns (`/blog/*`: a `*`
/// is any run of characters, `/` included, as in Plausible; `\*` a star).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matchers {
    pub none: bool,
    pub exact: Vec<String>,
    /// Each pattern as its literal pieces between the wildcards (two pieces
    /// or more: `/blog/*` is `["/blog/", ""]`).
    pub patterns: Vec<Vec<String>>,
}

impl Matchers {
    /// Whether it matches any set value (not only "not set").
    pub fn any_set(&self) -> bool {
        !self.exact.is_empty() || !self.patterns.is_empty()
    }
}

impl Filter {
    /// Its values as [`Matchers`]. With `~` every value is literal text.
    pub fn matchers(&self) -> Matchers {
        let mut m = Matchers::default();
        for v in &self.values {
            if v == NONE_LABEL {
                m.none = true;
                continue;
            }
            if self.op == Op::Contains {
                m.exact.push(v.replace("\\*", "*"));
                continue;
            }
            let pieces = split_unescaped(v, '*');
            if pieces.len() > 1 {
                m.patterns.push(pieces);
            } else {
                m.exact.push(pieces.concat());
            }
        }
        m
    }

    /// Its one exact value (not a pattern), when it has just one.
    pub fn single(&self) -> Option<String> {
        match self.matchers() {
            Matchers {
                none: false,
                exact,
                patterns,
            } if exact.len() == 1 && patterns.is_empty() => exact.into_iter().next(),
            Matchers { none: true, .. } if self.values.len() == 1 => Some(NONE_LABEL.to_string()),
            _ => None,
        }
    }
}

/// `text` split at each `sep` not escaped as `\<sep>`, the escapes
/// removed (other backslashes stay).
fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let last = parts.len() - 1;
        if c == '\\' && chars.peek() == Some(&sep) {
            chars.next();
            parts[last].push(sep);
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts[last].push(c);
        }
    }
    parts
}

/// A filter's text after its operator as values: `|` separates them, `\|`
/// is a `|` inside one (Plausible's syntax). A `\*` stays as written (see
/// [`Filter::matchers`]).
pub fn split_values(text: &str) -> Vec<String> {
    split_unescaped(text, '|')
}

/// `values` as a filter's text: `split_values` reads it back.
pub fn join_values<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    values
        .into_iter()
        .map(|v| v.replace('|', "\\|"))
        .collect::<Vec<_>>()
        .join("|")
}

/// What a conversion rate divides by: `filters` without the goal's, or
/// `None` when they have no goal. The goal is an event (`event:name`
/// filters, with the `event:props` ones), or else a page (`page` filters: a
/// pageview goal, Plausible's `Visit /pricing`).
pub fn without_goal(filters: &[Filter]) -> Option<Vec<Filter>> {
    let has = |d: &Dimension| filters.iter().any(|f| f.dimension == *d);
    let goal: fn(&Dimension) -> bool = if has(&Dimension::EventName) {
        Dimension::is_goal
    } else if has(&Dimension::Page) {
        |d| *d == Dimension::Page
    } else {
        return None;
    };
    Some(
        filters
            .iter()
            .filter(|f| !goal(&f.dimension))
            .cloned()
            .collect(),
    )
}

impl FromStr for Filter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let found = [("==", Op::Is), ("!=", Op::IsNot), ("~", Op::Contains)]
            .into_iter()
            .filter_map(|(token, op)| s.find(token).map(|at| (at, token, op)))
            .min_by_key(|(at, _, _)| *at);
        let Some((at, token, op)) = found else {
            return Err(format!(
                "{s:?}: expected <dimension>==<value>, <dimension>!=<value> or <dimension>~<value>"
            ));
        };
        let dimension: Dimension = s[..at].trim().parse()?;
        if dimension == Dimension::EventPropKeys {
            return Err(format!(
                "{s:?}: filter on a property's value, event:props:<key>==<value>"
            ));
        }
        let values = split_values(&s[at + token.len()..]);
        if values.len() > MAX_FILTER_VALUES {
            return Err(format!(
                "{s:?}: at most {MAX_FILTER_VALUES} values joined by |"
            ));
        }
        if values.iter().any(|v| v.is_empty() || v.len() > 2000) {
            return Err(format!(
                "{s:?}: each value must be 1 to 2000 bytes (a | inside one is written \\|)"
            ));
        }
        if op == Op::Contains && values.iter().any(|v| v == NONE_LABEL) {
            return Err(format!("{s:?}: (none) works only with == and !="));
        }
        Ok(Filter {
            dimension,
            op,
            values,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    Realtime,
    Day,
    Days7,
    Days30,
    Month,
    /// The calendar month of `date` and the 5 (11) before it.
    Months6,
    Months12,
    Year,
    Custom,
}

impl PeriodKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Realtime => "realtime",
            PeriodKind::Day => "day",
            PeriodKind::Days7 => "7d",
            PeriodKind::Days30 => "30d",
            PeriodKind::Month => "month",
            PeriodKind::Months6 => "6mo",
            PeriodKind::Months12 => "12mo",
            PeriodKind::Year => "year",
            PeriodKind::Custom => "custom",
        }
    }
}

impl FromStr for PeriodKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "realtime" => PeriodKind::Realtime,
            "day" => PeriodKind::Day,
            "7d" => PeriodKind::Days7,
            "30d" => PeriodKind::Days30,
            "month" => PeriodKind::Month,
            "6mo" => PeriodKind::Months6,
            "12mo" => PeriodKind::Months12,
            "year" => PeriodKind::Year,
            "custom" => PeriodKind::Custom,
            other => {
                return Err(format!(
                    "unknown period {other:?} (known: realtime, day, 7d, 30d, month, 6mo, 12mo, year, custom)"
                ));
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

impl Interval {
    pub const fn as_str(self) -> &'static str {
        match self {
            Interval::Minute => "minute",
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }
}

impl FromStr for Interval {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "minute" => Interval::Minute,
            "hour" => Interval::Hour,
            "day" => Interval::Day,
            "week" => Interval::Week,
            "month" => Interval::Month,
            other => {
                return Err(format!(
                    "unknown interval {other:?} (known: minute, hour, day, week, month)"
                ));
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Value,
    Metric(Metric),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

/// The query string, split into known parameters; every endpoint then takes
/// what it needs and refuses the rest.
#[derive(Debug, Default)]
pub struct RawQuery {
    pairs: Vec<(String, String)>,
}

impl RawQuery {
    /// Splits `query`, refusing parameters not in `allowed` and repeats of
    /// parameters other than `filter` and `step` (a funnel's).
    pub fn parse(query: Option<&str>, allowed: &[&'static str]) -> Result<Self, StatsError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if !allowed.contains(&key.as_ref()) {
                let takes = if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                };
                return Err(StatsError::bad(
                    "query",
                    format!(
                        "unknown parameter {:?} (this endpoint takes: {takes})",
                        truncate(&key)
                    ),
                ));
            }
            if key != "filter" && key != "step" && pairs.iter().any(|(k, _)| *k == key) {
                let param = static_name(allowed, &key);
                return Err(StatsError::bad(param, "given more than once"));
            }
            pairs.push((key.into_owned(), value.into_owned()));
        }
        Ok(Self { pairs })
    }

    /// Adds a parameter (for requests built in code).
    pub fn push(&mut self, key: &str, value: &str) {
        self.pairs.push((key.to_string(), value.to_string()));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Parses `key` with `FromStr`, naming the parameter on failure.
    pub fn parsed<T: FromStr<Err = String>>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StatsError> {
        self.get(key)
            .map(|v| v.parse::<T>().map_err(|e| StatsError::bad(key, e)))
            .transpose()
    }

    pub fn site(&self) -> Result<&str, StatsError> {
        self.get("site")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| StatsError::bad("site", "missing (example: site=example.com)"))
    }

    pub fn filters(&self) -> Result<Vec<Filter>, StatsError> {
        let filters = self
            .all("filter")
            .map(|f| {
                f.parse::<Filter>()
                    .map_err(|e| StatsError::bad("filter", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if filters.len() > 20 {
            return Err(StatsError::bad("filter", "at most 20 filters"));
        }
        Ok(filters)
    }

    /// `metrics`, or `default` when absent.
    pub fn metrics(&self, default: &[Metric]) -> Result<Vec<Metric>, StatsError> {
        let Some(list) = self.get("metrics") else {
            return Ok(default.to_vec());
        };
        let mut metrics = Vec::new();
        for name in list.split(',').map(str::trim) {
            let m: Metric = name.parse().map_err(|e| StatsError::bad("metrics", e))?;
            if !metrics.contains(&m) {
                metrics.push(m);
            }
        }
        if metrics.is_empty() {
            return Err(StatsError::bad("metrics", "empty"));
        }
        Ok(metrics)
    }

    pub fn compare(&self) -> Result<bool, StatsError> {
        match self.get("compare") {
            None => Ok(false),
            Some("previous_period") => Ok(true),
            Some(other) => Err(StatsError::bad(
                "compare",
                format!("{:?}: only previous_period is supported", truncate(other)),
            )),
        }
    }

    /// `limit` (1..=1000, default 100) and `page` (from 1).
    pub fn pagination(&self) -> Result<(usize, usize), StatsError> {
        let number = |key: &'static str, default: usize, max: usize| match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    StatsError::bad(key, format!("expected a whole number from 1 to {max}"))
                }),
        };
        Ok((
            number("limit", 100, MAX_LIMIT)?,
            number("page", 1, 1_000_000)?,
        ))
    }

    /// `sort`: `<metric>:<asc|desc>` or `value:<asc|desc>`; the metric must
    /// be one of those requested. Default: the first metric, descending.
    pub fn sort(&self, metrics: &[Metric]) -> Result<Sort, StatsError> {
        let Some(spec) = self.get("sort") else {
            return Ok(Sort {
                key: SortKey::Metric(metrics[0]),
                descending: true,
            });
        };
        let (key, direction) = spec.split_once(':').unwrap_or((spec, "desc"));
        let descending = match direction {
            "desc" => true,
            "asc" => false,
            _ => return Err(StatsError::bad("sort", "direction must be asc or desc")),
        };
        let key = if key == "value" {
            SortKey::Value
        } else {
            let m: Metric = key.parse().map_err(|e| StatsError::bad("sort", e))?;
            if !metrics.contains(&m) {
                return Err(StatsError::bad(
                    "sort",
                    format!("{} is not among the requested metrics", m.as_str()),
                ));
            }
            SortKey::Metric(m)
        };
        Ok(Sort { key, descending })
    }
}

fn static_name(allowed: &[&'static str], key: &str) -> &'static str {
    allowed
        .iter()
        .copied()
        .find(|a| *a == key)
        .unwrap_or("query")
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A resolved period: `[start, end)` in absolute time, plus the local days it
/// covers (none for realtime).
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub kind: PeriodKind,
    pub start: Timestamp,
    pub end: Timestamp,
    /// First and last local day (inclusive); `None` for realtime.
    pub days: Option<(Date, Date)>,
}

impl Range {
    pub fn start_ms(&self) -> i64 {
        self.start.as_millisecond()
    }
    pub fn end_ms(&self) -> i64 {
        self.end.as_millisecond()
    }
}

fn date_param(raw: &RawQuery, key: &'static str) -> Result<Option<Date>, StatsError> {
    let Some(text) = raw.get(key) else {
        return Ok(None);
    };
    let date: Date = text.parse().map_err(|_| {
        StatsError::bad(
            key,
            format!("{:?} is not a date (YYYY-MM-DD)", truncate(text)),
        )
    })?;
    if !(MIN_DATE..=MAX_DATE).contains(&date) || text.len() != 10 {
        return Err(StatsError::bad(
            key,
            format!(
                "{:?}: expected YYYY-MM-DD between {MIN_DATE} and {MAX_DATE}",
                truncate(text)
            ),
        ));
    }
    Ok(Some(date))
}

fn days_range(
    kind: PeriodKind,
    first: Date,
    last: Date,
    tz: &TimeZone,
) -> Result<Range, StatsError> {
    let bad = |_| StatsError::bad("date", "out of range");
    let start = first
        .to_zoned_datetime(tz.clone())
        .map_err(bad)?
        .timestamp();
    let end = last
        .tomorrow()
        .and_then(|d| d.to_zoned_datetime(tz.clone()))
        .map_err(bad)?
        .timestamp();
    Ok(Range {
        kind,
        start,
        end,
        days: Some((first, last)),
    })
}

/// Resolves `period`, `date`, `from` and `to` in the site's timezone.
pub fn period(raw: &RawQuery, tz: &TimeZone, now: Timestamp) -> Result<Range, StatsError> {
    let kind = raw
        .parsed::<PeriodKind>("period")?
        .unwrap_or(PeriodKind::Days30);
    let date = date_param(raw, "date")?;
    let from = date_param(raw, "from")?;
    let to = date_param(raw, "to")?;
    if kind != PeriodKind::Custom {
        if from.is_some() {
            return Err(StatsError::bad("from", "only with period=custom"));
        }
        if to.is_some() {
            return Err(StatsError::bad("to", "only with period=custom"));
        }
    }
    let today = now.to_zoned_datetime(tz.clone()).date();
    let anchor = date.unwrap_or(today);
    let bad = |_| StatsError::bad("date", "out of range");
    match kind {
        PeriodKind::Realtime => {
            if date.is_some() {
                return Err(StatsError::bad("date", "not with period=realtime"));
            }
            // (now − 5 min, now]: an event at `now` counts.
            let end = now
                .checked_add(SignedDuration::from_millis(1))
                .map_err(bad)?;
            let start = end.checked_sub(REALTIME_WINDOW).map_err(bad)?;
            Ok(Range {
                kind,
                start,
                end,
                days: None,
            })
        }
        PeriodKind::Day => days_range(kind, anchor, anchor, tz),
        PeriodKind::Days7 => {
            days_range(kind, anchor.checked_sub(6.days()).map_err(bad)?, anchor, tz)
        }
        PeriodKind::Days30 => days_range(
            kind,
            anchor.checked_sub(29.days()).map_err(bad)?,
            anchor,
            tz,
        ),
        PeriodKind::Month => days_range(kind, anchor.first_of_month(), anchor.last_of_month(), tz),
        PeriodKind::Months6 | PeriodKind::Months12 => {
            let first = anchor
                .checked_sub((months(kind) - 1).months())
                .map_err(bad)?;
            days_range(kind, first.first_of_month(), anchor.last_of_month(), tz)
        }
        PeriodKind::Year => days_range(kind, anchor.first_of_year(), anchor.last_of_year(), tz),
        PeriodKind::Custom => {
            if date.is_some() {
                return Err(StatsError::bad(
                    "date",
                    "not with period=custom; use from and to",
                ));
            }
            let from =
                from.ok_or_else(|| StatsError::bad("from", "required with period=custom"))?;
            let to = to.ok_or_else(|| StatsError::bad("to", "required with period=custom"))?;
            if from > to {
                return Err(StatsError::bad("from", format!("{from} is after to={to}")));
            }
            if days_between(from, to) >= MAX_RANGE_DAYS {
                return Err(StatsError::bad(
                    "to",
                    format!("the range is longer than {MAX_RANGE_DAYS} days (5 years)"),
                ));
            }
            days_range(kind, from, to, tz)
        }
    }
}

/// Calendar months of a `6mo` or `12mo` period (1 for any other).
fn months(kind: PeriodKind) -> i32 {
    match kind {
        PeriodKind::Months6 => 6,
        PeriodKind::Months12 => 12,
        _ => 1,
    }
}

/// Days from `a` to `b` (`b` later).
pub fn days_between(a: Date, b: Date) -> i32 {
    a.until(b).map(|s| s.get_days()).unwrap_or(i32::MAX)
}

/// The period just before `range`, of the same kind and length (for
/// `month` and `year`: the previous calendar month or year).
pub fn previous(range: &Range, tz: &TimeZone) -> Result<Range, StatsError> {
    let bad = |_| StatsError::bad("compare", "the previous period is out of range");
    let Some((first, last)) = range.days else {
        let length = range.end.duration_since(range.start);
        return Ok(Range {
            kind: range.kind,
            start: range.start.checked_sub(length).map_err(bad)?,
            end: range.start,
            days: None,
        });
    };
    let (first, last) = match range.kind {
        PeriodKind::Month => {
            let prev = first.checked_sub(1.month()).map_err(bad)?;
            (prev.first_of_month(), prev.last_of_month())
        }
        PeriodKind::Year => {
            let prev = first.checked_sub(1.year()).map_err(bad)?;
            (prev.first_of_year(), prev.last_of_year())
        }
        PeriodKind::Months6 | PeriodKind::Months12 => {
            let prev = first
                .checked_sub(months(range.kind).months())
                .map_err(bad)?;
            (prev, first.yesterday().map_err(bad)?)
        }
        _ => {
            let n = days_between(first, last) + 1;
            (
                first.checked_sub(n.days()).map_err(bad)?,
                first.yesterday().map_err(bad)?,
            )
        }
    };
    days_range(range.kind, first, last, tz)
}

/// One timeseries bucket: `[start_ms, end_ms)` and its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub label: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The interval a timeseries uses when none is given.
pub fn default_interval(kind: PeriodKind) -> Interval {
    match kind {
        PeriodKind::Realtime => Interval::Minute,
        PeriodKind::Day => Interval::Hour,
        PeriodKind::Months6 | PeriodKind::Months12 | PeriodKind::Year => Interval::Month,
        _ => Interval::Day,
    }
}

/// Every bucket of `range`, empty ones included, in the site's timezone.
/// Day, week and month buckets are labelled with their first local day
/// inside the range (`YYYY-MM-DD`); minute and hour buckets with their local
/// start time and offset (RFC 3339), so the two 02:00 hours of a DST fall-back
/// day stay apart. Weeks start on Monday.
pub fn buckets(
    range: &Range,
    interval: Interval,
    tz: &TimeZone,
) -> Result<Vec<Bucket>, StatsError> {
    let too_many = || {
        StatsError::bad(
            "interval",
            format!("more than {MAX_BUCKETS} buckets; choose a coarser interval"),
        )
    };
    let bad = |_| StatsError::bad("interval", "out of range");
    let (start_ms, end_ms) = (range.start_ms(), range.end_ms());
    let mut out = Vec::new();
    match (interval, range.days) {
        (Interval::Minute | Interval::Hour, _) => {
            let step = if interval == Interval::Minute {
                60_000
            } else {
                3_600_000
            };
            if (end_ms - start_ms) / step > MAX_BUCKETS as i64 {
                return Err(too_many());
            }
            let mut at = start_ms;
            while at < end_ms {
                let ts = Timestamp::from_millisecond(at).map_err(bad)?;
                let label = ts
                    .to_zoned_datetime(tz.clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string();
                let next = (at + step).min(end_ms);
                out.push(Bucket {
                    label,
                    start_ms: at,
                    end_ms: next,
                });
                at = next;
            }
        }
        (_, None) => {
            return Err(StatsError::bad(
                "interval",
                "realtime takes minute or hour buckets",
            ));
        }
        (Interval::Day | Interval::Week | Interval::Month, Some((first, last))) => {
            let mut day = first;
            while day <= last {
                let next = match interval {
                    Interval::Day => day.tomorrow(),
                    Interval::Week => {
                        let back = i64::from(day.weekday().to_monday_zero_offset());
                        day.checked_sub(back.days())
                            .and_then(|monday| monday.checked_add(7.days()))
                    }
                    _ => day.last_of_month().tomorrow(),
                }
                .map_err(bad)?;
                let bucket_end = if next > last {
                    last.tomorrow().map_err(bad)?
                } else {
                    next
                };
                let start = day.to_zoned_datetime(tz.clone()).map_err(bad)?.timestamp();
                let end = bucket_end
                    .to_zoned_datetime(tz.clone())
                    .map_err(bad)?
                    .timestamp();
                out.push(Bucket {
                    label: day.to_string(),
                    start_ms: start.as_millisecond(),
                    end_ms: end.as_millisecond(),
                });
                if out.len() > MAX_BUCKETS {
                    return Err(too_many());
                }
                day = next;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_with_the_earliest_operator() {
        let f: Filter = "page!=/a==b".parse().unwrap();
        assert_eq!(
            (f.dimension, f.op, f.values),
            (Dimension::Page, Op::IsNot, vec!["/a==b".to_string()])
        );
        // Several values, `\|` a `|` inside one; none may be empty.
        let f: Filter = r"country==FR|DE|(none)".parse().unwrap();
        assert_eq!(f.values, ["FR", "DE", "(none)"]);
        assert_eq!(
            f.matchers(),
            Matchers {
                none: true,
                exact: vec!["FR".into(), "DE".into()],
                patterns: vec![],
            }
        );
        let f: Filter = r"page==/a\|b|/c\".parse().unwrap();
        assert_eq!(f.values, ["/a|b", r"/c\"]);
        assert_eq!(split_values(&join_values(["/a|b", "x"])), ["/a|b", "x"]);
        assert!("country==FR|".parse::<Filter>().is_err());
        assert!("country==|FR".parse::<Filter>().is_err());
        assert!("page~a|(none)".parse::<Filter>().is_err());
        assert!(
            format!("page=={}", ["/a"; 51].join("|"))
                .parse::<Filter>()
                .is_err()
        );
        // Wildcards: `*` any run of characters with == and !=, `\*` a star;
        // with ~ every star is a star.
        let f: Filter = r"page==/blog/**|/a\*b|(none)|/x/*/y".parse().unwrap();
        assert_eq!(
            f.matchers(),
            Matchers {
                none: true,
                exact: vec!["/a*b".into()],
                patterns: vec![
                    vec!["/blog/".into(), "".into(), "".into()],
                    vec!["/x/".into(), "/y".into()]
                ],
            }
        );
        assert_eq!(f.single(), None);
        let f: Filter = "page~a*b".parse().unwrap();
        assert_eq!(f.matchers().exact, ["a*b"]);
        let f: Filter = r"page==/a\*".parse().unwrap();
        assert_eq!(f.single().as_deref(), Some("/a*"));
        let f: Filter = "event:props:plan~pro".parse().unwrap();
        assert_eq!(f.dimension, Dimension::EventProp("plan".into()));
        assert!("nope==x".parse::<Filter>().is_err());
        assert!("page".parse::<Filter>().is_err());
        assert!("page==".parse::<Filter>().is_err());
        let f: Filter = "event:props:Plan Name==Gold".parse().unwrap();
        assert_eq!(f.dimension, Dimension::EventProp("Plan Name".into()));
        assert!("event:props:a\"b==x".parse::<Filter>().is_err());
        assert!("event:props: a==x".parse::<Dimension>().is_err());
    }

    #[test]
    fn dst_days_have_23_and_25_hour_buckets() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        for (date, hours) in [("2026-03-29", 23), ("2026-10-25", 25), ("2026-01-15", 24)] {
            let day: Date = date.parse().unwrap();
            let range = days_range(PeriodKind::Day, day, day, &tz).unwrap();
            assert_eq!(
                buckets(&range, Interval::Hour, &tz).unwrap().len(),
                hours,
                "{date}"
            );
        }
    }

    #[test]
    fn weeks_start_on_monday_and_are_clipped_to_the_range() {
        let tz = TimeZone::UTC;
        // 2026-03-04 is a Wednesday.
        let range = days_range(
            PeriodKind::Custom,
            "2026-03-04".parse().unwrap(),
            "2026-03-17".parse().unwrap(),
            &tz,
        )
        .unwrap();
        let labels: Vec<_> = buckets(&range, Interval::Week, &tz)
            .unwrap()
            .into_iter()
            .map(|b| b.label)
            .collect();
        assert_eq!(labels, ["2026-03-04", "2026-03-09", "2026-03-16"]);
    }
}
