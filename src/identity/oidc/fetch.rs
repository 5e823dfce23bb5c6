//! Discovery (`<issuer>/.well-known/openid-configuration`, then its `jwks_uri`) over the
//! gateway's reqwest/rustls client, with a size limit on every body and a timeout on every
//! request. https only, except plain http on loopback for a loopback issuer (tests, local
//! development); redirects are not followed.

use std::path::Path;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt as _;
use serde_json::Value;
use url::Url;

use super::cache::KeySource;
use super::error::{shorten, FetchError};
use super::jwks::KeySet;

/// Largest discovery document or JWKS read.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the client discovery uses: rustls with the web PKI roots (plus the PEM certificates
/// of `ca_file`), no redirects, timeouts.
pub fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT)
        .user_agent(concat!("gitgate/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let shown = path.display();
        let pem = std::fs::read(path).map_err(|e| format!("ca_file {shown}: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ca_file {shown}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("ca_file {shown}: no PEM certificate"));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| e.to_string())
}

/// Fetches one issuer's keys through discovery.
pub struct Discovery {
    client: Result<reqwest::Client, String>,
    /// The issuer exactly as configured (the `iss` claim).
    iss: String,
    /// `<issuer>/.well-known/openid-configuration`.
    url: String,
    loopback: bool,
}

impl Discovery {
    /// Discovery for `iss` (already checked: https, or http on loopback).
    pub fn new(client: Result<reqwest::Client, String>, iss: &str, issuer: &Url) -> Self {
        Discovery {
            client,
            url: format!(
                "{}/.well-known/openid-configuration",
                iss.trim_end_matches('/')
            ),
            iss: iss.to_string(),
            loopback: is_loopback(issuer),
        }
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| FetchError::Client(e.clone()))?;
        let transport = |e: reqwest::Error| FetchError::Transport {
            url: url.to_string(),
            detail: e.without_url().to_string(),
        };
        let response = client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(transport)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport)?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(FetchError::TooLarge {
                    url: url.to_string(),
                    limit: MAX_BODY_BYTES,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn discover(&self) -> Result<KeySet, FetchError> {
        let json = |detail: &str| FetchError::Json {
            url: self.url.clone(),
            detail: detail.to_string(),
        };
        let doc: Value =
            serde_json::from_slice(&self.get(&self.url).await?).map_err(|_| json("not JSON"))?;
        let issuer = doc
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or_else(|| json("no \"issuer\""))?;
        if issuer != self.iss {
            return Err(FetchError::IssuerMismatch {
                expected: self.iss.clone(),
                found: shorten(issuer, 200),
            });
        }
        let uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| json("no \"jwks_uri\""))?;
        let jwks_url = self.check_jwks_uri(uri)?;
        let body = self.get(jwks_url.as_str()).await?;
        let set = KeySet::parse(&body).map_err(|detail| FetchError::Json {
            url: jwks_url.to_string(),
            detail: detail.to_string(),
        })?;
        if set.keys.is_empty() {
            return Err(FetchError::NoKeys {
                url: jwks_url.to_string(),
                skipped: set.skipped,
            });
        }
        Ok(set)
    }

    fn check_jwks_uri(&self, uri: &str) -> Result<Url, FetchError> {
        let bad = |reason| FetchError::JwksUri {
            uri: shorten(uri, 200),
            reason,
        };
        let url = Url::parse(uri).map_err(|_| bad("not a URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.loopback && is_loopback(&url) => {}
            "http" => {
                return Err(bad(
                    "plain http (allowed only on loopback for a loopback issuer)",
                ))
            }
            _ => return Err(bad("not https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("has credentials"));
        }
        Ok(url)
    }
}

impl KeySource for Discovery {
    fn fetch(&self) -> BoxFuture<'_, Result<KeySet, FetchError>> {
        Box::pin(self.discover())
    }
}

/// Whether `url`'s host is a loopback address or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}
