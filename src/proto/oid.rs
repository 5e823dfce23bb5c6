//! Object ids as they appear on the wire: lowercase hex, 40 characters for SHA-1 and 64 for
//! SHA-256 (gitprotocol-common: `obj-id`; both sides "MUST treat obj-id as case-insensitive").
//!
//! # Why not `gix_hash::ObjectId`
//! gix-hash 0.28 (the release the gix-packetline 0.24 / gix-pack 0.77 line uses) compiles its
//! `Kind::Sha1` / `Kind::Sha256` variants only behind cargo features, which unify across the
//! whole dependency graph: whether SHA-256 ids parse would depend on what else is built. It also
//! brings hashers we do not need for parsing and raises the MSRV to 1.88. This module is ~150
//! lines; converting to gix is `gix_hash::ObjectId::try_from(id.as_bytes())` where a gix API
//! needs one.

use std::fmt;
use std::str::FromStr;

use bytes::BufMut;

use crate::proto::{excerpt, ProtoError};

/// The hash function of a repository (`object-format` capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum HashKind {
    /// SHA-1, 20 bytes, 40 hex characters. The default when `object-format` is absent.
    #[default]
    Sha1,
    /// SHA-256, 32 bytes, 64 hex characters.
    Sha256,
}

impl HashKind {
    /// The length of an id in bytes.
    pub fn len_bytes(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// The length of an id in hex characters.
    pub fn len_hex(self) -> usize {
        self.len_bytes() * 2
    }

    /// The name used by the `object-format` capability: `sha1` or `sha256`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }

    /// The kind named by an `object-format` value.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            _ => None,
        }
    }
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A git object id (SHA-1 or SHA-256). Displays as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectId {
    /// A SHA-1 id.
    Sha1([u8; 20]),
    /// A SHA-256 id.
    Sha256([u8; 32]),
}

impl ObjectId {
    /// Parses 40 or 64 hex characters (either case). Anything else is
    /// [`ProtoError::BadObjectId`].
    pub fn from_hex(hex: &[u8]) -> Result<Self, ProtoError> {
        let bad = || ProtoError::BadObjectId { id: excerpt(hex) };
        match hex.len() {
            40 => {
                let mut out = [0u8; 20];
                decode_hex(hex, &mut out).ok_or_else(bad)?;
                Ok(Self::Sha1(out))
            }
            64 => {
                let mut out = [0u8; 32];
                decode_hex(hex, &mut out).ok_or_else(bad)?;
                Ok(Self::Sha256(out))
            }
            _ => Err(bad()),
        }
    }

    /// Parses hex that must be of the given kind.
    pub fn from_hex_kind(hex: &[u8], kind: HashKind) -> Result<Self, ProtoError> {
        let id = Self::from_hex(hex)?;
        id.expect_kind(kind)?;
        Ok(id)
    }

    /// The id from raw bytes: 20 for SHA-1, 32 for SHA-256.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if let Ok(b) = <[u8; 20]>::try_from(bytes) {
            Some(Self::Sha1(b))
        } else {
            <[u8; 32]>::try_from(bytes).ok().map(Self::Sha256)
        }
    }

    /// The all-zero id of a kind: the "old" of a create and the "new" of a delete.
    pub fn null(kind: HashKind) -> Self {
        match kind {
            HashKind::Sha1 => Self::Sha1([0; 20]),
            HashKind::Sha256 => Self::Sha256([0; 32]),
        }
    }

    /// Whether this is the all-zero id.
    pub fn is_null(&self) -> bool {
        self.as_bytes().iter().all(|b| *b == 0)
    }

    /// The hash kind.
    pub fn kind(&self) -> HashKind {
        match self {
            Self::Sha1(_) => HashKind::Sha1,
            Self::Sha256(_) => HashKind::Sha256,
        }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Sha1(b) => b,
            Self::Sha256(b) => b,
        }
    }

    /// Errors with [`ProtoError::ObjectFormatMismatch`] unless the id is of `kind`.
    pub fn expect_kind(&self, kind: HashKind) -> Result<(), ProtoError> {
        if self.kind() == kind {
            Ok(())
        } else {
            Err(ProtoError::ObjectFormatMismatch {
                expected: kind,
                found: self.kind(),
            })
        }
    }

    /// Appends the lowercase hex form to `out`.
    pub fn write_hex<B: BufMut>(&self, out: &mut B) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for byte in self.as_bytes() {
            out.put_u8(DIGITS[usize::from(byte >> 4)]);
            out.put_u8(DIGITS[usize::from(byte & 0xf)]);
        }
    }

    /// The lowercase hex form.
    pub fn to_hex(&self) -> String {
        let mut out = Vec::with_capacity(self.kind().len_hex());
        self.write_hex(&mut out);
        // Only ASCII hex digits were written.
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn decode_hex(hex: &[u8], out: &mut [u8]) -> Option<()> {
    if hex.len() != out.len() * 2 {
        return None;
    }
    for (pair, byte) in hex.chunks_exact(2).zip(out.iter_mut()) {
        let [hi, lo] = pair else { return None };
        *byte = (hex_value(*hi)? << 4) | hex_value(*lo)?;
    }
    Some(())
}

/// The value of one hex digit, either case.
pub(crate) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = ProtoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "8e4f0ac7665d7bf0f40294e57a73f8c18ee60893";
    const SHA256: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

    #[test]
    fn hex_round_trips_for_both_kinds() -> Result<(), ProtoError> {
        for (hex, kind) in [(SHA1, HashKind::Sha1), (SHA256, HashKind::Sha256)] {
            let id: ObjectId = hex.parse()?;
            assert_eq!(id.kind(), kind);
            assert_eq!(id.to_string(), hex);
            assert_eq!(ObjectId::from_bytes(id.as_bytes()), Some(id));
        }
        Ok(())
    }

    #[test]
    fn uppercase_hex_is_accepted_and_written_lowercase() -> Result<(), ProtoError> {
        let id = ObjectId::from_hex(SHA1.to_uppercase().as_bytes())?;
        assert_eq!(id.to_string(), SHA1);
        Ok(())
    }

    #[test]
    fn null_ids() {
        assert!(ObjectId::null(HashKind::Sha1).is_null());
        assert_eq!(ObjectId::null(HashKind::Sha256).to_hex().len(), 64);
        assert!(!ObjectId::Sha1([1; 20]).is_null());
    }

    #[test]
    fn malformed_ids_are_errors() {
        for bad in [
            &b""[..],
            b"8e4f",
            &[b'g'; 40],
            &[0xff; 64],
            &SHA1.as_bytes()[..39],
            &[b'0'; 41],
        ] {
            assert!(
                matches!(ObjectId::from_hex(bad), Err(ProtoError::BadObjectId { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn kind_mismatch_is_reported() {
        let err = ObjectId::from_hex_kind(SHA1.as_bytes(), HashKind::Sha256);
        assert!(matches!(
            err,
            Err(ProtoError::ObjectFormatMismatch {
                expected: HashKind::Sha256,
                found: HashKind::Sha1
            })
        ));
    }
}
