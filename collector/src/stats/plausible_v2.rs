//! Plausible's Stats API v2: `POST /api/v2/query` with a JSON query
//! (`{"site_id", "metrics", "date_range", "dimensions", "filters",
//! "order_by", "pagination", "include"}`), what Plausible's current
//! integrations and tools send.
//!
//! A query is planned as a v1 query of [`super::plausible`] (the same
//! dimension names, value names and goal reading), answered by the same
//! handlers, and its rows written back in v2's shape: `{"results":
//! [{"metrics": [..], "dimensions": [..]}], "meta": {..}, "query": {..}}`.
//! What Tallymark cannot answer is a `400` naming the field: more than one
//! dimension (but an OS or browser with its version), `or` across
//! dimensions, regular expressions, date ranges shorter than a day.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::error::StatsError;
use super::plausible::Endpoint;

/// Rows a breakdown is read in at most (pages of the v1 breakdown).
pub const MAX_ROWS: usize = 10_000;
/// Rows per page of the v1 breakdown read.
pub const PAGE_ROWS: usize = super::params::MAX_LIMIT;

/// A v2 query, planned.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `site_id`.
    pub site: String,
    pub endpoint: Endpoint,
    /// Plausible's v1 query string (`site_id=…&period=…`).
    pub v1: String,
    /// Tallymark's own `sort` for a breakdown (v1 has none).
    pub sort: Option<String>,
    /// A breakdown's pages to read at most (each [`Plan::page_rows`] rows).
    pub pages: usize,
    pub page_rows: usize,
    /// `28d`, `91d`: the last n days, today included, as a custom range the
    /// handler completes in the site's timezone ([`Plan::complete`]).
    pub last_days: Option<i64>,
    /// `all`: from the site's first event to today, completed likewise.
    pub all_time: bool,
    /// `percentage` asked: each row's visitors as a share of all the
    /// visitors the filters keep, which the handler asks for apart.
    pub percentage: bool,
    /// `include.compare`: the period each row is compared with.
    pub compare: Option<CompareWith>,
    pub metrics: Vec<String>,
    /// `time:day`, `visit:source`, … (at most one planned).
    pub dimension: Option<String>,
    /// An OS (browser) asked with its version: the key of its name in v1's
    /// rows, and whether the version was asked first.
    pair_parent: Option<(&'static str, bool)>,
    /// A version asked alone: rows of one number summed.
    merge_versions: bool,
    order_by: Vec<(OrderKey, bool)>,
    limit: usize,
    offset: usize,
    total_rows: bool,
    time_labels: bool,
    /// The query as sent, for the answer's `query` (its date range resolved).
    echo: Map<String, Value>,
}

/// What `include.compare` compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareWith {
    /// As many days just before (up to today, for a period still running).
    PreviousPeriod,
    /// The same days a year before.
    YearOverYear,
    /// Two days given.
    Range(jiff::civil::Date, jiff::civil::Date),
}

fn compare_with(v: &Value) -> Result<Option<CompareWith>, StatsError> {
    let day = |v: &Value| v.as_str().and_then(|d| d.parse::<jiff::civil::Date>().ok());
    match v {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::String(s) if s == "previous_period" => Ok(Some(CompareWith::PreviousPeriod)),
        Value::String(s) if s == "year_over_year" => Ok(Some(CompareWith::YearOverYear)),
        Value::Array(days) => match &days[..] {
            [a, b] => match (day(a), day(b)) {
                (Some(a), Some(b)) if a <= b => Ok(Some(CompareWith::Range(a, b))),
                _ => Err(bad(
                    "include",
                    "compare: two days in order, [\"2024-01-01\", \"2024-01-31\"]",
                )),
            },
            _ => Err(bad(
                "include",
                "compare: two days in order, [\"2024-01-01\", \"2024-01-31\"]",
            )),
        },
        _ => Err(bad(
            "include",
            "compare: \"previous_period\", \"year_over_year\" or two days [\"2024-01-01\", \"2024-01-31\"]",
        )),
    }
}

