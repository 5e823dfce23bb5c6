//! Hand-made receive-pack requests carrying broken or hostile packs, sent with the raw HTTP
//! client: truncated, corrupt, lying about sizes and counts, thin, or not holding what the
//! commands name. Each gets a clean answer (a report whose `unpack` failed, or a 4xx), the
//! upstream's refs do not move, and the gateway keeps serving. Also: `[limits]`.

use std::io::Write as _;
use std::process::Stdio;

use crate::harness::http::{self, Response};
use crate::harness::{git, Kind, Stack};

both_upstreams!(
    truncated_and_corrupt_packs_are_refused,
    hostile_sizes_and_counts_are_refused,
    thin_packs_and_missing_objects_are_refused,
    oversized_push_is_refused,
    too_many_ref_updates_are_refused,
    missing_pack_is_an_unpack_error,
);

const ZERO: &str = "0000000000000000000000000000000000000000";

// --- building packs -----------------------------------------------------------------------------

/// Pack entry types.
const BLOB: u8 = 3;
const OFS_DELTA: u8 = 6;
const REF_DELTA: u8 = 7;

/// SHA-1 of `data`.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut hasher = gix_hash::hasher(gix_hash::Kind::Sha1);
    hasher.update(data);
    let id = hasher.try_finalize().expect("no SHA-1 collision");
    id.as_slice().try_into().expect("20 bytes")
}

/// The id of a loose object of `kind` (`blob`, `commit`...) holding `data`.
fn object_id(kind: &str, data: &[u8]) -> [u8; 20] {
    let mut object = format!("{kind} {}\0", data.len()).into_bytes();
    object.extend_from_slice(data);
    sha1(&object)
}

/// zlib-compresses `data` (`repeat` times over, without holding the repetition in memory).
fn zlib(data: &[u8], repeat: usize) -> Vec<u8> {
    let mut out = gix_zlib::stream::deflate::Write::new(Vec::new(), gix_zlib::Compression::BEST);
    for _ in 0..repeat {
        out.write_all(data).expect("compress");
    }
    out.flush().expect("finish the zlib stream");
    out.into_inner()
}

/// A variable-length size as in delta headers: 7 bits at a time, least significant first.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// One pack entry: the type-and-size header (declaring `size`, which may lie), then `rest`
/// (for deltas: the base reference, then the compressed delta).
fn entry(kind: u8, size: u64, rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut byte = (kind << 4) | (size & 0x0f) as u8;
    let mut size = size >> 4;
    while size != 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
    out.extend_from_slice(rest);
    out
}

/// The offset of an ofs-delta's base, `distance` bytes before it.
fn ofs(mut distance: u64) -> Vec<u8> {
    let mut out = vec![(distance & 0x7f) as u8];
    distance >>= 7;
    while distance != 0 {
        distance -= 1;
        out.insert(0, 0x80 | (distance & 0x7f) as u8);
        distance >>= 7;
    }
    out
}

/// A delta: base size, result size, then `instructions`.
fn delta(base_len: u64, result_len: u64, instructions: &[u8]) -> Vec<u8> {
    let mut out = varint(base_len);
    out.extend(varint(result_len));
    out.extend_from_slice(instructions);
    out
}

/// A version 2 pack announcing `count` objects, holding `entries`, with a correct trailer.
fn pack(count: u32, entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"PACK".to_vec();
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    for e in entries {
        out.extend_from_slice(e);
    }
    reseal(out)
}

/// `pack` (with or without a trailer) with a recomputed trailing checksum.
fn reseal(mut pack: Vec<u8>) -> Vec<u8> {
    if pack.len() >= 32 && pack[pack.len() - 20..] == sha1(&pack[..pack.len() - 20]) {
        pack.truncate(pack.len() - 20);
    }
    let trailer = sha1(&pack);
    pack.extend_from_slice(&trailer);
    pack
}

/// A commit on top of main in a clone, and the pack `git pack-objects` makes for it (`thin`:
/// deltas against the upstream's objects allowed).
struct Pushed {
    commit: String,
    pack: Vec<u8>,
}

