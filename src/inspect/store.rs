//! The upstream's history read in-process: the packs and loose objects of a git object
//! directory (the mirror's, or a `file://` upstream's own), with its alternates.
//!
//! This is what `git cat-file --batch-command` answered before, without starting git for
//! every push: "does the upstream have X, and of what kind" and "the content of commit or tree
//! X". The directory was written by git (fetches into the mirror, the upstream's own
//! receive-pack) or by the gateway from packs it verified, so its packs are trusted as git
//! trusts them: read through their `.idx`, not verified again.
//!
//! The directory may change while it is read: a fetch adds packs or loose objects, a repack
//! replaces packs. A pack opened stays readable (an open file survives its removal); an
//! object not found is looked for once more after listing the packs again, as git does.
//! A missing object is `None`, never fetched (a blob-less mirror lacks blobs by design).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::pack::{IndexedPack, Kind, ObjectId, Options};

use super::InspectError;

/// Alternates followed from the first directory, at most this deep (git allows 5).
const MAX_ALTERNATE_DEPTH: usize = 5;
/// A loose object's header (`<kind> <size>\0`) is at most this long.
const LOOSE_HEADER_MAX: usize = 32;

/// The objects of one object directory and its alternates.
pub(crate) struct ObjectStore {
    /// The directory, then its alternates (canonical paths).
    dirs: Vec<PathBuf>,
    /// `.idx` files already opened.
    opened: HashSet<PathBuf>,
    /// Each pack folder's modification time when it was last listed: a miss lists it again
    /// only if a pack was added or removed since (one `stat`, not a listing, per miss).
    listed: HashMap<PathBuf, std::time::SystemTime>,
    packs: Vec<Arc<IndexedPack>>,
    options: Options,
    zlib: gix_zlib::Decompress,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore")
            .field("dirs", &self.dirs)
            .field("packs", &self.packs.len())
            .finish_non_exhaustive()
    }
}

impl ObjectStore {
    /// Opens the object directory `objects` (e.g. `<mirror>/objects`); objects over
    /// `max_object_bytes` are errors when read.
    pub(crate) fn open(objects: &Path, max_object_bytes: u64) -> Result<ObjectStore, InspectError> {
        let mut dirs = Vec::new();
        collect_dirs(objects, 0, &mut dirs)?;
        let options = Options {
            max_object_bytes,
            // Packs written by git (e.g. `gc --aggressive`) chain deeper than pushes may.
            max_delta_depth: 10_000,
            find_cache_bytes: 4 << 20,
            ..Options::default()
        };
        let mut store = ObjectStore {
            dirs,
            opened: HashSet::new(),
            listed: HashMap::new(),
            packs: Vec::new(),
            options,
            zlib: gix_zlib::Decompress::new(),
        };
        store.rescan()?;
        Ok(store)
    }

