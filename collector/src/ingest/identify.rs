//! Stage 4, identify: the daily visitor id, from today's salt of the site
//! (and yesterday's, while sessions from before the site's midnight may still
//! be live). The raw IP goes into the hash and nowhere else.

use std::net::IpAddr;

use jiff::Timestamp;
use tallymark_core::visitor::{salt_days_in_use, visitor_id};

use crate::AppState;
use crate::error::ApiError;
use crate::sessions::Candidates;
use crate::sites::Site;

pub async fn identify(
    state: &AppState,
    site: &Site,
    ip: IpAddr,
    user_agent: &str,
    now: Timestamp,
) -> Result<Candidates, ApiError> {
    let timeout = state.config.session_timeout;
    let (today, yesterday) = salt_days_in_use(now, &site.tz, timeout);
    let salt = state
        .salts
        .get_or_create(&state.store, site, today, timeout)
        .await?;
    let today = visitor_id(&salt, &site.domain, ip, user_agent).0;
    // Yesterday's salt is only used if it still exists: it is never created
    // after the fact.
    let yesterday = yesterday
        .and_then(|day| state.salts.get(site.id, day))
        .map(|salt| visitor_id(&salt, &site.domain, ip, user_agent).0);
    Ok(Candidates { today, yesterday })
}
