//! `ssh://` upstreams: git over SSH (russh client) with the vaulted private key
//! (`ssh_key_file`), the server's host key pinned by `known_hosts`, and the protocol version
//! forwarded as the `GIT_PROTOCOL` environment variable.
//!
//! The gateway's relay is stateless (one request, one answer, as smart HTTP), while git over
//! SSH is one stateful conversation per process. Each exchange therefore runs its own
//! process on its own channel: the advertisement is an exec read up to its flush; a request
//! is an exec whose advertisement is dropped, the request sent, and the answer relayed up to
//! where it ends ([`framing`]). Channels share a pooled connection ([`client`]).
//!
//! The mirror used to classify pushes is fetched by the `git` CLI through OpenSSH's `ssh`,
//! given the same key file and known_hosts file (see [`super::mirror`]).

mod client;
mod exchange;
mod framing;
mod known_hosts;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use url::Url;

use super::mirror::{MirrorAuth, Mirrors};
use super::{UpstreamError, UpstreamSetupError};
use crate::git::{ByteStream, Protocol, Service};
use crate::secret::Secret;
use client::Connector;
use known_hosts::KnownHosts;

/// What an `ssh://` upstream is built from (the resolved `[[upstream]]`).
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// Login user.
    pub user: String,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path prefix on the server (starts with `/`).
    pub path: String,
    /// The private key file (`ssh_key_file`).
    pub key_file: PathBuf,
    /// The pinned host keys (`known_hosts`).
    pub known_hosts: PathBuf,
}

/// An SSH upstream.
pub struct SshUpstream {
    name: String,
    target: SshTarget,
    connector: Connector,
    mirrors: Mirrors,
}

impl SshUpstream {
    /// Loads the key and the pinned host keys; refuses a key that others may read, an
    /// encrypted key, and a `known_hosts` without a usable line.
    pub fn new(
        name: String,
        target: SshTarget,
        mirrors_root: PathBuf,
    ) -> Result<SshUpstream, UpstreamSetupError> {
        if !target
            .user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(UpstreamSetupError::Ssh {
                upstream: name,
                detail: format!(
                    "user name {:?}: only letters, digits, '.', '_' and '-'",
                    target.user
                ),
            });
        }
        let key = load_key(&name, &target.key_file)?;
        let known_hosts = load_known_hosts(&name, &target.known_hosts)?;
        let connector = Connector::new(
            name.clone(),
            target.host.clone(),
            target.port,
            target.user.clone(),
            key,
            known_hosts,
        );
        Ok(SshUpstream {
            mirrors: Mirrors::new(name.clone(), mirrors_root),
            name,
            target,
            connector,
        })
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path of repository `path` on the server.
    fn remote_path(&self, path: &str) -> String {
        remote_path(&self.target.path, path)
    }

    /// `git-upload-pack '<path>'`, quoted as git does (`sq_quote`): what `git-shell` and
    /// forges accept.
    fn command(&self, service: Service, path: &str) -> String {
        format!("{} {}", service.name(), sh_quote(&self.remote_path(path)))
    }

    /// The advertisement of `service` for `path`.
    pub async fn advertise(
        &self,
        path: &str,
        service: Service,
        protocol: Protocol,
    ) -> Result<ByteStream, UpstreamError> {
        let command = self.command(service, path);
        let ex = exchange::Exchange::start(&self.connector, &self.name, &command, protocol).await?;
        exchange::advertise(ex, protocol, path).await
    }

    /// One stateless exchange with `service` over a fresh process.
    pub async fn rpc(
        &self,
        path: &str,
        service: Service,
        protocol: Protocol,
        body: ByteStream,
    ) -> Result<ByteStream, UpstreamError> {
        let command = self.command(service, path);
        exchange::rpc(
            &self.connector,
            &self.name,
            &command,
            protocol,
            service,
            body,
            path,
        )
        .await
    }

