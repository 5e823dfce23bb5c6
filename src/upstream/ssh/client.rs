//! SSH connections to one upstream: the pinned host key, the vaulted client key, and a small
//! pool so that the several exchanges of one clone or push (advertisement, negotiation
//! rounds, pack) reuse one authenticated connection.
//!
//! A connection carries one exchange at a time: russh stops reading the socket when a
//! channel's consumer is slow, which is the backpressure we want for that exchange but would
//! stall every other channel sharing the connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use russh::client::{self, Handle, Msg};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::Channel;

use super::known_hosts::{fingerprint, host_name, KnownHosts, Verdict};
use crate::secret::Secret;
use crate::upstream::UpstreamError;

/// TCP connect, SSH handshake and authentication together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an unused connection stays in the pool.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Unused connections kept per upstream.
const MAX_IDLE: usize = 4;
/// Handshakes in flight per upstream: OpenSSH's sshd starts dropping unauthenticated
/// connections beyond 10 (`MaxStartups 10:30:100`), so a burst of clones queues here instead.
const MAX_HANDSHAKES: usize = 8;

/// Where and as whom to connect.
pub(super) struct Connector {
    upstream: String,
    host: String,
    port: u16,
    user: String,
    key: Secret<Arc<PrivateKey>>,
    known_hosts: Arc<KnownHosts>,
    config: Arc<client::Config>,
    pool: Arc<Pool>,
    handshakes: tokio::sync::Semaphore,
}

impl Connector {
    pub(super) fn new(
        upstream: String,
        host: String,
        port: u16,
        user: String,
        key: Secret<Arc<PrivateKey>>,
        known_hosts: KnownHosts,
    ) -> Connector {
        let config = client::Config {
            // A push may keep the upstream busy for minutes without a byte on the channel:
            // keepalives notice a dead peer without cutting such waits short.
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 4,
            nodelay: true,
            ..client::Config::default()
        };
        Connector {
            upstream,
            host,
            port,
            user,
            key,
            known_hosts: Arc::new(known_hosts),
            config: Arc::new(config),
            pool: Arc::new(Pool::default()),
            handshakes: tokio::sync::Semaphore::new(MAX_HANDSHAKES),
        }
    }

