//! Push through the gateway, against both upstreams: the upstream ends up with exactly what was
//! pushed.

use std::time::Duration;

use crate::harness::{Kind, Stack};

both_upstreams!(
    push_creates_updates_and_deletes_a_branch,
    push_force_rewrites_a_branch,
    push_tags,
    push_atomic,
    push_options_reach_the_upstream,
    push_50_mib,
);

fn push_creates_updates_and_deletes_a_branch(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("clone", &[]);
    let git = &s.git;

    git.ok(&dest, &["checkout", "-q", "-b", "topic"]);
    let first = git.commit_file(&dest, "topic.txt", b"one\n", "topic one");
    let out = git.push(&dest, &["origin", "topic"]);
    assert!(out.success(), "create: {out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/topic"), Some(first.clone()));
    assert!(s.repo.has_object(&first));

    let second = git.commit_file(&dest, "topic.txt", b"two\n", "topic two");
    let out = git.push(&dest, &["origin", "topic"]);
    assert!(out.success(), "update: {out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/topic"), Some(second.clone()));
    assert_eq!(
        s.repo.git(&["rev-parse", "topic^"]),
        first,
        "the update is a fast-forward"
    );

    // main moves too, in the same push as a new branch.
    git.ok(&dest, &["checkout", "-q", "main"]);
    let main = git.commit_file(&dest, "main.txt", b"main\n", "on main");
    let out = git.push(&dest, &["origin", "main", "topic:refs/heads/copy"]);
    assert!(out.success(), "two refs: {out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/main"), Some(main));
    assert_eq!(s.repo.rev("refs/heads/copy"), Some(second));

    let out = git.push(&dest, &["origin", "--delete", "topic"]);
    assert!(out.success(), "delete: {out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/topic"), None);
    assert!(!s.repo.refs().contains_key("refs/heads/topic"));
    assert!(s.repo.refs().contains_key("refs/heads/copy"));

    // What the client now sees through the gateway agrees.
    let refs = git.ls_remote(&s.url("repo.git")).expect("ls-remote");
    assert_eq!(refs, {
        let mut r = s.repo.refs();
        r.insert("HEAD".into(), s.repo.rev("HEAD").expect("HEAD"));
        r.insert("refs/tags/v1.0^{}".into(), s.history.main[3].clone());
        r
    });
}

