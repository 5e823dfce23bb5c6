//! The SSH adapter (russh): agents use `ssh://USER@HOST:PORT/<upstream>/<path>[.git]` or
//! `USER@HOST:<upstream>/<path>[.git]` remotes with the stock OpenSSH client.
//!
//! - `server`: authentication (`[[ssh_key]]` keys; user certificates from `[ssh]
//!   user_ca_keys` and the gateway's own CA), and refusal of everything but git's two services;
//!   `operation`: one git exec, from opening the session to the exit status.
//! - [`command`]: the exec command line, parsed like git-shell.
//! - [`service`]: one git service on one channel, translated onto the stateless session
//!   pipeline; [`negotiate`] for protocol v0/v1 fetch negotiation.
//! - [`channel`], [`frames`]: the channel as byte streams and pkt-lines.
//! - [`limits`]: operations per identity and per connection.
//!
//! Like `http`, this module only translates: identity, policy, scanning, the record and
//! approvals all happen in [`crate::session`].

pub mod channel;
pub mod command;
pub mod frames;
pub mod limits;
pub mod negotiate;
mod operation;
mod server;
pub mod service;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::ssh_key::HashAlg;
use russh::keys::PrivateKey;
use russh::server::Config as RusshConfig;
use russh::{MethodKind, MethodSet, SshId};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::identity::ssh::{SshAuthority, SshKeyError};
use crate::identity::ssh_ca::{load_or_create_key, KeyFileError};
use crate::session::Gateway;
use limits::{Active, PerIdentity};
use server::{Connection, Shared};

/// The SSH front could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The host key could not be read or created.
    #[error("[server] ssh_host_key: {0}")]
    HostKey(#[from] KeyFileError),
    /// A configured key could not be used.
    #[error(transparent)]
    Key(#[from] SshKeyError),
}

/// The SSH front, ready to serve.
pub struct SshFront {
    shared: Arc<Shared>,
    config: Arc<RusshConfig>,
    fingerprint: String,
}

/// How long shutdown waits for a client to take the disconnect message before dropping it.
const DISCONNECT_WAIT: Duration = Duration::from_secs(2);

impl SshFront {
    /// Loads (or creates) the host key and builds the authority: `[[ssh_key]]`, `[ssh]
    /// user_ca_keys` and the gateway's own CA.
    pub fn new(gateway: Arc<Gateway>, shutdown: CancellationToken) -> Result<SshFront, SshError> {
        let config = gateway.config();
        let (host_key, created) =
            load_or_create_key(&config.server.ssh_host_key, "gitgate host key")?;
        let fingerprint = host_key.fingerprint(HashAlg::Sha256).to_string();
        if created {
            tracing::info!(path = %config.server.ssh_host_key.display(), "created the SSH host key");
        }
        let own_ca: Vec<_> = gateway
            .ssh_ca()
            .map(|ca| ca.public_key().clone())
            .into_iter()
            .collect();
        let authority = SshAuthority::new(config, &own_ca)?;
        let russh_config = russh_config(host_key, &config.ssh);
        let shared = Arc::new(Shared {
            per_identity: PerIdentity::new(config.ssh.max_sessions_per_identity),
            gateway,
            authority,
            shutdown,
        });
        Ok(SshFront {
            shared,
            config: Arc::new(russh_config),
            fingerprint,
        })
    }

    /// The host key's SHA-256 fingerprint (`SHA256:...`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Serves `listener` until the shutdown token is cancelled; then stops accepting,
    /// disconnects idle connections, lets running git operations finish for `grace`, and
    /// drops the rest.
    pub async fn serve(self, listener: TcpListener, grace: Duration) {
        let shutdown = self.shared.shutdown.clone();
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        connections.spawn(connection(
                            self.shared.clone(),
                            self.config.clone(),
                            socket,
                            peer,
                        ));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "SSH accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                () = shutdown.cancelled() => break,
            }
        }
        drop(listener);
        let drained = tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                remaining = connections.len(),
                "grace period over; dropping SSH connections"
            );
            connections.shutdown().await;
        }
    }
}

fn russh_config(host_key: PrivateKey, ssh: &crate::config::Ssh) -> RusshConfig {
    RusshConfig {
        server_id: SshId::Standard(Cow::Borrowed("SSH-2.0-gitgate")),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        // Refusals are slowed down (against guessing), but not the "none" probe every
        // OpenSSH client starts with.
        auth_rejection_time: Duration::from_secs(1),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        // russh also counts the "none" probe every OpenSSH client starts with; OpenSSH's
        // MaxAuthTries, which `max_auth_attempts` mirrors, does not.
        max_auth_attempts: ssh.max_auth_attempts.saturating_add(1),
        inactivity_timeout: Some(ssh.idle_timeout),
        // Few messages per channel before russh stops reading the socket: backpressure
        // reaches the client early, and memory per connection stays small.
        channel_buffer_size: 16,
        nodelay: true,
        ..RusshConfig::default()
    }
}

/// Runs one client connection to its end (or until shutdown finds it idle).
async fn connection(
    shared: Arc<Shared>,
    config: Arc<RusshConfig>,
    socket: TcpStream,
    peer: SocketAddr,
) {
    let active = Active::new();
    let handler = Connection::new(shared.clone(), Some(peer), active.clone());
    let running = match russh::server::run_stream(config, socket, handler).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(peer = %peer, error = %e, "SSH connection setup failed");
            return;
        }
    };
    let handle = running.handle();
    tokio::pin!(running);
    let shutdown = shared.shutdown.clone();
    tokio::select! {
        result = &mut running => {
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "SSH connection ended with an error");
            }
        }
        () = async { shutdown.cancelled().await; active.idle().await } => {
            let _ = handle
                .disconnect(
                    russh::Disconnect::ByApplication,
                    "gitgate is shutting down".into(),
                    "en".into(),
                )
                .await;
            let _ = tokio::time::timeout(DISCONNECT_WAIT, running).await;
        }
    }
}
