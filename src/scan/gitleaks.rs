//! Import of a gitleaks-format configuration (`[scan] gitleaks_config`), so that existing
//! custom rules and allowlists carry over.
//!
//! Supported: `[[rules]]` with `id`, `description`, `regex`, `secretGroup`, `entropy`,
//! `keywords`, and rule allowlists; the global `[allowlist]` and `[[allowlists]]` with `paths`,
//! `regexes`, `stopwords` and `commits`. `[extend]` is accepted and ignored (the built-in
//! detectors always run). Approximations, reported in [`Imported::notes`]: rules that match
//! on `path` alone are skipped; a rule's `path` restriction is dropped; rule allowlists apply
//! to every detector.
//!
//! Imported detectors live for the rest of the process (their strings are leaked, as
//! [`super::Finding::detector`] is `&'static str`): import once per configuration load.

use serde::Deserialize;

use super::allow::{Allow, AllowError};
use super::detector::{Detector, Examples, Filter, Window};

/// What a gitleaks configuration yields.
#[derive(Debug, Default)]
pub struct Imported {
    /// Its rules as detectors, in file order (append them after [`super::detectors::all`]).
    pub detectors: Vec<Detector>,
    /// Its allowlists.
    pub allow: Allow,
    /// Commits its allowlists name (for history scans).
    pub commits: Vec<String>,
    /// What was skipped or approximated, one sentence each.
    pub notes: Vec<String>,
}

/// A gitleaks configuration that cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum GitleaksError {
    /// Not valid TOML or not the gitleaks shape.
    #[error("not a gitleaks configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// A rule's regex does not compile.
    #[error("rule {id}: invalid regex: {reason}")]
    Regex {
        /// The rule.
        id: String,
        /// What the regex compiler said.
        reason: String,
    },
    /// An allowlist pattern does not compile.
    #[error("allowlist: {0}")]
    Allow(#[from] AllowError),
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    rules: Vec<RawRule>,
    allowlist: Option<RawAllowlist>,
    #[serde(default)]
    allowlists: Vec<RawAllowlist>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    id: String,
    #[serde(default)]
    description: String,
    regex: Option<String>,
    path: Option<String>,
    secret_group: Option<usize>,
    entropy: Option<f32>,
    #[serde(default)]
    keywords: Vec<String>,
    allowlist: Option<RawAllowlist>,
    #[serde(default)]
    allowlists: Vec<RawAllowlist>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAllowlist {
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    commits: Vec<String>,
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Parses a gitleaks TOML configuration.
pub fn parse(text: &str) -> Result<Imported, GitleaksError> {
    let raw: RawConfig = toml::from_str(text)?;
    let mut out = Imported::default();
    let mut lists: Vec<RawAllowlist> = raw.allowlist.into_iter().chain(raw.allowlists).collect();
    for rule in raw.rules {
        lists.extend(rule.allowlist.into_iter().chain(rule.allowlists));
        let Some(regex) = rule.regex else {
            out.notes.push(format!(
                "rule {}: path-only rules are not supported; skipped",
                rule.id
            ));
            continue;
        };
        if rule.path.is_some() {
            out.notes.push(format!(
                "rule {}: its path restriction is not supported; it applies to every path",
                rule.id
            ));
        }
        let pattern =
            with_value_group(&regex, rule.secret_group).map_err(|reason| GitleaksError::Regex {
                id: rule.id.clone(),
                reason,
            })?;
        regex::bytes::Regex::new(&pattern).map_err(|e| GitleaksError::Regex {
            id: rule.id.clone(),
            reason: e.to_string(),
        })?;
        let keywords: Vec<&'static str> = rule
            .keywords
            .into_iter()
            .filter(|k| !k.is_empty())
            .map(|k| leak(k.to_ascii_lowercase()))
            .collect();
        let filters: Vec<Filter> = rule.entropy.map(Filter::Entropy).into_iter().collect();
        out.detectors.push(Detector {
            id: leak(rule.id),
            description: leak(rule.description),
            keywords: Box::leak(keywords.into_boxed_slice()),
            pattern: leak(pattern),
            filters: Box::leak(filters.into_boxed_slice()),
            window: Window::Line,
            examples: Examples {
                positive: &[],
                negative: &[],
            },
        });
    }
    let mut allow = Allow::default();
    for list in lists {
        allow = allow
            .with_path_regexes(&list.paths)?
            .with_value_regexes(&list.regexes)?
            .with_stopwords(&list.stopwords);
        out.commits.extend(list.commits);
    }
    out.allow = allow;
    Ok(out)
}

/// `regex` with its secret group named `v`: group `secret_group`, or the only group when it
/// has exactly one, or none (the whole match).
fn with_value_group(regex: &str, secret_group: Option<usize>) -> Result<String, String> {
    let groups = capture_groups(regex);
    let wanted = match secret_group {
        Some(0) => return Ok(regex.to_owned()),
        Some(n) => n,
        None if groups.len() == 1 => 1,
        None => return Ok(regex.to_owned()),
    };
    let Some(&(at, named)) = groups.get(wanted - 1) else {
        return Err(format!("secretGroup {wanted} but {} groups", groups.len()));
    };
    if named {
        // A named group cannot be renamed without parsing its name; use the whole match.
        return Ok(regex.to_owned());
    }
    let (head, tail) = regex.split_at(at + 1);
    Ok(format!("{head}?P<v>{tail}"))
}

/// Byte offsets of the `(` of each capturing group, in order, and whether it is named.
fn capture_groups(regex: &str) -> Vec<(usize, bool)> {
    let bytes = regex.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut in_class) = (0, false);
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 1,
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'(' if !in_class => {
                let rest = bytes.get(i + 1..).unwrap_or_default();
                if rest.starts_with(b"?P<") || rest.starts_with(b"?<") {
                    out.push((i, true));
                } else if !rest.starts_with(b"?") {
                    out.push((i, false));
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}
