//! The pread-based reader against git: `.idx` files byte for byte (including the 8-byte offset
//! table), packs mixing offset- and ref-deltas, and [`index_visiting`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::build::{copy_from_start, delta, insert, object_id, RawPack, BLOB};
use super::{history_repo, pack_objects, run_git, spool};
use crate::pack::idx::{self, IdxEntry};
use crate::pack::{index, index_visiting, Kind, ObjectId, Options, PackError};

/// git's `.idx` for the pack at `pack`, written with `--index-version=<version>`.
pub(super) fn git_idx(pack: &std::path::Path, version: &str) -> Vec<u8> {
    let dir = pack.parent().expect("pack dir");
    let out = dir.join("git.idx");
    run_git(
        dir,
        &[
            "index-pack",
            &format!("--index-version={version}"),
            "-o",
            out.to_str().expect("utf-8"),
            pack.to_str().expect("utf-8"),
        ],
        b"",
    );
    let bytes = std::fs::read(&out).expect("git's idx");
    std::fs::remove_file(&out).expect("removed");
    bytes
}

#[test]
fn offsets_over_the_4_byte_limit_go_to_the_8_byte_table_as_git_writes_them() {
    let (tmp, repo) = history_repo(10, 400);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let path = spool(tmp.path(), &pack);
    let indexed = index(&path, &Options::default()).expect("valid");
    let (_, gix_index) = indexed.parts().expect("files");
    let mut entries: Vec<IdxEntry> = gix_index
        .iter()
        .map(|e| IdxEntry {
            id: e.oid,
            offset: e.pack_offset,
            crc32: e.crc32.expect("v2 index has CRCs"),
        })
        .collect();
    entries.sort_unstable();
    // git's own knob for the 4-byte limit: `--index-version=2,<limit>`. With 0x200 most offsets of
    // this small pack count as "large", which packs over 2 GiB need.
    let limit = 0x200;
    assert!(entries.iter().any(|e| e.offset > limit) && entries.iter().any(|e| e.offset <= limit));
    let ours = tmp.path().join("large.idx");
    let checksum = indexed.checksum().expect("checksum");
    idx::write(&ours, &entries, &checksum, limit).expect("written");
    assert!(
        std::fs::read(&ours).expect("ours") == git_idx(&path, "2,0x200"),
        "the .idx with an 8-byte offset table is git's, byte for byte"
    );
    // And both git and gix read its 8-byte offsets back.
    let reread = gix_pack::index::File::at(&ours, gix_hash::Kind::Sha1).expect("gix reads it");
    for entry in &entries {
        let at = reread.lookup(entry.id).expect("present");
        assert_eq!(reread.pack_offset_at_index(at), entry.offset);
    }
    let renamed = path.with_extension("idx");
    std::fs::rename(&ours, &renamed).expect("replace our idx");
    run_git(
        tmp.path(),
        &["verify-pack", renamed.to_str().expect("utf-8")],
        b"",
    );
}

#[test]
fn with_the_default_pack_limit_every_offset_fits_the_4_byte_table() {
    // The last entry starts at least 29 bytes (a minimal entry and the trailer) before the end of
    // a pack of at most `max_pack_bytes`: the 8-byte table is only needed past a 2 GiB limit.
    assert!(Options::default().max_pack_bytes - 29 <= idx::OFF32_LIMIT);
}

/// A pack git would never write, but must read: a ref-delta whose base is itself a delta, a
/// ref-delta to a later entry, and an offset-delta of a ref-delta.
pub(super) fn mixed_pack() -> (Vec<u8>, HashMap<ObjectId, Vec<u8>>) {
    let mut pack = RawPack::default();
    let mut expected = HashMap::new();
    let base: Vec<u8> = (0..300)
        .flat_map(|i| format!("base line {i}\n").into_bytes())
        .collect();
    let later = b"an object stored after the delta that needs it".to_vec();
    let later_id = object_id(gix_object::Kind::Blob, &later);
    // 0: a ref-delta to an object that comes later.
    let mut forward = copy_from_start(10);
    forward.extend(insert(b"!"));
    let forward_data = [&later[..10], b"!"].concat();
    pack.ref_delta(&later_id, &delta(later.len() as u64, 11, &forward));
    expected.insert(
        object_id(gix_object::Kind::Blob, &forward_data),
        forward_data,
    );
    // 1: a full blob; 2: an offset-delta of it.
    let base_at = pack.object(BLOB, &base);
    expected.insert(object_id(gix_object::Kind::Blob, &base), base.clone());
    let mut first = copy_from_start(1000);
    first.extend(insert(b"first delta"));
    let first_data = [&base[..1000], b"first delta"].concat();
    let first_id = object_id(gix_object::Kind::Blob, &first_data);
    let first_at = pack.ofs_delta(base_at, &delta(base.len() as u64, 1011, &first));
    expected.insert(first_id, first_data.clone());
    // 3: a ref-delta whose base (2) is itself a delta.
    let mut second = copy_from_start(500);
    second.extend(insert(b"second"));
    let second_data = [&first_data[..500], b"second"].concat();
    let second_at = pack.ref_delta(&first_id, &delta(1011, 506, &second));
    expected.insert(
        object_id(gix_object::Kind::Blob, &second_data),
        second_data.clone(),
    );
    // 4: an offset-delta of the ref-delta.
    let third_data = [&second_data[..100], b"third"].concat();
    let mut third = copy_from_start(100);
    third.extend(insert(b"third"));
    pack.ofs_delta(second_at, &delta(506, 105, &third));
    expected.insert(object_id(gix_object::Kind::Blob, &third_data), third_data);
    // 5: the later base.
    pack.object(BLOB, &later);
    expected.insert(later_id, later);
    assert!(first_at > base_at);
    (pack.finish(), expected)
}

