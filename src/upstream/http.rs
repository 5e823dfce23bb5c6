//! `http://` and `https://` upstreams: smart-HTTP (gitprotocol-http) with the vaulted Basic
//! credential. The client's own `Authorization` never travels upstream; redirects are not
//! followed (a redirect could carry the credential elsewhere).

use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{stream, StreamExt, TryStreamExt};
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use url::Url;

use super::mirror::{MirrorAuth, Mirrors};
use super::{UpstreamError, UpstreamSetupError};
use crate::config::HttpCredential;
use crate::git::{ByteStream, Protocol, Service};
use crate::proto::advertisement::{detect_service_header, ServiceHeader};

/// The user agent sent upstream. Forges key smart-HTTP behaviour on a `git/` prefix.
const USER_AGENT: &str = concat!("git/2.47 (gitgate/", env!("CARGO_PKG_VERSION"), ")");

/// A smart-HTTP upstream.
pub struct HttpUpstream {
    name: String,
    base: Url,
    credential: Option<HttpCredential>,
    client: reqwest::Client,
    mirrors: Mirrors,
}

impl HttpUpstream {
    /// Builds the client for `base`, trusting the extra roots of `ca_file` when given.
    pub fn new(
        name: String,
        base: Url,
        credential: Option<HttpCredential>,
        ca_file: Option<&Path>,
        mirrors_root: PathBuf,
    ) -> Result<Self, UpstreamSetupError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(15))
            .user_agent(USER_AGENT)
            .http1_only();
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|e| UpstreamSetupError::CaFile {
                upstream: name.clone(),
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                UpstreamSetupError::CaFile {
                    upstream: name.clone(),
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                }
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| UpstreamSetupError::Client {
            upstream: name.clone(),
            detail: e.to_string(),
        })?;
        Ok(HttpUpstream {
            mirrors: Mirrors::new(name.clone(), mirrors_root),
            name,
            base,
            credential,
            client,
        })
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Refreshes the mirror of `path` and returns its git dir. With `since` and the `tips` of
    /// an advertisement made then, no fetch runs when the mirror holds them all.
    pub async fn history(
        &self,
        path: &str,
        since: Option<std::time::Instant>,
        tips: Option<&[String]>,
    ) -> Result<PathBuf, UpstreamError> {
        let url = self.url(path, &[])?;
        let auth = MirrorAuth::Http(self.credential.as_ref());
        self.mirrors.history(path, &url, &auth, since, tips).await
    }

    /// The mirror of this upstream.
    pub(crate) fn mirrors(&self) -> &super::mirror::Mirrors {
        &self.mirrors
    }

    fn url(&self, path: &str, tail: &[&str]) -> Result<Url, UpstreamError> {
        let mut url = self.base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| UpstreamError::Protocol {
                    upstream: self.name.clone(),
                    detail: "base URL cannot carry a path".into(),
                })?;
            segments.pop_if_empty();
            segments.extend(path.split('/'));
            segments.extend(tail);
        }
        Ok(url)
    }

    fn request(
        &self,
        method: reqwest::Method,
        url: Url,
        protocol: Protocol,
    ) -> reqwest::RequestBuilder {
        let mut req = self.client.request(method, url);
        if let Some(p) = protocol.parameter() {
            req = req.header("Git-Protocol", p);
        }
        if let Some(c) = &self.credential {
            req = req.basic_auth(&c.username, Some(c.password.expose()));
        }
        req
    }

    /// `GET <base>/<path>/info/refs?service=git-<service>`.
    pub async fn advertise(
        &self,
        path: &str,
        service: Service,
        protocol: Protocol,
    ) -> Result<ByteStream, UpstreamError> {
        let mut url = self.url(path, &["info", "refs"])?;
        url.set_query(Some(&format!("service={}", service.name())));
        let response = self
            .request(reqwest::Method::GET, url, protocol)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let response = self.check(response, path)?;
        self.check_content_type(&response, service.advertisement_content_type())?;
        Ok(strip_service_header(into_stream(response)))
    }

    /// `POST <base>/<path>/git-<service>` with the request body streamed.
    pub async fn rpc(
        &self,
        path: &str,
        service: Service,
        protocol: Protocol,
        body: ByteStream,
    ) -> Result<ByteStream, UpstreamError> {
        let url = self.url(path, &[service.name()])?;
        let response = self
            .request(reqwest::Method::POST, url, protocol)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static(service.request_content_type()),
            )
            .header(
                "Accept",
                HeaderValue::from_static(service.result_content_type()),
            )
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let response = self.check(response, path)?;
        self.check_content_type(&response, service.result_content_type())?;
        Ok(into_stream(response))
    }

    fn unreachable(&self, e: &reqwest::Error) -> UpstreamError {
        // reqwest's Display includes the URL; ours never carries credentials (they go in a
        // header), but keep only the error kind chain to stay terse.
        let mut detail = e.without_url_ref_string();
        if detail.is_empty() {
            detail = "request failed".into();
        }
        UpstreamError::Unreachable {
            upstream: self.name.clone(),
            detail,
        }
    }

    fn check(
        &self,
        response: reqwest::Response,
        path: &str,
    ) -> Result<reqwest::Response, UpstreamError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(match status.as_u16() {
            401 | 403 => UpstreamError::Unauthorized {
                upstream: self.name.clone(),
                status: status.as_u16(),
            },
            404 => UpstreamError::NotFound {
                upstream: self.name.clone(),
                repo: path.to_string(),
            },
            code => UpstreamError::Status {
                upstream: self.name.clone(),
                status: code,
            },
        })
    }

    fn check_content_type(
        &self,
        response: &reqwest::Response,
        expected: &str,
    ) -> Result<(), UpstreamError> {
        let actual = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if actual.split(';').next().map(str::trim) == Some(expected) {
            Ok(())
        } else {
            Err(UpstreamError::Protocol {
                upstream: self.name.clone(),
                detail: format!("content type {actual:?}, expected {expected}"),
            })
        }
    }
}

