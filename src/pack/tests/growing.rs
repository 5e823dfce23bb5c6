//! [`index_growing`]: packs fed to the spool file from another thread, in random small chunks with
//! pauses, must index exactly as [`index`] indexes the complete file, and be refused with the same
//! error; a failing or absent writer must not leave the reader hanging.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::build::{self, copy_from_start, delta, insert, RawPack, BLOB};
use super::malformed::small_pack;
use super::pread::mixed_pack;
use super::seeds::named_seeds;
use super::{history_repo, pack_objects, spool};
use crate::pack::{index_growing, Growing, IndexedPack, Kind, ObjectId, Options, PackError};

/// A small deterministic generator (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// How a feeder writes.
#[derive(Clone, Copy)]
struct Feed {
    seed: u64,
    /// Chunks are 1..=max_chunk bytes.
    max_chunk: u64,
    /// Each chunk is followed by a pause of up to this long (none for about half of them).
    max_pause: Duration,
    /// Stop after this many bytes and call `fail` instead of `finish`.
    fail_at: Option<usize>,
}

impl Feed {
    fn quick(seed: u64) -> Self {
        Feed {
            seed,
            max_chunk: 4096,
            max_pause: Duration::from_micros(300),
            fail_at: None,
        }
    }
}

/// Creates `<dir>/<name>` empty and writes `bytes` to it from another thread as `feed` says,
/// announcing every write to the returned [`Growing`].
fn start_feeding(
    dir: &Path,
    name: &str,
    bytes: Vec<u8>,
    feed: Feed,
) -> (PathBuf, Growing, JoinHandle<()>) {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).expect("spool created");
    let growing = Growing::new();
    let writer = growing.clone();
    let handle = std::thread::spawn(move || {
        let mut rng = Rng(feed.seed | 1);
        let end = feed.fail_at.unwrap_or(bytes.len()).min(bytes.len());
        let mut at = 0;
        while at < end {
            let len = (1 + rng.below(feed.max_chunk)) as usize;
            let chunk = &bytes[at..(at + len).min(end)];
            file.write_all(chunk).expect("written");
            at += chunk.len();
            writer.advance(at as u64);
            if rng.below(2) == 0 {
                let micros = feed.max_pause.as_micros() as u64;
                std::thread::sleep(Duration::from_micros(rng.below(micros + 1)));
            }
        }
        if feed.fail_at.is_some() {
            writer.fail();
        } else {
            writer.finish();
        }
    });
    (path, growing, handle)
}

/// Indexes `bytes` fed as `feed` says, collecting the visited ids; the writer is joined.
fn index_fed(
    bytes: &[u8],
    options: &Options,
    feed: Feed,
) -> (
    tempfile::TempDir,
    Result<IndexedPack, PackError>,
    Vec<ObjectId>,
) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (path, growing, writer) = start_feeding(tmp.path(), "fed.pack", bytes.to_vec(), feed);
    let visited = Mutex::new(Vec::new());
    let result = index_growing(&path, &growing, options, |id, _, _| {
        visited.lock().expect("lock").push(id);
        Ok::<_, PackError>(())
    });
    let visited = visited.into_inner().expect("lock");
    writer.join().expect("writer thread");
    if result.is_err() {
        assert!(
            !path.with_extension("idx").exists(),
            "no idx is left behind after {result:?}"
        );
    }
    (tmp, result, visited)
}

