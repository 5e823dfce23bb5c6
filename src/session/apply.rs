//! The gateway's background work on approvals: expire overdue ones, record decisions made
//! anywhere (CLI, admin API) in the chain, announce them, and apply approved updates the client
//! gave up waiting for (`apply_on_approve`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::approve::{current_ref, record_decision};
use super::{Gateway, SessionError};
use crate::approval::{Approval, ApprovalError, Event, Outcome};
use crate::audit::record::RefResult;
use crate::audit::RecordKind;
use crate::git::{Protocol, Service};
use crate::proto::receive::{Command, UpdateRequest};
use crate::proto::report::{parse_response, RefStatus, Unpack};
use crate::proto::{Capabilities, Capability};

/// How often the gateway looks for decisions made elsewhere, expiries and updates to apply.
const WORKER_TICK: Duration = Duration::from_millis(500);

/// The chained record of an approved update the gateway applied (kind `result`).
#[derive(Serialize)]
struct ApplyRecord<'a> {
    op: &'a str,
    session: &'a str,
    approval: &'a str,
    applied_by: &'static str,
    outcome: Outcome,
    unpack: Option<String>,
    refs: Vec<RefResult>,
    error: Option<String>,
}

impl Gateway {
    /// The background work of a serving gateway, until `shutdown`: expire overdue
    /// approvals, record decisions made anywhere in the chain, announce them, and apply
    /// approved updates nobody relayed (with `apply_on_approve`).
    pub async fn run_approvals(self: Arc<Self>, shutdown: CancellationToken) {
        // Claims left by a previous run (a crash mid-relay) belong to nobody now: release
        // them; applying checks the upstream first, so nothing is relayed twice.
        match self.approval.store.run(|s| s.release_claims()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(count = n, "approvals: released claims a previous run left"),
            Err(e) => tracing::error!(error = %e, "approvals: cannot release old claims"),
        }
        loop {
            if let Err(e) = self.approvals_tick().await {
                tracing::warn!(error = %e, "approvals: background work failed; retrying");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.approval.wake.notified() => {}
                () = tokio::time::sleep(WORKER_TICK) => {}
            }
        }
    }

    async fn approvals_tick(&self) -> Result<(), ApprovalError> {
        let store = &self.approval.store;
        let expired = store.run(|s| s.expire_due(SystemTime::now())).await?;
        for a in &expired {
            tracing::info!(approval = %a.id, "approval expired");
        }
        for a in store.run(|s| s.unrecorded()).await? {
            let audit = self.audit.clone();
            let record = a.clone();
            let recorded = tokio::task::spawn_blocking(move || record_decision(&audit, &record))
                .await
                .map_err(|e| ApprovalError::Internal(e.to_string()))?;
            match recorded {
                Ok(()) => {
                    let id = a.id.clone();
                    store.run(move |s| s.mark_recorded(&id)).await?;
                    tracing::info!(approval = %a.id, status = %a.status, by = a.by.as_deref().unwrap_or("-"), "approval decided");
                }
                Err(e) => {
                    // Not applied until recorded: the chain must hold the decision first.
                    tracing::error!(approval = %a.id, error = %e, "cannot record a decision");
                    return Ok(());
                }
            }
        }
        for a in store.run(|s| s.unnotified()).await? {
            self.approval.notifier.notify(Event::Decided, &a);
            let id = a.id.clone();
            store.run(move |s| s.mark_notified(&id)).await?;
        }
        if !self.config.approval.apply_on_approve {
            return Ok(());
        }
        let recorded: HashSet<String> = store
            .run(|s| Ok(s.unrecorded()?.into_iter().map(|a| a.id).collect()))
            .await?;
        for a in store.run(|s| s.unapplied()).await? {
            if self.approval.is_held(&a.id) || recorded.contains(&a.id) {
                continue;
            }
            let id = a.id.clone();
            if !store.run(move |s| s.claim(&id, Outcome::Applying)).await? {
                continue;
            }
            let (outcome, detail) = self.apply(&a).await;
            tracing::info!(approval = %a.id, outcome = outcome.as_str(), detail = detail.as_deref().unwrap_or(""), "approved update applied by the gateway");
            let id = a.id.clone();
            store
                .run(move |s| s.set_outcome(&id, Some(outcome), detail.as_deref()))
                .await?;
        }
        Ok(())
    }

