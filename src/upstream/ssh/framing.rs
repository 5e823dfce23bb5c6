//! Where an upstream's answer ends on a stateful SSH stream.
//!
//! Over SSH, `git-upload-pack` and `git-receive-pack` hold one conversation per process; the
//! gateway relays stateless request/response exchanges (as smart HTTP does), so it must know
//! where each answer ends without waiting for the process to exit. It follows the pkt-lines
//! as they stream past, keeping only a packet header and the first bytes of a payload:
//!
//! - advertisements (v0/v1 refs, v2 capabilities) end at the first flush;
//! - v2 command responses (`ls-refs`, `fetch`, `object-info`) end at their flush
//!   (gitprotocol-v2: sections are separated by delim packets; only the end is a flush);
//! - v0/v1 upload-pack: an optional shallow section ending in a flush, then ACK/NAK lines.
//!   A request without `done` gets one NAK per flushed round of `have`s (multi_ack); with
//!   `done` (or `no-done` once the server is ready) the pack follows in side-band packets up
//!   to a flush, or raw until the process exits;
//! - receive-pack with side-band: the report-status inside band 1, then the outer flush.
//!
//! An `ERR` packet, or band 3 (fatal error), also ends an answer: the process dies after it.

use crate::proto::pktline::{self, Decoded, PktLine};

/// Payload bytes kept per packet: `ACK <oid> ready`, `version 2`, a band byte, an `ERR` line.
const HEAD_MAX: usize = 256;

/// A malformed answer.
#[derive(Debug, thiserror::Error)]
#[error("malformed pkt-line from the upstream: {0}")]
pub struct FrameError(String);

/// What answer is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A ref advertisement or a v2 capability advertisement.
    Advertisement,
    /// A v2 command response.
    V2Command,
    /// A v0/v1 upload-pack answer to a request of this shape.
    Upload(UploadShape),
    /// receive-pack's report-status wrapped in side-band.
    ReceiveSideband,
    /// Everything until the process exits (receive-pack without side-band).
    Eof,
}

/// What the answer to a v0/v1 upload-pack request looks like, read from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadShape {
    /// The request ends the negotiation with `done`: a pack follows.
    pub done: bool,
    /// Flushes after the want section: each is a round of `have`s answered by a NAK.
    pub rounds: usize,
    /// `shallow`/`deepen*` lines: the answer may start with a shallow section and a flush.
    pub shallow: bool,
    /// The client asked for `no-done`: a ready server sends the pack without `done`.
    pub no_done: bool,
}

impl UploadShape {
    /// Reads the shape of a whole v0/v1 upload-pack request.
    pub fn of(request: &[u8]) -> UploadShape {
        let mut shape = UploadShape::default();
        let mut in_wants = true;
        for pkt in pktline::packets(request) {
            let Ok(pkt) = pkt else { break };
            match pkt {
                PktLine::Flush if in_wants => in_wants = false,
                PktLine::Flush => shape.rounds += 1,
                PktLine::Data(line) => {
                    let line = pktline::trim_lf(line);
                    if in_wants {
                        if line.starts_with(b"shallow ") || line.starts_with(b"deepen") {
                            shape.shallow = true;
                        }
                        if line.starts_with(b"want ")
                            && line.split(|&b| b == b' ').any(|w| w == b"no-done")
                        {
                            shape.no_done = true;
                        }
                    } else if line == b"done" {
                        shape.done = true;
                    }
                }
                PktLine::Delim | PktLine::ResponseEnd => {}
            }
        }
        shape
    }
}

