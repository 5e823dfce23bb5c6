//! Pushed packs: verify a spooled pack, index it, visit its objects, rebuild a subset.
//!
//! Pure, blocking code over files: no network, no logging, no global state. The gateway spools the
//! pushed pack to disk first and runs this module in `spawn_blocking`.
//!
//! # Flow
//! 1. [`index()`] takes the spooled `.pack` (bytes exactly as the client sent them; a missing or empty
//!    file is a push without objects), verifies it and writes an `.idx` next to it, so that the pair can
//!    be dropped into a quarantine `objects/pack/` and read by git. It returns an [`IndexedPack`].
//!    [`index_visiting`] does the same and hands every object to a visitor on the way, so a caller
//!    that needs every object once (e.g. push inspection) decodes the pack once, not twice.
//!    [`index_growing`] does the same while the pack is still being received: its first pass reads
//!    the spool file as it grows ([`Growing`]), the second starts when the writer is done.
//! 2. [`IndexedPack::for_each`] visits every object once, decoded; [`IndexedPack::find`] looks one up.
//! 3. [`write_subset`] writes a new pack holding only some of the objects, for a push that is partly
//!    denied: what the upstream receives must not carry the objects only a denied ref brings.
//!
//! # What is verified
//! Everything `git index-pack --strict` (what `transfer.fsckObjects` runs) would refuse:
//! - the header: `PACK` signature, version 2 or 3, an object count that fits the file;
//! - every entry: a known type, a size that fits 64 bits, an ofs-delta naming an earlier entry, a zlib
//!   stream that inflates to exactly the declared size;
//! - the trailing SHA-1 over all preceding bytes, and no bytes after it;
//! - every delta applies to its base (base size, copy ranges, result size); ref-delta bases must be
//!   in the pack ([`PackError::MissingBase`]) unless [`index_with_bases`] supplies them;
//! - every object id is computed from the decoded content (the ids in the `.idx` are ours, never the
//!   client's), and no object appears twice;
//! - commits, tags and trees parse (gix-object); trees are sorted, without duplicate or empty names.
//!
//! SHA-1 only: SHA-256 repositories are refused for now (their packs fail the checksum or id checks,
//! as 32-byte hashes do not fit). SHA-1 is computed with collision detection (sha1dc).
//!
//! # Limits ([`Options`])
//! - `max_pack_bytes`: disk, and the time of one pass over the file.
//! - `max_objects`: bookkeeping memory (index, delta tree: tens of bytes per object).
//! - `max_object_bytes`: the biggest buffer. Checked against the declared size of every entry before it
//!   is inflated (zlib bombs) and against the result size in every delta header before it is applied
//!   (delta bombs); inflation stops as soon as an entry exceeds its declared size.
//! - `max_total_bytes`: total decoding work, and worst-case memory held for shared delta bases.
//! - `max_delta_depth`: the cost of looking up one object later.
//! - `max_duration`: wall clock, checked between objects.
//!
//! Every violation is its own [`PackError`] variant carrying the numbers; malformed input never panics.
//!
//! # Memory
//! The pack is never memory-mapped: it is read sequentially once (pass 1), then with positioned reads
//! (`pread`) into bounded buffers, so its pages never count toward the gateway's resident memory.
//! Held: the entry table (a few dozen bytes per object), the object being decoded and the delta bases
//! its siblings still need, and for lookups a byte-bounded cache of bases
//! ([`Options::find_cache_bytes`]). Only the small `.idx` is mapped. Indexing resolves deltas on
//! [`Options::threads`] threads, each with its own buffers: the decoding memory is per thread.

mod delta;
mod entries;
mod error;
mod growing;
mod idx;
mod index;
mod indexed;
mod options;
mod read;
mod resolve;
mod validate;
mod write;

#[cfg(test)]
mod tests;

pub use delta::changed_ranges;
pub use error::PackError;
pub use growing::Growing;
pub use index::{
    index, index_growing, index_growing_with_deltas, index_visiting, index_with_bases, BaseLookup,
    Delta,
};
pub use indexed::IndexedPack;
pub use options::Options;
pub use write::{write_subset, WriteOutcome};

/// Object ids: SHA-1 [`gix_hash::ObjectId`].
pub use gix_hash::ObjectId;

/// The kind of a git object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A commit.
    Commit,
    /// A tree (directory listing).
    Tree,
    /// A blob (file content).
    Blob,
    /// An annotated tag.
    Tag,
}

impl Kind {
    /// The name git uses (`commit`, `tree`, `blob`, `tag`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
            Kind::Tag => "tag",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<gix_object::Kind> for Kind {
    fn from(kind: gix_object::Kind) -> Self {
        match kind {
            gix_object::Kind::Commit => Kind::Commit,
            gix_object::Kind::Tree => Kind::Tree,
            gix_object::Kind::Blob => Kind::Blob,
            gix_object::Kind::Tag => Kind::Tag,
        }
    }
}

impl From<Kind> for gix_object::Kind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Commit => gix_object::Kind::Commit,
            Kind::Tree => gix_object::Kind::Tree,
            Kind::Blob => gix_object::Kind::Blob,
            Kind::Tag => gix_object::Kind::Tag,
        }
    }
}
