//! Human approval through the real gateway and the real git CLI: a held push approved while it
//! waits, an approval after the client gave up applied by the gateway itself (no re-push), the
//! identical re-push relayed exactly once, no riding of one approval on another update, denial
//! naming the approver, separation of duties (CLI and admin API), stale approvals, the webhook,
//! restarts, the `approvals list` JSON and an intact record afterwards.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::gateway::{self, new_token, token_sha256};
use crate::harness::process::Output;
use crate::harness::{http, net, Kind, Stack};

both_upstreams!(
    held_push_approved_while_waiting,
    approved_after_the_wait_is_applied_by_the_gateway,
    identical_repush_after_approval_succeeds_exactly_once,
    stale_approval_applies_nothing,
    a_partly_held_push_is_applied_without_the_denied_objects,
);

/// A rule holding updates of main for approval, plus `[approval]` settings.
fn config(approval: &str) -> String {
    format!(
        r#"
[[rule]]
name = "review-main"
refs = ["refs/heads/main"]
ops = ["update", "force"]
action = "approve"

[approval]
{approval}
"#
    )
}

/// The upstream's `main` before the test pushed.
fn main_tip(s: &Stack) -> String {
    s.history.main.last().cloned().unwrap_or_default()
}

/// `gitgate ARGS --config <the gateway's config>`.
fn gitgate(s: &Stack, args: &[&str]) -> Output {
    let config = s.gateway.config_path.to_string_lossy().into_owned();
    let mut cmd = std::process::Command::new(gateway::bin());
    cmd.current_dir(s.gateway.dir())
        .args(args)
        .args(["--config", &config]);
    // The config names the upstream's password variable: the CLI reads the config too.
    for (k, v) in s.upstream.env() {
        cmd.env(k, v);
    }
    crate::harness::process::run(&mut cmd, Duration::from_secs(60))
}

/// `approvals list --format json`, parsed.
fn approvals(s: &Stack) -> Vec<Value> {
    let out = gitgate(s, &["approvals", "list", "--format", "json"]);
    assert!(out.success(), "approvals list: {out}");
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn approval(s: &Stack, id: &str) -> Value {
    approvals(s)
        .into_iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no approval {id} in the list"))
}

/// An approval's status, approver and comment (empty when absent).
fn decision_of(s: &Stack, id: &str) -> (String, String, String) {
    let a = approval(s, id);
    let field = |k: &str| a[k].as_str().unwrap_or_default().to_string();
    (field("status"), field("by"), field("comment"))
}

/// Polls `check` every 100 ms for up to 20 s.
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for a pending approval to appear and returns its id.
#[track_caller]
fn pending_id(s: &Stack) -> String {
    let mut id = String::new();
    eventually("a pending approval", || {
        match approvals(s).into_iter().find(|a| a["status"] == "pending") {
            Some(a) => {
                id = a["id"].as_str().unwrap_or_default().to_string();
                true
            }
            None => false,
        }
    });
    id
}

/// Pushes HEAD of `dest` to main with `git`, lets the held push wait `hold` (it must still be
/// waiting then, main unmoved), approves it as alice and expects it to complete with the waiting
/// line printed once (what keeps the connection alive after it prints nothing). Returns the
/// approval id and the push's output.
#[track_caller]
fn held_then_approved(
    s: &Stack,
    git: crate::harness::Git,
    dest: &Path,
    hold: Duration,
    logs: impl Fn() -> String,
) -> (String, Output) {
    let work = dest.to_path_buf();
    let push = std::thread::spawn(move || git.push(&work, &["origin", "HEAD:refs/heads/main"]));
    let id = pending_id(s);
    std::thread::sleep(hold);
    if push.is_finished() {
        let out = push.join().map(|o| o.to_string()).unwrap_or_default();
        panic!("the held push ended early: {out}\n{}", logs());
    }
    assert_eq!(s.repo.rev("refs/heads/main"), Some(main_tip(s)));
    let out = decide(s, "approve", &id, "alice", None);
    assert!(out.success(), "approve: {out}");
    let out = completed(push, &logs);
    let waiting = format!("remote: waiting for approval {id} (review-main)");
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with(&waiting))
            .count(),
        1,
        "one waiting line: {out}"
    );
    (id, out)
}

/// The output of the push running in `push`, which must have succeeded.
#[track_caller]
fn completed(push: std::thread::JoinHandle<Output>, logs: impl FnOnce() -> String) -> Output {
    let out = push
        .join()
        .unwrap_or_else(|_| panic!("the push thread panicked"));
    assert!(
        out.success(),
        "the held push must complete: {out}\n{}",
        logs()
    );
    out
}

/// The approval id in a push's output (`approval pending <ID>` or `waiting for approval <ID>`).
#[track_caller]
fn id_in(out: &Output) -> String {
    for marker in ["approval pending ", "waiting for approval "] {
        if let Some(i) = out.stderr.find(marker) {
            let rest = &out.stderr[i + marker.len()..];
            let id: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            assert!(!id.is_empty(), "empty approval id: {out}");
            return id;
        }
    }
    panic!("no approval id in the push output: {out}");
}

