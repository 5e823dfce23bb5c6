//! The mirror of an HTTP upstream (what push inspection reads the upstream's history from):
//! the gateway's own pushes are written through to it, so a push that follows only pushes made
//! through the gateway needs no fetch; a change made upstream behind the gateway's back is
//! fetched before the next push is inspected, so ancestry stays exact.

use crate::harness::{Kind, Stack};
use crate::policy_push::{push_lands, push_rejected};

const NO_FORCE: &str = r#"
[[rule]]
name = "no-force"
ops = ["force"]
action = "deny"
"#;

/// Whether the mirror holds object `id` (never fetching it).
fn mirror_has(s: &Stack, id: &str) -> bool {
    let mirror = s.gateway.dir().join("state/mirrors/web/repo.git");
    std::process::Command::new("git")
        .env("GIT_DIR", &mirror)
        .env("GIT_NO_LAZY_FETCH", "1")
        .args(["cat-file", "-e", id])
        .status()
        .is_ok_and(|st| st.success())
}

fn no_fetch_count(s: &Stack) -> usize {
    s.logs()
        .matches("mirror holds every advertised tip: no fetch")
        .count()
}

#[test]
fn own_pushes_are_written_through_and_upstream_changes_are_fetched() {
    let s = Stack::start_with_env(Kind::Http, NO_FORCE, &[("GITGATE_LOG", "debug")]);
    let dest = s.clone("clone", &[]);
    let git = &s.git;

    let a = git.commit_file(&dest, "a.txt", b"a\n", "a");
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/main"],
        "refs/heads/main",
        Some(&a),
    );
    assert!(
        mirror_has(&s, &a),
        "the pushed commit is in the mirror\n{}",
        s.logs()
    );

    // Only the gateway moved the upstream: the next push finds every tip in the mirror.
    let before = no_fetch_count(&s);
    let b = git.commit_file(&dest, "b.txt", b"b\n", "b");
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/main"],
        "refs/heads/main",
        Some(&b),
    );
    assert!(
        no_fetch_count(&s) > before,
        "no fetch before the second push\n{}",
        s.logs()
    );

    // Behind the gateway's back: main moves upstream. The next push is a fast-forward of the
    // new tip, which only a fetched mirror knows: an update, which `no-force` lets through.
    let c = s
        .repo
        .commit("main", &[("c.txt", b"c\n".as_slice())], "c, upstream only");
    assert!(!mirror_has(&s, &c));
    git.ok(&dest, &["pull", "-q", "--ff-only", "origin", "main"]);
    let d = git.commit_file(&dest, "d.txt", b"d\n", "d on c");
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/main"],
        "refs/heads/main",
        Some(&d),
    );
    assert!(mirror_has(&s, &c), "fetched: {}", s.logs());

    // The rule is live: rewinding main is a force push, refused.
    push_rejected(
        &s,
        &dest,
        &["origin", &format!("+{a}:refs/heads/main")],
        "refs/heads/main",
        "no-force: force-push to refs/heads/main is not allowed for agent-1",
    );
    assert_eq!(s.repo.rev("refs/heads/main"), Some(d));
}
