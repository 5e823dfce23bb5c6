//! Config tests. Error messages are insta snapshots whose description is the input, so a
//! reviewer sees the TOML and the message side by side; each message must name the file,
//! the line and the key at fault.

#![allow(clippy::unwrap_used, reason = "tests panic on purpose")]

use std::collections::HashMap;
use std::env::VarError;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::resolve::resolve;
use super::{load, parse, Config, ConfigError, Decision, Op, Pattern, Subject, UpstreamTarget};

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/";
/// sha256("agent-token")
const SHA_A: &str = "eb47b9ce4840a5b3ea138b8691253b78035b9289d9014409067e9844c272ef99";
/// sha256("admin-token")
const SHA_B: &str = "10a4c7c9fc5206d6f36dc6944a81bb6f4a3cb0e25014ae3b12e6c3e52712292a";

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Result<String, VarError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned().ok_or(VarError::NotPresent)
}

fn ok_in(text: &str, path: &Path) -> Config {
    let env = env_of(&[("TOKEN", "hunter2-secret"), ("EMPTY", "")]);
    match resolve(text, path, &env) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid config, got: {e}"),
    }
}

fn ok(text: &str) -> Config {
    ok_in(text, Path::new("/etc/gitgate/gitgate.toml"))
}

fn err_in(text: &str, path: &Path) -> String {
    let env = env_of(&[("TOKEN", "hunter2-secret"), ("EMPTY", "")]);
    match resolve(text, path, &env) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e.to_string(),
    }
}

/// Snapshots the message for `text` (read as `gitgate.toml`) under `name`.
fn snap(name: &str, text: &str) {
    let message = err_in(text, Path::new("gitgate.toml"));
    assert!(message.starts_with("gitgate.toml:"), "{message}");
    let mut settings = insta::Settings::clone_current();
    // Crate-independent names: this module also builds outside the gitgate crate.
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(text);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, message));
}

// ---- defaults and resolution ----

#[test]
fn empty_file_is_a_valid_config_with_defaults() {
    let c = ok("");
    assert_eq!(c.source, PathBuf::from("/etc/gitgate/gitgate.toml"));
    assert_eq!(c.server.http_listen.to_string(), "127.0.0.1:8080");
    assert!(c.server.tls.is_none());
    assert!(c.server.ssh_listen.is_none());
    assert!(c.server.admin_listen.is_none());
    assert_eq!(
        c.server.ssh_host_key,
        PathBuf::from("/etc/gitgate/ssh_host_ed25519_key")
    );
    assert_eq!(c.server.state_dir, PathBuf::from("/etc/gitgate/state"));
    assert!(c.server.public_url.is_none());
    assert_eq!(c.server.shutdown_grace, Duration::from_secs(30));
    assert!(c.admin.token_sha256.is_none());
    assert!(c.upstreams.is_empty() && c.tokens.is_empty() && c.oidc.is_empty());
    assert!(c.ssh_keys.is_empty() && c.rules.is_empty());
    assert!(c.ssh.user_ca_keys.is_empty());
    assert_eq!(
        c.ssh.ca_key,
        PathBuf::from("/etc/gitgate/ssh_ca_ed25519_key")
    );
    assert_eq!(c.ssh.max_cert_ttl, Duration::from_secs(3600));
    assert_eq!(c.ssh.max_auth_attempts, 6);
    assert_eq!(c.ssh.idle_timeout, Duration::from_secs(300));
    assert_eq!(c.ssh.max_session, Duration::from_secs(3600));
    assert_eq!(c.ssh.max_sessions_per_identity, 64);
    assert_eq!(c.policy.default, Decision::Allow);
    assert!(c.scan.enabled);
    assert_eq!(c.scan.action, Decision::Deny);
    assert_eq!(c.scan.max_blob_bytes, 10 << 20);
    assert_eq!(c.approval.wait, Duration::from_secs(30));
    assert!(c.approval.apply_on_approve);
    assert_eq!(c.approval.expire_after, Duration::from_secs(86_400));
    assert!(c.approval.approver_groups.is_empty() && c.approval.webhook_url.is_none());
    assert!(c.audit.pack_key_file.is_none());
    assert!(c.audit.keep_packs_days.is_none());
    assert_eq!(c.limits.max_push_bytes, 2 << 30);
    assert_eq!(c.limits.max_request_bytes, 64 << 20);
    assert_eq!(c.limits.max_ref_updates, 10_000);
    assert_eq!(c.limits.max_pkt_lines, 100_000);
}

#[test]
fn empty_tables_are_valid_too() {
    let c = ok("[server]\n[admin]\n[ssh]\n[policy]\n[scan]\n[approval]\n[audit]\n[limits]\n");
    assert_eq!(c.server.http_listen.port(), 8080);
}

#[test]
fn ssh_front_limits() {
    let c = ok("[ssh]\nmax_auth_attempts = 3\nidle_timeout_seconds = 20\n\
                max_session_seconds = 600\nmax_sessions_per_identity = 2\n");
    assert_eq!(c.ssh.max_auth_attempts, 3);
    assert_eq!(c.ssh.idle_timeout, Duration::from_secs(20));
    assert_eq!(c.ssh.max_session, Duration::from_secs(600));
    assert_eq!(c.ssh.max_sessions_per_identity, 2);
    let e = err_in(
        "[ssh]\nmax_sessions_per_identity = 0\n",
        Path::new("/etc/gitgate/gitgate.toml"),
    );
    assert!(e.contains("max_sessions_per_identity"), "{e}");
}

