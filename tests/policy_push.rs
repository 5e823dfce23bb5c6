//! Per-ref policy on pushes, with the real git CLI through the gateway to both upstreams: each op
//! allowed and denied by a rule, subjects, ref globs, content conditions (paths, blob size,
//! signatures, commit messages, emails), tags, mixed and atomic pushes, push options, and what a
//! partly denied push leaves in the upstream's object store. After every denial the upstream's
//! refs are exactly what they were.

use std::path::Path;

use crate::harness::gateway::{new_token, token_toml};
use crate::harness::process::Output;
use crate::harness::{Kind, Stack};

both_upstreams!(
    each_op_denied_by_its_rule,
    each_op_allowed_by_its_rule_under_default_deny,
    subjects_user_group_and_star,
    ref_globs_star_stays_in_a_segment_double_star_crosses,
    fast_forward_through_another_upstream_ref_is_an_update,
    paths_rule_hit_by_an_earlier_commit,
    max_blob_bytes,
    require_signed,
    commit_message_rules,
    author_and_committer_email,
    tag_creation_and_deletion_rules,
    mixed_push_without_atomic_lands_the_allowed_ref,
    mixed_push_with_atomic_lands_nothing,
    push_options_reach_the_upstream_through_a_filtered_push,
    partly_denied_push_leaves_no_denied_objects_upstream,
    approve_is_rejected_until_approvals_exist,
);

/// The short name git prints for `refname` in its push summary.
fn short(refname: &str) -> &str {
    refname
        .strip_prefix("refs/heads/")
        .or_else(|| refname.strip_prefix("refs/tags/"))
        .unwrap_or(refname)
}

/// Asserts that the push `out` failed and that `refname` was rejected with exactly `reason`:
/// git's `! [remote rejected] ... <ref> (<reason>)` summary line and the gateway's
/// `remote: gitgate: <ref> rejected: <reason>` explanation.
#[track_caller]
pub(crate) fn assert_rejected(s: &Stack, out: &Output, refname: &str, reason: &str) {
    assert!(
        !out.success(),
        "the push of {refname} must fail: {out}\n{}",
        s.logs()
    );
    let summary = format!("{} ({reason})", short(refname));
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("! [remote rejected]") && l.trim_end().ends_with(&summary)),
        "no `! [remote rejected] ... {summary}` line: {out}\n{}",
        s.logs()
    );
    let explanation = format!("remote: gitgate: {refname} rejected: {reason}");
    assert!(
        out.stderr.lines().any(|l| l.trim_end() == explanation),
        "no `{explanation}` line: {out}"
    );
}

/// Pushes `args` from `dest` with `git` (the stack's client unless given), expects `refname`
/// rejected with `reason`, and checks that no upstream ref moved.
#[track_caller]
pub(crate) fn push_rejected(s: &Stack, dest: &Path, args: &[&str], refname: &str, reason: &str) {
    push_rejected_by(s, &s.git, dest, args, refname, reason);
}

#[track_caller]
fn push_rejected_by(
    s: &Stack,
    git: &crate::harness::Git,
    dest: &Path,
    args: &[&str],
    refname: &str,
    reason: &str,
) -> Output {
    let before = s.repo.refs();
    let out = git.push(dest, args);
    assert_rejected(s, &out, refname, reason);
    assert_eq!(
        s.repo.refs(),
        before,
        "a denied push changed the upstream's refs: {out}"
    );
    out
}

/// Pushes `args` from `dest`, expects success and `refname` at `expected` upstream (`None`:
/// deleted).
#[track_caller]
pub(crate) fn push_lands(
    s: &Stack,
    dest: &Path,
    args: &[&str],
    refname: &str,
    expected: Option<&str>,
) {
    push_lands_by(s, &s.git, dest, args, refname, expected);
}

#[track_caller]
fn push_lands_by(
    s: &Stack,
    git: &crate::harness::Git,
    dest: &Path,
    args: &[&str],
    refname: &str,
    expected: Option<&str>,
) {
    let out = git.push(dest, args);
    assert!(out.success(), "push {args:?}: {out}\n{}", s.logs());
    assert_eq!(
        s.repo.rev(refname).as_deref(),
        expected,
        "{refname} upstream after push {args:?}: {out}"
    );
}

/// The stack with `rules` (TOML) added to the gateway's config.
fn stack(kind: Kind, rules: &str) -> Stack {
    Stack::start_with(kind, rules)
}

/// Upstream refs `refs/heads/{u,f,d}/x` at `main[3]`, written straight into the upstream.
fn op_refs(s: &Stack) {
    for r in ["u", "f", "d"] {
        s.repo.git(&[
            "update-ref",
            &format!("refs/heads/{r}/x"),
            &s.history.main[3],
        ]);
    }
}

