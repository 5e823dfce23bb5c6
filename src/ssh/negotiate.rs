//! Protocol v0/v1 fetch negotiation, from a stateful SSH client to stateless requests.
//!
//! Over SSH, upload-pack keeps state between rounds: the client sends its wants once, then
//! batches of `have` lines each ended by a flush, and finally `done`; the server answers each
//! batch with `ACK <id> common|ready` lines and a `NAK` (gitprotocol-pack, "Packfile
//! Negotiation", multi_ack_detailed). The session pipeline is stateless, like smart HTTP, so
//! each client round becomes one stateless request built the way git's own stateless client
//! does it (`fetch-pack.c`, `find_common` with `stateless_rpc`): the want section, then a
//! `have` for every object the upstream has acknowledged as common so far, then this round's
//! haves and its flush or `done`.
//!
//! The answers are then made to look like a stateful server's: the upstream acknowledges the
//! replayed commons again in every answer, which a stateful server would not do (the client
//! sent them once), so repeated acknowledgements are dropped; and with `deepen`, the shallow
//! section that a stateless server repeats at the top of every answer is passed on only the
//! first time.

use std::collections::HashSet;

use bytes::{BufMut, Bytes, BytesMut};

use crate::proto::pktline;

/// Most objects remembered as common (the request replays them all, like git's client).
pub const MAX_COMMON: usize = 1 << 20;

/// How a client round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundEnd {
    /// A flush: the client wants the server's ACKs and will send more haves.
    Flush,
    /// `done`: the client wants the pack.
    Done,
}

/// What to do with one line of the upstream's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckAction {
    /// Send it to the client.
    Relay,
    /// Leave it out: it acknowledges an object the client was already told about.
    Drop,
    /// Send it to the client; it is the last negotiation line of the final answer (`NAK` or
    /// a plain `ACK <id>`): the pack follows.
    Last,
}

/// The negotiation state of one fetch.
#[derive(Debug)]
pub struct Negotiation {
    wants: Bytes,
    deepen: bool,
    common: HashSet<Vec<u8>>,
    replay: BytesMut,
}

/// The negotiation remembered more common objects than [`MAX_COMMON`].
#[derive(Debug, thiserror::Error)]
#[error("the fetch negotiation acknowledged more than {MAX_COMMON} common objects")]
pub struct TooManyCommon;

impl Negotiation {
    /// Starts from the client's want section: its raw packets up to and including the flush.
    pub fn new(wants: Bytes) -> Negotiation {
        let deepen = pktline::packets(&wants)
            .filter_map(|p| p.ok().and_then(|p| p.data()))
            .any(|line| line.starts_with(b"deepen"));
        Negotiation {
            wants,
            deepen,
            common: HashSet::new(),
            replay: BytesMut::new(),
        }
    }

    /// Whether the client asked for a shallow fetch (`deepen`, `deepen-since`, `deepen-not`):
    /// then a stateful server answers the want section with the shallow section before any
    /// `have` (and the stateless upstream repeats it in every answer).
    pub fn deepen(&self) -> bool {
        self.deepen
    }

    /// The stateless request that asks only for the shallow section.
    pub fn wants_only(&self) -> Bytes {
        self.wants.clone()
    }

    /// The stateless request for one client round: `haves` are the round's raw `have`
    /// packets (without the flush or `done`).
    pub fn request(&self, haves: &[u8], end: RoundEnd) -> Bytes {
        let mut out =
            BytesMut::with_capacity(self.wants.len() + self.replay.len() + haves.len() + 9);
        out.put_slice(&self.wants);
        out.put_slice(&self.replay);
        out.put_slice(haves);
        match end {
            RoundEnd::Flush => out.put_slice(pktline::flush()),
            RoundEnd::Done => out.put_slice(b"0009done\n"),
        }
        out.freeze()
    }