impl CompareWith {
    /// The days compared with those of `from`..=`to`; `today` bounds a
    /// period still running, as Plausible does.
    pub fn days(
        self,
        from: jiff::civil::Date,
        to: jiff::civil::Date,
        today: jiff::civil::Date,
    ) -> Option<(jiff::civil::Date, jiff::civil::Date)> {
        use jiff::ToSpan;
        match self {
            CompareWith::PreviousPeriod => {
                let last = to.min(today).max(from);
                let len = i64::from((last - from).get_days()) + 1;
                let before = from.checked_sub(1.day()).ok()?;
                Some((from.checked_sub(len.days()).ok()?, before))
            }
            // Both end at today, as Plausible's do.
            CompareWith::YearOverYear => Some((
                from.checked_sub(1.year()).ok()?,
                to.min(today).max(from).checked_sub(1.year()).ok()?,
            )),
            CompareWith::Range(a, b) => Some((a, b)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum OrderKey {
    Metric(usize),
    /// The nth dimension asked.
    Dimension(usize),
}

fn bad(field: &'static str, message: impl Into<String>) -> StatsError {
    StatsError::bad(field, message)
}

fn strings(v: &Value, field: &'static str) -> Result<Vec<String>, StatsError> {
    let items = v
        .as_array()
        .ok_or_else(|| bad(field, "must be a list of strings"))?;
    items
        .iter()
        .map(|i| {
            i.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(field, "must be a list of strings"))
        })
        .collect()
}

/// Reads a v2 query.
pub fn plan(body: &[u8]) -> Result<Plan, StatsError> {
    let query: Value =
        serde_json::from_slice(body).map_err(|e| bad("body", format!("not a JSON query: {e}")))?;
    let Value::Object(query) = query else {
        return Err(bad("body", "must be a JSON object"));
    };
    const KEYS: &[&str] = &[
        "site_id",
        "metrics",
        "date_range",
        "dimensions",
        "filters",
        "order_by",
        "pagination",
        "include",
    ];
    if let Some(k) = query.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(bad(
            "body",
            format!(
                "unknown field {:?} (this collector reads: {})",
                k.chars().take(64).collect::<String>(),
                KEYS.join(", ")
            ),
        ));
    }
    let site = query
        .get("site_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("site_id", "required: the site's domain"))?;
    let metrics = strings(
        query
            .get("metrics")
            .ok_or_else(|| bad("metrics", "required: a list such as [\"visitors\"]"))?,
        "metrics",
    )?;
    if metrics.is_empty() {
        return Err(bad("metrics", "at least one"));
    }
    let dimensions = match query.get("dimensions") {
        Some(v) => strings(v, "dimensions")?,
        None => Vec::new(),
    };
    let percentage = metrics.iter().any(|m| m == "percentage");
    if percentage && dimensions.first().is_none_or(|d| d.starts_with("time")) {
        return Err(bad(
            "metrics",
            "percentage needs a dimension other than time (the share of visitors in each row)",
        ));
    }
    // The dimensions as asked (answered in this order), and the one planned.
    let asked_dimensions = dimensions.clone();
    // An OS or browser with its version (Plausible's own dashboard asks so):
    // planned as the version, which names both.
    let version_of = |name: &str, version: &str| {
        matches!(
            (name, version),
            ("visit:os", "visit:os_version") | ("visit:browser", "visit:browser_version")
        )
    };
    let mut dimensions = match &dimensions[..] {
        [a, b] if version_of(a, b) => vec![b.clone()],
        [a, b] if version_of(b, a) => vec![a.clone()],
        [_, _, ..] => {
            return Err(bad(
                "dimensions",
                "at most one here (a time dimension, or one event or visit dimension), or an OS or browser with its version ([\"visit:os\", \"visit:os_version\"])",
            ));
        }
        _ => dimensions,
    };
    let pair = asked_dimensions.len() == 2;
    // A version alone is a number of any OS (or browser): rows of the same
    // number are summed, which only counts can be.
    let merge_versions = !pair
        && matches!(
            dimensions.first().map(String::as_str),
            Some("visit:os_version" | "visit:browser_version")
        );
    if merge_versions
        && let Some(m) = metrics.iter().find(|m| {
            !matches!(
                m.as_str(),
                "visitors" | "visits" | "pageviews" | "events" | "percentage"
            )
        })
    {
        return Err(bad(
            "metrics",
            format!(
                "{m} by a version alone is not available here (a version is summed over the OSs or browsers that have it): ask for [\"visit:os\", \"visit:os_version\"] or [\"visit:browser\", \"visit:browser_version\"]"
            ),
        ));
    }
    let mut v1 = url::form_urlencoded::Serializer::new(String::new());
    v1.append_pair("site_id", site);
    // Time buckets with data are those with visitors (v2 leaves the others
    // out): asked along, not answered unless asked.
    let mut asked: Vec<String> = metrics
        .iter()
        .filter(|m| *m != "percentage")
        .cloned()
        .collect();
    if (percentage || dimensions.iter().any(|d| d.starts_with("time")))
        && !asked.iter().any(|m| m == "visitors")
    {
        asked.push("visitors".into());
    }
    v1.append_pair("metrics", &asked.join(","));
    let mut last_days = None;
    let mut all_time = false;
    // The range's length in days, for `time`'s bucket size.
    let span: i64;
    match query.get("date_range") {
        Some(Value::String(s)) => match s.as_str() {
            "day" | "7d" | "30d" | "month" | "6mo" | "12mo" | "year" => {
                v1.append_pair("period", s);
                span = match s.as_str() {
                    "day" => 1,
                    "7d" => 7,
                    "30d" | "month" => 30,
                    "6mo" => 183,
                    _ => 365,
                };
            }
            "all" => {
                all_time = true;
                // Sized when completed, from the site's first day.
                span = 0;
            }
            "28d" | "91d" => {
                let n = if s == "28d" { 28 } else { 91 };
                last_days = Some(n);
                span = n;
            }
            other => {
                return Err(bad(
                    "date_range",
                    format!(
                        "{:?} is not supported here: day, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, all, or two days [\"2024-01-01\", \"2024-01-31\"]",
                        other.chars().take(32).collect::<String>()
                    ),
                ));
            }
        },
        Some(Value::Array(days)) => {
            let days: Vec<&str> = days.iter().filter_map(Value::as_str).collect();
            let day = |d: &str| d.parse::<jiff::civil::Date>().ok();
            match days[..] {
                [from, to] if day(from).is_some() && day(to).is_some() => {
                    v1.append_pair("period", "custom");
                    v1.append_pair("date", &format!("{from},{to}"));
                    span = match (day(from), day(to)) {
                        (Some(a), Some(b)) => (b - a).get_days() as i64 + 1,
                        _ => 1,
                    };
                }
                _ => {
                    return Err(bad(
                        "date_range",
                        "two days [\"2024-01-01\", \"2024-01-31\"] (whole days: times within a day are not supported here)",
                    ));
                }
            }
        }
        _ => {
            return Err(bad(
                "date_range",
                "required: \"7d\", \"30d\", … or two days [\"2024-01-01\", \"2024-01-31\"]",
            ));
        }
    }
    if let Some(filters) = query.get("filters") {
        let mut out = Vec::new();
        flatten_filters(filters, &mut out)?;
        if !out.is_empty() {
            v1.append_pair("filters", &out.join(";"));
        }
    }
    // `time` is sized by the range, as Plausible does, and answered as such.
    if let Some(d) = dimensions.first_mut()
        && d == "time"
        && !all_time
    {
        *d = time_for(span).to_string();
    }
    let dimension = dimensions.first().cloned();
    let endpoint = match dimension.as_deref() {
        None => Endpoint::Aggregate,
        // `all`'s `time`, sized when completed.
        Some("time") => Endpoint::Timeseries,
        Some(d) if d.starts_with("time:") => {
            let interval = interval_of(d).ok_or_else(|| {
                bad(
                    "dimensions",
                    format!("{d:?}: time, time:hour, time:day, time:week or time:month"),
                )
            })?;
            v1.append_pair("interval", interval);
            Endpoint::Timeseries
        }
        Some(d) => {
            v1.append_pair("property", d);
            Endpoint::Breakdown
        }
    };
    let mut order_by = Vec::new();
    if let Some(order) = query.get("order_by") {
        let pairs = order
            .as_array()
            .ok_or_else(|| bad("order_by", "a list of [key, \"asc\" | \"desc\"]"))?;
        for pair in pairs {
            let (key, dir) = match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), Value::String(d)]) => (k.as_str(), d.as_str()),
                _ => return Err(bad("order_by", "a list of [key, \"asc\" | \"desc\"]")),
            };
            let desc = match dir {
                "desc" => true,
                "asc" => false,
                _ => return Err(bad("order_by", format!("{dir:?}: asc or desc"))),
            };
            let key = if let Some(i) = asked_dimensions
                .iter()
                .position(|d| d == key)
                .or_else(|| (dimension.as_deref() == Some(key)).then_some(0))
            {
                OrderKey::Dimension(i)
            } else if let Some(i) = metrics.iter().position(|m| m == key) {
                OrderKey::Metric(i)
            } else {
                return Err(bad(
                    "order_by",
                    format!("{key:?} is neither a metric nor the dimension of the query"),
                ));
            };
            order_by.push((key, desc));
        }
    }
    // Tallymark reads a breakdown in the order asked (pages of it stay
    // consistent), by the first metric by default; a share of visitors is
    // in the visitors' order.
    let sorted_by = |m: &str| if m == "percentage" { "visitors" } else { m }.to_string();
    let sort = (endpoint == Endpoint::Breakdown).then(|| match order_by.first() {
        Some((OrderKey::Metric(i), desc)) => {
            format!(
                "{}:{}",
                sorted_by(&metrics[*i]),
                if *desc { "desc" } else { "asc" }
            )
        }
        Some((OrderKey::Dimension(_), desc)) => {
            format!("value:{}", if *desc { "desc" } else { "asc" })
        }
        None => format!("{}:desc", sorted_by(&metrics[0])),
    });
    // An OS (browser) and its version are read whole and ordered here.
    // So are country names ordered by name (Tallymark sorts by the code).
    let by_country_name = dimension.as_deref() == Some("visit:country_name")
        && order_by
            .iter()
            .any(|(k, _)| matches!(k, OrderKey::Dimension(_)));
    let read_all = order_by.len() > 1 || pair || merge_versions || by_country_name;
    let (mut limit, mut offset) = (MAX_ROWS, 0);
    if let Some(p) = query.get("pagination") {
        let Value::Object(p) = p else {
            return Err(bad("pagination", "{\"limit\": n, \"offset\": n}"));
        };
        for (k, v) in p {
            let n = v
                .as_u64()
                .ok_or_else(|| bad("pagination", format!("{k}: a whole number")))?
                as usize;
            match k.as_str() {
                "limit" if (1..=MAX_ROWS).contains(&n) => limit = n,
                "offset" => offset = n,
                "limit" => return Err(bad("pagination", format!("limit: 1 to {MAX_ROWS}"))),
                _ => return Err(bad("pagination", format!("{k:?}: limit or offset"))),
            }
        }
    }
    // A breakdown is read in pages of Tallymark's own: in the order asked
    // when it has one key (Tallymark sorts by it), so only as many rows as
    // the page asked needs; else every row, sorted here.
    let (page_rows, pages) = if !read_all {
        let need = offset.saturating_add(limit).min(MAX_ROWS);
        (need.min(PAGE_ROWS), need.div_ceil(PAGE_ROWS))
    } else {
        (PAGE_ROWS, MAX_ROWS / PAGE_ROWS)
    };
    if endpoint == Endpoint::Breakdown {
        v1.append_pair("limit", &page_rows.to_string());
    }
    let (mut total_rows, mut time_labels, mut compare) = (false, false, None);
    if let Some(include) = query.get("include") {
        let Value::Object(include) = include else {
            return Err(bad("include", "an object such as {\"total_rows\": true}"));
        };
        for (k, v) in include {
            let on = v.as_bool().unwrap_or(false);
            match k.as_str() {
                "total_rows" => total_rows = on,
                "time_labels" => time_labels = on,
                // Imported days (`tallymark import`) are always counted.
                "imports" | "imports_meta" => {}
                "compare" => compare = compare_with(v)?,
                // Weekdays are not aligned here: the same days shifted.
                "compare_match_day_of_week" => {}
                _ => {
                    return Err(bad(
                        "include",
                        format!(
                            "{:?} is not supported here (total_rows, time_labels, imports, compare)",
                            k.chars().take(32).collect::<String>()
                        ),
                    ));
                }
            }
        }
    }
    let mut echo = query.clone();
    echo.insert("metrics".into(), json!(metrics));
    echo.insert(
        "dimensions".into(),
        json!(if pair { &asked_dimensions } else { &dimensions }),
    );
    // The OS (browser) name's key in v1's rows, and whether it comes second.
    let pair_parent = pair.then(|| {
        let parent = if dimension.as_deref() == Some("visit:os_version") {
            "os"
        } else {
            "browser"
        };
        let version_first = asked_dimensions[0].ends_with("_version");
        (parent, version_first)
    });
    echo.entry("filters").or_insert_with(|| json!([]));
    // The order applied: time first, else the first metric, largest first.
    let default_order = match (&endpoint, &dimension) {
        (Endpoint::Timeseries, Some(d)) => json!([[d, "asc"]]),
        (Endpoint::Breakdown, _) => json!([[metrics[0], "desc"]]),
        _ => json!([]),
    };
    echo.insert(
        "order_by".into(),
        query.get("order_by").cloned().unwrap_or(default_order),
    );
    echo.insert(
        "pagination".into(),
        json!({"limit": limit, "offset": offset}),
    );
    Ok(Plan {
        site: site.to_string(),
        endpoint,
        v1: v1.finish(),
        sort,
        pages,
        page_rows,
        last_days,
        all_time,
        percentage,
        compare,
        metrics,
        dimension,
        pair_parent,
        merge_versions,
        order_by,
        limit,
        offset,
        total_rows,
        time_labels,
        echo,
    })
}

