//! Git wire formats: what the gateway reads from clients and upstreams, and writes back.
//!
//! Pure code: functions take bytes (or an `AsyncRead` for the one streaming reader) and return
//! values. No network I/O, no logging, no global configuration. Every byte is treated as
//! hostile: parsers return [`ProtoError`] and never panic, and every unbounded quantity has a
//! limit in an `Options`-style struct with a documented default.
//!
//! The references in comments are git's own documents (`man 5 gitprotocol-pack`,
//! `gitprotocol-v2`, `gitprotocol-http`, `gitprotocol-capabilities`, `gitprotocol-common`).
//!
//! # Layout
//! - [`pktline`]: pkt-line framing (`0000` flush, `0001` delim, `0002` response end), a sync
//!   decoder, encoders and the async [`PktReader`].
//! - [`sideband`]: side-band / side-band-64k multiplexing (bands 1, 2, 3).
//! - [`oid`]: [`ObjectId`] (SHA-1 and SHA-256, hex on the wire).
//! - [`refname`]: ref name validation, as `git check-ref-format`.
//! - [`capabilities`]: the capability list of v0/v1 (`name` or `name=value`, space separated).
//! - [`advertisement`]: the smart-HTTP service header and the streaming rewrite of an upstream's
//!   ref/capability advertisement (v0/v1 and v2).
//! - [`receive`]: the receive-pack reference update request (commands, push options).
//! - [`report`]: report-status (v1 and v2): parse the upstream's, merge, encode.
//! - [`upload`]: upload-pack requests (v0/v1 negotiation, v2 commands) summarised for the record.
//! - [`packsent`]: measures the pack inside an upload-pack answer as it passes (for the record).

pub mod advertisement;
pub mod capabilities;
pub mod oid;
pub mod packsent;
pub mod pktline;
pub mod receive;
pub mod refname;
pub mod report;
pub mod sideband;
pub mod upload;

pub use advertisement::{AdvertisementFilter, CapabilityEdit, Service};
pub use capabilities::{Capabilities, Capability};
pub use oid::{HashKind, ObjectId};
pub use pktline::{Decoded, OwnedPkt, PktError, PktLine, PktReader};

pub use receive::{parse_update_request, read_update_request, Command, Limits, UpdateRequest};
pub use refname::validate_ref_name;
pub use report::{parse_response, RefStatus, Report, Unpack, UpstreamResponse};

pub use sideband::Band;
pub use upload::{parse_upload_request, UploadCommand, UploadLimits, UploadRequest};

/// The wire protocol version a client asked for.
///
/// Version 1 is version 0 with a leading `version 1` line in the advertisement; both share
/// every request format (gitprotocol-pack). Push never uses version 2: git falls back to v0
/// for receive-pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum ProtocolVersion {
    /// The original protocol (no version line).
    #[default]
    V0,
    /// Version 1: v0 with a `version 1` line first.
    V1,
    /// Version 2 (gitprotocol-v2): capability advertisement, then one command per request.
    V2,
}

impl ProtocolVersion {
    /// The version requested by a `Git-Protocol` HTTP header or `GIT_PROTOCOL` environment
    /// value: a `:`-separated list of `key=value` items.
    ///
    /// Like git's `determine_protocol_version_server`, the highest recognised `version=N`
    /// wins and unknown keys or versions are ignored (gitprotocol-pack, "Extra Parameters").
    pub fn from_git_protocol(value: &str) -> Self {
        value
            .split(':')
            .filter_map(|item| match item.strip_prefix("version=")? {
                "0" => Some(Self::V0),
                "1" => Some(Self::V1),
                "2" => Some(Self::V2),
                _ => None,
            })
            .max()
            .unwrap_or_default()
    }

    /// The value to forward upstream as `Git-Protocol` / `GIT_PROTOCOL` (none for v0). Only
    /// the version travels: other client parameters are not forwarded.
    pub fn parameter(self) -> Option<&'static str> {
        match self {
            Self::V0 => None,
            Self::V1 => Some("version=1"),
            Self::V2 => Some("version=2"),
        }
    }

    /// The version number.
    pub fn number(self) -> u8 {
        match self {
            Self::V0 => 0,
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }

    /// Whether requests use the v0/v1 formats (everything but [`ProtocolVersion::V2`]).
    pub fn is_v0_or_v1(self) -> bool {
        self != Self::V2
    }
}