/// Pushes HEAD to main and expects it held and rejected as pending; returns the id.
#[track_caller]
fn push_pending(s: &Stack, dest: &Path) -> String {
    let before = s.repo.refs();
    let out = s.git.push(dest, &["origin", "HEAD:refs/heads/main"]);
    assert!(!out.success(), "the push must be held: {out}\n{}", s.logs());
    let id = id_in(&out);
    let reason = format!(
        "main (review-main: update of refs/heads/main needs approval for agent-1; approval pending {id})"
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("! [remote rejected]") && l.trim_end().ends_with(&reason)),
        "no rejection with {reason:?}: {out}"
    );
    assert_eq!(s.repo.refs(), before, "a held push moved the upstream");
    id
}

#[track_caller]
fn decide(s: &Stack, verb: &str, id: &str, by: &str, comment: Option<&str>) -> Output {
    let mut args = vec!["approvals", verb, id, "--by", by];
    if let Some(c) = comment {
        args.extend(["--comment", c]);
    }
    gitgate(s, &args)
}

#[track_caller]
fn verify_ok(s: &Stack) {
    let out = gitgate(s, &["audit", "verify"]);
    assert!(out.success(), "audit verify: {out}");
    assert!(out.stdout.starts_with("ok "), "audit verify: {out}");
}

/// The chained records of `kind`, as `audit log --format json` shows them.
fn records(s: &Stack, kind: &str) -> Vec<Value> {
    let out = gitgate(s, &["audit", "log", "--format", "json", "--kind", kind]);
    assert!(out.success(), "audit log: {out}");
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn held_push_approved_while_waiting(kind: Kind) {
    let s = Stack::start_with(kind, &config("wait_seconds = 60"));
    let dest = s.clone("clone", &[]);
    let head = s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let trace = s.work("trace");
    let git = s.git.trace_packets(&trace);
    let work = dest.clone();
    let push = std::thread::spawn(move || git.push(&work, &["origin", "HEAD:refs/heads/main"]));
    let id = pending_id(&s);
    // The answer is already streaming while the push is held: git has read the waiting line.
    eventually("the waiting line to reach git", || {
        std::fs::read_to_string(&trace)
            .unwrap_or_default()
            .contains(&format!("waiting for approval {id}"))
    });
    assert_eq!(s.repo.rev("refs/heads/main"), Some(main_tip(&s)));
    let out = decide(&s, "approve", &id, "alice", Some("looks good"));
    assert!(out.success(), "approve: {out}");
    let out = completed(push, || s.logs());
    let waiting = format!(
        "remote: waiting for approval {id} (review-main) \u{2014} approve: gitgate approvals approve {id}"
    );
    assert!(
        out.stderr.lines().any(|l| l.trim_end() == waiting),
        "no {waiting:?} line: {out}"
    );
    assert_eq!(s.repo.rev("refs/heads/main"), Some(head.clone()));
    let a = approval(&s, &id);
    assert_eq!(a["status"], "approved");
    assert_eq!(a["by"], "alice");
    assert_eq!(a["comment"], "looks good");
    assert_eq!(a["outcome"], "pushed");
    eventually("the decision in the record", || {
        records(&s, "decision")
            .iter()
            .any(|r| r["approval"] == id && r["status"] == "approved" && r["by"] == "alice")
    });
    // Plain `audit log` lists the decision with the operations, shaped like one.
    let log = gitgate(&s, &["audit", "log", "--format", "json"]);
    let decision: Value = log
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["kind"] == "decision")
        .unwrap_or_else(|| panic!("no decision in `audit log`: {log}"));
    for key in [
        "id",
        "session",
        "time",
        "identity",
        "transport",
        "repo",
        "service",
        "decision",
    ] {
        assert!(!decision[key].is_null(), "{key} missing in {decision}");
    }
    assert_eq!(decision["decision"], "allow");
    assert_eq!(decision["transport"], "http");
    assert_eq!(decision["refs"][0]["ref"], "refs/heads/main");
    assert_eq!(
        decision["refs"][0]["reason"],
        format!("approval {id} approved by alice: looks good")
    );
    let text = gitgate(&s, &["audit", "log"]);
    assert!(text.stdout.contains("decision"), "{text}");
    verify_ok(&s);
}

fn approved_after_the_wait_is_applied_by_the_gateway(kind: Kind) {
    let s = Stack::start_with(kind, &config("wait_seconds = 1"));
    let dest = s.clone("clone", &[]);
    let head = s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let id = push_pending(&s, &dest);
    let a = approval(&s, &id);
    for (key, want) in [
        ("status", "pending"),
        ("identity", "agent-1"),
        ("ref", "refs/heads/main"),
        ("rule", "review-main"),
    ] {
        assert_eq!(a[key], want, "{key} in {a}");
    }
    assert_eq!(a["repo"], format!("{}/repo", s.name));
    assert_eq!(a["old"], main_tip(&s).as_str());
    assert_eq!(a["new"], head.as_str());
    assert!(a["by"].is_null() && a["comment"].is_null(), "{a}");

    let out = decide(&s, "approve", &id, "alice", None);
    assert!(out.success(), "approve: {out}");
    eventually("the gateway to apply the approved update", || {
        s.repo.rev("refs/heads/main").as_deref() == Some(head.as_str())
    });
    eventually("the outcome", || approval(&s, &id)["outcome"] == "applied");
    // The client sees it at its next fetch, and pushing again changes nothing.
    s.git.ok(&dest, &["fetch", "origin"]);
    assert_eq!(s.git.rev(&dest, "refs/remotes/origin/main"), head);
    let again = s.git.push(&dest, &["origin", "HEAD:refs/heads/main"]);
    assert!(again.success(), "{again}");
    let applied: Vec<Value> = records(&s, "result")
        .into_iter()
        .filter(|r| r["approval"] == id)
        .collect();
    assert_eq!(applied.len(), 1, "one applied result: {applied:?}");
    assert_eq!(applied[0]["outcome"], "applied");
    verify_ok(&s);
}

