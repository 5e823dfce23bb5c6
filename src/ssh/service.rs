//! One git service over one SSH channel, translated onto the stateless session pipeline.
//!
//! SSH is one bidirectional stream in which the server speaks first (the advertisement); the
//! pipeline answers stateless requests, like smart HTTP. The translation, per service:
//! - receive-pack: the advertisement; then the client's commands (and push options), and the
//!   pack up to the client's EOF (git closes its side after the pack; a push of deletions
//!   only carries no pack and git waits for the report without closing), as one request;
//!   then the report.
//! - upload-pack, protocol v2: the capability advertisement; then each command up to its
//!   flush is one request, until the client sends a lone flush or EOF.
//! - upload-pack, v0/v1: the advertisement; then the negotiation of [`super::negotiate`],
//!   one stateless request per client round.
//!
//! Nothing here decides anything: identity, policy, scanning, the record and approvals all
//! happen in the session calls. Requests are small and bounded; packs are never held: the
//! pushed one streams into the session (which spools it to disk), the fetched one streams
//! out to the client.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{stream, StreamExt};

use super::channel::{ClientGone, Out, RelayError};
use super::frames::{Frame, Frames};
use super::negotiate::{is_shallow_line, AckAction, Negotiation, RoundEnd, TooManyCommon};
use crate::git::{ByteStream, Protocol, Service};
use crate::proto::pktline::PktError;
use crate::proto::receive::{self, parse_update_request};
use crate::proto::ProtoError;
use crate::session::{Gateway, Rejection, Session};

/// Why a git operation over SSH ended early.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The pipeline refused (the client is told the reason).
    #[error("{}", .0.message)]
    Refused(Rejection),
    /// The client broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A request exceeded a limit.
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// An answer broke off (the upstream failed mid-way).
    #[error("the answer broke off: {0}")]
    Answer(std::io::Error),
    /// The client went away.
    #[error(transparent)]
    ClientGone(#[from] ClientGone),
}

impl From<RelayError> for ServiceError {
    fn from(e: RelayError) -> Self {
        match e {
            RelayError::Client(c) => ServiceError::ClientGone(c),
            RelayError::Source(e) => ServiceError::Answer(e),
        }
    }
}

impl From<PktError> for ServiceError {
    fn from(e: PktError) -> Self {
        match e {
            PktError::Io(e) => ServiceError::Answer(e),
            e => ServiceError::Protocol(e.to_string()),
        }
    }
}

impl From<TooManyCommon> for ServiceError {
    fn from(e: TooManyCommon) -> Self {
        ServiceError::Protocol(e.to_string())
    }
}

/// Runs the session's service: advertisement first, then the client's requests.
pub async fn run(
    gateway: &Arc<Gateway>,
    session: &Session,
    input: ByteStream,
    out: &mut Out,
) -> Result<(), ServiceError> {
    let advertisement = gateway
        .advertise(session)
        .await
        .map_err(ServiceError::Refused)?;
    out.relay(advertisement).await?;
    let mut input = ClientInput {
        frames: Frames::new(input),
        limit: gateway.config().limits.max_request_bytes,
    };
    match (session.service, session.protocol) {
        (Service::ReceivePack, _) => receive_pack(gateway, session, input, out).await,
        (Service::UploadPack, Protocol::V2) => {
            upload_pack_v2(gateway, session, &mut input, out).await
        }
        (Service::UploadPack, _) => upload_pack_v0(gateway, session, &mut input, out).await,
    }
}

/// The client's packets, with the request size limit.
struct ClientInput {
    frames: Frames,
    limit: u64,
}

impl ClientInput {
    async fn next(&mut self) -> Result<Option<Frame>, ServiceError> {
        match self.frames.next().await {
            Ok(f) => Ok(f),
            // Reading the client's side cannot fail with I/O errors other than its going away.
            Err(PktError::Io(_)) => Err(ServiceError::ClientGone(ClientGone)),
            Err(e) => Err(ServiceError::Protocol(e.to_string())),
        }
    }

    /// The next packet, which must exist.
    async fn require(&mut self, context: &str) -> Result<Frame, ServiceError> {
        self.next()
            .await?
            .ok_or_else(|| ServiceError::Protocol(format!("the client stopped inside {context}")))
    }

