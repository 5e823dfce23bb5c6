//! The three questions of a ref update, answered in-process over [`Objects`] (the pushed pack,
//! then the upstream's history read from its object directory), with the answers git gives in the
//! quarantine:
//!
//! - [`Local::is_ancestor`]: `git merge-base --is-ancestor old new`. The same walk as git's
//!   (`paint_down_to_common`: from both tips, newest first, down to their merge bases), so a
//!   fast-forward or an amend costs a few commits whatever the history's length. A walk longer
//!   than [`Limits::max_walk`] commits gives [`Ancestry::TooDeep`]: the caller asks git, which
//!   has commit-graphs and generation numbers for huge histories.
//! - [`Local::introduced`]: `git rev-list new --not --alternate-refs`, newest first (committer
//!   date, ties in discovery order, as rev-list orders them).
//! - [`Local::changes`]: `git diff-tree -r -c --root --no-renames` of each commit (the same
//!   tree walk as git's `ll_diff_tree_paths`: subtrees with equal ids are never read).
//!
//! # The one difference from git
//! rev-list excludes what the upstream's *refs reach*; [`Local::introduced`] excludes what the
//! upstream's *object store holds* (one lookup in its object directory). The two differ only for
//! objects the upstream holds but no ref reaches: commits of a deleted branch not yet
//! garbage-collected, or (for a mirror) of a branch deleted upstream since the mirror fetched
//! it. Such commits, pushed again, are not counted as introduced (their paths and blobs are not
//! inspected); their content was in the upstream's store already.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use crate::pack::{Kind, ObjectId};

use super::git::Change;
use super::objects::{CommitNode, Objects};
use super::InspectError;
#[cfg(doc)]
use super::Limits;

/// Whether `old` is an ancestor of `new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ancestry {
    /// It is (or they are the same commit).
    Yes,
    /// It is not.
    No,
    /// One of them (or a commit between) is unknown or not a commit: git cannot tell either.
    Unknown,
    /// The walk passed [`Limits::max_walk`] commits: ask git.
    TooDeep,
}

impl Ancestry {
    /// git's answer shape: `Some(true)` (exit 0), `Some(false)` (exit 1), `None` (error);
    /// `TooDeep` has no answer.
    #[cfg(test)]
    pub(crate) fn known(self) -> Option<Option<bool>> {
        match self {
            Ancestry::Yes => Some(Some(true)),
            Ancestry::No => Some(Some(false)),
            Ancestry::Unknown => Some(None),
            Ancestry::TooDeep => None,
        }
    }
}

/// In-process inspection over one push's objects.
#[derive(Debug)]
pub(crate) struct Local {
    objects: Objects,
}

/// Deepest directory nesting walked (real trees are far shallower; deeper ones are refused
/// rather than risking the thread's stack).
const MAX_TREE_DEPTH: usize = 256;

const PARENT1: u8 = 1;
const PARENT2: u8 = 2;
const STALE: u8 = 4;

/// A queue of commits, newest first; equal dates leave in the order they came.
struct DateQueue {
    heap: BinaryHeap<(i64, Reverse<u64>, ObjectId, bool)>,
    seq: u64,
}

impl DateQueue {
    fn new() -> Self {
        DateQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    fn push(&mut self, time: i64, id: ObjectId, mark: bool) {
        self.heap.push((time, Reverse(self.seq), id, mark));
        self.seq += 1;
    }

    fn pop(&mut self) -> Option<(ObjectId, bool)> {
        self.heap.pop().map(|(_, _, id, mark)| (id, mark))
    }
}

impl Local {
    /// Inspection over `objects`.
    pub(crate) fn new(objects: Objects) -> Local {
        Local { objects }
    }

    /// The objects read.
    pub(crate) fn objects_mut(&mut self) -> &mut Objects {
        &mut self.objects
    }

