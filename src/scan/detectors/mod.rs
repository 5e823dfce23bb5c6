//! The built-in detectors, one table per family. The order of [`all`] is the priority order:
//! where two detectors report overlapping values, the earlier one wins (specific providers
//! before private keys, URLs and the generic assignments).
//!
//! Conventions for patterns: compiled in ASCII mode; the value is the group named `v` (or the
//! first of `v1`, `v2`, ... that matched);
//! keywords are lowercase (any case) unless the token's prefix has a fixed case.

mod ai;
mod chat;
mod cloud;
mod forge;
mod generic;
mod infra;
mod keys;
mod payment;
mod registry;
mod url;

use super::detector::Detector;

/// A name (a regex, matched in any case), then an assignment in any common syntax, then the
/// value (groups `v1`..`v7`, one per syntax):
/// - `=`, `:`, `:=`, `=>`, `,` (as in `setenv("NAME", ...)`) or `>` (XML), then a value in
///   double, single or back quotes, or an XML element's text (`<password>v</password>`), or an
///   unquoted value that runs to the end of the line (`.env`, YAML, properties; a ` # comment`
///   may follow). An unquoted value followed by more code (`NAME: Type = ...`) is code, not a
///   secret, and does not match.
/// - blanks, then a quoted value (`#define NAME "value"`).
macro_rules! assigned {
    ($name:literal, $value:literal) => {
        concat!(
            r#"(?m)(?i:"#,
            $name,
            r#")[\w.-]{0,20}["'\]]?(?:\s+value)?(?:\s*(?:=|:=|=>|:|,|>)\s*(?:"(?P<v1>"#,
            $value,
            r#")"|'(?P<v2>"#,
            $value,
            r#")'|`(?P<v3>"#,
            $value,
            r#")`|(?P<v4>"#,
            $value,
            r#")</|(?P<v5>"#,
            $value,
            r#")[ \t]*(?:[ \t]#.*)?\r?$)|\s+(?:"(?P<v6>"#,
            $value,
            r#")"|'(?P<v7>"#,
            $value,
            r#")'))"#
        )
    };
}
pub(crate) use assigned;

/// Every built-in detector, in priority order.
pub fn all() -> Vec<Detector> {
    with_custom(Vec::new())
}

/// The built-in detectors with `custom` ones (e.g. imported from gitleaks) placed after the
/// provider-specific detectors and before the name-based ones (URLs, generic assignments), so
/// that a custom rule wins over a generic match of the same value.
pub fn with_custom(custom: Vec<Detector>) -> Vec<Detector> {
    let mut all = [
        cloud::DETECTORS,
        forge::DETECTORS,
        ai::DETECTORS,
        chat::DETECTORS,
        payment::DETECTORS,
        registry::DETECTORS,
        infra::DETECTORS,
        keys::DETECTORS,
    ]
    .concat();
    all.extend(custom);
    all.extend_from_slice(url::DETECTORS);
    all.extend_from_slice(generic::DETECTORS);
    all
}
