//! The gateway's configuration: TOML in, a [`Config`] that cannot be invalid out.
//!
//! Two stages (see `style.md`): [`raw`] mirrors the file with serde and keeps byte spans;
//! `resolve` checks every value and builds the types below. Runtime code only ever sees
//! [`Config`]. Relative paths are resolved against the folder of the config file; files other
//! than `password_file` are not opened here (the runtime does that, and may create some).

mod error;
mod locate;
mod pattern;
mod raw;
mod resolve;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;

pub use error::{ConfigError, Location, Problem};
pub use pattern::Pattern;

/// Reads and resolves the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Reads the config file at `path` for verbs that only use local state (`audit`, `replay`,
/// `approvals`): like [`load`], but upstream passwords are not read (they resolve to empty
/// secrets), so an auditor needs neither the vault's environment nor its files. Such a config
/// must not be used to reach upstreams.
pub fn load_local(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    resolve::resolve_with(&text, path, &|name| std::env::var(name), false)
}

/// Resolves config `text`; `path` names the file in messages and is the base of relative paths.
///
/// `password_env` values are read from the process environment.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    resolve::resolve(text, path, &|name| std::env::var(name))
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file it was read from (absolute when the path given was).
    pub source: PathBuf,
    /// `[server]`: listeners and local state.
    pub server: Server,
    /// `[admin]`: the admin API's credential.
    pub admin: Admin,
    /// `[[upstream]]`: the Git servers behind the gateway, in file order; names are unique.
    pub upstreams: Vec<Upstream>,
    /// `[[token]]`: static bearer/basic tokens; names are unique.
    pub tokens: Vec<Token>,
    /// `[[oidc]]`: accepted OpenID Connect issuers.
    pub oidc: Vec<Oidc>,
    /// `[[ssh_key]]`: accepted SSH public keys.
    pub ssh_keys: Vec<SshKey>,
    /// `[ssh]`: SSH certificate settings.
    pub ssh: Ssh,
    /// `[policy]`: the decision when no rule matches.
    pub policy: Policy,
    /// `[[rule]]`: policy rules, in file order; names are unique.
    pub rules: Vec<Rule>,
    /// `[scan]`: secret scanning of pushed blobs.
    pub scan: Scan,
    /// `[approval]`: held pushes.
    pub approval: Approval,
    /// `[audit]`: the record.
    pub audit: Audit,
    /// `[limits]`: safety limits on client input.
    pub limits: Limits,
}

impl Config {
    /// The upstream named `name`, if any.
    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }
}

/// `[server]`: listeners and local state.
#[derive(Debug, Clone)]
pub struct Server {
    /// Smart-HTTP listener (`http_listen`, default `127.0.0.1:8080`).
    pub http_listen: SocketAddr,
    /// TLS for the HTTP listener (`tls_cert` + `tls_key`); plain HTTP when absent.
    pub tls: Option<Tls>,
    /// Optional SSH listener (`ssh_listen`).
    pub ssh_listen: Option<SocketAddr>,
    /// SSH host key file, created if absent (`ssh_host_key`, default `ssh_host_ed25519_key`).
    pub ssh_host_key: PathBuf,
    /// Optional admin API / metrics listener (`admin_listen`).
    pub admin_listen: Option<SocketAddr>,
    /// Folder for audit.db, spooled packs and mirrors (`state_dir`, default `state`).
    pub state_dir: PathBuf,
    /// The gateway's public base URL, used in messages (`public_url`).
    pub public_url: Option<url::Url>,
    /// Grace period for in-flight operations at shutdown (`shutdown_grace_seconds`, default 30).
    pub shutdown_grace: Duration,
}

/// Certificate and key (PEM files) for the HTTP listener.
#[derive(Debug, Clone)]
pub struct Tls {
    /// Certificate chain file (`tls_cert`).
    pub cert: PathBuf,
    /// Private key file (`tls_key`).
    pub key: PathBuf,
}