/// Indexes `bytes` fed in random chunks and as a complete file, and asserts the same outcome: the
/// same `.idx`, byte for byte, the same visited objects, or the same error.
pub(super) fn assert_same_as_index(name: &str, bytes: &[u8], options: &Options, seed: u64) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = spool(tmp.path(), bytes);
    let expected_visits = Mutex::new(Vec::new());
    let expected = crate::pack::index_visiting(&path, options, |id, _, _| {
        expected_visits.lock().expect("lock").push(id);
        Ok::<_, PackError>(())
    });
    let mut expected_visits = expected_visits.into_inner().expect("lock");
    let (_fed_tmp, fed, mut visits) = index_fed(bytes, options, Feed::quick(seed));
    match (expected, fed) {
        (Ok(expected), Ok(fed)) => {
            assert_eq!(fed.len(), expected.len(), "{name}");
            assert_eq!(fed.checksum(), expected.checksum(), "{name}");
            match (expected.idx_path(), fed.idx_path()) {
                (Some(a), Some(b)) => assert!(
                    std::fs::read(a).expect("idx") == std::fs::read(b).expect("idx"),
                    "{name}: the .idx differs"
                ),
                (None, None) => {}
                other => panic!("{name}: {other:?}"),
            }
            expected_visits.sort();
            visits.sort();
            assert_eq!(visits, expected_visits, "{name}: visited objects");
        }
        (Err(expected), Err(fed)) => {
            assert_eq!(
                format!("{fed:?}"),
                format!("{expected:?}"),
                "{name}: a fed pack gets the error of the complete file"
            );
        }
        (expected, fed) => panic!(
            "{name}: index gave {:?}, index_growing gave {:?}",
            expected.map(|p| p.len()),
            fed.map(|p| p.len())
        ),
    }
}

/// A pack of several read buffers' worth (64 KiB each): incompressible blobs, each with a delta.
fn big_pack() -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut pack = RawPack::default();
    for i in 0..40u64 {
        let data: Vec<u8> = (0..6000).map(|_| rng.below(256) as u8).collect();
        let base = pack.object(BLOB, &data);
        let mut instructions = copy_from_start(5000);
        instructions.extend(insert(format!("delta {i}").as_bytes()));
        let result = 5000 + format!("delta {i}").len() as u64;
        pack.ofs_delta(base, &delta(data.len() as u64, result, &instructions));
    }
    let bytes = pack.finish();
    assert!(bytes.len() > 3 * (64 << 10), "{}", bytes.len());
    bytes
}

#[test]
fn packs_fed_in_random_chunks_index_byte_for_byte_as_the_complete_file() {
    let (_tmp, repo) = history_repo(20, 1500);
    let ofs = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let refs = pack_objects(&repo, "", &["--all"]);
    for seed in [1, 2, 3] {
        assert_same_as_index("git ofs-deltas", &ofs, &Options::default(), seed);
    }
    assert_same_as_index("git ref-deltas", &refs, &Options::default(), 4);
    assert_same_as_index("big", &big_pack(), &Options::default(), 8);
    assert_same_as_index("mixed deltas", &mixed_pack().0, &Options::default(), 5);
    assert_same_as_index(
        "no objects",
        &RawPack::default().finish(),
        &Options::default(),
        6,
    );
    // One byte at a time, with the writer pausing between most of them.
    let feed = Feed {
        seed: 7,
        max_chunk: 1,
        max_pause: Duration::from_micros(50),
        fail_at: None,
    };
    let (_tmp, fed, visited) = index_fed(&small_pack(), &Options::default(), feed);
    assert_eq!(fed.expect("valid").len(), 4);
    assert_eq!(visited.len(), 4);
}

#[test]
fn a_slowly_fed_pack_is_still_indexed_correctly() {
    let (_tmp, repo) = history_repo(6, 300);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let feed = Feed {
        seed: 11,
        max_chunk: (pack.len() / 20) as u64,
        max_pause: Duration::from_millis(40),
        fail_at: None,
    };
    let started = Instant::now();
    let (_tmp, fed, visited) = index_fed(&pack, &Options::default(), feed);
    let fed = fed.expect("valid");
    assert!(
        started.elapsed() > Duration::from_millis(100),
        "the feed was slow"
    );
    let git_ids = super::rev_list_objects(&repo, &["--all"]);
    assert_eq!(fed.ids().collect::<Vec<_>>(), git_ids);
    let mut visited = visited;
    visited.sort();
    assert_eq!(visited, git_ids, "every object is visited once");
    // The pair is a pack git reads.
    let mut buf = Vec::new();
    let (kind, data) = super::cat_file(&repo, &git_ids[0]);
    assert_eq!(
        fed.find(&git_ids[0], &mut buf).expect("decodes"),
        Some(kind)
    );
    assert_eq!(buf, data);
}

