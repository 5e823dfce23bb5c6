//! Baseline files: the fingerprints of findings already known and accepted, so that only new
//! secrets are reported. One per line: a JSON object with a `fingerprint` field (the JSON Lines
//! that `gitgate scan --format json` writes can be used as they are), or a bare fingerprint
//! (64 hex digits). Blank lines are ignored.

/// A line that is neither form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct BaselineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// The fingerprints listed in a baseline file's `text`.
pub fn parse(text: &str) -> Result<Vec<String>, BaselineError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let err = |reason: String| BaselineError {
            line: n + 1,
            reason,
        };
        if line.starts_with('{') {
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
            if let Some(fp) = value.get("fingerprint").and_then(|f| f.as_str()) {
                out.push(fp.to_owned());
            }
        } else if line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push(line.to_ascii_lowercase());
        } else {
            return Err(err("neither a JSON object nor a fingerprint".into()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_and_bare_fingerprints() {
        let fp = "ab".repeat(32);
        let text = format!(
            "{{\"detector\":\"x\",\"fingerprint\":\"{fp}\"}}\n\n{}\n{{\"no\":\"fingerprint\"}}\n",
            "CD".repeat(32)
        );
        assert_eq!(parse(&text), Ok(vec![fp, "cd".repeat(32)]));
    }

    #[test]
    fn other_lines_are_errors_with_their_number() {
        let e = parse("\nnot a fingerprint\n").map(|_| ()).err();
        assert_eq!(e.map(|e| e.line), Some(2));
        assert!(parse("{broken json\n").is_err());
    }
}
