//! `gitgate check`: exit 0 for a valid config, 2 with file, line and key for an invalid one.

use crate::harness::gateway::{self, token_toml};
use crate::harness::Tmp;

fn valid_config(tmp: &Tmp) -> String {
    let root = tmp.dir("root");
    format!(
        "[server]\nhttp_listen = \"127.0.0.1:18080\"\nstate_dir = \"state\"\n\n\
         [[upstream]]\nname = \"local\"\nurl = \"file://{}\"\n\n\
         [[upstream]]\nname = \"web\"\nurl = \"http://127.0.0.1:1/\"\n\
         username = \"vault-user\"\npassword_env = \"UPSTREAM_PW\"\n\n{}",
        root.display(),
        token_toml("agent-1", "gg_token", &["agents"])
    )
}

/// Runs `gitgate check --config <tmp>/gitgate.toml` with `text` as the config.
fn check(tmp: &Tmp, text: &str) -> crate::harness::process::Output {
    let path = tmp.join("gitgate.toml");
    std::fs::write(&path, text).expect("write config");
    let mut cmd = std::process::Command::new(gateway::bin());
    cmd.current_dir(tmp.path())
        .env("UPSTREAM_PW", "pw")
        .arg("check")
        .arg("--config")
        .arg(&path);
    crate::harness::process::run(&mut cmd, std::time::Duration::from_secs(60))
}

fn assert_names_line(out: &crate::harness::process::Output, line: usize, key: &str) {
    let err = &out.stderr;
    assert!(err.contains("gitgate.toml"), "the file is not named: {out}");
    assert!(
        err.contains(&format!(":{line}")) || err.contains(&format!("line {line}")),
        "line {line} is not named: {out}"
    );
    assert!(err.contains(key), "the key {key} is not named: {out}");
}

#[test]
fn check_accepts_a_valid_config() {
    let tmp = Tmp::new("check");
    let out = check(&tmp, &valid_config(&tmp));
    assert_eq!(out.code(), Some(0), "{out}");
}

#[test]
fn check_rejects_an_unknown_key_with_file_and_line() {
    let tmp = Tmp::new("check");
    let text = valid_config(&tmp).replacen(
        "state_dir = \"state\"\n",
        "state_dir = \"state\"\nbogus_key = 1\n",
        1,
    );
    assert_eq!(text.lines().nth(3), Some("bogus_key = 1"));
    let out = check(&tmp, &text);
    assert_eq!(out.code(), Some(2), "{out}");
    assert_names_line(&out, 4, "bogus_key");
}

#[test]
fn check_rejects_an_unknown_key_in_an_upstream() {
    let tmp = Tmp::new("check");
    let text = valid_config(&tmp).replacen(
        "username = \"vault-user\"\n",
        "username = \"vault-user\"\npasword_env = \"TYPO\"\n",
        1,
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("pasword_env"))
        .expect("the typo line")
        + 1;
    let out = check(&tmp, &text);
    assert_eq!(out.code(), Some(2), "{out}");
    assert_names_line(&out, line, "pasword_env");
}

#[test]
fn check_rejects_a_missing_file_with_exit_2() {
    let tmp = Tmp::new("check");
    let mut cmd = std::process::Command::new(gateway::bin());
    cmd.arg("check")
        .arg("--config")
        .arg(tmp.join("absent.toml"));
    let out = crate::harness::process::run(&mut cmd, std::time::Duration::from_secs(60));
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(out.stderr.contains("absent.toml"), "{out}");
}
