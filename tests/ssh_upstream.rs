//! HTTP front door -> SSH upstream: a real OpenSSH sshd forcing git-shell, reached with the
//! vaulted key and the host key pinned by known_hosts. Clone, fetch (over several negotiation
//! rounds) and push with protocol v0 and v2; policy, force detection through the mirror and
//! secret scanning as for the other upstreams; a wrong or missing pin and an unreachable
//! upstream refused cleanly, with nothing reaching the upstream.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::gateway::{self, Gateway};
use crate::harness::repo::Repo;
use crate::harness::sshd::Sshd;
use crate::harness::{net, Git, Kind, Stack, Tmp};
use crate::policy_push::{push_lands, push_rejected};

/// Clones through the gateway with protocol `version`; the packet trace proves which
/// protocol the upstream spoke (the gateway relays its advertisement).
fn clone_with(version: u8) {
    let s = Stack::start(Kind::Ssh);
    let trace = s.work(&format!("trace-v{version}"));
    let dest = s.work("clone");
    let out = s
        .git
        .protocol(version)
        .trace_packets(&trace)
        .clone(&s.url("repo.git"), &dest, &[]);
    assert!(out.success(), "clone failed: {out}\n{}", s.logs());
    let head = s.git.rev(&dest, "HEAD");
    assert_eq!(Some(&head), s.history.main.last(), "clone has main's tip");
    let trace = std::fs::read_to_string(&trace).unwrap_or_default();
    assert_eq!(
        trace.contains("< version 2"),
        version == 2,
        "protocol v{version} end to end:\n{trace}"
    );
    // Every ref the upstream has, as the upstream has it.
    let listed = s
        .git
        .protocol(version)
        .ls_remote(&s.url("repo.git"))
        .unwrap_or_else(|out| panic!("ls-remote failed: {out}\n{}", s.logs()));
    for (name, id) in s.repo.refs() {
        assert_eq!(listed.get(&name), Some(&id), "{name} in ls-remote");
    }
}

#[test]
fn clone_v0() {
    clone_with(0);
}

#[test]
fn clone_v1() {
    clone_with(1);
}

#[test]
fn clone_v2() {
    clone_with(2);
}

/// A clone with 40 commits of its own fetches a new upstream commit: the client sends its
/// `have`s in several stateless rounds, each relayed as its own exchange on the SSH side.
fn fetch_over_several_rounds(version: u8) {
    let s = Stack::start_with_env(Kind::Ssh, "", &[("GITGATE_LOG", "gitgate=debug")]);
    let git = s.git.protocol(version);
    let dest = s.work("clone");
    let out = git.clone(&s.url("repo.git"), &dest, &[]);
    assert!(out.success(), "clone failed: {out}\n{}", s.logs());
    // Newer than everything upstream, so the client offers them first.
    for i in 0..40 {
        let date = format!("2030-01-01T00:00:{i:02}Z");
        git.env("GIT_COMMITTER_DATE", &date).commit_file(
            &dest,
            "local.txt",
            format!("{i}\n").as_bytes(),
            "local",
        );
    }
    let new = s.repo.commit(
        "main",
        &[("upstream.txt", b"new\n".as_slice())],
        "upstream moved",
    );
    let trace = s.work("fetch-trace");
    let out = git.trace_packets(&trace).fetch(&dest, &["origin"]);
    assert!(out.success(), "fetch failed: {out}\n{}", s.logs());
    assert_eq!(git.rev(&dest, "refs/remotes/origin/main"), new);
    let trace = std::fs::read_to_string(&trace).unwrap_or_default();
    let rounds = trace.matches("> have ").count();
    assert!(
        rounds > 16,
        "several rounds of haves were negotiated ({rounds}):\n{trace}"
    );
    // Every answer's end was found in its pkt-lines, none by waiting for the process to die
    // (a v0 round without `done` leaves upload-pack waiting for more).
    let log = s.gateway.output();
    assert!(log.contains("upstream answer complete"), "{log}");
    assert!(!log.contains("upstream channel closed"), "{log}");
}

#[test]
fn fetch_v0_negotiates_over_several_rounds() {
    fetch_over_several_rounds(0);
}

#[test]
fn fetch_v2_negotiates_over_several_rounds() {
    fetch_over_several_rounds(2);
}