#[test]
fn relative_paths_are_relative_to_the_config_folder() {
    let c = ok(r#"
[server]
state_dir = "var/state"
ssh_host_key = "/abs/host_key"
tls_cert = "tls/cert.pem"
tls_key = "../key.pem"
[audit]
pack_key_file = "keys/pack"
keep_packs_days = 90
[[upstream]]
name = "rel"
url = "file:repos"
[[upstream]]
name = "abs"
url = "file:///srv/git"
"#);
    assert_eq!(c.server.state_dir, PathBuf::from("/etc/gitgate/var/state"));
    assert_eq!(c.server.ssh_host_key, PathBuf::from("/abs/host_key"));
    let tls = c
        .server
        .tls
        .as_ref()
        .map(|t| (t.cert.clone(), t.key.clone()));
    assert_eq!(
        tls,
        Some((
            PathBuf::from("/etc/gitgate/tls/cert.pem"),
            PathBuf::from("/etc/gitgate/../key.pem")
        ))
    );
    assert_eq!(
        c.audit.pack_key_file,
        Some(PathBuf::from("/etc/gitgate/keys/pack"))
    );
    assert_eq!(c.audit.keep_packs_days, Some(90));
    let roots: Vec<_> = c
        .upstreams
        .iter()
        .map(|u| match &u.target {
            UpstreamTarget::File { root } => root.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        roots,
        [
            PathBuf::from("/etc/gitgate/repos"),
            PathBuf::from("/srv/git")
        ]
    );
    assert!(c.upstream("abs").is_some() && c.upstream("nope").is_none());
}

#[test]
fn a_relative_config_path_is_made_absolute() {
    let c = ok_in("", Path::new("conf/gitgate.toml"));
    assert!(c.source.is_absolute());
    assert!(c.server.state_dir.is_absolute());
    assert!(c.server.state_dir.ends_with("conf/state"));
}

#[test]
fn http_upstream_with_env_credential() {
    let c = ok(r#"
[[upstream]]
name = "gh"
url = "https://github.com/org"
password_env = "TOKEN"
ca_file = "ca.pem"
"#);
    let Some(UpstreamTarget::Http {
        base,
        credential: Some(cred),
        ca_file,
    }) = c.upstream("gh").map(|u| &u.target)
    else {
        panic!("{c:?}")
    };
    // The trailing '/' makes join() append.
    assert_eq!(base.as_str(), "https://github.com/org/");
    assert_eq!(
        base.join("repo.git").map(String::from).ok().as_deref(),
        Some("https://github.com/org/repo.git")
    );
    assert_eq!(cred.username, "x-access-token");
    assert_eq!(cred.password.expose(), "hunter2-secret");
    assert_eq!(ca_file.as_deref(), Some(Path::new("/etc/gitgate/ca.pem")));
}

#[test]
fn http_upstream_without_credential() {
    let c = ok("[[upstream]]\nname = \"h\"\nurl = \"http://127.0.0.1:9000/\"\n");
    let Some(UpstreamTarget::Http {
        base, credential, ..
    }) = c.upstream("h").map(|u| &u.target)
    else {
        panic!("{c:?}")
    };
    assert_eq!(base.as_str(), "http://127.0.0.1:9000/");
    assert!(credential.is_none());
}

#[test]
fn password_file_is_read_and_its_line_break_dropped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
    let text = "[[upstream]]\nname = \"h\"\nurl = \"https://git.example\"\nusername = \"bot\"\npassword_file = \"pw\"\n";
    let c = ok_in(text, &dir.path().join("gitgate.toml"));
    let Some(UpstreamTarget::Http {
        credential: Some(cred),
        ..
    }) = c.upstream("h").map(|u| &u.target)
    else {
        panic!("{c:?}")
    };
    assert_eq!(cred.username, "bot");
    assert_eq!(cred.password.expose(), "s3cret");
}

#[test]
fn ssh_upstreams() {
    let c = ok(r#"
[[upstream]]
name = "a"
url = "ssh://git@example.com:2222/srv/my%20repos"
ssh_key_file = "k"
known_hosts = "kh"
[[upstream]]
name = "b"
url = "ssh://[::1]/x"
ssh_key_file = "/k"
known_hosts = "/kh"
"#);
    let targets: Vec<_> = c.upstreams.iter().map(|u| &u.target).collect();
    let [UpstreamTarget::Ssh {
        user,
        host,
        port,
        path,
        key_file,
        known_hosts,
    }, UpstreamTarget::Ssh {
        user: user_b,
        host: host_b,
        port: port_b,
        ..
    }] = targets.as_slice()
    else {
        panic!("{c:?}")
    };
    assert_eq!(
        (user.as_str(), host.as_str(), *port),
        ("git", "example.com", 2222)
    );
    assert_eq!(path, "/srv/my repos");
    assert_eq!(key_file, Path::new("/etc/gitgate/k"));
    assert_eq!(known_hosts, Path::new("/etc/gitgate/kh"));
    assert_eq!(
        (user_b.as_str(), host_b.as_str(), *port_b),
        ("git", "::1", 22)
    );
}

#[test]
fn identities() {
    let c = ok(&format!(
        r#"
[admin]
token_sha256 = "{SHA_B}"
[[token]]
name = "agent-1"
sha256 = "{}"
groups = ["agents"]
[[oidc]]
issuer = "https://login.example.com"
audience = "api://gitgate"
allowed_clients = ["cli"]
[[oidc]]
issuer = "http://127.0.0.1:9999/realm"
audience = "x"
groups_claim = "roles"
name_claim = "email"
leeway_seconds = 0
[[ssh_key]]
name = "agent-1"
public_key = "{KEY_A}  a comment with spaces"
[[ssh_key]]
name = "agent-1"
public_key = "{KEY_B}"
[ssh]
user_ca_keys = ["{KEY_B} ca"]
max_cert_ttl_seconds = 600
"#,
        SHA_A.to_uppercase()
    ));
    let admin = c.admin.token_sha256.map(hex::encode);
    assert_eq!(admin.as_deref(), Some(SHA_B));
    assert_eq!(hex::encode(c.tokens[0].sha256), SHA_A);
    assert_eq!(c.tokens[0].groups, ["agents"]);
    assert_eq!(c.oidc[0].issuer.as_str(), "https://login.example.com/");
    assert_eq!(c.oidc[0].iss, "https://login.example.com");
    assert_eq!(
        (
            c.oidc[0].groups_claim.as_str(),
            c.oidc[0].name_claim.as_str()
        ),
        ("groups", "sub")
    );
    assert_eq!(c.oidc[0].leeway, Duration::from_secs(60));
    assert_eq!(c.oidc[0].allowed_clients, ["cli"]);
    assert_eq!(
        (
            c.oidc[1].groups_claim.as_str(),
            c.oidc[1].name_claim.as_str()
        ),
        ("roles", "email")
    );
    assert_eq!(c.oidc[1].leeway, Duration::ZERO);
    assert_eq!(c.ssh_keys[0].public_key, KEY_A);
    assert!(c.ssh_keys[0].groups.is_empty());
    assert_eq!(c.ssh.user_ca_keys, [KEY_B]);
    assert_eq!(c.ssh.max_cert_ttl, Duration::from_secs(600));
}

#[test]
fn rules_and_their_defaults() {
    let c = ok(r#"
[policy]
default = "deny"
[[rule]]
name = "all-defaults"
action = "allow"
[[rule]]
name = "full"
subjects = ["user:alice", "group:agents", "*"]
repos = ["local/**"]
refs = ["refs/heads/agent/*"]
ops = ["delete", "force", "delete"]
paths = [".github/workflows/**"]
action = "approve"
message = "ask first"
max_blob_bytes = 1048576
require_signed = true
commit_message = '^[A-Z]+-\d+ '
commit_message_deny = "(?i)wip"
author_email = '@example\.com$'
[[rule]]
name = "hide"
hide_refs = ["refs/heads/internal/**"]
[[rule]]
name = "fetch"
subjects = ["group:readers"]
repos = ["local/*"]
ops = ["fetch"]
action = "deny"
require_signed = false
"#);
    assert_eq!(c.policy.default, Decision::Deny);
    let r = &c.rules[0];
    assert_eq!(r.subjects, [Subject::Any]);
    assert_eq!(r.ops, Op::PUSH);
    assert!(r.repos[0].is_match("local/deep/repo") && r.refs[0].is_match("refs/heads/x/y"));
    assert!(r.paths.is_empty() && r.hide_refs.is_empty() && r.message.is_none());
    assert!(r.max_blob_bytes.is_none() && !r.require_signed);
    assert!(r.commit_message.is_none() && r.commit_message_deny.is_none());
    assert!(r.author_email.is_none());
    let r = &c.rules[1];
    assert_eq!(
        r.subjects,
        [
            Subject::User("alice".into()),
            Subject::Group("agents".into()),
            Subject::Any
        ]
    );
    assert_eq!(r.ops, [Op::Delete, Op::Force]);
    assert_eq!(r.action, Some(Decision::Approve));
    assert_eq!(r.message.as_deref(), Some("ask first"));
    assert_eq!(r.refs[0].as_str(), "refs/heads/agent/*");
    assert_eq!(r.max_blob_bytes, Some(1 << 20));
    assert!(r.require_signed);
    let re = |r: &Option<regex::Regex>| r.as_ref().map(|r| r.as_str().to_string());
    assert_eq!(re(&r.commit_message).as_deref(), Some(r"^[A-Z]+-\d+ "));
    assert!(r.commit_message.as_ref().unwrap().is_match("ABC-12 fix"));
    assert!(r
        .commit_message_deny
        .as_ref()
        .unwrap()
        .is_match("a WIP commit"));
    assert!(r.author_email.as_ref().unwrap().is_match("a@example.com"));
    assert!(!r
        .author_email
        .as_ref()
        .unwrap()
        .is_match("a@example.community"));
    let r = &c.rules[2];
    assert_eq!(r.action, None);
    assert_eq!(r.hide_refs[0].as_str(), "refs/heads/internal/**");
    let r = &c.rules[3];
    assert_eq!(
        (r.ops.as_slice(), r.action),
        ([Op::Fetch].as_slice(), Some(Decision::Deny))
    );
    assert!(!r.require_signed);
}

#[test]
fn pattern_star_stays_in_a_segment_and_double_star_crosses() {
    let p = |g: &str| Pattern::new(g).unwrap();
    assert!(p("refs/heads/agent/*").is_match("refs/heads/agent/x"));
    assert!(!p("refs/heads/agent/*").is_match("refs/heads/agent/x/y"));
    assert!(p("refs/heads/agent/**").is_match("refs/heads/agent/x/y"));
    assert!(p("local/*").is_match("local/demo"));
    assert!(!p("local/*").is_match("other/demo"));
    assert!(p(".github/workflows/**").is_match(".github/workflows/ci.yml"));
    assert!(p("**/*.pem").is_match("a/b/key.pem") && p("**/*.pem").is_match("key.pem"));
    // The lone `*`, the documented default, matches everything.
    assert!(p("*").is_match("refs/heads/a/b") && Pattern::any().is_match(""));
    assert!(Pattern::new("refs/[").is_err());
}

#[test]
fn decisions_combine_by_precedence() {
    assert!(Decision::Deny > Decision::Approve && Decision::Approve > Decision::Allow);
    let all = [Decision::Allow, Decision::Deny, Decision::Approve];
    assert_eq!(all.into_iter().max(), Some(Decision::Deny));
    assert_eq!(Decision::Approve.to_string(), "approve");
    assert_eq!(Op::from_name("force"), Some(Op::Force));
    assert_eq!(Op::from_name("push"), None);
}

#[test]
fn other_tables() {
    let c = ok(r#"
[server]
http_listen = "0.0.0.0:80"
ssh_listen = "[::]:22"
admin_listen = "127.0.0.1:0"
public_url = "https://git.example.com"
shutdown_grace_seconds = 0
[scan]
enabled = false
action = "approve"
max_blob_bytes = 1024
[approval]
wait_seconds = 0
apply_on_approve = false
expire_after_seconds = 60
approver_groups = ["leads"]
webhook_url = "https://hooks.example.com/x"
[limits]
max_push_bytes = 1
max_request_bytes = 2
max_ref_updates = 3
max_pkt_lines = 4
"#);
    assert_eq!(c.server.http_listen.to_string(), "0.0.0.0:80");
    assert_eq!(
        c.server.ssh_listen.map(|a| a.to_string()).as_deref(),
        Some("[::]:22")
    );
    assert_eq!(c.server.admin_listen.map(|a| a.port()), Some(0));
    assert_eq!(
        c.server.public_url.as_ref().map(url::Url::as_str),
        Some("https://git.example.com/")
    );
    assert_eq!(c.server.shutdown_grace, Duration::ZERO);
    assert!(!c.scan.enabled);
    assert_eq!(
        (c.scan.action, c.scan.max_blob_bytes),
        (Decision::Approve, 1024)
    );
    assert_eq!(c.approval.wait, Duration::ZERO);
    assert!(!c.approval.apply_on_approve);
    assert_eq!(c.approval.expire_after, Duration::from_secs(60));
    assert_eq!(c.approval.approver_groups, ["leads"]);
    assert!(c.approval.webhook_url.is_some());
    let l = &c.limits;
    assert_eq!(
        (
            l.max_push_bytes,
            l.max_request_bytes,
            l.max_ref_updates,
            l.max_pkt_lines
        ),
        (1, 2, 3, 4)
    );
}

/// The example of contract.md, with its placeholders filled in (`<hex sha256 ...>`,
/// `AAAA...`, `<tenant>`) and its one catalogue `[[upstream]]`, which lists the keys of all
/// three kinds, split into a file, an https and an ssh upstream. Everything else is verbatim.
const CONTRACT_EXAMPLE: &str = r#"
[server]
http_listen  = "127.0.0.1:8080"          # smart-HTTP listener
ssh_listen   = "127.0.0.1:2222"          # optional SSH listener
ssh_host_key = "ssh_host_ed25519_key"    # created if absent
admin_listen = "127.0.0.1:8081"          # optional admin API, metrics and web UI
state_dir    = "state"                   # audit.db, spooled packs, mirrors
public_url   = "http://127.0.0.1:8080"   # optional, used in messages

[admin]
token_sha256 = "SHA_B"

[[upstream]]
name = "local"                    # first segment of every gateway URL
url  = "file:///srv/git"          # file://, http://, https:// or ssh://

[[upstream]]
name = "forge"
url  = "https://git.example.com/org"
# credentials (the vault); agents never see them:
username      = "x-access-token"  # http(s): basic-auth user
password_env  = "UPSTREAM_TOKEN"  # http(s): env var holding the secret (or password_file = "path")

[[upstream]]
name = "ssh"
url  = "ssh://git@git.example.com/org"
ssh_key_file  = "upstream_key"    # ssh: private key
known_hosts   = "upstream_known_hosts"  # ssh: pinned host key(s), required for ssh upstreams

[[token]]                         # static tokens, for CI and development
name   = "agent-1"
sha256 = "SHA_A"
groups = ["agents"]

[[oidc]]                          # JWTs from an OpenID Connect issuer
issuer       = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"
audience     = "api://gitgate"
groups_claim = "groups"           # default "groups"
name_claim   = "sub"              # default "sub"

[[ssh_key]]
name       = "agent-1"
public_key = "KEY_A comment"
groups     = ["agents"]

[ssh]
user_ca_keys = ["KEY_B ca"]  # optional: accept OpenSSH user certificates signed by these

[policy]
default = "allow"                 # "allow" or "deny": the decision when no rule matches

[[rule]]
name     = "protect-main"
subjects = ["group:agents"]       # "user:NAME", "group:NAME" or "*" (default "*")
repos    = ["local/*"]            # globs over "<upstream>/<path>" without ".git" (default "*")
refs     = ["refs/heads/main"]    # globs over full ref names (default "*")
ops      = ["update", "force", "delete", "create"]   # and "fetch"; default: all push ops
paths    = [".github/workflows/**"]  # optional: matches only pushes that change such a path
action   = "deny"                 # "allow", "deny" or "approve"; a rule without action only hides refs
message  = "agents push to agent/* only"   # optional, shown to the client
# hide_refs = ["refs/heads/internal/**"]    # optional: its subjects neither see nor fetch these refs

[scan]
enabled = true
action  = "deny"                  # "deny" or "approve"

[approval]
wait_seconds = 30                 # how long a push is held waiting for a decision
"#;

fn contract_example() -> String {
    CONTRACT_EXAMPLE
        .replace("SHA_A", SHA_A)
        .replace("SHA_B", SHA_B)
        .replace("KEY_A", KEY_A)
        .replace("KEY_B", KEY_B)
}

#[test]
fn the_contract_example_parses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gitgate.toml");
    std::fs::write(&path, contract_example()).unwrap();
    let env = env_of(&[("UPSTREAM_TOKEN", "ghp_example")]);
    let text = std::fs::read_to_string(&path).unwrap();
    let c = match resolve(&text, &path, &env) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(c.upstreams.len(), 3);
    assert_eq!(c.server.state_dir, dir.path().join("state"));
    assert_eq!(
        c.rules[0].ops,
        [Op::Update, Op::Force, Op::Delete, Op::Create]
    );
    assert_eq!(c.rules[0].action, Some(Decision::Deny));
    assert_eq!(c.approval.wait, Duration::from_secs(30));
    assert_eq!(c.tokens[0].name, "agent-1");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let c =
        ok("[[upstream]]\nname = \"h\"\nurl = \"https://x.example\"\npassword_env = \"TOKEN\"\n");
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
}

#[test]
fn load_reads_the_file_and_parse_reads_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gitgate.toml");
    std::fs::write(&path, "[server]\nstate_dir = \"s\"\n").unwrap();
    let c = load(&path).unwrap();
    assert_eq!(c.server.state_dir, dir.path().join("s"));
    assert_eq!(c.source, path);
    let c = parse("", &path).unwrap();
    assert!(c.upstreams.is_empty());

    let missing = dir.path().join("missing.toml");
    let e = load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e
        .to_string()
        .starts_with(&format!("{}: cannot read: ", missing.display())));
    assert_eq!(e.line(), None);
}

#[test]
fn errors_carry_their_line() {
    let e = resolve(
        "\n\n[server]\nhtp_listen = 1\n",
        Path::new("g.toml"),
        &env_of(&[]),
    )
    .unwrap_err();
    assert_eq!(e.line(), Some(4));
}

// ---- every error kind, as the user sees it ----

#[test]
fn err_syntax() {
    snap(
        "err_syntax",
        "[server]\nhttp_listen = \"127.0.0.1:8080\nstate_dir = \"x\"\n",
    );
}

#[test]
fn err_syntax_duplicate_key() {
    snap(
        "err_syntax_duplicate_key",
        "[server]\nstate_dir = \"a\"\nstate_dir = \"b\"\n",
    );
}

#[test]
fn err_unknown_key() {
    snap(
        "err_unknown_key",
        "# gateway\n[server]\nhtp_listen = \"127.0.0.1:8080\"\n",
    );
}

#[test]
fn err_unknown_key_in_second_array_entry() {
    snap(
        "err_unknown_key_in_second_array_entry",
        "[[upstream]]\nname = \"a\"\nurl = \"file:///a\"\n\n[[upstream]]\nname = \"b\"\nurl = \"file:///b\"\npasword_env = \"X\"\n",
    );
}

#[test]
fn err_unknown_key_in_inline_table() {
    snap(
        "err_unknown_key_in_inline_table",
        "upstream = [\n  { name = \"a\", url = \"file:///a\", nmae = \"x\" },\n]\n",
    );
}

#[test]
fn err_unknown_top_level_key() {
    snap(
        "err_unknown_top_level_key",
        "http_listen = \"127.0.0.1:8080\"\n",
    );
}

#[test]
fn err_unknown_table() {
    snap("err_unknown_table", "[server]\n\n[rules]\nname = \"x\"\n");
}

#[test]
fn err_missing_key() {
    snap(
        "err_missing_key",
        "[[upstream]]\nname = \"a\"\nurl = \"file:///a\"\n\n[[upstream]]\nname = \"b\"\n",
    );
}

#[test]
fn err_wrong_type() {
    snap("err_wrong_type", "[server]\nhttp_listen = 8080\n");
}

#[test]
fn err_wrong_type_in_list() {
    snap(
        "err_wrong_type_in_list",
        &format!("[[token]]\nname = \"a\"\nsha256 = \"{SHA_A}\"\ngroups = [\"ok\", 7]\n"),
    );
}

#[test]
fn err_wrong_type_table() {
    snap("err_wrong_type_table", "server = \"127.0.0.1:8080\"\n");
}

#[test]
fn err_unsupported_scheme() {
    snap(
        "err_unsupported_scheme",
        "[server]\nhttp_listen = \"127.0.0.1:8080\"\n\n[[upstream]]\nname = \"ftp\"\nurl = \"ftp://example.com/git\"\n",
    );
}

#[test]
fn err_url_unparsable() {
    snap(
        "err_url_unparsable",
        "[[upstream]]\nname = \"h\"\nurl = \"https://[::1/x\"\n",
    );
}

#[test]
fn err_url_scp_syntax() {
    snap(
        "err_url_scp_syntax",
        "[[upstream]]\nname = \"gh\"\nurl = \"git@github.com:org/repo.git\"\n",
    );
}

#[test]
fn err_url_with_credentials() {
    snap(
        "err_url_with_credentials",
        "[[upstream]]\nname = \"h\"\nurl = \"https://bot:pw@git.example.com/\"\n",
    );
}

#[test]
fn err_file_url_with_host() {
    snap(
        "err_file_url_with_host",
        "[[upstream]]\nname = \"f\"\nurl = \"file://server/srv/git\"\n",
    );
}

#[test]
fn err_ssh_url_without_path() {
    snap(
        "err_ssh_url_without_path",
        "[[upstream]]\nname = \"s\"\nurl = \"ssh://git@example.com\"\nssh_key_file = \"k\"\nknown_hosts = \"kh\"\n",
    );
}

#[test]
fn err_public_url_not_http() {
    snap(
        "err_public_url_not_http",
        "[server]\npublic_url = \"ftp://example.com\"\n",
    );
}

#[test]
fn err_oidc_plain_http() {
    snap(
        "err_oidc_plain_http",
        "[[oidc]]\nissuer = \"http://login.example.com\"\naudience = \"x\"\n",
    );
}

#[test]
fn err_bad_address() {
    snap(
        "err_bad_address",
        "[server]\nssh_listen = \"localhost:2222\"\n",
    );
}

#[test]
fn err_same_address() {
    snap(
        "err_same_address",
        "[server]\nhttp_listen = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\"\n",
    );
}

#[test]
fn err_sha256_length() {
    snap("err_sha256_length", "[admin]\ntoken_sha256 = \"abc123\"\n");
}

#[test]
fn err_sha256_not_hex() {
    let bad = format!("{}zz", &SHA_A[..62]);
    snap(
        "err_sha256_not_hex",
        &format!("[[token]]\nname = \"a\"\nsha256 = \"{bad}\"\n"),
    );
}

#[test]
fn err_empty_name() {
    snap(
        "err_empty_name",
        "[[upstream]]\nname = \"\"\nurl = \"file:///a\"\n",
    );
}

#[test]
fn err_bad_upstream_name() {
    snap(
        "err_bad_upstream_name",
        "[[upstream]]\nname = \"a/b\"\nurl = \"file:///a\"\n",
    );
}

#[test]
fn err_dots_upstream_name() {
    snap(
        "err_dots_upstream_name",
        "[[upstream]]\nname = \"..\"\nurl = \"file:///a\"\n",
    );
}

#[test]
fn err_duplicate_upstream() {
    snap(
        "err_duplicate_upstream",
        "[[upstream]]\nname = \"a\"\nurl = \"file:///a\"\n\n[[upstream]]\nname = \"a\"\nurl = \"file:///b\"\n",
    );
}

#[test]
fn err_duplicate_token_name() {
    snap(
        "err_duplicate_token_name",
        &format!("[[token]]\nname = \"a\"\nsha256 = \"{SHA_A}\"\n[[token]]\nname = \"a\"\nsha256 = \"{SHA_B}\"\n"),
    );
}

#[test]
fn err_duplicate_token_sha256() {
    snap(
        "err_duplicate_token_sha256",
        &format!("[[token]]\nname = \"a\"\nsha256 = \"{SHA_A}\"\n[[token]]\nname = \"b\"\nsha256 = \"{SHA_A}\"\n"),
    );
}

#[test]
fn err_duplicate_ssh_key() {
    snap(
        "err_duplicate_ssh_key",
        &format!("[[ssh_key]]\nname = \"a\"\npublic_key = \"{KEY_A} a\"\n[[ssh_key]]\nname = \"b\"\npublic_key = \"{KEY_A} b\"\n"),
    );
}

#[test]
fn err_duplicate_rule() {
    snap(
        "err_duplicate_rule",
        "[[rule]]\nname = \"r\"\naction = \"deny\"\n\n[[rule]]\nname = \"r\"\naction = \"allow\"\n",
    );
}

#[test]
fn err_env_not_set() {
    snap(
        "err_env_not_set",
        "[[upstream]]\nname = \"h\"\nurl = \"https://git.example.com\"\npassword_env = \"GITGATE_NO_SUCH_VAR\"\n",
    );
}

#[test]
fn err_env_empty() {
    snap(
        "err_env_empty",
        "[[upstream]]\nname = \"h\"\nurl = \"https://git.example.com\"\npassword_env = \"EMPTY\"\n",
    );
}

#[test]
fn err_password_file_unreadable() {
    snap(
        "err_password_file_unreadable",
        "[[upstream]]\nname = \"h\"\nurl = \"https://git.example.com\"\npassword_file = \"/nonexistent/gitgate-pw\"\n",
    );
}

#[test]
fn err_password_file_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "\n").unwrap();
    let message = err_in(
        "[[upstream]]\nname = \"h\"\nurl = \"https://x.example\"\npassword_file = \"pw\"\n",
        &dir.path().join("gitgate.toml"),
    );
    let expected = format!(
        "{}:4: [[upstream]] password_file: {} is empty",
        dir.path().join("gitgate.toml").display(),
        dir.path().join("pw").display()
    );
    assert_eq!(message, expected);
}

