//! The L7 reconciler at scale: N Ingresses (two paths each, a tenth with TLS) and N LoadBalancer Services
//! against a real kube-apiserver 1.20.2 and `ako emulator` adding 2 ms to each request; cold start against
//! same-run floors, writes against the minimum, peak RSS, warm restart, and the latency of one Ingress path edit.
//! The method is in benches/support/reconcile.rs.
//!
//! Run: `cargo build --release --bin ako && cargo bench --bench reconcile_l7` (needs scripts/install-cluster.sh).
//! Env: AKO_BENCH_SERVICES (5000), AKO_BENCH_INGRESSES (5000), AKO_BENCH_EDITS (50), AKO_BENCH_LATENCY_MS (2).

mod support;

fn main() {
    support::reconcile::run(support::reconcile::Workload {
        services: support::env_num("AKO_BENCH_SERVICES", 5000),
        ingresses: support::env_num("AKO_BENCH_INGRESSES", 5000),
        edits: support::env_num("AKO_BENCH_EDITS", 50),
        latency_ms: support::env_num("AKO_BENCH_LATENCY_MS", 2),
        unrelated_secrets: support::env_num("AKO_BENCH_UNRELATED_SECRETS", 0),
        nodes: support::env_num("AKO_BENCH_NODES", 0),
    });
}