impl Plan {
    /// The v1 query, its range completed with the site's `today` for the
    /// last n days, and for `all` with the day of its first event (`first`;
    /// none: today), which also sizes `all`'s `time`.
    pub fn complete(
        &mut self,
        today: jiff::civil::Date,
        first: Option<jiff::civil::Date>,
    ) -> String {
        if self.all_time {
            // At most the stats API's longest range (five years) back.
            let earliest = today
                .checked_sub(jiff::ToSpan::days(super::params::MAX_RANGE_DAYS - 1))
                .unwrap_or(today);
            let from = first.filter(|f| *f < today).unwrap_or(today).max(earliest);
            let mut v1 = url::form_urlencoded::Serializer::new(self.v1.clone());
            v1.append_pair("period", "custom");
            v1.append_pair("date", &format!("{from},{today}"));
            if self.dimension.as_deref() == Some("time") {
                let span = (today - from).get_days() as i64 + 1;
                let d = time_for(span);
                v1.append_pair("interval", interval_of(d).unwrap_or("date"));
                self.dimension = Some(d.to_string());
                self.echo.insert("dimensions".into(), json!([d]));
                // The order asked (or the default, in time order) names it.
                if let Some(Value::Array(order)) = self.echo.get_mut("order_by") {
                    for pair in order.iter_mut() {
                        if let Some(key) = pair.get_mut(0)
                            && key == "time"
                        {
                            *key = json!(d);
                        }
                    }
                }
            }
            return v1.finish();
        }
        let Some(n) = self.last_days else {
            return self.v1.clone();
        };
        let from = today
            .checked_sub(jiff::ToSpan::days(n - 1))
            .unwrap_or(today);
        let mut v1 = url::form_urlencoded::Serializer::new(self.v1.clone());
        v1.append_pair("period", "custom");
        v1.append_pair("date", &format!("{from},{today}"));
        v1.finish()
    }
}

