//! Policy unit tests: globs, precedence, the default, each condition, reasons. The fixture
//! snapshot (`fixture/tests.rs`) is the broader specification.

#![allow(clippy::unwrap_used, reason = "tests panic on purpose")]

use std::path::Path;

use super::{BlobFacts, CommitFacts, Policy, RefUpdate, Subject, Verdict};
use crate::config::{Decision, Op};

fn policy(toml: &str) -> Policy {
    match crate::config::parse(toml, Path::new("gitgate.toml")) {
        Ok(config) => Policy::new(&config),
        Err(e) => panic!("{e}"),
    }
}

const AGENTS: &[String] = &[];

fn agent(groups: &[String]) -> Subject<'_> {
    Subject {
        name: "agent-1",
        groups,
    }
}

fn update(refname: &str, op: Op) -> RefUpdate<'_> {
    RefUpdate {
        refname,
        op,
        commits: &[],
        paths: &[],
        blobs: &[],
    }
}

fn push(p: &Policy, refname: &str, op: Op) -> Verdict {
    p.decide_push(&agent(AGENTS), "local/demo", &update(refname, op))
}

fn commit(id: &str, email: &str, message: &str, signed: bool) -> CommitFacts {
    CommitFacts {
        id: id.to_string(),
        author_email: email.to_string(),
        committer_email: email.to_string(),
        message: message.to_string(),
        signed,
        ..CommitFacts::default()
    }
}

// ---- globs ----

#[test]
fn star_stays_in_a_segment_double_star_crosses() {
    let p = policy(
        r#"
[policy]
default = "deny"
[[rule]]
name = "one"
refs = ["refs/heads/agent/*"]
action = "allow"
[[rule]]
name = "many"
refs = ["refs/heads/deep/**"]
action = "allow"
"#,
    );
    let decision = |r: &str| push(&p, r, Op::Create).decision;
    assert_eq!(decision("refs/heads/agent/x"), Decision::Allow);
    assert_eq!(decision("refs/heads/agent/x/y"), Decision::Deny);
    assert_eq!(decision("refs/heads/agent"), Decision::Deny);
    assert_eq!(decision("refs/heads/deep/x"), Decision::Allow);
    assert_eq!(decision("refs/heads/deep/x/y/z"), Decision::Allow);
    assert_eq!(decision("refs/heads/deeper/x"), Decision::Deny);
}

#[test]
fn repos_are_globs_over_upstream_and_path() {
    let p = policy(
        r#"
[[rule]]
name = "r"
repos = ["local/*"]
action = "deny"
"#,
    );
    let decide = |repo: &str| {
        p.decide_push(&agent(AGENTS), repo, &update("refs/heads/x", Op::Update))
            .decision
    };
    assert_eq!(decide("local/demo"), Decision::Deny);
    assert_eq!(decide("local/a/b"), Decision::Allow);
    assert_eq!(decide("forge/demo"), Decision::Allow);
}

// ---- combination and default ----

#[test]
fn deny_beats_approve_beats_allow_and_the_first_rule_names_it() {
    let p = policy(
        r#"
[[rule]]
name = "allow-all"
action = "allow"
[[rule]]
name = "approve-main"
refs = ["refs/heads/main"]
action = "approve"
[[rule]]
name = "deny-force-main"
refs = ["refs/heads/main"]
ops = ["force"]
action = "deny"
[[rule]]
name = "deny-force"
ops = ["force"]
action = "deny"
message = "no force-pushes"
"#,
    );
    let v = push(&p, "refs/heads/x", Op::Update);
    assert_eq!(
        (v.decision, v.rule.as_deref()),
        (Decision::Allow, Some("allow-all"))
    );
    assert_eq!(
        v.reason,
        "allow-all: update of refs/heads/x is allowed for agent-1"
    );
    let v = push(&p, "refs/heads/main", Op::Update);
    assert_eq!(
        (v.decision, v.rule.as_deref()),
        (Decision::Approve, Some("approve-main"))
    );
    assert_eq!(
        v.reason,
        "approve-main: update of refs/heads/main needs approval for agent-1"
    );
    let v = push(&p, "refs/heads/main", Op::Force);
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(
        v.reason,
        "deny-force-main: force-push to refs/heads/main is not allowed for agent-1"
    );
    let v = push(&p, "refs/heads/x", Op::Force);
    assert_eq!(v.reason, "deny-force: no force-pushes");
}

