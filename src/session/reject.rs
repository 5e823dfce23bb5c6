//! The one place that turns what went wrong into what the client is told.
//!
//! Whose fault it is decides the answer: the client's (a 4xx with the reason), the upstream's
//! (502, "upstream failed" and the upstream's name), or ours (500, no internals shown; the
//! details go to the log only).

use crate::identity::AuthError;
use crate::session::route::RouteError;
use crate::session::SessionError;
use crate::upstream::UpstreamError;

/// The class of a refusal; adapters map it onto their transport (HTTP status, SSH exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// No credentials were presented (HTTP 401 with a challenge).
    Unauthenticated,
    /// Credentials were presented and refused (HTTP 401).
    BadCredentials,
    /// Authenticated but not allowed (HTTP 403).
    Forbidden,
    /// No such upstream or repository (HTTP 404).
    NotFound,
    /// The request is malformed (HTTP 400).
    BadRequest,
    /// The request exceeds a configured limit (HTTP 413).
    TooLarge,
    /// The upstream failed (HTTP 502).
    Upstream,
    /// The gateway failed (HTTP 500).
    Internal,
    /// The operation could not be recorded, so it is refused (HTTP 503).
    Unrecorded,
}

impl RejectKind {
    /// The label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::Unauthenticated | RejectKind::BadCredentials => "unauthenticated",
            RejectKind::Forbidden => "denied",
            RejectKind::NotFound | RejectKind::BadRequest | RejectKind::TooLarge => "client_error",
            RejectKind::Upstream => "upstream_error",
            RejectKind::Internal => "error",
            RejectKind::Unrecorded => "unrecorded",
        }
    }
}

/// What the client is told when an operation is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Whose fault, and how the transport should answer.
    pub kind: RejectKind,
    /// One line for the client; never contains credentials or internals.
    pub message: String,
}

impl Rejection {
    /// A rejection of `kind` with `message`.
    pub fn new(kind: RejectKind, message: impl Into<String>) -> Self {
        Rejection {
            kind,
            message: message.into(),
        }
    }
}

impl From<&SessionError> for Rejection {
    fn from(error: &SessionError) -> Self {
        use RejectKind::*;
        match error {
            SessionError::Auth(AuthError::Missing) => {
                Rejection::new(Unauthenticated, "authentication required")
            }
            SessionError::Auth(AuthError::Invalid | AuthError::Refused(_)) => {
                Rejection::new(BadCredentials, "invalid credentials")
            }
            SessionError::Route(e @ RouteError::UnknownUpstream { .. }) => {
                Rejection::new(NotFound, e.to_string())
            }
            SessionError::Route(e @ RouteError::Invalid { .. }) => {
                Rejection::new(BadRequest, e.to_string())
            }
            SessionError::Upstream(UpstreamError::NotFound { .. }) => {
                Rejection::new(NotFound, "repository not found")
            }
            SessionError::Upstream(e) => Rejection::new(Upstream, format!("upstream failed: {e}")),
            SessionError::Proto(e) => Rejection::new(BadRequest, format!("malformed request: {e}")),
            SessionError::Refused { reason } => Rejection::new(BadRequest, reason.clone()),
            SessionError::TooLarge { what, limit } => Rejection::new(
                TooLarge,
                format!("{what} exceeds the gateway's limit of {limit} bytes"),
            ),
            SessionError::Body(e) => {
                Rejection::new(BadRequest, format!("could not read the request: {e}"))
            }
            SessionError::Internal(_) => Rejection::new(Internal, "internal error"),
            SessionError::Unrecorded(_) => Rejection::new(
                Unrecorded,
                "gitgate cannot record this operation right now, so it is refused",
            ),
        }
    }
}
