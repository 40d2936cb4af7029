//! The Tallymark collector: the only crate that knows HTTP, SQL and storage rows.
//!
//! [`app`] builds the whole HTTP surface from an [`AppState`]; `main.rs` only
//! parses flags and binds a socket, so tests drive [`app`] directly.

pub mod assets;
pub mod error;
pub mod ingest;
pub mod store;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<store::Store>,
}

impl AppState {
    pub fn new(store: store::Store) -> Self {
        Self {
            store: Arc::new(store),
        }
    }
}

/// The collector's HTTP surface.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/api/event", post(ingest::event))
        .layer(ingest::cors())
        .route("/js/{file}", get(assets::sdk_file))
        .route("/demo", get(assets::demo))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}
