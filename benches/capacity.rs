//! One leader's capacity: the reconciler at 10,000, 25,000 and 50,000 objects (half LoadBalancer Services, half
//! Ingresses with two paths each and a tenth with TLS), with 10,000 TLS Secrets no Ingress names and 500 Nodes in
//! the cluster, against a real kube-apiserver 1.20.2 and `ako emulator` adding 2 ms to each request. Each size is a
//! run of benches/support/reconcile.rs on a fresh cluster: cold start against same-run floors, Avi writes against
//! the minimum, peak RSS, edit latency with everything loaded, warm restart. Results: BENCHMARKS.md §9.
//!
//! Run: `cargo build --release --bin ako && cargo bench --bench capacity` (needs scripts/install-cluster.sh).
//! Env: AKO_BENCH_SIZES (`10000,25000,50000`), AKO_BENCH_UNRELATED_SECRETS (10000), AKO_BENCH_NODES (500),
//! AKO_BENCH_EDITS (20), AKO_BENCH_LATENCY_MS (2).

mod support;

fn main() {
    let sizes = std::env::var("AKO_BENCH_SIZES").unwrap_or_else(|_| "10000,25000,50000".into());
    for size in sizes
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
    {
        println!("######## {size} objects");
        support::reconcile::run(support::reconcile::Workload {
            services: size / 2,
            ingresses: size - size / 2,
            edits: support::env_num("AKO_BENCH_EDITS", 20),
            latency_ms: support::env_num("AKO_BENCH_LATENCY_MS", 2),
            unrelated_secrets: support::env_num("AKO_BENCH_UNRELATED_SECRETS", 10_000),
            nodes: support::env_num("AKO_BENCH_NODES", 500),
        });
    }
}