    fn check(&self, buf: &[u8], what: &'static str) -> Result<(), ServiceError> {
        if buf.len() as u64 > self.limit {
            return Err(ServiceError::TooLarge {
                what,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

fn once(bytes: Bytes) -> ByteStream {
    Box::pin(stream::once(async move { Ok(bytes) }))
}

/// Push: the commands (and push options), then the pack until the client's EOF when one
/// follows, as one request; the report back.
async fn receive_pack(
    gateway: &Arc<Gateway>,
    session: &Session,
    mut input: ClientInput,
    out: &mut Out,
) -> Result<(), ServiceError> {
    // Framing only: the pipeline parses the request again, with its own limits.
    let framing = receive::Limits {
        max_commands: usize::MAX,
        max_shallow: usize::MAX,
        max_push_options: usize::MAX,
        ..receive::Limits::default()
    };
    let mut head = BytesMut::new();
    let expects_pack = loop {
        let Some(frame) = input.next().await? else {
            if head.is_empty() {
                // The client hung up after the advertisement (`git ls-remote` of a push URL).
                return Ok(());
            }
            return Err(ServiceError::Protocol(
                "the client stopped inside the update commands".into(),
            ));
        };
        head.extend_from_slice(&frame.raw);
        if head.len() > framing.max_request_bytes {
            // Too large to be a request: the pipeline refuses it in the report.
            break false;
        }
        if !frame.is_flush() {
            continue;
        }
        if head.as_ref() == crate::proto::pktline::flush() {
            // Nothing to update ("Everything up-to-date"): git sends a flush and leaves.
            return Ok(());
        }
        match parse_update_request(&head, &framing) {
            Ok((request, _)) => break request.expects_pack(),
            // The push options follow.
            Err(ProtoError::Truncated { .. }) => continue,
            // Malformed: the pipeline refuses it; nothing more is read.
            Err(_) => break false,
        }
    };
    let head = once(head.freeze());
    let body = if expects_pack {
        Box::pin(head.chain(input.frames.into_stream()))
    } else {
        head
    };
    let answer = gateway
        .receive_pack(session, body)
        .await
        .map_err(ServiceError::Refused)?;
    out.relay(answer).await?;
    Ok(())
}

/// Protocol v2: each command up to its flush is one request.
async fn upload_pack_v2(
    gateway: &Arc<Gateway>,
    session: &Session,
    input: &mut ClientInput,
    out: &mut Out,
) -> Result<(), ServiceError> {
    loop {
        let Some(first) = input.next().await? else {
            return Ok(());
        };
        if first.is_flush() {
            // gitprotocol-v2: a flush instead of a command ends the session.
            return Ok(());
        }
        let mut request = BytesMut::from(first.raw.as_ref());
        loop {
            let frame = input.require("a command").await?;
            request.extend_from_slice(&frame.raw);
            input.check(&request, "the upload-pack request")?;
            if frame.is_flush() {
                break;
            }
        }
        let answer = gateway
            .upload_pack(session, once(request.freeze()))
            .await
            .map_err(ServiceError::Refused)?;
        out.relay(answer).await?;
    }
}

/// Protocol v0/v1: wants, then one stateless request per round of haves.
async fn upload_pack_v0(
    gateway: &Arc<Gateway>,
    session: &Session,
    input: &mut ClientInput,
    out: &mut Out,
) -> Result<(), ServiceError> {
    let Some(first) = input.next().await? else {
        return Ok(());
    };
    if first.is_flush() {
        // No wants: `git ls-remote`, or a fetch with nothing new.
        return Ok(());
    }
    let mut wants = BytesMut::from(first.raw.as_ref());
    loop {
        let frame = input.require("the wants").await?;
        wants.extend_from_slice(&frame.raw);
        input.check(&wants, "the upload-pack request")?;
        if frame.is_flush() {
            break;
        }
    }
    let mut negotiation = Negotiation::new(wants.freeze());
    if negotiation.deepen() {
        // A stateful server answers the wants of a shallow fetch with the shallow section
        // before the client sends any `have`; a request of the wants alone gets just that.
        let answer = gateway
            .upload_pack(session, once(negotiation.wants_only()))
            .await
            .map_err(ServiceError::Refused)?;
        out.relay(answer).await?;
    }
    loop {
        let mut haves = BytesMut::new();
        let end = loop {
            let Some(frame) = input.next().await? else {
                // The client gave up (e.g. it was killed): nothing more to do.
                return Ok(());
            };
            if frame.is_flush() {
                break RoundEnd::Flush;
            }
            if frame.line() == Some(b"done".as_slice()) {
                break RoundEnd::Done;
            }
            haves.extend_from_slice(&frame.raw);
            input.check(&haves, "the upload-pack request")?;
        };
        let request = negotiation.request(&haves, end);
        input.check(&request, "the upload-pack request")?;
        let answer = gateway
            .upload_pack(session, once(request))
            .await
            .map_err(ServiceError::Refused)?;
        let finished = relay_round(answer, &mut negotiation, end, out).await?;
        if finished || end == RoundEnd::Done {
            return Ok(());
        }
    }
}

/// Relays one answer of the negotiation as a stateful server would have sent it; true once
/// the pack has been relayed.
async fn relay_round(
    answer: ByteStream,
    negotiation: &mut Negotiation,
    end: RoundEnd,
    out: &mut Out,
) -> Result<bool, ServiceError> {
    let mut frames = Frames::new(answer);
    let mut pending = frames.next().await?;
    if negotiation.deepen() {
        // The shallow section was passed on with the first answer; the upstream repeats it.
        while let Some(frame) = &pending {
            let shallow = frame.line().is_some_and(is_shallow_line);
            let flush = frame.is_flush();
            if !shallow && !flush {
                break;
            }
            pending = frames.next().await?;
            if flush {
                break;
            }
        }
    }
    let mut kept = BytesMut::new();
    while let Some(frame) = pending {
        let action = match frame.line() {
            Some(line) => negotiation.on_line(line, end)?,
            None => AckAction::Relay,
        };
        match action {
            AckAction::Drop => {}
            AckAction::Relay => kept.extend_from_slice(&frame.raw),
            AckAction::Last => {
                kept.extend_from_slice(&frame.raw);
                out.data(kept.freeze()).await?;
                out.relay(frames.into_stream()).await?;
                return Ok(true);
            }
        }
        pending = frames.next().await?;
    }
    out.data(kept.freeze()).await?;
    Ok(false)
}