/// `time`'s bucket for a range of `span` days, as Plausible sizes it.
fn time_for(span: i64) -> &'static str {
    match span {
        ..=2 => "time:hour",
        3..=40 => "time:day",
        41..=364 => "time:week",
        _ => "time:month",
    }
}

/// v1's `interval` for a time dimension.
fn interval_of(dimension: &str) -> Option<&'static str> {
    match dimension {
        "time:day" => Some("date"),
        "time:week" => Some("week"),
        "time:month" => Some("month"),
        "time:hour" => Some("hour"),
        _ => None,
    }
}

/// v2 filters as v1 filter strings (`visit:country==FR|DE`): `and`
/// flattened, `or` of one dimension's `is`/`contains` as one filter of
/// their values, `not` as the opposite operator.
fn flatten_filters(filters: &Value, out: &mut Vec<String>) -> Result<(), StatsError> {
    let list = filters
        .as_array()
        .ok_or_else(|| bad("filters", "a list of [operator, dimension, [values]]"))?;
    for f in list {
        let items = f
            .as_array()
            .ok_or_else(|| bad("filters", "each one [operator, dimension, [values]]"))?;
        match &items[..] {
            [Value::String(op), inner] if op == "and" => flatten_filters(inner, out)?,
            _ => out.push(atom(f)?.nonempty()?.v1()),
        }
    }
    Ok(())
}

/// One v1 filter: a dimension, its values kept (`==`) or left out (`!=`).
/// Values are v1's: `|` and `*` escaped, a `contains` as `*text*`.
#[derive(Debug)]
struct Atom {
    dim: String,
    negated: bool,
    values: Vec<String>,
}

