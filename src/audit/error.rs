//! What can go wrong with the record. Every variant means "nothing was recorded" when it
//! comes out of an append: the gateway denies the operation (fail closed).

use std::path::PathBuf;

/// An error of the audit store.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file or folder of the store could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The SQLite database failed.
    #[error("audit database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// There is no store at this place (read-only opens never create one).
    #[error("no audit store at {path} (the gateway creates it when it first starts)")]
    NotFound {
        /// The database (or key) that is missing.
        path: PathBuf,
    },
    /// The store was opened read-only and asked to write.
    #[error("the audit store is open read-only")]
    ReadOnly,
    /// Another process (or another `Audit` of this one) holds the store for writing.
    #[error("the audit store in {state_dir} is in use by another gitgate process")]
    Locked {
        /// The state folder.
        state_dir: PathBuf,
    },
    /// The database was written by a newer gitgate.
    #[error("audit database schema version {found} is newer than this gitgate's ({supported})")]
    Schema {
        /// The version in the file.
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },
    /// The body handed to `append` is not a valid record.
    #[error("invalid audit record: {reason}")]
    InvalidRecord {
        /// What is wrong.
        reason: String,
    },
    /// A record with this id exists already.
    #[error("an audit record with id {id} exists already")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// The signed head and the database disagree at open: the store was tampered with (or
    /// restored from a backup). Appending would bury the evidence, so the store refuses.
    #[error(
        "audit store {state_dir}: {detail}; run `gitgate audit verify`, and move audit.db and \
         audit.head aside to start a new record"
    )]
    HeadMismatch {
        /// The state folder.
        state_dir: PathBuf,
        /// What disagrees.
        detail: String,
    },
    /// The head file is malformed.
    #[error("{path}: malformed head: {reason}")]
    BadHead {
        /// The head file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The signing key cannot be used.
    #[error("signing key {path}: {detail}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The pack encryption key cannot be used.
    #[error("pack key {path}: {detail}")]
    PackKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong (never the key).
        detail: String,
    },
    /// A pack is stored encrypted and no pack key is configured.
    #[error("pack {sha256} is encrypted and no [audit] pack_key_file is configured")]
    PackKeyMissing {
        /// The pack's SHA-256.
        sha256: String,
    },
    /// No record has this id.
    #[error("no audit record {id}")]
    UnknownRecord {
        /// The id asked for.
        id: String,
    },
    /// The record carries no stored pack.
    #[error("audit record {id} has no stored pack")]
    NoPack {
        /// The record's id.
        id: String,
    },
    /// The pack was deleted by retention (a prune record names it).
    #[error("pack {sha256} was pruned (record {prune_id})")]
    PackPruned {
        /// The pack's SHA-256.
        sha256: String,
        /// The prune record.
        prune_id: String,
    },
    /// The pack file is missing.
    #[error("pack {sha256} is missing from the store")]
    PackMissing {
        /// The pack's SHA-256.
        sha256: String,
    },
    /// The pack file does not hold what was recorded (changed, truncated, wrong key).
    #[error("pack {sha256} is corrupt: {detail}")]
    PackCorrupt {
        /// The pack's recorded SHA-256.
        sha256: String,
        /// What is wrong.
        detail: String,
    },
    /// The group write this record was part of failed (every record of it failed alike).
    #[error("the record could not be written: {0}")]
    Batch(String),
    /// A lock was poisoned by a panicking thread.
    #[error("audit store lock poisoned")]
    Poisoned,
}

impl AuditError {
    /// An I/O error about `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AuditError {
        let path = path.into();
        move |source| AuditError::Io { path, source }
    }

    /// An invalid-record error.
    pub(crate) fn invalid(reason: impl Into<String>) -> AuditError {
        AuditError::InvalidRecord {
            reason: reason.into(),
        }
    }
}
