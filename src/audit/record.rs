//! What a record says: the typed bodies the gateway appends, and the columns the store
//! extracts from any body for its filters.
//!
//! Bodies are JSON objects. The typed structs here are the gateway's vocabulary; the store
//! accepts any object (so a newer field or record kind needs no schema change) and reads
//! back `serde_json::Value`s. Field names are part of the outside contract (`audit log
//! --format json`): rename none.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::packs::PackRef;

/// The kind of a record; every kind goes into the one chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// One git operation (clone, fetch, ls-remote, push): [`Operation`].
    Operation,
    /// The outcome of a relayed push ([`PushResult`]) or the pack a fetch sent
    /// ([`FetchResult`]), linked by `op`.
    Result,
    /// An approval request (held ref update).
    Approval,
    /// A decision on an approval.
    Decision,
    /// Retention deleted stored packs: [`Prune`].
    Prune,
}

impl RecordKind {
    /// Every kind, in declaration order.
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Operation,
        RecordKind::Result,
        RecordKind::Approval,
        RecordKind::Decision,
        RecordKind::Prune,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Operation => "operation",
            RecordKind::Result => "result",
            RecordKind::Approval => "approval",
            RecordKind::Decision => "decision",
            RecordKind::Prune => "prune",
        }
    }

    /// Parses the stored spelling.
    pub fn from_name(name: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One git operation: a clone, fetch or ls-remote (`upload-pack`) or a push
/// (`receive-pack`), allowed or not. Appended before the client gets its answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Unique id, made by the gateway.
    pub id: String,
    /// The session it belongs to (an SSH connection; one git command over HTTP).
    pub session: String,
    /// When it started: RFC 3339, UTC, milliseconds ([`format_time`]).
    pub time: String,
    /// How long it took until the decision was recorded.
    pub duration_ms: u64,
    /// The authenticated identity's name (never taken from commit metadata).
    pub identity: String,
    /// How it authenticated (`token`, `oidc`, `ssh-key`, `ssh-cert`, `none`, ...).
    pub auth: String,
    /// The client's address, when known.
    pub client: Option<String>,
    /// Which front door.
    pub transport: Transport,
    /// `<upstream>/<path>` without `.git`.
    pub repo: String,
    /// Which git service.
    pub service: Service,
    /// Protocol version the client spoke (0, 1 or 2).
    pub protocol: u8,
    /// The operation's decision.
    pub decision: Decision,
    /// Why, when not simply allowed (shown to the client too).
    pub reason: Option<String>,
    /// Per-ref updates of a push (empty for fetches).
    #[serde(default)]
    pub refs: Vec<RefRecord>,
    /// What a fetch asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch: Option<FetchFacts>,
    /// What a push carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushFacts>,
    /// The pushed pack, kept under `state_dir/packs` ([`super::Audit::store_pack`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<PackRef>,
}

/// The front door an operation came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Smart HTTP.
    Http,
    /// SSH.
    Ssh,
}

/// The git service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    /// Clone, fetch, ls-remote.
    UploadPack,
    /// Push.
    ReceivePack,
}

/// A recorded decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Let through.
    Allow,
    /// Refused.
    Deny,
    /// Held for approval.
    Pending,
}

/// What a ref update does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefOp {
    /// A new ref.
    Create,
    /// A fast-forward.
    Update,
    /// A non-fast-forward update.
    Force,
    /// A deleted ref.
    Delete,
}

/// One ref update of a push and its decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefRecord {
    /// Full ref name.
    #[serde(rename = "ref")]
    pub refname: String,
    /// Old object id (hex; zeros for a create).
    pub old: String,
    /// New object id (hex; zeros for a delete).
    pub new: String,
    /// What it does; `None` when it could not be classified (e.g. a bad pack).
    pub op: Option<RefOp>,
    /// Its decision.
    pub decision: Decision,
    /// Why (rule name and message, `secret-scan ...`, `approval pending <id>`).
    pub reason: Option<String>,
}

