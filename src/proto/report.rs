//! report-status and report-status-v2 (gitprotocol-pack "Report Status"): what receive-pack
//! answers after a push.
//!
//! ```text
//! report-status     = unpack-status 1*(command-status) flush-pkt
//! unpack-status     = PKT-LINE("unpack" SP ("ok" / error-msg))
//! command-status    = PKT-LINE("ok" SP refname) / PKT-LINE("ng" SP refname SP error-msg)
//! ; report-status-v2 only: option lines after an "ok"
//! option-line       = PKT-LINE("option" SP ("refname" SP refname / "old-oid" SP obj-id /
//!                                           "new-oid" SP obj-id / "forced-update"))
//! ```
//!
//! With `side-band-64k` the whole report (its own pkt-lines and flush) travels inside band 1
//! packets, followed by an outer flush; band 2 carries the `remote:` messages. The gateway parses
//! the upstream's report ([`parse_response`]), adds its own `ng` lines for refs it denied
//! ([`Report::merge`]) and encodes the result for the client ([`Report::encode_sideband`]).
//! A reason is one line: [`sanitize_reason`] is applied to everything encoded.

use std::collections::{HashMap, HashSet};

use bytes::BufMut;

use crate::proto::oid::ObjectId;
use crate::proto::pktline::{self, trim_lf, PktLine};
use crate::proto::sideband::{self, Band, Demuxer, Event};
use crate::proto::{excerpt, packet_kind, ProtoError};

/// The longest reason [`sanitize_reason`] keeps, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

/// Whether the pack was unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpack {
    /// `unpack ok`.
    Ok,
    /// `unpack <reason>`.
    Failed(String),
}

/// A report-status-v2 `option` line, describing what a `proc-receive` hook really did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefOption {
    /// `option refname <ref>`: the ref actually updated.
    Refname(String),
    /// `option old-oid <oid>`.
    OldOid(ObjectId),
    /// `option new-oid <oid>`.
    NewOid(ObjectId),
    /// `option forced-update`.
    ForcedUpdate,
    /// An option this version does not know, kept verbatim (after `option `).
    Other(String),
}

/// The outcome for one ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefStatus {
    /// `ok <ref>`, with report-status-v2 options.
    Ok {
        /// The ref name.
        refname: String,
        /// `option` lines that followed.
        options: Vec<RefOption>,
    },
    /// `ng <ref> <reason>`: git prints `! [remote rejected] <ref> (<reason>)`.
    Rejected {
        /// The ref name.
        refname: String,
        /// Why (one line).
        reason: String,
    },
}

impl RefStatus {
    /// `ok <refname>` without options.
    pub fn ok(refname: &str) -> Self {
        Self::Ok {
            refname: refname.to_owned(),
            options: Vec::new(),
        }
    }

    /// `ng <refname> <reason>`, the reason passed through [`sanitize_reason`].
    pub fn rejected(refname: &str, reason: &str) -> Self {
        Self::Rejected {
            refname: refname.to_owned(),
            reason: sanitize_reason(reason),
        }
    }

    /// The ref name.
    pub fn refname(&self) -> &str {
        match self {
            Self::Ok { refname, .. } | Self::Rejected { refname, .. } => refname,
        }
    }
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The unpack status.
    pub unpack: Unpack,
    /// One status per ref, in the order of the commands.
    pub refs: Vec<RefStatus>,
}

