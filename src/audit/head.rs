//! The signed head: a one-line statement "the record ends at seq N with hash H", signed with
//! the gateway's Ed25519 key and kept outside the database (`<state_dir>/audit.head`).
//!
//! Hashes alone do not stop someone who can write the database from deleting the newest
//! records, or from appending records of their own (anyone can compute a SHA-256): the head
//! does, as long as they cannot sign. The line is self-describing so that it can be shipped
//! to a log sink as is and checked later (`gitgate audit verify --anchor FILE`):
//!
//! ```text
//! gitgate-audit-head v1 seq=42 hash=<64 hex> time=2024-06-01T12:00:00.123Z key=<64 hex> sig=<128 hex>
//! ```
//!
//! The signature covers the line up to (not including) ` sig=`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::AuditError;

const TAG: &str = "gitgate-audit-head";
const VERSION: &str = "v1";

/// A signed head: the newest record's seq and hash when it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Seq of the newest record (0 for an empty store).
    pub seq: u64,
    /// Its hash (64 zeros for an empty store).
    pub hash: String,
    /// When the head was signed (RFC 3339, UTC, ms).
    pub time: String,
    /// The signing key's public half, hex.
    pub key: String,
    /// Ed25519 signature over [`Head::message`], hex.
    pub sig: String,
}

impl Head {
    /// Signs a head for `seq`/`hash` with `key`.
    pub(crate) fn sign(key: &SigningKey, seq: u64, hash: &str, time: &str) -> Head {
        let public = hex::encode(key.verifying_key().as_bytes());
        let message = message(seq, hash, time, &public);
        Head {
            seq,
            hash: hash.to_string(),
            time: time.to_string(),
            key: public,
            sig: hex::encode(key.sign(message.as_bytes()).to_bytes()),
        }
    }

    /// The signed text: the line without ` sig=...`.
    pub fn message(&self) -> String {
        message(self.seq, &self.hash, &self.time, &self.key)
    }

    /// The whole line (no newline).
    pub fn line(&self) -> String {
        format!("{} sig={}", self.message(), self.sig)
    }

    /// Whether the signature is valid and made by `key`.
    pub fn signed_by(&self, key: &VerifyingKey) -> bool {
        if self.key != hex::encode(key.as_bytes()) {
            return false;
        }
        let mut sig = [0u8; 64];
        if hex::decode_to_slice(&self.sig, &mut sig).is_err() {
            return false;
        }
        key.verify(self.message().as_bytes(), &Signature::from_bytes(&sig))
            .is_ok()
    }

    /// Finds and parses a head in `text`: the line may carry a prefix (a log sink's
    /// timestamp, a JSON field); what follows the signature's 128 hex digits is ignored.
    pub fn find(text: &str) -> Result<Head, &'static str> {
        let start = text.find(TAG).ok_or("no gitgate-audit-head line")?;
        let mut words = text[start..].split(' ');
        let mut next = |name: &'static str| -> Result<&str, &'static str> {
            let word = words.next().ok_or("the line is cut short")?;
            word.strip_prefix(name).ok_or("unexpected field")
        };
        next(TAG)?;
        if !next(VERSION)?.is_empty() {
            return Err("unknown head version");
        }
        let seq = next("seq=")?.parse().map_err(|_| "seq is not a number")?;
        let hash = hex_field(next("hash=")?, 64).ok_or("hash is not 64 hex digits")?;
        let time = next("time=")?.to_string();
        let key = hex_field(next("key=")?, 64).ok_or("key is not 64 hex digits")?;
        let sig = next("sig=")?;
        let sig = sig
            .get(..128)
            .and_then(|s| hex_field(s, 128))
            .ok_or("sig is not 128 hex digits")?;
        Ok(Head {
            seq,
            hash,
            time,
            key,
            sig,
        })
    }
}

/// The signature (hex) of record `seq` with `hash`: what makes a record appended without the
/// key stand out, wherever it is.
pub(crate) fn sign_record(key: &SigningKey, seq: u64, hash: &str) -> String {
    hex::encode(key.sign(record_message(seq, hash).as_bytes()).to_bytes())
}

/// Whether `sig` is `key`'s signature of record `seq` with `hash`.
pub(crate) fn record_signed_by(key: &VerifyingKey, seq: u64, hash: &str, sig: &str) -> bool {
    let mut bytes = [0u8; 64];
    if hex::decode_to_slice(sig, &mut bytes).is_err() {
        return false;
    }
    key.verify(
        record_message(seq, hash).as_bytes(),
        &Signature::from_bytes(&bytes),
    )
    .is_ok()
}

fn record_message(seq: u64, hash: &str) -> String {
    format!("gitgate-audit-record {VERSION} seq={seq} hash={hash}")
}

fn message(seq: u64, hash: &str, time: &str, key: &str) -> String {
    format!("{TAG} {VERSION} seq={seq} hash={hash} time={time} key={key}")
}

fn hex_field(text: &str, len: usize) -> Option<String> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

