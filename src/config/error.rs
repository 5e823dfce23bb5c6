//! Why a config file was refused: always the file, the line and the key at fault.

use std::fmt;
use std::path::PathBuf;

/// A config file that cannot be used.
///
/// Display: `FILE:LINE: [table] key: problem`, e.g.
/// `gitgate.toml:12: [[upstream]] url: unsupported scheme "ftp" (expected ...)`, or
/// `gitgate.toml:3: [server] unknown key "htp_listen"`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The config file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}: TOML syntax error: {message}", file.display())]
    Syntax {
        /// The config file.
        file: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// The parser's explanation.
        message: String,
    },
    /// The file is TOML, but a table or value is wrong.
    #[error("{}:{line}: {at}{problem}", file.display())]
    Invalid {
        /// The config file.
        file: PathBuf,
        /// 1-based line of the offending key, value or table header.
        line: usize,
        /// The table and key at fault.
        at: Location,
        /// What is wrong with it (boxed to keep `Result<_, ConfigError>` small).
        #[source]
        problem: Box<Problem>,
    },
}

impl ConfigError {
    /// The 1-based line at fault, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { line, .. } | ConfigError::Invalid { line, .. } => Some(*line),
        }
    }
}

/// Where in the document a problem is: a table (`[server]`, `[[upstream]]`) and maybe a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The table as written in a header (`[server]`, `[[rule]]`), empty for the top level.
    pub table: String,
    /// The key within that table, when the problem is a value.
    pub key: Option<String>,
}

impl fmt::Display for Location {
    // Renders as a prefix: "[t] key: ", "[t] " or "key: ".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.table.is_empty() {
            write!(f, "{} ", self.table)?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        Ok(())
    }
}

