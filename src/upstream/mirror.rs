//! Mirrors of HTTP and SSH upstream repositories under `state_dir/mirrors`: blobless partial
//! clones (commits and trees suffice to classify ref updates and list changed paths),
//! refreshed with the vaulted credential when a push needs them.
//!
//! An HTTP credential reaches git through `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/
//! `GIT_CONFIG_VALUE_n` environment variables: never on a command line (visible to every local
//! user in `/proc`), never in the mirror's config file. SSH upstreams are fetched through
//! OpenSSH's `ssh` (`GIT_SSH_COMMAND`), given the key file's path and the pinned known_hosts
//! file with strict host key checking: the key itself is never on a command line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::process::Command;
use url::Url;

use super::UpstreamError;
use crate::config::HttpCredential;

/// When the last successful refresh of a mirror started.
/// Packs the gateway writes through to a mirror at most (bigger ones are mostly blobs).
const MAX_WRITE_THROUGH_BYTES: u64 = 16 << 20;
/// Packs a mirror may gather (one per fetch, one per written-through push) before it is
/// repacked into one.
const MAX_MIRROR_PACKS: usize = 32;

#[derive(Default)]
struct Freshness {
    started: Option<std::time::Instant>,
    /// The `remote.origin.url` last written (set again only when it changes).
    url: Option<String>,
}

/// How a mirror's `git fetch` authenticates to the upstream.
pub(crate) enum MirrorAuth<'a> {
    /// Smart HTTP, with the Basic credential when there is one.
    Http(Option<&'a HttpCredential>),
    /// SSH through OpenSSH's `ssh`, with the vaulted key and the pinned host keys only.
    Ssh {
        /// The private key file.
        key_file: &'a Path,
        /// The pinned known_hosts file.
        known_hosts: &'a Path,
    },
}

/// The mirrors of one upstream, each refreshed by one task at a time.
pub(crate) struct Mirrors {
    upstream: String,
    root: PathBuf,
    locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<Freshness>>>>,
}

