//! The admin listener: `/metrics` (Prometheus text), `/healthz` and the approvals API
//! (`/api/approvals`). Later: the web UI.

pub mod api;
pub mod metrics;
pub mod server;
