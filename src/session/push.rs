//! receive-pack (push): read the commands, spool the pack, verify and index it, inspect each
//! ref update against the upstream's history, decide per ref, then relay only what is allowed
//! and answer with a report that merges the gateway's `ng` lines with the upstream's.

use std::sync::Arc;

use futures_util::{stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::io::{ReaderStream, StreamReader};

use super::answer::{explain, AnswerFormat};
use super::approve::Resolution;
use super::fetch::{fail, read_bounded};
use super::hold::{reject_atomic, Held, Tail};
use super::oplog::{self, Operation};
use super::secrets::{self, BlobScan, BlobScanner, ScanResult};
use super::{Gateway, Rejection, Session, SessionError};
use crate::config::{Decision, Op};
use crate::git::{ByteStream, Service};
use crate::inspect::{GitDir, InspectError, Inspector, PackFacts, Quarantine, UpdateFacts};
use crate::pack::{IndexedPack, PackError};
use crate::policy::{RefUpdate, Subject, Verdict};
use crate::proto::pktline::PktReader;
use crate::proto::receive::{self, Command, UpdateRequest};
use crate::proto::report::{parse_response, RefStatus, Report, Unpack};
use crate::proto::Capability;

/// The upstream's answer to a push (report-status and messages) is read whole, up to this.
const MAX_UPSTREAM_REPORT: u64 = 16 << 20;
/// Most commits inspected per ref update.
const MAX_COMMITS_PER_UPDATE: usize = 100_000;

/// The decision on one ref update.
pub(super) struct Decided {
    pub(super) command: Command,
    pub(super) op: Option<Op>,
    pub(super) commits: Vec<crate::policy::CommitFacts>,
    pub(super) paths: Vec<String>,
    pub(super) verdict: Verdict,
}

impl Gateway {
    /// One push. The whole request is read (the pack spooled under `state_dir/spool`) before
    /// anything is relayed or answered: git expects the server to consume the body first, and
    /// the gateway must see every ref update and object before deciding.
    pub async fn receive_pack(
        self: &Arc<Self>,
        session: &Session,
        body: ByteStream,
    ) -> Result<ByteStream, Rejection> {
        debug_assert_eq!(session.service, Service::ReceivePack);
        let mut op = Operation::start(session, "rpc", self.metrics());
        let result = self.receive_pack_inner(session, body, &op).await;
        match result {
            Ok(body) => Ok(op.meter(body)),
            Err(e) => Err(fail(&mut op, &e)),
        }
    }

    async fn receive_pack_inner(
        self: &Arc<Self>,
        session: &Session,
        body: ByteStream,
        op: &Operation,
    ) -> Result<ByteStream, SessionError> {
        let limits = &self.config().limits;
        let mut reader = PktReader::new(StreamReader::new(body));
        let request = receive::read_update_request(&mut reader, &self.proto_limits()).await?;
        if request.commands.is_empty() {
            // A lone flush: git's probe before a large chunked POST (smart-HTTP sends `0000`
            // first to check the connection). It asks nothing of anyone, so it is answered as
            // git's receive-pack answers it, with nothing, without inspecting or recording:
            // the real request follows.
            tracing::debug!(session = %session.id, "empty receive-pack request (probe)");
            return Ok(Box::pin(stream::empty()));
        }
        let mut phases = Phases::start();
        let (rest, buffered) = reader.into_parts();
        let spool = tempfile::Builder::new()
            .prefix("push-")
            .suffix(".pack")
            .tempfile_in(&self.spool_dir)
            .map_err(|e| SessionError::Internal(format!("spooling the pack: {e}")))?;
        // The .idx written next to the spooled pack goes when the push is done.
        let _idx = RemoveOnDrop(spool.path().with_extension("idx"));
        // The pack is verified and indexed while it arrives: its first pass reads the spool
        // as it grows, the rest starts once it is complete.
        let growing = crate::pack::Growing::new();
        let indexing = (request.expects_pack() && request.commands.len() <= limits.max_ref_updates)
            .then(|| self.start_indexing(spool.path(), &growing));
        let spooled = self
            .spool_pack(&spool, &buffered, rest, limits.max_push_bytes, &growing)
            .await
            .map(|()| spool);
        let format = AnswerFormat::from(&request.capabilities);
        let order: Vec<&str> = request
            .commands
            .iter()
            .map(|c| c.refname.as_str())
            .collect();
        // Refusals of the whole request go into report-status, which git shows the user (it
        // does not show the body of a failed POST).
        let refusal = match &spooled {
            Err(SessionError::TooLarge { what, limit }) => Some(format!(
                "{what} exceeds the gateway's limit of {limit} bytes"
            )),
            Ok(_) if request.commands.len() > limits.max_ref_updates => Some(format!(
                "the push has more than {} ref updates",
                limits.max_ref_updates
            )),
            Ok(file) if request.expects_pack() && is_empty(file.path()) => {
                Some("the push carries no pack".to_string())
            }
            _ => None,
        };
        if let Some(reason) = refusal {
            let mut body = super::record::operation(
                session,
                &op.id,
                op.started_at,
                crate::audit::record::Decision::Deny,
                Some(reason.clone()),
            );
            body.refs = request
                .commands
                .iter()
                .map(|c| super::record::ref_record(c, None, Decision::Deny, Some(reason.clone())))
                .collect();
            self.record_refusal(body).await;
            let report = Report {
                unpack: Unpack::Failed(reason.clone()),
                // git's convention when the request as a whole fails: the reason is on the
                // unpack line (`error: remote unpack failed: ...`).
                refs: order
                    .iter()
                    .map(|r| RefStatus::rejected(r, "unpacker error"))
                    .collect(),
            };
            let messages = format!("gitgate: push refused: {reason}\n").into_bytes();
            return Ok(once(format.encode(&messages, &report)?));
        }
        let spool = spooled?;
        phases.mark("spool");
        // What a large push allocated goes back to the system once it is answered.
        let trim = (growing.written() >= TRIM_AFTER_BYTES).then_some(TrimOnDrop);
        // Keeping the pack for the record (hash, link, flush: seconds for a big pack) runs
        // while it is verified and inspected; a refused pack is kept too.
        let mut keeping = indexing
            .is_some()
            .then(|| self.start_keeping(spool.path().to_path_buf()));

        // A bad pack is the client's fault: `unpack <error>`. The facts inspection needs and
        // the secret scan are collected while indexing (one decoding pass).
        let mut pack_facts = PackFacts::default();
        let mut blob_scan = None;
        let indexed = if let Some(indexing) = indexing {
            let indexed = indexing.await.unwrap_or_else(|e| {
                Err(PackError::Internal {
                    detail: e.to_string(),
                })
            });
            match indexed {
                Ok(done) => {
                    pack_facts = done.facts;
                    blob_scan = done.scan;
                    if let Some(at) = done.resolving_since {
                        phases.mark_at("pass1", at);
                    }
                    Some(Arc::new(done.pack))
                }
                Err(e) if e.is_input_error() => {
                    tracing::info!(session = %session.id, error = %e, "pushed pack refused");
                    let reason = format!("gitgate refused the pack: {e}");
                    let report = Report {
                        unpack: Unpack::Failed(reason.clone()),
                        refs: order
                            .iter()
                            .map(|r| RefStatus::rejected(r, "unpacker error"))
                            .collect(),
                    };
                    let mut body = super::record::operation(
                        session,
                        &op.id,
                        op.started_at,
                        crate::audit::record::Decision::Deny,
                        Some(reason.clone()),
                    );
                    body.refs = request
                        .commands
                        .iter()
                        .map(|c| {
                            super::record::ref_record(
                                c,
                                None,
                                Decision::Deny,
                                Some("unpacker error".into()),
                            )
                        })
                        .collect();
                    body.push = Some(push_facts(&request, &[], &ScanResult::default()));
                    body.pack = match keeping.take() {
                        Some(handle) => handle.await.ok().flatten(),
                        None => None,
                    };
                    self.record_refusal(body).await;
                    let mut messages = Vec::new();
                    messages.extend_from_slice(format!("gitgate: {reason}\n").as_bytes());
                    return Ok(once(format.encode(&messages, &report)?));
                }
                Err(e) => return Err(SessionError::Internal(format!("indexing the pack: {e}"))),
            }
        } else {
            None
        };

        phases.mark("index");
        // The mirror must know every ref the client was shown (it sends no object those
        // reach): one refreshed since this session's advertisement, else since now.
        let since = self
            .advertised_at(session)
            .unwrap_or_else(std::time::Instant::now);
        let history = session
            .repo
            .upstream
            .history(&session.repo.path, since)
            .await?;
        phases.mark("history");
        let quarantine = Quarantine::create(&self.state_dir().join("quarantine"), &history)
            .map_err(|e| SessionError::Internal(format!("creating the quarantine: {e}")))?;
        let mut inspector = Inspector::new(&quarantine, Default::default());
        // The original bytes, for the relay, opened before the spool moves into the record's
        // pack store: keeping it (hash, link, flush) runs while the push is inspected.
        let original = match &indexed {
            Some(pack) => {
                link_pack(pack, &quarantine)?;
                Some(
                    spool
                        .reopen()
                        .map_err(|e| SessionError::Internal(format!("reopening the pack: {e}")))?,
                )
            }
            None => None,
        };
        let keeping = keeping.take().filter(|_| indexed.is_some());
        let facts = pack_facts;
        phases.mark("facts");
        inspector.load(indexed.clone(), facts);

        // Inspect every update, then scan the pack once with what inspection learnt.
        let mut inspected = Vec::with_capacity(request.commands.len());
        for command in &request.commands {
            let facts = inspector.inspect(command, MAX_COMMITS_PER_UPDATE).await;
            if let Err(e) = &facts {
                tracing::warn!(session = %session.id, refname = %command.refname, error = %e, "inspection failed");
            }
            inspected.push((command.clone(), facts));
        }
        drop(inspector);
        phases.mark("inspect");
        let scan = self.attribute_findings(blob_scan, &inspected);
        phases.mark("scan");
        let mut messages = Vec::new();
        let decided = self.decide(session, inspected, &scan, &mut messages);
        let atomic = request.capabilities.contains("atomic");

        // Updates that need approval: an approved identical update goes through, a denied
        // one is refused, the others are held (unless an atomic push fails anyway).
        let outright_deny = decided.iter().any(|d| d.verdict.decision == Decision::Deny);
        let resolutions = if atomic && outright_deny {
            decided.iter().map(|_| None).collect()
        } else {
            self.resolve_approvals(session, &op.id, &decided, &scan, quarantine.git_dir())
                .await?
        };

        // Fail closed: anything not allowed is rejected; `--atomic` rejects all on one denial.
        let mut own: Vec<RefStatus> = Vec::new();
        let mut allowed: Vec<Command> = Vec::new();
        let mut held: Vec<Held> = Vec::new();
        let mut claims: Vec<(String, String)> = Vec::new();
        // Updates already in the upstream (an approval the gateway applied meanwhile).
        let mut done: Vec<RefStatus> = Vec::new();
        for (d, resolution) in decided.iter().zip(&resolutions) {
            match (d.verdict.decision, resolution) {
                (Decision::Allow, _) => allowed.push(d.command.clone()),
                (Decision::Deny, _) => {
                    own.push(RefStatus::rejected(&d.command.refname, &d.verdict.reason))
                }
                (Decision::Approve, Some(Resolution::Approved(a))) => {
                    claims.push((a.id.clone(), d.command.refname.clone()));
                    allowed.push(d.command.clone());
                }
                (Decision::Approve, Some(Resolution::Done(a))) => {
                    messages.extend_from_slice(
                        format!(
                            "gitgate: {}: approval {} was applied already\n",
                            d.command.refname, a.id
                        )
                        .as_bytes(),
                    );
                    done.push(RefStatus::ok(&d.command.refname));
                }
                (Decision::Approve, Some(Resolution::Denied(a))) => own.push(RefStatus::rejected(
                    &d.command.refname,
                    &Resolution::denied_reason(a),
                )),
                (Decision::Approve, Some(Resolution::Held { id, rule, .. })) => held.push(Held {
                    command: d.command.clone(),
                    id: id.clone(),
                    rule: rule.clone(),
                    reason: Resolution::pending_reason(&d.verdict.reason, id),
                }),
                (Decision::Approve, None) => own.push(RefStatus::rejected(
                    &d.command.refname,
                    &format!("atomic push failed: {}", d.verdict.reason),
                )),
            }
        }
        // Claims are settled by `finish` or the refusals below; an early error releases them.
        let mut claim_guard = super::approve::ClaimGuard::new(
            self.approvals().clone(),
            claims.iter().map(|(id, _)| id.clone()).collect(),
        );
        let wait = self.config().approval.wait;
        // Refused at once when nobody waits: (ref, approval id), for the review link.
        let mut pending = Vec::new();
        if wait.is_zero() {
            for h in held.drain(..) {
                own.push(RefStatus::rejected(&h.command.refname, &h.reason));
                pending.push((h.command.refname, h.id));
            }
        }
        if atomic {
            reject_atomic(&mut allowed, &mut own);
        }
        for status in &own {
            explain(&mut messages, status);
            if let Some((_, id)) = pending.iter().find(|(r, _)| r == status.refname()) {
                messages.extend_from_slice(self.review_line(id).as_bytes());
            }
        }

        // Record the decisions (and keep the pack) before anything reaches the upstream.
        let mut body = super::record::operation(
            session,
            &op.id,
            op.started_at,
            overall(&decided, allowed.len() + done.len()),
            None,
        );
        body.refs = decided
            .iter()
            .zip(&resolutions)
            .map(|(d, resolution)| {
                let refname = &d.command.refname;
                let final_status = own.iter().find(|s| s.refname() == refname);
                let pending = held.iter().find(|h| &h.command.refname == refname);
                let (decision, reason) = match (final_status, pending, resolution) {
                    (Some(RefStatus::Rejected { reason, .. }), _, _) => {
                        let decision = match d.verdict.decision {
                            Decision::Approve if reason.contains("approval pending") => {
                                Decision::Approve
                            }
                            _ => Decision::Deny,
                        };
                        (decision, Some(reason.clone()))
                    }
                    (_, Some(h), _) => (Decision::Approve, Some(h.reason.clone())),
                    (_, _, Some(Resolution::Done(a))) => (
                        Decision::Allow,
                        Some(format!("approval {}: applied already", a.id)),
                    ),
                    (_, _, Some(Resolution::Approved(a))) => {
                        (Decision::Allow, Some(super::approve::decision_reason(a)))
                    }
                    _ if d.verdict.decision == Decision::Allow => (Decision::Allow, None),
                    _ => (d.verdict.decision, Some(d.verdict.reason.clone())),
                };
                super::record::ref_record(&d.command, d.op, decision, reason)
            })
            .collect();
        body.push = Some(push_facts(&request, &decided, &scan));
        if let Some(keeping) = keeping {
            body.pack = keeping.await.ok().flatten();
            if body.pack.is_none() {
                claim_guard.disarm();
                self.settle_claims(claims.iter().map(|(id, _)| (id.clone(), false)).collect())
                    .await;
                return Err(SessionError::Unrecorded(
                    "the pushed pack could not be kept".into(),
                ));
            }
        }
        phases.mark("decide");
        let recorded = match self.append(crate::audit::RecordKind::Operation, body).await {
            Ok(_) => self.create_approvals(&resolutions).await,
            Err(e) => Err(e),
        };
        phases.mark("record");
        tracing::debug!(session = %session.id, phases = %phases, "push inspected");
        if let Err(e) = recorded {
            claim_guard.disarm();
            self.settle_claims(claims.iter().map(|(id, _)| (id.clone(), false)).collect())
                .await;
            let refs = order
                .iter()
                .map(|r| {
                    RefStatus::rejected(r, "gitgate cannot record this push, so it is refused")
                })
                .collect();
            let report = Report {
                unpack: Unpack::Ok,
                refs,
            };
            tracing::warn!(session = %session.id, error = %e, "push refused: not recorded");
            return Ok(once(format.encode(&messages, &report)?));
        }

        claim_guard.disarm();
        let tail = Tail {
            session: session.clone(),
            format,
            allowed,
            own,
            done,
            claims,
            messages,
            indexed,
            quarantine,
            original,
            unreferenced_secret: scan.unreferenced_secret,
            op_id: op.id.clone(),
            bytes_in: op.bytes_in.clone(),
            _spool: spool,
            _idx,
            request,
        };
        // What inspection found (a long history's commits, paths and blobs: 100+ MiB) is
        // recorded: it need not stay in memory while the upstream takes the push (nor in
        // the allocator's arenas, for a large push).
        drop((decided, resolutions, scan));
        if trim.is_some() {
            drop(tokio::task::spawn_blocking(release_freed_memory));
        }
        if held.is_empty() {
            return Ok(once(self.finish(tail).await?));
        }
        let body = self.hold(tail, held, wait);
        Ok(match trim {
            Some(trim) => Box::pin(body.inspect(move |_| {
                let _ = &trim;
            })),
            None => body,
        })
    }

    /// Starts linking the spooled pack at `path` into the record's pack store (its path stays
    /// valid for the pack readers); the handle yields its reference, `None` when it could not
    /// be kept.
    fn start_keeping(
        &self,
        path: std::path::PathBuf,
    ) -> tokio::task::JoinHandle<Option<crate::audit::PackRef>> {
        let audit = self.audit.clone();
        tokio::task::spawn_blocking(move || match audit.store_pack(&path) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "the pushed pack could not be kept");
                None
            }
        })
    }

    /// Records what the upstream answered to a relayed push.
    pub(super) async fn record_result(
        &self,
        session: &Session,
        op_id: &str,
        report: Option<&Report>,
        error: Option<String>,
    ) {
        let result = crate::audit::record::PushResult {
            id: None,
            op: op_id.to_string(),
            session: session.id.clone(),
            time: None,
            unpack: report.map(|r| match &r.unpack {
                Unpack::Ok => "ok".to_string(),
                Unpack::Failed(e) => e.clone(),
            }),
            refs: report
                .map(|r| {
                    r.refs
                        .iter()
                        .map(|s| crate::audit::record::RefResult {
                            refname: s.refname().to_string(),
                            ok: matches!(s, RefStatus::Ok { .. }),
                            reason: match s {
                                RefStatus::Rejected { reason, .. } => Some(reason.clone()),
                                RefStatus::Ok { .. } => None,
                            },
                        })
                        .collect()
                })
                .unwrap_or_default(),
            error,
        };
        // The updates already happened upstream: a failure here is logged, not undone.
        let _ = self.append(crate::audit::RecordKind::Result, result).await;
    }

    /// The findings of the blobs scanned while indexing, each with the path inspection found
    /// for its blob (nothing when scanning is off or the push brought no pack).
    fn attribute_findings(
        &self,
        scan: Option<BlobScan>,
        inspected: &[(Command, Result<UpdateFacts, InspectError>)],
    ) -> ScanResult {
        let (Some(scanner), Some(scan)) = (self.scanner.as_deref(), scan) else {
            return ScanResult::default();
        };
        let paths = secrets::blob_paths(inspected.iter().filter_map(|(_, f)| f.as_ref().ok()));
        secrets::attribute(scan, scanner, &paths)
    }

    fn decide(
        &self,
        session: &Session,
        inspected: Vec<(Command, Result<UpdateFacts, InspectError>)>,
        scan: &ScanResult,
        messages: &mut Vec<u8>,
    ) -> Vec<Decided> {
        let subject = Subject {
            name: &session.identity.name,
            groups: &session.identity.groups,
        };
        let mut decided = Vec::with_capacity(inspected.len());
        for (command, inspected) in inspected {
            let (op, verdict, commits, paths) = match inspected {
                Ok(update) => {
                    let policy = self.decide_one(&subject, session, &command, &update);
                    let findings = secrets::findings_of(&update, scan);
                    secrets::explain(messages, &command.refname, &findings);
                    let verdict = secrets::combine(policy, &findings, self.config().scan.action);
                    (Some(update.op), verdict, update.commits, update.paths)
                }
                Err(_) => (
                    None,
                    Verdict {
                        decision: Decision::Deny,
                        rule: None,
                        reason: "gitgate could not inspect this update".into(),
                    },
                    Vec::new(),
                    Vec::new(),
                ),
            };
            tracing::info!(
                target: "gitgate::decision",
                session = %session.id,
                identity = %session.identity.name,
                repo = %session.repo.name,
                refname = %command.refname,
                old = %command.old,
                new = %command.new,
                op = op.map_or("unknown", Op::as_str),
                decision = verdict.decision.as_str(),
                rule = verdict.rule.as_deref().unwrap_or("policy.default"),
                "ref update decided"
            );
            decided.push(Decided {
                command,
                op,
                commits,
                paths,
                verdict,
            });
        }
        decided
    }

    fn decide_one(
        &self,
        subject: &Subject<'_>,
        session: &Session,
        command: &Command,
        update: &UpdateFacts,
    ) -> Verdict {
        let blobs = update.blob_facts();
        self.policy.decide_push(
            subject,
            &session.repo.name,
            &RefUpdate {
                refname: &command.refname,
                op: update.op,
                commits: &update.commits,
                paths: &update.paths,
                blobs: &blobs,
            },
        )
    }

    /// Sends the allowed commands upstream with the pack they need, and returns the upstream's
    /// report and messages. When some refs were denied, the pack is rebuilt from the spooled
    /// objects so that nothing only a denied ref brings reaches the upstream.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn relay(
        &self,
        session: &Session,
        request: &UpdateRequest,
        allowed: Vec<Command>,
        denied_any: bool,
        indexed: Option<&IndexedPack>,
        git: &GitDir,
        original: Option<std::fs::File>,
        bytes_in: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<(Report, Vec<u8>), SessionError> {
        let mut capabilities = request.capabilities.clone();
        if !capabilities.contains("report-status") && !capabilities.contains("report-status-v2") {
            // We need the upstream's verdict even if the client does not.
            capabilities.push(Capability::flag("report-status")?);
        }
        let sideband = capabilities.contains("side-band-64k") || capabilities.contains("side-band");
        let relayed = UpdateRequest {
            shallow: request.shallow.clone(),
            commands: allowed,
            capabilities,
            push_options: request.push_options.clone(),
        };
        let mut head = bytes::BytesMut::new();
        relayed.encode(&mut head)?;
        let head = head.freeze();

        // The subset file is unlinked when dropped; the open handle keeps its bytes readable.
        let (pack_file, _subset): (Option<std::fs::File>, Option<tempfile::NamedTempFile>) =
            match (relayed.expects_pack(), indexed) {
                (false, _) | (true, None) => (None, None),
                (true, Some(_)) if !denied_any => (original, None),
                (true, Some(pack)) => {
                    let subset = self.subset_pack(&relayed, pack, git).await?;
                    let file = subset
                        .reopen()
                        .map_err(|e| SessionError::Internal(format!("reopening the pack: {e}")))?;
                    (Some(file), Some(subset))
                }
            };
        let mut body: ByteStream = Box::pin(stream::once(async move { Ok(head) }));
        if let Some(file) = pack_file {
            body = Box::pin(body.chain(pack_stream(file)));
        }
        let body = oplog::count(body, bytes_in);
        let answer = session
            .repo
            .upstream
            .rpc(
                &session.repo.path,
                Service::ReceivePack,
                session.protocol,
                body,
            )
            .await?;
        let raw = read_bounded(answer, MAX_UPSTREAM_REPORT, "the upstream's report")
            .await
            .map_err(|e| match e {
                SessionError::Body(e) => {
                    SessionError::Upstream(crate::upstream::UpstreamError::Protocol {
                        upstream: session.repo.upstream.name().to_string(),
                        detail: e.to_string(),
                    })
                }
                other => other,
            })?;
        match parse_response(&raw, sideband) {
            Ok(response) => Ok((response.report, response.messages)),
            Err(e) => Err(SessionError::Upstream(
                crate::upstream::UpstreamError::Protocol {
                    upstream: session.repo.upstream.name().to_string(),
                    detail: format!("unreadable push report: {e}"),
                },
            )),
        }
    }

    /// Writes a pack holding only the objects the relayed (allowed) updates need.
    pub(super) async fn subset_pack(
        &self,
        relayed: &UpdateRequest,
        pack: &IndexedPack,
        git: &GitDir,
    ) -> Result<tempfile::NamedTempFile, SessionError> {
        let tips: Vec<String> = relayed
            .commands
            .iter()
            .filter(|c| !c.is_delete())
            .map(|c| c.new.to_hex())
            .collect();
        let needed = git
            .objects_for(&tips)
            .await
            .map_err(|e| SessionError::Internal(format!("listing objects: {e}")))?;
        let ids: Vec<crate::pack::ObjectId> = needed
            .iter()
            .filter_map(|hex| crate::pack::ObjectId::from_hex(hex.as_bytes()).ok())
            .filter(|id| pack.contains(id))
            .collect();
        let internal = |e: std::io::Error| SessionError::Internal(format!("writing the pack: {e}"));
        let mut out = tempfile::Builder::new()
            .prefix("relay-")
            .suffix(".pack")
            .tempfile_in(&self.spool_dir)
            .map_err(internal)?;
        let written = {
            let mut writer = std::io::BufWriter::new(out.as_file_mut());
            let outcome = crate::pack::write_subset(pack, ids.into_iter(), &mut writer)
                .map_err(|e| SessionError::Internal(format!("writing the pack: {e}")))?;
            std::io::Write::flush(&mut writer).map_err(internal)?;
            outcome
        };
        tracing::debug!(
            objects = written.objects,
            bytes = written.bytes,
            "rebuilt the pack for the allowed refs"
        );
        Ok(out)
    }

    fn pack_options(&self) -> crate::pack::Options {
        crate::pack::Options {
            max_pack_bytes: self.config().limits.max_push_bytes,
            ..crate::pack::Options::default()
        }
    }

    pub(super) async fn index_pack(
        &self,
        path: &std::path::Path,
    ) -> Result<IndexedPack, PackError> {
        let options = self.pack_options();
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || crate::pack::index(&path, &options))
            .await
            .unwrap_or_else(|e| {
                Err(PackError::Internal {
                    detail: e.to_string(),
                })
            })
    }

    /// Starts verifying and indexing the pack being spooled to `path` (fed through `growing`)
    /// on a blocking thread; while it is decoded, the [`PackFacts`] are collected and, when
    /// scanning is on, the blobs scanned (on the threads that resolve them): the pack is
    /// decoded once.
    fn start_indexing(
        &self,
        path: &std::path::Path,
        growing: &crate::pack::Growing,
    ) -> tokio::task::JoinHandle<Result<Indexed, PackError>> {
        let options = self.pack_options();
        let path = path.to_path_buf();
        let growing = growing.clone();
        let scanner = self.scanner.clone().map(BlobScanner::new);
        tokio::task::spawn_blocking(move || {
            // Visited from every resolving thread; `add` is cheap (a map insert per object).
            let facts = std::sync::Mutex::new(PackFacts::default());
            let resolving_since = std::sync::OnceLock::new();
            let indexed = crate::pack::index_growing_with_deltas(
                &path,
                &growing,
                &options,
                |id, kind, data, delta| {
                    resolving_since.get_or_init(std::time::Instant::now);
                    if let Some(scanner) = &scanner {
                        scanner.object(id, kind, data, delta)?;
                    }
                    let mut facts = facts.lock().map_err(|_| PackError::Internal {
                        detail: "reading the pack's facts: a thread failed".into(),
                    })?;
                    facts.add(id, kind, data).map_err(|e| PackError::Internal {
                        detail: format!("reading the pack's facts: {e}"),
                    })
                },
            )?;
            let facts = facts.into_inner().map_err(|_| PackError::Internal {
                detail: "reading the pack's facts: a thread failed".into(),
            })?;
            let scan = scanner.map(|s| s.finish(&indexed)).transpose()?;
            Ok(Indexed {
                pack: indexed,
                facts,
                scan,
                resolving_since: resolving_since.get().copied(),
            })
        })
    }

    fn proto_limits(&self) -> receive::Limits {
        // The configured limit is checked after parsing, so the refusal can be reported to
        // git; the parser's own bound stops absurd requests.
        let limits = &self.config().limits;
        receive::Limits {
            max_commands: limits
                .max_ref_updates
                .saturating_add(1)
                .max(receive::Limits::default().max_commands),
            ..receive::Limits::default()
        }
    }

    /// Copies the pack (what follows the commands) to the spool file, refusing more than
    /// `limit` bytes, and tells `growing` (the indexing reading it) how far it got: finished,
    /// or failed on any error.
    async fn spool_pack(
        &self,
        spool: &tempfile::NamedTempFile,
        buffered: &[u8],
        rest: impl AsyncRead + Unpin,
        limit: u64,
        growing: &crate::pack::Growing,
    ) -> Result<(), SessionError> {
        let feeding = Feeding(growing);
        let internal =
            |e: std::io::Error| SessionError::Internal(format!("spooling the pack: {e}"));
        let std_file = spool.reopen().map_err(internal)?;
        let mut file = tokio::fs::File::from_std(std_file);
        if buffered.len() as u64 > limit {
            let mut rest = rest.take(limit.saturating_mul(4));
            let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
            return Err(SessionError::TooLarge {
                what: "the pushed pack",
                limit,
            });
        }
        file.write_all(buffered).await.map_err(internal)?;
        file.flush().await.map_err(internal)?;
        growing.advance(buffered.len() as u64);
        let remaining = limit - buffered.len() as u64;
        let mut limited = rest.take(remaining + 1);
        let std_file = file.into_std().await;
        let (copied, std_file) =
            copy_body(&mut limited, std_file, buffered.len() as u64, growing).await?;
        let mut file = tokio::fs::File::from_std(std_file);
        if copied > remaining {
            // Read (and drop) the rest so git gets the answer instead of a broken pipe; a
            // client that keeps sending past four times the limit is cut off.
            let mut rest = limited.into_inner().take(limit.saturating_mul(4));
            let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
            return Err(SessionError::TooLarge {
                what: "the pushed pack",
                limit,
            });
        }
        file.flush().await.map_err(internal)?;
        feeding.finish();
        Ok(())
    }
}

