//! The SSH side of the tests: keys and certificates made with `ssh-keygen`, the OpenSSH client
//! pointed at the gateway (its host key pinned, one identity, no agent, no user config), and a
//! [`Stack`] whose gateway has the SSH front on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::git::Git;
use super::process::{self, Output};
use super::stack::{Kind, Stack};
use super::tmp::Tmp;

/// Deadline of one `ssh` or `ssh-keygen` run.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// An Ed25519 key pair made by `ssh-keygen`.
#[derive(Clone, Debug)]
pub struct Key {
    /// The private key file.
    pub private: PathBuf,
    /// The `.pub` file next to it.
    pub public: PathBuf,
}

impl Key {
    /// `ssh-keygen -t ed25519` into `<dir>/<name>` (no passphrase).
    #[track_caller]
    pub fn generate(dir: &Path, name: &str) -> Key {
        let private = dir.join(name);
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private);
        process::run(&mut cmd, TIMEOUT).assert_ok();
        Key {
            public: private.with_extension("pub"),
            private,
        }
    }

    /// The public key line (`ssh-ed25519 AAAA... name`).
    pub fn public_line(&self) -> String {
        std::fs::read_to_string(&self.public)
            .expect("read a public key")
            .trim()
            .to_owned()
    }

    /// Signs `subject` with this key as a user CA (`ssh-keygen -s`): key id `id`, principals
    /// `principals`, validity `validity` (`-V`, e.g. `-5m:+1h`), extra `-O` options. Returns
    /// the certificate file.
    #[track_caller]
    pub fn sign(
        &self,
        subject: &Key,
        id: &str,
        principals: &[&str],
        validity: &str,
        options: &[&str],
    ) -> PathBuf {
        // ssh-keygen writes <subject>-cert.pub; copy the subject's public key first so that
        // each certificate gets its own file.
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = subject.public.with_file_name(format!("cert{n}"));
        std::fs::copy(&subject.public, base.with_extension("pub")).expect("copy the public key");
        let mut cmd = Command::new("ssh-keygen");
        cmd.arg("-q")
            .arg("-s")
            .arg(&self.private)
            .args(["-I", id, "-V", validity]);
        if !principals.is_empty() {
            cmd.args(["-n", &principals.join(",")]);
        }
        for option in options {
            cmd.args(["-O", option]);
        }
        cmd.arg(base.with_extension("pub"));
        process::run(&mut cmd, TIMEOUT).assert_ok();
        base.with_file_name(format!("cert{n}-cert.pub"))
    }
}

/// The OpenSSH client as an agent runs it against the gateway.
#[derive(Clone, Debug)]
pub struct Client {
    /// The identity file.
    pub key: Key,
    /// A certificate for it (`-o CertificateFile=`).
    pub cert: Option<PathBuf>,
    /// The pinned host key of the gateway.
    pub known_hosts: PathBuf,
    /// `-p PORT`, when set.
    pub port: Option<u16>,
}

impl Client {
    /// The same client with another key (and no certificate).
    pub fn with_key(&self, key: &Key) -> Client {
        Client {
            key: key.clone(),
            cert: None,
            ..self.clone()
        }
    }

    /// The same client presenting `cert`.
    pub fn with_cert(&self, cert: &Path) -> Client {
        Client {
            cert: Some(cert.to_path_buf()),
            ..self.clone()
        }
    }

    /// The same client with `-p PORT` (for scp-style URLs, which cannot carry a port).
    pub fn with_port(&self, port: u16) -> Client {
        Client {
            port: Some(port),
            ..self.clone()
        }
    }

    /// `ssh` and its options, without a destination.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-F".to_owned(),
            "/dev/null".to_owned(),
            "-i".to_owned(),
            self.key.private.to_string_lossy().into_owned(),
        ];
        if let Some(cert) = &self.cert {
            args.push("-o".into());
            args.push(format!("CertificateFile={}", cert.display()));
        }
        for option in [
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "ConnectTimeout=20",
        ] {
            args.push("-o".into());
            args.push(option.into());
        }
        args.push("-o".into());
        args.push(format!("UserKnownHostsFile={}", self.known_hosts.display()));
        if let Some(port) = self.port {
            args.push("-p".into());
            args.push(port.to_string());
        }
        args
    }

    /// The value for `GIT_SSH_COMMAND`.
    pub fn command(&self) -> String {
        let mut s = String::from("ssh");
        for arg in self.args() {
            s.push(' ');
            s.push_str(&arg);
        }
        s
    }

    /// `git` using this client for ssh remotes.
    pub fn git(&self, git: &Git) -> Git {
        git.env("GIT_SSH_COMMAND", &self.command())
    }

    /// `ssh [options] EXTRA...` (EXTRA includes the destination), no stdin.
    #[track_caller]
    pub fn run(&self, extra: &[&str]) -> Output {
        process::run(&mut self.command_for(extra), TIMEOUT)
    }

    /// The `ssh` command, not yet run.
    pub fn command_for(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.args())
            .args(extra)
            .env_remove("SSH_AUTH_SOCK");
        cmd
    }
}

