//! `audit verify`: recompute the chain, check every record's place, hash and columns, the
//! stored packs, and the signed head; stop at the first bad record.
//!
//! Every record must carry the gateway key's signature, so records appended without the key
//! stand out wherever they are. The head must name a record the store holds, with that
//! record's hash, so deleting the newest records stands out too. The head may lag behind the
//! newest records (read while an append is in flight, or after a crash lost its update):
//! those are covered by their signatures. Records appended while verify runs are followed up
//! to the head read after the scan.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use ed25519_dalek::VerifyingKey;

use super::chain;
use super::head::{self, Head};
use super::packs::Packs;
use super::record::{Columns, RecordKind};
use super::store::{LogFilter, Store, StoredRecord};
use super::AuditError;

/// A record named on the command line: its seq, or its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// By position.
    Seq(u64),
    /// By id.
    Id(String),
}

impl Selector {
    /// A number is a seq, anything else an id.
    pub fn parse(text: &str) -> Selector {
        match text.parse() {
            Ok(seq) => Selector::Seq(seq),
            Err(_) => Selector::Id(text.to_string()),
        }
    }
}

/// What `verify` checks.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// First record to check (default: the first). Its `prev_hash` is compared with the
    /// stored hash of the record before it.
    pub from: Option<Selector>,
    /// Last record to check (default: the newest). The signed head is checked only when
    /// this is the newest record.
    pub to: Option<Selector>,
    /// The public key heads must be signed with (default: the store's own key). Pin it to
    /// detect a replaced key.
    pub public_key: Option<VerifyingKey>,
    /// Heads kept elsewhere (a log sink): each must still match the store.
    pub anchors: Vec<Head>,
}

/// The verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// Everything checked holds.
    Intact {
        /// Records checked.
        records: u64,
    },
    /// The first problem found.
    Tampered(Tamper),
}

/// The first bad record and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tamper {
    /// Its seq (0: the store as a whole, e.g. its head).
    pub seq: u64,
    /// Its id, when the record exists.
    pub id: Option<String>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.id, self.seq) {
            (Some(id), seq) => write!(f, "record {seq} (id {id}): {}", self.problem),
            (None, 0) => write!(f, "audit store: {}", self.problem),
            (None, seq) => write!(f, "record {seq}: {}", self.problem),
        }
    }
}

