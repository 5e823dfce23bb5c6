//! SSH identities: public keys listed in `[[ssh_key]]`, and OpenSSH user certificates signed by
//! a trusted CA (`[ssh] user_ca_keys` and the gateway's own CA, [`super::ssh_ca`]).
//!
//! russh verifies that the client holds the private key and that a certificate's signature
//! matches the key it names as signer, and checks the validity window. Everything else that
//! makes a certificate trustworthy is checked here (PROTOCOL.certkeys): the type is `user`,
//! the signer is a trusted CA, the window holds, every critical option is understood and
//! satisfied (`source-address`; anything else refuses the certificate), and the key id names
//! the identity. The principals are the identity's groups.

use std::net::IpAddr;

use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::{Certificate, HashAlg, PublicKey};

use super::{AuthMethod, Identity};
use crate::config::Config;

/// Most principals (groups) accepted from one certificate.
const MAX_PRINCIPALS: usize = 256;
/// Longest key id or principal accepted, in bytes.
const MAX_NAME_BYTES: usize = 256;

/// Why a certificate was refused. Logged, never shown to the client (which only learns that
/// authentication failed, as with OpenSSH).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertRefusal {
    /// A host certificate was presented for user authentication.
    #[error("not a user certificate")]
    NotUser,
    /// The signing key is not a trusted CA.
    #[error("signed by an untrusted CA ({fingerprint})")]
    UntrustedCa {
        /// SHA-256 fingerprint of the signing key.
        fingerprint: String,
    },
    /// The CA signature does not verify.
    #[error("the CA signature does not verify")]
    BadSignature,
    /// Before `valid_after`.
    #[error("not valid yet (valid after {valid_after})")]
    NotYetValid {
        /// Unix seconds.
        valid_after: u64,
    },
    /// At or after `valid_before`.
    #[error("expired (valid before {valid_before})")]
    Expired {
        /// Unix seconds.
        valid_before: u64,
    },
    /// A critical option the gateway does not implement.
    #[error("unknown critical option {name:?}")]
    UnknownCriticalOption {
        /// The option's name (cut to 64 characters).
        name: String,
    },
    /// `source-address` does not include the client's address (or it is unknown).
    #[error("source-address does not allow {peer}")]
    SourceAddress {
        /// The client's address, or `unknown`.
        peer: String,
    },
    /// `source-address` cannot be parsed.
    #[error("malformed source-address {value:?}")]
    BadSourceAddress {
        /// The option's value (cut to 128 characters).
        value: String,
    },
    /// The key id (the identity's name) is empty or unusable.
    #[error("unusable key id: {reason}")]
    BadKeyId {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Too many or unusable principals.
    #[error("unusable principals: {reason}")]
    BadPrincipals {
        /// What is wrong with them.
        reason: &'static str,
    },
}

/// A configured key could not be parsed (the config checked the syntax; this is the key
/// itself).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct SshKeyError {
    /// Which key.
    pub what: String,
    /// Why.
    pub detail: String,
}

struct KeyEntry {
    key: KeyData,
    name: String,
    groups: Vec<String>,
}

/// Who may connect over SSH: the `[[ssh_key]]` keys and the trusted user CAs.
pub struct SshAuthority {
    keys: Vec<KeyEntry>,
    cas: Vec<KeyData>,
}

impl SshAuthority {
    /// Builds the authority from the configuration plus `extra_cas` (the gateway's own CA).
    pub fn new(config: &Config, extra_cas: &[KeyData]) -> Result<SshAuthority, SshKeyError> {
        let parse = |line: &str, what: String| {
            PublicKey::from_openssh(line)
                .map(|k| k.key_data().clone())
                .map_err(|e| SshKeyError {
                    what,
                    detail: e.to_string(),
                })
        };
        let mut keys = Vec::with_capacity(config.ssh_keys.len());
        for entry in &config.ssh_keys {
            keys.push(KeyEntry {
                key: parse(
                    &entry.public_key,
                    format!("[[ssh_key]] {:?} public_key", entry.name),
                )?,
                name: entry.name.clone(),
                groups: entry.groups.clone(),
            });
        }
        let mut cas = Vec::new();
        for (i, line) in config.ssh.user_ca_keys.iter().enumerate() {
            cas.push(parse(line, format!("[ssh] user_ca_keys[{i}]"))?);
        }
        cas.extend(extra_cas.iter().cloned());
        Ok(SshAuthority { keys, cas })
    }

    /// The identity of a listed public key.
    pub fn by_key(&self, key: &KeyData) -> Option<Identity> {
        self.keys.iter().find(|e| &e.key == key).map(|e| Identity {
            name: e.name.clone(),
            groups: e.groups.clone(),
            method: AuthMethod::SshKey,
        })
    }