    /// Whether `old` is an ancestor of `new` (both peeled through annotated tags).
    pub(crate) fn is_ancestor(
        &mut self,
        old: &ObjectId,
        new: &ObjectId,
    ) -> Result<Ancestry, InspectError> {
        // A fast-forward: `old` is the parent of a pushed commit reachable from `new` through
        // pushed commits, usually the first one's. No history is read for this.
        if self.pack_reaches(new, old) && self.objects.peel(old)? == Some((*old, Kind::Commit)) {
            return Ok(Ancestry::Yes);
        }
        let (Some((old, Kind::Commit)), Some((new, Kind::Commit))) =
            (self.objects.peel(old)?, self.objects.peel(new)?)
        else {
            return Ok(Ancestry::Unknown);
        };
        if old == new {
            return Ok(Ancestry::Yes);
        }
        let (Some(old_node), Some(new_node)) =
            (self.objects.commit(&old)?, self.objects.commit(&new)?)
        else {
            return Ok(Ancestry::Unknown);
        };
        // git's paint_down_to_common: PARENT1 spreads from old, PARENT2 from new; a commit
        // with both is a common ancestor and everything below it is STALE. The walk ends when
        // only stale commits are queued; old is an ancestor iff it got PARENT2 on the way.
        let mut flags: HashMap<ObjectId, u8> = HashMap::new();
        let mut queue = DateQueue::new();
        flags.insert(old, PARENT1);
        flags.insert(new, PARENT2);
        queue.push(old_node.time, old, true);
        queue.push(new_node.time, new, true);
        let mut live = 2usize;
        let mut walked = 0usize;
        while live > 0 {
            let Some((id, counted)) = queue.pop() else {
                break;
            };
            if counted {
                live -= 1;
            }
            walked += 1;
            if walked > self.objects.limits().max_walk {
                return Ok(Ancestry::TooDeep);
            }
            let mut spread = flags.get(&id).copied().unwrap_or(0) & (PARENT1 | PARENT2 | STALE);
            if spread == PARENT1 | PARENT2 {
                spread |= STALE;
            }
            let Some(node) = self.objects.commit(&id)? else {
                return Ok(Ancestry::Unknown);
            };
            for parent in &node.parents {
                let have = flags.get(parent).copied().unwrap_or(0);
                if have & spread == spread {
                    continue;
                }
                let now = have | spread;
                flags.insert(*parent, now);
                if *parent == old && now & PARENT2 != 0 {
                    return Ok(Ancestry::Yes);
                }
                let Some(parent_node) = self.objects.commit(parent)? else {
                    return Ok(Ancestry::Unknown);
                };
                let counts = now & STALE == 0;
                if counts {
                    live += 1;
                }
                queue.push(parent_node.time, *parent, counts);
            }
        }
        Ok(Ancestry::No)
    }

    /// Whether `old` is a parent of a pushed commit that `new` reaches through pushed commits.
    fn pack_reaches(&self, new: &ObjectId, old: &ObjectId) -> bool {
        let mut seen = HashSet::new();
        let mut todo = vec![*new];
        while let Some(id) = todo.pop() {
            let Some(node) = self.objects.pack_commit(&id) else {
                continue;
            };
            for parent in &node.parents {
                if parent == old {
                    return true;
                }
                if seen.insert(*parent) {
                    todo.push(*parent);
                }
            }
        }
        false
    }

