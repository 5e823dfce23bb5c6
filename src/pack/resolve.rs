//! Resolving every entry of a pack once, depth-first through its delta tree, reading with `pread`.
//!
//! The [`Table`] lists the entries in pack order with their base; children are grouped by base.
//! From each full object, its deltas are resolved while it is in memory, then their deltas, and so
//! on: one inflate per entry, one delta application per delta. A base is kept only while its
//! children are resolved, and leaves the stack when its last child is being resolved, so memory is
//! the bases on the current path that still have other children (at most
//! [`Options::max_delta_depth`] objects; for the chains of single deltas git mostly writes, one)
//! plus the delta being applied.
//!
//! With several threads, each takes full objects in turn (a shared counter over the table) and
//! resolves the tree below each with its own buffers; see [`traverse`].
//!
//! Ref-deltas name their base by id. While indexing, ids exist only once objects are hashed, so a
//! ref-delta waits until an object with its base id is resolved and is then resolved as its child
//! (wherever the base is in the pack), by the thread that resolved the base. Whatever still waits
//! at the end has no base in the pack.
//!
//! [`Options::max_delta_depth`]: crate::pack::Options::max_delta_depth

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use gix_hash::ObjectId;

use crate::pack::delta;
use crate::pack::entries::Spill;
use crate::pack::read::{Inflater, PackFile};
use crate::pack::{Kind, PackError};

/// Where an entry's content comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Parent {
    /// A full object of this kind.
    Root(Kind),
    /// A delta against the entry at this position of the table.
    Node(u32),
    /// A ref-delta against the id at this position of [`Table::ref_ids`], not yet located.
    Ref(u32),
}

/// One entry of the pack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    /// Where the entry starts.
    pub(crate) offset: u64,
    /// Inflated size (of the object, or of the delta instructions).
    pub(crate) size: u64,
    /// CRC-32 of the raw entry, for the `.idx` (0 when not known).
    pub(crate) crc32: u32,
    /// Length of the entry header.
    pub(crate) header_len: u8,
    /// Its base.
    pub(crate) parent: Parent,
}

/// The entries of a pack in pack order (ascending offsets).
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub(crate) nodes: Vec<Node>,
    pub(crate) ref_ids: Vec<ObjectId>,
    /// What pass 1 inflated, when it kept it: entries read from here are not inflated again.
    pub(crate) spill: Option<Spill>,
}

impl Table {
    /// Position of the entry starting at `offset`.
    pub(crate) fn position(&self, offset: u64) -> Option<u32> {
        let i = self
            .nodes
            .binary_search_by_key(&offset, |n| n.offset)
            .ok()?;
        u32::try_from(i).ok()
    }

    /// Appends an entry; offsets must ascend.
    pub(crate) fn push(&mut self, node: Node) {
        self.nodes.push(node);
    }

    /// Appends a ref-delta's base id, returning the [`Parent::Ref`] naming it.
    pub(crate) fn ref_parent(&mut self, id: ObjectId) -> Parent {
        let at = u32::try_from(self.ref_ids.len()).unwrap_or(u32::MAX);
        self.ref_ids.push(id);
        Parent::Ref(at)
    }

    /// The inflated bytes of entry `i` (of `size` bytes), from the spill or the pack.
    fn load(
        &self,
        i: u32,
        size: u64,
        pack: &PackFile,
        out: &mut Vec<u8>,
        inflater: &mut Inflater,
    ) -> Result<(), PackError> {
        if self.spill.as_ref().is_some_and(|s| s.read(i, size, out)) {
            return Ok(());
        }
        let (start, end) = self.stream(i, pack.data_end()).ok_or_else(bad_table)?;
        pack.inflate(start, end, size, out, inflater)
    }

    /// Where the zlib stream of entry `i` starts and where the entry ends.
    fn stream(&self, i: u32, data_end: u64) -> Option<(u64, u64)> {
        let node = self.nodes.get(i as usize)?;
        let end = self
            .nodes
            .get(i as usize + 1)
            .map_or(data_end, |next| next.offset);
        Some((node.offset + u64::from(node.header_len), end))
    }
}

/// Limits checked while resolving.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_object_bytes: u64,
    pub(crate) max_delta_depth: u32,
    pub(crate) deadline: Option<(Instant, Duration)>,
}

impl Limits {
    fn check_time(&self) -> Result<(), PackError> {
        match self.deadline {
            Some((at, limit)) if Instant::now() > at => Err(PackError::TimeLimitExceeded { limit }),
            _ => Ok(()),
        }
    }
}

/// Why a traversal stopped early.
#[derive(Debug)]
pub(crate) enum Stop<E> {
    /// The visitor returned this error.
    Visitor(E),
    /// The pack could not be resolved.
    Pack(PackError),
}

impl<E> From<PackError> for Stop<E> {
    fn from(err: PackError) -> Self {
        Stop::Pack(err)
    }
}

