//! One exchange on one SSH channel: exec the git service, send the request while the answer
//! streams back, and end at the end of the answer (see [`super::framing`]).
//!
//! Both directions stream with bounded memory: the request is written as the body yields
//! it, each write waiting for the channel's window; the answer is read only as fast as the
//! consumer polls, and russh stops reading the socket when the channel's queue is full.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{stream, StreamExt};
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::task::JoinHandle;

use super::client::{Connector, Lease};
use super::framing::{self, Expect, Feed, Framer};
use crate::git::{ByteStream, Protocol};
use crate::upstream::UpstreamError;

/// Upstream stderr kept for the log and error messages.
const STDERR_LIMIT: usize = 16 * 1024;
/// After the answer: how long the upstream may take to finish and close the channel before
/// the connection is dropped instead of reused.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest upload-pack request held to read its shape (the session bounds it already).
const MAX_UPLOAD_REQUEST: usize = 256 << 20;
/// The largest receive-pack command list read before the first command is complete.
const MAX_COMMANDS_HEAD: usize = 8 << 20;

/// How the exec'd process ended.
#[derive(Debug, Clone)]
enum Exit {
    Status(u32),
    Signal(String),
}

/// A channel running one git process.
pub(super) struct Exchange {
    upstream: String,
    lease: Option<Lease>,
    read: ChannelReadHalf,
    write: Arc<ChannelWriteHalf<Msg>>,
    writer: Option<JoinHandle<()>>,
    stderr: Vec<u8>,
    exit: Option<Exit>,
    refused: bool,
    closed: bool,
}

impl Exchange {
    /// Opens a channel, forwards the protocol version (`GIT_PROTOCOL`), runs `command`.
    pub(super) async fn start(
        connector: &Connector,
        upstream: &str,
        command: &str,
        protocol: Protocol,
    ) -> Result<Exchange, UpstreamError> {
        let (lease, channel) = connector.channel().await?;
        let lost = |e: russh::Error| UpstreamError::Unreachable {
            upstream: upstream.to_string(),
            detail: format!("starting git: {e}"),
        };
        if let Some(p) = protocol.parameter() {
            // No reply wanted: a server that does not accept the variable speaks v0, which
            // the advertisement reveals.
            channel
                .set_env(false, "GIT_PROTOCOL", p)
                .await
                .map_err(lost)?;
        }
        channel.exec(true, command).await.map_err(lost)?;
        let (read, write) = channel.split();
        Ok(Exchange {
            upstream: upstream.to_string(),
            lease: Some(lease),
            read,
            write: Arc::new(write),
            writer: None,
            stderr: Vec::new(),
            exit: None,
            refused: false,
            closed: false,
        })
    }

    /// The next bytes of the process's stdout; `None` once the channel is closed (the exit
    /// status and stderr are kept).
    async fn next(&mut self) -> Option<Bytes> {
        while !self.closed {
            match self.read.wait().await {
                Some(ChannelMsg::Data { data }) => return Some(data),
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    let room = STDERR_LIMIT.saturating_sub(self.stderr.len());
                    self.stderr
                        .extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    self.exit = Some(Exit::Status(exit_status))
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    self.exit = Some(Exit::Signal(format!("{signal_name:?}")))
                }
                Some(ChannelMsg::Failure) => self.refused = true,
                Some(ChannelMsg::Close) | None => self.closed = true,
                Some(_) => {}
            }
        }
        None
    }

    /// Why the channel ended without (complete) output.
    fn failure(&self, repo: &str) -> UpstreamError {
        let stderr = String::from_utf8_lossy(&self.stderr);
        tracing::warn!(
            upstream = %self.upstream,
            exit = ?self.exit,
            stderr = %stderr.trim(),
            "upstream git over SSH failed"
        );
        if stderr.contains("does not appear to be a git repository")
            || stderr.contains("not a git repository")
        {
            return UpstreamError::NotFound {
                upstream: self.upstream.clone(),
                repo: repo.to_string(),
            };
        }
        // The server's stderr goes to the log only: it may name paths on the upstream.
        let detail = if self.refused {
            "the SSH server refused to run git".to_string()
        } else {
            match &self.exit {
                Some(Exit::Status(s)) => format!("git exited with status {s}"),
                Some(Exit::Signal(sig)) => format!("git was killed by {sig}"),
                None => "the SSH channel closed without an exit status".to_string(),
            }
        };
        UpstreamError::Protocol {
            upstream: self.upstream.clone(),
            detail,
        }
    }

    /// Ends an exchange whose answer is complete: waits for the request to be sent, says
    /// goodbye (`farewell`, then EOF) unless the writer did, lets the process finish, and
    /// gives the connection back. A slow or stuck upstream costs its connection instead.
    async fn finish(mut self, farewell: Option<&'static [u8]>) {
        let clean = tokio::time::timeout(FINISH_TIMEOUT, async {
            match self.writer.take() {
                Some(writer) => {
                    let _ = writer.await;
                }
                None => {
                    if let Some(bytes) = farewell {
                        let _ = self.write.data_bytes(Bytes::from_static(bytes)).await;
                    }
                    let _ = self.write.eof().await;
                }
            }
            while self.next().await.is_some() {}
        })
        .await
        .is_ok();
        if clean && self.closed {
            if let Some(lease) = self.lease.take() {
                lease.release();
            }
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
    }
}