fn each_op_denied_by_its_rule(kind: Kind) {
    let s = stack(
        kind,
        r#"
[[rule]]
name = "no-create"
refs = ["refs/heads/c/**"]
ops = ["create"]
action = "deny"

[[rule]]
name = "no-update"
refs = ["refs/heads/u/**"]
ops = ["update"]
action = "deny"

[[rule]]
name = "no-force"
refs = ["refs/heads/f/**"]
ops = ["force"]
action = "deny"

[[rule]]
name = "no-delete"
refs = ["refs/heads/d/**"]
ops = ["delete"]
action = "deny"
"#,
    );
    op_refs(&s);
    let dest = s.clone("clone", &[]);
    let (m3, m4, f1) = (
        s.history.main[3].as_str(),
        s.history.main[4].as_str(),
        s.history.feature[1].as_str(),
    );

    // Each rule denies its op...
    push_rejected(
        &s,
        &dest,
        &["origin", &format!("{m4}:refs/heads/c/new")],
        "refs/heads/c/new",
        "no-create: creation of refs/heads/c/new is not allowed for agent-1",
    );
    push_rejected(
        &s,
        &dest,
        &["origin", &format!("{m4}:refs/heads/u/x")],
        "refs/heads/u/x",
        "no-update: update of refs/heads/u/x is not allowed for agent-1",
    );
    push_rejected(
        &s,
        &dest,
        &["origin", &format!("+{f1}:refs/heads/f/x")],
        "refs/heads/f/x",
        "no-force: force-push to refs/heads/f/x is not allowed for agent-1",
    );
    // A rewind is a force too: main[3] -> main[2].
    push_rejected(
        &s,
        &dest,
        &["origin", &format!("+{}:refs/heads/f/x", s.history.main[2])],
        "refs/heads/f/x",
        "no-force: force-push to refs/heads/f/x is not allowed for agent-1",
    );
    push_rejected(
        &s,
        &dest,
        &["origin", ":refs/heads/d/x"],
        "refs/heads/d/x",
        "no-delete: deletion of refs/heads/d/x is not allowed for agent-1",
    );
    assert_eq!(s.repo.rev("refs/heads/u/x").as_deref(), Some(m3));

    // ...and only its op: the others pass on the same refs.
    push_lands(
        &s,
        &dest,
        &["origin", &format!("{m4}:refs/heads/f/x")],
        "refs/heads/f/x",
        Some(m4),
    );
    push_lands(
        &s,
        &dest,
        &["origin", &format!("+{f1}:refs/heads/u/x")],
        "refs/heads/u/x",
        Some(f1),
    );
    push_lands(
        &s,
        &dest,
        &["origin", &format!("{m4}:refs/heads/d/new")],
        "refs/heads/d/new",
        Some(m4),
    );
    push_lands(
        &s,
        &dest,
        &["origin", ":refs/heads/f/x"],
        "refs/heads/f/x",
        None,
    );
    push_lands(
        &s,
        &dest,
        &["origin", &format!("{m4}:refs/heads/d/x")],
        "refs/heads/d/x",
        Some(m4),
    );
}

