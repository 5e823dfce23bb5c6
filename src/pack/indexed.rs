//! [`IndexedPack`]: a verified pack and its `.idx`, ready to be read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use gix_hash::ObjectId;

use crate::pack::delta;
use crate::pack::read::{Base, Inflater, PackFile};
use crate::pack::resolve::{self, Node, Parent, Sink, Stop, Table};
use crate::pack::{Kind, Options, PackError};

/// A pack that [`index`](crate::pack::index()) verified, with the `.idx` written next to it.
///
/// The pack is read with positioned reads (`pread`) into bounded buffers, never memory-mapped; the
/// small `.idx` is mapped. Neither file may be modified while this value lives (reads would fail
/// or, for the `.idx`, fault). The files stay on disk after drop; the caller removes them with the
/// spool. `Send + Sync`: lookups from several threads serialise on the lookup cache.
pub struct IndexedPack {
    pack_path: PathBuf,
    files: Option<Files>,
    max_object_bytes: u64,
    max_delta_depth: u32,
    lookup: Mutex<Lookup>,
}

struct Files {
    idx_path: PathBuf,
    pack: PackFile,
    index: gix_pack::index::File,
}

/// State reused between lookups: recently decoded delta bases and the zlib decoder.
struct Lookup {
    cache: BaseCache,
    inflater: Inflater,
}

/// Recently decoded objects by pack offset (delta bases, and what `find` returned, which is
/// often the base of the next object asked for: older versions of a tree are deltas of newer
/// ones), bounded in bytes: at most one and a half budgets.
///
/// Two generations stand in for least-recently-used order: new entries and hits go to the
/// young one; when it holds half the budget it becomes the old one, and the old one is
/// dropped. Lookups and insertions cost a hash probe whatever the number of entries; long
/// delta chains of several trees at once fit (a fixed count of entries did not: chains 50
/// deep pushed each other out).
struct BaseCache {
    budget: usize,
    young: HashMap<u64, (Kind, Vec<u8>)>,
    young_bytes: usize,
    old: HashMap<u64, (Kind, Vec<u8>)>,
}

/// What an entry costs beyond its bytes (map slot, vector header), in the cache's accounting.
const CACHE_ENTRY_OVERHEAD: usize = 64;

impl BaseCache {
    fn new(budget: usize) -> Self {
        BaseCache {
            budget,
            young: HashMap::new(),
            young_bytes: 0,
            old: HashMap::new(),
        }
    }

    /// Copies the object at `offset` into `buf` and returns its kind, if cached.
    fn get(&mut self, offset: u64, buf: &mut Vec<u8>) -> Option<Kind> {
        if let Some((kind, data)) = self.young.get(&offset) {
            buf.clear();
            buf.extend_from_slice(data);
            return Some(*kind);
        }
        let (kind, data) = self.old.remove(&offset)?;
        buf.clear();
        buf.extend_from_slice(&data);
        self.insert(offset, kind, data);
        Some(kind)
    }

    /// Keeps a copy of the object at `offset`.
    fn put(&mut self, offset: u64, kind: Kind, data: &[u8]) {
        // One object may take at most a quarter of the budget, so several chains fit.
        if data.len() > self.budget / 4 || self.young.contains_key(&offset) {
            return;
        }
        self.old.remove(&offset);
        self.insert(offset, kind, data.to_vec());
    }

    fn insert(&mut self, offset: u64, kind: Kind, data: Vec<u8>) {
        self.young_bytes += data.len() + CACHE_ENTRY_OVERHEAD;
        self.young.insert(offset, (kind, data));
        if self.young_bytes > self.budget / 2 {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
    }
}

impl std::fmt::Debug for IndexedPack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexedPack")
            .field("pack_path", &self.pack_path)
            .field("objects", &self.len())
            .finish_non_exhaustive()
    }
}

impl IndexedPack {
    /// A push without a pack: no objects, no files.
    pub(crate) fn empty(pack_path: &Path, options: &Options) -> Self {
        Self::new(pack_path.to_owned(), None, options)
    }

