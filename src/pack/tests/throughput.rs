//! Pack-reading throughput on a ~100 MB pack with real deltas (ignored: it builds the repository
//! first, which takes a minute). Run with
//! `cargo test --release -- --ignored pack_throughput --nocapture`;
//! set `GITGATE_PACK_BENCH_REPO` to reuse a repository made by `fixtures/pack/big-history.sh`.

use std::path::PathBuf;
use std::time::Instant;

use super::{fixture, pack_objects, run_git, spool};
use crate::pack::{index, Options, PackError};

/// The benchmark repository: `GITGATE_PACK_BENCH_REPO`, or one made in `tmp` by
/// `fixtures/pack/big-history.sh`.
fn bench_repo(tmp: &std::path::Path) -> PathBuf {
    match std::env::var_os("GITGATE_PACK_BENCH_REPO") {
        Some(path) => PathBuf::from(path),
        None => {
            let repo = tmp.join("repo");
            fixture("big-history.sh", &[repo.to_str().expect("utf-8")]);
            repo
        }
    }
}

#[test]
#[ignore = "builds a ~100 MB repository; run explicitly for the benchmark"]
fn pack_throughput() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let repo = bench_repo(tmp.path());
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let path = spool(tmp.path(), &pack);
    let mb = pack.len() as f64 / 1e6;
    drop(pack);
    // Reset the peak resident set size (Linux >= 4.0) so it reflects indexing alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");

    // Pass 1 alone (headers, zlib framing, CRC-32, trailing SHA-1): on one thread, then with its
    // last half read on a second thread (the default).
    let pass_one = |options: &Options| {
        let started = Instant::now();
        let mut entries = crate::pack::entries::open(&path, options, started, false, None)
            .expect("valid")
            .expect("a pack");
        let count = entries.by_ref().filter(Result::is_ok).count();
        assert!(entries.take_error().is_none() && entries.trailer().is_some());
        (count, entries.taken_over(), started.elapsed().as_secs_f64())
    };
    let (_, _, pass1_one) = pass_one(&Options {
        split_from_bytes: u64::MAX,
        ..Options::default()
    });
    let (count, taken_over, pass1) = pass_one(&Options::default());

    // One resolving thread first, then the default (every core).
    let one = Options {
        threads: 1,
        ..Options::default()
    };
    let started = Instant::now();
    drop(index(&path, &one).expect("valid"));
    let indexing_one = started.elapsed().as_secs_f64();
    let threads = Options::default().threads;
    let started = Instant::now();
    let indexed = index(&path, &Options::default()).expect("valid");
    let indexing = started.elapsed().as_secs_f64();
    let index_memory = memory();

    let started = Instant::now();
    let mut inflated = 0u64;
    indexed
        .for_each(|_, _, data| {
            inflated += data.len() as u64;
            Ok::<_, PackError>(())
        })
        .expect("decodes");
    let visiting = started.elapsed().as_secs_f64();
    let visit_memory = memory();

    let started = Instant::now();
    let git_idx = tmp.path().join("git.idx");
    run_git(
        tmp.path(),
        &[
            "index-pack",
            "--threads=1",
            "-o",
            git_idx.to_str().expect("utf-8"),
            path.to_str().expect("utf-8"),
        ],
        b"",
    );
    let git = started.elapsed().as_secs_f64();

    println!(
        "pack: {mb:.1} MB, {} objects, {:.1} MB inflated\n\
         pass 1 alone ({count} entries): one thread {pass1_one:.2} s = {:.1} MB/s; last half on a second thread ({taken_over} entries) {pass1:.2} s = {:.1} MB/s\n\
         index, 1 thread (verify, write .idx, parse commits, trees, tags): {indexing_one:.2} s = {:.1} MB/s\n\
         index, {threads} threads: {indexing:.2} s = {:.1} MB/s; {index_memory}\n\
         for_each (decode every object): {visiting:.2} s = {:.1} MB/s; {visit_memory}\n\
         git index-pack --threads=1 (reference): {git:.2} s = {:.1} MB/s",
        indexed.len(),
        inflated as f64 / 1e6,
        mb / pass1_one,
        mb / pass1,
        mb / indexing_one,
        mb / indexing,
        mb / visiting,
        mb / git,
    );
}

/// Peak and current resident memory from `/proc/self/status`; mapped pack pages count as RssFile.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .map(|line| line.trim_start_matches(name).trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "peak RSS {}, now anon {} + file {}",
        field("VmHWM:"),
        field("RssAnon:"),
        field("RssFile:")
    )
}

