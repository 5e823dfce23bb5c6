//! The advertisement (both services) and upload-pack (clone, fetch, ls-remote).

use bytes::{Bytes, BytesMut};
use futures_util::{stream, StreamExt};

use super::oplog::{self, Operation};
use super::{Gateway, Rejection, Session, SessionError};
use crate::git::{ByteStream, Service};
use std::collections::HashSet;

use super::refs::{advertised_tips, filter_listing, Listing, RefListFilter};
use crate::git::Protocol;
use crate::proto::packsent::PackMeter;
use crate::proto::{
    parse_upload_request, Capability, CapabilityEdit, UploadCommand, UploadLimits, UploadRequest,
};

impl Gateway {
    /// The ref advertisement for the session's service, fetched from the upstream with the
    /// vaulted credential and relayed without the smart-HTTP `# service=` header (the HTTP
    /// adapter adds it; SSH never has it). Capabilities that would let a client fetch objects
    /// from elsewhere are removed.
    pub async fn advertise(&self, session: &Session) -> Result<ByteStream, Rejection> {
        let mut op = Operation::start(session, "advertise", self.metrics());
        let result = async {
            let body = super::record::operation(
                session,
                &op.id,
                op.started_at,
                crate::audit::record::Decision::Allow,
                None,
            );
            // The record takes its place in the chain now and is written while the upstream
            // prepares its advertisement. A listing of refs (v0/v1) waits until the record is
            // durable; a v2 capability advertisement reveals nothing of the repository and
            // does not wait: the `ls-refs` or `fetch` that follows waits for its own record,
            // chained after this one (so durable only once this one is).
            let pending = self.enqueue(crate::audit::RecordKind::Operation, &body)?;
            let upstream = session.repo.upstream.advertise(
                &session.repo.path,
                session.service,
                session.protocol,
            );
            let advertised_at =
                (session.service == Service::ReceivePack).then(|| self.note_advertised(session));
            let upstream = match upstream.await {
                Ok(u) => u,
                Err(e) => {
                    pending.detach();
                    return Err(e.into());
                }
            };
            let upstream = match advertised_at {
                Some(at) => {
                    // A push usually follows: have the mirror refreshed while the client
                    // packs, or not at all when it holds every tip listed here.
                    let (upstream, tips) = super::tips::tap(upstream);
                    session
                        .repo
                        .upstream
                        .prefetch_history(&session.repo.path, at, Some(tips));
                    upstream
                }
                None => upstream,
            };
            let (first, upstream) = peek(upstream, V2_START.len()).await?;
            if first.starts_with(V2_START) {
                pending.detach();
            } else {
                pending.wait().await?;
            }
            let body =
                super::advertise::filter_stream(upstream, advertisement_edit(session.service)?);
            // v2 advertises capabilities only (its refs come from `ls-refs`, filtered below),
            // but an upstream may ignore the version asked for and answer with a v0 listing:
            // the filter runs on whatever comes (capability lines pass through it unchanged).
            Ok::<_, SessionError>(if session.hidden.is_empty() {
                body
            } else {
                filter_listing(
                    body,
                    RefListFilter::new(session.hidden.clone(), Listing::Advertisement),
                )
            })
        }
        .await;
        match result {
            Ok(body) => Ok(op.meter(body)),
            Err(e) => Err(fail(&mut op, &e)),
        }
    }

