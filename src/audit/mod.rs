//! The record: every operation, allowed or not, appended before the client gets its answer,
//! in a store whose integrity an auditor can check (`gitgate audit verify`). See
//! `docs/audit.md` for the fields, the chain, the signed head and the threat model.
//!
//! # Layout
//! - [`record`]: the typed bodies (`Operation`, `PushResult`, ...) and the indexed columns.
//! - `chain`: canonical JSON and the hash chain.
//! - `head`: the signed head (`audit.head`) and the Ed25519 key.
//! - `store`: the [`Store`] trait; `sqlite`: the embedded SQLite store.
//! - `packs`: pushed packs, content-addressed; `crypt`: their encryption at rest.
//! - `verify`: recompute and check everything, name the first bad record.
//!
//! Files under `state_dir`: `audit.db` (+ WAL), `audit.head`, `audit_ed25519_key` (0600)
//! and its `.pub`, `audit.lock`, `packs/`.
//!
//! # Appending
//! Under one lock, in one SQLite transaction: compute the record's seq and hash, sign them
//! with the gateway's key, write the head naming the record to `audit.head.tmp`, insert,
//! commit (`synchronous=FULL`: durable), then rename `audit.head.tmp` over `audit.head`.
//! Any failure before the commit (database or head file unwritable) rolls the record back
//! and returns an error: the gateway denies the operation.
//!
//! Group commit: concurrent appends queue their records; whoever takes the lock writes all
//! queued records in that one transaction (each chained, each signed, each under its own
//! savepoint so a refused one — a duplicate id — leaves the others in), with one head for
//! the last, and hands every waiter its result. One fsync serves a burst of operations.
//!
//! Only the commit is flushed to disk. A crash may lose the newest head updates, leaving the
//! head behind the store; that is told apart from forgery because every record is signed
//! (a record after the head needs a valid signature), and the next open catches the head up.

mod chain;
mod crypt;
mod error;
mod head;
mod packs;
pub mod record;
mod sqlite;
mod store;
#[cfg(test)]
mod tests;
mod verify;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use ed25519_dalek::{SigningKey, VerifyingKey};
use rusqlite::{Connection, ErrorCode};
use serde::Serialize;
use serde_json::Value;

pub use chain::{canonical, record_hash, ZERO_HASH};
pub use crypt::PackKey;
pub use error::AuditError;
pub use head::{parse_public as parse_public_key, Head};
pub use packs::PackRef;
pub use record::{Columns, Prune, RecordKind};
pub use sqlite::SqliteStore;
pub use store::{Draft, LogFilter, Store, StoredRecord, Visit};
pub use verify::{Problem, Selector, Tamper, VerifyOptions, VerifyOutcome};

const DB: &str = "audit.db";
const HEAD: &str = "audit.head";
const HEAD_TMP: &str = "audit.head.tmp";
const KEY: &str = "audit_ed25519_key";
const LOCK: &str = "audit.lock";
const PACKS: &str = "packs";

/// Longest record id accepted.
const MAX_ID_LEN: usize = 256;

/// How the store is opened.
#[derive(Clone, Debug, Default)]
pub struct AuditOptions {
    /// Encrypt stored packs with the key in this file (`[audit] pack_key_file`): 32 raw
    /// bytes or 64 hex digits. Needed to export or verify packs stored encrypted.
    pub pack_key_file: Option<PathBuf>,
    /// Delete stored packs this many days after the last record referencing them
    /// (`[audit] keep_packs_days`; `None`: keep forever). See [`Audit::prune_packs`].
    pub keep_packs_days: Option<u32>,
    /// Open for reading only (the CLI verbs, also while `serve` runs): never creates or
    /// changes anything; the store must exist.
    pub read_only: bool,
}

impl AuditOptions {
    /// The options of a resolved `[audit]` table (read-write).
    pub fn from_config(audit: &crate::config::Audit) -> AuditOptions {
        AuditOptions {
            pack_key_file: audit.pack_key_file.clone(),
            keep_packs_days: audit.keep_packs_days,
            read_only: false,
        }
    }
}

/// Where an appended record landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRef {
    /// Its place in the chain.
    pub seq: u64,
    /// Its id (given in the body, or made by `append`).
    pub id: String,
    /// Its hash: log it, and the chain is anchored in the log sink up to here.
    pub hash: String,
}

