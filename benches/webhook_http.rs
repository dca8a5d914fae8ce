//! HTTPS throughput and latency of ako's webhook server against the trivial allow-all axum + rustls server,
//! side by side in one run, with wrk on loopback (keep-alive). ako runs with an index of 10,000 Ingresses and
//! JSON audit logging to a discarding writer (formatting cost included).
//! Run: `cargo bench --bench webhook_http` (needs wrk: scripts/install-cluster.sh installs it).
//! Env: AKO_WRK_SECONDS (default 10), AKO_WRK_CONNECTIONS (8), AKO_WRK_ROUNDS (2, alternating servers).

mod support;

use std::process::Command;
use std::sync::Arc;

use ako::config::{Config, FqdnReusePolicy};
use ako::index::{Index, IngressClaims};
use ako::webhook::{AppState, metrics::Metrics};
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

fn review_lua(dir: &std::path::Path) -> std::path::PathBuf {
    let review =
        support::api_server_review("ns-7", "candidate", "app-5007.avi.jarvis.lab", "/shop");
    let body = serde_json::to_string(&review).expect("json");
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [[{body}]]\n"
    );
    let path = dir.join("review.lua");
    std::fs::write(&path, lua).expect("lua");
    path
}

fn wrk(url: &str, lua: &std::path::Path, secs: u32, conns: u32) -> support::WrkResult {
    let cpu_before = support::process_cpu_seconds();
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
            "-s",
        ])
        .arg(lua)
        .arg(url)
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut r = support::parse_wrk(&text);
    let cpu = support::process_cpu_seconds() - cpu_before;
    r.cpu_us_per_req = cpu * 1e6 / (r.rps * f64::from(secs)).max(1.0);
    assert!(
        r.rps > 0.0,
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    r
}

fn main() {
    let secs: u32 = std::env::var("AKO_WRK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let conns: u32 = std::env::var("AKO_WRK_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let rounds: u32 = std::env::var("AKO_WRK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let dir = tempfile::tempdir().expect("tmp");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let (_guard, ako_addr, trivial_addr) = rt.block_on(async {
        let guard = (std::env::var("AKO_BENCH_AUDIT").as_deref() != Ok("0"))
            .then(|| ako::telemetry::init_with("INFO", ako::telemetry::LogFormat::Json, std::io::sink()));
        let (tls, _) = support::tls(dir.path());
        let cfg = Config { dns_domains: vec!["avi.jarvis.lab".into()], fqdn_reuse_policy: FqdnReusePolicy::Strict, ..Config::default() };
        let index = Arc::new(Index::new(Arc::new(cfg)));
        for i in 0..10_000 {
            let ing: Ingress = serde_json::from_value(json!({
                "metadata": {"name": format!("ing-{i}"), "namespace": format!("ns-{}", i % 500), "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"ingressClassName": "avi-lb", "rules": [{"host": format!("app-{i}.avi.jarvis.lab"), "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
            }))
            .expect("ingress");
            let claims = IngressClaims::of(&ing, index.config());
            index.write(|s| s.upsert_ingress(claims));
        }
        let state = AppState { index, metrics: Arc::new(Metrics::new()) };
        let https = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let running = ako::webhook::serve(state, https, health, tls.clone()).await.expect("serve");
        let trivial = support::serve_allow_all(tls).await;
        let addr = running.https;
        std::mem::forget(running);
        (guard, addr, trivial)
    });
    let lua = review_lua(dir.path());
    let ako_url = format!("https://{ako_addr}/validate");
    let trivial_url = format!("https://{trivial_addr}/validate");
    // Warm-up both.
    wrk(&ako_url, &lua, 2, conns);
    // AKO_BENCH_ONLY=ako measures ako alone (for profiling); the comparison then reuses ako's figures.
    let only_ako = std::env::var("AKO_BENCH_ONLY").as_deref() == Ok("ako");
    if !only_ako {
        wrk(&trivial_url, &lua, 2, conns);
    }
    let mut ako_runs = Vec::new();
    let mut trivial_runs = Vec::new();
    for _ in 0..rounds {
        if !only_ako {
            trivial_runs.push(wrk(&trivial_url, &lua, secs, conns));
        }
        ako_runs.push(wrk(&ako_url, &lua, secs, conns));
    }
    let avg = |v: &[support::WrkResult], f: fn(&support::WrkResult) -> f64| {
        v.iter().map(f).sum::<f64>() / v.len() as f64
    };
    let row = |v: &[support::WrkResult]| {
        (
            avg(v, |r| r.rps),
            avg(v, |r| r.p50_ms),
            avg(v, |r| r.p99_ms),
            avg(v, |r| r.cpu_us_per_req),
        )
    };
    let (t_rps, t50, t99, tcpu) = row(if only_ako { &ako_runs } else { &trivial_runs });
    let (a_rps, a50, a99, acpu) = row(&ako_runs);
    println!(
        "wrk -t1 -c{conns} -d{secs}s, {rounds} alternating rounds, POST of one Ingress AdmissionReview over TLS"
    );
    println!(
        "{:<30} {:>9} {:>8} {:>8} {:>12}",
        "server", "req/s", "p50 ms", "p99 ms", "server CPU/req"
    );
    for (name, rps, p50, p99, cpu) in [
        ("trivial axum+rustls (ceiling)", t_rps, t50, t99, tcpu),
        ("ako /validate (10k index)", a_rps, a50, a99, acpu),
    ] {
        println!("{name:<30} {rps:>9.0} {p50:>8.3} {p99:>8.3} {cpu:>10.1} us");
    }
    println!(
        "ako / ceiling: throughput {:.1}%, p99 {:.2}x, CPU per request {:.2}x",
        100.0 * a_rps / t_rps,
        a99 / t99,
        acpu / tcpu
    );
    for r in ako_runs.iter().chain(&trivial_runs) {
        if !r.errors.is_empty() {
            println!("errors: {}", r.errors);
        }
    }
}
