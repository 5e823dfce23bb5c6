//! `gitgate serve`: starts, answers `/healthz`, stops on SIGTERM.

use std::time::Duration;

use crate::harness::http;
use crate::harness::{Kind, Stack};

#[test]
fn sigterm_stops_the_gateway() {
    let mut s = Stack::start(Kind::File);
    s.clone("before", &[]);
    let status = s.gateway.terminate(Duration::from_secs(30));
    let status = status.unwrap_or_else(|| {
        panic!(
            "gitgate serve still runs 30 s after SIGTERM:\n{}",
            s.gateway.output()
        )
    });
    assert!(status.success(), "{status}\n{}", s.gateway.output());
    assert!(
        http::request(s.gateway.addr(), "GET", "/healthz", &[], b"").is_err(),
        "the port still answers"
    );
}

#[test]
fn serve_names_the_public_url_clients_use() {
    let s = Stack::start_with(
        Kind::File,
        "[server]\nhttp_listen = \"{http_listen}\"\nstate_dir = \"state\"\n\
         public_url = \"https://git.example.com/\"\n",
    );
    s.clone("works", &[]);
    let output = s.gateway.output();
    assert!(
        output.contains("gitgate: clients reach it as https://git.example.com/<upstream>/<repo>"),
        "{output}"
    );
}