#[test]
fn push_allowed_and_denied_by_policy() {
    let s = Stack::start_with_env(
        Kind::Ssh,
        r#"
[[rule]]
name = "protect-main"
subjects = ["group:agents"]
refs = ["refs/heads/main"]
action = "deny"
message = "agents push to agent/* only"
"#,
        &[("GITGATE_LOG", "debug")],
    );
    let dest = s.clone("clone", &[]);
    let small = s
        .git
        .commit_file(&dest, "notes.txt", b"agent work\n", "agent work");
    // Some megabytes: the pack streams through the channel's flow-control window.
    let big = s
        .git
        .commit_random_file(&dest, "data/blob.bin", 3 << 20, 11);
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/agent/work"],
        "refs/heads/agent/work",
        Some(&big),
    );
    assert!(s.repo.has_object(&small));
    push_rejected(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/main"],
        "refs/heads/main",
        "protect-main: agents push to agent/* only",
    );
    assert_eq!(
        s.repo.rev("refs/heads/main").as_ref(),
        s.history.main.last()
    );
    // A deletion carries no pack: the report still arrives.
    push_lands(
        &s,
        &dest,
        &["origin", ":refs/heads/agent/work"],
        "refs/heads/agent/work",
        None,
    );
    // The vaulted key never shows, even in debug logs.
    let sshd = s.upstream.ssh().expect("an ssh upstream");
    let key = std::fs::read_to_string(&sshd.client_key).expect("read the key");
    let log = s.gateway.output();
    assert!(log.contains("DEBUG"), "debug logging was on");
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !log.contains(line),
            "a line of the private key is in the log"
        );
    }
}

#[test]
fn push_v2_client_falls_back_and_lands() {
    // Push never uses v2; a client configured for it must still work through SSH.
    let s = Stack::start(Kind::Ssh);
    let git = s.git.protocol(2);
    let dest = s.work("clone");
    assert!(git.clone(&s.url("repo.git"), &dest, &[]).success());
    let id = git.commit_file(&dest, "x.txt", b"x\n", "x");
    let out = git.push(&dest, &["origin", "HEAD:refs/heads/agent/v2"]);
    assert!(out.success(), "push failed: {out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/agent/v2"), Some(id));
}

#[test]
fn force_and_fast_forward_told_apart_through_the_mirror() {
    let s = Stack::start_with(
        Kind::Ssh,
        r#"
[[rule]]
name = "no-force"
refs = ["refs/heads/**"]
ops = ["force"]
action = "deny"
"#,
    );
    let dest = s.clone("clone", &[]);
    let ff = s.git.commit_file(&dest, "ff.txt", b"ff\n", "fast-forward");
    push_lands(
        &s,
        &dest,
        &["origin", "HEAD:refs/heads/main"],
        "refs/heads/main",
        Some(&ff),
    );
    s.git.ok(&dest, &["reset", "-q", "--hard", "HEAD~2"]);
    s.git
        .commit_file(&dest, "rewrite.txt", b"rewrite\n", "rewrite");
    push_rejected(
        &s,
        &dest,
        &["--force", "origin", "HEAD:refs/heads/main"],
        "refs/heads/main",
        "no-force: force-push to refs/heads/main is not allowed for agent-1",
    );
    // The classification came from the blobless mirror, fetched over SSH.
    let mirror = s.gateway.dir().join("state/mirrors/sshup/repo.git");
    assert!(
        mirror.join("HEAD").is_file(),
        "mirror at {}",
        mirror.display()
    );
}

#[test]
fn a_pushed_secret_is_refused_before_the_upstream() {
    let s = Stack::start(Kind::Ssh);
    let dest = s.clone("clone", &[]);
    let before = s.repo.refs();
    let id = s.git.commit_file(
        &dest,
        "config/creds.py",
        b"aws_access_key_id = AKIAQ3EGRTL5VNXKZ7WP\n",
        "creds",
    );
    let out = s.git.push(&dest, &["origin", "HEAD:refs/heads/agent/leak"]);
    assert!(!out.success(), "the push must fail: {out}");
    assert!(
        out.stderr
            .contains("(secret-scan: aws-access-key-id in config/creds.py"),
        "{out}"
    );
    assert_eq!(s.repo.refs(), before);
    assert!(!s.repo.has_object(&id), "the commit reached the upstream");
}

/// A gateway in front of `s`'s sshd whose `known_hosts` is `known_hosts`.
fn gateway_pinning(s: &Stack, known_hosts: &Path, token: &str) -> Gateway {
    let sshd = s.upstream.ssh().expect("an ssh upstream");
    let config = format!(
        "[[upstream]]\nname = \"sshup\"\nurl = \"{}\"\nssh_key_file = \"{}\"\nknown_hosts = \"{}\"\n\n{}",
        s.upstream.url(),
        sshd.client_key.display(),
        known_hosts.display(),
        gateway::token_toml("agent-1", token, &["agents"])
    );
    Gateway::start(&config)
}