impl Mirrors {
    pub(crate) fn new(upstream: String, root: PathBuf) -> Self {
        Mirrors {
            upstream,
            root,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Brings the mirror of `path` (fetched from `url`) up to date and returns its git dir.
    ///
    /// With `since`, a successful refresh that started at or after that instant is enough:
    /// the mirror then holds the upstream's refs as they were at `since` or later. Concurrent
    /// callers queue on the mirror's lock, so a burst of them costs one fetch, not one each.
    pub(crate) async fn refresh(
        &self,
        path: &str,
        url: &Url,
        auth: &MirrorAuth<'_>,
        since: Option<std::time::Instant>,
    ) -> Result<PathBuf, UpstreamError> {
        let (dir, lock) = self.dir_and_lock(path)?;
        let mut freshness = lock.lock().await;
        if let (Some(since), Some(started)) = (since, freshness.started) {
            if started >= since {
                tracing::debug!(mirror = %dir.display(), "mirror fresh enough: reused");
                return Ok(dir);
            }
        }
        freshness.started = None;
        let started = std::time::Instant::now();
        if !dir.join("HEAD").is_file() {
            freshness.url = None;
            self.init(&dir).await?;
        } else {
            self.consolidate(&dir, MAX_MIRROR_PACKS).await;
        }
        // Set on every refresh: the upstream's URL may have changed in the configuration.
        if freshness.url.as_deref() != Some(url.as_str()) {
            self.git(&dir, None)
                .args(["config", "remote.origin.url", url.as_str()])
                .run(self)
                .await?;
            freshness.url = Some(url.to_string());
        }
        self.git(&dir, Some(auth))
            .args([
                "fetch",
                "--quiet",
                "--prune",
                "--no-tags",
                "--no-write-fetch-head",
                "--filter=blob:none",
                "origin",
                "+refs/*:refs/*",
            ])
            .run(self)
            .await?;
        freshness.started = Some(started);
        Ok(dir)
    }

    fn dir_and_lock(
        &self,
        path: &str,
    ) -> Result<(PathBuf, Arc<tokio::sync::Mutex<Freshness>>), UpstreamError> {
        let name = if path.ends_with(".git") {
            path.to_string()
        } else {
            format!("{path}.git")
        };
        let dir = self.root.join(&self.upstream).join(name);
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .map_err(|_| self.failed("mirror lock poisoned".into()))?;
            locks.entry(dir.clone()).or_default().clone()
        };
        Ok((dir, lock))
    }

    /// The mirror of `path` made current for a push: against the advertisement made at
    /// `since` that listed `tips` when both are known ([`Mirrors::refresh_unless_current`]),
    /// else refreshed since `since` ([`Mirrors::refresh`]).
    pub(crate) async fn history(
        &self,
        path: &str,
        url: &Url,
        auth: &MirrorAuth<'_>,
        since: Option<std::time::Instant>,
        tips: Option<&[String]>,
    ) -> Result<PathBuf, UpstreamError> {
        match (since, tips) {
            (Some(at), Some(tips)) => self.refresh_unless_current(path, url, auth, at, tips).await,
            _ => self.refresh(path, url, auth, since).await,
        }
    }

    /// Like [`Mirrors::refresh`] with `since = at`, for an advertisement made at `at` that
    /// listed `tips`: when the mirror already holds every one of them (fetched, or written
    /// through by the gateway's own pushes), it is as current as a fetch would make it for a
    /// push against that advertisement, and no fetch runs.
    pub(crate) async fn refresh_unless_current(
        &self,
        path: &str,
        url: &Url,
        auth: &MirrorAuth<'_>,
        at: std::time::Instant,
        tips: &[String],
    ) -> Result<PathBuf, UpstreamError> {
        {
            let (dir, lock) = self.dir_and_lock(path)?;
            let mut freshness = lock.lock().await;
            if freshness.started.is_some_and(|started| started >= at) {
                return Ok(dir);
            }
            if dir.join("HEAD").is_file() && self.holds_all(&dir, tips).await {
                tracing::debug!(mirror = %dir.display(), tips = tips.len(), "mirror holds every advertised tip: no fetch");
                self.consolidate(&dir, MAX_MIRROR_PACKS).await;
                freshness.started = Some(at);
                return Ok(dir);
            }
        }
        self.refresh(path, url, auth, Some(at)).await
    }

    /// Whether the mirror at `dir` holds every object in `ids` (never fetching: the mirror is
    /// a partial clone, and a missing object must not be fetched lazily).
    async fn holds_all(&self, dir: &Path, ids: &[String]) -> bool {
        if ids.is_empty() {
            return true;
        }
        let Ok(ids) = ids
            .iter()
            .map(|hex| gix_hash::ObjectId::from_hex(hex.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
        else {
            return false;
        };
        // Read in-process (no git started); only presence is asked, nothing is decoded.
        let objects = dir.join("objects");
        tokio::task::spawn_blocking(move || {
            let max = crate::pack::Options::default().max_object_bytes;
            crate::inspect::store::ObjectStore::open(&objects, max)
                .and_then(|mut store| store.info(&ids))
                .is_ok_and(|kinds| kinds.iter().all(Option::is_some))
        })
        .await
        .unwrap_or(false)
    }

    /// Adds a pack the upstream accepted (the relayed push) to the mirror of `path`, with its
    /// index, so that the gateway's own pushes never need a fetch to be seen. Nothing when the
    /// mirror does not exist. Failures are only logged: the next push fetches instead.
    pub(crate) async fn write_through(&self, path: &str, pack: &Path, idx: &Path, checksum: &str) {
        // Without the mirror's lock (a fetch may hold it for long): a pack and its index
        // appearing in `objects/pack` is what git itself tolerates from a concurrent fetch.
        let Ok((dir, _)) = self.dir_and_lock(path) else {
            return;
        };
        if !dir.join("HEAD").is_file() {
            return;
        }
        let size = std::fs::metadata(pack).map_or(u64::MAX, |m| m.len());
        if size > MAX_WRITE_THROUGH_BYTES {
            // Big packs are mostly blobs, which the blob-less mirror does not keep: the next
            // push fetches the new commits and trees instead.
            tracing::debug!(mirror = %dir.display(), bytes = size, "pushed pack too large to write through");
            return;
        }
        let base = dir.join("objects/pack").join(format!("pack-{checksum}"));
        let (pack, idx) = (pack.to_path_buf(), idx.to_path_buf());
        // The pack before its index: git finds packs by their .idx. Linked (copied only
        // across file systems), off the async threads.
        let linked = tokio::task::spawn_blocking(move || {
            link_or_copy(&pack, &base.with_extension("pack"))
                .and_then(|()| link_or_copy(&idx, &base.with_extension("idx")))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        match linked {
            Ok(()) => {
                tracing::debug!(mirror = %dir.display(), pack = %checksum, "pushed pack written through to the mirror")
            }
            Err(e) => {
                tracing::warn!(mirror = %dir.display(), error = %e, "writing the pushed pack through to the mirror failed")
            }
        }
    }

    /// Repacks the mirror into one pack when fetches and written-through pushes have left more
    /// than `max` ([`MAX_MIRROR_PACKS`]; every git process reading it opens them all). Run
    /// with the mirror's lock held; a failure is only logged.
    async fn consolidate(&self, dir: &Path, max: usize) {
        let packs = std::fs::read_dir(dir.join("objects/pack")).map_or(0, |entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".idx"))
                .count()
        });
        if packs <= max {
            return;
        }
        let started = std::time::Instant::now();
        let result = self
            .git(dir, None)
            .args(["-c", "pack.writeBitmaps=false", "repack", "-a", "-d", "-q"])
            .run(self)
            .await;
        match result {
            Ok(()) => {
                tracing::debug!(mirror = %dir.display(), packs, ms = started.elapsed().as_millis() as u64, "mirror repacked")
            }
            Err(e) => {
                tracing::warn!(mirror = %dir.display(), error = %e, "repacking the mirror failed")
            }
        }
    }

    async fn init(&self, dir: &Path) -> Result<(), UpstreamError> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| self.failed(format!("creating the mirror: {e}")))?;
        let run = |args: Vec<String>| {
            let mut cmd = self.git(dir, None);
            cmd.args(args);
            cmd
        };
        run(vec!["init".into(), "--quiet".into(), "--bare".into()])
            .run(self)
            .await?;
        for (key, value) in [
            ("remote.origin.promisor", "true"),
            ("remote.origin.partialclonefilter", "blob:none"),
            ("core.logAllRefUpdates", "false"),
            ("gc.auto", "0"),
        ] {
            run(vec!["config".into(), key.into(), value.into()])
                .run(self)
                .await?;
        }
        Ok(())
    }