/// What [`Audit::prune_packs`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneOutcome {
    /// SHA-256 of each deleted pack.
    pub packs: Vec<String>,
    /// The prune record naming them (none when nothing was old enough).
    pub record: Option<RecordRef>,
}

/// The audit store: records, signed head, stored packs. Cheap to clone; thread-safe;
/// blocking (call it from `spawn_blocking`).
#[derive(Clone)]
pub struct Audit {
    inner: Arc<Inner>,
}

struct Inner {
    state_dir: PathBuf,
    store: Box<dyn Store>,
    packs: packs::Packs,
    signer: Option<SigningKey>,
    public: VerifyingKey,
    head_path: PathBuf,
    tmp_path: PathBuf,
    keep_packs_days: Option<u32>,
    /// Serializes appends (and the head files with them).
    writer: Mutex<WriterState>,
    /// Records waiting for the next group write.
    queue: Mutex<Vec<Arc<Job>>>,
    /// Serializes storing and pruning packs.
    packs_lock: Mutex<()>,
    /// Holds `audit.lock` (an exclusive SQLite lock) while open for writing.
    _lock: Option<Mutex<Connection>>,
}

/// A record waiting for the group write (see [`Audit::append`]).
struct Job {
    kind: RecordKind,
    id: String,
    time: String,
    body: String,
    columns: Columns,
    result: Mutex<Option<Result<RecordRef, AuditError>>>,
}

/// A record queued by [`Audit::enqueue`].
pub struct Queued {
    audit: Audit,
    job: Arc<Job>,
}

impl Queued {
    /// Blocks until the record is written (durable) or failed.
    pub fn wait(self) -> Result<RecordRef, AuditError> {
        self.audit.complete(&self.job)
    }
}

impl Job {
    fn take_result(&self) -> Option<Result<RecordRef, AuditError>> {
        match self.result.lock() {
            Ok(mut slot) => slot.take(),
            Err(_) => Some(Err(AuditError::Poisoned)),
        }
    }

    fn set_result(&self, result: Result<RecordRef, AuditError>) {
        if let Ok(mut slot) = self.result.lock() {
            *slot = Some(result);
        }
    }
}

struct WriterState {
    /// The head files may disagree with the database (a failed append): settle first.
    unsettled: bool,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("state_dir", &self.inner.state_dir)
            .field("read_only", &self.inner.signer.is_none())
            .finish()
    }
}

impl Audit {
    /// Opens the store in `state_dir`, creating it (folder 0700, database, signing key,
    /// head) unless `options.read_only`. A read-write open fails when another process holds
    /// the store, and when the signed head disagrees with the database
    /// ([`AuditError::HeadMismatch`]): appending would bury the evidence.
    pub fn open(state_dir: &Path, options: &AuditOptions) -> Result<Audit, AuditError> {
        let pack_key = options
            .pack_key_file
            .as_deref()
            .map(PackKey::load)
            .transpose()?;
        let key_path = state_dir.join(KEY);
        let head_path = state_dir.join(HEAD);
        let (store, signer, public, lock) = if options.read_only {
            let store = SqliteStore::open(&state_dir.join(DB), true)?;
            (store, None, head::public_key(&key_path)?, None)
        } else {
            let mut dirs = std::fs::DirBuilder::new();
            dirs.recursive(true).mode(0o700);
            for dir in [state_dir.to_path_buf(), state_dir.join(PACKS)] {
                dirs.create(&dir).map_err(AuditError::io(&dir))?;
            }
            let lock = lock_store(state_dir)?;
            let store = SqliteStore::open(&state_dir.join(DB), false)?;
            let fresh = store.tip()?.is_none() && !head_path.exists();
            let signer = match head::signing_key(&key_path, fresh) {
                Err(AuditError::NotFound { path }) => {
                    return Err(AuditError::Key {
                        path,
                        detail: "missing, but the store holds records signed with it".into(),
                    })
                }
                other => other?,
            };
            let public = signer.verifying_key();
            (store, Some(signer), public, Some(Mutex::new(lock)))
        };
        let audit = Audit {
            inner: Arc::new(Inner {
                state_dir: state_dir.to_path_buf(),
                store: Box::new(store),
                packs: packs::Packs::new(state_dir.join(PACKS), pack_key),
                signer,
                public,
                tmp_path: state_dir.join(HEAD_TMP),
                head_path,
                keep_packs_days: options.keep_packs_days,
                writer: Mutex::new(WriterState { unsettled: true }),
                queue: Mutex::new(Vec::new()),
                packs_lock: Mutex::new(()),
                _lock: lock,
            }),
        };
        if !options.read_only {
            let mut state = audit.writer()?;
            audit.settle(&mut state)?;
        }
        Ok(audit)
    }

