//! Packs built byte by byte, for the malformed-input reproducers (`gitformat-pack`).

use std::io::Write;

use crate::pack::ObjectId;

pub(super) const COMMIT: u8 = 1;
pub(super) const TREE: u8 = 2;
pub(super) const BLOB: u8 = 3;
pub(super) const OFS_DELTA: u8 = 6;
pub(super) const REF_DELTA: u8 = 7;

/// Entries appended one by one; [`RawPack::finish`] adds header and trailer.
#[derive(Default)]
pub(super) struct RawPack {
    body: Vec<u8>,
    count: u32,
}

impl RawPack {
    /// Offset the next entry will have.
    pub(super) fn next_offset(&self) -> u64 {
        12 + self.body.len() as u64
    }

    /// A full object with its true size.
    pub(super) fn object(&mut self, type_id: u8, data: &[u8]) -> u64 {
        self.entry(type_id, data.len() as u64, &[], &zlib(data))
    }

    /// Any entry: `declared` size in the header, then `extra` header bytes (delta base), then `stream`.
    pub(super) fn entry(&mut self, type_id: u8, declared: u64, extra: &[u8], stream: &[u8]) -> u64 {
        let offset = self.next_offset();
        self.body.extend_from_slice(&size_header(type_id, declared));
        self.body.extend_from_slice(extra);
        self.body.extend_from_slice(stream);
        self.count += 1;
        offset
    }

    /// An ofs-delta against the entry at `base_offset`.
    pub(super) fn ofs_delta(&mut self, base_offset: u64, delta: &[u8]) -> u64 {
        let distance = self.next_offset() - base_offset;
        self.entry(
            OFS_DELTA,
            delta.len() as u64,
            &ofs_distance(distance),
            &zlib(delta),
        )
    }

    /// A ref-delta against `base`.
    pub(super) fn ref_delta(&mut self, base: &ObjectId, delta: &[u8]) -> u64 {
        self.entry(REF_DELTA, delta.len() as u64, base.as_slice(), &zlib(delta))
    }

    /// Header, entries and a correct trailer.
    pub(super) fn finish(&self) -> Vec<u8> {
        self.finish_with_count(self.count)
    }

    /// Like [`RawPack::finish`] with `count` in the header instead of the true count.
    pub(super) fn finish_with_count(&self, count: u32) -> Vec<u8> {
        let mut out = b"PACK".to_vec();
        out.extend_from_slice(&2u32.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&self.body);
        seal(out)
    }
}

/// Appends the SHA-1 of `bytes` as trailer.
pub(super) fn seal(mut bytes: Vec<u8>) -> Vec<u8> {
    let mut hasher = gix_hash::hasher(gix_hash::Kind::Sha1);
    hasher.update(&bytes);
    let id = hasher.try_finalize().expect("no collision");
    bytes.extend_from_slice(id.as_slice());
    bytes
}

/// Replaces the trailer of a pack with the SHA-1 of its content.
pub(super) fn reseal(mut pack: Vec<u8>) -> Vec<u8> {
    pack.truncate(pack.len() - 20);
    seal(pack)
}

pub(super) fn zlib(data: &[u8]) -> Vec<u8> {
    let mut w = gix_zlib::stream::deflate::Write::new(Vec::new(), gix_zlib::Compression::DEFAULT);
    w.write_all(data).expect("in memory");
    w.flush().expect("in memory");
    w.into_inner()
}

/// Type and size varint of an entry header.
pub(super) fn size_header(type_id: u8, size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut byte = (type_id << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
    out
}

fn ofs_distance(mut distance: u64) -> Vec<u8> {
    let mut out = vec![(distance & 0x7f) as u8];
    distance >>= 7;
    while distance != 0 {
        distance -= 1;
        out.insert(0, 0x80 | (distance & 0x7f) as u8);
        distance >>= 7;
    }
    out
}

/// Little-endian base-128 varint, as in delta headers.
fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Delta data: base size, result size, then `instructions`.
pub(super) fn delta(base_size: u64, result_size: u64, instructions: &[u8]) -> Vec<u8> {
    let mut out = varint(base_size);
    out.extend_from_slice(&varint(result_size));
    out.extend_from_slice(instructions);
    out
}

/// A delta instruction inserting `data` (at most 127 bytes).
pub(super) fn insert(data: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::try_from(data.len()).expect("short insert")];
    out.extend_from_slice(data);
    out
}

/// A delta instruction copying `size` bytes (below 2^16) from offset 0 of the base.
pub(super) fn copy_from_start(size: u16) -> Vec<u8> {
    let [lo, hi] = size.to_le_bytes();
    vec![0x80 | 0x10 | 0x20, lo, hi]
}

/// The id git gives `data` as an object of `kind`.
pub(super) fn object_id(kind: gix_object::Kind, data: &[u8]) -> ObjectId {
    gix_object::compute_hash(gix_hash::Kind::Sha1, kind, data).expect("no collision")
}
