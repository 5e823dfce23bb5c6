//! URL routing: `/<upstream>/<path>[.git]`, nothing outside an upstream's root, smart HTTP only.

use crate::harness::http::{self, Response};
use crate::harness::{Kind, Stack};

both_upstreams!(
    unknown_upstream_is_404,
    missing_repository_is_refused,
    traversal_attempts_are_refused,
    dumb_http_is_refused,
    unknown_services_are_refused,
);

fn assert_no_refs_leak(s: &Stack, r: &Response, what: &str) {
    for id in [
        &s.history.main[4],
        &s.outside.rev("refs/heads/main").expect("outside main"),
    ] {
        assert!(!r.contains(id), "{what}: the answer reveals {id}:\n{r}");
    }
}

fn unknown_upstream_is_404(kind: Kind) {
    let s = Stack::start(kind);
    let auth = s.auth();
    for target in [
        "/nope/repo.git/info/refs?service=git-upload-pack",
        "/nope/repo.git/info/refs?service=git-receive-pack",
        "/NOPE/repo.git/info/refs?service=git-upload-pack",
    ] {
        let r = http::get(s.gateway.addr(), target, &[("Authorization", &auth)]);
        assert_eq!(r.status, 404, "{target}: {r}");
    }
    let r = http::post(
        s.gateway.addr(),
        "/nope/repo.git/git-upload-pack",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-git-upload-pack-request"),
        ],
        b"0000",
    );
    assert_eq!(r.status, 404, "{r}");

    let url = s.gateway.url_with_token("agent", &s.token, "nope/repo.git");
    let out = s.git.clone(&url, &s.work("nope"), &[]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr.contains("404") || out.stderr.contains("not found"),
        "{out}"
    );
}

fn missing_repository_is_refused(kind: Kind) {
    let s = Stack::start(kind);
    let r = http::get(
        s.gateway.addr(),
        &s.target("missing.git/info/refs?service=git-upload-pack"),
        &[("Authorization", &s.auth())],
    );
    assert!(r.status >= 400, "{r}");
    let out = s.git.clone(&s.url("missing.git"), &s.work("missing"), &[]);
    assert!(!out.success(), "{out}");
}

fn traversal_attempts_are_refused(kind: Kind) {
    let s = Stack::start(kind);
    let auth = s.auth();
    let headers: &[(&str, &str)] = &[("Authorization", &auth)];
    let n = s.name;
    let q = "info/refs?service=git-upload-pack";
    // `<tmp>/root` is the upstream's root; `<tmp>/outside/secret.git` is next to it.
    let targets = [
        format!("/{n}/../outside/secret.git/{q}"),
        format!("/{n}/repo.git/../../outside/secret.git/{q}"),
        format!("/{n}/./repo.git/{q}"),
        format!("/{n}/%2e%2e/outside/secret.git/{q}"),
        format!("/{n}/%2E%2E/outside/secret.git/{q}"),
        format!("/{n}/.%2e/outside/secret.git/{q}"),
        format!("/{n}/%2e%2e%2foutside%2fsecret.git/{q}"),
        format!("/{n}/team%2fapp.git/{q}"),
        format!("/{n}/..%2foutside/secret.git/{q}"),
        format!("/{n}/..%5coutside%5csecret.git/{q}"),
        format!("/{n}/team%5capp.git/{q}"),
        format!("/{n}/repo.git%00/{q}"),
        format!("/{n}/repo%00.git/{q}"),
        format!("/{n}//repo.git/{q}"),
        format!("/{n}/team//app.git/{q}"),
        format!("/{n}/%2f{}/outside/secret.git/{q}", s.tmp.path().display()),
        format!("/{n}/../{n}/repo.git/{q}"),
        format!("/../{n}/repo.git/{q}"),
        format!("/{n}/../../../../etc/{q}"),
    ];
    for target in &targets {
        let r = http::get(s.gateway.addr(), target, headers);
        assert!(
            r.is_client_error(),
            "{target} must be refused with 4xx:\n{r}"
        );
        assert_no_refs_leak(&s, &r, target);
    }
    // Decoded once, these name folders that do not exist: refused one way or another (4xx, or
    // the upstream's error), never served; `%2e%2e` must not be decoded a second time upstream.
    for target in [
        format!("/{n}/%252e%252e/outside/secret.git/{q}"),
        format!("/{n}/%252e%252e%252foutside%252fsecret.git/{q}"),
        format!("/{n}/.git/{q}"),
    ] {
        let r = http::get(s.gateway.addr(), &target, headers);
        assert!(r.status >= 400, "{target} must not be served:\n{r}");
        assert_no_refs_leak(&s, &r, &target);
    }
    // Bytes no URL builder would send: a raw backslash, a raw NUL, an absolute path.
    for raw in [
        format!("GET /{n}/..\\outside\\secret.git/{q} HTTP/1.1\r\n"),
        format!("GET /{n}/repo.git\0/{q} HTTP/1.1\r\n"),
        format!(
            "GET /{n}/{}/outside/secret.git/{q} HTTP/1.1\r\n",
            s.tmp.path().display()
        ),
    ] {
        let request =
            format!("{raw}Host: 127.0.0.1\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n");
        match http::send_raw(s.gateway.addr(), request.as_bytes()) {
            Ok(r) => {
                assert!(
                    r.is_client_error(),
                    "{raw:?} must be refused with 4xx:\n{r}"
                );
                assert_no_refs_leak(&s, &r, &raw);
            }
            // Dropping such a request without an answer is a refusal too.
            Err(e) => eprintln!("{raw:?}: connection closed without an answer ({e})"),
        }
    }
    // The same on the POST endpoints.
    for target in [
        format!("/{n}/../outside/secret.git/git-upload-pack"),
        format!("/{n}/%2e%2e/outside/secret.git/git-receive-pack"),
    ] {
        let r = http::post(s.gateway.addr(), &target, headers, b"0000");
        assert!(r.is_client_error(), "{target}: {r}");
    }
    // git itself cannot be talked into leaving the root either.
    let url = format!("{}/../outside/secret.git", s.url("repo.git"));
    let out = s.git.clone(&url, &s.work("escape"), &[]);
    assert!(!out.success(), "{out}");
    // Nothing outside the root was served: the outside repository's history never left it.
    let secret = s.outside.rev("refs/heads/main").expect("outside main");
    assert!(!out.all().contains(&secret));
    // And the gateway still serves the legitimate paths.
    s.clone("after", &[]);
}

