//! Appending: ids and times, concurrency, failing closed, crash recovery, locking, reading.

use std::time::{Duration, SystemTime};

use serde_json::json;

use super::*;
use crate::audit::record::PushResult;
use crate::audit::{AuditError, LogFilter};

#[test]
fn append_fills_in_id_and_time_and_normalizes_time() {
    let f = Fixture::new();
    let audit = f.open();
    let r = audit
        .append(
            RecordKind::Result,
            &PushResult {
                op: "op-1".into(),
                session: "s-1".into(),
                unpack: Some("ok".into()),
                ..PushResult::default()
            },
        )
        .unwrap();
    assert!(r.id.starts_with("result-"), "{}", r.id);
    let stored = audit.record(&r.id).unwrap().unwrap();
    assert_eq!(stored.time.len(), "2024-06-01T12:00:00.000Z".len());
    assert_eq!(stored.columns.op.as_deref(), Some("op-1"));
    let r = audit
        .append(
            RecordKind::Approval,
            &json!({"id": "ap-1", "time": "2024-06-01T14:00:00+02:00"}),
        )
        .unwrap();
    let stored = audit.record(&r.id).unwrap().unwrap();
    assert_eq!(stored.time, "2024-06-01T12:00:00.000Z");
    assert!(stored
        .body
        .contains("\"time\":\"2024-06-01T12:00:00.000Z\""));
    assert_intact(&audit, 2);
}

#[test]
fn bad_bodies_are_refused() {
    let f = Fixture::new();
    let audit = f.open();
    for body in [
        json!([1, 2]),
        json!({"id": ""}),
        json!({"id": "has space"}),
        json!({"id": 7}),
        json!({"time": "yesterday"}),
    ] {
        let err = audit.append(RecordKind::Decision, &body).err();
        assert!(
            matches!(err, Some(AuditError::InvalidRecord { .. })),
            "{body}: {err:?}"
        );
    }
    audit
        .append(RecordKind::Decision, &json!({"id": "d-1"}))
        .unwrap();
    let err = audit
        .append(RecordKind::Decision, &json!({"id": "d-1"}))
        .err();
    assert!(
        matches!(err, Some(AuditError::DuplicateId { .. })),
        "{err:?}"
    );
    assert_intact(&audit, 1);
}

#[test]
fn concurrent_appends_from_20_threads_keep_a_valid_chain() {
    let f = Fixture::new();
    let audit = f.open();
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let audit = audit.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let op = operation(&format!("op-{t}-{i}"), "agent", Decision::Allow, None);
                    audit.append(RecordKind::Operation, &op).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_intact(&audit, 200);
    let head = audit.head().unwrap().unwrap();
    assert_eq!(head.seq, 200);
}

#[test]
fn an_unwritable_database_fails_the_append_and_records_nothing() {
    let f = Fixture::new();
    let audit = store_with(&f, 2);
    audit.break_writes().unwrap();
    let err = audit
        .append(
            RecordKind::Operation,
            &operation("op-3", "agent-1", Decision::Allow, None),
        )
        .err();
    assert!(matches!(err, Some(AuditError::Sqlite(_))), "{err:?}");
    assert!(audit.record("op-3").unwrap().is_none());
    assert_intact(&audit, 2);
}

#[test]
fn an_unwritable_head_fails_the_append_and_records_nothing() {
    let f = Fixture::new();
    let audit = store_with(&f, 2);
    // Root ignores permissions; a folder where the head file goes stops it all the same.
    let next = f.state().join("audit.head.tmp");
    std::fs::create_dir(&next).unwrap();
    let op = operation("op-3", "agent-1", Decision::Allow, None);
    let err = audit.append(RecordKind::Operation, &op).err();
    assert!(matches!(err, Some(AuditError::Io { .. })), "{err:?}");
    assert!(audit.record("op-3").unwrap().is_none());
    assert_intact(&audit, 2);
    // Once the disk is fixed, appending goes on.
    std::fs::remove_dir(&next).unwrap();
    audit.append(RecordKind::Operation, &op).unwrap();
    assert_intact(&audit, 3);
}

#[test]
fn a_state_dir_that_cannot_be_created_fails_the_open() {
    let f = Fixture::new();
    std::fs::write(f.state(), "a file").unwrap();
    let err = Audit::open(&f.state(), &AuditOptions::default()).err();
    assert!(matches!(err, Some(AuditError::Io { .. })), "{err:?}");
    let err = Audit::open(&f.state().join("sub"), &AuditOptions::default()).err();
    assert!(matches!(err, Some(AuditError::Io { .. })), "{err:?}");
}

