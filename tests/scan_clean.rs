//! `gitgate scan` on clean real-world code finds nothing: the Python standard library and the
//! sources of widely used crates this project builds with (found in cargo's registry), none of
//! which holds a credential. Every finding there would be a false positive.

use std::path::PathBuf;

use crate::harness::gateway;

/// The crates (name prefixes of registry folders) scanned: large, ordinary code, no key fixtures.
const CRATES: &[&str] = &[
    "tokio-1.",
    "serde-1.",
    "serde_json-1.",
    "regex-1.",
    "regex-syntax-",
    "hyper-1.",
    "clap_builder-",
    "rusqlite-",
    "reqwest-",
    "tracing-subscriber-",
    "toml-",
    "globset-",
    "aho-corasick-",
];

fn registry_sources() -> Vec<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let mut found = Vec::new();
    let Ok(indexes) = std::fs::read_dir(home.join("registry/src")) else {
        return found;
    };
    for index in indexes.flatten() {
        let Ok(crates) = std::fs::read_dir(index.path()) else {
            continue;
        };
        for krate in crates.flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if CRATES.iter().any(|c| name.starts_with(c)) {
                found.push(krate.path());
            }
        }
    }
    found.sort();
    found
}

fn python_stdlib() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/usr/lib") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("python3.") && e.path().join("os.py").is_file()
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

#[test]
fn clean_real_world_code_has_no_findings() {
    let crates = registry_sources();
    let python = python_stdlib();
    // The crates are this project's own dependencies: a build that ran the tests fetched them.
    assert!(
        crates.len() >= 8,
        "expected the registry sources of this project's dependencies, found {crates:?}"
    );
    assert!(
        !python.is_empty(),
        "no Python standard library under /usr/lib"
    );
    let mut cmd = std::process::Command::new(gateway::bin());
    cmd.arg("scan").arg("--format").arg("json");
    cmd.args(&crates).args(&python);
    let out = crate::harness::process::run(&mut cmd, std::time::Duration::from_secs(300));
    assert_eq!(
        out.status.code(),
        Some(0),
        "findings on clean code (exit 0 expected):\n{}",
        out.stdout
    );
    assert!(out.stdout.trim().is_empty(), "{}", out.stdout);
    // It did scan something substantial, not an empty set of folders.
    let scanned = out
        .stderr
        .split("scanned ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        scanned > 1000,
        "only {scanned} files scanned: {}",
        out.stderr
    );
}
