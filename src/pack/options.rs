//! [`Options`]: the limits that keep a hostile pack from exhausting memory, disk or time.

use std::time::Duration;

/// Limits and knobs for [`index`](crate::pack::index()) and [`IndexedPack`](crate::pack::IndexedPack).
///
/// Every limit is checked before the work it guards is done: sizes come from entry headers and delta
/// headers, which are read before anything is inflated into memory. Each violation is its own
/// [`PackError`](crate::pack::PackError) variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Largest pack file accepted, in bytes. The caller enforces this while spooling; it is checked
    /// again on the file. Default 2 GiB (GitHub's push limit).
    pub max_pack_bytes: u64,
    /// Most objects a pack may announce. Bounds the index and the per-object bookkeeping (a few
    /// dozen bytes each). Default 1 000 000.
    pub max_objects: u32,
    /// Largest inflated size of one entry and of one delta result, in bytes. Guards against zlib
    /// bombs (a few compressed bytes declaring gigabytes) and delta bombs (a small delta declaring an
    /// enormous result): both are refused from their headers. It is also the size of the biggest
    /// buffer decoding allocates. Default 256 MiB.
    pub max_object_bytes: u64,
    /// Most bytes all entries may inflate to, delta instructions and delta results counted, i.e. the
    /// total work of decoding the pack once. Also bounds what delta resolution may hold in memory at
    /// worst (bases shared by several deltas stay alive until their last delta is applied).
    /// Default 4 GiB.
    pub max_total_bytes: u64,
    /// Longest delta chain (a delta against a full object has depth 1). Each lookup of a deep object
    /// replays its whole chain, so depth multiplies the cost of [`find`](crate::pack::IndexedPack::find).
    /// git itself writes at most 50 (`pack.depth`) and caps at 4095. Default 10 000.
    pub max_delta_depth: u32,
    /// Wall-clock budget for [`index`](crate::pack::index()), checked between objects. Default 5 minutes.
    pub max_duration: Duration,
    /// Threads resolving deltas, hashing and visiting objects in
    /// [`index`](crate::pack::index()) and its variants (the calling thread is one of them; 1 keeps
    /// all the work on it, 0 counts as 1). Each thread holds its own buffers, so the memory bound of
    /// resolution applies per thread. [`for_each`](crate::pack::IndexedPack::for_each) and
    /// [`find`](crate::pack::IndexedPack::find) stay on the calling thread. Default: the available
    /// parallelism (`std::thread::available_parallelism`), 1 if unknown.
    pub threads: usize,
    /// Packs smaller than this many bytes are resolved on one thread whatever `threads` says:
    /// starting threads costs more than such a pack takes. Default 1 MiB.
    pub parallel_from_bytes: u64,
    /// Memory for recently decoded objects (delta bases and what it returned) kept by
    /// [`find`](crate::pack::IndexedPack::find): up to one and a half times this, in two
    /// generations of half of it (plus an object of at most a quarter). Default 16 MiB.
    pub find_cache_bytes: usize,
    /// Disk, not memory: most inflated bytes [`index`](crate::pack::index()) keeps from its first
    /// pass (which must inflate every entry to find where it ends) in an unnamed temporary file
    /// next to the pack, so that resolving reads them back instead of inflating every entry a
    /// second time. Entries past the budget are inflated again. The file is gone when indexing
    /// ends; its pages mostly stay in the page cache meanwhile. 0 turns it off. Default 1 GiB.
    pub spill_bytes: u64,
    /// When the whole pack is on disk (or once a growing one is complete) and at least this many
    /// bytes of it are still to be read by the first pass, a second thread reads the last half
    /// meanwhile: it looks for where an entry starts there and reads from it to the end, and the
    /// first pass takes its entries over if it arrives exactly at that start (otherwise they are
    /// dropped and the first pass reads on alone). The first pass is the part of indexing that
    /// cannot otherwise use more than one core. `u64::MAX` turns it off. Default 8 MiB.
    pub split_from_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_pack_bytes: 2 << 30,
            max_objects: 1_000_000,
            max_object_bytes: 256 << 20,
            max_total_bytes: 4 << 30,
            max_delta_depth: 10_000,
            max_duration: Duration::from_secs(5 * 60),
            threads: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            parallel_from_bytes: 1 << 20,
            find_cache_bytes: 16 << 20,
            spill_bytes: 1 << 30,
            split_from_bytes: 8 << 20,
        }
    }
}
