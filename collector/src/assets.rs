//! Static files the collector serves: the SDK's script-tag bundle (embedded at
//! build time by `build.rs`) and the demo page.

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;

static SCRIPT_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tallymark.js"));
static SCRIPT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tallymark.wasm"));
static DEMO_HTML: &str = include_str!("../assets/demo.html");

/// The script's own URL never changes (site owners paste it once), so it is
/// cached for a day and revalidated in the background for a week after.
const SCRIPT_CACHE: &str = "public, max-age=86400, stale-while-revalidate=604800";
/// The script asks for `tallymark.wasm?v=<hash of its bytes>` (xtask bakes the
/// hash in), so a versioned wasm URL names exactly one content: cached for a
/// year, immutable.
const VERSIONED_CACHE: &str = "public, max-age=31536000, immutable";
/// A `v=` that is not this build's (an old or newer script during a deploy
/// or rollback): served, but never cached under a URL it does not name.
const MISMATCH_CACHE: &str = "no-cache";

/// The wasm version the embedded script asks for (`tallymark.wasm?v=…`).
static WASM_VERSION: std::sync::LazyLock<Option<&'static str>> = std::sync::LazyLock::new(|| {
    let script = std::str::from_utf8(SCRIPT_JS).ok()?;
    let (_, rest) = script.split_once("tallymark.wasm?v=")?;
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    rest.get(..end).filter(|v| !v.is_empty())
});

/// `GET /js/{file}`: the script-tag bundle.
pub async fn sdk_file(
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (bytes, mime, cache) = match file.as_str() {
        "tallymark.js" => (SCRIPT_JS, "text/javascript; charset=utf-8", SCRIPT_CACHE),
        "tallymark.wasm" => {
            let asked = query.as_deref().and_then(|q| q.strip_prefix("v="));
            let cache = match asked {
                None => SCRIPT_CACHE,
                Some(v) if Some(v) == *WASM_VERSION => VERSIONED_CACHE,
                Some(_) => MISMATCH_CACHE,
            };
            (SCRIPT_WASM, "application/wasm", cache)
        }
        _ => return Err(ApiError::NotFound("no such SDK file")),
    };
    if bytes.is_empty() {
        return Err(ApiError::NotFound(
            "the SDK was not built into this binary; build it with `cargo xtask run`",
        ));
    }
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Sites load the script and its wasm from the collector's origin.
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(response)
}

/// `GET /demo`: a page that loads the SDK with a script tag and sends a
/// page view on load, one per in-page navigation and a custom event per
/// button click.
pub async fn demo() -> Html<&'static str> {
    Html(DEMO_HTML)
}
