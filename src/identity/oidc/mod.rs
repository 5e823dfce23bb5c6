//! OpenID Connect JWTs: which `[[oidc]]` issuer signed a token, with which of its keys, and
//! what its claims make of the caller.
//!
//! Order of checks (each refusal is an [`OidcError`]): shape and size, header (`alg` on the
//! allowlist, no `crit`), the unverified `iss` picks the configured issuer (exact match), its
//! keys (discovery + JWKS cache, see [`cache`]), a key whose type fits `alg`, the signature
//! (`jsonwebtoken` with its pure-Rust backend), then the claims ([`claims`]). Nothing from the
//! token is trusted before the signature verified, except to choose what to verify it with.

pub mod cache;
pub mod claims;
pub mod error;
pub mod fetch;
pub mod jwks;
pub mod token;

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sha2::{Digest, Sha256};

pub use error::{FetchError, OidcError, Refusal};

use self::cache::{CacheOptions, KeyCache};
use self::error::shorten;
use crate::config::Oidc as Config;

/// An issuer's HTTP client could not be built (e.g. its `ca_file` is unreadable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[[oidc]] issuer {issuer}: {detail}")]
pub struct SetupError {
    /// The issuer.
    pub issuer: String,
    /// What went wrong.
    pub detail: String,
}

/// A token that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The identity's name (`name_claim`).
    pub name: String,
    /// Its groups (`groups_claim`).
    pub groups: Vec<String>,
    /// When the token expires (`exp`).
    pub expires: SystemTime,
    /// The issuer (`iss`).
    pub issuer: String,
    /// The token's `jti`, for logs.
    pub jti: Option<String>,
}

struct Issuer {
    config: Config,
    cache: Arc<KeyCache>,
}

/// The configured issuers and their key caches.
pub struct Verifier {
    issuers: Vec<Issuer>,
}

impl Verifier {
    /// One key cache per `[[oidc]]`; nothing is fetched yet. An issuer whose HTTP client cannot
    /// be built (unreadable `ca_file`) refuses all its tokens (see [`Verifier::try_new`]).
    pub fn new(configs: &[Config]) -> Verifier {
        Verifier::build(configs, |iss, e| {
            tracing::error!(issuer = %iss, error = %e, "oidc: no HTTP client; this issuer's tokens are refused");
        })
    }

    /// Like [`Verifier::new`], but an issuer whose HTTP client cannot be built is an error.
    pub fn try_new(configs: &[Config]) -> Result<Verifier, SetupError> {
        let mut first = None;
        let verifier = Verifier::build(configs, |iss, e| {
            first.get_or_insert_with(|| SetupError {
                issuer: iss.to_string(),
                detail: e.to_string(),
            });
        });
        match first {
            Some(e) => Err(e),
            None => Ok(verifier),
        }
    }

    fn build(configs: &[Config], mut on_error: impl FnMut(&str, &str)) -> Verifier {
        // One client for all issuers without their own CA file.
        let mut shared: Option<Result<reqwest::Client, String>> = None;
        let issuers = configs
            .iter()
            .map(|config| {
                let client = match &config.ca_file {
                    Some(path) => fetch::client(Some(path)),
                    None => shared.get_or_insert_with(|| fetch::client(None)).clone(),
                };
                if let Err(e) = &client {
                    on_error(&config.iss, e);
                }
                let source = fetch::Discovery::new(client, &config.iss, &config.issuer);
                let options = CacheOptions {
                    refresh: config.jwks_refresh,
                    min_refresh: config.jwks_min_refresh,
                };
                Issuer {
                    cache: Arc::new(KeyCache::new(&config.iss, Box::new(source), options)),
                    config: config.clone(),
                }
            })
            .collect();
        Verifier { issuers }
    }

    /// A verifier whose issuers get their keys from `sources` instead of discovery.
    #[cfg(test)]
    fn with_sources(sources: Vec<(Config, Box<dyn cache::KeySource>)>) -> Verifier {
        let issuers = sources
            .into_iter()
            .map(|(config, source)| {
                let options = CacheOptions {
                    refresh: config.jwks_refresh,
                    min_refresh: config.jwks_min_refresh,
                };
                Issuer {
                    cache: Arc::new(KeyCache::new(&config.iss, source, options)),
                    config,
                }
            })
            .collect();
        Verifier { issuers }
    }

    /// Whether any issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Starts, on the current tokio runtime, one task per issuer that fetches its keys now and
    /// refreshes them periodically; it ends when the verifier is dropped. Without a runtime,
    /// keys are fetched on first use only.
    pub fn spawn_refresh(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for issuer in &self.issuers {
            let cache: Weak<KeyCache> = Arc::downgrade(&issuer.cache);
            runtime.spawn(async move {
                loop {
                    let Some(cache) = cache.upgrade() else { break };
                    cache.maintain().await;
                    let pause = cache.next_check();
                    drop(cache);
                    tokio::time::sleep(pause).await;
                }
            });
        }
    }

