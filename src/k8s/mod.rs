//! Kubernetes I/O: the watches that feed the pure core (and, with the reconciler, status and Events).

pub mod watch;
