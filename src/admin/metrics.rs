//! Prometheus metrics: what operators graph and alert on.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of one operation outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `upload-pack` or `receive-pack`.
    pub service: String,
    /// `advertise` or `rpc`.
    pub phase: String,
    /// `ok`, `denied`, `client_error`, `upstream_error`, `error`.
    pub result: String,
}

/// Labels of relayed bytes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BytesLabels {
    /// `upload-pack` or `receive-pack`.
    pub service: String,
    /// `to_client` or `to_upstream`.
    pub direction: String,
}

/// Labels naming an upstream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The upstream's configured name.
    pub upstream: String,
}

/// Labels naming a service.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    /// `upload-pack` or `receive-pack`.
    pub service: String,
}

type DurationFamily = Family<ServiceLabels, Histogram, fn() -> Histogram>;

/// Every metric the gateway exports, registered once per process.
pub struct Metrics {
    registry: Registry,
    /// Operations by service, phase and result.
    pub operations: Family<OperationLabels, Counter>,
    /// Bytes relayed, by service and direction.
    pub bytes: Family<BytesLabels, Counter>,
    /// Operation durations in seconds.
    pub durations: DurationFamily,
    /// Operations in flight.
    pub active: Gauge,
    /// Failures talking to an upstream.
    pub upstream_errors: Family<UpstreamLabels, Counter>,
    /// Requests refused for missing or bad credentials.
    pub auth_failures: Counter,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gitgate");
        let operations = Family::<OperationLabels, Counter>::default();
        let bytes = Family::<BytesLabels, Counter>::default();
        let durations: DurationFamily = Family::new_with_constructor(duration_histogram);
        let active = Gauge::default();
        let upstream_errors = Family::<UpstreamLabels, Counter>::default();
        let auth_failures = Counter::default();
        registry.register(
            "operations",
            "Git operations handled, by service, phase and result",
            operations.clone(),
        );
        registry.register(
            "relayed_bytes",
            "Bytes relayed between clients and upstreams",
            bytes.clone(),
        );
        registry.register(
            "operation_duration_seconds",
            "Duration of git operations",
            durations.clone(),
        );
        registry.register(
            "active_operations",
            "Git operations in flight",
            active.clone(),
        );
        registry.register(
            "upstream_errors",
            "Failures talking to an upstream",
            upstream_errors.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests refused for missing or invalid credentials",
            auth_failures.clone(),
        );
        Metrics {
            registry,
            operations,
            bytes,
            durations,
            active,
            upstream_errors,
            auth_failures,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_the_metrics() {
        let m = Metrics::new();
        m.operations
            .get_or_create(&OperationLabels {
                service: "upload-pack".into(),
                phase: "rpc".into(),
                result: "ok".into(),
            })
            .inc();
        let text = m.encode();
        assert!(text.contains(
            "gitgate_operations_total{service=\"upload-pack\",phase=\"rpc\",result=\"ok\"} 1"
        ));
        assert!(text.contains("# TYPE gitgate_active_operations gauge"));
        assert!(text.ends_with("# EOF\n"));
    }
}
