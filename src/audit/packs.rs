//! Pushed packs, kept content-addressed under `<state_dir>/packs/`: `<sha256>.pack`, or
//! `<sha256>.pack.enc` when `[audit] pack_key_file` is set ([`super::crypt`]). The name is
//! always the SHA-256 of the plaintext, so `verify` and `export-pack` work either way.
//! Nothing here holds a whole pack in memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::crypt::{self, DecryptError, PackKey};
use super::head::sync_dir;
use super::AuditError;

/// A stored pack, as operation records reference it (`pack` field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRef {
    /// SHA-256 of the pack bytes as pushed (lower-case hex).
    pub sha256: String,
    /// Their number.
    pub bytes: u64,
}

/// Where a pack lives and in which form.
enum Stored {
    Plain(PathBuf),
    Encrypted(PathBuf),
}

impl Stored {
    fn into_path(self) -> PathBuf {
        match self {
            Stored::Plain(p) | Stored::Encrypted(p) => p,
        }
    }
}

/// The pack folder.
pub(crate) struct Packs {
    dir: PathBuf,
    key: Option<PackKey>,
}

const BUF: usize = 64 << 10;

impl Packs {
    pub(crate) fn new(dir: PathBuf, key: Option<PackKey>) -> Packs {
        Packs { dir, key }
    }

