//! The record stage: every operation, allowed or not, is appended to the audit store before the
//! client gets its answer; when it cannot be appended the operation is refused (fail closed).

use std::time::SystemTime;

use super::{Gateway, Session, SessionError};
use crate::audit::record::{self, Decision, FetchFacts, Operation, RefRecord, Service, Transport};
use crate::audit::{RecordKind, RecordRef};
use crate::config::Op;
use crate::proto::UploadRequest;

/// The parts of an operation record that do not depend on what the operation did.
pub(crate) fn operation(
    session: &Session,
    op_id: &str,
    started: SystemTime,
    decision: Decision,
    reason: Option<String>,
) -> Operation {
    Operation {
        id: op_id.to_string(),
        session: session.id.clone(),
        time: record::format_time(started),
        duration_ms: started.elapsed().map_or(0, |d| d.as_millis() as u64),
        identity: session.identity.name.clone(),
        auth: session.identity.method.as_str().to_string(),
        client: session.peer.map(|p| p.to_string()),
        transport: transport(session.transport),
        repo: session.repo.name.clone(),
        service: service(session.service),
        protocol: session.protocol.number(),
        decision,
        reason,
        refs: Vec::new(),
        fetch: None,
        push: None,
        pack: None,
    }
}

pub(crate) fn transport(t: super::Transport) -> Transport {
    match t {
        super::Transport::Http => Transport::Http,
        super::Transport::Ssh => Transport::Ssh,
    }
}

pub(crate) fn service(s: crate::git::Service) -> Service {
    match s {
        crate::git::Service::UploadPack => Service::UploadPack,
        crate::git::Service::ReceivePack => Service::ReceivePack,
    }
}

/// The record's decision for a policy decision (`approve` is held: `pending`).
pub(crate) fn decision(d: crate::config::Decision) -> Decision {
    match d {
        crate::config::Decision::Allow => Decision::Allow,
        crate::config::Decision::Deny => Decision::Deny,
        crate::config::Decision::Approve => Decision::Pending,
    }
}

pub(crate) fn ref_op(op: Op) -> Option<record::RefOp> {
    match op {
        Op::Create => Some(record::RefOp::Create),
        Op::Update => Some(record::RefOp::Update),
        Op::Force => Some(record::RefOp::Force),
        Op::Delete => Some(record::RefOp::Delete),
        Op::Fetch => None,
    }
}

/// What a fetch asked for.
pub(crate) fn fetch_facts(request: &UploadRequest) -> FetchFacts {
    FetchFacts {
        command: request.command.as_ref().map(|c| c.name().to_string()),
        wants: request.wants.iter().map(|w| w.to_hex()).collect(),
        haves: request.haves_count as u64,
        shallow: request.shallow.iter().map(|s| s.to_hex()).collect(),
        deepen: request.deepen.map(u64::from),
        deepen_since: request.deepen_since.map(|t| t.to_string()),
        deepen_not: request.deepen_not.clone(),
        filter: request.filter.clone(),
        refs_advertised_sha256: None,
        pack_sent: None,
    }
}

/// A ref update as recorded.
pub(crate) fn ref_record(
    command: &crate::proto::Command,
    op: Option<Op>,
    decision_: crate::config::Decision,
    reason: Option<String>,
) -> RefRecord {
    RefRecord {
        refname: command.refname.clone(),
        old: command.old.to_hex(),
        new: command.new.to_hex(),
        op: op.and_then(ref_op),
        decision: decision(decision_),
        reason,
    }
}

