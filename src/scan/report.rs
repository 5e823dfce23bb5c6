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
    /// Other places holding the same secret (same detector and value), when the report
    /// lists each secret once ([`dedupe`]).
    pub also: Vec<Place>,
}

/// Where a finding is: commit (if known), path, line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    /// The commit that introduced the blob, if known.
    pub commit: Option<String>,
    /// The file's path.
    pub path: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Record {
    /// A record of `finding`, found in `commit` if known.
    pub fn new(commit: Option<String>, finding: Finding) -> Record {
        Record {
            commit,
            finding,
            also: Vec::new(),
        }
    }

    fn place(&self) -> Place {
        Place {
            commit: self.commit.clone(),
            path: self.finding.path.clone(),
            line: self.finding.line,
            column: self.finding.column,
        }
    }
}

/// Lists each secret once: records with the same fingerprint (detector and value) after the
/// first (in the order given, sorted by the caller) become [`Record::also`] places of the first.
/// A key copied into ten fixtures is one thing to rotate, not ten, and kingfisher reports it
/// the same way by default; `gitgate scan --all-occurrences` skips this.
pub fn dedupe(records: Vec<Record>) -> Vec<Record> {
    let mut first: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out: Vec<Record> = Vec::with_capacity(records.len());
    for record in records {
        match first.get(&record.finding.fingerprint) {
            Some(&i) => {
                let place = record.place();
                if let Some(kept) = out.get_mut(i) {
                    kept.also.push(place);
                }
            }
            None => {
                first.insert(record.finding.fingerprint.clone(), out.len());
                out.push(record);
            }
        }
    }
    out
}

fn place_text(p: &Place) -> String {
    match &p.commit {
        Some(c) => format!("{c}:{}:{}", p.path, p.line),
        None => format!("{}:{}", p.path, p.line),
    }
}

fn place_json(p: &Place) -> serde_json::Value {
    let mut object = json!({ "path": p.path, "line": p.line, "column": p.column });
    if let (Some(commit), Some(map)) = (&p.commit, object.as_object_mut()) {
        map.insert("commit".into(), json!(commit));
    }
    object
}

/// Places listed after a text record; more than this are counted, not listed.
const TEXT_PLACES: usize = 5;

/// `[commit:]path:line:col: detector-id: description (preview)`, one line per record.
pub fn text(out: &mut dyn Write, records: &[Record]) -> std::io::Result<()> {
    for r in records {
        let f = &r.finding;
        let commit = r
            .commit
            .as_deref()
            .map(|c| format!("{c}:"))
            .unwrap_or_default();
        write!(
            out,
            "{commit}{}:{}:{}: {}: {} ({})",
            f.path, f.line, f.column, f.detector, f.description, f.preview
        )?;
        if !r.also.is_empty() {
            let listed: Vec<String> = r.also.iter().take(TEXT_PLACES).map(place_text).collect();
            write!(out, " [also at {}", listed.join(", "))?;
            if r.also.len() > TEXT_PLACES {
                write!(out, " and {} more", r.also.len() - TEXT_PLACES)?;
            }
            write!(out, "]")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// One JSON object per record: `path`, `line`, `column`, `detector`, `description`,
/// `preview`, `fingerprint`, `commit` when known, and `also` (the other places, each with
/// `path`, `line`, `column` and `commit`) when the secret occurs more than once.
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
        if let Some(map) = object.as_object_mut() {
            if let Some(commit) = &r.commit {
                map.insert("commit".into(), json!(commit));
            }
            if !r.also.is_empty() {
                map.insert(
                    "also".into(),
                    r.also.iter().map(place_json).collect::<serde_json::Value>(),
                );
            }
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
            if let Some(map) = result.as_object_mut() {
                if let Some(commit) = &r.commit {
                    map.insert("properties".into(), json!({ "commit": commit }));
                }
                if !r.also.is_empty() {
                    let related: Vec<serde_json::Value> = r
                        .also
                        .iter()
                        .enumerate()
                        .map(|(i, p)| {
                            let mut location = json!({
                                "id": i + 1,
                                "physicalLocation": {
                                    "artifactLocation": { "uri": p.path },
                                    "region": { "startLine": p.line, "startColumn": p.column },
                                },
                                "message": { "text": "the same secret" },
                            });
                            if let (Some(c), Some(m)) = (&p.commit, location.as_object_mut()) {
                                m.insert("properties".into(), json!({ "commit": c }));
                            }
                            location
                        })
                        .collect();
                    map.insert("relatedLocations".into(), json!(related));
                }
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
