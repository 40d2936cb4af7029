//! Static files the collector serves: the SDK's script-tag bundle (embedded at
//! build time by `build.rs`) and the demo page.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;

static SCRIPT_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tallymark.js"));
static SCRIPT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tallymark.wasm"));
static DEMO_HTML: &str = include_str!("../assets/demo.html");

/// `GET /js/{file}`: the script-tag bundle.
pub async fn sdk_file(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (bytes, mime) = match file.as_str() {
        "tallymark.js" => (SCRIPT_JS, "text/javascript; charset=utf-8"),
        "tallymark.wasm" => (SCRIPT_WASM, "application/wasm"),
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
    // Not immutable: the names carry no content hash, so a new release must be
    // picked up within the hour.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(response)
}

/// `GET /demo`: a page that loads the SDK with a script tag.
pub async fn demo() -> Html<&'static str> {
    Html(DEMO_HTML)
}
