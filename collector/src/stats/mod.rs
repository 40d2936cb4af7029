//! The stats API: `GET /api/v1/stats/{aggregate,timeseries,breakdown,realtime}`,
//! `GET /api/v1/sites` and the OpenAPI document at `/api/v1/openapi.json`.
//!
//! - [`auth`]: bearer tokens (admin, or share tokens for one site);
//! - [`params`]: the query string as typed values, or a `400` naming the parameter;
//! - [`query`]: SQL with bound parameters only;
//! - this module: thin handlers, response shapes and the OpenAPI document.
//!
//! Handlers run on the blocking pool with their own read-only connection, so
//! no request holds the writer's connection or a write lock.
//!
//! Definitions (also in the OpenAPI descriptions and `docs/stats-api.md`):
//! `visitors` are **daily unique visitors**: visitor ids are salted per
//! site-local day, so over a multi-day range the count is the number of
//! distinct daily ids (a person coming on three days counts three times).

pub mod auth;
pub mod error;
pub mod export;
pub mod funnel;
pub mod params;
pub mod plausible;
pub mod plausible_v2;
pub mod query;
pub mod rollup;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{RawQuery as RawQueryString, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jiff::Timestamp;
use rusqlite::Connection;
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::AppState;
use crate::clickhouse::query::{self as ch_query, Grid};
use crate::sites::Site;
use error::StatsError;
use params::{Metric, Range, RawQuery, SortKey};
use query::{CurrencySum, Scoped, Totals};

/// Parameters every period-based endpoint takes.
pub const COMMON_PARAMS: &[&str] = &["site", "period", "date", "from", "to", "filter", "metrics"];
pub const AGGREGATE_PARAMS: &[&str] = &[
    "site", "period", "date", "from", "to", "filter", "metrics", "compare",
];
pub const TIMESERIES_PARAMS: &[&str] = &[
    "site", "period", "date", "from", "to", "filter", "metrics", "interval",
];
pub const BREAKDOWN_PARAMS: &[&str] = &[
    "site", "period", "date", "from", "to", "filter", "metrics", "property", "limit", "page",
    "sort",
];
pub const REALTIME_PARAMS: &[&str] = &["site", "filter"];
pub const SITES_PARAMS: &[&str] = &[];

/// The stats routes (merged into [`crate::app`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/stats/aggregate", get(aggregate))
        .route("/api/v1/stats/timeseries", get(timeseries))
        .route("/api/v1/stats/breakdown", get(breakdown))
        .route("/api/v1/stats/realtime", get(realtime))
        .route("/api/v1/stats/funnel", get(funnel::funnel))
        .route("/api/v1/export", get(export::export))
        .route("/api/v1/stats/realtime/visitors", get(plausible_realtime))
        .route("/api/v2/query", axum::routing::post(plausible_v2_query))
        .route("/api/v1/sites", get(sites))
        .route("/api/v1/openapi.json", get(openapi_json))
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// What a handler's computation gets: an authorised site and its query.
struct Ctx {
    conn: Connection,
    site: Arc<Site>,
    raw: RawQuery,
    now: Timestamp,
    rollups: bool,
    live: Arc<rollup::Live>,
    timeout_ms: i64,
    /// With `--clickhouse`, once it has caught up: where raw-row counts
    /// are read.
    clickhouse: Option<Arc<crate::clickhouse::ship::Shipper>>,
}

impl Ctx {
    /// `ask`'s answer from ClickHouse, or `None` without one (then SQLite's
    /// raw rows answer, as they would had it never been configured): not
    /// configured, not caught up, or failing now (logged).
    fn on_clickhouse<T>(
        &self,
        ask: impl FnOnce(
            &crate::clickhouse::ClickHouse,
        ) -> Result<T, crate::clickhouse::ClickHouseError>,
    ) -> Option<T> {
        let shipper = self.clickhouse.as_ref()?;
        let answer = ask(&shipper.ch);
        shipper.count_query(answer.is_ok());
        match answer {
            Ok(answer) => Some(answer),
            Err(e) => {
                tracing::warn!(error = %e, "stats query in clickhouse failed; answering from sqlite");
                None
            }
        }
    }

    fn at(&self) -> rollup::At<'_> {
        rollup::At {
            conn: &self.conn,
            site: &self.site,
            live: &self.live,
            now_ms: self.now.as_millisecond(),
            timeout_ms: self.timeout_ms,
        }
    }
}

/// Authenticates, parses the query, resolves and authorises the site, then
/// runs `compute` on the blocking pool.
async fn serve<T: Send + 'static>(
    state: AppState,
    headers: HeaderMap,
    query: Option<String>,
    allowed: &'static [&'static str],
    compute: fn(Ctx) -> Result<T, StatsError>,
) -> Result<Json<T>, StatsError> {
    on_blocking_pool(move || compute(context(&state, &headers, query, allowed)?.0)).await
}

/// Authenticates, parses the query, resolves and authorises the site (on a
/// blocking thread: it reads SQLite).
fn context(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<String>,
    allowed: &'static [&'static str],
) -> Result<(Ctx, auth::Grant), StatsError> {
    let conn = state.store.reader()?;
    let grant = auth::authenticate(&conn, headers)?;
    let raw = RawQuery::parse(query.as_deref(), allowed)?;
    let domain = raw.site()?;
    let site = match state.sites.get(domain) {
        Some(site) => site,
        // A share token learns nothing about other sites.
        None if grant != auth::Grant::Admin => return Err(StatsError::Forbidden),
        None => {
            return Err(StatsError::bad(
                "site",
                format!(
                    "unknown site {:?}",
                    domain.chars().take(100).collect::<String>()
                ),
            ));
        }
    };
    grant.allows(site.id)?;
    let cx = Ctx {
        conn,
        site,
        raw,
        now: state.clock.now(),
        rollups: state.config.rollups,
        live: state.live.clone(),
        timeout_ms: state.config.session_timeout.as_millis() as i64,
        // Only once it holds what SQLite holds: while it catches up
        // (a backfill) or is away, SQLite's raw rows answer.
        clickhouse: state.analytics.as_ref().filter(|a| a.ready()).cloned(),
    };
    Ok((cx, grant))
}

/// Runs `work` (SQLite reads) on the blocking pool; a task that panicked is
/// a storage error, logged.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StatsError> + Send + 'static,
) -> Result<Json<T>, StatsError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map(Json),
        Err(e) => {
            tracing::error!(error = %e, "stats task failed");
            Err(StatsError::Storage)
        }
    }
}

