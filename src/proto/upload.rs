//! upload-pack requests, summarised for the record and checked for bypasses.
//!
//! - v0/v1 (gitprotocol-pack "Packfile Negotiation"): `want <oid> [caps]` lines, `shallow`,
//!   `deepen`, `deepen-since`, `deepen-not`, `filter`, flush; then rounds of `have` lines ended
//!   by a flush, and finally `done`. Over smart HTTP each POST body repeats the wants and
//!   carries the haves of one round, ending with a flush or `done`.
//! - v2 (gitprotocol-v2 "Command Request"): `command=<name>`, capability lines, delim (`0001`),
//!   argument lines, flush. A lone flush is an empty request.
//!
//! [`parse_upload_request`] reads one whole body (the caller bounds its size) and never panics;
//! a body that stops before the grammar allows is [`ProtoError::Truncated`].
//! [`UploadRequest::refuse_reason`] names the requests the gateway must not relay.

use crate::proto::capabilities::{Capabilities, Capability};
use crate::proto::oid::{HashKind, ObjectId};
use crate::proto::pktline::{self, trim_lf, PktLine};
use crate::proto::{excerpt, packet_kind, ProtoError, ProtocolVersion};

/// Safety limits for [`parse_upload_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLimits {
    /// Most `want` (and object-info `oid`) lines kept. Default 100 000: a clone wants every
    /// advertised branch and tag.
    pub max_wants: usize,
    /// Most `shallow` lines kept. Default 100 000.
    pub max_shallow: usize,
    /// Most other kept items together: capabilities, `want-ref`, `deepen-not`, `ref-prefix`
    /// and feature arguments. Default 10 000.
    pub max_args: usize,
    /// Longest line in bytes. Default 8192 (a filter spec or ref prefix is far shorter).
    pub max_line_bytes: usize,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_wants: 100_000,
            max_shallow: 100_000,
            max_args: 10_000,
            max_line_bytes: 8192,
        }
    }
}

/// The v2 command of a request (v0/v1 requests are always [`UploadCommand::Fetch`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UploadCommand {
    /// `ls-refs`: list refs.
    LsRefs,
    /// `fetch` (or the v0/v1 negotiation): send a pack.
    Fetch,
    /// `object-info`: object sizes.
    ObjectInfo,
    /// `bundle-uri`: where to download bundles instead; refused by the gateway.
    BundleUri,
    /// Any other command name.
    Other(String),
}

impl UploadCommand {
    /// The name as on the wire (`ls-refs`, `fetch`, ...).
    pub fn name(&self) -> &str {
        match self {
            Self::LsRefs => "ls-refs",
            Self::Fetch => "fetch",
            Self::ObjectInfo => "object-info",
            Self::BundleUri => "bundle-uri",
            Self::Other(name) => name,
        }
    }