/// What is wrong with a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The record is not in the store: deleted.
    Missing {
        /// The next record present, if any.
        next: Option<u64>,
    },
    /// The record's seq is impossible (not positive).
    BadSeq,
    /// Its `prev_hash` is not the previous record's hash: a record before it was deleted,
    /// inserted or moved.
    PrevHash,
    /// Its hash does not match its content: the record was changed.
    Hash,
    /// Its signature is not the gateway key's: appended or changed without the key.
    Signature,
    /// Its body is not a canonical JSON object.
    Body(&'static str),
    /// A column disagrees with the body (filters would lie).
    Field(&'static str),
    /// The pack it references is missing (and no later prune record names it).
    PackMissing(String),
    /// The pack it references does not hold what was recorded.
    PackChanged {
        /// The recorded SHA-256.
        sha256: String,
        /// What differs.
        detail: String,
    },
    /// `audit.head` is missing.
    HeadMissing,
    /// `audit.head` is malformed.
    HeadMalformed(&'static str),
    /// The head is signed with another key than the expected one.
    HeadKey {
        /// The key that signed it.
        found: String,
    },
    /// The head's signature is invalid: the head was edited.
    HeadSignature,
    /// The head names this record with another hash: the newest records were rewritten.
    HeadHash,
    /// The head names a newer record than the store holds: the newest records were deleted.
    NewestDeleted {
        /// The seq the head names.
        head_seq: u64,
    },
    /// An anchored head (kept elsewhere) does not match.
    Anchor(&'static str),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { next: Some(n) } => {
                write!(f, "missing (deleted): the next record present is {n}")
            }
            Problem::Missing { next: None } => f.write_str("missing (deleted)"),
            Problem::BadSeq => f.write_str("its seq is not a positive number"),
            Problem::PrevHash => f.write_str(
                "prev_hash is not the hash of the record before it (a record was deleted, \
                 inserted or moved)",
            ),
            Problem::Hash => f.write_str("its hash does not match its content (changed)"),
            Problem::Signature => f.write_str(
                "its signature is not valid for the store's key (appended or changed without \
                 the key)",
            ),
            Problem::Body(what) => write!(f, "its body {what}"),
            Problem::Field(column) => write!(f, "column {column} disagrees with its body"),
            Problem::PackMissing(sha) => write!(f, "its pack {sha} is missing"),
            Problem::PackChanged { sha256, detail } => {
                write!(f, "its pack {sha256} was changed: {detail}")
            }
            Problem::HeadMissing => f.write_str("audit.head is missing"),
            Problem::HeadMalformed(what) => write!(f, "audit.head is malformed: {what}"),
            Problem::HeadKey { found } => {
                write!(f, "audit.head is signed with another key ({found})")
            }
            Problem::HeadSignature => f.write_str("audit.head's signature is not valid"),
            Problem::HeadHash => f.write_str(
                "the signed head names this record with another hash (the newest records \
                 were rewritten)",
            ),
            Problem::NewestDeleted { head_seq } => write!(
                f,
                "missing: the signed head names record {head_seq} (the newest records were \
                 deleted)"
            ),
            Problem::Anchor(what) => write!(f, "an anchored head does not match: {what}"),
        }
    }
}

/// What verification reads.
pub(crate) struct Verifier<'a> {
    pub(crate) store: &'a dyn Store,
    pub(crate) packs: &'a Packs,
    pub(crate) key: VerifyingKey,
    pub(crate) head_path: &'a Path,
}

type Check = Result<Option<Tamper>, AuditError>;

fn tamper(r: &StoredRecord, problem: Problem) -> Option<Tamper> {
    Some(Tamper {
        seq: r.seq,
        id: Some(r.id.clone()),
        problem,
    })
}

fn absent(seq: u64, problem: Problem) -> Option<Tamper> {
    Some(Tamper {
        seq,
        id: None,
        problem,
    })
}

