//! Relays to the upstream git servers, with the vaulted credential.
//!
//! Two operations serve every transport: [`Upstream::advertise`] (the ref advertisement, without
//! the smart-HTTP `# service=` header) and [`Upstream::rpc`] (one stateless request/response
//! exchange, as `git http-backend` does). Both stream in both directions: no body is held whole.
//!
//! Credentials live here and nowhere else: the configuration hands them over as
//! [`Secret`](crate::secret::Secret), they go into request headers and are never formatted
//! into errors or logs.

mod file;
mod http;
mod mirror;
mod ssh;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, UpstreamTarget};
use crate::git::{ByteStream, Protocol, Service};

pub use file::FileUpstream;
pub use http::HttpUpstream;
pub use ssh::{SshTarget, SshUpstream};

/// What went wrong talking to an upstream. Messages name the upstream and repo, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The repository does not exist upstream (or is not a git repository).
    #[error("repository {repo} not found on upstream {upstream}")]
    NotFound {
        /// Upstream name.
        upstream: String,
        /// Repository path under the upstream.
        repo: String,
    },
    /// The upstream refused the gateway's own credential.
    #[error("upstream {upstream} refused the gateway's credential (HTTP {status})")]
    Unauthorized {
        /// Upstream name.
        upstream: String,
        /// The HTTP status it answered.
        status: u16,
    },
    /// The upstream answered with an unexpected status.
    #[error("upstream {upstream} answered HTTP {status}")]
    Status {
        /// Upstream name.
        upstream: String,
        /// The HTTP status it answered.
        status: u16,
    },
    /// The upstream answered something that is not a smart-HTTP git response.
    #[error("upstream {upstream} sent an unexpected response: {detail}")]
    Protocol {
        /// Upstream name.
        upstream: String,
        /// What was unexpected.
        detail: String,
    },
    /// The upstream could not be reached.
    #[error("upstream {upstream} unreachable: {detail}")]
    Unreachable {
        /// Upstream name.
        upstream: String,
        /// The transport error, without URLs carrying credentials.
        detail: String,
    },
    /// A local git process could not be started.
    #[error("could not run git for upstream {upstream}: {source}")]
    Spawn {
        /// Upstream name.
        upstream: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The mirror of an upstream repository could not be refreshed.
    #[error("upstream {upstream}: mirror refresh failed: {detail}")]
    Mirror {
        /// Upstream name.
        upstream: String,
        /// What failed (never a credential).
        detail: String,
    },
    /// The SSH server's host key is not the one pinned in `known_hosts`: nothing was sent.
    #[error("upstream {upstream}: host key of {host} refused: {detail}")]
    HostKey {
        /// Upstream name.
        upstream: String,
        /// `host` or `[host]:port`, as known_hosts names it.
        host: String,
        /// Why (unknown, changed or revoked key, with its fingerprint).
        detail: String,
    },
    /// The SSH server refused the gateway's key.
    #[error("upstream {upstream} refused the gateway's SSH key (user {user})")]
    SshAuth {
        /// Upstream name.
        upstream: String,
        /// The login user.
        user: String,
    },
}

/// One configured upstream, ready to relay.
pub enum Upstream {
    /// A folder of repositories on this machine, served by local `git` processes.
    File(FileUpstream),
    /// A smart-HTTP server.
    Http(Box<HttpUpstream>),
    /// An SSH server.
    Ssh(Box<SshUpstream>),
}

impl Upstream {
    /// The upstream's configured name (first segment of gateway URLs).
    pub fn name(&self) -> &str {
        match self {
            Upstream::File(f) => f.name(),
            Upstream::Http(h) => h.name(),
            Upstream::Ssh(s) => s.name(),
        }
    }

    /// Streams the ref advertisement of `service` for the repository at `path` (relative to the
    /// upstream, validated by the router), without the smart-HTTP `# service=` header.
    pub async fn advertise(
        &self,
        path: &str,
        service: Service,
        protocol: Protocol,
    ) -> Result<ByteStream, UpstreamError> {
        match self {
            Upstream::File(f) => f.advertise(path, service, protocol).await,
            Upstream::Http(h) => h.advertise(path, service, protocol).await,
            Upstream::Ssh(s) => s.advertise(path, service, protocol).await,
        }
    }

    /// One stateless request/response exchange with `service`: `body` is sent as the request,
    /// the response streams back.
    pub async fn rpc(
        &self,
        path: &str,
        service: Service,
        protocol: Protocol,
        body: ByteStream,
    ) -> Result<ByteStream, UpstreamError> {
        match self {
            Upstream::File(f) => f.rpc(path, service, protocol, body).await,
            Upstream::Http(h) => h.rpc(path, service, protocol, body).await,
            Upstream::Ssh(s) => s.rpc(path, service, protocol, body).await,
        }
    }
}

impl Upstream {
    /// A git directory holding (at least) the commits and trees of the upstream repository at
    /// `path`, with its refs as the upstream has them now: the repository itself for `file://`
    /// upstreams, a freshly fetched mirror for HTTP and SSH ones. Used read-only, as an
    /// alternate.
    ///
    /// A mirror whose last refresh started at or after `since` is used as it is: pass the
    /// moment the client's advertisement was requested (the mirror then knows every ref the
    /// client was shown), see [`Upstream::prefetch_history`].
    pub async fn history(
        &self,
        path: &str,
        since: std::time::Instant,
    ) -> Result<PathBuf, UpstreamError> {
        match self {
            Upstream::File(f) => f.history(path),
            Upstream::Http(h) => h.history(path, Some(since), None).await,
            Upstream::Ssh(s) => s.history(path, Some(since), None).await,
        }
    }
}

