#![no_main]
//! `pack_stream`: arbitrary bytes as a spooled push pack, indexed with small limits.
//!
//! Any input may be refused with a `PackError`; none may panic, hang or allocate past the limits.
//! A pack that is accepted must decode in full, and rebuilding all its objects with `write_subset`
//! must give a pack that is accepted again with the same ids.
//!
//! Seeds: `GITGATE_PACK_SEEDS=fuzz/corpus/pack_stream cargo test pack::tests::seeds` writes the
//! packs of the reproducer tests in `src/pack/tests/`.

use std::time::Duration;

use gitgate::pack::{index, write_subset, Options, PackError};

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    // libFuzzer runs one input at a time per process: a per-process directory is enough.
    let dir = std::env::temp_dir().join(format!("gitgate-fuzz-pack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("input.pack");
    std::fs::write(&path, data).expect("temp file");
    let options = Options {
        max_pack_bytes: 1 << 20,
        max_objects: 1_000,
        max_object_bytes: 1 << 20,
        max_total_bytes: 8 << 20,
        max_delta_depth: 64,
        max_duration: Duration::from_secs(10),
        ..Options::default()
    };
    let Ok(indexed) = index(&path, &options) else {
        return;
    };

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
        assert!(indexed.find(&id, &mut buf).expect("an accepted pack decodes").is_some());
    }

    let mut rebuilt = Vec::new();
    write_subset(&indexed, indexed.ids(), &mut rebuilt).expect("an accepted pack rebuilds");
    let rebuilt_path = dir.join("rebuilt.pack");
    std::fs::write(&rebuilt_path, &rebuilt).expect("temp file");
    // Undeltified objects may take more room than the deltas they came from.
    let relaxed = Options {
        max_pack_bytes: u64::MAX,
        ..options
    };
    let again = index(&rebuilt_path, &relaxed).expect("a rebuilt pack is accepted");
    assert!(again.ids().eq(indexed.ids()), "the rebuilt pack holds the same objects");
}
