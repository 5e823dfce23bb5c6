//! Sideband multiplexing (gitprotocol-capabilities "side-band, side-band-64k",
//! gitprotocol-pack "Packfile Data").
//!
//! Each data packet starts with a band byte: 1 pack data (or, in a push response, the
//! report-status as nested pkt-lines), 2 progress / messages (git prints them as `remote: ...`),
//! 3 a fatal error just before the stream aborts (git prints "the remote end hung up").
//!
//! Payload sizes: the documents speak of "65519 data bytes plus 1 control code", but git's
//! `send_sideband` writes at most `LARGE_PACKET_MAX - 5` = 65515 payload bytes per packet
//! (4 header + 1 band byte), and 995 for the old 1000-byte `side-band`. We write the same.

use bytes::{BufMut, Bytes, BytesMut};

use crate::proto::pktline::{self, Decoded, PktLine, MAX_DATA_LEN};
use crate::proto::ProtoError;

/// The most payload bytes per packet with `side-band-64k` (and in protocol v2).
pub const MAX_PAYLOAD_64K: usize = MAX_DATA_LEN - 1;
/// The most payload bytes per packet with the old `side-band` (1000-byte packets).
pub const MAX_PAYLOAD_SMALL: usize = 1000 - 5;

/// A sideband channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Band {
    /// Band 1: pack data, or a push's report-status.
    Data,
    /// Band 2: progress and messages, shown as `remote: ...`.
    Progress,
    /// Band 3: a fatal error; the stream ends after it.
    Error,
}

impl Band {
    /// The band byte (1, 2 or 3).
    pub fn as_byte(self) -> u8 {
        match self {
            Self::Data => 1,
            Self::Progress => 2,
            Self::Error => 3,
        }
    }

    /// The band of a band byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Data),
            2 => Some(Self::Progress),
            3 => Some(Self::Error),
            _ => None,
        }
    }
}

/// Appends `data` on `band`, split into packets of at most `max_payload` bytes
/// ([`MAX_PAYLOAD_64K`] or [`MAX_PAYLOAD_SMALL`]; values outside `1..=MAX_PAYLOAD_64K` are
/// clamped). Empty data writes nothing; see [`encode_keepalive`].
pub fn encode<B: BufMut>(out: &mut B, band: Band, data: &[u8], max_payload: usize) {
    for chunk in data.chunks(max_payload.clamp(1, MAX_PAYLOAD_64K)) {
        put_packet(out, band, chunk);
    }
}

/// Appends an empty band-2 packet (`0005\x02`), which git accepts as a keepalive
/// (gitprotocol-v2, "sideband-all").
pub fn encode_keepalive<B: BufMut>(out: &mut B) {
    put_packet(out, Band::Progress, b"");
}

fn put_packet<B: BufMut>(out: &mut B, band: Band, chunk: &[u8]) {
    // Callers pass at most MAX_PAYLOAD_64K bytes: header, band byte and payload fit.
    pktline::put_header(out, chunk.len() + 5);
    out.put_u8(band.as_byte());
    out.put_slice(chunk);
}

/// Splits the payload of one sideband data packet into its band and the rest.
pub fn split(data: &[u8]) -> Result<(Band, &[u8]), ProtoError> {
    let (byte, payload) = data.split_first().ok_or(ProtoError::BadSideband {
        reason: "empty packet without a band byte",
    })?;
    let band = Band::from_byte(*byte).ok_or(ProtoError::BadSideband {
        reason: "band is not 1, 2 or 3",
    })?;
    Ok((band, payload))
}

/// What [`Demuxer::next_event`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A sideband packet.
    Band {
        /// Its band.
        band: Band,
        /// Its payload.
        payload: Bytes,
    },
    /// A data packet that is not sideband-framed (its first byte is not 1, 2 or 3), such as
    /// the `NAK`/`ACK` lines of a v0 fetch or the `packfile` section header of v2.
    Line(Bytes),
    /// `0000`.
    Flush,
    /// `0001`.
    Delim,
    /// `0002`.
    ResponseEnd,
}

/// Demultiplexes a response stream fed in arbitrary chunks, e.g. to count and hash the pack
/// bytes of a fetch while relaying them unchanged.
///
/// A data packet whose first byte is 1, 2 or 3 is a band packet; any other data packet is a
/// [`Event::Line`]: in every git response the non-multiplexed lines (`NAK`, `ACK ...`,
/// `shallow ...`, `acknowledgments`, `packfile`, `ERR ...`) start with a printable character.
/// Memory: the buffer holds the unconsumed part of the last chunk plus at most one packet.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: BytesMut,
}

impl Demuxer {
    /// An empty demuxer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes of the stream; drain them with [`Demuxer::next_event`].
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete packet, or `None` until more bytes are fed.
    pub fn next_event(&mut self) -> Result<Option<Event>, ProtoError> {
        let (pkt, consumed) = match pktline::decode(&self.buf)? {
            Decoded::Incomplete { .. } => return Ok(None),
            Decoded::Packet { pkt, consumed } => (pkt, consumed),
        };
        let event = match pkt {
            PktLine::Flush => Event::Flush,
            PktLine::Delim => Event::Delim,
            PktLine::ResponseEnd => Event::ResponseEnd,
            PktLine::Data(data) => match data.first().copied().and_then(Band::from_byte) {
                Some(band) => {
                    let packet = self.buf.split_to(consumed).freeze();
                    return Ok(Some(Event::Band {
                        band,
                        payload: packet.slice(5..),
                    }));
                }
                None => {
                    let packet = self.buf.split_to(consumed).freeze();
                    return Ok(Some(Event::Line(packet.slice(4..))));
                }
            },
        };
        let _ = self.buf.split_to(consumed);
        Ok(Some(event))
    }

