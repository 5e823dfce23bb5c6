//! `gitgate scan PATH... [--git REPO [--range A..B]] [--format text|json|sarif]`: the secret
//! scanner on files and folders (walked in parallel, `.git` skipped) or on the blobs a git
//! history introduced. Exit 1 when something is found, 0 when clean, 2 on usage errors.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use super::{Outcome, UsageError};
use crate::scan::report::{self, Record};
use crate::scan::{self, Allow, Options, Scanner, SkipReason};

/// `gitgate scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files and folders to scan (folders are walked; `.git` folders are skipped).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Scan the history of this repository instead: every blob its commits introduced.
    #[arg(long, value_name = "REPO", conflicts_with = "paths")]
    pub git: Option<PathBuf>,
    /// With --git: only the commits of this revision range (default: all refs).
    #[arg(long, value_name = "A..B", requires = "git")]
    pub range: Option<String>,
    /// Output format: one finding per line, JSON Lines, or SARIF 2.1.0.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Files (blobs) larger than this many bytes are skipped and reported as skipped.
    #[arg(long, value_name = "BYTES", default_value_t = 10 << 20)]
    pub max_blob_bytes: u64,
    /// Earlier findings to accept: a JSON Lines file of `--format json` output (or one
    /// fingerprint per line).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Also apply the rules and allowlists of a gitleaks configuration file.
    #[arg(long, value_name = "FILE")]
    pub gitleaks_config: Option<PathBuf>,
    /// Skip files whose path matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub allow_path: Vec<String>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print the detectors (id and description) and exit.
    #[arg(long)]
    pub list_detectors: bool,
    /// Report every place a secret occurs as its own finding. By default each secret (same
    /// detector, same value) is reported once, at its first place, with the others listed
    /// (`also` in JSON, `relatedLocations` in SARIF).
    #[arg(long)]
    pub all_occurrences: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `path:line:col: detector-id: description (preview)`, one finding per line.
    Text,
    /// One JSON object per finding (JSON Lines).
    Json,
    /// One SARIF 2.1.0 log with one run.
    Sarif,
}

/// Totals of a scan, for the summary on stderr.
#[derive(Debug, Default)]
struct Totals {
    files: AtomicU64,
    bytes: AtomicU64,
    binary: AtomicU64,
    too_large: AtomicU64,
    unreadable: AtomicU64,
}

/// Runs `gitgate scan`.
pub fn run(args: &ScanArgs) -> anyhow::Result<Outcome> {
    let mut custom = Vec::new();
    let mut allow = Allow::default()
        .with_paths(&args.allow_path)
        .map_err(|e| UsageError(format!("--allow-path: {e}")))?;
    if let Some(file) = &args.gitleaks_config {
        let text = std::fs::read_to_string(file)
            .map_err(|e| UsageError(format!("{}: {e}", file.display())))?;
        let imported = scan::gitleaks::parse(&text)
            .map_err(|e| UsageError(format!("{}: {e}", file.display())))?;
        for note in &imported.notes {
            eprintln!("gitgate: {}: {note}", file.display());
        }
        custom = imported.detectors;
        allow = allow.merge(imported.allow);
    }
    if let Some(file) = &args.baseline {
        allow = allow.with_fingerprints(baseline(file)?);
    }
    let options = Options {
        max_blob_bytes: args.max_blob_bytes,
    };
    let scanner = Scanner::with(options, scan::detectors::with_custom(custom), allow)
        .map_err(|e| UsageError(format!("detectors: {e}")))?;
    if args.list_detectors {
        let mut out = std::io::stdout().lock();
        for d in scanner.detectors() {
            writeln!(out, "{}\t{}", d.id, d.description)?;
        }
        return Ok(Outcome::Success);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let totals = Totals::default();
    let mut records = match &args.git {
        Some(repo) => scan_history(&scanner, repo, args.range.as_deref(), threads, &totals)?,
        None => {
            if args.paths.is_empty() {
                return Err(UsageError(
                    "scan: give PATH... or --git REPO (see gitgate scan --help)".into(),
                )
                .into());
            }
            scan_paths(&scanner, &args.paths, threads, &totals)?
        }
    };
    records.sort();
    let places = records.len();
    if !args.all_occurrences {
        records = report::dedupe(records);
    }
    let mut out = std::io::stdout().lock();
    write_records(&mut out, args.format, &scanner, &records)?;
    out.flush()?;
    eprintln!(
        "gitgate: scanned {} files ({:.1} MB); skipped {} binary, {} too large, {} unreadable; {} findings ({} places)",
        totals.files.load(Ordering::Relaxed),
        totals.bytes.load(Ordering::Relaxed) as f64 / 1e6,
        totals.binary.load(Ordering::Relaxed),
        totals.too_large.load(Ordering::Relaxed),
        totals.unreadable.load(Ordering::Relaxed),
        records.len(),
        places
    );
    Ok(if records.is_empty() {
        Outcome::Success
    } else {
        Outcome::Found
    })
}

/// Fingerprints from a baseline file (see [`scan::baseline`]).
fn baseline(file: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| UsageError(format!("--baseline {}: {e}", file.display())))?;
    Ok(scan::baseline::parse(&text).map_err(|e| {
        UsageError(format!(
            "--baseline {}:{}: {}",
            file.display(),
            e.line,
            e.reason
        ))
    })?)
}

