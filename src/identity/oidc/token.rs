//! The compact JWS form of a JWT (RFC 7515 section 7.1): `BASE64URL(header).BASE64URL(payload).
//! BASE64URL(signature)`, parsed without trusting anything in it yet.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::{shorten, OidcError};

/// Longest token accepted. Azure AD tokens with many groups stay well below 8 KiB; the limit
/// keeps JSON parsing of hostile input bounded.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The signature algorithms the gateway accepts: asymmetric only. `none` and the HMAC family
/// are absent by construction, so a token can never pick them (nor key an HMAC with a public key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    /// The allowlist, by the exact `alg` names of RFC 7518 / RFC 8037.
    pub fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    /// The `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// The same algorithm for `jsonwebtoken`.
    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Alg::Rs256 => A::RS256,
            Alg::Rs384 => A::RS384,
            Alg::Rs512 => A::RS512,
            Alg::Ps256 => A::PS256,
            Alg::Es256 => A::ES256,
            Alg::Es384 => A::ES384,
            Alg::EdDsa => A::EdDSA,
        }
    }
}

/// A token split into its parts, header and payload decoded but nothing verified.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The header's algorithm (already on the allowlist).
    pub alg: Alg,
    /// The header's `kid`.
    pub kid: Option<String>,
    /// The payload's claims (unverified until the signature is checked).
    pub claims: Map<String, Value>,
    /// `BASE64URL(header).BASE64URL(payload)`: what the signature covers.
    pub signed: &'a str,
    /// The signature, still base64url.
    pub signature: &'a str,
}

/// Whether `token` has the shape of a compact JWS: three `.`-separated base64url segments, the
/// first two non-empty (the third may be empty, as with `alg: none`, so that such tokens reach
/// the verifier and are refused with a precise reason).
pub fn looks_like_jwt(token: &str) -> bool {
    let b64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => {
            !h.is_empty() && !p.is_empty() && b64url(h) && b64url(p) && b64url(s)
        }
        _ => false,
    }
}

/// The payload's claims without any check, only to name the token (`jti`) and pick the issuer.
pub fn peek_claims(token: &str) -> Option<Map<String, Value>> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    json_object(payload).ok()
}

/// Splits and decodes `token`; checks its shape, the algorithm allowlist and `crit`.
pub fn parse(token: &str) -> Result<Parsed<'_>, OidcError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(OidcError::TooLarge {
            bytes: token.len(),
            limit: MAX_TOKEN_BYTES,
        });
    }
    if !looks_like_jwt(token) {
        return Err(OidcError::Malformed {
            what: "not three base64url segments",
        });
    }
    let (signed, signature) = token.rsplit_once('.').ok_or(OidcError::Malformed {
        what: "not three base64url segments",
    })?;
    let (header, payload) = signed.split_once('.').ok_or(OidcError::Malformed {
        what: "not three base64url segments",
    })?;
    let header = json_object(header).map_err(|what| OidcError::Malformed { what })?;
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::parse(name).ok_or_else(|| OidcError::Algorithm {
            alg: shorten(name, 16),
        })?,
        Some(_) => {
            return Err(OidcError::Malformed {
                what: "alg is not a string",
            })
        }
        None => {
            return Err(OidcError::Malformed {
                what: "header has no alg",
            })
        }
    };
    // RFC 7515 4.1.11: a recipient must reject a token with critical extensions it does not
    // understand, and the gateway understands none.
    if header.contains_key("crit") {
        return Err(OidcError::Critical);
    }
    // `jku`, `x5u`, `jwk` and `x5c` are ignored on purpose: keys come only from the issuer's
    // discovery, never from the token itself.
    let kid = match header.get("kid") {
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => {
            return Err(OidcError::Malformed {
                what: "kid is not a string",
            })
        }
        None => None,
    };
    if signature.is_empty() {
        return Err(OidcError::Malformed {
            what: "empty signature",
        });
    }
    let claims = json_object(payload).map_err(|what| OidcError::Malformed { what })?;
    Ok(Parsed {
        alg,
        kid,
        claims,
        signed,
        signature,
    })
}

fn json_object(segment: &str) -> Result<Map<String, Value>, &'static str> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| "a segment is not base64url")?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("a segment is not a JSON object"),
        Err(_) => Err("a segment is not JSON"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, payload: &str, sig: &str) -> String {
        format!("{}.{}.{sig}", b64(header), b64(payload))
    }

    #[test]
    fn shape() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(looks_like_jwt("a.b."));
        assert!(!looks_like_jwt("gg_0123456789abcdef"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt(".b.c"));
        assert!(!looks_like_jwt("a+.b.c"));
    }

    #[test]
    fn allowlist_only() {
        for alg in [
            "none", "HS256", "HS384", "HS512", "PS384", "PS512", "rs256", "ES512",
        ] {
            let t = token(&format!(r#"{{"alg":"{alg}"}}"#), "{}", "c2ln");
            assert!(
                matches!(parse(&t), Err(OidcError::Algorithm { .. })),
                "{alg} accepted"
            );
        }
        for alg in [
            "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
        ] {
            let t = token(&format!(r#"{{"alg":"{alg}","kid":"k"}}"#), "{}", "c2ln");
            let p = parse(&t).expect("accepted");
            assert_eq!(p.alg.as_str(), alg);
            assert_eq!(p.kid.as_deref(), Some("k"));
        }
    }

    #[test]
    fn malformed_parts_are_refused() {
        let cases = [
            token(r#"{"alg":"RS256"}"#, "{}", ""),
            token(r#"{"alg":"RS256","crit":["b64"]}"#, "{}", "c2ln"),
            token(r#"{"alg":"RS256"}"#, "[1]", "c2ln"),
            token(r#"{"alg":5}"#, "{}", "c2ln"),
            token(r#"{"alg":"RS256","kid":5}"#, "{}", "c2ln"),
            token("{}", "{}", "c2ln"),
            format!("{}.!!.c2ln", b64(r#"{"alg":"RS256"}"#)),
            "x".repeat(MAX_TOKEN_BYTES + 1),
        ];
        for t in &cases {
            assert!(parse(t).is_err(), "{t} accepted");
        }
    }
}
