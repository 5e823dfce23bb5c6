//! Rebuilt packs must be accepted by `git index-pack --strict` and hold identical objects.

use super::{history_repo, pack_objects, rev_list_objects, run_git, spool};
use crate::pack::{index, write_subset, ObjectId, Options, PackError};

#[test]
fn subset_is_accepted_by_git_and_holds_identical_objects() {
    let (tmp, repo) = history_repo(20, 1500);
    let pack = pack_objects(&repo, "", &["--all", "--delta-base-offset"]);
    let indexed = index(&spool(tmp.path(), &pack), &Options::default()).expect("valid");

    // What an allowed ref needs: everything reachable from an older commit, a closed set.
    let wanted = rev_list_objects(&repo, &["main~8"]);
    assert!(wanted.len() < indexed.len());
    let mut out = Vec::new();
    let requested = wanted.iter().copied().chain(wanted.iter().take(3).copied());
    let outcome = write_subset(&indexed, requested, &mut out).expect("written");
    assert_eq!(
        outcome.objects as usize,
        wanted.len(),
        "duplicates are written once"
    );
    assert_eq!(outcome.bytes, out.len() as u64);
    assert_eq!(outcome.checksum.as_slice(), &out[out.len() - 20..]);

    let target = tmp.path().join("target.git");
    run_git(
        tmp.path(),
        &["init", "-q", "--bare", target.to_str().expect("utf-8")],
        b"",
    );
    let answer = run_git(&target, &["index-pack", "--stdin", "--strict"], &out);
    assert_eq!(
        String::from_utf8_lossy(&answer).trim(),
        format!("pack\t{}", outcome.checksum)
    );

    let input: String = wanted.iter().map(|id| format!("{id}\n")).collect();
    let theirs = run_git(&target, &["cat-file", "--batch"], input.as_bytes());
    let mut ours = Vec::new();
    let mut buf = Vec::new();
    for id in &wanted {
        let kind = indexed
            .find(id, &mut buf)
            .expect("decodes")
            .expect("present");
        ours.extend_from_slice(format!("{id} {kind} {}\n", buf.len()).as_bytes());
        ours.extend_from_slice(&buf);
        ours.push(b'\n');
    }
    assert!(theirs == ours, "git reads back exactly our objects");
    let counted = run_git(&target, &["count-objects", "-v"], b"");
    assert!(String::from_utf8_lossy(&counted).contains(&format!("in-pack: {}", wanted.len())));
}

#[test]
fn subset_with_an_unknown_object_is_refused_before_writing() {
    let (tmp, repo) = history_repo(3, 50);
    let pack = pack_objects(&repo, "", &["--all"]);
    let indexed = index(&spool(tmp.path(), &pack), &Options::default()).expect("valid");
    let unknown = ObjectId::from_hex(b"0123456789012345678901234567890123456789").expect("hex");
    let mut out = Vec::new();
    match write_subset(&indexed, indexed.ids().chain([unknown]), &mut out) {
        Err(PackError::ObjectNotFound { id }) => assert_eq!(id, unknown),
        other => panic!("expected ObjectNotFound, got {other:?}"),
    }
    assert!(out.is_empty());
}

#[test]
fn empty_subset_is_a_valid_empty_pack() {
    let (tmp, repo) = history_repo(2, 20);
    let pack = pack_objects(&repo, "", &["--all"]);
    let indexed = index(&spool(tmp.path(), &pack), &Options::default()).expect("valid");
    let mut out = Vec::new();
    let outcome = write_subset(&indexed, std::iter::empty(), &mut out).expect("written");
    assert_eq!((outcome.objects, out.len()), (0, 32));
    let reread = index(&spool(&tmp.path().join("repo"), &out), &Options::default()).expect("valid");
    assert!(reread.is_empty());
}
