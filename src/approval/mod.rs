//! Human approval of held ref updates.
//!
//! An approval is bound to one exact update: (identity, repo, ref, old, new). It starts
//! `pending` and ends `approved`, `denied` or `expired`; once approved, its *outcome* says
//! what became of the update: relayed by the client's own push, applied by the gateway, or
//! found stale (the ref moved meanwhile).
//!
//! # Layout
//! - `store`: the `approvals` table in `<state_dir>/audit.db`, next to the chained records.
//!   It is mutable state, not evidence: every decision is also appended to the hash chain
//!   (kind `decision`) by the single writer of the chain (the serving gateway, or the CLI
//!   when no gateway runs). Any process may decide (a short SQLite write transaction, which
//!   WAL allows while `serve` holds the chain's writer lock).
//! - `wait`: holding a push until its approvals are decided or the wait is over.
//! - `notify`: the webhook (Slack-compatible `text`), retried in the background.
//!
//! The pipeline's side (holding pushes, applying approved updates, recording decisions)
//! lives in `session`, which alone combines upstreams, the record and approvals.

mod notify;
mod store;
mod wait;

use serde::{Deserialize, Serialize};

pub use notify::{link, payload, Event, Notifier};
pub use store::{Approvals, NewApproval};
pub use wait::{wait_for, Waited};

/// Longest approval id accepted from a user.
const MAX_ID_LEN: usize = 64;

/// Where an approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for a decision.
    Pending,
    /// A person approved the update.
    Approved,
    /// A person denied the update.
    Denied,
    /// Nobody decided within `[approval] expire_after_seconds`.
    Expired,
}

impl Status {
    /// The stored spelling (`pending`, `approved`, `denied`, `expired`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
        }
    }

    /// Parses the stored spelling.
    pub fn from_name(name: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Approved,
            Status::Denied,
            Status::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a person decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the update through.
    Approve,
    /// Refuse it.
    Deny,
}

impl Verdict {
    /// The status the verdict gives.
    pub fn status(self) -> Status {
        match self {
            Verdict::Approve => Status::Approved,
            Verdict::Deny => Status::Denied,
        }
    }
}

/// What became of an approved update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A push (the held one or the identical re-push) is relaying it now.
    Relaying,
    /// The gateway is applying it (the client gave up waiting).
    Applying,
    /// The client's push relayed it.
    Pushed,
    /// The gateway relayed it itself.
    Applied,
    /// The ref was no longer at `old`: nothing was done.
    Stale,
    /// Relaying it failed (see the record).
    Failed,
}

impl Outcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Relaying => "relaying",
            Outcome::Applying => "applying",
            Outcome::Pushed => "pushed",
            Outcome::Applied => "applied",
            Outcome::Stale => "stale",
            Outcome::Failed => "failed",
        }
    }

    /// Parses the stored spelling.
    pub fn from_name(name: &str) -> Option<Outcome> {
        [
            Outcome::Relaying,
            Outcome::Applying,
            Outcome::Pushed,
            Outcome::Applied,
            Outcome::Stale,
            Outcome::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Whether the approval is used up: it covers no further push.
    pub fn is_final(self) -> bool {
        !matches!(self, Outcome::Relaying | Outcome::Applying)
    }
}

/// One approval as stored (and as `approvals list --format json` prints it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Its id: letters, digits, `-` and `_`.
    pub id: String,
    /// Where it stands.
    pub status: Status,
    /// Who pushed (the authenticated identity's name).
    pub identity: String,
    /// `<upstream>/<path>` without `.git`.
    pub repo: String,
    /// The full ref name.
    #[serde(rename = "ref")]
    pub refname: String,
    /// The ref's id before the update (hex; zeros for a create).
    pub old: String,
    /// The ref's id after the update (hex; zeros for a delete).
    pub new: String,
    /// The rule that asked for approval (`secret-scan`, or `policy.default`).
    pub rule: String,
    /// The policy's reason, as the client saw it.
    pub reason: String,
    /// The operation (push) that asked; its record holds the pack.
    pub op: String,
    /// The session of that push.
    pub session: String,
    /// When it was asked for (RFC 3339, UTC).
    pub created: String,
    /// When a pending approval expires.
    pub expires: String,
    /// When it was decided (or expired).
    pub decided_at: Option<String>,
    /// Who decided.
    pub by: Option<String>,
    /// The decider's comment.
    pub comment: Option<String>,
    /// What became of an approved update.
    pub outcome: Option<Outcome>,
    /// Details of the outcome (the stale ref's id, the upstream's error).
    pub outcome_detail: Option<String>,
}