    /// The commits `new` reaches that the upstream does not have, newest first; more than
    /// `limit` is an error. `new` is peeled through annotated tags; a tree or blob introduces
    /// no commit.
    pub(crate) fn introduced(
        &mut self,
        new: &ObjectId,
        limit: usize,
    ) -> Result<Vec<ObjectId>, InspectError> {
        let new = match self.objects.peel(new)? {
            Some((id, Kind::Commit)) => id,
            Some(_) => return Ok(Vec::new()),
            None => {
                return Err(InspectError::MissingCommit {
                    id: new.to_string(),
                })
            }
        };
        if self.objects.pack_commit(&new).is_none() {
            // The upstream's commit: so are all its ancestors.
            return Ok(Vec::new());
        }
        // Ask the upstream about every pushed commit `new` reaches through pushed commits,
        // and their other parents, in one pipelined round.
        let mut ask = Vec::new();
        let mut seen = HashSet::new();
        let mut todo = vec![new];
        seen.insert(new);
        while let Some(id) = todo.pop() {
            ask.push(id);
            let Some(node) = self.objects.pack_commit(&id) else {
                continue;
            };
            for parent in &node.parents {
                if seen.insert(*parent) {
                    todo.push(*parent);
                }
            }
        }
        self.objects.prefetch_kinds(&ask)?;
        drop(ask);

        if self.objects.upstream_kind(&new)?.is_some() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut queued = HashSet::new();
        let mut queue = DateQueue::new();
        let time = |node: Option<&Arc<CommitNode>>| node.map_or(0, |n| n.time);
        queue.push(time(self.objects.pack_commit(&new)), new, false);
        queued.insert(new);
        while let Some((id, _)) = queue.pop() {
            if out.len() >= limit {
                return Err(InspectError::TooManyCommits { limit });
            }
            out.push(id);
            let Some(node) = self.objects.pack_commit(&id).cloned() else {
                continue;
            };
            for parent in &node.parents {
                if !queued.insert(*parent) {
                    continue;
                }
                let upstream = self.objects.upstream_kind(parent)?;
                match self.objects.pack_commit(parent).cloned() {
                    Some(_) if upstream.is_some() => {}
                    Some(parent_node) => queue.push(parent_node.time, *parent, false),
                    None if upstream == Some(Kind::Commit) => {}
                    None => {
                        return Err(InspectError::MissingCommit {
                            id: parent.to_string(),
                        })
                    }
                }
            }
        }
        Ok(out)
    }

    /// What each of `commits` changes, in order: `git diff-tree -r -c --root --no-renames`.
    pub(crate) fn changes(&mut self, commits: &[ObjectId]) -> Result<Vec<Change>, InspectError> {
        let mut out = Vec::new();
        for id in commits {
            let node = self.commit_or_missing(id)?;
            let mut parents = Vec::with_capacity(node.parents.len().max(1));
            for parent in &node.parents {
                parents.push(Some(self.commit_or_missing(parent)?.tree));
            }
            if parents.is_empty() {
                // --root: a root commit against the empty tree.
                parents.push(None);
            }
            let mut base = Vec::new();
            self.diff(Some(node.tree), &parents, &mut base, 0, &mut out)?;
        }
        Ok(out)
    }

    fn commit_or_missing(&mut self, id: &ObjectId) -> Result<Arc<CommitNode>, InspectError> {
        self.objects
            .commit(id)?
            .ok_or_else(|| InspectError::MissingCommit { id: id.to_string() })
    }