    /// Opens the packs not opened yet; whether there were any.
    fn rescan(&mut self) -> Result<bool, InspectError> {
        let mut found = false;
        for dir in &self.dirs {
            let pack_dir = dir.join("pack");
            let modified = std::fs::metadata(&pack_dir).and_then(|m| m.modified()).ok();
            if modified.is_some() && self.listed.get(&pack_dir) == modified.as_ref() {
                continue;
            }
            let entries = match std::fs::read_dir(&pack_dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&pack_dir, &e)),
            };
            let mut present = HashSet::new();
            for entry in entries.flatten() {
                let idx = entry.path();
                if idx.extension().is_none_or(|e| e != "idx") {
                    continue;
                }
                present.insert(idx.clone());
                if self.opened.contains(&idx) {
                    continue;
                }
                let pack = idx.with_extension("pack");
                match open_shared(&pack, &idx, &self.options) {
                    Ok(p) => {
                        self.packs.push(p);
                        self.opened.insert(idx);
                        found = true;
                    }
                    // Being written (the .idx comes last) or just removed by a repack: its
                    // objects are elsewhere, or the next rescan finds it.
                    Err(_) if !pack.is_file() || !idx.is_file() => {}
                    Err(e) => {
                        return Err(InspectError::Objects {
                            detail: format!("opening {}: {e}", idx.display()),
                        })
                    }
                }
            }
            if let Some(at) = modified {
                self.listed.insert(pack_dir.clone(), at);
            }
            // Packs removed since (a repack) are closed once no store uses them, so their
            // disk space is freed.
            if let Ok(mut shared) = shared().lock() {
                shared.packs.retain(|idx, _| {
                    idx.parent() != Some(pack_dir.as_path()) || present.contains(idx)
                });
            }
        }
        Ok(found)
    }

    /// The kind of each of `ids`, `None` for those the directory lacks.
    pub(crate) fn info(&mut self, ids: &[ObjectId]) -> Result<Vec<Option<Kind>>, InspectError> {
        ids.iter().map(|id| self.kind(id)).collect()
    }

    /// The kind of `id`, `None` if the directory lacks it.
    pub(crate) fn kind(&mut self, id: &ObjectId) -> Result<Option<Kind>, InspectError> {
        self.lookup(id, |store, id| store.kind_once(id))
    }

    /// Reads `id` into `buf` (its content, without header) and returns its kind; `None` if the
    /// directory lacks it. Objects over `max` bytes are errors.
    pub(crate) fn contents(
        &mut self,
        id: &ObjectId,
        max: u64,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Kind>, InspectError> {
        self.lookup(id, |store, id| store.contents_once(id, max, buf))
    }

    /// Looks `id` up with `find`; on a miss, once more after opening packs that appeared.
    fn lookup<T>(
        &mut self,
        id: &ObjectId,
        mut find: impl FnMut(&mut Self, &ObjectId) -> Result<Option<T>, InspectError>,
    ) -> Result<Option<T>, InspectError> {
        if let Some(found) = find(self, id)? {
            return Ok(Some(found));
        }
        if self.rescan()? {
            return find(self, id);
        }
        Ok(None)
    }

    fn kind_once(&mut self, id: &ObjectId) -> Result<Option<Kind>, InspectError> {
        for pack in &self.packs {
            if pack.contains(id) {
                return Ok(pack.kind_of(id)?);
            }
        }
        let mut head = Vec::new();
        Ok(self
            .loose(id, LOOSE_HEADER_MAX as u64, &mut head, false)?
            .map(|(kind, _)| kind))
    }

    fn contents_once(
        &mut self,
        id: &ObjectId,
        max: u64,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Kind>, InspectError> {
        // Only commits, trees and tags are read: a blob where one was expected is an error.
        let not_a_blob = |kind: Kind| match kind {
            Kind::Blob => Err(InspectError::Malformed {
                id: id.to_string(),
                what: "commit or tree (it is a blob)",
            }),
            kind => Ok(kind),
        };
        for pack in &self.packs {
            if pack.contains(id) {
                if let Some(kind) = pack.kind_of(id)? {
                    not_a_blob(kind)?;
                }
                let kind = pack.find(id, buf)?;
                if buf.len() as u64 > max {
                    return Err(too_large(id, buf.len() as u64, max));
                }
                return Ok(kind);
            }
        }
        let mut raw = Vec::new();
        let Some((kind, size)) = self.loose(id, max, &mut raw, false)? else {
            return Ok(None);
        };
        not_a_blob(kind)?;
        if size > max {
            return Err(too_large(id, size, max));
        }
        if self.loose(id, max, &mut raw, true)?.is_none() {
            return Ok(None);
        }
        let start = raw
            .len()
            .saturating_sub(usize::try_from(size).unwrap_or(usize::MAX));
        buf.clear();
        buf.extend_from_slice(raw.get(start..).unwrap_or_default());
        Ok(Some(kind))
    }

    /// Reads loose object `id`: its kind and size, with `out` holding the inflated header and
    /// (when `whole`) the content after it. `None` if there is no such file.
    fn loose(
        &mut self,
        id: &ObjectId,
        max: u64,
        out: &mut Vec<u8>,
        whole: bool,
    ) -> Result<Option<(Kind, u64)>, InspectError> {
        let hex = id.to_string();
        let (dir_name, file_name) = hex.split_at(2);
        for dir in &self.dirs {
            let path = dir.join(dir_name).join(file_name);
            let compressed = match std::fs::read(&path) {
                Ok(data) => data,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&path, &e)),
            };
            let limit = if whole {
                usize::try_from(max)
                    .unwrap_or(usize::MAX)
                    .saturating_add(LOOSE_HEADER_MAX)
            } else {
                LOOSE_HEADER_MAX
            };
            self.inflate(&compressed, limit, out)
                .map_err(|detail| malformed_loose(&path, detail))?;
            let nul = out
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| malformed_loose(&path, "no header"))?;
            let header = std::str::from_utf8(out.get(..nul).unwrap_or_default())
                .map_err(|_| malformed_loose(&path, "header not text"))?;
            let (kind, size) = header
                .split_once(' ')
                .ok_or_else(|| malformed_loose(&path, "header without size"))?;
            let kind = match kind {
                "commit" => Kind::Commit,
                "tree" => Kind::Tree,
                "blob" => Kind::Blob,
                "tag" => Kind::Tag,
                _ => return Err(malformed_loose(&path, "unknown kind")),
            };
            let size: u64 = size
                .parse()
                .map_err(|_| malformed_loose(&path, "bad size"))?;
            if whole && size <= max && out.len() as u64 != nul as u64 + 1 + size {
                return Err(malformed_loose(&path, "size differs from content"));
            }
            return Ok(Some((kind, size)));
        }
        Ok(None)
    }

    /// Inflates `compressed` into `out`, at most `limit` bytes (a longer stream is cut there).
    fn inflate(
        &mut self,
        compressed: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        self.zlib.reset();
        out.clear();
        let mut input = compressed;
        loop {
            let produced_so_far = out.len();
            if produced_so_far >= limit {
                return Ok(());
            }
            let room = (limit - produced_so_far).min(64 * 1024);
            out.resize(produced_so_far + room, 0);
            let (in_before, out_before) = (self.zlib.total_in(), self.zlib.total_out());
            let status = self
                .zlib
                .decompress(
                    input,
                    out.get_mut(produced_so_far..).unwrap_or_default(),
                    gix_zlib::FlushDecompress::None,
                )
                .map_err(|_| "not a zlib stream")?;
            let consumed = usize::try_from(self.zlib.total_in() - in_before).unwrap_or(usize::MAX);
            let produced =
                usize::try_from(self.zlib.total_out() - out_before).unwrap_or(usize::MAX);
            out.truncate(produced_so_far + produced);
            input = input.get(consumed..).unwrap_or_default();
            if status == gix_zlib::Status::StreamEnd {
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                return Err("truncated zlib stream");
            }
        }
    }
}

