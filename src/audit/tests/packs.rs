//! Stored packs: moved not copied, exported byte for byte, encrypted at rest, checked by
//! `verify`, pruned by retention.

use std::time::{Duration, SystemTime};

use super::*;
use crate::audit::crypt::CHUNK;
use crate::audit::{AuditError, PackRef};

fn key_file(f: &Fixture) -> PathBuf {
    let path = f.dir.path().join("pack.key");
    std::fs::write(&path, hex::encode([42u8; 32])).unwrap();
    path
}

fn encrypted(f: &Fixture) -> Audit {
    f.open_with(&AuditOptions {
        pack_key_file: Some(key_file(f)),
        ..AuditOptions::default()
    })
}

/// Pack-like bytes spanning two encryption chunks.
fn content() -> Vec<u8> {
    (0..(CHUNK + 12345)).map(|i| (i * 7 % 256) as u8).collect()
}

fn push(audit: &Audit, id: &str, pack: &PackRef) {
    let op = operation(id, "agent-1", Decision::Allow, Some(pack.clone()));
    audit.append(RecordKind::Operation, &op).unwrap();
}

fn export(audit: &Audit, id: &str) -> Result<Vec<u8>, AuditError> {
    let mut out = Vec::new();
    audit.export_pack(id, &mut out).map(|_| out)
}

#[test]
fn a_plain_pack_is_moved_and_exported_exactly() {
    let f = Fixture::new();
    let audit = f.open();
    let bytes = content();
    let spool = f.spool(&bytes);
    let pack = audit.store_pack(&spool).unwrap();
    assert_eq!(pack.bytes, bytes.len() as u64);
    let file = audit.pack_file(&pack.sha256).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        let (kept, spooled) = (file.metadata().unwrap(), spool.metadata().unwrap());
        assert_eq!(
            (kept.dev(), kept.ino()),
            (spooled.dev(), spooled.ino()),
            "the spool is linked, not copied; it keeps its name for readers"
        );
    }
    std::fs::remove_file(&spool).unwrap();
    assert_eq!(
        file.file_name().and_then(|n| n.to_str()),
        Some(format!("{}.pack", pack.sha256).as_str())
    );
    push(&audit, "op-1", &pack);
    assert!(export(&audit, "op-1").unwrap() == bytes);
    assert_intact(&audit, 1);
}

#[test]
fn an_identical_pack_is_kept_once() {
    let f = Fixture::new();
    let audit = f.open();
    let a = audit.store_pack(&f.spool(b"same")).unwrap();
    let spool = f.spool(b"same");
    let b = audit.store_pack(&spool).unwrap();
    assert_eq!(a, b);
    let files = std::fs::read_dir(f.state().join("packs")).unwrap().count();
    assert_eq!(files, 1);
}

#[test]
fn an_encrypted_pack_is_exported_exactly() {
    let f = Fixture::new();
    let audit = encrypted(&f);
    let bytes = content();
    let pack = audit.store_pack(&f.spool(&bytes)).unwrap();
    let file = audit.pack_file(&pack.sha256).unwrap();
    assert!(file.to_string_lossy().ends_with(".pack.enc"));
    let stored = read(&file);
    assert!(
        stored.windows(64).all(|w| w != &bytes[..64]),
        "stored in clear"
    );
    push(&audit, "op-1", &pack);
    assert!(export(&audit, "op-1").unwrap() == bytes);
    assert_intact(&audit, 1);
    // Without the key, it can be neither exported nor verified.
    drop(audit);
    let audit = f.read_only();
    assert!(matches!(
        export(&audit, "op-1"),
        Err(AuditError::PackKeyMissing { .. })
    ));
    assert!(audit.verify(&VerifyOptions::default()).is_err());
}

#[test]
fn a_changed_plain_pack_is_detected() {
    let f = Fixture::new();
    let audit = store_with(&f, 1);
    let pack = audit.store_pack(&f.spool(&content())).unwrap();
    push(&audit, "op-2", &pack);
    let file = audit.pack_file(&pack.sha256).unwrap();
    let mut bytes = read(&file);
    bytes[CHUNK] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 2);
    assert!(
        text.contains("id op-2") && text.contains("was changed"),
        "{text}"
    );
    assert!(matches!(
        export(&audit, "op-2"),
        Err(AuditError::PackCorrupt { .. })
    ));
    // Truncated, then gone.
    std::fs::write(&file, &bytes[..100]).unwrap();
    let (seq, _) = tampered(verify(&audit));
    assert_eq!(seq, 2);
    std::fs::remove_file(&file).unwrap();
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 2);
    assert!(text.contains("is missing"), "{text}");
}

