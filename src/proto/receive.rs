//! The receive-pack request: what a push asks for (gitprotocol-pack "Reference Update Request
//! and Packfile Transfer").
//!
//! ```text
//! update-requests = *shallow command-list
//! shallow         = PKT-LINE("shallow" SP obj-id)
//! command-list    = PKT-LINE(command NUL capability-list) *PKT-LINE(command) flush-pkt
//! command         = old-id SP new-id SP refname
//! push-options    = *PKT-LINE(push-option) flush-pkt      ; only if push-options was agreed
//! packfile        = "PACK" ...                              ; absent when all are deletes
//! ```
//!
//! Stricter than git where leniency would let the gateway and the upstream read one request
//! two ways: capabilities only on the first command (git parses a NUL on any line), `shallow`
//! only before the commands, one command per ref, ids of the negotiated `object-format`, ref
//! names that pass [`validate_ref_name`], and no signed pushes (their commands live inside
//! the certificate).
//!
//! [`UpdateRequest::encode`] writes the request the way git's send-pack does (no LF after
//! commands and push options, a space after the NUL), so a relayed request of the allowed
//! commands looks to the upstream like one from a real client.

use std::collections::HashSet;

use bytes::BufMut;
use tokio::io::AsyncRead;

use crate::proto::capabilities::Capabilities;
use crate::proto::oid::ObjectId;
use crate::proto::pktline::{self, trim_lf, PktLine, PktReader};
use crate::proto::refname::validate_ref_name;
use crate::proto::{excerpt, packet_kind, ProtoError};

/// Safety limits for reading an update request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most commands (ref updates) in one push. Default 10 000: a `git push --mirror` of a
    /// large repository sends one per branch and tag.
    pub max_commands: usize,
    /// Most `shallow` lines. Default 10 000.
    pub max_shallow: usize,
    /// Most push options. Default 100.
    pub max_push_options: usize,
    /// Longest line in bytes (a command with its capabilities, or a push option). Default
    /// 4096: a command is 83 (SHA-1) or 131 (SHA-256) bytes plus the ref name, and git's
    /// capability list is about 100.
    pub max_line_bytes: usize,
    /// Most bytes of the whole request before the pack. Default 4 MiB.
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_commands: 10_000,
            max_shallow: 10_000,
            max_push_options: 100,
            max_line_bytes: 4096,
            max_request_bytes: 4 * 1024 * 1024,
        }
    }
}

/// One reference update: `<old-oid> <new-oid> <refname>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Command {
    /// The id the client believes the ref has now (zero: create).
    pub old: ObjectId,
    /// The id the ref should get (zero: delete).
    pub new: ObjectId,
    /// The full ref name, valid per [`validate_ref_name`].
    pub refname: String,
}

impl Command {
    /// Whether this creates the ref (old is zero).
    pub fn is_create(&self) -> bool {
        self.old.is_null()
    }

    /// Whether this deletes the ref (new is zero).
    pub fn is_delete(&self) -> bool {
        self.new.is_null()
    }

    /// Parses `<old-oid> SP <new-oid> SP <refname>` (no NUL, no LF).
    pub fn parse(line: &[u8]) -> Result<Self, ProtoError> {
        let bad = |reason| ProtoError::BadCommand {
            line: excerpt(line),
            reason,
        };
        let mut parts = line.splitn(3, |c| *c == b' ');
        let (Some(old), Some(new), Some(refname)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected <old-oid> <new-oid> <refname>"));
        };
        let old = ObjectId::from_hex(old)?;
        let new = ObjectId::from_hex(new)?;
        if old.kind() != new.kind() {
            return Err(bad("old and new ids are of different hash kinds"));
        }
        if old.is_null() && new.is_null() {
            return Err(bad("both ids are zero"));
        }
        let refname = validate_ref_name(refname)?.to_owned();
        Ok(Self { old, new, refname })
    }

    fn write<B: BufMut>(&self, out: &mut B) {
        self.old.write_hex(out);
        out.put_u8(b' ');
        self.new.write_hex(out);
        out.put_u8(b' ');
        out.put_slice(self.refname.as_bytes());
    }
}

