//! `gitgate audit ...`: read, check and maintain the record (`src/audit`).
//!
//! Every verb but `prune` opens the store read-only, so they all work while `serve` runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use super::{Outcome, UsageError};
use crate::audit::{
    Audit, AuditError, AuditOptions, Head, LogFilter, Selector, StoredRecord, VerifyOptions,
    VerifyOutcome,
};

/// `gitgate audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the recorded operations, oldest first.
    Log(LogArgs),
    /// Check the record's integrity: exit 0 printing `ok N records`, or 1 naming the first
    /// bad record.
    Verify(VerifyArgs),
    /// Write the exact pack a recorded push carried to stdout.
    ExportPack {
        /// The operation's id.
        op_id: String,
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the public key (hex) the record's head is signed with.
    Key {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the current signed head; ship it off the machine to anchor the record.
    Head {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Delete stored packs older than `[audit] keep_packs_days` (not while `serve` runs).
    Prune {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// Output formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    #[default]
    Text,
    /// JSON Lines: one object per line.
    Json,
}

/// A decision to filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecisionArg {
    /// Allowed.
    Allow,
    /// Denied (the operation or one of its refs).
    Deny,
    /// Held for approval.
    Pending,
}

/// `gitgate audit log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Only this identity.
    #[arg(long)]
    pub identity: Option<String>,
    /// Only this repository (`<upstream>/<path>`; `*` globs).
    #[arg(long)]
    pub repo: Option<String>,
    /// Only from this time on: RFC 3339, a date (`2024-06-01`, UTC) or an age (`30m`, `2h`,
    /// `7d`).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<SystemTime>,
    /// Only before this time (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<SystemTime>,
    /// Only this decision (of the operation, or of one of its refs).
    #[arg(long, value_enum)]
    pub decision: Option<DecisionArg>,
    /// Only this session.
    #[arg(long)]
    pub session: Option<String>,
    /// Record kinds to show (`operation`, `result`, `approval`, `decision`, `prune`, or
    /// `all`). Decisions on held updates are shown with the operations by default.
    #[arg(long, value_delimiter = ',', default_value = "operation,decision")]
    pub kind: Vec<String>,
}

/// `gitgate audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// First record to check: a seq or an id (default: the first).
    #[arg(long)]
    pub from: Option<String>,
    /// Last record to check: a seq or an id (default: the newest, and then the signed head
    /// is checked too).
    #[arg(long)]
    pub to: Option<String>,
    /// The public key (hex, from `gitgate audit key`) the head must be signed with; pin it
    /// to detect a replaced key.
    #[arg(long)]
    pub public_key: Option<String>,
    /// A file of heads kept elsewhere (lines containing `gitgate-audit-head`, e.g. a log
    /// sink's export); each must still match the record.
    #[arg(long)]
    pub anchor: Vec<PathBuf>,
}

/// Runs `gitgate audit ...`.
pub fn run(command: AuditCommand) -> anyhow::Result<Outcome> {
    match command {
        AuditCommand::Log(args) => log(&args),
        AuditCommand::Verify(args) => verify(&args),
        AuditCommand::ExportPack { op_id, config } => export_pack(&op_id, &config),
        AuditCommand::Key { config } => {
            let config = load(&config)?;
            let key = crate::audit::public_key(&config.server.state_dir).map_err(usage)?;
            println!("{key}");
            Ok(Outcome::Success)
        }
        AuditCommand::Head { config } => {
            let audit = open(&config)?;
            let head = audit
                .head()?
                .ok_or_else(|| UsageError("audit.head is missing".into()))?;
            println!("{}", head.line());
            Ok(Outcome::Success)
        }
        AuditCommand::Prune { config } => prune(&config),
    }
}

/// Loads the config for a verb that reads local state only (upstream secrets are not read).
pub(super) fn load(path: &Path) -> anyhow::Result<crate::config::Config> {
    Ok(crate::config::load_local(path).map_err(|e| UsageError(e.to_string()))?)
}

/// Opens the store of the config at `path` read-only.
pub(super) fn open(path: &Path) -> anyhow::Result<Audit> {
    let config = load(path)?;
    open_config(&config)
}

pub(super) fn open_config(config: &crate::config::Config) -> anyhow::Result<Audit> {
    let options = AuditOptions {
        read_only: true,
        ..AuditOptions::from_config(&config.audit)
    };
    Audit::open(&config.server.state_dir, &options).map_err(usage)
}