#[test]
fn err_password_env_and_file() {
    snap(
        "err_password_env_and_file",
        "[[upstream]]\nname = \"h\"\nurl = \"https://git.example.com\"\npassword_env = \"TOKEN\"\npassword_file = \"pw\"\n",
    );
}

#[test]
fn err_username_without_password() {
    snap(
        "err_username_without_password",
        "[[upstream]]\nname = \"h\"\nurl = \"https://git.example.com\"\nusername = \"bot\"\n",
    );
}

#[test]
fn err_tls_cert_without_key() {
    snap(
        "err_tls_cert_without_key",
        "[server]\ntls_cert = \"cert.pem\"\n",
    );
}

#[test]
fn err_ssh_key_on_http_upstream() {
    snap(
        "err_ssh_key_on_http_upstream",
        "[[upstream]]\nname = \"h\"\nurl = \"https://git.example.com\"\nssh_key_file = \"k\"\n",
    );
}

#[test]
fn err_password_on_ssh_upstream() {
    snap(
        "err_password_on_ssh_upstream",
        "[[upstream]]\nname = \"s\"\nurl = \"ssh://git@example.com/x\"\nssh_key_file = \"k\"\nknown_hosts = \"kh\"\npassword_env = \"TOKEN\"\n",
    );
}

#[test]
fn err_credential_on_file_upstream() {
    snap(
        "err_credential_on_file_upstream",
        "[[upstream]]\nname = \"f\"\nurl = \"file:///srv/git\"\nusername = \"x\"\n",
    );
}

