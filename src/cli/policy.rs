//! `gitgate policy test DIR`: evaluate policy fixtures and print the decisions.

use std::path::Path;

use super::{Outcome, UsageError};

/// Runs the fixtures under `dir`; exit 1 when an expectation fails, 2 when a fixture is broken.
pub fn test(dir: &Path) -> anyhow::Result<Outcome> {
    let report = crate::policy::fixture::run(dir).map_err(|e| UsageError(e.to_string()))?;
    print!("{report}");
    Ok(if report.passed() {
        Outcome::Success
    } else {
        Outcome::Found
    })
}