#[test]
fn mixed_offset_and_ref_deltas_resolve_and_index_as_git_does() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (bytes, expected) = mixed_pack();
    let path = spool(tmp.path(), &bytes);
    let visited = Mutex::new(HashMap::new());
    let indexed = index_visiting(&path, &Options::default(), |id, kind, data| {
        assert_eq!(kind, Kind::Blob);
        let fresh = visited.lock().expect("lock").insert(id, data.to_vec());
        assert!(fresh.is_none(), "{id} once");
        Ok::<_, PackError>(())
    })
    .expect("valid");
    let visited = visited.into_inner().expect("lock");
    assert_eq!(visited, expected, "index_visiting sees every object once");
    let mut walked = HashMap::new();
    indexed
        .for_each(|id, _, data| {
            walked.insert(id, data.to_vec());
            Ok::<_, PackError>(())
        })
        .expect("decodes");
    assert_eq!(walked, expected);
    let mut buf = Vec::new();
    for (id, data) in &expected {
        assert_eq!(
            indexed.find(id, &mut buf).expect("decodes"),
            Some(Kind::Blob)
        );
        assert_eq!(&buf, data);
    }
    let ours = std::fs::read(indexed.idx_path().expect("idx")).expect("ours");
    assert!(ours == git_idx(&path, "2"), "git writes the same .idx");
}

#[test]
fn index_visiting_sees_what_for_each_sees_on_a_git_pack() {
    let (tmp, repo) = history_repo(12, 600);
    for (name, flags) in [
        ("ofs.pack", &["--all", "--delta-base-offset"][..]),
        ("ref.pack", &["--all"][..]),
    ] {
        let pack = pack_objects(&repo, "", flags);
        let path = super::spool_as(tmp.path(), name, &pack);
        let during = Mutex::new(Vec::new());
        let indexed = index_visiting(&path, &Options::default(), |id, kind, data| {
            let hashed = object_id(kind.into(), data);
            during
                .lock()
                .expect("lock")
                .push((id, kind.as_str(), hashed));
            Ok::<_, PackError>(())
        })
        .expect("valid");
        let mut during = during.into_inner().expect("lock");
        let mut after = Vec::new();
        indexed
            .for_each(|id, kind, data| {
                after.push((id, kind.as_str(), object_id(kind.into(), data)));
                Ok::<_, PackError>(())
            })
            .expect("decodes");
        assert!(during.iter().all(|(id, _, hashed)| id == hashed));
        during.sort();
        after.sort();
        assert_eq!(during, after, "{name}");
        assert_eq!(during.len(), indexed.len());
    }
}

#[test]
fn a_visitor_error_stops_indexing_and_leaves_no_idx() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (bytes, _) = mixed_pack();
    let path = spool(tmp.path(), &bytes);
    // One thread: the visits stop right at the error (see tests::threads for several).
    let options = Options {
        threads: 1,
        ..Options::default()
    };
    let seen = AtomicUsize::new(0);
    let result = index_visiting(&path, &options, |_, _, _| {
        if seen.fetch_add(1, Ordering::Relaxed) + 1 == 2 {
            return Err(PackError::Internal {
                detail: "visitor says stop".into(),
            });
        }
        Ok(())
    });
    match result {
        Err(PackError::Internal { detail }) => assert_eq!(detail, "visitor says stop"),
        other => panic!("expected the visitor's error, got {other:?}"),
    }
    assert_eq!(seen.into_inner(), 2);
    assert!(!path.with_extension("idx").exists());
}

#[test]
fn find_reads_every_object_through_a_tiny_base_cache() {
    let (tmp, repo) = history_repo(20, 800);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset", "--depth=50"]);
    let path = spool(tmp.path(), &pack);
    for cache in [1, 4096, 16 << 20] {
        let options = Options {
            find_cache_bytes: cache,
            ..Options::default()
        };
        let indexed = index(&path, &options).expect("valid");
        let mut buf = Vec::new();
        for id in indexed.ids() {
            let kind = indexed
                .find(&id, &mut buf)
                .expect("decodes")
                .expect("present");
            assert_eq!(object_id(kind.into(), &buf), id, "cache {cache}");
        }
    }
}

#[test]
fn flipped_bytes_in_a_pack_of_mixed_deltas_are_refused_without_panic() {
    let (pack, _) = mixed_pack();
    let tmp = tempfile::tempdir().expect("temp dir");
    for at in 0..pack.len() - 20 {
        for bit in [0x01, 0x80] {
            let mut bad = pack.clone();
            bad[at] ^= bit;
            // Resealed: the checksum passes, so the entries themselves are what is judged.
            let bad = super::build::reseal(bad);
            let path = super::spool_as(tmp.path(), "flipped.pack", &bad);
            match index(&path, &Options::default()) {
                Ok(indexed) => {
                    // A flip that still makes a valid pack (e.g. in a literal): it must decode.
                    let mut count = 0;
                    indexed
                        .for_each(|id, kind, data| {
                            assert_eq!(object_id(kind.into(), data), id);
                            count += 1;
                            Ok::<_, PackError>(())
                        })
                        .expect("an accepted pack decodes");
                    assert_eq!(count, indexed.len());
                    drop(indexed);
                    std::fs::remove_file(path.with_extension("idx")).expect("idx removed");
                }
                Err(err) => {
                    assert!(err.is_input_error(), "flip at {at}: {err:?}");
                    assert!(!path.with_extension("idx").exists());
                }
            }
        }
    }
}