#[test]
fn no_match_gives_the_default() {
    let allow = policy("");
    let v = push(&allow, "refs/heads/x", Op::Delete);
    assert_eq!(
        v,
        Verdict {
            decision: Decision::Allow,
            rule: None,
            reason: "policy.default: no rule matches deletion of refs/heads/x for agent-1; \
                     allowed by default"
                .to_string(),
        }
    );
    let deny = policy("[policy]\ndefault = \"deny\"\n");
    let v = push(&deny, "refs/heads/x", Op::Update);
    assert_eq!((v.decision, v.rule), (Decision::Deny, None));
    assert_eq!(
        v.reason,
        "policy.default: no rule allows update of refs/heads/x for agent-1"
    );
    let v = deny.decide_fetch(&agent(AGENTS), "local/demo");
    assert_eq!(
        v.reason,
        "policy.default: no rule allows fetch of local/demo for agent-1"
    );
}

#[test]
fn a_rule_without_action_never_decides() {
    let p = policy(
        r#"
[policy]
default = "deny"
[[rule]]
name = "hide"
hide_refs = ["refs/heads/internal/**"]
"#,
    );
    let v = push(&p, "refs/heads/main", Op::Update);
    assert_eq!((v.decision, v.rule), (Decision::Deny, None));
    assert_eq!(
        p.decide_fetch(&agent(AGENTS), "local/demo").rule,
        None,
        "hiding is not allowing"
    );
}

// ---- subjects and ops ----

#[test]
fn subjects_match_names_and_groups() {
    let p = policy(
        r#"
[policy]
default = "deny"
[[rule]]
name = "alice"
subjects = ["user:alice"]
action = "allow"
[[rule]]
name = "agents"
subjects = ["group:agents"]
action = "allow"
"#,
    );
    let groups = vec!["x".to_string(), "agents".to_string()];
    let decide = |who: Subject<'_>| {
        p.decide_push(&who, "local/demo", &update("refs/heads/x", Op::Update))
            .rule
    };
    let alice = Subject {
        name: "alice",
        groups: &[],
    };
    assert_eq!(decide(alice).as_deref(), Some("alice"));
    assert_eq!(decide(agent(&groups)).as_deref(), Some("agents"));
    assert_eq!(decide(agent(AGENTS)), None);
    let named_like_group = Subject {
        name: "agents",
        groups: &[],
    };
    assert_eq!(decide(named_like_group), None);
}

#[test]
fn push_rules_do_not_decide_fetch_and_fetch_rules_do_not_decide_push() {
    let p = policy(
        r#"
[policy]
default = "deny"
[[rule]]
name = "push"
action = "allow"
[[rule]]
name = "fetch"
repos = ["local/*"]
ops = ["fetch"]
action = "allow"
"#,
    );
    let v = p.decide_fetch(&agent(AGENTS), "local/demo");
    assert_eq!(v.rule.as_deref(), Some("fetch"));
    assert_eq!(
        v.reason,
        "fetch: fetch of local/demo is allowed for agent-1"
    );
    assert_eq!(p.decide_fetch(&agent(AGENTS), "other/demo").rule, None);
    assert_eq!(
        push(&p, "refs/heads/x", Op::Force).rule.as_deref(),
        Some("push")
    );
}

// ---- content conditions ----