    /// Checks an OpenSSH user certificate presented by a client at `peer` at time `now`
    /// (Unix seconds); its identity when it is acceptable.
    pub fn check_certificate(
        &self,
        cert: &Certificate,
        now: u64,
        peer: Option<IpAddr>,
    ) -> Result<Identity, CertRefusal> {
        if cert.cert_type() != CertType::User {
            return Err(CertRefusal::NotUser);
        }
        let signer = cert.signature_key();
        if !self.cas.iter().any(|ca| ca == signer) {
            return Err(CertRefusal::UntrustedCa {
                fingerprint: signer.fingerprint(HashAlg::Sha256).to_string(),
            });
        }
        // Checked again although russh did: this module must not depend on what the
        // transport happened to verify.
        let fingerprint = signer.fingerprint(HashAlg::Sha256);
        if cert.validate_at(now, [&fingerprint]).is_err() {
            if now < cert.valid_after() {
                return Err(CertRefusal::NotYetValid {
                    valid_after: cert.valid_after(),
                });
            }
            if now >= cert.valid_before() {
                return Err(CertRefusal::Expired {
                    valid_before: cert.valid_before(),
                });
            }
            return Err(CertRefusal::BadSignature);
        }
        for (name, value) in cert.critical_options().iter() {
            match name.as_str() {
                "source-address" => check_source_address(value, peer)?,
                other => {
                    return Err(CertRefusal::UnknownCriticalOption {
                        name: other.chars().take(64).collect(),
                    })
                }
            }
        }
        let name = cert.key_id();
        if name.is_empty() {
            return Err(CertRefusal::BadKeyId { reason: "empty" });
        }
        if name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
            return Err(CertRefusal::BadKeyId {
                reason: "too long or has control characters",
            });
        }
        let principals = cert.valid_principals();
        if principals.len() > MAX_PRINCIPALS {
            return Err(CertRefusal::BadPrincipals { reason: "too many" });
        }
        if principals
            .iter()
            .any(|p| p.is_empty() || p.len() > MAX_NAME_BYTES || p.chars().any(char::is_control))
        {
            return Err(CertRefusal::BadPrincipals {
                reason: "empty, too long or with control characters",
            });
        }
        Ok(Identity {
            name: name.to_string(),
            groups: principals.to_vec(),
            method: AuthMethod::SshCertificate,
        })
    }
}

/// `source-address`: a comma-separated list of addresses and CIDR blocks (PROTOCOL.certkeys);
/// the client's address must be in one of them.
fn check_source_address(value: &str, peer: Option<IpAddr>) -> Result<(), CertRefusal> {
    let bad = || CertRefusal::BadSourceAddress {
        value: value.chars().take(128).collect(),
    };
    let mut blocks = Vec::new();
    for item in value.split(',') {
        blocks.push(parse_cidr(item.trim()).ok_or_else(bad)?);
    }
    if blocks.is_empty() {
        return Err(bad());
    }
    let Some(peer) = peer.map(|p| p.to_canonical()) else {
        return Err(CertRefusal::SourceAddress {
            peer: "unknown".into(),
        });
    };
    if blocks.iter().any(|(net, bits)| in_block(peer, *net, *bits)) {
        Ok(())
    } else {
        Err(CertRefusal::SourceAddress {
            peer: peer.to_string(),
        })
    }
}

fn parse_cidr(item: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match item.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (item, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr.to_canonical(), bits))
}