    /// Relays an approved update the client gave up waiting for: checks the upstream's ref
    /// is still at `old` (else stale: nothing happens), then sends the command with the pack
    /// the push carried (reduced to this ref's objects when the push updated several refs).
    /// The outcome is recorded.
    async fn apply(&self, a: &Approval) -> (Outcome, Option<String>) {
        let (outcome, unpack, refs, error) = match self.apply_inner(a).await {
            Ok(Applied::Already) => (
                Outcome::Applied,
                None,
                Vec::new(),
                Some(format!("{} is at {} already", a.refname, a.new)),
            ),
            Ok(Applied::Stale(current)) => (
                Outcome::Stale,
                None,
                Vec::new(),
                Some(format!(
                    "stale: {} is at {current}, not {}; nothing applied",
                    a.refname, a.old
                )),
            ),
            Ok(Applied::Relayed { unpack, refs }) => {
                let ok = refs.iter().any(|r| r.refname == a.refname && r.ok);
                let error = (!ok).then(|| {
                    refs.iter()
                        .find_map(|r| r.reason.clone())
                        .unwrap_or_else(|| format!("the upstream did not take {}", a.refname))
                });
                let outcome = if ok {
                    Outcome::Applied
                } else {
                    Outcome::Failed
                };
                (outcome, Some(unpack), refs, error)
            }
            Err(e) => (Outcome::Failed, None, Vec::new(), Some(e.to_string())),
        };
        let body = ApplyRecord {
            op: &a.op,
            session: &a.session,
            approval: &a.id,
            applied_by: "gateway",
            outcome,
            unpack,
            refs,
            error: error.clone(),
        };
        if let Ok(body) = serde_json::to_value(&body) {
            if let Err(e) = self.append(RecordKind::Result, body).await {
                tracing::error!(approval = %a.id, error = %e, "cannot record an applied approval");
            }
        }
        (outcome, error)
    }

