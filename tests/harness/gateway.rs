//! The gitgate binary under test, serving on a free loopback port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::process::{self, Daemon, Output};
use super::tmp::Tmp;
use super::{http, net};

/// How long the gateway may take to answer `/healthz` with 200.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The gitgate binary: `$GITGATE_BIN` when set, else the one cargo built for this test.
pub fn bin() -> PathBuf {
    if let Some(path) = std::env::var_os("GITGATE_BIN") {
        return PathBuf::from(path);
    }
    match option_env!("CARGO_BIN_EXE_gitgate") {
        Some(path) => PathBuf::from(path),
        None => panic!("set GITGATE_BIN to the gitgate binary"),
    }
}

/// Runs `gitgate ARGS` to completion in `cwd`.
#[track_caller]
pub fn run(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.current_dir(cwd).args(args);
    process::run(&mut cmd, Duration::from_secs(60))
}

/// Lowercase hex SHA-256 of `token`, as `[[token]] sha256` wants it.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random-looking token (unique per call).
pub fn new_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    format!("gg_{}", &hex::encode(Sha256::digest(seed.as_bytes()))[..40])
}

/// A `[[token]]` table.
pub fn token_toml(name: &str, token: &str, groups: &[&str]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| format!("\"{g}\"")).collect();
    format!(
        "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\ngroups = [{}]\n",
        token_sha256(token),
        groups.join(", ")
    )
}

/// A running `gitgate serve`, killed on drop.
pub struct Gateway {
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    /// Its SSH port on 127.0.0.1, when the config had `ssh_listen = "{ssh_listen}"`.
    pub ssh_port: Option<u16>,
    /// The config file it was started with.
    pub config_path: PathBuf,
    daemon: Daemon,
    env: Vec<(String, String)>,
    tmp: Tmp,
}

impl Gateway {
    /// Starts the gateway with `config`: when it has no `[server]` table, one with `http_listen`
    /// on a free port and `state_dir = "state"` is put first; otherwise `{http_listen}` in it is
    /// replaced by `127.0.0.1:PORT`.
    #[track_caller]
    pub fn start(config: &str) -> Gateway {
        Gateway::start_with_env(config, &[])
    }

    /// Like [`Gateway::start`], with extra environment variables (e.g. the upstream password).
    #[track_caller]
    pub fn start_with_env(config: &str, env: &[(String, String)]) -> Gateway {
        let tmp = Tmp::new("gateway");
        let home = tmp.dir("home");
        let config_path = tmp.join("gitgate.toml");
        let mut last_output = String::new();
        for _attempt in 0..5 {
            let port = net::free_port();
            let listen = format!("127.0.0.1:{port}");
            // `{ssh_listen}` in the config gets a free port too.
            let ssh_port = config.contains("{ssh_listen}").then(net::free_port);
            let text = if config.contains("[server]") {
                let ssh_listen = format!("127.0.0.1:{}", ssh_port.unwrap_or_default());
                config
                    .replace("{http_listen}", &listen)
                    .replace("{ssh_listen}", &ssh_listen)
            } else {
                format!("[server]\nhttp_listen = \"{listen}\"\nstate_dir = \"state\"\n\n{config}")
            };
            std::fs::write(&config_path, text).expect("write gitgate.toml");
            let mut cmd = Command::new(bin());
            cmd.arg("serve")
                .arg("--config")
                .arg(&config_path)
                .current_dir(tmp.path())
                .env("HOME", &home);
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("GIT_") {
                    cmd.env_remove(key);
                }
            }
            cmd.env("GIT_CONFIG_NOSYSTEM", "1");
            for (k, v) in env {
                cmd.env(k, v);
            }
            let mut daemon = Daemon::spawn("gitgate", &mut cmd, tmp.path());
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Some(status) = daemon.exited() {
                    last_output = daemon.output();
                    if last_output.contains("in use") {
                        break;
                    }
                    panic!("gitgate serve exited with {status} before serving:\n{last_output}");
                }
                let healthy = http::request(net::loopback(port), "GET", "/healthz", &[], b"")
                    .map(|r| r.status == 200)
                    .unwrap_or(false);
                if healthy && !net::listens(daemon.pid(), port) {
                    // Someone else answers on the port we picked: ours cannot bind it.
                    last_output = daemon.output();
                    break;
                }
                // The SSH listener comes up right after the HTTP one.
                let ssh_up = ssh_port.is_none_or(|p| net::listens(daemon.pid(), p));
                if healthy && ssh_up {
                    return Gateway {
                        port,
                        ssh_port,
                        config_path,
                        daemon,
                        env: env.to_vec(),
                        tmp,
                    };
                }
                if Instant::now() >= deadline {
                    panic!(
                        "gitgate did not answer GET /healthz with 200 within {START_TIMEOUT:?}:\n{}",
                        daemon.output()
                    );
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("gitgate: no free port after 5 attempts:\n{last_output}");
    }

    /// Stops the gateway (SIGTERM) and starts it again on the same port, config and state.
    #[track_caller]
    pub fn restart(&mut self) {
        self.daemon.terminate(Duration::from_secs(30));
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(self.tmp.path())
            .env("HOME", self.tmp.join("home"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GIT_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("GIT_CONFIG_NOSYSTEM", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.daemon = Daemon::spawn("gitgate", &mut cmd, self.tmp.path());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.daemon.exited() {
                panic!(
                    "gitgate serve exited with {status} after a restart:\n{}",
                    self.daemon.output()
                );
            }
            let healthy = http::request(self.addr(), "GET", "/healthz", &[], b"")
                .map(|r| r.status == 200)
                .unwrap_or(false);
            if healthy && net::listens(self.daemon.pid(), self.port) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gitgate did not come back after a restart:\n{}",
                self.daemon.output()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        net::loopback(self.port)
    }

    /// `http://127.0.0.1:PORT/<path>` (no credentials).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// `http://<user>:<token>@127.0.0.1:PORT/<path>`.
    pub fn url_with_token(&self, user: &str, token: &str, path: &str) -> String {
        format!("http://{user}:{token}@127.0.0.1:{}/{path}", self.port)
    }

    /// Everything it printed so far (stdout, then stderr).
    pub fn output(&self) -> String {
        self.daemon.output()
    }

    /// Its folder (config, state, logs).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Sends SIGTERM and waits up to `timeout` for it to exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.daemon.terminate(timeout)
    }

    /// `Some(status)` if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.daemon.exited()
    }
}
