//! Pack-reading throughput on a ~100 MB pack with real deltas (ignored: it builds the repository
//! first, which takes a minute). Run with
//! `cargo test --release -- --ignored pack_throughput --nocapture`;
//! set `GITGATE_PACK_BENCH_REPO` to reuse a repository made by `fixtures/pack/big-history.sh`.

use std::path::PathBuf;
use std::time::Instant;

use super::{fixture, pack_objects, run_git, spool};
use crate::pack::{index, Options, PackError};

#[test]
#[ignore = "builds a ~100 MB repository; run explicitly for the benchmark"]
fn pack_throughput() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let repo = match std::env::var_os("GITGATE_PACK_BENCH_REPO") {
        Some(path) => PathBuf::from(path),
        None => {
            let repo = tmp.path().join("repo");
            fixture("big-history.sh", &[repo.to_str().expect("utf-8")]);
            repo
        }
    };
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let path = spool(tmp.path(), &pack);
    let mb = pack.len() as f64 / 1e6;
    drop(pack);
    // Reset the peak resident set size (Linux >= 4.0) so it reflects indexing alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");

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
         index (verify, write .idx, parse commits, trees, tags): {indexing:.2} s = {:.1} MB/s; {index_memory}\n\
         for_each (decode every object): {visiting:.2} s = {:.1} MB/s; {visit_memory}\n\
         git index-pack --threads=1 (reference): {git:.2} s = {:.1} MB/s",
        indexed.len(),
        inflated as f64 / 1e6,
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
