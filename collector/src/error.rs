//! The HTTP boundary's one error type. Turning it into a response has no side
//! effects: counting happens in the handler, logging in middleware.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tallymark_core::validate::ValidationError;
use tallymark_core::wire::WireError;

use crate::store::StoreError;

/// Every way a request can fail, each with its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidPayload(#[from] WireError),
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    #[error("unknown site {0:?}: register it with `tallymark site add`")]
    UnknownSite(String),
    #[error("body: larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body stopped short: the client went away, or did not send it all
    /// within the read timeout.
    #[error("body: not received in full (the client stopped sending or was too slow)")]
    BodyIncomplete,
    /// The content type, or a content encoding, the collector does not read;
    /// the message says what was sent and what to send.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the write queue is full; retry shortly")]
    Overloaded,
    #[error("storage is unavailable; retry shortly")]
    StorageUnavailable,
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::QueueFull => ApiError::Overloaded,
            _ => ApiError::StorageUnavailable,
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidPayload(WireError::BodyTooLarge)
            | ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidPayload(_) | ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::UnknownSite(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BodyIncomplete => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Overloaded | ApiError::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable label for the `events_rejected` metric.
    pub fn label(&self) -> &'static str {
        match self {
            ApiError::InvalidPayload(WireError::BodyTooLarge)
            | ApiError::PayloadTooLarge { .. } => "too_large",
            ApiError::InvalidPayload(_) => "invalid_payload",
            ApiError::Invalid(_) => "invalid_url",
            ApiError::UnknownSite(_) => "unknown_site",
            ApiError::BodyIncomplete => "incomplete_body",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Overloaded => "overloaded",
            ApiError::StorageUnavailable => "storage_unavailable",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
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