    /// Verifies `token` now.
    pub async fn verify(&self, token: &str) -> Result<Accepted, Refusal> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.verify_at(token, now).await
    }

    /// Verifies `token` at `now` (seconds since the epoch).
    pub async fn verify_at(&self, token: &str, now: i64) -> Result<Accepted, Refusal> {
        let peeked = token::peek_claims(token);
        let text = |name: &str| {
            peeked
                .as_ref()
                .and_then(|c| c.get(name))
                .and_then(Value::as_str)
                .map(|v| shorten(v, 128))
        };
        let refuse = |error| Refusal {
            token: match text("jti") {
                Some(jti) => format!("jti={jti}"),
                None => {
                    let hash = hex::encode(Sha256::digest(token.as_bytes()));
                    format!("sha256:{}", hash.get(..12).unwrap_or_default())
                }
            },
            issuer: text("iss"),
            error,
        };
        let checked = self.check(token, now).await.map_err(refuse)?;
        Ok(checked)
    }

    async fn check(&self, token: &str, now: i64) -> Result<Accepted, OidcError> {
        let parsed = token::parse(token)?;
        let iss = match parsed.claims.get("iss") {
            Some(Value::String(iss)) => iss.as_str(),
            Some(_) => {
                return Err(OidcError::BadClaim {
                    claim: "iss".into(),
                    problem: "is not a string",
                })
            }
            None => {
                return Err(OidcError::MissingClaim {
                    claim: "iss".into(),
                })
            }
        };
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.iss == iss)
            .ok_or_else(|| OidcError::UnknownIssuer {
                iss: shorten(iss, 128),
            })?;
        let snapshot = issuer.cache.keys().await?;
        let kid = parsed.kid.as_deref();
        let found = match snapshot.keys.candidates(kid, parsed.alg) {
            Err(OidcError::UnknownKey { .. }) => {
                // Key rotation: the issuer may have published a new key since the last fetch.
                match issuer.cache.refresh_for_unknown_kid(&snapshot).await {
                    Some(fresh) => verify_with(&fresh.keys, &parsed, true),
                    None => Err(OidcError::UnknownKey {
                        kid: kid.map_or_else(|| "(none)".into(), |k| shorten(k, 64)),
                        refreshed: false,
                    }),
                }
            }
            Err(e) => Err(e),
            Ok(_) => verify_with(&snapshot.keys, &parsed, false),
        };
        found?;
        let checked = claims::check(&parsed.claims, &issuer.config, now)?;
        let exp = u64::try_from(checked.exp).unwrap_or(0);
        Ok(Accepted {
            name: checked.name,
            groups: checked.groups,
            expires: UNIX_EPOCH + Duration::from_secs(exp),
            issuer: issuer.config.iss.clone(),
            jti: parsed
                .claims
                .get("jti")
                .and_then(Value::as_str)
                .map(|j| shorten(j, 128)),
        })
    }
}

