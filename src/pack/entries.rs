//! The first pass over a spooled pack: entry headers, sizes and checksums, limits enforced before
//! anything is inflated into memory.
//!
//! [`Entries`] walks the file once and yields the entries (as gix-pack's input entries, which the thin
//! pack completion consumes too). Per entry it
//! decodes the header (`gitformat-pack`: type and size varint, then the ofs-delta distance or the
//! ref-delta base id), refuses declared sizes over the limits, then inflates the zlib stream into a
//! small scratch buffer only to learn where it ends, to check that it yields exactly the declared size
//! and, for deltas, to read the result size from the delta header. It hashes every byte for the
//! trailing SHA-1 and computes each entry's CRC-32 for the `.idx`.
//!
//! Finding where an entry ends takes inflating all of it, and resolving it (pass 2) takes its
//! inflated bytes again. With [`Entries::spill_into`], pass 1 writes what it inflates to an
//! unnamed file next to the pack, so pass 2 reads those bytes back instead of inflating every entry
//! a second time (see [`Spill`]).
//!
//! Once the whole file is there, a second thread may read its last half while this pass reads
//! on ([`Options::split_from_bytes`](crate::pack::Options::split_from_bytes)): see [`Tail`].

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gix_hash::ObjectId;
use gix_pack::data::entry::Header;
use gix_pack::data::input;

use crate::pack::growing::{into_pack_error, writer_failed, Growing, GrowingReader, Wait};
use crate::pack::{Options, PackError};

/// Size of the pack header: `PACK`, version, object count.
pub(crate) const HEADER_LEN: u64 = 12;
/// Size of the SHA-1 trailer.
pub(crate) const TRAILER_LEN: u64 = 20;
/// The smallest possible entry: a one-byte header and an 8-byte zlib stream (2-byte header, an empty
/// final block in 2 bytes, 4-byte Adler-32).
const MIN_ENTRY_LEN: u64 = 9;
/// How much of a delta's inflated data is kept to read its two size varints (10 bytes each at most).
const DELTA_PREFIX_LEN: usize = 20;
const SCRATCH_LEN: usize = 64 * 1024;
/// Write buffer of the spill file.
const SPILL_BUFFER_LEN: usize = 256 * 1024;

/// What the pack header says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PackHeader {
    pub(crate) version: gix_pack::data::Version,
    pub(crate) count: u32,
}

/// Iterator over the entries of a pack file; see the module docs.
///
/// Errors are yielded once as an opaque gix error (so gix stops) and kept in [`Entries::take_error`].
pub(crate) struct Entries {
    reader: BufReader<Source>,
    path: PathBuf,
    limits: Limits,
    header: PackHeader,
    offset: u64,
    /// The file's length; `None` while it grows (then `growing` tells it at the end).
    file_len: Option<u64>,
    growing: Option<Growing>,
    remaining: u32,
    total: u64,
    /// The trailer's checksum: plain SHA-1 (no collision detection, which object ids have).
    hasher: Option<sha1::Sha1>,
    crc: crc32fast::Hasher,
    keep: Option<Vec<u8>>,
    inflate: gix_zlib::Decompress,
    scratch: Vec<u8>,
    /// Offsets of all entries so far, ascending: an ofs-delta must name one of them.
    offsets: Vec<u64>,
    trailer: Option<ObjectId>,
    error: Option<PackError>,
    failed: bool,
    spill: Option<SpillWriter>,
    /// Where the spill file goes (set by [`Entries::spill_into`]).
    spill_dir: Option<PathBuf>,
    /// For a reader of a pack's tail ([`Tail`]): where it started. Offset-delta bases before it
    /// are not known here; they are collected in `outside_bases` for the first pass to check.
    range_start: Option<u64>,
    outside_bases: Vec<u64>,
    split_from: u64,
    split: Split,
    /// Entries read by a [`Tail`] and taken over, still to be yielded.
    adopted: VecDeque<input::Entry>,
    /// The spill of the taken-over entries.
    tail_spill: Option<SpillRun>,
    /// How many entries were taken over from a [`Tail`].
    taken_over: usize,
}

/// Whether the first pass has a second thread reading the pack's tail.
enum Split {
    /// Not yet: the file may still be growing.
    NotYet,
    Running(Tail),
    /// Done with, or never to be.
    Over,
}

