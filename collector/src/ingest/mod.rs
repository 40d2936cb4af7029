//! `POST /api/event` (and `/api/send`, GoatCounter's `/count`): the ingest
//! pipeline, top to bottom, one module per stage:
//!
//! 1. [`extract`]: content type, body, client IP (trusted proxies only), UA;
//! 2. validate: core's `intake::parse` (a v1 payload, or Plausible's format
//!    translated into one) and `validate`, and the site must be registered;
//! 3. [`classify`]: bots, skip paths, referrer spam, repeated `event_id`s;
//! 4. [`identify`]: the daily visitor id;
//! 5. [`sessionize`]: the live session, in memory;
//! 6. [`persist`]: the row, group-committed; answered only after commit.
//!
//! Every request ends counted as accepted, dropped (202 with
//! `x-tallymark-dropped`) or rejected (4xx/5xx with a JSON error).

pub mod classify;
pub mod extract;
pub mod identify;
pub mod persist;
pub mod sessionize;

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tallymark_core::classify::{DropReason, Outcome};
use tallymark_core::intake::{self, Incoming};
use tallymark_core::{validate, wire};

use crate::AppState;
use crate::error::ApiError;
use crate::store::Ack;

/// The response header that names why an event was deliberately not stored.
pub const DROPPED_HEADER: &str = "x-tallymark-dropped";

/// How a request that did not fail ended.
enum Recorded {
    Stored(wire::Kind),
    Dropped(DropReason),
}

pub async fn event(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let recorded = pipeline(&state, peer, &headers, body).await;
    let mut response = match &recorded {
        Ok(Recorded::Dropped(reason)) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "ok": true, "dropped": reason.as_str() })),
        )
            .into_response(),
        Ok(Recorded::Stored(_)) => (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"ok":true}"#,
        )
            .into_response(),
        Err(_) => StatusCode::ACCEPTED.into_response(),
    };
    answered(&state, recorded, &mut response);
    response
}

/// A 1×1 transparent GIF: what GoatCounter's script loads as an image.
const PIXEL: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

/// GoatCounter's `count.js` (`GET /count?p=/path&r=…`): the same pipeline,
/// from the query; the site is the page's host (its `Referer`, else
/// `Origin`). Answered with a 1×1 GIF.
pub async fn goatcounter(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    count(state, peer, method, headers, query, None).await
}

/// `/count/{site}`: the same, for the site named in the endpoint (the page's
/// host may then be a subdomain, or unknown).
pub async fn goatcounter_site(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    site: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match site {
        Ok(Path(site)) => count(state, peer, method, headers, query, Some(site)).await,
        Err(_) => {
            let e = ApiError::from(wire::WireError::Malformed {
                field: "site".into(),
                reason: "the endpoint's site (/count/example.com) is not text".into(),
            });
            state.metrics.reject(e.label());
            e.into_response()
        }
    }
}

async fn count(
    state: AppState,
    peer: SocketAddr,
    method: Method,
    headers: HeaderMap,
    query: Option<String>,
    site: Option<String>,
) -> Response {
    // A link checker's HEAD is no page view.
    if method == Method::HEAD {
        return (StatusCode::OK, [(header::CONTENT_TYPE, "image/gif")]).into_response();
    }
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let page = ["referer", "origin"].into_iter().find_map(|name| {
        let value = headers.get(name)?.to_str().ok()?;
        url::Url::parse(value).ok()
    });
    let client = extract::client(
        &headers,
        peer.ip(),
        &state.config.trusted_proxies,
        state.config.client_ip_header,
    );
    let recorded = match intake::from_goatcounter(&params, site.as_deref(), page.as_ref()) {
        Ok(incoming) => record(&state, client, incoming).await,
        Err(e) => Err(e.into()),
    };
    let mut response = (
        StatusCode::ACCEPTED,
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PIXEL,
    )
        .into_response();
    answered(&state, recorded, &mut response);
    response
}