trait ErrorText {
    fn without_url_ref_string(&self) -> String;
}

impl ErrorText for reqwest::Error {
    fn without_url_ref_string(&self) -> String {
        let mut parts = Vec::new();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(s) = source {
            parts.push(s.to_string());
            source = s.source();
        }
        if self.is_timeout() {
            parts.insert(0, "timed out".into());
        } else if self.is_connect() {
            parts.insert(0, "connection failed".into());
        }
        parts.join(": ")
    }
}

fn into_stream(response: reqwest::Response) -> ByteStream {
    Box::pin(response.bytes_stream().map_err(std::io::Error::other))
}

/// Removes the smart-HTTP `# service=git-...` pkt-line and the flush after it, when present
/// (`git http-backend` sends them for v0/v1, not for v2; gitprotocol-http "Smart Clients").
/// Only the first packet is buffered; the rest passes through untouched.
fn strip_service_header(mut inner: ByteStream) -> ByteStream {
    let head = async move {
        let mut buf = BytesMut::new();
        // The header line is at most a few dozen bytes; the flush after it is 4 more.
        loop {
            if let Some(n) = header_len(&buf) {
                buf.advance(n);
                break;
            }
            match inner.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(e)) => return stream::iter(vec![Err(e)]).chain(inner).boxed(),
                None => break,
            }
        }
        let first: Vec<std::io::Result<Bytes>> = if buf.is_empty() {
            vec![]
        } else {
            vec![Ok(buf.freeze())]
        };
        stream::iter(first).chain(inner).boxed()
    };
    Box::pin(stream::once(head).flatten())
}

/// `None`: need more bytes to decide; `Some(n)`: drop the first `n` bytes.
fn header_len(buf: &[u8]) -> Option<usize> {
    match detect_service_header(buf) {
        Ok(ServiceHeader::Present { consumed, .. }) => Some(consumed),
        Ok(ServiceHeader::Incomplete { .. }) => None,
        // Not a header (or not even a packet): pass it on; the advertisement filter judges it.
        Ok(ServiceHeader::Absent) | Err(_) => Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(chunks: Vec<&'static [u8]>) -> Vec<u8> {
        let s: ByteStream = Box::pin(stream::iter(
            chunks.into_iter().map(|c| Ok(Bytes::from_static(c))),
        ));
        let out: Vec<Bytes> = strip_service_header(s)
            .try_collect()
            .await
            .expect("stream ok");
        out.concat()
    }

    #[tokio::test]
    async fn strips_header_split_across_chunks() {
        let out = run(vec![b"001e# service=git-up", b"load-pack\n00", b"00abcd"]).await;
        assert_eq!(out, b"abcd");
    }

    #[tokio::test]
    async fn leaves_v2_advertisement_alone() {
        let out = run(vec![b"000eversion 2\n0000"]).await;
        assert_eq!(out, b"000eversion 2\n0000");
    }

    #[tokio::test]
    async fn empty_body_stays_empty() {
        assert!(run(vec![]).await.is_empty());
    }
}
