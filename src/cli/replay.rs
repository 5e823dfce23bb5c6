//! `gitgate replay ID`: the timeline of one session or operation, read from the record:
//! who did what when, refs old -> new with op and decision, the commits with author and
//! subject, and the files changed with +/- line counts.
//!
//! Line counts come from the kept pack: it is indexed into a temporary repository whose
//! alternate is the upstream's history (the repository itself for `file://` upstreams, the
//! mirror under `state_dir/mirrors` otherwise), then `git diff-tree --numstat` runs per
//! commit. When that history lacks the old blobs (mirrors are blobless) or the pack was
//! pruned, the files are listed without counts.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Args;
use serde_json::{json, Value};

use super::audit::{clean, open_config, ref_line, verb, Format};
use super::{Outcome, UsageError};
use crate::audit::{Audit, LogFilter, RecordKind, StoredRecord};
use crate::config::{Config, UpstreamTarget};

/// `gitgate replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// An operation id or a session id.
    pub id: String,
    /// The configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileChange {
    path: String,
    /// Lines added and deleted; `None` when unknown (no history) or binary.
    counts: Option<(u64, u64)>,
    binary: bool,
}

/// Runs `gitgate replay`.
pub fn run(args: &ReplayArgs) -> anyhow::Result<Outcome> {
    let config = super::audit::load(&args.config)?;
    let audit = open_config(&config)?;
    let records = gather(&audit, &args.id)?;
    if records.is_empty() {
        return Err(
            UsageError(format!("no operation or session {} in the record", args.id)).into(),
        );
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let session = records.iter().all(|r| r.id != args.id);
    if session && args.format == Format::Text {
        writeln!(
            out,
            "session {} ({} records)",
            clean(&args.id),
            records.len()
        )?;
    }
    for r in &records {
        let files = if r.kind == RecordKind::Operation.as_str() {
            files_changed(&config, &audit, r)
        } else {
            Vec::new()
        };
        match args.format {
            Format::Json => writeln!(out, "{}", event_json(r, &files))?,
            Format::Text => write!(out, "{}", event_text(r, &files))?,
        }
    }
    out.flush()?;
    Ok(Outcome::Success)
}

/// The records of operation `id` (with the results and decisions linked to it), or of
/// session `id`; oldest first.
fn gather(audit: &Audit, id: &str) -> anyhow::Result<Vec<StoredRecord>> {
    let mut records = Vec::new();
    if let Some(r) = audit.record(id)? {
        if let Some(op) = r
            .columns
            .op
            .as_deref()
            .and_then(|op| audit.record(op).ok().flatten())
        {
            records.push(op);
        }
        records.push(r);
    } else {
        records = audit.log(&LogFilter {
            session: Some(id.to_string()),
            ..LogFilter::default()
        })?;
    }
    let ops: Vec<String> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Operation.as_str())
        .map(|r| r.id.clone())
        .collect();
    for op in ops {
        records.extend(audit.log(&LogFilter {
            op: Some(op),
            ..LogFilter::default()
        })?);
    }
    let mut seen = HashSet::new();
    records.retain(|r| seen.insert(r.seq));
    records.sort_by_key(|r| r.seq);
    Ok(records)
}

fn event_json(r: &StoredRecord, files: &[FileChange]) -> Value {
    let v = r.value();
    if r.kind != RecordKind::Operation.as_str() {
        return r.to_json();
    }
    let push = v.get("push").cloned().unwrap_or(Value::Null);
    let files: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({
                "path": f.path,
                "added": f.counts.map(|c| c.0),
                "deleted": f.counts.map(|c| c.1),
                "binary": f.binary,
            })
        })
        .collect();
    let field = |name: &str| v.get(name).cloned().unwrap_or(Value::Null);
    json!({
        "seq": r.seq,
        "kind": r.kind,
        "id": r.id,
        "time": r.time,
        "session": field("session"),
        "identity": field("identity"),
        "auth": field("auth"),
        "client": field("client"),
        "transport": field("transport"),
        "operation": verb(&v),
        "repo": field("repo"),
        "service": field("service"),
        "decision": field("decision"),
        "reason": field("reason"),
        "refs": v.get("refs").cloned().unwrap_or_else(|| json!([])),
        "commits": push.get("commits").cloned().unwrap_or_else(|| json!([])),
        "files": files,
        "findings": push.get("findings").cloned().unwrap_or_else(|| json!([])),
        "fetch": field("fetch"),
        "pack": field("pack"),
    })
}