    /// git's `ll_diff_tree_paths`: the entries of tree `t` (`None`: empty) against those of
    /// every parent tree at `base`. One parent: the ordinary diff. Several (`-c`): a path is
    /// reported when it differs from every parent (a parent without it differs), and a
    /// deletion only when every parent had the path.
    fn diff(
        &mut self,
        t: Option<ObjectId>,
        parents: &[Option<ObjectId>],
        base: &mut Vec<u8>,
        depth: usize,
        out: &mut Vec<Change>,
    ) -> Result<(), InspectError> {
        if t.is_some() && parents.contains(&t) {
            // Identical to a parent: no path can differ from every parent.
            return Ok(());
        }
        if depth > MAX_TREE_DEPTH {
            return Err(InspectError::Malformed {
                id: t
                    .or(parents.iter().flatten().next().copied())
                    .map_or_else(String::new, |id| id.to_string()),
                what: "tree (nested too deeply)",
            });
        }
        let t_data = match &t {
            Some(id) => Some((*id, self.objects.tree(id)?)),
            None => None,
        };
        let mut p_data = Vec::with_capacity(parents.len());
        for parent in parents {
            p_data.push(match parent {
                Some(id) => Some((*id, self.objects.tree(id)?)),
                None => None,
            });
        }
        let t_entries = match &t_data {
            Some((id, data)) => entries(id, data)?,
            None => Vec::new(),
        };
        let mut p_entries = Vec::with_capacity(p_data.len());
        for data in &p_data {
            p_entries.push(match data {
                Some((id, data)) => entries(id, data)?,
                None => Vec::new(),
            });
        }
        let mut ti = 0usize;
        let mut pi = vec![0usize; parents.len()];
        let mut at_min = vec![false; parents.len()];
        loop {
            let te = t_entries.get(ti);
            // The smallest parent entry, and which parents are at it.
            let mut min: Option<&Entry<'_>> = None;
            for (i, list) in p_entries.iter().enumerate() {
                if let Some(e) = pi.get(i).and_then(|at| list.get(*at)) {
                    if min.is_none_or(|m| compare(e, m) == Ordering::Less) {
                        min = Some(e);
                    }
                }
            }
            for (i, list) in p_entries.iter().enumerate() {
                let here = pi.get(i).and_then(|at| list.get(*at));
                at_min[i] =
                    matches!((here, min), (Some(e), Some(m)) if compare(e, m) == Ordering::Equal);
            }
            let order = match (te, min) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(t), Some(m)) => compare(t, m),
            };
            match order {
                Ordering::Equal => {
                    let te = te.copied();
                    let same = p_entries.iter().enumerate().any(|(i, list)| {
                        at_min[i]
                            && list.get(pi[i]).is_some_and(|e| {
                                te.is_some_and(|t| t.id == e.id && t.mode == e.mode)
                            })
                    });
                    if !same {
                        let from: Vec<Option<Entry<'_>>> = self.at(&p_entries, &pi, &at_min);
                        self.emit(te, &from, min.copied(), base, depth, out)?;
                    }
                    ti += 1;
                    advance(&mut pi, &at_min);
                }
                Ordering::Less => {
                    let none = vec![None; parents.len()];
                    self.emit(te.copied(), &none, None, base, depth, out)?;
                    ti += 1;
                }
                Ordering::Greater => {
                    if at_min.iter().all(|a| *a) {
                        let from = self.at(&p_entries, &pi, &at_min);
                        self.emit(None, &from, min.copied(), base, depth, out)?;
                    }
                    advance(&mut pi, &at_min);
                }
            }
        }
        Ok(())
    }

    /// The parents' entries at the current position, for those at the smallest one.
    fn at<'a>(
        &self,
        p_entries: &[Vec<Entry<'a>>],
        pi: &[usize],
        at_min: &[bool],
    ) -> Vec<Option<Entry<'a>>> {
        p_entries
            .iter()
            .enumerate()
            .map(|(i, list)| {
                if at_min.get(i).copied().unwrap_or(false) {
                    pi.get(i).and_then(|at| list.get(*at)).copied()
                } else {
                    None
                }
            })
            .collect()
    }

    /// git's `emit_path`: a directory is walked into, anything else reported.
    fn emit(
        &mut self,
        t: Option<Entry<'_>>,
        parents: &[Option<Entry<'_>>],
        min: Option<Entry<'_>>,
        base: &mut Vec<u8>,
        depth: usize,
        out: &mut Vec<Change>,
    ) -> Result<(), InspectError> {
        let Some(named) = t.or(min) else {
            return Ok(());
        };
        let len = base.len();
        base.extend_from_slice(named.name);
        if named.mode == MODE_DIR {
            base.push(b'/');
            let sub: Vec<Option<ObjectId>> = parents.iter().map(|p| p.map(|e| e.id)).collect();
            let result = self.diff(t.map(|e| e.id), &sub, base, depth + 1, out);
            base.truncate(len);
            return result;
        }
        out.push(Change {
            path: String::from_utf8_lossy(base).into_owned(),
            new_id: t.map(|e| e.id.to_string()),
            is_blob: t.is_some_and(|e| e.mode & MODE_TYPE == MODE_FILE || e.mode == MODE_LINK),
        });
        base.truncate(len);
        Ok(())
    }
}

fn advance(pi: &mut [usize], at_min: &[bool]) {
    for (at, moved) in pi.iter_mut().zip(at_min) {
        if *moved {
            *at += 1;
        }
    }
}

const MODE_TYPE: u32 = 0o170000;
const MODE_DIR: u32 = 0o040000;
const MODE_FILE: u32 = 0o100000;
const MODE_LINK: u32 = 0o120000;
const MODE_GITLINK: u32 = 0o160000;

/// One tree entry; `mode` canonical as git reads it (`canon_mode`).
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    mode: u32,
    name: &'a [u8],
    id: ObjectId,
}

