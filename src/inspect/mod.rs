//! What a push does: for each ref update its op (`create`, `update`, `force`, `delete`), the
//! commits it introduces (reachable from the new tip and from no upstream ref), the paths those
//! commits add, change or delete, and the new blobs with their paths and sizes.
//!
//! Ancestry needs the upstream's history: the pushed pack is placed in a [`Quarantine`] whose
//! alternate is the upstream's object store (the `file://` repository itself, or the mirror of
//! an HTTP upstream), so an old tip reachable only through another upstream ref is still found.

mod commit;
mod git;
mod quarantine;

use std::collections::{BTreeSet, HashMap};

pub use commit::parse_commit;
pub use git::Change;
pub use quarantine::Quarantine;

use crate::config::Op;
use crate::pack::{IndexedPack, Kind, PackError};
use crate::policy::{BlobFacts, CommitFacts};
use crate::proto::Command;

pub(crate) use git::GitDir;

/// Inspection failed; the push is refused (fail closed).
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// A git query in the quarantine failed.
    #[error("git {what} failed: {detail}")]
    Git {
        /// Which git command.
        what: String,
        /// Its last error line.
        detail: String,
    },
    /// The pack could not be read while collecting facts.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// An update introduces more commits than the gateway inspects.
    #[error("the push introduces more than {limit} commits")]
    TooManyCommits {
        /// The limit.
        limit: usize,
    },
    /// An introduced commit is neither in the pack nor readable upstream.
    #[error("commit {id} is missing")]
    MissingCommit {
        /// Its id.
        id: String,
    },
}

/// Facts about the pushed objects, collected in one pass over the pack.
#[derive(Debug, Default)]
pub struct PackFacts {
    /// Commits by id (hex).
    pub commits: HashMap<String, CommitFacts>,
    /// Blob sizes by id (hex).
    pub blob_sizes: HashMap<String, u64>,
}

impl PackFacts {
    /// Visits every object of `pack` once (blocking: run in `spawn_blocking`).
    pub fn collect(pack: &IndexedPack) -> Result<PackFacts, InspectError> {
        let mut facts = PackFacts::default();
        pack.for_each(|id, kind, data| {
            facts.add(id, kind, data);
            Ok::<(), InspectError>(())
        })?;
        Ok(facts)
    }

    /// Takes the facts of one object; with [`crate::pack::index_visiting`], the facts are
    /// collected while the pack is indexed instead of in a second pass.
    pub fn add(&mut self, id: crate::pack::ObjectId, kind: Kind, data: &[u8]) {
        let hex = id.to_string();
        match kind {
            Kind::Commit => {
                self.commits.insert(hex.clone(), parse_commit(&hex, data));
            }
            Kind::Blob => {
                self.blob_sizes.insert(hex, data.len() as u64);
            }
            Kind::Tree | Kind::Tag => {}
        }
    }
}

/// What one ref update does.
#[derive(Debug, Clone)]
pub struct UpdateFacts {
    /// The op, from the upstream's history.
    pub op: Op,
    /// The commits it introduces, newest first.
    pub commits: Vec<CommitFacts>,
    /// Paths added, changed or deleted by those commits, sorted, deduplicated.
    pub paths: Vec<String>,
    /// New blobs (in the pack) at those paths.
    pub blobs: Vec<NewBlob>,
}

/// A blob the push brings, at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlob {
    /// The path it appears at.
    pub path: String,
    /// Its id (hex).
    pub id: String,
    /// Its size in bytes.
    pub size: u64,
}

impl UpdateFacts {
    /// The blob facts the policy needs.
    pub fn blob_facts(&self) -> Vec<BlobFacts> {
        self.blobs
            .iter()
            .map(|b| BlobFacts {
                path: b.path.clone(),
                size: b.size,
            })
            .collect()
    }
}

/// Inspects one ref update against the quarantine.
pub(crate) async fn inspect_update(
    quarantine: &GitDir,
    command: &Command,
    pack: &PackFacts,
    max_commits: usize,
) -> Result<UpdateFacts, InspectError> {
    let old = command.old.to_hex();
    let new = command.new.to_hex();
    let op = if command.is_delete() {
        Op::Delete
    } else if command.is_create() {
        Op::Create
    } else {
        match quarantine.is_ancestor(&old, &new).await? {
            Some(true) => Op::Update,
            // Unknown old (the upstream does not have it): not provably a fast-forward.
            Some(false) | None => Op::Force,
        }
    };
    if op == Op::Delete {
        return Ok(UpdateFacts {
            op,
            commits: Vec::new(),
            paths: Vec::new(),
            blobs: Vec::new(),
        });
    }
    let ids = quarantine.introduced(&new, max_commits).await?;
    let mut commits = Vec::with_capacity(ids.len());
    for id in &ids {
        let facts = match pack.commits.get(id) {
            Some(f) => f.clone(),
            None => return Err(InspectError::MissingCommit { id: id.clone() }),
        };
        commits.push(facts);
    }
    let changes = quarantine.changes(&ids).await?;
    let mut paths = BTreeSet::new();
    let mut blobs = Vec::new();
    let mut seen = BTreeSet::new();
    for change in changes {
        if let (true, Some(id)) = (change.is_blob, &change.new_id) {
            if let Some(size) = pack.blob_sizes.get(id) {
                if seen.insert((change.path.clone(), id.clone())) {
                    blobs.push(NewBlob {
                        path: change.path.clone(),
                        id: id.clone(),
                        size: *size,
                    });
                }
            }
        }
        paths.insert(change.path);
    }
    Ok(UpdateFacts {
        op,
        commits,
        paths: paths.into_iter().collect(),
        blobs,
    })
}
