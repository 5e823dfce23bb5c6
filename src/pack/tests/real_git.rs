//! Packs written by the real git: every id, kind and byte must agree with git, and git must read
//! the `.idx` we write.

use std::collections::HashMap;
use std::path::Path;

use super::{cat_file, history_repo, pack_objects, rev_list_objects, run_git, spool};
use crate::pack::tests::build::{object_id, RawPack};
use crate::pack::{index, index_with_bases, Kind, ObjectId, Options, PackError};

/// All objects of `repo` as `git cat-file --batch` prints them.
fn git_objects(repo: &Path, ids: &[ObjectId]) -> HashMap<ObjectId, (Kind, Vec<u8>)> {
    let input: String = ids.iter().map(|id| format!("{id}\n")).collect();
    let out = run_git(repo, &["cat-file", "--batch"], input.as_bytes());
    let mut objects = HashMap::new();
    let mut rest = out.as_slice();
    while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
        let header = String::from_utf8_lossy(&rest[..newline]).to_string();
        let mut fields = header.split(' ');
        let id = ObjectId::from_hex(fields.next().expect("id").as_bytes()).expect("hex id");
        let kind = match fields.next().expect("kind") {
            "commit" => Kind::Commit,
            "tree" => Kind::Tree,
            "blob" => Kind::Blob,
            "tag" => Kind::Tag,
            other => panic!("unexpected kind {other}"),
        };
        let size: usize = fields.next().expect("size").parse().expect("number");
        let start = newline + 1;
        objects.insert(id, (kind, rest[start..start + size].to_vec()));
        rest = &rest[start + size + 1..];
    }
    objects
}

/// Indexes `pack_bytes` and checks ids, kinds and content against git, with `find` and `for_each`.
fn assert_matches_git(repo: &Path, pack_bytes: &[u8]) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = spool(tmp.path(), pack_bytes);
    let indexed = index(&path, &Options::default()).expect("git's pack is valid");

    let expected = rev_list_objects(repo, &["--all"]);
    let ids: Vec<ObjectId> = indexed.ids().collect();
    assert_eq!(
        ids, expected,
        "the pack holds exactly the objects git lists"
    );
    let objects = git_objects(repo, &ids);

    let mut visited = 0;
    indexed
        .for_each(|id, kind, data| {
            let (git_kind, git_data) = &objects[&id];
            assert_eq!(
                (kind, data),
                (*git_kind, git_data.as_slice()),
                "for_each: {id}"
            );
            assert_eq!(object_id(kind.into(), data), id);
            visited += 1;
            Ok::<_, PackError>(())
        })
        .expect("every object decodes");
    assert_eq!(visited, ids.len(), "every object is visited once");

    let mut buf = Vec::new();
    for id in &ids {
        let kind = indexed
            .find(id, &mut buf)
            .expect("decodes")
            .expect("present");
        assert_eq!((kind, &buf), (objects[id].0, &objects[id].1), "find: {id}");
    }
    assert_eq!(
        indexed.checksum().map(|c| c.as_slice().to_vec()),
        Some(pack_bytes[pack_bytes.len() - 20..].to_vec())
    );

    // git reads our .idx, and writes the very same one for this pack.
    let idx = indexed.idx_path().expect("idx written");
    let verify = run_git(
        tmp.path(),
        &["verify-pack", "-v", idx.to_str().expect("utf-8")],
        b"",
    );
    assert!(
        String::from_utf8_lossy(&verify).contains("chain length = 1"),
        "the pack has deltas"
    );
    let git_idx = tmp.path().join("git.idx");
    run_git(
        tmp.path(),
        &[
            "index-pack",
            "-o",
            git_idx.to_str().expect("utf-8"),
            path.to_str().expect("utf-8"),
        ],
        b"",
    );
    assert_eq!(
        std::fs::read(idx).expect("our idx"),
        std::fs::read(git_idx).expect("git's idx")
    );
}

#[test]
fn ofs_delta_pack_from_git_matches_git() {
    let (_tmp, repo) = history_repo(30, 2000);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    assert_matches_git(&repo, &pack);
}

#[test]
fn ref_delta_pack_from_git_matches_git() {
    let (_tmp, repo) = history_repo(12, 800);
    let pack = pack_objects(&repo, "", &["--all"]);
    assert_matches_git(&repo, &pack);
}

#[test]
fn quarantine_folder_with_our_idx_serves_every_object_to_git() {
    let (tmp, repo) = history_repo(8, 500);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let path = spool(tmp.path(), &pack);
    let indexed = index(&path, &Options::default()).expect("valid");

    let quarantine = tmp.path().join("quarantine.git");
    run_git(
        tmp.path(),
        &["init", "-q", "--bare", quarantine.to_str().expect("utf-8")],
        b"",
    );
    let pack_dir = quarantine.join("objects/pack");
    std::fs::copy(indexed.pack_path(), pack_dir.join("push-1.pack")).expect("copy pack");
    std::fs::copy(
        indexed.idx_path().expect("idx"),
        pack_dir.join("push-1.idx"),
    )
    .expect("copy idx");
    let ids: String = indexed.ids().map(|id| format!("{id}\n")).collect();
    let checked = run_git(&quarantine, &["cat-file", "--batch-check"], ids.as_bytes());
    let checked = String::from_utf8_lossy(&checked);
    assert_eq!(checked.lines().count(), indexed.len());
    assert!(!checked.contains("missing"), "{checked}");
}

