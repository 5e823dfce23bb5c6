//! Tests of the audit store: appending, tampering of every kind, packs, failures.
//!
//! Tampering is done the way an attacker with write access to `state_dir` would: a second
//! SQLite connection that drops the append-only triggers and edits rows.

#![allow(clippy::unwrap_used, reason = "tests panic on purpose")]

mod append;
mod packs;
mod tamper;

use std::path::{Path, PathBuf};

use super::record::{Decision, Operation, PushFacts, RefOp, RefRecord, Service, Transport};
use super::{Audit, AuditOptions, PackRef, RecordKind, VerifyOptions, VerifyOutcome};

/// A temporary state folder.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn open(&self) -> Audit {
        Audit::open(&self.state(), &AuditOptions::default()).unwrap()
    }

    fn open_with(&self, options: &AuditOptions) -> Audit {
        Audit::open(&self.state(), options).unwrap()
    }

    fn read_only(&self) -> Audit {
        let options = AuditOptions {
            read_only: true,
            ..AuditOptions::default()
        };
        Audit::open(&self.state(), &options).unwrap()
    }

    /// Runs `sql` on the database as an attacker would (triggers dropped first).
    fn tamper(&self, sql: &str) {
        let conn = rusqlite::Connection::open(self.state().join("audit.db")).unwrap();
        conn.execute_batch(&format!(
            "DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete; {sql}"
        ))
        .unwrap();
    }

    /// A spool file with `content`, in the state folder's file system.
    fn spool(&self, content: &[u8]) -> PathBuf {
        let spool = self
            .dir
            .path()
            .join(format!("spool-{}", rand::random::<u64>()));
        std::fs::write(&spool, content).unwrap();
        spool
    }
}

/// A push (with `pack`) or a fetch by `identity`.
fn operation(id: &str, identity: &str, decision: Decision, pack: Option<PackRef>) -> Operation {
    let push = pack.is_some();
    Operation {
        id: id.into(),
        session: format!("s-{identity}"),
        time: super::record::now(),
        duration_ms: 1,
        identity: identity.into(),
        auth: "token".into(),
        client: Some("127.0.0.1:40000".into()),
        transport: Transport::Http,
        repo: "local/demo".into(),
        service: if push {
            Service::ReceivePack
        } else {
            Service::UploadPack
        },
        protocol: if push { 0 } else { 2 },
        decision,
        reason: (decision == Decision::Deny).then(|| "protect-main: no".to_string()),
        refs: if push {
            vec![RefRecord {
                refname: "refs/heads/main".into(),
                old: "1".repeat(40),
                new: "2".repeat(40),
                op: Some(RefOp::Update),
                decision,
                reason: None,
            }]
        } else {
            Vec::new()
        },
        fetch: None,
        push: push.then(PushFacts::default),
        pack,
    }
}

/// A store with `n` fetch records `op-1` .. `op-n` (odd ones denied).
fn store_with(fixture: &Fixture, n: u64) -> Audit {
    let audit = fixture.open();
    for i in 1..=n {
        let decision = if i % 2 == 1 {
            Decision::Deny
        } else {
            Decision::Allow
        };
        let who = if i % 3 == 0 { "agent-2" } else { "agent-1" };
        let r = audit
            .append(
                RecordKind::Operation,
                &operation(&format!("op-{i}"), who, decision, None),
            )
            .unwrap();
        assert_eq!(r.seq, i);
    }
    audit
}

fn verify(audit: &Audit) -> VerifyOutcome {
    audit.verify(&VerifyOptions::default()).unwrap()
}

/// The first bad record's seq and its problem's text.
fn tampered(outcome: VerifyOutcome) -> (u64, String) {
    match outcome {
        VerifyOutcome::Tampered(t) => (t.seq, t.to_string()),
        VerifyOutcome::Intact { records } => panic!("expected tampering, got {records} intact"),
    }
}

fn assert_intact(audit: &Audit, n: u64) {
    assert_eq!(verify(audit), VerifyOutcome::Intact { records: n });
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}
