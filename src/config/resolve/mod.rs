//! Raw TOML -> [`Config`]: every check, every default, every path made absolute.
//!
//! Each table is resolved through a [`Tbl`], which knows the table's header for messages and
//! turns spanned raw values into checked ones (see `value.rs`). Semantic errors point at the
//! value's span, or at the table header when a key is missing.

mod identity;
mod rule;
mod upstream;
mod value;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, Location, Problem};
use super::locate;
use super::raw::{self, RawConfig, S};
use super::{Admin, Approval, Audit, Config, Decision, Limits, Policy, Scan, Server, Tls};

/// Looks up an environment variable (`std::env::var`, or a map in tests).
pub(super) type Env<'a> = dyn Fn(&str) -> Result<String, std::env::VarError> + 'a;

/// Resolves config `text` read from `file`.
pub(super) fn resolve(text: &str, file: &Path, env: &Env<'_>) -> Result<Config, ConfigError> {
    resolve_with(text, file, env, true)
}

/// Like [`resolve`]; with `read_secrets` false, upstream passwords (`password_env`,
/// `password_file`) are checked for form but not read: they resolve to an empty secret.
pub(super) fn resolve_with(
    text: &str,
    file: &Path,
    env: &Env<'_>,
    read_secrets: bool,
) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| locate::de_error(text, file, &e))?;
    let source = std::path::absolute(file).map_err(|source| ConfigError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let base = source
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let cx = Ctx {
        text,
        file,
        base,
        env,
        read_secrets,
    };
    Ok(Config {
        server: server(&cx, raw.server)?,
        admin: admin(&cx, raw.admin)?,
        upstreams: upstream::upstreams(&cx, raw.upstream)?,
        tokens: identity::tokens(&cx, raw.token)?,
        oidc: identity::oidcs(&cx, raw.oidc)?,
        ssh_keys: identity::ssh_keys(&cx, raw.ssh_key)?,
        ssh: identity::ssh(&cx, raw.ssh)?,
        policy: policy(&cx, raw.policy)?,
        rules: rule::rules(&cx, raw.rule)?,
        scan: scan(&cx, raw.scan)?,
        approval: approval(&cx, raw.approval)?,
        audit: audit(&cx, raw.audit)?,
        limits: limits(&cx, raw.limits)?,
        source,
    })
}

/// What every check needs: the text (for lines), the file (for messages), the base folder.
pub(super) struct Ctx<'a> {
    text: &'a str,
    file: &'a Path,
    base: PathBuf,
    env: &'a Env<'a>,
    /// Whether upstream secrets are read (false for verbs that only read local state).
    read_secrets: bool,
}

impl Ctx<'_> {
    /// A view for the table written as `header` (`[server]`, `[[rule]]`).
    fn table(&self, header: &'static str) -> Tbl<'_> {
        Tbl { cx: self, header }
    }

    fn line(&self, span: &Range<usize>) -> usize {
        locate::line_of(self.text, span.start)
    }
}

/// One table of the config, for resolving its values and reporting errors in it.
pub(super) struct Tbl<'a> {
    cx: &'a Ctx<'a>,
    header: &'static str,
}

impl Tbl<'_> {
    /// An error about the value of `key` at `span`.
    fn err(&self, span: &Range<usize>, key: &str, problem: Problem) -> ConfigError {
        self.error_at(span, Some(key), problem)
    }

    /// An error about the table whose header is at `span`.
    fn header_err(&self, span: &Range<usize>, problem: Problem) -> ConfigError {
        self.error_at(span, None, problem)
    }

    fn error_at(&self, span: &Range<usize>, key: Option<&str>, problem: Problem) -> ConfigError {
        ConfigError::Invalid {
            file: self.cx.file.to_path_buf(),
            line: self.cx.line(span),
            at: Location {
                table: self.header.to_string(),
                key: key.map(str::to_string),
            },
            problem: Box::new(problem),
        }
    }
}

impl Tbl<'_> {
    /// Records `value` (shown as `shown`) in `seen`; an error if an earlier entry had it.
    fn unique(
        &self,
        seen: &mut HashMap<String, usize>,
        key: &str,
        what: &'static str,
        value: &str,
        shown: &str,
        span: &Range<usize>,
    ) -> Result<(), ConfigError> {
        let line = self.cx.line(span);
        if let Some(&first_line) = seen.get(value) {
            let problem = Problem::Duplicate {
                what,
                value: shown.to_string(),
                first_line,
            };
            return Err(self.err(span, key, problem));
        }
        seen.insert(value.to_string(), line);
        Ok(())
    }
}

