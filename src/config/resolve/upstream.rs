//! `[[upstream]]`: the URL decides the kind; credentials must fit the kind.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{Ctx, Tbl};
use crate::config::error::{ConfigError, Problem};
use crate::config::raw::{RawUpstream, S};
use crate::config::{HttpCredential, Upstream, UpstreamTarget};
use crate::secret::Secret;

const HTTP: &str = "http(s)://";
const SSH: &str = "ssh://";

pub(super) fn upstreams(
    cx: &Ctx<'_>,
    raw: Vec<S<RawUpstream>>,
) -> Result<Vec<Upstream>, ConfigError> {
    let t = cx.table("[[upstream]]");
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for entry in raw {
        let header = entry.span();
        let raw = entry.into_inner();
        let name = t.name("name", &raw.name)?;
        t.unique(&mut seen, "name", "name", &name, &name, &raw.name.span())?;
        let target = target(&t, &header, &raw)?;
        out.push(Upstream { name, target });
    }
    Ok(out)
}

fn target(
    t: &Tbl<'_>,
    header: &std::ops::Range<usize>,
    raw: &RawUpstream,
) -> Result<UpstreamTarget, ConfigError> {
    let text = raw.url.get_ref();
    if text
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("file:"))
    {
        refuse(t, raw.http_keys(), HTTP)?;
        refuse(t, raw.ssh_keys(), SSH)?;
        return Ok(UpstreamTarget::File {
            root: file_root(t, &raw.url)?,
        });
    }
    let url = match url::Url::parse(text) {
        Ok(url) => url,
        // `git@host:path` (scp syntax) is not a URL; say what to write instead.
        Err(_) if text.contains('@') && text.contains(':') && !text.contains("://") => {
            return Err(t.bad_url(
                "url",
                &raw.url,
                "scp-like syntax; write ssh://user@host/path",
            ))
        }
        Err(e) => return Err(t.bad_url("url", &raw.url, &e.to_string())),
    };
    match url.scheme() {
        "http" | "https" => {
            refuse(t, raw.ssh_keys(), SSH)?;
            http(t, raw, url)
        }
        "ssh" => {
            refuse(t, raw.http_keys(), HTTP)?;
            ssh(t, header, raw, &url)
        }
        scheme => Err(t.err(
            &raw.url.span(),
            "url",
            Problem::UnsupportedScheme {
                scheme: scheme.to_string(),
            },
        )),
    }
}

