//! Object checks in the spirit of `transfer.fsckObjects`: commits, trees and tags must parse, and
//! trees must obey the rules git's fsck treats as errors (not warnings).
//!
//! Reasons are fixed strings: they end up in logs and client answers, so they never quote content.

use gix_hash::ObjectId;
use gix_object::tree::name_order;

use crate::pack::{Kind, PackError};

/// Checks one decoded object; blobs are opaque and always pass.
pub(crate) fn check_object(id: ObjectId, kind: Kind, data: &[u8]) -> Result<(), PackError> {
    let invalid = |reason: &str| PackError::InvalidObject {
        id,
        kind,
        reason: reason.to_owned(),
    };
    match kind {
        Kind::Blob => Ok(()),
        Kind::Commit => gix_object::CommitRef::from_bytes(data, gix_hash::Kind::Sha1)
            .map(|_| ())
            .map_err(|_| invalid("does not parse as a commit (tree, parents, author, committer)")),
        Kind::Tag => gix_object::TagRef::from_bytes(data, gix_hash::Kind::Sha1)
            .map(|_| ())
            .map_err(|_| invalid("does not parse as a tag (object, type, tag, tagger)")),
        Kind::Tree => check_tree(data).map_err(invalid),
    }
}

/// git fsck errors for trees: `badTree` (entry does not parse, empty name), `treeNotSorted` and
/// `duplicateEntries` (the same name twice, even once as a file and once as a directory).
fn check_tree(data: &[u8]) -> Result<(), &'static str> {
    // Names of non-trees that a later tree entry of the same name could still follow: git sorts a
    // tree `a` as `a/`, so between file `a` and tree `a` only names `a` + byte below '/' can appear.
    let mut candidates: Vec<&[u8]> = Vec::new();
    let mut previous: Option<(&[u8], bool)> = None;
    for entry in gix_object::TreeRefIter::from_bytes(data, gix_hash::Kind::Sha1) {
        let entry = entry.map_err(|_| "malformed tree entry")?;
        let name: &[u8] = entry.filename.as_ref();
        let is_tree = entry.mode.is_tree();
        if name.is_empty() {
            return Err("empty filename in tree entry");
        }
        if let Some((prev_name, prev_is_tree)) = previous {
            if prev_name == name {
                return Err("duplicate entries in tree");
            }
            if name_order(prev_name, prev_is_tree, name, is_tree).is_gt() {
                return Err("tree entries are not sorted");
            }
        }
        while let Some(&candidate) = candidates.last() {
            if is_tree && candidate == name {
                return Err("duplicate entries in tree");
            }
            let still_live = name
                .strip_prefix(candidate)
                .and_then(|rest| rest.first())
                .is_some_and(|&b| b < b'/');
            if still_live {
                break;
            }
            candidates.pop();
        }
        if !is_tree {
            candidates.push(name);
        }
        previous = Some((name, is_tree));
    }
    Ok(())
}
