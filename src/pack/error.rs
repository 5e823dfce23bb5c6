//! [`PackError`]: everything that can go wrong while reading, indexing or writing a pack.

use std::path::PathBuf;
use std::time::Duration;

use gix_hash::ObjectId;

use crate::pack::Kind;

/// Why a pack was refused or could not be processed.
///
/// Every variant but [`PackError::Io`] and [`PackError::Internal`] describes the pushed bytes: the
/// client is at fault ([`PackError::is_input_error`]). No variant carries object content.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Reading or writing a pack, index or output failed on our side.
    #[error("pack i/o failed on {path}")]
    Io {
        /// The file being read or written (empty when writing to a caller's stream).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The pack file is larger than [`Options::max_pack_bytes`](crate::pack::Options::max_pack_bytes).
    #[error("pack is {size} bytes, more than the limit of {limit}")]
    PackTooLarge {
        /// Size of the pack file in bytes.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The data does not start with the `PACK` signature.
    #[error("not a pack: the data does not start with \"PACK\"")]
    BadSignature,
    /// The pack version is neither 2 nor 3.
    #[error("unsupported pack version {version}")]
    UnsupportedVersion {
        /// The version found in the header.
        version: u32,
    },
    /// The header announces more objects than [`Options::max_objects`](crate::pack::Options::max_objects).
    #[error("pack announces {count} objects, more than the limit of {limit}")]
    TooManyObjects {
        /// The object count from the header.
        count: u32,
        /// The configured limit.
        limit: u32,
    },
    /// The header announces more objects than the file could possibly hold.
    #[error("pack announces {count} objects but its {size} bytes can hold at most {possible}")]
    CountExceedsData {
        /// The object count from the header.
        count: u32,
        /// Size of the pack file in bytes.
        size: u64,
        /// The most entries of the smallest valid size that fit.
        possible: u64,
    },
    /// The data ended before all announced entries and the trailing checksum were read.
    #[error("pack is truncated at byte {offset}")]
    Truncated {
        /// Where the data ended.
        offset: u64,
    },
    /// Bytes follow the trailing checksum.
    #[error("pack has {count} unexpected bytes after its trailing checksum")]
    TrailingBytes {
        /// How many bytes follow (at least; counting stops early).
        count: u64,
    },
    /// An entry header cannot be decoded.
    #[error("bad pack entry header at byte {offset}: {reason}")]
    BadEntryHeader {
        /// Offset of the entry in the pack.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An offset-delta points to something that is not an earlier entry of the pack.
    #[error(
        "delta at byte {offset} names base offset {base_offset}, which is not an earlier entry"
    )]
    BadDeltaBase {
        /// Offset of the delta entry.
        offset: u64,
        /// The base offset it names.
        base_offset: u64,
    },
    /// An entry's zlib stream is invalid.
    #[error("invalid zlib data in the entry at byte {offset}")]
    BadZlib {
        /// Offset of the entry in the pack.
        offset: u64,
    },
    /// An entry inflates to a different size than its header declares.
    #[error("entry at byte {offset} declares {declared} bytes but inflates to {actual}{}", if *.actual > *.declared { " or more" } else { "" })]
    SizeMismatch {
        /// Offset of the entry in the pack.
        offset: u64,
        /// The size from the entry header.
        declared: u64,
        /// The inflated size (inflation stops shortly after exceeding `declared`).
        actual: u64,
    },
    /// An entry declares more inflated bytes than [`Options::max_object_bytes`](crate::pack::Options::max_object_bytes)
    /// (a zlib bomb, or simply too large an object).
    #[error(
        "entry at byte {offset} declares {size} inflated bytes, more than the limit of {limit}"
    )]
    ObjectTooLarge {
        /// Offset of the entry in the pack.
        offset: u64,
        /// The declared size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A delta declares a result larger than [`Options::max_object_bytes`](crate::pack::Options::max_object_bytes)
    /// (a delta bomb).
    #[error(
        "delta at byte {offset} declares a {size}-byte result, more than the limit of {limit}"
    )]
    DeltaResultTooLarge {
        /// Offset of the delta entry in the pack.
        offset: u64,
        /// The declared result size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Inflating and resolving all entries would produce more than
    /// [`Options::max_total_bytes`](crate::pack::Options::max_total_bytes).
    #[error(
        "pack inflates to more than {limit} bytes in total (reached {total} at byte {offset})"
    )]
    TotalTooLarge {
        /// Bytes counted so far.
        total: u64,
        /// The configured limit.
        limit: u64,
        /// Offset of the entry that crossed the limit.
        offset: u64,
    },
    /// A delta chain is longer than [`Options::max_delta_depth`](crate::pack::Options::max_delta_depth).
    #[error("delta chain at byte {offset} is {depth} deep, more than the limit of {limit}")]
    DeltaChainTooDeep {
        /// Offset of the delta entry where the limit was crossed.
        offset: u64,
        /// Its depth (1 for a delta against a full object).
        depth: u32,
        /// The configured limit.
        limit: u32,
    },
    /// Processing took longer than [`Options::max_duration`](crate::pack::Options::max_duration).
    #[error("pack processing took longer than {limit:?}")]
    TimeLimitExceeded {
        /// The configured budget.
        limit: Duration,
    },
    /// The trailing checksum does not match the SHA-1 of the pack content.
    #[error("pack checksum mismatch: trailer says {expected}, content hashes to {actual}")]
    ChecksumMismatch {
        /// The checksum stored in the pack trailer.
        expected: ObjectId,
        /// The SHA-1 of the bytes before the trailer.
        actual: ObjectId,
    },
    /// A ref-delta names a base that is neither in the pack nor supplied by a base lookup (a thin pack).
    #[error("delta base {id} is missing: the pack is thin or incomplete")]
    MissingBase {
        /// The base object id.
        id: ObjectId,
    },
    /// A delta cannot be applied to its base (wrong base size, copy out of range, wrong result size).
    #[error("invalid delta: {detail}")]
    BadDelta {
        /// What gix-pack reported (no object content).
        detail: String,
    },
    /// The same object appears twice in the pack (`git index-pack --strict` refuses this too).
    #[error("object {id} appears more than once in the pack")]
    DuplicateObject {
        /// The duplicated object.
        id: ObjectId,
    },
    /// A commit, tree or tag does not parse or violates git's object rules.
    #[error("invalid {kind} {id}: {reason}")]
    InvalidObject {
        /// The object id.
        id: ObjectId,
        /// Its kind.
        kind: Kind,
        /// What is wrong (no object content).
        reason: String,
    },
    /// [`write_subset`](crate::pack::write_subset) was asked for an object the pack does not hold.
    #[error("object {id} is not in the pack")]
    ObjectNotFound {
        /// The requested object id.
        id: ObjectId,
    },
    /// gix-pack failed for a reason not covered above.
    #[error("pack processing failed: {detail}")]
    Internal {
        /// The error chain as text.
        detail: String,
    },
}

impl PackError {
    /// True when the pushed bytes are at fault (malformed, inconsistent or over a limit), false for
    /// failures on our side ([`PackError::Io`], [`PackError::Internal`]).
    pub fn is_input_error(&self) -> bool {
        !matches!(self, PackError::Io { .. } | PackError::Internal { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PackError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn internal(err: &gix_error::Error) -> Self {
        PackError::Internal {
            detail: format!("{err:?}"),
        }
    }
}
