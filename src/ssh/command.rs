//! The `exec` command line, parsed the way git-shell does (`shell.c`): `git-upload-pack
//! '<path>'`, `git-receive-pack '<path>'`, or the same with `git ` and a space instead of
//! `git-`. The argument is one single-quoted word as git's `sq_quote_buf` writes it (a quote
//! inside is `'\''`, a `!` is `'\!'`); it may not start with `-`. Nothing else runs.

use crate::git::Service;

/// A git command the SSH front serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCommand {
    /// Which service.
    pub service: Service,
    /// The repository path as the client wrote it, without one leading `/`
    /// (`ssh://host/local/repo.git` sends `/local/repo.git`, `host:local/repo.git` sends
    /// `local/repo.git`).
    pub path: String,
}

/// Why a command line is refused; the message is shown to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    /// Not one of the two git services.
    #[error("gitgate serves only git-upload-pack and git-receive-pack over SSH, not {shown:?}")]
    NotGit {
        /// The command's first word (cut to 64 characters).
        shown: String,
    },
    /// The argument is missing or not one single-quoted word.
    #[error("bad argument: expected {service} '<upstream>/<repository>'")]
    BadArgument {
        /// The service named.
        service: &'static str,
    },
}

/// Longest command line considered (a path of a few KiB is already absurd).
const MAX_COMMAND: usize = 8192;

/// Parses an `exec` request's command line.
pub fn parse(command: &[u8]) -> Result<GitCommand, CommandError> {
    let text = std::str::from_utf8(command)
        .ok()
        .filter(|t| t.len() <= MAX_COMMAND)
        .ok_or_else(|| CommandError::NotGit {
            shown: shown(&String::from_utf8_lossy(command)),
        })?;
    // git-shell accepts "git foo" as "git-foo" (one whitespace character after "git").
    let normalized;
    let text = match text.strip_prefix("git") {
        Some(rest) if rest.starts_with([' ', '\t']) => {
            normalized = format!("git-{}", &rest[1..]);
            normalized.as_str()
        }
        _ => text,
    };
    for service in [Service::UploadPack, Service::ReceivePack] {
        let name = service.name();
        let Some(rest) = text.strip_prefix(name) else {
            continue;
        };
        let arg = match rest.strip_prefix(' ') {
            Some(arg) => arg,
            None if rest.is_empty() => return Err(CommandError::BadArgument { service: name }),
            // e.g. "git-upload-packx": another command.
            None => continue,
        };
        let path = sq_dequote(arg).ok_or(CommandError::BadArgument { service: name })?;
        let path = path.strip_prefix('/').unwrap_or(&path);
        // Checked after the slash goes (the fuzzer found `'/'` leaving an empty path).
        if path.is_empty() || path.starts_with('-') {
            return Err(CommandError::BadArgument { service: name });
        }
        return Ok(GitCommand {
            service,
            path: path.to_string(),
        });
    }
    Err(CommandError::NotGit {
        shown: shown(text.split_whitespace().next().unwrap_or("")),
    })
}

fn shown(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// git's `sq_dequote`: `'a'\''b'` is `a'b`, `'a'\!'b'` is `a!b`; anything else is refused.
fn sq_dequote(arg: &str) -> Option<String> {
    let mut chars = arg.chars();
    if chars.next()? != '\'' {
        return None;
    }
    let mut out = String::new();
    loop {
        match chars.next()? {
            '\'' => match chars.next() {
                None => return Some(out),
                Some('\\') => {
                    let c = chars.next()?;
                    if c != '\'' && c != '!' {
                        return None;
                    }
                    out.push(c);
                    if chars.next()? != '\'' {
                        return None;
                    }
                }
                Some(_) => return None,
            },
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(cmd: &str) -> (Service, String) {
        let c = parse(cmd.as_bytes()).expect(cmd);
        (c.service, c.path)
    }

    #[test]
    fn the_forms_git_sends() {
        assert_eq!(
            ok("git-upload-pack '/local/repo.git'"),
            (Service::UploadPack, "local/repo.git".into())
        );
        assert_eq!(
            ok("git-receive-pack 'local/repo.git'"),
            (Service::ReceivePack, "local/repo.git".into())
        );
        assert_eq!(
            ok("git upload-pack '/local/repo'"),
            (Service::UploadPack, "local/repo".into())
        );
        assert_eq!(
            ok("git receive-pack 'a b/it'\\''s'"),
            (Service::ReceivePack, "a b/it's".into())
        );
        assert_eq!(
            ok("git-upload-pack 'x/wow'\\!''"),
            (Service::UploadPack, "x/wow!".into())
        );
        // Only one leading slash goes: routing refuses what remains absolute.
        assert_eq!(
            ok("git-upload-pack '//etc/passwd'"),
            (Service::UploadPack, "/etc/passwd".into())
        );
    }

    #[test]
    fn other_commands_are_refused() {
        for cmd in [
            "ls",
            "sh -c 'git-upload-pack x'",
            "git-upload-archive 'local/repo.git'",
            "git-upload-packx 'a/b'",
            "git  upload-pack 'a/b'",
            "scp -t /tmp",
            "",
        ] {
            assert!(
                matches!(parse(cmd.as_bytes()), Err(CommandError::NotGit { .. })),
                "{cmd}"
            );
        }
        assert!(matches!(
            parse(b"\xff\xfe"),
            Err(CommandError::NotGit { .. })
        ));
    }

    #[test]
    fn arguments_must_be_one_quoted_word() {
        for cmd in [
            "git-upload-pack",
            "git-upload-pack local/repo.git",
            "git-upload-pack 'local/repo.git' extra",
            "git-upload-pack 'local/repo.git",
            "git-upload-pack '--help'",
            "git-upload-pack ''",
            "git-upload-pack '/'",
            "git-upload-pack '/--upload-pack=x'",
            "git-upload-pack 'a'\\x'b'",
            "git-receive-pack  'a/b'",
        ] {
            assert!(
                matches!(parse(cmd.as_bytes()), Err(CommandError::BadArgument { .. })),
                "{cmd}"
            );
        }
    }
}