    fn from_name(name: &str) -> Self {
        match name {
            "ls-refs" => Self::LsRefs,
            "fetch" => Self::Fetch,
            "object-info" => Self::ObjectInfo,
            "bundle-uri" => Self::BundleUri,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// What an upload-pack request asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadRequest {
    /// The protocol version the body was parsed as.
    pub version: ProtocolVersion,
    /// The command; `None` for a v2 empty request (a lone flush).
    pub command: Option<UploadCommand>,
    /// v0/v1: the capabilities after the `want` ids; v2: the capability lines (`agent`,
    /// `object-format`, `server-option`, ...).
    pub capabilities: Capabilities,
    /// Wanted object ids (for `object-info`: the `oid` arguments).
    pub wants: Vec<ObjectId>,
    /// `want-ref <ref>` arguments (v2).
    pub want_refs: Vec<String>,
    /// How many `have` lines (their ids are checked but not kept).
    pub haves_count: usize,
    /// `shallow <oid>`: commits the client has without their parents.
    pub shallow: Vec<ObjectId>,
    /// `deepen <depth>`.
    pub deepen: Option<u32>,
    /// `deepen-since <timestamp>`.
    pub deepen_since: Option<u64>,
    /// `deepen-not <rev>` arguments.
    pub deepen_not: Vec<String>,
    /// `deepen-relative` (v2 argument; in v0 it is a capability).
    pub deepen_relative: bool,
    /// `filter <spec>` (partial clone).
    pub filter: Option<String>,
    /// Whether the client said `done`.
    pub done: bool,
    /// `ref-prefix <prefix>` arguments of `ls-refs`.
    pub ref_prefixes: Vec<String>,
    /// `packfile-uris <protocols>`: refused by the gateway.
    pub packfile_uris: Option<String>,
    /// Other arguments, verbatim: `thin-pack`, `ofs-delta`, `no-progress`, `include-tag`,
    /// `peel`, `symrefs`, `unborn`, `wait-for-done`, `sideband-all`, `size`, ...
    pub features: Vec<String>,
}

impl UploadRequest {
    /// Why the gateway must refuse this request, if it must: `bundle-uri` and `packfile-uris`
    /// would let the client download objects from another URL, bypassing the gateway.
    pub fn refuse_reason(&self) -> Option<&'static str> {
        if self.command == Some(UploadCommand::BundleUri) {
            return Some("bundle-uri is not supported through the gateway");
        }
        if self.packfile_uris.is_some() {
            return Some("packfile-uris is not supported through the gateway");
        }
        None
    }
}

/// Parses one upload-pack request body as `version`; see the module docs for the grammar.
/// Bytes after the end of a v2 request or after `done` are [`ProtoError::TrailingData`].
pub fn parse_upload_request(
    body: &[u8],
    version: ProtocolVersion,
    limits: &UploadLimits,
) -> Result<UploadRequest, ProtoError> {
    let mut parser = Parser {
        limits,
        request: UploadRequest {
            version,
            ..UploadRequest::default()
        },
    };
    let mut packets = pktline::packets(body);
    let complete = if version.is_v0_or_v1() {
        parser.request.command = Some(UploadCommand::Fetch);
        parser.v0(&mut packets)?
    } else {
        parser.v2(&mut packets)?
    };
    if !complete {
        return Err(ProtoError::Truncated {
            context: "upload-pack request",
        });
    }
    let rest = packets.rest().len();
    if rest > 0 {
        return Err(ProtoError::TrailingData {
            context: "upload-pack request",
            bytes: rest,
        });
    }
    parser.finish()
}

struct Parser<'l> {
    limits: &'l UploadLimits,
    request: UploadRequest,
}

/// The data of the next packet, `Ok(None)` at a flush, `Err` for other special packets or
/// the end of the input.
fn next_line<'a>(
    packets: &mut pktline::Packets<'a>,
    context: &'static str,
) -> Result<Option<&'a [u8]>, ProtoError> {
    match packets.next().ok_or(ProtoError::Truncated { context })?? {
        PktLine::Data(d) => Ok(Some(trim_lf(d))),
        PktLine::Flush => Ok(None),
        other => Err(ProtoError::UnexpectedPacket {
            context,
            found: packet_kind(&other),
        }),
    }
}

