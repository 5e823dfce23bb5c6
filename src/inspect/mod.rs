//! What a push does: for each ref update its op (`create`, `update`, `force`, `delete`), the
//! commits it introduces (reachable from the new tip and from no upstream ref), the paths those
//! commits add, change or delete, and the new blobs with their paths and sizes.
//!
//! Ancestry needs the upstream's history: the pushed pack is placed in a [`Quarantine`] whose
//! alternate is the upstream's object store (the `file://` repository itself, or the mirror of
//! an HTTP upstream), so an old tip reachable only through another upstream ref is still found.
//!
//! The questions are answered in-process ([`Inspector`], `local.rs`) over the pushed pack and
//! the upstream's history read in-process from its object directory (`objects.rs`, `store.rs`); `git.rs` keeps
//! the git-process answers for what is rare or huge: an ancestry walk longer than
//! [`Limits::max_walk`] commits, and the objects a partly denied push still needs.

mod commit;
mod git;
mod local;
mod objects;
mod quarantine;
pub(crate) mod store;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub use commit::parse_commit;
pub use git::Change;
pub use quarantine::Quarantine;

use crate::config::Op;
use crate::pack::{IndexedPack, Kind, ObjectId, PackError};
use crate::policy::{BlobFacts, CommitFacts};
use crate::proto::Command;

pub(crate) use git::GitDir;

use local::{Ancestry, Local};
use objects::{parse_commit_node, CommitNode, Objects};

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
    /// A tree a commit names is neither in the pack nor in the upstream's history.
    #[error("object {id} is missing")]
    MissingObject {
        /// Its id.
        id: String,
    },
    /// An object could not be parsed.
    #[error("object {id} is not a valid {what}")]
    Malformed {
        /// Its id.
        id: String,
        /// What it should have been.
        what: &'static str,
    },
    /// Reading the upstream's history failed (an unreadable or damaged object directory).
    #[error("reading the upstream's history failed: {detail}")]
    Objects {
        /// What went wrong.
        detail: String,
    },
    /// An object to read is larger than the gateway reads.
    #[error("object {id} has {size} bytes, more than the limit of {limit}")]
    ObjectTooLarge {
        /// Its id.
        id: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Inspecting the push needs more object reads than the gateway does per push.
    #[error("inspecting the push needs more than {limit} object reads")]
    TooManyReads {
        /// The limit.
        limit: u64,
    },
}

/// Bounds on what inspecting one push reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest commit, tree or tag read from the upstream's history. Default: the pack
    /// reader's `max_object_bytes` (256 MiB).
    pub max_object_bytes: u64,
    /// Most objects read per push (pack and history, trees and commits; `info` requests
    /// count too). Default 1 000 000.
    pub max_reads: u64,
    /// Longest in-process ancestry walk (commits); a longer one is asked of git, which has
    /// commit-graphs. Default 50 000.
    pub max_walk: usize,
    /// Memory for recently read trees (a commit's tree is its child's parent tree).
    /// Default 8 MiB (the pack's own cache of decoded objects keeps the rest cheap to read
    /// again: 32 MiB made no difference on curl's 36,728 commits).
    pub tree_cache_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_bytes: crate::pack::Options::default().max_object_bytes,
            max_reads: 1_000_000,
            max_walk: 50_000,
            tree_cache_bytes: 8 << 20,
        }
    }
}

/// Facts about the pushed objects, collected in one pass over the pack.
#[derive(Debug, Default)]
pub struct PackFacts {
    /// Commits by id (hex).
    pub commits: HashMap<String, CommitFacts>,
    /// Blob sizes by id (binary ids: a long history has hundreds of thousands of blobs).
    pub blob_sizes: HashMap<ObjectId, u64>,
    /// Every commit's tree, parents and committer time.
    pub(crate) graph: HashMap<ObjectId, Arc<CommitNode>>,
    /// The pack's trees, kept while indexing up to [`PACK_TREES_BYTES`] in all: inspection
    /// reads them again and again (each commit's diff), and decoding them from the pack means
    /// resolving their delta chains each time.
    pub(crate) trees: HashMap<ObjectId, Arc<[u8]>>,
    tree_bytes: usize,
}

