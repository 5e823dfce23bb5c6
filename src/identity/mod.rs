//! Who is calling: an [`Identity`] from the credential the transport received.
//!
//! Static tokens are compared by SHA-256 in constant time: the presented token is hashed and
//! compared with every configured hash, without stopping at the first match, so timing tells
//! nothing about which token (or how much of one) matched. Later: OIDC JWTs.
//!
//! SSH keys and certificates: [`ssh`]; the gateway's own SSH user CA: [`ssh_ca`].

pub mod ssh;
pub mod ssh_ca;

use std::time::SystemTime;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::secret::Secret;

/// An authenticated caller. Identity comes from the credential, never from commit metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The configured name of the token, key or the OIDC subject.
    pub name: String,
    /// Groups the caller belongs to (rules match `group:NAME`).
    pub groups: Vec<String>,
    /// How the caller proved who they are.
    pub method: AuthMethod,
}

/// How an [`Identity`] authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A static `[[token]]`.
    Token,
    /// An OIDC JWT.
    Oidc,
    /// An SSH public key listed in `[[ssh_key]]`.
    SshKey,
    /// An OpenSSH user certificate.
    SshCertificate,
}

impl AuthMethod {
    /// A short name for logs and the record.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Token => "token",
            AuthMethod::Oidc => "oidc",
            AuthMethod::SshKey => "ssh-key",
            AuthMethod::SshCertificate => "ssh-certificate",
        }
    }
}

/// Why a credential was not accepted. Deliberately vague towards the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No credential was presented.
    #[error("authentication required")]
    Missing,
    /// A credential was presented but matches nothing.
    #[error("invalid credentials")]
    Invalid,
}

/// A credential that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Who it is.
    pub identity: Identity,
    /// When the credential stops being valid: the JWT's `exp`; `None` for static tokens.
    pub expires: Option<SystemTime>,
}

struct TokenEntry {
    sha256: [u8; 32],
    name: String,
    groups: Vec<String>,
}

/// Verifies credentials against the configured identities.
pub struct Authenticator {
    tokens: Vec<TokenEntry>,
}

impl Authenticator {
    /// Builds the authenticator from the resolved configuration.
    pub fn new(config: &Config) -> Self {
        let tokens = config
            .tokens
            .iter()
            .map(|t| TokenEntry {
                sha256: t.sha256,
                name: t.name.clone(),
                groups: t.groups.clone(),
            })
            .collect();
        Authenticator { tokens }
    }

    /// Authenticates a bearer secret (a static token; later also an OIDC JWT).
    pub fn authenticate_token(&self, token: &Secret<String>) -> Result<Identity, AuthError> {
        if token.expose().is_empty() {
            return Err(AuthError::Missing);
        }
        let presented: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
        let mut found: Option<&TokenEntry> = None;
        for entry in &self.tokens {
            // No early exit: every entry is compared.
            if bool::from(entry.sha256.ct_eq(&presented)) && found.is_none() {
                found = Some(entry);
            }
        }
        found
            .map(|e| Identity {
                name: e.name.clone(),
                groups: e.groups.clone(),
                method: AuthMethod::Token,
            })
            .ok_or(AuthError::Invalid)
    }
}

/// The hex SHA-256 of a token, as written in `[[token]] sha256`.
pub fn token_sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator {
            tokens: vec![TokenEntry {
                sha256: Sha256::digest(b"s3cret").into(),
                name: "agent-1".into(),
                groups: vec!["agents".into()],
            }],
        }
    }

    #[test]
    fn known_token_gives_identity() {
        let id = auth()
            .authenticate_token(&Secret::new("s3cret".into()))
            .expect("token accepted");
        assert_eq!(id.name, "agent-1");
        assert_eq!(id.groups, vec!["agents".to_string()]);
    }

    #[test]
    fn unknown_and_empty_tokens_are_refused() {
        assert_eq!(
            auth().authenticate_token(&Secret::new("s3cre".into())),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            auth().authenticate_token(&Secret::new(String::new())),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn hex_helper_matches_config_format() {
        assert_eq!(
            token_sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
