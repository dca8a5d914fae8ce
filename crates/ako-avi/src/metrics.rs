//! Prometheus metrics of the Avi client (prefix `ako_avi_`): requests by object type, method and status, the
//! client's own retries, the request budget's rate and how long requests waited for it, and writes refused by
//! the fence.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The object type (`virtualservice`, `pool`, ...), or `login`.
    pub kind: String,
    pub method: String,
    /// The HTTP status, or `error` when none came back.
    pub status: String,
}

/// The client's metrics; share one between clones and register it once.
#[derive(Debug)]
pub struct AviMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub retries: Counter,
    pub budget_rate: Gauge<f64, AtomicU64>,
    pub budget_wait: Histogram,
    pub fenced: Counter,
}

impl Default for AviMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            retries: Counter::default(),
            budget_rate: Gauge::default(),
            // 1 ms .. ~65 s
            budget_wait: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            fenced: Counter::default(),
        }
    }
}

impl AviMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("avi");
        r.register(
            "requests",
            "Requests to the Avi controller, by object type, method and status (error: no answer)",
            self.requests.clone(),
        );
        r.register(
            "client_retries",
            "Requests the client sent again by itself (transport errors, 408, 429, 5xx of idempotent requests)",
            self.retries.clone(),
        );
        r.register(
            "budget_requests_per_second",
            "The request budget's current rate: lowered while the controller signals overload",
            self.budget_rate.clone(),
        );
        r.register(
            "budget_wait_seconds",
            "How long requests waited for the request budget",
            self.budget_wait.clone(),
        );
        r.register(
            "fenced_writes",
            "Writes not sent because this replica no longer held the lease",
            self.fenced.clone(),
        );
    }

    pub fn request(&self, path: &str, method: &str, status: Option<u16>) {
        self.requests
            .get_or_create(&RequestLabels {
                kind: kind_of(path).to_string(),
                method: method.to_string(),
                status: status.map_or_else(|| "error".to_string(), |s| s.to_string()),
            })
            .inc();
    }

    pub fn waited(&self, wait: Duration) {
        self.budget_wait.observe(wait.as_secs_f64());
    }
}

/// The object type of a request path: `/api/pool/pool-1` -> `pool`, `/login` -> `login`.
pub fn kind_of(path: &str) -> &str {
    let path = path.trim_start_matches('/');
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    match segments.next() {
        Some("api") => segments.next().unwrap_or("api"),
        Some(other) => other,
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_are_labelled_by_object_type() {
        let cases = [
            ("/api/pool/pool-1", "pool"),
            ("api/virtualservice?name=a", "virtualservice"),
            ("/api/vsvip/", "vsvip"),
            ("/login", "login"),
            ("/api/initial-data", "initial-data"),
        ];
        for (path, want) in cases {
            assert_eq!(kind_of(path), want, "{path}");
        }
    }
}
