//! The pinned host keys of an SSH upstream, in OpenSSH's `known_hosts` format (sshd(8),
//! "SSH_KNOWN_HOSTS FILE FORMAT"): `[marker] hosts keytype base64 [comment]` per line.
//!
//! Hosts are comma-separated patterns: a name, `[name]:port` for ports other than 22, the
//! wildcards `*` and `?`, `!` for negation, or a hashed entry `|1|salt|hmac-sha1` as written
//! by `ssh-keygen -H`. `@revoked` keys are refused for every host. `@cert-authority` lines are
//! skipped: host certificates are checked by their plain key, as OpenSSH falls back to.

use base64::Engine;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{HashAlg, PublicKey};

/// A `known_hosts` file that cannot be used; names the 1-based line.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {detail}")]
pub struct KnownHostsError {
    /// The line at fault.
    pub line: usize,
    /// What is wrong with it.
    pub detail: String,
}

/// The parsed file.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    revoked: bool,
    hosts: Vec<Pattern>,
    key: KeyData,
}

#[derive(Debug, Clone)]
enum Pattern {
    Plain { text: String, negated: bool },
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

/// What the file says about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is pinned for this host.
    Trusted,
    /// No line names this host.
    Unknown,
    /// Lines name this host, with other keys.
    Changed {
        /// Those lines.
        lines: Vec<usize>,
    },
    /// The key is marked `@revoked`.
    Revoked {
        /// The line revoking it.
        line: usize,
    },
}

impl KnownHosts {
    /// Parses the whole file; any malformed line is an error (a pin that silently does not
    /// apply would fail open).
    pub fn parse(text: &str) -> Result<KnownHosts, KnownHostsError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let err = |detail: &str| KnownHostsError {
                line,
                detail: detail.to_string(),
            };
            let mut fields = trimmed.split_whitespace();
            let mut first = fields.next().ok_or_else(|| err("empty"))?;
            let mut revoked = false;
            match first {
                "@cert-authority" => continue,
                "@revoked" => {
                    revoked = true;
                    first = fields.next().ok_or_else(|| err("missing host patterns"))?;
                }
                m if m.starts_with('@') => return Err(err(&format!("unknown marker {m}"))),
                _ => {}
            }
            let algorithm = fields.next().ok_or_else(|| err("missing key type"))?;
            let base64 = fields.next().ok_or_else(|| err("missing key"))?;
            let key = PublicKey::from_openssh(&format!("{algorithm} {base64}"))
                .map_err(|e| err(&format!("bad {algorithm} key: {e}")))?;
            let hosts = first
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| pattern(p).ok_or_else(|| err("bad hashed host entry")))
                .collect::<Result<Vec<_>, _>>()?;
            entries.push(Entry {
                line,
                revoked,
                hosts,
                key: key.key_data().clone(),
            });
        }
        Ok(KnownHosts { entries })
    }

    /// How many keys it pins (revocations not counted).
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| !e.revoked).count()
    }

    /// Whether it pins no key at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Judges `key` presented by `host` on `port`.
    pub fn check(&self, host: &str, port: u16, key: &KeyData) -> Verdict {
        if let Some(e) = self.entries.iter().find(|e| e.revoked && e.key == *key) {
            return Verdict::Revoked { line: e.line };
        }
        let name = host_name(host, port);
        let mut other_keys = Vec::new();
        for entry in self.entries.iter().filter(|e| !e.revoked) {
            if !matches(&entry.hosts, &name) {
                continue;
            }
            if entry.key == *key {
                return Verdict::Trusted;
            }
            other_keys.push(entry.line);
        }
        if other_keys.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Changed { lines: other_keys }
        }
    }
}

