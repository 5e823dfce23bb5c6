//! Secret scanning: bytes in, findings out. Pure: no I/O, no logging, and no value of a secret
//! ever leaves this module (a [`Finding`] holds a 4-character preview and a fingerprint).
//!
//! # Layout
//! - [`detector`]: what a detector is ([`Detector`], [`Filter`], [`Window`]): data, not code.
//! - [`detectors`]: the built-in table, one file per family (cloud, forges, AI, ...).
//! - `engine`: [`Scanner`]: one keyword pass per blob (Aho-Corasick over every detector's
//!   keywords), each hit's regex only on a window around it, then the filters in cost order.
//! - `filter`: the post-filters: checksums, randomness, placeholders, pair rules.
//! - [`allow`]: what users allow: inline markers, fingerprints, path globs, value patterns.
//! - [`gitleaks`]: import of a gitleaks-format configuration (custom rules and allowlists).
//! - [`report`]: findings as text lines, JSON Lines or SARIF 2.1.0.
//! - [`example`]: expands the detectors' example templates into fake, pattern-valid secrets.
//!
//! Build one [`Scanner`] per process (or per configuration) and share it: compiling the
//! detector set takes milliseconds, scanning a blob microseconds.

pub mod allow;
pub mod baseline;
pub mod detector;
pub mod detectors;
mod engine;
pub mod example;
mod filter;
mod finding;
pub mod gitleaks;
pub mod report;
#[cfg(test)]
mod tests;

use std::fmt;

pub use allow::Allow;
pub use detector::{Checksum, Detector, Examples, Filter, Window};
pub use engine::{BuildError, Scanner, MULTI_LINE_REACH, ONE_LINE_REACH};
pub use finding::fingerprint;

/// Knobs of a [`Scanner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Blobs larger than this are not scanned but reported as [`SkipReason::TooLarge`]
    /// (default 10 MiB, the `[scan] max_blob_bytes` default).
    pub max_blob_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_blob_bytes: 10 << 20,
        }
    }
}

/// What scanning one blob found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The findings, in the order they appear in the blob (empty when skipped).
    pub findings: Vec<Finding>,
    /// Why the blob was not scanned, if it was not.
    pub skipped: Option<SkipReason>,
}

/// Why a blob was not scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A NUL byte in the first 8 KiB: treated as binary, as git does.
    Binary,
    /// Larger than [`Options::max_blob_bytes`].
    TooLarge {
        /// The blob's size.
        bytes: u64,
        /// The limit it exceeds.
        limit: u64,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Binary => f.write_str("binary"),
            SkipReason::TooLarge { bytes, limit } => {
                write!(f, "too large ({bytes} bytes > {limit})")
            }
        }
    }
}

/// One secret found in a blob. Holds no secret value: only where it is, which detector saw it,
/// a preview of at most 4 characters and a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Finding {
    /// The path given to [`Scanner::scan`].
    pub path: String,
    /// 1-based line of the value's first byte.
    pub line: u32,
    /// 1-based column (in bytes) of the value's first byte.
    pub column: u32,
    /// The detector's id, e.g. `github-pat-classic`.
    pub detector: &'static str,
    /// The detector's description.
    pub description: &'static str,
    /// At most the value's first 4 characters (fewer for short values), then `…`.
    pub preview: String,
    /// Hex SHA-256 of the detector id, a NUL byte and the value: the same secret found again
    /// (in another blob, push or scan) has the same fingerprint. See [`fingerprint`].
    pub fingerprint: String,
}
