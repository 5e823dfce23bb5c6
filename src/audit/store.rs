//! The storage behind the record: one append-only sequence of chained records. SQLite
//! ([`super::sqlite::SqliteStore`]) is the embedded default; a PostgreSQL store for several
//! gateway replicas implements the same trait.
//!
//! A store only keeps rows and computes the chain inside its write transaction; signing,
//! packs and verification live above it, in [`super::Audit`].

use std::time::SystemTime;

use serde_json::Value;

use super::record::Columns;
use super::AuditError;

/// A record about to be appended: everything but its place in the chain.
#[derive(Debug)]
pub struct Draft<'a> {
    /// Unique id.
    pub id: &'a str,
    /// Record kind (`operation`, `result`, ...).
    pub kind: &'a str,
    /// RFC 3339 UTC time with milliseconds (text order is time order).
    pub time: &'a str,
    /// Canonical JSON body ([`super::chain::canonical`]).
    pub body: &'a str,
    /// Columns extracted from the body.
    pub columns: &'a Columns,
}

/// A record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// Unique id.
    pub id: String,
    /// Record kind.
    pub kind: String,
    /// RFC 3339 UTC time with milliseconds.
    pub time: String,
    /// Canonical JSON body, exactly as hashed.
    pub body: String,
    /// The previous record's hash ([`super::chain::ZERO_HASH`] for seq 1).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
    /// The gateway key's Ed25519 signature of `seq` and `hash`, hex.
    pub sig: String,
    /// Columns extracted from the body when it was appended.
    pub columns: Columns,
}

impl StoredRecord {
    /// The body as JSON (`Value::Null` if the stored text does not parse).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The body with `seq`, `kind` and `hash` added: one line of `audit log --format json`.
    pub fn to_json(&self) -> Value {
        let mut value = match self.value() {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        value.insert("seq".into(), self.seq.into());
        value.insert("kind".into(), self.kind.clone().into());
        value.insert("hash".into(), self.hash.clone().into());
        Value::Object(value)
    }
}

/// Which records [`Store::log`] returns; every set field must match. Oldest first.
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    /// Only these kinds (empty: all).
    pub kinds: Vec<String>,
    /// Only this identity.
    pub identity: Option<String>,
    /// Only this repo; `*`, `?` and `[...]` glob as in SQLite's `GLOB`.
    pub repo: Option<String>,
    /// Only records at or after this time.
    pub since: Option<SystemTime>,
    /// Only records before this time.
    pub until: Option<SystemTime>,
    /// Only records whose decision, or the decision of one of whose refs, is this.
    pub decision: Option<String>,
    /// Only this session.
    pub session: Option<String>,
    /// Only records linked to this operation (`op` field).
    pub op: Option<String>,
    /// Only records from this seq on.
    pub from_seq: Option<u64>,
    /// Only records up to this seq.
    pub to_seq: Option<u64>,
}

/// Receives records one by one; returning `false` stops the walk.
pub type Visit<'a> = dyn FnMut(StoredRecord) -> Result<bool, AuditError> + 'a;

/// Storage of the chained records. Implementations are thread-safe and blocking (the
/// gateway calls them from `spawn_blocking`).
pub trait Store: Send + Sync {
    /// Appends `draft` after the newest record in one write transaction: computes its seq
    /// and hash from the newest record, lets `seal` sign it (`sig`; the next head is
    /// prepared there too), inserts it and commits; an error from `seal` rolls it back. When
    /// this returns `Ok`, the record is durable.
    fn append(
        &self,
        draft: &Draft<'_>,
        seal: &mut dyn FnMut(&mut StoredRecord) -> Result<(), AuditError>,
    ) -> Result<StoredRecord, AuditError>;

    /// Group commit: appends `drafts` in order in one write transaction, each chained after
    /// the one before and sealed (signed) by `seal`. A draft refused on its own (a duplicate
    /// id) is rolled back alone and the others go on, so the result has one entry per draft.
    /// Before the commit, `finish` gets the last record written (the head for the batch is
    /// prepared there); its error rolls the whole batch back. `Err` means nothing was written.
    fn append_batch(
        &self,
        drafts: &[Draft<'_>],
        seal: &mut dyn FnMut(&mut StoredRecord) -> Result<(), AuditError>,
        finish: &mut dyn FnMut(&StoredRecord) -> Result<(), AuditError>,
    ) -> Result<Vec<Result<StoredRecord, AuditError>>, AuditError>;

    /// The newest record, if any.
    fn tip(&self) -> Result<Option<StoredRecord>, AuditError>;

    /// The record with this id.
    fn by_id(&self, id: &str) -> Result<Option<StoredRecord>, AuditError>;

    /// The record at this seq.
    fn by_seq(&self, seq: u64) -> Result<Option<StoredRecord>, AuditError>;

    /// Walks the records matching `filter`, oldest first, in one read snapshot.
    fn log(&self, filter: &LogFilter, visit: &mut Visit<'_>) -> Result<(), AuditError>;

    /// For every stored pack referenced by a record: its SHA-256 and the newest time a
    /// record referenced it.
    fn pack_times(&self) -> Result<Vec<(String, String)>, AuditError>;

    /// Test hook: makes every later write fail.
    #[cfg(test)]
    fn break_writes(&self) -> Result<(), AuditError>;
}