#[test]
fn thin_pack_is_refused_naming_the_missing_base() {
    let (tmp, repo) = history_repo(10, 800);
    let pack = pack_objects(&repo, "main\n^main~3\n", &["--thin", "--delta-base-offset"]);
    let path = spool(tmp.path(), &pack);
    let err = index(&path, &Options::default()).expect_err("thin packs are refused");
    let PackError::MissingBase { id } = err else {
        panic!("expected MissingBase, got {err:?}");
    };
    assert!(
        rev_list_objects(&repo, &["main~3"]).contains(&id),
        "the base is in the excluded history"
    );
    assert!(
        !path.with_extension("idx").exists(),
        "no idx is left behind"
    );
}

#[test]
fn thin_pack_is_completed_from_a_base_lookup() {
    let (tmp, repo) = history_repo(10, 800);
    let pack = pack_objects(&repo, "main\n^main~3\n", &["--thin", "--delta-base-offset"]);
    let path = spool(tmp.path(), &pack);
    let lookup = |id: &ObjectId| Some(cat_file(&repo, id));
    let indexed =
        index_with_bases(&path, &Options::default(), &lookup).expect("bases complete the pack");
    assert!(indexed
        .pack_path()
        .to_string_lossy()
        .ends_with(".fixed.pack"));

    let wanted = rev_list_objects(&repo, &["main", "^main~3"]);
    assert!(wanted.iter().all(|id| indexed.contains(id)));
    assert!(indexed.len() > wanted.len(), "the bases were inserted");
    let mut buf = Vec::new();
    for id in indexed.ids() {
        let kind = indexed
            .find(&id, &mut buf)
            .expect("decodes")
            .expect("present");
        assert_eq!(cat_file(&repo, &id), (kind, buf.clone()));
    }
    let idx = indexed
        .idx_path()
        .expect("idx")
        .to_str()
        .expect("utf-8")
        .to_owned();
    run_git(tmp.path(), &["verify-pack", &idx], b"");
}

#[test]
fn delta_chains_deeper_than_the_limit_are_refused() {
    let (tmp, repo) = history_repo(20, 800);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset", "--depth=50"]);
    let path = spool(tmp.path(), &pack);
    let options = Options {
        max_delta_depth: 3,
        ..Options::default()
    };
    match index(&path, &options) {
        Err(PackError::DeltaChainTooDeep {
            depth: 4, limit: 3, ..
        }) => {}
        other => panic!("expected DeltaChainTooDeep, got {other:?}"),
    }
}

#[test]
fn more_objects_than_the_limit_are_refused() {
    let (tmp, repo) = history_repo(5, 100);
    let pack = pack_objects(&repo, "", &["--all"]);
    let path = spool(tmp.path(), &pack);
    let options = Options {
        max_objects: 10,
        ..Options::default()
    };
    match index(&path, &options) {
        Err(PackError::TooManyObjects { count, limit: 10 }) => assert!(count > 10),
        other => panic!("expected TooManyObjects, got {other:?}"),
    }
}

#[test]
fn a_push_without_pack_has_no_objects() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let missing =
        index(&tmp.path().join("absent.pack"), &Options::default()).expect("no pack is fine");
    assert!(missing.is_empty());
    assert_eq!((missing.idx_path(), missing.checksum()), (None, None));

    let empty = spool(tmp.path(), b"");
    let indexed = index(&empty, &Options::default()).expect("an empty file is fine");
    assert_eq!(indexed.len(), 0);
    assert_eq!(indexed.ids().count(), 0);
}

#[test]
fn a_pack_without_objects_is_valid_and_git_reads_its_idx() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let bytes = RawPack::default().finish();
    let path = spool(tmp.path(), &bytes);
    let indexed = index(&path, &Options::default()).expect("valid");
    assert!(indexed.is_empty());
    assert_eq!(
        indexed.checksum().map(|c| c.as_slice().to_vec()),
        Some(bytes[12..].to_vec())
    );
    let idx = indexed
        .idx_path()
        .expect("idx")
        .to_str()
        .expect("utf-8")
        .to_owned();
    run_git(tmp.path(), &["verify-pack", &idx], b"");
}

#[test]
fn indexed_pack_can_move_to_and_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<crate::pack::IndexedPack>();
    assert_send_sync::<PackError>();
}

#[test]
fn for_each_stops_at_the_first_visitor_error() {
    #[derive(Debug)]
    enum Failure {
        Stop(usize),
        Pack(PackError),
    }
    impl From<PackError> for Failure {
        fn from(err: PackError) -> Self {
            Failure::Pack(err)
        }
    }
    let (tmp, repo) = history_repo(3, 50);
    let pack = pack_objects(&repo, "", &["--all"]);
    let indexed = index(&spool(tmp.path(), &pack), &Options::default()).expect("valid");
    let mut seen = 0;
    let result = indexed.for_each(|_, _, _| {
        seen += 1;
        if seen == 3 {
            return Err(Failure::Stop(seen));
        }
        Ok(())
    });
    match result {
        Err(Failure::Stop(3)) => {}
        Err(Failure::Pack(err)) => panic!("the pack is valid: {err}"),
        other => panic!("expected the visitor's error, got {other:?}"),
    }
    assert_eq!(seen, 3);
}

#[test]
fn self_contained_pack_is_not_rewritten_by_index_with_bases() {
    let (tmp, repo) = history_repo(4, 60);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let path = spool(tmp.path(), &pack);
    let never = |_: &ObjectId| -> Option<(Kind, Vec<u8>)> { panic!("no base is needed") };
    let indexed = index_with_bases(&path, &Options::default(), &never).expect("valid");
    assert_eq!(indexed.pack_path(), path);
    assert!(!path.with_extension("fixed.pack").exists());
}