fn event_text(r: &StoredRecord, files: &[FileChange]) -> String {
    let v = r.value();
    let s = |name: &str| clean(v.get(name).and_then(Value::as_str).unwrap_or("-"));
    let mut out = String::new();
    if r.kind != RecordKind::Operation.as_str() {
        out.push_str(&format!("{}  {} {}", r.time, clean(&r.kind), clean(&r.id)));
        if let Some(op) = &r.columns.op {
            out.push_str(&format!(" (op {})", clean(op)));
        }
        if let Some(unpack) = v.get("unpack").and_then(Value::as_str) {
            out.push_str(&format!("  unpack {}", clean(unpack)));
        }
        if let Some(sent) = v.get("pack_sent") {
            out.push_str(&format!("  {}", super::audit::pack_sent_text(sent)));
            if v.get("complete").and_then(Value::as_bool) == Some(false) {
                out.push_str(" (incomplete)");
            }
        }
        for rr in v
            .get("refs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ok = rr.get("ok").and_then(Value::as_bool) == Some(true);
            let name = clean(rr.get("ref").and_then(Value::as_str).unwrap_or("-"));
            out.push_str(&format!("\n    {name} {}", if ok { "ok" } else { "ng" }));
            if let Some(reason) = rr.get("reason").and_then(Value::as_str) {
                out.push_str(&format!(" ({})", clean(reason)));
            }
        }
        if let Some(error) = v.get("error").and_then(Value::as_str) {
            out.push_str(&format!("\n    error: {}", clean(error)));
        }
        out.push('\n');
        return out;
    }
    out.push_str(&format!(
        "{}  {} {}  by {} ({}, {}, {})  {}  [{}]\n",
        r.time,
        verb(&v),
        s("repo"),
        s("identity"),
        s("auth"),
        s("transport"),
        s("client"),
        s("decision"),
        clean(&r.id)
    ));
    if let Some(reason) = v.get("reason").and_then(Value::as_str) {
        out.push_str(&format!("    reason: {}\n", clean(reason)));
    }
    if let Some(fetch) = v.get("fetch") {
        let wants = fetch
            .get("wants")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let haves = fetch.get("haves").and_then(Value::as_u64).unwrap_or(0);
        out.push_str(&format!("    wants {wants}, haves {haves}"));
        if let Some(command) = fetch.get("command").and_then(Value::as_str) {
            out.push_str(&format!(", command {}", clean(command)));
        }
        out.push('\n');
    }
    for rf in v
        .get("refs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&format!("    {}\n", ref_line(rf)));
    }
    let push = v.get("push");
    for c in push
        .and_then(|p| p.get("commits"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = |name: &str| clean(c.get(name).and_then(Value::as_str).unwrap_or("-"));
        let id = f("id");
        let short = id.get(..7).unwrap_or(&id);
        out.push_str(&format!(
            "    commit {short}  {}  {}\n",
            f("author"),
            f("subject")
        ));
    }
    if !files.is_empty() {
        out.push_str("    files:\n");
        for file in files {
            let counts = match (file.counts, file.binary) {
                (_, true) => format!("{:>14}", "binary"),
                (Some((a, d)), false) => format!("{:>7} {:>6}", format!("+{a}"), format!("-{d}")),
                (None, false) => format!("{:>14}", "?"),
            };
            out.push_str(&format!("      {counts}  {}\n", clean(&file.path)));
        }
    }
    for finding in push
        .and_then(|p| p.get("findings"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = |name: &str| clean(finding.get(name).and_then(Value::as_str).unwrap_or("-"));
        let line = finding
            .get("line")
            .and_then(Value::as_u64)
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "    finding: {} at {}{line} (fingerprint {})\n",
            f("detector"),
            f("path"),
            f("fingerprint")
        ));
    }
    out
}

