//! The pure core: what ako decides, with no I/O (no tokio, kube client or reqwest). Everything here is a
//! function of its inputs and is table-tested.
//!
//! - [`config`]: AKO-compatible configuration (the keys of the Helm chart's `avi-k8s-config`).
//! - [`crd`]: AKO's custom resources (HostRule, HTTPRule): their checks, verdicts and effect on Avi bodies.
//! - [`hosts`]: DNS name and delegated-subdomain rules.
//! - [`intent`]: the one conversion from Ingress/Service to what ako will build, shared by webhook and reconciler.
//! - [`ownership`]: the oldest claim owns a host or a VIP.
//! - [`index`]: the cross-object view (host claims, VIP claims, classes), fed by watches or by files.
//! - [`admission`]: the admission decision, a pure function of request + config + index snapshot.
//! - [`l4`]: LoadBalancer Services -> the VsVip, pools, L4PolicySet and virtual service they need.
//! - [`l7`]: Ingresses -> shared (SNI parent/child) or dedicated virtual services, pools, policies, certificates.
//! - [`settings`]: the reconciler's settings (ControllerSettings, credentials, namespace scope).
//! - [`plan`]: the Avi objects that should exist against those that do -> ordered, owned-only writes.
//! - [`routes`]: ClusterIP mode's static routes to the Nodes' pod CIDRs, on a VRF other clusters share.
//! - [`ako_objects`]: AKO's objects for features ako does not model, which the orphan scan leaves alone.

pub mod admission;
pub mod ako_objects;
pub mod config;
pub mod crd;
pub mod hosts;
pub mod index;
pub mod intent;
pub mod l4;
pub mod l7;
pub mod ownership;
pub mod plan;
/// Redaction of secrets in bodies, headers and `Debug` output (kept with the Avi models).
pub use ako_model::redact;
pub mod refs;
pub mod routes;
pub mod safety;
#[cfg(test)]
mod schema_check;
pub mod settings;
