//! Routes of the smart-HTTP listener:
//! `GET /<repo>/info/refs?service=git-upload-pack|git-receive-pack`,
//! `POST /<repo>/git-upload-pack`, `POST /<repo>/git-receive-pack`, `GET /healthz`, and
//! `POST /api/ssh/certificate` ([`super::certificate`]).
//! Dumb HTTP and anything else get a clear 4xx.

use std::sync::Arc;

use async_compression::tokio::bufread::GzipDecoder;
use futures_util::{StreamExt, TryStreamExt};
use http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, EXPIRES, PRAGMA, WWW_AUTHENTICATE,
};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio_util::io::{ReaderStream, StreamReader};

use super::listener::Conn;
use super::{auth, full, Body};
use crate::git::{ByteStream, Protocol, Service};
use crate::proto;
use crate::session::{Gateway, OpenRequest, RejectKind, Rejection, Transport};

enum Endpoint<'a> {
    InfoRefs(&'a str),
    Rpc(&'a str, Service),
}

/// Handles one request of the git listener.
pub async fn handle(
    gateway: Arc<Gateway>,
    request: hyper::Request<Incoming>,
    conn: Conn,
) -> Response<Body> {
    let path = request.uri().path().to_string();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok");
    }
    if path == super::certificate::PATH {
        return super::certificate::handle(&gateway, request).await;
    }
    let Some(endpoint) = endpoint(&path) else {
        return text(
            StatusCode::NOT_FOUND,
            "not a git smart-HTTP endpoint (dumb HTTP is not supported)",
        );
    };
    match endpoint {
        Endpoint::InfoRefs(repo) => {
            if request.method() != Method::GET && request.method() != Method::HEAD {
                return text(StatusCode::METHOD_NOT_ALLOWED, "use GET for info/refs");
            }
            let Some(service) = query_service(request.uri().query()) else {
                return text(
                    StatusCode::FORBIDDEN,
                    "dumb HTTP is not supported: use a git client with smart HTTP",
                );
            };
            info_refs(&gateway, &request, &conn, repo, service).await
        }
        Endpoint::Rpc(repo, service) => {
            if request.method() != Method::POST {
                return text(StatusCode::METHOD_NOT_ALLOWED, "use POST for git services");
            }
            rpc(&gateway, request, &conn, repo.to_string(), service).await
        }
    }
}

fn endpoint(path: &str) -> Option<Endpoint<'_>> {
    let path = path.strip_prefix('/')?;
    if let Some(repo) = path.strip_suffix("/info/refs") {
        return Some(Endpoint::InfoRefs(repo));
    }
    for service in [Service::UploadPack, Service::ReceivePack] {
        if let Some(repo) = path
            .strip_suffix(service.name())
            .and_then(|r| r.strip_suffix('/'))
        {
            return Some(Endpoint::Rpc(repo, service));
        }
    }
    None
}

fn query_service(query: Option<&str>) -> Option<Service> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "service")
        .and_then(|(_, v)| Service::from_name(v.as_bytes()).ok())
}

fn protocol<B>(request: &hyper::Request<B>) -> Protocol {
    request
        .headers()
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
        .map(Protocol::from_git_protocol)
        .unwrap_or_default()
}

async fn open(
    gateway: &Gateway,
    request: &hyper::Request<impl Sized>,
    conn: &Conn,
    repo: &str,
    service: Service,
) -> Result<crate::session::Session, Rejection> {
    let credential = auth::credential(
        request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    );
    gateway
        .open(OpenRequest {
            credential,
            repo_path: repo,
            service,
            protocol: protocol(request),
            transport: Transport::Http,
            peer: Some(conn.peer),
            session: Some(conn.id.to_string()),
        })
        .await
}

async fn info_refs(
    gateway: &Gateway,
    request: &hyper::Request<Incoming>,
    conn: &Conn,
    repo: &str,
    service: Service,
) -> Response<Body> {
    let session = match open(gateway, request, conn, repo, service).await {
        Ok(s) => s,
        Err(r) => return reject(&r),
    };
    let body = match gateway.advertise(&session).await {
        Ok(b) => b,
        Err(r) => return reject(&r),
    };
    // git http-backend sends the `# service=` header for v0/v1 only; with v2 the capability
    // advertisement comes first (gitprotocol-http, gitprotocol-v2).
    let body = if session.protocol == Protocol::V2 {
        body
    } else {
        let mut header = bytes::BytesMut::new();
        proto::advertisement::encode_service_header(&mut header, service);
        let header = header.freeze();
        Box::pin(futures_util::stream::once(async move { Ok(header) }).chain(body))
    };
    git_response(service.advertisement_content_type(), body)
}