    /// Bytes fed but not yet returned (a partial packet after the events are drained).
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Errors unless the stream ended on a packet boundary.
    pub fn finish(&self) -> Result<(), ProtoError> {
        match pktline::decode(&self.buf)? {
            Decoded::Incomplete { needed } if !self.buf.is_empty() => {
                Err(pktline::PktError::UnexpectedEof { needed }.into())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tests::fixture;

    fn drain(demux: &mut Demuxer) -> Result<Vec<Event>, ProtoError> {
        let mut events = Vec::new();
        while let Some(e) = demux.next_event()? {
            events.push(e);
        }
        Ok(events)
    }

    #[test]
    fn long_data_is_split_at_65515() -> Result<(), ProtoError> {
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        encode(&mut wire, Band::Data, &data, MAX_PAYLOAD_64K);
        let mut demux = Demuxer::new();
        demux.feed(&wire);
        let events = drain(&mut demux)?;
        let sizes: Vec<usize> = events
            .iter()
            .map(|e| match e {
                Event::Band {
                    band: Band::Data,
                    payload,
                } => payload.len(),
                _ => usize::MAX,
            })
            .collect();
        assert_eq!(sizes, [65515, 65515, 150_000 - 2 * 65515]);
        // Every packet is at most LARGE_PACKET_MAX (65520) bytes.
        assert_eq!(wire.len(), 150_000 + 3 * 5);
        let joined: Vec<u8> = events
            .into_iter()
            .flat_map(|e| match e {
                Event::Band { payload, .. } => payload.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(joined, data);
        Ok(())
    }

    #[test]
    fn small_sideband_uses_1000_byte_packets() {
        let mut wire = Vec::new();
        encode(&mut wire, Band::Progress, &[b'x'; 2000], MAX_PAYLOAD_SMALL);
        assert_eq!(wire.get(..5), Some(&b"03e8\x02"[..]));
        assert_eq!(wire.len(), 2000 + 3 * 5);
    }

    #[test]
    fn property_split_of_encode_is_identity() -> Result<(), ProtoError> {
        for band in [Band::Data, Band::Progress, Band::Error] {
            for len in [1usize, 2, 994, 995, 996, 65515] {
                let data = vec![band.as_byte().wrapping_mul(len as u8); len];
                let mut wire = Vec::new();
                encode(&mut wire, band, &data, MAX_PAYLOAD_64K);
                let Ok(Decoded::Packet {
                    pkt: PktLine::Data(d),
                    ..
                }) = pktline::decode(&wire)
                else {
                    panic!("not a data packet");
                };
                assert_eq!(split(d)?, (band, &data[..]));
            }
        }
        Ok(())
    }

    #[test]
    fn keepalive_is_an_empty_band_two_packet() -> Result<(), ProtoError> {
        let mut wire = Vec::new();
        encode_keepalive(&mut wire);
        assert_eq!(wire, b"0005\x02");
        encode(&mut wire, Band::Data, b"", MAX_PAYLOAD_64K);
        assert_eq!(wire, b"0005\x02", "empty data writes nothing");
        Ok(())
    }

    #[test]
    fn reproducer_bad_band_byte() {
        assert!(matches!(split(b""), Err(ProtoError::BadSideband { .. })));
        assert!(matches!(
            split(b"\x04data"),
            Err(ProtoError::BadSideband { .. })
        ));
        assert!(matches!(
            split(b"\x00"),
            Err(ProtoError::BadSideband { .. })
        ));
    }

    #[test]
    fn reproducer_truncated_stream() -> Result<(), ProtoError> {
        let mut demux = Demuxer::new();
        demux.feed(b"0009\x01pac");
        assert_eq!(drain(&mut demux)?, []);
        assert!(demux.finish().is_err());
        demux.feed(b"k0000");
        assert_eq!(drain(&mut demux)?.len(), 2);
        demux.finish()
    }

    #[test]
    fn recorded_v0_clone_response_demuxes_to_a_pack() -> Result<(), ProtoError> {
        // NAK, then the pack on band 1 (progress was off: no-progress), then a flush.
        let body = fixture("fetch-v0-clone/02-git-upload-pack.resp");
        for chunk_size in [1, 7, 4096] {
            let mut demux = Demuxer::new();
            let mut events = Vec::new();
            for chunk in body.chunks(chunk_size) {
                demux.feed(chunk);
                events.extend(drain(&mut demux)?);
            }
            demux.finish()?;
            assert_eq!(
                events.first(),
                Some(&Event::Line(Bytes::from_static(b"NAK\n")))
            );
            assert_eq!(events.last(), Some(&Event::Flush));
            let pack: Vec<u8> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Band {
                        band: Band::Data,
                        payload,
                    } => Some(payload.to_vec()),
                    _ => None,
                })
                .flatten()
                .collect();
            assert_eq!(pack.get(..4), Some(&b"PACK"[..]));
        }
        Ok(())
    }

    #[test]
    fn recorded_v2_fetch_response_has_a_packfile_section() -> Result<(), ProtoError> {
        let mut demux = Demuxer::new();
        demux.feed(&fixture("fetch-v2-clone/03-git-upload-pack.resp"));
        let events = drain(&mut demux)?;
        demux.finish()?;
        assert_eq!(
            events.first(),
            Some(&Event::Line(Bytes::from_static(b"packfile\n")))
        );
        let first_band = events.iter().find_map(|e| match e {
            Event::Band {
                band: Band::Data,
                payload,
            } => Some(payload.clone()),
            _ => None,
        });
        assert_eq!(
            first_band.and_then(|p| p.get(..4).map(<[u8]>::to_vec)),
            Some(b"PACK".to_vec())
        );
        Ok(())
    }
}