    /// The state folder.
    pub fn state_dir(&self) -> &Path {
        &self.inner.state_dir
    }

    /// The public key heads are signed with, hex (what `gitgate audit key` prints).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.inner.public.as_bytes())
    }

    /// Appends a record of `kind` with `body` (a JSON object) and returns once it is
    /// durable and covered by the signed head. `id` and `time` are taken from the body when
    /// present (`time` normalized to UTC milliseconds), made otherwise. On any error nothing
    /// was recorded: deny the operation.
    pub fn append(&self, kind: RecordKind, body: &impl Serialize) -> Result<RecordRef, AuditError> {
        // Group commit: queue the record, then take the writer. Whoever holds the writer
        // writes everything queued in one transaction (one fsync, one head signature) and
        // hands each waiter its result; a waiter that gets the writer and finds its result
        // there is done.
        self.enqueue(kind, body)?.wait()
    }

    /// Queues a record like [`Audit::append`] without waiting for it: it takes its place in
    /// the chain now (before any record appended later) and is written with the next batch;
    /// [`Queued::wait`] (run it, e.g. on a blocking thread) writes it if nobody has and
    /// returns its outcome. For records whose answer reveals nothing: anything appended after
    /// it and waited for is durable only once this one is.
    pub fn enqueue(&self, kind: RecordKind, body: &impl Serialize) -> Result<Queued, AuditError> {
        if self.inner.signer.is_none() {
            return Err(AuditError::ReadOnly);
        }
        let (id, time, body) = prepare(kind, body)?;
        let job = Arc::new(Job {
            kind,
            id,
            time,
            body: chain::canonical(&body),
            columns: Columns::of(&body),
            result: Mutex::new(None),
        });
        self.inner
            .queue
            .lock()
            .map_err(|_| AuditError::Poisoned)?
            .push(job.clone());
        Ok(Queued {
            audit: self.clone(),
            job,
        })
    }

    /// Waits for `job` (queued) to be written: by whoever holds the writer, or by us.
    fn complete(&self, job: &Arc<Job>) -> Result<RecordRef, AuditError> {
        let mut state = self.writer()?;
        if let Some(done) = job.take_result() {
            return done;
        }
        let jobs = std::mem::take(&mut *self.inner.queue.lock().map_err(|_| AuditError::Poisoned)?);
        self.write_jobs(&mut state, &jobs);
        drop(state);
        job.take_result()
            .unwrap_or_else(|| Err(AuditError::Batch("the record was not written".into())))
    }

    /// Writes `jobs` as one batch and fills in each job's result. Holds the writer.
    fn write_jobs(&self, state: &mut WriterState, jobs: &[Arc<Job>]) {
        // The first job gets the error itself, the others a copy of its text.
        let fail_all = |e: AuditError| {
            let text = e.to_string();
            let mut first = Some(e);
            for job in jobs {
                job.set_result(Err(first
                    .take()
                    .unwrap_or_else(|| AuditError::Batch(text.clone()))));
            }
        };
        let signer = match self.signer() {
            Ok(s) => s,
            Err(e) => return fail_all(e),
        };
        if state.unsettled {
            if let Err(e) = self.settle(state) {
                return fail_all(e);
            }
        }
        let drafts: Vec<Draft<'_>> = jobs
            .iter()
            .map(|j| Draft {
                id: &j.id,
                kind: j.kind.as_str(),
                time: &j.time,
                body: &j.body,
                columns: &j.columns,
            })
            .collect();
        // Every record signed; one head for the batch, prepared before the commit (it cannot
        // be written: nothing is) and put in place after it.
        let written = self.inner.store.append_batch(
            &drafts,
            &mut |r| {
                r.sig = head::sign_record(signer, r.seq, &r.hash);
                Ok(())
            },
            &mut |last| {
                let head = Head::sign(signer, last.seq, &last.hash, &record::now());
                head::write(&self.inner.tmp_path, &head, false)
            },
        );
        let results = match written {
            Ok(results) => results,
            Err(e) => return fail_all(e),
        };
        if results.iter().any(Result::is_ok) {
            if let Err(e) = self.promote() {
                // The records are durable and signed; the head catches up at the next write.
                state.unsettled = true;
                let text = e.to_string();
                let mut first = Some(e);
                for (job, result) in jobs.iter().zip(results) {
                    job.set_result(match result {
                        Ok(_) => Err(first
                            .take()
                            .unwrap_or_else(|| AuditError::Batch(text.clone()))),
                        Err(own) => Err(own),
                    });
                }
                return;
            }
        }
        for (job, result) in jobs.iter().zip(results) {
            job.set_result(result.map(|stored| RecordRef {
                seq: stored.seq,
                id: stored.id,
                hash: stored.hash,
            }));
        }
    }

    /// Links the spooled pack at `spool` (same file system as `state_dir`, or it is copied)
    /// to `packs/<sha256>.pack` (`.pack.enc` when encrypting) and returns its reference for
    /// the operation's `pack` field. An identical pack kept already is reused. The spool keeps
    /// its name (its readers are undisturbed): the caller removes it.
    pub fn store_pack(&self, spool: &Path) -> Result<PackRef, AuditError> {
        if self.inner.signer.is_none() {
            return Err(AuditError::ReadOnly);
        }
        let _guard = self
            .inner
            .packs_lock
            .lock()
            .map_err(|_| AuditError::Poisoned)?;
        self.inner.packs.store(spool)
    }

    /// The records matching `filter`, oldest first.
    pub fn log(&self, filter: &LogFilter) -> Result<Vec<StoredRecord>, AuditError> {
        let mut records = Vec::new();
        self.inner.store.log(filter, &mut |r| {
            records.push(r);
            Ok(true)
        })?;
        Ok(records)
    }

    /// Walks the records matching `filter`, oldest first, without collecting them; `visit`
    /// returns `false` to stop. It must not call back into this `Audit`.
    pub fn log_each(&self, filter: &LogFilter, visit: &mut Visit<'_>) -> Result<(), AuditError> {
        self.inner.store.log(filter, visit)
    }

    /// The record with this id.
    pub fn record(&self, id: &str) -> Result<Option<StoredRecord>, AuditError> {
        self.inner.store.by_id(id)
    }

    /// Checks the chain, the columns, the stored packs and the signed head (see
    /// [`VerifyOptions`]). `Err` means verification could not run (I/O, a missing pack key);
    /// tampering is `Ok(VerifyOutcome::Tampered(..))`.
    pub fn verify(&self, options: &VerifyOptions) -> Result<VerifyOutcome, AuditError> {
        verify::Verifier {
            store: self.inner.store.as_ref(),
            packs: &self.inner.packs,
            key: self.inner.public,
            head_path: &self.inner.head_path,
        }
        .run(options)
    }

    /// Writes the exact bytes of the pack that operation `op_id` carried to `out`, checking
    /// their SHA-256 while streaming (an error, after the bytes, on a mismatch).
    pub fn export_pack(
        &self,
        op_id: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<PackRef, AuditError> {
        let record = self
            .record(op_id)?
            .ok_or_else(|| AuditError::UnknownRecord { id: op_id.into() })?;
        let body = record.value();
        let sha256 = record.columns.pack.clone().ok_or(AuditError::NoPack {
            id: op_id.to_string(),
        })?;
        let bytes = body.pointer("/pack/bytes").and_then(Value::as_u64);
        if !self.inner.packs.exists(&sha256) {
            if let Some(prune_id) = self.pruned_by(&sha256, record.seq)? {
                return Err(AuditError::PackPruned { sha256, prune_id });
            }
        }
        self.inner.packs.export(&sha256, bytes, out)
    }

    /// The current signed head (`None` if the file is missing).
    pub fn head(&self) -> Result<Option<Head>, AuditError> {
        head::read(&self.inner.head_path)
    }

    /// Deletes the stored packs whose newest referencing record is older than
    /// `keep_packs_days` before `now` (and whose file was not reused since), after appending
    /// a `prune` record naming them, so `verify` accepts their absence. Does nothing without
    /// `keep_packs_days`.
    pub fn prune_packs(&self, now: SystemTime) -> Result<PruneOutcome, AuditError> {
        let Some(days) = self.inner.keep_packs_days else {
            return Ok(PruneOutcome::default());
        };
        let Some(cutoff) = now.checked_sub(Duration::from_secs(u64::from(days) * 86_400)) else {
            return Ok(PruneOutcome::default());
        };
        let cutoff_text = record::format_time(cutoff);
        let _guard = self
            .inner
            .packs_lock
            .lock()
            .map_err(|_| AuditError::Poisoned)?;
        let old: Vec<String> = self
            .inner
            .store
            .pack_times()?
            .into_iter()
            .filter(|(sha, time)| {
                *time < cutoff_text && self.inner.packs.modified(sha).is_some_and(|m| m < cutoff)
            })
            .map(|(sha, _)| sha)
            .collect();
        if old.is_empty() {
            return Ok(PruneOutcome::default());
        }
        let body = Prune {
            packs: old.clone(),
            keep_packs_days: days,
            cutoff: cutoff_text,
        };
        let record = self.append(RecordKind::Prune, &body)?;
        for sha in &old {
            self.inner.packs.remove(sha)?;
        }
        Ok(PruneOutcome {
            packs: old,
            record: Some(record),
        })
    }

    /// The id of a prune record after `seq` naming pack `sha256`.
    fn pruned_by(&self, sha256: &str, seq: u64) -> Result<Option<String>, AuditError> {
        let filter = LogFilter {
            kinds: vec![RecordKind::Prune.as_str().into()],
            from_seq: Some(seq.saturating_add(1)),
            ..LogFilter::default()
        };
        let mut found = None;
        self.inner.store.log(&filter, &mut |r| {
            let names = r
                .value()
                .get("packs")
                .and_then(Value::as_array)
                .is_some_and(|p| p.iter().any(|s| s.as_str() == Some(sha256)));
            if names {
                found = Some(r.id);
            }
            Ok(found.is_none())
        })?;
        Ok(found)
    }

    fn writer(&self) -> Result<MutexGuard<'_, WriterState>, AuditError> {
        self.inner.writer.lock().map_err(|_| AuditError::Poisoned)
    }

    fn signer(&self) -> Result<&SigningKey, AuditError> {
        self.inner.signer.as_ref().ok_or(AuditError::ReadOnly)
    }

    /// Renames `audit.head.tmp` over `audit.head`.
    fn promote(&self) -> Result<(), AuditError> {
        std::fs::rename(&self.inner.tmp_path, &self.inner.head_path)
            .map_err(AuditError::io(&self.inner.head_path))
    }

    /// Writes a head for `seq`/`hash` and flushes it to disk.
    fn write_head_synced(&self, seq: u64, hash: &str) -> Result<(), AuditError> {
        let head = Head::sign(self.signer()?, seq, hash, &record::now());
        head::write(&self.inner.tmp_path, &head, true)?;
        self.promote()?;
        head::sync_dir(&self.inner.state_dir)
    }

    /// Checks the head against the database at open (and after a failed append), catching
    /// it up when it lags behind signed records (a crash), or refuses
    /// ([`AuditError::HeadMismatch`]) when only tampering (or a restored backup) explains
    /// the difference.
    fn settle(&self, state: &mut WriterState) -> Result<(), AuditError> {
        match std::fs::remove_file(&self.inner.tmp_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(AuditError::io(&self.inner.tmp_path)(e)),
        }
        let (seq, hash) = match self.inner.store.tip()? {
            Some(r) => (r.seq, r.hash),
            None => (0, ZERO_HASH.to_string()),
        };
        let mismatch = |detail: String| AuditError::HeadMismatch {
            state_dir: self.inner.state_dir.clone(),
            detail,
        };
        let public = &self.inner.public;
        let head = match head::read(&self.inner.head_path)? {
            Some(h) => h,
            None if seq == 0 => {
                self.write_head_synced(0, ZERO_HASH)?;
                state.unsettled = false;
                return Ok(());
            }
            None => {
                return Err(mismatch(format!(
                    "audit.head is missing but audit.db holds {seq} records"
                )))
            }
        };
        if !head.signed_by(public) {
            return Err(mismatch(
                "audit.head is not signed by this store's key".into(),
            ));
        }
        if head.seq > seq {
            return Err(mismatch(format!(
                "audit.head names record {} but audit.db ends at {seq} (records deleted)",
                head.seq
            )));
        }
        let at_head = match head.seq {
            0 => Some(ZERO_HASH.to_string()),
            n => self.inner.store.by_seq(n)?.map(|r| r.hash),
        };
        if at_head.as_deref() != Some(head.hash.as_str()) {
            return Err(mismatch(format!(
                "audit.head's hash of record {} differs from audit.db's (rewritten)",
                head.seq
            )));
        }
        if head.seq < seq {
            // Records the head does not cover yet must be the gateway's own.
            let after = LogFilter {
                from_seq: Some(head.seq + 1),
                ..LogFilter::default()
            };
            let mut forged = None;
            self.inner.store.log(&after, &mut |r| {
                if !head::record_signed_by(public, r.seq, &r.hash, &r.sig) {
                    forged = Some(r.seq);
                }
                Ok(forged.is_none())
            })?;
            if let Some(n) = forged {
                return Err(mismatch(format!(
                    "record {n} after the signed head is not signed by this store's key"
                )));
            }
            self.write_head_synced(seq, &hash)?;
        }
        state.unsettled = false;
        Ok(())
    }

    /// Test hook: every later database write fails.
    #[cfg(test)]
    pub(crate) fn break_writes(&self) -> Result<(), AuditError> {
        self.inner.store.break_writes()
    }

    /// Test hook: the stored file of pack `sha256`.
    #[cfg(test)]
    pub(crate) fn pack_file(&self, sha256: &str) -> Option<PathBuf> {
        self.inner.packs.file(sha256)
    }
}

