//! Encryption of stored packs at rest: AES-256-GCM over 1 MiB chunks, streamed.
//!
//! A denied pack may hold the very secret that was blocked; `[audit] pack_key_file` keeps it
//! unreadable to whoever copies `state_dir` without the key. File layout:
//!
//! ```text
//! "GGPACK" 0x00 0x01 | salt (32 random bytes) | chunk 0 | chunk 1 | ... | final chunk
//! chunk = AES-256-GCM(file key, nonce, plaintext of at most 1 MiB) || tag (16 bytes)
//! ```
//!
//! - the file key is HMAC-SHA256(master key, "gitgate pack v1" || salt): a fresh key per
//!   file, so nonces can be counters without ever repeating under one key;
//! - nonce = counter (8 bytes, big-endian) || 0 0 0 || final flag; the flag marks the last
//!   chunk, so cutting the file at a chunk boundary fails authentication (as in the STREAM
//!   construction of Hoang, Reyhanitabar, Rogaway and Vizár);
//! - associated data = magic || SHA-256 of the plaintext (the file's name): a chunk or a
//!   whole file moved under another name does not decrypt.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::AuditError;

const MAGIC: &[u8; 8] = b"GGPACK\x00\x01";
const SALT_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// Plaintext bytes per chunk.
pub(crate) const CHUNK: usize = 1 << 20;

/// The master key for pack encryption. Its `Debug` never prints it.
#[derive(Clone)]
pub struct PackKey([u8; 32]);

impl std::fmt::Debug for PackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PackKey([redacted])")
    }
}

impl PackKey {
    /// Reads a key file: exactly 32 raw bytes, or 64 hex digits (surrounding whitespace
    /// ignored).
    pub fn load(path: &Path) -> Result<PackKey, AuditError> {
        let bytes = std::fs::read(path).map_err(AuditError::io(path))?;
        let mut key = [0u8; 32];
        if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
            key = raw;
        } else {
            let text = std::str::from_utf8(&bytes).unwrap_or("").trim();
            hex::decode_to_slice(text, &mut key).map_err(|_| AuditError::PackKey {
                path: path.to_path_buf(),
                detail: "expected 32 raw bytes or 64 hex digits".into(),
            })?;
        }
        Ok(PackKey(key))
    }

    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> PackKey {
        PackKey(bytes)
    }

    fn cipher(&self, salt: &[u8]) -> Aes256Gcm {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"gitgate pack v1");
        mac.update(salt);
        let file_key = mac.finalize().into_bytes();
        Aes256Gcm::new(&file_key)
    }
}

fn nonce(counter: u64, last: bool) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n.into()
}

fn aad(sha256: &[u8; 32]) -> [u8; 40] {
    let mut a = [0u8; 40];
    a[..8].copy_from_slice(MAGIC);
    a[8..].copy_from_slice(sha256);
    a
}

/// Reads up to `len` bytes into `buf` (cleared first); fewer only at end of input.
fn read_chunk(input: &mut impl Read, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
    buf.clear();
    input.take(len as u64).read_to_end(buf)?;
    Ok(())
}

/// Encrypts `input` (whose SHA-256 is `sha256`) into `out`.
pub(crate) fn encrypt(
    key: &PackKey,
    sha256: &[u8; 32],
    input: impl Read,
    out: &mut impl Write,
) -> io::Result<()> {
    encrypt_chunked(key, sha256, input, out, CHUNK)
}

/// [`encrypt`] with `chunk` plaintext bytes per chunk (small ones keep tests fast).
fn encrypt_chunked(
    key: &PackKey,
    sha256: &[u8; 32],
    input: impl Read,
    out: &mut impl Write,
    chunk: usize,
) -> io::Result<()> {
    let mut salt = [0u8; SALT_LEN];
    random(&mut salt)?;
    let cipher = key.cipher(&salt);
    let aad = aad(sha256);
    out.write_all(MAGIC)?;
    out.write_all(&salt)?;
    let mut input = BufReader::new(input);
    let mut buf = Vec::with_capacity(chunk + TAG_LEN);
    let mut counter = 0u64;
    loop {
        read_chunk(&mut input, &mut buf, chunk)?;
        // The chunk is the last when the input ends here: peek without consuming.
        let last = buf.len() < chunk || input.fill_buf()?.is_empty();
        cipher
            .encrypt_in_place(&nonce(counter, last), &aad, &mut buf)
            .map_err(|_| io::Error::other("encryption failed"))?;
        out.write_all(&buf)?;
        if last {
            return Ok(());
        }
        counter = counter
            .checked_add(1)
            .ok_or_else(|| io::Error::other("pack too large"))?;
    }
}

/// Why an encrypted pack could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecryptError {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The file is not what was written: changed, cut, moved or under another key.
    #[error("{0}")]
    Corrupt(&'static str),
}

/// Decrypts `input` (the pack whose plaintext SHA-256 is `sha256`) into `out`; returns the
/// plaintext length. Bytes of a chunk reach `out` only once the chunk is authenticated.
pub(crate) fn decrypt(
    key: &PackKey,
    sha256: &[u8; 32],
    input: impl Read,
    out: &mut impl Write,
) -> Result<u64, DecryptError> {
    decrypt_chunked(key, sha256, input, out, CHUNK)
}

