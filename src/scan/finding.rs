//! Turning a matched value into a [`super::Finding`] that does not hold it.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of `detector_id`, a NUL byte, and `value`: what [`super::Finding::fingerprint`]
/// holds. Tools (baselines, allowlists) compute it to name a secret without storing it.
pub fn fingerprint(detector_id: &str, value: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(detector_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(value);
    hex::encode(hasher.finalize())
}

/// At most the first 4 characters of `value` (fewer for short values: a quarter of them, so
/// a short password is never mostly shown), then `…`.
pub(crate) fn preview(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let chars = text.chars().count();
    let shown = if chars >= 16 { 4 } else { chars / 4 };
    let mut out: String = text
        .chars()
        .take(shown)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    out.push('…');
    out
}