/// Makes `reason` one line: control characters (CR, LF, ...) become spaces, surrounding space
/// is trimmed, it is cut to [`MAX_REASON_BYTES`] and an empty reason becomes `rejected`.
pub fn sanitize_reason(reason: &str) -> String {
    let mut out: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_REASON_BYTES {
        let mut cut = MAX_REASON_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    match out.trim() {
        "" => "rejected".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

impl Report {
    /// Parses a report: pkt-lines from `unpack` to the flush, nothing after it.
    pub fn parse(buf: &[u8]) -> Result<Self, ProtoError> {
        let mut packets = pktline::packets(buf);
        let mut next = || {
            packets.next().ok_or(ProtoError::Truncated {
                context: "report-status",
            })
        };
        let unpack = match next()?? {
            PktLine::Data(d) => parse_unpack(trim_lf(d))?,
            other => return Err(unexpected(&other)),
        };
        let mut refs: Vec<RefStatus> = Vec::new();
        loop {
            let line = match next()?? {
                PktLine::Flush => break,
                PktLine::Data(d) => trim_lf(d),
                other => return Err(unexpected(&other)),
            };
            if let Some(option) = line.strip_prefix(b"option ") {
                match refs.last_mut() {
                    Some(RefStatus::Ok { options, .. }) => options.push(parse_option(option)?),
                    _ => return Err(bad(line)),
                }
            } else {
                refs.push(parse_status(line)?);
            }
        }
        let rest = packets.rest().len();
        if rest > 0 {
            return Err(ProtoError::TrailingData {
                context: "report-status",
                bytes: rest,
            });
        }
        Ok(Self { unpack, refs })
    }

    /// Appends the report as pkt-lines and a flush. `v2` keeps the `option` lines (only for
    /// clients that chose `report-status-v2`). Reasons are sanitised; a ref name that cannot
    /// be written on one line is [`ProtoError::Unencodable`].
    pub fn encode<B: BufMut>(&self, out: &mut B, v2: bool) -> Result<(), ProtoError> {
        let mut line = Vec::with_capacity(128);
        line.extend_from_slice(b"unpack ");
        match &self.unpack {
            Unpack::Ok => line.extend_from_slice(b"ok"),
            Unpack::Failed(reason) => match sanitize_reason(reason).as_str() {
                // "ok" would read as success.
                "ok" => line.extend_from_slice(b"error"),
                reason => line.extend_from_slice(reason.as_bytes()),
            },
        }
        pktline::encode_text(out, &line)?;
        for status in &self.refs {
            line.clear();
            let refname = status.refname();
            if refname.is_empty() || refname.bytes().any(|c| c <= b' ' || c == 0x7f) {
                return Err(ProtoError::Unencodable {
                    what: "report-status",
                    reason: "ref name is empty or has a space or control character",
                });
            }
            match status {
                RefStatus::Ok { options, .. } => {
                    line.extend_from_slice(b"ok ");
                    line.extend_from_slice(refname.as_bytes());
                    pktline::encode_text(out, &line)?;
                    for option in options.iter().filter(|_| v2) {
                        encode_option(out, option)?;
                    }
                }
                RefStatus::Rejected { reason, .. } => {
                    line.extend_from_slice(b"ng ");
                    line.extend_from_slice(refname.as_bytes());
                    line.push(b' ');
                    line.extend_from_slice(sanitize_reason(reason).as_bytes());
                    pktline::encode_text(out, &line)?;
                }
            }
        }
        out.put_slice(pktline::flush());
        Ok(())
    }

    /// Appends the report inside band-1 packets of at most `max_payload` bytes, then the
    /// outer flush: the shape git expects when `side-band-64k` was agreed. Messages for the
    /// client (band 2, [`sideband::encode`]) go before it.
    pub fn encode_sideband<B: BufMut>(
        &self,
        out: &mut B,
        v2: bool,
        max_payload: usize,
    ) -> Result<(), ProtoError> {
        let mut inner = Vec::with_capacity(256);
        self.encode(&mut inner, v2)?;
        sideband::encode(out, Band::Data, &inner, max_payload);
        out.put_slice(pktline::flush());
        Ok(())
    }

    /// The report for the client: one status per ref of `order` (the client's commands, in
    /// its order). A ref's status is the gateway's own from `own` if there is one, else the
    /// upstream's; a ref with neither is rejected ("no status from upstream"): fail closed.
    /// The unpack status is the upstream's (`ok` when nothing was relayed, `upstream` is
    /// `None`). Upstream statuses for refs not in `order` are appended.
    pub fn merge(order: &[&str], upstream: Option<&Report>, own: &[RefStatus]) -> Report {
        let mut by_name: HashMap<&str, Vec<&RefStatus>> = HashMap::new();
        for status in upstream.map(|r| r.refs.as_slice()).unwrap_or_default() {
            by_name.entry(status.refname()).or_default().push(status);
        }
        let own: HashMap<&str, &RefStatus> = own.iter().map(|s| (s.refname(), s)).collect();
        let ordered: HashSet<&str> = order.iter().copied().collect();
        let mut refs = Vec::with_capacity(order.len());
        for name in order {
            if let Some(status) = own.get(name) {
                refs.push((*status).clone());
            } else if let Some(statuses) = by_name.remove(name) {
                refs.extend(statuses.into_iter().cloned());
            } else {
                refs.push(RefStatus::rejected(name, "no status from upstream"));
            }
        }
        for status in upstream.map(|r| r.refs.as_slice()).unwrap_or_default() {
            if !ordered.contains(status.refname()) {
                refs.push(status.clone());
            }
        }
        let unpack = upstream.map_or(Unpack::Ok, |r| r.unpack.clone());
        Report { unpack, refs }
    }
}

fn unexpected(pkt: &PktLine<'_>) -> ProtoError {
    ProtoError::UnexpectedPacket {
        context: "report-status",
        found: packet_kind(pkt),
    }
}

fn bad(line: &[u8]) -> ProtoError {
    ProtoError::BadReport {
        line: excerpt(line),
    }
}

fn text(bytes: &[u8], line: &[u8]) -> Result<String, ProtoError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| bad(line))
}

fn parse_unpack(line: &[u8]) -> Result<Unpack, ProtoError> {
    if let Some(message) = line.strip_prefix(b"ERR ") {
        return Err(ProtoError::RemoteError {
            message: excerpt(message),
        });
    }
    match line.strip_prefix(b"unpack ") {
        Some(b"ok") => Ok(Unpack::Ok),
        Some(reason) => Ok(Unpack::Failed(text(reason, line)?)),
        None => Err(bad(line)),
    }
}

fn parse_status(line: &[u8]) -> Result<RefStatus, ProtoError> {
    if let Some(refname) = line.strip_prefix(b"ok ") {
        if refname.is_empty() || refname.contains(&b' ') {
            return Err(bad(line));
        }
        return Ok(RefStatus::Ok {
            refname: text(refname, line)?,
            options: Vec::new(),
        });
    }
    let rest = line.strip_prefix(b"ng ").ok_or_else(|| bad(line))?;
    // git's send-pack accepts `ng <ref>` without a reason.
    let mut parts = rest.splitn(2, |c| *c == b' ');
    let refname = parts
        .next()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad(line))?;
    let reason = parts.next().unwrap_or_default();
    Ok(RefStatus::Rejected {
        refname: text(refname, line)?,
        reason: text(reason, line)?,
    })
}

