//! Plausible's Stats API (v1), answered from the same queries.
//!
//! Tools written for Plausible (dashboards such as Homepage's widget,
//! scripts, the Postman collection) call `GET /api/v1/stats/{aggregate,
//! timeseries,breakdown}?site_id=…` and `/api/v1/stats/realtime/visitors`
//! with a bearer token. The paths are Tallymark's own, so a request is read
//! as Plausible's when it has a `site_id` parameter: [`translate`] turns its
//! query into Tallymark's (`site_id` → `site`, `filters=a;b` → `filter=a&
//! filter=b`, `visit:source` → `source`, `event:goal` → `event:name`,
//! `period=custom&date=a,b` → `from`/`to`), the same handler computes the
//! answer, and [`reshape`] writes it in Plausible's JSON (`{"results":
//! {"visitors": {"value": 3}}}`, breakdown rows keyed by the property).
//!
//! Values are Plausible's where the two differ: a direct visit's source is
//! `Direct / None`, and browser, OS and device are their display names
//! (`Mobile`, `macOS`), which filters also accept.

use serde_json::{Map, Value};
use tallymark_core::useragent::names;

use super::error::StatsError;
use super::params::{NONE_LABEL, join_values, split_values};

/// Plausible's label for a visit without a source.
const DIRECT: &str = "Direct / None";

/// Which endpoint a Plausible query is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Aggregate,
    Timeseries,
    Breakdown,
    Realtime,
}

impl Endpoint {
    /// Plausible's parameters for it, besides `site_id`.
    fn params(self) -> &'static [&'static str] {
        match self {
            Endpoint::Aggregate => &["period", "date", "filters", "metrics", "compare"],
            Endpoint::Timeseries => &["period", "date", "filters", "metrics", "interval"],
            Endpoint::Breakdown => &[
                "period", "date", "filters", "metrics", "property", "limit", "page",
            ],
            Endpoint::Realtime => &[],
        }
    }
}

/// Whether `query` is Plausible's: it names the site with `site_id`.
pub fn wants(query: Option<&str>) -> bool {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).any(|(k, _)| k == "site_id")
}

/// How a translated answer is written back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Breakdown rows' key for the value: `source`, `page`, `goal`, a
    /// property's key, …
    pub key: String,
    /// The Tallymark dimension broken down by, for value names.
    pub dimension: String,
}

/// Plausible's query as Tallymark's query string, and how to write the
/// answer back.
pub fn translate(query: Option<&str>, endpoint: Endpoint) -> Result<(String, Shape), StatsError> {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    let mut shape = Shape {
        key: String::new(),
        dimension: String::new(),
    };
    let mut period = None;
    let mut date = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "site_id" => {
                out.append_pair("site", &value);
            }
            // Plausible's imported data: imported days (`tallymark import`)
            // are always counted here.
            "with_imported" => {}
            k if !endpoint.params().contains(&k) => {
                let takes = ["site_id"]
                    .iter()
                    .chain(endpoint.params())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(StatsError::bad(
                    "query",
                    format!(
                        "unknown parameter {:?} (Plausible's API here takes: {takes})",
                        k.chars().take(64).collect::<String>()
                    ),
                ));
            }
            "period" => period = Some(value.into_owned()),
            "date" => date = Some(value.into_owned()),
            "filters" => {
                for filter in value.split(';').filter(|f| !f.trim().is_empty()) {
                    out.append_pair("filter", &filter_of(filter)?);
                }
            }
            "property" => {
                let (dimension, key) =
                    dimension_of(&value).map_err(|e| StatsError::bad("property", e))?;
                out.append_pair("property", &dimension);
                shape = Shape { key, dimension };
            }
            "interval" => {
                out.append_pair("interval", if value == "date" { "day" } else { &value });
            }
            other => {
                // metrics, compare, limit, page: the same names and values.
                let name = Endpoint::Breakdown
                    .params()
                    .iter()
                    .chain(Endpoint::Aggregate.params())
                    .find(|p| **p == other)
                    .copied()
                    .unwrap_or("query");
                out.append_pair(name, &value);
            }
        }
    }
    // Plausible's aggregate defaults to visitors (Tallymark's to every metric).
    if endpoint == Endpoint::Aggregate
        && !url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .any(|(k, _)| k == "metrics")
    {
        out.append_pair("metrics", "visitors");
    }
    if !wants(query) {
        return Err(StatsError::bad(
            "site_id",
            "missing (example: site_id=example.com)",
        ));
    }
    match (period.as_deref(), date) {
        (Some("custom"), None) => {
            return Err(StatsError::bad(
                "date",
                "required with period=custom: two days joined by a comma (2024-01-01,2024-01-31)",
            ));
        }
        (Some("custom"), Some(range)) => {
            let (from, to) = range.split_once(',').ok_or_else(|| {
                StatsError::bad(
                    "date",
                    "with period=custom: two days joined by a comma (2024-01-01,2024-01-31)",
                )
            })?;
            out.append_pair("period", "custom");
            out.append_pair("from", from.trim());
            out.append_pair("to", to.trim());
        }
        (period, date) => {
            if let Some(period) = period {
                out.append_pair("period", period);
            }
            if let Some(date) = date {
                out.append_pair("date", &date);
            }
        }
    }
    Ok((out.finish(), shape))
}