#[test]
fn err_ssh_without_known_hosts() {
    snap(
        "err_ssh_without_known_hosts",
        "[[upstream]]\nname = \"s\"\nurl = \"ssh://git@example.com/x\"\nssh_key_file = \"k\"\n",
    );
}

#[test]
fn err_bad_glob() {
    snap(
        "err_bad_glob",
        "[[rule]]\nname = \"r\"\nrefs = [\"refs/heads/main\", \"refs/heads/[x\"]\naction = \"deny\"\n",
    );
}

#[test]
fn err_policy_default_approve() {
    snap(
        "err_policy_default_approve",
        "[policy]\ndefault = \"approve\"\n",
    );
}

#[test]
fn err_scan_action_allow() {
    snap("err_scan_action_allow", "[scan]\naction = \"allow\"\n");
}

#[test]
fn err_rule_action() {
    snap(
        "err_rule_action",
        "[[rule]]\nname = \"r\"\naction = \"reject\"\n",
    );
}

#[test]
fn err_bad_op() {
    snap(
        "err_bad_op",
        "[[rule]]\nname = \"r\"\nops = [\"update\", \"push\"]\naction = \"deny\"\n",
    );
}

#[test]
fn err_bad_subject() {
    snap(
        "err_bad_subject",
        "[[rule]]\nname = \"r\"\nsubjects = [\"agents\"]\naction = \"deny\"\n",
    );
}

