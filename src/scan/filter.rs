//! The post-filters of [`Filter`]: cheap checks on a matched value, run cheapest first.

use base64::Engine as _;

use super::detector::{Checksum, Filter};

/// Cost rank: the engine sorts each detector's filters by it.
pub(crate) fn cost(filter: &Filter) -> u8 {
    match filter {
        Filter::Checksum(_) | Filter::MinLen(_) => 0,
        Filter::Classes(_) => 1,
        Filter::NotPlaceholder => 2,
        Filter::NotWord => 3,
        Filter::Entropy(_) => 4,
        Filter::Jwt | Filter::BasicAuth => 5,
        Filter::Near { .. } => 6,
    }
}

/// Whether `value` passes `filter`; [`Filter::Near`] is the engine's (it needs the blob).
pub(crate) fn passes(filter: &Filter, value: &[u8]) -> bool {
    match *filter {
        Filter::Checksum(Checksum::Crc32Base62) => crc32_base62_ok(value),
        Filter::MinLen(n) => value.len() >= usize::from(n),
        Filter::Classes(n) => classes(value) >= n,
        Filter::NotPlaceholder => !placeholder(value),
        Filter::NotWord => !word_or_reference(value),
        Filter::Entropy(min) => entropy(value) >= min,
        Filter::Jwt => jwt(value),
        Filter::BasicAuth => basic_auth(value),
        Filter::Near { .. } => true,
    }
}

/// Base62 (`0-9A-Za-z`) of the CRC32 of `data`, left-padded with `0` to 6 characters.
pub fn crc32_base62(data: &[u8]) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = crc32fast::hash(data);
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn crc32_base62_ok(value: &[u8]) -> bool {
    let Some(body_end) = value.len().checked_sub(6) else {
        return false;
    };
    match (value.get(4..body_end), value.get(body_end..)) {
        (Some(body), Some(sum)) if !body.is_empty() => crc32_base62(body).as_bytes() == sum,
        _ => false,
    }
}

/// How many of lowercase, uppercase, digits and other bytes occur.
pub(crate) fn classes(value: &[u8]) -> u8 {
    let (mut lower, mut upper, mut digit, mut other) = (false, false, false, false);
    for &b in value {
        match b {
            b'a'..=b'z' => lower = true,
            b'A'..=b'Z' => upper = true,
            b'0'..=b'9' => digit = true,
            _ => other = true,
        }
    }
    u8::from(lower) + u8::from(upper) + u8::from(digit) + u8::from(other)
}

/// Shannon entropy in bits per byte, ignoring whitespace and backslashes (PEM bodies, `\n`
/// escapes).
pub(crate) fn entropy(value: &[u8]) -> f32 {
    let mut counts = [0u32; 256];
    let mut total = 0u32;
    for &b in value {
        if !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\\') {
            counts[usize::from(b)] += 1;
            total += 1;
        }
    }
    if total == 0 {
        return 0.0;
    }
    let total = total as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / total;
            -p * p.log2()
        })
        .sum()
}

/// Markers of a value that stands in for a secret in docs, templates and tests.
const PLACEHOLDERS: &[&str] = &[
    "example",
    "xxxx",
    "****",
    "....",
    "…",
    "${",
    "{{",
    "<",
    ">",
    "your",
    "changeme",
    "change_me",
    "placeholder",
    "redacted",
    "dummy",
    "fake",
    "sample",
    "insert",
    "replace",
    "todo",
    "0123456789",
    "123456789",
    "abcdefgh",
    "qwerty",
    "0000000000",
    // Azurite's well-known development storage key, published in Microsoft's docs.
    "eby8vdm02xnocqfl",
];

/// Whether `value` is a placeholder: a marker from [`PLACEHOLDERS`] (any case), or one byte
/// repeated 6 times in a row.
pub(crate) fn placeholder(value: &[u8]) -> bool {
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDERS
        .iter()
        .any(|p| memchr::memmem::find(&lower, p.as_bytes()).is_some())
    {
        return true;
    }
    let mut run = 1;
    for pair in value.windows(2) {
        if pair[0] == pair[1] {
            run += 1;
            if run >= 6 {
                return true;
            }
        } else {
            run = 1;
        }
    }
    false
}

