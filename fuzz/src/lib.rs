//! Bodies of the cargo-fuzz targets in `fuzz_targets/`, one function per target.
//!
//! They live in this library so that `cargo test` (stable, no sanitizers) runs every body over
//! the recorded transcripts in `fixtures/proto/` and the seeds in `corpus/<target>/`. A body
//! panics only when an invariant breaks; any input may be rejected with an error.
//!
//! Run a target (nightly): `cargo +nightly fuzz run pktline` from the repository root.

use gitgate::proto::advertisement::{
    detect_service_header, filter_advertisement, AdvertisementFilter, CapabilityEdit,
};
use gitgate::proto::pktline::{self, Decoded, PktReader, MAX_PKT_LEN};
use gitgate::proto::receive::{parse_update_request, Limits};
use gitgate::proto::report::parse_response;
use gitgate::proto::upload::{parse_upload_request, UploadLimits};
use gitgate::proto::{Capability, ProtocolVersion};
use std::path::Path;

pub mod jwt;

/// pkt-line framing: every decoded packet re-encodes to one that decodes the same, and the
/// async [`PktReader`] yields exactly the packets the sync decoder finds.
pub fn pktline(data: &[u8]) {
    let mut packets = Vec::new();
    let mut offset = 0;
    while let Ok(Decoded::Packet { pkt, consumed }) =
        pktline::decode(data.get(offset..).unwrap_or_default())
    {
        assert!((4..=MAX_PKT_LEN).contains(&consumed), "consumed {consumed}");
        let mut encoded = Vec::new();
        pkt.encode(&mut encoded)
            .expect("a decoded packet re-encodes");
        match pktline::decode(&encoded) {
            Ok(Decoded::Packet {
                pkt: again,
                consumed,
            }) => {
                assert_eq!((again, consumed), (pkt, encoded.len()));
            }
            other => panic!("re-encoded packet does not decode: {other:?}"),
        }
        packets.push(pkt.to_owned_pkt());
        offset += consumed;
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut reader = PktReader::new(data);
        let mut read = Vec::new();
        while let Ok(Some(pkt)) = reader.next().await {
            read.push(pkt);
            assert!(
                read.len() <= packets.len(),
                "reader found more packets than decode"
            );
        }
        assert_eq!(read, packets);
    });
}

/// receive-pack request: a parsed request re-encodes to bytes that parse to the same request.
pub fn receive_commands(data: &[u8]) {
    let Ok((request, consumed)) = parse_update_request(data, &Limits::default()) else {
        return;
    };
    assert!(consumed <= data.len());
    let mut encoded = Vec::new();
    request
        .encode(&mut encoded)
        .expect("a parsed request re-encodes");
    // Re-encoding may add the space git writes after the NUL: relax the size limits.
    let relaxed = Limits {
        max_line_bytes: usize::MAX,
        max_request_bytes: usize::MAX,
        ..Limits::default()
    };
    let (again, used) =
        parse_update_request(&encoded, &relaxed).expect("a re-encoded request parses");
    assert_eq!(again, request);
    assert_eq!(used, encoded.len());
}

/// upload-pack request, as every protocol version; a bundle-uri command is always refused.
pub fn upload_request(data: &[u8]) {
    for version in [ProtocolVersion::V0, ProtocolVersion::V2] {
        if let Ok(request) = parse_upload_request(data, version, &UploadLimits::default()) {
            let bundle = request
                .command
                .as_ref()
                .is_some_and(|c| c.name() == "bundle-uri");
            assert!(!bundle || request.refuse_reason().is_some());
        }
    }
}

/// Advertisement rewrite: the output does not depend on how the input is chunked.
pub fn advertisement(data: &[u8]) {
    let _ = detect_service_header(data);
    let edit = CapabilityEdit {
        remove: vec!["thin-pack".into(), "atomic".into()],
        add: vec![Capability::flag("no-thin").expect("a valid capability")],
    };
    let whole = filter_advertisement(data, &edit);
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (head, tail) = data.split_at(split);
    let mut filter = AdvertisementFilter::new(edit);
    let mut out = Vec::new();
    let chunked = filter
        .feed(head, &mut out)
        .and_then(|()| filter.feed(tail, &mut out))
        .and_then(|()| filter.finish())
        .map(|()| out);
    match (whole, chunked) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("chunking changed the outcome: {a:?} vs {b:?}"),
    }
}

/// Config file: any text parses or is refused with an error that names the file and a line
/// inside the text; it never panics.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = gitgate::config::parse(&text, Path::new("fuzz.toml")) {
        let message = e.to_string();
        assert!(message.starts_with("fuzz.toml:"), "{message}");
        if let Some(line) = e.line() {
            let lines = text.split('\n').count();
            assert!(
                (1..=lines).contains(&line),
                "line {line} of {lines}: {message}"
            );
        }
    }
}

/// receive-pack response (report-status, with and without sideband): parses or errors, and a
/// parsed report encodes.
pub fn report(data: &[u8]) {
    for sideband in [false, true] {
        if let Ok(response) = parse_response(data, sideband) {
            let mut out = Vec::new();
            // Ref names from the upstream may be unencodable (spaces); that must be an error.
            let _ = response.report.encode(&mut out, true);
        }
    }
}

