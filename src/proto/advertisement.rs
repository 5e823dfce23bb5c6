//! What the upstream advertises and the gateway relays: the smart-HTTP service header, the
//! v0/v1 ref advertisement with its capability list, and the v2 capability advertisement.
//!
//! [`AdvertisementFilter`] rewrites an advertisement as it streams through. Only the packets
//! before the first ref line are parsed (at most one packet is buffered); everything after it is
//! copied without being looked at, so a repository with a million refs costs no memory.
//!
//! - v0/v1 (gitprotocol-pack "Reference Discovery"): optional `version 1`, then the first ref
//!   line `<oid> SP <ref> NUL <caps>` (or `<zero-id> capabilities^{} NUL <caps>` for an empty
//!   repository), more ref lines, `shallow` lines, flush. The [`CapabilityEdit`] applies to the
//!   capability list of the first line; all other lines stay byte-identical, and so does the
//!   first line when the edit changes nothing.
//! - v2 (gitprotocol-v2 "Capability Advertisement"): `version 2`, one `key[=value]` per line,
//!   flush. `bundle-uri` is removed and `packfile-uris` is dropped from the `fetch=` features:
//!   both let a client download objects from another URL, bypassing the gateway. A `fetch=`
//!   whose features all go becomes plain `fetch`. The [`CapabilityEdit`] does not apply to v2.

use std::borrow::Cow;

use bytes::{Buf, BufMut, BytesMut};

use crate::proto::capabilities::{Capabilities, Capability};
use crate::proto::pktline::{self, encode_data, trim_lf, Decoded, PktLine, MAX_DATA_LEN};
use crate::proto::{excerpt, packet_kind, ProtoError, ProtocolVersion};

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A smart-HTTP service (gitprotocol-http).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// `git-upload-pack`: fetch, clone, ls-remote.
    UploadPack,
    /// `git-receive-pack`: push.
    ReceivePack,
}

impl Service {
    /// The name without the `git-` prefix, as in the record and logs (`upload-pack`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UploadPack => "upload-pack",
            Self::ReceivePack => "receive-pack",
        }
    }

    /// The service name, as in `?service=git-upload-pack`.
    pub fn name(self) -> &'static str {
        match self {
            Self::UploadPack => "git-upload-pack",
            Self::ReceivePack => "git-receive-pack",
        }
    }

    /// The service of a name; other names (`git-upload-archive`, ...) are
    /// [`ProtoError::UnknownService`].
    pub fn from_name(name: &[u8]) -> Result<Self, ProtoError> {
        match name {
            b"git-upload-pack" => Ok(Self::UploadPack),
            b"git-receive-pack" => Ok(Self::ReceivePack),
            _ => Err(ProtoError::UnknownService {
                name: excerpt(name),
            }),
        }
    }

    /// The `Content-Type` of the `info/refs` response. It must be exact, or git falls back to
    /// the dumb protocol (gitprotocol-http "Smart Clients").
    pub fn advertisement_content_type(self) -> &'static str {
        match self {
            Self::UploadPack => "application/x-git-upload-pack-advertisement",
            Self::ReceivePack => "application/x-git-receive-pack-advertisement",
        }
    }

    /// The `Content-Type` of the request body of the service's POST.
    pub fn request_content_type(self) -> &'static str {
        match self {
            Self::UploadPack => "application/x-git-upload-pack-request",
            Self::ReceivePack => "application/x-git-receive-pack-request",
        }
    }

    /// The `Content-Type` of the response to the service's POST.
    pub fn result_content_type(self) -> &'static str {
        match self {
            Self::UploadPack => "application/x-git-upload-pack-result",
            Self::ReceivePack => "application/x-git-receive-pack-result",
        }
    }
}

const SERVICE_PREFIX: &[u8] = b"# service=";

/// Appends the smart-HTTP service header, `# service=<name>\n` and a flush, which starts a
/// v0/v1 `info/refs` response (gitprotocol-http; `git http-backend` omits it for v2).
pub fn encode_service_header<B: BufMut>(out: &mut B, service: Service) {
    let mut line = SERVICE_PREFIX.to_vec();
    line.extend_from_slice(service.name().as_bytes());
    line.push(b'\n');
    // At most 28 bytes: always fits a packet.
    let _ = encode_data(out, &line);
    out.put_slice(pktline::flush());
}

