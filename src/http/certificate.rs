//! `POST /api/ssh/certificate`: a bearer credential and an OpenSSH public key line in, an
//! OpenSSH user certificate signed by the gateway's SSH CA out (`text/plain`, one line).

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::handler::text;
use super::{auth, full, Body};
use crate::session::Gateway;

/// The route.
pub(crate) const PATH: &str = "/api/ssh/certificate";

/// A public key line is well under 1 KiB (RSA-4096: ~740 bytes); anything much larger is not one.
const MAX_BODY: usize = 16 * 1024;

/// Handles `POST /api/ssh/certificate`.
pub(crate) async fn handle(gateway: &Gateway, request: hyper::Request<Incoming>) -> Response<Body> {
    if request.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    let credential = auth::credential(
        request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    );
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "expected one OpenSSH public key line",
            )
        }
    };
    let Ok(line) = std::str::from_utf8(&body) else {
        return text(StatusCode::BAD_REQUEST, "the public key is not UTF-8");
    };
    match gateway.issue_ssh_certificate(credential, line).await {
        Ok(issued) => {
            let mut response = Response::new(full(format!("{}\n", issued.line)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
        Err(rejection) => super::handler::reject_with(&rejection, "Bearer realm=\"gitgate\""),
    }
}
