//! Ref name validation: the rules of `git check-ref-format` (gitprotocol-common "refname",
//! git-check-ref-format(1)), plus two gateway rules: a pushed ref lives under `refs/`, and it is
//! valid UTF-8 (git allows other bytes, but policy globs and the record work on text).
//!
//! git's receive-pack refuses the same names ("funny refname"); checking them here means the
//! policy never sees a name that git would interpret differently from the text we matched.

use crate::proto::{excerpt, ProtoError};

/// Returns the name as text if a push may update it, else [`ProtoError::BadRefName`].
///
/// Rules (git-check-ref-format(1)): starts with `refs/` and has a component after it; no
/// component is empty (`//`), begins with `.`, or ends with `.lock`; no `..`; no ASCII control
/// character, DEL, space, `~`, `^`, `:`, `?`, `*`, `[` or `\`; no `@{`; does not end with `/`
/// or `.`.
pub fn validate_ref_name(name: &[u8]) -> Result<&str, ProtoError> {
    check(name).map_err(|reason| ProtoError::BadRefName {
        name: excerpt(name),
        reason,
    })?;
    std::str::from_utf8(name).map_err(|_| ProtoError::BadRefName {
        name: excerpt(name),
        reason: "not valid UTF-8",
    })
}

fn check(name: &[u8]) -> Result<(), &'static str> {
    let Some(rest) = name.strip_prefix(b"refs/") else {
        return Err("does not start with refs/");
    };
    if rest.is_empty() {
        return Err("has no name after refs/");
    }
    for &c in name {
        if c < 0x20 || c == 0x7f {
            return Err("contains a control character");
        }
        if matches!(c, b' ' | b'~' | b'^' | b':' | b'?' | b'*' | b'[' | b'\\') {
            return Err("contains one of space ~ ^ : ? * [ \\");
        }
    }
    if name.windows(2).any(|w| w == b"..") {
        return Err("contains ..");
    }
    if name.windows(2).any(|w| w == b"@{") {
        return Err("contains @{");
    }
    if name.ends_with(b".") {
        return Err("ends with .");
    }
    for component in name.split(|c| *c == b'/') {
        if component.is_empty() {
            return Err("has an empty component (// or a trailing /)");
        }
        if component.starts_with(b".") {
            return Err("has a component starting with .");
        }
        if component.ends_with(b".lock") {
            return Err("has a component ending with .lock");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "refs/heads/main",
            "refs/heads/agent/feature-1",
            "refs/tags/v1.0",
            "refs/heads/ünïcode",
            "refs/heads/a.b/c_d",
            "refs/heads/lock",
            "refs/heads/x.lockx",
            "refs/for/main%topic=x",
            "refs/heads/@",
            "refs/heads/a@b",
        ] {
            assert_eq!(
                validate_ref_name(name.as_bytes()).ok(),
                Some(name),
                "{name}"
            );
        }
    }

    #[test]
    fn rejects_what_git_check_ref_format_rejects() {
        // Each case is a named reproducer: a name that must never reach policy matching.
        let cases: &[(&[u8], &str)] = &[
            (b"HEAD", "refs/"),
            (b"heads/main", "refs/"),
            (b"refs/", "no name"),
            (b"refs/heads/../config", ".."),
            (b"refs/heads/a..b", ".."),
            (b"refs/heads/.hidden", "starting with ."),
            (b"refs/heads/main.lock", ".lock"),
            (b"refs/heads/main.lock/x", ".lock"),
            (b"refs/heads/main/", "empty"),
            (b"refs/heads//main", "empty"),
            (b"refs/heads/main.", "ends with ."),
            (b"refs/heads/a@{1}", "@{"),
            (b"refs/heads/a b", "space"),
            (b"refs/heads/a~1", "space"),
            (b"refs/heads/a^", "space"),
            (b"refs/heads/a:b", "space"),
            (b"refs/heads/a?", "space"),
            (b"refs/heads/a*", "space"),
            (b"refs/heads/a[b", "space"),
            (b"refs/heads/a\\b", "space"),
            (b"refs/heads/a\x00b", "control"),
            (b"refs/heads/a\nb", "control"),
            (b"refs/heads/a\x1bb", "control"),
            (b"refs/heads/a\x7fb", "control"),
            (b"refs/heads/\xff\xfe", "UTF-8"),
        ];
        for (name, reason_part) in cases {
            match validate_ref_name(name) {
                Err(ProtoError::BadRefName { reason, .. }) => {
                    assert!(reason.contains(reason_part), "{name:?}: {reason}");
                }
                other => panic!("{name:?} accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn agrees_with_git_check_ref_format() {
        // Cross-check against the real git where it is installed (it is on the dev machines
        // and in CI); names outside refs/ are our own rule, so all cases start with refs/.
        let names = [
            "refs/heads/main",
            "refs/heads/a..b",
            "refs/heads/.x",
            "refs/heads/x.lock",
            "refs/heads/x/",
            "refs/heads/a@{b",
            "refs/heads/a b",
            "refs/heads/a.",
            "refs/heads/ok.name",
            "refs/heads/a//b",
        ];
        for name in names {
            let Ok(status) = std::process::Command::new("git")
                .args(["check-ref-format", name])
                .stderr(std::process::Stdio::null())
                .status()
            else {
                return;
            };
            assert_eq!(
                validate_ref_name(name.as_bytes()).is_ok(),
                status.success(),
                "{name}"
            );
        }
    }
}