fn dumb_http_is_refused(kind: Kind) {
    let s = Stack::start(kind);
    let auth = s.auth();
    for rest in [
        "repo.git/HEAD",
        "repo.git/info/refs",
        "repo.git/objects/info/packs",
        "repo.git/objects/info/alternates",
        "repo.git/config",
        "repo.git/refs/heads/main",
        &format!(
            "repo.git/objects/{}/{}",
            &s.history.main[4][..2],
            &s.history.main[4][2..]
        ),
    ] {
        let target = s.target(rest);
        let r = http::get(s.gateway.addr(), &target, &[("Authorization", &auth)]);
        assert!(
            r.is_client_error(),
            "{target} must be refused with 4xx:\n{r}"
        );
        assert!(!r.body.is_empty(), "{target}: say why it is refused:\n{r}");
        assert_no_refs_leak(&s, &r, &target);
    }
    // A git that insists on dumb HTTP gets nothing.
    let git = s.git.env("GIT_SMART_HTTP", "0");
    let out = git.clone(&s.url("repo.git"), &s.work("dumb"), &[]);
    assert!(!out.success(), "{out}");
}

fn unknown_services_are_refused(kind: Kind) {
    let s = Stack::start(kind);
    let auth = s.auth();
    for target in [
        "repo.git/info/refs?service=git-upload-archive",
        "repo.git/info/refs?service=git-evil",
        "repo.git/info/refs?service=",
    ] {
        let target = s.target(target);
        let r = http::get(s.gateway.addr(), &target, &[("Authorization", &auth)]);
        assert!(r.is_client_error(), "{target}: {r}");
    }
    for (method, rest) in [
        ("POST", "repo.git/git-upload-archive"),
        ("POST", "repo.git/git-evil"),
        ("PUT", "repo.git/git-receive-pack"),
        ("DELETE", "repo.git"),
        ("GET", "repo.git/git-upload-pack"),
    ] {
        let target = s.target(rest);
        let r = http::request(
            s.gateway.addr(),
            method,
            &target,
            &[("Authorization", &auth)],
            b"0000",
        )
        .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        assert!(r.is_client_error(), "{method} {target}: {r}");
    }
}

#[test]
fn healthz_is_200_without_credentials() {
    let s = Stack::start(Kind::File);
    let r = http::get(s.gateway.addr(), "/healthz", &[]);
    assert_eq!(r.status, 200, "{r}");
}
