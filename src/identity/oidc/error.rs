//! Why a JWT was refused, and why an issuer's keys could not be fetched.
//!
//! These carry the precise facts for the gateway's log and the audit record. The client never
//! sees them: it gets a generic 401 (`AuthError`'s `Display`), so a caller probing the gateway
//! learns nothing about which check failed.

use std::fmt;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// Not a compact JWS, or a part of it is not what it must be.
    #[error("malformed token: {what}")]
    Malformed {
        /// Which part, and how.
        what: &'static str,
    },
    /// Longer than any token the gateway accepts.
    #[error("token of {bytes} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Its length.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The header's `alg` is not on the allowlist (`none` and HMAC never are).
    #[error("algorithm \"{alg}\" is not accepted (only RS256, RS384, RS512, PS256, ES256, ES384, EdDSA)")]
    Algorithm {
        /// The `alg` as written (shortened).
        alg: String,
    },
    /// The header lists critical extensions (RFC 7515 section 4.1.11) the gateway does not know.
    #[error("critical header parameters are not supported")]
    Critical,
    /// No `[[oidc]]` has this `iss`.
    #[error("issuer \"{iss}\" is not configured")]
    UnknownIssuer {
        /// The `iss` claim (shortened).
        iss: String,
    },
    /// No key in the issuer's JWKS has this `kid`.
    #[error("no key with kid \"{kid}\" in the issuer's JWKS ({})", if *.refreshed { "not there after a refresh either" } else { "refresh rate-limited" })]
    UnknownKey {
        /// The `kid` (shortened), or `(none)`.
        kid: String,
        /// Whether the keys were fetched again to look for it.
        refreshed: bool,
    },
    /// The key named by `kid` is of another type than `alg` needs (key confusion).
    #[error("key \"{kid}\" ({key}) cannot verify {alg}")]
    KeyMismatch {
        /// The `kid` (shortened).
        kid: String,
        /// What the key is (e.g. `RSA`, `EC P-256`, `Ed25519`, `RSA for RS256 only`).
        key: String,
        /// The header's algorithm.
        alg: &'static str,
    },
    /// The signature does not verify (tampered, or signed by another key).
    #[error("signature does not verify with key \"{kid}\"")]
    Signature {
        /// The `kid` (shortened).
        kid: String,
    },
    /// `exp` is past (beyond the leeway).
    #[error("expired at {exp} (now {now}, leeway {leeway}s)")]
    Expired {
        /// The `exp` claim (seconds since the epoch).
        exp: i64,
        /// The gateway's clock.
        now: i64,
        /// Tolerated skew.
        leeway: u64,
    },
    /// `nbf` is in the future (beyond the leeway).
    #[error("not valid before {nbf} (now {now}, leeway {leeway}s)")]
    NotYetValid {
        /// The `nbf` claim.
        nbf: i64,
        /// The gateway's clock.
        now: i64,
        /// Tolerated skew.
        leeway: u64,
    },
    /// `iat` is in the future (beyond the leeway).
    #[error("issued in the future (iat {iat}, now {now}, leeway {leeway}s)")]
    IssuedInFuture {
        /// The `iat` claim.
        iat: i64,
        /// The gateway's clock.
        now: i64,
        /// Tolerated skew.
        leeway: u64,
    },
    /// `aud` does not contain the configured audience.
    #[error("audience {found} does not include \"{expected}\"")]
    Audience {
        /// The configured audience.
        expected: String,
        /// The `aud` claim (JSON, shortened).
        found: String,
    },
    /// `allowed_clients` is set and the token's `azp`/`appid`/`client_id` is not in it.
    #[error("client {} is not in allowed_clients", .client.as_deref().map_or_else(|| "(no azp, appid or client_id claim)".to_string(), |c| format!("\"{c}\"")))]
    Client {
        /// The client claim found (shortened).
        client: Option<String>,
    },
    /// A claim the gateway needs is absent.
    #[error("claim \"{claim}\" is missing")]
    MissingClaim {
        /// The claim (path).
        claim: String,
    },
    /// A claim has the wrong type or an unacceptable value.
    #[error("claim \"{claim}\" {problem}")]
    BadClaim {
        /// The claim (path).
        claim: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A `required_claims` entry is not satisfied.
    #[error("required claim \"{claim}\" = \"{expected}\" not satisfied")]
    RequiredClaim {
        /// The claim (path).
        claim: String,
        /// The required value.
        expected: String,
    },
    /// The groups are not in the token because there are too many (Azure AD / Entra ID
    /// "groups overage": `_claim_names` or `hasgroups`). Guessing would be wrong either way.
    #[error("groups overage: the token has no \"{claim}\" claim because the identity is in too many groups ({marker}); have the app registration emit only the groups assigned to the application, or use app roles (groups_claim = \"roles\")")]
    GroupsOverage {
        /// The configured groups claim.
        claim: String,
        /// Which overage marker the token carries.
        marker: &'static str,
    },
    /// The issuer's keys could not be fetched and none are cached (cold cache: fail closed).
    #[error("the issuer's keys are unavailable: {0}")]
    KeysUnavailable(FetchError),
}

/// Why discovery or the JWKS could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No attempt yet, or the last failure is too recent to try again (rate limit).
    #[error("not fetched yet, next attempt after the rate limit")]
    RateLimited,
    /// The HTTP client could not be built.
    #[error("no HTTP client: {0}")]
    Client(String),
    /// Connection, TLS or timeout.
    #[error("GET {url}: {detail}")]
    Transport {
        /// The URL.
        url: String,
        /// What happened.
        detail: String,
    },
    /// Not a 200 answer.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body is larger than the limit.
    #[error("GET {url}: body exceeds {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The body is not the JSON document expected.
    #[error("GET {url}: {detail}")]
    Json {
        /// The URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The discovery document names another issuer (OpenID Connect Discovery section 4.3).
    #[error("discovery document says issuer \"{found}\", expected \"{expected}\"")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The document's `issuer` (shortened).
        found: String,
    },
    /// `jwks_uri` is not https (nor http on loopback for a loopback issuer).
    #[error("jwks_uri \"{uri}\" is not acceptable: {reason}")]
    JwksUri {
        /// The URI (shortened).
        uri: String,
        /// Why.
        reason: &'static str,
    },
    /// The JWKS holds no key the gateway can use.
    #[error("the JWKS at {url} has no usable signing key ({skipped} skipped)")]
    NoKeys {
        /// The JWKS URL.
        url: String,
        /// How many keys were skipped (symmetric, unknown type, too small...).
        skipped: usize,
    },
}

/// A refused token: the reason plus what identifies the token in the log without revealing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `jti=<jti>` when the payload has one, else `sha256:<first 12 hex digits>` of the token.
    pub token: String,
    /// The `iss` claim when it could be read (shortened).
    pub issuer: Option<String>,
    /// Why.
    pub error: OidcError,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oidc token {}", self.token)?;
        if let Some(iss) = &self.issuer {
            write!(f, " (iss {iss})")?;
        }
        write!(f, ": {}", self.error)
    }
}

/// At most `max` characters of an untrusted value, without control characters, for messages.
pub(crate) fn shorten(value: &str, max: usize) -> String {
    let mut out: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    if value.chars().count() > max {
        out.push('…');
    }
    out
}