/// What a fetch (or clone, or ls-remote) asked for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FetchFacts {
    /// Protocol v2 command (`ls-refs`, `fetch`); `None` for v0/v1.
    pub command: Option<String>,
    /// Object ids wanted.
    #[serde(default)]
    pub wants: Vec<String>,
    /// How many `have` lines the client sent.
    pub haves: u64,
    /// `shallow` object ids.
    #[serde(default)]
    pub shallow: Vec<String>,
    /// `deepen N`.
    pub deepen: Option<u64>,
    /// `deepen-since` (as sent).
    pub deepen_since: Option<String>,
    /// `deepen-not` refs.
    #[serde(default)]
    pub deepen_not: Vec<String>,
    /// `filter` spec.
    pub filter: Option<String>,
    /// SHA-256 of the advertised refs as relayed (after hiding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refs_advertised_sha256: Option<String>,
    /// The pack sent to the client, measured as it passed (not kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_sent: Option<PackSent>,
}

/// A pack sent to a client, measured in passing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackSent {
    /// SHA-256 of the pack bytes.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// Object count from its header, when read.
    pub objects: Option<u64>,
}

/// What a push carried, besides its ref updates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PushFacts {
    /// Capabilities the client asked for.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// `push-option` values.
    #[serde(default)]
    pub push_options: Vec<String>,
    /// Commits the push introduces.
    #[serde(default)]
    pub commits: Vec<CommitRecord>,
    /// Paths added, changed or deleted by those commits.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Secret-scan findings, redacted.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Blobs the secret scan skipped (binary, larger than `[scan] max_blob_bytes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_scanned: Vec<NotScanned>,
}

/// A blob the secret scan skipped, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotScanned {
    /// Blob id (hex).
    pub blob: String,
    /// `binary`, or the size and the limit it exceeds.
    pub reason: String,
}

/// A commit a push introduces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// Commit id (hex).
    pub id: String,
    /// `Name <email>` as written in the commit (data, not identity).
    pub author: String,
    /// `Name <email>` of the committer.
    pub committer: String,
    /// First line of the message.
    pub subject: String,
}

/// A secret-scan finding: where and what kind, never the value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Detector name (`aws-access-key-id`, ...).
    pub detector: String,
    /// Path of the blob in the commit.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// A stable digest of the value (lets two findings be matched without the secret).
    pub fingerprint: String,
    /// The commit that introduced it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// The outcome of a push after relaying (kind [`RecordKind::Result`]): what the upstream
/// reported. Linked to its operation by `op`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PushResult {
    /// Id; made by `append` when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The operation's id.
    pub op: String,
    /// The operation's session.
    pub session: String,
    /// When; `append` fills in "now" when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The upstream's `unpack` status (`ok` or its error), when it answered.
    pub unpack: Option<String>,
    /// Per-ref status from the upstream's report.
    #[serde(default)]
    pub refs: Vec<RefResult>,
    /// Why relaying failed, when it did.
    pub error: Option<String>,
}

/// The pack a fetch sent (kind [`RecordKind::Result`], like a push's [`PushResult`]): the
/// operation is recorded before its answer, the pack is only known once it has streamed.
/// Linked to its operation by `op`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchResult {
    /// Id; made by `append` when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The operation's id.
    pub op: String,
    /// The operation's session.
    pub session: String,
    /// When; `append` fills in "now" when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The pack as it passed to the client.
    pub pack_sent: PackSent,
    /// Whether the answer ended as a complete pack answer does (false: the upstream or the
    /// client broke off, or the pack had no end marker).
    pub complete: bool,
    /// Why the answer stopped, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One ref of the upstream's report-status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefResult {
    /// Full ref name.
    #[serde(rename = "ref")]
    pub refname: String,
    /// `ok` or `ng`.
    pub ok: bool,
    /// The upstream's reason for `ng`.
    pub reason: Option<String>,
}

/// Retention deleted these packs (kind [`RecordKind::Prune`]); `verify` then accepts their
/// absence for the records before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prune {
    /// SHA-256 of each deleted pack.
    pub packs: Vec<String>,
    /// The retention that applied.
    pub keep_packs_days: u32,
    /// Packs last referenced before this time were deleted.
    pub cutoff: String,
}

