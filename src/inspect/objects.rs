//! The objects one push's inspection reads: the pushed pack first (already indexed, its commits
//! already parsed into [`PackFacts`]), then the upstream's history, read in-process from the
//! upstream's object directory ([`ObjectStore`]: the mirror's, or a `file://` upstream's).
//!
//! The history is the upstream's object directory alone: it holds exactly what the upstream
//! already has, never the pushed pack, so "does the upstream have X" is one lookup. A missing
//! object is never fetched (a blob-less mirror lacks blobs by design).
//!
//! Only commits, trees and tags are read (blob sizes come from the pack). Reads are bounded:
//! objects larger than [`Limits::max_object_bytes`] and more than [`Limits::max_reads`] reads
//! per push are errors. A missing object is `None`; an unreadable object directory is an
//! error, and an error denies the update (fail closed).
//!
//! Blocking: run it on a blocking thread (`spawn_blocking`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::pack::{IndexedPack, Kind, ObjectId};

use super::store::ObjectStore;
use super::{InspectError, Limits, PackFacts};

/// Kinds asked for at once (each counts as one read).
const INFO_BATCH: usize = 256;
/// Annotated tags peeled in a row before giving up (git itself has no limit).
const MAX_PEEL: usize = 64;

/// A commit's links: its tree, its parents (in order) and its committer time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitNode {
    /// The root tree.
    pub(crate) tree: ObjectId,
    /// The parents, in the order the commit lists them.
    pub(crate) parents: Vec<ObjectId>,
    /// Committer time (seconds since the epoch; 0 when unreadable, as git reads it).
    pub(crate) time: i64,
}

/// Parses a commit's `tree`, `parent` and `committer` headers; `None` if the tree or a parent
/// is not a full hex id.
pub(crate) fn parse_commit_node(data: &[u8]) -> Option<CommitNode> {
    let mut tree = None;
    let mut parents = Vec::new();
    let mut time = 0;
    for line in data.split(|b| *b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(hex) = line.strip_prefix(b"tree ") {
            tree = Some(ObjectId::from_hex(hex).ok()?);
        } else if let Some(hex) = line.strip_prefix(b"parent ") {
            parents.push(ObjectId::from_hex(hex).ok()?);
        } else if let Some(ident) = line.strip_prefix(b"committer ") {
            time = ident_time(ident);
        }
    }
    Some(CommitNode {
        tree: tree?,
        parents,
        time,
    })
}

/// The time of an ident (`Name <email> 1700000000 +0000`): the number after the last `>`.
fn ident_time(ident: &[u8]) -> i64 {
    let after = match ident.iter().rposition(|b| *b == b'>') {
        Some(at) => ident.get(at + 1..).unwrap_or_default(),
        None => return 0,
    };
    let digits: Vec<u8> = after
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The `object` header of an annotated tag.
fn tag_target(data: &[u8]) -> Option<ObjectId> {
    data.split(|b| *b == b'\n')
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(b"object "))
        .and_then(|hex| ObjectId::from_hex(hex).ok())
}

/// The pushed pack and the upstream's history, read for one push.
pub(crate) struct Objects {
    pack: Option<Arc<IndexedPack>>,
    facts: Arc<PackFacts>,
    history_objects: PathBuf,
    limits: Limits,
    store: Option<ObjectStore>,
    /// Set when reading the history failed: no further answer is trusted.
    broken: bool,
    reads: u64,
    /// What the upstream has: its kind, or `None` if it lacks the object.
    kinds: HashMap<ObjectId, Option<Kind>>,
    commits: HashMap<ObjectId, Option<Arc<CommitNode>>>,
    /// Trees read from the pack or the history, in two generations: new ones go to `trees`;
    /// when that holds half of [`Limits::tree_cache_bytes`] it becomes `old_trees` (a tree
    /// found there moves back), and the previous old ones are dropped.
    trees: HashMap<ObjectId, Arc<[u8]>>,
    old_trees: HashMap<ObjectId, Arc<[u8]>>,
    tree_bytes: usize,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects")
            .field("history_objects", &self.history_objects)
            .field("reads", &self.reads)
            .finish_non_exhaustive()
    }
}