fn git_pack(s: &Stack, dest: &std::path::Path, tip: &str, thin: bool) -> Vec<u8> {
    let mut cmd = git::command();
    cmd.current_dir(dest)
        .args(["pack-objects", "--revs", "--stdout", "-q"])
        .args(thin.then_some("--thin"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn git pack-objects");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{tip}\n^{}\n", s.history.main[4]).as_bytes())
        .expect("write revisions");
    let out = child.wait_with_output().expect("git pack-objects");
    assert!(
        out.status.success(),
        "git pack-objects: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A clone with one new commit (4 KB of hex text, so the pack has room to break).
fn pushed(s: &Stack) -> (std::path::PathBuf, Pushed) {
    let dest = s.clone("packs", &[]);
    let text = hex::encode(crate::harness::repo::random_bytes(2000, 3));
    let commit = s
        .git
        .commit_file(&dest, "pushed.txt", text.as_bytes(), "to be pushed");
    let pack = git_pack(s, &dest, &commit, false);
    (dest, Pushed { commit, pack })
}

// --- sending them ---------------------------------------------------------------------------------

/// A receive-pack request body: `commands` (old, new, ref) with `report-status` on the first,
/// a flush, then `pack`.
fn request(commands: &[(&str, &str, &str)], pack: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (old, new, refname)) in commands.iter().enumerate() {
        let line = if i == 0 {
            format!("{old} {new} {refname}\0report-status agent=bad-packs\n")
        } else {
            format!("{old} {new} {refname}\n")
        };
        body.extend_from_slice(format!("{:04x}", line.len() + 4).as_bytes());
        body.extend_from_slice(line.as_bytes());
    }
    body.extend_from_slice(b"0000");
    body.extend_from_slice(pack);
    body
}

fn post(s: &Stack, body: &[u8]) -> Response {
    let auth = s.auth();
    http::post(
        s.gateway.addr(),
        &s.target("repo.git/git-receive-pack"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-git-receive-pack-request"),
            ("Accept", "application/x-git-receive-pack-result"),
        ],
        body,
    )
}

/// The pkt-lines of a report-status answer (flush as `0000`); `None` if it is not one.
fn report(body: &[u8]) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let len = usize::from_str_radix(std::str::from_utf8(rest.get(..4)?).ok()?, 16).ok()?;
        if len == 0 {
            lines.push("0000".to_owned());
            rest = &rest[4..];
            continue;
        }
        let data = rest.get(4..len)?;
        lines.push(String::from_utf8_lossy(data).trim_end().to_owned());
        rest = &rest[len..];
    }
    Some(lines)
}

/// The ref names of the commands of a request built by [`request`].
fn commands(body: &[u8]) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = body;
    while let Some(len) = rest
        .get(..4)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| usize::from_str_radix(h, 16).ok())
    {
        if len < 4 {
            break;
        }
        let line = String::from_utf8_lossy(&rest[4..len]).into_owned();
        let line = line.split('\0').next().unwrap_or_default().trim_end();
        refs.extend(line.split(' ').nth(2).map(str::to_owned));
        rest = &rest[len..];
    }
    refs
}

/// Sends `pack` to create `refs/heads/bad` at `new`, and checks the answer is a clean refusal:
/// a 4xx, or a report whose `unpack` failed and whose only ref is `ng`. Returns the reason shown.
#[track_caller]
fn refused(s: &Stack, case: &str, new: &str, pack: &[u8]) -> String {
    refused_request(s, case, &request(&[(ZERO, new, "refs/heads/bad")], pack))
}

