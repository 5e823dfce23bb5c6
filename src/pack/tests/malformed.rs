//! Reproducers for hostile and broken packs: each must fail with its own variant, never panic, and
//! leave no `.idx` behind.

use super::build::{
    self, copy_from_start, delta, insert, object_id, reseal, RawPack, BLOB, COMMIT, OFS_DELTA, TREE,
};
use super::{history_repo, pack_objects, spool};
use crate::pack::{index, Kind, ObjectId, Options, PackError};

/// Indexes `bytes` and returns the error.
pub(super) fn refused(bytes: &[u8], options: &Options) -> PackError {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = spool(tmp.path(), bytes);
    let err = index(&path, options).expect_err("the pack must be refused");
    assert!(
        !path.with_extension("idx").exists(),
        "no idx is left behind after {err:?}"
    );
    err
}

/// A small valid pack: a blob, a tree, a commit, and a delta of the blob.
pub(super) fn small_pack() -> Vec<u8> {
    let mut pack = RawPack::default();
    let text: Vec<u8> = (0..200)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let blob = pack.object(BLOB, &text);
    let blob_id = object_id(gix_object::Kind::Blob, &text);
    let mut tree = b"100644 file.txt\0".to_vec();
    tree.extend_from_slice(blob_id.as_slice());
    let tree_id = object_id(gix_object::Kind::Tree, &tree);
    pack.object(TREE, &tree);
    pack.object(COMMIT, commit(&tree_id).as_bytes());
    let mut instructions = copy_from_start(100);
    instructions.extend(insert(b"appended"));
    pack.ofs_delta(blob, &delta(text.len() as u64, 108, &instructions));
    pack.finish()
}

pub(super) fn commit(tree: &ObjectId) -> String {
    format!("tree {tree}\nauthor A <a@example.com> 1700000000 +0000\ncommitter C <c@example.com> 1700000000 +0000\n\nmessage\n")
}

#[test]
fn small_pack_is_valid() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let indexed = index(&spool(tmp.path(), &small_pack()), &Options::default()).expect("valid");
    assert_eq!(indexed.len(), 4);
}

/// Where a pack of `len` bytes is cut in the truncation tests: in the header, in the first
/// entry, in the middle, in and just before the trailer.
pub(super) fn cuts(len: usize) -> [usize; 11] {
    [
        1,
        4,
        11,
        12,
        13,
        40,
        len / 3,
        len / 2,
        len - 21,
        len - 20,
        len - 1,
    ]
}

