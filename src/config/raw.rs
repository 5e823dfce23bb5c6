//! The config file as written: serde structs that mirror the TOML key for key.
//!
//! Nothing here is checked beyond TOML types and unknown keys (`deny_unknown_fields`
//! everywhere). Values that `resolve` checks keep their byte span (`S<T>`) so that its
//! errors can name the line; tables keep the span of their header for "missing key" errors.
//! Integers stay `i64` (TOML's type) so that range errors are ours, with our wording.

use serde::Deserialize;
use serde_spanned::Spanned;

/// A value with its byte span in the file.
pub(crate) type S<T> = Spanned<T>;

/// The whole file; every table is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub server: Option<S<RawServer>>,
    pub admin: Option<S<RawAdmin>>,
    #[serde(default)]
    pub upstream: Vec<S<RawUpstream>>,
    #[serde(default)]
    pub token: Vec<S<RawToken>>,
    #[serde(default)]
    pub oidc: Vec<S<RawOidc>>,
    #[serde(default)]
    pub ssh_key: Vec<S<RawSshKey>>,
    pub ssh: Option<S<RawSsh>>,
    pub policy: Option<S<RawPolicy>>,
    #[serde(default)]
    pub rule: Vec<S<RawRule>>,
    pub scan: Option<S<RawScan>>,
    pub approval: Option<S<RawApproval>>,
    pub audit: Option<S<RawAudit>>,
    pub limits: Option<S<RawLimits>>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub http_listen: Option<S<String>>,
    pub tls_cert: Option<S<String>>,
    pub tls_key: Option<S<String>>,
    pub ssh_listen: Option<S<String>>,
    pub ssh_host_key: Option<S<String>>,
    pub admin_listen: Option<S<String>>,
    pub state_dir: Option<S<String>>,
    pub public_url: Option<S<String>>,
    pub shutdown_grace_seconds: Option<S<i64>>,
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub token_sha256: Option<S<String>>,
    pub public_url: Option<S<String>>,
}

/// One `[[upstream]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    pub name: S<String>,
    pub url: S<String>,
    pub username: Option<S<String>>,
    pub password_env: Option<S<String>>,
    pub password_file: Option<S<String>>,
    pub ca_file: Option<S<String>>,
    pub ssh_key_file: Option<S<String>>,
    pub known_hosts: Option<S<String>>,
}

/// One `[[token]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawToken {
    pub name: S<String>,
    pub sha256: S<String>,
    #[serde(default)]
    pub groups: Vec<S<String>>,
}

/// One `[[oidc]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOidc {
    pub issuer: S<String>,
    pub audience: S<String>,
    pub groups_claim: Option<S<String>>,
    pub name_claim: Option<S<String>>,
    #[serde(default)]
    pub allowed_clients: Vec<S<String>>,
    pub leeway_seconds: Option<S<i64>>,
    #[serde(default)]
    pub required_claims: std::collections::BTreeMap<String, S<String>>,
    pub jwks_refresh_seconds: Option<S<i64>>,
    pub jwks_min_refresh_seconds: Option<S<i64>>,
    pub ca_file: Option<S<String>>,
}

/// One `[[ssh_key]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSshKey {
    pub name: S<String>,
    pub public_key: S<String>,
    #[serde(default)]
    pub groups: Vec<S<String>>,
}

/// `[ssh]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSsh {
    #[serde(default)]
    pub user_ca_keys: Vec<S<String>>,
    pub ca_key: Option<S<String>>,
    pub max_cert_ttl_seconds: Option<S<i64>>,
    pub max_auth_attempts: Option<S<i64>>,
    pub idle_timeout_seconds: Option<S<i64>>,
    pub max_session_seconds: Option<S<i64>>,
    pub max_sessions_per_identity: Option<S<i64>>,
}

/// `[policy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub default: Option<S<String>>,
}

/// One `[[rule]]`. Lists are `Option` because "absent" (the default) and "empty" differ.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub name: S<String>,
    pub subjects: Option<S<Vec<S<String>>>>,
    pub repos: Option<S<Vec<S<String>>>>,
    pub refs: Option<S<Vec<S<String>>>>,
    pub ops: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub paths: Vec<S<String>>,
    pub action: Option<S<String>>,
    pub message: Option<S<String>>,
    #[serde(default)]
    pub hide_refs: Vec<S<String>>,
    pub max_blob_bytes: Option<S<i64>>,
    pub require_signed: Option<S<bool>>,
    pub commit_message: Option<S<String>>,
    pub commit_message_deny: Option<S<String>>,
    pub author_email: Option<S<String>>,
}

/// `[scan]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScan {
    pub enabled: Option<bool>,
    pub action: Option<S<String>>,
    pub max_blob_bytes: Option<S<i64>>,
    #[serde(default)]
    pub allow_paths: Vec<S<String>>,
    #[serde(default)]
    pub allow_fingerprints: Vec<S<String>>,
    pub baseline: Option<S<String>>,
    pub gitleaks_config: Option<S<String>>,
}

/// `[approval]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApproval {
    pub wait_seconds: Option<S<i64>>,
    pub apply_on_approve: Option<bool>,
    pub expire_after_seconds: Option<S<i64>>,
    #[serde(default)]
    pub approver_groups: Vec<S<String>>,
    pub webhook_url: Option<S<String>>,
}

/// `[audit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    pub pack_key_file: Option<S<String>>,
    pub keep_packs_days: Option<S<i64>>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub max_push_bytes: Option<S<i64>>,
    pub max_request_bytes: Option<S<i64>>,
    pub max_ref_updates: Option<S<i64>>,
    pub max_pkt_lines: Option<S<i64>>,
}
