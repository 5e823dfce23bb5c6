//! The in-process answers (`local.rs` over `objects.rs`) against git's own (`git.rs`), on real
//! repositories built with the git CLI: every case asserts that both agree, and what they
//! agree on.

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use super::local::{Ancestry, Local};
use super::objects::Objects;
use super::*;

/// An upstream bare repository, a working clone to make commits in, and a clock.
struct Scene {
    tmp: tempfile::TempDir,
    up: PathBuf,
    work: PathBuf,
    clock: Cell<i64>,
    /// Seconds between commits (0: all commits share one date).
    tick: i64,
    pushes: Cell<usize>,
}

/// A push: its pack indexed and in a quarantine over the upstream.
struct Pushed {
    pack: Arc<IndexedPack>,
    quarantine: Quarantine,
}

impl Scene {
    fn new() -> Scene {
        Scene::with_tick(60)
    }

    fn with_tick(tick: i64) -> Scene {
        let tmp = tempfile::tempdir().expect("tempdir");
        let up = tmp.path().join("up.git");
        let work = tmp.path().join("work");
        let scene = Scene {
            up,
            work,
            tmp,
            clock: Cell::new(1_700_000_000),
            tick,
            pushes: Cell::new(0),
        };
        scene.git(scene.tmp.path(), &["init", "-q", "--bare", "up.git"]);
        scene.git(scene.tmp.path(), &["init", "-q", "-b", "main", "work"]);
        scene.run(&["remote", "add", "origin", "../up.git"]);
        scene
    }

    fn git(&self, dir: &Path, args: &[&str]) -> String {
        self.git_input(dir, args, None)
    }

    fn git_input(&self, dir: &Path, args: &[&str], input: Option<&[u8]>) -> String {
        let out = self.git_bytes(dir, args, input);
        String::from_utf8(out).expect("utf-8").trim().to_string()
    }

    fn git_bytes(&self, dir: &Path, args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
        let date = format!("{} +0000", self.clock.get());
        let mut child = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_OBJECT_DIRECTORY")
            .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
            .env("GIT_AUTHOR_NAME", "A U Thor")
            .env("GIT_AUTHOR_EMAIL", "author@example.org")
            .env("GIT_COMMITTER_NAME", "C O Mitter")
            .env("GIT_COMMITTER_EMAIL", "committer@example.org")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env("GIT_ALLOW_PROTOCOL", "file")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("git runs");
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(input).expect("write stdin");
        }
        let out = child.wait_with_output().expect("git finishes");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// git in the working clone.
    fn run(&self, args: &[&str]) -> String {
        self.git(&self.work, args)
    }

    /// Writes (`Some`) or deletes (`None`) files, commits everything, returns the commit.
    fn commit(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        for (path, content) in files {
            let at = self.work.join(path);
            match content {
                Some(text) => {
                    if let Some(dir) = at.parent() {
                        std::fs::create_dir_all(dir).expect("mkdir");
                    }
                    std::fs::write(&at, text).expect("write");
                }
                None => {
                    if at.is_dir() {
                        std::fs::remove_dir_all(&at).expect("rm -r");
                    } else {
                        std::fs::remove_file(&at).expect("rm");
                    }
                }
            }
        }
        self.commit_all(message)
    }

    fn commit_all(&self, message: &str) -> String {
        self.run(&["add", "-A"]);
        self.tick();
        self.run(&["commit", "-q", "--allow-empty", "-m", message]);
        self.run(&["rev-parse", "HEAD"])
    }

    fn tick(&self) {
        self.clock.set(self.clock.get() + self.tick);
    }

    /// Sets upstream refs directly (`git push --force` from the clone).
    fn upstream(&self, refspecs: &[&str]) {
        let mut args = vec!["push", "-q", "--force", "origin"];
        args.extend_from_slice(refspecs);
        self.run(&args);
    }

    /// The pack a client would push for `tips`: what they reach and `exclude` does not
    /// (default: every upstream ref), indexed and quarantined over the upstream.
    fn pushed(&self, tips: &[&str], exclude: Option<&[&str]>) -> Pushed {
        self.pushed_over(tips, exclude, &self.up)
    }

    /// Like [`Scene::pushed`], with `history` (e.g. a mirror) as the quarantine's alternate.
    fn pushed_over(&self, tips: &[&str], exclude: Option<&[&str]>, history: &Path) -> Pushed {
        let refs = self.git(&self.up, &["for-each-ref", "--format=%(objectname)"]);
        let excluded: Vec<String> = match exclude {
            Some(list) => list.iter().map(|s| s.to_string()).collect(),
            None => refs.lines().map(str::to_string).collect(),
        };
        let mut input = String::new();
        for tip in tips {
            input.push_str(tip);
            input.push('\n');
        }
        for id in excluded {
            input.push('^');
            input.push_str(&id);
            input.push('\n');
        }
        let pack = self.git_bytes(
            &self.work,
            &["pack-objects", "--revs", "--stdout", "-q"],
            Some(input.as_bytes()),
        );
        let n = self.pushes.get() + 1;
        self.pushes.set(n);
        let path = self.tmp.path().join(format!("push-{n}.pack"));
        std::fs::write(&path, pack).expect("write pack");
        let pack = crate::pack::index(&path, &crate::pack::Options::default()).expect("indexes");
        let quarantine =
            Quarantine::create(&self.tmp.path().join("quarantine"), history).expect("quarantine");
        if let (Some(idx), Some(sum)) = (pack.idx_path(), pack.checksum()) {
            let base = quarantine.pack_dir().join(format!("pack-{sum}"));
            std::fs::hard_link(pack.pack_path(), base.with_extension("pack")).expect("link");
            std::fs::hard_link(idx, base.with_extension("idx")).expect("link");
        }
        Pushed {
            pack: Arc::new(pack),
            quarantine,
        }
    }
}

