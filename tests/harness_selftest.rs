//! The harness's own parts work without the gateway: git straight to the upstreams.

use crate::harness::repo::Repo;
use crate::harness::{http, net, Git, Tmp, Upstream};

#[test]
fn clone_and_push_straight_to_http_backend_with_basic_auth() {
    let tmp = Tmp::new("selftest");
    let root = tmp.dir("root");
    let (repo, history) = Repo::with_history(&root.join("repo.git"));
    let upstream = Upstream::http_backend(&root, "alice", "s3cret");
    let backend = upstream.http().expect("an http upstream");
    let git = Git::new(&tmp.dir("client"));

    let dest = tmp.join("clone");
    let out = git.clone(&upstream.direct_url("repo.git"), &dest, &[]);
    assert!(out.success(), "{out}\n{}", backend.logs());
    assert_eq!(git.rev(&dest, "HEAD"), history.main[4]);
    assert_eq!(git.rev(&dest, "origin/feature"), history.feature[1]);

    let new = git.commit_file(&dest, "new.txt", b"new\n", "new");
    git.push(&dest, &["origin", "HEAD:refs/heads/pushed"])
        .assert_ok();
    assert_eq!(repo.rev("refs/heads/pushed"), Some(new));
    // http-backend saw the vaulted user, with the protocol header passed through.
    assert!(
        backend.access_log().contains("alice "),
        "{}",
        backend.access_log()
    );
    assert!(
        backend.access_log().contains("version=2"),
        "{}",
        backend.access_log()
    );
}

#[test]
fn http_backend_refuses_missing_and_wrong_credentials() {
    let tmp = Tmp::new("selftest");
    let root = tmp.dir("root");
    Repo::with_history(&root.join("repo.git"));
    let upstream = Upstream::http_backend(&root, "alice", "s3cret");
    let backend = upstream.http().expect("an http upstream");
    let target = "/repo.git/info/refs?service=git-upload-pack";
    let addr = net::loopback(backend.port);
    assert_eq!(http::get(addr, target, &[]).status, 401);
    let wrong = http::basic("alice", "nope");
    assert_eq!(
        http::get(addr, target, &[("Authorization", &wrong)]).status,
        401
    );
    let right = http::basic("alice", "s3cret");
    let ok = http::get(addr, target, &[("Authorization", &right)]);
    assert_eq!(ok.status, 200, "{ok}");
    assert_eq!(
        ok.header("Content-Type"),
        Some("application/x-git-upload-pack-advertisement")
    );
    let git = Git::new(&tmp.dir("client"));
    let url = format!("http://127.0.0.1:{}/repo.git", backend.port);
    git.clone(&url, &tmp.join("c"), &[]).assert_failed();
}

#[test]
fn clone_straight_from_file_upstream() {
    let tmp = Tmp::new("selftest");
    let root = tmp.dir("root");
    let (_repo, history) = Repo::with_history(&root.join("repo.git"));
    let upstream = Upstream::file(&root);
    let git = Git::new(&tmp.dir("client"));
    let dest = tmp.join("clone");
    git.clone(&upstream.direct_url("repo.git"), &dest, &[])
        .assert_ok();
    assert_eq!(git.rev(&dest, "HEAD"), history.main[4]);
    assert_eq!(git.rev(&dest, "v1.0^{commit}"), history.main[3]);
}