/// Packs opened by earlier stores, by `.idx` path: a mirror's packs are opened once, not by
/// every push (a pack's name is its checksum, so a path names the same content for as long
/// as it exists).
struct Shared {
    packs: HashMap<PathBuf, (Arc<IndexedPack>, u64)>,
    /// Incremented by every use; entries least recently used are dropped past the limit.
    clock: u64,
}

/// Packs kept open between stores (each holds a file, a mapped `.idx` and a small cache).
const SHARED_PACKS: usize = 256;

fn shared() -> &'static Mutex<Shared> {
    static SHARED: OnceLock<Mutex<Shared>> = OnceLock::new();
    SHARED.get_or_init(|| {
        Mutex::new(Shared {
            packs: HashMap::new(),
            clock: 0,
        })
    })
}

/// The pack `pack` with its index `idx`, opened now or by an earlier store (with the options
/// of the first).
fn open_shared(
    pack: &Path,
    idx: &Path,
    options: &Options,
) -> Result<Arc<IndexedPack>, crate::pack::PackError> {
    let shared = shared();
    if let Ok(mut shared) = shared.lock() {
        shared.clock += 1;
        let now = shared.clock;
        if let Some((found, used)) = shared.packs.get_mut(idx) {
            *used = now;
            return Ok(found.clone());
        }
        drop(shared);
    }
    let opened = Arc::new(IndexedPack::open_existing(pack, idx, options)?);
    if let Ok(mut shared) = shared.lock() {
        if shared.packs.len() >= SHARED_PACKS {
            // Drop the least recently used half (and with it packs since removed).
            let mut uses: Vec<u64> = shared.packs.values().map(|(_, used)| *used).collect();
            uses.sort_unstable();
            let cut = uses.get(uses.len() / 2).copied().unwrap_or(0);
            shared.packs.retain(|_, (_, used)| *used > cut);
        }
        let now = shared.clock;
        shared
            .packs
            .insert(idx.to_path_buf(), (opened.clone(), now));
    }
    Ok(opened)
}

/// `dir` and, recursively, the directories its `info/alternates` names.
fn collect_dirs(dir: &Path, depth: usize, into: &mut Vec<PathBuf>) -> Result<(), InspectError> {
    let dir = dir.canonicalize().map_err(|e| io_error(dir, &e))?;
    if into.contains(&dir) {
        return Ok(());
    }
    into.push(dir.clone());
    let file = dir.join("info/alternates");
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(&file, &e)),
    };
    if depth >= MAX_ALTERNATE_DEPTH {
        return Err(InspectError::Objects {
            detail: format!("{}: alternates nested too deep", file.display()),
        });
    }
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Relative alternates are relative to the object directory.
        collect_dirs(&dir.join(line), depth + 1, into)?;
    }
    Ok(())
}

fn io_error(path: &Path, e: &std::io::Error) -> InspectError {
    InspectError::Objects {
        detail: format!("reading {}: {e}", path.display()),
    }
}

fn malformed_loose(path: &Path, what: &str) -> InspectError {
    InspectError::Objects {
        detail: format!("loose object {}: {what}", path.display()),
    }
}