/// A Plausible property as a Tallymark dimension, and the key its
/// breakdown rows carry the value under.
fn dimension_of(property: &str) -> Result<(String, String), String> {
    let unsupported = || {
        format!(
            "{:?} is not available here (Tallymark has: event:page, event:hostname, event:goal, event:name, event:props:<key>, visit:source, visit:referrer, visit:channel, visit:utm_source, visit:utm_medium, visit:utm_campaign, visit:utm_term, visit:utm_content, visit:entry_page, visit:exit_page, visit:country, visit:country_name, visit:region, visit:region_name, visit:city, visit:city_name, visit:browser, visit:browser_version, visit:os, visit:os_version, visit:device)",
            property.chars().take(64).collect::<String>()
        )
    };
    if let Some(key) = property.strip_prefix("event:props:") {
        return Ok((property.to_string(), key.to_string()));
    }
    let (dimension, key) = match property {
        "event:page" => ("page", "page"),
        "event:hostname" => ("hostname", "hostname"),
        "event:goal" => ("event:name", "goal"),
        "event:name" => ("event:name", "name"),
        _ => {
            let name = property.strip_prefix("visit:").ok_or_else(unsupported)?;
            match name {
                "source" | "referrer" | "channel" | "utm_source" | "utm_medium"
                | "utm_campaign" | "utm_term" | "utm_content" | "entry_page" | "exit_page"
                | "country" | "browser" | "browser_version" | "os" | "os_version" | "device" => {
                    (name, name)
                }
                // The country, named (`Germany`): the code's English name.
                "country_name" => ("country", name),
                // Regions and cities by English name (`Bavaria`, `Munich`),
                // also where Plausible has a code or a GeoNames id: a city
                // database's names are what Tallymark records.
                "region" | "region_name" => ("region_name", name),
                "city" | "city_name" => ("city_name", name),
                _ => return Err(unsupported()),
            }
        }
    };
    Ok((dimension.to_string(), key.to_string()))
}