    /// Opens the `.idx` just written for `pack`.
    pub(crate) fn open(
        pack: PackFile,
        idx_path: PathBuf,
        options: &Options,
    ) -> Result<Self, PackError> {
        let index = gix_pack::index::File::at(&idx_path, gix_hash::Kind::Sha1)
            .map_err(|e| PackError::internal(&e))?;
        let pack_path = pack.path().to_owned();
        let files = Files {
            idx_path,
            pack,
            index,
        };
        Ok(Self::new(pack_path, Some(files), options))
    }

    /// Opens a pack and its index written by git (e.g. in a mirror's `objects/pack`), trusted
    /// as git verified them: objects are read as [`IndexedPack::find`] reads a pushed pack.
    pub fn open_existing(
        pack_path: &Path,
        idx_path: &Path,
        options: &Options,
    ) -> Result<Self, PackError> {
        let len = std::fs::metadata(pack_path)
            .map_err(|e| PackError::io(pack_path, e))?
            .len();
        let data_end = len.saturating_sub(crate::pack::entries::TRAILER_LEN);
        Self::open(
            PackFile::open_until(pack_path, data_end)?,
            idx_path.to_owned(),
            options,
        )
    }

    fn new(pack_path: PathBuf, files: Option<Files>, options: &Options) -> Self {
        IndexedPack {
            pack_path,
            files,
            max_object_bytes: options.max_object_bytes,
            max_delta_depth: options.max_delta_depth,
            lookup: Mutex::new(Lookup {
                cache: BaseCache::new(options.find_cache_bytes.max(1)),
                inflater: Inflater::default(),
            }),
        }
    }

    /// Number of objects in the pack.
    pub fn len(&self) -> usize {
        self.files
            .as_ref()
            .map_or(0, |f| f.index.num_objects() as usize)
    }

