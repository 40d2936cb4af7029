//! Stage 5, sessionize: the event joins its visitor's live session or starts
//! one. A new session takes its dimensions (source, UTM, country, region,
//! city, browser, OS, device) from this first event; later events share them.

use std::net::IpAddr;

use tallymark_core::session::Hit;
use tallymark_core::source;
use tallymark_core::useragent;
use tallymark_core::validate::Valid;

use crate::AppState;
use crate::sessions::{Candidates, Stepped};
use crate::sites::Site;
use crate::store::Dimensions;

pub struct Context<'a> {
    pub site: &'a Site,
    pub event: &'a Valid,
    pub user_agent: &'a str,
    pub client_ip: IpAddr,
    pub proxy_country: Option<String>,
    pub now_ms: i64,
}

pub fn sessionize(state: &AppState, visitor: Candidates, cx: Context<'_>) -> Stepped {
    let hit = Hit {
        kind: cx.event.kind,
        path: &cx.event.path,
        // Every custom event counts as interaction (see bounce rate).
        interactive: cx.event.interactive,
    };
    let new_id = state.session_ids.next(cx.now_ms);
    state
        .sessions
        .step(cx.site.id, visitor, hit, cx.now_ms, new_id, || {
            dimensions(state, &cx)
        })
}

fn dimensions(state: &AppState, cx: &Context<'_>) -> Dimensions {
    let a = source::attribute(&cx.event.url, cx.event.referrer.as_deref(), &cx.site.domain);
    let agent = useragent::parse(cx.user_agent, cx.event.screen_width);
    let place = state.geo.locate(cx.client_ip, cx.proxy_country.clone());
    let referrer = a
        .referrer_domain
        .as_ref()
        .and(cx.event.referrer.as_deref())
        .and_then(referrer_without_query);
    Dimensions::of(a, referrer, place, agent)
}

/// `https://www.example.com/a/b/?q=secret#x` → `example.com/a/b`: the query
/// may carry personal data and is never stored.
pub(crate) fn referrer_without_query(referrer: &str) -> Option<String> {
    let url = url::Url::parse(referrer).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let path = url.path().trim_end_matches('/');
    Some(format!("{host}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_lose_scheme_www_query_and_fragment() {
        assert_eq!(
            referrer_without_query("https://www.Example.com/a/b/?q=secret#x").as_deref(),
            Some("example.com/a/b")
        );
        assert_eq!(
            referrer_without_query("https://news.ycombinator.com/").as_deref(),
            Some("news.ycombinator.com")
        );
        assert_eq!(referrer_without_query("not a url"), None);
    }
}
