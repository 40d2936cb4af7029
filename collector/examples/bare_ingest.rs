//! The ingest benchmark's baseline: a bare axum handler that parses the same
//! JSON and answers 202, with nothing stored. `cargo xtask bench ingest`
//! measures `tallymark serve` against it in the same run.

use std::io::Write;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route(
        "/api/event",
        post(|body: Bytes| async move {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(_) => (StatusCode::ACCEPTED, r#"{"ok":true}"#),
                Err(_) => (StatusCode::BAD_REQUEST, r#"{"error":"body"}"#),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    axum::serve(listener, app).await
}
