//! `file://` upstreams: repositories in a local folder, served by `git upload-pack` /
//! `git receive-pack --stateless-rpc`, the same programs `git http-backend` runs.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio_util::io::ReaderStream;

use super::UpstreamError;
use crate::git::{ByteStream, Protocol, Service};

/// How much of a failing git process's stderr is kept for the log.
const STDERR_LIMIT: usize = 16 * 1024;

/// A folder of bare repositories on this machine.
pub struct FileUpstream {
    name: String,
    root: PathBuf,
}

impl FileUpstream {
    /// An upstream serving the repositories under `root`.
    pub fn new(name: String, root: PathBuf) -> Self {
        FileUpstream { name, root }
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Finds the repository for `path`: `path` itself, else `path.git`. The resolved folder
    /// must stay inside the root even through symlinks.
    fn repo_dir(&self, path: &str) -> Result<PathBuf, UpstreamError> {
        let not_found = || UpstreamError::NotFound {
            upstream: self.name.clone(),
            repo: path.to_string(),
        };
        let root = self.root.canonicalize().map_err(|_| not_found())?;
        let candidates = [self.root.join(path), self.root.join(format!("{path}.git"))];
        for candidate in candidates {
            let Ok(dir) = candidate.canonicalize() else {
                continue;
            };
            if dir.starts_with(&root) && is_git_dir(&dir) {
                return Ok(dir);
            }
        }
        Err(not_found())
    }

    /// The repository itself: its objects and refs are the upstream's history.
    pub fn history(&self, path: &str) -> Result<PathBuf, UpstreamError> {
        self.repo_dir(path)
    }

    fn command(&self, service: Service, protocol: Protocol, dir: &Path) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg(service.as_str())
            .arg("--stateless-rpc")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_PROTOCOL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(p) = protocol.parameter() {
            cmd.env("GIT_PROTOCOL", p);
        }
        cmd.current_dir(dir);
        cmd
    }

    /// The advertisement: `git <service> --stateless-rpc --http-backend-info-refs <dir>`.
    pub async fn advertise(
        &self,
        path: &str,
        service: Service,
        protocol: Protocol,
    ) -> Result<ByteStream, UpstreamError> {
        let dir = self.repo_dir(path)?;
        let mut cmd = self.command(service, protocol, &dir);
        cmd.arg("--http-backend-info-refs")
            .arg(".")
            .stdin(Stdio::null());
        let child = cmd.spawn().map_err(|source| UpstreamError::Spawn {
            upstream: self.name.clone(),
            source,
        })?;
        Ok(output_stream(child, self.name.clone()))
    }

    /// One request/response exchange: the body goes to the process's stdin.
    pub async fn rpc(
        &self,
        path: &str,
        service: Service,
        protocol: Protocol,
        mut body: ByteStream,
    ) -> Result<ByteStream, UpstreamError> {
        let dir = self.repo_dir(path)?;
        let mut cmd = self.command(service, protocol, &dir);
        cmd.arg(".").stdin(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| UpstreamError::Spawn {
            upstream: self.name.clone(),
            source,
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            let name = self.name.clone();
            tokio::spawn(async move {
                while let Some(chunk) = body.next().await {
                    let chunk = match chunk {
                        Ok(c) => c,
                        Err(e) => {
                            // Dropping stdin mid-request makes git fail the request cleanly.
                            tracing::debug!(upstream = %name, error = %e, "request body failed");
                            return;
                        }
                    };
                    if stdin.write_all(&chunk).await.is_err() {
                        // git stopped reading (it failed or answered early); its stdout says why.
                        return;
                    }
                }
                let _ = stdin.shutdown().await;
            });
        }
        Ok(output_stream(child, self.name.clone()))
    }
}

fn is_git_dir(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && dir.join("objects").is_dir()
}

/// The child's stdout as a stream that ends with an error when git exits unsuccessfully, so a
/// failed upstream never looks like a complete answer. Dropping the stream kills the child.
fn output_stream(mut child: Child, upstream: String) -> ByteStream {
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Box::pin(stream::once(async {
            Err(std::io::Error::other("git process without pipes"))
        }));
    };
    let stderr_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = (&mut stderr)
            .take(STDERR_LIMIT as u64)
            .read_to_end(&mut buf)
            .await;
        // Keep draining so git never blocks on a full stderr pipe.
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        buf
    });
    let finish = stream::once(async move {
        let status = child.wait().await;
        let stderr = stderr_task.await.unwrap_or_default();
        match status {
            Ok(s) if s.success() => None,
            Ok(s) => {
                tracing::warn!(
                    upstream = %upstream,
                    status = %s,
                    stderr = %String::from_utf8_lossy(&stderr).trim(),
                    "upstream git process failed"
                );
                Some(Err(std::io::Error::other(format!(
                    "upstream git process failed ({s})"
                ))))
            }
            Err(e) => Some(Err(e)),
        }
    })
    .filter_map(|r: Option<std::io::Result<Bytes>>| async move { r });
    // 64 KiB reads: the default 4 KiB made every 4 KiB of a pack its own chunk downstream
    // (an SSH channel message, an HTTP chunk), which costs CPU per chunk on the clone's
    // critical path (benches/ssh_clone_bench.sh).
    Box::pin(ReaderStream::with_capacity(stdout, READ_CHUNK).chain(finish))
}

/// Bytes read from the upstream git process at a time.
const READ_CHUNK: usize = 64 * 1024;
