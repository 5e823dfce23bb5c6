//! pkt-lines read off a byte stream (the client's side of the channel, or an answer from the
//! session), keeping each packet's raw bytes so they can be relayed unchanged, and giving the
//! rest of the stream back untouched (a pack after the commands, a pack after the ACKs).
//!
//! Memory is bounded: at most one packet (64 KiB) plus one chunk of the stream is buffered.

use bytes::{Bytes, BytesMut};
use futures_util::{stream, StreamExt};

use crate::git::ByteStream;
use crate::proto::pktline::{decode, Decoded, OwnedPkt, PktError};

/// One packet and its encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The packet.
    pub pkt: OwnedPkt,
    /// Its bytes on the wire (header included).
    pub raw: Bytes,
}

impl Frame {
    /// The payload of a data packet without its trailing LF; `None` for special packets.
    pub fn line(&self) -> Option<&[u8]> {
        match &self.pkt {
            OwnedPkt::Data(d) => Some(d.strip_suffix(b"\n").unwrap_or(d)),
            _ => None,
        }
    }

    /// Whether this is a flush packet (`0000`).
    pub fn is_flush(&self) -> bool {
        self.pkt == OwnedPkt::Flush
    }
}

/// A byte stream read as pkt-lines.
pub struct Frames {
    stream: ByteStream,
    buf: BytesMut,
    ended: bool,
}

impl Frames {
    /// Frames over `stream`.
    pub fn new(stream: ByteStream) -> Frames {
        Frames {
            stream,
            buf: BytesMut::new(),
            ended: false,
        }
    }

    /// The next packet; `None` at a clean end of the stream (between packets).
    pub async fn next(&mut self) -> Result<Option<Frame>, PktError> {
        loop {
            match decode(&self.buf)? {
                Decoded::Packet { pkt, consumed } => {
                    let pkt = pkt.to_owned_pkt();
                    let raw = self.buf.split_to(consumed).freeze();
                    return Ok(Some(Frame { pkt, raw }));
                }
                Decoded::Incomplete { needed } => {
                    if !self.fill().await? {
                        return if self.buf.is_empty() {
                            Ok(None)
                        } else {
                            Err(PktError::UnexpectedEof { needed })
                        };
                    }
                }
            }
        }
    }

    /// Reads one more chunk into the buffer; false at the end of the stream.
    async fn fill(&mut self) -> Result<bool, PktError> {
        if self.ended {
            return Ok(false);
        }
        match self.stream.next().await {
            Some(Ok(chunk)) => {
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            Some(Err(e)) => {
                self.ended = true;
                Err(PktError::Io(e))
            }
            None => {
                self.ended = true;
                Ok(false)
            }
        }
    }

    /// The bytes not yet returned as packets, then the rest of the stream.
    pub fn into_stream(self) -> ByteStream {
        let head = self.buf.freeze();
        let head: ByteStream = if head.is_empty() {
            Box::pin(stream::empty())
        } else {
            Box::pin(stream::once(async move { Ok(head) }))
        };
        if self.ended {
            head
        } else {
            Box::pin(head.chain(self.stream))
        }
    }
}

/// A stream of the given chunks.
pub fn chunks(parts: Vec<Bytes>) -> ByteStream {
    Box::pin(stream::iter(parts.into_iter().map(Ok)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_stream(bytes: &[u8], size: usize) -> ByteStream {
        chunks(
            bytes
                .chunks(size)
                .map(Bytes::copy_from_slice)
                .collect::<Vec<_>>(),
        )
    }

    async fn collect(stream: ByteStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut stream = stream;
        while let Some(c) = stream.next().await {
            out.extend_from_slice(&c.expect("chunk"));
        }
        out
    }

    #[tokio::test]
    async fn packets_keep_their_bytes_and_the_rest_is_given_back() {
        let input = b"0009done\n00000006a\nPACKrest-of-pack";
        for size in [1, 3, 7, 100] {
            let mut frames = Frames::new(split_stream(input, size));
            let a = frames.next().await.expect("ok").expect("packet");
            assert_eq!(a.raw.as_ref(), b"0009done\n");
            assert_eq!(a.line(), Some(b"done".as_slice()));
            let b = frames.next().await.expect("ok").expect("packet");
            assert!(b.is_flush());
            let c = frames.next().await.expect("ok").expect("packet");
            assert_eq!(c.line(), Some(b"a".as_slice()));
            assert_eq!(collect(frames.into_stream()).await, b"PACKrest-of-pack");
        }
    }

    #[tokio::test]
    async fn clean_and_unclean_ends() {
        let mut frames = Frames::new(split_stream(b"0000", 2));
        assert!(frames.next().await.expect("ok").is_some());
        assert!(frames.next().await.expect("ok").is_none());
        let mut frames = Frames::new(split_stream(b"0009do", 2));
        assert!(matches!(
            frames.next().await,
            Err(PktError::UnexpectedEof { .. })
        ));
        let mut frames = Frames::new(split_stream(b"zzzz", 2));
        assert!(frames.next().await.is_err());
    }
}