/// The name known_hosts lines use: `host`, or `[host]:port` off port 22.
pub fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:...` of a key, as `ssh-keygen -l` shows it.
pub fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn pattern(text: &str) -> Option<Pattern> {
    if let Some(rest) = text.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|')?;
        let b64 = base64::engine::general_purpose::STANDARD;
        return Some(Pattern::Hashed {
            salt: b64.decode(salt).ok()?,
            hash: b64.decode(hash).ok()?,
        });
    }
    let (text, negated) = match text.strip_prefix('!') {
        Some(rest) => (rest, true),
        None => (text, false),
    };
    Some(Pattern::Plain {
        text: text.to_ascii_lowercase(),
        negated,
    })
}

/// OpenSSH's `match_hostfile_pattern`: a negated match excludes the line, otherwise any
/// positive match includes it.
fn matches(patterns: &[Pattern], name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let mut positive = false;
    for p in patterns {
        match p {
            Pattern::Plain { text, negated } => {
                if wildcard(text.as_bytes(), lower.as_bytes()) {
                    if *negated {
                        return false;
                    }
                    positive = true;
                }
            }
            Pattern::Hashed { salt, hash } => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
                // Hashed entries hash the name as written (ssh-keygen does not lowercase it).
                if ring::hmac::verify(&key, name.as_bytes(), hash).is_ok() {
                    positive = true;
                }
            }
        }
    }
    positive
}

/// `*` matches any run of characters, `?` exactly one.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two ed25519 public keys (any valid key data serves).
    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G2sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(text: &str) -> KeyData {
        PublicKey::from_openssh(text)
            .expect("test key")
            .key_data()
            .clone()
    }

    fn parse(text: &str) -> KnownHosts {
        KnownHosts::parse(text).expect("known_hosts")
    }

    #[test]
    fn plain_host_on_port_22_and_bracketed_port() {
        let kh = parse(&format!(
            "git.example.com {KEY_A}\n[127.0.0.1]:2222 {KEY_B} c\n"
        ));
        assert_eq!(
            kh.check("git.example.com", 22, &key(KEY_A)),
            Verdict::Trusted
        );
        assert_eq!(kh.check("127.0.0.1", 2222, &key(KEY_B)), Verdict::Trusted);
        // The bracketed form pins one port only.
        assert_eq!(kh.check("127.0.0.1", 22, &key(KEY_B)), Verdict::Unknown);
        assert_eq!(
            kh.check("git.example.com", 2200, &key(KEY_A)),
            Verdict::Unknown
        );
    }

    #[test]
    fn another_key_for_a_known_host_is_a_change() {
        let kh = parse(&format!("# pinned\n\nhost1,host2 {KEY_A}\n"));
        assert_eq!(
            kh.check("host2", 22, &key(KEY_B)),
            Verdict::Changed { lines: vec![3] }
        );
        assert_eq!(kh.check("host3", 22, &key(KEY_A)), Verdict::Unknown);
    }

    #[test]
    fn hashed_hosts_from_ssh_keygen() {
        // `ssh-keygen -H` output for "[127.0.0.1]:2222" with a fixed salt.
        let salt = [7u8; 20];
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
        let tag = ring::hmac::sign(&k, b"[127.0.0.1]:2222");
        let b64 = base64::engine::general_purpose::STANDARD;
        let line = format!(
            "|1|{}|{} {KEY_A}\n",
            b64.encode(salt),
            b64.encode(tag.as_ref())
        );
        let kh = parse(&line);
        assert_eq!(kh.check("127.0.0.1", 2222, &key(KEY_A)), Verdict::Trusted);
        assert_eq!(kh.check("127.0.0.1", 2223, &key(KEY_A)), Verdict::Unknown);
    }

    #[test]
    fn a_recorded_ssh_keygen_hashed_line_matches() {
        // Recorded from `ssh-keygen -H -f known_hosts` for "[127.0.0.1]:2222".
        let kh = parse(&format!(
            "|1|IYfo3zfh8png1lYrg9v8gKWU+0E=|0q465BL5MmuQTE1POhgUsh7/kkw= {KEY_B}\n"
        ));
        assert_eq!(kh.check("127.0.0.1", 2222, &key(KEY_B)), Verdict::Trusted);
        assert_eq!(kh.check("127.0.0.1", 22, &key(KEY_B)), Verdict::Unknown);
    }

    #[test]
    fn wildcards_and_negation() {
        let kh = parse(&format!("*.example.com,!evil.example.com {KEY_A}\n"));
        assert_eq!(
            kh.check("git.example.com", 22, &key(KEY_A)),
            Verdict::Trusted
        );
        assert_eq!(
            kh.check("evil.example.com", 22, &key(KEY_A)),
            Verdict::Unknown
        );
        assert_eq!(kh.check("example.com", 22, &key(KEY_A)), Verdict::Unknown);
        let kh = parse(&format!("host? {KEY_A}\n"));
        assert_eq!(kh.check("host1", 22, &key(KEY_A)), Verdict::Trusted);
        assert_eq!(kh.check("host12", 22, &key(KEY_A)), Verdict::Unknown);
        assert!(wildcard(b"a*b*c", b"axxbyyc"));
        assert!(!wildcard(b"a*b*c", b"axxbyy"));
    }

    #[test]
    fn revoked_keys_are_refused_and_markers_handled() {
        let kh = parse(&format!(
            "@revoked * {KEY_A}\n@cert-authority *.example.com {KEY_B}\nhost {KEY_A}\n"
        ));
        assert_eq!(
            kh.check("host", 22, &key(KEY_A)),
            Verdict::Revoked { line: 1 }
        );
        // The CA line pins nothing.
        assert_eq!(kh.check("a.example.com", 22, &key(KEY_B)), Verdict::Unknown);
        assert_eq!(kh.len(), 1);
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let e = KnownHosts::parse("host ssh-ed25519\n").expect_err("missing key");
        assert_eq!(e.line, 1);
        let e = KnownHosts::parse(&format!("ok {KEY_A}\nhost ssh-ed25519 !!!\n")).expect_err("bad");
        assert_eq!(e.line, 2);
        let e = KnownHosts::parse(&format!("@bogus host {KEY_A}\n")).expect_err("marker");
        assert!(e.to_string().contains("unknown marker"), "{e}");
        assert!(KnownHosts::parse("# nothing\n").expect("empty").is_empty());
    }

    #[test]
    fn case_insensitive_names() {
        let kh = parse(&format!("Git.Example.COM {KEY_A}\n"));
        assert_eq!(
            kh.check("git.example.com", 22, &key(KEY_A)),
            Verdict::Trusted
        );
    }
}