/// Resident memory in kB from `/proc/self/status`: (peak, anonymous, file-backed).
fn resident_kb() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("RssAnon:"), field("RssFile:"))
}

#[test]
#[ignore = "builds a ~100 MB repository; run explicitly (GITGATE_PACK_BENCH_REPO reuses one)"]
fn pack_memory_is_bounded() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let repo = bench_repo(tmp.path());
    // git writes the pack to disk itself: this process never holds it in memory.
    let base = tmp.path().join("bench");
    let name = run_git(
        &repo,
        &[
            "pack-objects",
            "--all",
            "--delta-base-offset",
            "-q",
            base.to_str().expect("utf-8"),
        ],
        b"",
    );
    let name = String::from_utf8_lossy(&name).trim().to_owned();
    let written = tmp.path().join(format!("bench-{name}.pack"));
    let path = tmp.path().join("push-1.pack");
    std::fs::rename(&written, &path).expect("spooled");
    let _ = std::fs::remove_file(written.with_extension("idx"));
    let pack_kb = std::fs::metadata(&path).expect("pack").len() / 1024;
    // Reset the peak (Linux >= 4.0); without it, the peak so far is small anyway.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (hwm_before, anon_before, file_before) = resident_kb();

    let indexed = index(&path, &Options::default()).expect("valid");
    let (hwm_index, anon_index, file_index) = resident_kb();
    let mut largest = 0;
    indexed
        .for_each(|_, _, data| {
            largest = largest.max(data.len() as u64 / 1024);
            Ok::<_, PackError>(())
        })
        .expect("decodes");
    let (hwm, anon, file) = resident_kb();
    println!(
        "pack {pack_kb} kB, {} objects, largest object {largest} kB\n\
         before: peak {hwm_before} kB, anon {anon_before} kB, file {file_before} kB\n\
         after index: peak {hwm_index} kB, anon {anon_index} kB, file {file_index} kB\n\
         after for_each: peak {hwm} kB, anon {anon} kB, file {file} kB",
        indexed.len()
    );
    // File-backed pages do not grow with the pack: only the small .idx is mapped (the few MiB
    // that appear are this test binary's code, paged in on first use) ...
    assert!(
        file.saturating_sub(file_before) < 16 * 1024,
        "file-backed memory grew by {} kB for a {pack_kb} kB pack",
        file.saturating_sub(file_before)
    );
    // ... and the peak stays far below the pack's size: tables and a few objects.
    let grown = hwm.saturating_sub(hwm_before);
    assert!(
        grown < pack_kb / 4 + 8 * largest,
        "peak grew by {grown} kB for a {pack_kb} kB pack"
    );
}

#[test]
#[ignore = "builds a ~100 MB repository; run explicitly (GITGATE_PACK_BENCH_REPO reuses one)"]
fn pack_growing_throughput() {
    // The push path: `index_growing` on a spool file another thread writes as fast as it can
    // (64 KiB at a time, from a copy on disk, so this process never holds the pack).
    let tmp = tempfile::tempdir().expect("temp dir");
    let repo = bench_repo(tmp.path());
    let source = {
        let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
        spool(tmp.path(), &pack)
    };
    let pack_mb = std::fs::metadata(&source).expect("pack").len() as f64 / 1e6;
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (hwm_before, _, _) = resident_kb();
    let target = tmp.path().join("growing.pack");
    let mut file = std::fs::File::create(&target).expect("spool");
    let growing = crate::pack::Growing::new();
    let writer = growing.clone();
    let from = source.clone();
    let started = Instant::now();
    let feeder = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut input = std::fs::File::open(from).expect("source");
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        loop {
            let n = input.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).expect("write");
            total += n as u64;
            writer.advance(total);
        }
        writer.finish();
        started.elapsed().as_secs_f64()
    });
    let indexed = crate::pack::index_growing(&target, &growing, &Options::default(), |_, _, _| {
        Ok::<_, PackError>(())
    })
    .expect("valid");
    let took = started.elapsed().as_secs_f64();
    let fed = feeder.join().expect("feeder");
    let (hwm, anon, file) = resident_kb();
    println!(
        "index_growing: {pack_mb:.1} MB, {} objects: {took:.2} s = {:.1} MB/s (written in {fed:.2} s); \
         peak RSS grew {} kB (now anon {anon} kB, file {file} kB)",
        indexed.len(),
        pack_mb / took,
        hwm.saturating_sub(hwm_before)
    );
}
