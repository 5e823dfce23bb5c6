//! Turns the TOML deserializer's errors into [`ConfigError`]s that name the table and key.
//!
//! The deserializer reports a byte span and a message such as "unknown field `x`, expected
//! ...". To name the table and key we re-parse the (syntactically valid) document into
//! spanned tables and look for the innermost key or value whose span holds the error. Table
//! values are spanned by their header (`[server]`), which is also where "missing field"
//! errors point.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, Location, Problem};

/// 1-based line of byte `offset` in `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        + 1
}

/// The [`ConfigError`] for an error of `toml::from_str` on `text`.
pub(super) fn de_error(text: &str, file: &Path, err: &toml::de::Error) -> ConfigError {
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(syntax) => return syntax_error(text, file, &syntax),
    };
    let message = err.message().trim().to_string();
    let Some(span) = err.span() else {
        // Not seen in practice: every deserializer error carries a span.
        return ConfigError::Invalid {
            file: file.to_path_buf(),
            line: 1,
            at: Location {
                table: String::new(),
                key: None,
            },
            problem: Box::new(Problem::WrongType { message }),
        };
    };
    let mut best = None;
    let mut path = Vec::new();
    walk_table(root.get_ref(), span.start, &mut path, &mut best);
    let (at, problem) = match best {
        Some(hit) => describe(&hit, message),
        None => (
            Location {
                table: String::new(),
                key: None,
            },
            problem_of(message),
        ),
    };
    ConfigError::Invalid {
        file: file.to_path_buf(),
        line: line_of(text, span.start),
        at,
        problem: Box::new(problem),
    }
}

/// The [`ConfigError`] for a TOML syntax error.
pub(super) fn syntax_error(text: &str, file: &Path, err: &toml::de::Error) -> ConfigError {
    ConfigError::Syntax {
        file: file.to_path_buf(),
        line: err.span().map_or(1, |s| line_of(text, s.start)),
        message: syntax_message(text, err),
    }
}

/// The parser's message; "duplicate key" also names the key (its span is the key).
fn syntax_message(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim();
    let key = err.span().and_then(|s| text.get(s));
    match key {
        Some(key) if message == "duplicate key" && !key.contains('\n') => {
            format!("duplicate key \"{}\"", key.trim_matches(['"', '\'']))
        }
        _ => message.to_string(),
    }
}

#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index,
}

#[derive(Debug)]
struct Hit {
    path: Vec<Seg>,
    len: usize,
    on_key: bool,
    is_table: bool,
}

fn contains(span: &Range<usize>, pos: usize) -> bool {
    span.contains(&pos) || (span.is_empty() && span.start == pos)
}

fn consider(
    best: &mut Option<Hit>,
    path: &[Seg],
    span: &Range<usize>,
    on_key: bool,
    is_table: bool,
) {
    let len = span.len();
    let better = match best {
        None => true,
        // Innermost wins; on a tie (an `[[x]]` header spans both the array and its element)
        // the longer path does.
        Some(b) => len < b.len || (len == b.len && path.len() > b.path.len()),
    };
    if better {
        *best = Some(Hit {
            path: path.to_vec(),
            len,
            on_key,
            is_table,
        });
    }
}

fn walk_table(table: &DeTable<'_>, pos: usize, path: &mut Vec<Seg>, best: &mut Option<Hit>) {
    for (key, value) in table {
        path.push(Seg::Key(key.get_ref().to_string()));
        if contains(&key.span(), pos) {
            consider(best, path, &key.span(), true, value.get_ref().is_table());
        }
        walk_value(value.get_ref(), &value.span(), pos, path, best);
        path.pop();
    }
}

fn walk_value(
    value: &DeValue<'_>,
    span: &Range<usize>,
    pos: usize,
    path: &mut Vec<Seg>,
    best: &mut Option<Hit>,
) {
    if contains(span, pos) {
        consider(best, path, span, false, value.is_table());
    }
    match value {
        DeValue::Table(table) => walk_table(table, pos, path, best),
        DeValue::Array(array) => {
            for item in array.iter() {
                path.push(Seg::Index);
                walk_value(item.get_ref(), &item.span(), pos, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `[a.b]` or `[[a]]` (when the last segment is an array element); empty for the top level.
fn table_name(path: &[Seg]) -> String {
    let keys: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index => None,
        })
        .collect();
    if keys.is_empty() {
        String::new()
    } else if matches!(path.last(), Some(Seg::Index)) {
        format!("[[{}]]", keys.join("."))
    } else {
        format!("[{}]", keys.join("."))
    }
}

fn describe(hit: &Hit, message: String) -> (Location, Problem) {
    let problem = problem_of(message);
    if hit.on_key || !hit.is_table {
        // A key, or a scalar/array value: the table is everything before its key.
        let mut path = hit.path.as_slice();
        while let Some((Seg::Index, rest)) = path.split_last() {
            path = rest;
        }
        if let Some((Seg::Key(key), table)) = path.split_last() {
            let table = table_name(table);
            let problem = match problem {
                Problem::UnknownKey { key } if table.is_empty() && hit.is_table => {
                    Problem::UnknownTable { name: key }
                }
                p => p,
            };
            let key = match problem {
                Problem::UnknownKey { .. } | Problem::UnknownTable { .. } => None,
                _ => Some(key.clone()),
            };
            return (Location { table, key }, problem);
        }
    }
    let at = Location {
        table: table_name(&hit.path),
        key: None,
    };
    (at, problem)
}

/// Our wording for serde's "unknown field `x`" and "missing field `x`".
fn problem_of(message: String) -> Problem {
    let quoted = || {
        message
            .split('`')
            .nth(1)
            .map(str::to_string)
            .unwrap_or_default()
    };
    if message.starts_with("unknown field `") {
        Problem::UnknownKey { key: quoted() }
    } else if message.starts_with("missing field `") {
        Problem::MissingKey {
            key: quoted(),
            hint: "",
        }
    } else {
        Problem::WrongType {
            message: plain_types(&message),
        }
    }
}

/// serde names Rust types ("expected struct RawServer", "expected i64"); say TOML's instead.
fn plain_types(message: &str) -> String {
    let message = match message.find("expected struct Raw") {
        Some(at) => format!("{}expected a table", message.get(..at).unwrap_or_default()),
        None => message.to_string(),
    };
    message
        .replace("expected a sequence", "expected an array")
        .replace("expected i64", "expected an integer")
}
