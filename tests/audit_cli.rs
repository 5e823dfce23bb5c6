//! `gitgate audit ...` and `gitgate replay` against a record written through the library, as
//! the gateway writes it: a fetch, an allowed push with its pack and upstream result, a denied
//! push. (That the gateway records every operation is tested with the gateway itself.)

use std::path::{Path, PathBuf};
use std::process::Command;

use gitgate::audit::record::{
    CommitRecord, Decision, FetchFacts, Finding, Operation, PushFacts, PushResult, RefOp,
    RefRecord, RefResult, Service, Transport,
};
use gitgate::audit::{Audit, AuditOptions, RecordKind};
use serde_json::Value;

use crate::harness::process::{self, Output};
use crate::harness::repo::Repo;
use crate::harness::{gateway, git, Tmp};

/// A config, an upstream with history, and a record of one session.
struct Setup {
    tmp: Tmp,
    config: PathBuf,
    /// The pack the allowed push carried.
    pack: Vec<u8>,
    /// The commit it introduced.
    commit: String,
}

const SESSION: &str = "sess-1";

impl Setup {
    fn new() -> Setup {
        let tmp = Tmp::new("audit-cli");
        let root = tmp.dir("root");
        let (upstream, _) = Repo::with_history(&root.join("demo.git"));
        let config = tmp.join("gitgate.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nstate_dir = \"state\"\n\n[[upstream]]\nname = \"local\"\nurl = \"file://{}\"\n",
                root.display()
            ),
        )
        .expect("write the config");

        // The agent's side: a clone with one more commit, packed as a push sends it.
        let work = tmp.join("work.git");
        git::ok(
            tmp.path(),
            &[
                "clone",
                "-q",
                "--bare",
                &upstream.path.to_string_lossy(),
                &work.to_string_lossy(),
            ],
        );
        let work = Repo { path: work };
        let old = work.rev("refs/heads/main").expect("main");
        let readme = b"# demo\n\nline two\nline three\n";
        let commit = work.commit(
            "main",
            &[
                ("README.md", readme.as_slice()),
                ("src/new.rs", b"fn x() {}\n"),
            ],
            "Add a feature\n\nwith a body",
        );
        let pack = pack_objects(&work.path, &format!("{commit}\n^{old}\n"));

        let audit = Audit::open(&tmp.join("state"), &AuditOptions::default()).expect("open");
        let spool = tmp.join("spool.pack");
        std::fs::write(&spool, &pack).expect("spool");
        let pack_ref = audit.store_pack(&spool).expect("store the pack");

        let base = |id: &str, service: Service, decision: Decision| Operation {
            id: id.into(),
            session: SESSION.into(),
            time: gitgate::audit::record::now(),
            duration_ms: 12,
            identity: "agent-1".into(),
            auth: "token".into(),
            client: Some("127.0.0.1:50000".into()),
            transport: Transport::Http,
            repo: "local/demo".into(),
            service,
            protocol: 2,
            decision,
            reason: None,
            refs: Vec::new(),
            fetch: None,
            push: None,
            pack: None,
        };
        let mut fetch = base("op-fetch", Service::UploadPack, Decision::Allow);
        fetch.fetch = Some(FetchFacts {
            command: Some("fetch".into()),
            wants: vec![old.clone()],
            haves: 0,
            ..FetchFacts::default()
        });
        let mut push = base("op-push", Service::ReceivePack, Decision::Allow);
        push.protocol = 0;
        push.refs = vec![RefRecord {
            refname: "refs/heads/agent/x".into(),
            old: "0".repeat(40),
            new: commit.clone(),
            op: Some(RefOp::Create),
            decision: Decision::Allow,
            reason: None,
        }];
        push.push = Some(PushFacts {
            capabilities: vec!["report-status".into()],
            push_options: Vec::new(),
            commits: vec![CommitRecord {
                id: commit.clone(),
                author: "Test Author <author@example.com>".into(),
                committer: "Test Committer <committer@example.com>".into(),
                subject: "Add a feature".into(),
            }],
            paths: vec!["README.md".into(), "src/new.rs".into()],
            findings: Vec::new(),
            not_scanned: Vec::new(),
        });
        push.pack = Some(pack_ref);
        let mut denied = base("op-denied", Service::ReceivePack, Decision::Deny);
        denied.protocol = 0;
        denied.reason = Some("secret-scan: aws-access-key-id in config.env".into());
        denied.refs = vec![RefRecord {
            refname: "refs/heads/main".into(),
            old: old.clone(),
            new: "2".repeat(40),
            op: Some(RefOp::Update),
            decision: Decision::Deny,
            reason: Some("secret-scan: aws-access-key-id in config.env".into()),
        }];
        denied.push = Some(PushFacts {
            findings: vec![Finding {
                detector: "aws-access-key-id".into(),
                path: "config.env".into(),
                line: Some(3),
                fingerprint: "f1e2d3".into(),
                commit: None,
            }],
            ..PushFacts::default()
        });
        audit.append(RecordKind::Operation, &fetch).expect("fetch");
        audit.append(RecordKind::Operation, &push).expect("push");
        let result = PushResult {
            op: "op-push".into(),
            session: SESSION.into(),
            unpack: Some("ok".into()),
            refs: vec![RefResult {
                refname: "refs/heads/agent/x".into(),
                ok: true,
                reason: None,
            }],
            ..PushResult::default()
        };
        audit.append(RecordKind::Result, &result).expect("result");
        audit
            .append(RecordKind::Operation, &denied)
            .expect("denied");
        Setup {
            tmp,
            config,
            pack,
            commit,
        }
    }

    fn gitgate(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        let config = self.config.to_string_lossy().into_owned();
        all.extend(["--config", &config]);
        gateway::run(self.tmp.path(), &all)
    }

    fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        let out = self.gitgate(args);
        out.assert_ok();
        out.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Edits the database as an attacker with write access to `state_dir` would.
    fn tamper(&self, sql: &str) {
        let conn = rusqlite::Connection::open(self.tmp.join("state/audit.db")).expect("open db");
        conn.execute_batch(&format!("DROP TRIGGER records_no_update; {sql}"))
            .expect("tamper");
    }
}

