//! `GET /api/v1/stats/funnel`: how many visits went through a series of
//! steps in order (a page view of `/pricing`, then a `Signup` event, …),
//! and where the others left.
//!
//! A visit reaches step `k` when it made, in this order, an event matching
//! each of steps 1 to `k` within the period (one event counts for one step:
//! two equal steps need two events). Steps are filters on what an event is
//! (page, hostname, event name, property): a page or hostname step is a
//! page view, an event name or property step a custom event. Filters keep
//! visits by their own dimensions (source, country, entry page, …). Read
//! from SQLite's raw rows, the matching events sorted by visitor and visit,
//! counted as they stream (no set of visitors is held); with ClickHouse,
//! counted there the same way (`clickhouse::query::funnel`).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::error::StatsError;
use super::params::{self, Dimension, Filter, Scope};
use super::query;
use super::{Ctx, ErrorBody, PeriodInfo, RawQueryString, scoped, serve};
use crate::AppState;

pub const FUNNEL_PARAMS: &[&str] = &["site", "period", "date", "from", "to", "filter", "step"];

/// Steps in a funnel: at least two, at most this many.
pub const MAX_STEPS: usize = 8;

/// A funnel over the period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FunnelResponse {
    pub site: String,
    pub period: PeriodInfo,
    /// One per step, in order.
    pub steps: Vec<FunnelStep>,
}

/// How many went as far as one step.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FunnelStep {
    /// The step as asked (`page==/pricing`).
    pub step: String,
    /// Daily unique visitors of the visits that reached it.
    pub visitors: i64,
    /// Visits that reached it.
    pub visits: i64,
    /// Percent of the first step's visitors (1 decimal; 100 for the first
    /// step when anyone reached it).
    pub conversion_rate: f64,
    /// Percent of the previous step's visitors (1 decimal).
    pub conversion_rate_step: f64,
    /// Visitors of the previous step who did not reach this one.
    pub dropoff: i64,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct FunnelParams {
    /// Repeatable, 2 to 8, in order: a filter on what an event is, `page`
    /// and `hostname` (page views), `event:name` and `event:props:<key>`
    /// (custom events), with `==`, `!=`, `~` and `|` as in `filter`
    /// (`step=page==/pricing&step=event:name==Signup`).
    step: Vec<String>,
}

