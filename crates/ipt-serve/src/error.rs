//! [`ApiError`]: every failure as JSON `{"error", "code"}` with a fitting HTTP status.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why a request failed; the server keeps serving after every one.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code: `not_an_image`, `too_large`, `unknown_task`, `busy`, ...
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// Seconds after which a refused request may be tried again (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A failure of `status` with `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    /// A malformed request (400).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Every worker busy and the queue full (503, `Retry-After: retry_after`).
    pub fn busy(retry_after: u64) -> Self {
        let message = "the server is busy restoring other photos; try again shortly";
        Self { retry_after: Some(retry_after), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message) }
    }

    /// The request took longer than the server's limit (503).
    pub fn timed_out(limit: Duration) -> Self {
        let message = format!("the restoration took longer than the server's {} s limit", limit.as_secs_f64());
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", message)
    }

    /// A fault of the server (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<instruct_ipt::Error> for ApiError {
    fn from(error: instruct_ipt::Error) -> Self {
        use instruct_ipt::Error;
        let message = error.to_string();
        match error {
            Error::ReadImage { .. } => Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_an_image", message),
            Error::TooLarge { .. } => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message),
            Error::TaskNotTrained { .. } => Self::bad_request("unknown_task", message),
            _ => Self::internal(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "code": self.code });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
