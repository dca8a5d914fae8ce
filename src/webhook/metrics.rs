//! Prometheus metrics of the webhook: decisions by kind and result, decision latency, requests refused before a
//! decision (malformed, too large) and requests answered "overloaded" (no slot, or past the deadline).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::review::ReadError;
use super::{Overload, WebhookError};
use ako_core::admission::{Mode, Subject};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub webhook: &'static str,
    pub kind: &'static str,
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub webhook: &'static str,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    pub webhook: &'static str,
}

/// All webhook metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub decisions: Family<DecisionLabels, Counter>,
    pub rejected_requests: Family<RejectLabels, Counter>,
    pub overloaded: Family<RejectLabels, Counter>,
    /// Admission requests holding a slot (being read or decided).
    pub in_flight: Gauge,
    pub latency: Family<WebhookLabel, Histogram>,
    pub indexed_ingresses: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ako_webhook");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Admission decisions by webhook, kind and result",
            decisions.clone(),
        );
        let rejected_requests = Family::<RejectLabels, Counter>::default();
        registry.register(
            "rejected_requests",
            "Requests refused before a decision (400/413)",
            rejected_requests.clone(),
        );
        let overloaded = Family::<RejectLabels, Counter>::default();
        registry.register(
            "overloaded_requests",
            "Requests answered 503 overloaded: no slot free in time (no_slot) or not decided in time (deadline)",
            overloaded.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight_requests",
            "Admission requests holding a slot (being read or decided)",
            in_flight.clone(),
        );
        let latency = Family::<WebhookLabel, Histogram>::new_with_constructor(|| {
            // 5 us .. ~80 ms
            Histogram::new(exponential_buckets(0.000_005, 2.0, 15))
        });
        registry.register(
            "decision_duration_seconds",
            "Time from request read to response built",
            latency.clone(),
        );
        let indexed_ingresses = Gauge::default();
        registry.register(
            "indexed_ingresses",
            "Ingresses in the admission index",
            indexed_ingresses.clone(),
        );
        Self {
            registry,
            decisions,
            rejected_requests,
            overloaded,
            in_flight,
            latency,
            indexed_ingresses,
        }
    }

    /// Counts a decision (`result` as [`ako_core::admission::Decision::result`] names it) and its latency.
    pub fn observe(&self, mode: Mode, subject: Subject, result: &'static str, elapsed: Duration) {
        self.decisions
            .get_or_create(&DecisionLabels {
                webhook: mode.as_str(),
                kind: subject.as_str(),
                result,
            })
            .inc();
        self.latency
            .get_or_create(&WebhookLabel {
                webhook: mode.as_str(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_rejected_request(&self, mode: Mode, e: &WebhookError) {
        let reason = match e {
            WebhookError::TooLarge => "too_large",
            WebhookError::Body(_) => "body",
            WebhookError::Read(ReadError::NoRequest) => "no_request",
            WebhookError::Read(ReadError::Malformed(_) | ReadError::NotUtf8(_)) => "malformed",
        };
        self.rejected_requests
            .get_or_create(&RejectLabels {
                webhook: mode.as_str(),
                reason,
            })
            .inc();
    }

    pub fn observe_overload(&self, mode: Mode, why: Overload) {
        self.overloaded
            .get_or_create(&RejectLabels {
                webhook: mode.as_str(),
                reason: why.as_str(),
            })
            .inc();
    }

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        self.encode_with(|_| Ok(()))
    }

    /// The webhook's metrics, then what `more` writes (another registry), then `# EOF`.
    pub fn encode_with(
        &self,
        more: impl FnOnce(&mut String) -> Result<(), std::fmt::Error>,
    ) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)?;
        more(&mut out)?;
        prometheus_client::encoding::text::encode_eof(&mut out)?;
        Ok(out)
    }
}
