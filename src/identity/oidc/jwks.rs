//! A JSON Web Key Set (RFC 7517) reduced to the verification keys the gateway can use, each
//! bound to the algorithms its type allows: an RSA key never verifies ES256, an EC key never
//! RS256, and symmetric (`oct`) keys are never loaded at all.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use super::error::{shorten, OidcError};
use super::token::Alg;

/// Most keys read from one JWKS; real issuers publish a handful.
pub const MAX_KEYS: usize = 64;

/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_BYTES: usize = 256;

/// What kind of key, which fixes the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA: RS256/384/512, PS256.
    Rsa,
    /// EC P-256: ES256.
    P256,
    /// EC P-384: ES384.
    P384,
    /// OKP Ed25519: EdDSA.
    Ed25519,
}

impl KeyKind {
    fn verifies(self, alg: Alg) -> bool {
        matches!(
            (self, alg),
            (
                KeyKind::Rsa,
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256
            ) | (KeyKind::P256, Alg::Es256)
                | (KeyKind::P384, Alg::Es384)
                | (KeyKind::Ed25519, Alg::EdDsa)
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RSA",
            KeyKind::P256 => "EC P-256",
            KeyKind::P384 => "EC P-384",
            KeyKind::Ed25519 => "Ed25519",
        }
    }
}

/// One usable verification key.
#[derive(Clone)]
pub struct Key {
    /// Its `kid`.
    pub kid: Option<String>,
    /// Its type.
    pub kind: KeyKind,
    /// Its `alg`, when the JWKS pins one.
    pub alg: Option<Alg>,
    /// The key for `jsonwebtoken`.
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish()
    }
}

impl Key {
    /// Whether this key may verify `alg`: its type allows it and a pinned `alg` equals it.
    pub fn verifies(&self, alg: Alg) -> bool {
        self.kind.verifies(alg) && self.alg.is_none_or(|pinned| pinned == alg)
    }

    fn describe(&self) -> String {
        match self.alg {
            Some(alg) => format!("{} for {} only", self.kind.as_str(), alg.as_str()),
            None => self.kind.as_str().to_string(),
        }
    }
}

/// The usable keys of one JWKS.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// The keys.
    pub keys: Vec<Key>,
    /// How many entries were skipped (unusable or not for signatures).
    pub skipped: usize,
}

impl KeySet {
    /// Reads a JWKS document; entries the gateway cannot or must not use are skipped.
    pub fn parse(body: &[u8]) -> Result<KeySet, &'static str> {
        let doc: Value = serde_json::from_slice(body).map_err(|_| "not JSON")?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err("no \"keys\" array");
        };
        let mut set = KeySet::default();
        for entry in entries.iter().take(MAX_KEYS) {
            match key(entry) {
                Some(k) => set.keys.push(k),
                None => set.skipped += 1,
            }
        }
        set.skipped += entries.len().saturating_sub(MAX_KEYS);
        Ok(set)
    }

    /// The keys that may verify a token with `kid` and `alg`. Without a `kid`, every key that
    /// may verify `alg` is a candidate.
    pub fn candidates(&self, kid: Option<&str>, alg: Alg) -> Result<Vec<&Key>, OidcError> {
        let named: Vec<&Key> = self
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .collect();
        let shown = kid.map_or_else(|| "(none)".to_string(), |k| shorten(k, 64));
        let first = match named.first() {
            Some(k) => *k,
            None => {
                return Err(OidcError::UnknownKey {
                    kid: shown,
                    refreshed: false,
                })
            }
        };
        let usable: Vec<&Key> = named.iter().copied().filter(|k| k.verifies(alg)).collect();
        if usable.is_empty() {
            return Err(OidcError::KeyMismatch {
                kid: shown,
                key: first.describe(),
                alg: alg.as_str(),
            });
        }
        Ok(usable)
    }
}

fn text<'a>(entry: &'a Value, name: &str) -> Option<&'a str> {
    entry.get(name).and_then(Value::as_str)
}

fn b64_len(value: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(value).ok().map(|v| v.len())
}