/// What is wrong with a table or value.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// A key the table does not have.
    #[error("unknown key \"{key}\"")]
    UnknownKey {
        /// The key as written.
        key: String,
    },
    /// A top-level table the config does not have.
    #[error("unknown table [{name}]")]
    UnknownTable {
        /// The table name as written.
        name: String,
    },
    /// A required key is absent.
    #[error("missing key \"{key}\"{hint}")]
    MissingKey {
        /// The absent key.
        key: String,
        /// Why it is needed (empty, or starting with a space).
        hint: &'static str,
    },
    /// The value has the wrong TOML type (the deserializer's wording).
    #[error("{message}")]
    WrongType {
        /// E.g. "invalid type: integer `5`, expected a string".
        message: String,
    },
    /// An upstream URL whose scheme the gateway cannot relay to.
    #[error("unsupported scheme \"{scheme}\" (expected file://, http://, https:// or ssh://)")]
    UnsupportedScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// A URL that does not parse or is not acceptable here.
    #[error("invalid URL \"{value}\": {reason}")]
    BadUrl {
        /// The value as written.
        value: String,
        /// Why.
        reason: String,
    },
    /// A listen address that is not `IP:PORT`.
    #[error("invalid address \"{value}\" (expected IP:PORT, e.g. 127.0.0.1:8080)")]
    BadAddress {
        /// The value as written.
        value: String,
    },
    /// Two listeners on the same address.
    #[error("{addr} is also used by {other}")]
    SameAddress {
        /// The address.
        addr: std::net::SocketAddr,
        /// The other key using it.
        other: &'static str,
    },
    /// A SHA-256 that is not 64 hex digits.
    #[error("expected a SHA-256 as 64 hex digits, got {got}")]
    BadSha256 {
        /// What was found instead ("12 characters", "a non-hex character").
        got: String,
    },
    /// An empty string or list where something is needed.
    #[error("must not be empty")]
    Empty,
    /// A line break or other control character in a name or message.
    #[error("must not contain line breaks or other control characters")]
    ControlCharacter,
    /// A name with characters outside `[A-Za-z0-9._-]`, or `.`/`..`.
    #[error("invalid name \"{name}\" (expected letters, digits, '.', '_' or '-', not only dots)")]
    BadName {
        /// The name as written.
        name: String,
    },
    /// A name (or key) already used by an earlier entry.
    #[error("duplicate {what} \"{value}\" (first at line {first_line})")]
    Duplicate {
        /// What is duplicated ("name", "sha256", "public key").
        what: &'static str,
        /// The duplicated value (a hash or key is shortened).
        value: String,
        /// 1-based line of the first occurrence.
        first_line: usize,
    },
    /// `password_env` names an unset variable.
    #[error("environment variable \"{var}\" is not set")]
    EnvNotSet {
        /// The variable.
        var: String,
    },
    /// `password_env` names an empty variable.
    #[error("environment variable \"{var}\" is empty")]
    EnvEmpty {
        /// The variable.
        var: String,
    },
    /// `password_env` names a variable that is not UTF-8.
    #[error("environment variable \"{var}\" is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable.
        var: String,
    },
    /// `password_file` cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    PasswordFile {
        /// The resolved path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `password_file` is empty (or only a line break).
    #[error("{} is empty", path.display())]
    PasswordFileEmpty {
        /// The resolved path.
        path: PathBuf,
    },
    /// Two keys that exclude each other are both set.
    #[error("cannot be combined with {other}")]
    Conflict {
        /// The other key.
        other: &'static str,
    },
    /// A key that needs another one, which is absent.
    #[error("needs {other} too")]
    Requires {
        /// The absent key.
        other: &'static str,
    },
    /// An upstream key that does not apply to this kind of upstream.
    #[error("only for {kind} upstreams")]
    WrongUpstreamKind {
        /// `http(s)://` or `ssh://`.
        kind: &'static str,
    },
    /// A glob that does not compile.
    #[error("invalid glob \"{glob}\": {reason}")]
    BadGlob {
        /// The glob as written.
        glob: String,
        /// The compiler's explanation.
        reason: String,
    },
    /// A file named by the config that cannot be read or used.
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// Why (cannot read, line N: ..., not a gitleaks config: ...).
        reason: String,
    },
    /// A value outside a fixed set of words.
    #[error("invalid value \"{value}\" (expected {expected})")]
    BadChoice {
        /// The value as written.
        value: String,
        /// The accepted values, for the message.
        expected: &'static str,
    },
    /// An SSH public key that is not `ALGORITHM BASE64 [COMMENT]`.
    #[error("invalid SSH public key: {reason}")]
    BadPublicKey {
        /// Why.
        reason: String,
    },
    /// A number outside its range.
    #[error("{value} is out of range (expected {min} to {max})")]
    OutOfRange {
        /// The value as written.
        value: i64,
        /// The smallest accepted value.
        min: i64,
        /// The largest accepted value.
        max: i64,
    },
    /// A rule with neither `action` nor `hide_refs` does nothing.
    #[error("needs \"action\" or \"hide_refs\" (a rule without either does nothing)")]
    RuleWithoutEffect,
    /// A condition (or message) on a rule without `action`, which only hides refs.
    #[error("has no effect without \"action\" (hide_refs applies by subjects and repos alone)")]
    NeedsAction,
    /// `refs`, `paths` or a commit/blob condition on a rule whose `ops` has `fetch`.
    #[error(
        "cannot be combined with ops \"fetch\": a fetch is decided per repository \
         (give \"fetch\" a rule of its own; hide_refs hides refs)"
    )]
    NotForFetch,
    /// `action = "approve"` on a rule whose `ops` has `fetch`.
    #[error("\"approve\" cannot apply to ops \"fetch\" (a fetch cannot be held for approval)")]
    ApproveFetch,
    /// A regular expression that does not compile.
    #[error("invalid regex \"{regex}\": {reason}")]
    BadRegex {
        /// The regex as written.
        regex: String,
        /// The compiler's explanation, on one line.
        reason: String,
    },
}