impl Verifier<'_> {
    pub(crate) fn run(&self, options: &VerifyOptions) -> Result<VerifyOutcome, AuditError> {
        let key = options.public_key.unwrap_or(self.key);
        let tip = self.store.tip()?.map_or(0, |r| r.seq);
        let from = self.resolve(options.from.as_ref())?.unwrap_or(1).max(1);
        let to = self.resolve(options.to.as_ref())?.unwrap_or(tip);
        let pruned = self.pruned()?;
        let mut walk = Walk::start(self, from, key)?;
        if let Some(t) = walk.tamper.take() {
            return Ok(VerifyOutcome::Tampered(t));
        }
        self.store.log(
            &LogFilter {
                from_seq: Some(from),
                to_seq: Some(to),
                ..LogFilter::default()
            },
            &mut |r| {
                walk.tamper = match walk.step(&r) {
                    Some(t) => Some(t),
                    None => self.content(&r, &pruned)?,
                };
                Ok(walk.tamper.is_none())
            },
        )?;
        if walk.tamper.is_none() && walk.expected <= to {
            walk.tamper = absent(walk.expected, Problem::Missing { next: None });
        }
        let mut bad = walk.tamper.take();
        if bad.is_none() && (options.to.is_none() || to == tip) {
            bad = self.head(&mut walk, &key)?;
        }
        if bad.is_none() {
            bad = self.anchors(&options.anchors, &key)?;
        }
        Ok(match bad {
            Some(t) => VerifyOutcome::Tampered(t),
            None => VerifyOutcome::Intact {
                records: walk.count,
            },
        })
    }

    fn resolve(&self, selector: Option<&Selector>) -> Result<Option<u64>, AuditError> {
        match selector {
            None => Ok(None),
            Some(Selector::Seq(seq)) => Ok(Some(*seq)),
            Some(Selector::Id(id)) => match self.store.by_id(id)? {
                Some(r) => Ok(Some(r.seq)),
                None => Err(AuditError::UnknownRecord { id: id.clone() }),
            },
        }
    }

    /// For each pack a prune record names: the seq of the newest such record.
    fn pruned(&self) -> Result<HashMap<String, u64>, AuditError> {
        let mut pruned = HashMap::new();
        let filter = LogFilter {
            kinds: vec![RecordKind::Prune.as_str().to_string()],
            ..LogFilter::default()
        };
        self.store.log(&filter, &mut |r| {
            if let Some(packs) = r.value().get("packs").and_then(|p| p.as_array()) {
                for sha in packs.iter().filter_map(|p| p.as_str()) {
                    pruned.insert(sha.to_string(), r.seq);
                }
            }
            Ok(true)
        })?;
        Ok(pruned)
    }

    /// The checks of one record that do not depend on its place: body, columns, pack.
    fn content(&self, r: &StoredRecord, pruned: &HashMap<String, u64>) -> Check {
        let value: serde_json::Value = match serde_json::from_str(&r.body) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => return Ok(tamper(r, Problem::Body("is not a JSON object"))),
        };
        if chain::canonical(&value) != r.body {
            return Ok(tamper(r, Problem::Body("is not canonical JSON")));
        }
        let text = |name: &str| value.get(name).and_then(|v| v.as_str());
        if text("id") != Some(r.id.as_str()) {
            return Ok(tamper(r, Problem::Field("id")));
        }
        if text("time") != Some(r.time.as_str()) {
            return Ok(tamper(r, Problem::Field("time")));
        }
        let c = Columns::of(&value);
        for (name, stored, derived) in [
            ("session", &r.columns.session, &c.session),
            ("identity", &r.columns.identity, &c.identity),
            ("repo", &r.columns.repo, &c.repo),
            ("decision", &r.columns.decision, &c.decision),
            ("op", &r.columns.op, &c.op),
            ("pack", &r.columns.pack, &c.pack),
        ] {
            if stored != derived {
                return Ok(tamper(r, Problem::Field(name)));
            }
        }
        let Some(sha) = &c.pack else {
            return Ok(None);
        };
        let bytes = value
            .get("pack")
            .and_then(|p| p.get("bytes"))
            .and_then(|b| b.as_u64());
        match self.packs.export(sha, bytes, &mut std::io::sink()) {
            Ok(_) => Ok(None),
            Err(AuditError::PackMissing { .. }) => {
                if pruned.get(sha).is_some_and(|&p| p > r.seq) {
                    return Ok(None);
                }
                Ok(tamper(r, Problem::PackMissing(sha.clone())))
            }
            Err(AuditError::PackCorrupt { detail, .. }) => Ok(tamper(
                r,
                Problem::PackChanged {
                    sha256: sha.clone(),
                    detail,
                },
            )),
            Err(e) => Err(e),
        }
    }

    /// The signed head against the newest record checked (`walk`).
    fn head(&self, walk: &mut Walk, key: &VerifyingKey) -> Check {
        let head = match head::read(self.head_path) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(absent(0, Problem::HeadMissing)),
            Err(AuditError::BadHead { reason, .. }) => {
                return Ok(absent(0, Problem::HeadMalformed(reason)))
            }
            Err(e) => return Err(e),
        };
        if let Some(t) = check_signature(&head, key) {
            return Ok(Some(t));
        }
        let last = walk.expected.saturating_sub(1);
        if head.seq > last {
            // Appended since the scan, or deleted: follow the chain up to the head.
            let mut extra = None;
            self.store.log(
                &LogFilter {
                    from_seq: Some(walk.expected),
                    to_seq: Some(head.seq),
                    ..LogFilter::default()
                },
                &mut |r| {
                    extra = walk.step(&r);
                    Ok(extra.is_none())
                },
            )?;
            if extra.is_some() {
                return Ok(extra);
            }
            if walk.expected <= head.seq {
                return Ok(absent(
                    walk.expected,
                    Problem::NewestDeleted { head_seq: head.seq },
                ));
            }
        }
        let hash_at_head = match head.seq {
            0 => Some(chain::ZERO_HASH.to_string()),
            n if n == walk.expected.saturating_sub(1) => Some(walk.prev.clone()),
            n => self.store.by_seq(n)?.map(|r| r.hash),
        };
        if hash_at_head.as_deref() != Some(head.hash.as_str()) {
            return self.at(head.seq, Problem::HeadHash);
        }
        Ok(None)
    }

    fn at(&self, seq: u64, problem: Problem) -> Check {
        Ok(Some(Tamper {
            seq,
            id: self.store.by_seq(seq)?.map(|r| r.id),
            problem,
        }))
    }

    fn anchors(&self, anchors: &[Head], key: &VerifyingKey) -> Check {
        for anchor in anchors {
            if let Some(mut t) = check_signature(anchor, key) {
                t.problem = Problem::Anchor("its signature is not valid for this store's key");
                t.seq = anchor.seq;
                return Ok(Some(t));
            }
            if anchor.seq == 0 {
                continue;
            }
            match self.store.by_seq(anchor.seq)? {
                None => {
                    return Ok(absent(
                        anchor.seq,
                        Problem::Anchor("the store no longer holds this record (rolled back)"),
                    ))
                }
                Some(r) if r.hash != anchor.hash => {
                    return Ok(tamper(
                        &r,
                        Problem::Anchor("its hash differs (the record was rewritten)"),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(None)
    }
}

fn check_signature(head: &Head, key: &VerifyingKey) -> Option<Tamper> {
    if head.signed_by(key) {
        return None;
    }
    let problem = if head.key == hex::encode(key.as_bytes()) {
        Problem::HeadSignature
    } else {
        Problem::HeadKey {
            found: head.key.clone(),
        }
    };
    absent(0, problem)
}

/// The chain walk: where it is, and the hash the next record must link to.
struct Walk {
    key: VerifyingKey,
    expected: u64,
    prev: String,
    count: u64,
    tamper: Option<Tamper>,
}

impl Walk {
    fn start(v: &Verifier<'_>, from: u64, key: VerifyingKey) -> Result<Walk, AuditError> {
        let mut walk = Walk {
            key,
            expected: from,
            prev: chain::ZERO_HASH.to_string(),
            count: 0,
            tamper: None,
        };
        if from > 1 {
            match v.store.by_seq(from - 1)? {
                Some(r) => walk.prev = r.hash,
                None => walk.tamper = absent(from - 1, Problem::Missing { next: Some(from) }),
            }
        }
        Ok(walk)
    }

    /// Checks `r`'s place and hash, and moves on.
    fn step(&mut self, r: &StoredRecord) -> Option<Tamper> {
        if r.seq < self.expected {
            return tamper(r, Problem::BadSeq);
        }
        if r.seq > self.expected {
            return absent(self.expected, Problem::Missing { next: Some(r.seq) });
        }
        if r.prev_hash != self.prev {
            return tamper(r, Problem::PrevHash);
        }
        if chain::record_hash(&r.prev_hash, &r.kind, &r.body) != r.hash {
            return tamper(r, Problem::Hash);
        }
        if !head::record_signed_by(&self.key, r.seq, &r.hash, &r.sig) {
            return tamper(r, Problem::Signature);
        }
        self.prev = r.hash.clone();
        self.expected += 1;
        self.count += 1;
        None
    }
}
