//! Example templates: fake, pattern-valid secrets made at run time, so that the repository
//! never holds a complete credential-shaped string (other scanners, push protection and our
//! own gateway would flag it).
//!
//! A template is literal text with placeholders `{K:N}`: N random characters of class K:
//!
//! | K | characters | K | characters |
//! |---|---|---|---|
//! | `a` | `A-Za-z0-9` | `L` | `A-Za-z` |
//! | `h` | `0-9a-f` | `l` | `a-z` |
//! | `H` | `0-9A-F` | `U` | `A-Z0-9` |
//! | `b` | `A-Za-z0-9+/` | `3` | `A-Z2-7` (base32) |
//! | `u` | `A-Za-z0-9_-` | `z` | `a-z2-7` |
//! | `d` | `0-9` | `p` | password-like: letters, digits, `!#%*+-.=?@^_~` |
//!
//! and `{c}`: the 6-character CRC32 base62 checksum of the previous placeholder's characters
//! (GitHub and npm tokens), and `{-}`: nothing (it splits a literal such as a PEM header in
//! the source). Anything else, `${VAR}` included, is literal.

use super::filter::crc32_base62;

fn class(k: u8) -> Option<&'static [u8]> {
    Some(match k {
        b'a' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        b'L' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        b'h' => b"0123456789abcdef",
        b'H' => b"0123456789ABCDEF",
        b'l' => b"abcdefghijklmnopqrstuvwxyz",
        b'U' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        b'b' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        b'u' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
        b'3' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
        b'z' => b"abcdefghijklmnopqrstuvwxyz234567",
        b'd' => b"0123456789",
        b'p' => b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789!#%*+-.=?@^_~",
        _ => return None,
    })
}

/// A small deterministic generator (splitmix64): examples are the same on every run, so
/// snapshots are stable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Parses `{K:N}` or `{c}` at the start of `s`: (class byte or `c`, count, bytes consumed).
fn placeholder(s: &[u8]) -> Option<(u8, usize, usize)> {
    if s.starts_with(b"{c}") {
        return Some((b'c', 6, 3));
    }
    if s.starts_with(b"{-}") {
        return Some((b'-', 0, 3));
    }
    let (&open, rest) = s.split_first()?;
    let (&k, rest) = rest.split_first()?;
    if open != b'{' || rest.first() != Some(&b':') || class(k).is_none() {
        return None;
    }
    let digits = rest.get(1..)?;
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || digits.get(len) != Some(&b'}') {
        return None;
    }
    let n = std::str::from_utf8(digits.get(..len)?).ok()?.parse().ok()?;
    Some((k, n, 3 + len + 1))
}

/// Expands `template` with a generator seeded by `seed`.
pub fn expand(template: &str, seed: u64) -> String {
    let mut rng = Rng(seed ^ 0x6769_7467_6174_6521);
    let bytes = template.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 2);
    let mut last = Vec::new();
    let mut i = 0;
    while let Some(rest) = bytes.get(i..).filter(|r| !r.is_empty()) {
        match placeholder(rest) {
            Some((b'-', _, used)) => i += used,
            Some((b'c', _, used)) => {
                out.extend_from_slice(crc32_base62(&last).as_bytes());
                i += used;
            }
            Some((k, n, used)) => {
                let chars = class(k).unwrap_or(b"x");
                last.clear();
                for _ in 0..n {
                    let pick = (rng.next() % chars.len() as u64) as usize;
                    last.push(chars.get(pick).copied().unwrap_or(b'x'));
                }
                out.extend_from_slice(&last);
                i += used;
            }
            None => {
                out.push(rest[0]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
