//! pkt-line framing (gitprotocol-common "pkt-line Format", gitprotocol-v2 "Packet-Line Framing").
//!
//! A packet is four hex digits giving the total length (header included), then the payload.
//! Lengths 0, 1 and 2 are the special packets flush (`0000`), delim (`0001`) and response end
//! (`0002`); 3 is invalid; 4 is the empty data packet, which git accepts (gitprotocol-common:
//! senders "SHOULD NOT" send it, yet it must be "handled differently than" a flush), while
//! gix-packetline rejects it: that is why this decoder is our own. The largest packet is 65520
//! bytes (65516 of payload).
//!
//! [`decode`] is synchronous and reports "need more bytes" as [`Decoded::Incomplete`], not as an
//! error. [`PktReader`] reads packets from an `AsyncRead` holding at most one packet (plus one
//! read chunk) in memory, and gives back the bytes it read past the last packet, so a caller can
//! continue with the raw pack stream that follows the commands of a push.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::proto::oid::hex_value;

/// The largest pkt-line, header included (git's `LARGE_PACKET_MAX`).
pub const MAX_PKT_LEN: usize = 65520;
/// The largest payload of a data pkt-line (git's `LARGE_PACKET_DATA_MAX`).
pub const MAX_DATA_LEN: usize = MAX_PKT_LEN - 4;

const FLUSH: &[u8; 4] = b"0000";
const DELIM: &[u8; 4] = b"0001";
const RESPONSE_END: &[u8; 4] = b"0002";

/// Bytes requested from the inner reader when a packet needs fewer.
const READ_CHUNK: usize = 8 * 1024;

/// Errors of the pkt-line framing itself.
#[derive(Debug, thiserror::Error)]
pub enum PktError {
    /// The four length bytes are not hex.
    #[error("bad pkt-line length prefix {:?}", String::from_utf8_lossy(.prefix))]
    BadLengthPrefix {
        /// The four bytes found.
        prefix: [u8; 4],
    },
    /// A length of 3: too short to hold its own header (0, 1 and 2 are the special packets).
    #[error("invalid pkt-line length {length}")]
    InvalidLength {
        /// The decoded length.
        length: usize,
    },
    /// A length above [`MAX_PKT_LEN`].
    #[error("pkt-line length {length} exceeds the maximum of {MAX_PKT_LEN}")]
    TooLong {
        /// The decoded length.
        length: usize,
    },
    /// Data to encode does not fit in one packet.
    #[error("{length} bytes of data do not fit in a pkt-line (at most {MAX_DATA_LEN})")]
    DataTooLong {
        /// The length of the data in bytes.
        length: usize,
    },
    /// The stream ended inside a packet.
    #[error("stream ended inside a pkt-line ({needed} more bytes needed)")]
    UnexpectedEof {
        /// How many more bytes the packet needed.
        needed: usize,
    },
    /// Reading from the inner reader failed.
    #[error("reading pkt-lines: {0}")]
    Io(#[from] std::io::Error),
}

/// One decoded packet, borrowing its payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PktLine<'a> {
    /// A data packet (possibly empty: `0004`).
    Data(&'a [u8]),
    /// `0000`: end of a message or section.
    Flush,
    /// `0001`: separates sections of a v2 request or response.
    Delim,
    /// `0002`: end of a v2 response on stateless connections.
    ResponseEnd,
}

impl<'a> PktLine<'a> {
    /// The payload of a data packet.
    pub fn data(&self) -> Option<&'a [u8]> {
        match self {
            Self::Data(d) => Some(d),
            _ => None,
        }
    }

    /// Appends the encoded packet to `out`.
    pub fn encode<B: BufMut>(&self, out: &mut B) -> Result<(), PktError> {
        let special = match self {
            Self::Data(d) => return encode_data(out, d),
            Self::Flush => flush(),
            Self::Delim => delim(),
            Self::ResponseEnd => response_end(),
        };
        out.put_slice(special);
        Ok(())
    }

    /// An owned copy.
    pub fn to_owned_pkt(&self) -> OwnedPkt {
        match self {
            Self::Data(d) => OwnedPkt::Data(Bytes::copy_from_slice(d)),
            Self::Flush => OwnedPkt::Flush,
            Self::Delim => OwnedPkt::Delim,
            Self::ResponseEnd => OwnedPkt::ResponseEnd,
        }
    }
}