/// What indexing a pushed pack yields.
struct Indexed {
    pack: IndexedPack,
    /// The facts inspection needs.
    facts: PackFacts,
    /// What the scan of its blobs found (scanning on).
    scan: Option<BlobScan>,
    /// When the first object was resolved (the first pass was done), for the debug timings.
    resolving_since: Option<std::time::Instant>,
}

/// Ends the feeding of a [`crate::pack::Growing`]: finished when told, failed when dropped
/// before (an error or a cancelled request), so the reader never waits for bytes that will
/// not come.
struct Feeding<'a>(&'a crate::pack::Growing);

impl Feeding<'_> {
    fn finish(self) {
        self.0.finish();
        std::mem::forget(self);
    }
}

impl Drop for Feeding<'_> {
    fn drop(&mut self) {
        self.0.fail();
    }
}

/// The operation's decision: allow when every update is relayed, pending when one waits for
/// approval, deny otherwise.
fn overall(decided: &[Decided], allowed: usize) -> crate::audit::record::Decision {
    use crate::audit::record::Decision as D;
    if allowed == decided.len() {
        D::Allow
    } else if decided
        .iter()
        .any(|d| d.verdict.decision == Decision::Approve)
    {
        D::Pending
    } else {
        D::Deny
    }
}

/// What the push carried, for the record.
fn push_facts(
    request: &UpdateRequest,
    decided: &[Decided],
    scan: &ScanResult,
) -> crate::audit::record::PushFacts {
    use crate::audit::record::{CommitRecord, Finding, PushFacts};
    let mut commits = Vec::new();
    let mut paths = std::collections::BTreeSet::new();
    let mut seen = std::collections::HashSet::new();
    for d in decided {
        for c in &d.commits {
            if seen.insert(c.id.clone()) {
                commits.push(CommitRecord {
                    id: c.id.clone(),
                    author: c.author.clone(),
                    committer: c.committer.clone(),
                    subject: c.message.lines().next().unwrap_or("").to_string(),
                });
            }
        }
        paths.extend(d.paths.iter().cloned());
    }
    let mut findings: Vec<Finding> = scan
        .findings
        .values()
        .flatten()
        .map(|f| Finding {
            detector: f.detector.to_string(),
            path: f.path.clone(),
            line: Some(u64::from(f.line)),
            fingerprint: f.fingerprint.clone(),
            commit: None,
        })
        .collect();
    findings.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    let mut not_scanned: Vec<crate::audit::record::NotScanned> = scan
        .skipped
        .iter()
        .map(|(blob, reason)| crate::audit::record::NotScanned {
            blob: blob.clone(),
            reason: reason.to_string(),
        })
        .collect();
    not_scanned.sort_by(|a, b| a.blob.cmp(&b.blob));
    PushFacts {
        not_scanned,
        capabilities: request.capabilities.iter().map(|c| c.to_string()).collect(),
        push_options: request.push_options.clone(),
        commits,
        paths: paths.into_iter().collect(),
        findings,
    }
}