/// git's `canon_mode`: 100644 or 100755, 120000, 040000, anything else a gitlink.
fn canon_mode(mode: u32) -> u32 {
    match mode & MODE_TYPE {
        MODE_FILE => MODE_FILE | if mode & 0o100 != 0 { 0o755 } else { 0o644 },
        MODE_LINK => MODE_LINK,
        MODE_DIR => MODE_DIR,
        _ => MODE_GITLINK,
    }
}

/// The entries of a raw tree (`<octal mode> <name>\0<20-byte id>` each).
fn entries<'a>(id: &ObjectId, data: &'a [u8]) -> Result<Vec<Entry<'a>>, InspectError> {
    let bad = || InspectError::Malformed {
        id: id.to_string(),
        what: "tree",
    };
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let (mode_digits, after) = rest.split_at(space);
        let after = after.get(1..).ok_or_else(bad)?;
        let nul = after.iter().position(|b| *b == 0).ok_or_else(bad)?;
        let (name, after) = after.split_at(nul);
        let raw = after.get(1..21).ok_or_else(bad)?;
        rest = after.get(21..).ok_or_else(bad)?;
        if mode_digits.is_empty() || mode_digits.len() > 7 || name.is_empty() {
            return Err(bad());
        }
        let mut mode = 0u32;
        for d in mode_digits {
            if !(b'0'..=b'7').contains(d) {
                return Err(bad());
            }
            mode = mode * 8 + u32::from(d - b'0');
        }
        let id = ObjectId::try_from(raw).map_err(|_| bad())?;
        out.push(Entry {
            mode: canon_mode(mode),
            name,
            id,
        });
    }
    Ok(out)
}

/// git's `base_name_compare`: names byte-wise, a directory's name followed by `/`.
fn compare(a: &Entry<'_>, b: &Entry<'_>) -> Ordering {
    let len = a.name.len().min(b.name.len());
    match a.name.get(..len).cmp(&b.name.get(..len)) {
        Ordering::Equal => {}
        other => return other,
    }
    let next = |e: &Entry<'_>| match e.name.get(len) {
        Some(c) => *c,
        None if e.mode == MODE_DIR => b'/',
        None => 0,
    };
    next(a).cmp(&next(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mode: u32, name: &'static str) -> Entry<'static> {
        Entry {
            mode,
            name: name.as_bytes(),
            id: ObjectId::null(gix_hash::Kind::Sha1),
        }
    }

    #[test]
    fn orders_like_git() {
        let file = |n| entry(0o100644, n);
        let dir = |n| entry(MODE_DIR, n);
        assert_eq!(compare(&file("a"), &dir("a")), Ordering::Less);
        assert_eq!(compare(&dir("a"), &file("a.txt")), Ordering::Greater);
        assert_eq!(compare(&dir("a"), &file("ab")), Ordering::Less);
        assert_eq!(compare(&dir("a"), &dir("a")), Ordering::Equal);
        assert_eq!(compare(&file("a"), &entry(0o160000, "a")), Ordering::Equal);
    }

    #[test]
    fn canonical_modes() {
        assert_eq!(canon_mode(0o100664), 0o100644);
        assert_eq!(canon_mode(0o100775), 0o100755);
        assert_eq!(canon_mode(0o40000), MODE_DIR);
        assert_eq!(canon_mode(0o120777), MODE_LINK);
        assert_eq!(canon_mode(0o160000), MODE_GITLINK);
    }

    #[test]
    fn refuses_malformed_trees() {
        let id = ObjectId::null(gix_hash::Kind::Sha1);
        assert!(entries(&id, b"100644 a\0short").is_err());
        assert!(entries(&id, b"10x644 a\0aaaaaaaaaaaaaaaaaaaa").is_err());
        assert!(entries(&id, b"100644 \0aaaaaaaaaaaaaaaaaaaa").is_err());
        let ok = entries(
            &id,
            b"40000 d\0aaaaaaaaaaaaaaaaaaaa100755 x\0bbbbbbbbbbbbbbbbbbbb",
        )
        .expect("parses");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].mode, MODE_DIR);
        assert_eq!(ok[1].mode, 0o100755);
    }
}
