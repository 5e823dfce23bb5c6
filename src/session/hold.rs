//! A held push: the answer streams the waiting lines (band 2), then keep-alive packets while the
//! held updates wait for approval, then the report once they are decided or the wait is over. Also
//! the last stage every push shares: relay what is allowed and answer.

use std::sync::Arc;

use futures_util::stream;

use super::answer::{explain, AnswerFormat};
use super::approve::Resolution;
use super::Gateway;
use super::{Session, SessionError};
use crate::approval::{Outcome, Status};
use crate::git::ByteStream;
use crate::inspect::{GitDir, Quarantine};
use crate::pack::IndexedPack;
use crate::proto::receive::{Command, UpdateRequest};
use crate::proto::report::{RefStatus, Report, Unpack};

/// A ref update held for approval.
pub(super) struct Held {
    pub(super) command: Command,
    pub(super) id: String,
    pub(super) rule: String,
    /// The rejection reason when it is not decided in time (`... approval pending <ID>`).
    pub(super) reason: String,
}

/// What relaying and answering a push needs once its decisions are recorded (owned, so a
/// held push can finish in a task of its own).
pub(super) struct Tail {
    pub(super) session: Session,
    pub(super) request: UpdateRequest,
    pub(super) format: AnswerFormat,
    pub(super) allowed: Vec<Command>,
    pub(super) own: Vec<RefStatus>,
    /// Updates reported done without relaying (applied already by the gateway).
    pub(super) done: Vec<RefStatus>,
    /// Approvals this push relays: (id, refname).
    pub(super) claims: Vec<(String, String)>,
    pub(super) messages: Vec<u8>,
    pub(super) indexed: Option<Arc<IndexedPack>>,
    pub(super) quarantine: Quarantine,
    pub(super) original: Option<std::fs::File>,
    pub(super) unreferenced_secret: bool,
    pub(super) op_id: String,
    pub(super) bytes_in: Arc<std::sync::atomic::AtomicU64>,
    // Dropped last: the spooled pack and its index.
    pub(super) _spool: tempfile::NamedTempFile,
    pub(super) _idx: super::push::RemoveOnDrop,
}

/// An empty band-1 packet: what git's receive-pack sends to keep a connection alive.
const KEEPALIVE_PACKET: &[u8] = b"0005\x01";

impl Gateway {
    /// How often a held push sends something: [`KEEPALIVE`](super::approve::KEEPALIVE), or
    /// more often when the SSH front's idle timeout is shorter (twice per timeout), so the wait
    /// does not look idle.
    fn hold_keepalive(&self) -> std::time::Duration {
        super::approve::KEEPALIVE
            .min(self.config().ssh.idle_timeout / 2)
            .max(std::time::Duration::from_millis(100))
    }

    /// Holds a push whose updates wait for approval: answers at once with a stream that
    /// carries the waiting lines (band 2), then keep-alive packets, then the report once every held
    /// update is decided or `wait` is over. Transport-neutral: HTTP streams the body, SSH
    /// the channel.
    pub(super) fn hold(
        self: &Arc<Self>,
        mut tail: Tail,
        held: Vec<Held>,
        wait: std::time::Duration,
    ) -> ByteStream {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
        let this = self.clone();
        let ids: Vec<String> = held.iter().map(|h| h.id.clone()).collect();
        self.approval.hold(&ids);
        tokio::spawn(async move {
            let lines = this.waiting_lines(
                &held
                    .iter()
                    .map(|h| (h.id.clone(), h.rule.clone()))
                    .collect::<Vec<_>>(),
            );
            let sideband = tail.format.sideband;
            let keepalive_tx = tx.clone();
            let mut told = false;
            let keepalive = move || {
                let Some(max) = sideband else {
                    return !keepalive_tx.is_closed();
                };
                // The waiting lines once, then what git's receive-pack sends as keep-alive
                // (`receive.keepAlive`): an empty band-1 packet, which clients skip.
                let out = if told {
                    bytes::Bytes::from_static(KEEPALIVE_PACKET)
                } else {
                    told = true;
                    let mut out = bytes::BytesMut::new();
                    crate::proto::sideband::encode(
                        &mut out,
                        crate::proto::sideband::Band::Progress,
                        &lines,
                        max,
                    );
                    out.freeze()
                };
                match keepalive_tx.try_send(Ok(out)) {
                    Ok(()) => true,
                    Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => true,
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => false,
                }
            };
            let waited = crate::approval::wait_for(
                this.approvals(),
                &ids,
                wait,
                this.hold_keepalive(),
                keepalive,
            )
            .await;
            let approvals = match waited {
                Ok(w) => w.approvals,
                Err(e) => {
                    tracing::error!(error = %e, "approvals: waiting failed");
                    Vec::new()
                }
            };
            for h in held {
                let decided = approvals.iter().find(|a| a.id == h.id);
                let status = match decided {
                    Some(a) if a.status == Status::Approved => {
                        let id = a.id.clone();
                        let claimed = this
                            .approvals()
                            .run(move |s| s.claim(&id, Outcome::Relaying))
                            .await
                            .unwrap_or(false);
                        // The decision goes into the chain before the update reaches the
                        // upstream; if it cannot, the update is refused (fail closed).
                        let recorded = claimed && this.ensure_recorded(a).await.is_ok();
                        if claimed && !recorded {
                            this.settle_claims(vec![(a.id.clone(), false)]).await;
                        }
                        if recorded {
                            tail.claims.push((a.id.clone(), h.command.refname.clone()));
                            tail.allowed.push(h.command.clone());
                            continue;
                        }
                        let reason = if claimed {
                            format!("approval {}: gitgate cannot record the decision", a.id)
                        } else {
                            format!("approval {} was used already", a.id)
                        };
                        RefStatus::rejected(&h.command.refname, &reason)
                    }
                    Some(a) if a.status == Status::Denied => {
                        RefStatus::rejected(&h.command.refname, &Resolution::denied_reason(a))
                    }
                    Some(a) if a.status == Status::Expired => RefStatus::rejected(
                        &h.command.refname,
                        &format!("approval {} expired", a.id),
                    ),
                    _ => RefStatus::rejected(&h.command.refname, &h.reason),
                };
                explain(&mut tail.messages, &status);
                tail.own.push(status);
            }
            this.approval.release(&ids);
            // The request order; the client's own relayed commands keep it.
            let order: Vec<String> = tail
                .request
                .commands
                .iter()
                .map(|c| c.refname.clone())
                .collect();
            tail.allowed
                .sort_by_key(|c| order.iter().position(|r| r == &c.refname));
            if tail.request.capabilities.contains("atomic") {
                let before = tail.own.len();
                reject_atomic(&mut tail.allowed, &mut tail.own);
                let added: Vec<RefStatus> = tail.own.iter().skip(before).cloned().collect();
                for status in &added {
                    explain(&mut tail.messages, status);
                }
            }
            let format = tail.format;
            let answer = match this.finish(tail).await {
                Ok(bytes) => Ok(bytes),
                Err(e) => {
                    tracing::warn!(error = %e, "a held push failed after waiting");
                    let report = Report {
                        unpack: Unpack::Ok,
                        refs: order
                            .iter()
                            .map(|r| RefStatus::rejected(r, "gitgate could not relay this push"))
                            .collect(),
                    };
                    format
                        .encode(b"", &report)
                        .map_err(|e| std::io::Error::other(e.to_string()))
                }
            };
            let _ = tx.send(answer).await;
        });
        Box::pin(tokio_stream_from(rx))
    }

