//! Capabilities (gitprotocol-capabilities).
//!
//! In v0/v1 they are a space-separated list after the NUL of the first ref line (server) or of
//! the first command / want line (client): `name` or `name=value`. Protocol v2 sends one
//! `key[=value]` per pkt-line, and there a value may contain spaces (`fetch=shallow filter`).
//! Order is preserved: git does not care, but relaying a list unchanged keeps the bytes identical.

use std::fmt;

use crate::proto::oid::HashKind;
use crate::proto::{excerpt, ProtoError};

/// One capability: `name` or `name=value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Capability {
    name: String,
    value: Option<String>,
}

impl Capability {
    /// A capability without value, e.g. `no-thin`. Errors unless the name is 1 or more of
    /// ASCII letters, digits, `-` and `_`.
    pub fn flag(name: &str) -> Result<Self, ProtoError> {
        Self::parse(name.as_bytes())
    }

    /// A capability with a value, e.g. `agent=gitgate/0.1`. The value must be printable
    /// without spaces, so that the capability fits in a v0 list.
    pub fn with_value(name: &str, value: &str) -> Result<Self, ProtoError> {
        Self::parse(format!("{name}={value}").as_bytes())
    }

    /// Parses one v0/v1 list item: the value may not contain spaces or control characters.
    pub fn parse(token: &[u8]) -> Result<Self, ProtoError> {
        Self::parse_with(token, |c| c > b' ' && c != 0x7f)
    }

    /// Parses one v2 capability line (without its LF): the value may contain spaces.
    pub fn parse_v2(line: &[u8]) -> Result<Self, ProtoError> {
        Self::parse_with(line, |c| c >= b' ' && c != 0x7f)
    }

    fn parse_with(token: &[u8], value_byte: impl Fn(u8) -> bool) -> Result<Self, ProtoError> {
        let bad = || ProtoError::BadCapability {
            capability: excerpt(token),
        };
        let (name, value) = match token.iter().position(|c| *c == b'=') {
            Some(eq) => (token.get(..eq).ok_or_else(bad)?, token.get(eq + 1..)),
            None => (token, None),
        };
        let name_ok = !name.is_empty()
            && name
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_');
        if !name_ok || !value.unwrap_or_default().iter().all(|c| value_byte(*c)) {
            return Err(bad());
        }
        let text = |b: &[u8]| std::str::from_utf8(b).map(str::to_owned).map_err(|_| bad());
        Ok(Self {
            name: text(name)?,
            value: value.map(text).transpose()?,
        })
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value after `=`, if any (`Some("")` for `name=`).
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// An ordered capability list. `Display` writes the v0/v1 form (items separated by one space).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    list: Vec<Capability>,
}

impl Capabilities {
    /// Parses a v0/v1 list. Runs of spaces and a trailing LF are tolerated: git's send-pack
    /// writes the list after the NUL with a leading space (`\0 report-status ...`).
    pub fn parse(list: &[u8]) -> Result<Self, ProtoError> {
        let list = list.strip_suffix(b"\n").unwrap_or(list);
        list.split(|c| *c == b' ')
            .filter(|token| !token.is_empty())
            .map(Capability::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(|list| Self { list })
    }

    /// The capabilities in order.
    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.list.iter()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether a capability of this name is present (with or without value).
    pub fn contains(&self, name: &str) -> bool {
        self.list.iter().any(|c| c.name == name)
    }

    /// The value of the first capability of this name.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|c| c.name == name)
            .and_then(Capability::value)
    }

    /// Removes every capability of this name; returns whether any was present.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.list.len();
        self.list.retain(|c| c.name != name);
        self.list.len() != before
    }

    /// Replaces the first capability of the same name in place, or appends it.
    pub fn set(&mut self, capability: Capability) {
        match self.list.iter_mut().find(|c| c.name == capability.name) {
            Some(existing) => *existing = capability,
            None => self.list.push(capability),
        }
    }