    /// One upload-pack request: read (bounded), parsed for what the record needs and for
    /// requests the gateway refuses (`bundle-uri`, `packfile-uris`), relayed; the answer
    /// streams back.
    pub async fn upload_pack(
        &self,
        session: &Session,
        body: ByteStream,
    ) -> Result<ByteStream, Rejection> {
        debug_assert_eq!(session.service, Service::UploadPack);
        let mut op = Operation::start(session, "rpc", self.metrics());
        let result = async {
            let limit = self.config().limits.max_request_bytes;
            let request = read_bounded(body, limit, "the upload-pack request").await?;
            let summary =
                parse_upload_request(&request, session.protocol, &UploadLimits::default())?;
            let ls_refs = summary.command == Some(UploadCommand::LsRefs);
            let refused = match summary.refuse_reason() {
                Some(reason) => Err(SessionError::Refused {
                    reason: reason.to_string(),
                }),
                None if !session.hidden.is_empty() => self.check_wants(session, &summary).await,
                None => Ok(()),
            };
            let (decision, reason) = match &refused {
                Ok(()) => (crate::audit::record::Decision::Allow, None),
                Err(e) => (crate::audit::record::Decision::Deny, Some(e.to_string())),
            };
            let mut body =
                super::record::operation(session, &op.id, op.started_at, decision, reason);
            body.fetch = Some(super::record::fetch_facts(&summary));
            if let Err(e) = refused {
                self.record_refusal(body).await;
                return Err(e);
            }
            // A read changes nothing upstream: the request goes out while the record is
            // written, and the answer is released only once the record is durable.
            let record = self.append(crate::audit::RecordKind::Operation, body);
            let request: ByteStream = Box::pin(stream::once(async move { Ok(request) }));
            let request = oplog::count(request, op.bytes_in.clone());
            let answer = session.repo.upstream.rpc(
                &session.repo.path,
                Service::UploadPack,
                session.protocol,
                request,
            );
            let (recorded, answer) = tokio::join!(record, answer);
            recorded?;
            let answer = answer?;
            Ok::<_, SessionError>(if ls_refs && !session.hidden.is_empty() {
                filter_listing(
                    answer,
                    RefListFilter::new(session.hidden.clone(), Listing::LsRefs),
                )
            } else if summary.command == Some(UploadCommand::Fetch) || !summary.wants.is_empty() {
                self.measure_pack(session, &op.id, answer)
            } else {
                answer
            })
        }
        .await;
        match result {
            Ok(body) => Ok(op.meter(body)),
            Err(e) => Err(fail(&mut op, &e)),
        }
    }
}

impl Gateway {
    /// Refuses fetching a hidden ref by name (`want-ref`) or by the id of its tip (`want`),
    /// unless a visible ref has the same tip.
    async fn check_wants(
        &self,
        session: &Session,
        request: &UploadRequest,
    ) -> Result<(), SessionError> {
        if let Some(name) = request
            .want_refs
            .iter()
            .find(|r| session.hidden.is_hidden(r))
        {
            return Err(SessionError::Refused {
                reason: format!("{}: {name} is not available", hidden_rule(session, name)),
            });
        }
        if request.wants.is_empty() {
            return Ok(());
        }
        let advertisement = session
            .repo
            .upstream
            .advertise(&session.repo.path, Service::UploadPack, Protocol::V0)
            .await?;
        let body = read_bounded(
            advertisement,
            MAX_ADVERTISEMENT,
            "the upstream's advertisement",
        )
        .await?;
        let tips = advertised_tips(&body);
        let visible: HashSet<&str> = tips
            .iter()
            .filter(|(_, name)| !session.hidden.is_hidden(name))
            .map(|(oid, _)| oid.as_str())
            .collect();
        for want in &request.wants {
            let hex = want.to_hex();
            if visible.contains(hex.as_str()) {
                continue;
            }
            if let Some((_, name)) = tips.iter().find(|(oid, _)| *oid == hex) {
                return Err(SessionError::Refused {
                    reason: format!(
                        "{}: object {hex} is not available",
                        hidden_rule(session, name)
                    ),
                });
            }
        }
        Ok(())
    }
}

fn hidden_rule<'a>(session: &'a Session, refname: &str) -> &'a str {
    session.hidden.hidden_by(refname).unwrap_or("hide_refs")
}

/// The upstream's advertisement read to check wants is bounded by this.
const MAX_ADVERTISEMENT: u64 = 256 << 20;

/// How the gateway edits the v0/v1 capability list it relays.
fn advertisement_edit(service: Service) -> Result<CapabilityEdit, SessionError> {
    Ok(match service {
        // `no-thin`: the client sends a self-contained pack, so every object can be resolved
        // and inspected without the upstream's objects. `push-cert`: signed pushes would need
        // the gateway to forward a certificate over a command list it may change.
        Service::ReceivePack => CapabilityEdit {
            remove: vec!["push-cert".into()],
            add: vec![Capability::flag("no-thin")?],
        },
        Service::UploadPack => CapabilityEdit::default(),
    })
}

/// Ends `op` with the rejection `e` maps to.
pub(super) fn fail(op: &mut Operation, e: &SessionError) -> Rejection {
    let rejection = Rejection::from(e);
    op.finish(rejection.kind.as_str(), Some(&e.to_string()));
    rejection
}