/// A thread reading a pack from an entry in its last half to its end while the first pass reads
/// up to there.
///
/// Entries are found by inflating each one to its end, so one thread alone reads a pack front to
/// back. The tail thread guesses instead: from the middle of what is left, it looks for bytes that
/// read as an entry header followed by a zlib header, checks that two whole entries follow, and
/// then reads entries from there to the end of the pack. Its entries are used only if the first
/// pass, reading on, arrives exactly where they start: from a true entry start, reading is the
/// same whoever does it. The checks that need what came before (offset-delta bases, the total
/// inflated size, the entry count, the trailing checksum) are made by the first pass when it takes
/// them over. Anything else (a guess that was wrong, an error in the tail, a limit) drops them,
/// and the first pass reads the tail itself, failing where it would have failed alone.
struct Tail {
    /// Where its first entry starts, once it found one ([`SEARCHING`] until then, [`NOT_FOUND`]
    /// if it gave up).
    start: Arc<AtomicU64>,
    /// Set to make it stop.
    stop: Arc<AtomicBool>,
    /// Where it started looking: every start it may find is past it, and the first pass, once
    /// there, waits for the search to end.
    from: u64,
    handle: Option<std::thread::JoinHandle<Option<TailRun>>>,
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What a [`Tail`] read.
struct TailRun {
    entries: Vec<input::Entry>,
    /// Offset-delta bases before its start.
    outside_bases: Vec<u64>,
    /// Inflated bytes, as [`Entries`] counts them for the total limit.
    total: u64,
    /// Where its last entry ends.
    end: u64,
    spill: Option<SpillRun>,
}

/// How far past where it starts looking a [`Tail`] searches for an entry start.
const TAIL_SEARCH_LEN: u64 = 4 << 20;
/// Most bytes a [`Tail`] inflates while checking candidate starts. Bytes a client chose could
/// make many positions look like entries that each inflate to a lot; the first pass waits for
/// the search, so it must stay cheap. Entries larger than this cannot start a tail.
const TAIL_SEARCH_WORK: u64 = 16 << 20;
/// [`Tail::start`] while it looks for an entry start.
const SEARCHING: u64 = u64::MAX;
/// [`Tail::start`] when it found none (or stopped).
const NOT_FOUND: u64 = u64::MAX - 1;

/// The inflated bytes of a pack's first entries, written by pass 1 for pass 2 (which would
/// otherwise inflate every entry a second time: on packs of text, inflating is most of the work).
///
/// The file has no name (it is gone once closed) and holds the entries back to back, the first
/// `offsets.len()` of the pack: spilling stops at the first entry that would pass the budget or
/// at a write error, so what it holds is always a prefix of the pack, each entry complete.
#[derive(Debug)]
pub(crate) struct Spill {
    /// One run from the first entry; with a [`Tail`] taken over, one more for its entries.
    runs: Vec<SpillRun>,
}

/// Consecutive entries in one spill file.
#[derive(Debug)]
struct SpillRun {
    /// The first entry's position in the pack.
    first: u32,
    file: File,
    /// Where entry `first + i`'s bytes start, for `i < offsets.len()`.
    offsets: Vec<u64>,
}

impl Spill {
    /// Reads the `size` inflated bytes of entry `i` into `out`; `false` if the spill does not hold
    /// that entry or cannot be read (the caller then inflates it from the pack).
    pub(crate) fn read(&self, i: u32, size: u64, out: &mut Vec<u8>) -> bool {
        let Some((run, &offset)) = self.runs.iter().find_map(|run| {
            let at = i.checked_sub(run.first)?;
            Some((run, run.offsets.get(at as usize)?))
        }) else {
            return false;
        };
        let Ok(len) = usize::try_from(size) else {
            return false;
        };
        out.clear();
        out.resize(len, 0);
        run.file.read_exact_at(out, offset).is_ok()
    }

    /// How many entries it holds.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.runs.iter().map(|r| r.offsets.len()).sum()
    }
}

/// Pass 1's side of a [`Spill`].
struct SpillWriter {
    out: BufWriter<File>,
    written: u64,
    budget: u64,
    offsets: Vec<u64>,
    /// The entry being inflated is being spilled.
    current: bool,
    /// No further entry is spilled (budget reached, or a write failed).
    stopped: bool,
}

impl SpillWriter {
    fn create(dir: &Path, budget: u64) -> Option<SpillWriter> {
        let file = tempfile::tempfile_in(dir).ok()?;
        Some(SpillWriter {
            out: BufWriter::with_capacity(SPILL_BUFFER_LEN, file),
            written: 0,
            budget,
            offsets: Vec::new(),
            current: false,
            stopped: false,
        })
    }

    /// The entries written, from entry `first` on; `None` if none or if they cannot all be
    /// written out.
    fn finish(self, first: u32) -> Option<SpillRun> {
        if self.offsets.is_empty() {
            return None;
        }
        let file = self.out.into_inner().ok()?;
        Some(SpillRun {
            first,
            file,
            offsets: self.offsets,
        })
    }

    /// Before inflating an entry of `size` bytes: spill it if the budget allows.
    fn begin(&mut self, size: u64) {
        self.current = false;
        if self.stopped {
            return;
        }
        match self.written.checked_add(size) {
            Some(end) if end <= self.budget => self.current = true,
            _ => self.stopped = true,
        }
    }

    fn write(&mut self, data: &[u8]) {
        if self.current && self.out.write_all(data).is_err() {
            self.current = false;
            self.stopped = true;
        }
    }

    /// After the entry inflated to exactly `size` bytes.
    fn end(&mut self, size: u64) {
        if self.current {
            self.offsets.push(self.written);
            self.written += size;
            self.current = false;
        }
    }
}

/// Where the bytes come from: a complete file, or one still being written.
enum Source {
    File(File),
    Growing(GrowingReader),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::File(file) => file.read(buf),
            Source::Growing(reader) => reader.read(buf),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_pack_bytes: u64,
    max_object_bytes: u64,
    max_total_bytes: u64,
    deadline: Option<Instant>,
    max_duration: std::time::Duration,
}

