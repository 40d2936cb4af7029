//! Stage 6, persist: the event row, written with its session snapshot by the
//! group-commit writer. Resolves only once the batch has committed.

use tallymark_core::validate::Valid;

use crate::error::ApiError;
use crate::sessions::Stepped;
use crate::store::{Ack, EngagementRow, EventRow, Slot};

/// Writes through `slot`, the queue place reserved before the session step.
pub async fn persist(
    slot: Slot<'_>,
    event: Valid,
    stepped: &Stepped,
    now_ms: i64,
) -> Result<Ack, ApiError> {
    let props = (!event.props.is_empty())
        .then(|| serde_json::to_string(&event.props).ok())
        .flatten();
    let row = EventRow {
        site_id: stepped.row.site_id,
        ts_ms: now_ms,
        kind: event.kind.as_str(),
        name: event.name,
        visitor_id: stepped.visitor_id as i64,
        session_id: stepped.row.id,
        hostname: event.hostname,
        path: event.path,
        dims: stepped.row.dims.clone(),
        screen_width: event.screen_width,
        props,
        revenue_amount: event.revenue.as_ref().map(|r| r.amount),
        revenue_currency: event.revenue.map(|r| r.currency),
        event_id: event.event_id,
    };
    Ok(slot.ingest(row, stepped.row.clone()).await?)
}

/// Writes an engagement event (time on a page, scroll depth) of the visit
/// `session_id`, which it does not change.
pub async fn persist_engagement(
    slot: Slot<'_>,
    event: Valid,
    site_id: i64,
    session_id: i64,
    now_ms: i64,
) -> Result<Ack, ApiError> {
    let row = EngagementRow {
        site_id,
        ts_ms: now_ms,
        session_id,
        hostname: event.hostname,
        path: event.path,
        engaged_ms: event.engaged_ms,
        scroll_depth: event.scroll_depth,
    };
    Ok(slot.engage(row).await?)
}
