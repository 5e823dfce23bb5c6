//! What a detector is. Detectors are data: a table of [`Detector`] values per family in
//! [`super::detectors`], compiled once by [`super::Scanner::new`].

/// One kind of secret.
///
/// A detector runs only where one of its `keywords` occurs: its `pattern` is matched on the
/// [`Window`] around each keyword hit, and each match's value must pass every [`Filter`].
#[derive(Debug, Clone, Copy)]
pub struct Detector {
    /// Stable id, kebab-case (`aws-access-key-id`); part of every finding and fingerprint.
    pub id: &'static str,
    /// What it finds, for people.
    pub description: &'static str,
    /// Literal keywords, at least one of which occurs in or near every match. All-lowercase
    /// keywords match in any case; a keyword with an uppercase letter matches exactly.
    pub keywords: &'static [&'static str],
    /// The regex (Rust `regex` syntax, on bytes, ASCII mode when it compiles so). The group
    /// named `v` is the secret value (or the first of `v1`, `v2`, ... that participated, for
    /// alternatives); without such a group the whole match is.
    pub pattern: &'static str,
    /// Checks every value must pass; the engine runs them cheapest first.
    pub filters: &'static [Filter],
    /// Where the pattern runs around a keyword hit.
    pub window: Window,
    /// Examples the tests run. Templates: see [`super::example`].
    pub examples: Examples,
}

/// Where a detector's pattern runs around a keyword hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The hit's line (at most 256 bytes before the hit and 1 KiB after it).
    Line,
    /// The hit's line and this many lines before and after it (at most 4 KiB either side).
    Lines(u8),
    /// From the start of the hit's line to this many bytes after the hit (multi-line blocks
    /// such as PEM keys).
    After(u32),
}

/// A check on a matched value (or its surroundings). A value is reported only if it passes all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Filter {
    /// The value's embedded checksum is right (tokens that carry one: a typo or a made-up
    /// token fails).
    Checksum(Checksum),
    /// The value is not a placeholder: no `EXAMPLE`, `xxxx`, `${VAR}`, `<your-key>`,
    /// `changeme`, `...`, and not one character repeated.
    NotPlaceholder,
    /// The value is not a word people write in code or docs instead of a secret (`password`,
    /// `secret`, `test`, `dummy`, `foobar`, ...), nor a reference to one (`process.env.X`,
    /// `os.environ[...]`, `$VAR`, `%s`, `{name}`): for names-only detectors (generic
    /// assignments, URLs with credentials).
    NotWord,
    /// The value uses at least this many of: lowercase, uppercase, digits, other characters.
    Classes(u8),
    /// Shannon entropy of the value's bytes (whitespace and `\n` escapes ignored), in bits per
    /// byte, is at least this.
    Entropy(f32),
    /// The value is at least this many bytes long.
    MinLen(u16),
    /// Pair rule: this regex also matches within `lines` lines of the value (the other half of
    /// a key pair, e.g. an AWS key id near a secret key).
    Near {
        /// The other half.
        pattern: &'static str,
        /// How far, in lines, before or after the value's line.
        lines: u8,
    },
    /// The value (a JWT) has a JSON header with an `alg` and a JSON payload.
    Jwt,
    /// The value, base64-decoded, is `user:password` (HTTP Basic credentials).
    BasicAuth,
}

/// Tokens that carry a checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`) and npm (`npm_`) tokens: the last 6
    /// characters are the CRC32 of the characters between the 4-character prefix and them,
    /// in base62 (`0-9A-Za-z`), left-padded with `0`.
    Crc32Base62,
}

/// Examples a detector must and must not report; the tests run all of them.
///
/// They are templates expanded at test time ([`super::example::expand`]), so that no complete
/// credential-shaped string is committed: `{a:36}` stands for 36 random alphanumerics, and so on.
#[derive(Debug, Clone, Copy)]
pub struct Examples {
    /// Each must give a finding of this detector.
    pub positive: &'static [&'static str],
    /// None may give a finding of this detector.
    pub negative: &'static [&'static str],
}
