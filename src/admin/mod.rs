//! The admin listener: `/metrics` (Prometheus text), `/healthz`, the approvals API
//! (`/api/approvals`) and the review pages (`/approvals`, the web UI).

pub mod api;
pub mod metrics;
pub mod server;
pub mod ui;
