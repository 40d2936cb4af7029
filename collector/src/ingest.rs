//! `POST /api/event`: the ingest pipeline, top to bottom.
//!
//! extract (content type, body) → validate (core) → persist (group commit).
//! Later stages (classify, identify, sessionize) slot in between, in order.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use tallymark_core::wire::{self, MAX_BODY_BYTES};
use tower_http::cors::CorsLayer;

use crate::AppState;
use crate::error::ApiError;
use crate::store::EventRow;

/// CORS is open on the ingest endpoint: any site may send beacons to it.
pub fn cors() -> CorsLayer {
    CorsLayer::permissive()
}

pub async fn event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    // extract
    check_content_type(&headers)?;
    let bytes = to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        })?;
    // validate
    let payload = wire::parse(&bytes)?;
    // persist: answered only once the row's batch has committed.
    let row = EventRow::from_payload(payload, now_ms());
    state.store.insert(row).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "ok": true })),
    ))
}

/// `application/json` or `text/plain` (what `sendBeacon` sends with a string
/// body, with no CORS preflight). A missing content type is read as JSON.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .map_err(|_| ApiError::UnsupportedMediaType)?
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "text/plain" => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
