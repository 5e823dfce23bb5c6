//! `verify` against every way of changing the record: each test tampers once and checks
//! that the first bad record is named, and what is wrong with it.

use super::*;
use crate::audit::chain::{canonical, record_hash};
use crate::audit::{AuditError, Selector};

#[test]
fn an_intact_store_verifies() {
    let f = Fixture::new();
    let audit = store_with(&f, 5);
    assert_intact(&audit, 5);
    assert_intact(&f.read_only(), 5);
}

#[test]
fn an_empty_store_verifies() {
    let f = Fixture::new();
    let audit = f.open();
    assert_intact(&audit, 0);
}

#[test]
fn an_edited_field_is_detected() {
    let f = Fixture::new();
    let audit = store_with(&f, 5);
    f.tamper(
        "UPDATE records SET body = replace(body, '\"decision\":\"deny\"', '\"decision\":\"allow\"'), \
         decision = 'allow' WHERE seq = 3",
    );
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 3);
    assert!(
        text.contains("id op-3") && text.contains("hash does not match"),
        "{text}"
    );
}

#[test]
fn an_edited_column_is_detected() {
    let f = Fixture::new();
    let audit = store_with(&f, 5);
    f.tamper("UPDATE records SET identity = 'nobody' WHERE seq = 2");
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 2);
    assert!(text.contains("column identity"), "{text}");
}

#[test]
fn an_edit_with_the_chain_rehashed_is_caught_by_the_signatures() {
    let f = Fixture::new();
    let audit = store_with(&f, 5);
    f.tamper("UPDATE records SET body = replace(body, '\"agent-1\"', '\"agent-9\"'), identity = 'agent-9' WHERE seq = 2");
    rehash_from(&f, 2);
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 2);
    assert!(text.contains("signature is not valid"), "{text}");
}

#[test]
fn a_deleted_record_in_the_middle_is_detected() {
    let f = Fixture::new();
    let audit = store_with(&f, 5);
    f.tamper("DELETE FROM records WHERE seq = 3");
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 3);
    assert!(
        text.contains("missing (deleted): the next record present is 4"),
        "{text}"
    );
}

#[test]
fn a_deleted_record_with_the_rest_renumbered_is_detected() {
    let f = Fixture::new();
    let audit = store_with(&f, 5);
    f.tamper(
        "DELETE FROM records WHERE seq = 3; \
         UPDATE records SET seq = -seq WHERE seq > 3; UPDATE records SET seq = -seq - 1 WHERE seq < 0",
    );
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 3);
    assert!(
        text.contains("id op-4") && text.contains("prev_hash"),
        "{text}"
    );
}

#[test]
fn the_newest_record_deleted_is_detected() {
    let f = Fixture::new();
    let audit = store_with(&f, 5);
    f.tamper("DELETE FROM records WHERE seq = 5");
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 5);
    assert!(text.contains("the newest records were deleted"), "{text}");
    drop(audit);
    // And the gateway refuses to append on top of it.
    let err = Audit::open(&f.state(), &AuditOptions::default()).err();
    assert!(
        matches!(err, Some(AuditError::HeadMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn all_records_deleted_is_detected() {
    let f = Fixture::new();
    let audit = store_with(&f, 3);
    f.tamper("DELETE FROM records");
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 1);
    assert!(text.contains("newest records were deleted"), "{text}");
}

#[test]
fn a_reordered_pair_is_detected() {
    let f = Fixture::new();
    let audit = store_with(&f, 5);
    f.tamper(
        "UPDATE records SET seq = -1 WHERE seq = 2; UPDATE records SET seq = 2 WHERE seq = 3; \
         UPDATE records SET seq = 3 WHERE seq = -1",
    );
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 2);
    assert!(
        text.contains("id op-3") && text.contains("prev_hash"),
        "{text}"
    );
}

#[test]
fn an_inserted_record_in_the_middle_is_detected() {
    let f = Fixture::new();
    let audit = store_with(&f, 5);
    // A well-formed record linked to record 2, the later ones moved up by one.
    let prev = audit.record("op-2").unwrap().unwrap().hash;
    let body = forged_body("forged");
    let hash = record_hash(&prev, "operation", &body);
    f.tamper(&format!(
        "UPDATE records SET seq = -seq WHERE seq > 2; UPDATE records SET seq = -seq + 1 WHERE seq < 0; \
         INSERT INTO records {FORGED_COLUMNS} \
         VALUES (3, 'forged', 'operation', '2024-01-01T00:00:00.000Z', '{body}', '{prev}', '{hash}', {FORGED_VALUES})"
    ));
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 3);
    assert!(
        text.contains("id forged") && text.contains("signature"),
        "{text}"
    );
    // With the signature of the record it replaces, it fails all the same.
    f.tamper("UPDATE records SET sig = (SELECT sig FROM records WHERE seq = 4) WHERE seq = 3");
    let (seq, _) = tampered(verify(&audit));
    assert_eq!(seq, 3);
}