/// One of Plausible's filters (`visit:source==Google`) as Tallymark's.
fn filter_of(filter: &str) -> Result<String, StatsError> {
    let bad = |message: String| StatsError::bad("filters", message);
    let shown = || filter.chars().take(100).collect::<String>();
    let (at, op) = ["==", "!=", "~"]
        .into_iter()
        .filter_map(|op| filter.find(op).map(|at| (at, op)))
        .min_by_key(|(at, _)| *at)
        .ok_or_else(|| {
            bad(format!(
                "{:?}: expected <property>==<value> or <property>!=<value>",
                shown()
            ))
        })?;
    let property = filter[..at].trim();
    // Wildcards (`/blog/*`, `/blog/**`: any run of characters) and `|`
    // read as Tallymark's own filters do.
    let values = split_values(&filter[at + op.len()..]);
    let (dimension, _) = dimension_of(property).map_err(bad)?;
    // Plausible's version is the number alone (`120`, `17.2`); Tallymark's
    // names the browser or OS too (`chrome 120`): any of them, that version.
    if let Some(parent) = version_parent(&dimension) {
        if let Some(v) = values.iter().find(|v| v.contains(' ')) {
            return Err(bad(format!(
                "{:?}: {v:?} is not a version: a {dimension} is the number alone (120, 17.2); \
                 filter on visit:{parent} for the name",
                shown()
            )));
        }
        // `~` (contains) looks at the version, not at the name before it.
        let (op, wrap) = if op == "~" { ("==", "*") } else { (op, "") };
        let any_name: Vec<String> = values
            .iter()
            .map(|v| {
                if v == NONE_LABEL {
                    v.clone()
                } else {
                    format!("* {wrap}{v}{wrap}")
                }
            })
            .collect();
        return Ok(format!(
            "{dimension}{op}{}",
            join_values(any_name.iter().map(String::as_str))
        ));
    }
    // Regions and cities are names here, not Plausible's ISO 3166-2 codes
    // or GeoNames ids: a code would silently match nothing.
    if let Some(place) = place_dimension(&dimension) {
        for v in &values {
            let code_like = v.bytes().all(|b| b.is_ascii_digit())
                || (v.len() <= 6
                    && v.as_bytes().get(2) == Some(&b'-')
                    && v.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'));
            if code_like {
                return Err(bad(format!(
                    "{:?}: {v:?} looks like a code: Tallymark records {place}s by English name (as its breakdowns show them: {})",
                    shown(),
                    if place == "region" {
                        "Bavaria, California"
                    } else {
                        "Munich, Portland"
                    }
                )));
            }
        }
    }
    // A country by its name: its code; a text (`~`) or a pattern (`United*`):
    // the codes whose names match.
    if property == "visit:country_name" {
        let mut codes = Vec::with_capacity(values.len());
        for v in &values {
            let found = if v == NONE_LABEL {
                vec![v.clone()]
            } else if op == "~" || v.contains('*') {
                countries_matching(v, op == "~")
            } else {
                country_of_name(v).into_iter().collect()
            };
            if found.is_empty() {
                return Err(bad(format!(
                    "{:?}: {v:?} is not a country name (English, as visit:country_name shows them: Germany, United States)",
                    shown()
                )));
            }
            codes.extend(found);
        }
        let op = if op == "~" { "==" } else { op };
        return Ok(format!(
            "country{op}{}",
            join_values(codes.iter().map(String::as_str))
        ));
    }
    // A goal "Visit /path" is a pageview goal: the page.
    if property == "event:goal" {
        let pages: Vec<&str> = values
            .iter()
            .filter_map(|v| v.strip_prefix("Visit "))
            .collect();
        if pages.len() == values.len() {
            return Ok(format!("page{op}{}", join_values(pages)));
        }
        if !pages.is_empty() {
            return Err(bad(format!(
                "{:?}: pageview goals (Visit /path) and custom event goals in one filter are not supported; ask once for each kind",
                shown()
            )));
        }
    }
    // `~` (contains) takes any text: `visit:browser~Chr`.
    if op == "~" {
        return Ok(format!(
            "{dimension}{op}{}",
            join_values(values.iter().map(String::as_str))
        ));
    }
    let mut stored = Vec::with_capacity(values.len());
    for value in &values {
        stored.push(stored_value(&dimension, value).ok_or_else(|| {
            bad(format!(
                "{:?}: {value:?} is not a {dimension} this collector records (it knows: {})",
                shown(),
                known(&dimension)
            ))
        })?);
    }
    Ok(format!(
        "{dimension}{op}{}",
        join_values(stored.iter().map(String::as_str))
    ))
}

/// `region` or `city`, when `dimension` is a name of one of them.
fn place_dimension(dimension: &str) -> Option<&'static str> {
    match dimension {
        "region_name" => Some("region"),
        "city_name" => Some("city"),
        _ => None,
    }
}