/// What git says about one update, after checking that the in-process answers are the same.
#[derive(Debug)]
struct Agreed {
    ancestor: Option<Option<bool>>,
    introduced: Result<Vec<String>, String>,
    changes: Vec<Change>,
    facts: Result<UpdateFacts, String>,
}

fn id(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex.as_bytes()).expect("hex id")
}

fn command(old: Option<&str>, new: Option<&str>, refname: &str) -> Command {
    use crate::proto::{HashKind, ObjectId as WireId};
    let wire = |hex: &str| WireId::from_hex(hex.as_bytes()).expect("hex id");
    let null = WireId::null(HashKind::Sha1);
    Command {
        old: old.map_or(null, wire),
        new: new.map_or(null, wire),
        refname: refname.to_string(),
    }
}

const LIMIT: usize = 1000;

impl Pushed {
    fn local(&self, limits: Limits) -> Local {
        let facts = PackFacts::collect(&self.pack).expect("facts");
        Local::new(Objects::new(
            Some(self.pack.clone()),
            Arc::new(facts),
            self.quarantine.history_objects(),
            limits,
        ))
    }

    /// Both ways, asserting they agree; `deep`: the in-process walk must give up (its cap is
    /// lowered in `limits`) and the inspector fall back to git.
    async fn agree(&self, cmd: &Command, limits: Limits, deep: bool) -> Agreed {
        let git = GitDir::new(self.quarantine.git_dir());
        let mut local = self.local(limits);
        let (old, new) = (cmd.old.to_hex(), cmd.new.to_hex());

        let ancestor = if cmd.is_create() || cmd.is_delete() {
            None
        } else {
            let by_git = git.is_ancestor(&old, &new).await.expect("git merge-base");
            let here = local
                .is_ancestor(&id(&old), &id(&new))
                .expect("is_ancestor");
            if deep {
                assert_eq!(here, Ancestry::TooDeep, "the walk was capped");
            } else {
                assert_eq!(here.known(), Some(by_git), "is_ancestor {old} {new}");
            }
            Some(by_git)
        };

        let introduced = if cmd.is_delete() {
            Ok(Vec::new())
        } else {
            let by_git = git
                .introduced(&new, LIMIT)
                .await
                .map_err(|e| error_kind(&e));
            let here = local
                .introduced(&id(&new), LIMIT)
                .map(|ids| ids.iter().map(ToString::to_string).collect::<Vec<_>>())
                .map_err(|e| error_kind(&e));
            assert_eq!(here, by_git, "introduced {new}");
            by_git
        };

        let changes = match &introduced {
            Ok(ids) => {
                let by_git = git.changes(ids).await.expect("git diff-tree");
                let objects: Vec<ObjectId> = ids.iter().map(|h| id(h)).collect();
                let here = local.changes(&objects).expect("changes");
                assert_eq!(here, by_git, "changes of {ids:?}");
                by_git
            }
            Err(_) => Vec::new(),
        };

        let facts = PackFacts::collect(&self.pack).expect("facts");
        let by_git = inspect_update_with_git(&git, cmd, &facts, LIMIT)
            .await
            .map_err(|e| error_kind(&e));
        let mut inspector = Inspector::new(&self.quarantine, limits);
        inspector.load(
            Some(self.pack.clone()),
            PackFacts::collect(&self.pack).expect("facts"),
        );
        let here = inspector
            .inspect(cmd, LIMIT)
            .await
            .map_err(|e| error_kind(&e));
        assert_eq!(here, by_git, "update facts of {}", cmd.refname);
        Agreed {
            ancestor,
            introduced,
            changes,
            facts: by_git,
        }
    }

    async fn check(&self, cmd: &Command) -> Agreed {
        self.agree(cmd, Limits::default(), false).await
    }
}

/// Errors compare by kind: git's and ours word the same failure differently.
fn error_kind(e: &InspectError) -> String {
    match e {
        InspectError::TooManyCommits { limit } => format!("too many commits ({limit})"),
        _ => "failed".to_string(),
    }
}

fn op(agreed: &Agreed) -> Op {
    agreed.facts.as_ref().expect("inspected").op
}