#[test]
fn an_inserted_record_at_the_end_is_detected() {
    let f = Fixture::new();
    let audit = store_with(&f, 5);
    let prev = audit.record("op-5").unwrap().unwrap().hash;
    let body = forged_body("forged");
    let hash = record_hash(&prev, "operation", &body);
    f.tamper(&format!(
        "INSERT INTO records {FORGED_COLUMNS} \
         VALUES (6, 'forged', 'operation', '2024-01-01T00:00:00.000Z', '{body}', '{prev}', '{hash}', {FORGED_VALUES})"
    ));
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 6);
    assert!(
        text.contains("id forged") && text.contains("without the key"),
        "{text}"
    );
    drop(audit);
    let err = Audit::open(&f.state(), &AuditOptions::default()).err();
    assert!(
        matches!(err, Some(AuditError::HeadMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn an_edited_head_is_detected() {
    let f = Fixture::new();
    let audit = store_with(&f, 3);
    let head_path = f.state().join("audit.head");
    let line = String::from_utf8(read(&head_path)).unwrap();
    std::fs::write(&head_path, line.replace("seq=3", "seq=2")).unwrap();
    let (_, text) = tampered(verify(&audit));
    assert!(text.contains("signature is not valid"), "{text}");
    std::fs::remove_file(&head_path).unwrap();
    let (_, text) = tampered(verify(&audit));
    assert!(text.contains("audit.head is missing"), "{text}");
}

#[test]
fn a_head_signed_with_another_key_is_detected_against_a_pinned_key() {
    let f = Fixture::new();
    let audit = store_with(&f, 2);
    let pinned = crate::audit::parse_public_key(&audit.public_key_hex()).unwrap();
    drop(audit);
    // The attacker replaces the key, and signs a head of their own.
    std::fs::remove_file(f.state().join("audit_ed25519_key")).unwrap();
    let stolen = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
    let pem = {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        stolen
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap()
    };
    std::fs::write(f.state().join("audit_ed25519_key"), pem.as_bytes()).unwrap();
    std::fs::remove_file(f.state().join("audit_ed25519_key.pub")).unwrap();
    // ... re-signs every record and the head ...
    let audit = f.read_only();
    for r in audit.log(&crate::audit::LogFilter::default()).unwrap() {
        let sig = crate::audit::head::sign_record(&stolen, r.seq, &r.hash);
        f.tamper(&format!(
            "UPDATE records SET sig = '{sig}' WHERE seq = {}",
            r.seq
        ));
    }
    let tip = audit.record("op-2").unwrap().unwrap();
    let head = crate::audit::Head::sign(&stolen, 2, &tip.hash, "2024-01-01T00:00:00.000Z");
    std::fs::write(f.state().join("audit.head"), head.line()).unwrap();
    // ... which only a pinned key reveals.
    assert_intact(&audit, 2);
    let options = VerifyOptions {
        public_key: Some(pinned),
        ..VerifyOptions::default()
    };
    let (seq, text) = tampered(audit.verify(&options).unwrap());
    assert_eq!(seq, 1);
    assert!(text.contains("signature is not valid"), "{text}");
}

#[test]
fn a_rollback_to_an_old_head_is_detected_by_an_anchor() {
    let f = Fixture::new();
    let audit = store_with(&f, 3);
    let old_head = std::fs::read_to_string(f.state().join("audit.head")).unwrap();
    audit
        .append(
            RecordKind::Operation,
            &operation("op-4", "agent-1", Decision::Allow, None),
        )
        .unwrap();
    let anchor = audit.head().unwrap().unwrap();
    // The attacker deletes record 4 and puts the head of record 3 back.
    f.tamper("DELETE FROM records WHERE seq = 4");
    std::fs::write(f.state().join("audit.head"), old_head).unwrap();
    assert_intact(&audit, 3);
    let options = VerifyOptions {
        anchors: vec![anchor],
        ..VerifyOptions::default()
    };
    let (seq, text) = tampered(audit.verify(&options).unwrap());
    assert_eq!(seq, 4);
    assert!(text.contains("rolled back"), "{text}");
}

#[test]
fn partial_checks_cover_their_range_only() {
    let f = Fixture::new();
    let audit = store_with(&f, 6);
    f.tamper("UPDATE records SET body = replace(body, 'agent-1', 'agent-7') WHERE seq = 5");
    let range = |from: &str, to: Option<&str>| VerifyOptions {
        from: Some(Selector::parse(from)),
        to: to.map(Selector::parse),
        ..VerifyOptions::default()
    };
    assert_eq!(
        audit.verify(&range("1", Some("op-4"))).unwrap(),
        VerifyOutcome::Intact { records: 4 }
    );
    assert_eq!(
        audit.verify(&range("op-2", Some("3"))).unwrap(),
        VerifyOutcome::Intact { records: 2 }
    );
    let (seq, _) = tampered(audit.verify(&range("4", None)).unwrap());
    assert_eq!(seq, 5);
    assert!(matches!(
        audit.verify(&range("op-99", None)),
        Err(AuditError::UnknownRecord { .. })
    ));
}

#[test]
fn a_range_ending_at_the_newest_record_checks_the_head() {
    let f = Fixture::new();
    let audit = store_with(&f, 6);
    f.tamper("DELETE FROM records WHERE seq = 6");
    let range = |to: &str| VerifyOptions {
        from: Some(Selector::Seq(3)),
        to: Some(Selector::parse(to)),
        ..VerifyOptions::default()
    };
    assert_eq!(
        audit.verify(&range("4")).unwrap(),
        VerifyOutcome::Intact { records: 2 }
    );
    let (seq, text) = tampered(audit.verify(&range("5")).unwrap());
    assert_eq!(seq, 6);
    assert!(text.contains("newest records were deleted"), "{text}");
}

/// The columns of a forged row, filled in as the attacker would (consistent with the body).
const FORGED_COLUMNS: &str =
    "(seq, id, kind, time, body, prev_hash, hash, session, identity, repo, decision, sig)";
/// The signature is made up: the attacker has no key.
const FORGED_VALUES: &str = "'s-agent-1', 'agent-1', 'local/demo', 'allow', '00'";

/// A canonical operation body with id `id` (no quotes to escape in SQL).
fn forged_body(id: &str) -> String {
    let mut op = operation(id, "agent-1", Decision::Allow, None);
    op.time = "2024-01-01T00:00:00.000Z".into();
    op.client = None;
    canonical(&serde_json::to_value(&op).unwrap())
}

/// Recomputes every hash from `seq` on, as an attacker without the key can.
fn rehash_from(f: &Fixture, seq: u64) {
    let conn = rusqlite::Connection::open(f.state().join("audit.db")).unwrap();
    let mut prev: String = conn
        .query_row(
            "SELECT hash FROM records WHERE seq = ?1",
            [seq as i64 - 1],
            |r| r.get(0),
        )
        .unwrap();
    let rows: Vec<(i64, String, String)> = conn
        .prepare("SELECT seq, kind, body FROM records WHERE seq >= ?1 ORDER BY seq")
        .unwrap()
        .query_map([seq as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (s, kind, body) in rows {
        let hash = record_hash(&prev, &kind, &body);
        conn.execute(
            "UPDATE records SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![prev, hash, s],
        )
        .unwrap();
        prev = hash;
    }
}