/// One JWK as a usable key, or `None` when it must be skipped.
fn key(entry: &Value) -> Option<Key> {
    // RFC 7517 4.2/4.3: keys for encryption, or without "verify" among their operations, are
    // not signature keys.
    if text(entry, "use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = entry.get("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return None;
        }
    }
    let alg = match entry.get("alg") {
        None => None,
        // A key pinned to an algorithm outside the allowlist (HS256, RSA-OAEP...) is unusable.
        Some(v) => Some(Alg::parse(v.as_str()?)?),
    };
    let (kind, decoding) = match text(entry, "kty")? {
        "RSA" => {
            let (n, e) = (text(entry, "n")?, text(entry, "e")?);
            let n_bytes = URL_SAFE_NO_PAD.decode(n).ok()?;
            let significant = n_bytes.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_BYTES {
                return None;
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_components(n, e).ok()?)
        }
        "EC" => {
            let (kind, len) = match text(entry, "crv")? {
                "P-256" => (KeyKind::P256, 32),
                "P-384" => (KeyKind::P384, 48),
                _ => return None,
            };
            let (x, y) = (text(entry, "x")?, text(entry, "y")?);
            if b64_len(x)? != len || b64_len(y)? != len {
                return None;
            }
            (kind, DecodingKey::from_ec_components(x, y).ok()?)
        }
        "OKP" => {
            if text(entry, "crv")? != "Ed25519" {
                return None;
            }
            let x = text(entry, "x")?;
            if b64_len(x)? != 32 {
                return None;
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_components(x).ok()?)
        }
        // "oct" (symmetric) and anything else.
        _ => return None,
    };
    if alg.is_some_and(|a| !kind.verifies(a)) {
        return None;
    }
    Some(Key {
        kid: text(entry, "kid").map(str::to_string),
        kind,
        alg,
        decoding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n2048() -> String {
        let mut n = vec![0xc5_u8; 256];
        n[255] = 0x01;
        URL_SAFE_NO_PAD.encode(n)
    }

    fn set(keys: &str) -> KeySet {
        KeySet::parse(format!(r#"{{"keys":[{keys}]}}"#).as_bytes()).expect("parses")
    }

    #[test]
    fn usable_keys_and_skips() {
        let n = n2048();
        let small = URL_SAFE_NO_PAD.encode([0xc5_u8; 128]);
        let x32 = URL_SAFE_NO_PAD.encode([7_u8; 32]);
        let s = set(&format!(
            r#"{{"kty":"RSA","kid":"r","n":"{n}","e":"AQAB","use":"sig"}},
               {{"kty":"RSA","kid":"small","n":"{small}","e":"AQAB"}},
               {{"kty":"RSA","kid":"enc","n":"{n}","e":"AQAB","use":"enc"}},
               {{"kty":"oct","kid":"h","k":"c2VjcmV0"}},
               {{"kty":"RSA","kid":"hs","n":"{n}","e":"AQAB","alg":"HS256"}},
               {{"kty":"OKP","kid":"ed","crv":"Ed25519","x":"{x32}"}},
               {{"kty":"OKP","kid":"x","crv":"X25519","x":"{x32}"}}"#
        ));
        let kids: Vec<_> = s
            .keys
            .iter()
            .map(|k| k.kid.clone().unwrap_or_default())
            .collect();
        assert_eq!(kids, ["r", "ed"]);
        assert_eq!(s.skipped, 5);
    }

    #[test]
    fn key_types_bind_algorithms() {
        let n = n2048();
        let x32 = URL_SAFE_NO_PAD.encode([7_u8; 32]);
        let s = set(&format!(
            r#"{{"kty":"RSA","kid":"r","n":"{n}","e":"AQAB"}},
               {{"kty":"RSA","kid":"r256","n":"{n}","e":"AQAB","alg":"RS256"}},
               {{"kty":"EC","kid":"e","crv":"P-256","x":"{x32}","y":"{x32}"}}"#
        ));
        assert!(s.candidates(Some("r"), Alg::Ps256).is_ok());
        assert!(matches!(
            s.candidates(Some("r256"), Alg::Rs512),
            Err(OidcError::KeyMismatch { .. })
        ));
        assert!(matches!(
            s.candidates(Some("r"), Alg::Es256),
            Err(OidcError::KeyMismatch { .. })
        ));
        assert!(matches!(
            s.candidates(Some("e"), Alg::Rs256),
            Err(OidcError::KeyMismatch { .. })
        ));
        assert!(s.candidates(Some("e"), Alg::Es256).is_ok());
        assert!(matches!(
            s.candidates(Some("zz"), Alg::Rs256),
            Err(OidcError::UnknownKey { .. })
        ));
        assert_eq!(s.candidates(None, Alg::Rs256).map(|v| v.len()), Ok(2));
        assert!(KeySet::parse(b"{}").is_err());
        assert!(KeySet::parse(b"nope").is_err());
    }
}