/// Aggregate metrics over a period, optionally against the previous period.
#[utoipa::path(
    get,
    path = "/api/v1/stats/aggregate",
    params(CommonParams, MetricsParams, AggregateParams),
    responses(
        (status = 200, description = "The metrics over the period", body = AggregateResponse),
        (status = 400, description = "A bad parameter (the message names it) or an unknown site", body = ErrorBody),
        (status = 401, description = "Missing or unknown bearer token", body = ErrorBody),
        (status = 403, description = "A share token for another site", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn aggregate(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQueryString(query): RawQueryString,
) -> Result<Response, StatsError> {
    let endpoint = plausible::Endpoint::Aggregate;
    answer(
        state,
        headers,
        query,
        AGGREGATE_PARAMS,
        compute_aggregate,
        endpoint,
    )
    .await
}

/// Metrics per hour, day, week or month bucket, every bucket present.
#[utoipa::path(
    get,
    path = "/api/v1/stats/timeseries",
    params(CommonParams, MetricsParams, TimeseriesParams),
    responses(
        (status = 200, description = "One row per bucket, empty buckets included", body = TimeseriesResponse),
        (status = 400, description = "A bad parameter (the message names it) or an unknown site", body = ErrorBody),
        (status = 401, description = "Missing or unknown bearer token", body = ErrorBody),
        (status = 403, description = "A share token for another site", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn timeseries(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQueryString(query): RawQueryString,
) -> Result<Response, StatsError> {
    let endpoint = plausible::Endpoint::Timeseries;
    answer(
        state,
        headers,
        query,
        TIMESERIES_PARAMS,
        compute_timeseries,
        endpoint,
    )
    .await
}

/// Metrics per value of one dimension, sorted and paginated.
#[utoipa::path(
    get,
    path = "/api/v1/stats/breakdown",
    params(CommonParams, MetricsParams, BreakdownParams),
    responses(
        (status = 200, description = "One row per value of the property", body = BreakdownResponse),
        (status = 400, description = "A bad parameter (the message names it) or an unknown site", body = ErrorBody),
        (status = 401, description = "Missing or unknown bearer token", body = ErrorBody),
        (status = 403, description = "A share token for another site", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn breakdown(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQueryString(query): RawQueryString,
) -> Result<Response, StatsError> {
    let endpoint = plausible::Endpoint::Breakdown;
    answer(
        state,
        headers,
        query,
        BREAKDOWN_PARAMS,
        compute_breakdown,
        endpoint,
    )
    .await
}

/// Daily unique visitors with an event in the last 5 minutes.
#[utoipa::path(
    get,
    path = "/api/v1/stats/realtime",
    params(RealtimeParams),
    responses(
        (status = 200, description = "Visitors in the last 5 minutes", body = RealtimeResponse),
        (status = 400, description = "A bad parameter (the message names it) or an unknown site", body = ErrorBody),
        (status = 401, description = "Missing or unknown bearer token", body = ErrorBody),
        (status = 403, description = "A share token for another site", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn realtime(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQueryString(query): RawQueryString,
) -> Result<Json<RealtimeResponse>, StatsError> {
    serve(state, headers, query, REALTIME_PARAMS, compute_realtime).await
}

/// Plausible's `GET /api/v1/stats/realtime/visitors?site_id=…`: the same
/// count as `/api/v1/stats/realtime`, as a bare number.
async fn plausible_realtime(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQueryString(query): RawQueryString,
) -> Result<Response, StatsError> {
    let endpoint = plausible::Endpoint::Realtime;
    answer(
        state,
        headers,
        query,
        REALTIME_PARAMS,
        compute_realtime,
        endpoint,
    )
    .await
}

/// Plausible's Stats API v2, `POST /api/v2/query`: the JSON query planned
/// as a v1 one (see [`plausible_v2`]), answered by the same computations, in
/// v2's shape. A breakdown is read in pages of the v1 limit.
async fn plausible_v2_query(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, StatsError> {
    // Who asks comes first: without a valid token, a 401 whatever the body.
    let (st, hd) = (state.clone(), headers.clone());
    let Json(()) = on_blocking_pool(move || {
        let conn = st.store.reader()?;
        auth::authenticate(&conn, &hd).map(|_| ())
    })
    .await?;
    let mut plan = plausible_v2::plan(&body)?;
    // `28d`, `91d`, `all`: ending today in the site's timezone; `all` from
    // the day of the site's first event.
    let site = state.sites.get(&plan.site);
    let tz = site
        .as_ref()
        .map_or(jiff::tz::TimeZone::UTC, |s| s.tz.clone());
    let first = match site.as_ref().filter(|_| plan.all_time) {
        Some(site) => {
            let (st, site) = (state.clone(), site.clone());
            let Json(first) = on_blocking_pool(move || {
                let conn = st.store.reader()?;
                Ok(rollup::first_day(&conn, &site)?)
            })
            .await?;
            first
        }
        None => None,
    };
    let today = state.clock.now().to_zoned_datetime(tz).date();
    let v1 = plan.complete(today, first);
    let main = v2_run(&state, &headers, &plan, &v1, plan.pages, plan.page_rows).await?;
    // `include.compare`: the same query over the days compared with. A
    // breakdown's rows are matched by value: the comparison keeps the values
    // read (as Plausible does), else it reads every row.
    let mut comparison = None;
    if let Some(with) = plan.compare {
        let day = |key: &str| {
            main.period
                .get(key)
                .and_then(serde_json::Value::as_str)
                .and_then(|d| d.parse::<jiff::civil::Date>().ok())
        };
        if let (Some(from), Some(to)) = (day("from"), day("to"))
            && let Some((a, b)) = with.days(from, to, today)
        {
            let values: Vec<String> = main
                .pages
                .iter()
                .filter_map(|p| p["results"].as_array())
                .flatten()
                .filter_map(|r| r.get(&main.key)?.as_str().map(str::to_string))
                .collect();
            // Goals mix pages and events, which one v1 filter cannot.
            let narrow = plan.endpoint == plausible::Endpoint::Breakdown
                && plan.dimension.as_deref() != Some("event:goal")
                && (1..=1_000).contains(&values.len())
                && values.iter().all(|v| !v.contains(';'));
            let mut filters: Vec<String> = url::form_urlencoded::parse(v1.as_bytes())
                .filter(|(k, _)| k == "filters")
                .map(|(_, v)| v.into_owned())
                .collect();
            if narrow && let Some(property) = &plan.dimension {
                let escaped: Vec<String> = values.iter().map(|v| v.replace('*', "\\*")).collect();
                filters.push(format!(
                    "{property}=={}",
                    params::join_values(escaped.iter().map(String::as_str))
                ));
            }
            // Built apart: the serializer must not live across an await.
            let v1c = {
                let mut v1c = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in url::form_urlencoded::parse(v1.as_bytes()) {
                    if !matches!(&*k, "period" | "date" | "limit" | "filters") {
                        v1c.append_pair(&k, &v);
                    }
                }
                if !filters.is_empty() {
                    v1c.append_pair("filters", &filters.join(";"));
                }
                v1c.append_pair("period", "custom");
                v1c.append_pair("date", &format!("{a},{b}"));
                if plan.endpoint == plausible::Endpoint::Breakdown {
                    v1c.append_pair("limit", &plausible_v2::PAGE_ROWS.to_string());
                }
                v1c.finish()
            };
            let all = plausible_v2::MAX_ROWS / plausible_v2::PAGE_ROWS;
            let before =
                v2_run(&state, &headers, &plan, &v1c, all, plausible_v2::PAGE_ROWS).await?;
            comparison = Some((before.pages, before.visitors));
        }
    }
    Ok(Json(plausible_v2::answer(
        &plan,
        main.pages,
        &main.key,
        &main.period,
        main.total,
        main.visitors,
        comparison,
    ))
    .into_response())
}

/// What a v2 query's v1 form answered: v1's pages reshaped, its period, a
/// breakdown's count of rows, the visitors for `percentage`, and the rows'
/// key for the value.
struct V2Run {
    pages: Vec<serde_json::Value>,
    period: serde_json::Value,
    total: Option<usize>,
    visitors: Option<f64>,
    key: String,
}

/// Answers `v1` (the plan's query, or its comparison) by the native
/// computations: up to `max_pages` pages of `page_rows` for a breakdown.
async fn v2_run(
    state: &AppState,
    headers: &HeaderMap,
    plan: &plausible_v2::Plan,
    v1: &str,
    max_pages: usize,
    page_rows: usize,
) -> Result<V2Run, StatsError> {
    let (translated, shape) = plausible::translate(Some(v1), plan.endpoint)?;
    let translated = match &plan.sort {
        Some(sort) => format!(
            "{translated}&{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("sort", sort)
                .finish()
        ),
        None => translated,
    };
    fn native<T: Serialize>(answer: T) -> serde_json::Value {
        // Plain structs: serializing cannot fail (else an empty answer).
        serde_json::to_value(answer).unwrap_or_default()
    }
    let (mut pages, mut period, mut total) = (Vec::new(), serde_json::Value::Null, None);
    let mut take = |value: serde_json::Value| {
        period = value.get("period").cloned().unwrap_or_default();
        // A breakdown's count of rows, before its pages.
        if let Some(n) = value.get("total").and_then(serde_json::Value::as_u64) {
            total = Some(n as usize);
        }
        let page = plausible::reshape(plan.endpoint, value, &shape);
        let rows = page["results"].as_array().map_or(0, Vec::len);
        pages.push(page);
        rows
    };
    match plan.endpoint {
        plausible::Endpoint::Timeseries => {
            let Json(a) = serve(
                state.clone(),
                headers.clone(),
                Some(translated),
                TIMESERIES_PARAMS,
                compute_timeseries,
            )
            .await?;
            take(native(a));
        }
        plausible::Endpoint::Breakdown => {
            for page in 1..=max_pages {
                let Json(a) = serve(
                    state.clone(),
                    headers.clone(),
                    Some(format!("{translated}&page={page}")),
                    BREAKDOWN_PARAMS,
                    compute_breakdown,
                )
                .await?;
                if take(native(a)) < page_rows {
                    break;
                }
            }
        }
        _ => {
            let Json(a) = serve(
                state.clone(),
                headers.clone(),
                Some(translated),
                AGGREGATE_PARAMS,
                compute_aggregate,
            )
            .await?;
            take(native(a));
        }
    }
    // `percentage`: each row's share of the visitors the filters keep.
    let mut visitors = None;
    if plan.percentage {
        let whole: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                url::form_urlencoded::parse(v1.as_bytes())
                    .filter(|(k, _)| !matches!(&**k, "property" | "limit" | "metrics"))
                    .chain([("metrics".into(), "visitors".into())]),
            )
            .finish();
        let (whole, _) = plausible::translate(Some(&whole), plausible::Endpoint::Aggregate)?;
        let Json(a) = serve(
            state.clone(),
            headers.clone(),
            Some(whole),
            AGGREGATE_PARAMS,
            compute_aggregate,
        )
        .await?;
        visitors = native(a)["results"]["visitors"].as_f64();
    }
    Ok(V2Run {
        pages,
        period,
        total,
        visitors,
        key: shape.key,
    })
}

/// [`serve`], or for a query in Plausible's form (it has `site_id`; always
/// for Plausible's realtime path) the same computation asked and answered
/// in Plausible's terms (see [`plausible`]).
async fn answer<T: Serialize + Send + 'static>(
    state: AppState,
    headers: HeaderMap,
    query: Option<String>,
    allowed: &'static [&'static str],
    compute: fn(Ctx) -> Result<T, StatsError>,
    endpoint: plausible::Endpoint,
) -> Result<Response, StatsError> {
    if endpoint != plausible::Endpoint::Realtime && !plausible::wants(query.as_deref()) {
        return Ok(serve(state, headers, query, allowed, compute)
            .await?
            .into_response());
    }
    let (translated, shape) = plausible::translate(query.as_deref(), endpoint)?;
    let Json(answer) = serve(state, headers, Some(translated), allowed, compute).await?;
    // Serializing these plain structs cannot fail; if it ever did, the
    // answer would be empty rather than wrong.
    let value = serde_json::to_value(answer).unwrap_or_default();
    Ok(Json(plausible::reshape(endpoint, value, &shape)).into_response())
}

/// The sites a token reads, with their volume check.
#[utoipa::path(
    get,
    path = "/api/v1/sites",
    responses(
        (status = 200, description = "The sites this token reads, by domain", body = SitesResponse),
        (status = 400, description = "A query parameter (this endpoint takes none)", body = ErrorBody),
        (status = 401, description = "Missing or unknown bearer token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn sites(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQueryString(query): RawQueryString,
) -> Result<Json<SitesResponse>, StatsError> {
    on_blocking_pool(move || {
        let conn = state.store.reader()?;
        let grant = auth::authenticate(&conn, &headers)?;
        RawQuery::parse(query.as_deref(), SITES_PARAMS)?;
        let now_ms = state.clock.now_ms();
        let mut sites = Vec::new();
        for site in state.sites.all() {
            if grant.allows(site.id).is_err() {
                continue;
            }
            let v = crate::volume::check(
                &conn,
                &site,
                now_ms,
                state.config.volume_drop_percent,
                state.config.retention_days,
            )?;
            let kept_from = jiff::Timestamp::from_millisecond(now_ms)
                .ok()
                .and_then(|now| {
                    crate::retention::site_horizon(&site, now, state.config.retention_days)
                })
                .map(|h| h.day.to_string());
            let imported = rollup::imported_days(&conn, &site)?.map(|(from, to)| ImportedInfo {
                from: from.to_string(),
                to: to.to_string(),
            });
            sites.push(SiteInfo {
                domain: site.domain.clone(),
                timezone: site.timezone.clone(),
                kept_from,
                imported,
                volume: VolumeInfo {
                    last_24h: v.last_24h,
                    previous_24h: v.previous_24h,
                    dropped_percent: v.dropped_percent.map(|p| round(p, 1)),
                },
            });
        }
        sites.sort_by(|a, b| a.domain.cmp(&b.domain));
        Ok(SitesResponse { sites })
    })
    .await
}

fn scoped<'a>(site: &Site, range: &Range, filters: &'a [params::Filter]) -> Scoped<'a> {
    Scoped {
        site_id: site.id,
        start_ms: range.start_ms(),
        end_ms: range.end_ms(),
        filters,
    }
}

fn whole(range: &Range) -> params::Bucket {
    params::Bucket {
        label: String::new(),
        start_ms: range.start_ms(),
        end_ms: range.end_ms(),
    }
}

/// What the metrics of one bucket (or breakdown row) are derived from.
#[derive(Debug, Clone, Default)]
struct Figures {
    totals: Totals,
    /// Empty unless revenue was requested.
    revenue: Vec<CurrencySum>,
    /// A page's engagement, when asked for and it has any.
    engagement: Option<query::Engagement>,
    /// With a conversion rate asked for: the visitors counted without the
    /// goal's filters, which it divides by.
    base_visitors: Option<i64>,
}

fn no_goal() -> StatsError {
    StatsError::bad(
        "metrics",
        "conversion_rate needs a goal: a filter on event:name (filter=event:name==Signup) \
         or page (filter=page==/pricing), or a breakdown by either",
    )
}

/// The figures of one bucket: the whole range.
fn totals(
    cx: &Ctx,
    range: &Range,
    filters: &[params::Filter],
    metrics: &[Metric],
) -> Result<Figures, StatsError> {
    let q = scoped(&cx.site, range, filters);
    let rows = by_bucket(cx, &q, &[whole(range)], metrics)?;
    Ok(rows.into_iter().next().unwrap_or_default())
}

/// The requested metrics per bucket. Counts come from the daily rollups
/// when they can answer, else from the raw rows (in ClickHouse when there
/// is one, else SQLite's); revenue always from SQLite's raw revenue rows
/// (their own index).
fn by_bucket(
    cx: &Ctx,
    q: &Scoped<'_>,
    buckets: &[params::Bucket],
    metrics: &[Metric],
) -> Result<Vec<Figures>, StatsError> {
    let counts = params::counts(metrics);
    let totals = if counts.is_empty() {
        vec![Totals::default(); buckets.len()]
    } else if cx.rollups
        && let Some(rows) = rollup::by_bucket(&cx.at(), q, buckets, &counts)?
    {
        rows
    } else if let Some(rows) = cx.on_clickhouse(|ch| {
        ch_query::by_bucket(
            ch,
            q,
            cx.now.as_millisecond(),
            &grid(cx, buckets),
            buckets,
            &counts,
        )
    }) {
        rows
    } else {
        query::by_bucket(&cx.conn, q, buckets, &counts)?
    };
    let revenue = if metrics.contains(&Metric::Revenue) {
        query::revenue_by_bucket(&cx.conn, q, buckets)?
    } else {
        vec![Vec::new(); buckets.len()]
    };
    let bases = if metrics.contains(&Metric::ConversionRate) {
        let filters = params::without_goal(q.filters).ok_or_else(no_goal)?;
        let q = Scoped {
            filters: &filters,
            ..*q
        };
        by_bucket(cx, &q, buckets, &[Metric::Visitors])?
            .into_iter()
            .map(|f| Some(f.totals.visitors))
            .collect()
    } else {
        vec![None; buckets.len()]
    };
    Ok(totals
        .into_iter()
        .zip(revenue)
        .zip(bases)
        .map(|((totals, revenue), base_visitors)| Figures {
            totals,
            revenue,
            engagement: None,
            base_visitors,
        })
        .collect())
}

/// How ClickHouse puts rows into `buckets`.
fn grid(cx: &Ctx, buckets: &[params::Bucket]) -> Grid {
    // The canonical name (`europe/berlin` was accepted as `Europe/Berlin`).
    let name = cx.site.tz.iana_name().unwrap_or(&cx.site.timezone);
    Grid::of(buckets, name, &cx.site.tz)
}

fn compute_aggregate(cx: Ctx) -> Result<AggregateResponse, StatsError> {
    let range = params::period(&cx.raw, &cx.site.tz, cx.now)?;
    let filters = cx.raw.filters()?;
    let metrics = cx.raw.metrics(&Metric::ALL)?;
    per_page_only(&metrics)?;
    let now = totals(&cx, &range, &filters, &metrics)?;
    let current = MetricValues::new(&now, &metrics);
    let comparison = if cx.raw.compare()? {
        let before = params::previous(&range, &cx.site.tz)?;
        let then = totals(&cx, &before, &filters, &metrics)?;
        let results = MetricValues::new(&then, &metrics);
        // From the exact values: rounding first would skew the change.
        // Revenue has none: its amounts are per currency, never converted.
        let change = metrics
            .iter()
            .filter(|m| !m.is_revenue())
            .map(|m| {
                let (now, then) = (exact(&now, *m), exact(&then, *m));
                let change = (then != 0.0).then(|| round(100.0 * (now - then) / then, 1));
                (m.as_str().to_string(), change)
            })
            .collect();
        Some(Comparison {
            period: PeriodInfo::new(&before, &cx.site),
            results,
            change,
        })
    } else {
        None
    };
    Ok(AggregateResponse {
        site: cx.site.domain.clone(),
        period: PeriodInfo::new(&range, &cx.site),
        results: current,
        comparison,
    })
}

fn compute_timeseries(cx: Ctx) -> Result<TimeseriesResponse, StatsError> {
    let range = params::period(&cx.raw, &cx.site.tz, cx.now)?;
    let filters = cx.raw.filters()?;
    let metrics = cx.raw.metrics(&[Metric::Visitors])?;
    per_page_only(&metrics)?;
    let interval = cx
        .raw
        .parsed::<params::Interval>("interval")?
        .unwrap_or_else(|| params::default_interval(range.kind));
    let buckets = params::buckets(&range, interval, &cx.site.tz)?;
    let q = scoped(&cx.site, &range, &filters);
    let rows = by_bucket(&cx, &q, &buckets, &metrics)?;
    let results = buckets
        .into_iter()
        .zip(rows)
        .map(|(b, t)| TimeseriesRow {
            date: b.label,
            values: MetricValues::new(&t, &metrics),
        })
        .collect();
    Ok(TimeseriesResponse {
        site: cx.site.domain.clone(),
        period: PeriodInfo::new(&range, &cx.site),
        interval: interval.as_str().to_string(),
        results,
    })
}

/// `time_on_page` and `scroll_depth` are per page: a breakdown by page.
fn per_page_only(metrics: &[Metric]) -> Result<(), StatsError> {
    match metrics.iter().find(|m| m.is_engagement()) {
        Some(m) => Err(StatsError::bad(
            "metrics",
            format!("{} is per page: ask a breakdown by page", m.as_str()),
        )),
        None => Ok(()),
    }
}

fn compute_breakdown(cx: Ctx) -> Result<BreakdownResponse, StatsError> {
    let range = params::period(&cx.raw, &cx.site.tz, cx.now)?;
    let filters = cx.raw.filters()?;
    let property = cx
        .raw
        .parsed::<params::Dimension>("property")?
        .ok_or_else(|| StatsError::bad("property", "missing (example: property=source)"))?;
    let metrics = cx.raw.metrics(&[Metric::Visitors])?;
    query::breakdown_supports(&property, &metrics).map_err(|m| {
        StatsError::bad(
            "metrics",
            format!(
                "{} is not available for a breakdown by {property}",
                m.as_str()
            ),
        )
    })?;
    let sort = cx.raw.sort(&metrics)?;
    let (limit, page) = cx.raw.pagination()?;
    let q = scoped(&cx.site, &range, &filters);
    let mut figures: HashMap<Option<String>, Figures> =
        groups(&cx, &q, &property, &params::counts(&metrics))?
            .into_iter()
            .map(|(value, totals)| {
                let f = Figures {
                    totals,
                    ..Figures::default()
                };
                (value, f)
            })
            .collect();
    if metrics.contains(&Metric::ConversionRate) {
        // Rows of the goal (event names and properties, or pages when no
        // event is the goal) convert out of all the visitors; rows of
        // anything else out of their own.
        let event_goal = filters
            .iter()
            .any(|f| f.dimension == params::Dimension::EventName);
        let base = match params::without_goal(&filters) {
            Some(base) => base,
            None if matches!(
                property,
                params::Dimension::EventName | params::Dimension::Page
            ) =>
            {
                filters.clone()
            }
            None => return Err(no_goal()),
        };
        if property.is_goal() || (property == params::Dimension::Page && !event_goal) {
            let all = totals(&cx, &range, &base, &[Metric::Visitors])?;
            for f in figures.values_mut() {
                f.base_visitors = Some(all.totals.visitors);
            }
        } else {
            let q = scoped(&cx.site, &range, &base);
            let bases: HashMap<_, _> = groups(&cx, &q, &property, &[Metric::Visitors])?
                .into_iter()
                .collect();
            for (value, f) in figures.iter_mut() {
                f.base_visitors = Some(bases.get(value).map_or(0, |t| t.visitors));
            }
        }
    }
    if metrics.contains(&Metric::Revenue) {
        // A value may have revenue and nothing else in the range (a visit
        // that started before it): it gets a row too.
        for (value, revenue) in query::revenue_breakdown(&cx.conn, &q, &property)? {
            figures.entry(value).or_default().revenue = revenue;
        }
    }
    if metrics.iter().any(|m| m.is_engagement()) {
        // Engagement rows carry no event name or properties.
        if let Some(f) = filters.iter().find(|f| {
            matches!(
                f.dimension,
                params::Dimension::EventName | params::Dimension::EventProp(_)
            )
        }) {
            return Err(StatsError::bad(
                "filter",
                format!(
                    "{}: time_on_page and scroll_depth are not split by event names or properties",
                    f.dimension
                ),
            ));
        }
        // A page may have engagement and no view in the range (a view just
        // before it): it gets a row too, as for revenue.
        let now_ms = cx.now.as_millisecond();
        let engagement = match cx
            .on_clickhouse(|ch| crate::clickhouse::query::engagement_by_page(ch, &q, now_ms))
        {
            Some(engagement) => engagement,
            None => query::engagement_by_page(&cx.conn, &q)?,
        };
        for (path, e) in engagement {
            figures.entry(Some(path)).or_default().engagement = Some(e);
        }
    }
    let main = main_currency(figures.values());
    let mut rows: Vec<BreakdownRow> = figures
        .into_iter()
        .map(|(value, f)| BreakdownRow {
            value: value.unwrap_or_else(|| params::NONE_LABEL.to_string()),
            values: MetricValues::new(&f, &metrics),
        })
        .collect();
    rows.sort_by(|a, b| {
        let by_key = match sort.key {
            SortKey::Value => a.value.cmp(&b.value),
            SortKey::Metric(Metric::Revenue) => a
                .values
                .revenue_in(main.as_deref())
                .total_cmp(&b.values.revenue_in(main.as_deref())),
            SortKey::Metric(m) => a.values.get(m).total_cmp(&b.values.get(m)),
        };
        let by_key = if sort.descending {
            by_key.reverse()
        } else {
            by_key
        };
        by_key.then_with(|| a.value.cmp(&b.value))
    });
    let total = rows.len();
    let results = rows
        .into_iter()
        .skip((page - 1).saturating_mul(limit))
        .take(limit)
        .collect();
    Ok(BreakdownResponse {
        site: cx.site.domain.clone(),
        period: PeriodInfo::new(&range, &cx.site),
        property: property.to_string(),
        page,
        limit,
        total,
        results,
    })
}

/// A breakdown's counts per value: from the daily rollups when they can
/// answer, else from the raw rows (ClickHouse's when there is one).
fn groups(
    cx: &Ctx,
    q: &Scoped<'_>,
    property: &params::Dimension,
    counts: &[Metric],
) -> Result<Vec<(Option<String>, Totals)>, StatsError> {
    let fast = if counts.is_empty() {
        Some(Vec::new())
    } else if cx.rollups {
        rollup::breakdown(&cx.at(), q, property, counts)?
    } else {
        None
    };
    match fast.or_else(|| {
        cx.on_clickhouse(|ch| ch_query::breakdown(ch, q, cx.now.as_millisecond(), property, counts))
    }) {
        Some(groups) => Ok(groups),
        None => Ok(query::breakdown(&cx.conn, q, property, counts)?),
    }
}

fn compute_realtime(cx: Ctx) -> Result<RealtimeResponse, StatsError> {
    let mut query = RawQuery::default();
    query.push("period", "realtime");
    let range = params::period(&query, &cx.site.tz, cx.now)?;
    let filters = cx.raw.filters()?;
    let f = totals(&cx, &range, &filters, &[Metric::Visitors])?;
    Ok(RealtimeResponse {
        site: cx.site.domain.clone(),
        visitors: f.totals.visitors,
    })
}

/// The currency a breakdown sorts revenue by: the one most revenue events
/// were in (ties: alphabetical). Amounts are never converted.
fn main_currency<'a>(figures: impl Iterator<Item = &'a Figures>) -> Option<String> {
    let mut events: BTreeMap<&str, i64> = BTreeMap::new();
    for sum in figures.flat_map(|f| &f.revenue) {
        *events.entry(&sum.currency).or_default() += sum.events;
    }
    let mut best: Option<(&str, i64)> = None;
    for (currency, n) in events {
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((currency, n));
        }
    }
    best.map(|(c, _)| c.to_string())
}

/// ISO 4217 minor units: amounts are shown to the cent, or to the yen, the
/// fils. Codes not listed have 2.
fn minor_units(currency: &str) -> i32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A metric's exact value (before rounding for display); ratios are 0
/// without visits (or visitors).
fn exact(f: &Figures, m: Metric) -> f64 {
    let t = &f.totals;
    let per_visit = |x: i64| {
        if t.visits == 0 {
            0.0
        } else {
            x as f64 / t.visits as f64
        }
    };
    match m {
        Metric::Visitors => t.visitors as f64,
        Metric::Visits => t.visits as f64,
        Metric::Pageviews => t.pageviews as f64,
        Metric::ViewsPerVisit => per_visit(t.session_pageviews),
        Metric::BounceRate => 100.0 * per_visit(t.bounces),
        Metric::VisitDuration => per_visit(t.duration_ms) / 1000.0,
        Metric::Events => t.events as f64,
        // Per currency, never one number: see `MetricValues::revenue`.
        Metric::Revenue => 0.0,
        // Per page, from the engagement rows: see `MetricValues::new`.
        Metric::TimeOnPage | Metric::ScrollDepth => 0.0,
        // Never above 100: a page's row counts the visitors who viewed it,
        // and a goal may be reached there without a view (an event sent on
        // a page that was not counted as viewed).
        Metric::ConversionRate => match f.base_visitors.map(|b| b.max(t.visitors)) {
            Some(base) if base > 0 => 100.0 * t.visitors as f64 / base as f64,
            _ => 0.0,
        },
    }
}

/// The requested metrics; those not requested are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct MetricValues {
    /// Daily unique visitors: distinct visitor ids among the events in the
    /// range. Ids are salted per site-local day, so over several days this
    /// counts one person once per day they came (not people).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visitors: Option<i64>,
    /// Visits (sessions) that started in the range. A session ends after 30
    /// minutes without an event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visits: Option<i64>,
    /// Pageview events in the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pageviews: Option<i64>,
    /// Pageviews per visit, over the visits that started in the range (2
    /// decimals; 0 without visits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub views_per_visit: Option<f64>,
    /// Percent of visits that bounced: at most one pageview and no
    /// interactive custom event (1 decimal; 0 without visits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounce_rate: Option<f64>,
    /// Mean visit duration in whole seconds, from a visit's first to its last
    /// event (bounces count as 0; 0 without visits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visit_duration: Option<i64>,
    /// Events in the range: pageviews plus custom events (as Plausible
    /// defines it); with an `event:name` filter or breakdown, that event's
    /// count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<i64>,
    /// Revenue of the custom events that carry one (`track(name, props,
    /// {revenue})`), one entry per currency in alphabetical order (empty
    /// when none): amounts are never converted between currencies. Filters
    /// apply as to `events`: `event:name==Purchase` keeps that event's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue: Option<Vec<RevenueValue>>,
    /// Breakdown by page only: mean engaged seconds (the page visible and
    /// focused) per visit of the page that sent engagement, whole seconds;
    /// null without any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub time_on_page: Option<Option<i64>>,
    /// Breakdown by page only: mean of each visit's deepest scroll on the
    /// page, in percent (100: read to the end); null without any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub scroll_depth: Option<Option<i64>>,
    /// With a goal (an `event:name` or else `page` filter, or a breakdown by
    /// either): percent of the visitors counted without the goal's filters
    /// (event name and properties, or the page) who are counted with them,
    /// 1 decimal. In a breakdown by event name or property (or page without
    /// an event goal), of all the range's visitors; by any other
    /// dimension, of that row's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion_rate: Option<f64>,
}

/// Revenue in one currency.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RevenueValue {
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// Sum of the amounts (refunds sent as negative amounts subtract),
    /// rounded to the currency's minor unit (cents; none for JPY).
    pub total: f64,
    /// `total` per revenue event, rounded the same way.
    pub average: f64,
    /// Events that carried an amount in this currency.
    pub events: i64,
}

impl RevenueValue {
    fn new(sum: &CurrencySum) -> Self {
        let digits = minor_units(&sum.currency);
        let average = if sum.events == 0 {
            0.0
        } else {
            sum.total / sum.events as f64
        };
        Self {
            currency: sum.currency.clone(),
            total: round(sum.total, digits),
            average: round(average, digits),
            events: sum.events,
        }
    }
}

impl MetricValues {
    fn new(f: &Figures, metrics: &[Metric]) -> Self {
        let t = &f.totals;
        let mut v = Self::default();
        for &m in metrics {
            let x = exact(f, m);
            match m {
                Metric::Visitors => v.visitors = Some(t.visitors),
                Metric::Visits => v.visits = Some(t.visits),
                Metric::Pageviews => v.pageviews = Some(t.pageviews),
                Metric::ViewsPerVisit => v.views_per_visit = Some(round(x, 2)),
                Metric::BounceRate => v.bounce_rate = Some(round(x, 1)),
                Metric::VisitDuration => v.visit_duration = Some(x.round() as i64),
                Metric::Events => v.events = Some(t.events),
                Metric::Revenue => {
                    v.revenue = Some(f.revenue.iter().map(RevenueValue::new).collect());
                }
                Metric::TimeOnPage => {
                    v.time_on_page =
                        Some(f.engagement.filter(|e| e.visits > 0).map(|e| {
                            (e.engaged_ms as f64 / e.visits as f64 / 1000.0).round() as i64
                        }));
                }
                Metric::ScrollDepth => {
                    v.scroll_depth = Some(
                        f.engagement
                            .filter(|e| e.scrolled > 0)
                            .map(|e| (e.depth_sum as f64 / e.scrolled as f64).round() as i64),
                    );
                }
                Metric::ConversionRate => v.conversion_rate = Some(round(x, 1)),
            }
        }
        v
    }

    /// The revenue total in `currency` (0 when none), for sorting.
    pub fn revenue_in(&self, currency: Option<&str>) -> f64 {
        self.revenue
            .iter()
            .flatten()
            .find(|r| Some(r.currency.as_str()) == currency)
            .map_or(0.0, |r| r.total)
    }

    /// A metric's value as a number (0 when absent), for sorting.
    pub fn get(&self, m: Metric) -> f64 {
        match m {
            Metric::Visitors => self.visitors.unwrap_or(0) as f64,
            Metric::Visits => self.visits.unwrap_or(0) as f64,
            Metric::Pageviews => self.pageviews.unwrap_or(0) as f64,
            Metric::ViewsPerVisit => self.views_per_visit.unwrap_or(0.0),
            Metric::BounceRate => self.bounce_rate.unwrap_or(0.0),
            Metric::VisitDuration => self.visit_duration.unwrap_or(0) as f64,
            Metric::Events => self.events.unwrap_or(0) as f64,
            // Per currency: see `revenue_in`.
            Metric::Revenue => 0.0,
            // Pages without any sort below those with a 0.
            Metric::TimeOnPage => self.time_on_page.flatten().map_or(-1.0, |x| x as f64),
            Metric::ScrollDepth => self.scroll_depth.flatten().map_or(-1.0, |x| x as f64),
            Metric::ConversionRate => self.conversion_rate.unwrap_or(0.0),
        }
    }
}

/// The resolved period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PeriodInfo {
    /// `realtime`, `day`, `7d`, `30d`, `month`, `6mo`, `12mo`, `year` or `custom`.
    pub period: String,
    /// First local day (absent for realtime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Last local day, inclusive (absent for realtime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Start, inclusive, RFC 3339 in UTC.
    pub start: String,
    /// End, exclusive, RFC 3339 in UTC.
    pub end: String,
    /// The site's IANA timezone, in which days and buckets are computed.
    pub timezone: String,
}