/// Opens `path` and checks the pack header and the file size. `Ok(None)` for a missing or empty file
/// (a push that only deletes refs sends no pack).
///
/// With `growing`, the file is still being written: it must exist, its size is not known up front,
/// and reads wait for the writer (see [`Growing`]). The checks made on the size of a complete file
/// (`max_pack_bytes`, the count fitting the file) are then made as bytes arrive and, when
/// another error stops the reading first, once the writer is done, so that a pack fed this way is
/// refused with the error the complete file would get.
pub(crate) fn open(
    path: &Path,
    options: &Options,
    started: Instant,
    keep_compressed: bool,
    growing: Option<&Growing>,
) -> Result<Option<Entries>, PackError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && growing.is_none() => {
            return Ok(None)
        }
        Err(err) => return Err(PackError::io(path, err)),
    };
    let limits = Limits {
        max_pack_bytes: options.max_pack_bytes,
        max_object_bytes: options.max_object_bytes,
        max_total_bytes: options.max_total_bytes,
        deadline: started.checked_add(options.max_duration),
        max_duration: options.max_duration,
    };
    let (source, file_len) = match growing {
        None => {
            let file_len = file.metadata().map_err(|e| PackError::io(path, e))?.len();
            if file_len == 0 {
                return Ok(None);
            }
            if file_len > options.max_pack_bytes {
                return Err(PackError::PackTooLarge {
                    size: file_len,
                    limit: options.max_pack_bytes,
                });
            }
            (Source::File(file), Some(file_len))
        }
        Some(growing) => {
            let reader = GrowingReader::new(
                file,
                growing.clone(),
                options.max_pack_bytes,
                limits.deadline,
                options.max_duration,
            );
            (Source::Growing(reader), None)
        }
    };
    let settle = |err| settle(growing, err, None, &limits);
    let mut reader = BufReader::with_capacity(SCRATCH_LEN, source);
    let mut raw = [0u8; HEADER_LEN as usize];
    let got = read_up_to(&mut reader, &mut raw).map_err(|e| settle(into_pack_error(path, e)))?;
    if got == 0 && growing.is_some() {
        return Ok(None);
    }
    let data = raw.get(..got).unwrap_or_default();
    let header = parse_header(data, file_len, options).map_err(settle)?;
    let mut hasher = <sha1::Sha1 as sha1::Digest>::new();
    sha1::Digest::update(&mut hasher, raw);
    Ok(Some(Entries {
        file_len,
        growing: growing.cloned(),
        remaining: header.count,
        hasher: Some(hasher),
        keep: keep_compressed.then(Vec::new),
        split_from: options.split_from_bytes,
        split: Split::NotYet,
        ..Entries::base(reader, path, limits, header, HEADER_LEN)
    }))
}

/// Reads entries from `start` (a guess: see [`Tail`]) to `data_end`, the end of the last entry of
/// the pack at `path`, at most `max_entries` of them (what the pack's count leaves; the list is
/// memory). `None` if anything is wrong or `stop` is set.
#[allow(clippy::too_many_arguments)]
fn read_tail(
    path: &Path,
    header: PackHeader,
    limits: Limits,
    from: u64,
    data_end: u64,
    max_entries: usize,
    spill: Option<(PathBuf, u64)>,
    start_found: &AtomicU64,
    stop: &AtomicBool,
) -> Option<TailRun> {
    let found = find_entry_start(path, header, limits, from, data_end, TAIL_SEARCH_WORK, stop)
        .and_then(|start| {
            Some((
                start,
                Entries::range(path, header, limits, start, data_end).ok()?,
            ))
        });
    start_found.store(
        found.as_ref().map_or(NOT_FOUND, |(start, _)| *start),
        Ordering::Release,
    );
    let (_, mut tail) = found?;
    if let Some((dir, budget)) = spill {
        tail.spill = SpillWriter::create(&dir, budget);
    }
    let mut entries = Vec::new();
    while tail.offset < data_end {
        if stop.load(Ordering::Relaxed) || entries.len() >= max_entries {
            return None;
        }
        entries.push(tail.next_entry().ok()?);
    }
    if tail.offset != data_end {
        return None;
    }
    let spill = tail.spill.take().and_then(|w| w.finish(0));
    Some(TailRun {
        entries,
        outside_bases: tail.outside_bases,
        total: tail.total,
        end: tail.offset,
        spill,
    })
}