impl Parser<'_> {
    /// v0/v1; `true` if the body ended where a request may end.
    fn v0(&mut self, packets: &mut pktline::Packets<'_>) -> Result<bool, ProtoError> {
        const WANTS: &str = "want list";
        while let Some(line) = next_line(packets, WANTS)? {
            self.check_length(line)?;
            if let Some(rest) = line.strip_prefix(b"want ") {
                // git's upload-pack reads features after the id of any want line.
                let mut parts = rest.splitn(2, |c| *c == b' ');
                self.want(parts.next().unwrap_or_default())?;
                for cap in Capabilities::parse(parts.next().unwrap_or_default())?.iter() {
                    self.capability(cap.clone())?;
                }
            } else if line == b"done" || !self.fetch_arg(line)? {
                return Err(ProtoError::UnexpectedLine {
                    context: WANTS,
                    line: excerpt(line),
                });
            }
        }
        if self.request.wants.is_empty() {
            // A client that wants nothing ends here (gitprotocol-pack: "the client can decide
            // to terminate the connection by sending a flush-pkt").
            return Ok(true);
        }
        let kind = self.request.capabilities.object_format()?;
        // Rounds of haves, each ended by a flush, possibly the last by `done`.
        let mut at_boundary = true;
        for pkt in packets.by_ref() {
            let line = match pkt? {
                PktLine::Flush => {
                    at_boundary = true;
                    continue;
                }
                PktLine::Data(d) => trim_lf(d),
                other => {
                    return Err(ProtoError::UnexpectedPacket {
                        context: "haves",
                        found: packet_kind(&other),
                    })
                }
            };
            if line == b"done" {
                self.request.done = true;
                return Ok(true);
            }
            let id = line
                .strip_prefix(b"have ")
                .ok_or_else(|| ProtoError::UnexpectedLine {
                    context: "haves",
                    line: excerpt(line),
                })?;
            ObjectId::from_hex_kind(id, kind)?;
            self.request.haves_count += 1;
            at_boundary = false;
        }
        Ok(at_boundary)
    }

    /// v2; `true` if the request was complete.
    fn v2(&mut self, packets: &mut pktline::Packets<'_>) -> Result<bool, ProtoError> {
        let Some(first) = next_line(packets, "v2 request")? else {
            return Ok(true);
        };
        let name = first
            .strip_prefix(b"command=")
            .filter(|n| {
                !n.is_empty()
                    && n.iter()
                        .all(|c| c.is_ascii_alphanumeric() || b"-_".contains(c))
            })
            .and_then(|n| std::str::from_utf8(n).ok())
            .ok_or_else(|| ProtoError::UnexpectedLine {
                context: "v2 request (expected command=)",
                line: excerpt(first),
            })?;
        let command = UploadCommand::from_name(name);
        self.request.command = Some(command.clone());
        loop {
            match packets.next().ok_or(ProtoError::Truncated {
                context: "v2 capabilities",
            })?? {
                PktLine::Data(d) => {
                    let line = trim_lf(d);
                    self.check_length(line)?;
                    self.capability(Capability::parse_v2(line)?)?;
                }
                PktLine::Flush => return Ok(true),
                PktLine::Delim => break,
                PktLine::ResponseEnd => {
                    return Err(ProtoError::UnexpectedPacket {
                        context: "v2 capabilities",
                        found: "response-end",
                    })
                }
            }
        }
        let kind = self.request.capabilities.object_format()?;
        while let Some(line) = next_line(packets, "v2 arguments")? {
            self.check_length(line)?;
            let known = match command {
                UploadCommand::Fetch => {
                    self.fetch_arg(line)? || self.have(line, kind)? || self.v2_fetch_arg(line)?
                }
                UploadCommand::LsRefs => match line.strip_prefix(b"ref-prefix ") {
                    Some(prefix) => self.arg_list(prefix, ArgList::RefPrefixes)?,
                    None => false,
                },
                UploadCommand::ObjectInfo => match line.strip_prefix(b"oid ") {
                    Some(id) => self.want(id)?,
                    None => false,
                },
                UploadCommand::BundleUri | UploadCommand::Other(_) => false,
            };
            if !known {
                self.arg_list(line, ArgList::Features)?;
            }
        }
        Ok(true)
    }

    fn check_length(&self, line: &[u8]) -> Result<(), ProtoError> {
        if line.len() > self.limits.max_line_bytes {
            return Err(ProtoError::LineTooLong {
                length: line.len(),
                limit: self.limits.max_line_bytes,
            });
        }
        Ok(())
    }

    fn capability(&mut self, cap: Capability) -> Result<(), ProtoError> {
        self.count_arg()?;
        self.request.capabilities.push(cap);
        Ok(())
    }

    fn count_arg(&self) -> Result<(), ProtoError> {
        let r = &self.request;
        let used = r.capabilities.len()
            + r.want_refs.len()
            + r.deepen_not.len()
            + r.ref_prefixes.len()
            + r.features.len();
        if used >= self.limits.max_args {
            return Err(ProtoError::TooMany {
                what: "arguments",
                limit: self.limits.max_args,
            });
        }
        Ok(())
    }

    fn want(&mut self, hex: &[u8]) -> Result<bool, ProtoError> {
        if self.request.wants.len() >= self.limits.max_wants {
            return Err(ProtoError::TooMany {
                what: "wants",
                limit: self.limits.max_wants,
            });
        }
        self.request.wants.push(ObjectId::from_hex(hex)?);
        Ok(true)
    }

    fn have(&mut self, line: &[u8], kind: HashKind) -> Result<bool, ProtoError> {
        let Some(id) = line.strip_prefix(b"have ") else {
            return Ok(false);
        };
        ObjectId::from_hex_kind(id, kind)?;
        self.request.haves_count += 1;
        Ok(true)
    }

    /// Lines shared by the v0 want list and the v2 `fetch` arguments; `false` if not one.
    fn fetch_arg(&mut self, line: &[u8]) -> Result<bool, ProtoError> {
        let (key, value) = split_arg(line);
        let bad = || ProtoError::UnexpectedLine {
            context: "fetch arguments",
            line: excerpt(line),
        };
        match (key, value) {
            (b"want", Some(id)) => self.want(id),
            (b"shallow", Some(id)) => {
                if self.request.shallow.len() >= self.limits.max_shallow {
                    return Err(ProtoError::TooMany {
                        what: "shallow lines",
                        limit: self.limits.max_shallow,
                    });
                }
                self.request.shallow.push(ObjectId::from_hex(id)?);
                Ok(true)
            }
            (b"deepen", Some(n)) => {
                let depth = number(n)
                    .filter(|d| *d > 0)
                    .and_then(|d| u32::try_from(d).ok())
                    .ok_or_else(bad)?;
                self.request.deepen = Some(depth);
                Ok(true)
            }
            (b"deepen-since", Some(n)) => {
                self.request.deepen_since = Some(number(n).ok_or_else(bad)?);
                Ok(true)
            }
            (b"deepen-not", Some(rev)) => self.arg_list(rev, ArgList::DeepenNot),
            (b"filter", Some(spec)) => {
                if self.request.filter.is_some() {
                    return Err(bad());
                }
                self.request.filter = Some(text(spec).ok_or_else(bad)?);
                Ok(true)
            }
            (b"done", None) => {
                self.request.done = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// v2 `fetch` arguments beyond the v0 set; `false` if not one.
    fn v2_fetch_arg(&mut self, line: &[u8]) -> Result<bool, ProtoError> {
        let bad = || ProtoError::UnexpectedLine {
            context: "fetch arguments",
            line: excerpt(line),
        };
        match split_arg(line) {
            (b"want-ref", Some(name)) => self.arg_list(name, ArgList::WantRefs),
            (b"deepen-relative", None) => {
                self.request.deepen_relative = true;
                Ok(true)
            }
            (b"packfile-uris", Some(protocols)) => {
                self.request.packfile_uris = Some(text(protocols).ok_or_else(bad)?);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn arg_list(&mut self, value: &[u8], list: ArgList) -> Result<bool, ProtoError> {
        self.count_arg()?;
        let value = text(value).ok_or_else(|| ProtoError::UnexpectedLine {
            context: "arguments",
            line: excerpt(value),
        })?;
        let r = &mut self.request;
        match list {
            ArgList::DeepenNot => r.deepen_not.push(value),
            ArgList::WantRefs => r.want_refs.push(value),
            ArgList::RefPrefixes => r.ref_prefixes.push(value),
            ArgList::Features => r.features.push(value),
        }
        Ok(true)
    }

    /// Checks what needs the whole request: every kept id of the negotiated object format.
    fn finish(self) -> Result<UploadRequest, ProtoError> {
        let kind = self.request.capabilities.object_format()?;
        for id in self.request.wants.iter().chain(&self.request.shallow) {
            id.expect_kind(kind)?;
        }
        Ok(self.request)
    }
}

#[derive(Clone, Copy)]
enum ArgList {
    DeepenNot,
    WantRefs,
    RefPrefixes,
    Features,
}

/// `key value` or `key`.
fn split_arg(line: &[u8]) -> (&[u8], Option<&[u8]>) {
    let mut parts = line.splitn(2, |c| *c == b' ');
    (parts.next().unwrap_or_default(), parts.next())
}

/// Printable UTF-8 text (no control characters).
fn text(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.chars().any(char::is_control))
        .map(str::to_owned)
}

fn number(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use crate::proto::pktline::encode_data;
    use crate::proto::tests::{fixture, fixture_path, snapshot};

    const ID: &str = "8e4f0ac7665d7bf0f40294e57a73f8c18ee60893";

    /// Encodes lines as pkt-lines; `"0000"` and `"0001"` stand for flush and delim.
    fn wire(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            match *line {
                "0000" => out.extend_from_slice(b"0000"),
                "0001" => out.extend_from_slice(b"0001"),
                "0002" => out.extend_from_slice(b"0002"),
                _ => {
                    let _ = encode_data(&mut out, line.as_bytes());
                }
            }
        }
        out
    }

    fn v0(lines: &[&str]) -> Result<UploadRequest, ProtoError> {
        parse_upload_request(&wire(lines), ProtocolVersion::V0, &UploadLimits::default())
    }

    fn v2(lines: &[&str]) -> Result<UploadRequest, ProtoError> {
        parse_upload_request(&wire(lines), ProtocolVersion::V2, &UploadLimits::default())
    }

    /// Every recorded upload-pack request body, with the version it was sent with.
    pub(crate) fn recorded_requests() -> Vec<(String, ProtocolVersion)> {
        let mut found = Vec::new();
        let Ok(dirs) = std::fs::read_dir(fixture_path("")) else {
            return found;
        };
        for dir in dirs.flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            let version = if name.starts_with("fetch-v2") {
                ProtocolVersion::V2
            } else {
                ProtocolVersion::V0
            };
            for file in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let file = file.file_name().to_string_lossy().into_owned();
                if name.starts_with("fetch-") && file.ends_with("git-upload-pack.req") {
                    found.push((format!("{name}/{file}"), version));
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn recorded_requests_summarise() -> Result<(), ProtoError> {
        let mut out = String::new();
        let requests = recorded_requests();
        assert!(requests.len() >= 10, "fixtures missing: {requests:?}");
        for (name, version) in requests {
            let r = parse_upload_request(&fixture(&name), version, &UploadLimits::default())?;
            assert_eq!(r.refuse_reason(), None);
            let _ = writeln!(
                out,
                "{name}: {:?} {} wants={} want_refs={:?} haves={} shallow={} deepen={:?} filter={:?} done={} prefixes={:?} features={:?} caps=[{}]",
                r.version,
                r.command.as_ref().map_or("-", UploadCommand::name),
                r.wants.len(),
                r.want_refs,
                r.haves_count,
                r.shallow.len(),
                r.deepen,
                r.filter,
                r.done,
                r.ref_prefixes,
                r.features,
                r.capabilities,
            );
        }
        snapshot!(
            "upload_recorded_requests",
            "one summary per recorded request body; none is refused",
            out
        );
        Ok(())
    }

    #[test]
    fn v0_rounds_and_done() -> Result<(), ProtoError> {
        let want = format!("want {ID} multi_ack_detailed side-band-64k ofs-delta agent=git/2.47.3");
        let have = format!("have {ID}");
        let r = v0(&[
            &want,
            "deepen-since 1700000000",
            "deepen-not refs/heads/old",
            "filter blob:limit=1024",
            "0000",
            &have,
            &have,
            "0000",
            &have,
            "done",
        ])?;
        assert_eq!((r.wants.len(), r.haves_count, r.done), (1, 3, true));
        assert_eq!(r.deepen_since, Some(1_700_000_000));
        assert_eq!(r.deepen_not, ["refs/heads/old"]);
        assert_eq!(r.filter.as_deref(), Some("blob:limit=1024"));
        assert!(r.capabilities.contains("side-band-64k"));
        // A want list alone (first shallow round) and a lone flush are complete requests.
        assert!(v0(&[&want, "deepen 1", "0000"])?.deepen == Some(1));
        assert!(v0(&["0000"])?.wants.is_empty());
        Ok(())
    }

    #[test]
    fn v2_ls_refs_and_object_info() -> Result<(), ProtoError> {
        let r = v2(&[
            "command=ls-refs",
            "agent=git/2.47.3",
            "server-option=a b",
            "0001",
            "peel",
            "symrefs",
            "ref-prefix refs/heads/",
            "0000",
        ])?;
        assert_eq!(r.command, Some(UploadCommand::LsRefs));
        assert_eq!(r.ref_prefixes, ["refs/heads/"]);
        assert_eq!(r.features, ["peel", "symrefs"]);
        assert_eq!(r.capabilities.value("server-option"), Some("a b"));
        let oid = format!("oid {ID}");
        let r = v2(&["command=object-info", "0001", "size", &oid, "0000"])?;
        assert_eq!(
            (r.command, r.wants.len()),
            (Some(UploadCommand::ObjectInfo), 1)
        );
        assert_eq!(v2(&["0000"])?.command, None);
        assert_eq!(
            v2(&["command=fetch", "0000"])?.command,
            Some(UploadCommand::Fetch)
        );
        Ok(())
    }

    #[test]
    fn refuses_bundle_uri_and_packfile_uris() -> Result<(), ProtoError> {
        let r = v2(&["command=bundle-uri", "object-format=sha1", "0001", "0000"])?;
        assert!(r.refuse_reason().is_some_and(|m| m.contains("bundle-uri")));
        let want = format!("want {ID}");
        let r = v2(&[
            "command=fetch",
            "0001",
            &want,
            "packfile-uris https,http",
            "done",
            "0000",
        ])?;
        assert_eq!(r.packfile_uris.as_deref(), Some("https,http"));
        assert!(r
            .refuse_reason()
            .is_some_and(|m| m.contains("packfile-uris")));
        Ok(())
    }

    #[test]
    fn sha256_requests() -> Result<(), ProtoError> {
        let want = format!("want {}", "c".repeat(64));
        let have = format!("have {}", "d".repeat(64));
        let r = v2(&[
            "command=fetch",
            "object-format=sha256",
            "0001",
            &want,
            &have,
            "done",
            "0000",
        ])?;
        assert_eq!((r.wants.len(), r.haves_count), (1, 1));
        Ok(())
    }

    #[test]
    fn reproducer_truncated_bodies() {
        for (name, version) in recorded_requests() {
            let body = fixture(&name);
            for cut in [0, 1, 3, 4, 5, body.len() / 2, body.len() - 1] {
                let result = parse_upload_request(
                    body.get(..cut).unwrap_or_default(),
                    version,
                    &UploadLimits::default(),
                );
                assert!(result.is_err(), "{name} cut at {cut} accepted: {result:?}");
            }
        }
    }

    #[test]
    fn reproducer_v0_wants_without_flush() {
        let want = format!("want {ID}");
        assert!(matches!(v0(&[&want]), Err(ProtoError::Truncated { .. })));
    }

    #[test]
    fn reproducer_v0_have_without_round_end() {
        let want = format!("want {ID}");
        let have = format!("have {ID}");
        assert!(matches!(
            v0(&[&want, "0000", &have]),
            Err(ProtoError::Truncated { .. })
        ));
    }

    #[test]
    fn reproducer_v0_lines_out_of_place() {
        let want = format!("want {ID}");
        let have = format!("have {ID}");
        for lines in [
            vec![have.as_str(), "0000"],
            vec![&want, "done", "0000"],
            vec![&want, "0000", &want, "0000"],
            vec![&want, "bogus", "0000"],
            vec![&want, "0001"],
            vec![&want, "0000", "0002"],
            vec!["command=fetch", "0000"],
        ] {
            assert!(v0(&lines).is_err(), "{lines:?}");
        }
    }

    #[test]
    fn reproducer_trailing_data() {
        let want = format!("want {ID}");
        assert!(matches!(
            v0(&[&want, "0000", "done", "0000"]),
            Err(ProtoError::TrailingData { .. })
        ));
        assert!(matches!(
            v2(&["command=ls-refs", "0000", "0000"]),
            Err(ProtoError::TrailingData { .. })
        ));
    }

    #[test]
    fn reproducer_v2_malformed() {
        let want = format!("want {ID}");
        for lines in [
            vec!["want 1234", "0000"],
            vec!["command=", "0000"],
            vec!["command=fe\u{1b}tch", "0000"],
            vec!["command=fetch", "bad capability!", "0000"],
            vec!["command=fetch", "0002"],
            vec!["command=fetch", "0001", &want, "0001", "0000"],
            vec!["command=fetch", "0001", "want 1234", "0000"],
            vec!["command=fetch", "0001", "deepen 0", "0000"],
            vec!["command=fetch", "0001", "deepen -1", "0000"],
            vec!["command=fetch", "0001", "deepen 99999999999", "0000"],
            vec!["command=fetch", "0001", "deepen-since soon", "0000"],
            vec!["command=fetch", "0001", "filter a", "filter b", "0000"],
            vec!["command=fetch", "0001", "filter a\u{1b}b", "0000"],
            vec!["command=fetch", "object-format=md5", "0001", "0000"],
        ] {
            assert!(v2(&lines).is_err(), "{lines:?}");
        }
    }

    #[test]
    fn reproducer_object_format_mismatch() {
        let want = format!("want {ID}");
        let have = format!("have {}", "d".repeat(64));
        assert!(matches!(
            v2(&[
                "command=fetch",
                "object-format=sha256",
                "0001",
                &want,
                "0000"
            ]),
            Err(ProtoError::ObjectFormatMismatch { .. })
        ));
        assert!(matches!(
            v2(&["command=fetch", "0001", &have, "0000"]),
            Err(ProtoError::ObjectFormatMismatch { .. })
        ));
        let sha256_want = format!("want {} object-format=sha256", "c".repeat(64));
        let sha1_have = format!("have {ID}");
        assert!(matches!(
            v0(&[&sha256_want, "0000", &sha1_have, "0000"]),
            Err(ProtoError::ObjectFormatMismatch { .. })
        ));
    }

    #[test]
    fn limits_are_enforced() {
        let want = format!("want {ID}");
        let limits = UploadLimits {
            max_wants: 1,
            ..UploadLimits::default()
        };
        let body = wire(&[&want, &want, "0000"]);
        assert!(matches!(
            parse_upload_request(&body, ProtocolVersion::V0, &limits),
            Err(ProtoError::TooMany { what: "wants", .. })
        ));
        let limits = UploadLimits {
            max_args: 2,
            ..UploadLimits::default()
        };
        let body = wire(&[
            "command=ls-refs",
            "0001",
            "peel",
            "symrefs",
            "unborn",
            "0000",
        ]);
        assert!(matches!(
            parse_upload_request(&body, ProtocolVersion::V2, &limits),
            Err(ProtoError::TooMany {
                what: "arguments",
                ..
            })
        ));
        let limits = UploadLimits {
            max_line_bytes: 10,
            ..UploadLimits::default()
        };
        let body = wire(&["command=ls-refs", "0001", "ref-prefix refs/heads/", "0000"]);
        assert!(matches!(
            parse_upload_request(&body, ProtocolVersion::V2, &limits),
            Err(ProtoError::LineTooLong { .. })
        ));
        let limits = UploadLimits {
            max_shallow: 0,
            ..UploadLimits::default()
        };
        let shallow = format!("shallow {ID}");
        let body = wire(&[&want, &shallow, "0000"]);
        assert!(matches!(
            parse_upload_request(&body, ProtocolVersion::V0, &limits),
            Err(ProtoError::TooMany { .. })
        ));
    }
}