fn push_force_rewrites_a_branch(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("clone", &[]);
    let git = &s.git;
    git.ok(
        &dest,
        &["checkout", "-q", "-B", "feature", "origin/feature"],
    );
    git.ok(&dest, &["reset", "-q", "--hard", "HEAD~1"]);
    let rewritten = git.commit_file(&dest, "feature.txt", b"rewritten\n", "rewrite");

    let out = git.push(&dest, &["origin", "feature"]);
    assert!(!out.success(), "a non-fast-forward needs --force: {out}");
    assert_eq!(
        s.repo.rev("refs/heads/feature"),
        Some(s.history.feature[1].clone())
    );

    let out = git.push(&dest, &["--force", "origin", "feature"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/feature"), Some(rewritten));
}

fn push_tags(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("clone", &[]);
    let git = &s.git;
    let head = git.commit_file(&dest, "tagged.txt", b"tagged\n", "tagged");
    git.ok(&dest, &["tag", "-a", "-m", "release 2.0", "v2.0"]);
    git.ok(&dest, &["tag", "lightweight-2", "HEAD~1"]);
    let annotated = git.rev(&dest, "v2.0");
    assert_ne!(annotated, head, "an annotated tag is an object of its own");

    let out = git.push(&dest, &["origin", "main", "--tags"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/tags/v2.0"), Some(annotated));
    assert_eq!(s.repo.git(&["cat-file", "-t", "refs/tags/v2.0"]), "tag");
    assert_eq!(s.repo.rev("refs/tags/v2.0^{commit}"), Some(head));
    assert_eq!(
        s.repo.rev("refs/tags/lightweight-2"),
        Some(s.history.main[4].clone())
    );

    let out = git.push(&dest, &["origin", ":refs/tags/lightweight-2"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/tags/lightweight-2"), None);
}

fn push_atomic(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("clone", &[]);
    let git = &s.git;

    // Two new branches, atomically: both land.
    git.ok(&dest, &["branch", "a1"]);
    git.ok(&dest, &["branch", "a2", "origin/feature"]);
    let out = git.push(&dest, &["--atomic", "origin", "a1", "a2"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/a1"), Some(s.history.main[4].clone()));
    assert_eq!(
        s.repo.rev("refs/heads/a2"),
        Some(s.history.feature[1].clone())
    );

    // The upstream's update hook refuses `refs/heads/blocked`: an atomic push of it together
    // with another branch must change nothing upstream.
    s.repo.install_hook(
        "update",
        "#!/bin/sh\ncase \"$1\" in refs/heads/blocked) echo \"blocked by hook\" >&2; exit 1;; esac\n",
    );
    let fresh = git.commit_file(&dest, "fresh.txt", b"fresh\n", "fresh");
    let out = git.push(
        &dest,
        &[
            "--atomic",
            "origin",
            "HEAD:refs/heads/ok-1",
            "HEAD:refs/heads/blocked",
        ],
    );
    assert!(!out.success(), "the blocked ref must fail the push: {out}");
    assert!(out.stderr.contains("blocked"), "{out}");
    assert_eq!(
        s.repo.rev("refs/heads/ok-1"),
        None,
        "atomic: no ref may land when one fails\n{out}"
    );
    assert_eq!(s.repo.rev("refs/heads/blocked"), None);

    // The same push without --atomic lands the allowed ref only.
    let out = git.push(
        &dest,
        &["origin", "HEAD:refs/heads/ok-1", "HEAD:refs/heads/blocked"],
    );
    assert!(!out.success(), "{out}");
    assert_eq!(s.repo.rev("refs/heads/ok-1"), Some(fresh));
    assert_eq!(s.repo.rev("refs/heads/blocked"), None);
}

fn push_options_reach_the_upstream(kind: Kind) {
    let s = Stack::start(kind);
    // The upstream records what its pre-receive hook saw.
    s.repo.install_hook(
        "pre-receive",
        "#!/bin/sh\n\
         cat >/dev/null\n\
         {\n\
           echo \"count=$GIT_PUSH_OPTION_COUNT\"\n\
           i=0\n\
           while [ \"$i\" -lt \"${GIT_PUSH_OPTION_COUNT:-0}\" ]; do\n\
             eval \"echo option=\\$GIT_PUSH_OPTION_$i\"\n\
             i=$((i + 1))\n\
           done\n\
         } > push-options.log\n",
    );
    let dest = s.clone("clone", &[]);
    let git = &s.git;
    let head = git.commit_file(&dest, "opt.txt", b"options\n", "with options");
    let out = git.push(
        &dest,
        &[
            "--push-option=ci.skip",
            "--push-option=reviewer=alice bob",
            "origin",
            "HEAD:refs/heads/with-options",
        ],
    );
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/with-options"), Some(head));
    let log = std::fs::read_to_string(s.repo.path.join("push-options.log"))
        .unwrap_or_else(|e| panic!("the pre-receive hook did not run: {e}\n{}", s.logs()));
    assert_eq!(log, "count=2\noption=ci.skip\noption=reviewer=alice bob\n");
}

fn push_50_mib(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("clone", &[]);
    let git = s.git.timeout(Duration::from_secs(600));
    const SIZE: usize = 50 * 1024 * 1024;
    let head = git.commit_random_file(&dest, "big.bin", SIZE, 42);
    let blob = git.ok(&dest, &["rev-parse", "HEAD:big.bin"]);

    let out = git.push(&dest, &["origin", "HEAD:refs/heads/big"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/big"), Some(head));
    assert_eq!(
        s.repo.git(&["cat-file", "-s", &blob]),
        SIZE.to_string(),
        "the whole blob reached the upstream"
    );
    s.repo
        .git(&["fsck", "--no-progress", "--connectivity-only"]);
}

/// The mirror of an HTTP upstream is refreshed when the client asks for the receive-pack
/// advertisement, while it packs; the push that follows on the same connection reuses that
/// refresh instead of fetching again on its critical path. A change made upstream after the
/// advertisement is still seen by the next push (its own advertisement refreshes again).
#[test]
fn the_push_reuses_the_mirror_refreshed_at_its_advertisement() {
    let s = Stack::start_with_env(
        Kind::Http,
        "",
        &[("GITGATE_LOG", "gitgate::upstream=debug,info")],
    );
    let dest = s.clone("clone", &[]);
    let head = s.git.commit_file(&dest, "one.txt", b"one\n", "one");
    let out = s.git.push(&dest, &["origin", "HEAD:refs/heads/main"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/main"), Some(head.clone()));
    assert!(
        s.gateway.output().contains("mirror fresh enough: reused"),
        "{}",
        s.logs()
    );

    // Someone else pushes straight to the upstream; the client builds on that and pushes
    // through the gateway: a fast-forward from a commit only the upstream had.
    let elsewhere = s.repo.commit(
        "main",
        &[("side.txt", b"side\n".as_slice())],
        "upstream only",
    );
    assert_ne!(elsewhere, head);
    s.git
        .ok(&dest, &["pull", "-q", "--ff-only", "origin", "main"]);
    let next = s.git.commit_file(&dest, "two.txt", b"two\n", "two");
    let out = s.git.push(&dest, &["origin", "HEAD:refs/heads/main"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/main"), Some(next));
    let log = crate::harness::gateway::run(
        s.gateway.dir(),
        &[
            "audit",
            "log",
            "--format",
            "json",
            "--config",
            &s.gateway.config_path.to_string_lossy(),
        ],
    );
    assert!(
        log.stdout.contains("\"op\":\"update\""),
        "recorded as a fast-forward: {log}"
    );
}