impl Atom {
    /// An atom of no value: a `contains` that no browser, OS or device name
    /// matches (an `or` may hold one among others).
    fn nonempty(self) -> Result<Self, StatsError> {
        if self.values.is_empty() {
            return Err(bad(
                "filters",
                format!("{}: no name here contains that", self.dim),
            ));
        }
        Ok(self)
    }

    fn v1(&self) -> String {
        let op = if self.negated { "!=" } else { "==" };
        format!("{}{op}{}", self.dim, self.values.join("|"))
    }
}

/// A filter that is one v1 filter: a comparison, an `or` of comparisons
/// that keep values of one dimension, or the `not` of either.
fn atom(f: &Value) -> Result<Atom, StatsError> {
    let items = f
        .as_array()
        .ok_or_else(|| bad("filters", "each one [operator, dimension, [values]]"))?;
    let op = items.first().and_then(Value::as_str).unwrap_or_default();
    match (op, &items[..]) {
        ("not", [_, inner]) => {
            let mut a = atom(inner)?.nonempty()?;
            a.negated = !a.negated;
            Ok(a)
        }
        ("or", [_, Value::Array(inner)]) if !inner.is_empty() => {
            let mut merged: Option<Atom> = None;
            for child in inner {
                let a = atom(child)?;
                let one_dimension = merged.as_ref().is_none_or(|m| m.dim == a.dim);
                if a.negated || !one_dimension {
                    return Err(bad(
                        "filters",
                        "\"or\" is supported here of is and contains filters on one dimension (as one filter of their values)",
                    ));
                }
                match &mut merged {
                    Some(m) => m.values.extend(a.values),
                    None => merged = Some(a),
                }
            }
            merged
                .ok_or_else(|| bad("filters", "\"or\" of no filter"))?
                .nonempty()
        }
        ("and", _) => Err(bad(
            "filters",
            "\"and\" is supported here at the top level only, not within \"or\" or \"not\"",
        )),
        ("is" | "is_not" | "contains" | "contains_not", [_, dim, values, rest @ ..]) => {
            let dim = dim
                .as_str()
                .ok_or_else(|| bad("filters", "the dimension must be a string"))?;
            // Browsers, OSs and devices are closed sets of names: a
            // name contains the text, in any case, or it does not.
            let names = dim
                .strip_prefix("visit:")
                .and_then(tallymark_core::useragent::names);
            if names.is_none()
                && let Some(Value::Object(mods)) = rest.first()
                && mods.get("case_sensitive") == Some(&Value::Bool(false))
            {
                return Err(bad(
                    "filters",
                    format!(
                        "{op} {dim}: case-insensitive matching is not supported here (only for browser, os and device)"
                    ),
                ));
            }
            let mut values: Vec<String> = values
                .as_array()
                .ok_or_else(|| bad("filters", format!("{op} {dim}: a list of values")))?
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            if values.is_empty() {
                return Err(bad("filters", format!("{op} {dim}: at least one value")));
            }
            // v1's `;` separates filters.
            if values.iter().any(|v| v.contains(';')) {
                return Err(bad(
                    "filters",
                    format!("{op} {dim}: a value with ';' is not supported here"),
                ));
            }
            let mut op = op;
            if let Some(names) = names
                && op.starts_with("contains")
            {
                let wanted: Vec<String> = values.iter().map(|v| v.to_lowercase()).collect();
                values = names
                    .iter()
                    .map(|(_, title)| *title)
                    .filter(|title| {
                        let title = title.to_lowercase();
                        wanted.iter().any(|w| title.contains(w.as_str()))
                    })
                    .map(str::to_string)
                    .collect();
                // None: an atom of no value, which only an `or` can take.
                op = if op == "contains" { "is" } else { "is_not" };
            }
            // v1's `|` separates values, `*` is a wildcard: escaped.
            let escape = |v: &str| v.replace('*', "\\*").replace('|', "\\|");
            let contains = op.starts_with("contains");
            Ok(Atom {
                dim: dim.to_string(),
                negated: op.ends_with("_not"),
                values: values
                    .iter()
                    .map(|v| {
                        if contains {
                            format!("*{}*", escape(v))
                        } else {
                            escape(v)
                        }
                    })
                    .collect(),
            })
        }
        ("or" | "not", _) => Err(bad(
            "filters",
            format!("{op:?}: [\"{op}\", ...] with a filter (or, for or, a list of them)"),
        )),
        ("matches" | "matches_not" | "matches_wildcard" | "matches_wildcard_not", _) => Err(bad(
            "filters",
            format!(
                "{op:?}: regular expressions are not supported here; contains, or is with * wildcards"
            ),
        )),
        _ => Err(bad(
            "filters",
            format!(
                "{:?}: expected [operator, dimension, [values]] with is, is_not, contains or contains_not (and, or, not to combine them)",
                f.to_string().chars().take(100).collect::<String>()
            ),
        )),
    }
}

/// One result row of v1's answer, as v2's `{"metrics", "dimensions"}`.
fn row(plan: &Plan, metrics: &Map<String, Value>, dimensions: Vec<Value>) -> Value {
    let values: Vec<Value> = plan
        .metrics
        .iter()
        .map(|m| metrics.get(m).cloned().unwrap_or(Value::Null))
        .collect();
    json!({"metrics": values, "dimensions": dimensions})
}

