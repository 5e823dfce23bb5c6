//! Writing a version 2 pack index (`gitformat-pack`, "Version 2 pack-*.idx files"), byte for byte
//! as `git index-pack` writes it:
//!
//! - `\377tOc`, version 2;
//! - the fan-out table: 256 counts, the i-th being the number of ids whose first byte is <= i;
//! - the ids, ascending;
//! - the CRC-32 of every entry, in id order;
//! - the 4-byte offsets in id order; an offset above `0x7fffffff` is written as `0x80000000 | n`
//!   where n is its position in the following table;
//! - the 8-byte offsets that did not fit, in id order;
//! - the pack checksum, then the SHA-1 of everything before.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use gix_hash::ObjectId;

use crate::pack::PackError;

/// The largest offset git writes into the 4-byte table (`pack_idx_opts.off32_limit`).
pub(crate) const OFF32_LIMIT: u64 = 0x7fff_ffff;

/// One object of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IdxEntry {
    pub(crate) id: ObjectId,
    pub(crate) offset: u64,
    pub(crate) crc32: u32,
}

/// Writes the index of `entries` to `path`. `entries` must be sorted by id without duplicates;
/// offsets above `off32_limit` go to the 8-byte table (git's default is [`OFF32_LIMIT`]).
pub(crate) fn write(
    path: &Path,
    entries: &[IdxEntry],
    pack_checksum: &ObjectId,
    off32_limit: u64,
) -> Result<(), PackError> {
    let io = |e| PackError::io(path, e);
    let file = File::create(path).map_err(io)?;
    let mut out = Hashing {
        out: BufWriter::with_capacity(64 * 1024, file),
        hasher: gix_hash::hasher(gix_hash::Kind::Sha1),
    };
    out.write(b"\xfftOc").map_err(io)?;
    out.write(&2u32.to_be_bytes()).map_err(io)?;
    let mut fan_out = [0u32; 256];
    for entry in entries {
        let first = entry.id.as_slice().first().copied().unwrap_or(0);
        if let Some(count) = fan_out.get_mut(usize::from(first)) {
            *count += 1;
        }
    }
    let mut total = 0u32;
    for count in fan_out {
        total += count;
        out.write(&total.to_be_bytes()).map_err(io)?;
    }
    for entry in entries {
        out.write(entry.id.as_slice()).map_err(io)?;
    }
    for entry in entries {
        out.write(&entry.crc32.to_be_bytes()).map_err(io)?;
    }
    let mut large = 0u32;
    for entry in entries {
        let small = if entry.offset > off32_limit {
            let at = large | 0x8000_0000;
            large += 1;
            at
        } else {
            u32::try_from(entry.offset).map_err(|_| PackError::Internal {
                detail: "4-byte offset limit above 2^32".into(),
            })?
        };
        out.write(&small.to_be_bytes()).map_err(io)?;
    }
    for entry in entries.iter().filter(|e| e.offset > off32_limit) {
        out.write(&entry.offset.to_be_bytes()).map_err(io)?;
    }
    out.write(pack_checksum.as_slice()).map_err(io)?;
    let Hashing { mut out, hasher } = out;
    let checksum = hasher.try_finalize().map_err(|e| PackError::internal(&e))?;
    out.write_all(checksum.as_slice()).map_err(io)?;
    out.into_inner().map_err(|e| io(e.into_error()))?;
    Ok(())
}

struct Hashing {
    out: BufWriter<File>,
    hasher: gix_hash::Hasher,
}

impl Hashing {
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.hasher.update(data);
        self.out.write_all(data)
    }
}
