//! Questions answered by `git` in a quarantine: ancestry (for walks too long to do in-process),
//! the objects a set of tips needs; and, as the reference the in-process answers are tested
//! against, introduced commits and changed paths. Output is parsed defensively: it comes from our own git
//! over objects the client sent.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::InspectError;

/// How `git diff-tree` saw one path of one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path.
    pub path: String,
    /// The object at the path after the commit, unless it was deleted (hex).
    pub new_id: Option<String>,
    /// Whether the path holds a regular file (or symlink) blob afterwards, not a submodule.
    pub is_blob: bool,
}

/// Runs git read-only in a git dir.
pub(crate) struct GitDir {
    dir: PathBuf,
}

impl GitDir {
    pub(crate) fn new(dir: &Path) -> Self {
        GitDir {
            dir: dir.to_path_buf(),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.env("GIT_DIR", &self.dir)
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_OBJECT_DIRECTORY")
            .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
            .env("GIT_NO_LAZY_FETCH", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn output(&self, args: &[&str], input: Option<Vec<u8>>) -> Result<Output, InspectError> {
        let mut cmd = self.command();
        cmd.args(args);
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(|e| InspectError::Git {
            what: args.first().copied().unwrap_or("git").to_string(),
            detail: e.to_string(),
        })?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            tokio::spawn(async move {
                let _ = stdin.write_all(&input).await;
                let _ = stdin.shutdown().await;
            });
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| InspectError::Git {
                what: args.first().copied().unwrap_or("git").to_string(),
                detail: e.to_string(),
            })?;
        Ok(Output {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    async fn checked(
        &self,
        args: &[&str],
        input: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, InspectError> {
        let out = self.output(args, input).await?;
        if out.code == Some(0) {
            Ok(out.stdout)
        } else {
            Err(InspectError::Git {
                what: args.first().copied().unwrap_or("git").to_string(),
                detail: last_line(&out.stderr),
            })
        }
    }

    /// Whether `old` is an ancestor of `new`; `None` when git cannot tell (an object is
    /// missing: the client's `old` is unknown to the upstream).
    pub(crate) async fn is_ancestor(
        &self,
        old: &str,
        new: &str,
    ) -> Result<Option<bool>, InspectError> {
        let out = self
            .output(&["merge-base", "--is-ancestor", old, new], None)
            .await?;
        Ok(match out.code {
            Some(0) => Some(true),
            Some(1) => Some(false),
            _ => None,
        })
    }

    /// Commits reachable from `new` and from no upstream ref, newest first (at most `limit`).
    /// (The in-process answer in `local.rs` is tested against this.)
    #[cfg(test)]
    pub(crate) async fn introduced(
        &self,
        new: &str,
        limit: usize,
    ) -> Result<Vec<String>, InspectError> {
        let max = format!("--max-count={}", limit.saturating_add(1));
        let out = self
            .checked(&["rev-list", &max, new, "--not", "--alternate-refs"], None)
            .await?;
        let ids = lines(&out);
        if ids.len() > limit {
            return Err(InspectError::TooManyCommits { limit });
        }
        Ok(ids)
    }

    /// The paths each of `commits` adds, changes or deletes (merges: what the merge itself
    /// changes relative to all parents, `-c`), with the new object ids.
    #[cfg(test)]
    pub(crate) async fn changes(&self, commits: &[String]) -> Result<Vec<Change>, InspectError> {
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = commits.join("\n").into_bytes();
        input.push(b'\n');
        let out = self
            .checked(
                &[
                    "diff-tree",
                    "--stdin",
                    "-r",
                    "-z",
                    "-c",
                    "--root",
                    "--no-commit-id",
                    "--no-renames",
                    "--raw",
                ],
                Some(input),
            )
            .await?;
        parse_raw(&out)
    }

    /// Every object that `tips` need and no upstream ref already reaches.
    pub(crate) async fn objects_for(&self, tips: &[String]) -> Result<Vec<String>, InspectError> {
        let mut args = vec!["rev-list", "--objects"];
        args.extend(tips.iter().map(String::as_str));
        args.extend(["--not", "--alternate-refs"]);
        let out = self.checked(&args, None).await?;
        Ok(lines(&out)
            .into_iter()
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect())
    }
}

struct Output {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string()
}

fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses `git diff-tree -z --raw [-c]` output: `:modes shas status\0path\0` records, with
/// one leading `:` per parent.
#[cfg(test)]
fn parse_raw(out: &[u8]) -> Result<Vec<Change>, InspectError> {
    let mut changes = Vec::new();
    let mut fields = out.split(|b| *b == 0);
    while let Some(meta) = fields.next() {
        if meta.is_empty() {
            continue;
        }
        let bad = || InspectError::Git {
            what: "diff-tree".into(),
            detail: "unexpected output".into(),
        };
        let path = fields.next().ok_or_else(bad)?;
        let meta = std::str::from_utf8(meta).map_err(|_| bad())?;
        let parents = meta.chars().take_while(|c| *c == ':').count();
        if parents == 0 {
            return Err(bad());
        }
        let parts: Vec<&str> = meta.get(parents..).unwrap_or("").split(' ').collect();
        // parents + 1 modes, parents + 1 ids, then the status.
        if parts.len() != 2 * (parents + 1) + 1 {
            return Err(bad());
        }
        let new_mode = parts.get(parents).copied().unwrap_or("");
        let new_id = parts.get(2 * parents + 1).copied().unwrap_or("");
        let deleted = new_id.bytes().all(|b| b == b'0');
        changes.push(Change {
            path: String::from_utf8_lossy(path).into_owned(),
            new_id: (!deleted).then(|| new_id.to_string()),
            is_blob: !deleted && (new_mode.starts_with("100") || new_mode == "120000"),
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_combined_records() {
        let zero = "0".repeat(40);
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        let raw = format!(
            ":100644 100644 {a} {b} M\0src/x.rs\0:100644 000000 {a} {zero} D\0old.txt\0::100644 100644 100644 {a} {b} {c} MM\0merged.txt\0:000000 160000 {zero} {c} A\0sub\0"
        );
        let changes = parse_raw(raw.as_bytes()).expect("parses");
        assert_eq!(changes.len(), 4);
        assert_eq!(changes[0].path, "src/x.rs");
        assert_eq!(changes[0].new_id.as_deref(), Some(b.as_str()));
        assert!(changes[0].is_blob);
        assert_eq!(changes[1].new_id, None);
        assert_eq!(changes[2].path, "merged.txt");
        assert_eq!(changes[2].new_id.as_deref(), Some(c.as_str()));
        assert!(!changes[3].is_blob, "a gitlink is not a blob");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_raw(b"nonsense\0path\0").is_err());
        assert!(parse_raw(b":100644 100644 x\0").is_err());
    }
}