/// Rows of v1's breakdown with the same value (`key`) as one, their counts
/// summed (a version of several OSs: their visitors never overlap, as the
/// User-Agent is part of a visitor's id).
fn merged(rows: Vec<Map<String, Value>>, key: &str) -> Vec<Map<String, Value>> {
    let mut out: Vec<Map<String, Value>> = Vec::new();
    for r in rows {
        let value = r.get(key).cloned().unwrap_or(Value::Null);
        match out.iter_mut().find(|o| o.get(key) == Some(&value)) {
            Some(o) => {
                for (k, v) in &r {
                    if let (Some(a), Some(b)) = (o.get(k).and_then(Value::as_i64), v.as_i64()) {
                        o.insert(k.clone(), Value::from(a + b));
                    }
                }
            }
            None => out.push(r),
        }
    }
    out
}

/// The v1 answers (one, or a breakdown's pages) in v2's shape; `period` is
/// Tallymark's own (`start`, `end` exclusive, `timezone`).
/// `visitors` is the visitors of the whole query, for `percentage`.
/// `comparison`: the same query's pages (and visitors) over the period
/// compared with, for `include.compare`.
pub fn answer(
    plan: &Plan,
    pages: Vec<Value>,
    key: &str,
    period: &Value,
    total: Option<usize>,
    visitors: Option<f64>,
    comparison: Option<(Vec<Value>, Option<f64>)>,
) -> Value {
    let (mut rows, labels) = rows_of(plan, pages, key, visitors);
    if let Some((pages, visitors)) = comparison {
        let (before, before_labels) = rows_of(plan, pages, key, visitors);
        let by_dimensions: HashMap<String, Value> = before
            .iter()
            .map(|r| (r["dimensions"].to_string(), r["metrics"].clone()))
            .collect();
        let zeros = json!(vec![0; plan.metrics.len()]);
        for (i, r) in rows.iter_mut().enumerate() {
            // A time bucket is compared with the one at its place in the
            // other period (with a comparison, a row per bucket: by place,
            // also the two 02:00 of a night the clocks go back); any other
            // row with the row of its values.
            let (dimensions, metrics) = match plan.endpoint {
                Endpoint::Timeseries => (
                    json!([before_labels.get(i).cloned().unwrap_or(Value::Null)]),
                    before
                        .get(i)
                        .map_or_else(|| zeros.clone(), |b| b["metrics"].clone()),
                ),
                _ => {
                    let d = r["dimensions"].clone();
                    let m = by_dimensions
                        .get(&d.to_string())
                        .cloned()
                        .unwrap_or_else(|| zeros.clone());
                    (d, m)
                }
            };
            let change: Vec<Value> = plan
                .metrics
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    // Plausible: a bounce rate changes from something only.
                    if m == "bounce_rate" && metrics[i].as_f64().unwrap_or(0.0) <= 0.0 {
                        return Value::Null;
                    }
                    super::plausible::change(m, &r["metrics"][i], Some(&metrics[i]))
                })
                .collect();
            r["comparison"] =
                json!({"dimensions": dimensions, "metrics": metrics, "change": change});
        }
    }
    finish(plan, rows, labels, period, total)
}

/// The rows of v1's answers in v2's shape, and a timeseries' labels.
fn rows_of(
    plan: &Plan,
    pages: Vec<Value>,
    key: &str,
    visitors: Option<f64>,
) -> (Vec<Value>, Vec<Value>) {
    let mut labels = Vec::new();
    let mut rows: Vec<Value> = Vec::new();
    // A breakdown's rows, as v1 gave them.
    let mut found: Vec<Map<String, Value>> = Vec::new();
    for page in pages {
        match (plan.endpoint, page.get("results")) {
            (Endpoint::Aggregate, Some(Value::Object(results))) => {
                let flat: Map<String, Value> = results
                    .iter()
                    .map(|(m, v)| (m.clone(), v.get("value").cloned().unwrap_or(Value::Null)))
                    .collect();
                rows.push(row(plan, &flat, Vec::new()));
            }
            (Endpoint::Timeseries, Some(Value::Array(buckets))) => {
                for b in buckets {
                    let Value::Object(b) = b else { continue };
                    let mut date = b.get("date").cloned().unwrap_or(Value::Null);
                    // A month is named by its first day (a range may start
                    // later in it).
                    if plan.dimension.as_deref() == Some("time:month")
                        && let Some(d) = date.as_str()
                        && d.len() == 10
                    {
                        date = Value::from(format!("{}-01", &d[..7]));
                    }
                    labels.push(date.clone());
                    // Buckets without visitors are left out, as Plausible
                    // does (`include.time_labels` lists them all), but for
                    // a comparison, which has every bucket.
                    if plan.compare.is_some()
                        || b.get("visitors").and_then(Value::as_f64).unwrap_or(0.0) > 0.0
                    {
                        rows.push(row(plan, b, vec![date]));
                    }
                }
            }
            (Endpoint::Breakdown, Some(Value::Array(values))) => {
                found.extend(values.iter().filter_map(|v| v.as_object().cloned()));
            }
            _ => {}
        }
    }
    if plan.merge_versions {
        found = merged(found, key);
    }
    for mut v in found {
        let value = v.get(key).cloned().unwrap_or(Value::Null);
        if plan.percentage {
            // Plausible's: a percentage with one decimal.
            let share = match (v.get("visitors").and_then(Value::as_f64), visitors) {
                (Some(n), Some(all)) if all > 0.0 => json!((n / all * 1000.0).round() / 10.0),
                _ => json!(0.0),
            };
            v.insert("percentage".into(), share);
        }
        let dimensions = match plan.pair_parent {
            Some((parent, version_first)) => {
                let name = v.get(parent).cloned().unwrap_or(Value::Null);
                if version_first {
                    vec![value, name]
                } else {
                    vec![name, value]
                }
            }
            None => vec![value],
        };
        rows.push(row(plan, &v, dimensions));
    }
    (rows, labels)
}

