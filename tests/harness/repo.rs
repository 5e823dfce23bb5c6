//! Bare repositories with history, written with plumbing (no work tree needed), and random content.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::git;

/// A bare repository on disk (an upstream's repository).
#[derive(Clone, Debug)]
pub struct Repo {
    /// Its folder (`.../name.git`).
    pub path: PathBuf,
}

/// Commits of the history that [`Repo::with_history`] writes.
#[derive(Clone, Debug)]
pub struct History {
    /// `main`, oldest first (5 commits).
    pub main: Vec<String>,
    /// `feature`, which forks from `main[2]`, oldest first (2 commits).
    pub feature: Vec<String>,
}

impl Repo {
    /// `git init --bare` at `path` (parents created), `HEAD` -> `main`, configured as the tests'
    /// upstreams need: push options advertised, receive-pack over HTTP, filters and lazy fetches.
    #[track_caller]
    pub fn init_bare(path: &Path) -> Repo {
        std::fs::create_dir_all(path).expect("create the repository folder");
        git::ok(
            path,
            &["init", "-q", "--bare", "--initial-branch=main", "."],
        );
        let repo = Repo {
            path: path.to_path_buf(),
        };
        for (key, value) in [
            ("receive.advertisePushOptions", "true"),
            ("receive.advertiseAtomic", "true"),
            ("http.receivepack", "true"),
            ("uploadpack.allowFilter", "true"),
            ("uploadpack.allowAnySHA1InWant", "true"),
            ("gc.auto", "0"),
        ] {
            repo.git(&["config", key, value]);
        }
        repo
    }

    /// A bare repository with history: `main` (5 commits, nested folders, a 256 KiB file),
    /// `feature` (2 commits forked from the 3rd commit of main), an annotated tag `v1.0` on main's
    /// 4th commit and a lightweight tag `light` on its 2nd.
    #[track_caller]
    pub fn with_history(path: &Path) -> (Repo, History) {
        let repo = Repo::init_bare(path);
        let mut main = Vec::new();
        let big = random_bytes(256 * 1024, 7);
        main.push(repo.commit(
            "main",
            &[
                ("README.md", b"# demo\n".as_slice()),
                ("src/lib.rs", b"pub fn one() -> u32 { 1 }\n"),
                ("assets/blob.bin", &big),
            ],
            "initial commit",
        ));
        for i in 2..=5 {
            let text = format!("pub fn n() -> u32 {{ {i} }}\n");
            let doc = format!("change {i}\n");
            main.push(repo.commit(
                "main",
                &[
                    ("src/lib.rs", text.as_bytes()),
                    (&format!("docs/change-{i}.md"), doc.as_bytes()),
                ],
                &format!("change {i}"),
            ));
        }
        repo.git(&["update-ref", "refs/heads/feature", &main[2]]);
        let feature = vec![
            repo.commit(
                "feature",
                &[("feature.txt", b"feature one\n".as_slice())],
                "feature one",
            ),
            repo.commit(
                "feature",
                &[("feature.txt", b"feature two\n".as_slice())],
                "feature two",
            ),
        ];
        repo.git(&["tag", "-a", "-m", "release 1.0", "v1.0", &main[3]]);
        repo.git(&["tag", "light", &main[1]]);
        (repo, History { main, feature })
    }

    /// Runs git in this repository, panicking unless it succeeds; stdout trimmed.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        git::ok(&self.path, args)
    }

    /// Commits `files` (path, content) on top of `branch` (created if absent) with plumbing;
    /// returns the new commit id.
    #[track_caller]
    pub fn commit(&self, branch: &str, files: &[(&str, &[u8])], message: &str) -> String {
        let full = format!("refs/heads/{branch}");
        let parent = self.rev(&full);
        let index = self.path.join(format!("index.tmp.{}", std::process::id()));
        let index_str = index.to_string_lossy().into_owned();
        let with_index = |args: &[&str]| {
            let mut cmd = git::command();
            cmd.current_dir(&self.path)
                .env("GIT_INDEX_FILE", &index_str)
                .args(args);
            super::process::run(&mut cmd, git::TIMEOUT)
                .assert_ok()
                .stdout
                .trim_end()
                .to_owned()
        };
        match &parent {
            Some(p) => with_index(&["read-tree", p]),
            None => with_index(&["read-tree", "--empty"]),
        };
        for (path, content) in files {
            let blob = self.write_blob(content);
            with_index(&[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{blob},{path}"),
            ]);
        }
        let tree = with_index(&["write-tree"]);
        let _ = std::fs::remove_file(&index);
        let mut args = vec!["commit-tree", tree.as_str(), "-m", message];
        if let Some(p) = &parent {
            args.push("-p");
            args.push(p);
        }
        let commit = self.git(&args);
        let old = parent.unwrap_or_else(|| "0".repeat(40));
        self.git(&["update-ref", &full, &commit, &old]);
        commit
    }

    /// Writes a blob with `content`, returns its id.
    #[track_caller]
    pub fn write_blob(&self, content: &[u8]) -> String {
        let mut cmd = git::command();
        cmd.current_dir(&self.path)
            .args(["hash-object", "-w", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn git hash-object");
        {
            let mut stdin = child.stdin.take().expect("hash-object stdin");
            stdin.write_all(content).expect("write to git hash-object");
        }
        let out = child.wait_with_output().expect("wait for git hash-object");
        assert!(
            out.status.success(),
            "git hash-object: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The id `rev` resolves to, `None` when it does not exist.
    pub fn rev(&self, rev: &str) -> Option<String> {
        let out = git::run(
            &self.path,
            &["rev-parse", "-q", "--verify", &format!("{rev}^{{object}}")],
        );
        out.success().then(|| out.stdout.trim().to_owned())
    }

    /// Every ref (not `HEAD`), name -> id.
    pub fn refs(&self) -> BTreeMap<String, String> {
        git::parse_refs(&self.git(&["for-each-ref", "--format=%(objectname) %(refname)"]))
    }

    /// Whether the object exists here.
    pub fn has_object(&self, id: &str) -> bool {
        git::run(&self.path, &["cat-file", "-e", id]).success()
    }

    /// Installs an executable hook `hooks/<name>` with `script` as its content.
    pub fn install_hook(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.path.join("hooks");
        std::fs::create_dir_all(&dir).expect("create hooks folder");
        let hook = dir.join(name);
        std::fs::write(&hook, script).expect("write hook");
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
            .expect("make hook executable");
    }
}

/// `len` pseudo-random bytes (xorshift64*, seeded): incompressible, reproducible, fast.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `len` pseudo-random bytes to `path` without holding them all in memory.
pub fn write_random_file(path: &Path, len: usize, seed: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create file"));
    let chunk = 1 << 20;
    let mut written = 0;
    let mut n = 0;
    while written < len {
        let size = chunk.min(len - written);
        file.write_all(&random_bytes(size, seed.wrapping_add(n)))
            .expect("write random data");
        written += size;
        n += 1;
    }
    file.flush().expect("flush random file");
}
