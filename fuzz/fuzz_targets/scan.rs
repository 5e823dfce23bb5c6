#![no_main]
//! The secret scanner over arbitrary bytes: it never panics, and its findings point inside the
//! blob and show at most a 4-character preview, whether it scans the whole blob or only around
//! changed places (ranges taken from the first bytes, possibly past the blob's end).

use std::sync::OnceLock;

use gitgate::scan::{Options, Scanner};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    let scanner = SCANNER.get_or_init(|| Scanner::new(Options::default()));
    let whole = scanner.scan("fuzz", data);
    let ranges: Vec<std::ops::Range<usize>> = data
        .chunks(2)
        .take(4)
        .map(|c| {
            let start = usize::from(c.first().copied().unwrap_or(0)) * 37;
            start..start + usize::from(c.get(1).copied().unwrap_or(0))
        })
        .collect();
    let around = scanner.scan_regions("fuzz", data, &ranges);
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    for f in whole.findings.iter().chain(&around.findings) {
        assert!(f.line >= 1 && f.line as usize <= lines, "line {}", f.line);
        assert!(
            f.column >= 1 && f.column as usize <= data.len(),
            "column {}",
            f.column
        );
        assert!(f.preview.trim_end_matches('…').chars().count() <= 4);
        assert_eq!(f.fingerprint.len(), 64);
    }
});
