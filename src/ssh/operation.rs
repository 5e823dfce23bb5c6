//! One git operation on one SSH channel: open the session (identity, routing, the fetch
//! check), run the service, and end the channel the way git expects: errors as `ERR` lines or
//! stderr, and an exit status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use russh::server::Msg;
use russh::Channel;

use super::channel::{input, Out};
use super::command::GitCommand;
use super::limits::{ActiveGuard, Permit};
use super::server::Shared;
use super::service::{self, ServiceError};
use crate::git::{Protocol, Service};
use crate::identity::Identity;
use crate::session::{Credential, OpenRequest, Transport};

/// One git exec on one channel.
pub(crate) struct Operation {
    pub shared: Arc<Shared>,
    pub identity: Identity,
    pub peer: Option<SocketAddr>,
    pub session: String,
    pub command: GitCommand,
    pub protocol: Protocol,
    pub _active: ActiveGuard,
    pub _permit: Permit,
}

impl Operation {
    pub(crate) async fn run(self, channel: Channel<Msg>) {
        let started = Instant::now();
        let (read, write) = channel.split();
        let mut out = Out::new(write);
        let gateway = self.shared.gateway.clone();
        let limit = gateway.config().ssh.max_session;
        // The path is literal over SSH; routing expects it percent-encoded, as in a URL.
        let repo_path = percent_encoding::utf8_percent_encode(&self.command.path, PATH).to_string();
        let result = tokio::time::timeout(limit, async {
            let session = gateway
                .open(OpenRequest {
                    credential: Credential::Authenticated(self.identity.clone()),
                    repo_path: &repo_path,
                    service: self.command.service,
                    protocol: self.protocol,
                    transport: Transport::Ssh,
                    peer: self.peer,
                    session: Some(self.session.clone()),
                })
                .await
                .map_err(ServiceError::Refused)?;
            service::run(&gateway, &session, input(read), &mut out).await
        })
        .await;
        let (status, outcome) = match result {
            Ok(Ok(())) => (0, "ok".to_string()),
            Ok(Err(e)) => {
                let outcome = e.to_string();
                (report(&mut out, self.command.service, e).await, outcome)
            }
            Err(_) => {
                let _ = out
                    .stderr(&format!(
                        "fatal: gitgate: the operation took longer than {} seconds \
                         ([ssh] max_session_seconds) and was stopped",
                        limit.as_secs()
                    ))
                    .await;
                (1, "time limit".to_string())
            }
        };
        out.finish(status).await;
        tracing::info!(
            session = %self.session,
            identity = %self.identity.name,
            service = %self.command.service,
            repo = %self.command.path.chars().take(256).collect::<String>(),
            protocol = self.protocol.number(),
            status,
            outcome = %outcome,
            sent_bytes = out.sent(),
            duration_ms = started.elapsed().as_millis() as u64,
            "SSH git operation ended"
        );
    }
}

/// Characters percent-encoded in the exec path before routing: controls and `%` (so a literal
/// `%2f` in an SSH path stays literal, and is then refused by routing as double encoding).
const PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

/// Tells the client why its operation failed, the way git would show it; the exit status.
async fn report(out: &mut Out, service: Service, error: ServiceError) -> u32 {
    // While git reads pkt-lines from upload-pack (and before receive-pack's advertisement),
    // `ERR <message>` makes it print `fatal: remote error: <message>`. After receive-pack's
    // advertisement, git reads the report through the sideband demultiplexer, which would
    // call an ERR packet a protocol error: stderr it is.
    let pkt_line_ok = service == Service::UploadPack || out.sent() == 0;
    let result = match &error {
        ServiceError::ClientGone(_) => return 1,
        ServiceError::Refused(r) if pkt_line_ok => out.error_line(&r.message).await,
        ServiceError::Refused(r) => out.stderr(&format!("error: {}", r.message)).await,
        ServiceError::TooLarge { .. } if pkt_line_ok => out.error_line(&error.to_string()).await,
        ServiceError::TooLarge { .. } | ServiceError::Protocol(_) => {
            out.stderr(&format!("fatal: gitgate: {error}")).await
        }
        ServiceError::Answer(e) => {
            tracing::warn!(error = %e, "an answer broke off while relaying it over SSH");
            if out.sent() == 0 {
                out.error_line("the upstream failed").await
            } else {
                out.stderr("fatal: gitgate: the answer from the upstream broke off")
                    .await
            }
        }
    };
    let _ = result;
    match error {
        ServiceError::Protocol(_) | ServiceError::Answer(_) => 128,
        _ => 1,
    }
}