fn each_op_allowed_by_its_rule_under_default_deny(kind: Kind) {
    let s = stack(
        kind,
        r#"
[policy]
default = "deny"

[[rule]]
name = "may-fetch"
ops = ["fetch"]
action = "allow"

[[rule]]
name = "may-create"
refs = ["refs/heads/c/**"]
ops = ["create"]
action = "allow"

[[rule]]
name = "may-update"
refs = ["refs/heads/u/**"]
ops = ["update"]
action = "allow"

[[rule]]
name = "may-force"
refs = ["refs/heads/f/**"]
ops = ["force"]
action = "allow"

[[rule]]
name = "may-delete"
refs = ["refs/heads/d/**"]
ops = ["delete"]
action = "allow"
"#,
    );
    op_refs(&s);
    let dest = s.clone("clone", &[]);
    let (m3, m4, f1) = (
        s.history.main[3].as_str(),
        s.history.main[4].as_str(),
        s.history.feature[1].as_str(),
    );

    push_lands(
        &s,
        &dest,
        &["origin", &format!("{m3}:refs/heads/c/new")],
        "refs/heads/c/new",
        Some(m3),
    );
    push_lands(
        &s,
        &dest,
        &["origin", &format!("{m4}:refs/heads/u/x")],
        "refs/heads/u/x",
        Some(m4),
    );
    push_lands(
        &s,
        &dest,
        &["origin", &format!("+{f1}:refs/heads/f/x")],
        "refs/heads/f/x",
        Some(f1),
    );
    push_lands(
        &s,
        &dest,
        &["origin", ":refs/heads/d/x"],
        "refs/heads/d/x",
        None,
    );

    // Every other op falls through to the default.
    push_rejected(
        &s,
        &dest,
        &["origin", &format!("{m4}:refs/heads/u/new")],
        "refs/heads/u/new",
        "policy.default: no rule allows creation of refs/heads/u/new for agent-1",
    );
    push_rejected(
        &s,
        &dest,
        &["origin", &format!("{m4}:refs/heads/c/new")],
        "refs/heads/c/new",
        "policy.default: no rule allows update of refs/heads/c/new for agent-1",
    );
    push_rejected(
        &s,
        &dest,
        &["origin", &format!("+{f1}:refs/heads/u/x")],
        "refs/heads/u/x",
        "policy.default: no rule allows force-push to refs/heads/u/x for agent-1",
    );
    push_rejected(
        &s,
        &dest,
        &["origin", ":refs/heads/c/new"],
        "refs/heads/c/new",
        "policy.default: no rule allows deletion of refs/heads/c/new for agent-1",
    );
    // `main` is under no rule at all.
    let head = s.git.commit_file(&dest, "main.txt", b"main\n", "on main");
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/main"],
        "refs/heads/main",
        "policy.default: no rule allows update of refs/heads/main for agent-1",
    );
    assert!(!s.repo.has_object(&head));
}

fn subjects_user_group_and_star(kind: Kind) {
    let other = new_token();
    let config = format!(
        r#"{}
[[rule]]
name = "for-agent-2"
subjects = ["user:agent-2"]
refs = ["refs/heads/by-user"]
action = "deny"

[[rule]]
name = "for-agents"
subjects = ["group:agents"]
refs = ["refs/heads/by-group"]
action = "deny"

[[rule]]
name = "for-everyone"
subjects = ["*"]
refs = ["refs/heads/by-star"]
action = "deny"

# A user is not a group and a group is not a user.
[[rule]]
name = "names-are-not-groups"
subjects = ["user:agents", "group:agent-1", "user:reviewers"]
refs = ["refs/heads/confusion"]
action = "deny"
"#,
        token_toml("agent-2", &other, &["reviewers"])
    );
    let s = stack(kind, &config);
    let dest = s.clone("clone", &[]);
    let head = s.history.main[4].as_str();
    let as_2 = s
        .gateway
        .url_with_token("agent", &other, &format!("{}/repo.git", s.name));
    let git = &s.git;

    // agent-1, group agents.
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/by-user"],
        "refs/heads/by-user",
        Some(head),
    );
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/by-group"],
        "refs/heads/by-group",
        "for-agents: creation of refs/heads/by-group is not allowed for agent-1",
    );
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/by-star"],
        "refs/heads/by-star",
        "for-everyone: creation of refs/heads/by-star is not allowed for agent-1",
    );
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/confusion"],
        "refs/heads/confusion",
        Some(head),
    );

    // agent-2, group reviewers, with a commit of its own.
    let head2 = git.commit_file(&dest, "two.txt", b"two\n", "by agent-2");
    let head = head2.as_str();
    push_rejected_by(
        &s,
        git,
        &dest,
        &[&as_2, "HEAD:refs/heads/by-user"],
        "refs/heads/by-user",
        "for-agent-2: update of refs/heads/by-user is not allowed for agent-2",
    );
    push_lands_by(
        &s,
        git,
        &dest,
        &[&as_2, "HEAD:refs/heads/by-group"],
        "refs/heads/by-group",
        Some(head),
    );
    push_rejected_by(
        &s,
        git,
        &dest,
        &[&as_2, "HEAD:refs/heads/by-star"],
        "refs/heads/by-star",
        "for-everyone: creation of refs/heads/by-star is not allowed for agent-2",
    );
    push_lands_by(
        &s,
        git,
        &dest,
        &[&as_2, ":refs/heads/confusion"],
        "refs/heads/confusion",
        None,
    );
}

