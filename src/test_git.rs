//! The git CLI for unit tests: isolated from the machine's configuration, with an identity for
//! commits, failing the test when git fails.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `git args` in `dir` with `input` on its standard input; returns its standard output.
pub(crate) fn git(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("git")
        .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("input");
    let out = child.wait_with_output().expect("git ends");
    assert!(out.status.success(), "git {args:?}");
    out.stdout
}

/// [`git`] without input, its output as trimmed text.
pub(crate) fn git_text(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(git(dir, args, b""))
        .expect("utf-8")
        .trim()
        .to_string()
}
