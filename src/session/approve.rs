//! The approve stage of the pipeline: ref updates whose decision is `approve` are matched
//! against the approvals store (an approved identical update goes through, a denied one is
//! refused with the approver's name, a pending one is held again), new approvals are created
//! and announced, and decisions made anywhere (CLI, admin API) are recorded in the chain and,
//! with `apply_on_approve`, applied to the upstream by the gateway itself.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{json, Value};

use super::push::Decided;
use super::{Gateway, Session, SessionError};
use crate::approval::{
    Approval, ApprovalError, Approvals, Event, NewApproval, Outcome, Status, UpdateKey, Verdict,
};
use crate::audit::{AuditError, RecordKind};
use crate::config::Decision;
use crate::identity::Identity;
use crate::secret::Secret;

/// How often a held push sends a keep-alive (more often if the SSH idle timeout is shorter).
pub(super) const KEEPALIVE: Duration = Duration::from_secs(5);
/// How long a push waits for an approved identical update that is being relayed right now.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(120);
/// Most diff lines kept per approval.
const MAX_NUMSTAT: usize = 200;

/// What the store holds for one update.
enum Found {
    /// An approved update, now claimed by this push.
    Claimed(Approval),
    /// An approved update that is in the upstream already.
    Done(Approval),
    /// A denied update.
    Denied(Approval),
    /// A pending approval.
    Pending(Approval),
    /// Nothing usable: ask anew.
    Nothing,
}

/// What the approvals store says about one ref update that needs approval.
#[derive(Debug, Clone)]
pub(super) enum Resolution {
    /// An approved identical update, claimed for this push.
    Approved(Approval),
    /// An approved identical update that is in the upstream already (the gateway applied it
    /// while this push arrived): reported done, not relayed again.
    Done(Approval),
    /// A denied identical update.
    Denied(Approval),
    /// Held: an existing pending approval (`None` in `new`) or a new one to create.
    Held {
        /// Its id.
        id: String,
        /// The rule that asked.
        rule: String,
        /// The approval to create once the operation is recorded.
        new: Option<Box<NewApproval>>,
    },
}

impl Resolution {
    /// The reason a held update gives when it is not decided in time.
    pub(super) fn pending_reason(policy_reason: &str, id: &str) -> String {
        format!("{policy_reason}; approval pending {id}")
    }

    /// The reason a denied approval gives.
    pub(super) fn denied_reason(a: &Approval) -> String {
        decision_reason(a)
    }
}

/// The approval-related state of a gateway.
pub(super) struct ApprovalState {
    pub(super) store: Approvals,
    pub(super) notifier: crate::approval::Notifier,
    /// Approvals pushes in this process are holding (how many pushes each): the worker
    /// leaves them to those pushes.
    pub(super) held: std::sync::Mutex<HashMap<String, usize>>,
    /// Wakes the worker (a decision through the admin API).
    pub(super) wake: tokio::sync::Notify,
}

impl ApprovalState {
    pub(super) fn new(store: Approvals, config: &crate::config::Config) -> ApprovalState {
        ApprovalState {
            store,
            notifier: crate::approval::Notifier::new(
                config.approval.webhook_url.clone(),
                config.admin.public_url.clone(),
            ),
            held: std::sync::Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub(super) fn hold(&self, ids: &[String]) {
        if let Ok(mut held) = self.held.lock() {
            for id in ids {
                *held.entry(id.clone()).or_default() += 1;
            }
        }
    }

    pub(super) fn release(&self, ids: &[String]) {
        if let Ok(mut held) = self.held.lock() {
            for id in ids {
                if let Some(n) = held.get_mut(id) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        held.remove(id);
                    }
                }
            }
        }
        self.wake.notify_one();
    }

    pub(super) fn is_held(&self, id: &str) -> bool {
        self.held.lock().map(|h| h.contains_key(id)).unwrap_or(true)
    }
}

