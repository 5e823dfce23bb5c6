//! gitgate: a gateway between AI coding agents and the Git servers they push to.
//!
//! # Layout
//! - [`cli`]: one file per verb (`serve`, `demo`, `check`, ...); the only place using `anyhow`.
//! - [`config`]: raw TOML -> resolved [`config::Config`] that cannot be invalid.
//! - [`session`]: THE transport-neutral pipeline: identify -> route -> read request -> inspect ->
//!   decide -> record -> approve -> relay -> answer.
//! - [`http`]: the smart-HTTP adapter (hyper): routes, auth headers, streamed bodies, `/healthz`.
//! - [`ssh`]: the SSH adapter (russh): key and certificate auth, exec parsing, channel <-> session.
//! - [`proto`]: git wire formats: pkt-line, capabilities, advertisements, commands, report-status.
//! - [`pack`]: pushed packs: verify with limits, index, visit objects, rebuild a subset.
//! - [`inspect`]: what a push does: op per ref, introduced commits, changed paths, new blobs.
//! - [`policy`]: rules -> per-ref verdicts, hidden refs, and the fixture runner behind
//!   `policy test`.
//! - [`scan`]: secret detectors, the blob scanner, findings and their redaction.
//! - [`identity`]: who is calling: `Identity { name, groups }` from static tokens, OIDC JWTs
//!   (discovery, JWKS cache), SSH keys and certificates; the gateway's SSH user CA.
//! - [`upstream`]: relays to `file://` and `http(s)://` upstreams with the vaulted credential.
//! - [`approval`]: held updates bound to (identity, repo, ref, old, new): store, wait, webhook.
//! - [`audit`]: the record: SQLite store, hash chain, signed head, stored packs, verify.
//! - [`admin`]: the admin listener: `/metrics` (Prometheus text) and `/healthz`.
//! - [`git`]: services, protocol versions and the `ByteStream` body type.
//! - [`secret`]: `Secret<T>`, whose `Debug`/`Display` never print the value.

pub mod admin;
pub mod approval;
pub mod audit;
pub mod cli;
pub mod config;
pub mod git;
pub mod http;
pub mod identity;
pub mod inspect;
pub mod pack;
pub mod policy;
pub mod proto;
pub mod scan;
pub mod secret;
pub mod session;
pub mod ssh;
pub mod upstream;

#[cfg(test)]
mod test_git;