fn identical_repush_after_approval_succeeds_exactly_once(kind: Kind) {
    let s = Stack::start_with(kind, &config("wait_seconds = 0\napply_on_approve = false"));
    let dest = s.clone("clone", &[]);
    let head = s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let id = push_pending(&s, &dest);
    assert!(decide(&s, "approve", &id, "alice", None).success());
    // Not applied by the gateway (apply_on_approve = false): the re-push does it.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(s.repo.rev("refs/heads/main"), Some(main_tip(&s)));
    let out = s.git.push(&dest, &["origin", "HEAD:refs/heads/main"]);
    assert!(out.success(), "the identical re-push: {out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/main"), Some(head.clone()));
    assert_eq!(approval(&s, &id)["outcome"], "pushed");
    // Once used, the approval covers nothing more: the same update again is held anew.
    s.repo
        .git(&["update-ref", "refs/heads/main", &main_tip(&s)]);
    let second = push_pending(&s, &dest);
    assert_ne!(second, id, "a used approval must not cover a second push");
    verify_ok(&s);
}

fn stale_approval_applies_nothing(kind: Kind) {
    let s = Stack::start_with(kind, &config("wait_seconds = 0"));
    let dest = s.clone("clone", &[]);
    s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let id = push_pending(&s, &dest);
    // Someone else moves main meanwhile.
    let moved = s
        .repo
        .commit("main", &[("other.txt", b"other\n".as_slice())], "moved");
    assert!(decide(&s, "approve", &id, "alice", None).success());
    eventually("the stale outcome", || {
        approval(&s, &id)["outcome"] == "stale"
    });
    assert_eq!(s.repo.rev("refs/heads/main"), Some(moved));
    let results = records(&s, "result");
    assert!(
        results
            .iter()
            .any(|r| r["approval"] == id && r["outcome"] == "stale"),
        "the stale outcome is recorded: {results:?}"
    );
    verify_ok(&s);
}

#[test]
fn a_different_update_does_not_ride_on_an_approval() {
    let s = Stack::start_with(
        Kind::File,
        &config("wait_seconds = 0\napply_on_approve = false"),
    );
    let dest = s.clone("clone", &[]);
    s.git.commit_file(&dest, "x.txt", b"x\n", "approved change");
    let id = push_pending(&s, &dest);
    assert!(decide(&s, "approve", &id, "alice", None).success());
    // Another commit on the same ref from the same old: not covered.
    s.git.ok(&dest, &["reset", "-q", "--hard", "HEAD~1"]);
    s.git.commit_file(&dest, "y.txt", b"y\n", "another change");
    let other = push_pending(&s, &dest);
    assert_ne!(other, id);
    assert_eq!(approval(&s, &id)["outcome"], Value::Null);
}

#[test]
fn denial_names_the_approver() {
    let s = Stack::start_with(Kind::File, &config("wait_seconds = 60"));
    let dest = s.clone("clone", &[]);
    s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    // Denied while the push waits.
    let git = Clone::clone(&s.git);
    let work = dest.clone();
    let push = std::thread::spawn(move || git.push(&work, &["origin", "HEAD:refs/heads/main"]));
    let id = pending_id(&s);
    let out = decide(&s, "deny", &id, "bob", Some("not now"));
    assert!(out.success(), "deny: {out}");
    let out = push
        .join()
        .unwrap_or_else(|_| panic!("the push thread panicked"));
    let reason = format!("main (approval {id} denied by bob: not now)");
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("! [remote rejected]") && l.trim_end().ends_with(&reason)),
        "no rejection naming bob: {out}"
    );
    // The identical push stays denied.
    let again = s.git.push(&dest, &["origin", "HEAD:refs/heads/main"]);
    assert!(
        !again.success() && again.stderr.contains(&reason),
        "{again}"
    );
    assert_eq!(s.repo.rev("refs/heads/main"), Some(main_tip(&s)));
    let a = approval(&s, &id);
    assert_eq!(
        (a["status"].as_str(), a["by"].as_str()),
        (Some("denied"), Some("bob"))
    );
    // A decided approval cannot be decided again.
    let twice = decide(&s, "approve", &id, "carol", None);
    assert_eq!(twice.code(), Some(1), "{twice}");
    verify_ok(&s);
}

