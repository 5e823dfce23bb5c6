//! Tests of `pack`: real packs made by git, malformed packs built byte by byte, subsets read back by git.
//!
//! Helpers here run the real `git` with no user or system config.

mod build;
mod growing;
mod malformed;
mod objects;
mod pread;
mod real_git;
mod seeds;
mod spill;
mod split;
mod subset;
mod threads;
mod throughput;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::pack::{Kind, ObjectId};

/// A `git` command with no user or system config and fixed identities.
fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com");
    cmd
}

/// Runs git with `args` and `stdin`, asserting success; returns stdout.
fn run_git(dir: &Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = git(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&stdin));
    let output = child.wait_with_output().expect("git finishes");
    writer.join().expect("stdin writer").expect("stdin written");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Runs a script from `fixtures/pack/` with `args`.
fn fixture(script: &str, args: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/pack")
        .join(script);
    let status = Command::new("bash")
        .arg(&path)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("fixture script runs");
    assert!(status.success(), "{} failed", path.display());
}

/// A temp dir holding a repository made by `history.sh` at `<tmp>/repo`.
fn history_repo(revisions: u32, lines: u32) -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let repo = tmp.path().join("repo");
    let repo_arg = repo.to_str().expect("utf-8 temp path");
    fixture(
        "history.sh",
        &[repo_arg, &revisions.to_string(), &lines.to_string()],
    );
    (tmp, repo)
}

/// `git pack-objects --stdout` of the revisions given on stdin (`--revs`), with `extra` flags.
fn pack_objects(repo: &Path, revs: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["pack-objects", "--stdout", "--revs", "-q"];
    args.extend_from_slice(extra);
    run_git(repo, &args, revs.as_bytes())
}

/// Writes `bytes` as a spooled pack `<dir>/push-1.pack`.
fn spool(dir: &Path, bytes: &[u8]) -> PathBuf {
    spool_as(dir, "push-1.pack", bytes)
}

/// Writes `bytes` as a spooled pack `<dir>/<name>` (a pack being read must not be overwritten).
fn spool_as(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("spool written");
    path
}

/// Every object git lists for `rev-list --objects <revs>`.
fn rev_list_objects(repo: &Path, revs: &[&str]) -> Vec<ObjectId> {
    let mut args = vec!["rev-list", "--objects"];
    args.extend_from_slice(revs);
    let out = run_git(repo, &args, b"");
    let mut ids: Vec<ObjectId> = String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .filter_map(|line| line.split(' ').next())
        .map(|hex| ObjectId::from_hex(hex.as_bytes()).expect("hex id"))
        .collect();
    ids.sort();
    ids
}

/// Kind and content of `id` as git sees it.
fn cat_file(repo: &Path, id: &ObjectId) -> (Kind, Vec<u8>) {
    let hex = id.to_hex().to_string();
    let kind = run_git(repo, &["cat-file", "-t", &hex], b"");
    let kind = match String::from_utf8_lossy(&kind).trim() {
        "commit" => Kind::Commit,
        "tree" => Kind::Tree,
        "blob" => Kind::Blob,
        "tag" => Kind::Tag,
        other => panic!("unexpected kind {other}"),
    };
    let data = run_git(repo, &["cat-file", kind.as_str(), &hex], b"");
    (kind, data)
}