#[test]
fn err_empty_subject_name() {
    snap(
        "err_empty_subject_name",
        "[[rule]]\nname = \"r\"\nsubjects = [\"group:\"]\naction = \"deny\"\n",
    );
}

#[test]
fn err_empty_list() {
    snap(
        "err_empty_list",
        "[[rule]]\nname = \"r\"\nsubjects = []\naction = \"deny\"\n",
    );
}

#[test]
fn err_rule_without_effect() {
    snap(
        "err_rule_without_effect",
        "[policy]\ndefault = \"deny\"\n\n[[rule]]\nname = \"r\"\nrefs = [\"refs/heads/main\"]\n",
    );
}

#[test]
fn err_bad_regex() {
    snap(
        "err_bad_regex",
        "[[rule]]\nname = \"r\"\naction = \"deny\"\ncommit_message = \"^(JIRA-[0-9]+\"\n",
    );
}

#[test]
fn err_bad_regex_syntax_unsupported() {
    // Look-around is not in the `regex` crate's syntax (it keeps matching linear-time).
    snap(
        "err_bad_regex_syntax_unsupported",
        "[[rule]]\nname = \"r\"\naction = \"deny\"\nauthor_email = '(?!bot)@example\\.com$'\n",
    );
}

#[test]
fn err_empty_regex() {
    snap(
        "err_empty_regex",
        "[[rule]]\nname = \"r\"\naction = \"deny\"\ncommit_message_deny = \"\"\n",
    );
}

