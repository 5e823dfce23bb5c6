//! OpenSSH's `sshd` as an SSH git upstream: its own host key, a loopback port, `git-shell`
//! forced for the gateway's key by `authorized_keys command=`, `GIT_PROTOCOL` accepted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::net;
use super::process::{self, Daemon};
use super::tmp::Tmp;

/// A running sshd serving the bare repositories under `root` through git-shell.
pub struct Sshd {
    /// The folder holding the bare repositories (absolute).
    pub root: PathBuf,
    /// sshd's port on 127.0.0.1.
    pub port: u16,
    /// The login user (the user running the tests).
    pub user: String,
    /// The private key the gateway vaults (`ssh_key_file`), mode 0600.
    pub client_key: PathBuf,
    /// A known_hosts file pinning sshd's host key for `[127.0.0.1]:port`.
    pub known_hosts: PathBuf,
    /// sshd's host public key (`ssh-ed25519 AAAA...`).
    pub host_key: String,
    // Drop order: sshd first, then the folder.
    daemon: Daemon,
    tmp: Tmp,
}

impl Sshd {
    /// Starts sshd over `root`.
    #[track_caller]
    pub fn start(root: &Path) -> Sshd {
        Sshd::start_with(root, true)
    }

    /// Starts sshd over `root`; `accept_git_protocol: false` leaves out `AcceptEnv
    /// GIT_PROTOCOL` (a server that only speaks v0/v1 over SSH).
    #[track_caller]
    pub fn start_with(root: &Path, accept_git_protocol: bool) -> Sshd {
        let tmp = Tmp::new("sshd");
        let dir = tmp.path().to_path_buf();
        let host_key = keygen(&dir.join("host_key"), "upstream-host");
        let client_key = dir.join("gateway_key");
        let client_pub = keygen(&client_key, "gitgate");
        std::fs::write(
            dir.join("authorized_keys"),
            format!(
                "command=\"{} -c \\\"$SSH_ORIGINAL_COMMAND\\\"\",no-port-forwarding,\
                 no-X11-forwarding,no-agent-forwarding,no-pty {client_pub}\n",
                git_shell().display()
            ),
        )
        .expect("write authorized_keys");
        // sshd's privilege separation needs this folder (packages create it at boot only).
        let _ = std::fs::create_dir_all("/run/sshd");
        let user = process::run(Command::new("id").arg("-un"), Duration::from_secs(10))
            .assert_ok()
            .stdout
            .trim()
            .to_owned();
        for _attempt in 0..5 {
            let port = net::free_port();
            let conf = dir.join("sshd_config");
            let mut text = sshd_config(&dir, port);
            if !accept_git_protocol {
                text = text.replace("AcceptEnv GIT_PROTOCOL\n", "");
            }
            std::fs::write(&conf, text).expect("write sshd_config");
            let mut cmd = Command::new(sshd_path());
            cmd.arg("-D").arg("-e").arg("-f").arg(&conf);
            let mut daemon = Daemon::spawn("sshd", &mut cmd, &dir);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = daemon.exited() {
                    let log = daemon.output();
                    if log.contains("in use") {
                        break;
                    }
                    panic!("sshd exited with {status}:\n{log}");
                }
                if net::wait_for_port(port, Duration::from_millis(50))
                    && net::listens(daemon.pid(), port)
                {
                    let known_hosts = dir.join("known_hosts");
                    std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_key}\n"))
                        .expect("write known_hosts");
                    return Sshd {
                        root: root.to_path_buf(),
                        port,
                        user,
                        client_key,
                        known_hosts,
                        host_key,
                        daemon,
                        tmp,
                    };
                }
                assert!(
                    Instant::now() < deadline,
                    "sshd did not listen on {port}: {}",
                    daemon.output()
                );
            }
        }
        panic!("sshd: no free port after 5 attempts");
    }

    /// A known_hosts file pinning another key for this sshd's host and port (a changed or
    /// impersonated host key, from the gateway's point of view).
    pub fn wrong_known_hosts(&self) -> PathBuf {
        let other = keygen(&self.tmp.join("other_host_key"), "impostor");
        let path = self.tmp.join("wrong_known_hosts");
        std::fs::write(&path, format!("[127.0.0.1]:{} {other}\n", self.port))
            .expect("write wrong_known_hosts");
        path
    }

    /// sshd's log (connections, authentication, commands run).
    pub fn logs(&self) -> String {
        self.daemon.output()
    }
}

/// `ssh-keygen -t ed25519` without passphrase; returns the public key without its comment.
fn keygen(path: &Path, comment: &str) -> String {
    let path_text = path.to_string_lossy().into_owned();
    process::run(
        Command::new("ssh-keygen").args([
            "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", &path_text,
        ]),
        Duration::from_secs(30),
    )
    .assert_ok();
    let public = std::fs::read_to_string(format!("{path_text}.pub")).expect("read public key");
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn sshd_path() -> PathBuf {
    ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("sshd"))
}

/// `git-shell` next to the `git` on PATH, or in git's exec path.
fn git_shell() -> PathBuf {
    let exec_path = super::git::ok(Path::new("/"), &["--exec-path"]);
    let candidates = [
        PathBuf::from(&exec_path).join("git-shell"),
        PathBuf::from("/usr/bin/git-shell"),
        PathBuf::from("/usr/local/bin/git-shell"),
    ];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("git-shell"))
}

/// Everything under `dir`; only keys, only the forced git-shell, no PAM, no forwarding.
fn sshd_config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
AcceptEnv GIT_PROTOCOL
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
"
    )
}
