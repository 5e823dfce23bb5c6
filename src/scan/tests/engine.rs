//! The engine's rules: placeholders, pairs, inline markers, skips, overlaps, positions,
//! fingerprints, allowlists, hostile input.

use super::{ids, scan, scanner};
use crate::scan::example::expand;
use crate::scan::{fingerprint, Allow, Options, Scanner, SkipReason};

fn aws_pair(template: &str) -> String {
    expand(template, 42)
}

#[test]
fn placeholders_are_not_secrets() {
    for text in [
        "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "password: ${DB_PASSWORD}",
        "api_key = \"<your-api-key>\"",
        "DB_PASSWORD=changeme",
        "STRIPE_KEY=sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
        "token: \"{{ vault_token }}\"",
        "client_secret = \"YOUR_CLIENT_SECRET_HERE\"",
        "SLACK_TOKEN=xoxb-0000000000-0000000000-aaaaaaaaaaaaaaaaaaaaaaaa",
        "password = \"********\"",
        "DATABASE_URL=postgres://user:password@localhost/db",
    ] {
        assert_eq!(ids(text), Vec::<&str>::new(), "{text}");
    }
}

#[test]
fn aws_pairs_are_found_whatever_the_syntax() {
    let templates = [
        // const, in both orders
        "const KEY_ID = \"AKIA{3:16}\";\nconst SECRET = \"{b:40}\";",
        "const SECRET = \"{b:40}\";\nconst KEY_ID = \"AKIA{3:16}\";",
        // C preprocessor
        "#define ID \"AKIA{3:16}\"\n#define KEY \"{b:40}\"",
        // JSON, YAML, .env, plain assignment, function arguments
        "{\"a\": \"AKIA{3:16}\",\n\"b\": \"{b:40}\"}",
        "creds:\n  id: AKIA{3:16}\n  # rotated yearly\n  key: {b:40}",
        "ID=AKIA{3:16}\nKEY={b:40}",
        "id = 'AKIA{3:16}'\nk = '{b:40}'",
        "Credentials(\"AKIA{3:16}\", \"{b:40}\")",
    ];
    for t in templates {
        let text = aws_pair(t);
        assert!(ids(&text).contains(&"aws-secret-access-key"), "{text}");
    }
}

#[test]
fn a_lone_40_character_string_is_not_an_aws_secret() {
    let text = aws_pair("sha = \"{b:40}\"\nother = 1");
    assert!(!ids(&text).contains(&"aws-secret-access-key"));
    // Too far from the key id (more than 5 lines).
    let text = aws_pair("ID=AKIA{3:16}\n\n\n\n\n\n\nKEY={b:40}");
    assert!(!ids(&text).contains(&"aws-secret-access-key"));
}

#[test]
fn inline_markers_allow_the_line() {
    let secret = expand("ghp_{a:30}{c}", 1);
    assert_eq!(
        ids(&format!("token = \"{secret}\"")),
        ["github-pat-classic"]
    );
    assert!(ids(&format!("token = \"{secret}\" # gitgate:allow")).is_empty());
    assert!(ids(&format!("token = \"{secret}\" // gitleaks:allow")).is_empty());
    // Only that line.
    let two = format!("a = \"{secret}\" # gitgate:allow\nb = \"{secret}\"\n");
    let found = scan(&two);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].line, 2);
}

#[test]
fn binary_and_large_blobs_are_skipped_and_said_so() {
    let secret = expand("GITHUB_TOKEN=ghp_{a:30}{c}\n", 1);
    let mut binary = b"\x7fELF\0\0".to_vec();
    binary.extend_from_slice(secret.as_bytes());
    let outcome = scanner().scan("a.bin", &binary);
    assert_eq!(outcome.skipped, Some(SkipReason::Binary));
    assert!(outcome.findings.is_empty());

    // A NUL past the first 8 KiB does not make a blob binary.
    let mut late = vec![b'a'; 9000];
    late.push(0);
    late.extend_from_slice(secret.as_bytes());
    let outcome = scanner().scan("late.txt", &late);
    assert_eq!(outcome.skipped, None);
    assert_eq!(outcome.findings.len(), 1);

    let small = Scanner::new(Options { max_blob_bytes: 16 });
    let outcome = small.scan("big.env", secret.as_bytes());
    assert_eq!(
        outcome.skipped,
        Some(SkipReason::TooLarge {
            bytes: secret.len() as u64,
            limit: 16
        })
    );
    assert!(outcome.findings.is_empty());
}