#[test]
fn err_max_blob_bytes_zero() {
    snap(
        "err_max_blob_bytes_zero",
        "[[rule]]\nname = \"r\"\naction = \"deny\"\nmax_blob_bytes = 0\n",
    );
}

#[test]
fn err_require_signed_not_bool() {
    snap(
        "err_require_signed_not_bool",
        "[[rule]]\nname = \"r\"\naction = \"deny\"\nrequire_signed = \"yes\"\n",
    );
}

#[test]
fn err_condition_without_action() {
    snap(
        "err_condition_without_action",
        "[[rule]]\nname = \"r\"\nhide_refs = [\"refs/heads/internal/**\"]\nrefs = [\"refs/heads/main\"]\n",
    );
}

#[test]
fn err_message_without_action() {
    snap(
        "err_message_without_action",
        "[[rule]]\nname = \"r\"\nmessage = \"internal\"\nhide_refs = [\"refs/heads/internal/**\"]\n",
    );
}

#[test]
fn err_fetch_with_refs() {
    snap(
        "err_fetch_with_refs",
        "[[rule]]\nname = \"r\"\nops = [\"fetch\"]\nrefs = [\"refs/heads/main\"]\naction = \"deny\"\n",
    );
}

#[test]
fn err_fetch_with_commit_condition() {
    snap(
        "err_fetch_with_commit_condition",
        "[[rule]]\nname = \"r\"\nops = [\"update\", \"fetch\"]\naction = \"deny\"\nrequire_signed = true\npaths = [\"x/**\"]\n",
    );
}