    /// Judges one line of an answer (without its LF) and remembers new common objects.
    pub fn on_line(&mut self, line: &[u8], end: RoundEnd) -> Result<AckAction, TooManyCommon> {
        if line == b"NAK" {
            return Ok(match end {
                RoundEnd::Done => AckAction::Last,
                RoundEnd::Flush => AckAction::Relay,
            });
        }
        let Some(rest) = line.strip_prefix(b"ACK ") else {
            return Ok(AckAction::Relay);
        };
        let (id, status) = match rest.iter().position(|c| *c == b' ') {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        match status {
            // multi_ack_detailed `common`, multi_ack `continue`: the upstream has it.
            Some(b"common") | Some(b"continue") => {
                if self.common.contains(id) {
                    return Ok(AckAction::Drop);
                }
                self.remember(id)?;
                Ok(AckAction::Relay)
            }
            // `ready`: the upstream could make a pack now; the client will send `done`.
            Some(_) => Ok(AckAction::Relay),
            // A plain ACK: the final acknowledgement, or (without multi_ack) the only one.
            None => {
                if end == RoundEnd::Done {
                    return Ok(AckAction::Last);
                }
                if self.common.contains(id) {
                    return Ok(AckAction::Drop);
                }
                self.remember(id)?;
                Ok(AckAction::Relay)
            }
        }
    }

    fn remember(&mut self, id: &[u8]) -> Result<(), TooManyCommon> {
        if self.common.len() >= MAX_COMMON {
            return Err(TooManyCommon);
        }
        self.common.insert(id.to_vec());
        let mut line = Vec::with_capacity(id.len() + 6);
        line.extend_from_slice(b"have ");
        line.extend_from_slice(id);
        line.push(b'\n');
        // A have line is far below the packet size limit.
        let _ = pktline::encode_data(&mut self.replay, &line);
        Ok(())
    }
}

/// Whether `line` belongs to the shallow section (`shallow <id>`, `unshallow <id>`).
pub fn is_shallow_line(line: &[u8]) -> bool {
    line.starts_with(b"shallow ") || line.starts_with(b"unshallow ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn pkt(line: &str) -> Vec<u8> {
        let mut out = Vec::new();
        pktline::encode_data(&mut out, line.as_bytes()).expect("encode");
        out
    }

    fn wants(extra: &[&str]) -> Bytes {
        let mut out = pkt(&format!("want {A} multi_ack_detailed side-band-64k\n"));
        for line in extra {
            out.extend(pkt(line));
        }
        out.extend_from_slice(b"0000");
        Bytes::from(out)
    }

    #[test]
    fn commons_are_replayed_after_the_wants() {
        let mut n = Negotiation::new(wants(&[]));
        assert!(!n.deepen());
        let haves = pkt(&format!("have {B}\n"));
        let first = n.request(&haves, RoundEnd::Flush);
        assert_eq!(
            first.as_ref(),
            [wants(&[]).as_ref(), &haves, b"0000"].concat().as_slice()
        );
        let ack = format!("ACK {B} common");
        assert_eq!(
            n.on_line(ack.as_bytes(), RoundEnd::Flush).expect("ok"),
            AckAction::Relay
        );
        assert_eq!(
            n.on_line(b"NAK", RoundEnd::Flush).expect("ok"),
            AckAction::Relay
        );
        let done = n.request(b"", RoundEnd::Done);
        assert_eq!(
            done.as_ref(),
            [wants(&[]).as_ref(), &haves, b"0009done\n"]
                .concat()
                .as_slice()
        );
        // The upstream acknowledges the replayed have again: the client already knows.
        assert_eq!(
            n.on_line(ack.as_bytes(), RoundEnd::Done).expect("ok"),
            AckAction::Drop
        );
        let last = format!("ACK {B}");
        assert_eq!(
            n.on_line(last.as_bytes(), RoundEnd::Done).expect("ok"),
            AckAction::Last
        );
    }

    #[test]
    fn final_nak_and_other_lines() {
        let mut n = Negotiation::new(wants(&["deepen 1"]));
        assert!(n.deepen());
        assert_eq!(
            n.on_line(b"NAK", RoundEnd::Done).expect("ok"),
            AckAction::Last
        );
        let ready = format!("ACK {A} ready");
        assert_eq!(
            n.on_line(ready.as_bytes(), RoundEnd::Flush).expect("ok"),
            AckAction::Relay
        );
        assert_eq!(
            n.on_line(b"ERR no", RoundEnd::Flush).expect("ok"),
            AckAction::Relay
        );
        assert!(is_shallow_line(format!("shallow {A}").as_bytes()));
        assert!(is_shallow_line(format!("unshallow {A}").as_bytes()));
        assert!(!is_shallow_line(b"NAK"));
    }

    #[test]
    fn single_ack_mode_counts_plain_acks_as_common() {
        let mut n = Negotiation::new(wants(&[]));
        let ack = format!("ACK {A}");
        assert_eq!(
            n.on_line(ack.as_bytes(), RoundEnd::Flush).expect("ok"),
            AckAction::Relay
        );
        assert_eq!(
            n.on_line(ack.as_bytes(), RoundEnd::Flush).expect("ok"),
            AckAction::Drop
        );
        assert!(n.request(b"", RoundEnd::Flush).len() > wants(&[]).len() + 4);
    }
}
