//! The secret-scanning stage of a push: every blob of the pushed pack is scanned once, while
//! the pack is indexed ([`BlobScanner`]); once inspection knows where each blob lives, findings
//! get their path ([`attribute`]) and are attached to the ref updates that bring the blob. A
//! blob no ref update reaches is scanned too (it would otherwise travel upstream inside the
//! original pack).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::Decision;
use crate::inspect::UpdateFacts;
use crate::pack::{Delta, IndexedPack, Kind, ObjectId, PackError};
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

/// What scanning found in the pushed blobs while the pack was indexed, before inspection
/// knew their paths: findings carry an empty path until [`attribute`] sets it.
#[derive(Debug, Default)]
pub(crate) struct BlobScan {
    findings: HashMap<ObjectId, Vec<Finding>>,
    skipped: HashMap<ObjectId, SkipReason>,
}

/// Scans blobs as indexing resolves them, on whichever thread resolves them (indexing hands
/// objects out on every core): no copy, no second decoding of the pack.
///
/// A blob made as a delta of another blob of the pack is scanned only around what the delta
/// changed ([`Scanner::scan_regions`]): the rest was copied from its base, which was scanned
/// before it (a base is always resolved before its deltas). What a copy could still hide, a
/// secret carried over from the base, is caught afterwards: every blob made from a blob with
/// findings (and from those, and so on) is scanned again whole by [`BlobScanner::finish`].
/// Bases that were not scanned (binary, too large) give deltas that are scanned whole.
pub(crate) struct BlobScanner {
    scanner: Arc<Scanner>,
    found: Mutex<Found>,
}

#[derive(Default)]
struct Found {
    scan: BlobScan,
    /// Blobs scanned only around their changes, by their base.
    derived: HashMap<ObjectId, Vec<ObjectId>>,
}

impl BlobScanner {
    /// A collector scanning with `scanner`.
    pub(crate) fn new(scanner: Arc<Scanner>) -> BlobScanner {
        BlobScanner {
            scanner,
            found: Mutex::new(Found::default()),
        }
    }

    /// Scans one object if it is a blob (made by `delta`, when it is one). Only what is found
    /// or skipped is kept.
    pub(crate) fn object(
        &self,
        id: ObjectId,
        kind: Kind,
        data: &[u8],
        delta: Option<Delta<'_>>,
    ) -> Result<(), PackError> {
        if kind != Kind::Blob {
            return Ok(());
        }
        // Around the changes when the base was scanned; whole otherwise.
        let regions = match delta {
            Some(d) => {
                let found = self.found.lock().map_err(|_| poisoned())?;
                if found.scan.skipped.contains_key(&d.base) {
                    None
                } else {
                    crate::pack::changed_ranges(d.instructions).map(|r| (d.base, r))
                }
            }
            None => None,
        };
        // The path is not known yet: findings get it, and the path allowlist, in `attribute`.
        let outcome = match &regions {
            Some((_, changed)) => self.scanner.scan_regions("", data, changed),
            None => self.scanner.scan("", data),
        };
        let derived_from = regions.map(|(base, _)| base);
        if outcome.skipped.is_none() && outcome.findings.is_empty() && derived_from.is_none() {
            return Ok(());
        }
        let mut found = self.found.lock().map_err(|_| poisoned())?;
        if let Some(base) = derived_from {
            found.derived.entry(base).or_default().push(id);
        }
        if let Some(reason) = outcome.skipped {
            found.scan.skipped.insert(id, reason);
        }
        if !outcome.findings.is_empty() {
            found.scan.findings.insert(id, outcome.findings);
        }
        Ok(())
    }

    /// What was found, once `pack` (the indexed pack these blobs came from) is complete: the
    /// blobs made from blobs with findings, scanned only around their changes, are scanned
    /// again whole. A poisoned lock (a scanning thread panicked) fails closed.
    pub(crate) fn finish(self, pack: &IndexedPack) -> Result<BlobScan, PackError> {
        let Found { mut scan, derived } = self.found.into_inner().map_err(|_| poisoned())?;
        // From every blob with findings down its delta tree; a blob with findings of its own
        // (around its changes) is rescanned too when its base has some.
        let mut todo: Vec<ObjectId> = scan.findings.keys().copied().collect();
        let mut rescanned = std::collections::HashSet::new();
        let mut buf = Vec::new();
        while let Some(base) = todo.pop() {
            for child in derived.get(&base).into_iter().flatten() {
                if !rescanned.insert(*child) {
                    continue;
                }
                if pack.find(child, &mut buf)?.is_none() {
                    return Err(PackError::Internal {
                        detail: format!("blob {child} vanished from the pack"),
                    });
                }
                let outcome = self.scanner.scan("", &buf);
                if let Some(reason) = outcome.skipped {
                    scan.skipped.insert(*child, reason);
                }
                if outcome.findings.is_empty() {
                    scan.findings.remove(child);
                } else {
                    scan.findings.insert(*child, outcome.findings);
                }
                todo.push(*child);
            }
        }
        Ok(scan)
    }
}

