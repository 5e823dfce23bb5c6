//! Resolution on several threads ([`Options::threads`]): the same `.idx` as git's, every object
//! visited exactly once, ref-deltas resolved across threads, and the same errors as with one thread.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::build::{copy_from_start, delta, insert, object_id, RawPack, BLOB};
use super::growing::refused_packs;
use super::pread::mixed_pack;
use super::{cat_file, history_repo, pack_objects, spool, spool_as};
use crate::pack::{index, index_visiting, index_with_bases, Kind, ObjectId, Options, PackError};

fn with_threads(threads: usize) -> Options {
    Options {
        threads,
        // The test packs are small: several threads all the same.
        parallel_from_bytes: 0,
        ..Options::default()
    }
}

/// git's `.idx` for the pack at `pack` (version 2, git's default).
fn git_idx(pack: &Path) -> Vec<u8> {
    super::pread::git_idx(pack, "2")
}

/// Every visit of `index_visiting` with `threads`: (id, kind, content hash) and the visiting threads.
fn visits(
    path: &Path,
    threads: usize,
    pause: Duration,
) -> (Vec<(ObjectId, Kind, ObjectId)>, usize) {
    let seen = Mutex::new(Vec::new());
    let workers = Mutex::new(HashSet::new());
    let indexed = index_visiting(path, &with_threads(threads), |id, kind, data| {
        let hashed = object_id(kind.into(), data);
        seen.lock().expect("lock").push((id, kind, hashed));
        workers
            .lock()
            .expect("lock")
            .insert(std::thread::current().id());
        std::thread::sleep(pause);
        Ok::<_, PackError>(())
    })
    .expect("valid");
    let mut seen = seen.into_inner().expect("lock");
    assert_eq!(seen.len(), indexed.len(), "one visit per object");
    seen.sort_by_key(|(id, _, _)| *id);
    (seen, workers.into_inner().expect("lock").len())
}

#[test]
fn idx_is_gits_byte_for_byte_with_one_and_four_threads() {
    let (tmp, repo) = history_repo(30, 2000);
    for (name, flags) in [
        ("ofs.pack", &["--all", "--delta-base-offset"][..]),
        ("ref.pack", &["--all"][..]),
    ] {
        let pack = pack_objects(&repo, "", flags);
        let path = spool_as(tmp.path(), name, &pack);
        let git = git_idx(&path);
        for threads in [1, 4] {
            let indexed = index(&path, &with_threads(threads)).expect("valid");
            let ours = std::fs::read(indexed.idx_path().expect("idx")).expect("ours");
            assert!(ours == git, "{name}, {threads} threads: the .idx is git's");
            drop(indexed);
            std::fs::remove_file(path.with_extension("idx")).expect("removed");
        }
    }
    let (bytes, _) = mixed_pack();
    let path = spool_as(tmp.path(), "mixed.pack", &bytes);
    let git = git_idx(&path);
    let indexed = index(&path, &with_threads(4)).expect("valid");
    let ours = std::fs::read(indexed.idx_path().expect("idx")).expect("ours");
    assert!(ours == git, "mixed deltas, 4 threads: the .idx is git's");
}

#[test]
fn every_object_is_visited_exactly_once_by_several_threads() {
    let (tmp, repo) = history_repo(20, 800);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let path = spool(tmp.path(), &pack);
    let (one, _) = visits(&path, 1, Duration::ZERO);
    // A short pause per visit: no thread can take every delta tree before the others start.
    let (four, workers) = visits(&path, 4, Duration::from_millis(1));
    assert!(workers > 1, "several threads visited ({workers})");
    assert_eq!(four, one, "the same visits, each once");
    assert!(four.iter().all(|(id, _, hashed)| id == hashed));
    let unique: HashSet<ObjectId> = four.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(unique.len(), four.len(), "no object twice");
    assert_eq!(
        four.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(),
        super::rev_list_objects(&repo, &["--all"])
    );
}

