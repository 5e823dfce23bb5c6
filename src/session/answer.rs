//! The answer to a push: report-status (v1 or v2) with the gateway's own `ng` lines merged
//! with the upstream's report, inside sideband band 1 when the client agreed to it, and the
//! gateway's explanations (and the upstream's messages) on band 2 so `git push` prints them as
//! `remote:` lines.

use bytes::{BufMut, Bytes, BytesMut};

use crate::proto::report::{RefStatus, Report};
use crate::proto::sideband::{self, Band, MAX_PAYLOAD_64K, MAX_PAYLOAD_SMALL};
use crate::proto::{Capabilities, ProtoError};

/// How the client wants to be answered, from the capabilities it chose.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnswerFormat {
    /// `side-band-64k` or `side-band`: the payload limit of one band packet.
    pub sideband: Option<usize>,
    /// `report-status` or `report-status-v2` was asked for.
    pub report: bool,
    /// `report-status-v2`.
    pub v2: bool,
}

impl AnswerFormat {
    pub(crate) fn from(caps: &Capabilities) -> Self {
        let sideband = if caps.contains("side-band-64k") {
            Some(MAX_PAYLOAD_64K)
        } else if caps.contains("side-band") {
            Some(MAX_PAYLOAD_SMALL)
        } else {
            None
        };
        AnswerFormat {
            sideband,
            report: caps.contains("report-status") || caps.contains("report-status-v2"),
            v2: caps.contains("report-status-v2"),
        }
    }

    /// Encodes `messages` (band 2; dropped without sideband: there is nowhere to put them) and
    /// the report.
    pub(crate) fn encode(&self, messages: &[u8], report: &Report) -> Result<Bytes, ProtoError> {
        let mut out = BytesMut::new();
        match self.sideband {
            Some(max) => {
                if !messages.is_empty() {
                    sideband::encode(&mut out, Band::Progress, messages, max);
                }
                if self.report {
                    report.encode_sideband(&mut out, self.v2, max)?;
                } else {
                    out.put_slice(crate::proto::pktline::flush());
                }
            }
            None => {
                if self.report {
                    report.encode(&mut out, self.v2)?;
                }
            }
        }
        Ok(out.freeze())
    }
}

/// One band-2 line explaining a rejected ref.
pub(crate) fn explain(messages: &mut Vec<u8>, status: &RefStatus) {
    if let RefStatus::Rejected { refname, reason } = status {
        messages.extend_from_slice(format!("gitgate: {refname} rejected: {reason}\n").as_bytes());
    }
}