fn parse_option(option: &[u8]) -> Result<RefOption, ProtoError> {
    let mut parts = option.splitn(2, |c| *c == b' ');
    let key = parts.next().unwrap_or_default();
    let value = parts.next();
    Ok(match (key, value) {
        (b"refname", Some(r)) => RefOption::Refname(text(r, option)?),
        (b"old-oid", Some(id)) => RefOption::OldOid(ObjectId::from_hex(id)?),
        (b"new-oid", Some(id)) => RefOption::NewOid(ObjectId::from_hex(id)?),
        (b"forced-update", None) => RefOption::ForcedUpdate,
        _ => RefOption::Other(text(option, option)?),
    })
}

fn encode_option<B: BufMut>(out: &mut B, option: &RefOption) -> Result<(), ProtoError> {
    let line = match option {
        RefOption::Refname(r) => format!("option refname {r}"),
        RefOption::OldOid(id) => format!("option old-oid {id}"),
        RefOption::NewOid(id) => format!("option new-oid {id}"),
        RefOption::ForcedUpdate => "option forced-update".to_owned(),
        RefOption::Other(raw) => format!("option {raw}"),
    };
    if line.bytes().any(|c| c < b' ' || c == 0x7f) {
        return Err(ProtoError::Unencodable {
            what: "report-status option",
            reason: "control character",
        });
    }
    pktline::encode_text(out, line.as_bytes())?;
    Ok(())
}

