//! `gitgate demo [--dir DIR]`: the embedded default a new user runs first. Creates DIR with a
//! bare upstream `upstream/demo.git` holding a few commits on `main`, a `gitgate.toml` with a
//! demo agent token, a policy and secret scanning on, then serves it. Run again, it reuses DIR.

use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

use super::{Outcome, UsageError};

const TOKEN_FILE: &str = "demo-token";
const CONFIG_FILE: &str = "gitgate.toml";

/// Creates or reuses `dir`, then serves it when `serve` is set.
pub fn run(dir: &Path, serve: bool) -> anyhow::Result<Outcome> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let upstream = dir.join("upstream").join("demo.git");
    if !upstream.join("HEAD").is_file() {
        create_upstream(&dir, &upstream)?;
    }
    let token = token(&dir)?;
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.is_file() {
        fs::write(&config_path, config_text(&token))
            .with_context(|| format!("writing {}", config_path.display()))?;
    }
    let mut config = crate::config::load(&config_path).map_err(|e| UsageError(e.to_string()))?;
    if !serve {
        print_usage(
            &dir,
            &token,
            config.server.http_listen,
            config.server.admin_listen,
        );
        return Ok(Outcome::Success);
    }
    // A busy default port should not stop a first try: fall back to any free port.
    if std::net::TcpListener::bind(config.server.http_listen).is_err() {
        eprintln!(
            "gitgate demo: {} is busy, using a free port instead",
            config.server.http_listen
        );
        config.server.http_listen.set_port(0);
    }
    if let Some(admin) = config.server.admin_listen {
        if std::net::TcpListener::bind(admin).is_err() {
            config.server.admin_listen = None;
        }
    }
    let admin = config.server.admin_listen;
    super::serve::serve_blocking(config, move |addr| {
        print_usage(&dir, &token, addr, admin);
    })
}

fn print_usage(dir: &Path, token: &str, addr: SocketAddr, admin: Option<SocketAddr>) {
    let url = format!("http://demo-agent:{token}@{addr}/local/demo.git");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\ngitgate demo in {dir}\n\
         \n  clone through the gateway:\n    git clone {url} gitgate-demo-clone\n\
         \n  then try:\n    cd gitgate-demo-clone\n    git switch -c agent/hello && echo hello >> README.md && git commit -am hello\n    git push origin agent/hello          # agents may push agent/* branches\n    git push origin agent/hello:main     # updates of main wait for a human's approval\n",
        dir = dir.display(),
    );
    let config = dir.join("gitgate.toml");
    let _ = writeln!(
        out,
        "  while the push to main waits (or after it gave up), in another terminal:\n    \
         gitgate approvals list --config {config}\n    \
         gitgate approvals approve <ID> --config {config} --by you   # the gateway then updates main\n",
        config = config.display(),
    );
    if let Some(admin) = admin {
        let _ = writeln!(out, "  metrics: curl http://{admin}/metrics\n");
    }
    let _ = writeln!(
        out,
        "  stop with Ctrl-C; run `gitgate demo --dir {}` again to resume.",
        dir.display()
    );
    let _ = out.flush();
}

/// A new random token: `gg_` and 40 hex digits.
pub fn random_token() -> String {
    let bytes: [u8; 20] = rand::random();
    format!("gg_{}", hex::encode(bytes))
}

fn token(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(TOKEN_FILE);
    if let Ok(existing) = fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        if !existing.is_empty() {
            return Ok(existing);
        }
    }
    let token = random_token();
    write_private(&path, &format!("{token}\n"))?;
    Ok(token)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn config_text(token: &str) -> String {
    let sha = crate::identity::token_sha256_hex(token);
    format!(
        r#"# gitgate demo configuration (created by `gitgate demo`). Every key is described in README.md.

[server]
http_listen  = "127.0.0.1:8080"
admin_listen = "127.0.0.1:8081"
state_dir    = "state"

[[upstream]]
name = "local"
url  = "file:upstream"          # relative to this file's folder

[[token]]
name   = "demo-agent"
sha256 = "{sha}"                # the token itself is in ./{TOKEN_FILE}
groups = ["agents"]

[policy]
default = "deny"

[[rule]]
name     = "agents-fetch"
subjects = ["group:agents"]
ops      = ["fetch"]
action   = "allow"

[[rule]]
name     = "agents-push-agent-branches"
subjects = ["group:agents"]
refs     = ["refs/heads/agent/**"]
action   = "allow"

[[rule]]
name     = "main-needs-approval"
subjects = ["group:agents"]
refs     = ["refs/heads/main"]
ops      = ["update"]
action   = "approve"
message  = "updates of main need a human's approval"

[scan]
enabled = true
action  = "deny"

[approval]
wait_seconds = 30
"#
    )
}

fn create_upstream(dir: &Path, upstream: &Path) -> anyhow::Result<()> {
    let seed = dir.join(".demo-seed");
    let _ = fs::remove_dir_all(&seed);
    fs::create_dir_all(&seed)?;
    git(
        dir,
        &["init", "--quiet", "--bare", "--initial-branch=main"],
        Some(upstream),
    )?;
    git(&seed, &["init", "--quiet", "--initial-branch=main"], None)?;
    let files: [(&str, &str, &str); 3] = [
        (
            "README.md",
            "# demo\n\nA repository served through gitgate.\n",
            "Add README",
        ),
        (
            "src/hello.py",
            "def hello(name):\n    return f\"hello, {name}\"\n",
            "Add hello()",
        ),
        (
            "src/main.py",
            "from hello import hello\n\nprint(hello(\"agent\"))\n",
            "Add main",
        ),
    ];
    for (path, text, message) in files {
        let file = seed.join(path);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&file, text)?;
        git(&seed, &["add", path], None)?;
        git(&seed, &["commit", "--quiet", "-m", message], None)?;
    }
    let target = upstream.to_string_lossy().into_owned();
    git(&seed, &["push", "--quiet", &target, "main"], None)?;
    fs::remove_dir_all(&seed)?;
    Ok(())
}

fn git(cwd: &Path, args: &[&str], extra: Option<&Path>) -> anyhow::Result<()> {
    let mut cmd = Command::new("git");
    cmd.current_dir(cwd)
        .args(args)
        .env("GIT_AUTHOR_NAME", "gitgate demo")
        .env("GIT_AUTHOR_EMAIL", "demo@gitgate.invalid")
        .env("GIT_COMMITTER_NAME", "gitgate demo")
        .env("GIT_COMMITTER_EMAIL", "demo@gitgate.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    if let Some(p) = extra {
        cmd.arg(PathBuf::from(p));
    }
    let status = cmd.status().context("running git (is git installed?)")?;
    if !status.success() {
        bail!("git {} failed ({status})", args.join(" "));
    }
    Ok(())
}