/// The pack meter of fetch answers: any bytes, fed in any split, give the same measurement
/// as feeding them at once, and never panic. The first byte picks the split point.
pub fn pack_sent(data: &[u8]) {
    use gitgate::proto::packsent::PackMeter;
    let Some((&cut, answer)) = data.split_first() else {
        return;
    };
    let mut whole = PackMeter::new();
    whole.feed(answer);
    let expected = whole.finish();
    let cut = (usize::from(cut) * answer.len()) / 255;
    let mut split = PackMeter::new();
    split.feed(&answer[..cut]);
    split.feed(&answer[cut..]);
    assert_eq!(split.finish(), expected);
    if let Some(m) = expected {
        assert!(m.bytes > 0 && m.bytes <= answer.len() as u64);
    }
}

/// The SSH exec command line: a parsed command's path, quoted back the way git quotes it
/// (`sq_quote_buf`, after the leading `/` of an `ssh://` URL), parses to the same command.
pub fn ssh_exec(data: &[u8]) {
    let Ok(command) = gitgate::ssh::command::parse(data) else {
        return;
    };
    assert!(
        !command.path.is_empty() && !command.path.starts_with('-'),
        "{command:?}"
    );
    let mut quoted = String::from("'/");
    for c in command.path.chars() {
        match c {
            '\'' => quoted.push_str("'\\''"),
            '!' => quoted.push_str("'\\!'"),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    let line = format!("{} {quoted}", command.service.name());
    let again = gitgate::ssh::command::parse(line.as_bytes())
        .unwrap_or_else(|e| panic!("{line:?} does not parse: {e}"));
    assert_eq!(again, command, "{line:?}");
}

/// The SSH front's v0 fetch negotiation: the first section (up to a flush) is the client's
/// wants, every later packet an answer line; requests always start with the wants and end
/// with a flush or `done`, commons are replayed once each, and nothing panics.
pub fn ssh_negotiation(data: &[u8]) {
    use gitgate::ssh::negotiate::{Negotiation, RoundEnd};
    let mut packets = pktline::packets(data);
    let mut wants = Vec::new();
    for pkt in packets.by_ref() {
        let Ok(pkt) = pkt else { return };
        let _ = pkt.encode(&mut wants);
        if pkt == pktline::PktLine::Flush {
            break;
        }
    }
    let mut negotiation = Negotiation::new(bytes::Bytes::from(wants.clone()));
    let mut end = RoundEnd::Flush;
    for pkt in packets {
        let Ok(pkt) = pkt else { return };
        match pkt.data() {
            Some(line) => {
                let line = line.strip_suffix(b"\n").unwrap_or(line);
                if negotiation.on_line(line, end).is_err() {
                    return;
                }
            }
            None => {
                end = match end {
                    RoundEnd::Flush => RoundEnd::Done,
                    RoundEnd::Done => RoundEnd::Flush,
                }
            }
        }
        let request = negotiation.request(b"", end);
        assert!(request.starts_with(&wants));
        assert!(request.ends_with(b"0000") || request.ends_with(b"0009done\n"));
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    type Body = fn(&[u8]);

    const TARGETS: [(&str, Body); 9] = [
        ("pktline", super::pktline),
        ("ssh_exec", super::ssh_exec),
        ("ssh_negotiation", super::ssh_negotiation),
        ("receive_commands", super::receive_commands),
        ("upload_request", super::upload_request),
        ("advertisement", super::advertisement),
        ("report", super::report),
        ("config", super::config),
        ("pack_sent", super::pack_sent),
    ];

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    /// xorshift64*: a deterministic source of mutations without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// One random edit: flip, overwrite with a protocol-ish byte, insert, delete or cut.
    fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
        const INTERESTING: &[u8] = b"0123456789abcdefABCDEFgz \0\n\x01\x02\x03\xff";
        let at = rng.below(data.len() + 1);
        match rng.below(5) {
            0 if at < data.len() => data[at] ^= 1 << rng.below(8),
            1 if at < data.len() => data[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => data.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 if at < data.len() => {
                data.remove(at);
            }
            _ => data.truncate(at),
        }
    }

    #[test]
    fn mutated_fixtures_never_break_an_invariant() {
        // A few seconds of stable-toolchain "fuzzing"; raise GITGATE_FUZZ_ROUNDS for more.
        let rounds: usize = std::env::var("GITGATE_FUZZ_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(30);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut inputs = Vec::new();
        files(&root.join("../fixtures/proto"), &mut inputs);
        files(&root.join("corpus"), &mut inputs);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for path in inputs {
            let original = std::fs::read(&path).unwrap_or_default();
            for _ in 0..rounds {
                let mut data = original.clone();
                for _ in 0..=rng.below(4) {
                    mutate(&mut rng, &mut data);
                }
                for (_, body) in TARGETS {
                    body(&data);
                }
            }
        }
    }

    #[test]
    fn every_target_body_runs_over_the_fixtures_and_its_corpus() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut shared = Vec::new();
        files(&root.join("../fixtures/proto"), &mut shared);
        assert!(
            shared.len() > 20,
            "recorded transcripts missing under fixtures/proto"
        );
        for (name, body) in TARGETS {
            let mut inputs = shared.clone();
            files(&root.join("corpus").join(name), &mut inputs);
            for path in inputs {
                let data = std::fs::read(&path).unwrap_or_default();
                body(&data);
                // Every prefix too: truncation is the most common malformation.
                for cut in (0..data.len()).step_by(1 + data.len() / 64) {
                    body(data.get(..cut).unwrap_or_default());
                }
            }
        }
    }
}