/// Reads a whole body of at most `limit` bytes.
pub(super) async fn read_bounded(
    mut body: ByteStream,
    limit: u64,
    what: &'static str,
) -> Result<Bytes, SessionError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(SessionError::Body)?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(SessionError::TooLarge { what, limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

impl Gateway {
    /// Passes a fetch answer through while measuring the pack in it; once the answer has
    /// streamed (or broken off), records what was sent as a [`RecordKind::Result`] linked to
    /// the operation. Answers without pack bytes (a negotiation round) record nothing.
    ///
    /// [`RecordKind::Result`]: crate::audit::RecordKind::Result
    fn measure_pack(&self, session: &Session, op: &str, answer: ByteStream) -> ByteStream {
        Box::pin(Measured {
            inner: answer,
            meter: Some(PackMeter::new()),
            audit: self.audit.clone(),
            op: op.to_string(),
            session: session.id.clone(),
            error: None,
        })
    }
}

/// The answer stream of [`Gateway::measure_pack`].
struct Measured {
    inner: ByteStream,
    meter: Option<PackMeter>,
    audit: crate::audit::Audit,
    op: String,
    session: String,
    error: Option<String>,
}

impl Measured {
    /// Records the measurement once, in the background: the answer has already gone.
    fn record(&mut self) {
        let Some(measured) = self.meter.take().and_then(PackMeter::finish) else {
            return;
        };
        let body = crate::audit::record::FetchResult {
            id: None,
            op: std::mem::take(&mut self.op),
            session: std::mem::take(&mut self.session),
            time: None,
            pack_sent: crate::audit::record::PackSent {
                sha256: measured.sha256,
                bytes: measured.bytes,
                objects: measured.objects,
            },
            complete: measured.complete && self.error.is_none(),
            error: self.error.take(),
        };
        let audit = self.audit.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn_blocking(move || {
            if let Err(e) = audit.append(crate::audit::RecordKind::Result, &body) {
                tracing::error!(op = %body.op, error = %e, "the pack sent could not be recorded");
            }
        });
    }
}

impl futures_util::Stream for Measured {
    type Item = std::io::Result<Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = this.inner.as_mut().poll_next(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(chunk))) => {
                if let Some(meter) = this.meter.as_mut() {
                    meter.feed(chunk);
                }
            }
            std::task::Poll::Ready(Some(Err(e))) => {
                this.error = Some(e.to_string());
                this.record();
            }
            std::task::Poll::Ready(None) => this.record(),
            std::task::Poll::Pending => {}
        }
        polled
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        if self.meter.is_some() {
            self.error
                .get_or_insert_with(|| "the client went away".to_string());
            self.record();
        }
    }
}

/// How a v2 capability advertisement starts (the HTTP service header already stripped).
const V2_START: &[u8] = b"000eversion 2\n";

/// Reads the first `n` bytes of `body` (fewer if it ends sooner) and gives them back with a
/// stream that still yields everything.
async fn peek(mut body: ByteStream, n: usize) -> Result<(Vec<u8>, ByteStream), SessionError> {
    let mut chunks: Vec<bytes::Bytes> = Vec::new();
    let mut seen = 0;
    while seen < n {
        match body.next().await {
            Some(Ok(chunk)) => {
                seen += chunk.len();
                chunks.push(chunk);
            }
            Some(Err(e)) => return Err(SessionError::Body(e)),
            None => break,
        }
    }
    let first: Vec<u8> = chunks
        .iter()
        .flat_map(|c| c.iter().copied())
        .take(n)
        .collect();
    let head = stream::iter(chunks.into_iter().map(Ok));
    Ok((first, Box::pin(head.chain(body))))
}

#[cfg(test)]
mod tests {
    use futures_util::TryStreamExt;

    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> ByteStream {
        Box::pin(stream::iter(
            parts
                .iter()
                .map(|p| Ok(bytes::Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        ))
    }

    #[tokio::test]
    async fn peek_sees_a_v2_start_split_over_chunks_and_keeps_every_byte() {
        let (first, rest) = peek(
            chunks(&[b"000ev", b"ersion 2\n0013", b"ls-refs=unborn\n0000"]),
            14,
        )
        .await
        .expect("peeks");
        assert_eq!(first, V2_START);
        let all: Vec<bytes::Bytes> = rest.try_collect().await.expect("streams");
        assert_eq!(all.concat(), b"000eversion 2\n0013ls-refs=unborn\n0000");
    }

    #[tokio::test]
    async fn peek_of_a_v0_listing_or_a_short_body() {
        let listing = b"003fabababababababababababababababababababab refs/heads/main\0ofs-delta\n";
        let (first, rest) = peek(chunks(&[listing]), 14).await.expect("peeks");
        assert!(!first.starts_with(V2_START));
        let all: Vec<bytes::Bytes> = rest.try_collect().await.expect("streams");
        assert_eq!(all.concat(), listing.to_vec());
        let (first, rest) = peek(chunks(&[b"0000"]), 14).await.expect("peeks");
        assert_eq!(first, b"0000");
        let all: Vec<bytes::Bytes> = rest.try_collect().await.expect("streams");
        assert_eq!(all.concat(), b"0000");
    }
}