/// Corrupt, truncated, hostile and over-limit packs.
pub(super) fn refused_packs() -> Vec<(String, Vec<u8>, Options)> {
    let defaults = Options::default();
    let mut cases: Vec<(String, Vec<u8>, Options)> = named_seeds()
        .into_iter()
        .map(|(name, bytes)| (name.to_owned(), bytes, defaults.clone()))
        .collect();
    let small = small_pack();
    let len = small.len();
    for cut in super::malformed::cuts(len) {
        cases.push((
            format!("cut at {cut}"),
            small[..cut].to_vec(),
            defaults.clone(),
        ));
    }
    for at in (0..len).step_by(7) {
        let mut bad = small.clone();
        bad[at] ^= 0x40;
        cases.push((format!("flip at {at}"), bad, defaults.clone()));
    }
    cases.push(("garbage".into(), b"GARBAGE".to_vec(), defaults.clone()));
    let mut trailing = small.clone();
    trailing.extend_from_slice(b"extra");
    cases.push(("trailing bytes".into(), trailing.clone(), defaults.clone()));
    let mut one = RawPack::default();
    one.object(BLOB, b"one");
    cases.push((
        "count exceeds data".into(),
        one.finish_with_count(2),
        defaults.clone(),
    ));
    cases.push((
        "empty with a count".into(),
        RawPack::default().finish_with_count(1),
        defaults.clone(),
    ));
    let mut many = RawPack::default();
    for i in 0..5 {
        many.object(BLOB, format!("blob {i}").as_bytes());
    }
    cases.push((
        "six announced, five present".into(),
        many.finish_with_count(6),
        defaults.clone(),
    ));
    let mut huge_count = small.clone();
    huge_count[8..12].copy_from_slice(&900_000u32.to_be_bytes());
    cases.push((
        "huge count".into(),
        build::reseal(huge_count),
        defaults.clone(),
    ));
    for max_pack_bytes in [10, len as u64 / 2, len as u64 - 1, len as u64 + 2] {
        let options = Options {
            max_pack_bytes,
            ..Options::default()
        };
        cases.push((
            format!("pack limit {max_pack_bytes}"),
            small.clone(),
            options.clone(),
        ));
        cases.push((
            format!("trailing, pack limit {max_pack_bytes}"),
            trailing.clone(),
            options.clone(),
        ));
        cases.push((
            format!("cut, pack limit {max_pack_bytes}"),
            small[..len / 2].to_vec(),
            options.clone(),
        ));
        let mut bad = small.clone();
        bad[0] = b'X';
        cases.push((
            format!("bad signature, pack limit {max_pack_bytes}"),
            bad,
            options,
        ));
    }
    cases.push((
        "object limit".into(),
        small.clone(),
        Options {
            max_objects: 3,
            ..Options::default()
        },
    ));
    cases.push((
        "object size limit".into(),
        small.clone(),
        Options {
            max_object_bytes: 100,
            ..Options::default()
        },
    ));
    cases.push((
        "total limit".into(),
        small.clone(),
        Options {
            max_total_bytes: 1000,
            ..Options::default()
        },
    ));
    cases.push((
        "depth limit".into(),
        small,
        Options {
            max_delta_depth: 0,
            ..Options::default()
        },
    ));
    cases
}

#[test]
fn refused_packs_fed_in_random_chunks_get_the_error_of_the_complete_file() {
    let cases = refused_packs();
    for (i, (name, bytes, options)) in cases.iter().enumerate() {
        assert_same_as_index(name, bytes, options, i as u64 + 100);
    }
}

