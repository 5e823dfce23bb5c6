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

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
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
}

/// The inflated bytes of a pack's first entries, written by pass 1 for pass 2 (which would
/// otherwise inflate every entry a second time: on packs of text, inflating is most of the work).
///
/// The file has no name (it is gone once closed) and holds the entries back to back, the first
/// `offsets.len()` of the pack: spilling stops at the first entry that would pass the budget or
/// at a write error, so what it holds is always a prefix of the pack, each entry complete.
#[derive(Debug)]
pub(crate) struct Spill {
    file: File,
    /// Where entry `i`'s bytes start, for `i < offsets.len()`.
    offsets: Vec<u64>,
}

impl Spill {
    /// Reads the `size` inflated bytes of entry `i` into `out`; `false` if the spill does not hold
    /// that entry or cannot be read (the caller then inflates it from the pack).
    pub(crate) fn read(&self, i: u32, size: u64, out: &mut Vec<u8>) -> bool {
        let Some(&offset) = self.offsets.get(i as usize) else {
            return false;
        };
        let Ok(len) = usize::try_from(size) else {
            return false;
        };
        out.clear();
        out.resize(len, 0);
        self.file.read_exact_at(out, offset).is_ok()
    }

    /// How many entries (the first ones of the pack) it holds.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.offsets.len()
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
        reader,
        path: path.to_owned(),
        limits,
        header,
        offset: HEADER_LEN,
        file_len,
        growing: growing.cloned(),
        remaining: header.count,
        total: 0,
        hasher: Some(hasher),
        crc: crc32fast::Hasher::new(),
        keep: keep_compressed.then(Vec::new),
        inflate: gix_zlib::Decompress::new(),
        scratch: vec![0; SCRATCH_LEN],
        offsets: Vec::new(),
        trailer: None,
        error: None,
        failed: false,
        spill: None,
    }))
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
        if let Ok(file) = tempfile::tempfile_in(dir) {
            self.spill = Some(SpillWriter {
                out: BufWriter::with_capacity(SPILL_BUFFER_LEN, file),
                written: 0,
                budget,
                offsets: Vec::new(),
                current: false,
                stopped: false,
            });
        }
    }

    /// What was spilled, once every entry was read; `None` without a spill or if it could not be
    /// written out.
    pub(crate) fn take_spill(&mut self) -> Option<Spill> {
        let writer = self.spill.take()?;
        if writer.offsets.is_empty() {
            return None;
        }
        let file = writer.out.into_inner().ok()?;
        Some(Spill {
            file,
            offsets: writer.offsets,
        })
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
                if distance == 0 || self.offsets.binary_search(&base_offset).is_err() {
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
        let remaining = self.remaining as usize;
        (remaining, Some(remaining))
    }
}