fn paths(agreed: &Agreed) -> Vec<(String, Option<String>, bool)> {
    agreed
        .changes
        .iter()
        .map(|c| (c.path.clone(), c.new_id.clone(), c.is_blob))
        .collect()
}

fn blob(scene: &Scene, rev: &str) -> String {
    scene.run(&["rev-parse", rev])
}

#[tokio::test]
async fn fast_forward() {
    let s = Scene::new();
    let c1 = s.commit(&[("a.txt", Some("one\n")), ("d/b.txt", Some("b\n"))], "c1");
    let c2 = s.commit(&[("a.txt", Some("two\n"))], "c2");
    s.upstream(&["main"]);
    let c3 = s.commit(
        &[("d/b.txt", Some("b2\n")), ("d/e/new.txt", Some("n\n"))],
        "c3",
    );
    let pushed = s.pushed(&[&c3], None);
    let a = pushed
        .check(&command(Some(&c2), Some(&c3), "refs/heads/main"))
        .await;
    assert_eq!(a.ancestor, Some(Some(true)));
    assert_eq!(op(&a), Op::Update);
    assert_eq!(a.introduced, Ok(vec![c3.clone()]));
    assert_eq!(
        paths(&a),
        vec![
            ("d/b.txt".into(), Some(blob(&s, "HEAD:d/b.txt")), true),
            (
                "d/e/new.txt".into(),
                Some(blob(&s, "HEAD:d/e/new.txt")),
                true
            ),
        ]
    );
    let facts = a.facts.expect("facts");
    assert_eq!(facts.blobs.len(), 2, "both blobs are new: {facts:?}");
    // An update to an older upstream commit: a rewind is not a fast-forward.
    let a = pushed
        .check(&command(Some(&c2), Some(&c1), "refs/heads/main"))
        .await;
    assert_eq!(a.ancestor, Some(Some(false)));
    assert_eq!(a.introduced, Ok(vec![]));
    // The same commit again.
    let a = pushed
        .check(&command(Some(&c2), Some(&c2), "refs/heads/main"))
        .await;
    assert_eq!(a.ancestor, Some(Some(true)));
}

#[tokio::test]
async fn force_push_and_unknown_old() {
    let s = Scene::new();
    let _c1 = s.commit(&[("a.txt", Some("one\n"))], "c1");
    let c2 = s.commit(&[("a.txt", Some("two\n"))], "c2");
    let c3 = s.commit(&[("a.txt", Some("three\n"))], "c3");
    s.upstream(&["main"]);
    s.run(&["reset", "-q", "--hard", &c2]);
    let amended = s.commit(&[("a.txt", Some("three, amended\n"))], "c3'");
    let pushed = s.pushed(&[&amended], None);
    let a = pushed
        .check(&command(Some(&c3), Some(&amended), "refs/heads/main"))
        .await;
    assert_eq!(a.ancestor, Some(Some(false)));
    assert_eq!(op(&a), Op::Force);
    assert_eq!(a.introduced, Ok(vec![amended.clone()]));
    assert_eq!(paths(&a).len(), 1);

    // An old id that exists nowhere.
    let unknown = "1234567890123456789012345678901234567890";
    let a = pushed
        .check(&command(Some(unknown), Some(&amended), "refs/heads/main"))
        .await;
    assert_eq!(a.ancestor, Some(None));
    assert_eq!(op(&a), Op::Force);

    // A new id that exists nowhere: both fail.
    let a = pushed
        .check(&command(Some(&c3), Some(unknown), "refs/heads/main"))
        .await;
    assert_eq!(a.ancestor, Some(None));
    assert!(a.introduced.is_err());
    assert!(a.facts.is_err());
}

#[tokio::test]
async fn old_tip_reachable_only_through_another_branch() {
    let s = Scene::new();
    let _c1 = s.commit(&[("a.txt", Some("one\n"))], "c1");
    s.upstream(&["main"]);
    s.run(&["checkout", "-q", "-b", "feature"]);
    let f1 = s.commit(&[("f.txt", Some("f1\n"))], "f1");
    s.upstream(&["feature:refs/heads/topic"]);
    let f2 = s.commit(&[("f.txt", Some("f2\n"))], "f2");
    let f3 = s.commit(&[("f.txt", Some("f3\n"))], "f3");
    s.upstream(&["feature"]);
    let n = s.commit(&[("g/h.txt", Some("new\n"))], "n");
    let pushed = s.pushed(&[&n], None);
    assert_eq!(pushed.pack.len(), 4, "one commit, two trees, one blob");
    let a = pushed
        .check(&command(Some(&f1), Some(&n), "refs/heads/topic"))
        .await;
    assert_eq!(a.ancestor, Some(Some(true)));
    assert_eq!(op(&a), Op::Update);
    assert_eq!(a.introduced, Ok(vec![n.clone()]));
    // Old is an upstream commit deeper down; new is an upstream commit too.
    let a = pushed
        .check(&command(Some(&f1), Some(&f3), "refs/heads/topic"))
        .await;
    assert_eq!(a.ancestor, Some(Some(true)));
    assert_eq!(a.introduced, Ok(vec![]));
    let a = pushed
        .check(&command(Some(&f3), Some(&f2), "refs/heads/topic"))
        .await;
    assert_eq!(a.ancestor, Some(Some(false)));
}