/// The public key (hex) of the store in `state_dir`, without opening its database.
pub fn public_key(state_dir: &Path) -> Result<String, AuditError> {
    Ok(hex::encode(
        head::public_key(&state_dir.join(KEY))?.as_bytes(),
    ))
}

/// Takes `audit.lock`: an exclusive SQLite lock, held for as long as the connection lives,
/// so that two gateways (or a gateway and `audit prune`) never write one store.
fn lock_store(state_dir: &Path) -> Result<Connection, AuditError> {
    let conn = Connection::open(state_dir.join(LOCK))?;
    conn.busy_timeout(Duration::ZERO)?;
    match conn.execute_batch("BEGIN EXCLUSIVE") {
        Ok(()) => Ok(conn),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            Err(AuditError::Locked {
                state_dir: state_dir.to_path_buf(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The body as a JSON object with a valid `id` and a normalized `time`.
fn prepare(kind: RecordKind, body: &impl Serialize) -> Result<(String, String, Value), AuditError> {
    let mut value = serde_json::to_value(body)
        .map_err(|e| AuditError::invalid(format!("cannot encode the body: {e}")))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| AuditError::invalid("the body is not a JSON object"))?;
    let id = match obj.get("id") {
        None | Some(Value::Null) => new_id(kind),
        Some(Value::String(id))
            if !id.is_empty()
                && id.len() <= MAX_ID_LEN
                && id.chars().all(|c| c.is_ascii_graphic()) =>
        {
            id.clone()
        }
        Some(_) => {
            return Err(AuditError::invalid(
                "id must be 1 to 256 printable ASCII characters without spaces",
            ))
        }
    };
    let time = match obj.get("time") {
        None | Some(Value::Null) => record::now(),
        Some(Value::String(t)) => record::normalize_time(t)
            .ok_or_else(|| AuditError::invalid(format!("time {t:?} is not RFC 3339")))?,
        Some(_) => return Err(AuditError::invalid("time must be a string")),
    };
    obj.insert("id".into(), Value::String(id.clone()));
    obj.insert("time".into(), Value::String(time.clone()));
    Ok((id, time, value))
}

fn new_id(kind: RecordKind) -> String {
    let bytes: [u8; 10] = rand::random();
    format!("{}-{}", kind.as_str(), hex::encode(bytes))
}