#[test]
fn self_approval_is_refused_on_the_cli_and_the_admin_api() {
    let admin_token = new_token();
    let admin_port = net::free_port();
    let extra = format!(
        "[server]\nhttp_listen = \"{{http_listen}}\"\nstate_dir = \"state\"\n\
         admin_listen = \"127.0.0.1:{admin_port}\"\n\n[admin]\ntoken_sha256 = \"{}\"\n{}\
         approver_groups = [\"agents\"]\n",
        token_sha256(&admin_token),
        config("wait_seconds = 0\napply_on_approve = false"),
    );
    let s = Stack::start_with(Kind::File, &extra);
    let dest = s.clone("clone", &[]);
    let head = s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let id = push_pending(&s, &dest);

    let out = decide(&s, "approve", &id, "agent-1", None);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("separation of duties"), "{out}");
    assert_eq!(approval(&s, &id)["status"], "pending");

    let admin = net::loopback(admin_port);
    let path = format!("/api/approvals/{id}");
    // The agent's own token is in approver_groups, but it asked: refused.
    let agent = format!("Bearer {}", s.token);
    let r = http::post(
        admin,
        &format!("{path}/approve"),
        &[
            ("Authorization", &agent),
            ("Content-Type", "application/json"),
        ],
        br#"{"comment": "me"}"#,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("separation of duties"), "{}", r.text());
    // No token, a wrong token.
    assert_eq!(http::get(admin, "/api/approvals", &[]).status, 401);
    let wrong = format!("Bearer {}", new_token());
    assert_eq!(
        http::get(admin, "/api/approvals", &[("Authorization", &wrong)]).status,
        403
    );
    // The admin token sees the details and approves.
    let bearer = format!("Bearer {admin_token}");
    let r = http::get(admin, &path, &[("Authorization", &bearer)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_str(&r.text()).unwrap_or_default();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["details"]["commits"][0]["id"], head.as_str());
    assert_eq!(v["details"]["files"][0], "x.txt");
    assert_eq!(v["details"]["diff"]["insertions"], 1);
    let r = http::get(
        admin,
        "/api/approvals?status=pending",
        &[("Authorization", &bearer)],
    );
    assert!(r.text().contains(&id), "{}", r.text());
    let r = http::post(
        admin,
        &format!("{path}/approve"),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        br#"{"comment": "ok from the API", "by": "carol"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        decision_of(&s, &id),
        ("approved".into(), "carol".into(), "ok from the API".into())
    );
    let again = http::post(
        admin,
        &format!("{path}/deny"),
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(again.status, 409, "{}", again.text());
    let out = s.git.push(&dest, &["origin", "HEAD:refs/heads/main"]);
    assert!(out.success(), "{out}");
    assert_eq!(s.repo.rev("refs/heads/main"), Some(head));
}

/// A minimal webhook receiver: keeps every POSTed body; answers 500 to the first
/// `failures` requests (to exercise the retries), 200 afterwards.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start(failures: usize) -> Receiver {
        let failures = Arc::new(Mutex::new(failures));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                let failures = failures.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        let mut first = true;
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if first {
                                first = false;
                                continue;
                            }
                            let l = line.trim_end();
                            if l.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = l.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    length = v.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        if let Ok(v) = serde_json::from_slice(&body) {
                            if let Ok(mut b) = kept.lock() {
                                b.push(v);
                            }
                        }
                        let fail = match failures.lock() {
                            Ok(mut n) if *n > 0 => {
                                *n -= 1;
                                true
                            }
                            _ => false,
                        };
                        let answer: &[u8] = if fail {
                            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"
                        } else {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                        };
                        let _ = reader.get_mut().write_all(answer);
                    }
                });
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            bodies,
        }
    }

    fn events(&self) -> Vec<Value> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

#[test]
fn the_webhook_receives_new_approvals_and_decisions() {
    let hook = Receiver::start(1);
    let s = Stack::start_with(
        Kind::File,
        &config(&format!(
            "wait_seconds = 0\napply_on_approve = false\nwebhook_url = \"{}\"",
            hook.url
        )),
    );
    let dest = s.clone("clone", &[]);
    s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let id = push_pending(&s, &dest);
    eventually("the pending event", || {
        hook.events()
            .iter()
            .any(|e| e["event"] == "approval.pending" && e["approval"]["id"] == id.as_str())
    });
    // The first delivery was refused (500): it came again.
    eventually("the retried pending event", || {
        hook.events()
            .iter()
            .filter(|e| e["event"] == "approval.pending")
            .count()
            >= 2
    });
    let pending = hook
        .events()
        .into_iter()
        .find(|e| e["event"] == "approval.pending")
        .unwrap_or_default();
    let text = pending["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("agent-1") && text.contains("refs/heads/main") && text.contains(&id),
        "{text}"
    );
    assert!(decide(&s, "approve", &id, "alice", Some("ship it")).success());
    eventually("the decision event", || {
        hook.events()
            .iter()
            .any(|e| e["event"] == "approval.approved" && e["approval"]["id"] == id.as_str())
    });
    let decided = hook
        .events()
        .into_iter()
        .find(|e| e["event"] == "approval.approved")
        .unwrap_or_default();
    let text = decided["text"].as_str().unwrap_or_default();
    assert!(text.contains("approved by alice: ship it"), "{text}");
}