#[track_caller]
fn refused_request(s: &Stack, case: &str, body: &[u8]) -> String {
    let before = s.repo.refs();
    let r = post(s, body);
    assert_eq!(
        s.repo.refs(),
        before,
        "{case}: the upstream's refs moved\n{r}"
    );
    if r.is_client_error() {
        assert!(
            r.header("Content-Type")
                .is_some_and(|t| t.starts_with("text/plain")),
            "{case}: a 4xx explains itself in plain text: {r}"
        );
        return r.text();
    }
    assert_eq!(
        r.status,
        200,
        "{case}: neither a report nor a 4xx:\n{r}\n{}",
        s.logs()
    );
    let lines = report(&r.body)
        .unwrap_or_else(|| panic!("{case}: the answer is not a pkt-line report:\n{r}"));
    let unpack = lines.first().map(String::as_str).unwrap_or_default();
    assert!(
        unpack.starts_with("unpack ") && unpack != "unpack ok",
        "{case}: `unpack` must fail: {lines:?}\n{}",
        s.logs()
    );
    // Every command of the request is rejected, in order, and nothing else is reported.
    let mut expected = vec![unpack.to_owned()];
    expected.extend(
        commands(body)
            .iter()
            .map(|r| format!("ng {r} unpacker error")),
    );
    expected.push("0000".to_owned());
    assert_eq!(lines, expected, "{case}");
    unpack.to_owned()
}

/// The request format above is right: the valid pack lands (at `refname`).
#[track_caller]
fn accepted(s: &Stack, p: &Pushed, refname: &str) {
    let r = post(s, &request(&[(ZERO, &p.commit, refname)], &p.pack));
    assert_eq!(r.status, 200, "{r}\n{}", s.logs());
    assert_eq!(
        report(&r.body),
        Some(vec![
            "unpack ok".to_owned(),
            format!("ok {refname}"),
            "0000".to_owned()
        ]),
        "{r}\n{}",
        s.logs()
    );
    assert_eq!(s.repo.rev(refname).as_deref(), Some(p.commit.as_str()));
}

/// The gateway still serves: a clone, and a push with the git CLI.
#[track_caller]
fn still_serving(s: &Stack, label: &str) {
    let dest = s.clone(label, &[]);
    assert_eq!(s.git.rev(&dest, "HEAD"), s.history.main[4]);
    let head = s
        .git
        .commit_file(&dest, "after.txt", b"after\n", "after the bad packs");
    let out = s
        .git
        .push(&dest, &["origin", &format!("HEAD:refs/heads/{label}")]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev(&format!("refs/heads/{label}")), Some(head));
}

// --- the cases ------------------------------------------------------------------------------------

fn truncated_and_corrupt_packs_are_refused(kind: Kind) {
    let s = Stack::start(kind);
    let (_dest, p) = pushed(&s);
    let len = p.pack.len();
    assert!(len > 1000, "a pack with room to break: {len} bytes");

    for cut in [4, 11, 12, 13, 40, len / 2, len - 21, len - 20, len - 1] {
        refused(
            &s,
            &format!("truncated at {cut} of {len}"),
            &p.commit,
            &p.pack[..cut],
        );
    }
    for at in [0, 5, 9, 12, 13, 30, len / 2, len - 21, len - 1] {
        let mut flipped = p.pack.clone();
        flipped[at] ^= 0x40;
        refused(
            &s,
            &format!("byte {at} of {len} flipped"),
            &p.commit,
            &flipped,
        );
    }
    let mut wrong = p.pack.clone();
    wrong[len - 20..].copy_from_slice(&[0xab; 20]);
    let reason = refused(&s, "a wrong trailing checksum", &p.commit, &wrong);
    assert!(reason.contains("checksum"), "{reason}");
    // A byte flipped in the data with a recomputed (so, valid) trailer: zlib or the object id
    // must catch it.
    let mut resealed = p.pack[..len - 20].to_vec();
    resealed[len / 2] ^= 0x01;
    refused(
        &s,
        "corrupt data, valid trailer",
        &p.commit,
        &reseal(resealed),
    );
    // Junk after the pack.
    let mut junk = p.pack.clone();
    junk.extend_from_slice(b"junk after the trailer");
    refused(&s, "junk after the pack", &p.commit, &junk);

    assert_eq!(s.repo.rev("refs/heads/bad"), None);
    assert!(!s.repo.has_object(&p.commit));
    // The requests above were well-formed around their packs: the intact pack lands.
    accepted(&s, &p, "refs/heads/good");
    still_serving(&s, "after-corrupt");
}

