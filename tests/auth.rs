//! Who may use the gateway, and the vault: the upstream's credential never reaches the agent, and
//! the agent's token never reaches the upstream.

use base64::Engine as _;

use crate::harness::gateway::{token_toml, Gateway};
use crate::harness::http::{self, Response};
use crate::harness::repo::Repo;
use crate::harness::upstream::PASSWORD_ENV;
use crate::harness::{Git, Kind, Stack, Tmp, Upstream};

both_upstreams!(
    no_credentials_is_401_with_basic_challenge,
    wrong_token_is_401,
    any_basic_user_name_with_the_token_is_accepted,
);

const UPLOAD_REFS: &str = "repo.git/info/refs?service=git-upload-pack";
const RECEIVE_REFS: &str = "repo.git/info/refs?service=git-receive-pack";

fn assert_challenge(r: &Response, what: &str) {
    assert_eq!(r.status, 401, "{what}: {r}");
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some(r#"Basic realm="gitgate""#),
        "{what}: {r}"
    );
}

fn no_credentials_is_401_with_basic_challenge(kind: Kind) {
    let s = Stack::start(kind);
    let addr = s.gateway.addr();
    for target in [UPLOAD_REFS, RECEIVE_REFS] {
        assert_challenge(&http::get(addr, &s.target(target), &[]), target);
    }
    for service in ["git-upload-pack", "git-receive-pack"] {
        let target = s.target(&format!("repo.git/{service}"));
        let content_type = format!("application/x-{service}-request");
        let r = http::post(addr, &target, &[("Content-Type", &content_type)], b"0000");
        assert_challenge(&r, &target);
    }

    let out = s.git.clone(&s.anon_url("repo.git"), &s.work("anon"), &[]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr.contains("terminal prompts disabled")
            || out.stderr.contains("Authentication failed"),
        "git should have been asked for credentials: {out}"
    );
    // Nothing reached the upstream on behalf of an unauthenticated caller.
    if let Some(h) = s.upstream.http() {
        assert_eq!(h.access_log(), "", "the upstream was contacted");
    }
}

fn wrong_token_is_401(kind: Kind) {
    let s = Stack::start(kind);
    let addr = s.gateway.addr();
    let target = s.target(UPLOAD_REFS);
    let wrong = [
        http::basic("agent", "gg_not-the-token"),
        http::basic("agent", ""),
        http::basic("agent", &s.token[..s.token.len() - 1]),
        http::basic(&s.token, "x"),
        format!("Bearer {}x", s.token),
        "Bearer ".to_owned(),
        format!("Token {}", s.token),
        "Basic !!!not-base64!!!".to_owned(),
    ];
    for auth in &wrong {
        let r = http::get(addr, &target, &[("Authorization", auth)]);
        assert_eq!(r.status, 401, "Authorization: {auth}\n{r}");
        assert!(!r.contains(&s.token), "the token is echoed back: {r}");
    }

    let url = s
        .gateway
        .url_with_token("agent", "gg_wrong", &format!("{}/repo.git", s.name));
    let out = s.git.clone(&url, &s.work("wrong"), &[]);
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("Authentication failed"), "{out}");

    let git = s.git.bearer("gg_wrong");
    let out = git.clone(&s.anon_url("repo.git"), &s.work("wrong-bearer"), &[]);
    assert!(!out.success(), "{out}");
    if let Some(h) = s.upstream.http() {
        assert_eq!(h.access_log(), "", "the upstream was contacted");
    }
}

fn any_basic_user_name_with_the_token_is_accepted(kind: Kind) {
    let s = Stack::start(kind);
    for user in ["agent", "x-access-token", "someone.else", ""] {
        let r = http::get(
            s.gateway.addr(),
            &s.target(UPLOAD_REFS),
            &[("Authorization", &http::basic(user, &s.token))],
        );
        assert_eq!(r.status, 200, "user {user:?}: {r}\n{}", s.logs());
        assert_eq!(
            r.header("Content-Type"),
            Some("application/x-git-upload-pack-advertisement"),
            "{r}"
        );
        assert!(
            r.contains(&s.history.main[4]),
            "the advertisement lists main: {r}"
        );
    }
    let bearer = format!("Bearer {}", s.token);
    let r = http::get(
        s.gateway.addr(),
        &s.target(RECEIVE_REFS),
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 200, "{r}\n{}", s.logs());
    assert_eq!(
        r.header("Content-Type"),
        Some("application/x-git-receive-pack-advertisement"),
        "{r}"
    );
}

/// Every form in which the upstream's credential could leak.
fn secret_forms(user: &str, password: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        password.to_owned(),
        b64.encode(format!("{user}:{password}")),
        b64.encode(password),
        format!("{user}:{password}"),
    ]
}