/// What happens with each resolved object. Called from every resolving thread at once.
pub(crate) trait Sink: Sync {
    /// The visitor's error.
    type Error: Send;
    /// Takes the object of entry `node` (made by `delta`, when it is one: its base's entry and
    /// the delta's instructions); pushes onto `waiting` the entries (ref-deltas) that become its
    /// children now that its id is known.
    fn object(
        &self,
        node: u32,
        kind: Kind,
        data: &[u8],
        delta: Option<(u32, &[u8])>,
        waiting: &mut Vec<u32>,
    ) -> Result<(), Stop<Self::Error>>;
}

/// A base on the stack with the children still to resolve.
struct Frame {
    /// Its entry.
    node: u32,
    kind: Kind,
    /// 0 for a full object, 1 for a delta against one, and so on.
    depth: u32,
    data: Vec<u8>,
    next: usize,
    end: usize,
    waiting: Vec<u32>,
}

/// Buffers of at most this capacity are reused; bigger ones are freed at once.
const RECYCLE_LIMIT: usize = 4 << 20;

/// The delta tree: the children of every entry, grouped by base in pack order.
struct Tree<'a> {
    table: &'a Table,
    /// `children[starts[i]..starts[i + 1]]` are the ofs-deltas (and located ref-deltas) of entry `i`.
    starts: Vec<u32>,
    children: Vec<u32>,
    limits: Limits,
}

/// What the resolving threads share: the next root to take, and the first error.
struct Shared<E> {
    next_root: AtomicUsize,
    stop: AtomicBool,
    error: Mutex<Option<Stop<E>>>,
}

impl<E> Shared<E> {
    /// Keeps the first error and tells every thread to stop.
    fn fail(&self, err: Stop<E>) {
        let mut slot = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(err);
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Resolves every entry reachable from a full object, calling `sink` for each, bases before their
/// deltas. Entries whose base never appears (ref-deltas) are not resolved; the caller checks.
///
/// With `threads` above 1, that many threads (the calling one among them) take the full objects
/// in turn, each resolving the whole delta tree below the one it took, with its own buffers (the
/// memory bound above holds per thread). The order of `sink` calls across trees is then not
/// deterministic; a base still comes before its deltas. The first error (from the pack or the
/// sink) stops every thread before its next object and is returned; with several errors in one
/// pack, which one comes first may vary.
pub(crate) fn traverse<S: Sink>(
    table: &Table,
    pack: &PackFile,
    limits: Limits,
    threads: usize,
    sink: &S,
) -> Result<(), Stop<S::Error>> {
    let count = table.nodes.len();
    // Children by base, in pack order (counting sort into one array).
    let mut starts = vec![0u32; count + 1];
    let mut roots = 0usize;
    for node in &table.nodes {
        match node.parent {
            Parent::Node(base) => {
                if let Some(s) = starts.get_mut(base as usize + 1) {
                    *s += 1;
                }
            }
            Parent::Root(_) => roots += 1,
            Parent::Ref(_) => {}
        }
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut fill = starts.clone();
    let mut children = vec![0u32; starts.last().copied().unwrap_or(0) as usize];
    for (i, node) in table.nodes.iter().enumerate() {
        if let Parent::Node(base) = node.parent {
            let slot = fill.get_mut(base as usize).ok_or_else(bad_table)?;
            *children.get_mut(*slot as usize).ok_or_else(bad_table)? = i as u32;
            *slot += 1;
        }
    }
    drop(fill);
    let tree = Tree {
        table,
        starts,
        children,
        limits,
    };
    let shared = Shared {
        next_root: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        error: Mutex::new(None),
    };
    let work = || {
        if let Err(err) = resolve_roots(&tree, pack, sink, &shared) {
            shared.fail(err);
        }
    };
    let threads = threads.min(roots).max(1);
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for i in 1..threads {
                // A thread that cannot be started leaves its share to the others.
                let _ = std::thread::Builder::new()
                    .name(format!("pack-resolve-{i}"))
                    .spawn_scoped(scope, work);
            }
            work();
        });
    }
    match shared
        .error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// One thread's share: takes full objects until none is left (or another thread failed) and
/// resolves the delta tree below each, depth-first.
fn resolve_roots<S: Sink>(
    tree: &Tree<'_>,
    pack: &PackFile,
    sink: &S,
    shared: &Shared<S::Error>,
) -> Result<(), Stop<S::Error>> {
    let Tree {
        table,
        starts,
        children,
        limits,
    } = tree;
    let limits = *limits;
    let mut inflater = Inflater::default();
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut delta_buf = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        if shared.stopped() {
            return Ok(());
        }
        let root = shared.next_root.fetch_add(1, Ordering::Relaxed);
        let Some(node) = table.nodes.get(root) else {
            return Ok(());
        };
        let Parent::Root(kind) = node.parent else {
            continue;
        };
        limits.check_time()?;
        let root = root as u32;
        let mut data = spare.pop().unwrap_or_default();
        table.load(root, node.size, pack, &mut data, &mut inflater)?;
        enter(
            root, kind, 0, data, None, starts, sink, &mut stack, &mut spare,
        )?;
        while let Some(top) = stack.last_mut() {
            let child = if top.next < top.end {
                let child = children.get(top.next).copied().ok_or_else(bad_table)?;
                top.next += 1;
                child
            } else if let Some(child) = top.waiting.pop() {
                child
            } else {
                if let Some(frame) = stack.pop() {
                    recycle(&mut spare, frame.data);
                }
                continue;
            };
            let depth = top.depth + 1;
            let kind = top.kind;
            let base_node = top.node;
            // Its last child: the base is taken off the stack now, so a chain of single deltas
            // (what git writes most) holds one base at a time, not the whole chain.
            let last = top.next >= top.end && top.waiting.is_empty();
            let base = if last {
                stack.pop().map(|frame| frame.data).ok_or_else(bad_table)?
            } else {
                Vec::new()
            };
            if shared.stopped() {
                return Ok(());
            }
            limits.check_time()?;
            let node = table.nodes.get(child as usize).ok_or_else(bad_table)?;
            if depth > limits.max_delta_depth {
                return Err(Stop::Pack(PackError::DeltaChainTooDeep {
                    offset: node.offset,
                    depth,
                    limit: limits.max_delta_depth,
                }));
            }
            table.load(child, node.size, pack, &mut delta_buf, &mut inflater)?;
            let mut out = spare.pop().unwrap_or_default();
            let base_data = match (last, stack.last()) {
                (true, _) => base.as_slice(),
                (false, Some(top)) => top.data.as_slice(),
                (false, None) => return Err(Stop::Pack(bad_table())),
            };
            delta::apply(
                base_data,
                &delta_buf,
                &mut out,
                limits.max_object_bytes,
                node.offset,
            )?;
            recycle(&mut spare, base);
            if delta_buf.capacity() > RECYCLE_LIMIT {
                delta_buf = Vec::new();
            }
            enter(
                child,
                kind,
                depth,
                out,
                Some((base_node, &delta_buf)),
                starts,
                sink,
                &mut stack,
                &mut spare,
            )?;
        }
    }
}