/// Every file under `paths` (folders walked, `.git` and symlinks skipped), sorted.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            walk(path, &mut files);
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            if entry.file_name() != ".git" {
                walk(&path, out);
            }
        } else if kind.is_file() {
            out.push(path);
        }
    }
}

fn display(path: &Path) -> String {
    let s = path.to_string_lossy();
    s.strip_prefix("./").unwrap_or(&s).replace('\\', "/")
}

fn count_skip(totals: &Totals, reason: SkipReason, path: &str) {
    match reason {
        SkipReason::Binary => totals.binary.fetch_add(1, Ordering::Relaxed),
        SkipReason::TooLarge { .. } => {
            eprintln!("gitgate: skipped {path}: {reason}");
            totals.too_large.fetch_add(1, Ordering::Relaxed)
        }
    };
}

fn scan_paths(
    scanner: &Scanner,
    paths: &[PathBuf],
    threads: usize,
    totals: &Totals,
) -> anyhow::Result<Vec<Record>> {
    let files = collect_files(paths)?;
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    let max = scanner.options().max_blob_bytes;
    std::thread::scope(|s| {
        let progress = std::io::stderr()
            .is_terminal()
            .then(|| s.spawn(|| progress(&done, totals, Some(files.len()))));
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut local = Vec::new();
                    while let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let name = display(file);
                        let too_large = std::fs::metadata(file)
                            .map(|m| m.len())
                            .ok()
                            .filter(|&len| len > max);
                        if let Some(bytes) = too_large {
                            totals.files.fetch_add(1, Ordering::Relaxed);
                            count_skip(totals, SkipReason::TooLarge { bytes, limit: max }, &name);
                            continue;
                        }
                        let Ok(data) = std::fs::read(file) else {
                            totals.unreadable.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        totals.files.fetch_add(1, Ordering::Relaxed);
                        totals.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                        let outcome = scanner.scan(&name, &data);
                        if let Some(reason) = outcome.skipped {
                            count_skip(totals, reason, &name);
                        }
                        local.extend(
                            outcome
                                .findings
                                .into_iter()
                                .map(|finding| Record::new(None, finding)),
                        );
                    }
                    if let Ok(mut all) = found.lock() {
                        all.extend(local);
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        done.store(true, Ordering::Relaxed);
        if let Some(p) = progress {
            let _ = p.join();
        }
    });
    Ok(found.into_inner().unwrap_or_default())
}

/// A progress line on stderr (a terminal) every 200 ms until `done`.
fn progress(done: &AtomicBool, totals: &Totals, of: Option<usize>) {
    let mut shown = false;
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let files = totals.files.load(Ordering::Relaxed);
        let mb = totals.bytes.load(Ordering::Relaxed) as f64 / 1e6;
        match of {
            Some(of) => eprint!("\rscanning: {files}/{of} files, {mb:.1} MB "),
            None => eprint!("\rscanning: {files} blobs, {mb:.1} MB "),
        }
        shown = true;
    }
    if shown {
        eprint!("\r\x1b[K");
    }
}