/// The first offset from `from` on (within [`TAIL_SEARCH_LEN`]) where two whole entries read
/// cleanly (or one, ending the pack), inflating at most `work` bytes in all to check candidates.
fn find_entry_start(
    path: &Path,
    header: PackHeader,
    limits: Limits,
    from: u64,
    data_end: u64,
    mut work: u64,
    stop: &AtomicBool,
) -> Option<u64> {
    let file = File::open(path).ok()?;
    let until = from.saturating_add(TAIL_SEARCH_LEN).min(data_end);
    let mut window = vec![0u8; SCRATCH_LEN];
    let mut at = from;
    while at < until {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let want = usize::try_from(data_end - at).map_or(window.len(), |n| n.min(window.len()));
        let buf = window.get_mut(..want)?;
        file.read_exact_at(buf, at).ok()?;
        // Positions whose header would run past the window are looked at in the next one.
        let last = if at + want as u64 >= data_end {
            want
        } else {
            want.saturating_sub(64)
        };
        for i in 0..last {
            let candidate = at + i as u64;
            if candidate >= until {
                return None;
            }
            if looks_like_entry(buf.get(i..).unwrap_or_default(), candidate) {
                match reads_cleanly(path, header, limits, candidate, data_end, work) {
                    (true, _) => return Some(candidate),
                    (false, spent) => work = work.saturating_sub(spent),
                }
                if work == 0 {
                    return None;
                }
            }
        }
        at += last.max(1) as u64;
    }
    None
}

/// Where a [`Tail`] looking from `from` in the complete pack at `path` would start, inflating at
/// most `work` bytes to find out.
#[cfg(test)]
pub(crate) fn tail_start(path: &Path, options: &Options, from: u64, work: u64) -> Option<u64> {
    let entries = open(path, options, Instant::now(), false, None).ok()??;
    let data_end = entries.file_len?.checked_sub(TRAILER_LEN)?;
    let stop = AtomicBool::new(false);
    find_entry_start(
        path,
        entries.header,
        entries.limits,
        from,
        data_end,
        work,
        &stop,
    )
}

