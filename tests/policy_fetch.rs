//! `fetch` rules and hidden refs, with the real git CLI (protocol v0, v1 and v2) and raw
//! requests through the gateway to both upstreams: a denied fetch is a 403 with the reason;
//! hidden refs are in no listing, cannot be fetched by name or by id, and cannot be pushed.

use std::collections::BTreeMap;

use crate::harness::gateway::{new_token, token_toml};
use crate::harness::{http, Kind, Stack};
use crate::policy_push::{push_lands, push_rejected};

both_upstreams!(
    fetch_rule_denies_clone_fetch_and_ls_remote,
    default_deny_needs_a_fetch_allow_rule,
    hidden_refs_are_in_no_listing,
    hidden_refs_cannot_be_fetched,
    hidden_refs_cannot_be_pushed,
);

const UPLOAD_REFS: &str = "repo.git/info/refs?service=git-upload-pack";

/// One pkt-line holding `line`.
fn pkt(line: &str) -> String {
    format!("{:04x}{line}", line.len() + 4)
}

/// The raw `info/refs` and `git-upload-pack` answers for the token `token`, protocol v2.
fn raw_v2(s: &Stack, token: &str, body: &str) -> http::Response {
    let auth = http::basic("agent", token);
    http::post(
        s.gateway.addr(),
        &s.target("repo.git/git-upload-pack"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-git-upload-pack-request"),
            ("Git-Protocol", "version=2"),
        ],
        body.as_bytes(),
    )
}

fn fetch_rule_denies_clone_fetch_and_ls_remote(kind: Kind) {
    let human = new_token();
    let config = format!(
        r#"{}
[[rule]]
name = "agents-read-nothing"
subjects = ["group:agents"]
ops = ["fetch"]
action = "deny"

[[rule]]
name = "team-is-private"
repos = ["*/team/*"]
ops = ["fetch"]
action = "deny"
message = "the team's repositories are private"
"#,
        token_toml("human-1", &human, &["humans"])
    );
    let s = Stack::start_with(kind, &config);
    let reason = format!(
        "agents-read-nothing: fetch of {}/repo is not allowed for agent-1",
        s.name
    );
    let before = s.repo.refs();

    // Raw: the advertisement and the RPC are both 403 with the reason as plain text.
    let auth = s.auth();
    let r = http::get(
        s.gateway.addr(),
        &s.target(UPLOAD_REFS),
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 403, "{r}\n{}", s.logs());
    assert_eq!(r.text(), format!("{reason}\n"), "{r}");
    let r = raw_v2(&s, &s.token, &format!("{}0000", pkt("command=ls-refs\n")));
    assert_eq!(r.status, 403, "{r}");
    assert_eq!(r.text(), format!("{reason}\n"), "{r}");
    if let Some(h) = s.upstream.http() {
        assert!(
            !h.access_log().contains("upload-pack"),
            "a denied fetch reached the upstream:\n{}",
            h.access_log()
        );
    }

    // The git CLI shows the reason, whatever the protocol.
    for version in [0, 2] {
        let git = s.git.protocol(version);
        let dest = s.work(&format!("denied-v{version}"));
        let out = git.clone(&s.url("repo.git"), &dest, &[]);
        assert!(!out.success(), "v{version}: {out}");
        assert!(
            out.stderr.contains(&format!("remote: {reason}")),
            "v{version}: the reason is shown: {out}"
        );
        assert!(out.stderr.contains("403"), "v{version}: {out}");
        let out = git.run(git.home(), &["ls-remote", &s.url("repo.git")]);
        assert!(!out.success(), "v{version}: {out}");
        assert!(out.stderr.contains(&reason), "v{version}: {out}");
    }
    assert_eq!(s.repo.refs(), before);

    // Someone outside the group clones; the second rule applies to everyone, with its message.
    let human_git = &s.git;
    let dest = s.work("human");
    let out = human_git.clone(
        &s.gateway
            .url_with_token("human", &human, &format!("{}/repo.git", s.name)),
        &dest,
        &[],
    );
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(human_git.rev(&dest, "HEAD"), s.history.main[4]);
    let out = human_git.clone(
        &s.gateway
            .url_with_token("human", &human, &format!("{}/team/app.git", s.name)),
        &s.work("human-team"),
        &[],
    );
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr
            .contains("remote: team-is-private: the team's repositories are private"),
        "{out}"
    );
}

