//! Shared pieces of the benchmarks: the trivial allow-all axum + rustls webhook (the ceiling of this stack and
//! the floor any webhook pays), certificates, and wrk output parsing.
#![allow(dead_code)]

pub mod reconcile;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

/// Certificates for 127.0.0.1 in `dir`; returns (tls config, CA PEM).
pub fn tls(dir: &std::path::Path) -> (Arc<rustls::ServerConfig>, String) {
    ako::certs::install_crypto_provider();
    let (files, ca) = ako::certs::write_dev_certs(
        dir,
        &["localhost".into()],
        &["127.0.0.1".parse().expect("ip")],
        2,
    )
    .expect("certs");
    let resolver =
        Arc::new(ako::certs::ReloadingResolver::load(&files.cert, &files.key).expect("load"));
    (
        Arc::new(ako::certs::server_config(resolver).expect("tls")),
        ca,
    )
}

/// A webhook that answers every review with a fixed "allowed" response (uid echoed from a fixed offset-free
/// scan, no JSON parsing): the cheapest possible correct-enough webhook.
pub async fn serve_allow_all(tls: Arc<rustls::ServerConfig>) -> std::net::SocketAddr {
    async fn allow(body: Bytes) -> ([(axum::http::HeaderName, &'static str); 1], String) {
        // Echo the uid so the API server accepts the answer.
        let text = std::str::from_utf8(&body).unwrap_or("");
        let uid = text
            .split("\"uid\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        let out = format!(
            "{{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"response\":{{\"uid\":\"{uid}\",\"allowed\":true}}}}"
        );
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            out,
        )
    }
    let app = Router::new()
        .route("/validate", post(allow))
        .route("/mutate", post(allow));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .expect("server");
    tokio::spawn(async move {
        let _ = server.serve(app.into_make_service()).await;
    });
    addr
}

/// Runs a server on a runtime of its own: `multi` (tokio's default multi-thread runtime, what `#[tokio::main]`
/// gives) or `current` (one thread). Returns the server's address; the runtime lives until the process ends.
pub fn on_runtime<F, Fut>(kind: &str, start: F) -> std::net::SocketAddr
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::net::SocketAddr>,
{
    let rt = match kind {
        "current" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
    .expect("runtime");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        rt.block_on(async move {
            let _ = tx.send(start().await);
            std::future::pending::<()>().await
        })
    });
    rx.recv().expect("server address")
}

/// A number from the environment (benchmark knobs), or `default` when unset or unreadable.
pub fn env_num<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Requests/s and latency percentiles (ms) from `wrk --latency` output.
#[derive(Debug, Default, Clone)]
pub struct WrkResult {
    pub rps: f64,
    /// CPU time of this process (servers) per request, microseconds.
    pub cpu_us_per_req: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: String,
}

fn to_ms(v: &str) -> f64 {
    let v = v.trim();
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

pub fn parse_wrk(out: &str) -> WrkResult {
    let mut r = WrkResult::default();
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().unwrap_or(f64::NAN);
        } else if let Some(v) = t.strip_prefix("50%") {
            r.p50_ms = to_ms(v);
        } else if let Some(v) = t.strip_prefix("99%") {
            r.p99_ms = to_ms(v);
        } else if t.starts_with("Non-2xx") || t.starts_with("Socket errors") {
            r.errors.push_str(t);
            r.errors.push(' ');
        }
    }
    r
}

/// User + system CPU seconds of this process so far.
pub fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the stat line, i.e. 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// An AdmissionReview as kube-apiserver sends it for `kubectl apply` of a new Ingress: the object carries the
/// last-applied annotation and managedFields, and the request its options and the user's groups.
pub fn api_server_review(ns: &str, name: &str, host: &str, path: &str) -> serde_json::Value {
    let spec = serde_json::json!({"ingressClassName": "avi-lb", "rules": [{"host": host, "http": {"paths": [
        {"path": path, "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": format!("{path}/api"), "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 8080}}}}]}}]});
    let last_applied = serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"annotations": {}, "name": name, "namespace": ns}, "spec": spec});
    let object = serde_json::json!({
        "kind": "Ingress", "apiVersion": "networking.k8s.io/v1",
        "metadata": {
            "name": name, "namespace": ns, "creationTimestamp": null, "generation": 1,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": format!("{last_applied}\n")},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "networking.k8s.io/v1", "time": "2026-11-26T18:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                    "f:spec": {"f:ingressClassName": {}, "f:rules": {}}}}]
        },
        "spec": spec,
        "status": {"loadBalancer": {}}
    });
    serde_json::json!({
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
            "resource": {"group": "networking.k8s.io", "version": "v1", "resource": "ingresses"},
            "requestKind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
            "requestResource": {"group": "networking.k8s.io", "version": "v1", "resource": "ingresses"},
            "name": name, "namespace": ns, "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:masters", "system:authenticated"]},
            "object": object, "oldObject": null, "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}
        }
    })
}

/// ako's admission state with `n` Ingresses indexed (hosts `app-<i>.avi.jarvis.lab` over 500 namespaces,
/// fqdnReusePolicy Strict), as the webhook benchmarks serve it.
pub fn indexed_state(n: usize) -> ako::webhook::AppState {
    use ako::core::config::{Config, FqdnReusePolicy};
    use ako::core::index::{Index, IngressClaims};
    let cfg = Config {
        dns_domains: vec!["avi.jarvis.lab".into()],
        fqdn_reuse_policy: FqdnReusePolicy::Strict,
        ..Config::default()
    };
    let index = Arc::new(Index::new(Arc::new(cfg)));
    for i in 0..n {
        let ing: k8s_openapi::api::networking::v1::Ingress = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("ing-{i}"), "namespace": format!("ns-{}", i % 500), "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"ingressClassName": "avi-lb", "rules": [{"host": format!("app-{i}.avi.jarvis.lab"), "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
        }))
        .expect("ingress");
        let claims = IngressClaims::of(&ing, &index.config());
        index.write(|s| s.upsert_ingress(claims));
    }
    ako::webhook::AppState::new(index, Arc::new(ako::webhook::metrics::Metrics::new()))
}
