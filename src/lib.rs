//! ako: the Avi Kubernetes Operator, re-implemented in Rust.
//!
//! Layers (pure logic has no I/O; I/O layers stay thin around it):
//!
//! ```text
//!  kube watches ──► index (in-memory view) ──┐
//!                                             ├─► admission::admit  (pure) ──► webhook (axum + rustls)
//!  AdmissionReview ─► intent (one conversion)─┘
//!                       └────────────────────────► reconciler: translate ─► plan ─► apply (avi client)
//! ```
//!
//! - [`hosts`]: DNS name and delegated-subdomain rules.
//! - [`config`]: AKO-compatible configuration (names of the Helm chart's `avi-k8s-config`).
//! - [`intent`]: the one conversion from Ingress/Service to what ako will build, shared by webhook and reconciler.
//! - [`index`]: the cross-object view (host claims, classes, known Secrets/Services), fed by watches.
//! - [`admission`]: the admission decision, a pure function of request + config + index.
//! - [`webhook`]: HTTPS server, audit log, metrics. [`watch`]: kube reflectors feeding the index.
//! - [`check`]: the offline `ako check`. [`certs`]: CA and serving certificates, TLS config and reload.
//! - [`avi`]: Avi Controller REST client. [`emulator`]: the embedded Avi controller emulator.
#![forbid(unsafe_code)]

/// mimalloc as the process allocator: the admission path is allocation-heavy (JSON), and mimalloc cut the
/// webhook's CPU per request by about a quarter against glibc malloc (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod admission;
pub mod avi;
pub mod certs;
pub mod check;
pub mod config;
pub mod emulator;
pub mod hosts;
pub mod index;
pub mod intent;
pub mod telemetry;
pub mod watch;
pub mod webhook;
