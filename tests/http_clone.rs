//! Clone, fetch and ls-remote through the gateway, against both upstreams.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::harness::{http, net, Kind, Stack};

both_upstreams!(
    clone_protocol_v0,
    clone_protocol_v1,
    clone_protocol_v2,
    shallow_clone_then_deepen,
    partial_clone_then_lazy_fetch,
    fetch_after_upstream_moved,
    ls_remote_matches_upstream,
    clone_nested_repository,
    bearer_token_clones,
    twenty_concurrent_clones,
    fetch_with_a_gzipped_negotiation,
    bypass_capabilities_are_stripped,
);

/// Clones with `protocol.version=version` and checks every ref and the negotiated version.
fn clone_with_protocol(kind: Kind, version: u8) {
    let s = Stack::start(kind);
    let trace = s.work("packet-trace");
    let git = s.git.protocol(version).trace_packets(&trace);
    let dest = s.work("clone");
    let out = git.clone(&s.url("repo.git"), &dest, &[]);
    assert!(out.success(), "{out}\n{}", s.logs());

    assert_eq!(git.rev(&dest, "HEAD"), s.history.main[4]);
    assert_eq!(git.ok(&dest, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(git.rev(&dest, "origin/feature"), s.history.feature[1]);
    assert_eq!(git.rev(&dest, "v1.0^{commit}"), s.history.main[3]);
    assert_eq!(git.rev(&dest, "light"), s.history.main[1]);
    assert_eq!(
        git.rev(&dest, "v1.0"),
        s.repo.rev("refs/tags/v1.0").expect("tag")
    );
    git.ok(&dest, &["fsck", "--no-progress"]);
    assert_eq!(
        std::fs::read(dest.join("README.md")).expect("checked out README.md"),
        b"# demo\n"
    );

    // The server's answer opened with `version N` for v1/v2: the Git-Protocol header went through.
    let trace = std::fs::read_to_string(&trace).expect("packet trace");
    let server_version = |n: u8| trace.contains(&format!("git< version {n}"));
    match version {
        0 => assert!(!server_version(1) && !server_version(2), "{trace}"),
        n => assert!(
            server_version(n),
            "no `version {n}` from the server:\n{trace}"
        ),
    }
    if let Some(h) = s.upstream.http() {
        let log = h.access_log();
        if version > 0 {
            assert!(log.contains(&format!("version={version}")), "{log}");
        }
    }
}

fn clone_protocol_v0(kind: Kind) {
    clone_with_protocol(kind, 0);
}

fn clone_protocol_v1(kind: Kind) {
    clone_with_protocol(kind, 1);
}

fn clone_protocol_v2(kind: Kind) {
    clone_with_protocol(kind, 2);
}

fn commit_count(s: &Stack, repo: &Path) -> usize {
    s.git
        .ok(repo, &["rev-list", "--count", "HEAD"])
        .parse()
        .expect("a count")
}

fn shallow_clone_then_deepen(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("shallow", &["--depth", "1"]);
    assert_eq!(s.git.rev(&dest, "HEAD"), s.history.main[4]);
    assert_eq!(commit_count(&s, &dest), 1);
    assert!(dest.join(".git/shallow").exists());

    let out = s.git.fetch(&dest, &["--deepen", "2"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(commit_count(&s, &dest), 3);

    let out = s.git.fetch(&dest, &["--unshallow"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(commit_count(&s, &dest), 5);
    assert!(!dest.join(".git/shallow").exists());
}

/// Objects reachable from `rev` that are missing locally (without fetching them).
fn missing_objects(s: &Stack, repo: &Path, rev: &str) -> Vec<String> {
    s.git
        .ok(repo, &["rev-list", "--objects", "--missing=print", rev])
        .lines()
        .filter_map(|l| l.strip_prefix('?').map(str::to_owned))
        .collect()
}

fn partial_clone_then_lazy_fetch(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("partial", &["--filter=blob:none"]);
    assert_eq!(s.git.rev(&dest, "HEAD"), s.history.main[4]);
    assert_eq!(
        s.git.ok(&dest, &["config", "remote.origin.promisor"]),
        "true"
    );
    // Only the blobs of the checked-out commit came: feature.txt (on `feature`) did not.
    let missing = missing_objects(&s, &dest, "origin/feature");
    let feature_blob = s.repo.git(&["rev-parse", "feature:feature.txt"]);
    assert!(
        missing.contains(&feature_blob),
        "feature.txt's blob {feature_blob} should be missing, missing: {missing:?}"
    );

    // Checking out another commit fetches the missing blobs lazily, through the gateway.
    let out = s.git.run(&dest, &["checkout", "-q", "feature"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(
        std::fs::read(dest.join("feature.txt")).expect("feature.txt"),
        b"feature two\n"
    );
    assert!(!missing_objects(&s, &dest, "HEAD").contains(&feature_blob));
}

fn fetch_after_upstream_moved(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("clone", &[]);
    let moved = s.repo.commit(
        "main",
        &[("moved.txt", b"upstream moved\n".as_slice())],
        "moved",
    );
    let branch = s
        .repo
        .commit("later", &[("later.txt", b"later\n".as_slice())], "later");
    s.repo.git(&["tag", "v2.0", &moved]);

    let out = s.git.fetch(&dest, &["--tags", "origin"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.git.rev(&dest, "origin/main"), moved);
    assert_eq!(s.git.rev(&dest, "origin/later"), branch);
    assert_eq!(s.git.rev(&dest, "v2.0"), moved);
    s.git
        .ok(&dest, &["merge", "--ff-only", "-q", "origin/main"]);
    assert_eq!(
        std::fs::read(dest.join("moved.txt")).expect("moved.txt"),
        b"upstream moved\n"
    );

    // A second fetch with nothing new succeeds and changes nothing.
    let out = s.git.fetch(&dest, &["origin"]);
    assert!(out.success(), "{out}");
    assert_eq!(s.git.rev(&dest, "origin/main"), moved);
}

fn ls_remote_matches_upstream(kind: Kind) {
    let s = Stack::start(kind);
    let mut expected: BTreeMap<String, String> = s.repo.refs();
    expected.insert("HEAD".into(), s.history.main[4].clone());
    expected.insert("refs/tags/v1.0^{}".into(), s.history.main[3].clone());
    for version in [0, 1, 2] {
        let git = s.git.protocol(version);
        let refs = git
            .ls_remote(&s.url("repo.git"))
            .unwrap_or_else(|out| panic!("ls-remote v{version}: {out}\n{}", s.logs()));
        assert_eq!(refs, expected, "ls-remote with protocol v{version}");
    }
}

fn clone_nested_repository(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.work("nested");
    let out = s.git.clone(&s.url("team/app.git"), &dest, &[]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(
        s.git.rev(&dest, "HEAD"),
        s.nested.rev("refs/heads/main").expect("main")
    );
}

fn bearer_token_clones(kind: Kind) {
    let s = Stack::start(kind);
    let git = s.git.bearer(&s.token);
    let dest = s.work("bearer");
    let out = git.clone(&s.anon_url("repo.git"), &dest, &[]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(git.rev(&dest, "HEAD"), s.history.main[4]);
}

fn twenty_concurrent_clones(kind: Kind) {
    let s = Arc::new(Stack::start(kind));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let dest = s.work(&format!("concurrent-{i}"));
                let out = s.git.clone(&s.url("repo.git"), &dest, &[]);
                (i, out, dest)
            })
        })
        .collect();
    for handle in handles {
        let (i, out, dest) = handle.join().expect("clone thread");
        assert!(out.success(), "clone {i}: {out}\n{}", s.logs());
        assert_eq!(s.git.rev(&dest, "HEAD"), s.history.main[4], "clone {i}");
        assert_eq!(
            s.git.rev(&dest, "origin/feature"),
            s.history.feature[1],
            "clone {i}"
        );
    }
}

/// git gzips fetch requests over 1 KiB: many `want` lines (new upstream branches) and `have`
/// lines (local commits) make the first negotiation request that long.
fn fetch_with_a_gzipped_negotiation(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("clone", &[]);
    let tree = s.git.ok(&dest, &["rev-parse", "HEAD^{tree}"]);
    let mut parent = s.git.rev(&dest, "HEAD");
    for i in 0..40 {
        let message = format!("local {i}");
        parent = s.git.ok(
            &dest,
            &["commit-tree", &tree, "-p", &parent, "-m", &message],
        );
    }
    s.git.ok(&dest, &["update-ref", "refs/heads/main", &parent]);
    for version in [0, 2] {
        let branches: Vec<(String, String)> = (0..25)
            .map(|i| {
                let name = format!("v{version}-branch-{i}");
                let content = format!("{name}\n");
                let id = s
                    .repo
                    .commit(&name, &[("branch.txt", content.as_bytes())], &name);
                (name, id)
            })
            .collect();
        let trace = s.work(&format!("curl-trace-v{version}"));
        let git = s
            .git
            .protocol(version)
            .env("GIT_TRACE_CURL", &trace.to_string_lossy())
            .env("GIT_TRACE_CURL_NO_DATA", "1");
        let out = git.fetch(&dest, &["origin"]);
        assert!(out.success(), "v{version}: {out}\n{}", s.logs());
        for (name, id) in &branches {
            assert_eq!(
                &s.git.rev(&dest, &format!("origin/{name}")),
                id,
                "v{version}"
            );
        }
        let trace = std::fs::read_to_string(&trace).expect("curl trace");
        assert!(
            trace.contains("Content-Encoding: gzip"),
            "v{version}: the negotiation was not gzipped; the test does not test what it says"
        );
    }
}

/// `bundle-uri` and `packfile-uris` would let a client download objects from elsewhere,
/// bypassing the gateway: the upstream advertises them, the gateway must not.
fn bypass_capabilities_are_stripped(kind: Kind) {
    let s = Stack::start(kind);
    for (key, value) in [
        ("uploadpack.advertiseBundleURIs", "true"),
        ("bundle.version", "1"),
        ("bundle.mode", "all"),
        (
            "bundle.elsewhere.uri",
            "https://bundles.invalid/repo.bundle",
        ),
        (
            "uploadpack.blobPackfileUri",
            "1111111111111111111111111111111111111111 \
             2222222222222222222222222222222222222222 https://packs.invalid/p.pack",
        ),
    ] {
        s.repo.git(&["config", key, value]);
    }
    // The upstream does advertise them (else this test would test nothing).
    let direct = match &s.upstream.http() {
        Some(h) => {
            let auth = http::basic(&h.user, &h.password);
            let r = http::get(
                net::loopback(h.port),
                "/repo.git/info/refs?service=git-upload-pack",
                &[("Authorization", &auth), ("Git-Protocol", "version=2")],
            );
            r.text()
        }
        None => {
            let mut cmd = crate::harness::git::command();
            cmd.env("GIT_PROTOCOL", "version=2").args([
                "upload-pack",
                "--advertise-refs",
                "--stateless-rpc",
                &s.repo.path.to_string_lossy(),
            ]);
            crate::harness::process::run(&mut cmd, std::time::Duration::from_secs(30))
                .assert_ok()
                .stdout
                .clone()
        }
    };
    assert!(direct.contains("bundle-uri"), "{direct}");
    assert!(direct.contains("packfile-uris"), "{direct}");

    let r = http::get(
        s.gateway.addr(),
        &s.target("repo.git/info/refs?service=git-upload-pack"),
        &[("Authorization", &s.auth()), ("Git-Protocol", "version=2")],
    );
    assert_eq!(r.status, 200, "{r}\n{}", s.logs());
    let relayed = r.text();
    assert!(relayed.contains("version 2"), "{relayed}");
    assert!(relayed.contains("ls-refs"), "{relayed}");
    assert!(relayed.contains("fetch="), "{relayed}");
    assert!(
        !relayed.contains("bundle-uri"),
        "bundle-uri relayed:\n{relayed}"
    );
    assert!(
        !relayed.contains("packfile-uris"),
        "packfile-uris relayed:\n{relayed}"
    );

    // A client eager to use both still gets everything through the gateway.
    let trace = s.work("trace");
    let git = s
        .git
        .protocol(2)
        .config("transfer.bundleURI=true")
        .config("fetch.uriProtocols=https")
        .trace_packets(&trace);
    let dest = s.work("clone");
    let out = git.clone(&s.url("repo.git"), &dest, &[]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(git.rev(&dest, "HEAD"), s.history.main[4]);
    let trace = std::fs::read_to_string(&trace).expect("packet trace");
    assert!(
        !trace.contains(".invalid/"),
        "the client was sent elsewhere:\n{trace}"
    );
}
