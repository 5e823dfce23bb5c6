//! The record, end to end: operations through the gateway show up in `gitgate audit log` with
//! the contract's fields, the chain verifies, the kept pack exports, and an unwritable store
//! refuses operations (fail closed) without touching the upstream.

use crate::harness::gateway::run;
use crate::harness::{Kind, Stack};

fn audit(s: &Stack, args: &[&str]) -> crate::harness::process::Output {
    let config = s.gateway.config_path.to_string_lossy().into_owned();
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--config", &config]);
    run(s.gateway.dir(), &full)
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn clones_and_pushes_are_recorded_with_the_contract_fields() {
    let s = Stack::start(Kind::File);
    let dest = s.clone("clone", &[]);
    s.git.ok(&dest, &["checkout", "-q", "-b", "topic"]);
    let head = s.git.commit_file(&dest, "a.txt", b"a\n", "add a");
    let out = s.git.push(&dest, &["origin", "topic"]);
    assert!(out.success(), "{out}\n{}", s.logs());

    let log = audit(&s, &["audit", "log", "--format", "json"]);
    assert!(log.success(), "{log}");
    let records = json_lines(&log.stdout);
    let push = records
        .iter()
        .find(|r| {
            r["service"] == "receive-pack" && r["refs"].as_array().is_some_and(|a| !a.is_empty())
        })
        .unwrap_or_else(|| panic!("no push record in {}", log.stdout));
    for key in [
        "id",
        "session",
        "time",
        "identity",
        "transport",
        "repo",
        "service",
        "decision",
        "refs",
        "pack",
    ] {
        assert!(push.get(key).is_some(), "field {key} missing: {push}");
    }
    assert_eq!(push["identity"], "agent-1");
    assert_eq!(push["transport"], "http");
    assert_eq!(push["decision"], "allow");
    assert_eq!(push["refs"][0]["ref"], "refs/heads/topic");
    assert_eq!(push["refs"][0]["new"], head.as_str());
    assert_eq!(push["refs"][0]["op"], "create");
    assert_eq!(push["refs"][0]["decision"], "allow");
    assert!(push["pack"]["bytes"].as_u64().unwrap_or(0) > 0, "{push}");
    let commit = &push["push"]["commits"][0];
    assert_eq!(commit["id"], head.as_str(), "{push}");
    assert_eq!(
        commit["author"], "Test Author <author@example.com>",
        "{push}"
    );
    assert_eq!(commit["subject"], "add a", "{push}");
    assert!(
        records
            .iter()
            .any(|r| r["service"] == "upload-pack" && r["decision"] == "allow"),
        "the clone is recorded too"
    );

    let verify = audit(&s, &["audit", "verify"]);
    assert!(verify.success(), "{verify}");
    assert!(verify.stdout.starts_with("ok "), "{verify}");

    // The kept pack is exactly what was pushed: git indexes it and finds the commit.
    let id = push["id"].as_str().unwrap_or_default().to_string();
    let pack = s.gateway.dir().join("exported.pack");
    let exported = std::process::Command::new(crate::harness::gateway::bin())
        .current_dir(s.gateway.dir())
        .args(["audit", "export-pack", &id, "--config"])
        .arg(&s.gateway.config_path)
        .output()
        .expect("gitgate audit export-pack");
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    std::fs::write(&pack, &exported.stdout).expect("write pack");
    let indexed = std::process::Command::new("git")
        .args(["index-pack"])
        .arg(&pack)
        .output()
        .expect("git index-pack");
    assert!(
        indexed.status.success(),
        "{}",
        String::from_utf8_lossy(&indexed.stderr)
    );
    let listed = std::process::Command::new("git")
        .args(["verify-pack", "-v"])
        .arg(pack.with_extension("idx"))
        .output()
        .expect("git verify-pack");
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&head));
}

#[test]
fn failed_authentication_is_recorded() {
    let s = Stack::start(Kind::File);
    let out = s.git.ls_remote(&s.anon_url("repo.git"));
    assert!(out.is_err(), "no credentials must fail");
    let log = audit(&s, &["audit", "log", "--format", "json"]);
    let records = json_lines(&log.stdout);
    assert!(
        records.iter().any(|r| r["decision"] == "deny"
            && r["reason"]
                .as_str()
                .is_some_and(|s| s.contains("authentication required"))),
        "{}",
        log.stdout
    );
}