impl Upstream {
    /// Starts refreshing the mirror of `path` in the background (HTTP and SSH upstreams;
    /// nothing for `file://` ones) for an advertisement requested at `since`, so that the push
    /// which usually follows finds the mirror fresh (`history(path, since)` then reuses it).
    /// Skipped when a refresh started after `since` already; a burst of advertisements costs
    /// one fetch. With `tips` (the refs' tips the advertisement listed, once it has streamed)
    /// no fetch runs when the mirror holds them all. Failures are only logged: the push
    /// refreshes again and fails closed then.
    pub fn prefetch_history(
        self: &std::sync::Arc<Self>,
        path: &str,
        since: std::time::Instant,
        tips: Option<tokio::sync::oneshot::Receiver<Vec<String>>>,
    ) {
        if matches!(**self, Upstream::File(_)) {
            return;
        }
        let upstream = self.clone();
        let path = path.to_string();
        tokio::spawn(async move {
            let tips = match tips {
                Some(rx) => tokio::time::timeout(std::time::Duration::from_secs(30), rx)
                    .await
                    .ok()
                    .and_then(Result::ok),
                None => None,
            };
            let result = match &*upstream {
                Upstream::Http(h) => h.history(&path, Some(since), tips.as_deref()).await,
                Upstream::Ssh(s) => s.history(&path, Some(since), tips.as_deref()).await,
                Upstream::File(_) => return,
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "mirror prefetch failed");
            }
        });
    }

    /// After the upstream accepted a push of `pack` (with its `.idx` and checksum): adds it to
    /// the mirror of `path` (HTTP and SSH upstreams), so that the next push need not fetch
    /// what the gateway itself sent.
    pub async fn write_through(&self, path: &str, pack: &Path, idx: &Path, checksum: &str) {
        match self {
            Upstream::File(_) => {}
            Upstream::Http(h) => h.mirrors().write_through(path, pack, idx, checksum).await,
            Upstream::Ssh(s) => s.mirrors().write_through(path, pack, idx, checksum).await,
        }
    }
}

/// All configured upstreams, by name.
pub struct Upstreams {
    list: Vec<Arc<Upstream>>,
}

impl Upstreams {
    /// Builds every upstream of the configuration (HTTP clients, CA roots).
    pub fn new(config: &Config) -> Result<Upstreams, UpstreamSetupError> {
        let mut list = Vec::with_capacity(config.upstreams.len());
        for u in &config.upstreams {
            let upstream = match &u.target {
                UpstreamTarget::File { root } => {
                    Upstream::File(FileUpstream::new(u.name.clone(), root.clone()))
                }
                UpstreamTarget::Http {
                    base,
                    credential,
                    ca_file,
                } => Upstream::Http(Box::new(HttpUpstream::new(
                    u.name.clone(),
                    base.clone(),
                    credential.clone(),
                    ca_file.as_deref(),
                    config.server.state_dir.join("mirrors"),
                )?)),
                UpstreamTarget::Ssh {
                    user,
                    host,
                    port,
                    path,
                    key_file,
                    known_hosts,
                } => Upstream::Ssh(Box::new(SshUpstream::new(
                    u.name.clone(),
                    SshTarget {
                        user: user.clone(),
                        host: host.clone(),
                        port: *port,
                        path: path.clone(),
                        key_file: key_file.clone(),
                        known_hosts: known_hosts.clone(),
                    },
                    config.server.state_dir.join("mirrors"),
                )?)),
            };
            list.push(Arc::new(upstream));
        }
        Ok(Upstreams { list })
    }

    /// The upstream called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Upstream>> {
        self.list.iter().find(|u| u.name() == name).cloned()
    }
}

/// An upstream could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    /// The CA file could not be read or parsed.
    #[error("upstream {upstream}: cannot use ca_file {path}: {detail}")]
    CaFile {
        /// Upstream name.
        upstream: String,
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The HTTP client could not be built.
    #[error("upstream {upstream}: cannot build the HTTP client: {detail}")]
    Client {
        /// Upstream name.
        upstream: String,
        /// What failed.
        detail: String,
    },
    /// The SSH private key (`ssh_key_file`) cannot be used. Never shows key material.
    #[error("upstream {upstream}: cannot use ssh_key_file {path}: {detail}")]
    SshKey {
        /// Upstream name.
        upstream: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The pinned host keys (`known_hosts`) cannot be used.
    #[error("upstream {upstream}: cannot use known_hosts {path}: {detail}")]
    KnownHosts {
        /// Upstream name.
        upstream: String,
        /// The file.
        path: PathBuf,
        /// What is wrong (with the line).
        detail: String,
    },
    /// Another SSH setting cannot be used.
    #[error("upstream {upstream}: {detail}")]
    Ssh {
        /// Upstream name.
        upstream: String,
        /// What is wrong.
        detail: String,
    },
}
