//! The Tallymark browser beacon: the payload engine, compiled to WASM.
//!
//! Rust owns every decision about *what* is sent: whether the beacon is on
//! (`localhost`, `localStorage.tallymark_ignore`), whether a page view is a
//! repeat of the last one (no double count for the same URL), and the body
//! itself, built with the core wire type [`PayloadV1`], checked with
//! [`PayloadV1::check_limits`] and encoded with [`PayloadV1::to_json`] — the
//! same code the collector parses and checks with, so the two can never
//! disagree.
//!
//! The thin JavaScript host (`js/host.js`, shared by the script tag and the
//! npm package) owns *when* and *how*: reading the script tag or `init`
//! options, the history/popstate/hashchange/prerender/click hooks, and the
//! transport (`navigator.sendBeacon`, text/plain, falling back to
//! `fetch(…, {keepalive: true, priority: 'low'})`), all inside `try`.
//!
//! Size choices (measured, see BENCHMARKS.md and /work/shared/notes):
//! - no web-sys/js-sys and no imports at all: every value crosses the
//!   boundary as a string, number or bool, and the body comes back as a
//!   string. Each import costs glue; web-sys/js-sys cost 1–2 KB gz.
//! - no serde-wasm-bindgen: props arrive one at a time through [`prop`]
//!   (see BENCHMARKS.md for its measured cost);
//! - three exports ([`start`], [`prop`], [`send`]): each costs glue;
//! - `lol_alloc`'s free-list allocator instead of dlmalloc (~7 KB);
//! - no `format!` and no `unwrap`: nothing here can panic (and the
//!   `wasm-release` profile aborts on panic, which traps inside WASM; the host
//!   catches it, so it never reaches the page).

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::borrow::ToOwned;
use alloc::string::String;
use core::cell::RefCell;

use tallymark_core::wire::{
    Kind, MAX_ENGAGED_MS, MAX_PROPS, MAX_URL_BYTES, PayloadV1, PropValue, Props, Revenue,
};
use wasm_bindgen::prelude::*;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
// SAFETY: wasm32-unknown-unknown without the atomics feature has exactly one
// thread, which is what `AssumeSingleThreaded` requires.
static ALLOC: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

/// `start` flag: count `#fragment` changes as page views (hash routing).
pub const HASH: u32 = 1;
/// `start` flag: send from `localhost` and loopback addresses too.
pub const ALLOW_LOCALHOST: u32 = 2;

struct State {
    site: String,
    on: bool,
    hash: bool,
    /// The last page view's URL (without the fragment unless hash routing).
    last: String,
    /// Properties collected for the next [`event`]; `None` once one was
    /// refused (nested value), which refuses the whole event.
    props: Option<Props>,
}

const INITIAL: State = State {
    site: String::new(),
    on: false,
    hash: false,
    last: String::new(),
    props: None,
};

// In WASM a plain static, not `thread_local!`: that needs std, whose panic
// machinery pulls in `core::fmt` (~4 KB), and its lazy init costs ~2.5 KB.
#[cfg(target_arch = "wasm32")]
struct Global(RefCell<State>);
// SAFETY: wasm32-unknown-unknown without the atomics feature (refused below)
// has exactly one thread, so the state is never shared between threads.
#[cfg(target_arch = "wasm32")]
unsafe impl Sync for Global {}
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
compile_error!("the SDK's state assumes single-threaded WASM");
#[cfg(target_arch = "wasm32")]
static STATE: Global = Global(RefCell::new(INITIAL));

// Native builds (the unit tests run on many threads): one state per thread.
#[cfg(not(target_arch = "wasm32"))]
std::thread_local! {
    static STATE: RefCell<State> = const { RefCell::new(INITIAL) };
}

