//! The `approvals` table in `<state_dir>/audit.db`.
//!
//! Unlike `records`, rows here change (pending -> decided, outcome). That is fine: they are
//! the working state; the evidence is the `approval` and `decision` records in the chain.
//! Every process opens its own connection; each change is one short `IMMEDIATE` transaction,
//! so `gitgate approvals approve` works while `serve` runs (WAL, busy timeout).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior};
use serde_json::Value;

use super::{Approval, ApprovalError, Outcome, Status, UpdateKey, Verdict};
use crate::audit::record::format_time;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approvals (
    id             TEXT PRIMARY KEY,
    status         TEXT NOT NULL,
    identity       TEXT NOT NULL,
    repo           TEXT NOT NULL,
    ref            TEXT NOT NULL,
    old            TEXT NOT NULL,
    new            TEXT NOT NULL,
    rule           TEXT NOT NULL,
    reason         TEXT NOT NULL,
    op             TEXT NOT NULL,
    session        TEXT NOT NULL,
    created        TEXT NOT NULL,
    expires        TEXT NOT NULL,
    decided_at     TEXT,
    by             TEXT,
    comment        TEXT,
    outcome        TEXT,
    outcome_detail TEXT,
    recorded       INTEGER NOT NULL DEFAULT 0,
    notified       INTEGER NOT NULL DEFAULT 0,
    details        TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX IF NOT EXISTS approvals_update ON approvals(identity, repo, ref, old, new);
CREATE INDEX IF NOT EXISTS approvals_status ON approvals(status);
-- What the serving gateway polls for, twice a second: only rows with work left.
CREATE INDEX IF NOT EXISTS approvals_unrecorded ON approvals(created) WHERE recorded = 0;
CREATE INDEX IF NOT EXISTS approvals_unnotified ON approvals(created) WHERE notified = 0;
CREATE INDEX IF NOT EXISTS approvals_unapplied ON approvals(created)
    WHERE status = 'approved' AND outcome IS NULL;
";

const COLUMNS: &str = "id, status, identity, repo, ref, old, new, rule, reason, op, session, \
     created, expires, decided_at, by, comment, outcome, outcome_detail";

/// How long a connection waits for another process's write.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest approver name or comment kept.
const MAX_TEXT: usize = 4096;

/// A new pending approval, as the push path creates it.
#[derive(Clone, Debug)]
pub struct NewApproval {
    /// Its id ([`super::new_id`]).
    pub id: String,
    /// The pusher.
    pub identity: String,
    /// `<upstream>/<path>`.
    pub repo: String,
    /// Full ref name.
    pub refname: String,
    /// Old id, hex.
    pub old: String,
    /// New id, hex.
    pub new: String,
    /// The rule that asked.
    pub rule: String,
    /// The policy's reason.
    pub reason: String,
    /// The push's operation id.
    pub op: String,
    /// The push's session id.
    pub session: String,
    /// How long it may stay pending.
    pub expire_after: Duration,
    /// What a reviewer sees: commits, files, diff summary, findings (JSON object).
    pub details: Value,
}

/// The approvals store: one connection, thread-safe, blocking (see [`Approvals::run`]).
#[derive(Clone)]
pub struct Approvals {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Approvals")
    }
}

impl Approvals {
    /// Opens the table in `<state_dir>/audit.db`, creating it when missing. The database
    /// itself must exist (the audit store creates it).
    pub fn open(state_dir: &Path) -> Result<Approvals, ApprovalError> {
        let path = state_dir.join("audit.db");
        if !path.is_file() {
            return Err(ApprovalError::NotFound { path });
        }
        let conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Approvals {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs blocking store work off the async threads.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApprovalError>
    where
        T: Send + 'static,
        F: FnOnce(&Approvals) -> Result<T, ApprovalError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| ApprovalError::Internal(e.to_string()))?
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, ApprovalError> {
        self.conn
            .lock()
            .map_err(|_| ApprovalError::Internal("the approvals store lock is poisoned".into()))
    }

    /// Inserts a pending approval and returns it.
    pub fn insert(&self, new: &NewApproval, now: SystemTime) -> Result<Approval, ApprovalError> {
        let created = format_time(now);
        let expires = format_time(now + new.expire_after);
        self.conn()?.execute(
            "INSERT INTO approvals (id, status, identity, repo, ref, old, new, rule, reason, op, \
             session, created, expires, details) \
             VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            rusqlite::params![
                new.id,
                new.identity,
                new.repo,
                new.refname,
                new.old,
                new.new,
                new.rule,
                new.reason,
                new.op,
                new.session,
                created,
                expires,
                new.details.to_string()
            ],
        )?;
        self.get(&new.id)?
            .ok_or_else(|| ApprovalError::Unknown { id: new.id.clone() })
    }