/// A packet that owns its payload, as returned by [`PktReader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedPkt {
    /// A data packet.
    Data(Bytes),
    /// `0000`.
    Flush,
    /// `0001`.
    Delim,
    /// `0002`.
    ResponseEnd,
}

impl OwnedPkt {
    /// A borrowed view.
    pub fn as_pkt(&self) -> PktLine<'_> {
        match self {
            Self::Data(d) => PktLine::Data(d),
            Self::Flush => PktLine::Flush,
            Self::Delim => PktLine::Delim,
            Self::ResponseEnd => PktLine::ResponseEnd,
        }
    }
}

/// The outcome of [`decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole packet at the start of the input.
    Packet {
        /// The packet.
        pkt: PktLine<'a>,
        /// How many input bytes it took (header included).
        consumed: usize,
    },
    /// The input holds only part of a packet.
    Incomplete {
        /// How many more bytes are needed before the packet (or its header) is complete.
        needed: usize,
    },
}

/// Decodes the packet at the start of `buf`.
///
/// Accepts upper- and lowercase hex (git's `packet_length` does). Errors on non-hex, length 3 and
/// lengths above [`MAX_PKT_LEN`]; a short input is [`Decoded::Incomplete`].
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, PktError> {
    let Some((header, rest)) = buf.split_first_chunk::<4>() else {
        return Ok(Decoded::Incomplete {
            needed: 4 - buf.len(),
        });
    };
    let length = decode_length(header)?;
    let pkt = match length {
        0 => PktLine::Flush,
        1 => PktLine::Delim,
        2 => PktLine::ResponseEnd,
        3 => return Err(PktError::InvalidLength { length }),
        _ if length > MAX_PKT_LEN => return Err(PktError::TooLong { length }),
        _ => match rest.get(..length - 4) {
            Some(data) => PktLine::Data(data),
            None => {
                return Ok(Decoded::Incomplete {
                    needed: length - buf.len(),
                })
            }
        },
    };
    let consumed = length.max(4);
    Ok(Decoded::Packet { pkt, consumed })
}

fn decode_length(header: &[u8; 4]) -> Result<usize, PktError> {
    header
        .iter()
        .try_fold(0usize, |acc, c| match hex_value(*c) {
            Some(v) => Ok(acc * 16 + usize::from(v)),
            None => Err(PktError::BadLengthPrefix { prefix: *header }),
        })
}

/// Iterates over the packets of a complete buffer; a packet cut off by the end of the buffer is
/// [`PktError::UnexpectedEof`]. [`Packets::offset`] tells how far it got.
pub fn packets(buf: &[u8]) -> Packets<'_> {
    Packets {
        buf,
        offset: 0,
        failed: false,
    }
}

/// The iterator returned by [`packets`].
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    buf: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Packets<'a> {
    /// Bytes consumed so far: the offset of the next packet.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The bytes not consumed yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.offset..).unwrap_or_default()
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<PktLine<'a>, PktError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest();
        if rest.is_empty() || self.failed {
            return None;
        }
        let result = match decode(rest) {
            Ok(Decoded::Packet { pkt, consumed }) => {
                self.offset += consumed;
                Ok(pkt)
            }
            Ok(Decoded::Incomplete { needed }) => Err(PktError::UnexpectedEof { needed }),
            Err(e) => Err(e),
        };
        self.failed = result.is_err();
        Some(result)
    }
}

/// Appends one data packet carrying `data`; errors if it exceeds [`MAX_DATA_LEN`].
pub fn encode_data<B: BufMut>(out: &mut B, data: &[u8]) -> Result<(), PktError> {
    if data.len() > MAX_DATA_LEN {
        return Err(PktError::DataTooLong { length: data.len() });
    }
    put_header(out, data.len() + 4);
    out.put_slice(data);
    Ok(())
}

/// Appends one data packet carrying `text` and a trailing LF ("a non-binary line SHOULD BE
/// terminated by an LF", gitprotocol-common).
pub fn encode_text<B: BufMut>(out: &mut B, text: &[u8]) -> Result<(), PktError> {
    if text.len() + 1 > MAX_DATA_LEN {
        return Err(PktError::DataTooLong {
            length: text.len() + 1,
        });
    }
    put_header(out, text.len() + 5);
    out.put_slice(text);
    out.put_u8(b'\n');
    Ok(())
}

