//! Measures the pack inside an upload-pack answer as it streams to the client: SHA-256, size
//! and object count (from the pack header), for the record. The answer itself passes through
//! untouched; this only watches a copy of its bytes.
//!
//! Where the pack is (gitprotocol-pack, gitprotocol-v2):
//! - v0/v1 with `side-band(-64k)`: after the `ACK`/`NAK` (and `shallow`) pkt-lines, sideband
//!   packets; band 1 carries the pack, band 2 progress, band 3 a fatal error; a flush ends it.
//! - v0/v1 without sideband: after the pkt-lines, the raw pack bytes until the end of the stream.
//! - v2 `fetch`: sections of pkt-lines; after the `packfile` line, sideband packets as above.
//!
//! Memory is bounded by one pkt-line (at most 65520 bytes) whatever the pack size. Bytes that
//! are not a well-formed answer stop the measurement (the client will notice on its own); what
//! was measured up to there is still reported, flagged incomplete.

use bytes::{Buf, BytesMut};
use sha2::{Digest, Sha256};

/// What [`PackMeter`] measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// SHA-256 of the pack bytes, lowercase hex.
    pub sha256: String,
    /// Pack bytes seen.
    pub bytes: u64,
    /// Object count from the pack header, when its 12 bytes were seen and start with `PACK`.
    pub objects: Option<u64>,
    /// Whether the answer ended where a pack answer ends (a flush after sideband data); false
    /// for raw packs (no end marker), truncated or malformed answers.
    pub complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// pkt-lines before the pack.
    Lines,
    /// Sideband packets: band 1 is the pack.
    Sideband,
    /// Raw pack bytes (no sideband) until the end of the stream.
    Raw,
    /// The pack ended with a flush.
    Done,
    /// Something unexpected: stop looking.
    Stopped,
}

/// Watches an upload-pack answer; see the module documentation.
#[derive(Debug)]
pub struct PackMeter {
    state: State,
    pending: BytesMut,
    hasher: Sha256,
    bytes: u64,
    header: Vec<u8>,
}

impl Default for PackMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl PackMeter {
    /// A meter at the start of an answer.
    pub fn new() -> Self {
        PackMeter {
            state: State::Lines,
            pending: BytesMut::new(),
            hasher: Sha256::new(),
            bytes: 0,
            header: Vec::with_capacity(12),
        }
    }

    /// Feeds the next bytes of the answer.
    pub fn feed(&mut self, chunk: &[u8]) {
        match self.state {
            State::Done | State::Stopped => return,
            State::Raw => {
                self.pack_bytes(chunk);
                return;
            }
            State::Lines | State::Sideband => {}
        }
        self.pending.extend_from_slice(chunk);
        self.drain();
    }

    /// What was measured, or `None` when the answer carried no pack bytes.
    pub fn finish(self) -> Option<Measured> {
        if self.bytes == 0 {
            return None;
        }
        let objects = match self.header.get(..12) {
            Some(h) if h.starts_with(b"PACK") => {
                Some(u64::from(u32::from_be_bytes([h[8], h[9], h[10], h[11]])))
            }
            _ => None,
        };
        Some(Measured {
            sha256: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
            objects,
            complete: self.state == State::Done,
        })
    }

    fn drain(&mut self) {
        loop {
            if matches!(self.state, State::Done | State::Stopped) {
                self.pending.clear();
                return;
            }
            if self.state == State::Raw {
                let rest = self.pending.split();
                self.pack_bytes(&rest);
                return;
            }
            let Some(head) = self.pending.get(..4) else {
                return;
            };
            if self.state == State::Lines && head == b"PACK" {
                // No sideband: the pack follows the pkt-lines directly.
                self.state = State::Raw;
                continue;
            }
            let Some(len) = hex_len(head) else {
                self.state = State::Stopped;
                continue;
            };
            if len < 4 {
                // flush, delim, response-end.
                self.pending.advance(4);
                if self.state == State::Sideband && len == 0 {
                    self.state = State::Done;
                }
                continue;
            }
            if self.pending.len() < len {
                return;
            }
            let line = self.pending.split_to(len);
            let payload = &line[4..];
            match self.state {
                State::Lines => {
                    if payload == b"packfile\n" || payload == b"packfile" {
                        self.state = State::Sideband;
                    } else if matches!(payload.first(), Some(1..=3)) {
                        // Sideband data or progress before any pack: sideband mode (v0/v1).
                        self.state = State::Sideband;
                        self.band(payload);
                    }
                }
                State::Sideband => self.band(payload),
                _ => {}
            }
        }
    }

    fn band(&mut self, payload: &[u8]) {
        match payload.split_first() {
            Some((1, data)) => self.pack_bytes(data),
            Some((2, _)) => {}
            Some((3, _)) | None | Some(_) => self.state = State::Stopped,
        }
    }

    fn pack_bytes(&mut self, data: &[u8]) {
        if self.header.len() < 12 {
            let take = (12 - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..take]);
        }
        self.hasher.update(data);
        self.bytes += data.len() as u64;
    }
}