/// Releases a push's claims on approved updates if the push ends before settling them (an
/// error on the way): the approval then still covers a retry, or the gateway applies it.
pub(super) struct ClaimGuard {
    store: Approvals,
    ids: Vec<String>,
}

impl ClaimGuard {
    pub(super) fn new(store: Approvals, ids: Vec<String>) -> ClaimGuard {
        ClaimGuard { store, ids }
    }

    /// The claims are settled elsewhere from now on.
    pub(super) fn disarm(&mut self) {
        self.ids.clear();
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.ids);
        let store = self.store.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let released = store
                    .run(move |s| {
                        for id in &ids {
                            s.release_claim(id)?;
                        }
                        Ok(())
                    })
                    .await;
                if let Err(e) = released {
                    tracing::error!(error = %e, "approvals: cannot release a claim");
                }
            });
        }
    }
}

/// Who decides through the admin API.
#[derive(Debug, Clone)]
pub struct Approver {
    /// The name recorded as `by`.
    pub name: String,
}

/// The chained record of a new approval (kind `approval`).
#[derive(Serialize)]
struct ApprovalRecord<'a> {
    approval: &'a str,
    op: &'a str,
    session: &'a str,
    identity: &'a str,
    repo: &'a str,
    #[serde(rename = "ref")]
    refname: &'a str,
    old: &'a str,
    new: &'a str,
    rule: &'a str,
    reason: &'a str,
    expires: &'a str,
    decision: &'static str,
}

/// The chained record of a decision (kind `decision`). Shaped like an operation record
/// (identity, transport, repo, service, decision, refs, pack of the push that asked), so that
/// `audit log` shows decisions among the operations they decide, plus the approval's fields.
#[derive(Serialize)]
struct DecisionRecord<'a> {
    id: String,
    approval: &'a str,
    op: &'a str,
    session: &'a str,
    identity: &'a str,
    transport: Value,
    repo: &'a str,
    service: &'static str,
    /// `allow` when approved, `deny` when denied or expired.
    decision: &'static str,
    reason: String,
    refs: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pack: Option<Value>,
    #[serde(rename = "ref")]
    refname: &'a str,
    old: &'a str,
    new: &'a str,
    rule: &'a str,
    status: Status,
    by: Option<&'a str>,
    comment: Option<&'a str>,
    decided_at: Option<&'a str>,
}

/// Why a decided approval lets its update through or not, in words (`approval ap-1 approved
/// by alice: ok`).
pub fn decision_reason(a: &Approval) -> String {
    let mut reason = match a.status {
        Status::Expired => format!("approval {} expired undecided", a.id),
        status => format!(
            "approval {} {status} by {}",
            a.id,
            a.by.as_deref().unwrap_or("?")
        ),
    };
    if let Some(c) = a.comment.as_deref().filter(|c| !c.is_empty()) {
        reason.push_str(": ");
        reason.push_str(c);
    }
    reason
}

/// The id of the decision record of approval `id`: one decision, one record, whoever
/// appends it (gateway or CLI), however often it is tried.
pub fn decision_record_id(id: &str) -> String {
    format!("decision-{id}")
}