/// A blob to scan from history.
struct Blob {
    commit: String,
    path: String,
    id: String,
}

fn git(repo: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(repo);
    cmd
}

/// Every blob the commits of `range` (or of all refs) introduced, oldest commit first, each
/// blob once (with the first commit and path that brought it).
fn introduced_blobs(repo: &Path, range: Option<&str>) -> anyhow::Result<Vec<Blob>> {
    let check = git(repo)
        .args(["rev-parse", "--git-dir"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running git")?;
    if !check.success() {
        return Err(UsageError(format!("--git {}: not a git repository", repo.display())).into());
    }
    let mut cmd = git(repo);
    cmd.args([
        "log",
        "--reverse",
        "--format=%x01%H",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "-m",
        "-z",
    ]);
    match range {
        Some(r) if r.starts_with('-') => {
            return Err(UsageError(format!("--range {r:?}: not a revision range")).into());
        }
        Some(r) => cmd.arg(r).arg("--"),
        None => cmd.arg("--all"),
    };
    let output = cmd
        .stderr(Stdio::piped())
        .output()
        .context("running git log")?;
    if !output.status.success() {
        return Err(UsageError(format!(
            "--git {}: git log failed: {}",
            repo.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
        .into());
    }
    let mut blobs = Vec::new();
    let mut seen = HashSet::new();
    let mut commit = String::new();
    let mut fields = output.stdout.split(|&b| b == 0);
    while let Some(field) = fields.next() {
        let field = field.strip_prefix(b"\n").unwrap_or(field);
        if let Some(hash) = field.strip_prefix(b"\x01") {
            commit = String::from_utf8_lossy(hash).trim().to_owned();
        } else if let Some(meta) = field.strip_prefix(b":") {
            let path = fields.next().unwrap_or_default();
            let meta = String::from_utf8_lossy(meta);
            let parts: Vec<&str> = meta.split(' ').collect();
            // :old_mode new_mode old_id new_id status
            let (Some(mode), Some(id), Some(status)) = (parts.get(1), parts.get(3), parts.get(4))
            else {
                continue;
            };
            let blob_mode = mode.starts_with("100") || mode.starts_with("120");
            if status.starts_with('D') || !blob_mode || !seen.insert(id.to_string()) {
                continue;
            }
            blobs.push(Blob {
                commit: commit.clone(),
                path: String::from_utf8_lossy(path).into_owned(),
                id: id.to_string(),
            });
        }
    }
    Ok(blobs)
}

fn scan_history(
    scanner: &Scanner,
    repo: &Path,
    range: Option<&str>,
    threads: usize,
    totals: &Totals,
) -> anyhow::Result<Vec<Record>> {
    let blobs = introduced_blobs(repo, range)?;
    let mut child = git(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("running git cat-file")?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        anyhow::bail!("git cat-file: no pipes");
    };
    let ids: Vec<String> = blobs.iter().map(|b| b.id.clone()).collect();
    // Feed ids from another thread: git answers while we write, and both pipes are bounded.
    let feeder = std::thread::spawn(move || {
        for id in ids {
            if writeln!(stdin, "{id}").is_err() {
                break;
            }
        }
    });
    let max = scanner.options().max_blob_bytes;
    let found = Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    let (tx, rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(threads * 4);
    let rx = Arc::new(Mutex::new(rx));
    let read_result = std::thread::scope(|s| {
        let progress = std::io::stderr()
            .is_terminal()
            .then(|| s.spawn(|| progress(&done, totals, None)));
        let workers: Vec<_> =
            (0..threads)
                .map(|_| {
                    let rx = Arc::clone(&rx);
                    let (blobs, found) = (&blobs, &found);
                    s.spawn(move || loop {
                        let next = rx.lock().ok().and_then(|r| r.recv().ok());
                        let Some((index, data)) = next else { break };
                        let Some(blob) = blobs.get(index) else {
                            continue;
                        };
                        let outcome = scanner.scan(&blob.path, &data);
                        if let Some(reason) = outcome.skipped {
                            count_skip(totals, reason, &format!("{}:{}", blob.commit, blob.path));
                        }
                        if !outcome.findings.is_empty() {
                            if let Ok(mut all) = found.lock() {
                                all.extend(outcome.findings.into_iter().map(|finding| {
                                    Record::new(Some(blob.commit.clone()), finding)
                                }));
                            }
                        }
                    })
                })
                .collect();
        let result = read_batch(stdout, &blobs, max, totals, &tx);
        drop(tx);
        for w in workers {
            let _ = w.join();
        }
        done.store(true, Ordering::Relaxed);
        if let Some(p) = progress {
            let _ = p.join();
        }
        result
    });
    let _ = feeder.join();
    let _ = child.wait();
    read_result?;
    Ok(found.into_inner().unwrap_or_default())
}

/// Reads `git cat-file --batch` answers, in the order of `blobs`, and sends each blob's bytes
/// to the workers (too-large blobs are read past, not kept).
fn read_batch(
    stdout: impl Read,
    blobs: &[Blob],
    max: u64,
    totals: &Totals,
    tx: &mpsc::SyncSender<(usize, Vec<u8>)>,
) -> anyhow::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    let mut header = String::new();
    for (index, blob) in blobs.iter().enumerate() {
        header.clear();
        if reader.read_line(&mut header)? == 0 {
            anyhow::bail!("git cat-file ended early");
        }
        // "<id> <type> <size>" or "<id> missing"
        let mut parts = header.split_whitespace();
        let (Some(_), Some(kind), Some(size)) = (parts.next(), parts.next(), parts.next()) else {
            totals.unreadable.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let size: u64 = size.parse().context("git cat-file: bad size")?;
        totals.files.fetch_add(1, Ordering::Relaxed);
        if kind != "blob" || size > max {
            std::io::copy(&mut (&mut reader).take(size + 1), &mut std::io::sink())?;
            if kind == "blob" {
                count_skip(
                    totals,
                    SkipReason::TooLarge {
                        bytes: size,
                        limit: max,
                    },
                    &format!("{}:{}", blob.commit, blob.path),
                );
            }
            continue;
        }
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        (&mut reader).take(size).read_to_end(&mut data)?;
        let mut newline = [0u8; 1];
        reader.read_exact(&mut newline)?;
        totals.bytes.fetch_add(size, Ordering::Relaxed);
        if tx.send((index, data)).is_err() {
            break;
        }
    }
    Ok(())
}

/// Writes `records` (sorted) in `format`.
fn write_records(
    out: &mut dyn Write,
    format: Format,
    scanner: &Scanner,
    records: &[Record],
) -> std::io::Result<()> {
    match format {
        Format::Text => report::text(out, records),
        Format::Json => report::json_lines(out, records),
        Format::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &report::sarif(scanner.detectors(), records))?;
            writeln!(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::{introduced_blobs, scan_history, scan_paths, Totals};
    use crate::scan::example::expand;
    use crate::scan::report::{self, Record};
    use crate::scan::{Options, Scanner};

    /// `fixtures/scan`, found from this file (the crate root is three levels up).
    fn fixtures() -> PathBuf {
        let root = Path::new(file!())
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        root.join("fixtures/scan")
    }

    fn seed(rel: &str) -> u64 {
        rel.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    }

    /// Copies the fixture templates into `to`, expanded (`dotgit` becomes `.git`).
    fn expand_tree(from: &Path, to: &Path, rel: &str) {
        for entry in std::fs::read_dir(from)
            .expect("fixtures/scan exists")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let target = to.join(if name == "dotgit" {
                ".git"
            } else {
                name.as_str()
            });
            if entry.path().is_dir() {
                std::fs::create_dir_all(&target).expect("mkdir");
                expand_tree(&entry.path(), &target, &rel);
            } else {
                let text = std::fs::read_to_string(entry.path()).expect("text fixture");
                std::fs::write(&target, expand(&text, seed(&rel))).expect("write");
            }
        }
    }

    fn scan_fixtures() -> (tempfile::TempDir, Scanner, Vec<Record>) {
        let dir = tempfile::tempdir().expect("tempdir");
        expand_tree(&fixtures(), dir.path(), "");
        // A binary file with a secret in it: skipped, and counted as skipped.
        let mut binary = b"\x89PNG\r\n\x1a\n\0\0".to_vec();
        binary.extend_from_slice(expand("ghp_{a:30}{c}", 1).as_bytes());
        std::fs::write(dir.path().join("logo.png"), binary).expect("write");
        let scanner = Scanner::new(Options::default());
        let totals = Totals::default();
        let mut records =
            scan_paths(&scanner, &[dir.path().to_path_buf()], 2, &totals).expect("scans");
        records.sort();
        assert_eq!(totals.binary.load(std::sync::atomic::Ordering::Relaxed), 1);
        (dir, scanner, records)
    }

    #[test]
    fn fixture_folder_text_output() {
        let (dir, _, records) = scan_fixtures();
        let mut out = Vec::new();
        report::text(&mut out, &records).expect("writes");
        let prefix = format!("{}/", dir.path().display());
        let text = String::from_utf8_lossy(&out).replace(&prefix, "");
        let mut settings = insta::Settings::clone_current();
        // Crate-independent names: this module also builds outside the gitgate crate.
        settings.set_prepend_module_to_snapshot(false);
        settings.set_description(
            "gitgate scan fixtures/scan (expanded): every planted secret once, in path order; \
             nothing from docs/ (placeholders), .git/, the allowed line or the binary file",
        );
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!("scan_fixtures_text", text));
    }

    #[test]
    fn json_lines_and_sarif_hold_the_required_fields() {
        let (_dir, scanner, records) = scan_fixtures();
        let mut out = Vec::new();
        report::json_lines(&mut out, &records).expect("writes");
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out)
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), records.len());
        for l in &lines {
            for key in [
                "path",
                "line",
                "column",
                "detector",
                "description",
                "preview",
                "fingerprint",
            ] {
                assert!(l.get(key).is_some(), "{key} missing in {l}");
            }
        }

        let sarif = report::sarif(scanner.detectors(), &records);
        let text = serde_json::to_string(&sarif).expect("serializes");
        let sarif: serde_json::Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(sarif["version"], "2.1.0");
        assert!(sarif["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("sarif-2.1.0")));
        let run = &sarif["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "gitgate");
        let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
        let results = run["results"].as_array().expect("results");
        assert_eq!(results.len(), records.len());
        for r in results {
            let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rules[index]["id"], r["ruleId"]);
            assert!(r["message"]["text"].as_str().is_some());
            let location = &r["locations"][0]["physicalLocation"];
            assert!(location["artifactLocation"]["uri"].as_str().is_some());
            assert!(location["region"]["startLine"]
                .as_u64()
                .is_some_and(|l| l >= 1));
        }
        let mut ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
        let before = ids.len();
        ids.dedup();
        assert_eq!(
            ids.len(),
            before,
            "rules are the detectors that fired, once each"
        );
    }

    #[test]
    fn a_secret_in_several_places_is_reported_once_with_the_others_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = expand("ghp_{a:30}{c}", 7);
        let other = expand("ghp_{a:30}{c}", 8);
        for (name, text) in [
            ("a.env", format!("GITHUB_TOKEN={token}\n")),
            ("b/c.yml", format!("x: 1\ntoken: {token}\n")),
            ("d.sh", format!("export GH={token}\nexport GH2={other}\n")),
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        let scanner = Scanner::new(Options::default());
        let mut records = scan_paths(&scanner, &[dir.path().to_path_buf()], 2, &Totals::default())
            .expect("scans");
        records.sort();
        assert_eq!(records.len(), 4, "every place is a finding: {records:?}");
        let deduped = report::dedupe(records.clone());
        assert_eq!(deduped.len(), 2, "two distinct secrets: {deduped:?}");
        let first = &deduped[0];
        assert!(first.finding.path.ends_with("a.env"), "{first:?}");
        let also: Vec<(String, u32)> = first
            .also
            .iter()
            .map(|p| (p.path.rsplit('/').next().unwrap_or("").to_string(), p.line))
            .collect();
        assert_eq!(also, [("c.yml".to_string(), 2), ("d.sh".to_string(), 1)]);
        assert!(deduped[1].also.is_empty());

        let mut out = Vec::new();
        report::json_lines(&mut out, &deduped).expect("writes");
        let text = String::from_utf8_lossy(&out);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        assert_eq!(lines[0]["also"].as_array().map(Vec::len), Some(2));
        assert_eq!(lines[0]["also"][1]["line"], 1);
        assert!(lines[1].get("also").is_none());
        assert!(!text.contains(&token), "values never printed");

        let mut out = Vec::new();
        report::text(&mut out, &deduped).expect("writes");
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.lines().next().is_some_and(|l| l.contains("[also at ")
                && l.contains("c.yml:2")
                && l.contains("d.sh:1")),
            "{text}"
        );

        let sarif = report::sarif(scanner.detectors(), &deduped);
        let related = sarif["runs"][0]["results"][0]["relatedLocations"]
            .as_array()
            .map(Vec::len);
        assert_eq!(related, Some(2));
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    #[test]
    fn history_scans_report_the_commit_that_introduced_the_blob() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path();
        git(repo, &["init", "-q", "-b", "main"]);
        let token = expand("ghp_{a:30}{c}", 4);
        std::fs::write(repo.join("a b.env"), format!("GITHUB_TOKEN={token}\n")).expect("write");
        git(repo, &["add", "."]);
        git(repo, &["commit", "-qm", "leak"]);
        let leak = git(repo, &["rev-parse", "HEAD"]);
        std::fs::remove_file(repo.join("a b.env")).expect("rm");
        std::fs::write(repo.join("ok.txt"), "nothing here\n").expect("write");
        git(repo, &["add", "-A"]);
        git(repo, &["commit", "-qm", "fix"]);

        let blobs = introduced_blobs(repo, None).expect("lists");
        assert_eq!(blobs.len(), 2);
        let scanner = Scanner::new(Options::default());
        let totals = Totals::default();
        let records = scan_history(&scanner, repo, None, 2, &totals).expect("scans");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].commit.as_deref(), Some(leak.as_str()));
        assert_eq!(records[0].finding.path, "a b.env");
        assert_eq!(records[0].finding.detector, "github-pat-classic");

        // The secret is gone in the last commit, and a range that skips the leak is clean.
        let clean = scan_history(&scanner, repo, Some("HEAD~1..HEAD"), 1, &totals).expect("scans");
        assert!(clean.is_empty());
        assert!(introduced_blobs(repo, Some("--output=/tmp/x")).is_err());
    }

    #[test]
    fn baselines_accept_json_lines_and_bare_fingerprints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("baseline.jsonl");
        let fp = "a".repeat(64);
        std::fs::write(&file, format!("{{\"fingerprint\": \"{fp}\"}}\n\n{fp}\n")).expect("write");
        assert_eq!(
            super::baseline(&file).expect("parses"),
            vec![fp.clone(), fp]
        );
        std::fs::write(&file, "not a fingerprint\n").expect("write");
        assert!(super::baseline(&file).is_err());
    }
}