    fn plain_path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.pack"))
    }

    fn encrypted_path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.pack.enc"))
    }

    fn find(&self, sha256: &str) -> Option<Stored> {
        let enc = self.encrypted_path(sha256);
        if enc.is_file() {
            return Some(Stored::Encrypted(enc));
        }
        let plain = self.plain_path(sha256);
        plain.is_file().then_some(Stored::Plain(plain))
    }

    /// When the file of this pack was last stored or reused.
    pub(crate) fn modified(&self, sha256: &str) -> Option<SystemTime> {
        let path = self.find(sha256)?.into_path();
        path.metadata().and_then(|m| m.modified()).ok()
    }

    /// Whether a file for this pack exists.
    pub(crate) fn exists(&self, sha256: &str) -> bool {
        self.find(sha256).is_some()
    }

    /// Puts the spooled pack at `spool` into the store (a second name of the same file, or
    /// a copy across file systems; encrypted when a key is set) and returns its reference.
    /// The spool keeps its name, so readers of that path are not disturbed; the caller
    /// removes it. The pack is on disk when this returns.
    pub(crate) fn store(&self, spool: &Path) -> Result<PackRef, AuditError> {
        let (sha256, bytes) = hash_file(spool)?;
        let pack = PackRef {
            sha256: sha256.clone(),
            bytes,
        };
        if let Some(path) = self.find(&sha256).map(Stored::into_path) {
            // Content-addressed: the same bytes are kept already. Touch the file so that a
            // prune running now (it compares modification times) keeps it.
            File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(SystemTime::now()))
                .map_err(AuditError::io(&path))?;
            return Ok(pack);
        }
        match &self.key {
            None => self.move_plain(spool, &self.plain_path(&sha256))?,
            Some(key) => {
                let target = self.encrypted_path(&sha256);
                let mut raw = [0u8; 32];
                hex::decode_to_slice(&sha256, &mut raw)
                    .map_err(|_| AuditError::invalid("pack hash is not hex"))?;
                let input = File::open(spool).map_err(AuditError::io(spool))?;
                let mut tmp = tempfile::Builder::new()
                    .prefix(".incoming-")
                    .tempfile_in(&self.dir)
                    .map_err(AuditError::io(&self.dir))?;
                {
                    let mut out = io::BufWriter::with_capacity(BUF, tmp.as_file_mut());
                    crypt::encrypt(key, &raw, input, &mut out)
                        .and_then(|()| out.flush())
                        .map_err(AuditError::io(&target))?;
                }
                tmp.as_file().sync_all().map_err(AuditError::io(&target))?;
                tmp.persist(&target)
                    .map_err(|e| AuditError::io(&target)(e.error))?;
                sync_dir(&self.dir)?;
            }
        }
        Ok(pack)
    }

    /// Links `spool` as `target`, copying when the file system cannot link it (another
    /// file system, no hard links).
    fn move_plain(&self, spool: &Path, target: &Path) -> Result<(), AuditError> {
        match std::fs::hard_link(spool, target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(AuditError::io(target)(e));
            }
            Err(_) => {
                let mut tmp = tempfile::Builder::new()
                    .prefix(".incoming-")
                    .tempfile_in(&self.dir)
                    .map_err(AuditError::io(&self.dir))?;
                let mut input = File::open(spool).map_err(AuditError::io(spool))?;
                io::copy(&mut input, tmp.as_file_mut()).map_err(AuditError::io(target))?;
                tmp.persist(target)
                    .map_err(|e| AuditError::io(target)(e.error))?;
            }
        }
        File::open(target)
            .and_then(|f| f.sync_all())
            .map_err(AuditError::io(target))?;
        sync_dir(&self.dir)
    }

    /// Writes the plaintext of pack `sha256` to `out`, checking its hash (and `bytes`, when
    /// given) as it streams. On a mismatch `out` has received the bytes read so far.
    pub(crate) fn export(
        &self,
        sha256: &str,
        bytes: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<PackRef, AuditError> {
        let corrupt = |detail: String| AuditError::PackCorrupt {
            sha256: sha256.to_string(),
            detail,
        };
        let stored = self.find(sha256).ok_or_else(|| AuditError::PackMissing {
            sha256: sha256.to_string(),
        })?;
        let mut out = HashingWriter {
            inner: out,
            hash: Sha256::new(),
            bytes: 0,
        };
        match stored {
            Stored::Plain(path) => {
                let mut file = File::open(&path).map_err(AuditError::io(&path))?;
                copy(&mut file, &mut out).map_err(AuditError::io(&path))?;
            }
            Stored::Encrypted(path) => {
                let key = self
                    .key
                    .as_ref()
                    .ok_or_else(|| AuditError::PackKeyMissing {
                        sha256: sha256.to_string(),
                    })?;
                let mut raw = [0u8; 32];
                hex::decode_to_slice(sha256, &mut raw)
                    .map_err(|_| corrupt("the recorded hash is not hex".into()))?;
                let file = File::open(&path).map_err(AuditError::io(&path))?;
                crypt::decrypt(key, &raw, file, &mut out).map_err(|e| match e {
                    DecryptError::Io(e) => AuditError::io(&path)(e),
                    DecryptError::Corrupt(what) => corrupt(what.to_string()),
                })?;
            }
        }
        let actual = hex::encode(out.hash.finalize());
        if actual != sha256 {
            return Err(corrupt(format!("its content hashes to {actual}")));
        }
        if let Some(expected) = bytes {
            if expected != out.bytes {
                return Err(corrupt(format!(
                    "{} bytes where {expected} were recorded",
                    out.bytes
                )));
            }
        }
        Ok(PackRef {
            sha256: actual,
            bytes: out.bytes,
        })
    }

    /// Deletes the files of pack `sha256`; whether there was one.
    pub(crate) fn remove(&self, sha256: &str) -> Result<bool, AuditError> {
        let mut removed = false;
        for path in [self.plain_path(sha256), self.encrypted_path(sha256)] {
            match std::fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(AuditError::io(&path)(e)),
            }
        }
        Ok(removed)
    }

    /// The file of pack `sha256` (for tests that tamper with it).
    #[cfg(test)]
    pub(crate) fn file(&self, sha256: &str) -> Option<PathBuf> {
        self.find(sha256).map(Stored::into_path)
    }
}

/// SHA-256 (hex) and length of the file at `path`, streamed.
fn hash_file(path: &Path) -> Result<(String, u64), AuditError> {
    let mut file = File::open(path).map_err(AuditError::io(path))?;
    let mut out = HashingWriter {
        inner: &mut io::sink(),
        hash: Sha256::new(),
        bytes: 0,
    };
    copy(&mut file, &mut out).map_err(AuditError::io(path))?;
    Ok((hex::encode(out.hash.finalize()), out.bytes))
}

fn copy(input: &mut impl Read, out: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(buf.get(..n).unwrap_or_default())?;
    }
}

/// Passes bytes on while hashing and counting them.
struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hash: Sha256,
    bytes: u64,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or_default();
        self.hash.update(written);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
