//! Kubernetes I/O: the watches that feed the admission index ([`watch`]) and the reconciler's view ([`observe`]),
//! and what the reconciler writes back: status and Events ([`report`]).

pub mod changes;
pub mod lease;
pub mod observe;
pub mod report;
pub mod watch;
pub mod webhook_certs;
