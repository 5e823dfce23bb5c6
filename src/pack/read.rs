//! Reading a verified pack file with positioned reads (`pread`) into bounded buffers.
//!
//! Nothing is memory-mapped: a mapping of the pack would count every page touched as resident memory
//! of the gateway (file-backed, but still in its peak RSS), and a pack may be as large as the push
//! limit. Here, memory is the object being decoded plus one 64 KiB read buffer.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use gix_hash::ObjectId;

use crate::pack::{Kind, PackError};

/// Size of one read from the pack.
const CHUNK_LEN: usize = 64 * 1024;
/// The longest entry header: a 64-bit size varint (10 bytes) and a ref-delta base id (20 bytes).
const MAX_HEADER_LEN: usize = 32;

/// What an entry header says (`gitformat-pack`, "Object entries").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryHeader {
    /// The kind of a full object, or the delta's base.
    pub(crate) base: Base,
    /// Inflated size: the object's, or the delta instructions'.
    pub(crate) size: u64,
    /// Bytes from the entry start to its zlib stream.
    pub(crate) len: u8,
}

/// A full object's kind, or where a delta's base is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    /// A full object.
    Full(Kind),
    /// An offset-delta: the base starts this many bytes before the entry.
    Distance(u64),
    /// A ref-delta: the base's id.
    Id(ObjectId),
}

/// An open pack file, read with `pread`; the pack was verified by [`index`](crate::pack::index()).
#[derive(Debug)]
pub(crate) struct PackFile {
    file: File,
    path: PathBuf,
    /// Where the trailer starts: the end of the last entry.
    data_end: u64,
}

/// Reusable state for inflating entries: the zlib decoder and the read buffer.
pub(crate) struct Inflater {
    zlib: gix_zlib::Decompress,
    chunk: Vec<u8>,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            zlib: gix_zlib::Decompress::new(),
            chunk: vec![0; CHUNK_LEN],
        }
    }
}