/// Reads the head at `path`; `None` when the file does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<Head>, AuditError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Head::find(text.trim_end())
            .map(Some)
            .map_err(|reason| AuditError::BadHead {
                path: path.to_path_buf(),
                reason,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuditError::io(path)(e)),
    }
}

/// Writes `head` to `path` (created or truncated), flushed to disk when `sync` is set.
pub(crate) fn write(path: &Path, head: &Head, sync: bool) -> Result<(), AuditError> {
    let io = AuditError::io(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .map_err(AuditError::io(path))?;
    let mut line = head.line();
    line.push('\n');
    file.write_all(line.as_bytes())
        .and_then(|()| if sync { file.sync_all() } else { Ok(()) })
        .map_err(io)
}

/// Flushes the entries of folder `dir` (a created or renamed file) to disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(AuditError::io(dir))
}

/// Loads the signing key at `path` (PKCS#8 PEM), creating it (0600, with a `.pub` beside it
/// holding the public key in hex) when it does not exist and `create` is set.
pub(crate) fn signing_key(path: &Path, create: bool) -> Result<SigningKey, AuditError> {
    let key_error = |detail: String| AuditError::Key {
        path: path.to_path_buf(),
        detail,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| key_error(format!("not an Ed25519 PKCS#8 PEM key: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = generate().map_err(|e| key_error(format!("no randomness: {e}")))?;
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| key_error(format!("encoding: {e}")))?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(AuditError::io(path))?;
            file.write_all(pem.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(AuditError::io(path))?;
            let public = public_path(path);
            let hex_line = format!("{}\n", hex::encode(key.verifying_key().as_bytes()));
            std::fs::write(&public, hex_line).map_err(AuditError::io(&public))?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AuditError::NotFound {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(AuditError::io(path)(e)),
    }
}

/// The public key of the signing key at `path`: from the key itself when readable, else
/// from the `.pub` file beside it.
pub(crate) fn public_key(path: &Path) -> Result<VerifyingKey, AuditError> {
    match signing_key(path, false) {
        Ok(key) => Ok(key.verifying_key()),
        Err(AuditError::Io { .. } | AuditError::NotFound { .. }) => {
            let public = public_path(path);
            let text = match std::fs::read_to_string(&public) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(AuditError::NotFound {
                        path: path.to_path_buf(),
                    })
                }
                Err(e) => return Err(AuditError::io(&public)(e)),
            };
            parse_public(text.trim()).map_err(|detail| AuditError::Key {
                path: public,
                detail: detail.to_string(),
            })
        }
        Err(e) => Err(e),
    }
}

/// Parses a public key written as 64 hex digits.
pub fn parse_public(text: &str) -> Result<VerifyingKey, &'static str> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| "expected 64 hex digits")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key")
}

fn public_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".pub");
    name.into()
}

fn generate() -> Result<SigningKey, rand::rand_core::OsError> {
    use rand::TryRngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut seed)?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn a_head_line_round_trips_and_verifies() {
        let k = key();
        let head = Head::sign(&k, 42, &"ab".repeat(32), "2024-06-01T12:00:00.123Z");
        let line = head.line();
        assert!(line.starts_with("gitgate-audit-head v1 seq=42 hash=abab"));
        let parsed = Head::find(&format!("Jun 1 gitgate[12]: {line}\"}}"));
        assert_eq!(parsed.as_ref(), Ok(&head));
        assert!(head.signed_by(&k.verifying_key()));
        let other = SigningKey::from_bytes(&[8u8; 32]);
        assert!(!head.signed_by(&other.verifying_key()));
    }

    #[test]
    fn a_changed_head_fails_its_signature() {
        let k = key();
        let mut head = Head::sign(&k, 42, &"ab".repeat(32), "2024-06-01T12:00:00.123Z");
        head.seq = 41;
        assert!(!head.signed_by(&k.verifying_key()));
    }

    #[test]
    fn record_signatures_bind_seq_and_hash() {
        let k = key();
        let sig = sign_record(&k, 3, "ab");
        assert!(record_signed_by(&k.verifying_key(), 3, "ab", &sig));
        assert!(!record_signed_by(&k.verifying_key(), 4, "ab", &sig));
        assert!(!record_signed_by(&k.verifying_key(), 3, "ac", &sig));
        assert!(!record_signed_by(&k.verifying_key(), 3, "ab", "zz"));
    }

    #[test]
    fn malformed_heads_are_errors_not_panics() {
        for text in [
            "",
            "gitgate-audit-head",
            "gitgate-audit-head v2 seq=1",
            "gitgate-audit-head v1 seq=x hash=",
            "gitgate-audit-head v1 seq=1 hash=zz key=",
            "gitgate-audit-head v1 seq=1 hash=é",
        ] {
            assert!(Head::find(text).is_err(), "{text}");
        }
    }

    #[test]
    fn the_key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("k");
        assert!(matches!(
            signing_key(&path, false),
            Err(AuditError::NotFound { .. })
        ));
        let a = signing_key(&path, true).unwrap_or_else(|e| panic!("{e}"));
        let b = signing_key(&path, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.to_bytes(), b.to_bytes());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        let public = public_key(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(public, a.verifying_key());
    }
}