    /// Relays the allowed updates (if any), records what the upstream said, and encodes the
    /// answer: the upstream's report merged with the gateway's own rejections.
    pub(super) async fn finish(&self, tail: Tail) -> Result<bytes::Bytes, SessionError> {
        let Tail {
            session,
            request,
            format,
            allowed,
            mut own,
            done,
            claims,
            mut messages,
            indexed,
            quarantine,
            original,
            unreferenced_secret,
            op_id,
            bytes_in,
            ..
        } = tail;
        let git = GitDir::new(quarantine.git_dir());
        let order: Vec<&str> = request
            .commands
            .iter()
            .map(|c| c.refname.as_str())
            .collect();
        let upstream_report = if allowed.is_empty() {
            None
        } else {
            // A secret in a blob no ref reaches must not travel inside the original pack.
            let denied_any = !own.is_empty() || unreferenced_secret;
            let started = std::time::Instant::now();
            let relayed = self
                .relay(
                    &session,
                    &request,
                    allowed,
                    denied_any,
                    indexed.as_deref(),
                    &git,
                    original,
                    bytes_in,
                )
                .await;
            let (report, upstream_messages) = match relayed {
                Ok(r) => r,
                Err(e) => {
                    self.record_result(&session, &op_id, None, Some(e.to_string()))
                        .await;
                    self.settle_claims(claims.into_iter().map(|(id, _)| (id, false)).collect())
                        .await;
                    return Err(e);
                }
            };
            let relay_took = started.elapsed();
            // The upstream now holds what the original pack carried: add it to the mirror, so
            // the next push needs no fetch to see it (a rebuilt subset pack is not indexed).
            let accepted = matches!(report.unpack, Unpack::Ok)
                && report
                    .refs
                    .iter()
                    .any(|r| matches!(r, RefStatus::Ok { .. }));
            if let (false, true, Some(pack)) = (denied_any, accepted, indexed.as_deref()) {
                if let (Some(idx), Some(checksum)) = (pack.idx_path(), pack.checksum()) {
                    session
                        .repo
                        .upstream
                        .write_through(
                            &session.repo.path,
                            pack.pack_path(),
                            idx,
                            &checksum.to_string(),
                        )
                        .await;
                }
            }
            self.record_result(&session, &op_id, Some(&report), None)
                .await;
            tracing::debug!(
                session = %session.id,
                relay_ms = relay_took.as_secs_f64() * 1e3,
                result_ms = (started.elapsed() - relay_took).as_secs_f64() * 1e3,
                "push relayed"
            );
            messages.extend_from_slice(&upstream_messages);
            Some(report)
        };
        let settled = claims
            .into_iter()
            .map(|(id, refname)| {
                let ok = upstream_report.as_ref().is_some_and(|r| {
                    r.refs
                        .iter()
                        .any(|s| s.refname() == refname && matches!(s, RefStatus::Ok { .. }))
                });
                (id, ok)
            })
            .collect();
        self.settle_claims(settled).await;
        own.extend(done);
        let report = Report::merge(&order, upstream_report.as_ref(), &own);
        Ok(format.encode(&messages, &report)?)
    }
}

/// `--atomic`: once one update is rejected, every allowed one is too.
pub(super) fn reject_atomic(allowed: &mut Vec<Command>, own: &mut Vec<RefStatus>) {
    if own.is_empty() || allowed.is_empty() {
        return;
    }
    let first = own
        .first()
        .map(|s| s.refname().to_string())
        .unwrap_or_default();
    for c in allowed.drain(..) {
        own.push(RefStatus::rejected(
            &c.refname,
            &format!("atomic push failed: {first} was rejected"),
        ));
    }
}

/// The answer stream of a held push.
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}
