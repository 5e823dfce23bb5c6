//! A quarantine: a throw-away git directory holding the pushed pack, with the upstream's
//! history (the `file://` repository or the HTTP mirror) as an alternate. git itself answers
//! questions across both, exactly as the upstream's receive-pack would see them, and the
//! upstream is never written to.

use std::path::{Path, PathBuf};

/// A quarantine directory, deleted on drop.
pub struct Quarantine {
    dir: tempfile::TempDir,
    history_objects: PathBuf,
}

impl Quarantine {
    /// Creates a quarantine under `parent` whose alternate is `history`'s object store.
    pub fn create(parent: &Path, history: &Path) -> std::io::Result<Quarantine> {
        std::fs::create_dir_all(parent)?;
        let dir = tempfile::Builder::new().prefix("q-").tempdir_in(parent)?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("objects/pack"))?;
        std::fs::create_dir_all(root.join("objects/info"))?;
        std::fs::create_dir_all(root.join("refs"))?;
        std::fs::write(root.join("HEAD"), "ref: refs/heads/quarantine\n")?;
        std::fs::write(
            root.join("config"),
            "[core]\n\trepositoryformatversion = 0\n\tbare = true\n",
        )?;
        let objects = history.join("objects").canonicalize()?;
        let mut line = objects.to_string_lossy().into_owned();
        line.push('\n');
        std::fs::write(root.join("objects/info/alternates"), line)?;
        Ok(Quarantine {
            dir,
            history_objects: objects,
        })
    }

    /// The git directory.
    pub fn git_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The upstream's object store (the quarantine's alternate), canonical.
    pub fn history_objects(&self) -> &Path {
        &self.history_objects
    }

    /// Where packs go: `objects/pack`.
    pub fn pack_dir(&self) -> PathBuf {
        self.dir.path().join("objects/pack")
    }
}
