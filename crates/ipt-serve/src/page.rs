//! The demo page: one HTML file with its CSS and JavaScript, compiled into the binary.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

/// The page's source.
const INDEX: &str = include_str!("../assets/index.html");

/// What the page may load: only itself, and images it makes from the user's files.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`.
pub async fn index() -> Response {
    let mut response = Html(INDEX).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