const CONDITIONS: &str = r#"
[[rule]]
name = "paths"
paths = [".github/**"]
action = "deny"
[[rule]]
name = "blob"
max_blob_bytes = 100
action = "deny"
[[rule]]
name = "signed"
require_signed = true
action = "deny"
[[rule]]
name = "ticket"
commit_message = '^T-[0-9]+ '
action = "deny"
[[rule]]
name = "wip"
commit_message_deny = '(?i)^wip'
action = "deny"
[[rule]]
name = "email"
author_email = '@example\.com$'
action = "deny"
"#;

fn content(commits: &[CommitFacts], paths: &[String], blobs: &[BlobFacts]) -> Verdict {
    let update = RefUpdate {
        refname: "refs/heads/x",
        op: Op::Update,
        commits,
        paths,
        blobs,
    };
    policy(CONDITIONS).decide_push(&agent(AGENTS), "local/demo", &update)
}

#[test]
fn content_conditions_hold_on_their_facts_and_name_them() {
    let good = commit("c1", "a@example.com", "T-1 fix", true);
    let v = content(std::slice::from_ref(&good), &["src/a.rs".into()], &[]);
    assert_eq!(
        (v.decision, v.rule),
        (Decision::Allow, None),
        "{}",
        v.reason
    );

    let v = content(&[], &["src/a.rs".into(), ".github/ci.yml".into()], &[]);
    assert_eq!(
        v.reason,
        "paths: update of refs/heads/x is not allowed for agent-1 (changes .github/ci.yml)"
    );

    let blobs = [
        BlobFacts {
            path: "small".into(),
            size: 100,
        },
        BlobFacts {
            path: "big".into(),
            size: 101,
        },
    ];
    let v = content(&[], &[], &blobs);
    assert_eq!(v.rule.as_deref(), Some("blob"));
    assert!(
        v.reason.ends_with("(blob big is 101 bytes, over 100)"),
        "{}",
        v.reason
    );

    let unsigned = commit("c2", "a@example.com", "T-1 fix", false);
    let v = content(&[good.clone(), unsigned], &[], &[]);
    assert_eq!(v.rule.as_deref(), Some("signed"));
    assert!(
        v.reason.ends_with("(commit c2 is not signed)"),
        "{}",
        v.reason
    );

    let no_ticket = commit("c3", "a@example.com", "fix: the password is hunter2", true);
    let v = content(&[no_ticket], &[], &[]);
    assert_eq!(v.rule.as_deref(), Some("ticket"));
    assert!(
        v.reason
            .ends_with("(message of commit c3 does not match \"^T-[0-9]+ \")"),
        "{}",
        v.reason
    );
    assert!(!v.reason.contains("hunter2"), "messages are never shown");

    let wip = commit("c4", "a@example.com", "T-2 x\n\nWIP", true);
    assert_eq!(
        content(&[wip], &[], &[]).rule,
        None,
        "^ anchors at the start"
    );
    let wip = commit("c4", "a@example.com", "WIP T-2 x", true);
    let v = content(&[wip], &[], &[]);
    assert_eq!(
        v.rule.as_deref(),
        Some("ticket"),
        "first denying rule in file order"
    );

    let mut foreign = commit("c5", "a@example.com", "T-3 x", true);
    foreign.committer_email = "root@localhost".into();
    let v = content(&[foreign], &[], &[]);
    assert_eq!(v.rule.as_deref(), Some("email"));
    assert!(
        v.reason.ends_with(
            "(committer email root@localhost of commit c5 does not match \"@example\\.com$\")"
        ),
        "{}",
        v.reason
    );
}

#[test]
fn an_update_that_introduces_nothing_fails_every_content_condition() {
    let v = content(&[], &[], &[]);
    assert_eq!((v.decision, v.rule), (Decision::Allow, None));
}