/// At most this many bytes of the pushed pack's trees are kept for inspection (the rest is
/// read from the pack when needed).
const PACK_TREES_BYTES: usize = 8 << 20;

impl PackFacts {
    /// Visits every object of `pack` once (blocking: run in `spawn_blocking`).
    pub fn collect(pack: &IndexedPack) -> Result<PackFacts, InspectError> {
        let mut facts = PackFacts::default();
        pack.for_each(|id, kind, data| {
            facts.add(id, kind, data)?;
            Ok::<(), InspectError>(())
        })?;
        Ok(facts)
    }

    /// Takes the facts of one object; with [`crate::pack::index_visiting`], the facts are
    /// collected while the pack is indexed instead of in a second pass.
    pub fn add(
        &mut self,
        id: crate::pack::ObjectId,
        kind: Kind,
        data: &[u8],
    ) -> Result<(), InspectError> {
        let hex = id.to_string();
        match kind {
            Kind::Commit => {
                let node = parse_commit_node(data).ok_or_else(|| InspectError::Malformed {
                    id: hex.clone(),
                    what: "commit",
                })?;
                self.graph.insert(id, Arc::new(node));
                self.commits.insert(hex.clone(), parse_commit(&hex, data));
            }
            Kind::Blob => {
                self.blob_sizes.insert(id, data.len() as u64);
            }
            Kind::Tree => {
                if self.tree_bytes.saturating_add(data.len()) <= PACK_TREES_BYTES {
                    self.tree_bytes += data.len();
                    self.trees.insert(id, Arc::from(data));
                }
            }
            Kind::Tag => {}
        }
        Ok(())
    }
}

/// What one ref update does.
#[derive(Debug, Clone, PartialEq)]
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

/// Inspects the ref updates of one push, in-process: the pushed pack, then the upstream's
/// history, read in-process from the upstream's object directory.
pub(crate) struct Inspector {
    local: Option<Box<Local>>,
    facts: Arc<PackFacts>,
    git: GitDir,
}

impl Inspector {
    /// An inspector in `quarantine`; the history is opened now. Give it the pack with
    /// [`Inspector::load`].
    pub(crate) fn new(quarantine: &Quarantine, limits: Limits) -> Inspector {
        let facts = Arc::new(PackFacts::default());
        let mut objects = Objects::new(None, facts.clone(), quarantine.history_objects(), limits);
        objects.start();
        Inspector {
            local: Some(Box::new(Local::new(objects))),
            facts,
            git: GitDir::new(quarantine.git_dir()),
        }
    }

    /// The pushed pack (none: a push without objects) and the facts collected from it.
    pub(crate) fn load(&mut self, pack: Option<Arc<IndexedPack>>, facts: PackFacts) {
        self.facts = Arc::new(facts);
        if let Some(local) = &mut self.local {
            local.objects_mut().load(pack, self.facts.clone());
        }
    }

    /// Inspects one ref update (the blocking work on a blocking thread). After a failure to
    /// read the history it is not read again: later updates of the push fail too.
    pub(crate) async fn inspect(
        &mut self,
        command: &Command,
        max_commits: usize,
    ) -> Result<UpdateFacts, InspectError> {
        let mut local = self.local.take().ok_or_else(|| InspectError::Objects {
            detail: "an earlier inspection of this push failed".into(),
        })?;
        let cmd = command.clone();
        let (local, answers) = tokio::task::spawn_blocking(move || {
            let answers = answer(&mut local, &cmd, max_commits);
            (local, answers)
        })
        .await
        .map_err(|e| InspectError::Objects {
            detail: e.to_string(),
        })?;
        self.local = Some(local);
        let (ancestry, ids, changes) = answers?;
        let op = match ancestry {
            Some(op) => op,
            None => {
                let (old, new) = (command.old.to_hex(), command.new.to_hex());
                match self.git.is_ancestor(&old, &new).await? {
                    Some(true) => Op::Update,
                    Some(false) | None => Op::Force,
                }
            }
        };
        // Long histories make this a few hundred milliseconds of work: off the async threads.
        let facts = self.facts.clone();
        tokio::task::spawn_blocking(move || {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            assemble(op, &ids, changes, &facts)
        })
        .await
        .map_err(|e| InspectError::Objects {
            detail: e.to_string(),
        })?
    }
}