fn hex_len(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    usize::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(payload: &[u8]) -> Vec<u8> {
        let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
        out.extend_from_slice(payload);
        out
    }

    fn band(b: u8, data: &[u8]) -> Vec<u8> {
        let mut p = vec![b];
        p.extend_from_slice(data);
        pkt(&p)
    }

    fn pack(objects: u32, body: &[u8]) -> Vec<u8> {
        let mut p = b"PACK\0\0\0\x02".to_vec();
        p.extend_from_slice(&objects.to_be_bytes());
        p.extend_from_slice(body);
        p
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    /// Feeds `answer` in every split into two chunks and in single bytes: same result.
    fn measure_all_ways(answer: &[u8]) -> Option<Measured> {
        let mut whole = PackMeter::new();
        whole.feed(answer);
        let expected = whole.finish();
        for cut in 0..=answer.len() {
            let mut m = PackMeter::new();
            m.feed(&answer[..cut]);
            m.feed(&answer[cut..]);
            assert_eq!(m.finish(), expected, "split at {cut}");
        }
        let mut m = PackMeter::new();
        for b in answer {
            m.feed(std::slice::from_ref(b));
        }
        assert_eq!(m.finish(), expected, "byte by byte");
        expected
    }

    #[test]
    fn v0_sideband_answer() {
        let p = pack(3, b"objects-and-trailer");
        let (a, b) = p.split_at(7);
        let mut answer = pkt(b"NAK\n");
        answer.extend(band(2, b"Enumerating objects: 3\n"));
        answer.extend(band(1, a));
        answer.extend(band(2, b"Total 3\n"));
        answer.extend(band(1, b));
        answer.extend(b"0000");
        let m = measure_all_ways(&answer).expect("a pack");
        assert_eq!(m.bytes, p.len() as u64);
        assert_eq!(m.sha256, sha(&p));
        assert_eq!(m.objects, Some(3));
        assert!(m.complete);
    }

    #[test]
    fn v0_raw_answer_without_sideband() {
        let p = pack(2, b"raw");
        let mut answer = pkt(b"ACK 0123456789012345678901234567890123456789\n");
        answer.extend(&p);
        let m = measure_all_ways(&answer).expect("a pack");
        assert_eq!(m.sha256, sha(&p));
        assert_eq!(m.objects, Some(2));
        assert!(!m.complete, "a raw pack has no end marker");
    }

    #[test]
    fn v2_fetch_answer_with_sections() {
        let p = pack(70000, b"x");
        let mut answer = pkt(b"acknowledgments\n");
        answer.extend(pkt(b"ready\n"));
        answer.extend(b"0001");
        answer.extend(pkt(b"shallow-info\n"));
        answer.extend(pkt(b"shallow 0123456789012345678901234567890123456789\n"));
        answer.extend(b"0001");
        answer.extend(pkt(b"packfile\n"));
        answer.extend(band(2, b"progress\n"));
        answer.extend(band(1, &p));
        answer.extend(b"0000");
        let m = measure_all_ways(&answer).expect("a pack");
        assert_eq!(m.objects, Some(70000));
        assert_eq!(m.bytes, p.len() as u64);
        assert!(m.complete);
    }

    #[test]
    fn answers_without_a_pack() {
        // A negotiation round (stateless, no `done`): ACKs and NAK only.
        let mut answer = pkt(b"ACK 0123456789012345678901234567890123456789 common\n");
        answer.extend(pkt(b"NAK\n"));
        assert_eq!(measure_all_ways(&answer), None);
        // v2 acknowledgments without `ready`.
        let mut answer = pkt(b"acknowledgments\n");
        answer.extend(pkt(b"NAK\n"));
        answer.extend(b"0000");
        assert_eq!(measure_all_ways(&answer), None);
        assert_eq!(measure_all_ways(b""), None);
    }

    #[test]
    fn garbage_and_errors_stop_the_measurement() {
        let p = pack(1, b"abc");
        let mut answer = band(1, &p);
        answer.extend(band(3, b"upload-pack: aborting"));
        answer.extend(band(1, b"more"));
        let m = measure_all_ways(&answer).expect("what came before the error");
        assert_eq!(m.bytes, p.len() as u64);
        assert!(!m.complete);

        let mut answer = band(1, &p);
        answer.extend(b"zzzz garbage");
        let m = measure_all_ways(&answer).expect("what came before the garbage");
        assert_eq!(m.sha256, sha(&p));
        assert!(!m.complete);
    }

    #[test]
    fn truncated_answer_is_incomplete() {
        let p = pack(5, b"abcdef");
        let mut answer = band(1, &p);
        answer.truncate(answer.len() - 2);
        let m = measure_all_ways(&answer);
        assert_eq!(m, None, "the half packet is not counted");
        let mut answer = band(1, &p);
        answer.extend(band(1, b"tail"));
        answer.truncate(answer.len() - 1);
        let m = measure_all_ways(&answer).expect("the first packet");
        assert_eq!(m.bytes, p.len() as u64);
        assert!(!m.complete);
    }

    #[test]
    fn short_pack_has_no_object_count() {
        let answer = band(1, b"PAC");
        let m = measure_all_ways(&answer).expect("three bytes");
        assert_eq!(m.objects, None);
    }
}
