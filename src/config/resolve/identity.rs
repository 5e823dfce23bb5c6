//! Who may connect: `[[token]]`, `[[oidc]]`, `[[ssh_key]]` and `[ssh]`.

use std::collections::HashMap;

use base64::Engine as _;

use super::{inner, Ctx, Tbl};
use crate::config::error::{ConfigError, Problem};
use crate::config::raw::{RawOidc, RawSsh, RawSshKey, RawToken, S};
use crate::config::{Oidc, Ssh, SshKey, Token};

pub(super) fn tokens(cx: &Ctx<'_>, raw: Vec<S<RawToken>>) -> Result<Vec<Token>, ConfigError> {
    let t = cx.table("[[token]]");
    let mut names = HashMap::new();
    let mut hashes = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for entry in raw {
        let raw = entry.into_inner();
        let name = t.text("name", &raw.name)?;
        t.unique(&mut names, "name", "name", &name, &name, &raw.name.span())?;
        let sha256 = t.sha256("sha256", &raw.sha256)?;
        // One token must mean one identity.
        let hex = hex::encode(sha256);
        let shown = format!("{}...", hex.get(..8).unwrap_or_default());
        t.unique(
            &mut hashes,
            "sha256",
            "sha256",
            &hex,
            &shown,
            &raw.sha256.span(),
        )?;
        out.push(Token {
            name,
            sha256,
            groups: t.words("groups", &raw.groups)?,
        });
    }
    Ok(out)
}

pub(super) fn oidcs(cx: &Ctx<'_>, raw: Vec<S<RawOidc>>) -> Result<Vec<Oidc>, ConfigError> {
    let t = cx.table("[[oidc]]");
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for entry in raw {
        let raw = entry.into_inner();
        let resolved = oidc(&t, &raw)?;
        // The `iss` claim picks the issuer: one `[[oidc]]` per issuer.
        let span = raw.issuer.span();
        t.unique(
            &mut seen,
            "issuer",
            "issuer",
            &resolved.iss,
            &resolved.iss,
            &span,
        )?;
        out.push(resolved);
    }
    Ok(out)
}