/// `[admin]`: the admin API's credential.
#[derive(Debug, Clone)]
pub struct Admin {
    /// SHA-256 of the admin bearer token; the admin API refuses everyone when absent.
    pub token_sha256: Option<[u8; 32]>,
    /// The admin listener's URL as reviewers reach it (`public_url`): held pushes' `review:`
    /// lines and the webhook's `url` link to its review pages (`<public_url>/approvals/<id>`).
    pub public_url: Option<url::Url>,
}

/// One `[[upstream]]`: a Git server (or folder of repositories) behind the gateway.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// First segment of every gateway URL; matches `[A-Za-z0-9._-]+`.
    pub name: String,
    /// Where the repositories are and how to reach them.
    pub target: UpstreamTarget,
}

/// How to reach an upstream; the variant follows the scheme of its `url`.
#[derive(Debug, Clone)]
pub enum UpstreamTarget {
    /// `file:///abs/path` (or `file:relative/path`, relative to the config folder).
    File {
        /// Absolute folder holding the repositories.
        root: PathBuf,
    },
    /// `http://` or `https://`.
    Http {
        /// Base URL; its path always ends with `/`, so `base.join("repo.git")` appends.
        base: url::Url,
        /// Basic-auth credential sent upstream (`username` + `password_env`/`password_file`).
        credential: Option<HttpCredential>,
        /// Extra CA certificate (PEM) to trust for this upstream (`ca_file`).
        ca_file: Option<PathBuf>,
    },
    /// `ssh://[user@]host[:port]/path`.
    Ssh {
        /// Login user (default `git`).
        user: String,
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// Port (default 22).
        port: u16,
        /// Path prefix on the server, as written in the URL (starts with `/`).
        path: String,
        /// Private key for the upstream (`ssh_key_file`).
        key_file: PathBuf,
        /// Pinned host key(s) (`known_hosts`).
        known_hosts: PathBuf,
    },
}

/// Basic-auth credential for an http(s) upstream.
#[derive(Debug, Clone)]
pub struct HttpCredential {
    /// Basic-auth user (`username`, default `x-access-token`).
    pub username: String,
    /// The password or token, from `password_env` or `password_file`.
    pub password: Secret<String>,
}

/// One `[[token]]`: a static token.
#[derive(Debug, Clone)]
pub struct Token {
    /// The identity's name; unique among tokens.
    pub name: String,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
    /// The identity's groups.
    pub groups: Vec<String>,
}

/// One `[[oidc]]`: an accepted OpenID Connect issuer.
#[derive(Debug, Clone)]
pub struct Oidc {
    /// Issuer URL, the base of discovery. The URL parser normalizes it (a bare host gains a
    /// `/`), so compare the `iss` claim with [`Oidc::iss`] instead.
    pub issuer: url::Url,
    /// The issuer exactly as written: the `iss` claim must equal it.
    pub iss: String,
    /// Required `aud` value.
    pub audience: String,
    /// Claim holding the groups (`groups_claim`, default `groups`).
    pub groups_claim: String,
    /// Claim holding the identity's name (`name_claim`, default `sub`).
    pub name_claim: String,
    /// When non-empty, only tokens whose `azp`/`client_id` is listed (`allowed_clients`).
    pub allowed_clients: Vec<String>,
    /// Clock skew tolerated on `exp`/`nbf`/`iat` (`leeway_seconds`, default 60).
    pub leeway: Duration,
    /// `(claim path, value)` pairs every token must satisfy (`required_claims`).
    pub required_claims: Vec<(String, String)>,
    /// Refresh the issuer's keys when older than this (`jwks_refresh_seconds`, default 3600).
    pub jwks_refresh: Duration,
    /// At most one key fetch per this interval, whatever triggers it: an unknown `kid`, a
    /// failure, a refresh (`jwks_min_refresh_seconds`, default 30).
    pub jwks_min_refresh: Duration,
    /// Extra PEM CA certificates to trust for discovery and the JWKS (`ca_file`), e.g. for an
    /// in-house Keycloak; read when the gateway starts.
    pub ca_file: Option<PathBuf>,
}