#[test]
fn a_changed_encrypted_pack_is_detected() {
    let f = Fixture::new();
    let audit = encrypted(&f);
    let pack = audit.store_pack(&f.spool(&content())).unwrap();
    push(&audit, "op-1", &pack);
    let file = audit.pack_file(&pack.sha256).unwrap();
    let original = read(&file);
    let mut bytes = original.clone();
    bytes[CHUNK + 100] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 1);
    assert!(text.contains("authentication failed"), "{text}");
    // Replaced by a plaintext file with other content.
    std::fs::remove_file(&file).unwrap();
    std::fs::write(file.with_extension(""), b"other").unwrap();
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 1);
    assert!(text.contains("hashes to"), "{text}");
}

#[test]
fn export_names_what_is_missing() {
    let f = Fixture::new();
    let audit = store_with(&f, 1);
    assert!(matches!(
        export(&audit, "op-1"),
        Err(AuditError::NoPack { .. })
    ));
    assert!(matches!(
        export(&audit, "op-404"),
        Err(AuditError::UnknownRecord { .. })
    ));
}

fn age(path: &std::path::Path, days: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .unwrap();
}

#[test]
fn pruning_deletes_old_packs_and_keeps_the_chain_verifiable() {
    let f = Fixture::new();
    let audit = f.open_with(&AuditOptions {
        keep_packs_days: Some(30),
        ..AuditOptions::default()
    });
    let old = audit.store_pack(&f.spool(b"old pack")).unwrap();
    let mut op = operation("op-old", "agent-1", Decision::Allow, Some(old.clone()));
    op.time =
        super::super::record::format_time(SystemTime::now() - Duration::from_secs(40 * 86_400));
    audit.append(RecordKind::Operation, &op).unwrap();
    let new = audit.store_pack(&f.spool(b"new pack")).unwrap();
    push(&audit, "op-new", &new);
    // Prune also wants the file old: one stored again recently is being reused.
    age(&audit.pack_file(&old.sha256).unwrap(), 40);

    let outcome = audit.prune_packs(SystemTime::now()).unwrap();
    assert_eq!(outcome.packs, std::slice::from_ref(&old.sha256));
    assert!(audit.pack_file(&old.sha256).is_none());
    assert!(audit.pack_file(&new.sha256).is_some());
    assert_intact(&audit, 3);
    assert!(matches!(
        export(&audit, "op-old"),
        Err(AuditError::PackPruned { .. })
    ));
    assert!(export(&audit, "op-new").unwrap() == b"new pack");
    // Nothing left to prune.
    assert_eq!(audit.prune_packs(SystemTime::now()).unwrap().packs.len(), 0);
}

#[test]
fn a_pack_deleted_without_a_prune_record_is_missing() {
    let f = Fixture::new();
    let audit = f.open_with(&AuditOptions {
        keep_packs_days: Some(30),
        ..AuditOptions::default()
    });
    let pack = audit.store_pack(&f.spool(b"p")).unwrap();
    push(&audit, "op-1", &pack);
    // Pruned, then pushed again: the re-stored pack is required again.
    age(&audit.pack_file(&pack.sha256).unwrap(), 40);
    let far = SystemTime::now() + Duration::from_secs(60 * 86_400);
    assert_eq!(audit.prune_packs(far).unwrap().packs.len(), 1);
    let again = audit.store_pack(&f.spool(b"p")).unwrap();
    push(&audit, "op-2", &again);
    std::fs::remove_file(audit.pack_file(&pack.sha256).unwrap()).unwrap();
    let (seq, text) = tampered(verify(&audit));
    assert_eq!(seq, 3);
    assert!(
        text.contains("id op-2") && text.contains("is missing"),
        "{text}"
    );
}

#[test]
fn no_retention_prunes_nothing() {
    let f = Fixture::new();
    let audit = f.open();
    let pack = audit.store_pack(&f.spool(b"p")).unwrap();
    push(&audit, "op-1", &pack);
    let far = SystemTime::now() + Duration::from_secs(10_000 * 86_400);
    assert_eq!(audit.prune_packs(far).unwrap(), Default::default());
}
