//! The hash chain: each record's hash covers the previous record's hash, its kind and its
//! canonical body, so changing, inserting, deleting or reordering any record changes every
//! hash after it.
//!
//! `hash = sha256(prev_hash_hex || "\n" || kind || "\n" || canonical_body)`, lower-case hex;
//! the first record's `prev_hash` is [`ZERO_HASH`].

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record: 64 zeros.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of a record whose predecessor's hash is `prev_hash`.
pub fn record_hash(prev_hash: &str, kind: &str, canonical_body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(kind.as_bytes());
    h.update(b"\n");
    h.update(canonical_body.as_bytes());
    hex::encode(h.finalize())
}

/// The canonical JSON text of `value`: object keys sorted by their UTF-8 bytes, no
/// whitespace, strings escaped as `serde_json` does.
///
/// Sorting is done here rather than trusting `serde_json::Map`'s order: the
/// `preserve_order` feature, switched on by any crate in the build, would make that order
/// the insertion order and silently change every hash.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut String) {
    // Serializing a string, number, bool or null cannot fail.
    if let Ok(text) = serde_json::to_string(value) {
        out.push_str(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_at_every_level_and_drops_whitespace() {
        let v = json!({"b": 1, "a": {"z": [1, {"y": null, "x": "é\n"}], "c": true}});
        assert_eq!(
            canonical(&v),
            r#"{"a":{"c":true,"z":[1,{"x":"é\n","y":null}]},"b":1}"#
        );
    }

    #[test]
    fn hash_covers_prev_kind_and_body() {
        let h = record_hash(ZERO_HASH, "operation", "{}");
        assert_eq!(h.len(), 64);
        assert_ne!(h, record_hash(ZERO_HASH, "result", "{}"));
        assert_ne!(h, record_hash(&h, "operation", "{}"));
        assert_ne!(h, record_hash(ZERO_HASH, "operation", "{ }"));
        // The formula, spelled out.
        let mut input = ZERO_HASH.to_string();
        input.push_str("\noperation\n{}");
        assert_eq!(h, hex::encode(Sha256::digest(input.as_bytes())));
    }
}