#[test]
fn an_unwritable_record_refuses_operations_and_leaves_the_upstream_alone() {
    let s = Stack::start(Kind::File);
    let dest = s.clone("clone", &[]);
    let before = s.repo.refs();
    // A directory where the head's temporary file must go makes every append fail, even as root.
    std::fs::create_dir_all(s.gateway.dir().join("state/audit.head.tmp")).expect("mkdir");

    s.git.ok(&dest, &["checkout", "-q", "-b", "unrecorded"]);
    s.git.commit_file(&dest, "b.txt", b"b\n", "add b");
    let out = s.git.push(&dest, &["origin", "unrecorded"]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr.contains("cannot record"),
        "a clear reason: {out}"
    );
    assert_eq!(s.repo.refs(), before, "nothing reached the upstream");

    let clone = s.git.clone(&s.url("repo.git"), &s.work("second"), &[]);
    assert!(!clone.success(), "a clone is refused too: {clone}");
    // Both protocols: v0 lists refs in the advertisement itself; v2's advertisement holds only
    // capabilities (not held back for the record) and its `ls-refs` is refused.
    for version in ["0", "2"] {
        let listed = s.git.run(
            &dest,
            &[
                "-c",
                &format!("protocol.version={version}"),
                "ls-remote",
                "origin",
            ],
        );
        assert!(
            !listed.success(),
            "ls-remote v{version} is refused: {listed}"
        );
        assert!(
            !listed.stdout.contains("refs/heads/"),
            "no ref is shown (v{version}): {listed}"
        );
    }
}