/// Whether a receive-pack request asks for side-band, read from its first bytes: the
/// capabilities follow a NUL on the first command (after any `shallow` lines). `None`: the
/// first command is not complete yet.
pub fn receive_sideband(head: &[u8]) -> Option<bool> {
    let mut rest = head;
    loop {
        match pktline::decode(rest) {
            Ok(Decoded::Incomplete { .. }) => return None,
            Ok(Decoded::Packet { pkt, consumed }) => match pkt {
                PktLine::Data(line) if line.starts_with(b"shallow ") => {
                    rest = rest.get(consumed..).unwrap_or_default();
                }
                PktLine::Data(line) => {
                    let Some(nul) = line.iter().position(|&b| b == 0) else {
                        return Some(false);
                    };
                    let caps = pktline::trim_lf(line.get(nul + 1..).unwrap_or_default());
                    return Some(
                        caps.split(|&b| b == b' ')
                            .any(|c| c == b"side-band-64k" || c == b"side-band"),
                    );
                }
                _ => return Some(false),
            },
            // Not pkt-lines: the upstream will say so.
            Err(_) => return Some(false),
        }
    }
}

/// The outcome of feeding a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// The answer goes on.
    More,
    /// The answer ends after the first `used` bytes of the chunk.
    Done {
        /// Bytes of the chunk that belong to the answer.
        used: usize,
    },
}

/// Follows one answer's packets.
#[derive(Debug)]
pub struct Framer {
    expect: Expect,
    header: [u8; 4],
    header_len: usize,
    remaining: usize,
    head: Vec<u8>,
    raw: bool,
    done: bool,
    version: u8,
    seen_data: bool,
    acks_seen: bool,
    naks: usize,
    ready: bool,
    in_pack: bool,
    error: Option<String>,
}

impl Framer {
    /// A framer for the answer `expect`.
    pub fn new(expect: Expect) -> Framer {
        // A request without `done`, `have` rounds or deepening gets no answer at all.
        let done = matches!(
            expect,
            Expect::Upload(UploadShape {
                done: false,
                rounds: 0,
                shallow: false,
                ..
            })
        );
        Framer {
            expect,
            header: [0; 4],
            header_len: 0,
            remaining: 0,
            head: Vec::with_capacity(HEAD_MAX),
            raw: false,
            done,
            version: 0,
            seen_data: false,
            acks_seen: false,
            naks: 0,
            ready: false,
            in_pack: false,
            error: None,
        }
    }

    /// Whether the whole answer has been seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the bytes so far end between packets (or in a raw pack, which ends with the
    /// stream): an answer cut here is not cut inside a packet.
    pub fn at_boundary(&self) -> bool {
        self.raw || (self.header_len == 0 && self.remaining == 0)
    }

    /// For an advertisement: the protocol version it announced (0 without a version line).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Whether the first packet has been seen whole (then [`Framer::version`] is known).
    pub fn first_seen(&self) -> bool {
        self.seen_data || self.done
    }

