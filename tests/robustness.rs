//! Hostile bytes on the POST endpoints: a 4xx answer, and the gateway keeps serving.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::http;
use crate::harness::repo::random_bytes;
use crate::harness::{Kind, Stack};

both_upstreams!(
    garbage_upload_pack_bodies_are_4xx,
    garbage_receive_pack_bodies_are_4xx,
    expect_100_continue_is_answered,
);

/// Bodies that are not a sequence of pkt-lines.
fn garbage() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("text", b"this is not a pkt-line stream\n".to_vec()),
        ("random bytes", random_bytes(64 * 1024, 99)),
        ("bad length digits", b"zzzzwant".to_vec()),
        (
            "length 3, invalid in every protocol version",
            b"0003".to_vec(),
        ),
        ("truncated pkt-line", b"0032want 0123456789".to_vec()),
        ("length beyond the body", b"ffffwant".to_vec()),
        ("NUL bytes", vec![0; 4096]),
    ]
}

fn post_garbage(s: &Stack, service: &str, extra: &[(&str, &str)], name: &str, body: &[u8]) {
    let auth = s.auth();
    let content_type = format!("application/x-{service}-request");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", content_type.as_str()),
    ];
    headers.extend_from_slice(extra);
    let target = s.target(&format!("repo.git/{service}"));
    let r = http::post(s.gateway.addr(), &target, &headers, body);
    assert!(
        r.is_client_error(),
        "{service} with {name} {extra:?} must be a 4xx:\n{r}\n{}",
        s.logs()
    );
}

/// The gateway still works after the garbage: a clone and a push.
fn still_serving(s: &Stack) {
    let dest = s.clone("after-garbage", &[]);
    assert_eq!(s.git.rev(&dest, "HEAD"), s.history.main[4]);
    let head = s
        .git
        .commit_file(&dest, "after.txt", b"after\n", "after garbage");
    let out = s
        .git
        .push(&dest, &["origin", "HEAD:refs/heads/after-garbage"]);
    assert!(out.success(), "{out}\n{}", s.logs());
    assert_eq!(s.repo.rev("refs/heads/after-garbage"), Some(head));
}

fn garbage_upload_pack_bodies_are_4xx(kind: Kind) {
    let s = Stack::start(kind);
    for (name, body) in garbage() {
        post_garbage(&s, "git-upload-pack", &[], name, &body);
    }
    post_garbage(
        &s,
        "git-upload-pack",
        &[("Git-Protocol", "version=2")],
        "text",
        b"command=nonsense\n",
    );
    post_garbage(
        &s,
        "git-upload-pack",
        &[("Content-Encoding", "gzip")],
        "a body that is not gzip",
        b"0032want 0000000000000000000000000000000000000000\n0000",
    );
    still_serving(&s);
}

fn garbage_receive_pack_bodies_are_4xx(kind: Kind) {
    let s = Stack::start(kind);
    for (name, body) in garbage() {
        post_garbage(&s, "git-receive-pack", &[], name, &body);
    }
    // A command line whose ids are not hex.
    let command = b"not-an-id not-an-id refs/heads/x\0 report-status\n";
    let mut body = format!("{:04x}", command.len() + 4).into_bytes();
    body.extend_from_slice(command);
    body.extend_from_slice(b"0000");
    post_garbage(&s, "git-receive-pack", &[], "a command with bad ids", &body);
    // A command without a ref name.
    let command = format!("{} {}\n", "0".repeat(40), s.history.main[4]);
    let mut body = format!("{:04x}", command.len() + 4).into_bytes();
    body.extend_from_slice(command.as_bytes());
    body.extend_from_slice(b"0000");
    post_garbage(
        &s,
        "git-receive-pack",
        &[],
        "a command without a ref",
        &body,
    );
    still_serving(&s);
    assert_eq!(s.repo.rev("refs/heads/x"), None);
}

/// A well-formed v0 fetch request for `want`: `want`, flush, `done`.
fn fetch_request(want: &str) -> Vec<u8> {
    let line = format!("want {want} ofs-delta\n");
    format!("{:04x}{line}00000009done\n", line.len() + 4).into_bytes()
}

/// A client that sends `Expect: 100-continue` waits for `100 Continue` before its body.
fn expect_100_continue_is_answered(kind: Kind) {
    let s = Stack::start(kind);
    let body = fetch_request(&s.history.main[4]);
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\
         Content-Type: application/x-git-upload-pack-request\r\n\
         Accept: application/x-git-upload-pack-result\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        s.target("repo.git/git-upload-pack"),
        s.auth(),
        body.len()
    );
    let mut stream = TcpStream::connect(s.gateway.addr()).expect("connect to the gateway");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set timeout");
    stream.write_all(head.as_bytes()).expect("send headers");
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut status = String::new();
    reader.read_line(&mut status).expect("an interim answer");
    assert!(
        status.starts_with("HTTP/1.1 100"),
        "expected 100 Continue, got {status:?}\n{}",
        s.logs()
    );
    let mut blank = String::new();
    reader
        .read_line(&mut blank)
        .expect("end of the interim answer");
    assert_eq!(blank, "\r\n");
    stream.write_all(&body).expect("send the body");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).expect("the final answer");
    let text = String::from_utf8_lossy(&rest);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}\n{}", s.logs());
    assert!(
        text.contains("application/x-git-upload-pack-result"),
        "{text}"
    );
    assert!(
        rest.windows(4).any(|w| w == b"PACK"),
        "no pack in the answer: {text}"
    );
}

/// An upstream nobody answers for: 502, a short message, and the gateway keeps serving.
#[test]
fn unreachable_upstream_is_502() {
    use crate::harness::gateway::{new_token, token_toml, Gateway};
    use crate::harness::{net, Git, Tmp};

    let tmp = Tmp::new("unreachable");
    let dead_port = net::free_port();
    let token = new_token();
    let config = format!(
        "[[upstream]]\nname = \"dead\"\nurl = \"http://127.0.0.1:{dead_port}/\"\n\
         username = \"u\"\npassword_env = \"UPSTREAM_PW\"\n\n{}",
        token_toml("agent-1", &token, &["agents"])
    );
    let gateway = Gateway::start_with_env(
        &config,
        &[("UPSTREAM_PW".to_owned(), "pw-dead-upstream".to_owned())],
    );
    let auth = http::basic("agent", &token);
    let r = http::get(
        gateway.addr(),
        "/dead/repo.git/info/refs?service=git-upload-pack",
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 502, "{r}\n{}", gateway.output());
    assert!(r.body.len() < 1024, "a short message: {r}");
    assert!(!r.contains("pw-dead-upstream"), "{r}");
    let git = Git::new(&tmp.dir("client"));
    let out = git.clone(
        &gateway.url_with_token("agent", &token, "dead/repo.git"),
        &tmp.join("clone"),
        &[],
    );
    assert!(!out.success(), "{out}");
    assert_eq!(http::get(gateway.addr(), "/healthz", &[]).status, 200);
}
