#![no_main]
//! `config`: arbitrary bytes, read as UTF-8 (lossy), as a `gitgate.toml`. Any text may be
//! refused with a `ConfigError`; none may panic. Seeds: `python3 fuzz/seed-config-corpus.py`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gitgate_fuzz::config(data));