/// The advertisement, streamed: waits for its first packet (so that a missing repository, a
/// refused command or a server that ignored the protocol request is an error, not a broken
/// stream), then relays up to its flush.
pub(super) async fn advertise(
    mut ex: Exchange,
    protocol: Protocol,
    repo: &str,
) -> Result<ByteStream, UpstreamError> {
    let mut probe = Framer::new(Expect::Advertisement);
    let mut head = BytesMut::new();
    while !probe.first_seen() {
        let Some(chunk) = ex.next().await else {
            if head.is_empty() {
                return Err(ex.failure(repo));
            }
            break;
        };
        if let Err(e) = probe.feed(&chunk) {
            return Err(UpstreamError::Protocol {
                upstream: ex.upstream.clone(),
                detail: e.to_string(),
            });
        }
        head.extend_from_slice(&chunk);
    }
    check_version(&ex.upstream, protocol, probe.version())?;
    Ok(relay(
        ex,
        Framer::new(Expect::Advertisement),
        head.freeze(),
        false,
        repo,
    ))
}

/// The session filters and frames what it relays by the version the client asked for: an
/// upstream answering in another one is refused, never relayed.
fn check_version(upstream: &str, asked: Protocol, answered: u8) -> Result<(), UpstreamError> {
    let detail = match (asked == Protocol::V2, answered == 2) {
        (true, false) => {
            "the SSH server did not switch to protocol v2 (it must accept the GIT_PROTOCOL \
             environment variable: AcceptEnv GIT_PROTOCOL); clients may use protocol.version=0"
        }
        (false, true) => "the SSH server answered with protocol v2 unasked",
        _ => return Ok(()),
    };
    Err(UpstreamError::Protocol {
        upstream: upstream.to_string(),
        detail: detail.to_string(),
    })
}

/// One request/response exchange: the request is sent while the advertisement the process
/// starts with is read and dropped, then the answer is relayed up to its end.
pub(super) async fn rpc(
    connector: &Connector,
    upstream: &str,
    command: &str,
    protocol: Protocol,
    service: crate::git::Service,
    body: ByteStream,
    repo: &str,
) -> Result<ByteStream, UpstreamError> {
    let protocol_error = |detail: String| UpstreamError::Protocol {
        upstream: upstream.to_string(),
        detail,
    };
    let (head, rest, expect) = match service {
        crate::git::Service::UploadPack => {
            let request = collect(body, MAX_UPLOAD_REQUEST)
                .await
                .map_err(|e| protocol_error(format!("reading the request: {e}")))?;
            let expect = if protocol == Protocol::V2 {
                Expect::V2Command
            } else {
                Expect::Upload(framing::UploadShape::of(&request))
            };
            (request, None, expect)
        }
        crate::git::Service::ReceivePack => {
            let (head, rest, sideband) = commands_head(body)
                .await
                .map_err(|e| protocol_error(format!("reading the request: {e}")))?;
            let expect = if sideband {
                Expect::ReceiveSideband
            } else {
                Expect::Eof
            };
            (head, Some(rest), expect)
        }
    };
    let mut ex = Exchange::start(connector, upstream, command, protocol).await?;
    ex.writer = Some(spawn_writer(ex.write.clone(), head, rest, upstream));

    let mut advertisement = Framer::new(Expect::Advertisement);
    let leftover = loop {
        let Some(chunk) = ex.next().await else {
            return Err(ex.failure(repo));
        };
        match advertisement.feed(&chunk) {
            Ok(Feed::More) => continue,
            Ok(Feed::Done { used }) => break chunk.slice(used..),
            Err(e) => return Err(protocol_error(e.to_string())),
        }
    };
    if let Some(message) = advertisement.error() {
        return Err(protocol_error(format!("the upstream said: {message}")));
    }
    check_version(upstream, protocol, advertisement.version())?;
    // A round of `have`s without `done` leaves upload-pack waiting for more; it dies on our
    // EOF, so its exit status says nothing about the answer.
    let lenient = matches!(expect, Expect::Upload(shape) if !shape.done);
    Ok(relay(ex, Framer::new(expect), leftover, lenient, repo))
}