#[test]
fn a_provider_detector_wins_over_a_generic_one_for_the_same_value() {
    let text = expand("password = \"ghp_{a:30}{c}\"", 3);
    assert_eq!(ids(&text), ["github-pat-classic"]);
}

#[test]
fn positions_are_one_based_line_and_byte_column_of_the_value() {
    let text = expand("first line\r\nsecond\n  NPM_TOKEN=npm_{a:30}{c}\n", 5);
    let found = scan(&text);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].line, found[0].column), (3, 13));
    assert_eq!(found[0].path, "t.txt");
}

#[test]
fn the_fingerprint_names_the_secret_without_holding_it() {
    let value = expand("ghp_{a:30}{c}", 9);
    let found = scan(&format!("x = '{value}'\ny = \"{value}\""));
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].fingerprint, found[1].fingerprint);
    assert_eq!(
        found[0].fingerprint,
        fingerprint("github-pat-classic", value.as_bytes())
    );
    assert_eq!(found[0].preview, format!("{}…", &value[..4]));
    assert!(!format!("{found:?}").contains(&value[4..]));
}

#[test]
fn short_values_show_less_than_four_characters() {
    let found = scan("DB_PASSWORD=Qx7#mLp2vR\n");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].preview, "Qx…");
}

#[test]
fn allowlists_by_fingerprint_path_and_value() {
    let value = expand("ghp_{a:30}{c}", 11);
    let text = format!("t = {value}\n");
    let fp = fingerprint("github-pat-classic", value.as_bytes());
    let build = |allow: Allow| {
        Scanner::with(Options::default(), crate::scan::detectors::all(), allow).expect("builds")
    };
    let by_fp = build(Allow::default().with_fingerprints([fp]));
    assert!(by_fp.scan("a.txt", text.as_bytes()).findings.is_empty());
    let by_path = build(
        Allow::default()
            .with_paths(&["docs/**"])
            .expect("valid glob"),
    );
    assert!(by_path
        .scan("docs/x/a.md", text.as_bytes())
        .findings
        .is_empty());
    assert_eq!(by_path.scan("src/a.rs", text.as_bytes()).findings.len(), 1);
    let by_value = build(
        Allow::default()
            .with_value_regexes(&[format!("^{}", &value[..10])])
            .expect("valid regex"),
    );
    assert!(by_value.scan("a.txt", text.as_bytes()).findings.is_empty());
}

#[test]
fn hostile_input_does_not_panic_or_crawl() {
    // Keywords everywhere, a line of 1 MiB, windows at both ends of the blob.
    let mut text = "password=".repeat(50_000);
    text.push_str(&"A".repeat(1 << 20));
    text.push_str("-----BEGIN RSA PRIVATE KEY-----");
    for blob in [text.as_bytes(), b"AKIA", b"ghp_", b"\n\n\n", b""] {
        let outcome = scanner().scan("h", blob);
        assert!(outcome.findings.is_empty());
    }
    // Invalid UTF-8 around a secret.
    let mut bytes = vec![0xff, 0xfe, b'\n'];
    bytes.extend_from_slice(expand("k=ghp_{a:30}{c}\n", 2).as_bytes());
    bytes.extend_from_slice(&[0xc3, 0x28]);
    assert_eq!(scanner().scan("u", &bytes).findings.len(), 1);
}

#[test]
fn the_scanner_debug_output_is_short() {
    let debug = format!("{:?}", scanner());
    assert!(debug.starts_with("Scanner") && debug.len() < 200, "{debug}");
}

