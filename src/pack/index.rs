//! [`index()`]: verify a spooled pack and write its `.idx`.
//!
//! Two passes over the file, each bounded by [`Options`], neither mapping it into memory:
//! 1. [`entries`] reads the file once, sequentially: headers, limits, zlib framing, CRC-32 and the
//!    trailing SHA-1, all before anything is inflated into memory. It yields the entry table.
//! 2. [`resolve`] reads the entries again with `pread`, depth-first through the delta tree (on
//!    [`Options::threads`] threads, each taking whole delta trees): every
//!    delta is applied, every object hashed (its id), commits, trees and tags are parsed, and chain
//!    depth is limited. Then the ids are sorted (no duplicates) and [`idx`] writes the `.idx`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use gix_hash::ObjectId;
use gix_pack::data::entry::Header;
use gix_pack::data::input;

use crate::pack::entries::{self, Entries};
use crate::pack::growing::Growing;
use crate::pack::idx::{self, IdxEntry};
use crate::pack::read::PackFile;
use crate::pack::resolve::{self, Node, Parent, Sink, Stop, Table, Waiting};
use crate::pack::{validate, IndexedPack, Kind, Options, PackError};

/// Supplies delta bases from outside the pack (e.g. a mirror of the upstream) to complete a thin pack.
///
/// Implemented for closures `Fn(&ObjectId) -> Option<(Kind, Vec<u8>)>`.
pub trait BaseLookup {
    /// The kind and content of `id`, or `None` if unknown. Content whose hash is not `id` is ignored.
    fn base(&self, id: &ObjectId) -> Option<(Kind, Vec<u8>)>;
}

impl<F> BaseLookup for F
where
    F: Fn(&ObjectId) -> Option<(Kind, Vec<u8>)>,
{
    fn base(&self, id: &ObjectId) -> Option<(Kind, Vec<u8>)> {
        self(id)
    }
}

/// Verifies the pack at `pack` and writes `<pack minus extension>.idx` next to it.
///
/// A missing or empty file is a push without objects and yields an empty [`IndexedPack`]. Ref-delta
/// bases must be inside the pack (the gateway advertises `no-thin`). On error, no `.idx` is left behind.
///
/// Memory: the entry table (about 60 bytes per object) and the delta chain being resolved. The pack
/// is read with positioned reads, never mapped.
pub fn index(pack: &Path, options: &Options) -> Result<IndexedPack, PackError> {
    index_visiting(pack, options, |_, _, _| Ok::<(), PackError>(()))
}

/// Like [`index()`], and calls `visit` with every object while it is resolved, as
/// [`IndexedPack::for_each`] would afterwards: the pack is decoded once instead of twice.
///
/// Objects are visited before the whole pack is verified: what `visit` learns is only valid if this
/// returns `Ok` (an error later in the pack, e.g. a duplicate object or a missing base, refuses the
/// pack after some objects were visited). The first error from `visit` stops indexing and is
/// returned; no `.idx` is left behind.
///
/// Deltas are resolved on [`Options::threads`] threads, and `visit` is called from all of them
/// at once (hence `Fn + Sync`: collect through a `Mutex` or atomics). The order of the visits is
/// not deterministic: each object is visited exactly once, a delta's base before the delta, but
/// objects from different delta trees interleave differently from run to run (with one thread, it
/// is the order of [`IndexedPack::for_each`]). Once a thread fails (a visitor error or a pack
/// error), the others stop before their next object and the first error is returned; when a pack
/// has several faults, which one is reported may vary with more than one thread.
pub fn index_visiting<E, F>(pack: &Path, options: &Options, visit: F) -> Result<IndexedPack, E>
where
    E: From<PackError> + Send,
    F: Fn(ObjectId, Kind, &[u8]) -> Result<(), E> + Sync,
{
    run(pack, None, options, Instant::now(), |id, kind, data, _| {
        visit(id, kind, data)
    })
}