/// Words people put where a secret would go, in code, docs and tests.
const WORDS: &[&str] = &[
    "password",
    "passwd",
    "passw0rd",
    "p@ss",
    "pass123",
    "secret",
    "s3cr3t",
    "changeme",
    "test",
    "dummy",
    "fake",
    "sample",
    "example",
    "foo",
    "bar",
    "baz",
    "qux",
    "hunter",
    "admin",
    "root",
    "guest",
    "default",
    "none",
    "null",
    "nil",
    "undefined",
    "true",
    "false",
    "todo",
    "placeholder",
    "redacted",
    "your",
    "mock",
    "demo",
    "letmein",
    "qwerty",
    "123456",
    "token",
    "value",
    "string",
    "empty",
    "invalid",
    "wrong",
    "correct",
    "hello",
    "world",
    "localhost",
    "user",
    "login",
    "pwd",
    "xxx",
    "***",
    "...",
    "abcd",
    "1234",
    "mysql",
    "postgres",
    "welcome",
    "insecure",
    "unused",
    "notsecure",
    "bogus",
    "garbage",
    "random",
    "pass",
    // RFC 7617's example credentials (Aladdin:open sesame).
    "aladdin",
    "sesame",
];

/// Whether `value` is a word from [`WORDS`] or a reference to a value held elsewhere:
/// `$VAR`, `${VAR}`, `%s`, `{name}`, `process.env.X`, `os.environ[...]`, `getenv(...)`, a call,
/// or a dotted/pathed identifier.
pub(crate) fn word_or_reference(value: &[u8]) -> bool {
    let lower = value.to_ascii_lowercase();
    // Three-letter words occur by chance in random values: they count only as a prefix.
    if WORDS.iter().any(|w| {
        if w.len() <= 3 {
            lower.starts_with(w.as_bytes())
        } else {
            memchr::memmem::find(&lower, w.as_bytes()).is_some()
        }
    }) {
        return true;
    }
    const REFERENCE: &[&[u8]] = &[
        b"${",
        b"#{",
        b"{{",
        b"%s",
        b"%(",
        b"env.",
        b"environ",
        b"getenv",
        b"env(",
        b"()",
        b"::",
        b"->",
        b"secrets.",
        b"vault:",
        b"\\(",
    ];
    if REFERENCE
        .iter()
        .any(|r| memchr::memmem::find(&lower, r).is_some())
    {
        return true;
    }
    if matches!(
        value.first(),
        Some(b'$' | b'%' | b'{' | b'<' | b'[' | b'(' | b'&' | b'*' | b':')
    ) {
        return true;
    }
    // A constant's name (`TLS13_AES_128_GCM_SHA256`) is code, not a value.
    let constant = value.contains(&b'_')
        && value
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_');
    if constant {
        return true;
    }
    // An identifier path (`config.db.password`, `Settings.Secret`) is code, not a value.
    let identifier = |s: &[u8]| {
        s.first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            && s.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    let parts: Vec<&[u8]> = value.split(|&b| b == b'.').collect();
    if parts.len() > 1 && parts.iter().all(|p| identifier(p)) {
        return true;
    }
    encoded_json(value)
}

/// Base64url-encoded JSON (`eyJ...`, a JWT header, or an unsigned `header.payload.` token)
/// is a document anyone can read, not a secret: every `.`-separated part decodes to JSON.
fn encoded_json(value: &[u8]) -> bool {
    value.starts_with(b"eyJ")
        && value
            .split(|&b| b == b'.')
            .filter(|p| !p.is_empty())
            .all(|p| {
                b64url(p).is_some_and(|bytes| {
                    serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v.is_object())
                })
            })
}

fn b64url(part: &[u8]) -> Option<Vec<u8>> {
    let trimmed: Vec<u8> = part.iter().copied().filter(|&b| b != b'=').collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
}

fn jwt(value: &[u8]) -> bool {
    let mut parts = value.split(|&b| b == b'.');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
        return false;
    };
    let json = |part: &[u8]| {
        b64url(part).and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
    };
    let header_ok = json(header).is_some_and(|h| {
        h.get("alg")
            .and_then(|a| a.as_str())
            .is_some_and(|alg| !alg.eq_ignore_ascii_case("none"))
    });
    header_ok && json(payload).is_some_and(|p| p.is_object() && !expired(&p))
}

/// A token whose numeric `exp` (seconds since the epoch) lies in the past no longer
/// authenticates anyone: documentation and test vectors are full of them.
fn expired(payload: &serde_json::Value) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    payload
        .get("exp")
        .and_then(serde_json::Value::as_f64)
        .is_some_and(|exp| exp < now as f64)
}

fn basic_auth(value: &[u8]) -> bool {
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    !user.is_empty()
        && password.len() >= 6
        && decoded.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
        && !word_or_reference(password)
}
