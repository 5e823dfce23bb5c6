//! The embedded store: SQLite at `<state_dir>/audit.db`, WAL, `synchronous=FULL` (a commit
//! is on disk when it returns), one append-only `records` table.
//!
//! WAL lets `gitgate audit ...` read while `serve` writes. Triggers refuse `UPDATE` and
//! `DELETE`: not a defence (whoever can write the file can drop them) but a guard against
//! accidents; the chain and the signed head are the defence.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use super::chain;
use super::record::{format_time, Columns};
use super::store::{Draft, LogFilter, Store, StoredRecord, Visit};
use super::AuditError;

/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE records (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    kind      TEXT NOT NULL,
    time      TEXT NOT NULL,
    body      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    sig       TEXT NOT NULL,
    session   TEXT,
    identity  TEXT,
    repo      TEXT,
    decision  TEXT,
    op        TEXT,
    pack      TEXT
) STRICT;
CREATE INDEX records_time ON records(time);
CREATE INDEX records_session ON records(session) WHERE session IS NOT NULL;
CREATE INDEX records_identity ON records(identity) WHERE identity IS NOT NULL;
CREATE INDEX records_repo ON records(repo) WHERE repo IS NOT NULL;
CREATE INDEX records_decision ON records(decision) WHERE decision IS NOT NULL;
CREATE INDEX records_op ON records(op) WHERE op IS NOT NULL;
CREATE INDEX records_pack ON records(pack) WHERE pack IS NOT NULL;
CREATE INDEX records_kind ON records(kind);
CREATE TRIGGER records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
";

const COLUMNS: &str =
    "seq, id, kind, time, body, prev_hash, hash, sig, session, identity, repo, decision, op, pack";

/// How long a connection waits for another one's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite store. Thread-safe: one writer connection and one reader connection, each
/// behind a mutex.
pub struct SqliteStore {
    path: PathBuf,
    writer: Option<Mutex<Connection>>,
    reader: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating it and its schema when `read_only` is false) the database at `path`.
    pub fn open(path: &Path, read_only: bool) -> Result<SqliteStore, AuditError> {
        let writer = if read_only {
            if !path.is_file() {
                return Err(AuditError::NotFound {
                    path: path.to_path_buf(),
                });
            }
            None
        } else {
            let conn = Connection::open(path)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                let e = std::io::Error::other(format!("journal mode {mode}, not WAL"));
                return Err(AuditError::io(path)(e));
            }
            conn.pragma_update(None, "synchronous", "FULL")?;
            migrate(&conn)?;
            Some(Mutex::new(conn))
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let reader = Connection::open_with_flags(path, flags)?;
        reader.busy_timeout(BUSY_TIMEOUT)?;
        let version: i64 = reader.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(AuditError::Schema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer,
            reader: Mutex::new(reader),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>, AuditError> {
        self.writer
            .as_ref()
            .ok_or(AuditError::ReadOnly)?
            .lock()
            .map_err(|_| AuditError::Poisoned)
    }

    fn reader(&self) -> Result<MutexGuard<'_, Connection>, AuditError> {
        self.reader.lock().map_err(|_| AuditError::Poisoned)
    }

    fn one(&self, sql: &str, param: SqlValue) -> Result<Option<StoredRecord>, AuditError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(sql)?;
        Ok(stmt.query_row([param], row_to_record).optional()?)
    }
}

fn migrate(conn: &Connection) -> Result<(), AuditError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(AuditError::Schema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))?;
    }
    Ok(())
}

fn row_to_record(row: &Row<'_>) -> rusqlite::Result<StoredRecord> {
    let seq: i64 = row.get(0)?;
    Ok(StoredRecord {
        // A negative seq can only come from tampering; 0 makes `verify` report it.
        seq: u64::try_from(seq).unwrap_or(0),
        id: row.get(1)?,
        kind: row.get(2)?,
        time: row.get(3)?,
        body: row.get(4)?,
        prev_hash: row.get(5)?,
        hash: row.get(6)?,
        sig: row.get(7)?,
        columns: Columns {
            session: row.get(8)?,
            identity: row.get(9)?,
            repo: row.get(10)?,
            decision: row.get(11)?,
            op: row.get(12)?,
            pack: row.get(13)?,
        },
    })
}

fn seq_value(seq: u64) -> SqlValue {
    SqlValue::Integer(i64::try_from(seq).unwrap_or(i64::MAX))
}

/// Inserts `r`; a taken id is [`AuditError::DuplicateId`].
fn insert(conn: &Connection, r: &StoredRecord) -> Result<(), AuditError> {
    let c = &r.columns;
    let inserted = conn.execute(
        &format!(
            "INSERT INTO records ({COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ),
        rusqlite::params![
            seq_value(r.seq),
            r.id,
            r.kind,
            r.time,
            r.body,
            r.prev_hash,
            r.hash,
            r.sig,
            c.session,
            c.identity,
            c.repo,
            c.decision,
            c.op,
            c.pack
        ],
    );
    match inserted {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == ErrorCode::ConstraintViolation
                && e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            Err(AuditError::DuplicateId { id: r.id.clone() })
        }
        Err(e) => Err(e.into()),
    }
}

/// The record `draft` becomes when appended at `seq` after `prev_hash`.
fn draft_record(draft: &Draft<'_>, seq: u64, prev_hash: String) -> StoredRecord {
    StoredRecord {
        seq,
        id: draft.id.to_string(),
        kind: draft.kind.to_string(),
        time: draft.time.to_string(),
        body: draft.body.to_string(),
        hash: chain::record_hash(&prev_hash, draft.kind, draft.body),
        prev_hash,
        sig: String::new(),
        columns: draft.columns.clone(),
    }
}

