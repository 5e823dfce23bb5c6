//! The conditions of a rule on what a push carries: `paths`, `max_blob_bytes`,
//! `require_signed`, `commit_message`, `commit_message_deny` and `author_email`.
//!
//! Each one that is present must hold for the rule to match; each that holds yields the fact
//! behind it (the first in the order the caller gave), which the reason shows. Facts name
//! commits, paths and emails, never message text: a message may hold a secret.

use regex::Regex;

use super::reason::clean;
use super::{CommitFacts, RefUpdate};
use crate::config::Rule;

/// The facts behind `rule`'s content conditions on `update`: `None` when one of them does not
/// hold, an empty list when the rule has none.
pub(super) fn content(rule: &Rule, update: &RefUpdate<'_>) -> Option<Vec<String>> {
    let mut facts = Vec::new();
    if !rule.paths.is_empty() {
        let path = update
            .paths
            .iter()
            .find(|path| rule.paths.iter().any(|p| p.is_match(path)))?;
        facts.push(format!("changes {}", clean(path)));
    }
    if let Some(max) = rule.max_blob_bytes {
        // The largest offender, the first of equals: the one most worth naming.
        let blob = update
            .blobs
            .iter()
            .filter(|b| b.size > max)
            .reduce(|a, b| if b.size > a.size { b } else { a })?;
        facts.push(format!(
            "blob {} is {} bytes, over {max}",
            clean(&blob.path),
            blob.size
        ));
    }
    if rule.require_signed {
        let commit = update.commits.iter().find(|c| !c.signed)?;
        facts.push(format!("commit {} is not signed", clean(&commit.id)));
    }
    if let Some(re) = &rule.commit_message {
        let commit = update.commits.iter().find(|c| !re.is_match(&c.message))?;
        facts.push(format!(
            "message of commit {} does not match \"{re}\"",
            clean(&commit.id)
        ));
    }
    if let Some(re) = &rule.commit_message_deny {
        let commit = update.commits.iter().find(|c| re.is_match(&c.message))?;
        facts.push(format!(
            "message of commit {} matches \"{re}\"",
            clean(&commit.id)
        ));
    }
    if let Some(re) = &rule.author_email {
        facts.push(update.commits.iter().find_map(|c| foreign_email(re, c))?);
    }
    Some(facts)
}

/// The fact when `commit`'s author or committer email does not match `re`.
fn foreign_email(re: &Regex, commit: &CommitFacts) -> Option<String> {
    let (role, email) = [
        ("author", &commit.author_email),
        ("committer", &commit.committer_email),
    ]
    .into_iter()
    .find(|(_, email)| !re.is_match(email))?;
    Some(format!(
        "{role} email {} of commit {} does not match \"{re}\"",
        clean(email),
        clean(&commit.id)
    ))
}