#[test]
fn the_webhook_failing_never_blocks_a_push() {
    let dead = net::free_port();
    let s = Stack::start_with(
        Kind::File,
        &config(&format!(
            "wait_seconds = 0\nwebhook_url = \"http://127.0.0.1:{dead}/hook\""
        )),
    );
    let dest = s.clone("clone", &[]);
    s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let started = Instant::now();
    push_pending(&s, &dest);
    assert!(started.elapsed() < Duration::from_secs(10));
    let other = s.git.commit_file(&dest, "y.txt", b"y\n", "elsewhere");
    let out = s.git.push(&dest, &["origin", "HEAD:refs/heads/elsewhere"]);
    assert!(out.success(), "{out}");
    assert_eq!(s.repo.rev("refs/heads/elsewhere"), Some(other));
}

#[test]
fn approvals_survive_a_gateway_restart() {
    let mut s = Stack::start_with(Kind::File, &config("wait_seconds = 0"));
    let dest = s.clone("clone", &[]);
    let head = s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let id = push_pending(&s, &dest);
    s.gateway.restart();
    assert_eq!(approval(&s, &id)["status"], "pending");
    // The identical push while pending gets the same approval, not a new one.
    assert_eq!(push_pending(&s, &dest), id);
    assert!(decide(&s, "approve", &id, "alice", None).success());
    eventually("the gateway to apply the approved update", || {
        s.repo.rev("refs/heads/main").as_deref() == Some(head.as_str())
    });
    assert_eq!(approvals(&s).len(), 1);
    verify_ok(&s);
}

#[test]
fn approving_while_no_gateway_runs_is_recorded_and_applied_at_start() {
    let mut s = Stack::start_with(Kind::File, &config("wait_seconds = 0"));
    let dest = s.clone("clone", &[]);
    let head = s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let id = push_pending(&s, &dest);
    s.gateway.terminate(Duration::from_secs(30));
    let out = decide(&s, "approve", &id, "alice", None);
    assert!(out.success() && out.stdout.contains("recorded"), "{out}");
    assert!(records(&s, "decision").iter().any(|r| r["approval"] == id));
    verify_ok(&s);
    s.gateway.restart();
    eventually("the gateway to apply the approved update", || {
        s.repo.rev("refs/heads/main").as_deref() == Some(head.as_str())
    });
    let decisions = records(&s, "decision");
    assert_eq!(
        decisions.iter().filter(|r| r["approval"] == id).count(),
        1,
        "one decision record: {decisions:?}"
    );
    verify_ok(&s);
}

#[test]
fn bad_ids_and_unknown_approvals_are_usage_errors() {
    let s = Stack::start_with(Kind::File, &config("wait_seconds = 0"));
    let out = decide(&s, "approve", "no/such", "alice", None);
    assert_eq!(out.code(), Some(2), "{out}");
    let out = decide(&s, "approve", "ap-000000000000", "alice", None);
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("no approval ap-000000000000"), "{out}");
}

#[test]
fn pending_approvals_expire() {
    let s = Stack::start_with(
        Kind::File,
        &config("wait_seconds = 0\nexpire_after_seconds = 1"),
    );
    let dest = s.clone("clone", &[]);
    s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let id = push_pending(&s, &dest);
    eventually("the approval to expire", || {
        approval(&s, &id)["status"] == "expired"
    });
    let out = decide(&s, "approve", &id, "alice", None);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("expired"), "{out}");
    // The same update asks anew.
    assert_ne!(push_pending(&s, &dest), id);
    eventually("the expiry in the record", || {
        records(&s, "decision")
            .iter()
            .any(|r| r["approval"] == id && r["status"] == "expired")
    });
    verify_ok(&s);
}

/// One push updating three refs: one allowed (relayed at once), one held (applied by the gateway
/// after approval, with a pack rebuilt for it alone), one denied (nothing of it ever reaches the
/// upstream, neither with the first relay nor with the applied one).
fn a_partly_held_push_is_applied_without_the_denied_objects(kind: Kind) {
    let extra = format!(
        "{}\n[[rule]]\nname = \"no-private\"\nrefs = [\"refs/heads/private/**\"]\naction = \"deny\"\n",
        config("wait_seconds = 0")
    );
    let s = Stack::start_with(kind, &extra);
    let dest = s.clone("clone", &[]);
    let git = &s.git;
    git.ok(&dest, &["checkout", "-q", "-b", "public"]);
    let public = git.commit_file(&dest, "public.txt", b"public\n", "public");
    git.ok(&dest, &["checkout", "-q", "-b", "reviewed", "origin/main"]);
    let reviewed = git.commit_file(&dest, "reviewed.txt", b"reviewed\n", "reviewed");
    let reviewed_blob = git.ok(&dest, &["rev-parse", "HEAD:reviewed.txt"]);
    git.ok(&dest, &["checkout", "-q", "-b", "private", "origin/main"]);
    git.commit_file(
        &dest,
        "secret.txt",
        b"only the denied ref brings this\n",
        "private",
    );
    let private_blob = git.ok(&dest, &["rev-parse", "HEAD:secret.txt"]);
    let out = git.push(
        &dest,
        &[
            "origin",
            "public:refs/heads/public",
            "reviewed:refs/heads/main",
            "private:refs/heads/private/x",
        ],
    );
    assert!(!out.success(), "{out}");
    let id = id_in(&out);
    assert_eq!(s.repo.rev("refs/heads/public"), Some(public));
    assert_eq!(s.repo.rev("refs/heads/main"), Some(main_tip(&s)));
    assert!(!s.repo.has_object(&reviewed_blob));
    assert!(decide(&s, "approve", &id, "alice", None).success());
    eventually("the gateway to apply the approved update", || {
        s.repo.rev("refs/heads/main").as_deref() == Some(reviewed.as_str())
    });
    assert!(s.repo.has_object(&reviewed_blob));
    assert!(
        !s.repo.has_object(&private_blob),
        "a denied ref's blob reached the upstream"
    );
    assert_eq!(s.repo.rev("refs/heads/private/x"), None);
    verify_ok(&s);
}