/// The upstream's answer to a push, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamResponse {
    /// The report-status.
    pub report: Report,
    /// Band-2 bytes (hook output, `remote:` lines), concatenated.
    pub messages: Vec<u8>,
}

/// Parses a receive-pack response body. With `sideband` (the client and upstream agreed on
/// `side-band-64k`) the report is read from band 1 and messages from band 2; band 3 or an
/// `ERR` line is [`ProtoError::RemoteError`].
pub fn parse_response(body: &[u8], sideband: bool) -> Result<UpstreamResponse, ProtoError> {
    if !sideband {
        return Ok(UpstreamResponse {
            report: Report::parse(body)?,
            messages: Vec::new(),
        });
    }
    let mut demux = Demuxer::new();
    demux.feed(body);
    let (mut report, mut messages) = (Vec::new(), Vec::new());
    loop {
        match demux.next_event()? {
            Some(Event::Band {
                band: Band::Data,
                payload,
            }) => report.extend_from_slice(&payload),
            Some(Event::Band {
                band: Band::Progress,
                payload,
            }) => messages.extend_from_slice(&payload),
            Some(Event::Band {
                band: Band::Error,
                payload,
            }) => {
                return Err(ProtoError::RemoteError {
                    message: excerpt(trim_lf(&payload)),
                })
            }
            Some(Event::Line(line)) => {
                return Err(match line.strip_prefix(b"ERR ") {
                    Some(message) => ProtoError::RemoteError {
                        message: excerpt(trim_lf(message)),
                    },
                    None => ProtoError::UnexpectedLine {
                        context: "receive-pack response",
                        line: excerpt(&line),
                    },
                });
            }
            Some(Event::Flush) => break,
            Some(Event::Delim | Event::ResponseEnd) => {
                return Err(ProtoError::UnexpectedPacket {
                    context: "receive-pack response",
                    found: "delim or response-end",
                });
            }
            None => {
                demux.finish()?;
                return Err(ProtoError::Truncated {
                    context: "receive-pack response",
                });
            }
        }
    }
    let rest = demux.buffered().len();
    if rest > 0 {
        return Err(ProtoError::TrailingData {
            context: "receive-pack response",
            bytes: rest,
        });
    }
    Ok(UpstreamResponse {
        report: Report::parse(&report)?,
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sideband::MAX_PAYLOAD_64K;
    use crate::proto::tests::{fixture, render, snapshot};

    const ID: &str = "8e4f0ac7665d7bf0f40294e57a73f8c18ee60893";

    #[test]
    fn recorded_success_parses_and_reencodes_identically() -> Result<(), ProtoError> {
        let body = fixture("push-update/02-git-receive-pack.resp");
        let response = parse_response(&body, true)?;
        assert_eq!(response.report.unpack, Unpack::Ok);
        let names: Vec<&str> = response
            .report
            .refs
            .iter()
            .map(RefStatus::refname)
            .collect();
        assert_eq!(
            names,
            ["refs/heads/main", "refs/heads/feature", "refs/tags/v1.0"]
        );
        assert!(response.messages.is_empty());
        let mut encoded = Vec::new();
        response
            .report
            .encode_sideband(&mut encoded, true, MAX_PAYLOAD_64K)?;
        assert_eq!(encoded, body);
        Ok(())
    }

    #[test]
    fn recorded_rejection_parses_and_reencodes_identically() -> Result<(), ProtoError> {
        let body = fixture("push-rejected/02-git-receive-pack.resp");
        let response = parse_response(&body, true)?;
        assert_eq!(
            response.report.refs,
            [RefStatus::Rejected {
                refname: "refs/heads/main".into(),
                reason: "non-fast-forward".into()
            }]
        );
        assert_eq!(
            response.messages,
            b"error: denying non-fast-forward refs/heads/main (you should pull first)\n"
        );
        let mut encoded = Vec::new();
        sideband::encode(
            &mut encoded,
            Band::Progress,
            &response.messages,
            MAX_PAYLOAD_64K,
        );
        response
            .report
            .encode_sideband(&mut encoded, true, MAX_PAYLOAD_64K)?;
        assert_eq!(encoded, body);
        Ok(())
    }

    #[test]
    fn merge_keeps_client_order_and_gateway_rejections() -> Result<(), ProtoError> {
        let upstream =
            parse_response(&fixture("push-update/02-git-receive-pack.resp"), true)?.report;
        let upstream = Report {
            refs: upstream
                .refs
                .into_iter()
                .filter(|s| s.refname() != "refs/heads/main")
                .collect(),
            ..upstream
        };
        let own = [RefStatus::rejected(
            "refs/heads/main",
            "protect-main: agents push to agent/* only\n(see policy)",
        )];
        let order = [
            "refs/heads/main",
            "refs/heads/feature",
            "refs/tags/v1.0",
            "refs/heads/lost",
        ];
        let merged = Report::merge(&order, Some(&upstream), &own);
        let mut out = Vec::new();
        merged.encode(&mut out, false)?;
        snapshot!(
            "report_merged",
            "gateway ng first (client order), reason on one line; upstream oks; a ref without any status is rejected",
            render(&out)
        );
        Ok(())
    }

    #[test]
    fn merge_without_upstream_is_unpack_ok() {
        let merged = Report::merge(
            &["refs/heads/a"],
            None,
            &[RefStatus::rejected("refs/heads/a", "denied")],
        );
        assert_eq!(merged.unpack, Unpack::Ok);
        assert_eq!(merged.refs, [RefStatus::rejected("refs/heads/a", "denied")]);
    }

    #[test]
    fn merge_keeps_upstream_failure_and_extra_refs() {
        let upstream = Report {
            unpack: Unpack::Failed("index-pack abnormal exit".into()),
            refs: vec![
                RefStatus::rejected("refs/heads/a", "unpacker error"),
                RefStatus::ok("refs/heads/extra"),
            ],
        };
        let merged = Report::merge(&["refs/heads/a"], Some(&upstream), &[]);
        assert_eq!(merged, upstream);
    }

    #[test]
    fn report_status_v2_options() -> Result<(), ProtoError> {
        let mut body = Vec::new();
        for line in [
            "unpack ok".to_string(),
            "ok refs/for/main/topic".into(),
            "option refname refs/changes/01/1/1".into(),
            format!("option old-oid {}", "0".repeat(40)),
            format!("option new-oid {ID}"),
            "option forced-update".into(),
            "option future-thing x".into(),
            "ng refs/heads/b".into(),
        ] {
            pktline::encode_text(&mut body, line.as_bytes())?;
        }
        body.extend_from_slice(b"0000");
        let report = Report::parse(&body)?;
        let Some(RefStatus::Ok { options, .. }) = report.refs.first() else {
            panic!("no ok")
        };
        assert_eq!(options.len(), 5);
        assert_eq!(
            report.refs.get(1),
            Some(&RefStatus::Rejected {
                refname: "refs/heads/b".into(),
                reason: String::new()
            })
        );
        let mut v2 = Vec::new();
        report.encode(&mut v2, true)?;
        let reparsed = Report::parse(&v2)?;
        assert_eq!(reparsed.refs.first(), report.refs.first());
        let mut v1 = Vec::new();
        report.encode(&mut v1, false)?;
        assert!(!render(&v1).contains("option"));
        assert!(
            render(&v1).contains("ng refs/heads/b rejected"),
            "empty reason is made visible"
        );
        Ok(())
    }

    #[test]
    fn reasons_are_one_line() {
        assert_eq!(sanitize_reason("a\nb\r\nc\td\x1b[31m"), "a b  c d [31m");
        assert_eq!(sanitize_reason(" \n "), "rejected");
        let long = "é".repeat(MAX_REASON_BYTES);
        assert!(sanitize_reason(&long).len() <= MAX_REASON_BYTES);
        let report = Report {
            unpack: Unpack::Failed("ok".into()),
            refs: vec![],
        };
        let mut out = Vec::new();
        assert!(report.encode(&mut out, false).is_ok());
        assert_eq!(out, b"0011unpack error\n0000");
    }

    #[test]
    fn reproducer_refname_that_cannot_be_encoded() {
        let report = Report {
            unpack: Unpack::Ok,
            refs: vec![RefStatus::ok("refs/heads/a\nok refs/heads/b")],
        };
        assert!(matches!(
            report.encode(&mut Vec::new(), false),
            Err(ProtoError::Unencodable { .. })
        ));
    }

    fn lines(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            if *line == "0000" {
                out.extend_from_slice(b"0000");
            } else {
                let _ = pktline::encode_text(&mut out, line.as_bytes());
            }
        }
        out
    }

    #[test]
    fn reproducer_malformed_reports() {
        let option = format!("option old-oid {ID}");
        let cases: [(&str, Vec<u8>); 9] = [
            ("empty", Vec::new()),
            ("no unpack line", lines(&["ok refs/heads/a", "0000"])),
            ("flush first", lines(&["0000"])),
            ("no final flush", lines(&["unpack ok", "ok refs/heads/a"])),
            ("option first", lines(&["unpack ok", &option, "0000"])),
            (
                "option after ng",
                lines(&["unpack ok", "ng refs/heads/a x", &option, "0000"]),
            ),
            (
                "unknown status",
                lines(&["unpack ok", "maybe refs/heads/a", "0000"]),
            ),
            ("ok without ref", lines(&["unpack ok", "ok ", "0000"])),
            (
                "trailing data",
                lines(&["unpack ok", "0000", "ok refs/heads/a"]),
            ),
        ];
        for (name, body) in cases {
            assert!(Report::parse(&body).is_err(), "{name}");
        }
        assert!(matches!(
            Report::parse(&lines(&["ERR upstream broke"])),
            Err(ProtoError::RemoteError { .. })
        ));
    }

    #[test]
    fn reproducer_sideband_errors() {
        let mut band3 = Vec::new();
        sideband::encode(
            &mut band3,
            Band::Error,
            b"fatal: out of memory\n",
            MAX_PAYLOAD_64K,
        );
        assert!(
            matches!(parse_response(&band3, true), Err(ProtoError::RemoteError { message }) if message == "fatal: out of memory")
        );
        assert!(matches!(
            parse_response(&lines(&["ERR no"]), true),
            Err(ProtoError::RemoteError { .. })
        ));
        let body = fixture("push-update/02-git-receive-pack.resp");
        let cut = body.get(..body.len() - 4).unwrap_or_default();
        assert!(matches!(
            parse_response(cut, true),
            Err(ProtoError::Truncated { .. })
        ));
        assert!(parse_response(&body[..body.len() - 6], true).is_err());
        let mut extra = body.clone();
        extra.extend_from_slice(b"0000");
        assert!(matches!(
            parse_response(&extra, true),
            Err(ProtoError::TrailingData { .. })
        ));
    }
}
