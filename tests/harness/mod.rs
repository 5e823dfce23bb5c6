//! Real parts on loopback for the integration tests: temporary folders, bare repositories with
//! history, upstreams (`file://`, nginx + fcgiwrap + `git http-backend`, OpenSSH `sshd` with
//! git-shell), the gateway binary, the git CLI, a raw HTTP client, and the OpenSSH client with
//! keys and certificates.
#![allow(dead_code, reason = "a toolbox: not every test uses every tool")]

pub mod gateway;
pub mod git;
pub mod http;
pub mod net;
pub mod oidc;
pub mod process;
pub mod repo;
pub mod ssh;
pub mod sshd;
pub mod stack;
pub mod tmp;
pub mod upstream;

pub use git::Git;
pub use stack::{Kind, Stack};
pub use tmp::Tmp;
pub use upstream::Upstream;

/// Defines, for each `name`, a module `name` with the tests `file` and `http` that call
/// `name(Kind::File)` and `name(Kind::Http)`: the same behaviour through both upstreams.
macro_rules! both_upstreams {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn file() {
                    super::$name($crate::harness::Kind::File)
                }
                #[test]
                fn http() {
                    super::$name($crate::harness::Kind::Http)
                }
            }
        )*
    };
}