fn ref_globs_star_stays_in_a_segment_double_star_crosses(kind: Kind) {
    let s = stack(
        kind,
        r#"
[[rule]]
name = "one-level"
refs = ["refs/heads/agent/*"]
action = "deny"

[[rule]]
name = "any-depth"
refs = ["refs/heads/deep/**"]
action = "deny"

[[rule]]
name = "only-repo"
repos = ["*/repo"]
refs = ["refs/heads/r"]
action = "deny"
"#,
    );
    let dest = s.clone("clone", &[]);
    let head = s.history.main[4].as_str();
    for (refname, rule) in [
        ("refs/heads/agent/x", "one-level"),
        ("refs/heads/deep/x", "any-depth"),
        ("refs/heads/deep/x/y/z", "any-depth"),
        ("refs/heads/r", "only-repo"),
    ] {
        push_rejected(
            &s,
            &dest,
            &["origin", &format!("HEAD:{refname}")],
            refname,
            &format!("{rule}: creation of {refname} is not allowed for agent-1"),
        );
    }
    for refname in [
        "refs/heads/agent/x/y",
        "refs/heads/agentx",
        "refs/heads/deep",
        "refs/heads/r/x",
    ] {
        push_lands(
            &s,
            &dest,
            &["origin", &format!("HEAD:{refname}")],
            refname,
            Some(head),
        );
    }
    // `repos` globs: the nested repository `team/app` is not `*/repo`.
    let app = s.work("app");
    s.git.clone(&s.url("team/app.git"), &app, &[]).assert_ok();
    let tip = s.git.rev(&app, "HEAD");
    let out = s.git.push(&app, &["origin", "HEAD:refs/heads/r"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.nested.rev("refs/heads/r"), Some(tip));
}

/// Upstream `a` at C1 and `b` at C2 (a child of C1); the client pushes `a` from C1 to C3, a
/// child of C2. The pack holds C3 only (the client knows the upstream has C2), so only the
/// upstream's history shows that C1 is an ancestor of C3: an `update`, which a rule denying
/// `force` lets through. `b` moves on the upstream behind the gateway's back, after a first push,
/// so an HTTP upstream's mirror must be refreshed to see C2.
fn fast_forward_through_another_upstream_ref_is_an_update(kind: Kind) {
    let s = stack(
        kind,
        r#"
[[rule]]
name = "no-force"
ops = ["force"]
action = "deny"
"#,
    );
    let c1 = s.history.main[4].clone();
    s.repo.git(&["update-ref", "refs/heads/a", &c1]);
    let dest = s.clone("clone", &[]);
    let git = &s.git;
    let warm = git.commit_file(&dest, "warm.txt", b"warm\n", "warm up");
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/warm"],
        "refs/heads/warm",
        Some(&warm),
    );

    s.repo.git(&["update-ref", "refs/heads/b", &c1]);
    let c2 = s
        .repo
        .commit("b", &[("b.txt", b"b\n".as_slice())], "c2 on b");
    git.ok(&dest, &["fetch", "-q", "origin"]);
    git.ok(&dest, &["checkout", "-q", "-b", "work", "origin/b"]);
    let c3 = git.commit_file(&dest, "c3.txt", b"c3\n", "c3 on top of c2");
    assert_eq!(git.rev(&dest, "HEAD^"), c2);
    assert_eq!(s.repo.rev("refs/heads/a"), Some(c1.clone()));

    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/a"],
        "refs/heads/a",
        Some(&c3),
    );

    // The rule is live: a real force-push of `a` is refused.
    push_rejected(
        &s,
        &dest,
        &["origin", &format!("+{c1}:refs/heads/a")],
        "refs/heads/a",
        "no-force: force-push to refs/heads/a is not allowed for agent-1",
    );
}

fn paths_rule_hit_by_an_earlier_commit(kind: Kind) {
    let s = stack(
        kind,
        r#"
[[rule]]
name = "no-workflows"
paths = [".github/workflows/**"]
action = "deny"
message = "agents may not change CI workflows"
"#,
    );
    let dest = s.clone("clone", &[]);
    let git = &s.git;
    // Three commits: the first adds a workflow, the second deletes it again, the third touches
    // something else. The push's net change holds no workflow; its first commit does.
    git.ok(&dest, &["checkout", "-q", "-b", "sneaky"]);
    git.commit_file(
        &dest,
        ".github/workflows/ci.yml",
        b"on: push\n",
        "add a workflow",
    );
    git.ok(&dest, &["rm", "-q", ".github/workflows/ci.yml"]);
    git.ok(&dest, &["commit", "-q", "-m", "remove it again"]);
    let tip = git.commit_file(&dest, "notes.txt", b"notes\n", "notes");
    assert_eq!(
        git.ok(&dest, &["diff", "--name-only", "origin/main", "HEAD"]),
        "notes.txt"
    );
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/main"],
        "refs/heads/main",
        "no-workflows: agents may not change CI workflows (changes .github/workflows/ci.yml)",
    );
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/sneaky"],
        "refs/heads/sneaky",
        "no-workflows: agents may not change CI workflows (changes .github/workflows/ci.yml)",
    );
    assert!(!s.repo.has_object(&tip));

    // A workflow-free push passes; a deeper path outside the glob too.
    git.ok(&dest, &["checkout", "-q", "-b", "clean", "origin/main"]);
    git.commit_file(&dest, ".github/CODEOWNERS", b"* @team\n", "owners");
    let clean = git.commit_file(&dest, "docs/workflows/how.md", b"how\n", "docs");
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/main"],
        "refs/heads/main",
        Some(&clean),
    );
}