#[test]
fn examples_expand_deterministically_with_valid_checksums() {
    let a = expand("ghp_{a:30}{c} {h:4}{-}x ${VAR} {b:2}", 7);
    assert_eq!(a, expand("ghp_{a:30}{c} {h:4}{-}x ${VAR} {b:2}", 7));
    assert!(a.contains(" x ${VAR} ") || a.contains("x ${VAR}"));
    let token = a.split(' ').next().unwrap_or_default();
    assert_eq!(token.len(), 40);
    assert!(crate::scan::filter::passes(
        &crate::scan::Filter::Checksum(crate::scan::Checksum::Crc32Base62),
        token.as_bytes()
    ));
}

/// A text of `lines` harmless lines with `insert` put at line `at` (1-based); returns the text
/// and the byte offset of that line.
fn text_with(lines: usize, at: usize, insert: &str) -> (String, usize) {
    let mut text = String::new();
    let mut offset = 0;
    for i in 1..=lines {
        if i == at {
            offset = text.len();
            text.push_str(insert);
        } else {
            text.push_str(&format!("let value_{i} = compute({i}, \"plain text\");\n"));
        }
    }
    (text, offset)
}

#[test]
fn scanning_around_changes_finds_what_a_whole_scan_finds_there() {
    let secret = expand("token = \"ghp_{a:30}{c}\"\n", 11);
    let (text, at) = text_with(3000, 1500, &secret);
    let whole = scanner().scan("a.rs", text.as_bytes());
    assert_eq!(whole.findings.len(), 1);
    // A change on the secret's line, a deletion point inside it, the line before it replaced
    // up to its newline, or a place at its start.
    let before = text[..at - 1].rfind('\n').expect("a line before") + 1;
    for changed in [at + 3..at + 4, at + 10..at + 10, before..at, at..at] {
        let around =
            scanner().scan_regions("a.rs", text.as_bytes(), std::slice::from_ref(&changed));
        assert_eq!(around, whole, "{changed:?}");
    }
    // Changes a few lines away (no one-line detector looks there) or far away: the secret is
    // not looked at (it was in the base, scanned then).
    let few_lines = text[..before - 1].rfind('\n').expect("lines before") - 10;
    let far = [0..10, few_lines..few_lines + 5, text.len() - 5..text.len()];
    let around = scanner().scan_regions("a.rs", text.as_bytes(), &far);
    assert!(around.findings.is_empty());
    assert_eq!(around.skipped, None);
    // Changes every few lines: the lines around them make most of the blob, which is scanned
    // whole.
    let everywhere: Vec<_> = (0..text.len()).step_by(150).map(|i| i..i + 1).collect();
    assert_eq!(
        scanner().scan_regions("a.rs", text.as_bytes(), &everywhere),
        whole
    );
}

#[test]
#[allow(clippy::single_range_in_vec_init)]
fn scanning_around_changes_keeps_pairs_blocks_and_skips() {
    // A pair rule: the key id lines away from the changed secret key.
    let pair =
        aws_pair("aws_access_key_id = AKIA{3:16}\nregion = x\naws_secret_access_key = {b:40}\n");
    let (text, at) = text_with(3000, 1500, &pair);
    let whole = ids(&text);
    assert!(whole.contains(&"aws-secret-access-key"), "{whole:?}");
    let line3 = at + pair.rfind("aws_secret").expect("line");
    let around = scanner().scan_regions("c.py", text.as_bytes(), &[line3 + 30..line3 + 31]);
    let whole = scanner().scan("c.py", text.as_bytes());
    let secret_key = |o: &crate::scan::Outcome| {
        o.findings
            .iter()
            .filter(|f| f.detector == "aws-secret-access-key")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(secret_key(&around).len(), 1);
    assert_eq!(secret_key(&around), secret_key(&whole));
    // The key id's line did not change: it was in the base, scanned then.
    assert!(around
        .findings
        .iter()
        .all(|f| f.detector != "aws-access-key-id"));

    // A PEM block reaches farther than the context: a change deep inside it finds the key.
    let body: String = (0..200)
        .map(|i| format!("{}\n", expand(&format!("{{b:64}}{i}"), i)))
        .collect();
    let pem = format!(
        "-----BEGIN RSA PRIV{}ATE KEY-----\n{body}-----END RSA PRIV{}ATE KEY-----\n",
        "", ""
    );
    let (text, at) = text_with(3000, 1500, &pem);
    let whole = scanner().scan("k.pem", text.as_bytes());
    assert_eq!(whole.findings.len(), 1);
    let deep = at + pem.len() - 200;
    assert_eq!(
        scanner().scan_regions("k.pem", text.as_bytes(), &[deep..deep + 1]),
        whole
    );

    // Binary and oversized blobs are skipped as by a whole scan.
    let mut binary = b"\x7fELF\0\0".to_vec();
    binary.extend(std::iter::repeat_n(b'a', 100_000));
    assert_eq!(
        scanner()
            .scan_regions("b", &binary, &[90_000..90_001])
            .skipped,
        Some(SkipReason::Binary)
    );
    let small = Scanner::new(Options { max_blob_bytes: 16 });
    assert!(matches!(
        small.scan_regions("big", &binary, &[1..2]).skipped,
        Some(SkipReason::TooLarge { .. })
    ));
}

/// Every detector's positive examples, expanded: `(detector, example)`.
fn examples() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (n, d) in crate::scan::detectors::all().iter().enumerate() {
        for (k, template) in d.examples.positive.iter().enumerate() {
            out.push((d.id, expand(template, (n * 16 + k) as u64)));
        }
    }
    out
}