fn in_block(peer: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (peer, net) {
        (IpAddr::V4(p), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(p) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(p), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(p) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::ssh_key::certificate::Builder;
    use russh::keys::ssh_key::private::{Ed25519Keypair, PrivateKey};

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    struct Cert {
        cert_type: CertType,
        window: (u64, u64),
        key_id: &'static str,
        principals: Vec<&'static str>,
        critical: Vec<(&'static str, &'static str)>,
    }

    impl Default for Cert {
        fn default() -> Self {
            Cert {
                cert_type: CertType::User,
                window: (1000, 2000),
                key_id: "agent-7",
                principals: vec!["agents", "ci"],
                critical: Vec::new(),
            }
        }
    }

    impl Cert {
        fn sign(&self, ca: &PrivateKey) -> Certificate {
            let user = key(9);
            let mut b = Builder::new(
                [7u8; 16],
                user.public_key().key_data().clone(),
                self.window.0,
                self.window.1,
            )
            .expect("builder");
            b.cert_type(self.cert_type).expect("type");
            b.key_id(self.key_id).expect("key id");
            for p in &self.principals {
                b.valid_principal(*p).expect("principal");
            }
            if self.principals.is_empty() {
                b.all_principals_valid().expect("all");
            }
            for (k, v) in &self.critical {
                b.critical_option(*k, *v).expect("option");
            }
            b.sign(ca).expect("sign")
        }
    }

    fn authority() -> SshAuthority {
        SshAuthority {
            keys: vec![KeyEntry {
                key: key(3).public_key().key_data().clone(),
                name: "agent-1".into(),
                groups: vec!["agents".into()],
            }],
            cas: vec![key(1).public_key().key_data().clone()],
        }
    }

    fn peer() -> Option<IpAddr> {
        Some("127.0.0.1".parse().expect("ip"))
    }

    #[test]
    fn listed_keys_have_identities() {
        let a = authority();
        let id = a.by_key(key(3).public_key().key_data()).expect("listed");
        assert_eq!(id.name, "agent-1");
        assert_eq!(id.method, AuthMethod::SshKey);
        assert!(a.by_key(key(4).public_key().key_data()).is_none());
    }

    #[test]
    fn key_id_is_the_name_and_principals_the_groups() {
        let cert = Cert::default().sign(&key(1));
        let id = authority()
            .check_certificate(&cert, 1500, peer())
            .expect("accepted");
        assert_eq!(id.name, "agent-7");
        assert_eq!(id.groups, vec!["agents".to_string(), "ci".to_string()]);
        assert_eq!(id.method, AuthMethod::SshCertificate);
    }

    #[test]
    fn window_is_checked() {
        let cert = Cert::default().sign(&key(1));
        let a = authority();
        assert_eq!(
            a.check_certificate(&cert, 999, peer()),
            Err(CertRefusal::NotYetValid { valid_after: 1000 })
        );
        assert_eq!(
            a.check_certificate(&cert, 2000, peer()),
            Err(CertRefusal::Expired { valid_before: 2000 })
        );
        assert!(a.check_certificate(&cert, 1000, peer()).is_ok());
    }

    #[test]
    fn untrusted_ca_and_host_certificates_are_refused() {
        let a = authority();
        let other = Cert::default().sign(&key(2));
        assert!(matches!(
            a.check_certificate(&other, 1500, peer()),
            Err(CertRefusal::UntrustedCa { .. })
        ));
        let host = Cert {
            cert_type: CertType::Host,
            ..Cert::default()
        }
        .sign(&key(1));
        assert_eq!(
            a.check_certificate(&host, 1500, peer()),
            Err(CertRefusal::NotUser)
        );
    }

    #[test]
    fn tampered_certificate_is_refused() {
        let cert = Cert::default().sign(&key(1));
        // Re-encode with another key id but the original signature.
        let mut bytes = cert.to_bytes().expect("encode");
        let at = bytes
            .windows(7)
            .position(|w| w == b"agent-7")
            .expect("key id in encoding");
        bytes[at + 6] = b'8';
        let forged = Certificate::from_bytes(&bytes).expect("decode");
        assert_eq!(forged.key_id(), "agent-8");
        assert_eq!(
            authority().check_certificate(&forged, 1500, peer()),
            Err(CertRefusal::BadSignature)
        );
    }

    #[test]
    fn critical_options() {
        let a = authority();
        let forced = Cert {
            critical: vec![("force-command", "ls")],
            ..Cert::default()
        }
        .sign(&key(1));
        assert!(matches!(
            a.check_certificate(&forced, 1500, peer()),
            Err(CertRefusal::UnknownCriticalOption { name }) if name == "force-command"
        ));
        let pinned = Cert {
            critical: vec![("source-address", "10.0.0.0/8,127.0.0.1/32")],
            ..Cert::default()
        }
        .sign(&key(1));
        assert!(a.check_certificate(&pinned, 1500, peer()).is_ok());
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert!(a.check_certificate(&pinned, 1500, Some(mapped)).is_ok());
        assert!(matches!(
            a.check_certificate(&pinned, 1500, Some("192.168.1.1".parse().expect("ip"))),
            Err(CertRefusal::SourceAddress { .. })
        ));
        assert!(matches!(
            a.check_certificate(&pinned, 1500, None),
            Err(CertRefusal::SourceAddress { .. })
        ));
        let bad = Cert {
            critical: vec![("source-address", "10.0.0.0/33")],
            ..Cert::default()
        }
        .sign(&key(1));
        assert!(matches!(
            a.check_certificate(&bad, 1500, peer()),
            Err(CertRefusal::BadSourceAddress { .. })
        ));
    }

    #[test]
    fn empty_key_id_is_refused() {
        let cert = Cert {
            key_id: "",
            ..Cert::default()
        }
        .sign(&key(1));
        assert!(matches!(
            authority().check_certificate(&cert, 1500, peer()),
            Err(CertRefusal::BadKeyId { .. })
        ));
    }

    #[test]
    fn cidr_blocks() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(in_block(ip("10.1.2.3"), ip("10.0.0.0"), 8));
        assert!(!in_block(ip("11.1.2.3"), ip("10.0.0.0"), 8));
        assert!(in_block(ip("1.2.3.4"), ip("0.0.0.0"), 0));
        assert!(in_block(ip("::1"), ip("::1"), 128));
        assert!(!in_block(ip("::2"), ip("::1"), 128));
        assert!(in_block(ip("fd00::5"), ip("fd00::"), 16));
        assert!(!in_block(ip("10.0.0.1"), ip("::"), 0));
        assert_eq!(parse_cidr("10.0.0.1"), Some((ip("10.0.0.1"), 32)));
        assert_eq!(parse_cidr("x"), None);
        assert_eq!(parse_cidr("::/129"), None);
    }
}
