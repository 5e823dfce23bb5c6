//! The tips of a v0/v1 ref advertisement, read as it streams to the client (the bytes pass
//! unchanged). The receive-pack advertisement lists every ref the client may push against;
//! when the mirror of the upstream already holds each of those commits, it needs no fetch
//! before the push is inspected (see `Mirrors::refresh_unless_current`).

use futures_util::StreamExt;
use tokio::sync::oneshot;

use crate::git::ByteStream;
use crate::proto::pktline::{self, Decoded, PktLine};

/// More refs than this: the tips are not reported (the mirror is simply refreshed).
const MAX_TIPS: usize = 100_000;

/// Reads the advertisement's tips (hex object ids, the zero id of an empty repository left
/// out) as the body streams. The receiver gets them after the listing's flush; it gets
/// nothing (an error) when the listing is cut short, malformed, longer than [`MAX_TIPS`] refs,
/// or not a v0/v1 listing.
pub(crate) fn tap(body: ByteStream) -> (ByteStream, oneshot::Receiver<Vec<String>>) {
    let (tx, rx) = oneshot::channel();
    let mut reader = Reader {
        buf: Vec::new(),
        tips: Vec::new(),
        tx: Some(tx),
    };
    let tapped = body.map(move |chunk| {
        if let Ok(bytes) = &chunk {
            reader.feed(bytes);
        }
        chunk
    });
    (Box::pin(tapped), rx)
}

struct Reader {
    /// Bytes of an incomplete packet.
    buf: Vec<u8>,
    tips: Vec<String>,
    /// `None` once the tips are sent or given up.
    tx: Option<oneshot::Sender<Vec<String>>>,
}

impl Reader {
    fn feed(&mut self, bytes: &[u8]) {
        if self.tx.is_none() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let rest = self.buf.get(at..).unwrap_or_default();
            match pktline::decode(rest) {
                Ok(Decoded::Packet { pkt, consumed }) => {
                    at += consumed;
                    match pkt {
                        PktLine::Data(line) => {
                            if !take_line(&mut self.tips, line) {
                                self.tx = None;
                                return;
                            }
                        }
                        PktLine::Flush => {
                            if let Some(tx) = self.tx.take() {
                                let _ = tx.send(std::mem::take(&mut self.tips));
                            }
                            self.buf = Vec::new();
                            return;
                        }
                        _ => {
                            self.tx = None;
                            return;
                        }
                    }
                }
                Ok(Decoded::Incomplete { .. }) => break,
                Err(_) => {
                    self.tx = None;
                    return;
                }
            }
        }
        self.buf.drain(..at);
    }
}

/// Takes one ref line into `tips`; `false` gives up.
fn take_line(tips: &mut Vec<String>, line: &[u8]) -> bool {
    // `version 1` comes first in v1; a v2 capability advertisement has no refs to read.
    if line.starts_with(b"version 1") {
        return true;
    }
    let Some(id) = line.get(..40) else {
        return false;
    };
    if line.get(40) != Some(&b' ') || !id.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    if id.iter().all(|b| *b == b'0') {
        // An empty repository's `capabilities^{}` line.
        return true;
    }
    if tips.len() >= MAX_TIPS {
        return false;
    }
    tips.push(String::from_utf8_lossy(id).to_ascii_lowercase());
    true
}

#[cfg(test)]
mod tests {
    use futures_util::TryStreamExt;

    use super::*;

    fn pkt(line: &str) -> Vec<u8> {
        let mut out = format!("{:04x}", line.len() + 4).into_bytes();
        out.extend_from_slice(line.as_bytes());
        out
    }

    async fn run(chunks: Vec<Vec<u8>>) -> (Vec<u8>, Option<Vec<String>>) {
        let body: ByteStream = Box::pin(futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok(bytes::Bytes::from(c)))
                .collect::<Vec<_>>(),
        ));
        let (body, rx) = tap(body);
        let out: Vec<bytes::Bytes> = body.try_collect().await.expect("streams");
        (out.concat(), rx.await.ok())
    }

    #[tokio::test]
    async fn tips_of_a_listing_split_anywhere_and_the_bytes_unchanged() {
        let a = "a".repeat(40);
        let b = "B".repeat(40);
        let mut all = pkt(&format!("{a} refs/heads/main\0report-status delete-refs\n"));
        all.extend(pkt(&format!("{b} refs/tags/v1\n")));
        all.extend(b"0000");
        for split in [1, 3, 7, 50, all.len() - 2] {
            let (first, second) = all.split_at(split);
            let (out, tips) = run(vec![first.to_vec(), second.to_vec()]).await;
            assert_eq!(out, all);
            assert_eq!(
                tips,
                Some(vec![a.clone(), "b".repeat(40)]),
                "split at {split}"
            );
        }
    }

    #[tokio::test]
    async fn an_empty_repository_has_no_tips_and_v1_is_read() {
        let zero = "0".repeat(40);
        let mut all = pkt("version 1\n");
        all.extend(pkt(&format!("{zero} capabilities^{{}}\0report-status\n")));
        all.extend(b"0000");
        let (_, tips) = run(vec![all]).await;
        assert_eq!(tips, Some(Vec::new()));
    }

    #[tokio::test]
    async fn cut_short_garbage_and_v2_give_no_tips() {
        let a = "a".repeat(40);
        let (_, tips) = run(vec![pkt(&format!("{a} refs/heads/main\n"))]).await;
        assert_eq!(tips, None, "no flush: cut short");
        let (_, tips) = run(vec![b"zzzz".to_vec()]).await;
        assert_eq!(tips, None);
        let mut v2 = pkt("version 2\n");
        v2.extend(pkt("ls-refs=unborn\n"));
        v2.extend(b"0000");
        let (out, tips) = run(vec![v2.clone()]).await;
        assert_eq!(out, v2);
        assert_eq!(tips, None);
    }
}