#[test]
fn err_fetch_approve() {
    snap(
        "err_fetch_approve",
        "[[rule]]\nname = \"r\"\nops = [\"fetch\"]\naction = \"approve\"\n",
    );
}

#[test]
fn err_control_character() {
    snap(
        "err_control_character",
        "[[rule]]\nname = \"r\"\naction = \"deny\"\nmessage = \"line one\\nline two\"\n",
    );
}

#[test]
fn err_public_key_algorithm() {
    snap(
        "err_public_key_algorithm",
        "[[ssh_key]]\nname = \"a\"\npublic_key = \"ssh-dss AAAAB3NzaC1kc3M= old\"\n",
    );
}

#[test]
fn err_public_key_base64() {
    snap(
        "err_public_key_base64",
        "[[ssh_key]]\nname = \"a\"\npublic_key = \"ssh-ed25519 AAAA... comment\"\n",
    );
}

#[test]
fn err_public_key_mismatch() {
    snap(
        "err_public_key_mismatch",
        "[ssh]\nuser_ca_keys = [\"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ca\"]\n",
    );
}

#[test]
fn err_public_key_missing_data() {
    snap(
        "err_public_key_missing_data",
        "[[ssh_key]]\nname = \"a\"\npublic_key = \"ssh-ed25519\"\n",
    );
}

#[test]
fn err_negative_seconds() {
    snap("err_negative_seconds", "[approval]\nwait_seconds = -1\n");
}

#[test]
fn err_keep_packs_days_zero() {
    snap("err_keep_packs_days_zero", "[audit]\nkeep_packs_days = 0\n");
}

#[test]
fn err_zero_limit() {
    snap("err_zero_limit", "[limits]\nmax_push_bytes = 0\n");
}

#[test]
fn err_huge_duration() {
    snap(
        "err_huge_duration",
        "[ssh]\nmax_cert_ttl_seconds = 9223372036854775807\n",
    );
}

/// Every truncation of a full config is refused or accepted, never a panic (the config is
/// trusted input, but a half-written file is a common accident).
#[test]
fn every_prefix_of_the_example_is_handled() {
    let text = contract_example();
    let env = env_of(&[("UPSTREAM_TOKEN", "x")]);
    for end in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
        let prefix = &text[..end];
        if let Err(e) = resolve(prefix, Path::new("gitgate.toml"), &env) {
            let message = e.to_string();
            assert!(message.starts_with("gitgate.toml:"), "{message}");
        }
    }
}