fn accepted_logins(s: &Stack) -> usize {
    let sshd = s.upstream.ssh().expect("an ssh upstream");
    sshd.logs().matches("Accepted publickey").count()
}

#[test]
fn a_wrong_pinned_host_key_is_refused_and_nothing_reaches_the_upstream() {
    let s = Stack::start(Kind::Ssh);
    let sshd = s.upstream.ssh().expect("an ssh upstream");
    let dest = s.clone("good", &[]);
    s.git.commit_file(&dest, "x.txt", b"x\n", "x");
    let token = gateway::new_token();
    let wrong = gateway_pinning(&s, &sshd.wrong_known_hosts(), &token);
    let url = wrong.url_with_token("agent", &token, "sshup/repo.git");
    let logins = accepted_logins(&s);
    let before = s.repo.refs();

    let out = s.git.clone(&url, &s.work("clone"), &[]);
    assert!(!out.success(), "clone through a wrong pin must fail: {out}");
    assert!(
        out.stderr.contains("host key of [127.0.0.1]:")
            && out
                .stderr
                .contains("does not match the key pinned in known_hosts"),
        "a clear message: {out}"
    );
    let out = s.git.push(&dest, &[&url, "HEAD:refs/heads/agent/x"]);
    assert!(!out.success(), "push through a wrong pin must fail: {out}");
    assert!(out.stderr.contains("host key"), "{out}");
    assert_eq!(s.repo.refs(), before, "upstream refs unchanged");
    assert_eq!(accepted_logins(&s), logins, "the gateway never logged in");
}

#[test]
fn an_unpinned_host_is_refused() {
    let s = Stack::start(Kind::Ssh);
    let sshd = s.upstream.ssh().expect("an ssh upstream");
    // The right key, pinned for another port only.
    let other = s.work("other_known_hosts");
    std::fs::write(&other, format!("[127.0.0.1]:1 {}\n", sshd.host_key)).expect("write");
    let token = gateway::new_token();
    let g = gateway_pinning(&s, &other, &token);
    let logins = accepted_logins(&s);
    let out = s.git.clone(
        &g.url_with_token("agent", &token, "sshup/repo.git"),
        &s.work("c"),
        &[],
    );
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("is not pinned in known_hosts"), "{out}");
    assert_eq!(accepted_logins(&s), logins, "no login reached sshd");
}

