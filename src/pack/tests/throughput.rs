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

    let started = Instant::now();
    let indexed = index(&path, &Options::default()).expect("valid");
    let indexing = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut inflated = 0u64;
    indexed
        .for_each(|_, _, data| {
            inflated += data.len() as u64;
            Ok::<_, PackError>(())
        })
        .expect("decodes");
    let visiting = started.elapsed().as_secs_f64();

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
         index (verify + idx + parse every object): {indexing:.2} s = {:.1} MB/s\n\
         for_each (decode every object): {visiting:.2} s = {:.1} MB/s\n\
         git index-pack --threads=1 (reference): {git:.2} s = {:.1} MB/s",
        indexed.len(),
        inflated as f64 / 1e6,
        mb / indexing,
        mb / visiting,
        mb / git,
    );
}