/// The files a push changed: from the kept pack and the upstream's history when both are
/// there, else the record's `push.paths` without counts.
fn files_changed(config: &Config, audit: &Audit, r: &StoredRecord) -> Vec<FileChange> {
    let v = r.value();
    let push = v.get("push");
    let recorded: Vec<String> = push
        .and_then(|p| p.get("paths"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    let commits: Vec<String> = push
        .and_then(|p| p.get("commits"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("id").and_then(Value::as_str))
        // Ids go on a git command line: hex only, so none can pass for an option.
        .filter(|id| (4..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect();
    let mut files: BTreeMap<String, FileChange> = BTreeMap::new();
    if !commits.is_empty() && r.columns.pack.is_some() {
        let history = v
            .get("repo")
            .and_then(Value::as_str)
            .and_then(|repo| history_objects(config, repo));
        if let Ok(scratch) = Scratch::new(audit, &r.id, history.as_deref()) {
            for commit in &commits {
                for change in scratch.diff(commit) {
                    merge(&mut files, change);
                }
            }
        }
    }
    for path in recorded {
        files.entry(path.clone()).or_insert(FileChange {
            path,
            counts: None,
            binary: false,
        });
    }
    files.into_values().collect()
}

fn merge(files: &mut BTreeMap<String, FileChange>, change: FileChange) {
    match files.get_mut(&change.path) {
        None => {
            files.insert(change.path.clone(), change);
        }
        Some(known) => {
            known.binary |= change.binary;
            known.counts = match (known.counts, change.counts) {
                (Some((a, d)), Some((a2, d2))) => Some((a + a2, d + d2)),
                _ => None,
            };
        }
    }
}

/// The object folder holding the upstream history of `repo` (`<upstream>/<path>`).
fn history_objects(config: &Config, repo: &str) -> Option<PathBuf> {
    let (name, path) = repo.split_once('/')?;
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return None;
    }
    let upstream = config.upstream(name)?;
    let candidates = match &upstream.target {
        UpstreamTarget::File { root } => vec![root.join(format!("{path}.git")), root.join(path)],
        _ => vec![config
            .server
            .state_dir
            .join("mirrors")
            .join(name)
            .join(format!("{path}.git"))],
    };
    candidates.into_iter().find_map(|dir| {
        [dir.join("objects"), dir.join(".git").join("objects")]
            .into_iter()
            .find(|o| o.is_dir())
    })
}

/// A temporary bare repository holding the kept pack, with the history as alternate.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(audit: &Audit, op_id: &str, history: Option<&Path>) -> anyhow::Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix("gitgate-replay-")
            .tempdir()?;
        let scratch = Scratch { dir };
        if !scratch
            .git()
            .args(["init", "--quiet", "--bare"])
            .status()?
            .success()
        {
            anyhow::bail!("git init failed");
        }
        if let Some(objects) = history {
            let alternates = scratch.dir.path().join("objects/info/alternates");
            std::fs::write(alternates, format!("{}\n", objects.display()))?;
        }
        let mut child = scratch
            .git()
            .args(["index-pack", "--stdin", "--fix-thin"])
            .stdin(Stdio::piped())
            .spawn()?;
        let exported = match child.stdin.take() {
            Some(mut stdin) => audit.export_pack(op_id, &mut stdin).map(|_| ()),
            None => Ok(()),
        };
        let status = child.wait()?;
        exported?;
        if !status.success() {
            anyhow::bail!("git index-pack failed");
        }
        Ok(scratch)
    }

    fn git(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.env("GIT_DIR", self.dir.path())
            .env("GIT_NO_LAZY_FETCH", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_OBJECT_DIRECTORY")
            .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// What `commit` changed against its first parent: with line counts when every blob is
    /// at hand, else names only.
    fn diff(&self, commit: &str) -> Vec<FileChange> {
        let run = |mode: &str| -> Option<Vec<u8>> {
            let out = self
                .git()
                .args([
                    "diff-tree",
                    "-r",
                    "-z",
                    "--no-renames",
                    "--no-commit-id",
                    "--root",
                ])
                .args(["-m", "--first-parent", mode, commit])
                .stdout(Stdio::piped())
                .output()
                .ok()?;
            out.status.success().then_some(out.stdout)
        };
        if let Some(out) = run("--numstat") {
            return parse_numstat(&out);
        }
        run("--name-only")
            .map(|out| {
                out.split(|&b| b == 0)
                    .filter(|p| !p.is_empty())
                    .map(|p| FileChange {
                        path: String::from_utf8_lossy(p).into_owned(),
                        counts: None,
                        binary: false,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `git diff-tree --numstat -z` output: `added TAB deleted TAB path NUL` (`-` for binary).
fn parse_numstat(out: &[u8]) -> Vec<FileChange> {
    out.split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let mut parts = text.splitn(3, '\t');
            let added = parts.next()?;
            let deleted = parts.next()?;
            let path = parts.next()?.to_string();
            let binary = added == "-" && deleted == "-";
            let counts = added.parse().ok().zip(deleted.parse().ok());
            Some(FileChange {
                path,
                counts,
                binary,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numstat_parses_counts_binaries_and_odd_names() {
        let out = b"3\t1\tsrc/a.rs\0-\t-\timg.png\0" as &[u8];
        let mut out = out.to_vec();
        out.extend_from_slice(b"0\t2\twith\ttab\0");
        let files = parse_numstat(&out);
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].counts, Some((3, 1)));
        assert!(files[1].binary && files[1].counts.is_none());
        assert_eq!(files[2].path, "with\ttab");
    }
}
