//! Delta chains, surveyed from the entry headers once the `.idx` maps ids to offsets: the depth of
//! every chain, and the kind of every object (the kind of its chain's full object).
//!
//! gix-pack resolves chains of any depth iteratively, but every later lookup of a deep object replays
//! its whole chain, so depth is limited. It cannot be known earlier for ref-deltas: their bases are
//! named by id, and ids exist only once the objects are resolved.

use gix_pack::data::entry::Header;

use crate::pack::{Kind, PackError};

const ROOT: u32 = u32::MAX;
const UNKNOWN: u32 = u32::MAX;

/// Offsets of all entries, ascending, with the kind of the object at each.
pub(crate) struct Survey {
    offsets: Vec<u64>,
    kinds: Vec<Kind>,
}

impl Survey {
    /// The kind of the object whose entry starts at `offset`.
    pub(crate) fn kind_at(&self, offset: u64) -> Option<Kind> {
        let i = self.offsets.binary_search(&offset).ok()?;
        self.kinds.get(i).copied()
    }
}

/// Walks every chain; fails with [`PackError::DeltaChainTooDeep`] if one is longer than `limit`.
///
/// Memory: 17 bytes per object for the survey, 4 more while it is built.
pub(crate) fn survey(
    index: &gix_pack::index::File,
    pack: &gix_pack::data::File,
    limit: u32,
) -> Result<Survey, PackError> {
    let offsets = index.sorted_offsets();
    let position = |offset: u64| {
        offsets
            .binary_search(&offset)
            .ok()
            .and_then(|i| u32::try_from(i).ok())
    };
    let mut parents = Vec::with_capacity(offsets.len());
    let mut kinds = Vec::with_capacity(offsets.len());
    for &offset in &offsets {
        let entry = pack.entry(offset).map_err(|e| PackError::internal(&e))?;
        let parent = match entry.header {
            Header::OfsDelta { base_distance } => {
                offset.checked_sub(base_distance).and_then(position)
            }
            Header::RefDelta { base_id } => index
                .lookup(base_id)
                .map(|i| index.pack_offset_at_index(i))
                .and_then(position),
            Header::Commit | Header::Tree | Header::Blob | Header::Tag => Some(ROOT),
        };
        // Indexing succeeded, so every base was found; a miss means the files changed under us.
        parents.push(parent.ok_or_else(|| PackError::Internal {
            detail: format!("delta base of the entry at byte {offset} vanished after indexing"),
        })?);
        // Placeholder for deltas, replaced by their chain's kind below.
        kinds.push(entry.header.as_kind().map_or(Kind::Blob, Kind::from));
    }
    let mut depths = vec![UNKNOWN; offsets.len()];
    let mut stack: Vec<usize> = Vec::new();
    for start in 0..offsets.len() {
        let mut cursor = start;
        // Walk up to the first object whose depth is known, or to a full object.
        let (mut depth, kind) = loop {
            let known = depths.get(cursor).copied().unwrap_or(0);
            let kind = kinds.get(cursor).copied().unwrap_or(Kind::Blob);
            match parents.get(cursor).copied() {
                _ if known != UNKNOWN => break (known, kind),
                Some(ROOT) | None => {
                    if let Some(d) = depths.get_mut(cursor) {
                        *d = 0;
                    }
                    break (0, kind);
                }
                Some(parent) => {
                    stack.push(cursor);
                    // A chain this long is too deep (or a cycle, which gix would have refused).
                    if stack.len() > limit as usize {
                        return Err(PackError::DeltaChainTooDeep {
                            offset: offsets.get(start).copied().unwrap_or_default(),
                            depth: limit.saturating_add(1),
                            limit,
                        });
                    }
                    cursor = parent as usize;
                }
            }
        };
        while let Some(node) = stack.pop() {
            depth += 1;
            if depth > limit {
                return Err(PackError::DeltaChainTooDeep {
                    offset: offsets.get(node).copied().unwrap_or_default(),
                    depth,
                    limit,
                });
            }
            if let (Some(d), Some(k)) = (depths.get_mut(node), kinds.get_mut(node)) {
                *d = depth;
                *k = kind;
            }
        }
    }
    Ok(Survey { offsets, kinds })
}