    /// True for a push without objects.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All object ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = ObjectId> + '_ {
        let index = self.files.as_ref().map(|f| &f.index);
        let count = index.map_or(0, |i| i.num_objects());
        (0..count).filter_map(move |i| index.map(|index| index.oid_at_index(i).to_owned()))
    }

    /// True if the pack holds `id`.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.files
            .as_ref()
            .is_some_and(|f| f.index.lookup(id).is_some())
    }

    /// Decodes `id` into `buf` (replacing its content) and returns its kind, or `None` if the pack does
    /// not hold it. Memory: the object, its delta instructions, and the shared base cache
    /// ([`Options::find_cache_bytes`]).
    pub fn find(&self, id: &ObjectId, buf: &mut Vec<u8>) -> Result<Option<Kind>, PackError> {
        let Some(files) = &self.files else {
            return Ok(None);
        };
        let Some(offset) = self.offset_of(id) else {
            return Ok(None);
        };
        let mut lookup = self.lookup.lock().map_err(|_| PackError::Internal {
            detail: "lookup cache poisoned".into(),
        })?;
        self.decode(files, offset, buf, &mut lookup).map(Some)
    }

    /// The kind of `id` without decoding it (a delta's kind is its chain's full object's,
    /// found by reading entry headers only), or `None` if the pack does not hold it.
    pub fn kind_of(&self, id: &ObjectId) -> Result<Option<Kind>, PackError> {
        let (Some(files), Some(mut at)) = (&self.files, self.offset_of(id)) else {
            return Ok(None);
        };
        for _ in 0..=self.max_delta_depth {
            at = match files.pack.header_at(at)?.base {
                Base::Full(kind) => return Ok(Some(kind)),
                Base::Distance(distance) => at.checked_sub(distance),
                Base::Id(base) => files
                    .index
                    .lookup(base)
                    .map(|i| files.index.pack_offset_at_index(i)),
            }
            .ok_or_else(|| PackError::Internal {
                detail: format!("delta base of the entry at byte {at} is not in the pack"),
            })?;
        }
        Err(PackError::Internal {
            detail: "delta chain deeper than the limit".into(),
        })
    }

    /// Decodes the object whose entry starts at `offset` into `buf`: walks its delta chain down to
    /// a full object or a cached base, then applies the deltas back up, caching the bases.
    fn decode(
        &self,
        files: &Files,
        offset: u64,
        buf: &mut Vec<u8>,
        lookup: &mut Lookup,
    ) -> Result<Kind, PackError> {
        let Lookup { cache, inflater } = lookup;
        let (pack, index) = (&files.pack, &files.index);
        let changed = |at: u64| PackError::Internal {
            detail: format!("delta chain at byte {at} changed after it was verified"),
        };
        let mut chain = Vec::new();
        let mut at = offset;
        let kind = loop {
            if let Some(kind) = cache.get(at, buf) {
                break kind;
            }
            let header = pack.header_at(at)?;
            if header.size > self.max_object_bytes {
                return Err(changed(at));
            }
            let start = at + u64::from(header.len);
            match header.base {
                Base::Full(kind) => {
                    pack.inflate(start, pack.data_end(), header.size, buf, inflater)?;
                    cache.put(at, kind, buf);
                    break kind;
                }
                Base::Distance(distance) => {
                    chain.push((at, start, header.size));
                    at = at.checked_sub(distance).ok_or_else(|| changed(at))?;
                }
                Base::Id(base) => {
                    chain.push((at, start, header.size));
                    at = index
                        .lookup(base)
                        .map(|i| index.pack_offset_at_index(i))
                        .ok_or_else(|| changed(at))?;
                }
            }
            // Verified chains are no deeper than the limit; anything longer (a cycle) changed.
            if chain.len() > self.max_delta_depth as usize {
                return Err(changed(offset));
            }
        };
        let mut instructions = Vec::new();
        let mut out = Vec::new();
        while let Some((at, start, size)) = chain.pop() {
            pack.inflate(start, pack.data_end(), size, &mut instructions, inflater)?;
            delta::apply(buf, &instructions, &mut out, self.max_object_bytes, at)?;
            std::mem::swap(buf, &mut out);
            cache.put(at, kind, buf);
        }
        Ok(kind)
    }

    /// Calls `visit` once with every object, decoded, bases before the deltas made from them.
    ///
    /// Memory stays bounded: the visitor sees one object at a time; the walk keeps a table of the
    /// entries (about 40 bytes per object) and the delta chain being resolved. The first error from
    /// `visit` stops the walk and is returned.
    pub fn for_each<E, F>(&self, visit: F) -> Result<(), E>
    where
        E: From<PackError> + Send,
        F: FnMut(ObjectId, Kind, &[u8]) -> Result<(), E> + Send,
    {
        let Some(files) = &self.files else {
            return Ok(());
        };
        let (table, positions) = self.table(files)?;
        let sink = VisitSink {
            index: &files.index,
            positions,
            visit: Mutex::new(visit),
        };
        let limits = resolve::Limits {
            max_object_bytes: self.max_object_bytes,
            max_delta_depth: self.max_delta_depth,
            deadline: None,
        };
        resolve::traverse(&table, &files.pack, limits, 1, &sink).map_err(|stop| match stop {
            Stop::Visitor(e) => e,
            Stop::Pack(e) => e.into(),
        })
    }

    /// The entry table of the pack, rebuilt from the `.idx` and the entry headers, and the index
    /// position of every entry.
    fn table(&self, files: &Files) -> Result<(Table, Vec<u32>), PackError> {
        let index = &files.index;
        let mut order: Vec<(u64, u32)> = (0..index.num_objects())
            .map(|i| (index.pack_offset_at_index(i), i))
            .collect();
        order.sort_unstable();
        let position = |offset: u64| {
            order
                .binary_search_by_key(&offset, |&(o, _)| o)
                .ok()
                .and_then(|i| u32::try_from(i).ok())
        };
        let mut table = Table::default();
        table.nodes.reserve_exact(order.len());
        for &(offset, _) in &order {
            let header = files.pack.header_at(offset)?;
            let changed = || PackError::Internal {
                detail: format!("entry at byte {offset} changed after it was verified"),
            };
            if header.size > self.max_object_bytes {
                return Err(changed());
            }
            let parent = match header.base {
                Base::Full(kind) => Parent::Root(kind),
                Base::Distance(distance) => offset
                    .checked_sub(distance)
                    .and_then(position)
                    .map(Parent::Node)
                    .ok_or_else(changed)?,
                Base::Id(base) => index
                    .lookup(base)
                    .map(|i| index.pack_offset_at_index(i))
                    .and_then(position)
                    .map(Parent::Node)
                    .ok_or_else(changed)?,
            };
            table.push(Node {
                offset,
                size: header.size,
                crc32: 0,
                header_len: header.len,
                parent,
            });
        }
        Ok((table, order.into_iter().map(|(_, i)| i).collect()))
    }

    /// The pack file (after [`index_with_bases`](crate::pack::index_with_bases) completed a thin pack,
    /// the rewritten one).
    pub fn pack_path(&self) -> &Path {
        &self.pack_path
    }

    /// The `.idx` written next to the pack; `None` for a push without a pack file.
    pub fn idx_path(&self) -> Option<&Path> {
        self.files.as_ref().map(|f| f.idx_path.as_path())
    }

    /// The pack's trailing SHA-1 (verified); `None` for a push without a pack file.
    pub fn checksum(&self) -> Option<ObjectId> {
        self.files.as_ref().map(|f| f.index.pack_checksum())
    }

    /// The pack data and its index; `None` for a push without a pack file.
    pub(crate) fn parts(&self) -> Option<(&PackFile, &gix_pack::index::File)> {
        self.files.as_ref().map(|f| (&f.pack, &f.index))
    }

    /// Where `id` starts in the pack, if present.
    pub(crate) fn offset_of(&self, id: &ObjectId) -> Option<u64> {
        let index = &self.files.as_ref()?.index;
        index.lookup(id).map(|i| index.pack_offset_at_index(i))
    }
}