/// git's 4-byte probe before a large chunked push (`0000`, no commands) is answered at once
/// with an empty 200, as git's receive-pack answers it: nothing is inspected, relayed or
/// recorded for it (the real request follows and is recorded).
#[test]
fn the_push_probe_is_answered_without_a_record() {
    let s = Stack::start(Kind::File);
    let before = json_lines(&audit(&s, &["audit", "log", "--format", "json"]).stdout).len();
    let auth = s.auth();
    let target = s.target("repo.git/git-receive-pack");
    let r = crate::harness::http::post(
        s.gateway.addr(),
        &target,
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/x-git-receive-pack-request"),
        ],
        b"0000",
    );
    assert_eq!(r.status, 200, "{r}\n{}", s.logs());
    assert!(r.body.is_empty(), "{r}");
    let after = json_lines(&audit(&s, &["audit", "log", "--format", "json"]).stdout).len();
    assert_eq!(before, after, "the probe is not an operation");

    // A push large enough for git to probe first still goes through and is recorded once.
    let dest = s.clone("probe", &[]);
    let head = s
        .git
        .commit_random_file(&dest, "big.bin", 3 * 1024 * 1024, 7);
    let out = s.git.push(&dest, &["origin", "HEAD:refs/heads/probed"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/probed"), Some(head));
    let records = json_lines(&audit(&s, &["audit", "log", "--format", "json"]).stdout);
    let pushes: Vec<_> = records
        .iter()
        .filter(|r| r["service"] == "receive-pack" && r["refs"][0]["ref"] == "refs/heads/probed")
        .collect();
    assert_eq!(pushes.len(), 1, "{records:?}");
    // The random (binary) blob was not scanned, and the record says so.
    let blob = s.git.ok(&dest, &["rev-parse", "HEAD:big.bin"]);
    let skipped = &pushes[0]["push"]["not_scanned"];
    assert_eq!(skipped[0]["blob"], blob.trim(), "{}", pushes[0]);
    assert_eq!(skipped[0]["reason"], "binary", "{}", pushes[0]);
}

both_upstreams!(the_pack_sent_to_a_clone_is_measured);

/// A clone's pack is measured as it passes: the `result` record linked to the fetch has the
/// SHA-256, size and object count of exactly the pack the client stored (a clone keeps the
/// received pack as is), for protocol v0 and v2.
fn the_pack_sent_to_a_clone_is_measured(kind: Kind) {
    use sha2::Digest;
    let s = Stack::start(kind);
    for version in [0u8, 2] {
        let name = format!("measured-v{version}");
        let dest = s.work(&name);
        // transfer.unpackLimit=1: keep the received pack as is (small ones are unpacked).
        let out = s
            .git
            .protocol(version)
            .config("transfer.unpackLimit=1")
            .clone(&s.url("repo.git"), &dest, &[]);
        assert!(out.success(), "{out}\n{}", s.logs());
        let packs: Vec<_> = std::fs::read_dir(dest.join(".git/objects/pack"))
            .expect("the clone's packs")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pack"))
            .collect();
        assert_eq!(packs.len(), 1, "{packs:?}");
        let bytes = std::fs::read(&packs[0]).expect("the received pack");
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        let objects = s
            .git
            .ok(&dest, &["rev-list", "--objects", "--all"])
            .lines()
            .count() as u64;

        // The result record is appended once the answer has streamed: wait a little for it.
        let mut found = None;
        for _ in 0..50 {
            let log = audit(
                &s,
                &["audit", "log", "--kind", "result", "--format", "json"],
            );
            assert!(log.success(), "{log}");
            found = json_lines(&log.stdout)
                .into_iter()
                .find(|r| r["pack_sent"]["sha256"] == sha.as_str());
            if found.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let result = found.unwrap_or_else(|| panic!("v{version}: no result with sha256 {sha}"));
        assert_eq!(result["pack_sent"]["bytes"], bytes.len() as u64, "{result}");
        assert_eq!(result["pack_sent"]["objects"], objects, "{result}");
        assert_eq!(result["complete"], true, "{result}");
        // Linked to the recorded fetch operation.
        let ops = json_lines(&audit(&s, &["audit", "log", "--format", "json"]).stdout);
        let op = ops
            .iter()
            .find(|r| r["id"] == result["op"])
            .unwrap_or_else(|| panic!("no operation {} in {ops:?}", result["op"]));
        assert_eq!(op["service"], "upload-pack");
        assert_eq!(op["decision"], "allow");
    }
    let verify = audit(&s, &["audit", "verify"]);
    assert!(verify.success(), "{verify}");
}

/// `[audit] keep_packs_days` is applied by the serving gateway itself (it holds the record's
/// writer lock, so `gitgate audit prune` cannot run beside it): a pack whose last record is
/// older than the limit goes at start, recorded by a `prune` record, and the chain verifies.
#[test]
fn the_serving_gateway_prunes_old_packs() {
    use std::time::{Duration, SystemTime};
    let mut s = Stack::start_with(Kind::File, "[audit]\nkeep_packs_days = 30\n");
    s.gateway.terminate(Duration::from_secs(30));
    let state = s.gateway.dir().join("state");
    let spool = state.join("spool").join("old.pack");
    std::fs::write(&spool, b"PACK an old pushed pack").expect("write");
    let sha = {
        let options = gitgate::audit::AuditOptions {
            keep_packs_days: Some(30),
            ..gitgate::audit::AuditOptions::default()
        };
        let audit = gitgate::audit::Audit::open(&state, &options).expect("open the record");
        let pack = audit.store_pack(&spool).expect("store");
        let then = SystemTime::now() - Duration::from_secs(40 * 86_400);
        let body = serde_json::json!({
            "id": "op-old",
            "session": "sess-old",
            "time": gitgate::audit::record::format_time(then),
            "identity": "agent-1",
            "transport": "http",
            "repo": "local/repo",
            "service": "receive-pack",
            "decision": "allow",
            "refs": [],
            "pack": { "sha256": pack.sha256, "bytes": pack.bytes },
        });
        audit
            .append(gitgate::audit::RecordKind::Operation, &body)
            .expect("append");
        pack.sha256
    };
    let file = std::fs::read_dir(state.join("packs"))
        .expect("packs")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains(&sha))
        .expect("the stored pack");
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(SystemTime::now() - Duration::from_secs(40 * 86_400)))
        .expect("age the pack");

    s.gateway.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!file.exists(), "the old pack is pruned\n{}", s.logs());
    let log = audit(&s, &["audit", "log", "--kind", "prune", "--format", "json"]);
    assert!(log.stdout.contains(&sha), "{log}");
    let verify = audit(&s, &["audit", "verify"]);
    assert!(verify.success(), "{verify}");
}