#[test]
fn upstream_password_never_reaches_output_or_responses() {
    let s = Stack::start_with_env(Kind::Http, "", &[("GITGATE_LOG", "trace")]);
    let backend = s.upstream.http().expect("http upstream");
    let secrets = secret_forms(&backend.user, &backend.password);
    let addr = s.gateway.addr();
    let auth = s.auth();
    let mut responses = Vec::new();

    // Successful operations of every kind.
    let dest = s.clone("clone", &[]);
    let git = s.git.protocol(2);
    git.clone(
        &s.url("repo.git"),
        &s.work("clone-v2"),
        &["--filter=blob:none"],
    )
    .assert_ok();
    git.commit_file(&dest, "x.txt", b"x\n", "x");
    let push = s.git.push(&dest, &["origin", "HEAD:refs/heads/leak-check"]);
    assert!(push.success(), "{push}\n{}", s.logs());
    let ls = s.git.ls_remote(&s.url("repo.git")).expect("ls-remote");
    assert!(ls.contains_key("refs/heads/leak-check"));
    let mut git_outputs = vec![push.all()];

    // Failures of every kind: client errors, upstream errors (missing repo), garbage.
    let auth_headers: &[(&str, &str)] = &[("Authorization", &auth)];
    for target in [
        s.target(UPLOAD_REFS),
        s.target(RECEIVE_REFS),
        s.target("missing.git/info/refs?service=git-upload-pack"),
        s.target("missing.git/info/refs?service=git-receive-pack"),
        s.target("repo.git/HEAD"),
        s.target("../x.git/info/refs?service=git-upload-pack"),
        "/nope/repo.git/info/refs?service=git-upload-pack".to_owned(),
    ] {
        responses.push(http::get(addr, &target, auth_headers));
        responses.push(http::get(addr, &target, &[]));
    }
    for service in ["git-upload-pack", "git-receive-pack"] {
        for repo in ["repo.git", "missing.git"] {
            let content_type = format!("application/x-{service}-request");
            let headers = [
                ("Authorization", auth.as_str()),
                ("Content-Type", content_type.as_str()),
            ];
            let target = s.target(&format!("{repo}/{service}"));
            responses.push(http::post(addr, &target, &headers, b"garbage"));
            responses.push(http::post(addr, &target, &headers, b"0000"));
        }
    }
    let missing = s.git.clone(&s.url("missing.git"), &s.work("missing"), &[]);
    assert!(!missing.success(), "{missing}");
    git_outputs.push(missing.all());

    let output = s.gateway.output();
    for secret in &secrets {
        assert!(
            !output.contains(secret.as_str()),
            "the gateway's output contains the upstream credential ({secret}):\n{output}"
        );
        for r in &responses {
            assert!(!r.contains(secret), "a response contains {secret}:\n{r}");
        }
        for o in &git_outputs {
            assert!(!o.contains(secret.as_str()), "git printed {secret}:\n{o}");
        }
    }

    // And the other way round: the agent's token never reached the upstream, which saw only the
    // vaulted user.
    let log = backend.access_log();
    assert!(!log.is_empty());
    for form in secret_forms("agent", &s.token) {
        assert!(
            !log.contains(&form),
            "the upstream saw the agent's token:\n{log}"
        );
    }
    for line in log.lines() {
        let user = line.split(' ').next().unwrap_or_default();
        assert!(
            user == backend.user || user == "-",
            "the upstream saw user {user:?}: {line}"
        );
    }
}

#[test]
fn wrong_upstream_password_is_502_without_revealing_it() {
    let tmp = Tmp::new("vault");
    let root = tmp.dir("root");
    Repo::with_history(&root.join("repo.git"));
    let real = "pw-real-0123456789abcdef";
    let vaulted = "pw-vaulted-but-wrong-fedcba9876543210";
    let upstream = Upstream::http_backend(&root, "vault-user", real);
    let token = crate::harness::gateway::new_token();
    let config = format!(
        "{}\n{}",
        upstream.toml("web"),
        token_toml("agent-1", &token, &["agents"])
    );
    let gateway = Gateway::start_with_env(
        &config,
        &[
            (PASSWORD_ENV.to_owned(), vaulted.to_owned()),
            ("GITGATE_LOG".to_owned(), "trace".to_owned()),
        ],
    );
    let auth = http::basic("agent", &token);
    let r = http::get(
        gateway.addr(),
        "/web/repo.git/info/refs?service=git-upload-pack",
        &[("Authorization", &auth)],
    );
    assert_eq!(
        r.status, 502,
        "an upstream refusing the vaulted credential: {r}"
    );
    // The upstream's challenge is not relayed: git must not ask the agent for a password.
    assert_ne!(
        r.header("WWW-Authenticate"),
        Some(r#"Basic realm="upstream""#),
        "{r}"
    );
    let git = Git::new(&tmp.dir("client"));
    let out = git.clone(
        &gateway.url_with_token("agent", &token, "web/repo.git"),
        &tmp.join("clone"),
        &[],
    );
    assert!(!out.success(), "{out}");
    for secret in secret_forms("vault-user", vaulted)
        .into_iter()
        .chain(secret_forms("vault-user", real))
    {
        assert!(!r.contains(&secret), "the response reveals {secret}: {r}");
        assert!(!out.all().contains(&secret), "git printed {secret}: {out}");
        assert!(
            !gateway.output().contains(&secret),
            "the gateway's output reveals {secret}:\n{}",
            gateway.output()
        );
    }
}
