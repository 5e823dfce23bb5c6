//! The gateway's own SSH user CA (`[ssh] ca_key`, Ed25519, created if absent): it signs
//! short-lived OpenSSH user certificates for callers who proved who they are with a bearer
//! credential, and the SSH front trusts it. Also the key-file helper shared with the SSH host
//! key.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey};

use super::Identity;

/// A key file could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading, creating or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an unencrypted OpenSSH private key.
    #[error("{path}: not an unencrypted OpenSSH private key: {detail}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

/// Reads the OpenSSH private key at `path`, or creates a new Ed25519 key there (mode 0600,
/// never overwriting a file that appeared meanwhile). The second value is true when the key
/// was created.
pub fn load_or_create_key(path: &Path, comment: &str) -> Result<(PrivateKey, bool), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read(path) {
        Ok(pem) => return parse_key(path, &pem).map(|k| (k, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&rand::random::<[u8; 32]>()));
    key.set_comment(comment);
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| KeyFileError::Format {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(pem.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok((key, true))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let pem = std::fs::read(path).map_err(io)?;
            parse_key(path, &pem).map(|k| (k, false))
        }
        Err(e) => Err(io(e)),
    }
}

fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKey, KeyFileError> {
    let key = PrivateKey::from_openssh(pem).map_err(|e| KeyFileError::Format {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if key.is_encrypted() {
        return Err(KeyFileError::Format {
            path: path.to_path_buf(),
            detail: "the key is encrypted".into(),
        });
    }
    Ok(key)
}

/// Why a certificate was not issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The body is not an OpenSSH public key line.
    #[error("expected an OpenSSH public key line (\"ssh-ed25519 AAAA... comment\"): {0}")]
    BadPublicKey(String),
    /// A certificate was offered where a plain public key is expected.
    #[error("expected a public key, not a certificate")]
    Certificate,
    /// The identity has no groups; a certificate without principals would be valid for every
    /// principal on any server that trusts this CA.
    #[error("identity {0:?} has no groups, and certificates carry groups as principals")]
    NoGroups(String),
    /// The credential has expired (or expires within the clock-skew allowance).
    #[error("the credential expires too soon to issue a certificate")]
    Expiring,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// An issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate as one OpenSSH line (`ssh-ed25519-cert-v01@openssh.com AAAA... id`).
    pub line: String,
    /// Its serial number.
    pub serial: u64,
    /// Valid from (Unix seconds).
    pub valid_after: u64,
    /// Valid until, exclusive (Unix seconds).
    pub valid_before: u64,
    /// SHA-256 fingerprint of the certified public key.
    pub key_fingerprint: String,
}

/// The gateway's SSH user CA.
pub struct SshCa {
    key: PrivateKey,
}

/// Certificates start this much before "now", so a client whose clock is a little behind can
/// use them at once; the whole window still fits in the allowed lifetime.
const BACKDATE: Duration = Duration::from_secs(30);

impl SshCa {
    /// Loads the CA key from `path`, creating it if absent.
    pub fn load_or_create(path: &Path) -> Result<SshCa, KeyFileError> {
        let (key, created) = load_or_create_key(path, "gitgate user CA")?;
        let ca = SshCa { key };
        if created {
            tracing::info!(path = %path.display(), fingerprint = %ca.fingerprint(), "created the SSH user CA key");
        }
        Ok(ca)
    }

    /// The CA's public key.
    pub fn public_key(&self) -> &KeyData {
        self.key.public_key().key_data()
    }

    /// `ssh-ed25519 AAAA...`: what to put in `TrustedUserCAKeys` elsewhere.
    pub fn public_key_line(&self) -> String {
        PublicKey::new(self.public_key().clone(), "gitgate user CA")
            .to_openssh()
            .unwrap_or_default()
    }

    /// SHA-256 fingerprint of the CA key.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// Signs a user certificate for `public_key_line` (an OpenSSH public key line): key id =
    /// the identity's name, principals = its groups, valid for at most `max_ttl` and never
    /// past `expires` (when the credential has an expiry).
    pub fn issue(
        &self,
        public_key_line: &str,
        identity: &Identity,
        max_ttl: Duration,
        expires: Option<SystemTime>,
        now: SystemTime,
    ) -> Result<Issued, IssueError> {
        let public_key = PublicKey::from_openssh(public_key_line.trim())
            .map_err(|e| IssueError::BadPublicKey(e.to_string()))?;
        if public_key.key_data().is_certificate() {
            return Err(IssueError::Certificate);
        }
        if identity.groups.is_empty() {
            return Err(IssueError::NoGroups(identity.name.clone()));
        }
        let now = unix(now);
        let ttl = max_ttl.as_secs().max(1);
        let backdate = BACKDATE.as_secs().min(ttl / 4);
        let valid_after = now.saturating_sub(backdate);
        let mut valid_before = valid_after.saturating_add(ttl);
        if let Some(expires) = expires {
            valid_before = valid_before.min(unix(expires));
        }
        if valid_before <= now {
            return Err(IssueError::Expiring);
        }
        let serial = rand::random::<u64>();
        let sign = |e: russh::keys::ssh_key::Error| IssueError::Sign(e.to_string());
        let mut builder = Builder::new(
            rand::random::<[u8; 32]>().to_vec(),
            public_key.key_data().clone(),
            valid_after,
            valid_before,
        )
        .map_err(sign)?;
        builder.serial(serial).map_err(sign)?;
        builder.cert_type(CertType::User).map_err(sign)?;
        builder.key_id(identity.name.clone()).map_err(sign)?;
        for group in &identity.groups {
            builder.valid_principal(group.clone()).map_err(sign)?;
        }
        builder
            .comment(format!("gitgate:{}", identity.name))
            .map_err(sign)?;
        let cert = builder.sign(&self.key).map_err(sign)?;
        Ok(Issued {
            line: cert.to_openssh().map_err(sign)?,
            serial,
            valid_after,
            valid_before,
            key_fingerprint: public_key.fingerprint(HashAlg::Sha256).to_string(),
        })
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AuthMethod;
    use russh::keys::ssh_key::Certificate;

    fn identity(groups: &[&str]) -> Identity {
        Identity {
            name: "agent-9".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            method: AuthMethod::Token,
        }
    }

    fn user_key() -> String {
        PrivateKey::from(Ed25519Keypair::from_seed(&[5; 32]))
            .public_key()
            .to_openssh()
            .expect("encode")
    }

    #[test]
    fn creates_a_private_key_file_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("sub/ca_key");
        let ca = SshCa::load_or_create(&path).expect("created");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = SshCa::load_or_create(&path).expect("loaded");
        assert_eq!(ca.fingerprint(), again.fingerprint());
        assert!(ca.public_key_line().starts_with("ssh-ed25519 "));
    }

    #[test]
    fn garbage_key_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("ca_key");
        std::fs::write(&path, "not a key").expect("write");
        assert!(matches!(
            SshCa::load_or_create(&path),
            Err(KeyFileError::Format { .. })
        ));
    }

    #[test]
    fn issues_user_certificates_within_the_limits() {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = SshCa::load_or_create(&dir.path().join("k")).expect("ca");
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let issued = ca
            .issue(
                &user_key(),
                &identity(&["agents", "ci"]),
                Duration::from_secs(600),
                None,
                now,
            )
            .expect("issued");
        let cert = Certificate::from_openssh(&issued.line).expect("parse");
        assert_eq!(cert.cert_type(), CertType::User);
        assert_eq!(cert.key_id(), "agent-9");
        assert_eq!(cert.valid_principals(), ["agents", "ci"]);
        assert_eq!(cert.signature_key(), ca.public_key());
        assert!(cert.valid_after() <= 1_000_000);
        assert_eq!(cert.valid_before() - cert.valid_after(), 600);
        assert!(cert.critical_options().is_empty());

        let expires = now + Duration::from_secs(120);
        let short = ca
            .issue(
                &user_key(),
                &identity(&["agents"]),
                Duration::from_secs(600),
                Some(expires),
                now,
            )
            .expect("issued");
        assert_eq!(short.valid_before, 1_000_120);

        assert!(matches!(
            ca.issue(
                &user_key(),
                &identity(&["a"]),
                Duration::from_secs(600),
                Some(now),
                now
            ),
            Err(IssueError::Expiring)
        ));
        assert!(matches!(
            ca.issue(
                &user_key(),
                &identity(&[]),
                Duration::from_secs(600),
                None,
                now
            ),
            Err(IssueError::NoGroups(_))
        ));
        assert!(matches!(
            ca.issue(
                "ssh-ed25519 !!!",
                &identity(&["a"]),
                Duration::from_secs(600),
                None,
                now
            ),
            Err(IssueError::BadPublicKey(_))
        ));
        assert!(matches!(
            ca.issue(
                &issued.line,
                &identity(&["a"]),
                Duration::from_secs(600),
                None,
                now
            ),
            Err(IssueError::BadPublicKey(_) | IssueError::Certificate)
        ));
    }
}
