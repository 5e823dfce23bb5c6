//! The real git CLI, isolated from the machine's and the user's configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{self, Output};

/// Deadline of one git command, unless a test asks for more.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// A `git` command with no system or global configuration, no prompts, fixed identity and dates,
/// and no variables of an enclosing git (hooks, `GIT_DIR`...).
pub fn command() -> Command {
    let mut cmd = Command::new("git");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .env("LC_ALL", "C")
        .env_remove("SSH_ASKPASS")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    cmd
}

/// Runs git with `args` in `cwd` (isolated as [`command`]), no stdin.
#[track_caller]
pub fn run(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = command();
    cmd.current_dir(cwd).args(args);
    process::run(&mut cmd, TIMEOUT)
}

/// Like [`run`], panicking unless git succeeds; returns stdout with the trailing newline trimmed.
#[track_caller]
pub fn ok(cwd: &Path, args: &[&str]) -> String {
    run(cwd, args).assert_ok().stdout.trim_end().to_owned()
}

/// Parses `ls-remote` / `for-each-ref --format='%(objectname) %(refname)'` output into ref -> id.
pub fn parse_refs(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let id = parts.next()?;
            let name = parts.next()?;
            Some((name.to_owned(), id.to_owned()))
        })
        .collect()
}

/// A git client as an agent would run it: its own HOME, an optional protocol version, extra `-c`
/// settings and environment.
#[derive(Clone)]
pub struct Git {
    home: PathBuf,
    protocol: Option<u8>,
    config: Vec<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
}

impl Git {
    /// A client whose HOME is `<dir>/home` (created, with a minimal `.gitconfig`).
    pub fn new(dir: &Path) -> Git {
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("create git home");
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Agent\n\temail = agent@example.com\n\
             [init]\n\tdefaultBranch = main\n\
             [advice]\n\tdetachedHead = false\n\
             [gc]\n\tauto = 0\n\
             [maintenance]\n\tauto = false\n",
        )
        .expect("write .gitconfig");
        Git {
            home,
            protocol: None,
            config: Vec::new(),
            env: Vec::new(),
            timeout: TIMEOUT,
        }
    }

    // The settings below return a modified copy (same HOME): `s.git.protocol(2).clone(...)`.
    // (`Git::clone` is `git clone`, hence `Clone::clone` spelled out.)

    /// A copy using `-c protocol.version=N` on every command.
    pub fn protocol(&self, version: u8) -> Git {
        let mut git = Clone::clone(self);
        git.protocol = Some(version);
        git
    }

    /// A copy adding `-c key=value` to every command.
    pub fn config(&self, key_value: &str) -> Git {
        let mut git = Clone::clone(self);
        git.config.push(key_value.to_owned());
        git
    }

    /// A copy sending `Authorization: Bearer TOKEN` on every request (`http.extraHeader`).
    pub fn bearer(&self, token: &str) -> Git {
        self.config(&format!("http.extraHeader=Authorization: Bearer {token}"))
    }

    /// A copy setting an environment variable on every command.
    pub fn env(&self, key: &str, value: &str) -> Git {
        let mut git = Clone::clone(self);
        git.env.push((key.to_owned(), value.to_owned()));
        git
    }

    /// A copy writing git's packet trace (`GIT_TRACE_PACKET`) to `file`.
    pub fn trace_packets(&self, file: &Path) -> Git {
        let file = file.to_string_lossy().into_owned();
        self.env("GIT_TRACE_PACKET", &file)
    }

    /// A copy with another per-command deadline.
    pub fn timeout(&self, timeout: Duration) -> Git {
        let mut git = Clone::clone(self);
        git.timeout = timeout;
        git
    }

    /// The command `git [-c ...] ARGS` in `cwd`, not yet run.
    pub fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = command();
        cmd.env_remove("GIT_CONFIG_GLOBAL")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .current_dir(cwd);
        if let Some(v) = self.protocol {
            cmd.arg("-c").arg(format!("protocol.version={v}"));
        }
        for kv in &self.config {
            cmd.arg("-c").arg(kv);
        }
        cmd.args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `git ARGS` in `cwd`.
    #[track_caller]
    pub fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        process::run(&mut self.command(cwd, args), self.timeout)
    }

    /// Runs `git ARGS` in `cwd`, panicking unless it succeeds; stdout trimmed.
    #[track_caller]
    pub fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        self.run(cwd, args).assert_ok().stdout.trim_end().to_owned()
    }

    /// `git clone EXTRA... URL DEST`.
    #[track_caller]
    pub fn clone(&self, url: &str, dest: &Path, extra: &[&str]) -> Output {
        let dest = dest.to_string_lossy().into_owned();
        let mut args = vec!["clone"];
        args.extend_from_slice(extra);
        args.push(url);
        args.push(&dest);
        self.run(&self.home, &args)
    }

    /// `git push ARGS` in `repo`.
    #[track_caller]
    pub fn push(&self, repo: &Path, args: &[&str]) -> Output {
        let mut all = vec!["push"];
        all.extend_from_slice(args);
        self.run(repo, &all)
    }

    /// `git fetch ARGS` in `repo`.
    #[track_caller]
    pub fn fetch(&self, repo: &Path, args: &[&str]) -> Output {
        let mut all = vec!["fetch"];
        all.extend_from_slice(args);
        self.run(repo, &all)
    }

    /// `git ls-remote URL`; the refs (and `HEAD`, peeled `^{}` entries) when it succeeds.
    #[track_caller]
    pub fn ls_remote(&self, url: &str) -> Result<BTreeMap<String, String>, Output> {
        let out = self.run(&self.home, &["ls-remote", url]);
        if out.success() {
            Ok(parse_refs(&out.stdout))
        } else {
            Err(out)
        }
    }

    /// The id `rev` resolves to in `repo`.
    #[track_caller]
    pub fn rev(&self, repo: &Path, rev: &str) -> String {
        self.ok(
            repo,
            &["rev-parse", "--verify", &format!("{rev}^{{object}}")],
        )
    }

    /// Writes `content` to `path` in the work tree `repo`, commits it, returns the commit id.
    #[track_caller]
    pub fn commit_file(&self, repo: &Path, path: &str, content: &[u8], message: &str) -> String {
        let file = repo.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("create folders in the work tree");
        }
        std::fs::write(&file, content).expect("write a file in the work tree");
        self.ok(repo, &["add", "--", path]);
        self.ok(repo, &["commit", "-q", "-m", message]);
        self.rev(repo, "HEAD")
    }

    /// Commits a file of `len` pseudo-random (incompressible) bytes at `path` in the work tree
    /// `repo`; returns the commit id. For big pushes: the file is written in 1 MiB chunks.
    #[track_caller]
    pub fn commit_random_file(&self, repo: &Path, path: &str, len: usize, seed: u64) -> String {
        let file = repo.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("create folders in the work tree");
        }
        super::repo::write_random_file(&file, len, seed);
        self.ok(repo, &["add", "--", path]);
        let message = format!("{len} random bytes in {path}");
        self.ok(repo, &["commit", "-q", "-m", &message]);
        self.rev(repo, "HEAD")
    }

    /// Its HOME folder (also the working folder of `clone` and `ls-remote`).
    pub fn home(&self) -> &Path {
        &self.home
    }
}
