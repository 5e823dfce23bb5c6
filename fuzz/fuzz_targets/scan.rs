#![no_main]
//! The secret scanner over arbitrary bytes: it never panics, and its findings point inside the
//! blob and show at most a 4-character preview.

use std::sync::OnceLock;

use gitgate::scan::{Options, Scanner};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    let scanner = SCANNER.get_or_init(|| Scanner::new(Options::default()));
    let outcome = scanner.scan("fuzz", data);
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    for f in &outcome.findings {
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