async fn rpc(
    gateway: &Arc<Gateway>,
    request: hyper::Request<Incoming>,
    conn: &Conn,
    repo: String,
    service: Service,
) -> Response<Body> {
    let session = match open(gateway, &request, conn, &repo, service).await {
        Ok(s) => s,
        Err(r) => return reject(&r),
    };
    let expected = service.request_content_type();
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != expected {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("expected Content-Type {expected}"),
        );
    }
    let body = match request_body(request) {
        Ok(b) => b,
        Err(response) => return response,
    };
    let answer = match service {
        Service::UploadPack => gateway.upload_pack(&session, body).await,
        Service::ReceivePack => gateway.receive_pack(&session, body).await,
    };
    match answer {
        Ok(body) => git_response(service.result_content_type(), body),
        Err(r) => reject(&r),
    }
}

/// The request body as a stream, gunzipped when git sent it gzip-encoded (it does for fetch
/// negotiations over 1 KB). Limits apply to the decoded bytes, downstream.
#[allow(clippy::result_large_err)]
fn request_body(request: hyper::Request<Incoming>) -> Result<ByteStream, Response<Body>> {
    let encoding = request
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let raw: ByteStream = Box::pin(
        TryStreamExt::map_err(BodyStream::new(request.into_body()), std::io::Error::other)
            .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) }),
    );
    match encoding.as_deref() {
        None | Some("identity") => Ok(raw),
        Some("gzip") | Some("x-gzip") => {
            let decoder = GzipDecoder::new(StreamReader::new(raw));
            Ok(Box::pin(ReaderStream::new(decoder)))
        }
        Some(other) => Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("unsupported Content-Encoding {other:?}"),
        )),
    }
}

fn git_response(content_type: &str, body: ByteStream) -> Response<Body> {
    let body = BodyExt::boxed_unsync(StreamBody::new(body.map_ok(Frame::data)));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    no_cache(headers);
    response
}

fn no_cache(headers: &mut http::HeaderMap) {
    headers.insert(
        EXPIRES,
        HeaderValue::from_static("Fri, 01 Jan 1980 00:00:00 GMT"),
    );
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
}

/// A plain-text answer; git shows such bodies of 4xx answers as `remote:` lines.
pub(crate) fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(full(format!("{message}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    no_cache(response.headers_mut());
    response
}

/// Maps a session rejection onto HTTP.
fn reject(rejection: &Rejection) -> Response<Body> {
    reject_with(rejection, "Basic realm=\"gitgate\"")
}

/// Maps a session rejection onto HTTP; a 401 carries `challenge` as `WWW-Authenticate`.
pub(super) fn reject_with(rejection: &Rejection, challenge: &'static str) -> Response<Body> {
    let status = match rejection.kind {
        RejectKind::Unauthenticated | RejectKind::BadCredentials => StatusCode::UNAUTHORIZED,
        RejectKind::Forbidden => StatusCode::FORBIDDEN,
        RejectKind::NotFound => StatusCode::NOT_FOUND,
        RejectKind::BadRequest => StatusCode::BAD_REQUEST,
        RejectKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RejectKind::Upstream => StatusCode::BAD_GATEWAY,
        RejectKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        RejectKind::Unrecorded => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut response = text(status, &rejection.message);
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert!(matches!(
            endpoint("/local/a.git/info/refs"),
            Some(Endpoint::InfoRefs("local/a.git"))
        ));
        assert!(matches!(
            endpoint("/local/a/git-receive-pack"),
            Some(Endpoint::Rpc("local/a", Service::ReceivePack))
        ));
        assert!(endpoint("/local/a.git/HEAD").is_none());
        assert!(endpoint("/local/a.git/objects/info/packs").is_none());
        assert!(endpoint("/local/agit-upload-pack").is_none());
    }

    #[test]
    fn services() {
        assert_eq!(
            query_service(Some("service=git-upload-pack")),
            Some(Service::UploadPack)
        );
        assert_eq!(query_service(Some("service=git-shell")), None);
        assert_eq!(query_service(None), None);
    }
}
