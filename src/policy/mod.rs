//! Policy: what a caller may push and fetch, decided from the config's `[[rule]]`s.
//!
//! Plumbing: facts in (who, which repo, what a ref update does and brings), a [`Verdict`] out.
//! No I/O, no logging, no global state; only [`fixture`] (behind `gitgate policy test DIR`)
//! reads files.
//!
//! # Semantics (contract.md, "Decision", "Globs", "Ops")
//! - A rule **matches** a ref update when all of its conditions hold: the caller is one of its
//!   `subjects` (`user:NAME`, `group:NAME`, `*`); the repo (`<upstream>/<path>`, no `.git`)
//!   matches one of `repos`; the ref name one of `refs`; the op is one of `ops` (default: the
//!   four push ops); and those of the following that are present: `paths` (a path added,
//!   changed or deleted by an introduced commit matches), `max_blob_bytes` (an introduced blob
//!   is larger), `require_signed` (an introduced commit has no signature), `commit_message`
//!   (an introduced commit's message does not match), `commit_message_deny` (one matches),
//!   `author_email` (an introduced commit's author or committer email does not match). An
//!   update that introduces nothing (a deletion, a branch made from a known commit) fails
//!   every such condition.
//! - Globs: `*` stays within a `/`-separated segment, `**` crosses segments; the lone `*`
//!   matches everything ([`crate::config::Pattern`]).
//! - All matching rules **combine**: deny beats approve beats allow. When none matches, the
//!   decision is `policy.default`. A rule without `action` never decides by itself.
//! - A fetch (clone, fetch, ls-remote) is decided by the rules whose `ops` has `fetch`, on
//!   subjects and repos alone (the config refuses per-ref and per-commit conditions on them,
//!   and `approve`).
//! - `hide_refs`: each rule whose subjects and repos match hides its globs from the caller
//!   ([`RefFilter`], the union over those rules). A push to a hidden ref is denied by the
//!   hiding rule, as git's `receive.hideRefs` does: a caller must not overwrite what it cannot see.
//! - The **reason** starts with the deciding rule's name: among the matching rules with the
//!   winning decision, the *first in file order* (so put specific rules before general ones).
//!   It reads `NAME: MESSAGE` when the rule has a message, else a generated sentence
//!   (`protect-main: force-push to refs/heads/main is not allowed for agent-1`); the facts
//!   that made a commit/blob/path condition hold follow in parentheses (`(commit 1a2b is not
//!   signed)`). Without a match it starts with `policy.default`. Reasons are one line: text
//!   from the client (ref names, paths, emails, identity names) has its control characters
//!   escaped and is shortened, and commit messages are never quoted (they may hold secrets).
//! - Signatures: a commit counts as signed when it carries a `gpgsig` header (GPG or SSH).
//!   Whether the signature verifies, and whose key made it, is not checked.

mod condition;
mod eval;
mod filter;
pub mod fixture;
mod reason;
#[cfg(test)]
mod tests;

pub use eval::Policy;
pub use filter::RefFilter;

use crate::config::{Decision, Op};

/// Who is asking: an authenticated identity's name and groups.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The identity's name (matched by `user:NAME`).
    pub name: &'a str,
    /// The identity's groups (matched by `group:NAME`).
    pub groups: &'a [String],
}

/// One ref update of a push, with what inspection learned about it.
#[derive(Debug, Clone, Copy)]
pub struct RefUpdate<'a> {
    /// The full ref name (`refs/heads/main`).
    pub refname: &'a str,
    /// What it does: one of the push ops ([`Op::PUSH`]).
    pub op: Op,
    /// The commits it introduces (reachable from the new id, not from any upstream ref), in
    /// the order reasons should name them.
    pub commits: &'a [CommitFacts],
    /// Paths added, changed or deleted by those commits.
    pub paths: &'a [String],
    /// The blobs those commits introduce, with a path where each appears.
    pub blobs: &'a [BlobFacts],
}

/// What the policy needs to know of an introduced commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitFacts {
    /// The commit id (hex).
    pub id: String,
    /// The author as written, `Name <email>` without the date (recorded, not matched).
    pub author: String,
    /// The author's email, without the angle brackets.
    pub author_email: String,
    /// The committer as written, `Name <email>` without the date (recorded, not matched).
    pub committer: String,
    /// The committer's email, without the angle brackets.
    pub committer_email: String,
    /// The whole message (subject, body, trailers). Matched, never shown.
    pub message: String,
    /// Whether the commit has a `gpgsig` header (a GPG or SSH signature), verified or not.
    pub signed: bool,
}

/// An introduced blob's size, with a path where it appears.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobFacts {
    /// A path of the blob in an introduced commit.
    pub path: String,
    /// Its size in bytes (inflated).
    pub size: u64,
}

/// The outcome for one ref update or one fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allow, hold for approval, or deny.
    pub decision: Decision,
    /// The deciding rule's name; `None` when `policy.default` decided.
    pub rule: Option<String>,
    /// One line for the client and the record, starting with the rule's name or
    /// `policy.default`.
    pub reason: String,
}