fn too_large(id: &ObjectId, size: u64, limit: u64) -> InspectError {
    InspectError::ObjectTooLarge {
        id: id.to_string(),
        size,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
        crate::test_git::git(dir, args, b"")
    }

    fn text(out: Vec<u8>) -> String {
        String::from_utf8(out).expect("utf-8").trim().to_string()
    }

    /// A repository with history worth deltas: one file rewritten a little in each commit,
    /// a tag, some of it packed (with deltas) and some loose.
    fn repo(dir: &Path) -> PathBuf {
        let work = dir.join("w");
        std::fs::create_dir_all(&work).expect("dir");
        git(&work, &["init", "-q"]);
        let mut content: Vec<String> = (0..400).map(|i| format!("line {i} of a file\n")).collect();
        for c in 0..30 {
            content[c * 7 % 400] = format!("changed in commit {c}\n");
            std::fs::write(work.join("f.txt"), content.concat()).expect("write");
            std::fs::create_dir_all(work.join(format!("d{}", c % 3))).expect("dir");
            std::fs::write(work.join(format!("d{}/g{c}.txt", c % 3)), "g\n").expect("write");
            git(&work, &["add", "-A"]);
            git(&work, &["commit", "-q", "-m", &format!("commit {c}")]);
            if c == 20 {
                git(&work, &["tag", "-a", "-m", "t", "v1"]);
                git(
                    &work,
                    &["repack", "-a", "-d", "-q", "--depth=50", "--window=50"],
                );
            }
        }
        work.join(".git/objects")
    }

    #[test]
    fn reads_what_git_reads_from_packs_and_loose_objects() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let objects = repo(tmp.path());
        let work = tmp.path().join("w");
        let all = text(git(
            &work,
            &["cat-file", "--batch-all-objects", "--batch-check"],
        ));
        let mut store = ObjectStore::open(&objects, 1 << 20).expect("opens");
        assert!(!store.packs.is_empty(), "some objects are packed");
        let mut buf = Vec::new();
        let mut counted = 0;
        for line in all.lines() {
            let mut parts = line.split(' ');
            let (Some(hex), Some(kind)) = (parts.next(), parts.next()) else {
                panic!("{line}");
            };
            let id = ObjectId::from_hex(hex.as_bytes()).expect("id");
            let found = store.kind(&id).expect("kind").expect("present");
            assert_eq!(found.as_str(), kind, "{hex}");
            if found == Kind::Blob {
                assert!(matches!(
                    store.contents(&id, 1 << 20, &mut buf),
                    Err(InspectError::Malformed { .. })
                ));
                continue;
            }
            let got = store.contents(&id, 1 << 20, &mut buf).expect("reads");
            assert_eq!(got, Some(found));
            assert_eq!(buf, git(&work, &["cat-file", kind, hex]), "{hex}");
            counted += 1;
        }
        assert!(counted > 90, "commits, trees and a tag: {counted}");

        let absent = ObjectId::from_hex(&[b'1'; 40]).expect("id");
        assert_eq!(store.kind(&absent).expect("kind"), None);
        assert_eq!(
            store.contents(&absent, 1 << 20, &mut buf).expect("read"),
            None
        );

        // Over the limit: an error naming the sizes.
        let head = ObjectId::from_hex(text(git(&work, &["rev-parse", "HEAD^{tree}"])).as_bytes())
            .expect("id");
        assert!(matches!(
            store.contents(&head, 10, &mut buf),
            Err(InspectError::ObjectTooLarge { limit: 10, .. })
        ));
    }

    #[test]
    fn finds_objects_added_after_it_was_opened_and_in_alternates() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let objects = repo(tmp.path());
        let work = tmp.path().join("w");
        // A second repository borrowing the first's objects.
        let other = tmp.path().join("o.git");
        git(tmp.path(), &["init", "-q", "--bare", "o.git"]);
        std::fs::write(
            other.join("objects/info/alternates"),
            format!("{}\n", objects.display()),
        )
        .expect("alternates");
        let mut store = ObjectStore::open(&other.join("objects"), 1 << 20).expect("opens");
        let head = text(git(&work, &["rev-parse", "HEAD"]));
        let head = ObjectId::from_hex(head.as_bytes()).expect("id");
        assert_eq!(store.kind(&head).expect("kind"), Some(Kind::Commit));

        // A commit made after opening, then packed into a new pack (and its loose copy gone).
        std::fs::write(work.join("late.txt"), "late\n").expect("write");
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "late"]);
        git(&work, &["repack", "-d", "-q"]);
        git(&work, &["prune-packed"]);
        let late = text(git(&work, &["rev-parse", "HEAD"]));
        let late = ObjectId::from_hex(late.as_bytes()).expect("id");
        let mut buf = Vec::new();
        assert_eq!(
            store.contents(&late, 1 << 20, &mut buf).expect("read"),
            Some(Kind::Commit)
        );
        assert_eq!(buf, git(&work, &["cat-file", "commit", &late.to_string()]));
    }
}
