//! HTTPS throughput and latency of ako's webhook server against the trivial allow-all axum + rustls server,
//! side by side in one run, with wrk on loopback (keep-alive). ako runs with an index of 10,000 Ingresses and
//! JSON audit logging to a discarding writer (formatting cost included).
//! Run: `cargo bench --bench webhook_http` (needs wrk: scripts/install-cluster.sh installs it).
//! Env: AKO_WRK_SECONDS (default 10), AKO_WRK_CONNECTIONS (8), AKO_WRK_ROUNDS (2, alternating servers).

mod support;

use std::process::Command;
use std::sync::Arc;

use ako::webhook::Workers;

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

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

/// ako's admission listener as `ako webhook` runs it: `--webhook-threads` (AKO_BENCH_WEBHOOK_THREADS, default 1;
/// 0 = on the main multi-thread runtime).
fn ako_server(tls: Arc<rustls::ServerConfig>) -> std::net::SocketAddr {
    let workers = match support::env_num::<u32>("AKO_BENCH_WEBHOOK_THREADS", 1) {
        0 => Workers::Shared,
        n => Workers::Dedicated(n as usize),
    };
    support::on_runtime("multi", move || async move {
        let state = support::indexed_state(10_000);
        let https = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let health = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = ako::webhook::serve(state, https, health, tls, workers)
            .await
            .expect("serve");
        let addr = running.https;
        std::mem::forget(running);
        addr
    })
}

fn main() {
    let secs = support::env_num::<u32>("AKO_WRK_SECONDS", 10);
    let conns = support::env_num::<u32>("AKO_WRK_CONNECTIONS", 8);
    let rounds = support::env_num::<u32>("AKO_WRK_ROUNDS", 2);
    let dir = tempfile::tempdir().expect("tmp");
    let _guard = (env_or("AKO_BENCH_AUDIT", "1") != "0").then(|| {
        ako::telemetry::init_with("INFO", ako::telemetry::LogFormat::Json, std::io::sink())
    });
    let (tls, _) = support::tls(dir.path());
    let lua = review_lua(dir.path());
    // AKO_BENCH_ONLY=ako (or =trivial) measures only the servers whose name contains it (for profiling).
    let only = env_or("AKO_BENCH_ONLY", "");
    let mut servers: Vec<(&str, String)> = Vec::new();
    {
        let t = tls.clone();
        let multi = support::on_runtime("multi", move || support::serve_allow_all(t));
        servers.push((
            "trivial, tokio default runtime",
            format!("https://{multi}/validate"),
        ));
        let t = tls.clone();
        let current = support::on_runtime("current", move || support::serve_allow_all(t));
        servers.push((
            "trivial, one-thread runtime",
            format!("https://{current}/validate"),
        ));
    }
    let ako_addr = ako_server(tls);
    servers.push((
        "ako /validate (10k index)",
        format!("https://{ako_addr}/validate"),
    ));
    servers.retain(|(name, _)| name.contains(only.as_str()));
    for (_, url) in &servers {
        wrk(url, &lua, 2, conns);
    }
    let mut runs: Vec<Vec<support::WrkResult>> = vec![Vec::new(); servers.len()];
    for round in 0..rounds {
        // Alternate the order (ABC, CBA, ...) so drift in the machine's state does not favour one server.
        let mut order: Vec<usize> = (0..servers.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            runs[i].push(wrk(&servers[i].1, &lua, secs, conns));
        }
    }
    let avg = |v: &[support::WrkResult], f: fn(&support::WrkResult) -> f64| {
        v.iter().map(f).sum::<f64>() / v.len() as f64
    };
    let rows: Vec<(f64, f64, f64, f64)> = runs
        .iter()
        .map(|v| {
            (
                avg(v, |r| r.rps),
                avg(v, |r| r.p50_ms),
                avg(v, |r| r.p99_ms),
                avg(v, |r| r.cpu_us_per_req),
            )
        })
        .collect();
    println!(
        "wrk -t1 -c{conns} -d{secs}s, {rounds} alternating rounds, POST of one Ingress AdmissionReview over TLS"
    );
    println!(
        "{:<32} {:>9} {:>8} {:>8} {:>14}",
        "server", "req/s", "p50 ms", "p99 ms", "server CPU/req"
    );
    for ((name, _), (rps, p50, p99, cpu)) in servers.iter().zip(&rows) {
        println!("{name:<32} {rps:>9.0} {p50:>8.3} {p99:>8.3} {cpu:>11.1} us");
    }
    let Some(&(a_rps, _, a99, acpu)) = rows.last() else {
        return;
    };
    for ((name, _), (rps, _, p99, cpu)) in servers.iter().zip(&rows).take(rows.len() - 1) {
        println!(
            "ako / {name}: throughput {:.1}%, p99 {:.2}x, CPU per request {:.2}x",
            100.0 * a_rps / rps,
            a99 / p99,
            acpu / cpu
        );
    }
    for r in runs.iter().flatten() {
        if !r.errors.is_empty() {
            println!("errors: {}", r.errors);
        }
    }
}
