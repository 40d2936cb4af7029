//! The stats API's one error type. Every error is JSON `{"error": "..."}`
//! whose message starts with the parameter (or header) at fault.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// `401`: no token, a malformed header, or an unknown token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// `403`: a share token asking for another site.
    #[error("site: this token may not read that site")]
    Forbidden,
    /// A share token asking for what only an admin token reads.
    #[error("token: {0} needs an admin token (a share token reads figures only)")]
    AdminOnly(&'static str),
    /// `400`: a bad query parameter; `param` names it.
    #[error("{param}: {message}")]
    BadParam {
        param: &'static str,
        message: String,
    },
    /// `503`: the database could not be read.
    #[error("storage is unavailable; retry shortly")]
    Storage,
}

impl StatsError {
    pub fn bad(param: &'static str, message: impl Into<String>) -> Self {
        StatsError::BadParam {
            param,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            StatsError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            StatsError::Forbidden | StatsError::AdminOnly(_) => StatusCode::FORBIDDEN,
            StatsError::BadParam { .. } => StatusCode::BAD_REQUEST,
            StatsError::Storage => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<rusqlite::Error> for StatsError {
    fn from(e: rusqlite::Error) -> Self {
        tracing::error!(error = %e, "stats query failed");
        StatsError::Storage
    }
}

impl From<crate::store::StoreError> for StatsError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "opening a stats reader failed");
        StatsError::Storage
    }
}

impl IntoResponse for StatsError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        let headers = response.headers_mut();
        match status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
