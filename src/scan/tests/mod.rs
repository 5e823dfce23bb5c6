//! Tests of the scanner: every detector's examples, the engine's rules (placeholders, pairs,
//! inline markers, skips, overlaps), allowlists and gitleaks import.

mod detectors;
mod engine;
mod gitleaks;

use std::sync::OnceLock;

use super::{Finding, Options, Scanner};

/// One scanner for all tests, as in production.
pub(super) fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new(Options::default()))
}

pub(super) fn scan(text: &str) -> Vec<Finding> {
    let outcome = scanner().scan("t.txt", text.as_bytes());
    assert_eq!(outcome.skipped, None);
    outcome.findings
}

pub(super) fn ids(text: &str) -> Vec<&'static str> {
    scan(text).into_iter().map(|f| f.detector).collect()
}
