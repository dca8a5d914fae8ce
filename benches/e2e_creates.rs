//! 1,000 Ingress creates through a real kube-apiserver 1.20.2, four ways in one run: no webhook, a trivial
//! allow-all validating + mutating pair (the floor any webhook pays), and ako's webhooks (with its watches).
//! Two trivial pairs run: on tokio's default multi-thread runtime and on one thread (as ako's
//! listener runs). Rounds run in ABCD DCBA order so etcd growth does not favour one side. Creates are sequential (one in flight).
//! Run: `cargo bench --bench e2e_creates` (needs scripts/install-cluster.sh). Env: AKO_E2E_CREATES (1000).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ako::core::config::Config;
use ako::core::index::Index;
use ako::webhook::{AppState, Workers, metrics::Metrics};
use common::Cluster;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

fn delete_webhooks(cluster: &Cluster) {
    let _ = cluster.kubectl(
        &[
            "delete",
            "validatingwebhookconfiguration,mutatingwebhookconfiguration",
            "ako-webhook",
            "--ignore-not-found",
        ],
        None,
    );
}

fn register(cluster: &Cluster, ca_pem: &str, addr: std::net::SocketAddr) {
    let text = std::fs::read_to_string(common::repo().join("webhook-config/webhooks.yaml"))
        .expect("webhooks.yaml");
    let yaml = ako::certs::render_webhook_config(
        &text,
        &ako::certs::ca_bundle(ca_pem),
        Some(&format!("https://{addr}")),
    )
    .expect("render");
    cluster.must(&["apply", "-f", "-"], Some(&yaml));
}

fn ingress(ns: &str, i: usize) -> Ingress {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("ing-{i}"), "namespace": ns},
        "spec": {"ingressClassName": "avi-lb", "rules": [{"host": format!("app-{i}.{ns}.avi.jarvis.lab"), "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
    }))
    .expect("ingress")
}

/// Creates `n` Ingresses in a fresh namespace; returns total seconds and p50/p99 per create in ms.
async fn run(client: &Client, ns: &str, n: usize) -> (f64, f64, f64) {
    let nss: Api<Namespace> = Api::all(client.clone());
    let nsobj: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).expect("ns");
    nss.create(&PostParams::default(), &nsobj)
        .await
        .expect("namespace");
    // The backend exists, as it normally does (a missing one would add a warning to every answer).
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"ports": [{"port": 80}]}
    }))
    .expect("service");
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &svc)
        .await
        .expect("service");
    let api: Api<Ingress> = Api::namespaced(client.clone(), ns);
    // The API server picks up webhook configuration changes from its informer; give it a moment so every
    // create of the round goes through the configuration under test.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        api.create(&PostParams::default(), &ingress(ns, i))
            .await
            .expect("create");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let total = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    (total, lat[n / 2], lat[(n * 99) / 100])
}

