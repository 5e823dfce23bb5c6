//! The command line: one file per verb. The only place that uses `anyhow`.
//!
//! Exit codes of every verb: 0 success, 1 "the check found something" (findings, tampering,
//! denied), 2 usage or configuration error.

mod approvals;
mod audit;
mod check;
mod demo;
mod policy;
mod replay;
mod scan;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// gitgate: a gateway between AI coding agents and the Git servers they push to.
#[derive(Debug, Parser)]
#[command(name = "gitgate", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway until SIGINT/SIGTERM.
    Serve {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Create (or reuse) a demo setup and serve it.
    Demo {
        /// The folder to create or reuse.
        #[arg(long, default_value = "./gitgate-demo")]
        dir: PathBuf,
        /// Set the demo up but do not serve it.
        #[arg(long)]
        no_serve: bool,
    },
    /// Validate a configuration file.
    Check {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Scan files and folders, or a git history, for secrets (exit 1 when something is found).
    Scan(scan::ScanArgs),
    /// The record: log, verify, export-pack, key, head, prune.
    Audit {
        /// What to do.
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Held updates: list, approve, deny (also while `serve` runs).
    Approvals {
        /// What to do.
        #[command(subcommand)]
        command: approvals::ApprovalsCommand,
    },
    /// The timeline of one session or operation: refs, commits, files, decisions.
    Replay(replay::ReplayArgs),
    /// Policy tools.
    Policy {
        /// What to do.
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Print the SHA-256 to put in `[[token]] sha256` for a token read from stdin (or a new
    /// random token when --generate is given).
    HashToken {
        /// Generate a new random token and print it with its hash.
        #[arg(long)]
        generate: bool,
    },
}

/// `gitgate policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate the policy fixtures under DIR and print the decisions (exit 1 on a failed
    /// expectation).
    Test {
        /// A scenario folder (gitgate.toml + cases.toml) or a folder of them.
        dir: PathBuf,
    },
}

/// Outcome of a verb that ran to completion.
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: the check found something.
    Found,
}

/// An error that exits with 2 (usage or configuration).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses the command line, runs the verb, maps the result to the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.log_format);
    match run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Found) => ExitCode::from(1),
        Err(e) => {
            eprintln!("gitgate: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Serve { config } => serve::run(&config),
        Command::Demo { dir, no_serve } => demo::run(&dir, !no_serve),
        Command::Check { config } => check::run(&config),
        Command::Scan(args) => scan::run(&args),
        Command::Audit { command } => audit::run(command),
        Command::Replay(args) => replay::run(&args),
        Command::Approvals { command } => approvals::run(command),
        Command::Policy {
            command: PolicyCommand::Test { dir },
        } => policy::test(&dir),
        Command::HashToken { generate } => hash_token(generate),
    }
}

fn hash_token(generate: bool) -> anyhow::Result<Outcome> {
    let token = if generate {
        demo::random_token()
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if token.is_empty() {
        return Err(UsageError("no token on stdin".into()).into());
    }
    if generate {
        println!("token  {token}");
    }
    println!("sha256 {}", crate::identity::token_sha256_hex(&token));
    Ok(Outcome::Success)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GITGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