/// A [`Stack`] whose gateway also listens for SSH, with an agent key in `[[ssh_key]]` (name
/// `agent-1`, group `agents`, like the stack's token) and a user CA in `[ssh] user_ca_keys`.
pub struct SshStack {
    // Field order is drop order: the stack (gateway, upstream) first.
    /// Upstream, gateway (HTTP and SSH), git client.
    pub stack: Stack,
    /// The agent's key, listed in `[[ssh_key]]`.
    pub agent: Key,
    /// A CA listed in `[ssh] user_ca_keys`.
    pub ca: Key,
    /// The client for the agent key, host key pinned, no port option.
    pub client: Client,
    /// The gateway's SSH port.
    pub ssh_port: u16,
    /// Keys, certificates and known_hosts.
    pub keys: Tmp,
}

impl SshStack {
    /// Starts everything for `kind`.
    #[track_caller]
    pub fn start(kind: Kind) -> SshStack {
        SshStack::start_with(kind, "", "")
    }

    /// Starts everything; `ssh_toml` goes into the `[ssh]` table, `extra_toml` at the end.
    #[track_caller]
    pub fn start_with(kind: Kind, ssh_toml: &str, extra_toml: &str) -> SshStack {
        SshStack::start_with_env(kind, ssh_toml, extra_toml, &[])
    }

    /// Like [`SshStack::start_with`], with extra environment for the gateway.
    #[track_caller]
    pub fn start_with_env(
        kind: Kind,
        ssh_toml: &str,
        extra_toml: &str,
        env: &[(&str, &str)],
    ) -> SshStack {
        let keys = Tmp::new("ssh-keys");
        let agent = Key::generate(keys.path(), "agent");
        let ca = Key::generate(keys.path(), "ca");
        let config = format!(
            "[[ssh_key]]\nname = \"agent-1\"\npublic_key = \"{}\"\ngroups = [\"agents\"]\n\n\
             [ssh]\nuser_ca_keys = [\"{}\"]\n{ssh_toml}\n\n{extra_toml}",
            agent.public_line(),
            ca.public_line()
        );
        let stack = Stack::start_with_server(kind, "ssh_listen = \"{ssh_listen}\"", &config, env);
        let ssh_port = stack.gateway.ssh_port.expect("the gateway has an SSH port");
        let known_hosts = keys.join("known_hosts");
        pin_host_key(
            &stack.gateway.dir().join("ssh_host_ed25519_key"),
            ssh_port,
            &known_hosts,
        );
        let client = Client {
            key: agent.clone(),
            cert: None,
            known_hosts,
            port: None,
        };
        SshStack {
            stack,
            agent,
            ca,
            client,
            ssh_port,
            keys,
        }
    }

    /// `ssh://git@127.0.0.1:PORT/<upstream>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "ssh://git@127.0.0.1:{}/{}/{path}",
            self.ssh_port, self.stack.name
        )
    }

    /// `git@127.0.0.1:<upstream>/<path>` (the port comes from the client's `-p`).
    pub fn scp_url(&self, path: &str) -> String {
        format!("git@127.0.0.1:{}/{path}", self.stack.name)
    }

    /// The agent's git over SSH.
    pub fn git(&self) -> Git {
        self.client.git(&self.stack.git)
    }

    /// git over SSH with another client.
    pub fn git_with(&self, client: &Client) -> Git {
        client.git(&self.stack.git)
    }

    /// A new key in the keys folder.
    pub fn new_key(&self, name: &str) -> Key {
        Key::generate(self.keys.path(), name)
    }

    /// Clones `repo.git` over `ssh://` into `label`, panicking (with logs) unless it works.
    #[track_caller]
    pub fn clone(&self, label: &str, extra: &[&str]) -> PathBuf {
        let dest = self.stack.work(label);
        let out = self.git().clone(&self.url("repo.git"), &dest, extra);
        assert!(out.success(), "clone failed: {out}\n{}", self.stack.logs());
        dest
    }

    /// The gateway's output and the upstream's logs.
    pub fn logs(&self) -> String {
        self.stack.logs()
    }
}

/// Writes a known_hosts line for the gateway's host key (its private key file is readable by
/// the test, which derives the public key with `ssh-keygen -y`).
#[track_caller]
pub fn pin_host_key(host_key: &Path, port: u16, known_hosts: &Path) {
    let mut cmd = Command::new("ssh-keygen");
    cmd.arg("-y").arg("-f").arg(host_key);
    let out = process::run(&mut cmd, TIMEOUT);
    out.assert_ok();
    let line = format!("[127.0.0.1]:{port} {}\n", out.stdout.trim());
    std::fs::write(known_hosts, line).expect("write known_hosts");
}

/// The SHA-256 fingerprint of a key file (`SHA256:...`), by `ssh-keygen -l`.
#[track_caller]
pub fn fingerprint(key: &Path) -> String {
    let mut cmd = Command::new("ssh-keygen");
    cmd.arg("-l").arg("-f").arg(key);
    let out = process::run(&mut cmd, TIMEOUT);
    out.assert_ok();
    out.stdout
        .split_whitespace()
        .nth(1)
        .expect("fingerprint in ssh-keygen -l output")
        .to_owned()
}

/// `ssh-keygen -L -f CERT`: the certificate described as text.
#[track_caller]
pub fn describe_certificate(cert: &Path) -> String {
    let mut cmd = Command::new("ssh-keygen");
    cmd.arg("-L").arg("-f").arg(cert).env("TZ", "UTC");
    let out = process::run(&mut cmd, TIMEOUT);
    out.assert_ok();
    out.stdout
}
