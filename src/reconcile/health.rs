//! The reconciler's health and metrics as the health port serves them: `/healthz` fails when the reconciler's
//! task has ended, a pass has run longer than the stall bound, or changes have waited that long for it;
//! `/metrics` has the reconciler's and the Avi client's metrics. `ako controller` serves them on a port of its own
//! ([`router`]); `ako run` adds them to the webhook's health port.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

use super::metrics::{Heartbeat, ReconcileMetrics};
use ako_avi::metrics::AviMetrics;

/// Default bound of a pass, and of changes waiting, before the reconciler counts as stalled.
pub const DEFAULT_STALL_BOUND: Duration = Duration::from_secs(900);

/// Everything the health port reads of the reconciler.
#[derive(Debug)]
pub struct ControllerHealth {
    registry: Registry,
    pub avi: Arc<AviMetrics>,
    pub reconcile: Arc<ReconcileMetrics>,
    pub heartbeat: Arc<Heartbeat>,
    stall_bound: Duration,
    /// Set once the reconciler has read its environment and started (readiness of `ako controller`).
    started: std::sync::atomic::AtomicBool,
}

impl ControllerHealth {
    pub fn new(stall_bound: Duration) -> Arc<Self> {
        let avi = Arc::new(AviMetrics::default());
        let reconcile = Arc::new(ReconcileMetrics::default());
        let mut registry = Registry::with_prefix("ako");
        avi.register(&mut registry);
        reconcile.register(&mut registry);
        Arc::new(Self {
            registry,
            avi,
            reconcile,
            heartbeat: Arc::default(),
            stall_bound,
            started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether the reconciler is live; why not otherwise.
    pub fn live(&self) -> Result<(), String> {
        self.heartbeat.check(self.stall_bound)
    }

    pub fn set_started(&self) {
        self.started
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn started(&self) -> bool {
        self.started.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The metrics in the text format, without the closing `# EOF` (the caller may add other registries).
    pub fn encode_into(&self, out: &mut String) -> Result<(), std::fmt::Error> {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
    }
}

/// `/healthz`, `/readyz` and `/metrics` of `ako controller`.
pub fn router(health: Arc<ControllerHealth>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn healthz(State(h): State<Arc<ControllerHealth>>) -> Response {
    match h.live() {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

async fn readyz(State(h): State<Arc<ControllerHealth>>) -> Response {
    if !h.started() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the reconciler has not started: the Avi controller's environment is not validated yet",
        )
            .into_response();
    }
    healthz(State(h)).await
}

async fn metrics(State(h): State<Arc<ControllerHealth>>) -> Response {
    let mut out = String::new();
    let encoded = h
        .encode_into(&mut out)
        .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut out));
    match encoded {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            out,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