/// Counts how a request ended; a drop names its reason in a header, an
/// error replaces `response` with its own.
fn answered(state: &AppState, recorded: Result<Recorded, ApiError>, response: &mut Response) {
    match recorded {
        Ok(Recorded::Stored(kind)) => state.metrics.accept(kind.as_str()),
        Ok(Recorded::Dropped(reason)) => {
            state.metrics.drop_event(reason.as_str());
            response
                .headers_mut()
                .insert(DROPPED_HEADER, HeaderValue::from_static(reason.as_str()));
        }
        Err(e) => {
            state.metrics.reject(e.label());
            *response = e.into_response();
        }
    }
}

async fn pipeline(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Recorded, ApiError> {
    let request = extract::extract(
        headers,
        peer.ip(),
        body,
        &state.config.trusted_proxies,
        state.config.client_ip_header,
    )
    .await?;
    let incoming = intake::parse(&request.body)?;
    record(state, request.client, incoming).await
}

/// The stages after the body was read: the site, validate, classify,
/// identify, sessionize, persist.
async fn record(
    state: &AppState,
    request: extract::Client,
    incoming: Incoming,
) -> Result<Recorded, ApiError> {
    let now = state.clock.now();
    let now_ms = now.as_millisecond();
    let (mut payload, other_sites) = match incoming {
        Incoming::Event {
            payload,
            other_sites,
        } => (payload, other_sites),
        Incoming::Drop(reason) => return Ok(Recorded::Dropped(reason)),
    };
    let site = match state.sites.get(&payload.site) {
        Some(site) => site,
        // A Plausible `domain` list, or an Umami page's parent domains: the
        // first registered one records it.
        None => {
            let (domain, site) = other_sites
                .into_iter()
                .find_map(|d| state.sites.get(&d).map(|site| (d, site)))
                .ok_or_else(|| ApiError::UnknownSite(payload.site.clone()))?;
            payload.site = domain;
            site
        }
    };
    let event = validate::validate(payload)?;

    if let Outcome::Drop(reason) = classify::classify(&state.bot_rules, &request.user_agent, &event)
    {
        return Ok(Recorded::Dropped(reason));
    }
    if let Some(id) = &event.event_id
        && let Outcome::Drop(reason) = state.recent_ids.check(site.id, id, now_ms)
    {
        return Ok(Recorded::Dropped(reason));
    }

    let visitor =
        identify::identify(state, &site, request.client_ip, &request.user_agent, now).await?;

    // Engagement (time on a page, scroll depth) joins the visit going on and
    // never starts or steps one.
    let engaged_visit = match event.kind {
        wire::Kind::Engagement => match state.sessions.current(site.id, visitor, now_ms) {
            Some(session_id) => Some(session_id),
            None => return Ok(Recorded::Dropped(DropReason::Engagement)),
        },
        _ => None,
    };

    let kind = event.kind;
    let event_id = event.event_id.clone();
    let forget = || forget_event_id(state, site.id, event_id.as_deref());
    // The queue place comes first: a 503 must not leave its trace in the
    // live session.
    let slot = state.store.reserve().inspect_err(|_| forget())?;
    let result = match engaged_visit {
        Some(session_id) => {
            persist::persist_engagement(slot, event, site.id, session_id, now_ms).await
        }
        None => {
            let stepped = sessionize::sessionize(
                state,
                visitor,
                sessionize::Context {
                    site: &site,
                    event: &event,
                    user_agent: &request.user_agent,
                    client_ip: request.client_ip,
                    proxy_country: request.proxy_country,
                    now_ms,
                },
            );
            let result = persist::persist(slot, event, &stepped, now_ms).await;
            if !matches!(result, Ok(Ack::Committed)) {
                // Not stored: the live session must not count it either.
                state.sessions.undo(stepped);
            }
            result
        }
    };
    match result {
        Ok(Ack::Committed) => Ok(Recorded::Stored(kind)),
        Ok(Ack::Duplicate) => Ok(Recorded::Dropped(DropReason::Duplicate)),
        Err(e) => {
            forget();
            Err(e)
        }
    }
}

/// A failed request's `event_id` may be retried: it is no longer "seen".
fn forget_event_id(state: &AppState, site_id: i64, event_id: Option<&str>) {
    if let Some(id) = event_id {
        state.recent_ids.forget(site_id, id);
    }
}
