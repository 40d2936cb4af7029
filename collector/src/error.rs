//! The HTTP boundary's one error type. Turning it into a response has no side
//! effects: logging and counting happen in the handlers' callers and middleware.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tallymark_core::wire::WireError;

/// Every way a request can fail, each with its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidPayload(#[from] WireError),
    #[error("body: larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("content-type: expected application/json or text/plain")]
    UnsupportedMediaType,
    #[error("body: could not be read")]
    BodyUnreadable,
    #[error("the write queue is full; retry shortly")]
    Overloaded,
    #[error("storage is unavailable")]
    StorageUnavailable,
    #[error("not found: {0}")]
    NotFound(&'static str),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidPayload(WireError::BodyTooLarge)
            | ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidPayload(_) | ApiError::BodyUnreadable => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Overloaded | ApiError::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