fn hostile_sizes_and_counts_are_refused(kind: Kind) {
    let s = Stack::start(kind);
    let (_dest, p) = pushed(&s);
    let some_id = hex::encode(object_id("blob", b"whatever"));

    // A zlib bomb: a blob declaring 10 GiB whose stream inflates to 64 MiB of zeros.
    let bomb = pack(1, &[entry(BLOB, 10 << 30, &zlib(&[0; 1 << 20], 64))]);
    assert!(bomb.len() < 1 << 20, "a bomb is small: {}", bomb.len());
    let reason = refused(&s, "a zlib bomb declaring 10 GiB", &some_id, &bomb);
    assert!(
        reason.contains("10737418240"),
        "refused for its size: {reason}"
    );
    // The same stream with an honest size just under the 256 MiB default is fine to inflate,
    // but one declaring more than it holds is not.
    let liar = pack(1, &[entry(BLOB, 200 << 20, &zlib(&[0; 1 << 20], 1))]);
    refused(
        &s,
        "a blob declaring more than it inflates to",
        &some_id,
        &liar,
    );

    // A delta bomb: a small delta against a small base, declaring a 10 GiB result.
    let base = b"base of the delta\n".to_vec();
    let base_entry = entry(BLOB, base.len() as u64, &zlib(&base, 1));
    let instructions = [&[5u8][..], b"hello"].concat();
    let bomb_delta = delta(base.len() as u64, 10 << 30, &instructions);
    let mut rest = ofs(base_entry.len() as u64);
    rest.extend(zlib(&bomb_delta, 1));
    let delta_entry = entry(OFS_DELTA, bomb_delta.len() as u64, &rest);
    let reason = refused(
        &s,
        "a delta declaring a 10 GiB result",
        &some_id,
        &pack(2, &[base_entry.clone(), delta_entry]),
    );
    assert!(
        reason.contains("10737418240"),
        "refused for its size: {reason}"
    );
    // A delta whose declared base size is not its base's.
    let wrong_base = delta(base.len() as u64 + 7, 5, &instructions);
    let mut rest = ofs(base_entry.len() as u64);
    rest.extend(zlib(&wrong_base, 1));
    refused(
        &s,
        "a delta with the wrong base size",
        &some_id,
        &pack(
            2,
            &[
                base_entry.clone(),
                entry(OFS_DELTA, wrong_base.len() as u64, &rest),
            ],
        ),
    );
    // An ofs-delta pointing before the start of the pack.
    let fine = delta(base.len() as u64, 5, &instructions);
    let mut rest = ofs(1 << 20);
    rest.extend(zlib(&fine, 1));
    refused(
        &s,
        "an ofs-delta before the pack",
        &some_id,
        &pack(2, &[base_entry, entry(OFS_DELTA, fine.len() as u64, &rest)]),
    );

    // Object counts that are not the pack's (trailers recomputed, so only the count lies).
    let count = u32::from_be_bytes(p.pack[8..12].try_into().expect("4 bytes"));
    for (case, lie) in [
        ("one more object announced than present", count + 1),
        ("a million more objects announced", count + 1_000_000),
        ("4 billion objects announced", u32::MAX),
        ("one object fewer announced than present", count - 1),
    ] {
        let mut lying = p.pack[..p.pack.len() - 20].to_vec();
        lying[8..12].copy_from_slice(&lie.to_be_bytes());
        refused(&s, case, &p.commit, &reseal(lying));
    }
    // An empty pack for a command that needs objects is not a pack problem but still no update.
    let empty = pack(0, &[]);
    let r = post(&s, &request(&[(ZERO, &p.commit, "refs/heads/bad")], &empty));
    assert!(
        r.is_client_error() || r.status == 200,
        "an empty pack: {r}\n{}",
        s.logs()
    );
    if r.status == 200 {
        let lines = report(&r.body).unwrap_or_default();
        assert!(
            lines.iter().any(|l| l.starts_with("ng refs/heads/bad ")),
            "an empty pack cannot create the ref: {lines:?}"
        );
    }

    assert_eq!(s.repo.rev("refs/heads/bad"), None);
    still_serving(&s, "after-hostile");
}