/// Every detector's examples among ordinary lines, scanned around changes made at random near
/// them: nothing is reported that a whole scan does not report, and every finding of the whole
/// scan on a line that a change touches is reported.
#[test]
fn scanning_around_random_changes_agrees_with_whole_scans() {
    use rand::{Rng, SeedableRng};
    let scanner = scanner();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut checked = 0;
    for (id, example) in examples() {
        let (text, at) = text_with(200, 100, &format!("{example}\n"));
        let whole = scanner.scan("x.txt", text.as_bytes());
        let line_span = |line: u32| {
            let start = text
                .match_indices('\n')
                .nth(line as usize - 2)
                .map_or(0, |(i, _)| i + 1);
            start..text[start..].find('\n').map_or(text.len(), |i| start + i)
        };
        let near = at.saturating_sub(400)..(at + example.len() + 400).min(text.len());
        for _ in 0..20 {
            let changes: Vec<std::ops::Range<usize>> = (0..rng.random_range(1..4))
                .map(|_| {
                    let s = rng.random_range(near.clone());
                    s..(s + rng.random_range(0..30)).min(text.len())
                })
                .collect();
            let around = scanner.scan_regions("x.txt", text.as_bytes(), &changes);
            assert_eq!(around.skipped, whole.skipped, "{}", id);
            for f in &around.findings {
                assert!(whole.findings.contains(f), "{}: {f:?} {changes:?}", id);
            }
            for f in &whole.findings {
                let line = line_span(f.line);
                if changes
                    .iter()
                    .any(|c| c.start <= line.end && c.end >= line.start)
                {
                    assert!(around.findings.contains(f), "{}: {f:?} {changes:?}", id);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 500, "findings checked: {checked}");
}

/// The same on one long line (minified code): changes within a few bytes of an example find
/// what a whole scan finds, though the lines around them are cut to a few KiB.
#[test]
fn scanning_around_changes_on_a_long_line_agrees_with_whole_scans() {
    use rand::{Rng, SeedableRng};
    let scanner = scanner();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let mut checked = 0;
    for (id, example) in examples() {
        if example.contains('\n') {
            continue;
        }
        let text = format!(
            "{}{example};{}\n",
            "var a=1;".repeat(3000),
            "b=2;".repeat(6000)
        );
        let at = 8 * 3000;
        let whole = scanner.scan("x.js", text.as_bytes());
        for _ in 0..10 {
            let s = rng.random_range(at..at + example.len());
            let change = s..s + rng.random_range(0..10);
            let changes = std::slice::from_ref(&change);
            let around = scanner.scan_regions("x.js", text.as_bytes(), changes);
            assert_eq!(around, whole, "{}: {changes:?}", id);
            checked += whole.findings.len();
        }
    }
    assert!(checked > 300, "findings checked: {checked}");
}