#[test]
fn a_crash_before_the_commit_leaves_a_head_file_that_is_dropped() {
    let f = Fixture::new();
    let audit = store_with(&f, 2);
    drop(audit);
    std::fs::write(
        f.state().join("audit.head.tmp"),
        "gitgate-audit-head v1 seq=3 hash=",
    )
    .unwrap();
    assert_intact(&f.read_only(), 2);
    let audit = f.open();
    assert!(!f.state().join("audit.head.tmp").exists());
    assert_intact(&audit, 2);
}

#[test]
fn a_crash_that_loses_head_updates_leaves_a_head_behind_that_catches_up() {
    let f = Fixture::new();
    let audit = store_with(&f, 2);
    let head_2 = std::fs::read(f.state().join("audit.head")).unwrap();
    for i in 3..=4 {
        let op = operation(&format!("op-{i}"), "agent-1", Decision::Allow, None);
        audit.append(RecordKind::Operation, &op).unwrap();
    }
    drop(audit);
    // As if the renames of the last two heads had not reached the disk.
    std::fs::write(f.state().join("audit.head"), head_2).unwrap();
    assert_intact(&f.read_only(), 4);
    let audit = f.open();
    assert_eq!(audit.head().unwrap().unwrap().seq, 4);
    assert_intact(&audit, 4);
}