/// Runs `f` on the state; does nothing if it is already borrowed (it never
/// is: nothing here calls back into JS).
fn with<R: Default>(f: impl FnOnce(&mut State) -> R) -> R {
    let run = |s: &RefCell<State>| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => R::default(),
    };
    #[cfg(target_arch = "wasm32")]
    return run(&STATE.0);
    #[cfg(not(target_arch = "wasm32"))]
    STATE.with(run)
}

/// `#![no_std]` in WASM, so the panic handler is ours: trap. Nothing here
/// should panic; if it does, the trap surfaces as a JS exception that the
/// host catches. Not formatting the message keeps `core::fmt` out (~4 KB).
#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// Configures the beacon for `site`. `hostname` is `location.hostname`;
/// `ignore` is whether `localStorage.tallymark_ignore` is `"true"` (read by
/// the host, never written). Returns whether anything will be sent.
#[wasm_bindgen]
pub fn start(site: String, hostname: &str, ignore: bool, flags: u32) -> bool {
    with(|s| {
        s.on = !site.is_empty() && !ignore && (flags & ALLOW_LOCALHOST != 0 || !is_local(hostname));
        s.site = site;
        s.hash = flags & HASH != 0;
        s.last.clear();
        s.props = Some(Props::new());
        s.on
    })
}

/// The body to send, or `None` (nothing to send): a page view of `url`
/// when `name` is `None`, else custom event `name` (see [`event`]). One
/// export for both: every export costs glue in the script tag.
/// `flag` says, for a page view, that it comes from
/// `history.replaceState`; for a custom event, that it is not interactive
/// (`track(name, props, {interactive: false})`). One argument for both, as
/// one export for both: glue size.
#[wasm_bindgen]
pub fn send(
    name: Option<String>,
    url: &str,
    referrer: &str,
    width: u32,
    amount: f64,
    currency: Option<String>,
    flag: bool,
) -> Option<String> {
    match name {
        None => page(url, referrer, width, flag),
        Some(name) => event(name, url, referrer, width, amount, currency, !flag),
    }
}

/// The body of an engagement event for the view of `url`: `ms`
/// milliseconds the page was visible and focused since the view (or since
/// the last engagement sent), `depth` the deepest it was seen, in percent.
/// `None` when the beacon is off.
#[wasm_bindgen]
pub fn engage(url: &str, ms: u32, depth: u32) -> Option<String> {
    with(|s| {
        if !s.on {
            return None;
        }
        let mut p = payload(s, Kind::Engagement, page_url(url, s.hash), "", 0);
        p.engaged_ms = Some(ms.min(MAX_ENGAGED_MS));
        p.scroll_depth = (depth > 0).then_some(depth.min(100) as u8);
        body(&p)
    })
}

/// `kind` of [`prop`]: the value is `text`.
pub const PROP_STR: u32 = 0;
/// `kind` of [`prop`]: the value is the number `num`.
pub const PROP_NUM: u32 = 1;
/// `kind` of [`prop`]: the value is the boolean `num != 0`.
pub const PROP_BOOL: u32 = 2;
/// `kind` of [`prop`]: the value was an object, array or function, which the
/// wire format does not carry; the next event is refused.
pub const PROP_BAD: u32 = 3;

/// Adds property `key` to the next [`event`]; `kind` says which argument
/// holds the value. One export for every type (glue size, as [`send`]).
#[wasm_bindgen]
pub fn prop(key: String, text: Option<String>, num: f64, kind: u32) {
    match (kind, text) {
        (PROP_STR, Some(text)) => add_prop(key, PropValue::String(text)),
        (PROP_NUM, _) => add_prop(key, PropValue::Number(num)),
        (PROP_BOOL, _) => add_prop(key, PropValue::Bool(num != 0.0)),
        _ => prop_bad(),
    }
}

