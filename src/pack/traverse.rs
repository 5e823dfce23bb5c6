//! Visiting every object of an indexed pack once, decoded, through gix-pack's delta tree.
//!
//! The tree resolves each base once and applies its deltas while it is in memory, so the cost is one
//! inflate per entry and one delta application per delta. Memory: the tree (about 50 bytes per
//! object), the object being visited, and bases still needed by unvisited deltas.

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use gix_hash::ObjectId;
use gix_pack::cache::delta::{traverse, Tree};
use gix_pack::data::EntryRange;

use crate::pack::{Kind, PackError};

/// Why a traversal stopped early.
pub(crate) enum Stop<E> {
    /// The visitor returned this error.
    Visitor(E),
    /// The pack could not be traversed.
    Pack(PackError),
}

/// What a traversal needs besides the files.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) threads: usize,
    pub(crate) alloc_limit: Option<usize>,
}

/// Calls `visit` with every object of `pack`, in delta-tree order (bases before their deltas).
pub(crate) fn for_each_object<E, F>(
    index: &gix_pack::index::File,
    pack: &gix_pack::data::File,
    limits: Limits,
    visit: F,
) -> Result<(), Stop<E>>
where
    E: Send,
    F: FnMut(ObjectId, Kind, &[u8]) -> Result<(), E> + Send,
{
    let mut by_offset: Vec<u32> = (0..index.num_objects()).collect();
    by_offset.sort_unstable_by_key(|&i| index.pack_offset_at_index(i));
    let never = AtomicBool::new(false);
    let tree = Tree::from_offsets_in_pack(
        pack.path(),
        by_offset.into_iter(),
        &|&i| index.pack_offset_at_index(i),
        &|id| Ok(index.lookup(id).map(|i| index.pack_offset_at_index(i))),
        &mut gix_utils::progress::Discard,
        &never,
        gix_hash::Kind::Sha1,
    )
    .map_err(|e| Stop::Pack(gix_failure(&e)))?;

    // gix may call the inspector from several threads, so it must be `Send + Clone`: share the
    // visitor and its first error behind a mutex (uncontended with one thread).
    let state = Mutex::new((visit, None::<E>));
    let resolver = resolver(|range, pack| pack.entry_slice(range));
    let inspect =
        |i: &mut u32, _: &dyn gix_utils::progress::Progress, ctx: traverse::Context<'_>| {
            let fail = || gix_error::message("object visitor failed").validation_error();
            let kind = ctx
                .entry
                .header
                .as_kind()
                .map(Kind::from)
                .ok_or_else(fail)?;
            let id = index.oid_at_index(*i).to_owned();
            let mut guard = state.lock().map_err(|_| fail())?;
            let (visit, error) = &mut *guard;
            match visit(id, kind, ctx.decompressed) {
                Ok(()) => Ok(()),
                Err(e) => {
                    *error = Some(e);
                    Err(fail())
                }
            }
        };
    let result = tree.traverse(
        resolver,
        pack,
        pack.pack_end() as u64,
        inspect,
        traverse::Options {
            object_progress: Box::new(gix_utils::progress::Discard),
            size_progress: &mut gix_utils::progress::Discard,
            thread_limit: Some(limits.threads.max(1)),
            should_interrupt: &never,
            object_hash: gix_hash::Kind::Sha1,
            alloc_limit_bytes: limits.alloc_limit,
        },
    );
    let visitor_error = state.into_inner().ok().and_then(|(_, e)| e);
    match (result, visitor_error) {
        (_, Some(e)) => Err(Stop::Visitor(e)),
        (Ok(_), None) => Ok(()),
        (Err(e), None) => Err(Stop::Pack(gix_failure(&e))),
    }
}

/// Pins a closure to the higher-ranked signature gix-pack wants for its entry resolver.
pub(crate) fn resolver<F>(f: F) -> F
where
    F: for<'r> Fn(EntryRange, &'r gix_pack::data::File) -> Option<&'r [u8]> + Send + Clone,
{
    f
}

/// Maps a gix-pack failure that none of our own checks explains.
pub(crate) fn gix_failure(err: &gix_error::Error) -> PackError {
    if err.is_corrupted() {
        PackError::BadDelta {
            detail: err.to_string(),
        }
    } else {
        PackError::internal(err)
    }
}
