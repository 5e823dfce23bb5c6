//! The built-in detectors, one table per family. The order of [`all`] is the priority order:
//! where two detectors report overlapping values, the earlier one wins (specific providers
//! before private keys, URLs and the generic assignments).
//!
//! Conventions for patterns: compiled in ASCII mode; the value is the group named `v`;
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

/// A name (a regex, matched in any case) followed by an assignment in any common syntax
/// (`=`, `:`, `:=`, `=>`, `,` as in `setenv("NAME", ...)`, `>` as in XML) and an optional
/// quote, or blanks and a quote (`#define NAME "value"`), then the value regex as group `v`, then the end of the value: a quote, space,
/// separator or the end of the line.
macro_rules! assigned {
    ($name:literal, $value:literal) => {
        concat!(
            r#"(?m)(?i:"#,
            $name,
            r#")[\w.-]{0,20}["'\]]?(?:\s+value)?(?:\s*(?:=|:=|=>|:|,|>)\s*["'`]?|\s+["'])(?P<v>"#,
            $value,
            r#")(?:[\s"'`,;)<}\]&]|$)"#
        )
    };
}
pub(crate) use assigned;

/// Every built-in detector, in priority order.
pub fn all() -> Vec<Detector> {
    [
        cloud::DETECTORS,
        forge::DETECTORS,
        ai::DETECTORS,
        chat::DETECTORS,
        payment::DETECTORS,
        registry::DETECTORS,
        infra::DETECTORS,
        keys::DETECTORS,
        url::DETECTORS,
        generic::DETECTORS,
    ]
    .concat()
}
