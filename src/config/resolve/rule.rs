//! `[[rule]]`: subjects, globs, ops, commit and blob conditions, and the action.

use std::collections::HashMap;
use std::ops::Range;

use regex::Regex;

use super::{Ctx, Tbl};
use crate::config::error::{ConfigError, Problem};
use crate::config::raw::{RawRule, S};
use crate::config::{Decision, Op, Pattern, Rule, Subject};

const ACTIONS: &[(&str, Decision)] = &[
    ("allow", Decision::Allow),
    ("approve", Decision::Approve),
    ("deny", Decision::Deny),
];

const OPS: &[(&str, Op)] = &[
    ("create", Op::Create),
    ("update", Op::Update),
    ("force", Op::Force),
    ("delete", Op::Delete),
    ("fetch", Op::Fetch),
];

pub(super) fn rules(cx: &Ctx<'_>, raw: Vec<S<RawRule>>) -> Result<Vec<Rule>, ConfigError> {
    let t = cx.table("[[rule]]");
    let mut names = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for entry in raw {
        let header = entry.span();
        let raw = entry.into_inner();
        let name = t.text("name", &raw.name)?;
        t.unique(&mut names, "name", "name", &name, &name, &raw.name.span())?;
        out.push(rule(&t, &header, name, &raw)?);
    }
    Ok(out)
}

fn rule(
    t: &Tbl<'_>,
    header: &Range<usize>,
    name: String,
    raw: &RawRule,
) -> Result<Rule, ConfigError> {
    let action = raw
        .action
        .as_ref()
        .map(|v| t.choice("action", v, ACTIONS, "\"allow\", \"approve\" or \"deny\""))
        .transpose()?;
    let hide_refs = t.patterns("hide_refs", &raw.hide_refs)?;
    if action.is_none() && hide_refs.is_empty() {
        return Err(t.header_err(header, Problem::RuleWithoutEffect));
    }
    let subjects = match &raw.subjects {
        Some(list) => t
            .non_empty("subjects", list)?
            .iter()
            .map(|v| t.subject(v))
            .collect::<Result<_, _>>()?,
        None => vec![Subject::Any],
    };
    let ops = t.ops(raw.ops.as_ref())?;
    let rule = Rule {
        name,
        subjects,
        repos: t.patterns_or_any("repos", raw.repos.as_ref())?,
        refs: t.patterns_or_any("refs", raw.refs.as_ref())?,
        ops,
        paths: t.patterns("paths", &raw.paths)?,
        action,
        message: raw
            .message
            .as_ref()
            .map(|v| t.text("message", v))
            .transpose()?,
        hide_refs,
        max_blob_bytes: raw
            .max_blob_bytes
            .as_ref()
            .map(|v| t.positive("max_blob_bytes", v))
            .transpose()?,
        require_signed: raw.require_signed.as_ref().is_some_and(|v| *v.get_ref()),
        commit_message: t.regex("commit_message", raw.commit_message.as_ref())?,
        commit_message_deny: t.regex("commit_message_deny", raw.commit_message_deny.as_ref())?,
        author_email: t.regex("author_email", raw.author_email.as_ref())?,
    };
    t.coherent(raw, &rule)?;
    Ok(rule)
}

/// The keys of `raw` that narrow which pushes a rule matches beyond subjects, repos and ops,
/// with the span of their value, first in the file first.
fn push_conditions(raw: &RawRule) -> Vec<(&'static str, Range<usize>)> {
    let mut keys = Vec::new();
    let strings = [
        ("commit_message", &raw.commit_message),
        ("commit_message_deny", &raw.commit_message_deny),
        ("author_email", &raw.author_email),
    ];
    for (key, v) in strings {
        if let Some(v) = v {
            keys.push((key, v.span()));
        }
    }
    if let Some(v) = &raw.refs {
        keys.push(("refs", v.span()));
    }
    if let Some(v) = raw.paths.first() {
        keys.push(("paths", v.span()));
    }
    if let Some(v) = &raw.max_blob_bytes {
        keys.push(("max_blob_bytes", v.span()));
    }
    // `require_signed = false` is the default spelled out: harmless anywhere.
    if let Some(v) = raw.require_signed.as_ref().filter(|v| *v.get_ref()) {
        keys.push(("require_signed", v.span()));
    }
    keys.sort_by_key(|(_, span)| span.start);
    keys
}