fn max_blob_bytes(kind: Kind) {
    let s = stack(
        kind,
        r#"
[[rule]]
name = "small-blobs"
max_blob_bytes = 1000
action = "deny"
"#,
    );
    let dest = s.clone("clone", &[]);
    let git = &s.git;
    git.ok(&dest, &["checkout", "-q", "-b", "big"]);
    git.commit_file(&dest, "data/big.bin", &[b'x'; 2000], "big blob");
    git.commit_file(&dest, "data/bigger.bin", &[b'y'; 3000], "bigger blob");
    let small = git.commit_file(&dest, "small.txt", b"small\n", "small");
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/big"],
        "refs/heads/big",
        "small-blobs: creation of refs/heads/big is not allowed for agent-1 \
         (blob data/bigger.bin is 3000 bytes, over 1000)",
    );
    assert!(!s.repo.has_object(&small));

    // Exactly the limit is fine; so is a branch of existing (even big) upstream blobs.
    git.ok(&dest, &["checkout", "-q", "-b", "edge", "origin/main"]);
    let edge = git.commit_file(&dest, "edge.bin", &[b'z'; 1000], "at the limit");
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/edge"],
        "refs/heads/edge",
        Some(&edge),
    );
    git.ok(&dest, &["checkout", "-q", "-b", "copy", "origin/main"]);
    git.ok(&dest, &["mv", "assets/blob.bin", "assets/moved.bin"]);
    git.ok(&dest, &["commit", "-q", "-m", "move the 256 KiB blob"]);
    let moved = git.rev(&dest, "HEAD");
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/copy"],
        "refs/heads/copy",
        Some(&moved),
    );
}

fn require_signed(kind: Kind) {
    let s = stack(
        kind,
        r#"
[[rule]]
name = "signed-only"
refs = ["refs/heads/signed/**"]
require_signed = true
action = "deny"
"#,
    );
    let dest = s.clone("clone", &[]);
    let key = s.tmp.join("signing_key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f"])
        .arg(&key)
        .status()
        .expect("run ssh-keygen");
    assert!(keygen.success(), "ssh-keygen failed");
    let key = key.to_string_lossy().into_owned();
    let signing = s
        .git
        .config("gpg.format=ssh")
        .config(&format!("user.signingkey={key}"));
    let git = &s.git;

    git.ok(&dest, &["checkout", "-q", "-b", "unsigned"]);
    let unsigned = git.commit_file(&dest, "unsigned.txt", b"unsigned\n", "unsigned");
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/signed/one"],
        "refs/heads/signed/one",
        &format!(
            "signed-only: creation of refs/heads/signed/one is not allowed for agent-1 \
             (commit {unsigned} is not signed)"
        ),
    );
    // Outside the rule's refs an unsigned commit is fine.
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/plain"],
        "refs/heads/plain",
        Some(&unsigned),
    );

    // A signed commit on top of a signed one passes.
    git.ok(&dest, &["checkout", "-q", "-b", "signed", "origin/main"]);
    std::fs::write(dest.join("signed.txt"), "signed\n").expect("write");
    git.ok(&dest, &["add", "signed.txt"]);
    signing.ok(&dest, &["commit", "-q", "-S", "-m", "signed one"]);
    std::fs::write(dest.join("signed.txt"), "signed twice\n").expect("write");
    signing.ok(&dest, &["commit", "-q", "-a", "-S", "-m", "signed two"]);
    let signed = git.rev(&dest, "HEAD");
    assert!(
        git.ok(&dest, &["cat-file", "commit", "HEAD"])
            .contains("gpgsig -----BEGIN SSH SIGNATURE-----"),
        "the commit carries an SSH signature"
    );
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/signed/two"],
        "refs/heads/signed/two",
        Some(&signed),
    );

    // One unsigned commit below a signed tip is enough to deny.
    git.ok(&dest, &["checkout", "-q", "-b", "mixed", "origin/main"]);
    let below = git.commit_file(&dest, "mixed.txt", b"mixed\n", "unsigned below");
    std::fs::write(dest.join("mixed.txt"), "mixed, signed\n").expect("write");
    signing.ok(&dest, &["commit", "-q", "-a", "-S", "-m", "signed tip"]);
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/signed/three"],
        "refs/heads/signed/three",
        &format!(
            "signed-only: creation of refs/heads/signed/three is not allowed for agent-1 \
             (commit {below} is not signed)"
        ),
    );
}

