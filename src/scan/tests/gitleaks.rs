//! gitleaks configuration import.

use crate::scan::gitleaks::{parse, GitleaksError};
use crate::scan::{detectors, Options, Scanner};

const CONFIG: &str = r#"
title = "custom"

[extend]
useDefault = true

[[rules]]
id = "acme-internal-token"
description = "ACME internal token"
regex = '''acme_(?:live|test)_([a-z0-9]{24})'''
secretGroup = 1
entropy = 3.0
keywords = ["acme_live", "ACME_TEST"]

[[rules]]
id = "acme-key-file"
description = "ACME key files"
path = '''\.acmekey$'''

[allowlist]
description = "global"
regexes = ['''^0{24}$''']
stopwords = ["notreal"]
paths = ['''^vendor/''']
commits = ["0123456789abcdef0123456789abcdef01234567"]
"#;

fn scanner() -> Scanner {
    let imported = parse(CONFIG).expect("parses");
    let all = detectors::with_custom(imported.detectors);
    Scanner::with(Options::default(), all, imported.allow).expect("builds")
}

#[test]
fn rules_become_detectors_with_their_secret_group_keywords_and_entropy() {
    let imported = parse(CONFIG).expect("parses");
    assert_eq!(imported.detectors.len(), 1);
    let rule = &imported.detectors[0];
    assert_eq!(rule.id, "acme-internal-token");
    assert_eq!(rule.keywords, ["acme_live", "acme_test"]);
    assert!(rule.pattern.contains("(?P<v>[a-z0-9]{24})"));
    assert_eq!(imported.commits.len(), 1);
    assert_eq!(imported.notes.len(), 1, "{:?}", imported.notes);

    let s = scanner();
    let found = s.scan(
        "src/a.py",
        b"TOKEN = 'acme_live_k3j4h5g6f7d8s9a0q1w2e3r4'\n",
    );
    assert_eq!(found.findings.len(), 1);
    assert_eq!(found.findings[0].detector, "acme-internal-token");
    assert_eq!(found.findings[0].column, 20);
}

#[test]
fn allowlists_carry_over() {
    let s = scanner();
    for (path, text) in [
        ("src/a.py", "T = 'acme_live_000000000000000000000000'"),
        ("src/a.py", "T = 'acme_live_notrealnotrealnotrealnotr'"),
        ("vendor/a.py", "T = 'acme_live_k3j4h5g6f7d8s9a0q1w2e3r4'"),
    ] {
        assert!(
            s.scan(path, text.as_bytes()).findings.is_empty(),
            "{path}: {text}"
        );
    }
    // Low entropy fails the rule's own filter.
    assert!(s
        .scan("a", b"acme_live_abababababababababababab")
        .findings
        .is_empty());
}

#[test]
fn broken_configurations_are_errors_not_panics() {
    assert!(matches!(
        parse("[[rules]]\nid = 1"),
        Err(GitleaksError::Toml(_))
    ));
    let bad = "[[rules]]\nid = \"x\"\nregex = '''(unclosed'''\n";
    assert!(matches!(parse(bad), Err(GitleaksError::Regex { .. })));
    let group = "[[rules]]\nid = \"x\"\nregex = '''a(b)'''\nsecretGroup = 3\n";
    assert!(matches!(parse(group), Err(GitleaksError::Regex { .. })));
}
