//! Private temporary folders, one per test part; kept for inspection when `GITGATE_KEEP_TMP` is set.

use std::path::{Path, PathBuf};

/// A temporary folder removed on drop (unless `GITGATE_KEEP_TMP` is set).
pub struct Tmp {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Tmp {
    /// Creates `$TMPDIR/gitgate-<label>-XXXXXX`.
    pub fn new(label: &str) -> Tmp {
        let dir = tempfile::Builder::new()
            .prefix(&format!("gitgate-{label}-"))
            .tempdir()
            .expect("create a temporary folder");
        let path = dir.path().to_path_buf();
        Tmp {
            dir: Some(dir),
            path,
        }
    }

    /// Its absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside it (not created).
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Creates (with parents) and returns the folder `rel` inside it.
    pub fn dir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let p = self.path.join(rel);
        std::fs::create_dir_all(&p).expect("create a folder in the temporary folder");
        p
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        if std::env::var_os("GITGATE_KEEP_TMP").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("keeping {}", dir.keep().display());
            }
        }
    }
}