/// Visits through a series of steps, in order.
#[utoipa::path(
    get,
    path = "/api/v1/stats/funnel",
    params(super::CommonParams, FunnelParams),
    responses(
        (status = 200, description = "Each step's visitors and visits, and the conversion from the first and from the previous step", body = FunnelResponse),
        (status = 400, description = "A bad parameter (the message names it) or an unknown site", body = ErrorBody),
        (status = 401, description = "Missing or unknown bearer token", body = ErrorBody),
        (status = 403, description = "A share token for another site", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn funnel(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQueryString(query): RawQueryString,
) -> Result<Json<FunnelResponse>, StatsError> {
    serve(state, headers, query, FUNNEL_PARAMS, compute).await
}

/// The steps asked for, checked.
fn steps(cx: &Ctx) -> Result<Vec<Filter>, StatsError> {
    let steps = cx
        .raw
        .all("step")
        .map(|s| s.parse::<Filter>().map_err(|e| StatsError::bad("step", e)))
        .collect::<Result<Vec<_>, _>>()?;
    if !(2..=MAX_STEPS).contains(&steps.len()) {
        return Err(StatsError::bad(
            "step",
            format!(
                "a funnel has 2 to {MAX_STEPS} steps, in order \
                 (step=page==/pricing&step=event:name==Signup); got {}",
                steps.len()
            ),
        ));
    }
    if let Some(s) = steps
        .iter()
        .find(|s| s.dimension.scope() != Scope::Event || s.dimension == Dimension::EventPropKeys)
    {
        return Err(StatsError::bad(
            "step",
            format!(
                "{}: a step is what an event is: page, hostname, event:name or \
                 event:props:<key> (the visit's own dimensions go in filter)",
                s.dimension
            ),
        ));
    }
    Ok(steps)
}

/// Counts visits and visitors through the steps from the matching events,
/// read a visitor's visits together, each visit's events in order.
struct Tally {
    /// Per step: visits and visitors that reached it.
    visits: Vec<i64>,
    visitors: Vec<i64>,
    /// The visit being read: its id and the steps it reached so far.
    visit: Option<(i64, usize)>,
    /// The visitor being read: their id and the most steps one of their
    /// visits reached.
    visitor: Option<(i64, usize)>,
}

impl Tally {
    fn new(steps: usize) -> Self {
        Self {
            visits: vec![0; steps],
            visitors: vec![0; steps],
            visit: None,
            visitor: None,
        }
    }

    /// One event (bit `i` of `matches`: it matches step `i`): it takes the
    /// visit one step further when it matches the next step.
    fn event(&mut self, visitor: i64, session: i64, matches: u32) {
        if self.visitor.is_none_or(|(v, _)| v != visitor) {
            self.end_visitor();
            self.visitor = Some((visitor, 0));
        }
        if self.visit.is_none_or(|(s, _)| s != session) {
            self.end_visit();
            self.visit = Some((session, 0));
        }
        if let Some((_, reached)) = self.visit.as_mut()
            && *reached < self.visits.len()
            && matches & (1 << *reached) != 0
        {
            *reached += 1;
        }
    }

    fn end_visit(&mut self) {
        if let Some((_, reached)) = self.visit.take() {
            for step in &mut self.visits[..reached] {
                *step += 1;
            }
            if let Some((_, best)) = self.visitor.as_mut() {
                *best = (*best).max(reached);
            }
        }
    }

    fn end_visitor(&mut self) {
        self.end_visit();
        if let Some((_, best)) = self.visitor.take() {
            for step in &mut self.visitors[..best] {
                *step += 1;
            }
        }
    }

    /// Visits and visitors per step.
    fn finish(mut self) -> (Vec<i64>, Vec<i64>) {
        self.end_visitor();
        (self.visits, self.visitors)
    }
}

fn compute(cx: Ctx) -> Result<FunnelResponse, StatsError> {
    let range = params::period(&cx.raw, &cx.site.tz, cx.now)?;
    let filters = cx.raw.filters()?;
    if let Some(f) = filters.iter().find(|f| f.dimension.scope() == Scope::Event) {
        return Err(StatsError::bad(
            "filter",
            format!(
                "{}: a funnel's filters keep visits by their own dimensions (source, \
                 country, entry page, …); what events are goes in its steps",
                f.dimension
            ),
        ));
    }
    let steps = steps(&cx)?;
    let q = scoped(&cx.site, &range, &filters);
    let now_ms = cx.now.as_millisecond();
    let (visits, visitors) =
        match cx.on_clickhouse(|ch| crate::clickhouse::query::funnel(ch, &q, now_ms, &steps)) {
            Some(counts) => counts,
            None => {
                let mut tally = Tally::new(steps.len());
                query::funnel_rows(&cx.conn, &q, &steps, |session, visitor, matches| {
                    tally.event(visitor, session, matches)
                })?;
                tally.finish()
            }
        };
    let percent = |part: i64, whole: i64| {
        if whole == 0 {
            0.0
        } else {
            (1000.0 * part as f64 / whole as f64).round() / 10.0
        }
    };
    let first = visitors[0];
    let steps = cx
        .raw
        .all("step")
        .enumerate()
        .map(|(i, asked)| {
            let here = visitors[i];
            let before = if i == 0 { here } else { visitors[i - 1] };
            FunnelStep {
                step: asked.to_string(),
                visitors: here,
                visits: visits[i],
                conversion_rate: percent(here, first),
                conversion_rate_step: percent(here, before),
                dropoff: before.saturating_sub(here),
            }
        })
        .collect();
    Ok(FunnelResponse {
        site: cx.site.domain.clone(),
        period: PeriodInfo::new(&range, &cx.site),
        steps,
    })
}