/// The outcome of [`detect_service_header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceHeader {
    /// The input starts with the header and its flush.
    Present {
        /// The service it names.
        service: Service,
        /// Bytes to skip to get past the header and flush.
        consumed: usize,
    },
    /// The input does not start with a service header.
    Absent,
    /// Not enough bytes to tell.
    Incomplete {
        /// At least this many more bytes are needed.
        needed: usize,
    },
}

/// Tells whether `buf` starts with the smart-HTTP service header (and how long it is).
pub fn detect_service_header(buf: &[u8]) -> Result<ServiceHeader, ProtoError> {
    let (first, consumed) = match pktline::decode(buf)? {
        Decoded::Incomplete { needed } => return Ok(ServiceHeader::Incomplete { needed }),
        Decoded::Packet { pkt, consumed } => (pkt, consumed),
    };
    let Some(name) = first
        .data()
        .and_then(|d| trim_lf(d).strip_prefix(SERVICE_PREFIX))
    else {
        return Ok(ServiceHeader::Absent);
    };
    let service = Service::from_name(name)?;
    match pktline::decode(buf.get(consumed..).unwrap_or_default())? {
        Decoded::Incomplete { needed } => Ok(ServiceHeader::Incomplete { needed }),
        Decoded::Packet {
            pkt: PktLine::Flush,
            consumed: flush,
        } => Ok(ServiceHeader::Present {
            service,
            consumed: consumed + flush,
        }),
        Decoded::Packet { pkt, .. } => Err(ProtoError::UnexpectedPacket {
            context: "service header (expected flush)",
            found: packet_kind(&pkt),
        }),
    }
}

/// Appends an `ERR <message>` packet: sent instead of an advertisement, git prints
/// `fatal: remote error: <message>` (gitprotocol-pack "error-line"). Line breaks and control
/// characters in `message` become spaces; an overlong message is cut.
pub fn encode_error_line<B: BufMut>(out: &mut B, message: &str) {
    let mut line = b"ERR ".to_vec();
    line.extend(
        message
            .bytes()
            .map(|c| if c < b' ' || c == 0x7f { b' ' } else { c }),
    );
    line.truncate(MAX_DATA_LEN - 1);
    line.push(b'\n');
    // Truncated to fit above.
    let _ = encode_data(out, &line);
}

/// The change made to a v0/v1 capability list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilityEdit {
    /// Names to remove (every occurrence).
    pub remove: Vec<String>,
    /// Capabilities to add, replacing one of the same name in place, else appended.
    pub add: Vec<Capability>,
}