fn oidc(t: &Tbl<'_>, raw: &RawOidc) -> Result<Oidc, ConfigError> {
    let issuer = t.url("issuer", &raw.issuer)?;
    // Keys come from discovery at the issuer: it must be authentic, so https, except for a
    // loopback issuer (tests, local development).
    let secure = match issuer.scheme() {
        "https" => true,
        "http" => is_loopback(&issuer),
        _ => false,
    };
    if !secure {
        let reason = "expected https:// (http:// only for a loopback issuer)";
        return Err(t.bad_url("issuer", &raw.issuer, reason));
    }
    t.no_userinfo("issuer", &raw.issuer, &issuer)?;
    if issuer.query().is_some() || issuer.fragment().is_some() {
        return Err(t.bad_url("issuer", &raw.issuer, "must not have a query or fragment"));
    }
    let claim = |key: &str, v: &Option<S<String>>, default: &str| match v {
        Some(v) => t.text(key, v),
        None => Ok(default.to_string()),
    };
    Ok(Oidc {
        iss: t.text("issuer", &raw.issuer)?,
        issuer,
        audience: t.text("audience", &raw.audience)?,
        groups_claim: claim("groups_claim", &raw.groups_claim, "groups")?,
        name_claim: claim("name_claim", &raw.name_claim, "sub")?,
        allowed_clients: t.words("allowed_clients", &raw.allowed_clients)?,
        leeway: t.seconds("leeway_seconds", raw.leeway_seconds.as_ref(), 60, 0)?,
        required_claims: raw
            .required_claims
            .iter()
            .map(|(claim, value)| Ok((claim.clone(), t.text("required_claims", value)?)))
            .collect::<Result<_, ConfigError>>()?,
        jwks_refresh: t.seconds(
            "jwks_refresh_seconds",
            raw.jwks_refresh_seconds.as_ref(),
            3600,
            1,
        )?,
        jwks_min_refresh: t.seconds(
            "jwks_min_refresh_seconds",
            raw.jwks_min_refresh_seconds.as_ref(),
            30,
            0,
        )?,
        ca_file: raw
            .ca_file
            .as_ref()
            .map(|v| t.path("ca_file", v))
            .transpose()?,
    })
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

pub(super) fn ssh_keys(cx: &Ctx<'_>, raw: Vec<S<RawSshKey>>) -> Result<Vec<SshKey>, ConfigError> {
    let t = cx.table("[[ssh_key]]");
    let mut keys = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for entry in raw {
        let raw = entry.into_inner();
        let name = t.text("name", &raw.name)?;
        let public_key = t.public_key("public_key", &raw.public_key)?;
        // One key must mean one identity; the same identity may have several keys.
        let shown = shorten(&public_key);
        t.unique(
            &mut keys,
            "public_key",
            "public key",
            &public_key,
            &shown,
            &raw.public_key.span(),
        )?;
        out.push(SshKey {
            name,
            public_key,
            groups: t.words("groups", &raw.groups)?,
        });
    }
    Ok(out)
}

pub(super) fn ssh(cx: &Ctx<'_>, raw: Option<S<RawSsh>>) -> Result<Ssh, ConfigError> {
    let t = cx.table("[ssh]");
    let raw = inner(raw);
    Ok(Ssh {
        user_ca_keys: raw
            .user_ca_keys
            .iter()
            .map(|v| t.public_key("user_ca_keys", v))
            .collect::<Result<_, _>>()?,
        ca_key: t.path_or("ca_key", raw.ca_key.as_ref(), "ssh_ca_ed25519_key")?,
        max_cert_ttl: t.seconds(
            "max_cert_ttl_seconds",
            raw.max_cert_ttl_seconds.as_ref(),
            3600,
            1,
        )?,
        max_auth_attempts: t.count("max_auth_attempts", raw.max_auth_attempts.as_ref(), 6)?,
        idle_timeout: t.seconds(
            "idle_timeout_seconds",
            raw.idle_timeout_seconds.as_ref(),
            300,
            1,
        )?,
        max_session: t.seconds(
            "max_session_seconds",
            raw.max_session_seconds.as_ref(),
            3600,
            1,
        )?,
        max_sessions_per_identity: t.count(
            "max_sessions_per_identity",
            raw.max_sessions_per_identity.as_ref(),
            64,
        )?,
    })
}

fn shorten(public_key: &str) -> String {
    let head: String = public_key.chars().take(24).collect();
    format!("{head}...")
}

/// Key types accepted for users and CAs (certificates are not keys).
const ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

impl Tbl<'_> {
    /// An OpenSSH public key line, `ALGORITHM BASE64 [COMMENT]`, as `ALGORITHM BASE64`.
    fn public_key(&self, key: &str, v: &S<String>) -> Result<String, ConfigError> {
        parse_public_key(v.get_ref())
            .map_err(|reason| self.err(&v.span(), key, Problem::BadPublicKey { reason }))
    }
}

fn parse_public_key(line: &str) -> Result<String, String> {
    let mut words = line.split_ascii_whitespace();
    let (Some(algorithm), Some(data)) = (words.next(), words.next()) else {
        return Err("expected \"ALGORITHM BASE64 [COMMENT]\"".to_string());
    };
    if !ALGORITHMS.contains(&algorithm) {
        return Err(format!(
            "unknown algorithm \"{algorithm}\" (expected one of {})",
            ALGORITHMS.join(", ")
        ));
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| match e {
            base64::DecodeError::InvalidByte(offset, byte) => {
                format!("invalid base64: {:?} at offset {offset}", char::from(byte))
            }
            e => format!("invalid base64: {e}"),
        })?;
    // The wire format (RFC 4253 section 6.6) repeats the algorithm as a length-prefixed string.
    let inner = blob
        .get(..4)
        .and_then(|len| <[u8; 4]>::try_from(len).ok())
        .map(u32::from_be_bytes)
        .and_then(|len| blob.get(4..usize::try_from(len).ok()?.checked_add(4)?));
    if inner != Some(algorithm.as_bytes()) {
        return Err(format!("the key data is not an \"{algorithm}\" key"));
    }
    Ok(format!("{algorithm} {data}"))
}