fn main() {
    let n: usize = support::env_num("AKO_E2E_CREATES", 1000);
    let cluster = Cluster::start();
    let kubeconfig = cluster.kubeconfig.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let _guard = (std::env::var("AKO_BENCH_AUDIT").as_deref() != Ok("0"))
            .then(|| ako::telemetry::init_with("INFO", ako::telemetry::LogFormat::Json, std::io::sink()));
        let kc = Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
        let client = Client::try_from(config).expect("client");
        cluster.must(&["apply", "-f", common::repo().join("webhook-config/ingressclass.yaml").to_str().expect("path")], None);

        let (tls, ca) = support::tls(&cluster.dir.path().join("certs"));
        let trivial = support::serve_allow_all(tls.clone()).await;
        let t = tls.clone();
        let trivial_one = support::on_runtime("current", move || support::serve_allow_all(t));
        let cfg = Config { dns_domains: vec!["avi.jarvis.lab".into()], ..Config::default() };
        let index = Arc::new(Index::new(Arc::new(cfg)));
        let _watches = ako::k8s::observe::spawn_admission(client.clone(), index.clone());
        let metrics = Arc::new(Metrics::new());
        let state = AppState::new(index.clone(), metrics.clone());
        let https = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let running = ako::webhook::serve(state, https, health, tls, Workers::Dedicated(1)).await.expect("serve");
        while !index.is_ready() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let mut results: Vec<(&str, f64, f64, f64)> = Vec::new();
        let pairs: usize = support::env_num("AKO_E2E_PAIRS", 1);
        let order: Vec<&str> = (0..pairs).flat_map(|_| ["none", "trivial", "trivial1", "ako", "ako", "trivial1", "trivial", "none"]).collect();
        for (round, which) in order.iter().enumerate() {
            delete_webhooks(&cluster);
            match *which {
                "trivial" => register(&cluster, &ca, trivial),
                "trivial1" => register(&cluster, &ca, trivial_one),
                "ako" => register(&cluster, &ca, running.https),
                _ => {}
            }
            let ns = format!("bench-{which}-{round}");
            let (total, p50, p99) = run(&client, &ns, n).await;
            println!("round {round}: {which:<8} {n} creates in {total:.2} s (p50 {p50:.2} ms, p99 {p99:.2} ms)");
            results.push((which, total, p50, p99));
        }
        delete_webhooks(&cluster);
        let avg = |w: &str, f: fn(&(&str, f64, f64, f64)) -> f64| {
            let v: Vec<f64> = results.iter().filter(|r| r.0 == w).map(f).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        println!("\n{n} sequential Ingress creates, mean of {} rounds each (ABCD DCBA order)", 2 * pairs);
        println!("{:<28} {:>9} {:>12} {:>12}", "admission", "total s", "p50 ms", "p99 ms");
        for w in ["none", "trivial", "trivial1", "ako"] {
            let label = match w {
                "none" => "no webhook",
                "trivial" => "trivial pair, tokio default",
                "trivial1" => "trivial pair, one thread",
                _ => "ako validate + mutate",
            };
            println!("{:<28} {:>9.2} {:>12.2} {:>12.2}", label, avg(w, |r| r.1), avg(w, |r| r.2), avg(w, |r| r.3));
        }
        println!(
            "trivial / none = {:.2}x; ako / trivial = {:.3}x; ako / trivial (one thread) = {:.3}x",
            avg("trivial", |r| r.1) / avg("none", |r| r.1),
            avg("ako", |r| r.1) / avg("trivial", |r| r.1),
            avg("ako", |r| r.1) / avg("trivial1", |r| r.1)
        );
        let d = index.read(|s| s.ingress_count());
        println!("ako index held {d} Ingresses at the end");
        // A cold start against the same API server: every watch lists from scratch (AKO's startup at 9k
        // Ingresses took 36 minutes; shared/docs/ako-anchor.md).
        let fresh = Arc::new(Index::new(Arc::clone(&index.config())));
        let started = Instant::now();
        let (_view, watches) = ako::k8s::observe::spawn_admission(client.clone(), fresh.clone());
        while !fresh.is_ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!(
            "cold start: a fresh index synced {} Ingresses (and every Service, Secret and IngressClass) in {:.2} s",
            fresh.read(|s| s.ingress_count()),
            started.elapsed().as_secs_f64()
        );
        for w in watches {
            w.abort();
        }
        // ako's own time per call, from its latency histogram (read body to response built).
        let text = metrics.encode().unwrap_or_default();
        for hook in ["mutate", "validate"] {
            let value = |name: &str| {
                text.lines()
                    .find(|l| l.starts_with(&format!("ako_webhook_decision_duration_seconds_{name}{{webhook=\"{hook}\"}}")))
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            };
            println!("ako {hook}: mean handler time {:.1} us over {} calls", 1e6 * value("sum") / value("count"), value("count"));
        }
        std::mem::forget(running);
    });
}
