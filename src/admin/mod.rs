//! The admin listener: `/metrics` (Prometheus text) and `/healthz`. Later: the approvals API
//! and the web UI.

pub mod metrics;
pub mod server;