impl Approval {
    /// The key an update must match exactly to be covered by this approval.
    pub fn covers(&self, update: &UpdateKey<'_>) -> bool {
        self.identity == update.identity
            && self.repo == update.repo
            && self.refname == update.refname
            && self.old == update.old
            && self.new == update.new
    }
}

/// An update as approvals see it: exactly what an approval is bound to.
#[derive(Clone, Copy, Debug)]
pub struct UpdateKey<'a> {
    /// The pusher.
    pub identity: &'a str,
    /// `<upstream>/<path>`.
    pub repo: &'a str,
    /// Full ref name.
    pub refname: &'a str,
    /// Old id, hex.
    pub old: &'a str,
    /// New id, hex.
    pub new: &'a str,
}

/// Why an approval operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// No approval has this id.
    #[error("no approval {id}")]
    Unknown {
        /// The id asked for.
        id: String,
    },
    /// The id is not made of letters, digits, `-` and `_`.
    #[error("{id:?} is not an approval id (letters, digits, '-' and '_')")]
    BadId {
        /// The id given.
        id: String,
    },
    /// The approval was decided already (or expired).
    #[error("approval {id} is {status} already")]
    AlreadyDecided {
        /// Its id.
        id: String,
        /// Its status.
        status: Status,
    },
    /// The requester tried to decide their own update (separation of duties).
    #[error("{by} asked for approval {id} and cannot decide it (separation of duties)")]
    SelfApproval {
        /// Its id.
        id: String,
        /// The would-be approver.
        by: String,
    },
    /// The approver's name is empty or too long.
    #[error("the approver's name must be 1 to 256 characters without control characters")]
    BadApprover,
    /// The store (SQLite) failed.
    #[error("the approvals store failed: {0}")]
    Store(#[from] rusqlite::Error),
    /// The store holds a value this build cannot read.
    #[error("the approvals store holds an unreadable {what}: {value:?}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// The store could not be opened.
    #[error("no approvals store at {path} (has the gateway run?)")]
    NotFound {
        /// The database path.
        path: std::path::PathBuf,
    },
    /// A blocking task failed.
    #[error("internal: {0}")]
    Internal(String),
}

/// Whether `id` is a well-formed approval id: 1 to 64 letters, digits, `-` and `_`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A new approval id: `ap-` and 12 hex digits.
pub fn new_id() -> String {
    let bytes: [u8; 6] = rand::random();
    format!("ap-{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_letters_digits_dash_underscore() {
        let id = new_id();
        assert!(valid_id(&id), "{id}");
        assert!(valid_id("AB_12-x"));
        for bad in ["", "a b", "a/b", "a;b", "é", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn spellings_round_trip() {
        for s in [
            Status::Pending,
            Status::Approved,
            Status::Denied,
            Status::Expired,
        ] {
            assert_eq!(Status::from_name(s.as_str()), Some(s));
        }
        for o in [
            Outcome::Relaying,
            Outcome::Applying,
            Outcome::Pushed,
            Outcome::Applied,
            Outcome::Stale,
            Outcome::Failed,
        ] {
            assert_eq!(Outcome::from_name(o.as_str()), Some(o));
        }
        assert!(!Outcome::Relaying.is_final() && Outcome::Stale.is_final());
    }
}
