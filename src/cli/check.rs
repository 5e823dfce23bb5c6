//! `gitgate check --config FILE`: validate a configuration.

use std::path::Path;

use super::{Outcome, UsageError};

/// Loads and resolves the configuration; exit 0, or 2 with the message naming file, line, key.
pub fn run(path: &Path) -> anyhow::Result<Outcome> {
    let config = crate::config::load(path).map_err(|e| UsageError(e.to_string()))?;
    // Upstreams load their key files and pinned host keys: a bad one is a configuration error.
    crate::upstream::Upstreams::new(&config)
        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    println!(
        "{}: ok ({} upstream(s), {} token(s), {} rule(s))",
        path.display(),
        config.upstreams.len(),
        config.tokens.len(),
        config.rules.len()
    );
    Ok(Outcome::Success)
}