/// [`decrypt`] with `chunk` plaintext bytes per chunk.
fn decrypt_chunked(
    key: &PackKey,
    sha256: &[u8; 32],
    input: impl Read,
    out: &mut impl Write,
    chunk: usize,
) -> Result<u64, DecryptError> {
    let mut input = BufReader::new(input);
    let mut header = [0u8; MAGIC.len() + SALT_LEN];
    input.read_exact(&mut header).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => DecryptError::Corrupt("truncated header"),
        _ => DecryptError::Io(e),
    })?;
    let (magic, salt) = header.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(DecryptError::Corrupt("not an encrypted gitgate pack"));
    }
    let cipher = key.cipher(salt);
    let aad = aad(sha256);
    let mut buf = Vec::with_capacity(chunk + TAG_LEN);
    let mut counter = 0u64;
    let mut total = 0u64;
    loop {
        read_chunk(&mut input, &mut buf, chunk + TAG_LEN)?;
        if buf.len() < TAG_LEN {
            return Err(DecryptError::Corrupt(
                "truncated: the final chunk is missing",
            ));
        }
        let last = buf.len() < chunk + TAG_LEN || input.fill_buf()?.is_empty();
        cipher
            .decrypt_in_place(&nonce(counter, last), &aad, &mut buf)
            .map_err(|_| {
                DecryptError::Corrupt("authentication failed (changed, cut, or another key)")
            })?;
        out.write_all(&buf)?;
        total += buf.len() as u64;
        if last {
            return Ok(total);
        }
        counter = counter
            .checked_add(1)
            .ok_or(DecryptError::Corrupt("too many chunks"))?;
    }
}

fn random(buf: &mut [u8]) -> io::Result<()> {
    use rand::TryRngCore;
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .map_err(|e| io::Error::other(format!("no randomness: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small chunk size, so that the boundaries are cheap to reach in debug builds.
    const SMALL: usize = 64;

    fn roundtrip(len: usize, chunk: usize) {
        let key = PackKey::from_bytes([3u8; 32]);
        let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let sha = [9u8; 32];
        let mut enc = Vec::new();
        encrypt_chunked(&key, &sha, plain.as_slice(), &mut enc, chunk)
            .unwrap_or_else(|e| panic!("{e}"));
        let chunks = len.div_ceil(chunk).max(1);
        assert_eq!(enc.len(), 40 + len + chunks * TAG_LEN, "len {len}");
        let mut back = Vec::new();
        let n = decrypt_chunked(&key, &sha, enc.as_slice(), &mut back, chunk);
        assert_eq!(n.ok(), Some(len as u64));
        assert!(back == plain, "len {len}");
    }

    #[test]
    fn roundtrips_at_chunk_boundaries() {
        for len in [0, 1, SMALL - 1, SMALL, SMALL + 1, 2 * SMALL, 5 * SMALL + 3] {
            roundtrip(len, SMALL);
        }
        roundtrip(CHUNK + 1, CHUNK);
    }

    fn encrypted(len: usize) -> Vec<u8> {
        let mut enc = Vec::new();
        let plain = vec![1u8; len];
        let key = PackKey::from_bytes([3u8; 32]);
        encrypt_chunked(&key, &[9u8; 32], &plain[..], &mut enc, SMALL)
            .unwrap_or_else(|e| panic!("{e}"));
        enc
    }

    fn fails(enc: &[u8], key: [u8; 32], sha: [u8; 32]) -> bool {
        let mut sink = Vec::new();
        matches!(
            decrypt_chunked(&PackKey::from_bytes(key), &sha, enc, &mut sink, SMALL),
            Err(DecryptError::Corrupt(_))
        )
    }

    #[test]
    fn tampering_is_detected() {
        const CHUNK: usize = SMALL;
        let enc = encrypted(2 * CHUNK + 5);
        assert!(!fails(&enc, [3u8; 32], [9u8; 32]));
        // Another key, another name.
        assert!(fails(&enc, [4u8; 32], [9u8; 32]));
        assert!(fails(&enc, [3u8; 32], [8u8; 32]));
        // A flipped bit.
        let mut flipped = enc.clone();
        flipped[100] ^= 1;
        assert!(fails(&flipped, [3u8; 32], [9u8; 32]));
        // Cut at a chunk boundary: the final chunk is gone.
        let cut = &enc[..40 + 2 * (CHUNK + TAG_LEN)];
        assert!(fails(cut, [3u8; 32], [9u8; 32]));
        let cut = &enc[..40 + (CHUNK + TAG_LEN)];
        assert!(fails(cut, [3u8; 32], [9u8; 32]));
        // Cut inside the header, or nothing at all.
        assert!(fails(&enc[..20], [3u8; 32], [9u8; 32]));
        assert!(fails(&enc[..40], [3u8; 32], [9u8; 32]));
        // Chunks swapped.
        let mut swapped = enc[..40].to_vec();
        swapped.extend_from_slice(&enc[40 + CHUNK + TAG_LEN..40 + 2 * (CHUNK + TAG_LEN)]);
        swapped.extend_from_slice(&enc[40..40 + CHUNK + TAG_LEN]);
        swapped.extend_from_slice(&enc[40 + 2 * (CHUNK + TAG_LEN)..]);
        assert!(fails(&swapped, [3u8; 32], [9u8; 32]));
    }

    #[test]
    fn key_files_are_raw_or_hex() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let raw = dir.path().join("raw");
        std::fs::write(&raw, [5u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        let hexfile = dir.path().join("hex");
        std::fs::write(&hexfile, format!("{}\n", hex::encode([5u8; 32])))
            .unwrap_or_else(|e| panic!("{e}"));
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "short").unwrap_or_else(|e| panic!("{e}"));
        let a = PackKey::load(&raw).map(|k| k.0);
        let b = PackKey::load(&hexfile).map(|k| k.0);
        assert_eq!(a.ok(), b.ok());
        let err = PackKey::load(&bad).map(|_| ()).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("64 hex digits") && !e.contains("short")));
        assert_eq!(
            format!("{:?}", PackKey::from_bytes([1; 32])),
            "PackKey([redacted])"
        );
    }
}
