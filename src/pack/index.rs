//! [`index()`]: verify a spooled pack and write its `.idx`.
//!
//! Three passes, each bounded by [`Options`]:
//! 1. [`entries`] reads the file once: headers, limits, zlib framing, CRC-32 and
//!    the trailing SHA-1, all before anything is inflated into memory.
//! 2. gix-pack's index writer resolves every delta and hashes every object into the `.idx`.
//! 3. `IndexedPack::verify` checks unique ids and chain depth, then decodes every commit, tree and
//!    tag again through the fresh index to parse it (blobs need no second look).

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use gix_hash::ObjectId;
use gix_pack::data::input;

use crate::pack::entries::{self, Entries};
use crate::pack::traverse::{gix_failure, resolver};
use crate::pack::{IndexedPack, Kind, Options, PackError};

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
pub fn index(pack: &Path, options: &Options) -> Result<IndexedPack, PackError> {
    run(pack, options, None, Instant::now())
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
    match run(pack, options, None, started) {
        Err(PackError::MissingBase { .. }) => run(pack, options, Some(bases), started),
        other => other,
    }
}

fn run(
    pack_path: &Path,
    options: &Options,
    bases: Option<&dyn BaseLookup>,
    started: Instant,
) -> Result<IndexedPack, PackError> {
    let Some(mut entries) = entries::open(pack_path, options, started, bases.is_some())? else {
        return Ok(IndexedPack::empty(pack_path, options));
    };
    if entries.header().count == 0 {
        entries.finish_empty()?;
    }
    let data_path = match bases {
        None => pack_path.to_owned(),
        Some(_) => pack_path.with_extension("fixed.pack"),
    };
    let idx_path = data_path.with_extension("idx");
    if idx_path == pack_path {
        let reason = "the pack file must not end in .idx";
        let err = std::io::Error::new(std::io::ErrorKind::InvalidInput, reason);
        return Err(PackError::io(pack_path, err));
    }
    let mut cleanup = Cleanup(vec![idx_path.clone()]);
    if bases.is_some() {
        cleanup.0.push(data_path.clone());
    }
    let job = Job {
        data_path: &data_path,
        idx_path: &idx_path,
        options,
        deadline: started
            .checked_add(options.max_duration)
            .map(|at| (at, options.max_duration)),
        version: entries.header().version,
    };
    let mut idx = IdxWriter::create(&idx_path)?;
    let written = match bases {
        None => job.write_idx(&mut entries, &mut idx),
        Some(bases) => job.write_completed(&mut entries, bases, &mut idx)?,
    }
    .map_err(|err| job.explain(&err, &mut entries, &mut idx))?;
    idx.finish().map_err(|e| PackError::io(&idx_path, e))?;
    if bases.is_none() && entries.trailer().is_some_and(|t| t != written.data_hash) {
        return Err(PackError::Internal {
            detail: "the index names a different pack checksum than the pack".into(),
        });
    }
    let indexed = IndexedPack::open(data_path.clone(), idx_path.clone(), options)?;
    indexed.verify(options, job.deadline)?;
    cleanup.0.clear();
    Ok(indexed)
}

/// Recognises gix's "ref-delta base not found" failure and names the base.
fn missing_base(err: &gix_error::Error, ref_bases: &[ObjectId]) -> Option<PackError> {
    if ref_bases.is_empty() {
        return None;
    }
    // gix reports the id only in its message; accept it only if it is one the pack really names.
    let text = format!("{err:?}");
    let named = ref_bases
        .iter()
        .find(|id| text.contains(&id.to_hex().to_string()));
    match named {
        Some(id) => Some(PackError::MissingBase { id: *id }),
        None if err.is_not_found() => ref_bases
            .first()
            .map(|id| PackError::MissingBase { id: *id }),
        None => None,
    }
}

/// One indexing run: where the pack data and the `.idx` go, and the limits.
struct Job<'a> {
    data_path: &'a Path,
    idx_path: &'a Path,
    options: &'a Options,
    deadline: Option<(Instant, Duration)>,
    version: gix_pack::data::Version,
}

