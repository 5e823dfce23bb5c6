//! The SSH front door, driven by the real OpenSSH client and git over `GIT_SSH_COMMAND`, in
//! front of both upstreams: clone, fetch and push with protocol v0 and v2, `ssh://` and
//! scp-style URLs, multi-round negotiation, shallow fetches, policy text, the record, keys and
//! certificates, everything that is not git refused, limits, and the certificate endpoint.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::gateway::run;
use crate::harness::http;
use crate::harness::ssh::{describe_certificate, fingerprint, Key, SshStack};
use crate::harness::{Git, Kind};

both_upstreams!(
    clone_fetch_push_v0_over_ssh_url,
    clone_fetch_push_v2_over_scp_url,
    push_deletes_without_a_pack,
    incremental_fetch_negotiates_over_several_rounds,
    shallow_clone_and_deepen,
    policy_denial_is_shown_to_the_client,
    twenty_concurrent_clones,
);

/// `origin/main` of a work tree.
fn origin_main(git: &Git, dest: &std::path::Path) -> String {
    git.rev(dest, "refs/remotes/origin/main")
}

fn clone_fetch_push_v0_over_ssh_url(kind: Kind) {
    let s = SshStack::start(kind);
    let git = s.git().protocol(0);
    let dest = s.stack.work("v0");
    let trace = s.stack.work("trace-v0");
    let out = git
        .trace_packets(&trace)
        .clone(&s.url("repo.git"), &dest, &[]);
    assert!(out.success(), "{out}\n{}", s.logs());
    let packets = std::fs::read_to_string(&trace).expect("packet trace");
    assert!(
        !packets.contains("version 2"),
        "protocol v0 was asked for: {packets}"
    );
    assert_eq!(origin_main(&git, &dest), s.stack.history.main[4]);

    // Push a new branch, then update it.
    git.ok(&dest, &["checkout", "-q", "-b", "topic"]);
    let first = git.commit_file(&dest, "topic.txt", b"one\n", "one");
    let out = git.push(&dest, &["origin", "topic"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.stack.repo.rev("refs/heads/topic"), Some(first));
    let second = git.commit_file(&dest, "topic.txt", b"two\n", "two");
    let out = git.push(&dest, &["origin", "topic"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.stack.repo.rev("refs/heads/topic"), Some(second));

    // The upstream moves; a fetch brings it.
    let moved = s.stack.repo.commit(
        "main",
        &[("new.txt", b"new\n".as_slice())],
        "upstream moved",
    );
    let out = git.fetch(&dest, &["origin"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(origin_main(&git, &dest), moved);
    git.ok(&dest, &["fsck", "--no-progress"]);

    // Protocol v1: v0 with a version line, asked for through GIT_PROTOCOL.
    let v1 = s.git().protocol(1);
    let dest = s.stack.work("v1");
    let trace = s.stack.work("trace-v1");
    let out = v1
        .trace_packets(&trace)
        .clone(&s.url("repo.git"), &dest, &[]);
    assert!(out.success(), "{out}\n{}", s.logs());
    let packets = std::fs::read_to_string(&trace).expect("packet trace");
    assert!(packets.contains("version 1"), "{packets}");
    assert_eq!(origin_main(&v1, &dest), moved);
}

fn clone_fetch_push_v2_over_scp_url(kind: Kind) {
    let s = SshStack::start(kind);
    let client = s.client.with_port(s.ssh_port);
    let git = s.git_with(&client).protocol(2);
    let dest = s.stack.work("v2");
    let trace = s.stack.work("trace-v2");
    let out = git
        .trace_packets(&trace)
        .clone(&s.scp_url("repo.git"), &dest, &[]);
    assert!(out.success(), "{out}\n{}", s.logs());
    let packets = std::fs::read_to_string(&trace).expect("packet trace");
    assert!(
        packets.contains("version 2") && packets.contains("command=fetch"),
        "protocol v2 was used: {packets}"
    );
    assert_eq!(origin_main(&git, &dest), s.stack.history.main[4]);

    // ls-remote (v2 ls-refs) sees what the upstream has.
    let refs = git
        .ls_remote(&s.scp_url("repo.git"))
        .unwrap_or_else(|o| panic!("{o}\n{}", s.logs()));
    assert_eq!(
        refs.get("refs/heads/feature"),
        Some(&s.stack.history.feature[1])
    );

    // Push (receive-pack falls back to v0), then fetch an upstream change with v2.
    let pushed = git.commit_file(&dest, "v2.txt", b"v2\n", "over v2");
    let out = git.push(&dest, &["origin", "HEAD:refs/heads/agent/v2"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.stack.repo.rev("refs/heads/agent/v2"), Some(pushed));
    let moved = s
        .stack
        .repo
        .commit("main", &[("v2.md", b"moved\n".as_slice())], "moved");
    let out = git.fetch(&dest, &["origin"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(origin_main(&git, &dest), moved);

    // The nested repository, without `.git`, also over scp-style.
    let nested = s.stack.work("nested");
    let out = git.clone(
        &format!("git@127.0.0.1:{}/team/app", s.stack.name),
        &nested,
        &[],
    );
    assert!(out.success(), "{out}\n{}", s.logs());
    assert!(nested.join("app.txt").exists());
}

fn push_deletes_without_a_pack(kind: Kind) {
    // A push of deletions only carries no pack, and git keeps its side open waiting for the
    // report: the gateway must answer without waiting for an EOF.
    let s = SshStack::start(kind);
    let dest = s.clone("clone", &[]);
    let git = s.git();
    let out = git.push(&dest, &["origin", "--delete", "feature"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.stack.repo.rev("refs/heads/feature"), None);
    // Nothing to push: git sends a flush and leaves.
    let out = git.push(&dest, &["origin", "main"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert!(out.stderr.contains("Everything up-to-date"), "{out}");
    // Deleting two refs and a tag at once.
    let out = git.push(
        &dest,
        &["origin", "--delete", "refs/tags/light", "refs/tags/v1.0"],
    );
    assert!(out.success(), "{out}\n{}", s.logs());
    let refs = s.stack.repo.refs();
    assert!(!refs.contains_key("refs/tags/light") && !refs.contains_key("refs/tags/v1.0"));
}

fn incremental_fetch_negotiates_over_several_rounds(kind: Kind) {
    // The client has 40 commits the upstream lacks, newer than the shared history, so its
    // first rounds of `have`s are all unknown upstream and the common commits are found in a
    // later round: several stateless requests, with the acknowledged commons replayed.
    let s = SshStack::start(kind);
    let git = s.git().protocol(0);
    let seed = s.clone("seed", &[]);
    for i in 0..70 {
        git.ok(
            &seed,
            &[
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &format!("shared {i}"),
            ],
        );
    }
    let out = git.push(&seed, &["origin", "main"]);
    assert!(out.success(), "{out}\n{}", s.logs());

    let dest = s.clone("dest", &[]);
    git.ok(&dest, &["checkout", "-q", "-b", "local"]);
    let later = git.env("GIT_COMMITTER_DATE", "2025-06-01T00:00:00Z");
    for i in 0..40 {
        later.ok(
            &dest,
            &["commit", "-q", "--allow-empty", "-m", &format!("local {i}")],
        );
    }
    let moved = s.stack.repo.commit(
        "main",
        &[("fresh.txt", b"fresh\n".as_slice())],
        "upstream moved",
    );

    let trace = s.stack.work("trace");
    let out = git.trace_packets(&trace).fetch(&dest, &["origin"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(origin_main(&git, &dest), moved);
    git.ok(&dest, &["fsck", "--no-progress"]);

    let packets = std::fs::read_to_string(&trace).expect("packet trace");
    let lines: Vec<&str> = packets
        .lines()
        .filter_map(|l| l.split("packet: ").nth(1).map(str::trim))
        .collect();
    let done = lines
        .iter()
        .position(|l| *l == "fetch> done")
        .unwrap_or_else(|| panic!("no done: {packets}"));
    let rounds = lines[..done]
        .iter()
        .filter(|l| **l == "fetch> 0000")
        .count();
    assert!(rounds >= 4, "wants + at least 3 rounds of haves: {packets}");
    let commons: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("fetch< ACK ") && l.ends_with(" common"))
        .collect();
    let before_done = lines[..done]
        .iter()
        .filter(|l| l.starts_with("fetch< ACK ") && l.ends_with(" common"))
        .count();
    assert!(before_done > 0, "commons found before done: {packets}");
    let unique: std::collections::HashSet<_> = commons.iter().collect();
    assert_eq!(
        unique.len(),
        commons.len(),
        "a stateful server acknowledges each common object once: {packets}"
    );
    assert_eq!(
        lines.iter().filter(|l| **l == "fetch< NAK").count(),
        rounds - 1,
        "one NAK per round of haves: {packets}"
    );
}

fn shallow_clone_and_deepen(kind: Kind) {
    let s = SshStack::start(kind);
    for version in [0u8, 2] {
        let git = s.git().protocol(version);
        let dest = s.stack.work(&format!("shallow-v{version}"));
        let out = git.clone(&s.url("repo.git"), &dest, &["--depth", "1"]);
        assert!(out.success(), "v{version}: {out}\n{}", s.logs());
        assert_eq!(git.ok(&dest, &["rev-list", "--count", "HEAD"]), "1");
        let out = git.fetch(&dest, &["--deepen", "2", "origin"]);
        assert!(out.success(), "v{version}: {out}\n{}", s.logs());
        assert_eq!(git.ok(&dest, &["rev-list", "--count", "HEAD"]), "3");
        // A fetch into the shallow clone, without deepening.
        let moved = s.stack.repo.commit(
            "main",
            &[(&format!("v{version}.txt"), b"x\n".as_slice())],
            "moved",
        );
        let out = git.fetch(&dest, &["origin"]);
        assert!(out.success(), "v{version}: {out}\n{}", s.logs());
        assert_eq!(origin_main(&git, &dest), moved);
        git.ok(&dest, &["fsck", "--no-progress"]);
    }
}

fn policy_denial_is_shown_to_the_client(kind: Kind) {
    let s = SshStack::start_with(
        kind,
        "",
        "[[rule]]\nname = \"protect-main\"\nsubjects = [\"group:agents\"]\n\
         refs = [\"refs/heads/main\"]\naction = \"deny\"\n\
         message = \"agents push to agent/* only\"\n\n\
         [[rule]]\nname = \"no-team\"\nrepos = [\"*/team/*\"]\nops = [\"fetch\"]\n\
         action = \"deny\"\nmessage = \"team repositories are off limits\"\n",
    );
    let dest = s.clone("clone", &[]);
    let git = s.git();
    let before = s.stack.repo.rev("refs/heads/main");
    git.commit_file(&dest, "x.txt", b"x\n", "to main");
    let out = git.push(&dest, &["origin", "HEAD:main", "HEAD:refs/heads/agent/ok"]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr.contains(
            "! [remote rejected] HEAD -> main (protect-main: agents push to agent/* only)"
        ),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("remote: gitgate: refs/heads/main rejected"),
        "{out}"
    );
    assert_eq!(s.stack.repo.rev("refs/heads/main"), before);
    assert!(
        s.stack.repo.rev("refs/heads/agent/ok").is_some(),
        "the allowed ref of the same push is relayed"
    );

    // A denied fetch: git prints the reason as a remote error.
    for version in [0u8, 2] {
        let out = git.protocol(version).clone(
            &s.url("team/app.git"),
            &s.stack.work(&format!("team-v{version}")),
            &[],
        );
        assert!(!out.success(), "{out}");
        assert!(
            out.stderr.contains("fatal: remote error: ")
                && out.stderr.contains("team repositories are off limits"),
            "v{version}: {out}"
        );
    }
}

fn twenty_concurrent_clones(kind: Kind) {
    let s = SshStack::start(kind);
    let git = s.git().protocol(if kind == Kind::File { 0 } else { 2 });
    let url = s.url("repo.git");
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                // `Git::clone` runs `git clone`; this copies the client.
                let git = Clone::clone(&git);
                let url = url.clone();
                let dest = s.stack.work(&format!("c{i}"));
                scope.spawn(move || (git.clone(&url, &dest, &[]), dest))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("clone thread"))
            .collect()
    });
    for (out, dest) in results {
        assert!(out.success(), "{out}\n{}", s.logs());
        assert_eq!(origin_main(&git, &dest), s.stack.history.main[4]);
    }
}

// ---- the record ----

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn audit_log(s: &SshStack) -> Vec<serde_json::Value> {
    let config = s.stack.gateway.config_path.to_string_lossy().into_owned();
    let out = run(
        s.stack.gateway.dir(),
        &["audit", "log", "--format", "json", "--config", &config],
    );
    assert!(out.success(), "{out}");
    json_lines(&out.stdout)
}

#[test]
fn the_record_shows_transport_ssh() {
    let s = SshStack::start(Kind::File);
    let dest = s.clone("clone", &[]);
    let git = s.git();
    let head = git.commit_file(&dest, "r.txt", b"r\n", "recorded");
    let out = git.push(&dest, &["origin", "HEAD:refs/heads/agent/rec"]);
    assert!(out.success(), "{out}\n{}", s.logs());

    let records = audit_log(&s);
    let push = records
        .iter()
        .find(|r| {
            r["service"] == "receive-pack" && r["refs"].as_array().is_some_and(|a| !a.is_empty())
        })
        .unwrap_or_else(|| panic!("no push record: {records:?}"));
    assert_eq!(push["transport"], "ssh");
    assert_eq!(push["identity"], "agent-1");
    assert_eq!(push["repo"], "local/repo");
    assert_eq!(push["decision"], "allow");
    assert_eq!(push["refs"][0]["ref"], "refs/heads/agent/rec");
    assert_eq!(push["refs"][0]["new"], head.as_str());
    assert!(push["pack"]["sha256"].is_string(), "{push}");
    let fetch = records
        .iter()
        .find(|r| r["service"] == "upload-pack")
        .unwrap_or_else(|| panic!("no fetch record: {records:?}"));
    assert_eq!(fetch["transport"], "ssh");
    // One SSH connection is one session: the push's advertisement and request share it.
    let sessions: std::collections::HashSet<_> = records
        .iter()
        .filter(|r| r["service"] == "receive-pack")
        .map(|r| r["session"].clone())
        .collect();
    assert_eq!(sessions.len(), 1, "{records:?}");

    let config = s.stack.gateway.config_path.to_string_lossy().into_owned();
    let verify = run(
        s.stack.gateway.dir(),
        &["audit", "verify", "--config", &config],
    );
    assert!(verify.success(), "{verify}");
}

// ---- keys and certificates ----

#[test]
fn unknown_key_is_refused() {
    let s = SshStack::start(Kind::File);
    let stranger = s.new_key("stranger");
    let client = s.client.with_key(&stranger);
    let out = s
        .git_with(&client)
        .clone(&s.url("repo.git"), &s.stack.work("x"), &[]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr.contains("Permission denied (publickey)"),
        "{out}"
    );
    assert!(
        s.stack.gateway.output().contains("not in [[ssh_key]]"),
        "{}",
        s.logs()
    );
}

#[test]
fn certificates_from_a_trusted_ca() {
    let s = SshStack::start_with(
        Kind::File,
        "",
        "[[rule]]\nname = \"protect-main\"\nsubjects = [\"group:agents\"]\n\
         refs = [\"refs/heads/main\"]\naction = \"deny\"\nmessage = \"not for agents\"\n",
    );
    let key = s.new_key("bot");
    let dest = s.stack.work("cert-clone");

    // Accepted: key id = identity, principals = groups (here `ci`: main is not protected).
    let cert = s.ca.sign(&key, "release-bot", &["ci"], "-5m:+1h", &[]);
    let git = s.git_with(&s.client.with_key(&key).with_cert(&cert));
    let out = git.clone(&s.url("repo.git"), &dest, &[]);
    assert!(out.success(), "{out}\n{}", s.logs());
    let head = git.commit_file(&dest, "rel.txt", b"release\n", "release");
    let out = git.push(&dest, &["origin", "HEAD:main"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.stack.repo.rev("refs/heads/main"), Some(head));

    // The same key certified with the group `agents`: the rule for agents applies.
    let agents = s.ca.sign(&key, "release-bot", &["agents"], "-5m:+1h", &[]);
    let git = s.git_with(&s.client.with_key(&key).with_cert(&agents));
    git.commit_file(&dest, "rel.txt", b"again\n", "again");
    let out = git.push(&dest, &["origin", "HEAD:main"]);
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("protect-main: not for agents"), "{out}");

    let records = audit_log(&s);
    assert!(
        records
            .iter()
            .any(|r| r["identity"] == "release-bot" && r["transport"] == "ssh"),
        "the key id is the identity: {records:?}"
    );

    // source-address: honoured.
    let here = s.ca.sign(
        &key,
        "pinned",
        &["ci"],
        "-5m:+1h",
        &["source-address=127.0.0.0/8"],
    );
    let out = s
        .git_with(&s.client.with_key(&key).with_cert(&here))
        .ls_remote(&s.url("repo.git"));
    assert!(out.is_ok(), "{out:?}\n{}", s.logs());
    let elsewhere = s.ca.sign(
        &key,
        "pinned",
        &["ci"],
        "-5m:+1h",
        &["source-address=10.1.0.0/16"],
    );
    let out = s
        .git_with(&s.client.with_key(&key).with_cert(&elsewhere))
        .ls_remote(&s.url("repo.git"));
    let out = out.expect_err("a certificate for another source address");
    assert!(out.stderr.contains("Permission denied"), "{out}");
    assert!(
        s.stack
            .gateway
            .output()
            .contains("source-address does not allow"),
        "{}",
        s.logs()
    );
}

#[test]
fn bad_certificates_are_refused() {
    let s = SshStack::start(Kind::File);
    let key = s.new_key("bot");
    let wrong_ca = s.new_key("wrong-ca");
    let cases = [
        (
            "expired",
            s.ca.sign(&key, "bot", &["ci"], "-2h:-1h", &[]),
            "",
        ),
        (
            "not yet valid",
            s.ca.sign(&key, "bot", &["ci"], "+1h:+2h", &[]),
            "",
        ),
        (
            "wrong CA",
            wrong_ca.sign(&key, "bot", &["ci"], "-5m:+1h", &[]),
            "untrusted CA",
        ),
        (
            "unknown critical option",
            s.ca.sign(&key, "bot", &["ci"], "-5m:+1h", &["force-command=ls"]),
            "unknown critical option",
        ),
    ];
    for (what, cert, logged) in cases {
        let out = s
            .git_with(&s.client.with_key(&key).with_cert(&cert))
            .ls_remote(&s.url("repo.git"));
        let out = out.expect_err(what);
        assert!(
            out.stderr.contains("Permission denied (publickey)"),
            "{what}: {out}"
        );
        if !logged.is_empty() {
            assert!(
                s.stack.gateway.output().contains(logged),
                "{what}: {}",
                s.logs()
            );
        }
    }
    // (A host certificate is refused too, see the unit tests: OpenSSH never offers one.)
}

#[test]
fn certificate_endpoint_end_to_end() {
    let s = SshStack::start_with(Kind::File, "max_cert_ttl_seconds = 600", "");
    let key = s.new_key("exchanged");
    // Not `exchanged-cert.pub`, which ssh would load next to the key by itself: the recipe's
    // `-o CertificateFile=` is what presents it.
    let cert = s.keys.join("issued-certificate");

    // The documented recipe: curl, then ssh -i key -o CertificateFile=cert.
    let mut curl = std::process::Command::new("curl");
    curl.args(["-fsS", "-H"])
        .arg(format!("Authorization: Bearer {}", s.stack.token))
        .arg("--data-binary")
        .arg(format!("@{}", key.public.display()))
        .arg("-o")
        .arg(&cert)
        .arg(format!(
            "http://127.0.0.1:{}/api/ssh/certificate",
            s.stack.gateway.port
        ));
    crate::harness::process::run(&mut curl, Duration::from_secs(30)).assert_ok();
    let text = describe_certificate(&cert);
    assert!(text.contains("user certificate"), "{text}");
    assert!(text.contains("Key ID: \"agent-1\""), "{text}");
    assert!(
        text.contains("Principals: \n                agents"),
        "{text}"
    );
    assert!(text.contains("Critical Options: (none)"), "{text}");
    let ttl = validity_seconds(&text);
    assert!(ttl > 0 && ttl <= 600, "validity {ttl} s: {text}");
    // Signed by the gateway's own CA key.
    let ca_fp = fingerprint(&s.stack.gateway.dir().join("ssh_ca_ed25519_key"));
    assert!(text.contains(&ca_fp), "{ca_fp}: {text}");

    let client = s.client.with_key(&key).with_cert(&cert);
    let dest = s.stack.work("via-cert");
    let git = s.git_with(&client);
    let out = git.clone(&s.url("repo.git"), &dest, &[]);
    assert!(out.success(), "{out}\n{}", s.logs());
    let head = git.commit_file(&dest, "c.txt", b"c\n", "by certificate");
    let out = git.push(&dest, &["origin", "HEAD:refs/heads/agent/cert"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.stack.repo.rev("refs/heads/agent/cert"), Some(head));
    // The same key without its certificate is unknown.
    let out = s
        .git_with(&s.client.with_key(&key))
        .ls_remote(&s.url("repo.git"));
    assert!(out.is_err(), "the bare key is not listed");

    // Refusals: no or bad credentials, not a public key.
    let addr = s.stack.gateway.addr();
    let body = key.public_line();
    let none = http::post(addr, "/api/ssh/certificate", &[], body.as_bytes());
    assert_eq!(none.status, 401, "{}", none.text());
    let bad = http::post(
        addr,
        "/api/ssh/certificate",
        &[("Authorization", "Bearer nope")],
        body.as_bytes(),
    );
    assert_eq!(bad.status, 401, "{}", bad.text());
    let auth = format!("Bearer {}", s.stack.token);
    let garbage = http::post(
        addr,
        "/api/ssh/certificate",
        &[("Authorization", auth.as_str())],
        b"hello",
    );
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    let get = http::get(
        addr,
        "/api/ssh/certificate",
        &[("Authorization", auth.as_str())],
    );
    assert_eq!(get.status, 405, "{}", get.text());
}

/// `Valid: from A to B` of `ssh-keygen -L` (UTC), as B - A in seconds.
fn validity_seconds(text: &str) -> i64 {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Valid: from "))
        .unwrap_or_else(|| panic!("no validity in {text}"));
    let mut words = line.split_whitespace();
    let from = words.nth(2).expect("from");
    let to = words.nth(1).expect("to");
    let parse = |t: &str| {
        let mut cmd = std::process::Command::new("date");
        cmd.args(["-u", "-d", t, "+%s"]);
        let out = crate::harness::process::run(&mut cmd, Duration::from_secs(10));
        out.assert_ok();
        out.stdout.trim().parse::<i64>().expect("epoch seconds")
    };
    parse(to) - parse(from)
}

// ---- nothing but git ----

#[test]
fn shells_and_other_commands_are_refused() {
    let s = SshStack::start(Kind::File);
    let client = s.client.with_port(s.ssh_port);
    let shell = client.run(&["git@127.0.0.1"]);
    assert_eq!(shell.code(), Some(1), "{shell}");
    assert!(
        shell.stderr.contains("Hi agent-1!") && shell.stderr.contains("no interactive shell"),
        "{shell}"
    );

    for command in [
        "ls -la /",
        "sh -c id",
        "git-upload-archive 'local/repo.git'",
        "scp -f /etc/passwd",
    ] {
        let out = client.run(&["git@127.0.0.1", command]);
        assert_eq!(out.code(), Some(1), "{command}: {out}");
        assert!(
            out.stderr
                .contains("gitgate serves only git-upload-pack and git-receive-pack"),
            "{command}: {out}"
        );
    }
    let bad = client.run(&["git@127.0.0.1", "git-upload-pack local/repo.git"]);
    assert_eq!(bad.code(), Some(1), "{bad}");
    assert!(bad.stderr.contains("bad argument"), "{bad}");

    let sftp = client.run(&["-s", "git@127.0.0.1", "sftp"]);
    assert_ne!(sftp.code(), Some(0), "{sftp}");
    assert!(
        sftp.stderr.contains("subsystem \"sftp\" is not available"),
        "{sftp}"
    );

    let pty = client.run(&["-tt", "git@127.0.0.1"]);
    assert_ne!(pty.code(), Some(0), "{pty}");

    // git archive --remote runs git-upload-archive: refused with git's own error path.
    let out = s.git().run(
        s.stack.git.home(),
        &["archive", "--remote", &s.url("repo.git"), "HEAD"],
    );
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("serves only git-upload-pack"), "{out}");
}

#[test]
fn port_forwarding_is_refused() {
    let s = SshStack::start(Kind::File);
    let client = s.client.with_port(s.ssh_port);

    // -R: the server refuses the global request.
    let out = client.run(&[
        "-o",
        "ExitOnForwardFailure=yes",
        "-N",
        "-R",
        "0:127.0.0.1:80",
        "git@127.0.0.1",
    ]);
    assert_ne!(out.code(), Some(0), "{out}");
    assert!(
        out.stderr.contains("remote port forwarding failed"),
        "{out}"
    );

    // -L: the listener is local; each connection through it asks the server for a channel,
    // which is refused.
    let local = crate::harness::net::free_port();
    let target = format!("{local}:127.0.0.1:{}", s.stack.gateway.port);
    let mut cmd = client.command_for(&["-N", "-L", &target, "git@127.0.0.1"]);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ssh -L");
    assert!(
        crate::harness::net::wait_for_port(local, Duration::from_secs(20)),
        "ssh -L listens"
    );
    let response = http::request(
        crate::harness::net::loopback(local),
        "GET",
        "/healthz",
        &[],
        b"",
    );
    assert!(
        response.as_ref().map_or(true, |r| r.status != 200),
        "the gateway's HTTP port was reached through the tunnel"
    );
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(stderr.contains("administratively prohibited"), "{stderr}");
    assert!(
        s.stack.gateway.output().contains("direct-tcpip"),
        "{}",
        s.logs()
    );
}

// ---- limits ----

#[test]
fn sessions_per_identity_and_session_time_are_limited() {
    let s = SshStack::start_with(
        Kind::File,
        "max_sessions_per_identity = 1\nmax_session_seconds = 3",
        "",
    );
    let client = s.client.with_port(s.ssh_port);
    // One session that holds on: upload-pack waits for the client's wants.
    let mut held = client.command_for(&["git@127.0.0.1", "git-upload-pack 'local/repo.git'"]);
    let started = Instant::now();
    let mut child = held
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ssh");
    let mut stdout = child.stdout.take().expect("stdout");
    // Kept open: `Child::wait` would close it, and the gateway would see the client's EOF.
    let stdin = child.stdin.take();
    let mut first = [0u8; 4];
    stdout
        .read_exact(&mut first)
        .expect("the advertisement starts");

    let out = s
        .git()
        .ls_remote(&s.url("repo.git"))
        .expect_err("second session");
    assert!(
        out.stderr
            .contains("agent-1 already has 1 git operations running"),
        "{out}"
    );

    // The held session ends at max_session_seconds, with a message.
    let status = child.wait().expect("wait");
    let elapsed = started.elapsed();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    drop(stdin);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("max_session_seconds"), "{stderr}");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");

    // Its slot is free again.
    let refs = s.git().ls_remote(&s.url("repo.git"));
    assert!(refs.is_ok(), "{refs:?}\n{}", s.logs());
}

#[test]
fn idle_connections_are_closed() {
    let s = SshStack::start_with(Kind::File, "idle_timeout_seconds = 2", "");
    let client = s.client.with_port(s.ssh_port);
    let started = Instant::now();
    // -N: no session, nothing happens on the connection.
    let out = client.run(&["-N", "git@127.0.0.1"]);
    assert!(started.elapsed() < Duration::from_secs(30), "{out}");
    assert_ne!(out.code(), Some(0), "{out}");
}

#[test]
fn too_many_failed_authentications_disconnect() {
    let s = SshStack::start_with(Kind::File, "max_auth_attempts = 2", "");
    let keys: Vec<Key> = (0..4).map(|i| s.new_key(&format!("k{i}"))).collect();
    // The agent's own key comes last: the gateway hangs up before it is tried.
    let client = s.client.with_key(&keys[0]).with_port(s.ssh_port);
    let mut extra = Vec::new();
    for k in keys[1..].iter().chain([&s.agent]) {
        extra.push("-i".to_string());
        extra.push(k.private.to_string_lossy().into_owned());
    }
    extra.extend([
        "git@127.0.0.1".into(),
        "git-upload-pack 'local/repo.git'".into(),
    ]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let out = client.run(&extra);
    assert_ne!(out.code(), Some(0), "{out}");
    assert!(!out.stdout.contains("refs/heads/main"), "{out}");
    let refused = s.stack.gateway.output().matches("SSH key refused").count();
    assert_eq!(refused, 2, "{}", s.logs());
}

// ---- the host key ----

#[test]
fn host_key_is_created_private_and_its_fingerprint_logged() {
    let mut s = SshStack::start(Kind::File);
    let path = s.stack.gateway.dir().join("ssh_host_ed25519_key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("host key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let fp = fingerprint(&path);
    assert!(
        s.stack.gateway.output().contains(&format!("host key {fp}")),
        "{}",
        s.logs()
    );
    // Pinned by the client (StrictHostKeyChecking=yes): a clone works.
    s.clone("pinned", &[]);
    // A graceful stop with an idle SSH connection open does not wait for the grace period.
    let client = s.client.with_port(s.ssh_port);
    let mut idle = client
        .command_for(&["-N", "git@127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh -N");
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let status = s.stack.gateway.terminate(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let _ = idle.kill();
    let _ = idle.wait();
}
