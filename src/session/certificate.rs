//! Exchanging a bearer credential for a short-lived OpenSSH user certificate signed by the
//! gateway's SSH CA (`POST /api/ssh/certificate` on the HTTP listener). The certificate's key
//! id is the identity's name and its principals are the identity's groups, so the SSH front
//! maps it back onto the same identity.

use std::time::SystemTime;

use super::{Credential, Gateway, RejectKind, Rejection};
use crate::identity::ssh_ca::{IssueError, Issued, SshCa};
use crate::identity::AuthError;

impl Gateway {
    /// The gateway's SSH user CA; present when the SSH front is configured (`ssh_listen`).
    pub fn ssh_ca(&self) -> Option<&SshCa> {
        self.ssh_ca.as_ref()
    }

    /// Issues a user certificate for `public_key_line` to the caller holding `credential`,
    /// valid for at most `[ssh] max_cert_ttl` and never past the credential's own expiry.
    pub async fn issue_ssh_certificate(
        &self,
        credential: Credential,
        public_key_line: &str,
    ) -> Result<Issued, Rejection> {
        let Some(ca) = self.ssh_ca() else {
            return Err(Rejection::new(
                RejectKind::NotFound,
                "the SSH front is not enabled on this gateway (no [server] ssh_listen)",
            ));
        };
        let verified = match credential {
            Credential::None => Err(AuthError::Missing),
            Credential::Token(token) => self.verify_bearer(&token).await,
            // Certificates are issued for bearer credentials only: an SSH identity already
            // has a way in.
            Credential::Authenticated(_) => Err(AuthError::Invalid),
        };
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                self.metrics().auth_failures.inc();
                tracing::info!(reason = %e.detail(), "SSH certificate refused: authentication failed");
                let kind = match e {
                    AuthError::Missing => RejectKind::Unauthenticated,
                    _ => RejectKind::BadCredentials,
                };
                return Err(Rejection::new(kind, e.to_string()));
            }
        };
        let identity = &verified.identity;
        let issued = ca
            .issue(
                public_key_line,
                identity,
                self.config().ssh.max_cert_ttl,
                verified.expires,
                SystemTime::now(),
            )
            .map_err(|e| {
                tracing::info!(identity = %identity.name, reason = %e, "SSH certificate refused");
                let kind = match e {
                    IssueError::BadPublicKey(_) | IssueError::Certificate => RejectKind::BadRequest,
                    IssueError::NoGroups(_) | IssueError::Expiring => RejectKind::Forbidden,
                    IssueError::Sign(_) => RejectKind::Internal,
                };
                let message = match kind {
                    RejectKind::Internal => "the certificate could not be signed".to_string(),
                    _ => e.to_string(),
                };
                Rejection::new(kind, message)
            })?;
        tracing::info!(
            identity = %identity.name,
            groups = ?identity.groups,
            auth = identity.method.as_str(),
            serial = issued.serial,
            key = %issued.key_fingerprint,
            valid_after = issued.valid_after,
            valid_before = issued.valid_before,
            "issued an SSH user certificate"
        );
        Ok(issued)
    }
}