#[test]
fn ref_deltas_resolve_across_threads() {
    // Many trees of ref-deltas whose bases come after them, in other trees' way: whichever thread
    // resolves a base takes its waiting deltas.
    let mut pack = RawPack::default();
    let mut expected = HashMap::new();
    for i in 0..60u32 {
        let base: Vec<u8> = (0..400)
            .flat_map(|j| format!("base {i} line {j}\n").into_bytes())
            .collect();
        let base_id = object_id(gix_object::Kind::Blob, &base);
        let mut instructions = copy_from_start(100);
        instructions.extend(insert(format!("delta of {i}").as_bytes()));
        let result = [&base[..100], format!("delta of {i}").as_bytes()].concat();
        pack.ref_delta(
            &base_id,
            &delta(base.len() as u64, result.len() as u64, &instructions),
        );
        expected.insert(object_id(gix_object::Kind::Blob, &result), result);
        let at = pack.object(BLOB, &base);
        // An ofs-delta of the base too, so trees have more than one child.
        let mut more = copy_from_start(50);
        more.extend(insert(b"more"));
        let more_data = [&base[..50], b"more"].concat();
        pack.ofs_delta(at, &delta(base.len() as u64, 54, &more));
        expected.insert(object_id(gix_object::Kind::Blob, &more_data), more_data);
        expected.insert(base_id, base);
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = spool(tmp.path(), &pack.finish());
    let git = git_idx(&path);
    let seen = Mutex::new(HashMap::new());
    let indexed = index_visiting(&path, &with_threads(4), |id, _, data| {
        let before = seen.lock().expect("lock").insert(id, data.to_vec());
        assert!(before.is_none(), "{id} once");
        Ok::<_, PackError>(())
    })
    .expect("valid");
    assert_eq!(seen.into_inner().expect("lock"), expected);
    let ours = std::fs::read(indexed.idx_path().expect("idx")).expect("ours");
    assert!(ours == git, "the .idx is git's");

    // A pack of git's ref-deltas, and a thin pack completed from a lookup.
    let (tmp, repo) = history_repo(10, 800);
    let refs = pack_objects(&repo, "", &["--all"]);
    let path = spool_as(tmp.path(), "refs.pack", &refs);
    let git = git_idx(&path);
    let indexed = index(&path, &with_threads(4)).expect("valid");
    let ours = std::fs::read(indexed.idx_path().expect("idx")).expect("ours");
    assert!(ours == git, "git's ref-deltas: the .idx is git's");
    let thin = pack_objects(&repo, "main\n^main~3\n", &["--thin", "--delta-base-offset"]);
    let path = spool_as(tmp.path(), "thin.pack", &thin);
    let lookup = |id: &ObjectId| Some(cat_file(&repo, id));
    let indexed = index_with_bases(&path, &with_threads(4), &lookup).expect("completed");
    let completed = indexed.pack_path().to_owned();
    let idx = indexed.idx_path().expect("idx").to_owned();
    let ours = std::fs::read(&idx).expect("ours");
    assert!(
        ours == git_idx(&completed),
        "completed thin pack: the .idx is git's"
    );
    let mut buf = Vec::new();
    for id in indexed.ids() {
        let kind = indexed.find(&id, &mut buf).expect("decodes");
        assert_eq!(kind, Some(cat_file(&repo, &id).0));
    }
}

#[test]
fn errors_are_the_same_with_several_threads() {
    let mut cases = refused_packs();
    // Faults after many good delta trees, while other threads are busy with theirs.
    let good = |pack: &mut RawPack| {
        for i in 0..40 {
            let base: Vec<u8> = (0..200)
                .flat_map(|j| format!("good {i} {j}\n").into_bytes())
                .collect();
            let at = pack.object(BLOB, &base);
            pack.ofs_delta(at, &delta(base.len() as u64, 10, &copy_from_start(10)));
        }
    };
    let mut bad_delta = RawPack::default();
    good(&mut bad_delta);
    let at = bad_delta.object(BLOB, b"abc");
    bad_delta.ofs_delta(at, &delta(3, 50, &copy_from_start(50)));
    good(&mut bad_delta);
    cases.push((
        "late bad delta".into(),
        bad_delta.finish(),
        Options::default(),
    ));
    let mut twice = RawPack::default();
    good(&mut twice);
    twice.object(BLOB, b"twice");
    good(&mut twice);
    twice.object(BLOB, b"twice");
    cases.push(("late duplicate".into(), twice.finish(), Options::default()));
    let mut missing = RawPack::default();
    good(&mut missing);
    missing.ref_delta(
        &object_id(gix_object::Kind::Blob, b"absent"),
        &delta(6, 3, &copy_from_start(3)),
    );
    good(&mut missing);
    cases.push((
        "late missing base".into(),
        missing.finish(),
        Options::default(),
    ));
    let mut deep = RawPack::default();
    good(&mut deep);
    let mut at = deep.object(BLOB, b"0123456789");
    for _ in 0..5 {
        at = deep.ofs_delta(at, &delta(10, 10, &copy_from_start(10)));
    }
    good(&mut deep);
    let shallow = Options {
        max_delta_depth: 3,
        ..Options::default()
    };
    cases.push(("late deep chain".into(), deep.finish(), shallow));
    let small = super::malformed::small_pack();
    let no_time = Options {
        max_duration: Duration::ZERO,
        ..Options::default()
    };
    cases.push(("no time".into(), small, no_time));

    let tmp = tempfile::tempdir().expect("temp dir");
    for (i, (name, bytes, options)) in cases.iter().enumerate() {
        let path = spool_as(tmp.path(), &format!("case-{i}.pack"), bytes);
        let one = index(
            &path,
            &Options {
                threads: 1,
                ..options.clone()
            },
        );
        let four = index(
            &path,
            &Options {
                threads: 4,
                parallel_from_bytes: 0,
                ..options.clone()
            },
        );
        match (one, four) {
            (Err(one), Err(four)) => {
                assert_eq!(format!("{four:?}"), format!("{one:?}"), "{name}");
                assert!(!path.with_extension("idx").exists(), "{name}: no idx");
            }
            (Ok(one), Ok(four)) => assert_eq!(one.len(), four.len(), "{name}"),
            (one, four) => panic!(
                "{name}: 1 thread {:?}, 4 threads {:?}",
                one.map(|p| p.len()),
                four.map(|p| p.len())
            ),
        }
    }
}

#[test]
fn a_visitor_error_stops_every_thread_and_is_returned() {
    let (tmp, repo) = history_repo(20, 800);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let path = spool(tmp.path(), &pack);
    let total = index(&path, &with_threads(1)).expect("valid").len();
    std::fs::remove_file(path.with_extension("idx")).expect("removed");
    let seen = AtomicUsize::new(0);
    let result = index_visiting(&path, &with_threads(4), |_, _, _| {
        if seen.fetch_add(1, Ordering::Relaxed) == 5 {
            return Err(PackError::Internal {
                detail: "visitor says stop".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
        Ok(())
    });
    match result {
        Err(PackError::Internal { detail }) => assert_eq!(detail, "visitor says stop"),
        other => panic!(
            "expected the visitor's error, got {:?}",
            other.map(|p| p.len())
        ),
    }
    // The other threads stop at their next object: a few more visits (more only if the failing
    // thread is descheduled for long), far from the whole pack.
    let seen = seen.into_inner();
    assert!(total > 100, "{total} objects");
    assert!((6..=total / 2).contains(&seen), "{seen} of {total} visited");
    assert!(!path.with_extension("idx").exists());
}
