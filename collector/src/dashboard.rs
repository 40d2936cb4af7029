//! The dashboard: one static page (`collector/dashboard/`, embedded at build
//! time) that reads the stats API with the token the user pastes. It holds
//! no state of its own and no secret: the server side is these few files
//! and the `/api/v1/sites` and `/api/v1/stats/*` endpoints it calls.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use tallymark_core::useragent;

use crate::AppState;

const HTML: &str = include_str!("../dashboard/index.html");
const JS: &str = include_str!("../dashboard/dashboard.js");
const CSS: &str = include_str!("../dashboard/dashboard.css");
const ICON: &str = include_str!("../dashboard/favicon.svg");

/// Only this origin's own files and API: no inline script or style, no
/// third-party request, not framed by another site.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// `/` → `/dashboard`, and the dashboard's files.
pub fn router() -> Router<AppState> {
    Router::new()
        // Relative, like every path the page uses: behind a proxy that maps
        // a prefix (`/stats/` → `/`) the dashboard works under the prefix.
        .route("/", get(|| async { Redirect::to("dashboard") }))
        .route(
            "/dashboard",
            get(|| async { file(HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/dashboard/dashboard.js",
            get(|| async { file(JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/dashboard/dashboard.css",
            get(|| async { file(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/dashboard/favicon.svg",
            get(|| async { file(ICON, "image/svg+xml") }),
        )
        .route("/dashboard/labels.json", get(labels))
}

/// Display names of the values stored as labels (`macos` → `macOS`), from
/// core's enums: the dashboard shows these and filters by the labels.
async fn labels() -> Response {
    let body: serde_json::Map<String, serde_json::Value> = useragent::CLOSED_DIMENSIONS
        .iter()
        .map(|dimension| {
            let names: serde_json::Map<String, serde_json::Value> = useragent::names(dimension)
                .unwrap_or_default()
                .into_iter()
                .map(|(label, title)| (label.to_string(), title.into()))
                .collect();
            (dimension.to_string(), names.into())
        })
        .collect();
    file(
        serde_json::Value::from(body).to_string(),
        "application/json",
    )
}

fn file(body: impl IntoResponse, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Small files that change with the binary: revalidate each time.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