#[tokio::test]
async fn new_branches() {
    let s = Scene::new();
    let c1 = s.commit(&[("a.txt", Some("one\n"))], "c1");
    let _c2 = s.commit(&[("a.txt", Some("two\n"))], "c2");
    s.upstream(&["main"]);
    // A branch at an old upstream commit: nothing introduced.
    let pushed = s.pushed(&[&c1], None);
    let a = pushed
        .check(&command(None, Some(&c1), "refs/heads/old"))
        .await;
    assert_eq!(op(&a), Op::Create);
    assert_eq!(a.introduced, Ok(vec![]));
    // A branch from an old upstream commit with new commits.
    s.run(&["checkout", "-q", "-b", "side", &c1]);
    let s1 = s.commit(&[("side.txt", Some("s\n"))], "s1");
    let s2 = s.commit(&[("a.txt", None)], "s2");
    let pushed = s.pushed(&[&s2], None);
    let a = pushed
        .check(&command(None, Some(&s2), "refs/heads/side"))
        .await;
    assert_eq!(a.introduced, Ok(vec![s2.clone(), s1.clone()]));
    assert_eq!(
        paths(&a),
        vec![
            ("a.txt".into(), None, false),
            ("side.txt".into(), Some(blob(&s, "HEAD:side.txt")), true),
        ]
    );
    // Deleting a branch.
    let a = pushed
        .check(&command(Some(&s2), None, "refs/heads/side"))
        .await;
    assert_eq!(op(&a), Op::Delete);
}

#[tokio::test]
async fn multi_commit_push_and_the_commit_limit() {
    let s = Scene::new();
    let c0 = s.commit(&[("README", Some("r\n"))], "c0");
    s.upstream(&["main"]);
    let mut ids = Vec::new();
    for i in 0..6 {
        let dir = format!("src/m{}/f{i}.rs", i % 2);
        ids.push(s.commit(
            &[(&dir, Some(&format!("fn f{i}() {{}}\n")))],
            &format!("m{i}"),
        ));
    }
    let tip = ids.last().cloned().expect("commits");
    let pushed = s.pushed(&[&tip], None);
    let a = pushed
        .check(&command(Some(&c0), Some(&tip), "refs/heads/main"))
        .await;
    ids.reverse();
    assert_eq!(a.introduced, Ok(ids.clone()));
    assert_eq!(paths(&a).len(), 6);
    let facts = a.facts.expect("facts");
    assert_eq!(facts.paths.len(), 6);
    // Too many: both refuse.
    let git = GitDir::new(pushed.quarantine.git_dir());
    let by_git = git.introduced(&tip, 5).await.map_err(|e| error_kind(&e));
    let here = pushed
        .local(Limits::default())
        .introduced(&id(&tip), 5)
        .map(|ids| ids.iter().map(ToString::to_string).collect::<Vec<_>>())
        .map_err(|e| error_kind(&e));
    assert_eq!(by_git, Err("too many commits (5)".to_string()));
    assert_eq!(here, by_git);
    let ok = pushed.local(Limits::default()).introduced(&id(&tip), 6);
    assert_eq!(ok.map(|v| v.len()).ok(), Some(6));
}

#[tokio::test]
async fn same_dates_keep_reverse_discovery_order() {
    let s = Scene::with_tick(0);
    let c0 = s.commit(&[("README", Some("r\n"))], "c0");
    s.upstream(&["main"]);
    let a1 = s.commit(&[("a", Some("1\n"))], "a1");
    let a2 = s.commit(&[("a", Some("2\n"))], "a2");
    s.run(&["checkout", "-q", "-b", "b", &c0]);
    let b1 = s.commit(&[("b", Some("1\n"))], "b1");
    s.run(&["checkout", "-q", "main"]);
    s.run(&["merge", "-q", "--no-edit", "b"]);
    let m = s.run(&["rev-parse", "HEAD"]);
    let pushed = s.pushed(&[&m], None);
    let a = pushed
        .check(&command(Some(&c0), Some(&m), "refs/heads/main"))
        .await;
    let got = a.introduced.expect("introduced");
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], m);
    for c in [&a1, &a2, &b1] {
        assert!(got.contains(c));
    }
}

#[tokio::test]
async fn root_commits_into_an_empty_upstream() {
    let s = Scene::new();
    let r = s.commit(
        &[
            ("a.txt", Some("a\n")),
            ("dir/sub/b.txt", Some("b\n")),
            ("dir/c.txt", Some("c\n")),
        ],
        "root",
    );
    let t = s.commit(&[("dir/sub/b.txt", None)], "second");
    let pushed = s.pushed(&[&t], None);
    let a = pushed
        .check(&command(None, Some(&t), "refs/heads/main"))
        .await;
    assert_eq!(a.introduced, Ok(vec![t.clone(), r.clone()]));
    let p: Vec<String> = paths(&a).into_iter().map(|(p, _, _)| p).collect();
    assert_eq!(
        p,
        vec!["dir/sub/b.txt", "a.txt", "dir/c.txt", "dir/sub/b.txt"]
    );
}

