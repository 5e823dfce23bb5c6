#![no_main]
//! `pack_stream`: arbitrary bytes as a spooled push pack, indexed with small limits.
//!
//! Any input may be refused with a `PackError`; none may panic, hang or allocate past the limits.
//! Indexing with pass 1's last half on a second thread (`Options::split_from_bytes`) gives the same
//! ids or the same error.
//! A pack that is accepted must decode in full, and rebuilding all its objects with `write_subset`
//! must give a pack that is accepted again with the same ids. A thin pack is retried with a base
//! lookup that knows two objects (as a mirror would), which exercises the pack rewrite.
//!
//! Seeds: `GITGATE_PACK_SEEDS=fuzz/corpus/pack_stream cargo test pack::tests::seeds` writes the
//! packs of the reproducer tests in `src/pack/tests/`.

use std::path::Path;
use std::time::Duration;

use gitgate::pack::{
    index, index_with_bases, write_subset, IndexedPack, Kind, ObjectId, Options, PackError,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// Bases the lookup knows: the blob "fuzz base object\n" and the empty tree.
const KNOWN_BASES: [(&str, Kind, &[u8]); 2] = [
    (
        "c6ebb7e6a75a998d201091a62a14122b751ee31e",
        Kind::Blob,
        b"fuzz base object\n",
    ),
    ("4b825dc642cb6eb9a060e54bf8d69288fbee4904", Kind::Tree, b""),
];

fn known_base(id: &ObjectId) -> Option<(Kind, Vec<u8>)> {
    KNOWN_BASES
        .iter()
        .find(|(hex, _, _)| ObjectId::from_hex(hex.as_bytes()).ok().as_ref() == Some(id))
        .map(|(_, kind, data)| (*kind, data.to_vec()))
}

fn options() -> Options {
    Options {
        max_pack_bytes: 1 << 20,
        max_objects: 1_000,
        max_object_bytes: 1 << 20,
        max_total_bytes: 8 << 20,
        max_delta_depth: 64,
        max_duration: Duration::from_secs(10),
        ..Options::default()
    }
}

fn run(data: &[u8]) {
    // libFuzzer runs one input at a time per process: a per-process directory is enough.
    let dir = std::env::temp_dir().join(format!("gitgate-fuzz-pack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("input.pack");
    std::fs::write(&path, data).expect("temp file");
    let split = split_outcome(data, &dir);
    let whole = index(&path, &options());
    assert_eq!(
        split,
        outcome(&whole),
        "reading the last half on a second thread changes nothing"
    );
    match whole {
        Ok(indexed) => check_accepted(&indexed, &dir),
        Err(PackError::MissingBase { .. }) => {
            if let Ok(indexed) = index_with_bases(&path, &options(), &known_base) {
                check_accepted(&indexed, &dir);
            }
        }
        Err(_) => {}
    }
}

/// What indexing gave: the ids, or the error.
fn outcome(result: &Result<IndexedPack, PackError>) -> Result<Vec<ObjectId>, String> {
    match result {
        Ok(indexed) => Ok(indexed.ids().collect()),
        Err(err) => Err(format!("{err:?}")),
    }
}

/// The same input indexed with pass 1 reading the last half on a second thread from the first
/// entry on, and with nothing spilled: the same outcome whatever the threads did.
fn split_outcome(data: &[u8], dir: &Path) -> Result<Vec<ObjectId>, String> {
    let path = dir.join("split.pack");
    std::fs::write(&path, data).expect("temp file");
    let split = Options {
        split_from_bytes: 1,
        spill_bytes: 0,
        ..options()
    };
    outcome(&index(&path, &split))
}

/// An accepted pack decodes in full and rebuilds into a pack that is accepted with the same ids.
fn check_accepted(indexed: &IndexedPack, dir: &Path) {
    let mut visited = 0;
    indexed
        .for_each(|_, _, _| {
            visited += 1;
            Ok::<_, PackError>(())
        })
        .expect("an accepted pack decodes");
    assert_eq!(visited, indexed.len());
    let mut buf = Vec::new();
    for id in indexed.ids() {
        assert!(indexed
            .find(&id, &mut buf)
            .expect("an accepted pack decodes")
            .is_some());
    }

    let mut rebuilt = Vec::new();
    write_subset(indexed, indexed.ids(), &mut rebuilt).expect("an accepted pack rebuilds");
    let rebuilt_path = dir.join("rebuilt.pack");
    std::fs::write(&rebuilt_path, &rebuilt).expect("temp file");
    // Undeltified objects may take more room than the deltas they came from.
    let relaxed = Options {
        max_pack_bytes: u64::MAX,
        ..options()
    };
    let again = index(&rebuilt_path, &relaxed).expect("a rebuilt pack is accepted");
    assert!(
        again.ids().eq(indexed.ids()),
        "the rebuilt pack holds the same objects"
    );
}