    /// The approval with this id.
    pub fn get(&self, id: &str) -> Result<Option<Approval>, ApprovalError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"))?;
        stmt.query_row([id], row_to_raw)
            .optional()?
            .map(RawRow::into_approval)
            .transpose()
    }

    /// What a reviewer sees of approval `id` (commits, files, diff summary).
    pub fn details(&self, id: &str) -> Result<Value, ApprovalError> {
        let conn = self.conn()?;
        let text: Option<String> = conn
            .query_row("SELECT details FROM approvals WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        match text {
            Some(t) => Ok(serde_json::from_str(&t).unwrap_or(Value::Null)),
            None => Err(ApprovalError::Unknown { id: id.into() }),
        }
    }

    /// Every approval, oldest first; only those with `status` when given.
    pub fn list(&self, status: Option<Status>) -> Result<Vec<Approval>, ApprovalError> {
        self.select(
            "status = ?1 OR ?1 IS NULL",
            &[&status.map(Status::as_str) as &dyn rusqlite::ToSql],
        )
    }

    /// The newest approval bound to exactly this update.
    pub fn latest_for(&self, key: &UpdateKey<'_>) -> Result<Option<Approval>, ApprovalError> {
        let all = self.select(
            "identity = ?1 AND repo = ?2 AND ref = ?3 AND old = ?4 AND new = ?5",
            &[&key.identity, &key.repo, &key.refname, &key.old, &key.new],
        )?;
        Ok(all.into_iter().next_back())
    }

    fn select(
        &self,
        clause: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Approval>, ApprovalError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE {clause} ORDER BY created, rowid"
        ))?;
        let rows = stmt.query_map(params, row_to_raw)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.into_approval()?);
        }
        Ok(out)
    }

    /// Decides approval `id`: refuses when it is not pending (an overdue one is expired on
    /// the spot) and when `by` is the requester.
    pub fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        by: &str,
        comment: Option<&str>,
        now: SystemTime,
    ) -> Result<Approval, ApprovalError> {
        if by.trim().is_empty() || by.len() > 256 || by.chars().any(char::is_control) {
            return Err(ApprovalError::BadApprover);
        }
        let comment = comment.map(|c| truncate(c, MAX_TEXT));
        let now = format_time(now);
        {
            let mut conn = self.conn()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(String, String, String)> = tx
                .query_row(
                    "SELECT status, identity, expires FROM approvals WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((status, identity, expires)) = row else {
                return Err(ApprovalError::Unknown { id: id.into() });
            };
            let status = parse_status(&status)?;
            if status == Status::Pending && expires <= now {
                tx.execute(
                    "UPDATE approvals SET status = 'expired', decided_at = ?2 WHERE id = ?1",
                    rusqlite::params![id, now],
                )?;
                tx.commit()?;
                return Err(ApprovalError::AlreadyDecided {
                    id: id.into(),
                    status: Status::Expired,
                });
            }
            if status != Status::Pending {
                return Err(ApprovalError::AlreadyDecided {
                    id: id.into(),
                    status,
                });
            }
            if identity == by {
                return Err(ApprovalError::SelfApproval {
                    id: id.into(),
                    by: by.into(),
                });
            }
            tx.execute(
                "UPDATE approvals SET status = ?2, decided_at = ?3, by = ?4, comment = ?5 \
                 WHERE id = ?1 AND status = 'pending'",
                rusqlite::params![id, verdict.status().as_str(), now, by, comment],
            )?;
            tx.commit()?;
        }
        self.get(id)?
            .ok_or_else(|| ApprovalError::Unknown { id: id.into() })
    }

    /// Expires every pending approval due at `now`; returns them.
    pub fn expire_due(&self, now: SystemTime) -> Result<Vec<Approval>, ApprovalError> {
        let now = format_time(now);
        let due = self.select(
            "status = 'pending' AND expires <= ?1",
            &[&now as &dyn rusqlite::ToSql],
        )?;
        let mut expired = Vec::new();
        for a in due {
            let changed = self.conn()?.execute(
                "UPDATE approvals SET status = 'expired', decided_at = ?2 \
                 WHERE id = ?1 AND status = 'pending'",
                rusqlite::params![a.id, now],
            )?;
            if changed == 1 {
                if let Some(a) = self.get(&a.id)? {
                    expired.push(a);
                }
            }
        }
        Ok(expired)
    }

    /// Claims an approved update for relaying (`outcome` from nothing to `outcome`):
    /// `true` for exactly one caller, so an update is never relayed twice.
    pub fn claim(&self, id: &str, outcome: Outcome) -> Result<bool, ApprovalError> {
        let changed = self.conn()?.execute(
            "UPDATE approvals SET outcome = ?2 \
             WHERE id = ?1 AND status = 'approved' AND outcome IS NULL",
            rusqlite::params![id, outcome.as_str()],
        )?;
        Ok(changed == 1)
    }

    /// Sets (or, with `None`, releases) the outcome of approval `id`.
    pub fn set_outcome(
        &self,
        id: &str,
        outcome: Option<Outcome>,
        detail: Option<&str>,
    ) -> Result<(), ApprovalError> {
        self.conn()?.execute(
            "UPDATE approvals SET outcome = ?2, outcome_detail = ?3 WHERE id = ?1",
            rusqlite::params![id, outcome.map(Outcome::as_str), detail],
        )?;
        Ok(())
    }

    /// Releases the relaying claim on approval `id` (a push that claimed it failed early).
    pub fn release_claim(&self, id: &str) -> Result<(), ApprovalError> {
        self.conn()?.execute(
            "UPDATE approvals SET outcome = NULL WHERE id = ?1 AND outcome = 'relaying'",
            [id],
        )?;
        Ok(())
    }

    /// Releases every claim in flight (`relaying`, `applying`): for a gateway starting up,
    /// when no push of its own can hold one. Returns how many.
    pub fn release_claims(&self) -> Result<usize, ApprovalError> {
        Ok(self.conn()?.execute(
            "UPDATE approvals SET outcome = NULL WHERE outcome IN ('relaying', 'applying')",
            [],
        )?)
    }

    /// Decided approvals whose decision is not in the chain yet.
    pub fn unrecorded(&self) -> Result<Vec<Approval>, ApprovalError> {
        self.select("status != 'pending' AND recorded = 0", &[])
    }

    /// Notes that the decision on `id` is in the chain.
    pub fn mark_recorded(&self, id: &str) -> Result<(), ApprovalError> {
        self.conn()?
            .execute("UPDATE approvals SET recorded = 1 WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Decided approvals whose decision was not announced to the webhook yet.
    pub fn unnotified(&self) -> Result<Vec<Approval>, ApprovalError> {
        self.select("status != 'pending' AND notified = 0", &[])
    }

    /// Notes that the decision on `id` was handed to the webhook.
    pub fn mark_notified(&self, id: &str) -> Result<(), ApprovalError> {
        self.conn()?
            .execute("UPDATE approvals SET notified = 1 WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Approved updates nobody relayed yet.
    pub fn unapplied(&self) -> Result<Vec<Approval>, ApprovalError> {
        self.select("status = 'approved' AND outcome IS NULL", &[])
    }
}

fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_string()
}

fn parse_status(s: &str) -> Result<Status, ApprovalError> {
    Status::from_name(s).ok_or_else(|| ApprovalError::Corrupt {
        what: "status",
        value: s.into(),
    })
}

/// A row before its enums are checked.
struct RawRow {
    text: [String; 13],
    optional: [Option<String>; 5],
}

fn row_to_raw(row: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        text: [
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
            row.get(9)?,
            row.get(10)?,
            row.get(11)?,
            row.get(12)?,
        ],
        optional: [
            row.get(13)?,
            row.get(14)?,
            row.get(15)?,
            row.get(16)?,
            row.get(17)?,
        ],
    })
}