type IndexOutcome = Result<gix_pack::index::write::Outcome, gix_error::Error>;

impl Job<'_> {
    /// Completes a thin pack: `bases` supplies missing ref-delta bases, which gix inserts before
    /// their first delta while rewriting the pack to `data_path`, then indexes the result.
    fn write_completed(
        &self,
        entries: &mut Entries,
        bases: &dyn BaseLookup,
        idx: &mut IdxWriter,
    ) -> Result<IndexOutcome, PackError> {
        let finder = BaseFinder {
            bases,
            max_object_bytes: self.options.max_object_bytes,
            error: RefCell::new(None),
        };
        let out = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.data_path)
            .map_err(|e| PackError::io(self.data_path, e))?;
        let completed = input::LookupRefDeltaObjectsIter::new(
            entries,
            &finder,
            gix_zlib::Compression::BEST_SPEED,
        );
        let mut rewritten =
            input::EntriesToBytesIter::new(completed, out, self.version, gix_hash::Kind::Sha1);
        let result = self.write_idx(&mut rewritten, idx);
        match finder.error.into_inner() {
            Some(err) => Err(err),
            None => Ok(result),
        }
    }

    /// Explains a gix failure: our own checks and I/O first, then the budget, then gix's reason.
    fn explain(
        &self,
        err: &gix_error::Error,
        entries: &mut Entries,
        idx: &mut IdxWriter,
    ) -> PackError {
        if let Some(e) = entries.take_error() {
            return e;
        }
        if let Some(e) = idx.error.take() {
            return PackError::io(self.idx_path, e);
        }
        if let Some((at, limit)) = self.deadline {
            if Instant::now() > at {
                return PackError::TimeLimitExceeded { limit };
            }
        }
        missing_base(err, entries.ref_bases()).unwrap_or_else(|| gix_failure(err))
    }

    fn write_idx(
        &self,
        entries: &mut dyn Iterator<Item = Result<input::Entry, gix_error::Error>>,
        out: &mut IdxWriter,
    ) -> IndexOutcome {
        let deadline = self.deadline;
        let data_path = self.data_path;
        let never = AtomicBool::new(false);
        gix_pack::index::write_data_iter_to_stream(
            gix_pack::index::Version::V2,
            move || {
                let pack = gix_pack::data::File::at(data_path, gix_hash::Kind::Sha1)
                    .map_err(std::io::Error::other)?;
                let resolve = resolver(move |range, pack| {
                    // The wall-clock budget, checked once per object: failing the lookup stops gix.
                    if deadline.is_some_and(|(at, _)| Instant::now() > at) {
                        return None;
                    }
                    pack.entry_slice(range)
                });
                Ok((resolve, pack))
            },
            entries,
            Some(self.options.threads.max(1)),
            &mut gix_utils::progress::Discard,
            out,
            &never,
            gix_hash::Kind::Sha1,
            self.options.alloc_limit(),
            self.version,
        )
    }
}

/// Hands gix the bases a [`BaseLookup`] knows, after checking their size and id.
struct BaseFinder<'a> {
    bases: &'a dyn BaseLookup,
    max_object_bytes: u64,
    error: RefCell<Option<PackError>>,
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
        if gix_object::compute_hash(gix_hash::Kind::Sha1, kind.into(), &data).ok() != Some(id) {
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

/// The `.idx` output; remembers the first I/O error, which gix would otherwise only describe.
struct IdxWriter {
    out: BufWriter<File>,
    error: Option<std::io::Error>,
}

impl IdxWriter {
    fn create(path: &Path) -> Result<Self, PackError> {
        let file = File::create(path).map_err(|e| PackError::io(path, e))?;
        Ok(IdxWriter {
            out: BufWriter::new(file),
            error: None,
        })
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    fn remember(&mut self, err: std::io::Error) -> std::io::Error {
        let kind = err.kind();
        self.error.get_or_insert(err);
        std::io::Error::new(kind, "writing the pack index failed")
    }
}

impl Write for IdxWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf).map_err(|e| self.remember(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush().map_err(|e| self.remember(e))
    }
}

/// Removes the files written so far unless indexing succeeded.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