/// Orders and pages the rows, and writes the answer.
fn finish(
    plan: &Plan,
    mut rows: Vec<Value>,
    labels: Vec<Value>,
    period: &Value,
    total: Option<usize>,
) -> Value {
    // Summed rows are ordered again: by the first metric, largest first,
    // unless an order was asked.
    let default_order = [(OrderKey::Metric(0), true)];
    let order: &[(OrderKey, bool)] = if plan.order_by.is_empty() && plan.merge_versions {
        &default_order
    } else {
        &plan.order_by
    };
    if !order.is_empty() {
        let cell = |r: &Value, k: &OrderKey| match k {
            OrderKey::Metric(i) => r["metrics"][*i].clone(),
            OrderKey::Dimension(i) => r["dimensions"][*i].clone(),
        };
        rows.sort_by(|a, b| {
            for (k, desc) in order {
                let (x, y) = (cell(a, k), cell(b, k));
                let ord = match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    _ => x
                        .as_str()
                        .unwrap_or_default()
                        .cmp(y.as_str().unwrap_or_default()),
                };
                let ord = if *desc { ord.reverse() } else { ord };
                if ord.is_ne() {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    // Summed rows are fewer than v1 counted.
    let total = total.filter(|_| !plan.merge_versions).unwrap_or(rows.len());
    let rows: Vec<Value> = rows
        .into_iter()
        .skip(plan.offset)
        .take(plan.limit)
        .collect();
    let mut meta = Map::new();
    if plan.time_labels && plan.endpoint == Endpoint::Timeseries {
        meta.insert("time_labels".into(), Value::Array(labels));
    }
    if plan.total_rows {
        meta.insert("total_rows".into(), Value::from(total));
    }
    let mut query = plan.echo.clone();
    query.insert("date_range".into(), date_range(period));
    json!({"results": rows, "meta": meta, "query": query})
}

/// The period as Plausible states it: its first and last moments in the
/// site's timezone (`2024-01-01T00:00:00+01:00`, `…T23:59:59+01:00`).
fn date_range(period: &Value) -> Value {
    let tz = period
        .get("timezone")
        .and_then(Value::as_str)
        .and_then(|t| jiff::tz::TimeZone::get(t).ok());
    let at = |key: &str, back_ms: i64| -> Option<String> {
        let t: jiff::Timestamp = period.get(key)?.as_str()?.parse().ok()?;
        let t = jiff::Timestamp::from_millisecond(t.as_millisecond() - back_ms).ok()?;
        let z = t.to_zoned_datetime(tz.clone()?);
        Some(z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
    };
    json!([at("start", 0), at("end", 1000)])
}

#[cfg(test)]
mod tests {
    use super::super::plausible::tests::pairs;
    use super::*;

    #[test]
    fn a_v2_query_plans_as_a_v1_one() {
        let p = plan(
            br#"{"site_id": "example.com", "metrics": ["visitors", "bounce_rate"],
                 "date_range": ["2024-01-01", "2024-01-31"], "dimensions": ["visit:source"],
                 "filters": [["is", "visit:country", ["FR", "DE"]],
                             ["and", [["contains", "event:page", ["/blog"]],
                                      ["is_not", "visit:device", ["Mobile"]]]]],
                 "order_by": [["bounce_rate", "asc"]], "pagination": {"limit": 5, "offset": 5}}"#,
        )
        .unwrap();
        assert_eq!(p.endpoint, Endpoint::Breakdown);
        assert_eq!(
            pairs(&p.v1),
            [
                ("site_id", "example.com"),
                ("metrics", "visitors,bounce_rate"),
                ("period", "custom"),
                ("date", "2024-01-01,2024-01-31"),
                (
                    "filters",
                    "visit:country==FR|DE;event:page==*/blog*;visit:device!=Mobile"
                ),
                ("property", "visit:source"),
                ("limit", "10"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(p.sort.as_deref(), Some("bounce_rate:asc"));
        // A closed set's names containing the text, in any case; a star is
        // a star; contains_not keeps the others.
        let p = plan(
            br#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d",
                 "filters": [["contains", "visit:device", ["TOP"], {"case_sensitive": false}],
                             ["contains_not", "visit:browser", ["fox"]],
                             ["is", "event:page", ["/a*b"]]]}"#,
        )
        .unwrap();
        assert_eq!(
            pairs(&p.v1)[3].1,
            "visit:device==Desktop|Laptop;visit:browser!=Firefox;event:page==/a\\*b"
        );
        // `or` of one dimension's comparisons is one filter; `not` flips it.
        let p = plan(
            br#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d",
                 "filters": [["or", [["is", "event:page", ["/a|b"]], ["contains", "event:page", ["x*"]]]],
                             ["not", ["or", [["is", "visit:country", ["FR"]], ["is", "visit:country", ["DE"]]]]],
                             ["not", ["contains_not", "visit:source", ["oo"]]]]}"#,
        )
        .unwrap();
        assert_eq!(
            pairs(&p.v1)[3].1,
            "event:page==/a\\|b|*x\\**;visit:country!=FR|DE;visit:source==*oo*"
        );
        // `all`: completed from the first event's day, `time` sized by it.
        let mut p = plan(br#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "all", "dimensions": ["time"]}"#).unwrap();
        let today = jiff::civil::date(2026, 3, 30);
        let v1 = p.complete(today, Some(jiff::civil::date(2025, 11, 2)));
        assert!(
            v1.ends_with("period=custom&date=2025-11-02%2C2026-03-30&interval=week"),
            "{v1}"
        );
        assert_eq!(p.dimension.as_deref(), Some("time:week"));
        let mut p =
            plan(br#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "all"}"#).unwrap();
        assert!(
            p.complete(today, None)
                .ends_with("date=2026-03-30%2C2026-03-30")
        );
        let p = plan(br#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d", "dimensions": ["time:day"]}"#).unwrap();
        assert_eq!(p.endpoint, Endpoint::Timeseries);
        assert!(p.v1.ends_with("interval=date"), "{}", p.v1);
    }

    /// Any JSON value of the shapes a query's fields take, nested.
    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            prop_oneof![
                Just("is".to_string()),
                Just("and".to_string()),
                Just("contains_not".to_string()),
                Just("visit:source".to_string()),
                Just("time:day".to_string()),
                Just("visitors".to_string()),
                Just("desc".to_string()),
                Just("7d".to_string()),
                Just("2024-01-01".to_string()),
                ".{0,12}",
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("limit".to_string()),
                        Just("offset".to_string()),
                        Just("total_rows".to_string()),
                        ".{0,6}"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Garbage in any field is an error naming a field, never a panic.
        #[test]
        fn any_query_plans_or_is_refused_without_a_panic(
            fields in proptest::collection::vec(json(), 8),
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let keys = ["site_id", "metrics", "date_range", "dimensions", "filters", "order_by", "pagination", "include"];
            let mut query = Map::new();
            for (k, v) in keys.iter().zip(fields) {
                query.insert((*k).to_string(), v);
            }
            query.insert("site_id".into(), json!("example.com"));
            query.insert("metrics".into(), json!(["visitors"]));
            if let Err(e) = plan(Value::Object(query).to_string().as_bytes()) {
                let e = e.to_string();
                proptest::prop_assert!(keys.iter().chain(&["body"]).any(|k| e.starts_with(k)), "{}", e);
            }
            let _ = plan(&raw);
        }
    }

    #[test]
    fn compared_periods_end_at_today_as_plausibles_do() {
        let d = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
        let today = d("2023-03-02");
        // This month, two days in: the two days before.
        assert_eq!(
            CompareWith::PreviousPeriod.days(d("2023-03-01"), d("2023-03-31"), today),
            Some((d("2023-02-27"), d("2023-02-28")))
        );
        // A past week: the week before.
        assert_eq!(
            CompareWith::PreviousPeriod.days(d("2023-02-20"), d("2023-02-26"), today),
            Some((d("2023-02-13"), d("2023-02-19")))
        );
        // A year before, to today's date; 29 February is the 28th then.
        assert_eq!(
            CompareWith::YearOverYear.days(d("2023-03-01"), d("2023-03-31"), today),
            Some((d("2022-03-01"), d("2022-03-02")))
        );
        assert_eq!(
            CompareWith::YearOverYear.days(d("2024-02-29"), d("2024-02-29"), d("2024-03-01")),
            Some((d("2023-02-28"), d("2023-02-28")))
        );
        assert_eq!(
            CompareWith::Range(d("2020-01-01"), d("2020-01-09")).days(
                d("2023-03-01"),
                d("2023-03-02"),
                today
            ),
            Some((d("2020-01-01"), d("2020-01-09")))
        );
        assert!(compare_with(&json!(["2020-01-09", "2020-01-01"])).is_err());
        assert!(compare_with(&json!("last_decade")).is_err());
        assert_eq!(compare_with(&json!(false)).unwrap(), None);
    }

    #[test]
    fn what_is_not_supported_is_a_400_naming_the_field() {
        for (body, field) in [
            (r#"[]"#, "body"),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d", "filters": [["is", "event:page", ["a;b"]]]}"#,
                "filters",
            ),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d", "filters": [["contains", "visit:os", ["Plan 9"]]]}"#,
                "filters",
            ),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d", "filters": [["contains", "event:page", ["/a"], {"case_sensitive": false}]]}"#,
                "filters",
            ),
            (
                r#"{"metrics": ["visitors"], "date_range": "7d"}"#,
                "site_id",
            ),
            (r#"{"site_id": "a.b", "date_range": "7d"}"#, "metrics"),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "realtime"}"#,
                "date_range",
            ),
            (
                r#"{"site_id": "a.b", "metrics": ["percentage"], "date_range": "7d"}"#,
                "metrics",
            ),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": ["2024-01-01T00:00:00Z", "2024-01-02"]}"#,
                "date_range",
            ),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d", "dimensions": ["visit:source", "visit:country"]}"#,
                "dimensions",
            ),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d", "filters": [["or", []]]}"#,
                "filters",
            ),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d", "filters": [["matches", "event:page", ["^/a"]]]}"#,
                "filters",
            ),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d", "order_by": [["pageviews", "desc"]]}"#,
                "order_by",
            ),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d", "pagination": {"limit": 0}}"#,
                "pagination",
            ),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d", "include": {"compare": "last_decade"}}"#,
                "include",
            ),
            (
                r#"{"site_id": "a.b", "metrics": ["visitors"], "date_range": "7d", "segments": []}"#,
                "body",
            ),
        ] {
            let e = plan(body.as_bytes()).unwrap_err().to_string();
            assert!(e.starts_with(field), "{body}: {e}");
        }
    }
}
