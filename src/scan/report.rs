//! Rendering findings: text lines, JSON Lines, SARIF 2.1.0. Values in, bytes out.

use std::io::Write;

use serde_json::json;

use super::{Detector, Finding};

/// One finding with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    /// The commit that introduced the blob (history scans and pushes), if known.
    pub commit: Option<String>,
    /// The finding (its `path` is the file's path).
    pub finding: Finding,
}

/// `[commit:]path:line:col: detector-id: description (preview)`, one line per record.
pub fn text(out: &mut dyn Write, records: &[Record]) -> std::io::Result<()> {
    for r in records {
        let f = &r.finding;
        let commit = r
            .commit
            .as_deref()
            .map(|c| format!("{c}:"))
            .unwrap_or_default();
        writeln!(
            out,
            "{commit}{}:{}:{}: {}: {} ({})",
            f.path, f.line, f.column, f.detector, f.description, f.preview
        )?;
    }
    Ok(())
}

/// One JSON object per record: `path`, `line`, `column`, `detector`, `description`,
/// `preview`, `fingerprint`, and `commit` when known.
pub fn json_lines(out: &mut dyn Write, records: &[Record]) -> std::io::Result<()> {
    for r in records {
        let f = &r.finding;
        let mut object = json!({
            "path": f.path,
            "line": f.line,
            "column": f.column,
            "detector": f.detector,
            "description": f.description,
            "preview": f.preview,
            "fingerprint": f.fingerprint,
        });
        if let (Some(commit), Some(map)) = (&r.commit, object.as_object_mut()) {
            map.insert("commit".into(), json!(commit));
        }
        writeln!(out, "{object}")?;
    }
    Ok(())
}

/// A SARIF 2.1.0 log with one run whose rules are the detectors that fired.
pub fn sarif(detectors: &[Detector], records: &[Record]) -> serde_json::Value {
    let mut fired: Vec<&str> = records.iter().map(|r| r.finding.detector).collect();
    fired.sort_unstable();
    fired.dedup();
    let rules: Vec<serde_json::Value> = fired
        .iter()
        .map(|id| {
            let description = detectors
                .iter()
                .find(|d| d.id == *id)
                .map_or("", |d| d.description);
            json!({
                "id": id,
                "name": id,
                "shortDescription": { "text": description },
                "defaultConfiguration": { "level": "error" },
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            let f = &r.finding;
            let rule_index = fired.iter().position(|id| *id == f.detector).unwrap_or(0);
            let mut result = json!({
                "ruleId": f.detector,
                "ruleIndex": rule_index,
                "level": "error",
                "message": { "text": format!("{}: {} ({})", f.detector, f.description, f.preview) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": f.path },
                        "region": { "startLine": f.line, "startColumn": f.column },
                    }
                }],
                "partialFingerprints": { "gitgate/v1": f.fingerprint },
            });
            if let (Some(commit), Some(map)) = (&r.commit, result.as_object_mut()) {
                map.insert("properties".into(), json!({ "commit": commit }));
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "gitgate",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }]
    })
}