impl Gateway {
    /// Appends a record durably (blocking work off the async threads). An error means the
    /// operation must be refused.
    pub(crate) async fn append<T>(
        &self,
        kind: RecordKind,
        body: T,
    ) -> Result<RecordRef, SessionError>
    where
        T: serde::Serialize + Send + 'static,
    {
        if cfg!(feature = "bench-no-record") {
            // Only for measuring what recording costs (benches/record_bench.sh); never in a
            // release anyone runs: the feature is off by default and documented as such.
            drop(body);
            return Ok(RecordRef {
                seq: 0,
                id: String::new(),
                hash: String::new(),
            });
        }
        let audit = self.audit.clone();
        let appended = tokio::task::spawn_blocking(move || audit.append(kind, &body))
            .await
            .map_err(|e| SessionError::Unrecorded(e.to_string()))?;
        match appended {
            Ok(r) => {
                tracing::debug!(seq = r.seq, hash = %r.hash, "recorded");
                Ok(r)
            }
            Err(e) => {
                tracing::error!(error = %e, "the audit record could not be written: refusing the operation");
                Err(SessionError::Unrecorded(e.to_string()))
            }
        }
    }

    /// Queues a record in the chain now, without waiting for it to be durable: see
    /// [`crate::audit::Audit::enqueue`]. The caller decides with [`Pending`] whether its
    /// answer waits.
    pub(crate) fn enqueue<T>(&self, kind: RecordKind, body: &T) -> Result<Pending, SessionError>
    where
        T: serde::Serialize,
    {
        if cfg!(feature = "bench-no-record") {
            return Ok(Pending(None));
        }
        match self.audit.enqueue(kind, body) {
            Ok(q) => Ok(Pending(Some(q))),
            Err(e) => {
                tracing::error!(error = %e, "the audit record could not be written: refusing the operation");
                Err(SessionError::Unrecorded(e.to_string()))
            }
        }
    }

    /// Records a refused operation. The refusal stands whether or not this works.
    pub(crate) async fn record_refusal(&self, body: Operation) {
        let _ = self.append(RecordKind::Operation, body).await;
    }
}

impl Gateway {
    /// Retention while serving (`[audit] keep_packs_days`): prunes stored packs at start and
    /// then every [`RETENTION_TICK`] until `shutdown` (the serving gateway holds the record's
    /// writer lock, so `gitgate audit prune` cannot run beside it). Returns at once when packs
    /// are kept forever.
    pub async fn run_retention(
        self: std::sync::Arc<Self>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        if self.config().audit.keep_packs_days.is_none() {
            return;
        }
        loop {
            let audit = self.audit.clone();
            let pruned = tokio::task::spawn_blocking(move || {
                audit.prune_packs(std::time::SystemTime::now())
            })
            .await;
            match pruned {
                Ok(Ok(outcome)) if !outcome.packs.is_empty() => {
                    tracing::info!(
                        packs = outcome.packs.len(),
                        "retention: stored packs pruned"
                    );
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "retention: pruning failed"),
                Err(e) => tracing::warn!(error = %e, "retention: pruning task failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RETENTION_TICK) => {}
            }
        }
    }
}

/// How often the serving gateway prunes stored packs (when `keep_packs_days` is set).
pub const RETENTION_TICK: std::time::Duration = std::time::Duration::from_secs(3600);

/// A record queued by [`Gateway::enqueue`].
pub(crate) struct Pending(Option<crate::audit::Queued>);

impl Pending {
    /// Waits until the record is durable; an error means the operation must be refused.
    pub(crate) async fn wait(self) -> Result<(), SessionError> {
        let Some(queued) = self.0 else {
            return Ok(());
        };
        let written = tokio::task::spawn_blocking(move || queued.wait())
            .await
            .map_err(|e| SessionError::Unrecorded(e.to_string()))?;
        written.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "the audit record could not be written: refusing the operation");
            SessionError::Unrecorded(e.to_string())
        })
    }

    /// Lets the record be written in the background (errors are logged): for answers that
    /// reveal nothing, followed by requests whose own records wait (and are chained after).
    pub(crate) fn detach(self) {
        if self.0.is_some() {
            tokio::spawn(async move {
                let _ = self.wait().await;
            });
        }
    }
}
