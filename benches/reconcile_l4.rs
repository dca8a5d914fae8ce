//! The L4 reconciler at scale: N LoadBalancer Services against a real kube-apiserver 1.20.2 and `ako emulator`
//! adding 2 ms to each request; cold start against same-run floors, writes against the minimum (4 per
//! Service), peak RSS, warm restart, edit latency. The method is in benches/support/reconcile.rs.
//!
//! Run: `cargo build --release --bin ako && cargo bench --bench reconcile_l4` (needs scripts/install-cluster.sh).
//! Env: AKO_BENCH_SERVICES (5000), AKO_BENCH_EDITS (50), AKO_BENCH_LATENCY_MS (2).

mod support;

fn main() {
    support::reconcile::run(support::reconcile::Workload {
        services: support::env_num("AKO_BENCH_SERVICES", 5000),
        ingresses: 0,
        edits: support::env_num("AKO_BENCH_EDITS", 50),
        latency_ms: support::env_num("AKO_BENCH_LATENCY_MS", 2),
        unrelated_secrets: support::env_num("AKO_BENCH_UNRELATED_SECRETS", 0),
        nodes: support::env_num("AKO_BENCH_NODES", 0),
    });
}