impl CapabilityEdit {
    /// Applies the edit: removals first, then additions.
    pub fn apply(&self, caps: &mut Capabilities) {
        for name in &self.remove {
            caps.remove(name);
        }
        for cap in &self.add {
            caps.set(cap.clone());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first ref line. `header`: a service header may still come; `version`: a
    /// `version N` line may still come.
    Start { header: bool, version: bool },
    /// After `# service=...`, expecting its flush.
    ServiceFlush,
    /// Inside a v2 capability advertisement.
    V2,
    /// Everything else is copied unchanged.
    Passthrough,
}

/// Rewrites an advertisement fed in chunks; see the module docs for what changes.
#[derive(Debug)]
pub struct AdvertisementFilter {
    edit: CapabilityEdit,
    state: State,
    buf: BytesMut,
    version: Option<ProtocolVersion>,
    service: Option<Service>,
}

impl AdvertisementFilter {
    /// A filter applying `edit` to a v0/v1 capability list.
    pub fn new(edit: CapabilityEdit) -> Self {
        Self {
            edit,
            state: State::Start {
                header: true,
                version: true,
            },
            buf: BytesMut::new(),
            version: None,
            service: None,
        }
    }

    /// Feeds the next chunk of the upstream's advertisement and appends the bytes to relay to
    /// `out`. Packets are emitted as soon as they are complete.
    pub fn feed<B: BufMut>(&mut self, chunk: &[u8], out: &mut B) -> Result<(), ProtoError> {
        if self.state == State::Passthrough {
            out.put_slice(chunk);
            return Ok(());
        }
        // The buffer is moved out while packets borrowed from it are handled by `step`.
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(chunk);
        let mut offset = 0;
        let result = loop {
            if self.state == State::Passthrough {
                break Ok(());
            }
            let rest = buf.get(offset..).unwrap_or_default();
            let (pkt, consumed) = match pktline::decode(rest) {
                Ok(Decoded::Incomplete { .. }) => break Ok(()),
                Ok(Decoded::Packet { pkt, consumed }) => (pkt, consumed),
                Err(e) => break Err(e.into()),
            };
            match self.step(pkt, rest.get(..consumed).unwrap_or_default()) {
                Ok((state, emitted)) => {
                    out.put_slice(&emitted);
                    self.state = state;
                    offset += consumed;
                }
                Err(e) => break Err(e),
            }
        };
        buf.advance(offset);
        if self.state == State::Passthrough {
            out.put_slice(&buf);
            buf.clear();
        }
        self.buf = buf;
        result
    }

    /// Errors unless the input so far ended after the part that needed rewriting, i.e. the
    /// upstream did not stop before its first ref line (v0/v1) or its flush (v2).
    pub fn finish(&self) -> Result<(), ProtoError> {
        match self.state {
            State::Passthrough => Ok(()),
            _ => Err(ProtoError::Truncated {
                context: "advertisement",
            }),
        }
    }

    /// The protocol version the advertisement revealed, once known (`version 1` or `2` line,
    /// or V0 for a first ref line without one).
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// The service named by a smart-HTTP service header, if there was one.
    pub fn service(&self) -> Option<Service> {
        self.service
    }

    /// Handles one complete packet (`raw` is its encoding): the next state and what to emit.
    fn step<'r>(
        &mut self,
        pkt: PktLine<'_>,
        raw: &'r [u8],
    ) -> Result<(State, Cow<'r, [u8]>), ProtoError> {
        let keep = Cow::Borrowed(raw);
        let (header, version, d) = match (self.state, pkt) {
            (State::ServiceFlush, PktLine::Flush) => {
                return Ok((
                    State::Start {
                        header: false,
                        version: true,
                    },
                    keep,
                ));
            }
            (State::V2 | State::Start { .. }, PktLine::Flush) => {
                return Ok((State::Passthrough, keep))
            }
            (State::V2, PktLine::Data(d)) => {
                let emitted = match filter_v2_line(d)? {
                    V2Line::Keep => keep,
                    V2Line::Drop => Cow::Borrowed(&[][..]),
                    V2Line::Replace(packet) => Cow::Owned(packet),
                };
                return Ok((State::V2, emitted));
            }
            (State::Start { header, version }, PktLine::Data(d)) => (header, version, d),
            (_, pkt) => {
                return Err(ProtoError::UnexpectedPacket {
                    context: "advertisement",
                    found: packet_kind(&pkt),
                })
            }
        };
        let line = trim_lf(d);
        if header && line.starts_with(SERVICE_PREFIX) {
            self.service = Some(Service::from_name(
                line.get(SERVICE_PREFIX.len()..).unwrap_or_default(),
            )?);
            return Ok((State::ServiceFlush, keep));
        }
        if version && line == b"version 1" {
            self.version = Some(ProtocolVersion::V1);
            return Ok((
                State::Start {
                    header: false,
                    version: false,
                },
                keep,
            ));
        }
        if version && line == b"version 2" {
            self.version = Some(ProtocolVersion::V2);
            return Ok((State::V2, keep));
        }
        if line.starts_with(b"ERR ") {
            return Ok((State::Passthrough, keep));
        }
        let Some(nul) = d.iter().position(|c| *c == 0) else {
            return Err(ProtoError::UnexpectedLine {
                context: "advertisement (first ref line without capabilities)",
                line: excerpt(line),
            });
        };
        self.version.get_or_insert(ProtocolVersion::V0);
        let (head, caps) = (
            d.get(..nul).unwrap_or_default(),
            d.get(nul + 1..).unwrap_or_default(),
        );
        let original = Capabilities::parse(caps)?;
        let mut edited = original.clone();
        self.edit.apply(&mut edited);
        if edited == original {
            return Ok((State::Passthrough, keep));
        }
        let mut line = head.to_vec();
        line.push(0);
        line.extend_from_slice(edited.to_string().as_bytes());
        if caps.ends_with(b"\n") {
            line.push(b'\n');
        }
        let mut out = Vec::with_capacity(line.len() + 4);
        encode_data(&mut out, &line)?;
        Ok((State::Passthrough, Cow::Owned(out)))
    }
}

/// What happens to one v2 capability line.
enum V2Line {
    Keep,
    Drop,
    /// The encoded packet replacing it.
    Replace(Vec<u8>),
}

fn filter_v2_line(data: &[u8]) -> Result<V2Line, ProtoError> {
    let cap = Capability::parse_v2(trim_lf(data))?;
    match (cap.name(), cap.value()) {
        // gitprotocol-v2 "bundle-uri": the client may fetch bundles from other URLs.
        ("bundle-uri", _) => Ok(V2Line::Drop),
        // gitprotocol-v2 "fetch", "packfile-uris": parts of the pack from other URLs.
        ("fetch", Some(features)) if features.split(' ').any(|f| f == "packfile-uris") => {
            let kept: Vec<&str> = features
                .split(' ')
                .filter(|f| *f != "packfile-uris")
                .collect();
            let mut line = b"fetch".to_vec();
            if kept.iter().any(|f| !f.is_empty()) {
                line.push(b'=');
                line.extend_from_slice(kept.join(" ").as_bytes());
            }
            let mut out = Vec::new();
            pktline::encode_text(&mut out, &line)?;
            Ok(V2Line::Replace(out))
        }
        _ => Ok(V2Line::Keep),
    }
}

/// Rewrites a whole advertisement held in memory; see [`AdvertisementFilter`].
pub fn filter_advertisement(input: &[u8], edit: &CapabilityEdit) -> Result<Vec<u8>, ProtoError> {
    let mut filter = AdvertisementFilter::new(edit.clone());
    let mut out = Vec::with_capacity(input.len() + 64);
    filter.feed(input, &mut out)?;
    filter.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::pktline::encode_text;
    use crate::proto::tests::{fixture, render, snapshot};

    fn edit(remove: &[&str], add: &[&str]) -> Result<CapabilityEdit, ProtoError> {
        Ok(CapabilityEdit {
            remove: remove.iter().map(|s| s.to_string()).collect(),
            add: add
                .iter()
                .map(|s| Capability::parse(s.as_bytes()))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Feeds `input` in chunks of `size` bytes.
    fn chunked(input: &[u8], edit: &CapabilityEdit, size: usize) -> Result<Vec<u8>, ProtoError> {
        let mut filter = AdvertisementFilter::new(edit.clone());
        let mut out = Vec::new();
        for chunk in input.chunks(size) {
            filter.feed(chunk, &mut out)?;
        }
        filter.finish()?;
        Ok(out)
    }

    #[test]
    fn recorded_advertisements_pass_unchanged_without_edit() -> Result<(), ProtoError> {
        for name in [
            "fetch-v0-clone/01-refs.resp",
            "push-update/01-refs.resp",
            "push-empty/01-refs.resp",
            "fetch-v2-clone/01-refs.resp",
        ] {
            let input = fixture(name);
            assert_eq!(
                filter_advertisement(&input, &CapabilityEdit::default())?,
                input,
                "{name}"
            );
        }
        Ok(())
    }

    #[test]
    fn receive_pack_capabilities_are_edited_on_the_first_line_only() -> Result<(), ProtoError> {
        // Invariant: only the capability list after the NUL of the first ref line changes;
        // the service header, the other ref lines and the flush are byte-identical.
        let input = fixture("fetch-v0-clone/01-refs.resp");
        let edit = edit(
            &["multi_ack", "thin-pack", "filter"],
            &["no-thin", "agent=gitgate"],
        )?;
        let out = filter_advertisement(&input, &edit)?;
        snapshot!(
            "advertisement_v0_edited",
            "upload-pack advertisement: multi_ack, thin-pack, filter removed; no-thin added, agent replaced in place",
            render(&out)
        );
        let tail = |b: &[u8]| {
            let second_ref = b.windows(5).position(|w| w == b"\n003d").map(|i| i + 1);
            second_ref.and_then(|i| b.get(i..)).map(<[u8]>::to_vec)
        };
        assert_eq!(tail(&out), tail(&input));
        assert_eq!(
            out.get(..35),
            input.get(..35),
            "service header and flush unchanged"
        );
        Ok(())
    }

    #[test]
    fn empty_repository_capabilities_line_is_edited() -> Result<(), ProtoError> {
        let input = fixture("push-empty/01-refs.resp");
        let out = filter_advertisement(&input, &edit(&["push-options", "atomic"], &["no-thin"])?)?;
        snapshot!(
            "advertisement_empty_repo_edited",
            "capabilities^{} line of an empty repository: push-options, atomic removed; no-thin appended",
            render(&out)
        );
        Ok(())
    }

    #[test]
    fn any_chunking_gives_the_same_output() -> Result<(), ProtoError> {
        let input = fixture("push-update/01-refs.resp");
        let edit = edit(&["atomic"], &["no-thin"])?;
        let whole = filter_advertisement(&input, &edit)?;
        for size in 1..40 {
            assert_eq!(chunked(&input, &edit, size)?, whole, "chunk size {size}");
        }
        let v2 = v2_advertisement()?;
        let v2_whole = filter_advertisement(&v2, &edit)?;
        for size in 1..20 {
            assert_eq!(chunked(&v2, &edit, size)?, v2_whole, "v2 chunk size {size}");
        }
        Ok(())
    }

    #[test]
    fn version_1_line_is_kept() -> Result<(), ProtoError> {
        let mut input = Vec::new();
        encode_text(&mut input, b"version 1")?;
        encode_text(
            &mut input,
            b"8e4f0ac7665d7bf0f40294e57a73f8c18ee60893 HEAD\0thin-pack ofs-delta",
        )?;
        input.extend_from_slice(b"0000");
        let mut filter = AdvertisementFilter::new(edit(&["thin-pack"], &[])?);
        let mut out = Vec::new();
        filter.feed(&input, &mut out)?;
        filter.finish()?;
        assert_eq!(filter.version(), Some(ProtocolVersion::V1));
        assert_eq!(
            render(&out),
            "000e version 1\\n\n003c 8e4f0ac7665d7bf0f40294e57a73f8c18ee60893 HEAD\\x00ofs-delta\\n\n0000 (flush)\n"
        );
        Ok(())
    }

    fn v2_advertisement() -> Result<Vec<u8>, ProtoError> {
        let mut out = Vec::new();
        for line in [
            &b"version 2"[..],
            b"agent=git/2.47.3",
            b"ls-refs=unborn",
            b"fetch=shallow wait-for-done filter packfile-uris",
            b"server-option",
            b"object-format=sha1",
            b"bundle-uri",
        ] {
            encode_text(&mut out, line)?;
        }
        out.extend_from_slice(b"0000");
        Ok(out)
    }

    #[test]
    fn v2_bundle_uri_and_packfile_uris_are_stripped() -> Result<(), ProtoError> {
        let input = v2_advertisement()?;
        let mut filter = AdvertisementFilter::new(CapabilityEdit::default());
        let mut out = Vec::new();
        filter.feed(&input, &mut out)?;
        filter.finish()?;
        assert_eq!(filter.version(), Some(ProtocolVersion::V2));
        snapshot!(
            "advertisement_v2_stripped",
            "v2: bundle-uri line gone, packfile-uris gone from fetch=, other lines unchanged",
            render(&out)
        );
        Ok(())
    }

    #[test]
    fn v2_fetch_with_only_packfile_uris_becomes_plain_fetch() -> Result<(), ProtoError> {
        let mut input = Vec::new();
        encode_text(&mut input, b"version 2")?;
        encode_text(&mut input, b"fetch=packfile-uris")?;
        encode_text(&mut input, b"fetch")?;
        input.extend_from_slice(b"0000");
        let out = filter_advertisement(&input, &CapabilityEdit::default())?;
        assert_eq!(
            render(&out),
            "000e version 2\\n\n000a fetch\\n\n000a fetch\\n\n0000 (flush)\n"
        );
        Ok(())
    }

    #[test]
    fn v2_recorded_advertisement_has_no_bypass() -> Result<(), ProtoError> {
        // git 2.47 advertises bundle-uri only with uploadpack.advertiseBundleURIs: the
        // recorded advertisement passes unchanged and its version is detected.
        let input = fixture("fetch-v2-clone/01-refs.resp");
        let mut filter = AdvertisementFilter::new(CapabilityEdit::default());
        let mut out = Vec::new();
        filter.feed(&input, &mut out)?;
        assert_eq!((out, filter.version()), (input, Some(ProtocolVersion::V2)));
        Ok(())
    }

    #[test]
    fn large_advertisement_streams_with_bounded_memory() -> Result<(), ProtoError> {
        let mut input = Vec::new();
        encode_text(
            &mut input,
            b"8e4f0ac7665d7bf0f40294e57a73f8c18ee60893 HEAD\0thin-pack",
        )?;
        for i in 0..50_000 {
            encode_text(
                &mut input,
                format!("8e4f0ac7665d7bf0f40294e57a73f8c18ee60893 refs/tags/t{i}").as_bytes(),
            )?;
        }
        input.extend_from_slice(b"0000");
        let mut filter = AdvertisementFilter::new(edit(&[], &["no-thin"])?);
        let mut out = Vec::new();
        for chunk in input.chunks(4096) {
            filter.feed(chunk, &mut out)?;
            assert!(filter.buf.len() <= 4096, "buffered {}", filter.buf.len());
        }
        filter.finish()?;
        assert_eq!(out.len(), input.len() + " no-thin".len());
        Ok(())
    }

    #[test]
    fn service_header_detect_skip_and_write() -> Result<(), ProtoError> {
        let input = fixture("fetch-v0-clone/01-refs.resp");
        let ServiceHeader::Present { service, consumed } = detect_service_header(&input)? else {
            panic!("header not found");
        };
        assert_eq!((service, consumed), (Service::UploadPack, 34));
        let mut written = Vec::new();
        encode_service_header(&mut written, Service::UploadPack);
        assert_eq!(input.get(..consumed), Some(&written[..]));
        assert_eq!(
            detect_service_header(&fixture("fetch-v2-clone/01-refs.resp"))?,
            ServiceHeader::Absent
        );
        assert_eq!(
            detect_service_header(&input[..10])?,
            ServiceHeader::Incomplete { needed: 20 }
        );
        assert_eq!(
            detect_service_header(&input[..31])?,
            ServiceHeader::Incomplete { needed: 3 }
        );
        Ok(())
    }

    #[test]
    fn reproducer_service_header_not_followed_by_flush() -> Result<(), ProtoError> {
        let mut input = Vec::new();
        encode_text(&mut input, b"# service=git-receive-pack")?;
        encode_text(&mut input, b"version 2")?;
        assert!(matches!(
            detect_service_header(&input),
            Err(ProtoError::UnexpectedPacket { .. })
        ));
        assert!(filter_advertisement(&input, &CapabilityEdit::default()).is_err());
        Ok(())
    }

    #[test]
    fn reproducer_unknown_service() -> Result<(), ProtoError> {
        let mut input = Vec::new();
        encode_text(&mut input, b"# service=git-upload-archive")?;
        assert!(matches!(
            detect_service_header(&input),
            Err(ProtoError::UnknownService { .. })
        ));
        assert!(matches!(
            filter_advertisement(&input, &CapabilityEdit::default()),
            Err(ProtoError::UnknownService { .. })
        ));
        Ok(())
    }

    #[test]
    fn reproducer_first_ref_line_without_capabilities() -> Result<(), ProtoError> {
        let mut input = Vec::new();
        encode_text(
            &mut input,
            b"8e4f0ac7665d7bf0f40294e57a73f8c18ee60893 refs/heads/main",
        )?;
        let err = filter_advertisement(&input, &CapabilityEdit::default());
        assert!(matches!(err, Err(ProtoError::UnexpectedLine { .. })));
        Ok(())
    }

    #[test]
    fn reproducer_truncated_before_first_ref() -> Result<(), ProtoError> {
        let input = fixture("push-update/01-refs.resp");
        for cut in [0, 3, 10, 34, 40] {
            let result = filter_advertisement(
                input.get(..cut).unwrap_or_default(),
                &CapabilityEdit::default(),
            );
            assert!(
                matches!(result, Err(ProtoError::Truncated { .. })),
                "cut at {cut}"
            );
        }
        Ok(())
    }

    #[test]
    fn reproducer_delim_in_v0_advertisement() {
        let result = filter_advertisement(b"0001", &CapabilityEdit::default());
        assert!(matches!(
            result,
            Err(ProtoError::UnexpectedPacket { found: "delim", .. })
        ));
    }

    #[test]
    fn reproducer_bad_capability_in_first_line() -> Result<(), ProtoError> {
        let mut input = Vec::new();
        encode_text(
            &mut input,
            b"8e4f0ac7665d7bf0f40294e57a73f8c18ee60893 HEAD\0ok bad\x01cap",
        )?;
        let result = filter_advertisement(&input, &CapabilityEdit::default());
        assert!(matches!(result, Err(ProtoError::BadCapability { .. })));
        Ok(())
    }

    #[test]
    fn err_line_passes_and_is_written_sanitised() -> Result<(), ProtoError> {
        let mut input = Vec::new();
        encode_error_line(&mut input, "no access\nto this repo");
        assert_eq!(input, b"001fERR no access to this repo\n");
        assert_eq!(
            filter_advertisement(&input, &CapabilityEdit::default())?,
            input
        );
        Ok(())
    }
}
