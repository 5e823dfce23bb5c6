//! Who is calling: an [`Identity`] from the credential the transport received.
//!
//! Static tokens are compared by SHA-256 in constant time: the presented token is hashed and
//! compared with every configured hash, without stopping at the first match, so timing tells
//! nothing about which token (or how much of one) matched. OIDC JWTs are verified by [`oidc`]
//! against the configured issuers' keys.
//!
//! SSH keys and certificates: [`ssh`]; the gateway's own SSH user CA: [`ssh_ca`].

pub mod oidc;
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

/// Why a credential was not accepted. Deliberately vague towards the client: `Display` never
/// says which check failed; [`AuthError::detail`] does, for the log and the record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No credential was presented.
    #[error("authentication required")]
    Missing,
    /// A credential was presented but matches nothing.
    #[error("invalid credentials")]
    Invalid,
    /// An OIDC JWT was refused; the reason is for the log and the record only.
    #[error("invalid credentials")]
    Refused(Box<oidc::Refusal>),
}

impl AuthError {
    /// The precise reason, for the gateway's log and the audit record (never the client). It
    /// names a refused JWT by its `jti` or a short hash, never by its value.
    pub fn detail(&self) -> String {
        match self {
            AuthError::Missing | AuthError::Invalid => self.to_string(),
            AuthError::Refused(refusal) => format!("{self}: {refusal}"),
        }
    }
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
    oidc: oidc::Verifier,
}

impl Authenticator {
    /// Builds the authenticator from the resolved configuration. An OIDC issuer whose HTTP
    /// client cannot be built refuses its tokens (fail closed); [`Authenticator::try_new`]
    /// makes that an error instead.
    pub fn new(config: &Config) -> Self {
        Authenticator {
            tokens: tokens(config),
            oidc: oidc::Verifier::new(&config.oidc),
        }
    }

    /// Builds the authenticator; an OIDC issuer whose HTTP client cannot be built (an
    /// unreadable `ca_file`) is an error.
    pub fn try_new(config: &Config) -> Result<Self, oidc::SetupError> {
        Ok(Authenticator {
            tokens: tokens(config),
            oidc: oidc::Verifier::try_new(&config.oidc)?,
        })
    }

    /// Starts fetching the OIDC issuers' keys in the background and refreshing them
    /// periodically (on the current tokio runtime; without one, keys are fetched on first use).
    pub fn spawn_refresh(&self) {
        self.oidc.spawn_refresh();
    }

    /// Authenticates a bearer secret: a static `[[token]]`, else, when it has the shape of a JWT
    /// and `[[oidc]]` issuers are configured, an OIDC JWT.
    pub async fn authenticate(&self, token: &Secret<String>) -> Result<Verified, AuthError> {
        match self.authenticate_token(token) {
            Ok(identity) => Ok(Verified {
                identity,
                expires: None,
            }),
            Err(AuthError::Invalid)
                if !self.oidc.is_empty() && oidc::token::looks_like_jwt(token.expose()) =>
            {
                self.authenticate_jwt(token).await
            }
            Err(e) => Err(e),
        }
    }

    /// Authenticates an OIDC JWT only (e.g. to exchange it for an SSH certificate): the identity
    /// and the token's expiry, or [`AuthError::Refused`] with the precise reason.
    pub async fn authenticate_jwt(&self, token: &Secret<String>) -> Result<Verified, AuthError> {
        if token.expose().is_empty() {
            return Err(AuthError::Missing);
        }
        let accepted = self
            .oidc
            .verify(token.expose())
            .await
            .map_err(|r| AuthError::Refused(Box::new(r)))?;
        tracing::debug!(
            identity = %accepted.name,
            issuer = %accepted.issuer,
            jti = accepted.jti.as_deref().unwrap_or("-"),
            "oidc token accepted"
        );
        Ok(Verified {
            identity: Identity {
                name: accepted.name,
                groups: accepted.groups,
                method: AuthMethod::Oidc,
            },
            expires: Some(accepted.expires),
        })
    }

    /// Authenticates a static token (constant time).
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

fn tokens(config: &Config) -> Vec<TokenEntry> {
    config
        .tokens
        .iter()
        .map(|t| TokenEntry {
            sha256: t.sha256,
            name: t.name.clone(),
            groups: t.groups.clone(),
        })
        .collect()
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
            oidc: oidc::Verifier::new(&[]),
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

    #[tokio::test]
    async fn jwt_shaped_tokens_need_an_issuer() {
        // Without [[oidc]], a JWT-shaped token is just an unknown token.
        let jwt = Secret::new("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_string());
        assert_eq!(auth().authenticate(&jwt).await, Err(AuthError::Invalid));
        let id = auth()
            .authenticate(&Secret::new("s3cret".into()))
            .await
            .expect("static token");
        assert_eq!((id.identity.method, id.expires), (AuthMethod::Token, None));
        assert_eq!(
            auth().authenticate_jwt(&jwt).await.map_err(|e| e.detail()),
            Err("invalid credentials: oidc token sha256:".to_string() + &token_sha256_hex(jwt.expose())[..12]
                + ": algorithm \"none\" is not accepted (only RS256, RS384, RS512, PS256, ES256, ES384, EdDSA)")
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