fn commit_message_rules(kind: Kind) {
    let s = stack(
        kind,
        r#"
[[rule]]
name = "ticket"
commit_message = "^[A-Z]+-[0-9]+: "
action = "deny"
message = "start commit messages with a ticket id"

[[rule]]
name = "no-wip"
commit_message_deny = "(?i)\\bwip\\b"
action = "deny"
"#,
    );
    let dest = s.clone("clone", &[]);
    let git = &s.git;

    git.ok(&dest, &["checkout", "-q", "-b", "one"]);
    let bad = git.commit_file(&dest, "a.txt", b"a\n", "fix things");
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/one"],
        "refs/heads/one",
        &format!(
            "ticket: start commit messages with a ticket id \
             (message of commit {bad} does not match \"^[A-Z]+-[0-9]+: \")"
        ),
    );

    // The offending commit is below a good one: still denied, and named.
    git.commit_file(&dest, "b.txt", b"b\n", "ABC-1: a good message");
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/one"],
        "refs/heads/one",
        &format!(
            "ticket: start commit messages with a ticket id \
             (message of commit {bad} does not match \"^[A-Z]+-[0-9]+: \")"
        ),
    );

    git.ok(&dest, &["checkout", "-q", "-b", "two", "origin/main"]);
    let wip = git.commit_file(&dest, "c.txt", b"c\n", "ABC-2: WIP on c");
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/two"],
        "refs/heads/two",
        &format!(
            "no-wip: creation of refs/heads/two is not allowed for agent-1 \
             (message of commit {wip} matches \"(?i)\\bwip\\b\")"
        ),
    );

    git.ok(&dest, &["checkout", "-q", "-b", "three", "origin/main"]);
    git.commit_file(&dest, "d.txt", b"d\n", "ABC-3: wipe the cache");
    let good = git.commit_file(&dest, "e.txt", b"e\n", "XY-42: and more\n\nwith a body");
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/three"],
        "refs/heads/three",
        Some(&good),
    );
    // A deletion introduces no commit: the message rules do not apply.
    push_lands(
        &s,
        &dest,
        &["origin", ":refs/heads/three"],
        "refs/heads/three",
        None,
    );
}

fn author_and_committer_email(kind: Kind) {
    let s = stack(
        kind,
        r#"
[[rule]]
name = "corp-email"
refs = ["refs/heads/**"]
author_email = "@example\\.com$"
action = "deny"
"#,
    );
    let dest = s.clone("clone", &[]);
    let git = &s.git;

    git.ok(&dest, &["checkout", "-q", "-b", "by-author"]);
    let foreign_author = git
        .env("GIT_AUTHOR_EMAIL", "mallory@evil.test")
        .commit_file(&dest, "a.txt", b"a\n", "foreign author");
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/by-author"],
        "refs/heads/by-author",
        &format!(
            "corp-email: creation of refs/heads/by-author is not allowed for agent-1 \
             (author email mallory@evil.test of commit {foreign_author} does not match \
             \"@example\\.com$\")"
        ),
    );

    git.ok(
        &dest,
        &["checkout", "-q", "-b", "by-committer", "origin/main"],
    );
    let foreign_committer = git
        .env("GIT_COMMITTER_EMAIL", "bot@example.com.evil.test")
        .commit_file(&dest, "b.txt", b"b\n", "foreign committer");
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/by-committer"],
        "refs/heads/by-committer",
        &format!(
            "corp-email: creation of refs/heads/by-committer is not allowed for agent-1 \
             (committer email bot@example.com.evil.test of commit {foreign_committer} does not \
             match \"@example\\.com$\")"
        ),
    );

    git.ok(&dest, &["checkout", "-q", "-b", "fine", "origin/main"]);
    let fine = git.commit_file(&dest, "c.txt", b"c\n", "ours");
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/fine"],
        "refs/heads/fine",
        Some(&fine),
    );
}

