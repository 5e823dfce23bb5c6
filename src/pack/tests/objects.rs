//! Reproducers for objects git's fsck refuses inside otherwise valid packs: each must fail with
//! [`PackError::InvalidObject`] or [`PackError::DuplicateObject`], never panic.

use super::build::{copy_from_start, delta, object_id, RawPack, BLOB, COMMIT, TREE};
use super::malformed::{commit, refused};
use super::spool;
use crate::pack::{index, Kind, Options, PackError};

#[test]
fn invalid_commit_inside_a_valid_pack_is_refused() {
    let mut pack = RawPack::default();
    pack.object(COMMIT, b"this is not a commit\n");
    match refused(&pack.finish(), &Options::default()) {
        PackError::InvalidObject {
            kind: Kind::Commit,
            id,
            ..
        } => {
            assert_eq!(
                id,
                object_id(gix_object::Kind::Commit, b"this is not a commit\n")
            );
        }
        other => panic!("expected InvalidObject, got {other:?}"),
    }
}

#[test]
fn invalid_tag_inside_a_valid_pack_is_refused() {
    let mut pack = RawPack::default();
    pack.object(4, b"object nothex\n");
    assert!(matches!(
        refused(&pack.finish(), &Options::default()),
        PackError::InvalidObject {
            kind: Kind::Tag,
            ..
        }
    ));
}

fn tree(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (mode, name) in entries {
        out.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        out.extend_from_slice(object_id(gix_object::Kind::Blob, name.as_bytes()).as_slice());
    }
    out
}

#[test]
fn trees_breaking_git_fsck_rules_are_refused() {
    let cases = [
        tree(&[("100644", "b"), ("100644", "a")]),
        tree(&[("100644", "a"), ("100644", "a")]),
        tree(&[("100644", "a"), ("100644", "a.c"), ("40000", "a")]),
        tree(&[("100644", "")]),
        b"100644 truncated\0abc".to_vec(),
    ];
    for (i, data) in cases.iter().enumerate() {
        let mut pack = RawPack::default();
        pack.object(TREE, data);
        match refused(&pack.finish(), &Options::default()) {
            PackError::InvalidObject {
                kind: Kind::Tree, ..
            } => {}
            other => panic!("case {i}: expected InvalidObject, got {other:?}"),
        }
    }
    let mut pack = RawPack::default();
    pack.object(
        TREE,
        &tree(&[
            ("100644", "a"),
            ("40000", "a-dir"),
            ("100644", "a.c"),
            ("40000", "b"),
        ]),
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    index(&spool(tmp.path(), &pack.finish()), &Options::default()).expect("a sorted tree is valid");
}

#[test]
fn duplicate_objects_are_refused() {
    let mut pack = RawPack::default();
    pack.object(BLOB, b"twice");
    pack.object(BLOB, b"twice");
    match refused(&pack.finish(), &Options::default()) {
        PackError::DuplicateObject { id } => {
            assert_eq!(id, object_id(gix_object::Kind::Blob, b"twice"))
        }
        other => panic!("expected DuplicateObject, got {other:?}"),
    }
}

#[test]
fn invalid_commit_produced_by_a_delta_is_refused() {
    let mut pack = RawPack::default();
    let tree_id = object_id(gix_object::Kind::Tree, b"");
    let valid = commit(&tree_id);
    let base = pack.object(COMMIT, valid.as_bytes());
    pack.object(TREE, b"");
    // Keep only the first 10 bytes ("tree 4b825"): a commit with a truncated tree line.
    pack.ofs_delta(base, &delta(valid.len() as u64, 10, &copy_from_start(10)));
    match refused(&pack.finish(), &Options::default()) {
        PackError::InvalidObject {
            kind: Kind::Commit,
            id,
            ..
        } => {
            assert_eq!(
                id,
                object_id(gix_object::Kind::Commit, &valid.as_bytes()[..10])
            );
        }
        other => panic!("expected InvalidObject, got {other:?}"),
    }
}
