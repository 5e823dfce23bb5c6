//! [`write_subset`]: a new pack holding only some objects of an indexed one.
//!
//! Used when a push is partly denied: the upstream must not receive the objects only a denied ref
//! brings (hosts serve unreferenced objects by id). Full objects are copied as they are (read with
//! `pread` in 64 KiB chunks); deltas are
//! written undeltified (decoded, then compressed), since their base may not be in the subset.

use std::io::Write;

use gix_hash::ObjectId;
use gix_zlib::stream::deflate::{Compress, FlushCompress};

use crate::pack::entries::{HEADER_LEN, TRAILER_LEN};
use crate::pack::read::{Base, PackFile};
use crate::pack::{IndexedPack, Kind, PackError};

/// What [`write_subset`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Objects in the new pack (duplicates in the request are written once).
    pub objects: u32,
    /// Bytes written, trailer included.
    pub bytes: u64,
    /// The new pack's trailing SHA-1.
    pub checksum: ObjectId,
}

/// Writes a version 2 pack with exactly the objects `ids` to `out`, in their order in `indexed`
/// (commits first, as git writes them), and its trailing SHA-1. Fails with
/// [`PackError::ObjectNotFound`] for an id the pack does not hold, before writing anything.
///
/// Memory: the list of ids, and one decoded object at a time.
pub fn write_subset(
    indexed: &IndexedPack,
    ids: impl Iterator<Item = ObjectId>,
    out: &mut impl Write,
) -> Result<WriteOutcome, PackError> {
    let mut wanted = ids
        .map(|id| {
            indexed
                .offset_of(&id)
                .map(|offset| (offset, id))
                .ok_or(PackError::ObjectNotFound { id })
        })
        .collect::<Result<Vec<_>, _>>()?;
    wanted.sort_unstable();
    wanted.dedup();
    let count = u32::try_from(wanted.len()).map_err(|_| PackError::Internal {
        detail: "more than 2^32 objects requested".into(),
    })?;
    let mut out = Hashing {
        out,
        hasher: gix_hash::hasher(gix_hash::Kind::Sha1),
        bytes: 0,
    };
    let mut header = [0u8; HEADER_LEN as usize];
    header[..4].copy_from_slice(b"PACK");
    header[4..8].copy_from_slice(&2u32.to_be_bytes());
    header[8..].copy_from_slice(&count.to_be_bytes());
    out.write(&header)?;

    let entry_ends = EntryEnds::new(indexed);
    let mut compressor = Compress::new(gix_zlib::Compression::BEST_SPEED);
    let mut buf = Vec::new();
    let mut scratch = vec![0u8; 64 * 1024];
    for (offset, id) in wanted {
        if let Some((pack, start, end)) = entry_ends.raw_full_object(offset)? {
            pack.copy_range(start, end, &mut scratch, |raw| out.write(raw))?;
            continue;
        }
        let kind = indexed
            .find(&id, &mut buf)?
            .ok_or(PackError::ObjectNotFound { id })?;
        out.write(&entry_header(kind, buf.len() as u64))?;
        deflate(&mut compressor, &buf, &mut scratch, &mut out)?;
    }
    let checksum = out
        .hasher
        .try_finalize()
        .map_err(|e| PackError::internal(&e))?;
    out.out
        .write_all(checksum.as_slice())
        .map_err(|e| PackError::io("", e))?;
    Ok(WriteOutcome {
        objects: count,
        bytes: out.bytes + TRAILER_LEN,
        checksum,
    })
}

/// The entry header: type in bits 4-6 of the first byte, size as a little-endian base-128 varint
/// starting with its low 4 bits (`gitformat-pack`).
fn entry_header(kind: Kind, size: u64) -> Vec<u8> {
    let type_id: u8 = match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    };
    let mut bytes = Vec::with_capacity(10);
    let mut byte = (type_id << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        bytes.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    bytes.push(byte);
    bytes
}

fn deflate<W: Write>(
    compressor: &mut Compress,
    mut input: &[u8],
    scratch: &mut [u8],
    out: &mut Hashing<'_, W>,
) -> Result<(), PackError> {
    compressor.reset();
    loop {
        let (in_before, out_before) = (compressor.total_in(), compressor.total_out());
        let status = compressor
            .compress(input, scratch, FlushCompress::Finish)
            .map_err(|e| PackError::internal(&e))?;
        let consumed = usize::try_from(compressor.total_in() - in_before).unwrap_or(usize::MAX);
        let produced = usize::try_from(compressor.total_out() - out_before).unwrap_or(usize::MAX);
        input = input.get(consumed..).unwrap_or_default();
        out.write(scratch.get(..produced).unwrap_or_default())?;
        if status == gix_zlib::Status::StreamEnd {
            return Ok(());
        }
        if consumed == 0 && produced == 0 {
            return Err(PackError::Internal {
                detail: "zlib compression made no progress".into(),
            });
        }
    }
}

/// Finds where entries end, to copy full objects byte for byte.
struct EntryEnds<'a> {
    parts: Option<(&'a PackFile, Vec<u64>)>,
}

impl<'a> EntryEnds<'a> {
    fn new(indexed: &'a IndexedPack) -> Self {
        EntryEnds {
            parts: indexed
                .parts()
                .map(|(pack, index)| (pack, index.sorted_offsets())),
        }
    }

    /// The raw byte range (header and zlib stream) of the entry at `offset` if it is a full
    /// object, which is valid as is in any pack; `None` for deltas.
    fn raw_full_object(&self, offset: u64) -> Result<Option<(&'a PackFile, u64, u64)>, PackError> {
        let Some((pack, offsets)) = &self.parts else {
            return Ok(None);
        };
        if !matches!(pack.header_at(offset)?.base, Base::Full(_)) {
            return Ok(None);
        }
        let end = match offsets.binary_search(&offset) {
            Ok(i) => offsets.get(i + 1).copied().unwrap_or(pack.data_end()),
            Err(_) => return Ok(None),
        };
        Ok(Some((*pack, offset, end)))
    }
}

/// Hashes and counts what goes out.
struct Hashing<'a, W> {
    out: &'a mut W,
    hasher: gix_hash::Hasher,
    bytes: u64,
}

impl<W: Write> Hashing<'_, W> {
    fn write(&mut self, data: &[u8]) -> Result<(), PackError> {
        self.out.write_all(data).map_err(|e| PackError::io("", e))?;
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        Ok(())
    }
}