/// One `[[ssh_key]]`: an accepted SSH public key.
#[derive(Debug, Clone)]
pub struct SshKey {
    /// The identity's name.
    pub name: String,
    /// `"<algorithm> <base64>"`, comment dropped; the algorithm is known and the base64 valid.
    pub public_key: String,
    /// The identity's groups.
    pub groups: Vec<String>,
}

/// `[ssh]`: SSH certificates.
#[derive(Debug, Clone)]
pub struct Ssh {
    /// CA keys (`"<algorithm> <base64>"`, comment dropped) whose user certificates are accepted.
    pub user_ca_keys: Vec<String>,
    /// The gateway's own CA key file (`ca_key`, default `ssh_ca_ed25519_key`).
    pub ca_key: PathBuf,
    /// Longest validity of a certificate the gateway issues (`max_cert_ttl_seconds`, default
    /// 3600).
    pub max_cert_ttl: Duration,
    /// Failed authentication attempts before the SSH front disconnects (`max_auth_attempts`,
    /// default 6, like OpenSSH's `MaxAuthTries`).
    pub max_auth_attempts: usize,
    /// An SSH connection on which nothing happens for this long is closed
    /// (`idle_timeout_seconds`, default 300).
    pub idle_timeout: Duration,
    /// Longest a git operation over SSH may take (`max_session_seconds`, default 3600).
    pub max_session: Duration,
    /// Most git operations one identity may run over SSH at once
    /// (`max_sessions_per_identity`, default 64).
    pub max_sessions_per_identity: usize,
}

/// `[policy]`.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Decision when no rule matches: only [`Decision::Allow`] or [`Decision::Deny`] (default allow).
    pub default: Decision,
}

/// A policy decision. The order is precedence: combining takes the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Hold it until someone approves.
    Approve,
    /// Refuse it.
    Deny,
}

impl Decision {
    /// The config spelling: `allow`, `approve` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[rule]]`. It matches a ref update when all of its conditions hold: `subjects`,
/// `repos`, `refs`, `ops`, and those of `paths`, `max_blob_bytes`, `require_signed`,
/// `commit_message`, `commit_message_deny` and `author_email` that are present.
///
/// Invariants checked when the config is resolved:
/// - a rule without `action` has `hide_refs` and no other condition (nor `message`): it only hides;
/// - a rule whose `ops` has [`Op::Fetch`] has no `refs`, `paths` or commit/blob condition (a
///   fetch is decided per repository) and its action is not [`Decision::Approve`] (a fetch
///   cannot be held).
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name, the first word of a rejection reason.
    pub name: String,
    /// Who it applies to (default `[Subject::Any]`).
    pub subjects: Vec<Subject>,
    /// Globs over `<upstream>/<path>` without `.git` (default `*`, which matches everything).
    pub repos: Vec<Pattern>,
    /// Globs over full ref names (default `*`, which matches everything).
    pub refs: Vec<Pattern>,
    /// Operations it applies to (default: create, update, force, delete).
    pub ops: Vec<Op>,
    /// When non-empty, only pushes changing a matching path match.
    pub paths: Vec<Pattern>,
    /// Its decision; `None` means the rule only hides refs (then `hide_refs` is non-empty).
    pub action: Option<Decision>,
    /// Text shown to the client with the decision.
    pub message: Option<String>,
    /// Refs its subjects neither see, fetch nor push (applies by `subjects` and `repos` alone).
    pub hide_refs: Vec<Pattern>,
    /// `max_blob_bytes`: holds when the push introduces a blob larger than this many bytes.
    pub max_blob_bytes: Option<u64>,
    /// `require_signed = true`: holds when the push introduces a commit without a signature
    /// (a `gpgsig` header, GPG or SSH alike). Whether the signature verifies is not checked.
    pub require_signed: bool,
    /// `commit_message`: holds when an introduced commit's message does NOT match (a
    /// requirement, like GitLab's "commit message must match"). Unanchored: use `^`/`$`.
    pub commit_message: Option<regex::Regex>,
    /// `commit_message_deny`: holds when an introduced commit's message matches.
    pub commit_message_deny: Option<regex::Regex>,
    /// `author_email`: holds when an introduced commit's author or committer email does NOT
    /// match (a requirement). Unanchored: use `^`/`$`; `(?i)` ignores case.
    pub author_email: Option<regex::Regex>,
}