#[test]
fn local_verbs_resolve_without_the_vault() {
    let text = "[[upstream]]\nname = \"web\"\nurl = \"https://git.example/\"\n\
                password_env = \"NOT_SET_ANYWHERE\"\n\n[[upstream]]\nname = \"other\"\n\
                url = \"https://git.example/\"\npassword_file = \"/nonexistent/pw\"\n";
    let path = Path::new("gitgate.toml");
    // The gateway needs the secret and says so...
    let e = err_in(text, path);
    assert!(e.contains("NOT_SET_ANYWHERE"), "{e}");
    // ...the audit verbs do not read it.
    let env = env_of(&[]);
    let config = super::resolve::resolve_with(text, path, &env, false).expect("resolves");
    assert_eq!(config.upstreams.len(), 2);
    // Form is still checked.
    let bad = "[[upstream]]\nname = \"web\"\nurl = \"https://git.example/\"\npassword_env = 3\n";
    assert!(super::resolve::resolve_with(bad, path, &env, false).is_err());
}

#[test]
fn scan_allowlists_resolve_and_name_the_bad_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fp = "ab".repeat(32);
    std::fs::write(
        dir.path().join("baseline.jsonl"),
        format!("{{\"fingerprint\":\"{fp}\"}}\n"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("gitleaks.toml"),
        "[[rules]]\nid = \"acme\"\nregex = '''acme_[a-z0-9]{32}'''\nkeywords = [\"acme_\"]\n",
    )
    .expect("write");
    let path = dir.path().join("gitgate.toml");
    let text = format!(
        "[scan]\nallow_paths = [\"vendor/**\"]\nallow_fingerprints = [\"{}\"]\n\
         baseline = \"baseline.jsonl\"\ngitleaks_config = \"gitleaks.toml\"\n",
        "cd".repeat(32)
    );
    let c = ok_in(&text, &path);
    assert_eq!(c.scan.baseline, Some(dir.path().join("baseline.jsonl")));
    assert_eq!(c.scan.custom_detectors.len(), 1);
    assert!(c.scan.allow.permits_path("vendor/x/y.py"));
    assert!(!c.scan.allow.permits_path("src/y.py"));

    for (text, key) in [
        ("[scan]\nallow_paths = [\"a/[\"]\n", "allow_paths"),
        (
            "[scan]\nallow_fingerprints = [\"xyz\"]\n",
            "allow_fingerprints",
        ),
        ("[scan]\nbaseline = \"missing.jsonl\"\n", "baseline"),
    ] {
        let e = err_in(text, &path);
        assert!(e.contains(&format!("gitgate.toml:2: [scan] {key}")), "{e}");
    }
    std::fs::write(dir.path().join("bad.jsonl"), "junk\n").expect("write");
    let e = err_in("[scan]\nbaseline = \"bad.jsonl\"\n", &path);
    assert!(e.contains("bad.jsonl: line 1"), "{e}");
    std::fs::write(dir.path().join("bad.toml"), "[[rules]]\nid = 3\n").expect("write");
    let e = err_in("[scan]\ngitleaks_config = \"bad.toml\"\n", &path);
    assert!(e.contains("[scan] gitleaks_config"), "{e}");
}

#[test]
fn oidc_key_refresh_and_required_claims() {
    let c = ok(
        "[[oidc]]\nissuer = \"https://a.example.com\"\naudience = \"x\"\n\
         jwks_refresh_seconds = 600\njwks_min_refresh_seconds = 0\n\
         required_claims = { tid = \"t1\", \"realm_access.roles\" = \"git\" }\n\
         [[oidc]]\nissuer = \"https://b.example.com\"\naudience = \"x\"\n",
    );
    let (a, b) = (&c.oidc[0], &c.oidc[1]);
    assert_eq!(
        (a.jwks_refresh, a.jwks_min_refresh),
        (Duration::from_secs(600), Duration::ZERO)
    );
    assert_eq!(
        a.required_claims,
        [
            ("realm_access.roles".to_string(), "git".to_string()),
            ("tid".to_string(), "t1".to_string())
        ]
    );
    assert_eq!(
        (b.jwks_refresh, b.jwks_min_refresh),
        (Duration::from_secs(3600), Duration::from_secs(30))
    );
    assert!(b.required_claims.is_empty());
}

#[test]
fn err_oidc_duplicate_issuer() {
    let e = err_in(
        "[[oidc]]\nissuer = \"https://a.example.com\"\naudience = \"x\"\n\
         [[oidc]]\nissuer = \"https://a.example.com\"\naudience = \"y\"\n",
        Path::new("gitgate.toml"),
    );
    assert!(e.contains("gitgate.toml:5") && e.contains("issuer"), "{e}");
}

#[test]
fn oidc_ca_file_is_relative_to_the_config() {
    let c = ok("[[oidc]]\nissuer = \"https://kc.example.com/realms/r\"\naudience = \"x\"\nca_file = \"corp-ca.pem\"\n");
    assert_eq!(
        c.oidc[0].ca_file.as_deref(),
        Some(Path::new("/etc/gitgate/corp-ca.pem"))
    );
}

#[test]
fn admin_public_url_names_the_review_pages() {
    let c = ok("[admin]\npublic_url = \"https://gate-admin.example/\"\n");
    assert_eq!(
        c.admin.public_url.as_ref().map(url::Url::as_str),
        Some("https://gate-admin.example/")
    );
    assert!(ok("").admin.public_url.is_none());
    let err = crate::config::parse(
        "[admin]\npublic_url = \"ftp://example.com\"\n",
        std::path::Path::new("/etc/gitgate/gitgate.toml"),
    );
    assert!(err.is_err_and(|e| e.to_string().contains("public_url")));
}
