//! The smart-HTTP adapter (gitprotocol-http): translates HTTP requests into session calls and
//! session answers into HTTP responses. No policy, no git logic beyond the URL shapes.

mod auth;
mod certificate;
mod handler;
pub mod listener;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;

pub use handler::handle;

/// The response body type of every listener: a boxed stream of bytes.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A complete response body.
pub fn full(text: impl Into<Bytes>) -> Body {
    use http_body_util::BodyExt;
    http_body_util::Full::new(text.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
