//! The one-line reasons of verdicts.
//!
//! A reason ends up in an `ng <ref> <reason>` pkt-line, on `remote:` lines and in the record,
//! so it must be a single line; text that comes from the client (ref names, paths, emails) or
//! from an identity provider (names) may hold anything, so it passes through [`clean`].
//! Config text (rule names, messages, regexes) was checked to be single-line when resolved.

use std::fmt::Write as _;

use super::Subject;
use crate::config::{Decision, Op, Rule};

/// Longest piece of outside text kept in a reason, in characters.
const MAX_QUOTED_CHARS: usize = 200;

/// What the update does, as the subject of a sentence: `force-push to refs/heads/main`.
pub(super) fn push_action(op: Op, refname: &str) -> String {
    let refname = clean(refname);
    match op {
        Op::Create => format!("creation of {refname}"),
        Op::Update => format!("update of {refname}"),
        Op::Force => format!("force-push to {refname}"),
        Op::Delete => format!("deletion of {refname}"),
        Op::Fetch => format!("fetch of {refname}"),
    }
}

/// A fetch as the subject of a sentence: `fetch of local/demo`.
pub(super) fn fetch_action(repo: &str) -> String {
    format!("fetch of {}", clean(repo))
}

/// `NAME: MESSAGE`, or `NAME: ACTION is not allowed for WHO`, then the condition facts.
pub(super) fn for_rule(
    rule: &Rule,
    decision: Decision,
    action: &str,
    who: &Subject<'_>,
    details: &[String],
) -> String {
    let mut text = match &rule.message {
        Some(message) => format!("{}: {message}", rule.name),
        None => format!("{}: {action} {}", rule.name, outcome(decision, who)),
    };
    if !details.is_empty() {
        let _ = write!(text, " ({})", details.join("; "));
    }
    text
}

/// A push to a ref that `rule` hides from the caller.
pub(super) fn hidden(rule: &Rule, refname: &str, who: &Subject<'_>) -> String {
    format!(
        "{}: {} is hidden from {}",
        rule.name,
        clean(refname),
        clean(who.name)
    )
}

/// `policy.default` decided: no rule matched.
pub(super) fn default(decision: Decision, action: &str, who: &Subject<'_>) -> String {
    let who = clean(who.name);
    match decision {
        Decision::Deny => format!("policy.default: no rule allows {action} for {who}"),
        Decision::Approve => {
            format!("policy.default: no rule matches {action} for {who}; it needs approval")
        }
        Decision::Allow => {
            format!("policy.default: no rule matches {action} for {who}; allowed by default")
        }
    }
}

fn outcome(decision: Decision, who: &Subject<'_>) -> String {
    let who = clean(who.name);
    match decision {
        Decision::Allow => format!("is allowed for {who}"),
        Decision::Approve => format!("needs approval for {who}"),
        Decision::Deny => format!("is not allowed for {who}"),
    }
}

/// `text` made safe for a one-line reason: control characters escaped (`\n`, `\u{1b}`),
/// at most [`MAX_QUOTED_CHARS`] characters (then `...`).
pub(super) fn clean(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_QUOTED_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