/// A parsed receive-pack request, up to (not including) the pack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateRequest {
    /// `shallow <oid>` lines: the client's shallow boundary.
    pub shallow: Vec<ObjectId>,
    /// The ref updates, in the client's order.
    pub commands: Vec<Command>,
    /// The capabilities the client chose (after the NUL of the first command).
    pub capabilities: Capabilities,
    /// Push options (`git push -o`), when the `push-options` capability was chosen.
    pub push_options: Vec<String>,
}

impl UpdateRequest {
    /// Whether a pack follows: git sends none when every command is a delete, or when there
    /// are no commands ("The packfile MUST NOT be sent if the only command used is delete").
    pub fn expects_pack(&self) -> bool {
        self.commands.iter().any(|c| !c.is_delete())
    }

    /// Appends the request (without pack). With no commands this is a lone flush, which git's
    /// receive-pack reads as "nothing to do" (it then reads neither push options nor a pack).
    pub fn encode<B: BufMut>(&self, out: &mut B) -> Result<(), ProtoError> {
        let mut line = Vec::with_capacity(256);
        for id in &self.shallow {
            line.clear();
            line.extend_from_slice(b"shallow ");
            id.write_hex(&mut line);
            pktline::encode_data(out, &line)?;
        }
        for (i, command) in self.commands.iter().enumerate() {
            line.clear();
            command.write(&mut line);
            if i == 0 {
                line.extend_from_slice(b"\0 ");
                line.extend_from_slice(self.capabilities.to_string().as_bytes());
            }
            pktline::encode_data(out, &line)?;
        }
        out.put_slice(pktline::flush());
        if !self.commands.is_empty() && self.capabilities.contains("push-options") {
            for option in &self.push_options {
                if option.bytes().any(|c| c == 0 || c == b'\n') {
                    return Err(ProtoError::Unencodable {
                        what: "push option",
                        reason: "contains NUL or LF",
                    });
                }
                pktline::encode_data(out, option.as_bytes())?;
            }
            out.put_slice(pktline::flush());
        }
        Ok(())
    }
}

/// Reads an update request from `reader`, leaving it positioned at the pack: the pack's first
/// bytes may already be buffered, see [`PktReader::into_parts`]. Reads exactly the packets of
/// the request, never beyond its last flush.
pub async fn read_update_request<R: AsyncRead + Unpin>(
    reader: &mut PktReader<R>,
    limits: &Limits,
) -> Result<UpdateRequest, ProtoError> {
    let mut parser = Parser::new(limits);
    loop {
        let pkt = reader.next().await?.ok_or(ProtoError::Truncated {
            context: parser.context(),
        })?;
        if parser.push(pkt.as_pkt())? {
            return parser.finish();
        }
    }
}