impl PackFile {
    /// Opens the pack at `path` whose entries end at `data_end` (where pass 1 found the trailer).
    pub(crate) fn open_until(path: &Path, data_end: u64) -> Result<Self, PackError> {
        let file = File::open(path).map_err(|e| PackError::io(path, e))?;
        Ok(PackFile {
            file,
            path: path.to_owned(),
            data_end,
        })
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Where the entries end (the trailer starts).
    pub(crate) fn data_end(&self) -> u64 {
        self.data_end
    }

    /// Reads up to `buf.len()` bytes at `offset`, fewer only at the end of the entries.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, PackError> {
        let available = usize::try_from(self.data_end.saturating_sub(offset)).unwrap_or(usize::MAX);
        let want = buf.len().min(available);
        let buf = buf.get_mut(..want).unwrap_or_default();
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| PackError::io(&self.path, e))?;
        Ok(want)
    }

    /// Copies the raw bytes `start..end` to `sink` in bounded chunks.
    pub(crate) fn copy_range(
        &self,
        start: u64,
        end: u64,
        chunk: &mut [u8],
        mut sink: impl FnMut(&[u8]) -> Result<(), PackError>,
    ) -> Result<(), PackError> {
        let mut at = start;
        while at < end {
            let want = usize::try_from(end - at)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            let got = self.read_at(at, chunk.get_mut(..want).unwrap_or_default())?;
            if got == 0 {
                return Err(self.changed(at));
            }
            sink(chunk.get(..got).unwrap_or_default())?;
            at += got as u64;
        }
        Ok(())
    }

    /// Decodes the header of the entry at `offset`.
    pub(crate) fn header_at(&self, offset: u64) -> Result<EntryHeader, PackError> {
        let mut raw = [0u8; MAX_HEADER_LEN];
        let got = self.read_at(offset, &mut raw)?;
        parse_header(raw.get(..got).unwrap_or_default()).ok_or_else(|| self.changed(offset))
    }

    /// Inflates the zlib stream starting at `start` (and ending by `end`) into `out`, which must
    /// come to exactly `size` bytes; `size` was checked against the limits by the caller.
    pub(crate) fn inflate(
        &self,
        start: u64,
        end: u64,
        size: u64,
        out: &mut Vec<u8>,
        inflater: &mut Inflater,
    ) -> Result<(), PackError> {
        #[cfg(test)]
        INFLATES.with(|n| n.set(n.get() + 1));
        let len = usize::try_from(size).map_err(|_| self.changed(start))?;
        out.clear();
        // One spare byte: a stream that would yield more than `size` is noticed.
        out.resize(len + 1, 0);
        let Inflater { zlib, chunk } = inflater;
        zlib.reset();
        let end = end.min(self.data_end);
        let mut at = start;
        // A first read sized for the expected stream: small objects cost a small read.
        let mut want = len
            .saturating_add(len / 8)
            .saturating_add(64)
            .min(chunk.len());
        loop {
            let room = usize::try_from(end.saturating_sub(at)).unwrap_or(usize::MAX);
            let got = self.read_at(at, chunk.get_mut(..want.min(room)).unwrap_or_default())?;
            if got == 0 {
                return Err(self.changed(start));
            }
            let mut input = chunk.get(..got).unwrap_or_default();
            while !input.is_empty() {
                let (in_before, out_before) = (zlib.total_in(), zlib.total_out());
                let produced_so_far = usize::try_from(out_before).unwrap_or(usize::MAX);
                let output = out.get_mut(produced_so_far..).unwrap_or_default();
                let status = zlib
                    .decompress(input, output, gix_zlib::FlushDecompress::None)
                    .map_err(|_| self.changed(start))?;
                let consumed = usize::try_from(zlib.total_in() - in_before).unwrap_or(usize::MAX);
                let produced = zlib.total_out() - out_before;
                input = input.get(consumed..).unwrap_or_default();
                if status == gix_zlib::Status::StreamEnd {
                    if zlib.total_out() != size {
                        return Err(self.changed(start));
                    }
                    out.truncate(len);
                    return Ok(());
                }
                if consumed == 0 && produced == 0 {
                    return Err(self.changed(start));
                }
            }
            at += got as u64;
            want = chunk.len();
        }
    }

    /// The error for a pack that no longer matches what was verified (changed on disk).
    fn changed(&self, offset: u64) -> PackError {
        PackError::Internal {
            detail: format!(
                "{} changed after it was verified (entry at byte {offset})",
                self.path.display()
            ),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Entries [`PackFile::inflate`] inflated on this thread (tests count them).
    pub(crate) static INFLATES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Decodes an entry header from its first bytes; `None` if malformed (the pack was verified, so
/// only a changed file gets here).
pub(crate) fn parse_header(raw: &[u8]) -> Option<EntryHeader> {
    let mut bytes = raw.iter().copied();
    let mut byte = bytes.next()?;
    let type_id = (byte >> 4) & 0b111;
    let mut size = u64::from(byte & 0b1111);
    let mut shift = 4u32;
    while byte & 0x80 != 0 {
        byte = bytes.next()?;
        let part = u64::from(byte & 0x7f);
        if shift >= 64 || (part << shift) >> shift != part {
            return None;
        }
        size |= part << shift;
        shift += 7;
    }
    let base = match type_id {
        1 => Base::Full(Kind::Commit),
        2 => Base::Full(Kind::Tree),
        3 => Base::Full(Kind::Blob),
        4 => Base::Full(Kind::Tag),
        6 => {
            let mut byte = bytes.next()?;
            let mut value = u64::from(byte & 0x7f);
            while byte & 0x80 != 0 {
                byte = bytes.next()?;
                value = value
                    .checked_add(1)?
                    .checked_mul(128)?
                    .checked_add(u64::from(byte & 0x7f))?;
            }
            Base::Distance(value)
        }
        7 => {
            let mut id = [0u8; 20];
            for b in &mut id {
                *b = bytes.next()?;
            }
            Base::Id(ObjectId::from(id))
        }
        _ => return None,
    };
    let len = u8::try_from(raw.len() - bytes.len()).ok()?;
    Some(EntryHeader { base, size, len })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_every_type_decode() {
        assert_eq!(
            parse_header(&[0x35, 0xff]),
            Some(EntryHeader {
                base: Base::Full(Kind::Blob),
                size: 5,
                len: 1
            })
        );
        // Size 0x1f5 (5 + 0x1f << 4), ofs-delta distance (0x01 + 1) * 128 + 0x05 = 261.
        assert_eq!(
            parse_header(&[0xe5, 0x1f, 0x81, 0x05, 0x99]),
            Some(EntryHeader {
                base: Base::Distance(261),
                size: 0x1f5,
                len: 4
            })
        );
        let mut raw = vec![0x73];
        raw.extend_from_slice(&[7; 20]);
        assert_eq!(
            parse_header(&raw),
            Some(EntryHeader {
                base: Base::Id(ObjectId::from([7; 20])),
                size: 3,
                len: 21
            })
        );
        for bad in [
            &[][..],
            &[0x85][..],
            &[0x53][..],
            &[0x63, 0x80][..],
            &[0x73, 1][..],
        ] {
            assert_eq!(parse_header(bad), None, "{bad:?}");
        }
    }
}
