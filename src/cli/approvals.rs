//! `gitgate approvals list|approve|deny`: decide held updates, also while `serve` runs.
//!
//! Deciding writes the approvals table of the store (a short SQLite transaction, which the
//! running gateway's WAL allows). The decision goes into the chained record too: the running
//! gateway appends it within a second (it alone holds the writer lock); when no gateway
//! runs, this verb takes the lock and appends it itself.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Args, Subcommand, ValueEnum};

use super::{Outcome, UsageError};
use crate::approval::{Approval, ApprovalError, Approvals, Status, Verdict};
use crate::audit::{Audit, AuditError, AuditOptions};

/// `gitgate approvals ...`.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Pending and decided approvals, oldest first.
    List(ListArgs),
    /// Approve a held update.
    Approve(DecideArgs),
    /// Deny a held update.
    Deny(DecideArgs),
}

/// Output formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per approval.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `approvals list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The gateway's configuration file.
    #[arg(long, short)]
    config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Only approvals with this status (pending, approved, denied, expired).
    #[arg(long)]
    status: Option<String>,
}

/// `approvals approve|deny`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The approval id (from the push's `remote:` lines or `approvals list`).
    id: String,
    /// The gateway's configuration file.
    #[arg(long, short)]
    config: PathBuf,
    /// Who decides (default: $USER). The requester cannot decide their own update.
    #[arg(long)]
    by: Option<String>,
    /// A comment, shown to the pusher and recorded.
    #[arg(long)]
    comment: Option<String>,
}

/// Runs `gitgate approvals ...`.
pub fn run(command: ApprovalsCommand) -> anyhow::Result<Outcome> {
    match command {
        ApprovalsCommand::List(args) => list(&args),
        ApprovalsCommand::Approve(args) => decide(&args, Verdict::Approve),
        ApprovalsCommand::Deny(args) => decide(&args, Verdict::Deny),
    }
}

fn open(config: &crate::config::Config) -> anyhow::Result<Approvals> {
    Approvals::open(&config.server.state_dir).map_err(|e| UsageError(e.to_string()).into())
}

fn list(args: &ListArgs) -> anyhow::Result<Outcome> {
    let config = super::audit::load(&args.config)?;
    let status = match args.status.as_deref() {
        None => None,
        Some(s) => Some(Status::from_name(s).ok_or_else(|| {
            UsageError(format!(
                "--status {s}: expected pending, approved, denied or expired"
            ))
        })?),
    };
    let store = open(&config)?;
    // Overdue approvals read as expired even when no gateway runs to expire them.
    let now = crate::audit::record::now();
    for mut a in store.list(None)? {
        if a.status == Status::Pending && a.expires <= now {
            a.status = Status::Expired;
        }
        if status.is_some_and(|s| s != a.status) {
            continue;
        }
        match args.format {
            Format::Json => println!("{}", serde_json::to_string(&a)?),
            Format::Text => println!("{}", line(&a)),
        }
    }
    Ok(Outcome::Success)
}

fn line(a: &Approval) -> String {
    let short = |id: &str| id.chars().take(12).collect::<String>();
    let mut text = format!(
        "{}  {:<8}  {}  {}  {}  {}..{}  rule {}  asked {}",
        a.id,
        a.status.as_str(),
        a.identity,
        a.repo,
        a.refname,
        short(&a.old),
        short(&a.new),
        a.rule,
        a.created
    );
    if let Some(by) = &a.by {
        text.push_str(&format!("  by {by}"));
    }
    if let Some(c) = a.comment.as_deref().filter(|c| !c.is_empty()) {
        text.push_str(&format!(": {c:?}"));
    }
    if let Some(o) = a.outcome {
        text.push_str(&format!("  ({})", o.as_str()));
    }
    text
}

fn decide(args: &DecideArgs, verdict: Verdict) -> anyhow::Result<Outcome> {
    let config = super::audit::load(&args.config)?;
    if !crate::approval::valid_id(&args.id) {
        return Err(UsageError(
            ApprovalError::BadId {
                id: args.id.clone(),
            }
            .to_string(),
        )
        .into());
    }
    let by = match &args.by {
        Some(b) => b.clone(),
        None => std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "cli".into()),
    };
    let store = open(&config)?;
    let decided = store.decide(
        &args.id,
        verdict,
        &by,
        args.comment.as_deref(),
        SystemTime::now(),
    );
    let approval = match decided {
        Ok(a) => a,
        Err(e @ (ApprovalError::SelfApproval { .. } | ApprovalError::AlreadyDecided { .. })) => {
            eprintln!("gitgate: {e}");
            return Ok(Outcome::Found);
        }
        Err(
            e @ (ApprovalError::Unknown { .. }
            | ApprovalError::BadId { .. }
            | ApprovalError::BadApprover),
        ) => return Err(UsageError(e.to_string()).into()),
        Err(e) => return Err(e.into()),
    };
    println!(
        "{} {} ({} in {}, {}..{}) by {}",
        approval.status,
        approval.id,
        approval.refname,
        approval.repo,
        approval.old,
        approval.new,
        by
    );
    // Into the chain: ourselves when no gateway holds the record, else the gateway does.
    let options = AuditOptions::from_config(&config.audit);
    match Audit::open(&config.server.state_dir, &options) {
        Ok(audit) => {
            crate::session::record_decision(&audit, &approval)?;
            store.mark_recorded(&approval.id)?;
            if approval.status == Status::Approved && config.approval.apply_on_approve {
                println!("recorded; no gateway is running: it applies the update when it starts");
            } else {
                println!("recorded");
            }
        }
        Err(AuditError::Locked { .. }) => {
            println!("the running gateway records the decision and acts on it");
        }
        Err(e) => {
            eprintln!(
                "gitgate: warning: the decision is stored but not yet recorded ({e}); the \
                 gateway records it when it starts"
            );
        }
    }
    Ok(Outcome::Success)
}