#[test]
fn all_conditions_of_a_rule_must_hold_and_all_facts_are_given() {
    let p = policy(
        r#"
[[rule]]
name = "r"
refs = ["refs/heads/main"]
paths = ["ci/**"]
require_signed = true
action = "approve"
message = "ask first"
"#,
    );
    let commits = [commit("c1", "", "", false)];
    let paths = ["ci/x".to_string()];
    let mut u = RefUpdate {
        refname: "refs/heads/main",
        op: Op::Update,
        commits: &commits,
        paths: &paths,
        blobs: &[],
    };
    let v = p.decide_push(&agent(AGENTS), "local/demo", &u);
    assert_eq!(
        v.reason,
        "r: ask first (changes ci/x; commit c1 is not signed)"
    );
    u.paths = &[];
    assert_eq!(
        p.decide_push(&agent(AGENTS), "local/demo", &u).decision,
        Decision::Allow
    );
}

// ---- hidden refs ----

const HIDING: &str = r#"
[[rule]]
name = "hide-internal"
subjects = ["group:agents"]
hide_refs = ["refs/heads/internal/**", "refs/tags/secret-*"]
[[rule]]
name = "hide-drafts"
repos = ["local/*"]
hide_refs = ["refs/heads/drafts/*"]
action = "allow"
"#;

#[test]
fn ref_filter_is_the_union_over_rules_matching_subjects_and_repos() {
    let p = policy(HIDING);
    let groups = vec!["agents".to_string()];
    let f = p.ref_filter(&agent(&groups), "local/demo");
    assert!(!f.is_empty());
    assert!(f.is_hidden("refs/heads/internal/a/b"));
    assert!(f.is_hidden("refs/heads/drafts/x"));
    assert!(!f.is_hidden("refs/heads/drafts/x/y"));
    assert!(!f.is_hidden("refs/heads/main"));
    assert!(f.is_hidden("refs/tags/secret-1^{}"), "peeled tags too");
    assert_eq!(f.hidden_by("refs/tags/secret-1"), Some("hide-internal"));
    assert_eq!(f.hidden_by("refs/heads/drafts/x"), Some("hide-drafts"));

    let f = p.ref_filter(&agent(AGENTS), "local/demo");
    assert!(!f.is_hidden("refs/heads/internal/a") && f.is_hidden("refs/heads/drafts/x"));
    let f = p.ref_filter(&agent(AGENTS), "forge/demo");
    assert!(f.is_empty() && !f.is_hidden("refs/heads/drafts/x"));
}

#[test]
fn pushing_to_a_hidden_ref_is_denied_by_the_hiding_rule() {
    let p = policy(HIDING);
    let groups = vec!["agents".to_string()];
    let v = p.decide_push(
        &agent(&groups),
        "local/demo",
        &update("refs/heads/drafts/x", Op::Delete),
    );
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(
        v.reason,
        "hide-drafts: refs/heads/drafts/x is hidden from agent-1"
    );
    let v = p.decide_push(
        &agent(&groups),
        "local/demo",
        &update("refs/heads/internal/x", Op::Create),
    );
    assert_eq!(v.rule.as_deref(), Some("hide-internal"));
}

// ---- reasons ----

#[test]
fn reasons_stay_on_one_line_and_short_whatever_the_input() {
    let p = policy(CONDITIONS);
    let long = "x".repeat(5000);
    let paths = [format!(".github/a\nremote: fake\r\u{1b}[31m{long}")];
    let who = Subject {
        name: "agent\n1",
        groups: &[],
    };
    let u = RefUpdate {
        refname: "refs/heads/a\tb",
        op: Op::Update,
        commits: &[],
        paths: &paths,
        blobs: &[],
    };
    let v = p.decide_push(&who, "local/demo", &u);
    assert!(!v.reason.chars().any(char::is_control), "{:?}", v.reason);
    assert!(v.reason.len() < 600, "{}", v.reason.len());
    assert!(v.reason.starts_with(
        "paths: update of refs/heads/a\\tb is not allowed for agent\\n1 \
         (changes .github/a\\nremote: fake\\r\\u{1b}[31mxxx"
    ));
    assert!(v.reason.ends_with("...)"), "{}", v.reason);
}
