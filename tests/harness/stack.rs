//! The usual test setup: an upstream holding repositories with history, a gateway in front of it
//! with one agent token, and a git client.

use std::path::PathBuf;

use super::gateway::{self, Gateway};
use super::git::Git;
use super::http;
use super::repo::{History, Repo};
use super::tmp::Tmp;
use super::upstream::Upstream;

/// Which upstream a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A `file://` folder of bare repositories.
    File,
    /// `git http-backend` behind nginx with basic auth.
    Http,
    /// OpenSSH's sshd forcing git-shell, reached with a vaulted key and a pinned host key.
    Ssh,
}

/// Upstream + gateway + client. Upstream root layout: `repo.git` (with [`History`]) and
/// `team/app.git`; `outside/secret.git` sits next to the root, outside it (traversal target).
pub struct Stack {
    // Field order is drop order: the gateway stops before the upstream, the folder goes last.
    /// The gateway, configured with this upstream as [`Stack::name`] and the agent token.
    pub gateway: Gateway,
    /// The upstream.
    pub upstream: Upstream,
    /// `<root>/repo.git`.
    pub repo: Repo,
    /// Its commits.
    pub history: History,
    /// `<root>/team/app.git`.
    pub nested: Repo,
    /// `<tmp>/outside/secret.git`, which no gateway URL may reach.
    pub outside: Repo,
    /// The agent token (static `[[token]]` named `agent-1`, group `agents`).
    pub token: String,
    /// The upstream's name in gateway URLs: `local` (file), `web` (http) or `sshup` (ssh).
    pub name: &'static str,
    /// Which upstream.
    pub kind: Kind,
    /// A git client with its own HOME.
    pub git: Git,
    /// The test's folder.
    pub tmp: Tmp,
}

impl Stack {
    /// Starts everything for `kind`.
    #[track_caller]
    pub fn start(kind: Kind) -> Stack {
        Stack::start_with(kind, "")
    }

    /// Starts everything, appending `extra_toml` to the gateway's config.
    #[track_caller]
    pub fn start_with(kind: Kind, extra_toml: &str) -> Stack {
        Stack::start_with_env(kind, extra_toml, &[])
    }

    /// Starts everything, appending `extra_toml` to the gateway's config and giving the gateway
    /// the extra environment `env` (e.g. `GITGATE_LOG`).
    #[track_caller]
    pub fn start_with_env(kind: Kind, extra_toml: &str, env: &[(&str, &str)]) -> Stack {
        Stack::start_with_server(kind, "", extra_toml, env)
    }

    /// Starts everything; `server_toml` adds keys to the gateway's `[server]` table (which
    /// then is `http_listen = "{http_listen}"`, `state_dir = "state"` and these; the harness
    /// fills in `{http_listen}` and `{ssh_listen}`).
    #[track_caller]
    pub fn start_with_server(
        kind: Kind,
        server_toml: &str,
        extra_toml: &str,
        env: &[(&str, &str)],
    ) -> Stack {
        let tmp = Tmp::new("stack");
        let root = tmp.dir("root");
        let (repo, history) = Repo::with_history(&root.join("repo.git"));
        let nested = Repo::init_bare(&root.join("team/app.git"));
        nested.commit("main", &[("app.txt", b"app\n".as_slice())], "app");
        let outside = Repo::init_bare(&tmp.join("outside/secret.git"));
        outside.commit("main", &[("secret.txt", b"outside\n".as_slice())], "secret");
        let (upstream, name) = match kind {
            Kind::File => (Upstream::file(&root), "local"),
            Kind::Http => {
                let password = format!("pw-{}", &gateway::new_token()[3..]);
                (
                    Upstream::http_backend(&root, "vault-user", &password),
                    "web",
                )
            }
            Kind::Ssh => (Upstream::sshd(&root), "sshup"),
        };
        let token = gateway::new_token();
        let server = if server_toml.is_empty() {
            String::new()
        } else {
            format!(
                "[server]\nhttp_listen = \"{{http_listen}}\"\nstate_dir = \"state\"\n{server_toml}\n\n"
            )
        };
        let config = format!(
            "{server}{}\n{}\n{extra_toml}",
            upstream.toml(name),
            gateway::token_toml("agent-1", &token, &["agents"])
        );
        let mut gateway_env = upstream.env();
        gateway_env.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let gateway = Gateway::start_with_env(&config, &gateway_env);
        let git = Git::new(&tmp.dir("client"));
        Stack {
            gateway,
            upstream,
            repo,
            history,
            nested,
            outside,
            token,
            name,
            kind,
            git,
            tmp,
        }
    }

    /// Gateway URL of repository `path` with the agent token as Basic password.
    pub fn url(&self, path: &str) -> String {
        self.gateway
            .url_with_token("agent", &self.token, &format!("{}/{path}", self.name))
    }

    /// Gateway URL of repository `path` without credentials.
    pub fn anon_url(&self, path: &str) -> String {
        self.gateway.url(&format!("{}/{path}", self.name))
    }

    /// Request target `/<name>/<rest>` for raw HTTP requests.
    pub fn target(&self, rest: &str) -> String {
        format!("/{}/{rest}", self.name)
    }

    /// `Authorization` header value carrying the agent token (Basic).
    pub fn auth(&self) -> String {
        http::basic("agent", &self.token)
    }

    /// A path in the test's folder for a clone (not created).
    pub fn work(&self, label: &str) -> PathBuf {
        self.tmp.join(label)
    }

    /// Clones `repo.git` through the gateway into `label`, panicking (with logs) unless it works.
    #[track_caller]
    pub fn clone(&self, label: &str, extra: &[&str]) -> PathBuf {
        let dest = self.work(label);
        let out = self.git.clone(&self.url("repo.git"), &dest, extra);
        assert!(out.success(), "clone failed: {out}\n{}", self.logs());
        dest
    }

    /// The gateway's output and the upstream's logs, for failure messages.
    pub fn logs(&self) -> String {
        let upstream = match (self.upstream.http(), self.upstream.ssh()) {
            (Some(h), _) => h.logs(),
            (_, Some(s)) => format!("--- sshd ---\n{}", s.logs()),
            _ => String::new(),
        };
        format!("--- gateway ---\n{}\n{upstream}", self.gateway.output())
    }
}