/// Verifies the signature with the candidate keys of `keys` (one, with a `kid`).
fn verify_with(
    keys: &jwks::KeySet,
    parsed: &token::Parsed<'_>,
    refreshed: bool,
) -> Result<(), OidcError> {
    let candidates = keys
        .candidates(parsed.kid.as_deref(), parsed.alg)
        .map_err(|e| match e {
            OidcError::UnknownKey { kid, .. } => OidcError::UnknownKey { kid, refreshed },
            e => e,
        })?;
    for key in &candidates {
        let ok = jsonwebtoken::crypto::verify(
            parsed.signature,
            parsed.signed.as_bytes(),
            &key.decoding,
            parsed.alg.jwt(),
        );
        if matches!(ok, Ok(true)) {
            return Ok(());
        }
    }
    Err(OidcError::Signature {
        kid: parsed
            .kid
            .as_deref()
            .map_or_else(|| "(none)".into(), |k| shorten(k, 64)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    use futures_util::future::BoxFuture;
    use std::sync::Mutex;

    const ISS: &str = "https://issuer.example.com";
    const NOW: i64 = 1_800_000_000;

    struct Key {
        kid: &'static str,
        signing: ed25519_dalek::SigningKey,
    }

    impl Key {
        fn new(kid: &'static str, seed: u8) -> Key {
            Key {
                kid,
                signing: ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
            }
        }

        fn jwk(&self) -> serde_json::Value {
            let x = URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes());
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid})
        }

        fn sign(&self, kid: &str, claims: &serde_json::Value) -> String {
            let der = self.signing.to_pkcs8_der().expect("pkcs8");
            let key = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
            header.kid = Some(kid.to_string());
            jsonwebtoken::encode(&header, claims, &key).expect("sign")
        }
    }

    /// Publishes whatever JWKs the test put in.
    struct Published(Arc<Mutex<Vec<serde_json::Value>>>);

    impl cache::KeySource for Published {
        fn fetch(&self) -> BoxFuture<'_, Result<jwks::KeySet, FetchError>> {
            let keys = self.0.lock().map(|k| k.clone()).unwrap_or_default();
            let doc = serde_json::json!({ "keys": keys }).to_string();
            let set = jwks::KeySet::parse(doc.as_bytes()).map_err(|d| FetchError::Json {
                url: "test".into(),
                detail: d.into(),
            });
            Box::pin(async move { set })
        }
    }

    fn config() -> Config {
        Config {
            issuer: url::Url::parse(ISS).expect("url"),
            iss: ISS.into(),
            audience: "api://gitgate".into(),
            groups_claim: "groups".into(),
            name_claim: "sub".into(),
            allowed_clients: Vec::new(),
            leeway: Duration::from_secs(60),
            required_claims: Vec::new(),
            jwks_refresh: Duration::from_secs(3600),
            jwks_min_refresh: Duration::from_secs(30),
            ca_file: None,
        }
    }

    fn claims(iss: &str) -> serde_json::Value {
        serde_json::json!({
            "iss": iss, "sub": "agent-7", "aud": "api://gitgate", "groups": ["agents"],
            "iat": NOW, "exp": NOW + 300, "jti": "j-1",
        })
    }

    fn verifier(keys: Vec<serde_json::Value>) -> (Verifier, Arc<Mutex<Vec<serde_json::Value>>>) {
        let published = Arc::new(Mutex::new(keys));
        let v = Verifier::with_sources(vec![(config(), Box::new(Published(published.clone())))]);
        (v, published)
    }

    #[tokio::test(start_paused = true)]
    async fn a_good_token_gives_the_identity_and_expiry() {
        let a = Key::new("a", 1);
        let (v, _) = verifier(vec![a.jwk()]);
        let ok = v
            .verify_at(&a.sign("a", &claims(ISS)), NOW)
            .await
            .expect("accepted");
        assert_eq!((ok.name.as_str(), ok.groups.len()), ("agent-7", 1));
        assert_eq!(
            ok.expires,
            UNIX_EPOCH + Duration::from_secs((NOW + 300) as u64)
        );
        assert_eq!(ok.jti.as_deref(), Some("j-1"));
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_name_the_token_not_its_value() {
        let a = Key::new("a", 1);
        let (v, _) = verifier(vec![a.jwk()]);
        let token = a.sign("a", &claims("https://other.example.com"));
        let r = v.verify_at(&token, NOW).await.expect_err("refused");
        assert!(matches!(r.error, OidcError::UnknownIssuer { .. }));
        assert_eq!(r.token, "jti=j-1");
        let text = r.to_string();
        assert!(
            !text.contains(&token) && text.contains("not configured"),
            "{text}"
        );
        let r = v.verify_at("a.b.c", NOW).await.expect_err("refused");
        assert!(r.token.starts_with("sha256:"), "{}", r.token);
    }

    #[tokio::test(start_paused = true)]
    async fn signature_and_rotation() {
        let (a, b) = (Key::new("a", 1), Key::new("b", 2));
        let (v, published) = verifier(vec![a.jwk()]);
        // b's signature under a's kid.
        let r = v
            .verify_at(&b.sign("a", &claims(ISS)), NOW)
            .await
            .expect_err("refused");
        assert!(matches!(r.error, OidcError::Signature { .. }), "{r}");
        // b is not published yet; the refresh it asks for is rate-limited.
        let token_b = b.sign("b", &claims(ISS));
        let r = v.verify_at(&token_b, NOW).await.expect_err("refused");
        assert!(
            matches!(
                r.error,
                OidcError::UnknownKey {
                    refreshed: false,
                    ..
                }
            ),
            "{r}"
        );
        // Rotated in: after the rate limit, the unknown kid triggers a refresh.
        published.lock().expect("lock").push(b.jwk());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(v.verify_at(&token_b, NOW).await.is_ok());
        // Removed: once the cache is stale and refreshed, a's tokens are refused. The first
        // request after the refresh interval still passes (stale keys serve while the refresh
        // runs in the background).
        published.lock().expect("lock").retain(|k| k["kid"] != "a");
        tokio::time::advance(Duration::from_secs(3601)).await;
        let token_a = a.sign("a", &claims(ISS));
        assert!(v.verify_at(&token_a, NOW).await.is_ok());
        tokio::time::sleep(Duration::from_millis(1)).await;
        let r = v.verify_at(&token_a, NOW).await.expect_err("refused");
        assert!(matches!(r.error, OidcError::UnknownKey { .. }), "{r}");
    }
}
