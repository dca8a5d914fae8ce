//! Kubernetes I/O: the one set of watches that feeds the admission index and the reconciler's view ([`observe`]),
//! the merging queue of changes to the reconciler ([`changes`]), the Lease ([`lease`]),
//! and what the reconciler writes back: status and Events ([`report`]).

pub mod changes;
pub mod crds;
pub mod lease;
pub mod observe;
pub mod report;
pub mod webhook_certs;