/// Writes a 4-hex-digit length; `length` must be at most [`MAX_PKT_LEN`].
pub(crate) fn put_header<B: BufMut>(out: &mut B, length: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in [12, 8, 4, 0] {
        out.put_u8(DIGITS[(length >> shift) & 0xf]);
    }
}

/// The flush packet, `0000`.
pub fn flush() -> &'static [u8] {
    FLUSH
}

/// The delim packet, `0001` (protocol v2).
pub fn delim() -> &'static [u8] {
    DELIM
}

/// The response-end packet, `0002` (protocol v2, stateless connections).
pub fn response_end() -> &'static [u8] {
    RESPONSE_END
}

/// `data` without one trailing LF: receivers "MUST treat pkt-lines with non-binary data the
/// same whether or not they contain the trailing LF" (gitprotocol-common).
pub fn trim_lf(data: &[u8]) -> &[u8] {
    data.strip_suffix(b"\n").unwrap_or(data)
}

/// Reads packets from an async byte stream.
///
/// Memory is bounded: it buffers at most one packet plus one read of up to 8 KiB, whatever the
/// peer announces. [`PktReader::into_parts`] returns the inner reader and the bytes read beyond
/// the last returned packet.
#[derive(Debug)]
pub struct PktReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> PktReader<R> {
    /// A reader over `inner`.
    pub fn new(inner: R) -> Self {
        Self::with_buffered(inner, &[])
    }

    /// A reader over `inner` whose stream starts with `buffered` (bytes already read from it).
    pub fn with_buffered(inner: R, buffered: &[u8]) -> Self {
        Self {
            inner,
            buf: BytesMut::from(buffered),
        }
    }