/// `git pack-objects --revs --stdout` of `revs` in the bare repository `dir`.
fn pack_objects(dir: &Path, revs: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = git::command()
        .current_dir(dir)
        .args(["pack-objects", "--revs", "--stdout", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn git pack-objects");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(revs.as_bytes())
        .expect("write revs");
    let out = child.wait_with_output().expect("git pack-objects");
    assert!(out.status.success());
    out.stdout
}

#[test]
fn log_json_lists_operations_with_the_contract_fields() {
    let s = Setup::new();
    let lines = s.json_lines(&["audit", "log", "--format", "json"]);
    let ids: Vec<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids, ["op-fetch", "op-push", "op-denied"]);
    for line in &lines {
        for field in [
            "id",
            "session",
            "time",
            "identity",
            "transport",
            "repo",
            "service",
            "decision",
            "refs",
        ] {
            assert!(line.get(field).is_some(), "{field} missing: {line}");
        }
        let time = line["time"].as_str().unwrap_or_default();
        assert!(time.ends_with('Z') && time.contains('T'), "{time}");
    }
    let push = &lines[1];
    assert_eq!(push["service"], "receive-pack");
    assert_eq!(push["transport"], "http");
    assert_eq!(push["refs"][0]["ref"], "refs/heads/agent/x");
    assert_eq!(push["refs"][0]["op"], "create");
    assert_eq!(push["refs"][0]["decision"], "allow");
    assert_eq!(push["pack"]["bytes"], s.pack.len() as u64);
    let denied = s.json_lines(&["audit", "log", "--format", "json", "--decision", "deny"]);
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["id"], "op-denied");
    assert_eq!(denied[0]["push"]["findings"][0]["path"], "config.env");
    let all = s.json_lines(&["audit", "log", "--format", "json", "--kind", "all"]);
    assert_eq!(all.len(), 4);
    let none = s.json_lines(&["audit", "log", "--format", "json", "--identity", "nobody"]);
    assert!(none.is_empty());
    let text = s.gitgate(&["audit", "log", "--since", "1h"]);
    text.assert_ok();
    assert!(
        text.stdout.contains("agent-1  http  push local/demo  deny"),
        "{text}"
    );
}

