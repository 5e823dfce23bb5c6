//! The `gitgate` binary: parse the command line, run the verb, map the outcome to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
    fix_mmap_threshold();
    gitgate::cli::main()
}

/// Allocations of 256 KiB and more get their own mapping, returned when freed, unless
/// `MALLOC_MMAP_THRESHOLD_` says otherwise.
///
/// glibc raises that threshold (up to 32 MiB) each time such a block is freed, after which large
/// buffers (objects being resolved, trees, tables) come from the arenas and leave holes there
/// that are not given back. Pushing a real history (curl's, 256,244 objects) took the gateway's
/// resident memory to 339 MiB for a heap that peaked at 174 MiB; with the threshold fixed, 214
/// MiB (`benches/push_bench.sh`, case `history`; docs/benchmarks.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn fix_mmap_threshold() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return;
    }
    // SAFETY: mallopt only sets an allocator parameter; it is called first thing in main, before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_mmap_threshold() {}

/// Caps glibc's malloc arenas (default: 8 per core), unless `MALLOC_ARENA_MAX` says otherwise.
///
/// Pushes are decoded on blocking threads that change from push to push, and glibc keeps what a
/// thread freed in that thread's arena: over ten 100 MiB pushes the gateway's resident memory grew
/// from 28 to 107 MiB and stayed there, where two arenas kept it at 53 MiB
/// (`benches/push_bench.sh 10`, case `deltas`; docs/benchmarks.md). As many arenas as cores (2 to
/// 8) keeps allocation from contending while bounding what they hold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let arenas = libc::c_int::try_from(cores.clamp(2, 8)).unwrap_or(2);
    // SAFETY: mallopt only sets an allocator parameter; it is called first thing in main, before
    // any other thread exists or anything was allocated on one.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