fn is_empty(path: &std::path::Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true)
}

pub(super) struct RemoveOnDrop(pub(super) std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn once(bytes: bytes::Bytes) -> ByteStream {
    Box::pin(stream::once(async move { Ok(bytes) }))
}

/// Hard-links the indexed pack into the quarantine as `pack-<checksum>.{pack,idx}`.
pub(super) fn link_pack(pack: &IndexedPack, quarantine: &Quarantine) -> Result<(), SessionError> {
    let (Some(idx), Some(checksum)) = (pack.idx_path(), pack.checksum()) else {
        return Ok(());
    };
    let base = quarantine.pack_dir().join(format!("pack-{checksum}"));
    let internal =
        |e: std::io::Error| SessionError::Internal(format!("quarantining the pack: {e}"));
    link_or_copy(pack.pack_path(), &base.with_extension("pack")).map_err(internal)?;
    link_or_copy(idx, &base.with_extension("idx")).map_err(internal)?;
    Ok(())
}

fn link_or_copy(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ()))
}

/// Copies the request body to the spool after the `start` bytes already there: read errors
/// are the client's, write errors ours. Each batch is in the file before `growing` is told.
/// Returns the bytes copied and the file.
///
/// The body is read in batches of up to [`SPOOL_BATCH`] bytes, each written on the blocking pool
/// while the next one is read: one trip to the pool per batch, not per frame of the body (a
/// 100 MiB push arrives in thousands of frames of a few KiB).
async fn copy_body(
    reader: &mut (impl AsyncRead + Unpin),
    file: std::fs::File,
    start: u64,
    growing: &crate::pack::Growing,
) -> Result<(u64, std::fs::File), SessionError> {
    type Written = (std::fs::File, Vec<u8>, std::io::Result<()>);
    let internal = |e: std::io::Error| SessionError::Internal(format!("spooling the pack: {e}"));
    let mut file = Some(file);
    let mut pending: Option<tokio::task::JoinHandle<Written>> = None;
    let mut buf = vec![0u8; SPOOL_BATCH];
    let mut spare = Vec::new();
    let mut total = 0u64;
    loop {
        buf.resize(SPOOL_BATCH, 0);
        let mut filled = 0;
        while filled < buf.len() {
            let room = buf.get_mut(filled..).unwrap_or_default();
            let n = reader.read(room).await.map_err(SessionError::Body)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        if let Some(write) = pending.take() {
            let (done, old, result) = write
                .await
                .map_err(|e| SessionError::Internal(format!("spooling the pack: {e}")))?;
            result.map_err(internal)?;
            total += old.len() as u64;
            growing.advance(start + total);
            file = Some(done);
            spare = old;
        }
        let Some(mut out) = file.take() else {
            return Err(SessionError::Internal("spooling the pack: no file".into()));
        };
        if filled == 0 {
            return Ok((total, out));
        }
        let batch = std::mem::replace(&mut buf, std::mem::take(&mut spare));
        pending = Some(tokio::task::spawn_blocking(move || {
            let result = std::io::Write::write_all(&mut out, &batch);
            (out, batch, result)
        }));
    }
}

/// Most bytes [`copy_body`] reads before writing them to the spool.
const SPOOL_BATCH: usize = 256 * 1024;

/// Milliseconds spent in each step of a push, for the debug log (`GITGATE_LOG=debug`).
struct Phases {
    last: std::time::Instant,
    steps: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    fn start() -> Phases {
        Phases {
            last: std::time::Instant::now(),
            steps: Vec::new(),
        }
    }

    fn mark(&mut self, step: &'static str) {
        self.mark_at(step, std::time::Instant::now());
    }

    /// Marks the end of `step` at `at` (a moment between the last mark and now).
    fn mark_at(&mut self, step: &'static str, at: std::time::Instant) {
        let at = at.max(self.last);
        self.steps.push((step, at - self.last));
        self.last = at;
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (step, took)) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{step}={:.1}ms", took.as_secs_f64() * 1e3)?;
        }
        Ok(())
    }
}

/// Pushes of at least this many bytes give what they freed back to the system when done.
const TRIM_AFTER_BYTES: u64 = 16 << 20;

/// Dropped with a large push's answer (or with the push, on an early refusal): asks glibc to
/// return the memory freed since to the system ([`release_freed_memory`]).
struct TrimOnDrop;

impl Drop for TrimOnDrop {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn_blocking(release_freed_memory));
        }
    }
}

/// glibc keeps memory freed by a thread in that thread's arena, and a long history's push
/// frees a lot (its facts, trees and tables): without this the gateway's resident memory
/// stayed at the high mark of the largest push, and fragmentation raised it push after push
/// (five pushes of curl's history: 214 MiB after the first, 326 MiB after the fifth).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_freed_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}

/// Reads a spooled pack for the relay in large pieces. `ReaderStream`'s default (4 KiB) would make
/// a 100 MiB pack 25,000 trips to the blocking pool and as many HTTP chunks for the upstream's web
/// server to parse.
pub(super) fn pack_stream(
    file: std::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    const RELAY_CHUNK: usize = 256 * 1024;
    ReaderStream::with_capacity(tokio::fs::File::from_std(file), RELAY_CHUNK)
}