/// What went wrong reading or writing a git wire format.
///
/// Variants carry the facts (lengths, limits, an excerpt of the offending bytes bounded to
/// [`EXCERPT_BYTES`] with invalid UTF-8 replaced), never a whole input.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The pkt-line framing was invalid, or reading it failed.
    #[error(transparent)]
    Pkt(#[from] PktError),
    /// The input ended before the named part was complete.
    #[error("input ended inside {context}")]
    Truncated {
        /// Which part of the message was incomplete.
        context: &'static str,
    },
    /// A special packet (flush, delim, response end) or data packet appeared where the grammar
    /// does not allow it.
    #[error("unexpected {found} in {context}")]
    UnexpectedPacket {
        /// Which part of the message was being read.
        context: &'static str,
        /// The kind of packet found (`flush`, `delim`, `response-end`, `data`).
        found: &'static str,
    },
    /// A line that the grammar does not allow at this point.
    #[error("unexpected line in {context}: {line:?}")]
    UnexpectedLine {
        /// Which part of the message was being read.
        context: &'static str,
        /// An excerpt of the line.
        line: String,
    },
    /// A line longer than the configured limit.
    #[error("line of {length} bytes exceeds the limit of {limit}")]
    LineTooLong {
        /// The length of the line in bytes.
        length: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// More items of one kind than the configured limit.
    #[error("more than {limit} {what}")]
    TooMany {
        /// What was counted (`commands`, `push options`, ...).
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The whole message is larger than the configured limit.
    #[error("message exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Not a hex object id of 40 (SHA-1) or 64 (SHA-256) characters.
    #[error("bad object id {id:?}")]
    BadObjectId {
        /// An excerpt of the text.
        id: String,
    },
    /// An object id of the wrong hash kind for the negotiated `object-format`.
    #[error("object id is {found}, but the object format is {expected}")]
    ObjectFormatMismatch {
        /// The negotiated kind.
        expected: HashKind,
        /// The kind of the id found.
        found: HashKind,
    },
    /// An `object-format` capability naming an unknown hash.
    #[error("unknown object format {name:?}")]
    UnknownObjectFormat {
        /// An excerpt of the name.
        name: String,
    },
    /// A ref name that `git check-ref-format` would refuse (or that is not under `refs/`).
    #[error("bad ref name {name:?}: {reason}")]
    BadRefName {
        /// An excerpt of the name.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A reference update command that is not `<old-oid> SP <new-oid> SP <refname>`.
    #[error("malformed command {line:?}: {reason}")]
    BadCommand {
        /// An excerpt of the line.
        line: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A capability that is not `name` or `name=value` with printable characters.
    #[error("bad capability {capability:?}")]
    BadCapability {
        /// An excerpt of the capability.
        capability: String,
    },
    /// Capabilities (after a NUL) on a command line other than the first.
    #[error("capabilities on command line {line_number}; only the first line may carry them")]
    MisplacedCapabilities {
        /// The 1-based number of the command line.
        line_number: usize,
    },
    /// Two commands for the same ref in one push.
    #[error("more than one command for {name}")]
    DuplicateRef {
        /// The ref name.
        name: String,
    },
    /// A signed push (`push-cert`): its commands live inside the certificate.
    #[error("signed pushes (push-cert) are not supported")]
    PushCertUnsupported,
    /// A push option that is not valid UTF-8 or contains a NUL or an inner LF (git's
    /// send-pack refuses to send those).
    #[error("bad push option {option:?}")]
    BadPushOption {
        /// An excerpt of the option.
        option: String,
    },
    /// A sideband packet without a band byte, or with a band other than 1, 2 or 3.
    #[error("bad sideband packet: {reason}")]
    BadSideband {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A report-status line that is not `unpack`, `ok`, `ng` or `option`.
    #[error("bad report-status line {line:?}")]
    BadReport {
        /// An excerpt of the line.
        line: String,
    },
    /// The peer sent an `ERR` packet or an error on sideband 3.
    #[error("remote error: {message}")]
    RemoteError {
        /// An excerpt of the message.
        message: String,
    },
    /// A smart-HTTP service other than `git-upload-pack` and `git-receive-pack`.
    #[error("unknown service {name:?}")]
    UnknownService {
        /// An excerpt of the name.
        name: String,
    },
    /// Bytes after the end of a message that must stand alone.
    #[error("{bytes} bytes after the end of the {context}")]
    TrailingData {
        /// Which message had ended.
        context: &'static str,
        /// How many bytes followed it.
        bytes: usize,
    },
    /// Text to be encoded contains a byte the line format cannot carry (NUL, LF, ...).
    #[error("cannot encode {what}: {reason}")]
    Unencodable {
        /// What was being encoded.
        what: &'static str,
        /// Why it cannot be.
        reason: &'static str,
    },
}

/// The most bytes of an input that an error message quotes.
pub const EXCERPT_BYTES: usize = 100;

/// A bounded, lossy rendering of hostile bytes for error messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let cut = bytes.get(..EXCERPT_BYTES).unwrap_or(bytes);
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < bytes.len() {
        text.push('…');
    }
    text
}

/// The name of a packet kind, for [`ProtoError::UnexpectedPacket`].
pub(crate) fn packet_kind(pkt: &PktLine<'_>) -> &'static str {
    match pkt {
        PktLine::Data(_) => "data",
        PktLine::Flush => "flush",
        PktLine::Delim => "delim",
        PktLine::ResponseEnd => "response-end",
    }
}

#[cfg(test)]
mod tests;
