//! Hidden refs (`hide_refs`): removed from every ref listing a client sees — the v0/v1
//! advertisement of both services and the v2 `ls-refs` answer — and never fetchable by name
//! (`want-ref`) or by the id of their tip (`want`).
//!
//! A listing is filtered as it streams, one pkt-line at a time. The v0/v1 capability list rides
//! on the first ref line: when that ref is hidden, the list moves to the next visible ref, or to
//! a `capabilities^{}` line when none remains (gitprotocol-pack "Reference Discovery"). `HEAD`
//! is hidden when its symref target is, and a `symref=` capability naming a hidden ref is
//! dropped, so neither the name nor the tip of a hidden ref leaks.

use bytes::{BufMut, BytesMut};

use crate::git::ByteStream;
use crate::policy::RefFilter;
use crate::proto::pktline::{self, Decoded, PktLine};
use crate::proto::{Capabilities, ProtoError};

/// Which listing is being filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// A v0/v1 advertisement (capabilities on the first ref line).
    Advertisement,
    /// A v2 `ls-refs` answer (`<oid> <ref>[ symref-target:<t>][ peeled:<oid>]`).
    LsRefs,
}

/// Filters a ref listing; after its flush everything passes through.
pub(crate) struct RefListFilter {
    filter: RefFilter,
    listing: Listing,
    buf: BytesMut,
    /// The first ref line has not been seen yet (v0/v1).
    first: bool,
    /// Capabilities of a hidden first line, waiting for the next visible ref.
    carried: Option<Capabilities>,
    /// The id length seen on ref lines, for a `capabilities^{}` line.
    zero_id: Option<String>,
    passthrough: bool,
}

impl RefListFilter {
    pub(crate) fn new(filter: RefFilter, listing: Listing) -> Self {
        RefListFilter {
            filter,
            listing,
            buf: BytesMut::new(),
            first: true,
            carried: None,
            zero_id: None,
            passthrough: false,
        }
    }

    /// Feeds a chunk; appends what to relay to `out`.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut BytesMut) -> Result<(), ProtoError> {
        if self.passthrough {
            out.put_slice(chunk);
            return Ok(());
        }
        self.buf.extend_from_slice(chunk);
        loop {
            if self.passthrough {
                out.put_slice(&self.buf);
                self.buf.clear();
                return Ok(());
            }
            let (pkt, consumed) = match pktline::decode(&self.buf)? {
                Decoded::Incomplete { .. } => return Ok(()),
                Decoded::Packet { pkt, consumed } => (pkt.to_owned_pkt(), consumed),
            };
            let raw = self.buf.split_to(consumed).freeze();
            self.handle(pkt.as_pkt(), &raw, out)?;
        }
    }

    /// Errors when the listing stopped before its flush.
    pub(crate) fn finish(&self) -> Result<(), ProtoError> {
        if self.passthrough || (self.buf.is_empty() && self.first) {
            Ok(())
        } else {
            Err(ProtoError::Truncated {
                context: "ref listing",
            })
        }
    }

    fn handle(
        &mut self,
        pkt: PktLine<'_>,
        raw: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), ProtoError> {
        let data = match pkt {
            PktLine::Data(d) => d,
            PktLine::Flush => {
                if let Some(caps) = self.carried.take() {
                    // Every ref was hidden: git expects the capabilities on a lone line.
                    let zero = self.zero_id.clone().unwrap_or_else(|| "0".repeat(40));
                    let line = format!("{zero} capabilities^{{}}\0{caps}\n");
                    pktline::encode_data(out, line.as_bytes())?;
                }
                out.put_slice(raw);
                self.passthrough = true;
                return Ok(());
            }
            PktLine::Delim | PktLine::ResponseEnd => {
                out.put_slice(raw);
                return Ok(());
            }
        };
        let line = pktline::trim_lf(data);
        if line.starts_with(b"version ")
            || line.starts_with(b"shallow ")
            || line.starts_with(b"ERR ")
        {
            out.put_slice(raw);
            return Ok(());
        }
        let (head, caps) = match line.iter().position(|b| *b == 0) {
            Some(nul) => (
                line.get(..nul).unwrap_or_default(),
                Some(Capabilities::parse(
                    line.get(nul + 1..).unwrap_or_default(),
                )?),
            ),
            None => (line, None),
        };
        let head = String::from_utf8_lossy(head);
        let mut fields = head.split(' ');
        let oid = fields.next().unwrap_or("");
        let refname = fields.next().unwrap_or("");
        if self.zero_id.is_none() && !oid.is_empty() {
            self.zero_id = Some("0".repeat(oid.len()));
        }
        let symref_target = match self.listing {
            Listing::LsRefs => fields.find_map(|f| f.strip_prefix("symref-target:")),
            Listing::Advertisement => None,
        };
        let hidden = self.filter.is_hidden(refname)
            || symref_target.is_some_and(|t| self.filter.is_hidden(t))
            || (refname == "HEAD" && self.head_target_hidden(caps.as_ref()));
        let mut caps = caps.map(|c| self.clean_caps(c));
        let was_first = std::mem::replace(&mut self.first, false);
        if hidden {
            if was_first && self.listing == Listing::Advertisement {
                self.carried = caps.take();
            }
            return Ok(());
        }
        if let Some(carried) = self.carried.take() {
            caps = Some(carried);
        }
        match caps {
            Some(caps) if self.listing == Listing::Advertisement => {
                let line = format!("{head}\0{caps}\n");
                pktline::encode_data(out, line.as_bytes())?;
            }
            _ => out.put_slice(raw),
        }
        Ok(())
    }

    fn head_target_hidden(&self, caps: Option<&Capabilities>) -> bool {
        caps.into_iter()
            .flat_map(|c| c.iter())
            .filter(|c| c.name() == "symref")
            .filter_map(|c| c.value())
            .filter_map(|v| v.strip_prefix("HEAD:"))
            .any(|target| self.filter.is_hidden(target))
    }

    /// Drops `symref=` capabilities naming a hidden ref.
    fn clean_caps(&self, caps: Capabilities) -> Capabilities {
        let mut cleaned = caps.clone();
        cleaned.remove("symref");
        for cap in caps.iter().filter(|c| c.name() == "symref") {
            let visible = cap
                .value()
                .is_some_and(|v| v.split(':').all(|name| !self.filter.is_hidden(name)));
            if visible {
                cleaned.push(cap.clone());
            }
        }
        cleaned
    }
}

