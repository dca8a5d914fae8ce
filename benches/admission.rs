//! Decision latency with 0, 10,000 and 50,000 Ingresses in the index: p50/p99 per AdmissionReview.
//!
//! Two measurements per index size: `decide()` alone (the pure decision), and the full request path without
//! the network (parse the AdmissionReview JSON, decide, build and serialize the response).
//! Run: `cargo bench --bench admission`.

mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use ako::core::admission::{Mode, decide, decide_with};
use ako::core::config::{Config, FqdnReusePolicy};
use ako::core::crd::Lookup;
use ako::core::index::HostRuleClaim;
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

/// An AdmissionReview of a HostRule (`kubectl apply` of a new one, with the same envelope as the Ingress's) or an
/// HTTPRule for an indexed host.
fn rule_review(kind: &str, ns: &str, spec: serde_json::Value) -> Vec<u8> {
    let object = json!({"apiVersion": "ako.vmware.com/v1beta1", "kind": kind,
        "metadata": {"name": "candidate", "namespace": ns,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": spec.to_string()},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "ako.vmware.com/v1beta1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
        "spec": spec});
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "0b6f2b2d-5a8e-4d2f-9c5e-7a1c3e9b0f11",
            "kind": {"group": "ako.vmware.com", "version": "v1beta1", "kind": kind},
            "resource": {"group": "ako.vmware.com", "version": "v1beta1", "resource": format!("{}s", kind.to_ascii_lowercase())},
            "requestKind": {"group": "ako.vmware.com", "version": "v1beta1", "kind": kind},
            "namespace": ns, "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object, "oldObject": null, "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}}}))
    .expect("json")
}

/// The HostRule paths: N HostRules (and N Ingresses) in the index; the candidates are a new HostRule naming
/// five controller objects (all in the webhook's name cache) and an HTTPRule for an indexed host.
fn rule_rows(cfg: &Config, iters: usize) {
    println!("HostRule / HTTPRule reviews (times in microseconds)");
    println!(
        "{:>8} | {:>9} | {:>22} | {:>32}",
        "rules", "kind", "decide() p50 / p99", "read+decide+respond p50 / p99 / p99.9"
    );
    let names: std::collections::HashSet<(String, String)> = [
        ("wafpolicy", "corp-waf"),
        ("sslkeyandcertificate", "corp-cert"),
        ("sslprofile", "corp-tls"),
        ("applicationprofile", "System-Secure-HTTP"),
        ("analyticsprofile", "System-Analytics-Profile"),
        (
            "applicationpersistenceprofile",
            "System-Persistence-Http-Cookie",
        ),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_string(), n.to_string()))
    .collect();
    let lookup = |t: &str, n: &str| {
        if names.contains(&(t.to_string(), n.to_string())) {
            Lookup::Found
        } else {
            Lookup::Missing
        }
    };
    for n in [0usize, 10_000] {
        let mut snap = snapshot(n.max(1), cfg);
        for i in 0..n {
            snap.upsert_host_rule(
                HostRuleClaim {
                    key: ako::core::index::ObjKey::new(
                        format!("ns-{}", i % 500),
                        format!("hr-{i}"),
                    ),
                    created: Some(1_700_000_000),
                    rejected: false,
                },
                Some(format!("app-{i}.avi.jarvis.lab")),
            );
        }
        let host_rule = rule_review(
            "HostRule",
            "ns-7",
            json!({"virtualhost": {"fqdn": "new-app.avi.jarvis.lab", "wafPolicy": "corp-waf",
                "applicationProfile": "System-Secure-HTTP", "analyticsProfile": "System-Analytics-Profile",
                "tls": {"sslKeyCertificate": {"name": "corp-cert", "type": "ref"}, "sslProfile": "corp-tls", "termination": "edge"},
                "analyticsPolicy": {"fullClientLogs": {"enabled": true, "throttle": "HIGH"}}}}),
        );
        let target = n.max(1) / 2;
        let http_rule = rule_review(
            "HTTPRule",
            &format!("ns-{}", target % 500),
            json!({"fqdn": format!("app-{target}.avi.jarvis.lab"), "paths": [{"target": "/",
                "loadBalancerPolicy": {"algorithm": "LB_ALGORITHM_ROUND_ROBIN"},
                "applicationPersistence": "System-Persistence-Http-Cookie"}]}),
        );
        for (kind, body) in [("HostRule", &host_rule), ("HTTPRule", &http_rule)] {
            let review = ako::webhook::review::read(body, Mode::Validate).expect("review");
            let meta = review.request.meta();
            let object = review.object.expect("object");
            let check = decide_with(&meta, object.clone(), Mode::Validate, cfg, &snap, &lookup);
            assert!(
                check.allowed && check.in_scope,
                "the benchmark's {kind} must be an in-scope allow: {check:?}"
            );
            let mut pure = Vec::with_capacity(iters);
            for _ in 0..iters {
                let o = object.clone();
                let t = Instant::now();
                black_box(decide_with(
                    black_box(&meta),
                    o,
                    Mode::Validate,
                    cfg,
                    &snap,
                    &lookup,
                ));
                pure.push(t.elapsed().as_nanos() as u64);
            }
            let mut full = Vec::with_capacity(iters);
            for _ in 0..iters {
                let t = Instant::now();
                let review =
                    ako::webhook::review::read(black_box(body), Mode::Validate).expect("review");
                let req = review.request;
                let d = decide_with(
                    &req.meta(),
                    review.object.expect("object"),
                    Mode::Validate,
                    cfg,
                    &snap,
                    &lookup,
                );
                black_box(d.review_json(&req.uid));
                full.push(t.elapsed().as_nanos() as u64);
            }
            let (p50, p99, _) = percentiles(pure);
            let (f50, f99, f999) = percentiles(full);
            println!(
                "{n:>8} | {kind:>9} | {p50:>9.2} / {p99:>9.2} | {f50:>9.2} / {f99:>9.2} / {f999:>9.2}"
            );
        }
    }
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
    rule_rows(&cfg, iters / 4);
}