/// The body of a page view of `url`, or `None` when the beacon is off, the
/// URL is the one last counted, or the payload breaks a core limit. A
/// `replace` (`history.replaceState`) that keeps the path (an app dropping
/// its `utm_*` query or a trailing slash after reading it) is the same page
/// view, not a new one.
pub fn page(url: &str, referrer: &str, width: u32, replace: bool) -> Option<String> {
    with(|s| {
        if !s.on {
            return None;
        }
        let sent = page_url(url, s.hash);
        // With hash routing, a jump to an in-page anchor is no navigation
        // (the first view of a page opened on one still counts).
        if s.hash && sent.len() < url.len() && !s.last.is_empty() {
            return None;
        }
        let url = sent;
        let same = url == s.last || (replace && path_key(url) == path_key(&s.last));
        s.last.clear();
        s.last.push_str(url);
        if same {
            return None;
        }
        let p = payload(s, Kind::Pageview, url, referrer, width);
        body(&p)
    })
}

/// `url` as sent: without its fragment, unless hash routing is on and the
/// fragment is a route (`#/…`, `#!/…`, the collector's rule too). An anchor
/// is not a page, and a fragment can carry secrets (`#access_token=…`).
fn page_url(url: &str, hash: bool) -> &str {
    match cut_at(url, b'#') {
        (before, Some(fragment))
            if !(hash && (fragment.starts_with('/') || fragment.starts_with("!/"))) =>
        {
            before
        }
        _ => url,
    }
}

/// What the collector keeps of a URL's path: no query, no trailing slash,
/// for the document and for a route fragment alike.
fn path_key(url: &str) -> (&str, &str) {
    let (doc, route) = cut_at(url, b'#');
    let doc = no_slash(cut_at(doc, b'?').0);
    let route = no_slash(cut_at(route.unwrap_or_default(), b'?').0);
    (doc, route)
}

/// `s` without trailing `/` (by hand for size, as [`cut_at`]).
fn no_slash(s: &str) -> &str {
    let mut end = s.len();
    while end > 0 && s.as_bytes().get(end - 1) == Some(&b'/') {
        end -= 1;
    }
    s.get(..end).unwrap_or(s)
}

/// `s` before the first byte `c` (ASCII), and what follows it, if any. By
/// hand rather than `str::split_once`/`find`: their pattern searchers cost
/// ~0.5 KB gz of wasm (measured).
fn cut_at(s: &str, c: u8) -> (&str, Option<&str>) {
    match s.bytes().position(|b| b == c) {
        Some(i) => (s.get(..i).unwrap_or(s), s.get(i + 1..)),
        None => (s, None),
    }
}

fn prop_bad() {
    with(|s| s.props = None);
}

fn add_prop(key: String, value: PropValue) {
    with(|s| {
        if let Some(props) = &mut s.props {
            // Bounded: more than the limit is refused by `check_limits`
            // anyway, so stop growing one past it.
            if props.len() <= MAX_PROPS {
                props.insert(key, value);
            }
        }
    });
}

/// The body of custom event `name` with the properties added since the last
/// event, and revenue when `currency` is given; `interactive: false` when it
/// is not an interaction (a visit with it and one view is still a bounce).
/// `None` when the beacon is
/// off or the event breaks a core limit (bad props, name, revenue): an
/// invalid event is dropped here, never sent to be refused.
pub fn event(
    name: String,
    url: &str,
    referrer: &str,
    width: u32,
    amount: f64,
    currency: Option<String>,
    interactive: bool,
) -> Option<String> {
    with(|s| {
        let props = s.props.replace(Props::new());
        if !s.on {
            return None;
        }
        let props = props?;
        let mut p = payload(s, Kind::Event, page_url(url, s.hash), referrer, width);
        p.name = Some(name);
        p.props = (!props.is_empty()).then_some(props);
        // Upper case, as the collector reads it (`usd` from Stripe is USD).
        p.revenue = currency.map(|mut currency| {
            currency.make_ascii_uppercase();
            Revenue { amount, currency }
        });
        p.interactive = (!interactive).then_some(false);
        body(&p)
    })
}

