//! Seeds for the `pack_stream` fuzz target: the packs of the reproducer tests, by name.
//!
//! `GITGATE_PACK_SEEDS=<dir> cargo test pack::tests::seeds` writes them to `<dir>` (e.g.
//! `fuzz/corpus/pack_stream`). Without the variable the test still runs every seed through the
//! fuzz target's property: refused cleanly, or accepted, decodable and rebuildable.

use super::build::{self, copy_from_start, delta, object_id, RawPack, BLOB, COMMIT, TREE};
use super::malformed::small_pack;
use super::{history_repo, pack_objects, spool, spool_as};
use crate::pack::{index, index_with_bases, write_subset, Kind, ObjectId, Options, PackError};

pub(super) fn named_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let (_tmp, repo) = history_repo(4, 60);
    let mut seeds = vec![
        (
            "git-ofs-deltas",
            pack_objects(&repo, "", &["--all", "--delta-base-offset"]),
        ),
        ("git-ref-deltas", pack_objects(&repo, "", &["--all"])),
        (
            "git-thin",
            pack_objects(&repo, "main\n^main~2\n", &["--thin", "--delta-base-offset"]),
        ),
        ("small", small_pack()),
        ("empty-pack", RawPack::default().finish()),
    ];
    let small = small_pack();
    seeds.push(("truncated-half", small[..small.len() / 2].to_vec()));
    let mut bad_version = small.clone();
    bad_version[7] = 4;
    seeds.push(("version-4", build::reseal(bad_version)));
    let mut one = RawPack::default();
    one.object(BLOB, b"one");
    seeds.push(("count-exceeds-data", one.finish_with_count(2)));
    let mut bomb = RawPack::default();
    bomb.entry(BLOB, 10 << 30, &[], &build::zlib(&[0; 4096]));
    seeds.push(("zlib-bomb-declared", bomb.finish()));
    let mut longer = RawPack::default();
    longer.entry(BLOB, 100, &[], &build::zlib(&[0; 4096]));
    seeds.push(("zlib-longer-than-declared", longer.finish()));
    let mut delta_bomb = RawPack::default();
    let base = delta_bomb.object(BLOB, b"abc");
    delta_bomb.ofs_delta(base, &delta(3, 10 << 30, &copy_from_start(3)));
    seeds.push(("delta-bomb", delta_bomb.finish()));
    let mut bad_delta = RawPack::default();
    let base = bad_delta.object(BLOB, b"abc");
    bad_delta.ofs_delta(base, &delta(3, 50, &copy_from_start(50)));
    seeds.push(("delta-copy-out-of-base", bad_delta.finish()));
    let mut thin = RawPack::default();
    thin.ref_delta(
        &object_id(gix_object::Kind::Blob, b"absent"),
        &delta(6, 3, &copy_from_start(3)),
    );
    seeds.push(("ref-delta-missing-base", thin.finish()));
    // A thin pack whose base the fuzz target's lookup knows.
    let mut known = RawPack::default();
    let base_id = object_id(gix_object::Kind::Blob, b"fuzz base object\n");
    known.ref_delta(&base_id, &delta(17, 4, &copy_from_start(4)));
    seeds.push(("thin-known-base", known.finish()));
    let mut commit = RawPack::default();
    commit.object(COMMIT, b"this is not a commit\n");
    seeds.push(("invalid-commit", commit.finish()));
    let mut tree = RawPack::default();
    let mut entries = b"100644 b\0".to_vec();
    entries.extend_from_slice(&[1; 20]);
    entries.extend_from_slice(b"100644 a\0");
    entries.extend_from_slice(&[2; 20]);
    tree.object(TREE, &entries);
    seeds.push(("unsorted-tree", tree.finish()));
    let mut twice = RawPack::default();
    twice.object(BLOB, b"twice");
    twice.object(BLOB, b"twice");
    seeds.push(("duplicate-object", twice.finish()));
    seeds
}

/// The base the fuzz target's lookup knows (besides the empty tree).
fn known_base(id: &ObjectId) -> Option<(Kind, Vec<u8>)> {
    let data = b"fuzz base object\n";
    (object_id(gix_object::Kind::Blob, data) == *id).then(|| (Kind::Blob, data.to_vec()))
}

#[test]
fn seeds() {
    let seeds = named_seeds();
    if let Some(dir) = std::env::var_os("GITGATE_PACK_SEEDS") {
        std::fs::create_dir_all(&dir).expect("seed dir");
        for (name, bytes) in &seeds {
            std::fs::write(std::path::Path::new(&dir).join(name), bytes).expect("seed written");
        }
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut accepted = Vec::new();
    for (name, bytes) in &seeds {
        let path = spool(tmp.path(), bytes);
        let indexed = match index(&path, &Options::default()) {
            Ok(indexed) => indexed,
            Err(PackError::MissingBase { .. }) => {
                match index_with_bases(&path, &Options::default(), &known_base) {
                    Ok(indexed) => indexed,
                    Err(_) => continue,
                }
            }
            Err(_) => continue,
        };
        accepted.push(*name);
        let mut visited = 0;
        indexed
            .for_each(|_, _, _| {
                visited += 1;
                Ok::<_, PackError>(())
            })
            .expect("decodes");
        assert_eq!(visited, indexed.len(), "{name}");
        let mut rebuilt = Vec::new();
        write_subset(&indexed, indexed.ids(), &mut rebuilt).expect("rebuilds");
        let rebuilt = spool_as(tmp.path(), "rebuilt.pack", &rebuilt);
        let again = index(&rebuilt, &Options::default()).expect("rebuilt is valid");
        assert!(again.ids().eq(indexed.ids()), "{name}");
    }
    assert_eq!(
        accepted,
        [
            "git-ofs-deltas",
            "git-ref-deltas",
            "small",
            "empty-pack",
            "thin-known-base"
        ]
    );
}
