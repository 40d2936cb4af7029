//! The ingest endpoint, driven through `app()` with `oneshot` on a real SQLite
//! database in a temporary directory.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tallymark_collector::{AppState, app, store::Store};
use tower::ServiceExt;

struct Harness {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    state: AppState,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.sqlite3");
    let state = AppState::new(Store::open(&db).unwrap());
    Harness {
        _dir: dir,
        db,
        state,
    }
}

async fn post(
    h: &Harness,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::post("/api/event");
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let resp = app(h.state.clone())
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    assert!(resp.headers().get(header::SET_COOKIE).is_none());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

fn count(h: &Harness) -> i64 {
    rusqlite::Connection::open(&h.db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

fn error_of(json: &serde_json::Value) -> &str {
    json["error"].as_str().unwrap_or("")
}

const GOOD: &str = r#"{"kind":"pageview","site":"example.com","url":"https://example.com/a","referrer":"https://duckduckgo.com/"}"#;

#[tokio::test]
async fn a_valid_pageview_is_stored_before_the_202() {
    let h = harness();
    for ct in [
        Some("text/plain;charset=UTF-8"),
        Some("application/json"),
        None,
    ] {
        let (status, json) = post(&h, ct, GOOD).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(json, serde_json::json!({"ok": true}));
    }
    assert_eq!(count(&h), 3, "each 202 is already committed");
}

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_problem_and_stores_nothing() {
    let h = harness();
    let (s, j) = post(
        &h,
        Some("text/plain"),
        r#"{"kind":"pageview","site":"example.com","url":"ftp://x/"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(error_of(&j).starts_with("url:"), "{j}");

    let (s, j) = post(&h, Some("text/plain"), "not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(error_of(&j).starts_with("body:"), "{j}");

    let (s, j) = post(&h, Some("application/xml"), GOOD).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(error_of(&j).contains("content-type"), "{j}");

    let (s, j) = post(&h, Some("text/plain"), vec![b' '; 17 * 1024]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_of(&j).contains("16384"), "{j}");

    assert_eq!(count(&h), 0);
}

#[tokio::test]
async fn other_methods_get_405_and_preflight_is_open() {
    let h = harness();
    let resp = app(h.state.clone())
        .oneshot(Request::get("/api/event").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    let resp = app(h.state.clone())
        .oneshot(
            Request::options("/api/event")
                .header(header::ORIGIN, "https://example.com")
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(resp.headers().get(header::SET_COOKIE).is_none());
}