/// The value of an optional table, with its defaults when absent.
fn inner<T: Default>(table: Option<S<T>>) -> T {
    table.map(S::into_inner).unwrap_or_default()
}

const MIB: i64 = 1 << 20;

const ALLOW_DENY: &[(&str, Decision)] = &[("allow", Decision::Allow), ("deny", Decision::Deny)];
const DENY_APPROVE: &[(&str, Decision)] =
    &[("deny", Decision::Deny), ("approve", Decision::Approve)];

fn server(cx: &Ctx<'_>, raw: Option<S<raw::RawServer>>) -> Result<Server, ConfigError> {
    let t = cx.table("[server]");
    let raw = inner(raw);
    let http_listen = match &raw.http_listen {
        Some(v) => t.addr("http_listen", v)?,
        None => std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    let ssh_listen = raw
        .ssh_listen
        .as_ref()
        .map(|v| t.addr("ssh_listen", v))
        .transpose()?;
    let admin_listen = raw
        .admin_listen
        .as_ref()
        .map(|v| t.addr("admin_listen", v))
        .transpose()?;
    // Two listeners on one address would fail at bind time with a vaguer message.
    let mut taken = vec![("http_listen", http_listen)];
    for (key, raw_value, addr) in [
        ("ssh_listen", &raw.ssh_listen, ssh_listen),
        ("admin_listen", &raw.admin_listen, admin_listen),
    ] {
        if let (Some(v), Some(addr)) = (raw_value, addr) {
            if let Some((other, _)) = taken.iter().find(|(_, a)| *a == addr && addr.port() != 0) {
                return Err(t.err(&v.span(), key, Problem::SameAddress { addr, other }));
            }
            taken.push((key, addr));
        }
    }
    let tls = match (&raw.tls_cert, &raw.tls_key) {
        (Some(cert), Some(key)) => Some(Tls {
            cert: t.path("tls_cert", cert)?,
            key: t.path("tls_key", key)?,
        }),
        (None, None) => None,
        (Some(cert), None) => {
            return Err(t.err(
                &cert.span(),
                "tls_cert",
                Problem::Requires { other: "tls_key" },
            ))
        }
        (None, Some(key)) => {
            return Err(t.err(
                &key.span(),
                "tls_key",
                Problem::Requires { other: "tls_cert" },
            ))
        }
    };
    Ok(Server {
        http_listen,
        tls,
        ssh_listen,
        ssh_host_key: t.path_or(
            "ssh_host_key",
            raw.ssh_host_key.as_ref(),
            "ssh_host_ed25519_key",
        )?,
        admin_listen,
        state_dir: t.path_or("state_dir", raw.state_dir.as_ref(), "state")?,
        public_url: raw
            .public_url
            .as_ref()
            .map(|v| t.http_url("public_url", v))
            .transpose()?,
        shutdown_grace: t.seconds(
            "shutdown_grace_seconds",
            raw.shutdown_grace_seconds.as_ref(),
            30,
            0,
        )?,
    })
}

fn admin(cx: &Ctx<'_>, raw: Option<S<raw::RawAdmin>>) -> Result<Admin, ConfigError> {
    let t = cx.table("[admin]");
    let raw = inner(raw);
    Ok(Admin {
        token_sha256: raw
            .token_sha256
            .as_ref()
            .map(|v| t.sha256("token_sha256", v))
            .transpose()?,
        public_url: raw
            .public_url
            .as_ref()
            .map(|v| t.http_url("public_url", v))
            .transpose()?,
    })
}

fn policy(cx: &Ctx<'_>, raw: Option<S<raw::RawPolicy>>) -> Result<Policy, ConfigError> {
    let t = cx.table("[policy]");
    let default = match &inner(raw).default {
        Some(v) => t.choice("default", v, ALLOW_DENY, "\"allow\" or \"deny\"")?,
        None => Decision::Allow,
    };
    Ok(Policy { default })
}

fn scan(cx: &Ctx<'_>, raw: Option<S<raw::RawScan>>) -> Result<Scan, ConfigError> {
    let t = cx.table("[scan]");
    let raw = inner(raw);
    let action = match &raw.action {
        Some(v) => t.choice("action", v, DENY_APPROVE, "\"deny\" or \"approve\"")?,
        None => Decision::Deny,
    };
    let mut allow = crate::scan::Allow::default();
    for v in &raw.allow_paths {
        let glob = t.text("allow_paths", v)?;
        allow = allow.with_paths(&[&glob]).map_err(|e| {
            let problem = Problem::BadGlob {
                glob: glob.clone(),
                reason: e.to_string(),
            };
            t.err(&v.span(), "allow_paths", problem)
        })?;
    }
    let mut fingerprints = Vec::with_capacity(raw.allow_fingerprints.len());
    for v in &raw.allow_fingerprints {
        fingerprints.push(hex::encode(t.sha256("allow_fingerprints", v)?));
    }
    let bad_file = |key: &str, v: &S<String>, path: &Path, reason: String| {
        let problem = Problem::BadFile {
            path: path.to_path_buf(),
            reason,
        };
        t.err(&v.span(), key, problem)
    };
    let baseline = match &raw.baseline {
        Some(v) => {
            let path = t.path("baseline", v)?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad_file("baseline", v, &path, e.to_string()))?;
            let found = crate::scan::baseline::parse(&text)
                .map_err(|e| bad_file("baseline", v, &path, e.to_string()))?;
            fingerprints.extend(found);
            Some(path)
        }
        None => None,
    };
    allow = allow.with_fingerprints(fingerprints);
    let mut custom_detectors = Vec::new();
    let gitleaks_config = match &raw.gitleaks_config {
        Some(v) => {
            let path = t.path("gitleaks_config", v)?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad_file("gitleaks_config", v, &path, e.to_string()))?;
            let imported = crate::scan::gitleaks::parse(&text)
                .map_err(|e| bad_file("gitleaks_config", v, &path, e.to_string()))?;
            allow = allow.merge(imported.allow);
            // Its rules must build into a scanner now, not fail when the gateway starts.
            let detectors = crate::scan::detectors::with_custom(imported.detectors.clone());
            crate::scan::Scanner::with(crate::scan::Options::default(), detectors, allow.clone())
                .map_err(|e| bad_file("gitleaks_config", v, &path, e.to_string()))?;
            custom_detectors = imported.detectors;
            Some(path)
        }
        None => None,
    };
    Ok(Scan {
        enabled: raw.enabled.unwrap_or(true),
        action,
        max_blob_bytes: t.bytes("max_blob_bytes", raw.max_blob_bytes.as_ref(), 10 * MIB)?,
        allow,
        custom_detectors,
        baseline,
        gitleaks_config,
    })
}

