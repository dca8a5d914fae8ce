//! Decision latency with 0, 10,000 and 50,000 Ingresses in the index: p50/p99 per AdmissionReview.
//!
//! Two measurements per index size: `decide()` alone (the pure decision), and the full request path without
//! the network (parse the AdmissionReview JSON, decide, build and serialize the response).
//! Run: `cargo bench --bench admission`.

mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use ako::core::admission::{Mode, decide};
use ako::core::config::{Config, FqdnReusePolicy};
use ako::core::index::{IngressClaims, Snapshot};
use ako::webhook::review::ReviewIn;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

fn ingress_json(
    ns: &str,
    name: &str,
    host: &str,
    path: &str,
    ts: Option<&str>,
) -> serde_json::Value {
    let mut meta = json!({"name": name, "namespace": ns});
    if let Some(t) = ts {
        meta["creationTimestamp"] = json!(t);
    }
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta,
        "spec": {"ingressClassName": "avi-lb",
            "tls": [{"hosts": [host], "secretName": "tls"}],
            "rules": [{"host": host, "http": {"paths": [
                {"path": path, "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                {"path": format!("{path}api"), "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 8080}}}}
            ]}}]}
    })
}

fn snapshot(n: usize, cfg: &Config) -> Snapshot {
    let mut s = Snapshot::default();
    for i in 0..n {
        let v = ingress_json(
            &format!("ns-{}", i % 500),
            &format!("ing-{i}"),
            &format!("app-{i}.avi.jarvis.lab"),
            "/",
            Some("2026-01-01T00:00:00Z"),
        );
        let ing: Ingress = serde_json::from_value(v).expect("ingress");
        s.upsert_ingress(IngressClaims::of(&ing, cfg));
    }
    s
}

fn review_body(n: usize) -> Vec<u8> {
    // The candidate shares a host with an indexed Ingress in its own namespace (a realistic hit on the index).
    let host = if n > 0 {
        format!("app-{}.avi.jarvis.lab", n / 2)
    } else {
        "new.avi.jarvis.lab".into()
    };
    let ns = format!("ns-{}", (n / 2) % 500);
    serde_json::to_vec(&support::api_server_review(
        &ns,
        "candidate",
        &host,
        "/shop",
    ))
    .expect("json")
}

fn percentiles(mut ns: Vec<u64>) -> (f64, f64, f64) {
    ns.sort_unstable();
    let p = |q: f64| ns[((ns.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
    (p(0.5), p(0.99), p(0.999))
}

fn main() {
    let cfg = Arc::new(Config {
        dns_domains: vec!["avi.jarvis.lab".into()],
        fqdn_reuse_policy: FqdnReusePolicy::Strict,
        ..Config::default()
    });
    let iters: usize = support::env_num("AKO_BENCH_ITERS", 200_000);
    println!("admission decision, {iters} iterations per row (times in microseconds)");
    println!(
        "{:>8} | {:>22} | {:>32}",
        "ingresses", "decide() p50 / p99", "read+decide+respond p50 / p99 / p99.9"
    );
    for n in [0usize, 10_000, 50_000] {
        let snap = snapshot(n, &cfg);
        let body = review_body(n);
        let parsed: ReviewIn = serde_json::from_slice(&body).expect("review");
        let lean = parsed.request.expect("request");
        let meta = lean.meta();
        let check = decide(
            &meta,
            lean.object().expect("object"),
            Mode::Validate,
            &cfg,
            &snap,
        );
        assert!(
            check.allowed && check.in_scope,
            "the benchmark request must be an in-scope allow: {check:?}"
        );
        for _ in 0..iters / 10 {
            black_box(decide(
                &meta,
                lean.object().expect("object"),
                Mode::Validate,
                &cfg,
                &snap,
            ));
        }
        let mut pure = Vec::with_capacity(iters);
        for _ in 0..iters {
            let object = lean.object().expect("object");
            let t = Instant::now();
            black_box(decide(
                black_box(&meta),
                object,
                Mode::Validate,
                &cfg,
                &snap,
            ));
            pure.push(t.elapsed().as_nanos() as u64);
        }
        // The webhook's request path, without the network: read the review, decide, encode the response.
        let mut full = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            let review =
                ako::webhook::review::read(black_box(&body), Mode::Validate).expect("review");
            let req = review.request;
            let object = review.object.expect("object");
            let d = decide(&req.meta(), object, Mode::Validate, &cfg, &snap);
            let out = d.review_json(&req.uid);
            black_box(out);
            full.push(t.elapsed().as_nanos() as u64);
        }
        let (p50, p99, _) = percentiles(pure);
        let (f50, f99, f999) = percentiles(full);
        println!("{n:>9} | {p50:>9.2} / {p99:>9.2} | {f50:>9.2} / {f99:>9.2} / {f999:>9.2}");
    }
}