impl RawUpstream {
    fn http_keys(&self) -> [(&'static str, Option<&S<String>>); 4] {
        [
            ("username", self.username.as_ref()),
            ("password_env", self.password_env.as_ref()),
            ("password_file", self.password_file.as_ref()),
            ("ca_file", self.ca_file.as_ref()),
        ]
    }

    fn ssh_keys(&self) -> [(&'static str, Option<&S<String>>); 2] {
        [
            ("ssh_key_file", self.ssh_key_file.as_ref()),
            ("known_hosts", self.known_hosts.as_ref()),
        ]
    }
}

/// An error for the first of `keys` that is set: they belong to `kind` upstreams only.
fn refuse<const N: usize>(
    t: &Tbl<'_>,
    keys: [(&'static str, Option<&S<String>>); N],
    kind: &'static str,
) -> Result<(), ConfigError> {
    match keys.into_iter().find_map(|(k, v)| v.map(|v| (k, v))) {
        Some((key, v)) => Err(t.err(&v.span(), key, Problem::WrongUpstreamKind { kind })),
        None => Ok(()),
    }
}

/// `file:///abs/path`, or the extension `file:relative/path` (relative to the config folder).
fn file_root(t: &Tbl<'_>, v: &S<String>) -> Result<PathBuf, ConfigError> {
    let text = v.get_ref();
    let rest = text.get(5..).unwrap_or_default();
    if rest.starts_with("//") {
        let url = t.url("url", v)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(t.bad_url("url", v, "must not have a query or fragment"));
        }
        return url
            .to_file_path()
            .map_err(|()| t.bad_url("url", v, "expected file:///absolute/path (no host)"));
    }
    if rest.is_empty() {
        return Err(t.bad_url(
            "url",
            v,
            "expected file:///absolute/path or file:relative/path",
        ));
    }
    Ok(t.cx.base.join(rest))
}

fn http(t: &Tbl<'_>, raw: &RawUpstream, mut base: url::Url) -> Result<UpstreamTarget, ConfigError> {
    t.no_userinfo("url", &raw.url, &base)?;
    if base.query().is_some() || base.fragment().is_some() {
        return Err(t.bad_url("url", &raw.url, "must not have a query or fragment"));
    }
    // With a trailing '/', `base.join("repo.git")` appends instead of replacing the last segment.
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(UpstreamTarget::Http {
        base,
        credential: credential(t, raw)?,
        ca_file: raw
            .ca_file
            .as_ref()
            .map(|v| t.path("ca_file", v))
            .transpose()?,
    })
}

fn credential(t: &Tbl<'_>, raw: &RawUpstream) -> Result<Option<HttpCredential>, ConfigError> {
    let password = match (&raw.password_env, &raw.password_file) {
        (Some(_), Some(file)) => {
            let problem = Problem::Conflict {
                other: "password_env",
            };
            return Err(t.err(&file.span(), "password_file", problem));
        }
        (Some(var), None) => password_from_env(t, var)?,
        (None, Some(file)) => password_from_file(t, file)?,
        (None, None) => {
            if let Some(user) = &raw.username {
                let problem = Problem::Requires {
                    other: "password_env or password_file",
                };
                return Err(t.err(&user.span(), "username", problem));
            }
            return Ok(None);
        }
    };
    let username = match &raw.username {
        Some(v) => t.text("username", v)?,
        None => "x-access-token".to_string(),
    };
    Ok(Some(HttpCredential { username, password }))
}

fn password_from_env(t: &Tbl<'_>, var: &S<String>) -> Result<Secret<String>, ConfigError> {
    let name = t.text("password_env", var)?;
    if !t.cx.read_secrets {
        return Ok(Secret::new(String::new()));
    }
    let problem = match (t.cx.env)(&name) {
        Ok(value) if !value.is_empty() => return Ok(Secret::new(value)),
        Ok(_) => Problem::EnvEmpty { var: name },
        Err(std::env::VarError::NotPresent) => Problem::EnvNotSet { var: name },
        Err(std::env::VarError::NotUnicode(_)) => Problem::EnvNotUnicode { var: name },
    };
    Err(t.err(&var.span(), "password_env", problem))
}

fn password_from_file(t: &Tbl<'_>, v: &S<String>) -> Result<Secret<String>, ConfigError> {
    let path = t.path("password_file", v)?;
    if !t.cx.read_secrets {
        return Ok(Secret::new(String::new()));
    }
    let text = std::fs::read_to_string(&path).map_err(|source| {
        let problem = Problem::PasswordFile {
            path: path.clone(),
            source,
        };
        t.err(&v.span(), "password_file", problem)
    })?;
    // Files written by `echo` or editors end with a line break that is not part of the secret.
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(t.err(
            &v.span(),
            "password_file",
            Problem::PasswordFileEmpty { path },
        ));
    }
    Ok(Secret::new(secret.to_string()))
}

fn ssh(
    t: &Tbl<'_>,
    header: &std::ops::Range<usize>,
    raw: &RawUpstream,
    url: &url::Url,
) -> Result<UpstreamTarget, ConfigError> {
    if url.password().is_some() {
        return Err(t.bad_url("url", &raw.url, "must not contain a password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(t.bad_url("url", &raw.url, "must not have a query or fragment"));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        _ => return Err(t.bad_url("url", &raw.url, "needs a host")),
    };
    let user = match percent_decode(url.username()) {
        Some(u) if u.is_empty() => "git".to_string(),
        Some(u) => u,
        None => return Err(t.bad_url("url", &raw.url, "user name is not valid UTF-8")),
    };
    let path = match percent_decode(url.path()) {
        Some(p) if p.is_empty() => return Err(t.bad_url("url", &raw.url, "needs a path")),
        Some(p) => p,
        None => return Err(t.bad_url("url", &raw.url, "path is not valid UTF-8")),
    };
    let required = |key: &'static str, v: &Option<S<String>>| match v {
        Some(v) => t.path(key, v),
        None => Err(t.header_err(
            header,
            Problem::MissingKey {
                key: key.to_string(),
                hint: " (required for ssh:// upstreams)",
            },
        )),
    };
    Ok(UpstreamTarget::Ssh {
        user,
        host,
        port: url.port().unwrap_or(22),
        path,
        key_file: required("ssh_key_file", &raw.ssh_key_file)?,
        known_hosts: required("known_hosts", &raw.known_hosts)?,
    })
}

/// Undoes the URL parser's percent-encoding; `None` if the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