/// The op (`None`: ask git), the commits introduced and their changes.
type Answers = (Option<Op>, Vec<ObjectId>, Vec<Change>);

fn answer(
    local: &mut Local,
    command: &Command,
    max_commits: usize,
) -> Result<Answers, InspectError> {
    if command.is_delete() {
        return Ok((Some(Op::Delete), Vec::new(), Vec::new()));
    }
    let new = object_id(&command.new)?;
    // Introduced first: it asks the history about the pushed commits and their parents in
    // one round, which usually answers the ancestry question too.
    let ids = local.introduced(&new, max_commits)?;
    let op = if command.is_create() {
        Some(Op::Create)
    } else {
        match local.is_ancestor(&object_id(&command.old)?, &new)? {
            Ancestry::Yes => Some(Op::Update),
            // Unknown old (the upstream does not have it): not provably a fast-forward.
            Ancestry::No | Ancestry::Unknown => Some(Op::Force),
            Ancestry::TooDeep => None,
        }
    };
    let changes = local.changes(&ids)?;
    Ok((op, ids, changes))
}

/// A command's id as the pack layer's (SHA-1 only, like the pack reader).
fn object_id(id: &crate::proto::ObjectId) -> Result<ObjectId, InspectError> {
    ObjectId::try_from(id.as_bytes()).map_err(|_| InspectError::Malformed {
        id: id.to_hex(),
        what: "SHA-1 object id",
    })
}

/// Puts together what one update does from its op, the commits it introduces (newest first)
/// and their changes.
fn assemble(
    op: Op,
    ids: &[String],
    changes: Vec<Change>,
    pack: &PackFacts,
) -> Result<UpdateFacts, InspectError> {
    if op == Op::Delete {
        return Ok(UpdateFacts {
            op,
            commits: Vec::new(),
            paths: Vec::new(),
            blobs: Vec::new(),
        });
    }
    let mut commits = Vec::with_capacity(ids.len());
    for id in ids {
        let facts = match pack.commits.get(id) {
            Some(f) => f.clone(),
            None => return Err(InspectError::MissingCommit { id: id.clone() }),
        };
        commits.push(facts);
    }
    let mut paths = BTreeSet::new();
    let mut blobs = Vec::new();
    for change in changes {
        if let (true, Some(id)) = (change.is_blob, &change.new_id) {
            let size = ObjectId::from_hex(id.as_bytes())
                .ok()
                .and_then(|oid| pack.blob_sizes.get(&oid));
            if let Some(size) = size {
                blobs.push(NewBlob {
                    path: change.path.clone(),
                    id: id.clone(),
                    size: *size,
                });
            }
        }
        paths.insert(change.path);
    }
    first_of_each(&mut blobs);
    Ok(UpdateFacts {
        op,
        commits,
        paths: paths.into_iter().collect(),
        blobs,
    })
}

/// Keeps the first of the blobs with the same path and id, in order (without a set of copies
/// of every path and id: a long history brings over a hundred thousand).
fn first_of_each(blobs: &mut Vec<NewBlob>) {
    let mut order: Vec<usize> = (0..blobs.len()).collect();
    let key = |i: usize| blobs.get(i).map(|b| (&b.path, &b.id));
    order.sort_by(|&a, &b| (key(a), a).cmp(&(key(b), b)));
    let mut keep = vec![true; blobs.len()];
    for pair in order.windows(2) {
        if let [before, at] = *pair {
            if key(before) == key(at) {
                if let Some(k) = keep.get_mut(at) {
                    *k = false;
                }
            }
        }
    }
    let mut keep = keep.into_iter();
    blobs.retain(|_| keep.next().unwrap_or(true));
}

/// Inspects one ref update with git processes in the quarantine (the reference the in-process
/// answers are tested against).
#[cfg(test)]
pub(crate) async fn inspect_update_with_git(
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
            Some(false) | None => Op::Force,
        }
    };
    if op == Op::Delete {
        return assemble(op, &[], Vec::new(), pack);
    }
    let ids = quarantine.introduced(&new, max_commits).await?;
    let changes = quarantine.changes(&ids).await?;
    assemble(op, &ids, changes, pack)
}
