//! Routes of the admin listener.

use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::{full, Body};
use crate::session::Gateway;

/// Handles one request of the admin listener: `GET /metrics`, `GET /healthz`, the
/// approvals API under `/api/approvals` ([`super::api`]) and the review pages under
/// `/approvals` ([`super::ui`]).
pub async fn handle(
    gateway: Arc<Gateway>,
    request: hyper::Request<Incoming>,
    _conn: crate::http::listener::Conn,
) -> Response<Body> {
    let path = request.uri().path();
    if path == "/api/approvals" || path.starts_with("/api/approvals/") {
        return super::api::approvals(gateway, request).await;
    }
    if super::ui::is_page(path) {
        return super::ui::page(gateway, request).await;
    }
    let metrics = gateway.metrics();
    let (status, content_type, body) = match (request.method().as_str(), request.uri().path()) {
        ("GET", "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        ("GET", "/healthz") => (StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n".into(),
        ),
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
