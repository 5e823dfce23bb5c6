//! Secret scanning on the push path: a pushed credential is refused with the detector and the
//! path, its value is never echoed (at most 4 characters), and its blob never reaches the
//! upstream — through both upstreams.

use crate::harness::{Kind, Stack};

both_upstreams!(
    a_pushed_secret_is_refused_and_never_reaches_the_upstream,
    a_secret_removed_by_a_later_commit_is_still_found,
    only_the_ref_bringing_the_secret_is_refused,
);

// Fake, pattern-valid AWS credentials (not real keys).
const KEY_ID: &str = "AKIAQ3EGRTL5VNXKZ7WP";
const SECRET: &str = "kX9vR2mQ7tL4pZ8wN3yB6cF1hJ5dS0gA2eU7iO4q";

fn credentials() -> Vec<u8> {
    format!("aws_access_key_id = {KEY_ID}\naws_secret_access_key = \"{SECRET}\"\n").into_bytes()
}

fn blob_id(s: &Stack, dest: &std::path::Path, spec: &str) -> String {
    s.git.ok(dest, &["rev-parse", spec]).trim().to_string()
}

fn a_pushed_secret_is_refused_and_never_reaches_the_upstream(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("clone", &[]);
    let before = s.repo.refs();
    s.git.ok(&dest, &["checkout", "-q", "-b", "leak"]);
    s.git
        .commit_file(&dest, "config/creds.py", &credentials(), "add creds");
    let blob = blob_id(&s, &dest, "HEAD:config/creds.py");

    let out = s.git.push(&dest, &["origin", "leak"]);
    assert!(!out.success(), "the push must fail: {out}");
    assert!(
        out.stderr.contains(
            "! [remote rejected] leak -> leak (secret-scan: aws-access-key-id in config/creds.py line 1"
        ),
        "the reason names the detector and the path: {out}"
    );
    assert!(out.stderr.contains("AKIA…"), "a 4-character preview: {out}");
    for value in [KEY_ID, SECRET, &SECRET[..8]] {
        assert!(
            !out.stderr.contains(value),
            "the value leaked to the client: {out}"
        );
        assert!(
            !s.gateway.output().contains(value),
            "the value leaked to the gateway's output"
        );
    }
    assert_eq!(s.repo.refs(), before, "the upstream's refs are unchanged");
    assert!(!s.repo.has_object(&blob), "the blob reached the upstream");
}

fn a_secret_removed_by_a_later_commit_is_still_found(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("clone", &[]);
    let before = s.repo.refs();
    s.git.ok(&dest, &["checkout", "-q", "-b", "cleanup"]);
    s.git
        .commit_file(&dest, "creds.py", &credentials(), "add creds");
    let blob = blob_id(&s, &dest, "HEAD:creds.py");
    s.git
        .commit_file(&dest, "creds.py", b"# moved to the vault\n", "remove creds");

    let out = s.git.push(&dest, &["origin", "cleanup"]);
    assert!(!out.success(), "history still holds the secret: {out}");
    assert!(
        out.stderr
            .contains("secret-scan: aws-access-key-id in creds.py"),
        "{out}"
    );
    assert_eq!(s.repo.refs(), before);
    assert!(!s.repo.has_object(&blob));
}

fn only_the_ref_bringing_the_secret_is_refused(kind: Kind) {
    let s = Stack::start(kind);
    let dest = s.clone("clone", &[]);
    s.git.ok(&dest, &["checkout", "-q", "-b", "clean"]);
    let clean = s
        .git
        .commit_file(&dest, "notes.txt", b"nothing secret\n", "notes");
    s.git.ok(&dest, &["checkout", "-q", "-b", "leak"]);
    s.git
        .commit_file(&dest, "creds.py", &credentials(), "add creds");
    let blob = blob_id(&s, &dest, "HEAD:creds.py");

    let out = s.git.push(&dest, &["origin", "clean", "leak"]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr
            .contains("! [remote rejected] leak -> leak (secret-scan:"),
        "{out}"
    );
    assert_eq!(s.repo.rev("refs/heads/clean"), Some(clean), "{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/leak"), None);
    assert!(
        !s.repo.has_object(&blob),
        "the rebuilt pack must not carry the denied ref's blob"
    );
}

#[test]
fn scanning_can_be_turned_off() {
    let s = Stack::start_with(Kind::File, "[scan]\nenabled = false\n");
    let dest = s.clone("clone", &[]);
    s.git.ok(&dest, &["checkout", "-q", "-b", "leak"]);
    let head = s
        .git
        .commit_file(&dest, "creds.py", &credentials(), "add creds");
    let out = s.git.push(&dest, &["origin", "leak"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/leak"), Some(head));
}

/// `[scan]` allowlists in the gateway's config: a path glob (`allow_paths`) and a baseline of
/// accepted findings (the JSON Lines `gitgate scan --format json` writes) let those through,
/// and only those: a new secret elsewhere is still refused.
#[test]
fn config_allowlists_let_known_findings_through() {
    let tmp = crate::harness::tmp::Tmp::new("scan-allow");
    let known = tmp.join("known.py");
    std::fs::write(&known, credentials()).expect("write");
    let scan = crate::harness::gateway::run(
        tmp.path(),
        &["scan", &known.to_string_lossy(), "--format", "json"],
    );
    assert_eq!(scan.code(), Some(1), "the scan finds them: {scan}");
    let baseline = tmp.join("baseline.jsonl");
    std::fs::write(&baseline, &scan.stdout).expect("write");

    let s = Stack::start_with(
        Kind::File,
        &format!(
            "[scan]\nallow_paths = [\"tests/fixtures/**\"]\nbaseline = \"{}\"\n",
            baseline.display()
        ),
    );
    let dest = s.clone("clone", &[]);
    // Other values than the baseline's, in an allowed folder.
    let other_id = "AKIAZ7WPQ3EGRTL5VNXK";
    let other_secret: String = SECRET.chars().rev().collect();
    let other =
        format!("aws_access_key_id = {other_id}\naws_secret_access_key = \"{other_secret}\"\n");
    s.git.ok(&dest, &["checkout", "-q", "-b", "fixtures"]);
    let head = s
        .git
        .commit_file(&dest, "tests/fixtures/aws.py", other.as_bytes(), "fixture");
    let out = s.git.push(&dest, &["origin", "fixtures"]);
    assert!(out.success(), "allow_paths: {out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/fixtures"), Some(head));

    // The baseline's values, anywhere.
    s.git.ok(&dest, &["checkout", "-q", "-b", "known"]);
    let head = s
        .git
        .commit_file(&dest, "src/settings.py", &credentials(), "known creds");
    let out = s.git.push(&dest, &["origin", "known"]);
    assert!(out.success(), "baseline: {out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/known"), Some(head));

    // The other values outside the allowed folder: refused.
    s.git.ok(&dest, &["checkout", "-q", "-b", "new"]);
    s.git
        .commit_file(&dest, "src/aws.py", other.as_bytes(), "new creds");
    let out = s.git.push(&dest, &["origin", "new"]);
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr
            .contains("secret-scan: aws-access-key-id in src/aws.py"),
        "{out}"
    );
    assert_eq!(s.repo.rev("refs/heads/new"), None);
}