fn thin_packs_and_missing_objects_are_refused(kind: Kind) {
    let s = Stack::start(kind);
    let (dest, p) = pushed(&s);

    // A ref-delta against a blob the upstream has (what `--thin` makes): the gateway asked for
    // `no-thin`, and every object must be resolvable from the pack alone.
    let base: &[u8] = b"# demo\n";
    let readme = s.repo.git(&["rev-parse", "refs/heads/main:README.md"]);
    assert_eq!(readme, hex::encode(object_id("blob", base)));
    let readme_len = base.len() as u64;
    // Copy the whole base, then insert 5 bytes.
    let mut instructions = vec![0x80 | 0x10, readme_len as u8];
    instructions.extend_from_slice(&[5]);
    instructions.extend_from_slice(b"more\n");
    let d = delta(readme_len, readme_len + 5, &instructions);
    let mut rest = hex::decode(&readme).expect("hex");
    rest.extend(zlib(&d, 1));
    let thin = pack(1, &[entry(REF_DELTA, d.len() as u64, &rest)]);
    let result = [base, b"more\n"].concat();
    let new = hex::encode(object_id("blob", &result));
    let reason = refused(&s, "a ref-delta against an upstream blob", &new, &thin);
    assert!(reason.contains(&readme), "names the missing base: {reason}");

    // A ref-delta whose base exists nowhere.
    let mut rest = vec![0x5a; 20];
    rest.extend(zlib(&d, 1));
    refused(
        &s,
        "a ref-delta against a missing base",
        &new,
        &pack(1, &[entry(REF_DELTA, d.len() as u64, &rest)]),
    );

    // What git makes with --thin for a change of an upstream file.
    s.git
        .ok(&dest, &["checkout", "-q", "-b", "thin", "origin/main"]);
    let mut lib = std::fs::read(dest.join("assets/blob.bin")).expect("read the 256 KiB blob");
    lib[1000] ^= 0xff;
    std::fs::write(dest.join("assets/blob.bin"), &lib).expect("write");
    s.git
        .ok(&dest, &["commit", "-q", "-a", "-m", "change one byte"]);
    let thin_tip = s.git.rev(&dest, "HEAD");
    let git_thin = git_pack(&s, &dest, &thin_tip, true);
    assert!(
        git_thin.len() < 64 * 1024,
        "git made a thin pack ({} bytes)",
        git_thin.len()
    );
    let reason = refused(&s, "git's thin pack", &thin_tip, &git_thin);
    assert!(reason.contains("thin"), "{reason}");

    // A valid pack, but the command's new id is not in it (nor upstream): no update.
    let other = s
        .git
        .commit_file(&dest, "other.txt", b"never sent\n", "never sent");
    let before = s.repo.refs();
    let r = post(&s, &request(&[(ZERO, &other, "refs/heads/bad")], &p.pack));
    assert_eq!(s.repo.refs(), before, "{r}");
    if !r.is_client_error() {
        assert_eq!(r.status, 200, "{r}\n{}", s.logs());
        let lines = report(&r.body).unwrap_or_else(|| panic!("not a report: {r}"));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("ng refs/heads/bad ") || l.starts_with("unpack ")),
            "{lines:?}"
        );
        assert!(
            !lines.iter().any(|l| l == "ok refs/heads/bad"),
            "a ref to a missing object was accepted: {lines:?}\n{}",
            s.logs()
        );
    }
    // And an update of main to a commit that is not in the pack.
    let r = post(
        &s,
        &request(
            &[(
                s.history.main[4].as_str(),
                other.as_str(),
                "refs/heads/main",
            )],
            &p.pack,
        ),
    );
    assert_eq!(s.repo.refs(), before, "{r}");
    assert!(
        !report(&r.body)
            .unwrap_or_default()
            .iter()
            .any(|l| l == "ok refs/heads/main"),
        "{r}"
    );
    assert!(!s.repo.has_object(&other));
    still_serving(&s, "after-thin");
}

