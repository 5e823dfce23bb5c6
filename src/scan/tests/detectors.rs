//! The built-in table: ids, keywords, patterns, and every example.

use std::collections::HashSet;

use super::{scan, scanner};
use crate::scan::detectors::all;
use crate::scan::example::expand;

fn seed(id: &str, n: usize) -> u64 {
    id.bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
        .wrapping_add(n as u64)
}

#[test]
fn at_least_80_detectors_with_unique_kebab_ids() {
    let all = all();
    assert!(all.len() >= 80, "{} detectors", all.len());
    let mut seen = HashSet::new();
    for d in &all {
        assert!(seen.insert(d.id), "duplicate id {}", d.id);
        assert!(
            d.id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "id {}",
            d.id
        );
        assert!(
            !d.description.is_empty() && !d.keywords.is_empty(),
            "{}",
            d.id
        );
        assert!(
            !d.examples.positive.is_empty(),
            "{} has no positive example",
            d.id
        );
        assert!(
            !d.examples.negative.is_empty(),
            "{} has no negative example",
            d.id
        );
        let group = regex::bytes::Regex::new(d.pattern)
            .map(|r| {
                r.capture_names()
                    .any(|n| n.is_some_and(|n| n == "v" || n.starts_with('v')))
            })
            .unwrap_or(false);
        assert!(group, "{}: pattern without a `v` group", d.id);
    }
}

#[test]
fn every_positive_example_is_found_by_its_detector() {
    let mut failures = Vec::new();
    for d in all() {
        for (n, template) in d.examples.positive.iter().enumerate() {
            let text = expand(template, seed(d.id, n));
            let found = scan(&text);
            if !found.iter().any(|f| f.detector == d.id) {
                failures.push(format!(
                    "{}: positive #{n} not found (got {:?}):\n{text}",
                    d.id, found
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn no_negative_example_is_found_by_its_detector() {
    let mut failures = Vec::new();
    for d in all() {
        for (n, template) in d.examples.negative.iter().enumerate() {
            let text = expand(template, seed(d.id, 100 + n));
            let found = scan(&text);
            if found.iter().any(|f| f.detector == d.id) {
                failures.push(format!("{}: negative #{n} found:\n{text}", d.id));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn findings_never_hold_the_value() {
    for d in all() {
        for (n, template) in d.examples.positive.iter().enumerate() {
            let text = expand(template, seed(d.id, n));
            for f in scan(&text) {
                let shown = f.preview.trim_end_matches('…');
                assert!(
                    shown.chars().count() <= 4,
                    "{}: preview {:?}",
                    d.id,
                    f.preview
                );
                let debug = format!("{f:?}");
                // The value is at least 8 bytes; no 12-byte run of the text past the preview
                // may appear in the Debug output.
                let line = text.lines().nth(f.line as usize - 1).unwrap_or_default();
                let from = (f.column as usize - 1 + 4).min(line.len());
                if let Some(tail) = line.get(from..(from + 12).min(line.len())) {
                    if tail.len() == 12 {
                        assert!(!debug.contains(tail), "{}: Debug shows {tail:?}", d.id);
                    }
                }
            }
        }
    }
}

#[test]
fn every_pattern_compiles_in_the_engine() {
    assert_eq!(scanner().uncompilable(), Vec::<&str>::new());
}

#[test]
fn the_scanner_lists_the_table() {
    assert_eq!(scanner().detectors().len(), all().len());
}