fn tag_creation_and_deletion_rules(kind: Kind) {
    let s = stack(
        kind,
        r#"
[[rule]]
name = "no-release-tags"
refs = ["refs/tags/v*"]
ops = ["create"]
action = "deny"
message = "release tags are made by CI"

[[rule]]
name = "keep-release-tags"
refs = ["refs/tags/v*"]
ops = ["delete"]
action = "deny"
"#,
    );
    let dest = s.clone("clone", &[]);
    let git = &s.git;
    let head = git.commit_file(&dest, "tagged.txt", b"tagged\n", "tagged");
    git.ok(&dest, &["tag", "-a", "-m", "release 2.0", "v2.0"]);
    git.ok(&dest, &["tag", "-a", "-m", "nightly", "nightly-1"]);
    let release = git.rev(&dest, "v2.0");
    let nightly = git.rev(&dest, "nightly-1");

    push_rejected(
        &s,
        &dest,
        &["origin", "refs/tags/v2.0"],
        "refs/tags/v2.0",
        "no-release-tags: release tags are made by CI",
    );
    assert!(
        !s.repo.has_object(&release),
        "the denied tag object reached the upstream"
    );
    push_lands(
        &s,
        &dest,
        &["origin", "refs/tags/nightly-1"],
        "refs/tags/nightly-1",
        Some(&nightly),
    );
    assert_eq!(
        s.repo.git(&["cat-file", "-t", "refs/tags/nightly-1"]),
        "tag"
    );
    assert_eq!(s.repo.rev("refs/tags/nightly-1^{commit}"), Some(head));

    push_rejected(
        &s,
        &dest,
        &["origin", ":refs/tags/v1.0"],
        "refs/tags/v1.0",
        "keep-release-tags: deletion of refs/tags/v1.0 is not allowed for agent-1",
    );
    push_lands(
        &s,
        &dest,
        &["origin", ":refs/tags/light"],
        "refs/tags/light",
        None,
    );
    push_lands(
        &s,
        &dest,
        &["origin", ":refs/tags/nightly-1"],
        "refs/tags/nightly-1",
        None,
    );
    assert!(s.repo.rev("refs/tags/v1.0").is_some());
}

const BLOCKED: &str = r#"
[[rule]]
name = "blocked"
refs = ["refs/heads/blocked"]
action = "deny"
message = "nobody pushes to blocked"
"#;

fn mixed_push_without_atomic_lands_the_allowed_ref(kind: Kind) {
    let s = stack(kind, BLOCKED);
    let dest = s.clone("clone", &[]);
    let fresh = s.git.commit_file(&dest, "fresh.txt", b"fresh\n", "fresh");
    let out = s.git.push(
        &dest,
        &["origin", "HEAD:refs/heads/ok-1", "HEAD:refs/heads/blocked"],
    );
    assert_rejected(
        &s,
        &out,
        "refs/heads/blocked",
        "blocked: nobody pushes to blocked",
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("* [new branch]") && l.trim_end().ends_with("HEAD -> ok-1")),
        "the allowed ref is reported as pushed: {out}"
    );
    assert_eq!(s.repo.rev("refs/heads/ok-1"), Some(fresh));
    assert_eq!(s.repo.rev("refs/heads/blocked"), None);
}

fn mixed_push_with_atomic_lands_nothing(kind: Kind) {
    let s = stack(kind, BLOCKED);
    let dest = s.clone("clone", &[]);
    let fresh = s.git.commit_file(&dest, "fresh.txt", b"fresh\n", "fresh");
    let before = s.repo.refs();
    let out = s.git.push(
        &dest,
        &[
            "--atomic",
            "origin",
            "HEAD:refs/heads/ok-2",
            "HEAD:refs/heads/blocked",
            "HEAD:refs/heads/main",
        ],
    );
    assert_rejected(
        &s,
        &out,
        "refs/heads/blocked",
        "blocked: nobody pushes to blocked",
    );
    for refname in ["refs/heads/ok-2", "refs/heads/main"] {
        assert_rejected(
            &s,
            &out,
            refname,
            "atomic push failed: refs/heads/blocked was rejected",
        );
    }
    assert_eq!(s.repo.refs(), before, "atomic: nothing may land\n{out}");
    assert!(
        !s.repo.has_object(&fresh),
        "atomic: no object may land\n{out}"
    );
}