fn poisoned() -> PackError {
    PackError::Internal {
        detail: "a scanning thread failed".into(),
    }
}

/// Gives the findings of `scan` the path inspection found for their blob (`paths`, by blob
/// id) and applies the path allowlist, which needs it. Findings in a blob no ref update
/// reaches keep an empty path and set [`ScanResult::unreferenced_secret`].
pub(crate) fn attribute(
    scan: BlobScan,
    scanner: &Scanner,
    paths: &HashMap<String, String>,
) -> ScanResult {
    let mut result = ScanResult {
        skipped: scan
            .skipped
            .into_iter()
            .map(|(id, reason)| (id.to_string(), reason))
            .collect(),
        ..ScanResult::default()
    };
    for (id, mut findings) in scan.findings {
        let hex = id.to_string();
        match paths.get(&hex) {
            Some(path) => {
                for f in &mut findings {
                    f.path.clone_from(path);
                }
                findings.retain(|f| !scanner.permits(f));
            }
            None => result.unreferenced_secret = true,
        }
        if !findings.is_empty() {
            result.findings.insert(hex, findings);
        }
    }
    result
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::example::expand;
    use crate::scan::{detectors, Allow, Options};

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    #[test]
    fn findings_get_their_blob_path_and_the_path_allowlist_after_the_scan() {
        let allow = Allow::default().with_paths(&["vendor/**"]).expect("glob");
        let scanner =
            Arc::new(Scanner::with(Options::default(), detectors::all(), allow).expect("builds"));
        let blobs = BlobScanner::new(scanner.clone());
        let secret = expand("token = \"ghp_{a:30}{c}\"\n", 7);
        blobs
            .object(id(1), Kind::Blob, secret.as_bytes(), None)
            .expect("scans");
        blobs
            .object(id(2), Kind::Blob, secret.as_bytes(), None)
            .expect("scans");
        blobs
            .object(id(3), Kind::Blob, secret.as_bytes(), None)
            .expect("scans");
        blobs
            .object(id(4), Kind::Blob, b"nothing here\n", None)
            .expect("scans");
        blobs
            .object(id(5), Kind::Blob, b"\x7fELF\0\0", None)
            .expect("scans");
        // Not a blob: not scanned.
        blobs
            .object(id(6), Kind::Commit, secret.as_bytes(), None)
            .expect("scans");
        let empty = IndexedPack::empty(std::path::Path::new("none.pack"), &Default::default());
        let scan = blobs.finish(&empty).expect("finishes");

        let paths: HashMap<String, String> = [
            (id(1).to_string(), "src/config.py".to_owned()),
            (id(2).to_string(), "vendor/lib/config.py".to_owned()),
            (id(4).to_string(), "README".to_owned()),
        ]
        .into();
        let result = attribute(scan, &scanner, &paths);
        let found = result
            .findings
            .get(&id(1).to_string())
            .expect("finding in blob 1");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "src/config.py");
        assert_eq!(found[0].line, 1);
        // Allowed by path once the path is known.
        assert!(!result.findings.contains_key(&id(2).to_string()));
        // Blob 3 is reached by no ref update: its finding stays, without a path, and says so.
        assert_eq!(
            result
                .findings
                .get(&id(3).to_string())
                .map(|f| f[0].path.as_str()),
            Some("")
        );
        assert!(result.unreferenced_secret);
        assert_eq!(result.findings.len(), 2);
        assert_eq!(
            result.skipped.get(&id(5).to_string()),
            Some(&SkipReason::Binary)
        );
    }

    use crate::test_git::git;

    /// A history of one big file whose versions are deltas of each other: secrets added,
    /// carried along unchanged while other lines change, removed, made by a deletion; the
    /// scan around each delta's changes (plus the rescans) finds exactly what scanning every
    /// blob whole finds.
    #[test]
    fn scanning_deltas_around_their_changes_finds_what_whole_scans_find() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        git(dir, &["init", "-q"], b"");
        let secret = expand("token = \"ghp_{a:30}{c}\"\n", 3);
        let other = expand("slack = \"xoxb-{d:11}-{d:12}-{a:24}\"\n", 4);
        let mut lines: Vec<String> = (0..3000)
            .map(|i| format!("let value_{i} = compute({i}, \"plain text\");\n"))
            .collect();
        let commit = |lines: &[String], message: &str| {
            std::fs::write(dir.join("big.rs"), lines.concat()).expect("write");
            git(dir, &["add", "-A"], b"");
            git(dir, &["commit", "-q", "-m", message], b"");
        };
        commit(&lines, "start");
        lines[1500] = secret.clone();
        commit(&lines, "a secret");
        for i in 0..4 {
            lines[100 + i * 500] = format!("changed line {i}\n");
            commit(&lines, "other lines change, the secret stays");
        }
        lines[2900] = other.clone();
        commit(&lines, "another secret");
        lines[1500] = "removed\n".into();
        commit(&lines, "the first secret removed");
        // A secret made by deleting what separated its halves.
        let (a, b) = secret.split_at(20);
        lines[2000] = format!("{a}REDACTED{b}");
        commit(&lines, "a split secret");
        lines[2000] = format!("{a}{b}");
        commit(&lines, "joined");
        let pack = git(
            dir,
            &[
                "pack-objects",
                "--stdout",
                "--revs",
                "-q",
                "--window=50",
                "--depth=50",
            ],
            b"HEAD\n",
        );
        let path = dir.join("p.pack");
        std::fs::write(&path, &pack).expect("pack");

        let scanner = Arc::new(Scanner::new(Options::default()));
        let blobs = BlobScanner::new(scanner.clone());
        let growing = crate::pack::Growing::new();
        growing.advance(pack.len() as u64);
        growing.finish();
        let deltas = std::sync::atomic::AtomicUsize::new(0);
        let indexed = crate::pack::index_growing_with_deltas(
            &path,
            &growing,
            &Default::default(),
            |id, kind, data, delta| {
                if kind == Kind::Blob && delta.is_some() {
                    deltas.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                blobs.object(id, kind, data, delta)
            },
        )
        .expect("indexes");
        assert!(deltas.into_inner() >= 5, "most versions are deltas");
        let scan = blobs.finish(&indexed).expect("finishes");

        let mut whole: HashMap<ObjectId, Vec<Finding>> = HashMap::new();
        indexed
            .for_each(|id, kind, data| {
                if kind == Kind::Blob {
                    let outcome = scanner.scan("", data);
                    if !outcome.findings.is_empty() {
                        whole.insert(id, outcome.findings);
                    }
                }
                Ok::<(), PackError>(())
            })
            .expect("decodes");
        assert!(whole.len() >= 8, "versions with a secret: {}", whole.len());
        assert_eq!(scan.findings, whole);
    }

    /// Secret-scanning cost while indexing a real pack (ignored: needs one). Run with
    /// `GITGATE_SCAN_BENCH_PACK=<a .pack file> cargo test --release --lib -- --ignored
    /// scan_while_indexing_throughput --nocapture`: indexes the pack without scanning, then
    /// scanning as a push does (around delta changes), then scanning every blob whole.
    #[test]
    #[ignore = "needs a pack: GITGATE_SCAN_BENCH_PACK"]
    fn scan_while_indexing_throughput() {
        let Some(pack) = std::env::var_os("GITGATE_SCAN_BENCH_PACK") else {
            panic!("set GITGATE_SCAN_BENCH_PACK to a .pack file");
        };
        let pack = std::path::PathBuf::from(pack);
        let len = std::fs::metadata(&pack).expect("pack").len();
        let growing = crate::pack::Growing::new();
        growing.advance(len);
        growing.finish();
        let scanner = Arc::new(Scanner::new(Options::default()));
        scanner.compile_all();
        let run = |mode: &str| {
            let blobs = BlobScanner::new(scanner.clone());
            let started = std::time::Instant::now();
            let indexed = crate::pack::index_growing_with_deltas(
                &pack,
                &growing,
                &Default::default(),
                |id, kind, data, delta| match mode {
                    "regions" => blobs.object(id, kind, data, delta),
                    "whole" => blobs.object(id, kind, data, None),
                    _ => Ok::<(), PackError>(()),
                },
            )
            .expect("indexes");
            let finishing = std::time::Instant::now();
            let scan = blobs.finish(&indexed).expect("finishes");
            println!(
                "{mode:>8}: {:.2} s ({:.2} s finishing), {} objects, {} blobs with findings",
                started.elapsed().as_secs_f64(),
                finishing.elapsed().as_secs_f64(),
                indexed.len(),
                scan.findings.len()
            );
        };
        let modes = std::env::var("GITGATE_SCAN_BENCH_MODES")
            .unwrap_or_else(|_| "none regions whole".into());
        for mode in modes.split_whitespace() {
            run(mode);
        }
    }
}