fn payload(s: &State, kind: Kind, url: &str, referrer: &str, width: u32) -> PayloadV1 {
    let mut p = PayloadV1::pageview(s.site.as_str(), cut(url));
    p.kind = kind;
    // A referrer too long to carry is left out rather than losing the event.
    p.referrer =
        (!referrer.is_empty() && referrer.len() <= MAX_URL_BYTES).then(|| referrer.to_owned());
    p.screen_width = (width > 0).then_some(width);
    p
}

/// A URL longer than the limit (long tracking queries) is cut at the limit,
/// on a character boundary, so the view still counts.
fn cut(url: &str) -> &str {
    let mut end = url.len().min(MAX_URL_BYTES);
    while !url.is_char_boundary(end) {
        end -= 1;
    }
    url.get(..end).unwrap_or_default()
}

fn body(p: &PayloadV1) -> Option<String> {
    p.check_limits().is_ok().then(|| p.to_json())
}

/// `localhost`, `*.localhost`, loopback IPv4 and `[::1]`: a developer's own
/// machine, skipped unless allowed.
fn is_local(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.starts_with("127.")
        || host == "[::1]"
        || host.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://example.com/a";

    #[test]
    fn same_url_is_counted_once_and_hash_only_with_hash_routing() {
        assert!(start("example.com".into(), "example.com", false, 0));
        assert!(page(URL, "", 1280, false).is_some());
        assert!(page(URL, "", 1280, false).is_none(), "same URL again");
        assert!(page("https://example.com/a#x", "", 1280, false).is_none());
        assert!(send(None, "https://example.com/b", "", 1280, 0.0, None, false).is_some());
        start("example.com".into(), "example.com", false, HASH);
        assert!(page(URL, "", 0, false).is_some());
        assert!(page("https://example.com/a#/x", "", 0, false).is_some());
        assert!(page("https://example.com/a#!/y", "", 0, false).is_some());
        // An anchor is not a route, even with hash routing.
        assert!(page("https://example.com/a#install", "", 0, false).is_none());
        assert!(page("https://example.com/a#!/y", "", 0, false).is_none());
        assert!(page("https://example.com/b", "", 0, false).is_some());
        start("example.com".into(), "example.com", false, HASH);
        let first = page("https://example.com/a#usage", "", 0, false).unwrap_or_default();
        assert!(
            first.contains(r#""url":"https://example.com/a""#),
            "{first}"
        );
    }

    #[test]
    fn fragments_are_not_sent_unless_they_are_routes() {
        start("example.com".into(), "example.com", false, 0);
        let body = page("https://example.com/r#/reset?token=SECRET", "", 0, false);
        let body = body.unwrap_or_default();
        assert!(body.contains(r#""url":"https://example.com/r""#), "{body}");
        let body = event(
            "x".into(),
            "https://example.com/r#access_token=S",
            "",
            1,
            0.0,
            None,
            true,
        );
        assert!(!body.unwrap_or_default().contains("S"));
        start("example.com".into(), "example.com", false, HASH);
        let body = page("https://example.com/r#/settings", "", 0, false).unwrap_or_default();
        assert!(body.contains("https://example.com/r#/settings"), "{body}");
    }

    #[test]
    fn a_replace_that_keeps_the_path_is_the_same_view() {
        start("example.com".into(), "example.com", false, 0);
        assert!(page("https://example.com/landing?utm_source=mail", "", 0, false).is_some());
        assert!(page("https://example.com/landing", "", 0, true).is_none());
        assert!(page("https://example.com/docs/", "", 0, false).is_some());
        assert!(page("https://example.com/docs", "", 0, true).is_none());
        assert!(
            page("https://example.com/other", "", 0, true).is_some(),
            "new path"
        );
        // A pushState to another query is a new view (a search page).
        assert!(page("https://example.com/s?q=a", "", 0, false).is_some());
        assert!(page("https://example.com/s?q=b", "", 0, false).is_some());
        // And the replace updated what counts as the last URL.
        assert!(page("https://example.com/s?q=c", "", 0, true).is_none());
        assert!(page("https://example.com/s?q=c", "", 0, false).is_none());
    }

    #[test]
    fn localhost_and_ignore_switch_it_off() {
        assert!(!start("localhost".into(), "localhost", false, 0));
        assert!(page("http://localhost/", "", 1, false).is_none());
        assert!(start(
            "localhost".into(),
            "localhost",
            false,
            ALLOW_LOCALHOST
        ));
        assert!(!start("example.com".into(), "example.com", true, 0));
        assert!(!start("example.com".into(), "127.0.0.1", false, 0));
    }

    #[test]
    fn events_carry_props_and_bad_ones_are_dropped() {
        start("example.com".into(), "example.com", false, 0);
        prop("plan".into(), Some("pro".into()), 0.0, PROP_STR);
        prop("seats".into(), None, 3.0, PROP_NUM);
        prop("trial".into(), None, 1.0, PROP_BOOL);
        let body = event(
            "Signup".into(),
            URL,
            "",
            800,
            19.0,
            Some("EUR".into()),
            true,
        );
        let body = body.unwrap_or_default();
        assert!(
            body.contains(r#""props":{"plan":"pro","seats":3,"trial":true}"#),
            "{body}"
        );
        assert!(
            body.contains(r#""revenue":{"amount":19,"currency":"EUR"}"#),
            "{body}"
        );
        assert!(body.contains(r#""screen_width":800"#), "{body}");
        prop("nested".into(), None, 0.0, PROP_BAD);
        assert!(send(Some("x".into()), URL, "", 1, 0.0, None, false).is_none());
        assert!(
            event("x".into(), URL, "", 1, 0.0, None, true).is_some(),
            "props reset"
        );
        assert!(event("x".into(), URL, "", 1, 1.0, Some("EURO".into()), true).is_none());
        let usd = event("x".into(), URL, "", 1, 1.0, Some("usd".into()), true).unwrap_or_default();
        assert!(usd.contains(r#""currency":"USD""#), "{usd}");
        assert!(event(" ".into(), URL, "", 1, 0.0, None, true).is_none());
        prop("n".into(), None, f64::NAN, PROP_NUM);
        assert!(event("x".into(), URL, "", 1, 0.0, None, true).is_none());
        // `{interactive: false}` arrives as `send`'s flag.
        let quiet = send(Some("Scrolled".into()), URL, "", 1, 0.0, None, true).unwrap_or_default();
        assert!(quiet.ends_with(r#","interactive":false}"#), "{quiet}");
        let loud = send(Some("Clicked".into()), URL, "", 1, 0.0, None, false).unwrap_or_default();
        assert!(!loud.contains("interactive"), "{loud}");
    }

    #[test]
    fn engagement_bodies_carry_time_and_depth() {
        start("example.com".into(), "example.com", false, 0);
        let body = engage("https://example.com/a#access_token=S", 4200, 73).unwrap_or_default();
        assert!(
            body.starts_with(
                r#"{"kind":"engagement","site":"example.com","url":"https://example.com/a""#
            ),
            "{body}"
        );
        assert!(
            body.ends_with(r#","engaged_ms":4200,"scroll_depth":73}"#),
            "{body}"
        );
        let body = engage("https://example.com/a", u32::MAX, 0).unwrap_or_default();
        assert!(body.ends_with(r#","engaged_ms":86400000}"#), "{body}");
        assert!(!start("localhost".into(), "localhost", false, 0));
        assert!(
            engage("http://localhost/", 1000, 10).is_none(),
            "off: nothing"
        );
    }

    #[test]
    fn long_urls_are_cut_and_long_referrers_left_out() {
        start("example.com".into(), "example.com", false, 0);
        let long = std::format!("{URL}?q={}", "é".repeat(MAX_URL_BYTES));
        let body = page(&long, &long, 1, false).unwrap_or_default();
        assert!(!body.is_empty() && !body.contains("referrer"));
    }
}