/// The limit's reason whether the gateway answers with a 4xx or with a report.
#[track_caller]
fn limit_refusal(s: &Stack, case: &str, body: &[u8], expected: &str) {
    let reason = refused_request(s, case, body);
    assert!(
        reason.contains(expected),
        "{case}: the answer names the limit ({expected}): {reason}"
    );
}

fn oversized_push_is_refused(kind: Kind) {
    let s = Stack::start_with(kind, "[limits]\nmax_push_bytes = 65536\n");
    let dest = s.clone("clone", &[]);
    let before = s.repo.refs();
    const LIMIT: &str = "the pushed pack exceeds the gateway's limit of 65536 bytes";

    // A 200 KiB incompressible file.
    let big = s.git.commit_random_file(&dest, "big.bin", 200 * 1024, 5);
    let pack = git_pack(&s, &dest, &big, false);
    assert!(pack.len() > 65536);
    limit_refusal(
        &s,
        "a pack over max_push_bytes",
        &request(&[(ZERO, &big, "refs/heads/bad")], &pack),
        LIMIT,
    );
    // Under the limit, pushes work.
    still_serving(&s, "small");
    let before_git = s.repo.refs();

    // With git: the push fails, nothing lands, and the user is told why. (An HTTP 413 with a
    // text body is not enough: git shows only "RPC failed; HTTP 413", then "Everything
    // up-to-date".)
    let out = s.git.push(&dest, &["origin", "HEAD:refs/heads/big"]);
    assert!(!out.success(), "{out}");
    assert_eq!(s.repo.refs(), before_git);
    assert!(!s.repo.has_object(&big));
    assert_ne!(before, before_git);
    assert!(
        out.stderr.contains(LIMIT),
        "git must show why the push was refused: {out}\n{}",
        s.logs()
    );
}

fn too_many_ref_updates_are_refused(kind: Kind) {
    let s = Stack::start_with(kind, "[limits]\nmax_ref_updates = 2\n");
    let dest = s.clone("clone", &[]);
    let head = s.history.main[4].as_str();
    let body = request(
        &[
            (ZERO, head, "refs/heads/r1"),
            (ZERO, head, "refs/heads/r2"),
            (ZERO, head, "refs/heads/r3"),
        ],
        &pack(0, &[]),
    );
    limit_refusal(&s, "three ref updates", &body, "more than 2");
    let before = s.repo.refs();
    let out = s.git.push(
        &dest,
        &["origin", "HEAD:refs/heads/r1", "HEAD:refs/heads/r2"],
    );
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/r2").as_deref(), Some(head));

    // With git: refused, nothing lands, and the user is told why.
    let before = {
        let mut b = before;
        b.insert("refs/heads/r1".into(), head.into());
        b.insert("refs/heads/r2".into(), head.into());
        b
    };
    let out = s.git.push(
        &dest,
        &[
            "origin",
            "HEAD:refs/heads/r3",
            "HEAD:refs/heads/r4",
            "HEAD:refs/heads/r5",
        ],
    );
    assert!(!out.success(), "{out}");
    assert_eq!(s.repo.refs(), before);
    assert!(
        out.stderr.contains("more than 2"),
        "git must show why the push was refused: {out}\n{}",
        s.logs()
    );
}

/// Commands that need objects and no pack at all (the body ends after the flush): git's own
/// receive-pack answers `unpack` with an error (index-pack meets EOF); so must the gateway.
fn missing_pack_is_an_unpack_error(kind: Kind) {
    let s = Stack::start(kind);
    let (_dest, p) = pushed(&s);
    refused(&s, "no pack", &p.commit, b"");
    assert!(!s.repo.has_object(&p.commit));
    still_serving(&s, "after-no-pack");
}