/// Parses an update request at the start of `buf`; returns it and the number of bytes it took
/// (the pack, if any, starts there).
pub fn parse_update_request(
    buf: &[u8],
    limits: &Limits,
) -> Result<(UpdateRequest, usize), ProtoError> {
    let mut parser = Parser::new(limits);
    let mut packets = pktline::packets(buf);
    loop {
        let pkt = packets.next().ok_or(ProtoError::Truncated {
            context: parser.context(),
        })??;
        if parser.push(pkt)? {
            return Ok((parser.finish()?, packets.offset()));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Commands,
    PushOptions,
    Done,
}

/// The request grammar as a state machine fed one packet at a time.
struct Parser<'l> {
    limits: &'l Limits,
    stage: Stage,
    request: UpdateRequest,
    refnames: HashSet<String>,
    bytes: usize,
}

impl<'l> Parser<'l> {
    fn new(limits: &'l Limits) -> Self {
        Self {
            limits,
            stage: Stage::Commands,
            request: UpdateRequest::default(),
            refnames: HashSet::new(),
            bytes: 0,
        }
    }

    fn context(&self) -> &'static str {
        match self.stage {
            Stage::Commands => "update commands",
            Stage::PushOptions | Stage::Done => "push options",
        }
    }

    /// Handles one packet; `true` once the request is complete.
    fn push(&mut self, pkt: PktLine<'_>) -> Result<bool, ProtoError> {
        let data = match (self.stage, pkt) {
            (Stage::Commands, PktLine::Flush) => {
                // receive-pack reads push options only when there were commands.
                let options = !self.request.commands.is_empty()
                    && self.request.capabilities.contains("push-options");
                self.stage = if options {
                    Stage::PushOptions
                } else {
                    Stage::Done
                };
                return Ok(self.stage == Stage::Done);
            }
            (Stage::PushOptions, PktLine::Flush) => {
                self.stage = Stage::Done;
                return Ok(true);
            }
            (Stage::Done, _) => return Ok(true),
            (_, PktLine::Data(data)) => data,
            (_, other) => {
                return Err(ProtoError::UnexpectedPacket {
                    context: self.context(),
                    found: packet_kind(&other),
                });
            }
        };
        self.bytes += data.len() + 4;
        if self.bytes > self.limits.max_request_bytes {
            return Err(ProtoError::MessageTooLarge {
                limit: self.limits.max_request_bytes,
            });
        }
        if data.len() > self.limits.max_line_bytes {
            return Err(ProtoError::LineTooLong {
                length: data.len(),
                limit: self.limits.max_line_bytes,
            });
        }
        let line = trim_lf(data);
        match self.stage {
            Stage::PushOptions => self.push_option(line)?,
            _ => self.command_line(line)?,
        }
        Ok(false)
    }

    fn command_line(&mut self, line: &[u8]) -> Result<(), ProtoError> {
        let request = &mut self.request;
        if let Some(id) = line.strip_prefix(b"shallow ") {
            if !request.commands.is_empty() {
                return Err(ProtoError::UnexpectedLine {
                    context: "update commands (shallow after a command)",
                    line: excerpt(line),
                });
            }
            if request.shallow.len() >= self.limits.max_shallow {
                return Err(ProtoError::TooMany {
                    what: "shallow lines",
                    limit: self.limits.max_shallow,
                });
            }
            request.shallow.push(ObjectId::from_hex(id)?);
            return Ok(());
        }
        if line.split(|c| *c == 0).next() == Some(b"push-cert") {
            return Err(ProtoError::PushCertUnsupported);
        }
        if request.commands.len() >= self.limits.max_commands {
            return Err(ProtoError::TooMany {
                what: "commands",
                limit: self.limits.max_commands,
            });
        }
        let mut parts = line.splitn(2, |c| *c == 0);
        let command = parts.next().unwrap_or_default();
        if let Some(caps) = parts.next() {
            if !request.commands.is_empty() {
                return Err(ProtoError::MisplacedCapabilities {
                    line_number: request.commands.len() + 1,
                });
            }
            request.capabilities = Capabilities::parse(caps)?;
        }
        let command = Command::parse(command)?;
        if !self.refnames.insert(command.refname.clone()) {
            return Err(ProtoError::DuplicateRef {
                name: command.refname,
            });
        }
        request.commands.push(command);
        Ok(())
    }

    fn push_option(&mut self, line: &[u8]) -> Result<(), ProtoError> {
        if self.request.push_options.len() >= self.limits.max_push_options {
            return Err(ProtoError::TooMany {
                what: "push options",
                limit: self.limits.max_push_options,
            });
        }
        let option = std::str::from_utf8(line)
            .ok()
            .filter(|o| !o.contains(['\0', '\n']))
            .ok_or_else(|| ProtoError::BadPushOption {
                option: excerpt(line),
            })?;
        self.request.push_options.push(option.to_owned());
        Ok(())
    }

    /// Checks what needs the whole request: every id of the negotiated object format.
    fn finish(self) -> Result<UpdateRequest, ProtoError> {
        let kind = self.request.capabilities.object_format()?;
        let ids = self.request.commands.iter().flat_map(|c| [&c.old, &c.new]);
        for id in ids.chain(&self.request.shallow) {
            id.expect_kind(kind)?;
        }
        Ok(self.request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::oid::HashKind;
    use crate::proto::pktline::encode_data;
    use crate::proto::tests::fixture;

    const A: &str = "d16c6584d637d92f6593daf297f86bfca55e1c3b";
    const B: &str = "8e4f0ac7665d7bf0f40294e57a73f8c18ee60893";
    const Z: &str = "0000000000000000000000000000000000000000";

    /// Encodes lines as pkt-lines; `"0000"` and `"0001"` stand for flush and delim.
    fn wire(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            match *line {
                "0000" => out.extend_from_slice(b"0000"),
                "0001" => out.extend_from_slice(b"0001"),
                _ => {
                    let _ = encode_data(&mut out, line.as_bytes());
                }
            }
        }
        out
    }

    fn parse(buf: &[u8]) -> Result<UpdateRequest, ProtoError> {
        parse_update_request(buf, &Limits::default()).map(|(r, _)| r)
    }

    #[test]
    fn recorded_push_with_options_parses_and_reencodes_identically() -> Result<(), ProtoError> {
        let body = fixture("push-update/02-git-receive-pack.req");
        let (request, consumed) = parse_update_request(&body, &Limits::default())?;
        let refs: Vec<(&str, bool, bool)> = request
            .commands
            .iter()
            .map(|c| (c.refname.as_str(), c.is_create(), c.is_delete()))
            .collect();
        assert_eq!(
            refs,
            [
                ("refs/heads/main", false, false),
                ("refs/heads/feature", true, false),
                ("refs/tags/v1.0", true, false)
            ]
        );
        assert_eq!(request.push_options, ["ci.skip", "reason=recorded fixture"]);
        assert_eq!(
            request.capabilities.to_string(),
            "report-status-v2 side-band-64k quiet push-options object-format=sha1 agent=git/2.47.3"
        );
        assert!(request.expects_pack());
        assert_eq!(body.get(consumed..consumed + 4), Some(&b"PACK"[..]));
        let mut encoded = Vec::new();
        request.encode(&mut encoded)?;
        assert_eq!(
            Some(&encoded[..]),
            body.get(..consumed),
            "encoded like git's send-pack"
        );
        Ok(())
    }

    #[test]
    fn recorded_pushes_round_trip() -> Result<(), ProtoError> {
        for (name, pack) in [
            ("push-empty/02-git-receive-pack.req", true),
            ("push-delete/02-git-receive-pack.req", false),
            ("push-rejected/02-git-receive-pack.req", true),
        ] {
            let body = fixture(name);
            let (request, consumed) = parse_update_request(&body, &Limits::default())?;
            assert_eq!(request.expects_pack(), pack, "{name}");
            assert_eq!(
                consumed == body.len(),
                !pack,
                "{name}: a pack follows iff expected"
            );
            let mut encoded = Vec::new();
            request.encode(&mut encoded)?;
            assert_eq!(Some(&encoded[..]), body.get(..consumed), "{name}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn async_reader_stops_at_the_pack() -> Result<(), ProtoError> {
        let body = fixture("push-update/02-git-receive-pack.req");
        let (expected, consumed) = parse_update_request(&body, &Limits::default())?;
        let mut reader = PktReader::new(&body[..]);
        let request = read_update_request(&mut reader, &Limits::default()).await?;
        assert_eq!(request, expected);
        let (mut inner, buffered) = reader.into_parts();
        let mut pack = buffered.to_vec();
        tokio::io::AsyncReadExt::read_to_end(&mut inner, &mut pack)
            .await
            .map_err(pktline::PktError::Io)?;
        assert_eq!(Some(&pack[..]), body.get(consumed..));
        Ok(())
    }

    #[test]
    fn relaying_a_subset_of_commands() -> Result<(), ProtoError> {
        let mut request = parse(&fixture("push-update/02-git-receive-pack.req"))?;
        request.commands.retain(|c| c.refname != "refs/heads/main");
        let mut encoded = Vec::new();
        request.encode(&mut encoded)?;
        let reparsed = parse(&encoded)?;
        assert_eq!(reparsed, request);
        assert_eq!(reparsed.commands.len(), 2);
        Ok(())
    }

    #[test]
    fn no_commands_is_a_lone_flush() -> Result<(), ProtoError> {
        let request = parse(b"0000")?;
        assert!(request.commands.is_empty() && !request.expects_pack());
        let mut encoded = Vec::new();
        UpdateRequest {
            push_options: vec!["x".into()],
            ..request
        }
        .encode(&mut encoded)?;
        assert_eq!(encoded, b"0000");
        Ok(())
    }

    #[test]
    fn property_parse_of_encode_is_identity() -> Result<(), ProtoError> {
        for n in [1usize, 2, 17, 300] {
            for options in [false, true] {
                let commands: Vec<Command> = (0..n)
                    .map(|i| {
                        let mut old = [0u8; 20];
                        let mut new = [0u8; 20];
                        old[i % 20] = (i % 3) as u8;
                        new[(i + 7) % 20] = ((i + 1) % 3) as u8;
                        Command {
                            old: ObjectId::Sha1(old),
                            new: ObjectId::Sha1(new),
                            refname: format!("refs/heads/agent/branch-{i}"),
                        }
                    })
                    .filter(|c| !(c.old.is_null() && c.new.is_null()))
                    .collect();
                let caps = if options {
                    "report-status side-band-64k push-options"
                } else {
                    "report-status"
                };
                let request = UpdateRequest {
                    shallow: vec![ObjectId::Sha1([9; 20])],
                    commands,
                    capabilities: Capabilities::parse(caps.as_bytes())?,
                    push_options: if options {
                        vec!["a".into(), "b c".into(), String::new()]
                    } else {
                        Vec::new()
                    },
                };
                let mut encoded = Vec::new();
                request.encode(&mut encoded)?;
                let (parsed, consumed) = parse_update_request(&encoded, &Limits::default())?;
                assert_eq!((parsed, consumed), (request, encoded.len()));
            }
        }
        Ok(())
    }

    #[test]
    fn sha256_push() -> Result<(), ProtoError> {
        let old = "a".repeat(64);
        let new = "b".repeat(64);
        let first = format!("{old} {new} refs/heads/main\0report-status object-format=sha256");
        let request = parse(&wire(&[&first, "0000"]))?;
        assert_eq!(
            request.commands.first().map(|c| c.new.kind()),
            Some(HashKind::Sha256)
        );
        Ok(())
    }

    #[test]
    fn reproducer_sha256_ids_without_object_format() {
        let first = format!(
            "{} {} refs/heads/main\0report-status",
            "a".repeat(64),
            "b".repeat(64)
        );
        assert!(matches!(
            parse(&wire(&[&first, "0000"])),
            Err(ProtoError::ObjectFormatMismatch { .. })
        ));
    }

    #[test]
    fn reproducer_mixed_hash_kinds_in_one_command() {
        let first = format!("{A} {} refs/heads/main\0report-status", "b".repeat(64));
        assert!(matches!(
            parse(&wire(&[&first, "0000"])),
            Err(ProtoError::BadCommand { .. })
        ));
    }

    #[test]
    fn reproducer_capabilities_on_second_command() {
        let first = format!("{Z} {A} refs/heads/a\0report-status");
        let second = format!("{Z} {A} refs/heads/b\0push-options");
        let result = parse(&wire(&[&first, &second, "0000"]));
        assert!(matches!(
            result,
            Err(ProtoError::MisplacedCapabilities { line_number: 2 })
        ));
    }

    #[test]
    fn reproducer_shallow_after_command() {
        let first = format!("{Z} {A} refs/heads/a\0report-status");
        let shallow = format!("shallow {B}");
        let result = parse(&wire(&[&first, &shallow, "0000"]));
        assert!(matches!(result, Err(ProtoError::UnexpectedLine { .. })));
    }

    #[test]
    fn reproducer_push_cert() {
        let result = parse(&wire(&[
            "push-cert\0report-status\n",
            "certificate version 0.1\n",
        ]));
        assert!(matches!(result, Err(ProtoError::PushCertUnsupported)));
    }

    #[test]
    fn reproducer_duplicate_ref() {
        let first = format!("{Z} {A} refs/heads/a\0report-status");
        let second = format!("{A} {B} refs/heads/a");
        let result = parse(&wire(&[&first, &second, "0000"]));
        assert!(matches!(result, Err(ProtoError::DuplicateRef { name }) if name == "refs/heads/a"));
    }

    #[test]
    fn reproducer_both_ids_zero() {
        let first = format!("{Z} {Z} refs/heads/a\0report-status");
        assert!(matches!(
            parse(&wire(&[&first, "0000"])),
            Err(ProtoError::BadCommand { .. })
        ));
    }

    #[test]
    fn reproducer_bad_ref_names() {
        for name in [
            "HEAD",
            "refs/heads/../x",
            "refs/heads/x.lock",
            "refs/heads/a b",
            "refs/heads/a@{0}",
        ] {
            let first = format!("{Z} {A} {name}\0report-status");
            assert!(
                matches!(
                    parse(&wire(&[&first, "0000"])),
                    Err(ProtoError::BadRefName { .. })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn reproducer_malformed_command_lines() {
        for line in [
            "".to_string(),
            format!("{A} {B}"),
            format!("{A}  {B} refs/heads/a"),
            format!("{A} {B}"),
            format!("{} {B} refs/heads/a", &A[..39]),
            format!("{A} {B}\0refs/heads/a"),
        ] {
            let result = parse(&wire(&[&line, "0000"]));
            assert!(
                matches!(
                    result,
                    Err(ProtoError::BadCommand { .. }
                        | ProtoError::BadObjectId { .. }
                        | ProtoError::BadRefName { .. }
                        | ProtoError::BadCapability { .. })
                ),
                "{line:?}: {result:?}"
            );
        }
    }

    #[test]
    fn reproducer_truncated_requests() {
        let body = fixture("push-update/02-git-receive-pack.req");
        // 438 bytes of commands and push options precede the pack.
        for cut in [0, 1, 4, 100, 188, 192, 400, 437] {
            let result = parse(body.get(..cut).unwrap_or_default());
            assert!(
                matches!(
                    result,
                    Err(ProtoError::Truncated { .. } | ProtoError::Pkt(_))
                ),
                "cut {cut}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn reproducer_async_eof_before_flush() {
        let first = format!("{Z} {A} refs/heads/a\0report-status");
        let body = wire(&[&first]);
        let mut reader = PktReader::new(&body[..]);
        let result = read_update_request(&mut reader, &Limits::default()).await;
        assert!(matches!(result, Err(ProtoError::Truncated { .. })));
    }

    #[test]
    fn reproducer_delim_among_commands() {
        let first = format!("{Z} {A} refs/heads/a\0report-status");
        assert!(matches!(
            parse(&wire(&[&first, "0001"])),
            Err(ProtoError::UnexpectedPacket { found: "delim", .. })
        ));
    }

    #[test]
    fn reproducer_bad_push_option() {
        let first = format!("{Z} {A} refs/heads/a\0push-options");
        for option in [&b"nul\0inside"[..], b"line\nbreak", b"\xff\xfe not utf-8"] {
            let mut body = wire(&[&first, "0000"]);
            let _ = encode_data(&mut body, option);
            body.extend_from_slice(b"0000");
            assert!(
                matches!(parse(&body), Err(ProtoError::BadPushOption { .. })),
                "{option:?}"
            );
        }
    }

    #[test]
    fn limits_are_enforced() {
        let first = format!("{Z} {A} refs/heads/a\0report-status push-options");
        let second = format!("{Z} {A} refs/heads/b");
        let limits = Limits {
            max_commands: 1,
            ..Limits::default()
        };
        let result = parse_update_request(&wire(&[&first, &second, "0000"]), &limits);
        assert!(matches!(
            result,
            Err(ProtoError::TooMany {
                what: "commands",
                limit: 1
            })
        ));

        let limits = Limits {
            max_push_options: 1,
            ..Limits::default()
        };
        let result = parse_update_request(&wire(&[&first, "0000", "a", "b", "0000"]), &limits);
        assert!(matches!(
            result,
            Err(ProtoError::TooMany {
                what: "push options",
                ..
            })
        ));

        let limits = Limits {
            max_line_bytes: 50,
            ..Limits::default()
        };
        let result = parse_update_request(&wire(&[&first, "0000"]), &limits);
        assert!(matches!(
            result,
            Err(ProtoError::LineTooLong { limit: 50, .. })
        ));

        let limits = Limits {
            max_shallow: 0,
            ..Limits::default()
        };
        let result = parse_update_request(&wire(&[&format!("shallow {A}"), "0000"]), &limits);
        assert!(matches!(
            result,
            Err(ProtoError::TooMany {
                what: "shallow lines",
                ..
            })
        ));

        let limits = Limits {
            max_request_bytes: 100,
            ..Limits::default()
        };
        let result = parse_update_request(&wire(&[&first, "0000", "a", "0000"]), &limits);
        assert!(matches!(
            result,
            Err(ProtoError::MessageTooLarge { limit: 100 })
        ));
    }
}