/// Like [`index_visiting`], for a pack file that is still being written: pass 1 (headers, limits,
/// zlib framing, CRC-32, trailing checksum) reads the file while it grows, as `growing` announces
/// its bytes, so it runs while the pack is being received; pass 2 (deltas, ids, the visitor, the
/// `.idx`) starts once the writer has [finished](Growing::finish) and the whole pack was verified.
///
/// Call it on a blocking thread, after the file at `pack` was created (empty is fine), while
/// another thread or task writes it and calls [`Growing::advance`], then [`Growing::finish`] or
/// [`Growing::fail`]. Memory is as for [`index()`]: the file is read through a 64 KiB buffer.
///
/// A pack fed this way is refused with the same [`PackError`] as [`index()`] gives the complete
/// file. The limits that [`index()`] checks on the file size first
/// ([`Options::max_pack_bytes`], an object count that cannot fit) are checked as bytes arrive
/// and once the writer is done: when another error stops the reading earlier, it is returned after
/// the writer is done (or [`Options::max_duration`] is used up), and the size errors take precedence
/// as they would for the complete file. [`PackError::PackTooLarge`] stops the reading as soon as
/// the writer announces more than the limit; its `size` is the file's final size if the writer
/// finished, else what was announced then. A writer that [fails](Growing::fail) makes this return
/// [`PackError::Io`] (unless the pack was refused for another reason already) as soon as the reader
/// catches up; the waiting is bounded by [`Options::max_duration`]. The writer never waits for this.
/// A writer that finishes with nothing written is a push without objects, as an empty file is.
///
/// [`Options::max_duration`] counts from this call, so it covers the time the writer takes too.
pub fn index_growing<E, F>(
    pack: &Path,
    growing: &Growing,
    options: &Options,
    visit: F,
) -> Result<IndexedPack, E>
where
    E: From<PackError> + Send,
    F: Fn(ObjectId, Kind, &[u8]) -> Result<(), E> + Sync,
{
    index_growing_with_deltas(pack, growing, options, |id, kind, data, _| {
        visit(id, kind, data)
    })
}

/// How an object of the pack was made, when it is a delta: its base's id and the delta's
/// instructions (e.g. for [`changed_ranges`](crate::pack::changed_ranges): what differs from
/// the base).
#[derive(Debug, Clone, Copy)]
pub struct Delta<'a> {
    /// The base's id (an object of the pack, visited before).
    pub base: ObjectId,
    /// The delta's instructions (`gitformat-pack`), as applied to the base.
    pub instructions: &'a [u8],
}