#[test]
fn verify_passes_then_names_the_edited_record() {
    let s = Setup::new();
    let out = s.gitgate(&["audit", "verify"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.stdout.trim(), "ok 4 records");
    s.tamper("UPDATE records SET body = replace(body, 'agent-1', 'agent-2') WHERE id = 'op-push'");
    let out = s.gitgate(&["audit", "verify"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stdout.contains("record 2 (id op-push)"), "{out}");
    // A partial check before it passes.
    let out = s.gitgate(&["audit", "verify", "--to", "op-fetch"]);
    assert_eq!(out.code(), Some(0), "{out}");
}

#[test]
fn verify_checks_anchored_heads() {
    let s = Setup::new();
    let head = s.gitgate(&["audit", "head"]);
    head.assert_ok();
    assert!(
        head.stdout.starts_with("gitgate-audit-head v1 seq=4 "),
        "{head}"
    );
    let sink = s.tmp.join("sink.log");
    std::fs::write(&sink, format!("Jun 1 host gitgate: {}", head.stdout)).expect("sink");
    let sink_arg = sink.to_string_lossy().into_owned();
    let out = s.gitgate(&["audit", "verify", "--anchor", &sink_arg]);
    assert_eq!(out.code(), Some(0), "{out}");
    let key = s.gitgate(&["audit", "key"]);
    key.assert_ok();
    assert_eq!(key.stdout.trim().len(), 64);
    let out = s.gitgate(&["audit", "verify", "--public-key", key.stdout.trim()]);
    assert_eq!(out.code(), Some(0), "{out}");
    let other = "11".repeat(32);
    let out = s.gitgate(&["audit", "verify", "--public-key", &other]);
    assert_ne!(out.code(), Some(0), "{out}");
}

#[test]
fn export_pack_writes_the_exact_bytes_which_index() {
    let s = Setup::new();
    let config = s.config.to_string_lossy().into_owned();
    let out = Command::new(gateway::bin())
        .args(["audit", "export-pack", "op-push", "--config", &config])
        .output()
        .expect("run gitgate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == s.pack, "the exported pack differs");
    let exported = s.tmp.join("exported.pack");
    std::fs::write(&exported, &out.stdout).expect("write");
    let repo = Repo::init_bare(&s.tmp.join("check.git"));
    let exported_arg = exported.to_string_lossy().into_owned();
    git::ok(&repo.path, &["index-pack", &exported_arg]);
    let listed = git::ok(&repo.path, &["verify-pack", "-v", &exported_arg]);
    assert!(listed.contains(&s.commit), "{listed}");
    let none = s.gitgate(&["audit", "export-pack", "op-fetch"]);
    assert_eq!(none.code(), Some(2), "{none}");
    assert!(none.stderr.contains("no stored pack"), "{none}");
}

#[test]
fn replay_shows_the_timeline_with_commits_and_line_counts() {
    let s = Setup::new();
    let out = s.gitgate(&["replay", "op-push"]);
    out.assert_ok();
    let text = &out.stdout;
    assert!(text.contains("push local/demo  by agent-1"), "{text}");
    assert!(text.contains("refs/heads/agent/x  0000000 -> "), "{text}");
    assert!(text.contains("create  allow"), "{text}");
    assert!(
        text.contains("Test Author <author@example.com>  Add a feature"),
        "{text}"
    );
    assert!(text.contains("+3     -0  README.md"), "{text}");
    assert!(text.contains("+1     -0  src/new.rs"), "{text}");
    assert!(text.contains("result"), "{text}");

    let events = s.json_lines(&["replay", SESSION, "--format", "json"]);
    let ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    let push = events
        .iter()
        .find(|e| e["id"] == "op-push")
        .expect("the push");
    assert_eq!(push["commits"][0]["subject"], "Add a feature");
    let readme = push["files"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["path"] == "README.md"))
        .expect("README.md");
    assert_eq!(readme["added"], 3);
    assert_eq!(readme["deleted"], 0);
    let denied = s.gitgate(&["replay", "op-denied"]);
    assert!(
        denied
            .stdout
            .contains("finding: aws-access-key-id at config.env:3"),
        "{denied}"
    );
    let unknown = s.gitgate(&["replay", "nothing-like-it"]);
    assert_eq!(unknown.code(), Some(2), "{unknown}");
}

#[test]
fn the_verbs_need_a_store() {
    let tmp = Tmp::new("audit-cli-empty");
    let config = tmp.join("gitgate.toml");
    std::fs::write(&config, "[server]\nstate_dir = \"state\"\n").expect("config");
    let config = config.to_string_lossy().into_owned();
    let out = process::run(
        Command::new(gateway::bin()).args(["audit", "verify", "--config", &config]),
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("no audit store"), "{out}");
    assert!(!tmp.join("state").exists());
}