/// Writes the request, then EOF. A failing body closes the channel so that the answer fails
/// too instead of looking complete.
fn spawn_writer(
    write: Arc<ChannelWriteHalf<Msg>>,
    head: Bytes,
    rest: Option<ByteStream>,
    upstream: &str,
) -> JoinHandle<()> {
    let upstream = upstream.to_string();
    tokio::spawn(async move {
        if !head.is_empty() && write.data_bytes(head).await.is_err() {
            return;
        }
        if let Some(mut rest) = rest {
            while let Some(chunk) = rest.next().await {
                match chunk {
                    Ok(chunk) => {
                        // The upstream stopped reading (it failed or answered early): its
                        // answer says why.
                        if write.data_bytes(chunk).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(upstream = %upstream, error = %e, "request body failed");
                        let _ = write.close().await;
                        return;
                    }
                }
            }
        }
        let _ = write.eof().await;
    })
}

/// The answer as a stream that ends where the framer says, or fails when the channel ends
/// before that.
fn relay(ex: Exchange, framer: Framer, first: Bytes, lenient: bool, repo: &str) -> ByteStream {
    let state = Relay {
        ex: Some(ex),
        framer,
        pending: (!first.is_empty()).then_some(first),
        lenient,
        repo: repo.to_string(),
    };
    Box::pin(stream::unfold(state, |mut state| async move {
        let item = state.step().await?;
        Some((item, state))
    }))
}

struct Relay {
    ex: Option<Exchange>,
    framer: Framer,
    pending: Option<Bytes>,
    lenient: bool,
    repo: String,
}

impl Relay {
    async fn step(&mut self) -> Option<io::Result<Bytes>> {
        let ex = self.ex.as_mut()?;
        if self.framer.is_done() {
            let ex = self.ex.take()?;
            tokio::spawn(ex.finish(None));
            return None;
        }
        let chunk = match self.pending.take() {
            Some(chunk) => chunk,
            None => match ex.next().await {
                Some(chunk) => chunk,
                None => {
                    let ex = self.ex.take()?;
                    return self.ended(ex);
                }
            },
        };
        match self.framer.feed(&chunk) {
            Ok(Feed::More) => Some(Ok(chunk)),
            Ok(Feed::Done { used }) => {
                let ex = self.ex.take()?;
                tracing::debug!(upstream = %ex.upstream, "upstream answer complete");
                // v0/v1 advertisements are answered with a flush ("nothing wanted"), so the
                // process exits cleanly; v2 servers end on EOF.
                let farewell = (self.framer.version() != 2).then_some(b"0000".as_slice());
                tokio::spawn(ex.finish(farewell));
                (used > 0).then(|| Ok(chunk.slice(..used)))
            }
            Err(e) => {
                self.ex = None;
                Some(Err(io::Error::other(e)))
            }
        }
    }

    /// The channel closed before the answer's end: complete only if the process exited
    /// between packets, successfully (or as expected, for a negotiation round).
    fn ended(&mut self, mut ex: Exchange) -> Option<io::Result<Bytes>> {
        let exited_ok = matches!(ex.exit, Some(Exit::Status(0)))
            || (self.lenient && matches!(ex.exit, Some(Exit::Status(_))));
        tracing::debug!(upstream = %ex.upstream, exit = ?ex.exit, "upstream channel closed");
        if self.framer.at_boundary() && exited_ok {
            if let Some(lease) = ex.lease.take() {
                lease.release();
            }
            return None;
        }
        let e = ex.failure(&self.repo);
        Some(Err(io::Error::other(format!(
            "{e} (the answer ended early)"
        ))))
    }
}

/// Reads a whole body of at most `limit` bytes.
async fn collect(mut body: ByteStream, limit: usize) -> io::Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Err(io::Error::other(format!("larger than {limit} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads a receive-pack request until its first command is complete: the bytes read, the
/// rest of the body, and whether the client asked for side-band.
async fn commands_head(mut body: ByteStream) -> io::Result<(Bytes, ByteStream, bool)> {
    let mut buf = BytesMut::new();
    loop {
        if let Some(sideband) = framing::receive_sideband(&buf) {
            return Ok((buf.freeze(), body, sideband));
        }
        match body.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                if buf.len() + chunk.len() > MAX_COMMANDS_HEAD {
                    return Err(io::Error::other("the command list is too long"));
                }
                buf.extend_from_slice(&chunk);
            }
            None => {
                let sideband = framing::receive_sideband(&buf).unwrap_or(false);
                return Ok((buf.freeze(), body, sideband));
            }
        }
    }
}