/// Appends the decision on `a` to the chain; an already recorded decision is success.
pub fn record_decision(audit: &crate::audit::Audit, a: &Approval) -> Result<(), AuditError> {
    // The push that asked: its transport, the ref's op and its pack.
    let asked = audit
        .record(&a.op)?
        .map(|r| r.value())
        .unwrap_or(Value::Null);
    let op = asked
        .get("refs")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r["ref"] == a.refname.as_str()))
        .map(|r| r["op"].clone())
        .unwrap_or(Value::Null);
    let decision = if a.status == Status::Approved {
        "allow"
    } else {
        "deny"
    };
    let reason = decision_reason(a);
    let body = DecisionRecord {
        id: decision_record_id(&a.id),
        approval: &a.id,
        op: &a.op,
        session: &a.session,
        identity: &a.identity,
        transport: asked.get("transport").cloned().unwrap_or(Value::Null),
        repo: &a.repo,
        service: "receive-pack",
        decision,
        refs: vec![json!({
            "ref": a.refname,
            "old": a.old,
            "new": a.new,
            "op": op,
            "decision": decision,
            "reason": reason,
        })],
        reason,
        pack: asked.get("pack").cloned(),
        refname: &a.refname,
        old: &a.old,
        new: &a.new,
        rule: &a.rule,
        status: a.status,
        by: a.by.as_deref(),
        comment: a.comment.as_deref(),
        decided_at: a.decided_at.as_deref(),
    };
    match audit.append(RecordKind::Decision, &body) {
        Ok(_) | Err(AuditError::DuplicateId { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Gateway {
    /// The approvals store.
    pub fn approvals(&self) -> &Approvals {
        &self.approval.store
    }

    /// Authorizes an admin API caller: the admin token (then `by`, or `admin`, is the name),
    /// or an identity (static token, later OIDC) in `[approval] approver_groups`.
    pub fn authorize_approver(&self, bearer: &str, by: Option<&str>) -> Option<Approver> {
        if let Some(want) = &self.config.admin.token_sha256 {
            use sha2::Digest;
            let got: [u8; 32] = sha2::Sha256::digest(bearer.as_bytes()).into();
            if bool::from(subtle::ConstantTimeEq::ct_eq(&got[..], &want[..])) {
                let name = by.filter(|b| !b.trim().is_empty()).unwrap_or("admin");
                return Some(Approver {
                    name: name.to_string(),
                });
            }
        }
        let groups = &self.config.approval.approver_groups;
        if groups.is_empty() {
            return None;
        }
        let identity: Identity = self
            .auth
            .authenticate_token(&Secret::new(bearer.to_string()))
            .ok()?;
        identity
            .groups
            .iter()
            .any(|g| groups.contains(g))
            .then(|| Approver {
                name: identity.name.clone(),
            })
    }

    /// Decides approval `id` (admin API; the CLI writes the store directly) and wakes the
    /// worker, which records the decision and applies an approved update.
    pub async fn decide_approval(
        &self,
        id: &str,
        verdict: Verdict,
        by: &str,
        comment: Option<String>,
    ) -> Result<Approval, ApprovalError> {
        if !crate::approval::valid_id(id) {
            return Err(ApprovalError::BadId { id: id.into() });
        }
        let (id_, by_) = (id.to_string(), by.to_string());
        let decided = self
            .approval
            .store
            .run(move |s| s.decide(&id_, verdict, &by_, comment.as_deref(), SystemTime::now()))
            .await;
        self.approval.wake.notify_one();
        decided
    }

    /// Makes sure the decision on `a` is in the chain before the pipeline acts on it (the
    /// worker may not have recorded a decision made a moment ago elsewhere). Idempotent.
    pub(super) async fn ensure_recorded(&self, a: &Approval) -> Result<(), SessionError> {
        let audit = self.audit.clone();
        let record = a.clone();
        tokio::task::spawn_blocking(move || record_decision(&audit, &record))
            .await
            .map_err(|e| SessionError::Unrecorded(e.to_string()))?
            .map_err(|e| SessionError::Unrecorded(e.to_string()))?;
        let id = a.id.clone();
        if let Err(e) = self.approval.store.run(move |s| s.mark_recorded(&id)).await {
            // The worker tries again; the record's id makes that harmless.
            tracing::warn!(approval = %a.id, error = %e, "approvals: cannot note a recorded decision");
        }
        Ok(())
    }

    /// What the store says about the update `key` (identity, repo, ref, old, new). An
    /// approved update being relayed right now (by the worker or another push) is waited
    /// for: once it landed, this push's identical update is reported done, not relayed twice.
    async fn lookup(
        &self,
        session: &Session,
        key: (String, String, String, String, String),
    ) -> Result<Found, SessionError> {
        let store_error = |e: ApprovalError| SessionError::Internal(format!("approvals: {e}"));
        let deadline = tokio::time::Instant::now() + IN_FLIGHT_WAIT;
        loop {
            let k = key.clone();
            let latest = self
                .approval
                .store
                .run(move |s| {
                    s.latest_for(&UpdateKey {
                        identity: &k.0,
                        repo: &k.1,
                        refname: &k.2,
                        old: &k.3,
                        new: &k.4,
                    })
                })
                .await
                .map_err(store_error)?;
            let Some(a) = latest else {
                return Ok(Found::Nothing);
            };
            match (a.status, a.outcome) {
                (Status::Approved, None) => {
                    // Only one push (or the worker) gets to relay it.
                    let id = a.id.clone();
                    let claimed = self
                        .approval
                        .store
                        .run(move |s| s.claim(&id, Outcome::Relaying))
                        .await
                        .map_err(store_error)?;
                    if claimed {
                        return Ok(Found::Claimed(a));
                    }
                }
                (Status::Approved, Some(Outcome::Relaying | Outcome::Applying)) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Ok(Found::Nothing);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                (Status::Approved, Some(Outcome::Applied | Outcome::Pushed)) => {
                    let history = session
                        .repo
                        .upstream
                        .history(&session.repo.path, std::time::Instant::now())
                        .await?;
                    let current = current_ref(&history, &a.refname).await?;
                    return Ok(if current.as_deref() == Some(a.new.as_str()) {
                        Found::Done(a)
                    } else {
                        Found::Nothing
                    });
                }
                (Status::Denied, _) => return Ok(Found::Denied(a)),
                (Status::Pending, _) => {
                    let expired = self
                        .approval
                        .store
                        .run(|s| s.expire_due(SystemTime::now()))
                        .await
                        .map_err(store_error)?;
                    return Ok(if expired.iter().any(|e| e.id == a.id) {
                        Found::Nothing
                    } else {
                        Found::Pending(a)
                    });
                }
                _ => return Ok(Found::Nothing),
            }
        }
    }

    /// Matches each `approve` decision against the store. `None` for the other decisions.
    pub(super) async fn resolve_approvals(
        &self,
        session: &Session,
        op_id: &str,
        decided: &[Decided],
        scan: &super::secrets::ScanResult,
        git_dir: &std::path::Path,
    ) -> Result<Vec<Option<Resolution>>, SessionError> {
        let mut out = Vec::with_capacity(decided.len());
        for d in decided {
            if d.verdict.decision != Decision::Approve {
                out.push(None);
                continue;
            }
            let (old, new) = (d.command.old.to_hex(), d.command.new.to_hex());
            let key = (
                session.identity.name.clone(),
                session.repo.name.clone(),
                d.command.refname.clone(),
                old.clone(),
                new.clone(),
            );
            let found = self.lookup(session, key).await?;
            let rule = d
                .verdict
                .rule
                .clone()
                .unwrap_or_else(|| "policy.default".into());
            let resolution = match found {
                Found::Done(a) => Resolution::Done(a),
                Found::Claimed(a) => {
                    if let Err(e) = self.ensure_recorded(&a).await {
                        let id = a.id.clone();
                        let _ = self
                            .approval
                            .store
                            .run(move |s| s.set_outcome(&id, None, None))
                            .await;
                        return Err(e);
                    }
                    Resolution::Approved(a)
                }
                Found::Denied(a) => {
                    self.ensure_recorded(&a).await?;
                    Resolution::Denied(a)
                }
                Found::Pending(a) => Resolution::Held {
                    id: a.id,
                    rule: a.rule,
                    new: None,
                },
                Found::Nothing => {
                    let id = crate::approval::new_id();
                    let mut details = details(d, decided.len(), &session.repo.path, git_dir).await;
                    if let Some(obj) = details.as_object_mut() {
                        obj.insert("findings".into(), findings(d, scan));
                    }
                    Resolution::Held {
                        id: id.clone(),
                        rule: rule.clone(),
                        new: Some(Box::new(NewApproval {
                            id,
                            identity: session.identity.name.clone(),
                            repo: session.repo.name.clone(),
                            refname: d.command.refname.clone(),
                            old,
                            new,
                            rule,
                            reason: d.verdict.reason.clone(),
                            op: op_id.to_string(),
                            session: session.id.clone(),
                            expire_after: self.config.approval.expire_after,
                            details,
                        })),
                    }
                }
            };
            out.push(Some(resolution));
        }
        Ok(out)
    }

    /// Creates the new approvals of a recorded push: the store, a chained `approval` record
    /// each, the webhook. Fails closed: an error means the push is refused.
    pub(super) async fn create_approvals(
        &self,
        resolutions: &[Option<Resolution>],
    ) -> Result<(), SessionError> {
        for r in resolutions.iter().flatten() {
            let Resolution::Held { new: Some(new), .. } = r else {
                continue;
            };
            let new = (**new).clone();
            let created = self
                .approval
                .store
                .run(move |s| s.insert(&new, SystemTime::now()))
                .await
                .map_err(|e| SessionError::Internal(format!("approvals: {e}")))?;
            let body = ApprovalRecord {
                approval: &created.id,
                op: &created.op,
                session: &created.session,
                identity: &created.identity,
                repo: &created.repo,
                refname: &created.refname,
                old: &created.old,
                new: &created.new,
                rule: &created.rule,
                reason: &created.reason,
                expires: &created.expires,
                decision: "pending",
            };
            let body = serde_json::to_value(&body)
                .map_err(|e| SessionError::Internal(format!("encoding a record: {e}")))?;
            self.append(RecordKind::Approval, body).await?;
            tracing::info!(approval = %created.id, identity = %created.identity, repo = %created.repo, refname = %created.refname, rule = %created.rule, "approval requested");
            self.approval.notifier.notify(Event::Pending, &created);
        }
        Ok(())
    }

    /// The band-2 line linking approval `id`'s review page (`[admin] public_url`); empty
    /// without one.
    pub(super) fn review_line(&self, id: &str) -> String {
        match &self.config.admin.public_url {
            Some(base) => format!("  review: {}\n", crate::approval::link(base, id)),
            None => String::new(),
        }
    }

    /// Band-2 lines telling the client what it waits for.
    pub(super) fn waiting_lines(&self, held: &[(String, String)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (id, rule) in held {
            out.extend_from_slice(
                format!(
                    "waiting for approval {id} ({rule}) \u{2014} approve: gitgate approvals approve {id}\n"
                )
                .as_bytes(),
            );
            out.extend_from_slice(self.review_line(id).as_bytes());
        }
        out
    }

    /// Marks the approvals claimed by a push as pushed (the upstream took the ref) or releases
    /// them (it did not: the approval still covers a retry).
    pub(super) async fn settle_claims(&self, claims: Vec<(String, bool)>) {
        if claims.is_empty() {
            return;
        }
        let result = self
            .approval
            .store
            .run(move |s| {
                for (id, ok) in &claims {
                    let outcome = ok.then_some(Outcome::Pushed);
                    s.set_outcome(id, outcome, None)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "approvals: cannot note what a push relayed");
        }
    }
}

/// The id `refname` has in the git dir `dir` (`None`: no such ref).
pub(super) async fn current_ref(
    dir: &std::path::Path,
    refname: &str,
) -> Result<Option<String>, SessionError> {
    let out = git(dir, &["show-ref", "--verify", "--", refname])
        .await
        .map_err(|e| SessionError::Internal(format!("reading the upstream's ref: {e}")))?;
    if !out.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.split_whitespace().next().map(str::to_string))
}

async fn git(dir: &std::path::Path, args: &[&str]) -> std::io::Result<std::process::Output> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.env("GIT_DIR", dir)
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .env("GIT_NO_LAZY_FETCH", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .args(args);
    match tokio::time::timeout(Duration::from_secs(30), cmd.output()).await {
        Ok(out) => out,
        Err(_) => Err(std::io::Error::other("git timed out")),
    }
}

/// What a reviewer sees of one held update: its commits, files and a diff summary (from
/// the quarantine holding the pushed objects over the upstream's history).
async fn details(d: &Decided, refs_in_push: usize, path: &str, git_dir: &std::path::Path) -> Value {
    let commits: Vec<Value> = d
        .commits
        .iter()
        .take(1000)
        .map(|c| {
            json!({
                "id": c.id,
                "author": c.author,
                "committer": c.committer,
                "subject": c.message.lines().next().unwrap_or(""),
            })
        })
        .collect();
    let mut diff = Value::Null;
    if !d.command.is_delete() {
        let old = if d.command.is_create() {
            // The empty tree: a new ref's whole content is its diff.
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904".to_string()
        } else {
            d.command.old.to_hex()
        };
        let new = d.command.new.to_hex();
        if let Ok(out) = git(git_dir, &["diff", "--numstat", &old, &new]).await {
            if out.status.success() {
                diff = numstat(&out.stdout);
            }
        }
    }
    json!({
        "path": path,
        "refs_in_push": refs_in_push,
        "op": d.op.map(|o| o.as_str()),
        "commits": commits,
        "files": d.paths.iter().take(5000).collect::<Vec<_>>(),
        "diff": diff,
    })
}

/// The secret-scan findings in the files this update changes (redacted: detector, path,
/// line, the 4-character preview the client saw).
fn findings(d: &Decided, scan: &super::secrets::ScanResult) -> Value {
    let mut out: Vec<Value> = scan
        .findings
        .values()
        .flatten()
        .filter(|f| d.paths.contains(&f.path))
        .map(|f| {
            json!({
                "detector": f.detector,
                "path": f.path,
                "line": f.line,
                "preview": f.preview,
                "fingerprint": f.fingerprint,
            })
        })
        .collect();
    out.sort_by_key(|v| (v["path"].to_string(), v["line"].as_u64()));
    out.truncate(1000);
    Value::Array(out)
}

/// `git diff --numstat` as `{files, insertions, deletions, per_file: [...]}`.
fn numstat(out: &[u8]) -> Value {
    let text = String::from_utf8_lossy(out);
    let (mut files, mut ins, mut del) = (0u64, 0u64, 0u64);
    let mut per_file = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(a), Some(r), Some(p)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        files += 1;
        let a: Option<u64> = a.parse().ok();
        let r: Option<u64> = r.parse().ok();
        ins += a.unwrap_or(0);
        del += r.unwrap_or(0);
        if per_file.len() < MAX_NUMSTAT {
            per_file
                .push(json!({"path": p, "insertions": a, "deletions": r, "binary": a.is_none()}));
        }
    }
    json!({"files": files, "insertions": ins, "deletions": del, "per_file": per_file})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numstat_sums_and_marks_binaries() {
        let v = numstat(b"3\t1\tsrc/a.rs\n-\t-\timg.png\n10\t0\tdocs/b d.md\ngarbage\n");
        assert_eq!(v["files"], 3);
        assert_eq!(v["insertions"], 13);
        assert_eq!(v["deletions"], 1);
        assert_eq!(v["per_file"][1]["binary"], true);
        assert_eq!(v["per_file"][2]["path"], "docs/b d.md");
    }

    #[test]
    fn reasons_name_the_id_and_the_approver() {
        assert_eq!(
            Resolution::pending_reason("review: needs approval", "ap-1"),
            "review: needs approval; approval pending ap-1"
        );
    }
}