/// `browser` for `browser_version`, `os` for `os_version`: the dimension
/// whose name a version's value starts with (`chrome 120`).
fn version_parent(dimension: &str) -> Option<&'static str> {
    match dimension {
        "browser_version" => Some("browser"),
        "os_version" => Some("os"),
        _ => None,
    }
}

/// The display names a closed dimension takes, for messages.
fn known(dimension: &str) -> String {
    let titles: Vec<&str> = names(dimension)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, title)| title)
        .collect();
    titles.join(", ")
}

/// Plausible's own names for a few values, lower case: (dimension, name,
/// label).
const ALIASES: [(&str, &str, &str); 6] = [
    ("browser", "microsoft edge", "edge"),
    ("browser", "samsung browser", "samsung_internet"),
    ("browser", "yandex", "yandex"),
    ("os", "mac", "macos"),
    ("os", "gnu/linux", "linux"),
    ("os", "chrome os", "chromeos"),
];

/// Plausible's name for a value as Tallymark stores it: display names of
/// browsers, OSs and devices (any case, and Plausible's own names for a few),
/// `Direct / None`. `None` for a browser, OS or device this collector does
/// not know (a filter on it would silently match nothing).
pub(crate) fn stored_value(dimension: &str, value: &str) -> Option<String> {
    if dimension == "source" && value == DIRECT {
        return Some(NONE_LABEL.to_string());
    }
    let Some(names) = names(dimension) else {
        return Some(value.to_string());
    };
    let lower = value.to_ascii_lowercase();
    let alias = ALIASES
        .iter()
        .find(|(d, name, _)| *d == dimension && *name == lower)
        .map(|(_, _, label)| *label);
    let found = alias.or_else(|| {
        names
            .iter()
            .find(|(label, title)| {
                title.eq_ignore_ascii_case(value) || label.eq_ignore_ascii_case(value)
            })
            .map(|(label, _)| *label)
    });
    match found {
        Some(label) => Some(label.to_string()),
        // "(none)": not set, in every dimension.
        None if value == NONE_LABEL => Some(value.to_string()),
        None => None,
    }
}

/// Short English names where ISO 3166's is long or dated (`Korea
/// (Republic of)`, `Swaziland`): the names people and Plausible use.
const COUNTRY_NAMES: &[(&str, &str)] = &[
    ("BN", "Brunei"),
    ("BO", "Bolivia"),
    ("CD", "DR Congo"),
    ("FK", "Falkland Islands"),
    ("FM", "Micronesia"),
    ("GB", "United Kingdom"),
    ("IR", "Iran"),
    ("KP", "North Korea"),
    ("KR", "South Korea"),
    ("LA", "Laos"),
    ("MD", "Moldova"),
    ("MF", "Saint Martin"),
    ("MK", "North Macedonia"),
    ("PS", "Palestine"),
    ("RU", "Russia"),
    ("SX", "Sint Maarten"),
    ("SY", "Syria"),
    ("SZ", "Eswatini"),
    ("TR", "Türkiye"),
    ("TW", "Taiwan"),
    ("TZ", "Tanzania"),
    ("US", "United States"),
    ("VA", "Vatican City"),
    ("VE", "Venezuela"),
    ("VG", "British Virgin Islands"),
    ("VI", "U.S. Virgin Islands"),
    ("VN", "Vietnam"),
    // Not in ISO 3166, but in geolocation databases and Cloudflare's header.
    ("XK", "Kosovo"),
];

/// A country code's English name (`DE` → `Germany`); the code itself when
/// it names no country (`(none)`).
pub(crate) fn country_name(code: &str) -> String {
    if let Some((_, name)) = COUNTRY_NAMES.iter().find(|(c, _)| *c == code) {
        return (*name).to_string();
    }
    isocountry::CountryCode::for_alpha2(code)
        .map_or_else(|_| code.to_string(), |c| c.name().to_string())
}