#[tokio::test]
async fn merges_clean_and_resolved() {
    let s = Scene::new();
    let base = s.commit(
        &[
            ("shared.txt", Some("base\n")),
            ("left.txt", Some("l\n")),
            ("right.txt", Some("r\n")),
            ("gone.txt", Some("g\n")),
            ("one-side-delete.txt", Some("o\n")),
            ("d/x.txt", Some("x\n")),
        ],
        "base",
    );
    s.upstream(&["main"]);
    s.run(&["checkout", "-q", "-b", "topic"]);
    let _t1 = s.commit(
        &[
            ("right.txt", Some("r2\n")),
            ("shared.txt", Some("topic\n")),
            ("gone.txt", None),
            ("both.txt", Some("same\n")),
            ("d/y.txt", Some("y\n")),
        ],
        "t1",
    );
    s.run(&["checkout", "-q", "main"]);
    let _m1 = s.commit(
        &[
            ("left.txt", Some("l2\n")),
            ("shared.txt", Some("main\n")),
            ("gone.txt", None),
            ("both.txt", Some("same\n")),
            ("one-side-delete.txt", None),
            ("d/z.txt", Some("z\n")),
        ],
        "m1",
    );
    // A conflict on shared.txt, resolved with content from neither side; a file only the
    // merge adds; a path deleted on one side stays deleted.
    s.tick();
    let merged = std::process::Command::new("git")
        .args(["merge", "-q", "--no-edit", "topic"])
        .current_dir(&s.work)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.org")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.org")
        .output()
        .expect("git merge");
    assert!(!merged.status.success(), "the merge conflicts");
    std::fs::write(s.work.join("shared.txt"), "resolved\n").expect("resolve");
    std::fs::write(s.work.join("evil.txt"), "only in the merge\n").expect("evil");
    let m = s.commit_all("merge topic");
    let pushed = s.pushed(&[&m], None);
    let a = pushed
        .check(&command(Some(&base), Some(&m), "refs/heads/main"))
        .await;
    assert_eq!(op(&a), Op::Update);
    let ids = a.introduced.clone().expect("introduced");
    assert_eq!(ids.len(), 3);
    let merge_changes = GitDir::new(pushed.quarantine.git_dir())
        .changes(std::slice::from_ref(&m))
        .await
        .expect("diff-tree");
    let p: Vec<&str> = merge_changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(p, vec!["evil.txt", "shared.txt"]);

    // A clean merge: nothing differs from both parents.
    s.run(&["checkout", "-q", "-b", "clean", &base]);
    let c1 = s.commit(&[("left.txt", Some("clean-left\n"))], "cl");
    s.run(&["checkout", "-q", "-b", "clean2", &base]);
    let _c2 = s.commit(&[("d/x.txt", Some("clean-x\n"))], "cr");
    s.tick();
    s.run(&["merge", "-q", "--no-edit", "clean"]);
    let cm = s.run(&["rev-parse", "HEAD"]);
    let pushed = s.pushed(&[&cm], None);
    let a = pushed
        .check(&command(Some(&c1), Some(&cm), "refs/heads/clean"))
        .await;
    assert_eq!(a.ancestor, Some(Some(true)));
    let merge_changes = GitDir::new(pushed.quarantine.git_dir())
        .changes(std::slice::from_ref(&cm))
        .await
        .expect("diff-tree");
    assert_eq!(
        merge_changes,
        vec![],
        "a clean merge changes nothing itself"
    );
    assert_eq!(paths(&a).len(), 2);
}

#[tokio::test]
async fn deletions_and_file_directory_swaps() {
    let s = Scene::new();
    let c1 = s.commit(
        &[
            ("x", Some("a file\n")),
            ("keep/k.txt", Some("k\n")),
            ("tree/a/b/c.txt", Some("deep\n")),
            ("tree/a/other.txt", Some("o\n")),
        ],
        "c1",
    );
    s.upstream(&["main"]);
    let c2 = s.commit(
        &[
            ("x", None),
            ("x/inner.txt", Some("now a directory\n")),
            ("x/y/z.txt", Some("z\n")),
            ("tree/a", None),
        ],
        "file to directory; a directory deleted",
    );
    let c3 = s.commit(
        &[("x", None), ("x", Some("a file again\n"))],
        "directory to file",
    );
    let pushed = s.pushed(&[&c3], None);
    let a = pushed
        .check(&command(Some(&c1), Some(&c3), "refs/heads/main"))
        .await;
    assert_eq!(a.introduced, Ok(vec![c3.clone(), c2.clone()]));
    let p: Vec<(String, bool)> = paths(&a)
        .into_iter()
        .map(|(p, id, _)| (p, id.is_some()))
        .collect();
    assert_eq!(
        p,
        vec![
            ("x".to_string(), true),
            ("x/inner.txt".to_string(), false),
            ("x/y/z.txt".to_string(), false),
            ("tree/a/b/c.txt".to_string(), false),
            ("tree/a/other.txt".to_string(), false),
            ("x".to_string(), false),
            ("x/inner.txt".to_string(), true),
            ("x/y/z.txt".to_string(), true),
        ]
    );
}