/// An entry header (of a full object, or of a delta whose base would start after the pack
/// header), then a zlib header.
fn looks_like_entry(bytes: &[u8], offset: u64) -> bool {
    let Some(entry) = crate::pack::read::parse_header(bytes.get(..64).unwrap_or(bytes)) else {
        return false;
    };
    if let crate::pack::read::Base::Distance(distance) = entry.base {
        if distance == 0 || offset.checked_sub(distance).is_none_or(|b| b < HEADER_LEN) {
            return false;
        }
    }
    let zlib = bytes.get(usize::from(entry.len)..usize::from(entry.len) + 2);
    let Some(&[cmf, flg]) = zlib else {
        return false;
    };
    cmf & 0x0f == 8
        && cmf >> 4 <= 7
        && flg & 0x20 == 0
        && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// Whether two whole entries (or one that ends the pack), of at most `work` bytes inflated in
/// all, read cleanly from `start`; and the bytes inflated to find out.
fn reads_cleanly(
    path: &Path,
    header: PackHeader,
    limits: Limits,
    start: u64,
    data_end: u64,
    work: u64,
) -> (bool, u64) {
    let limits = Limits {
        max_object_bytes: limits.max_object_bytes.min(work),
        max_total_bytes: limits.max_total_bytes.min(work),
        ..limits
    };
    let Ok(mut probe) = Entries::range(path, header, limits, start, data_end) else {
        return (false, 0);
    };
    for _ in 0..2 {
        if probe.next_entry().is_err() || probe.offset > data_end {
            return (false, probe.inflated().max(1));
        }
        if probe.offset == data_end {
            break;
        }
    }
    (true, probe.inflated())
}

/// For a growing file: the error the complete file gets. Once the writer is done (waiting for it at
/// most until the deadline), the checks [`open`] makes first on a complete file come first: its
/// size over the limit, then the count (of a header that parsed) not fitting it. Otherwise `err`.
fn settle(
    growing: Option<&Growing>,
    err: PackError,
    header: Option<PackHeader>,
    limits: &Limits,
) -> PackError {
    let Some(growing) = growing else {
        return err;
    };
    let (size, finished) = match growing.wait(u64::MAX, limits.deadline) {
        Wait::Finished(size) => (size, true),
        Wait::Failed(size) => (size, false),
        Wait::Data(_) | Wait::TimedOut => return err,
    };
    if size > limits.max_pack_bytes {
        return PackError::PackTooLarge {
            size,
            limit: limits.max_pack_bytes,
        };
    }
    if let Some(count) = header.filter(|_| finished).map(|h| h.count) {
        let possible = possible_entries(size);
        if u64::from(count) > possible {
            return PackError::CountExceedsData {
                count,
                size,
                possible,
            };
        }
    }
    err
}

/// The most entries a pack of `size` bytes can hold.
fn possible_entries(size: u64) -> u64 {
    size.saturating_sub(HEADER_LEN + TRAILER_LEN) / MIN_ENTRY_LEN
}

/// Checks signature, version, count limit and that the count fits the file (`data` may be short;
/// `file_len` is `None` for a growing file, then the count is checked at its end).
fn parse_header(
    data: &[u8],
    file_len: Option<u64>,
    options: &Options,
) -> Result<PackHeader, PackError> {
    if !b"PACK".starts_with(data.get(..4.min(data.len())).unwrap_or_default()) {
        return Err(PackError::BadSignature);
    }
    let (Some(version), Some(count)) = (be_u32(data, 4), be_u32(data, 8)) else {
        return Err(PackError::Truncated {
            offset: file_len.unwrap_or(data.len() as u64),
        });
    };
    let version = match version {
        2 => gix_pack::data::Version::V2,
        3 => gix_pack::data::Version::V3,
        version => return Err(PackError::UnsupportedVersion { version }),
    };
    if count > options.max_objects {
        return Err(PackError::TooManyObjects {
            count,
            limit: options.max_objects,
        });
    }
    if let Some(size) = file_len {
        let possible = possible_entries(size);
        if u64::from(count) > possible {
            return Err(PackError::CountExceedsData {
                count,
                size,
                possible,
            });
        }
    }
    Ok(PackHeader { version, count })
}

fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Entries {
    /// How many entries a second thread read (see [`Tail`]).
    #[cfg(test)]
    pub(crate) fn taken_over(&self) -> usize {
        self.taken_over
    }

    /// The decoded pack header.
    pub(crate) fn header(&self) -> PackHeader {
        self.header
    }

    /// Keeps what the entries inflate to, up to `budget` bytes, in an unnamed file in `dir`, for
    /// [`Entries::take_spill`]. If the file cannot be created, nothing is kept: the spill only
    /// saves work.
    pub(crate) fn spill_into(&mut self, dir: &Path, budget: u64) {
        if budget == 0 {
            return;
        }
        self.spill = SpillWriter::create(dir, budget);
        self.spill_dir = Some(dir.to_owned());
    }

    /// What was spilled, once every entry was read; `None` without a spill or if it could not be
    /// written out.
    pub(crate) fn take_spill(&mut self) -> Option<Spill> {
        let runs: Vec<SpillRun> = [
            self.spill.take().and_then(|w| w.finish(0)),
            self.tail_spill.take(),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!runs.is_empty()).then_some(Spill { runs })
    }

    /// An iterator over the entries from `start` (an entry start, or a guess at one) to
    /// `data_end`, for a [`Tail`]: no trailing checksum, no count, offset-delta bases before
    /// `start` collected instead of checked.
    fn range(
        path: &Path,
        header: PackHeader,
        limits: Limits,
        start: u64,
        data_end: u64,
    ) -> Result<Entries, PackError> {
        let mut file = File::open(path).map_err(|e| PackError::io(path, e))?;
        file.seek(SeekFrom::Start(start))
            .map_err(|e| PackError::io(path, e))?;
        let reader = BufReader::with_capacity(SCRATCH_LEN, Source::File(file));
        Ok(Entries {
            file_len: Some(data_end + TRAILER_LEN),
            range_start: Some(start),
            ..Entries::base(reader, path, limits, header, start)
        })
    }

    /// Reading from `offset`, with no count, trailing checksum, spill or tail thread.
    fn base(
        reader: BufReader<Source>,
        path: &Path,
        limits: Limits,
        header: PackHeader,
        offset: u64,
    ) -> Entries {
        Entries {
            reader,
            path: path.to_owned(),
            limits,
            header,
            offset,
            file_len: None,
            growing: None,
            remaining: u32::MAX,
            total: 0,
            hasher: None,
            crc: crc32fast::Hasher::new(),
            keep: None,
            inflate: gix_zlib::Decompress::new(),
            scratch: vec![0; SCRATCH_LEN],
            offsets: Vec::new(),
            trailer: None,
            error: None,
            failed: false,
            spill: None,
            spill_dir: None,
            range_start: None,
            outside_bases: Vec::new(),
            split_from: u64::MAX,
            split: Split::Over,
            adopted: VecDeque::new(),
            tail_spill: None,
            taken_over: 0,
        }
    }

    /// Starts a [`Tail`] once the whole file is there, if enough of it is left.
    fn maybe_split(&mut self) {
        if !matches!(self.split, Split::NotYet) {
            return;
        }
        if self.keep.is_some() || self.range_start.is_some() || self.split_from == u64::MAX {
            self.split = Split::Over;
            return;
        }
        let len = match (self.file_len, &self.growing) {
            (Some(len), _) => len,
            (None, Some(growing)) => match growing.finished_len() {
                Some(len) => len,
                None => return,
            },
            (None, None) => {
                self.split = Split::Over;
                return;
            }
        };
        self.split = Split::Over;
        let data_end = len.saturating_sub(TRAILER_LEN);
        let left = data_end.saturating_sub(self.offset);
        if left < self.split_from.max(1) || self.remaining < 2 {
            return;
        }
        // A little short of the middle: this pass also hashes what the tail thread reads.
        let from = self.offset + left / 20 * 9;
        let start = Arc::new(AtomicU64::new(SEARCHING));
        let stop = Arc::new(AtomicBool::new(false));
        // What is left of the spill budget is shared: each thread may spill half of it.
        let spill = match (&mut self.spill, &self.spill_dir) {
            (Some(writer), Some(dir)) if !writer.stopped => {
                let share = writer.budget.saturating_sub(writer.written) / 2;
                writer.budget = writer.written + share;
                Some((dir.clone(), share))
            }
            _ => None,
        };
        let (path, header, limits) = (self.path.clone(), self.header, self.limits);
        let max_entries = self.remaining as usize;
        let (start_found, stop_seen) = (start.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("pack-tail".into())
            .spawn(move || {
                read_tail(
                    &path,
                    header,
                    limits,
                    from,
                    data_end,
                    max_entries,
                    spill,
                    &start_found,
                    &stop_seen,
                )
            });
        if let Ok(handle) = spawned {
            self.split = Split::Running(Tail {
                start,
                stop,
                from,
                handle: Some(handle),
            });
        }
    }

    /// At the start of an entry: takes over the [`Tail`]'s entries if it started right here and
    /// read to the end, returning the first; drops it once this pass is past where it started.
    fn take_over(&mut self) -> Result<Option<input::Entry>, PackError> {
        let Split::Running(tail) = &self.split else {
            return Ok(None);
        };
        let here = self.offset;
        // Every start it may find is past where it looks from.
        if here < tail.from {
            return Ok(None);
        }
        // Its search is short (cheap checks over at most TAIL_SEARCH_LEN bytes, long done on a
        // big pack); waiting for it makes the outcome the same every time.
        let mut start = tail.start.load(Ordering::Acquire);
        while start == SEARCHING {
            if tail
                .handle
                .as_ref()
                .is_none_or(std::thread::JoinHandle::is_finished)
            {
                start = tail.start.load(Ordering::Acquire);
                if start == SEARCHING {
                    start = NOT_FOUND;
                }
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
            start = tail.start.load(Ordering::Acquire);
        }
        if start != NOT_FOUND && here < start {
            return Ok(None);
        }
        let Split::Running(mut tail) = std::mem::replace(&mut self.split, Split::Over) else {
            return Ok(None);
        };
        if start != here {
            return Ok(None);
        }
        let Some(run) = tail.handle.take().and_then(|h| h.join().ok()).flatten() else {
            return Ok(None);
        };
        let fits = run.entries.len() == self.remaining as usize
            && run
                .outside_bases
                .iter()
                .all(|base| self.offsets.binary_search(base).is_ok())
            && self.total.saturating_add(run.total) <= self.limits.max_total_bytes;
        if !fits {
            return Ok(None);
        }
        self.hash_until(run.end)?;
        let first = u32::try_from(self.offsets.len()).unwrap_or(u32::MAX);
        self.offsets
            .extend(run.entries.iter().map(|entry| entry.pack_offset));
        self.total += run.total;
        self.remaining = 0;
        let trailer = self.finish()?;
        self.tail_spill = run.spill.map(|spill| SpillRun { first, ..spill });
        self.taken_over = run.entries.len();
        tracing::debug!(
            entries = run.entries.len(),
            from = here,
            "pass 1 took over the entries a second thread read"
        );
        let mut entries = VecDeque::from(run.entries);
        if let Some(last) = entries.back_mut() {
            last.trailer = Some(trailer);
        }
        let first = entries.pop_front();
        self.adopted = entries;
        Ok(first)
    }

    /// Bytes inflated so far, the entry being read included.
    fn inflated(&self) -> u64 {
        self.total.saturating_add(self.inflate.total_out())
    }

    /// Feeds the bytes up to `end` to the trailing checksum without decoding them (a [`Tail`]
    /// decoded them).
    fn hash_until(&mut self, end: u64) -> Result<(), PackError> {
        while self.offset < end {
            let buf = self
                .reader
                .fill_buf()
                .map_err(|e| into_pack_error(&self.path, e))?;
            if buf.is_empty() {
                return Err(PackError::Truncated {
                    offset: self.offset,
                });
            }
            let n = usize::try_from(end - self.offset).map_or(buf.len(), |n| n.min(buf.len()));
            if let Some(h) = self.hasher.as_mut() {
                sha1::Digest::update(h, buf.get(..n).unwrap_or_default());
            }
            self.reader.consume(n);
            self.offset += n as u64;
        }
        Ok(())
    }

    /// The error that stopped iteration, if any.
    pub(crate) fn take_error(&mut self) -> Option<PackError> {
        self.error.take()
    }

    /// The verified trailing checksum, once all entries were read.
    pub(crate) fn trailer(&self) -> Option<ObjectId> {
        self.trailer
    }

    /// Reads and verifies the trailer of a pack without entries (with entries, the last one does it).
    pub(crate) fn finish_empty(&mut self) -> Result<ObjectId, PackError> {
        self.finish().map_err(|err| self.settle(err))
    }

    /// Where the entries end and the trailer starts, once all entries were read.
    pub(crate) fn data_end(&self) -> u64 {
        self.offset.saturating_sub(TRAILER_LEN)
    }

    /// How many entries to reserve room for: the count when the file is known to hold them, at
    /// most a modest number while it grows (the count is checked against the file at its end).
    pub(crate) fn reserve_hint(&self) -> usize {
        let count = self.header.count as usize;
        match self.file_len {
            Some(_) => count,
            None => count.min(1 << 16),
        }
    }

    fn settle(&self, err: PackError) -> PackError {
        settle(self.growing.as_ref(), err, Some(self.header), &self.limits)
    }

    fn read_error(&self, err: std::io::Error) -> PackError {
        into_pack_error(&self.path, err)
    }

    fn next_entry(&mut self) -> Result<input::Entry, PackError> {
        if self.limits.deadline.is_some_and(|d| Instant::now() > d) {
            return Err(PackError::TimeLimitExceeded {
                limit: self.limits.max_duration,
            });
        }
        self.maybe_split();
        if let Some(entry) = self.take_over()? {
            return Ok(entry);
        }
        let offset = self.offset;
        self.crc = crc32fast::Hasher::new();
        if let Some(keep) = self.keep.as_mut() {
            keep.clear();
        }
        let (header, size) = self.entry_header(offset)?;
        if size > self.limits.max_object_bytes {
            return Err(PackError::ObjectTooLarge {
                offset,
                size,
                limit: self.limits.max_object_bytes,
            });
        }
        let header_size =
            u16::try_from(self.offset - offset).map_err(|_| PackError::BadEntryHeader {
                offset,
                reason: "header too long",
            })?;
        let data_start = self.offset;
        if let Some(spill) = self.spill.as_mut() {
            spill.begin(size);
        }
        let prefix = self.inflate_entry(offset, size, header.is_delta())?;
        if let Some(spill) = self.spill.as_mut() {
            spill.end(size);
        }
        let mut produced = size;
        if header.is_delta() {
            let result_size = delta_result_size(&prefix).ok_or_else(|| PackError::BadDelta {
                detail: format!("delta at byte {offset} has a malformed size header"),
            })?;
            if result_size > self.limits.max_object_bytes {
                return Err(PackError::DeltaResultTooLarge {
                    offset,
                    size: result_size,
                    limit: self.limits.max_object_bytes,
                });
            }
            produced = produced.saturating_add(result_size);
        }
        self.total = self.total.saturating_add(produced);
        if self.total > self.limits.max_total_bytes {
            return Err(PackError::TotalTooLarge {
                total: self.total,
                limit: self.limits.max_total_bytes,
                offset,
            });
        }
        let compressed_size = self.offset - data_start;
        self.offsets.push(offset);
        self.remaining -= 1;
        let trailer = if self.remaining == 0 {
            Some(self.finish()?)
        } else {
            None
        };
        Ok(input::Entry {
            header,
            header_size,
            pack_offset: offset,
            // Only the zlib stream is kept: gix re-encodes the header when it rewrites the pack.
            compressed: self.keep.as_mut().map(std::mem::take),
            compressed_size,
            crc32: Some(std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize()),
            decompressed_size: size,
            trailer,
        })
    }

    /// Decodes type, size and delta base (`gitformat-pack`, "Object entries"). Stricter than git about
    /// varints that overflow 64 bits, so gix-pack re-reading the header later agrees with us.
    fn entry_header(&mut self, offset: u64) -> Result<(Header, u64), PackError> {
        let bad = |reason| PackError::BadEntryHeader { offset, reason };
        let mut byte = self.byte()?;
        let type_id = (byte >> 4) & 0b111;
        let mut size = u64::from(byte & 0b1111);
        let mut shift = 4u32;
        while byte & 0x80 != 0 {
            byte = self.byte()?;
            let part = u64::from(byte & 0x7f);
            if shift >= 64 || (part << shift) >> shift != part {
                return Err(bad("size overflows 64 bits"));
            }
            size |= part << shift;
            shift += 7;
        }
        let header = match type_id {
            1 => Header::Commit,
            2 => Header::Tree,
            3 => Header::Blob,
            4 => Header::Tag,
            6 => {
                let distance = self.ofs_distance(offset)?;
                let base_offset = offset.checked_sub(distance).unwrap_or(u64::MAX);
                let outside = self
                    .range_start
                    .is_some_and(|start| base_offset < start && base_offset >= HEADER_LEN);
                if outside {
                    self.outside_bases.push(base_offset);
                } else if distance == 0 || self.offsets.binary_search(&base_offset).is_err() {
                    return Err(PackError::BadDeltaBase {
                        offset,
                        base_offset,
                    });
                }
                Header::OfsDelta {
                    base_distance: distance,
                }
            }
            7 => {
                let mut id = [0u8; 20];
                for b in &mut id {
                    *b = self.byte()?;
                }
                Header::RefDelta {
                    base_id: ObjectId::from(id),
                }
            }
            _ => return Err(bad("unknown object type")),
        };
        Ok((header, size))
    }

    /// The ofs-delta distance: big-endian 7-bit groups, each continuation adding one
    /// (`gitformat-pack`, "offset encoding").
    fn ofs_distance(&mut self, offset: u64) -> Result<u64, PackError> {
        let mut byte = self.byte()?;
        let mut value = u64::from(byte & 0x7f);
        while byte & 0x80 != 0 {
            byte = self.byte()?;
            value = value
                .checked_add(1)
                .and_then(|v| v.checked_mul(128))
                .and_then(|v| v.checked_add(u64::from(byte & 0x7f)))
                .ok_or(PackError::BadEntryHeader {
                    offset,
                    reason: "base distance overflows 64 bits",
                })?;
        }
        Ok(value)
    }

    fn byte(&mut self) -> Result<u8, PackError> {
        let buf = self
            .reader
            .fill_buf()
            .map_err(|e| into_pack_error(&self.path, e))?;
        let Some(&b) = buf.first() else {
            return Err(PackError::Truncated {
                offset: self.offset,
            });
        };
        self.reader.consume(1);
        self.offset += 1;
        self.crc.update(&[b]);
        if let Some(h) = self.hasher.as_mut() {
            sha1::Digest::update(h, [b]);
        }
        Ok(b)
    }

    /// Inflates one zlib stream into scratch space, checking it yields exactly `declared` bytes, and
    /// returns the first bytes of the output when `want_prefix` (for the delta header).
    fn inflate_entry(
        &mut self,
        offset: u64,
        declared: u64,
        want_prefix: bool,
    ) -> Result<Vec<u8>, PackError> {
        let mut prefix = Vec::new();
        self.inflate.reset();
        loop {
            let input = self
                .reader
                .fill_buf()
                .map_err(|e| into_pack_error(&self.path, e))?;
            if input.is_empty() {
                return Err(PackError::Truncated {
                    offset: self.offset,
                });
            }
            let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(input, &mut self.scratch, gix_zlib::FlushDecompress::None)
                .map_err(|_| PackError::BadZlib { offset })?;
            let consumed =
                usize::try_from(self.inflate.total_in() - in_before).unwrap_or(usize::MAX);
            let produced =
                usize::try_from(self.inflate.total_out() - out_before).unwrap_or(usize::MAX);
            let used = input.get(..consumed).ok_or(PackError::BadZlib { offset })?;
            self.crc.update(used);
            if let Some(h) = self.hasher.as_mut() {
                sha1::Digest::update(h, used);
            }
            if let Some(keep) = self.keep.as_mut() {
                keep.extend_from_slice(used);
            }
            self.reader.consume(consumed);
            self.offset += consumed as u64;
            if let Some(spill) = self.spill.as_mut() {
                spill.write(self.scratch.get(..produced).unwrap_or_default());
            }
            if want_prefix && prefix.len() < DELTA_PREFIX_LEN {
                let take = (DELTA_PREFIX_LEN - prefix.len()).min(produced);
                prefix.extend_from_slice(self.scratch.get(..take).unwrap_or_default());
            }
            let actual = self.inflate.total_out();
            if actual > declared {
                return Err(PackError::SizeMismatch {
                    offset,
                    declared,
                    actual,
                });
            }
            match status {
                gix_zlib::Status::StreamEnd => break,
                _ if consumed == 0 && produced == 0 => return Err(PackError::BadZlib { offset }),
                _ => {}
            }
        }
        let actual = self.inflate.total_out();
        if actual != declared {
            return Err(PackError::SizeMismatch {
                offset,
                declared,
                actual,
            });
        }
        Ok(prefix)
    }

    /// Reads the trailer, compares it with the hash of everything before, and insists on the end of file.
    fn finish(&mut self) -> Result<ObjectId, PackError> {
        let mut raw = [0u8; TRAILER_LEN as usize];
        let got = read_up_to(&mut self.reader, &mut raw).map_err(|e| self.read_error(e))?;
        if got < raw.len() {
            return Err(PackError::Truncated {
                offset: self.offset + got as u64,
            });
        }
        self.offset += TRAILER_LEN;
        let expected = ObjectId::from(raw);
        let hasher = self.hasher.take().ok_or_else(|| PackError::Internal {
            detail: "pack trailer read twice".into(),
        })?;
        let digest: [u8; 20] = sha1::Digest::finalize(hasher).into();
        let actual = ObjectId::from(digest);
        if actual != expected {
            return Err(PackError::ChecksumMismatch { expected, actual });
        }
        let file_len = match (self.file_len, &self.growing) {
            (Some(len), _) => len,
            (None, None) => self.offset,
            (None, Some(growing)) => match growing.wait(u64::MAX, self.limits.deadline) {
                Wait::Finished(len) => len,
                Wait::TimedOut => {
                    return Err(PackError::TimeLimitExceeded {
                        limit: self.limits.max_duration,
                    })
                }
                Wait::Failed(_) | Wait::Data(_) => {
                    return Err(PackError::io(&self.path, writer_failed()));
                }
            },
        };
        let extra = file_len.saturating_sub(self.offset);
        if extra > 0 {
            return Err(PackError::TrailingBytes { count: extra });
        }
        self.trailer = Some(expected);
        Ok(expected)
    }
}

/// The result size from a delta's header: two little-endian base-128 varints, base size then result
/// size (`gitformat-pack`, "Deltified representation"). `None` if malformed or over 64 bits.
pub(crate) fn delta_result_size(prefix: &[u8]) -> Option<u64> {
    crate::pack::delta::sizes(prefix).map(|(_, result, _)| result)
}

impl Iterator for Entries {
    type Item = Result<input::Entry, gix_error::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(entry) = self.adopted.pop_front() {
            return Some(Ok(entry));
        }
        if self.remaining == 0 || self.failed {
            return None;
        }
        match self.next_entry() {
            Ok(entry) => Some(Ok(entry)),
            Err(err) => {
                self.failed = true;
                self.error = Some(self.settle(err));
                Some(Err(
                    gix_error::message("pack entry refused by gitgate").validation_error()
                ))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.remaining as usize + self.adopted.len();
        (remaining, Some(remaining))
    }
}
