//! Helpers shared by the unit tests of `proto`, and tests across its files.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::proto::pktline::{packets, PktLine};

/// The path of a recorded transcript under `fixtures/proto/` (see `fixtures/proto/record.sh`).
pub(crate) fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/proto")
        .join(name)
}

/// The bytes of a recorded transcript; panics (failing the test) if it is missing.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One packet per line, data escaped, for snapshots. Stops at the first framing error or at
/// a `PACK` header (binary pack data follows).
pub(crate) fn render(buf: &[u8]) -> String {
    let mut out = String::new();
    let mut it = packets(buf);
    while let Some(pkt) = it.next() {
        match pkt {
            Ok(PktLine::Data(d)) => {
                let _ = writeln!(out, "{:04x} {}", d.len() + 4, d.escape_ascii());
            }
            Ok(PktLine::Flush) => out.push_str("0000 (flush)\n"),
            Ok(PktLine::Delim) => out.push_str("0001 (delim)\n"),
            Ok(PktLine::ResponseEnd) => out.push_str("0002 (response-end)\n"),
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
                break;
            }
        }
        if it.rest().starts_with(b"PACK") {
            let _ = writeln!(out, "PACK ({} bytes)", it.rest().len());
            break;
        }
    }
    out
}

/// `insta::assert_snapshot!` with a description of the invariant the snapshot holds, and a
/// file name without the crate's module path (so it does not depend on the crate name).
macro_rules! snapshot {
    ($name:expr, $description:expr, $value:expr) => {
        insta::with_settings!({ description => $description, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}
pub(crate) use snapshot;

/// Whole exchanges across the files of `proto`.
mod transcripts {
    use super::fixture;
    use crate::proto::receive::{parse_update_request, Limits};
    use crate::proto::report::{parse_response, RefStatus, Report, Unpack};
    use crate::proto::sideband::{self, Band, MAX_PAYLOAD_64K};
    use crate::proto::ProtoError;

    #[test]
    fn push_with_one_denied_ref_end_to_end() -> Result<(), ProtoError> {
        // The client's request, as recorded.
        let body = fixture("push-update/02-git-receive-pack.req");
        let (request, pack_at) = parse_update_request(&body, &Limits::default())?;
        let order: Vec<&str> = request
            .commands
            .iter()
            .map(|c| c.refname.as_str())
            .collect();

        // The gateway denies main and relays the rest with the same pack.
        let own = [RefStatus::rejected(
            "refs/heads/main",
            "protect-main: needs approval",
        )];
        let mut relayed = request.clone();
        relayed.commands.retain(|c| c.refname != "refs/heads/main");
        let mut upstream_body = Vec::new();
        relayed.encode(&mut upstream_body)?;
        upstream_body.extend_from_slice(body.get(pack_at..).unwrap_or_default());
        let (seen, _) = parse_update_request(&upstream_body, &Limits::default())?;
        assert_eq!(seen.commands.len(), 2, "main never reaches the upstream");

        // The upstream's recorded answer, minus the ref it never saw.
        let mut upstream =
            parse_response(&fixture("push-update/02-git-receive-pack.resp"), true)?.report;
        upstream.refs.retain(|s| s.refname() != "refs/heads/main");

        // What the client gets: a message on band 2, then the merged report on band 1.
        let merged = Report::merge(&order, Some(&upstream), &own);
        let mut answer = Vec::new();
        sideband::encode(
            &mut answer,
            Band::Progress,
            b"gitgate: refs/heads/main needs approval\n",
            MAX_PAYLOAD_64K,
        );
        merged.encode_sideband(&mut answer, true, MAX_PAYLOAD_64K)?;

        let client_view = parse_response(&answer, true)?;
        assert_eq!(client_view.report.unpack, Unpack::Ok);
        assert_eq!(
            client_view.report.refs,
            [
                RefStatus::rejected("refs/heads/main", "protect-main: needs approval"),
                RefStatus::ok("refs/heads/feature"),
                RefStatus::ok("refs/tags/v1.0"),
            ]
        );
        assert_eq!(
            client_view.messages,
            b"gitgate: refs/heads/main needs approval\n"
        );
        Ok(())
    }
}