#[test]
fn a_pack_over_the_size_limit_is_refused_before_it_is_all_read() {
    let pack = big_pack();
    let options = Options {
        max_pack_bytes: 16 << 10,
        ..Options::default()
    };
    // The writer fails half-way (as the gateway's spooling would at its own limit): the reader,
    // which saw more than the limit announced, reports the limit, not the failure.
    let feed = Feed {
        fail_at: Some(pack.len() / 2),
        ..Feed::quick(21)
    };
    let (_tmp, fed, visited) = index_fed(&pack, &options, feed);
    match fed.map(|p| p.len()) {
        Err(PackError::PackTooLarge { size, limit }) => {
            assert_eq!(limit, 16 << 10);
            assert!(size > limit && size <= pack.len() as u64 / 2, "{size}");
        }
        other => panic!("expected PackTooLarge, got {other:?}"),
    }
    assert!(visited.is_empty());
}

#[test]
fn a_failing_writer_stops_the_reader_with_an_error_without_hanging() {
    let (_tmp, repo) = history_repo(6, 300);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    for fail_at in [
        0,
        5,
        12,
        pack.len() / 2,
        pack.len() - 20,
        pack.len() - 1,
        pack.len(),
    ] {
        let feed = Feed {
            fail_at: Some(fail_at),
            ..Feed::quick(fail_at as u64)
        };
        let started = Instant::now();
        let (_tmp, fed, _) = index_fed(&pack, &Options::default(), feed);
        match fed.map(|p| p.len()) {
            Err(PackError::Io { .. }) => {}
            other => panic!("writer failed at {fail_at}: expected Io, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    }
}

#[test]
fn a_writer_that_never_ends_runs_into_the_time_limit() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("stalled.pack");
    let pack = small_pack();
    std::fs::write(&path, &pack[..pack.len() / 2]).expect("half written");
    let growing = Growing::new();
    growing.advance(pack.len() as u64 / 2);
    let options = Options {
        max_duration: Duration::from_millis(200),
        ..Options::default()
    };
    let started = Instant::now();
    let err = index_growing(&path, &growing, &options, |_, _, _| Ok::<_, PackError>(()))
        .expect_err("the writer never finishes");
    assert!(
        matches!(err, PackError::TimeLimitExceeded { .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_refused_pack_never_makes_the_writer_wait() {
    // The reader stops at the first bytes; the writer goes on writing megabytes and finishes.
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut bytes = b"GARBAGE!".to_vec();
    bytes.resize(8 << 20, 7);
    let feed = Feed {
        max_chunk: 64 << 10,
        max_pause: Duration::ZERO,
        ..Feed::quick(31)
    };
    let (path, growing, writer) = start_feeding(tmp.path(), "garbage.pack", bytes, feed);
    let err = index_growing(&path, &growing, &Options::default(), |_, _, _| {
        Ok::<_, PackError>(())
    })
    .expect_err("not a pack");
    assert!(matches!(err, PackError::BadSignature), "{err:?}");
    writer.join().expect("the writer finished");
    assert_eq!(growing.written(), 8 << 20);
}

#[test]
fn a_writer_finishing_without_bytes_is_a_push_without_objects() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (path, growing, writer) =
        start_feeding(tmp.path(), "none.pack", Vec::new(), Feed::quick(41));
    let indexed =
        index_growing::<PackError, _>(&path, &growing, &Options::default(), |_, kind: Kind, _| {
            panic!("no object expected, got a {kind}")
        })
        .expect("an empty pack is fine");
    writer.join().expect("writer");
    assert!(indexed.is_empty());
    assert!(indexed.idx_path().is_none());
}

#[test]
fn bytes_announced_but_not_in_the_file_are_an_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("short.pack");
    let pack = small_pack();
    std::fs::write(&path, &pack[..pack.len() / 2]).expect("half written");
    let growing = Growing::new();
    growing.advance(pack.len() as u64);
    growing.finish();
    let err = index_growing(&path, &growing, &Options::default(), |_, _, _| {
        Ok::<_, PackError>(())
    })
    .expect_err("the file is shorter than announced");
    assert!(matches!(err, PackError::Io { .. }), "{err:?}");
    assert!(!err.is_input_error());
}