impl RawRow {
    fn into_approval(self) -> Result<Approval, ApprovalError> {
        let [id, status, identity, repo, refname, old, new, rule, reason, op, session, created, expires] =
            self.text;
        let [decided_at, by, comment, outcome, outcome_detail] = self.optional;
        let outcome = match outcome {
            None => None,
            Some(o) => Some(Outcome::from_name(&o).ok_or(ApprovalError::Corrupt {
                what: "outcome",
                value: o,
            })?),
        };
        Ok(Approval {
            status: parse_status(&status)?,
            id,
            identity,
            repo,
            refname,
            old,
            new,
            rule,
            reason,
            op,
            session,
            created,
            expires,
            decided_at,
            by,
            comment,
            outcome,
            outcome_detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Approvals) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("audit.db"), b"").unwrap_or_else(|e| panic!("{e}"));
        let store = Approvals::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    fn new(id: &str, new: &str) -> NewApproval {
        NewApproval {
            id: id.into(),
            identity: "agent-1".into(),
            repo: "local/repo".into(),
            refname: "refs/heads/main".into(),
            old: "a".repeat(40),
            new: new.into(),
            rule: "review".into(),
            reason: "review: needs approval".into(),
            op: "op1".into(),
            session: "s1".into(),
            expire_after: Duration::from_secs(60),
            details: serde_json::json!({}),
        }
    }

    #[test]
    fn decide_claim_and_separation_of_duties() {
        let (_dir, s) = store();
        let now = SystemTime::now();
        let a = s
            .insert(&new("ap-1", &"b".repeat(40)), now)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.status, Status::Pending);
        assert!(matches!(
            s.decide("ap-1", Verdict::Approve, "agent-1", None, now),
            Err(ApprovalError::SelfApproval { .. })
        ));
        assert!(!s.claim("ap-1", Outcome::Pushed).unwrap_or(true));
        let a = s
            .decide("ap-1", Verdict::Approve, "alice", Some("ok"), now)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (a.status, a.by.as_deref()),
            (Status::Approved, Some("alice"))
        );
        assert!(matches!(
            s.decide("ap-1", Verdict::Deny, "bob", None, now),
            Err(ApprovalError::AlreadyDecided { .. })
        ));
        assert!(s.claim("ap-1", Outcome::Relaying).unwrap_or(false));
        assert!(!s.claim("ap-1", Outcome::Applying).unwrap_or(true));
        // A claim left by a crash is released at the next start; a final outcome is not.
        assert_eq!(s.release_claims().unwrap_or(0), 1);
        assert!(s.claim("ap-1", Outcome::Applying).unwrap_or(false));
        s.set_outcome("ap-1", Some(Outcome::Applied), None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.release_claims().unwrap_or(9), 0);
        assert!(s.unapplied().unwrap_or_default().is_empty());
        assert_eq!(s.unrecorded().map(|v| v.len()).unwrap_or(0), 1);
    }

    #[test]
    fn latest_for_matches_exactly_and_expiry() {
        let (_dir, s) = store();
        let now = SystemTime::now();
        s.insert(&new("ap-1", &"b".repeat(40)), now)
            .unwrap_or_else(|e| panic!("{e}"));
        let key = |n: &'static str| UpdateKey {
            identity: "agent-1",
            repo: "local/repo",
            refname: "refs/heads/main",
            old: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            new: n,
        };
        let b = "b".repeat(40);
        let found = s
            .latest_for(&key(Box::leak(b.into_boxed_str())))
            .unwrap_or(None);
        assert_eq!(found.map(|a| a.id), Some("ap-1".to_string()));
        let c = "c".repeat(40);
        assert!(s
            .latest_for(&key(Box::leak(c.into_boxed_str())))
            .unwrap_or(None)
            .is_none());
        let later = now + Duration::from_secs(61);
        let expired = s.expire_due(later).unwrap_or_default();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].status, Status::Expired);
    }
}
