//! The russh server: one [`Connection`] handler per client. It authenticates (public keys and
//! certificates through [`SshAuthority`]), refuses everything that is not a git exec (shells,
//! ptys, subsystems, forwarding of ports, sockets, X11 and agents), and hands each git exec to
//! a task running [`super::service`] on the channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use russh::keys::ssh_key::{Certificate, HashAlg};
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tokio_util::sync::CancellationToken;

use super::channel::Out;
use super::command::{self, GitCommand};
use super::limits::{Active, PerIdentity};
use crate::git::Protocol;
use crate::identity::ssh::SshAuthority;
use crate::identity::Identity;
use crate::session::Gateway;

/// Session channels one connection may have open at once (git uses one; OpenSSH connection
/// sharing may use a few).
const MAX_CHANNELS: usize = 8;

/// What every connection shares.
pub(crate) struct Shared {
    pub gateway: Arc<Gateway>,
    pub authority: SshAuthority,
    pub per_identity: PerIdentity,
    pub shutdown: CancellationToken,
}

struct PendingChannel {
    channel: Option<Channel<Msg>>,
    protocol: Protocol,
}

/// One client connection.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    id: String,
    identity: Option<Identity>,
    channels: HashMap<ChannelId, PendingChannel>,
    active: Active,
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>, peer: Option<SocketAddr>, active: Active) -> Self {
        Connection {
            shared,
            peer,
            id: crate::session::new_id(),
            identity: None,
            channels: HashMap::new(),
            active,
        }
    }

    fn name(&self) -> &str {
        self.identity.as_ref().map_or("-", |i| i.name.as_str())
    }

    /// Takes the channel out for a task that answers on it.
    fn take(&mut self, id: ChannelId) -> Option<(Channel<Msg>, Protocol)> {
        let pending = self.channels.get_mut(&id)?;
        Some((pending.channel.take()?, pending.protocol))
    }

    /// Refuses a request on a session channel: the message on stderr, a non-zero exit status.
    fn refuse(&mut self, id: ChannelId, session: &mut Session, what: &str, message: String) {
        tracing::info!(
            session = %self.id,
            identity = %self.name(),
            peer = ?self.peer,
            request = what,
            "SSH request refused"
        );
        let Some((channel, _)) = self.take(id) else {
            let _ = session.channel_failure(id);
            return;
        };
        let _ = session.channel_success(id);
        tokio::spawn(async move {
            let (_read, write) = channel.split();
            let mut out = Out::new(write);
            let _ = out.stderr(&message).await;
            out.finish(1).await;
        });
    }

    fn log_forwarding(&self, what: &str) {
        tracing::info!(
            session = %self.id,
            identity = %self.name(),
            peer = ?self.peer,
            request = what,
            "SSH forwarding refused"
        );
    }

    fn start_git(&mut self, id: ChannelId, session: &mut Session, command: GitCommand) {
        let Some(identity) = self.identity.clone() else {
            let _ = session.channel_failure(id);
            return;
        };
        if self.shared.shutdown.is_cancelled() {
            let msg = "fatal: gitgate is shutting down; try again shortly".to_string();
            return self.refuse(id, session, "exec", msg);
        }
        let Some(permit) = self.shared.per_identity.acquire(&identity.name) else {
            let msg = format!(
                "fatal: gitgate: {} already has {} git operations running over SSH \
                 ([ssh] max_sessions_per_identity); try again when one has finished",
                identity.name,
                self.shared.per_identity.limit()
            );
            return self.refuse(id, session, "exec", msg);
        };
        let Some((channel, protocol)) = self.take(id) else {
            let _ = session.channel_failure(id);
            return;
        };
        let _ = session.channel_success(id);
        let op = super::operation::Operation {
            shared: self.shared.clone(),
            identity,
            peer: self.peer,
            session: self.id.clone(),
            command,
            protocol,
            _active: self.active.enter(),
            _permit: permit,
        };
        tokio::spawn(op.run(channel));
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        _offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // A certificate is offered as its inner key, so an unlisted key may still come with a
        // valid certificate: the decision waits for the signed request.
        Ok(Auth::Accept)
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let fingerprint = key.public_key.fingerprint(HashAlg::Sha256);
        match self.shared.authority.by_key(key.public_key.key_data()) {
            Some(identity) => {
                tracing::info!(
                    session = %self.id,
                    identity = %identity.name,
                    key = %fingerprint,
                    peer = ?self.peer,
                    "SSH key accepted"
                );
                self.identity = Some(identity);
                Ok(Auth::Accept)
            }
            None => {
                self.shared.gateway.metrics().auth_failures.inc();
                tracing::info!(session = %self.id, key = %fingerprint, peer = ?self.peer, "SSH key refused: not in [[ssh_key]]");
                Ok(Auth::reject())
            }
        }
    }

    async fn auth_openssh_certificate(
        &mut self,
        _user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let checked =
            self.shared
                .authority
                .check_certificate(certificate, now, self.peer.map(|p| p.ip()));
        match checked {
            Ok(identity) => {
                tracing::info!(
                    session = %self.id,
                    identity = %identity.name,
                    groups = ?identity.groups,
                    serial = certificate.serial(),
                    ca = %certificate.signature_key().fingerprint(HashAlg::Sha256),
                    peer = ?self.peer,
                    "SSH certificate accepted"
                );
                self.identity = Some(identity);
                Ok(Auth::Accept)
            }
            Err(reason) => {
                self.shared.gateway.metrics().auth_failures.inc();
                tracing::info!(
                    session = %self.id,
                    key_id = %certificate.key_id().chars().take(64).collect::<String>(),
                    serial = certificate.serial(),
                    peer = ?self.peer,
                    %reason,
                    "SSH certificate refused"
                );
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= MAX_CHANNELS {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels.insert(
            channel.id(),
            PendingChannel {
                channel: Some(channel),
                protocol: Protocol::V0,
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host: &str,
        _port: u32,
        _originator: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.log_forwarding("direct-tcpip");
        reply.reject(forwarding_refused()).await;
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.log_forwarding("direct-streamlocal");
        reply.reject(forwarding_refused()).await;
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.log_forwarding("x11");
        reply.reject(forwarding_refused()).await;
        Ok(())
    }

    async fn channel_open_forwarded_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host: &str,
        _port: u32,
        _originator: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.log_forwarding("forwarded-tcpip");
        reply.reject(forwarding_refused()).await;
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.log_forwarding("tcpip-forward");
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        _socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.log_forwarding("streamlocal-forward");
        Ok(false)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.log_forwarding("auth-agent");
        Ok(false)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _protocol: &str,
        _cookie: &str,
        _screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.log_forwarding("x11-req");
        session.channel_failure(channel)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // OpenSSH prints "PTY allocation request failed" and goes on with the shell request,
        // which is refused with a message.
        session.channel_failure(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Only GIT_PROTOCOL (git sends it with `-o SendEnv=GIT_PROTOCOL`); like sshd without
        // `AcceptEnv`, anything else is declined.
        match self.channels.get_mut(&channel) {
            Some(pending) if name == "GIT_PROTOCOL" && value.len() <= 1024 => {
                pending.protocol = Protocol::from_git_protocol(value);
                session.channel_success(channel)
            }
            _ => session.channel_failure(channel),
        }
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let message = format!(
            "Hi {}! You have authenticated to gitgate, which serves git only: \
             no interactive shell. Use it as a git remote, e.g. \
             git clone ssh://git@HOST:PORT/<upstream>/<repository>.git",
            self.name()
        );
        self.refuse(channel, session, "shell", message);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match command::parse(data) {
            Ok(command) => self.start_git(channel, session, command),
            Err(e) => self.refuse(channel, session, "exec", format!("fatal: {e}")),
        }
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let shown: String = name.chars().take(64).collect();
        let message = format!(
            "fatal: gitgate serves only git over SSH; the subsystem {shown:?} is not available"
        );
        self.refuse(channel, session, "subsystem", message);
        Ok(())
    }
}

fn forwarding_refused() -> ChannelOpenFailure {
    ChannelOpenFailure::Other {
        code: 1, // SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
        reason: "gitgate serves only git over SSH: forwarding is disabled".into(),
    }
}
