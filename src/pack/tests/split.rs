//! The first pass reading a pack's last half on a second thread ([`Options::split_from_bytes`]):
//! the same entries, `.idx`, objects and errors as one thread reading it all.

use std::path::Path;
use std::time::Instant;

use super::build::{copy_from_start, delta, RawPack, BLOB};
use super::growing::refused_packs;
use super::pread::git_idx;
use super::{history_repo, pack_objects, spool_as};
use crate::pack::entries;
use crate::pack::{index, Options};

fn split(on: bool) -> Options {
    Options {
        split_from_bytes: if on { 1 } else { u64::MAX },
        ..Options::default()
    }
}

/// Every entry of pass 1 (offset, header, sizes, CRC-32) and how many a second thread read.
fn pass_one(path: &Path, options: &Options) -> (Vec<String>, usize) {
    let mut entries = entries::open(path, options, Instant::now(), false, None)
        .expect("opens")
        .expect("has entries");
    let mut seen = Vec::new();
    for entry in entries.by_ref() {
        let e = entry.expect("valid entry");
        seen.push(format!(
            "{} {:?} {} {} {:?} {:?}",
            e.pack_offset, e.header, e.header_size, e.decompressed_size, e.crc32, e.trailer
        ));
    }
    assert!(entries.take_error().is_none());
    (seen, entries.taken_over())
}

#[test]
fn the_tail_read_on_another_thread_gives_the_same_entries_and_idx() {
    let (_tmp, packs) = super::spill::delta_packs();
    for (name, path) in packs {
        let (alone, none) = pass_one(&path, &split(false));
        assert_eq!(none, 0);
        let (halves, taken) = pass_one(&path, &split(true));
        assert_eq!(halves, alone, "{name}: the same entries");
        assert!(
            taken > 0 && taken < alone.len(),
            "{name}: {taken} of {} taken over",
            alone.len()
        );
        let git = git_idx(&path, "2");
        let indexed = index(&path, &split(true)).expect("valid");
        let ours = std::fs::read(indexed.idx_path().expect("idx")).expect("idx read");
        assert!(ours == git, "{name}: the .idx is git's");
    }
}

#[test]
fn errors_are_the_same_when_the_tail_is_read_on_another_thread() {
    let mut cases = refused_packs();
    // Faults in the last half of a bigger pack: where the second thread reads.
    let (_tmp, repo) = history_repo(8, 400);
    let good = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let len = good.len();
    for at in (len / 2..len).step_by((len / 40).max(1)) {
        let mut bad = good.clone();
        bad[at] ^= 0x21;
        cases.push((format!("history flip at {at}"), bad, Options::default()));
    }
    cases.push((
        "history cut".into(),
        good[..len - 30].to_vec(),
        Options::default(),
    ));
    // A delta in the last half whose base is in the first half but not an entry start.
    let mut wrong_base = RawPack::default();
    let mut at = 0;
    for i in 0..20 {
        let base: Vec<u8> = (0..100)
            .flat_map(|j| format!("b {i} {j}\n").into_bytes())
            .collect();
        at = wrong_base.object(BLOB, &base);
    }
    for i in 0..20 {
        let data: Vec<u8> = (0..100)
            .flat_map(|j| format!("c {i} {j}\n").into_bytes())
            .collect();
        wrong_base.object(BLOB, &data);
    }
    wrong_base.ofs_delta(at + 1, &delta(10, 10, &copy_from_start(10)));
    cases.push((
        "base not an entry".into(),
        wrong_base.finish(),
        Options::default(),
    ));

    let tmp = tempfile::tempdir().expect("temp dir");
    for (i, (name, bytes, options)) in cases.iter().enumerate() {
        let path = spool_as(tmp.path(), &format!("case-{i}.pack"), bytes);
        let alone = index(
            &path,
            &Options {
                split_from_bytes: u64::MAX,
                ..options.clone()
            },
        );
        let halves = index(
            &path,
            &Options {
                split_from_bytes: 1,
                ..options.clone()
            },
        );
        match (alone, halves) {
            (Err(alone), Err(halves)) => {
                assert_eq!(format!("{halves:?}"), format!("{alone:?}"), "{name}");
            }
            (Ok(alone), Ok(halves)) => assert_eq!(alone.len(), halves.len(), "{name}"),
            (alone, halves) => panic!(
                "{name}: alone {:?}, split {:?}",
                alone.map(|p| p.len()),
                halves.map(|p| p.len())
            ),
        }
    }
}

#[test]
fn the_search_for_a_tail_start_inflates_at_most_its_budget() {
    // Ten blobs of 64 KiB of text: each candidate start checked costs inflating up to two.
    let mut pack = RawPack::default();
    let offsets: Vec<u64> = (0..10)
        .map(|i| {
            let text: Vec<u8> = (0..4000)
                .flat_map(|j| format!("blob {i} line {j:05}\n").into_bytes())
                .take(64 << 10)
                .collect();
            pack.object(BLOB, &text)
        })
        .collect();
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = spool_as(tmp.path(), "text.pack", &pack.finish());
    let from = offsets[4] - 3;
    let options = Options::default();
    assert_eq!(
        entries::tail_start(&path, &options, from, 1 << 20),
        Some(offsets[4]),
        "with room for two entries, the next entry start is found"
    );
    assert_eq!(
        entries::tail_start(&path, &options, from, 100 << 10),
        None,
        "two entries of 64 KiB do not fit in 100 KiB: no start"
    );
    assert_eq!(entries::tail_start(&path, &options, from, 1 << 10), None);
}

/// Whether the tail thread starts depends on when the writer finishes; either way the outcome is the
/// complete file's.
#[test]
fn with_the_split_on_a_pack_read_while_it_is_fed_indexes_as_the_whole_file() {
    let on = split(true);
    let (_tmp, packs) = super::spill::delta_packs();
    for (i, (name, path)) in packs.iter().enumerate() {
        let bytes = std::fs::read(path).expect("pack");
        super::growing::assert_same_as_index(name, &bytes, &on, 40 + i as u64);
    }
    for (i, (name, bytes, options)) in refused_packs().iter().enumerate() {
        let options = Options {
            split_from_bytes: 1,
            ..options.clone()
        };
        super::growing::assert_same_as_index(name, bytes, &options, 200 + i as u64);
    }
}