fn default_deny_needs_a_fetch_allow_rule(kind: Kind) {
    let human = new_token();
    let config = format!(
        r#"{}
[policy]
default = "deny"

[[rule]]
name = "agents-may-read"
subjects = ["group:agents"]
ops = ["fetch"]
action = "allow"
"#,
        token_toml("human-1", &human, &["humans"])
    );
    let s = Stack::start_with(kind, &config);
    let dest = s.clone("agent", &[]);
    assert_eq!(s.git.rev(&dest, "HEAD"), s.history.main[4]);
    // Fetching does not make pushing allowed.
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/copy"],
        "refs/heads/copy",
        "policy.default: no rule allows creation of refs/heads/copy for agent-1",
    );

    let out = s.git.clone(
        &s.gateway
            .url_with_token("human", &human, &format!("{}/repo.git", s.name)),
        &s.work("human"),
        &[],
    );
    assert!(!out.success(), "{out}");
    let reason = format!(
        "policy.default: no rule allows fetch of {}/repo for human-1",
        s.name
    );
    assert!(out.stderr.contains(&format!("remote: {reason}")), "{out}");
}

/// Hides `refs/heads/internal/**` and the annotated tag `refs/tags/secret-1` from group
/// `agents`; the upstream gets `internal/secret` (a commit nothing else reaches), `internal/same`
/// (at main's tip, which stays fetchable through `main`) and the tag (on the hidden commit).
/// Returns the stack, the hidden commit and the token of `human-1`, who sees everything.
fn hidden_stack(kind: Kind) -> (Stack, String, String) {
    let human = new_token();
    let config = format!(
        r#"{}
[[rule]]
name = "internal"
subjects = ["group:agents"]
hide_refs = ["refs/heads/internal/**", "refs/tags/secret-1"]
"#,
        token_toml("human-1", &human, &["humans"])
    );
    let s = Stack::start_with(kind, &config);
    s.repo.git(&[
        "update-ref",
        "refs/heads/internal/secret",
        &s.history.main[4],
    ]);
    let secret = s.repo.commit(
        "internal/secret",
        &[("internal.txt", b"internal only\n".as_slice())],
        "internal work",
    );
    s.repo
        .git(&["update-ref", "refs/heads/internal/same", &s.history.main[4]]);
    s.repo
        .git(&["tag", "-a", "-m", "secret tag", "secret-1", &secret]);
    s.repo.git(&["config", "uploadpack.allowRefInWant", "true"]);
    (s, secret, human)
}

fn is_hidden(name: &str) -> bool {
    name.starts_with("refs/heads/internal/") || name.starts_with("refs/tags/secret-1")
}

fn hidden_refs_are_in_no_listing(kind: Kind) {
    let (s, secret, human) = hidden_stack(kind);
    let all = s.repo.refs();
    let mut expected: BTreeMap<String, String> = all
        .iter()
        .filter(|(name, _)| !is_hidden(name))
        .map(|(n, id)| (n.clone(), id.clone()))
        .collect();
    expected.insert("HEAD".into(), s.history.main[4].clone());
    expected.insert("refs/tags/v1.0^{}".into(), s.history.main[3].clone());

    for version in [0, 1, 2] {
        let refs = s
            .git
            .protocol(version)
            .ls_remote(&s.url("repo.git"))
            .unwrap_or_else(|out| panic!("v{version}: {out}\n{}", s.logs()));
        assert_eq!(refs, expected, "v{version}: exactly the visible refs");
        assert!(
            !refs.values().any(|id| *id == secret),
            "v{version}: the hidden tip leaked"
        );
    }

    // Raw v2 ls-refs with peeled tags and symrefs: no hidden name, no hidden id.
    let body = format!(
        "{}0001{}{}{}0000",
        pkt("command=ls-refs\n"),
        pkt("peel\n"),
        pkt("symrefs\n"),
        pkt("ref-prefix refs/\n"),
    );
    let r = raw_v2(&s, &s.token, &body);
    assert_eq!(r.status, 200, "{r}\n{}", s.logs());
    let text = r.text();
    assert!(text.contains("refs/heads/main"), "{text}");
    for leak in ["internal", "secret-1", secret.as_str()] {
        assert!(!text.contains(leak), "ls-refs shows {leak}: {text}");
    }

    // The receive-pack advertisement hides them too (push is a way to list refs).
    let auth = s.auth();
    let r = http::get(
        s.gateway.addr(),
        &s.target("repo.git/info/refs?service=git-receive-pack"),
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 200, "{r}");
    for leak in ["internal", "secret-1", secret.as_str()] {
        assert!(
            !r.contains(leak),
            "the receive-pack advertisement shows {leak}: {r}"
        );
    }

    // The rule's subjects only: human-1 sees everything.
    let refs = s
        .git
        .ls_remote(
            &s.gateway
                .url_with_token("human", &human, &format!("{}/repo.git", s.name)),
        )
        .expect("ls-remote as human-1");
    for name in all.keys() {
        assert!(refs.contains_key(name), "human-1 does not see {name}");
    }
}