/// Errors about what the user named (no store, no such record) exit 2 with the message.
fn usage(e: AuditError) -> anyhow::Error {
    match e {
        AuditError::NotFound { .. }
        | AuditError::UnknownRecord { .. }
        | AuditError::NoPack { .. }
        | AuditError::PackPruned { .. }
        | AuditError::PackKeyMissing { .. }
        | AuditError::PackKey { .. }
        | AuditError::Locked { .. } => UsageError(e.to_string()).into(),
        e => e.into(),
    }
}

fn log(args: &LogArgs) -> anyhow::Result<Outcome> {
    let audit = open(&args.config)?;
    let all = args.kind.iter().any(|k| k == "all");
    for kind in &args.kind {
        if kind != "all" && crate::audit::RecordKind::from_name(kind).is_none() {
            return Err(UsageError(format!("--kind {kind}: unknown record kind")).into());
        }
    }
    let filter = LogFilter {
        kinds: if all { Vec::new() } else { args.kind.clone() },
        identity: args.identity.clone(),
        repo: args.repo.clone(),
        since: args.since,
        until: args.until,
        decision: args.decision.map(|d| {
            match d {
                DecisionArg::Allow => "allow",
                DecisionArg::Deny => "deny",
                DecisionArg::Pending => "pending",
            }
            .to_string()
        }),
        session: args.session.clone(),
        ..LogFilter::default()
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = None;
    audit.log_each(&filter, &mut |r| {
        let written = match args.format {
            Format::Json => writeln!(out, "{}", r.to_json()),
            Format::Text => writeln!(out, "{}", text_line(&r)),
        };
        if let Err(e) = written {
            failed = Some(e);
            return Ok(false);
        }
        Ok(true)
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    out.flush()?;
    Ok(Outcome::Success)
}

/// One record for people: time, id, who, what, decision, then one line per ref.
pub(super) fn text_line(r: &StoredRecord) -> String {
    let v = r.value();
    let s = |name: &str| clean(v.get(name).and_then(Value::as_str).unwrap_or("-"));
    let mut line = format!("{}  {}", r.time, clean(&r.id));
    if r.kind == "operation" || r.kind == "decision" {
        if r.kind == "decision" {
            line.push_str("  decision");
        }
        line.push_str(&format!(
            "  {}  {}  {} {}  {}",
            s("identity"),
            s("transport"),
            verb(&v),
            s("repo"),
            s("decision")
        ));
        if let Some(reason) = v.get("reason").and_then(Value::as_str) {
            line.push_str(&format!(": {}", clean(reason)));
        }
        for r in v
            .get("refs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            line.push('\n');
            line.push_str(&format!("    {}", ref_line(r)));
        }
    } else {
        line.push_str(&format!("  {}", clean(&r.kind)));
        if let Some(op) = &r.columns.op {
            line.push_str(&format!("  op {}", clean(op)));
        }
        if let Some(d) = &r.columns.decision {
            line.push_str(&format!("  {}", clean(d)));
        }
        if let Some(packs) = v.get("packs").and_then(Value::as_array) {
            line.push_str(&format!("  {} pack(s)", packs.len()));
        }
        if let Some(sent) = v.get("pack_sent") {
            line.push_str(&format!("  {}", pack_sent_text(sent)));
        }
    }
    line
}

/// `pack sent: 1234 bytes, 5 objects, sha256 abcdef012345`.
pub(super) fn pack_sent_text(sent: &Value) -> String {
    let bytes = sent.get("bytes").and_then(Value::as_u64).unwrap_or(0);
    let mut text = format!("pack sent: {bytes} bytes");
    if let Some(objects) = sent.get("objects").and_then(Value::as_u64) {
        text.push_str(&format!(", {objects} objects"));
    }
    let sha = clean(sent.get("sha256").and_then(Value::as_str).unwrap_or("-"));
    text.push_str(&format!(", sha256 {}", sha.get(..12).unwrap_or(&sha)));
    text
}

/// `push` or `fetch`, from the service.
pub(super) fn verb(v: &Value) -> &'static str {
    match v.get("service").and_then(Value::as_str) {
        Some("receive-pack") => "push",
        Some("upload-pack") => "fetch",
        _ => "operation",
    }
}

/// `refs/heads/main  1234567 -> 89abcde  update  deny (reason)`.
pub(super) fn ref_line(r: &Value) -> String {
    let s = |name: &str| clean(r.get(name).and_then(Value::as_str).unwrap_or("-"));
    let short = |name: &str| {
        let id = s(name);
        id.get(..7).map(str::to_string).unwrap_or(id)
    };
    let mut line = format!(
        "{}  {} -> {}  {}  {}",
        s("ref"),
        short("old"),
        short("new"),
        s("op"),
        s("decision")
    );
    if let Some(reason) = r.get("reason").and_then(Value::as_str) {
        line.push_str(&format!(" ({})", clean(reason)));
    }
    line
}

/// `text` with control characters escaped: recorded strings reach a terminal.
pub(super) fn clean(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn verify(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let audit = open(&args.config)?;
    let public_key = args
        .public_key
        .as_deref()
        .map(|k| {
            crate::audit::parse_public_key(k.trim())
                .map_err(|e| UsageError(format!("--public-key: {e}")))
        })
        .transpose()?;
    let mut anchors = Vec::new();
    for path in &args.anchor {
        anchors.extend(read_anchors(path)?);
    }
    let options = VerifyOptions {
        from: args.from.as_deref().map(Selector::parse),
        to: args.to.as_deref().map(Selector::parse),
        public_key,
        anchors,
    };
    match audit.verify(&options).map_err(usage)? {
        VerifyOutcome::Intact { records } => {
            println!("ok {records} records");
            Ok(Outcome::Success)
        }
        VerifyOutcome::Tampered(t) => {
            println!("FAILED: {t}");
            Ok(Outcome::Found)
        }
    }
}

/// The heads in the lines of `path` that mention one.
fn read_anchors(path: &Path) -> anyhow::Result<Vec<Head>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--anchor {}", path.display()))?;
    let mut heads = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if !line.contains("gitgate-audit-head") {
            continue;
        }
        let head = Head::find(line)
            .map_err(|e| UsageError(format!("{}:{}: {e}", path.display(), n + 1)))?;
        heads.push(head);
    }
    Ok(heads)
}

fn export_pack(op_id: &str, config: &Path) -> anyhow::Result<Outcome> {
    let audit = open(config)?;
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    match audit.export_pack(op_id, &mut out) {
        Ok(_) => {
            out.flush()?;
            Ok(Outcome::Success)
        }
        Err(e @ (AuditError::PackCorrupt { .. } | AuditError::PackMissing { .. })) => {
            let _ = out.flush();
            eprintln!("gitgate: {e}");
            Ok(Outcome::Found)
        }
        Err(e) => Err(usage(e)),
    }
}

fn prune(config: &Path) -> anyhow::Result<Outcome> {
    let config = load(config)?;
    let Some(days) = config.audit.keep_packs_days else {
        println!("no [audit] keep_packs_days: packs are kept forever");
        return Ok(Outcome::Success);
    };
    let options = AuditOptions::from_config(&config.audit);
    let audit = Audit::open(&config.server.state_dir, &options).map_err(usage)?;
    let outcome = audit.prune_packs(SystemTime::now())?;
    for sha in &outcome.packs {
        println!("pruned {sha}");
    }
    println!(
        "{} pack(s) older than {days} day(s) pruned",
        outcome.packs.len()
    );
    Ok(Outcome::Success)
}

/// `--since`/`--until`: RFC 3339, a date (UTC midnight), or an age before now (`90s`,
/// `30m`, `2h`, `7d`, `2w`).
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts.into());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp().into())
            .map_err(|e| e.to_string());
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => 0,
    };
    let age = number
        .parse::<u64>()
        .ok()
        .filter(|_| unit_secs > 0)
        .and_then(|n| n.checked_mul(unit_secs))
        .ok_or_else(|| {
            format!("{text:?}: expected RFC 3339, a date (2024-06-01) or an age (30m, 2h, 7d)")
        })?;
    SystemTime::now()
        .checked_sub(Duration::from_secs(age))
        .ok_or_else(|| format!("{text:?}: too long ago"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_three_forms() {
        let t = parse_time("2024-06-01T12:00:00Z").ok();
        let expected = SystemTime::UNIX_EPOCH + Duration::from_secs(1_717_243_200);
        assert_eq!(t, Some(expected));
        let d = parse_time("2024-06-01").ok();
        assert_eq!(d, Some(expected - Duration::from_secs(12 * 3600)));
        let ago = parse_time("2h").ok().and_then(|t| t.elapsed().ok());
        assert!(
            ago.is_some_and(|a| a >= Duration::from_secs(7200) && a < Duration::from_secs(7300))
        );
        for bad in ["", "2x", "h", "yesterday", "99999999999999999999d"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("plain"), "plain");
        assert_eq!(clean("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
    }
}
