//! gitgate's integration tests: one binary, a module per feature, real parts started by `harness`
//! (upstreams on loopback, the gateway binary, the git CLI).
//!
//! Set `GITGATE_BIN` to test another binary, `GITGATE_KEEP_TMP=1` to keep the temporary folders.

#[macro_use]
mod harness;

mod approval;
mod audit_cli;
mod audit_e2e;
mod auth;
mod bad_packs;
mod check;
mod harness_selftest;
mod http_clone;
mod http_push;
mod mirror;
mod oidc;
mod policy_fetch;
mod policy_push;
mod robustness;
mod routing;
mod scan_clean;
mod scan_push;
mod serve;
mod ssh;
mod ssh_upstream;