impl Store for SqliteStore {
    fn append(
        &self,
        draft: &Draft<'_>,
        seal: &mut dyn FnMut(&mut StoredRecord) -> Result<(), AuditError>,
    ) -> Result<StoredRecord, AuditError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let tip: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (seq, prev_hash) = match tip {
            Some((seq, hash)) => (u64::try_from(seq).unwrap_or(0).saturating_add(1), hash),
            None => (1, chain::ZERO_HASH.to_string()),
        };
        let mut record = draft_record(draft, seq, prev_hash);
        // Dropping `tx` on an error rolls everything back.
        seal(&mut record)?;
        insert(&tx, &record)?;
        tx.commit()?;
        Ok(record)
    }

    fn append_batch(
        &self,
        drafts: &[Draft<'_>],
        seal: &mut dyn FnMut(&mut StoredRecord) -> Result<(), AuditError>,
        finish: &mut dyn FnMut(&StoredRecord) -> Result<(), AuditError>,
    ) -> Result<Vec<Result<StoredRecord, AuditError>>, AuditError> {
        let mut conn = self.writer()?;
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let tip: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (mut seq, mut prev_hash) = match tip {
            Some((seq, hash)) => (u64::try_from(seq).unwrap_or(0).saturating_add(1), hash),
            None => (1, chain::ZERO_HASH.to_string()),
        };
        let mut out = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let mut record = draft_record(draft, seq, prev_hash.clone());
            // Each draft under its own savepoint: dropping it unapplied rolls back that one.
            let sp = tx.savepoint()?;
            match seal(&mut record).and_then(|()| insert(&sp, &record)) {
                Ok(()) => {
                    sp.commit()?;
                    seq = seq.saturating_add(1);
                    prev_hash = record.hash.clone();
                    out.push(Ok(record));
                }
                Err(e) => out.push(Err(e)),
            }
        }
        if let Some(last) = out.iter().rev().find_map(|r| r.as_ref().ok()) {
            // An error drops `tx`: the whole batch rolls back.
            finish(last)?;
        }
        tx.commit()?;
        Ok(out)
    }

    fn tip(&self) -> Result<Option<StoredRecord>, AuditError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM records ORDER BY seq DESC LIMIT 1"
        ))?;
        Ok(stmt.query_row([], row_to_record).optional()?)
    }

    fn by_id(&self, id: &str) -> Result<Option<StoredRecord>, AuditError> {
        self.one(
            &format!("SELECT {COLUMNS} FROM records WHERE id = ?1"),
            SqlValue::Text(id.to_string()),
        )
    }

    fn by_seq(&self, seq: u64) -> Result<Option<StoredRecord>, AuditError> {
        self.one(
            &format!("SELECT {COLUMNS} FROM records WHERE seq = ?1"),
            seq_value(seq),
        )
    }

    fn log(&self, filter: &LogFilter, visit: &mut Visit<'_>) -> Result<(), AuditError> {
        let (sql, params) = log_query(filter);
        let conn = self.reader()?;
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            if !visit(row_to_record(row)?)? {
                break;
            }
        }
        Ok(())
    }

    /// Makes every later write fail as a full or read-only disk would.
    #[cfg(test)]
    fn break_writes(&self) -> Result<(), AuditError> {
        self.writer()?.pragma_update(None, "query_only", true)?;
        Ok(())
    }

    fn pack_times(&self) -> Result<Vec<(String, String)>, AuditError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT pack, MAX(time) FROM records WHERE pack IS NOT NULL GROUP BY pack ORDER BY pack",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// A `WHERE` clause under construction; `?` in a clause stands for its one parameter.
#[derive(Default)]
struct Query {
    clauses: Vec<String>,
    params: Vec<SqlValue>,
}

impl Query {
    fn push(&mut self, clause: &str, value: SqlValue) {
        self.params.push(value);
        let n = self.params.len();
        self.clauses.push(clause.replace('?', &format!("?{n}")));
    }
}

/// The SQL and parameters for `filter`.
fn log_query(filter: &LogFilter) -> (String, Vec<SqlValue>) {
    let mut q = Query::default();
    let text = |s: &str| SqlValue::Text(s.to_string());
    if !filter.kinds.is_empty() {
        let mut marks = Vec::new();
        for kind in &filter.kinds {
            q.params.push(text(kind));
            marks.push(format!("?{}", q.params.len()));
        }
        q.clauses.push(format!("kind IN ({})", marks.join(", ")));
    }
    if let Some(v) = &filter.identity {
        q.push("identity = ?", text(v));
    }
    if let Some(v) = &filter.repo {
        let glob = v.contains(['*', '?', '[']);
        q.push(if glob { "repo GLOB ?" } else { "repo = ?" }, text(v));
    }
    if let Some(t) = filter.since {
        q.push("time >= ?", text(&format_time(t)));
    }
    if let Some(t) = filter.until {
        q.push("time < ?", text(&format_time(t)));
    }
    if let Some(v) = &filter.decision {
        // A push is "deny" when one of its refs is, whatever the operation's summary says.
        q.push(
            "(decision = ? OR (json_valid(body) AND EXISTS (SELECT 1 FROM \
             json_each(body, '$.refs') AS r WHERE json_extract(r.value, '$.decision') = ?)))",
            text(v),
        );
    }
    if let Some(v) = &filter.session {
        q.push("session = ?", text(v));
    }
    if let Some(v) = &filter.op {
        q.push("op = ?", text(v));
    }
    if let Some(seq) = filter.from_seq {
        q.push("seq >= ?", seq_value(seq));
    }
    if let Some(seq) = filter.to_seq {
        q.push("seq <= ?", seq_value(seq));
    }
    let mut sql = format!("SELECT {COLUMNS} FROM records");
    if !q.clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&q.clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY seq");
    (sql, q.params)
}
