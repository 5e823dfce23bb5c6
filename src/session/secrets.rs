//! The secret-scanning stage of a push: every blob of the pushed pack is scanned once, with
//! the path inspection found for it, and findings are attached to the ref updates that bring
//! the blob. A blob no ref update reaches is scanned too (it would otherwise travel upstream
//! inside the original pack).

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Decision;
use crate::inspect::UpdateFacts;
use crate::pack::{IndexedPack, Kind, PackError};
use crate::policy::Verdict;
use crate::scan::{Finding, Scanner, SkipReason};

/// What scanning a push found.
#[derive(Debug, Default)]
pub(crate) struct ScanResult {
    /// Findings by blob id (hex).
    pub findings: HashMap<String, Vec<Finding>>,
    /// Blobs not scanned (binary, too large), by id.
    pub skipped: HashMap<String, SkipReason>,
    /// A blob with findings is not reachable from any ref update's introduced commits.
    pub unreferenced_secret: bool,
}

/// Blobs up to this size are copied to scanning threads while the pack is decoded; larger
/// ones are scanned in place (memory: at most [`IN_FLIGHT`] copies of this size).
const HANDOFF_MAX: usize = 4 << 20;
/// Copied blobs waiting for a scanning thread.
const IN_FLIGHT: usize = 8;

/// Scans every blob of `pack` (blocking: run in `spawn_blocking`). The pack is decoded on this
/// thread while the other cores scan: small blobs are handed to scanning threads, large ones
/// scanned here without a copy.
pub(crate) fn scan_pack(
    scanner: &Scanner,
    pack: &IndexedPack,
    paths: &HashMap<String, String>,
) -> Result<ScanResult, PackError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let result = std::sync::Mutex::new(ScanResult::default());
    let scan_one = |hex: String, data: &[u8]| {
        let path = paths.get(&hex).map(String::as_str);
        let outcome = scanner.scan(path.unwrap_or(""), data);
        if outcome.skipped.is_none() && outcome.findings.is_empty() {
            return;
        }
        if let Ok(mut result) = result.lock() {
            if let Some(reason) = outcome.skipped {
                result.skipped.insert(hex.clone(), reason);
            }
            if !outcome.findings.is_empty() {
                if path.is_none() {
                    result.unreferenced_secret = true;
                }
                result.findings.insert(hex, outcome.findings);
            }
        }
    };
    let walked = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(String, Vec<u8>)>(IN_FLIGHT);
        // Shared by the scanning threads only: if they all stop, sending fails and the blob
        // is scanned here instead of waiting forever.
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let scan_one = &scan_one;
        for _ in 0..workers {
            let rx = Arc::clone(&rx);
            s.spawn(move || loop {
                let next = rx.lock().ok().and_then(|r| r.recv().ok());
                let Some((hex, data)) = next else { break };
                scan_one(hex, &data);
            });
        }
        drop(rx);
        let walked = pack.for_each(|id, kind, data| {
            if kind != Kind::Blob {
                return Ok::<(), PackError>(());
            }
            let hex = id.to_string();
            if workers > 1 && data.len() <= HANDOFF_MAX {
                if let Err(std::sync::mpsc::SendError((hex, data))) = tx.send((hex, data.to_vec()))
                {
                    scan_one(hex, &data);
                }
            } else {
                scan_one(hex, data);
            }
            Ok(())
        });
        drop(tx);
        walked
    });
    walked?;
    // A poisoned lock means a scanning thread panicked: fail closed.
    result.into_inner().map_err(|_| PackError::Internal {
        detail: "a scanning thread failed".into(),
    })
}

/// The first path inspection saw each new blob at.
pub(crate) fn blob_paths<'a>(
    updates: impl Iterator<Item = &'a UpdateFacts>,
) -> HashMap<String, String> {
    let mut paths = HashMap::new();
    for update in updates {
        for blob in &update.blobs {
            paths
                .entry(blob.id.clone())
                .or_insert_with(|| blob.path.clone());
        }
    }
    paths
}

/// The findings an update brings, in blob order.
pub(crate) fn findings_of<'a>(update: &'a UpdateFacts, scan: &'a ScanResult) -> Vec<&'a Finding> {
    update
        .blobs
        .iter()
        .filter_map(|b| scan.findings.get(&b.id))
        .flatten()
        .collect()
}

/// Combines the policy's verdict with the scan's: the stronger decision wins (deny > approve >
/// allow); on a tie the policy's reason stands.
pub(crate) fn combine(policy: Verdict, findings: &[&Finding], action: Decision) -> Verdict {
    let Some(first) = findings.first() else {
        return policy;
    };
    if action <= policy.decision {
        return policy;
    }
    let more = match findings.len() {
        1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    Verdict {
        decision: action,
        rule: Some("secret-scan".into()),
        reason: format!(
            "secret-scan: {} in {} line {} ({}){more}",
            first.detector, first.path, first.line, first.preview
        ),
    }
}

/// One band-2 line per finding, so the agent can see every secret to remove.
pub(crate) fn explain(messages: &mut Vec<u8>, refname: &str, findings: &[&Finding]) {
    for f in findings {
        messages.extend_from_slice(
            format!(
                "gitgate: secret-scan: {refname}: {} ({}) in {} line {}: {}\n",
                f.detector, f.description, f.path, f.line, f.preview
            )
            .as_bytes(),
        );
    }
}

/// The process-wide scanner, built once: the built-in detectors plus the rules of
/// `[scan] gitleaks_config`, with the configured allowlists. `None` when scanning is off.
pub(crate) fn build(
    config: &crate::config::Config,
) -> Result<Option<Arc<Scanner>>, crate::scan::BuildError> {
    if !config.scan.enabled {
        return Ok(None);
    }
    let options = crate::scan::Options {
        max_blob_bytes: config.scan.max_blob_bytes,
    };
    let detectors = crate::scan::detectors::with_custom(config.scan.custom_detectors.clone());
    let scanner = Scanner::with(options, detectors, config.scan.allow.clone())?;
    // Compile every detector now rather than on the first push that needs it.
    scanner.compile_all();
    Ok(Some(Arc::new(scanner)))
}