/// Who a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// `*`: everyone.
    Any,
    /// `user:NAME`: the identity named NAME.
    User(String),
    /// `group:NAME`: identities in group NAME.
    Group(String),
}

/// What a ref update or request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A new ref (old id is zero).
    Create,
    /// A fast-forward.
    Update,
    /// A non-fast-forward update.
    Force,
    /// A deleted ref (new id is zero).
    Delete,
    /// Clone, fetch or ls-remote.
    Fetch,
}

impl Op {
    /// The four push operations: the default of a rule's `ops`.
    pub const PUSH: [Op; 4] = [Op::Create, Op::Update, Op::Force, Op::Delete];

    /// The config spelling: `create`, `update`, `force`, `delete` or `fetch`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Force => "force",
            Op::Delete => "delete",
            Op::Fetch => "fetch",
        }
    }

    /// Parses the config spelling.
    pub fn from_name(name: &str) -> Option<Op> {
        [Op::Create, Op::Update, Op::Force, Op::Delete, Op::Fetch]
            .into_iter()
            .find(|op| op.as_str() == name)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[scan]`: secret scanning of pushed blobs.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Whether pushes are scanned (default true).
    pub enabled: bool,
    /// Decision for a push with a finding: [`Decision::Deny`] (default) or [`Decision::Approve`].
    pub action: Decision,
    /// Larger blobs are not scanned (`max_blob_bytes`, default 10 MiB).
    pub max_blob_bytes: u64,
    /// What is not reported: `allow_paths` globs, `allow_fingerprints`, the fingerprints of the
    /// `baseline` file and the allowlists of the `gitleaks_config` file, merged.
    pub allow: crate::scan::Allow,
    /// Rules of the `gitleaks_config` file, as detectors (after the built-in ones).
    pub custom_detectors: Vec<crate::scan::Detector>,
    /// The `baseline` file, when set (read when the config is resolved).
    pub baseline: Option<PathBuf>,
    /// The `gitleaks_config` file, when set (read when the config is resolved).
    pub gitleaks_config: Option<PathBuf>,
}

/// `[approval]`: held pushes.
#[derive(Debug, Clone)]
pub struct Approval {
    /// How long a push is held waiting for a decision (`wait_seconds`, default 30).
    pub wait: Duration,
    /// Whether an approval given while the push is held lets it through (default true).
    pub apply_on_approve: bool,
    /// Pending approvals expire after this (`expire_after_seconds`, default 86400).
    pub expire_after: Duration,
    /// Groups allowed to decide through the admin API (empty: admin token only).
    pub approver_groups: Vec<String>,
    /// Notified (POST, JSON) of each new pending approval (`webhook_url`).
    pub webhook_url: Option<url::Url>,
}

/// `[audit]`: the record.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Key file for encrypting stored packs (`pack_key_file`): 32 raw bytes or 64 hex digits.
    pub pack_key_file: Option<PathBuf>,
    /// Stored packs are deleted this many days after the last record referencing them
    /// (`keep_packs_days`, 1 or more; default: kept forever).
    pub keep_packs_days: Option<u32>,
}

/// `[limits]`: safety limits on client input.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest pack a push may carry (`max_push_bytes`, default 2 GiB).
    pub max_push_bytes: u64,
    /// Largest upload-pack request body (`max_request_bytes`, default 64 MiB).
    pub max_request_bytes: u64,
    /// Most ref updates in one push (`max_ref_updates`, default 10000).
    pub max_ref_updates: usize,
    /// Most pkt-lines in one request (`max_pkt_lines`, default 100000).
    pub max_pkt_lines: usize,
}