    async fn apply_inner(&self, a: &Approval) -> Result<Applied, SessionError> {
        let details = self
            .approval
            .store
            .run({
                let id = a.id.clone();
                move |s| s.details(&id)
            })
            .await
            .map_err(|e| SessionError::Internal(e.to_string()))?;
        let path = details
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| SessionError::Internal("the approval names no path".into()))?;
        let upstream_name = a.repo.split('/').next().unwrap_or_default();
        let repo = super::route::route(&self.upstreams, &format!("{upstream_name}/{path}"))?;
        let history = repo
            .upstream
            .history(&repo.path, std::time::Instant::now())
            .await?;
        let current = current_ref(&history, &a.refname).await?;
        let zero = "0".repeat(a.old.len());
        let expected = if a.old == zero {
            None
        } else {
            Some(a.old.clone())
        };
        let target = if a.new == zero {
            None
        } else {
            Some(a.new.clone())
        };
        if current != expected {
            // Already where the update leads (a relay whose outcome a crash lost): done.
            if current == target {
                return Ok(Applied::Already);
            }
            return Ok(Applied::Stale(current.unwrap_or_else(|| "nothing".into())));
        }
        let command = Command {
            old: crate::proto::oid::ObjectId::from_hex(a.old.as_bytes())
                .map_err(|e| SessionError::Internal(format!("old id: {e}")))?,
            new: crate::proto::oid::ObjectId::from_hex(a.new.as_bytes())
                .map_err(|e| SessionError::Internal(format!("new id: {e}")))?,
            refname: a.refname.clone(),
        };
        let mut capabilities = Capabilities::default();
        capabilities.push(Capability::flag("report-status")?);
        if command.is_delete() {
            capabilities.push(Capability::flag("delete-refs")?);
        }
        let request = UpdateRequest {
            shallow: Vec::new(),
            commands: vec![command],
            capabilities,
            push_options: Vec::new(),
        };
        let single = details.get("refs_in_push").and_then(Value::as_u64) == Some(1);
        let pack = if request.expects_pack() {
            Some(self.pack_for(a, &request, &history, single).await?)
        } else {
            None
        };
        let mut head = bytes::BytesMut::new();
        request.encode(&mut head)?;
        let head = head.freeze();
        let mut body: crate::git::ByteStream =
            Box::pin(futures_util::stream::once(async move { Ok(head) }));
        if let Some(file) = pack {
            use futures_util::StreamExt;
            body = Box::pin(body.chain(super::push::pack_stream(file)));
        }
        let answer = repo
            .upstream
            .rpc(&repo.path, Service::ReceivePack, Protocol::V0, body)
            .await?;
        let raw = super::fetch::read_bounded(answer, 16 << 20, "the upstream's report").await?;
        let response = parse_response(&raw, false).map_err(|e| {
            SessionError::Upstream(crate::upstream::UpstreamError::Protocol {
                upstream: repo.upstream.name().to_string(),
                detail: format!("unreadable push report: {e}"),
            })
        })?;
        let unpack = match &response.report.unpack {
            Unpack::Ok => "ok".to_string(),
            Unpack::Failed(e) => e.clone(),
        };
        let refs = response
            .report
            .refs
            .iter()
            .map(|s| RefResult {
                refname: s.refname().to_string(),
                ok: matches!(s, RefStatus::Ok { .. }),
                reason: match s {
                    RefStatus::Rejected { reason, .. } => Some(reason.clone()),
                    _ => None,
                },
            })
            .collect();
        Ok(Applied::Relayed { unpack, refs })
    }

    /// The pack to relay for approval `a`: the push's stored pack, or (when the push
    /// updated other refs too) a pack of only the objects this ref needs.
    async fn pack_for(
        &self,
        a: &Approval,
        request: &UpdateRequest,
        history: &std::path::Path,
        single: bool,
    ) -> Result<std::fs::File, SessionError> {
        let internal = |e: std::io::Error| SessionError::Internal(format!("the stored pack: {e}"));
        let mut spooled = tempfile::Builder::new()
            .prefix("apply-")
            .suffix(".pack")
            .tempfile_in(&self.spool_dir)
            .map_err(internal)?;
        {
            let audit = self.audit.clone();
            let op = a.op.clone();
            let mut file = spooled.reopen().map_err(internal)?;
            tokio::task::spawn_blocking(move || audit.export_pack(&op, &mut file).map(|_| ()))
                .await
                .map_err(|e| SessionError::Internal(e.to_string()))?
                .map_err(|e| SessionError::Internal(format!("the stored pack: {e}")))?;
        }
        if single {
            return spooled.reopen().map_err(internal);
        }
        let _idx = super::push::RemoveOnDrop(spooled.path().with_extension("idx"));
        let indexed = self
            .index_pack(spooled.path())
            .await
            .map_err(|e| SessionError::Internal(format!("indexing the stored pack: {e}")))?;
        let quarantine =
            crate::inspect::Quarantine::create(&self.state_dir().join("quarantine"), history)
                .map_err(|e| SessionError::Internal(format!("creating the quarantine: {e}")))?;
        super::push::link_pack(&indexed, &quarantine)?;
        let git = crate::inspect::GitDir::new(quarantine.git_dir());
        let subset = self.subset_pack(request, &indexed, &git).await?;
        let file = subset.reopen().map_err(internal)?;
        spooled.as_file_mut().set_len(0).ok();
        Ok(file)
    }
}

enum Applied {
    Already,
    Stale(String),
    Relayed {
        unpack: String,
        refs: Vec<RefResult>,
    },
}