/// `gitgate demo` promises "updates of main need approval": its setup holds a push to main, and
/// approving it lands the update without a re-push.
#[test]
fn the_demo_holds_updates_of_main_for_approval() {
    let tmp = crate::harness::Tmp::new("demo");
    let dir = tmp.join("demo");
    let dir_text = dir.to_string_lossy().into_owned();
    let out = gateway::run(tmp.path(), &["demo", "--dir", &dir_text, "--no-serve"]);
    assert!(out.success(), "{out}");
    let config_path = dir.join("gitgate.toml");
    let port = net::free_port();
    let text = std::fs::read_to_string(&config_path).unwrap_or_default();
    assert!(text.contains("action   = \"approve\""), "{text}");
    let text = text
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("admin_listen = \"127.0.0.1:8081\"\n", "")
        .replace("wait_seconds = 30", "wait_seconds = 1");
    std::fs::write(&config_path, text).unwrap_or_else(|e| panic!("{e}"));
    let config = config_path.to_string_lossy().into_owned();
    let mut cmd = std::process::Command::new(gateway::bin());
    cmd.args(["serve", "--config", &config]).current_dir(&dir);
    let _daemon = crate::harness::process::Daemon::spawn("gitgate", &mut cmd, tmp.path());
    assert!(net::wait_for_port(port, Duration::from_secs(30)));
    let token = std::fs::read_to_string(dir.join("demo-token")).unwrap_or_default();
    let url = format!(
        "http://demo-agent:{}@127.0.0.1:{port}/local/demo.git",
        token.trim()
    );
    let git = crate::harness::Git::new(&tmp.dir("client"));
    let clone = tmp.join("clone");
    git.clone(&url, &clone, &[]).assert_ok();
    let head = git.commit_file(&clone, "README.md", b"# demo\nhello\n", "hello");
    let out = git.push(&clone, &["origin", "HEAD:refs/heads/main"]);
    assert!(!out.success(), "{out}");
    let id = id_in(&out);
    assert!(out.stderr.contains("main-needs-approval"), "{out}");
    let out = gateway::run(
        tmp.path(),
        &[
            "approvals",
            "approve",
            &id,
            "--config",
            &config,
            "--by",
            "reviewer",
        ],
    );
    assert!(out.success(), "{out}");
    eventually("the gateway to update main", || {
        crate::harness::git::ok(&dir.join("upstream/demo.git"), &["rev-parse", "main"]) == head
    });
}

/// `[scan] action = "approve"`: a person may let a finding through; the approval's rule is
/// `secret-scan`, and `replay` of the push shows the request, the decision and the outcome.
#[test]
fn a_secret_scan_hit_can_be_approved() {
    let admin_token = new_token();
    let admin_port = net::free_port();
    let s = Stack::start_with(
        Kind::File,
        &format!(
            "[server]\nhttp_listen = \"{{http_listen}}\"\nstate_dir = \"state\"\n\
             admin_listen = \"127.0.0.1:{admin_port}\"\n\n[admin]\ntoken_sha256 = \"{}\"\n\n\
             [scan]\naction = \"approve\"\n\n[approval]\nwait_seconds = 0\n",
            token_sha256(&admin_token)
        ),
    );
    let dest = s.clone("clone", &[]);
    s.git.ok(&dest, &["checkout", "-q", "-b", "fixture"]);
    let creds = "aws_access_key_id = AKIAQ3EGRTL5VNXKZ7WP\n\
                 aws_secret_access_key = \"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\"\n";
    let head = s
        .git
        .commit_file(&dest, "test/creds.py", creds.as_bytes(), "test fixture");
    let out = s.git.push(&dest, &["origin", "fixture"]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr
            .contains("(secret-scan: aws-access-key-id in test/creds.py line 1"),
        "{out}"
    );
    assert!(
        !out.stderr.contains("kX9vR2mQ"),
        "a secret value in the output: {out}"
    );
    let id = id_in(&out);
    let a = approval(&s, &id);
    assert_eq!(a["rule"], "secret-scan");
    assert_eq!(a["ref"], "refs/heads/fixture");
    // The reviewer sees the finding, redacted.
    let r = http::get(
        net::loopback(admin_port),
        &format!("/api/approvals/{id}"),
        &[("Authorization", &format!("Bearer {admin_token}"))],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !r.text().contains("kX9vR2mQ"),
        "a secret value in the API: {}",
        r.text()
    );
    let v: Value = serde_json::from_str(&r.text()).unwrap_or_default();
    let finding = &v["details"]["findings"][0];
    assert_eq!(finding["detector"], "aws-access-key-id");
    assert_eq!(finding["path"], "test/creds.py");
    assert!(decide(&s, "approve", &id, "alice", Some("test fixture")).success());
    eventually("the gateway to create the branch", || {
        s.repo.rev("refs/heads/fixture").as_deref() == Some(head.as_str())
    });
    let op = a["op"].as_str().unwrap_or_default().to_string();
    // The ref moves before the gateway appends the apply's `result` record.
    eventually("the apply's result in the record", || {
        gitgate(&s, &["replay", &op, "--format", "json"])
            .stdout
            .contains("\"result\"")
    });
    let replay = gitgate(&s, &["replay", &op, "--format", "json"]);
    assert!(replay.success(), "{replay}");
    for kind in ["\"approval\"", "\"decision\"", "\"result\""] {
        assert!(
            replay.stdout.contains(kind),
            "replay lacks {kind}: {replay}"
        );
    }
    let listed = gitgate(&s, &["approvals", "list"]);
    assert!(
        listed.stdout.contains(&id)
            && listed.stdout.contains("approved")
            && listed.stdout.contains("by alice"),
        "{listed}"
    );
    verify_ok(&s);
}