#[tokio::test]
async fn symlinks_and_modes() {
    let s = Scene::new();
    let c1 = s.commit(
        &[("target.txt", Some("t\n")), ("f.sh", Some("echo\n"))],
        "c1",
    );
    s.upstream(&["main"]);
    std::os::unix::fs::symlink("target.txt", s.work.join("link")).expect("symlink");
    let c2 = s.commit_all("a symlink");
    std::fs::remove_file(s.work.join("link")).expect("rm");
    std::os::unix::fs::symlink("f.sh", s.work.join("link")).expect("symlink");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(s.work.join("f.sh"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let c3 = s.commit_all("retarget, chmod");
    std::fs::remove_file(s.work.join("target.txt")).expect("rm");
    std::os::unix::fs::symlink("f.sh", s.work.join("target.txt")).expect("symlink");
    let c4 = s.commit_all("a file becomes a symlink");
    let pushed = s.pushed(&[&c4], None);
    let a = pushed
        .check(&command(Some(&c1), Some(&c4), "refs/heads/main"))
        .await;
    assert_eq!(a.introduced, Ok(vec![c4.clone(), c3.clone(), c2.clone()]));
    let p: Vec<(String, bool)> = paths(&a).into_iter().map(|(p, _, b)| (p, b)).collect();
    assert_eq!(
        p,
        vec![
            ("target.txt".into(), true),
            ("f.sh".into(), true),
            ("link".into(), true),
            ("link".into(), true),
        ]
    );
}

#[tokio::test]
async fn submodule_gitlinks() {
    let s = Scene::new();
    let c1 = s.commit(&[("a.txt", Some("a\n"))], "c1");
    s.upstream(&["main"]);
    let sub1 = "1111111111111111111111111111111111111111";
    let sub2 = "2222222222222222222222222222222222222222";
    s.run(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{sub1},lib/sub"),
    ]);
    s.tick();
    s.run(&["commit", "-q", "-m", "add a submodule"]);
    let c2 = s.run(&["rev-parse", "HEAD"]);
    s.run(&[
        "update-index",
        "--cacheinfo",
        &format!("160000,{sub2},lib/sub"),
    ]);
    s.tick();
    s.run(&["commit", "-q", "-m", "move it"]);
    let c3 = s.run(&["rev-parse", "HEAD"]);
    s.run(&["update-index", "--force-remove", "lib/sub"]);
    s.tick();
    s.run(&["commit", "-q", "-m", "drop it"]);
    let c4 = s.run(&["rev-parse", "HEAD"]);
    let pushed = s.pushed(&[&c4], None);
    let a = pushed
        .check(&command(Some(&c1), Some(&c4), "refs/heads/main"))
        .await;
    assert_eq!(a.introduced, Ok(vec![c4, c3, c2]));
    assert_eq!(
        paths(&a),
        vec![
            ("lib/sub".into(), None, false),
            ("lib/sub".into(), Some(sub2.into()), false),
            ("lib/sub".into(), Some(sub1.into()), false),
        ]
    );
    assert_eq!(a.facts.expect("facts").blobs, vec![]);
}

#[tokio::test]
async fn a_pack_with_commits_the_upstream_has() {
    let s = Scene::new();
    let c1 = s.commit(&[("a.txt", Some("a\n"))], "c1");
    s.upstream(&["main"]);
    s.run(&["checkout", "-q", "-b", "feature"]);
    let f1 = s.commit(&[("f.txt", Some("1\n"))], "f1");
    let f2 = s.commit(&[("f.txt", Some("2\n"))], "f2");
    s.upstream(&["feature"]);
    let n = s.commit(&[("f.txt", Some("3\n"))], "n");
    // The client only knew main (a hidden ref, say): its pack carries f1 and f2 again.
    let pushed = s.pushed(&[&n], Some(&[&c1]));
    assert!(pushed.pack.contains(&id(&f1)) && pushed.pack.contains(&id(&f2)));
    let a = pushed
        .check(&command(Some(&c1), Some(&n), "refs/heads/main"))
        .await;
    assert_eq!(a.introduced, Ok(vec![n.clone()]));
    assert_eq!(op(&a), Op::Update);
    let a = pushed
        .check(&command(Some(&f2), Some(&n), "refs/heads/feature"))
        .await;
    assert_eq!(a.ancestor, Some(Some(true)));
}

#[tokio::test]
async fn annotated_tags() {
    let s = Scene::new();
    let c1 = s.commit(&[("a.txt", Some("a\n"))], "c1");
    s.run(&["tag", "-a", "-m", "one", "v1"]);
    s.upstream(&["main", "v1"]);
    let v1 = s.run(&["rev-parse", "v1"]);
    let c2 = s.commit(&[("a.txt", Some("b\n"))], "c2");
    s.run(&["tag", "-a", "-m", "two", "v2"]);
    s.run(&[
        "tag",
        "-a",
        "-m",
        "tree",
        "treetag",
        &format!("{c2}^{{tree}}"),
    ]);
    let v2 = s.run(&["rev-parse", "v2"]);
    let treetag = s.run(&["rev-parse", "treetag"]);
    let pushed = s.pushed(&[&v2, &treetag], None);
    let a = pushed
        .check(&command(None, Some(&v2), "refs/tags/v2"))
        .await;
    assert_eq!(a.introduced, Ok(vec![c2.clone()]));
    let a = pushed
        .check(&command(Some(&v1), Some(&v2), "refs/tags/v1"))
        .await;
    assert_eq!(a.ancestor, Some(Some(true)));
    let a = pushed
        .check(&command(Some(&v2), Some(&v1), "refs/tags/v1"))
        .await;
    assert_eq!(a.ancestor, Some(Some(false)));
    let a = pushed
        .check(&command(Some(&c1), Some(&treetag), "refs/tags/t"))
        .await;
    assert_eq!(a.introduced, Ok(vec![]));
    assert_eq!(a.ancestor, Some(None));
}

#[tokio::test]
async fn long_history_falls_back_to_git() {
    let s = Scene::new();
    let mut history = Vec::new();
    for i in 0..40 {
        history.push(s.commit(&[("n.txt", Some(&format!("{i}\n")))], &format!("h{i}")));
    }
    let old = history[10].clone();
    let tip = history.last().cloned().expect("history");
    s.upstream(&["main", &format!("{old}:refs/heads/old")]);
    let n = s.commit(&[("n.txt", Some("new\n"))], "new");
    let pushed = s.pushed(&[&n], None);
    let small = Limits {
        max_walk: 5,
        ..Limits::default()
    };
    // old is 30 commits below: the capped walk gives up, the inspector asks git.
    let a = pushed
        .agree(
            &command(Some(&old), Some(&n), "refs/heads/old"),
            small,
            true,
        )
        .await;
    assert_eq!(a.ancestor, Some(Some(true)));
    assert_eq!(op(&a), Op::Update);
    // The same without the cap: found in-process.
    let a = pushed
        .check(&command(Some(&old), Some(&n), "refs/heads/old"))
        .await;
    assert_eq!(a.ancestor, Some(Some(true)));
    // Not an ancestor, deep: capped, then git says no.
    s.run(&["checkout", "-q", "-b", "other", &history[1]]);
    let o = s.commit(&[("o.txt", Some("o\n"))], "o");
    let pushed = s.pushed(&[&o], None);
    let a = pushed
        .agree(
            &command(Some(&tip), Some(&o), "refs/heads/main"),
            small,
            true,
        )
        .await;
    assert_eq!(a.ancestor, Some(Some(false)));
    assert_eq!(op(&a), Op::Force);
    let a = pushed
        .check(&command(Some(&tip), Some(&o), "refs/heads/main"))
        .await;
    assert_eq!(a.ancestor, Some(Some(false)));
}

#[tokio::test]
async fn bounded_reads() {
    let s = Scene::new();
    let c1 = s.commit(&[("a/b/c.txt", Some("a\n"))], "c1");
    s.upstream(&["main"]);
    let c2 = s.commit(&[("a/b/c.txt", Some("b\n"))], "c2");
    let pushed = s.pushed(&[&c2], None);
    let tiny = Limits {
        max_reads: 3,
        ..Limits::default()
    };
    let mut local = pushed.local(tiny);
    let ids = local.introduced(&id(&c2), LIMIT).expect("introduced");
    let err = local.changes(&ids).expect_err("more reads than allowed");
    assert!(
        matches!(err, InspectError::TooManyReads { limit: 3 }),
        "{err}"
    );
    let small = Limits {
        max_object_bytes: 10,
        ..Limits::default()
    };
    let err = pushed
        .local(small)
        .changes(&[id(&c2)])
        .expect_err("the parent commit is larger than 10 bytes");
    assert!(matches!(err, InspectError::ObjectTooLarge { .. }), "{err}");
    let _ = c1;
}

#[tokio::test]
async fn over_a_blobless_mirror() {
    let s = Scene::new();
    let c1 = s.commit(
        &[("a/b.txt", Some("b\n")), ("a/deep/c.txt", Some("c\n"))],
        "c1",
    );
    s.upstream(&["main"]);
    let up = format!("file://{}", s.up.display());
    s.git(&s.up, &["config", "uploadpack.allowFilter", "true"]);
    s.git(
        s.tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            "--filter=blob:none",
            &up,
            "mirror.git",
        ],
    );
    let mirror = s.tmp.path().join("mirror.git");
    let old_blob = s.run(&["rev-parse", "HEAD:a/b.txt"]);
    let has_blob = |id: &str| {
        std::process::Command::new("git")
            .args(["cat-file", "-e", id])
            .env("GIT_DIR", &mirror)
            .env("GIT_NO_LAZY_FETCH", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stderr(Stdio::null())
            .status()
            .expect("git cat-file")
            .success()
    };
    assert!(!has_blob(&old_blob), "the mirror is blob-less");
    let c2 = s.commit(
        &[
            ("a/b.txt", Some("b2\n")),
            ("a/deep/c.txt", None),
            ("z.txt", Some("z\n")),
        ],
        "c2",
    );
    let pushed = s.pushed_over(&[&c2], None, &mirror);
    let a = pushed
        .check(&command(Some(&c1), Some(&c2), "refs/heads/main"))
        .await;
    assert_eq!(op(&a), Op::Update);
    assert_eq!(
        paths(&a).into_iter().map(|(p, _, _)| p).collect::<Vec<_>>(),
        vec!["a/b.txt", "a/deep/c.txt", "z.txt"]
    );
    assert!(!has_blob(&old_blob), "nothing was fetched");
}

#[tokio::test]
async fn deep_trees_up_to_the_limit() {
    let s = Scene::new();
    let c1 = s.commit(&[("top.txt", Some("t\n"))], "c1");
    s.upstream(&["main"]);
    let deep = |n: usize| {
        let mut path = vec!["d"; n].join("/");
        path.push_str("/f.txt");
        path
    };
    // 250 directories: walked like git does.
    let ok = deep(250);
    let c2 = s.commit(&[(&ok, Some("deep\n"))], "c2");
    let pushed = s.pushed(&[&c2], None);
    let a = pushed
        .check(&command(Some(&c1), Some(&c2), "refs/heads/main"))
        .await;
    assert_eq!(paths(&a).len(), 1);
    // 300: refused rather than risking the stack.
    let too_deep = deep(300);
    let c3 = s.commit(&[(&too_deep, Some("deeper\n"))], "c3");
    let pushed = s.pushed(&[&c3], None);
    let err = pushed
        .local(Limits::default())
        .changes(&[id(&c3)])
        .expect_err("too deep");
    assert!(matches!(err, InspectError::Malformed { .. }), "{err}");
}

/// Inspection cost on a real history (ignored: needs one). Run with
/// `GITGATE_INSPECT_BENCH_REPO=<bare repository with one pack> cargo test --release --lib --
/// --ignored inspect_history_throughput --nocapture`: the commits `main` introduces into an
/// empty upstream, and what each of them changes.
#[test]
#[ignore = "needs a repository: GITGATE_INSPECT_BENCH_REPO"]
fn inspect_history_throughput() {
    let Some(repo) = std::env::var_os("GITGATE_INSPECT_BENCH_REPO") else {
        panic!("set GITGATE_INSPECT_BENCH_REPO to a bare repository with one pack");
    };
    let repo = std::path::PathBuf::from(repo);
    let pack = std::fs::read_dir(repo.join("objects/pack"))
        .expect("objects/pack")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .expect("a pack");
    let tip = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&repo)
        .args(["rev-parse", "main"])
        .output()
        .expect("git rev-parse");
    let tip = id(String::from_utf8_lossy(&tip.stdout).trim());
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("push.pack");
    std::fs::copy(&pack, &work).expect("copy");
    let started = std::time::Instant::now();
    let indexed = Arc::new(crate::pack::index(&work, &Default::default()).expect("indexes"));
    let facts = PackFacts::collect(&indexed).expect("facts");
    println!("index + facts: {:.2} s", started.elapsed().as_secs_f64());
    let empty = tmp.path().join("objects");
    std::fs::create_dir_all(empty.join("pack")).expect("objects");
    let mut local = Local::new(Objects::new(
        Some(indexed),
        Arc::new(facts),
        &empty,
        Limits::default(),
    ));
    let started = std::time::Instant::now();
    let ids = local.introduced(&tip, 1_000_000).expect("introduced");
    println!(
        "introduced: {} commits in {:.2} s",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    let started = std::time::Instant::now();
    let changes = local.changes(&ids).expect("changes");
    println!(
        "changes: {} in {:.2} s",
        changes.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_same_blob_at_the_same_path_is_listed_once_where_first_seen() {
    let blob = |path: &str, id: &str| super::NewBlob {
        path: path.into(),
        id: id.into(),
        size: 1,
    };
    let mut blobs = vec![
        blob("a", "2"),
        blob("b", "1"),
        blob("a", "1"),
        blob("a", "2"),
        blob("b", "1"),
        blob("c", "3"),
        blob("a", "2"),
    ];
    super::first_of_each(&mut blobs);
    let listed: Vec<(&str, &str)> = blobs
        .iter()
        .map(|b| (b.path.as_str(), b.id.as_str()))
        .collect();
    assert_eq!(listed, [("a", "2"), ("b", "1"), ("a", "1"), ("c", "3")]);
    let mut none = Vec::new();
    super::first_of_each(&mut none);
    assert!(none.is_empty());
}