#[test]
fn an_unreachable_upstream_fails_fast_and_clearly() {
    let s = Stack::start(Kind::Ssh);
    let sshd = s.upstream.ssh().expect("an ssh upstream");
    let port = net::free_port();
    let kh = s.work("kh");
    std::fs::write(&kh, format!("[127.0.0.1]:{port} {}\n", sshd.host_key)).expect("write");
    let token = gateway::new_token();
    let config = format!(
        "[[upstream]]\nname = \"down\"\nurl = \"ssh://git@127.0.0.1:{port}/srv\"\nssh_key_file = \"{}\"\nknown_hosts = \"{}\"\n\n{}",
        sshd.client_key.display(),
        kh.display(),
        gateway::token_toml("agent-1", &token, &["agents"])
    );
    let g = Gateway::start(&config);
    let started = Instant::now();
    let out = s.git.clone(
        &g.url_with_token("agent", &token, "down/repo.git"),
        &s.work("c"),
        &[],
    );
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("upstream down unreachable"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_missing_repository_is_not_found() {
    let s = Stack::start(Kind::Ssh);
    let out = s.git.clone(&s.url("nope.git"), &s.work("c"), &[]);
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("not found"), "{out}\n{}", s.logs());
}

#[test]
fn check_refuses_unusable_key_and_pins() {
    let s = Stack::start(Kind::Ssh);
    let sshd = s.upstream.ssh().expect("an ssh upstream");
    let dir = s.work("check");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let empty = dir.join("empty_known_hosts");
    std::fs::write(&empty, "# nothing pinned\n").expect("write");
    let loose_key = dir.join("loose_key");
    std::fs::copy(&sshd.client_key, &loose_key).expect("copy");
    set_mode(&loose_key, 0o644);
    for (key, kh, expected) in [
        (
            sshd.client_key.as_path(),
            empty.as_path(),
            "pins no host key",
        ),
        (loose_key.as_path(), sshd.known_hosts.as_path(), "chmod 600"),
    ] {
        let config = dir.join("gitgate.toml");
        std::fs::write(
            &config,
            format!(
                "[[upstream]]\nname = \"u\"\nurl = \"ssh://git@127.0.0.1:22/srv\"\nssh_key_file = \"{}\"\nknown_hosts = \"{}\"\n",
                key.display(),
                kh.display()
            ),
        )
        .expect("write config");
        let out = gateway::run(&dir, &["check", "--config", "gitgate.toml"]);
        assert_eq!(out.code(), Some(2), "{out}");
        assert!(out.stderr.contains(expected), "{out}");
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Shallow clones, deepening and a blobless clone's lazy fetches: the shallow-section and
/// filter paths of the negotiation.
fn shallow_and_partial(version: u8) {
    let s = Stack::start(Kind::Ssh);
    let git = s.git.protocol(version);
    let dest = s.work("shallow");
    let out = git.clone(&s.url("repo.git"), &dest, &["--depth", "1"]);
    assert!(out.success(), "shallow clone failed: {out}\n{}", s.logs());
    let count = |dir: &Path| git.ok(dir, &["rev-list", "--count", "HEAD"]);
    assert_eq!(count(&dest), "1");
    let out = git.fetch(&dest, &["--deepen", "2"]);
    assert!(out.success(), "deepen failed: {out}\n{}", s.logs());
    assert_eq!(count(&dest), "3");

    let partial = s.work("partial");
    let out = git.clone(
        &s.url("repo.git"),
        &partial,
        &["--filter=blob:none", "--no-checkout"],
    );
    assert!(out.success(), "partial clone failed: {out}\n{}", s.logs());
    // The checkout fetches the missing blobs lazily, through the gateway.
    let out = git.run(&partial, &["checkout", "-q", "main"]);
    assert!(out.success(), "lazy fetch failed: {out}\n{}", s.logs());
    assert!(partial.join("src/lib.rs").is_file());
}

#[test]
fn shallow_and_partial_v0() {
    shallow_and_partial(0);
}

#[test]
fn shallow_and_partial_v2() {
    shallow_and_partial(2);
}

#[test]
fn concurrent_clones_each_get_the_whole_repository() {
    let s = Stack::start(Kind::Ssh);
    let tip = s.history.main.last().cloned().unwrap_or_default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let s = &s;
                let tip = &tip;
                scope.spawn(move || {
                    let dest = s.work(&format!("clone-{i}"));
                    let git = s.git.protocol(if i % 2 == 0 { 2 } else { 0 });
                    let out = git.clone(&s.url("repo.git"), &dest, &[]);
                    assert!(out.success(), "clone {i}: {out}\n{}", s.logs());
                    assert_eq!(&git.rev(&dest, "HEAD"), tip);
                    git.ok(&dest, &["fsck", "--no-progress"]);
                })
            })
            .collect();
        for h in handles {
            if let Err(e) = h.join() {
                std::panic::resume_unwind(e);
            }
        }
    });
}

#[test]
fn a_server_without_accept_env_refuses_v2_clearly_and_serves_v0() {
    let tmp = Tmp::new("noenv");
    let root = tmp.dir("root");
    let (_repo, history) = Repo::with_history(&root.join("repo.git"));
    let sshd = Sshd::start_with(&root, false);
    let token = gateway::new_token();
    let config = format!(
        "[[upstream]]\nname = \"old\"\nurl = \"ssh://{}@127.0.0.1:{}{}\"\nssh_key_file = \"{}\"\nknown_hosts = \"{}\"\n\n{}",
        sshd.user,
        sshd.port,
        root.display(),
        sshd.client_key.display(),
        sshd.known_hosts.display(),
        gateway::token_toml("agent-1", &token, &["agents"])
    );
    let g = Gateway::start(&config);
    let url = g.url_with_token("agent", &token, "old/repo.git");
    let git = Git::new(&tmp.dir("client"));
    // A v0 advertisement is never relayed as the answer to a v2 request: refused, clearly.
    let out = git.protocol(2).clone(&url, &tmp.join("v2"), &[]);
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("AcceptEnv GIT_PROTOCOL"), "{out}");
    let dest = tmp.join("v0");
    let out = git.protocol(0).clone(&url, &dest, &[]);
    assert!(out.success(), "{out}\n{}\n{}", g.output(), sshd.logs());
    assert_eq!(Some(&git.rev(&dest, "HEAD")), history.main.last());
}
