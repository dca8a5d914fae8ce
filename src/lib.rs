//! ako: the Avi Kubernetes Operator, re-implemented in Rust.
//!
//! The tree follows the pipeline. Pure logic has no I/O; the I/O layers stay thin around it:
//!
//! ```text
//!                  ┌─► core::index (admission claims) ──┐
//!  k8s::observe ───┤                                     ├─► core::admission (pure) ──► webhook (axum + rustls)
//!  (one watch      │   AdmissionReview ─► core::intent ──┘
//!   per kind)      └─► View + k8s::changes ──► reconciler: translate ─► plan ─► apply (avi client)
//! ```
//!
//! - [`core`]: pure logic, no tokio, kube client or reqwest: configuration, host rules, the one conversion
//!   (intent), the ownership rule, the index snapshot, the admission decision.
//! - [`k8s`]: Kubernetes I/O: one set of watches feeding the index and the reconciler's view, the merging change
//!   queue, the Lease, status and Events.
//! - [`reconcile`]: the operator: observe -> translate -> plan -> apply -> report, with full syncs that repair
//!   drift.
//! - [`webhook`]: the HTTPS admission server, its review reader, audit log and metrics.
//! - [`avi`]: the Avi Controller REST client and its models (crate ako-model, with the controller's schemas). [`emulator`]: the embedded Avi controller emulator.
//! - [`tools`]: the offline `ako check`. [`certs`]: CA and serving certificates, TLS config and reload.
//!   [`telemetry`]: logging.
#![forbid(unsafe_code)]

pub use ako_avi as avi;
pub use ako_certs as certs;
pub use ako_core as core;
#[cfg(feature = "emulator")]
pub use ako_emulator as emulator;

pub mod cli;
pub mod k8s;
pub mod reconcile;
pub mod telemetry;
pub mod tools;
pub mod webhook;