impl PeriodInfo {
    fn new(range: &Range, site: &Site) -> Self {
        Self {
            period: range.kind.as_str().to_string(),
            from: range.days.map(|(a, _)| a.to_string()),
            to: range.days.map(|(_, b)| b.to_string()),
            start: range.start.to_string(),
            end: range.end.to_string(),
            timezone: site.timezone.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AggregateResponse {
    /// The site's normalised domain.
    pub site: String,
    pub period: PeriodInfo,
    pub results: MetricValues,
    /// With `compare=previous_period` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Comparison {
    /// The previous period: same length just before (the previous calendar
    /// month, year, 6 or 12 months for `month`, `year`, `6mo` and `12mo`).
    pub period: PeriodInfo,
    pub results: MetricValues,
    /// Percent change per requested metric, 1 decimal; null when the
    /// previous value is 0.
    /// (A sorted map: the same answer serializes the same way every time.)
    #[schema(value_type = BTreeMap<String, Option<f64>>)]
    pub change: BTreeMap<String, Option<f64>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimeseriesResponse {
    pub site: String,
    pub period: PeriodInfo,
    /// `minute`, `hour`, `day`, `week` or `month`.
    pub interval: String,
    pub results: Vec<TimeseriesRow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimeseriesRow {
    /// The bucket: `YYYY-MM-DD` (its first local day in the range) for day,
    /// week and month buckets; local start time with offset (RFC 3339) for
    /// minute and hour buckets.
    pub date: String,
    #[serde(flatten)]
    pub values: MetricValues,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BreakdownResponse {
    pub site: String,
    pub period: PeriodInfo,
    /// The dimension broken down by.
    pub property: String,
    pub page: usize,
    pub limit: usize,
    /// Number of distinct values (rows over all pages).
    pub total: usize,
    pub results: Vec<BreakdownRow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BreakdownRow {
    /// The dimension's value; `(none)` when not set (e.g. direct visits for
    /// `source`).
    pub value: String,
    #[serde(flatten)]
    pub values: MetricValues,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RealtimeResponse {
    pub site: String,
    /// Daily unique visitors with at least one event in the last 5 minutes
    /// (`(now − 5 min, now]`).
    pub visitors: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SitesResponse {
    /// In order of domain; a share token sees its one site.
    pub sites: Vec<SiteInfo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SiteInfo {
    /// The normalised domain, as the `site` parameter takes it.
    pub domain: String,
    /// IANA timezone: the site's days.
    pub timezone: String,
    /// The oldest local day kept (`serve --retention-days`): what the site
    /// recorded before it was deleted, and answers about those days count
    /// nothing. Null when everything is kept.
    pub kept_from: Option<String>,
    /// The days imported from another tool (`tallymark import`), if any:
    /// whole-day totals without raw events.
    pub imported: Option<ImportedInfo>,
    pub volume: VolumeInfo,
}

/// The first and last imported days (local days, `YYYY-MM-DD`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedInfo {
    pub from: String,
    pub to: String,
}

/// The volume-drop check (silent ingestion failures): events accepted in
/// the last 24 hours against the 24 hours before.
#[derive(Debug, Serialize, ToSchema)]
pub struct VolumeInfo {
    pub last_24h: i64,
    pub previous_24h: i64,
    /// The fall in percent (1 decimal) when it exceeds the configured
    /// threshold (`volume_drop_percent`, default 15) and the day before had
    /// at least 100 events; else null.
    pub dropped_percent: Option<f64>,
}

/// Every error: a message that starts with the parameter at fault.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// Parameters of every period-based endpoint (documentation only; the
/// parser is [`params::RawQuery`]).
#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct CommonParams {
    /// The site's domain, as registered (e.g. `example.com`).
    site: String,
    /// `realtime` (the last 5 minutes), `day`, `7d` and `30d` (the days
    /// ending with `date`, inclusive), `month`, `year` (the calendar month or
    /// year containing `date`), `6mo` and `12mo` (the calendar month of
    /// `date` and the 5 or 11 before it) or `custom` (`from`..`to`). Days
    /// are the site's local days (its timezone). Default `30d`.
    period: Option<String>,
    /// The anchor day `YYYY-MM-DD` (default: today in the site's timezone).
    date: Option<String>,
    /// First day `YYYY-MM-DD` of a `custom` period.
    from: Option<String>,
    /// Last day `YYYY-MM-DD` (inclusive) of a `custom` period; at most 5
    /// years after `from`.
    to: Option<String>,
    /// Repeatable, all must hold: `<dimension>==<value>` (is),
    /// `<dimension>!=<value>` (is not; unset values pass), `<dimension>~<value>`
    /// (contains, case-insensitive). `(none)` as value means "not set".
    /// Dimensions: page, hostname, entry_page, exit_page, source, referrer,
    /// channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
    /// country, region, city, region_name, city_name, browser, browser_version,
    /// os, os_version, device, event:name, event:props:<key>. Event
    /// dimensions (page, hostname, event:name, event:props) keep, for session metrics, the visits
    /// with a matching event (`!=`: with no event equal to the value); entry and
    /// exit page keep, for event metrics, the events of matching visits.
    /// Several values joined by `|`: any of them (`!=`: none of them). With
    /// `==` and `!=` a `*` matches any run of characters (`page==/blog/*`);
    /// `\|` and `\*` are a literal `|` and `*`.
    filter: Option<Vec<String>>,
}

/// The metrics of the aggregate, timeseries and breakdown.
#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct MetricsParams {
    /// Comma-separated: visitors, visits, pageviews, views_per_visit,
    /// bounce_rate, visit_duration, events, revenue (per currency),
    /// conversion_rate (with an event:name filter or breakdown), and in a
    /// breakdown by page time_on_page and scroll_depth. Default: all but
    /// those three (aggregate) or visitors (timeseries, breakdown).
    metrics: Option<String>,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct AggregateParams {
    /// `previous_period`: also the same metrics over the period just before.
    compare: Option<String>,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct TimeseriesParams {
    /// `minute`, `hour`, `day`, `week` (Monday to Sunday) or `month`, in the
    /// site's timezone. Default: minute for realtime, hour for day, month
    /// for year, 6mo and 12mo, else day. At most 5000 buckets.
    interval: Option<String>,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct BreakdownParams {
    /// The dimension to break down by (see `filter`). Event dimensions
    /// take visitors, visits (visits with such an event), pageviews, events
    /// and revenue; entry_page and exit_page take visitors, visits,
    /// views_per_visit, bounce_rate, visit_duration and revenue; the others
    /// take all. With a filter `event:name==X`, a breakdown by page counts
    /// the X events by the page they were sent on. `event:props` (no key,
    /// breakdowns only) lists the property keys the events carry, with
    /// visitors, visits, pageviews and events.
    property: String,
    /// Rows per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Page number from 1 (default 1).
    #[param(minimum = 1)]
    page: Option<u32>,
    /// `<metric>:<asc|desc>` (a requested metric) or `value:<asc|desc>`;
    /// default: the first metric, descending. Ties: by value, ascending.
    /// `revenue` sorts by the total in the main currency (the one most
    /// revenue events were in).
    sort: Option<String>,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct RealtimeParams {
    /// The site's domain.
    site: String,
    /// As for the other endpoints (repeatable).
    filter: Option<Vec<String>>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI document, generated from the handlers and types above.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tallymark stats API",
        description = "Cookieless web analytics figures. Send `Authorization: Bearer <token>` \
            (`tallymark token create`). `visitors` are daily unique visitors: ids are salted per \
            site-local day, so over several days one person counts once per day. Visits \
            (sessions) are counted in the range they started in. Errors are \
            `{\"error\": \"<parameter>: <problem>\"}`; an unknown site is a 400."
    ),
    paths(aggregate, timeseries, breakdown, realtime, funnel::funnel, sites),
    components(schemas(
        MetricValues,
        RevenueValue,
        PeriodInfo,
        AggregateResponse,
        Comparison,
        TimeseriesResponse,
        TimeseriesRow,
        BreakdownResponse,
        BreakdownRow,
        RealtimeResponse,
        funnel::FunnelResponse,
        funnel::FunnelStep,
        SitesResponse,
        SiteInfo,
        ImportedInfo,
        VolumeInfo,
        ErrorBody
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    fn value(currency: &str, total: f64, events: i64) -> RevenueValue {
        RevenueValue::new(&CurrencySum {
            currency: currency.into(),
            events,
            total,
        })
    }

    #[test]
    fn revenue_is_rounded_to_the_currency_minor_unit() {
        let eur = value("EUR", 0.1 + 0.2, 3);
        assert_eq!((eur.total, eur.average), (0.3, 0.1));
        let jpy = value("JPY", 1500.4, 2);
        assert_eq!((jpy.total, jpy.average), (1500.0, 750.0));
        let kwd = value("KWD", 1.23456, 1);
        assert_eq!(kwd.total, 1.235);
        let refund = value("USD", -5.556, 1);
        assert_eq!(refund.total, -5.56);
    }

    #[test]
    fn the_main_currency_has_the_most_revenue_events() {
        let f = |sums: &[(&str, i64)]| Figures {
            totals: Totals::default(),
            revenue: sums
                .iter()
                .map(|(c, n)| CurrencySum {
                    currency: c.to_string(),
                    events: *n,
                    total: 1.0,
                })
                .collect(),
            engagement: None,
            base_visitors: None,
        };
        let rows = [f(&[("EUR", 2), ("USD", 3)]), f(&[("EUR", 2)])];
        assert_eq!(main_currency(rows.iter()).as_deref(), Some("EUR"));
        let tie = [f(&[("USD", 1), ("EUR", 1)])];
        assert_eq!(main_currency(tie.iter()).as_deref(), Some("EUR"));
        assert_eq!(main_currency([].iter()), None);
    }
}