/// Like [`index_growing`], and tells `visit` how each delta was made ([`Delta`]).
pub fn index_growing_with_deltas<E, F>(
    pack: &Path,
    growing: &Growing,
    options: &Options,
    visit: F,
) -> Result<IndexedPack, E>
where
    E: From<PackError> + Send,
    F: Fn(ObjectId, Kind, &[u8], Option<Delta<'_>>) -> Result<(), E> + Sync,
{
    run(pack, Some(growing), options, Instant::now(), visit)
}

/// Like [`index()`], but a pack whose ref-delta bases are missing ([`PackError::MissingBase`]) is
/// completed with bases from `bases`, as `git index-pack --fix-thin` does. A self-contained pack
/// is indexed as by [`index()`]. A completed pack is written to `<pack>.fixed.pack` (with
/// `<pack>.fixed.idx`), which [`IndexedPack::pack_path`] names.
///
/// While completing, `bases` is asked for every ref-delta base before the pack is searched, so a base
/// that the pack holds too would be inserted twice and refused as [`PackError::DuplicateObject`].
/// Inserted bases are limited by [`Options::max_object_bytes`]; both attempts share
/// [`Options::max_duration`].
pub fn index_with_bases(
    pack: &Path,
    options: &Options,
    bases: &dyn BaseLookup,
) -> Result<IndexedPack, PackError> {
    let started = Instant::now();
    let ignore = |_: ObjectId, _: Kind, _: &[u8], _: Option<Delta<'_>>| Ok::<(), PackError>(());
    match run(pack, None, options, started, ignore) {
        Err(PackError::MissingBase { .. }) => {
            let fixed = pack.with_extension("fixed.pack");
            let mut cleanup = Cleanup(vec![fixed.clone()]);
            complete(pack, &fixed, options, bases, started)?;
            let indexed = run(&fixed, None, options, started, ignore)?;
            cleanup.0.clear();
            Ok(indexed)
        }
        other => other,
    }
}

fn deadline(options: &Options, started: Instant) -> Option<(Instant, Duration)> {
    started
        .checked_add(options.max_duration)
        .map(|at| (at, options.max_duration))
}

fn run<E, F>(
    pack_path: &Path,
    growing: Option<&Growing>,
    options: &Options,
    started: Instant,
    visit: F,
) -> Result<IndexedPack, E>
where
    E: From<PackError> + Send,
    F: Fn(ObjectId, Kind, &[u8], Option<Delta<'_>>) -> Result<(), E> + Sync,
{
    let Some(mut entries) = entries::open(pack_path, options, started, false, growing)? else {
        return Ok(IndexedPack::empty(pack_path, options));
    };
    let idx_path = pack_path.with_extension("idx");
    if idx_path == pack_path {
        let reason = "the pack file must not end in .idx";
        let err = std::io::Error::new(std::io::ErrorKind::InvalidInput, reason);
        return Err(PackError::io(pack_path, err).into());
    }
    if options.spill_bytes > 0 {
        let dir = pack_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        entries.spill_into(dir, options.spill_bytes);
    }
    let table = read_table(&mut entries)?;
    let checksum = entries.trailer().ok_or_else(|| PackError::Internal {
        detail: "the pack trailer was not read".into(),
    })?;
    let data_end = entries.data_end();
    drop(entries);

    let pack = PackFile::open_until(pack_path, data_end)?;
    let sink = IndexSink {
        state: Mutex::new(IndexState {
            ids: vec![ObjectId::null(gix_hash::Kind::Sha1); table.nodes.len()],
            resolved: 0,
            waiting: Waiting::new(&table),
        }),
        visit,
    };
    let limits = resolve::Limits {
        max_object_bytes: options.max_object_bytes,
        max_delta_depth: options.max_delta_depth,
        deadline: deadline(options, started),
    };
    let threads = if data_end < options.parallel_from_bytes {
        1
    } else {
        options.threads
    };
    resolve::traverse(&table, &pack, limits, threads, &sink).map_err(|stop| match stop {
        Stop::Visitor(e) => e,
        Stop::Pack(e) => e.into(),
    })?;
    let state = sink
        .state
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(id) = state.waiting.missing() {
        return Err(PackError::MissingBase { id }.into());
    }
    if state.resolved != table.nodes.len() {
        return Err(PackError::Internal {
            detail: "some entries were not resolved".into(),
        }
        .into());
    }
    let mut objects: Vec<IdxEntry> = table
        .nodes
        .iter()
        .zip(state.ids)
        .map(|(node, id)| IdxEntry {
            id,
            offset: node.offset,
            crc32: node.crc32,
        })
        .collect();
    drop(table);
    objects.sort_unstable();
    if let Some(pair) = objects.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(PackError::DuplicateObject { id: pair[0].id }.into());
    }
    let mut cleanup = Cleanup(vec![idx_path.clone()]);
    idx::write(&idx_path, &objects, &checksum, idx::OFF32_LIMIT)?;
    drop(objects);
    let indexed = IndexedPack::open(pack, idx_path, options)?;
    cleanup.0.clear();
    Ok(indexed)
}

/// Pass 1: reads every entry into the table.
fn read_table(entries: &mut Entries) -> Result<Table, PackError> {
    if entries.header().count == 0 {
        entries.finish_empty()?;
    }
    let mut table = Table::default();
    table.nodes.reserve_exact(entries.reserve_hint());
    let mut failure = None;
    for item in entries.by_ref() {
        let entry = match item {
            Ok(entry) => entry,
            Err(err) => {
                failure = Some(err);
                break;
            }
        };
        let offset = entry.pack_offset;
        let parent = match entry.header {
            Header::Commit => Parent::Root(Kind::Commit),
            Header::Tree => Parent::Root(Kind::Tree),
            Header::Blob => Parent::Root(Kind::Blob),
            Header::Tag => Parent::Root(Kind::Tag),
            Header::OfsDelta { base_distance } => offset
                .checked_sub(base_distance)
                .and_then(|base| table.position(base))
                .map(Parent::Node)
                .ok_or(PackError::BadDeltaBase {
                    offset,
                    base_offset: offset.wrapping_sub(base_distance),
                })?,
            Header::RefDelta { base_id } => table.ref_parent(base_id),
        };
        let header_len =
            u8::try_from(entry.header_size).map_err(|_| PackError::BadEntryHeader {
                offset,
                reason: "header too long",
            })?;
        table.push(Node {
            offset,
            size: entry.decompressed_size,
            crc32: entry.crc32.unwrap_or_default(),
            header_len,
            parent,
        });
    }
    if let Some(err) = failure {
        return Err(entries
            .take_error()
            .unwrap_or_else(|| PackError::internal(&err)));
    }
    table.spill = entries.take_spill();
    Ok(table)
}

/// Hashes, checks and visits every object while indexing (from every resolving thread).
struct IndexSink<F> {
    state: Mutex<IndexState>,
    visit: F,
}

/// What the resolving threads record, under one lock taken once per object.
struct IndexState {
    ids: Vec<ObjectId>,
    resolved: usize,
    waiting: Waiting,
}

impl<E, F> Sink for IndexSink<F>
where
    E: Send,
    F: Fn(ObjectId, Kind, &[u8], Option<Delta<'_>>) -> Result<(), E> + Sync,
{
    type Error = E;

    fn object(
        &self,
        node: u32,
        kind: Kind,
        data: &[u8],
        delta: Option<(u32, &[u8])>,
        waiting: &mut Vec<u32>,
    ) -> Result<(), Stop<E>> {
        let id = object_id(kind, data)?;
        validate::check_object(id, kind, data)?;
        let delta =
            match delta {
                Some((base, instructions)) => {
                    let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                    let base = state.ids.get(base as usize).copied().ok_or_else(|| {
                        PackError::Internal {
                            detail: "delta base out of range".into(),
                        }
                    })?;
                    Some(Delta { base, instructions })
                }
                None => None,
            };
        (self.visit)(id, kind, data, delta).map_err(Stop::Visitor)?;
        // The state is plain bookkeeping; a panicking visitor elsewhere does not invalidate it.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = state
            .ids
            .get_mut(node as usize)
            .ok_or_else(|| PackError::Internal {
                detail: "entry out of range".into(),
            })?;
        *slot = id;
        state.resolved += 1;
        state.waiting.take(&id, waiting);
        Ok(())
    }
}

/// The id git gives `data` as an object of `kind`: SHA-1 (with collision detection) of
/// `"<kind> <size>\0"` and the content.
pub(crate) fn object_id(kind: Kind, data: &[u8]) -> Result<ObjectId, PackError> {
    let mut hasher = gix_hash::hasher(gix_hash::Kind::Sha1);
    hasher.update(format!("{} {}\0", kind.as_str(), data.len()).as_bytes());
    hasher.update(data);
    hasher.try_finalize().map_err(|e| PackError::internal(&e))
}

/// Completes a thin pack: `bases` supplies missing ref-delta bases, which gix inserts before their
/// first delta while rewriting the pack to `fixed`.
fn complete(
    pack: &Path,
    fixed: &Path,
    options: &Options,
    bases: &dyn BaseLookup,
    started: Instant,
) -> Result<(), PackError> {
    let Some(mut entries) = entries::open(pack, options, started, true, None)? else {
        return Err(PackError::Internal {
            detail: "the thin pack vanished".into(),
        });
    };
    let version = entries.header().version;
    let finder = BaseFinder {
        bases,
        max_object_bytes: options.max_object_bytes,
        error: std::cell::RefCell::new(None),
    };
    let out = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(fixed)
        .map_err(|e| PackError::io(fixed, e))?;
    let completed = input::LookupRefDeltaObjectsIter::new(
        &mut entries,
        &finder,
        gix_zlib::Compression::BEST_SPEED,
    );
    let rewritten = input::EntriesToBytesIter::new(completed, out, version, gix_hash::Kind::Sha1);
    let mut failure = None;
    for item in rewritten {
        if let Err(e) = item {
            failure = Some(e);
            break;
        }
    }
    if let Some(err) = finder.error.into_inner() {
        return Err(err);
    }
    if let Some(err) = entries.take_error() {
        return Err(err);
    }
    match failure {
        Some(err) => Err(PackError::internal(&err)),
        None => Ok(()),
    }
}

/// Hands gix the bases a [`BaseLookup`] knows, after checking their size and id.
struct BaseFinder<'a> {
    bases: &'a dyn BaseLookup,
    max_object_bytes: u64,
    error: std::cell::RefCell<Option<PackError>>,
}

impl gix_object::Find for BaseFinder<'_> {
    fn try_find<'a>(
        &self,
        id: &gix_hash::oid,
        buffer: &'a mut Vec<u8>,
    ) -> gix_error::Result<Option<gix_object::Data<'a>>> {
        let id = id.to_owned();
        let Some((kind, data)) = self.bases.base(&id) else {
            return Ok(None);
        };
        let size = data.len() as u64;
        if size > self.max_object_bytes {
            self.error.replace(Some(PackError::ObjectTooLarge {
                offset: 0,
                size,
                limit: self.max_object_bytes,
            }));
            return Err(gix_error::message("base too large").validation_error());
        }
        if object_id(kind, &data).ok() != Some(id) {
            return Ok(None);
        }
        *buffer = data;
        Ok(Some(gix_object::Data::new(
            buffer,
            kind.into(),
            gix_hash::Kind::Sha1,
        )))
    }
}

/// Removes the files written so far unless indexing succeeded (then it is forgotten).
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