    /// A session channel on a pooled connection, or on a new one.
    pub(super) async fn channel(&self) -> Result<(Lease, Channel<Msg>), UpstreamError> {
        while let Some(handle) = self.pool.take() {
            // The upstream may have closed an idle connection: then try the next or a new one.
            if let Ok(channel) = handle.channel_open_session().await {
                return Ok((Lease::new(handle, &self.pool), channel));
            }
        }
        let handle = self.connect().await?;
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| self.unreachable(format!("opening a channel: {e}")))?;
        Ok((Lease::new(handle, &self.pool), channel))
    }

    async fn connect(&self) -> Result<Handle<HostKeyCheck>, UpstreamError> {
        let verdict = Arc::new(Mutex::new(None));
        let check = HostKeyCheck {
            host: self.host.clone(),
            port: self.port,
            known_hosts: self.known_hosts.clone(),
            verdict: verdict.clone(),
        };
        let attempt = async {
            let _permit = self
                .handshakes
                .acquire()
                .await
                .map_err(|_| self.unreachable("shutting down".into()))?;
            let connected =
                client::connect(self.config.clone(), (self.host.as_str(), self.port), check).await;
            let mut handle = match connected {
                Ok(handle) => handle,
                Err(e) => {
                    let refused = verdict.lock().ok().and_then(|mut v| v.take());
                    return Err(match refused {
                        Some(detail) => UpstreamError::HostKey {
                            upstream: self.upstream.clone(),
                            host: host_name(&self.host, self.port),
                            detail,
                        },
                        None => self.unreachable(e.to_string()),
                    });
                }
            };
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| self.unreachable(e.to_string()))?
                .flatten();
            let key = PrivateKeyWithHashAlg::new(self.key.expose().clone(), hash);
            let auth = handle
                .authenticate_publickey(&self.user, key)
                .await
                .map_err(|e| self.unreachable(format!("authentication: {e}")))?;
            if !auth.success() {
                return Err(UpstreamError::SshAuth {
                    upstream: self.upstream.clone(),
                    user: self.user.clone(),
                });
            }
            Ok(handle)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => Err(self.unreachable(format!(
                "no SSH session with {} within {}s",
                host_name(&self.host, self.port),
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    fn unreachable(&self, detail: String) -> UpstreamError {
        UpstreamError::Unreachable {
            upstream: self.upstream.clone(),
            detail,
        }
    }
}

/// The russh client handler: accepts the server only if `known_hosts` pins its key.
pub(super) struct HostKeyCheck {
    host: String,
    port: u16,
    known_hosts: Arc<KnownHosts>,
    /// Why the key was refused, for the error the connect call returns.
    verdict: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // A host certificate is judged by its plain key (no `@cert-authority` support).
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.key_data().clone(),
            PublicKeyOrCertificate::Certificate(cert) => cert.public_key().clone(),
        };
        let problem = match self.known_hosts.check(&self.host, self.port, &key) {
            Verdict::Trusted => return Ok(true),
            Verdict::Unknown => format!(
                "its key {} is not pinned in known_hosts (no line names {})",
                fingerprint(&key),
                host_name(&self.host, self.port)
            ),
            Verdict::Changed { lines } => format!(
                "its key {} does not match the key pinned in known_hosts (line {}): \
                 the host key changed, or someone is intercepting the connection",
                fingerprint(&key),
                lines
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Verdict::Revoked { line } => format!(
                "its key {} is marked @revoked in known_hosts (line {line})",
                fingerprint(&key)
            ),
        };
        tracing::warn!(host = %host_name(&self.host, self.port), %problem, "upstream host key refused");
        if let Ok(mut v) = self.verdict.lock() {
            *v = Some(problem);
        }
        Ok(false)
    }
}

/// Idle connections, each dropped after [`IDLE_TIMEOUT`].
#[derive(Default)]
pub(super) struct Pool {
    idle: Mutex<Vec<(u64, Handle<HostKeyCheck>)>>,
    next_id: AtomicU64,
}

impl Pool {
    fn take(&self) -> Option<Handle<HostKeyCheck>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((_, handle)) = idle.pop() {
            if !handle.is_closed() {
                return Some(handle);
            }
        }
        None
    }

    fn put(self: &Arc<Self>, handle: Handle<HostKeyCheck>) {
        if handle.is_closed() {
            return;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let rejected = match self.idle.lock() {
            Ok(mut idle) if idle.len() < MAX_IDLE => {
                idle.push((id, handle));
                None
            }
            _ => Some(handle),
        };
        if let Some(handle) = rejected {
            disconnect(handle);
            return;
        }
        let pool: Weak<Pool> = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(IDLE_TIMEOUT).await;
            let Some(pool) = pool.upgrade() else { return };
            let expired = pool.idle.lock().ok().and_then(|mut idle| {
                let at = idle.iter().position(|(i, _)| *i == id)?;
                Some(idle.swap_remove(at).1)
            });
            if let Some(handle) = expired {
                disconnect(handle);
            }
        });
    }
}

/// A connection lent to one exchange. [`Lease::release`] gives it back for reuse; dropping it
/// instead closes it (the exchange did not end cleanly, its channel may still be open).
pub(super) struct Lease {
    handle: Option<Handle<HostKeyCheck>>,
    pool: Weak<Pool>,
}

impl Lease {
    fn new(handle: Handle<HostKeyCheck>, pool: &Arc<Pool>) -> Lease {
        Lease {
            handle: Some(handle),
            pool: Arc::downgrade(pool),
        }
    }

    /// Returns the connection to the pool.
    pub(super) fn release(mut self) {
        if let (Some(handle), Some(pool)) = (self.handle.take(), self.pool.upgrade()) {
            pool.put(handle);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            disconnect(handle);
        }
    }
}

fn disconnect(handle: Handle<HostKeyCheck>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        });
    }
}