#[test]
fn truncated_pack_is_refused_at_every_cut() {
    let pack = small_pack();
    let len = pack.len();
    for cut in cuts(len) {
        match refused(&pack[..cut], &Options::default()) {
            PackError::Truncated { .. } | PackError::CountExceedsData { .. } => {}
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
    }
    assert!(matches!(
        refused(&pack[..len - 1], &Options::default()),
        PackError::Truncated { .. }
    ));
    assert!(matches!(
        refused(&pack[..len - 20], &Options::default()),
        PackError::Truncated { .. }
    ));
}

#[test]
fn flipped_bytes_anywhere_are_refused_without_panic() {
    let (_tmp, repo) = history_repo(3, 60);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    for at in (0..pack.len()).step_by(11).chain([pack.len() / 2]) {
        let mut bad = pack.clone();
        bad[at] ^= 0x40;
        let err = refused(&bad, &Options::default());
        assert!(err.is_input_error(), "flip at {at}: {err:?}");
    }
}

#[test]
fn changed_content_with_intact_zlib_is_caught_by_the_checksum() {
    let original = {
        let mut pack = RawPack::default();
        pack.object(BLOB, b"hello world");
        pack.finish()
    };
    let mut forged = {
        let mut pack = RawPack::default();
        pack.object(BLOB, b"hello wOrld");
        pack.finish()
    };
    let len = forged.len();
    forged[len - 20..].copy_from_slice(&original[len - 20..]);
    match refused(&forged, &Options::default()) {
        PackError::ChecksumMismatch { expected, actual } => {
            assert_eq!(expected.as_slice(), &original[len - 20..]);
            assert_ne!(expected, actual);
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
}

#[test]
fn wrong_trailing_checksum_is_refused() {
    let mut pack = small_pack();
    let last = pack.len() - 1;
    pack[last] ^= 1;
    assert!(matches!(
        refused(&pack, &Options::default()),
        PackError::ChecksumMismatch { .. }
    ));
}

#[test]
fn bad_signature_and_version_are_refused() {
    let mut pack = small_pack();
    pack[3] = b'X';
    assert!(matches!(
        refused(&build::reseal(pack), &Options::default()),
        PackError::BadSignature
    ));
    assert!(matches!(
        refused(b"GARBAGE", &Options::default()),
        PackError::BadSignature
    ));
    for version in [0u32, 1, 4] {
        let mut pack = small_pack();
        pack[4..8].copy_from_slice(&version.to_be_bytes());
        match refused(&reseal(pack), &Options::default()) {
            PackError::UnsupportedVersion { version: v } => assert_eq!(v, version),
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
    }
}

#[test]
fn entry_count_larger_than_present_is_refused() {
    let mut pack = RawPack::default();
    pack.object(BLOB, b"one");
    match refused(&pack.finish_with_count(2), &Options::default()) {
        PackError::CountExceedsData {
            count: 2,
            possible: 1,
            ..
        } => {}
        other => panic!("expected CountExceedsData, got {other:?}"),
    }
    // With room for one more entry, the trailer is read as an entry and the pack still fails.
    let err = refused(
        &RawPack::default().finish_with_count(1)[..],
        &Options::default(),
    );
    assert!(err.is_input_error(), "{err:?}");
    let mut many = RawPack::default();
    for i in 0..5 {
        many.object(BLOB, format!("blob {i}").as_bytes());
    }
    let err = refused(&many.finish_with_count(6), &Options::default());
    assert!(err.is_input_error(), "{err:?}");
}

#[test]
fn zlib_bomb_declaring_ten_gib_is_refused_before_inflating() {
    let mut pack = RawPack::default();
    pack.entry(BLOB, 10 << 30, &[], &build::zlib(&vec![0; 1 << 20]));
    match refused(&pack.finish(), &Options::default()) {
        PackError::ObjectTooLarge {
            size,
            limit,
            offset: 12,
        } => {
            assert_eq!((size, limit), (10 << 30, 256 << 20));
        }
        other => panic!("expected ObjectTooLarge, got {other:?}"),
    }
}

#[test]
fn zlib_stream_longer_than_declared_stops_early() {
    let mut pack = RawPack::default();
    pack.entry(BLOB, 100, &[], &build::zlib(&vec![0; 16 << 20]));
    match refused(&pack.finish(), &Options::default()) {
        PackError::SizeMismatch {
            declared: 100,
            actual,
            ..
        } => assert!(actual <= 100 + (64 << 10)),
        other => panic!("expected SizeMismatch, got {other:?}"),
    }
}

#[test]
fn delta_bomb_declaring_a_huge_result_is_refused() {
    let mut pack = RawPack::default();
    let base = pack.object(BLOB, b"abc");
    pack.ofs_delta(base, &delta(3, 10 << 30, &copy_from_start(3)));
    match refused(&pack.finish(), &Options::default()) {
        PackError::DeltaResultTooLarge { size, .. } => assert_eq!(size, 10 << 30),
        other => panic!("expected DeltaResultTooLarge, got {other:?}"),
    }
}

#[test]
fn total_inflated_bytes_over_the_limit_are_refused() {
    let mut pack = RawPack::default();
    for i in 0..3u8 {
        pack.object(BLOB, &[i; 600]);
    }
    let options = Options {
        max_total_bytes: 1000,
        ..Options::default()
    };
    match refused(&pack.finish(), &options) {
        PackError::TotalTooLarge {
            total: 1200,
            limit: 1000,
            ..
        } => {}
        other => panic!("expected TotalTooLarge, got {other:?}"),
    }
}

#[test]
fn pack_file_over_the_size_limit_is_refused() {
    let options = Options {
        max_pack_bytes: 10,
        ..Options::default()
    };
    assert!(matches!(
        refused(&small_pack(), &options),
        PackError::PackTooLarge { limit: 10, .. }
    ));
}

#[test]
fn ref_delta_to_a_missing_base_is_a_thin_pack() {
    let mut pack = RawPack::default();
    pack.object(BLOB, b"unrelated");
    let missing = object_id(gix_object::Kind::Blob, b"not in this pack");
    pack.ref_delta(&missing, &delta(16, 3, &copy_from_start(3)));
    match refused(&pack.finish(), &Options::default()) {
        PackError::MissingBase { id } => assert_eq!(id, missing),
        other => panic!("expected MissingBase, got {other:?}"),
    }
}

#[test]
fn ref_delta_to_a_later_base_in_the_pack_resolves() {
    let mut pack = RawPack::default();
    let base_id = object_id(gix_object::Kind::Blob, b"the base comes later");
    pack.ref_delta(&base_id, &delta(20, 3, &copy_from_start(3)));
    pack.object(BLOB, b"the base comes later");
    let tmp = tempfile::tempdir().expect("temp dir");
    let indexed = index(&spool(tmp.path(), &pack.finish()), &Options::default()).expect("valid");
    let mut buf = Vec::new();
    let id = object_id(gix_object::Kind::Blob, b"the");
    assert_eq!(
        indexed.find(&id, &mut buf).expect("decodes"),
        Some(Kind::Blob)
    );
    assert_eq!(buf, b"the");
}

#[test]
fn delta_against_a_base_of_another_size_is_refused() {
    let mut pack = RawPack::default();
    let base = pack.object(BLOB, b"abc");
    pack.ofs_delta(base, &delta(5, 3, &copy_from_start(3)));
    assert!(matches!(
        refused(&pack.finish(), &Options::default()),
        PackError::BadDelta { .. }
    ));
}

#[test]
fn delta_copying_beyond_its_base_is_refused() {
    let mut pack = RawPack::default();
    let base = pack.object(BLOB, b"abc");
    pack.ofs_delta(base, &delta(3, 50, &copy_from_start(50)));
    assert!(matches!(
        refused(&pack.finish(), &Options::default()),
        PackError::BadDelta { .. }
    ));
}

#[test]
fn ofs_delta_into_the_middle_of_an_entry_is_refused() {
    let mut pack = RawPack::default();
    let base = pack.object(BLOB, b"some base object");
    pack.ofs_delta(base + 2, &delta(16, 3, &copy_from_start(3)));
    match refused(&pack.finish(), &Options::default()) {
        PackError::BadDeltaBase { base_offset, .. } => assert_eq!(base_offset, base + 2),
        other => panic!("expected BadDeltaBase, got {other:?}"),
    }
}

#[test]
fn ofs_delta_before_the_pack_start_is_refused() {
    let mut pack = RawPack::default();
    pack.entry(OFS_DELTA, 3, &[0x7f], &build::zlib(&delta(0, 0, &[])[..]));
    assert!(matches!(
        refused(&pack.finish(), &Options::default()),
        PackError::BadDeltaBase { .. }
    ));
}

#[test]
fn bytes_after_the_trailer_are_refused() {
    let mut pack = small_pack();
    pack.extend_from_slice(b"extra");
    assert!(matches!(
        refused(&pack, &Options::default()),
        PackError::TrailingBytes { count: 5 }
    ));
}

#[test]
fn malformed_entry_headers_are_refused() {
    let mut unknown_type = RawPack::default();
    unknown_type.entry(5, 3, &[], &build::zlib(b"abc"));
    // A size varint running past 64 bits.
    let mut overflow = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
    overflow.push(0xbf);
    overflow.extend_from_slice(&[0xff; 10]);
    overflow.push(0x01);
    overflow.extend_from_slice(&build::zlib(b""));
    let overflow = build::seal(overflow);
    for pack in [unknown_type.finish(), overflow] {
        assert!(matches!(
            refused(&pack, &Options::default()),
            PackError::BadEntryHeader { offset: 12, .. }
        ));
    }
}

#[test]
fn invalid_zlib_is_refused() {
    let mut pack = RawPack::default();
    pack.entry(
        BLOB,
        10,
        &[],
        &[0x78, 0x9c, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    );
    assert!(matches!(
        refused(&pack.finish(), &Options::default()),
        PackError::BadZlib { offset: 12 }
    ));
}

#[test]
fn exhausted_time_budget_is_refused() {
    let options = Options {
        max_duration: std::time::Duration::ZERO,
        ..Options::default()
    };
    assert!(matches!(
        refused(&small_pack(), &options),
        PackError::TimeLimitExceeded { .. }
    ));
}