    /// The next packet; `None` on a clean end of stream between packets. An end of stream
    /// inside a packet is [`PktError::UnexpectedEof`].
    pub async fn next(&mut self) -> Result<Option<OwnedPkt>, PktError> {
        loop {
            let needed = match decode(&self.buf)? {
                Decoded::Packet { pkt, consumed } => {
                    let special = match pkt {
                        PktLine::Data(_) => None,
                        other => Some(other.to_owned_pkt()),
                    };
                    let packet = self.buf.split_to(consumed);
                    return Ok(Some(
                        special.unwrap_or_else(|| OwnedPkt::Data(packet.freeze().slice(4..))),
                    ));
                }
                Decoded::Incomplete { needed } => needed,
            };
            let limit = needed.max(READ_CHUNK);
            self.buf.reserve(limit);
            let read = (&mut self.inner)
                .take(limit as u64)
                .read_buf(&mut self.buf)
                .await?;
            if read == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(PktError::UnexpectedEof { needed })
                };
            }
        }
    }

    /// The bytes read from the inner reader but not yet returned as packets.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The inner reader and the bytes read beyond the last returned packet, which belong
    /// before whatever the inner reader yields next.
    pub fn into_parts(self) -> (R, Bytes) {
        (self.inner, self.buf.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(buf: &[u8]) -> Result<Decoded<'_>, PktError> {
        decode(buf)
    }

    #[test]
    fn special_packets() -> Result<(), PktError> {
        assert_eq!(
            one(b"0000")?,
            Decoded::Packet {
                pkt: PktLine::Flush,
                consumed: 4
            }
        );
        assert_eq!(
            one(b"0001")?,
            Decoded::Packet {
                pkt: PktLine::Delim,
                consumed: 4
            }
        );
        assert_eq!(
            one(b"0002rest")?,
            Decoded::Packet {
                pkt: PktLine::ResponseEnd,
                consumed: 4
            }
        );
        Ok(())
    }

    #[test]
    fn gitprotocol_common_examples() -> Result<(), PktError> {
        // The examples table of gitprotocol-common, including the empty line "0004".
        for (wire, value) in [
            (&b"0006a\n"[..], &b"a\n"[..]),
            (b"0005a", b"a"),
            (b"000bfoobar\n", b"foobar\n"),
            (b"0004", b""),
        ] {
            let consumed = wire.len();
            assert_eq!(
                one(wire)?,
                Decoded::Packet {
                    pkt: PktLine::Data(value),
                    consumed
                }
            );
            let mut out = Vec::new();
            encode_data(&mut out, value)?;
            assert_eq!(out, wire);
        }
        Ok(())
    }

    #[test]
    fn uppercase_length_is_accepted() -> Result<(), PktError> {
        let mut wire = b"000A".to_vec();
        wire.extend_from_slice(b"abcdef");
        assert_eq!(
            one(&wire)?,
            Decoded::Packet {
                pkt: PktLine::Data(b"abcdef"),
                consumed: 10
            }
        );
        Ok(())
    }

    #[test]
    fn incomplete_is_a_value() -> Result<(), PktError> {
        assert_eq!(one(b"")?, Decoded::Incomplete { needed: 4 });
        assert_eq!(one(b"00")?, Decoded::Incomplete { needed: 2 });
        assert_eq!(one(b"000bfoo")?, Decoded::Incomplete { needed: 4 });
        Ok(())
    }

    #[test]
    fn reproducer_bad_hex_length() {
        for bad in [&b"00g0"[..], b"zzzz", b" 004", b"-001", b"+004"] {
            assert!(
                matches!(one(bad), Err(PktError::BadLengthPrefix { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn reproducer_length_three() {
        assert!(matches!(
            one(b"0003"),
            Err(PktError::InvalidLength { length: 3 })
        ));
    }

    #[test]
    fn reproducer_length_above_max() {
        assert!(matches!(
            one(b"fff1"),
            Err(PktError::TooLong { length: 65521 })
        ));
        assert!(matches!(
            one(b"ffff"),
            Err(PktError::TooLong { length: 65535 })
        ));
        // The largest legal packet only asks for more bytes.
        assert!(matches!(
            one(b"fff0"),
            Ok(Decoded::Incomplete { needed: 65516 })
        ));
    }

    #[test]
    fn encode_rejects_oversized_data() {
        let big = vec![b'x'; MAX_DATA_LEN + 1];
        assert!(matches!(
            encode_data(&mut Vec::new(), &big),
            Err(PktError::DataTooLong { .. })
        ));
        assert!(encode_data(&mut Vec::new(), &big[1..]).is_ok());
        assert!(matches!(
            encode_text(&mut Vec::new(), &big[1..]),
            Err(PktError::DataTooLong { .. })
        ));
    }

    #[test]
    fn property_decode_of_encode_is_identity() -> Result<(), PktError> {
        // Every length class, with every byte value present in the payloads.
        let lengths = [
            0usize,
            1,
            2,
            3,
            4,
            5,
            15,
            16,
            255,
            256,
            4095,
            4096,
            65515,
            MAX_DATA_LEN,
        ];
        for (i, len) in lengths.into_iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|j| ((j * 31 + i) % 256) as u8).collect();
            let mut wire = BytesMut::new();
            encode_data(&mut wire, &data)?;
            assert_eq!(wire.len(), len + 4);
            let Decoded::Packet { pkt, consumed } = decode(&wire)? else {
                panic!("incomplete for length {len}");
            };
            assert_eq!((pkt, consumed), (PktLine::Data(&data), wire.len()));
        }
        for pkt in [PktLine::Flush, PktLine::Delim, PktLine::ResponseEnd] {
            let mut wire = Vec::new();
            pkt.encode(&mut wire)?;
            assert_eq!(decode(&wire)?, Decoded::Packet { pkt, consumed: 4 });
        }
        Ok(())
    }

    #[test]
    fn agrees_with_gix_packetline_where_both_accept() {
        // Differential check against gix-packetline over a set of framings: wherever gix
        // decodes a packet, we decode the same one (it additionally rejects "0004").
        let inputs: [&[u8]; 9] = [
            b"0000",
            b"0001",
            b"0002",
            b"0005a",
            b"0009done\n",
            b"0004",
            b"000",
            b"0003",
            b"fff1",
        ];
        for input in inputs {
            if let Ok(gix_packetline::decode::Stream::Complete {
                line,
                bytes_consumed,
            }) = gix_packetline::decode::streaming(input)
            {
                let ours = decode(input).ok();
                let theirs = match line {
                    gix_packetline::PacketLineRef::Data(d) => PktLine::Data(d),
                    gix_packetline::PacketLineRef::Flush => PktLine::Flush,
                    gix_packetline::PacketLineRef::Delimiter => PktLine::Delim,
                    gix_packetline::PacketLineRef::ResponseEnd => PktLine::ResponseEnd,
                };
                assert_eq!(
                    ours,
                    Some(Decoded::Packet {
                        pkt: theirs,
                        consumed: bytes_consumed
                    })
                );
            }
        }
        assert!(
            gix_packetline::decode::streaming(b"0004").is_err(),
            "gix rejects 0004"
        );
        assert!(decode(b"0004").is_ok(), "git (and we) accept 0004");
    }

    #[test]
    fn packets_iterates_and_reports_truncation() {
        let mut it = packets(b"0005a00000001000bfoo");
        assert!(matches!(it.next(), Some(Ok(PktLine::Data(b"a")))));
        assert!(matches!(it.next(), Some(Ok(PktLine::Flush))));
        assert!(matches!(it.next(), Some(Ok(PktLine::Delim))));
        assert_eq!(it.offset(), 13);
        assert!(matches!(
            it.next(),
            Some(Err(PktError::UnexpectedEof { needed: 4 }))
        ));
        assert!(it.next().is_none());
    }

    /// An `AsyncRead` that yields its data in fixed-size pieces, to exercise partial reads.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let end = (self.pos + self.step)
                .min(self.data.len())
                .min(self.pos + buf.remaining());
            let chunk = self.data.get(self.pos..end).unwrap_or_default().to_vec();
            buf.put_slice(&chunk);
            self.pos = end;
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn reader_returns_packets_then_the_rest() -> Result<(), PktError> {
        let mut stream = Vec::new();
        encode_text(&mut stream, b"hello")?;
        encode_data(&mut stream, b"")?;
        stream.extend_from_slice(flush());
        stream.extend_from_slice(b"PACK\0\0\0\x02rest of pack");
        for step in [1, 3, 7, 1000] {
            let mut reader = PktReader::new(Trickle {
                data: stream.clone(),
                pos: 0,
                step,
            });
            assert_eq!(
                reader.next().await?,
                Some(OwnedPkt::Data(Bytes::from_static(b"hello\n")))
            );
            assert_eq!(reader.next().await?, Some(OwnedPkt::Data(Bytes::new())));
            assert_eq!(reader.next().await?, Some(OwnedPkt::Flush));
            let (mut inner, buffered) = reader.into_parts();
            let mut rest = buffered.to_vec();
            inner.read_to_end(&mut rest).await?;
            assert_eq!(rest, b"PACK\0\0\0\x02rest of pack", "step {step}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn reader_clean_eof_is_none() -> Result<(), PktError> {
        let mut reader = PktReader::new(&b"0000"[..]);
        assert_eq!(reader.next().await?, Some(OwnedPkt::Flush));
        assert_eq!(reader.next().await?, None);
        Ok(())
    }

    #[tokio::test]
    async fn reproducer_eof_inside_packet() {
        for input in [&b"00"[..], b"0009don"] {
            let mut reader = PktReader::new(input);
            assert!(
                matches!(reader.next().await, Err(PktError::UnexpectedEof { .. })),
                "{input:?}"
            );
        }
    }

    #[tokio::test]
    async fn reader_buffers_at_most_one_packet_and_a_chunk() -> Result<(), PktError> {
        let mut stream = Vec::new();
        for _ in 0..40 {
            encode_data(&mut stream, &[7u8; MAX_DATA_LEN])?;
        }
        let mut reader = PktReader::new(&stream[..]);
        while let Some(pkt) = reader.next().await? {
            assert_eq!(pkt.as_pkt().data().map(<[u8]>::len), Some(MAX_DATA_LEN));
            assert!(reader.buffered().len() <= MAX_PKT_LEN + READ_CHUNK);
        }
        Ok(())
    }

    #[tokio::test]
    async fn reader_with_buffered_prefix() -> Result<(), PktError> {
        let mut reader = PktReader::with_buffered(&b"00"[..], b"0006a\n00");
        assert_eq!(
            reader.next().await?,
            Some(OwnedPkt::Data(Bytes::from_static(b"a\n")))
        );
        assert_eq!(reader.next().await?, Some(OwnedPkt::Flush));
        Ok(())
    }
}