fn approval(cx: &Ctx<'_>, raw: Option<S<raw::RawApproval>>) -> Result<Approval, ConfigError> {
    let t = cx.table("[approval]");
    let raw = inner(raw);
    Ok(Approval {
        wait: t.seconds("wait_seconds", raw.wait_seconds.as_ref(), 30, 0)?,
        apply_on_approve: raw.apply_on_approve.unwrap_or(true),
        expire_after: t.seconds(
            "expire_after_seconds",
            raw.expire_after_seconds.as_ref(),
            86_400,
            1,
        )?,
        approver_groups: t.words("approver_groups", &raw.approver_groups)?,
        webhook_url: raw
            .webhook_url
            .as_ref()
            .map(|v| t.http_url("webhook_url", v))
            .transpose()?,
    })
}

fn audit(cx: &Ctx<'_>, raw: Option<S<raw::RawAudit>>) -> Result<Audit, ConfigError> {
    let t = cx.table("[audit]");
    let raw = inner(raw);
    Ok(Audit {
        pack_key_file: raw
            .pack_key_file
            .as_ref()
            .map(|v| t.path("pack_key_file", v))
            .transpose()?,
        keep_packs_days: raw
            .keep_packs_days
            .as_ref()
            .map(|v| t.count("keep_packs_days", Some(v), 0))
            .transpose()?
            // `count` caps at u32::MAX.
            .map(|days| u32::try_from(days).unwrap_or(u32::MAX)),
    })
}

fn limits(cx: &Ctx<'_>, raw: Option<S<raw::RawLimits>>) -> Result<Limits, ConfigError> {
    let t = cx.table("[limits]");
    let raw = inner(raw);
    Ok(Limits {
        max_push_bytes: t.bytes("max_push_bytes", raw.max_push_bytes.as_ref(), 2048 * MIB)?,
        max_request_bytes: t.bytes(
            "max_request_bytes",
            raw.max_request_bytes.as_ref(),
            64 * MIB,
        )?,
        max_ref_updates: t.count("max_ref_updates", raw.max_ref_updates.as_ref(), 10_000)?,
        max_pkt_lines: t.count("max_pkt_lines", raw.max_pkt_lines.as_ref(), 100_000)?,
    })
}