    /// The message of an `ERR` packet that ended the answer.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Follows `chunk`; says where the answer ends when it ends inside it.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Feed, FrameError> {
        if self.done {
            return Ok(Feed::Done { used: 0 });
        }
        let mut i = 0;
        while i < chunk.len() {
            if self.raw {
                return Ok(Feed::More);
            }
            let rest = chunk.get(i..).unwrap_or_default();
            if self.remaining > 0 {
                let n = self.remaining.min(rest.len());
                let keep = n.min(HEAD_MAX.saturating_sub(self.head.len()));
                self.head
                    .extend_from_slice(rest.get(..keep).unwrap_or_default());
                self.remaining -= n;
                i += n;
                if self.remaining == 0 {
                    let head = std::mem::take(&mut self.head);
                    self.on_data(&head);
                    self.head = head;
                    self.head.clear();
                }
            } else {
                let n = (4 - self.header_len).min(rest.len());
                if let (Some(dst), Some(src)) = (
                    self.header.get_mut(self.header_len..self.header_len + n),
                    rest.get(..n),
                ) {
                    dst.copy_from_slice(src);
                }
                self.header_len += n;
                i += n;
                if self.header_len == 4 {
                    self.header_len = 0;
                    self.on_header()?;
                }
            }
            if self.done {
                return Ok(Feed::Done { used: i });
            }
        }
        Ok(Feed::More)
    }

    fn on_header(&mut self) -> Result<(), FrameError> {
        let header = self.header;
        match pktline::decode(&header) {
            Ok(Decoded::Packet { pkt, .. }) => match pkt {
                PktLine::Data(_) => self.on_data(&[]),
                PktLine::Flush => self.on_flush(),
                PktLine::Delim => {}
                PktLine::ResponseEnd => self.done = true,
            },
            Ok(Decoded::Incomplete { needed }) => {
                self.remaining = needed;
                self.head.clear();
            }
            // Without side-band, upload-pack sends the pack raw after the ACK/NAK lines.
            Err(_) if matches!(self.expect, Expect::Upload(_)) && header == *b"PACK" => {
                self.raw = true;
            }
            // Nothing to follow: the process's exit ends the answer.
            Err(_) if matches!(self.expect, Expect::Eof) => self.raw = true,
            Err(e) => return Err(FrameError(e.to_string())),
        }
        Ok(())
    }

    fn on_flush(&mut self) {
        match self.expect {
            Expect::Advertisement | Expect::V2Command | Expect::ReceiveSideband => self.done = true,
            Expect::Eof => {}
            Expect::Upload(shape) => {
                if self.in_pack {
                    self.done = true;
                } else if !self.acks_seen && !shape.done && shape.rounds == 0 {
                    // The end of the shallow section answers a deepen-only round.
                    self.done = true;
                }
            }
        }
    }

    fn on_data(&mut self, payload: &[u8]) {
        let first = !self.seen_data;
        self.seen_data = true;
        if let Some(message) = payload.strip_prefix(b"ERR ").filter(|_| !self.in_pack) {
            self.error = Some(String::from_utf8_lossy(pktline::trim_lf(message)).into_owned());
            self.done = true;
            return;
        }
        match self.expect {
            Expect::Advertisement if first => {
                let line = pktline::trim_lf(payload);
                if line == b"version 2" {
                    self.version = 2;
                } else if line == b"version 1" {
                    self.version = 1;
                }
            }
            Expect::Upload(shape) => self.on_upload_data(shape, payload),
            _ => {}
        }
    }

    fn on_upload_data(&mut self, shape: UploadShape, payload: &[u8]) {
        if self.in_pack {
            if payload.first() == Some(&3) {
                self.done = true;
            }
            return;
        }
        let line = pktline::trim_lf(payload);
        if line == b"NAK" {
            self.acks_seen = true;
            self.naks += 1;
        } else if line.starts_with(b"ACK ") {
            self.acks_seen = true;
            if line.ends_with(b" ready") {
                self.ready = true;
            }
        } else if line.starts_with(b"shallow ") || line.starts_with(b"unshallow ") {
            return;
        } else if matches!(payload.first(), Some(1..=3)) {
            self.in_pack = true;
            if payload.first() == Some(&3) {
                self.done = true;
            }
            return;
        }
        if !shape.done && self.naks >= shape.rounds && !(shape.no_done && self.ready) {
            self.done = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        pktline::encode_data(&mut out, text.as_bytes()).expect("encode");
        out
    }

    fn band(b: u8, data: &[u8]) -> Vec<u8> {
        let mut payload = vec![b];
        payload.extend_from_slice(data);
        let mut out = Vec::new();
        pktline::encode_data(&mut out, &payload).expect("encode");
        out
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Feeds `stream` one byte at a time (the hardest split) and in one piece; both must
    /// agree on where the answer ends.
    fn end_of(expect: Expect, stream: &[u8]) -> Option<usize> {
        let mut whole = Framer::new(expect);
        let at_once = match whole.feed(stream).expect("frames") {
            Feed::Done { used } => Some(used),
            Feed::More => None,
        };
        let mut bytes = Framer::new(expect);
        let mut by_byte = None;
        for (i, b) in stream.iter().enumerate() {
            if let Feed::Done { used } = bytes.feed(&[*b]).expect("frames") {
                by_byte = Some(i + used);
                break;
            }
        }
        assert_eq!(at_once, by_byte, "split feeding disagrees");
        at_once
    }

    const OID: &str = "1111111111111111111111111111111111111111";

    #[test]
    fn advertisement_ends_at_its_flush_and_tells_the_version() {
        let adv = cat(&[&pkt(&format!("{OID} HEAD\0multi_ack\n")), b"0000"]);
        let stream = cat(&[&adv, b"garbage"]);
        assert_eq!(end_of(Expect::Advertisement, &stream), Some(adv.len()));
        let v2 = cat(&[&pkt("version 2\n"), &pkt("ls-refs=unborn\n"), b"0000"]);
        let mut f = Framer::new(Expect::Advertisement);
        assert_eq!(f.feed(&v2).expect("ok"), Feed::Done { used: v2.len() });
        assert_eq!(f.version(), 2);
    }

    #[test]
    fn v2_fetch_ends_at_the_flush_after_the_packfile_not_at_delims() {
        let stream = cat(&[
            &pkt("acknowledgments\n"),
            &pkt(&format!("ACK {OID}\n")),
            &pkt("ready\n"),
            b"0001",
            &pkt("packfile\n"),
            &band(2, b"Counting objects\r"),
            // A payload that looks like a flush must not end the answer.
            &band(1, b"0000PACK..."),
            b"0000",
        ]);
        assert_eq!(end_of(Expect::V2Command, &stream), Some(stream.len()));
    }

    #[test]
    fn upload_round_without_done_ends_at_its_nak() {
        let request = cat(&[
            &pkt(&format!(
                "want {OID} multi_ack_detailed side-band-64k no-done\n"
            )),
            b"0000",
            &pkt(&format!("have {OID}\n")),
            b"0000",
        ]);
        let shape = UploadShape::of(&request);
        assert_eq!(
            shape,
            UploadShape {
                done: false,
                rounds: 1,
                shallow: false,
                no_done: true
            }
        );
        let answer = cat(&[&pkt(&format!("ACK {OID} common\n")), &pkt("NAK\n")]);
        assert_eq!(end_of(Expect::Upload(shape), &answer), Some(answer.len()));
    }

    #[test]
    fn upload_ready_with_no_done_goes_on_to_the_pack() {
        let shape = UploadShape {
            done: false,
            rounds: 1,
            shallow: false,
            no_done: true,
        };
        let answer = cat(&[
            &pkt(&format!("ACK {OID} ready\n")),
            &pkt("NAK\n"),
            &pkt(&format!("ACK {OID}\n")),
            &band(1, b"PACK"),
            b"0000",
        ]);
        assert_eq!(end_of(Expect::Upload(shape), &answer), Some(answer.len()));
    }

    #[test]
    fn upload_with_done_ends_after_the_side_band_pack() {
        let request = cat(&[
            &pkt(&format!("want {OID} side-band-64k\n")),
            &pkt("deepen 1\n"),
            b"0000",
            &pkt("done\n"),
        ]);
        let shape = UploadShape::of(&request);
        assert!(shape.done && shape.shallow);
        let answer = cat(&[
            &pkt(&format!("shallow {OID}\n")),
            b"0000",
            &pkt("NAK\n"),
            &band(2, b"progress"),
            &band(1, b"PACK\0\0"),
            b"0000",
        ]);
        assert_eq!(end_of(Expect::Upload(shape), &answer), Some(answer.len()));
    }

    #[test]
    fn deepen_only_round_ends_with_the_shallow_section() {
        let shape = UploadShape {
            shallow: true,
            ..UploadShape::default()
        };
        let answer = cat(&[&pkt(&format!("shallow {OID}\n")), b"0000"]);
        assert_eq!(end_of(Expect::Upload(shape), &answer), Some(answer.len()));
        // Nothing asked, nothing answered.
        assert!(Framer::new(Expect::Upload(UploadShape::default())).is_done());
    }

    #[test]
    fn raw_pack_without_side_band_runs_to_the_end_of_the_stream() {
        let shape = UploadShape {
            done: true,
            ..UploadShape::default()
        };
        let mut f = Framer::new(Expect::Upload(shape));
        let answer = cat(&[&pkt("NAK\n"), b"PACK\0\0\0\x02", b"0000 not a packet"]);
        assert_eq!(f.feed(&answer).expect("ok"), Feed::More);
        assert!(f.at_boundary());
    }

    #[test]
    fn err_and_band_3_end_an_answer() {
        let err = pkt("ERR upload-pack: not our ref\n");
        let shape = UploadShape {
            done: true,
            ..UploadShape::default()
        };
        assert_eq!(end_of(Expect::Upload(shape), &err), Some(err.len()));
        assert_eq!(end_of(Expect::Advertisement, &err), Some(err.len()));
        let mut f = Framer::new(Expect::Advertisement);
        f.feed(&err).expect("ok");
        assert_eq!(f.error(), Some("upload-pack: not our ref"));
        let fatal = cat(&[&pkt("NAK\n"), &band(3, b"fatal")]);
        assert_eq!(end_of(Expect::Upload(shape), &fatal), Some(fatal.len()));
    }

    #[test]
    fn receive_pack_report_in_side_band_ends_at_the_outer_flush() {
        let mut inner = Vec::new();
        inner.extend(pkt("unpack ok\n"));
        inner.extend(pkt("ok refs/heads/main\n"));
        inner.extend(b"0000");
        let answer = cat(&[&band(2, b"hook output\n"), &band(1, &inner), b"0000"]);
        assert_eq!(end_of(Expect::ReceiveSideband, &answer), Some(answer.len()));
        let head = cat(&[
            &pkt(&format!("shallow {OID}\n")),
            &pkt(&format!(
                "{OID} {OID} refs/heads/main\0report-status side-band-64k\n"
            )),
            b"0000",
        ]);
        assert_eq!(receive_sideband(&head), Some(true));
        assert_eq!(receive_sideband(&head[..60]), None);
        let plain = pkt(&format!("{OID} {OID} refs/heads/main\0report-status\n"));
        assert_eq!(receive_sideband(&plain), Some(false));
    }

    #[test]
    fn cut_inside_a_packet_is_not_a_boundary() {
        let mut f = Framer::new(Expect::V2Command);
        assert_eq!(f.feed(b"0010abc").expect("ok"), Feed::More);
        assert!(!f.at_boundary());
        assert!(Framer::new(Expect::V2Command).feed(b"zzzz").is_err());
    }

    #[test]
    fn hostile_bytes_never_panic_and_done_stays_in_bounds() {
        // A deterministic generator: bytes biased towards pkt-line headers and band bytes.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        };
        let alphabet = b"0123456789abcdefACKNRshallow \x01\x02\x03\n";
        for round in 0..2000 {
            let len = usize::from(next()) * 2;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    let b = next();
                    alphabet
                        .get(usize::from(b) % alphabet.len())
                        .copied()
                        .unwrap_or(b)
                })
                .collect();
            let shape = UploadShape::of(&data);
            for expect in [
                Expect::Advertisement,
                Expect::V2Command,
                Expect::Upload(shape),
                Expect::ReceiveSideband,
                Expect::Eof,
            ] {
                let mut f = Framer::new(expect);
                let step = 1 + round % 7;
                for chunk in data.chunks(step) {
                    match f.feed(chunk) {
                        Ok(Feed::Done { used }) => {
                            assert!(used <= chunk.len());
                            break;
                        }
                        Ok(Feed::More) => {}
                        Err(_) => break,
                    }
                }
            }
            let _ = receive_sideband(&data);
        }
    }
}