/// The codes of the countries whose names contain `text` (`contains`) or
/// match the pattern `text` (`*`: any run of characters), in any case.
fn countries_matching(text: &str, contains: bool) -> Vec<String> {
    let text = text.to_lowercase();
    let pieces: Vec<&str> = text.split('*').collect();
    let matches = |name: &str| {
        let name = name.to_lowercase();
        if contains {
            return name.contains(&text);
        }
        // Each piece in order; the first at the start, the last at the end.
        let mut rest = name.as_str();
        for (i, piece) in pieces.iter().enumerate() {
            if i == 0 {
                let Some(r) = rest.strip_prefix(piece) else {
                    return false;
                };
                rest = r;
            } else if i == pieces.len() - 1 {
                return rest.ends_with(piece);
            } else {
                let Some(at) = rest.find(piece) else {
                    return false;
                };
                rest = &rest[at + piece.len()..];
            }
        }
        rest.is_empty()
    };
    let codes = isocountry::CountryCode::iter()
        .map(|c| c.alpha2())
        .chain(COUNTRY_NAMES.iter().map(|(code, _)| *code));
    let mut found: Vec<String> = codes
        .filter(|code| matches(&country_name(code)))
        .map(str::to_string)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The code of a country named `name` in any case: its short name above,
/// its ISO 3166 name, or the code itself.
fn country_of_name(name: &str) -> Option<String> {
    let name = name.trim();
    if let Some((code, _)) = COUNTRY_NAMES
        .iter()
        .find(|(_, n)| n.to_lowercase() == name.to_lowercase())
    {
        return Some((*code).to_string());
    }
    isocountry::CountryCode::iter()
        .find(|c| c.name().to_lowercase() == name.to_lowercase())
        .map(|c| c.alpha2().to_string())
        // Any two-letter code, as stored (also those ISO lacks).
        .or_else(|| crate::geo::country_code(name))
}

/// How Plausible shows a stored value.
fn shown_value(dimension: &str, value: &str) -> String {
    if dimension == "source" && value == NONE_LABEL {
        return DIRECT.to_string();
    }
    names(dimension)
        .and_then(|names| names.into_iter().find(|(label, _)| *label == value))
        .map_or_else(|| value.to_string(), |(_, title)| title.to_string())
}

/// The change against the previous period as Plausible states it: the
/// bounce rate's difference in points, any other metric's percent change as
/// a whole number (100 from nothing, 0 from nothing to nothing); `null` for
/// revenue, which is per currency.
pub(crate) fn change(metric: &str, now: &Value, before: Option<&Value>) -> Value {
    let (Some(now), Some(before)) = (now.as_f64(), before.and_then(Value::as_f64)) else {
        return Value::Null;
    };
    // Rates change in points (Plausible's bounce and conversion rates).
    if metric == "bounce_rate" || metric == "conversion_rate" {
        return Value::from(((now - before) * 10.0).round() / 10.0);
    }
    if before == 0.0 {
        return Value::from(if now > 0.0 { 100 } else { 0 });
    }
    Value::from(((now - before) / before * 100.0).round() as i64)
}

/// Tallymark's answer (as JSON) in Plausible's shape.
pub fn reshape(endpoint: Endpoint, answer: Value, shape: &Shape) -> Value {
    let results = answer.get("results").cloned().unwrap_or(Value::Null);
    match endpoint {
        // {"results": {"visitors": {"value": 3, "change": 50.0}}}
        Endpoint::Aggregate => {
            let previous = answer.pointer("/comparison/results");
            let mut out = Map::new();
            if let Value::Object(metrics) = results {
                for (metric, value) in metrics {
                    let mut entry = Map::new();
                    if let Some(previous) = previous {
                        let change = change(&metric, &value, previous.get(&metric));
                        entry.insert("change".into(), change);
                    }
                    entry.insert("value".into(), value);
                    out.insert(metric, Value::Object(entry));
                }
            }
            serde_json::json!({ "results": out })
        }
        // Hour and minute buckets as "2024-01-01 13:00:00", days as they are.
        Endpoint::Timeseries => {
            let rows = match results {
                Value::Array(rows) => rows
                    .into_iter()
                    .map(|mut row| {
                        if let Some(Value::String(date)) = row.get_mut("date")
                            && date.len() > 10
                        {
                            *date = date
                                .chars()
                                .take(19)
                                .collect::<String>()
                                .replacen('T', " ", 1);
                        }
                        row
                    })
                    .collect(),
                _ => Vec::new(),
            };
            serde_json::json!({ "results": rows })
        }
        // [{"source": "Google", "visitors": 3}]
        Endpoint::Breakdown => {
            let rows = match results {
                Value::Array(rows) => rows
                    .into_iter()
                    .map(|row| {
                        let mut out = Map::new();
                        if let Value::Object(fields) = row {
                            for (k, v) in fields {
                                if k == "value"
                                    && let Some(parent) = version_parent(&shape.dimension)
                                {
                                    // `chrome 120`, `ios 17.2`: Plausible's
                                    // browser (or OS) and version keys.
                                    let text = v.as_str().unwrap_or_default();
                                    let (name, version) =
                                        text.rsplit_once(' ').unwrap_or((text, text));
                                    out.insert(
                                        parent.into(),
                                        Value::String(shown_value(parent, name)),
                                    );
                                    out.insert(
                                        shape.key.clone(),
                                        Value::String(version.to_string()),
                                    );
                                } else if k == "value" && shape.key == "country_name" {
                                    let code = v.as_str().unwrap_or_default();
                                    out.insert(
                                        shape.key.clone(),
                                        Value::String(country_name(code)),
                                    );
                                } else if k == "value" {
                                    let text = v.as_str().unwrap_or_default();
                                    out.insert(
                                        shape.key.clone(),
                                        Value::String(shown_value(&shape.dimension, text)),
                                    );
                                } else {
                                    out.insert(k, v);
                                }
                            }
                        }
                        Value::Object(out)
                    })
                    .collect(),
                _ => Vec::new(),
            };
            serde_json::json!({ "results": rows })
        }
        // A bare number.
        Endpoint::Realtime => answer.get("visitors").cloned().unwrap_or(Value::from(0)),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A query string's pairs, decoded.
    pub(in crate::stats) fn pairs(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn countries_are_named_as_people_name_them() {
        for (code, name) in [
            ("DE", "Germany"),
            ("US", "United States"),
            ("KR", "South Korea"),
            ("GB", "United Kingdom"),
            ("CZ", "Czechia"),
            ("(none)", "(none)"),
        ] {
            assert_eq!(country_name(code), name);
            if code != "(none)" {
                assert_eq!(country_of_name(name).as_deref(), Some(code));
                assert_eq!(country_of_name(&name.to_uppercase()).as_deref(), Some(code));
            }
        }
        // ISO's own names and codes are understood too.
        assert_eq!(
            country_of_name("Korea (Republic of)").as_deref(),
            Some("KR")
        );
        assert_eq!(country_of_name("fr").as_deref(), Some("FR"));
        assert_eq!(country_of_name("Atlantis"), None);
        assert_eq!(country_name("XK"), "Kosovo");
        assert_eq!(country_of_name("xk").as_deref(), Some("XK"));
        assert_eq!(countries_matching("korea", true), ["KP", "KR"]);
        assert!(countries_matching("*land", false).contains(&"FI".to_string()));
        assert!(countries_matching("united*", false).contains(&"US".to_string()));
        assert!(!countries_matching("united", false).contains(&"US".to_string()));
        // Every code has a name of its own.
        let mut names = std::collections::HashSet::new();
        for c in isocountry::CountryCode::iter() {
            assert!(names.insert(country_name(c.alpha2())), "{}", c.alpha2());
        }
    }

    #[test]
    fn queries_translate_to_tallymarks() {
        let (q, shape) = translate(
            Some("site_id=example.com&period=custom&date=2024-01-01,2024-01-31&property=visit:source&filters=event:page%3D%3D/blog;visit:device%3D%3DMobile;visit:source%3D%3DDirect%20/%20None&metrics=visitors,bounce_rate&limit=5"),
            Endpoint::Breakdown,
        )
        .unwrap();
        assert_eq!(
            pairs(&q),
            [
                ("site", "example.com"),
                ("property", "source"),
                ("filter", "page==/blog"),
                ("filter", "device==mobile"),
                ("filter", "source==(none)"),
                ("metrics", "visitors,bounce_rate"),
                ("limit", "5"),
                ("period", "custom"),
                ("from", "2024-01-01"),
                ("to", "2024-01-31"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(shape.key, "source");
        let (q, shape) = translate(Some("site_id=a.example&period=6mo&property=event:goal&filters=event:goal%3D%3DVisit%20/pricing"), Endpoint::Breakdown).unwrap();
        assert_eq!(
            q,
            "site=a.example&property=event%3Aname&filter=page%3D%3D%2Fpricing&period=6mo"
        );
        assert_eq!(
            (shape.key.as_str(), shape.dimension.as_str()),
            ("goal", "event:name")
        );
        // Several values: any of them, each read as Plausible names it; a
        // `\|` inside one stays a `|`.
        let (q, _) = translate(
            Some("site_id=a.example&filters=visit:browser%3D%3DMicrosoft%20Edge|firefox;event:goal%3D%3DVisit%20/a|Visit%20/b;event:page!%3D/x%5C|y|/z"),
            Endpoint::Aggregate,
        )
        .unwrap();
        assert_eq!(
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == "filter")
                .map(|(_, v)| v.into_owned())
                .collect::<Vec<_>>(),
            ["browser==edge|firefox", "page==/a|/b", "page!=/x\\|y|/z"]
        );
        let (q, _) = translate(
            Some("site_id=a.example&interval=date&period=30d"),
            Endpoint::Timeseries,
        )
        .unwrap();
        assert_eq!(q, "site=a.example&interval=day&period=30d");
        let (q, _) = translate(
            Some("site_id=a.example&with_imported=true&period=7d"),
            Endpoint::Aggregate,
        )
        .unwrap();
        assert_eq!(
            q, "site=a.example&metrics=visitors&period=7d",
            "no imported data: ignored"
        );
        let (q, _) = translate(
            Some("site_id=a&filters=visit:browser~Chr"),
            Endpoint::Aggregate,
        )
        .unwrap();
        assert_eq!(
            pairs(&q)[1],
            ("filter".to_string(), "browser~Chr".to_string()),
            "contains takes any text"
        );
        // Plausible's names for some browsers and OSs, and "(none)".
        let (q, _) = translate(
            Some("site_id=a&filters=visit:browser%3D%3DMicrosoft%20Edge;visit:os%3D%3Dmac;visit:os!%3D(none)"),
            Endpoint::Aggregate,
        )
        .unwrap();
        assert_eq!(
            pairs(&q)[1..4],
            [
                ("filter", "browser==edge"),
                ("filter", "os==macos"),
                ("filter", "os!=(none)")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn plausibles_names_are_labels_this_collector_has() {
        for (dimension, _, label) in ALIASES {
            let names = names(dimension).unwrap_or_default();
            assert!(
                names.iter().any(|(l, _)| *l == label),
                "{dimension} {label}"
            );
        }
    }

    #[test]
    fn what_is_not_supported_is_a_400_naming_it() {
        let cases = [
            (
                "site_id=a&filters=event:goal%3D%3DSignup|Visit%20/x",
                Endpoint::Aggregate,
                "filters: \"event:goal==Signup|Visit /x\": pageview goals (Visit /path) and custom event goals in one filter are not supported",
            ),
            (
                "site_id=a&filters=visit:browser%3D%3DChrome|Netscape",
                Endpoint::Aggregate,
                "filters: \"visit:browser==Chrome|Netscape\": \"Netscape\" is not a browser",
            ),
            (
                "site_id=a&property=visit:city_geoname_id",
                Endpoint::Breakdown,
                "property: \"visit:city_geoname_id\" is not available here",
            ),
            (
                "site_id=a&filters=visit:city%3D%3D2950159",
                Endpoint::Aggregate,
                "filters: \"visit:city==2950159\": \"2950159\" looks like a code",
            ),
            (
                "site_id=a&filters=visit:region%3D%3DDE-BY",
                Endpoint::Aggregate,
                "filters: \"visit:region==DE-BY\": \"DE-BY\" looks like a code",
            ),
            (
                "site_id=a&filters=visit:browser%3D%3DNetscape",
                Endpoint::Aggregate,
                "filters: \"visit:browser==Netscape\": \"Netscape\" is not a browser this collector records (it knows: Chrome, Firefox",
            ),
            (
                "site_id=a&period=custom",
                Endpoint::Aggregate,
                "date: required with period=custom",
            ),
            ("", Endpoint::Realtime, "site_id: missing"),
            (
                "site_id=a&period=custom&date=2024-01-01",
                Endpoint::Aggregate,
                "date: with period=custom",
            ),
            (
                "site_id=a&sort=visitors",
                Endpoint::Aggregate,
                "query: unknown parameter \"sort\"",
            ),
            (
                "site_id=a&filters=visit:source",
                Endpoint::Aggregate,
                "filters: \"visit:source\": expected",
            ),
        ];
        for (query, endpoint, want) in cases {
            let error = translate(Some(query), endpoint).unwrap_err().to_string();
            assert!(error.starts_with(want), "{query}: {error}");
        }
    }

    #[test]
    fn answers_take_plausibles_shape() {
        let aggregate = serde_json::json!({
            "site": "a", "period": {},
            "results": {"visitors": 3, "bounce_rate": 50.0},
            "comparison": {"period": {}, "results": {"visitors": 2, "bounce_rate": 0.0}, "change": {"visitors": 50.0, "bounce_rate": null}},
        });
        let shape = Shape {
            key: String::new(),
            dimension: String::new(),
        };
        assert_eq!(
            reshape(Endpoint::Aggregate, aggregate, &shape),
            serde_json::json!({"results": {"visitors": {"value": 3, "change": 50}, "bounce_rate": {"value": 50.0, "change": 50.0}}})
        );
        let breakdown = serde_json::json!({"results": [{"value": "(none)", "visitors": 2}, {"value": "Google", "visitors": 1}]});
        let shape = Shape {
            key: "source".into(),
            dimension: "source".into(),
        };
        assert_eq!(
            reshape(Endpoint::Breakdown, breakdown, &shape),
            serde_json::json!({"results": [{"source": "Direct / None", "visitors": 2}, {"source": "Google", "visitors": 1}]})
        );
        let devices = serde_json::json!({"results": [{"value": "mobile", "visitors": 2}]});
        let shape = Shape {
            key: "device".into(),
            dimension: "device".into(),
        };
        assert_eq!(
            reshape(Endpoint::Breakdown, devices, &shape),
            serde_json::json!({"results": [{"device": "Mobile", "visitors": 2}]})
        );
        let hours = serde_json::json!({"results": [{"date": "2026-03-29T03:00:00+02:00", "visitors": 1}, {"date": "2026-03-29", "visitors": 2}]});
        assert_eq!(
            reshape(Endpoint::Timeseries, hours, &shape),
            serde_json::json!({"results": [{"date": "2026-03-29 03:00:00", "visitors": 1}, {"date": "2026-03-29", "visitors": 2}]})
        );
        assert_eq!(
            reshape(
                Endpoint::Realtime,
                serde_json::json!({"site": "a", "visitors": 4}),
                &shape
            ),
            serde_json::json!(4)
        );
    }
}