/// `inner` filtered by `filter`.
pub(crate) fn filter_listing(inner: ByteStream, filter: RefListFilter) -> ByteStream {
    super::advertise::rewrite(inner, filter)
}

impl super::advertise::Rewrite for RefListFilter {
    fn feed(&mut self, chunk: &[u8], out: &mut BytesMut) -> Result<(), ProtoError> {
        RefListFilter::feed(self, chunk, out)
    }

    fn finish(&self) -> Result<(), ProtoError> {
        RefListFilter::finish(self)
    }
}

/// The tips of a v0 advertisement body (no service header): `(oid, refname)` pairs.
pub(crate) fn advertised_tips(body: &[u8]) -> Vec<(String, String)> {
    let mut tips = Vec::new();
    for pkt in pktline::packets(body) {
        let Ok(PktLine::Data(d)) = pkt else {
            break;
        };
        let line = pktline::trim_lf(d);
        let head = line.split(|b| *b == 0).next().unwrap_or_default();
        let head = String::from_utf8_lossy(head);
        let mut fields = head.split(' ');
        if let (Some(oid), Some(name)) = (fields.next(), fields.next()) {
            if oid.len() >= 40 && oid.bytes().all(|b| b.is_ascii_hexdigit()) {
                tips.push((oid.to_string(), name.trim_end_matches("^{}").to_string()));
            }
        }
    }
    tips
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Pattern};

    fn filter(globs: &[&str]) -> RefFilter {
        let _ = Pattern::any();
        let mut toml = String::from("[[rule]]\nname = \"secret\"\nhide_refs = [");
        toml.push_str(
            &globs
                .iter()
                .map(|g| format!("\"{g}\""))
                .collect::<Vec<_>>()
                .join(","),
        );
        toml.push_str("]\n");
        let config = parse(&toml, std::path::Path::new("t.toml")).expect("config");
        crate::policy::Policy::new(&config).ref_filter(
            &crate::policy::Subject {
                name: "a",
                groups: &[],
            },
            "local/r",
        )
    }

    fn pkt(line: &str) -> Vec<u8> {
        let mut out = Vec::new();
        pktline::encode_data(&mut out, line.as_bytes()).expect("fits");
        out
    }

    fn run(listing: Listing, globs: &[&str], lines: &[&str]) -> Vec<String> {
        let mut input = Vec::new();
        for l in lines {
            input.extend(pkt(l));
        }
        input.extend_from_slice(b"0000");
        let mut f = RefListFilter::new(filter(globs), listing);
        let mut out = BytesMut::new();
        // Feed byte by byte: packet boundaries must not matter.
        for b in &input {
            f.feed(std::slice::from_ref(b), &mut out).expect("feeds");
        }
        f.finish().expect("complete");
        let mut lines = Vec::new();
        for p in pktline::packets(&out) {
            match p.expect("valid") {
                PktLine::Data(d) => lines.push(String::from_utf8_lossy(d).into_owned()),
                PktLine::Flush => lines.push("0000".into()),
                _ => lines.push("?".into()),
            }
        }
        lines
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    /// The advertisement filter also runs on v2 capability advertisements (an upstream may
    /// answer v0 to a v2 request, so the gateway filters whatever comes): they pass unchanged.
    #[test]
    fn v2_capability_advertisements_pass_the_advertisement_filter() {
        let caps = [
            "version 2\n",
            "agent=git/2.47.3\n",
            "ls-refs=unborn\n",
            "fetch=shallow wait-for-done filter\n",
            "server-option\n",
            "object-format=sha1\n",
        ];
        let out = run(Listing::Advertisement, &["refs/heads/secret/**"], &caps);
        let mut expected: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        expected.push("0000".into());
        assert_eq!(out, expected);
    }

    #[test]
    fn capabilities_move_to_the_next_visible_ref() {
        let out = run(
            Listing::Advertisement,
            &["refs/heads/secret/**"],
            &[
                &format!("{A} HEAD\0report-status symref=HEAD:refs/heads/secret/x agent=git\n"),
                &format!("{A} refs/heads/secret/x\n"),
                &format!("{B} refs/heads/main\n"),
            ],
        );
        assert_eq!(
            out,
            vec![
                format!("{B} refs/heads/main\0report-status agent=git\n"),
                "0000".to_string()
            ]
        );
    }

    #[test]
    fn all_hidden_leaves_a_capabilities_line() {
        let out = run(
            Listing::Advertisement,
            &["refs/**"],
            &[&format!("{A} refs/heads/main\0ofs-delta\n")],
        );
        assert_eq!(
            out,
            vec![
                format!("{} capabilities^{{}}\0ofs-delta\n", "0".repeat(40)),
                "0000".to_string()
            ]
        );
    }

    #[test]
    fn visible_lines_stay_byte_identical_and_peeled_tags_follow() {
        let out = run(
            Listing::Advertisement,
            &["refs/tags/internal-*"],
            &[
                &format!("{A} refs/heads/main\0ofs-delta\n"),
                &format!("{A} refs/tags/internal-1\n"),
                &format!("{B} refs/tags/internal-1^{{}}\n"),
                &format!("{B} refs/tags/v1\n"),
            ],
        );
        assert_eq!(
            out,
            vec![
                format!("{A} refs/heads/main\0ofs-delta\n"),
                format!("{B} refs/tags/v1\n"),
                "0000".to_string()
            ]
        );
    }

    #[test]
    fn ls_refs_hides_refs_and_head_pointing_at_them() {
        let out = run(
            Listing::LsRefs,
            &["refs/heads/secret"],
            &[
                &format!("{A} HEAD symref-target:refs/heads/secret\n"),
                &format!("{A} refs/heads/secret\n"),
                &format!("{B} refs/heads/main\n"),
            ],
        );
        assert_eq!(
            out,
            vec![format!("{B} refs/heads/main\n"), "0000".to_string()]
        );
    }

    #[test]
    fn tips_are_read_from_an_advertisement() {
        let mut body = pkt(&format!("{A} refs/heads/main\0caps\n"));
        body.extend(pkt(&format!("{B} refs/tags/v1^{{}}\n")));
        body.extend_from_slice(b"0000");
        assert_eq!(
            advertised_tips(&body),
            vec![
                (A.to_string(), "refs/heads/main".to_string()),
                (B.to_string(), "refs/tags/v1".to_string())
            ]
        );
    }
}