impl Objects {
    /// Objects of `pack` (with its `facts`) over the history in the object directory
    /// `history_objects`, opened with [`Objects::start`] or on the first upstream read.
    pub(crate) fn new(
        pack: Option<Arc<IndexedPack>>,
        facts: Arc<PackFacts>,
        history_objects: &Path,
        limits: Limits,
    ) -> Objects {
        Objects {
            pack,
            facts,
            history_objects: history_objects.to_path_buf(),
            limits,
            store: None,
            broken: false,
            reads: 0,
            kinds: HashMap::new(),
            commits: HashMap::new(),
            trees: HashMap::new(),
            old_trees: HashMap::new(),
            tree_bytes: 0,
            buf: Vec::new(),
        }
    }

    /// Opens the history now rather than on the first read. A failure is reported by the
    /// first read.
    pub(crate) fn start(&mut self) {
        if self.store.is_none() && !self.broken {
            self.store =
                ObjectStore::open(&self.history_objects, self.limits.max_object_bytes).ok();
        }
    }

    /// Sets the pushed pack and its facts (before any read).
    pub(crate) fn load(&mut self, pack: Option<Arc<IndexedPack>>, facts: Arc<PackFacts>) {
        self.pack = pack;
        self.facts = facts;
        self.commits.clear();
        self.trees.clear();
        self.old_trees.clear();
        self.tree_bytes = 0;
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A commit of the pushed pack, already parsed.
    pub(crate) fn pack_commit(&self, id: &ObjectId) -> Option<&Arc<CommitNode>> {
        self.facts.graph.get(id)
    }

    /// Whether `id` is a blob of the pushed pack (known without decoding it).
    fn pack_blob(&self, id: &ObjectId) -> bool {
        self.facts.blob_sizes.contains_key(id)
    }

    /// Whether the pushed pack holds `id`.
    pub(crate) fn in_pack(&self, id: &ObjectId) -> bool {
        self.facts.graph.contains_key(id) || self.pack.as_ref().is_some_and(|p| p.contains(id))
    }

    fn count(&mut self, n: usize) -> Result<(), InspectError> {
        self.reads = self.reads.saturating_add(n as u64);
        if self.reads > self.limits.max_reads {
            return Err(InspectError::TooManyReads {
                limit: self.limits.max_reads,
            });
        }
        Ok(())
    }

    /// Asks the upstream about all of `ids` at once (pipelined), filling the cache that
    /// [`Objects::upstream_kind`] answers from.
    pub(crate) fn prefetch_kinds(&mut self, ids: &[ObjectId]) -> Result<(), InspectError> {
        let mut todo: Vec<ObjectId> = ids
            .iter()
            .filter(|id| !self.kinds.contains_key(*id))
            .copied()
            .collect();
        todo.sort_unstable();
        todo.dedup();
        for chunk in todo.chunks(INFO_BATCH) {
            self.count(chunk.len())?;
            let answers = self.store()?.info(chunk);
            let answers = self.check(answers)?;
            for (id, kind) in chunk.iter().zip(answers) {
                self.kinds.insert(*id, kind);
            }
        }
        Ok(())
    }

    /// The kind of `id` in the upstream's history, `None` if the upstream lacks it.
    pub(crate) fn upstream_kind(&mut self, id: &ObjectId) -> Result<Option<Kind>, InspectError> {
        if let Some(kind) = self.kinds.get(id) {
            return Ok(*kind);
        }
        self.prefetch_kinds(std::slice::from_ref(id))?;
        Ok(self.kinds.get(id).copied().flatten())
    }

    /// A commit, from the pack or the history; `None` if neither has it as a commit.
    pub(crate) fn commit(
        &mut self,
        id: &ObjectId,
    ) -> Result<Option<Arc<CommitNode>>, InspectError> {
        if let Some(node) = self.facts.graph.get(id) {
            return Ok(Some(node.clone()));
        }
        if let Some(node) = self.commits.get(id) {
            return Ok(node.clone());
        }
        let node = match self.read_upstream(id)? {
            Some(Kind::Commit) => {
                Some(Arc::new(parse_commit_node(&self.buf).ok_or_else(|| {
                    InspectError::Malformed {
                        id: id.to_string(),
                        what: "commit",
                    }
                })?))
            }
            // In the pack as something else, or nowhere.
            _ => None,
        };
        self.commits.insert(*id, node.clone());
        Ok(node)
    }

    /// A tree's raw entries, from the pack or the history. Missing is an error: the commits
    /// that name it are in hand.
    pub(crate) fn tree(&mut self, id: &ObjectId) -> Result<Arc<[u8]>, InspectError> {
        if let Some(tree) = self.facts.trees.get(id).or_else(|| self.trees.get(id)) {
            return Ok(tree.clone());
        }
        if let Some(tree) = self.old_trees.remove(id) {
            self.keep_tree(*id, tree.clone());
            return Ok(tree);
        }
        let kind = if self.pack_blob(id) {
            Some(Kind::Blob)
        } else {
            match self.read_pack(id)? {
                Some(kind) => Some(kind),
                None => self.read_upstream(id)?,
            }
        };
        match kind {
            Some(Kind::Tree) => {}
            Some(_) => {
                return Err(InspectError::Malformed {
                    id: id.to_string(),
                    what: "tree (another kind of object)",
                })
            }
            None => return Err(InspectError::MissingObject { id: id.to_string() }),
        }
        let tree: Arc<[u8]> = Arc::from(self.buf.as_slice());
        self.keep_tree(*id, tree.clone());
        Ok(tree)
    }

    fn keep_tree(&mut self, id: ObjectId, tree: Arc<[u8]>) {
        self.tree_bytes += tree.len();
        self.trees.insert(id, tree);
        if self.tree_bytes > self.limits.tree_cache_bytes / 2 {
            self.old_trees = std::mem::take(&mut self.trees);
            self.tree_bytes = 0;
        }
    }

    /// Follows annotated tags from `id` to the object they finally name: that object and its
    /// kind, or `None` if an object on the way is missing.
    pub(crate) fn peel(&mut self, id: &ObjectId) -> Result<Option<(ObjectId, Kind)>, InspectError> {
        let mut id = *id;
        for _ in 0..MAX_PEEL {
            if self.facts.graph.contains_key(&id) {
                return Ok(Some((id, Kind::Commit)));
            }
            if self.pack_blob(&id) {
                return Ok(Some((id, Kind::Blob)));
            }
            let kind = if self.in_pack(&id) {
                self.read_pack(&id)?
            } else {
                match self.upstream_kind(&id)? {
                    Some(Kind::Tag) => self.read_upstream(&id)?,
                    other => other,
                }
            };
            match kind {
                None => return Ok(None),
                Some(Kind::Tag) => {
                    id = tag_target(&self.buf).ok_or_else(|| InspectError::Malformed {
                        id: id.to_string(),
                        what: "tag",
                    })?;
                }
                Some(kind) => return Ok(Some((id, kind))),
            }
        }
        Err(InspectError::Malformed {
            id: id.to_string(),
            what: "tag chain (too long)",
        })
    }

    /// Decodes `id` from the pack into `self.buf`.
    fn read_pack(&mut self, id: &ObjectId) -> Result<Option<Kind>, InspectError> {
        let Some(pack) = self.pack.clone() else {
            return Ok(None);
        };
        if !pack.contains(id) {
            return Ok(None);
        }
        self.count(1)?;
        Ok(pack.find(id, &mut self.buf)?)
    }

    /// Reads `id` from the history into `self.buf`.
    fn read_upstream(&mut self, id: &ObjectId) -> Result<Option<Kind>, InspectError> {
        if self.kinds.get(id).is_some_and(Option::is_none) {
            return Ok(None);
        }
        self.count(1)?;
        let max = self.limits.max_object_bytes;
        let mut buf = std::mem::take(&mut self.buf);
        let read = self
            .store()
            .and_then(|store| store.contents(id, max, &mut buf));
        self.buf = buf;
        let kind = self.check(read)?;
        self.kinds.insert(*id, kind);
        Ok(kind)
    }

    fn store(&mut self) -> Result<&mut ObjectStore, InspectError> {
        if self.broken {
            return Err(InspectError::Objects {
                detail: "reading the upstream's history failed earlier".into(),
            });
        }
        if self.store.is_none() {
            let store = ObjectStore::open(&self.history_objects, self.limits.max_object_bytes);
            self.store = Some(self.check(store)?);
        }
        self.store.as_mut().ok_or_else(|| InspectError::Objects {
            detail: "the upstream's history is not open".into(),
        })
    }

    /// After an error reading the history, trust nothing more from it.
    fn check<T>(&mut self, result: Result<T, InspectError>) -> Result<T, InspectError> {
        if result.is_err() {
            self.broken = true;
            self.store = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commit_links() {
        let t = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        let p = "a".repeat(40);
        let q = "b".repeat(40);
        let data = format!(
            "tree {t}\nparent {p}\nparent {q}\nauthor A <a@x> 5 +0000\ncommitter C <c@x> 1700000000 +0100\n\nparent {t}\n"
        );
        let node = parse_commit_node(data.as_bytes()).expect("parses");
        assert_eq!(node.tree.to_string(), t);
        assert_eq!(node.parents.len(), 2, "the message is not a header");
        assert_eq!(node.parents[1].to_string(), q);
        assert_eq!(node.time, 1_700_000_000);
        assert!(parse_commit_node(b"parent x\n").is_none());
        assert!(parse_commit_node(format!("tree {t}\nparent zz\n").as_bytes()).is_none());
        assert_eq!(ident_time(b"odd"), 0);
        assert_eq!(ident_time(b"C <c> x"), 0);
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        crate::test_git::git_text(dir, args)
    }

    #[test]
    fn reads_the_history_and_fails_closed_when_it_is_unreadable() {
        let tmp = tempfile::tempdir().expect("tempdir");
        git(tmp.path(), &["init", "-q", "--bare", "h.git"]);
        let h = tmp.path().join("h.git");
        let empty = git(&h, &["mktree"]);
        let quarantine =
            super::super::Quarantine::create(&tmp.path().join("q"), &h).expect("quarantine");
        let mut objects = Objects::new(
            None,
            Arc::new(PackFacts::default()),
            quarantine.history_objects(),
            Limits::default(),
        );
        let empty = ObjectId::from_hex(empty.as_bytes()).expect("id");
        assert_eq!(objects.tree(&empty).expect("read").len(), 0);
        assert_eq!(
            objects.upstream_kind(&empty).expect("info"),
            Some(Kind::Tree)
        );
        let absent = ObjectId::from_hex(&[b'1'; 40]).expect("id");
        assert_eq!(objects.upstream_kind(&absent).expect("info"), None);
        assert_eq!(objects.commit(&absent).expect("read"), None);
        assert!(matches!(
            objects.tree(&absent),
            Err(InspectError::MissingObject { .. })
        ));

        // A commit whose loose object is damaged: that read is an error, and so is every
        // later one, even of objects that are fine.
        let commit = git(&h, &["commit-tree", "-m", "m", &empty.to_string()]);
        let loose = h.join("objects").join(&commit[..2]).join(&commit[2..]);
        let mut perms = std::fs::metadata(&loose).expect("loose").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&loose, perms).expect("writable");
        std::fs::write(&loose, b"not zlib").expect("damage");
        let commit = ObjectId::from_hex(commit.as_bytes()).expect("id");
        assert!(matches!(
            objects.commit(&commit),
            Err(InspectError::Objects { .. })
        ));
        assert!(objects.tree(&empty).is_ok(), "cached before the failure");
        assert!(objects
            .upstream_kind(&ObjectId::from_hex(&[b'3'; 40]).expect("id"))
            .is_err());
    }

    #[test]
    fn reads_tag_targets() {
        let t = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        let data = format!(
            "object {t}\ntype tree\ntag v\n\nobject {}\n",
            "a".repeat(40)
        );
        assert_eq!(
            tag_target(data.as_bytes()).map(|i| i.to_string()),
            Some(t.to_string())
        );
        assert_eq!(tag_target(b"type tree\n"), None);
    }
}
