//! Pass 1 keeping what it inflates for pass 2 ([`Options::spill_bytes`]): the same `.idx` and the
//! same objects whatever the budget, entries past the budget inflated again from the pack, and none
//! inflated twice when everything fits.

use std::path::Path;
use std::sync::Mutex;

use super::build::object_id;
use super::pread::{git_idx, mixed_pack};
use super::{history_repo, pack_objects, spool_as};
use crate::pack::entries;
use crate::pack::read::INFLATES;
use crate::pack::{index_visiting, Kind, ObjectId, Options, PackError};

/// One resolving thread (the calling one, so [`INFLATES`] sees its work) and `budget`.
fn spilling(budget: u64) -> Options {
    Options {
        threads: 1,
        spill_bytes: budget,
        ..Options::default()
    }
}

/// Indexes `path` with `options`: the `.idx` bytes, every visited object sorted by id (with its
/// content's hash), and how many entries were inflated from the pack during resolution.
fn index_counting(
    path: &Path,
    options: &Options,
) -> (Vec<u8>, Vec<(ObjectId, Kind, ObjectId)>, usize) {
    let seen = Mutex::new(Vec::new());
    let before = INFLATES.with(std::cell::Cell::get);
    let indexed = index_visiting(path, options, |id, kind, data| {
        seen.lock()
            .expect("lock")
            .push((id, kind, object_id(kind.into(), data)));
        Ok::<_, PackError>(())
    })
    .expect("valid");
    let inflated = INFLATES.with(std::cell::Cell::get) - before;
    let idx = std::fs::read(indexed.idx_path().expect("idx")).expect("idx read");
    drop(indexed);
    std::fs::remove_file(path.with_extension("idx")).expect("idx removed");
    let mut seen = seen.into_inner().expect("lock");
    seen.sort_by_key(|(id, _, _)| *id);
    (idx, seen, inflated)
}

/// The inflated size of each entry, in pack order (what pass 1 spills).
fn entry_sizes(path: &Path) -> Vec<u64> {
    let options = Options::default();
    let mut entries = entries::open(path, &options, std::time::Instant::now(), false, None)
        .expect("opens")
        .expect("has entries");
    let sizes = entries
        .by_ref()
        .map(|e| e.expect("valid entry").decompressed_size)
        .collect();
    assert!(entries.take_error().is_none());
    sizes
}

/// Spooled packs of git's history with offset-deltas, with ref-deltas, and of both kinds (some
/// ref-deltas against later entries), by file name.
pub(super) fn delta_packs() -> (tempfile::TempDir, Vec<(&'static str, std::path::PathBuf)>) {
    let (tmp, repo) = history_repo(12, 600);
    let ofs = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let refs = pack_objects(&repo, "", &["--all"]);
    let (mixed, _) = mixed_pack();
    let packs = [("ofs.pack", ofs), ("ref.pack", refs), ("mixed.pack", mixed)]
        .into_iter()
        .map(|(name, bytes)| (name, spool_as(tmp.path(), name, &bytes)))
        .collect();
    (tmp, packs)
}

#[test]
fn every_budget_gives_gits_idx_and_the_same_objects() {
    let (_tmp, packs) = delta_packs();
    for (name, path) in packs {
        let git = git_idx(&path, "2");
        let sizes = entry_sizes(&path);
        let total: u64 = sizes.iter().sum();
        let half: u64 = sizes.iter().take(sizes.len() / 2).sum();
        let (_, without, all_inflated) = index_counting(&path, &spilling(0));
        assert_eq!(
            all_inflated,
            sizes.len(),
            "{name}: no spill, every entry inflated in pass 2"
        );
        for (budget, inflated) in [
            (1, sizes.len() - usize::from(sizes.first() == Some(&0))),
            (half, sizes.len() - sizes.len() / 2),
            (total, 0),
            (Options::default().spill_bytes, 0),
        ] {
            let (idx, seen, count) = index_counting(&path, &spilling(budget));
            assert!(idx == git, "{name}, budget {budget}: the .idx is git's");
            assert_eq!(seen, without, "{name}, budget {budget}: the same objects");
            assert!(seen.iter().all(|(id, _, hashed)| id == hashed));
            assert_eq!(
                count, inflated,
                "{name}, budget {budget}: entries inflated again"
            );
        }
    }
}

#[test]
fn the_spill_holds_a_prefix_of_whole_entries() {
    let (tmp, repo) = history_repo(6, 300);
    let path = spool_as(tmp.path(), "p.pack", &pack_objects(&repo, "", &["--all"]));
    let sizes = entry_sizes(&path);
    assert!(sizes.len() > 4);
    // A budget one byte short of the first three entries: two fit, the third stops the spill even
    // though later, smaller entries would still fit.
    let budget = sizes.iter().take(3).sum::<u64>() - 1;
    let options = Options::default();
    let mut entries = entries::open(&path, &options, std::time::Instant::now(), false, None)
        .expect("opens")
        .expect("has entries");
    entries.spill_into(tmp.path(), budget);
    let mut count = 0;
    for entry in entries.by_ref() {
        entry.expect("valid entry");
        count += 1;
    }
    assert_eq!(count, sizes.len());
    let spill = entries.take_spill().expect("spilled");
    assert_eq!(spill.entries(), 2);
    let mut out = Vec::new();
    for (i, size) in sizes.iter().enumerate().take(2) {
        assert!(spill.read(i as u32, *size, &mut out), "entry {i} is held");
        assert_eq!(out.len() as u64, *size);
    }
    assert!(!spill.read(2, sizes[2], &mut out), "entry 2 is not");
    // Nothing is left in the folder: the spill file has no name.
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        names.iter().all(|n| n == "p.pack" || n == "repo"),
        "{names:?}"
    );
}