#[test]
fn a_head_behind_unsigned_records_is_refused_at_open() {
    let f = Fixture::new();
    let audit = store_with(&f, 2);
    let head_2 = std::fs::read(f.state().join("audit.head")).unwrap();
    let op = operation("op-3", "agent-1", Decision::Allow, None);
    audit.append(RecordKind::Operation, &op).unwrap();
    drop(audit);
    std::fs::write(f.state().join("audit.head"), head_2).unwrap();
    f.tamper("UPDATE records SET sig = '00' WHERE seq = 3");
    let err = Audit::open(&f.state(), &AuditOptions::default()).err();
    assert!(
        matches!(err, Some(AuditError::HeadMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn a_second_writer_is_refused() {
    let f = Fixture::new();
    let audit = f.open();
    let err = Audit::open(&f.state(), &AuditOptions::default()).err();
    assert!(matches!(err, Some(AuditError::Locked { .. })), "{err:?}");
    // Readers are welcome.
    assert_intact(&f.read_only(), 0);
    drop(audit);
    f.open();
}

#[test]
fn read_only_opens_never_create_or_write() {
    let f = Fixture::new();
    let options = AuditOptions {
        read_only: true,
        ..AuditOptions::default()
    };
    let err = Audit::open(&f.state(), &options).err();
    assert!(matches!(err, Some(AuditError::NotFound { .. })), "{err:?}");
    assert!(!f.state().exists());
    let writer = store_with(&f, 1);
    let reader = f.read_only();
    let err = reader.append(RecordKind::Decision, &json!({})).err();
    assert!(matches!(err, Some(AuditError::ReadOnly)), "{err:?}");
    // The reader sees the writer's later records.
    writer
        .append(
            RecordKind::Operation,
            &operation("op-2", "agent-1", Decision::Allow, None),
        )
        .unwrap();
    assert_intact(&reader, 2);
    assert_eq!(reader.public_key_hex(), writer.public_key_hex());
    assert_eq!(
        crate::audit::public_key(&f.state()).unwrap(),
        writer.public_key_hex()
    );
}

#[test]
fn the_state_dir_and_key_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    f.open();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&f.state()), 0o700);
    assert_eq!(mode(&f.state().join("packs")), 0o700);
    assert_eq!(mode(&f.state().join("audit_ed25519_key")), 0o600);
}

#[test]
fn log_filters() {
    let f = Fixture::new();
    let audit = store_with(&f, 6);
    let ids = |filter: LogFilter| -> Vec<String> {
        audit
            .log(&filter)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(LogFilter::default()).len(), 6);
    assert_eq!(
        ids(LogFilter {
            identity: Some("agent-2".into()),
            ..LogFilter::default()
        }),
        ["op-3", "op-6"]
    );
    assert_eq!(
        ids(LogFilter {
            decision: Some("allow".into()),
            ..LogFilter::default()
        }),
        ["op-2", "op-4", "op-6"]
    );
    assert_eq!(
        ids(LogFilter {
            repo: Some("local/*".into()),
            kinds: vec!["operation".into()],
            from_seq: Some(5),
            ..LogFilter::default()
        }),
        ["op-5", "op-6"]
    );
    assert!(ids(LogFilter {
        repo: Some("local".into()),
        ..LogFilter::default()
    })
    .is_empty());
    let hour = Duration::from_secs(3600);
    assert_eq!(
        ids(LogFilter {
            since: Some(SystemTime::now() - hour),
            until: Some(SystemTime::now() + hour),
            ..LogFilter::default()
        })
        .len(),
        6
    );
    assert!(ids(LogFilter {
        until: Some(SystemTime::now() - hour),
        ..LogFilter::default()
    })
    .is_empty());
    // A push whose operation is "allow" but one of whose refs was denied is a "deny" too.
    let mut op = operation("op-7", "agent-1", Decision::Allow, None);
    op.refs = vec![crate::audit::record::RefRecord {
        refname: "refs/heads/x".into(),
        old: "0".repeat(40),
        new: "1".repeat(40),
        op: None,
        decision: Decision::Deny,
        reason: Some("r".into()),
    }];
    audit.append(RecordKind::Operation, &op).unwrap();
    assert_eq!(
        ids(LogFilter {
            decision: Some("deny".into()),
            ..LogFilter::default()
        }),
        ["op-1", "op-3", "op-5", "op-7"]
    );
}

#[test]
fn log_json_has_the_contract_fields() {
    let f = Fixture::new();
    let audit = f.open();
    let pack = audit.store_pack(&f.spool(b"PACK")).unwrap();
    let op = operation("op-1", "agent-1", Decision::Deny, Some(pack));
    audit.append(RecordKind::Operation, &op).unwrap();
    let line = audit.log(&LogFilter::default()).unwrap()[0].to_json();
    for field in [
        "id",
        "session",
        "time",
        "identity",
        "transport",
        "repo",
        "service",
        "decision",
        "refs",
        "pack",
        "seq",
        "kind",
        "hash",
    ] {
        assert!(line.get(field).is_some(), "{field} missing in {line}");
    }
    for field in ["ref", "old", "new", "op", "decision", "reason"] {
        assert!(line["refs"][0].get(field).is_some(), "refs.{field} missing");
    }
    assert_eq!(line["pack"]["bytes"], 4);
    assert_eq!(line["service"], "receive-pack");
}

#[test]
fn a_group_write_keeps_the_others_when_one_record_is_refused() {
    use super::super::record::Columns;
    use super::super::sqlite::SqliteStore;
    use super::super::store::{Draft, Store};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("audit.db"), false).unwrap();
    let columns = Columns::default();
    let draft = |id: &'static str| Draft {
        id,
        kind: "operation",
        time: "2026-01-01T00:00:00.000Z",
        body: "{}",
        columns: &columns,
    };
    let mut finished = Vec::new();
    let results = store
        .append_batch(
            &[draft("a"), draft("a"), draft("b")],
            &mut |r| {
                r.sig = format!("sig-{}", r.seq);
                Ok(())
            },
            &mut |last| {
                finished.push(last.seq);
                Ok(())
            },
        )
        .unwrap();
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(AuditError::DuplicateId { .. })));
    let b = results[2].as_ref().unwrap();
    // `b` follows `a` directly: the refused record left no gap in the chain.
    assert_eq!(b.seq, 2);
    assert_eq!(&b.prev_hash, &results[0].as_ref().unwrap().hash);
    assert_eq!(finished, vec![2]);
    assert_eq!(store.tip().unwrap().unwrap().id, "b");

    // A failing `finish` (the head cannot be prepared) writes nothing.
    let results = store.append_batch(&[draft("c")], &mut |_| Ok(()), &mut |_| {
        Err(AuditError::invalid("no head"))
    });
    assert!(results.is_err());
    assert_eq!(store.tip().unwrap().unwrap().id, "b");
}

#[test]
fn a_queued_record_keeps_its_place_and_is_written_by_the_next_append_or_its_wait() {
    let f = Fixture::new();
    let audit = f.open();
    let first = audit
        .enqueue(
            RecordKind::Operation,
            &operation("op-q1", "agent", Decision::Allow, None),
        )
        .unwrap();
    // Appended later, waited for: the queued one is written first, in the same batch.
    let later = audit
        .append(
            RecordKind::Operation,
            &operation("op-2", "agent", Decision::Allow, None),
        )
        .unwrap();
    assert_eq!(later.seq, 2);
    let ids: Vec<String> = audit
        .log(&LogFilter::default())
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["op-q1", "op-2"]);
    // Its wait finds it written.
    assert_eq!(first.wait().unwrap().seq, 1);
    // Alone, the wait writes it.
    let alone = audit
        .enqueue(
            RecordKind::Operation,
            &operation("op-q3", "agent", Decision::Allow, None),
        )
        .unwrap();
    assert_eq!(alone.wait().unwrap().seq, 3);
    assert_intact(&audit, 3);
    assert!(audit
        .enqueue(RecordKind::Operation, &json!("not an object"))
        .is_err());
}