    fn git(&self, dir: &Path, auth: Option<&MirrorAuth<'_>>) -> Git {
        let mut cmd = Command::new("git");
        cmd.env("GIT_DIR", dir)
            .env_remove("GIT_WORK_TREE")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut config: Vec<(&str, String)> = vec![
            ("http.followRedirects", "false".into()),
            ("credential.helper", String::new()),
            // A push waits for the refresh: no detached `maintenance run --auto` competing
            // with it for the CPU, no walk to report forced updates nobody reads.
            ("maintenance.auto", "false".into()),
            ("fetch.showForcedUpdates", "false".into()),
        ];
        if let Some(MirrorAuth::Ssh {
            key_file,
            known_hosts,
        }) = auth
        {
            cmd.env("GIT_SSH_COMMAND", ssh_command(key_file, known_hosts))
                .env("GIT_SSH_VARIANT", "ssh")
                .env_remove("GIT_SSH")
                .env_remove("SSH_AUTH_SOCK");
        }
        if let Some(MirrorAuth::Http(Some(c))) = auth {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                c.username,
                c.password.expose()
            ));
            config.push(("http.extraHeader", format!("Authorization: Basic {basic}")));
        }
        cmd.env("GIT_CONFIG_COUNT", config.len().to_string());
        for (i, (key, value)) in config.into_iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), key);
            cmd.env(format!("GIT_CONFIG_VALUE_{i}"), value);
        }
        Git(cmd)
    }

    fn failed(&self, detail: String) -> UpstreamError {
        UpstreamError::Mirror {
            upstream: self.upstream.clone(),
            detail,
        }
    }
}

/// OpenSSH's `ssh` with only the vaulted key and only the pinned host keys: no user or
/// system configuration, no agent, no prompts, no learning of new host keys.
fn ssh_command(key_file: &Path, known_hosts: &Path) -> String {
    let quote = |p: &Path| super::ssh::sh_quote(&p.to_string_lossy());
    format!(
        "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o IdentityAgent=none \
         -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
         -o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o CheckHostIP=no \
         -o BatchMode=yes -o ConnectTimeout=15",
        quote(key_file),
        quote(known_hosts)
    )
}

struct Git(Command);

impl Git {
    fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.0.args(args);
        self
    }

    async fn run(&mut self, mirrors: &Mirrors) -> Result<(), UpstreamError> {
        let output = self
            .0
            .output()
            .await
            .map_err(|e| mirrors.failed(format!("running git: {e}")))?;
        if output.status.success() {
            return Ok(());
        }
        // git's stderr names the URL (without credentials: they are in a header) and the cause.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("").trim().to_string();
        Err(mirrors.failed(format!("git failed ({}): {last}", output.status)))
    }
}

/// Hard-links `from` as `to` (copies when linking fails); an existing `to` is kept.
fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if to.exists() {
        return Ok(());
    }
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn idx_count(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("objects/pack"))
            .expect("pack dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".idx"))
            .count()
    }

    #[tokio::test]
    async fn a_mirror_with_too_many_packs_is_repacked_into_one_keeping_every_object() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mirror = tmp.path().join("up/repo.git");
        std::fs::create_dir_all(&mirror).expect("mkdir");
        git(&mirror, &["init", "-q", "--bare"]);
        let work = tmp.path().join("work");
        git(tmp.path(), &["init", "-q", "work"]);
        let mut tips = Vec::new();
        for i in 0..3 {
            std::fs::write(work.join("f.txt"), format!("{i}\n")).expect("write");
            git(&work, &["add", "f.txt"]);
            git(&work, &["commit", "-q", "-m", &format!("c{i}")]);
            tips.push(git(&work, &["rev-parse", "HEAD"]));
            // One pack per round, as a fetch or a written-through push leaves.
            let url = mirror.to_string_lossy().into_owned();
            git(
                &work,
                &["push", "-q", &url, &format!("HEAD:refs/heads/b{i}")],
            );
            git(&mirror, &["repack", "-q"]);
        }
        assert!(idx_count(&mirror) >= 3, "set-up: several packs");
        let mirrors = Mirrors::new("up".into(), tmp.path().to_path_buf());
        mirrors.consolidate(&mirror, 8).await;
        assert!(idx_count(&mirror) >= 3, "under the limit: untouched");
        mirrors.consolidate(&mirror, 2).await;
        assert_eq!(idx_count(&mirror), 1);
        assert!(
            mirrors.holds_all(&mirror, &tips).await,
            "every commit is kept"
        );
        assert!(!mirrors.holds_all(&mirror, &["1".repeat(40)]).await);
    }
}