fn hidden_refs_cannot_be_fetched(kind: Kind) {
    let (s, secret, _) = hidden_stack(kind);
    let before = s.repo.refs();
    // Raw requests: `want-ref` of a hidden ref, `want` of a hidden tip (v2 and v0).
    let hidden_tag = s.repo.rev("refs/tags/secret-1").expect("the tag");
    let v2_fetch = |line: String| {
        format!(
            "{}0001{}{}{}0000",
            pkt("command=fetch\n"),
            pkt("no-progress\n"),
            pkt(&line),
            pkt("done\n"),
        )
    };
    for (what, line, expected) in [
        (
            "want-ref",
            "want-ref refs/heads/internal/secret\n".to_string(),
            "internal: refs/heads/internal/secret is not available".to_string(),
        ),
        (
            "want of the hidden commit",
            format!("want {secret}\n"),
            format!("internal: object {secret} is not available"),
        ),
        (
            "want of the hidden tag",
            format!("want {hidden_tag}\n"),
            format!("internal: object {hidden_tag} is not available"),
        ),
    ] {
        let r = raw_v2(&s, &s.token, &v2_fetch(line));
        assert!(r.is_client_error(), "{what}: {r}\n{}", s.logs());
        assert!(r.text().contains(&expected), "{what}: {r}");
    }
    // Controls: the same requests for visible things succeed (the refusals above are not a
    // blanket refusal of want-ref or of wants), including a hidden ref's tip that a visible ref
    // shares.
    for (what, line) in [
        ("want-ref of main", "want-ref refs/heads/main\n".to_string()),
        (
            "want of main's tip (also internal/same's)",
            format!("want {}\n", s.history.main[4]),
        ),
    ] {
        let r = raw_v2(&s, &s.token, &v2_fetch(line));
        assert_eq!(r.status, 200, "{what}: {r}\n{}", s.logs());
        assert!(r.contains("packfile"), "{what}: {r}");
    }
    let auth = s.auth();
    let line = format!("want {secret} ofs-delta\n");
    let v0 = format!("{}0000{}", pkt(&line), pkt("done\n"));
    let r = http::post(
        s.gateway.addr(),
        &s.target("repo.git/git-upload-pack"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-git-upload-pack-request"),
        ],
        v0.as_bytes(),
    );
    assert!(r.is_client_error(), "v0 want: {r}");
    assert!(
        r.text()
            .contains(&format!("internal: object {secret} is not available")),
        "{r}"
    );

    for version in [0, 2] {
        let git = s.git.protocol(version);
        let dest = s.work(&format!("clone-v{version}"));
        let out = git.clone(&s.url("repo.git"), &dest, &["--mirror"]);
        assert!(out.success(), "v{version}: {out}\n{}", s.logs());
        let refs = git.ok(&dest, &["for-each-ref", "--format=%(refname)"]);
        assert!(!refs.contains("internal"), "v{version}: {refs}");
        assert!(!refs.contains("secret-1"), "v{version}: {refs}");
        assert!(refs.contains("refs/heads/feature"), "v{version}: {refs}");
        assert_eq!(Some(git.rev(&dest, "HEAD")), s.repo.rev("refs/heads/main"));
        let has_secret = || git.run(&dest, &["cat-file", "-e", &secret]).success();
        assert!(!has_secret(), "v{version}: the hidden commit was cloned");

        // By name: the ref does not exist for this client.
        let out = git.fetch(&dest, &["origin", "refs/heads/internal/secret"]);
        assert!(!out.success(), "v{version}: {out}");
        assert!(
            out.stderr
                .contains("couldn't find remote ref refs/heads/internal/secret"),
            "v{version}: {out}"
        );
        // By id: the gateway refuses the want.
        let out = git.fetch(&dest, &["origin", &secret]);
        assert!(!out.success(), "v{version}: {out}");
        // git shows no body for a failed RPC; the raw requests above check the reason.
        assert!(out.stderr.contains("HTTP 400"), "v{version}: {out}");
        assert!(!has_secret(), "v{version}: the hidden commit was fetched");

        // The rest works: a new commit on main arrives with a plain fetch.
        let tip = s.repo.commit(
            "main",
            &[(&format!("v{version}.txt"), b"x\n".as_slice())],
            "more",
        );
        git.ok(&dest, &["fetch", "-q", "origin"]);
        assert_eq!(git.rev(&dest, "refs/heads/main"), tip);
    }
    let mut after = s.repo.refs();
    after.remove("refs/heads/main");
    let mut before = before;
    before.remove("refs/heads/main");
    assert_eq!(after, before);
}

fn hidden_refs_cannot_be_pushed(kind: Kind) {
    let (s, secret, _) = hidden_stack(kind);
    let dest = s.clone("clone", &[]);
    // The client cannot see `internal/secret`: it asks to create it, which is refused too.
    for refname in ["refs/heads/internal/new", "refs/heads/internal/secret"] {
        push_rejected(
            &s,
            &dest,
            &["origin", &format!("+HEAD:{refname}")],
            refname,
            &format!("internal: {refname} is hidden from agent-1"),
        );
    }
    assert_eq!(s.repo.rev("refs/heads/internal/secret"), Some(secret));
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/internalx"],
        "refs/heads/internalx",
        Some(&s.history.main[4]),
    );
}