/// The values the store keeps in columns of their own, for filters and links; always
/// derived from the body ([`Columns::of`]), and `verify` checks that they still are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Columns {
    /// `session`.
    pub session: Option<String>,
    /// `identity`.
    pub identity: Option<String>,
    /// `repo`.
    pub repo: Option<String>,
    /// `decision`.
    pub decision: Option<String>,
    /// `op`: the operation a result, approval or decision belongs to.
    pub op: Option<String>,
    /// `pack.sha256`: the stored pack the record references.
    pub pack: Option<String>,
}

impl Columns {
    /// The columns of `body` (missing or non-string fields give `None`).
    pub fn of(body: &Value) -> Columns {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        Columns {
            session: text(body.get("session")),
            identity: text(body.get("identity")),
            repo: text(body.get("repo")),
            decision: text(body.get("decision")),
            op: text(body.get("op")),
            pack: text(body.get("pack").and_then(|p| p.get("sha256"))),
        }
    }
}

/// `time` as the record stores it: RFC 3339, UTC, milliseconds (`2024-06-01T12:00:00.123Z`).
/// The fixed width makes text order time order.
pub fn format_time(time: SystemTime) -> String {
    match jiff::Timestamp::try_from(time) {
        Ok(ts) => format_timestamp(ts),
        // Outside jiff's range (years -9999..=9999): clamp rather than fail an append.
        Err(_) => format_timestamp(jiff::Timestamp::MAX),
    }
}

/// Now, formatted by [`format_time`].
pub fn now() -> String {
    format_time(SystemTime::now())
}

pub(crate) fn format_timestamp(ts: jiff::Timestamp) -> String {
    // A fixed precision (truncating) keeps every time the same width.
    format!("{ts:.3}")
}

/// Parses an RFC 3339 time (any offset) and formats it as the record stores it.
pub(crate) fn normalize_time(text: &str) -> Option<String> {
    text.parse::<jiff::Timestamp>().ok().map(format_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_717_243_200_123);
        assert_eq!(format_time(t), "2024-06-01T12:00:00.123Z");
        assert_eq!(
            format_time(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            normalize_time("2024-06-01T14:00:00+02:00").as_deref(),
            Some("2024-06-01T12:00:00.000Z")
        );
        assert_eq!(normalize_time("yesterday"), None);
    }

    #[test]
    fn an_operation_serializes_with_the_contract_names() {
        let op = Operation {
            id: "op-1".into(),
            session: "s-1".into(),
            time: now(),
            duration_ms: 3,
            identity: "agent-1".into(),
            auth: "token".into(),
            client: Some("127.0.0.1:5000".into()),
            transport: Transport::Http,
            repo: "local/demo".into(),
            service: Service::ReceivePack,
            protocol: 0,
            decision: Decision::Deny,
            reason: None,
            refs: vec![RefRecord {
                refname: "refs/heads/main".into(),
                old: "a".repeat(40),
                new: "b".repeat(40),
                op: Some(RefOp::Force),
                decision: Decision::Deny,
                reason: Some("protect-main".into()),
            }],
            fetch: None,
            push: Some(PushFacts::default()),
            pack: Some(PackRef {
                sha256: "c".repeat(64),
                bytes: 10,
            }),
        };
        let v = serde_json::to_value(&op).unwrap_or_default();
        assert_eq!(v["transport"], "http");
        assert_eq!(v["service"], "receive-pack");
        assert_eq!(v["decision"], "deny");
        assert_eq!(v["refs"][0]["ref"], "refs/heads/main");
        assert_eq!(v["refs"][0]["op"], "force");
        assert_eq!(v["pack"]["bytes"], 10);
        let c = Columns::of(&v);
        assert_eq!(c.identity.as_deref(), Some("agent-1"));
        assert_eq!(c.pack, Some("c".repeat(64)));
        assert_eq!(Columns::of(&json!({"pack": {"sha256": 1}})).pack, None);
    }
}