    /// Appends a capability, even if one of the same name exists.
    pub fn push(&mut self, capability: Capability) {
        self.list.push(capability);
    }

    /// The hash named by `object-format` (gitprotocol-capabilities "object-format"); SHA-1
    /// when absent.
    pub fn object_format(&self) -> Result<HashKind, ProtoError> {
        match self.value("object-format") {
            None => Ok(HashKind::Sha1),
            Some(name) => {
                HashKind::from_name(name).ok_or_else(|| ProtoError::UnknownObjectFormat {
                    name: excerpt(name.as_bytes()),
                })
            }
        }
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.list.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        Self {
            list: iter.into_iter().collect(),
        }
    }
}

impl<'a> IntoIterator for &'a Capabilities {
    type Item = &'a Capability;
    type IntoIter = std::slice::Iter<'a, Capability>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVE_PACK: &str = "report-status report-status-v2 delete-refs side-band-64k quiet \
        atomic ofs-delta push-options object-format=sha1 agent=git/2.47.3";

    #[test]
    fn parse_and_serialise_preserve_order() -> Result<(), ProtoError> {
        let caps = Capabilities::parse(RECEIVE_PACK.as_bytes())?;
        assert_eq!(caps.len(), 10);
        assert_eq!(caps.to_string(), RECEIVE_PACK);
        assert_eq!(caps.value("agent"), Some("git/2.47.3"));
        assert!(caps.contains("quiet"));
        assert_eq!(caps.object_format()?, HashKind::Sha1);
        Ok(())
    }

    #[test]
    fn leading_space_and_lf_from_send_pack() -> Result<(), ProtoError> {
        let caps = Capabilities::parse(b" report-status-v2 side-band-64k quiet\n")?;
        assert_eq!(caps.to_string(), "report-status-v2 side-band-64k quiet");
        Ok(())
    }

    #[test]
    fn edit_remove_set_push() -> Result<(), ProtoError> {
        let mut caps = Capabilities::parse(b"a b=1 c b=2")?;
        assert!(caps.remove("b"));
        assert!(!caps.remove("b"));
        caps.set(Capability::with_value("a", "x")?);
        caps.set(Capability::flag("no-thin")?);
        assert_eq!(caps.to_string(), "a=x c no-thin");
        Ok(())
    }

    #[test]
    fn symref_and_empty_value() -> Result<(), ProtoError> {
        let caps = Capabilities::parse(b"symref=HEAD:refs/heads/main x=")?;
        assert_eq!(caps.value("symref"), Some("HEAD:refs/heads/main"));
        assert_eq!(caps.value("x"), Some(""));
        assert_eq!(caps.to_string(), "symref=HEAD:refs/heads/main x=");
        Ok(())
    }

    #[test]
    fn v2_values_may_hold_spaces() -> Result<(), ProtoError> {
        let cap = Capability::parse_v2(b"fetch=shallow wait-for-done filter")?;
        assert_eq!(
            (cap.name(), cap.value()),
            ("fetch", Some("shallow wait-for-done filter"))
        );
        assert!(Capability::parse(b"fetch=shallow filter").is_err());
        Ok(())
    }

    #[test]
    fn reproducer_bad_capabilities() {
        for bad in [
            &b"=x"[..],
            b"a\x01",
            b"na\xffme",
            b"a=\x7f",
            b"a=b\tc",
            b"ca.p",
            b"a=\xff",
        ] {
            assert!(
                matches!(
                    Capabilities::parse(bad),
                    Err(ProtoError::BadCapability { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(Capability::with_value("agent", "has space").is_err());
        assert!(Capability::flag("").is_err());
    }

    #[test]
    fn unknown_object_format() -> Result<(), ProtoError> {
        let caps = Capabilities::parse(b"object-format=md5")?;
        assert!(matches!(
            caps.object_format(),
            Err(ProtoError::UnknownObjectFormat { .. })
        ));
        assert_eq!(
            Capabilities::parse(b"object-format=sha256")?.object_format()?,
            HashKind::Sha256
        );
        Ok(())
    }
}