fn push_options_reach_the_upstream_through_a_filtered_push(kind: Kind) {
    let s = stack(kind, BLOCKED);
    // The upstream records what its pre-receive hook saw: the options and the ref updates.
    s.repo.install_hook(
        "pre-receive",
        "#!/bin/sh\n\
         {\n\
           echo \"count=$GIT_PUSH_OPTION_COUNT\"\n\
           i=0\n\
           while [ \"$i\" -lt \"${GIT_PUSH_OPTION_COUNT:-0}\" ]; do\n\
             eval \"echo option=\\$GIT_PUSH_OPTION_$i\"\n\
             i=$((i + 1))\n\
           done\n\
           while read old new ref; do echo \"update=$ref\"; done\n\
         } > push-options.log\n",
    );
    let dest = s.clone("clone", &[]);
    let head = s
        .git
        .commit_file(&dest, "opt.txt", b"options\n", "with options");
    let out = s.git.push(
        &dest,
        &[
            "--push-option=ci.skip",
            "--push-option=reviewer=alice bob",
            "origin",
            "HEAD:refs/heads/with-options",
            "HEAD:refs/heads/blocked",
        ],
    );
    assert_rejected(
        &s,
        &out,
        "refs/heads/blocked",
        "blocked: nobody pushes to blocked",
    );
    assert_eq!(s.repo.rev("refs/heads/with-options"), Some(head));
    let log = std::fs::read_to_string(s.repo.path.join("push-options.log"))
        .unwrap_or_else(|e| panic!("the pre-receive hook did not run: {e}\n{}", s.logs()));
    assert_eq!(
        log, "count=2\noption=ci.skip\noption=reviewer=alice bob\nupdate=refs/heads/with-options\n",
        "the upstream saw the options and only the allowed ref"
    );
}

/// A push of two refs, one denied: the upstream gets the allowed ref's objects (including a
/// blob both refs share) and none of the objects only the denied ref brings.
fn partly_denied_push_leaves_no_denied_objects_upstream(kind: Kind) {
    let s = stack(
        kind,
        r#"
[[rule]]
name = "no-private"
refs = ["refs/heads/private/**"]
action = "deny"
"#,
    );
    let dest = s.clone("clone", &[]);
    let git = &s.git;
    let shared = b"shared by both refs\n";

    git.ok(&dest, &["checkout", "-q", "-b", "public"]);
    git.commit_file(&dest, "shared.txt", shared, "shared");
    let public = git.commit_file(&dest, "public.txt", b"public content\n", "public");
    let public_blob = git.ok(&dest, &["rev-parse", "HEAD:public.txt"]);
    let shared_blob = git.ok(&dest, &["rev-parse", "HEAD:shared.txt"]);

    git.ok(&dest, &["checkout", "-q", "-b", "private", "origin/main"]);
    git.commit_file(&dest, "shared.txt", shared, "shared too");
    // The private ref's tree is an object of its own (one more entry than the public one).
    let private = git.commit_file(
        &dest,
        "private/secret.txt",
        b"only the denied ref brings this blob\n",
        "private",
    );
    let private_blob = git.ok(&dest, &["rev-parse", "HEAD:private/secret.txt"]);
    let private_tree = git.rev(&dest, "HEAD^{tree}");

    let out = git.push(
        &dest,
        &[
            "origin",
            "public:refs/heads/public",
            "private:refs/heads/private/x",
        ],
    );
    assert_rejected(
        &s,
        &out,
        "refs/heads/private/x",
        "no-private: creation of refs/heads/private/x is not allowed for agent-1",
    );
    assert_eq!(s.repo.rev("refs/heads/public"), Some(public.clone()));
    assert_eq!(s.repo.rev("refs/heads/private/x"), None);
    for (what, id) in [
        ("the public commit", &public),
        ("the public blob", &public_blob),
        ("the shared blob", &shared_blob),
    ] {
        assert!(s.repo.has_object(id), "{what} {id} is missing upstream");
    }
    for (what, id) in [
        ("the private commit", &private),
        ("the private tree", &private_tree),
        ("the private blob", &private_blob),
    ] {
        assert!(
            !s.repo.has_object(id),
            "{what} {id} reached the upstream\n{}",
            s.logs()
        );
    }
    s.repo
        .git(&["fsck", "--no-progress", "--connectivity-only"]);
}

/// With `wait_seconds = 0` an `approve` decision is a rejection naming the pending approval
/// (tests/approval.rs covers the rest), and nothing of it reaches the upstream.
fn approve_is_rejected_until_approvals_exist(kind: Kind) {
    let s = stack(
        kind,
        r#"
[[rule]]
name = "review-main"
refs = ["refs/heads/main"]
ops = ["update", "force"]
action = "approve"

[approval]
wait_seconds = 0
"#,
    );
    let dest = s.clone("clone", &[]);
    let head = s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let before = s.repo.refs();
    let out = s.git.push(&dest, &["origin", "HEAD:refs/heads/main"]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr.lines().any(|l| l.contains("! [remote rejected]")
            && l.contains("main (review-main: update of refs/heads/main needs approval for agent-1; approval pending ap-")),
        "{out}"
    );
    assert_eq!(s.repo.refs(), before);
    assert!(!s.repo.has_object(&head));
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/elsewhere"],
        "refs/heads/elsewhere",
        Some(&head),
    );
}
