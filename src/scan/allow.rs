//! What users allow: inline markers, fingerprints, path globs and value patterns.
//!
//! Inline markers are always honoured: a finding on a line that holds `gitgate:allow` (or
//! `gitleaks:allow`, which users already write) is dropped by the engine.

use std::collections::HashSet;

use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::bytes::Regex;

use super::Finding;

/// Markers that allow the findings of their line.
pub const INLINE_MARKERS: &[&str] = &["gitgate:allow", "gitleaks:allow"];

/// An allowlist. The engine applies `values` and `stopwords` (they need the value); callers
/// apply [`Allow::permits`] (paths, fingerprints) to the findings.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    /// Glob patterns over paths (`**` across folders); findings in such files are dropped.
    globs: Vec<Glob>,
    /// `globs`, compiled.
    paths: Option<GlobSet>,
    /// Regexes over paths (gitleaks `paths`).
    path_regexes: Vec<Regex>,
    /// Fingerprints (see [`super::fingerprint`]) of accepted secrets.
    fingerprints: HashSet<String>,
    /// A value matching one of these is not reported (gitleaks `regexes`).
    values: Vec<Regex>,
    /// A value containing one of these (any case) is not reported (gitleaks `stopwords`).
    stopwords: Vec<Vec<u8>>,
}

/// A pattern that does not compile.
#[derive(Debug, thiserror::Error)]
pub enum AllowError {
    /// A path glob is invalid.
    #[error("invalid path glob {glob:?}: {reason}")]
    Glob {
        /// The glob.
        glob: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A regex is invalid.
    #[error("invalid regex {regex:?}: {reason}")]
    Regex {
        /// The regex.
        regex: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn regex(pattern: &str) -> Result<Regex, AllowError> {
    Regex::new(pattern).map_err(|e| AllowError::Regex {
        regex: pattern.into(),
        reason: e.to_string(),
    })
}

impl Allow {
    /// Adds path globs (gitignore-like: `*` within a segment, `**` across segments).
    pub fn with_paths<S: AsRef<str>>(mut self, globs: &[S]) -> Result<Allow, AllowError> {
        for glob in globs {
            let glob = glob.as_ref();
            let compiled = globset::GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .or_else(|_| Glob::new(glob))
                .map_err(|e| AllowError::Glob {
                    glob: glob.into(),
                    reason: e.to_string(),
                })?;
            self.globs.push(compiled);
        }
        let mut builder = GlobSetBuilder::new();
        for glob in &self.globs {
            builder.add(glob.clone());
        }
        self.paths = Some(builder.build().map_err(|e| AllowError::Glob {
            glob: String::new(),
            reason: e.to_string(),
        })?);
        Ok(self)
    }

    /// Adds regexes over paths.
    pub fn with_path_regexes<S: AsRef<str>>(mut self, res: &[S]) -> Result<Allow, AllowError> {
        for r in res {
            self.path_regexes.push(regex(r.as_ref())?);
        }
        Ok(self)
    }

    /// Adds accepted fingerprints.
    pub fn with_fingerprints<I: IntoIterator<Item = String>>(mut self, fps: I) -> Allow {
        self.fingerprints
            .extend(fps.into_iter().map(|f| f.trim().to_ascii_lowercase()));
        self
    }

    /// Adds regexes over values.
    pub fn with_value_regexes<S: AsRef<str>>(mut self, res: &[S]) -> Result<Allow, AllowError> {
        for r in res {
            self.values.push(regex(r.as_ref())?);
        }
        Ok(self)
    }

    /// Adds stop words (matched in any case within values).
    pub fn with_stopwords<S: AsRef<str>>(mut self, words: &[S]) -> Allow {
        self.stopwords.extend(
            words
                .iter()
                .map(|w| w.as_ref().as_bytes().to_ascii_lowercase())
                .filter(|w| !w.is_empty()),
        );
        self
    }

    /// Both allowlists in one.
    pub fn merge(mut self, other: Allow) -> Allow {
        self.path_regexes.extend(other.path_regexes);
        self.fingerprints.extend(other.fingerprints);
        self.values.extend(other.values);
        self.stopwords.extend(other.stopwords);
        if !other.globs.is_empty() {
            self.globs.extend(other.globs);
            let mut builder = GlobSetBuilder::new();
            for glob in &self.globs {
                builder.add(glob.clone());
            }
            self.paths = builder.build().ok();
        }
        self
    }

    /// Whether `path` is allowed as a whole (no need to scan it).
    pub fn permits_path(&self, path: &str) -> bool {
        self.paths.as_ref().is_some_and(|set| set.is_match(path))
            || self
                .path_regexes
                .iter()
                .any(|r| r.is_match(path.as_bytes()))
    }

    /// Whether `finding` is allowed by path or fingerprint.
    pub fn permits(&self, finding: &Finding) -> bool {
        self.fingerprints.contains(&finding.fingerprint) || self.permits_path(&finding.path)
    }

    /// Whether a value is allowed (engine side).
    pub(crate) fn permits_value(&self, value: &[u8]) -> bool {
        if self.values.iter().any(|r| r.is_match(value)) {
            return true;
        }
        if self.stopwords.is_empty() {
            return false;
        }
        let lower = value.to_ascii_lowercase();
        self.stopwords
            .iter()
            .any(|w| memchr::memmem::find(&lower, w).is_some())
    }
}
