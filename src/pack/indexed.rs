//! [`IndexedPack`]: a verified pack and its `.idx`, ready to be read.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gix_hash::ObjectId;
use gix_pack::cache::lru::StaticLinkedList;
use gix_pack::data::decode::entry::ResolvedBase;

use crate::pack::traverse::{self, Stop};
use crate::pack::{chain, validate, Kind, Options, PackError};

/// A pack that [`index`](crate::pack::index()) verified, with the `.idx` written next to it.
///
/// Reading is memory-mapped: the `.pack` and `.idx` must not be modified or truncated while this
/// value lives (a truncated mapping faults). The files stay on disk after drop; the caller removes
/// them with the spool.
/// `Send + Sync`: lookups from several threads serialise on the lookup cache.
pub struct IndexedPack {
    pack_path: PathBuf,
    files: Option<Files>,
    threads: usize,
    alloc_limit: Option<usize>,
    lookup: Mutex<Lookup>,
}

struct Files {
    idx_path: PathBuf,
    pack: gix_pack::data::File,
    index: gix_pack::index::File,
}

/// State reused between lookups: recently decoded delta results and the zlib decoder.
struct Lookup {
    cache: StaticLinkedList<64>,
    inflate: gix_zlib::Inflate,
}

impl Lookup {
    fn new(cache_bytes: usize) -> Self {
        Lookup {
            cache: StaticLinkedList::new(cache_bytes.max(1)),
            inflate: gix_zlib::Inflate::default(),
        }
    }
}

/// Decodes the object whose entry starts at `offset` into `buf`, resolving its delta chain.
fn decode(
    pack: &gix_pack::data::File,
    index: &gix_pack::index::File,
    offset: u64,
    buf: &mut Vec<u8>,
    lookup: &mut Lookup,
) -> Result<Kind, PackError> {
    let Lookup { cache, inflate } = lookup;
    let entry = pack.entry(offset).map_err(|e| traverse::gix_failure(&e))?;
    let resolve = |base_id: &gix_hash::oid, _: &mut Vec<u8>| {
        index
            .lookup(base_id)
            .map(|i| {
                pack.entry(index.pack_offset_at_index(i))
                    .map(ResolvedBase::InPack)
            })
            .transpose()
    };
    pack.decode_entry(entry, buf, inflate, &resolve, cache)
        .map(|outcome| outcome.kind.into())
        .map_err(|e| traverse::gix_failure(&e))
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

    /// Opens a pack and the `.idx` just written for it.
    pub(crate) fn open(
        pack_path: PathBuf,
        idx_path: PathBuf,
        options: &Options,
    ) -> Result<Self, PackError> {
        let alloc_limit = options.alloc_limit();
        let pack = gix_pack::data::File::at(&pack_path, gix_hash::Kind::Sha1)
            .map_err(|e| PackError::internal(&e))?
            .with_alloc_limit_bytes(alloc_limit);
        let index = gix_pack::index::File::at(&idx_path, gix_hash::Kind::Sha1)
            .map_err(|e| PackError::internal(&e))?;
        let files = Files {
            idx_path,
            pack,
            index,
        };
        Ok(Self::new(pack_path, Some(files), options))
    }

    fn new(pack_path: PathBuf, files: Option<Files>, options: &Options) -> Self {
        IndexedPack {
            pack_path,
            files,
            threads: options.threads,
            alloc_limit: options.alloc_limit(),
            lookup: Mutex::new(Lookup::new(options.find_cache_bytes)),
        }
    }

    /// The checks that need the index: unique ids, chain depth, and every commit, tree and tag
    /// decoded and parsed. Blobs are not decoded again: their bytes cannot be invalid, and the
    /// index writer already resolved and hashed them.
    pub(crate) fn verify(
        &self,
        options: &Options,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<(), PackError> {
        let Some(files) = &self.files else {
            return Ok(());
        };
        let (pack, index) = (&files.pack, &files.index);
        for i in 1..index.num_objects() {
            if index.oid_at_index(i - 1) == index.oid_at_index(i) {
                return Err(PackError::DuplicateObject {
                    id: index.oid_at_index(i).to_owned(),
                });
            }
        }
        let survey = chain::survey(index, pack, options.max_delta_depth)?;
        let mut structural: Vec<(u64, u32)> = (0..index.num_objects())
            .map(|i| (index.pack_offset_at_index(i), i))
            .filter(|&(offset, _)| {
                survey
                    .kind_at(offset)
                    .is_some_and(|kind| kind != Kind::Blob)
            })
            .collect();
        drop(survey);
        // In pack order a delta's base was usually decoded just before, and is in the cache.
        structural.sort_unstable();
        let mut lookup = Lookup::new(options.find_cache_bytes);
        let mut buf = Vec::new();
        for (offset, i) in structural {
            if let Some((at, limit)) = deadline {
                if Instant::now() > at {
                    return Err(PackError::TimeLimitExceeded { limit });
                }
            }
            let kind = decode(pack, index, offset, &mut buf, &mut lookup)?;
            validate::check_object(index.oid_at_index(i).to_owned(), kind, &buf)?;
        }
        Ok(())
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
    /// not hold it. Memory: the object, its delta instructions, and the shared base cache.
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
        decode(&files.pack, &files.index, offset, buf, &mut lookup).map(Some)
    }

    /// Calls `visit` once with every object, decoded, bases before the deltas made from them.
    ///
    /// Memory stays bounded: the visitor sees one object at a time; gix keeps a delta tree (about 50
    /// bytes per object) and the bases that unvisited deltas still need. The first error from `visit`
    /// stops the walk and is returned.
    pub fn for_each<E, F>(&self, visit: F) -> Result<(), E>
    where
        E: From<PackError> + Send,
        F: FnMut(ObjectId, Kind, &[u8]) -> Result<(), E> + Send,
    {
        let Some(files) = &self.files else {
            return Ok(());
        };
        let limits = traverse::Limits {
            threads: self.threads,
            alloc_limit: self.alloc_limit,
        };
        traverse::for_each_object(&files.index, &files.pack, limits, visit).map_err(|stop| {
            match stop {
                Stop::Visitor(e) => e,
                Stop::Pack(e) => e.into(),
            }
        })
    }

    /// The pack file (after [`index_with_bases`](crate::pack::index_with_bases) completed a thin pack,
    /// the rewritten one).
    pub fn pack_path(&self) -> &Path {
        self.files
            .as_ref()
            .map_or(&self.pack_path, |f| f.pack.path())
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
    pub(crate) fn parts(&self) -> Option<(&gix_pack::data::File, &gix_pack::index::File)> {
        self.files.as_ref().map(|f| (&f.pack, &f.index))
    }

    /// Where `id` starts in the pack, if present.
    pub(crate) fn offset_of(&self, id: &ObjectId) -> Option<u64> {
        let index = &self.files.as_ref()?.index;
        index.lookup(id).map(|i| index.pack_offset_at_index(i))
    }
}