/// Hands a resolved object to the sink, then keeps it on the stack if it has children.
#[allow(clippy::too_many_arguments)]
fn enter<S: Sink>(
    node: u32,
    kind: Kind,
    depth: u32,
    data: Vec<u8>,
    delta: Option<(u32, &[u8])>,
    starts: &[u32],
    sink: &S,
    stack: &mut Vec<Frame>,
    spare: &mut Vec<Vec<u8>>,
) -> Result<(), Stop<S::Error>> {
    let mut waiting = Vec::new();
    sink.object(node, kind, &data, delta, &mut waiting)?;
    let start = starts.get(node as usize).copied().ok_or_else(bad_table)? as usize;
    let end = starts
        .get(node as usize + 1)
        .copied()
        .ok_or_else(bad_table)? as usize;
    if start == end && waiting.is_empty() {
        recycle(spare, data);
    } else {
        stack.push(Frame {
            node,
            kind,
            depth,
            data,
            next: start,
            end,
            waiting,
        });
    }
    Ok(())
}

fn recycle(spare: &mut Vec<Vec<u8>>, buf: Vec<u8>) {
    if buf.capacity() > 0 && buf.capacity() <= RECYCLE_LIMIT && spare.len() < 4 {
        spare.push(buf);
    }
}

fn bad_table() -> PackError {
    PackError::Internal {
        detail: "inconsistent delta tree".into(),
    }
}

/// Ref-deltas waiting for their base, by base id (while indexing).
pub(crate) struct Waiting {
    by_base: HashMap<ObjectId, Vec<u32>>,
}

impl Waiting {
    /// Groups the ref-deltas of `table` by base id.
    pub(crate) fn new(table: &Table) -> Self {
        let mut by_base: HashMap<ObjectId, Vec<u32>> = HashMap::new();
        for (i, node) in table.nodes.iter().enumerate() {
            if let Parent::Ref(r) = node.parent {
                if let Some(id) = table.ref_ids.get(r as usize) {
                    by_base.entry(*id).or_default().push(i as u32);
                }
            }
        }
        Waiting { by_base }
    }

    /// The ref-deltas whose base is `id`, now resolved (each is handed out once).
    pub(crate) fn take(&mut self, id: &ObjectId, into: &mut Vec<u32>) {
        if self.by_base.is_empty() {
            return;
        }
        if let Some(nodes) = self.by_base.remove(id) {
            // Popped from the end: reversed, they resolve in pack order.
            into.extend(nodes.into_iter().rev());
        }
    }

    /// A base no resolved object provided: the one named by the earliest such ref-delta.
    pub(crate) fn missing(&self) -> Option<ObjectId> {
        self.by_base
            .iter()
            .filter_map(|(id, nodes)| nodes.iter().min().map(|first| (*first, *id)))
            .min()
            .map(|(_, id)| id)
    }
}
