//! A controller that refuses every write: N LoadBalancer Services (1,000) against `ako emulator` answering 503
//! (Retry-After 1 s) to every POST, PUT, PATCH and DELETE while reads work, for FAIL_SECONDS (300). Reported from
//! the emulator's request journal: requests per second in each minute (all, writes, and the busiest second), then
//! how long after the faults stop every Service has its address. The request rate must fall and stay at a few per
//! second whatever N, and recover within one backoff cap (retry_max, 300 s) of the faults stopping.
//!
//! Run: `cargo build --release --bin ako && cargo bench --bench failing_controller` (needs scripts/install-cluster.sh).
//! Env: AKO_BENCH_SERVICES (1000), AKO_BENCH_FAIL_SECONDS (300).

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use support::reconcile as r;

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

fn main() {
    let services = support::env_num("AKO_BENCH_SERVICES", 1000);
    let fail_for = Duration::from_secs(support::env_num("AKO_BENCH_FAIL_SECONDS", 300) as u64);
    ako::certs::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let work = tempfile::tempdir().expect("tmp");
        let cluster_dir = work.path().join("cluster");
        let out = Command::new(r::repo().join("scripts/cluster.sh"))
            .arg("start")
            .arg(&cluster_dir)
            .args(["--watch-pid", &std::process::id().to_string()])
            .env(
                "AKO_APISERVER_EXTRA_ARGS",
                "--service-node-port-range=30000-45000",
            )
            .output()
            .expect("cluster.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kubeconfig = cluster_dir.join("kubeconfig");
        let kc = Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("config");
        let client = Client::try_from(config).expect("client");
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": r::NS}})).expect("ns");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
        let svc_api: Api<Service> = Api::namespaced(client.clone(), r::NS);
        futures::stream::iter(0..services)
            .for_each_concurrent(32, |i| {
                let api = svc_api.clone();
                async move {
                    api.create(&PostParams::default(), &r::service(i))
                        .await
                        .expect("create service");
                }
            })
            .await;
        println!(
            "== {services} LoadBalancer Services; the controller refuses every write for {} s",
            fail_for.as_secs()
        );

        let emu_dir = work.path().join("emu");
        let port = r::free_port();
        let _emu = r::start_emulator_with(
            &emu_dir,
            port,
            0,
            &[
                "--fault-error-rate",
                "503=1.0",
                "--fault-writes-only",
                "--fault-retry-after-secs",
                "1",
            ],
        );
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(ako::avi::tls::client_tls_config(None, true).expect("tls"))
            .build()
            .expect("http");
        let log = work.path().join("controller.log");
        let started = now_ms();
        let _ctl = r::start_controller(&kubeconfig, &emu_dir, port, &log);
        tokio::time::sleep(fail_for).await;
        let stopped = now_ms();
        http.put(format!("https://127.0.0.1:{port}/admin/faults"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("clear faults");
        let t = Instant::now();
        r::until_all_have_status(svc_api.clone(), services, t, r::service_has_status).await;
        let recovered = t.elapsed();

        // The journal, every page.
        let mut journal: Vec<serde_json::Value> = Vec::new();
        let mut next = 0u64;
        loop {
            let page: serde_json::Value = http
                .get(format!(
                    "https://127.0.0.1:{port}/admin/requests?since={next}&limit=10000"
                ))
                .send()
                .await
                .expect("requests")
                .json()
                .await
                .expect("json");
            let records = page["requests"].as_array().cloned().unwrap_or_default();
            if records.is_empty() {
                break;
            }
            next = page["next"].as_u64().unwrap_or(next);
            journal.extend(records);
        }
        let minute = |at: u64| (at.saturating_sub(started)) / 60_000;
        let mut per_minute: BTreeMap<u64, (u64, u64, BTreeMap<u64, u64>)> = BTreeMap::new();
        for rec in journal
            .iter()
            .filter(|x| x["at_ms"].as_u64().unwrap_or(0) < stopped)
        {
            let at = rec["at_ms"].as_u64().unwrap_or(0);
            let e = per_minute.entry(minute(at)).or_default();
            e.0 += 1;
            if !matches!(rec["method"].as_str(), Some("GET")) && rec["kind"] != "login" {
                e.1 += 1;
            }
            *e.2.entry(at / 1000).or_default() += 1;
        }
        println!("   minute | requests/s | writes/s | busiest second");
        for (m, (all, writes, seconds)) in &per_minute {
            let secs = 60.0_f64
                .min((stopped - started) as f64 / 1000.0 - (*m as f64) * 60.0)
                .max(1.0);
            println!(
                "   {:>6} | {:>10.1} | {:>8.1} | {:>14}",
                m + 1,
                *all as f64 / secs,
                *writes as f64 / secs,
                seconds.values().max().copied().unwrap_or(0)
            );
        }
        println!(
            "== faults stopped: every Service has its address {:.1} s later (backoff cap 300 s)",
            recovered.as_secs_f64()
        );
    });
}