    /// Refreshes the blobless mirror of `path` (fetched by `git` through OpenSSH's `ssh`),
    /// unless a refresh started at or after `since` (see [`super::Upstream::history`]) or,
    /// with the `tips` of an advertisement made at `since`, the mirror holds them all.
    pub async fn history(
        &self,
        path: &str,
        since: Option<std::time::Instant>,
        tips: Option<&[String]>,
    ) -> Result<PathBuf, UpstreamError> {
        let url = self.url(path)?;
        let auth = MirrorAuth::Ssh {
            key_file: &self.target.key_file,
            known_hosts: &self.target.known_hosts,
        };
        self.mirrors.history(path, &url, &auth, since, tips).await
    }

    /// The mirror of this upstream.
    pub(crate) fn mirrors(&self) -> &crate::upstream::mirror::Mirrors {
        &self.mirrors
    }

    fn url(&self, path: &str) -> Result<Url, UpstreamError> {
        let host = if self.target.host.contains(':') {
            format!("[{}]", self.target.host)
        } else {
            self.target.host.clone()
        };
        let mut url = Url::parse(&format!(
            "ssh://{}@{host}:{}/",
            self.target.user, self.target.port
        ))
        .map_err(|e| UpstreamError::Mirror {
            upstream: self.name.clone(),
            detail: format!("building the mirror's URL: {e}"),
        })?;
        url.set_path(&self.remote_path(path));
        Ok(url)
    }
}

/// `prefix/path`; like git, `ssh://host/~user/x` means `~user/x` (home-relative on the server).
fn remote_path(prefix: &str, path: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    let prefix = match prefix.strip_prefix("/~") {
        Some(rest) => format!("~{rest}"),
        None => prefix.to_string(),
    };
    format!("{prefix}/{path}")
}

/// Single-quotes `s` for a POSIX shell (git's `sq_quote_buf`: `'` and `!` leave the quotes).
pub(super) fn sh_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            '!' => out.push_str("'\\!'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn load_key(
    upstream: &str,
    path: &Path,
) -> Result<Secret<Arc<russh::keys::PrivateKey>>, UpstreamSetupError> {
    let fail = |detail: String| UpstreamSetupError::SshKey {
        upstream: upstream.to_string(),
        path: path.to_path_buf(),
        detail,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    // OpenSSH refuses such keys too (and the mirror's fetch goes through it).
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(fail(format!(
            "readable by other users (mode {:o}); chmod 600 it",
            meta.permissions().mode() & 0o777
        )));
    }
    let text = Secret::new(std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?);
    match russh::keys::decode_secret_key(text.expose(), None) {
        Ok(key) => Ok(Secret::new(Arc::new(key))),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(fail(
            "the key is encrypted; the gateway needs a key without a passphrase".into(),
        )),
        // The decoder's message names the format problem, never the key material.
        Err(e) => Err(fail(format!("not a usable private key: {e}"))),
    }
}

fn load_known_hosts(upstream: &str, path: &Path) -> Result<KnownHosts, UpstreamSetupError> {
    let fail = |detail: String| UpstreamSetupError::KnownHosts {
        upstream: upstream.to_string(),
        path: path.to_path_buf(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let known = KnownHosts::parse(&text).map_err(|e| fail(e.to_string()))?;
    if known.is_empty() {
        return Err(fail("pins no host key".into()));
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths() {
        assert_eq!(remote_path("/srv/git", "a/b.git"), "/srv/git/a/b.git");
        assert_eq!(remote_path("/srv/git/", "a"), "/srv/git/a");
        assert_eq!(remote_path("/", "a"), "/a");
        assert_eq!(remote_path("/~/repos", "a"), "~/repos/a");
        assert_eq!(remote_path("/~git", "a"), "~git/a");
    }

    #[test]
    fn quoting_matches_git() {
        assert_eq!(sh_quote("/srv/git/a.git"), "'/srv/git/a.git'");
        assert_eq!(sh_quote("/it's!"), "'/it'\\''s'\\!''");
    }
}
