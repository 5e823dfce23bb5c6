//! [`Policy`]: matching rules against a caller, a repo and a ref update, and combining them.

use super::condition;
use super::filter::RefFilter;
use super::reason;
use super::{RefUpdate, Subject, Verdict};
use crate::config::{self, Config, Decision, Op, Rule};

/// The rules and default of a config, ready to decide.
#[derive(Debug, Clone)]
pub struct Policy {
    default: Decision,
    rules: Vec<Rule>,
}

impl Policy {
    /// The policy of `config`: its `[[rule]]`s (in file order) and `policy.default`.
    pub fn new(config: &Config) -> Policy {
        Policy {
            default: config.policy.default,
            rules: config.rules.clone(),
        }
    }

    /// The decision on one ref update by `who` to `repo` (`<upstream>/<path>`, no `.git`).
    pub fn decide_push(&self, who: &Subject<'_>, repo: &str, update: &RefUpdate<'_>) -> Verdict {
        let action = reason::push_action(update.op, update.refname);
        let mut best: Option<Verdict> = None;
        for rule in self.rules.iter().filter(|r| applies_to(r, who, repo)) {
            let found = if rule.hide_refs.iter().any(|p| p.is_match(update.refname)) {
                Some(verdict(
                    rule,
                    Decision::Deny,
                    reason::hidden(rule, update.refname, who),
                ))
            } else {
                judge_push(rule, update).map(|(decision, details)| {
                    let text = reason::for_rule(rule, decision, &action, who, &details);
                    verdict(rule, decision, text)
                })
            };
            best = stronger(best, found);
            if best.as_ref().is_some_and(|b| b.decision == Decision::Deny) {
                // Nothing beats deny, and the first denying rule gives the reason.
                break;
            }
        }
        best.unwrap_or_else(|| self.fallback(&action, who))
    }

    /// The decision on a clone, fetch or ls-remote of `repo` by `who`.
    ///
    /// Only rules whose `ops` has `fetch` decide; the config guarantees that they have no
    /// per-ref or per-commit condition and that the decision is allow or deny.
    pub fn decide_fetch(&self, who: &Subject<'_>, repo: &str) -> Verdict {
        let action = reason::fetch_action(repo);
        let mut best: Option<Verdict> = None;
        for rule in self.rules.iter().filter(|r| applies_to(r, who, repo)) {
            let found = match rule.action {
                Some(decision) if rule.ops.contains(&Op::Fetch) => {
                    let text = reason::for_rule(rule, decision, &action, who, &[]);
                    Some(verdict(rule, decision, text))
                }
                _ => None,
            };
            best = stronger(best, found);
        }
        best.unwrap_or_else(|| self.fallback(&action, who))
    }

    /// The refs hidden from `who` in `repo`: the `hide_refs` of every rule whose subjects and
    /// repos match, whatever its action and ops.
    pub fn ref_filter(&self, who: &Subject<'_>, repo: &str) -> RefFilter {
        let hidden = self
            .rules
            .iter()
            .filter(|r| applies_to(r, who, repo))
            .flat_map(|r| r.hide_refs.iter().map(|p| (p.clone(), r.name.clone())))
            .collect();
        RefFilter::new(hidden)
    }

    fn fallback(&self, action: &str, who: &Subject<'_>) -> Verdict {
        Verdict {
            decision: self.default,
            rule: None,
            reason: reason::default(self.default, action, who),
        }
    }
}

/// The rule concerns `who` in `repo`: the part of matching that also governs `hide_refs`.
fn applies_to(rule: &Rule, who: &Subject<'_>, repo: &str) -> bool {
    rule.subjects.iter().any(|s| is_subject(s, who)) && rule.repos.iter().any(|p| p.is_match(repo))
}

fn is_subject(subject: &config::Subject, who: &Subject<'_>) -> bool {
    match subject {
        config::Subject::Any => true,
        config::Subject::User(name) => name == who.name,
        config::Subject::Group(group) => who.groups.iter().any(|g| g == group),
    }
}

/// The rule's decision on `update` when the rest of its conditions hold (subjects and repos
/// were checked), with the facts behind its commit/blob/path conditions.
fn judge_push(rule: &Rule, update: &RefUpdate<'_>) -> Option<(Decision, Vec<String>)> {
    let decision = rule.action?;
    if !rule.ops.contains(&update.op) || !rule.refs.iter().any(|p| p.is_match(update.refname)) {
        return None;
    }
    let details = condition::content(rule, update)?;
    Some((decision, details))
}

fn verdict(rule: &Rule, decision: Decision, reason: String) -> Verdict {
    Verdict {
        decision,
        rule: Some(rule.name.clone()),
        reason,
    }
}

/// The stronger of two verdicts; on a tie the earlier (`best`) one, so the first rule in file
/// order with the winning decision gives the reason.
fn stronger(best: Option<Verdict>, found: Option<Verdict>) -> Option<Verdict> {
    match (best, found) {
        (Some(b), Some(f)) if f.decision > b.decision => Some(f),
        (Some(b), _) => Some(b),
        (None, f) => f,
    }
}