/// A held delete (no pack at all) is applied by the gateway too.
#[test]
fn an_approved_delete_is_applied() {
    let s = Stack::start_with(
        Kind::File,
        "[[rule]]\nname = \"keep-feature\"\nrefs = [\"refs/heads/feature\"]\nops = [\"delete\"]\n\
         action = \"approve\"\n\n[approval]\nwait_seconds = 0\n",
    );
    let dest = s.clone("clone", &[]);
    let out = s.git.push(&dest, &["origin", "--delete", "feature"]);
    assert!(!out.success(), "{out}");
    let id = id_in(&out);
    assert!(s.repo.rev("refs/heads/feature").is_some());
    assert!(decide(&s, "approve", &id, "alice", None).success());
    eventually("the gateway to delete the branch", || {
        s.repo.rev("refs/heads/feature").is_none()
    });
    assert_eq!(approval(&s, &id)["outcome"], "applied");
    verify_ok(&s);
}

/// An identity in `approver_groups` decides through the admin API with its own token, and is
/// recorded as the approver.
#[test]
fn an_approver_group_member_decides_with_its_own_token() {
    let lead = new_token();
    let admin_port = net::free_port();
    let extra = format!(
        "[server]\nhttp_listen = \"{{http_listen}}\"\nstate_dir = \"state\"\n\
         admin_listen = \"127.0.0.1:{admin_port}\"\n\n{}\n{}approver_groups = [\"leads\"]\n",
        gateway::token_toml("lead-1", &lead, &["leads"]),
        config("wait_seconds = 0"),
    );
    let s = Stack::start_with(Kind::File, &extra);
    let dest = s.clone("clone", &[]);
    let head = s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let id = push_pending(&s, &dest);
    let admin = net::loopback(admin_port);
    // The agent is no approver: it may neither list nor decide.
    let agent = format!("Bearer {}", s.token);
    assert_eq!(
        http::get(admin, "/api/approvals", &[("Authorization", &agent)]).status,
        403
    );
    let bearer = format!("Bearer {lead}");
    let r = http::post(
        admin,
        &format!("/api/approvals/{id}/approve"),
        // A member cannot name someone else as the approver.
        &[("Authorization", &bearer)],
        br#"{"comment": "fine", "by": "someone-else"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let a = approval(&s, &id);
    assert_eq!(
        (a["by"].as_str(), a["comment"].as_str()),
        (Some("lead-1"), Some("fine"))
    );
    eventually("the gateway to apply the approved update", || {
        s.repo.rev("refs/heads/main").as_deref() == Some(head.as_str())
    });
}

/// `--atomic` with a held update: when the wait ends undecided, nothing of the push lands.
#[test]
fn an_atomic_push_with_an_undecided_update_lands_nothing() {
    let s = Stack::start_with(Kind::File, &config("wait_seconds = 1"));
    let dest = s.clone("clone", &[]);
    s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let before = s.repo.refs();
    let out = s.git.push(
        &dest,
        &[
            "--atomic",
            "origin",
            "HEAD:refs/heads/main",
            "HEAD:refs/heads/elsewhere",
        ],
    );
    assert!(!out.success(), "{out}");
    let id = id_in(&out);
    assert!(out.stderr.contains("atomic push failed"), "{out}");
    assert_eq!(s.repo.refs(), before);
    assert_eq!(approval(&s, &id)["status"], "pending");
}

#[test]
fn a_push_over_ssh_is_held_past_the_idle_timeout_and_applied_once_approved() {
    // git over SSH sends nothing while its push is held: the wait (60 s) outlasts the SSH idle
    // timeout (2 s), yet the session stays open, the waiting line reaches git, and the approval
    // completes the push.
    let s = crate::harness::ssh::SshStack::start_with(
        Kind::File,
        "idle_timeout_seconds = 2",
        &config("wait_seconds = 60"),
    );
    let stack = &s.stack;
    let dest = s.clone("clone", &[]);
    let git = s.git();
    let head = git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    // Well past the idle timeout, with nothing from the client.
    let (id, _) = held_then_approved(stack, git, &dest, Duration::from_secs(5), || s.logs());
    assert_eq!(stack.repo.rev("refs/heads/main"), Some(head));
    let a = approval(stack, &id);
    assert_eq!(a["status"], "approved");
    assert_eq!(a["outcome"], "pushed");
    let decision = records(stack, "decision")
        .into_iter()
        .find(|r| r["approval"] == id)
        .unwrap_or_else(|| panic!("no decision record for {id}"));
    assert_eq!(decision["transport"], "ssh", "{decision}");
    verify_ok(stack);
}

#[test]
fn the_review_link_opens_a_page_that_decides() {
    let admin_token = new_token();
    let admin_port = net::free_port();
    let extra = format!(
        "[server]\nhttp_listen = \"{{http_listen}}\"\nstate_dir = \"state\"\n\
         admin_listen = \"127.0.0.1:{admin_port}\"\n\n[admin]\ntoken_sha256 = \"{}\"\n\
         public_url = \"http://127.0.0.1:{admin_port}/\"\n{}",
        token_sha256(&admin_token),
        config("wait_seconds = 0\napply_on_approve = false"),
    );
    let s = Stack::start_with(Kind::File, &extra);
    let dest = s.clone("clone", &[]);
    s.git
        .commit_file(&dest, "x.txt", b"x\n", "<script>alert(1)</script>");
    let out = s.git.push(&dest, &["origin", "HEAD:refs/heads/main"]);
    let id = id_in(&out);
    // Refused at once (no wait): the link the agent sees leads to the admin listener's page.
    let link = format!("http://127.0.0.1:{admin_port}/approvals/{id}");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.trim_end() == format!("remote:   review: {link}")),
        "no review link: {out}"
    );
    let admin = net::loopback(admin_port);
    let page = format!("/approvals/{id}");
    let r = http::get(admin, &page, &[]);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"gitgate-admin\"")
    );
    let wrong = http::basic("alice", &new_token());
    assert_eq!(
        http::get(admin, &page, &[("Authorization", &wrong)]).status,
        401
    );
    let alice = http::basic("alice", &admin_token);
    let r = http::get(admin, &page, &[("Authorization", &alice)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    assert!(r
        .header("content-security-policy")
        .is_some_and(|c| c.contains("default-src 'none'")));
    let html = r.text();
    for want in [
        id.as_str(),
        "refs/heads/main",
        "agent-1",
        "review-main",
        "<code>x.txt</code>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        &format!("action=\"/approvals/{id}/approve\""),
    ] {
        assert!(html.contains(want), "{want:?} not on the page: {html}");
    }
    assert!(
        !html.contains("<script>"),
        "unescaped commit subject: {html}"
    );
    // The list links to it.
    let r = http::get(admin, "/", &[("Authorization", &alice)]);
    assert_eq!((r.status, r.header("location")), (303, Some("/approvals")));
    let r = http::get(
        admin,
        "/approvals?status=pending",
        &[("Authorization", &alice)],
    );
    assert!(
        r.text().contains(&format!("href=\"/approvals/{id}\"")),
        "{}",
        r.text()
    );

    // A form posted from another site is refused, even with the browser's credentials.
    let form = [
        ("Authorization", alice.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let evil = [&form[..], &[("Origin", "http://evil.example")]].concat();
    let r = http::post(admin, &format!("{page}/approve"), &evil, b"comment=x");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(approval(&s, &id)["status"], "pending");
    // From the page itself: decided by the user name given with the admin token.
    let origin = format!("http://127.0.0.1:{admin_port}");
    let ours = [&form[..], &[("Origin", origin.as_str())]].concat();
    let r = http::post(
        admin,
        &format!("{page}/approve"),
        &ours,
        b"comment=looks+good+%26+safe",
    );
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some(page.as_str())),
        "{}",
        r.text()
    );
    assert_eq!(
        decision_of(&s, &id),
        (
            "approved".into(),
            "alice".into(),
            "looks good & safe".into()
        )
    );
    let r = http::get(admin, &page, &[("Authorization", &alice)]);
    assert!(
        !r.text().contains("<form"),
        "a decided approval has no forms"
    );
    let twice = http::post(admin, &format!("{page}/deny"), &ours, b"");
    assert_eq!(twice.status, 409, "{}", twice.text());
    verify_ok(&s);
}

#[test]
fn keep_alive_packets_reach_git_over_http_and_print_nothing() {
    // A short SSH idle timeout makes the hold send a keep-alive every second on every
    // transport; held 3 s over HTTP, git reads them (empty band-1 packets) and prints nothing.
    let extra = format!(
        "{}\n[ssh]\nidle_timeout_seconds = 2\n",
        config("wait_seconds = 60")
    );
    let s = Stack::start_with(Kind::Http, &extra);
    let dest = s.clone("clone", &[]);
    let head = s.git.commit_file(&dest, "x.txt", b"x\n", "needs review");
    let trace = s.work("trace");
    let git = s.git.trace_packets(&trace);
    held_then_approved(&s, git, &dest, Duration::from_secs(3), || s.logs());
    // git's packet trace shows the empty band-1 packets it skipped.
    let packets = std::fs::read_to_string(&trace).unwrap_or_default();
    let keepalives = packets
        .lines()
        .filter(|l| l.contains("sideband< \\1") && l.trim_end().ends_with("\\1"))
        .count();
    assert!(
        keepalives >= 2,
        "no keep-alive packets in the trace: {packets}"
    );
    assert_eq!(s.repo.rev("refs/heads/main"), Some(head));
}