impl Tbl<'_> {
    /// Refuses keys that would be silently ignored: conditions on a rule that only hides refs,
    /// and per-ref or per-commit conditions on a rule deciding `fetch`.
    fn coherent(&self, raw: &RawRule, rule: &Rule) -> Result<(), ConfigError> {
        let conditions = push_conditions(raw);
        if rule.action.is_none() {
            let mut keys = conditions;
            if let Some(v) = &raw.ops {
                keys.push(("ops", v.span()));
            }
            if let Some(v) = &raw.message {
                keys.push(("message", v.span()));
            }
            keys.sort_by_key(|(_, span)| span.start);
            if let Some((key, span)) = keys.first() {
                return Err(self.err(span, key, Problem::NeedsAction));
            }
            return Ok(());
        }
        if !rule.ops.contains(&Op::Fetch) {
            return Ok(());
        }
        if let Some((key, span)) = conditions.first() {
            return Err(self.err(span, key, Problem::NotForFetch));
        }
        if let (Some(Decision::Approve), Some(v)) = (rule.action, &raw.action) {
            return Err(self.err(&v.span(), "action", Problem::ApproveFetch));
        }
        Ok(())
    }

    /// `ops`, deduplicated in file order; the push ops when absent.
    fn ops(&self, list: Option<&S<Vec<S<String>>>>) -> Result<Vec<Op>, ConfigError> {
        let Some(list) = list else {
            return Ok(Op::PUSH.to_vec());
        };
        let mut ops = Vec::new();
        for v in self.non_empty("ops", list)? {
            let op = self.choice(
                "ops",
                v,
                OPS,
                "\"create\", \"update\", \"force\", \"delete\" or \"fetch\"",
            )?;
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
        Ok(ops)
    }

    /// A regex (Rust `regex` syntax: no look-around or back-references, linear-time
    /// matching), single-line like every text of the config since it is quoted in reasons.
    fn regex(&self, key: &str, v: Option<&S<String>>) -> Result<Option<Regex>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let source = self.text(key, v)?;
        Regex::new(&source).map(Some).map_err(|e| {
            let problem = Problem::BadRegex {
                regex: source.clone(),
                reason: regex_reason(&e),
            };
            self.err(&v.span(), key, problem)
        })
    }

    /// The list, unless it is empty: an empty list would make the rule match nothing,
    /// which is never what was meant (leave the key out for the default).
    fn non_empty<'v>(
        &self,
        key: &str,
        list: &'v S<Vec<S<String>>>,
    ) -> Result<&'v [S<String>], ConfigError> {
        if list.get_ref().is_empty() {
            return Err(self.err(&list.span(), key, Problem::Empty));
        }
        Ok(list.get_ref())
    }

    fn subject(&self, v: &S<String>) -> Result<Subject, ConfigError> {
        let s = v.get_ref();
        let subject = if s == "*" {
            Some(Subject::Any)
        } else if let Some(name) = s.strip_prefix("user:") {
            Some(Subject::User(name.to_string())).filter(|_| !name.is_empty())
        } else if let Some(name) = s.strip_prefix("group:") {
            Some(Subject::Group(name.to_string())).filter(|_| !name.is_empty())
        } else {
            None
        };
        subject.ok_or_else(|| {
            let problem = Problem::BadChoice {
                value: s.clone(),
                expected: "\"user:NAME\", \"group:NAME\" or \"*\"",
            };
            self.err(&v.span(), "subjects", problem)
        })
    }

    fn patterns(&self, key: &str, list: &[S<String>]) -> Result<Vec<Pattern>, ConfigError> {
        list.iter().map(|v| self.pattern(key, v)).collect()
    }

    fn patterns_or_any(
        &self,
        key: &str,
        list: Option<&S<Vec<S<String>>>>,
    ) -> Result<Vec<Pattern>, ConfigError> {
        match list {
            Some(list) => self.patterns(key, self.non_empty(key, list)?),
            None => Ok(vec![Pattern::any()]),
        }
    }

    fn pattern(&self, key: &str, v: &S<String>) -> Result<Pattern, ConfigError> {
        let glob = v.get_ref();
        if glob.is_empty() {
            return Err(self.err(&v.span(), key, Problem::Empty));
        }
        Pattern::new(glob).map_err(|e| {
            let problem = Problem::BadGlob {
                glob: glob.clone(),
                reason: e.kind().to_string(),
            };
            self.err(&v.span(), key, problem)
        })
    }
}

/// The regex compiler's explanation on one line. Its syntax errors span several lines (the
/// pattern, a caret, then `error: WHAT`); config errors are one line, so keep `WHAT`.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .map_or_else(
            || text.split_whitespace().collect::<Vec<_>>().join(" "),
            str::to_string,
        )
}
