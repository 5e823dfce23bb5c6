//! The approvals API of the admin listener:
//!
//! - `GET /api/approvals[?status=pending]`: every approval (JSON array, oldest first);
//! - `GET /api/approvals/{id}`: one approval with `details` (commits, files, diff summary);
//! - `POST /api/approvals/{id}/approve` and `.../deny` with `{"comment": "..."}`.
//!
//! Callers present `Authorization: Bearer <token>`: the admin token (`[admin] token_sha256`;
//! the body may then name the approver in `by`, default `admin`), or a token of an identity
//! in `[approval] approver_groups` (the identity's name is the approver). The requester can
//! never decide their own update.

use std::sync::Arc;

use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::approval::{ApprovalError, Status, Verdict};
use crate::http::{full, Body};
use crate::session::Gateway;

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// The JSON body of a decision.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    comment: Option<String>,
    by: Option<String>,
}

/// Answers one request under `/api/approvals`.
pub async fn approvals(gateway: Arc<Gateway>, request: hyper::Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let method = request.method().as_str().to_string();
    let bearer = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some(bearer) = bearer else {
        let mut r = error(StatusCode::UNAUTHORIZED, "a bearer token is required");
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"gitgate-admin\""),
        );
        return r;
    };
    let rest = path.strip_prefix("/api/approvals").unwrap_or("");
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", []) => {
            if gateway.authorize_approver(&bearer, None).is_none() {
                return forbidden();
            }
            let status = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("status="))
                .map(|s| Status::from_name(s).ok_or(s));
            let status = match status.transpose() {
                Ok(s) => s,
                Err(bad) => {
                    return error(StatusCode::BAD_REQUEST, &format!("unknown status {bad:?}"))
                }
            };
            match gateway.approvals().run(move |s| s.list(status)).await {
                Ok(list) => json_response(StatusCode::OK, &json!(list)),
                Err(e) => internal(&e),
            }
        }
        ("GET", [id]) => {
            if gateway.authorize_approver(&bearer, None).is_none() {
                return forbidden();
            }
            match with_details(&gateway, id).await {
                Ok((Some(a), details)) => {
                    let mut v = json!(a);
                    if let Some(obj) = v.as_object_mut() {
                        obj.insert("details".into(), details.unwrap_or(Value::Null));
                    }
                    json_response(StatusCode::OK, &v)
                }
                Ok((None, _)) => error(StatusCode::NOT_FOUND, "no such approval"),
                Err(e) => internal(&e),
            }
        }
        ("POST", [id, action]) => {
            let verdict = match *action {
                "approve" => Verdict::Approve,
                "deny" => Verdict::Deny,
                _ => return error(StatusCode::NOT_FOUND, "not found"),
            };
            let id = id.to_string();
            let body = match read_body(request).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let Some(approver) = gateway.authorize_approver(&bearer, body.by.as_deref()) else {
                return forbidden();
            };
            match gateway
                .decide_approval(&id, verdict, &approver.name, body.comment)
                .await
            {
                Ok(a) => json_response(StatusCode::OK, &json!(a)),
                Err(e) => decision_error(&e),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Approval `id` (`None`: no such approval, or not a valid id) with what a reviewer sees of it.
pub(super) async fn with_details(
    gateway: &Gateway,
    id: &str,
) -> Result<(Option<crate::approval::Approval>, Option<Value>), ApprovalError> {
    if !crate::approval::valid_id(id) {
        return Ok((None, None));
    }
    let id = id.to_string();
    gateway
        .approvals()
        .run(move |s| Ok((s.get(&id)?, s.details(&id).ok())))
        .await
}

async fn read_body(request: hyper::Request<Incoming>) -> Result<DecisionBody, Response<Body>> {
    let limited = http_body_util::Limited::new(request.into_body(), MAX_BODY);
    let bytes = match limited.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is too large or unreadable",
            ))
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(DecisionBody::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("expected {{\"comment\": \"...\"}}: {e}"),
        )
    })
}

fn decision_error(e: &ApprovalError) -> Response<Body> {
    match decision_status(e) {
        Some(status) => error(status, &e.to_string()),
        None => internal(e),
    }
}

/// The HTTP status of a refused decision, `None` for the gateway's own failures.
pub(super) fn decision_status(e: &ApprovalError) -> Option<StatusCode> {
    match e {
        ApprovalError::Unknown { .. } | ApprovalError::BadId { .. } => Some(StatusCode::NOT_FOUND),
        ApprovalError::AlreadyDecided { .. } => Some(StatusCode::CONFLICT),
        ApprovalError::SelfApproval { .. } => Some(StatusCode::FORBIDDEN),
        ApprovalError::BadApprover => Some(StatusCode::BAD_REQUEST),
        _ => None,
    }
}

fn forbidden() -> Response<Body> {
    error(
        StatusCode::FORBIDDEN,
        "this token may not see or decide approvals",
    )
}

fn internal(e: &ApprovalError) -> Response<Body> {
    tracing::error!(error = %e, "admin API: approvals store failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &json!({ "error": message }))
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut text = value.to_string();
    text.push('\n');
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