/// Hands every object with its id from the `.idx` to the visitor (on one thread: the lock is
/// never contended, it only makes the `FnMut` shareable).
struct VisitSink<'a, F> {
    index: &'a gix_pack::index::File,
    positions: Vec<u32>,
    visit: Mutex<F>,
}

impl<E, F> Sink for VisitSink<'_, F>
where
    E: Send,
    F: FnMut(ObjectId, Kind, &[u8]) -> Result<(), E> + Send,
{
    type Error = E;

    fn object(
        &self,
        node: u32,
        kind: Kind,
        data: &[u8],
        _delta: Option<(u32, &[u8])>,
        _waiting: &mut Vec<u32>,
    ) -> Result<(), Stop<E>> {
        let position =
            self.positions
                .get(node as usize)
                .copied()
                .ok_or_else(|| PackError::Internal {
                    detail: "entry out of range".into(),
                })?;
        let id = self.index.oid_at_index(position).to_owned();
        let mut visit = self.visit.lock().unwrap_or_else(PoisonError::into_inner);
        (*visit)(id, kind, data).map_err(Stop::Visitor)
    }
}

#[cfg(test)]
mod cache_tests {
    use super::{BaseCache, Kind, CACHE_ENTRY_OVERHEAD};

    fn held(cache: &BaseCache) -> usize {
        cache
            .young
            .values()
            .chain(cache.old.values())
            .map(|(_, d)| d.len() + CACHE_ENTRY_OVERHEAD)
            .sum()
    }

    #[test]
    fn the_cache_keeps_what_was_used_last_within_its_budget() {
        let mut cache = BaseCache::new(64 << 10);
        let mut buf = Vec::new();
        // Too large for the cache (over a quarter of the budget): not kept.
        cache.put(1, Kind::Blob, &vec![1; 20 << 10]);
        assert_eq!(cache.get(1, &mut buf), None);
        // Many entries: what is held stays within ~1.5 budgets, the latest are found.
        for offset in 0..1000u64 {
            cache.put(offset, Kind::Tree, &[offset as u8; 1000]);
            assert!(held(&cache) <= (64 << 10) * 3 / 2, "{}", held(&cache));
        }
        assert_eq!(cache.get(999, &mut buf), Some(Kind::Tree));
        assert_eq!(buf, vec![999u64 as u8; 1000]);
        assert_eq!(cache.get(0, &mut buf), None);
        // An entry used again moves to the young generation and outlives the rotation that
        // drops the entries put alongside it.
        let first = 2000u64;
        for offset in first..first + 20 {
            cache.put(offset, Kind::Tree, &[7; 1000]);
        }
        for offset in first + 100.. {
            assert_eq!(cache.get(first, &mut buf), Some(Kind::Tree));
            cache.put(offset, Kind::Blob, &[8; 1000]);
            let held = |o: u64| cache.young.contains_key(&o) || cache.old.contains_key(&o);
            if !held(first + 1) {
                break;
            }
            assert!(
                offset < first + 1000,
                "the entries put alongside are dropped"
            );
        }
        assert_eq!(cache.get(first, &mut buf), Some(Kind::Tree));
        assert_eq!(buf, vec![7; 1000]);
    }
}
