//! Routing: `<upstream>/<path>[.git]` from a request path to a [`Repo`].
//!
//! The path is percent-decoded exactly once and then validated; anything that could name a
//! place outside the upstream's root is refused: `..` and `.` segments, absolute paths, empty
//! segments, backslashes, NUL and other control characters, encoded separators (`%2f`, `%5c`)
//! and double encoding (a `%` left after decoding).

use std::sync::Arc;

use percent_encoding::percent_decode_str;

use crate::upstream::{Upstream, Upstreams};

/// A routed repository: which upstream, and which path under it.
#[derive(Clone)]
pub struct Repo {
    /// The upstream serving it.
    pub upstream: Arc<Upstream>,
    /// The path under the upstream, as the client wrote it (decoded, validated), `.git` kept.
    pub path: String,
    /// `<upstream>/<path>` without a trailing `.git`: the name rules and records use.
    pub name: String,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo").field("name", &self.name).finish()
    }
}

/// Why a path does not route.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    /// The path is malformed or tries to leave the upstream.
    #[error("invalid repository path: {reason}")]
    Invalid {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The first segment names no configured upstream.
    #[error("unknown upstream {name:?}")]
    UnknownUpstream {
        /// The name asked for (already validated as harmless to print).
        name: String,
    },
}

/// Validates `raw` (still percent-encoded, no leading `/`, no service suffix) into the
/// upstream name and the repository path.
pub fn parse(raw: &str) -> Result<(String, String), RouteError> {
    let invalid = |reason| RouteError::Invalid { reason };
    let lower = raw.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Err(invalid("encoded path separators are not allowed"));
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| invalid("not UTF-8"))?;
    if decoded.chars().any(|c| c.is_control()) {
        return Err(invalid("control characters are not allowed"));
    }
    if decoded.contains('\\') {
        return Err(invalid("backslashes are not allowed"));
    }
    if decoded.contains('%') {
        return Err(invalid("double percent-encoding is not allowed"));
    }
    if decoded.starts_with('/') {
        return Err(invalid("absolute paths are not allowed"));
    }
    let mut segments = decoded.split('/');
    let upstream = segments.next().unwrap_or_default();
    let rest: Vec<&str> = segments.collect();
    if upstream.is_empty() || rest.is_empty() {
        return Err(invalid("expected <upstream>/<path>"));
    }
    for segment in std::iter::once(upstream).chain(rest.iter().copied()) {
        match segment {
            "" => return Err(invalid("empty path segments are not allowed")),
            "." | ".." => return Err(invalid("'.' and '..' segments are not allowed")),
            _ => {}
        }
    }
    let path = rest.join("/");
    if path == ".git" {
        return Err(invalid("expected <upstream>/<path>"));
    }
    Ok((upstream.to_string(), path))
}

/// Routes `raw` to a configured upstream.
pub fn route(upstreams: &Upstreams, raw: &str) -> Result<Repo, RouteError> {
    let (name, path) = parse(raw)?;
    let upstream = upstreams
        .get(&name)
        .ok_or_else(|| RouteError::UnknownUpstream { name: name.clone() })?;
    let display = path.strip_suffix(".git").unwrap_or(&path);
    Ok(Repo {
        name: format!("{name}/{display}"),
        upstream,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> (String, String) {
        parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn plain_paths_route() {
        assert_eq!(ok("local/demo.git"), ("local".into(), "demo.git".into()));
        assert_eq!(ok("gh/org/repo"), ("gh".into(), "org/repo".into()));
        assert_eq!(ok("local/my%20repo"), ("local".into(), "my repo".into()));
    }

    #[test]
    fn traversal_is_refused() {
        for raw in [
            "local/../etc",
            "local/a/../../b",
            "local/%2e%2e/x",
            "local/%2E%2E/x",
            "local/..%2fetc",
            "local/a%2Fb",
            "local/a%5cb",
            "local/a\\b",
            "local/a%00b",
            "local/a%0ab",
            "/local/a",
            "%2flocal/a",
            "local//a",
            "local/./a",
            "local/a/",
            "local",
            "local/",
            "local/%252e%252e/x",
            "local/.git",
            "local/%ff",
        ] {
            assert!(parse(raw).is_err(), "{raw} must be refused");
        }
    }
}
